//! Drift: an endpoint's, a prompt version's or a route's recent window against a baseline
//! window. Each figure shows baseline, current, the change and a test suited to it (Mann–Whitney
//! for latency, length, cost and scores; two proportions for error and refusal rates). Watches
//! are checked by `check_drift` (the CLI's `drift check`, `schedule run-due`, the open window);
//! drift beyond the threshold raises an alert once per episode.

pub mod storage;

use milc_api::lifecycle::{
    DriftFigure, DriftKind, DriftPoint, DriftQuery, DriftReport, DriftSettings, DriftWatch,
};
use milc_api::run::ItemResult;
use milc_api::usage::{Alert, AlertKind, Reading};
use milc_eval::drift::{mann_whitney, two_proportions};
use milc_eval::stats::quantile;

use crate::calllog::alerts::Condition;
use crate::db::now_ms;
use crate::{Console, Error};
use storage::{CallFacts, Subject};

/// Fewer observations than this on either side: the figure is shown, not tested.
pub const MIN_OBSERVATIONS: usize = 10;
const DAY_MS: i64 = 86_400_000;

impl Console {
    pub async fn drift_settings(&self) -> Result<DriftSettings, Error> {
        Ok(storage::settings(&mut self.store.read().await?).await?)
    }

    /// Changes how drift is judged: a threshold above 0, a significance level in (0, 0.5],
    /// refusal phrases that are not blank.
    pub async fn set_drift_settings(&self, mut s: DriftSettings) -> Result<DriftSettings, Error> {
        if !(s.threshold > 0.0 && s.threshold.is_finite()) {
            return Err(Error::invalid(
                "threshold",
                "a relative change above 0, e.g. 0.25",
            ));
        }
        if !(s.alpha > 0.0 && s.alpha <= 0.5) {
            return Err(Error::invalid(
                "alpha",
                "a significance level above 0, at most 0.5",
            ));
        }
        s.refusal_phrases = s
            .refusal_phrases
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        storage::set_settings(&mut self.store.read().await?, &s).await?;
        self.noted("drift_settings.set", "drift").await?;
        Ok(s)
    }

    /// Compares the query's window with its baseline (by default the window just before it).
    pub async fn drift(&self, q: &DriftQuery) -> Result<DriftReport, Error> {
        if q.until_ms <= q.since_ms {
            return Err(Error::invalid("window", "must end after it starts"));
        }
        let baseline = q
            .baseline
            .unwrap_or((q.since_ms - (q.until_ms - q.since_ms), q.since_ms));
        if baseline.1 <= baseline.0 {
            return Err(Error::invalid("baseline", "must end after it starts"));
        }
        let settings = self.drift_settings().await?;
        let version = match q.kind {
            DriftKind::Prompt => Some(self.resolve_prompt(&q.subject).await?),
            _ => None,
        };
        let endpoint_id = match q.kind {
            DriftKind::Endpoint => Some(self.endpoint(&q.subject).await?.id),
            _ => None,
        };
        // One connection from here on (asking the pool for a second while holding one can
        // leave every connection waiting).
        let mut c = self.store.read().await?;
        let subject = match (q.kind, endpoint_id, &version) {
            (DriftKind::Endpoint, Some(id), _) => Subject::Endpoint(id),
            (DriftKind::Prompt, _, Some(v)) => Subject::PromptVersion(
                crate::db::prompt_version_id(&mut c, &v.prompt, v.version)
                    .await?
                    .ok_or_else(|| Error::invalid("prompt", format!("no {}", q.subject)))?,
            ),
            _ => Subject::Route(storage::route_id(&mut c, &q.subject).await?),
        };
        let base = storage::calls(&mut c, &subject, baseline.0, baseline.1).await?;
        let now = storage::calls(&mut c, &subject, q.since_ms, q.until_ms).await?;
        let endpoint = (q.kind == DriftKind::Endpoint).then_some(q.subject.as_str());
        let base_scores =
            storage::scheduled_results(&mut c, &subject, endpoint, baseline.0, baseline.1).await?;
        let now_scores =
            storage::scheduled_results(&mut c, &subject, endpoint, q.since_ms, q.until_ms).await?;
        drop(c);

        let mut figures = call_figures(&base, &now, &settings);
        figures.extend(score_figures(&base_scores, &now_scores, &settings));
        let series = daily(base.iter().chain(&now));
        Ok(DriftReport {
            query: q.clone(),
            baseline,
            drifted: figures.iter().any(|f| f.drifted),
            figures,
            series,
        })
    }

    /// Watches a subject's drift over `window_ms` windows (a watch on the same subject gets
    /// the new window).
    pub async fn watch_drift(
        &self,
        kind: DriftKind,
        subject: &str,
        window_ms: i64,
    ) -> Result<DriftWatch, Error> {
        if window_ms < 60_000 {
            return Err(Error::invalid("window", "at least one minute"));
        }
        // The subject must exist now.
        let probe = DriftQuery {
            kind,
            subject: subject.to_owned(),
            since_ms: 1,
            until_ms: 2,
            baseline: Some((0, 1)),
        };
        self.drift(&probe).await?;
        let id = storage::put_watch(
            &mut self.store.read().await?,
            kind,
            subject,
            window_ms,
            now_ms(),
        )
        .await?;
        self.noted("drift.watch", subject).await?;
        Ok(DriftWatch {
            id,
            kind,
            subject: subject.to_owned(),
            window_ms,
        })
    }

