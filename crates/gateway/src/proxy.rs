//! The two forwarding handlers. A chat request: key and limits, body, route, arm (sticky or
//! weighted), the arm's upstream body (core), upstream opened with retries (fallback arm when it
//! fails), then the answer: JSON read whole, or SSE passed on event by event as it arrives —
//! a task reads the upstream and feeds the response body, so a client that goes away cancels
//! the upstream at once. Each call is logged off the response path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use milc_api::{CallError, ErrorKind};
use milc_core::gateway::{GatewayCall, LiveArm, LiveRoute, Sticky};
use milc_core::llm::client::reported_usage;
use milc_core::llm::forward::{self, Opened};
use milc_core::llm::ratelimit::RateLimit;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::sse::{self, Splitter};
use crate::{assign, Shared};

/// Headers of an upstream answer a client may need (the rest are the gateway's own).
const PASSED_ON: [&str; 8] = [
    "x-request-id",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

pub(crate) async fn read_body(s: &Shared, req: Request) -> Result<Bytes, ApiError> {
    let limit = s.options.body_limit;
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("body", format!("The body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "body",
            "The body must be a JSON object.",
        ));
    }
    Ok(v)
}

/// Who the caller is, for sticky routes.
fn caller(route: &LiveRoute, headers: &HeaderMap, body: &Value) -> Option<String> {
    match route.sticky.as_ref()? {
        Sticky::Header(h) => headers.get(h.as_str())?.to_str().ok().map(str::to_owned),
        Sticky::User => body["user"].as_str().map(str::to_owned),
    }
    .filter(|c| !c.is_empty())
}

fn pick(route: &LiveRoute, caller: Option<&str>) -> Result<usize, ApiError> {
    let arms: Vec<(&str, f64)> = route
        .arms
        .iter()
        .map(|a| (a.name.as_str(), a.weight))
        .collect();
    match caller {
        Some(c) => assign::sticky(&route.model, &arms, c),
        None => assign::weighted(&arms, rand::random::<f64>()),
    }
    .ok_or_else(|| {
        ApiError::unavailable(format!(
            "route '{}' has no arm with a weight above 0",
            route.model
        ))
    })
}

/// Everything one request carries from arm to arm.
#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    route: Arc<LiveRoute>,
    key_id: i64,
    caller: Option<String>,
    embeddings: bool,
}

impl Ctx {
    fn call(
        &self,
        arm: &LiveArm,
        fallback_for: Option<&str>,
        request: Value,
        stream: bool,
    ) -> GatewayCall {
        GatewayCall {
            // Each upstream call its own: a failed arm's and its fallback's are two calls.
            public_id: format!("gw-{:032x}", rand::random::<u128>()),
            route_id: self.route.id,
            arm: arm.name.clone(),
            fallback_for: fallback_for.map(str::to_owned),
            key_id: Some(self.key_id),
            caller: self.caller.clone(),
            embeddings: self.embeddings,
            stream,
            status: None,
            error: None,
            latency: Duration::ZERO,
            ttft: None,
            usage: None,
            request,
            output: String::new(),
            deltas: 0,
            finish_reason: None,
            response_model: None,
        }
    }

    /// Logs `g` on a tracked task: the response never waits for the log, and shutdown does.
    fn log(&self, arm: usize, g: GatewayCall) {
        let shared = self.shared.clone();
        let route = self.route.clone();
        let key_id = self.key_id;
        self.shared.tasks.spawn(async move {
            let Ok(p) = &route.arms[arm].prepared else {
                return;
            };
            match shared.console.log_gateway_call(p, g).await {
                Ok((_, cost)) => shared.spent(key_id, cost),
                Err(e) => tracing::error!(error = %e, "cannot log a gateway call"),
            }
        });
    }
}

/// A call on its way upstream: if the request is dropped before the call is logged otherwise
/// (the client went away while the upstream was answering), it is logged as cancelled.
struct Pending {
    ctx: Ctx,
    arm: usize,
    start: Instant,
    g: Option<GatewayCall>,
}

impl Pending {
    fn g(&mut self) -> &mut GatewayCall {
        self.g.as_mut().expect("taken only once")
    }

    fn take(mut self) -> GatewayCall {
        self.g.take().expect("taken only once")
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut g) = self.g.take() {
            g.latency = self.start.elapsed();
            g.error = Some(milc_core::llm::client::cancelled());
            self.ctx.log(self.arm, g);
        }
    }
}

pub(crate) async fn chat(State(s): State<Arc<Shared>>, req: Request) -> Result<Response, ApiError> {
    forward_request(s, req, false).await
}

