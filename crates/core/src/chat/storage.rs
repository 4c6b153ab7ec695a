//! The Playground's history (also `milc chat`'s) and the request/response bodies kept with the
//! call log: every SQL statement about them. What reaches these tables has already been
//! redacted by `Console::chat`.

use milc_api::prompt::{CallBody, HistoryEntry};

use crate::db::{self, DbConn, Json, Result as StoreResult, StoreError};

/// The text a history search looks in: inputs, variable values, output, endpoint and prompt.
fn search_text(e: &HistoryEntry) -> String {
    let mut s = String::new();
    for m in &e.messages {
        s.push_str(&m.content);
        s.push('\n');
    }
    for (k, v) in &e.variables {
        s.push_str(k);
        s.push(' ');
        s.push_str(v);
        s.push('\n');
    }
    s.push_str(&e.output);
    s.push('\n');
    s.push_str(&e.endpoint);
    if let Some(p) = &e.prompt {
        s.push('\n');
        s.push_str(&p.to_string());
    }
    s.to_lowercase()
}

fn like_pattern(term: &str) -> String {
    let mut p = String::from("%");
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

pub async fn insert_history(
    c: &mut DbConn,
    entry: &HistoryEntry,
    prompt_version_id: Option<i64>,
) -> StoreResult<i64> {
    Ok(db::query(
        "INSERT INTO history (at_ms, call_id, prompt_version_id, entry_json, search)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(entry.at_ms)
    .bind(entry.call_id)
    .bind(prompt_version_id)
    .bind(Json(entry))
    .bind(search_text(entry))
    .returning_id(&mut *c)
    .await?
    .unwrap_or_default())
}

/// The newest `limit` entries whose text holds every word of `search` (any case), newest
/// first.
pub async fn history(c: &mut DbConn, search: &str, limit: u32) -> StoreResult<Vec<HistoryEntry>> {
    let terms: Vec<String> = search
        .split_whitespace()
        .map(|t| like_pattern(&t.to_lowercase()))
        .collect();
    let mut sql = String::from("SELECT id, entry_json FROM history");
    for (i, _) in terms.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str("search LIKE ? ESCAPE '\\'");
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    let mut q = db::query_as::<(i64, String)>(&sql);
    for t in &terms {
        q = q.bind(t);
    }
    q.bind(limit as i64)
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|(id, json)| entry_from(id, &json))
        .collect()
}

pub async fn history_entry(c: &mut DbConn, id: i64) -> StoreResult<Option<HistoryEntry>> {
    let row: Option<String> = db::query_scalar("SELECT entry_json FROM history WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    row.map(|json| entry_from(id, &json)).transpose()
}

pub async fn insert_call_body(c: &mut DbConn, body: &CallBody) -> StoreResult<()> {
    db::query("INSERT INTO call_bodies (call_id, request_json, response_text) VALUES (?, ?, ?)")
        .bind(body.call_id)
        .bind(body.request.to_string())
        .bind(&body.response)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn call_body(c: &mut DbConn, call_id: i64) -> StoreResult<Option<CallBody>> {
    let row: Option<(String, String)> =
        db::query_as("SELECT request_json, response_text FROM call_bodies WHERE call_id = ?")
            .bind(call_id)
            .fetch_optional(&mut *c)
            .await?;
    row.map(|(request, response)| {
        Ok(CallBody {
            call_id,
            request: serde_json::from_str(&request)
                .map_err(|e| StoreError::Corrupt(format!("body of call {call_id}: {e}")))?,
            response,
        })
    })
    .transpose()
}

fn entry_from(id: i64, json: &str) -> StoreResult<HistoryEntry> {
    let mut e: HistoryEntry = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("history entry {id}: {e}")))?;
    e.id = id;
    Ok(e)
}
