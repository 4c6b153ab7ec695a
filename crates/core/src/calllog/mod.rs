//! The call log, owned by `Console`: the group-commit writer for the hot rows (calls and run
//! results), the rollups it keeps behind a durable marker right after the calls commit, the
//! alert task it wakes with the endpoints whose calls it rolled up, and the tap that offers each
//! committed call to an exporter (`tap`). The store underneath starts no task; this does.

pub mod alerts;
pub mod rollups;
pub mod storage;
pub mod tap;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use milc_api::usage::Alert;
use milc_api::Call;
use tokio::sync::broadcast;

use crate::db::{self, Result, Store, StoreError};
use alerts::Alerts;
pub use storage::{GatewayTag, ResultRow};
pub use tap::{CallDetail, Operation, Tap};
use writer::Writer;
pub use writer::{Row, BATCH};

#[derive(Clone, Debug)]
pub struct CallLog {
    store: Store,
    writer: Writer,
    alerts: Alerts,
    /// Bumped whenever rollups are rewritten outside the writer (which caches them).
    rollup_generation: Arc<AtomicU64>,
    tap: Tap,
}

impl CallLog {
    /// Starts the writer (on a connection of its own) and the alert task on the current tokio
    /// runtime. First, before the writer serves: calls logged before the rollups existed are
    /// counted once, and calls committed but not rolled up (a crash between the two
    /// transactions) are folded in, once.
    pub async fn start(store: &Store) -> Result<Self> {
        let touched = Self::catch_up(store).await?;
        let alerts = Alerts::start(store.clone());
        if !touched.is_empty() {
            alerts.touched(touched);
        }
        let rollup_generation = Arc::default();
        let writer = Writer::start(
            store.connect().await?,
            alerts.clone(),
            Arc::clone(&rollup_generation),
        );
        Ok(Self {
            store: store.clone(),
            writer,
            alerts,
            rollup_generation,
            tap: Tap::default(),
        })
    }

    /// Brings the rollups up to the log (see [`CallLog::start`]); returns the endpoints whose
    /// calls were folded in. Takes the write lock only when there is something to do.
    async fn catch_up(store: &Store) -> Result<Vec<i64>> {
        let mut c = store.read().await?;
        let built = db::meta(&mut c, "rollups").await?.is_some();
        if built && storage::rolled_up_to_the_end(&mut c).await? {
            return Ok(Vec::new());
        }
        drop(c);
        let mut tx = store.write().await?;
        let touched = if db::meta(&mut tx, "rollups").await?.is_none() {
            storage::rebuild_in(&mut tx, i64::MIN / 2).await?;
            db::meta_get_or_init(&mut tx, "rollups", "1").await?;
            Vec::new()
        } else {
            storage::catch_up(&mut tx).await?
        };
        tx.commit().await?;
        Ok(touched)
    }

    /// Logs one call; commits it with whatever other rows are waiting. Returns its id.
    pub async fn log(&self, call: &Call) -> Result<i64> {
        self.log_with(call, CallDetail::default()).await
    }

    /// Logs one call, then offers it with `detail` to the exporter, if one is on (never
    /// waiting for it). Every call made through the console is logged here or in
    /// [`CallLog::log_tagged`], so every source is exported from this one place.
    pub async fn log_with(&self, call: &Call, detail: CallDetail) -> Result<i64> {
        let id = self.writer.write(Row::Call(call.clone(), None)).await?;
        self.tap.offer(id, call, None, detail);
        Ok(id)
    }

    /// Logs a gateway call with its route, arm, key and caller hash, in the same transaction,
    /// and offers it to the exporter like [`CallLog::log_with`].
    pub async fn log_tagged(&self, call: Call, tag: GatewayTag, detail: CallDetail) -> Result<i64> {
        let offered = self.tap.is_on().then(|| (call.clone(), tag.clone()));
        let id = self
            .writer
            .write(Row::Call(call, Some(Box::new(tag))))
            .await?;
        if let Some((call, tag)) = offered {
            self.tap.offer(id, &call, Some(&tag), detail);
        }
        Ok(id)
    }

