//! The real window on a team workspace (WebDriver under Xvfb, PostgreSQL from
//! scripts/with-postgres, see scripts/test): it says which workspace is open and who you are,
//! shows what another member adds as soon as it gets the focus back, records your name as you
//! set it, and refuses a workspace that does not open (or a password typed into the connection
//! string) without leaving the one that is open; and a workspace opened from the window is
//! where the window reopens, its password in the OS keyring, until it goes back to the local
//! file.

use std::path::Path;
use std::time::{Duration, Instant};

use milc_e2e::{files_containing, workspace_bin};
use webdriver::{connect, el, screenshot, text_until, type_into, Driver};

mod webdriver;

/// One window at a time: the tests share the X display (a screenshot takes all of it) and one
/// reopens its app.
static ONE_WINDOW: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn milc(args: &[&str]) -> String {
    let out = std::process::Command::new(milc_e2e::milc_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "milc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A new workspace named `prefix` + this process's id on the test server, made by its owner:
/// its URL and name.
fn new_workspace(prefix: &str) -> (String, String) {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let url = std::env::var("MILC_TEST_PG").expect("run under scripts/with-postgres");
    let name = format!("{prefix}{}", std::process::id());
    on(&url, &name, &["workspace", "init"]);
    (url, name)
}

/// `milc` on workspace `name` of the server at `url`.
fn on(url: &str, name: &str, more: &[&str]) -> String {
    let mut args = vec!["--db", url, "--workspace", name];
    args.extend_from_slice(more);
    milc(&args)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_on_a_team_workspace_says_where_and_who_and_follows_other_members() {
    let _one = ONE_WINDOW.lock().await;
    let (url, name) = new_workspace("win");
    let on = |more: &[&str]| on(&url, &name, more);

    let home = tempfile::tempdir().unwrap();
    let mut driver = Driver::start_with(
        home.path(),
        &[("MILC_DB", url.as_str()), ("MILC_WORKSPACE", name.as_str())],
    );
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;

    // Where and who.
    text_until(&c, "#whoami-store", |t| {
        t.to_lowercase().contains(&format!("team: {name}"))
    })
    .await;
    text_until(&c, "#whoami-user", |t| t.contains("admin")).await;

    // Another member adds an endpoint; the window shows it once it has the focus again.
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    text_until(&c, "#endpoints-table", |t| t.contains("Local simulator")).await;
    on(&[
        "--as",
        "bob",
        "endpoints",
        "add",
        "bobs-endpoint",
        "--url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
    ]);
    c.execute("window.dispatchEvent(new Event('focus'))", vec![])
        .await
        .unwrap();
    text_until(&c, "#endpoints-table", |t| t.contains("bobs-endpoint")).await;

    // Your name, as your writes record it.
    el(&c, "#whoami").await.click().await.unwrap();
    el(&c, "#workspace-dialog").await;
    let author = el(&c, "#ws-author").await;
    author.clear().await.unwrap();
    author.send_keys("Ana Lima").await.unwrap();
    el(&c, "#ws-author-save").await.click().await.unwrap();
    text_until(&c, "#whoami-user", |t| t.contains("Ana Lima")).await;
    // What changed, and who changed it.
    text_until(&c, "#ws-activity", |t| {
        t.contains("bob endpoint.add bobs-endpoint")
    })
    .await;
    screenshot("workspace");

    // A password in the connection string is refused: it would land in a file.
    let field = el(&c, "#ws-url").await;
    field.clear().await.unwrap();
    let with_password = url.replacen("milc@", "milc:hunter2@", 1);
    type_into(&c, "#ws-url", &with_password).await;
    el(&c, "#ws-open").await.click().await.unwrap();
    text_until(&c, "#ws-error", |t| t.contains("keyring")).await;
    // A workspace that does not exist is named, and the open one stays open.
    let field = el(&c, "#ws-url").await;
    field.clear().await.unwrap();
    type_into(&c, "#ws-url", &url).await;
    let ws = el(&c, "#ws-name").await;
    ws.clear().await.unwrap();
    ws.send_keys("nobody_here").await.unwrap();
    el(&c, "#ws-open").await.click().await.unwrap();
    text_until(&c, "#ws-error", |t| {
        t.contains("no workspace 'nobody_here'")
    })
    .await;
    text_until(&c, "#whoami-store", |t| {
        t.to_lowercase().contains(&format!("team: {name}"))
    })
    .await;
    let settings = home.path().join("config/milc-console/desktop.json");
    let saved = std::fs::read_to_string(&settings).unwrap_or_default();
    assert!(!saved.contains("hunter2"), "{saved}");
    assert!(!saved.contains("nobody_here"), "{saved}");
    assert!(saved.contains("Ana Lima"), "{saved}");
    c.close().await.unwrap();
    driver.stop();
}

/// The app processes whose environment puts their files under `home` (the ones this test
/// started, and the ones they restarted).
fn apps_of(home: &Path) -> Vec<u32> {
    let mark = format!("XDG_CONFIG_HOME={}", home.join("config").display());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let is_app = std::fs::read_link(entry.path().join("exe"))
            .is_ok_and(|e| e.to_string_lossy().contains("milc-desktop"));
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if is_app && env.split(|b| *b == 0).any(|v| v == mark.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Clicks `button` in the workspace dialog, which reopens the app: waits for the new process
/// (a pid this home had not had), then ends it and the WebDriver session that lost its app.
async fn reopens_after(c: fantoccini::Client, mut driver: Driver, home: &Path, button: &str) {
    let before = apps_of(home);
    assert!(!before.is_empty(), "the app runs with the test's home");
    // The app may be gone before it answers the click.
    let _ = el(&c, button).await.click().await;
    let deadline = Instant::now() + webdriver::WAIT;
    let reopened = loop {
        if let Some(pid) = apps_of(home).into_iter().find(|p| !before.contains(p)) {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "{button}: the app never reopened (app pids: {:?})",
            apps_of(home)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = c.close().await;
    driver.stop();
    // (It may have ended already, with the session it was not started for.)
    let _ = std::process::Command::new("kill")
        .arg(reopened.to_string())
        .stderr(std::process::Stdio::null())
        .status();
    let deadline = Instant::now() + webdriver::WAIT;
    while !apps_of(home).is_empty() {
        assert!(Instant::now() < deadline, "the reopened app did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_opened_from_the_window_is_where_it_reopens_with_its_password_in_the_keyring() {
    let _one = ONE_WINDOW.lock().await;
    let (url, name) = new_workspace("reopen");
    let home = tempfile::tempdir().unwrap();
    // No MILC_DB: the window opens what its settings say, at first the local file.
    let start = || Driver::start_with(home.path(), &[("MILC_DB", "")]);
    let app = workspace_bin("milc-desktop");

    let driver = start();
    let c = connect(driver.port, &app).await;
    text_until(&c, "#whoami-store", |t| t == "Local file").await;
    el(&c, "#whoami").await.click().await.unwrap();
    type_into(&c, "#ws-url", &url).await;
    type_into(&c, "#ws-name", &name).await;
    let password = format!("canary-pw-{}", std::process::id());
    type_into(&c, "#ws-password", &password).await;
    reopens_after(c, driver, home.path(), "#ws-open").await;

    // The password is in the keyring, under the workspace's login, and in no file.
    let port = url.rsplit_once(':').unwrap().1.split('/').next().unwrap();
    let account = format!("workspace/milc@127.0.0.1:{port}/postgres");
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "milc-console", "username", &account])
        .output()
        .expect("secret-tool (scripts/setup installs libsecret-tools)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), password, "{account}");
    assert_eq!(
        files_containing(home.path(), password.as_bytes()),
        Vec::<String>::new()
    );

    // Started again, the window is on the workspace.
    let driver = start();
    let c = connect(driver.port, &app).await;
    text_until(&c, "#whoami-store", |t| {
        t.to_lowercase() == format!("team: {name}")
    })
    .await;
    text_until(&c, "#whoami-user", |t| t.contains("admin")).await;
    el(&c, "#whoami").await.click().await.unwrap();
    reopens_after(c, driver, home.path(), "#ws-local").await;

    // And back on the local file.
    let mut driver = start();
    let c = connect(driver.port, &app).await;
    text_until(&c, "#whoami-store", |t| t == "Local file").await;
    c.close().await.unwrap();
    driver.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_is_told_what_the_role_may_do_and_still_tests_an_endpoint() {
    let _one = ONE_WINDOW.lock().await;
    let (url, name) = new_workspace("view");
    let viewer = format!("{name}_val");
    on(&url, &name, &["workspace", "grant", &viewer, "viewer"]);
    let as_viewer = url.replacen("milc@", &format!("{viewer}@"), 1);
    let home = tempfile::tempdir().unwrap();
    let mut driver = Driver::start_with(
        home.path(),
        &[
            ("MILC_DB", as_viewer.as_str()),
            ("MILC_WORKSPACE", name.as_str()),
        ],
    );
    let c = connect(driver.port, &workspace_bin("milc-desktop")).await;

    text_until(&c, "#role-banner", |t| {
        t.contains(&format!("You are a viewer in workspace '{name}'"))
            && t.contains("viewers read only")
    })
    .await;
    // What the role may not do is disabled, saying why, before a click could be refused.
    let disabled_saying_why = |css: &'static str, needs: &'static str| {
        let c = c.clone();
        async move {
            let button = el(&c, css).await;
            assert_eq!(
                button.attr("disabled").await.unwrap().as_deref(),
                Some("true"),
                "{css}"
            );
            let title = button.attr("title").await.unwrap().unwrap_or_default();
            assert!(
                title.contains(&format!("Needs the {needs} role; yours here is viewer")),
                "{css}: {title}"
            );
        }
    };
    disabled_saying_why("#pg-send", "editor").await;
    el(&c, "#nav-endpoints").await.click().await.unwrap();
    disabled_saying_why("#ep-add", "admin").await;
    disabled_saying_why("tr[data-endpoint='Local simulator'] button.edit", "admin").await;
    // Testing an endpoint changes nothing: the viewer sees the result.
    el(&c, "tr[data-endpoint='Local simulator'] button.test")
        .await
        .click()
        .await
        .unwrap();
    text_until(
        &c,
        "tr[data-endpoint='Local simulator'] td.last-test",
        |t| t.starts_with("ok ·"),
    )
    .await;
    c.close().await.unwrap();
    driver.stop();
}
