//! The gateway's tables: every SQL statement about routes and arms, gateway keys, feedback,
//! canary events and the gateway calls the judge reads.

use milc_api::gateway::{
    ArmSpec, CanaryEvent, CanarySpec, CanaryState, GatewayKey, Route, RouteSpec, Verdict,
};
use milc_api::Cost;
use sqlx::FromRow;

use crate::db::{self, now_ms, DbConn, Json, Result, StoreError};

#[derive(FromRow)]
struct RouteRow {
    id: i64,
    model: String,
    sticky: Option<String>,
    canary_json: Option<Json<CanarySpec>>,
    canary_state: Option<String>,
    canary_started_ms: Option<i64>,
}

#[derive(FromRow)]
struct ArmRow {
    route_id: i64,
    name: String,
    endpoint: String,
    prompt: Option<String>,
    weight: f64,
    timeout_ms: Option<i64>,
    max_retries: Option<i64>,
    fallback: Option<String>,
}

/// Every route with its arms, in the order they were written.
pub async fn routes(c: &mut DbConn) -> Result<Vec<Route>> {
    let rows: Vec<RouteRow> = db::query_as(
        "SELECT id, model, sticky, canary_json, canary_state, canary_started_ms
         FROM routes ORDER BY position, id",
    )
    .fetch_all(&mut *c)
    .await?;
    let arms: Vec<ArmRow> = db::query_as(
        "SELECT a.route_id, a.name, e.name AS endpoint, a.prompt, a.weight, a.timeout_ms,
                a.max_retries, a.fallback
         FROM route_arms a JOIN endpoints e ON e.id = a.endpoint_id
         ORDER BY a.route_id, a.position",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter()
        .map(|r| {
            let canary_state = match r.canary_state.as_deref() {
                None => None,
                Some(s) => Some(CanaryState::parse(s).ok_or_else(|| {
                    StoreError::Corrupt(format!("route '{}': canary state '{s}'", r.model))
                })?),
            };
            Ok(Route {
                id: r.id,
                spec: RouteSpec {
                    model: r.model,
                    sticky: r.sticky,
                    arms: arms
                        .iter()
                        .filter(|a| a.route_id == r.id)
                        .map(|a| ArmSpec {
                            name: a.name.clone(),
                            endpoint: a.endpoint.clone(),
                            prompt: a.prompt.clone(),
                            weight: a.weight,
                            timeout_ms: a.timeout_ms.map(|t| t as u64),
                            max_retries: a.max_retries.map(|t| t as u32),
                            fallback: a.fallback.clone(),
                        })
                        .collect(),
                    canary: r.canary_json.map(|j| j.0),
                },
                canary_started_ms: r.canary_started_ms,
                canary_state,
            })
        })
        .collect()
}

/// The spec each route was last written with by a person, by model.
pub async fn written_specs(c: &mut DbConn) -> Result<Vec<(String, RouteSpec)>> {
    let rows: Vec<(String, Json<RouteSpec>)> = db::query_as("SELECT model, spec_json FROM routes")
        .fetch_all(&mut *c)
        .await?;
    Ok(rows.into_iter().map(|(m, j)| (m, j.0)).collect())
}

/// Writes `spec` as route `model` (replacing its arms), as a person wrote it. A new or changed
/// canary starts running now.
pub async fn put_route(
    c: &mut DbConn,
    spec: &RouteSpec,
    endpoint_ids: &[i64],
    position: i64,
    canary_restarts: bool,
) -> Result<i64> {
    let now = now_ms();
    let canary = spec.canary.as_ref().map(Json);
    let id: i64 = db::query_scalar(
        "INSERT INTO routes (model, spec_json, sticky, canary_json, canary_state,
                             canary_started_ms, position, updated_ms)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?4 IS NULL THEN NULL ELSE 'running' END,
                 CASE WHEN ?4 IS NULL THEN NULL ELSE ?5 END, ?6, ?5)
         ON CONFLICT (model) DO UPDATE SET
             spec_json = excluded.spec_json, sticky = excluded.sticky,
             canary_json = excluded.canary_json,
             canary_state = CASE WHEN ?7 THEN excluded.canary_state
                                 ELSE routes.canary_state END,
             canary_started_ms = CASE WHEN ?7 THEN excluded.canary_started_ms
                                      ELSE routes.canary_started_ms END,
             last_verdict_json = CASE WHEN ?7 THEN NULL ELSE routes.last_verdict_json END,
             position = excluded.position, updated_ms = excluded.updated_ms
         RETURNING id",
    )
    .bind(&spec.model)
    .bind(Json(spec))
    .bind(&spec.sticky)
    .bind(canary)
    .bind(now)
    .bind(position)
    .bind(canary_restarts)
    .fetch_one(&mut *c)
    .await?;
    db::query("DELETE FROM route_arms WHERE route_id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    for (i, (arm, endpoint_id)) in spec.arms.iter().zip(endpoint_ids).enumerate() {
        db::query(
            "INSERT INTO route_arms (route_id, name, endpoint_id, prompt, weight, timeout_ms,
                                     max_retries, fallback, position)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&arm.name)
        .bind(endpoint_id)
        .bind(&arm.prompt)
        .bind(arm.weight)
        .bind(arm.timeout_ms.map(|t| t as i64))
        .bind(arm.max_retries.map(i64::from))
        .bind(&arm.fallback)
        .bind(i as i64)
        .execute(&mut *c)
        .await?;
    }
    bump(c).await?;
    Ok(id)
}

