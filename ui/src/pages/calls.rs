//! The call log: every call from the Playground, the CLI, runs and the gateway, newest first,
//! filtered by source, endpoint, status and time; a call opens with its kept (redacted) bodies
//! and a jump to the run, comparison or prompt version that made it.

use milc_api::usage::{CallDetail, CallsQuery};
use milc_api::{cmd, CallRecord, CallSource, Outcome, UsageSource};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::{date_ms, local_time, on_select, on_text, ErrorBox};
use crate::hooks::{use_app, use_ipc_with};
use crate::ipc;
use crate::route::{jump_to, Jump, Route};

const LIMIT: u32 = 200;
const DAY: i64 = 86_400_000;
/// The last moment a JavaScript date can hold: open-ended ranges end here (`i64::MAX` would not
/// survive the trip through a JavaScript number).
const FOREVER: i64 = 8_640_000_000_000_000;

#[derive(Clone, Default, PartialEq)]
struct Filter {
    endpoint: String,
    source: String,
    status: String,
    /// UTC dates as the date inputs give them (`2026-11-01`); empty: open-ended.
    from: String,
    to: String,
}

impl Filter {
    fn query(&self) -> CallsQuery {
        CallsQuery {
            since_ms: date_ms(&self.from).unwrap_or(0),
            until_ms: date_ms(&self.to).map_or(FOREVER, |d| d + DAY),
            endpoint: (!self.endpoint.is_empty()).then(|| self.endpoint.clone()),
            prompt: None,
            source: CallSource::parse(&self.source),
            outcome: Outcome::parse(&self.status),
            limit: LIMIT,
        }
    }
}

#[function_component]
pub fn Calls() -> Html {
    let app = use_app();
    let filter = use_state(Filter::default);
    let calls = use_ipc_with(
        cmd::UsageCalls {
            query: filter.query(),
        },
        (),
    );
    let open = use_state(|| None::<i64>);
    let set = |f: fn(&mut Filter, String)| {
        let filter = filter.clone();
        move |v: String| {
            let mut next = (*filter).clone();
            f(&mut next, v);
            filter.set(next);
        }
    };
    let options = |id: &str,
                   all: &str,
                   values: Vec<String>,
                   value: &str,
                   f: fn(&mut Filter, String)| {
        html! {
            <select id={id.to_owned()} onchange={on_select(set(f))}>
                <option value="" selected={value.is_empty()}>{ all.to_owned() }</option>
                { for values.into_iter().map(|o| html! { <option value={o.clone()} selected={o == value}>{ o.clone() }</option> }) }
            </select>
        }
    };
    let mut endpoints: Vec<String> = app.endpoints.iter().map(|e| e.spec.name.clone()).collect();
    endpoints.push(milc_api::usage::DELETED_ENDPOINT.to_owned());
    let filters = html! {
        <div class="filters" id="calls-filters">
            <label>{ "Endpoint" }{ options("calls-endpoint", "all endpoints", endpoints, &filter.endpoint, |f, v| f.endpoint = v) }</label>
            <label>{ "Source" }{ options("calls-source", "all sources", milc_api::CallSource::ALL.iter().map(|s| s.as_str().to_owned()).collect(), &filter.source, |f, v| f.source = v) }</label>
            <label>{ "Status" }{ options("calls-status", "any status", ["ok", "error", "cancelled"].map(String::from).to_vec(), &filter.status, |f, v| f.status = v) }</label>
            <label>{ "From (UTC)" }<input type="date" id="calls-from" value={filter.from.clone()} oninput={on_text(set(|f, v| f.from = v))} /></label>
            <label>{ "To (UTC)" }<input type="date" id="calls-to" value={filter.to.clone()} oninput={on_text(set(|f, v| f.to = v))} /></label>
            if *filter != Filter::default() {
                <button class="small ghost" id="calls-clear" onclick={{ let f = filter.clone(); Callback::from(move |_: MouseEvent| f.set(Filter::default())) }}>{ "Clear filters" }</button>
            }
        </div>
    };
    let body = match &*calls {
        None => html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(list)) if list.is_empty() && *filter == Filter::default() => {
            html! { <p class="muted">{ "No calls yet: send one from the Playground." }</p> }
        }
        Some(Ok(list)) if list.is_empty() => {
            html! { <p class="muted" id="calls-none">{ "No call matches these filters." }</p> }
        }
        Some(Ok(list)) => html! {
            <table class="grid" id="calls-table">
                <thead><tr>
                    <th class="num">{ "#" }</th><th>{ "Time" }</th><th>{ "Endpoint" }</th><th>{ "Model" }</th><th>{ "Source" }</th>
                    <th>{ "Outcome" }</th><th class="num">{ "Latency" }</th><th class="num">{ "TTFT" }</th>
                    <th class="num">{ "Tokens" }</th><th class="num">{ "Cost" }</th>
                </tr></thead>
                <tbody>{ for list.iter().map(|r| row(r, &open)) }</tbody>
            </table>
        },
    };
    html! {
        <div class="page calls">
            <header class="page-head"><h1>{ "Calls" }</h1><span class="muted">{ format!("the newest {LIMIT} that match") }</span></header>
            { filters }
            if let Some(id) = *open {
                <Detail key={id} {id} on_close={{ let o = open.clone(); Callback::from(move |_| o.set(None)) }} />
            }
            { body }
        </div>
    }
}

