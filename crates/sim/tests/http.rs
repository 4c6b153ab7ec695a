//! End-to-end behaviour of the simulator over real HTTP: a server on 127.0.0.1:0 per test and a
//! plain reqwest client, checking what a client of the simulator would observe.

use std::time::{Duration, Instant};

use milc_sim::{start, Fault, SimConfig, SimHandle};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

async fn sim(config: SimConfig) -> SimHandle {
    start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("bind simulator")
}

thread_local! {
    // Building a client loads the TLS roots, which is slow; each #[tokio::test] runs on its own
    // thread and runtime, so a per-thread client never outlives the runtime of its connections.
    static CLIENT: Client = Client::builder().no_proxy().build().unwrap();
}

fn client() -> Client {
    CLIENT.with(Client::clone)
}

/// A support ticket: answers are sentences of it, so they have some length.
const TICKET: &str = "Hello, I hope you are well. The export to CSV fails with a timeout error \
    after two minutes. We rely on it for the monthly report. Please fix it before Friday.";

/// The simulator's documented tokenizer: a run of letters and digits, or any other
/// non-whitespace character, is one token.
fn tokens(text: &str) -> u64 {
    let mut count = 0;
    let mut in_run = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            count += u64::from(!in_run);
            in_run = true;
        } else {
            in_run = false;
            count += u64::from(!c.is_whitespace());
        }
    }
    count
}

fn chat_body(content: &str) -> Value {
    json!({"model": "milc-sim", "messages": [
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": content},
    ]})
}

