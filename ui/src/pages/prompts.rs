//! Prompts: every prompt with its immutable versions (note, author, time, hash), labels and the
//! history of their moves, a side-by-side diff of any two versions, and "open in Playground".

use milc_api::prompt::{Change, DiffRow, PromptDetail, PromptDiff, PromptVersion};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError};
use yew::prelude::*;

use yew_router::prelude::*;

use crate::components::{gist, local_time, on_select, on_text, ErrorBox};
use crate::hooks::{refresh_prompts, use_app, use_ipc, use_refusal};
use crate::ipc;
use crate::pages::playground::{open_version, PlaygroundContext};
use crate::route::{use_jump, Route};

#[function_component]
pub fn Prompts() -> Html {
    let focus = crate::hooks::use_focus();
    let app = use_app();
    let jump = use_jump();
    let selected = use_state(|| jump.prompt.clone());
    {
        let selected = selected.clone();
        use_effect_with(jump.prompt.clone(), move |p| {
            if p.is_some() {
                selected.set(p.clone());
            }
        });
    }
    let rev = use_state(|| 0u32);
    let detail = use_state(|| None::<Result<PromptDetail, CallError>>);

    // Select the first prompt once the list is known.
    {
        let selected = selected.clone();
        let first = app.prompts.first().map(|p| p.name.clone());
        use_effect_with(first, move |first| {
            if selected.is_none() {
                selected.set(first.clone());
            }
        });
    }
    {
        let detail = detail.clone();
        use_effect_with(((*selected).clone(), *rev, focus), move |(name, _, _)| {
            if let Some(name) = name.clone() {
                yew::platform::spawn_local(async move {
                    detail.set(Some(ipc::call(cmd::PromptsShow { name }).await));
                });
            }
        });
    }
    let on_changed = {
        let (rev, app) = (rev.clone(), app.clone());
        Callback::from(move |_: ()| {
            rev.set(*rev + 1);
            refresh_prompts(app.clone());
        })
    };

    let list = if app.prompts.is_empty() {
        html! {
            <p class="muted" id="prompts-empty">
                { "No prompts yet. Write one in the Playground and use “Save as new version”, or run " }
                <code>{ "milc prompts create NAME --file prompt.yaml" }</code>{ "." }
            </p>
        }
    } else {
        html! {
            <table class="grid" id="prompts-list">
                <thead><tr><th>{ "Prompt" }</th><th class="num">{ "Latest" }</th><th>{ "Labels" }</th></tr></thead>
                <tbody>
                    { for app.prompts.iter().map(|p| {
                        let pick = { let (s, n) = (selected.clone(), p.name.clone()); Callback::from(move |_: MouseEvent| s.set(Some(n.clone()))) };
                        let active = selected.as_deref() == Some(p.name.as_str());
                        html! {
                            <tr key={p.name.clone()} class={classes!("clickable", active.then_some("selected"))} onclick={pick} id={format!("prompt-{}", p.name)}>
                                <td><strong>{ &p.name }</strong><div class="small muted">{ gist(&p.description, 40) }</div></td>
                                <td class="num">{ format!("v{}", p.latest) }</td>
                                <td>{ for p.labels.iter().map(|(l, v)| html! { <span class="badge info">{ format!("{l} → v{v}") }</span> }) }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        }
    };
    let body = match &*detail {
        Some(Ok(d)) if selected.as_deref() == Some(d.summary.name.as_str()) => {
            html! { <Detail detail={d.clone()} {on_changed} highlight={jump.version} /> }
        }
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        _ => html! {},
    };
    html! {
        <div class="page prompts">
            <header class="page-head"><h1>{ "Prompts" }</h1></header>
            <div class="prompts-grid">
                <section>{ list }</section>
                <section class="prompt-detail">{ body }</section>
            </div>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct DetailProps {
    detail: PromptDetail,
    on_changed: Callback<()>,
    /// The version a jump from a call points at.
    #[prop_or_default]
    highlight: Option<u32>,
}

#[function_component]
fn Detail(p: &DetailProps) -> Html {
    let d = &p.detail;
    let name = d.summary.name.clone();
    let latest = d.summary.latest;
    let pg = use_context::<PlaygroundContext>().expect("the app provides the playground state");
    let navigator = use_navigator();
    let open = |v: &PromptVersion| {
        let (pg, v, navigator) = (pg.clone(), v.clone(), navigator.clone());
        Callback::from(move |_: MouseEvent| {
            open_version(&pg, &v);
            if let Some(n) = &navigator {
                n.push(&Route::Playground);
            }
        })
    };
    html! {
        <>
            <div class="row">
                <h2 class="prompt-name">{ &name }</h2>
                <span class="muted">{ &d.summary.description }</span>
            </div>
            <table class="grid" id="prompt-versions">
                <thead><tr>
                    <th>{ "Version" }</th><th>{ "Labels" }</th><th>{ "Note" }</th><th>{ "Author" }</th>
                    <th>{ "Saved" }</th><th>{ "Hash" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for d.versions.iter().map(|v| html! {
                        <tr key={v.version} id={format!("version-{}", v.version)} class={classes!((p.highlight == Some(v.version)).then_some("selected"))}>
                            <td class="mono">{ format!("v{}", v.version) }</td>
                            <td>{ for v.labels.iter().map(|l| html! { <span class="badge info">{ l.clone() }</span> }) }</td>
                            <td>{ &v.note }</td>
                            <td>{ &v.author }</td>
                            <td class="mono small">{ local_time(v.created_ms) }</td>
                            <td class="mono small" title={v.hash.clone()}>{ &v.hash[..12] }</td>
                            <td class="actions"><button class="small" id={format!("open-v{}", v.version)} onclick={open(v)}>{ "Open in Playground" }</button></td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <Labels name={name.clone()} {latest} history={d.label_history.clone()} on_changed={p.on_changed.clone()} />
            if latest > 1 {
                <Diff name={name.clone()} {latest} />
            }
        </>
    }
}

#[derive(Properties, PartialEq)]
struct LabelsProps {
    name: String,
    latest: u32,
    history: Vec<milc_api::prompt::LabelMove>,
    on_changed: Callback<()>,
}

#[function_component]
fn Labels(p: &LabelsProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let label = use_state(|| "production".to_owned());
    let version = use_state(|| p.latest);
    let error = use_state(|| None::<CallError>);
    {
        let version = version.clone();
        use_effect_with((p.name.clone(), p.latest), move |(_, latest)| {
            version.set(*latest)
        });
    }
    let onclick = {
        let (name, label, version, error, changed) = (
            p.name.clone(),
            label.clone(),
            version.clone(),
            error.clone(),
            p.on_changed.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (name, label, v, error, changed) = (
                name.clone(),
                label.trim().to_owned(),
                *version,
                error.clone(),
                changed.clone(),
            );
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::PromptsLabel {
                    name,
                    version: v,
                    label,
                })
                .await
                {
                    Ok(_) => {
                        error.set(None);
                        changed.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <div class="panel labels">
            <h2>{ "Labels" }</h2>
            <div class="row">
                <input id="label-name" list="label-names" value={(*label).clone()} oninput={{ let l = label.clone(); on_text(move |v| l.set(v)) }} />
                <datalist id="label-names"><option value="production" /><option value="candidate" /></datalist>
                <span class="muted">{ "→" }</span>
                <select id="label-version" onchange={{ let v = version.clone(); on_select(move |s| v.set(s.parse().unwrap_or(1))) }}>
                    { for (1..=p.latest).rev().map(|n| html! { <option value={n.to_string()} selected={n == *version}>{ format!("v{n}") }</option> }) }
                </select>
                <button id="label-move" title={refused_editor.clone()} {onclick} disabled={refused_editor.is_some()}>{ "Point label here" }</button>
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
            if !p.history.is_empty() {
                <table class="grid compact" id="label-history">
                    <thead><tr><th>{ "When" }</th><th>{ "Label" }</th><th>{ "Move" }</th><th>{ "Who" }</th></tr></thead>
                    <tbody>
                        { for p.history.iter().map(|m| html! {
                            <tr>
                                <td class="mono small">{ local_time(m.at_ms) }</td>
                                <td>{ &m.label }</td>
                                <td class="mono">{ format!("{} → v{}", m.from.map_or("(new)".to_owned(), |v| format!("v{v}")), m.to) }</td>
                                <td>{ &m.author }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct DiffProps {
    name: String,
    latest: u32,
}

#[function_component]
fn Diff(p: &DiffProps) -> Html {
    let left = use_state(|| p.latest - 1);
    let right = use_state(|| p.latest);
    {
        let (left, right) = (left.clone(), right.clone());
        use_effect_with((p.name.clone(), p.latest), move |(_, latest)| {
            left.set(latest.saturating_sub(1).max(1));
            right.set(*latest);
        });
    }
    let diff = use_ipc(cmd::PromptsDiff {
        name: p.name.clone(),
        left: *left,
        right: *right,
    });
    let picker = |id: &str, state: &UseStateHandle<u32>| {
        let s = state.clone();
        html! {
            <select id={id.to_owned()} onchange={on_select(move |v| s.set(v.parse().unwrap_or(1)))}>
                { for (1..=p.latest).rev().map(|n| html! { <option value={n.to_string()} selected={n == **state}>{ format!("v{n}") }</option> }) }
            </select>
        }
    };
    let body = match &*diff {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(d)) => side_by_side(d),
    };
    html! {
        <div class="panel diff">
            <div class="row">
                <h2>{ "Diff" }</h2>
                { picker("diff-left", &left) }<span class="muted">{ "↔" }</span>{ picker("diff-right", &right) }
            </div>
            { body }
        </div>
    }
}

fn side_by_side(d: &PromptDiff) -> Html {
    let changed: Vec<_> = d.messages.iter().filter(|m| m.changed()).collect();
    let cell = |side: &Option<(u32, String)>| match side {
        Some((n, text)) => {
            html! { <><td class="ln">{ n }</td><td class="code">{ text.clone() }</td></> }
        }
        None => html! { <><td class="ln"></td><td class="code empty"></td></> },
    };
    let row = |r: &DiffRow| {
        let class = match r.change {
            Change::Same => "same",
            Change::Changed => "changed",
            Change::Removed => "removed",
            Change::Added => "added",
        };
        html! { <tr class={class}>{ cell(&r.left) }{ cell(&r.right) }</tr> }
    };
    let role = |r: Option<milc_api::Role>| r.map_or("(none)", |r| r.as_str());
    html! {
        <>
            if changed.is_empty() && d.settings.is_empty() {
                <p class="muted" id="prompt-diff-none">{ "No differences." }</p>
            }
            if !changed.is_empty() {
                <table class="diff-table" id="prompt-diff">
                    <colgroup><col class="ln" /><col /><col class="ln" /><col /></colgroup>
                    <thead><tr><th colspan="2">{ format!("v{}", d.left) }</th><th colspan="2">{ format!("v{}", d.right) }</th></tr></thead>
                    { for changed.iter().map(|m| html! {
                        <tbody>
                            <tr class="message-head"><td colspan="2">{ format!("message {} · {}", m.index + 1, role(m.left_role)) }</td>
                                <td colspan="2">{ format!("message {} · {}", m.index + 1, role(m.right_role)) }</td></tr>
                            { for m.rows.iter().map(row) }
                        </tbody>
                    }) }
                </table>
            }
            if !d.settings.is_empty() {
                <table class="grid compact" id="prompt-diff-settings">
                    <thead><tr><th>{ "Setting" }</th><th>{ format!("v{}", d.left) }</th><th>{ format!("v{}", d.right) }</th></tr></thead>
                    <tbody>
                        { for d.settings.iter().map(|c| html! {
                            <tr>
                                <td class="mono">{ &c.field }</td>
                                <td class="mono removed">{ c.left.clone().unwrap_or_else(|| "(unset)".into()) }</td>
                                <td class="mono added">{ c.right.clone().unwrap_or_else(|| "(unset)".into()) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        </>
    }
}
