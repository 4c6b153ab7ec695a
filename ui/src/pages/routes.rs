//! Routes: the gateway's routes and arms with weight sliders, live figures per arm (refreshed
//! every 2 s) and their charts, the canary's verdict with its evidence, Rollback and Promote;
//! the gateway keys; and a gateway started and stopped from the window.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use milc_api::gateway::{CanaryStatus, GatewayKey, NewGatewayKey, Route};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, UsageSource};
use yew::prelude::*;

use crate::components::chart::{Chart, Kind};
use crate::components::{local_time, on_text, ErrorBox};
use crate::hooks::{use_ipc_with, use_refusal, Reply};
use crate::ipc;

/// How often live figures are read again.
const REFRESH: Duration = Duration::from_secs(2);
/// Points each live chart keeps.
const HISTORY: usize = 60;

/// A counter that goes up every `REFRESH` while the page is shown.
#[hook]
fn use_tick() -> u32 {
    let tick = use_state(|| 0u32);
    {
        let tick = tick.clone();
        use_effect_with((), move |_| {
            let alive = Rc::new(std::cell::Cell::new(true));
            let still = alive.clone();
            yew::platform::spawn_local(async move {
                let mut n = 0;
                while still.get() {
                    yew::platform::time::sleep(REFRESH).await;
                    n += 1;
                    tick.set(n);
                }
            });
            move || alive.set(false)
        });
    }
    *tick
}

#[function_component]
pub fn Routes() -> Html {
    let rev = use_state(|| 0u32);
    let tick = use_tick();
    let routes = use_ipc_with(cmd::RoutesList {}, (*rev, tick));
    let changed = {
        let rev = rev.clone();
        Callback::from(move |()| rev.set(*rev + 1))
    };
    let body = match &*routes {
        None => html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(list)) if list.is_empty() => html! {
            <p class="muted" id="routes-empty">
                { "No routes yet. Write a route file and load it: " }
                <code>{ "milc routes load routes.toml" }</code>
                { " (or " }<code>{ "milc gateway --config routes.toml" }</code>{ "); the README shows its format." }
            </p>
        },
        Some(Ok(list)) => html! {
            <>{ for list.iter().map(|r| html! {
                <RouteCard key={r.spec.model.clone()} route={r.clone()} {tick} changed={changed.clone()} />
            }) }</>
        },
    };
    html! {
        <div class="page routes">
            <header class="page-head">
                <h1>{ "Routes" }</h1>
                <span class="muted">{ "live traffic through the gateway: arms, weights, canaries" }</span>
            </header>
            <GatewayControl />
            { body }
            <Keys />
        </div>
    }
}

