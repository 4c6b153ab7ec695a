//! The OTLP exporter: one task per console that takes the calls the call log's tap offers,
//! turns each into a span (GenAI semantic conventions, v1.37, plus the console's own `milc.*`
//! attributes), and POSTs them in batches as `application/x-protobuf` to the collector. It
//! batches up to [`BATCH`] spans (or [`BATCH_BYTES`]) or whatever came in [`FLUSH_EVERY`], sends
//! one batch at a time within [`SEND_TIMEOUT`], and never retries: a collector that is down or
//! slow costs the calls nothing, and its spans are counted as dropped.
//!
//! The settings are read from the store when the task starts, when this process changes them
//! (the tap says so) and every [`POLL_EVERY`] (another process may have), and the header values
//! from the keyring only when the stored settings changed.

use std::fmt;
use std::time::{Duration, Instant};

use milc_api::{Outcome, ResponseFormat, UsageSource};
use milc_llm::{SecretString, Secrets};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::storage;
use crate::calllog::tap::{Logged, TapState, Tapped};
use crate::calllog::Operation;
use crate::db::{Store, StoreError};

/// Most spans in one request.
pub const BATCH: usize = 512;
/// A batch is sent once its spans encode to this much (bodies can be large).
pub const BATCH_BYTES: usize = 4 << 20;
/// Spans wait at most this long for a batch to fill.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// One request to the collector, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the stored settings are read again for a change made by another process.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// The GenAI conventions these spans follow.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";

/// Where spans go, header values included. `Debug` prints the names only.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    pub headers: Vec<(String, SecretString)>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: <redacted>"))
            .collect();
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("headers", &headers)
            .finish()
    }
}

/// The exporter task's state.
pub(crate) struct Exporter {
    store: Store,
    secrets: Secrets,
    tap: std::sync::Arc<TapState>,
    http: reqwest::Client,
    target: Option<Target>,
    /// The stored settings' `updated_ms` that `target` was made from (`Some(None)`: no row).
    seen: Option<Option<i64>>,
    resource: Resource,
    /// Whether the last send failed (so a failing collector is logged once, not per batch).
    failing: bool,
}

impl Exporter {
    pub(crate) fn new(store: Store, secrets: Secrets, tap: std::sync::Arc<TapState>) -> Self {
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "milc-console".to_owned());
        Self {
            store,
            secrets,
            tap,
            http: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .connect_timeout(SEND_TIMEOUT)
                .user_agent(concat!("milc/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the TLS backend initialises"),
            target: None,
            seen: None,
            resource: Resource {
                attributes: vec![
                    kv("service.name", service),
                    kv("service.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Resource::default()
            },
            failing: false,
        }
    }

    /// Reads the stored settings if they changed since last time (and their header values
    /// from the keyring), and turns the tap on or off to match. A store error is returned;
    /// a keyring error turns the export off until the next read.
    pub(crate) async fn load(&mut self) -> Result<(), StoreError> {
        let row = storage::get(&mut self.store.read().await?).await?;
        let revision = row.as_ref().map(|r| r.updated_ms);
        if self.seen == Some(revision) {
            return Ok(());
        }
        let Some(row) = row else {
            self.target = None;
            self.seen = Some(None);
            self.tap.set_on(false);
            return Ok(());
        };
        match self.header_values(&row.headers.0).await {
            Ok(headers) => {
                let url = super::traces_url(&row.endpoint)
                    .unwrap_or_else(|_| row.endpoint.trim().to_owned());
                self.target = Some(Target { url, headers });
                self.seen = Some(revision);
                self.tap.set_on(true);
            }
            Err(why) => {
                // Not marked as seen: the keyring is asked again at the next read.
                tracing::warn!(error = %why, "OpenTelemetry export is off");
                self.target = None;
                self.tap.set_error(Some(why));
                self.tap.set_on(false);
            }
        }
        Ok(())
    }

    async fn header_values(&self, names: &[String]) -> Result<Vec<(String, SecretString)>, String> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.secrets.otel_header(name).await {
                Ok(Some(v)) => out.push((name.clone(), v)),
                Ok(None) => {
                    return Err(format!(
                        "the value of header '{name}' is not in the OS keyring; set it again with `milc otel set`"
                    ))
                }
                Err(e) => return Err(format!("cannot read header '{name}': {e}")),
            }
        }
        Ok(out)
    }

