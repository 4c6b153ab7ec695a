//! The call log: every call from the Playground, the CLI, runs and the gateway, newest first.

use milc_api::{cmd, CallRecord, UsageSource};
use yew::prelude::*;

use crate::components::{local_time, ErrorBox};
use crate::hooks::use_ipc;

#[function_component]
pub fn Calls() -> Html {
    let calls = use_ipc(cmd::CallsList { limit: 200 });
    let body = match &*calls {
        None => html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(list)) if list.is_empty() => {
            html! { <p class="muted">{ "No calls yet: send one from the Playground." }</p> }
        }
        Some(Ok(list)) => html! {
            <table class="grid" id="calls-table">
                <thead><tr>
                    <th class="num">{ "#" }</th><th>{ "Time" }</th><th>{ "Endpoint" }</th><th>{ "Model" }</th><th>{ "Source" }</th>
                    <th>{ "Outcome" }</th><th class="num">{ "Latency" }</th><th class="num">{ "TTFT" }</th>
                    <th class="num">{ "Tokens" }</th><th class="num">{ "Cost" }</th>
                </tr></thead>
                <tbody>{ for list.iter().map(row) }</tbody>
            </table>
        },
    };
    html! {
        <div class="page calls">
            <header class="page-head"><h1>{ "Calls" }</h1><span class="muted">{ "the newest 200" }</span></header>
            { body }
        </div>
    }
}

fn row(r: &CallRecord) -> Html {
    let c = &r.call;
    let outcome = match c.error_kind {
        Some(k) => {
            html! { <span class="badge danger" title={c.http_status.map(|s| format!("HTTP {s}"))}>{ format!("{} · {}", c.outcome.as_str(), k.as_str()) }</span> }
        }
        None => html! { <span class="badge ok">{ c.outcome.as_str() }</span> },
    };
    html! {
        <tr key={r.id}>
            <td class="num">{ r.id }</td>
            <td class="mono">{ local_time(c.at_ms) }</td>
            <td>{ r.endpoint.clone().unwrap_or_else(|| "(deleted)".into()) }</td>
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
