//! The OpenAI-compatible HTTP client: chat completions streamed or not, `GET /models`, retries,
//! timeouts and cancellation. It knows nothing of the store: it returns an [`Exchange`] that says
//! everything that happened, success or failure, and the caller logs it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use milc_api::{CallError, ChatRequest, ErrorKind, Message, Usage, UsageSource};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::errors;
use crate::ratelimit::RateLimit;
use crate::retry::{self, Wait};
use crate::secrets::SecretString;
use crate::sse::{SseEvent, SseParser};
use crate::tokens;

/// Where and how to send one call.
#[derive(Clone, Debug)]
pub struct Target {
    /// Base URL including the version prefix, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    pub model: String,
    pub token: Option<SecretString>,
    pub headers: BTreeMap<String, String>,
    /// For a plain request, the whole request; for a stream, the wait for the response headers
    /// and then for each next piece of the body (a healthy long answer is never cut off).
    pub timeout: Duration,
    pub max_retries: u32,
}

/// Everything that happened during one call, retries included.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub output: String,
    pub finish_reason: Option<String>,
    /// The model the server says answered (`model` in its response), if it said.
    pub response_model: Option<String>,
    /// Reported by the server, or estimated when it sent none but tokens were spent; `None` when
    /// the call failed before any answer.
    pub usage: Option<Usage>,
    /// From the first send to the first content token, on a monotonic clock.
    pub ttft: Option<Duration>,
    /// From the first send to the last byte (retry waits included: that is what a user waits).
    pub latency: Duration,
    pub attempts: u32,
    /// Status of the last HTTP response.
    pub status: Option<u16>,
    /// What the last response's headers said about the endpoint's rate limits.
    pub rate_limit: Option<RateLimit>,
    pub error: Option<CallError>,
}

#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

/// Progress of the current call, shared across its attempts.
#[derive(Default)]
struct Progress {
    output: String,
    deltas: u64,
    finish_reason: Option<String>,
    response_model: Option<String>,
    usage: Option<Usage>,
    ttft: Option<Duration>,
    status: Option<u16>,
    rate_limit: Option<RateLimit>,
}

/// A failed attempt, with the response headers that steer the retry and the body the server
/// answered (a gateway passes it on).
pub(crate) struct Failed {
    pub(crate) error: CallError,
    pub(crate) headers: Option<Box<HeaderMap>>,
    pub(crate) body: Option<bytes::Bytes>,
}

impl From<CallError> for Failed {
    fn from(error: CallError) -> Self {
        Self {
            error,
            headers: None,
            body: None,
        }
    }
}

