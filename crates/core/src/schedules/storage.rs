//! Every SQL statement about scheduled evaluations: `schedules` and the runs each one started
//! (`schedule_runs`).

use milc_api::lifecycle::Schedule;
use milc_api::run::RunSpec;

use crate::db::{self, unique_or, DbConn, Json, Result, StoreError};

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    usecase: Option<String>,
    spec_json: Json<RunSpec>,
    every_ms: i64,
    next_due_ms: i64,
    last_run: Option<i64>,
}

impl From<Row> for Schedule {
    fn from(r: Row) -> Self {
        Schedule {
            id: r.id,
            name: r.name,
            usecase: r.usecase,
            spec: r.spec_json.0,
            every_ms: r.every_ms,
            next_due_ms: r.next_due_ms,
            last_run: r.last_run,
        }
    }
}

const SELECT: &str = "SELECT s.id, s.name, u.name AS usecase, s.spec_json, s.every_ms,
                             s.next_due_ms,
                             (SELECT max(run_id) FROM schedule_runs r WHERE r.schedule_id = s.id)
                                 AS last_run
                      FROM schedules s LEFT JOIN usecases u ON u.id = s.usecase_id";

/// What a new schedule stores besides its spec: the ids "still used by" looks for.
pub struct Refs {
    pub usecase_id: Option<i64>,
    pub endpoint_id: i64,
    pub prompt_version_id: Option<i64>,
}

pub async fn insert(
    c: &mut DbConn,
    name: &str,
    refs: &Refs,
    spec: &RunSpec,
    every_ms: i64,
    first_due_ms: i64,
    now_ms: i64,
) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO schedules (name, usecase_id, endpoint_id, prompt_version_id, spec_json,
                                every_ms, next_due_ms, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(name)
    .bind(refs.usecase_id)
    .bind(refs.endpoint_id)
    .bind(refs.prompt_version_id)
    .bind(Json(spec))
    .bind(every_ms)
    .bind(first_due_ms)
    .bind(now_ms)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| unique_or(e, || StoreError::DuplicateSchedule(name.to_owned())))
}

pub async fn list(c: &mut DbConn) -> Result<Vec<Schedule>> {
    let rows: Vec<Row> = db::query_as(&format!("{SELECT} ORDER BY s.name"))
        .fetch_all(&mut *c)
        .await?;
    Ok(rows.into_iter().map(Schedule::from).collect())
}

pub async fn due(c: &mut DbConn, now_ms: i64) -> Result<Vec<Schedule>> {
    let rows: Vec<Row> = db::query_as(&format!(
        "{SELECT} WHERE s.next_due_ms <= ? ORDER BY s.next_due_ms, s.id"
    ))
    .bind(now_ms)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(Schedule::from).collect())
}

/// Takes a due schedule for this process: moves its next due time on, only if no one else did
/// since it was read. Two processes running what is due never run one schedule twice.
pub async fn claim(c: &mut DbConn, s: &Schedule, next_due_ms: i64) -> Result<bool> {
    Ok(
        db::query("UPDATE schedules SET next_due_ms = ? WHERE id = ? AND next_due_ms = ?")
            .bind(next_due_ms)
            .bind(s.id)
            .bind(s.next_due_ms)
            .execute(&mut *c)
            .await?
            .rows_affected()
            == 1,
    )
}

pub async fn record_run(c: &mut DbConn, id: i64, run: i64, at_ms: i64) -> Result<()> {
    db::query("INSERT INTO schedule_runs (schedule_id, run_id, at_ms) VALUES (?, ?, ?)")
        .bind(id)
        .bind(run)
        .bind(at_ms)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn remove(c: &mut DbConn, name: &str) -> Result<()> {
    let n = db::query("DELETE FROM schedules WHERE name = ?")
        .bind(name)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NoSuchSchedule(name.to_owned()));
    }
    Ok(())
}
