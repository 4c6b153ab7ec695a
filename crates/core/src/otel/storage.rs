//! The export's settings: every SQL statement about `otel_export` (one row at most). Header
//! values are never here; they live in the OS keyring.

use crate::db::{self, DbConn, Json, Result};

/// The stored row: the collector as typed, the header names, and when it last changed (strictly
/// increasing, so a process that polls it sees every change).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Settings {
    pub endpoint: String,
    pub headers: Json<Vec<String>>,
    pub updated_ms: i64,
}

pub async fn get(c: &mut DbConn) -> Result<Option<Settings>> {
    db::query_as(
        "SELECT endpoint, headers_json AS headers, updated_ms FROM otel_export WHERE id = 1",
    )
    .fetch_optional(&mut *c)
    .await
}

/// Stores the settings, replacing any; returns them as stored.
pub async fn put(
    c: &mut DbConn,
    endpoint: &str,
    headers: &[String],
    now_ms: i64,
) -> Result<Settings> {
    db::query_as(
        "INSERT INTO otel_export (id, endpoint, headers_json, updated_ms)
         VALUES (1, ?, ?, max(?, coalesce((SELECT updated_ms + 1 FROM otel_export WHERE id = 1), 0)))
         ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint,
             headers_json = excluded.headers_json, updated_ms = excluded.updated_ms
         RETURNING endpoint, headers_json AS headers, updated_ms",
    )
    .bind(endpoint)
    .bind(Json(headers))
    .bind(now_ms)
    .fetch_one(&mut *c)
    .await
}

/// Removes the settings; answers whether there were any.
pub async fn clear(c: &mut DbConn) -> Result<bool> {
    Ok(db::query("DELETE FROM otel_export WHERE id = 1")
        .execute(&mut *c)
        .await?
        .rows_affected()
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Store;

    #[tokio::test]
    async fn settings_round_trip_and_each_change_is_later_than_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("milc.db")).await.unwrap();
        let mut c = store.read().await.unwrap();
        assert_eq!(get(&mut c).await.unwrap(), None);
        let a = put(&mut c, "http://127.0.0.1:4318", &["x-team".into()], 1_000)
            .await
            .unwrap();
        assert_eq!(a.headers.0, ["x-team"]);
        // The same millisecond (or a clock that went back) still counts as a change.
        let b = put(&mut c, "http://127.0.0.1:4319", &[], 1_000)
            .await
            .unwrap();
        assert_eq!(b.updated_ms, 1_001);
        assert_eq!(get(&mut c).await.unwrap(), Some(b));
        assert!(clear(&mut c).await.unwrap());
        assert!(!clear(&mut c).await.unwrap());
        assert_eq!(get(&mut c).await.unwrap(), None);
    }
}
