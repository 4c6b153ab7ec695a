//! `POST /v1/chat/completions`: strict request validation, deterministic completion generation,
//! usage accounting, the non-stream JSON rendering and the handler that applies faults (the
//! stream rendering and pacing live in `sse.rs`).
//!
//! What a text answer says is decided in `answer.rs` (sentences extracted from the last user
//! message, shaped by the instructions); with `json_object` / `json_schema` it comes from
//! `structured.rs`; a user message without usable text gets 12–48 random words. Either way the
//! token limit then cuts it (`finish_reason: "length"`), then the first stop sequence does.
//!
//! Models: an id containing "reasoning" reports reasoning tokens (below) and waits
//! [`REASONING_LATENCY_FACTOR`] × the configured latency before answering; an id containing
//! "small" answers like a weaker model (see `answer.rs`).
//!
//! Usage accounting (tokenizer in `tokens.rs`):
//! * `prompt_tokens` = Σ over messages (`tokens(content)` + 4) + 3; a content array counts its
//!   `{"type":"text"}` parts only.
//! * `prompt_tokens_details.cached_tokens` = the share of the leading run of system/developer
//!   messages (their `tokens + 4` each): a deterministic stand-in for a prefix cache.
//! * `completion_tokens` = tokens of the returned content (one per streamed piece), plus
//!   [`REASONING_TOKENS`] per choice for a reasoning model (reported again, as a subset, in
//!   `completion_tokens_details.reasoning_tokens`). The token limit (`max_completion_tokens`,
//!   else `max_tokens`) caps reasoning plus content, like OpenAI's o-series.
//! * With `n > 1` the prompt is counted once and completions are summed over choices.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::answer::{self, Decoding, Quality};
use crate::completion::{ChoiceText, Completion, CompletionDetails, PromptDetails, Usage};
use crate::error::ApiError;
use crate::faults::{self, parse_fault_header, Fault, FAULT_HEADER};
use crate::sse::{paced_body, render_sse, StreamEnd};
use crate::state::{LiveGuard, Shared};
use crate::structured;
use crate::tokens::{count_tokens, hash_json, mix64, Fnv1a, SplitMix64, VOCABULARY};

/// Hidden reasoning tokens a reasoning model spends per choice.
pub const REASONING_TOKENS: u64 = 8;
/// A reasoning model thinks before its first token: its latency is this many times the
/// configured one.
pub const REASONING_LATENCY_FACTOR: u32 = 3;
const MIN_WORDS: u64 = 12;
const MAX_WORDS: u64 = 48;
const MAX_N: u64 = 128;
const MAX_STOP: usize = 4;
const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// Any served model whose id contains "reasoning" behaves as a reasoning model, so a custom
/// `--model foo-reasoning` gets the same accounting as the default `milc-sim-reasoning`.
pub fn is_reasoning_model(model: &str) -> bool {
    model.contains("reasoning")
}

/// The fields of a chat request that influence the simulated answer, after validation.
#[derive(Debug)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Value>,
    pub stream: bool,
    pub include_usage: bool,
    /// `max_completion_tokens`, else `max_tokens`.
    pub limit: Option<u64>,
    pub stop: Vec<String>,
    pub n: u64,
    pub seed: Option<Number>,
    /// Only `0` matters: it makes every choice the greedy answer (see `answer.rs`).
    pub temperature: Option<f64>,
    pub format: structured::Format,
}

/// Treats an explicit `null` like an absent field, as OpenAI does.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn positive_int(obj: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, ApiError> {
    match field(obj, name) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ApiError::bad_request(
                format!(
                    "Invalid '{name}': expected an integer greater than or equal to 1, got {v}."
                ),
                Some(name),
            )),
        },
    }
}

fn number_in(
    obj: &Map<String, Value>,
    name: &'static str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ApiError> {
    match field(obj, name) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
            _ => Err(ApiError::bad_request(
                format!("Invalid '{name}': expected a number between {min} and {max}, got {v}."),
                Some(name),
            )),
        },
    }
}

