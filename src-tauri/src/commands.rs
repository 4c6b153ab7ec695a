//! The Tauri commands, one per request struct of `milc_api::cmd`. Each is a few lines over a
//! `Console` method; the only state the shell keeps itself is the running cancellable jobs.

use std::sync::Arc;
use std::time::Instant;

use milc_api::compare::{Ballot, CompareProgress, ComparisonSpec, SideBySideQuery};
use milc_api::dataset::DatasetEdit;
use milc_api::export::Format;
use milc_api::lifecycle::{
    ArchiveScope, CandidateSpec, DriftQuery, Lifecycle, LoadTestProgress, LoadTestSpec, UseCaseSpec,
};
use milc_api::otel::OtelChange;
use milc_api::prompt::NewVersion;
use milc_api::run::{ResultsQuery, RunProgress, RunSpec};
use milc_api::usage::{AlertSettings, CallsQuery, UsageQuery};
use milc_api::{cmd, CallError, CallSource, ChatRequest, Command, EndpointSpec, TokenChange};
use milc_core::{Console, Error};
use tauri::ipc::{Channel, Invoke};
use tauri::{Runtime, State};

use crate::jobs::{JobKey, Jobs};

pub struct AppState {
    console: Arc<Console>,
    jobs: Jobs,
    started: Instant,
    /// The gateway started from the window, if any (it shares the console).
    gateway: tokio::sync::Mutex<Option<milc_gateway::Gateway>>,
    /// Why the window opened the local file instead of the team workspace it was set to.
    warning: Option<String>,
}

impl AppState {
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The console itself, for the shell's own background tasks.
    pub fn shared_console(&self) -> Arc<Console> {
        self.console.clone()
    }

    pub fn new(console: Console, started: Instant, warning: Option<String>) -> Self {
        Self {
            console: Arc::new(console),
            jobs: Jobs::default(),
            started,
            gateway: tokio::sync::Mutex::new(None),
            warning,
        }
    }
}

/// What the command declared as `C` in `milc_api::cmd` answers, so that the reply the window
/// expects and the one the shell sends cannot drift apart.
type Reply<C> = Result<<C as Command>::Reply, CallError>;

fn api(e: Error) -> CallError {
    e.to_api()
}

#[tauri::command]
async fn endpoints_list(state: State<'_, AppState>) -> Reply<cmd::EndpointsList> {
    state.console.endpoints().await.map_err(api)
}

#[tauri::command]
async fn endpoints_save(
    state: State<'_, AppState>,
    id: Option<i64>,
    spec: EndpointSpec,
    token: TokenChange,
) -> Reply<cmd::EndpointsSave> {
    state
        .console
        .save_endpoint(id, spec, token)
        .await
        .map_err(api)
}

#[tauri::command]
async fn endpoints_delete(state: State<'_, AppState>, name: String) -> Reply<cmd::EndpointsDelete> {
    state.console.remove_endpoint(&name).await.map_err(api)
}

