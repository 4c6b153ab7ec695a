//! Group commit for the hot rows: the call log and run results. Every task hands its row to one
//! queue; a single writer task with its own connection takes whatever has queued up (up to
//! [`BATCH`] rows), writes it, then answers each caller. A caller returns only once its row is
//! committed, so nothing is acknowledged that a crash could lose.
//!
//! Each statement is a round trip to SQLite's thread, so the writer keeps them few: the rows
//! become one multi-row INSERT per table and size class, one or two of them committing
//! themselves, more (or a gateway call with its tag) inside `BEGIN IMMEDIATE … COMMIT`.
//!
//! The rollups come after the answers, in a transaction of their own on the same connection:
//! every call above the durable marker (the highest call id in the rollups) is added to its
//! hourly and daily rows and the marker moves to the last one, together. The writer rolls up when
//! its queue pauses ([`IDLE`]), when a reader in this process asks, or after [`MAX_WAIT`] or
//! [`BATCH`] calls, whichever comes first, so a busy queue pays for one rollup per many batches.
//! A crash between a batch's commit and its rollup loses nothing: the next open (or the next
//! rollup, in this or another process) folds in whatever is above the marker, once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use milc_api::prompt::PromptPin;
use milc_api::{Call, UsageSource};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use super::alerts::Alerts;
use super::rollups::{Agg, Fact, Key};
use super::storage::{self, GatewayTag, ResultRow};
use crate::db::{self, outcome_code, source_code, DbConn, Result, StoreError};

/// The most rows one write carries.
pub const BATCH: usize = 1024;

/// Rows per multi-row INSERT: batches are split into these sizes (largest first), so SQLite
/// prepares a handful of statement shapes once and reuses them.
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// A pause this long in the queue rolls up what was committed.
const IDLE: Duration = Duration::from_millis(2);
/// However busy the queue, committed calls wait at most this long for their rollup.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// After a rollup failed, the next try waits this long (or for the next calls).
const RETRY: Duration = Duration::from_secs(1);

/// A row for one of the append-mostly tables.
#[derive(Debug)]
pub enum Row {
    /// A call, and what the gateway adds to it (written in the same transaction).
    Call(Call, Option<Box<GatewayTag>>),
    /// A run's result for one item and repetition; a second one for the same key is ignored.
    RunResult(ResultRow),
}

struct Job {
    row: Row,
    reply: oneshot::Sender<Result<i64>>,
}

/// How far the writer has got: batches with calls committed, and how many of those are in the
/// rollups. Readers of the rollups in this process wait for the second to catch up with the
/// first.
#[derive(Debug)]
struct Progress {
    committed: AtomicU64,
    rolled: watch::Sender<u64>,
    /// A reader is waiting: roll up now rather than after a pause.
    asked: Notify,
    /// Tests: never roll up, as if the process died after each commit.
    #[cfg(feature = "test-support")]
    held: std::sync::atomic::AtomicBool,
}

#[derive(Clone, Debug)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    progress: Arc<Progress>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime, owning `conn`. It ends when every
    /// handle is gone, after rolling up what it committed.
    pub fn start(conn: DbConn, alerts: Alerts, rollup_generation: Arc<AtomicU64>) -> Self {
        let (queue, jobs) = mpsc::channel(4 * BATCH);
        let progress = Arc::new(Progress {
            committed: AtomicU64::new(0),
            rolled: watch::Sender::new(0),
            asked: Notify::new(),
            #[cfg(feature = "test-support")]
            held: Default::default(),
        });
        let batcher = Batcher {
            models: HashMap::new(),
            prompts: HashMap::new(),
            alerts,
            rollups: RollupCache::default(),
            rollup_generation,
            progress: Arc::clone(&progress),
            seq: 0,
            pending: Vec::new(),
            pending_since: None,
            last_data_version: None,
            behind: false,
        };
        tokio::spawn(run(conn, jobs, batcher));
        Self { queue, progress }
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

    /// Waits until every call this writer has committed so far is in the rollups (at most one
    /// rollup transaction: asking makes the writer roll up at once).
    pub async fn rolled_up(&self) {
        let p = &self.progress;
        let target = p.committed.load(Ordering::SeqCst);
        if *p.rolled.borrow() >= target {
            return;
        }
        let mut rolled = p.rolled.subscribe();
        p.asked.notify_one();
        let _ = rolled.wait_for(|r| *r >= target).await;
    }

    /// Tests: from now on the writer commits calls but never rolls them up, as if the process
    /// died right after each commit.
    #[cfg(feature = "test-support")]
    pub fn hold_rollups(&self) {
        self.progress.held.store(true, Ordering::SeqCst);
    }
}

