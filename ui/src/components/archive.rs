//! The Archive button of an endpoint or a card: writes a compliance archive (`milc archive
//! create`) to the downloads folder with a progress bar, then names the file and its manifest.

use milc_api::lifecycle::{ArchiveReport, ArchiveScope};
use milc_api::{cmd, CallError};
use yew::prelude::*;

use super::ErrorBox;
use crate::ipc;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub scope: ArchiveScope,
    /// Prefix of the element ids (`{id}-button`, `{id}-progress`, `{id}-result`).
    pub id: AttrValue,
}

enum State {
    Idle,
    Writing(u64, u64),
    Done(Result<ArchiveReport, CallError>),
}

#[function_component]
pub fn ArchiveButton(p: &Props) -> Html {
    let state = use_state(|| State::Idle);
    let start = {
        let (state, scope) = (state.clone(), p.scope.clone());
        Callback::from(move |_: MouseEvent| {
            let (state, scope) = (state.clone(), scope.clone());
            state.set(State::Writing(0, 1));
            let progress = state.clone();
            yew::platform::spawn_local(async move {
                let r = ipc::call_with_channel(
                    |on_progress| cmd::ArchiveCreate {
                        scope,
                        path: String::new(),
                        on_progress,
                    },
                    move |(done, total): (u64, u64)| progress.set(State::Writing(done, total)),
                )
                .await;
                state.set(State::Done(r));
            });
        })
    };
    let id = &p.id;
    html! {
        <span class="archive">
            <button class="ghost small" id={format!("{id}-button")} onclick={start}
                disabled={matches!(*state, State::Writing(..))}>{ "Archive" }</button>
            { match &*state {
                State::Idle => html! {},
                State::Writing(done, total) => html! {
                    <progress id={format!("{id}-progress")} max={(*total).max(1).to_string()} value={done.to_string()} />
                },
                State::Done(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
                State::Done(Ok(r)) => html! {
                    <span class="note ok" id={format!("{id}-result")}>
                        { format!("Archived to {}: {} members, {} calls, manifest SHA-256 {}", r.path, r.manifest.members.len(), r.manifest.calls, &r.manifest_sha256[..12.min(r.manifest_sha256.len())]) }
                    </span>
                },
            } }
        </span>
    }
}
