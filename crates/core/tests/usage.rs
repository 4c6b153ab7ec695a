//! Usage rollups, dated prices and alerts on a real SQLite file.

#[allow(dead_code)]
mod common;

use milc_api::prompt::PromptPin;
use milc_api::usage::{AlertKind, AlertSettings, Dim, UsageQuery};
use milc_api::{Call, CallSource, EndpointSpec, Outcome, Prices, Usage, UsageSource};
use milc_core::calllog::rollups::{DAY_MS, HOUR_MS};
use milc_core::db::now_ms;
use milc_core::Console;

fn prices(input: &str, cached: Option<&str>, output: &str) -> Prices {
    Prices {
        input: input.parse().unwrap(),
        cached_input: cached.map(|c| c.parse().unwrap()),
        output: output.parse().unwrap(),
    }
}

fn usage(p: u64, c: u64, out: u64, r: u64, source: UsageSource) -> Usage {
    Usage {
        prompt_tokens: p,
        cached_tokens: c,
        completion_tokens: out,
        reasoning_tokens: r,
        source,
    }
}

fn call(endpoint: i64, at_ms: i64, u: Option<Usage>, cost: i64, outcome: Outcome) -> Call {
    Call {
        at_ms,
        endpoint_id: Some(endpoint),
        model: "m".into(),
        source: CallSource::Playground,
        outcome,
        http_status: None,
        error_kind: None,
        latency_ms: 100,
        ttft_ms: None,
        usage: u,
        cost: u.map(|u| milc_api::Cost {
            pico_usd: cost,
            source: u.source,
        }),
        prompt: None,
        price_id: None,
    }
}

async fn store() -> (tempfile::TempDir, Console) {
    let dir = tempfile::tempdir().unwrap();
    let console = common::open(&dir.path().join("milc.db")).await.unwrap();
    (dir, console)
}

