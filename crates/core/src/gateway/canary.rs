//! The canary judge over the store: each arm's calls and feedback since the canary started,
//! judged by `milc_eval::canary`, and what a verdict does — rollback (candidate weight → 0) or
//! promote (candidate → 100 %, and the `production` label moves to its prompt version, recorded
//! in the label history) — each recorded as an event of the route.

use milc_api::gateway::{CanarySpec, CanaryState, Route, Verdict};

use super::storage;
use crate::db;
use crate::{Console, Error};

/// What a person or the judge does to a route's canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Rollback,
    Promote,
}

fn canary_of(route: &Route) -> Result<&CanarySpec, Error> {
    route.spec.canary.as_ref().ok_or_else(|| {
        Error::invalid(
            "route",
            format!(
                "route '{}' has no canary (add [route.canary] to it)",
                route.spec.model
            ),
        )
    })
}

impl Console {
    /// Rolls the canary of route `model` back (its candidate takes no more traffic).
    pub async fn rollback(&self, model: &str, actor: &str, reason: &str) -> Result<Route, Error> {
        self.apply_canary(model, Action::Rollback, actor, reason, None)
            .await
    }

    /// Promotes the canary of route `model`: the candidate takes all traffic, and where it
    /// names a prompt version the `production` label moves to it.
    pub async fn promote(&self, model: &str, actor: &str, reason: &str) -> Result<Route, Error> {
        self.apply_canary(model, Action::Promote, actor, reason, None)
            .await
    }

    pub(crate) async fn apply_canary(
        &self,
        model: &str,
        action: Action,
        actor: &str,
        reason: &str,
        verdict: Option<&Verdict>,
    ) -> Result<Route, Error> {
        let route = self.route(model).await?;
        let canary = canary_of(&route)?;
        // The candidate's prompt version, resolved before the write: the label moves to the
        // version the candidate has been serving.
        let promoted = match (
            action,
            route.spec.arms.iter().find(|a| a.name == canary.candidate),
        ) {
            (Action::Promote, Some(arm)) => match &arm.prompt {
                Some(p) => Some(self.resolve_prompt(p).await?),
                None => None,
            },
            _ => None,
        };
        let mut tx = self.store.write().await?;
        let (weights, state, kind): (Vec<(&str, f64)>, _, _) = match action {
            Action::Rollback => (
                vec![(canary.candidate.as_str(), 0.0)],
                CanaryState::RolledBack,
                "rollback",
            ),
            Action::Promote => (
                route
                    .spec
                    .arms
                    .iter()
                    .map(|a| {
                        let w = if a.name == canary.candidate {
                            100.0
                        } else {
                            0.0
                        };
                        (a.name.as_str(), w)
                    })
                    .collect(),
                CanaryState::Promoted,
                "promote",
            ),
        };
        storage::set_weights(&mut tx, route.id, &weights).await?;
        storage::set_canary_state(&mut tx, route.id, state).await?;
        let mut reason = reason.to_owned();
        if let Some(v) = &promoted {
            let moved =
                crate::prompts::storage::set_label(&mut tx, &v.prompt, v.version, "production")
                    .await?;
            if moved.is_some() {
                reason.push_str(&format!("; production → {}@{}", v.prompt, v.version));
            }
        }
        storage::insert_event(&mut tx, route.id, kind, actor, &reason, verdict).await?;
        db::commit(tx).await?;
        tracing::info!(route = model, action = kind, actor, reason, "canary");
        self.route(model).await
    }
}
