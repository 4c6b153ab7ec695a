//! The gateway's overhead: the same load sent straight to a `milc sim` process and through a
//! `milc gateway` process (logging on, one route, one arm) in front of it. Concurrency 64;
//! upstream latency 0 ms and 50 ms; JSON and streamed answers. Per case: requests/s each way
//! and their ratio, the latency each request saw (to its last byte) at p50 and p99 each way and
//! the difference (what the gateway adds), the gateway's CPU time per request (from
//! /proc/PID/stat) and its peak RSS (VmHWM). All three processes share this machine's cores.
//!
//! cargo build --release -p milc-cli && cargo bench -p milc-e2e --bench gateway
//! (MILC_BENCH_SECONDS=N per case, default 5)

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use milc_e2e::{gateway_process, milc_ok, SimProcess};

const CONCURRENCY: usize = 64;

struct Load {
    requests: usize,
    wall: Duration,
    latencies_us: Vec<u64>,
    errors: usize,
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn load(url: &str, key: Option<&str>, model: &str, stream: bool, seconds: u64) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let body = serde_json::json!({
        "model": model, "stream": stream, "max_tokens": 16,
        "messages": [{"role": "user", "content": "Summarize: the printer on floor 3 is on fire."}]
    })
    .to_string();
    let url = Arc::new(format!("{url}/chat/completions"));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, body, key) = (
            client.clone(),
            url.clone(),
            body.clone(),
            key.map(str::to_owned),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut rb = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(k) = &key {
                    rb = rb.bearer_auth(k);
                }
                match rb.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let wall = start.elapsed();
    all.sort_unstable();
    Load {
        requests: all.len(),
        wall,
        latencies_us: all,
        errors,
    }
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

fn main() {
    let seconds: u64 = std::env::var("MILC_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "{:<18} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "case",
        "direct/s",
        "gw/s",
        "ratio",
        "p50 dir",
        "p50 gw",
        "p50 +",
        "p99 dir",
        "p99 gw",
        "p99 +",
        "cpu/req",
        "rss MB"
    );
    for latency in [0u64, 50] {
        let lat = latency.to_string();
        let sim = SimProcess::start(&["--latency-ms", &lat], "unused");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("milc.db");
        milc_ok(
            &db,
            &[
                "endpoints",
                "add",
                "sim",
                "--url",
                &sim.url,
                "--model",
                "milc-sim",
            ],
        );
        let routes = dir.path().join("routes.toml");
        std::fs::write(
            &routes,
            "[[route]]\nmodel = \"bench\"\n[[route.arm]]\nname = \"a\"\nendpoint = \"sim\"\nweight = 1\n",
        )
        .unwrap();
        let key = milc_ok(&db, &["gateway", "keys", "create", "bench"])
            .trim()
            .to_owned();
        let (mut gw, gw_url) = gateway_process(&db, &routes);
        for stream in [false, true] {
            let case = format!("{latency} ms {}", if stream { "stream" } else { "json" });
            // Warm both paths (connections, caches), then measure.
            rt.block_on(load(&sim.url, None, "milc-sim", stream, 1));
            rt.block_on(load(&gw_url, Some(&key), "bench", stream, 1));
            let direct = rt.block_on(load(&sim.url, None, "milc-sim", stream, seconds));
            let before = cpu_ticks(gw.id());
            let through = rt.block_on(load(&gw_url, Some(&key), "bench", stream, seconds));
            let cpu_ms = (cpu_ticks(gw.id()) - before) as f64 * 10.0 / through.requests as f64;
            let rps = |l: &Load| l.requests as f64 / l.wall.as_secs_f64();
            let (d, g) = (&direct.latencies_us, &through.latencies_us);
            assert_eq!(direct.errors + through.errors, 0, "errors under load");
            println!(
                "{:<18} {:>9.0} {:>9.0} {:>6.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.3} {:>7.1}",
                case,
                rps(&direct),
                rps(&through),
                rps(&through) / rps(&direct),
                pct(d, 0.5),
                pct(g, 0.5),
                pct(g, 0.5) - pct(d, 0.5),
                pct(d, 0.99),
                pct(g, 0.99),
                pct(g, 0.99) - pct(d, 0.99),
                cpu_ms,
                peak_rss_mb(gw.id()),
            );
        }
        Command::new("kill")
            .arg("-TERM")
            .arg(gw.id().to_string())
            .status()
            .unwrap();
        let _ = gw.wait();
        let logged = milc_ok(&db, &["calls", "--json", "--limit", "1"]);
        assert!(logged.contains("gateway"), "the gateway logged its calls");
    }
    println!("(latencies in ms, to the last byte; cpu/req in ms of the gateway process)");
}
