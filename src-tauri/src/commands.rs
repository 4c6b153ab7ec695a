//! The Tauri commands. Each is a few lines over a `Console` method; the only state the shell
//! keeps itself is the running cancellable jobs.

use std::time::Instant;

use milc_api::compare::{
    Ballot, CompareExported, CompareProgress, ComparisonInfo, ComparisonResults, ComparisonSpec,
    JudgeRun, RatingTask, SideBySide, SideBySideQuery,
};
use milc_api::dataset::{
    DatasetEdit, DatasetItem, DatasetPreview, DatasetVersion, Exported, Imported,
};
use milc_api::prompt::{
    CallBody, HistoryEntry, LabelMove, NewVersion, PromptDetail, PromptDiff, PromptSummary,
    PromptVersion, Saved,
};
use milc_api::run::{
    ResultsPage, ResultsQuery, RunComparison, RunInfo, RunProgress, RunSpec, RunSummary,
};
use milc_api::usage::{Alert, Budget, CallsQuery, UsageQuery, UsageReport};
use milc_api::{
    CallError, CallRecord, CallSource, ChatRequest, ChatResult, ConnectionTest, Endpoint,
    EndpointSpec, TokenChange,
};
use milc_core::{Console, Error};
use tauri::ipc::{Channel, Invoke};
use tauri::{Runtime, State};
use tokio_util::sync::CancellationToken;

use crate::jobs::{JobKey, Jobs};

pub struct AppState {
    console: Console,
    jobs: Jobs,
    started: Instant,
}

impl AppState {
    pub fn new(console: Console, started: Instant) -> Self {
        Self {
            console,
            jobs: Jobs::default(),
            started,
        }
    }
}

type Reply<T> = Result<T, CallError>;

fn api(e: Error) -> CallError {
    e.to_api()
}

#[tauri::command]
async fn endpoints_list(state: State<'_, AppState>) -> Reply<Vec<Endpoint>> {
    state.console.endpoints().await.map_err(api)
}

#[tauri::command]
async fn endpoints_save(
    state: State<'_, AppState>,
    id: Option<i64>,
    spec: EndpointSpec,
    token: TokenChange,
) -> Reply<Endpoint> {
    state
        .console
        .save_endpoint(id, spec, token)
        .await
        .map_err(api)
}

#[tauri::command]
async fn endpoints_delete(state: State<'_, AppState>, name: String) -> Reply<()> {
    state.console.remove_endpoint(&name).await.map_err(api)
}

#[tauri::command]
async fn endpoints_test(state: State<'_, AppState>, name: String) -> Reply<ConnectionTest> {
    state.console.test_endpoint(&name).await.map_err(api)
}

/// Streams content pieces through `on_event` as they arrive; `run` names the chat for `chat_cancel`.
#[tauri::command]
async fn chat(
    state: State<'_, AppState>,
    endpoint: String,
    request: ChatRequest,
    run: String,
    on_event: Channel<String>,
) -> Reply<ChatResult> {
    let job = state.jobs.start(JobKey::Chat(run));
    let mut forward = |piece: &str| {
        // A closed window must not abort the call: it still gets logged.
        let _ = on_event.send(piece.to_owned());
    };
    let source = CallSource::Playground;
    state
        .console
        .chat(&endpoint, &request, source, &mut forward, job.token())
        .await
        .map_err(api)
}

#[tauri::command]
fn chat_cancel(state: State<'_, AppState>, run: String) {
    state.jobs.cancel(&JobKey::Chat(run));
}

#[tauri::command]
async fn calls_list(state: State<'_, AppState>, limit: u32) -> Reply<Vec<CallRecord>> {
    state.console.calls(limit).await.map_err(api)
}

#[tauri::command]
async fn call_body(state: State<'_, AppState>, id: i64) -> Reply<Option<CallBody>> {
    state.console.call_body(id).await.map_err(api)
}

#[tauri::command]
async fn prompts_list(state: State<'_, AppState>) -> Reply<Vec<PromptSummary>> {
    state.console.prompts().await.map_err(api)
}

#[tauri::command]
async fn prompts_show(state: State<'_, AppState>, name: String) -> Reply<PromptDetail> {
    state.console.prompt(&name).await.map_err(api)
}

#[tauri::command]
async fn prompts_resolve(state: State<'_, AppState>, reference: String) -> Reply<PromptVersion> {
    state.console.resolve_prompt(&reference).await.map_err(api)
}

