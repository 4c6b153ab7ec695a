//! milc-sim: a local OpenAI-compatible HTTP server with deterministic output, realistic
//! streaming and injectable faults, for tests, benchmarks and the first-run demo. This file owns
//! the router (auth, request ids, the small endpoints) and the server lifecycle (`start` /
//! `SimHandle::stop`); the configuration and the handlers' shared state are in `state.rs`.
//!
//! Endpoints, all under `/v1`: `GET models`, `GET models/{id}`, `GET health/live`,
//! `GET health/ready`, `POST chat/completions` (see `chat.rs`; what a text answer says is in
//! `answer.rs`), `POST embeddings`.

mod answer;
mod chat;
mod completion;
mod embeddings;
mod error;
mod faults;
mod sse;
mod state;
mod structured;
mod tokens;
mod window;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
pub use crate::faults::{parse_fault_spec, Fault};
use crate::state::Shared;
pub use crate::state::SimConfig;
pub use crate::window::{parse_rate_window, RateWindow};

/// Fixed so `/v1/models` is byte-for-byte reproducible.
const MODELS_CREATED: u64 = 1_700_000_000;

fn build(config: SimConfig, shutdown: CancellationToken) -> (Router, Arc<Shared>) {
    let rate_limit = config
        .rate_limit
        .map(|w| Arc::new(window::WindowState::new(w)));
    let sim = Arc::new(Shared::new(config, shutdown));
    let mut api = Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle));
    if let Some(state) = rate_limit {
        api = api.route_layer(middleware::from_fn_with_state(state, window::limit));
    }
    let router = api
        .route_layer(middleware::from_fn_with_state(sim.clone(), require_api_key))
        .route("/v1/health/live", get(live))
        .route("/v1/health/ready", get(ready))
        .fallback(unknown_url)
        .layer(middleware::map_response_with_state(
            sim.clone(),
            add_request_id,
        ))
        .with_state(sim.clone());
    (router, sim)
}

/// The simulator as a router, to mount in another axum app or serve yourself. Hung requests
/// (fault `hang`) then only end when the client disconnects; use [`start`] for a server whose
/// `stop()` also releases them.
pub fn router(config: SimConfig) -> Router {
    build(config, CancellationToken::new()).0
}

/// A running simulator; dropping it without `stop()` still shuts the server down, in the
/// background.
pub struct SimHandle {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    #[cfg_attr(not(test), allow(dead_code))]
    shared: Arc<Shared>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT/v1`; a wildcard bind address is replaced by loopback so the URL is
    /// connectable.
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}/v1", SocketAddr::new(ip, self.addr.port()))
    }

    /// Graceful shutdown: stops accepting, answers hung requests with 503, flushes paced streams
    /// to their end at once, and waits for every connection task to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!("milc-sim server task failed: {e}");
            }
        }
    }

    #[cfg(test)]
    fn live_responses(&self) -> usize {
        self.shared.live.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Many benchmark clients connect at once; the default backlog (1024 in tokio) would drop SYNs
/// and show up as one-second connect stalls in time-to-first-token.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (port 0 picks a free port) and serves the simulator on the current tokio
/// runtime until [`SimHandle::stop`].
pub async fn start(addr: SocketAddr, config: SimConfig) -> std::io::Result<SimHandle> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let addr = listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let (app, shared) = build(config, shutdown.clone());
    // SSE writes are small; Nagle plus delayed ACKs would add up to 40 ms per token.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!("failed to set TCP_NODELAY: {e}");
        }
    });
    let signal = shutdown.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::warn!("milc-sim server stopped with an error: {e}");
        }
    });
    tracing::debug!(%addr, "milc-sim listening");
    Ok(SimHandle {
        addr,
        shutdown,
        task: Some(task),
        shared,
    })
}

async fn require_api_key(State(sim): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some(key) = sim.api_key.as_deref() else {
        return next.run(req).await;
    };
    let provided = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match provided {
        Some(token) if token == key => next.run(req).await,
        Some(_) => ApiError::invalid_api_key("Incorrect API key provided.").into_response(),
        None => ApiError::invalid_api_key(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
        .into_response(),
    }
}

async fn add_request_id(State(sim): State<Arc<Shared>>, mut res: Response) -> Response {
    if !res.headers().contains_key("x-request-id") {
        if let Ok(v) = HeaderValue::from_str(&sim.request_id()) {
            res.headers_mut().insert("x-request-id", v);
        }
    }
    res
}

fn model_json(id: &str) -> serde_json::Value {
    json!({"id": id, "object": "model", "created": MODELS_CREATED, "owned_by": "milc-sim"})
}

async fn list_models(State(sim): State<Arc<Shared>>) -> Response {
    let data: Vec<_> = sim.models.iter().map(|m| model_json(m)).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn get_model(State(sim): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if sim.models.contains(&id) {
        Json(model_json(&id)).into_response()
    } else {
        ApiError::model_not_found(&id).into_response()
    }
}

async fn live() -> Response {
    Json(json!({"status": "live"})).into_response()
}

async fn ready() -> Response {
    Json(json!({"status": "ready"})).into_response()
}

async fn unknown_url(method: Method, uri: Uri) -> Response {
    ApiError::unknown_url(method.as_str(), uri.path()).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn debug_redacts_the_api_key() {
        let config = SimConfig {
            api_key: Some("sk-very-secret".into()),
            ..SimConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(printed.contains("<redacted>"), "{printed}");
        assert!(!printed.contains("sk-very-secret"), "{printed}");
        assert!(format!("{:?}", SimConfig::default()).contains("api_key: None"));
    }

    async fn wait_until_idle(sim: &SimHandle) -> bool {
        for _ in 0..200 {
            if sim.live_responses() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    #[tokio::test]
    async fn client_disconnect_ends_hung_requests_and_paced_streams() {
        let config = SimConfig {
            tokens_per_sec: 2.0,
            ..SimConfig::default()
        };
        let sim = start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let url = format!("{}/chat/completions", sim.base_url());
        let body = json!({"model": "milc-sim", "messages": [{"role": "user", "content": "hi"}],
            "stream": true});

        // A slow stream the client abandons after the first bytes.
        let res = client().post(&url).json(&body).send().await.unwrap();
        let mut res = res;
        assert!(res.chunk().await.unwrap().is_some());
        assert_eq!(sim.live_responses(), 1);
        drop(res);
        assert!(
            wait_until_idle(&sim).await,
            "stream still running after disconnect"
        );

        // A hung request the client gives up on.
        let hung = client()
            .post(&url)
            .header("x-sim-fault", "hang")
            .timeout(Duration::from_millis(300))
            .json(&body)
            .send()
            .await;
        assert!(hung.unwrap_err().is_timeout());
        assert!(
            wait_until_idle(&sim).await,
            "hung handler still alive after disconnect"
        );
        sim.stop().await;
    }
}