pub(crate) async fn embeddings(
    State(s): State<Arc<Shared>>,
    req: Request,
) -> Result<Response, ApiError> {
    forward_request(s, req, true).await
}

async fn forward_request(
    s: Arc<Shared>,
    req: Request,
    embeddings: bool,
) -> Result<Response, ApiError> {
    let key = s.authorize(req.headers())?;
    s.admit(&key)?;
    let headers = req.headers().clone();
    let body = parse_json(&read_body(&s, req).await?)?;
    let model = body["model"].as_str().ok_or_else(|| {
        ApiError::bad_request(
            "model",
            "You must provide a model parameter (a route's name).",
        )
    })?;
    let route = s.route(model)?;
    let caller = caller(&route, &headers, &body);
    let first = pick(&route, caller.as_deref())?;
    let ctx = Ctx {
        shared: s.clone(),
        route: route.clone(),
        key_id: key.id,
        caller,
        embeddings,
    };
    let wants_stream = !embeddings && body["stream"].as_bool() == Some(true);
    let wants_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);

    let mut arm_i = first;
    let mut fallback_for: Option<String> = None;
    loop {
        let arm = &route.arms[arm_i];
        let prepared = match &arm.prepared {
            Ok(p) => p,
            Err(why) => match (arm.fallback, &fallback_for) {
                (Some(fb), None) => {
                    fallback_for = Some(arm.name.clone());
                    arm_i = fb;
                    continue;
                }
                _ => return Err(ApiError::unavailable(why.clone())),
            },
        };
        s.serving(&route, &arm.name, prepared);
        let (upstream_body, placeholders) = if embeddings {
            (
                milc_core::gateway::upstream_embeddings_body(prepared, body.clone())?,
                None,
            )
        } else {
            let (b, p) = milc_core::gateway::upstream_chat_body(prepared, body.clone())?;
            (b, Some(p))
        };
        let bytes = Bytes::from(serde_json::to_vec(&upstream_body).expect("JSON serializes"));
        let start = Instant::now();
        let pending = Pending {
            ctx: ctx.clone(),
            arm: arm_i,
            start,
            g: Some(ctx.call(arm, fallback_for.as_deref(), upstream_body, wants_stream)),
        };
        // Never cancelled: a client that goes away drops this future, and the upstream with it.
        let cancel = CancellationToken::new();
        let ticket = prepared.gate().acquire().await;
        let path = if embeddings {
            "embeddings"
        } else {
            "chat/completions"
        };
        let (opened, _attempts) = ctx
            .shared
            .console
            .client()
            .open(prepared.target(), path, bytes, wants_stream, &cancel)
            .await;
        let failed = match opened {
            Opened::Ok(resp) => {
                if let Some(r) = RateLimit::from_headers(resp.headers()) {
                    prepared.gate().observe(&ticket, &r);
                }
                drop(ticket);
                let restore = placeholders.filter(|p| !p.is_empty());
                return Ok(if wants_stream {
                    stream_answer(
                        ctx,
                        arm_i,
                        pending.take(),
                        resp,
                        start,
                        wants_usage,
                        restore,
                    )
                } else {
                    json_answer(&ctx, arm_i, pending, resp, start, restore).await
                });
            }
            Opened::Upstream {
                status,
                headers,
                body,
                error,
            } => {
                if let Some(r) = RateLimit::from_headers(&headers) {
                    prepared.gate().observe(&ticket, &r);
                }
                (Some((status, headers, body)), error)
            }
            Opened::Failed(error) => (None, error),
        };
        let (answer, error) = failed;
        let mut g = pending.take();
        g.status = error.status;
        g.latency = start.elapsed();
        g.error = Some(error.clone());
        let public_id = g.public_id.clone();
        ctx.log(arm_i, g);
        // The upstream failed: its fallback answers, if it has one and it is not one already.
        let upstream_failed = error.status.is_none_or(|s| s == 429 || s >= 500);
        if let (Some(fb), None, true) = (arm.fallback, &fallback_for, upstream_failed) {
            fallback_for = Some(arm.name.clone());
            arm_i = fb;
            continue;
        }
        let mut resp = match answer {
            Some((status, up_headers, body)) => {
                let mut r = Response::new(Body::from(body));
                *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                if let Some(ct) = up_headers.get(header::CONTENT_TYPE) {
                    r.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
                }
                pass_on(&up_headers, r.headers_mut());
                r
            }
            None => axum::response::IntoResponse::into_response(ApiError::upstream(&error)),
        };
        tag(&mut resp, &public_id, &route.arms[arm_i].name);
        return Ok(resp);
    }
}

