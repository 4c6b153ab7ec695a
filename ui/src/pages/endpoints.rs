//! Endpoints: the list with status and last test, add / edit / delete, test connection, and a
//! token field that writes to the OS keyring and never shows the stored token again.

use std::collections::BTreeMap;

use milc_api::lifecycle::ArchiveScope;
use milc_api::prompt::{CustomPattern, RedactMode};
use milc_api::workspace::MemberRole;
use milc_api::RedactionPolicy;
use milc_api::{
    cmd, CallError, ConnectionTest, Endpoint, EndpointSpec, EndpointStatus, PricePerMillion,
    Prices, TokenChange,
};
use yew::prelude::*;

use crate::components::{on_select, on_text, ArchiveButton, ErrorBox};
use crate::hooks::{refresh_endpoints, use_app, use_refusal};
use crate::ipc;

/// The form as typed: strings until Save turns them into a spec, naming the field that is wrong.
#[derive(Clone, PartialEq, Default)]
struct Draft {
    id: Option<i64>,
    has_token: bool,
    name: String,
    url: String,
    model: String,
    price_in: String,
    price_cached: String,
    price_out: String,
    timeout_ms: String,
    max_retries: String,
    status: String,
    headers: String,
    token: String,
    remove_token: bool,
    redact: String,
    log_bodies: bool,
    /// Custom redaction patterns, `NAME=REGEX` one per line.
    custom: String,
    /// The model this one was tuned from (empty: none) and what on.
    base_model: String,
    tuned_on: String,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> CallError {
    CallError::config(format!("{field}: {message}"))
}

impl Draft {
    fn new() -> Self {
        Self {
            timeout_ms: milc_api::default_timeout_ms().to_string(),
            max_retries: milc_api::default_max_retries().to_string(),
            status: "active".into(),
            redact: RedactMode::default().as_str().into(),
            ..Self::default()
        }
    }

    fn of(e: &Endpoint) -> Self {
        let s = &e.spec;
        Self {
            id: Some(e.id),
            has_token: e.has_token,
            name: s.name.clone(),
            url: s.base_url.clone(),
            model: s.model.clone(),
            price_in: s.prices.input.to_string(),
            price_cached: s
                .prices
                .cached_input
                .map(|p| p.to_string())
                .unwrap_or_default(),
            price_out: s.prices.output.to_string(),
            timeout_ms: s.timeout_ms.to_string(),
            max_retries: s.max_retries.to_string(),
            status: s.status.as_str().into(),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect(),
            token: String::new(),
            remove_token: false,
            redact: s.redaction.mode.as_str().into(),
            log_bodies: s.redaction.log_bodies,
            custom: s
                .redaction
                .custom
                .iter()
                .map(|c| format!("{}={}\n", c.name, c.pattern))
                .collect(),
            base_model: s
                .lineage
                .as_ref()
                .map(|l| l.base_model.clone())
                .unwrap_or_default(),
            tuned_on: s
                .lineage
                .as_ref()
                .and_then(|l| l.tuned_on.clone())
                .unwrap_or_default(),
        }
    }

    fn spec(&self) -> Result<(EndpointSpec, TokenChange), CallError> {
        let price = |field: &str, s: &str| -> Result<PricePerMillion, CallError> {
            if s.trim().is_empty() {
                Ok(PricePerMillion::ZERO)
            } else {
                s.parse().map_err(|e| invalid(field, e))
            }
        };
        let mut headers = BTreeMap::new();
        for (n, line) in self
            .headers
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let (k, v) = line.split_once(':').ok_or_else(|| {
                invalid("headers", format!("line {} should read Name: value", n + 1))
            })?;
            headers.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        let spec = EndpointSpec {
            name: self.name.clone(),
            base_url: self.url.clone(),
            model: self.model.clone(),
            headers,
            prices: Prices {
                input: price("price_in", &self.price_in)?,
                cached_input: if self.price_cached.trim().is_empty() {
                    None
                } else {
                    Some(price("price_cached", &self.price_cached)?)
                },
                output: price("price_out", &self.price_out)?,
            },
            timeout_ms: self
                .timeout_ms
                .trim()
                .parse()
                .map_err(|_| invalid("timeout_ms", "a whole number of milliseconds"))?,
            max_retries: self
                .max_retries
                .trim()
                .parse()
                .map_err(|_| invalid("max_retries", "a whole number"))?,
            status: EndpointStatus::parse(&self.status).unwrap_or_default(),
            redaction: RedactionPolicy {
                mode: RedactMode::parse(&self.redact).unwrap_or_default(),
                log_bodies: self.log_bodies,
                custom: self
                    .custom
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(n, l)| {
                        let (name, pattern) = l.split_once('=').ok_or_else(|| {
                            invalid(
                                "redaction",
                                format!("line {} should read NAME=REGEX", n + 1),
                            )
                        })?;
                        Ok(CustomPattern {
                            name: name.trim().to_owned(),
                            pattern: pattern.to_owned(),
                        })
                    })
                    .collect::<Result<_, CallError>>()?,
            },
            lineage: match (self.base_model.trim(), self.tuned_on.trim()) {
                ("", "") => None,
                ("", _) => {
                    return Err(invalid(
                        "lineage.base_model",
                        "name the model this one was tuned from",
                    ))
                }
                (base, on) => Some(milc_api::Lineage {
                    base_model: base.to_owned(),
                    tuned_on: (!on.is_empty()).then(|| on.to_owned()),
                }),
            },
        };
        let token = if self.remove_token {
            TokenChange::Remove
        } else if self.token.trim().is_empty() {
            TokenChange::Keep
        } else {
            TokenChange::Replace(self.token.trim().to_owned())
        };
        Ok((spec, token))
    }
}

