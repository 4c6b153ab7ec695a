//! The Server-Sent-Events side of chat completions: rendering a completion as
//! `chat.completion.chunk` events into one buffer, and releasing that buffer at the configured
//! token pace without spawning anything.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::completion::{Completion, Usage};
use crate::state::{LiveGuard, Shared};

/// How a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Finish chunks, the usage chunk (when requested and `with_usage`), `[DONE]`.
    Normal { with_usage: bool },
    /// Right after the role chunk, one event whose data is not valid JSON; then close.
    Malformed,
    /// After three content steps, an `{"error": …}` event; then close without `[DONE]`.
    MidStreamError,
}

const MID_STREAM_TOKENS: usize = 3;
const MID_STREAM_ERROR: &[u8] = b"data: {\"error\":{\"message\":\"simulated failure mid-stream\",\
\"type\":\"server_error\",\"param\":null,\"code\":\"internal_error\"}}\n\n";

/// A whole SSE response body rendered up front into one buffer, cut into the groups that are
/// sent one pacing interval apart. One allocation per stream instead of one per token; sending a
/// group is a refcounted slice of the buffer.
#[derive(Debug, Clone)]
pub struct SseBody {
    pub bytes: Bytes,
    /// End offset of each group; the last one is `bytes.len()`.
    pub group_ends: Vec<usize>,
}

/// Renders chunks by splicing a preformatted prefix (id, created, model) with the few varying
/// parts, instead of building and serialising a value per token.
struct ChunkWriter {
    buf: Vec<u8>,
    prefix: Vec<u8>,
    usage_null: bool,
}

impl ChunkWriter {
    fn new(id: &str, created: u64, model: &str, usage_null: bool, capacity: usize) -> Self {
        let mut prefix = Vec::with_capacity(96 + id.len() + model.len());
        prefix.extend_from_slice(b"data: {\"id\":");
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut prefix, id);
        let _ = write!(
            prefix,
            ",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":"
        );
        let _ = serde_json::to_writer(&mut prefix, model);
        prefix.extend_from_slice(b",\"choices\":[");
        ChunkWriter {
            buf: Vec::with_capacity(capacity),
            prefix,
            usage_null,
        }
    }

    fn end_chunk(&mut self) {
        self.buf.extend_from_slice(b"]");
        if self.usage_null {
            self.buf.extend_from_slice(b",\"usage\":null");
        }
        self.buf.extend_from_slice(b"}\n\n");
    }

    fn role(&mut self, index: usize) {
        self.buf.extend_from_slice(&self.prefix);
        let _ = write!(
            self.buf,
            "{{\"index\":{index},\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\
             \"logprobs\":null,\"finish_reason\":null}}"
        );
        self.end_chunk();
    }

    fn content(&mut self, index: usize, piece: &str) {
        self.buf.extend_from_slice(&self.prefix);
        let _ = write!(self.buf, "{{\"index\":{index},\"delta\":{{\"content\":");
        let _ = serde_json::to_writer(&mut self.buf, piece);
        self.buf
            .extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}");
        self.end_chunk();
    }

    fn finish(&mut self, index: usize, reason: &str) {
        self.buf.extend_from_slice(&self.prefix);
        let _ = write!(
            self.buf,
            "{{\"index\":{index},\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"{reason}\"}}"
        );
        self.end_chunk();
    }

    fn usage(&mut self, usage: &Usage) {
        self.buf.extend_from_slice(&self.prefix);
        self.buf.extend_from_slice(b"],\"usage\":");
        let _ = serde_json::to_writer(&mut self.buf, usage);
        self.buf.extend_from_slice(b"}\n\n");
    }

    fn malformed(&mut self) {
        self.buf.extend_from_slice(&self.prefix);
        self.buf
            .extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":\"the qu\n\n");
    }
}

