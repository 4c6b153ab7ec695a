//! The frame: navigation, routes and the app context.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::{IdentityBadge, RoleBanner};
use crate::hooks::{refresh_endpoints, refresh_me, refresh_prompts};
use crate::pages::{
    Calls, Compare, Datasets, Endpoints, Lifecycle, Playground, PlaygroundState, Prompts, Routes,
    Runs, SampleBanner, Usage,
};
use crate::route::Route;
use crate::state::AppState;

fn switch(route: Route) -> Html {
    match route {
        Route::Playground => html! { <Playground /> },
        Route::Prompts => html! { <Prompts /> },
        Route::Datasets => html! { <Datasets /> },
        Route::Runs => html! { <Runs /> },
        Route::Compare => html! { <Compare /> },
        Route::Usage => html! { <Usage /> },
        Route::Routes => html! { <Routes /> },
        Route::Endpoints => html! { <Endpoints /> },
        Route::Calls => html! { <Calls /> },
        Route::Lifecycle => html! { <Lifecycle /> },
        Route::NotFound => html! { <Redirect<Route> to={Route::Playground} /> },
    }
}

#[function_component]
pub fn App() -> Html {
    let app = use_reducer(AppState::default);
    let playground = use_reducer(PlaygroundState::default);
    {
        let app = app.clone();
        use_effect_with((), move |_| {
            refresh_endpoints(app.clone());
            refresh_prompts(app.clone());
            refresh_me(app.clone());
            yew::platform::spawn_local(async {
                let _ = crate::ipc::call(milc_api::cmd::UiReady {}).await;
            });
            // Back in the window: what it shows is asked again (another member may have
            // changed it meanwhile).
            let on_focus = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
                app.dispatch(crate::state::Action::Focused);
                refresh_endpoints(app.clone());
                refresh_prompts(app.clone());
                refresh_me(app.clone());
            });
            let window = web_sys::window();
            if let Some(w) = &window {
                use wasm_bindgen::JsCast;
                let _ =
                    w.add_event_listener_with_callback("focus", on_focus.as_ref().unchecked_ref());
            }
            move || {
                if let Some(w) = window {
                    use wasm_bindgen::JsCast;
                    let _ = w.remove_event_listener_with_callback(
                        "focus",
                        on_focus.as_ref().unchecked_ref(),
                    );
                }
            }
        });
    }
    html! {
        <ContextProvider<UseReducerHandle<AppState>> context={app}>
        <ContextProvider<UseReducerHandle<PlaygroundState>> context={playground}>
            <HashRouter>
                <div class="frame">
                    <Nav />
                    <main class="content">
                        <RoleBanner />
                        <SampleBanner />
                        <Switch<Route> render={switch} />
                    </main>
                </div>
            </HashRouter>
        </ContextProvider<UseReducerHandle<PlaygroundState>>>
        </ContextProvider<UseReducerHandle<AppState>>>
    }
}

#[function_component]
fn Nav() -> Html {
    let route = use_route::<Route>().unwrap_or(Route::Playground);
    let navigator = use_navigator();
    // Alt+1…9 switch pages from anywhere.
    {
        use_effect_with((), move |_| {
            let listener = navigator.map(|nav| {
                let cb = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::KeyboardEvent)>::new(
                    move |e: web_sys::KeyboardEvent| {
                        if !e.alt_key() {
                            return;
                        }
                        let to = match e.key().as_str() {
                            "1" => Route::Playground,
                            "2" => Route::Prompts,
                            "3" => Route::Datasets,
                            "4" => Route::Runs,
                            "5" => Route::Compare,
                            "6" => Route::Usage,
                            "7" => Route::Endpoints,
                            "8" => Route::Calls,
                            "9" => Route::Routes,
                            "0" => Route::Lifecycle,
                            _ => return,
                        };
                        e.prevent_default();
                        nav.push(&to);
                    },
                );
                let doc = web_sys::window().and_then(|w| w.document());
                if let Some(doc) = &doc {
                    use wasm_bindgen::JsCast;
                    let _ = doc
                        .add_event_listener_with_callback("keydown", cb.as_ref().unchecked_ref());
                }
                (doc, cb)
            });
            move || {
                if let Some((Some(doc), cb)) = listener {
                    use wasm_bindgen::JsCast;
                    let _ = doc.remove_event_listener_with_callback(
                        "keydown",
                        cb.as_ref().unchecked_ref(),
                    );
                }
            }
        });
    }
    let link = |to: Route, label: &str, key: &str, id: &str| {
        let class = classes!("nav-link", (route == to).then_some("active"));
        html! {
            <Link<Route> {to} classes={class}>
                <span id={id.to_owned()}>{ label.to_owned() }</span><kbd>{ key.to_owned() }</kbd>
            </Link<Route>>
        }
    };
    html! {
        <nav class="nav">
            <div class="brand">
                <img src="icon.png" alt="" />
                <span>{ "MILC Console" }</span>
            </div>
            { link(Route::Playground, "Playground", "Alt 1", "nav-playground") }
            { link(Route::Prompts, "Prompts", "Alt 2", "nav-prompts") }
            { link(Route::Datasets, "Datasets", "Alt 3", "nav-datasets") }
            { link(Route::Runs, "Runs", "Alt 4", "nav-runs") }
            { link(Route::Compare, "Compare", "Alt 5", "nav-compare") }
            { link(Route::Usage, "Usage", "Alt 6", "nav-usage") }
            { link(Route::Endpoints, "Endpoints", "Alt 7", "nav-endpoints") }
            { link(Route::Calls, "Calls", "Alt 8", "nav-calls") }
            { link(Route::Routes, "Routes", "Alt 9", "nav-routes") }
            { link(Route::Lifecycle, "Lifecycle", "Alt 0", "nav-lifecycle") }
            <div class="nav-spacer"></div>
            <IdentityBadge />
        </nav>
    }
}
