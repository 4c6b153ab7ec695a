//! The `samples` table: what the sample project created.

use crate::db::{self, DbConn, Result};

pub async fn mark(c: &mut DbConn, kind: &str, id: i64) -> Result<()> {
    db::query("INSERT INTO samples (kind, id) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(kind)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn samples(c: &mut DbConn) -> Result<Vec<(String, i64)>> {
    db::query_as("SELECT kind, id FROM samples ORDER BY kind, id")
        .fetch_all(&mut *c)
        .await
}

pub async fn clear(c: &mut DbConn) -> Result<()> {
    db::query("DELETE FROM samples").execute(&mut *c).await?;
    Ok(())
}
