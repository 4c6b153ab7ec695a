//! The real window on a team workspace (WebDriver under Xvfb, PostgreSQL from
//! scripts/with-postgres, see scripts/test): it says which workspace is open and who you are,
//! shows what another member adds as soon as it gets the focus back, records your name as you
//! set it, and refuses a workspace that does not open (or a password typed into the connection
//! string) without leaving the one that is open.

use milc_e2e::workspace_bin;
use webdriver::{connect, el, screenshot, text_until, type_into, Driver};

mod webdriver;

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

#[tokio::test(flavor = "multi_thread")]
async fn the_window_on_a_team_workspace_says_where_and_who_and_follows_other_members() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let url = std::env::var("MILC_TEST_PG").expect("run under scripts/with-postgres");
    let name = format!("win{}", std::process::id());
    let on = |more: &[&str]| {
        let mut args = vec!["--db", url.as_str(), "--workspace", name.as_str()];
        args.extend_from_slice(more);
        milc(&args)
    };
    on(&["workspace", "init"]);

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