    /// Runs until every sender of the tap's queue is gone (the console was dropped), sending
    /// what is left first.
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<Tapped>) {
        let mut changes = self.tap.watch_settings();
        let mut batch = Batch::default();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut polled = Instant::now();
        let mut store_open = true;
        loop {
            tokio::select! {
                item = queue.recv() => {
                    // A change made in this process before the call was offered applies to it.
                    if changes.has_changed().unwrap_or(false) {
                        changes.borrow_and_update();
                        store_open = self.reload(&mut batch).await;
                    }
                    match item {
                        None => {
                            self.send(&mut batch).await;
                            return;
                        }
                        Some(Tapped::Call(l)) => {
                            if self.target.is_some() {
                                batch.push(span(&l));
                                if batch.full() {
                                    self.send(&mut batch).await;
                                }
                            } else {
                                self.tap.dropped(1);
                            }
                        }
                        Some(Tapped::Flush(ack)) => {
                            self.send(&mut batch).await;
                            let _ = ack.send(());
                        }
                    }
                }
                _ = tick.tick() => {
                    self.send(&mut batch).await;
                    if store_open && polled.elapsed() >= POLL_EVERY {
                        polled = Instant::now();
                        store_open = self.reload(&mut batch).await;
                    }
                }
                Ok(()) = changes.changed() => {
                    changes.borrow_and_update();
                    store_open = self.reload(&mut batch).await;
                }
            }
        }
    }

    /// Reads the settings again; spans batched for a collector that is no longer the target
    /// are sent to it first. Answers whether the store is still open.
    async fn reload(&mut self, batch: &mut Batch) -> bool {
        let before = self.seen;
        let old = self.target.clone();
        match self.load().await {
            Ok(()) => {
                if self.seen != before && !batch.is_empty() {
                    let new = std::mem::replace(&mut self.target, old);
                    self.send(batch).await;
                    self.target = new;
                }
                true
            }
            Err(StoreError::Sql(sqlx::Error::PoolClosed)) => false,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the OpenTelemetry settings");
                true
            }
        }
    }

    /// Sends the batch (if any) and counts what became of its spans.
    async fn send(&mut self, batch: &mut Batch) {
        let spans = std::mem::take(&mut batch.spans);
        batch.bytes = 0;
        if spans.is_empty() {
            return;
        }
        let n = spans.len() as u64;
        let Some(target) = &self.target else {
            self.tap.dropped(n);
            return;
        };
        let body = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "milc-console".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: SCHEMA_URL.into(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec();
        let mut headers = HeaderMap::new();
        for (name, value) in &target.headers {
            if let (Ok(name), Ok(mut value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) {
                value.set_sensitive(true);
                headers.insert(name, value);
            }
        }
        let sent = self
            .http
            .post(&target.url)
            .headers(headers)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await;
        let outcome = match sent {
            Ok(resp) if resp.status().is_success() => {
                // A collector may accept part of a request and say how many it rejected.
                let rejected = resp
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| ExportTraceServiceResponse::decode(b).ok())
                    .and_then(|r| r.partial_success)
                    .filter(|p| p.rejected_spans > 0);
                match rejected {
                    Some(p) => {
                        let rejected = (p.rejected_spans as u64).min(n);
                        self.tap.exported(n - rejected);
                        self.tap.dropped(rejected);
                        Err(format!(
                            "the collector rejected {rejected} of {n} spans: {}",
                            p.error_message
                        ))
                    }
                    None => {
                        self.tap.exported(n);
                        Ok(())
                    }
                }
            }
            Ok(resp) => {
                self.tap.dropped(n);
                Err(format!(
                    "the collector at {} answered HTTP {}",
                    target.url,
                    resp.status()
                ))
            }
            Err(e) => {
                self.tap.dropped(n);
                Err(format!(
                    "cannot send spans to {}: {}",
                    target.url,
                    error_chain(&e)
                ))
            }
        };
        match &outcome {
            Err(why) if !self.failing => {
                tracing::warn!(error = %why, "OpenTelemetry export failing; spans are dropped")
            }
            Ok(()) if self.failing => tracing::info!("OpenTelemetry export working again"),
            _ => {}
        }
        self.failing = outcome.is_err();
        self.tap.set_error(outcome.err());
    }
}