#[tauri::command]
async fn prompts_save(
    state: State<'_, AppState>,
    version: NewVersion,
    create: bool,
) -> Reply<Saved> {
    state
        .console
        .save_prompt(version, create)
        .await
        .map_err(api)
}

#[tauri::command]
async fn prompts_diff(
    state: State<'_, AppState>,
    name: String,
    left: u32,
    right: u32,
) -> Reply<PromptDiff> {
    state
        .console
        .diff_prompt(&name, left, right)
        .await
        .map_err(api)
}

#[tauri::command]
async fn prompts_label(
    state: State<'_, AppState>,
    name: String,
    version: u32,
    label: String,
) -> Reply<Option<LabelMove>> {
    state
        .console
        .label_prompt(&name, version, &label)
        .await
        .map_err(api)
}

#[tauri::command]
async fn history_list(
    state: State<'_, AppState>,
    search: String,
    limit: u32,
) -> Reply<Vec<HistoryEntry>> {
    state.console.history(&search, limit).await.map_err(api)
}

fn format(name: &str) -> Result<milc_core::datasets::Format, CallError> {
    milc_core::datasets::Format::parse(name).map_err(api)
}

#[tauri::command]
async fn datasets_list(state: State<'_, AppState>) -> Reply<Vec<DatasetVersion>> {
    state.console.datasets().await.map_err(api)
}

#[tauri::command]
fn datasets_preview(
    state: State<'_, AppState>,
    file: String,
    kind: String,
    text: String,
) -> Reply<DatasetPreview> {
    state
        .console
        .preview_dataset_text(&file, format(&kind)?, &text)
        .map_err(api)
}

#[tauri::command]
async fn datasets_import(
    state: State<'_, AppState>,
    name: String,
    file: String,
    kind: String,
    text: String,
) -> Reply<Imported> {
    state
        .console
        .import_dataset_text(&name, &file, format(&kind)?, &text)
        .await
        .map_err(api)
}

/// A page of a dataset version's items.
#[tauri::command]
async fn datasets_items(
    state: State<'_, AppState>,
    reference: String,
    offset: u64,
    limit: u64,
) -> Reply<(DatasetVersion, Vec<DatasetItem>)> {
    state
        .console
        .dataset_items(&reference, offset, limit)
        .await
        .map_err(api)
}

/// Stores an edited copy of a version as a new version.
#[tauri::command]
async fn datasets_edit(state: State<'_, AppState>, edit: DatasetEdit) -> Reply<Imported> {
    state.console.edit_dataset(&edit).await.map_err(api)
}

/// Writes a version to `path` (empty: the downloads folder).
#[tauri::command]
async fn datasets_export(
    state: State<'_, AppState>,
    reference: String,
    kind: String,
    path: String,
) -> Reply<Exported> {
    state
        .console
        .export_dataset_file(&reference, format(&kind)?, &path)
        .await
        .map_err(api)
}

#[tauri::command]
async fn runs_list(state: State<'_, AppState>) -> Reply<Vec<RunInfo>> {
    state.console.runs().await.map_err(api)
}

#[tauri::command]
async fn runs_create(state: State<'_, AppState>, spec: RunSpec) -> Reply<RunInfo> {
    state.console.create_run(spec).await.map_err(api)
}

/// Runs (or resumes) a run, pushing progress through `on_progress`; `runs_cancel` stops it.
#[tauri::command]
async fn runs_execute(
    state: State<'_, AppState>,
    id: i64,
    on_progress: Channel<RunProgress>,
) -> Reply<RunSummary> {
    let job = state.jobs.start(JobKey::Run(id));
    let report = |p: &RunProgress| {
        let _ = on_progress.send(p.clone());
    };
    state
        .console
        .execute_run(id, &report, job.token())
        .await
        .map_err(api)
}

#[tauri::command]
fn runs_cancel(state: State<'_, AppState>, id: i64) {
    state.jobs.cancel(&JobKey::Run(id));
}

#[tauri::command]
async fn compare_list(state: State<'_, AppState>) -> Reply<Vec<ComparisonInfo>> {
    state.console.comparisons().await.map_err(api)
}

#[tauri::command]
async fn compare_create(state: State<'_, AppState>, spec: ComparisonSpec) -> Reply<ComparisonInfo> {
    state.console.create_comparison(spec).await.map_err(api)
}

