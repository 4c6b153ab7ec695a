//! One simulator instance: its configuration and the state every handler shares (models, pacing,
//! faults, the shutdown signal, id generation, the count of live responses).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::faults::{Fault, FaultPicker};
use crate::tokens::mix64;
use crate::window::RateWindow;

/// How the simulator behaves. `Default` is an instant, fault-free server with three models
/// (`milc-sim`, `milc-sim-small`, `milc-sim-reasoning`), for tests and benchmarks;
/// [`SimConfig::realistic`] paces answers like a hosted model.
#[derive(Clone)]
pub struct SimConfig {
    /// Extra delay before a chat or embeddings response starts (headers and first token); a
    /// reasoning model's chat responses wait three times as long.
    pub latency_ms: u64,
    /// Streaming pace in content tokens per second; `0.0` or negative sends as fast as possible.
    pub tokens_per_sec: f64,
    /// Random faults for chat completions, each with a probability in `0..=1`, checked in order
    /// with an RNG seeded by `seed`; the first that fires wins.
    pub faults: Vec<(Fault, f64)>,
    pub seed: u64,
    /// When set, every `/v1/*` request except the health checks needs
    /// `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Served model ids; any other is refused with 404 `model_not_found`. An id containing
    /// "reasoning" reports reasoning tokens and is three times slower to its first token; an id
    /// containing "small" answers like a weaker model (drops details, sometimes ignores length
    /// and format instructions).
    pub models: Vec<String>,
    /// A fixed-window request limit, announced in `x-ratelimit-*` headers; over it, 429.
    pub rate_limit: Option<RateWindow>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency_ms: 0,
            tokens_per_sec: 0.0,
            faults: Vec::new(),
            seed: 0,
            api_key: None,
            models: vec![
                "milc-sim".to_owned(),
                "milc-sim-small".to_owned(),
                "milc-sim-reasoning".to_owned(),
            ],
            rate_limit: None,
        }
    }
}

impl SimConfig {
    /// The default models paced like a hosted model: 40 ms to the first token (120 ms for
    /// `milc-sim-reasoning`), then 40 tokens per second; no faults. Meant for the console's
    /// built-in endpoint, where answers should visibly stream.
    pub fn realistic() -> Self {
        SimConfig {
            latency_ms: 40,
            tokens_per_sec: 40.0,
            ..SimConfig::default()
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("latency_ms", &self.latency_ms)
            .field("tokens_per_sec", &self.tokens_per_sec)
            .field("faults", &self.faults)
            .field("seed", &self.seed)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("models", &self.models)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// State shared by all handlers of one simulator instance.
pub(crate) struct Shared {
    pub(crate) models: Vec<String>,
    latency: Duration,
    pub(crate) interval: Option<Duration>,
    pub(crate) api_key: Option<String>,
    pub(crate) faults: FaultPicker,
    pub(crate) shutdown: CancellationToken,
    id_salt: u64,
    next_id: AtomicU64,
    /// Hung requests and paced streams currently alive; lets tests prove that a client
    /// disconnect really ends the work.
    pub(crate) live: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(config: SimConfig, shutdown: CancellationToken) -> Self {
        let interval = (config.tokens_per_sec > 0.0 && config.tokens_per_sec.is_finite())
            .then(|| Duration::from_secs_f64(1.0 / config.tokens_per_sec));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Shared {
            models: config.models,
            latency: Duration::from_millis(config.latency_ms),
            interval,
            api_key: config.api_key,
            faults: FaultPicker::new(config.faults, config.seed),
            shutdown,
            id_salt: mix64(now),
            next_id: AtomicU64::new(0),
            live: AtomicUsize::new(0),
        }
    }

    /// Unique, random-looking ids without a global RNG lock.
    fn unique_hex(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let a = mix64(self.id_salt ^ n);
        let b = mix64(a ^ 0x5bd1_e995);
        format!("{a:016x}{:08x}", b as u32)
    }

    pub(crate) fn chat_id(&self) -> String {
        format!("chatcmpl-{}", self.unique_hex())
    }

    pub(crate) fn request_id(&self) -> String {
        format!("req_{}", self.unique_hex())
    }

    /// `times` × the configured latency after `arrived`, cut short by shutdown so `stop()` never
    /// waits on it. Precise to about 0.1 ms: tokio's timers round up to the next millisecond
    /// (and the reactor's wait rounds once more), which made a 50 ms latency 51–52 ms, so the
    /// last 2 ms are slept on a blocking thread with the OS's fine-grained timer.
    pub(crate) async fn latency(&self, arrived: std::time::Instant, times: u32) {
        if self.latency.is_zero() {
            return;
        }
        let deadline = arrived + self.latency.saturating_mul(times);
        let wait = async {
            if let Some(coarse) = deadline.checked_sub(Duration::from_millis(2)) {
                tokio::time::sleep_until(coarse.into()).await;
            }
            let rest = deadline.saturating_duration_since(std::time::Instant::now());
            if !rest.is_zero() {
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = self.shutdown.cancelled() => {}
        }
    }
}

/// Counts one long-lived response in `Shared::live` for as long as it exists.
pub(crate) struct LiveGuard(Arc<Shared>);

impl LiveGuard {
    pub(crate) fn new(sim: &Arc<Shared>) -> Self {
        sim.live.fetch_add(1, Ordering::Relaxed);
        LiveGuard(Arc::clone(sim))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}