/// An error and its causes, as one line (reqwest's own message says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[derive(Default)]
struct Batch {
    spans: Vec<Span>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, s: Span) {
        self.bytes += s.encoded_len();
        self.spans.push(s);
    }

    fn full(&self) -> bool {
        self.spans.len() >= BATCH || self.bytes >= BATCH_BYTES
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// One call as a span: `{operation} {model}`, kind CLIENT, from the call's start to its end
/// (the log records its end and its latency), status ERROR with `error.type` when it failed
/// or was cancelled. Bodies only when the call carries them (its policy kept them, redacted).
pub fn span(l: &Logged) -> Span {
    let c = &l.call;
    let d = &l.detail;
    let op = d.operation.as_str();
    let end_ns = (c.at_ms.max(0) as u64).saturating_mul(1_000_000);
    let start_ns = end_ns.saturating_sub(c.latency_ms.saturating_mul(1_000_000));
    let mut a = vec![
        kv("gen_ai.operation.name", op),
        kv("gen_ai.provider.name", "openai"),
        kv("gen_ai.request.model", c.model.as_str()),
    ];
    if let Some(m) = &d.response_model {
        a.push(kv("gen_ai.response.model", m.as_str()));
    }
    if let Some(u) = &c.usage {
        a.push(kv("gen_ai.usage.input_tokens", u.prompt_tokens as i64));
        if d.operation == Operation::Chat {
            a.push(kv("gen_ai.usage.output_tokens", u.completion_tokens as i64));
        }
        if u.cached_tokens > 0 {
            a.push(kv("milc.usage.cached_tokens", u.cached_tokens as i64));
        }
        if u.reasoning_tokens > 0 {
            a.push(kv("milc.usage.reasoning_tokens", u.reasoning_tokens as i64));
        }
        a.push(kv(
            "milc.usage_estimated",
            u.source == UsageSource::Estimated,
        ));
    }
    if let Some(f) = &d.finish_reason {
        a.push(kv("gen_ai.response.finish_reasons", vec![f.clone()]));
    }
    if let Some(p) = &d.params {
        if let Some(t) = p.temperature {
            a.push(kv("gen_ai.request.temperature", t));
        }
        if let Some(t) = p.top_p {
            a.push(kv("gen_ai.request.top_p", t));
        }
        if let Some(n) = p.max_tokens {
            a.push(kv("gen_ai.request.max_tokens", i64::from(n)));
        }
        if let Some(s) = p.seed {
            a.push(kv("gen_ai.request.seed", s));
        }
        if !p.stop.is_empty() {
            a.push(kv("gen_ai.request.stop_sequences", p.stop.clone()));
        }
        if let Some(f) = &p.response_format {
            let kind = match f {
                ResponseFormat::Text => "text",
                ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. } => "json",
            };
            a.push(kv("gen_ai.output.type", kind));
        }
    }
    if let Some(url) = d
        .server
        .as_deref()
        .and_then(|s| reqwest::Url::parse(s).ok())
    {
        if let Some(host) = url.host_str() {
            a.push(kv("server.address", host));
        }
        if let Some(port) = url.port_or_known_default() {
            a.push(kv("server.port", i64::from(port)));
        }
    }
    if let Some(s) = c.http_status {
        a.push(kv("http.response.status_code", i64::from(s)));
    }
    if let Some(k) = c.error_kind {
        a.push(kv("error.type", k.as_str()));
    } else if c.outcome == Outcome::Cancelled {
        a.push(kv("error.type", "cancelled"));
    }
    a.push(kv("milc.call_id", l.id));
    a.push(kv("milc.source", c.source.as_str()));
    a.push(kv("milc.outcome", c.outcome.as_str()));
    if let Some(e) = &d.endpoint {
        a.push(kv("milc.endpoint", e.as_str()));
    }
    if let Some(r) = d.run_id {
        a.push(kv("milc.run_id", r));
    }
    if let Some(p) = &c.prompt {
        a.push(kv("milc.prompt_version", p.to_string()));
    }
    if let Some(cost) = &c.cost {
        // The exact decimal the log keeps, never a float.
        a.push(kv("milc.cost_usd", cost.usd()));
    }
    if let Some(t) = c.ttft_ms {
        a.push(kv("milc.ttft_ms", t as i64));
    }
    if let Some(g) = &l.gateway {
        a.push(kv("milc.gateway.call_id", g.public_id.as_str()));
        a.push(kv("milc.gateway.route_id", g.route_id));
        a.push(kv("milc.gateway.arm", g.arm.as_str()));
        if let Some(f) = &g.fallback_for {
            a.push(kv("milc.gateway.fallback_for", f.as_str()));
        }
    }
    if let (Some((request, response)), Operation::Chat) = (&d.bodies, d.operation) {
        a.push(kv("gen_ai.input.messages", input_messages(request)));
        a.push(kv(
            "gen_ai.output.messages",
            output_messages(response, d.finish_reason.as_deref()),
        ));
    }
    let failed = c.outcome != Outcome::Ok;
    Span {
        trace_id: rand::random::<u128>().to_be_bytes().to_vec(),
        span_id: rand::random::<u64>().to_be_bytes().to_vec(),
        name: format!("{op} {}", c.model),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        attributes: a,
        status: Some(Status {
            code: if failed {
                status::StatusCode::Error
            } else {
                status::StatusCode::Unset
            } as i32,
            message: if failed {
                c.error_kind.map_or("cancelled", |k| k.as_str()).to_owned()
            } else {
                String::new()
            },
        }),
        ..Span::default()
    }
}

