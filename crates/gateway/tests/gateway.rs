//! The gateway against real simulators on 127.0.0.1, a real SQLite file and real HTTP: what a
//! client of the gateway sees, and what the call log keeps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use milc_api::lifecycle::Lifecycle;
use milc_api::{EndpointSpec, EndpointStatus};
use milc_core::Console;
use milc_gateway::{Gateway, Options};
use milc_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};

struct World {
    _dir: tempfile::TempDir,
    console: Arc<Console>,
    gw: Option<Gateway>,
    key: String,
    http: reqwest::Client,
    _sims: Vec<SimHandle>,
}

/// Endpoints: (name, index of the simulator, extra headers, max retries).
type Ep<'a> = (&'a str, usize, &'a [(&'a str, &'a str)], u32);

async fn world(sims: Vec<SimConfig>, endpoints: &[Ep<'_>], routes: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let console = Arc::new(Console::open(&dir.path().join("m.db")).await.unwrap());
    let mut handles = Vec::new();
    for c in sims {
        handles.push(
            milc_sim::start(([127, 0, 0, 1], 0).into(), c)
                .await
                .unwrap(),
        );
    }
    for (name, sim, headers, retries) in endpoints {
        let mut spec = EndpointSpec::new(*name, handles[*sim].base_url(), "milc-sim");
        spec.headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        spec.max_retries = *retries;
        spec.timeout_ms = 5_000;
        console.add_endpoint(spec, None).await.unwrap();
    }
    with_prompts(&console).await;
    let specs = milc_core::gateway::parse_routes(routes, "test.toml").unwrap();
    console.put_routes(&specs, true, "test.toml").await.unwrap();
    let key = console
        .create_gateway_key("test", None, None)
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        reload_every: Duration::from_millis(200),
        ..Options::default()
    };
    let gw = Gateway::start(console.clone(), listener, options)
        .await
        .unwrap();
    World {
        _dir: dir,
        console,
        gw: Some(gw),
        key,
        http: reqwest::Client::new(),
        _sims: handles,
    }
}

const ONE_ARM: &str = r#"
[[route]]
model = "support"
[[route.arm]]
name = "a"
endpoint = "sim"
weight = 1
"#;

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.gw.as_ref().unwrap().base_url())
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the gateway (draining it) and returns the gateway calls as logged:
    /// (arm, outcome, completion tokens, usage reported, fallback_for, caller hash).
    async fn stop_and_read_log(
        &mut self,
    ) -> Vec<(
        String,
        i64,
        Option<i64>,
        Option<bool>,
        Option<String>,
        Option<String>,
    )> {
        self.gw.take().unwrap().stop().await;
        let mut c = self.console.store().read().await.unwrap();
        milc_core::db::query_as(
            "SELECT g.arm, c.outcome, c.completion_tokens, c.usage_reported, g.fallback_for,
                    g.caller_hash
             FROM gateway_calls g JOIN calls c ON c.id = g.call_id
             WHERE c.source = 4 ORDER BY c.id",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    }
}

/// A ticket whose answer (its two first sentences, as the simulator extracts them) is a few
/// dozen tokens: long enough to leave mid-stream.
const TICKET: &str =
    "The printer on floor 3 is on fire and the alarm did not go off when the smoke \
    reached the ceiling of the open office. Facilities cannot reach the building manager and the \
    fire door on the east side is locked from the outside. Please send someone.";

fn chat(stream: bool) -> Value {
    json!({"model": "support", "stream": stream,
           "messages": [{"role": "user", "content": TICKET}]})
}

/// The `data` of each event of an SSE body.
fn events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn answers_and_streams_pass_through_and_usage_goes_on_only_when_asked() {
    let mut w = world(vec![SimConfig::default()], &[("sim", 0, &[], 2)], ONE_ARM).await;

    let r = w.post("chat/completions", &chat(false)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-milc-call-id"]
        .to_str()
        .unwrap()
        .starts_with("gw-"));
    assert_eq!(r.headers()["x-milc-arm"], "a");
    let v: Value = r.json().await.unwrap();
    assert!(!v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Streamed without include_usage: no usage chunk reaches the client, [DONE] ends it.
    let body = w
        .post("chat/completions", &chat(true))
        .await
        .text()
        .await
        .unwrap();
    let ev = events(&body);
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = ev[..ev.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["usage"].is_null()), "{body}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.is_empty());

    // With include_usage: one usage chunk with no choices, just before [DONE].
    let mut req = chat(true);
    req["stream_options"] = json!({"include_usage": true});
    let body = w.post("chat/completions", &req).await.text().await.unwrap();
    let ev = events(&body);
    let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    // Every call is in the log as a gateway call, costed from usage the upstream reported —
    // the stream whose client did not ask for usage too.
    let log = w.stop_and_read_log().await;
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|c| c.0 == "a" && c.1 == 0 && c.3 == Some(true)),
        "{log:?}"
    );
}

