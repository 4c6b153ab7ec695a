//! The Playground: pick an endpoint and optionally a prompt version, write the conversation, fill
//! the template variables, set parameters, stream the answer and read every figure of the call;
//! save the editor as a new prompt version; send the same input to several variants in columns;
//! search and reopen past calls. Ctrl+Enter sends; Stop cancels.

use std::collections::BTreeMap;
use std::rc::Rc;

use milc_api::prompt::{
    variables_of, HistoryEntry, JsonSchemaFormat, PromptContent, PromptPin, PromptVersion,
};
use milc_api::workspace::MemberRole;
use milc_api::{
    cmd, CallError, ChatRequest, ChatResult, EndpointStatus, ErrorKind, Message, Params,
    ResponseFormat, Role,
};
use yew::prelude::*;

use crate::components::{on_select, on_text, ErrorBox, Figures};
use crate::hooks::{use_app, use_refusal};
use crate::ipc;
use crate::pages::columns::VariantColumns;
use crate::pages::history::History;
use crate::pages::save_version::SaveVersion;

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
    /// Show the answer as the model wrote it (with placeholders) rather than restored.
    show_raw: bool,
    /// Bumped after each call, so the history reloads.
    history_rev: u32,
}

#[derive(Clone, PartialEq)]
pub struct Draft {
    endpoint: String,
    system: String,
    turns: Vec<Turn>,
    form: Form,
    /// Values typed for the template variables, by name (kept when a variable disappears and
    /// comes back).
    variables: BTreeMap<String, String>,
    /// The prompt version the editor was loaded from, with its content as loaded: while the
    /// editor still holds that content, calls are recorded against the version.
    loaded: Option<(PromptPin, Rc<PromptContent>)>,
}

impl Draft {
    /// The messages as the editor holds them (templates, unrendered).
    fn messages(&self) -> Vec<Message> {
        let mut messages = Vec::new();
        if !self.system.trim().is_empty() {
            messages.push(Message::new(Role::System, self.system.clone()));
        }
        messages.extend(
            self.turns
                .iter()
                .filter(|t| !t.text.trim().is_empty())
                .map(|t| Message::new(t.role, t.text.clone())),
        );
        messages
    }

    /// The loaded version, if the editor still holds exactly its messages and parameters.
    fn pinned(&self, params: &Params) -> Option<PromptPin> {
        let (pin, content) = self.loaded.as_ref()?;
        (content.messages == self.messages() && content.params == *params).then(|| pin.clone())
    }

    /// The editor as a prompt version's content: messages, parameters, the chosen endpoint, and
    /// the loaded version's own redaction policy if it had one.
    fn content(&self) -> Result<PromptContent, CallError> {
        Ok(PromptContent {
            messages: self.messages(),
            params: self.form.params()?,
            endpoint: (!self.endpoint.is_empty()).then(|| self.endpoint.clone()),
            redaction: self.loaded.as_ref().and_then(|(_, c)| c.redaction.clone()),
        })
    }

    /// The editor holding a version, or a past call (`pin` then names the version it used).
    fn from_parts(
        endpoint: String,
        messages: &[Message],
        params: &Params,
        variables: BTreeMap<String, String>,
        loaded: Option<(PromptPin, Rc<PromptContent>)>,
    ) -> Self {
        let (system, rest) = match messages.first() {
            Some(m) if m.role == Role::System => (m.content.clone(), &messages[1..]),
            _ => (String::new(), messages),
        };
        let mut turns: Vec<Turn> = rest
            .iter()
            .map(|m| Turn {
                role: m.role,
                text: m.content.clone(),
            })
            .collect();
        if turns.is_empty() {
            turns.push(Turn {
                role: Role::User,
                text: String::new(),
            });
        }
        Self {
            endpoint,
            system,
            turns,
            form: Form::of(params),
            variables,
            loaded,
        }
    }

