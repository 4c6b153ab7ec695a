//! Test runs in the real window (WebDriver under Xvfb, see scripts/test): import a dataset with a
//! preview (a bad line is named, nothing is stored), start a run against a slow simulator, watch
//! the progress bar move and reach the end, read the summary and open a result beside its
//! reference.

use std::time::{Duration, Instant};

use milc_e2e::{milc_ok, workspace_bin, SimProcess};
use webdriver::{connect, el, paste_into, text_until, type_into, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn a_dataset_is_imported_and_a_run_is_watched_to_the_end_from_the_window() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(&["--latency-ms", "100"], "unused");
    // The prompt and the endpoint come from the CLI, on the database the window will open.
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let prompt = home.path().join("p.yaml");
    std::fs::write(
        &prompt,
        "messages:\n  - role: user\n    content: \"{{question}}\"\n",
    )
    .unwrap();
    milc(&[
        "prompts",
        "create",
        "qa",
        "--file",
        prompt.to_str().unwrap(),
    ]);
    milc(&[
        "endpoints",
        "add",
        "slow",
        "--url",
        &sim.url,
        "--model",
        "milc-sim",
    ]);

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;
    el(&c, "#nav-datasets").await.click().await.unwrap();

    // A bad line is named and nothing is imported.
    type_into(&c, "#ds-name", "support-qa").await;
    type_into(
        &c,
        "#ds-text",
        "{\"question\": \"ok\", \"expected\": \"fine\"}\u{E007}{\"question\": \"bad\", \"expected\": 7}",
    )
    .await;
    el(&c, "#ds-preview-btn").await.click().await.unwrap();
    let err = text_until(&c, "#ds-error", |t| !t.is_empty()).await;
    assert!(
        err.contains("pasted.jsonl:2") && err.contains("expected"),
        "{err}"
    );

    // Sixty good lines: previewed, then imported.
    let lines: Vec<String> = (0..60)
        .map(|i| format!("{{\"question\": \"question {i} about latency\", \"expected\": \"reference answer {i}\"}}"))
        .collect();
    paste_into(&c, "#ds-text", &lines.join("\n")).await;
    el(&c, "#ds-preview-btn").await.click().await.unwrap();
    text_until(&c, "#ds-preview", |t| {
        t.contains("60 items (60 with references)")
    })
    .await;
    el(&c, "#ds-import").await.click().await.unwrap();
    text_until(&c, "#ds-result", |t| {
        t.starts_with("Imported 60 items into support-qa")
    })
    .await;
    text_until(&c, "#datasets-table", |t| t.contains("support-qa")).await;
    // Browse the version's items, a page at a time.
    el(&c, "#datasets-table button")
        .await
        .click()
        .await
        .unwrap();
    text_until(&c, "#ds-items", |t| {
        t.to_lowercase().contains("items 1–50 of 60")
    })
    .await;
    el(&c, "#ds-next").await.click().await.unwrap();
    let page = text_until(&c, "#ds-items", |t| {
        t.to_lowercase().contains("items 51–60 of 60")
    })
    .await;
    assert!(
        page.contains("question 59 about latency") && page.contains("reference answer 59"),
        "{page}"
    );

    // Start a run and watch the progress bar move, then reach the end.
    el(&c, "#nav-runs").await.click().await.unwrap();
    el(&c, "#run-prompt")
        .await
        .select_by_value("qa")
        .await
        .unwrap();
    el(&c, "#run-endpoint")
        .await
        .select_by_value("slow")
        .await
        .unwrap();
    el(&c, "#run-dataset")
        .await
        .select_by_value("support-qa")
        .await
        .unwrap();
    type_into(&c, "#run-scorers", "rouge1,contains:0").await;
    type_into(&c, "#run-concurrency", "2").await;
    el(&c, "#run-start").await.click().await.unwrap();
    let mut seen_between = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = match c.find(fantoccini::Locator::Css("#run-progress-text")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if t == "60/60" {
            break;
        }
        if let Some((done, _)) = t.split_once('/') {
            seen_between |= done.parse::<u32>().is_ok_and(|d| d > 0 && d < 60);
        }
        assert!(Instant::now() < deadline, "the run never finished: {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_between, "the progress bar moved while the run went on");
    // The last progress event and the summary replace each other: read the bar once the
    // summary is shown.
    let summary = text_until(&c, "#run-summary", |t| t.contains("rouge1")).await;
    let progress = el(&c, "#run-summary #run-progress").await;
    assert_eq!(progress.attr("value").await.unwrap().as_deref(), Some("60"));
    assert_eq!(progress.attr("max").await.unwrap().as_deref(), Some("60"));
    assert!(
        summary.contains("finished") && summary.contains("pass rate"),
        "{summary}"
    );

    // Open a result: the output beside its reference.
    el(&c, "#run-result-3 button").await.click().await.unwrap();
    let output = text_until(&c, "#run-detail-output", |t| !t.trim().is_empty()).await;
    assert!(output.split_whitespace().count() >= 3, "{output}");
    let expected = el(&c, "#run-detail-expected").await.text().await.unwrap();
    assert_eq!(expected, "reference answer 3");
    text_until(&c, "#runs-table", |t| {
        t.contains("60/60") && t.contains("finished")
    })
    .await;
    // Results are paged and sorted by the store.
    text_until(&c, "#run-page", |t| t == "1–60 of 60").await;
    el(&c, "#run-filter")
        .await
        .select_by_value("errors")
        .await
        .unwrap();
    text_until(&c, "#run-page", |t| t.ends_with("of 0")).await;
    el(&c, "#run-filter")
        .await
        .select_by_value("all")
        .await
        .unwrap();
    el(&c, "#run-sort")
        .await
        .select_by_value("score:rouge1 desc")
        .await
        .unwrap();
    text_until(&c, "#run-page", |t| t == "1–60 of 60").await;

    // The same run again compares equal item by item.
    type_into(&c, "#run-concurrency", "8").await;
    el(&c, "#run-start").await.click().await.unwrap();
    text_until(&c, "#runs-table", |t| t.matches("60/60").count() == 2).await;
    el(&c, "#compare-a")
        .await
        .select_by_value("1")
        .await
        .unwrap();
    el(&c, "#compare-b")
        .await
        .select_by_value("2")
        .await
        .unwrap();
    el(&c, "#compare-go").await.click().await.unwrap();
    let cmp = text_until(&c, "#compare-result", |t| t.contains("items paired")).await;
    assert!(
        cmp.contains("60 items paired · 0 regressions · 0 improvements"),
        "{cmp}"
    );
    assert!(cmp.contains("rouge1"), "{cmp}");

    c.close().await.unwrap();
    driver.stop();
}
