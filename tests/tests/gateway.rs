//! `milc gateway` end to end, as a team runs it: a `milc sim` process that wants a token (kept in
//! the real keyring), routes from a TOML file, a key from `milc gateway keys create`, and the
//! official `openai` Python SDK (scripts/setup installs it from PyPI into a cached venv) as the
//! client. SIGTERM drains the gateway; every call is in the log; the token is nowhere.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use milc_e2e::{contains, files_containing, milc_bin, wait_output, SimProcess};

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
        .arg("--db")
        .arg(db)
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

    let mut gw = Command::new(milc_bin())
        .arg("--db")
        .arg(&db)
        .args(["gateway", "--listen", "127.0.0.1:0", "--config"])
        .arg(&routes)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(gw.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.rsplit(' ').next().unwrap().trim().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{line}"
    );

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
    Command::new("kill")
        .arg("-TERM")
        .arg(gw.id().to_string())
        .status()
        .unwrap();
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
