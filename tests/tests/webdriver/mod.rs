//! WebDriver helpers shared by the window tests: tauri-driver on a free port, a session on the
//! app, and waits that fail with what was last seen.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use milc_e2e::{desktop_env, free_port};
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(20);

/// tauri-driver on a free port, with the app's environment; stopped with SIGTERM so it takes
/// WebKitWebDriver down with it.
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub fn start(home: &Path) -> Self {
        Self::start_with(home, &[])
    }

    /// [`Driver::start`] with more of the app's environment (`MILC_DB`, say), over the usual.
    pub fn start_with(home: &Path, env: &[(&str, &str)]) -> Self {
        let (port, native) = (free_port(), free_port());
        let child = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            // Everything the app or WebKit writes lands under `home`, so the canary scan below
            // covers every file the app wrote.
            .envs(desktop_env(home))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tauri-driver is installed (scripts/setup installs it)");
        Self { child, port }
    }

    pub fn stop(&mut self) {
        // (It may have ended already.)
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

pub async fn connect(port: u16, app: &Path) -> Client {
    let caps = json!({"browserName": "wry", "tauri:options": {"application": app}});
    let caps: serde_json::Map<String, Value> = caps.as_object().unwrap().clone();
    let deadline = Instant::now() + WAIT;
    loop {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a WebDriver session: {e}"),
        }
    }
}

pub async fn el(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Waits until the element's text satisfies `ok`, returning the text.
pub async fn text_until(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ok(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never matched; last text: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn type_into(c: &Client, css: &str, text: &str) {
    let e = el(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// The current value of an input, select or textarea.
pub async fn value_of(c: &Client, css: &str) -> String {
    el(c, css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Sets an input's or textarea's whole value at once, as a paste would, and tells the page
/// (typing long or structured text key by key is slow and fragile).
pub async fn paste_into(c: &Client, css: &str, text: &str) {
    el(c, css).await;
    c.execute(
        "const t = document.querySelector(arguments[0]); t.value = arguments[1];\
         t.dispatchEvent(new Event('input', { bubbles: true }));",
        vec![Value::from(css), Value::from(text)],
    )
    .await
    .unwrap();
}

/// Picks the option with `value` in a select, as a user would.
pub async fn select(c: &Client, css: &str, value: &str) {
    el(c, css).await;
    c.execute(
        "const s = document.querySelector(arguments[0]); s.value = arguments[1];\
         s.dispatchEvent(new Event('change', { bubbles: true }));",
        vec![Value::from(css), Value::from(value)],
    )
    .await
    .unwrap();
}

/// The window as it is now, for the README: `xwd` of the X display (Xvfb shows only the app's
/// window) through netpbm into `target/screenshots/NAME.png`; `scripts/screenshots` copies them
/// to docs/screenshots. Not WebDriver's capture: WebKitWebDriver's never returns on some pages
/// (Prompts, Datasets; the pages are idle), and a hung capture takes the session down with it.
pub fn screenshot(name: &str) {
    // What was just drawn reaches the display on WebKit's next paint.
    std::thread::sleep(Duration::from_millis(250));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    let done = Command::new("sh")
        .arg("-c")
        .arg("xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng > \"$1\"")
        .arg("sh")
        .arg(&png)
        .status()
        .expect("sh runs");
    assert!(
        done.success() && std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
        "xwd | xwdtopnm | pnmtopng made no picture of the display"
    );
}
