//! milc-gateway: an OpenAI-compatible server in front of the console's endpoints. Clients send a
//! route's name as `model`; the gateway picks an arm (weighted, sticky per caller), sends the
//! request upstream with the arm's endpoint, token and prompt version, passes the answer on as
//! it arrives, and logs the call in the console's call log (source `gateway`) off the response
//! path. Routes, keys and prices are reloaded from the store when they change (checked every
//! second); the canary judge runs beside it. This file owns the server: state, router, keys and
//! their limits, reloads, and the drain on shutdown; `proxy.rs` the two forwarding handlers.

mod assign;
mod error;
mod judge;
mod proxy;
mod sse;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use milc_api::gateway::{Feedback, GatewayKey};
use milc_api::Cost;
use milc_core::gateway::{key_hash, LiveRoute, LiveRoutes};
use milc_core::Console;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use assign::{sticky, weighted};
use error::ApiError;

/// How a gateway runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Requests with a bigger body are refused with 413.
    pub body_limit: usize,
    /// How often the store is checked for changed routes, keys and prices.
    pub reload_every: Duration,
    /// Run the canary judge in this process.
    pub judge: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            body_limit: 4 << 20,
            reload_every: Duration::from_secs(1),
            judge: true,
        }
    }
}

/// A key as the gateway checks it.
struct Key {
    key: GatewayKey,
    hash: [u8; 32],
}

/// A key's use in the current minute and today.
#[derive(Default)]
struct Usage {
    minute: i64,
    requests: u32,
    day: i64,
    spent_pico: i64,
}

pub(crate) struct Shared {
    pub(crate) console: Arc<Console>,
    routes: RwLock<Arc<LiveRoutes>>,
    keys: RwLock<Arc<Vec<Key>>>,
    usage: Mutex<HashMap<i64, Usage>>,
    loaded: std::sync::atomic::AtomicBool,
    /// Logging and streaming tasks: shutdown waits for them.
    pub(crate) tasks: TaskTracker,
    options: Options,
    /// When each (route id, arm) on a deprecated endpoint was last warned about.
    deprecated_warned: Mutex<HashMap<(i64, String), Instant>>,
}

/// How often serving on a deprecated endpoint is warned about, per arm.
const DEPRECATED_WARN_EVERY: Duration = Duration::from_secs(3600);

