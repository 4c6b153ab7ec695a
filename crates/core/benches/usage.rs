//! Usage at scale for BENCHMARKS.md: one million calls logged through the group-commit writers
//! of three consoles at once (three gateways' worth: each its own writer and connections, on
//! one store; rollups kept as they are written), then every query the Usage page makes, timed;
//! then a full rollup rebuild and a recomputation. On the SQLite file, then, when MILC_TEST_PG
//! names a PostgreSQL server, on a team workspace there, in the same run:
//! `scripts/with-postgres cargo bench -p milc-core --bench usage` (`MILC_BENCH_CALLS` changes
//! the million, `MILC_BENCH_WRITERS` the three).

use std::sync::Arc;
use std::time::Instant;

use milc_api::prompt::{NewVersion, PromptContent, PromptPin};
use milc_api::usage::{Dim, UsageQuery};
use milc_api::{
    Call, CallSource, EndpointSpec, Message, Outcome, Prices, Role, Usage, UsageSource,
};
use milc_core::calllog::rollups::{day_of, hour_of, DAY_MS, HOUR_MS};
use milc_core::Console;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milc.db");
    let writers: usize = std::env::var("MILC_BENCH_WRITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut sqlite = Vec::new();
    for _ in 0..writers {
        sqlite.push(Console::open(&path).await.unwrap());
    }
    bench("sqlite", sqlite).await;
    let size = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(dir.path().join("milc.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!("sqlite: database {:.0} MB", size as f64 / 1e6);
    if let Ok(url) = std::env::var("MILC_TEST_PG") {
        let name = format!("bench{}", std::process::id());
        milc_core::workspace::Workspace::init(&url, &name)
            .await
            .unwrap();
        let mut pg = Vec::new();
        for _ in 0..writers {
            pg.push(Console::open_workspace(&url, &name).await.unwrap());
        }
        let size: i64 = milc_core::db::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut pg[0].store().read().await.unwrap())
            .await
            .unwrap();
        bench("postgres", pg).await;
        println!(
            "postgres: database {:.0} MB before the calls",
            size as f64 / 1e6
        );
    }
}

async fn bench(engine: &str, consoles: Vec<Console>) {
    let n: u64 = std::env::var("MILC_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let writers = consoles.len();
    let console = &consoles[0];
    let mut endpoints = Vec::new();
    for i in 0..5 {
        let mut spec = EndpointSpec::new(format!("ep{i}"), "http://127.0.0.1:9/v1", "m");
        spec.prices = Prices {
            input: "0.5".parse().unwrap(),
            cached_input: Some("0.25".parse().unwrap()),
            output: "1.5".parse().unwrap(),
        };
        let prices = spec.prices;
        endpoints.push((console.add_endpoint(spec, None).await.unwrap().id, prices));
    }
    for p in 0..3 {
        console
            .save_prompt(
                NewVersion {
                    prompt: format!("prompt{p}"),
                    description: None,
                    content: PromptContent {
                        messages: vec![Message::new(Role::User, "{{q}}".to_owned())],
                        params: Default::default(),
                        endpoint: None,
                        redaction: None,
                    },
                    note: String::new(),
                },
                true,
            )
            .await
            .unwrap();
    }
    let endpoints = Arc::new(endpoints);
    let now = milc_core::db::now_ms();
    let start_ms = now - 30 * DAY_MS;
    // Loggers at once: the writer commits whatever they have queued as one batch (up to 1,024).
    let tasks = 1024u64;
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = consoles[t as usize % writers].call_log().clone();
        let endpoints = endpoints.clone();
        handles.push(tokio::spawn(async move {
            let mut x = (t + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut i = t;
            while i < n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (ep, prices) = &endpoints[(x % 5) as usize];
                let failed = x % 40 == 0;
                let u = Usage {
                    prompt_tokens: 200 + x % 800,
                    cached_tokens: x % 100,
                    completion_tokens: 50 + x % 400,
                    reasoning_tokens: 0,
                    source: if x % 10 == 0 {
                        UsageSource::Estimated
                    } else {
                        UsageSource::Reported
                    },
                };
                let call = Call {
                    at_ms: start_ms + (i as i64 * 30 * DAY_MS) / n as i64,
                    endpoint_id: Some(*ep),
                    model: "m".into(),
                    source: [
                        CallSource::Playground,
                        CallSource::Run,
                        CallSource::Gateway,
                        CallSource::Cli,
                    ][(x >> 8) as usize % 4],
                    outcome: if failed { Outcome::Error } else { Outcome::Ok },
                    http_status: Some(if failed { 500 } else { 200 }),
                    error_kind: None,
                    latency_ms: 100 + x % 3000,
                    ttft_ms: Some(50 + x % 300),
                    usage: (!failed).then_some(u),
                    cost: (!failed).then(|| prices.cost(&u)),
                    prompt: (x % 4 != 0).then(|| PromptPin {
                        prompt: format!("prompt{}", x % 3),
                        version: 1,
                    }),
                    price_id: None,
                };
                store.log(&call).await.unwrap();
                i += tasks;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Until the last call is in the rollups too, not only committed.
    for c in &consoles {
        c.call_log().rolled_up().await;
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{engine}: logged {n} calls over 30 days from {tasks} tasks through {writers} writers in {took:.1} s → {:.0} calls/s (every call committed and rolled up)",
        n as f64 / took
    );
    for c in &consoles {
        c.flush_alerts().await;
    }
    let store = console.call_log().clone();
    let rollups = store.rollups().await.unwrap().len();
    println!("{engine}: {rollups} rollup rows");

    // The Usage page's windows: the last 24 hours by hour; 7 and 30 whole UTC days by day.
    let end = hour_of(now) + HOUR_MS;
    let tomorrow = day_of(now) + DAY_MS;
    let views: [(&str, i64, i64, Vec<Dim>); 9] = [
        (
            "24 h by hour × endpoint",
            end - DAY_MS,
            end,
            vec![Dim::Hour, Dim::Endpoint],
        ),
        ("24 h by hour", end - DAY_MS, end, vec![Dim::Hour]),
        (
            "24 h totals by endpoint",
            end - DAY_MS,
            end,
            vec![Dim::Endpoint],
        ),
        (
            "7 d by day × endpoint",
            tomorrow - 7 * DAY_MS,
            tomorrow,
            vec![Dim::Day, Dim::Endpoint],
        ),
        (
            "30 d by day × endpoint",
            tomorrow - 30 * DAY_MS,
            tomorrow,
            vec![Dim::Day, Dim::Endpoint],
        ),
        (
            "30 d by day × prompt",
            tomorrow - 30 * DAY_MS,
            tomorrow,
            vec![Dim::Day, Dim::Prompt],
        ),
        (
            "30 d by day × source",
            tomorrow - 30 * DAY_MS,
            tomorrow,
            vec![Dim::Day, Dim::Source],
        ),
        (
            "30 d by day",
            tomorrow - 30 * DAY_MS,
            tomorrow,
            vec![Dim::Day],
        ),
        (
            "30 d totals by endpoint",
            tomorrow - 30 * DAY_MS,
            tomorrow,
            vec![Dim::Endpoint],
        ),
    ];
    let mut worst = 0.0f64;
    for (label, since_ms, until_ms, group_by) in views {
        let q = UsageQuery {
            since_ms,
            until_ms,
            group_by,
        };
        let mut times = Vec::new();
        let mut calls = 0;
        for _ in 0..7 {
            let t = Instant::now();
            let r = console.usage(&q).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            calls = r.totals.calls;
        }
        times.sort_by(f64::total_cmp);
        worst = worst.max(times[6]);
        println!(
            "{engine}: query {label:<26} median {:.1} ms, slowest {:.1} ms ({calls} calls)",
            times[3], times[6]
        );
    }
    println!("{engine}: slowest chart query of all: {worst:.1} ms");
    // What `milc usage --since 30d --group-by day` asks: hour-aligned, so the edges are hourly.
    let q = UsageQuery {
        since_ms: end - 30 * DAY_MS,
        until_ms: end,
        group_by: vec![Dim::Day, Dim::Endpoint],
    };
    let t = Instant::now();
    console.usage(&q).await.unwrap();
    println!(
        "{engine}: query 30 d from an hour (CLI) by day × endpoint: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let t = Instant::now();
    store.rebuild_rollups(i64::MIN / 2).await.unwrap();
    println!(
        "{engine}: full rollup rebuild from the log: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let r = console
        .recompute_costs(end - 7 * DAY_MS, None, true)
        .await
        .unwrap();
    println!(
        "{engine}: recompute 7 days ({} calls checked, {} changed): {:.1} s",
        r.calls_checked,
        r.calls_changed,
        t.elapsed().as_secs_f64()
    );
}
