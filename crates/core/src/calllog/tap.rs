//! The call log's tap: each committed call, with what its row does not keep, offered to an
//! exporter without ever waiting. While nothing is exporting the tap is off and a call costs
//! one atomic load; while it is on, a call is one `try_send` into a bounded queue, and a full
//! queue drops the call and counts it. The exporter itself (OTLP) lives in `otel/`; the tap
//! knows nothing of it beyond these counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use milc_api::Call;
use tokio::sync::{mpsc, oneshot, watch};

use super::storage::GatewayTag;

/// Calls waiting for the exporter at most; more are dropped (and counted) until it catches up.
pub const QUEUE: usize = 4096;

/// What kind of request a call was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Operation {
    #[default]
    Chat,
    Embeddings,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
        }
    }
}

/// What a caller knows of a call that its log row does not keep, for the exporter.
#[derive(Clone, Debug, Default)]
pub struct CallDetail {
    pub operation: Operation,
    /// The endpoint's name when the call was made.
    pub endpoint: Option<String>,
    /// The base URL the request went to.
    pub server: Option<String>,
    /// The model the server says answered.
    pub response_model: Option<String>,
    pub finish_reason: Option<String>,
    /// The request's sampling parameters, as sent.
    pub params: Option<milc_api::Params>,
    /// The run the call was made for (its items, judges and similarity checks).
    pub run_id: Option<i64>,
    /// The bodies exactly as stored with the call (only where the policy keeps them, always
    /// redacted): the request's JSON and the response text.
    pub bodies: Option<(serde_json::Value, String)>,
}

/// A committed call as the exporter receives it.
#[derive(Debug)]
pub struct Logged {
    pub id: i64,
    pub call: Call,
    pub gateway: Option<GatewayTag>,
    pub detail: CallDetail,
}

/// What goes down the tap's queue.
#[derive(Debug)]
pub enum Tapped {
    Call(Box<Logged>),
    /// Send what is waiting now, then answer.
    Flush(oneshot::Sender<()>),
}

/// Cheap to clone: every clone is the same tap. The exporter holds the queue's receiver and the
/// [`TapState`], never a sender, so it ends once the console's call log is gone.
#[derive(Clone, Debug)]
pub struct Tap {
    queue: mpsc::Sender<Tapped>,
    /// Taken by the one exporter that consumes the queue.
    receiver: Arc<Mutex<Option<mpsc::Receiver<Tapped>>>>,
    state: Arc<TapState>,
}

/// What the tap and its exporter share: whether calls are offered, the counts, the last error,
/// and the signal that the export's settings changed in this process.
#[derive(Debug)]
pub struct TapState {
    on: AtomicBool,
    changed: watch::Sender<u64>,
    exported: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Default for Tap {
    fn default() -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Self {
            queue,
            receiver: Arc::new(Mutex::new(Some(receiver))),
            state: Arc::new(TapState {
                on: AtomicBool::new(false),
                changed: watch::Sender::new(0),
                exported: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }),
        }
    }
}

impl Tap {
    /// Whether calls are being offered to an exporter (a caller skips preparing what only the
    /// exporter would read, such as a copy of the bodies, when not).
    pub fn is_on(&self) -> bool {
        self.state.is_on()
    }

    pub fn state(&self) -> &Arc<TapState> {
        &self.state
    }

    /// Offers a committed call to the exporter; never waits. A full queue (or a gone exporter)
    /// drops it and counts it.
    pub fn offer(&self, id: i64, call: &Call, gateway: Option<&GatewayTag>, detail: CallDetail) {
        if !self.is_on() {
            return;
        }
        let logged = Logged {
            id,
            call: call.clone(),
            gateway: gateway.cloned(),
            detail,
        };
        if self.queue.try_send(Tapped::Call(Box::new(logged))).is_err() {
            self.state.dropped(1);
        }
    }

    /// The queue's receiving end, for the one exporter (`None` once taken).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Tapped>> {
        self.receiver.lock().expect("tap lock").take()
    }

    /// Asks the exporter to send what it holds and waits for it, `within` at most. Returns at
    /// once when the tap is off or nothing consumes the queue.
    pub async fn flush(&self, within: Duration) {
        let consumed = self.receiver.lock().expect("tap lock").is_none();
        if !self.is_on() || !consumed {
            return;
        }
        let (ack, done) = oneshot::channel();
        let _ = tokio::time::timeout(within, async {
            if self.queue.send(Tapped::Flush(ack)).await.is_ok() {
                let _ = done.await;
            }
        })
        .await;
    }
}

impl TapState {
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// Tells the exporter that the settings changed (it reads them again before its next call).
    pub fn settings_changed(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    pub fn watch_settings(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn exported(&self, n: u64) {
        self.exported.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Records why the last export failed (`None`: it succeeded).
    pub fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().expect("tap lock") = error;
    }

    /// (exported, dropped, last error) since the tap was made.
    pub fn counts(&self) -> (u64, u64, Option<String>) {
        (
            self.exported.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.last_error.lock().expect("tap lock").clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use milc_api::{CallSource, Outcome};

    use super::*;

    fn call() -> Call {
        Call {
            at_ms: 1,
            endpoint_id: None,
            model: "m".into(),
            source: CallSource::Cli,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error_kind: None,
            latency_ms: 1,
            ttft_ms: None,
            usage: None,
            cost: None,
            prompt: None,
            price_id: None,
        }
    }

    #[tokio::test]
    async fn an_off_tap_takes_nothing_and_a_full_queue_drops_and_counts_without_waiting() {
        let tap = Tap::default();
        let mut rx = tap.take_receiver().unwrap();
        assert!(tap.take_receiver().is_none(), "one exporter only");
        tap.offer(1, &call(), None, CallDetail::default());
        assert!(rx.try_recv().is_err(), "off: nothing queued");
        assert_eq!(tap.state().counts(), (0, 0, None));

        tap.state().set_on(true);
        for id in 0..QUEUE as i64 + 10 {
            tap.offer(id, &call(), None, CallDetail::default());
        }
        assert_eq!(tap.state().counts().1, 10, "the ten that did not fit");
        match rx.try_recv().unwrap() {
            Tapped::Call(l) => assert_eq!(l.id, 0),
            Tapped::Flush(_) => panic!("a call first"),
        }
    }
}