fn pass_on(from: &reqwest::header::HeaderMap, to: &mut HeaderMap) {
    for name in PASSED_ON {
        if let Some(v) = from.get(name) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                to.insert(HeaderName::from_static(name), v);
            }
        }
    }
}

fn tag(resp: &mut Response, public_id: &str, arm: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(public_id) {
        h.insert("x-milc-call-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(arm) {
        h.insert("x-milc-arm", v);
    }
}

/// What the gateway reads of a stream chunk (borrowed where it can: most chunks carry a
/// token or two, and a whole `Value` per chunk costs more than the rest of the hop).
#[derive(serde::Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(serde::Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
}

async fn json_answer(
    ctx: &Ctx,
    arm: usize,
    mut pending: Pending,
    resp: reqwest::Response,
    start: Instant,
    restore: Option<milc_core::redact::Placeholders>,
) -> Response {
    let status = resp.status().as_u16();
    let up_headers = resp.headers().clone();
    let timeout = ctx.route.arms[arm]
        .prepared
        .as_ref()
        .map_or(Duration::from_secs(60), |p| p.target().timeout);
    pending.g().status = Some(status);
    let read = tokio::time::timeout(timeout, resp.bytes()).await;
    let mut g = pending.take();
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let e = milc_core::llm::errors::from_reqwest(&e);
            return failed_answer(ctx, arm, g, start, e);
        }
        Err(_) => {
            return failed_answer(
                ctx,
                arm,
                g,
                start,
                forward::stalled(timeout.as_millis(), status),
            )
        }
    };
    g.latency = start.elapsed();
    let mut out = bytes.clone();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => {
            g.usage = reported_usage(&v["usage"]);
            g.response_model = v["model"].as_str().map(str::to_owned);
            if ctx.embeddings {
                g.deltas = 0;
            } else {
                let content = v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or_default();
                g.output = content.to_owned();
                g.finish_reason = v["choices"][0]["finish_reason"].as_str().map(str::to_owned);
                g.ttft = (!content.is_empty()).then_some(g.latency);
                g.deltas = u64::from(!content.is_empty());
                if let Some(p) = &restore {
                    for c in v["choices"].as_array_mut().into_iter().flatten() {
                        if let Some(t) = c["message"]["content"].as_str() {
                            c["message"]["content"] = p.restore(t).into();
                        }
                    }
                    out = Bytes::from(serde_json::to_vec(&v).expect("JSON serializes"));
                }
            }
        }
        Err(e) => {
            g.error = Some(CallError {
                kind: ErrorKind::Protocol,
                message: format!("the upstream's answer is not valid JSON: {e}"),
                status: Some(status),
            });
        }
    }
    let (arm_name, public_id) = (ctx.route.arms[arm].name.clone(), g.public_id.clone());
    ctx.log(arm, g);
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    pass_on(&up_headers, r.headers_mut());
    tag(&mut r, &public_id, &arm_name);
    r
}

fn failed_answer(
    ctx: &Ctx,
    arm: usize,
    mut g: GatewayCall,
    start: Instant,
    e: CallError,
) -> Response {
    g.latency = start.elapsed();
    g.error = Some(e.clone());
    let (name, public_id) = (ctx.route.arms[arm].name.clone(), g.public_id.clone());
    ctx.log(arm, g);
    let mut r = axum::response::IntoResponse::into_response(ApiError::upstream(&e));
    tag(&mut r, &public_id, &name);
    r
}

