//! Budgets and alerts, evaluated as calls are logged: the writer names the endpoints whose calls
//! it just committed, and one task looks at those endpoints' rollups (a few rows per hour, never
//! the whole log). Each condition fires once per episode: a budget once per UTC day or month it
//! is crossed in; a cost spike or an error rate when it begins, resolved when it ends, and fired
//! again only if it begins again. New alerts are broadcast (the desktop shows a notification).

use std::collections::BTreeSet;
use std::time::Duration;

use milc_api::usage::{Alert, AlertKind, AlertSettings, Budget};
use milc_api::{Cost, UsageSource};
use sqlx::SqlitePool;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::store::{now_ms, Result, Store, StoreError};
use crate::usage::{hour_of, DAY_MS, HOUR_MS};

/// Evaluations wait this long for more calls to come in, so a busy writer costs one evaluation
/// per pause rather than one per batch.
const SETTLE: Duration = Duration::from_millis(200);

enum Msg {
    Touched(Vec<i64>),
    Flush(oneshot::Sender<()>),
}

/// The handle on the evaluating task.
#[derive(Clone, Debug)]
pub struct Alerts {
    tx: mpsc::UnboundedSender<Msg>,
    fired: broadcast::Sender<Alert>,
}

impl Alerts {
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (fired, _) = broadcast::channel(64);
        tokio::spawn(run(pool, rx, fired.clone()));
        Self { tx, fired }
    }

    /// Endpoints (0 = none) whose calls were just committed.
    pub(crate) fn touched(&self, endpoints: Vec<i64>) {
        let _ = self.tx.send(Msg::Touched(endpoints));
    }

    /// Waits until every call committed so far has been evaluated.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// New alerts as they fire.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.fired.subscribe()
    }
}