async fn post(sim: &SimHandle, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn post_fault(sim: &SimHandle, body: &Value, fault: &str) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .header("x-sim-fault", fault)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// One SSE event: either a comment line or the joined `data:` payload.
#[derive(Debug, PartialEq)]
enum Event {
    Comment(String),
    Data(String),
}

fn parse_sse(text: &str) -> Vec<Event> {
    assert!(
        text.ends_with("\n\n"),
        "stream must end with a complete event"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let mut data: Vec<&str> = Vec::new();
            let mut comment = None;
            for line in event.lines() {
                if let Some(c) = line.strip_prefix(':') {
                    comment = Some(c.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            match comment {
                Some(c) if data.is_empty() => Event::Comment(c),
                _ => Event::Data(data.join("\n")),
            }
        })
        .collect()
}

fn json_chunks(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(d) if d != "[DONE]" => Some(serde_json::from_str(d).unwrap()),
            _ => None,
        })
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect()
}

async fn stream(sim: &SimHandle, body: &Value) -> (reqwest::header::HeaderMap, String) {
    let res = post(sim, body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    (headers, res.text().await.unwrap())
}

#[tokio::test]
async fn models_health_and_request_ids() {
    let sim = sim(SimConfig::default()).await;
    let res = client()
        .get(format!("{}/models", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["milc-sim", "milc-sim-small", "milc-sim-reasoning"]);
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["owned_by"], "milc-sim");
    assert!(v["data"][0]["created"].is_u64());

    let live = client()
        .get(format!("{}/health/live", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready: Value = client()
        .get(format!("{}/health/ready", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, json!({"status": "ready"}));

    let unknown = client()
        .get(format!("{}/nowhere", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.headers().contains_key("x-request-id"));
    let v: Value = unknown.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    sim.stop().await;
}

#[tokio::test]
async fn non_stream_completion_shape_and_determinism() {
    let sim = sim(SimConfig::default()).await;
    let body = chat_body("Tell me something.");
    let res = post(&sim, &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = res.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "milc-sim");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().unwrap();
    assert_eq!(text, "Tell me something.", "the one sentence there is");
    let words = tokens(text);

    let usage = &v["usage"];
    assert_eq!(usage["completion_tokens"], words);
    // system "You are a test." = 5 tokens, user "Tell me something." = 4, +4 each, +3.
    assert_eq!(usage["prompt_tokens"], 5 + 4 + 4 + 4 + 3);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 5 + 4);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(usage["total_tokens"], 20 + words);

    let again: Value = post(&sim, &body).await.json().await.unwrap();
    assert_eq!(again["choices"][0]["message"]["content"], text);
    assert_ne!(again["id"], v["id"], "ids are unique per response");

    let mut seeded = body.clone();
    seeded["seed"] = 42.into();
    let a: Value = post(&sim, &seeded).await.json().await.unwrap();
    seeded["seed"] = 43.into();
    let b: Value = post(&sim, &seeded).await.json().await.unwrap();
    assert_ne!(a["choices"][0]["message"]["content"], text);
    assert_ne!(
        a["choices"][0]["message"]["content"],
        b["choices"][0]["message"]["content"]
    );

    let other: Value = post(&sim, &chat_body("Something else."))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(other["choices"][0]["message"]["content"], text);
    sim.stop().await;
}

#[tokio::test]
async fn stream_format_matches_the_non_stream_answer() {
    let sim = sim(SimConfig::default()).await;
    let mut body = chat_body("Stream please.");
    let plain: Value = post(&sim, &body).await.json().await.unwrap();
    let expected = plain["choices"][0]["message"]["content"].as_str().unwrap();
    let expected_tokens = plain["usage"]["completion_tokens"].as_u64().unwrap();

    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});
    let (headers, text) = stream(&sim, &body).await;
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(headers.contains_key("x-request-id"));

    let events = parse_sse(&text);
    assert_eq!(events[0], Event::Comment("milc-sim".into()));
    assert_eq!(events.last(), Some(&Event::Data("[DONE]".into())));
    let chunks = json_chunks(&events);

    let id = &chunks[0]["id"];
    assert!(id.as_str().unwrap().starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(&c["id"], id);
        assert_eq!(c["created"], chunks[0]["created"]);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "milc-sim");
    }

    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert!(chunks[0]["usage"].is_null() && chunks[0].get("usage").is_some());

    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], plain["usage"]);

    let (finish, middle) = rest.split_last().unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let content_chunks = &middle[1..];
    assert_eq!(
        content_chunks.len() as u64,
        expected_tokens,
        "one chunk per token"
    );
    for (i, c) in content_chunks.iter().enumerate() {
        let piece = c["choices"][0]["delta"]["content"].as_str().unwrap();
        assert_eq!(tokens(piece), 1, "{piece:?}");
        assert!(i > 0 || !piece.starts_with(' '), "{piece:?}");
        assert!(c.get("usage").is_some() && c["usage"].is_null());
        assert!(c["choices"][0]["finish_reason"].is_null());
    }
    assert_eq!(content_of(&chunks), expected);

    // Without include_usage: same content, no usage chunk and no usage fields.
    body.as_object_mut().unwrap().remove("stream_options");
    let (_, text) = stream(&sim, &body).await;
    let events = parse_sse(&text);
    assert_eq!(events.last(), Some(&Event::Data("[DONE]".into())));
    let chunks = json_chunks(&events);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert!(chunks
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));
    assert_eq!(content_of(&chunks), expected);
    sim.stop().await;
}

#[tokio::test]
async fn limits_stop_and_multiple_choices() {
    let sim = sim(SimConfig::default()).await;
    let base = chat_body(TICKET);
    let full: Value = post(&sim, &base).await.json().await.unwrap();
    let full_text = full["choices"][0]["message"]["content"].as_str().unwrap();

    let mut capped = base.clone();
    capped["max_tokens"] = 5.into();
    let v: Value = post(&sim, &capped).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let capped_text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(full_text.starts_with(capped_text), "{capped_text}");
    assert_eq!(tokens(capped_text), 5);
    let words: Vec<&str> = full_text.split(' ').collect();

    capped["max_completion_tokens"] = 3.into();
    let v: Value = post(&sim, &capped).await.json().await.unwrap();
    assert_eq!(
        v["usage"]["completion_tokens"], 3,
        "max_completion_tokens wins"
    );

    let stop_word = format!(" {}", words[3]);
    let mut stopped = base.clone();
    stopped["stop"] = json!([stop_word]);
    let v: Value = post(&sim, &stopped).await.json().await.unwrap();
    let cut = &full_text[..full_text.find(&stop_word).unwrap()];
    assert_eq!(v["choices"][0]["message"]["content"], cut);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    stopped["stop"] = Value::String(stop_word.clone());
    stopped["stream"] = true.into();
    let (_, text) = stream(&sim, &stopped).await;
    assert_eq!(content_of(&json_chunks(&parse_sse(&text))), cut);

    let mut many = base.clone();
    many["n"] = 3.into();
    let v: Value = post(&sim, &many).await.json().await.unwrap();
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    assert_eq!(choices[0]["message"]["content"], full_text);
    assert_ne!(
        choices[1]["message"]["content"],
        choices[2]["message"]["content"]
    );
    let total_words: u64 = choices
        .iter()
        .map(|c| tokens(c["message"]["content"].as_str().unwrap()))
        .sum();
    assert_eq!(v["usage"]["completion_tokens"], total_words);
    assert_eq!(v["usage"]["prompt_tokens"], full["usage"]["prompt_tokens"]);
    sim.stop().await;
}

