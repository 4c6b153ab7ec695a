//! The sample project's banner: on a fresh workspace it offers "Open with a sample project";
//! once loaded it says so and takes it away on request. Opening it fills every page and puts
//! the candidate prompt version, with a ticket filled in, in the Playground.

use milc_api::{cmd, CallError};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::ErrorBox;
use crate::hooks::{refresh_endpoints, refresh_prompts, use_app, use_ipc_with};
use crate::ipc;
use crate::pages::playground::{open_version_with, PlaygroundContext};
use crate::route::Route;

#[function_component]
pub fn SampleBanner() -> Html {
    let rev = use_state(|| 0u32);
    let state = use_ipc_with(cmd::DemoStateGet {}, *rev);
    let busy = use_state(|| false);
    let dismissed = use_state(|| false);
    let error = use_state(|| None::<CallError>);
    let app = use_app();
    let pg = use_context::<PlaygroundContext>().expect("the app provides the playground state");
    let navigator = use_navigator();

    let open = {
        let (rev, busy, error, app, pg, navigator) = (
            rev.clone(),
            busy.clone(),
            error.clone(),
            app.clone(),
            pg.clone(),
            navigator.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (rev, busy, error, app, pg, navigator) = (
                rev.clone(),
                busy.clone(),
                error.clone(),
                app.clone(),
                pg.clone(),
                navigator.clone(),
            );
            busy.set(true);
            yew::platform::spawn_local(async move {
                let done = async {
                    let s = ipc::call(cmd::DemoLoad {}).await?;
                    let v = ipc::call(cmd::PromptsResolve {
                        reference: format!("{}:candidate", s.prompt),
                    })
                    .await?;
                    let (_, items) = ipc::call(cmd::DatasetsItems {
                        reference: s.dataset.clone(),
                        offset: 0,
                        limit: 1,
                    })
                    .await?;
                    Ok::<_, CallError>((v, items))
                };
                match done.await {
                    Ok((v, items)) => {
                        let vars = items.into_iter().next().map(|i| i.vars).unwrap_or_default();
                        refresh_endpoints(app.clone());
                        refresh_prompts(app);
                        open_version_with(&pg, &v, vars);
                        if let Some(n) = &navigator {
                            n.push(&Route::Playground);
                        }
                        error.set(None);
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
                rev.set(*rev + 1);
            });
        })
    };
    let remove = {
        let (rev, busy, error, app) = (rev.clone(), busy.clone(), error.clone(), app.clone());
        Callback::from(move |_: MouseEvent| {
            let (rev, busy, error, app) = (rev.clone(), busy.clone(), error.clone(), app.clone());
            busy.set(true);
            yew::platform::spawn_local(async move {
                let r = ipc::call(cmd::DemoRemove {}).await;
                if r.is_ok() {
                    refresh_endpoints(app.clone());
                    refresh_prompts(app);
                }
                error.set(r.err());
                busy.set(false);
                rev.set(*rev + 1);
            });
        })
    };
    let dismiss = {
        let dismissed = dismissed.clone();
        Callback::from(move |_: MouseEvent| dismissed.set(true))
    };

    let banner = match &*state {
        Some(Ok(s)) if s.offer && !*dismissed => html! {
            <div class="sample-banner row" id="sample-offer">
                <span>{ "New here? Open a sample project — a support-ticket summarizer with two prompt versions, fifty tickets, finished runs, a comparison to rate and a week of usage — and every page shows what it is for." }</span>
                <span class="spacer" />
                <button id="sample-open" class="primary" disabled={*busy} onclick={open}>
                    { if *busy { "Opening…" } else { "Open with a sample project" } }
                </button>
                <button id="sample-dismiss" onclick={dismiss}>{ "Start empty" }</button>
            </div>
        },
        Some(Ok(s)) if s.loaded => html! {
            <div class="sample-banner row muted" id="sample-loaded">
                <span>{ "Sample project loaded: everything named “sample” is part of it." }</span>
                <span class="spacer" />
                <button id="sample-remove" disabled={*busy} onclick={remove}>{ "Remove sample project" }</button>
            </div>
        },
        _ => html! {},
    };
    html! {
        <>
            { banner }
            if let Some(e) = &*error { <ErrorBox error={e.clone()} /> }
        </>
    }
}
