//! Budgets and alerts, evaluated as calls are logged: the writer names the endpoints whose calls
//! it just committed, and one task looks at those endpoints' rollups (a few rows per hour, never
//! the whole log). Each condition fires once per episode: a budget once per UTC day or month it
//! is crossed in; a cost spike or an error rate when it begins, resolved when it ends, and fired
//! again only if it begins again. New alerts are broadcast (the desktop shows a notification).

use std::collections::BTreeSet;
use std::time::Duration;

use milc_api::usage::{Alert, AlertKind, Reading};
use milc_api::{Cost, UsageSource};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::rollups::{day_of, hour_of, DAY_MS, HOUR_MS};
use super::storage;
use crate::db::{now_ms, DbConn, Result, Store};

/// Evaluations wait this long for more calls to come in, so a busy writer costs one evaluation
/// per pause rather than one per batch.
const SETTLE: Duration = Duration::from_millis(200);

enum Msg {
    Touched(Vec<i64>),
    Flush(oneshot::Sender<()>),
}

/// The handle on the evaluating task.
#[derive(Clone, Debug)]
pub struct Alerts {
    tx: mpsc::UnboundedSender<Msg>,
    fired: broadcast::Sender<Alert>,
}

impl Alerts {
    pub(crate) fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (fired, _) = broadcast::channel(64);
        tokio::spawn(run(store, rx, fired.clone()));
        Self { tx, fired }
    }

    /// Endpoints (0 = none) whose calls were just committed.
    pub(crate) fn touched(&self, endpoints: Vec<i64>) {
        let _ = self.tx.send(Msg::Touched(endpoints));
    }

    /// Waits until every call committed so far has been evaluated.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// New alerts as they fire.
    pub fn subscribe(&self) -> broadcast::Receiver<Alert> {
        self.fired.subscribe()
    }

    /// Broadcasts an alert fired elsewhere (no one listening is fine).
    pub(crate) fn announce(&self, alert: Alert) {
        let _ = self.fired.send(alert);
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>, fired: broadcast::Sender<Alert>) {
    let mut pending: BTreeSet<i64> = BTreeSet::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        if pending.is_empty() && waiting.is_empty() {
            deadline = tokio::time::Instant::now() + SETTLE;
        }
        // Wait for something, then for the writer to settle (unless someone waits on us).
        let first = if pending.is_empty() && waiting.is_empty() {
            match rx.recv().await {
                Some(m) => Some(m),
                None => return,
            }
        } else {
            // The pause counts from the first pending call, so a steady stream of calls is
            // evaluated every SETTLE, not only once it stops.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(m)) => Some(m),
                Ok(None) => return,
                Err(_) => None,
            }
        };
        let mut settled = first.is_none();
        let take = |m: Msg, pending: &mut BTreeSet<i64>, waiting: &mut Vec<_>| match m {
            Msg::Touched(eps) => pending.extend(eps),
            Msg::Flush(tx) => waiting.push(tx),
        };
        if let Some(m) = first {
            take(m, &mut pending, &mut waiting);
        }
        while let Ok(m) = rx.try_recv() {
            take(m, &mut pending, &mut waiting);
        }
        if !waiting.is_empty() || tokio::time::Instant::now() >= deadline {
            settled = true;
        }
        if settled {
            if !pending.is_empty() {
                let eps = std::mem::take(&mut pending);
                let evaluated = match store.read().await {
                    Ok(mut c) => evaluate(&mut c, &eps, now_ms()).await,
                    Err(e) => Err(e),
                };
                match evaluated {
                    Ok(new) => {
                        for a in new {
                            let _ = fired.send(a);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "alert evaluation failed"),
                }
            }
            for w in waiting.drain(..) {
                let _ = w.send(());
            }
        }
    }
}

