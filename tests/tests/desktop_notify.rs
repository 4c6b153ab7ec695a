//! The desktop notification itself: a notification server on the test's D-Bus session (the
//! `org.freedesktop.Notifications` interface every Linux desktop serves) records what the
//! window sent when calls from its Playground fail often enough to cross the error-rate alert.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use milc_e2e::{milc_ok, workspace_bin, SimProcess};
use webdriver::{connect, el, select, text_until, type_into, Driver};

mod webdriver;

/// What the app asked to show: (summary, body) per notification.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(String, String)>>>);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.0.lock().unwrap();
        shown.push((summary, body));
        shown.len() as u32
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "milc-e2e".into(),
            "MILC Console tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_calls_cross_the_error_rate_and_the_desktop_shows_a_notification() {
    assert!(
        std::env::var_os("DISPLAY").is_some()
            && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "needs an X display and a D-Bus session: run scripts/test"
    );
    let recorder = Recorder::default();
    let _server = zbus::connection::Builder::session()
        .name("org.freedesktop.Notifications")
        .serve_at("/org/freedesktop/Notifications", recorder.clone())
        .build()
        .await
        .expect("the notification name is free on the test's session bus");

    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("milc.db");
    let milc = |args: &[&str]| milc_ok(&db, args);
    let sim = SimProcess::start(&["--fault", "server_error:1"], "unused");
    milc(&[
        "endpoints",
        "add",
        "failing",
        "--url",
        &sim.url,
        "--model",
        "milc-sim",
        "--max-retries",
        "0",
    ]);
    milc(&[
        "alerts",
        "settings",
        "--error-rate",
        "0.5",
        "--min-calls",
        "3",
    ]);

    let mut driver = Driver::start(home.path());
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;
    select(&c, "#pg-endpoint", "failing").await;
    for i in 0..3 {
        type_into(&c, "#pg-turn-0", &format!("question {i}")).await;
        el(&c, "#pg-send").await.click().await.unwrap();
        text_until(&c, "#pg-error", |t| !t.is_empty()).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while serde_json::from_str::<serde_json::Value>(&milc(&["calls", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .len()
            <= i
        {
            assert!(Instant::now() < deadline, "call {i} was never logged");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = recorder.0.lock().unwrap().clone();
        if !shown.is_empty() {
            break shown;
        }
        assert!(Instant::now() < deadline, "no notification was shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shown.len(), 1, "one notification per episode: {shown:?}");
    let (summary, body) = &shown[0];
    assert_eq!(summary, "MILC Console: error rate");
    assert!(
        body.contains("failing") && body.contains("100 % of 3 calls failed"),
        "{body}"
    );
    // The window lists the same alert.
    el(&c, "#nav-usage").await.click().await.unwrap();
    text_until(&c, "#usage-alerts", |t| t.contains("error_rate")).await;

    c.close().await.unwrap();
    driver.stop();
}