impl Client {
    /// TLS by rustls; the system's root certificates are read on the first `https://`
    /// handshake, not here, so building a client costs well under a millisecond (OpenSSL's took
    /// ~65 ms, in front of every command's first request).
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("milc/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initialises");
        Self { http }
    }

    /// `POST {base}/chat/completions`. Calls `on_delta` with each piece of content as it arrives
    /// (once with the whole answer when not streaming). Never panics and never returns early
    /// without an [`Exchange`]: failures are in `Exchange::error`.
    pub async fn chat(
        &self,
        target: &Target,
        req: &ChatRequest,
        on_delta: &mut (dyn FnMut(&str) + Send),
        cancel: &CancellationToken,
    ) -> Exchange {
        let start = Instant::now();
        let body = request_body(&target.model, req);
        let mut p = Progress::default();
        let mut attempts = 0;
        let error = loop {
            attempts += 1;
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(cancelled().into()),
                r = self.attempt(target, &body, req.stream, start, &mut p, on_delta) => r,
            };
            let Err(failed) = outcome else { break None };
            let retryable = failed.error.kind != ErrorKind::Cancelled
                && p.deltas == 0
                && attempts <= target.max_retries
                && retry::is_retryable(
                    failed.error.kind,
                    failed.error.status,
                    failed.headers.as_deref(),
                );
            if !retryable {
                break Some(failed.error);
            }
            let jitter = rand::random::<f64>();
            match retry::delay(
                failed.headers.as_deref(),
                attempts - 1,
                SystemTime::now(),
                jitter,
            ) {
                Wait::TooLong(asked) => {
                    let mut e = failed.error;
                    e.message.push_str(&format!(
                        " (the server asks to retry after {} s; not waiting that long)",
                        asked.as_secs()
                    ));
                    break Some(e);
                }
                Wait::For(d) => {
                    tracing::debug!(attempt = attempts, wait_ms = d.as_millis() as u64, kind = %failed.error.kind, "retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => break Some(cancelled()),
                        _ = tokio::time::sleep(d) => {}
                    }
                }
            }
        };
        let usage = p.usage.or_else(|| {
            // Tokens were spent if anything came back, or if the call succeeded at all.
            (error.is_none() || p.deltas > 0)
                .then(|| estimate_usage(&target.model, &req.messages, &p, req.stream))
        });
        Exchange {
            output: p.output,
            finish_reason: p.finish_reason,
            response_model: p.response_model,
            usage,
            ttft: p.ttft,
            latency: start.elapsed(),
            attempts,
            status: p.status,
            rate_limit: p.rate_limit,
            error,
        }
    }

    async fn attempt(
        &self,
        t: &Target,
        body: &Value,
        stream: bool,
        start: Instant,
        p: &mut Progress,
        on_delta: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), Failed> {
        p.usage = None;
        p.finish_reason = None;
        let mut rb = self
            .http
            .post(url(&t.base_url, "chat/completions"))
            .headers(headers(t)?)
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).expect("a JSON value serializes"));
        if stream {
            rb = rb.header(reqwest::header::ACCEPT, "text/event-stream");
        } else {
            rb = rb.timeout(t.timeout);
        }
        let resp = send(rb, t.timeout).await?;
        let status = resp.status().as_u16();
        p.status = Some(status);
        p.rate_limit = RateLimit::from_headers(resp.headers());
        if !resp.status().is_success() {
            return Err(failure(resp, t.timeout).await);
        }
        if !stream {
            let bytes = resp.bytes().await.map_err(|e| errors::from_reqwest(&e))?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                errors::protocol(format!(
                    "the answer is not valid JSON ({e}): {}",
                    preview(&bytes)
                ))
            })?;
            if !v["error"].is_null() {
                return Err(errors::from_stream_event(&v).into());
            }
            let choice = &v["choices"][0];
            let content = choice["message"]["content"].as_str().unwrap_or_default();
            if !content.is_empty() {
                p.ttft = Some(start.elapsed());
                p.output.push_str(content);
                p.deltas += 1;
                on_delta(content);
            }
            p.finish_reason = choice["finish_reason"].as_str().map(str::to_owned);
            p.response_model = v["model"].as_str().map(str::to_owned);
            p.usage = reported_usage(&v["usage"]);
            return Ok(());
        }

        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let mut chunks = resp.bytes_stream();
        let mut done = false;
        while !done {
            let next = tokio::time::timeout(t.timeout, chunks.next())
                .await
                .map_err(|_| CallError {
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "the stream stalled: nothing arrived for {} ms",
                        t.timeout.as_millis()
                    ),
                    status: Some(status),
                })?;
            match next {
                Some(Ok(bytes)) => parser.feed(&bytes, &mut events),
                Some(Err(e)) => return Err(errors::from_reqwest(&e).into()),
                None => {
                    parser.finish(&mut events);
                    if !events.iter().any(|e| e.data == "[DONE]") && p.finish_reason.is_none() {
                        // Apply what did arrive, then report the cut.
                        for ev in events.drain(..) {
                            apply_event(&ev, start, p, on_delta)?;
                        }
                        return Err(errors::protocol(
                            "the stream ended before the answer was complete (no [DONE])",
                        )
                        .into());
                    }
                    done = true;
                }
            }
            for ev in events.drain(..) {
                if apply_event(&ev, start, p, on_delta)? {
                    done = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// `POST {base}/embeddings` for `inputs` (floats): one vector per input, in input order, and
    /// the prompt tokens the server reported (`None` when it sent no usage). One attempt.
    pub async fn embeddings(
        &self,
        t: &Target,
        inputs: &[String],
    ) -> Result<(Vec<Vec<f64>>, Option<u64>), CallError> {
        let body = json!({"model": t.model, "input": inputs, "encoding_format": "float"});
        let rb = self
            .http
            .post(url(&t.base_url, "embeddings"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).expect("a JSON value serializes"));
        let v = self
            .json_request(t, rb, "POST /embeddings did not answer JSON")
            .await?;
        let data = v["data"]
            .as_array()
            .ok_or_else(|| errors::protocol("POST /embeddings answered without a `data` list"))?;
        let mut out = vec![Vec::new(); inputs.len()];
        for (k, d) in data.iter().enumerate() {
            let i = d["index"].as_u64().map_or(k, |i| i as usize);
            let vector: Option<Vec<f64>> = d["embedding"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect());
            match (out.get_mut(i), vector) {
                (Some(slot), Some(vec)) if !vec.is_empty() => *slot = vec,
                _ => {
                    return Err(errors::protocol(
                        "POST /embeddings: an entry has no float vector",
                    ))
                }
            }
        }
        if out.iter().any(Vec::is_empty) {
            return Err(errors::protocol(
                "POST /embeddings answered fewer vectors than inputs",
            ));
        }
        Ok((out, v["usage"]["prompt_tokens"].as_u64()))
    }

    /// Sends a plain (not streamed) request with the target's headers and timeout and reads
    /// its JSON answer; an error status or a body that is not JSON is a typed error
    /// (`not_json` prefixes the body's first bytes).
    async fn json_request(
        &self,
        t: &Target,
        rb: reqwest::RequestBuilder,
        not_json: &str,
    ) -> Result<Value, CallError> {
        let rb = rb
            .headers(headers(t).map_err(|f| f.error)?)
            .timeout(t.timeout);
        let resp = send(rb, t.timeout).await.map_err(|f| f.error)?;
        if !resp.status().is_success() {
            return Err(failure(resp, t.timeout).await.error);
        }
        let bytes = resp.bytes().await.map_err(|e| errors::from_reqwest(&e))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| errors::protocol(format!("{not_json}: {}", preview(&bytes))))
    }

    /// `GET {base}/models`: the model ids the endpoint serves. One attempt, no retries: a
    /// connection test should say at once what is wrong.
    pub async fn models(&self, t: &Target) -> Result<Vec<String>, CallError> {
        let rb = self.http.get(url(&t.base_url, "models"));
        let v = self
            .json_request(
                t,
                rb,
                "GET /models did not answer JSON; is this an OpenAI-compatible base URL?",
            )
            .await?;
        let data = v["data"].as_array().ok_or_else(|| {
            errors::protocol("GET /models answered JSON without a `data` list of models")
        })?;
        Ok(data
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect())
    }
}