#[function_component]
fn GatewayControl() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let rev = use_state(|| 0u32);
    let state = use_ipc_with(cmd::GatewayState {}, *rev);
    let listen = use_state(|| "127.0.0.1:8090".to_owned());
    let error = use_state(|| None::<CallError>);
    let act = |start: bool| {
        let (rev, listen, error) = (rev.clone(), listen.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            let (rev, listen, error) = (rev.clone(), (*listen).clone(), error.clone());
            yew::platform::spawn_local(async move {
                let r = if start {
                    ipc::call(cmd::GatewayStart { listen }).await.map(|_| ())
                } else {
                    ipc::call(cmd::GatewayStop {}).await
                };
                error.set(r.err());
                rev.set(*rev + 1);
            });
        })
    };
    let running = match &*state {
        Some(Ok(Some(info))) => Some(info.base_url.clone()),
        _ => None,
    };
    html! {
        <section class="panel gateway-control">
            <h2>{ "Local gateway" }</h2>
            <div class="row">
                if let Some(url) = running {
                    <span class="badge ok">{ "running" }</span>
                    <code id="gateway-url">{ url }</code>
                    <span class="muted">{ "point an OpenAI SDK's base_url here, with a gateway key" }</span>
                    <button id="gateway-stop" onclick={act(false)}>{ "Stop" }</button>
                } else {
                    <label>{ "Listen on " }
                        <input id="gateway-listen" value={(*listen).clone()}
                            oninput={on_text({ let l = listen.clone(); move |v| l.set(v) })} />
                    </label>
                    <button id="gateway-start" title={refused_admin.clone()} class="primary" onclick={act(true)} disabled={refused_admin.is_some()}>{ "Start gateway" }</button>
                }
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct CardProps {
    route: Route,
    tick: u32,
    changed: Callback<()>,
}

/// One look at a route's arms: (time label, p95 ms per arm, error rate per arm).
type Point = (String, Vec<f64>, Vec<f64>);

#[function_component]
fn RouteCard(p: &CardProps) -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let model = p.route.spec.model.clone();
    let status: Reply<cmd::CanaryStatusGet> = use_ipc_with(
        cmd::CanaryStatusGet {
            route: model.clone(),
        },
        (p.tick, p.route.clone()),
    );
    let history = use_mut_ref(Vec::<Point>::new);
    let error = use_state(|| None::<CallError>);
    {
        let history = history.clone();
        use_effect_with((*status).clone(), move |st| {
            if let Some(Ok(st)) = st {
                record(&history, st);
            }
        });
    }
    let id = slug(&model);
    let set_weight = |arm: String| {
        let (model, changed, error) = (model.clone(), p.changed.clone(), error.clone());
        Callback::from(move |e: Event| {
            use wasm_bindgen::JsCast;
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let weight: f64 = input.value().parse().unwrap_or(0.0);
            let (route, arm, changed, error) =
                (model.clone(), arm.clone(), changed.clone(), error.clone());
            yew::platform::spawn_local(async move {
                let r = ipc::call(cmd::RoutesSetWeight { route, arm, weight }).await;
                error.set(r.err());
                changed.emit(());
            });
        })
    };
    let decide = |promote: bool| {
        let (model, changed, error) = (model.clone(), p.changed.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            let (route, changed, error) = (model.clone(), changed.clone(), error.clone());
            let reason = "from the window".to_owned();
            yew::platform::spawn_local(async move {
                let r = if promote {
                    ipc::call(cmd::RoutesPromote { route, reason }).await
                } else {
                    ipc::call(cmd::RoutesRollback { route, reason }).await
                };
                error.set(r.err());
                changed.emit(());
            });
        })
    };
    let r = &p.route;
    let total: f64 = r.spec.arms.iter().map(|a| a.weight).sum();
    let canary = r.spec.canary.as_ref();
    let figures = match &*status {
        Some(Ok(st)) => Some(st),
        _ => None,
    };
    let arm_row = |a: &milc_api::gateway::ArmSpec| {
        let f = figures.and_then(|st| st.arms.iter().find(|x| x.arm == a.name));
        let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0}"));
        let role = canary.map_or("", |c| {
            if c.candidate == a.name {
                "candidate"
            } else if c.baseline == a.name {
                "baseline"
            } else {
                ""
            }
        });
        html! {
            <tr key={a.name.clone()}>
                <td><strong>{ &a.name }</strong>{ " " }<span class="muted">{ role }</span></td>
                <td>{ &a.endpoint }{ a.prompt.as_ref().map(|p| format!(" · {p}")).unwrap_or_default() }</td>
                <td class="weight">
                    <input type="range" min="0" max="100" step="1" id={format!("weight-{id}-{}", slug(&a.name))}
                        aria-label={format!("weight of {}", a.name)}
                        value={format!("{}", a.weight)} onchange={set_weight(a.name.clone())}
                        disabled={refused_admin.is_some()} title={refused_admin.clone()} />
                    <span class="num">{ format!("{} · {:.0} %", a.weight, if total > 0.0 { 100.0 * a.weight / total } else { 0.0 }) }</span>
                </td>
                <td class="num" id={format!("calls-{id}-{}", slug(&a.name))}>{ f.map_or("—".into(), |f| f.calls.to_string()) }</td>
                <td class="num">{ f.map_or("—".into(), |f| format!("{:.1} %", 100.0 * f.error_rate)) }</td>
                <td class="num">{ ms(f.and_then(|f| f.p50_ms)) }</td>
                <td class="num">{ ms(f.and_then(|f| f.p95_ms)) }</td>
                <td class="num">{ ms(f.and_then(|f| f.ttft_p50_ms)) }</td>
                <td class="num">{ ms(f.and_then(|f| f.ttft_p95_ms)) }</td>
                <td class="num">{ f.and_then(|f| f.cost_per_call).map_or("—".into(), |c| format!("${}{}", c.usd(), if c.source == UsageSource::Estimated { " est." } else { "" })) }</td>
                <td class="num">{ f.and_then(|f| f.feedback_mean.map(|m| format!("{m:.2} ({})", f.feedback_n))).unwrap_or_else(|| "—".into()) }</td>
            </tr>
        }
    };
    let points = history.borrow();
    let labels: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    let names: Vec<String> = r.spec.arms.iter().map(|a| a.name.clone()).collect();
    let series = |pick: fn(&Point) -> &Vec<f64>| -> Vec<(String, Vec<f64>)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.clone(),
                    points
                        .iter()
                        .map(|p| pick(p).get(i).copied().unwrap_or(0.0))
                        .collect(),
                )
            })
            .collect()
    };
    html! {
        <section class="panel route" id={format!("route-{id}")}>
            <header class="row">
                <h2>{ &model }</h2>
                if let Some(s) = &r.spec.sticky { <span class="muted">{ format!("sticky by {s}") }</span> }
                if let (Some(c), Some(state)) = (canary, r.canary_state) {
                    <span class={classes!("badge", match state.as_str() { "rolled_back" => "danger", "promoted" => "ok", _ => "" })}
                        id={format!("canary-state-{id}")}>
                        { format!("canary {} vs {}: {}", c.candidate, c.baseline, state.as_str().replace('_', " ")) }
                    </span>
                    <span class="spacer" />
                    <button id={format!("rollback-{id}")} class="danger" onclick={decide(false)} disabled={refused_admin.is_some()} title={refused_admin.clone()}>{ "Rollback" }</button>
                    <button id={format!("promote-{id}")} onclick={decide(true)} disabled={refused_admin.is_some()} title={refused_admin.clone()}>{ "Promote" }</button>
                }
            </header>
            <table class="grid" id={format!("arms-{id}")}>
                <thead><tr>
                    <th>{ "Arm" }</th><th>{ "Endpoint · prompt" }</th><th>{ "Weight" }</th>
                    <th class="num">{ "Calls" }</th><th class="num">{ "Errors" }</th>
                    <th class="num">{ "p50 ms" }</th><th class="num">{ "p95 ms" }</th>
                    <th class="num">{ "TTFT p50" }</th><th class="num">{ "TTFT p95" }</th>
                    <th class="num">{ "Cost / call" }</th><th class="num">{ "Feedback" }</th>
                </tr></thead>
                <tbody>{ for r.spec.arms.iter().map(arm_row) }</tbody>
            </table>
            if labels.len() > 1 {
                <div class="charts two">
                    <div><h3>{ "p95 latency" }</h3>
                        <Chart id={format!("chart-p95-{id}")} kind={Kind::Lines} labels={labels.clone()} series={series(|p| &p.1)} unit="ms" height={140} /></div>
                    <div><h3>{ "Error rate" }</h3>
                        <Chart id={format!("chart-errors-{id}")} kind={Kind::Lines} labels={labels.clone()} series={series(|p| &p.2)} unit="%" height={140} /></div>
                </div>
            }
            if let Some(st) = figures { { verdict(st, &id) } }
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
            if let Some(Err(e)) = &*status { <ErrorBox error={e.clone()} /> }
        </section>
    }
}

