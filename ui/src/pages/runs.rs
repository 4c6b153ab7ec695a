//! Runs: configure a run (prompt version, endpoint, dataset, scorers, concurrency, repeat), start
//! it and watch the progress bar, read the summary (means with 95 % intervals, pass rate,
//! latency), browse the results and open one beside its reference. Unfinished runs resume.

use milc_api::dataset::DatasetItem;
use milc_api::run::{
    ItemResult, ResultFilter, ResultSort, ResultsQuery, RunComparison, RunInfo, RunProgress,
    RunSpec, RunStatus, RunSummary, ScorerSpec,
};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, Params};
use yew::prelude::*;

use crate::components::{gist, local_time, on_file_text, on_select, on_text, ErrorBox};
use crate::hooks::{use_app, use_ipc, use_refusal};
use crate::ipc;
use crate::route::use_jump;

#[derive(Clone, PartialEq)]
enum View {
    Idle,
    Running(i64, Option<RunProgress>),
    Done(Box<RunSummary>),
    Failed(CallError),
}

#[function_component]
pub fn Runs() -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let focus = crate::hooks::use_focus();
    let app = use_app();
    let runs = use_state(Vec::<RunInfo>::new);
    let rev = use_state(|| 0u32);
    let view = use_state(|| View::Idle);
    let form = use_state(|| RunForm {
        scorers: "rouge1,rougeL,bleu".into(),
        concurrency: "8".into(),
        repeat: "1".into(),
        ..RunForm::default()
    });
    let datasets = use_state(Vec::<String>::new);
    {
        let (runs, datasets) = (runs.clone(), datasets.clone());
        use_effect_with((*rev, focus), move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(r) = ipc::call(cmd::RunsList {}).await {
                    runs.set(r);
                }
                if let Ok(d) = ipc::call(cmd::DatasetsList {}).await {
                    let mut names: Vec<String> = d.into_iter().map(|v| v.dataset).collect();
                    names.dedup();
                    datasets.set(names);
                }
            });
        });
    }
    let execute = {
        let (view, rev) = (view.clone(), rev.clone());
        Callback::from(move |id: i64| {
            let (view, rev) = (view.clone(), rev.clone());
            view.set(View::Running(id, None));
            let progress_view = view.clone();
            yew::platform::spawn_local(async move {
                let r = ipc::call_with_channel(
                    |on_progress| cmd::RunsExecute { id, on_progress },
                    move |p: RunProgress| progress_view.set(View::Running(p.run_id, Some(p))),
                )
                .await;
                view.set(match r {
                    Ok(s) => View::Done(Box::new(s)),
                    Err(e) => View::Failed(e),
                });
                rev.set(*rev + 1);
            });
        })
    };
    let start = {
        let (form, view, execute) = (form.clone(), view.clone(), execute.clone());
        Callback::from(move |_: MouseEvent| {
            let spec = match form.spec() {
                Ok(s) => s,
                Err(e) => return view.set(View::Failed(e)),
            };
            let (view, execute) = (view.clone(), execute.clone());
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::RunsCreate { spec }).await {
                    Ok(info) => execute.emit(info.id),
                    Err(e) => view.set(View::Failed(e)),
                }
            });
        })
    };
    let open = {
        let view = view.clone();
        Callback::from(move |id: i64| {
            let view = view.clone();
            yew::platform::spawn_local(async move {
                view.set(match ipc::call(cmd::RunsSummary { id }).await {
                    Ok(s) => View::Done(Box::new(s)),
                    Err(e) => View::Failed(e),
                });
            });
        })
    };
    let jump = use_jump();
    {
        let open = open.clone();
        use_effect_with(jump.run, move |run| {
            if let Some(id) = *run {
                open.emit(id);
            }
        });
    }
    let set = |f: fn(&mut RunForm, String)| {
        let form = form.clone();
        move |v: String| {
            let mut next = (*form).clone();
            f(&mut next, v);
            form.set(next);
        }
    };
    let prompt_refs: Vec<String> = app
        .prompts
        .iter()
        .flat_map(|p| {
            std::iter::once(p.name.clone())
                .chain(p.labels.keys().map(move |l| format!("{}:{l}", p.name)))
        })
        .collect();
    let endpoints = app.usable_endpoints();
    let select = |id: &str, options: &[String], value: &str, f: fn(&mut RunForm, String)| {
        html! {
            <select id={id.to_owned()} onchange={on_select(set(f))}>
                <option value="" selected={value.is_empty()}>{ "choose…" }</option>
                { for options.iter().map(|o| html! { <option value={o.clone()} selected={o == value}>{ o.clone() }</option> }) }
            </select>
        }
    };
    let running = matches!(*view, View::Running(..));
    let body = match &*view {
        View::Idle => html! {},
        View::Failed(e) => html! { <ErrorBox error={e.clone()} id="run-error" /> },
        View::Running(id, p) => {
            let (done, total) = p.as_ref().map_or((0, 0), |p| (p.done, p.total));
            let cancel = {
                let id = *id;
                Callback::from(move |_: MouseEvent| {
                    yew::platform::spawn_local(async move {
                        let _ = ipc::call(cmd::RunsCancel { id }).await;
                    })
                })
            };
            html! {
                <section class="panel run-progress">
                    <div class="row">
                        <strong>{ format!("Run {id}") }</strong>
                        <progress id="run-progress" max={total.max(1).to_string()} value={done.to_string()} />
                        <span class="mono" id="run-progress-text">{ format!("{done}/{total}") }</span>
                        <span class="spacer" />
                        <button class="danger" id="run-cancel" onclick={cancel}>{ "Cancel" }</button>
                    </div>
                    if let Some(p) = p {
                        <div class="small muted">{ format!("{} errors · ${} · {} at once{}", p.errors, p.cost.usd(), p.concurrency,
                            p.eta_ms.map(|ms| format!(" · ETA {} s", ms.div_ceil(1000))).unwrap_or_default()) }</div>
                    }
                </section>
            }
        }
        View::Done(s) => html! { <Summary summary={(**s).clone()} /> },
    };
    html! {
        <div class="page runs">
            <header class="page-head"><h1>{ "Runs" }</h1></header>
            <section class="panel run-form">
                <div class="form-grid">
                    <label class="block"><span class="label">{ "Prompt version" }</span>{ select("run-prompt", &prompt_refs, &form.prompt, |f, v| f.prompt = v) }</label>
                    <label class="block"><span class="label">{ "Endpoint" }</span>{ select("run-endpoint", &endpoints, &form.endpoint, |f, v| f.endpoint = v) }</label>
                    <label class="block"><span class="label">{ "Dataset" }</span>{ select("run-dataset", &datasets, &form.dataset, |f, v| f.dataset = v) }</label>
                    <label class="block wide"><span class="label">{ "Scorers (NAME or NAME:THRESHOLD, comma-separated: rouge1, rougeL:0.3, bleu, exact, json_valid)" }</span>
                        <input id="run-scorers" value={form.scorers.clone()} oninput={on_text(set(|f, v| f.scorers = v))} /></label>
                    <label class="check"><input type="checkbox" id="run-stem" checked={form.stem} onchange={{
                        let form = form.clone();
                        Callback::from(move |_: Event| { let mut f = (*form).clone(); f.stem = !f.stem; form.set(f); })
                    }} />{ " Porter stemming for ROUGE" }</label>
                    <label class="block"><span class="label">{ "Concurrency" }</span>
                        <input id="run-concurrency" value={form.concurrency.clone()} oninput={on_text(set(|f, v| f.concurrency = v))} /></label>
                    <label class="block"><span class="label">{ "Repeat" }</span>
                        <input id="run-repeat" value={form.repeat.clone()} oninput={on_text(set(|f, v| f.repeat = v))} /></label>
                </div>
                <div class="scorer-list" id="run-extra-scorers">
                    { for form.extra.iter().enumerate().map(|(i, sc)| {
                        let form = form.clone();
                        let remove = Callback::from(move |_: MouseEvent| { let mut f = (*form).clone(); f.extra.remove(i); form.set(f); });
                        html! { <span class="chip mono small" title={sc.arg.clone()}>{ gist(&sc.to_string(), 60) }
                            <button class="link small" id={format!("run-scorer-remove-{i}")} onclick={remove}>{ "✕" }</button></span> }
                    }) }
                </div>
                <ScorerPicker prompts={prompt_refs.clone()} endpoints={app.endpoints.iter().map(|e| e.spec.name.clone()).collect::<Vec<_>>()}
                    on_add={{ let form = form.clone(); Callback::from(move |sc: ScorerSpec| { let mut f = (*form).clone(); f.extra.push(sc); form.set(f); }) }} />
                <button class="primary" id="run-start" title={refused_editor.clone()} onclick={start} disabled={running || refused_editor.is_some()}>{ "Start run" }</button>
            </section>
            { body }
            if runs.len() >= 2 {
                <Compare runs={(*runs).clone()} />
            }
            if !runs.is_empty() {
                <table class="grid" id="runs-table">
                    <thead><tr><th class="num">{ "Run" }</th><th>{ "Started" }</th><th>{ "Prompt" }</th><th>{ "Endpoint" }</th><th>{ "Dataset" }</th><th>{ "Status" }</th><th class="num">{ "Done" }</th><th></th></tr></thead>
                    <tbody>
                        { for runs.iter().map(|r| {
                            let (o, e, id) = (open.clone(), execute.clone(), r.id);
                            html! {
                                <tr key={r.id}>
                                    <td class="num">{ r.id }</td>
                                    <td class="mono small">{ local_time(r.created_ms) }</td>
                                    <td class="mono">{ r.prompt.to_string() }</td>
                                    <td>{ &r.spec.endpoint }</td>
                                    <td class="mono">{ format!("{}@{}", r.spec.dataset.split('@').next().unwrap_or(""), &r.dataset_hash[..8]) }</td>
                                    <td>{ r.status.as_str() }</td>
                                    <td class="num">{ format!("{}/{}", r.done, r.total) }</td>
                                    <td class="actions">
                                        <button class="small" id={format!("run-open-{id}")} onclick={Callback::from(move |_: MouseEvent| o.emit(id))}>{ "Open" }</button>
                                        if r.status != RunStatus::Finished && !running {
                                            <button class="small" id={format!("run-resume-{id}")} disabled={refused_editor.is_some()} title={refused_editor.clone()} onclick={Callback::from(move |_: MouseEvent| e.emit(id))}>{ "Resume" }</button>
                                        }
                                    </td>
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
            }
        </div>
    }
}

#[derive(Clone, Default, PartialEq)]
struct RunForm {
    prompt: String,
    endpoint: String,
    dataset: String,
    scorers: String,
    /// Scorers with an argument or a budget, added one at a time.
    extra: Vec<ScorerSpec>,
    stem: bool,
    concurrency: String,
    repeat: String,
}

impl RunForm {
    fn spec(&self) -> Result<RunSpec, CallError> {
        let bad = |field: &str, what: &str| CallError::config(format!("{field}: {what}"));
        for (field, v) in [
            ("prompt", &self.prompt),
            ("endpoint", &self.endpoint),
            ("dataset", &self.dataset),
        ] {
            if v.is_empty() {
                return Err(bad(field, "choose one"));
            }
        }
        let mut scorers = ScorerSpec::parse_list(&self.scorers).map_err(CallError::config)?;
        scorers.extend(self.extra.iter().cloned());
        Ok(RunSpec {
            prompt: self.prompt.clone(),
            endpoint: self.endpoint.clone(),
            dataset: self.dataset.clone(),
            params: Params::default(),
            repeat: self
                .repeat
                .trim()
                .parse()
                .map_err(|_| bad("repeat", "a whole number"))?,
            concurrency: self
                .concurrency
                .trim()
                .parse()
                .map_err(|_| bad("concurrency", "a whole number"))?,
            scorers,
            stem: self.stem,
        })
    }
}

/// The scorers that take an argument or a budget, as the CLI's `--scorer NAME=ARG`.
const ARG_SCORERS: &[(&str, &str)] = &[
    ("regex", "matches a pattern"),
    ("contains", "contains a text"),
    ("not_contains", "does not contain a text"),
    ("length", "length in characters, MIN..MAX"),
    ("json_schema", "JSON that follows a schema"),
    ("latency_ms", "latency budget (ms)"),
    ("cost_usd", "cost budget (USD per item)"),
    ("judge", "rubric LLM judge"),
    ("similarity", "embedding similarity"),
];

#[derive(Properties, PartialEq)]
struct PickerProps {
    /// Prompt references a rubric can be (`NAME`, `NAME:LABEL`).
    prompts: Vec<String>,
    endpoints: Vec<String>,
    on_add: Callback<ScorerSpec>,
}

/// Adds one scorer with its argument: a pattern, a text, bounds, a schema (typed or read from
/// a file), a budget, a rubric prompt and judge endpoint, or an embeddings endpoint.
#[function_component]
fn ScorerPicker(p: &PickerProps) -> Html {
    let kind = use_state(|| "regex".to_owned());
    let arg = use_state(String::new);
    let threshold = use_state(String::new);
    let rubric = use_state(String::new);
    let endpoint = use_state(String::new);
    let error = use_state(|| None::<CallError>);
    let budget = matches!(kind.as_str(), "latency_ms" | "cost_usd");
    let add = {
        let (kind, arg, threshold, rubric, endpoint, error) = (
            kind.clone(),
            arg.clone(),
            threshold.clone(),
            rubric.clone(),
            endpoint.clone(),
            error.clone(),
        );
        let on_add = p.on_add.clone();
        Callback::from(move |_: MouseEvent| {
            let bad = |m: &str| error.set(Some(CallError::config(m.to_owned())));
            let threshold = match threshold.trim() {
                "" => None,
                t => match t.parse::<f64>() {
                    Ok(t) if t.is_finite() => Some(t),
                    _ => return bad(&format!("scorer '{}': the threshold is a number", *kind)),
                },
            };
            let arg = match kind.as_str() {
                "latency_ms" | "cost_usd" => None,
                "judge" if rubric.is_empty() || endpoint.is_empty() => {
                    return bad("judge: choose a rubric prompt and a judge endpoint")
                }
                "judge" => Some(format!("{}@{}", *rubric, *endpoint)),
                "similarity" if endpoint.is_empty() => {
                    return bad("similarity: choose an endpoint that serves embeddings")
                }
                "similarity" => Some((*endpoint).clone()),
                _ => Some((*arg).clone()),
            };
            error.set(None);
            on_add.emit(ScorerSpec {
                metric: (*kind).clone(),
                arg,
                threshold,
            });
        })
    };
    let on_file = {
        let arg = arg.clone();
        on_file_text(move |_, text| arg.set(text))
    };
    let choose = |id: &str, options: &[String], state: &UseStateHandle<String>| {
        let st = state.clone();
        html! {
            <select id={id.to_owned()} onchange={on_select(move |v| st.set(v))}>
                <option value="" selected={state.is_empty()}>{ "choose…" }</option>
                { for options.iter().map(|o| html! { <option value={o.clone()} selected={**state == *o}>{ o.clone() }</option> }) }
            </select>
        }
    };
    let argument = match kind.as_str() {
        "latency_ms" | "cost_usd" => html! {},
        "judge" => html! { <>
            <label class="block"><span class="label">{ "Rubric prompt" }</span>{ choose("scorer-rubric", &p.prompts, &rubric) }</label>
            <label class="block"><span class="label">{ "Judge endpoint" }</span>{ choose("scorer-judge-endpoint", &p.endpoints, &endpoint) }</label>
        </> },
        "similarity" => html! {
            <label class="block"><span class="label">{ "Embeddings endpoint" }</span>{ choose("scorer-embed-endpoint", &p.endpoints, &endpoint) }</label>
        },
        "json_schema" => html! {
            <label class="block wide"><span class="label">{ "JSON Schema (paste, or pick a file)" }</span>
                <textarea id="scorer-arg" rows="3" value={(*arg).clone()} oninput={{ let a = arg.clone(); on_text(move |v| a.set(v)) }} />
                <input type="file" id="scorer-schema-file" accept=".json" onchange={on_file} />
            </label>
        },
        k => {
            let placeholder = match k {
                "regex" => "^\\d{4}-\\d{2}",
                "length" => "10..200",
                _ => "refund",
            };
            html! {
                <label class="block"><span class="label">{ "Argument" }</span>
                    <input id="scorer-arg" placeholder={placeholder} value={(*arg).clone()} oninput={{ let a = arg.clone(); on_text(move |v| a.set(v)) }} /></label>
            }
        }
    };
    html! {
        <div class="scorer-picker">
            <div class="form-grid">
                <label class="block"><span class="label">{ "Add a scorer" }</span>
                    <select id="scorer-kind" onchange={{ let k = kind.clone(); on_select(move |v| k.set(v)) }}>
                        { for ARG_SCORERS.iter().map(|(k, what)| html! { <option value={*k} selected={kind.as_str() == *k}>{ format!("{k} — {what}") }</option> }) }
                    </select></label>
                { argument }
                <label class="block"><span class="label">{ if budget { "Budget (pass at or below)" } else { "Threshold (optional)" } }</span>
                    <input id="scorer-threshold" class="narrow" value={(*threshold).clone()} oninput={{ let t = threshold.clone(); on_text(move |v| t.set(v)) }} /></label>
            </div>
            <button class="small" id="scorer-add" onclick={add}>{ "Add scorer" }</button>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="scorer-error" /> }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct SummaryProps {
    summary: RunSummary,
}

#[function_component]
fn Summary(p: &SummaryProps) -> Html {
    let s = &p.summary;
    let id = s.run.id;
    let query = use_state(ResultsQuery::default);
    let page = use_ipc(cmd::RunsPage {
        id,
        query: (*query).clone(),
    });
    let selected = use_state(|| None::<(ItemResult, Option<DatasetItem>)>);
    let open = {
        let selected = selected.clone();
        move |r: ItemResult| {
            let selected = selected.clone();
            Callback::from(move |_: MouseEvent| {
                let (selected, r) = (selected.clone(), r.clone());
                yew::platform::spawn_local(async move {
                    let item = ipc::call(cmd::RunsItem { id, item: r.item }).await.ok();
                    selected.set(Some((r, item)));
                });
            })
        }
    };
    let set_query = |f: fn(&mut ResultsQuery, String)| {
        let query = query.clone();
        on_select(move |v| {
            let mut q = (*query).clone();
            f(&mut q, v);
            q.offset = 0;
            query.set(q);
        })
    };
    let step = |forward: bool| {
        let query = query.clone();
        Callback::from(move |_: MouseEvent| {
            let mut q = (*query).clone();
            q.offset = if forward {
                q.offset + q.limit
            } else {
                q.offset.saturating_sub(q.limit)
            };
            query.set(q);
        })
    };
    let detail = selected.as_ref().map(|(r, item)| html! {
        <section class="panel result-detail" id="run-detail">
            <h2>{ format!("Item {} · repetition {}", r.item, r.rep) }</h2>
            if let Some(item) = item {
                <div class="small mono">{ for item.vars.iter().map(|(k, v)| html! { <div>{ format!("{k} = {v}") }</div> }) }</div>
            }
            <div class="compare-cols">
                <div><span class="label">{ "Output" }</span><pre class="output" id="run-detail-output">{ &r.output }</pre></div>
                <div><span class="label">{ "Reference" }</span><pre class="output" id="run-detail-expected">{ item.as_ref().map(|i| i.expected.join("\n---\n")).unwrap_or_default() }</pre></div>
            </div>
            if let Some(e) = &r.error { <ErrorBox error={e.clone()} /> }
            <div class="small">{ for r.scores.iter().map(|(k, v)| html! { <span class="badge">{ format!("{k} {v:.4}") }</span> }) }</div>
            { for r.notes.iter().map(|(k, v)| html! { <div class="small muted">{ format!("{k}: {v}") }</div> }) }
        </section>
    });
    let sort_value = match &query.sort {
        ResultSort::Item => "item".to_owned(),
        ResultSort::Latency => "latency".to_owned(),
        ResultSort::Score(m) => format!("score:{m}"),
    };
    let controls = html! {
        <div class="row">
            <label class="inline">{ "Show" }
                <select id="run-filter" onchange={set_query(|q, v| q.filter = match v.as_str() {
                    "passed" => ResultFilter::Passed, "failed" => ResultFilter::Failed, "errors" => ResultFilter::Errors, _ => ResultFilter::All })}>
                    { for ["all", "passed", "failed", "errors"].iter().map(|f| html! { <option value={*f}>{ *f }</option> }) }
                </select>
            </label>
            <label class="inline">{ "Sort by" }
                <select id="run-sort" onchange={set_query(|q, v| {
                    let (desc, key) = match v.strip_suffix(" desc") { Some(k) => (true, k.to_owned()), None => (false, v) };
                    q.descending = desc;
                    q.sort = match key.as_str() { "latency" => ResultSort::Latency, "item" => ResultSort::Item,
                        k => ResultSort::Score(k.trim_start_matches("score:").to_owned()) };
                })}>
                    <option value="item" selected={sort_value == "item"}>{ "item" }</option>
                    <option value="latency desc">{ "latency, slowest first" }</option>
                    { for s.scores.keys().map(|m| html! { <>
                        <option value={format!("score:{m}")}>{ format!("{m}, lowest first") }</option>
                        <option value={format!("score:{m} desc")}>{ format!("{m}, highest first") }</option>
                    </> }) }
                </select>
            </label>
            <span class="spacer" />
            <button class="small" id="run-prev" onclick={step(false)} disabled={query.offset == 0}>{ "← Previous" }</button>
            <button class="small" id="run-next" onclick={step(true)}
                disabled={page.as_ref().and_then(|p| p.as_ref().ok()).is_none_or(|p| query.offset + query.limit >= p.total)}>{ "Next →" }</button>
        </div>
    };
    let table = match &*page {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(pg)) => html! {
            <>
            <p class="small muted" id="run-page">{ format!("{}–{} of {}", (query.offset + 1).min(pg.total), query.offset + pg.results.len() as u64, pg.total) }</p>
            <table class="grid compact" id="run-results">
                <thead><tr><th class="num">{ "Item" }</th><th>{ "Passed" }</th><th>{ "Scores" }</th><th class="num">{ "Latency" }</th><th>{ "Output" }</th><th></th></tr></thead>
                <tbody>
                    { for pg.results.iter().enumerate().map(|(i, r)| html! {
                        <tr id={format!("run-result-{i}")}>
                            <td class="num">{ r.item }</td>
                            <td>{ if r.error.is_some() { html! { <span class="badge danger">{ "error" }</span> } } else if r.passed { html! { <span class="badge ok">{ "pass" }</span> } } else { html! { <span class="badge warn">{ "fail" }</span> } } }</td>
                            <td class="mono small">{ r.scores.iter().map(|(k, v)| format!("{k} {v:.3}")).collect::<Vec<_>>().join(" · ") }</td>
                            <td class="num">{ format!("{} ms", r.latency_ms) }</td>
                            <td>{ gist(&r.output, 60) }</td>
                            <td class="actions"><button class="small" onclick={open(r.clone())}>{ "Open" }</button></td>
                        </tr>
                    }) }
                </tbody>
            </table>
            </>
        },
    };
    html! {
        <>
            <section class="panel run-summary" id="run-summary">
                <h2>{ format!("Run {} · {} · {}", s.run.id, s.run.prompt, s.run.status.as_str()) }</h2>
                { for s.run.warnings.iter().map(|w| html! { <p class="note warn run-warning">{ w }</p> }) }
                <div class="row run-progress">
                    <progress id="run-progress" max={s.run.total.max(1).to_string()} value={s.run.done.to_string()} />
                    <span class="mono" id="run-progress-text">{ format!("{}/{}", s.run.done, s.run.total) }</span>
                </div>
                <table class="grid compact">
                    <thead><tr><th>{ "Score" }</th><th class="num">{ "Mean" }</th><th>{ "95% interval" }</th></tr></thead>
                    <tbody>
                        { for s.scores.iter().map(|(k, i)| html! {
                            <tr><td class="mono">{ k.clone() }</td><td class="num">{ format!("{:.4}", i.mean) }</td><td class="mono">{ format!("[{:.4}, {:.4}]", i.low, i.high) }</td></tr>
                        }) }
                    </tbody>
                </table>
                <p class="small">{ format!("pass rate {:.1}% · errors {} · latency p50 {:.0} / p95 {:.0} / p99 {:.0} ms · tokens {} → {} · ${}{} · {} retries",
                    s.pass_rate * 100.0, s.errors, s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.p99,
                    s.prompt_tokens, s.completion_tokens, s.cost.usd(), if s.cost_estimated { " (partly estimated)" } else { "" }, s.retries) }</p>
            </section>
            { for detail }
            { controls }
            { table }
        </>
    }
}

#[derive(Properties, PartialEq)]
struct CompareProps {
    runs: Vec<RunInfo>,
}

/// Two runs over the same dataset version: mean deltas with paired intervals, then the items,
/// regressions first, each with both outputs side by side.
#[function_component]
fn Compare(p: &CompareProps) -> Html {
    let a = use_state(|| p.runs.get(1).map_or(0, |r| r.id));
    let b = use_state(|| p.runs.first().map_or(0, |r| r.id));
    let result = use_state(|| None::<Result<RunComparison, CallError>>);
    let pick = |id: &str, state: &UseStateHandle<i64>| {
        let s = state.clone();
        html! {
            <select id={id.to_owned()} onchange={on_select(move |v| s.set(v.parse().unwrap_or(0)))}>
                { for p.runs.iter().map(|r| html! {
                    <option value={r.id.to_string()} selected={r.id == **state}>{ format!("run {} · {} · {}", r.id, r.prompt, r.spec.endpoint) }</option>
                }) }
            </select>
        }
    };
    let onclick = {
        let (a, b, result) = (a.clone(), b.clone(), result.clone());
        Callback::from(move |_: MouseEvent| {
            let (a, b, result) = (*a, *b, result.clone());
            yew::platform::spawn_local(async move {
                result.set(Some(ipc::call(cmd::RunsCompare { a, b }).await))
            });
        })
    };
    let body = match &*result {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="compare-error" /> },
        Some(Ok(c)) => html! {
            <div id="compare-result">
                <p class="small">{ format!("{} items paired · {} regressions · {} improvements{}", c.paired, c.regressions, c.improvements,
                    c.primary.as_ref().map(|m| format!(" (by {m})")).unwrap_or_default()) }</p>
                <table class="grid compact">
                    <thead><tr><th>{ "Score" }</th><th class="num">{ "Mean B − A" }</th><th>{ "95% interval (paired)" }</th></tr></thead>
                    <tbody>
                        { for c.deltas.iter().map(|(k, i)| html! {
                            <tr><td class="mono">{ k.clone() }</td><td class="num">{ format!("{:+.4}", i.mean) }</td><td class="mono">{ format!("[{:+.4}, {:+.4}]", i.low, i.high) }</td></tr>
                        }) }
                    </tbody>
                </table>
                <table class="grid compact" id="compare-items">
                    <thead><tr><th class="num">{ "Item" }</th><th>{ "Change" }</th><th>{ format!("Run {}", c.a.id) }</th><th>{ format!("Run {}", c.b.id) }</th></tr></thead>
                    <tbody>
                        { for c.items.iter().take(50).map(|d| html! {
                            <tr>
                                <td class="num">{ d.item }</td>
                                <td class="mono small">{ d.deltas.iter().map(|(k, v)| format!("{k} {v:+.3}")).collect::<Vec<_>>().join(" · ") }</td>
                                <td>{ gist(&d.a_output, 60) }</td>
                                <td>{ gist(&d.b_output, 60) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    html! {
        <section class="panel compare">
            <div class="row">
                <h2>{ "Compare" }</h2>
                { pick("compare-a", &a) }<span class="muted">{ "→" }</span>{ pick("compare-b", &b) }
                <button id="compare-go" {onclick}>{ "Compare" }</button>
            </div>
            { body }
        </section>
    }
}