fn row(r: &CallRecord, open: &UseStateHandle<Option<i64>>) -> Html {
    let c = &r.call;
    let outcome = match c.error_kind {
        Some(k) => {
            html! { <span class="badge danger" title={c.http_status.map(|s| format!("HTTP {s}"))}>{ format!("{} · {}", c.outcome.as_str(), k.as_str()) }</span> }
        }
        None => html! { <span class="badge ok">{ c.outcome.as_str() }</span> },
    };
    let pick = {
        let (open, id) = (open.clone(), r.id);
        Callback::from(move |_: MouseEvent| open.set(Some(id)))
    };
    html! {
        <tr key={r.id} id={format!("call-{}", r.id)} class={classes!("clickable", (**open == Some(r.id)).then_some("selected"))} onclick={pick}>
            <td class="num"><button class="ghost small" id={format!("call-open-{}", r.id)} title="Open this call">{ r.id }</button></td>
            <td class="mono">{ local_time(c.at_ms) }</td>
            <td>{ r.endpoint.clone().unwrap_or_else(|| milc_api::usage::DELETED_ENDPOINT.into()) }</td>
            <td class="mono">{ &c.model }</td>
            <td>{ c.source.as_str() }</td>
            <td>{ outcome }</td>
            <td class="num">{ format!("{} ms", c.latency_ms) }</td>
            <td class="num">{ c.ttft_ms.map(|t| format!("{t} ms")).unwrap_or_else(|| "—".into()) }</td>
            <td class="num">{ c.usage.map(|u| format!("{} → {}", u.prompt_tokens, u.completion_tokens)).unwrap_or_else(|| "—".into()) }</td>
            <td class="num">{ c.cost.map(|k| format!("${}{}", k.usd(), if k.source == UsageSource::Estimated { " est." } else { "" })).unwrap_or_else(|| "—".into()) }</td>
        </tr>
    }
}

#[derive(Properties, PartialEq)]
struct DetailProps {
    id: i64,
    on_close: Callback<()>,
}

/// One call: what it was, its kept bodies, and where it came from.
#[function_component]
fn Detail(p: &DetailProps) -> Html {
    let detail = use_state(|| None::<Result<CallDetail, milc_api::CallError>>);
    {
        let (detail, id) = (detail.clone(), p.id);
        use_effect_with(id, move |_| {
            yew::platform::spawn_local(async move {
                detail.set(Some(ipc::call(cmd::CallDetailGet { id }).await));
            });
        });
    }
    let navigator = use_navigator();
    let close = {
        let on_close = p.on_close.clone();
        Callback::from(move |_: MouseEvent| on_close.emit(()))
    };
    let content = match &*detail {
        None => html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(d)) => {
            let c = &d.record.call;
            let mut jumps = Vec::new();
            if let Some(run) = d.run {
                jumps.push(html! { <button class="small" id="call-jump-run" onclick={jump_to(navigator.clone(), Route::Runs, Jump { run: Some(run.run_id), ..Jump::default() })}>
                    { format!("Run {} · item {}{}", run.run_id, run.item + 1, if run.rep > 0 { format!(" · repeat {}", run.rep + 1) } else { String::new() }) }</button> });
            }
            if let Some(name) = &d.comparison {
                jumps.push(html! { <button class="small" id="call-jump-comparison" onclick={jump_to(navigator.clone(), Route::Compare, Jump { comparison: Some(name.clone()), ..Jump::default() })}>
                    { format!("Comparison {name}") }</button> });
            }
            if let Some(pin) = &c.prompt {
                jumps.push(html! { <button class="small" id="call-jump-prompt" onclick={jump_to(navigator.clone(), Route::Prompts, Jump { prompt: Some(pin.prompt.clone()), version: Some(pin.version), ..Jump::default() })}>
                    { format!("Prompt {pin}") }</button> });
            }
            if let Some((route, arm)) = &d.route {
                jumps.push(html! { <button class="small" id="call-jump-route" onclick={jump_to(navigator.clone(), Route::Routes, Jump::default())}>
                    { format!("Route {route} · arm {arm}") }</button> });
            }
            let bodies = match &d.body {
                Some(b) => html! {
                    <div class="call-bodies">
                        <h3>{ "Request (redacted as stored)" }</h3>
                        <pre id="call-request">{ serde_json::to_string_pretty(&b.request).unwrap_or_default() }</pre>
                        <h3>{ "Response" }</h3>
                        <pre id="call-response">{ &b.response }</pre>
                    </div>
                },
                None => {
                    html! { <p class="muted small" id="call-no-body">{ "No bodies kept: this endpoint's policy does not keep them (Endpoints → keep request and response bodies), or retention has emptied them." }</p> }
                }
            };
            html! {
                <>
                    <div class="row small">
                        <span>{ format!("{} · {} · {}", local_time(c.at_ms), d.record.endpoint.clone().unwrap_or_else(|| milc_api::usage::DELETED_ENDPOINT.into()), c.model) }</span>
                        <span class="badge">{ c.source.as_str() }</span>
                        <span class={classes!("badge", if c.error_kind.is_some() { "danger" } else { "ok" })}>{ c.error_kind.map_or(c.outcome.as_str(), |k| k.as_str()) }</span>
                    </div>
                    if !jumps.is_empty() {
                        <div class="row" id="call-jumps"><span class="muted small">{ "Made by" }</span>{ for jumps }</div>
                    }
                    { bodies }
                </>
            }
        }
    };
    html! {
        <section class="panel call-detail" id="call-detail">
            <div class="row"><h2>{ format!("Call #{}", p.id) }</h2><span class="spacer" />
                <button class="small ghost" id="call-close" onclick={close}>{ "Close" }</button></div>
            { content }
        </section>
    }
}