#[tokio::test]
async fn bad_requests_get_the_official_error_shapes_and_the_gateway_keeps_serving() {
    let w = world(vec![SimConfig::default()], &[("sim", 0, &[], 2)], ONE_ARM).await;
    let code = |v: &Value| v["error"]["code"].as_str().map(str::to_owned);

    let r = w
        .http
        .post(w.url("chat/completions"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        code(&r.json().await.unwrap()).as_deref(),
        Some("invalid_api_key")
    );
    let r = w
        .http
        .post(w.url("chat/completions"))
        .bearer_auth("milc-wrong")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = w
        .post(
            "chat/completions",
            &json!({"model": "nope", "messages": []}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v).as_deref(), Some("model_not_found"));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("support"),
        "{v}"
    );

    let r = w
        .http
        .post(w.url("chat/completions"))
        .bearer_auth(&w.key)
        .header("content-type", "application/json")
        .body("{\"model\": \"sup")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{v}"
    );

    let big = format!(
        "{{\"model\": \"support\", \"x\": \"{}\"}}",
        "a".repeat(10 << 20)
    );
    let r = w
        .http
        .post(w.url("chat/completions"))
        .bearer_auth(&w.key)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        code(&r.json().await.unwrap()).as_deref(),
        Some("request_too_large")
    );

    let r = w
        .post(
            "chat/completions",
            &json!({"model": "support", "messages": "hi"}),
        )
        .await;
    assert_eq!(r.status(), 400);

    let r = w.post("chat/completions", &chat(false)).await;
    assert_eq!(r.status(), 200, "the gateway still serves");

    let models: Value = w
        .http
        .get(w.url("models"))
        .bearer_auth(&w.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "support");
    assert_eq!(
        w.http
            .get(format!("http://{}/health", w.gw.as_ref().unwrap().addr))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        w.http
            .get(format!("http://{}/ready", w.gw.as_ref().unwrap().addr))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A revoked key is refused once the gateway has reloaded (well within 2 s).
    w.console.revoke_gateway_key("test").await.unwrap();
    let start = Instant::now();
    while w.post("chat/completions", &chat(false)).await.status() != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the revoked key still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_arm_on_a_retired_endpoint_is_refused_with_its_replacement_named() {
    let mut w = world(
        vec![SimConfig::default()],
        &[("sim", 0, &[], 0), ("next", 0, &[], 0)],
        ONE_ARM,
    )
    .await;
    // Deprecated: the arm still serves.
    let sunset = milc_core::retirement::parse_sunset("2027-01-31").unwrap();
    w.console
        .set_lifecycle(
            "sim",
            Lifecycle {
                status: EndpointStatus::Deprecated,
                sunset_ms: Some(sunset),
                replacement: Some("next".into()),
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(w.post("chat/completions", &chat(false)).await.status(), 200);

    // The route's arm is what still uses it: retiring it is refused without force.
    let used = w.console.endpoint_used_by("sim").await.unwrap();
    assert_eq!(used.routes, ["support / a"]);
    let retired = Lifecycle {
        status: EndpointStatus::Retired,
        ..Lifecycle::default()
    };
    let e = w
        .console
        .set_lifecycle("sim", retired.clone(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("gateway route: support / a"), "{e}");
    assert_eq!(w.post("chat/completions", &chat(false)).await.status(), 200);

    // Forced: the running gateway reloads and refuses the route, naming the replacement.
    w.console.set_lifecycle("sim", retired, true).await.unwrap();
    let start = Instant::now();
    let r = loop {
        let r = w.post("chat/completions", &chat(false)).await;
        if r.status() != 200 || start.elapsed() > Duration::from_secs(2) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'sim' is retired") && message.contains("use 'next' instead"),
        "{v}"
    );
    let log = w.stop_and_read_log().await;
    // What it served before the reload is logged; the refusals sent nothing upstream.
    assert!(
        log.len() >= 2 && log.iter().all(|c| c.0 == "a" && c.1 == 0),
        "{log:?}"
    );
}

#[tokio::test]
async fn upstream_failures_pass_through_fall_back_or_end_the_stream_clearly() {
    let routes = r#"
[[route]]
model = "limited"
[[route.arm]]
name = "a"
endpoint = "limited"
weight = 1

[[route]]
model = "cut"
[[route.arm]]
name = "a"
endpoint = "cut"
weight = 1

[[route]]
model = "support"
[[route.arm]]
name = "broken"
endpoint = "broken"
weight = 1
fallback = "good"
[[route.arm]]
name = "good"
endpoint = "sim"
weight = 0

[[route]]
model = "retired"
[[route.arm]]
name = "a"
endpoint = "old"
weight = 1
"#;
    let mut w = world(
        vec![SimConfig::default()],
        &[
            ("sim", 0, &[], 2),
            ("limited", 0, &[("x-sim-fault", "rate_limit")], 0),
            ("cut", 0, &[("x-sim-fault", "mid_stream_error")], 0),
            ("broken", 0, &[("x-sim-fault", "server_error")], 0),
            ("old", 0, &[], 0),
        ],
        routes,
    )
    .await;
    // Route "retired" still uses it: retiring takes force.
    w.console
        .set_lifecycle(
            "old",
            Lifecycle {
                status: EndpointStatus::Retired,
                replacement: Some("sim".into()),
                ..Lifecycle::default()
            },
            true,
        )
        .await
        .unwrap();

    // The upstream's 429 reaches the client with its Retry-After and body.
    let mut req = chat(false);
    req["model"] = "limited".into();
    let r = w.post("chat/completions", &req).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    // An upstream that dies mid-stream: the client gets an error event, then [DONE].
    let mut req = chat(true);
    req["model"] = "cut".into();
    let body = w.post("chat/completions", &req).await.text().await.unwrap();
    let ev = events(&body);
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert!(ev.iter().any(|e| e.contains("\"error\"")), "{body}");

    // The failing arm's fallback answers.
    let r = w.post("chat/completions", &chat(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-milc-arm"], "good");

    // A retired endpoint takes no traffic (the route reloads within a second).
    let mut req = chat(false);
    req["model"] = "retired".into();
    let start = Instant::now();
    let r = loop {
        let r = w.post("chat/completions", &req).await;
        if r.status() != 200 || start.elapsed() > Duration::from_secs(2) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("retired") && message.contains("use 'sim' instead"),
        "{v}"
    );

    // An endpoint a route still uses cannot be removed: it stays, and the error says why.
    let e = w
        .console
        .remove_endpoint("broken")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("gateway route"), "{e}");
    assert!(w.console.endpoint("broken").await.is_ok());

    let log = w.stop_and_read_log().await;
    let error = 1;
    assert!(
        log.iter()
            .any(|c| c.0 == "a" && c.1 == error && c.2.is_none()),
        "429 logged: {log:?}"
    );
    assert!(
        log.iter()
            .any(|c| c.0 == "a" && c.1 == error && c.2.is_some_and(|t| t > 0)),
        "the cut stream is logged as an error with the tokens it sent: {log:?}"
    );
    assert!(log.iter().any(|c| c.0 == "broken" && c.1 == error));
    assert!(
        log.iter()
            .any(|c| c.0 == "good" && c.1 == 0 && c.4.as_deref() == Some("broken")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_is_logged_as_cancelled_with_its_tokens() {
    let slow = SimConfig {
        tokens_per_sec: 40.0,
        latency_ms: 800,
        ..SimConfig::default()
    };
    let mut w = world(vec![slow], &[("sim", 0, &[], 0)], ONE_ARM).await;
    let mut req = chat(true);
    req["max_tokens"] = 400.into();
    let r = w.post("chat/completions", &req).await;
    let mut body = r.bytes_stream();
    let mut got = 0;
    while got < 3 {
        if body
            .next()
            .await
            .unwrap()
            .unwrap()
            .windows(7)
            .any(|w| w == b"content")
        {
            got += 1;
        }
    }
    drop(body);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A plain (not streamed) request whose client gives up before the answer: logged too.
    let mut long = chat(false);
    long["max_tokens"] = 200.into();
    let gone = w
        .http
        .post(w.url("chat/completions"))
        .bearer_auth(&w.key)
        .timeout(Duration::from_millis(300))
        .json(&long)
        .send()
        .await;
    assert!(gone.is_err(), "the client timed out");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = w.stop_and_read_log().await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        log[1].1, 2,
        "the plain request is logged as cancelled: {log:?}"
    );
    let cancelled = 2;
    assert_eq!(log[0].1, cancelled, "{log:?}");
    let tokens = log[0].2.unwrap();
    assert!((2..400).contains(&tokens), "tokens so far: {tokens}");
}

#[tokio::test]
async fn weights_follow_the_store_callers_stick_and_shutdown_drains_a_stream() {
    let routes = r#"
[[route]]
model = "support"
sticky = "header:x-user-id"
[[route.arm]]
name = "a"
endpoint = "sim"
weight = 1
[[route.arm]]
name = "b"
endpoint = "sim"
weight = 1
"#;
    let slow = SimConfig {
        tokens_per_sec: 100.0,
        ..SimConfig::default()
    };
    let mut w = world(vec![slow], &[("sim", 0, &[], 0)], routes).await;
    let arm_for = |user: &'static str| {
        let (http, url, key) = (w.http.clone(), w.url("chat/completions"), w.key.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(key)
                .header("x-user-id", user)
                .json(&json!({"model": "support", "max_tokens": 3,
                              "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            r.headers()["x-milc-arm"].to_str().unwrap().to_owned()
        }
    };
    for user in ["alice", "bob", "carol"] {
        let first = arm_for(user).await;
        for _ in 0..5 {
            assert_eq!(arm_for(user).await, first, "{user} changed arms");
        }
    }

    // A weight change in the store reaches the running gateway within 2 s.
    w.console.set_weight("support", "a", 0.0).await.unwrap();
    let start = Instant::now();
    loop {
        let arms: Vec<String> =
            futures_util::future::join_all(["alice", "bob", "carol", "dave", "erin"].map(arm_for))
                .await;
        if arms.iter().all(|a| a == "b") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "still routed to a: {arms:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stopping while a stream is in flight: the stream finishes and is logged.
    let mut req = chat(true);
    req["max_tokens"] = 60.into();
    let r = w.post("chat/completions", &req).await;
    let gw = w.gw.take().unwrap();
    let stopping = tokio::spawn(gw.stop());
    let body = r.text().await.unwrap();
    let ev = events(&body);
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let deltas = ev
        .iter()
        .filter(|e| e.contains("\"content\":\"") && !e.contains("\"content\":\"\""))
        .count() as i64;
    stopping.await.unwrap();
    let mut c = w.console.store().read().await.unwrap();
    let (n, last_outcome, last_tokens): (i64, i64, i64) = milc_core::db::query_as(
        "SELECT (SELECT count(*) FROM gateway_calls), outcome, completion_tokens
         FROM calls ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(n >= 19, "{n} calls logged");
    assert_eq!(
        (last_outcome, last_tokens),
        (0, deltas),
        "the drained stream is logged whole"
    );
    let hashes: Vec<Option<String>> =
        milc_core::db::query_scalar("SELECT caller_hash FROM gateway_calls")
            .fetch_all(&mut c)
            .await
            .unwrap();
    assert!(hashes
        .iter()
        .flatten()
        .all(|h| h.len() == 32 && !h.contains("alice")));
}

#[tokio::test]
async fn feedback_is_recorded_by_call_id_and_key_limits_answer_429() {
    let w = world(vec![SimConfig::default()], &[("sim", 0, &[], 2)], ONE_ARM).await;
    let r = w.post("chat/completions", &chat(false)).await;
    let id = r.headers()["x-milc-call-id"].to_str().unwrap().to_owned();
    // The call is logged off the response path: it may take a moment.
    let start = Instant::now();
    loop {
        let r = w
            .post(
                "feedback",
                &json!({"call_id": id, "score": 0.8, "comment": "good"}),
            )
            .await;
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 404);
        assert!(start.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = w
        .post("feedback", &json!({"call_id": id, "score": 1.5}))
        .await;
    assert_eq!(r.status(), 400);
    let r = w
        .post("feedback", &json!({"call_id": "gw-nope", "score": 1}))
        .await;
    assert_eq!(r.status(), 404);

    let limited = w
        .console
        .create_gateway_key("limited", Some(2), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = w
            .http
            .post(w.url("chat/completions"))
            .bearer_auth(limited.secret.expose())
            .json(&chat(false))
            .send()
            .await
            .unwrap();
        statuses.push((
            r.status().as_u16(),
            r.headers().get("retry-after").is_some(),
        ));
    }
    // Two per minute: of five at once, some are refused, with a Retry-After (five requests
    // span at most two minutes, so one of them holds three).
    assert_eq!(statuses[0], (200, false));
    assert!(statuses.contains(&(429, true)), "{statuses:?}");
}

/// Sends `n` chats to `model` from `workers` concurrent clients.
async fn traffic(w: &World, model: &str, n: usize, workers: usize) {
    let per = n / workers;
    let jobs = (0..workers).map(|k| {
        let (http, url, key) = (w.http.clone(), w.url("chat/completions"), w.key.clone());
        let model = model.to_owned();
        async move {
            for i in 0..per {
                let r = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"model": model, "max_tokens": 4, "variables": {"ticket": "printer"},
                                  "messages": [{"role": "user", "content": format!("ticket {k}-{i}")}]}))
                    .send()
                    .await
                    .unwrap();
                let _ = r.bytes().await;
            }
        }
    });
    futures_util::future::join_all(jobs).await;
}

const CANARY_ROUTE: &str = r#"
[[route]]
model = "support"
[[route.arm]]
name = "stable"
endpoint = "sim"
prompt = "support@1"
weight = 50
[[route.arm]]
name = "canary"
endpoint = "CANDIDATE"
prompt = "support@2"
weight = 50
[route.canary]
baseline = "stable"
candidate = "canary"
every_s = 1
min_calls = 50
promote_after = 150
"#;

/// Prompt `support` with versions 1 and 2, over a variable `ticket`.
async fn with_prompts(console: &Console) {
    for (text, note) in [
        ("Summarize: {{ticket}}", "v1"),
        ("Summarize in one line: {{ticket}}", "v2"),
    ] {
        console
            .save_prompt(
                milc_api::prompt::NewVersion {
                    prompt: "support".into(),
                    description: Some("ticket summaries".into()),
                    content: milc_api::prompt::PromptContent {
                        messages: vec![milc_api::Message::new(milc_api::Role::System, text)],
                        params: Default::default(),
                        endpoint: None,
                        redaction: None,
                    },
                    note: note.into(),
                },
                note == "v1",
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_judge_rolls_back_a_failing_canary_and_promotes_a_healthy_one_moving_the_label() {
    let healthy = SimConfig::default();
    let failing = SimConfig {
        faults: vec![(milc_sim::Fault::ServerError, 0.25)],
        seed: 7,
        ..SimConfig::default()
    };
    // Failing candidate: rolled back by the judge, with an event, an alert and weight 0.
    let routes = CANARY_ROUTE.replace("CANDIDATE", "bad");
    let w = world(
        vec![healthy.clone(), failing],
        &[("sim", 0, &[], 0), ("bad", 1, &[], 0)],
        &routes,
    )
    .await;
    let mut alerts = w.console.subscribe_alerts();
    let start = Instant::now();
    loop {
        traffic(&w, "support", 200, 8).await;
        let r = w.console.route("support").await.unwrap();
        if r.canary_state == Some(milc_api::gateway::CanaryState::RolledBack) {
            assert_eq!(
                r.spec.arms[1].weight, 0.0,
                "the candidate takes no more traffic"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never rolled back"
        );
    }
    let st = w.console.canary_status("support").await.unwrap();
    assert_eq!(st.events[0].kind, "rollback");
    assert_eq!(st.events[0].actor, "judge");
    assert!(
        st.events[0].reason.contains("error rate"),
        "{:?}",
        st.events[0]
    );
    assert!(st.arms[1].error_rate > st.arms[0].error_rate);
    // The alerts broadcast (what the desktop shows as notifications) include the rollback.
    let alert = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let a = alerts.recv().await.unwrap();
            if a.kind == milc_api::usage::AlertKind::Canary {
                break a;
            }
        }
    })
    .await
    .expect("a canary alert was broadcast");
    assert!(alert.message.contains("rolled back"), "{}", alert.message);
    // Once the gateway has reloaded (within 2 s), the candidate gets no traffic.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = w.console.canary_status("support").await.unwrap();
    traffic(&w, "support", 40, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = w.console.canary_status("support").await.unwrap();
    assert_eq!(after.arms[1].calls, before.arms[1].calls);
    assert_eq!(after.arms[0].calls, before.arms[0].calls + 40);

    // A healthy candidate: promoted after enough calls; `production` moves to its version.
    let routes = CANARY_ROUTE.replace("CANDIDATE", "sim");
    let w = world(vec![SimConfig::default()], &[("sim", 0, &[], 0)], &routes).await;
    w.console
        .label_prompt("support", 1, "production")
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        traffic(&w, "support", 100, 8).await;
        let r = w.console.route("support").await.unwrap();
        if r.canary_state == Some(milc_api::gateway::CanaryState::Promoted) {
            assert_eq!((r.spec.arms[0].weight, r.spec.arms[1].weight), (0.0, 100.0));
            break;
        }
        assert_ne!(
            r.canary_state,
            Some(milc_api::gateway::CanaryState::RolledBack)
        );
        assert!(start.elapsed() < Duration::from_secs(60), "never promoted");
    }
    let p = w.console.prompt("support").await.unwrap();
    let production = &p.label_history[0];
    assert_eq!(
        (production.label.as_str(), production.from, production.to),
        ("production", Some(1), 2)
    );
    let st = w.console.canary_status("support").await.unwrap();
    assert_eq!(st.events[0].kind, "promote");
    assert!(
        st.events[0].reason.contains("production → support@2"),
        "{:?}",
        st.events[0]
    );
}

#[tokio::test]
async fn a_prompt_arm_renders_the_variables_redacts_keeps_bodies_and_spends_the_key_budget() {
    let routes = r#"
[[route]]
model = "support"
[[route.arm]]
name = "a"
endpoint = "sim"
prompt = "support@1"
weight = 1
"#;
    let w = world(vec![SimConfig::default()], &[("sim", 0, &[], 0)], routes).await;
    let mut ep = w.console.endpoint("sim").await.unwrap();
    ep.spec.redaction.mode = milc_api::prompt::RedactMode::Both;
    ep.spec.redaction.log_bodies = true;
    ep.spec.prices.input = "1000".parse().unwrap();
    ep.spec.prices.output = "1000".parse().unwrap();
    w.console.update_endpoint(ep.id, ep.spec).await.unwrap();
    let key = w
        .console
        .create_gateway_key("tight", None, Some("0.000000000001"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await; // the gateway reloads

    let send =
        || {
            w.http
            .post(w.url("chat/completions"))
            .bearer_auth(key.secret.expose())
            .json(&json!({"model": "support", "variables": {"ticket": "write to alice@example.com"},
                          "messages": [{"role": "user", "content": "thanks"}]}))
            .send()
        };
    let r = send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-milc-call-id"].to_str().unwrap().to_owned();

    // The day's budget is spent: once the call is logged, the key gets 429 with Retry-After.
    let start = Instant::now();
    let refused = loop {
        let r = send().await.unwrap();
        if r.status() == 429 {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the budget never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let v: Value = refused.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily budget"),
        "{v}"
    );

    // What went upstream, as kept with the call: the version's message rendered with the
    // variables, then the client's, the address redacted, no `variables` field.
    let mut c = w.console.store().read().await.unwrap();
    let call_id: i64 =
        milc_core::db::query_scalar("SELECT call_id FROM gateway_calls WHERE public_id = ?")
            .bind(&id)
            .fetch_one(&mut c)
            .await
            .unwrap();
    drop(c);
    let body = w
        .console
        .call_body(call_id)
        .await
        .unwrap()
        .expect("bodies kept");
    let msgs = body.request["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs[0]["content"], "Summarize: write to [EMAIL_1]");
    assert_eq!(msgs[1]["content"], "thanks");
    assert!(body.request.get("variables").is_none());
    assert_eq!(body.request["model"], "milc-sim");
    assert!(!body.request.to_string().contains("alice@"));
}

/// Spans an OTLP/HTTP receiver on a free loopback port got, as a collector would take them.
async fn collector() -> (
    String,
    Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
) {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use prost::Message as _;
    type Inbox = Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>;
    async fn traces(
        axum::extract::State(inbox): axum::extract::State<Inbox>,
        body: bytes::Bytes,
    ) -> Vec<u8> {
        let req = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
        inbox.lock().unwrap().extend(
            req.resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans),
        );
        ExportTraceServiceResponse::default().encode_to_vec()
    }
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

#[tokio::test]
async fn a_gateway_call_is_exported_with_its_arm_the_id_its_client_saw_and_redacted_bodies() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let (collector, inbox) = collector().await;
    let mut w = world(vec![SimConfig::default()], &[("sim", 0, &[], 0)], ONE_ARM).await;
    let mut ep = w.console.endpoint("sim").await.unwrap();
    // Kept bodies are redacted even where nothing else is.
    ep.spec.redaction.mode = milc_api::prompt::RedactMode::Off;
    ep.spec.redaction.log_bodies = true;
    w.console.update_endpoint(ep.id, ep.spec).await.unwrap();
    w.console
        .otel_set(&milc_api::otel::OtelChange {
            endpoint: collector,
            headers: BTreeMap::new(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await; // the gateway reloads

    let ticket = format!("Write to bob@example.com when it is fixed. {TICKET}");
    let r = w
        .post(
            "chat/completions",
            &json!({"model": "support", "stream": true, "temperature": 0.5, "seed": 7,
                    "messages": [{"role": "user", "content": ticket}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-milc-call-id"].to_str().unwrap().to_owned();
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    // Stopping drains the logging; the flush sends what the log offered.
    w.gw.take().unwrap().stop().await;
    w.console.otel_flush().await;

    let spans = inbox.lock().unwrap().clone();
    assert_eq!(spans.len(), 1);
    let a: BTreeMap<String, V> = spans[0]
        .attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect();
    let text = |k: &str| match a.get(k) {
        Some(V::StringValue(s)) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(spans[0].name, "chat milc-sim");
    assert_eq!(text("milc.source"), "gateway");
    assert_eq!(text("milc.gateway.call_id"), id);
    assert_eq!(text("milc.gateway.arm"), "a");
    assert_eq!(text("milc.endpoint"), "sim");
    assert_eq!(text("gen_ai.response.model"), "milc-sim");
    match a.get("gen_ai.response.finish_reasons") {
        Some(V::ArrayValue(v)) => {
            assert_eq!(v.values[0].value, Some(V::StringValue("stop".into())))
        }
        other => panic!("finish reasons: {other:?}"),
    }
    assert_eq!(a.get("milc.usage_estimated"), Some(&V::BoolValue(false)));
    assert_eq!(
        a.get("gen_ai.request.temperature"),
        Some(&V::DoubleValue(0.5))
    );
    assert_eq!(a.get("gen_ai.request.seed"), Some(&V::IntValue(7)));
    let input = text("gen_ai.input.messages");
    assert!(
        input.contains("[EMAIL_1]") && !input.contains("bob@"),
        "{input}"
    );
    assert!(!text("gen_ai.output.messages").is_empty());
}