/// Starts passing the upstream's stream on: a task reads it event by event and feeds the
/// response body through a small channel.
fn stream_answer(
    ctx: Ctx,
    arm: usize,
    mut g: GatewayCall,
    resp: reqwest::Response,
    start: Instant,
    wants_usage: bool,
    restore: Option<milc_core::redact::Placeholders>,
) -> Response {
    let status = resp.status().as_u16();
    g.status = Some(status);
    let up_headers = resp.headers().clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let arm_name = ctx.route.arms[arm].name.clone();
    let public_id = g.public_id.clone();
    let timeout = ctx.route.arms[arm]
        .prepared
        .as_ref()
        .map_or(Duration::from_secs(60), |p| p.target().timeout);
    let tasks = ctx.shared.tasks.clone();
    tasks.spawn(async move {
        let error = pump(
            resp,
            &tx,
            &mut g,
            start,
            timeout,
            wants_usage,
            restore.as_ref(),
        )
        .await;
        g.latency = start.elapsed();
        g.error = error;
        ctx.log(arm, g);
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    pass_on(&up_headers, h);
    tag(&mut r, &public_id, &arm_name);
    r
}

/// Reads the upstream stream and passes each event on as it arrives, noting content, usage and
/// errors in `g`. The usage-only chunk goes on only if the client asked for it; a stream the
/// upstream ended without `[DONE]` gets one (after an error event when it was cut short).
/// Returns the call's error, if any (`cancelled` when the client went away).
async fn pump(
    resp: reqwest::Response,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    g: &mut GatewayCall,
    start: Instant,
    timeout: Duration,
    wants_usage: bool,
    restore: Option<&milc_core::redact::Placeholders>,
) -> Option<CallError> {
    let status = g.status.unwrap_or(200);
    let mut chunks = resp.bytes_stream();
    let mut split = Splitter::default();
    let mut finished = false;
    let mut error: Option<CallError> = None;
    let mut done = false;
    let mut ended = false;
    while !done && !ended {
        let next = tokio::select! {
            biased;
            _ = tx.closed() => return Some(milc_core::llm::client::cancelled()),
            n = tokio::time::timeout(timeout, chunks.next()) => n,
        };
        let bytes = match next {
            Err(_) => {
                let e = forward::stalled(timeout.as_millis(), status);
                send_error(tx, &e).await;
                return Some(e);
            }
            // The end: whatever is left is one last event, even without its blank line.
            Ok(None) => {
                ended = true;
                Bytes::from_static(if split.is_empty() { b"" } else { b"\n\n" })
            }
            Ok(Some(Err(e))) => {
                let e = milc_core::llm::errors::from_reqwest(&e);
                send_error(tx, &e).await;
                return Some(e);
            }
            Ok(Some(Ok(b))) => b,
        };
        split.feed(&bytes);
        // Every event of this piece goes on in one write: as it arrived, and one syscall.
        let mut batch: Vec<u8> = Vec::with_capacity(bytes.len() + 64);
        while let Some(event) = split.next_event() {
            if event.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                continue;
            }
            let Some(data) = sse::data(&event) else {
                batch.extend_from_slice(&event); // a comment or keep-alive: passed on
                continue;
            };
            if data == "[DONE]" {
                batch.extend_from_slice(&event);
                done = true;
                break;
            }
            let Ok(chunk) = serde_json::from_str::<Chunk>(&data) else {
                batch.extend_from_slice(&event); // not ours to judge: passed on unchanged
                continue;
            };
            if let Some(e) = &chunk.error {
                error = Some(milc_core::llm::errors::from_stream_event(
                    &serde_json::json!({"error": e}),
                ));
            }
            let mut keep = true;
            if let Some(u) = chunk.usage.as_ref().and_then(reported_usage) {
                g.usage = Some(u);
                // The usage-only chunk goes on only if the client asked for it.
                keep = !chunk.choices.is_empty() || wants_usage;
            }
            if g.response_model.is_none() {
                g.response_model = chunk.model.as_deref().map(str::to_owned);
            }
            let first = chunk.choices.first();
            if let Some(f) = first.and_then(|c| c.finish_reason.as_deref()) {
                finished = true;
                g.finish_reason = Some(f.to_owned());
            }
            let content = first
                .and_then(|c| c.delta.as_ref())
                .and_then(|d| d.content.as_deref())
                .filter(|c| !c.is_empty());
            if let Some(c) = content {
                g.ttft.get_or_insert_with(|| start.elapsed());
                g.deltas += 1;
                g.output.push_str(c);
                if let Some(p) = restore {
                    let restored = p.restore(c);
                    if restored != c {
                        let mut v: Value = serde_json::from_str(&data).expect("parsed above");
                        v["choices"][0]["delta"]["content"] = restored.into();
                        batch.extend_from_slice(format!("data: {v}\n\n").as_bytes());
                        continue;
                    }
                }
            }
            if keep {
                batch.extend_from_slice(&event);
            }
        }
        if !batch.is_empty() && tx.send(Ok(Bytes::from(batch))).await.is_err() {
            return Some(milc_core::llm::client::cancelled());
        }
    }
    if !done {
        if !finished && error.is_none() {
            let e = CallError {
                kind: ErrorKind::Protocol,
                message: "the upstream's stream ended before the answer was complete (no [DONE])"
                    .into(),
                status: Some(status),
            };
            send_error(tx, &e).await;
            return Some(e);
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    }
    error
}

/// An error event in the stream (the status is already sent), then the end.
async fn send_error(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, e: &CallError) {
    let ev = serde_json::json!({"error": {
        "message": format!("upstream: {}", e.message),
        "type": "server_error",
        "param": null,
        "code": "upstream_error",
    }});
    let _ = tx.send(Ok(Bytes::from(format!("data: {ev}\n\n")))).await;
    let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
}
