//! The Playground's history: every call with its inputs (after redaction), variables, prompt
//! version, parameters, output and figures; searchable; any entry reopens into the editor.

use milc_api::prompt::HistoryEntry;
use milc_api::{cmd, Outcome};
use yew::prelude::*;

use crate::components::{gist, local_time, on_text, ErrorBox};
use crate::hooks::use_ipc_with;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// Changes after each call, to reload.
    pub rev: u32,
    pub onreopen: Callback<HistoryEntry>,
}

#[function_component]
pub fn History(p: &Props) -> Html {
    let search = use_state(String::new);
    let list = use_ipc_with(
        cmd::HistoryList {
            search: (*search).clone(),
            limit: 50,
        },
        p.rev,
    );
    let oninput = {
        let search = search.clone();
        on_text(move |v| search.set(v))
    };
    let body = match &*list {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(entries)) if entries.is_empty() => html! {
            <p class="muted">{ if search.is_empty() { "No calls yet." } else { "Nothing matches." } }</p>
        },
        Some(Ok(entries)) => html! {
            <table class="grid" id="pg-history">
                <thead><tr>
                    <th>{ "Time" }</th><th>{ "Endpoint" }</th><th>{ "Prompt" }</th><th>{ "Input" }</th>
                    <th>{ "Output" }</th><th class="num">{ "Cost" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for entries.iter().map(|h| {
                        let reopen = {
                            let (cb, h) = (p.onreopen.clone(), h.clone());
                            Callback::from(move |_: MouseEvent| cb.emit(h.clone()))
                        };
                        let input = h.messages.iter().rev().find(|m| m.role == milc_api::Role::User)
                            .map(|m| m.content.as_str()).unwrap_or("");
                        html! {
                            <tr key={h.id} class="history-row">
                                <td class="mono small">{ local_time(h.at_ms) }</td>
                                <td>{ &h.endpoint }</td>
                                <td class="mono">{ h.prompt.as_ref().map(ToString::to_string).unwrap_or_else(|| "—".into()) }</td>
                                <td title={input.to_owned()}>{ gist(input, 60) }</td>
                                <td title={h.output.clone()}>
                                    if h.outcome != Outcome::Ok { <span class="badge danger">{ h.outcome.as_str() }</span> }
                                    { gist(&h.output, 60) }
                                </td>
                                <td class="num">{ h.figures.cost.map(|c| format!("${}", c.usd())).unwrap_or_else(|| "—".into()) }</td>
                                <td class="actions">
                                    <button class="small" id={format!("pg-reopen-{}", h.id)} onclick={reopen}>{ "Reopen" }</button>
                                </td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <section class="history">
            <div class="answer-head">
                <h2>{ "History" }</h2>
                <span class="spacer" />
                <input id="pg-history-search" type="search" placeholder="Search inputs, variables, outputs…" value={(*search).clone()} {oninput} />
            </div>
            { body }
        </section>
    }
}
