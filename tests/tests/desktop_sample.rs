//! First start in the real window (WebDriver under Xvfb, see scripts/test): a fresh database
//! offers the sample project; opening it puts the candidate prompt version with a ticket in the
//! Playground, and every page shows something real; removing it leaves the pages empty again.

use milc_e2e::{milc_ok, workspace_bin};
use serde_json::Value;
use webdriver::{connect, el, screenshot, text_until, value_of, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_window_opens_with_the_sample_project_and_every_page_shows_it() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("milc.db");
    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;

    el(&c, "#sample-offer").await;
    el(&c, "#sample-open").await.click().await.unwrap();
    text_until(&c, "#sample-loaded", |t| {
        t.contains("Sample project loaded")
    })
    .await;

    // The Playground holds the candidate version with a ticket filled in.
    text_until(&c, "#pg-origin", |t| t.contains("sample-ticket-summary")).await;
    let ticket = value_of(&c, "#pg-var-ticket").await;
    assert!(
        ticket.contains("error 500") || ticket.len() > 40,
        "{ticket}"
    );
    // The answer follows the version's "one sentence": the ticket's problem, streamed.
    el(&c, "#pg-send").await.click().await.unwrap();
    text_until(&c, "#pg-status", |t| t == "Done").await;
    let answer = el(&c, "#pg-output").await.text().await.unwrap();
    let first = ticket.split(". ").next().unwrap();
    assert!(
        first.starts_with(answer.trim_end_matches('.')),
        "{answer} / {ticket}"
    );
    screenshot("sample-playground");

    // Every page shows the sample.
    el(&c, "#nav-prompts").await.click().await.unwrap();
    text_until(&c, "#prompts-list", |t| t.contains("sample-ticket-summary")).await;
    // The two versions side by side: the candidate asks for one sentence.
    text_until(&c, "#prompt-diff", |t| t.contains("one sentence")).await;
    screenshot("sample-prompts");
    el(&c, "#nav-datasets").await.click().await.unwrap();
    text_until(&c, "#datasets-table", |t| {
        t.contains("sample-tickets") && t.contains("50")
    })
    .await;
    screenshot("sample-datasets");
    el(&c, "#nav-runs").await.click().await.unwrap();
    text_until(&c, "#runs-table", |t| t.matches("finished").count() >= 2).await;
    screenshot("sample-runs");
    el(&c, "#nav-compare").await.click().await.unwrap();
    text_until(&c, "#cmp-title", |t| {
        t.contains("sample-production-vs-candidate")
    })
    .await;
    screenshot("sample-compare");
    el(&c, "#nav-usage").await.click().await.unwrap();
    text_until(&c, "#usage-total-calls", |t| {
        t.replace(',', "").parse::<u64>().is_ok_and(|n| n > 2_000)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // the charts draw
    screenshot("sample-usage");
    el(&c, "#nav-calls").await.click().await.unwrap();
    text_until(&c, "#calls-table", |t| t.contains("Sample endpoint")).await;
    screenshot("sample-calls");
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    text_until(&c, "#endpoints-table", |t| t.contains("Sample endpoint")).await;
    screenshot("sample-endpoints");

    // Removed in one step: the pages are empty again.
    el(&c, "#sample-remove").await.click().await.unwrap();
    el(&c, "#nav-prompts").await.click().await.unwrap();
    el(&c, "#prompts-empty").await;
    let prompts: Value =
        serde_json::from_str(&milc_ok(&db, &["prompts", "list", "--json"])).unwrap();
    assert_eq!(prompts, serde_json::json!([]));
    c.close().await.unwrap();
    driver.stop();
}
