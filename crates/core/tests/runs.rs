//! The run engine through `Console` on the built-in simulator: a run over a dataset, its summary
//! folded from the store, and pages of results filtered and sorted by the store.

#[allow(dead_code)]
mod common;

use milc_api::prompt::{NewVersion, PromptContent};
use milc_api::run::{ResultFilter, ResultSort, ResultsQuery, RunSpec, ScorerSpec};
use milc_api::{Message, Params, Role};
use milc_core::datasets::parse_jsonl;
use milc_core::{Console, SIMULATOR_ENDPOINT};
use tokio_util::sync::CancellationToken;

/// A console on a new database with prompt `qa` (one user message, `{{q}}`).
async fn console_with_prompt(params: Params) -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let c = common::open(&dir.path().join("milc.db")).await.unwrap();
    c.save_prompt(
        NewVersion {
            prompt: "qa".into(),
            description: None,
            content: PromptContent {
                messages: vec![Message::new(Role::User, "{{q}}")],
                params,
                ..PromptContent::default()
            },
            note: String::new(),
        },
        true,
    )
    .await
    .unwrap();
    (dir, c)
}

#[tokio::test]
async fn results_are_paged_sorted_and_filtered_by_the_store() {
    let (_dir, c) = console_with_prompt(Params {
        max_tokens: Some(12),
        ..Params::default()
    })
    .await;
    let lines: String = (0..30)
        .map(|i| {
            format!("{{\"q\": \"question {i}\", \"expected\": \"the answer of the model {i}\"}}\n")
        })
        .collect();
    let items = parse_jsonl("d.jsonl", &lines).unwrap();
    c.import_items("d", &items, "d.jsonl").await.unwrap();
    let run = c
        .create_run(RunSpec {
            prompt: "qa".into(),
            endpoint: SIMULATOR_ENDPOINT.into(),
            dataset: "d".into(),
            params: Params::default(),
            repeat: 2,
            concurrency: 4,
            scorers: vec![ScorerSpec {
                metric: "rouge1".into(),
                arg: None,
                threshold: Some(0.05),
            }],
            stem: false,
        })
        .await
        .unwrap();
    let progress = std::sync::Mutex::new(Vec::new());
    let summary = c
        .execute_run(
            run.id,
            &|p| progress.lock().unwrap().push(p.done),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(summary.items, 60, "30 items × 2 repetitions");
    let seen = progress.into_inner().unwrap();
    assert_eq!(seen.len(), 60, "one progress event per result");
    assert_eq!(*seen.iter().max().unwrap(), 60);

    let page = |q: ResultsQuery| {
        let c = &c;
        async move { c.run_results_page(run.id, &q).await.unwrap() }
    };
    let all = page(ResultsQuery::default()).await;
    assert_eq!(all.total, 60);
    let keys: Vec<(u64, u32)> = all.results.iter().map(|r| (r.item, r.rep)).collect();
    assert_eq!(keys[..3], [(0, 0), (0, 1), (1, 0)]);
    // Each result names its own call in the log, in the row and in the stored result alike.
    let links: Vec<(Option<i64>, Option<i64>, i64)> = milc_core::db::query_as(
        "SELECT r.call_id, CAST(json_extract(r.result_json, '$.call_id') AS BIGINT), c.source
         FROM run_results r LEFT JOIN calls c ON c.id = r.call_id WHERE r.run_id = ?",
    )
    .bind(run.id)
    .fetch_all(&mut c.store().read().await.unwrap())
    .await
    .unwrap();
    assert_eq!(links.len(), 60);
    assert!(
        links.iter().all(|l| l.0.is_some() && l.0 == l.1),
        "{links:?}"
    );
    let mut ids: Vec<i64> = links.iter().filter_map(|l| l.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60, "one call per result");
    let run_calls: i64 = milc_core::db::query_scalar("SELECT count(*) FROM calls WHERE source = ?")
        .bind(links[0].2)
        .fetch_one(&mut c.store().read().await.unwrap())
        .await
        .unwrap();
    assert_eq!(run_calls, 60);
    let by_score = page(ResultsQuery {
        sort: ResultSort::Score("rouge1".into()),
        descending: true,
        limit: 10,
        offset: 5,
        ..ResultsQuery::default()
    })
    .await;
    assert_eq!(by_score.results.len(), 10);
    let scores: Vec<f64> = by_score
        .results
        .iter()
        .map(|r| r.scores["rouge1"])
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let failed = page(ResultsQuery {
        filter: ResultFilter::Failed,
        ..ResultsQuery::default()
    })
    .await;
    assert!(failed.results.iter().all(|r| !r.passed));
    let passed = (summary.pass_rate * 60.0).round() as u64;
    assert_eq!(
        failed.total,
        60 - passed,
        "the page counts agree with the summary"
    );
    assert_eq!(
        page(ResultsQuery {
            filter: ResultFilter::Errors,
            ..ResultsQuery::default()
        })
        .await
        .total,
        0
    );
}

#[tokio::test]
async fn an_item_without_a_reference_is_noted_not_stored_as_a_broken_score() {
    let (_dir, c) = console_with_prompt(Params::default()).await;
    let items = parse_jsonl(
        "d.jsonl",
        "{\"q\": \"a\", \"expected\": \"x\"}\n{\"q\": \"b\"}\n",
    )
    .unwrap();
    c.import_items("d", &items, "d.jsonl").await.unwrap();
    let run = c
        .create_run(RunSpec {
            prompt: "qa".into(),
            endpoint: SIMULATOR_ENDPOINT.into(),
            dataset: "d".into(),
            params: Params::default(),
            repeat: 1,
            concurrency: 2,
            scorers: vec![ScorerSpec {
                metric: "similarity".into(),
                arg: Some(SIMULATOR_ENDPOINT.into()),
                threshold: Some(0.5),
            }],
            stem: false,
        })
        .await
        .unwrap();
    let s = c
        .execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.items, 2);
    let results = c
        .run_results_page(run.id, &milc_api::run::ResultsQuery::default())
        .await
        .unwrap()
        .results;
    assert!(results[0].scores["similarity"].is_finite());
    assert!(!results[1].scores.contains_key("similarity"));
    assert_eq!(
        results[1].notes["similarity"],
        "no reference to compare with"
    );
    assert!(!results[1].passed);
}

