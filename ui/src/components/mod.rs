//! Reusable parts of pages.

mod error_box;
mod figures;

pub use error_box::ErrorBox;
pub use figures::Figures;

use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// An `oninput` handler that hands the input's (or textarea's) new value to `set`.
pub fn on_text(set: impl Fn(String) + 'static) -> Callback<InputEvent> {
    Callback::from(move |e: InputEvent| {
        let target = e.target();
        let value = target
            .as_ref()
            .and_then(|t| wasm_bindgen::JsCast::dyn_ref::<HtmlInputElement>(t).map(|i| i.value()))
            .or_else(|| {
                target.as_ref().and_then(|t| {
                    wasm_bindgen::JsCast::dyn_ref::<HtmlTextAreaElement>(t).map(|t| t.value())
                })
            })
            .unwrap_or_default();
        set(value)
    })
}

/// An `onchange` handler for a `<select>`.
pub fn on_select(set: impl Fn(String) + 'static) -> Callback<Event> {
    Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
}
