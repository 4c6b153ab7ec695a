//! The window's routes: one per page (the frame in `app` maps each to its page).

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
    #[not_found]
    #[at("/404")]
    NotFound,
}
