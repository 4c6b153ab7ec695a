//! Serde-only types shared by the UI and the backend, and the commands that connect them.
//! No I/O and no heavy dependencies: this crate must build for `wasm32-unknown-unknown`.

pub mod arena;
pub mod cmd;
pub mod compare;
pub mod dataset;
pub mod demo;
pub mod export;
pub mod gateway;
pub mod lifecycle;
pub mod money;
#[cfg(feature = "proptest")]
pub mod mutation;
pub mod otel;
pub mod prompt;
pub mod run;
pub mod template;
pub mod usage;
pub mod workspace;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use cmd::{Command, ALL_COMMANDS};
pub use money::{Cost, MoneyError, PricePerMillion, Prices};
pub use prompt::{RedactionPolicy, ResponseFormat, StructuredCheck};

/// Lifecycle status of an endpoint: retired endpoints refuse new calls, deprecated ones warn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    #[default]
    Active,
    Deprecated,
    Retired,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deprecated => "deprecated",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "deprecated" => Some(Self::Deprecated),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// What a user edits: everything about an endpoint except its token, which lives in the OS keyring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointSpec {
    pub name: String,
    /// Base URL including the API version prefix, like the OpenAI SDK's `base_url`
    /// (`https://integrate.api.nvidia.com/v1`).
    pub base_url: String,
    pub model: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub prices: Prices,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(default)]
    pub status: EndpointStatus,
    #[serde(default)]
    pub redaction: RedactionPolicy,
    /// What a custom or fine-tuned model was made from, so comparisons read "tuned v2 vs base".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// The base model a fine-tuned or custom model was tuned from, and what it was tuned on (a
/// dataset reference like `tickets@3f2a…` or an export file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub base_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuned_on: Option<String>,
}

impl fmt::Display for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tuned from {}", self.base_model)?;
        if let Some(d) = &self.tuned_on {
            write!(f, " on {d}")?;
        }
        Ok(())
    }
}

pub fn default_timeout_ms() -> u64 {
    60_000
}

pub fn default_max_retries() -> u32 {
    2
}

impl EndpointSpec {
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into(),
            model: model.into(),
            headers: BTreeMap::new(),
            prices: Prices::default(),
            timeout_ms: default_timeout_ms(),
            max_retries: default_max_retries(),
            status: EndpointStatus::Active,
            redaction: RedactionPolicy::default(),
            lineage: None,
        }
    }
}

/// What to do with an endpoint's token when saving it from a form. The stored token is never sent
/// back to a form, so "keep" is the default.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "action", content = "token", rename_all = "snake_case")]
pub enum TokenChange {
    #[default]
    Keep,
    Replace(String),
    Remove,
}

impl fmt::Debug for TokenChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keep => "Keep",
            Self::Replace(_) => "Replace(<redacted>)",
            Self::Remove => "Remove",
        })
    }
}

/// A stored endpoint as the UI and `milc endpoints list` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: i64,
    #[serde(flatten)]
    pub spec: EndpointSpec,
    /// Whether a token is stored in the OS keyring (the token itself never leaves the keyring
    /// except inside an outgoing request).
    pub has_token: bool,
    /// The built-in simulator rather than a real model server.
    pub simulator: bool,
    pub last_test: Option<ConnectionTest>,
    /// When a deprecated endpoint is to be retired (UTC ms); set only through the lifecycle
    /// action (`Console::set_lifecycle`), never by editing the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset_ms: Option<i64>,
    /// The endpoint that replaces a deprecated or retired one, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

impl Endpoint {
    /// Where the endpoint is in its lifecycle: its status, sunset date and replacement.
    pub fn lifecycle(&self) -> lifecycle::Lifecycle {
        lifecycle::Lifecycle {
            status: self.spec.status,
            sunset_ms: self.sunset_ms,
            replacement: self.replacement.clone(),
        }
    }
}

/// Outcome of `GET /v1/models` against an endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub at_ms: i64,
    pub ok: bool,
    pub latency_ms: Option<u64>,
    pub models: Vec<String>,
    pub error: Option<CallError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Developer => "developer",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Sampling parameters a user can set; `None` leaves the server's default. Unknown fields are
/// refused, so a typo in a prompt file (`temprature`) is an error, not a silent default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
}

