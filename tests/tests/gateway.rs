//! `milc gateway` end to end, as a team runs it: a `milc sim` process that wants a token (kept in
//! the real keyring), routes from a TOML file, a key from `milc gateway keys create`, and the
//! official `openai` Python SDK (scripts/setup installs it from PyPI into a cached venv) as the
//! client. SIGTERM drains the gateway; every call is in the log; the token is nowhere.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use milc_e2e::{contains, files_containing, gateway_process, milc_bin, wait_output, SimProcess};

const CANARY: &str = "CANARY_gw_upstream_token_5f1e0c9a77";

fn python() -> PathBuf {
    std::env::var_os("MILC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/milc-console/venv/bin/python")
        })
}

fn milc(db: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(milc_bin())
        .args(milc_e2e::db_args(db))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = wait_output(child);
    assert!(
        out.status.success(),
        "milc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in [&out.stdout, &out.stderr] {
        assert!(
            !contains(s, CANARY.as_bytes()),
            "milc {args:?} printed the token"
        );
    }
    String::from_utf8(out.stdout).unwrap()
}

const ROUTES: &str = r#"
[[route]]
model = "support"
[[route.arm]]
name = "a"
endpoint = "sim"
weight = 1

[[route]]
model = "limited"
[[route.arm]]
name = "a"
endpoint = "limited"
weight = 1

[[route]]
model = "flaky"
[[route.arm]]
name = "a"
endpoint = "flaky"
weight = 1
"#;

#[test]
fn the_official_openai_sdk_works_unchanged_against_the_gateway() {
    let py = python();
    assert!(
        py.exists(),
        "{} is missing: scripts/setup installs the openai SDK into it",
        py.display()
    );
    let sim = SimProcess::start(&["--api-key-env", "SIM_KEY"], CANARY);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    let token = format!("{CANARY}\n");
    for (name, extra) in [
        ("sim", vec![]),
        (
            "limited",
            vec!["--header", "x-sim-fault=rate_limit", "--max-retries", "0"],
        ),
        (
            "flaky",
            vec!["--header", "x-sim-fault=rate_limit:1", "--max-retries", "2"],
        ),
    ] {
        let mut args = vec![
            "endpoints",
            "add",
            name,
            "--url",
            &sim.url,
            "--model",
            "milc-sim",
            "--token-stdin",
        ];
        args.extend(extra);
        milc(&db, &args, &token);
    }
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, ROUTES).unwrap();
    let key = milc(&db, &["gateway", "keys", "create", "ci"], "")
        .trim()
        .to_owned();
    assert!(key.starts_with("milc-"), "{key}");

    let (gw, url) = gateway_process(&db, &routes);

    let out = Command::new(&py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/gateway_sdk.py"))
        .env("MILC_GATEWAY_URL", &url)
        .env("MILC_GATEWAY_KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sdk_ok = out.status.success() && stdout.contains("all SDK checks passed");

    // SIGTERM: the gateway drains and flushes the log, and exits cleanly.
    milc_e2e::sigterm(&gw);
    let gw_out = wait_output(gw);
    assert!(sdk_ok, "the SDK checks failed:\n{stdout}\n{stderr}");
    assert!(
        gw_out.status.success(),
        "{}",
        String::from_utf8_lossy(&gw_out.stderr)
    );
    for s in [&gw_out.stdout, &gw_out.stderr, &out.stdout, &out.stderr] {
        assert!(
            !contains(s, CANARY.as_bytes()),
            "the upstream token reached a client or a log"
        );
    }

    let calls: serde_json::Value =
        serde_json::from_str(&milc(&db, &["calls", "--json", "--limit", "100"], "")).unwrap();
    let gateway_calls = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "gateway")
        .count();
    // A chat, two streams, an embedding, a passed-through 429 and a retried one (401 and 404
    // never reach an upstream): every one logged.
    assert_eq!(gateway_calls, 6, "{calls:#}");
    assert!(
        files_containing(dir.path(), CANARY.as_bytes()).is_empty(),
        "the token reached a file"
    );
}

const CANARY_ROUTES: &str = r#"
[[route]]
model = "support"
sticky = "user"
[[route.arm]]
name = "stable"
endpoint = "sim"
weight = 90
[[route.arm]]
name = "canary"
endpoint = "sim"
weight = 10
[route.canary]
baseline = "stable"
candidate = "canary"
on_fail = "rollback"
on_pass = "promote"
"#;

