//! The window's routes: one per page (the frame in `app` maps each to its page).

use serde::{Deserialize, Serialize};
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Routable)]
pub enum Route {
    #[at("/")]
    Playground,
    #[at("/prompts")]
    Prompts,
    #[at("/datasets")]
    Datasets,
    #[at("/runs")]
    Runs,
    #[at("/compare")]
    Compare,
    #[at("/usage")]
    Usage,
    #[at("/routes")]
    Routes,
    #[at("/endpoints")]
    Endpoints,
    #[at("/calls")]
    Calls,
    #[at("/lifecycle")]
    Lifecycle,
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// Where a jump from another page lands, as the page's query: `#/runs?run=7`,
/// `#/compare?comparison=NAME`, `#/prompts?prompt=NAME&version=2`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Jump {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// The jump the current page was opened with (empty when it was opened from the menu).
#[hook]
pub fn use_jump() -> Jump {
    use_location()
        .and_then(|l| l.query::<Jump>().ok())
        .unwrap_or_default()
}

/// A callback that opens `route` at `jump`.
pub fn jump_to(navigator: Option<Navigator>, route: Route, jump: Jump) -> Callback<MouseEvent> {
    Callback::from(move |_: MouseEvent| {
        if let Some(n) = &navigator {
            let _ = n.push_with_query(&route, &jump);
        }
    })
}
