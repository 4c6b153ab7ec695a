//! `milc workspace` against a real PostgreSQL cluster (`MILC_TEST_PG`, from scripts/with-postgres
//! in scripts/test): a workspace created, members granted their roles, listed, and a login told
//! which role it holds; every other command works on it; a SQLite path is refused with what to
//! give instead.

use milc_e2e::{milc_ok, milc_run};
use std::path::Path;

#[test]
fn a_workspace_is_created_and_its_members_get_their_roles() {
    let url = std::env::var("MILC_TEST_PG").expect(
        "MILC_TEST_PG names a PostgreSQL server: run under scripts/with-postgres (scripts/test does)",
    );
    let db = Path::new(&url);
    let name = format!("cli{}", std::process::id());
    let ana = format!("{name}_ana");
    milc_ok(db, &["workspace", "init", "--workspace", &name]);
    milc_ok(
        db,
        &["workspace", "grant", &ana, "rater", "--workspace", &name],
    );
    let members: serde_json::Value = serde_json::from_str(&milc_ok(
        db,
        &["workspace", "members", "--workspace", &name, "--json"],
    ))
    .unwrap();
    assert_eq!(members, serde_json::json!([{"user": ana, "role": "rater"}]));
    let as_ana = url.replacen("milc@", &format!("{ana}@"), 1);
    let me = milc_ok(
        Path::new(&as_ana),
        &["workspace", "whoami", "--workspace", &name],
    );
    assert!(me.starts_with(&format!("{ana}: rater")), "{me}");
    // What her role does not allow, the database refuses, and she is told so plainly.
    let denied = milc_run(
        Path::new(&as_ana),
        &[
            "--workspace",
            &name,
            "endpoints",
            "add",
            "hers",
            "--url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
        ],
    );
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("the workspace refused this change") && err.contains("Your role here"),
        "{err}"
    );

    let bad = milc_run(
        db,
        &["workspace", "grant", &ana, "owner", "--workspace", &name],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("viewer, rater, editor or admin"));
    // Who changed what is noted, with who did it (--as).
    milc_ok(
        db,
        &[
            "--workspace",
            &name,
            "--as",
            "lead",
            "endpoints",
            "add",
            "team-vllm",
            "--url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
        ],
    );
    let activity: serde_json::Value =
        serde_json::from_str(&milc_ok(db, &["--workspace", &name, "activity", "--json"])).unwrap();
    assert_eq!(activity[0]["author"], "lead", "{activity}");
    assert_eq!(activity[0]["action"], "endpoint.add");
    assert_eq!(activity[0]["subject"], "team-vllm");
    // Every other command works on the workspace: its endpoints are the team's.
    let endpoints = milc_ok(db, &["--workspace", &name, "endpoints", "list"]);
    assert!(endpoints.contains("Local simulator"), "{endpoints}");
    // A workspace nobody created is named, with who makes it and how.
    let missing = milc_run(db, &["--workspace", "nobody", "usage"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no workspace 'nobody'") && err.contains("workspace init"),
        "{err}"
    );
    let local = std::process::Command::new(milc_e2e::milc_bin())
        .args(["--db", "team.db", "workspace", "init"])
        .output()
        .unwrap();
    assert!(!local.status.success());
    assert!(String::from_utf8_lossy(&local.stderr).contains("--db postgres://"));
}