/// Renders the complete event stream for `completion`.
pub fn render_sse(
    id: &str,
    created: u64,
    model: &str,
    completion: &Completion,
    include_usage: bool,
    end: StreamEnd,
) -> SseBody {
    let pieces: usize = completion.choices.iter().map(|c| c.ends.len()).sum();
    let per_chunk = 140 + id.len() + model.len();
    let capacity = (pieces + 3 * completion.choices.len() + 2) * per_chunk + 256;
    let mut w = ChunkWriter::new(id, created, model, include_usage, capacity);
    let mut group_ends = Vec::new();

    // A leading comment: real servers and gateways send keep-alive comments, and a client that
    // does not skip them breaks on its very first read.
    w.buf.extend_from_slice(b": milc-sim\n\n");
    for index in 0..completion.choices.len() {
        w.role(index);
    }

    if end == StreamEnd::Malformed {
        w.malformed();
        group_ends.push(w.buf.len());
        return SseBody {
            bytes: Bytes::from(w.buf),
            group_ends,
        };
    }

    let mut steps = completion
        .choices
        .iter()
        .map(|c| c.ends.len())
        .max()
        .unwrap_or(0);
    if end == StreamEnd::MidStreamError {
        steps = steps.min(MID_STREAM_TOKENS);
    }
    // The first content step travels with the role chunk and the tail with the last step, so a
    // stream of N tokens takes (N - 1) intervals: time to first token is `latency_ms` alone.
    for k in 0..steps {
        if k > 0 {
            group_ends.push(w.buf.len());
        }
        for (index, choice) in completion.choices.iter().enumerate() {
            if let Some(piece) = choice.piece(k) {
                w.content(index, piece);
            }
        }
    }

    match end {
        StreamEnd::MidStreamError => w.buf.extend_from_slice(MID_STREAM_ERROR),
        StreamEnd::Normal { with_usage } => {
            for (index, choice) in completion.choices.iter().enumerate() {
                w.finish(index, choice.finish_reason);
            }
            if include_usage && with_usage {
                w.usage(&completion.usage);
            }
            w.buf.extend_from_slice(b"data: [DONE]\n\n");
        }
        StreamEnd::Malformed => {}
    }
    group_ends.push(w.buf.len());
    SseBody {
        bytes: Bytes::from(w.buf),
        group_ends,
    }
}

struct Pacer {
    bytes: Bytes,
    group_ends: Vec<usize>,
    sent: usize,
    next: usize,
    start: Instant,
    interval: Duration,
    shutdown: CancellationToken,
    _live: LiveGuard,
}

impl Pacer {
    fn due(&self, group: usize) -> Instant {
        self.start + self.interval.saturating_mul(group as u32)
    }
}

/// The HTTP body for an SSE rendering: group k is released at `start + k · interval`. Nothing is
/// spawned; when the client disconnects hyper drops the body and with it the timer. On shutdown
/// the rest is flushed at once, so `stop()` is prompt and clients still get complete streams.
pub fn paced_body(sse: SseBody, interval: Option<Duration>, sim: &Arc<Shared>) -> Body {
    let interval = match interval {
        Some(i) if sse.group_ends.len() > 1 => i,
        _ => return Body::from(sse.bytes),
    };
    let pacer = Pacer {
        bytes: sse.bytes,
        group_ends: sse.group_ends,
        sent: 0,
        next: 0,
        start: Instant::now(),
        interval,
        shutdown: sim.shutdown.clone(),
        _live: LiveGuard::new(sim),
    };
    let stream = futures_util::stream::unfold(pacer, |mut p| async move {
        if p.next >= p.group_ends.len() {
            return None;
        }
        let flush_all = if p.shutdown.is_cancelled() {
            true
        } else {
            tokio::select! {
                biased;
                _ = p.shutdown.cancelled() => true,
                _ = tokio::time::sleep_until(p.due(p.next)) => false,
            }
        };
        if flush_all {
            p.next = p.group_ends.len();
        } else {
            // Release every group already due, so a stream that fell behind under load catches
            // up in one write instead of drifting later and later.
            let now = Instant::now();
            p.next += 1;
            while p.next < p.group_ends.len() && p.due(p.next) <= now {
                p.next += 1;
            }
        }
        let end = p.group_ends[p.next - 1];
        let chunk = p.bytes.slice(p.sent..end);
        p.sent = end;
        Some((Ok::<_, Infallible>(chunk), p))
    });
    Body::from_stream(stream)
}
