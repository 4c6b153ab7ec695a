//! App-wide state: the endpoint and prompt lists every page shares and who you are, in a
//! reducer behind a context.

use std::rc::Rc;

use milc_api::prompt::PromptSummary;
use milc_api::workspace::Identity;
use milc_api::{CallError, Endpoint};
use yew::prelude::*;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppState {
    pub endpoints: Vec<Endpoint>,
    pub prompts: Vec<PromptSummary>,
    pub loaded: bool,
    /// The last failure to load the list.
    pub error: Option<CallError>,
    /// Bumped each time the window gets the focus back: what pages show is asked again, so a
    /// change another member made meanwhile appears.
    pub focus: u64,
    /// Which store is open and who you are in it (your name as writes and votes record it).
    pub me: Option<Result<Identity, CallError>>,
}

impl AppState {
    /// Every prompt version as `NAME@N`, newest first within each prompt.
    pub fn version_refs(&self) -> Vec<String> {
        self.prompts
            .iter()
            .flat_map(|p| (1..=p.latest).rev().map(move |v| format!("{}@{v}", p.name)))
            .collect()
    }

    /// The names of the endpoints that take calls (not retired).
    pub fn usable_endpoints(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .filter(|e| e.spec.status != milc_api::EndpointStatus::Retired)
            .map(|e| e.spec.name.clone())
            .collect()
    }
}

pub enum Action {
    Loaded(Vec<Endpoint>),
    Prompts(Vec<PromptSummary>),
    Failed(CallError),
    Focused,
    Me(Result<Identity, CallError>),
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Loaded(eps) => {
                next.endpoints = eps;
                next.loaded = true;
                next.error = None;
            }
            Action::Prompts(p) => next.prompts = p,
            Action::Failed(e) => next.error = Some(e),
            Action::Focused => next.focus += 1,
            Action::Me(me) => next.me = Some(me),
        }
        Rc::new(next)
    }
}

pub type AppContext = UseReducerHandle<AppState>;