async fn run(
    pool: SqlitePool,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    fired: broadcast::Sender<Alert>,
) {
    let mut pending: BTreeSet<i64> = BTreeSet::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        if pending.is_empty() && waiting.is_empty() {
            deadline = tokio::time::Instant::now() + SETTLE;
        }
        // Wait for something, then for the writer to settle (unless someone waits on us).
        let first = if pending.is_empty() && waiting.is_empty() {
            match rx.recv().await {
                Some(m) => Some(m),
                None => return,
            }
        } else {
            // The pause counts from the first pending call, so a steady stream of calls is
            // evaluated every SETTLE, not only once it stops.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(m)) => Some(m),
                Ok(None) => return,
                Err(_) => None,
            }
        };
        let mut settled = first.is_none();
        let take = |m: Msg, pending: &mut BTreeSet<i64>, waiting: &mut Vec<_>| match m {
            Msg::Touched(eps) => pending.extend(eps),
            Msg::Flush(tx) => waiting.push(tx),
        };
        if let Some(m) = first {
            take(m, &mut pending, &mut waiting);
        }
        while let Ok(m) = rx.try_recv() {
            take(m, &mut pending, &mut waiting);
        }
        if !waiting.is_empty() || tokio::time::Instant::now() >= deadline {
            settled = true;
        }
        if settled {
            if !pending.is_empty() {
                let eps = std::mem::take(&mut pending);
                match evaluate(&pool, &eps, now_ms()).await {
                    Ok(new) => {
                        for a in new {
                            let _ = fired.send(a);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
                }
            }
            for w in waiting.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

fn month_of(ms: i64) -> (i64, String) {
    use chrono::Datelike;
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let start = t
        .date_naive()
        .with_day(1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or(ms);
    (start, t.format("%Y-%m").to_string())
}

fn usd(pico: i64) -> String {
    Cost {
        pico_usd: pico,
        source: UsageSource::Reported,
    }
    .usd()
}

/// Sums over the hourly (or, `daily`, the daily) rollup rows of one endpoint (0 = all) in
/// `[from, until)`: cost, tokens, calls, errors.
async fn sums(
    pool: &SqlitePool,
    daily: bool,
    endpoint: i64,
    from: i64,
    until: i64,
) -> Result<(i64, i64, i64, i64)> {
    let (table, column) = if daily {
        ("usage_daily", "day_ms")
    } else {
        ("usage_hourly", "hour_ms")
    };
    let (cost, tokens, calls, errors): (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as(&format!(
            "SELECT sum(cost_pico), sum(prompt_tokens + completion_tokens), sum(calls), sum(errors)
             FROM {table} WHERE {column} >= ? AND {column} < ? AND (? = 0 OR endpoint_id = ?)"
        ))
        .bind(from)
        .bind(until)
        .bind(endpoint)
        .bind(endpoint)
        .fetch_one(pool)
        .await?;
    Ok((
        cost.unwrap_or(0),
        tokens.unwrap_or(0),
        calls.unwrap_or(0),
        errors.unwrap_or(0),
    ))
}

pub(crate) async fn settings(pool: &SqlitePool) -> Result<AlertSettings> {
    let raw: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'alert_settings'")
            .fetch_optional(pool)
            .await?;
    Ok(raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

/// One rule's reading for one endpoint (0 = all).
struct Condition {
    key: String,
    kind: AlertKind,
    endpoint: i64,
    on: bool,
    value: f64,
    threshold: f64,
    /// A budget: one alert per key (its period), never resolved.
    per_period: bool,
    message: String,
}

/// A condition's episode: fire a new one, resolve the open one, or nothing.
async fn episode(pool: &SqlitePool, c: Condition, now: i64) -> Result<Option<Alert>> {
    let Condition {
        key,
        kind,
        endpoint,
        on,
        value,
        threshold,
        per_period,
        message,
    } = c;
    let open: Option<i64> = if per_period {
        sqlx::query_scalar("SELECT id FROM alerts WHERE key = ?")
    } else {
        sqlx::query_scalar("SELECT id FROM alerts WHERE key = ? AND resolved_ms IS NULL")
    }
    .bind(&key)
    .fetch_optional(pool)
    .await?;
    match (on, open) {
        (true, None) => {
            let id = sqlx::query(
                "INSERT INTO alerts (key, kind, endpoint_id, message, value, threshold, fired_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&key)
            .bind(kind.as_str())
            .bind((endpoint != 0).then_some(endpoint))
            .bind(&message)
            .bind(value)
            .bind(threshold)
            .bind(now)
            .execute(pool)
            .await?
            .last_insert_rowid();
            let endpoint = endpoint_name(pool, endpoint).await?;
            Ok(Some(Alert {
                id,
                kind,
                endpoint,
                message,
                value,
                threshold,
                fired_ms: now,
                resolved_ms: None,
                acked_ms: None,
            }))
        }
        (false, Some(id)) if !per_period => {
            sqlx::query("UPDATE alerts SET resolved_ms = ? WHERE id = ?")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

async fn endpoint_name(pool: &SqlitePool, id: i64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM endpoints WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Evaluates every rule for `endpoints` (and the overall budget) at `now`; returns what fired.
pub(crate) async fn evaluate(
    pool: &SqlitePool,
    endpoints: &BTreeSet<i64>,
    now: i64,
) -> Result<Vec<Alert>> {
    let s = settings(pool).await?;
    let mut fired = Vec::new();
    let (day, (month, month_name)) = (day_of(now), month_of(now));
    let day_name = chrono::DateTime::from_timestamp_millis(now)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let end = hour_of(now) + HOUR_MS;
    let mut scopes: BTreeSet<i64> = endpoints.clone();
    scopes.insert(0);
    for &ep in &scopes {
        let who = match endpoint_name(pool, ep).await? {
            Some(n) => n,
            None if ep == 0 => "all endpoints".to_owned(),
            None => continue,
        };
        let budget: Option<(Option<i64>, Option<i64>)> =
            sqlx::query_as("SELECT daily_pico, monthly_pico FROM budgets WHERE endpoint_id = ?")
                .bind(ep)
                .fetch_optional(pool)
                .await?;
        if let Some((daily, monthly)) = budget {
            for (limit, from, kind, period) in [
                (daily, day, AlertKind::BudgetDaily, &day_name),
                (monthly, month, AlertKind::BudgetMonthly, &month_name),
            ] {
                let Some(limit) = limit else { continue };
                let (spent, ..) = sums(pool, true, ep, from, end).await?;
                let key = format!("{}:{ep}:{period}", kind.as_str());
                let what = if kind == AlertKind::BudgetDaily {
                    "daily"
                } else {
                    "monthly"
                };
                let condition = Condition {
                    key,
                    kind,
                    endpoint: ep,
                    on: spent >= limit,
                    value: spent as f64 / 1e12,
                    threshold: limit as f64 / 1e12,
                    per_period: true,
                    message: format!(
                        "{who}: ${} spent in {period}, over the {what} budget of ${}",
                        usd(spent),
                        usd(limit)
                    ),
                };
                if let Some(a) = episode(pool, condition, now).await? {
                    fired.push(a);
                }
            }
        }
        if ep == 0 {
            continue;
        }
        // The last hour: this hour and the one before; the baseline: the 7 whole UTC days
        // before today.
        let (cost, tokens, calls, errors) = sums(pool, false, ep, end - 2 * HOUR_MS, end).await?;
        let (base_cost, base_tokens, ..) = sums(pool, true, ep, day - 7 * DAY_MS, day).await?;
        let per_k = |c: i64, t: i64| {
            if t == 0 {
                0.0
            } else {
                c as f64 / 1e12 / (t as f64 / 1000.0)
            }
        };
        let (now_rate, base_rate) = (per_k(cost, tokens), per_k(base_cost, base_tokens));
        let spike =
            calls as u64 >= s.min_calls && base_tokens > 0 && now_rate > base_rate * s.spike_factor;
        let condition = Condition {
            key: format!("cost_spike:{ep}"),
            kind: AlertKind::CostSpike,
            endpoint: ep,
            on: spike,
            value: now_rate,
            threshold: base_rate * s.spike_factor,
            per_period: false,
            message: format!(
                "{who}: ${now_rate:.6} per 1K tokens in the last hour, over {}× the 7-day \
                 baseline of ${base_rate:.6}",
                s.spike_factor
            ),
        };
        if let Some(a) = episode(pool, condition, now).await? {
            fired.push(a);
        }
        let rate = if calls == 0 {
            0.0
        } else {
            errors as f64 / calls as f64
        };
        let failing = calls as u64 >= s.min_calls && rate > s.error_rate;
        let condition = Condition {
            key: format!("error_rate:{ep}"),
            kind: AlertKind::ErrorRate,
            endpoint: ep,
            on: failing,
            value: rate,
            threshold: s.error_rate,
            per_period: false,
            message: format!(
                "{who}: {:.0} % of {calls} calls failed in the last hour (threshold {:.0} %)",
                rate * 100.0,
                s.error_rate * 100.0
            ),
        };
        if let Some(a) = episode(pool, condition, now).await? {
            fired.push(a);
        }
    }
    Ok(fired)
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    kind: String,
    endpoint: Option<String>,
    message: String,
    value: f64,
    threshold: f64,
    fired_ms: i64,
    resolved_ms: Option<i64>,
    acked_ms: Option<i64>,
}

impl Store {
    /// Alerts, newest first.
    pub async fn alerts(&self, limit: u32) -> Result<Vec<Alert>> {
        let rows: Vec<AlertRow> = sqlx::query_as(
            "SELECT a.id, a.kind, e.name AS endpoint, a.message, a.value, a.threshold, a.fired_ms,
                 a.resolved_ms, a.acked_ms
             FROM alerts a LEFT JOIN endpoints e ON e.id = a.endpoint_id
             ORDER BY a.id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Alert {
                    id: r.id,
                    kind: AlertKind::parse(&r.kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("alert kind {}", r.kind)))?,
                    endpoint: r.endpoint,
                    message: r.message,
                    value: r.value,
                    threshold: r.threshold,
                    fired_ms: r.fired_ms,
                    resolved_ms: r.resolved_ms,
                    acked_ms: r.acked_ms,
                })
            })
            .collect()
    }

    /// Marks an alert seen; false when there is no such alert.
    pub async fn ack_alert(&self, id: i64) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE alerts SET acked_ms = coalesce(acked_ms, ?) WHERE id = ?")
                .bind(now_ms())
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected()
                == 1,
        )
    }

    pub async fn alert_settings(&self) -> Result<AlertSettings> {
        settings(self.pool()).await
    }

    pub async fn set_alert_settings(&self, s: &AlertSettings) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('alert_settings', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(serde_json::to_string(s).expect("settings serialize"))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets (or with both None, removes) the budget of `endpoint` (None: everything).
    pub async fn set_budget(
        &self,
        endpoint: Option<&str>,
        daily: Option<i64>,
        monthly: Option<i64>,
    ) -> Result<()> {
        let id = match endpoint {
            Some(name) => self.endpoint_by_name(name).await?.id,
            None => 0,
        };
        if daily.is_none() && monthly.is_none() {
            sqlx::query("DELETE FROM budgets WHERE endpoint_id = ?")
                .bind(id)
                .execute(self.pool())
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO budgets (endpoint_id, daily_pico, monthly_pico, updated_ms)
                 VALUES (?, ?, ?, ?)
                 ON CONFLICT (endpoint_id) DO UPDATE SET daily_pico = excluded.daily_pico,
                     monthly_pico = excluded.monthly_pico, updated_ms = excluded.updated_ms",
            )
            .bind(id)
            .bind(daily)
            .bind(monthly)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        }
        // A new budget may already be crossed.
        self.alerts_handle().touched(vec![id]);
        self.alerts_handle().flush().await;
        Ok(())
    }

    pub async fn budgets(&self) -> Result<Vec<Budget>> {
        let rows: Vec<(Option<String>, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT e.name, b.daily_pico, b.monthly_pico FROM budgets b
             LEFT JOIN endpoints e ON e.id = b.endpoint_id ORDER BY b.endpoint_id",
        )
        .fetch_all(self.pool())
        .await?;
        let cost = |p: Option<i64>| {
            p.map(|pico_usd| Cost {
                pico_usd,
                source: UsageSource::Reported,
            })
        };
        Ok(rows
            .into_iter()
            .map(|(endpoint, d, m)| Budget {
                endpoint,
                daily: cost(d),
                monthly: cost(m),
            })
            .collect())
    }
}
