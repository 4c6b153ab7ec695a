//! The run tables: every SQL statement about runs and their results (results are inserted by
//! the call log's writer, grouped with other rows).

use std::collections::{BTreeMap, HashSet};

use futures_util::TryStreamExt;
use milc_api::prompt::PromptPin;
use milc_api::run::{
    ItemResult, ResultFilter, ResultSort, ResultsPage, ResultsQuery, RunInfo, RunSpec, RunStatus,
};

use crate::db::{self, now_ms, DbConn, Json, Result as StoreResult, StoreError};
use crate::Error;

const RUN_SELECT: &str = "SELECT r.id, r.spec_json, r.status, r.created_ms, r.finished_ms,
        p.name AS prompt, pv.version, dv.hash AS dataset_hash, dv.items,
        (SELECT count(*) FROM run_results x WHERE x.run_id = r.id) AS done
     FROM runs r
     JOIN prompt_versions pv ON pv.id = r.prompt_version_id
     JOIN prompts p ON p.id = pv.prompt_id
     JOIN dataset_versions dv ON dv.id = r.dataset_version_id";

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    spec_json: String,
    status: String,
    created_ms: i64,
    finished_ms: Option<i64>,
    prompt: String,
    version: i64,
    dataset_hash: String,
    items: i64,
    done: i64,
}

impl RunRow {
    fn into_info(self) -> StoreResult<RunInfo> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("run {}: {what}", self.id));
        let spec: RunSpec = serde_json::from_str(&self.spec_json).map_err(|_| corrupt("spec"))?;
        let status = match self.status.as_str() {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "cancelled" => RunStatus::Cancelled,
            _ => return Err(corrupt("status")),
        };
        Ok(RunInfo {
            id: self.id,
            total: self.items as u64 * spec.repeat as u64,
            spec,
            prompt: PromptPin {
                prompt: self.prompt,
                version: self.version as u32,
            },
            dataset_hash: self.dataset_hash,
            status,
            created_ms: self.created_ms,
            finished_ms: self.finished_ms,
            done: self.done as u64,
            warnings: Vec::new(),
        })
    }
}

pub async fn run(c: &mut DbConn, id: i64) -> StoreResult<RunInfo> {
    db::query_as::<RunRow>(&format!("{RUN_SELECT} WHERE r.id = ?"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NoSuchRun(id))?
        .into_info()
}

pub async fn runs(c: &mut DbConn) -> StoreResult<Vec<RunInfo>> {
    db::query_as::<RunRow>(&format!("{RUN_SELECT} ORDER BY r.id DESC"))
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(RunRow::into_info)
        .collect()
}

pub async fn run_done(c: &mut DbConn, id: i64) -> StoreResult<HashSet<(u64, u32)>> {
    let rows: Vec<(i64, i64)> =
        db::query_as("SELECT item_idx, rep FROM run_results WHERE run_id = ?")
            .bind(id)
            .fetch_all(&mut *c)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(i, r)| (i as u64, r as u32))
        .collect())
}

pub async fn run_errors(c: &mut DbConn, id: i64) -> StoreResult<u64> {
    let n: i64 =
        db::query_scalar("SELECT count(*) FROM run_results WHERE run_id = ? AND failed = TRUE")
            .bind(id)
            .fetch_one(&mut *c)
            .await?;
    Ok(n as u64)
}

/// Takes run `id` for `owner` until `until_ms` when no one holds it, its lease ran out, or
/// `owner` already holds it. Answers who holds it (and until when) when someone else does.
pub async fn claim_run(
    c: &mut DbConn,
    id: i64,
    owner: &str,
    now_ms: i64,
    until_ms: i64,
) -> StoreResult<Option<(String, i64)>> {
    let taken = db::query(
        "UPDATE runs SET owner = ?, lease_until_ms = ?
         WHERE id = ? AND (owner IS NULL OR lease_until_ms < ? OR owner = ?)",
    )
    .bind(owner)
    .bind(until_ms)
    .bind(id)
    .bind(now_ms)
    .bind(owner)
    .execute(&mut *c)
    .await?
    .rows_affected()
        == 1;
    if taken {
        return Ok(None);
    }
    db::query_as("SELECT owner, lease_until_ms FROM runs WHERE id = ? AND owner IS NOT NULL")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
}

