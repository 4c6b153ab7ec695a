//! The call log's tables and every SQL statement about them: calls and run results as the
//! writer inserts them, rollup rows, budgets, alert settings and alerts.

use std::collections::HashMap;

use milc_api::usage::{Alert, AlertKind, AlertSettings, Budget, Reading};
use milc_api::{Call, CallRecord, Cost, Usage, UsageSource};
use sqlx::FromRow;

use super::rollups::{day_of, Agg, Fact, Grain, Key, SCAN};
use crate::db::{
    self, error_code, error_from, now_ms, outcome_code, outcome_from, source_code, source_from,
    DbConn, Json, Result, StoreError,
};

// ---- the writer's statements ---------------------------------------------------------------

/// Begins a transaction holding the store's write lock (see [`crate::db::Store::write`]).
pub async fn begin_immediate(c: &mut DbConn) -> Result<()> {
    c.begin_write().await
}

pub async fn commit(c: &mut DbConn) -> Result<()> {
    db::query("COMMIT").execute(&mut *c).await?;
    Ok(())
}

/// Ends a transaction that failed; its own failure changes nothing for the caller.
pub async fn rollback(c: &mut DbConn) {
    let _ = db::query("ROLLBACK").execute(&mut *c).await;
}

/// The id of model `name`, added if new.
pub async fn model_id(c: &mut DbConn, name: &str) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO models (name) VALUES (?)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
    )
    .bind(name)
    .fetch_one(&mut *c)
    .await
}

/// Inserts calls with their model ids in one statement; returns their ids, in order.
pub async fn insert_calls(
    conn: &mut DbConn,
    calls: &[(&Call, i64, Option<i64>)],
) -> Result<Vec<i64>> {
    let sql = format!(
        "INSERT INTO calls (at_ms, endpoint_id, model_id, source, outcome, http_status,
             error_kind, latency_ms, ttft_ms, prompt_tokens, cached_tokens, completion_tokens,
             reasoning_tokens, cost_pico_usd, usage_reported, prompt_version_id, price_id)
         VALUES {}",
        values(
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            calls.len()
        )
    );
    let mut args = db::Args::default();
    for (c, model_id, prompt_id) in calls {
        let u = c.usage.as_ref();
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
        add(&mut args, *prompt_id);
        add(&mut args, c.price_id);
    }
    db::query_with(&sql, args).returning_ids(&mut *conn).await
}

/// What the gateway adds to a call's row.
#[derive(Clone, Debug)]
pub struct GatewayTag {
    /// The `x-milc-call-id` its client saw.
    pub public_id: String,
    pub route_id: i64,
    pub arm: String,
    /// The arm whose upstream failed, when this one answered as its fallback.
    pub fallback_for: Option<String>,
    pub key_id: Option<i64>,
    /// Salted hash of the caller id, never the id.
    pub caller_hash: Option<String>,
}

pub async fn insert_gateway_calls(conn: &mut DbConn, tags: &[(i64, &GatewayTag)]) -> Result<()> {
    let sql = format!(
        "INSERT INTO gateway_calls (call_id, public_id, route_id, arm, fallback_for, key_id, caller_hash)
         VALUES {}",
        values("(?, ?, ?, ?, ?, ?, ?)", tags.len())
    );
    let mut args = db::Args::default();
    for (id, t) in tags {
        add(&mut args, *id);
        add(&mut args, t.public_id.clone());
        add(&mut args, t.route_id);
        add(&mut args, t.arm.clone());
        add(&mut args, t.fallback_for.clone());
        add(&mut args, t.key_id);
        add(&mut args, t.caller_hash.clone());
    }
    db::query_with(&sql, args).execute(&mut *conn).await?;
    Ok(())
}

/// A run's result for one item and repetition, as the writer inserts it.
#[derive(Debug)]
pub struct ResultRow {
    pub run_id: i64,
    pub item: u64,
    pub rep: u32,
    pub call_id: Option<i64>,
    pub failed: bool,
    pub passed: bool,
    pub latency_ms: u64,
    pub json: String,
}

