//! The Usage page's settings, as `milc prices`, `milc alerts settings` and `milc retention` set
//! them (core validates both alike): an endpoint's dated prices and the recomputation of a range
//! of calls (previewed before it is applied), when alerts fire, how long bodies are kept, and
//! where calls go as OpenTelemetry spans (`milc otel`).

use milc_api::otel::{OtelChange, OtelStatus};
use milc_api::usage::{AlertSettings, PriceEntry, Recomputation};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, TokenChange};
use yew::prelude::*;

use crate::components::{local_time, on_select, on_text, setter, ErrorBox};
use crate::hooks::{use_app, use_focus, use_refusal};
use crate::ipc;

#[derive(Properties, PartialEq)]
pub struct SettingsProps {
    /// Costs changed (a recomputation was applied): the charts read again.
    pub on_recomputed: Callback<()>,
}

#[function_component]
pub fn UsageSettings(p: &SettingsProps) -> Html {
    html! {
        <div class="usage-settings">
            <Prices on_recomputed={p.on_recomputed.clone()} />
            <div class="usage-settings-side">
                <Thresholds />
                <Retention />
                <Otel />
            </div>
        </div>
    }
}

fn usd(p: milc_api::PricePerMillion) -> String {
    format!("${p}")
}

#[function_component]
fn Prices(p: &SettingsProps) -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let app = use_app();
    let endpoint = use_state(String::new);
    let list = use_state(|| None::<Result<Vec<PriceEntry>, CallError>>);
    let (from, input, cached, output) = (
        use_state(|| "now".to_owned()),
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
    );
    let (since, until) = (use_state(String::new), use_state(String::new));
    let preview = use_state(|| None::<Result<Recomputation, CallError>>);
    let applied = use_state(|| None::<Result<Recomputation, CallError>>);
    // The first endpoint until one is chosen.
    let current = if endpoint.is_empty() {
        app.endpoints
            .first()
            .map(|e| e.spec.name.clone())
            .unwrap_or_default()
    } else {
        (*endpoint).clone()
    };
    let focus = use_focus();
    {
        let list = list.clone();
        use_effect_with((current.clone(), focus), move |(name, _)| {
            let name = name.clone();
            if !name.is_empty() {
                yew::platform::spawn_local(async move {
                    list.set(Some(ipc::call(cmd::PricesList { endpoint: name }).await));
                });
            }
        });
    }
    let add = {
        let (list, from, input, cached, output, preview) = (
            list.clone(),
            from.clone(),
            input.clone(),
            cached.clone(),
            output.clone(),
            preview.clone(),
        );
        let current = current.clone();
        Callback::from(move |_: MouseEvent| {
            let set = cmd::PricesSet {
                endpoint: current.clone(),
                from: (*from).clone(),
                input: (*input).clone(),
                cached: (*cached).clone(),
                output: (*output).clone(),
            };
            let (list, preview) = (list.clone(), preview.clone());
            yew::platform::spawn_local(async move {
                list.set(Some(ipc::call(set).await));
                // A new price changes what a recomputation would do.
                preview.set(None);
            });
        })
    };
    let recompute = |apply: bool| {
        let (since, until, preview, applied) = (
            since.clone(),
            until.clone(),
            preview.clone(),
            applied.clone(),
        );
        let on_recomputed = p.on_recomputed.clone();
        Callback::from(move |_: MouseEvent| {
            let ask = cmd::PricesRecompute {
                since: (*since).clone(),
                until: (*until).clone(),
                apply,
            };
            let (preview, applied, on_recomputed) =
                (preview.clone(), applied.clone(), on_recomputed.clone());
            yew::platform::spawn_local(async move {
                let r = ipc::call(ask).await;
                if apply {
                    if r.is_ok() {
                        preview.set(None);
                        on_recomputed.emit(());
                    }
                    applied.set(Some(r));
                } else {
                    applied.set(None);
                    preview.set(Some(r));
                }
            });
        })
    };
    let timeline = match &*list {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="price-error" /> },
        Some(Ok(l)) => html! {
            <table class="grid compact" id="price-timeline">
                <thead><tr><th>{ "From" }</th><th class="num">{ "Input" }</th><th class="num">{ "Cached" }</th><th class="num">{ "Output" }</th></tr></thead>
                <tbody>
                    { for l.iter().map(|e| html! {
                        <tr>
                            <td class="mono small">{ e.from_ms.map_or("the beginning (base price)".to_owned(), local_time) }</td>
                            <td class="num mono">{ usd(e.prices.input) }</td>
                            <td class="num mono">{ e.prices.cached_input.map_or("= input".to_owned(), usd) }</td>
                            <td class="num mono">{ usd(e.prices.output) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <section class="panel" id="usage-prices">
            <h2>{ "Prices (USD per 1M tokens, dated)" }</h2>
            <div class="row">
                <select id="price-endpoint" onchange={on_select(setter(&endpoint))}>
                    { for app.endpoints.iter().map(|e| html! { <option value={e.spec.name.clone()} selected={current == e.spec.name}>{ &e.spec.name }</option> }) }
                </select>
            </div>
            { timeline }
            <div class="filters">
                <label>{ "From (date, RFC 3339 or now)" }<input class="narrow" id="price-from" value={(*from).clone()} oninput={on_text(setter(&from))} /></label>
                <label>{ "Input" }<input class="narrow" id="price-in" placeholder="0.15" value={(*input).clone()} oninput={on_text(setter(&input))} /></label>
                <label>{ "Cached (empty: input)" }<input class="narrow" id="price-cached" value={(*cached).clone()} oninput={on_text(setter(&cached))} /></label>
                <label>{ "Output" }<input class="narrow" id="price-out" placeholder="0.60" value={(*output).clone()} oninput={on_text(setter(&output))} /></label>
                <button class="small" id="price-add" title={refused_admin.clone()} onclick={add} disabled={current.is_empty() || refused_admin.is_some()}>{ "Add price" }</button>
            </div>
            <p class="small muted">{ "Past calls keep the cost they were logged with until they are recomputed with the prices in force when each was made." }</p>
            <div class="filters">
                <label>{ "Recompute since (30d, date; empty: every call)" }<input class="narrow" id="recompute-since" value={(*since).clone()} oninput={on_text(setter(&since))} /></label>
                <label>{ "until (empty: now)" }<input class="narrow" id="recompute-until" value={(*until).clone()} oninput={on_text(setter(&until))} /></label>
                <button class="small" id="recompute-preview" onclick={recompute(false)}>{ "Preview" }</button>
                <button class="small primary" id="recompute-apply" title={refused_admin.clone()} onclick={recompute(true)}
                    disabled={!matches!(&*preview, Some(Ok(r)) if r.calls_changed > 0) || refused_admin.is_some()}>{ "Apply" }</button>
            </div>
            { match &*preview {
                Some(Ok(r)) => html! { <div class="note" id="recompute-preview-text">{ format!("Preview: {r}") }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="recompute-error" /> },
                None => html! {},
            } }
            { match &*applied {
                Some(Ok(r)) => html! { <div class="note ok" id="recompute-done">{ format!("Recomputed: {r}") }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="recompute-error" /> },
                None => html! {},
            } }
        </section>
    }
}

#[function_component]
fn Thresholds() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let (spike, rate, min_calls) = (
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
    );
    let outcome = use_state(|| None::<Result<AlertSettings, CallError>>);
    let show = {
        let (spike, rate, min_calls) = (spike.clone(), rate.clone(), min_calls.clone());
        move |s: &AlertSettings| {
            spike.set(s.spike_factor.to_string());
            rate.set(s.error_rate.to_string());
            min_calls.set(s.min_calls.to_string());
        }
    };
    {
        let show = show.clone();
        use_effect_with((), move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(s) = ipc::call(cmd::AlertSettingsGet {}).await {
                    show(&s);
                }
            });
        });
    }
    let save = {
        let (spike, rate, min_calls, outcome) = (
            spike.clone(),
            rate.clone(),
            min_calls.clone(),
            outcome.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let number = |field: &str, v: &str| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| CallError::config(format!("{field}: a number")))
            };
            let settings = (|| {
                Ok(AlertSettings {
                    spike_factor: number("spike_factor", &spike)?,
                    error_rate: number("error_rate", &rate)?,
                    min_calls: min_calls
                        .trim()
                        .parse()
                        .map_err(|_| CallError::config("min_calls: a whole number"))?,
                })
            })();
            let (outcome, show) = (outcome.clone(), show.clone());
            yew::platform::spawn_local(async move {
                let r = match settings {
                    Ok(settings) => ipc::call(cmd::AlertSettingsSet { settings }).await,
                    Err(e) => Err(e),
                };
                if let Ok(s) = &r {
                    show(s);
                }
                outcome.set(Some(r));
            });
        })
    };
    html! {
        <section class="panel" id="usage-thresholds">
            <h2>{ "When alerts fire" }</h2>
            <div class="filters">
                <label title="Cost per 1K tokens in this and the previous UTC hour above the 7-day baseline × this">{ "Spike factor (> 1)" }
                    <input class="narrow" id="alert-spike" value={(*spike).clone()} oninput={on_text(setter(&spike))} /></label>
                <label title="Share of failed calls in this and the previous UTC hour">{ "Error rate (0–1)" }
                    <input class="narrow" id="alert-error-rate" value={(*rate).clone()} oninput={on_text(setter(&rate))} /></label>
                <label title="Calls those two hours need before a spike or an error rate counts">{ "Minimum calls" }
                    <input class="narrow" id="alert-min-calls" value={(*min_calls).clone()} oninput={on_text(setter(&min_calls))} /></label>
                <button class="small" id="alert-save" title={refused_admin.clone()} onclick={save} disabled={refused_admin.is_some()}>{ "Save" }</button>
            </div>
            { match &*outcome {
                Some(Ok(_)) => html! { <div class="small ok" id="alert-saved">{ "Saved." }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="alert-error" /> },
                None => html! {},
            } }
        </section>
    }
}

