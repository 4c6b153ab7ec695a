//! The SQLite store: one pool over one file, WAL and foreign keys on, migrations applied at open.
//! Runtime `query` / `query_as` throughout (no compile-time DATABASE_URL needed).

use std::path::Path;
use std::time::Duration;

use milc_api::{
    Call, CallRecord, CallSource, ConnectionTest, Cost, Endpoint, EndpointSpec, EndpointStatus,
    ErrorKind, Outcome, PricePerMillion, Prices, Usage, UsageSource,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, FromRow, SqlitePool};

use crate::writer::{Row, Writer};

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
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    writer: Writer,
    alerts: crate::alerts::Alerts,
    /// Bumped whenever rollups are rewritten outside the writer (which caches them).
    rollup_generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
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
        let alerts = crate::alerts::Alerts::start(pool.clone());
        let rollup_generation = std::sync::Arc::default();
        let writer = Writer::start(
            opts.connect().await?,
            alerts.clone(),
            std::sync::Arc::clone(&rollup_generation),
        );
        let store = Self {
            pool,
            writer,
            alerts,
            rollup_generation,
        };
        // Calls logged before the rollups existed are counted once.
        if store.meta("rollups").await?.is_none() {
            store.rebuild_rollups(i64::MIN / 2).await?;
            store.meta_get_or_init("rollups", "1").await?;
        }
        Ok(store)
    }

    /// Tells the writer its cached rollup rows are stale.
    pub(crate) fn rollups_rewritten(&self) {
        self.rollup_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Budgets and alerts: flush, subscribe.
    pub fn alerts_handle(&self) -> &crate::alerts::Alerts {
        &self.alerts
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- meta -------------------------------------------------------------------------------

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets `key` only if it has no value yet and returns the value that is stored afterwards,
    /// so two processes opening a new database agree on it.
    pub async fn meta_get_or_init(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(self.meta(key).await?.unwrap_or_else(|| value.to_owned()))
    }

    // ---- endpoints --------------------------------------------------------------------------

    pub async fn insert_endpoint(&self, spec: &EndpointSpec) -> Result<Endpoint> {
        let query = sqlx::query(
            "INSERT INTO endpoints (name, base_url, model, headers_json, price_in_micros,
                 price_cached_micros, price_out_micros, timeout_ms, max_retries, status,
                 redaction_json, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let res = bind_spec(query, spec)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| unique_violation(e, &spec.name))?;
        self.endpoint(res.last_insert_rowid()).await
    }

    pub async fn update_endpoint(&self, id: i64, spec: &EndpointSpec) -> Result<Endpoint> {
        let query = sqlx::query(
            "UPDATE endpoints SET name = ?, base_url = ?, model = ?, headers_json = ?,
                 price_in_micros = ?, price_cached_micros = ?, price_out_micros = ?,
                 timeout_ms = ?, max_retries = ?, status = ?, redaction_json = ?
             WHERE id = ?",
        );
        let res = bind_spec(query, spec)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_violation(e, &spec.name))?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoSuchEndpoint(format!("#{id}")));
        }
        self.endpoint(id).await
    }

    pub async fn set_has_token(&self, id: i64, has_token: bool) -> Result<()> {
        sqlx::query("UPDATE endpoints SET has_token = ? WHERE id = ?")
            .bind(has_token)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_test(&self, id: i64, test: &ConnectionTest) -> Result<()> {
        sqlx::query("UPDATE endpoints SET test_at_ms = ?, test_json = ? WHERE id = ?")
            .bind(test.at_ms)
            .bind(serde_json::to_string(test).expect("a test result serializes"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_endpoint(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM endpoints WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        // Its calls now belong to no endpoint: so do their rollups.
        let first: Option<i64> =
            sqlx::query_scalar("SELECT min(hour_ms) FROM usage_hourly WHERE endpoint_id = ?")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        if let Some(from) = first {
            self.rebuild_rollups(from).await?;
        }
        Ok(())
    }

    pub async fn endpoint(&self, id: i64) -> Result<Endpoint> {
        sqlx::query_as::<_, EndpointRow>("SELECT * FROM endpoints WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NoSuchEndpoint(format!("#{id}")))?
            .into_endpoint()
    }

    pub async fn endpoint_by_name(&self, name: &str) -> Result<Endpoint> {
        sqlx::query_as::<_, EndpointRow>("SELECT * FROM endpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NoSuchEndpoint(name.to_owned()))?
            .into_endpoint()
    }

    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        sqlx::query_as::<_, EndpointRow>("SELECT * FROM endpoints ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(EndpointRow::into_endpoint)
            .collect()
    }

    // ---- call log ---------------------------------------------------------------------------

    /// Logs one call; commits it with whatever other rows are waiting (see [`crate::writer`]).
    pub async fn insert_call(&self, c: &Call) -> Result<i64> {
        self.writer.write(Row::Call(c.clone())).await
    }

    /// Calls in `[since, until)` (newest first, at most `limit`), optionally of one endpoint,
    /// prompt version (`NAME@N`) and source: the calls behind a bar of a usage chart.
    pub async fn calls_between(&self, q: &milc_api::usage::CallsQuery) -> Result<Vec<CallRecord>> {
        sqlx::query_as::<_, CallRow>(&format!(
            "{CALL_ROWS} WHERE c.at_ms >= ? AND c.at_ms < ?
             AND (? IS NULL OR e.name = ?)
             AND (? IS NULL OR p.name || '@' || v.version = ?)
             AND (? IS NULL OR c.source = ?)
             ORDER BY c.at_ms DESC LIMIT ?"
        ))
        .bind(q.since_ms)
        .bind(q.until_ms)
        .bind(&q.endpoint)
        .bind(&q.endpoint)
        .bind(&q.prompt)
        .bind(&q.prompt)
        .bind(q.source.map(source_code))
        .bind(q.source.map(source_code))
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(CallRow::into_record)
        .collect()
    }

    /// The newest `limit` calls, newest first.
    pub async fn calls(&self, limit: u32) -> Result<Vec<CallRecord>> {
        sqlx::query_as::<_, CallRow>(&format!("{CALL_ROWS} ORDER BY c.id DESC LIMIT ?"))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(CallRow::into_record)
            .collect()
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds an endpoint's eleven editable columns, in the order both endpoint statements list them.
fn bind_spec<'q>(query: Query<'q>, spec: &'q EndpointSpec) -> Query<'q> {
    query
        .bind(&spec.name)
        .bind(&spec.base_url)
        .bind(&spec.model)
        .bind(serde_json::to_string(&spec.headers).expect("a string map serializes"))
        .bind(spec.prices.input.micros())
        .bind(spec.prices.cached_input.map(PricePerMillion::micros))
        .bind(spec.prices.output.micros())
        .bind(spec.timeout_ms as i64)
        .bind(spec.max_retries as i64)
        .bind(spec.status.as_str())
        .bind(serde_json::to_string(&spec.redaction).expect("a policy serializes"))
}

fn unique_violation(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::DuplicateName(name.to_owned())
        }
        _ => StoreError::Sql(e),
    }
}

// The small integer codes stored in `calls`. Never renumber: rows already written use them.

pub(crate) fn source_code(s: CallSource) -> i64 {
    match s {
        CallSource::Cli => 1,
        CallSource::Playground => 2,
        CallSource::Run => 3,
        CallSource::Gateway => 4,
    }
}

pub(crate) fn source_from(code: i64) -> Result<CallSource> {
    [
        CallSource::Cli,
        CallSource::Playground,
        CallSource::Run,
        CallSource::Gateway,
    ]
    .into_iter()
    .find(|s| source_code(*s) == code)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown call source code {code}")))
}

pub(crate) fn outcome_code(o: Outcome) -> i64 {
    match o {
        Outcome::Ok => 0,
        Outcome::Error => 1,
        Outcome::Cancelled => 2,
    }
}

pub(crate) fn outcome_from(code: i64) -> Result<Outcome> {
    [Outcome::Ok, Outcome::Error, Outcome::Cancelled]
        .into_iter()
        .find(|o| outcome_code(*o) == code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown call outcome code {code}")))
}

pub(crate) fn error_code(k: ErrorKind) -> i64 {
    match k {
        ErrorKind::Config => 1,
        ErrorKind::Connection => 2,
        ErrorKind::Tls => 3,
        ErrorKind::Auth => 4,
        ErrorKind::Permission => 5,
        ErrorKind::NotFound => 6,
        ErrorKind::BadRequest => 7,
        ErrorKind::Conflict => 8,
        ErrorKind::RateLimit => 9,
        ErrorKind::Quota => 10,
        ErrorKind::Timeout => 11,
        ErrorKind::Server => 12,
        ErrorKind::Protocol => 13,
        ErrorKind::Cancelled => 14,
        ErrorKind::Internal => 15,
    }
}

pub(crate) fn error_from(code: i64) -> Result<ErrorKind> {
    ErrorKind::ALL
        .into_iter()
        .find(|k| error_code(*k) == code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown error kind code {code}")))
}

#[derive(FromRow)]
struct EndpointRow {
    id: i64,
    name: String,
    base_url: String,
    model: String,
    headers_json: String,
    price_in_micros: i64,
    price_cached_micros: Option<i64>,
    price_out_micros: i64,
    timeout_ms: i64,
    max_retries: i64,
    status: String,
    has_token: bool,
    test_json: Option<String>,
    redaction_json: Option<String>,
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<Endpoint> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("endpoint '{}': {what}", self.name));
        let headers = serde_json::from_str(&self.headers_json).map_err(|_| corrupt("headers"))?;
        let status = EndpointStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?;
        let redaction = match &self.redaction_json {
            Some(j) => serde_json::from_str(j).map_err(|_| corrupt("redaction policy"))?,
            None => Default::default(),
        };
        let last_test = match &self.test_json {
            Some(j) => Some(serde_json::from_str(j).map_err(|_| corrupt("last test"))?),
            None => None,
        };
        // What an endpoint is follows from where it points: no flag to keep in step.
        let simulator = self.base_url == crate::endpoints::EMBEDDED_SIM_URL;
        Ok(Endpoint {
            id: self.id,
            spec: EndpointSpec {
                name: self.name,
                base_url: self.base_url,
                model: self.model,
                headers,
                prices: Prices {
                    input: PricePerMillion::from_micros(self.price_in_micros),
                    cached_input: self.price_cached_micros.map(PricePerMillion::from_micros),
                    output: PricePerMillion::from_micros(self.price_out_micros),
                },
                timeout_ms: self.timeout_ms as u64,
                max_retries: self.max_retries as u32,
                status,
                redaction,
            },
            has_token: self.has_token,
            simulator,
            last_test,
        })
    }
}

#[derive(FromRow)]
struct CallRow {
    id: i64,
    at_ms: i64,
    endpoint_id: Option<i64>,
    endpoint_name: Option<String>,
    model_name: String,
    source: i64,
    outcome: i64,
    http_status: Option<i64>,
    error_kind: Option<i64>,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    prompt_tokens: Option<i64>,
    cached_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_pico_usd: Option<i64>,
    usage_reported: Option<bool>,
    price_id: Option<i64>,
    prompt_name: Option<String>,
    prompt_version: Option<i64>,
}

/// The call log's rows with their endpoint, model and prompt version names.
pub(crate) const CALL_ROWS: &str = "SELECT c.*, e.name AS endpoint_name, m.name AS model_name,
         p.name AS prompt_name, v.version AS prompt_version
     FROM calls c JOIN models m ON m.id = c.model_id
     LEFT JOIN endpoints e ON e.id = c.endpoint_id
     LEFT JOIN prompt_versions v ON v.id = c.prompt_version_id
     LEFT JOIN prompts p ON p.id = v.prompt_id";

impl CallRow {
    fn into_record(self) -> Result<CallRecord> {
        let source = if self.usage_reported == Some(true) {
            UsageSource::Reported
        } else {
            UsageSource::Estimated
        };
        let usage = self.prompt_tokens.map(|p| Usage {
            prompt_tokens: p as u64,
            cached_tokens: self.cached_tokens.unwrap_or(0) as u64,
            completion_tokens: self.completion_tokens.unwrap_or(0) as u64,
            reasoning_tokens: self.reasoning_tokens.unwrap_or(0) as u64,
            source,
        });
        Ok(CallRecord {
            id: self.id,
            endpoint: self.endpoint_name,
            call: Call {
                at_ms: self.at_ms,
                endpoint_id: self.endpoint_id,
                model: self.model_name,
                source: source_from(self.source)?,
                outcome: outcome_from(self.outcome)?,
                http_status: self.http_status.map(|s| s as u16),
                error_kind: self.error_kind.map(error_from).transpose()?,
                latency_ms: self.latency_ms as u64,
                ttft_ms: self.ttft_ms.map(|t| t as u64),
                usage,
                cost: self.cost_pico_usd.map(|pico_usd| Cost { pico_usd, source }),
                prompt: self
                    .prompt_name
                    .zip(self.prompt_version)
                    .map(|(prompt, v)| milc_api::prompt::PromptPin {
                        prompt,
                        version: v as u32,
                    }),
                price_id: self.price_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sub/milc.db")).await.unwrap();
        (dir, store)
    }

    fn spec(name: &str) -> EndpointSpec {
        let mut s = EndpointSpec::new(name, "http://127.0.0.1:9/v1", "m");
        s.prices.input = "0.15".parse().unwrap();
        s.prices.cached_input = Some("0.075".parse().unwrap());
        s.prices.output = "0.6".parse().unwrap();
        s.headers.insert("x-team".into(), "blue".into());
        s
    }

    #[tokio::test]
    async fn endpoints_round_trip_through_a_file() {
        let (dir, store) = temp_store().await;
        let e = store.insert_endpoint(&spec("a")).await.unwrap();
        assert_eq!(e.spec, spec("a"));
        store.close().await;

        // Reopen the same file: the data and the schema are still there.
        let store = Store::open(&dir.path().join("sub/milc.db")).await.unwrap();
        let again = store.endpoint_by_name("a").await.unwrap();
        assert_eq!(again, e);

        let mut changed = spec("b");
        changed.status = EndpointStatus::Deprecated;
        changed.max_retries = 5;
        let upd = store.update_endpoint(e.id, &changed).await.unwrap();
        assert_eq!(upd.spec, changed);
        assert!(matches!(
            store.endpoint_by_name("a").await,
            Err(StoreError::NoSuchEndpoint(_))
        ));
    }

    #[tokio::test]
    async fn duplicate_names_are_refused_and_nothing_changes() {
        let (_dir, store) = temp_store().await;
        store.insert_endpoint(&spec("a")).await.unwrap();
        let err = store.insert_endpoint(&spec("a")).await.unwrap_err();
        assert!(
            matches!(err, StoreError::DuplicateName(ref n) if n == "a"),
            "{err}"
        );
        assert_eq!(store.endpoints().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn calls_round_trip_newest_first_and_survive_endpoint_deletion() {
        let (_dir, store) = temp_store().await;
        let e = store.insert_endpoint(&spec("a")).await.unwrap();
        let usage = Usage {
            prompt_tokens: 100,
            cached_tokens: 40,
            completion_tokens: 20,
            reasoning_tokens: 5,
            source: UsageSource::Reported,
        };
        let ok = Call {
            at_ms: 1_000,
            endpoint_id: Some(e.id),
            model: "m".into(),
            source: CallSource::Cli,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error_kind: None,
            latency_ms: 120,
            ttft_ms: Some(30),
            usage: Some(usage),
            cost: Some(e.spec.prices.cost(&usage)),
            prompt: None,
            price_id: None,
        };
        let failed = Call {
            at_ms: 2_000,
            outcome: Outcome::Error,
            http_status: Some(429),
            error_kind: Some(ErrorKind::RateLimit),
            ttft_ms: None,
            usage: None,
            cost: None,
            ..ok.clone()
        };
        store.insert_call(&ok).await.unwrap();
        store.insert_call(&failed).await.unwrap();
        let calls = store.calls(10).await.unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].call.error_kind, Some(ErrorKind::RateLimit));
        assert_eq!(calls[0].call.usage, None);
        assert_eq!(calls[1].call.usage, Some(usage));
        assert_eq!(calls[1].call.cost.unwrap().usd(), "0.000024"); // 60·0.15 + 40·0.075 + 20·0.6 µ$
        assert_eq!(calls[1].endpoint.as_deref(), Some("a"));

        store.delete_endpoint(e.id).await.unwrap();
        let calls = store.calls(1).await.unwrap();
        assert_eq!(
            calls[0].call.endpoint_id, None,
            "the log keeps the call, unlinked"
        );
        assert_eq!(calls[0].call.model, "m");
    }

    #[tokio::test]
    async fn store_runs_in_wal_mode_with_foreign_keys() {
        let (_dir, store) = temp_store().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
}
