//! The client against the real simulator on 127.0.0.1:0, one test per protocol behaviour and per
//! fault kind. The simulator and the client were written independently from PROTOCOL.md.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use milc_api::{ChatRequest, ErrorKind, Message, Params, Role, UsageSource};
use milc_llm::client::{Client, Exchange, Target};
use milc_llm::SecretString;
use milc_sim::{Fault, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

async fn sim(config: SimConfig) -> SimHandle {
    milc_sim::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap()
}

fn target(sim: &SimHandle) -> Target {
    Target {
        base_url: sim.base_url(),
        model: "milc-sim".into(),
        token: None,
        headers: BTreeMap::new(),
        timeout: Duration::from_secs(10),
        max_retries: 2,
    }
}

fn with_fault(mut t: Target, fault: &str) -> Target {
    t.headers.insert("x-sim-fault".into(), fault.into());
    t
}

fn request(stream: bool) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::new(Role::System, "You are terse."),
            Message::new(
                Role::User,
                "Tell me about the lifecycle of a model integration.",
            ),
        ],
        stream,
        ..ChatRequest::new(vec![], Params::default())
    }
}

/// Runs a chat and also returns every delta as it was delivered.
async fn chat(t: &Target, req: &ChatRequest) -> (Exchange, Vec<String>) {
    let mut deltas = Vec::new();
    let ex = Client::new()
        .chat(
            t,
            req,
            &mut |d: &str| deltas.push(d.to_owned()),
            &CancellationToken::new(),
        )
        .await;
    (ex, deltas)
}

#[tokio::test]
async fn streaming_delivers_tokens_one_by_one_with_reported_usage() {
    let s = sim(SimConfig::default()).await;
    let (ex, deltas) = chat(&target(&s), &request(true)).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert!(deltas.len() > 3, "the answer arrived in pieces: {deltas:?}");
    assert_eq!(deltas.concat(), ex.output);
    let u = ex.usage.unwrap();
    assert_eq!(u.source, UsageSource::Reported);
    assert_eq!(
        u.completion_tokens,
        deltas.len() as u64,
        "the simulator sends one token per delta"
    );
    assert!(
        u.cached_tokens > 0 && u.cached_tokens < u.prompt_tokens,
        "the system prompt counts as cached"
    );
    assert!(ex.ttft.unwrap() <= ex.latency);
    assert_eq!(ex.finish_reason.as_deref(), Some("stop"));
    assert_eq!((ex.attempts, ex.status), (1, Some(200)));

    // The same request without streaming gives the same answer and the same counts.
    let (plain, plain_deltas) = chat(&target(&s), &request(false)).await;
    assert_eq!(plain.output, ex.output);
    assert_eq!(plain_deltas, vec![ex.output.clone()]);
    assert_eq!(plain.usage, ex.usage);
}

#[tokio::test]
async fn parameters_reach_the_server() {
    let s = sim(SimConfig::default()).await;
    let mut req = request(true);
    req.params.max_tokens = Some(3);
    let (ex, _) = chat(&target(&s), &req).await;
    assert_eq!(ex.usage.unwrap().completion_tokens, 3);
    assert_eq!(ex.finish_reason.as_deref(), Some("length"));

    req.params.max_tokens = None;
    req.params.seed = Some(1);
    let (a, _) = chat(&target(&s), &req).await;
    req.params.seed = Some(2);
    let (b, _) = chat(&target(&s), &req).await;
    assert_ne!(
        a.output, b.output,
        "the seed changes the simulator's answer"
    );
}

#[tokio::test]
async fn reasoning_tokens_stay_inside_completion_tokens() {
    let s = sim(SimConfig::default()).await;
    let mut t = target(&s);
    t.model = "milc-sim-reasoning".into();
    let (ex, deltas) = chat(&t, &request(true)).await;
    let u = ex.usage.unwrap();
    assert_eq!(u.reasoning_tokens, 8);
    assert_eq!(u.completion_tokens, deltas.len() as u64 + 8);
}

#[tokio::test]
async fn rate_limit_waits_as_the_server_asks_then_succeeds() {
    let s = sim(SimConfig::default()).await;
    let (ex, _) = chat(&with_fault(target(&s), "rate_limit:1"), &request(true)).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.attempts, 2);
    // The simulator asks for retry-after-ms: 200; the exponential backoff alone would wait ≥ 375 ms
    // and retry-after (1 s) would wait longer still.
    assert!(ex.latency >= Duration::from_millis(200), "{:?}", ex.latency);
    assert!(
        ex.latency < Duration::from_millis(900),
        "retry-after-ms wins over retry-after: {:?}",
        ex.latency
    );
}

