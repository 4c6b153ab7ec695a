//! The Routes page in the real window (WebDriver under Xvfb, see scripts/test): a gateway
//! started from the window serves an OpenAI client with a key created in the window; the arms'
//! live figures count the calls; a weight slider and the Rollback button change the route in
//! the store, as the CLI then reads it.

use std::time::{Duration, Instant};

use milc_e2e::{free_port, milc_ok, workspace_bin};
use serde_json::Value;
use webdriver::{connect, el, screenshot, text_until, type_into, Driver};

mod webdriver;

const ROUTES: &str = r#"
[[route]]
model = "support"
sticky = "user"
[[route.arm]]
name = "stable"
endpoint = "Local simulator"
weight = 50
[[route.arm]]
name = "canary"
endpoint = "Local simulator"
weight = 50
[route.canary]
baseline = "stable"
candidate = "canary"
min_calls = 1000
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_started_from_the_window_serves_and_its_route_is_steered_from_the_page() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let file = home.path().join("routes.toml");
    std::fs::write(&file, ROUTES).unwrap();
    milc(&["routes", "load", file.to_str().unwrap()]);

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;
    el(&c, "#nav-routes").await.click().await.unwrap();
    text_until(&c, "#arms-support", |t| {
        t.contains("stable") && t.contains("canary")
    })
    .await;

    // A gateway from the window, and a key created there (shown once).
    let listen = format!("127.0.0.1:{}", free_port());
    let input = el(&c, "#gateway-listen").await;
    input.clear().await.unwrap();
    type_into(&c, "#gateway-listen", &listen).await;
    el(&c, "#gateway-start").await.click().await.unwrap();
    let url = text_until(&c, "#gateway-url", |t| t.starts_with("http://")).await;
    assert_eq!(url, format!("http://{listen}/v1"));
    type_into(&c, "#key-name", "svc").await;
    el(&c, "#key-create").await.click().await.unwrap();
    let shown = text_until(&c, "#key-secret", |t| t.contains("milc-")).await;
    let key = shown
        .split_whitespace()
        .find(|w| w.starts_with("milc-"))
        .unwrap()
        .to_owned();

    // Traffic through it, as a service would send it.
    let http = reqwest::Client::new();
    for i in 0..30 {
        let r = http
            .post(format!("{url}/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"model": "support", "user": "u{i}", "max_tokens": 5, "messages": [{{"role": "user", "content": "hi"}}]}}"#
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    // The live figures catch up within a refresh or two.
    let deadline = Instant::now() + webdriver::WAIT;
    loop {
        let mut calls = 0;
        for arm in ["stable", "canary"] {
            let t = el(&c, &format!("#calls-support-{arm}"))
                .await
                .text()
                .await
                .unwrap();
            calls += t.trim().parse::<u64>().unwrap_or(0);
        }
        if calls == 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page shows {calls} calls of 30"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    text_until(&c, "#verdict-support", |t| t.contains("continue")).await;

    // The canary's slider, as a person drags it: the store follows.
    c.execute(
        "const e = document.querySelector('#weight-support-canary'); e.value = '20'; \
         e.dispatchEvent(new Event('change', { bubbles: true }));",
        vec![],
    )
    .await
    .unwrap();
    let deadline = Instant::now() + webdriver::WAIT;
    loop {
        let r: Value =
            serde_json::from_str(&milc(&["routes", "show", "support", "--json"])).unwrap();
        if r["arm"][1]["weight"] == 20.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the weight never reached the store: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    screenshot("routes");

    // Rollback from the page: the state shows it, and so does the CLI.
    el(&c, "#rollback-support").await.click().await.unwrap();
    text_until(&c, "#canary-state-support", |t| t.contains("rolled back")).await;
    let status: Value =
        serde_json::from_str(&milc(&["canary", "status", "support", "--json"])).unwrap();
    assert_eq!(status["route"]["canary_state"], "rolled_back");
    assert_eq!(status["events"][0]["kind"], "rollback");
    assert_eq!(status["route"]["arm"][1]["weight"], 0.0);

    el(&c, "#gateway-stop").await.click().await.unwrap();
    el(&c, "#gateway-start").await;
    c.close().await.unwrap();
    driver.stop();
}