/// Removes every route not named in `keep`; the names removed.
pub async fn remove_routes_except(c: &mut DbConn, keep: &[String]) -> Result<Vec<String>> {
    let all: Vec<String> = db::query_scalar("SELECT model FROM routes")
        .fetch_all(&mut *c)
        .await?;
    let gone: Vec<String> = all.into_iter().filter(|m| !keep.contains(m)).collect();
    for m in &gone {
        db::query("DELETE FROM routes WHERE model = ?")
            .bind(m)
            .execute(&mut *c)
            .await?;
    }
    if !gone.is_empty() {
        bump(c).await?;
    }
    Ok(gone)
}

/// Sets arm weights of route `route_id` (the others keep theirs).
pub async fn set_weights(c: &mut DbConn, route_id: i64, weights: &[(&str, f64)]) -> Result<()> {
    for (arm, w) in weights {
        db::query("UPDATE route_arms SET weight = ? WHERE route_id = ? AND name = ?")
            .bind(w)
            .bind(route_id)
            .bind(*arm)
            .execute(&mut *c)
            .await?;
    }
    db::query("UPDATE routes SET updated_ms = ? WHERE id = ?")
        .bind(now_ms())
        .bind(route_id)
        .execute(&mut *c)
        .await?;
    bump(c).await
}

pub async fn set_canary_state(c: &mut DbConn, route_id: i64, state: CanaryState) -> Result<()> {
    db::query("UPDATE routes SET canary_state = ? WHERE id = ?")
        .bind(state.as_str())
        .bind(route_id)
        .execute(&mut *c)
        .await?;
    bump(c).await
}