async fn endpoint(store: &Console, name: &str, p: Prices) -> i64 {
    let mut spec = EndpointSpec::new(name, "http://127.0.0.1:9/v1", "m");
    spec.prices = p;
    store.add_endpoint(spec, None).await.unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_a_rebuild_from_the_log_after_random_inserts_and_a_price_change() {
    let (_dir, store) = store().await;
    let a = endpoint(&store, "a", prices("0.5", Some("0.25"), "1.5")).await;
    let b = endpoint(&store, "b", prices("3", None, "15")).await;
    let start = 1_790_000_000_000i64;
    // Two thousand calls from 16 tasks at once, over three days, of every kind.
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let log = store.call_log().clone();
        tasks.push(tokio::spawn(async move {
            let mut x = t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for _ in 0..125 {
                let mut c = random_call(a, &mut x, start);
                if x % 3 == 0 {
                    c.endpoint_id = Some(b);
                }
                c.prompt = (x % 4 == 0).then(|| PromptPin {
                    prompt: "p".into(),
                    version: 1,
                });
                log.log(&c).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kept = store.call_log().rollups().await.unwrap();
    store
        .call_log()
        .rebuild_rollups(i64::MIN / 2)
        .await
        .unwrap();
    assert_eq!(
        kept,
        store.call_log().rollups().await.unwrap(),
        "rollups kept as written = rebuilt"
    );
    let total: i64 = kept.iter().filter(|r| !r.0).map(|r| r.5[0]).sum();
    let daily: i64 = kept.iter().filter(|r| r.0).map(|r| r.5[0]).sum();
    assert_eq!(daily, 2000, "the daily rollups count every call too");
    assert_eq!(total, 2000);

    // A corrected price for `a` from the second day on: later calls are re-costed with it, the
    // rollups follow, and the recomputation is logged.
    let from = start + DAY_MS;
    store
        .set_price("a", from, &prices("1", None, "2"))
        .await
        .unwrap();
    let r = store.recompute_costs(start, None, true).await.unwrap();
    assert!(
        r.calls_changed > 0 && r.calls_checked >= r.calls_changed,
        "{r:?}"
    );
    let kept = store.call_log().rollups().await.unwrap();
    store
        .call_log()
        .rebuild_rollups(i64::MIN / 2)
        .await
        .unwrap();
    assert_eq!(
        kept,
        store.call_log().rollups().await.unwrap(),
        "after the recomputation too"
    );
    let logged: i64 = milc_core::db::query_scalar("SELECT count(*) FROM recomputations")
        .fetch_one(&mut store.store().read().await.unwrap())
        .await
        .unwrap();
    assert_eq!(logged, 1);

    // Every call of `a` is now costed with the price in force when it was made.
    let rows: Vec<(i64, i64, i64, i64, i64, Option<i64>)> = milc_core::db::query_as(
        "SELECT at_ms, prompt_tokens, cached_tokens, completion_tokens, cost_pico_usd, price_id
         FROM calls WHERE endpoint_id = ? AND prompt_tokens IS NOT NULL",
    )
    .bind(a)
    .fetch_all(&mut store.store().read().await.unwrap())
    .await
    .unwrap();
    for (at, p, c, out, cost, price_id) in rows {
        let expect = if at >= from {
            assert!(price_id.is_some());
            p * 1_000_000 + out * 2_000_000
        } else {
            assert_eq!(price_id, None);
            (p - c) * 500_000 + c * 250_000 + out * 1_500_000
        };
        assert_eq!(cost, expect, "call at {at}");
    }
    // The report's totals are the log's.
    let report = store
        .usage(&UsageQuery {
            since_ms: start - DAY_MS,
            until_ms: start + 4 * DAY_MS,
            group_by: vec![Dim::Day, Dim::Endpoint],
        })
        .await
        .unwrap();
    let (calls, cost): (i64, i64) = milc_core::db::query_as(
        "SELECT count(*), CAST(coalesce(sum(cost_pico_usd), 0) AS BIGINT) FROM calls",
    )
    .fetch_one(&mut store.store().read().await.unwrap())
    .await
    .unwrap();
    assert_eq!(report.totals.calls as i64, calls);
    assert_eq!(report.totals.cost.pico_usd, cost);
    assert_eq!(
        report.totals.cost.source,
        UsageSource::Estimated,
        "some usage was estimated"
    );
    assert_eq!(
        report.rows.iter().map(|r| r.calls).sum::<u64>(),
        calls as u64
    );
    assert!(
        report.rows.len() >= 6 && report.rows.len() <= 8,
        "3-4 days × 2 endpoints"
    );
}

#[tokio::test]
async fn known_price_failures_elsewhere_are_right_here() {
    let (_dir, store) = store().await;
    // Cached tokens at the cached rate, reasoning tokens not added again.
    let p = prices("2", Some("0.5"), "8");
    let u = usage(1000, 400, 300, 200, UsageSource::Reported);
    assert_eq!(
        p.cost(&u).pico_usd,
        600 * 2_000_000 + 400 * 500_000 + 300 * 8_000_000
    );
    // A custom dated price takes precedence over the endpoint's own, and a $0 price is $0.
    let e = endpoint(&store, "e", prices("1", None, "1")).await;
    let at = now_ms() - HOUR_MS;
    store
        .call_log()
        .log(&call(e, at, Some(u), 1_300_000_000, Outcome::Ok))
        .await
        .unwrap();
    store
        .set_price("e", at - 1000, &prices("0", Some("0"), "0"))
        .await
        .unwrap();
    let r = store
        .recompute_costs(at - DAY_MS, None, true)
        .await
        .unwrap();
    assert_eq!((r.calls_changed, r.after.pico_usd), (1, 0));
    let cost: i64 = milc_core::db::query_scalar("SELECT cost_pico_usd FROM calls")
        .fetch_one(&mut store.store().read().await.unwrap())
        .await
        .unwrap();
    assert_eq!(cost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cost_spike_and_a_crossed_budget_each_fire_once_per_episode() {
    let (_dir, store) = store().await;
    let e = endpoint(&store, "prod", prices("1", None, "1")).await;
    store
        .set_alert_settings(&AlertSettings {
            spike_factor: 2.0,
            error_rate: 0.5,
            min_calls: 5,
        })
        .await
        .unwrap();
    let now = now_ms();
    let u = usage(500, 0, 500, 0, UsageSource::Reported);
    // A week of normal cost: $1 per 1M tokens.
    for d in 1..7 {
        for k in 0..5 {
            store
                .call_log()
                .log(&call(
                    e,
                    now - d * DAY_MS - k * HOUR_MS,
                    Some(u),
                    1_000 * 1_000_000,
                    Outcome::Ok,
                ))
                .await
                .unwrap();
        }
    }
    store.flush_alerts().await;
    assert!(
        store.alerts(10).await.unwrap().is_empty(),
        "nothing unusual yet"
    );
    // The spike: five times the cost per token, ten calls.
    for _ in 0..10 {
        store
            .call_log()
            .log(&call(e, now, Some(u), 5_000 * 1_000_000, Outcome::Ok))
            .await
            .unwrap();
    }
    store.flush_alerts().await;
    let alerts = store.alerts(10).await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::CostSpike);
    assert_eq!(alerts[0].endpoint.as_deref(), Some("prod"));
    assert!(
        alerts[0].message.contains("per 1K tokens"),
        "{}",
        alerts[0].message
    );
    // The spike goes on: still one alert.
    let mut fired = store.subscribe_alerts();
    for _ in 0..10 {
        store
            .call_log()
            .log(&call(e, now, Some(u), 5_000 * 1_000_000, Outcome::Ok))
            .await
            .unwrap();
    }
    store.flush_alerts().await;
    assert_eq!(store.alerts(10).await.unwrap().len(), 1);
    assert!(fired.try_recv().is_err(), "no second notification");

    // A daily budget of $0.10 for this endpoint, crossed by what was spent today: one alert,
    // however many calls follow.
    store
        .set_budget(Some("prod"), Some("0.10"), None)
        .await
        .unwrap();
    store.flush_alerts().await;
    for _ in 0..5 {
        store
            .call_log()
            .log(&call(e, now, Some(u), 5_000 * 1_000_000, Outcome::Ok))
            .await
            .unwrap();
        store.flush_alerts().await;
    }
    let alerts = store.alerts(10).await.unwrap();
    let budget: Vec<_> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::BudgetDaily)
        .collect();
    assert_eq!(budget.len(), 1, "{alerts:?}");
    assert!(
        budget[0].message.contains("over the daily budget of $0.10"),
        "{}",
        budget[0].message
    );
    let got = fired.try_recv().unwrap();
    assert_eq!(got.kind, AlertKind::BudgetDaily, "notified once");
    store.ack_alert(budget[0].id).await.unwrap();
    assert!(store
        .alerts(10)
        .await
        .unwrap()
        .iter()
        .any(|a| a.acked_ms.is_some()));

    // The budget changed in the middle of the day: a limit not reached yet is quiet, a new
    // limit that is crossed alerts again, once.
    let daily = |alerts: &[milc_api::usage::Alert]| {
        alerts
            .iter()
            .filter(|a| a.kind == AlertKind::BudgetDaily)
            .count()
    };
    store
        .set_budget(Some("prod"), Some("1000"), None)
        .await
        .unwrap();
    store.flush_alerts().await;
    assert_eq!(daily(&store.alerts(10).await.unwrap()), 1);
    store
        .set_budget(Some("prod"), Some("0.11"), None)
        .await
        .unwrap();
    for _ in 0..5 {
        store
            .call_log()
            .log(&call(e, now, Some(u), 5_000 * 1_000_000, Outcome::Ok))
            .await
            .unwrap();
        store.flush_alerts().await;
    }
    let alerts = store.alerts(10).await.unwrap();
    assert_eq!(daily(&alerts), 2, "{alerts:?}");
    assert!(
        alerts[0].message.contains("daily budget of $0.11"),
        "{}",
        alerts[0].message
    );

    // Deleting the endpoint takes its budget away and closes its open alerts.
    store.remove_endpoint("prod").await.unwrap();
    assert!(store
        .budgets()
        .await
        .unwrap()
        .iter()
        .all(|b| b.endpoint.as_deref() != Some("prod")));
    let open: Vec<_> = store
        .alerts(20)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.resolved_ms.is_none())
        .collect();
    assert!(open.is_empty(), "{open:?}");
}

#[tokio::test]
async fn two_processes_cannot_open_the_same_alert_twice() {
    use milc_api::usage::Reading;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    // Two consoles on one file: two processes, each with its own connections.
    let (a, b) = (
        common::open(&path).await.unwrap(),
        common::open(&path).await.unwrap(),
    );
    let open = |console: &Console| {
        let store = console.store().clone();
        async move {
            milc_core::calllog::storage::insert_alert(
                &mut store.read().await.unwrap(),
                "error_rate:0",
                AlertKind::ErrorRate,
                0,
                "errors",
                (Reading::Rate(0.5), Reading::Rate(0.1)),
                1,
            )
            .await
            .unwrap()
        }
    };
    let (first, second) = tokio::join!(open(&a), open(&b));
    assert_eq!(
        [first, second].iter().filter(|x| x.is_some()).count(),
        1,
        "one episode, opened once: {first:?} {second:?}"
    );
    assert_eq!(a.alerts(10).await.unwrap().len(), 1);
}

// ---- the rollups' marker: calls commit first, their rollup follows -----------------------------

/// A call of every kind from a xorshift state: endpoint `ep`, within three days of `start`.
fn random_call(ep: i64, x: &mut u64, start: i64) -> Call {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    let x = *x;
    let outcome = if x.is_multiple_of(11) {
        Outcome::Error
    } else {
        Outcome::Ok
    };
    let u = (outcome == Outcome::Ok).then(|| {
        usage(
            100 + x % 900,
            x % 50,
            10 + x % 300,
            x % 7,
            if x.is_multiple_of(5) {
                UsageSource::Estimated
            } else {
                UsageSource::Reported
            },
        )
    });
    let mut c = call(
        ep,
        start + (x % (3 * DAY_MS as u64)) as i64,
        u,
        (x % 100_000_007) as i64,
        outcome,
    );
    c.latency_ms = 1 + x % 5000;
    c.source = [CallSource::Cli, CallSource::Playground, CallSource::Run][(x % 3) as usize];
    c
}

/// `n` random calls logged from `tasks` tasks at once, each waiting for its commit.
async fn log_random(console: &Console, ep: i64, tasks: u64, n: u64, seed: u64) {
    let start = 1_790_000_000_000i64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = console.call_log().clone();
        handles.push(tokio::spawn(async move {
            let mut x = (seed * 1000 + t).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for _ in 0..n / tasks {
                log.log(&random_call(ep, &mut x, start)).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}

/// What the rollups must add up to, from the log itself: calls, errors, prompt, cached,
/// completion and reasoning tokens, cost in pUSD, calls with estimated usage.
async fn log_sums(console: &Console) -> [i64; 8] {
    let row: (i64, i64, i64, i64, i64, i64, i64, i64) = milc_core::db::query_as(
        "SELECT count(*), count(*) FILTER (WHERE outcome = ?),
             CAST(coalesce(sum(prompt_tokens), 0) AS BIGINT),
             CAST(coalesce(sum(cached_tokens), 0) AS BIGINT),
             CAST(coalesce(sum(completion_tokens), 0) AS BIGINT),
             CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT),
             CAST(coalesce(sum(cost_pico_usd), 0) AS BIGINT),
             count(*) FILTER (WHERE usage_reported = FALSE)
         FROM calls",
    )
    .bind(milc_core::db::outcome_code(Outcome::Error))
    .fetch_one(&mut console.store().read().await.unwrap())
    .await
    .unwrap();
    [row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7]
}

/// The same sums over the hourly and over the daily rollup rows, as they are on disk now.
async fn rollup_sums(console: &Console) -> [[i64; 8]; 2] {
    let mut out = [[0; 8]; 2];
    for (i, table) in ["usage_hourly", "usage_daily"].into_iter().enumerate() {
        let row: (i64, i64, i64, i64, i64, i64, i64, i64) = milc_core::db::query_as(&format!(
            "SELECT CAST(coalesce(sum(calls), 0) AS BIGINT),
                 CAST(coalesce(sum(errors), 0) AS BIGINT),
                 CAST(coalesce(sum(prompt_tokens), 0) AS BIGINT),
                 CAST(coalesce(sum(cached_tokens), 0) AS BIGINT),
                 CAST(coalesce(sum(completion_tokens), 0) AS BIGINT),
                 CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT),
                 CAST(coalesce(sum(cost_pico), 0) AS BIGINT),
                 CAST(coalesce(sum(estimated_calls), 0) AS BIGINT)
             FROM {table}"
        ))
        .fetch_one(&mut console.store().read().await.unwrap())
        .await
        .unwrap();
        out[i] = [row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7];
    }
    out
}

async fn marker(console: &Console) -> (i64, i64) {
    milc_core::db::query_as(
        "SELECT call_id, (SELECT coalesce(max(id), 0) FROM calls) FROM rollup_marker WHERE id = 1",
    )
    .fetch_one(&mut console.store().read().await.unwrap())
    .await
    .unwrap()
}

/// The rollups equal the log's sums exactly (hourly and daily rows, cost to the pUSD), the usage
/// report says so too, a rebuild from the log changes no row (histograms included), and the
/// marker is at the last call.
async fn assert_rollups_are_the_log(console: &Console, what: &str) {
    let kept = console.call_log().rollups().await.unwrap();
    let sums = log_sums(console).await;
    assert_eq!(rollup_sums(console).await, [sums, sums], "{what}");
    let report = console
        .usage(&UsageQuery {
            since_ms: 1_700_000_000_000,
            until_ms: 1_900_000_000_000,
            group_by: vec![Dim::Endpoint],
        })
        .await
        .unwrap();
    assert_eq!(
        (report.totals.calls as i64, report.totals.cost.pico_usd),
        (sums[0], sums[6]),
        "{what}: the report"
    );
    let (at, last) = marker(console).await;
    assert_eq!(at, last, "{what}: the marker is at the last call");
    console
        .call_log()
        .rebuild_rollups(i64::MIN / 2)
        .await
        .unwrap();
    assert_eq!(
        kept,
        console.call_log().rollups().await.unwrap(),
        "{what}: rolled up = rebuilt from the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_calls_commit_and_their_rollup_neither_loses_nor_double_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milc.db");
    let console = common::open(&path).await.unwrap();
    let e = endpoint(&console, "e", prices("0.5", Some("0.25"), "1.5")).await;
    log_random(&console, e, 4, 200, 1).await;
    assert_rollups_are_the_log(&console, "before the crash").await;

    // From here the process dies right after each commit: 600 calls are committed and their
    // callers answered, and none of them reaches the rollups.
    console.call_log().hold_rollups();
    log_random(&console, e, 8, 600, 2).await;
    let (at, last) = marker(&console).await;
    assert_eq!(last - at, 600, "600 calls above the marker");
    let sums = log_sums(&console).await;
    assert_eq!(sums[0], 800);
    assert_eq!(rollup_sums(&console).await[0][0], 200, "only the first 200");
    drop(console);

    // The next start folds them in: every sum exact.
    let console = common::open(&path).await.unwrap();
    assert_eq!(log_sums(&console).await, sums);
    assert_rollups_are_the_log(&console, "after the restart").await;
    let after = rollup_sums(&console).await;
    drop(console);

    // And only once: a second restart changes nothing, and new calls add up as usual.
    let console = common::open(&path).await.unwrap();
    assert_eq!(
        rollup_sums(&console).await,
        after,
        "the second start adds nothing"
    );
    log_random(&console, e, 4, 100, 3).await;
    assert_rollups_are_the_log(&console, "after more calls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_logging_at_once_on_one_file_roll_up_every_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milc.db");
    // Two processes' worth: each console has its own writer, connections and rollup cache.
    let a = common::open(&path).await.unwrap();
    let b = common::open(&path).await.unwrap();
    let ea = endpoint(&a, "a", prices("0.5", Some("0.25"), "1.5")).await;
    let eb = endpoint(&a, "b", prices("3", None, "15")).await;
    for round in 0..3u64 {
        tokio::join!(
            log_random(&a, ea, 8, 400, 10 + round),
            log_random(&b, eb, 8, 400, 20 + round),
            log_random(&b, ea, 4, 200, 30 + round),
        );
        // Each console sees its own calls at once, and the other's after its rollup.
        a.flush_alerts().await;
        b.flush_alerts().await;
        assert_eq!(log_sums(&a).await[0], 1000 * (round as i64 + 1));
        assert_rollups_are_the_log(&a, &format!("round {round}, read by a")).await;
        assert_rollups_are_the_log(&b, &format!("round {round}, read by b")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_logged_into_the_ids_of_deleted_calls_are_each_rolled_up_once() {
    if common::on_postgres() {
        // An identity column never hands an id out twice: the hazard is SQLite's alone.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milc.db");
    let console = common::open(&path).await.unwrap();
    let e = endpoint(&console, "e", prices("1", None, "2")).await;
    log_random(&console, e, 4, 400, 1).await;
    assert_rollups_are_the_log(&console, "first calls").await;

    // Removing the newest calls the way the sample project's removal does (the rows and a
    // rebuild in one transaction): SQLite hands their ids out again, and the new calls count.
    let mut tx = console.store().write().await.unwrap();
    milc_core::db::query("DELETE FROM calls WHERE id > 300")
        .execute(&mut tx)
        .await
        .unwrap();
    console.call_log().rollups_rewritten();
    milc_core::calllog::storage::rebuild_in(&mut tx, i64::MIN / 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(marker(&console).await, (300, 300));
    log_random(&console, e, 4, 200, 2).await;
    assert_eq!(marker(&console).await.1, 500, "ids 301-500 given out again");
    assert_rollups_are_the_log(&console, "after a removal and new calls").await;

    // A bare DELETE of the newest calls (no rebuild): their facts stay in the rollups, but the
    // marker comes down with them, so the new calls that take their ids are each counted once.
    let gone = log_sums(&console).await;
    milc_core::db::query("DELETE FROM calls WHERE id > 420")
        .execute(&mut console.store().read().await.unwrap())
        .await
        .unwrap();
    assert_eq!(marker(&console).await, (420, 420), "the marker came down");
    let kept = log_sums(&console).await;
    log_random(&console, e, 4, 100, 3).await;
    console.flush_alerts().await;
    assert_eq!(marker(&console).await, (520, 520), "ids 421-520");
    let now = log_sums(&console).await;
    // What the rollups held (deleted calls included), plus exactly the new calls.
    let expect: [i64; 8] = std::array::from_fn(|i| gone[i] + (now[i] - kept[i]));
    assert_eq!(rollup_sums(&console).await, [expect, expect]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_recomputed_while_two_consoles_log_cost_and_count_every_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milc.db");
    let a = common::open(&path).await.unwrap();
    let b = common::open(&path).await.unwrap();
    let e = endpoint(&a, "e", prices("0.5", Some("0.25"), "1.5")).await;
    log_random(&a, e, 4, 200, 1).await;
    // A new price and a recomputation of every call from one console while both log more.
    let recompute = async {
        b.set_price("e", 1_700_000_000_000, &prices("2", None, "4"))
            .await
            .unwrap();
        b.recompute_costs(1_700_000_000_000, None, true)
            .await
            .unwrap()
    };
    let (r, (), ()) = tokio::join!(
        recompute,
        log_random(&a, e, 4, 400, 2),
        log_random(&b, e, 4, 400, 3)
    );
    assert!(r.calls_changed > 0, "{r:?}");
    a.flush_alerts().await;
    b.flush_alerts().await;
    assert_eq!(log_sums(&a).await[0], 1000);
    // No call counted twice or skipped in the rollups, whichever side of the recomputation it
    // was logged on.
    assert_rollups_are_the_log(&a, "after recomputing while logging").await;
    // The calls logged after the recomputation kept the cost they came with; recomputing again
    // reaches every call, and then nothing is left to change.
    b.recompute_costs(1_700_000_000_000, None, true)
        .await
        .unwrap();
    let again = b
        .recompute_costs(1_700_000_000_000, None, false)
        .await
        .unwrap();
    assert_eq!(
        again.calls_changed, 0,
        "every call costed at its price, once"
    );
    assert_rollups_are_the_log(&b, "after the second recomputation").await;
}
