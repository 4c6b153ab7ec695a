//! The archive's SQL: what a scope covers (resolved to row ids), each member's rows as JSON
//! objects, the schema version, and the purge of archived calls.
//!
//! Id sets are bound as one JSON array each (`IN (SELECT value FROM json_each(?))`), so a scope
//! of any size is one statement per member; the calls are chosen by a filter, never listed.

use futures_util::TryStreamExt;
use serde_json::{Map, Value};

use crate::db::{self, error_from, outcome_from, source_from, DbConn, Result, StoreError};

/// One JSONL member of an archive: a table, or a table with the names its ids point to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    Endpoints,
    Prices,
    Prompts,
    PromptVersions,
    PromptLabels,
    PromptLabelMoves,
    Datasets,
    DatasetVersions,
    DatasetItems,
    Runs,
    RunResults,
    Comparisons,
    ComparisonVariants,
    Votes,
    Loadtests,
    Usecases,
    UsecaseCandidates,
    UsecaseEvidence,
    Calls,
    CallBodies,
    GatewayCalls,
    Feedback,
}

/// Which id set (or the calls' filter) a member's rows are chosen by.
#[derive(Clone, Copy)]
enum By {
    Endpoints,
    Prompts,
    DatasetVersions,
    Runs,
    Comparisons,
    Loadtests,
    Usecases,
    Calls,
}

impl Member {
    /// Every member, in the order they are written.
    pub const ALL: [Member; 22] = [
        Self::Endpoints,
        Self::Prices,
        Self::Prompts,
        Self::PromptVersions,
        Self::PromptLabels,
        Self::PromptLabelMoves,
        Self::Datasets,
        Self::DatasetVersions,
        Self::DatasetItems,
        Self::Runs,
        Self::RunResults,
        Self::Comparisons,
        Self::ComparisonVariants,
        Self::Votes,
        Self::Loadtests,
        Self::Usecases,
        Self::UsecaseCandidates,
        Self::UsecaseEvidence,
        Self::Calls,
        Self::CallBodies,
        Self::GatewayCalls,
        Self::Feedback,
    ];