fn validate_message(i: usize, message: &Value) -> Result<(), ApiError> {
    let bad = |msg: String| ApiError::bad_request(msg, Some("messages"));
    let obj = message
        .as_object()
        .ok_or_else(|| bad(format!("Invalid 'messages[{i}]': expected an object.")))?;
    let role = match obj.get("role") {
        Some(Value::String(role)) => role.as_str(),
        Some(_) => {
            return Err(bad(format!(
                "Invalid 'messages[{i}].role': expected a string."
            )))
        }
        None => {
            return Err(bad(format!(
                "Missing required parameter: 'messages[{i}].role'."
            )))
        }
    };
    if !ROLES.contains(&role) {
        return Err(bad(format!(
            "Invalid value for 'messages[{i}].role': '{role}'. Supported values are: 'system', \
             'developer', 'user', 'assistant' and 'tool'."
        )));
    }
    match obj.get("content") {
        None | Some(Value::Null) if role == "assistant" => Ok(()),
        None | Some(Value::Null) => Err(bad(format!(
            "Missing required parameter: 'messages[{i}].content'."
        ))),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str);
                match kind {
                    Some("text") if part.get("text").is_some_and(Value::is_string) => {}
                    Some("text") => {
                        return Err(bad(format!(
                            "Missing required parameter: 'messages[{i}].content[{j}].text'."
                        )))
                    }
                    Some(_) => {}
                    None => {
                        return Err(bad(format!(
                            "Missing required parameter: 'messages[{i}].content[{j}].type'."
                        )))
                    }
                }
            }
            Ok(())
        }
        Some(_) => Err(bad(format!(
            "Invalid 'messages[{i}].content': expected a string or an array of content parts."
        ))),
    }
}

/// Parses and validates a request body like a strict server (OpenAI / vLLM) would.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("We could not parse the JSON body of your request: {e}."),
            None,
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
            None,
        ));
    };

    let model = match field(&obj, "model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => {
            return Err(ApiError::bad_request(
                "Missing required parameter: 'model'.",
                Some("model"),
            ))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid 'model': expected a string.",
                Some("model"),
            ))
        }
    };

    let messages = match field(&obj, "messages") {
        None => {
            return Err(ApiError::bad_request(
                "Missing required parameter: 'messages'.",
                Some("messages"),
            ))
        }
        Some(Value::Array(m)) if m.is_empty() => {
            return Err(ApiError::bad_request(
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                Some("messages"),
            ))
        }
        Some(Value::Array(m)) => m.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid 'messages': expected an array of message objects.",
                Some("messages"),
            ))
        }
    };
    for (i, m) in messages.iter().enumerate() {
        validate_message(i, m)?;
    }

    let stream = match field(&obj, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid 'stream': expected a boolean.",
                Some("stream"),
            ))
        }
    };

    // vLLM and NVIDIA's hosted API reject this combination; a client that sends it works against
    // OpenAI but breaks there, so the simulator is strict to catch it early.
    let include_usage = match field(&obj, "stream_options") {
        None => false,
        Some(_) if !stream => {
            return Err(ApiError::bad_request(
                "Invalid 'stream_options': stream_options can only be set when stream is true.",
                Some("stream_options"),
            ))
        }
        Some(Value::Object(opts)) => match field(opts, "include_usage") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "Invalid 'stream_options.include_usage': expected a boolean.",
                    Some("stream_options"),
                ))
            }
        },
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid 'stream_options': expected an object.",
                Some("stream_options"),
            ))
        }
    };

    let max_tokens = positive_int(&obj, "max_tokens")?;
    let max_completion_tokens = positive_int(&obj, "max_completion_tokens")?;
    let n = positive_int(&obj, "n")?.unwrap_or(1);
    if n > MAX_N {
        return Err(ApiError::bad_request(
            format!("Invalid 'n': {n} is greater than the maximum of {MAX_N}."),
            Some("n"),
        ));
    }

    let stop = match field(&obj, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            if items.len() > MAX_STOP {
                return Err(ApiError::bad_request(
                    format!("Invalid 'stop': at most {MAX_STOP} stop sequences are allowed."),
                    Some("stop"),
                ));
            }
            items
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid 'stop': expected a string or an array of strings.",
                        Some("stop"),
                    )
                })?
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid 'stop': expected a string or an array of strings.",
                Some("stop"),
            ))
        }
    };

    let seed = match field(&obj, "seed") {
        None => None,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid 'seed': expected an integer.",
                Some("seed"),
            ))
        }
    };

    let temperature = number_in(&obj, "temperature", 0.0, 2.0)?;
    number_in(&obj, "top_p", 0.0, 1.0)?;
    number_in(&obj, "frequency_penalty", -2.0, 2.0)?;
    number_in(&obj, "presence_penalty", -2.0, 2.0)?;

    Ok(ChatRequest {
        model,
        messages,
        stream,
        include_usage,
        limit: max_completion_tokens.or(max_tokens),
        stop,
        n,
        seed,
        temperature,
        format: structured::parse(field(&obj, "response_format"))?,
    })
}