#[function_component]
pub fn Endpoints() -> Html {
    let refused_admin = use_refusal(MemberRole::Admin);
    let app = use_app();
    let draft = use_state(|| None::<Draft>);
    let form_error = use_state(|| None::<CallError>);
    let busy = use_state(|| false);
    // Per endpoint: a test in flight, a delete awaiting confirmation, a failure of an action.
    let testing = use_state(|| None::<String>);
    // Tests run from this window, newest kept here too: a member whose role may not change
    // endpoints sees the result although the store does not keep it.
    let tested = use_state(std::collections::HashMap::<String, ConnectionTest>::new);
    let confirm = use_state(|| None::<String>);
    let row_error = use_state(|| None::<CallError>);

    let open = |d: Option<Draft>| {
        let (draft, form_error) = (draft.clone(), form_error.clone());
        Callback::from(move |_: MouseEvent| {
            form_error.set(None);
            draft.set(d.clone());
        })
    };
    let save = {
        let (app, draft, form_error, busy) =
            (app.clone(), draft.clone(), form_error.clone(), busy.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(d) = (*draft).clone() else { return };
            let (spec, token) = match d.spec() {
                Ok(x) => x,
                Err(err) => return form_error.set(Some(err)),
            };
            busy.set(true);
            let (app, draft, form_error, busy) =
                (app.clone(), draft.clone(), form_error.clone(), busy.clone());
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::EndpointsSave {
                    id: d.id,
                    spec,
                    token,
                })
                .await
                {
                    Ok(_) => {
                        draft.set(None);
                        form_error.set(None);
                        refresh_endpoints(app);
                    }
                    Err(err) => form_error.set(Some(err)),
                }
                busy.set(false);
            });
        })
    };
    let test = |name: String| {
        let (app, testing, tested, row_error) = (
            app.clone(),
            testing.clone(),
            tested.clone(),
            row_error.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            testing.set(Some(name.clone()));
            let (app, testing, tested, row_error, name) = (
                app.clone(),
                testing.clone(),
                tested.clone(),
                row_error.clone(),
                name.clone(),
            );
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::EndpointsTest { name: name.clone() }).await {
                    Ok(t) => {
                        let mut all = (*tested).clone();
                        all.insert(name, t);
                        tested.set(all);
                    }
                    Err(e) => row_error.set(Some(e)),
                }
                testing.set(None);
                refresh_endpoints(app);
            });
        })
    };
    let delete = |name: String| {
        let (app, confirm, row_error) = (app.clone(), confirm.clone(), row_error.clone());
        Callback::from(move |_: MouseEvent| {
            if confirm.as_deref() != Some(name.as_str()) {
                return confirm.set(Some(name.clone()));
            }
            confirm.set(None);
            let (app, row_error, name) = (app.clone(), row_error.clone(), name.clone());
            yew::platform::spawn_local(async move {
                if let Err(e) = ipc::call(cmd::EndpointsDelete { name }).await {
                    row_error.set(Some(e));
                }
                refresh_endpoints(app);
            });
        })
    };

    html! {
        <div class="page endpoints">
            <header class="page-head">
                <h1>{ "Endpoints" }</h1>
                <span class="spacer" />
                <button class="primary" id="ep-add" title={refused_admin.clone()} onclick={open(Some(Draft::new()))} disabled={refused_admin.is_some()}>{ "+ Add endpoint" }</button>
            </header>
            if let Some(e) = &app.error { <ErrorBox error={e.clone()} /> }
            if let Some(e) = &*row_error { <ErrorBox error={e.clone()} id="ep-row-error" /> }
            <table class="grid" id="endpoints-table">
                <thead><tr>
                    <th>{ "Name" }</th><th>{ "Status" }</th><th>{ "Model" }</th><th>{ "Base URL" }</th>
                    <th>{ "Token" }</th><th class="num">{ "$/1M in" }</th><th class="num">{ "$/1M out" }</th>
                    <th>{ "Last test" }</th><th></th>
                </tr></thead>
                <tbody>
                { for app.endpoints.iter().map(|e| {
                    let name = e.spec.name.clone();
                    html! {
                        <tr data-endpoint={name.clone()} key={e.id}>
                            <td>{ &e.spec.name }
                                if e.simulator { <span class="badge info">{ "simulator" }</span> }</td>
                            <td><span class={status_class(e.spec.status)}>{ e.spec.status.as_str() }</span></td>
                            <td class="mono">{ &e.spec.model }
                                if let Some(l) = &e.spec.lineage { <div class="small muted lineage">{ l.to_string() }</div> }</td>
                            <td class="mono muted">{ if e.simulator { "built in".to_owned() } else { e.spec.base_url.clone() } }</td>
                            <td>{ if e.has_token { "stored in keyring" } else { "—" } }</td>
                            <td class="num">{ e.spec.prices.input.to_string() }</td>
                            <td class="num">{ e.spec.prices.output.to_string() }</td>
                            <td class="last-test">{ last_test(newest(e.last_test.as_ref(), tested.get(&name)), testing.as_deref() == Some(name.as_str())) }</td>
                            <td class="actions">
                                <button class="ghost small test" onclick={test(name.clone())}>{ "Test" }</button>
                                <button class="ghost small edit" title={refused_admin.clone()} disabled={refused_admin.is_some()} onclick={open(Some(Draft::of(e)))}>{ "Edit" }</button>
                                <ArchiveButton scope={ArchiveScope::Endpoint(name.clone())} id={format!("ep-archive-{}", e.id)} />
                                <button class="ghost small delete danger-text" title={refused_admin.clone()} disabled={refused_admin.is_some()} onclick={delete(name.clone())}>
                                    { if confirm.as_deref() == Some(name.as_str()) { "Confirm delete" } else { "Delete" } }
                                </button>
                            </td>
                        </tr>
                    }
                }) }
                </tbody>
            </table>
            if let Some(d) = &*draft {
                { form(d, &draft, &form_error, *busy || refused_admin.is_some(), save.clone(), open(None)) }
            }
        </div>
    }
}