#[tokio::test]
async fn a_rate_limited_run_halves_its_concurrency_and_still_answers_every_item() {
    let (_dir, c) = console_with_prompt(Params {
        max_tokens: Some(8),
        ..Params::default()
    })
    .await;
    // Eight requests a second; the run starts sixteen at once.
    let sim = milc_sim::start(
        ([127, 0, 0, 1], 0).into(),
        milc_sim::SimConfig {
            latency_ms: 20,
            rate_limit: Some(milc_sim::parse_rate_window("8/1s").unwrap()),
            ..milc_sim::SimConfig::default()
        },
    )
    .await
    .unwrap();
    let mut spec = milc_api::EndpointSpec::new("limited", sim.base_url(), "milc-sim");
    spec.max_retries = 0;
    c.add_endpoint(spec, None).await.unwrap();
    let lines: String = (0..24)
        .map(|i| format!("{{\"q\": \"question {i}\", \"expected\": \"answer {i}\"}}\n"))
        .collect();
    let items = parse_jsonl("d.jsonl", &lines).unwrap();
    c.import_items("d", &items, "d.jsonl").await.unwrap();
    let run = c
        .create_run(RunSpec {
            prompt: "qa".into(),
            endpoint: "limited".into(),
            dataset: "d".into(),
            params: Params::default(),
            repeat: 1,
            concurrency: 16,
            scorers: vec![],
            stem: false,
        })
        .await
        .unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let summary = c
        .execute_run(
            run.id,
            &|p| seen.lock().unwrap().push(p.concurrency),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let seen = seen.into_inner().unwrap();
    assert!(seen.iter().all(|&n| n <= 16), "{seen:?}");
    assert!(
        seen.iter().any(|&n| n <= 8),
        "a 429 halves what runs at once: {seen:?}"
    );
    assert_eq!(summary.items, 24);
    assert_eq!(summary.errors, 0, "each rate-limited item is sent again");
    let limited = c
        .calls(500)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.call.error_kind == Some(milc_api::ErrorKind::RateLimit))
        .count();
    assert!(limited > 0, "the endpoint did answer 429");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_console_resuming_a_running_run_is_told_who_runs_it() {
    let (dir, a) = console_with_prompt(Params {
        max_tokens: Some(4),
        ..Params::default()
    })
    .await;
    // Ten items, one at a time, 100 ms each: about a second of running.
    let sim = milc_sim::start(
        ([127, 0, 0, 1], 0).into(),
        milc_sim::SimConfig {
            latency_ms: 100,
            ..milc_sim::SimConfig::default()
        },
    )
    .await
    .unwrap();
    a.add_endpoint(
        milc_api::EndpointSpec::new("slow", sim.base_url(), "milc-sim"),
        None,
    )
    .await
    .unwrap();
    let lines: String = (0..10)
        .map(|i| format!("{{\"q\": \"question {i}\", \"expected\": \"answer {i}\"}}\n"))
        .collect();
    let items = parse_jsonl("d.jsonl", &lines).unwrap();
    a.import_items("d", &items, "d.jsonl").await.unwrap();
    let run = a
        .create_run(RunSpec {
            prompt: "qa".into(),
            endpoint: "slow".into(),
            dataset: "d".into(),
            params: Params::default(),
            repeat: 1,
            concurrency: 1,
            scorers: vec![],
            stem: false,
        })
        .await
        .unwrap();
    // Another console on the same database file: another machine resuming the run.
    let b = common::open(&dir.path().join("milc.db")).await.unwrap();
    let a = std::sync::Arc::new(a);
    let first = {
        let a = a.clone();
        tokio::spawn(async move {
            a.execute_run(run.id, &|_| {}, &CancellationToken::new())
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let err = b
        .execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("run #{} is being run by", run.id)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("(pid {}, console ", std::process::id())),
        "{msg}"
    );
    assert_eq!(err.to_api().kind, milc_api::ErrorKind::Conflict);
    let summary = first.await.unwrap();
    assert_eq!((summary.items, summary.errors), (10, 0));
    // Once the first runner is done the run is free: resuming it has nothing left to send.
    let again = b
        .execute_run(run.id, &|_| {}, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.items, 10);
}
