//! The canary judge over the store: each arm's calls and feedback since the canary started,
//! judged by `milc_eval::canary`, and what a verdict does — rollback (candidate weight → 0) or
//! promote (candidate → 100 %, and the `production` label moves to its prompt version, recorded
//! in the label history) — each recorded as an event of the route.

use milc_api::gateway::{
    ArmFigures, CanarySpec, CanaryState, CanaryStatus, Decision, Route, Verdict,
};
use milc_api::usage::AlertKind;
use milc_api::{Cost, UsageSource};
use milc_eval::canary::{judge, ArmSample, JudgeConfig};
use milc_eval::stats::quantile;

use super::storage::{self, ArmCall};
use crate::db::{self, now_ms};
use crate::{Console, Error};

/// The window a route without a running canary is shown over.
const RECENT_MS: i64 = 3_600_000;

/// One arm's figures from its calls and feedback scores.
fn figures(arm: &str, weight: f64, calls: &[&ArmCall], feedback: &[f64]) -> ArmFigures {
    let errors = calls.iter().filter(|c| !c.ok).count() as u64;
    let ok: Vec<&&ArmCall> = calls.iter().filter(|c| c.ok).collect();
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let lat = sorted(ok.iter().map(|c| c.latency_ms as f64).collect());
    let ttft = sorted(
        ok.iter()
            .filter_map(|c| c.ttft_ms.map(|t| t as f64))
            .collect(),
    );
    let q = |v: &[f64], p: f64| (!v.is_empty()).then(|| quantile(v, p));
    let costed: Vec<&&&ArmCall> = ok.iter().filter(|c| c.cost_pico_usd.is_some()).collect();
    let cost_per_call = (!costed.is_empty()).then(|| {
        let total: i64 = costed.iter().filter_map(|c| c.cost_pico_usd).sum();
        let reported = costed.iter().all(|c| c.usage_reported == Some(true));
        Cost {
            pico_usd: total / costed.len() as i64,
            source: if reported {
                UsageSource::Reported
            } else {
                UsageSource::Estimated
            },
        }
    });
    ArmFigures {
        arm: arm.to_owned(),
        weight,
        calls: calls.len() as u64,
        errors,
        error_rate: if calls.is_empty() {
            0.0
        } else {
            errors as f64 / calls.len() as f64
        },
        p50_ms: q(&lat, 0.5),
        p95_ms: q(&lat, 0.95),
        ttft_p50_ms: q(&ttft, 0.5),
        ttft_p95_ms: q(&ttft, 0.95),
        cost_per_call,
        feedback_mean: (!feedback.is_empty())
            .then(|| feedback.iter().sum::<f64>() / feedback.len() as f64),
        feedback_n: feedback.len() as u64,
    }
}

/// What the judge reads of one arm.
fn sample(arm: &str, calls: &[ArmCall], feedback: &[(String, f64)]) -> ArmSample {
    let mine: Vec<&ArmCall> = calls.iter().filter(|c| c.arm == arm).collect();
    ArmSample {
        assigned: mine.iter().filter(|c| !c.fallback).count() as u64,
        calls: mine.len() as u64,
        errors: mine.iter().filter(|c| !c.ok).count() as u64,
        latencies_ms: mine
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.latency_ms as f64)
            .collect(),
        costs_usd: mine
            .iter()
            .filter(|c| c.ok)
            .filter_map(|c| c.cost_pico_usd.map(|p| p as f64 / 1e12))
            .collect(),
        feedback: feedback
            .iter()
            .filter(|(a, _)| a == arm)
            .map(|(_, s)| *s)
            .collect(),
    }
}

