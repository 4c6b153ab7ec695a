//! Usage: cost per hour or day stacked by endpoint, prompt version or source; tokens in and
//! out; calls and error rate; latency p50 / p95 — over 24 h, 7 d, 30 d or a custom range (UTC),
//! with a totals table, CSV export of what is shown, the calls behind a clicked bar, budgets and
//! the alerts list. Everything reads the hourly rollups, so it stays instant on a large log.

use std::collections::BTreeMap;

use milc_api::usage::{Budget, CallsQuery, Dim, UsageQuery, UsageReport, UsageRow};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, CallRecord, CallSource, UsageSource};
use yew::prelude::*;

use crate::components::chart::{Chart, Kind};
use crate::components::{date_ms, local_time, on_select, on_text, ErrorBox};
use crate::hooks::{use_app, use_focus, use_ipc_with, use_refusal};
use crate::ipc;
use crate::pages::usage_settings::UsageSettings;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR) * HOUR
}

fn utc(ms: i64, hours: bool) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let iso: String = d.to_iso_string().into();
    if hours {
        format!("{}h", &iso[11..13])
    } else {
        iso[5..10].to_owned()
    }
}

#[derive(Clone, PartialEq)]
struct View {
    range: String,
    from: String,
    to: String,
    dim: Dim,
}

impl View {
    /// `[since, until)` in whole UTC hours, and the time bucket.
    fn window(&self) -> Result<(i64, i64, Dim), CallError> {
        let end = hour_of(now_ms()) + HOUR;
        // Day charts show whole UTC days, today included (and read the daily rollups).
        let tomorrow = now_ms().div_euclid(DAY) * DAY + DAY;
        Ok(match self.range.as_str() {
            "24h" => (end - DAY, end, Dim::Hour),
            "30d" => (tomorrow - 30 * DAY, tomorrow, Dim::Day),
            "custom" => {
                let bad = |f: &str| CallError::config(format!("{f}: a date like 2026-11-01"));
                let since = date_ms(&self.from).ok_or_else(|| bad("from"))?;
                let until = date_ms(&self.to).ok_or_else(|| bad("to"))? + DAY;
                let bucket = if until - since <= 2 * DAY {
                    Dim::Hour
                } else {
                    Dim::Day
                };
                (since, until, bucket)
            }
            _ => (tomorrow - 7 * DAY, tomorrow, Dim::Day),
        })
    }
}

#[derive(Clone, PartialEq)]
struct Data {
    since: i64,
    until: i64,
    bucket: Dim,
    by_dim: UsageReport,
    by_time: UsageReport,
    totals: UsageReport,
}

fn group_name(r: &UsageRow, dim: Dim) -> String {
    match dim {
        Dim::Endpoint => r.endpoint.clone(),
        Dim::Prompt => r.prompt.clone(),
        _ => r.source.clone(),
    }
    .unwrap_or_default()
}