    /// The member's file name inside the archive.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Endpoints => "endpoints.jsonl",
            Self::Prices => "prices.jsonl",
            Self::Prompts => "prompts.jsonl",
            Self::PromptVersions => "prompt_versions.jsonl",
            Self::PromptLabels => "prompt_labels.jsonl",
            Self::PromptLabelMoves => "prompt_label_moves.jsonl",
            Self::Datasets => "datasets.jsonl",
            Self::DatasetVersions => "dataset_versions.jsonl",
            Self::DatasetItems => "dataset_items.jsonl",
            Self::Runs => "runs.jsonl",
            Self::RunResults => "run_results.jsonl",
            Self::Comparisons => "comparisons.jsonl",
            Self::ComparisonVariants => "comparison_variants.jsonl",
            Self::Votes => "votes.jsonl",
            Self::Loadtests => "loadtests.jsonl",
            Self::Usecases => "usecases.jsonl",
            Self::UsecaseCandidates => "usecase_candidates.jsonl",
            Self::UsecaseEvidence => "usecase_evidence.jsonl",
            Self::Calls => "calls.jsonl",
            Self::CallBodies => "call_bodies.jsonl",
            Self::GatewayCalls => "gateway_calls.jsonl",
            Self::Feedback => "feedback.jsonl",
        }
    }

    /// The rows' SELECT (an id set's members with `{ids}` where the set goes; the calls'
    /// without their WHERE), what chooses them, and their ORDER BY. Endpoints are
    /// read from their table as they are: tokens live in the OS keyring, never in it, and
    /// header fields that carry credentials are refused when an endpoint is saved.
    fn sql(self) -> (&'static str, By, &'static str) {
        match self {
            Self::Endpoints => ("SELECT * FROM endpoints t WHERE t.id {ids}", By::Endpoints, "t.id"),
            Self::Prices => (
                "SELECT t.*, e.name AS endpoint FROM prices t JOIN endpoints e ON e.id = t.endpoint_id
                 WHERE t.endpoint_id {ids}",
                By::Endpoints,
                "t.id",
            ),
            Self::Prompts => ("SELECT * FROM prompts t WHERE t.id {ids}", By::Prompts, "t.id"),
            Self::PromptVersions => (
                "SELECT t.*, p.name AS prompt FROM prompt_versions t JOIN prompts p ON p.id = t.prompt_id
                 WHERE t.prompt_id {ids}",
                By::Prompts,
                "t.id",
            ),
            Self::PromptLabels => (
                "SELECT t.*, p.name AS prompt, v.version FROM prompt_labels t
                 JOIN prompts p ON p.id = t.prompt_id JOIN prompt_versions v ON v.id = t.version_id
                 WHERE t.prompt_id {ids}",
                By::Prompts,
                "t.prompt_id, t.label",
            ),
            Self::PromptLabelMoves => (
                "SELECT t.*, p.name AS prompt, f.version AS from_version, v.version AS to_version
                 FROM prompt_label_moves t JOIN prompts p ON p.id = t.prompt_id
                 LEFT JOIN prompt_versions f ON f.id = t.from_version_id
                 JOIN prompt_versions v ON v.id = t.to_version_id
                 WHERE t.prompt_id {ids}",
                By::Prompts,
                "t.id",
            ),
            Self::Datasets => (
                "SELECT * FROM datasets t WHERE t.id IN (SELECT dataset_id FROM dataset_versions
                 WHERE id {ids})",
                By::DatasetVersions,
                "t.id",
            ),
            Self::DatasetVersions => (
                "SELECT t.*, d.name AS dataset FROM dataset_versions t
                 JOIN datasets d ON d.id = t.dataset_id WHERE t.id {ids}",
                By::DatasetVersions,
                "t.id",
            ),
            Self::DatasetItems => (
                "SELECT * FROM dataset_items t WHERE t.version_id {ids}",
                By::DatasetVersions,
                "t.version_id, t.idx",
            ),
            Self::Runs => (
                "SELECT t.*, p.name AS prompt, v.version AS prompt_version, d.name AS dataset,
                        dv.hash AS dataset_hash
                 FROM runs t JOIN prompt_versions v ON v.id = t.prompt_version_id
                 JOIN prompts p ON p.id = v.prompt_id
                 JOIN dataset_versions dv ON dv.id = t.dataset_version_id
                 JOIN datasets d ON d.id = dv.dataset_id
                 WHERE t.id {ids}",
                By::Runs,
                "t.id",
            ),
            Self::RunResults => (
                "SELECT * FROM run_results t WHERE t.run_id {ids}",
                By::Runs,
                "t.run_id, t.item_idx, t.rep",
            ),
            Self::Comparisons => ("SELECT * FROM comparisons t WHERE t.id {ids}", By::Comparisons, "t.id"),
            Self::ComparisonVariants => (
                "SELECT t.*, p.name AS prompt, v.version AS prompt_version
                 FROM comparison_variants t JOIN prompt_versions v ON v.id = t.prompt_version_id
                 JOIN prompts p ON p.id = v.prompt_id
                 WHERE t.comparison_id {ids}",
                By::Comparisons,
                "t.comparison_id, t.idx",
            ),
            Self::Votes => (
                "SELECT * FROM votes t WHERE t.comparison_id {ids}",
                By::Comparisons,
                "t.id",
            ),
            Self::Loadtests => (
                "SELECT t.*, p.name AS prompt, v.version AS prompt_version FROM loadtests t
                 LEFT JOIN prompt_versions v ON v.id = t.prompt_version_id
                 LEFT JOIN prompts p ON p.id = v.prompt_id
                 WHERE t.id {ids}",
                By::Loadtests,
                "t.id",
            ),
            Self::Usecases => ("SELECT * FROM usecases t WHERE t.id {ids}", By::Usecases, "t.id"),
            Self::UsecaseCandidates => (
                "SELECT t.*, p.name AS prompt, v.version AS prompt_version, e.name AS endpoint
                 FROM usecase_candidates t JOIN prompt_versions v ON v.id = t.prompt_version_id
                 JOIN prompts p ON p.id = v.prompt_id LEFT JOIN endpoints e ON e.id = t.endpoint_id
                 WHERE t.usecase_id {ids}",
                By::Usecases,
                "t.id",
            ),
            Self::UsecaseEvidence => (
                "SELECT * FROM usecase_evidence t WHERE t.usecase_id {ids}",
                By::Usecases,
                "t.usecase_id, t.kind, t.ref_id",
            ),
            Self::Calls => (
                "SELECT c.*, e.name AS endpoint, m.name AS model, p.name AS prompt,
                        v.version AS prompt_version
                 FROM calls c JOIN models m ON m.id = c.model_id
                 LEFT JOIN endpoints e ON e.id = c.endpoint_id
                 LEFT JOIN prompt_versions v ON v.id = c.prompt_version_id
                 LEFT JOIN prompts p ON p.id = v.prompt_id",
                By::Calls,
                "c.id",
            ),
            Self::CallBodies => (
                "SELECT t.* FROM call_bodies t JOIN calls c ON c.id = t.call_id",
                By::Calls,
                "t.call_id",
            ),
            Self::GatewayCalls => (
                "SELECT t.*, r.model AS route, k.name AS key FROM gateway_calls t
                 JOIN calls c ON c.id = t.call_id
                 LEFT JOIN routes r ON r.id = t.route_id
                 LEFT JOIN gateway_keys k ON k.id = t.key_id",
                By::Calls,
                "t.call_id",
            ),
            Self::Feedback => (
                "SELECT t.* FROM feedback t JOIN calls c ON c.id = t.call_id",
                By::Calls,
                "t.id",
            ),
        }
    }
}