/// Adds a look to the chart history (the newest `HISTORY` are kept).
fn record(history: &Rc<RefCell<Vec<Point>>>, st: &CanaryStatus) {
    let p95: Vec<f64> = st.arms.iter().map(|a| a.p95_ms.unwrap_or(0.0)).collect();
    let err: Vec<f64> = st.arms.iter().map(|a| a.error_rate).collect();
    let label: String = js_sys::Date::new_0().to_locale_time_string("en-GB").into();
    let mut h = history.borrow_mut();
    h.push((label, p95, err));
    if h.len() > HISTORY {
        h.remove(0);
    }
}

fn verdict(st: &CanaryStatus, id: &str) -> Html {
    let Some(v) = &st.verdict else {
        return html! {};
    };
    html! {
        <div class="verdict" id={format!("verdict-{id}")}>
            <p>
                <span class={classes!("badge", match v.decision.as_str() { "rollback" | "split_broken" => "danger", "promote" => "ok", _ => "" })}>
                    { v.decision.as_str().replace('_', " ") }
                </span>
                { " " }{ &v.reason }
            </p>
            <table class="grid compact">
                <thead><tr><th>{ "Guardrail" }</th><th class="num">{ "Baseline" }</th><th class="num">{ "Candidate" }</th>
                    <th class="num">{ "Limit" }</th><th class="num">{ "Always-valid p" }</th><th>{ "" }</th></tr></thead>
                <tbody>
                    { for v.guardrails.iter().map(|e| html! {
                        <tr>
                            <td>{ e.metric.replace('_', " ") }</td>
                            <td class="num">{ format!("{:.4}", e.baseline) }</td>
                            <td class="num">{ format!("{:.4}", e.candidate) }</td>
                            <td class="num">{ format!("{:.4}", e.limit) }</td>
                            <td class="num">{ format!("{:.4}", e.p) }</td>
                            <td>if e.breached { <span class="badge danger">{ "breached" }</span> }</td>
                        </tr>
                    }) }
                    <tr>
                        <td>{ "split (χ²)" }</td>
                        <td colspan="3" class="num">{ format!("χ² {:.2}", v.srm.chi2) }</td>
                        <td class="num">{ format!("{:.4}", v.srm.p) }</td>
                        <td>if v.srm.flagged { <span class="badge danger">{ "broken" }</span> }</td>
                    </tr>
                    if let Some(q) = &v.quality {
                        <tr>
                            <td>{ "feedback" }</td>
                            <td class="num">{ format!("{:.3} ({})", q.baseline, q.n_baseline) }</td>
                            <td class="num">{ format!("{:.3} ({})", q.candidate, q.n_candidate) }</td>
                            <td colspan="3" class="num">{ format!("difference {:+.3} [{:+.3}, {:+.3}]", q.diff, q.lo, q.hi) }</td>
                        </tr>
                    }
                </tbody>
            </table>
            if !st.events.is_empty() {
                <ul class="events" id={format!("events-{id}")}>
                    { for st.events.iter().take(8).map(|e| html! {
                        <li><span class="mono">{ local_time(e.at_ms) }</span>{ format!(" {} by {}: {}", e.kind, e.actor, e.reason) }</li>
                    }) }
                </ul>
            }
        </div>
    }
}