fn status_class(s: EndpointStatus) -> &'static str {
    match s {
        EndpointStatus::Active => "badge ok",
        EndpointStatus::Deprecated => "badge warn",
        EndpointStatus::Retired => "badge muted",
    }
}

/// The newer of the stored test and the one run from this window.
fn newest<'a>(
    stored: Option<&'a ConnectionTest>,
    here: Option<&'a ConnectionTest>,
) -> Option<&'a ConnectionTest> {
    match (stored, here) {
        (Some(s), Some(h)) => Some(if h.at_ms > s.at_ms { h } else { s }),
        (s, h) => s.or(h),
    }
}

fn last_test(t: Option<&ConnectionTest>, running: bool) -> Html {
    if running {
        return html! { <span class="muted">{ "testing…" }</span> };
    }
    match t {
        None => html! { <span class="muted">{ "never" }</span> },
        Some(t) if t.ok => {
            html! { <span class="badge ok">{ format!("ok · {} ms", t.latency_ms.unwrap_or(0)) }</span> }
        }
        Some(t) => {
            let e = t.error.as_ref();
            html! {
                <>
                    <span class="badge danger" title={e.map(|e| e.message.clone())}>
                        { format!("failed · {}", e.map(|e| e.kind.as_str()).unwrap_or("?")) }
                    </span>
                    <div class="small muted">{ e.map(|e| e.message.clone()).unwrap_or_default() }</div>
                </>
            }
        }
    }
}

