//! Every SQL statement drift needs: a subject's calls in a window (with the answer where one is
//! kept), the item scores of its scheduled evaluations, the watches and the settings.

use milc_api::lifecycle::{DriftKind, DriftSettings, DriftWatch};

use crate::db::{self, DbConn, Result, StoreError};

/// How a subject is found among the calls.
pub enum Subject {
    Endpoint(i64),
    PromptVersion(i64),
    Route(i64),
}

impl Subject {
    fn filter(&self) -> (&'static str, i64) {
        match self {
            Self::Endpoint(id) => ("c.endpoint_id = ?", *id),
            Self::PromptVersion(id) => ("c.prompt_version_id = ?", *id),
            Self::Route(id) => (
                "c.id IN (SELECT call_id FROM gateway_calls WHERE route_id = ?)",
                *id,
            ),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct CallFacts {
    pub at_ms: i64,
    pub latency_ms: i64,
    pub completion_tokens: Option<i64>,
    pub failed: bool,
    pub cost_pico_usd: Option<i64>,
    /// The answer, where a body or a run result keeps it.
    pub answer: Option<String>,
}

pub async fn calls(
    c: &mut DbConn,
    subject: &Subject,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<CallFacts>> {
    let (filter, id) = subject.filter();
    db::query_as(&format!(
        "SELECT c.at_ms, c.latency_ms, c.completion_tokens, c.outcome <> 0 AS failed,
                c.cost_pico_usd,
                coalesce(b.response_text, json_extract(r.result_json, '$.output')) AS answer
         FROM calls c
         LEFT JOIN call_bodies b ON b.call_id = c.id
         LEFT JOIN run_results r ON r.call_id = c.id
         WHERE c.at_ms >= ? AND c.at_ms < ? AND {filter}
         ORDER BY c.at_ms"
    ))
    .bind(since_ms)
    .bind(until_ms)
    .bind(id)
    .fetch_all(&mut *c)
    .await
}

/// The item results (as JSON) of the scheduled evaluations of a subject begun in a window.
pub async fn scheduled_results(
    c: &mut DbConn,
    subject: &Subject,
    endpoint_name: Option<&str>,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<String>> {
    let (filter, id) = match subject {
        Subject::PromptVersion(id) => ("u.prompt_version_id = ?", Some(*id)),
        Subject::Endpoint(_) => ("json_extract(u.spec_json, '$.endpoint') = ?", None),
        Subject::Route(_) => return Ok(Vec::new()),
    };
    let q = format!(
        "SELECT r.result_json FROM schedule_runs s
         JOIN runs u ON u.id = s.run_id
         JOIN run_results r ON r.run_id = s.run_id
         WHERE s.at_ms >= ? AND s.at_ms < ? AND r.failed = FALSE AND {filter}"
    );
    let q = db::query_scalar(&q).bind(since_ms).bind(until_ms);
    let q = match id {
        Some(id) => q.bind(id),
        None => q.bind(endpoint_name.unwrap_or_default().to_owned()),
    };
    q.fetch_all(&mut *c).await
}

pub async fn route_id(c: &mut DbConn, model: &str) -> Result<i64> {
    db::query_scalar("SELECT id FROM routes WHERE model = ?")
        .bind(model)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NoSuchRoute(model.to_owned()))
}

const SETTINGS: &str = "drift_settings";

pub async fn settings(c: &mut DbConn) -> Result<DriftSettings> {
    match db::meta(c, SETTINGS).await? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("drift settings: {e}"))),
        None => Ok(DriftSettings::default()),
    }
}

pub async fn set_settings(c: &mut DbConn, s: &DriftSettings) -> Result<()> {
    let json = serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    db::meta_put(c, SETTINGS, Some(&json)).await
}

#[derive(sqlx::FromRow)]
struct WatchRow {
    id: i64,
    kind: String,
    subject: String,
    window_ms: i64,
}

pub async fn watches(c: &mut DbConn) -> Result<Vec<DriftWatch>> {
    let rows: Vec<WatchRow> =
        db::query_as("SELECT id, kind, subject, window_ms FROM drift_watches ORDER BY id")
            .fetch_all(&mut *c)
            .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DriftWatch {
                id: r.id,
                kind: DriftKind::parse(&r.kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("drift watch kind {}", r.kind)))?,
                subject: r.subject,
                window_ms: r.window_ms,
            })
        })
        .collect()
}

/// Adds a watch, or changes the window of the one on the same subject; answers its id.
pub async fn put_watch(
    c: &mut DbConn,
    kind: DriftKind,
    subject: &str,
    window_ms: i64,
    now_ms: i64,
) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO drift_watches (kind, subject, window_ms, created_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, subject) DO UPDATE SET window_ms = excluded.window_ms
         RETURNING id",
    )
    .bind(kind.as_str())
    .bind(subject)
    .bind(window_ms)
    .bind(now_ms)
    .fetch_one(&mut *c)
    .await
}

pub async fn remove_watch(c: &mut DbConn, id: i64) -> Result<bool> {
    Ok(db::query("DELETE FROM drift_watches WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected()
        > 0)
}
