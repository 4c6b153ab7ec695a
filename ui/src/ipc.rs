//! The one typed way to reach the desktop shell: `invoke` through `window.__TAURI__.core`, with
//! command names from `milc_api::cmd`, arguments serialized as plain JSON objects, and errors
//! arriving as `CallError`.

use milc_api::compare::{
    Ballot, CompareExported, ComparisonInfo, ComparisonResults, ComparisonSpec, JudgeRun,
    RatingTask, SideBySide, SideBySideQuery,
};
use milc_api::dataset::{
    DatasetEdit, DatasetItem, DatasetPreview, DatasetVersion, Exported, Imported,
};
use milc_api::prompt::{
    HistoryEntry, LabelMove, NewVersion, PromptDetail, PromptDiff, PromptSummary, PromptVersion,
    Saved,
};
use milc_api::run::{ResultsPage, ResultsQuery, RunComparison, RunInfo, RunSpec, RunSummary};
use milc_api::usage::{Alert, Budget, CallsQuery, UsageQuery, UsageReport};
use milc_api::{
    cmd, CallError, CallRecord, ChatRequest, ChatResult, ConnectionTest, Endpoint, EndpointSpec,
    ErrorKind, TokenChange,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

fn local(message: impl ToString) -> CallError {
    CallError {
        kind: ErrorKind::Internal,
        message: message.to_string(),
        status: None,
    }
}

fn to_js<A: Serialize>(args: &A) -> Result<JsValue, CallError> {
    args.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(local)
}

async fn call<R: DeserializeOwned>(command: &str, args: JsValue) -> Result<R, CallError> {
    match tauri_invoke(command, args).await {
        Ok(v) => serde_wasm_bindgen::from_value(v).map_err(local),
        Err(e) => Err(serde_wasm_bindgen::from_value::<CallError>(e.clone())
            .unwrap_or_else(|_| local(e.as_string().unwrap_or_else(|| format!("{e:?}"))))),
    }
}

pub async fn invoke<A: Serialize, R: DeserializeOwned>(
    command: &str,
    args: &A,
) -> Result<R, CallError> {
    call(command, to_js(args)?).await
}

/// A Tauri channel: the shell pushes values into it while a command runs.
pub struct Channel {
    js: JsValue,
    _on_message: Closure<dyn FnMut(JsValue)>,
}

impl Channel {
    /// A channel of strings (streamed answer pieces).
    pub fn new(mut on_message: impl FnMut(String) + 'static) -> Result<Self, CallError> {
        Self::of_values(move |v| on_message(v.as_string().unwrap_or_default()))
    }

    /// A channel of JSON values of type `T` (run progress); values that do not parse are dropped.
    pub fn of_json<T: DeserializeOwned + 'static>(
        mut on_message: impl FnMut(T) + 'static,
    ) -> Result<Self, CallError> {
        Self::of_values(move |v| {
            if let Ok(t) = serde_wasm_bindgen::from_value(v) {
                on_message(t)
            }
        })
    }

    fn of_values(mut on_message: impl FnMut(JsValue) + 'static) -> Result<Self, CallError> {
        let window: JsValue = web_sys::window().ok_or_else(|| local("no window"))?.into();
        let core = js_sys::Reflect::get(&window, &"__TAURI__".into())
            .and_then(|t| js_sys::Reflect::get(&t, &"core".into()))
            .map_err(|_| local("not running inside the desktop app"))?;
        let ctor: js_sys::Function = js_sys::Reflect::get(&core, &"Channel".into())
            .map_err(|_| local("the Tauri Channel is missing"))?
            .dyn_into()
            .map_err(|_| local("the Tauri Channel is not a constructor"))?;
        let js = js_sys::Reflect::construct(&ctor, &js_sys::Array::new())
            .map_err(|_| local("cannot open a channel"))?;
        let cb = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| on_message(v));
        js_sys::Reflect::set(&js, &"onmessage".into(), cb.as_ref())
            .map_err(|_| local("cannot listen on the channel"))?;
        Ok(Self {
            js,
            _on_message: cb,
        })
    }
}

pub async fn endpoints_list() -> Result<Vec<Endpoint>, CallError> {
    invoke(cmd::ENDPOINTS_LIST, &json!({})).await
}

pub async fn endpoints_save(
    id: Option<i64>,
    spec: &EndpointSpec,
    token: &TokenChange,
) -> Result<Endpoint, CallError> {
    invoke(
        cmd::ENDPOINTS_SAVE,
        &json!({"id": id, "spec": spec, "token": token}),
    )
    .await
}

pub async fn endpoints_delete(name: &str) -> Result<(), CallError> {
    invoke(cmd::ENDPOINTS_DELETE, &json!({ "name": name })).await
}

pub async fn endpoints_test(name: &str) -> Result<ConnectionTest, CallError> {
    invoke(cmd::ENDPOINTS_TEST, &json!({ "name": name })).await
}

