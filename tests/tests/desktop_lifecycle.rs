//! The Lifecycle page in the real window (WebDriver under Xvfb, see scripts/test): a use case is
//! written down, two candidates are added, runs made by `milc eval` are attached and the card
//! shows one candidate passing its SLOs and the other failing its latency target; a small load
//! test started from the card runs with a progress bar and is charted against concurrency; the
//! drift of an endpoint is shown with its figures; retiring an endpoint the card uses is refused
//! with what breaks, then confirmed.

use milc_e2e::{tickets_project, workspace_bin, SimProcess};
use webdriver::{connect, el, screenshot, select, text_until, type_into, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn a_card_shows_pass_and_fail_from_attached_runs_and_a_load_test_is_charted() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let fast = SimProcess::start(&[], "unused");
    let slow = SimProcess::start(&["--latency-ms", "150"], "unused");
    let db = home.path().join("milc.db");
    tickets_project(
        &db,
        home.path(),
        8,
        &[("fast", &fast.url), ("slow", &slow.url)],
    );

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;
    el(&c, "#nav-lifecycle").await.click().await.unwrap();

    // The use case, written down in the window.
    el(&c, ".uc-new summary").await.click().await.unwrap();
    type_into(&c, "#uc-name", "ticket summaries").await;
    type_into(&c, "#uc-owner", "ana").await;
    type_into(&c, "#uc-p95-latency", "100ms").await;
    type_into(&c, "#uc-min-score", "rouge1>=0.01@tickets").await;
    type_into(&c, "#uc-rpm", "30").await;
    el(&c, "#uc-save").await.click().await.unwrap();
    text_until(&c, "#uc-card h2", |t| {
        t.to_lowercase().contains("ticket summaries")
    })
    .await;

    // Two candidates: nothing is measured yet, so neither is judged.
    for endpoint in ["fast", "slow"] {
        type_into(&c, "#cand-prompt", "qa@1").await;
        select(&c, "#cand-endpoint", endpoint).await;
        el(&c, "#cand-add").await.click().await.unwrap();
        text_until(&c, "#uc-verdicts", |t| {
            t.contains(&format!("on {endpoint}"))
        })
        .await;
    }
    let verdicts = text_until(&c, "#uc-verdicts", |t| t.contains("on slow")).await;
    assert!(verdicts.contains("unknown"), "{verdicts}");

    // The two runs, attached: the fast one passes, the slow one fails its latency.
    for run in ["1", "2"] {
        select(&c, "#attach-run", run).await;
        el(&c, "#attach-run-button").await.click().await.unwrap();
        text_until(&c, "#uc-attached", |t| t.contains(&format!("run #{run}"))).await;
    }
    let row = |id: &str| format!("#uc-verdicts tr[data-candidate='{id}'] td.verdict");
    assert_eq!(text_until(&c, &row("1"), |t| t == "pass").await, "pass");
    assert_eq!(text_until(&c, &row("2"), |t| t == "fail").await, "fail");
    let slow_row = text_until(&c, "#uc-verdicts tr[data-candidate='2']", |t| {
        t.contains("run #2")
    })
    .await;
    assert!(slow_row.contains("fail"), "{slow_row}");

    // A small load test of the chosen candidate, from the card.
    type_into(&c, "#lt-levels", "1,2").await;
    type_into(&c, "#lt-duration", "1s").await;
    el(&c, "#lt-start").await.click().await.unwrap();
    el(&c, "#lt-progress").await;
    let knee = text_until(&c, "#lt-knee", |t| !t.is_empty()).await;
    assert!(knee.contains("knee"), "{knee}");
    let rows = c
        .execute(
            "return document.querySelectorAll('#lt-table tbody tr').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows.as_u64(), Some(2));
    el(&c, "#lt-chart-latency").await;
    el(&c, "#lt-chart-throughput").await;
    // Attached to the card as evidence.
    text_until(&c, "#uc-attached", |t| t.contains("loadtest #1")).await;
    screenshot("lifecycle");

    // Drift of the fast endpoint: today's calls against yesterday's (none), figures shown.
    type_into(&c, "#drift-subject", "fast").await;
    el(&c, "#drift-show").await.click().await.unwrap();
    let figures = text_until(&c, "#drift-figures", |t| t.contains("latency p50")).await;
    assert!(
        figures.contains("error rate") && figures.contains("refusal rate"),
        "{figures}"
    );
    el(&c, "#drift-chart").await;

    // Retiring the slow endpoint, which the card still uses: refused with what breaks, then
    // confirmed.
    select(&c, "#ret-endpoint", "slow").await;
    select(&c, "#ret-status", "retired").await;
    el(&c, "#ret-apply").await.click().await.unwrap();
    let refused = text_until(&c, "#ret-refused", |t| t.contains("ticket summaries")).await;
    assert!(refused.contains("use case"), "{refused}");
    el(&c, "#ret-force").await.click().await.unwrap();
    text_until(&c, "#ret-result", |t| t.contains("'slow' is now retired")).await;
    text_until(&c, "#ret-list tr[data-endpoint='slow']", |t| {
        t.contains("retired")
    })
    .await;

    c.close().await.unwrap();
    driver.stop();
}
