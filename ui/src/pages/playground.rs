//! The Playground: pick an endpoint, write the conversation, set parameters, stream the answer and
//! read every figure of the call. Ctrl+Enter sends; Stop cancels.

use std::rc::Rc;

use milc_api::{
    CallError, ChatRequest, ChatResult, EndpointStatus, ErrorKind, Message, Params, Role,
};
use yew::prelude::*;

use crate::components::{on_select, on_text, ErrorBox, Figures};
use crate::hooks::use_app;
use crate::ipc;

#[derive(Clone, PartialEq)]
struct Turn {
    role: Role,
    text: String,
}

/// The answer being streamed and how it ended.
#[derive(Clone, Default, PartialEq)]
struct RunState {
    run_id: Option<String>,
    output: String,
    result: Option<ChatResult>,
    error: Option<CallError>,
}

enum RunAction {
    Start(String),
    Piece(String),
    Done(Result<ChatResult, CallError>),
    Invalid(CallError),
}

impl Reducible for RunState {
    type Action = RunAction;

    fn reduce(self: Rc<Self>, action: RunAction) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            RunAction::Start(id) => {
                s = RunState {
                    run_id: Some(id),
                    ..RunState::default()
                }
            }
            RunAction::Piece(p) => s.output.push_str(&p),
            RunAction::Done(r) => {
                s.run_id = None;
                match r {
                    // The final output is authoritative should a piece have been missed.
                    Ok(res) => {
                        s.output = res.output.clone();
                        s.result = Some(res);
                    }
                    Err(e) => s.error = Some(e),
                }
            }
            RunAction::Invalid(e) => {
                s.run_id = None;
                s.error = Some(e);
            }
        }
        Rc::new(s)
    }
}

#[derive(Clone, PartialEq, Default)]
struct Form {
    temperature: String,
    top_p: String,
    max_tokens: String,
    stop: String,
    seed: String,
}

fn invalid(field: &str, message: &str) -> CallError {
    CallError {
        kind: ErrorKind::Config,
        message: format!("{field}: {message}"),
        status: None,
    }
}

impl Form {
    fn params(&self) -> Result<Params, CallError> {
        fn opt<T: std::str::FromStr>(
            s: &str,
            field: &str,
            what: &str,
        ) -> Result<Option<T>, CallError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse().map(Some).map_err(|_| invalid(field, what))
        }
        let temperature: Option<f64> =
            opt(&self.temperature, "temperature", "a number from 0 to 2")?;
        if temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(invalid("temperature", "a number from 0 to 2"));
        }
        let top_p: Option<f64> = opt(&self.top_p, "top_p", "a number from 0 to 1")?;
        if top_p.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(invalid("top_p", "a number from 0 to 1"));
        }
        let stop: Vec<String> = self
            .stop
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if stop.len() > 4 {
            return Err(invalid("stop", "at most 4 sequences, one per line"));
        }
        Ok(Params {
            temperature,
            top_p,
            max_tokens: opt(&self.max_tokens, "max tokens", "a whole number")?,
            stop,
            seed: opt(&self.seed, "seed", "a whole number")?,
        })
    }
}

fn new_run_id() -> String {
    format!("run-{:x}", (js_sys::Math::random() * 1e15) as u64)
}

