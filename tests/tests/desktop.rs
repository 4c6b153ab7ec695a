//! The real desktop window, driven through WebDriver (tauri-driver + WebKitWebDriver) under Xvfb
//! on a private D-Bus session with the real keyring: scripts/test sets all of that up.
//! One user journey: add an endpoint with a canary token, stream an answer and read its figures,
//! stop a slow stream, see a failure; then look into the SQLite file and every file the app wrote.

use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use milc_e2e::{
    count_files, db_args, files_containing, milc_bin, pico, stored_containing, workspace_bin,
    SimProcess,
};
use serde_json::Value;
use webdriver::{connect, el, screenshot, select, text_until, type_into, Driver, WAIT};

mod webdriver;

const CANARY: &str = "CANARY_nvapi_desktop_5e6f7a8b9c";

async fn add_endpoint(c: &Client, fields: &[(&str, &str)]) {
    el(c, "#nav-endpoints").await.click().await.unwrap();
    el(c, "#ep-add").await.click().await.unwrap();
    for (id, value) in fields {
        type_into(c, &format!("#{id}"), value).await;
    }
    el(c, "#ep-save").await.click().await.unwrap();
    let name = fields.iter().find(|(id, _)| *id == "ep-name").unwrap().1;
    el(c, &format!("tr[data-endpoint='{name}']")).await;
}

