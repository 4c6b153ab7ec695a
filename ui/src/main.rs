//! MILC Console's window: Yew function components over the typed IPC wrapper in `ipc`. Knows only
//! `milc-api`; every action is a command of the desktop shell.

mod app;
mod components;
mod hooks;
mod ipc;
mod pages;
mod route;
mod state;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