    fn of_version(
        v: &PromptVersion,
        endpoint: String,
        variables: BTreeMap<String, String>,
    ) -> Self {
        let pin = PromptPin {
            prompt: v.prompt.clone(),
            version: v.version,
        };
        let endpoint = v.content.endpoint.clone().unwrap_or(endpoint);
        Self::from_parts(
            endpoint,
            &v.content.messages,
            &v.content.params,
            variables,
            Some((pin, Rc::new(v.content.clone()))),
        )
    }
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
            variables: BTreeMap::new(),
            loaded: None,
        };
        Self {
            draft: Rc::new(draft),
            run_id: None,
            output: String::new(),
            result: None,
            error: None,
            show_raw: false,
            history_rev: 0,
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
    Var(String, String),
    /// Replace the editor (a prompt version or a past call was opened).
    Load(Rc<Draft>),
    /// The editor was saved as this version.
    Saved(PromptVersion),
    ShowRaw(bool),
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
            PgAction::Var(k, v) => {
                Rc::make_mut(&mut s.draft).variables.insert(k, v);
            }
            PgAction::Load(d) => {
                s.draft = d;
                s.error = None;
            }
            PgAction::Saved(v) => {
                let pin = PromptPin {
                    prompt: v.prompt,
                    version: v.version,
                };
                Rc::make_mut(&mut s.draft).loaded = Some((pin, Rc::new(v.content)));
            }
            PgAction::ShowRaw(raw) => s.show_raw = raw,
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
                s.history_rev += 1;
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

/// Opens a prompt version in the Playground's editor (from the Prompts page), keeping the
/// variables already typed.
pub fn open_version(pg: &PlaygroundContext, v: &PromptVersion) {
    pg.dispatch(PgAction::Load(Rc::new(Draft::of_version(
        v,
        pg.draft.endpoint.clone(),
        pg.draft.variables.clone(),
    ))));
}

/// Opens a prompt version in the Playground's editor with these variables filled in (the
/// sample project's first ticket).
pub fn open_version_with(
    pg: &PlaygroundContext,
    v: &PromptVersion,
    variables: BTreeMap<String, String>,
) {
    pg.dispatch(PgAction::Load(Rc::new(Draft::of_version(
        v,
        pg.draft.endpoint.clone(),
        variables,
    ))));
}

#[derive(Clone, PartialEq)]
pub struct Form {
    temperature: String,
    top_p: String,
    max_tokens: String,
    stop: String,
    seed: String,
    /// text, json_object or json_schema.
    format: String,
    schema_name: String,
    schema: String,
}

impl Default for Form {
    fn default() -> Self {
        Self {
            temperature: String::new(),
            top_p: String::new(),
            max_tokens: String::new(),
            stop: String::new(),
            seed: String::new(),
            format: "text".into(),
            schema_name: "answer".into(),
            schema: String::new(),
        }
    }
}

fn invalid(field: &str, message: &str) -> CallError {
    CallError::config(format!("{field}: {message}"))
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
            response_format: match self.format.as_str() {
                "json_object" => Some(ResponseFormat::JsonObject),
                "json_schema" => Some(ResponseFormat::JsonSchema {
                    json_schema: JsonSchemaFormat {
                        name: self.schema_name.trim().to_owned(),
                        schema: serde_json::from_str(&self.schema).map_err(|e| {
                            invalid(
                                "response_format.schema",
                                &format!(
                                    "not JSON: {e} (line {}, column {})",
                                    e.line(),
                                    e.column()
                                ),
                            )
                        })?,
                        strict: Some(true),
                    },
                }),
                _ => None,
            },
        };
        params
            .check()
            .map_err(|(field, allowed)| invalid(field, allowed))?;
        Ok(params)
    }
}

impl Form {
    fn of(p: &Params) -> Self {
        let text = |v: Option<String>| v.unwrap_or_default();
        let (format, schema_name, schema) = match &p.response_format {
            None | Some(ResponseFormat::Text) => ("text", "answer".into(), String::new()),
            Some(ResponseFormat::JsonObject) => ("json_object", "answer".into(), String::new()),
            Some(ResponseFormat::JsonSchema { json_schema }) => (
                "json_schema",
                json_schema.name.clone(),
                serde_json::to_string_pretty(&json_schema.schema).unwrap_or_default(),
            ),
        };
        Self {
            temperature: text(p.temperature.map(|t| t.to_string())),
            top_p: text(p.top_p.map(|t| t.to_string())),
            max_tokens: text(p.max_tokens.map(|t| t.to_string())),
            stop: p.stop.join("\n"),
            seed: text(p.seed.map(|t| t.to_string())),
            format: format.into(),
            schema_name,
            schema,
        }
    }
}

