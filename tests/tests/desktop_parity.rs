//! What the CLI does, the window does (WebDriver under Xvfb, see scripts/test): a run with
//! every kind of scorer and its argument, the same validation message as `milc eval`; the Calls
//! page filtered, a call opened with its redacted bodies and a jump to its run; dated prices
//! added and a range recomputed after a preview; alert thresholds and body retention as
//! `milc alerts settings` and `milc retention` see them; an endpoint's lineage shown in a
//! comparison.

use milc_e2e::{milc_ok, pico, workspace_bin, SimProcess};
use serde_json::Value;
use webdriver::{connect, el, paste_into, select, text_until, type_into, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn the_window_reaches_what_the_cli_reaches() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let milc_err = |args: &[&str]| {
        let out = std::process::Command::new(milc_e2e::milc_bin())
            .args(milc_e2e::db_args(&db))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The same words (a page shows line breaks as spaces).
    let same = |cli: &str, shown: &str| {
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        words(cli).contains(&words(shown))
    };
    let file = |name: &str, text: &str| {
        let p = home.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let sim = SimProcess::start(&[], "unused");
    milc(&[
        "endpoints",
        "add",
        "fast",
        "--url",
        &sim.url,
        "--model",
        "milc-sim",
        "--log-bodies",
    ]);
    let qa = file(
        "qa.yaml",
        "messages:\n  - role: user\n    content: \"{{question}}\"\n",
    );
    milc(&["prompts", "create", "qa", "--file", &qa]);
    milc(&[
        "prompts",
        "create",
        "rubric",
        "--file",
        &file("r.yaml", milc_e2e::RUBRIC),
    ]);
    let items: Vec<String> = (0..3)
        .map(|i| format!("{{\"question\": \"The invoice {i} was charged twice. Write to jane{i}@example.com about the refund.\", \"expected\": \"Refund the duplicate charge of invoice {i}.\"}}"))
        .collect();
    milc(&[
        "datasets",
        "import",
        &file("ds.jsonl", &items.join("\n")),
        "--name",
        "ds",
    ]);

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;

    // ---- Runs: every scorer with its argument, checked as the CLI checks it.
    el(&c, "#nav-runs").await.click().await.unwrap();
    select(&c, "#run-prompt", "qa").await;
    select(&c, "#run-endpoint", "fast").await;
    select(&c, "#run-dataset", "ds").await;
    type_into(&c, "#run-scorers", "rougeL").await;
    el(&c, "#run-stem").await.click().await.unwrap();
    let add = |kind: &'static str, arg: &'static str, threshold: &'static str| {
        let c = c.clone();
        async move {
            select(&c, "#scorer-kind", kind).await;
            if !arg.is_empty() {
                paste_into(&c, "#scorer-arg", arg).await;
            }
            paste_into(&c, "#scorer-threshold", threshold).await;
            el(&c, "#scorer-add").await.click().await.unwrap();
        }
    };
    add("regex", "(", "").await;
    el(&c, "#run-start").await.click().await.unwrap();
    let shown = text_until(&c, "#run-error .message", |t| !t.is_empty()).await;
    let cli = milc_err(&[
        "eval",
        "--prompt",
        "qa",
        "--endpoint",
        "fast",
        "--dataset",
        "ds",
        "--scorer",
        "regex=(",
    ]);
    assert!(shown.starts_with("scorers.regex"), "{shown}");
    assert!(same(&cli, &shown), "the CLI says the same: {cli} / {shown}");
    el(&c, "#run-scorer-remove-0").await.click().await.unwrap();
    add("regex", r"\w+", "").await;
    add("contains", "refund", "").await;
    add("not_contains", "jane0@example.com", "").await;
    add("length", "1..5000", "").await;
    add(
        "json_schema",
        r#"{"type": "object", "required": ["summary"]}"#,
        "0",
    )
    .await;
    add("latency_ms", "", "60000").await;
    add("cost_usd", "", "1").await;
    select(&c, "#scorer-kind", "judge").await;
    select(&c, "#scorer-rubric", "rubric").await;
    select(&c, "#scorer-judge-endpoint", "fast").await;
    paste_into(&c, "#scorer-threshold", "").await;
    el(&c, "#scorer-add").await.click().await.unwrap();
    select(&c, "#scorer-kind", "similarity").await;
    select(&c, "#scorer-embed-endpoint", "fast").await;
    el(&c, "#scorer-add").await.click().await.unwrap();
    text_until(&c, "#run-extra-scorers", |t| t.contains("similarity=fast")).await;
    el(&c, "#run-start").await.click().await.unwrap();
    let summary = text_until(&c, "#run-summary", |t| t.contains("finished")).await;
    for metric in [
        "rougeL",
        "regex",
        "contains",
        "not_contains",
        "length",
        "json_schema",
        "latency_ms",
        "cost_usd",
        "judge",
        "similarity",
    ] {
        assert!(summary.contains(metric), "{metric} in {summary}");
    }
    let runs: Value = serde_json::from_str(&milc(&["runs", "list", "--json"])).unwrap();
    let spec = &runs[0]["spec"];
    assert_eq!(spec["stem"], true, "{spec}");
    assert_eq!(spec["scorers"].as_array().unwrap().len(), 10, "{spec}");
    assert_eq!(spec["scorers"][8]["arg"], "rubric@1@fast", "{spec}");
    assert_eq!(spec["scorers"][6]["threshold"], 60000.0, "{spec}");

    // ---- Calls: filtered as `milc calls` filters; a call opened with its bodies and a jump.
    el(&c, "#nav-calls").await.click().await.unwrap();
    select(&c, "#calls-source", "run").await;
    let listed: Value = serde_json::from_str(&milc(&[
        "calls", "--source", "run", "--json", "--limit", "200",
    ]))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(
        listed.len(),
        3 * 3,
        "an answer, a verdict and an embeddings call per item"
    );
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    loop {
        let sources = c
            .execute(
                "return [...document.querySelectorAll('#calls-table tbody tr td:nth-child(5)')].map(td => td.textContent);",
                vec![],
            )
            .await
            .unwrap();
        let sources: Vec<&str> = sources
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if sources.len() == listed.len() {
            assert!(sources.iter().all(|s| *s == "run"), "{sources:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page lists {} calls, the CLI {}",
            sources.len(),
            listed.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The answer to item 1 is the call its run result points at.
    let answer = listed
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .find(|id| {
            let d: Value =
                serde_json::from_str(&milc(&["calls", "--show", &id.to_string()])).unwrap();
            d["run"]["item"] == 1 && d["record"]["model"] == "milc-sim"
        })
        .expect("a call that answered item 1");
    el(&c, &format!("#call-open-{answer}"))
        .await
        .click()
        .await
        .unwrap();
    let request = text_until(&c, "#call-request", |t| !t.is_empty()).await;
    assert!(
        request.contains("The invoice 1 was charged twice"),
        "{request}"
    );
    assert!(
        !request.contains("jane1@example.com") && request.contains("[EMAIL_1]"),
        "bodies are kept redacted: {request}"
    );
    let jumps = text_until(&c, "#call-jumps", |t| t.contains("Run 1")).await;
    assert!(
        jumps.contains("item 2") && jumps.contains("qa@1"),
        "{jumps}"
    );
    el(&c, "#call-jump-run").await.click().await.unwrap();
    text_until(&c, "#run-summary h2", |t| t.starts_with("Run 1 ")).await;
    el(&c, "#nav-calls").await.click().await.unwrap();
    select(&c, "#calls-status", "error").await;
    text_until(&c, "#calls-none", |t| t.contains("No call matches")).await;

    // ---- Usage: a dated price, a recomputation previewed then applied.
    el(&c, "#nav-usage").await.click().await.unwrap();
    select(&c, "#price-endpoint", "fast").await;
    let timeline_rows = |n: usize| {
        let c = c.clone();
        async move {
            let deadline = std::time::Instant::now() + webdriver::WAIT;
            loop {
                let got = c
                    .execute(
                        "return document.querySelectorAll('#price-timeline tbody tr').length;",
                        vec![],
                    )
                    .await
                    .unwrap();
                if got.as_u64() == Some(n as u64) {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{got} prices shown, not {n}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    timeline_rows(1).await;
    paste_into(&c, "#price-from", "1d").await;
    paste_into(&c, "#price-in", "3").await;
    paste_into(&c, "#price-out", "6x").await;
    el(&c, "#price-add").await.click().await.unwrap();
    let bad = text_until(&c, "#price-error .message", |t| !t.is_empty()).await;
    assert!(bad.starts_with("output: '6x' is not a price"), "{bad}");
    let cli = milc_err(&[
        "prices", "set", "fast", "--from", "1d", "--in", "3", "--out", "6x",
    ]);
    assert!(same(&cli, &bad), "{cli} / {bad}");
    paste_into(&c, "#price-out", "6").await;
    el(&c, "#price-add").await.click().await.unwrap();
    timeline_rows(2).await;
    let before: Value = serde_json::from_str(&milc(&["usage", "--json"])).unwrap();
    paste_into(&c, "#recompute-since", "2d").await;
    el(&c, "#recompute-preview").await.click().await.unwrap();
    let preview = text_until(&c, "#recompute-preview-text", |t| !t.is_empty()).await;
    let expected: Value = serde_json::from_str(&milc(&[
        "prices",
        "recompute",
        "--since",
        "2d",
        "--preview",
        "--json",
    ]))
    .unwrap();
    assert!(
        preview.contains(&format!(
            "{} of {} calls would change",
            expected["calls_changed"], expected["calls_checked"]
        )),
        "{preview} / {expected}"
    );
    let changed = expected["calls_changed"].as_u64().unwrap();
    assert_eq!(
        changed, 9,
        "every call made so far had no price: {expected}"
    );
    let still: Value = serde_json::from_str(&milc(&["usage", "--json"])).unwrap();
    assert_eq!(
        still["totals"]["cost"], before["totals"]["cost"],
        "a preview changes nothing"
    );
    el(&c, "#recompute-apply").await.click().await.unwrap();
    text_until(&c, "#recompute-done", |t| {
        t.contains(&format!(
            "{changed} of {} calls changed",
            expected["calls_checked"]
        ))
    })
    .await;
    let after: Value = serde_json::from_str(&milc(&["usage", "--json"])).unwrap();
    assert_eq!(
        pico(after["totals"]["cost"]["usd"].as_str().unwrap()),
        pico(expected["after"]["usd"].as_str().unwrap()),
        "the costs are the ones the preview announced"
    );

    // ---- Alert thresholds and retention, validated in core as the CLI is.
    paste_into(&c, "#alert-spike", "3").await;
    paste_into(&c, "#alert-error-rate", "1.5").await;
    el(&c, "#alert-save").await.click().await.unwrap();
    let bad = text_until(&c, "#alert-error .message", |t| !t.is_empty()).await;
    assert!(
        same(
            &milc_err(&["alerts", "settings", "--error-rate", "1.5"]),
            &bad
        ),
        "{bad}"
    );
    paste_into(&c, "#alert-error-rate", "0.5").await;
    paste_into(&c, "#alert-min-calls", "7").await;
    el(&c, "#alert-save").await.click().await.unwrap();
    text_until(&c, "#alert-saved", |t| t == "Saved.").await;
    let settings: Value = serde_json::from_str(&milc(&["alerts", "settings"])).unwrap();
    assert_eq!(
        settings,
        serde_json::json!({"spike_factor": 3.0, "error_rate": 0.5, "min_calls": 7})
    );
    paste_into(&c, "#retention-days", "30").await;
    el(&c, "#retention-save").await.click().await.unwrap();
    text_until(&c, "#retention-saved", |t| t.starts_with("Saved")).await;
    assert!(milc(&["retention"]).contains("kept 30 days"));

    // ---- OpenTelemetry: a collector set from the window receives the window's calls as spans;
    // its header value goes to the keyring, never to the database.
    let collector = Collector::start().await;
    paste_into(&c, "#otel-endpoint", &collector.url).await;
    paste_into(
        &c,
        "#otel-headers",
        "authorization=Bearer canary-otel-window",
    )
    .await;
    el(&c, "#otel-save").await.click().await.unwrap();
    text_until(&c, "#otel-status", |t| {
        t.contains("Exporting to") && t.contains("/v1/traces")
    })
    .await;
    let shown: Value = serde_json::from_str(&milc(&["otel", "show", "--json"])).unwrap();
    assert_eq!(
        shown["headers"],
        serde_json::json!(["authorization"]),
        "{shown}"
    );
    el(&c, "#nav-playground").await.click().await.unwrap();
    type_into(&c, "#pg-turn-0", "one call for the collector").await;
    el(&c, "#pg-send").await.click().await.unwrap();
    text_until(&c, "#pg-status", |t| t == "Done").await;
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    while collector.requests() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no span reached the collector"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        collector.saw("Bearer canary-otel-window"),
        "the header is sent"
    );
    el(&c, "#nav-usage").await.click().await.unwrap();
    text_until(&c, "#otel-status", |t| t.contains("1 spans exported")).await;
    assert_eq!(
        milc_e2e::stored_containing(&db, b"canary-otel-window"),
        Vec::<String>::new(),
        "the store holds the header value"
    );

    // ---- Lineage: a fine-tuned endpoint names its base model; a comparison shows it.
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    el(&c, "tr[data-endpoint='fast'] button.edit")
        .await
        .click()
        .await
        .unwrap();
    paste_into(&c, "#ep-base-model", "meta/llama-3.1-8b-instruct").await;
    paste_into(&c, "#ep-tuned-on", "ds").await;
    el(&c, "#ep-save").await.click().await.unwrap();
    text_until(&c, "tr[data-endpoint='fast']", |t| {
        t.contains("tuned from meta/llama-3.1-8b-instruct on ds")
    })
    .await;
    let eps: Value = serde_json::from_str(&milc(&["endpoints", "list", "--json"])).unwrap();
    let fast = eps
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "fast")
        .unwrap();
    assert_eq!(
        fast["lineage"],
        serde_json::json!({"base_model": "meta/llama-3.1-8b-instruct", "tuned_on": "ds"})
    );
    milc(&[
        "compare",
        "create",
        "--name",
        "tuned-vs-base",
        "--dataset",
        "ds",
        "--variant",
        "qa@1@fast",
        "--variant",
        "qa@1@Local simulator",
    ]);
    el(&c, "#nav-compare").await.click().await.unwrap();
    let variants = text_until(&c, "#cmp-variants", |t| t.contains("tuned from")).await;
    assert!(
        variants.contains("fast (tuned from meta/llama-3.1-8b-instruct on ds)")
            && variants.contains("Local simulator"),
        "{variants}"
    );

    c.close().await.unwrap();
    driver.stop();
}

/// A collector as small as it gets: accepts OTLP/HTTP POSTs, answers 200, keeps what it got.
struct Collector {
    url: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = got.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        // One request: the head, then Content-Length bytes of body.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        keep.lock().unwrap().push(buf[..head_end + len].to_vec());
                        buf.drain(..head_end + len);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if conn.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, got }
    }

    fn requests(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    fn saw(&self, needle: &str) -> bool {
        self.got
            .lock()
            .unwrap()
            .iter()
            .any(|r| milc_e2e::contains(r, needle.as_bytes()))
    }
}