/// Runs a chat; content pieces arrive on `channel` while this waits for the final figures.
pub async fn chat(
    endpoint: &str,
    request: &ChatRequest,
    run: &str,
    channel: &Channel,
) -> Result<ChatResult, CallError> {
    let args = to_js(&json!({"endpoint": endpoint, "request": request, "run": run}))?;
    js_sys::Reflect::set(&args, &"onEvent".into(), &channel.js)
        .map_err(|_| local("cannot pass the channel"))?;
    call(cmd::CHAT, args).await
}

pub async fn chat_cancel(run: &str) -> Result<(), CallError> {
    invoke(cmd::CHAT_CANCEL, &json!({ "run": run })).await
}

pub async fn calls_list(limit: u32) -> Result<Vec<CallRecord>, CallError> {
    invoke(cmd::CALLS_LIST, &json!({ "limit": limit })).await
}

pub async fn prompts_list() -> Result<Vec<PromptSummary>, CallError> {
    invoke(cmd::PROMPTS_LIST, &json!({})).await
}

pub async fn prompts_show(name: &str) -> Result<PromptDetail, CallError> {
    invoke(cmd::PROMPTS_SHOW, &json!({ "name": name })).await
}

pub async fn prompts_resolve(reference: &str) -> Result<PromptVersion, CallError> {
    invoke(cmd::PROMPTS_RESOLVE, &json!({ "reference": reference })).await
}

pub async fn prompts_save(version: &NewVersion, create: bool) -> Result<Saved, CallError> {
    invoke(
        cmd::PROMPTS_SAVE,
        &json!({"version": version, "create": create}),
    )
    .await
}

pub async fn prompts_diff(name: &str, left: u32, right: u32) -> Result<PromptDiff, CallError> {
    invoke(
        cmd::PROMPTS_DIFF,
        &json!({"name": name, "left": left, "right": right}),
    )
    .await
}

pub async fn prompts_label(
    name: &str,
    version: u32,
    label: &str,
) -> Result<Option<LabelMove>, CallError> {
    invoke(
        cmd::PROMPTS_LABEL,
        &json!({"name": name, "version": version, "label": label}),
    )
    .await
}

pub async fn history_list(search: &str, limit: u32) -> Result<Vec<HistoryEntry>, CallError> {
    invoke(
        cmd::HISTORY_LIST,
        &json!({"search": search, "limit": limit}),
    )
    .await
}

pub async fn datasets_list() -> Result<Vec<DatasetVersion>, CallError> {
    invoke(cmd::DATASETS_LIST, &json!({})).await
}

pub async fn datasets_preview(
    file: &str,
    kind: &str,
    text: &str,
) -> Result<DatasetPreview, CallError> {
    invoke(
        cmd::DATASETS_PREVIEW,
        &json!({"file": file, "kind": kind, "text": text}),
    )
    .await
}

pub async fn datasets_import(
    name: &str,
    file: &str,
    kind: &str,
    text: &str,
) -> Result<Imported, CallError> {
    invoke(
        cmd::DATASETS_IMPORT,
        &json!({"name": name, "file": file, "kind": kind, "text": text}),
    )
    .await
}

pub async fn datasets_items(
    reference: &str,
    offset: u64,
    limit: u64,
) -> Result<(DatasetVersion, Vec<DatasetItem>), CallError> {
    invoke(
        cmd::DATASETS_ITEMS,
        &json!({"reference": reference, "offset": offset, "limit": limit}),
    )
    .await
}

pub async fn datasets_edit(edit: &DatasetEdit) -> Result<Imported, CallError> {
    invoke(cmd::DATASETS_EDIT, &json!({ "edit": edit })).await
}

pub async fn datasets_export(
    reference: &str,
    kind: &str,
    path: &str,
) -> Result<Exported, CallError> {
    invoke(
        cmd::DATASETS_EXPORT,
        &json!({"reference": reference, "kind": kind, "path": path}),
    )
    .await
}

pub async fn runs_list() -> Result<Vec<RunInfo>, CallError> {
    invoke(cmd::RUNS_LIST, &json!({})).await
}

pub async fn runs_create(spec: &RunSpec) -> Result<RunInfo, CallError> {
    invoke(cmd::RUNS_CREATE, &json!({ "spec": spec })).await
}

/// Runs (or resumes) a run; progress arrives on `channel` while this waits for the summary.
pub async fn runs_execute(id: i64, channel: &Channel) -> Result<RunSummary, CallError> {
    let args = to_js(&json!({ "id": id }))?;
    js_sys::Reflect::set(&args, &"onProgress".into(), &channel.js)
        .map_err(|_| local("cannot pass the channel"))?;
    call(cmd::RUNS_EXECUTE, args).await
}

pub async fn runs_cancel(id: i64) -> Result<(), CallError> {
    invoke(cmd::RUNS_CANCEL, &json!({ "id": id })).await
}

pub async fn runs_summary(id: i64) -> Result<RunSummary, CallError> {
    invoke(cmd::RUNS_SUMMARY, &json!({ "id": id })).await
}

