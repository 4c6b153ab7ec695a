//! The Lifecycle page, as `milc usecases`, `milc loadtest` and `milc drift` see it: requirements
//! cards (a use case's SLOs; each candidate's verdict per SLO with its evidence; runs attached;
//! a load test started from the card), load tests charted against concurrency, and drift of an
//! endpoint, a prompt version or a route against the window before.

use milc_api::lifecycle::{
    parse_duration_ms, ArchiveScope, CandidateSpec, DriftKind, DriftQuery, DriftReport, LoadTest,
    LoadTestProgress, LoadTestSpec, ScoreSlo, Slo, Traffic, UseCase, UseCaseSpec, Verdict,
};
use milc_api::run::RunInfo;
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, Cost, Params};
use yew::prelude::*;

use crate::components::chart::{Chart, Kind};
use crate::components::{on_select, on_text, setter, ArchiveButton, ErrorBox};
use crate::hooks::{use_app, use_refusal};
use crate::ipc;

fn badge(v: Verdict) -> Html {
    let class = match v {
        Verdict::Pass => "badge ok",
        Verdict::Fail => "badge danger",
        Verdict::Unknown => "badge",
    };
    html! { <span class={class}>{ v.as_str() }</span> }
}

/// The card form's fields as typed; read with the same parsers the CLI uses.
#[derive(Clone, Default, PartialEq)]
struct CardForm {
    name: String,
    owner: String,
    description: String,
    p95_latency: String,
    p95_ttft: String,
    cost_per_1k: String,
    min_score: String,
    max_error_rate: String,
    pii: bool,
    rpm: String,
    tokens_per_request: String,
}

impl CardForm {
    fn spec(&self) -> Result<UseCaseSpec, CallError> {
        let bad = |field: &str, m: String| CallError::config(format!("{field}: {m}"));
        let ms = |field: &str, s: &str| -> Result<Option<u64>, CallError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            parse_duration_ms(s)
                .map(|v| Some(v as u64))
                .map_err(|e| bad(field, e))
        };
        let num = |field: &str, s: &str| -> Result<Option<f64>, CallError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| bad(field, format!("'{s}' is not a number")))
        };
        Ok(UseCaseSpec {
            name: self.name.clone(),
            owner: self.owner.clone(),
            description: self.description.clone(),
            slo: Slo {
                p95_latency_ms: ms("p95 latency", &self.p95_latency)?,
                p95_ttft_ms: ms("p95 TTFT", &self.p95_ttft)?,
                cost_per_1k_pico: Cost::parse_usd_field(Some(&self.cost_per_1k))
                    .map_err(|e| bad("cost per 1k requests", e.0))?,
                min_score: if self.min_score.trim().is_empty() {
                    None
                } else {
                    Some(ScoreSlo::parse(&self.min_score).map_err(|e| bad("min score", e))?)
                },
                max_error_rate: num("max error rate", &self.max_error_rate)?,
                pii_redaction: self.pii,
            },
            traffic: Traffic {
                requests_per_minute: num("requests per minute", &self.rpm)?.unwrap_or(0.0),
                tokens_per_request: num("tokens per request", &self.tokens_per_request)?
                    .unwrap_or(0.0) as u64,
            },
        })
    }
}

