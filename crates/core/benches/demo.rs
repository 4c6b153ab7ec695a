//! Loading the sample project into a fresh database (two runs of fifty items against the
//! simulator, a comparison, a week of usage with its rollups and alert), best of five, and
//! removing it again. Run: `cargo bench -p milc-core --bench demo`.

use std::time::Instant;

use milc_core::Console;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut best_load = f64::MAX;
        let mut best_remove = f64::MAX;
        let mut calls = 0;
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let console = Console::open(&dir.path().join("m.db")).await.unwrap();
            let t = Instant::now();
            let s = console.demo_load().await.unwrap();
            best_load = best_load.min(t.elapsed().as_secs_f64());
            calls = s.calls;
            let t = Instant::now();
            console.demo_remove().await.unwrap();
            best_remove = best_remove.min(t.elapsed().as_secs_f64());
            console.close().await;
        }
        println!(
            "sample project: load {:.0} ms ({calls} calls of usage, 2 runs × 50 items, a comparison), remove {:.0} ms — best of 5",
            best_load * 1000.0,
            best_remove * 1000.0
        );
    });
}