#[function_component]
pub fn Usage() -> Html {
    let focus = crate::hooks::use_focus();
    let view = use_state(|| View {
        range: "7d".into(),
        from: String::new(),
        to: String::new(),
        dim: Dim::Endpoint,
    });
    let rev = use_state(|| 0u32);
    let data = use_state(|| None::<Result<Data, CallError>>);
    let picked = use_state(|| None::<(String, Result<Vec<CallRecord>, CallError>)>);
    let exported = use_state(|| None::<Result<String, CallError>>);
    // Bumped when a budget is set: it may have fired an alert.
    let alerts_rev = use_state(|| 0u32);
    {
        let (data, picked) = (data.clone(), picked.clone());
        use_effect_with(((*view).clone(), *rev, focus), move |(v, _, _)| {
            let v = v.clone();
            picked.set(None);
            yew::platform::spawn_local(async move {
                let load = async {
                    let (since, until, bucket) = v.window()?;
                    let q = |group_by| cmd::UsageReport {
                        query: UsageQuery {
                            since_ms: since,
                            until_ms: until,
                            group_by,
                        },
                    };
                    Ok::<_, CallError>(Data {
                        since,
                        until,
                        bucket,
                        by_dim: ipc::call(q(vec![bucket, v.dim])).await?,
                        by_time: ipc::call(q(vec![bucket])).await?,
                        totals: ipc::call(q(vec![v.dim])).await?,
                    })
                };
                data.set(Some(load.await));
            });
        });
    }
    let set = |f: fn(&mut View, String)| {
        let view = view.clone();
        move |v: String| {
            let mut next = (*view).clone();
            f(&mut next, v);
            view.set(next);
        }
    };
    let range_button = |r: &str, label: &str| {
        let view = view.clone();
        let r = r.to_owned();
        let class = classes!("small", (view.range == r).then_some("active"));
        html! {
            <button {class} id={format!("usage-range-{r}")} onclick={Callback::from(move |_: MouseEvent| {
                let mut next = (*view).clone();
                next.range = r.clone();
                view.set(next);
            })}>{ label.to_owned() }</button>
        }
    };
    let body = match &*data {
        None => html! { <p class="muted">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="usage-error" /> },
        Some(Ok(d)) => {
            let step = if d.bucket == Dim::Hour { HOUR } else { DAY };
            let first = d.since.div_euclid(step) * step;
            let n = ((d.until - first + step - 1) / step).max(1) as usize;
            let buckets: Vec<i64> = (0..n).map(|i| first + i as i64 * step).collect();
            let labels: Vec<String> = buckets
                .iter()
                .map(|b| utc(*b, d.bucket == Dim::Hour))
                .collect();
            let index = |ms: Option<i64>| ms.and_then(|m| buckets.iter().position(|b| *b == m));
            // Cost stacked by the chosen dimension, biggest group first.
            let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in &d.by_dim.rows {
                if let Some(i) = index(r.bucket_ms) {
                    groups
                        .entry(group_name(r, view.dim))
                        .or_insert_with(|| vec![0.0; n])[i] += r.cost.pico_usd as f64 / 1e12;
                }
            }
            let mut stacked: Vec<(String, Vec<f64>)> = groups.into_iter().collect();
            stacked.sort_by(|a, b| b.1.iter().sum::<f64>().total_cmp(&a.1.iter().sum::<f64>()));
            let per_bucket = |f: &dyn Fn(&UsageRow) -> f64| {
                let mut v = vec![0.0; n];
                for r in &d.by_time.rows {
                    if let Some(i) = index(r.bucket_ms) {
                        v[i] = f(r);
                    }
                }
                v
            };
            let on_bar = {
                let (picked, names, buckets, dim) = (
                    picked.clone(),
                    stacked.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
                    buckets.clone(),
                    view.dim,
                );
                Callback::from(move |(bucket, series): (usize, usize)| {
                    let name = names[series].clone();
                    let since = buckets[bucket];
                    let q = CallsQuery {
                        since_ms: since,
                        until_ms: since + step,
                        endpoint: (dim == Dim::Endpoint).then(|| name.clone()),
                        prompt: (dim == Dim::Prompt).then(|| name.clone()),
                        source: (dim == Dim::Source)
                            .then(|| CallSource::parse(&name))
                            .flatten(),
                        outcome: None,
                        limit: 200,
                    };
                    let title = format!("{name} · {}", utc(since, step == HOUR));
                    let picked = picked.clone();
                    yew::platform::spawn_local(async move {
                        picked.set(Some((title, ipc::call(cmd::UsageCalls { query: q }).await)));
                    });
                })
            };
            let t = &d.totals.totals;
            let estimated = |r: &UsageRow| {
                if r.cost.source == UsageSource::Estimated {
                    html! { <span class="badge warn" title={format!("{} calls with estimated usage", r.estimated_calls)}>{ "estimated" }</span> }
                } else {
                    html! {}
                }
            };
            html! {
                <>
                    <div class="usage-charts">
                        <section class="panel">
                            <h2>{ format!("Cost per {} (USD, UTC) by {}", if d.bucket == Dim::Hour { "hour" } else { "day" }, view.dim.as_str()) }</h2>
                            <Chart id="usage-cost-chart" kind={Kind::Stacked} labels={labels.clone()} series={stacked} unit="$" on_bar={on_bar} height={200} />
                        </section>
                        <section class="panel">
                            <h2>{ "Tokens" }</h2>
                            <Chart id="usage-tokens-chart" kind={Kind::Lines} labels={labels.clone()} unit=""
                                series={vec![("in".to_owned(), per_bucket(&|r| r.prompt_tokens as f64)), ("out".to_owned(), per_bucket(&|r| r.completion_tokens as f64))]} />
                        </section>
                        <section class="panel">
                            <h2>{ "Calls" }</h2>
                            <Chart id="usage-calls-chart" kind={Kind::Stacked} labels={labels.clone()} unit=""
                                series={vec![("ok".to_owned(), per_bucket(&|r| (r.calls - r.errors) as f64)), ("errors".to_owned(), per_bucket(&|r| r.errors as f64))]} />
                        </section>
                        <section class="panel">
                            <h2>{ "Error rate" }</h2>
                            <Chart id="usage-errors-chart" kind={Kind::Lines} labels={labels.clone()} unit="%"
                                series={vec![("error rate".to_owned(), per_bucket(&|r| r.error_rate))]} />
                        </section>
                        <section class="panel">
                            <h2>{ "Latency" }</h2>
                            <Chart id="usage-latency-chart" kind={Kind::Lines} labels={labels} unit="ms"
                                series={vec![("p50".to_owned(), per_bucket(&|r| r.latency_p50_ms)), ("p95".to_owned(), per_bucket(&|r| r.latency_p95_ms))]} />
                        </section>
                    </div>
                    if let Some((title, calls)) = &*picked {
                        <section class="panel" id="usage-picked">
                            <h2>{ format!("Calls: {title}") }</h2>
                            { match calls {
                                Err(e) => html! { <ErrorBox error={e.clone()} /> },
                                Ok(calls) => html! {
                                    <table class="grid compact" id="usage-picked-calls">
                                        <thead><tr><th class="num">{ "Id" }</th><th>{ "When" }</th><th>{ "Endpoint" }</th><th>{ "Source" }</th><th>{ "Outcome" }</th><th class="num">{ "Latency" }</th><th class="num">{ "Tokens" }</th><th class="num">{ "Cost" }</th></tr></thead>
                                        <tbody>
                                            { for calls.iter().map(|c| html! {
                                                <tr>
                                                    <td class="num">{ c.id }</td>
                                                    <td class="mono small">{ local_time(c.call.at_ms) }</td>
                                                    <td>{ c.endpoint.clone().unwrap_or_default() }</td>
                                                    <td>{ c.call.source.as_str() }</td>
                                                    <td>{ c.call.outcome.as_str() }</td>
                                                    <td class="num">{ format!("{} ms", c.call.latency_ms) }</td>
                                                    <td class="num">{ c.call.usage.map(|u| format!("{}→{}", u.prompt_tokens, u.completion_tokens)).unwrap_or_default() }</td>
                                                    <td class="num mono">{ c.call.cost.map(|x| x.to_string()).unwrap_or_default() }</td>
                                                </tr>
                                            }) }
                                        </tbody>
                                    </table>
                                },
                            } }
                        </section>
                    }
                    <table class="grid" id="usage-totals">
                        <thead><tr><th>{ view.dim.as_str() }</th><th class="num">{ "Calls" }</th><th class="num">{ "Errors" }</th><th class="num">{ "Tokens in" }</th><th class="num">{ "Tokens out" }</th><th class="num">{ "Cost (USD)" }</th><th class="num">{ "p50" }</th><th class="num">{ "p95" }</th></tr></thead>
                        <tbody>
                            { for d.totals.rows.iter().map(|r| html! {
                                <tr>
                                    <td>{ group_name(r, view.dim) }</td>
                                    <td class="num">{ r.calls }</td><td class="num">{ r.errors }</td>
                                    <td class="num">{ r.prompt_tokens }</td><td class="num">{ r.completion_tokens }</td>
                                    <td class="num mono">{ r.cost.usd() }{ estimated(r) }</td>
                                    <td class="num">{ format!("{:.0} ms", r.latency_p50_ms) }</td><td class="num">{ format!("{:.0} ms", r.latency_p95_ms) }</td>
                                </tr>
                            }) }
                            <tr class="total" id="usage-total-row">
                                <td>{ "Total" }</td>
                                <td class="num" id="usage-total-calls">{ t.calls }</td><td class="num">{ t.errors }</td>
                                <td class="num">{ t.prompt_tokens }</td><td class="num">{ t.completion_tokens }</td>
                                <td class="num mono" id="usage-total-cost">{ t.cost.usd() }{ estimated(t) }</td>
                                <td class="num">{ format!("{:.0} ms", t.latency_p50_ms) }</td><td class="num">{ format!("{:.0} ms", t.latency_p95_ms) }</td>
                            </tr>
                        </tbody>
                    </table>
                </>
            }
        }
    };
    let export = {
        let (view, exported) = (view.clone(), exported.clone());
        Callback::from(move |_: MouseEvent| {
            let (v, exported) = ((*view).clone(), exported.clone());
            yew::platform::spawn_local(async move {
                let r = async {
                    let (since, until, bucket) = v.window()?;
                    let query = UsageQuery {
                        since_ms: since,
                        until_ms: until,
                        group_by: vec![bucket, v.dim],
                    };
                    ipc::call(cmd::UsageExport {
                        query,
                        kind: milc_api::export::Format::Shown,
                        path: String::new(),
                    })
                    .await
                };
                exported
                    .set(Some(r.await.map(|e| {
                        format!("{} rows written to {}", e.records, e.path)
                    })));
            });
        })
    };
    html! {
        <div class="page usage">
            <header class="page-head">
                <h1>{ "Usage" }</h1>
                <div class="row">
                    { range_button("24h", "24 h") }{ range_button("7d", "7 d") }{ range_button("30d", "30 d") }{ range_button("custom", "Custom") }
                    if view.range == "custom" {
                        <input class="narrow" id="usage-from" placeholder="2026-11-01" value={view.from.clone()} oninput={on_text(set(|v, x| v.from = x))} />
                        <input class="narrow" id="usage-to" placeholder="2026-11-30" value={view.to.clone()} oninput={on_text(set(|v, x| v.to = x))} />
                    }
                    <label class="inline">{ "Group by " }
                        <select id="usage-group" onchange={on_select(set(|v, x| v.dim = Dim::parse(&x).unwrap_or(Dim::Endpoint)))}>
                            { for [Dim::Endpoint, Dim::Prompt, Dim::Source].iter().map(|d| html! { <option value={d.as_str()} selected={view.dim == *d}>{ d.as_str() }</option> }) }
                        </select>
                    </label>
                    <button class="small" id="usage-refresh" onclick={{ let rev = rev.clone(); Callback::from(move |_: MouseEvent| rev.set(*rev + 1)) }}>{ "Refresh" }</button>
                    <button class="small" id="usage-export" onclick={export}>{ "Export CSV" }</button>
                </div>
            </header>
            { match &*exported {
                Some(Ok(m)) => html! { <div class="small ok" id="usage-exported">{ m }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                None => html! {},
            } }
            { body }
            <div class="usage-side">
                <Alerts rev={*alerts_rev} />
                <Budgets on_saved={{ let r = alerts_rev.clone(); Callback::from(move |()| r.set(*r + 1)) }} />
            </div>
            <UsageSettings on_recomputed={{ let rev = rev.clone(); Callback::from(move |()| rev.set(*rev + 1)) }} />
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct AlertsProps {
    rev: u32,
}

#[function_component]
fn Alerts(p: &AlertsProps) -> Html {
    let rev = use_state(|| 0u32);
    let list = use_ipc_with(cmd::AlertsList { limit: 50 }, (*rev, p.rev));
    let ack = |id: i64| {
        let rev = rev.clone();
        Callback::from(move |_: MouseEvent| {
            let rev = rev.clone();
            yew::platform::spawn_local(async move {
                let _ = ipc::call(cmd::AlertsAck { id }).await;
                rev.set(*rev + 1);
            });
        })
    };
    html! {
        <section class="panel" id="usage-alerts">
            <h2>{ "Alerts" }</h2>
            { match &*list {
                None => html! {},
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                Some(Ok(l)) if l.is_empty() => html! { <p class="muted small">{ "No alerts. Budgets crossed, cost spikes and error rates show up here and as desktop notifications." }</p> },
                Some(Ok(l)) => html! {
                    <table class="grid compact">
                        <tbody>
                            { for l.iter().map(|a| html! {
                                <tr class={classes!(a.acked_ms.is_none().then_some("unread"))}>
                                    <td class="mono small">{ local_time(a.fired_ms) }</td>
                                    <td><span class="badge warn">{ a.kind.as_str() }</span></td>
                                    <td>{ &a.message }</td>
                                    <td>{ if a.resolved_ms.is_some() { "resolved" } else { "open" } }</td>
                                    <td>
                                        if a.acked_ms.is_none() {
                                            <button class="small" id={format!("alert-ack-{}", a.id)} onclick={ack(a.id)}>{ "Acknowledge" }</button>
                                        }
                                    </td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                },
            } }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct BudgetsProps {
    on_saved: Callback<()>,
}

#[function_component]
fn Budgets(p: &BudgetsProps) -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let app = use_app();
    let list = use_state(Vec::<Budget>::new);
    let endpoint = use_state(String::new);
    let daily = use_state(String::new);
    let monthly = use_state(String::new);
    let error = use_state(|| None::<CallError>);
    let focus = use_focus();
    {
        let list = list.clone();
        use_effect_with(focus, move |_| {
            yew::platform::spawn_local(async move {
                if let Ok(l) = ipc::call(cmd::BudgetsList {}).await {
                    list.set(l);
                }
            });
        });
    }
    let save = {
        let (list, endpoint, daily, monthly, error) = (
            list.clone(),
            endpoint.clone(),
            daily.clone(),
            monthly.clone(),
            error.clone(),
        );
        let on_saved = p.on_saved.clone();
        Callback::from(move |_: MouseEvent| {
            let (list, error, on_saved) = (list.clone(), error.clone(), on_saved.clone());
            let (e, d, m) = ((*endpoint).clone(), (*daily).clone(), (*monthly).clone());
            yew::platform::spawn_local(async move {
                let set = cmd::BudgetsSet {
                    endpoint: (!e.is_empty()).then_some(e),
                    daily: Some(d),
                    monthly: Some(m),
                };
                match ipc::call(set).await {
                    Ok(l) => {
                        list.set(l);
                        error.set(None);
                        on_saved.emit(());
                    }
                    Err(x) => error.set(Some(x)),
                }
            });
        })
    };
    html! {
        <section class="panel" id="usage-budgets">
            <h2>{ "Budgets (USD, UTC days and months)" }</h2>
            <table class="grid compact">
                <tbody>
                    { for list.iter().map(|b| html! {
                        <tr><td>{ b.endpoint.clone().unwrap_or_else(|| "all endpoints".into()) }</td>
                            <td>{ format!("daily {}", b.daily.map(|c| format!("${}", c.usd())).unwrap_or_else(|| "–".into())) }</td>
                            <td>{ format!("monthly {}", b.monthly.map(|c| format!("${}", c.usd())).unwrap_or_else(|| "–".into())) }</td></tr>
                    }) }
                </tbody>
            </table>
            <div class="row">
                <select id="budget-endpoint" onchange={on_select({ let e = endpoint.clone(); move |v| e.set(v) })}>
                    <option value="" selected={endpoint.is_empty()}>{ "all endpoints" }</option>
                    { for app.endpoints.iter().map(|e| html! { <option value={e.spec.name.clone()} selected={*endpoint == e.spec.name}>{ &e.spec.name }</option> }) }
                </select>
                <input class="narrow" id="budget-daily" placeholder="daily $" value={(*daily).clone()} oninput={on_text({ let d = daily.clone(); move |v| d.set(v) })} />
                <input class="narrow" id="budget-monthly" placeholder="monthly $" value={(*monthly).clone()} oninput={on_text({ let m = monthly.clone(); move |v| m.set(v) })} />
                <button class="small" id="budget-save" title={refused_admin.clone()} onclick={save} disabled={refused_admin.is_some()}>{ "Set" }</button>
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="budget-error" /> }
        </section>
    }
}