/// What an archive is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Endpoint,
    Prompt,
    Usecase,
}

/// Which calls an archive holds: the subject's (an endpoint's, a prompt's versions', a use
/// case's candidates' prompt version × endpoint pairs) and those that answered the archived
/// runs, made in `[since, until)`.
#[derive(Clone, Debug)]
pub struct CallFilter {
    pub subject: Subject,
    pub id: i64,
    pub since_ms: i64,
    pub until_ms: i64,
    /// The archived runs, as a JSON array of ids.
    runs: String,
}

impl CallFilter {
    /// The WHERE clause over `calls c` (binds: since, until, id, runs).
    fn clause(&self) -> &'static str {
        match self.subject {
            Subject::Endpoint => {
                "c.at_ms >= ? AND c.at_ms < ? AND (c.endpoint_id = ?
                 OR c.id IN (SELECT call_id FROM run_results
                             WHERE run_id IN (SELECT value FROM json_each(?))))"
            }
            Subject::Prompt => {
                "c.at_ms >= ? AND c.at_ms < ? AND (c.prompt_version_id IN
                     (SELECT id FROM prompt_versions WHERE prompt_id = ?)
                 OR c.id IN (SELECT call_id FROM run_results
                             WHERE run_id IN (SELECT value FROM json_each(?))))"
            }
            Subject::Usecase => {
                "c.at_ms >= ? AND c.at_ms < ? AND (EXISTS (SELECT 1 FROM usecase_candidates k
                     WHERE k.usecase_id = ? AND k.prompt_version_id = c.prompt_version_id
                       AND k.endpoint_id = c.endpoint_id)
                 OR c.id IN (SELECT call_id FROM run_results
                             WHERE run_id IN (SELECT value FROM json_each(?))))"
            }
        }
    }

    fn bind(&self, args: &mut db::Args) {
        add(args, self.since_ms);
        add(args, self.until_ms);
        add(args, self.id);
        add(args, self.runs.clone());
    }
}

/// An archive's scope resolved to the rows it holds.
#[derive(Clone, Debug)]
pub struct Scope {
    pub endpoints: Vec<i64>,
    pub prompts: Vec<i64>,
    pub dataset_versions: Vec<i64>,
    pub runs: Vec<i64>,
    pub comparisons: Vec<i64>,
    pub loadtests: Vec<i64>,
    pub usecases: Vec<i64>,
    pub calls: CallFilter,
}

impl Scope {
    fn ids(&self, by: By) -> Option<&[i64]> {
        Some(match by {
            By::Endpoints => &self.endpoints,
            By::Prompts => &self.prompts,
            By::DatasetVersions => &self.dataset_versions,
            By::Runs => &self.runs,
            By::Comparisons => &self.comparisons,
            By::Loadtests => &self.loadtests,
            By::Usecases => &self.usecases,
            By::Calls => return None,
        })
    }