#[tokio::test]
async fn reasoning_model_reports_reasoning_tokens() {
    let sim = sim(SimConfig::default()).await;
    let mut body = chat_body("Think first.");
    body["model"] = "milc-sim-reasoning".into();
    let v: Value = post(&sim, &body).await.json().await.unwrap();
    let words = tokens(v["choices"][0]["message"]["content"].as_str().unwrap());
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        8
    );
    assert_eq!(v["usage"]["completion_tokens"], words + 8);

    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});
    let (_, text) = stream(&sim, &body).await;
    let chunks = json_chunks(&parse_sse(&text));
    assert_eq!(chunks.last().unwrap()["usage"], v["usage"]);
    sim.stop().await;
}

#[tokio::test]
async fn strict_validation_errors() {
    let sim = sim(SimConfig::default()).await;

    let mut body = chat_body("x");
    body["stream_options"] = json!({"include_usage": true});
    let res = post(&sim, &body).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "stream_options");

    let mut body = chat_body("x");
    body["model"] = "gpt-imaginary".into();
    let res = post(&sim, &body).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-imaginary"));

    let res = client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"].is_string());

    for body in [
        json!({"model": "milc-sim"}),
        json!({"model": "milc-sim", "messages": []}),
        json!({"messages": [{"role": "user", "content": "x"}]}),
    ] {
        assert_eq!(
            post(&sim, &body).await.status(),
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }

    let res = post_fault(&sim, &chat_body("x"), "explode").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let msg = res.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("rate_limit") && msg.contains("no_usage"),
        "{msg}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn api_key_is_enforced_except_for_health() {
    let sim = sim(SimConfig {
        api_key: Some("sk-test-123".into()),
        ..SimConfig::default()
    })
    .await;
    let models = format!("{}/models", sim.base_url());

    let res = client().get(&models).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("x-request-id"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "invalid_api_key");

    let res = client()
        .get(&models)
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = post(&sim, &chat_body("x")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = client()
        .get(&models)
        .bearer_auth("sk-test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client()
        .post(format!("{}/chat/completions", sim.base_url()))
        .bearer_auth("sk-test-123")
        .json(&chat_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    for path in ["health/live", "health/ready"] {
        let res = client()
            .get(format!("{}/{path}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn embeddings_are_deterministic() {
    let sim = sim(SimConfig::default()).await;
    let url = format!("{}/embeddings", sim.base_url());
    let body = json!({"model": "milc-sim", "input": ["hello world", "bye"]});
    let a: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a["object"], "list");
    let data = a["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    let v: Vec<f64> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 16);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(a["usage"]["prompt_tokens"], 3);
    assert_eq!(a["usage"]["total_tokens"], 3);

    let single: Value = client()
        .post(&url)
        .json(&json!({"model": "milc-sim", "input": "hello world"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(single["data"][0]["embedding"], data[0]["embedding"]);

    let res = client()
        .post(&url)
        .json(&json!({"model": "milc-sim", "input": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    sim.stop().await;
}

#[tokio::test]
async fn status_faults() {
    let sim = sim(SimConfig::default()).await;
    let body = chat_body("faults");

    let res = post_fault(&sim, &body, "rate_limit").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = res.headers();
    assert_eq!(h["retry-after-ms"], "200");
    assert_eq!(h["retry-after"], "1");
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    assert_eq!(h["x-ratelimit-reset-requests"], "250ms");
    assert!(h.contains_key("x-ratelimit-limit-requests"));
    assert!(h.contains_key("x-request-id"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_exceeded");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let res = post_fault(&sim, &body, "quota").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!res.headers().contains_key("retry-after"));
    assert!(!res.headers().contains_key("retry-after-ms"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "insufficient_quota");
    assert_eq!(v["error"]["code"], "insufficient_quota");

    let res = post_fault(&sim, &body, "server_error").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "server_error");

    let res = post_fault(&sim, &body, "mid_stream_error").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let res = post_fault(&sim, &body, "html").await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("<h1>502 Bad Gateway</h1>"));

    let res = post_fault(&sim, &body, "malformed").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    let res = post_fault(&sim, &body, "no_usage").await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert!(v.get("usage").is_none());
    assert!(v["choices"][0]["message"]["content"].is_string());
    sim.stop().await;
}

#[tokio::test]
async fn stream_faults() {
    let sim = sim(SimConfig::default()).await;
    let mut body = chat_body("stream faults");
    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});

    let res = post_fault(&sim, &body, "mid_stream_error").await;
    assert_eq!(res.status(), StatusCode::OK);
    let events = parse_sse(&res.text().await.unwrap());
    assert!(!events.contains(&Event::Data("[DONE]".into())));
    let chunks = json_chunks(&events);
    let (error, before) = chunks.split_last().unwrap();
    assert_eq!(error["error"]["message"], "simulated failure mid-stream");
    assert_eq!(error["error"]["code"], "internal_error");
    assert_eq!(before[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(before.len(), 1 + 3, "role chunk and three tokens");

    let res = post_fault(&sim, &body, "malformed").await;
    assert_eq!(res.status(), StatusCode::OK);
    let events = parse_sse(&res.text().await.unwrap());
    let data: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Data(d) => Some(d.as_str()),
            Event::Comment(_) => None,
        })
        .collect();
    assert!(
        serde_json::from_str::<Value>(data[0]).is_ok(),
        "role chunk is fine"
    );
    assert!(
        serde_json::from_str::<Value>(data[1]).is_err(),
        "then garbage"
    );

    let res = post_fault(&sim, &body, "no_usage").await;
    let events = parse_sse(&res.text().await.unwrap());
    assert_eq!(events.last(), Some(&Event::Data("[DONE]".into())));
    let chunks = json_chunks(&events);
    assert!(
        chunks.iter().all(|c| c["usage"].is_null()),
        "no usage anywhere"
    );
    assert!(!content_of(&chunks).is_empty());

    let res = post_fault(&sim, &body, "rate_limit").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    sim.stop().await;
}

#[tokio::test]
async fn counted_fault_header_faults_only_the_first_identical_requests() {
    let sim = sim(SimConfig::default()).await;
    let body = chat_body("retry me");

    let first = post_fault(&sim, &body, "rate_limit:1").await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    let second = post_fault(&sim, &body, "rate_limit:1").await;
    assert_eq!(second.status(), StatusCode::OK);
    let other = post_fault(&sim, &chat_body("another body"), "rate_limit:1").await;
    assert_eq!(
        other.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "counted per body"
    );
    let other_kind = post_fault(&sim, &body, "server_error:2").await;
    assert_eq!(
        other_kind.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "counted per kind"
    );

    // Without a count, every request is faulted.
    for _ in 0..3 {
        assert_eq!(
            post_fault(&sim, &body, "quota").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn configured_random_faults_are_seeded() {
    let statuses = |seed| async move {
        let sim = sim(SimConfig {
            faults: vec![(Fault::ServerError, 0.5)],
            seed,
            ..SimConfig::default()
        })
        .await;
        let mut out = Vec::new();
        for i in 0..24 {
            out.push(post(&sim, &chat_body(&format!("r{i}"))).await.status());
        }
        sim.stop().await;
        out
    };
    let a = statuses(7).await;
    assert_eq!(a, statuses(7).await, "same seed, same faults");
    assert!(a.contains(&StatusCode::OK));
    assert!(a.contains(&StatusCode::INTERNAL_SERVER_ERROR));

    let always = sim(SimConfig {
        faults: vec![(Fault::Html, 1.0)],
        ..SimConfig::default()
    })
    .await;
    assert_eq!(
        post(&always, &chat_body("x")).await.status(),
        StatusCode::BAD_GATEWAY
    );
    // Only chat completions are faulted.
    let res = client()
        .get(format!("{}/models", always.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    always.stop().await;
}

#[tokio::test]
async fn hang_never_answers_and_stop_still_returns() {
    let sim = sim(SimConfig::default()).await;
    let url = format!("{}/chat/completions", sim.base_url());
    let hung = tokio::spawn(async move {
        client()
            .post(url)
            .header("x-sim-fault", "hang")
            .json(&chat_body("wait forever"))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!hung.is_finished(), "a hung request must not be answered");

    // A generous guard so a regression fails instead of wedging the test run.
    tokio::time::timeout(Duration::from_secs(10), sim.stop())
        .await
        .expect("stop() returns while a request hangs");
    let outcome = tokio::time::timeout(Duration::from_secs(10), hung)
        .await
        .expect("hung client released")
        .unwrap();
    if let Ok(res) = outcome {
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

#[tokio::test]
async fn latency_and_pacing_are_honoured() {
    let sim = sim(SimConfig {
        latency_ms: 200,
        tokens_per_sec: 100.0,
        ..SimConfig::default()
    })
    .await;
    let mut body = chat_body(TICKET);
    body["stream"] = true.into();
    let started = Instant::now();
    let res = post(&sim, &body).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "headers after latency"
    );
    let events = parse_sse(&res.text().await.unwrap());
    let pieces = json_chunks(&events)
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .count() as u32;
    assert!(pieces > 10, "{pieces}");
    let floor = Duration::from_millis(200) + Duration::from_millis(10) * (pieces - 1);
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?}",
        started.elapsed()
    );

    // The reasoning model thinks first: three times the latency before its headers.
    body["model"] = "milc-sim-reasoning".into();
    body["stream"] = false.into();
    let started = Instant::now();
    assert_eq!(post(&sim, &body).await.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    sim.stop().await;
}

#[tokio::test]
async fn stop_flushes_paced_streams_instead_of_cutting_them() {
    let sim = sim(SimConfig {
        tokens_per_sec: 1.0,
        ..SimConfig::default()
    })
    .await;
    let mut body = chat_body("very slow");
    body["stream"] = true.into();
    let res = post(&sim, &body).await;
    let reader = tokio::spawn(res.text());
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(10), sim.stop())
        .await
        .expect("stop() returns while a slow stream is open");
    let text = reader.await.unwrap().unwrap();
    assert_eq!(parse_sse(&text).last(), Some(&Event::Data("[DONE]".into())));
}

#[tokio::test]
async fn answers_follow_the_ticket_and_the_model() {
    let sim = sim(SimConfig::default()).await;
    let mut body = chat_body(TICKET);
    body["messages"][0]["content"] = "Summarize the ticket in one sentence.".into();
    let answer = |v: Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let good = answer(post(&sim, &body).await.json().await.unwrap());
    assert_eq!(
        good,
        "The export to CSV fails with a timeout error after two minutes."
    );

    body["model"] = "milc-sim-small".into();
    let res = post(&sim, &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let small = answer(res.json().await.unwrap());
    assert!(!small.is_empty());
    for word in small.split_whitespace() {
        let word = word.trim_end_matches('.');
        assert!(
            TICKET.contains(word),
            "{word} of {small:?} is in the ticket"
        );
    }

    let res = client()
        .get(format!("{}/models/milc-sim-small", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body["model"] = "milc-sim-large".into();
    assert_eq!(post(&sim, &body).await.status(), StatusCode::NOT_FOUND);
    sim.stop().await;
}

#[test]
fn the_realistic_preset_paces_like_a_hosted_model() {
    let config = SimConfig::realistic();
    assert_eq!(config.latency_ms, 40);
    assert_eq!(config.tokens_per_sec, 40.0);
    assert!(config.faults.is_empty());
    assert_eq!(config.models, SimConfig::default().models);
    assert_eq!(
        SimConfig::default().latency_ms,
        0,
        "the default stays instant"
    );
}
