//! Group commit for the hot rows: the call log and run results. Every task hands its row to one
//! queue; a single writer task with its own connection takes whatever has queued up (up to
//! [`BATCH`] rows) and commits it in one transaction, then answers each caller. A caller returns
//! only once its row is committed, so nothing is acknowledged that a crash could lose.
//!
//! Each statement is a round trip to SQLite's thread, so the writer keeps them few: a lone row is
//! one autocommitted INSERT; a batch is `BEGIN IMMEDIATE`, one multi-row INSERT per table and
//! size class, `COMMIT`.

use std::collections::HashMap;

use milc_api::{Call, UsageSource};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::store::{error_code, outcome_code, source_code, Result, StoreError};

/// The most rows one transaction carries.
pub const BATCH: usize = 1024;

/// Rows per multi-row INSERT: batches are split into these sizes (largest first), so SQLite
/// prepares a handful of statement shapes once and reuses them.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// A row for one of the append-mostly tables.
#[derive(Debug)]
pub(crate) enum Row {
    Call(Call),
    /// A run's result for one item and repetition; a second one for the same key is ignored.
    RunResult {
        run_id: i64,
        item: u64,
        rep: u32,
        call_id: Option<i64>,
        failed: bool,
        passed: bool,
        latency_ms: u64,
        json: String,
    },
}

struct Job {
    row: Row,
    reply: oneshot::Sender<Result<i64>>,
}

