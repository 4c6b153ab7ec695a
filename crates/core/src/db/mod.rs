//! The store: one pool over the local SQLite file (WAL and foreign keys on, migrations applied at
//! open), or over a team workspace's schema on PostgreSQL; statements run on either through
//! [`sql`]. Also the helpers every domain's storage file shares (integer codes, time, the temporary-file
//! writer). It starts no task: the call log's writer and the alert task belong to `Console`.
//! Runtime `query` / `query_as` throughout (no compile-time DATABASE_URL needed).

mod codes;
mod file;
pub mod sql;

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, PgPool, SqlitePool};

pub use codes::{error_code, error_from, outcome_code, outcome_from, source_code, source_from};
pub use file::PartialFile;
pub use sql::{
    query, query_as, query_as_with, query_scalar, query_scalar_with, query_with, Args, Bind,
    DbConn, Engine, Json,
};

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
    /// A team workspace refused the statement to this login (SQLSTATE 42501): its role does
    /// not allow it.
    #[error("the workspace refused this change: {0}. Your role here does not allow it (`milc workspace whoami` says which you hold; an admin grants another with `milc workspace grant`)")]
    Denied(String),
    #[error("database error: {0}")]
    Sql(sqlx::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("42501") => {
                Self::Denied(d.message().to_owned())
            }
            _ => Self::Sql(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store: a pool over the local SQLite file, or over a team workspace's schema on
/// PostgreSQL. Domains see only [`DbConn`]s from it.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pools,
}

#[derive(Clone, Debug)]
enum Pools {
    Lite(SqlitePool, SqliteConnectOptions),
    Pg(PgPool, PgConnectOptions),
}

/// Takes a workspace's write lock until the transaction ends (one key per workspace schema).
pub(crate) const PG_WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext(current_schema()))";

/// A connection for reading (or a single self-committing statement).
pub type Conn = DbConn;
/// A write transaction (SQLite: begun `IMMEDIATE`, holding the write lock from its first
/// statement), committed by the caller with [`commit`].
pub type Tx = DbConn;

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
        Ok(Self {
            pool: Pools::Lite(pool, opts),
        })
    }

    /// Opens the schema `schema` on the PostgreSQL server at `url` (every connection's search
    /// path starts with it; `password`, if given, apart from the URL). Its tables are the
    /// workspace owner's to create and migrate (`milc workspace init`): members may not.
    pub async fn open_pg(url: &str, schema: &str, password: Option<&str>) -> Result<Self> {
        let mut opts: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|source| StoreError::Open {
                path: redacted_url(url),
                source,
            })?
            .options([("search_path", schema)])
            .log_statements(tracing::log::LevelFilter::Trace);
        if let Some(p) = password {
            opts = opts.password(p);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts.clone())
            .await
            .map_err(|source| StoreError::Open {
                path: redacted_url(url),
                source,
            })?;
        Ok(Self {
            pool: Pools::Pg(pool, opts),
        })
    }

    /// The PostgreSQL pool, for what a workspace asks of the server itself (who the login is,
    /// which roles it holds).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pools::Pg(p, _) => Some(p),
            Pools::Lite(..) => None,
        }
    }

    /// A pooled connection to read with.
    pub async fn read(&self) -> Result<Conn> {
        Ok(match &self.pool {
            Pools::Lite(p, _) => DbConn::lite_pooled(p.acquire().await?),
            Pools::Pg(p, _) => DbConn::pg_pooled(p.acquire().await?),
        })
    }

    /// The one way to open a write transaction, committed by the caller. It holds the
    /// store's write lock from its start: SQLite's `BEGIN IMMEDIATE`; on PostgreSQL the
    /// workspace's advisory lock ([`PG_WRITE_LOCK`]). One writer at a time on both engines, so
    /// what SQLite's single writer guaranteed holds for a team too: calls commit in id order
    /// (the rollups' marker never skips one), a price recomputation and the gateways' logging
    /// never interleave, two moves of one label are recorded one after the other. Readers
    /// never wait for it.
    pub async fn write(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pools::Lite(p, _) => DbConn::lite_tx(p.begin_with("BEGIN IMMEDIATE").await?),
            Pools::Pg(p, _) => {
                let mut tx = DbConn::pg_tx(p.begin().await?);
                tx.batch(PG_WRITE_LOCK).await?;
                tx
            }
        })
    }

    /// A read transaction: every read in it sees the database as of its first read while
    /// writers go on, so a long export is one consistent snapshot.
    pub async fn snapshot(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pools::Lite(p, _) => DbConn::lite_tx(p.begin().await?),
            Pools::Pg(p, _) => DbConn::pg_tx(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// A connection of its own, outside the pool (the call log's writer keeps one).
    pub async fn connect(&self) -> Result<DbConn> {
        Ok(match &self.pool {
            Pools::Lite(_, o) => DbConn::lite_owned(o.connect().await?),
            Pools::Pg(_, o) => DbConn::pg_owned(o.connect().await?),
        })
    }

    pub async fn close(&self) {
        match &self.pool {
            Pools::Lite(p, _) => p.close().await,
            Pools::Pg(p, _) => p.close().await,
        }
    }
}

/// A connection string without its password, for messages.
pub fn redacted_url(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let Some(at) = url[start..].find('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}***{}", &url[..start + colon + 1], &url[at..]),
        None => url.to_owned(),
    }
}

// ---- meta -----------------------------------------------------------------------------------

pub async fn meta(c: &mut DbConn, key: &str) -> Result<Option<String>> {
    query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut *c)
        .await
}

/// Sets `key` only if it has no value yet and returns the value that is stored afterwards,
/// so two processes opening a new database agree on it.
pub async fn meta_get_or_init(c: &mut DbConn, key: &str, value: &str) -> Result<String> {
    // Read first: a workspace member who may not write settings finds them set by its owner.
    if let Some(v) = meta(c, key).await? {
        return Ok(v);
    }
    query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(&mut *c)
        .await?;
    Ok(meta(c, key).await?.unwrap_or_else(|| value.to_owned()))
}

/// Sets `key` to `value` whatever it held (`None`: removes it).
pub async fn meta_put(c: &mut DbConn, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => query(
            "INSERT INTO meta (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(v),
        None => query("DELETE FROM meta WHERE key = ?").bind(key),
    }
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The row id of prompt version `name@version`: calls, runs, comparison variants and history
/// entries all refer to it.
pub async fn prompt_version_id(c: &mut DbConn, name: &str, version: u32) -> Result<Option<i64>> {
    query_scalar(
        "SELECT v.id FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
         WHERE p.name = ? AND v.version = ?",
    )
    .bind(name)
    .bind(version as i64)
    .fetch_optional(&mut *c)
    .await
}

/// Commits a write transaction.
pub async fn commit(tx: Tx) -> Result<()> {
    tx.commit().await
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
pub fn unique_or(e: StoreError, dup: impl FnOnce() -> StoreError) -> StoreError {
    match &e {
        StoreError::Sql(sqlx::Error::Database(db)) if db.is_unique_violation() => dup(),
        _ => e,
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
        let mode: String = query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
}
