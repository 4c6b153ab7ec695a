//! Which store the window has open and who you are there, at the foot of the navigation: the
//! local file or a team workspace (its server and name), your name as writes record it, and in
//! a workspace your database login and role. A click opens the dialog to change them: open a
//! team workspace (its password goes to the OS keyring; the window reopens on it), go back to
//! the local file, or set your name; and the store's recent changes, each with who made it.

use milc_api::workspace::{Identity, MemberRole, Store};
use milc_api::{cmd, CallError};
use yew::prelude::*;

use crate::components::{local_time, on_text, setter, ErrorBox};
use crate::hooks::{refresh_me, use_app, use_ipc_with};
use crate::ipc;

#[function_component]
pub fn IdentityBadge() -> Html {
    let app = use_app();
    let open = use_state(|| false);
    let id = match app.me.clone() {
        None => return html! {},
        Some(Err(e)) => return html! { <ErrorBox error={e} id="whoami-error" /> },
        Some(Ok(id)) => id,
    };
    let (place, title) = match &id.store {
        Store::Local { path } => ("Local file".to_owned(), path.clone()),
        Store::Team { server, workspace } => (
            format!("Team: {workspace}"),
            format!("workspace '{workspace}' on {server}"),
        ),
    };
    let role = id
        .role
        .map(|r| format!(" · {}", r.as_str()))
        .unwrap_or_default();
    let toggle = {
        let open = open.clone();
        Callback::from(move |_: MouseEvent| open.set(!*open))
    };
    // A focusable block rather than a <button>: WebKit's WebDriver reads no text inside one.
    let on_key = {
        let open = open.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" || e.key() == " " {
                e.prevent_default();
                open.set(!*open);
            }
        })
    };
    let changed = Callback::from(move |_| refresh_me(app.clone()));
    html! {
        <div class="identity">
            <div id="whoami" class="identity-badge" role="button" tabindex="0" {title}
                onclick={toggle} onkeydown={on_key}>
                <span id="whoami-store">{ place }</span>
                <span id="whoami-user" class="muted">{ format!("{}{role}", id.author) }</span>
            </div>
            if let Some(w) = &id.warning {
                <div id="whoami-warning" class="note danger">{ w }</div>
            }
            if *open { <IdentityDialog id={id.clone()} on_changed={changed} /> }
        </div>
    }
}

fn article(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Editor | MemberRole::Admin => "an",
        MemberRole::Viewer | MemberRole::Rater => "a",
    }
}

/// Above every page in a team workspace where your role may not change everything: which role
/// you hold and what it may do (the buttons it may not use are disabled, saying why).
#[function_component]
pub fn RoleBanner() -> Html {
    let app = use_app();
    let Some(Ok(id)) = &app.me else {
        return html! {};
    };
    let (Some(role), Store::Team { workspace, .. }) = (id.role, &id.store) else {
        return html! {};
    };
    if role == MemberRole::Admin {
        return html! {};
    }
    html! {
        <div id="role-banner" class="note info">
            { format!("You are {} {} in workspace '{workspace}': {}.", article(role), role.as_str(), role.may()) }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct DialogProps {
    id: Identity,
    on_changed: Callback<()>,
}

#[function_component]
fn IdentityDialog(p: &DialogProps) -> Html {
    let (url, workspace, password) = match &p.id.store {
        Store::Team { server, workspace } => (server.clone(), workspace.clone(), String::new()),
        Store::Local { .. } => (String::new(), "main".to_owned(), String::new()),
    };
    let url = use_state(|| url);
    let workspace = use_state(|| workspace);
    let password = use_state(|| password);
    let author = use_state(|| p.id.author.clone());
    let recent = use_ipc_with(cmd::ActivityList { limit: 8 }, ());
    let error = use_state(|| None::<CallError>);
    let busy = use_state(|| false);
    let open_team = {
        let (url, workspace, password, error, busy) = (
            url.clone(),
            workspace.clone(),
            password.clone(),
            error.clone(),
            busy.clone(),
        );
        Callback::from(move |_| {
            let c = cmd::WorkspaceOpen {
                url: (*url).clone(),
                workspace: (*workspace).clone(),
                password: Some((*password).clone()).filter(|p| !p.is_empty()),
            };
            let (error, busy) = (error.clone(), busy.clone());
            busy.set(true);
            yew::platform::spawn_local(async move {
                // On success the window reopens on the workspace: no reply to show.
                if let Err(e) = ipc::call(c).await {
                    error.set(Some(e));
                }
                busy.set(false);
            });
        })
    };
    let local = {
        let error = error.clone();
        Callback::from(move |_| {
            let error = error.clone();
            yew::platform::spawn_local(async move {
                if let Err(e) = ipc::call(cmd::WorkspaceLocal {}).await {
                    error.set(Some(e));
                }
            });
        })
    };
    let save_author = {
        let (author, error, changed) = (author.clone(), error.clone(), p.on_changed.clone());
        Callback::from(move |_| {
            let (c, error, changed) = (
                cmd::AuthorSet {
                    name: (*author).clone(),
                },
                error.clone(),
                changed.clone(),
            );
            yew::platform::spawn_local(async move {
                match ipc::call(c).await {
                    Ok(_) => {
                        error.set(None);
                        changed.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    let login =
        p.id.login
            .as_ref()
            .map(|l| {
                let role =
                    p.id.role
                        .map_or("no role".to_owned(), |r| r.as_str().to_owned());
                format!("signed in as {l} ({role})")
            })
            .unwrap_or_default();
    html! {
        <div id="workspace-dialog" class="identity-dialog card">
            <h2>{ "Who you are" }</h2>
            <label class="label" for="ws-author">{ "Your name, as your changes and votes are recorded" }</label>
            <div class="inline">
                <input id="ws-author" value={(*author).clone()} oninput={on_text(setter(&author))} />
                <button id="ws-author-save" class="small" onclick={save_author}>{ "Save" }</button>
            </div>
            if !login.is_empty() { <div class="muted">{ login }</div> }
            <h2>{ "Team workspace" }</h2>
            <label class="label" for="ws-url">{ "Server (postgres://USER@HOST/DB, no password)" }</label>
            <input id="ws-url" placeholder="postgres://ana@db.example.com/milc" value={(*url).clone()} oninput={on_text(setter(&url))} />
            <label class="label" for="ws-name">{ "Workspace" }</label>
            <input id="ws-name" value={(*workspace).clone()} oninput={on_text(setter(&workspace))} />
            <label class="label" for="ws-password">{ "Password (kept in the OS keyring)" }</label>
            <input id="ws-password" type="password" value={(*password).clone()} oninput={on_text(setter(&password))} />
            <div class="inline">
                <button id="ws-open" class="primary" disabled={*busy} onclick={open_team}>{ "Open workspace" }</button>
                if matches!(p.id.store, Store::Team { .. }) {
                    <button id="ws-local" onclick={local}>{ "Use the local file" }</button>
                }
            </div>
            if let Some(e) = &*error { <ErrorBox error={e.clone()} id="ws-error" /> }
            if let Some(Ok(list)) = &*recent {
                <h2>{ "Recent changes" }</h2>
                <ul id="ws-activity" class="activity">
                    { for list.iter().map(|a| html! {
                        <li title={local_time(a.at_ms)}>
                            <b>{ &a.author }</b>{ " " }{ &a.action }{ " " }<span class="muted">{ &a.subject }</span>
                        </li>
                    }) }
                </ul>
            }
        </div>
    }
}