async fn run(mut conn: DbConn, mut jobs: mpsc::Receiver<Job>, mut w: Batcher) {
    let progress = Arc::clone(&w.progress);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if !w.owes_rollup() {
            if jobs.recv_many(&mut batch, BATCH).await == 0 {
                break;
            }
        } else if !w.rollup_due() {
            // Rows already queued go first; the rollup waits for a pause or a reader.
            tokio::select! {
                biased;
                n = jobs.recv_many(&mut batch, BATCH) => if n == 0 { break },
                () = progress.asked.notified() => {}
                () = tokio::time::sleep(w.pause()) => {}
            }
        }
        if batch.is_empty() {
            w.roll_up(&mut conn).await;
            continue;
        }
        let rows: Vec<&Row> = batch.iter().map(|j| &j.row).collect();
        let answers = w.write(&mut conn, &rows).await;
        for (job, answer) in batch.drain(..).zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
    if w.owes_rollup() {
        w.roll_up(&mut conn).await;
    }
    let _ = conn.close().await;
}

struct Batcher {
    /// Model names → ids; models are never deleted, so an id once committed stays right.
    models: HashMap<String, i64>,
    /// Prompt versions → ids (versions are immutable and never deleted).
    prompts: HashMap<PromptPin, Option<i64>>,
    /// Told which endpoints' calls were rolled up, to evaluate budgets and alerts.
    alerts: Alerts,
    /// The rollup rows this writer last wrote, valid while the generation stays the same.
    rollups: RollupCache,
    rollup_generation: Arc<AtomicU64>,
    progress: Arc<Progress>,
    /// Batches with calls committed so far.
    seq: u64,
    /// Calls committed and not rolled up yet, with their ids.
    pending: Vec<(i64, Fact)>,
    /// When the oldest of them was committed.
    pending_since: Option<Instant>,
    /// `data_version` as the last rollup transaction read it: while it stays the same, no other
    /// connection has committed anything since, so the calls above the marker are exactly the
    /// ones this writer holds in `pending`.
    last_data_version: Option<i64>,
    /// The last rollup failed: calls above the marker may be waiting without being pending.
    behind: bool,
}

impl Batcher {
    fn owes_rollup(&self) -> bool {
        !self.pending.is_empty() || self.behind
    }

    /// Whether the rollup should go before the rows already queued.
    fn rollup_due(&self) -> bool {
        self.pending.len() >= BATCH || self.pending_since.is_some_and(|t| t.elapsed() >= MAX_WAIT)
    }

    /// How long a quiet queue waits before the rollup.
    fn pause(&self) -> Duration {
        if self.pending.is_empty() {
            RETRY
        } else {
            IDLE
        }
    }

    /// Writes `rows` and answers each: its call id (0 for a run result), or its error. A
    /// statement that fails is retried row by row, so a bad row fails alone and no row is written
    /// twice. Committed calls wait for the next rollup.
    async fn write(&mut self, conn: &mut DbConn, rows: &[&Row]) -> Vec<Result<i64>> {
        let answers = self.write_rows(conn, rows).await;
        let before = self.pending.len();
        for (r, a) in rows.iter().zip(&answers) {
            if let (Row::Call(c, _), Ok(id)) = (r, a) {
                let fact = self.fact(c);
                self.pending.push((*id, fact));
            }
        }
        if self.pending.len() > before {
            self.seq += 1;
            self.progress.committed.store(self.seq, Ordering::SeqCst);
            self.pending_since.get_or_insert_with(Instant::now);
        }
        answers
    }

    /// Rolls up every call above the marker (see the module's notes), then wakes the alerts for
    /// their endpoints and the readers waiting for them. A failure leaves the calls above the
    /// marker for the next try, the next rollup or the next start.
    async fn roll_up(&mut self, conn: &mut DbConn) {
        let pending = std::mem::take(&mut self.pending);
        self.pending_since = None;
        #[cfg(feature = "test-support")]
        if self.progress.held.load(Ordering::SeqCst) {
            self.progress.rolled.send_replace(self.seq);
            return;
        }
        match self.roll_up_in_transaction(conn, pending).await {
            Ok(endpoints) => {
                self.behind = false;
                if !endpoints.is_empty() {
                    self.alerts.touched(endpoints);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "rolling up the call log failed; trying again later");
                self.behind = true;
                self.last_data_version = None;
                self.rollups.clear();
            }
        }
        self.progress.rolled.send_replace(self.seq);
    }

