//! OpenTelemetry export against a real OTLP/HTTP receiver on 127.0.0.1 (an axum server that
//! decodes the protobuf requests): the spans of a streamed call, a failed call, a call whose
//! usage is estimated and a run's call, checked attribute by attribute; a collector that is
//! down; and an endpoint token (a canary, in the real OS keyring) that reaches no span.
//! Run inside scripts/with-keyring (scripts/test does).

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use milc_api::otel::OtelChange;
use milc_api::prompt::{NewVersion, PromptContent, PromptPin, RedactMode, RedactionPolicy};
use milc_api::run::RunSpec;
use milc_api::{
    CallSource, ChatRequest, ChatResult, EndpointSpec, Message, Params, PricePerMillion, Role,
    TokenChange, UsageSource,
};
use milc_core::{Console, Error, SecretString};
use milc_sim::SimConfig;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode as Code, Span};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const CANARY: &str = "CANARY_otel_upstream_token_5e7d9b";
const COLLECTOR_SECRET: &str = "Bearer collector-secret-4b1f";

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests need a Secret Service on a D-Bus session bus: run scripts/test"
    );
}

/// One request the collector received: its headers, its raw bytes and its spans.
struct Received {
    headers: HeaderMap,
    body: Bytes,
    spans: Vec<Span>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// An OTLP/HTTP traces receiver on a free loopback port; answers as a collector does.
async fn collector() -> (String, Inbox) {
    async fn traces(
        State(inbox): State<Inbox>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
        let Ok(req) = ExportTraceServiceRequest::decode(body.clone()) else {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain")],
                b"not an ExportTraceServiceRequest".to_vec(),
            );
        };
        let spans = req
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect();
        inbox.lock().unwrap().push(Received {
            headers,
            body,
            spans,
        });
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
    }
    let inbox: Inbox = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

/// A span's attributes by key.
fn attrs(s: &Span) -> BTreeMap<String, V> {
    s.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

fn text(a: &BTreeMap<String, V>, key: &str) -> String {
    match a.get(key) {
        Some(V::StringValue(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn int(a: &BTreeMap<String, V>, key: &str) -> i64 {
    match a.get(key) {
        Some(V::IntValue(n)) => *n,
        other => panic!("{key}: {other:?}"),
    }
}

fn flag(a: &BTreeMap<String, V>, key: &str) -> bool {
    match a.get(key) {
        Some(V::BoolValue(b)) => *b,
        other => panic!("{key}: {other:?}"),
    }
}

fn strings(a: &BTreeMap<String, V>, key: &str) -> Vec<String> {
    match a.get(key) {
        Some(V::ArrayValue(arr)) => arr
            .values
            .iter()
            .map(|v| match &v.value {
                Some(V::StringValue(s)) => s.clone(),
                other => panic!("{key}: {other:?}"),
            })
            .collect(),
        other => panic!("{key}: {other:?}"),
    }
}

/// The span of call `id` among everything received.
fn span_of(inbox: &Inbox, id: i64) -> Span {
    let got = inbox.lock().unwrap();
    let found: Vec<Span> = got
        .iter()
        .flat_map(|r| &r.spans)
        .filter(|s| attrs(s).get("milc.call_id") == Some(&V::IntValue(id)))
        .cloned()
        .collect();
    assert_eq!(found.len(), 1, "one span for call {id}");
    found.into_iter().next().unwrap()
}

fn spec(name: &str, url: &str, headers: &[(&str, &str)]) -> EndpointSpec {
    let mut s = EndpointSpec::new(name, url, "milc-sim");
    s.prices.input = PricePerMillion::from_micros(2_500_000);
    s.prices.output = PricePerMillion::from_micros(10_000_000);
    s.max_retries = 0;
    s.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    s.redaction = RedactionPolicy {
        mode: RedactMode::Logging,
        log_bodies: true,
        ..RedactionPolicy::default()
    };
    s
}

async fn ask(
    c: &Console,
    endpoint: &str,
    text: &str,
    stream: bool,
    source: CallSource,
) -> Result<ChatResult, Error> {
    let mut req = ChatRequest::new(
        vec![
            Message::new(Role::System, "Answer in one sentence."),
            Message::new(Role::User, text),
        ],
        Params {
            temperature: Some(0.3),
            max_tokens: Some(200),
            ..Params::default()
        },
    );
    req.stream = stream;
    c.chat(
        endpoint,
        &req,
        source,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
}

const QUESTION: &str = "My invoice from March was charged twice. Please refund one of the two \
                        charges and write to jane.doe@example.com when it is done.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_a_span_with_the_genai_attributes_and_the_consoles_own() {
    require_session_bus();
    let (collector_url, inbox) = collector().await;
    let sim = milc_sim::start(
        ([127, 0, 0, 1], 0).into(),
        SimConfig {
            api_key: Some(CANARY.into()),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let sim_port = i64::from(
        reqwest::Url::parse(&sim.base_url())
            .unwrap()
            .port()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    let token = || Some(SecretString::new(CANARY));
    c.add_endpoint(spec("sim", &sim.base_url(), &[]), token())
        .await
        .unwrap();
    c.add_endpoint(
        spec(
            "sim-down",
            &sim.base_url(),
            &[("x-sim-fault", "server_error")],
        ),
        token(),
    )
    .await
    .unwrap();
    c.add_endpoint(
        spec(
            "sim-no-usage",
            &sim.base_url(),
            &[("x-sim-fault", "no_usage")],
        ),
        token(),
    )
    .await
    .unwrap();

    let settings = c
        .otel_set(&OtelChange {
            endpoint: collector_url.clone(),
            headers: [(
                "Authorization".to_owned(),
                TokenChange::Replace(COLLECTOR_SECRET.into()),
            )]
            .into(),
        })
        .await
        .unwrap();
    assert_eq!(settings.traces_url, format!("{collector_url}/v1/traces"));
    assert_eq!(settings.headers, ["authorization"]);

    // A streamed Playground call, its bodies kept (redacted).
    let streamed = ask(&c, "sim", QUESTION, true, CallSource::Playground)
        .await
        .unwrap();
    // A failed call: the server answers 500 and nothing is retried.
    let Err(Error::Call {
        error,
        call_id: Some(failed_id),
        ..
    }) = ask(&c, "sim-down", QUESTION, false, CallSource::Cli).await
    else {
        panic!("the call should fail");
    };
    assert_eq!(error.status, Some(500));
    // A call whose server reports no usage: estimated, and flagged so.
    let estimated = ask(&c, "sim-no-usage", QUESTION, false, CallSource::Cli)
        .await
        .unwrap();
    assert_eq!(estimated.usage.source, UsageSource::Estimated);
    // A run's call: run and prompt version on the span.
    c.save_prompt(
        NewVersion {
            prompt: "qa".into(),
            description: None,
            content: PromptContent {
                messages: vec![Message::new(Role::User, "{{q}}")],
                ..PromptContent::default()
            },
            note: String::new(),
        },
        true,
    )
    .await
    .unwrap();
    let items = milc_core::datasets::parse_jsonl(
        "d.jsonl",
        &format!("{{\"q\": \"{QUESTION}\", \"expected\": \"A refund.\"}}\n"),
    )
    .unwrap();
    c.import_items("d", &items, "d.jsonl").await.unwrap();
    let run = c
        .create_run(RunSpec {
            prompt: "qa".into(),
            endpoint: "sim".into(),
            dataset: "d".into(),
            params: Params::default(),
            repeat: 1,
            concurrency: 1,
            scorers: vec![],
            stem: false,
        })
        .await
        .unwrap();
    c.execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap();
    let run_call = c
        .run_results_page(run.id, &Default::default())
        .await
        .unwrap()
        .results[0]
        .call_id
        .unwrap();

    // An embeddings call: its own operation, input tokens only, no bodies.
    let p = c.prepare("sim", None).await.unwrap();
    c.embed(&p, &[QUESTION.to_owned()], CallSource::Cli)
        .await
        .unwrap();
    let embed_call = c.calls(1).await.unwrap()[0].id;

    c.otel_flush().await;
    let status = c.otel_status().await.unwrap();
    assert!(status.active);
    assert_eq!((status.exported, status.dropped), (5, 0), "{status:?}");
    assert_eq!(status.last_error, None);

    // The streamed call.
    let s = span_of(&inbox, streamed.call_id);
    let a = attrs(&s);
    assert_eq!(s.name, "chat milc-sim");
    assert_eq!(s.kind, SpanKind::Client as i32);
    assert_eq!(
        s.end_time_unix_nano - s.start_time_unix_nano,
        streamed.latency_ms * 1_000_000
    );
    assert_eq!(s.status.as_ref().unwrap().code, Code::Unset as i32);
    assert_eq!(text(&a, "gen_ai.operation.name"), "chat");
    assert_eq!(text(&a, "gen_ai.provider.name"), "openai");
    assert_eq!(text(&a, "gen_ai.request.model"), "milc-sim");
    assert_eq!(text(&a, "gen_ai.response.model"), "milc-sim");
    assert_eq!(
        int(&a, "gen_ai.usage.input_tokens"),
        streamed.usage.prompt_tokens as i64
    );
    assert_eq!(
        int(&a, "gen_ai.usage.output_tokens"),
        streamed.usage.completion_tokens as i64
    );
    assert_eq!(strings(&a, "gen_ai.response.finish_reasons"), ["stop"]);
    assert_eq!(
        a.get("gen_ai.request.temperature"),
        Some(&V::DoubleValue(0.3))
    );
    assert_eq!(int(&a, "gen_ai.request.max_tokens"), 200);
    assert_eq!(text(&a, "server.address"), "127.0.0.1");
    assert_eq!(int(&a, "server.port"), sim_port);
    assert!(!a.contains_key("error.type"));
    assert_eq!(text(&a, "milc.source"), "playground");
    assert_eq!(text(&a, "milc.endpoint"), "sim");
    assert_eq!(text(&a, "milc.cost_usd"), streamed.cost.usd());
    assert!(!flag(&a, "milc.usage_estimated"));
    assert_eq!(int(&a, "milc.ttft_ms"), streamed.ttft_ms.unwrap() as i64);
    assert!(!a.contains_key("milc.run_id"));
    // Bodies as stored: redacted.
    let input: serde_json::Value =
        serde_json::from_str(&text(&a, "gen_ai.input.messages")).unwrap();
    let user = input[1]["parts"][0]["content"].as_str().unwrap();
    assert!(user.contains("[EMAIL_1]"), "{user}");
    let stored = c.call_body(streamed.call_id).await.unwrap().unwrap();
    assert_eq!(user, stored.request["messages"][1]["content"]);
    let output: serde_json::Value =
        serde_json::from_str(&text(&a, "gen_ai.output.messages")).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], stored.response.as_str());
    assert_eq!(output[0]["finish_reason"], "stop");

    // The failed call.
    let s = span_of(&inbox, failed_id);
    let a = attrs(&s);
    let st = s.status.as_ref().unwrap();
    assert_eq!(
        (st.code, st.message.as_str()),
        (Code::Error as i32, "server")
    );
    assert_eq!(text(&a, "error.type"), "server");
    assert_eq!(int(&a, "http.response.status_code"), 500);
    assert_eq!(text(&a, "milc.source"), "cli");
    assert_eq!(text(&a, "milc.outcome"), "error");
    assert!(
        !a.contains_key("gen_ai.usage.input_tokens"),
        "no tokens spent"
    );
    assert!(!a.contains_key("milc.cost_usd"));

    // The call whose usage was estimated.
    let a = attrs(&span_of(&inbox, estimated.call_id));
    assert!(flag(&a, "milc.usage_estimated"));
    assert_eq!(
        int(&a, "gen_ai.usage.input_tokens"),
        estimated.usage.prompt_tokens as i64
    );
    assert_eq!(
        int(&a, "gen_ai.usage.output_tokens"),
        estimated.usage.completion_tokens as i64
    );
    assert_eq!(text(&a, "milc.cost_usd"), estimated.cost.usd());

    // The run's call.
    let a = attrs(&span_of(&inbox, run_call));
    assert_eq!(int(&a, "milc.run_id"), run.id);
    assert_eq!(text(&a, "milc.source"), "run");
    let pin = PromptPin {
        prompt: "qa".into(),
        version: 1,
    };
    assert_eq!(text(&a, "milc.prompt_version"), pin.to_string());

    // The embeddings call.
    let s = span_of(&inbox, embed_call);
    let a = attrs(&s);
    assert_eq!(s.name, "embeddings milc-sim");
    assert_eq!(text(&a, "gen_ai.operation.name"), "embeddings");
    assert!(int(&a, "gen_ai.usage.input_tokens") > 0);
    assert!(!a.contains_key("gen_ai.usage.output_tokens"));
    assert!(!a.contains_key("gen_ai.input.messages"));

    // What reached the collector: its own header, protobuf, and never the endpoint's token or
    // the unredacted address.
    for r in inbox.lock().unwrap().iter() {
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["authorization"], COLLECTOR_SECRET);
        let all: Vec<u8> = r
            .headers
            .iter()
            .flat_map(|(k, v)| [k.as_str().as_bytes(), v.as_bytes()].concat())
            .chain(r.body.iter().copied())
            .collect();
        assert!(!contains(&all, CANARY.as_bytes()), "the token left");
        assert!(!contains(&r.body, b"jane.doe@example.com"));
    }

    // The collector's header value lives in the keyring, not in any file of the database.
    c.close().await;
    drop(c);
    let hits = files_containing(dir.path(), b"collector-secret");
    assert!(hits.is_empty(), "the header value is in {hits:?}");
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    assert_eq!(
        c.otel_get().await.unwrap().unwrap().headers,
        ["authorization"]
    );
    c.otel_clear().await.unwrap();
    assert_eq!(c.otel_get().await.unwrap(), None);
    assert!(
        c.secrets()
            .otel_header("authorization")
            .await
            .unwrap()
            .is_none(),
        "cleared from the keyring"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_the_calls_nothing_but_counted_drops() {
    require_session_bus();
    // A port that was free a moment ago and now has no listener.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sim = milc_sim::start(([127, 0, 0, 1], 0).into(), SimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    c.add_endpoint(spec("sim", &sim.base_url(), &[]), None)
        .await
        .unwrap();
    c.otel_set(&OtelChange {
        endpoint: format!("http://{closed}"),
        headers: BTreeMap::new(),
    })
    .await
    .unwrap();
    for stream in [true, false, true] {
        ask(&c, "sim", QUESTION, stream, CallSource::Cli)
            .await
            .expect("the call succeeds whatever the collector does");
    }
    c.otel_flush().await;
    let s = c.otel_status().await.unwrap();
    assert_eq!((s.exported, s.dropped), (0, 3), "{s:?}");
    let why = s.last_error.unwrap();
    assert!(why.contains(&closed.to_string()), "{why}");
    assert_eq!(c.calls(10).await.unwrap().len(), 3, "every call logged");

    // Export off: nothing more is offered, so nothing more is dropped.
    c.otel_clear().await.unwrap();
    ask(&c, "sim", QUESTION, false, CallSource::Cli)
        .await
        .unwrap();
    c.otel_flush().await;
    let s = c.otel_status().await.unwrap();
    assert!(!s.active);
    assert_eq!((s.exported, s.dropped), (0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_already_open_picks_up_settings_another_process_made() {
    let (collector_url, inbox) = collector().await;
    let sim = milc_sim::start(([127, 0, 0, 1], 0).into(), SimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    // Like a gateway or the window that keeps running, and a `milc otel set` beside it.
    let running = common::open(&db).await.unwrap();
    running
        .add_endpoint(spec("sim", &sim.base_url(), &[]), None)
        .await
        .unwrap();
    let other = common::open(&db).await.unwrap();
    other
        .otel_set(&OtelChange {
            endpoint: collector_url,
            headers: BTreeMap::new(),
        })
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while !running.otel_status().await.unwrap().active {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "the running console never read the new settings"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = ask(&running, "sim", QUESTION, false, CallSource::Cli)
        .await
        .unwrap();
    running.otel_flush().await;
    let a = attrs(&span_of(&inbox, r.call_id));
    assert_eq!(text(&a, "milc.endpoint"), "sim");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Files below `dir` holding `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| contains(&b, needle)) {
            hits.push(path.display().to_string());
        }
    }
    hits
}