#[tokio::test]
async fn persistent_rate_limit_gives_up_after_the_allowed_retries() {
    let s = sim(SimConfig::default()).await;
    let mut t = with_fault(target(&s), "rate_limit");
    t.max_retries = 1;
    let (ex, _) = chat(&t, &request(true)).await;
    let e = ex.error.unwrap();
    assert_eq!(
        (e.kind, e.status, ex.attempts),
        (ErrorKind::RateLimit, Some(429), 2)
    );
    assert!(ex.usage.is_none(), "nothing was spent");
}

#[tokio::test]
async fn exhausted_quota_is_not_retried() {
    let s = sim(SimConfig::default()).await;
    let (ex, _) = chat(&with_fault(target(&s), "quota"), &request(true)).await;
    assert_eq!(ex.error.unwrap().kind, ErrorKind::Quota);
    assert_eq!(ex.attempts, 1);
}

#[tokio::test]
async fn server_errors_are_retried_and_reported_with_the_upstream_message() {
    let s = sim(SimConfig::default()).await;
    let (ok, _) = chat(&with_fault(target(&s), "server_error:1"), &request(false)).await;
    assert!(ok.error.is_none());
    assert_eq!(ok.attempts, 2);

    let mut t = with_fault(target(&s), "server_error");
    t.max_retries = 0;
    let (ex, _) = chat(&t, &request(false)).await;
    let e = ex.error.unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::Server, Some(500)));
    assert!(
        !e.message.is_empty() && !e.message.starts_with('{'),
        "a readable message: {}",
        e.message
    );
}