/// The stored request's messages as the conventions' `gen_ai.input.messages` (JSON text).
fn input_messages(request: &Value) -> String {
    let messages: Vec<Value> = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let content = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            json!({
                "role": m["role"].as_str().unwrap_or("user"),
                "parts": [{"type": "text", "content": content}],
            })
        })
        .collect();
    Value::Array(messages).to_string()
}

/// The stored answer as `gen_ai.output.messages` (JSON text).
fn output_messages(response: &str, finish_reason: Option<&str>) -> String {
    let mut m = json!({
        "role": "assistant",
        "parts": [{"type": "text", "content": response}],
    });
    if let Some(f) = finish_reason {
        m["finish_reason"] = f.into();
    }
    Value::Array(vec![m]).to_string()
}

fn kv(key: &str, value: impl Into<Attr>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(value.into().0),
        }),
        ..KeyValue::default()
    }
}

/// An attribute value.
struct Attr(any_value::Value);

impl From<&str> for Attr {
    fn from(s: &str) -> Self {
        Self(any_value::Value::StringValue(s.to_owned()))
    }
}

impl From<String> for Attr {
    fn from(s: String) -> Self {
        Self(any_value::Value::StringValue(s))
    }
}

impl From<i64> for Attr {
    fn from(n: i64) -> Self {
        Self(any_value::Value::IntValue(n))
    }
}

impl From<f64> for Attr {
    fn from(x: f64) -> Self {
        Self(any_value::Value::DoubleValue(x))
    }
}

impl From<bool> for Attr {
    fn from(b: bool) -> Self {
        Self(any_value::Value::BoolValue(b))
    }
}

