//! The prompt tables: every SQL statement about prompts, versions and labels. Versions are
//! immutable (triggers refuse UPDATE and DELETE); a label move is recorded with who made it.

use std::collections::HashMap;

use milc_api::prompt::{
    LabelMove, NewVersion, Pick, PromptDetail, PromptRef, PromptSummary, PromptVersion, Saved,
};
use sqlx::FromRow;

use super::content_hash;
use crate::db::{self, now_ms, DbConn, Json, Result as StoreResult, StoreError};

#[derive(FromRow)]
struct VersionRow {
    id: i64,
    prompt_id: i64,
    name: String,
    version: i64,
    content_json: String,
    hash: String,
    note: String,
    author: String,
    created_ms: i64,
}

const VERSION_SELECT: &str = "SELECT v.id, v.prompt_id, p.name, v.version, v.content_json,
        v.hash, v.note, v.author, v.created_ms
     FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id";

impl VersionRow {
    fn into_version(self, labels: Vec<String>) -> StoreResult<PromptVersion> {
        let content = serde_json::from_str(&self.content_json).map_err(|e| {
            StoreError::Corrupt(format!("prompt {}@{}: {e}", self.name, self.version))
        })?;
        Ok(PromptVersion {
            prompt: self.name,
            version: self.version as u32,
            hash: self.hash,
            note: self.note,
            author: self.author,
            created_ms: self.created_ms,
            labels,
            content,
        })
    }
}

pub async fn prompt_id(c: &mut DbConn, name: &str) -> StoreResult<Option<i64>> {
    db::query_scalar("SELECT id FROM prompts WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *c)
        .await
}

async fn labels_by_version(
    c: &mut DbConn,
    prompt_id: i64,
) -> StoreResult<HashMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String)> = db::query_as(
        "SELECT version_id, label FROM prompt_labels WHERE prompt_id = ? ORDER BY label",
    )
    .bind(prompt_id)
    .fetch_all(&mut *c)
    .await?;
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for (v, l) in rows {
        out.entry(v).or_default().push(l);
    }
    Ok(out)
}

async fn version_with_labels(c: &mut DbConn, row: VersionRow) -> StoreResult<PromptVersion> {
    let labels = labels_by_version(c, row.prompt_id)
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    row.into_version(labels)
}

/// Stores a new version, creating the prompt when `create` (which then must not exist yet).
/// Identical content (by hash) to any existing version of the prompt stores nothing and
/// returns that version with `created: false`.
pub async fn save_version(
    c: &mut DbConn,
    nv: &NewVersion,
    create: bool,
    author: &str,
) -> StoreResult<Saved> {
    let hash = content_hash(&nv.content);
    let existing: Option<i64> = db::query_scalar("SELECT id FROM prompts WHERE name = ?")
        .bind(&nv.prompt)
        .fetch_optional(&mut *c)
        .await?;
    let prompt_id = match (existing, create) {
        (Some(_), true) => return Err(StoreError::DuplicatePrompt(nv.prompt.clone())),
        (None, false) => return Err(StoreError::NoSuchPrompt(nv.prompt.clone())),
        (Some(id), false) => id,
        (None, true) => {
            db::query("INSERT INTO prompts (name, description, created_ms) VALUES (?, ?, ?)")
                .bind(&nv.prompt)
                .bind(nv.description.as_deref().unwrap_or(""))
                .bind(now_ms())
                .returning_id(&mut *c)
                .await?
                .unwrap_or_default()
        }
    };
    let same: Option<i64> =
        db::query_scalar("SELECT version FROM prompt_versions WHERE prompt_id = ? AND hash = ?")
            .bind(prompt_id)
            .bind(&hash)
            .fetch_optional(&mut *c)
            .await?;
    let created = same.is_none();
    let version = match same {
        Some(v) => v,
        None => {
            let next: i64 = db::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions WHERE prompt_id = ?",
            )
            .bind(prompt_id)
            .fetch_one(&mut *c)
            .await?;
            db::query(
                "INSERT INTO prompt_versions (prompt_id, version, content_json, hash, note,
                     author, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(prompt_id)
            .bind(next)
            .bind(Json(&nv.content))
            .bind(&hash)
            .bind(&nv.note)
            .bind(author)
            .bind(now_ms())
            .execute(&mut *c)
            .await?;
            next
        }
    };
    let version = resolve(
        c,
        &PromptRef {
            name: nv.prompt.clone(),
            pick: Pick::Version(version as u32),
        },
    )
    .await?;
    Ok(Saved { version, created })
}

