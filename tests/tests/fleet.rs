//! A fleet of gateways behind a real load balancer on one team workspace: PostgreSQL (a
//! throwaway cluster, `MILC_TEST_PG` from scripts/with-postgres), three `milc gateway`
//! processes on loopback ports and HAProxy (Debian's) in front of them. A bounded number of
//! requests goes through the balancer while one gateway is stopped with SIGTERM and another
//! killed with SIGKILL; then the call log, read straight from PostgreSQL with `psql`, is held
//! against what the clients were answered.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use milc_e2e::{gateway_process_on, milc_bin, wait_output, SimProcess};

/// Requests sent through the balancer, and how many clients send them at once.
const REQUESTS: usize = 1200;
const CLIENTS: usize = 8;
/// The SIGTERM goes after this many answers, the SIGKILL after this many.
const TERM_AT: usize = 300;
const KILL_AT: usize = 600;
/// What SIGKILL may cost: the calls answered within one commit interval before the kill. A
/// gateway logs each call as its answer goes out, and the call log's writer commits each batch
/// as soon as the previous one is in (milliseconds under this load); 250 ms is the interval
/// stated here, with room for a loaded machine. (The run lasts seconds: the simulator takes
/// 20 ms per answer.)
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);

fn server() -> String {
    std::env::var("MILC_TEST_PG").expect(
        "MILC_TEST_PG names a PostgreSQL server: run under scripts/with-postgres (scripts/test does)",
    )
}