#[tokio::test]
async fn a_hung_server_times_out() {
    let s = sim(SimConfig::default()).await;
    let mut t = with_fault(target(&s), "hang");
    t.timeout = Duration::from_millis(300);
    t.max_retries = 1;
    for stream in [true, false] {
        let (ex, _) = chat(&t, &request(stream)).await;
        assert_eq!(
            ex.error.unwrap().kind,
            ErrorKind::Timeout,
            "stream={stream}"
        );
        assert_eq!(ex.attempts, 2, "a timeout is retried");
    }
    s.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error() {
    let s = sim(SimConfig::default()).await;
    for stream in [true, false] {
        let (ex, _) = chat(&with_fault(target(&s), "malformed"), &request(stream)).await;
        let e = ex.error.unwrap();
        assert_eq!(e.kind, ErrorKind::Protocol, "stream={stream}: {e}");
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
    }
}

#[tokio::test]
async fn an_html_error_page_becomes_a_readable_server_error() {
    let s = sim(SimConfig::default()).await;
    let mut t = with_fault(target(&s), "html");
    t.max_retries = 0;
    let (ex, _) = chat(&t, &request(true)).await;
    let e = ex.error.unwrap();
    assert_eq!((e.kind, e.status), (ErrorKind::Server, Some(502)));
    assert_eq!(e.message, "HTML page: 502 Bad Gateway");
}

#[tokio::test]
async fn an_error_mid_stream_keeps_the_partial_answer_and_estimates_usage() {
    let s = sim(SimConfig::default()).await;
    let (ex, deltas) = chat(&with_fault(target(&s), "mid_stream_error"), &request(true)).await;
    let e = ex.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(e.message, "simulated failure mid-stream");
    assert_eq!(ex.status, Some(200), "the error came inside a 200 stream");
    assert_eq!(deltas.len(), 3);
    assert_eq!(ex.attempts, 1, "content was already shown: no retry");
    let u = ex.usage.unwrap();
    assert_eq!((u.source, u.completion_tokens), (UsageSource::Estimated, 3));
}

#[tokio::test]
async fn a_missing_usage_chunk_is_estimated_and_flagged() {
    let s = sim(SimConfig::default()).await;
    let (reported, _) = chat(&target(&s), &request(true)).await;
    let (ex, deltas) = chat(&with_fault(target(&s), "no_usage"), &request(true)).await;
    assert!(ex.error.is_none());
    assert_eq!(ex.output, reported.output);
    let u = ex.usage.unwrap();
    assert_eq!(u.source, UsageSource::Estimated);
    assert_eq!(u.completion_tokens, deltas.len() as u64);
    assert_eq!(
        u.completion_tokens,
        reported.usage.unwrap().completion_tokens
    );
    // The prompt is counted with the tokenizer: the content's tokens, 3 of framing per message
    // and 3 priming the reply.
    let req = request(true);
    let content: u64 = req
        .messages
        .iter()
        .map(|m| milc_llm::tokens::text_tokens("milc-sim", &m.content) + 3)
        .sum();
    assert_eq!(u.prompt_tokens, content + 3);

    // Not streamed: the answer is counted with the tokenizer too.
    let (ex, _) = chat(&with_fault(target(&s), "no_usage"), &request(false)).await;
    let u = ex.usage.unwrap();
    assert_eq!(u.source, UsageSource::Estimated);
    assert_eq!(
        u.completion_tokens,
        milc_llm::tokens::text_tokens("milc-sim", &ex.output)
    );
}

#[tokio::test]
async fn random_faults_from_the_config_hit_calls_and_retries_absorb_them() {
    let s = sim(SimConfig {
        faults: vec![(Fault::ServerError, 0.3)],
        seed: 7,
        ..SimConfig::default()
    })
    .await;
    let mut t = target(&s);
    t.max_retries = 6;
    let mut retried = 0;
    for _ in 0..10 {
        let (ex, _) = chat(&t, &request(false)).await;
        assert!(ex.error.is_none(), "{:?}", ex.error);
        retried += (ex.attempts > 1) as u32;
    }
    assert!(retried > 0, "some calls met a fault and were retried");
}

#[tokio::test]
async fn auth_wrong_model_and_refused_connections_are_told_apart() {
    let s = sim(SimConfig {
        api_key: Some("canary-auth-5150".into()),
        ..SimConfig::default()
    })
    .await;
    let (ex, _) = chat(&target(&s), &request(true)).await;
    let e = ex.error.unwrap();
    assert_eq!(
        (e.kind, e.status, ex.attempts),
        (ErrorKind::Auth, Some(401), 1)
    );

    let mut t = target(&s);
    t.token = Some(SecretString::new("canary-auth-5150"));
    let (ex, _) = chat(&t, &request(true)).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);

    t.model = "no-such-model".into();
    let (ex, _) = chat(&t, &request(true)).await;
    let e = ex.error.unwrap();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("no-such-model"), "{}", e.message);

    let addr = s.addr();
    s.stop().await;
    let mut t = target_at(&format!("http://{addr}/v1"));
    t.max_retries = 0;
    let (ex, _) = chat(&t, &request(true)).await;
    let e = ex.error.unwrap();
    assert_eq!(e.kind, ErrorKind::Connection);
    assert!(e.message.contains("refused"), "{}", e.message);
}

fn target_at(url: &str) -> Target {
    Target {
        base_url: url.into(),
        model: "milc-sim".into(),
        token: None,
        headers: BTreeMap::new(),
        timeout: Duration::from_secs(5),
        max_retries: 0,
    }
}

#[tokio::test]
async fn cancel_stops_a_slow_stream_and_keeps_what_arrived() {
    let s = sim(SimConfig {
        tokens_per_sec: 10.0,
        ..SimConfig::default()
    })
    .await;
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (c2, s2) = (cancel.clone(), seen.clone());
    let mut on_delta = move |d: &str| {
        let mut v = s2.lock().unwrap();
        v.push(d.to_owned());
        if v.len() == 2 {
            c2.cancel();
        }
    };
    let ex = Client::new()
        .chat(&target(&s), &request(true), &mut on_delta, &cancel)
        .await;
    assert_eq!(ex.error.unwrap().kind, ErrorKind::Cancelled);
    assert_eq!(ex.output, seen.lock().unwrap().concat());
    assert_eq!(seen.lock().unwrap().len(), 2);
    // At 10 tokens/s the whole answer (≥ 12 tokens) takes over a second.
    assert!(ex.latency < Duration::from_millis(1000), "{:?}", ex.latency);
    assert_eq!(ex.usage.unwrap().source, UsageSource::Estimated);
}

#[tokio::test]
async fn models_lists_what_the_server_serves() {
    let s = sim(SimConfig::default()).await;
    let models = Client::new().models(&target(&s)).await.unwrap();
    assert!(models.contains(&"milc-sim".to_owned()), "{models:?}");
    let err = Client::new()
        .models(&target_at("http://127.0.0.1:9/v1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection);
}