/// Inserts run results in one statement; a second result for the same key is ignored.
pub async fn insert_results(conn: &mut DbConn, rows: &[&ResultRow]) -> Result<()> {
    let sql = format!(
        "INSERT INTO run_results (run_id, item_idx, rep, call_id, failed, passed,
             latency_ms, result_json) VALUES {} ON CONFLICT DO NOTHING",
        values("(?, ?, ?, ?, ?, ?, ?, ?)", rows.len())
    );
    let mut args = db::Args::default();
    for row in rows {
        let ResultRow {
            run_id,
            item,
            rep,
            call_id,
            failed,
            passed,
            latency_ms,
            json,
        } = row;
        add(&mut args, *run_id);
        add(&mut args, *item as i64);
        add(&mut args, i64::from(*rep));
        add(&mut args, *call_id);
        add(&mut args, *failed);
        add(&mut args, *passed);
        add(&mut args, *latency_ms as i64);
        add(&mut args, json.clone());
    }
    db::query_with(&sql, args).execute(&mut *conn).await?;
    Ok(())
}

fn add(args: &mut db::Args, value: impl db::Bind) {
    args.add(value);
}

/// `n` copies of one row's placeholders.
fn values(one: &str, n: usize) -> String {
    vec![one; n].join(", ")
}

// ---- rollups -------------------------------------------------------------------------------