#[tauri::command]
async fn endpoints_test(state: State<'_, AppState>, name: String) -> Reply<cmd::EndpointsTest> {
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
) -> Reply<cmd::Chat> {
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

/// A call with its kept bodies and what made it.
#[tauri::command]
async fn call_detail(state: State<'_, AppState>, id: i64) -> Reply<cmd::CallDetailGet> {
    state.console.call_detail(id).await.map_err(api)
}

#[tauri::command]
async fn prompts_list(state: State<'_, AppState>) -> Reply<cmd::PromptsList> {
    state.console.prompts().await.map_err(api)
}

#[tauri::command]
async fn prompts_show(state: State<'_, AppState>, name: String) -> Reply<cmd::PromptsShow> {
    state.console.prompt(&name).await.map_err(api)
}

#[tauri::command]
async fn prompts_resolve(
    state: State<'_, AppState>,
    reference: String,
) -> Reply<cmd::PromptsResolve> {
    state.console.resolve_prompt(&reference).await.map_err(api)
}

#[tauri::command]
async fn prompts_save(
    state: State<'_, AppState>,
    version: NewVersion,
    create: bool,
) -> Reply<cmd::PromptsSave> {
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
) -> Reply<cmd::PromptsDiff> {
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
) -> Reply<cmd::PromptsLabel> {
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
) -> Reply<cmd::HistoryList> {
    state.console.history(&search, limit).await.map_err(api)
}

fn format(name: &str) -> Result<milc_core::datasets::Format, CallError> {
    milc_core::datasets::format(name).map_err(api)
}

#[tauri::command]
async fn datasets_list(state: State<'_, AppState>) -> Reply<cmd::DatasetsList> {
    state.console.datasets().await.map_err(api)
}

#[tauri::command]
fn datasets_preview(
    state: State<'_, AppState>,
    file: String,
    kind: String,
    text: String,
) -> Reply<cmd::DatasetsPreview> {
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
) -> Reply<cmd::DatasetsImport> {
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
) -> Reply<cmd::DatasetsItems> {
    state
        .console
        .dataset_items(&reference, offset, limit)
        .await
        .map_err(api)
}

/// Stores an edited copy of a version as a new version.
#[tauri::command]
async fn datasets_edit(state: State<'_, AppState>, edit: DatasetEdit) -> Reply<cmd::DatasetsEdit> {
    state.console.edit_dataset(&edit).await.map_err(api)
}

/// Writes a version to `path` (empty: the downloads folder).
#[tauri::command]
async fn datasets_export(
    state: State<'_, AppState>,
    reference: String,
    kind: Format,
    path: String,
) -> Reply<cmd::DatasetsExport> {
    state
        .console
        .export_dataset_file(&reference, kind, &path)
        .await
        .map_err(api)
}

#[tauri::command]
async fn runs_list(state: State<'_, AppState>) -> Reply<cmd::RunsList> {
    state.console.runs().await.map_err(api)
}

#[tauri::command]
async fn runs_create(state: State<'_, AppState>, spec: RunSpec) -> Reply<cmd::RunsCreate> {
    state.console.create_run(spec).await.map_err(api)
}

/// Runs (or resumes) a run, pushing progress through `on_progress`; `runs_cancel` stops it.
#[tauri::command]
async fn runs_execute(
    state: State<'_, AppState>,
    id: i64,
    on_progress: Channel<RunProgress>,
) -> Reply<cmd::RunsExecute> {
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
async fn compare_list(state: State<'_, AppState>) -> Reply<cmd::CompareList> {
    state.console.comparisons().await.map_err(api)
}

#[tauri::command]
async fn compare_create(
    state: State<'_, AppState>,
    spec: ComparisonSpec,
) -> Reply<cmd::CompareCreate> {
    state.console.create_comparison(spec).await.map_err(api)
}

/// Runs a comparison's variants, pushing progress through `on_progress`; `compare_cancel`
/// stops it (a later run resumes).
#[tauri::command]
async fn compare_run(
    state: State<'_, AppState>,
    name: String,
    on_progress: Channel<CompareProgress>,
) -> Reply<cmd::CompareRun> {
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

/// An LLM judge votes on every pair in both orders; progress is (done, total);
/// `compare_judge_cancel` stops it (a later judge run resumes).
#[tauri::command]
async fn compare_judge(
    state: State<'_, AppState>,
    name: String,
    judge: String,
    on_progress: Channel<(u64, u64)>,
) -> Reply<cmd::CompareJudge> {
    let job = state.jobs.start(JobKey::Judge(name.clone()));
    let report = |done: u64, total: u64| {
        let _ = on_progress.send((done, total));
    };
    state
        .console
        .judge_comparison(&name, &judge, &report, job.token())
        .await
        .map_err(api)
}

#[tauri::command]
fn compare_judge_cancel(state: State<'_, AppState>, name: String) {
    state.jobs.cancel(&JobKey::Judge(name));
}

#[tauri::command]
async fn compare_task(
    state: State<'_, AppState>,
    name: String,
    rater: String,
    index: u64,
) -> Reply<cmd::CompareTask> {
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
) -> Reply<cmd::CompareVote> {
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
) -> Reply<cmd::CompareResults> {
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
) -> Reply<cmd::CompareSideBySide> {
    state.console.side_by_side(&name, &query).await.map_err(api)
}

/// Writes `finetune`, `dpo` or `csv` to `path` (empty: the downloads folder).
#[tauri::command]
async fn compare_export(
    state: State<'_, AppState>,
    name: String,
    kind: Format,
    path: String,
) -> Reply<cmd::CompareExport> {
    state
        .console
        .export_comparison_file(&name, kind, &path)
        .await
        .map_err(api)
}

#[tauri::command]
async fn usage_report(state: State<'_, AppState>, query: UsageQuery) -> Reply<cmd::UsageReport> {
    state.console.usage(&query).await.map_err(api)
}

/// The calls behind a bar of a chart.
#[tauri::command]
async fn usage_calls(state: State<'_, AppState>, query: CallsQuery) -> Reply<cmd::UsageCalls> {
    state.console.usage_calls(&query).await.map_err(api)
}

/// Writes what is shown (`shown`) or the calls of its range (`ndjson`, `csv`) to `path`
/// (empty: the downloads folder); returns the path and the rows written.
#[tauri::command]
async fn usage_export(
    state: State<'_, AppState>,
    query: UsageQuery,
    kind: Format,
    path: String,
) -> Reply<cmd::UsageExport> {
    state
        .console
        .export_usage_file(&query, kind, &path)
        .await
        .map_err(api)
}

#[tauri::command]
async fn alerts_list(state: State<'_, AppState>, limit: u32) -> Reply<cmd::AlertsList> {
    state.console.alerts(limit).await.map_err(api)
}

#[tauri::command]
async fn alerts_ack(state: State<'_, AppState>, id: i64) -> Reply<cmd::AlertsAck> {
    state
        .console
        .ack_alert(id)
        .await
        .map(|()| true)
        .map_err(api)
}

#[tauri::command]
async fn budgets_list(state: State<'_, AppState>) -> Reply<cmd::BudgetsList> {
    state.console.budgets().await.map_err(api)
}

/// Sets (both empty: removes) a budget, in USD as typed.
#[tauri::command]
async fn budgets_set(
    state: State<'_, AppState>,
    endpoint: Option<String>,
    daily: Option<String>,
    monthly: Option<String>,
) -> Reply<cmd::BudgetsSet> {
    state
        .console
        .set_budget(endpoint.as_deref(), daily.as_deref(), monthly.as_deref())
        .await
        .map_err(api)
}

#[tauri::command]
async fn prices_list(state: State<'_, AppState>, endpoint: String) -> Reply<cmd::PricesList> {
    state.console.prices(&endpoint).await.map_err(api)
}

/// A dated price, as typed.
#[tauri::command]
async fn prices_set(
    state: State<'_, AppState>,
    endpoint: String,
    from: String,
    input: String,
    cached: String,
    output: String,
) -> Reply<cmd::PricesSet> {
    state
        .console
        .set_price_as_typed(&endpoint, &from, &input, &cached, &output)
        .await
        .map_err(api)
}

/// Costs a range of calls again (`apply` false: a preview that writes nothing).
#[tauri::command]
async fn prices_recompute(
    state: State<'_, AppState>,
    since: String,
    until: String,
    apply: bool,
) -> Reply<cmd::PricesRecompute> {
    state
        .console
        .recompute_costs_as_typed(&since, &until, apply)
        .await
        .map_err(api)
}

#[tauri::command]
async fn alert_settings_get(state: State<'_, AppState>) -> Reply<cmd::AlertSettingsGet> {
    state.console.alert_settings().await.map_err(api)
}

#[tauri::command]
async fn alert_settings_set(
    state: State<'_, AppState>,
    settings: AlertSettings,
) -> Reply<cmd::AlertSettingsSet> {
    state
        .console
        .set_alert_settings(&settings)
        .await
        .map_err(api)
}

#[tauri::command]
async fn retention_get(state: State<'_, AppState>) -> Reply<cmd::RetentionGet> {
    state.console.retention().await.map_err(api)
}

#[tauri::command]
async fn retention_set(state: State<'_, AppState>, days: Option<u32>) -> Reply<cmd::RetentionSet> {
    state.console.set_retention(days).await.map_err(api)
}

#[tauri::command]
async fn runs_summary(state: State<'_, AppState>, id: i64) -> Reply<cmd::RunsSummary> {
    state.console.run_summary(id).await.map_err(api)
}

/// A page of a run's results, filtered and sorted by the store.
#[tauri::command]
async fn runs_page(
    state: State<'_, AppState>,
    id: i64,
    query: ResultsQuery,
) -> Reply<cmd::RunsPage> {
    state
        .console
        .run_results_page(id, &query)
        .await
        .map_err(api)
}

/// One dataset item of a run, for its detail view.
#[tauri::command]
async fn runs_item(state: State<'_, AppState>, id: i64, item: u64) -> Reply<cmd::RunsItem> {
    state.console.run_item(id, item).await.map_err(api)
}

#[tauri::command]
async fn runs_compare(state: State<'_, AppState>, a: i64, b: i64) -> Reply<cmd::RunsCompare> {
    state.console.compare_runs(a, b).await.map_err(api)
}

#[tauri::command]
async fn routes_list(state: State<'_, AppState>) -> Reply<cmd::RoutesList> {
    state.console.routes().await.map_err(api)
}

#[tauri::command]
async fn routes_set_weight(
    state: State<'_, AppState>,
    route: String,
    arm: String,
    weight: f64,
) -> Reply<cmd::RoutesSetWeight> {
    state
        .console
        .set_weight(&route, &arm, weight)
        .await
        .map_err(api)
}

#[tauri::command]
async fn routes_rollback(
    state: State<'_, AppState>,
    route: String,
    reason: String,
) -> Reply<cmd::RoutesRollback> {
    let who = state.console.author();
    state
        .console
        .rollback(&route, &who, &reason)
        .await
        .map_err(api)
}

#[tauri::command]
async fn routes_promote(
    state: State<'_, AppState>,
    route: String,
    reason: String,
) -> Reply<cmd::RoutesPromote> {
    let who = state.console.author();
    state
        .console
        .promote(&route, &who, &reason)
        .await
        .map_err(api)
}

#[tauri::command]
async fn canary_status(state: State<'_, AppState>, route: String) -> Reply<cmd::CanaryStatusGet> {
    state.console.canary_status(&route).await.map_err(api)
}

#[tauri::command]
async fn gateway_keys_list(state: State<'_, AppState>) -> Reply<cmd::GatewayKeysList> {
    state.console.gateway_keys().await.map_err(api)
}

/// The key itself crosses to the window once, to be copied; only its hash is stored.
#[tauri::command]
async fn gateway_keys_create(
    state: State<'_, AppState>,
    name: String,
    rate_per_min: Option<u32>,
    daily_budget: Option<String>,
) -> Reply<cmd::GatewayKeysCreate> {
    let k = state
        .console
        .create_gateway_key(&name, rate_per_min, daily_budget.as_deref())
        .await
        .map_err(api)?;
    Ok(milc_api::gateway::NewGatewayKey {
        key: k.key,
        secret: k.secret.expose().to_owned(),
    })
}

#[tauri::command]
async fn gateway_keys_revoke(
    state: State<'_, AppState>,
    name: String,
) -> Reply<cmd::GatewayKeysRevoke> {
    state.console.revoke_gateway_key(&name).await.map_err(api)
}

/// Starts a gateway in this process on `listen` (the window's own console: its alerts become
/// notifications here).
#[tauri::command]
async fn gateway_start(state: State<'_, AppState>, listen: String) -> Reply<cmd::GatewayStart> {
    let mut running = state.gateway.lock().await;
    if let Some(gw) = running.as_ref() {
        return Ok(milc_api::gateway::GatewayInfo {
            base_url: gw.base_url(),
        });
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| CallError::config(format!("listen: cannot listen on {listen}: {e}")))?;
    let gw = milc_gateway::Gateway::start(state.console.clone(), listener, Default::default())
        .await
        .map_err(api)?;
    let info = milc_api::gateway::GatewayInfo {
        base_url: gw.base_url(),
    };
    *running = Some(gw);
    Ok(info)
}

/// Stops the window's gateway after its in-flight requests (and their logging) finish.
#[tauri::command]
async fn gateway_stop(state: State<'_, AppState>) -> Reply<cmd::GatewayStop> {
    if let Some(gw) = state.gateway.lock().await.take() {
        gw.stop().await;
    }
    Ok(())
}

#[tauri::command]
async fn gateway_state(state: State<'_, AppState>) -> Reply<cmd::GatewayState> {
    Ok(state
        .gateway
        .lock()
        .await
        .as_ref()
        .map(|gw| milc_api::gateway::GatewayInfo {
            base_url: gw.base_url(),
        }))
}

#[tauri::command]
async fn otel_get(state: State<'_, AppState>) -> Reply<cmd::OtelGet> {
    state.console.otel_get().await.map_err(api)
}

/// Sets the OpenTelemetry export; header values go to the OS keyring.
#[tauri::command]
async fn otel_set(state: State<'_, AppState>, change: OtelChange) -> Reply<cmd::OtelSet> {
    state.console.otel_set(&change).await.map_err(api)
}

#[tauri::command]
async fn otel_clear(state: State<'_, AppState>) -> Reply<cmd::OtelClear> {
    state.console.otel_clear().await.map_err(api)
}

#[tauri::command]
async fn otel_status(state: State<'_, AppState>) -> Reply<cmd::OtelStatusGet> {
    state.console.otel_status().await.map_err(api)
}

#[tauri::command]
async fn demo_state(state: State<'_, AppState>) -> Reply<cmd::DemoStateGet> {
    state.console.demo_state().await.map_err(api)
}

#[tauri::command]
async fn demo_load(state: State<'_, AppState>) -> Reply<cmd::DemoLoad> {
    state.console.demo_load().await.map_err(api)
}

#[tauri::command]
async fn demo_remove(state: State<'_, AppState>) -> Reply<cmd::DemoRemove> {
    state.console.demo_remove().await.map_err(api)
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

#[tauri::command]
async fn whoami(state: State<'_, AppState>) -> Reply<cmd::WhoAmI> {
    let mut id = state.console.identity().await.map_err(api)?;
    id.warning = state.warning.clone();
    Ok(id)
}

#[tauri::command]
async fn author_set(state: State<'_, AppState>, name: String) -> Reply<cmd::AuthorSet> {
    state.console.set_author(&name).map_err(api)?;
    let mut s = crate::store::load();
    s.author = Some(state.console.author());
    crate::store::save(&s).map_err(api)?;
    whoami(state).await
}

#[tauri::command]
async fn activity_list(state: State<'_, AppState>, limit: u32) -> Reply<cmd::ActivityList> {
    state.console.activity(limit).await.map_err(api)
}

/// Checks the workspace opens, keeps the choice, and reopens the window on it.
#[tauri::command]
async fn workspace_open<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
    url: String,
    workspace: String,
    password: Option<String>,
) -> Reply<cmd::WorkspaceOpen> {
    let password = password
        .filter(|p| !p.is_empty())
        .map(milc_core::SecretString::new);
    crate::store::choose_team(url.trim(), workspace.trim(), password)
        .await
        .map_err(api)?;
    state.console.close().await;
    app.restart()
}

/// Reopens the window on the local file.
#[tauri::command]
async fn workspace_local<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
) -> Reply<cmd::WorkspaceLocal> {
    crate::store::choose_local().map_err(api)?;
    state.console.close().await;
    app.restart()
}

#[tauri::command]
async fn usecases_list(state: State<'_, AppState>) -> Reply<cmd::UsecasesList> {
    state.console.usecases().await.map_err(api)
}

#[tauri::command]
async fn usecases_save(
    state: State<'_, AppState>,
    name: Option<String>,
    spec: UseCaseSpec,
) -> Reply<cmd::UsecasesSave> {
    match name {
        None => state.console.create_usecase(spec).await,
        Some(name) => state.console.update_usecase(&name, spec).await,
    }
    .map_err(api)
}

#[tauri::command]
async fn usecases_candidate(
    state: State<'_, AppState>,
    usecase: String,
    candidate: CandidateSpec,
    choose: bool,
) -> Reply<cmd::UsecasesCandidate> {
    state
        .console
        .add_candidate(&usecase, candidate, choose)
        .await
        .map_err(api)
}

#[tauri::command]
async fn usecases_choose(
    state: State<'_, AppState>,
    usecase: String,
    id: i64,
) -> Reply<cmd::UsecasesChoose> {
    state
        .console
        .choose_candidate(&usecase, id)
        .await
        .map_err(api)
}

#[tauri::command]
async fn usecases_attach_run(
    state: State<'_, AppState>,
    usecase: String,
    id: i64,
) -> Reply<cmd::UsecasesAttachRun> {
    state.console.attach_run(&usecase, id).await.map_err(api)
}

#[tauri::command]
async fn usecases_attach_loadtest(
    state: State<'_, AppState>,
    usecase: String,
    id: i64,
) -> Reply<cmd::UsecasesAttachLoadtest> {
    state
        .console
        .attach_loadtest(&usecase, id)
        .await
        .map_err(api)
}

#[tauri::command]
async fn loadtests_list(state: State<'_, AppState>) -> Reply<cmd::LoadtestsList> {
    state.console.loadtests().await.map_err(api)
}

#[tauri::command]
async fn loadtest_run(
    state: State<'_, AppState>,
    spec: LoadTestSpec,
    on_progress: Channel<LoadTestProgress>,
) -> Reply<cmd::LoadtestRun> {
    let job = state.jobs.start(JobKey::Loadtest);
    let report = |p: &LoadTestProgress| {
        let _ = on_progress.send(p.clone());
    };
    state
        .console
        .loadtest(spec, &report, job.token())
        .await
        .map_err(api)
}

#[tauri::command]
fn loadtest_cancel(state: State<'_, AppState>) {
    state.jobs.cancel(&JobKey::Loadtest);
}

#[tauri::command]
async fn drift_report(state: State<'_, AppState>, query: DriftQuery) -> Reply<cmd::DriftReportGet> {
    state.console.drift(&query).await.map_err(api)
}

#[tauri::command]
async fn schedules_list(state: State<'_, AppState>) -> Reply<cmd::SchedulesList> {
    state.console.schedules().await.map_err(api)
}

#[tauri::command]
async fn archive_create(
    state: State<'_, AppState>,
    scope: ArchiveScope,
    path: String,
    on_progress: Channel<(u64, u64)>,
) -> Reply<cmd::ArchiveCreate> {
    let mut report = |done: u64, total: u64| {
        let _ = on_progress.send((done, total));
    };
    state
        .console
        .archive_create(&scope, None, None, &path, &mut report)
        .await
        .map_err(api)
}

#[tauri::command]
async fn retirement_list(state: State<'_, AppState>) -> Reply<cmd::RetirementList> {
    state.console.retirement().await.map_err(api)
}

#[tauri::command]
async fn endpoint_used_by(state: State<'_, AppState>, name: String) -> Reply<cmd::EndpointUsedBy> {
    state.console.endpoint_used_by(&name).await.map_err(api)
}

#[tauri::command]
async fn endpoint_lifecycle(
    state: State<'_, AppState>,
    name: String,
    lifecycle: Lifecycle,
    force: bool,
) -> Reply<cmd::EndpointLifecycleSet> {
    state
        .console
        .set_lifecycle(&name, lifecycle, force)
        .await
        .map_err(api)
}

/// Registers each command once: the handler Tauri dispatches with, and (for the test that holds
/// it to `milc_api::ALL_COMMANDS`) the list of their names.
macro_rules! register {
    ($($command:ident),* $(,)?) => {
        pub fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($command),*]
        }

        #[cfg(test)]
        const REGISTERED: &[&str] = &[$(stringify!($command)),*];
    };
}