/// Applies one SSE event; returns true at `[DONE]`.
fn apply_event(
    ev: &SseEvent,
    start: Instant,
    p: &mut Progress,
    on_delta: &mut (dyn FnMut(&str) + Send),
) -> Result<bool, Failed> {
    if ev.data.trim() == "[DONE]" {
        return Ok(true);
    }
    let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
        errors::protocol(format!(
            "a stream event is not valid JSON ({e}): {}",
            preview(ev.data.as_bytes())
        ))
    })?;
    if !v["error"].is_null() {
        return Err(errors::from_stream_event(&v).into());
    }
    if p.response_model.is_none() {
        p.response_model = v["model"].as_str().map(str::to_owned);
    }
    // Only the first choice is shown; `n > 1` is not offered by the console.
    if let Some(choice) = v["choices"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["index"].as_u64().unwrap_or(0) == 0))
    {
        if let Some(text) = choice["delta"]["content"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            p.ttft.get_or_insert_with(|| start.elapsed());
            p.output.push_str(text);
            p.deltas += 1;
            on_delta(text);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            p.finish_reason = Some(f.to_owned());
        }
    }
    // The usage chunk normally has `choices: []`; llama.cpp puts usage on the last chunk with
    // choices instead. Either way, take it.
    if let Some(u) = reported_usage(&v["usage"]) {
        p.usage = Some(u);
    }
    Ok(false)
}

/// The JSON body of a chat request as it goes on the wire.
pub fn request_body(model: &str, req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({"model": model, "messages": messages, "stream": req.stream});
    let o = body.as_object_mut().expect("an object");
    let p = &req.params;
    if let Some(t) = p.temperature {
        o.insert("temperature".into(), json!(t));
    }
    if let Some(t) = p.top_p {
        o.insert("top_p".into(), json!(t));
    }
    if let Some(m) = p.max_tokens {
        // `max_tokens` is what self-hosted servers (vLLM, NIM, Ollama) read.
        o.insert("max_tokens".into(), json!(m));
    }
    if !p.stop.is_empty() {
        o.insert("stop".into(), json!(p.stop));
    }
    if let Some(s) = p.seed {
        o.insert("seed".into(), json!(s));
    }
    if let Some(f) = &p.response_format {
        o.insert("response_format".into(), json!(f));
    }
    if req.stream {
        // Only ever together with `stream: true`: vLLM and NVIDIA's hosted API answer 400 otherwise.
        o.insert("stream_options".into(), json!({"include_usage": true}));
    }
    body
}