impl From<Vec<String>> for Attr {
    fn from(v: Vec<String>) -> Self {
        Self(any_value::Value::ArrayValue(ArrayValue {
            values: v
                .into_iter()
                .map(|s| AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use milc_api::prompt::PromptPin;
    use milc_api::{Call, CallSource, Cost, ErrorKind, Usage};

    use super::*;
    use crate::calllog::tap::CallDetail;

    fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn logged(call: Call, detail: CallDetail) -> Logged {
        Logged {
            id: 42,
            call,
            gateway: None,
            detail,
        }
    }

    fn call() -> Call {
        let usage = Usage {
            prompt_tokens: 12,
            cached_tokens: 0,
            completion_tokens: 7,
            reasoning_tokens: 0,
            source: UsageSource::Reported,
        };
        Call {
            at_ms: 1_700_000_000_500,
            endpoint_id: Some(1),
            model: "gpt-4o".into(),
            source: CallSource::Playground,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error_kind: None,
            latency_ms: 250,
            ttft_ms: Some(40),
            usage: Some(usage),
            cost: Some(Cost {
                pico_usd: 123_456_789,
                source: UsageSource::Reported,
            }),
            prompt: Some(PromptPin {
                prompt: "summarize".into(),
                version: 3,
            }),
            price_id: None,
        }
    }

    #[test]
    fn a_call_becomes_a_client_span_named_by_operation_and_model_with_exact_cost() {
        let s = span(&logged(
            call(),
            CallDetail {
                server: Some("https://api.example.com/v1".into()),
                finish_reason: Some("stop".into()),
                params: Some(milc_api::Params {
                    temperature: Some(0.2),
                    max_tokens: Some(64),
                    response_format: Some(ResponseFormat::JsonObject),
                    ..milc_api::Params::default()
                }),
                ..CallDetail::default()
            },
        ));
        assert_eq!(s.name, "chat gpt-4o");
        assert_eq!(s.kind, span::SpanKind::Client as i32);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 250_000_000);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_500_000_000);
        let string = |k| match attr(&s, k) {
            Some(any_value::Value::StringValue(v)) => v.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(string("milc.cost_usd"), "0.000123456789");
        assert_eq!(string("milc.prompt_version"), "summarize@3");
        assert_eq!(string("server.address"), "api.example.com");
        assert_eq!(
            attr(&s, "server.port"),
            Some(&any_value::Value::IntValue(443))
        );
        assert!(attr(&s, "error.type").is_none());
        assert!(
            attr(&s, "gen_ai.input.messages").is_none(),
            "no bodies kept"
        );
        assert_eq!(
            attr(&s, "gen_ai.request.temperature"),
            Some(&any_value::Value::DoubleValue(0.2))
        );
        assert_eq!(
            attr(&s, "gen_ai.request.max_tokens"),
            Some(&any_value::Value::IntValue(64))
        );
        assert_eq!(string("gen_ai.output.type"), "json");
        assert!(attr(&s, "gen_ai.request.top_p").is_none());
        assert_eq!(s.status.unwrap().code, status::StatusCode::Unset as i32);
    }

    #[test]
    fn a_failed_embeddings_call_is_an_error_span_with_its_kind_and_no_output_tokens() {
        let mut c = call();
        c.outcome = Outcome::Error;
        c.error_kind = Some(ErrorKind::RateLimit);
        c.usage.as_mut().unwrap().completion_tokens = 0;
        let s = span(&logged(
            c,
            CallDetail {
                operation: Operation::Embeddings,
                bodies: Some((json!({"input": ["x"]}), String::new())),
                ..CallDetail::default()
            },
        ));
        assert_eq!(s.name, "embeddings gpt-4o");
        assert_eq!(
            attr(&s, "error.type"),
            Some(&any_value::Value::StringValue("rate_limit".into()))
        );
        assert!(attr(&s, "gen_ai.usage.output_tokens").is_none());
        assert!(attr(&s, "gen_ai.input.messages").is_none());
        let status = s.status.unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "rate_limit");
    }

    #[test]
    fn kept_bodies_become_the_conventions_messages() {
        let request = json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Mail [EMAIL_1]"},
        ]});
        let s = span(&logged(
            call(),
            CallDetail {
                finish_reason: Some("stop".into()),
                bodies: Some((request, "Done.".into())),
                ..CallDetail::default()
            },
        ));
        let Some(any_value::Value::StringValue(input)) = attr(&s, "gen_ai.input.messages") else {
            panic!("no input messages");
        };
        let input: Value = serde_json::from_str(input).unwrap();
        assert_eq!(input[1]["role"], "user");
        assert_eq!(input[1]["parts"][0]["content"], "Mail [EMAIL_1]");
        let Some(any_value::Value::StringValue(output)) = attr(&s, "gen_ai.output.messages") else {
            panic!("no output messages");
        };
        let output: Value = serde_json::from_str(output).unwrap();
        assert_eq!(output[0]["parts"][0]["content"], "Done.");
        assert_eq!(output[0]["finish_reason"], "stop");
    }

    #[test]
    fn a_target_prints_its_header_names_but_never_their_values() {
        let t = Target {
            url: "http://127.0.0.1:4318/v1/traces".into(),
            headers: vec![(
                "authorization".into(),
                SecretString::new("Bearer canary-77"),
            )],
        };
        let shown = format!("{t:?}");
        assert!(shown.contains("authorization: <redacted>"), "{shown}");
        assert!(!shown.contains("canary"));
    }
}
