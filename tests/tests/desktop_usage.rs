//! The Usage page in the real window (WebDriver under Xvfb, see scripts/test): after a few
//! Playground calls the page charts them, its totals equal `milc usage --json`, a click on a bar
//! lists its calls, a crossed budget shows an alert to acknowledge, and what is shown exports as
//! CSV.

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use milc_e2e::{milc_ok, pico, workspace_bin};
use serde_json::Value;
use webdriver::{connect, el, paste_into, select, text_until, type_into, Driver};

mod webdriver;

#[tokio::test(flavor = "multi_thread")]
async fn playground_calls_show_in_the_usage_charts_and_totals_match_the_cli() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;

    // Three calls from the Playground, on the built-in simulator.
    for i in 0..3 {
        type_into(&c, "#pg-turn-0", &format!("question {i} about cost")).await;
        el(&c, "#pg-send").await.click().await.unwrap();
        text_until(&c, "#pg-status", |t| t == "Done").await;
    }

    el(&c, "#nav-usage").await.click().await.unwrap();
    el(&c, "#usage-range-24h").await.click().await.unwrap();
    text_until(&c, "#usage-total-calls", |t| t == "3").await;
    let cli: Value = serde_json::from_str(&milc(&["usage", "--since", "24h", "--json"])).unwrap();
    assert_eq!(cli["totals"]["calls"], 3);
    let shown = el(&c, "#usage-total-cost").await.text().await.unwrap();
    assert_eq!(
        pico(shown.trim()),
        pico(cli["totals"]["cost"]["usd"].as_str().unwrap()),
        "the window's total is the CLI's"
    );

    // The cost chart has a bar for them; a click on it lists its calls.
    click_the_only_bar(&c).await;
    text_until(&c, "#usage-picked-calls tbody", |t| {
        t.matches("playground").count() == 3
    })
    .await;
    // Grouped by prompt version, the Playground's calls made without one are a bar of their
    // own, and it lists them too.
    select(&c, "#usage-group", "prompt").await;
    text_until(&c, "#usage-totals", |t| t.contains("(no prompt version)")).await;
    click_the_only_bar(&c).await;
    text_until(&c, "#usage-picked", |t| {
        t.to_lowercase().contains("calls: (no prompt version)")
            && t.matches("playground").count() == 3
    })
    .await;

    // A daily budget below what was spent: one alert, acknowledged from the list.
    paste_into(&c, "#budget-daily", "0.000001").await;
    el(&c, "#budget-save").await.click().await.unwrap();
    let alerts = text_until(&c, "#usage-alerts", |t| t.contains("budget_daily")).await;
    assert!(
        alerts.contains("over the daily budget of $0.000001"),
        "{alerts}"
    );
    let listed: Value = serde_json::from_str(&milc(&["alerts", "--json"])).unwrap();
    let id = listed[0]["id"].as_i64().unwrap();
    el(&c, &format!("#alert-ack-{id}"))
        .await
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    loop {
        let listed: Value = serde_json::from_str(&milc(&["alerts", "--json"])).unwrap();
        if listed[0]["acked_ms"].is_number() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never acknowledged");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // What is shown, as CSV.
    el(&c, "#usage-export").await.click().await.unwrap();
    let done = text_until(&c, "#usage-exported", |t| !t.is_empty()).await;
    let path = done.split(" rows written to ").nth(1).unwrap().to_owned();
    let csv = std::fs::read_to_string(&path).unwrap();
    assert!(
        csv.starts_with("bucket,endpoint,prompt,source,calls"),
        "{csv}"
    );
    assert!(csv.lines().last().unwrap().starts_with("total,"), "{csv}");

    c.close().await.unwrap();
    driver.stop();
}

/// Clicks the one bar of the cost chart once it is drawn.
async fn click_the_only_bar(c: &fantoccini::Client) {
    let canvas = el(c, "#usage-cost-chart").await;
    let deadline = std::time::Instant::now() + webdriver::WAIT;
    let bars: Vec<(i64, i64, i64, i64, usize, usize)> = loop {
        let raw = canvas.attr("data-bars").await.unwrap().unwrap_or_default();
        let bars: Vec<_> = serde_json::from_str(&raw).unwrap_or_default();
        if !bars.is_empty() {
            break bars;
        }
        assert!(std::time::Instant::now() < deadline, "no bar drawn");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(bars.len(), 1, "one hour, one group: {bars:?}");
    let (x0, y0, x1, y1, ..) = bars[0];
    let size = c
        .execute(
            "const e = document.querySelector('#usage-cost-chart'); return [e.width, e.height];",
            vec![],
        )
        .await
        .unwrap();
    let (w, h) = (size[0].as_i64().unwrap(), size[1].as_i64().unwrap());
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: canvas.clone(),
            duration: None,
            x: ((x0 + x1) / 2 - w / 2) as f64,
            y: ((y0 + y1) / 2 - h / 2) as f64,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(click).await.unwrap();
}