impl Shared {
    /// Warns in the log that `arm` of `route` serves on a deprecated endpoint (its sunset and
    /// replacement): at its first call, then at most once an hour.
    pub(crate) fn serving(&self, route: &LiveRoute, arm: &str, p: &milc_core::chat::Prepared) {
        let Some(w) = milc_core::retirement::warning(p.endpoint()) else {
            return;
        };
        let now = Instant::now();
        let mut warned = self.deprecated_warned.lock().expect("warned lock");
        let key = (route.id, arm.to_owned());
        if warned
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < DEPRECATED_WARN_EVERY)
        {
            return;
        }
        warned.insert(key, now);
        tracing::warn!(route = %route.model, arm, "serving on a deprecated endpoint: {w}");
    }

    pub(crate) fn route(&self, model: &str) -> Result<Arc<LiveRoute>, ApiError> {
        let routes = self.routes.read().expect("routes lock").clone();
        if let Some(r) = routes.routes.iter().find(|r| r.model == model) {
            return Ok(r.clone());
        }
        if let Some((_, why)) = routes.broken.iter().find(|(m, _)| m == model) {
            return Err(ApiError::unavailable(format!(
                "route '{model}' cannot serve: {why}"
            )));
        }
        let known: Vec<String> = routes.routes.iter().map(|r| r.model.clone()).collect();
        Err(ApiError::not_found_model(model, &known))
    }

    /// The key a request presents, checked against every active key's hash in constant time.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<GatewayKey, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "You didn't provide an API key. Send `Authorization: Bearer KEY` with a key from `milc gateway keys create NAME`.",
                )
            })?;
        let hash = key_hash(presented);
        let keys = self.keys.read().expect("keys lock").clone();
        let mut found = None;
        for k in keys.iter() {
            // No early exit: every key is compared, every byte.
            let diff = k.hash.iter().zip(&hash).fold(0u8, |d, (a, b)| d | (a ^ b));
            if diff == 0 {
                found = Some(k.key.clone());
            }
        }
        found.ok_or_else(|| ApiError::unauthorized("Incorrect API key provided."))
    }

    /// Counts a request against its key's limits: 429 with `Retry-After` when over.
    pub(crate) fn admit(&self, key: &GatewayKey) -> Result<(), ApiError> {
        let now = milc_core::db::now_ms();
        let (minute, day) = (now / 60_000, now / 86_400_000);
        let mut usage = self.usage.lock().expect("usage lock");
        let u = usage.entry(key.id).or_default();
        if u.minute != minute {
            u.minute = minute;
            u.requests = 0;
        }
        if u.day != day {
            u.day = day;
            u.spent_pico = 0;
        }
        if let Some(limit) = key.daily_budget {
            if u.spent_pico >= limit.pico_usd {
                let left_s = ((day + 1) * 86_400_000 - now) / 1000;
                return Err(ApiError::rate_limited(
                    format!(
                        "Key '{}' has spent its daily budget of ${} (UTC day).",
                        key.name,
                        limit.usd()
                    ),
                    left_s as u64,
                ));
            }
        }
        if let Some(limit) = key.rate_per_min {
            if u.requests >= limit {
                let left_s = ((minute + 1) * 60_000 - now + 999) / 1000;
                return Err(ApiError::rate_limited(
                    format!(
                        "Key '{}' is limited to {limit} requests per minute.",
                        key.name
                    ),
                    left_s as u64,
                ));
            }
        }
        u.requests += 1;
        Ok(())
    }

    /// Adds a logged call's cost to its key's spend today.
    pub(crate) fn spent(&self, key_id: i64, cost: Option<Cost>) {
        let Some(c) = cost else { return };
        let day = milc_core::db::now_ms() / 86_400_000;
        let mut usage = self.usage.lock().expect("usage lock");
        let u = usage.entry(key_id).or_default();
        if u.day != day {
            u.day = day;
            u.spent_pico = 0;
        }
        u.spent_pico += c.pico_usd;
    }

    async fn reload(&self) -> Result<(), milc_core::Error> {
        let routes = self.console.live_routes().await?;
        for (model, why) in &routes.broken {
            tracing::warn!(route = model, reason = why, "route cannot serve");
        }
        for r in &routes.routes {
            for a in &r.arms {
                if let Err(why) = &a.prepared {
                    tracing::warn!(route = %r.model, arm = %a.name, "{why}");
                }
            }
        }
        let keys = self
            .console
            .gateway_auth_keys()
            .await?
            .into_iter()
            .map(|(key, hash)| Key { key, hash })
            .collect();
        *self.routes.write().expect("routes lock") = Arc::new(routes);
        *self.keys.write().expect("keys lock") = Arc::new(keys);
        self.refresh_spend().await?;
        self.loaded.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Today's spend per key from the store (other processes may log with the same keys).
    async fn refresh_spend(&self) -> Result<(), milc_core::Error> {
        let now = milc_core::db::now_ms();
        let day = now / 86_400_000;
        let spend = self.console.gateway_key_spend(day * 86_400_000).await?;
        let mut usage = self.usage.lock().expect("usage lock");
        for (id, cost) in spend {
            let u = usage.entry(id).or_default();
            if u.day != day {
                u.day = day;
            }
            u.spent_pico = u.spent_pico.max(cost.pico_usd);
        }
        Ok(())
    }
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    shared: Arc<Shared>,
}