/// The usage an answer or a stream chunk reports, cached and reasoning tokens kept within the
/// totals they are part of; `None` when it reports none.
pub fn reported_usage(u: &Value) -> Option<Usage> {
    let prompt = u["prompt_tokens"].as_u64()?;
    let completion = u["completion_tokens"].as_u64().unwrap_or(0);
    Some(Usage {
        prompt_tokens: prompt,
        cached_tokens: u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0)
            .min(prompt),
        completion_tokens: completion,
        reasoning_tokens: u["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap_or(0)
            .min(completion),
        source: UsageSource::Reported,
    })
}

/// Usage where the server reported none (flagged estimated): the prompt counted with the model's
/// tokenizer (see [`crate::tokens`]); a streamed answer as one token per content delta (servers
/// stream token by token, so this is their own count), any other answer by the tokenizer.
fn estimate_usage(model: &str, messages: &[Message], p: &Progress, stream: bool) -> Usage {
    let completion = if stream && p.deltas > 0 {
        p.deltas
    } else {
        tokens::text_tokens(model, &p.output)
    };
    Usage {
        prompt_tokens: tokens::prompt_tokens(model, messages),
        cached_tokens: 0,
        completion_tokens: completion,
        reasoning_tokens: 0,
        source: UsageSource::Estimated,
    }
}

pub(crate) fn url(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

pub(crate) fn headers(t: &Target) -> Result<HeaderMap, Failed> {
    let mut h = HeaderMap::new();
    for (k, v) in &t.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| config(format!("header name '{k}' is not valid")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| config(format!("the value of header '{k}' is not valid")))?;
        h.insert(name, value);
    }
    if let Some(token) = &t.token {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| config("the stored token holds characters that cannot go in a header"))?;
        v.set_sensitive(true);
        h.insert(AUTHORIZATION, v);
    }
    Ok(h)
}

fn config(message: impl Into<String>) -> Failed {
    CallError {
        kind: ErrorKind::Config,
        message: message.into(),
        status: None,
    }
    .into()
}

pub fn cancelled() -> CallError {
    CallError {
        kind: ErrorKind::Cancelled,
        message: "cancelled".into(),
        status: None,
    }
}

pub(crate) async fn send(
    rb: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, Failed> {
    match tokio::time::timeout(timeout, rb.send()).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(errors::from_reqwest(&e).into()),
        Err(_) => Err(CallError {
            kind: ErrorKind::Timeout,
            message: format!("no response within {} ms", timeout.as_millis()),
            status: None,
        }
        .into()),
    }
}

pub(crate) async fn failure(resp: reqwest::Response, timeout: Duration) -> Failed {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = tokio::time::timeout(timeout, resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Failed {
        error: errors::from_response(status, ctype.as_deref(), &body),
        headers: Some(Box::new(headers)),
        body: Some(body),
    }
}

fn preview(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s: String = s.chars().take(120).collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use milc_api::{Params, Role};

    #[test]
    fn stream_options_go_only_with_stream_true() {
        let mut req = ChatRequest {
            messages: vec![Message::new(Role::User, "hi")],
            params: Params {
                max_tokens: Some(5),
                stop: vec!["\n".into()],
                ..Params::default()
            },
            ..ChatRequest::new(vec![], Params::default())
        };
        let b = request_body("m", &req);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 5);
        assert_eq!(b["stop"][0], "\n");
        assert!(
            b.get("temperature").is_none(),
            "unset parameters are left to the server"
        );
        req.stream = false;
        let b = request_body("m", &req);
        assert!(b.get("stream_options").is_none());
        assert_eq!(b["stream"], false);
    }

    #[test]
    fn reported_usage_keeps_subsets_inside_their_totals() {
        let u = reported_usage(&json!({"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}))
        .unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.cached_tokens,
                u.completion_tokens,
                u.reasoning_tokens
            ),
            (10, 4, 5, 2)
        );
        assert!(reported_usage(&Value::Null).is_none());
        let bad = reported_usage(
            &json!({"prompt_tokens": 3, "prompt_tokens_details": {"cached_tokens": 9}}),
        )
        .unwrap();
        assert_eq!(bad.cached_tokens, 3);
    }

    #[test]
    fn debug_of_a_target_hides_the_token() {
        let t = Target {
            base_url: "http://x/v1".into(),
            model: "m".into(),
            token: Some(SecretString::new("canary-debug-123")),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(1),
            max_retries: 0,
        };
        assert!(!format!("{t:?}").contains("canary-debug-123"));
        let h = headers(&t).map_err(|f| f.error).unwrap();
        assert!(!format!("{h:?}").contains("canary-debug-123"));
    }
}