    /// A member's full query and its arguments.
    fn query(&self, m: Member) -> (String, db::Args) {
        let (select, by, order) = m.sql();
        let mut args = db::Args::default();
        let sql = match self.ids(by) {
            Some(ids) => {
                add(&mut args, json_ids(ids));
                let select = select.replace("{ids}", "IN (SELECT value FROM json_each(?))");
                format!("{select} ORDER BY {order}")
            }
            None => {
                self.calls.bind(&mut args);
                format!("{select} WHERE {} ORDER BY {order}", self.calls.clause())
            }
        };
        (sql, args)
    }
}

fn add(args: &mut db::Args, value: impl db::Bind) {
    args.add(value);
}

fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("integers serialize")
}

/// The id of the archive's subject, if it exists: an endpoint, prompt or use case by name.
pub async fn subject_id(c: &mut DbConn, s: Subject, name: &str) -> Result<Option<i64>> {
    let sql = match s {
        Subject::Endpoint => "SELECT id FROM endpoints WHERE name = ?",
        Subject::Prompt => "SELECT id FROM prompts WHERE name = ?",
        Subject::Usecase => "SELECT id FROM usecases WHERE name = ?",
    };
    db::query_scalar(sql)
        .bind(name)
        .fetch_optional(&mut *c)
        .await
}

