//! Every SQL statement about `loadtests`: a test is stored when it starts, its levels as each
//! one ends, its status when it stops.

use milc_api::lifecycle::{LevelResult, LoadTest, LoadTestSpec, LoadTestStatus};

use crate::db::{self, DbConn, Json, Result, StoreError};

fn status_str(s: LoadTestStatus) -> &'static str {
    match s {
        LoadTestStatus::Running => "running",
        LoadTestStatus::Finished => "finished",
        LoadTestStatus::Cancelled => "cancelled",
        LoadTestStatus::Failed => "failed",
    }
}

pub async fn insert(
    c: &mut DbConn,
    spec: &LoadTestSpec,
    endpoint_id: i64,
    prompt_version_id: Option<i64>,
    now_ms: i64,
) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO loadtests (endpoint_id, endpoint_name, prompt_version_id, spec_json, status,
                                created_ms)
         VALUES (?, ?, ?, ?, 'running', ?) RETURNING id",
    )
    .bind(endpoint_id)
    .bind(&spec.endpoint)
    .bind(prompt_version_id)
    .bind(Json(spec))
    .bind(now_ms)
    .fetch_one(&mut *c)
    .await
}

pub async fn set_levels(c: &mut DbConn, id: i64, levels: &[LevelResult]) -> Result<()> {
    db::query("UPDATE loadtests SET levels_json = ? WHERE id = ?")
        .bind(Json(levels))
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn finish(
    c: &mut DbConn,
    id: i64,
    status: LoadTestStatus,
    levels: &[LevelResult],
    now_ms: i64,
) -> Result<()> {
    db::query("UPDATE loadtests SET status = ?, levels_json = ?, finished_ms = ? WHERE id = ?")
        .bind(status_str(status))
        .bind(Json(levels))
        .bind(now_ms)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    spec_json: Json<LoadTestSpec>,
    prompt: Option<String>,
    status: String,
    levels_json: Json<Vec<LevelResult>>,
    created_ms: i64,
    finished_ms: Option<i64>,
}

impl Row {
    fn into_loadtest(self) -> Result<LoadTest> {
        let status = [
            LoadTestStatus::Running,
            LoadTestStatus::Finished,
            LoadTestStatus::Cancelled,
            LoadTestStatus::Failed,
        ]
        .into_iter()
        .find(|s| status_str(*s) == self.status)
        .ok_or_else(|| StoreError::Corrupt(format!("load test status '{}'", self.status)))?;
        let levels = self.levels_json.0;
        Ok(LoadTest {
            id: self.id,
            spec: self.spec_json.0,
            prompt_version: self.prompt,
            status,
            knee: super::knee(&levels),
            levels,
            created_ms: self.created_ms,
            finished_ms: self.finished_ms,
        })
    }
}

const SELECT: &str = "SELECT l.id, l.spec_json, p.name || '@' || v.version AS prompt, l.status,
                             l.levels_json, l.created_ms, l.finished_ms
                      FROM loadtests l
                      LEFT JOIN prompt_versions v ON v.id = l.prompt_version_id
                      LEFT JOIN prompts p ON p.id = v.prompt_id";

pub async fn get(c: &mut DbConn, id: i64) -> Result<LoadTest> {
    db::query_as::<Row>(&format!("{SELECT} WHERE l.id = ?"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NoSuchLoadTest(id))?
        .into_loadtest()
}

pub async fn list(c: &mut DbConn) -> Result<Vec<LoadTest>> {
    db::query_as::<Row>(&format!("{SELECT} ORDER BY l.id DESC"))
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(Row::into_loadtest)
        .collect()
}
