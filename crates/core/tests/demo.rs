//! The sample project: it fills every domain, and removing it leaves every table as it was.

use milc_core::Console;

/// Rows per table, every table of the schema.
async fn counts(console: &Console) -> Vec<(String, i64)> {
    let mut c = console.store().read().await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{t}\""))
            .fetch_one(&mut *c)
            .await
            .unwrap();
        out.push((t, n));
    }
    out
}

#[tokio::test]
async fn the_sample_fills_every_page_and_remove_leaves_no_row_behind() {
    let dir = tempfile::tempdir().unwrap();
    let console = Console::open(&dir.path().join("m.db")).await.unwrap();
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