#[function_component]
fn Retention() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let days = use_state(String::new);
    let outcome = use_state(|| None::<Result<String, CallError>>);
    {
        let days = days.clone();
        use_effect_with((), move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(d) = ipc::call(cmd::RetentionGet {}).await {
                    days.set(d.map(|d| d.to_string()).unwrap_or_default());
                }
            });
        });
    }
    let save = {
        let (days, outcome) = (days.clone(), outcome.clone());
        Callback::from(move |_: MouseEvent| {
            let parsed = match days.trim() {
                "" => Ok(None),
                d => d.parse::<u32>().map(Some).map_err(|_| {
                    CallError::config(
                        "days: a whole number of days, or empty to keep bodies for ever",
                    )
                }),
            };
            let outcome = outcome.clone();
            yew::platform::spawn_local(async move {
                let r = match parsed {
                    Ok(days) => ipc::call(cmd::RetentionSet { days }).await.map(|(b, h)| {
                        format!("Saved: {b} call bodies and {h} history entries emptied now.")
                    }),
                    Err(e) => Err(e),
                };
                outcome.set(Some(r));
            });
        })
    };
    html! {
        <section class="panel" id="usage-retention">
            <h2>{ "Body retention" }</h2>
            <div class="filters">
                <label>{ "Keep request and response bodies (days; empty: for ever)" }
                    <input class="narrow" id="retention-days" value={(*days).clone()} oninput={on_text(setter(&days))} /></label>
                <button class="small" id="retention-save" title={refused_admin.clone()} onclick={save} disabled={refused_admin.is_some()}>{ "Save" }</button>
            </div>
            <p class="small muted">{ "Calls, figures and rollups stay; only the kept bodies and Playground history texts are emptied." }</p>
            { match &*outcome {
                Some(Ok(m)) => html! { <div class="small ok" id="retention-saved">{ m.clone() }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="retention-error" /> },
                None => html! {},
            } }
        </section>
    }
}

