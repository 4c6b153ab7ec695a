//! Tokens through the real OS keyring (Secret Service: gnome-keyring on the private D-Bus session
//! that scripts/test starts), checked from the outside with `secret-tool`, with a canary token
//! that must reach the server and nothing else.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;

use milc_api::{CallSource, ChatRequest, EndpointSpec, ErrorKind, Message, Params, Role};
use milc_core::{Console, Error, SecretString};
use milc_sim::SimConfig;
use tokio_util::sync::CancellationToken;

const CANARY: &str = "CANARY_nvapi_keyring_0d1e2f3a";

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests need a Secret Service on a D-Bus session bus: run scripts/test"
    );
}

/// What an outside program finds in the Secret Service for this account.
fn lookup(service: &str, account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", service, "username", account])
        .output()
        .expect("secret-tool runs");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn say_hi(console: &Console, endpoint: &str) -> Result<String, Error> {
    let req = ChatRequest::new(vec![Message::new(Role::User, "hi")], Params::default());
    let r = console
        .chat(
            endpoint,
            &req,
            CallSource::Cli,
            &mut |_| {},
            &CancellationToken::new(),
        )
        .await?;
    Ok(r.output)
}

/// Files below `dir` holding `needle`. A file that vanishes while scanning (SQLite removes its
/// -wal and -shm files as the last connection closes) held nothing.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[tokio::test]
async fn a_token_lives_in_the_os_keyring_reaches_the_server_and_nowhere_else() {
    require_session_bus();
    let sim = milc_sim::start(
        ([127, 0, 0, 1], 0).into(),
        SimConfig {
            api_key: Some(CANARY.into()),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    let console = common::open(&db).await.unwrap();

    let spec = EndpointSpec::new("ccluster", sim.base_url(), "milc-sim");
    let ep = console
        .add_endpoint(spec, Some(SecretString::new(CANARY)))
        .await
        .unwrap();
    assert!(ep.has_token);
    let service = console.secrets().service().to_owned();
    let account = console.secrets().account(ep.id);
    assert_eq!(
        lookup(&service, &account).as_deref(),
        Some(CANARY),
        "stored in the Secret Service"
    );

    // The token reaches the server (which refuses calls without it), from this process and from
    // a fresh one on the same database.
    assert!(!say_hi(&console, "ccluster").await.unwrap().is_empty());
    console.store().close().await;
    drop(console);
    let console = common::open(&db).await.unwrap();
    assert!(!say_hi(&console, "ccluster").await.unwrap().is_empty());
    let shown = format!(
        "{:?} {:?}",
        console.endpoints().await.unwrap(),
        console.secrets().get(ep.id).await.unwrap()
    );
    assert!(!shown.contains(CANARY), "Debug output hides the token");

    // Removing the token: the keyring forgets it and the server refuses.
    let ep = console.set_token(ep.id, None).await.unwrap();
    assert!(!ep.has_token);
    assert_eq!(lookup(&service, &account), None);
    match say_hi(&console, "ccluster").await {
        Err(Error::Call {
            error,
            call_id: Some(_),
            ..
        }) => assert_eq!(error.kind, ErrorKind::Auth),
        other => panic!("expected an auth error, got {other:?}"),
    }

    // Replacing it, then deleting the endpoint, removes it from the keyring too.
    console
        .set_token(ep.id, Some(SecretString::new(CANARY)))
        .await
        .unwrap();
    assert!(!say_hi(&console, "ccluster").await.unwrap().is_empty());
    console.remove_endpoint("ccluster").await.unwrap();
    assert_eq!(lookup(&service, &account), None);

    let outcomes: Vec<_> = console
        .calls(10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.call.outcome.as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "error", "ok", "ok"],
        "every call is logged, newest first"
    );
    if common::on_postgres() {
        assert_eq!(
            common::pg_tables_containing(&console, CANARY).await,
            Vec::<String>::new(),
            "the token reached a table of the workspace"
        );
    }

    console.store().close().await;
    assert_eq!(
        files_containing(dir.path(), CANARY.as_bytes()),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn two_databases_never_share_a_token() {
    require_session_bus();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = common::open(&a.path().join("milc.db")).await.unwrap();
    let cb = common::open(&b.path().join("milc.db")).await.unwrap();
    let spec = EndpointSpec::new("x", "http://127.0.0.1:9/v1", "m");
    let ea = ca
        .add_endpoint(spec.clone(), Some(SecretString::new("token-a")))
        .await
        .unwrap();
    let eb = cb
        .add_endpoint(spec, Some(SecretString::new("token-b")))
        .await
        .unwrap();
    assert_eq!(ea.id, eb.id, "same endpoint id in both databases");
    assert_eq!(
        ca.secrets().get(ea.id).await.unwrap().unwrap().expose(),
        "token-a"
    );
    assert_eq!(
        cb.secrets().get(eb.id).await.unwrap().unwrap().expose(),
        "token-b"
    );
    ca.remove_endpoint("x").await.unwrap();
    cb.remove_endpoint("x").await.unwrap();
}