#[test]
fn routes_keys_and_canaries_are_managed_headless() {
    let sim = SimProcess::start(&[], "unused");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    milc(
        &db,
        &[
            "endpoints",
            "add",
            "sim",
            "--url",
            &sim.url,
            "--model",
            "milc-sim",
        ],
        "",
    );
    let file = dir.path().join("routes.toml");

    // A mistake in the file names the file and line, and nothing is written.
    std::fs::write(
        &file,
        CANARY_ROUTES.replace("weight = 10", "weight = \"ten\""),
    )
    .unwrap();
    let out = Command::new(milc_bin())
        .args(milc_e2e::db_args(&db))
        .args(["routes", "load"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes.toml:12:"), "{err}");
    assert_eq!(milc(&db, &["routes", "list", "--json"], ""), "[]\n");

    std::fs::write(&file, CANARY_ROUTES).unwrap();
    milc(&db, &["routes", "load", file.to_str().unwrap()], "");
    let listed = milc(&db, &["routes", "list"], "");
    assert!(
        listed.contains("90.0 %") && listed.contains("10.0 %"),
        "{listed}"
    );

    // The export reads back as the same routes.
    let exported = milc(&db, &["routes", "export"], "");
    std::fs::write(&file, &exported).unwrap();
    let again: serde_json::Value =
        serde_json::from_str(&milc(&db, &["routes", "load", file.to_str().unwrap()], "")).unwrap();
    assert_eq!(again["unchanged"][0], "support", "{again}");

    milc(
        &db,
        &["routes", "set-weight", "support", "canary", "20"],
        "",
    );
    let shown: serde_json::Value =
        serde_json::from_str(&milc(&db, &["routes", "show", "support", "--json"], "")).unwrap();
    assert_eq!(shown["arm"][1]["weight"], 20.0);
    assert_eq!(shown["canary_state"], "running");

    let status: serde_json::Value =
        serde_json::from_str(&milc(&db, &["canary", "status", "support", "--json"], "")).unwrap();
    assert_eq!(status["verdict"]["decision"], "continue");
    assert_eq!(status["arms"].as_array().unwrap().len(), 2);
    assert!(milc(&db, &["canary", "status", "support"], "").contains("verdict: continue"));

    let rolled = milc(
        &db,
        &["routes", "rollback", "support", "--reason", "bad answers"],
        "",
    );
    assert!(rolled.contains("rolled_back"), "{rolled}");
    let text = milc(&db, &["canary", "status", "support"], "");
    assert!(
        text.contains("rollback") && text.contains("bad answers"),
        "{text}"
    );

    // Keys: listed without the key, revoked by name.
    let key = milc(
        &db,
        &["gateway", "keys", "create", "svc", "--rate-per-min", "60"],
        "",
    );
    let keys = milc(&db, &["gateway", "keys", "list"], "");
    assert!(
        keys.contains("svc") && keys.contains("60") && !keys.contains(key.trim()),
        "{keys}"
    );
    milc(&db, &["gateway", "keys", "revoke", "svc"], "");
    assert!(milc(&db, &["gateway", "keys", "list"], "").contains("revoked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_gateway_follows_the_cli_within_two_seconds_and_survives_its_upstream_dying() {
    let steady = SimProcess::start(&[], "unused");
    let slow = SimProcess::start(&["--tokens-per-sec", "20"], "unused");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    milc(
        &db,
        &[
            "endpoints",
            "add",
            "steady",
            "--url",
            &steady.url,
            "--model",
            "milc-sim",
        ],
        "",
    );
    milc(
        &db,
        &[
            "endpoints",
            "add",
            "slow",
            "--url",
            &slow.url,
            "--model",
            "milc-sim",
            "--max-retries",
            "0",
        ],
        "",
    );
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmodel = \"support\"\n\
         [[route.arm]]\nname = \"a\"\nendpoint = \"steady\"\nweight = 1\n\
         [[route.arm]]\nname = \"b\"\nendpoint = \"steady\"\nweight = 0\n\
         [[route]]\nmodel = \"slow\"\n[[route.arm]]\nname = \"a\"\nendpoint = \"slow\"\nweight = 1\n",
    )
    .unwrap();
    let key = milc(&db, &["gateway", "keys", "create", "ci"], "")
        .trim()
        .to_owned();
    let (gw, url) = gateway_process(&db, &routes);
    let http = reqwest::Client::new();
    let send = |model: &str, stream: bool| {
        http.post(format!("{url}/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"model": "{model}", "stream": {stream}, "max_tokens": 200, "messages": [{{"role": "user", "content": "The nightly export fails with a timeout error since the upgrade on Tuesday and the finance team cannot close the month. We restarted the workers twice and the logs show the database connection dropping after ten minutes."}}]}}"#
            ))
            .send()
    };
    let arm = |r: &reqwest::Response| r.headers()["x-milc-arm"].to_str().unwrap().to_owned();
    assert_eq!(arm(&send("support", false).await.unwrap()), "a");

    // Another process moves the weights: the running gateway follows within 2 s.
    milc(&db, &["routes", "set-weight", "support", "b", "1"], "");
    milc(&db, &["routes", "set-weight", "support", "a", "0"], "");
    let moved = std::time::Instant::now();
    while arm(&send("support", false).await.unwrap()) != "b" {
        assert!(
            moved.elapsed() < std::time::Duration::from_secs(2),
            "the gateway never followed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The upstream process dies mid-stream: the client gets an error event and [DONE].
    let r = send("slow", true).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data:").count() < 4 {
        seen.push_str(&String::from_utf8_lossy(
            &futures_util::StreamExt::next(&mut body)
                .await
                .unwrap()
                .unwrap(),
        ));
    }
    drop(slow);
    while let Some(Ok(b)) = futures_util::StreamExt::next(&mut body).await {
        seen.push_str(&String::from_utf8_lossy(&b));
    }
    assert!(seen.contains("\"error\""), "{seen}");
    assert!(seen.trim_end().ends_with("data: [DONE]"), "{seen}");
    // …and a request to the dead upstream is a 502 in OpenAI's shape; the gateway still serves.
    let r = send("slow", false).await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("upstream_error"));
    assert_eq!(send("support", false).await.unwrap().status(), 200);

    milc_e2e::sigterm(&gw);
    let out = wait_output(gw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls: serde_json::Value =
        serde_json::from_str(&milc(&db, &["calls", "--json", "--limit", "100"], "")).unwrap();
    let cut = calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["outcome"] == "error" && c["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0
        })
        .expect("the cut stream is logged as an error with the tokens it sent");
    assert_eq!(cut["source"], "gateway");
}

#[tokio::test]
async fn a_headless_gateway_takes_upstream_tokens_from_the_environment_or_a_credentials_file() {
    let sim = SimProcess::start(&["--api-key-env", "SIM_KEY"], CANARY);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    // Two endpoints on an upstream that wants a token; neither has one in any keyring.
    for name in ["by-env", "by-file"] {
        milc(
            &db,
            &[
                "endpoints",
                "add",
                name,
                "--url",
                &sim.url,
                "--model",
                "milc-sim",
            ],
            "",
        );
    }
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmodel = \"env\"\n[[route.arm]]\nname = \"a\"\nendpoint = \"by-env\"\nweight = 1\n\
         [[route]]\nmodel = \"file\"\n[[route.arm]]\nname = \"a\"\nendpoint = \"by-file\"\nweight = 1\n",
    )
    .unwrap();
    let key = milc(&db, &["gateway", "keys", "create", "ci"], "")
        .trim()
        .to_owned();
    // systemd's LoadCredential= puts the file in $CREDENTIALS_DIRECTORY.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("upstream"), format!("{CANARY}\n")).unwrap();
    let gateway = |tokens: &[&str]| {
        let mut c = Command::new(milc_bin());
        c.args(milc_e2e::db_args(&db))
            .args(["gateway", "--listen", "127.0.0.1:0", "--config"])
            .arg(&routes)
            .env("UPSTREAM_TOKEN", CANARY)
            .env("CREDENTIALS_DIRECTORY", &creds)
            // A server: no desktop session, so no keyring to fall back on.
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stderr(Stdio::piped());
        for t in tokens {
            c.args(["--token", t]);
        }
        c
    };

    let missing = gateway(&["by-env=env:NO_SUCH_VARIABLE"]).output().unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("NO_SUCH_VARIABLE is not set"), "{err}");

    let (gw, url) = milc_e2e::serving(&mut gateway(&[
        "by-env=env:UPSTREAM_TOKEN",
        "by-file=file:upstream",
    ]));
    let http = reqwest::Client::new();
    for model in ["env", "file"] {
        let r = http
            .post(format!("{url}/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "model": model,
                    "messages": [{"role": "user", "content": "hi"}],
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "route {model}: {}",
            r.text().await.unwrap()
        );
    }
    milc_e2e::sigterm(&gw);
    let out = wait_output(gw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in [&out.stdout, &out.stderr] {
        assert!(
            !contains(s, CANARY.as_bytes()),
            "the token reached the gateway's output"
        );
    }
    assert_eq!(
        files_containing(dir.path(), CANARY.as_bytes()),
        vec![creds.join("upstream").display().to_string()],
        "the token is in its credentials file and nowhere else"
    );
}