    async fn roll_up_in_transaction(
        &mut self,
        conn: &mut DbConn,
        pending: Vec<(i64, Fact)>,
    ) -> Result<Vec<i64>> {
        storage::begin_immediate(conn).await?;
        match self.fold(conn, pending).await {
            Ok((endpoints, written, data_version)) => {
                if let Err(e) = storage::commit(conn).await {
                    // A failed COMMIT can leave the transaction open: end it, or every later
                    // write would land in it.
                    storage::rollback(conn).await;
                    return Err(e);
                }
                self.rollups.keep(written);
                self.last_data_version = Some(data_version);
                Ok(endpoints)
            }
            Err(e) => {
                storage::rollback(conn).await;
                Err(e)
            }
        }
    }

    /// Inside the rollup transaction: adds every call above the marker to the rollup rows and
    /// moves the marker. The calls come from `pending` when they are exactly what is above the
    /// marker, else from the table (another process's calls, a crash's leftovers, a rebuild or
    /// a deletion in between).
    #[allow(clippy::type_complexity)]
    async fn fold(
        &mut self,
        conn: &mut DbConn,
        mut pending: Vec<(i64, Fact)>,
    ) -> Result<(Vec<i64>, Vec<(Key, Agg)>, i64)> {
        let (marker, data_version) = storage::rollup_marker(conn).await?;
        pending.sort_unstable_by_key(|(id, _)| *id);
        let exact = self.last_data_version == Some(data_version)
            && pending
                .first()
                .is_some_and(|(first, _)| *first == marker + 1)
            && pending.windows(2).all(|w| w[1].0 == w[0].0 + 1);
        let mut deltas: HashMap<Key, Agg> = HashMap::new();
        let mut endpoints = Vec::new();
        let last = if exact {
            for (_, f) in &pending {
                f.count_in(&mut deltas);
                endpoints.push(f.endpoint_id.unwrap_or(0));
            }
            endpoints.sort_unstable();
            endpoints.dedup();
            pending.last().map_or(marker, |(id, _)| *id)
        } else {
            storage::fold_after(conn, marker, &mut deltas, &mut endpoints).await?
        };
        if last <= marker {
            return Ok((endpoints, Vec::new(), data_version));
        }
        // A rebuild in this process bumps the generation, and any other connection's commit
        // (another process logging calls or recomputing costs) changes `data_version`: either
        // empties the cache.
        let generation = self
            .rollup_generation
            .load(Ordering::SeqCst)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ data_version as u64;
        let written = self.rollups.add(conn, deltas, generation).await?;
        storage::set_rollup_marker(conn, last).await?;
        Ok((endpoints, written, data_version))
    }

