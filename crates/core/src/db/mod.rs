//! The SQLite store: one pool over one file, WAL and foreign keys on, migrations applied at open,
//! and the helpers every domain's storage file shares (integer codes, time, the temporary-file
//! writer). It starts no task: the call log's writer and the alert task belong to `Console`.
//! Runtime `query` / `query_as` throughout (no compile-time DATABASE_URL needed).

mod codes;
mod file;

use std::path::Path;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool, Transaction};

pub use codes::{error_code, error_from, outcome_code, outcome_from, source_code, source_from};
pub use file::PartialFile;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot prepare the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("an endpoint named '{0}' already exists")]
    DuplicateName(String),
    #[error("no endpoint named '{0}'")]
    NoSuchEndpoint(String),
    #[error("a prompt named '{0}' already exists (add a version to it instead)")]
    DuplicatePrompt(String),
    #[error("no prompt '{0}'")]
    NoSuchPrompt(String),
    #[error("no dataset '{0}'")]
    NoSuchDataset(String),
    #[error("no run #{0}")]
    NoSuchRun(i64),
    #[error("no comparison '{0}'")]
    NoSuchComparison(String),
    #[error("a comparison named '{0}' already exists")]
    DuplicateComparison(String),
    #[error("no route '{0}'")]
    NoSuchRoute(String),
    #[error("no call #{0} in the log")]
    NoSuchCall(i64),
    #[error("run #{id} is being run by {owner}; resume it once that ends (or its claim lapses, {lapse_s} s after its runner stops)")]
    RunTaken {
        id: i64,
        owner: String,
        until_ms: i64,
        lapse_s: i64,
    },
    #[error("no load test #{0}")]
    NoSuchLoadTest(i64),
    #[error("no use case '{0}'")]
    NoSuchUseCase(String),
    #[error("a use case named '{0}' already exists")]
    DuplicateUseCase(String),
    #[error("no schedule '{0}'")]
    NoSuchSchedule(String),
    #[error("a schedule named '{0}' already exists")]
    DuplicateSchedule(String),
    #[error("a gateway key named '{0}' already exists")]
    DuplicateKey(String),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    opts: SqliteConnectOptions,
}

/// A connection for reading (or a single self-committing statement).
pub type Conn = PoolConnection<Sqlite>;
/// A write transaction, begun `IMMEDIATE` so it holds the write lock from its first statement.
pub type Tx = Transaction<'static, Sqlite>;

impl Store {
    /// Opens (creating if needed) the database at `path` and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        sqlx::migrate!("../../migrations").run(&pool).await?;
        Ok(Self { pool, opts })
    }

    /// A pooled connection to read with.
    pub async fn read(&self) -> Result<Conn> {
        Ok(self.pool.acquire().await?)
    }

    /// The one way to open a write transaction: `BEGIN IMMEDIATE`, committed by the caller.
    pub async fn write(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A read transaction (`BEGIN`, deferred): every read in it sees the database as of its
    /// first read while writers go on (WAL), so a long export is one consistent snapshot.
    pub async fn snapshot(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// A connection of its own, outside the pool (the call log's writer keeps one).
    pub async fn connect(&self) -> Result<SqliteConnection> {
        Ok(self.opts.connect().await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---- meta -----------------------------------------------------------------------------------

pub async fn meta(c: &mut SqliteConnection, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut *c)
        .await?)
}

/// Sets `key` only if it has no value yet and returns the value that is stored afterwards,
/// so two processes opening a new database agree on it.
pub async fn meta_get_or_init(c: &mut SqliteConnection, key: &str, value: &str) -> Result<String> {
    sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *c)
        .await?;
    Ok(meta(c, key).await?.unwrap_or_else(|| value.to_owned()))
}

/// Sets `key` to `value` whatever it held (`None`: removes it).
pub async fn meta_put(c: &mut SqliteConnection, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(v),
        None => sqlx::query("DELETE FROM meta WHERE key = ?").bind(key),
    }
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The row id of prompt version `name@version`: calls, runs, comparison variants and history
/// entries all refer to it.
pub async fn prompt_version_id(
    c: &mut SqliteConnection,
    name: &str,
    version: u32,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT v.id FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
         WHERE p.name = ? AND v.version = ?",
    )
    .bind(name)
    .bind(version as i64)
    .fetch_optional(&mut *c)
    .await?)
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    Ok(tx.commit().await?)
}

/// Bytes as lower-case hex (content hashes, key hashes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A unique-constraint failure as `dup`, any other as itself.
pub fn unique_or(e: sqlx::Error, dup: impl FnOnce() -> StoreError) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => dup(),
        _ => StoreError::Sql(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_runs_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/milc.db")).await.unwrap();
        let mut c = store.read().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
}
