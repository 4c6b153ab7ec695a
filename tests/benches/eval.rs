//! The run engine against the simulator: 2,000 items at 50 ms latency, concurrency 32. The ideal
//! wall time is 2000 × 0.05 / 32 = 3.125 s; the figure is the `milc eval` process's wall time
//! from start to exit (creating the run, every call, scoring, the summary), best of 3.
//! Then the peak memory (VmHWM) of a `milc eval` process over 100,000 items (simulator without
//! latency, concurrency 64): results stream to the store, so memory should not grow with them.
//!
//! cargo build --release -p milc-cli && cargo bench -p milc-e2e --bench eval

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use milc_e2e::{milc_bin, milc_ok, SimProcess};

/// A database with prompt `p` over `{{q}}`, dataset `d` of `items` questions, endpoint `sim`.
fn fixture(dir: &Path, items: usize, sim_url: &str) -> PathBuf {
    let db = dir.join("milc.db");
    let prompt = dir.join("p.yaml");
    std::fs::write(
        &prompt,
        "messages:\n  - role: user\n    content: \"{{q}}\"\nparams:\n  max_tokens: 40\n",
    )
    .unwrap();
    milc_ok(
        &db,
        &["prompts", "create", "p", "--file", prompt.to_str().unwrap()],
    );
    let data: String = (0..items)
        .map(|i| {
            format!("{{\"q\": \"question number {i}\", \"expected\": \"an answer about question {i}\"}}\n")
        })
        .collect();
    let ds = dir.join("d.jsonl");
    std::fs::write(&ds, data).unwrap();
    milc_ok(
        &db,
        &["datasets", "import", ds.to_str().unwrap(), "--name", "d"],
    );
    milc_ok(
        &db,
        &[
            "endpoints",
            "add",
            "sim",
            "--url",
            sim_url,
            "--model",
            "milc-sim",
        ],
    );
    db
}

const EVAL: [&str; 9] = [
    "eval",
    "--prompt",
    "p",
    "--endpoint",
    "sim",
    "--dataset",
    "d",
    "--scorers",
    "rouge1,rougeL,bleu",
];

fn main() {
    let (items, latency_ms, concurrency) = (2000usize, 50u64, 32usize);
    let ideal = items as f64 * latency_ms as f64 / 1000.0 / concurrency as f64;
    let sim = SimProcess::start(&["--latency-ms", &latency_ms.to_string()], "unused");
    let mut best = f64::MAX;
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = fixture(dir.path(), items, &sim.url);
        let start = Instant::now();
        let mut args = EVAL.to_vec();
        let c = concurrency.to_string();
        args.extend(["--concurrency", &c]);
        let out = milc_ok(&db, &args);
        let wall = start.elapsed().as_secs_f64();
        assert!(out.contains(&format!("{items}/{items} items")), "{out}");
        best = best.min(wall);
        println!(
            "eval round {round}: {items} items at {latency_ms} ms, concurrency {concurrency}: {wall:.2} s (ideal {ideal:.3} s, {:.1}% over)",
            (wall / ideal - 1.0) * 100.0
        );
    }
    println!(
        "eval: best {best:.2} s against the ideal {ideal:.3} s → {:.1}% over ideal",
        (best / ideal - 1.0) * 100.0
    );
    peak_memory(100_000);
}

/// Peak resident memory of `milc eval` over `items` items, sampled from /proc while it runs.
fn peak_memory(items: usize) {
    let sim = SimProcess::start(&[], "unused");
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path(), items, &sim.url);
    let start = Instant::now();
    let mut child = Command::new(milc_bin())
        .arg("--db")
        .arg(&db)
        .args(EVAL)
        .args(["--concurrency", "64"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let (mut peak_kb, mut at_10s) = (0u64, None);
    loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kb) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
            {
                peak_kb = kb;
            }
        }
        if at_10s.is_none() && start.elapsed().as_secs() >= 10 {
            at_10s = Some(peak_kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    println!(
        "eval memory: {items} items in {:.1} s, peak RSS {:.1} MB ({:.1} MB after the first 10 s)",
        start.elapsed().as_secs_f64(),
        peak_kb as f64 / 1024.0,
        at_10s.unwrap_or(peak_kb) as f64 / 1024.0
    );
}
