//! The retirement section of the Lifecycle page, as `milc endpoints status`, `used-by` and
//! `milc retirement` see it: what is deprecated or retired with its sunset date, replacement and
//! remaining traffic; what still uses an endpoint; and the move through the lifecycle, which
//! asks for confirmation (listing what breaks) before retiring something still referenced.

use milc_api::lifecycle::{ArchiveScope, Lifecycle, RetirementEntry, UsedBy};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, EndpointStatus};
use yew::prelude::*;

use crate::components::{date_ms, local_time, on_select, on_text, setter, ArchiveButton, ErrorBox};
use crate::hooks::{refresh_endpoints, use_app, use_refusal};
use crate::ipc;

#[function_component]
pub fn Retirement() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let focus = crate::hooks::use_focus();
    let app = use_app();
    let rev = use_state(|| 0u32);
    let list = use_state(Vec::<RetirementEntry>::new);
    let endpoint = use_state(String::new);
    let (status, sunset, replacement) = (
        use_state(|| "deprecated".to_owned()),
        use_state(String::new),
        use_state(String::new),
    );
    let used = use_state(|| None::<Result<UsedBy, CallError>>);
    // The last refusal, kept while the user decides whether to retire anyway.
    let refused = use_state(|| None::<CallError>);
    let done = use_state(|| None::<String>);
    let current = if endpoint.is_empty() {
        app.endpoints
            .first()
            .map(|e| e.spec.name.clone())
            .unwrap_or_default()
    } else {
        (*endpoint).clone()
    };
    {
        let list = list.clone();
        use_effect_with((*rev, focus), move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(l) = ipc::call(cmd::RetirementList {}).await {
                    list.set(l);
                }
            });
        });
    }
    {
        let used = used.clone();
        use_effect_with((current.clone(), *rev), move |(name, _)| {
            let name = name.clone();
            if !name.is_empty() {
                yew::platform::spawn_local(async move {
                    used.set(Some(ipc::call(cmd::EndpointUsedBy { name }).await));
                });
            }
        });
    }
    let apply = |force: bool| {
        let (app, rev, status, sunset, replacement, refused, done, name) = (
            app.clone(),
            rev.clone(),
            status.clone(),
            sunset.clone(),
            replacement.clone(),
            refused.clone(),
            done.clone(),
            current.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let status = EndpointStatus::parse(&status).unwrap_or_default();
            let sunset_ms = if sunset.trim().is_empty() {
                None
            } else {
                match date_ms(sunset.trim()) {
                    Some(ms) => Some(ms),
                    None => {
                        return refused.set(Some(CallError::config(format!(
                            "sunset: '{}' is not a date like 2027-01-31",
                            *sunset
                        ))))
                    }
                }
            };
            let lifecycle = Lifecycle {
                status,
                sunset_ms,
                replacement: Some((*replacement).clone()).filter(|r| !r.is_empty()),
            };
            let (app, rev, refused, done, name) = (
                app.clone(),
                rev.clone(),
                refused.clone(),
                done.clone(),
                name.clone(),
            );
            yew::platform::spawn_local(async move {
                let r = ipc::call(cmd::EndpointLifecycleSet {
                    name: name.clone(),
                    lifecycle,
                    force,
                })
                .await;
                match r {
                    Ok(_) => {
                        refused.set(None);
                        done.set(Some(format!("'{name}' is now {}", status.as_str())));
                        refresh_endpoints(app);
                        rev.set(*rev + 1);
                    }
                    Err(e) => {
                        done.set(None);
                        refused.set(Some(e));
                    }
                }
            });
        })
    };
    let others: Vec<String> = app
        .endpoints
        .iter()
        .filter(|e| e.spec.name != current && e.spec.status != EndpointStatus::Retired)
        .map(|e| e.spec.name.clone())
        .collect();
    html! {
        <section class="panel" id="retirement">
            <h2>{ "Retirement" }</h2>
            <table class="grid compact" id="ret-list">
                <thead><tr><th>{ "Endpoint" }</th><th>{ "Status" }</th><th>{ "Sunset" }</th><th>{ "Replacement" }</th><th class="num">{ "Calls 7 d" }</th><th class="num">{ "Calls 30 d" }</th><th class="num">{ "References" }</th><th></th></tr></thead>
                <tbody>
                    if list.is_empty() { <tr><td colspan="8" class="muted">{ "Nothing is deprecated or retired." }</td></tr> }
                    { for list.iter().map(|r| html! {
                        <tr data-endpoint={r.endpoint.clone()}>
                            <td>{ &r.endpoint }</td>
                            <td>{ r.lifecycle.status.as_str() }</td>
                            <td>{ r.lifecycle.sunset_ms.map(|ms| local_time(ms)[..10].to_owned()).unwrap_or_default() }</td>
                            <td>{ r.lifecycle.replacement.clone().unwrap_or_default() }</td>
                            <td class="num">{ r.calls_7d }</td><td class="num">{ r.calls_30d }</td><td class="num">{ r.references }</td>
                            <td class="actions"><ArchiveButton scope={ArchiveScope::Endpoint(r.endpoint.clone())} id={format!("ret-archive-{}", r.endpoint)} /></td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <div class="row wrap">
                <select id="ret-endpoint" onchange={on_select(setter(&endpoint))}>
                    { for app.endpoints.iter().map(|e| html! { <option value={e.spec.name.clone()} selected={current == e.spec.name}>{ format!("{} ({})", e.spec.name, e.spec.status.as_str()) }</option> }) }
                </select>
                <select id="ret-status" onchange={on_select(setter(&status))}>
                    { for ["active", "deprecated", "retired"].iter().map(|s| html! { <option value={*s} selected={*status == *s}>{ *s }</option> }) }
                </select>
                <label>{ "Sunset" }<input id="ret-sunset" placeholder="2027-01-31" value={(*sunset).clone()} oninput={on_text(setter(&sunset))} /></label>
                <select id="ret-replacement" onchange={on_select(setter(&replacement))}>
                    <option value="" selected={replacement.is_empty()}>{ "(replacement)" }</option>
                    { for others.iter().map(|n| html! { <option value={n.clone()} selected={*replacement == *n}>{ n }</option> }) }
                </select>
                <button id="ret-apply" title={refused_admin.clone()} onclick={apply(false)} disabled={refused_admin.is_some()}>{ "Apply" }</button>
            </div>
            if let Some(m) = &*done { <p class="note ok" id="ret-result">{ m }</p> }
            if let Some(e) = &*refused {
                <div id="ret-refused">
                    <ErrorBox error={e.clone()} />
                    // Retiring something still used, or bringing a retired endpoint back, is
                    // refused first; the user confirms it here, having read what breaks.
                    <button class="danger" id="ret-force" onclick={apply(true)}>{ format!("{} anyway", if *status == "retired" { "Retire" } else { "Apply" }) }</button>
                </div>
            }
            { match &*used {
                Some(Ok(u)) => html! {
                    <div id="ret-used-by">
                        <h3>{ format!("Still used by ({})", u.subject) }</h3>
                        if u.references().is_empty() { <p class="muted">{ "Nothing refers to it." }</p> }
                        <ul>{ for u.references().iter().map(|r| html! { <li>{ r }</li> }) }</ul>
                        <p class="muted">{ format!("Calls in the last 7 days: {}; 30 days: {}",
                            u.calls_7d.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", "),
                            u.calls_30d.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")) }</p>
                    </div>
                },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                None => html! {},
            } }
        </section>
    }
}
