//! A/B comparison in the real window (WebDriver under Xvfb, see scripts/test): create a
//! comparison of two prompt versions, run it with a progress bar, rate ten pairs blind from the
//! keyboard (names hidden, sides shuffled), and read the counts, intervals and leaderboard the
//! CLI reads too; then send one input to both versions in Playground columns.

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, Locator};
use milc_e2e::{milc_ok, workspace_bin, SimProcess};
use serde_json::Value;
use webdriver::{connect, el, paste_into, select, text_until, type_into, Driver};

mod webdriver;

/// Presses `key` with nothing focused but the page, as a rater at the keyboard would.
async fn press(c: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_variants_are_rated_blind_from_the_keyboard_and_ranked() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(&["--latency-ms", "30", "--tokens-per-sec", "10"], "unused");
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let v1 = home.path().join("v1.yaml");
    std::fs::write(
        &v1,
        "messages:\n  - role: user\n    content: \"{{question}}\"\n",
    )
    .unwrap();
    let v2 = home.path().join("v2.yaml");
    std::fs::write(
        &v2,
        "messages:\n  - role: system\n    content: Be brief.\n  - role: user\n    content: \"{{question}}\"\n",
    )
    .unwrap();
    milc(&["prompts", "create", "qa", "--file", v1.to_str().unwrap()]);
    milc(&["prompts", "version", "qa", "--file", v2.to_str().unwrap()]);
    let data = home.path().join("qa.jsonl");
    let lines: String = (0..10)
        .map(|i| format!("{{\"question\": \"question {i} about latency in the gateway. It matters for the release next week.\"}}\n"))
        .collect();
    std::fs::write(&data, lines).unwrap();
    milc(&["datasets", "import", data.to_str().unwrap(), "--name", "qa"]);
    milc(&[
        "endpoints",
        "add",
        "sim",
        "--url",
        &sim.url,
        "--model",
        "milc-sim",
    ]);

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;
    el(&c, "#nav-compare").await.click().await.unwrap();

    // Create: two versions of the prompt on the same endpoint.
    el(&c, "#cmp-new").await.click().await.unwrap();
    type_into(&c, "#cmp-name", "brief").await;
    select(&c, "#cmp-dataset", "qa").await;
    select(&c, "#cmp-var-0-prompt", "qa@1").await;
    select(&c, "#cmp-var-0-endpoint", "sim").await;
    select(&c, "#cmp-var-1-prompt", "qa@2").await;
    select(&c, "#cmp-var-1-endpoint", "sim").await;
    el(&c, "#cmp-create").await.click().await.unwrap();
    text_until(&c, "#cmp-title", |t| t == "brief").await;

    // Run both variants; the progress bar counts their answers.
    el(&c, "#cmp-run").await.click().await.unwrap();
    el(&c, "#cmp-rater").await;
    let runs: Value = serde_json::from_str(&milc(&["compare", "list", "--json"])).unwrap();
    let b_run = runs[0]["variants"][1]["run_id"].as_i64().unwrap();
    let b: Value =
        serde_json::from_str(&milc(&["runs", "show", &b_run.to_string(), "--results"])).unwrap();
    let b_outputs: Vec<String> = (0..10)
        .map(|i| {
            b.as_array()
                .unwrap()
                .iter()
                .find(|r| r["item"] == i)
                .unwrap()["output"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    // Rate blind: no variant is named, and results wait until every pair is rated.
    // The rater is who this window records you as, named at the foot of the navigation.
    el(&c, "#whoami").await.click().await.unwrap();
    type_into(&c, "#ws-author", "alice").await;
    el(&c, "#ws-author-save").await.click().await.unwrap();
    text_until(&c, "#cmp-rater", |t| t == "alice").await;
    el(&c, "#whoami").await.click().await.unwrap();
    el(&c, "#cmp-rate-start").await.click().await.unwrap();
    text_until(&c, "#cmp-rate-count", |t| t == "0/10 rated").await;
    let page = el(&c, ".cmp-view").await.text().await.unwrap();
    assert!(
        !page.contains("qa@1") && !page.contains("qa@2"),
        "names are hidden while rating: {page}"
    );
    assert!(c.find(Locator::Css("#cmp-variants")).await.is_err());
    assert_eq!(
        el(&c, "#cmp-tab-results")
            .await
            .attr("disabled")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    // j / k move between pairs.
    press(&c, 'j').await;
    text_until(&c, "#cmp-position", |t| t == "pair 2 of 10").await;
    press(&c, 'k').await;
    text_until(&c, "#cmp-position", |t| t == "pair 1 of 10").await;

    // Prefer version 2 on every pair, by key, wherever it is shown.
    let mut b_left = 0;
    for k in 0..10 {
        text_until(&c, "#cmp-position", |t| {
            t == format!("pair {} of 10", k + 1)
        })
        .await;
        let left = el(&c, "#cmp-left").await.text().await.unwrap();
        let right = el(&c, "#cmp-right").await.text().await.unwrap();
        let left_is_b = b_outputs.iter().any(|o| o.trim() == left.trim());
        assert!(left_is_b || b_outputs.iter().any(|o| o.trim() == right.trim()));
        b_left += usize::from(left_is_b);
        press(&c, if left_is_b { '1' } else { '2' }).await;
        if k < 9 {
            text_until(&c, "#cmp-rate-count", |t| {
                t == format!("{}/10 rated", k + 1)
            })
            .await;
        }
    }
    assert!(
        (1..10).contains(&b_left),
        "sides are shuffled: B was left {b_left} of 10 times"
    );

    // Done: the results open, with counts, Wilson intervals and the leaderboard.
    let pairs = text_until(&c, "#cmp-human-pairs", |t| t.contains("vs")).await;
    assert!(pairs.contains("qa@1 · sim vs qa@2 · sim"), "{pairs}");
    assert!(
        pairs.contains("0.000") && pairs.contains("[0.000, 0.278]"),
        "0 of 10 → [0, 0.277533]: {pairs}"
    );
    let board = el(&c, "#cmp-human-leaderboard tbody tr")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        board.starts_with('1') && board.contains("qa@2 · sim"),
        "{board}"
    );
    let bias = el(&c, "#cmp-bias").await.text().await.unwrap();
    assert!(
        bias.contains(&format!("won {b_left} of 10 decisive votes")),
        "{bias}"
    );
    // The CLI reads the same votes.
    let r: Value = serde_json::from_str(&milc(&["compare", "results", "brief", "--json"])).unwrap();
    assert_eq!(r["human"]["pairs"][0]["second_wins"], 10);
    assert_eq!(r["human"]["ratings"][0]["variant"], "qa@2 · sim");
    assert_eq!(
        r["raters"][0]["rater"], "alice",
        "the votes are alice's: {r}"
    );

    // Side by side, largest disagreement first, with the differing words marked.
    el(&c, "#cmp-tab-side").await.click().await.unwrap();
    text_until(&c, "#cmp-side-total", |t| {
        t == "10 items answered by both · gap by text difference"
    })
    .await;
    el(&c, "#cmp-by-gap").await.click().await.unwrap();
    el(&c, "#cmp-side-table td.diff mark").await;
    // The page re-sorts once the store answers: wait for it.
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    loop {
        let mut gaps = Vec::new();
        for cell in c
            .find_all(Locator::Css("#cmp-side-table td.num.mono"))
            .await
            .unwrap()
        {
            gaps.push(
                cell.text()
                    .await
                    .unwrap()
                    .parse::<f64>()
                    .unwrap_or(f64::NAN),
            );
        }
        if gaps.len() == 10 && gaps.windows(2).all(|w| w[0] >= w[1]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never sorted by gap: {gaps:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    el(&c, "#cmp-tab-results").await.click().await.unwrap();

    // Export the preference pairs to a chosen file.
    let out = home.path().join("prefs.jsonl");
    select(&c, "#cmp-export-format", "dpo").await;
    paste_into(&c, "#cmp-export-path", out.to_str().unwrap()).await;
    el(&c, "#cmp-export").await.click().await.unwrap();
    let done = text_until(&c, "#cmp-exported", |t| !t.is_empty()).await;
    assert_eq!(done, format!("10 records written to {}", out.display()));
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(b_outputs.contains(&v["chosen"][0]["content"].as_str().unwrap().to_owned()));
    }

    // The Playground sends one input to both versions in columns, streaming.
    el(&c, "#nav-playground").await.click().await.unwrap();
    select(&c, "#pg-endpoint", "sim").await;
    select(&c, "#pg-prompt", "qa").await;
    type_into(
        &c,
        "#pg-var-question",
        "Explain what latency means for our gateway when traffic doubles at night. Compare it with throughput in plain words.",
    )
    .await;
    for _ in 0..3 {
        el(&c, "#pg-col-add").await.click().await.unwrap();
    }
    for (i, version) in ["qa@1", "qa@1", "qa@2"].iter().enumerate() {
        select(&c, &format!("#pg-col-{i}-prompt"), version).await;
        select(&c, &format!("#pg-col-{i}-endpoint"), "sim").await;
    }
    el(&c, "#pg-send-all").await.click().await.unwrap();
    // All stream at once: each column shows part of its answer before any is done.
    for i in 0..3 {
        el(&c, &format!("#pg-col-{i}-output.streaming")).await;
    }
    // The first column is removed mid-stream: its call stops, and the two others (now first
    // and second) stream on into their own columns to the end.
    el(&c, "#pg-col-0-remove").await.click().await.unwrap();
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    while c
        .find(fantoccini::Locator::Css("#pg-col-2-output"))
        .await
        .is_ok()
    {
        assert!(std::time::Instant::now() < deadline, "two columns are left");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for i in 0..2 {
        el(&c, &format!("#pg-col-{i}-fig-latency")).await;
        let text = el(&c, &format!("#pg-col-{i}-output"))
            .await
            .text()
            .await
            .unwrap();
        assert!(text.split_whitespace().count() >= 3, "column {i}: {text}");
    }
    let calls: Value = serde_json::from_str(&milc(&[
        "history", "--json", "--search", "latency", "--limit", "5",
    ]))
    .unwrap();
    let prompts: Vec<&str> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| {
            h["prompt"]["version"]
                .as_u64()
                .map(|_| h["prompt"]["prompt"].as_str().unwrap())
        })
        .collect();
    assert!(
        prompts.len() >= 2,
        "both columns are logged against their versions: {calls}"
    );
    assert!(
        prompts.contains(&"qa") && calls.to_string().contains("\"version\":2"),
        "the column left streaming qa@2 finished: {calls}"
    );
    let second = el(&c, "#pg-col-1-output").await.text().await.unwrap();
    let v2: Vec<&Value> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["prompt"]["version"] == 2)
        .collect();
    assert_eq!(
        v2.first().map(|h| h["output"].as_str().unwrap()),
        Some(second.as_str()),
        "qa@2's answer is in the column that asked for it"
    );
    let cancelled: Value =
        serde_json::from_str(&milc(&["calls", "--status", "cancelled", "--json"])).unwrap();
    assert_eq!(
        cancelled.as_array().unwrap().len(),
        1,
        "the removed column's call stopped: {cancelled}"
    );

    c.close().await.unwrap();
    driver.stop();
}