async fn ids(c: &mut DbConn, sql: &str, args: db::Args) -> Result<Vec<i64>> {
    let mut v: Vec<i64> = db::query_scalar_with(sql, args).fetch_all(&mut *c).await?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Resolves what an archive of `subject` #`id` (named `name`) over `[since, until)` holds.
///
/// - runs, load tests and comparisons made in the window: an endpoint's (a run whose spec
///   names it or whose calls went to it; a comparison with a variant on it or answered by one of
///   those runs; its load tests), a prompt's (pinned to one of its versions), or those attached
///   to a use case (and the comparisons those runs answer);
/// - use cases: the one archived, or those with a candidate on the endpoint / prompt;
/// - calls: see [`CallFilter`];
/// - prompts (each with every version, label and label move) whose versions any of the above
///   used, endpoints (settings and dated prices) any of them used, and the dataset versions
///   (with their items) the runs and comparisons pinned.
pub async fn resolve(
    c: &mut DbConn,
    subject: Subject,
    id: i64,
    name: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<Scope> {
    let window = |args: &mut db::Args| {
        add(args, since_ms);
        add(args, until_ms);
    };
    let (runs_sql, loadtests_sql, usecases_sql) = match subject {
        Subject::Endpoint => (
            "SELECT r.id FROM runs r WHERE r.created_ms >= ? AND r.created_ms < ?
             AND (json_extract(r.spec_json, '$.endpoint') = ? OR EXISTS (
                 SELECT 1 FROM run_results x JOIN calls c ON c.id = x.call_id
                 WHERE x.run_id = r.id AND c.endpoint_id = ?))",
            "SELECT id FROM loadtests WHERE created_ms >= ? AND created_ms < ? AND endpoint_id = ?",
            "SELECT usecase_id FROM usecase_candidates WHERE endpoint_id = ?",
        ),
        Subject::Prompt => (
            "SELECT r.id FROM runs r WHERE r.created_ms >= ? AND r.created_ms < ?
             AND r.prompt_version_id IN (SELECT id FROM prompt_versions WHERE prompt_id = ?)",
            "SELECT id FROM loadtests WHERE created_ms >= ? AND created_ms < ?
             AND prompt_version_id IN (SELECT id FROM prompt_versions WHERE prompt_id = ?)",
            "SELECT usecase_id FROM usecase_candidates
             WHERE prompt_version_id IN (SELECT id FROM prompt_versions WHERE prompt_id = ?)",
        ),
        Subject::Usecase => (
            "SELECT r.id FROM runs r JOIN usecase_evidence ev ON ev.kind = 'run' AND ev.ref_id = r.id
             WHERE r.created_ms >= ? AND r.created_ms < ? AND ev.usecase_id = ?",
            "SELECT t.id FROM loadtests t
             JOIN usecase_evidence ev ON ev.kind = 'loadtest' AND ev.ref_id = t.id
             WHERE t.created_ms >= ? AND t.created_ms < ? AND ev.usecase_id = ?",
            "SELECT id FROM usecases WHERE id = ?",
        ),
    };
    let mut args = db::Args::default();
    window(&mut args);
    if subject == Subject::Endpoint {
        // The spec names the endpoint; the calls went to its id.
        add(&mut args, name.to_owned());
    }
    add(&mut args, id);
    let runs = ids(c, runs_sql, args).await?;
    let mut args = db::Args::default();
    window(&mut args);
    add(&mut args, id);
    let loadtests = ids(c, loadtests_sql, args).await?;
    let mut args = db::Args::default();
    add(&mut args, id);
    let usecases = ids(c, usecases_sql, args).await?;

    // A comparison answered by an archived run, or (for an endpoint or a prompt) with a
    // variant on the subject.
    let mut args = db::Args::default();
    window(&mut args);
    add(&mut args, json_ids(&runs));
    let on_subject = match subject {
        Subject::Endpoint => "v.endpoint = (SELECT name FROM endpoints WHERE id = ?)",
        Subject::Prompt => {
            "v.prompt_version_id IN (SELECT id FROM prompt_versions WHERE prompt_id = ?)"
        }
        Subject::Usecase => "FALSE",
    };
    if subject != Subject::Usecase {
        add(&mut args, id);
    }
    let comparisons_sql = format!(
        "SELECT m.id FROM comparisons m WHERE m.created_ms >= ? AND m.created_ms < ?
         AND EXISTS (SELECT 1 FROM comparison_variants v WHERE v.comparison_id = m.id
             AND (v.run_id IN (SELECT value FROM json_each(?)) OR {on_subject}))"
    );
    let comparisons = ids(c, &comparisons_sql, args).await?;

    let calls = CallFilter {
        subject,
        id,
        since_ms,
        until_ms,
        runs: json_ids(&runs),
    };
    let sets = |args: &mut db::Args| {
        add(args, json_ids(&runs));
        add(args, json_ids(&comparisons));
        add(args, json_ids(&loadtests));
        add(args, json_ids(&usecases));
    };

    let mut args = db::Args::default();
    sets(&mut args);
    calls.bind(&mut args);
    add(&mut args, id);
    add(&mut args, subject == Subject::Prompt);
    let prompts = ids(
        c,
        &format!(
            "SELECT prompt_id FROM prompt_versions WHERE id IN (
                 SELECT prompt_version_id FROM runs WHERE id IN (SELECT value FROM json_each(?))
                 UNION SELECT prompt_version_id FROM comparison_variants
                       WHERE comparison_id IN (SELECT value FROM json_each(?))
                 UNION SELECT prompt_version_id FROM loadtests
                       WHERE id IN (SELECT value FROM json_each(?))
                 UNION SELECT prompt_version_id FROM usecase_candidates
                       WHERE usecase_id IN (SELECT value FROM json_each(?))
                 UNION SELECT c.prompt_version_id FROM calls c WHERE {})
             UNION SELECT ? WHERE ?",
            calls.clause()
        ),
        args,
    )
    .await?;

    let mut args = db::Args::default();
    sets(&mut args);
    calls.bind(&mut args);
    add(&mut args, id);
    add(&mut args, subject == Subject::Endpoint);
    let endpoints = ids(
        c,
        &format!(
            "SELECT id FROM endpoints WHERE name IN (
                 SELECT json_extract(spec_json, '$.endpoint') FROM runs
                 WHERE id IN (SELECT value FROM json_each(?))
                 UNION SELECT endpoint FROM comparison_variants
                       WHERE comparison_id IN (SELECT value FROM json_each(?)))
             OR id IN (
                 SELECT endpoint_id FROM loadtests WHERE id IN (SELECT value FROM json_each(?))
                 UNION SELECT endpoint_id FROM usecase_candidates
                       WHERE usecase_id IN (SELECT value FROM json_each(?))
                 UNION SELECT c.endpoint_id FROM calls c WHERE {})
             UNION SELECT ? WHERE ?",
            calls.clause()
        ),
        args,
    )
    .await?;

    let mut args = db::Args::default();
    add(&mut args, json_ids(&runs));
    add(&mut args, json_ids(&comparisons));
    let dataset_versions = ids(
        c,
        "SELECT dataset_version_id FROM runs WHERE id IN (SELECT value FROM json_each(?))
         UNION SELECT dataset_version_id FROM comparisons
               WHERE id IN (SELECT value FROM json_each(?))",
        args,
    )
    .await?;

    Ok(Scope {
        endpoints,
        prompts,
        dataset_versions,
        runs,
        comparisons,
        loadtests,
        usecases,
        calls,
    })
}