async fn send_in_playground(c: &Client, endpoint: &str, message: &str) {
    el(c, "#nav-playground").await.click().await.unwrap();
    el(c, "#pg-endpoint")
        .await
        .select_by_value(endpoint)
        .await
        .unwrap();
    type_into(c, "#pg-turn-0", message).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desktop_console_streams_stops_fails_plainly_and_keeps_the_token_secret() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let app = workspace_bin("milc-desktop");
    let fast = SimProcess::start(
        &["--api-key-env", "SIM_KEY", "--tokens-per-sec", "200"],
        CANARY,
    );
    let slow = SimProcess::start(&["--tokens-per-sec", "4"], CANARY);
    let home = tempfile::tempdir().unwrap();
    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &app).await;

    // First start: the built-in simulator is offered, labelled as such.
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    let sim_row = el(&c, "tr[data-endpoint='Local simulator']")
        .await
        .text()
        .await
        .unwrap();
    assert!(sim_row.contains("simulator"), "{sim_row}");

    add_endpoint(
        &c,
        &[
            ("ep-name", "ccluster"),
            ("ep-url", &fast.url),
            ("ep-model", "milc-sim"),
            ("ep-token", CANARY),
            ("ep-price-in", "0.5"),
            ("ep-price-cached", "0.25"),
            ("ep-price-out", "1.5"),
        ],
    )
    .await;
    let row = el(&c, "tr[data-endpoint='ccluster']").await;
    assert!(row.text().await.unwrap().contains("stored in keyring"));
    row.find(Locator::Css(".test"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_until(&c, "tr[data-endpoint='ccluster'] .last-test", |t| {
        t.starts_with("ok")
    })
    .await;
    add_endpoint(
        &c,
        &[
            ("ep-name", "slow"),
            ("ep-url", &slow.url),
            ("ep-model", "milc-sim"),
        ],
    )
    .await;
    add_endpoint(
        &c,
        &[
            ("ep-name", "flaky"),
            ("ep-url", &slow.url),
            ("ep-model", "milc-sim"),
            ("ep-retries", "0"),
            ("ep-headers", "x-sim-fault: server_error"),
        ],
    )
    .await;

    // A streamed answer with every figure; Ctrl+Enter sends.
    send_in_playground(&c, "ccluster", "Explain canary releases in two sentences.").await;
    el(&c, "#pg-turn-0")
        .await
        .send_keys("\u{E009}\u{E007}")
        .await
        .unwrap();
    text_until(&c, "#pg-status", |t| t == "Done").await;
    let output = el(&c, "#pg-output").await.text().await.unwrap();
    assert!(output.split_whitespace().count() >= 5, "{output}");
    let tokens = el(&c, "#fig-tokens .value").await.text().await.unwrap();
    let cost = el(&c, "#fig-cost .value").await.text().await.unwrap();
    assert!(el(&c, "#fig-usage")
        .await
        .text()
        .await
        .unwrap()
        .contains("reported"));
    assert!(el(&c, "#fig-ttft")
        .await
        .text()
        .await
        .unwrap()
        .contains("ms"));
    assert!(el(&c, "#fig-latency")
        .await
        .text()
        .await
        .unwrap()
        .contains("ms"));
    el(&c, "#fig-tps").await;
    // "57 → 23 (13 cached)": the cost shown must be what these counts cost.
    let nums: Vec<i64> = tokens
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (p, o, k) = (nums[0], nums[1], nums.get(2).copied().unwrap_or(0));
    assert!(
        k > 0,
        "the system prompt is cached by the simulator: {tokens}"
    );
    assert_eq!(
        pico(&cost),
        (p - k) * 500_000 + k * 250_000 + o * 1_500_000,
        "{tokens} / {cost}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot("playground");

    // A slow stream shows text as it arrives, and Stop stops it.
    send_in_playground(&c, "slow", "Tell me a long story about a lighthouse keeper who finds a map in a bottle on a stormy night and follows it across the sea to an island nobody has charted. The keeper packs bread and a lamp and rows out before dawn while the gulls circle overhead.").await;
    el(&c, "#pg-send").await.click().await.unwrap();
    let partial = text_until(&c, "#pg-output", |t| !t.trim().is_empty()).await;
    assert_eq!(
        el(&c, "#pg-status").await.text().await.unwrap(),
        "Streaming…",
        "text arrived before the answer ended"
    );
    assert!(
        partial.split_whitespace().count() < 12,
        "the answer is still incomplete: {partial}"
    );
    el(&c, "#pg-stop").await.click().await.unwrap();
    text_until(&c, "#pg-status", |t| t == "Stopped").await;
    let stopped = el(&c, "#pg-output").await.text().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        el(&c, "#pg-output").await.text().await.unwrap(),
        stopped,
        "nothing arrives after Stop"
    );

    // A failing endpoint: the kind, the status and the upstream message, plainly.
    send_in_playground(&c, "flaky", "hello").await;
    el(&c, "#pg-send").await.click().await.unwrap();
    let error = text_until(&c, "#pg-error", |t| !t.is_empty()).await;
    assert!(
        error.contains("server") && error.contains("HTTP 500"),
        "{error}"
    );
    assert_eq!(el(&c, "#pg-status").await.text().await.unwrap(), "Failed");

    // The Calls page shows them.
    el(&c, "#nav-calls").await.click().await.unwrap();
    text_until(&c, "#calls-table", |t| {
        t.contains("ccluster") && t.contains("cancelled")
    })
    .await;

    // Edit in the window: deprecate an endpoint, remove a stored token, delete with confirmation.
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    let edit = |name: &'static str| {
        let c = c.clone();
        async move {
            let row = el(&c, &format!("tr[data-endpoint='{name}']")).await;
            row.find(Locator::Css(".edit"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    // Deprecation lives on the Lifecycle page: a sunset date and a replacement.
    el(&c, "#nav-lifecycle").await.click().await.unwrap();
    select(&c, "#ret-endpoint", "slow").await;
    select(&c, "#ret-status", "deprecated").await;
    type_into(&c, "#ret-sunset", "2027-01-31").await;
    select(&c, "#ret-replacement", "ccluster").await;
    el(&c, "#ret-apply").await.click().await.unwrap();
    text_until(&c, "#ret-result", |t| {
        t.contains("'slow' is now deprecated")
    })
    .await;
    let row = text_until(&c, "#ret-list tr[data-endpoint='slow']", |t| {
        t.contains("ccluster")
    })
    .await;
    assert!(row.contains("2027-01-31"), "{row}");
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    text_until(&c, "tr[data-endpoint='slow']", |t| t.contains("deprecated")).await;
    edit("ccluster").await;
    assert_eq!(
        el(&c, "#ep-token")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(""),
        "the stored token is never shown"
    );
    el(&c, "#ep-remove-token").await.click().await.unwrap();
    el(&c, "#ep-save").await.click().await.unwrap();
    text_until(&c, "tr[data-endpoint='ccluster']", |t| {
        !t.contains("stored in keyring")
    })
    .await;
    let delete = el(&c, "tr[data-endpoint='flaky'] .delete").await;
    delete.click().await.unwrap();
    text_until(&c, "tr[data-endpoint='flaky'] .delete", |t| {
        t == "Confirm delete"
    })
    .await;
    el(&c, "tr[data-endpoint='flaky'] .delete")
        .await
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while c
        .find(Locator::Css("tr[data-endpoint='flaky']"))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the deleted endpoint is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    c.close().await.unwrap();
    driver.stop();

    // Every call is in the store (the SQLite file, or the test's workspace), from the
    // playground.
    let db = home.path().join("milc.db");
    let out = Command::new(milc_bin())
        .args(db_args(&db))
        .args(["calls", "--json"])
        .output()
        .unwrap();
    let calls: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen: Vec<(String, String)> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["endpoint"].as_str().unwrap_or("").to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // "flaky" was deleted in the window: its call stays in the log, without an endpoint name.
    for want in [("ccluster", "ok"), ("slow", "cancelled"), ("", "error")] {
        assert!(
            seen.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {seen:?}"
        );
    }
    assert!(calls
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["source"] == "playground"));

    // The canary token is in no file the app wrote: database, logs, window state, WebKit data.
    assert!(
        count_files(home.path()) >= 3,
        "the app wrote its files under the test's home"
    );
    assert!(
        std::fs::read_dir(home.path().join("logs")).unwrap().count() > 0,
        "logs were written"
    );
    assert_eq!(
        files_containing(home.path(), CANARY.as_bytes()),
        Vec::<String>::new()
    );
    // Nor is it in the store, whichever engine holds it.
    assert_eq!(
        stored_containing(&db, CANARY.as_bytes()),
        Vec::<String>::new()
    );
}