fn form(
    d: &Draft,
    draft: &UseStateHandle<Option<Draft>>,
    error: &UseStateHandle<Option<CallError>>,
    busy: bool,
    onsubmit: Callback<SubmitEvent>,
    cancel: Callback<MouseEvent>,
) -> Html {
    let field = |id: &str,
                 label: &str,
                 value: &str,
                 placeholder: &str,
                 set: fn(&mut Draft, String)| {
        let draft = draft.clone();
        html! {
            <label class="block">
                <span class="label">{ label.to_owned() }</span>
                <input id={id.to_owned()} value={value.to_owned()} placeholder={placeholder.to_owned()} oninput={on_text(move |v| {
                    if let Some(mut d) = (*draft).clone() { set(&mut d, v); draft.set(Some(d)); }
                })} />
            </label>
        }
    };
    let set_draft = |f: fn(&mut Draft, String)| {
        let draft = draft.clone();
        move |v: String| {
            if let Some(mut d) = (*draft).clone() {
                f(&mut d, v);
                draft.set(Some(d));
            }
        }
    };
    let toggle_remove = {
        let draft = draft.clone();
        Callback::from(move |_: Event| {
            if let Some(mut d) = (*draft).clone() {
                d.remove_token = !d.remove_token;
                draft.set(Some(d));
            }
        })
    };
    let token_hint = if d.has_token {
        "a token is stored — type to replace it"
    } else {
        "none (local servers need none)"
    };
    html! {
        <form class="panel endpoint-form" {onsubmit}>
            <h2>{ if d.id.is_some() { "Edit endpoint" } else { "Add endpoint" } }</h2>
            if let Some(e) = &**error { <ErrorBox error={e.clone()} id="ep-form-error" /> }
            <div class="form-grid">
                { field("ep-name", "Name", &d.name, "ccluster-llama", |d, v| d.name = v) }
                { field("ep-url", "Base URL", &d.url, "https://integrate.api.nvidia.com/v1", |d, v| d.url = v) }
                { field("ep-model", "Model", &d.model, "meta/llama-3.3-70b-instruct", |d, v| d.model = v) }
                <label class="block">
                    <span class="label">{ "API token (OS keyring)" }</span>
                    <input id="ep-token" type="password" autocomplete="off" value={d.token.clone()} placeholder={token_hint}
                        disabled={d.remove_token} oninput={on_text(set_draft(|d, v| d.token = v))} />
                    if d.has_token {
                        <span class="check"><input type="checkbox" id="ep-remove-token" checked={d.remove_token} onchange={toggle_remove} />{ " remove the stored token" }</span>
                    }
                </label>
                { field("ep-price-in", "$ per 1M input tokens", &d.price_in, "0.00", |d, v| d.price_in = v) }
                { field("ep-price-cached", "$ per 1M cached input", &d.price_cached, "same as input", |d, v| d.price_cached = v) }
                { field("ep-price-out", "$ per 1M output tokens", &d.price_out, "0.00", |d, v| d.price_out = v) }
                { field("ep-timeout", "Timeout (ms)", &d.timeout_ms, "60000", |d, v| d.timeout_ms = v) }
                { field("ep-retries", "Max retries", &d.max_retries, "2", |d, v| d.max_retries = v) }
                { field("ep-base-model", "Tuned from (base model)", &d.base_model, "meta/llama-3.1-8b-instruct", |d, v| d.base_model = v) }
                { field("ep-tuned-on", "Tuned on (dataset or export)", &d.tuned_on, "tickets@3f2a9c…", |d, v| d.tuned_on = v) }
                <div class="block">
                    <span class="label">{ "Status" }</span>
                    <span id="ep-status">{ &d.status }</span>
                    <span class="muted small">{ " (deprecate or retire it on the Lifecycle page)" }</span>
                </div>
                <label class="block wide">
                    <span class="label">{ "Extra headers (Name: value, one per line)" }</span>
                    <textarea id="ep-headers" rows="2" value={d.headers.clone()} oninput={on_text(set_draft(|d, v| d.headers = v))} />
                </label>
                <label class="block">
                    <span class="label">{ "Redact personal data" }</span>
                    <select id="ep-redact" onchange={on_select(set_draft(|d, v| d.redact = v))}>
                        { for RedactMode::ALL.iter().map(|m| html! {
                            <option value={m.as_str()} selected={d.redact == m.as_str()}>{ redact_label(*m) }</option>
                        }) }
                    </select>
                </label>
                <label class="check">
                    <input type="checkbox" id="ep-log-bodies" checked={d.log_bodies} onchange={{
                        let draft = draft.clone();
                        Callback::from(move |_: Event| if let Some(mut d) = (*draft).clone() { d.log_bodies = !d.log_bodies; draft.set(Some(d)); })
                    }} />
                    { "Keep request and response bodies in the call log (always redacted)" }
                </label>
                <label class="block">
                    <span class="label">{ "Own patterns to redact (NAME=REGEX, one per line)" }</span>
                    <textarea id="ep-redact-custom" rows="2" placeholder="EMPLOYEE_ID=E-\\d{6}" value={d.custom.clone()} oninput={on_text(set_draft(|d, v| d.custom = v))} />
                </label>
            </div>
            <div class="row">
                <span class="spacer" />
                <button type="button" class="ghost" onclick={cancel}>{ "Cancel" }</button>
                <button type="submit" class="primary" id="ep-save" disabled={busy}>{ "Save" }</button>
            </div>
        </form>
    }
}

fn redact_label(m: RedactMode) -> &'static str {
    match m {
        RedactMode::Off => "off — nothing is redacted",
        RedactMode::Sending => "before sending",
        RedactMode::Logging => "before logging (history and bodies)",
        RedactMode::Both => "before sending and before logging",
    }
}