/// Takes run `id` from `from` (a runner known to be gone) for `owner`; false when `from` no
/// longer holds it.
pub async fn take_over_run(
    c: &mut DbConn,
    id: i64,
    from: &str,
    owner: &str,
    until_ms: i64,
) -> StoreResult<bool> {
    Ok(
        db::query("UPDATE runs SET owner = ?, lease_until_ms = ? WHERE id = ? AND owner = ?")
            .bind(owner)
            .bind(until_ms)
            .bind(id)
            .bind(from)
            .execute(&mut *c)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Gives run `id` up, if `owner` holds it.
pub async fn release_run(c: &mut DbConn, id: i64, owner: &str) -> StoreResult<()> {
    db::query("UPDATE runs SET owner = NULL, lease_until_ms = NULL WHERE id = ? AND owner = ?")
        .bind(id)
        .bind(owner)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn set_run_status(c: &mut DbConn, id: i64, status: RunStatus) -> StoreResult<()> {
    let finished = (status != RunStatus::Running).then(now_ms);
    db::query("UPDATE runs SET status = ?, finished_ms = ? WHERE id = ?")
        .bind(status.as_str())
        .bind(finished)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}
pub async fn insert_run(
    c: &mut DbConn,
    prompt_version_id: i64,
    dataset_version_id: i64,
    spec: &RunSpec,
) -> StoreResult<i64> {
    Ok(db::query(
        "INSERT INTO runs (prompt_version_id, dataset_version_id, spec_json, status, created_ms)
         VALUES (?, ?, ?, 'running', ?)",
    )
    .bind(prompt_version_id)
    .bind(dataset_version_id)
    .bind(Json(spec))
    .bind(now_ms())
    .returning_id(&mut *c)
    .await?
    .unwrap_or_default())
}

/// The dataset version a run pinned.
pub async fn dataset_version_id(c: &mut DbConn, id: i64) -> StoreResult<i64> {
    db::query_scalar("SELECT dataset_version_id FROM runs WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *c)
        .await
}

/// Calls `f` with the scores (JSON) of each item and repetition both runs answered, paired in
/// one join on the result key, in item order; read as they stream, so memory stays small.
pub async fn for_each_pair(
    c: &mut DbConn,
    a: i64,
    b: i64,
    mut f: impl FnMut(i64, i64, Option<String>, Option<String>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut rows = db::query_as::<(i64, i64, Option<String>, Option<String>)>(
        "SELECT x.item_idx, x.rep, json_extract(x.result_json, '$.scores'),
             json_extract(y.result_json, '$.scores')
         FROM run_results x JOIN run_results y
             ON y.run_id = ? AND y.item_idx = x.item_idx AND y.rep = x.rep AND y.failed = FALSE
         WHERE x.run_id = ? AND x.failed = FALSE ORDER BY x.item_idx, x.rep",
    )
    .bind(b)
    .bind(a)
    .fetch(&mut *c);
    while let Some((item, rep, sa, sb)) = rows.try_next().await? {
        f(item, rep, sa, sb)?;
    }
    Ok(())
}

/// How many items runs `a` and `b` each answered without failing.
pub async fn answered(c: &mut DbConn, a: i64, b: i64) -> StoreResult<(i64, i64)> {
    db::query_as(
        "SELECT (SELECT count(*) FROM run_results WHERE run_id = ? AND failed = FALSE),
                (SELECT count(*) FROM run_results WHERE run_id = ? AND failed = FALSE)",
    )
    .bind(a)
    .bind(b)
    .fetch_one(&mut *c)
    .await
}

/// The outputs of run `run` for items `items`: (item, rep) → output.
pub async fn outputs(
    c: &mut DbConn,
    run: i64,
    items: &[u64],
) -> StoreResult<BTreeMap<(u64, u32), String>> {
    let wanted: Vec<String> = items.iter().map(u64::to_string).collect();
    let rows: Vec<(i64, i64, Option<String>)> = db::query_as(&format!(
        "SELECT item_idx, rep, json_extract(result_json, '$.output') FROM run_results
         WHERE run_id = ? AND item_idx IN ({})",
        wanted.join(", ")
    ))
    .bind(run)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(i, r, o)| ((i as u64, r as u32), o.unwrap_or_default()))
        .collect())
}

/// Item `idx` of run `id`'s dataset version, as stored JSON.
pub async fn run_item_json(c: &mut DbConn, id: i64, idx: u64) -> StoreResult<Option<String>> {
    db::query_scalar(
        "SELECT i.item_json FROM dataset_items i JOIN runs r ON r.dataset_version_id = i.version_id
         WHERE r.id = ? AND i.idx = ?",
    )
    .bind(id)
    .bind(idx as i64)
    .fetch_optional(&mut *c)
    .await
}

/// Calls `f` with each of run `id`'s results as they stream from the store.
pub async fn for_each_result(
    c: &mut DbConn,
    id: i64,
    mut f: impl FnMut(ItemResult),
) -> StoreResult<()> {
    let mut rows =
        db::query_scalar::<String>("SELECT result_json FROM run_results WHERE run_id = ?")
            .bind(id)
            .fetch(&mut *c);
    while let Some(json) = rows.try_next().await? {
        f(serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("run result: {e}")))?);
    }
    Ok(())
}

/// One page of a run's results, filtered and sorted in the store.
pub async fn results_page(c: &mut DbConn, id: i64, q: &ResultsQuery) -> StoreResult<ResultsPage> {
    let filter = match q.filter {
        ResultFilter::All => "",
        ResultFilter::Passed => " AND passed = TRUE",
        ResultFilter::Failed => " AND passed = FALSE",
        ResultFilter::Errors => " AND failed = TRUE",
    };
    let order = match &q.sort {
        ResultSort::Item => "item_idx, rep".to_owned(),
        ResultSort::Latency => "latency_ms".to_owned(),
        // The score's name is bound, not spliced: any text is safe here.
        ResultSort::Score(_) => {
            "CAST(json_extract(result_json, '$.scores.' || ?) AS DOUBLE PRECISION)".to_owned()
        }
    };
    let dir = if q.descending { "DESC" } else { "ASC" };
    let total: i64 = db::query_scalar(&format!(
        "SELECT count(*) FROM run_results WHERE run_id = ?{filter}"
    ))
    .bind(id)
    .fetch_one(&mut *c)
    .await?;
    let sql = format!(
        "SELECT result_json FROM run_results WHERE run_id = ?{filter}
         ORDER BY {order} {dir}, item_idx, rep LIMIT ? OFFSET ?"
    );
    let mut query = db::query_scalar::<String>(&sql).bind(id);
    if let ResultSort::Score(name) = &q.sort {
        query = query.bind(format!("\"{}\"", name.replace('"', "")));
    }
    let rows = query
        .bind(q.limit.min(1000) as i64)
        .bind(q.offset as i64)
        .fetch_all(&mut *c)
        .await?;
    let results = rows
        .iter()
        .map(|j| {
            serde_json::from_str(j).map_err(|e| StoreError::Corrupt(format!("run result: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(ResultsPage {
        total: total as u64,
        results,
    })
}

/// Finished runs of a prompt version over a dataset version, newest first: (id, spec JSON).
pub async fn finished_runs(
    c: &mut DbConn,
    prompt_version_id: Option<i64>,
    dataset_version_id: i64,
) -> StoreResult<Vec<(i64, String)>> {
    db::query_as(
        "SELECT id, spec_json FROM runs WHERE prompt_version_id = ? AND dataset_version_id = ?
         AND status = 'finished' ORDER BY id DESC",
    )
    .bind(prompt_version_id)
    .bind(dataset_version_id)
    .fetch_all(&mut *c)
    .await
}

/// The stored result of `item` (first repetition) of run `run`.
pub async fn result_json(c: &mut DbConn, run: i64, item: u64) -> StoreResult<Option<String>> {
    db::query_scalar(
        "SELECT result_json FROM run_results WHERE run_id = ? AND item_idx = ? AND rep = 0",
    )
    .bind(run)
    .bind(item as i64)
    .fetch_optional(&mut *c)
    .await
}

/// The items (first repetition) run `run` failed on.
pub async fn failed_items(c: &mut DbConn, run: i64) -> StoreResult<Vec<i64>> {
    db::query_scalar(
        "SELECT item_idx FROM run_results WHERE run_id = ? AND rep = 0 AND failed = TRUE",
    )
    .bind(run)
    .fetch_all(&mut *c)
    .await
}

/// Calls `f` with each item both runs answered (first repetition, no failure): the item, both
/// outputs and both values at JSON path `path` of the results, read as they stream.
pub async fn for_each_side_by_side(
    c: &mut DbConn,
    (a, b): (i64, i64),
    path: &str,
    mut f: impl FnMut(i64, Option<String>, Option<String>, Option<f64>, Option<f64>),
) -> StoreResult<()> {
    type Row = (
        i64,
        Option<String>,
        Option<String>,
        Option<f64>,
        Option<f64>,
    );
    let mut rows = db::query_as::<Row>(
        "SELECT x.item_idx, json_extract(x.result_json, '$.output'),
                json_extract(y.result_json, '$.output'),
                json_extract(x.result_json, ?1),
                json_extract(y.result_json, ?1)
         FROM run_results x JOIN run_results y
           ON y.run_id = ?3 AND y.item_idx = x.item_idx AND y.rep = x.rep
         WHERE x.run_id = ?2 AND x.rep = 0 AND x.failed = FALSE AND y.failed = FALSE
         ORDER BY x.item_idx",
    )
    .bind(path)
    .bind(a)
    .bind(b)
    .fetch(&mut *c);
    while let Some((item, oa, ob, xa, xb)) = rows.try_next().await? {
        f(item, oa, ob, xa, xb);
    }
    Ok(())
}

/// Deletes run `id` and its results.
pub async fn delete_run(c: &mut DbConn, id: i64) -> StoreResult<()> {
    for sql in [
        "DELETE FROM run_results WHERE run_id = ?",
        "DELETE FROM runs WHERE id = ?",
    ] {
        db::query(sql).bind(id).execute(&mut *c).await?;
    }
    Ok(())
}
