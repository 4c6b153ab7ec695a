//! Every SQL statement about requirements cards: `usecases`, `usecase_candidates`,
//! `usecase_evidence`, and the reads that gather a candidate's evidence (attached runs and load
//! tests, its live calls).

use milc_api::lifecycle::{AttachedEvidence, UseCaseSpec};
use milc_api::Params;

use crate::db::{self, unique_or, DbConn, Json, Result, StoreError};

#[derive(sqlx::FromRow)]
pub struct CardRow {
    pub id: i64,
    pub spec_json: Json<UseCaseSpec>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

pub async fn insert(c: &mut DbConn, spec: &UseCaseSpec, now_ms: i64) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO usecases (name, spec_json, created_ms, updated_ms) VALUES (?, ?, ?, ?)
         RETURNING id",
    )
    .bind(&spec.name)
    .bind(Json(spec))
    .bind(now_ms)
    .bind(now_ms)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| unique_or(e, || StoreError::DuplicateUseCase(spec.name.clone())))
}

pub async fn update(c: &mut DbConn, id: i64, spec: &UseCaseSpec, now_ms: i64) -> Result<()> {
    db::query("UPDATE usecases SET name = ?, spec_json = ?, updated_ms = ? WHERE id = ?")
        .bind(&spec.name)
        .bind(Json(spec))
        .bind(now_ms)
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(|e| unique_or(e, || StoreError::DuplicateUseCase(spec.name.clone())))?;
    Ok(())
}

pub async fn by_name(c: &mut DbConn, name: &str) -> Result<CardRow> {
    db::query_as("SELECT id, spec_json, created_ms, updated_ms FROM usecases WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NoSuchUseCase(name.to_owned()))
}

pub async fn names(c: &mut DbConn) -> Result<Vec<String>> {
    db::query_scalar("SELECT name FROM usecases ORDER BY name")
        .fetch_all(&mut *c)
        .await
}

pub async fn delete(c: &mut DbConn, id: i64) -> Result<()> {
    db::query("DELETE FROM usecases WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A candidate as stored, with its prompt version and endpoint readable.
#[derive(sqlx::FromRow)]
pub struct CandidateRow {
    pub id: i64,
    pub prompt_version_id: i64,
    pub prompt: String,
    pub version: i64,
    pub endpoint_id: i64,
    pub endpoint: String,
    pub params_json: Json<Params>,
    pub chosen: bool,
}

pub async fn candidates(c: &mut DbConn, card: i64) -> Result<Vec<CandidateRow>> {
    db::query_as(
        "SELECT k.id, k.prompt_version_id, p.name AS prompt, v.version, k.endpoint_id,
                e.name AS endpoint, k.params_json, k.chosen
         FROM usecase_candidates k
         JOIN prompt_versions v ON v.id = k.prompt_version_id
         JOIN prompts p ON p.id = v.prompt_id
         JOIN endpoints e ON e.id = k.endpoint_id
         WHERE k.usecase_id = ? ORDER BY k.id",
    )
    .bind(card)
    .fetch_all(&mut *c)
    .await
}

/// Adds a candidate (an identical one is kept, not doubled) and answers its id.
pub async fn add_candidate(
    c: &mut DbConn,
    card: i64,
    prompt_version_id: i64,
    endpoint_id: i64,
    params: &Params,
    now_ms: i64,
) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO usecase_candidates (usecase_id, prompt_version_id, endpoint_id, params_json,
                                         created_ms)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (usecase_id, prompt_version_id, endpoint_id, params_json)
         DO UPDATE SET created_ms = usecase_candidates.created_ms
         RETURNING id",
    )
    .bind(card)
    .bind(prompt_version_id)
    .bind(endpoint_id)
    .bind(Json(params))
    .bind(now_ms)
    .fetch_one(&mut *c)
    .await
}

/// Makes `candidate` the card's chosen one (and no other); false if the card has no such
/// candidate.
pub async fn choose(c: &mut DbConn, card: i64, candidate: i64) -> Result<bool> {
    let found: Option<i64> =
        db::query_scalar("SELECT id FROM usecase_candidates WHERE usecase_id = ? AND id = ?")
            .bind(card)
            .bind(candidate)
            .fetch_optional(&mut *c)
            .await?;
    if found.is_none() {
        return Ok(false);
    }
    db::query(
        "UPDATE usecase_candidates SET chosen = FALSE WHERE usecase_id = ? AND chosen = TRUE",
    )
    .bind(card)
    .execute(&mut *c)
    .await?;
    db::query("UPDATE usecase_candidates SET chosen = TRUE WHERE id = ?")
        .bind(candidate)
        .execute(&mut *c)
        .await?;
    Ok(true)
}

pub async fn remove_candidate(c: &mut DbConn, card: i64, candidate: i64) -> Result<bool> {
    Ok(
        db::query("DELETE FROM usecase_candidates WHERE usecase_id = ? AND id = ?")
            .bind(card)
            .bind(candidate)
            .execute(&mut *c)
            .await?
            .rows_affected()
            > 0,
    )
}

pub async fn attach(c: &mut DbConn, card: i64, kind: &str, id: i64, now_ms: i64) -> Result<()> {
    db::query(
        "INSERT INTO usecase_evidence (usecase_id, kind, ref_id, attached_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING",
    )
    .bind(card)
    .bind(kind)
    .bind(id)
    .bind(now_ms)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn attached(c: &mut DbConn, card: i64) -> Result<Vec<AttachedEvidence>> {
    let rows: Vec<(String, i64, i64)> = db::query_as(
        "SELECT kind, ref_id, attached_ms FROM usecase_evidence WHERE usecase_id = ?
         ORDER BY attached_ms, kind, ref_id",
    )
    .bind(card)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, id, attached_ms)| AttachedEvidence {
            kind,
            id,
            attached_ms,
        })
        .collect())
}

pub async fn loadtest_exists(c: &mut DbConn, id: i64) -> Result<bool> {
    Ok(
        db::query_scalar::<i64>("SELECT count(*) FROM loadtests WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *c)
            .await?
            > 0,
    )
}

/// An answered call of a candidate's live traffic.
#[derive(sqlx::FromRow)]
pub struct LiveCall {
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub failed: bool,
    pub cost_pico_usd: Option<i64>,
    pub usage_reported: Option<bool>,
}

/// The calls on `endpoint_id` with prompt version `pv` since `since_ms` that people and
/// services made (not runs or load tests, which are evidence of their own).
pub async fn live_calls(
    c: &mut DbConn,
    endpoint_id: i64,
    pv: i64,
    since_ms: i64,
) -> Result<Vec<LiveCall>> {
    let (run, load) = (
        db::source_code(milc_api::CallSource::Run),
        db::source_code(milc_api::CallSource::Loadtest),
    );
    db::query_as(
        "SELECT latency_ms, ttft_ms, outcome <> 0 AS failed, cost_pico_usd, usage_reported
         FROM calls
         WHERE endpoint_id = ? AND prompt_version_id = ? AND at_ms >= ?
           AND source NOT IN (?, ?)",
    )
    .bind(endpoint_id)
    .bind(pv)
    .bind(since_ms)
    .bind(run)
    .bind(load)
    .fetch_all(&mut *c)
    .await
}