impl Params {
    /// The ranges the protocol allows, checked before anything is sent, the same for every
    /// shell: `Err((field, what is allowed))`.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(("temperature", "a number from 0 to 2"));
        }
        if self.top_p.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(("top_p", "a number from 0 to 1"));
        }
        if self.max_tokens == Some(0) {
            return Err(("max_tokens", "at least 1"));
        }
        if self.stop.len() > 4 || self.stop.iter().any(String::is_empty) {
            return Err(("stop", "at most 4 sequences, none empty"));
        }
        if let Some(f) = &self.response_format {
            f.check().map_err(|allowed| ("response_format", allowed))?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub params: Params,
    /// Stream tokens as they arrive (Server-Sent Events) rather than wait for the whole answer.
    #[serde(default = "yes")]
    pub stream: bool,
    /// Values for the `{{variable}}` placeholders of the messages, which are rendered strictly
    /// before sending.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The prompt version these messages come from, if any: recorded in the history, and its
    /// redaction policy (if it has one) overrides the endpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<prompt::PromptPin>,
}

impl ChatRequest {
    pub fn new(messages: Vec<Message>, params: Params) -> Self {
        Self {
            messages,
            params,
            stream: true,
            variables: BTreeMap::new(),
            prompt: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// Where token counts came from: the server's `usage`, or counted locally because the server
/// sent none (an interrupted stream, a server that ignores `include_usage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    Reported,
    Estimated,
}

/// Token counts of one call. `cached_tokens` is a subset of `prompt_tokens` and
/// `reasoning_tokens` a subset of `completion_tokens`, as the protocol defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub source: UsageSource,
}

/// Where a call came from, for the call log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    Cli,
    Playground,
    Run,
    Gateway,
    /// A feasibility load test.
    Loadtest,
}

impl CallSource {
    pub const ALL: [CallSource; 5] = [
        Self::Cli,
        Self::Playground,
        Self::Run,
        Self::Gateway,
        Self::Loadtest,
    ];

    /// The source [`CallSource::as_str`] names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Playground => "playground",
            Self::Run => "run",
            Self::Gateway => "gateway",
            Self::Loadtest => "loadtest",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Ok, Self::Error, Self::Cancelled];

    /// The outcome [`Outcome::as_str`] names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What went wrong with a call, in the terms a user acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The endpoint's URL or settings cannot be used as they are.
    Config,
    /// The server could not be reached (refused, DNS, reset).
    Connection,
    Tls,
    Auth,
    Permission,
    NotFound,
    BadRequest,
    Conflict,
    RateLimit,
    /// Out of credits or quota: retrying will not help.
    Quota,
    Timeout,
    Server,
    /// The server answered something that is not the OpenAI protocol.
    Protocol,
    Cancelled,
    /// A local failure: the store or the keyring.
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 15] = [
        Self::Config,
        Self::Connection,
        Self::Tls,
        Self::Auth,
        Self::Permission,
        Self::NotFound,
        Self::BadRequest,
        Self::Conflict,
        Self::RateLimit,
        Self::Quota,
        Self::Timeout,
        Self::Server,
        Self::Protocol,
        Self::Cancelled,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Connection => "connection",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::Permission => "permission",
            Self::NotFound => "not_found",
            Self::BadRequest => "bad_request",
            Self::Conflict => "conflict",
            Self::RateLimit => "rate_limit",
            Self::Quota => "quota",
            Self::Timeout => "timeout",
            Self::Server => "server",
            Self::Protocol => "protocol",
            Self::Cancelled => "cancelled",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as it crosses to a user: a kind to branch on and the upstream message to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub kind: ErrorKind,
    pub message: String,
    /// HTTP status of the failing response, if there was one.
    pub status: Option<u16>,
}

impl CallError {
    /// A mistake in what the user typed or chose, found before anything is sent.
    pub fn config(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Config,
            message: message.into(),
            status: None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} (HTTP {s}): {}", self.kind, self.message),
            None => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

impl std::error::Error for CallError {}

/// Everything a user sees under an answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResult {
    pub call_id: i64,
    pub output: String,
    pub finish_reason: Option<String>,
    /// Milliseconds from sending the request to the first content token (monotonic clock).
    pub ttft_ms: Option<u64>,
    /// Milliseconds from sending the request to the last byte.
    pub latency_ms: u64,
    pub usage: Usage,
    pub cost: Cost,
    /// Completion tokens per second after the first token.
    pub tokens_per_sec: Option<f64>,
    /// HTTP attempts made, retries included.
    pub attempts: u32,
    /// Variables given but used by no message.
    #[serde(default)]
    pub unused_variables: Vec<String>,
    /// Personal data replaced by placeholders before sending (policy "sending" or "both").
    #[serde(default)]
    pub redacted: Vec<PiiEntity>,
    /// The answer with this request's placeholders put back, when it held any.
    #[serde(default)]
    pub restored: Option<String>,
    /// The check of a JSON answer against its response format.
    #[serde(default)]
    pub structured: Option<StructuredCheck>,
    /// The Playground history entry of this call.
    #[serde(default)]
    pub history_id: Option<i64>,
}

