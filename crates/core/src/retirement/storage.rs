//! What still refers to an endpoint or a prompt version, read across the domains' tables
//! (prompt versions and labels, gateway arms, comparison variants, use-case candidates,
//! schedules, budgets, drift watches, endpoints that name a replacement) and its recent calls by
//! source. Every SQL statement of the "still used by" report; nothing here writes.

use crate::db::{self, DbConn, Result};

/// What a report is about, as the tables that point at it spell it.
#[derive(Clone, Copy)]
pub enum On {
    /// An endpoint, by row id.
    Endpoint(i64),
    /// A prompt version, by row id.
    Version(i64),
}

impl On {
    /// The column of `usecase_candidates`, `schedules` and `calls` that points at it.
    fn column(self) -> (&'static str, i64) {
        match self {
            Self::Endpoint(id) => ("endpoint_id", id),
            Self::Version(id) => ("prompt_version_id", id),
        }
    }
}

/// Prompt versions whose default endpoint is `endpoint` (by name): (prompt, version).
pub async fn versions_defaulting_to(c: &mut DbConn, endpoint: &str) -> Result<Vec<(String, i64)>> {
    db::query_as(
        "SELECT p.name, v.version FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
         WHERE json_extract(v.content_json, '$.endpoint') = ?
         ORDER BY p.name, v.version",
    )
    .bind(endpoint)
    .fetch_all(&mut *c)
    .await
}

/// Labels pointing at a version whose default endpoint is `endpoint`: (prompt, label, version).
pub async fn labels_defaulting_to(
    c: &mut DbConn,
    endpoint: &str,
) -> Result<Vec<(String, String, i64)>> {
    db::query_as(
        "SELECT p.name, l.label, v.version FROM prompt_labels l
         JOIN prompt_versions v ON v.id = l.version_id
         JOIN prompts p ON p.id = l.prompt_id
         WHERE json_extract(v.content_json, '$.endpoint') = ?
         ORDER BY p.name, l.label",
    )
    .bind(endpoint)
    .fetch_all(&mut *c)
    .await
}

/// Labels pointing at prompt version `version_id`: (prompt, label, version).
pub async fn labels_on_version(
    c: &mut DbConn,
    version_id: i64,
) -> Result<Vec<(String, String, i64)>> {
    db::query_as(
        "SELECT p.name, l.label, v.version FROM prompt_labels l
         JOIN prompt_versions v ON v.id = l.version_id
         JOIN prompts p ON p.id = l.prompt_id
         WHERE l.version_id = ?
         ORDER BY l.label",
    )
    .bind(version_id)
    .fetch_all(&mut *c)
    .await
}

/// Gateway arms on endpoint `id`: (route model, arm).
pub async fn arms_on_endpoint(c: &mut DbConn, id: i64) -> Result<Vec<(String, String)>> {
    db::query_as(
        "SELECT r.model, a.name FROM route_arms a JOIN routes r ON r.id = a.route_id
         WHERE a.endpoint_id = ?
         ORDER BY r.position, a.position",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
}

/// Gateway arms that send a prompt version: (route model, arm, prompt reference as written).
pub async fn arms_with_prompts(c: &mut DbConn) -> Result<Vec<(String, String, String)>> {
    db::query_as(
        "SELECT r.model, a.name, a.prompt FROM route_arms a JOIN routes r ON r.id = a.route_id
         WHERE a.prompt IS NOT NULL
         ORDER BY r.position, a.position",
    )
    .fetch_all(&mut *c)
    .await
}

/// Comparison variants on it: (comparison, variant label). Variants name their endpoint.
pub async fn comparison_variants(
    c: &mut DbConn,
    on: On,
    endpoint: &str,
) -> Result<Vec<(String, String)>> {
    let q = match on {
        On::Endpoint(_) => db::query_as(
            "SELECT c.name, v.label FROM comparison_variants v
             JOIN comparisons c ON c.id = v.comparison_id
             WHERE v.endpoint = ? ORDER BY c.name, v.idx",
        )
        .bind(endpoint),
        On::Version(id) => db::query_as(
            "SELECT c.name, v.label FROM comparison_variants v
             JOIN comparisons c ON c.id = v.comparison_id
             WHERE v.prompt_version_id = ? ORDER BY c.name, v.idx",
        )
        .bind(id),
    };
    q.fetch_all(&mut *c).await
}

/// Use cases with a candidate on it: (card, whether such a candidate is the chosen one).
pub async fn usecases(c: &mut DbConn, on: On) -> Result<Vec<(String, bool)>> {
    let (column, id) = on.column();
    db::query_as(&format!(
        "SELECT u.name, max(CASE WHEN k.chosen THEN 1 ELSE 0 END) = 1 FROM usecase_candidates k
         JOIN usecases u ON u.id = k.usecase_id
         WHERE k.{column} = ? GROUP BY u.id ORDER BY u.name"
    ))
    .bind(id)
    .fetch_all(&mut *c)
    .await
}

/// Scheduled evaluations that call it, by name.
pub async fn schedules(c: &mut DbConn, on: On) -> Result<Vec<String>> {
    let (column, id) = on.column();
    db::query_scalar(&format!(
        "SELECT name FROM schedules WHERE {column} = ? ORDER BY name"
    ))
    .bind(id)
    .fetch_all(&mut *c)
    .await
}

/// The windows (ms) of the drift watches of `kind` on `subject`.
pub async fn drift_watches(c: &mut DbConn, kind: &str, subject: &str) -> Result<Vec<i64>> {
    db::query_scalar(
        "SELECT window_ms FROM drift_watches WHERE kind = ? AND subject = ? ORDER BY window_ms",
    )
    .bind(kind)
    .bind(subject)
    .fetch_all(&mut *c)
    .await
}

/// Endpoints not yet retired that name endpoint `id` as their replacement, by name.
pub async fn replaced_by(c: &mut DbConn, id: i64) -> Result<Vec<String>> {
    db::query_scalar(
        "SELECT name FROM endpoints WHERE replacement_id = ? AND status != 'retired'
         ORDER BY name",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
}

/// Calls on it since `since_ms`, by source code.
pub async fn calls_by_source(c: &mut DbConn, on: On, since_ms: i64) -> Result<Vec<(i64, i64)>> {
    let (column, id) = on.column();
    db::query_as(&format!(
        "SELECT source, count(*) FROM calls WHERE {column} = ? AND at_ms >= ?
         GROUP BY source ORDER BY source"
    ))
    .bind(id)
    .bind(since_ms)
    .fetch_all(&mut *c)
    .await
}
