//! A failure shown plainly: its kind, the HTTP status, and the upstream message.

use milc_api::CallError;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub error: CallError,
    #[prop_or_default]
    pub id: Option<AttrValue>,
}

#[function_component]
pub fn ErrorBox(p: &Props) -> Html {
    let e = &p.error;
    html! {
        <div class="error-box" role="alert" id={p.id.clone()}>
            <span class="badge danger kind">{ e.kind.as_str() }</span>
            if let Some(s) = e.status { <span class="badge status">{ format!("HTTP {s}") }</span> }
            <span class="message">{ &e.message }</span>
        </div>
    }
}
