//! The canary judge's clock: every route with a running canary is judged every `every_s`
//! seconds, off the request path, from what the store holds (so it sees the calls of every
//! gateway writing to it). Each gateway of a fleet runs this clock; the one that claims a look
//! in the store takes it, so a verdict is taken once for the fleet. What a verdict does is the
//! console's (`judge_canary`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use milc_api::gateway::CanaryState;
use tokio_util::sync::CancellationToken;

use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut looked: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let routes = match shared.console.routes().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "canary judge: cannot read routes");
                continue;
            }
        };
        for r in routes {
            let (Some(c), Some(CanaryState::Running)) = (&r.spec.canary, r.canary_state) else {
                continue;
            };
            let due = looked
                .get(&r.spec.model)
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(c.every_s));
            if !due {
                continue;
            }
            looked.insert(r.spec.model.clone(), Instant::now());
            let every = Duration::from_secs(c.every_s);
            match shared.console.claim_canary_look(&r.spec.model, every).await {
                Ok(true) => {}
                Ok(false) => continue, // another gateway of the fleet took this look
                Err(e) => {
                    tracing::warn!(route = r.spec.model, error = %e, "canary judge: cannot claim");
                    continue;
                }
            }
            match shared.console.judge_canary(&r.spec.model).await {
                Ok(Some(v)) => tracing::debug!(
                    route = r.spec.model,
                    decision = v.decision.as_str(),
                    "canary judged"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(route = r.spec.model, error = %e, "canary judge failed"),
            }
        }
    }
}
