//! The dataset tables: every SQL statement about datasets, their versions and items.

use std::io::Write;

use futures_util::TryStreamExt;
use milc_api::dataset::{DatasetItem, DatasetVersion, Imported};

use super::{item_json, items_hash, variables, write_csv, Format};
use crate::db::{self, now_ms, DbConn, Json, Result as StoreResult, StoreError};
use crate::Error;

/// Stores `items` as a version of dataset `name` (created on first import), in one
/// transaction. The same content again stores nothing and returns the existing version.
pub async fn import_dataset(
    c: &mut DbConn,
    name: &str,
    items: &[DatasetItem],
    source: &str,
) -> StoreResult<Imported> {
    let hash = items_hash(items);
    let dataset_id: i64 = db::query_scalar(
        "INSERT INTO datasets (name, created_ms) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
    )
    .bind(name)
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await?;
    let existing: Option<i64> =
        db::query_scalar("SELECT id FROM dataset_versions WHERE dataset_id = ? AND hash = ?")
            .bind(dataset_id)
            .bind(&hash)
            .fetch_optional(&mut *c)
            .await?;
    let created = existing.is_none();
    // The newest import is the current version: its time is after every earlier import's of
    // this name, even within the same millisecond.
    let imported_ms: i64 = db::query_scalar(
        "SELECT max(?, coalesce(max(imported_ms), 0) + 1) FROM dataset_versions
         WHERE dataset_id = ?",
    )
    .bind(now_ms())
    .bind(dataset_id)
    .fetch_one(&mut *c)
    .await?;
    if let Some(id) = existing {
        // Importing older content again makes it the current version of the name.
        db::query("UPDATE dataset_versions SET imported_ms = ? WHERE id = ?")
            .bind(imported_ms)
            .bind(id)
            .execute(&mut *c)
            .await?;
    }
    if created {
        let version_id = db::query(
            "INSERT INTO dataset_versions (dataset_id, hash, items, variables_json, source,
                 created_ms, imported_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(dataset_id)
        .bind(&hash)
        .bind(items.len() as i64)
        .bind(Json(variables(items)))
        .bind(source)
        .bind(now_ms())
        .bind(imported_ms)
        .returning_id(&mut *c)
        .await?
        .unwrap_or_default();
        for (idx, item) in items.iter().enumerate() {
            db::query("INSERT INTO dataset_items (version_id, idx, item_json) VALUES (?, ?, ?)")
                .bind(version_id)
                .bind(idx as i64)
                .bind(item_json(item))
                .execute(&mut *c)
                .await?;
        }
    }
    let version = dataset_version(c, &format!("{name}@{hash}")).await?.1;
    Ok(Imported { version, created })
}

/// Every version of every dataset, newest first.
pub async fn dataset_versions(c: &mut DbConn) -> StoreResult<Vec<DatasetVersion>> {
    let rows: Vec<VersionRow> = db::query_as(VERSIONS).fetch_all(&mut *c).await?;
    rows.into_iter().map(VersionRow::into_version).collect()
}

/// `NAME` (its newest version) or `NAME@HASH` (a prefix of 6 or more characters).
pub async fn dataset_version(
    c: &mut DbConn,
    reference: &str,
) -> StoreResult<(i64, DatasetVersion)> {
    let (name, hash) = match reference.split_once('@') {
        Some((n, h)) => (n, Some(h)),
        None => (reference, None),
    };
    let rows: Vec<VersionRow> = db::query_as(VERSIONS).fetch_all(&mut *c).await?;
    let mut matching = rows
        .into_iter()
        .filter(|r| r.name == name && hash.is_none_or(|h| h.len() >= 6 && r.hash.starts_with(h)));
    let first = matching
        .next()
        .ok_or_else(|| StoreError::NoSuchDataset(reference.to_owned()))?;
    if hash.is_some() && matching.next().is_some() {
        return Err(StoreError::NoSuchDataset(format!(
            "{reference} (the hash prefix is ambiguous: give more of it)"
        )));
    }
    let id = first.id;
    Ok((id, first.into_version()?))
}

/// A page of a version's items, in file order, and how many it has.
pub async fn dataset_items(
    c: &mut DbConn,
    reference: &str,
    offset: u64,
    limit: u64,
) -> StoreResult<(DatasetVersion, Vec<DatasetItem>)> {
    let (id, version) = dataset_version(c, reference).await?;
    let items = version_items(c, id, offset, limit.min(1000)).await?;
    Ok((version, items))
}

/// Items `from`, `from + 1`, … of version `version_id`, at most `limit` of them, in file
/// order (read by index range, so a late chunk costs what an early one does).
pub async fn version_items(
    c: &mut DbConn,
    version_id: i64,
    from: u64,
    limit: u64,
) -> StoreResult<Vec<DatasetItem>> {
    let rows: Vec<String> = db::query_scalar(
        "SELECT item_json FROM dataset_items WHERE version_id = ? AND idx >= ?
         ORDER BY idx LIMIT ?",
    )
    .bind(version_id)
    .bind(from.min(i64::MAX as u64) as i64)
    .bind(limit.min(i64::MAX as u64) as i64)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|j| {
            serde_json::from_str(j).map_err(|e| StoreError::Corrupt(format!("dataset item: {e}")))
        })
        .collect()
}