/// Runs a comparison's variants, pushing progress through `on_progress`; `compare_cancel`
/// stops it (a later run resumes).
#[tauri::command]
async fn compare_run(
    state: State<'_, AppState>,
    name: String,
    on_progress: Channel<CompareProgress>,
) -> Reply<ComparisonInfo> {
    let job = state.jobs.start(JobKey::Comparison(name.clone()));
    let report = |p: &CompareProgress| {
        let _ = on_progress.send(p.clone());
    };
    state
        .console
        .run_comparison(&name, &report, job.token())
        .await
        .map_err(api)
}

#[tauri::command]
fn compare_cancel(state: State<'_, AppState>, name: String) {
    state.jobs.cancel(&JobKey::Comparison(name));
}

/// An LLM judge votes on every pair in both orders; progress is (done, total).
#[tauri::command]
async fn compare_judge(
    state: State<'_, AppState>,
    name: String,
    judge: String,
    on_progress: Channel<(u64, u64)>,
) -> Reply<JudgeRun> {
    let report = |done: u64, total: u64| {
        let _ = on_progress.send((done, total));
    };
    state
        .console
        .judge_comparison(&name, &judge, &report, &CancellationToken::new())
        .await
        .map_err(api)
}

#[tauri::command]
async fn compare_task(
    state: State<'_, AppState>,
    name: String,
    rater: String,
    index: u64,
) -> Reply<RatingTask> {
    state
        .console
        .rating_task(&name, &rater, index)
        .await
        .map_err(api)
}

/// Records a vote; returns how many tasks the rater has voted on.
#[tauri::command]
async fn compare_vote(
    state: State<'_, AppState>,
    name: String,
    rater: String,
    index: u64,
    ballot: Ballot,
) -> Reply<u64> {
    state
        .console
        .cast_vote(&name, &rater, index, &ballot)
        .await
        .map_err(api)
}

/// Results as `rater` may see them (refused until the rater is done); no rater: all of them.
#[tauri::command]
async fn compare_results(
    state: State<'_, AppState>,
    name: String,
    rater: Option<String>,
) -> Reply<ComparisonResults> {
    state
        .console
        .comparison_results(&name, rater.as_deref())
        .await
        .map_err(api)
}

#[tauri::command]
async fn compare_side_by_side(
    state: State<'_, AppState>,
    name: String,
    query: SideBySideQuery,
) -> Reply<SideBySide> {
    state.console.side_by_side(&name, &query).await.map_err(api)
}

/// Writes `finetune`, `dpo` or `csv` to `path` (empty: the downloads folder).
#[tauri::command]
async fn compare_export(
    state: State<'_, AppState>,
    name: String,
    kind: String,
    path: String,
) -> Reply<CompareExported> {
    let (path, records) = state
        .console
        .export_comparison_file(&name, &kind, &path)
        .await
        .map_err(api)?;
    Ok(CompareExported { path, records })
}

#[tauri::command]
async fn usage_report(state: State<'_, AppState>, query: UsageQuery) -> Reply<UsageReport> {
    state.console.usage(&query).await.map_err(api)
}

/// The calls behind a bar of a chart.
#[tauri::command]
async fn usage_calls(state: State<'_, AppState>, query: CallsQuery) -> Reply<Vec<CallRecord>> {
    state.console.usage_calls(&query).await.map_err(api)
}

/// Writes what is shown (`shown`) or the calls of its range (`ndjson`, `csv`) to `path`
/// (empty: the downloads folder); returns the path and the rows written.
#[tauri::command]
async fn usage_export(
    state: State<'_, AppState>,
    query: UsageQuery,
    kind: String,
    path: String,
) -> Reply<(String, u64)> {
    let kind = milc_core::usage::ExportKind::parse(&kind)
        .ok_or_else(|| api(Error::invalid("kind", "shown, ndjson or csv")))?;
    state
        .console
        .export_usage_file(&query, kind, &path)
        .await
        .map_err(api)
}

#[tauri::command]
async fn alerts_list(state: State<'_, AppState>, limit: u32) -> Reply<Vec<Alert>> {
    state
        .console
        .store()
        .alerts(limit)
        .await
        .map_err(|e| api(e.into()))
}

#[tauri::command]
async fn alerts_ack(state: State<'_, AppState>, id: i64) -> Reply<bool> {
    state
        .console
        .store()
        .ack_alert(id)
        .await
        .map_err(|e| api(e.into()))
}

#[tauri::command]
async fn budgets_list(state: State<'_, AppState>) -> Reply<Vec<Budget>> {
    state
        .console
        .store()
        .budgets()
        .await
        .map_err(|e| api(e.into()))
}

