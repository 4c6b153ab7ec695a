//! The one typed way to reach the desktop shell: `invoke` through `window.__TAURI__.core` with a
//! request struct from `milc_api::cmd`, which names the command, carries its arguments and fixes
//! the reply's type; errors arrive as `CallError`.

use std::marker::PhantomData;

use milc_api::cmd::ChannelId;
use milc_api::{CallError, Command, ErrorKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["window", "__TAURI__", "core"], js_name = invoke, catch)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

fn local(message: impl ToString) -> CallError {
    CallError {
        kind: ErrorKind::Internal,
        message: message.to_string(),
        status: None,
    }
}

/// Sends `cmd` and waits for its reply.
pub async fn call<C: Command>(cmd: C) -> Result<C::Reply, CallError> {
    // Through JSON first: it writes integer map keys (a dataset edit's item numbers) as the
    // strings the shell reads, where a direct conversion would refuse them.
    let args = serde_json::to_value(&cmd)
        .map_err(local)?
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(local)?;
    match tauri_invoke(C::NAME, args).await {
        Ok(v) => serde_wasm_bindgen::from_value(v).map_err(local),
        Err(e) => Err(serde_wasm_bindgen::from_value::<CallError>(e.clone())
            .unwrap_or_else(|_| local(e.as_string().unwrap_or_else(|| format!("{e:?}"))))),
    }
}

/// Sends the command `make` builds around a new channel, handing each value the shell pushes
/// into the channel to `on_message` while the command runs; the channel lives until the reply.
pub async fn call_with_channel<C: Command, T: DeserializeOwned + 'static>(
    make: impl FnOnce(ChannelId<T>) -> C,
    on_message: impl FnMut(T) + 'static,
) -> Result<C::Reply, CallError> {
    let channel = Channel::new(on_message)?;
    let reply = call(make(channel.id.clone())).await;
    drop(channel);
    reply
}

/// A Tauri channel: the shell pushes `T`s into it while a command runs; values that do not
/// parse as `T` are dropped.
struct Channel<T> {
    id: ChannelId<T>,
    _js: JsValue,
    _on_message: Closure<dyn FnMut(JsValue)>,
    _event: PhantomData<fn(T)>,
}

impl<T: DeserializeOwned + 'static> Channel<T> {
    fn new(mut on_message: impl FnMut(T) + 'static) -> Result<Self, CallError> {
        let window: JsValue = web_sys::window().ok_or_else(|| local("no window"))?.into();
        let core = js_sys::Reflect::get(&window, &"__TAURI__".into())
            .and_then(|t| js_sys::Reflect::get(&t, &"core".into()))
            .map_err(|_| local("not running inside the desktop app"))?;
        let ctor: js_sys::Function = js_sys::Reflect::get(&core, &"Channel".into())
            .map_err(|_| local("the Tauri Channel is missing"))?
            .dyn_into()
            .map_err(|_| local("the Tauri Channel is not a constructor"))?;
        let js = js_sys::Reflect::construct(&ctor, &js_sys::Array::new())
            .map_err(|_| local("cannot open a channel"))?;
        let cb = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            if let Ok(t) = serde_wasm_bindgen::from_value(v) {
                on_message(t)
            }
        });
        js_sys::Reflect::set(&js, &"onmessage".into(), cb.as_ref())
            .map_err(|_| local("cannot listen on the channel"))?;
        // What `invoke` would send for the channel object itself: `__CHANNEL__:<id>`.
        let id = js_sys::Reflect::get(&js, &"toJSON".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .and_then(|f| f.call0(&js).ok())
            .and_then(|v| v.as_string())
            .ok_or_else(|| local("the Tauri Channel has no id"))?;
        Ok(Self {
            id: ChannelId::new(id),
            _js: js,
            _on_message: cb,
            _event: PhantomData,
        })
    }
}
