//! The sample project: it fills every domain, and removing it leaves every table as it was.

#[allow(dead_code)]
mod common;

use milc_core::Console;

/// Rows per table, every table of the schema.
async fn counts(console: &Console) -> Vec<(String, i64)> {
    let mut c = console.store().read().await.unwrap();
    let tables: Vec<String> = milc_core::db::query_scalar(if common::on_postgres() {
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
         AND table_name <> '_sqlx_migrations' ORDER BY table_name"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         AND name <> '_sqlx_migrations' ORDER BY name"
    })
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = milc_core::db::query_scalar(&format!("SELECT count(*) FROM \"{t}\""))
            .fetch_one(&mut c)
            .await
            .unwrap();
        out.push((t, n));
    }
    out
}

#[tokio::test]
async fn the_sample_fills_every_page_and_remove_leaves_no_row_behind() {
    let dir = tempfile::tempdir().unwrap();
    let console = common::open(&dir.path().join("m.db")).await.unwrap();
    // Something of the user's own, which must survive.
    let req = milc_api::ChatRequest::new(
        vec![milc_api::Message::new(milc_api::Role::User, "hello")],
        milc_api::Params::default(),
    );
    console
        .chat(
            milc_core::SIMULATOR_ENDPOINT,
            &req,
            milc_api::CallSource::Cli,
            &mut |_| {},
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    // Its usage rollups follow the call's commit: wait for them before counting rows.
    console.flush_alerts().await;
    let before = counts(&console).await;

    let s = console.demo_load().await.unwrap();
    assert!(s.calls >= 2_000, "a week of usage: {}", s.calls);
    let runs = console.runs().await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r.status == milc_api::run::RunStatus::Finished));
    let p = console.prompt("sample-ticket-summary").await.unwrap();
    assert_eq!(p.versions.len(), 2);
    let cmp = console
        .comparison("sample-production-vs-candidate")
        .await
        .unwrap();
    assert!(
        cmp.variants.iter().all(|v| v.run_id.is_some()),
        "the comparison's answers are ready"
    );
    let alerts = console.alerts(10).await.unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == milc_api::usage::AlertKind::BudgetDaily),
        "{alerts:?}"
    );
    assert!(console.demo_load().await.is_err(), "loaded once");

    let loaded = counts(&console).await;
    for table in [
        "calls",
        "prompt_versions",
        "dataset_items",
        "run_results",
        "votes",
        "usage_hourly",
    ] {
        let (b, l) = (
            before.iter().find(|(t, _)| t == table).unwrap().1,
            loaded.iter().find(|(t, _)| t == table).unwrap().1,
        );
        assert!(l > b, "{table}: {b} → {l}");
    }

    console.demo_remove().await.unwrap();
    assert_eq!(counts(&console).await, before, "every table as it was");
    assert!(
        console.demo_remove().await.is_err(),
        "nothing left to remove"
    );
}

#[tokio::test]
async fn on_the_sample_tickets_the_candidate_beats_production_and_milc_sim_beats_small() {
    let dir = tempfile::tempdir().unwrap();
    let console = common::open(&dir.path().join("m.db")).await.unwrap();
    let s = console.demo_load().await.unwrap();

    // The candidate (one sentence) against production, item by item: better on ROUGE-L and BLEU,
    // with a paired interval that excludes zero.
    let cmp = console.compare_runs(s.runs[0], s.runs[1]).await.unwrap();
    for metric in ["rougeL", "bleu"] {
        let d = &cmp.deltas[metric];
        assert!(
            d.low > 0.0,
            "{metric}: candidate − production = {} [{}, {}]",
            d.mean,
            d.low,
            d.high
        );
    }

    // The same candidate on the good model and on the small one: the good one scores higher.
    let sim = milc_sim::start(([127, 0, 0, 1], 0).into(), milc_sim::SimConfig::default())
        .await
        .unwrap();
    for (name, model) in [("good", "milc-sim"), ("small", "milc-sim-small")] {
        console
            .add_endpoint(
                milc_api::EndpointSpec::new(name, sim.base_url(), model),
                None,
            )
            .await
            .unwrap();
    }
    let mut means = Vec::new();
    for endpoint in ["good", "small"] {
        let run = console
            .create_run(milc_api::run::RunSpec {
                prompt: "sample-ticket-summary:candidate".into(),
                endpoint: endpoint.into(),
                dataset: "sample-tickets".into(),
                params: Default::default(),
                repeat: 1,
                concurrency: 16,
                scorers: ["rougeL", "bleu"]
                    .map(|m| milc_api::run::ScorerSpec {
                        metric: m.into(),
                        arg: None,
                        threshold: None,
                    })
                    .to_vec(),
                stem: false,
            })
            .await
            .unwrap();
        let summary = console
            .execute_run(run.id, &|_| {}, &tokio_util::sync::CancellationToken::new())
            .await
            .unwrap();
        means.push((summary.scores["rougeL"].mean, summary.scores["bleu"].mean));
    }
    assert!(
        means[0].0 > means[1].0,
        "ROUGE-L: milc-sim {:?} vs small {:?}",
        means[0],
        means[1]
    );
    assert!(
        means[0].1 > means[1].1,
        "BLEU: milc-sim {:?} vs small {:?}",
        means[0],
        means[1]
    );
}