/// One call as the log keeps it, from any source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub at_ms: i64,
    pub endpoint_id: Option<i64>,
    pub model: String,
    pub source: CallSource,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error_kind: Option<ErrorKind>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub usage: Option<Usage>,
    pub cost: Option<Cost>,
    /// The prompt version the call was made with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<prompt::PromptPin>,
    /// The dated price the cost was computed with (`None`: the endpoint's base price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_id: Option<i64>,
}

/// A row of the call log: the call, its id, and its endpoint's current name (`None` once the
/// endpoint is deleted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: i64,
    pub endpoint: Option<String>,
    #[serde(flatten)]
    pub call: Call,
}

/// A kind of personal data the redactor finds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    /// A payment card number (Luhn-checked).
    Card,
    /// A US Social Security number.
    Ssn,
    Ipv4,
    Ipv6,
    /// An IBAN (mod-97 checksum verified).
    Iban,
    /// A team's own pattern, by name.
    Custom(String),
}

impl PiiKind {
    /// The tag of its placeholders: `[EMAIL_1]`, `[EMPLOYEE_ID_2]`.
    pub fn tag(&self) -> String {
        match self {
            Self::Email => "EMAIL".into(),
            Self::Phone => "PHONE".into(),
            Self::Card => "CARD".into(),
            Self::Ssn => "SSN".into(),
            Self::Ipv4 => "IPV4".into(),
            Self::Ipv6 => "IPV6".into(),
            Self::Iban => "IBAN".into(),
            Self::Custom(name) => name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect(),
        }
    }
}

/// One piece of personal data found in a text: byte offsets into that text, what it was, and the
/// placeholder that replaced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiEntity {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub placeholder: String,
}

/// Tokens per second after the first token, as the protocol defines it.
pub fn tokens_per_sec(
    completion_tokens: u64,
    latency_ms: u64,
    ttft_ms: Option<u64>,
) -> Option<f64> {
    let ttft = ttft_ms?;
    let gen_ms = latency_ms.checked_sub(ttft)?;
    if gen_ms == 0 || completion_tokens == 0 {
        return None;
    }
    Some(completion_tokens as f64 * 1000.0 / gen_ms as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_stable() {
        assert_eq!(
            serde_json::to_string(&ErrorKind::RateLimit).unwrap(),
            "\"rate_limit\""
        );
        for k in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(
            serde_json::to_string(&UsageSource::Estimated).unwrap(),
            "\"estimated\""
        );
        assert_eq!(<cmd::Chat as Command>::NAME, "chat");
    }

    #[test]
    fn a_token_change_never_shows_the_token_in_debug() {
        let t = TokenChange::Replace("canary-api-77".into());
        assert!(!format!("{t:?}").contains("canary"));
        let wire = serde_json::to_value(&t).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"action": "replace", "token": "canary-api-77"})
        );
        assert_eq!(
            serde_json::from_value::<TokenChange>(serde_json::json!({"action": "keep"})).unwrap(),
            TokenChange::Keep
        );
    }

    #[test]
    fn endpoint_spec_defaults_fill_in() {
        let spec: EndpointSpec =
            serde_json::from_str(r#"{"name":"a","base_url":"http://x/v1","model":"m"}"#).unwrap();
        assert_eq!(spec.timeout_ms, 60_000);
        assert_eq!(spec.max_retries, 2);
        assert_eq!(spec.status, EndpointStatus::Active);
    }

    #[test]
    fn parameters_outside_the_protocol_ranges_name_their_field() {
        let ok = Params {
            temperature: Some(2.0),
            top_p: Some(0.0),
            max_tokens: Some(1),
            ..Params::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let field = |p: Params| p.check().unwrap_err().0;
        assert_eq!(
            field(Params {
                temperature: Some(2.1),
                ..Params::default()
            }),
            "temperature"
        );
        assert_eq!(
            field(Params {
                top_p: Some(-0.1),
                ..Params::default()
            }),
            "top_p"
        );
        assert_eq!(
            field(Params {
                max_tokens: Some(0),
                ..Params::default()
            }),
            "max_tokens"
        );
        assert_eq!(
            field(Params {
                stop: vec!["a".into(); 5],
                ..Params::default()
            }),
            "stop"
        );
    }

    #[test]
    fn tokens_per_sec_excludes_time_to_first_token() {
        assert_eq!(tokens_per_sec(100, 1500, Some(500)), Some(100.0));
        assert_eq!(tokens_per_sec(100, 500, Some(500)), None);
        assert_eq!(tokens_per_sec(100, 500, None), None);
    }
}
