//! Compare: create a comparison of variants (prompt version × endpoint × temperature) over a
//! dataset, run it with a progress bar, rate pairs blind from the keyboard (1–4 vote, j / k
//! move; names hidden, sides randomized by the server), read outputs side by side with a word
//! diff, and read the results: pair records, the Bradley–Terry leaderboard, agreement, position
//! bias, LLM judges; export fine-tuning data. While a rater is rating, variant names, other
//! votes and results stay hidden until they finish.

use milc_api::arena::Standings;
use milc_api::compare::{
    Ballot, CompareProgress, ComparisonInfo, ComparisonSpec, RatingTask, Segment, SideBySideQuery,
    VariantSpec, Verdict,
};
use milc_api::run::ScorerSpec;
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, ErrorKind, Params};
use yew::prelude::*;

use crate::components::{on_select, on_text, ErrorBox};
use crate::hooks::{use_app, use_focus, use_ipc, use_ipc_with, use_refusal};
use crate::ipc;
use crate::route::use_jump;

fn bad(field: &str, what: &str) -> CallError {
    CallError::config(format!("{field}: {what}"))
}

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Rate,
    Side,
    Results,
}

#[function_component]
pub fn Compare() -> Html {
    let focus = crate::hooks::use_focus();
    let list = use_state(Vec::<ComparisonInfo>::new);
    let rev = use_state(|| 0u32);
    let jump = use_jump();
    let jump = jump.comparison;
    let current = use_state(|| jump.clone().unwrap_or_default());
    let error = use_state(|| None::<CallError>);
    {
        let current = current.clone();
        use_effect_with(jump, move |jump| {
            if let Some(name) = jump {
                current.set(name.clone());
            }
        });
    }
    {
        let (list, current) = (list.clone(), current.clone());
        use_effect_with((*rev, focus), move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(l) = ipc::call(cmd::CompareList {}).await {
                    if current.is_empty() {
                        if let Some(first) = l.first() {
                            current.set(first.name.clone());
                        }
                    }
                    list.set(l);
                }
            });
        });
    }
    let created = {
        let (rev, current) = (rev.clone(), current.clone());
        Callback::from(move |name: String| {
            current.set(name);
            rev.set(*rev + 1);
        })
    };
    let changed = {
        let rev = rev.clone();
        Callback::from(move |()| rev.set(*rev + 1))
    };
    let info = list.iter().find(|c| c.name == *current).cloned();
    html! {
        <div class="page compare">
            <header class="page-head"><h1>{ "Compare" }</h1>
                if !list.is_empty() {
                    <select id="cmp-select" onchange={on_select({ let c = current.clone(); move |v| c.set(v) })}>
                        { for list.iter().map(|c| html! { <option value={c.name.clone()} selected={c.name == *current}>{ &c.name }</option> }) }
                    </select>
                }
            </header>
            <CreateForm on_created={created} />
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
            if let Some(info) = info {
                <ComparisonView key={info.name.clone()} info={info.clone()} on_changed={changed} />
            }
        </div>
    }
}

#[derive(Clone, PartialEq, Default)]
struct VariantRow {
    prompt: String,
    endpoint: String,
    temperature: String,
}

#[derive(Properties, PartialEq)]
struct CreateProps {
    on_created: Callback<String>,
}