#[function_component]
pub fn Lifecycle() -> Html {
    let focus = crate::hooks::use_focus();
    let rev = use_state(|| 0u32);
    let cards = use_state(Vec::<UseCase>::new);
    let runs = use_state(Vec::<RunInfo>::new);
    let loadtests = use_state(Vec::<LoadTest>::new);
    let selected = use_state(|| None::<String>);
    let shown_test = use_state(|| None::<i64>);
    let error = use_state(|| None::<CallError>);
    {
        let (cards, runs, loadtests, error) = (
            cards.clone(),
            runs.clone(),
            loadtests.clone(),
            error.clone(),
        );
        use_effect_with((*rev, focus), move |_| {
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::UsecasesList {}).await {
                    Ok(c) => cards.set(c),
                    Err(e) => error.set(Some(e)),
                }
                if let Ok(r) = ipc::call(cmd::RunsList {}).await {
                    runs.set(r);
                }
                if let Ok(l) = ipc::call(cmd::LoadtestsList {}).await {
                    loadtests.set(l);
                }
            });
        });
    }
    let reload = {
        let rev = rev.clone();
        Callback::from(move |_: ()| rev.set(*rev + 1))
    };
    let card = selected
        .as_ref()
        .and_then(|n| cards.iter().find(|c| &c.spec.name == n).cloned());
    let test = shown_test
        .and_then(|id| loadtests.iter().find(|l| l.id == id).cloned())
        .or_else(|| loadtests.first().cloned());
    html! {
        <div class="page lifecycle">
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
            <div class="lifecycle-top">
                <section class="panel">
                    <h2>{ "Use cases" }</h2>
                    <table class="grid compact" id="uc-list">
                        <thead><tr><th>{ "Use case" }</th><th>{ "Owner" }</th><th>{ "Candidates" }</th><th>{ "Chosen" }</th></tr></thead>
                        <tbody>
                            { for cards.iter().map(|c| {
                                let name = c.spec.name.clone();
                                let pick = { let selected = selected.clone(); Callback::from(move |_: MouseEvent| selected.set(Some(name.clone()))) };
                                html! {
                                    <tr>
                                        <td><button class="link" onclick={pick}>{ &c.spec.name }</button></td>
                                        <td>{ &c.spec.owner }</td>
                                        <td class="num">{ c.candidates.len() }</td>
                                        <td>{ c.chosen().map_or(html! { <span class="muted">{ "none" }</span> }, |k| badge(k.verdict)) }</td>
                                    </tr>
                                }
                            }) }
                        </tbody>
                    </table>
                    <CardEditor on_saved={{ let (reload, selected) = (reload.clone(), selected.clone()); Callback::from(move |name: String| { selected.set(Some(name)); reload.emit(()) }) }} />
                </section>
                if let Some(card) = card {
                    <CardView card={card} runs={(*runs).clone()} loadtests={(*loadtests).clone()}
                        on_changed={reload.clone()}
                        on_tested={{ let (reload, shown) = (reload.clone(), shown_test.clone()); Callback::from(move |id: i64| { shown.set(Some(id)); reload.emit(()) }) }} />
                }
            </div>
            <section class="panel" id="lt-panel">
                <h2>{ "Load tests" }</h2>
                <div class="row">
                    <select id="lt-pick" onchange={on_select({ let s = shown_test.clone(); move |v: String| s.set(v.parse().ok()) })}>
                        { for loadtests.iter().map(|l| html! {
                            <option value={l.id.to_string()} selected={test.as_ref().is_some_and(|t| t.id == l.id)}>
                                { format!("#{} {} {}", l.id, l.spec.endpoint, l.prompt_version.clone().unwrap_or_default()) }
                            </option>
                        }) }
                    </select>
                </div>
                if let Some(t) = test { <LoadTestView test={t} /> }
            </section>
            <DriftPanel />
            <super::retirement::Retirement />
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct EditorProps {
    on_saved: Callback<String>,
}

#[function_component]
fn CardEditor(p: &EditorProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let form = use_state(CardForm::default);
    let error = use_state(|| None::<CallError>);
    let field = |get: fn(&mut CardForm) -> &mut String| {
        let form = form.clone();
        on_text(move |v| {
            let mut f = (*form).clone();
            *get(&mut f) = v;
            form.set(f);
        })
    };
    let save = {
        let (form, error, on_saved) = (form.clone(), error.clone(), p.on_saved.clone());
        Callback::from(move |_: MouseEvent| {
            let spec = match form.spec() {
                Ok(s) => s,
                Err(e) => return error.set(Some(e)),
            };
            let (error, on_saved) = (error.clone(), on_saved.clone());
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::UsecasesSave { name: None, spec }).await {
                    Ok(u) => {
                        error.set(None);
                        on_saved.emit(u.spec.name)
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    let pii = {
        let form = form.clone();
        Callback::from(move |e: Event| {
            let on = e
                .target_unchecked_into::<web_sys::HtmlInputElement>()
                .checked();
            form.set(CardForm {
                pii: on,
                ..(*form).clone()
            });
        })
    };
    html! {
        <details class="uc-new">
            <summary>{ "New use case" }</summary>
            <div class="form-grid">
                <label>{ "Name" }<input id="uc-name" value={form.name.clone()} oninput={field(|f| &mut f.name)} /></label>
                <label>{ "Owner" }<input id="uc-owner" value={form.owner.clone()} oninput={field(|f| &mut f.owner)} /></label>
                <label>{ "Description" }<input id="uc-description" value={form.description.clone()} oninput={field(|f| &mut f.description)} /></label>
                <label>{ "p95 latency" }<input id="uc-p95-latency" placeholder="3s" value={form.p95_latency.clone()} oninput={field(|f| &mut f.p95_latency)} /></label>
                <label>{ "p95 TTFT" }<input id="uc-p95-ttft" placeholder="800ms" value={form.p95_ttft.clone()} oninput={field(|f| &mut f.p95_ttft)} /></label>
                <label>{ "Cost per 1k requests (USD)" }<input id="uc-cost" placeholder="0.50" value={form.cost_per_1k.clone()} oninput={field(|f| &mut f.cost_per_1k)} /></label>
                <label>{ "Minimum score" }<input id="uc-min-score" placeholder="rougeL>=0.35@tickets" value={form.min_score.clone()} oninput={field(|f| &mut f.min_score)} /></label>
                <label>{ "Max error rate" }<input id="uc-max-error" placeholder="0.01" value={form.max_error_rate.clone()} oninput={field(|f| &mut f.max_error_rate)} /></label>
                <label>{ "Requests per minute" }<input id="uc-rpm" placeholder="60" value={form.rpm.clone()} oninput={field(|f| &mut f.rpm)} /></label>
                <label>{ "Tokens per request" }<input id="uc-tokens" placeholder="800" value={form.tokens_per_request.clone()} oninput={field(|f| &mut f.tokens_per_request)} /></label>
                <label class="row wide"><input type="checkbox" id="uc-pii" checked={form.pii} onchange={pii} />{ "PII redaction before sending" }</label>
            </div>
            <div class="row"><button class="primary" id="uc-save" title={refused_editor.clone()} onclick={save} disabled={refused_editor.is_some()}>{ "Write it down" }</button></div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
        </details>
    }
}

#[derive(Properties, PartialEq)]
struct CardProps {
    card: UseCase,
    runs: Vec<RunInfo>,
    loadtests: Vec<LoadTest>,
    on_changed: Callback<()>,
    on_tested: Callback<i64>,
}

#[function_component]
fn CardView(p: &CardProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let app = use_app();
    let card = &p.card;
    let name = card.spec.name.clone();
    let error = use_state(|| None::<CallError>);
    let (prompt, endpoint, choose) = (
        use_state(String::new),
        use_state(String::new),
        use_state(|| true),
    );
    let run_pick = use_state(String::new);
    let test_pick = use_state(String::new);
    let (levels, duration) = (
        use_state(|| "1,4,16".to_owned()),
        use_state(|| "5s".to_owned()),
    );
    let progress = use_state(|| None::<LoadTestProgress>);
    let first_endpoint = app
        .endpoints
        .first()
        .map(|e| e.spec.name.clone())
        .unwrap_or_default();
    let then = |error: UseStateHandle<Option<CallError>>, on_changed: Callback<()>| {
        move |r: Result<UseCase, CallError>| match r {
            Ok(_) => {
                error.set(None);
                on_changed.emit(())
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let add = {
        let (name, prompt, endpoint, choose, error, on_changed) = (
            name.clone(),
            prompt.clone(),
            endpoint.clone(),
            choose.clone(),
            error.clone(),
            p.on_changed.clone(),
        );
        let first_endpoint = first_endpoint.clone();
        Callback::from(move |_: MouseEvent| {
            let candidate = CandidateSpec {
                prompt: (*prompt).clone(),
                endpoint: if endpoint.is_empty() {
                    first_endpoint.clone()
                } else {
                    (*endpoint).clone()
                },
                params: Params::default(),
            };
            let (usecase, choose, done) = (
                name.clone(),
                *choose,
                then(error.clone(), on_changed.clone()),
            );
            yew::platform::spawn_local(async move {
                done(
                    ipc::call(cmd::UsecasesCandidate {
                        usecase,
                        candidate,
                        choose,
                    })
                    .await,
                )
            });
        })
    };
    let attach = {
        let (name, run_pick, error, on_changed) = (
            name.clone(),
            run_pick.clone(),
            error.clone(),
            p.on_changed.clone(),
        );
        let first_run = p.runs.first().map(|r| r.id);
        Callback::from(move |_: MouseEvent| {
            let Some(id) = run_pick.parse().ok().or(first_run) else {
                return;
            };
            let (usecase, done) = (name.clone(), then(error.clone(), on_changed.clone()));
            yew::platform::spawn_local(async move {
                done(ipc::call(cmd::UsecasesAttachRun { usecase, id }).await)
            });
        })
    };
    let attach_test = {
        let (name, test_pick, error, on_changed) = (
            name.clone(),
            test_pick.clone(),
            error.clone(),
            p.on_changed.clone(),
        );
        let first = p.loadtests.first().map(|l| l.id);
        Callback::from(move |_: MouseEvent| {
            let Some(id) = test_pick.parse().ok().or(first) else {
                return;
            };
            let (usecase, done) = (name.clone(), then(error.clone(), on_changed.clone()));
            yew::platform::spawn_local(async move {
                done(ipc::call(cmd::UsecasesAttachLoadtest { usecase, id }).await)
            });
        })
    };
    // A load test of the chosen candidate (or the first), attached to the card when it ends.
    let target = card.chosen().or(card.candidates.first()).cloned();
    let load = {
        let (name, levels, duration, progress, error, on_tested) = (
            name.clone(),
            levels.clone(),
            duration.clone(),
            progress.clone(),
            error.clone(),
            p.on_tested.clone(),
        );
        let target = target.clone();
        Callback::from(move |_: MouseEvent| {
            let Some(t) = target.clone() else { return };
            let concurrency: Result<Vec<u32>, _> =
                levels.split(',').map(|x| x.trim().parse::<u32>()).collect();
            let (Ok(concurrency), Ok(ms)) = (concurrency, parse_duration_ms(&duration)) else {
                return error.set(Some(CallError::config(
                    "load test: levels like 1,4,16 and a duration like 5s",
                )));
            };
            let spec = LoadTestSpec {
                endpoint: t.endpoint,
                prompt: Some(t.prompt),
                variables: Default::default(),
                message: milc_api::lifecycle::default_message(),
                concurrency,
                duration_ms: ms as u64,
                params: Params {
                    max_tokens: Some(64),
                    ..Params::default()
                },
                usecase: Some(name.clone()),
            };
            let (progress, error, on_tested) = (progress.clone(), error.clone(), on_tested.clone());
            let shown = progress.clone();
            progress.set(Some(LoadTestProgress {
                id: 0,
                level: 0,
                level_index: 0,
                levels: 1,
                fraction: 0.0,
                requests: 0,
            }));
            yew::platform::spawn_local(async move {
                let r = ipc::call_with_channel(
                    |on_progress| cmd::LoadtestRun { spec, on_progress },
                    move |p: LoadTestProgress| shown.set(Some(p)),
                )
                .await;
                progress.set(None);
                match r {
                    Ok(t) => on_tested.emit(t.id),
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    let cancel = Callback::from(|_: MouseEvent| {
        yew::platform::spawn_local(async move {
            let _ = ipc::call(cmd::LoadtestCancel {}).await;
        })
    });
    let slos: Vec<String> = card
        .candidates
        .first()
        .map(|c| {
            c.checks
                .iter()
                .map(|k| format!("{} {}", k.slo, k.target))
                .collect()
        })
        .unwrap_or_default();
    html! {
        <section class="panel" id="uc-card">
            <h2>{ format!("{} ", card.spec.name) }<span class="muted">{ format!("owner {}", card.spec.owner) }</span>
                <ArchiveButton scope={ArchiveScope::Usecase(card.spec.name.clone())} id="uc-archive" /></h2>
            if !card.spec.description.is_empty() { <p class="muted">{ &card.spec.description }</p> }
            <table class="grid compact" id="uc-verdicts">
                <thead><tr>
                    <th>{ "Candidate" }</th><th>{ "Verdict" }</th>
                    { for slos.iter().map(|s| html! { <th>{ s }</th> }) }
                    <th></th>
                </tr></thead>
                <tbody>
                    { for card.candidates.iter().map(|c| {
                        let choose_it = {
                            let (usecase, id, done) = (name.clone(), c.id, then(error.clone(), p.on_changed.clone()));
                            Callback::from(move |_: MouseEvent| {
                                let (usecase, done) = (usecase.clone(), done.clone());
                                yew::platform::spawn_local(async move { done(ipc::call(cmd::UsecasesChoose { usecase, id }).await) });
                            })
                        };
                        html! {
                            <tr class={classes!(c.chosen.then_some("chosen"))} data-candidate={c.id.to_string()}>
                                <td>{ format!("{} on {}", c.prompt, c.endpoint) }{ if c.chosen { html! { <span class="badge info">{ "chosen" }</span> } } else { html! {} } }</td>
                                <td class="verdict">{ badge(c.verdict) }</td>
                                { for c.checks.iter().map(|k| html! {
                                    <td title={k.evidence.as_ref().map(|e| e.to_string()).unwrap_or_default()}>
                                        { badge(k.verdict) }
                                        <span class="mono">{ k.value.clone().unwrap_or_default() }</span>
                                        <div class="muted small">{ k.evidence.as_ref().map(|e| e.to_string()).unwrap_or_default() }</div>
                                    </td>
                                }) }
                                <td class="actions">if !c.chosen { <button onclick={choose_it} disabled={refused_editor.is_some()} title={refused_editor.clone()}>{ "Choose" }</button> }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            <div class="row wrap">
                <input id="cand-prompt" placeholder="prompt@version" list="cand-prompts" value={(*prompt).clone()} oninput={on_text(setter(&prompt))} />
                <datalist id="cand-prompts">{ for app.prompts.iter().map(|p| html! { <option value={format!("{}@{}", p.name, p.latest)} /> }) }</datalist>
                <select id="cand-endpoint" onchange={on_select(setter(&endpoint))}>
                    { for app.endpoints.iter().map(|e| html! { <option value={e.spec.name.clone()} selected={*endpoint == e.spec.name}>{ &e.spec.name }</option> }) }
                </select>
                <label class="row"><input type="checkbox" checked={*choose} onchange={{ let c = choose.clone(); Callback::from(move |e: Event| c.set(e.target_unchecked_into::<web_sys::HtmlInputElement>().checked())) }} />{ "chosen" }</label>
                <button id="cand-add" title={refused_editor.clone()} onclick={add} disabled={refused_editor.is_some()}>{ "Add candidate" }</button>
            </div>
            <div class="row wrap">
                <select id="attach-run" onchange={on_select(setter(&run_pick))}>
                    { for p.runs.iter().map(|r| html! {
                        <option value={r.id.to_string()} selected={*run_pick == r.id.to_string()}>{ format!("run #{} {} on {} over {}", r.id, r.prompt, r.spec.endpoint, r.spec.dataset) }</option>
                    }) }
                </select>
                <button id="attach-run-button" title={refused_editor.clone()} onclick={attach} disabled={refused_editor.is_some()}>{ "Attach run" }</button>
                <select id="attach-loadtest" onchange={on_select(setter(&test_pick))}>
                    { for p.loadtests.iter().map(|l| html! {
                        <option value={l.id.to_string()} selected={*test_pick == l.id.to_string()}>{ format!("load test #{} on {}", l.id, l.spec.endpoint) }</option>
                    }) }
                </select>
                <button id="attach-loadtest-button" title={refused_editor.clone()} disabled={p.loadtests.is_empty() || refused_editor.is_some()} onclick={attach_test}>{ "Attach load test" }</button>
                <span class="muted" id="uc-attached">{ format!("attached: {}", card.attached.iter().map(|a| format!("{} #{}", a.kind, a.id)).collect::<Vec<_>>().join(", ")) }</span>
            </div>
            <div class="row wrap">
                <label>{ "Levels" }<input id="lt-levels" value={(*levels).clone()} oninput={on_text(setter(&levels))} /></label>
                <label>{ "Each" }<input id="lt-duration" value={(*duration).clone()} oninput={on_text(setter(&duration))} /></label>
                if progress.is_none() {
                    <button id="lt-start" title={refused_editor.clone()} disabled={target.is_none() || refused_editor.is_some()} onclick={load}>{ "Load test" }</button>
                } else {
                    <button id="lt-cancel" onclick={cancel}>{ "Stop" }</button>
                }
                if let Some(p) = &*progress {
                    <progress id="lt-progress" max="1000" value={((p.fraction * 1000.0) as u32).to_string()} />
                    <span class="mono">{ format!("concurrency {} ({}/{}), {} requests", p.level, p.level_index + 1, p.levels, p.requests) }</span>
                }
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct TestProps {
    test: LoadTest,
}

#[function_component]
fn LoadTestView(p: &TestProps) -> Html {
    let t = &p.test;
    let labels: Vec<String> = t.levels.iter().map(|l| l.concurrency.to_string()).collect();
    let col = |f: fn(&milc_api::lifecycle::LevelResult) -> f64| {
        t.levels.iter().map(f).collect::<Vec<f64>>()
    };
    html! {
        <div class="loadtest" data-loadtest={t.id.to_string()}>
            <p>
                { format!("#{} on {}{} — ", t.id, t.spec.endpoint, t.prompt_version.as_ref().map(|p| format!(" with {p}")).unwrap_or_default()) }
                <strong id="lt-knee">{ match t.knee {
                    Some(k) => format!("knee at concurrency {k}: beyond it latency grows faster than throughput"),
                    None => "no knee within the tested levels".to_owned(),
                } }</strong>
            </p>
            <div class="charts two">
                <div>
                    <h3>{ "Latency by concurrency (ms)" }</h3>
                    <Chart id="lt-chart-latency" kind={Kind::Lines} labels={labels.clone()} unit="ms"
                        series={vec![("p50".to_owned(), col(|l| l.latency_ms.p50)), ("p95".to_owned(), col(|l| l.latency_ms.p95)), ("TTFT p95".to_owned(), col(|l| l.ttft_ms.p95))]} />
                </div>
                <div>
                    <h3>{ "Throughput by concurrency" }</h3>
                    <Chart id="lt-chart-throughput" kind={Kind::Lines} labels={labels} unit="/s"
                        series={vec![("requests/s".to_owned(), col(|l| l.requests_per_s)), ("429/s share %".to_owned(), col(|l| l.rate_limited_rate * 100.0))]} />
                </div>
            </div>
            <table class="grid compact" id="lt-table">
                <thead><tr>
                    <th class="num">{ "Concurrency" }</th><th class="num">{ "Requests" }</th><th class="num">{ "Errors" }</th><th class="num">{ "429" }</th>
                    <th class="num">{ "p50 ms" }</th><th class="num">{ "p95 ms" }</th><th class="num">{ "p99 ms" }</th><th class="num">{ "TTFT p95" }</th>
                    <th class="num">{ "req/s" }</th><th class="num">{ "tokens/s" }</th><th class="num">{ "$ per 1k" }</th><th class="num">{ "$ per month" }</th>
                </tr></thead>
                <tbody>
                    { for t.levels.iter().map(|l| html! {
                        <tr>
                            <td class="num">{ l.concurrency }</td><td class="num">{ l.requests }</td><td class="num">{ l.errors }</td><td class="num">{ l.rate_limited }</td>
                            <td class="num">{ format!("{:.0}", l.latency_ms.p50) }</td><td class="num">{ format!("{:.0}", l.latency_ms.p95) }</td>
                            <td class="num">{ format!("{:.0}", l.latency_ms.p99) }</td><td class="num">{ format!("{:.0}", l.ttft_ms.p95) }</td>
                            <td class="num">{ format!("{:.2}", l.requests_per_s) }</td><td class="num">{ format!("{:.1}", l.output_tokens_per_s) }</td>
                            <td class="num">{ l.cost_per_1k.to_string() }</td><td class="num">{ l.cost_per_month.map(|c| c.to_string()).unwrap_or_default() }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        </div>
    }
}

#[function_component]
fn DriftPanel() -> Html {
    let app = use_app();
    let kind = use_state(|| "endpoint".to_owned());
    let subject = use_state(String::new);
    let window = use_state(|| "1d".to_owned());
    // A baseline of the user's choosing (UTC dates, both or neither); else the window before.
    let (base_from, base_to) = (use_state(String::new), use_state(String::new));
    let report = use_state(|| None::<Result<DriftReport, CallError>>);
    let show = {
        let (kind, subject, window, report) = (
            kind.clone(),
            subject.clone(),
            window.clone(),
            report.clone(),
        );
        let (base_from, base_to) = (base_from.clone(), base_to.clone());
        let first = app
            .endpoints
            .first()
            .map(|e| e.spec.name.clone())
            .unwrap_or_default();
        Callback::from(move |_: MouseEvent| {
            let Ok(w) = parse_duration_ms(&window) else {
                return report.set(Some(Err(CallError::config(format!(
                    "window: '{}' is not a duration like 1d",
                    *window
                )))));
            };
            let now = js_sys::Date::now() as i64;
            let baseline = match (base_from.trim(), base_to.trim()) {
                ("", "") => None,
                (a, b) => match (crate::components::date_ms(a), crate::components::date_ms(b)) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => {
                        return report.set(Some(Err(CallError::config(
                            "baseline: two dates like 2026-11-01 and 2026-11-08, or neither",
                        ))))
                    }
                },
            };
            let query = DriftQuery {
                kind: DriftKind::parse(&kind).unwrap_or(DriftKind::Endpoint),
                subject: if subject.is_empty() {
                    first.clone()
                } else {
                    (*subject).clone()
                },
                since_ms: now - w,
                until_ms: now,
                baseline,
            };
            let report = report.clone();
            yew::platform::spawn_local(async move {
                report.set(Some(ipc::call(cmd::DriftReportGet { query }).await));
            });
        })
    };
    html! {
        <section class="panel" id="drift-panel">
            <h2>{ "Drift" }</h2>
            <div class="row wrap">
                <select id="drift-kind" onchange={on_select(setter(&kind))}>
                    { for ["endpoint", "prompt", "route"].iter().map(|k| html! { <option value={*k} selected={*kind == *k}>{ k }</option> }) }
                </select>
                <input id="drift-subject" list="drift-subjects" placeholder="endpoint, prompt@version or route" value={(*subject).clone()} oninput={on_text(setter(&subject))} />
                <datalist id="drift-subjects">{ for app.endpoints.iter().map(|e| html! { <option value={e.spec.name.clone()} /> }) }</datalist>
                <label>{ "Window" }<input id="drift-window" value={(*window).clone()} oninput={on_text(setter(&window))} /></label>
                <label>{ "Baseline from" }<input id="drift-base-from" placeholder="(the window before)" value={(*base_from).clone()} oninput={on_text(setter(&base_from))} /></label>
                <label>{ "to" }<input id="drift-base-to" value={(*base_to).clone()} oninput={on_text(setter(&base_to))} /></label>
                <button id="drift-show" onclick={show}>{ "Compare with the window before" }</button>
            </div>
            { match &*report {
                None => html! {},
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                Some(Ok(r)) => {
                    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
                    let labels: Vec<String> = r.series.iter().map(|p| crate::components::local_time(p.day_ms)[..10].to_owned()).collect();
                    html! {
                        <>
                            <table class="grid compact" id="drift-figures">
                                <thead><tr><th>{ "Figure" }</th><th class="num">{ "Baseline" }</th><th class="num">{ "Current" }</th><th class="num">{ "Change" }</th><th>{ "Test" }</th><th class="num">{ "p" }</th><th></th></tr></thead>
                                <tbody>
                                    { for r.figures.iter().map(|f| html! {
                                        <tr>
                                            <td>{ &f.metric }</td><td class="num">{ num(f.baseline) }</td><td class="num">{ num(f.current) }</td>
                                            <td class="num">{ f.change.map_or("–".to_owned(), |c| format!("{:+.1} %", c * 100.0)) }</td>
                                            <td>{ format!("{} ({} / {})", f.test, f.baseline_n, f.current_n) }</td>
                                            <td class="num">{ f.p_value.map_or("–".to_owned(), |p| format!("{p:.2e}")) }</td>
                                            <td>{ if f.drifted { html! { <span class="badge danger">{ "drift" }</span> } } else if f.significant { html! { <span class="badge warn">{ "significant" }</span> } } else { html! {} } }</td>
                                        </tr>
                                    }) }
                                </tbody>
                            </table>
                            <div class="charts two">
                                <div>
                                    <h3>{ "Latency p50 by day (ms)" }</h3>
                                    <Chart id="drift-chart" kind={Kind::Lines} labels={labels.clone()} unit="ms"
                                        series={vec![("latency p50".to_owned(), r.series.iter().map(|p| p.latency_p50_ms.unwrap_or(0.0)).collect())]} />
                                </div>
                                <div>
                                    <h3>{ "Output tokens and error rate by day" }</h3>
                                    <Chart id="drift-chart-length" kind={Kind::Lines} labels={labels} unit=""
                                        series={vec![
                                            ("output tokens".to_owned(), r.series.iter().map(|p| p.output_tokens.unwrap_or(0.0)).collect()),
                                            ("error rate %".to_owned(), r.series.iter().map(|p| p.error_rate.unwrap_or(0.0) * 100.0).collect()),
                                        ]} />
                                </div>
                            </div>
                        </>
                    }
                }
            } }
        </section>
    }
}
