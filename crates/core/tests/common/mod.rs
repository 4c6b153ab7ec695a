//! Test helpers shared by integration tests and benchmarks.

pub mod pii;

use std::path::Path;

use milc_core::{Console, Error};

/// Whether this run puts the tests' consoles on PostgreSQL (`MILC_TEST_ENGINE=postgres`, on the
/// server `MILC_TEST_PG` names; scripts/test runs the suite once per engine).
#[allow(dead_code)]
pub fn on_postgres() -> bool {
    std::env::var("MILC_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// The console a test opens at `path`: the SQLite file there, or on PostgreSQL a workspace of
/// its own named after the path, so a test that opens the same path twice opens the same store.
#[allow(dead_code)]
pub async fn open(path: &Path) -> Result<Console, Error> {
    if !on_postgres() {
        return Console::open(path).await;
    }
    use std::hash::{Hash, Hasher};
    let url = std::env::var("MILC_TEST_PG").expect("MILC_TEST_ENGINE=postgres needs MILC_TEST_PG");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let name = format!("t{:016x}", h.finish());
    milc_core::workspace::Workspace::init(&url, &name).await?;
    Console::open_workspace(&url, &name).await
}

/// On PostgreSQL, the workspace's tables with a row whose text holds `needle` (the whole row
/// as PostgreSQL prints it, every column): where a secret must never be.
#[allow(dead_code)]
pub async fn pg_tables_containing(console: &Console, needle: &str) -> Vec<String> {
    let mut c = console.store().read().await.unwrap();
    let tables: Vec<String> = milc_core::db::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut hits = Vec::new();
    for t in tables {
        let n: i64 = milc_core::db::query_scalar(&format!(
            "SELECT count(*) FROM \"{t}\" AS r WHERE strpos(r::text, ?) > 0"
        ))
        .bind(needle)
        .fetch_one(&mut c)
        .await
        .unwrap();
        if n > 0 {
            hits.push(t);
        }
    }
    hits
}
