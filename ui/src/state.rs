//! App-wide state: the endpoint list every page shares, in a reducer behind a context.

use std::rc::Rc;

use milc_api::{CallError, Endpoint};
use yew::prelude::*;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppState {
    pub endpoints: Vec<Endpoint>,
    pub loaded: bool,
    /// The last failure to load the list.
    pub error: Option<CallError>,
}

pub enum Action {
    Loaded(Vec<Endpoint>),
    Failed(CallError),
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
            Action::Failed(e) => next.error = Some(e),
        }
        Rc::new(next)
    }
}

pub type AppContext = UseReducerHandle<AppState>;
