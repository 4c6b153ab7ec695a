//! Compliance archives on a real SQLite file, with real calls to the simulator: what an archive
//! of an endpoint or a prompt holds, a verify that names the member whose bytes changed, an
//! endpoint token (a canary, in the real OS keyring) found in no member, and a purge that
//! removes the archived calls while the usage figures stay what they were.
//! Run inside scripts/with-keyring (scripts/test does).

#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use milc_api::gateway::Feedback;
use milc_api::lifecycle::{ArchiveReport, ArchiveScope};
use milc_api::prompt::{NewVersion, PromptContent, RedactMode, RedactionPolicy};
use milc_api::run::RunSpec;
use milc_api::usage::{Dim, UsageQuery};
use milc_api::{Call, CallSource, ChatRequest, EndpointSpec, Message, Outcome, Params, Role};
use milc_core::calllog::rollups::{hour_of, DAY_MS, HOUR_MS};
use milc_core::calllog::{CallDetail, GatewayTag};
use milc_core::db::now_ms;
use milc_core::{archive, Console, SecretString};
use milc_sim::SimConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const CANARY: &str = "CANARY_archive_token_3f9a1c7e";
const QUESTION: &str = "My invoice from March was charged twice. Please refund one of the two \
                        charges and write to jane.doe@example.com when it is done.";

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests need a Secret Service on a D-Bus session bus: run scripts/test"
    );
}