register![
    usecases_list,
    usecases_save,
    usecases_candidate,
    usecases_choose,
    usecases_attach_run,
    usecases_attach_loadtest,
    loadtests_list,
    loadtest_run,
    loadtest_cancel,
    drift_report,
    schedules_list,
    archive_create,
    retirement_list,
    endpoint_used_by,
    endpoint_lifecycle,
    endpoints_list,
    endpoints_save,
    endpoints_delete,
    endpoints_test,
    chat,
    chat_cancel,
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
    compare_judge_cancel,
    compare_task,
    compare_vote,
    compare_results,
    compare_side_by_side,
    compare_export,
    usage_report,
    usage_calls,
    call_detail,
    usage_export,
    alerts_list,
    alerts_ack,
    budgets_list,
    budgets_set,
    prices_list,
    prices_set,
    prices_recompute,
    alert_settings_get,
    alert_settings_set,
    retention_get,
    retention_set,
    routes_list,
    routes_set_weight,
    routes_rollback,
    routes_promote,
    canary_status,
    gateway_keys_list,
    gateway_keys_create,
    gateway_keys_revoke,
    gateway_start,
    gateway_stop,
    gateway_state,
    otel_get,
    otel_set,
    otel_clear,
    otel_status,
    demo_state,
    demo_load,
    demo_remove,
    ui_ready,
    whoami,
    author_set,
    workspace_open,
    workspace_local,
    activity_list,
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use milc_api::prompt::{Change, PromptContent};
    use milc_api::{EndpointStatus, ErrorKind, Message, Params, Role};
    use serde_json::{json, Value};
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
    use tauri::webview::InvokeRequest;
    use tauri::WebviewWindowBuilder;

    type Window = tauri::WebviewWindow<tauri::test::MockRuntime>;

    /// The shell with its real commands on the mock runtime, and one window to invoke them from.
    /// `invoke` blocks its thread until the command answers, while the store's tasks run on the
    /// test's runtime: the tests use a multi-thread runtime so that those tasks keep going.
    async fn app() -> (
        tempfile::TempDir,
        tauri::App<tauri::test::MockRuntime>,
        Window,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let console = Console::open(&dir.path().join("milc.db")).await.unwrap();
        let app = crate::with_commands(mock_builder())
            .manage(AppState::new(console, Instant::now(), None))
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

    /// Sends a request as the window does and reads the reply as the window would.
    fn call<C: Command>(window: &Window, request: C) -> Result<C::Reply, CallError> {
        let args = serde_json::to_value(&request).unwrap();
        match invoke(window, C::NAME, args) {
            Ok(reply) => Ok(serde_json::from_value(reply).expect("the declared reply type")),
            Err(e) => Err(serde_json::from_value(e).expect("a CallError")),
        }
    }

    #[test]
    fn the_shell_registers_every_declared_command_and_nothing_else() {
        let declared: BTreeSet<&str> = milc_api::ALL_COMMANDS.iter().copied().collect();
        let registered: BTreeSet<&str> = REGISTERED.iter().copied().collect();
        assert_eq!(
            registered.len(),
            REGISTERED.len(),
            "a command registered twice"
        );
        let missing: Vec<_> = declared.difference(&registered).collect();
        let undeclared: Vec<_> = registered.difference(&declared).collect();
        assert!(
            missing.is_empty() && undeclared.is_empty(),
            "declared in milc_api::cmd but not registered: {missing:?}; \
             registered but not declared: {undeclared:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_declared_command_reaches_a_handler() {
        let (_dir, _app, w) = app().await;
        let unknown = |name: &str| json!(format!("Command {name} not found"));
        assert_eq!(
            invoke(&w, "no_such_command", json!({})),
            Err(unknown("no_such_command"))
        );
        // Without arguments a command either runs (it takes none) or refuses its arguments;
        // none of them may be unknown to the dispatcher. (Going back to the local file takes
        // no argument and reopens the window: its registration is checked by name below.)
        let reopens = [cmd::WorkspaceLocal::NAME];
        for name in milc_api::ALL_COMMANDS
            .iter()
            .filter(|n| !reopens.contains(n))
        {
            assert_ne!(invoke(&w, name, json!({})), Err(unknown(name)), "{name}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn command_names_in_the_api_crate_are_the_registered_ones() {
        let (_dir, _app, w) = app().await;
        let eps = call(&w, cmd::EndpointsList {}).unwrap();
        assert_eq!(eps[0].spec.name, "Local simulator");
        assert!(eps[0].simulator);
        let calls = cmd::UsageCalls {
            query: milc_api::usage::CallsQuery {
                since_ms: 0,
                until_ms: i64::MAX,
                endpoint: None,
                prompt: None,
                source: None,
                outcome: None,
                limit: 5,
            },
        };
        assert!(call(&w, calls).unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn errors_cross_as_a_kind_and_a_message_naming_the_field() {
        let (_dir, _app, w) = app().await;
        let save = cmd::EndpointsSave {
            id: None,
            spec: EndpointSpec::new("x", "localhost:8000", "m"),
            token: TokenChange::Keep,
        };
        let err = call(&w, save).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.starts_with("base_url:"), "{err}");
        let missing = call(
            &w,
            cmd::EndpointsTest {
                name: "nope".into(),
            },
        )
        .unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn prompts_are_saved_labelled_diffed_and_resolved_through_commands() {
        let (_dir, _app, w) = app().await;
        let save = |system: &str, create: bool| cmd::PromptsSave {
            version: NewVersion {
                prompt: "support".into(),
                description: Some("tickets".into()),
                note: "n".into(),
                content: PromptContent {
                    messages: vec![
                        Message::new(Role::System, system),
                        Message::new(Role::User, "{{q}}"),
                    ],
                    params: Params {
                        temperature: Some(0.2),
                        ..Params::default()
                    },
                    ..PromptContent::default()
                },
            },
            create,
        };
        let v1 = call(&w, save("A", true)).unwrap();
        assert_eq!(v1.version.version, 1);
        let dup = call(&w, save("B", true)).unwrap_err();
        assert_eq!(dup.kind, ErrorKind::Conflict);
        call(&w, save("B", false)).unwrap();
        let label = cmd::PromptsLabel {
            name: "support".into(),
            version: 2,
            label: "production".into(),
        };
        assert_eq!(call(&w, label).unwrap().unwrap().to, 2);
        let reference = "support:production".into();
        let v = call(&w, cmd::PromptsResolve { reference }).unwrap();
        assert_eq!(v.content.messages[0].content, "B");
        let diff = cmd::PromptsDiff {
            name: "support".into(),
            left: 1,
            right: 2,
        };
        let d = call(&w, diff).unwrap();
        assert_eq!(d.messages[0].rows[0].change, Change::Changed);
        let list = call(&w, cmd::PromptsList {}).unwrap();
        assert_eq!(list[0].labels["production"], 2);
        let detail = call(
            &w,
            cmd::PromptsShow {
                name: "support".into(),
            },
        )
        .unwrap();
        assert_eq!(detail.label_history[0].label, "production");
        let search = cmd::HistoryList {
            search: String::new(),
            limit: 5,
        };
        assert!(call(&w, search).unwrap().is_empty());
        let missing = call(&w, cmd::CallDetailGet { id: 1 }).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::NotFound, "{}", missing.message);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn endpoints_are_saved_and_edited_through_commands() {
        let (_dir, _app, w) = app().await;
        let mut spec = EndpointSpec::new("vllm", "http://127.0.0.1:9", "m");
        spec.prices = serde_json::from_value(json!({"input": "0.1", "output": "0.2"})).unwrap();
        let save = |id, spec| cmd::EndpointsSave {
            id,
            spec,
            token: TokenChange::Keep,
        };
        let ep = call(&w, save(None, spec.clone())).unwrap();
        assert_eq!(ep.spec.base_url, "http://127.0.0.1:9/v1");
        spec.max_retries = 5;
        let ep = call(&w, save(Some(ep.id), spec.clone())).unwrap();
        assert_eq!(ep.spec.max_retries, 5);
        // The lifecycle is not edited with the rest: set_lifecycle checks what still uses it.
        spec.status = EndpointStatus::Deprecated;
        let refused = call(&w, save(Some(ep.id), spec)).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Config);
        assert!(
            refused.message.starts_with("status:"),
            "{}",
            refused.message
        );
        call(
            &w,
            cmd::EndpointsDelete {
                name: "vllm".into(),
            },
        )
        .unwrap();
        assert_eq!(call(&w, cmd::EndpointsList {}).unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn cancelling_a_job_that_is_not_running_does_nothing() {
        let (_dir, _app, w) = app().await;
        call(
            &w,
            cmd::CompareCancel {
                name: "none".into(),
            },
        )
        .unwrap();
        let judge = cmd::CompareJudgeCancel {
            name: "none".into(),
        };
        call(&w, judge).unwrap();
        call(&w, cmd::RunsCancel { id: 9 }).unwrap();
        call(&w, cmd::ChatCancel { run: "r".into() }).unwrap();
    }
}
