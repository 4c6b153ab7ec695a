//! The `samples` table: what the sample project created.

use sqlx::SqliteConnection;

use crate::db::Result;

pub async fn mark(c: &mut SqliteConnection, kind: &str, id: i64) -> Result<()> {
    sqlx::query("INSERT OR IGNORE INTO samples (kind, id) VALUES (?, ?)")
        .bind(kind)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn samples(c: &mut SqliteConnection) -> Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT kind, id FROM samples ORDER BY kind, id")
            .fetch_all(&mut *c)
            .await?,
    )
}

pub async fn clear(c: &mut SqliteConnection) -> Result<()> {
    sqlx::query("DELETE FROM samples").execute(&mut *c).await?;
    Ok(())
}