/// Every member of an archive, decompressed, in the order they are stored.
fn members(path: &Path) -> Vec<(String, Vec<u8>)> {
    let f = std::fs::File::open(path).unwrap();
    let mut tar = tar::Archive::new(zstd::Decoder::new(f).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// One member's JSON lines.
fn rows(path: &Path, member: &str) -> Vec<Value> {
    let (_, bytes) = members(path)
        .into_iter()
        .find(|(n, _)| n == member)
        .unwrap_or_else(|| panic!("no member {member}"));
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Rewrites the archive with `change` applied to one member's bytes, the manifest as it was.
fn tamper(path: &Path, member: &str, change: impl Fn(&mut Vec<u8>)) {
    let mut all = members(path);
    let (_, bytes) = all.iter_mut().find(|(n, _)| n == member).unwrap();
    change(bytes);
    let out = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(zstd::Encoder::new(out, 0).unwrap());
    for (name, bytes) in &all {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn rows_of(r: &ArchiveReport) -> BTreeMap<&str, u64> {
    r.manifest
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.rows))
        .collect()
}

async fn count(c: &Console, sql: &str) -> i64 {
    milc_core::db::query_scalar(sql)
        .fetch_one(&mut c.store().read().await.unwrap())
        .await
        .unwrap()
}

async fn create(
    c: &Console,
    scope: ArchiveScope,
    (since_ms, until_ms): (Option<i64>, Option<i64>),
    path: &Path,
) -> (ArchiveReport, Vec<(u64, u64)>) {
    let mut seen = Vec::new();
    let r = c
        .archive_create(
            &scope,
            since_ms,
            until_ms,
            path.to_str().unwrap(),
            &mut |done, total| seen.push((done, total)),
        )
        .await
        .unwrap();
    (r, seen)
}

fn call_at(endpoint: i64, at_ms: i64, source: CallSource) -> Call {
    Call {
        at_ms,
        endpoint_id: Some(endpoint),
        model: "milc-sim".into(),
        source,
        outcome: Outcome::Ok,
        http_status: Some(200),
        error_kind: None,
        latency_ms: 120,
        ttft_ms: Some(40),
        usage: None,
        cost: None,
        prompt: None,
        price_id: None,
    }
}

async fn chat(c: &Console, endpoint: &str, text: &str) {
    let req = ChatRequest::new(
        vec![Message::new(Role::User, text)],
        Params {
            max_tokens: Some(60),
            ..Params::default()
        },
    );
    c.chat(
        endpoint,
        &req,
        CallSource::Playground,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_archive_holds_what_it_touched_verifies_and_carries_no_token() {
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
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    let mut spec = EndpointSpec::new("sim", sim.base_url(), "milc-sim");
    spec.headers = [("x-team".to_owned(), "billing".to_owned())].into();
    spec.redaction = RedactionPolicy {
        mode: RedactMode::Logging,
        log_bodies: true,
        ..RedactionPolicy::default()
    };
    let sim_ep = c
        .add_endpoint(spec, Some(SecretString::new(CANARY)))
        .await
        .unwrap();
    let other = c
        .add_endpoint(
            EndpointSpec::new("other", "http://127.0.0.1:9/v1", "m"),
            None,
        )
        .await
        .unwrap();

    // A prompt with two versions and two label moves, a dataset, and a run on the endpoint.
    for (i, text) in ["Answer: {{q}}", "Answer in one sentence: {{q}}"]
        .into_iter()
        .enumerate()
    {
        c.save_prompt(
            NewVersion {
                prompt: "qa".into(),
                description: None,
                content: PromptContent {
                    messages: vec![Message::new(Role::User, text)],
                    ..PromptContent::default()
                },
                note: format!("v{}", i + 1),
            },
            i == 0,
        )
        .await
        .unwrap();
    }
    c.label_prompt("qa", 1, "production").await.unwrap();
    c.label_prompt("qa", 2, "production").await.unwrap();
    let items = milc_core::datasets::parse_jsonl(
        "d.jsonl",
        "{\"q\": \"What is a refund?\", \"expected\": \"Money back.\"}\n\
         {\"q\": \"What is an invoice?\", \"expected\": \"A bill.\"}\n",
    )
    .unwrap();
    c.import_items("d", &items, "d.jsonl").await.unwrap();
    let run = c
        .create_run(RunSpec {
            prompt: "qa:production".into(),
            endpoint: "sim".into(),
            dataset: "d".into(),
            params: Params::default(),
            repeat: 1,
            concurrency: 1,
            scorers: vec![],
            stem: false,
        })
        .await
        .unwrap();
    c.execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap();

    // Playground calls whose (redacted) bodies are kept, a gateway call with its tag and a
    // user's feedback, and a call on another endpoint that the archive must leave out.
    chat(&c, "sim", QUESTION).await;
    chat(&c, "sim", "Say hello.").await;
    c.call_log()
        .log_tagged(
            call_at(sim_ep.id, now_ms(), CallSource::Gateway),
            GatewayTag {
                public_id: "gw-call-1".into(),
                route_id: 7,
                arm: "main".into(),
                fallback_for: None,
                key_id: None,
                caller_hash: Some("5a1t3d".into()),
            },
            CallDetail::default(),
        )
        .await
        .unwrap();
    c.record_feedback(
        &Feedback {
            call_id: "gw-call-1".into(),
            score: 0.75,
            comment: Some("fine".into()),
        },
        None,
    )
    .await
    .unwrap();
    c.call_log()
        .log(&call_at(other.id, now_ms(), CallSource::Cli))
        .await
        .unwrap();

    let path = dir.path().join("sim.tar.zst");
    let (report, progress) = create(
        &c,
        ArchiveScope::Endpoint("sim".into()),
        (None, None),
        &path,
    )
    .await;
    assert_eq!(report.path, path.display().to_string());
    assert!(report.damaged.is_empty() && report.verified);

    // Progress only grows and ends at its total.
    assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0));
    let &(done, total) = progress.last().unwrap();
    assert_eq!(done, total);

    let n = rows_of(&report);
    assert_eq!(n.len(), archive::Member::ALL.len());
    let sim_calls = count(
        &c,
        &format!(
            "SELECT count(*) FROM calls WHERE endpoint_id = {}",
            sim_ep.id
        ),
    )
    .await as u64;
    assert_eq!(
        sim_calls,
        2 + 2 + 1,
        "two run items, two chats, one gateway call"
    );
    assert_eq!(report.manifest.calls, sim_calls);
    assert_eq!(n["calls.jsonl"], sim_calls, "not the other endpoint's call");
    assert_eq!(n["endpoints.jsonl"], 1);
    assert_eq!(n["prompts.jsonl"], 1);
    assert_eq!(n["prompt_versions.jsonl"], 2, "every version of the prompt");
    assert_eq!(n["prompt_label_moves.jsonl"], 2, "every label move");
    assert_eq!(n["prompt_labels.jsonl"], 1);
    assert_eq!(n["datasets.jsonl"], 1);
    assert_eq!(n["dataset_versions.jsonl"], 1);
    assert_eq!(n["dataset_items.jsonl"], 2);
    assert_eq!(n["runs.jsonl"], 1);
    assert_eq!(n["run_results.jsonl"], 2);
    assert_eq!(
        n["call_bodies.jsonl"], 4,
        "the run items' and the chats' bodies"
    );
    assert_eq!(n["gateway_calls.jsonl"], 1);
    assert_eq!(n["feedback.jsonl"], 1);
    assert_eq!(n["comparisons.jsonl"], 0);
    assert_eq!(report.manifest.scope, ArchiveScope::Endpoint("sim".into()));
    let applied = count(&c, "SELECT max(version) FROM _sqlx_migrations").await;
    assert_eq!(report.manifest.schema_version, applied);

    // Members read as a person would want: names, not codes; the endpoint's settings as set.
    let calls = rows(&path, "calls.jsonl");
    assert!(calls.iter().all(|r| r["endpoint"] == "sim"));
    assert!(calls.iter().any(|r| r["source"] == "gateway"));
    assert!(calls
        .iter()
        .any(|r| r["source"] == "run" && r["prompt"] == "qa"));
    assert!(calls
        .iter()
        .all(|r| r["model"] == "milc-sim" && r["outcome"] == "ok"));
    let eps = rows(&path, "endpoints.jsonl");
    assert_eq!(eps[0]["name"], "sim");
    assert_eq!(eps[0]["headers_json"]["x-team"], "billing");
    let moves = rows(&path, "prompt_label_moves.jsonl");
    assert_eq!(
        (
            moves[1]["from_version"].clone(),
            moves[1]["to_version"].clone()
        ),
        (1.into(), 2.into())
    );

    // The token is in no member (nor in the file as stored), and bodies are kept redacted.
    let all = members(&path);
    assert_eq!(all[0].0, archive::MANIFEST);
    assert_eq!(all[1].0, archive::MANIFEST_SHA256);
    for (name, bytes) in &all {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(CANARY), "{name} holds the token");
        assert!(
            !text.contains("jane.doe@example.com"),
            "{name} holds the address"
        );
    }
    assert!(!String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(CANARY));
    assert!(
        String::from_utf8_lossy(&all.iter().find(|m| m.0 == "call_bodies.jsonl").unwrap().1)
            .contains("[EMAIL_1]"),
        "the question's body is there, redacted"
    );

    // The manifest's own hash is its member's, in sha256sum's format.
    let sha_line = String::from_utf8(all[1].1.clone()).unwrap();
    assert_eq!(
        sha_line,
        format!("{}  manifest.json\n", report.manifest_sha256)
    );

    let verified = archive::verify(&path).unwrap();
    assert!(verified.damaged.is_empty(), "{:?}", verified.damaged);
    assert_eq!(verified.manifest, report.manifest);
    assert_eq!(verified.manifest_sha256, report.manifest_sha256);
    let shown = archive::manifest(&path).unwrap();
    assert_eq!(shown.manifest, report.manifest);
    assert!(!shown.verified);

    // One byte of one member changed: verify names it, and a purge deletes nothing.
    let pristine = std::fs::read(&path).unwrap();
    tamper(&path, "call_bodies.jsonl", |b| b[20] ^= 0x01);
    let damaged = archive::verify(&path).unwrap();
    assert_eq!(damaged.damaged, ["call_bodies.jsonl"]);
    let refused = c.archive_purge(path.to_str().unwrap()).await.unwrap_err();
    assert!(
        refused.to_string().contains("call_bodies.jsonl"),
        "{refused}"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM calls").await as u64,
        sim_calls + 1,
        "nothing deleted"
    );

    // The manifest changed (the archive would claim other hashes): named too.
    std::fs::write(&path, &pristine).unwrap();
    tamper(&path, archive::MANIFEST, |b| {
        let at = b.len() - 5;
        b[at] ^= 0x01;
    });
    let damaged = archive::verify(&path).unwrap();
    assert_eq!(damaged.damaged, [archive::MANIFEST]);

    // A member added that the manifest does not list.
    std::fs::write(&path, &pristine).unwrap();
    let mut all = members(&path);
    all.push(("extra.jsonl".into(), b"{}\n".to_vec()));
    let out = std::fs::File::create(&path).unwrap();
    let mut tar = tar::Builder::new(zstd::Encoder::new(out, 0).unwrap());
    for (name, bytes) in &all {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    assert_eq!(archive::verify(&path).unwrap().damaged, ["extra.jsonl"]);

    // Not an archive at all: a clear error naming the file.
    std::fs::write(&path, b"not an archive").unwrap();
    let e = archive::verify(&path).unwrap_err().to_string();
    assert!(
        e.contains("sim.tar.zst") && e.contains("not a readable archive"),
        "{e}"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_archive_of_the_sample_project_holds_every_version_run_comparison_and_vote() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    let sample = c.demo_load().await.unwrap();

    let path = dir.path().join("prompt.tar.zst");
    let scope = ArchiveScope::Prompt(sample.prompt.clone());
    let (report, _) = create(&c, scope.clone(), (None, None), &path).await;
    let n = rows_of(&report);
    let prompt_calls = count(
        &c,
        "SELECT count(*) FROM calls WHERE prompt_version_id IN (SELECT v.id FROM prompt_versions v
         JOIN prompts p ON p.id = v.prompt_id WHERE p.name = 'sample-ticket-summary')",
    )
    .await as u64;
    assert_eq!(prompt_calls, 100, "the two runs' calls");
    assert_eq!(report.manifest.calls, prompt_calls);
    assert_eq!(n["prompt_versions.jsonl"], 2);
    assert_eq!(n["prompt_labels.jsonl"], 2);
    assert_eq!(n["prompt_label_moves.jsonl"], 2);
    assert_eq!(n["runs.jsonl"], 2);
    assert_eq!(
        n["run_results.jsonl"],
        count(&c, "SELECT count(*) FROM run_results").await as u64
    );
    assert_eq!(n["comparisons.jsonl"], 1);
    assert_eq!(n["comparison_variants.jsonl"], 2);
    assert_eq!(
        n["votes.jsonl"],
        count(&c, "SELECT count(*) FROM votes").await as u64
    );
    assert!(n["votes.jsonl"] > 0);
    assert_eq!(n["dataset_items.jsonl"], 50);
    assert_eq!(
        n["endpoints.jsonl"], 1,
        "the sample endpoint its calls went to"
    );
    let runs = rows(&path, "runs.jsonl");
    assert_eq!(runs[0]["prompt"], sample.prompt.as_str());
    assert!(runs[0]["spec_json"].is_object(), "JSON columns as JSON");
    let votes = rows(&path, "votes.jsonl");
    assert!(votes.iter().any(|v| v["source"] == "judge"));

    // --since and --until bound the calls, the runs and the comparison by when they were made
    // (the sample's week of calls is back-dated; its runs and comparison are from just now).
    let cut = now_ms() - 2 * DAY_MS;
    let scope = ArchiveScope::Endpoint(sample.endpoint.clone());
    let on_endpoint = "SELECT count(*) FROM calls WHERE endpoint_id = (SELECT id FROM endpoints
                       WHERE name = 'Sample endpoint (simulated)')";
    let recent = dir.path().join("recent.tar.zst");
    let (report, _) = create(&c, scope.clone(), (Some(cut), None), &recent).await;
    let n = rows_of(&report);
    let recent_calls = count(&c, &format!("{on_endpoint} AND at_ms >= {cut}")).await as u64;
    assert!(recent_calls > 100, "{recent_calls}");
    assert_eq!(report.manifest.calls, recent_calls);
    assert_eq!(report.manifest.since_ms, Some(cut));
    assert!(rows(&recent, "calls.jsonl")
        .iter()
        .all(|r| r["at_ms"].as_i64().unwrap() >= cut));
    assert_eq!((n["runs.jsonl"], n["comparisons.jsonl"]), (2, 1));

    let older = dir.path().join("older.tar.zst");
    let (report, _) = create(&c, scope, (None, Some(cut)), &older).await;
    let n = rows_of(&report);
    let older_calls = count(&c, &format!("{on_endpoint} AND at_ms < {cut}")).await as u64;
    assert!(older_calls > 100, "{older_calls}");
    assert_eq!(report.manifest.calls, older_calls);
    assert_eq!((n["runs.jsonl"], n["comparisons.jsonl"]), (0, 0));
    assert_eq!(
        n["prompts.jsonl"], 0,
        "no call of the older week named a prompt version"
    );
    assert_eq!(n["endpoints.jsonl"], 1);

    // Naming something that is not there: a clear error and no file.
    let missing = dir.path().join("missing.tar.zst");
    let e = c
        .archive_create(
            &ArchiveScope::Usecase("nope".into()),
            None,
            None,
            missing.to_str().unwrap(),
            &mut |_, _| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("missing")
            })
            .count(),
        0,
        "nothing half-written"
    );
    c.close().await;
}