#[derive(Clone, Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime, owning `conn`. It ends when every
    /// handle is gone.
    pub fn start(conn: SqliteConnection) -> Self {
        let (queue, jobs) = mpsc::channel(4 * BATCH);
        tokio::spawn(run(conn, jobs));
        Self { queue }
    }

    /// Commits `row` (with whatever else is waiting). Returns the call's id for a call, 0 for a
    /// run result.
    pub async fn write(&self, row: Row) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Sql(sqlx::Error::PoolClosed);
        self.queue
            .send(Job { row, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn run(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut w = Batcher {
        models: HashMap::new(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        let rows: Vec<&Row> = batch.iter().map(|j| &j.row).collect();
        let done = if rows.len() == 1 {
            w.single(&mut conn, rows[0]).await.map(|id| vec![id])
        } else {
            w.batch(&mut conn, &rows).await
        };
        match done {
            Ok(ids) => {
                for (job, id) in batch.drain(..).zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
            }
            Err(_) => {
                // One bad row must not fail its neighbours: write each alone, so only the bad
                // one gets the error.
                for job in batch.drain(..) {
                    let _ = job.reply.send(w.single(&mut conn, &job.row).await);
                }
            }
        }
    }
    let _ = conn.close().await;
}

struct Batcher {
    /// Model names → ids; models are never deleted, so an id once committed stays right.
    models: HashMap<String, i64>,
}

impl Batcher {
    /// One row, autocommitted: a single round trip when its model is known.
    async fn single(&mut self, conn: &mut SqliteConnection, row: &Row) -> Result<i64> {
        match row {
            Row::Call(c) => {
                let model = self.model_id(conn, &c.model).await?;
                let id = self.insert_calls(conn, &[(c, model)], None).await?;
                Ok(id)
            }
            Row::RunResult { .. } => {
                insert_results(conn, &[row]).await?;
                Ok(0)
            }
        }
    }

    /// Many rows in one transaction; call ids are given explicitly (the write lock is held from
    /// `BEGIN IMMEDIATE`, so nobody else can take them).
    async fn batch(&mut self, conn: &mut SqliteConnection, rows: &[&Row]) -> Result<Vec<i64>> {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let done = self.batch_in_tx(conn, rows).await;
        match done {
            Ok(ids) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(ids)
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                // Ids cached inside the rolled-back transaction may not exist.
                self.models.clear();
                Err(e)
            }
        }
    }

    async fn batch_in_tx(
        &mut self,
        conn: &mut SqliteConnection,
        rows: &[&Row],
    ) -> Result<Vec<i64>> {
        let mut calls = Vec::new();
        for row in rows {
            if let Row::Call(c) = row {
                calls.push((c, self.model_id(conn, &c.model).await?));
            }
        }
        let mut ids = Vec::with_capacity(rows.len());
        if !calls.is_empty() {
            let next: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM calls")
                .fetch_one(&mut *conn)
                .await?;
            let mut at = 0;
            for chunk in split(calls.len()) {
                self.insert_calls(conn, &calls[at..at + chunk], Some(next + at as i64))
                    .await?;
                at += chunk;
            }
            let mut call_ids = next..;
            for row in rows {
                ids.push(match row {
                    Row::Call(_) => call_ids.next().expect("an unbounded range"),
                    Row::RunResult { .. } => 0,
                });
            }
        } else {
            ids.resize(rows.len(), 0);
        }
        let results: Vec<&Row> = rows
            .iter()
            .copied()
            .filter(|r| matches!(r, Row::RunResult { .. }))
            .collect();
        let mut at = 0;
        for chunk in split(results.len()) {
            insert_results(conn, &results[at..at + chunk]).await?;
            at += chunk;
        }
        Ok(ids)
    }

    async fn model_id(&mut self, conn: &mut SqliteConnection, name: &str) -> Result<i64> {
        if let Some(id) = self.models.get(name) {
            return Ok(*id);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO models (name) VALUES (?)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
        self.models.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Inserts calls with their model ids, numbered from `first` when given; returns the last
    /// id.
    async fn insert_calls(
        &self,
        conn: &mut SqliteConnection,
        calls: &[(&Call, i64)],
        first: Option<i64>,
    ) -> Result<i64> {
        const COLS: &str = "at_ms, endpoint_id, model_id, source, outcome, http_status, error_kind,
            latency_ms, ttft_ms, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,
            cost_pico_usd, usage_reported";
        let (cols, one) = match first {
            Some(_) => (
                format!("id, {COLS}"),
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            None => (
                COLS.to_owned(),
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
        };
        let sql = format!(
            "INSERT INTO calls ({cols}) VALUES {}",
            values(one, calls.len())
        );
        let mut args = SqliteArguments::default();
        for (i, (c, model_id)) in calls.iter().enumerate() {
            let u = c.usage.as_ref();
            if let Some(first) = first {
                add(&mut args, first + i as i64);
            }
            add(&mut args, c.at_ms);
            add(&mut args, c.endpoint_id);
            add(&mut args, *model_id);
            add(&mut args, source_code(c.source));
            add(&mut args, outcome_code(c.outcome));
            add(&mut args, c.http_status.map(i64::from));
            add(&mut args, c.error_kind.map(error_code));
            add(&mut args, c.latency_ms as i64);
            add(&mut args, c.ttft_ms.map(|t| t as i64));
            add(&mut args, u.map(|u| u.prompt_tokens as i64));
            add(&mut args, u.map(|u| u.cached_tokens as i64));
            add(&mut args, u.map(|u| u.completion_tokens as i64));
            add(&mut args, u.map(|u| u.reasoning_tokens as i64));
            add(&mut args, c.cost.map(|c| c.pico_usd));
            add(&mut args, u.map(|u| u.source == UsageSource::Reported));
        }
        Ok(sqlx::query_with(&sql, args)
            .execute(&mut *conn)
            .await?
            .last_insert_rowid())
    }
}

async fn insert_results(conn: &mut SqliteConnection, rows: &[&Row]) -> Result<()> {
    let sql = format!(
        "INSERT OR IGNORE INTO run_results (run_id, item_idx, rep, call_id, failed, passed,
             latency_ms, result_json) VALUES {}",
        values("(?, ?, ?, ?, ?, ?, ?, ?)", rows.len())
    );
    let mut args = SqliteArguments::default();
    for row in rows {
        let Row::RunResult {
            run_id,
            item,
            rep,
            call_id,
            failed,
            passed,
            latency_ms,
            json,
        } = row
        else {
            unreachable!("only run results are passed here")
        };
        add(&mut args, *run_id);
        add(&mut args, *item as i64);
        add(&mut args, i64::from(*rep));
        add(&mut args, *call_id);
        add(&mut args, *failed);
        add(&mut args, *passed);
        add(&mut args, *latency_ms as i64);
        add(&mut args, json.clone());
    }
    sqlx::query_with(&sql, args).execute(&mut *conn).await?;
    Ok(())
}

fn add<'q, T>(args: &mut SqliteArguments<'q>, value: T)
where
    T: sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + 'q,
{
    args.add(value).expect("a plain value encodes");
}

/// `n` copies of one row's placeholders.
fn values(one: &str, n: usize) -> String {
    vec![one; n].join(", ")
}

/// `n` as a sum of [`CHUNKS`] sizes, largest first.
fn split(mut n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for c in CHUNKS {
        while n >= c {
            out.push(c);
            n -= c;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use milc_api::{CallSource, Outcome};

    use super::*;
    use crate::Store;

    fn call(model: &str, at_ms: i64) -> Call {
        Call {
            at_ms,
            endpoint_id: None,
            model: model.into(),
            source: CallSource::Gateway,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error_kind: None,
            latency_ms: 5,
            ttft_ms: None,
            usage: None,
            cost: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rows_are_each_committed_once_and_a_bad_row_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("milc.db")).await.unwrap();
        let writer = store.writer().clone();
        assert_eq!(split(100), [64, 32, 4]);

        // 2,000 calls from 200 tasks at once, over three models.
        let tasks: Vec<_> = (0..200)
            .map(|t| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..10 {
                        let row =
                            Row::Call(call(["a", "b", "c"][(t + i) % 3], (t * 10 + i) as i64));
                        ids.push(writer.write(row).await.unwrap());
                    }
                    ids
                })
            })
            .collect();
        // Meanwhile, a result for a run that does not exist: the foreign key refuses it.
        let orphan = writer
            .write(Row::RunResult {
                run_id: 999,
                item: 0,
                rep: 0,
                call_id: None,
                failed: false,
                passed: true,
                latency_ms: 1,
                json: "{}".into(),
            })
            .await;
        assert!(orphan.is_err(), "{orphan:?}");

        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2000, "every call got its own id");
        let (calls, models): (i64, i64) =
            sqlx::query_as("SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM models)")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((calls, models), (2000, 3));
        // Each call kept its own model, cached ids included.
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT c.at_ms, m.name FROM calls c JOIN models m ON m.id = c.model_id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        for (at, model) in rows {
            let (t, i) = (at as usize / 10, at as usize % 10);
            assert_eq!(model, ["a", "b", "c"][(t + i) % 3], "call at {at}");
        }
    }
}