/// The version a reference names.
pub async fn resolve(c: &mut DbConn, r: &PromptRef) -> StoreResult<PromptVersion> {
    let prompt_id = prompt_id(c, &r.name)
        .await?
        .ok_or_else(|| StoreError::NoSuchPrompt(r.name.clone()))?;
    let sql = match &r.pick {
        Pick::Latest => {
            format!("{VERSION_SELECT} WHERE v.prompt_id = ? ORDER BY v.version DESC LIMIT 1")
        }
        Pick::Version(_) => format!("{VERSION_SELECT} WHERE v.prompt_id = ? AND v.version = ?"),
        Pick::Label(_) => format!(
            "{VERSION_SELECT} JOIN prompt_labels l ON l.version_id = v.id
             WHERE l.prompt_id = ? AND l.label = ?"
        ),
    };
    let q = db::query_as::<VersionRow>(&sql).bind(prompt_id);
    let q = match &r.pick {
        Pick::Latest => q,
        Pick::Version(n) => q.bind(*n as i64),
        Pick::Label(l) => q.bind(l.as_str()),
    };
    let row = q
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NoSuchPrompt(r.to_string()))?;
    version_with_labels(c, row).await
}

#[derive(FromRow)]
struct SummaryRow {
    id: i64,
    name: String,
    description: String,
    latest: i64,
    updated_ms: i64,
}

#[derive(FromRow)]
struct MoveRow {
    label: String,
    from_version: Option<i64>,
    to_version: i64,
    author: String,
    at_ms: i64,
}

/// Every prompt, by name.
pub async fn prompts(c: &mut DbConn) -> StoreResult<Vec<PromptSummary>> {
    let rows: Vec<SummaryRow> = db::query_as(
        "SELECT p.id, p.name, p.description, MAX(v.version) AS latest,
                MAX(v.created_ms) AS updated_ms
         FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id
         GROUP BY p.id ORDER BY p.name",
    )
    .fetch_all(&mut *c)
    .await?;
    let labels: Vec<(i64, String, i64)> = db::query_as(
        "SELECT l.prompt_id, l.label, v.version
         FROM prompt_labels l JOIN prompt_versions v ON v.id = l.version_id",
    )
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PromptSummary {
            name: r.name,
            description: r.description,
            latest: r.latest as u32,
            updated_ms: r.updated_ms,
            labels: labels
                .iter()
                .filter(|(p, ..)| *p == r.id)
                .map(|(_, l, v)| (l.clone(), *v as u32))
                .collect(),
        })
        .collect())
}