impl Gateway {
    /// Loads the routes and keys, then serves on `listener` until [`Gateway::stop`].
    pub async fn start(
        console: Arc<Console>,
        listener: TcpListener,
        options: Options,
    ) -> Result<Self, milc_core::Error> {
        let addr = listener
            .local_addr()
            .map_err(|e| milc_core::Error::invalid("listen", e.to_string()))?;
        let shared = Arc::new(Shared {
            console,
            routes: RwLock::new(Arc::new(LiveRoutes {
                routes: Vec::new(),
                broken: Vec::new(),
            })),
            keys: RwLock::new(Arc::new(Vec::new())),
            usage: Mutex::new(HashMap::new()),
            loaded: false.into(),
            tasks: TaskTracker::new(),
            options,
            deprecated_warned: Mutex::new(HashMap::new()),
        });
        // The fingerprint before the load: a change made in between is seen at the first check.
        let seen = shared.console.gateway_fingerprint().await?;
        shared.reload().await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(watch(shared.clone(), seen, shutdown.clone()));
        if shared.options.judge {
            tokio::spawn(judge::run(shared.clone(), shutdown.clone()));
        }
        let app = router(shared.clone());
        let stop = shutdown.clone();
        // Each SSE event goes out as it is written: without NODELAY, Nagle holds small writes
        // until the client's delayed ACK (~40 ms a chunk).
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        Ok(Self {
            addr,
            shutdown,
            server,
            shared,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (streams included), then waits until
    /// every call is logged: nothing is lost.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "gateway server task ended badly");
        }
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

/// Reloads routes, keys and prices when the store's fingerprint changes (checked every
/// `reload_every`, and at once after a change made through this process's console), and
/// refreshes the keys' spend every few seconds.
async fn watch(shared: Arc<Shared>, seen: String, stop: CancellationToken) {
    let mut seen = Some(seen);
    let mut last_spend = Instant::now();
    let mut changes = shared.console.gateway_changes();
    let mut console_gone = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(shared.options.reload_every) => {}
            // A change made in this process (the window, a verdict): reload at once.
            r = changes.changed(), if !console_gone => console_gone = r.is_err(),
        }
        match shared.console.gateway_fingerprint().await {
            Ok(f) if Some(&f) != seen.as_ref() => match shared.reload().await {
                Ok(()) => {
                    tracing::info!("routes reloaded");
                    seen = Some(f);
                }
                Err(e) => tracing::warn!(error = %e, "cannot reload routes"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the store"),
        }
        if last_spend.elapsed() >= Duration::from_secs(5) {
            last_spend = Instant::now();
            if let Err(e) = shared.refresh_spend().await {
                tracing::warn!(error = %e, "cannot read key spend");
            }
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(proxy::chat))
        .route("/v1/embeddings", post(proxy::embeddings))
        .route("/v1/models", get(models))
        .route("/v1/feedback", post(feedback))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(unknown)
        .with_state(shared)
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(s): State<Arc<Shared>>) -> Response {
    let store = s.console.gateway_fingerprint().await;
    let loaded = s.loaded.load(std::sync::atomic::Ordering::SeqCst);
    let routes = s.routes.read().expect("routes lock").routes.len();
    match store {
        Ok(_) if loaded => Json(json!({"status": "ready", "routes": routes})).into_response(),
        Ok(_) => ApiError::unavailable("routes are not loaded yet").into_response(),
        Err(e) => ApiError::unavailable(format!("the store is unreachable: {e}")).into_response(),
    }
}

async fn models(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Result<Response, ApiError> {
    s.authorize(&headers)?;
    let routes = s.routes.read().expect("routes lock").clone();
    let data: Vec<_> = routes
        .routes
        .iter()
        .map(|r| r.model.as_str())
        .chain(routes.broken.iter().map(|(m, _)| m.as_str()))
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "milc-gateway"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})).into_response())
}

async fn feedback(State(s): State<Arc<Shared>>, req: Request) -> Result<Response, ApiError> {
    let key = s.authorize(req.headers())?;
    let body = proxy::read_body(&s, req).await?;
    let f: Feedback = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "body",
            format!("expected {{\"call_id\", \"score\" (0..1), \"comment\"?}}: {e}"),
        )
    })?;
    s.console
        .record_feedback(&f, Some(key.id))
        .await
        .map_err(|e| match e {
            milc_core::Error::Invalid { field, message } if field == "call_id" => {
                ApiError::not_found(message)
            }
            e => e.into(),
        })?;
    Ok(Json(json!({"ok": true})).into_response())
}

async fn unknown(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "Unknown request URL: {} {}",
        req.method(),
        req.uri().path()
    ))
}
