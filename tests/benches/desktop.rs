//! Cold start to an interactive Playground, and idle memory of the desktop app with its WebKit
//! processes, under Xvfb. Each run starts the release binary on a new database (the first-run
//! path: create, migrate, seed the simulator endpoint) and waits for the UI's `ui_ready` call,
//! which writes MILC_READY_FILE. Memory is read from /proc after 3 s idle: RSS (shared pages
//! counted in every process) and PSS (shared pages split), summed over the app's process tree.
//!
//! scripts/build-ui && cargo build --release -p milc-desktop &&
//! dbus-run-session -- xvfb-run -a -s "-screen 0 1280x800x24" cargo bench -p milc-e2e --bench desktop

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "run under xvfb-run (see the module doc)"
    );
    // The release binary next to this bench's own directory (`cargo bench` builds in release).
    let app = std::env::var_os("MILC_DESKTOP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| milc_e2e::workspace_bin("milc-desktop"));
    let runs = 5;
    let mut walls = Vec::new();
    let (mut rss, mut pss, mut per_process) = (Vec::new(), Vec::new(), Vec::new());
    let (mut floor_rss, mut floor_pss, mut floor_per_process) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // The console, idle on its Playground.
        let home = tempfile::tempdir().unwrap();
        let ready = home.path().join("ready");
        let start = Instant::now();
        let child = Command::new(&app)
            .envs(milc_e2e::desktop_env(home.path()))
            .env("MILC_READY_FILE", &ready)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        milc_e2e::wait_ready(&ready, start);
        walls.push(start.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_secs(3));
        let (r, p, each) = measure(child);
        rss.push(r);
        pss.push(p);
        per_process.push(each);
        // WebKitGTK's floor: the same shell and settings showing an empty page.
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(&app)
            .envs(milc_e2e::desktop_env(home.path()))
            .env("MILC_EMPTY_PAGE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(5));
        let (r, p, each) = measure(child);
        floor_rss.push(r);
        floor_pss.push(p);
        floor_per_process.push(each);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (w, wmin, wmax) = med(&mut walls);
    let (r, rmin, rmax) = med(&mut rss);
    let (p, pmin, pmax) = med(&mut pss);
    let (fr, frmin, frmax) = med(&mut floor_rss);
    let (fp, fpmin, fpmax) = med(&mut floor_pss);
    println!("desktop cold start to interactive: median {w:.0} ms (min {wmin:.0}, max {wmax:.0}) over {runs} runs");
    println!("desktop idle memory, RSS summed over app + WebKit processes: median {r:.0} MB (min {rmin:.0}, max {rmax:.0})");
    println!("desktop idle memory, PSS summed (shared pages split):        median {p:.0} MB (min {pmin:.0}, max {pmax:.0})");
    println!(
        "  per process (PSS, last run): {:?}",
        per_process.last().unwrap()
    );
    println!("WebKitGTK floor, the same shell on an empty page, RSS: median {fr:.0} MB (min {frmin:.0}, max {frmax:.0})");
    println!("WebKitGTK floor, PSS:                                  median {fp:.0} MB (min {fpmin:.0}, max {fpmax:.0})");
    println!(
        "  per process (PSS, last run): {:?}",
        floor_per_process.last().unwrap()
    );
    println!(
        "the console's own share (its wasm, DOM, state), PSS: {:.0} MB",
        p - fp
    );
}

/// RSS and PSS in MB summed over the process tree of `child` (then stopped), and PSS per process.
fn measure(mut child: std::process::Child) -> (f64, f64, Vec<(String, u64)>) {
    let tree = process_tree(child.id());
    let rss = tree.iter().map(|p| kb(p, "status", "VmRSS:")).sum::<u64>() as f64 / 1024.0;
    let each: Vec<(String, u64)> = tree
        .iter()
        .map(|p| {
            (
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                kb(p, "smaps_rollup", "Pss:") / 1024,
            )
        })
        .collect();
    let pss = tree
        .iter()
        .map(|p| kb(p, "smaps_rollup", "Pss:"))
        .sum::<u64>() as f64
        / 1024.0;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    (rss, pss, each)
}

/// `root` and every process descended from it.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces: the parent pid is the 2nd field after the last ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.push((pid, ppid));
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn kb(pid: &u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