/// How many rows member `m` of `scope` holds.
pub async fn count(c: &mut DbConn, m: Member, scope: &Scope) -> Result<u64> {
    let (sql, args) = scope.query(m);
    let n: i64 = db::query_scalar_with(&format!("SELECT count(*) FROM ({sql}) AS counted"), args)
        .fetch_one(&mut *c)
        .await?;
    Ok(n as u64)
}

/// Hands each row of member `m` of `scope` to `f` as a JSON object, in a stable order, without
/// holding them all; returns how many there were.
pub async fn each_row<E: From<StoreError>>(
    c: &mut DbConn,
    m: Member,
    scope: &Scope,
    mut f: impl FnMut(Map<String, Value>) -> std::result::Result<(), E>,
) -> std::result::Result<u64, E> {
    let (sql, args) = scope.query(m);
    let mut rows = db::query_with(&sql, args).fetch_json(&mut *c);
    let mut n = 0;
    while let Some(mut obj) = rows.try_next().await? {
        if m == Member::Calls {
            readable_codes(&mut obj)?;
        }
        f(obj)?;
        n += 1;
    }
    Ok(n)
}

/// A call's integer codes as the names users know (`source: "gateway"`); its model by name.
fn readable_codes(obj: &mut Map<String, Value>) -> Result<()> {
    let code = |obj: &Map<String, Value>, k: &str| obj.get(k).and_then(Value::as_i64);
    if let Some(s) = code(obj, "source") {
        obj.insert("source".into(), source_from(s)?.as_str().into());
    }
    if let Some(o) = code(obj, "outcome") {
        obj.insert("outcome".into(), outcome_from(o)?.as_str().into());
    }
    if let Some(e) = code(obj, "error_kind") {
        obj.insert("error_kind".into(), error_from(e)?.as_str().into());
    }
    if let Some(u) = code(obj, "usage_reported") {
        obj.insert("usage_reported".into(), Value::Bool(u != 0));
    }
    obj.remove("model_id");
    Ok(())
}

/// The highest migration applied to this database.
pub async fn schema_version(c: &mut DbConn) -> Result<i64> {
    db::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *c)
        .await
}

/// Calls deleted per statement.
const PURGE_BATCH: usize = 5_000;

/// Deletes the calls `(id, at_ms)` names that are still those calls (same id, same time), with
/// their bodies; their gateway tags and feedback go by cascade, and run results and history
/// entries keep their rows without the call (SET NULL). The rollups are not touched: the caller
/// has folded every call into them first. Returns the calls and bodies deleted.
pub async fn purge(c: &mut DbConn, calls: &[(i64, i64)]) -> Result<(u64, u64)> {
    let matching = match c.engine() {
        db::Engine::Sqlite => {
            "SELECT c.id FROM json_each(?) j JOIN calls c
             ON c.id = json_extract(j.value, '$[0]') AND c.at_ms = json_extract(j.value, '$[1]')"
        }
        db::Engine::Postgres => {
            "SELECT c.id FROM jsonb_array_elements(CAST(? AS jsonb)) j (v) JOIN calls c
             ON c.id = (j.v ->> 0)::bigint AND c.at_ms = (j.v ->> 1)::bigint"
        }
    };
    let (mut deleted, mut bodies) = (0, 0);
    for batch in calls.chunks(PURGE_BATCH) {
        let pairs = serde_json::to_string(batch).expect("integers serialize");
        bodies += db::query(&format!(
            "DELETE FROM call_bodies WHERE call_id IN ({matching})"
        ))
        .bind(&pairs)
        .execute(&mut *c)
        .await?
        .rows_affected();
        deleted += db::query(&format!("DELETE FROM calls WHERE id IN ({matching})"))
            .bind(&pairs)
            .execute(&mut *c)
            .await?
            .rows_affected();
    }
    Ok((deleted, bodies))
}
