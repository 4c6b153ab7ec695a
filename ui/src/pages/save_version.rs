//! "Save as new version": the editor's messages AND parameters (and endpoint) become a new
//! version of an existing prompt, or version 1 of a new one. Identical content adds nothing.

use milc_api::prompt::{NewVersion, PromptContent, PromptPin, PromptVersion};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError};
use yew::prelude::*;

use crate::components::{on_text, ErrorBox};
use crate::hooks::{use_app, use_refusal};
use crate::ipc;

#[derive(Properties, PartialEq)]
pub struct Props {
    /// The editor's content, `None` while a parameter does not parse.
    pub content: Option<PromptContent>,
    /// The version the editor was loaded from: its prompt is the default name.
    pub loaded: Option<PromptPin>,
    pub on_saved: Callback<PromptVersion>,
}

#[function_component]
pub fn SaveVersion(p: &Props) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let app = use_app();
    let name = use_state(|| {
        p.loaded
            .as_ref()
            .map(|l| l.prompt.clone())
            .unwrap_or_default()
    });
    let note = use_state(String::new);
    let outcome = use_state(|| None::<Result<String, CallError>>);
    {
        // Loading another prompt makes it the default name.
        let name = name.clone();
        use_effect_with(p.loaded.as_ref().map(|l| l.prompt.clone()), move |loaded| {
            if let Some(l) = loaded {
                name.set(l.clone());
            }
        });
    }
    let exists = app.prompts.iter().any(|x| x.name == name.trim());
    let onclick = {
        let (name, note, outcome, content, on_saved) = (
            name.clone(),
            note.clone(),
            outcome.clone(),
            p.content.clone(),
            p.on_saved.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let Some(content) = content.clone() else {
                return outcome.set(Some(Err(CallError::config("fix the parameters first"))));
            };
            let version = NewVersion {
                prompt: name.trim().to_owned(),
                description: (!exists).then(String::new),
                content,
                note: (*note).clone(),
            };
            let (outcome, note, on_saved) = (outcome.clone(), note.clone(), on_saved.clone());
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::PromptsSave {
                    version,
                    create: !exists,
                })
                .await
                {
                    Ok(saved) => {
                        let v = &saved.version;
                        outcome.set(Some(Ok(if saved.created {
                            format!("Saved {}@{}", v.prompt, v.version)
                        } else {
                            format!("Unchanged: identical to {}@{}", v.prompt, v.version)
                        })));
                        note.set(String::new());
                        on_saved.emit(saved.version);
                    }
                    Err(e) => outcome.set(Some(Err(e))),
                }
            });
        })
    };
    html! {
        <div class="save-version panel">
            <h2>{ "Save as new version" }</h2>
            <label class="block"><span class="label">{ "Prompt" }</span>
                <input id="pg-save-name" list="pg-prompt-names" placeholder="new or existing name" value={(*name).clone()}
                    oninput={{ let name = name.clone(); on_text(move |v| name.set(v)) }} />
                <datalist id="pg-prompt-names">
                    { for app.prompts.iter().map(|x| html! { <option value={x.name.clone()} /> }) }
                </datalist>
            </label>
            <label class="block"><span class="label">{ "What changed and why" }</span>
                <input id="pg-save-note" value={(*note).clone()} oninput={{ let note = note.clone(); on_text(move |v| note.set(v)) }} />
            </label>
            <button id="pg-save" title={refused_editor.clone()} {onclick} disabled={name.trim().is_empty() || refused_editor.is_some()}>
                { if exists || name.trim().is_empty() { "Save version" } else { "Create prompt" } }
            </button>
            { match &*outcome {
                Some(Ok(text)) => html! { <div class="note ok" id="pg-save-result">{ text.clone() }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="pg-save-error" /> },
                None => html! {},
            } }
        </div>
    }
}