fn usage_query() -> UsageQuery {
    let now = now_ms();
    UsageQuery {
        since_ms: hour_of(now - 10 * DAY_MS),
        until_ms: hour_of(now) + HOUR_MS,
        group_by: vec![Dim::Day, Dim::Endpoint, Dim::Prompt, Dim::Source],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_deletes_the_archived_calls_keeps_the_usage_figures_and_a_stale_archive_deletes_nothing_else(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("milc.db");
    let c = common::open(&db).await.unwrap();
    // A call on another endpoint, logged first: it stays, below every archived id.
    let builtin = c.endpoint("Local simulator").await.unwrap();
    c.call_log()
        .log(&call_at(builtin.id, now_ms() - 9 * DAY_MS, CallSource::Cli))
        .await
        .unwrap();
    let sample = c.demo_load().await.unwrap();
    let before = c.usage(&usage_query()).await.unwrap();
    let all_calls = count(&c, "SELECT count(*) FROM calls").await as u64;
    assert_eq!(before.totals.calls, all_calls);
    assert!(all_calls > 100);

    let path = dir.path().join("sample.tar.zst");
    let (report, _) = create(
        &c,
        ArchiveScope::Endpoint(sample.endpoint.clone()),
        (None, None),
        &path,
    )
    .await;
    assert_eq!(report.manifest.calls, all_calls - 1);

    // Another database's purge refuses the archive.
    let elsewhere = common::open(&dir.path().join("other.db")).await.unwrap();
    let e = elsewhere
        .archive_purge(path.to_str().unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("another database"), "{e}");
    elsewhere.close().await;

    let purged = c.archive_purge(path.to_str().unwrap()).await.unwrap();
    assert_eq!(purged.calls, report.manifest.calls);
    assert_eq!(purged.skipped, 0);
    assert_eq!(
        count(&c, "SELECT count(*) FROM calls").await,
        1,
        "only the other call"
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM run_results WHERE call_id IS NOT NULL"
        )
        .await,
        0,
        "run results stay, without their calls"
    );
    assert!(count(&c, "SELECT count(*) FROM run_results").await > 0);
    // Usage charts and totals read the rollups: exactly as before.
    let after = c.usage(&usage_query()).await.unwrap();
    assert_eq!(after, before);

    // A new call may reuse a purged id (SQLite hands the highest ids out again; PostgreSQL's
    // identity never does) and is counted once, on top of what was there.
    chat(&c, &sample.endpoint, "Hello again.").await;
    let newest: i64 = count(&c, "SELECT max(id) FROM calls").await;
    assert_eq!(
        rows(&path, "calls.jsonl").iter().any(|r| r["id"] == newest),
        !common::on_postgres(),
        "id {newest} was an archived call's only on SQLite"
    );
    let later = c.usage(&usage_query()).await.unwrap();
    assert_eq!(later.totals.calls, before.totals.calls + 1);

    // The same archive again: its calls are gone, and the new call under a reused id is not
    // one of them.
    let again = c.archive_purge(path.to_str().unwrap()).await.unwrap();
    assert_eq!((again.calls, again.skipped), (0, report.manifest.calls));
    assert_eq!(count(&c, "SELECT count(*) FROM calls").await, 2);
    assert_eq!(c.usage(&usage_query()).await.unwrap(), later);
    c.close().await;
}

/// Use cases and load tests are written by their own domain; here their rows are put in as
/// migration 0014's tables hold them, around the sample project's runs and calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_case_archive_holds_its_card_its_candidates_calls_and_what_is_attached_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    let sample = c.demo_load().await.unwrap();
    let ep = c.endpoint(&sample.endpoint).await.unwrap().id;
    let v2 = count(
        &c,
        "SELECT v.id FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
         WHERE p.name = 'sample-ticket-summary' AND v.version = 2",
    )
    .await;
    let attached_run = sample.runs[0];
    let now = now_ms();
    for (sql, binds) in [
        (
            "INSERT INTO usecases (id, name, spec_json, created_ms, updated_ms)
             VALUES (1, 'triage', '{\"name\": \"triage\", \"owner\": \"ana\"}', ?, ?)",
            vec![now, now],
        ),
        (
            "INSERT INTO usecases (id, name, spec_json, created_ms, updated_ms)
             VALUES (2, 'unrelated', '{\"name\": \"unrelated\", \"owner\": \"ben\"}', ?, ?)",
            vec![now, now],
        ),
        (
            "INSERT INTO usecase_candidates (usecase_id, prompt_version_id, endpoint_id,
             params_json, chosen, created_ms) VALUES (1, ?, ?, '{}', TRUE, ?)",
            vec![v2, ep, now],
        ),
        (
            "INSERT INTO loadtests (id, endpoint_id, endpoint_name, prompt_version_id, spec_json,
             status, levels_json, created_ms, finished_ms)
             VALUES (1, ?, 'Sample endpoint (simulated)', ?, '{\"concurrency\": [1, 4]}',
                     'finished', '[{\"concurrency\": 1}]', ?, ?)",
            vec![ep, v2, now, now],
        ),
        (
            "INSERT INTO usecase_evidence (usecase_id, kind, ref_id, attached_ms)
             VALUES (1, 'run', ?, ?), (1, 'loadtest', 1, ?)",
            vec![attached_run, now, now],
        ),
    ] {
        let mut q = milc_core::db::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        q.execute(&mut c.store().read().await.unwrap())
            .await
            .unwrap();
    }
    // A load test's call on the candidate, logged as load tests log theirs.
    let mut lt = call_at(ep, now, CallSource::Loadtest);
    lt.prompt = Some(milc_api::prompt::PromptPin {
        prompt: sample.prompt.clone(),
        version: 2,
    });
    c.call_log().log(&lt).await.unwrap();

    let path = dir.path().join("triage.tar.zst");
    let (report, _) = create(
        &c,
        ArchiveScope::Usecase("triage".into()),
        (None, None),
        &path,
    )
    .await;
    let n = rows_of(&report);
    let expected_calls = count(
        &c,
        &format!(
            "SELECT count(*) FROM calls WHERE (prompt_version_id = {v2} AND endpoint_id = {ep})
             OR id IN (SELECT call_id FROM run_results WHERE run_id = {attached_run})"
        ),
    )
    .await as u64;
    assert_eq!(
        expected_calls,
        50 + 50 + 1,
        "the attached run's, the candidate's run's, the load test's"
    );
    assert_eq!(report.manifest.calls, expected_calls);
    assert_eq!(n["usecases.jsonl"], 1, "not the unrelated card");
    assert_eq!(n["usecase_candidates.jsonl"], 1);
    assert_eq!(n["usecase_evidence.jsonl"], 2);
    assert_eq!(n["loadtests.jsonl"], 1);
    assert_eq!(n["runs.jsonl"], 1, "the attached run only");
    assert_eq!(
        n["comparisons.jsonl"], 1,
        "the comparison the attached run answers"
    );
    assert_eq!(n["prompt_versions.jsonl"], 2);
    assert_eq!(n["endpoints.jsonl"], 1);
    assert!(rows(&path, "calls.jsonl")
        .iter()
        .any(|r| r["source"] == "loadtest"));
    let card = rows(&path, "usecases.jsonl");
    assert_eq!(card[0]["spec_json"]["owner"], "ana");
    let cand = rows(&path, "usecase_candidates.jsonl");
    assert_eq!(
        (
            cand[0]["prompt"].clone(),
            cand[0]["prompt_version"].clone(),
            cand[0]["endpoint"].clone()
        ),
        (
            sample.prompt.as_str().into(),
            2.into(),
            sample.endpoint.as_str().into()
        )
    );
    let lts = rows(&path, "loadtests.jsonl");
    assert_eq!(lts[0]["levels_json"][0]["concurrency"], 1);

    // The endpoint's archive takes in its load tests and the cards with a candidate on it.
    let path = dir.path().join("endpoint.tar.zst");
    let (report, _) = create(
        &c,
        ArchiveScope::Endpoint(sample.endpoint.clone()),
        (None, None),
        &path,
    )
    .await;
    let n = rows_of(&report);
    assert_eq!((n["loadtests.jsonl"], n["usecases.jsonl"]), (1, 1));
    assert!(archive::verify(&path).unwrap().damaged.is_empty());
    c.close().await;
}
