//! The run engine against the simulator: 2,000 items at 50 ms latency, concurrency 32. The ideal
//! wall time is 2000 × 0.05 / 32 = 3.125 s; the figure is the `milc eval` process's wall time
//! from start to exit (creating the run, every call, scoring, the summary), best of 3.
//!
//! cargo build --release -p milc-cli && cargo bench -p milc-e2e --bench eval

use std::process::Command;
use std::time::Instant;

use milc_e2e::{milc_bin, SimProcess};

fn main() {
    let (items, latency_ms, concurrency) = (2000usize, 50u64, 32usize);
    let ideal = items as f64 * latency_ms as f64 / 1000.0 / concurrency as f64;
    let sim = SimProcess::start(&["--latency-ms", &latency_ms.to_string()], "unused");
    let mut best = f64::MAX;
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("milc.db");
        let milc = |args: &[&str]| {
            let out = Command::new(milc_bin())
                .arg("--db")
                .arg(&db)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let prompt = dir.path().join("p.yaml");
        std::fs::write(
            &prompt,
            "messages:\n  - role: user\n    content: \"{{q}}\"\nparams:\n  max_tokens: 40\n",
        )
        .unwrap();
        milc(&["prompts", "create", "p", "--file", prompt.to_str().unwrap()]);
        let data: String = (0..items)
            .map(|i| format!("{{\"q\": \"question number {i}\", \"expected\": \"an answer about question {i}\"}}\n"))
            .collect();
        let ds = dir.path().join("d.jsonl");
        std::fs::write(&ds, data).unwrap();
        milc(&["datasets", "import", ds.to_str().unwrap(), "--name", "d"]);
        milc(&[
            "endpoints",
            "add",
            "sim",
            "--url",
            &sim.url,
            "--model",
            "milc-sim",
        ]);
        let start = Instant::now();
        let out = milc(&[
            "eval",
            "--prompt",
            "p",
            "--endpoint",
            "sim",
            "--dataset",
            "d",
            "--scorers",
            "rouge1,rougeL,bleu",
            "--concurrency",
            &concurrency.to_string(),
        ]);
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
}
