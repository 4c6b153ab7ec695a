//! Runs: configure a run (prompt version, endpoint, dataset, scorers, concurrency, repeat), start
//! it and watch the progress bar, read the summary (means with 95 % intervals, pass rate,
//! latency), browse the results and open one beside its reference. Unfinished runs resume.

use milc_api::dataset::DatasetItem;
use milc_api::run::{
    ItemResult, ResultFilter, ResultSort, ResultsQuery, RunComparison, RunInfo, RunProgress,
    RunSpec, RunStatus, RunSummary, ScorerSpec,
};
use milc_api::{cmd, CallError, Params};
use yew::prelude::*;

use crate::components::{gist, local_time, on_select, on_text, ErrorBox};
use crate::hooks::{use_app, use_ipc};
use crate::ipc;

#[derive(Clone, PartialEq)]
enum View {
    Idle,
    Running(i64, Option<RunProgress>),
    Done(Box<RunSummary>),
    Failed(CallError),
}

#[function_component]
pub fn Runs() -> Html {
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
        use_effect_with(*rev, move |_| {
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
                    <label class="block wide"><span class="label">{ "Scorers (NAME or NAME:THRESHOLD, comma-separated)" }</span>
                        <input id="run-scorers" value={form.scorers.clone()} oninput={on_text(set(|f, v| f.scorers = v))} /></label>
                    <label class="block"><span class="label">{ "Concurrency" }</span>
                        <input id="run-concurrency" value={form.concurrency.clone()} oninput={on_text(set(|f, v| f.concurrency = v))} /></label>
                    <label class="block"><span class="label">{ "Repeat" }</span>
                        <input id="run-repeat" value={form.repeat.clone()} oninput={on_text(set(|f, v| f.repeat = v))} /></label>
                </div>
                <button class="primary" id="run-start" onclick={start} disabled={running}>{ "Start run" }</button>
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
                                            <button class="small" id={format!("run-resume-{id}")} onclick={Callback::from(move |_: MouseEvent| e.emit(id))}>{ "Resume" }</button>
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
        let scorers = self
            .scorers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once(':') {
                Some((m, t)) => t
                    .parse()
                    .map(|t| ScorerSpec {
                        metric: m.to_owned(),
                        arg: None,
                        threshold: Some(t),
                    })
                    .map_err(|_| bad("scorers", "a threshold after ':' is a number")),
                None => Ok(ScorerSpec {
                    metric: s.to_owned(),
                    arg: None,
                    threshold: None,
                }),
            })
            .collect::<Result<_, _>>()?;
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
            stem: false,
        })
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