fn config(c: &CanarySpec) -> JudgeConfig {
    JudgeConfig {
        min_calls: c.min_calls,
        promote_after: c.promote_after,
        guardrails: c.guardrails,
        ..JudgeConfig::default()
    }
}

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
    /// Each arm's live figures (since the canary started, else over the last hour), the
    /// verdict on the canary now (its p-values no higher than at the judge's last look), and
    /// the canary's events, newest first.
    pub async fn canary_status(&self, model: &str) -> Result<CanaryStatus, Error> {
        let route = self.route(model).await?;
        let mut c = self.store.read().await?;
        let since = route
            .canary_started_ms
            .unwrap_or_else(|| now_ms() - RECENT_MS);
        let calls = storage::arm_calls(&mut c, route.id, since).await?;
        let feedback = storage::arm_feedback(&mut c, route.id, since).await?;
        let arms = route
            .spec
            .arms
            .iter()
            .map(|a| {
                let mine: Vec<&ArmCall> = calls.iter().filter(|c| c.arm == a.name).collect();
                let scores: Vec<f64> = feedback
                    .iter()
                    .filter(|(x, _)| *x == a.name)
                    .map(|(_, s)| *s)
                    .collect();
                figures(&a.name, a.weight, &mine, &scores)
            })
            .collect();
        let verdict = match &route.spec.canary {
            Some(canary) => {
                let prev = storage::last_verdict(&mut c, route.id).await?;
                let weight = |name: &str| {
                    route
                        .spec
                        .arms
                        .iter()
                        .find(|a| a.name == name)
                        .map_or(0.0, |a| a.weight)
                };
                Some(judge(
                    &sample(&canary.baseline, &calls, &feedback),
                    &sample(&canary.candidate, &calls, &feedback),
                    (weight(&canary.baseline), weight(&canary.candidate)),
                    &config(canary),
                    prev.as_ref(),
                ))
            }
            None => None,
        };
        let events = storage::events(&mut c, route.id, 50).await?;
        Ok(CanaryStatus {
            route,
            arms,
            verdict,
            events,
        })
    }

    /// Whether this process takes the judge's next look at route `model`: yes unless a look
    /// was taken in the last `every` by any process on this store. Gateways of one fleet each
    /// run the judge's clock and ask first, so each look (and what its verdict does) is taken
    /// once for the fleet.
    pub async fn claim_canary_look(
        &self,
        model: &str,
        every: std::time::Duration,
    ) -> Result<bool, Error> {
        Ok(storage::claim_look(
            &mut self.store.read().await?,
            model,
            now_ms(),
            every.as_millis() as i64,
        )
        .await?)
    }

    /// One look of the judge at route `model`'s running canary: the verdict is kept (its
    /// p-values carry to the next look) and acted on as the route says — rolled back or
    /// promoted (an event, an alert, a desktop notification), or, with `on_fail = "alert"` /
    /// `on_pass = "hold"`, only raised. `None` when the route has no running canary.
    pub async fn judge_canary(&self, model: &str) -> Result<Option<Verdict>, Error> {
        let status = self.canary_status(model).await?;
        let (Some(canary), Some(CanaryState::Running), Some(verdict)) = (
            status.route.spec.canary.as_ref(),
            status.route.canary_state,
            status.verdict,
        ) else {
            return Ok(None);
        };
        let id = status.route.id;
        let prev = storage::last_verdict(&mut self.store.read().await?, id).await?;
        storage::set_last_verdict(&mut self.store.read().await?, id, &verdict).await?;
        let first_time = prev.is_none_or(|p| p.decision != verdict.decision);
        use milc_api::gateway::{OnFail, OnPass};
        let what = match verdict.decision {
            Decision::Continue => return Ok(Some(verdict)),
            Decision::Rollback if canary.on_fail == OnFail::Rollback => {
                self.apply_canary(
                    model,
                    Action::Rollback,
                    "judge",
                    &verdict.reason,
                    Some(&verdict),
                )
                .await?;
                "rolled back"
            }
            Decision::Promote if canary.on_pass == OnPass::Promote => {
                self.apply_canary(
                    model,
                    Action::Promote,
                    "judge",
                    &verdict.reason,
                    Some(&verdict),
                )
                .await?;
                "promoted"
            }
            // Only raised, once per change of verdict.
            _ if !first_time => return Ok(Some(verdict)),
            Decision::SplitBroken => {
                let mut tx = self.store.write().await?;
                storage::insert_event(
                    &mut tx,
                    id,
                    "split_broken",
                    "judge",
                    &verdict.reason,
                    Some(&verdict),
                )
                .await?;
                db::commit(tx).await?;
                "split is broken"
            }
            Decision::Rollback => "should be rolled back",
            Decision::Promote => "could be promoted",
        };
        let message = format!(
            "route {model}: canary {} {what} — {}",
            canary.candidate, verdict.reason
        );
        let worst_p = verdict.guardrails.iter().map(|e| e.p).fold(1.0, f64::min);
        self.log
            .raise(AlertKind::Canary, &message, worst_p, 0.05)
            .await?;
        Ok(Some(verdict))
    }

    /// Rolls the canary of route `model` back (its candidate takes no more traffic).
    pub async fn rollback(&self, model: &str, actor: &str, reason: &str) -> Result<Route, Error> {
        let route = self
            .apply_canary(model, Action::Rollback, actor, reason, None)
            .await?;
        self.noted("canary.rollback", model).await?;
        Ok(route)
    }

    /// Promotes the canary of route `model`: the candidate takes all traffic, and where it
    /// names a prompt version the `production` label moves to it.
    pub async fn promote(&self, model: &str, actor: &str, reason: &str) -> Result<Route, Error> {
        let route = self
            .apply_canary(model, Action::Promote, actor, reason, None)
            .await?;
        self.noted("canary.promote", model).await?;
        Ok(route)
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
            let moved = crate::prompts::storage::set_label(
                &mut tx,
                &v.prompt,
                v.version,
                "production",
                &self.author(),
            )
            .await?;
            if moved.is_some() {
                reason.push_str(&format!("; production → {}@{}", v.prompt, v.version));
            }
        }
        storage::insert_event(&mut tx, route.id, kind, actor, &reason, verdict).await?;
        db::commit(tx).await?;
        self.gateway_changed();
        tracing::info!(route = model, action = kind, actor, reason, "canary");
        self.route(model).await
    }
}
