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

/// Everything on the Playground, kept at the app level so that visiting another page and coming
/// back loses nothing, not even a stream still arriving.
#[derive(Clone, PartialEq)]
pub struct PlaygroundState {
    /// What the user edits. Behind an `Rc`: a streamed piece of the answer updates the state
    /// once per token, and must not copy the whole conversation each time.
    draft: Rc<Draft>,
    /// The run in flight, if any.
    run_id: Option<String>,
    output: String,
    result: Option<ChatResult>,
    error: Option<CallError>,
}

#[derive(Clone, PartialEq)]
struct Draft {
    endpoint: String,
    system: String,
    turns: Vec<Turn>,
    form: Form,
}

impl Default for PlaygroundState {
    fn default() -> Self {
        let draft = Draft {
            endpoint: String::new(),
            system: "You are a helpful assistant.".into(),
            turns: vec![Turn {
                role: Role::User,
                text: String::new(),
            }],
            form: Form::default(),
        };
        Self {
            draft: Rc::new(draft),
            run_id: None,
            output: String::new(),
            result: None,
            error: None,
        }
    }
}

pub enum PgAction {
    Endpoint(String),
    System(String),
    TurnText(usize, String),
    TurnRole(usize, Role),
    AddTurn,
    RemoveTurn(usize),
    Form(Form),
    Start(String),
    /// A piece of the answer of the named run.
    Piece(String, String),
    Done(String, Result<ChatResult, CallError>),
    Invalid(CallError),
}

impl Reducible for PlaygroundState {
    type Action = PgAction;

    fn reduce(self: Rc<Self>, action: PgAction) -> Rc<Self> {
        let mut s = (*self).clone();
        let current = |id: &str| s.run_id.as_deref() == Some(id);
        match action {
            PgAction::Endpoint(e) => Rc::make_mut(&mut s.draft).endpoint = e,
            PgAction::System(t) => Rc::make_mut(&mut s.draft).system = t,
            PgAction::TurnText(i, t) => {
                if let Some(turn) = Rc::make_mut(&mut s.draft).turns.get_mut(i) {
                    turn.text = t;
                }
            }
            PgAction::TurnRole(i, r) => {
                if let Some(turn) = Rc::make_mut(&mut s.draft).turns.get_mut(i) {
                    turn.role = r;
                }
            }
            PgAction::AddTurn => {
                let turns = &mut Rc::make_mut(&mut s.draft).turns;
                let role = if turns.last().is_some_and(|l| l.role == Role::User) {
                    Role::Assistant
                } else {
                    Role::User
                };
                turns.push(Turn {
                    role,
                    text: String::new(),
                });
            }
            PgAction::RemoveTurn(i) => {
                let turns = &mut Rc::make_mut(&mut s.draft).turns;
                if turns.len() > 1 && i < turns.len() {
                    turns.remove(i);
                }
            }
            PgAction::Form(f) => Rc::make_mut(&mut s.draft).form = f,
            PgAction::Start(id) => {
                s.run_id = Some(id);
                s.output.clear();
                s.result = None;
                s.error = None;
            }
            // Pieces of a run that is no longer current are dropped.
            PgAction::Piece(id, p) if current(&id) => s.output.push_str(&p),
            PgAction::Done(id, r) if current(&id) => {
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
            PgAction::Piece(..) | PgAction::Done(..) => {}
            PgAction::Invalid(e) => {
                s.result = None;
                s.error = Some(e);
            }
        }
        Rc::new(s)
    }
}

pub type PlaygroundContext = UseReducerHandle<PlaygroundState>;

#[derive(Clone, PartialEq, Default)]
pub struct Form {
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
        // Only the text is read here; the ranges are `Params::check`, the same as for the CLI.
        let params = Params {
            temperature: opt(&self.temperature, "temperature", "a number")?,
            top_p: opt(&self.top_p, "top_p", "a number")?,
            max_tokens: opt(&self.max_tokens, "max_tokens", "a whole number")?,
            stop: self
                .stop
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            seed: opt(&self.seed, "seed", "a whole number")?,
        };
        params
            .check()
            .map_err(|(field, allowed)| invalid(field, allowed))?;
        Ok(params)
    }
}

fn new_run_id() -> String {
    format!("run-{:x}", (js_sys::Math::random() * 1e15) as u64)
}