fn new_run_id() -> String {
    format!("run-{:x}", (js_sys::Math::random() * 1e15) as u64)
}

#[function_component]
pub fn Playground() -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
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
            let messages = pg.draft.messages();
            if !messages.iter().any(|m| m.role == Role::User) {
                return pg.dispatch(PgAction::Invalid(invalid(
                    "messages",
                    "write a user message",
                )));
            }
            let names = variables_of(&messages);
            let mut request = ChatRequest::new(messages, params);
            request.prompt = pg.draft.pinned(&request.params);
            // Only the variables the templates use: a stale field is not an "unused" warning.
            request.variables = names
                .iter()
                .filter_map(|n| pg.draft.variables.get(n).map(|v| (n.clone(), v.clone())))
                .collect();
            let id = new_run_id();
            pg.dispatch(PgAction::Start(id.clone()));
            let (pieces, piece_id) = (pg.clone(), id.clone());
            let (pg, endpoint) = (pg.clone(), pg.draft.endpoint.clone());
            yew::platform::spawn_local(async move {
                let result = ipc::call_with_channel(
                    |on_event| cmd::Chat {
                        endpoint,
                        request,
                        run: id.clone(),
                        on_event,
                    },
                    move |p| pieces.dispatch(PgAction::Piece(piece_id.clone(), p)),
                )
                .await;
                pg.dispatch(PgAction::Done(id, result));
            });
        })
    };
    let stop = {
        let pg = pg.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(id) = pg.run_id.clone() {
                yew::platform::spawn_local(async move {
                    let _ = ipc::call(cmd::ChatCancel { run: id }).await;
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
            let role = ROLES
                .into_iter()
                .find(|r| r.as_str() == v)
                .unwrap_or(Role::User);
            pg.dispatch(PgAction::TurnRole(i, role))
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
        move |v: String| {
            let mut next = pg.draft.form.clone();
            f(&mut next, v);
            pg.dispatch(PgAction::Form(next));
        }
    };
    let set_var = |name: String| {
        let pg = pg.clone();
        on_text(move |v| pg.dispatch(PgAction::Var(name.clone(), v)))
    };
    // Opening a prompt version (from the picker) replaces the editor, keeping typed variables.
    let open_version = {
        let pg = pg.clone();
        Callback::from(move |reference: String| {
            if reference.is_empty() {
                return;
            }
            let pg = pg.clone();
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::PromptsResolve { reference }).await {
                    Ok(v) => open_version(&pg, &v),
                    Err(e) => pg.dispatch(PgAction::Invalid(e)),
                }
            });
        })
    };
    // Reopening a past call: its inputs, variables, parameters and endpoint; if it used a
    // prompt version, that version is what the editor is compared against.
    let reopen = {
        let pg = pg.clone();
        Callback::from(move |h: HistoryEntry| {
            let pg = pg.clone();
            yew::platform::spawn_local(async move {
                let loaded = match &h.prompt {
                    Some(pin) => ipc::call(cmd::PromptsResolve {
                        reference: pin.to_string(),
                    })
                    .await
                    .ok()
                    .map(|v| (pin.clone(), Rc::new(v.content))),
                    None => None,
                };
                pg.dispatch(PgAction::Load(Rc::new(Draft::from_parts(
                    h.endpoint.clone(),
                    &h.messages,
                    &h.params,
                    h.variables.clone(),
                    loaded,
                ))));
            });
        })
    };
    let on_saved = {
        let (pg, app) = (pg.clone(), app.clone());
        Callback::from(move |v: PromptVersion| {
            crate::hooks::refresh_prompts(app.clone());
            pg.dispatch(PgAction::Saved(v));
        })
    };
    let toggle_raw = {
        let pg = pg.clone();
        Callback::from(move |_: Event| pg.dispatch(PgAction::ShowRaw(!pg.show_raw)))
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
    let messages = pg.draft.messages();
    let variables = variables_of(&messages);
    let pinned = form.params().ok().and_then(|p| pg.draft.pinned(&p));
    let content = pg.draft.content();
    // The loaded version, and whether the editor still holds it.
    let origin = pg.draft.loaded.as_ref().map(|(pin, c)| {
        let edited = pinned.is_none();
        let policy = c.redaction.as_ref().map(|r| r.mode.as_str());
        html! {
            <span class="badge info" id="pg-origin" title="calls are recorded against this prompt version while the editor holds it unchanged">
                { pin.to_string() }{ if edited { " · edited" } else { "" } }
                { policy.map(|p| format!(" · redaction: {p}")).unwrap_or_default() }
            </span>
        }
    });
    let shown_output = match &pg.result {
        Some(r) if !pg.show_raw => r.restored.clone().unwrap_or_else(|| pg.output.clone()),
        _ => pg.output.clone(),
    };

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
                <label class="inline">
                    { "Prompt" }
                    <select id="pg-prompt" onchange={on_select(move |v| open_version.emit(v))}>
                        <option value="" selected=true>{ "open a version…" }</option>
                        { for app.prompts.iter().map(|p| html! {
                            <>
                                <option value={p.name.clone()}>{ format!("{} (latest, v{})", p.name, p.latest) }</option>
                                { for p.labels.iter().map(|(l, v)| html! {
                                    <option value={format!("{}:{l}", p.name)}>{ format!("{}:{l} (v{v})", p.name) }</option>
                                }) }
                            </>
                        }) }
                    </select>
                </label>
                { for origin }
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
                                    { for ROLES.iter().map(|r| html! { <option value={r.as_str()} selected={t.role == *r}>{ r.as_str() }</option> }) }
                                </select>
                                <button class="ghost small" title="Remove this turn" onclick={remove_turn(i)} disabled={pg.draft.turns.len() == 1}>{ "✕" }</button>
                            </div>
                            <textarea id={format!("pg-turn-{i}")} rows="4" placeholder="Message… {{variables}} become fields below (Ctrl+Enter sends)" value={t.text.clone()} oninput={set_turn(i)} />
                        </div>
                    }) }
                    if !variables.is_empty() {
                        <div class="variables panel" id="pg-variables">
                            <h2>{ "Variables" }</h2>
                            { for variables.iter().map(|name| html! {
                                <label class="var">
                                    <span class="mono">{ name.clone() }</span>
                                    <textarea id={format!("pg-var-{name}")} rows="1" value={pg.draft.variables.get(name).cloned().unwrap_or_default()} oninput={set_var(name.clone())} />
                                </label>
                            }) }
                        </div>
                    }
                    <div class="row">
                        <button class="ghost" id="pg-add-turn" onclick={add_turn}>{ "+ Add turn" }</button>
                        <span class="spacer" />
                        if running {
                            <button class="danger" id="pg-stop" onclick={stop}>{ "Stop" }</button>
                        } else {
                            <button class="primary" id="pg-send" title={refused_editor.clone()} onclick={send.reform(|_: MouseEvent| ())} disabled={refused_editor.is_some()}>{ "Send" }<kbd>{ "Ctrl ↵" }</kbd></button>
                        }
                    </div>
                </section>
                <aside class="params">
                    <h2>{ "Parameters" }</h2>
                    <label class="block"><span class="label">{ "Temperature" }</span>
                        <input id="pg-temperature" placeholder="server default" value={form.temperature.clone()} oninput={on_text(set_form(|f, v| f.temperature = v))} /></label>
                    <label class="block"><span class="label">{ "Top p" }</span>
                        <input id="pg-top-p" placeholder="server default" value={form.top_p.clone()} oninput={on_text(set_form(|f, v| f.top_p = v))} /></label>
                    <label class="block"><span class="label">{ "Max tokens" }</span>
                        <input id="pg-max-tokens" placeholder="server default" value={form.max_tokens.clone()} oninput={on_text(set_form(|f, v| f.max_tokens = v))} /></label>
                    <label class="block"><span class="label">{ "Stop sequences (one per line)" }</span>
                        <textarea id="pg-stop-seq" rows="2" value={form.stop.clone()} oninput={on_text(set_form(|f, v| f.stop = v))} /></label>
                    <label class="block"><span class="label">{ "Seed" }</span>
                        <input id="pg-seed" placeholder="none" value={form.seed.clone()} oninput={on_text(set_form(|f, v| f.seed = v))} /></label>
                    <label class="block"><span class="label">{ "Response format" }</span>
                        <select id="pg-format" onchange={on_select(set_form(|f, v| f.format = v))}>
                            { for [("text", "text"), ("json_object", "JSON object"), ("json_schema", "JSON Schema")].iter().map(|(v, l)| html! {
                                <option value={*v} selected={form.format == *v}>{ *l }</option>
                            }) }
                        </select>
                    </label>
                    if form.format == "json_schema" {
                        <label class="block"><span class="label">{ "Schema name" }</span>
                            <input id="pg-schema-name" value={form.schema_name.clone()} oninput={on_text(set_form(|f, v| f.schema_name = v))} /></label>
                        <label class="block"><span class="label">{ "JSON Schema" }</span>
                            <textarea id="pg-schema" rows="6" placeholder="{\"type\": \"object\", …}" value={form.schema.clone()} oninput={on_text(set_form(|f, v| f.schema = v))} /></label>
                    }
                    <SaveVersion content={content.ok()} loaded={pg.draft.loaded.as_ref().map(|(p, _)| p.clone())} {on_saved} />
                </aside>
            </div>
            <section class="answer">
                <div class="answer-head">
                    <h2>{ "Answer" }</h2>{ status }
                    <span class="spacer" />
                    if pg.result.as_ref().is_some_and(|r| r.restored.is_some()) {
                        <label class="check"><input type="checkbox" id="pg-show-raw" checked={pg.show_raw} onchange={toggle_raw} />{ "show placeholders as sent" }</label>
                    }
                </div>
                <pre id="pg-output" class={classes!("output", running.then_some("streaming"))}>{ shown_output }</pre>
                if let Some(e) = &pg.error {
                    if e.kind != ErrorKind::Cancelled { <ErrorBox error={e.clone()} id="pg-error" /> }
                }
                if let Some(r) = &pg.result {
                    <Figures result={r.clone()} />
                    { notes(r) }
                }
            </section>
            <VariantColumns messages={messages.clone()} params={form.params()} variables={pg.draft.variables.clone()} />
            <History rev={pg.history_rev} onreopen={reopen} />
        </div>
    }
}