    pub async fn drift_watches(&self) -> Result<Vec<DriftWatch>, Error> {
        Ok(storage::watches(&mut self.store.read().await?).await?)
    }

    pub async fn unwatch_drift(&self, id: i64) -> Result<(), Error> {
        if storage::remove_watch(&mut self.store.read().await?, id).await? {
            self.noted("drift.unwatch", &format!("#{id}")).await
        } else {
            Err(Error::invalid("watch", format!("no drift watch #{id}")))
        }
    }

    /// Checks every watch over its latest window: a figure that drifted fires an alert when
    /// its episode begins (once), and one that came back resolves it. Answers each report and
    /// the alerts fired now.
    pub async fn check_drift(&self) -> Result<(Vec<DriftReport>, Vec<Alert>), Error> {
        self.log.flush().await;
        let now = now_ms();
        let threshold = self.drift_settings().await?.threshold;
        let mut reports = Vec::new();
        let mut fired = Vec::new();
        for w in self.drift_watches().await? {
            let q = DriftQuery {
                kind: w.kind,
                subject: w.subject.clone(),
                since_ms: now - w.window_ms,
                until_ms: now,
                baseline: None,
            };
            let report = match self.drift(&q).await {
                Ok(r) => r,
                // A subject removed since is skipped, not fatal for the other watches.
                Err(e) => {
                    tracing::warn!(watch = w.id, error = %e, "drift watch skipped");
                    continue;
                }
            };
            let endpoint = match w.kind {
                DriftKind::Endpoint => self.endpoint(&w.subject).await.map_or(0, |e| e.id),
                _ => 0,
            };
            for f in &report.figures {
                let cond = Condition {
                    key: format!("drift:{}:{}:{}", w.kind.as_str(), w.subject, f.metric),
                    kind: AlertKind::Drift,
                    endpoint,
                    on: f.drifted,
                    value: Reading::Rate(f.change.unwrap_or(0.0)),
                    threshold: Reading::Rate(threshold),
                    per_period: false,
                    message: describe(w.kind, &w.subject, f),
                };
                if let Some(a) = self.log.condition(cond).await? {
                    fired.push(a);
                }
            }
            reports.push(report);
        }
        Ok((reports, fired))
    }
}