/// Writes a version's items to `out` as CSV or JSONL. JSONL streams row by row.
pub async fn export_dataset(
    c: &mut DbConn,
    reference: &str,
    format: Format,
    out: &mut (dyn Write + Send),
) -> Result<DatasetVersion, Error> {
    let (id, version) = dataset_version(c, reference).await?;
    let mut rows = db::query_scalar::<String>(
        "SELECT item_json FROM dataset_items WHERE version_id = ? ORDER BY idx",
    )
    .bind(id)
    .fetch(&mut *c);
    let io = |e: std::io::Error| Error::invalid("export", e.to_string());
    match format {
        Format::Jsonl | Format::Ndjson => {
            while let Some(json) = rows.try_next().await? {
                out.write_all(json.as_bytes()).map_err(io)?;
                out.write_all(b"\n").map_err(io)?;
            }
        }
        Format::Csv => {
            // The columns depend on every item, so CSV needs them all first.
            let mut items = Vec::new();
            while let Some(json) = rows.try_next().await? {
                items.push(
                    serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("dataset item: {e}")))?,
                );
            }
            write_csv(&items, out)?;
        }
        other => {
            return Err(Error::invalid(
                "format",
                format!("'{other}' is not a dataset format: use csv or jsonl"),
            ))
        }
    }
    Ok(version)
}

const VERSIONS: &str = "SELECT v.id, d.name, v.hash, v.items, v.variables_json, v.source,
        v.created_ms
     FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id
     ORDER BY v.imported_ms DESC, v.id DESC";

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: i64,
    name: String,
    hash: String,
    items: i64,
    variables_json: String,
    source: String,
    created_ms: i64,
}

impl VersionRow {
    fn into_version(self) -> StoreResult<DatasetVersion> {
        Ok(DatasetVersion {
            variables: serde_json::from_str(&self.variables_json)
                .map_err(|e| StoreError::Corrupt(format!("dataset {}: {e}", self.name)))?,
            dataset: self.name,
            hash: self.hash,
            items: self.items as u64,
            source: self.source,
            created_ms: self.created_ms,
        })
    }
}

/// Deletes dataset `id` with every version and item.
pub async fn delete_dataset(c: &mut DbConn, id: i64) -> StoreResult<()> {
    for sql in [
        "DELETE FROM dataset_items WHERE version_id IN
             (SELECT id FROM dataset_versions WHERE dataset_id = ?)",
        "DELETE FROM dataset_versions WHERE dataset_id = ?",
        "DELETE FROM datasets WHERE id = ?",
    ] {
        db::query(sql).bind(id).execute(&mut *c).await?;
    }
    Ok(())
}

/// The id of dataset `name`.
pub async fn dataset_id(c: &mut DbConn, name: &str) -> StoreResult<i64> {
    db::query_scalar("SELECT id FROM datasets WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| StoreError::NoSuchDataset(name.to_owned()))
}