/// A prompt with its versions and label history, newest first.
pub async fn prompt(c: &mut DbConn, name: &str) -> StoreResult<PromptDetail> {
    let summary = prompts(c)
        .await?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| StoreError::NoSuchPrompt(name.to_owned()))?;
    let prompt_id = prompt_id(c, name).await?.expect("listed above");
    let mut labels = labels_by_version(c, prompt_id).await?;
    let rows = db::query_as::<VersionRow>(&format!(
        "{VERSION_SELECT} WHERE v.prompt_id = ? ORDER BY v.version DESC"
    ))
    .bind(prompt_id)
    .fetch_all(&mut *c)
    .await?;
    let versions = rows
        .into_iter()
        .map(|r| {
            let l = labels.remove(&r.id).unwrap_or_default();
            r.into_version(l)
        })
        .collect::<StoreResult<_>>()?;
    let moves: Vec<MoveRow> = db::query_as(
        "SELECT m.label, f.version AS from_version, t.version AS to_version, m.author, m.at_ms
         FROM prompt_label_moves m
         LEFT JOIN prompt_versions f ON f.id = m.from_version_id
         JOIN prompt_versions t ON t.id = m.to_version_id
         WHERE m.prompt_id = ? ORDER BY m.id DESC",
    )
    .bind(prompt_id)
    .fetch_all(&mut *c)
    .await?;
    Ok(PromptDetail {
        summary,
        versions,
        label_history: moves
            .into_iter()
            .map(|m| LabelMove {
                label: m.label,
                from: m.from_version.map(|v| v as u32),
                to: m.to_version as u32,
                author: m.author,
                at_ms: m.at_ms,
            })
            .collect(),
    })
}

/// Points `label` at version `version`, recording the move. `None` when it already pointed
/// there (nothing is recorded).
pub async fn set_label(
    c: &mut DbConn,
    name: &str,
    version: u32,
    label: &str,
    who: &str,
) -> StoreResult<Option<LabelMove>> {
    let target: Option<(i64, i64)> = db::query_as(
        "SELECT v.prompt_id, v.id FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
         WHERE p.name = ? AND v.version = ?",
    )
    .bind(name)
    .bind(version as i64)
    .fetch_optional(&mut *c)
    .await?;
    let (prompt_id, to_id) =
        target.ok_or_else(|| StoreError::NoSuchPrompt(format!("{name}@{version}")))?;
    let from: Option<(i64, i64)> = db::query_as(
        "SELECT v.id, v.version FROM prompt_labels l JOIN prompt_versions v ON v.id = l.version_id
         WHERE l.prompt_id = ? AND l.label = ?",
    )
    .bind(prompt_id)
    .bind(label)
    .fetch_optional(&mut *c)
    .await?;
    if from.is_some_and(|(id, _)| id == to_id) {
        return Ok(None);
    }
    let at_ms = now_ms();
    db::query(
        "INSERT INTO prompt_labels (prompt_id, label, version_id) VALUES (?, ?, ?)
         ON CONFLICT (prompt_id, label) DO UPDATE SET version_id = excluded.version_id",
    )
    .bind(prompt_id)
    .bind(label)
    .bind(to_id)
    .execute(&mut *c)
    .await?;
    db::query(
        "INSERT INTO prompt_label_moves (prompt_id, label, from_version_id, to_version_id,
             author, at_ms) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(prompt_id)
    .bind(label)
    .bind(from.map(|(id, _)| id))
    .bind(to_id)
    .bind(who)
    .bind(at_ms)
    .execute(&mut *c)
    .await?;
    Ok(Some(LabelMove {
        label: label.to_owned(),
        from: from.map(|(_, v)| v as u32),
        to: version,
        author: who.to_owned(),
        at_ms,
    }))
}

/// Deletes prompt `id` with its versions, labels and their history. Only a sample prompt's
/// versions can go (a trigger keeps every other version).
pub async fn delete_prompt(c: &mut DbConn, id: i64) -> StoreResult<()> {
    for sql in [
        // Calls and Playground history made with its versions keep their figures, not the pin.
        "UPDATE history SET prompt_version_id = NULL WHERE prompt_version_id IN
             (SELECT id FROM prompt_versions WHERE prompt_id = ?)",
        "UPDATE calls SET prompt_version_id = NULL WHERE prompt_version_id IN
             (SELECT id FROM prompt_versions WHERE prompt_id = ?)",
        "DELETE FROM prompt_label_moves WHERE prompt_id = ?",
        "DELETE FROM prompt_labels WHERE prompt_id = ?",
        "DELETE FROM prompt_versions WHERE prompt_id = ?",
        "DELETE FROM prompts WHERE id = ?",
    ] {
        db::query(sql).bind(id).execute(&mut *c).await?;
    }
    Ok(())
}
