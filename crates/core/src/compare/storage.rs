//! The comparison tables: every SQL statement about comparisons, their variants and votes.

use milc_api::compare::{ComparisonSpec, CriteriaScores, Verdict};

use crate::db::{self, now_ms, DbConn, Json, Result, StoreError};

/// One stored vote.
#[derive(sqlx::FromRow)]
pub struct VoteRow {
    pub item_idx: i64,
    pub left_idx: i64,
    pub right_idx: i64,
    pub verdict: String,
    pub rater: String,
    pub source: String,
    pub comment: Option<String>,
    pub criteria_json: Option<String>,
    pub at_ms: i64,
}

/// Inserts a vote, or replaces the same rater's vote on the same pair shown the same way.
const UPSERT_VOTE: &str = "INSERT INTO votes (comparison_id, item_idx, left_idx, right_idx,
     verdict, rater, source, comment, criteria_json, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (comparison_id, rater, item_idx, left_idx, right_idx) DO UPDATE SET
     verdict = excluded.verdict, source = excluded.source, comment = excluded.comment,
     criteria_json = excluded.criteria_json, at_ms = excluded.at_ms";

/// Records (or replaces) one vote: `(item, left, right)` as shown, by `(rater, source)`.
pub async fn upsert_vote(
    c: &mut DbConn,
    comparison: i64,
    (item, left, right): (u64, u32, u32),
    verdict: Verdict,
    (rater, source): (&str, &str),
    comment: Option<&str>,
    criteria: Option<&CriteriaScores>,
) -> Result<()> {
    db::query(UPSERT_VOTE)
        .bind(comparison)
        .bind(item as i64)
        .bind(i64::from(left))
        .bind(i64::from(right))
        .bind(verdict.as_str())
        .bind(rater)
        .bind(source)
        .bind(comment)
        .bind(criteria.map(Json))
        .bind(now_ms())
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn comparison_id(c: &mut DbConn, name: &str) -> Result<Option<i64>> {
    db::query_scalar("SELECT id FROM comparisons WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *c)
        .await
}

/// Stores a comparison and its variants: `(label, prompt version id)` each, their endpoints
/// and parameters from the spec.
pub async fn insert_comparison(
    c: &mut DbConn,
    spec: &ComparisonSpec,
    dataset_version_id: i64,
    seed: u64,
    variants: &[(String, i64)],
) -> Result<i64> {
    let id = db::query(
        "INSERT INTO comparisons (name, dataset_version_id, spec_json, seed, created_ms)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&spec.name)
    .bind(dataset_version_id)
    .bind(Json(spec))
    .bind(seed as i64)
    .bind(now_ms())
    .returning_id(&mut *c)
    .await?
    .unwrap_or_default();
    for (i, ((label, version_id), v)) in variants.iter().zip(&spec.variants).enumerate() {
        db::query(
            "INSERT INTO comparison_variants
             (comparison_id, idx, label, prompt_version_id, endpoint, params_json)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(i as i64)
        .bind(label)
        .bind(version_id)
        .bind(&v.endpoint)
        .bind(Json(&v.params))
        .execute(&mut *c)
        .await?;
    }
    Ok(id)
}

/// A comparison as stored.
#[derive(sqlx::FromRow)]
pub struct ComparisonRow {
    pub id: i64,
    pub dataset_version_id: i64,
    pub spec_json: String,
    pub seed: i64,
    pub created_ms: i64,
}

pub async fn comparison_row(c: &mut DbConn, name: &str) -> Result<ComparisonRow> {
    db::query_as(
        "SELECT id, dataset_version_id, spec_json, seed, created_ms FROM comparisons
         WHERE name = ?",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::NoSuchComparison(name.to_owned()))
}

/// One variant as stored, with its prompt version named and its run's status.
#[derive(sqlx::FromRow)]
pub struct VariantRow {
    pub idx: i64,
    pub label: String,
    pub prompt: String,
    pub version: i64,
    pub endpoint: String,
    pub params_json: String,
    pub run_id: Option<i64>,
    pub status: Option<String>,
    pub lineage: Option<db::Json<milc_api::Lineage>>,
}

pub async fn variant_rows(c: &mut DbConn, comparison: i64) -> Result<Vec<VariantRow>> {
    db::query_as(
        "SELECT v.idx, v.label, p.name AS prompt, pv.version, v.endpoint, v.params_json,
                v.run_id, r.status, e.lineage_json AS lineage
         FROM comparison_variants v
         JOIN prompt_versions pv ON pv.id = v.prompt_version_id
         JOIN prompts p ON p.id = pv.prompt_id
         LEFT JOIN runs r ON r.id = v.run_id
         LEFT JOIN endpoints e ON e.name = v.endpoint
         WHERE v.comparison_id = ? ORDER BY v.idx",
    )
    .bind(comparison)
    .fetch_all(&mut *c)
    .await
}

/// Every comparison's name, newest first.
pub async fn comparison_names(c: &mut DbConn) -> Result<Vec<String>> {
    db::query_scalar("SELECT name FROM comparisons ORDER BY id DESC")
        .fetch_all(&mut *c)
        .await
}

pub async fn set_variant_run(
    c: &mut DbConn,
    comparison: i64,
    variant: u32,
    run: i64,
) -> Result<()> {
    db::query("UPDATE comparison_variants SET run_id = ? WHERE comparison_id = ? AND idx = ?")
        .bind(run)
        .bind(comparison)
        .bind(i64::from(variant))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// How many tasks `rater` has voted on (people's votes only).
pub async fn human_votes_by(c: &mut DbConn, comparison: i64, rater: &str) -> Result<u64> {
    let n: i64 = db::query_scalar(
        "SELECT count(*) FROM votes WHERE comparison_id = ? AND rater = ? AND source = 'human'",
    )
    .bind(comparison)
    .bind(rater)
    .fetch_one(&mut *c)
    .await?;
    Ok(n as u64)
}

/// `rater`'s vote on one task: (verdict, comment, criteria JSON).
pub async fn ballot(
    c: &mut DbConn,
    comparison: i64,
    rater: &str,
    (item, left, right): (u64, u32, u32),
) -> Result<Option<(String, Option<String>, Option<String>)>> {
    db::query_as(
        "SELECT verdict, comment, criteria_json FROM votes WHERE comparison_id = ?
         AND rater = ? AND source = 'human' AND item_idx = ? AND left_idx = ? AND right_idx = ?",
    )
    .bind(comparison)
    .bind(rater)
    .bind(item as i64)
    .bind(i64::from(left))
    .bind(i64::from(right))
    .fetch_optional(&mut *c)
    .await
}

/// Every vote of a comparison, in the order cast.
pub async fn votes(c: &mut DbConn, comparison: i64) -> Result<Vec<VoteRow>> {
    db::query_as(
        "SELECT item_idx, left_idx, right_idx, verdict, rater, source, comment,
                criteria_json, at_ms
         FROM votes WHERE comparison_id = ? ORDER BY id",
    )
    .bind(comparison)
    .fetch_all(&mut *c)
    .await
}

/// The (item, left, right) a rater has already voted on, in the order shown.
pub async fn judged(c: &mut DbConn, comparison: i64, rater: &str) -> Result<Vec<(i64, i64, i64)>> {
    db::query_as(
        "SELECT item_idx, left_idx, right_idx FROM votes WHERE comparison_id = ? AND rater = ?",
    )
    .bind(comparison)
    .bind(rater)
    .fetch_all(&mut *c)
    .await
}

/// Deletes comparison `id` with its variants and votes (the runs that answered it stay).
pub async fn delete_comparison(c: &mut DbConn, id: i64) -> Result<()> {
    for sql in [
        "DELETE FROM votes WHERE comparison_id = ?",
        "DELETE FROM comparison_variants WHERE comparison_id = ?",
        "DELETE FROM comparisons WHERE id = ?",
    ] {
        db::query(sql).bind(id).execute(&mut *c).await?;
    }
    Ok(())
}
