//! Hooks shared by pages.

use milc_api::workspace::{Identity, MemberRole};
use milc_api::{cmd, CallError, Command};
use yew::prelude::*;

use crate::ipc;
use crate::state::{Action, AppContext};

/// The app state; panics only if a page is rendered outside `App`, a programming error.
#[hook]
pub fn use_app() -> AppContext {
    use_context::<AppContext>().expect("pages render inside the app's context provider")
}

/// Bumped each time the window gets the focus back: a page that adds it to what its reads
/// depend on shows what another member changed meanwhile.
#[hook]
pub fn use_focus() -> u64 {
    use_context::<AppContext>().map_or(0, |a| a.focus)
}

/// What a command answered: `None` until its first reply.
pub type Reply<C> = UseStateHandle<Option<Result<<C as Command>::Reply, CallError>>>;

/// The reply to `cmd`, asked when the component mounts and again whenever `cmd` changes.
#[hook]
pub fn use_ipc<C>(cmd: C) -> Reply<C>
where
    C: Command + Clone + PartialEq + 'static,
    C::Reply: 'static,
{
    use_ipc_with(cmd, ())
}

/// The reply to `cmd`, asked when the component mounts and again whenever `cmd` or `reload`
/// changes (a counter bumped after a change the reply should show) or the window gets the
/// focus back (another member may have changed it). The last value stays shown until the next
/// reply arrives.
#[hook]
pub fn use_ipc_with<C, D>(cmd: C, reload: D) -> Reply<C>
where
    C: Command + Clone + PartialEq + 'static,
    C::Reply: 'static,
    D: PartialEq + 'static,
{
    let reply = use_state(|| None);
    let focus = use_focus();
    {
        let reply = reply.clone();
        use_effect_with((cmd, reload, focus), move |(cmd, _, _)| {
            let cmd = cmd.clone();
            yew::platform::spawn_local(async move { reply.set(Some(ipc::call(cmd).await)) });
        });
    }
    reply
}

/// Reloads the endpoint list into the app state.
pub fn refresh_endpoints(app: AppContext) {
    yew::platform::spawn_local(async move {
        match ipc::call(cmd::EndpointsList {}).await {
            Ok(eps) => app.dispatch(Action::Loaded(eps)),
            Err(e) => app.dispatch(Action::Failed(e)),
        }
    });
}

/// Reloads the prompt list into the app state.
pub fn refresh_prompts(app: AppContext) {
    yew::platform::spawn_local(async move {
        match ipc::call(cmd::PromptsList {}).await {
            Ok(p) => app.dispatch(Action::Prompts(p)),
            Err(e) => app.dispatch(Action::Failed(e)),
        }
    });
}

/// Asks again which store is open and who you are (after your name changed, or on focus).
pub fn refresh_me(app: AppContext) {
    yew::platform::spawn_local(async move {
        app.dispatch(Action::Me(ipc::call(cmd::WhoAmI {}).await));
    });
}

/// Why the role you hold in the open team workspace may not do what needs `needs` (`None`: it
/// may, or this is the local file, or no role is known yet). The database refuses such a
/// change anyway; the window says so before the click.
pub fn refusal(me: Option<&Identity>, needs: MemberRole) -> Option<String> {
    let role = me?.role?;
    (role < needs).then(|| {
        format!(
            "Needs the {} role; yours here is {} ({}).",
            needs.as_str(),
            role.as_str(),
            role.may()
        )
    })
}

/// [`refusal`] for who you are in the window's store.
#[hook]
pub fn use_refusal(needs: MemberRole) -> Option<String> {
    let app = use_app();
    refusal(app.me.as_ref().and_then(|m| m.as_ref().ok()), needs)
}

#[cfg(test)]
mod tests {
    use milc_api::workspace::{Identity, MemberRole, Store};

    use super::refusal;

    fn me(store: Store, role: Option<MemberRole>) -> Identity {
        Identity {
            store,
            author: "ana".into(),
            login: role.map(|_| "ana".into()),
            role,
            warning: None,
        }
    }

    #[test]
    fn a_role_below_what_a_change_needs_is_told_why() {
        let team = || Store::Team {
            server: "postgres://ana@db/milc".into(),
            workspace: "team".into(),
        };
        let viewer = me(team(), Some(MemberRole::Viewer));
        let why = refusal(Some(&viewer), MemberRole::Editor).unwrap();
        assert_eq!(
            why,
            "Needs the editor role; yours here is viewer (viewers read only)."
        );
        let rater = me(team(), Some(MemberRole::Rater));
        assert_eq!(refusal(Some(&rater), MemberRole::Rater), None);
        assert!(refusal(Some(&rater), MemberRole::Admin).is_some());
        let editor = me(team(), Some(MemberRole::Editor));
        assert_eq!(refusal(Some(&editor), MemberRole::Editor), None);
        assert!(refusal(Some(&editor), MemberRole::Admin).is_some());
        // The local file, the workspace's owner, and not known yet: nothing is refused.
        let local = me(
            Store::Local {
                path: "milc.db".into(),
            },
            None,
        );
        assert_eq!(refusal(Some(&local), MemberRole::Admin), None);
        assert_eq!(refusal(Some(&me(team(), None)), MemberRole::Admin), None);
        assert_eq!(refusal(None, MemberRole::Admin), None);
    }
}