pub async fn runs_page(id: i64, query: &ResultsQuery) -> Result<ResultsPage, CallError> {
    invoke(cmd::RUNS_PAGE, &json!({"id": id, "query": query})).await
}

pub async fn runs_item(id: i64, item: u64) -> Result<DatasetItem, CallError> {
    invoke(cmd::RUNS_ITEM, &json!({"id": id, "item": item})).await
}

pub async fn runs_compare(a: i64, b: i64) -> Result<RunComparison, CallError> {
    invoke(cmd::RUNS_COMPARE, &json!({"a": a, "b": b})).await
}

pub async fn compare_list() -> Result<Vec<ComparisonInfo>, CallError> {
    invoke(cmd::COMPARE_LIST, &json!({})).await
}

pub async fn compare_create(spec: &ComparisonSpec) -> Result<ComparisonInfo, CallError> {
    invoke(cmd::COMPARE_CREATE, &json!({ "spec": spec })).await
}

/// Runs a comparison's variants; progress arrives on `channel`.
pub async fn compare_run(name: &str, channel: &Channel) -> Result<ComparisonInfo, CallError> {
    let args = to_js(&json!({ "name": name }))?;
    js_sys::Reflect::set(&args, &"onProgress".into(), &channel.js)
        .map_err(|_| local("cannot pass the channel"))?;
    call(cmd::COMPARE_RUN, args).await
}

pub async fn compare_cancel(name: &str) -> Result<(), CallError> {
    invoke(cmd::COMPARE_CANCEL, &json!({ "name": name })).await
}

/// An LLM judge votes on every pair in both orders; (done, total) arrives on `channel`.
pub async fn compare_judge(
    name: &str,
    judge: &str,
    channel: &Channel,
) -> Result<JudgeRun, CallError> {
    let args = to_js(&json!({ "name": name, "judge": judge }))?;
    js_sys::Reflect::set(&args, &"onProgress".into(), &channel.js)
        .map_err(|_| local("cannot pass the channel"))?;
    call(cmd::COMPARE_JUDGE, args).await
}

pub async fn compare_task(name: &str, rater: &str, index: u64) -> Result<RatingTask, CallError> {
    invoke(
        cmd::COMPARE_TASK,
        &json!({"name": name, "rater": rater, "index": index}),
    )
    .await
}

pub async fn compare_vote(
    name: &str,
    rater: &str,
    index: u64,
    ballot: &Ballot,
) -> Result<u64, CallError> {
    invoke(
        cmd::COMPARE_VOTE,
        &json!({"name": name, "rater": rater, "index": index, "ballot": ballot}),
    )
    .await
}

pub async fn compare_results(
    name: &str,
    rater: Option<&str>,
) -> Result<ComparisonResults, CallError> {
    invoke(cmd::COMPARE_RESULTS, &json!({"name": name, "rater": rater})).await
}

pub async fn compare_side_by_side(
    name: &str,
    query: &SideBySideQuery,
) -> Result<SideBySide, CallError> {
    invoke(
        cmd::COMPARE_SIDE_BY_SIDE,
        &json!({"name": name, "query": query}),
    )
    .await
}

pub async fn compare_export(
    name: &str,
    kind: &str,
    path: &str,
) -> Result<CompareExported, CallError> {
    invoke(
        cmd::COMPARE_EXPORT,
        &json!({"name": name, "kind": kind, "path": path}),
    )
    .await
}

pub async fn usage_report(query: &UsageQuery) -> Result<UsageReport, CallError> {
    invoke(cmd::USAGE_REPORT, &json!({ "query": query })).await
}

pub async fn usage_calls(query: &CallsQuery) -> Result<Vec<CallRecord>, CallError> {
    invoke(cmd::USAGE_CALLS, &json!({ "query": query })).await
}

/// Writes what is shown (`shown`) or the calls (`ndjson`, `csv`); returns (path, rows).
pub async fn usage_export(
    query: &UsageQuery,
    kind: &str,
    path: &str,
) -> Result<(String, u64), CallError> {
    invoke(
        cmd::USAGE_EXPORT,
        &json!({"query": query, "kind": kind, "path": path}),
    )
    .await
}

pub async fn alerts_list(limit: u32) -> Result<Vec<Alert>, CallError> {
    invoke(cmd::ALERTS_LIST, &json!({ "limit": limit })).await
}

pub async fn alerts_ack(id: i64) -> Result<bool, CallError> {
    invoke(cmd::ALERTS_ACK, &json!({ "id": id })).await
}

pub async fn budgets_list() -> Result<Vec<Budget>, CallError> {
    invoke(cmd::BUDGETS_LIST, &json!({})).await
}

pub async fn budgets_set(
    endpoint: Option<&str>,
    daily: &str,
    monthly: &str,
) -> Result<Vec<Budget>, CallError> {
    invoke(
        cmd::BUDGETS_SET,
        &json!({"endpoint": endpoint, "daily": daily, "monthly": monthly}),
    )
    .await
}

pub async fn ui_ready() -> Result<(), CallError> {
    invoke(cmd::UI_READY, &json!({})).await
}