/// An alert's text: `endpoint 'X': latency p50 +45 % (812 → 1180), p = 0.0001`.
fn describe(kind: DriftKind, subject: &str, f: &DriftFigure) -> String {
    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
    format!(
        "{} '{subject}': {} {:+.0} % ({} → {}), p = {}",
        kind.as_str(),
        f.metric,
        f.change.unwrap_or(0.0) * 100.0,
        num(f.baseline),
        num(f.current),
        f.p_value.map_or("–".to_owned(), |p| format!("{p:.2e}")),
    )
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn relative(base: Option<f64>, now: Option<f64>) -> Option<f64> {
    match (base, now) {
        (Some(b), Some(n)) if b != 0.0 => Some((n - b) / b),
        _ => None,
    }
}

/// A figure compared by Mann–Whitney: `summary` of each side (a median, a p95, a mean).
fn by_ranks(
    metric: &str,
    base: &[f64],
    now: &[f64],
    summary: impl Fn(&[f64]) -> Option<f64>,
    s: &DriftSettings,
) -> DriftFigure {
    let (b, n) = (sorted(base.to_vec()), sorted(now.to_vec()));
    let (bv, nv) = (summary(&b), summary(&n));
    let tested = b.len() >= MIN_OBSERVATIONS && n.len() >= MIN_OBSERVATIONS;
    let p = tested.then(|| mann_whitney(&n, &b)).flatten().map(|t| t.p);
    finish(
        metric,
        bv,
        nv,
        relative(bv, nv),
        "mann-whitney",
        p,
        (b.len(), n.len()),
        s,
    )
}

/// A rate compared by the two-proportion z-test.
fn by_proportions(
    metric: &str,
    (bk, bn): (u64, u64),
    (nk, nn): (u64, u64),
    s: &DriftSettings,
) -> DriftFigure {
    let rate = |k: u64, n: u64| (n > 0).then(|| k as f64 / n as f64);
    let (bv, nv) = (rate(bk, bn), rate(nk, nn));
    let tested = bn as usize >= MIN_OBSERVATIONS && nn as usize >= MIN_OBSERVATIONS;
    let p = tested
        .then(|| two_proportions(nk, nn, bk, bn))
        .flatten()
        .map(|t| t.p);
    // A rate that rises from zero has no relative change: any significant rise is drift.
    let change = match (bv, nv) {
        (Some(b), Some(n)) if b == 0.0 && n > 0.0 => Some(f64::INFINITY),
        _ => relative(bv, nv),
    };
    finish(
        metric,
        bv,
        nv,
        change,
        "two-proportion",
        p,
        (bn as usize, nn as usize),
        s,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    metric: &str,
    baseline: Option<f64>,
    current: Option<f64>,
    change: Option<f64>,
    test: &str,
    p: Option<f64>,
    (bn, nn): (usize, usize),
    s: &DriftSettings,
) -> DriftFigure {
    let significant = p.is_some_and(|p| p < s.alpha);
    DriftFigure {
        metric: metric.to_owned(),
        baseline,
        current,
        change: change.filter(|c| c.is_finite()),
        test: if p.is_some() { test } else { "none" }.to_owned(),
        p_value: p,
        significant,
        drifted: significant && change.is_some_and(|c| c.abs() >= s.threshold),
        baseline_n: bn as u64,
        current_n: nn as u64,
    }
}

fn is_refusal(text: &str, phrases: &[String]) -> bool {
    let t = text.to_lowercase();
    phrases.iter().any(|p| t.contains(&p.to_lowercase()))
}

fn call_figures(base: &[CallFacts], now: &[CallFacts], s: &DriftSettings) -> Vec<DriftFigure> {
    let ok = |v: &[CallFacts], f: &dyn Fn(&CallFacts) -> Option<f64>| -> Vec<f64> {
        v.iter().filter(|c| !c.failed).filter_map(f).collect()
    };
    let latency = |c: &CallFacts| Some(c.latency_ms as f64);
    let tokens = |c: &CallFacts| c.completion_tokens.map(|t| t as f64);
    let cost = |c: &CallFacts| c.cost_pico_usd.map(|p| p as f64 / 1e6);
    let q = |q: f64| move |v: &[f64]| (!v.is_empty()).then(|| quantile(v, q));
    let errors = |v: &[CallFacts]| (v.iter().filter(|c| c.failed).count() as u64, v.len() as u64);
    let refusals = |v: &[CallFacts]| {
        let answered: Vec<&str> = v.iter().filter_map(|c| c.answer.as_deref()).collect();
        let k = answered
            .iter()
            .filter(|a| is_refusal(a, &s.refusal_phrases))
            .count();
        (k as u64, answered.len() as u64)
    };
    vec![
        by_ranks(
            "latency p50 (ms)",
            &ok(base, &latency),
            &ok(now, &latency),
            q(0.5),
            s,
        ),
        by_ranks(
            "latency p95 (ms)",
            &ok(base, &latency),
            &ok(now, &latency),
            q(0.95),
            s,
        ),
        by_ranks(
            "output tokens",
            &ok(base, &tokens),
            &ok(now, &tokens),
            mean,
            s,
        ),
        by_proportions("error rate", errors(base), errors(now), s),
        by_proportions("refusal rate", refusals(base), refusals(now), s),
        by_ranks(
            "cost per call (µ$)",
            &ok(base, &cost),
            &ok(now, &cost),
            mean,
            s,
        ),
    ]
}

/// One figure per score the scheduled evaluations of both windows share.
fn score_figures(base: &[String], now: &[String], s: &DriftSettings) -> Vec<DriftFigure> {
    let scores = |rows: &[String]| {
        let mut out: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for r in rows {
            if let Ok(item) = serde_json::from_str::<ItemResult>(r) {
                for (k, v) in item.scores {
                    out.entry(k).or_default().push(v);
                }
            }
        }
        out
    };
    let (b, n) = (scores(base), scores(now));
    b.iter()
        .filter_map(|(metric, bv)| {
            n.get(metric)
                .map(|nv| by_ranks(&format!("score {metric}"), bv, nv, mean, s))
        })
        .collect()
}

/// The subject's figures per UTC day, for the chart over time.
fn daily<'a>(calls: impl Iterator<Item = &'a CallFacts>) -> Vec<DriftPoint> {
    let mut days: std::collections::BTreeMap<i64, Vec<&CallFacts>> = Default::default();
    for c in calls {
        days.entry(c.at_ms.div_euclid(DAY_MS) * DAY_MS)
            .or_default()
            .push(c);
    }
    days.into_iter()
        .map(|(day, v)| {
            let ok: Vec<&&CallFacts> = v.iter().filter(|c| !c.failed).collect();
            let lat = sorted(ok.iter().map(|c| c.latency_ms as f64).collect());
            let tok: Vec<f64> = ok
                .iter()
                .filter_map(|c| c.completion_tokens.map(|t| t as f64))
                .collect();
            DriftPoint {
                day_ms: day,
                calls: v.len() as u64,
                latency_p50_ms: (!lat.is_empty()).then(|| quantile(&lat, 0.5)),
                output_tokens: mean(&tok),
                error_rate: Some((v.len() - ok.len()) as f64 / v.len() as f64),
            }
        })
        .collect()
}