    /// The exporter's end of the log: see [`tap`].
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// Commits one row with whatever else is waiting (see [`writer`]). Not offered to the
    /// exporter: the sample project's made-up week of calls goes this way.
    pub async fn write(&self, row: Row) -> Result<i64> {
        self.writer.write(row).await
    }

    /// Tells the writer its cached rollup rows are stale. Call it inside the transaction that
    /// rewrites them: the writer's next batch waits for that transaction and then sees it.
    pub fn rollups_rewritten(&self) {
        self.rollup_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until every call this process has logged so far is in the rollups: what a read of
    /// the rollups in this process does first, so a caller sees its own calls.
    pub async fn rolled_up(&self) {
        self.writer.rolled_up().await;
    }

    /// Tests: the writer commits calls but never rolls them up from now on, as if the process
    /// died right after each commit.
    #[cfg(feature = "test-support")]
    pub fn hold_rollups(&self) {
        self.writer.hold_rollups();
    }

    /// Rebuilds the rollups from `from_ms`'s day on from the log.
    pub async fn rebuild_rollups(&self, from_ms: i64) -> Result<()> {
        let mut tx = self.store.write().await?;
        self.rollups_rewritten();
        storage::rebuild_in(&mut tx, from_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every rollup row, hourly then daily, in key order (what a rebuild writes, for checks).
    #[allow(clippy::type_complexity)]
    pub async fn rollups(&self) -> Result<Vec<(bool, i64, i64, i64, i64, Vec<i64>, Vec<u8>)>> {
        self.rolled_up().await;
        storage::all_rollups(&mut self.store.read().await?).await
    }

    /// After endpoint `id` was deleted: its calls now belong to no endpoint, so do their
    /// rollups; its budget goes and its open alerts are resolved.
    pub async fn endpoint_deleted(&self, id: i64) -> Result<()> {
        storage::forget_endpoint(&mut self.store.read().await?, id, db::now_ms()).await?;
        let first = storage::first_rollup_hour(&mut self.store.read().await?, id).await?;
        match first {
            Some(from) => self.rebuild_rollups(from).await,
            None => Ok(()),
        }
    }

    /// Asks for the alerts of endpoints (0: everything) to be evaluated again.
    pub fn touched(&self, endpoints: Vec<i64>) {
        self.alerts.touched(endpoints);
    }

    /// Waits until every call committed so far has been rolled up and evaluated for alerts.
    pub async fn flush(&self) {
        self.rolled_up().await;
        self.alerts.flush().await;
    }

    /// New alerts as they fire.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.alerts.subscribe()
    }

    /// The reading of a condition checked outside the alert task (drift): fires an alert when
    /// its episode begins (broadcast like the others), resolves it when it ends, and otherwise
    /// does nothing, so a condition that holds alerts once.
    pub(crate) async fn condition(&self, cond: alerts::Condition) -> Result<Option<Alert>> {
        let mut c = self.store.read().await?;
        let fired = alerts::episode(&mut c, cond, db::now_ms()).await?;
        if let Some(a) = &fired {
            self.alerts.announce(a.clone());
        }
        Ok(fired)
    }

    /// Fires an alert that is an event rather than a condition (a canary's verdict): stored,
    /// listed with the others until acknowledged, and broadcast.
    pub async fn raise(
        &self,
        kind: milc_api::usage::AlertKind,
        message: &str,
        value: f64,
        threshold: f64,
    ) -> Result<Alert> {
        use milc_api::usage::Reading;
        let at = db::now_ms();
        let key = format!("{}:{at}:{:08x}", kind.as_str(), rand::random::<u32>());
        let readings = (Reading::Rate(value), Reading::Rate(threshold));
        let id = storage::insert_alert(
            &mut self.store.read().await?,
            &key,
            kind,
            0,
            message,
            readings,
            at,
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("alert key {key} taken")))?;
        let alert = Alert {
            id,
            kind,
            endpoint: None,
            message: message.to_owned(),
            value: readings.0,
            threshold: readings.1,
            fired_ms: at,
            resolved_ms: None,
            acked_ms: None,
        };
        self.alerts.announce(alert.clone());
        Ok(alert)
    }
}
