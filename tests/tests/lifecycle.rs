//! The lifecycle gates from the command line, against `milc sim` processes: a requirements card
//! whose `usecases check` exit code follows the chosen candidate's evidence (unknown, pass,
//! fail), a load test attached to it, a scheduled evaluation run by `schedule run-due`, drift
//! shown for an endpoint, and a retired endpoint refused by the load test with its replacement
//! named; and writes recorded as whoever acts (`--as`, `MILC_AS`, else the OS user).

use std::path::Path;

use milc_e2e::{milc_ok, milc_run, tickets_project, SimProcess};
use serde_json::Value;

fn json(db: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&milc_ok(db, args)).unwrap()
}

fn code(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = milc_run(db, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usecases_check_gates_on_the_chosen_candidates_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    let fast = SimProcess::start(&[], "unused");
    let slow = SimProcess::start(&["--latency-ms", "150"], "unused");
    tickets_project(
        &db,
        dir.path(),
        6,
        &[("fast", &fast.url), ("slow", &slow.url)],
    );
    milc_ok(
        &db,
        &[
            "usecases",
            "add",
            "tickets",
            "--owner",
            "ana",
            "--p95-latency",
            "100ms",
            "--min-score",
            "rouge1>=0.01@tickets",
            "--rpm",
            "30",
        ],
    );
    // A bad SLO names its flag and stores nothing.
    let (c, _, err) = code(
        &db,
        &[
            "usecases",
            "add",
            "bad",
            "--owner",
            "x",
            "--min-score",
            "rouge1",
        ],
    );
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("SCORER>=MIN@DATASET"), "{err}");

    milc_ok(
        &db,
        &[
            "usecases",
            "candidate",
            "tickets",
            "--prompt",
            "qa@1",
            "--endpoint",
            "fast",
            "--choose",
        ],
    );
    let (c, out, _) = code(&db, &["usecases", "check", "tickets"]);
    assert_eq!(c, 4, "no evidence yet: unknown\n{out}");
    milc_ok(&db, &["usecases", "attach", "tickets", "--run", "1"]);
    let (c, out, _) = code(&db, &["usecases", "check", "tickets"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("run #1"), "{out}");

    // The slow endpoint chosen: its run fails the latency target.
    milc_ok(
        &db,
        &[
            "usecases",
            "candidate",
            "tickets",
            "--prompt",
            "qa@1",
            "--endpoint",
            "slow",
            "--choose",
        ],
    );
    milc_ok(&db, &["usecases", "attach", "tickets", "--run", "2"]);
    let (c, out, _) = code(&db, &["usecases", "check", "tickets"]);
    assert_eq!(c, 3, "{out}");
    let card = json(&db, &["usecases", "show", "tickets", "--json"]);
    let slow_latency = card["candidates"][1]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["slo"] == "p95 latency")
        .unwrap()
        .clone();
    assert_eq!(slow_latency["verdict"], "fail");
    assert_eq!(
        slow_latency["evidence"],
        serde_json::json!({"kind": "run", "id": 2})
    );

    // A load test at the card's traffic, attached to it.
    let lt = json(
        &db,
        &[
            "loadtest",
            "--endpoint",
            "fast",
            "--prompt",
            "qa@1",
            "--concurrency",
            "1,2",
            "--duration",
            "500ms",
            "--usecase",
            "tickets",
            "--json",
        ],
    );
    assert_eq!(lt["levels"].as_array().unwrap().len(), 2);
    assert!(lt["levels"][0]["requests"].as_u64().unwrap() > 0);
    assert!(lt["levels"][0]["cost_per_month"].is_object(), "{lt}");
    let card = json(&db, &["usecases", "show", "tickets", "--json"]);
    assert!(card["attached"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "loadtest"));
    let shown = milc_ok(&db, &["loadtest", "--show", &lt["id"].to_string()]);
    assert!(shown.contains("knee"), "{shown}");

    // A scheduled evaluation of the card, run once when due.
    milc_ok(
        &db,
        &[
            "schedule",
            "add",
            "nightly",
            "--usecase",
            "tickets",
            "--every",
            "1d",
        ],
    );
    let due = json(&db, &["schedule", "run-due", "--json"]);
    assert_eq!(due["runs"].as_array().unwrap().len(), 1, "{due}");
    assert_eq!(due["runs"][0]["run"]["items"], 6);
    let due = json(&db, &["schedule", "run-due", "--json"]);
    assert!(
        due["runs"].as_array().unwrap().is_empty(),
        "not due again today"
    );

    // Drift of an endpoint over the last day against the day before.
    let drift = json(
        &db,
        &[
            "drift",
            "show",
            "--endpoint",
            "fast",
            "--window",
            "1d",
            "--json",
        ],
    );
    let figures = drift["figures"].as_array().unwrap();
    assert!(
        figures.iter().any(|f| f["metric"] == "latency p50 (ms)"),
        "{drift}"
    );

    // Retired (forced: the card still names it), the endpoint is refused with its replacement.
    milc_ok(
        &db,
        &[
            "endpoints",
            "status",
            "slow",
            "deprecated",
            "--sunset",
            "2027-01-31",
            "--replacement",
            "fast",
        ],
    );
    let (c, _, err) = code(&db, &["endpoints", "status", "slow", "retired"]);
    assert_ne!(c, 0);
    assert!(err.contains("use case: tickets"), "{err}");
    milc_ok(&db, &["endpoints", "status", "slow", "retired", "--force"]);
    let (c, _, err) = code(
        &db,
        &[
            "loadtest",
            "--endpoint",
            "slow",
            "--concurrency",
            "1",
            "--duration",
            "200ms",
        ],
    );
    assert_ne!(c, 0);
    assert!(err.contains("retired") && err.contains("'fast'"), "{err}");
}

#[test]
fn writes_are_recorded_as_whoever_acts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    let prompt = dir.path().join("p.yaml");
    std::fs::write(&prompt, "messages:\n  - role: user\n    content: hi\n").unwrap();
    milc_ok(
        &db,
        &[
            "--as",
            "ana",
            "prompts",
            "create",
            "greet",
            "--file",
            prompt.to_str().unwrap(),
        ],
    );
    let out = milc_run(&db, &["prompts", "label", "greet", "1", "production"]);
    assert!(out.status.success());
    let with_env = std::process::Command::new(milc_e2e::milc_bin())
        .args(milc_e2e::db_args(&db))
        .args(["prompts", "label", "greet", "1", "staging"])
        .env("MILC_AS", "bob")
        .output()
        .unwrap();
    assert!(with_env.status.success());
    let d = json(&db, &["prompts", "show", "greet", "--history", "--json"]);
    assert_eq!(d["versions"][0]["author"], "ana");
    let moves = d["label_history"].as_array().unwrap();
    let by = |label: &str| moves.iter().find(|m| m["label"] == label).unwrap()["author"].clone();
    assert_eq!(by("staging"), "bob");
    assert_ne!(by("production"), "ana", "without --as: the OS user");
    let blank = milc_run(&db, &["--as", " ", "prompts", "list"]);
    assert!(!blank.status.success());
    assert!(String::from_utf8_lossy(&blank.stderr).contains("as: name who is acting"));
}
