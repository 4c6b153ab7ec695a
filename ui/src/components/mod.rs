//! Reusable parts of pages.

mod archive;
pub mod chart;
mod error_box;
mod figures;
mod identity;

pub use archive::ArchiveButton;
pub use error_box::ErrorBox;
pub use figures::Figures;
pub use identity::{IdentityBadge, RoleBanner};

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

/// A state handle's setter, for `on_text` / `on_select`.
pub fn setter(s: &UseStateHandle<String>) -> impl Fn(String) + 'static {
    let s = s.clone();
    move |v| s.set(v)
}

/// An `onchange` handler for a `<select>`.
pub fn on_select(set: impl Fn(String) + 'static) -> Callback<Event> {
    Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
}

/// An `onchange` handler for a file input: reads the chosen file as text and hands its name and
/// text to `then`.
pub fn on_file_text(then: impl Fn(String, String) + 'static) -> Callback<Event> {
    let then = std::rc::Rc::new(then);
    Callback::from(move |e: Event| {
        let input: HtmlInputElement = e.target_unchecked_into();
        let Some(f) = input.files().and_then(|l| l.get(0)) else {
            return;
        };
        let then = then.clone();
        yew::platform::spawn_local(async move {
            if let Ok(v) = wasm_bindgen_futures::JsFuture::from(f.text()).await {
                then(f.name(), v.as_string().unwrap_or_default());
            }
        });
    })
}

/// A UTC date as a date input gives it (`2026-11-01`) → ms since the epoch.
pub fn date_ms(s: &str) -> Option<i64> {
    let ms = js_sys::Date::parse(&format!("{s}T00:00:00Z"));
    (!ms.is_nan()).then_some(ms as i64)
}

/// A time as the user's clock shows it, sortable: `2026-11-28 14:03:07`.
pub fn local_time(at_ms: i64) -> String {
    let when = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
    when.to_locale_string("sv-SE", &wasm_bindgen::JsValue::UNDEFINED)
        .into()
}

/// The first line of a text, cut to `n` characters.
pub fn gist(text: &str, n: usize) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if line.chars().count() > n {
        format!(
            "{}…",
            line.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    } else {
        line.to_owned()
    }
}