fn milc(args: &[&str]) -> String {
    let out = Command::new(milc_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "milc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One value from the workspace's schema, read with PostgreSQL's own client.
fn psql(schema: &str, sql: &str) -> String {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin/psql"))
        .find(|p| p.exists())
        .expect("psql from Debian's postgresql package");
    let out = Command::new(bin)
        .args([&server(), "-X", "-At", "-c", sql])
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy in the foreground, round robin over the gateways, naming the one that answered
/// (`x-served-by`); a gateway that refuses or drops a connection has the request sent to
/// another.
fn haproxy(dir: &Path, gateways: &[(String, String)]) -> (Child, String) {
    let port = free_port();
    let servers: String = gateways
        .iter()
        .map(|(name, url)| {
            let addr = url
                .trim_start_matches("http://")
                .trim_end_matches("/v1")
                .to_owned();
            format!("    server {name} {addr}\n")
        })
        .collect();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n    maxconn 256\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n\
             \x20   timeout server 30s\n    retries 3\n    option redispatch 1\n\
             \x20   retry-on conn-failure empty-response\n\
             frontend gateways\n    bind 127.0.0.1:{port}\n    default_backend fleet\n\
             backend fleet\n    balance roundrobin\n\
             \x20   default-server check inter 100ms fall 1 rise 2\n\
             \x20   http-response set-header x-served-by %[srv_name]\n{servers}"
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy from Debian's package (scripts/setup installs it)");
    let url = format!("http://127.0.0.1:{port}/v1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, url)
}

/// An answered request: the call id the gateway gave, which gateway, and when.
struct Answer {
    call_id: String,
    served_by: String,
    at: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_behind_haproxy_logs_every_answer_through_sigterm_and_all_but_a_commit_interval_through_sigkill(
) {
    let dir = tempfile::tempdir().unwrap();
    let url = server();
    let name = format!("fleet{}", std::process::id());
    let schema = format!("milc_{name}");
    let ws = |args: &[&str]| {
        let mut all = vec!["--db", url.as_str(), "--workspace", name.as_str()];
        all.extend_from_slice(args);
        milc(&all)
    };
    ws(&["workspace", "init"]);
    let sim = SimProcess::start(&["--latency-ms", "20"], "");
    ws(&[
        "endpoints",
        "add",
        "sim",
        "--url",
        &sim.url,
        "--model",
        "milc-sim",
        "--price-in",
        "0.5",
        "--price-out",
        "1.5",
    ]);
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmodel = \"support\"\n[[route.arm]]\nname = \"a\"\nendpoint = \"sim\"\nweight = 1\n\
         [[route.arm]]\nname = \"b\"\nendpoint = \"sim\"\nweight = 0\n",
    )
    .unwrap();
    let key = ws(&["gateway", "keys", "create", "fleet"])
        .trim()
        .to_owned();

    // Three gateways on the workspace.
    let on: Vec<std::ffi::OsString> = ["--db", &url, "--workspace", &name]
        .iter()
        .map(Into::into)
        .collect();
    let mut gateways: Vec<(String, Child, String)> = (1..=3)
        .map(|i| {
            let (child, url) = gateway_process_on(&on, &routes);
            (format!("gw{i}"), child, url)
        })
        .collect();
    let (mut balancer, lb) = haproxy(
        dir.path(),
        &gateways
            .iter()
            .map(|(n, _, u)| (n.clone(), u.clone()))
            .collect::<Vec<_>>(),
    );

    // A weight moved from the CLI reaches every gateway of the fleet within 2 s.
    let http = reqwest::Client::new();
    let arm = |url: String| {
        let (http, key) = (http.clone(), key.clone());
        async move {
            let r = http
                .post(format!("{url}/chat/completions"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(r#"{"model": "support", "messages": [{"role": "user", "content": "hi"}]}"#)
                .send()
                .await
                .unwrap();
            r.headers()["x-milc-arm"].to_str().unwrap().to_owned()
        }
    };
    for (_, _, url) in &gateways {
        assert_eq!(arm(url.clone()).await, "a");
    }
    ws(&["routes", "set-weight", "support", "b", "1"]);
    ws(&["routes", "set-weight", "support", "a", "0"]);
    let moved = Instant::now();
    for (gw, _, url) in &gateways {
        while arm(url.clone()).await != "b" {
            assert!(
                moved.elapsed() < Duration::from_secs(2),
                "{gw} did not follow the new weights within 2 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "fleet: all three gateways followed the CLI's weights in {:?}",
        moved.elapsed()
    );
    // Those probes are logged calls too; wait until they are all in, and set them aside.
    std::thread::sleep(Duration::from_millis(300));
    let probes: HashSet<String> = psql(&schema, "SELECT public_id FROM gateway_calls")
        .lines()
        .map(str::to_owned)
        .collect();

    // The clients: REQUESTS in all, CLIENTS at a time, each answer kept.
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let failed = Arc::new(Mutex::new(0usize));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (answers, failed, next, http, lb, key) = (
            answers.clone(),
            failed.clone(),
            next.clone(),
            http.clone(),
            lb.clone(),
            key.clone(),
        );
        clients.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < REQUESTS {
                let r = http
                    .post(format!("{lb}/chat/completions"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(
                        serde_json::json!({
                            "model": "support",
                            "messages": [{"role": "user", "content": "Where is my parcel?"}],
                        })
                        .to_string(),
                    )
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) if r.status().is_success() => {
                        let h = |n: &str| {
                            r.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let (call_id, served_by) = (h("x-milc-call-id"), h("x-served-by"));
                        // The body too: an answer is only an answer once it has arrived.
                        let body = r.bytes().await;
                        match (call_id, served_by, body) {
                            (Some(call_id), Some(served_by), Ok(_)) => {
                                answers.lock().unwrap().push(Answer {
                                    call_id,
                                    served_by,
                                    at: Instant::now(),
                                });
                                true
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if !ok {
                    *failed.lock().unwrap() += 1;
                }
            }
        }));
    }

    // Mid-load: SIGTERM to gw1, then SIGKILL to gw2.
    let answered = || answers.lock().unwrap().len();
    while answered() < TERM_AT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    milc_e2e::sigterm(&gateways[0].1);
    while answered() < KILL_AT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateways[1].1.kill().unwrap();
    let killed_at = Instant::now();
    for c in clients {
        c.await.unwrap();
    }
    // The last gateway drains too; the first one has finished draining.
    milc_e2e::sigterm(&gateways[2].1);
    let _ = balancer.kill();
    let _ = balancer.wait();
    let mut exits = HashMap::new();
    for (gw, child, _) in gateways.drain(..) {
        exits.insert(gw, wait_output(child).status);
    }
    assert!(
        exits["gw1"].success(),
        "gw1 drains and exits cleanly after SIGTERM"
    );
    assert!(
        exits["gw3"].success(),
        "gw3 drains and exits cleanly after SIGTERM"
    );

    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let failed = *failed.lock().unwrap();
    assert_eq!(answers.len() + failed, REQUESTS);
    let all_logged: Vec<String> = psql(&schema, "SELECT public_id FROM gateway_calls")
        .lines()
        .map(str::to_owned)
        .collect();
    let logged: HashSet<String> = all_logged
        .iter()
        .filter(|id| !probes.contains(*id))
        .cloned()
        .collect();
    fn by<'a>(answers: &'a [Answer], gw: &'a str) -> impl Iterator<Item = &'a Answer> + 'a {
        answers.iter().filter(move |a| a.served_by == gw)
    }
    let by = |gw: &'static str| by(&answers, gw);
    for gw in ["gw1", "gw2", "gw3"] {
        assert!(by(gw).count() > 0, "{gw} answered some requests");
    }
    // SIGTERM: every answer, before and during the drain, is in the log.
    for gw in ["gw1", "gw3"] {
        let missing: Vec<&str> = by(gw)
            .filter(|a| !logged.contains(&a.call_id))
            .map(|a| a.call_id.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "{gw} answered calls that are not logged: {missing:?}"
        );
    }
    // SIGKILL: only calls answered within the last commit interval before the kill may be
    // missing.
    let lost: Vec<&Answer> = by("gw2").filter(|a| !logged.contains(&a.call_id)).collect();
    let oldest = lost.iter().map(|a| killed_at.duration_since(a.at)).max();
    let within = by("gw2")
        .filter(|a| killed_at.duration_since(a.at) <= COMMIT_INTERVAL)
        .count();
    eprintln!(
        "fleet: {} answered ({} by gw1, {} by gw2, {} by gw3), {failed} failed; SIGKILL lost {} \
         of gw2's calls (the oldest answered {oldest:?} before it); the bound: the {within} \
         calls gw2 answered within {COMMIT_INTERVAL:?} before it",
        answers.len(),
        by("gw1").count(),
        by("gw2").count(),
        by("gw3").count(),
        lost.len(),
    );
    for a in &lost {
        assert!(
            killed_at.duration_since(a.at) <= COMMIT_INTERVAL,
            "call {} was answered {:?} before the SIGKILL and is not logged",
            a.call_id,
            killed_at.duration_since(a.at)
        );
    }
    // No call is logged twice, and every logged call is one some client was answered (or one
    // of the killed gateway's last, whose answer died with it).
    assert_eq!(
        all_logged.len(),
        logged.len() + probes.len(),
        "one row per call id"
    );
    assert!(logged.len() <= answers.len() + failed);

    // Usage totals read from PostgreSQL equal the sum of the logged calls, to the pico-USD.
    let usage: serde_json::Value =
        serde_json::from_str(&ws(&["usage", "--since", "1d", "--json"])).unwrap();
    let (calls, pico): (u64, i128) = {
        let row = psql(
            &schema,
            "SELECT count(*) || ' ' || coalesce(sum(cost_pico_usd), 0) FROM calls",
        );
        let (a, b) = row.split_once(' ').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    assert_eq!(usage["totals"]["calls"], calls);
    assert_eq!(
        calls as usize,
        all_logged.len(),
        "every logged call is a gateway call"
    );
    assert_eq!(
        usd_to_pico(usage["totals"]["cost"]["usd"].as_str().unwrap()),
        pico,
        "usage totals to the pico-USD"
    );
}

/// "0.000123" (USD, exact decimal) as pico-USD.
fn usd_to_pico(usd: &str) -> i128 {
    let (int, frac) = usd.split_once('.').unwrap_or((usd, ""));
    let mut frac = frac.to_owned();
    assert!(frac.len() <= 12, "{usd}");
    while frac.len() < 12 {
        frac.push('0');
    }
    int.parse::<i128>().unwrap() * 1_000_000_000_000 + frac.parse::<i128>().unwrap()
}