#[function_component]
fn CreateForm(p: &CreateProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let app = use_app();
    let name = use_state(String::new);
    let dataset = use_state(String::new);
    let criteria = use_state(String::new);
    let scorers = use_state(String::new);
    let rows = use_state(|| vec![VariantRow::default(), VariantRow::default()]);
    let error = use_state(|| None::<CallError>);
    let datasets = use_state(Vec::<String>::new);
    let focus = use_focus();
    {
        let datasets = datasets.clone();
        use_effect_with(focus, move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(d) = ipc::call(cmd::DatasetsList {}).await {
                    let mut names: Vec<String> = d.into_iter().map(|v| v.dataset).collect();
                    names.sort();
                    names.dedup();
                    datasets.set(names);
                }
            });
        });
    }
    let versions = app.version_refs();
    let endpoints = app.usable_endpoints();
    let set_row = |i: usize, f: fn(&mut VariantRow, String)| {
        let rows = rows.clone();
        move |v: String| {
            let mut next = (*rows).clone();
            f(&mut next[i], v);
            rows.set(next);
        }
    };
    let options = |list: &[String], value: &str| {
        html! {
            <>
                <option value="" selected={value.is_empty()}>{ "choose…" }</option>
                { for list.iter().map(|o| html! { <option value={o.clone()} selected={o == value}>{ o.clone() }</option> }) }
            </>
        }
    };
    let add = {
        let rows = rows.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*rows).clone();
            next.push(VariantRow::default());
            rows.set(next);
        })
    };
    let create = {
        let (name, dataset, criteria, scorers, rows, error) = (
            name.clone(),
            dataset.clone(),
            criteria.clone(),
            scorers.clone(),
            rows.clone(),
            error.clone(),
        );
        let on_created = p.on_created.clone();
        Callback::from(move |_: MouseEvent| {
            let spec = (|| {
                let mut variants = Vec::new();
                for (i, r) in rows.iter().enumerate() {
                    if r.prompt.is_empty() || r.endpoint.is_empty() {
                        return Err(bad(
                            &format!("variant {}", i + 1),
                            "choose a prompt version and an endpoint",
                        ));
                    }
                    let temperature = match r.temperature.trim() {
                        "" => None,
                        t => Some(t.parse().map_err(|_| {
                            bad(&format!("variant {}", i + 1), "the temperature is a number")
                        })?),
                    };
                    variants.push(VariantSpec {
                        prompt: r.prompt.clone(),
                        endpoint: r.endpoint.clone(),
                        params: Params {
                            temperature,
                            ..Params::default()
                        },
                    });
                }
                let list = |s: &str| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                };
                Ok(ComparisonSpec {
                    name: name.trim().to_owned(),
                    dataset: (*dataset).clone(),
                    inputs: vec![],
                    variants,
                    criteria: list(&criteria),
                    scorers: list(&scorers)
                        .into_iter()
                        .map(|metric| ScorerSpec {
                            metric,
                            arg: None,
                            threshold: None,
                        })
                        .collect(),
                    seed: None,
                })
            })();
            let spec = match spec {
                Ok(s) => s,
                Err(e) => return error.set(Some(e)),
            };
            let (error, on_created) = (error.clone(), on_created.clone());
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::CompareCreate { spec }).await {
                    Ok(c) => {
                        error.set(None);
                        on_created.emit(c.name);
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <details class="panel cmp-create" open={false}>
            <summary id="cmp-new">{ "New comparison" }</summary>
            <div class="form-grid">
                <label class="block"><span class="label">{ "Name" }</span>
                    <input id="cmp-name" value={(*name).clone()} oninput={on_text({ let n = name.clone(); move |v| n.set(v) })} /></label>
                <label class="block"><span class="label">{ "Dataset" }</span>
                    <select id="cmp-dataset" onchange={on_select({ let d = dataset.clone(); move |v| d.set(v) })}>{ options(&datasets, &dataset) }</select></label>
                <label class="block"><span class="label">{ "Rubric criteria (comma-separated, 1–5 per side)" }</span>
                    <input id="cmp-criteria" value={(*criteria).clone()} oninput={on_text({ let c = criteria.clone(); move |v| c.set(v) })} /></label>
                <label class="block"><span class="label">{ "Scorers (comma-separated)" }</span>
                    <input id="cmp-scorers" value={(*scorers).clone()} oninput={on_text({ let s = scorers.clone(); move |v| s.set(v) })} /></label>
            </div>
            <table class="grid variants">
                <thead><tr><th>{ "#" }</th><th>{ "Prompt version" }</th><th>{ "Endpoint" }</th><th>{ "Temperature" }</th></tr></thead>
                <tbody>
                    { for rows.iter().enumerate().map(|(i, r)| html! {
                        <tr key={i}>
                            <td class="num">{ i + 1 }</td>
                            <td><select id={format!("cmp-var-{i}-prompt")} onchange={on_select(set_row(i, |r, v| r.prompt = v))}>{ options(&versions, &r.prompt) }</select></td>
                            <td><select id={format!("cmp-var-{i}-endpoint")} onchange={on_select(set_row(i, |r, v| r.endpoint = v))}>{ options(&endpoints, &r.endpoint) }</select></td>
                            <td><input class="narrow" id={format!("cmp-var-{i}-temp")} placeholder="version's" value={r.temperature.clone()} oninput={on_text(set_row(i, |r, v| r.temperature = v))} /></td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <div class="row">
                <button id="cmp-add-variant" onclick={add}>{ "+ Variant" }</button>
                <button class="primary" id="cmp-create" title={refused_editor.clone()} onclick={create} disabled={refused_editor.is_some()}>{ "Create" }</button>
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="cmp-create-error" /> }
        </details>
    }
}

#[derive(Properties, PartialEq)]
struct ViewProps {
    info: ComparisonInfo,
    on_changed: Callback<()>,
}

#[function_component]
fn ComparisonView(p: &ViewProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let c = &p.info;
    let tab = use_state(|| Tab::Rate);
    // The rater of this window; while set and unfinished, names and results stay hidden.
    let rater = use_state(String::new);
    let rating = use_state(|| false);
    let finished = use_state(|| false);
    let progress = use_state(|| None::<(u64, u64)>);
    let error = use_state(|| None::<CallError>);
    let run = {
        let (progress, error, on_changed, name) = (
            progress.clone(),
            error.clone(),
            p.on_changed.clone(),
            c.name.clone(),
        );
        let variants = c.variants.len();
        Callback::from(move |_: MouseEvent| {
            let parts = std::rc::Rc::new(std::cell::RefCell::new(vec![(0u64, 0u64); variants]));
            let shown = progress.clone();
            let on_progress = move |p: CompareProgress| {
                let mut all = parts.borrow_mut();
                if let Some(slot) = all.get_mut(p.variant as usize) {
                    *slot = (p.done, p.total);
                }
                shown.set(Some(
                    all.iter().fold((0, 0), |(d, t), (a, b)| (d + a, t + b)),
                ));
            };
            progress.set(Some((0, 0)));
            let (progress, error, on_changed, name) = (
                progress.clone(),
                error.clone(),
                on_changed.clone(),
                name.clone(),
            );
            yew::platform::spawn_local(async move {
                let r = ipc::call_with_channel(
                    |on_progress| cmd::CompareRun { name, on_progress },
                    on_progress,
                )
                .await;
                progress.set(None);
                error.set(r.err());
                on_changed.emit(());
            });
        })
    };
    let cancel = {
        let name = c.name.clone();
        Callback::from(move |_: MouseEvent| {
            let name = name.clone();
            yew::platform::spawn_local(async move {
                let _ = ipc::call(cmd::CompareCancel { name }).await;
            });
        })
    };
    let blind = *rating && !*finished;
    let tab_button = |t: Tab, id: &str, label: &str, enabled: bool| {
        let tab = tab.clone();
        let class = classes!("tab", (*tab == t).then_some("active"));
        html! {
            <button class={class} id={id.to_owned()} disabled={!enabled}
                onclick={Callback::from(move |_: MouseEvent| tab.set(t))}>{ label.to_owned() }</button>
        }
    };
    let on_finished = {
        let (finished, tab) = (finished.clone(), tab.clone());
        Callback::from(move |()| {
            finished.set(true);
            tab.set(Tab::Results);
        })
    };
    let on_rating = {
        let (rating, rater) = (rating.clone(), rater.clone());
        Callback::from(move |name: String| {
            rater.set(name);
            rating.set(true);
        })
    };
    html! {
        <section class="panel cmp-view">
            <div class="row">
                <strong id="cmp-title">{ &c.name }</strong>
                <span class="muted small">{ format!("{} items · {} variants · {}@{}", c.items, c.variants.len(), c.dataset, &c.dataset_hash[..8.min(c.dataset_hash.len())]) }</span>
                <span class="spacer" />
                if !c.ready() {
                    if let Some((done, total)) = *progress {
                        <progress id="cmp-progress" max={total.max(1).to_string()} value={done.to_string()} />
                        <span class="mono" id="cmp-progress-text">{ format!("{done}/{total}") }</span>
                        <button class="danger" id="cmp-cancel" onclick={cancel}>{ "Cancel" }</button>
                    } else {
                        <button class="primary" id="cmp-run" title={refused_editor.clone()} onclick={run} disabled={refused_editor.is_some()}>{ "Run variants" }</button>
                    }
                }
            </div>
            if !blind {
                <ol class="variant-list small" id="cmp-variants">
                    { for c.variants.iter().map(|v| html! {
                        <li>{ &v.label }<span class="muted">{ format!(" — {}{}", v.endpoint, v.lineage.as_ref().map(|l| format!(" ({l})")).unwrap_or_default()) }</span><span class="muted">{ match (v.run_id, v.run_status) {
                            (Some(id), Some(s)) => format!(" — run {id} ({})", s.as_str()),
                            _ => " — not run".to_owned(),
                        } }</span></li>
                    }) }
                </ol>
            }
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="cmp-error" /> }
            <div class="tabs">
                { tab_button(Tab::Rate, "cmp-tab-rate", "Rate blind", true) }
                { tab_button(Tab::Side, "cmp-tab-side", "Side by side", !blind) }
                { tab_button(Tab::Results, "cmp-tab-results", "Results", !blind) }
            </div>
            if !c.ready() {
                <p class="muted">{ "Run the variants to rate and compare their answers." }</p>
            } else {
                { match *tab {
                    Tab::Rate => html! { <Rate info={c.clone()} rater={(*rater).clone()} on_rating={on_rating} on_finished={on_finished} /> },
                    Tab::Side => html! { <Side info={c.clone()} /> },
                    Tab::Results => html! { <Results info={c.clone()} rater={rating.then(|| (*rater).clone())} /> },
                } }
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RateProps {
    info: ComparisonInfo,
    rater: String,
    on_rating: Callback<String>,
    on_finished: Callback<()>,
}

#[function_component]
fn Rate(p: &RateProps) -> Html {
    let refused_rater = use_refusal(MemberRole::Rater);
    // A rater is a person: the one this window records your changes as.
    let me = use_app()
        .me
        .clone()
        .and_then(Result::ok)
        .map(|id| id.author)
        .unwrap_or_default();
    let index = use_state(|| 0u64);
    let task = use_state(|| None::<RatingTask>);
    let comment = use_state(String::new);
    let criteria = use_state(milc_api::compare::CriteriaScores::new);
    let error = use_state(|| None::<CallError>);
    let comparison = p.info.name.clone();
    let rater = p.rater.clone();
    {
        let (task, error, comment, criteria) = (
            task.clone(),
            error.clone(),
            comment.clone(),
            criteria.clone(),
        );
        let (comparison, rater) = (comparison.clone(), rater.clone());
        let on_finished = p.on_finished.clone();
        use_effect_with((rater.clone(), *index), move |(_, index)| {
            let index = *index;
            if !rater.is_empty() {
                yew::platform::spawn_local(async move {
                    let task_of = cmd::CompareTask {
                        name: comparison,
                        rater,
                        index,
                    };
                    match ipc::call(task_of).await {
                        Ok(t) => {
                            if t.rated >= t.total {
                                on_finished.emit(());
                            }
                            comment.set(
                                t.ballot
                                    .as_ref()
                                    .and_then(|b| b.comment.clone())
                                    .unwrap_or_default(),
                            );
                            criteria.set(
                                t.ballot
                                    .as_ref()
                                    .map(|b| b.criteria.clone())
                                    .unwrap_or_default(),
                            );
                            task.set(Some(t));
                            error.set(None);
                        }
                        Err(e) => error.set(Some(e)),
                    }
                });
            }
        });
    }
    let vote = {
        let (task, index, error, comment, criteria) = (
            task.clone(),
            index.clone(),
            error.clone(),
            comment.clone(),
            criteria.clone(),
        );
        let (comparison, rater, on_finished) =
            (comparison.clone(), rater.clone(), p.on_finished.clone());
        Callback::from(move |verdict: Verdict| {
            let Some(t) = (*task).clone() else { return };
            let ballot = Ballot {
                verdict,
                comment: Some((*comment).clone()).filter(|c| !c.trim().is_empty()),
                criteria: (*criteria).clone(),
            };
            let (task, index, error, comparison, rater, on_finished) = (
                task.clone(),
                index.clone(),
                error.clone(),
                comparison.clone(),
                rater.clone(),
                on_finished.clone(),
            );
            yew::platform::spawn_local(async move {
                let cast = cmd::CompareVote {
                    name: comparison,
                    rater,
                    index: t.index,
                    ballot: ballot.clone(),
                };
                match ipc::call(cast).await {
                    Ok(rated) => {
                        let mut shown = t.clone();
                        shown.rated = rated;
                        shown.ballot = Some(ballot);
                        if rated >= t.total {
                            task.set(Some(shown));
                            on_finished.emit(());
                        } else if t.index + 1 < t.total {
                            index.set(t.index + 1);
                        } else {
                            task.set(Some(shown));
                        }
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    let step = {
        let (index, task) = (index.clone(), task.clone());
        Callback::from(move |forward: bool| {
            let Some(t) = &*task else { return };
            if forward && t.index + 1 < t.total {
                index.set(t.index + 1);
            } else if !forward && t.index > 0 {
                index.set(t.index - 1);
            }
        })
    };
    // 1–4 vote, j / k move, from anywhere on the page but a text field.
    {
        let (vote, step) = (vote.clone(), step.clone());
        let active = !rater.is_empty();
        use_effect(move || {
            let listener = active.then(|| {
                let cb = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
                    move |e: web_sys::KeyboardEvent| {
                        // A held key repeats: it must not vote on pairs the rater never saw.
                        if e.alt_key() || e.ctrl_key() || e.meta_key() || e.repeat() {
                            return;
                        }
                        let typing = e
                            .target()
                            .and_then(|t| {
                                wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok()
                            })
                            .is_some_and(|el| {
                                matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                            });
                        if typing {
                            return;
                        }
                        match e.key().as_str() {
                            "1" => vote.emit(Verdict::Left),
                            "2" => vote.emit(Verdict::Right),
                            "3" => vote.emit(Verdict::Tie),
                            "4" => vote.emit(Verdict::BothBad),
                            "j" => step.emit(true),
                            "k" => step.emit(false),
                            _ => return,
                        }
                        e.prevent_default();
                    },
                );
                let doc = web_sys::window().and_then(|w| w.document());
                if let Some(doc) = &doc {
                    use wasm_bindgen::JsCast;
                    let _ = doc
                        .add_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
                }
                (doc, cb)
            });
            move || {
                if let Some((Some(doc), cb)) = listener {
                    use wasm_bindgen::JsCast;
                    let _ = doc.remove_event_listener_with_callback(
                        "keydown",
                        cb.as_ref().unchecked_ref(),
                    );
                }
            }
        });
    }
    if rater.is_empty() {
        let start = {
            let (me, on_rating) = (me.clone(), p.on_rating.clone());
            Callback::from(move |e: SubmitEvent| {
                e.prevent_default();
                if !me.is_empty() {
                    on_rating.emit(me.clone());
                }
            })
        };
        return html! {
            <form class="row rate-start" onsubmit={start}>
                <span>{ "Rating as " }<b id="cmp-rater">{ &me }</b></span>
                <button class="primary" id="cmp-rate-start" title={refused_rater.clone()} type="submit" disabled={me.is_empty() || refused_rater.is_some()}>{ "Start rating" }</button>
                <span class="muted small">{ "Your name is set at the foot of the navigation. Names stay hidden and sides are shuffled until you have rated every pair." }</span>
            </form>
        };
    }
    let Some(t) = &*task else {
        return html! { if let Some(e) = &*error { <ErrorBox error={e.clone()} id="cmp-rate-error" /> } };
    };
    let chosen = t.ballot.as_ref().map(|b| b.verdict);
    let button = |v: Verdict, key: &str, label: &str, id: &str| {
        let vote = vote.clone();
        let class = classes!("vote", (chosen == Some(v)).then_some("chosen"));
        html! {
            <button class={class} id={id.to_owned()} onclick={Callback::from(move |_: MouseEvent| vote.emit(v))}>
                <kbd>{ key.to_owned() }</kbd>{ format!(" {label}") }</button>
        }
    };
    let criterion = |name: &String, side: usize| {
        let criteria = criteria.clone();
        let name = name.clone();
        let value = criteria
            .get(&name)
            .and_then(|s| s[side])
            .map(|v| v.to_string())
            .unwrap_or_default();
        html! {
            <select class="narrow" id={format!("cmp-crit-{name}-{side}")} onchange={on_select(move |v: String| {
                let mut next = (*criteria).clone();
                next.entry(name.clone()).or_insert([None, None])[side] = v.parse().ok();
                criteria.set(next);
            })}>
                <option value="" selected={value.is_empty()}>{ "–" }</option>
                { for (1..=5).map(|s| html! { <option value={s.to_string()} selected={value == s.to_string()}>{ s }</option> }) }
            </select>
        }
    };
    let side = |label: &str, id: &str, text: &str, side: usize| {
        html! {
            <div class="answer">
                <h2>{ label.to_owned() }</h2>
                <div class="output" id={id.to_owned()}>{ text.to_owned() }</div>
                if !p.info.criteria.is_empty() {
                    <div class="criteria small">
                        { for p.info.criteria.iter().map(|c| html! { <label>{ format!("{c} ") }{ criterion(c, side) }</label> }) }
                    </div>
                }
            </div>
        }
    };
    let (prev, next) = (step.clone(), step.clone());
    html! {
        <div class="rate">
            <div class="row">
                <progress id="cmp-rate-progress" max={t.total.to_string()} value={t.rated.to_string()} />
                <span class="mono" id="cmp-rate-count">{ format!("{}/{} rated", t.rated, t.total) }</span>
                <span class="spacer" />
                <button class="small" id="cmp-prev" onclick={Callback::from(move |_: MouseEvent| prev.emit(false))}><kbd>{ "k" }</kbd>{ " Previous" }</button>
                <span class="mono small" id="cmp-position">{ format!("pair {} of {}", t.index + 1, t.total) }</span>
                <button class="small" id="cmp-next" onclick={Callback::from(move |_: MouseEvent| next.emit(true))}>{ "Next " }<kbd>{ "j" }</kbd></button>
            </div>
            <div class="input-box" id="cmp-task-input">{ &t.input }</div>
            if !t.expected.is_empty() {
                <div class="small muted">{ format!("Reference: {}", t.expected.join(" / ")) }</div>
            }
            <div class="sides">
                { side("A", "cmp-left", &t.left, 0) }
                { side("B", "cmp-right", &t.right, 1) }
            </div>
            <input class="wide" id="cmp-comment" placeholder="Comment (optional)" value={(*comment).clone()}
                oninput={on_text({ let c = comment.clone(); move |v| c.set(v) })} />
            <div class="row votes">
                { button(Verdict::Left, "1", "A is better", "cmp-vote-left") }
                { button(Verdict::Right, "2", "B is better", "cmp-vote-right") }
                { button(Verdict::Tie, "3", "Tie", "cmp-vote-tie") }
                { button(Verdict::BothBad, "4", "Both bad", "cmp-vote-both-bad") }
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="cmp-rate-error" /> }
        </div>
    }
}

fn segments(s: &[Segment]) -> Html {
    html! {
        { for s.iter().map(|x| if x.changed {
            html! { <mark>{ &x.text }</mark> }
        } else {
            html! { <span>{ &x.text }</span> }
        }) }
    }
}

#[derive(Properties, PartialEq)]
struct SideProps {
    info: ComparisonInfo,
}

#[function_component]
fn Side(p: &SideProps) -> Html {
    let query = use_state(|| SideBySideQuery {
        a: 0,
        b: 1,
        by_gap: false,
        offset: 0,
        limit: 20,
    });
    let page = use_ipc(cmd::CompareSideBySide {
        name: p.info.name.clone(),
        query: (*query).clone(),
    });
    let set = |f: fn(&mut SideBySideQuery, String)| {
        let query = query.clone();
        on_select(move |v| {
            let mut q = (*query).clone();
            f(&mut q, v);
            q.offset = 0;
            query.set(q);
        })
    };
    let variant = |id: &str, value: u32, f: fn(&mut SideBySideQuery, String)| {
        html! {
            <select id={id.to_owned()} onchange={set(f)}>
                { for p.info.variants.iter().map(|v| html! { <option value={v.idx.to_string()} selected={v.idx == value}>{ &v.label }</option> }) }
            </select>
        }
    };
    let by_gap = {
        let query = query.clone();
        Callback::from(move |e: Event| {
            let on = e
                .target_unchecked_into::<web_sys::HtmlInputElement>()
                .checked();
            let mut q = (*query).clone();
            q.by_gap = on;
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
    let scores = |m: &std::collections::BTreeMap<String, f64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let body = match &*page {
        None => html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(s)) => html! {
            <>
                <div class="small muted" id="cmp-side-total">{ format!("{} items answered by both · gap by {}", s.total, s.primary.as_deref().unwrap_or("text difference")) }</div>
                <table class="grid side-by-side" id="cmp-side-table">
                    <thead><tr><th class="num">{ "Item" }</th><th>{ "Input" }</th><th>{ &s.a }</th><th>{ &s.b }</th><th class="num">{ "Gap" }</th></tr></thead>
                    <tbody>
                        { for s.rows.iter().map(|r| html! {
                            <tr key={r.item}>
                                <td class="num">{ r.item }</td>
                                <td class="small">{ &r.input }</td>
                                <td class="diff"><div>{ segments(&r.a.segments) }</div>
                                    <div class="small muted">{ format!("{} ms · ${}{}", r.a.latency_ms, r.a.cost.map(|c| c.usd()).unwrap_or_default(), if r.a.scores.is_empty() { String::new() } else { format!(" · {}", scores(&r.a.scores)) }) }</div></td>
                                <td class="diff"><div>{ segments(&r.b.segments) }</div>
                                    <div class="small muted">{ format!("{} ms · ${}{}", r.b.latency_ms, r.b.cost.map(|c| c.usd()).unwrap_or_default(), if r.b.scores.is_empty() { String::new() } else { format!(" · {}", scores(&r.b.scores)) }) }</div></td>
                                <td class="num mono">{ format!("{:.3}", r.gap) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
                <div class="row">
                    <button class="small" disabled={query.offset == 0} onclick={step(false)}>{ "Previous" }</button>
                    <span class="small muted">{ format!("{}–{} of {}", (query.offset + 1).min(s.total), (query.offset + s.rows.len() as u64).min(s.total), s.total) }</span>
                    <button class="small" disabled={query.offset + query.limit >= s.total} onclick={step(true)}>{ "Next" }</button>
                </div>
            </>
        },
    };
    html! {
        <div class="side">
            <div class="row">
                { variant("cmp-side-a", query.a, |q, v| q.a = v.parse().unwrap_or(0)) }
                <span>{ "vs" }</span>
                { variant("cmp-side-b", query.b, |q, v| q.b = v.parse().unwrap_or(1)) }
                <label><input type="checkbox" id="cmp-by-gap" checked={query.by_gap} onchange={by_gap} />{ " Largest disagreement first" }</label>
            </div>
            { body }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ResultsProps {
    info: ComparisonInfo,
    rater: Option<String>,
}

/// A variant's endpoint and, for a fine-tuned model, its lineage (`ft-v2 · tuned from base on
/// tickets@…`), so a leaderboard reads "tuned vs base".
fn variant_origin(info: &ComparisonInfo, label: &str) -> Html {
    match info.variants.iter().find(|v| v.label == label) {
        Some(v) => html! { <div class="small muted lineage">{ match &v.lineage {
            Some(l) => format!("{} · {l}", v.endpoint),
            None => v.endpoint.clone(),
        } }</div> },
        None => html! {},
    }
}

fn standings_tables(s: &Standings, id: &str, info: &ComparisonInfo) -> Html {
    html! {
        <>
            <table class="grid" id={format!("{id}-pairs")}>
                <thead><tr><th>{ "Pair" }</th><th class="num">{ "W" }</th><th class="num">{ "L" }</th><th class="num">{ "T" }</th><th class="num">{ "Both bad" }</th><th class="num">{ "Win rate" }</th><th>{ "95% CI (Wilson, ties ½)" }</th></tr></thead>
                <tbody>
                    { for s.pairs.iter().map(|p| html! {
                        <tr>
                            <td>{ format!("{} vs {}", p.first, p.second) }</td>
                            <td class="num">{ p.first_wins }</td><td class="num">{ p.second_wins }</td><td class="num">{ p.ties }</td><td class="num">{ p.both_bad }</td>
                            <td class="num mono">{ format!("{:.3}", p.win_rate) }</td>
                            <td class="mono">{ format!("[{:.3}, {:.3}]", p.low, p.high) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <table class="grid" id={format!("{id}-leaderboard")}>
                <thead><tr><th class="num">{ "Rank" }</th><th>{ "Variant" }</th><th class="num">{ "Rating" }</th><th>{ format!("95% CI ({} rounds)", s.rounds) }</th><th class="num">{ "Votes" }</th></tr></thead>
                <tbody>
                    { for s.ratings.iter().map(|r| html! {
                        <tr>
                            <td class="num">{ r.rank }</td><td>{ &r.variant }{ variant_origin(info, &r.variant) }</td>
                            <td class="num mono">{ format!("{:.1}", r.rating) }</td>
                            <td class="mono">{ format!("[{:.1}, {:.1}]", r.low, r.high) }</td>
                            <td class="num">{ r.votes }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        </>
    }
}

#[function_component]
fn Results(p: &ResultsProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let app = use_app();
    let rev = use_state(|| 0u32);
    let results = use_ipc_with(
        cmd::CompareResults {
            name: p.info.name.clone(),
            rater: p.rater.clone(),
        },
        *rev,
    );
    let judge_prompt = use_state(String::new);
    let judge_endpoint = use_state(String::new);
    let judging = use_state(|| None::<(u64, u64)>);
    // Set by Cancel: the calls it stops are not failures to report.
    let judge_cancelled = use_mut_ref(|| false);
    let judge_error = use_state(|| None::<CallError>);
    let export_kind = use_state(|| "finetune".to_owned());
    let export_path = use_state(String::new);
    let exported = use_state(|| None::<Result<String, CallError>>);
    let judge = {
        let (judge_prompt, judge_endpoint, judging, judge_error, cancelled, rev, name) = (
            judge_prompt.clone(),
            judge_endpoint.clone(),
            judging.clone(),
            judge_error.clone(),
            judge_cancelled.clone(),
            rev.clone(),
            p.info.name.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            if judge_prompt.is_empty() || judge_endpoint.is_empty() {
                return judge_error
                    .set(Some(bad("judge", "choose a rubric prompt and an endpoint")));
            }
            let shown = judging.clone();
            judging.set(Some((0, 0)));
            *cancelled.borrow_mut() = false;
            let judge = format!("{}@{}", *judge_prompt, *judge_endpoint);
            let (judging, judge_error, cancelled, rev, name) = (
                judging.clone(),
                judge_error.clone(),
                cancelled.clone(),
                rev.clone(),
                name.clone(),
            );
            yew::platform::spawn_local(async move {
                let r = ipc::call_with_channel(
                    |on_progress| cmd::CompareJudge {
                        name,
                        judge,
                        on_progress,
                    },
                    move |(d, t): (u64, u64)| shown.set(Some((d, t))),
                )
                .await;
                judging.set(None);
                let cancelled = *cancelled.borrow();
                judge_error.set(match r {
                    Ok(run) if run.failed > 0 && !cancelled => Some(bad(
                        "judge",
                        &format!(
                            "{} calls gave no verdict; the first: {}",
                            run.failed,
                            run.first_failure.unwrap_or_default()
                        ),
                    )),
                    Ok(_) => None,
                    Err(e) if e.kind == ErrorKind::Cancelled => None,
                    Err(e) => Some(e),
                });
                rev.set(*rev + 1);
            });
        })
    };
    let cancel_judge = {
        let (cancelled, name) = (judge_cancelled.clone(), p.info.name.clone());
        Callback::from(move |_: MouseEvent| {
            *cancelled.borrow_mut() = true;
            let name = name.clone();
            yew::platform::spawn_local(async move {
                let _ = ipc::call(cmd::CompareJudgeCancel { name }).await;
            });
        })
    };
    let export = {
        let (export_kind, export_path, exported, name) = (
            export_kind.clone(),
            export_path.clone(),
            exported.clone(),
            p.info.name.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (kind, path, exported, name) = (
                (*export_kind).clone(),
                (*export_path).clone(),
                exported.clone(),
                name.clone(),
            );
            yew::platform::spawn_local(async move {
                exported.set(Some(match milc_api::export::Format::parse(&kind) {
                    Some(kind) => ipc::call(cmd::CompareExport { name, kind, path })
                        .await
                        .map(|e| format!("{} records written to {}", e.records, e.path)),
                    None => Err(CallError::config(format!("'{kind}' is not a file format"))),
                }));
            });
        })
    };
    let r = match &*results {
        None => return html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => return html! { <ErrorBox error={e.clone()} id="cmp-results-error" /> },
        Some(Ok(r)) => r,
    };
    let prompts = app.version_refs();
    let endpoints = app.usable_endpoints();
    let choose = |id: &str, list: &[String], state: &UseStateHandle<String>| {
        let s = state.clone();
        html! {
            <select id={id.to_owned()} onchange={on_select(move |v| s.set(v))}>
                <option value="" selected={state.is_empty()}>{ "choose…" }</option>
                { for list.iter().map(|o| html! { <option value={o.clone()} selected={o == &**state}>{ o.clone() }</option> }) }
            </select>
        }
    };
    let b = &r.position_bias;
    html! {
        <div class="results" id="cmp-results">
            <table class="grid" id="cmp-variant-table">
                <thead><tr><th>{ "Variant" }</th><th class="num">{ "Errors" }</th><th>{ "Scores (mean)" }</th><th class="num">{ "p50 ms" }</th><th class="num">{ "Cost" }</th><th>{ "Criteria (mean 1–5)" }</th></tr></thead>
                <tbody>
                    { for r.variants.iter().map(|v| html! {
                        <tr>
                            <td>{ &v.label }{ variant_origin(&r.comparison, &v.label) }</td><td class="num">{ v.errors }</td>
                            <td class="mono small">{ v.scores.iter().map(|(k, i)| format!("{k} {:.3}", i.mean)).collect::<Vec<_>>().join(" · ") }</td>
                            <td class="num mono">{ format!("{:.0}", v.latency_p50_ms) }</td>
                            <td class="num mono">{ v.cost.map(|c| format!("${}{}", c.usd(), if v.cost_estimated { " est." } else { "" })).unwrap_or_default() }</td>
                            <td class="mono small">{ v.criteria.iter().map(|(k, m)| format!("{k} {m:.2}")).collect::<Vec<_>>().join(" · ") }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <h2>{ format!("People: {} votes", r.human.votes) }</h2>
            <div class="small muted" id="cmp-raters">{ r.raters.iter().map(|x| format!("{} {}/{}", x.rater, x.rated, r.tasks)).collect::<Vec<_>>().join(" · ") }</div>
            { standings_tables(&r.human, "cmp-human", &r.comparison) }
            <div class="small" id="cmp-agreement">
                { match &r.human.agreement {
                    Some(a) => format!("Agreement: {} κ {:.3} over {} items, {} raters", if a.method == "cohen" { "Cohen's" } else { "Fleiss'" }, a.kappa, a.items, a.raters),
                    None => "Agreement: needs two or more raters on the same pairs".to_owned(),
                } }
            </div>
            <div class="small" id="cmp-bias">{ format!("Position bias: the left side won {} of {} decisive votes ({:.0} %, 95% CI {:.0}–{:.0} %)", b.left_wins, b.decisive, b.share * 100.0, b.low * 100.0, b.high * 100.0) }</div>
            { for r.judges.iter().map(|j| html! {
                <div class="judge">
                    <h2>{ format!("Judge {}", j.judge) }</h2>
                    <div class="small" id="cmp-judge-summary">{ format!("{} pairs judged in both orders · {} inconsistent{}{}", j.pairs, j.inconsistent,
                        if j.inconsistent_items.is_empty() { String::new() } else { format!(" (items {})", j.inconsistent_items.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")) },
                        j.agreement_with_humans.as_ref().map(|a| format!(" · agreement with people: κ {:.3} over {} vote pairs", a.kappa, a.items)).unwrap_or_default()) }</div>
                    { standings_tables(&j.standings, "cmp-judge", &r.comparison) }
                </div>
            }) }
            <div class="row">
                <span class="label">{ "LLM judge (pairwise rubric: input, output_a, output_b)" }</span>
                { choose("cmp-judge-prompt", &prompts, &judge_prompt) }
                { choose("cmp-judge-endpoint", &endpoints, &judge_endpoint) }
                if let Some((d, t)) = *judging {
                    <progress id="cmp-judge-progress" max={t.max(1).to_string()} value={d.to_string()} />
                    <span class="mono">{ format!("{d}/{t}") }</span>
                    <button class="danger" id="cmp-judge-cancel" onclick={cancel_judge}>{ "Cancel" }</button>
                } else {
                    <button id="cmp-judge" title={refused_editor.clone()} onclick={judge} disabled={refused_editor.is_some()}>{ "Judge every pair" }</button>
                }
            </div>
            if let Some(e) = &*judge_error { <ErrorBox error={e.clone()} id="cmp-judge-error" /> }
            <div class="row">
                <span class="label">{ "Export" }</span>
                <select id="cmp-export-format" onchange={on_select({ let k = export_kind.clone(); move |v| k.set(v) })}>
                    <option value="finetune" selected={*export_kind == "finetune"}>{ "Fine-tuning JSONL (chat)" }</option>
                    <option value="dpo" selected={*export_kind == "dpo"}>{ "Preference pairs JSONL (prompt / chosen / rejected)" }</option>
                    <option value="csv" selected={*export_kind == "csv"}>{ "Ratings CSV" }</option>
                </select>
                <input id="cmp-export-path" placeholder="File (default: Downloads)" value={(*export_path).clone()}
                    oninput={on_text({ let e = export_path.clone(); move |v| e.set(v) })} />
                <button id="cmp-export" onclick={export}>{ "Export" }</button>
            </div>
            { match &*exported {
                Some(Ok(m)) => html! { <div class="small ok" id="cmp-exported">{ m }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="cmp-export-error" /> },
                None => html! {},
            } }
        </div>
    }
}