const ROLES: [Role; 4] = [Role::System, Role::Developer, Role::User, Role::Assistant];

/// What the call's figures do not say: redactions, unused variables, the structured check.
fn notes(r: &ChatResult) -> Html {
    let redacted = (!r.redacted.is_empty()).then(|| {
        let mut kinds: Vec<String> = r.redacted.iter().map(|e| e.placeholder.clone()).collect();
        kinds.dedup();
        html! {
            <div class="note info" id="pg-redacted">
                { format!("{} value(s) redacted before sending: {}. The answer is shown with them restored.", r.redacted.len(), kinds.join(", ")) }
            </div>
        }
    });
    let unused = (!r.unused_variables.is_empty()).then(|| html! {
        <div class="note warn" id="pg-unused">{ format!("Unused variables: {}", r.unused_variables.join(", ")) }</div>
    });
    let structured = r.structured.as_ref().map(|c| {
        if c.valid {
            html! { <div class="note ok" id="pg-structured">{ "Structured output: valid against the response format" }</div> }
        } else {
            html! {
                <div class="note danger" id="pg-structured">
                    { format!("Structured output: {} error(s)", c.errors.len()) }
                    <table class="grid compact">
                        <thead><tr><th>{ "Field" }</th><th>{ "Problem" }</th></tr></thead>
                        <tbody>
                            { for c.errors.iter().map(|e| html! {
                                <tr><td class="mono">{ if e.path.is_empty() { "(answer)".to_owned() } else { e.path.clone() } }</td><td>{ e.message.clone() }</td></tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        }
    });
    html! { <>{ for redacted }{ for unused }{ for structured }</> }
}
