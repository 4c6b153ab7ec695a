//! Playground columns: one input sent to several variants at once (the editor or a saved prompt
//! version, on any endpoint, with its own temperature), each answer streaming into its own
//! column with its figures.

use std::collections::BTreeMap;
use std::rc::Rc;

use milc_api::prompt::{variables_of, PromptPin};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError, ChatRequest, ChatResult, Message, Params};
use yew::prelude::*;

use crate::components::{on_select, on_text, ErrorBox, Figures};
use crate::hooks::{use_app, use_refusal};
use crate::ipc;

/// What a column sends: the editor's messages or a version's, on an endpoint.
#[derive(Clone, Default, PartialEq)]
struct Column {
    /// Stable while columns are added and removed around it.
    id: u64,
    /// Empty: the editor; else `NAME@N`.
    prompt: String,
    endpoint: String,
    temperature: String,
    /// The stream it is reading, by id: pieces and the end find their column by it, so
    /// removing a column mid-stream leaves the others' streams where they belong.
    run: Option<String>,
    output: String,
    result: Option<ChatResult>,
    error: Option<CallError>,
}

#[derive(Clone, Default, PartialEq)]
struct Columns {
    cols: Vec<Column>,
    next_id: u64,
}

enum Act {
    Add(String),
    Remove(u64),
    Set(u64, fn(&mut Column, String), String),
    Start(u64, String),
    Piece(String, String),
    Done(String, Result<ChatResult, CallError>),
    Fail(u64, CallError),
}

impl Columns {
    fn by_id(&mut self, id: u64) -> Option<&mut Column> {
        self.cols.iter_mut().find(|c| c.id == id)
    }

    fn by_run(&mut self, run: &str) -> Option<&mut Column> {
        self.cols.iter_mut().find(|c| c.run.as_deref() == Some(run))
    }
}

impl Reducible for Columns {
    type Action = Act;

    fn reduce(self: Rc<Self>, action: Act) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Act::Add(endpoint) => {
                s.cols.push(Column {
                    id: s.next_id,
                    endpoint,
                    ..Column::default()
                });
                s.next_id += 1;
            }
            Act::Remove(id) => s.cols.retain(|c| c.id != id),
            Act::Set(id, f, v) => {
                if let Some(c) = s.by_id(id) {
                    f(c, v);
                }
            }
            Act::Start(id, run) => {
                if let Some(c) = s.by_id(id) {
                    c.run = Some(run);
                    c.output.clear();
                    c.result = None;
                    c.error = None;
                }
            }
            Act::Piece(run, p) => {
                if let Some(c) = s.by_run(&run) {
                    c.output.push_str(&p);
                }
            }
            Act::Done(run, r) => {
                if let Some(c) = s.by_run(&run) {
                    c.run = None;
                    match r {
                        Ok(res) => {
                            c.output = res.output.clone();
                            c.result = Some(res);
                        }
                        Err(e) => c.error = Some(e),
                    }
                }
            }
            Act::Fail(id, e) => {
                if let Some(c) = s.by_id(id) {
                    c.error = Some(e);
                }
            }
        }
        Rc::new(s)
    }
}

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The editor's messages and parameters, and the variables typed.
    pub messages: Vec<Message>,
    pub params: Result<Params, CallError>,
    pub variables: BTreeMap<String, String>,
}