fn content_tokens(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(s)) => count_tokens(s),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(count_tokens)
            .sum(),
        _ => 0,
    }
}

/// `(prompt_tokens, cached_tokens)` for a validated message list.
pub fn prompt_usage(messages: &[Value]) -> (u64, u64) {
    let mut prompt = 3;
    let mut cached = 0;
    let mut in_prefix = true;
    for m in messages {
        let tokens = content_tokens(m.get("content")) + 4;
        prompt += tokens;
        let role = m.get("role").and_then(Value::as_str);
        if in_prefix && matches!(role, Some("system" | "developer")) {
            cached += tokens;
        } else {
            in_prefix = false;
        }
    }
    (prompt, cached)
}

/// The seed of a request's output: everything that should make the answer differ, nothing that
/// should not (so `stream`, `stop` and the limits leave the text unchanged up to the cut).
pub fn request_hash(req: &ChatRequest) -> u64 {
    let mut h = Fnv1a::default();
    h.write(req.model.as_bytes());
    h.separator();
    for m in &req.messages {
        hash_json(&mut h, m);
        h.separator();
    }
    match &req.seed {
        Some(seed) => h.write(seed.to_string().as_bytes()),
        None => h.write(b"-"),
    }
    h.finish()
}

/// 12–48 random vocabulary words, for a request with nothing to answer from.
fn random_words(rng: &mut SplitMix64) -> (String, Vec<usize>) {
    let words = MIN_WORDS + rng.below(MAX_WORDS - MIN_WORDS + 1);
    let mut text = String::with_capacity(words as usize * 8);
    let mut ends = Vec::with_capacity(words as usize);
    for k in 0..words {
        if k > 0 {
            text.push(' ');
        }
        text.push_str(VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize]);
        ends.push(text.len());
    }
    (text, ends)
}

/// Choice `index` of a request whose hash is `base`.
fn generate_choice(
    base: u64,
    index: u64,
    reasoning_model: bool,
    req: &ChatRequest,
) -> (ChoiceText, u64) {
    let seed = base.wrapping_add(index);
    let mut rng = SplitMix64::new(seed);
    if req.format != structured::Format::Text {
        return json_choice(&mut rng, reasoning_model, req);
    }
    let sampled = req.temperature != Some(0.0) && (req.seed.is_some() || index > 0);
    let decoding = Decoding {
        quality: Quality::of(&req.model),
        seed,
        sample: sampled.then(|| mix64(base).wrapping_add(index)),
    };
    let (mut text, mut ends) = match answer::answer(&req.messages, decoding) {
        Some(text) => {
            let ends = answer::token_ends(&text);
            (text, ends)
        }
        None => random_words(&mut rng),
    };

    let mut reasoning = if reasoning_model { REASONING_TOKENS } else { 0 };
    let mut finish_reason = "stop";
    if let Some(limit) = req.limit {
        reasoning = reasoning.min(limit);
        let budget = (limit - reasoning) as usize;
        if ends.len() > budget {
            ends.truncate(budget);
            text.truncate(ends.last().copied().unwrap_or(0));
            finish_reason = "length";
        }
    }

    let cut = req
        .stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    if let Some(cut) = cut {
        text.truncate(cut);
        ends.retain(|&e| e <= cut);
        if cut > ends.last().copied().unwrap_or(0) {
            ends.push(cut);
        }
        finish_reason = "stop";
    }
    (
        ChoiceText {
            text,
            ends,
            finish_reason,
        },
        reasoning,
    )
}