fn month_of(ms: i64) -> (i64, String) {
    use chrono::Datelike;
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let start = t
        .date_naive()
        .with_day(1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or(ms);
    (start, t.format("%Y-%m").to_string())
}

fn usd(pico_usd: i64) -> Cost {
    Cost {
        pico_usd,
        source: UsageSource::Reported,
    }
}

/// Exact cost per 1,000 tokens in pico-USD (0 without tokens).
fn per_1k(cost: i64, tokens: i64) -> i64 {
    if tokens == 0 {
        0
    } else {
        (i128::from(cost) * 1000 / i128::from(tokens)) as i64
    }
}

/// One rule's reading for one endpoint (0 = all).
pub(crate) struct Condition {
    pub key: String,
    pub kind: AlertKind,
    pub endpoint: i64,
    pub on: bool,
    pub value: Reading,
    pub threshold: Reading,
    /// A budget: one alert per key (its period), never resolved.
    pub per_period: bool,
    pub message: String,
}

/// A condition's episode: fire a new one, resolve the open one, or nothing.
pub(crate) async fn episode(c: &mut DbConn, cond: Condition, now: i64) -> Result<Option<Alert>> {
    let Condition {
        key,
        kind,
        endpoint,
        on,
        value,
        threshold,
        per_period,
        message,
    } = cond;
    match (on, storage::open_alert(c, &key, per_period).await?) {
        (true, None) => {
            let Some(id) =
                storage::insert_alert(c, &key, kind, endpoint, &message, (value, threshold), now)
                    .await?
            else {
                return Ok(None);
            };
            Ok(Some(Alert {
                id,
                kind,
                endpoint: storage::endpoint_name(c, endpoint).await?,
                message,
                value,
                threshold,
                fired_ms: now,
                resolved_ms: None,
                acked_ms: None,
            }))
        }
        (false, Some(id)) if !per_period => {
            storage::resolve_alert(c, id, now).await?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Evaluates every rule for `endpoints` (and the overall budget) at `now`; returns what fired.
pub(crate) async fn evaluate(
    c: &mut DbConn,
    endpoints: &BTreeSet<i64>,
    now: i64,
) -> Result<Vec<Alert>> {
    let s = storage::alert_settings(c).await?;
    let mut fired = Vec::new();
    let (day, (month, month_name)) = (day_of(now), month_of(now));
    let day_name = chrono::DateTime::from_timestamp_millis(now)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let end = hour_of(now) + HOUR_MS;
    let mut scopes: BTreeSet<i64> = endpoints.clone();
    scopes.insert(0);
    for &ep in &scopes {
        let who = match storage::endpoint_name(c, ep).await? {
            Some(n) => n,
            None if ep == 0 => "all endpoints".to_owned(),
            None => continue,
        };
        let budget = storage::budget(c, ep).await?;
        if let Some((daily, monthly)) = budget {
            for (limit, from, kind, period) in [
                (daily, day, AlertKind::BudgetDaily, &day_name),
                (monthly, month, AlertKind::BudgetMonthly, &month_name),
            ] {
                let Some(limit) = limit else { continue };
                let (spent, ..) = storage::sums(c, true, ep, from, end).await?;
                // The limit is part of the episode: a budget changed mid-period alerts again
                // when the new limit is crossed.
                let key = format!("{}:{ep}:{period}:{limit}", kind.as_str());
                let what = if kind == AlertKind::BudgetDaily {
                    "daily"
                } else {
                    "monthly"
                };
                let condition = Condition {
                    key,
                    kind,
                    endpoint: ep,
                    on: spent >= limit,
                    value: Reading::Usd(usd(spent)),
                    threshold: Reading::Usd(usd(limit)),
                    per_period: true,
                    message: format!(
                        "{who}: ${} spent in {period}, over the {what} budget of ${}",
                        usd(spent).usd(),
                        usd(limit).usd()
                    ),
                };
                if let Some(a) = episode(c, condition, now).await? {
                    fired.push(a);
                }
            }
        }
        if ep == 0 {
            continue;
        }
        // The recent window: this UTC hour and the one before (60 to 120 minutes); the
        // baseline: the 7 whole UTC days before today.
        let (cost, tokens, calls, errors) =
            storage::sums(c, false, ep, end - 2 * HOUR_MS, end).await?;
        let (base_cost, base_tokens, ..) =
            storage::sums(c, true, ep, day - 7 * DAY_MS, day).await?;
        // cost / tokens > factor × base cost / base tokens, cross-multiplied in integers (the
        // factor in thousandths): money never goes through a float.
        let factor_milli = (s.spike_factor * 1000.0).round() as i128;
        let spike = calls as u64 >= s.min_calls
            && base_tokens > 0
            && tokens > 0
            && i128::from(cost) * i128::from(base_tokens) * 1000
                > i128::from(base_cost) * i128::from(tokens) * factor_milli;
        let (now_rate, base_rate) = (per_1k(cost, tokens), per_1k(base_cost, base_tokens));
        let limit = (i128::from(base_rate) * factor_milli / 1000) as i64;
        let condition = Condition {
            key: format!("cost_spike:{ep}"),
            kind: AlertKind::CostSpike,
            endpoint: ep,
            on: spike,
            value: Reading::UsdPer1k(usd(now_rate)),
            threshold: Reading::UsdPer1k(usd(limit)),
            per_period: false,
            message: format!(
                "{who}: ${} per 1K tokens since the previous hour began, over {}× the 7-day \
                 baseline of ${}",
                usd(now_rate).usd(),
                s.spike_factor,
                usd(base_rate).usd()
            ),
        };
        if let Some(a) = episode(c, condition, now).await? {
            fired.push(a);
        }
        let rate = if calls == 0 {
            0.0
        } else {
            errors as f64 / calls as f64
        };
        let failing = calls as u64 >= s.min_calls && rate > s.error_rate;
        let condition = Condition {
            key: format!("error_rate:{ep}"),
            kind: AlertKind::ErrorRate,
            endpoint: ep,
            on: failing,
            value: Reading::Rate(rate),
            threshold: Reading::Rate(s.error_rate),
            per_period: false,
            message: format!(
                "{who}: {:.0} % of {calls} calls failed since the previous hour began (threshold {:.0} %)",
                rate * 100.0,
                s.error_rate * 100.0
            ),
        };
        if let Some(a) = episode(c, condition, now).await? {
            fired.push(a);
        }
    }
    Ok(fired)
}