#[function_component]
pub fn Playground() -> Html {
    let app = use_app();
    let pg = use_context::<PlaygroundContext>().expect("the app provides the playground state");

    // Pick the first usable endpoint once the list is known, and again if the chosen one vanished.
    let usable: Vec<_> = app
        .endpoints
        .iter()
        .filter(|e| e.spec.status != EndpointStatus::Retired)
        .cloned()
        .collect();
    {
        let pg = pg.clone();
        let names: Vec<String> = usable.iter().map(|e| e.spec.name.clone()).collect();
        use_effect_with(names, move |names| {
            if !names.contains(&pg.draft.endpoint) {
                pg.dispatch(PgAction::Endpoint(
                    names.first().cloned().unwrap_or_default(),
                ));
            }
        });
    }

    let running = pg.run_id.is_some();
    let send = {
        let pg = pg.clone();
        Callback::from(move |_: ()| {
            if pg.run_id.is_some() {
                return;
            }
            if pg.draft.endpoint.is_empty() {
                return pg.dispatch(PgAction::Invalid(invalid(
                    "endpoint",
                    "add an endpoint first",
                )));
            }
            let params = match pg.draft.form.params() {
                Ok(p) => p,
                Err(e) => return pg.dispatch(PgAction::Invalid(e)),
            };
            let mut messages = Vec::new();
            if !pg.draft.system.trim().is_empty() {
                messages.push(Message::new(Role::System, pg.draft.system.clone()));
            }
            messages.extend(
                pg.draft
                    .turns
                    .iter()
                    .filter(|t| !t.text.trim().is_empty())
                    .map(|t| Message::new(t.role, t.text.clone())),
            );
            if !messages.iter().any(|m| m.role == Role::User) {
                return pg.dispatch(PgAction::Invalid(invalid(
                    "messages",
                    "write a user message",
                )));
            }
            let request = ChatRequest::new(messages, params);
            let id = new_run_id();
            pg.dispatch(PgAction::Start(id.clone()));
            let (pieces, piece_id) = (pg.clone(), id.clone());
            let channel = match ipc::Channel::new(move |p| {
                pieces.dispatch(PgAction::Piece(piece_id.clone(), p))
            }) {
                Ok(c) => c,
                Err(e) => return pg.dispatch(PgAction::Done(id, Err(e))),
            };
            let (pg, endpoint) = (pg.clone(), pg.draft.endpoint.clone());
            yew::platform::spawn_local(async move {
                let result = ipc::chat(&endpoint, &request, &id, &channel).await;
                pg.dispatch(PgAction::Done(id, result));
                drop(channel);
            });
        })
    };
    let stop = {
        let pg = pg.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(id) = pg.run_id.clone() {
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
    let act = |make: fn(String) -> PgAction| {
        let pg = pg.clone();
        on_text(move |v| pg.dispatch(make(v)))
    };
    let set_turn = |i: usize| {
        let pg = pg.clone();
        on_text(move |v| pg.dispatch(PgAction::TurnText(i, v)))
    };
    let set_role = |i: usize| {
        let pg = pg.clone();
        on_select(move |v| {
            pg.dispatch(PgAction::TurnRole(
                i,
                if v == "assistant" {
                    Role::Assistant
                } else {
                    Role::User
                },
            ))
        })
    };
    let remove_turn = |i: usize| {
        let pg = pg.clone();
        Callback::from(move |_: MouseEvent| pg.dispatch(PgAction::RemoveTurn(i)))
    };
    let add_turn = {
        let pg = pg.clone();
        Callback::from(move |_: MouseEvent| pg.dispatch(PgAction::AddTurn))
    };
    let set_form = |f: fn(&mut Form, String)| {
        let pg = pg.clone();
        on_text(move |v| {
            let mut next = pg.draft.form.clone();
            f(&mut next, v);
            pg.dispatch(PgAction::Form(next));
        })
    };

    let chosen = usable.iter().find(|e| e.spec.name == pg.draft.endpoint);
    let status = if running {
        html! { <span class="badge info" id="pg-status">{ "Streaming…" }</span> }
    } else if pg
        .error
        .as_ref()
        .is_some_and(|e| e.kind == ErrorKind::Cancelled)
    {
        html! { <span class="badge warn" id="pg-status">{ "Stopped" }</span> }
    } else if pg.error.is_some() {
        html! { <span class="badge danger" id="pg-status">{ "Failed" }</span> }
    } else if pg.result.is_some() {
        html! { <span class="badge ok" id="pg-status">{ "Done" }</span> }
    } else {
        html! {}
    };
    let form = &pg.draft.form;

    html! {
        <div class="page playground" {onkeydown}>
            <header class="page-head">
                <h1>{ "Playground" }</h1>
                <label class="inline">
                    { "Endpoint" }
                    <select id="pg-endpoint" onchange={on_select({ let pg = pg.clone(); move |v| pg.dispatch(PgAction::Endpoint(v)) })}>
                        { for usable.iter().map(|e| html! {
                            <option value={e.spec.name.clone()} selected={e.spec.name == pg.draft.endpoint}>
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
                        <textarea id="pg-system" rows="3" value={pg.draft.system.clone()} oninput={act(PgAction::System)} />
                    </label>
                    { for pg.draft.turns.iter().enumerate().map(|(i, t)| html! {
                        <div class="turn" key={i}>
                            <div class="turn-head">
                                <select class="turn-role" onchange={set_role(i)}>
                                    <option value="user" selected={t.role == Role::User}>{ "user" }</option>
                                    <option value="assistant" selected={t.role == Role::Assistant}>{ "assistant" }</option>
                                </select>
                                <button class="ghost small" title="Remove this turn" onclick={remove_turn(i)} disabled={pg.draft.turns.len() == 1}>{ "✕" }</button>
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
                <pre id="pg-output" class={classes!("output", running.then_some("streaming"))}>{ &pg.output }</pre>
                if let Some(e) = &pg.error {
                    if e.kind != ErrorKind::Cancelled { <ErrorBox error={e.clone()} id="pg-error" /> }
                }
                if let Some(r) = &pg.result { <Figures result={r.clone()} /> }
            </section>
        </div>
    }
}