#[function_component]
pub fn Playground() -> Html {
    let app = use_app();
    let endpoint = use_state(String::new);
    let system = use_state(|| "You are a helpful assistant.".to_owned());
    let turns = use_state(|| {
        vec![Turn {
            role: Role::User,
            text: String::new(),
        }]
    });
    let form = use_state(Form::default);
    let run = use_reducer(RunState::default);

    // Pick the first usable endpoint once the list is known, and again if the chosen one vanished.
    let usable: Vec<_> = app
        .endpoints
        .iter()
        .filter(|e| e.spec.status != EndpointStatus::Retired)
        .cloned()
        .collect();
    {
        let endpoint = endpoint.clone();
        let names: Vec<String> = usable.iter().map(|e| e.spec.name.clone()).collect();
        use_effect_with(names, move |names| {
            if !names.contains(&*endpoint) {
                endpoint.set(names.first().cloned().unwrap_or_default());
            }
        });
    }

    let running = run.run_id.is_some();
    let send = {
        let (endpoint, system, turns, form, run) = (
            endpoint.clone(),
            system.clone(),
            turns.clone(),
            form.clone(),
            run.clone(),
        );
        Callback::from(move |_: ()| {
            if run.run_id.is_some() {
                return;
            }
            if endpoint.is_empty() {
                run.dispatch(RunAction::Invalid(invalid(
                    "endpoint",
                    "add an endpoint first",
                )));
                return;
            }
            let params = match form.params() {
                Ok(p) => p,
                Err(e) => return run.dispatch(RunAction::Invalid(e)),
            };
            let mut messages = Vec::new();
            if !system.trim().is_empty() {
                messages.push(Message::new(Role::System, (*system).clone()));
            }
            messages.extend(
                turns
                    .iter()
                    .filter(|t| !t.text.trim().is_empty())
                    .map(|t| Message::new(t.role, t.text.clone())),
            );
            if !messages.iter().any(|m| m.role == Role::User) {
                return run.dispatch(RunAction::Invalid(invalid(
                    "messages",
                    "write a user message",
                )));
            }
            let request = ChatRequest {
                messages,
                params,
                stream: true,
            };
            let id = new_run_id();
            run.dispatch(RunAction::Start(id.clone()));
            let pieces = run.clone();
            let channel = match ipc::Channel::new(move |p| pieces.dispatch(RunAction::Piece(p))) {
                Ok(c) => c,
                Err(e) => return run.dispatch(RunAction::Done(Err(e))),
            };
            let (run, endpoint) = (run.clone(), (*endpoint).clone());
            yew::platform::spawn_local(async move {
                let result = ipc::chat(&endpoint, &request, &id, &channel).await;
                run.dispatch(RunAction::Done(result));
                drop(channel);
            });
        })
    };
    let stop = {
        let run = run.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(id) = run.run_id.clone() {
                yew::platform::spawn_local(async move {
                    let _ = ipc::chat_cancel(&id).await;
                });
            }
        })
    };
    let onkeydown = {
        let send = send.clone();
        Callback::from(move |e: KeyboardEvent| {
            if (e.ctrl_key() || e.meta_key()) && e.key() == "Enter" {
                e.prevent_default();
                send.emit(());
            }
        })
    };

    let set_turn = |i: usize| {
        let turns = turns.clone();
        on_text(move |v| {
            let mut t = (*turns).clone();
            t[i].text = v;
            turns.set(t);
        })
    };
    let set_role = |i: usize| {
        let turns = turns.clone();
        on_select(move |v| {
            let mut t = (*turns).clone();
            t[i].role = if v == "assistant" {
                Role::Assistant
            } else {
                Role::User
            };
            turns.set(t);
        })
    };
    let remove_turn = |i: usize| {
        let turns = turns.clone();
        Callback::from(move |_: MouseEvent| {
            let mut t = (*turns).clone();
            if t.len() > 1 {
                t.remove(i);
                turns.set(t);
            }
        })
    };
    let add_turn = {
        let turns = turns.clone();
        Callback::from(move |_: MouseEvent| {
            let mut t = (*turns).clone();
            let role = if t.last().is_some_and(|l| l.role == Role::User) {
                Role::Assistant
            } else {
                Role::User
            };
            t.push(Turn {
                role,
                text: String::new(),
            });
            turns.set(t);
        })
    };
    let set_form = |f: fn(&mut Form, String)| {
        let form = form.clone();
        on_text(move |v| {
            let mut next = (*form).clone();
            f(&mut next, v);
            form.set(next);
        })
    };

    let chosen = usable.iter().find(|e| e.spec.name == *endpoint);
    let status = if running {
        html! { <span class="badge info" id="pg-status">{ "Streaming…" }</span> }
    } else if run
        .error
        .as_ref()
        .is_some_and(|e| e.kind == ErrorKind::Cancelled)
    {
        html! { <span class="badge warn" id="pg-status">{ "Stopped" }</span> }
    } else if run.error.is_some() {
        html! { <span class="badge danger" id="pg-status">{ "Failed" }</span> }
    } else if run.result.is_some() {
        html! { <span class="badge ok" id="pg-status">{ "Done" }</span> }
    } else {
        html! {}
    };

    html! {
        <div class="page playground" {onkeydown}>
            <header class="page-head">
                <h1>{ "Playground" }</h1>
                <label class="inline">
                    { "Endpoint" }
                    <select id="pg-endpoint" onchange={on_select({ let e = endpoint.clone(); move |v| e.set(v) })}>
                        { for usable.iter().map(|e| html! {
                            <option value={e.spec.name.clone()} selected={e.spec.name == *endpoint}>
                                { if e.simulator { format!("{} (simulator)", e.spec.name) } else { e.spec.name.clone() } }
                            </option>
                        }) }
                    </select>
                </label>
                if let Some(e) = chosen {
                    <span class="muted mono">{ &e.spec.model }</span>
                    if e.simulator { <span class="badge info">{ "simulator" }</span> }
                    if e.spec.status == EndpointStatus::Deprecated { <span class="badge warn">{ "deprecated" }</span> }
                }
            </header>
            <div class="playground-grid">
                <section class="conversation">
                    <label class="block">
                        <span class="label">{ "System" }</span>
                        <textarea id="pg-system" rows="3" value={(*system).clone()} oninput={on_text({ let s = system.clone(); move |v| s.set(v) })} />
                    </label>
                    { for turns.iter().enumerate().map(|(i, t)| html! {
                        <div class="turn" key={i}>
                            <div class="turn-head">
                                <select class="turn-role" onchange={set_role(i)}>
                                    <option value="user" selected={t.role == Role::User}>{ "user" }</option>
                                    <option value="assistant" selected={t.role == Role::Assistant}>{ "assistant" }</option>
                                </select>
                                <button class="ghost small" title="Remove this turn" onclick={remove_turn(i)} disabled={turns.len() == 1}>{ "✕" }</button>
                            </div>
                            <textarea id={format!("pg-turn-{i}")} rows="4" placeholder="Message… (Ctrl+Enter sends)" value={t.text.clone()} oninput={set_turn(i)} />
                        </div>
                    }) }
                    <div class="row">
                        <button class="ghost" id="pg-add-turn" onclick={add_turn}>{ "+ Add turn" }</button>
                        <span class="spacer" />
                        if running {
                            <button class="danger" id="pg-stop" onclick={stop}>{ "Stop" }</button>
                        } else {
                            <button class="primary" id="pg-send" onclick={send.reform(|_: MouseEvent| ())}>{ "Send" }<kbd>{ "Ctrl ↵" }</kbd></button>
                        }
                    </div>
                </section>
                <aside class="params">
                    <h2>{ "Parameters" }</h2>
                    <label class="block"><span class="label">{ "Temperature" }</span>
                        <input id="pg-temperature" placeholder="server default" value={form.temperature.clone()} oninput={set_form(|f, v| f.temperature = v)} /></label>
                    <label class="block"><span class="label">{ "Top p" }</span>
                        <input id="pg-top-p" placeholder="server default" value={form.top_p.clone()} oninput={set_form(|f, v| f.top_p = v)} /></label>
                    <label class="block"><span class="label">{ "Max tokens" }</span>
                        <input id="pg-max-tokens" placeholder="server default" value={form.max_tokens.clone()} oninput={set_form(|f, v| f.max_tokens = v)} /></label>
                    <label class="block"><span class="label">{ "Stop sequences (one per line)" }</span>
                        <textarea id="pg-stop-seq" rows="2" value={form.stop.clone()} oninput={set_form(|f, v| f.stop = v)} /></label>
                    <label class="block"><span class="label">{ "Seed" }</span>
                        <input id="pg-seed" placeholder="none" value={form.seed.clone()} oninput={set_form(|f, v| f.seed = v)} /></label>
                </aside>
            </div>
            <section class="answer">
                <div class="answer-head"><h2>{ "Answer" }</h2>{ status }</div>
                <pre id="pg-output" class={classes!("output", running.then_some("streaming"))}>{ &run.output }</pre>
                if let Some(e) = &run.error {
                    if e.kind != ErrorKind::Cancelled { <ErrorBox error={e.clone()} id="pg-error" /> }
                }
                if let Some(r) = &run.result { <Figures result={r.clone()} /> }
            </section>
        </div>
    }
}