/// Writes whole rollup rows, up to 64 per statement.
pub async fn put_rollups(conn: &mut DbConn, rows: &[(Key, Agg)]) -> Result<()> {
    for grain in [Grain::Hour, Grain::Day] {
        let these: Vec<&(Key, Agg)> = rows.iter().filter(|(k, _)| k.grain == grain).collect();
        for chunk in these.chunks(64) {
            let sql = format!(
                "INSERT INTO {0} ({1}, endpoint_id, prompt_version_id, source, calls,
                     errors, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,
                     cost_pico, estimated_calls, latency_hist) VALUES {2}
                 ON CONFLICT ({1}, endpoint_id, prompt_version_id, source) DO UPDATE SET
                     calls = excluded.calls, errors = excluded.errors,
                     prompt_tokens = excluded.prompt_tokens, cached_tokens = excluded.cached_tokens,
                     completion_tokens = excluded.completion_tokens,
                     reasoning_tokens = excluded.reasoning_tokens, cost_pico = excluded.cost_pico,
                     estimated_calls = excluded.estimated_calls,
                     latency_hist = excluded.latency_hist",
                grain.table(),
                grain.column(),
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut args = db::Args::default();
            for (k, a) in chunk {
                for v in [
                    k.at_ms,
                    k.endpoint_id,
                    k.prompt_version_id,
                    k.source,
                    a.calls,
                    a.errors,
                    a.prompt_tokens,
                    a.cached_tokens,
                    a.completion_tokens,
                    a.reasoning_tokens,
                    a.cost_pico,
                    a.estimated_calls,
                ] {
                    args.add(v);
                }
                args.add(a.blob());
            }
            db::query_with(&sql, args).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// A rollup row's columns after its time.
const COLUMNS: &str = "endpoint_id, prompt_version_id, source, calls, errors, prompt_tokens,
     cached_tokens, completion_tokens, reasoning_tokens, cost_pico, estimated_calls, latency_hist";

#[derive(sqlx::FromRow)]
struct RollupRow {
    at_ms: i64,
    endpoint_id: i64,
    prompt_version_id: i64,
    source: i64,
    calls: i64,
    errors: i64,
    prompt_tokens: i64,
    cached_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
    cost_pico: i64,
    estimated_calls: i64,
    latency_hist: Vec<u8>,
}

impl RollupRow {
    fn into_parts(self, grain: Grain) -> (Key, Agg) {
        (
            Key {
                grain,
                at_ms: self.at_ms,
                endpoint_id: self.endpoint_id,
                prompt_version_id: self.prompt_version_id,
                source: self.source,
            },
            Agg {
                calls: self.calls,
                errors: self.errors,
                prompt_tokens: self.prompt_tokens,
                cached_tokens: self.cached_tokens,
                completion_tokens: self.completion_tokens,
                reasoning_tokens: self.reasoning_tokens,
                cost_pico: self.cost_pico,
                estimated_calls: self.estimated_calls,
                hist: Agg::hist_from(&self.latency_hist),
            },
        )
    }
}

/// What the rollups read of a call.
const FACT_COLUMNS: &str = "id, at_ms, endpoint_id, prompt_version_id, source, outcome,
     latency_ms, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost_pico_usd,
     usage_reported";

#[derive(sqlx::FromRow)]
struct FactRow {
    id: i64,
    #[sqlx(flatten)]
    fact: Fact,
}

/// The rollups' marker (the highest call id whose facts are in them) and this connection's
/// `data_version` (which changes whenever another connection commits), in one round trip.
/// PostgreSQL has no such counter: there the transaction's id stands in, new every time, so a
/// writer never trusts what it last wrote and reads the rows again (under the write lock).
pub async fn rollup_marker(c: &mut DbConn) -> Result<(i64, i64)> {
    let sql = match c.engine() {
        db::Engine::Sqlite => {
            "SELECT call_id, (SELECT data_version FROM pragma_data_version())
             FROM rollup_marker WHERE id = 1"
        }
        db::Engine::Postgres => "SELECT call_id, txid_current() FROM rollup_marker WHERE id = 1",
    };
    db::query_as(sql).fetch_one(&mut *c).await
}

/// Whether every call is in the rollups (the marker is at the last call).
pub async fn rolled_up_to_the_end(c: &mut DbConn) -> Result<bool> {
    db::query_scalar(
        "SELECT call_id >= coalesce((SELECT max(id) FROM calls), 0) FROM rollup_marker
         WHERE id = 1",
    )
    .fetch_one(&mut *c)
    .await
}

pub async fn set_rollup_marker(c: &mut DbConn, call_id: i64) -> Result<()> {
    db::query("UPDATE rollup_marker SET call_id = ? WHERE id = 1")
        .bind(call_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Up to `limit` calls with ids above `after`, in id order, as the rollups count them.
pub async fn facts_after(c: &mut DbConn, after: i64, limit: i64) -> Result<Vec<(i64, Fact)>> {
    let rows: Vec<FactRow> = db::query_as(&format!(
        "SELECT {FACT_COLUMNS} FROM calls WHERE id > ? ORDER BY id LIMIT ?"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.fact)).collect())
}

/// Adds `deltas` to the rollup rows (in the caller's transaction) and returns the rows as now
/// written. `known` holds rows as last written (the writer's cache); the others are read, in
/// one range query per table rather than one by one.
pub async fn add_to_rollups(
    conn: &mut DbConn,
    deltas: HashMap<Key, Agg>,
    known: &HashMap<Key, Agg>,
) -> Result<Vec<(Key, Agg)>> {
    let mut stored: HashMap<Key, Agg> = HashMap::new();
    for grain in [Grain::Hour, Grain::Day] {
        let missing = deltas
            .keys()
            .filter(|k| k.grain == grain && !known.contains_key(k))
            .map(|k| k.at_ms);
        let (Some(lo), Some(hi)) = (missing.clone().min(), missing.max()) else {
            continue;
        };
        stored.extend(rollup_rows(conn, grain, lo, hi + 1).await?);
    }
    let mut rows = Vec::with_capacity(deltas.len());
    for (k, d) in deltas {
        let mut total = match known.get(&k) {
            Some(a) => a.clone(),
            None => stored.remove(&k).unwrap_or_default(),
        };
        total.merge(&d);
        rows.push((k, total));
    }
    put_rollups(conn, &rows).await?;
    Ok(rows)
}

/// Folds every call above the marker into the rollups and moves the marker to the last of them
/// (in the caller's transaction, which must hold the write lock): what a crash between a
/// batch's commit and its rollup left behind, or another process's calls. Returns the
/// endpoints (0: none) whose calls it folded.
pub async fn catch_up(conn: &mut DbConn) -> Result<Vec<i64>> {
    let (marker, _) = rollup_marker(conn).await?;
    let (mut deltas, mut endpoints) = (HashMap::new(), Vec::new());
    let last = fold_after(conn, marker, &mut deltas, &mut endpoints).await?;
    if last > marker {
        add_to_rollups(conn, deltas, &HashMap::new()).await?;
        set_rollup_marker(conn, last).await?;
    }
    Ok(endpoints)
}

/// Counts every call above `after` into `deltas` (and its endpoint, 0 for none, into
/// `endpoints`, sorted and without repeats); returns the last id read (`after` if none).
pub async fn fold_after(
    conn: &mut DbConn,
    mut after: i64,
    deltas: &mut HashMap<Key, Agg>,
    endpoints: &mut Vec<i64>,
) -> Result<i64> {
    loop {
        let rows = facts_after(conn, after, SCAN).await?;
        let Some(&(last, _)) = rows.last() else { break };
        after = last;
        for (_, f) in &rows {
            f.count_in(deltas);
            endpoints.push(f.endpoint_id.unwrap_or(0));
        }
        endpoints.sort_unstable();
        endpoints.dedup();
    }
    Ok(after)
}

/// Rebuilds every rollup row from the UTC day of `from_ms` on, from the log, and sets the
/// marker to the last call (in the caller's transaction). Calls of earlier days not rolled up
/// yet are folded in first, so the marker covers them too.
pub async fn rebuild_in(conn: &mut DbConn, from_ms: i64) -> Result<()> {
    let from = day_of(from_ms);
    catch_up(conn).await?;
    for grain in [Grain::Hour, Grain::Day] {
        db::query(&format!(
            "DELETE FROM {} WHERE {} >= ?",
            grain.table(),
            grain.column()
        ))
        .bind(from)
        .execute(&mut *conn)
        .await?;
    }
    let mut aggs: HashMap<Key, Agg> = HashMap::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<FactRow> = db::query_as(&format!(
            "SELECT {FACT_COLUMNS} FROM calls WHERE at_ms >= ? AND id > ? ORDER BY id LIMIT ?"
        ))
        .bind(from)
        .bind(after)
        .bind(SCAN)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for r in &rows {
            r.fact.count_in(&mut aggs);
        }
    }
    let rows: Vec<(Key, Agg)> = aggs.into_iter().collect();
    put_rollups(conn, &rows).await
}

/// Every rollup row, hourly then daily, in key order (what a rebuild writes, for checks).
#[allow(clippy::type_complexity)]
pub async fn all_rollups(
    c: &mut DbConn,
) -> Result<Vec<(bool, i64, i64, i64, i64, Vec<i64>, Vec<u8>)>> {
    let mut out = Vec::new();
    for grain in [Grain::Hour, Grain::Day] {
        let rows: Vec<RollupRow> = db::query_as(&format!(
            "SELECT {0} AS at_ms, {COLUMNS} FROM {1}
             ORDER BY {0}, endpoint_id, prompt_version_id, source",
            grain.column(),
            grain.table()
        ))
        .fetch_all(&mut *c)
        .await?;
        for r in rows {
            let blob = r.latency_hist.clone();
            let (k, a) = r.into_parts(grain);
            out.push((
                grain == Grain::Day,
                k.at_ms,
                k.endpoint_id,
                k.prompt_version_id,
                k.source,
                vec![
                    a.calls,
                    a.errors,
                    a.prompt_tokens,
                    a.cached_tokens,
                    a.completion_tokens,
                    a.reasoning_tokens,
                    a.cost_pico,
                    a.estimated_calls,
                ],
                blob,
            ));
        }
    }
    Ok(out)
}

pub async fn rollup_rows(
    c: &mut DbConn,
    grain: Grain,
    from: i64,
    to: i64,
) -> Result<Vec<(Key, Agg)>> {
    if from >= to {
        return Ok(Vec::new());
    }
    let rows: Vec<RollupRow> = db::query_as(&format!(
        "SELECT {0} AS at_ms, {COLUMNS} FROM {1} WHERE {0} >= ? AND {0} < ?",
        grain.column(),
        grain.table()
    ))
    .bind(from)
    .bind(to)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_parts(grain)).collect())
}

/// The first hour with rollups of endpoint `id`, if any.
pub async fn first_rollup_hour(c: &mut DbConn, id: i64) -> Result<Option<i64>> {
    db::query_scalar("SELECT min(hour_ms) FROM usage_hourly WHERE endpoint_id = ?")
        .bind(id)
        .fetch_one(&mut *c)
        .await
}

// ---- budgets and alerts ----------------------------------------------------------------------

/// Sums over the hourly (or, `daily`, the daily) rollup rows of one endpoint (0 = all) in
/// `[from, until)`: cost, tokens, calls, errors.
pub async fn sums(
    c: &mut DbConn,
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
        db::query_as(&format!(
            "SELECT CAST(sum(cost_pico) AS BIGINT),
                    CAST(sum(prompt_tokens + completion_tokens) AS BIGINT),
                    CAST(sum(calls) AS BIGINT), CAST(sum(errors) AS BIGINT)
             FROM {table} WHERE {column} >= ? AND {column} < ? AND (? = 0 OR endpoint_id = ?)"
        ))
        .bind(from)
        .bind(until)
        .bind(endpoint)
        .bind(endpoint)
        .fetch_one(&mut *c)
        .await?;
    Ok((
        cost.unwrap_or(0),
        tokens.unwrap_or(0),
        calls.unwrap_or(0),
        errors.unwrap_or(0),
    ))
}

pub async fn alert_settings(c: &mut DbConn) -> Result<AlertSettings> {
    Ok(crate::db::meta(c, "alert_settings")
        .await?
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default())
}

pub async fn endpoint_name(c: &mut DbConn, id: i64) -> Result<Option<String>> {
    db::query_scalar("SELECT name FROM endpoints WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    kind: String,
    endpoint: Option<String>,
    message: String,
    value: f64,
    threshold: f64,
    value_pico: Option<i64>,
    threshold_pico: Option<i64>,
    fired_ms: i64,
    resolved_ms: Option<i64>,
    acked_ms: Option<i64>,
}

/// Alerts, newest first.
pub async fn alerts(c: &mut DbConn, limit: u32) -> Result<Vec<Alert>> {
    let rows: Vec<AlertRow> = db::query_as(
        "SELECT a.id, a.kind, e.name AS endpoint, a.message, a.value, a.threshold, a.value_pico,
             a.threshold_pico, a.fired_ms, a.resolved_ms, a.acked_ms
         FROM alerts a LEFT JOIN endpoints e ON e.id = a.endpoint_id
         ORDER BY a.id DESC LIMIT ?",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|r| {
            let kind = AlertKind::parse(&r.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("alert kind {}", r.kind)))?;
            let reading = |rate: f64, pico: Option<i64>| {
                let money = Cost {
                    pico_usd: pico.unwrap_or(0),
                    source: UsageSource::Reported,
                };
                match kind {
                    AlertKind::BudgetDaily | AlertKind::BudgetMonthly => Reading::Usd(money),
                    AlertKind::CostSpike => Reading::UsdPer1k(money),
                    AlertKind::ErrorRate | AlertKind::Canary | AlertKind::Drift => {
                        Reading::Rate(rate)
                    }
                }
            };
            Ok(Alert {
                id: r.id,
                kind,
                endpoint: r.endpoint,
                message: r.message,
                value: reading(r.value, r.value_pico),
                threshold: reading(r.threshold, r.threshold_pico),
                fired_ms: r.fired_ms,
                resolved_ms: r.resolved_ms,
                acked_ms: r.acked_ms,
            })
        })
        .collect()
}

