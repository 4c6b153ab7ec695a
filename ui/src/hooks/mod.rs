//! Hooks shared by pages.

use milc_api::cmd;
use yew::prelude::*;

use crate::ipc;
use crate::state::{Action, AppContext};

/// The app state; panics only if a page is rendered outside `App`, a programming error.
#[hook]
pub fn use_app() -> AppContext {
    use_context::<AppContext>().expect("pages render inside the app's context provider")
}

/// Reloads the endpoint list into the app state.
pub fn refresh_endpoints(app: AppContext) {
    yew::platform::spawn_local(async move {
        match ipc::call(cmd::EndpointsList {}).await {
            Ok(eps) => app.dispatch(Action::Loaded(eps)),
            Err(e) => app.dispatch(Action::Failed(e)),
        }
    });
}

/// Reloads the prompt list into the app state.
pub fn refresh_prompts(app: AppContext) {
    yew::platform::spawn_local(async move {
        match ipc::call(cmd::PromptsList {}).await {
            Ok(p) => app.dispatch(Action::Prompts(p)),
            Err(e) => app.dispatch(Action::Failed(e)),
        }
    });
}