/// A JSON answer, cut at the token limit like any other (and then no longer valid JSON).
fn json_choice(
    rng: &mut SplitMix64,
    reasoning_model: bool,
    req: &ChatRequest,
) -> (ChoiceText, u64) {
    let mut text = structured::generate(&req.format, rng);
    let mut ends = structured::token_ends(&text);
    let mut reasoning = if reasoning_model { REASONING_TOKENS } else { 0 };
    let mut finish_reason = "stop";
    if let Some(limit) = req.limit {
        reasoning = reasoning.min(limit);
        let budget = (limit - reasoning) as usize;
        if ends.len() > budget {
            ends.truncate(budget);
            text.truncate(ends.last().copied().unwrap_or(0));
            finish_reason = "length";
        }
    }
    (
        ChoiceText {
            text,
            ends,
            finish_reason,
        },
        reasoning,
    )
}

/// The deterministic answer to a validated request.
pub fn complete(req: &ChatRequest) -> Completion {
    let base = request_hash(req);
    let reasoning_model = is_reasoning_model(&req.model);
    let (prompt_tokens, cached_tokens) = prompt_usage(&req.messages);
    let mut choices = Vec::with_capacity(req.n as usize);
    let mut completion_tokens = 0;
    let mut reasoning_tokens = 0;
    for i in 0..req.n {
        let (choice, reasoning) = generate_choice(base, i, reasoning_model, req);
        completion_tokens += count_tokens(&choice.text) + reasoning;
        reasoning_tokens += reasoning;
        choices.push(choice);
    }
    Completion {
        choices,
        usage: Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: PromptDetails { cached_tokens },
            completion_tokens_details: CompletionDetails { reasoning_tokens },
        },
    }
}

#[derive(Serialize)]
struct ChatCompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: usize,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
}

/// The non-stream `chat.completion` object.
pub fn completion_json(
    id: &str,
    created: u64,
    model: &str,
    completion: &Completion,
    with_usage: bool,
) -> Response {
    let out = ChatCompletionOut {
        id,
        object: "chat.completion",
        created,
        model,
        choices: completion
            .choices
            .iter()
            .enumerate()
            .map(|(index, c)| ChoiceOut {
                index,
                message: MessageOut {
                    role: "assistant",
                    content: &c.text,
                    refusal: None,
                },
                logprobs: None,
                finish_reason: c.finish_reason,
            })
            .collect(),
        usage: with_usage.then_some(completion.usage),
    };
    Json(out).into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn fault_header(headers: &HeaderMap) -> Result<Option<faults::FaultHeader>, ApiError> {
    let Some(value) = headers.get(FAULT_HEADER) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request(format!("Invalid {FAULT_HEADER}: not ASCII."), None))?;
    parse_fault_header(value)
        .map(Some)
        .map_err(|e| ApiError::bad_request(e, None))
}

/// Waits until the client goes away (hyper drops this future) or the simulator stops.
async fn hang(sim: &Arc<Shared>) -> Response {
    let _live = LiveGuard::new(sim);
    sim.shutdown.cancelled().await;
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "The simulator is shutting down.".to_owned(),
        kind: "server_error",
        param: None,
        code: None,
    }
    .into_response()
}