#[function_component]
pub fn VariantColumns(p: &Props) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let app = use_app();
    let cols = use_reducer(Columns::default);
    let error = use_state(|| None::<CallError>);
    let endpoints = app.usable_endpoints();
    let versions = app.version_refs();
    let add = {
        let (cols, first) = (cols.clone(), endpoints.first().cloned().unwrap_or_default());
        Callback::from(move |_: MouseEvent| cols.dispatch(Act::Add(first.clone())))
    };
    let send_all = {
        let (cols, error) = (cols.clone(), error.clone());
        let (messages, params, variables) =
            (p.messages.clone(), p.params.clone(), p.variables.clone());
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            for (i, col) in cols.cols.iter().enumerate() {
                if col.run.is_some() {
                    continue;
                }
                let (cols, error) = (cols.clone(), error.clone());
                let (col, messages, params, variables) = (
                    col.clone(),
                    messages.clone(),
                    params.clone(),
                    variables.clone(),
                );
                yew::platform::spawn_local(async move {
                    // The column's messages and parameters: the editor's, or its version's.
                    let (messages, mut params, pin) = if col.prompt.is_empty() {
                        match params {
                            Ok(p) => (messages, p, None),
                            Err(e) => return error.set(Some(e)),
                        }
                    } else {
                        match ipc::call(cmd::PromptsResolve {
                            reference: col.prompt.clone(),
                        })
                        .await
                        {
                            Ok(v) => {
                                let pin = PromptPin {
                                    prompt: v.prompt.clone(),
                                    version: v.version,
                                };
                                (v.content.messages, v.content.params, Some(pin))
                            }
                            Err(e) => return cols.dispatch(Act::Fail(col.id, e)),
                        }
                    };
                    match col.temperature.trim() {
                        "" => {}
                        t => match t.parse() {
                            Ok(t) => params.temperature = Some(t),
                            Err(_) => {
                                return error.set(Some(CallError::config(format!(
                                    "column {}: the temperature is a number",
                                    i + 1
                                ))))
                            }
                        },
                    }
                    let names = variables_of(&messages);
                    let mut request = ChatRequest::new(messages, params);
                    request.prompt = pin;
                    request.variables = names
                        .iter()
                        .filter_map(|n| variables.get(n).map(|v| (n.clone(), v.clone())))
                        .collect();
                    let run = format!("col-{i}-{:x}", (js_sys::Math::random() * 1e15) as u64);
                    cols.dispatch(Act::Start(col.id, run.clone()));
                    let (pieces, piece_run) = (cols.clone(), run.clone());
                    let result = ipc::call_with_channel(
                        |on_event| cmd::Chat {
                            endpoint: col.endpoint.clone(),
                            request,
                            run: run.clone(),
                            on_event,
                        },
                        move |p| pieces.dispatch(Act::Piece(piece_run.clone(), p)),
                    )
                    .await;
                    cols.dispatch(Act::Done(run, result));
                });
            }
        })
    };
    let set = |id: u64, f: fn(&mut Column, String)| {
        let cols = cols.clone();
        move |v: String| cols.dispatch(Act::Set(id, f, v))
    };
    let running = cols.cols.iter().any(|c| c.run.is_some());
    html! {
        <section class="panel variant-cols" id="pg-columns">
            <div class="row">
                <h2>{ "Variants side by side" }</h2>
                <span class="muted small">{ "The same variables, sent to every column at once." }</span>
                <span class="spacer" />
                <button class="small" id="pg-col-add" onclick={add}>{ "+ Column" }</button>
                if !cols.cols.is_empty() {
                    <button class="primary small" id="pg-send-all" title={refused_editor.clone()} onclick={send_all} disabled={running || refused_editor.is_some()}>{ "Send to all" }</button>
                }
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="pg-columns-error" /> }
            <div class="cols" style={format!("grid-template-columns: repeat({}, minmax(0, 1fr))", cols.cols.len().max(1))}>
                { for cols.cols.iter().enumerate().map(|(i, c)| {
                    // A column removed mid-stream stops its call; the others stream on.
                    let remove = {
                        let (cols, id, run) = (cols.clone(), c.id, c.run.clone());
                        Callback::from(move |_: MouseEvent| {
                            cols.dispatch(Act::Remove(id));
                            if let Some(run) = run.clone() {
                                yew::platform::spawn_local(async move {
                                    let _ = ipc::call(cmd::ChatCancel { run }).await;
                                });
                            }
                        })
                    };
                    let id = c.id;
                    html! {
                        <div class="col" key={id}>
                            <div class="row">
                                <select id={format!("pg-col-{i}-prompt")} onchange={on_select(set(id, |c, v| c.prompt = v))}>
                                    <option value="" selected={c.prompt.is_empty()}>{ "the editor" }</option>
                                    { for versions.iter().map(|v| html! { <option value={v.clone()} selected={*v == c.prompt}>{ v.clone() }</option> }) }
                                </select>
                                <select id={format!("pg-col-{i}-endpoint")} onchange={on_select(set(id, |c, v| c.endpoint = v))}>
                                    { for endpoints.iter().map(|e| html! { <option value={e.clone()} selected={*e == c.endpoint}>{ e.clone() }</option> }) }
                                </select>
                                <input class="narrow" id={format!("pg-col-{i}-temp")} placeholder="temp." value={c.temperature.clone()} oninput={on_text(set(id, |c, v| c.temperature = v))} />
                                <button class="ghost small" id={format!("pg-col-{i}-remove")} title="Remove this column" onclick={remove}>{ "✕" }</button>
                            </div>
                            <pre id={format!("pg-col-{i}-output")} class={classes!("output", c.run.is_some().then_some("streaming"))}>{ &c.output }</pre>
                            if let Some(e) = &c.error { <ErrorBox error={e.clone()} id={format!("pg-col-{i}-error")} /> }
                            if let Some(r) = &c.result { <Figures result={r.clone()} prefix={format!("pg-col-{i}-")} /> }
                        </div>
                    }
                }) }
            </div>
        </section>
    }
}
