//! The `activity` table: every SQL statement about who did what.

use milc_api::workspace::Activity;
use sqlx::FromRow;

use crate::db::{self, DbConn, Result};

pub async fn insert(c: &mut DbConn, a: &Activity) -> Result<()> {
    db::query("INSERT INTO activity (at_ms, author, action, subject) VALUES (?, ?, ?, ?)")
        .bind(a.at_ms)
        .bind(&a.author)
        .bind(&a.action)
        .bind(&a.subject)
        .execute(c)
        .await?;
    Ok(())
}

#[derive(FromRow)]
struct Row {
    at_ms: i64,
    author: String,
    action: String,
    subject: String,
}

/// The newest `limit` changes, newest first.
pub async fn recent(c: &mut DbConn, limit: u32) -> Result<Vec<Activity>> {
    let rows: Vec<Row> = db::query_as(
        "SELECT at_ms, author, action, subject FROM activity ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Activity {
            at_ms: r.at_ms,
            author: r.author,
            action: r.action,
            subject: r.subject,
        })
        .collect())
}

/// The newest change's id (0: none yet).
pub async fn last_id(c: &mut DbConn) -> Result<i64> {
    db::query_scalar("SELECT coalesce(max(id), 0) FROM activity")
        .fetch_one(c)
        .await
}

/// The changes noted after `id`.
pub async fn ids_after(c: &mut DbConn, id: i64) -> Result<Vec<i64>> {
    db::query_scalar("SELECT id FROM activity WHERE id > ? ORDER BY id")
        .bind(id)
        .fetch_all(c)
        .await
}

pub async fn delete(c: &mut DbConn, id: i64) -> Result<()> {
    db::query("DELETE FROM activity WHERE id = ?")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}