pub async fn handle(State(sim): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let arrived = std::time::Instant::now();
    let req = match parse_request(&body) {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    if !sim.models.contains(&req.model) {
        return ApiError::model_not_found(&req.model).into_response();
    }
    let fault = match fault_header(&headers) {
        Ok(header) => sim.faults.pick(header, &body),
        Err(e) => return e.into_response(),
    };
    if let Some(fault) = fault {
        tracing::debug!(fault = fault.name(), stream = req.stream, "injecting fault");
    }
    if fault == Some(Fault::Hang) {
        return hang(&sim).await;
    }
    let times = if is_reasoning_model(&req.model) {
        REASONING_LATENCY_FACTOR
    } else {
        1
    };
    sim.latency(arrived, times).await;

    let id = sim.chat_id();
    match fault {
        Some(Fault::RateLimit) => return faults::rate_limit_response(),
        Some(Fault::Quota) => return faults::quota_response(),
        Some(Fault::ServerError) => return faults::server_error_response(),
        Some(Fault::MidStreamError) if !req.stream => return faults::server_error_response(),
        Some(Fault::Html) => return faults::html_response(),
        Some(Fault::Malformed) if !req.stream => {
            return faults::malformed_response(&id, &req.model)
        }
        _ => {}
    }

    let completion = complete(&req);
    let created = unix_now();
    if !req.stream {
        return completion_json(
            &id,
            created,
            &req.model,
            &completion,
            fault != Some(Fault::NoUsage),
        );
    }

    let end = match fault {
        Some(Fault::Malformed) => StreamEnd::Malformed,
        Some(Fault::MidStreamError) => StreamEnd::MidStreamError,
        _ => StreamEnd::Normal {
            with_usage: fault != Some(Fault::NoUsage),
        },
    };
    let sse = render_sse(
        &id,
        created,
        &req.model,
        &completion,
        req.include_usage,
        end,
    );
    let body = paced_body(sse, sim.interval, &sim);
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: Value) -> Result<ChatRequest, ApiError> {
        parse_request(body.to_string().as_bytes())
    }

    fn user(text: &str) -> Value {
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]})
    }

    #[test]
    fn rejects_what_a_strict_server_rejects() {
        let cases = [
            (
                serde_json::json!({"messages": [{"role": "user", "content": "x"}]}),
                "model",
            ),
            (serde_json::json!({"model": "m"}), "messages"),
            (
                serde_json::json!({"model": "m", "messages": []}),
                "messages",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
                "messages",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user"}]}),
                "messages",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "stream": false, "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
                "max_tokens",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}),
                "n",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                    "stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
                "temperature",
            ),
        ];
        for (body, param) in cases {
            let err = req(body.clone()).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(err.param, Some(param), "{body}: {}", err.message);
        }
        assert!(parse_request(b"{not json").is_err());
    }

    #[test]
    fn accepts_nulls_parts_and_assistant_without_content() {
        let r = req(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": []},
            ],
            "stream": null, "stream_options": null, "max_tokens": null, "stop": null,
        }))
        .unwrap();
        assert!(!r.stream);
        assert_eq!(r.limit, None);
    }

    #[test]
    fn prompt_usage_counts_messages_and_leading_system_prefix() {
        let messages = serde_json::json!([
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "No emojis!"}]},
            {"role": "user", "content": "Hello, world!"},
            {"role": "system", "content": "late"},
        ]);
        let messages = messages.as_array().unwrap();
        // Content tokens 4 ("You are terse.") + 3 ("No emojis!") + 4 ("Hello, world!") + 1,
        // +4 per message, +3; the late system message is not part of the cached prefix.
        assert_eq!(prompt_usage(messages), (12 + 16 + 3, (4 + 4) + (3 + 4)));
    }

    const TICKET: &str = "My invoice shows the wrong total for March. The export also fails \
        with a timeout error. Please fix both before Friday.";

    #[test]
    fn random_words_in_range_when_there_is_nothing_to_answer_from() {
        for i in 0..200 {
            let c = complete(&req(user(&"-".repeat(i))).unwrap());
            let words = c.choices[0].ends.len() as u64;
            assert!((MIN_WORDS..=MAX_WORDS).contains(&words));
            assert_eq!(c.usage.completion_tokens, words);
            assert_eq!(c.choices[0].finish_reason, "stop");
        }
    }

    #[test]
    fn limit_caps_with_length() {
        let full = complete(&req(user(TICKET)).unwrap());
        assert!(full.usage.completion_tokens > 5);
        assert_eq!(full.choices[0].finish_reason, "stop");
        let mut body = user(TICKET);
        body["max_tokens"] = 5.into();
        let c = complete(&req(body.clone()).unwrap());
        assert_eq!(c.usage.completion_tokens, 5);
        assert_eq!(c.choices[0].finish_reason, "length");
        assert!(full.choices[0].text.starts_with(&c.choices[0].text));
        assert_eq!(count_tokens(&c.choices[0].text), 5);
        body["max_completion_tokens"] = 3.into();
        assert_eq!(complete(&req(body).unwrap()).usage.completion_tokens, 3);

        // JSON answers are cut the same way.
        let mut body = user(TICKET);
        body["response_format"] = serde_json::json!({"type": "json_object"});
        let c = complete(&req(body.clone()).unwrap());
        let v: Value = serde_json::from_str(&c.choices[0].text).unwrap();
        assert!(v["answer"].is_string(), "{v}");
        body["max_tokens"] = 2.into();
        let c = complete(&req(body).unwrap());
        assert_eq!(c.choices[0].finish_reason, "length");
        assert_eq!(c.usage.completion_tokens, 2);
    }

    #[test]
    fn stop_cuts_before_the_first_occurrence() {
        let full = complete(&req(user(TICKET)).unwrap()).choices[0]
            .text
            .clone();
        let third = full.split(' ').nth(2).unwrap().to_owned();
        let mut body = user(TICKET);
        body["stop"] = serde_json::json!(["zzz", format!(" {third}")]);
        let cut = complete(&req(body).unwrap());
        let choice = &cut.choices[0];
        let expected = &full[..full.find(&format!(" {third}")).unwrap()];
        assert_eq!(choice.text, expected);
        assert_eq!(choice.finish_reason, "stop");
        assert_eq!(choice.ends.last().copied().unwrap_or(0), choice.text.len());
        assert_eq!(cut.usage.completion_tokens, count_tokens(&choice.text));

        // A stop sequence inside a piece cuts the piece.
        let mut body = user(TICKET);
        body["stop"] = "voi".into();
        let choice = &complete(&req(body).unwrap()).choices[0];
        assert_eq!(choice.text, "My in");
        assert_eq!(choice.ends, [2, 5]);
    }

    #[test]
    fn reasoning_tokens_fit_inside_the_limit() {
        let mut body = user(TICKET);
        body["model"] = "milc-sim-reasoning".into();
        let c = complete(&req(body.clone()).unwrap());
        assert_eq!(c.usage.completion_tokens_details.reasoning_tokens, 8);
        assert_eq!(
            c.usage.completion_tokens,
            8 + count_tokens(&c.choices[0].text)
        );
        body["max_completion_tokens"] = 10.into();
        let c = complete(&req(body.clone()).unwrap());
        assert_eq!(c.usage.completion_tokens, 10);
        assert_eq!(c.choices[0].ends.len(), 2);
        assert_eq!(c.choices[0].finish_reason, "length");
        body["max_completion_tokens"] = 5.into();
        let c = complete(&req(body).unwrap());
        assert_eq!(c.usage.completion_tokens, 5);
        assert_eq!(c.usage.completion_tokens_details.reasoning_tokens, 5);
        assert_eq!(c.choices[0].text, "");
    }

    #[test]
    fn sse_rendering_is_one_event_per_piece_and_joins_to_the_text() {
        let mut body = user(TICKET);
        body["n"] = 2.into();
        let c = complete(&parse_request(body.to_string().as_bytes()).unwrap());
        let sse = render_sse(
            "chatcmpl-x",
            1,
            "m",
            &c,
            true,
            StreamEnd::Normal { with_usage: true },
        );
        let text = std::str::from_utf8(&sse.bytes).unwrap();
        assert!(text.starts_with(": milc-sim\n\n"));
        assert!(text.ends_with("data: [DONE]\n\n"));
        let steps = c.choices.iter().map(|ch| ch.ends.len()).max().unwrap();
        assert_eq!(sse.group_ends.len(), steps);
        let mut joined = [String::new(), String::new()];
        let mut usage_chunks = 0;
        for event in text.split("\n\n").filter(|e| e.starts_with("data: {")) {
            let v: Value = serde_json::from_str(&event["data: ".len()..]).unwrap();
            assert_eq!(v["id"], "chatcmpl-x");
            if v["choices"].as_array().unwrap().is_empty() {
                usage_chunks += 1;
                assert_eq!(v["usage"]["completion_tokens"], c.usage.completion_tokens);
                continue;
            }
            assert!(v["usage"].is_null());
            let i = v["choices"][0]["index"].as_u64().unwrap() as usize;
            if let Some(s) = v["choices"][0]["delta"]["content"].as_str() {
                joined[i].push_str(s);
            }
        }
        assert_eq!(usage_chunks, 1);
        assert_eq!(joined[0], c.choices[0].text);
        assert_eq!(joined[1], c.choices[1].text);
        assert_ne!(c.choices[0].text, c.choices[1].text);
    }
}