/// The headers field: `NAME=VALUE` replaces (the value goes to the keyring), a `NAME` alone
/// keeps the value stored for it; a stored header left out is removed.
fn otel_change(endpoint: &str, headers: &str) -> Result<OtelChange, CallError> {
    let mut change = OtelChange {
        endpoint: endpoint.trim().to_owned(),
        headers: Default::default(),
    };
    for (n, line) in headers
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (name, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), TokenChange::Replace(v.trim().to_owned())),
            None => (line.trim(), TokenChange::Keep),
        };
        if name.is_empty() {
            return Err(CallError::config(format!(
                "headers: line {} should read NAME=VALUE or NAME",
                n + 1
            )));
        }
        change.headers.insert(name.to_owned(), value);
    }
    Ok(change)
}

/// Where this database's calls go as OpenTelemetry spans, and what the export has done.
#[function_component]
fn Otel() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let endpoint = use_state(String::new);
    let headers = use_state(String::new);
    let status = use_state(|| None::<OtelStatus>);
    let error = use_state(|| None::<CallError>);
    let reload = {
        let (endpoint, headers, status) = (endpoint.clone(), headers.clone(), status.clone());
        move || {
            let (endpoint, headers, status) = (endpoint.clone(), headers.clone(), status.clone());
            yew::platform::spawn_local(async move {
                if let Ok(s) = ipc::call(cmd::OtelStatusGet {}).await {
                    if let Some(set) = &s.settings {
                        endpoint.set(set.endpoint.clone());
                        headers.set(set.headers.iter().map(|h| format!("{h}\n")).collect());
                    }
                    status.set(Some(s));
                }
            });
        }
    };
    {
        let reload = reload.clone();
        use_effect_with((), move |_| reload());
    }
    let save = {
        let (endpoint, headers, error, reload) = (
            endpoint.clone(),
            headers.clone(),
            error.clone(),
            reload.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let change = otel_change(&endpoint, &headers);
            let (error, reload) = (error.clone(), reload.clone());
            yew::platform::spawn_local(async move {
                let r = match change {
                    Ok(change) => ipc::call(cmd::OtelSet { change }).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                error.set(r.err());
                reload();
            });
        })
    };
    let clear = {
        let (endpoint, headers, error, reload) = (
            endpoint.clone(),
            headers.clone(),
            error.clone(),
            reload.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (endpoint, headers, error, reload) = (
                endpoint.clone(),
                headers.clone(),
                error.clone(),
                reload.clone(),
            );
            yew::platform::spawn_local(async move {
                let r = ipc::call(cmd::OtelClear {}).await;
                if r.is_ok() {
                    endpoint.set(String::new());
                    headers.set(String::new());
                }
                error.set(r.err());
                reload();
            });
        })
    };
    let refresh = {
        let reload = reload.clone();
        Callback::from(move |_: MouseEvent| reload())
    };
    html! {
        <section class="panel" id="usage-otel">
            <h2>{ "OpenTelemetry export" }</h2>
            <div class="filters">
                <label>{ "Collector (OTLP over HTTP)" }
                    <input id="otel-endpoint" placeholder="http://localhost:4318" value={(*endpoint).clone()} oninput={on_text(setter(&endpoint))} /></label>
                <label>{ "Headers (NAME=VALUE; a NAME alone keeps its stored value)" }
                    <textarea id="otel-headers" rows="2" placeholder="authorization=Bearer …" value={(*headers).clone()} oninput={on_text(setter(&headers))} /></label>
            </div>
            <div class="row">
                <button class="small" id="otel-save" title={refused_admin.clone()} onclick={save} disabled={refused_admin.is_some()}>{ "Save" }</button>
                <button class="small ghost" id="otel-clear" title={refused_admin.clone()} onclick={clear} disabled={refused_admin.is_some()}>{ "Turn off" }</button>
                <button class="small ghost" id="otel-refresh" onclick={refresh}>{ "Refresh" }</button>
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="otel-error" /> }
            <p class="small muted" id="otel-status">{ match &*status {
                None => String::new(),
                Some(s) => match &s.settings {
                    None => "Off: calls are not exported.".to_owned(),
                    Some(set) => format!(
                        "{} {} · {} spans exported · {} dropped (this window){}",
                        if s.active { "Exporting to" } else { "Set, not active:" },
                        set.traces_url,
                        s.exported,
                        s.dropped,
                        s.last_error.as_ref().map(|e| format!(" · last error: {e}")).unwrap_or_default()
                    ),
                },
            } }</p>
            <p class="small muted">{ "Every logged call becomes a span (GenAI conventions); header values stay in the OS keyring; a collector that is down costs a counted drop, never a call." }</p>
        </section>
    }
}
