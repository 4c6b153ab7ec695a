//! `milc archive` end to end: an archive of the built-in simulator's calls created, shown and
//! verified from the command line, a changed member named with a failing exit code (and a purge
//! refused), then a purge that empties the call log while `milc usage` still counts the calls.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use milc_e2e::{milc_ok, milc_run};
use serde_json::Value;

fn milc(db: &Path, args: &[&str]) -> Output {
    milc_run(db, args)
}

fn json(db: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&milc_ok(db, args)).unwrap()
}

/// Rewrites the archive with one byte of `member` flipped (the manifest as it was).
fn flip_a_byte(from: &Path, to: &Path, member: &str) {
    let mut tar =
        tar::Archive::new(zstd::Decoder::new(std::fs::File::open(from).unwrap()).unwrap());
    let mut members = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if name == member {
            bytes[3] ^= 0x01;
        }
        members.push((name, bytes));
    }
    let mut out =
        tar::Builder::new(zstd::Encoder::new(std::fs::File::create(to).unwrap(), 0).unwrap());
    for (name, bytes) in &members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    out.into_inner().unwrap().finish().unwrap();
}

#[test]
fn an_archive_is_created_shown_verified_and_purged_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    milc_ok(&db, &["chat", "hello there"]);
    milc_ok(&db, &["chat", "tell me about lighthouses"]);

    let good = path("sim.tar.zst");
    let created = json(
        &db,
        &[
            "archive",
            "create",
            "--endpoint",
            "Local simulator",
            "--since",
            "2000-01-01",
            "--until",
            "2100-01-01T00:00:00Z",
            "--out",
            good.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(created["manifest"]["calls"], 2);
    assert!(good.exists());
    assert!(!path("sim.tar.zst.partial").exists());

    // show: the manifest, as JSON and as text; no database needed.
    let shown = json(&db, &["archive", "show", good.to_str().unwrap(), "--json"]);
    assert_eq!(shown["manifest"], created["manifest"]);
    assert_eq!(shown["manifest"]["scope"]["kind"], "endpoint");
    assert_eq!(shown["manifest"]["scope"]["name"], "Local simulator");
    let members = shown["manifest"]["members"].as_array().unwrap();
    let calls = members.iter().find(|m| m["name"] == "calls.jsonl").unwrap();
    assert_eq!(calls["rows"], 2);
    let text = milc_ok(&db, &["archive", "show", good.to_str().unwrap()]);
    assert!(
        text.contains("endpoint 'Local simulator'") && text.contains("calls.jsonl"),
        "{text}"
    );
    assert!(text.contains(created["manifest_sha256"].as_str().unwrap()));

    // verify: every hash recomputed.
    let out = milc(&db, &["archive", "verify", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("verify: OK"));

    // One byte of calls.jsonl changed: exit 1, the member named on stderr and in the JSON.
    let bad = path("changed.tar.zst");
    flip_a_byte(&good, &bad, "calls.jsonl");
    let out = milc(&db, &["archive", "verify", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("calls.jsonl"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["damaged"], serde_json::json!(["calls.jsonl"]));
    // The manifest changed: named too.
    let bad_manifest = path("manifest-changed.tar.zst");
    flip_a_byte(&good, &bad_manifest, "manifest.json");
    let out = milc(&db, &["archive", "verify", bad_manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest.json"));

    // A purge of the changed archive is refused and deletes nothing.
    let out = milc(&db, &["archive", "purge", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("calls.jsonl"));
    assert_eq!(json(&db, &["calls", "--json"]).as_array().unwrap().len(), 2);

    // The verified archive's purge empties the log; usage still counts both calls.
    let usage_before = json(&db, &["usage", "--json"]);
    let purged = json(&db, &["archive", "purge", good.to_str().unwrap(), "--json"]);
    assert_eq!(purged["calls"], 2);
    assert_eq!(json(&db, &["calls", "--json"]).as_array().unwrap().len(), 0);
    let usage_after = json(&db, &["usage", "--json"]);
    assert_eq!(usage_after["totals"], usage_before["totals"]);
    assert_eq!(usage_after["totals"]["calls"], 2);

    // Not an archive: a clear error naming the file.
    let junk = path("junk.tar.zst");
    std::fs::write(&junk, "not an archive").unwrap();
    let out = milc(&db, &["archive", "verify", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("junk.tar.zst") && stderr.contains("not a readable archive"),
        "{stderr}"
    );
}