/// The judge's last verdict on a route (not a route change: gateways need not reload).
pub async fn set_last_verdict(c: &mut DbConn, route_id: i64, v: &Verdict) -> Result<()> {
    db::query("UPDATE routes SET last_verdict_json = ? WHERE id = ?")
        .bind(Json(v))
        .bind(route_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn last_verdict(c: &mut DbConn, route_id: i64) -> Result<Option<Verdict>> {
    let v: Option<Option<Json<Verdict>>> =
        db::query_scalar("SELECT last_verdict_json FROM routes WHERE id = ?")
            .bind(route_id)
            .fetch_optional(&mut *c)
            .await?;
    Ok(v.flatten().map(|j| j.0))
}

/// Every route change bumps this, so running gateways reload.
async fn bump(c: &mut DbConn) -> Result<()> {
    db::query(
        "INSERT INTO meta (key, value) VALUES ('routes_rev', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)",
    )
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// What a running gateway compares every second: it changes when routes, endpoints (their
/// prices and redaction policies included), tokens, dated prices or prompt labels change.
pub async fn fingerprint(c: &mut DbConn) -> Result<String> {
    db::query_scalar(
        "SELECT coalesce((SELECT value FROM meta WHERE key = 'routes_rev'), '0')
             || '/' || coalesce((SELECT max(id) FROM prompt_label_moves), 0)
             || '/' || coalesce((SELECT max(id) FROM prices), 0)
             || '/' || coalesce((SELECT group_concat(id || status || model || base_url
                          || headers_json || timeout_ms || max_retries || has_token
                          || price_in_micros || '.' || coalesce(CAST(price_cached_micros AS TEXT), '-')
                          || '.' || price_out_micros || coalesce(redaction_json, '')
                          || '.' || coalesce(CAST(sunset_ms AS TEXT), '-') || '.' || coalesce(CAST(replacement_id AS TEXT), '-'), ';')
                        FROM endpoints), '')
             || '/' || coalesce((SELECT count(*) || '.' || max(coalesce(revoked_ms, 0))
                                 || '.' || max(id) FROM gateway_keys), '')",
    )
    .fetch_one(&mut *c)
    .await
}

pub async fn insert_event(
    c: &mut DbConn,
    route_id: i64,
    kind: &str,
    actor: &str,
    reason: &str,
    verdict: Option<&Verdict>,
) -> Result<()> {
    db::query(
        "INSERT INTO canary_events (route_id, at_ms, kind, actor, reason, verdict_json)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(route_id)
    .bind(now_ms())
    .bind(kind)
    .bind(actor)
    .bind(reason)
    .bind(verdict.map(Json))
    .execute(&mut *c)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct EventRow {
    at_ms: i64,
    kind: String,
    actor: String,
    reason: String,
}

/// A route's canary events, newest first.
pub async fn events(c: &mut DbConn, route_id: i64, limit: u32) -> Result<Vec<CanaryEvent>> {
    let rows: Vec<EventRow> = db::query_as(
        "SELECT at_ms, kind, actor, reason FROM canary_events WHERE route_id = ?
         ORDER BY id DESC LIMIT ?",
    )
    .bind(route_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CanaryEvent {
            at_ms: r.at_ms,
            kind: r.kind,
            actor: r.actor,
            reason: r.reason,
        })
        .collect())
}

// ---- keys ----------------------------------------------------------------------------------

#[derive(FromRow)]
struct KeyRow {
    id: i64,
    name: String,
    prefix: String,
    rate_per_min: Option<i64>,
    daily_budget_pico: Option<i64>,
    created_ms: i64,
    revoked_ms: Option<i64>,
}

impl From<KeyRow> for GatewayKey {
    fn from(r: KeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            rate_per_min: r.rate_per_min.map(|n| n as u32),
            daily_budget: r.daily_budget_pico.map(|p| Cost {
                pico_usd: p,
                source: milc_api::UsageSource::Reported,
            }),
            created_ms: r.created_ms,
            revoked_ms: r.revoked_ms,
        }
    }
}

pub async fn insert_key(
    c: &mut DbConn,
    name: &str,
    hash: &str,
    prefix: &str,
    rate_per_min: Option<u32>,
    daily_budget: Option<Cost>,
) -> Result<GatewayKey> {
    let id: i64 = db::query_scalar(
        "INSERT INTO gateway_keys (name, hash, prefix, rate_per_min, daily_budget_pico, created_ms)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(name)
    .bind(hash)
    .bind(prefix)
    .bind(rate_per_min.map(i64::from))
    .bind(daily_budget.map(|c| c.pico_usd))
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
    .map_err(|e| db::unique_or(e, || StoreError::DuplicateKey(name.to_owned())))?;
    Ok(keys(c)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .expect("just inserted"))
}

pub async fn keys(c: &mut DbConn) -> Result<Vec<GatewayKey>> {
    let rows: Vec<KeyRow> = db::query_as(
        "SELECT id, name, prefix, rate_per_min, daily_budget_pico, created_ms, revoked_ms
         FROM gateway_keys ORDER BY id",
    )
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Active keys with their hashes, for the gateway to check requests against.
pub async fn active_key_hashes(c: &mut DbConn) -> Result<Vec<(GatewayKey, String)>> {
    let rows: Vec<(String,)> =
        db::query_as("SELECT hash FROM gateway_keys WHERE revoked_ms IS NULL ORDER BY id")
            .fetch_all(&mut *c)
            .await?;
    let keys: Vec<GatewayKey> = keys(c)
        .await?
        .into_iter()
        .filter(|k| k.revoked_ms.is_none())
        .collect();
    Ok(keys
        .into_iter()
        .zip(rows.into_iter().map(|r| r.0))
        .collect())
}

/// Revokes key `name`; false when no active key has that name.
pub async fn revoke_key(c: &mut DbConn, name: &str) -> Result<bool> {
    let n =
        db::query("UPDATE gateway_keys SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL")
            .bind(now_ms())
            .bind(name)
            .execute(&mut *c)
            .await?
            .rows_affected();
    Ok(n > 0)
}

/// Each key's spend since `since_ms`, and whether all of it was costed from reported usage.
pub async fn key_spend(c: &mut DbConn, since_ms: i64) -> Result<Vec<(i64, i64, bool)>> {
    db::query_as(
        "SELECT g.key_id, CAST(coalesce(sum(c.cost_pico_usd), 0) AS BIGINT),
                coalesce(min(CASE WHEN c.usage_reported THEN 1
                                  WHEN NOT c.usage_reported THEN 0 END), 1) = 1
         FROM gateway_calls g JOIN calls c ON c.id = g.call_id
         WHERE g.key_id IS NOT NULL AND c.at_ms >= ? GROUP BY g.key_id",
    )
    .bind(since_ms)
    .fetch_all(&mut *c)
    .await
}

// ---- feedback and what the judge reads -----------------------------------------------------

/// The log row of a gateway call, by the id its client saw.
pub async fn call_by_public_id(c: &mut DbConn, public_id: &str) -> Result<Option<i64>> {
    db::query_scalar("SELECT call_id FROM gateway_calls WHERE public_id = ?")
        .bind(public_id)
        .fetch_optional(&mut *c)
        .await
}

pub async fn insert_feedback(
    c: &mut DbConn,
    call_id: i64,
    score: f64,
    comment: Option<&str>,
    key_id: Option<i64>,
) -> Result<()> {
    db::query(
        "INSERT INTO feedback (call_id, score, comment, key_id, at_ms) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(call_id)
    .bind(score)
    .bind(comment)
    .bind(key_id)
    .bind(now_ms())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// One gateway call as the judge sees it.
#[derive(FromRow)]
pub struct ArmCall {
    pub arm: String,
    /// Answered as another arm's fallback (not an assignment).
    pub fallback: bool,
    pub ok: bool,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub cost_pico_usd: Option<i64>,
    pub usage_reported: Option<bool>,
}

/// The calls of route `route_id` since `since_ms`.
pub async fn arm_calls(c: &mut DbConn, route_id: i64, since_ms: i64) -> Result<Vec<ArmCall>> {
    db::query_as(
        "SELECT g.arm, g.fallback_for IS NOT NULL AS fallback, c.outcome = ? AS ok,
                c.latency_ms, c.ttft_ms, c.cost_pico_usd, c.usage_reported
         FROM gateway_calls g JOIN calls c ON c.id = g.call_id
         WHERE g.route_id = ? AND c.at_ms >= ? AND c.outcome <> ?",
    )
    .bind(db::outcome_code(milc_api::Outcome::Ok))
    .bind(route_id)
    .bind(since_ms)
    .bind(db::outcome_code(milc_api::Outcome::Cancelled))
    .fetch_all(&mut *c)
    .await
}

/// Feedback scores on route `route_id`'s calls since `since_ms`, by arm.
pub async fn arm_feedback(
    c: &mut DbConn,
    route_id: i64,
    since_ms: i64,
) -> Result<Vec<(String, f64)>> {
    db::query_as(
        "SELECT g.arm, f.score FROM feedback f
         JOIN gateway_calls g ON g.call_id = f.call_id
         JOIN calls c ON c.id = f.call_id
         WHERE g.route_id = ? AND c.at_ms >= ?",
    )
    .bind(route_id)
    .bind(since_ms)
    .fetch_all(&mut *c)
    .await
}

/// Claims the canary judge's look at route `model` for now, unless a look was taken less than
/// `every_ms` ago (by this process or any other on the store): whether it is this caller's.
pub async fn claim_look(c: &mut DbConn, model: &str, now_ms: i64, every_ms: i64) -> Result<bool> {
    Ok(db::query(
        "UPDATE routes SET judged_ms = ?
         WHERE model = ? AND (judged_ms IS NULL OR judged_ms <= ?)",
    )
    .bind(now_ms)
    .bind(model)
    .bind(now_ms - every_ms)
    .execute(&mut *c)
    .await?
    .rows_affected()
        == 1)
}