#[function_component]
fn Keys() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let rev = use_state(|| 0u32);
    let keys = use_ipc_with(cmd::GatewayKeysList {}, *rev);
    let name = use_state(String::new);
    let rate = use_state(String::new);
    let budget = use_state(String::new);
    let created = use_state(|| None::<Result<NewGatewayKey, CallError>>);
    let create = {
        let (name, rate, budget, created, rev) = (
            name.clone(),
            rate.clone(),
            budget.clone(),
            created.clone(),
            rev.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let rate_per_min = match rate.trim() {
                "" => None,
                r => match r.parse::<u32>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        created.set(Some(Err(CallError::config(
                            "rate: a whole number of requests per minute",
                        ))));
                        return;
                    }
                },
            };
            let c = cmd::GatewayKeysCreate {
                name: (*name).clone(),
                rate_per_min,
                daily_budget: Some((*budget).clone()),
            };
            let (created, rev) = (created.clone(), rev.clone());
            yew::platform::spawn_local(async move {
                created.set(Some(ipc::call(c).await));
                rev.set(*rev + 1);
            });
        })
    };
    let revoke = |n: String| {
        let rev = rev.clone();
        Callback::from(move |_: MouseEvent| {
            let (name, rev) = (n.clone(), rev.clone());
            yew::platform::spawn_local(async move {
                let _ = ipc::call(cmd::GatewayKeysRevoke { name }).await;
                rev.set(*rev + 1);
            });
        })
    };
    let row = |k: &GatewayKey| {
        html! {
            <tr key={k.id}>
                <td>{ &k.name }</td>
                <td class="mono">{ format!("{}…", k.prefix) }</td>
                <td class="num">{ k.rate_per_min.map_or("—".into(), |r| r.to_string()) }</td>
                <td class="num">{ k.daily_budget.map_or("—".into(), |c| format!("${}", c.usd())) }</td>
                <td>{ if k.revoked_ms.is_some() { html! { <span class="badge danger">{ "revoked" }</span> } } else { html! { <span class="badge ok">{ "active" }</span> } } }</td>
                <td>if k.revoked_ms.is_none() { <button onclick={revoke(k.name.clone())} disabled={refused_admin.is_some()} title={refused_admin.clone()}>{ "Revoke" }</button> }</td>
            </tr>
        }
    };
    html! {
        <section class="panel keys">
            <h2>{ "Gateway keys" }</h2>
            <form class="row" onsubmit={create}>
                <input id="key-name" placeholder="name" value={(*name).clone()} oninput={on_text({ let s = name.clone(); move |v| s.set(v) })} />
                <input id="key-rate" placeholder="requests/min" value={(*rate).clone()} oninput={on_text({ let s = rate.clone(); move |v| s.set(v) })} />
                <input id="key-budget" placeholder="daily budget, USD" value={(*budget).clone()} oninput={on_text({ let s = budget.clone(); move |v| s.set(v) })} />
                <button id="key-create" title={refused_admin.clone()} type="submit" disabled={refused_admin.is_some()}>{ "Create key" }</button>
            </form>
            { match &*created {
                Some(Ok(k)) => html! {
                    <p class="notice" id="key-secret">
                        { format!("Key '{}': ", k.key.name) }<code>{ &k.secret }</code>
                        <span class="muted">{ " — shown this once; only its hash is kept." }</span>
                    </p>
                },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                None => html! {},
            } }
            { match &*keys {
                Some(Ok(list)) if !list.is_empty() => html! {
                    <table class="grid compact" id="keys-table">
                        <thead><tr><th>{ "Name" }</th><th>{ "Key" }</th><th class="num">{ "Req/min" }</th><th class="num">{ "Daily budget" }</th><th>{ "Status" }</th><th /></tr></thead>
                        <tbody>{ for list.iter().map(row) }</tbody>
                    </table>
                },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                _ => html! {},
            } }
        </section>
    }
}

/// A name as an element id.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}