/// Sets (both None: removes) a budget, in USD as typed.
#[tauri::command]
async fn budgets_set(
    state: State<'_, AppState>,
    endpoint: Option<String>,
    daily: Option<String>,
    monthly: Option<String>,
) -> Reply<Vec<Budget>> {
    let usd = |v: Option<String>, field: &str| {
        v.filter(|v| !v.trim().is_empty())
            .map(|v| {
                milc_api::Cost::parse_usd(&v)
                    .ok_or_else(|| api(Error::invalid(field, "a USD amount like 25 or 0.50")))
            })
            .transpose()
    };
    let (daily, monthly) = (usd(daily, "daily")?, usd(monthly, "monthly")?);
    let store = state.console.store();
    store
        .set_budget(endpoint.as_deref(), daily, monthly)
        .await
        .map_err(|e| api(e.into()))?;
    store.budgets().await.map_err(|e| api(e.into()))
}

#[tauri::command]
async fn runs_summary(state: State<'_, AppState>, id: i64) -> Reply<RunSummary> {
    state.console.run_summary(id).await.map_err(api)
}

/// A page of a run's results, filtered and sorted by the store.
#[tauri::command]
async fn runs_page(state: State<'_, AppState>, id: i64, query: ResultsQuery) -> Reply<ResultsPage> {
    state
        .console
        .run_results_page(id, &query)
        .await
        .map_err(api)
}

/// One dataset item of a run, for its detail view.
#[tauri::command]
async fn runs_item(state: State<'_, AppState>, id: i64, item: u64) -> Reply<DatasetItem> {
    state.console.run_item(id, item).await.map_err(api)
}

#[tauri::command]
async fn runs_compare(state: State<'_, AppState>, a: i64, b: i64) -> Reply<RunComparison> {
    state.console.compare_runs(a, b).await.map_err(api)
}

/// The UI calls this once it is interactive: the start-up time goes to the log, and to the file
/// named by `MILC_READY_FILE` for the start-up benchmark.
#[tauri::command]
fn ui_ready(state: State<'_, AppState>) {
    let ms = state.started.elapsed().as_millis();
    tracing::info!(ms, "interactive");
    if let Some(path) = std::env::var_os("MILC_READY_FILE") {
        let _ = std::fs::write(path, ms.to_string());
    }
}

pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        endpoints_list,
        endpoints_save,
        endpoints_delete,
        endpoints_test,
        chat,
        chat_cancel,
        calls_list,
        call_body,
        prompts_list,
        prompts_show,
        prompts_resolve,
        prompts_save,
        prompts_diff,
        prompts_label,
        history_list,
        datasets_list,
        datasets_preview,
        datasets_import,
        datasets_items,
        datasets_edit,
        datasets_export,
        runs_list,
        runs_create,
        runs_execute,
        runs_cancel,
        runs_summary,
        runs_page,
        runs_item,
        runs_compare,
        compare_list,
        compare_create,
        compare_run,
        compare_cancel,
        compare_judge,
        compare_task,
        compare_vote,
        compare_results,
        compare_side_by_side,
        compare_export,
        usage_report,
        usage_calls,
        usage_export,
        alerts_list,
        alerts_ack,
        budgets_list,
        budgets_set,
        ui_ready
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use milc_api::cmd;
    use serde_json::{json, Value};
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
    use tauri::webview::InvokeRequest;
    use tauri::WebviewWindowBuilder;

    type Window = tauri::WebviewWindow<tauri::test::MockRuntime>;

    /// The shell with its real commands on the mock runtime, and one window to invoke them from.
    async fn app() -> (
        tempfile::TempDir,
        tauri::App<tauri::test::MockRuntime>,
        Window,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let console = Console::open(&dir.path().join("milc.db")).await.unwrap();
        let app = crate::with_commands(mock_builder())
            .manage(AppState::new(console, Instant::now()))
            .build(mock_context(noop_assets()))
            .unwrap();
        let window = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        (dir, app, window)
    }

    fn invoke(window: &Window, command: &str, args: Value) -> Result<Value, Value> {
        let res = get_ipc_response(
            window,
            InvokeRequest {
                cmd: command.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        );
        res.map(|r| r.deserialize::<Value>().unwrap())
    }

    #[tokio::test]
    async fn command_names_in_the_api_crate_are_the_registered_ones() {
        let (_dir, _app, w) = app().await;
        let eps = invoke(&w, cmd::ENDPOINTS_LIST, json!({})).unwrap();
        assert_eq!(eps[0]["name"], "Local simulator");
        assert_eq!(eps[0]["simulator"], true);
        let calls = invoke(&w, cmd::CALLS_LIST, json!({"limit": 5})).unwrap();
        assert_eq!(calls, json!([]));
    }

    #[tokio::test]
    async fn errors_cross_as_a_kind_and_a_message_naming_the_field() {
        let (_dir, _app, w) = app().await;
        let spec = json!({"name": "x", "base_url": "localhost:8000", "model": "m"});
        let err = invoke(
            &w,
            cmd::ENDPOINTS_SAVE,
            json!({"id": null, "spec": spec, "token": {"action": "keep"}}),
        )
        .unwrap_err();
        assert_eq!(err["kind"], "config");
        assert!(
            err["message"].as_str().unwrap().starts_with("base_url:"),
            "{err}"
        );
        let missing = invoke(&w, cmd::ENDPOINTS_TEST, json!({"name": "nope"})).unwrap_err();
        assert_eq!(missing["kind"], "not_found");
    }

    #[tokio::test]
    async fn prompts_are_saved_labelled_diffed_and_resolved_through_commands() {
        let (_dir, _app, w) = app().await;
        let version = |system: &str| {
            json!({"prompt": "support", "description": "tickets", "note": "n",
                   "content": {"messages": [{"role": "system", "content": system},
                                            {"role": "user", "content": "{{q}}"}],
                               "params": {"temperature": 0.2}}})
        };
        let v1 = invoke(
            &w,
            cmd::PROMPTS_SAVE,
            json!({"version": version("A"), "create": true}),
        )
        .unwrap();
        assert_eq!(v1["version"]["version"], 1);
        let dup = invoke(
            &w,
            cmd::PROMPTS_SAVE,
            json!({"version": version("B"), "create": true}),
        )
        .unwrap_err();
        assert_eq!(dup["kind"], "conflict");
        invoke(
            &w,
            cmd::PROMPTS_SAVE,
            json!({"version": version("B"), "create": false}),
        )
        .unwrap();
        let moved = invoke(
            &w,
            cmd::PROMPTS_LABEL,
            json!({"name": "support", "version": 2, "label": "production"}),
        )
        .unwrap();
        assert_eq!(moved["to"], 2);
        let v = invoke(
            &w,
            cmd::PROMPTS_RESOLVE,
            json!({"reference": "support:production"}),
        )
        .unwrap();
        assert_eq!(v["content"]["messages"][0]["content"], "B");
        let d = invoke(
            &w,
            cmd::PROMPTS_DIFF,
            json!({"name": "support", "left": 1, "right": 2}),
        )
        .unwrap();
        assert_eq!(d["messages"][0]["rows"][0]["change"], "changed");
        let list = invoke(&w, cmd::PROMPTS_LIST, json!({})).unwrap();
        assert_eq!(list[0]["labels"]["production"], 2);
        let detail = invoke(&w, cmd::PROMPTS_SHOW, json!({"name": "support"})).unwrap();
        assert_eq!(detail["label_history"][0]["label"], "production");
        let h = invoke(&w, cmd::HISTORY_LIST, json!({"search": "", "limit": 5})).unwrap();
        assert_eq!(h, json!([]));
        let none = invoke(&w, cmd::CALL_BODY, json!({"id": 1})).unwrap();
        assert_eq!(none, Value::Null);
    }

    #[tokio::test]
    async fn endpoints_are_saved_and_edited_through_commands() {
        let (_dir, _app, w) = app().await;
        let spec = json!({"name": "vllm", "base_url": "http://127.0.0.1:9", "model": "m",
                          "prices": {"input": "0.1", "output": "0.2"}});
        let ep = invoke(
            &w,
            cmd::ENDPOINTS_SAVE,
            json!({"id": null, "spec": spec, "token": {"action": "keep"}}),
        )
        .unwrap();
        assert_eq!(ep["base_url"], "http://127.0.0.1:9/v1");
        let mut edited = spec.clone();
        edited["status"] = json!("deprecated");
        let ep = invoke(
            &w,
            cmd::ENDPOINTS_SAVE,
            json!({"id": ep["id"], "spec": edited, "token": {"action": "keep"}}),
        )
        .unwrap();
        assert_eq!(ep["status"], "deprecated");
        invoke(&w, cmd::ENDPOINTS_DELETE, json!({"name": "vllm"})).unwrap();
        assert_eq!(
            invoke(&w, cmd::ENDPOINTS_LIST, json!({}))
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