    async fn write_rows(&mut self, conn: &mut DbConn, rows: &[&Row]) -> Vec<Result<i64>> {
        let mut plan = plan(rows);
        // A gateway call and its tag go together, so they take a transaction; so do batches of
        // more than two statements (one commit instead of many).
        // On PostgreSQL calls are always inserted under the write lock, so they commit in id
        // order.
        let pg = conn.engine() == db::Engine::Postgres;
        if plan.len() > 2 || pg || rows.iter().any(|r| tagged(r)) {
            match self.in_transaction(conn, rows, &plan).await {
                Ok(ids) => return ids.into_iter().map(Ok).collect(),
                // Rolled back: nothing of it was written, and ids cached inside the
                // transaction may not exist.
                Err(e) if is_row_error(&e) => {
                    // A bad row: every row goes again on its own, so only it fails.
                    self.models.clear();
                    plan = (0..rows.len()).map(|i| vec![i]).collect();
                }
                Err(e) => {
                    // Busy, I/O, a closed database: no row would fare better alone.
                    self.models.clear();
                    return rows.iter().map(|_| Err(copy(&e))).collect();
                }
            }
        }
        let mut answers: Vec<Option<Result<i64>>> = rows.iter().map(|_| None).collect();
        for st in &plan {
            match self.one_statement(conn, rows, st).await {
                Ok(ids) => {
                    for (&i, id) in st.iter().zip(ids) {
                        answers[i] = Some(Ok(id));
                    }
                }
                Err(e) if st.len() == 1 => answers[st[0]] = Some(Err(e)),
                Err(e) if !is_row_error(&e) => {
                    for &i in st {
                        answers[i] = Some(Err(copy(&e)));
                    }
                }
                Err(_) => {
                    for &i in st {
                        let one = self.one_statement(conn, rows, &[i]).await;
                        answers[i] = Some(one.map(|ids| ids[0]));
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every row is in one statement"))
            .collect()
    }

    /// The rows of one statement: on their own, committing themselves, unless a gateway call
    /// with its tag is among them or the store is PostgreSQL (then in a transaction of their
    /// own).
    async fn one_statement(
        &mut self,
        conn: &mut DbConn,
        rows: &[&Row],
        st: &[usize],
    ) -> Result<Vec<i64>> {
        if conn.engine() == db::Engine::Postgres || st.iter().any(|&i| tagged(rows[i])) {
            let ids = self.in_transaction(conn, rows, &[st.to_vec()]).await?;
            return Ok(st.iter().map(|&i| ids[i]).collect());
        }
        let these: Vec<&Row> = st.iter().map(|&i| rows[i]).collect();
        self.insert(conn, &these).await
    }

    async fn in_transaction(
        &mut self,
        conn: &mut DbConn,
        rows: &[&Row],
        plan: &[Vec<usize>],
    ) -> Result<Vec<i64>> {
        storage::begin_immediate(conn).await?;
        let mut ids = vec![0; rows.len()];
        for st in plan {
            let these: Vec<&Row> = st.iter().map(|&i| rows[i]).collect();
            let inserted = match self.insert(conn, &these).await {
                Ok(got) => got,
                Err(e) => {
                    storage::rollback(conn).await;
                    return Err(e);
                }
            };
            for (&i, id) in st.iter().zip(inserted) {
                ids[i] = id;
            }
        }
        if let Err(e) = storage::commit(conn).await {
            // A failed COMMIT can leave the transaction open: end it, or every later write
            // would land in it.
            storage::rollback(conn).await;
            return Err(e);
        }
        Ok(ids)
    }
    /// One INSERT of rows of one kind; the call ids in order (0s for run results).
    async fn insert(&mut self, conn: &mut DbConn, rows: &[&Row]) -> Result<Vec<i64>> {
        let calls: Vec<(&Call, Option<&GatewayTag>)> = rows
            .iter()
            .filter_map(|r| match r {
                Row::Call(c, tag) => Some((c, tag.as_deref())),
                Row::RunResult(_) => None,
            })
            .collect();
        if calls.is_empty() {
            let results: Vec<&ResultRow> = rows
                .iter()
                .filter_map(|r| match r {
                    Row::RunResult(x) => Some(x),
                    Row::Call(..) => None,
                })
                .collect();
            storage::insert_results(conn, &results).await?;
            return Ok(vec![0; rows.len()]);
        }
        let mut with_models = Vec::with_capacity(calls.len());
        for &(c, _) in &calls {
            let model = self.model_id(conn, &c.model).await?;
            let prompt = match &c.prompt {
                Some(pin) => self.prompt_id(conn, pin).await?,
                None => None,
            };
            with_models.push((c, model, prompt));
        }
        let ids = storage::insert_calls(conn, &with_models).await?;
        let tags: Vec<(i64, &GatewayTag)> = ids
            .iter()
            .zip(&calls)
            .filter_map(|(&id, (_, tag))| tag.map(|t| (id, t)))
            .collect();
        if !tags.is_empty() {
            storage::insert_gateway_calls(conn, &tags).await?;
        }
        Ok(ids)
    }

    async fn prompt_id(&mut self, conn: &mut DbConn, pin: &PromptPin) -> Result<Option<i64>> {
        if let Some(id) = self.prompts.get(pin) {
            return Ok(*id);
        }
        let id = db::prompt_version_id(conn, &pin.prompt, pin.version).await?;
        self.prompts.insert(pin.clone(), id);
        Ok(id)
    }

    /// What the rollups count of a call about to be committed.
    fn fact(&self, c: &Call) -> Fact {
        let u = c.usage.as_ref();
        Fact {
            at_ms: c.at_ms,
            endpoint_id: c.endpoint_id,
            prompt_version_id: c
                .prompt
                .as_ref()
                .and_then(|p| self.prompts.get(p).copied().flatten()),
            source: source_code(c.source),
            outcome: outcome_code(c.outcome),
            latency_ms: c.latency_ms as i64,
            prompt_tokens: u.map(|u| u.prompt_tokens as i64),
            cached_tokens: u.map(|u| u.cached_tokens as i64),
            completion_tokens: u.map(|u| u.completion_tokens as i64),
            reasoning_tokens: u.map(|u| u.reasoning_tokens as i64),
            cost_pico_usd: c.cost.map(|c| c.pico_usd),
            usage_reported: u.map(|u| u.source == UsageSource::Reported),
        }
    }

    async fn model_id(&mut self, conn: &mut DbConn, name: &str) -> Result<i64> {
        if let Some(id) = self.models.get(name) {
            return Ok(*id);
        }
        let id = storage::model_id(conn, name).await?;
        self.models.insert(name.to_owned(), id);
        Ok(id)
    }
}

/// A gateway call with its tag (two tables, so a transaction).
fn tagged(r: &Row) -> bool {
    matches!(r, Row::Call(_, Some(_)))
}

/// Whether `e` is about the rows written (a constraint they break), not about the database.
fn is_row_error(e: &StoreError) -> bool {
    use sqlx::error::ErrorKind as K;
    matches!(e, StoreError::Sql(sqlx::Error::Database(db)) if matches!(
        db.kind(),
        K::UniqueViolation | K::ForeignKeyViolation | K::NotNullViolation | K::CheckViolation
    ))
}

/// The same failure for another caller (errors do not clone).
fn copy(e: &StoreError) -> StoreError {
    let message = match e {
        StoreError::Denied(m) => return StoreError::Denied(m.clone()),
        StoreError::Sql(inner) => inner.to_string(),
        other => other.to_string(),
    };
    StoreError::Sql(sqlx::Error::Io(std::io::Error::other(message)))
}

/// The batch as statements (lists of row indexes): calls, then run results, each cut into
/// [`CHUNKS`] sizes.
fn plan(rows: &[&Row]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for calls in [true, false] {
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| matches!(rows[i], Row::Call(..)) == calls)
            .collect();
        let mut at = 0;
        for n in split(idx.len()) {
            out.push(idx[at..at + n].to_vec());
            at += n;
        }
    }
    out
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

/// Rollup rows as last written, kept by the writer so that adding a batch reads nothing back.
/// Anything else that rewrites rollups bumps the generation, which empties the cache.
#[derive(Default)]
pub struct RollupCache {
    rows: HashMap<Key, Agg>,
    generation: u64,
}

/// Most rows the cache keeps before it starts again from the tables.
const CACHE_ROWS: usize = 100_000;

impl RollupCache {
    /// Adds `deltas` to the rollup rows (inside the caller's transaction) and returns the new
    /// rows, to [`RollupCache::keep`] once the transaction has committed.
    pub async fn add(
        &mut self,
        conn: &mut DbConn,
        deltas: HashMap<Key, Agg>,
        generation: u64,
    ) -> Result<Vec<(Key, Agg)>> {
        if generation != self.generation || self.rows.len() > CACHE_ROWS {
            self.rows.clear();
            self.generation = generation;
        }
        storage::add_to_rollups(conn, deltas, &self.rows).await
    }

    pub fn keep(&mut self, rows: Vec<(Key, Agg)>) {
        self.rows.extend(rows);
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use milc_api::{CallSource, Outcome};

    use super::*;
    use crate::calllog::CallLog;
    use crate::db::Store;

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
            prompt: None,
            price_id: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rows_are_each_committed_once_and_a_bad_row_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("milc.db")).await.unwrap();
        let log = CallLog::start(&store).await.unwrap();
        let writer = log.writer.clone();
        assert_eq!(split(100), [64, 32, 4]);

        // 2,000 calls from 200 tasks at once, over three models.
        let tasks: Vec<_> = (0..200)
            .map(|t| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..10 {
                        let row = Row::Call(
                            call(["a", "b", "c"][(t + i) % 3], (t * 10 + i) as i64),
                            None,
                        );
                        ids.push(writer.write(row).await.unwrap());
                    }
                    ids
                })
            })
            .collect();
        // Meanwhile, a result for a run that does not exist: the foreign key refuses it.
        let orphan = writer
            .write(Row::RunResult(ResultRow {
                run_id: 999,
                item: 0,
                rep: 0,
                call_id: None,
                failed: false,
                passed: true,
                latency_ms: 1,
                json: "{}".into(),
            }))
            .await;
        assert!(orphan.is_err(), "{orphan:?}");

        let mut ids = Vec::new();
        for t in tasks {
            ids.extend(t.await.unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2000, "every call got its own id");
        let rows = storage::calls(&mut store.read().await.unwrap(), 5000)
            .await
            .unwrap();
        let models: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.call.model.as_str()).collect();
        assert_eq!((rows.len(), models.len()), (2000, 3));
        // Each call kept its own model, cached ids included.
        for r in &rows {
            let (at, model) = (r.call.at_ms, &r.call.model);
            let (t, i) = (at as usize / 10, at as usize % 10);
            assert_eq!(model, ["a", "b", "c"][(t + i) % 3], "call at {at}");
        }
    }
}