/// Marks an alert seen; false when there is no such alert.
pub async fn ack_alert(c: &mut DbConn, id: i64) -> Result<bool> {
    Ok(
        db::query("UPDATE alerts SET acked_ms = coalesce(acked_ms, ?) WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
            == 1,
    )
}

pub async fn set_alert_settings(c: &mut DbConn, s: &AlertSettings) -> Result<()> {
    db::query(
        "INSERT INTO meta (key, value) VALUES ('alert_settings', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(Json(s))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Sets (or with both None, removes) the budget of endpoint `id` (0: everything).
pub async fn set_budget(
    c: &mut DbConn,
    id: i64,
    daily: Option<i64>,
    monthly: Option<i64>,
) -> Result<()> {
    if daily.is_none() && monthly.is_none() {
        db::query("DELETE FROM budgets WHERE endpoint_id = ?")
            .bind(id)
            .execute(&mut *c)
            .await?;
    } else {
        db::query(
            "INSERT INTO budgets (endpoint_id, daily_pico, monthly_pico, updated_ms)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (endpoint_id) DO UPDATE SET daily_pico = excluded.daily_pico,
                 monthly_pico = excluded.monthly_pico, updated_ms = excluded.updated_ms",
        )
        .bind(id)
        .bind(daily)
        .bind(monthly)
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub async fn budgets(c: &mut DbConn) -> Result<Vec<Budget>> {
    let rows: Vec<(Option<String>, Option<i64>, Option<i64>)> = db::query_as(
        "SELECT e.name, b.daily_pico, b.monthly_pico FROM budgets b
         LEFT JOIN endpoints e ON e.id = b.endpoint_id ORDER BY b.endpoint_id",
    )
    .fetch_all(&mut *c)
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

/// The budget of endpoint `id` (0: everything): daily and monthly limits in pUSD.
pub async fn budget(c: &mut DbConn, id: i64) -> Result<Option<(Option<i64>, Option<i64>)>> {
    db::query_as("SELECT daily_pico, monthly_pico FROM budgets WHERE endpoint_id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
}

/// The alert open under `key` (a budget's: any, once per period; else an unresolved one).
pub async fn open_alert(c: &mut DbConn, key: &str, per_period: bool) -> Result<Option<i64>> {
    if per_period {
        db::query_scalar("SELECT id FROM alerts WHERE key = ?")
    } else {
        db::query_scalar("SELECT id FROM alerts WHERE key = ? AND resolved_ms IS NULL")
    }
    .bind(key)
    .fetch_optional(&mut *c)
    .await
}

pub async fn insert_alert(
    c: &mut DbConn,
    key: &str,
    kind: AlertKind,
    endpoint: i64,
    message: &str,
    (value, threshold): (Reading, Reading),
    at_ms: i64,
) -> Result<Option<i64>> {
    // Rates in the REAL columns, money in the integer ones.
    let split = |r: Reading| match r {
        Reading::Rate(x) => (x, None),
        Reading::Usd(c) | Reading::UsdPer1k(c) => (0.0, Some(c.pico_usd)),
    };
    let ((value, value_pico), (threshold, threshold_pico)) = (split(value), split(threshold));
    let done = db::query(
        "INSERT INTO alerts (key, kind, endpoint_id, message, value, threshold, value_pico,
             threshold_pico, fired_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key) WHERE resolved_ms IS NULL DO NOTHING",
    )
    .bind(key)
    .bind(kind.as_str())
    .bind((endpoint != 0).then_some(endpoint))
    .bind(message)
    .bind(value)
    .bind(threshold)
    .bind(value_pico)
    .bind(threshold_pico)
    .bind(at_ms)
    .returning_id(&mut *c)
    .await?;
    // Another process opened this episode first (no row added): it is not ours to announce.
    Ok(done)
}

pub async fn resolve_alert(c: &mut DbConn, id: i64, at_ms: i64) -> Result<()> {
    db::query("UPDATE alerts SET resolved_ms = ? WHERE id = ?")
        .bind(at_ms)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

// ---- reading the log ------------------------------------------------------------------------

/// Calls in `[since, until)` (newest first, at most `limit`), optionally of one endpoint (or
/// of deleted ones), prompt version (`NAME@N`, or none), source and outcome: the calls behind a
/// bar of a usage chart, or the Calls page's filters.
pub async fn calls_between(
    c: &mut DbConn,
    q: &milc_api::usage::CallsQuery,
) -> Result<Vec<CallRecord>> {
    use milc_api::usage::{DELETED_ENDPOINT, NO_PROMPT_VERSION};
    let deleted = q.endpoint.as_deref() == Some(DELETED_ENDPOINT);
    let no_prompt = q.prompt.as_deref() == Some(NO_PROMPT_VERSION);
    db::query_as::<CallRow>(&format!(
        "{CALL_ROWS} WHERE c.at_ms >= ? AND c.at_ms < ?
         AND (? IS NULL OR e.name = ? OR (? AND c.endpoint_id IS NULL))
         AND (? IS NULL OR p.name || '@' || v.version = ? OR (? AND c.prompt_version_id IS NULL))
         AND (? IS NULL OR c.source = ?)
         AND (? IS NULL OR c.outcome = ?)
         ORDER BY c.at_ms DESC, c.id DESC LIMIT ?"
    ))
    .bind(q.since_ms)
    .bind(q.until_ms)
    .bind(&q.endpoint)
    .bind(&q.endpoint)
    .bind(deleted)
    .bind(&q.prompt)
    .bind(&q.prompt)
    .bind(no_prompt)
    .bind(q.source.map(source_code))
    .bind(q.source.map(source_code))
    .bind(q.outcome.map(outcome_code))
    .bind(q.outcome.map(outcome_code))
    .bind(i64::from(q.limit))
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(CallRow::into_record)
    .collect()
}

/// One call, if it is in the log.
pub async fn call(c: &mut DbConn, id: i64) -> Result<Option<CallRecord>> {
    db::query_as::<CallRow>(&format!("{CALL_ROWS} WHERE c.id = ?"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(CallRow::into_record)
        .transpose()
}

/// What made a call: the run item it answered, the comparison that run belongs to, and the
/// gateway route (model name) and arm.
pub async fn call_origin(
    c: &mut DbConn,
    id: i64,
) -> Result<(
    Option<milc_api::usage::CallRun>,
    Option<String>,
    Option<(String, String)>,
)> {
    let run: Option<(i64, i64, i64, Option<String>)> = db::query_as(
        "SELECT r.run_id, r.item_idx, r.rep,
                (SELECT c.name FROM comparison_variants v JOIN comparisons c ON c.id = v.comparison_id
                 WHERE v.run_id = r.run_id LIMIT 1)
         FROM run_results r WHERE r.call_id = ? LIMIT 1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    let route: Option<(String, String)> = db::query_as(
        "SELECT r.model, g.arm FROM gateway_calls g JOIN routes r ON r.id = g.route_id
         WHERE g.call_id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    let (run, comparison) = match run {
        Some((run_id, item, rep, comparison)) => (
            Some(milc_api::usage::CallRun {
                run_id,
                item: item as u64,
                rep: rep as u32,
            }),
            comparison,
        ),
        None => (None, None),
    };
    Ok((run, comparison, route))
}

/// The newest `limit` calls, newest first.
pub async fn calls(c: &mut DbConn, limit: u32) -> Result<Vec<CallRecord>> {
    db::query_as::<CallRow>(&format!("{CALL_ROWS} ORDER BY c.id DESC LIMIT ?"))
        .bind(limit as i64)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(CallRow::into_record)
        .collect()
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
pub const CALL_ROWS: &str = "SELECT c.*, e.name AS endpoint_name, m.name AS model_name,
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

/// Up to `limit` calls of `[since, until)` with ids above `after`, in id order: the export
/// reads the log page by page.
pub async fn calls_page(
    c: &mut DbConn,
    since_ms: i64,
    until_ms: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<CallRecord>> {
    db::query_as::<CallRow>(&format!(
        "{CALL_ROWS} WHERE c.at_ms >= ? AND c.at_ms < ? AND c.id > ? ORDER BY c.id LIMIT ?"
    ))
    .bind(since_ms)
    .bind(until_ms)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?
    .into_iter()
    .map(CallRow::into_record)
    .collect()
}

/// Deletes endpoint `id`'s calls and its alerts and budget (before the endpoint itself goes:
/// the sample project's removal). The caller rebuilds the rollups.
pub async fn delete_calls_of(c: &mut DbConn, id: i64) -> Result<()> {
    for sql in [
        "DELETE FROM calls WHERE endpoint_id = ?",
        "DELETE FROM alerts WHERE endpoint_id = ?",
        "DELETE FROM budgets WHERE endpoint_id = ?",
    ] {
        db::query(sql).bind(id).execute(&mut *c).await?;
    }
    // Model names no call uses any more (the writer re-interns one it had cached).
    db::query("DELETE FROM models WHERE id NOT IN (SELECT model_id FROM calls)")
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// After endpoint `id` was deleted: its budget goes, and its open alerts are resolved.
pub async fn forget_endpoint(c: &mut DbConn, id: i64, now: i64) -> Result<()> {
    db::query("DELETE FROM budgets WHERE endpoint_id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    db::query("UPDATE alerts SET resolved_ms = ? WHERE endpoint_id = ? AND resolved_ms IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}
