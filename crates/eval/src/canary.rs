//! The canary judge of a gateway that splits live traffic between a baseline arm and a candidate
//! arm (say 90/10): given what each arm did since the canary started, say whether to keep going,
//! roll back, promote, or distrust the split itself. Pure functions, no I/O; the method, its
//! defaults and its measured error rates are in docs/CANARY.md, the formulas in METRICS.md
//! ("Canary judgement").
//!
//! The gateway asks every few seconds, so every test here is sequential: an mSPRT (Johari,
//! Pekelis & Walsh, "Always Valid Inference", 2022) whose p-value stays valid however often it is
//! read, and an always-valid interval for feedback. Rules of [`judge`], in order:
//!
//! 1. **Split first.** Pearson χ² of the arms' assigned counts against the weights; p below
//!    `srm_alpha` → [`Decision::SplitBroken`], whatever the metrics say (a broken split makes
//!    every comparison suspect). Not checked while a weight is 0 or fewer than 100 requests were
//!    assigned.
//! 2. **Wait for data.** Fewer than `min_calls` candidate calls → [`Decision::Continue`]. The
//!    figures are filled; the sequential tests start at `min_calls` (their normal approximation
//!    is not trusted on a handful of calls, and skipping looks never costs validity).
//! 3. **Guardrails**, one-sided (only "candidate worse" counts), each an mSPRT at level α/3
//!    (Bonferroni over the three): breach when the running p ≤ α/3, i.e. Λ ≥ 3/α at some look
//!    with the estimate on the worse side of θ₀.
//!    - error rate: θ̂ = p_c − p_b, θ₀ = `max_error_rate_increase`;
//!    - p95 latency: with T = baseline p95 × (1 + `max_p95_latency_increase`), θ̂ = the
//!      candidate's share of calls slower than T − the baseline's share slower than its own p95
//!      (5 % by construction), θ₀ = 0: the candidate's p95 is above T exactly when more than 5 %
//!      of its calls are;
//!    - cost per call: θ̂ = mean_c − (1 + `max_cost_increase`) · mean_b, θ₀ = 0 — the same
//!      hypothesis as mean_c − mean_b ≤ m · mean_b, with the baseline's own noise in the limit
//!      counted (scaled by 1 + m) rather than taken as exact.
//!
//!    Any breach → [`Decision::Rollback`], the reason naming each breached metric and its
//!    figures.
//! 4. **Always valid across looks.** Each metric's p is min(p of this look, p of the same metric
//!    in `prev`), so a breach seen once is never forgotten.
//! 5. **Promote** when nothing is breached, the candidate has `promote_after` calls, and the
//!    feedback interval's lower bound is ≥ −`quality_margin` (the bound is ignored while either
//!    arm has fewer than 30 scores); otherwise [`Decision::Continue`].
//! 6. **Quality**: the mSPRT inverted, a (1 − α) confidence sequence for mean feedback of
//!    candidate − baseline (Robbins' normal mixture, as in Howard et al. 2021), reported whenever
//!    both arms have a score.

// The verdict crosses to the store, the CLI and the window: its types live in the api crate.
pub use milc_api::gateway::{Decision, Evidence, Guardrails, Quality, Srm, Verdict};
use serde::{Deserialize, Serialize};

use crate::stats::chi2_sf;

/// What one arm did since the canary started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmSample {
    /// Requests routed to this arm (for the sample-ratio check).
    pub assigned: u64,
    /// Finished calls, successful or not.
    pub calls: u64,
    pub errors: u64,
    /// Latency of each successful call, in milliseconds, any order.
    pub latencies_ms: Vec<f64>,
    /// Cost of each successful call in USD (a float is fine here: statistics, not money).
    pub costs_usd: Vec<f64>,
    /// Users' (or a judge's) scores in 0..=1, any order.
    pub feedback: Vec<f64>,
}

/// The judge's settings; docs/CANARY.md says why each default is what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgeConfig {
    /// False-alarm budget shared by the three guardrails (α/3 each), and 1 − the quality
    /// interval's coverage. Default 0.05.
    pub alpha: f64,
    /// Sample-ratio mismatch is flagged below this χ² p-value. Default 0.001.
    pub srm_alpha: f64,
    /// Candidate calls before any rollback or promotion. Default 50.
    pub min_calls: u64,
    /// Candidate calls after which a candidate with no breach is promoted. Default 1000.
    pub promote_after: u64,
    /// Promote only if the quality interval's lower bound (candidate − baseline) is ≥ −this.
    /// Ignored while either arm has fewer than 30 scores. Default 0.05.
    pub quality_margin: f64,
    /// mSPRT mixing variance of the error-rate difference. Default 0.0025 (a 5-point rise).
    pub tau2_error: f64,
    /// mSPRT mixing variance of the difference in shares above the latency limit. Default
    /// 0.0025 (5 points more of the calls slower than the limit).
    pub tau2_latency: f64,
    /// mSPRT mixing variance of the cost difference, relative to the baseline's mean cost
    /// squared (so it holds at any price level). Default 0.0625 (25 % of the mean).
    pub tau2_cost: f64,
    /// Mixing variance of the quality interval. Default 0.0025 = `quality_margin`²: when the
    /// interval's half-width reaches the margin it is then within 0.1 % of the narrowest any τ²
    /// gives, so the bound clears the margin as early as it can.
    pub tau2_quality: f64,
    pub guardrails: Guardrails,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            srm_alpha: 0.001,
            min_calls: 50,
            promote_after: 1000,
            quality_margin: 0.05,
            tau2_error: 0.0025,
            tau2_latency: 0.0025,
            tau2_cost: 0.0625,
            tau2_quality: 0.0025,
            guardrails: Guardrails::default(),
        }
    }
}

/// Scores each arm needs before the quality bound can hold a promotion back.
const MIN_FEEDBACK: u64 = 30;

/// Assigned requests below which the split is not checked (χ² is poor on tiny counts).
const MIN_SRM_TOTAL: u64 = 100;

/// The mSPRT statistic Λ of METRICS.md for H₀: mean_b − mean_a = θ₀, with a normal mixture of
/// variance `tau2` over the alternatives: Λ = √(V/(V+τ²)) · exp(τ²(θ̂−θ₀)² / (2V(V+τ²))),
/// V = var_a/n_a + var_b/n_b, θ̂ = mean_b − mean_a. Under H₀, Λ ≥ 1/α at any look, ever, has
/// probability ≤ α — which is why the gateway may look as often as it likes.
///
/// Without data (an n ≤ 0) or without mixing (τ² ≤ 0) there is no evidence: 1. With V = 0 the
/// difference is known exactly: 0 if it equals θ₀, else infinite.
#[allow(clippy::too_many_arguments)] // the formula's own eight quantities
pub fn msprt(
    n_a: f64,
    n_b: f64,
    mean_a: f64,
    mean_b: f64,
    var_a: f64,
    var_b: f64,
    theta0: f64,
    tau2: f64,
) -> f64 {
    if n_a <= 0.0 || n_b <= 0.0 || tau2 <= 0.0 {
        return 1.0;
    }
    let v = var_a.max(0.0) / n_a + var_b.max(0.0) / n_b;
    let d = mean_b - mean_a - theta0;
    if v <= 0.0 {
        return if d == 0.0 { 0.0 } else { f64::INFINITY };
    }
    // Summed in logs, so a vanishing √ factor times an overflowing exp never makes NaN.
    let ln = 0.5 * (v / (v + tau2)).ln() + tau2 * d * d / (2.0 * v * (v + tau2));
    ln.exp()
}

/// The sample-ratio check: Pearson χ² of `counts` against the shares `weights` give (any
/// scale), df = arms − 1, p = [`chi2_sf`]. Flagged at METRICS.md's p < 0.001 ([`judge`] applies
/// its own `srm_alpha`). Arms with weight 0 and no count are left out; traffic on an arm of
/// weight 0 is an infinite mismatch.
pub fn srm(counts: &[u64], weights: &[f64]) -> Srm {
    let total_w: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    let n: u64 = counts.iter().sum();
    let mut chi2 = 0.0;
    let mut arms = 0usize;
    for (i, &o) in counts.iter().enumerate() {
        let w = weights.get(i).copied().unwrap_or(0.0);
        let w = if w.is_finite() && w > 0.0 { w } else { 0.0 };
        if w == 0.0 {
            if o > 0 {
                chi2 = f64::INFINITY;
                arms += 1;
            }
            continue;
        }
        arms += 1;
        let e = n as f64 * w / total_w;
        if e > 0.0 {
            chi2 += (o as f64 - e).powi(2) / e;
        }
    }
    let p = if arms < 2 || n == 0 {
        1.0
    } else {
        chi2_sf(chi2, (arms - 1) as f64)
    };
    Srm {
        chi2,
        p,
        flagged: p < 0.001,
    }
}

/// The verdict at one look: the rules in this module's doc, in their order. `weights` are the
/// configured (baseline, candidate) shares of traffic, any scale; `prev` is the verdict of the
/// previous look, if any, whose p-values this one keeps when they are lower.
pub fn judge(
    baseline: &ArmSample,
    candidate: &ArmSample,
    weights: (f64, f64),
    cfg: &JudgeConfig,
    prev: Option<&Verdict>,
) -> Verdict {
    // 1. The split.
    let (w_b, w_c) = weights;
    let checkable = [w_b, w_c].iter().all(|w| w.is_finite() && *w > 0.0);
    let assigned = [baseline.assigned, candidate.assigned];
    let srm = if checkable {
        let mut s = srm(&assigned, &[w_b, w_c]);
        s.flagged = assigned.iter().sum::<u64>() >= MIN_SRM_TOTAL && s.p < cfg.srm_alpha;
        s
    } else {
        Srm {
            chi2: 0.0,
            p: 1.0,
            flagged: false,
        }
    };

    // 2–4. The guardrails; tests run once the candidate has min_calls calls.
    let testing = candidate.calls >= cfg.min_calls;
    let level = cfg.alpha / 3.0;
    let g = &cfg.guardrails;
    let guardrails: Vec<Evidence> = [
        error_rate(
            baseline,
            candidate,
            g.max_error_rate_increase,
            cfg.tau2_error,
        ),
        p95_latency(
            baseline,
            candidate,
            g.max_p95_latency_increase,
            cfg.tau2_latency,
        ),
        cost_per_call(baseline, candidate, g.max_cost_increase, cfg.tau2_cost),
    ]
    .into_iter()
    .map(|mut e| {
        if !testing {
            e.lambda = 1.0;
        }
        e.p = (1.0 / e.lambda).min(1.0);
        if let Some(before) = prev.and_then(|v| v.guardrails.iter().find(|b| b.metric == e.metric))
        {
            e.p = e.p.min(before.p);
        }
        e.breached = testing && e.p <= level;
        e
    })
    .collect();

    // 6. Quality.
    let quality = quality(baseline, candidate, cfg.alpha, cfg.tau2_quality);

    // The decision, in the rules' order.
    let (decision, reason) = if srm.flagged {
        (
            Decision::SplitBroken,
            format!(
                "sample ratio mismatch: {} / {} requests assigned for weights {} / {}, \
                 χ² {:.2}, p = {}",
                baseline.assigned,
                candidate.assigned,
                w_b,
                w_c,
                srm.chi2,
                fmt_p(srm.p)
            ),
        )
    } else if !testing {
        (
            Decision::Continue,
            format!(
                "waiting for {} candidate calls ({} so far)",
                cfg.min_calls, candidate.calls
            ),
        )
    } else if guardrails.iter().any(|e| e.breached) {
        let breaches: Vec<String> = guardrails
            .iter()
            .filter(|e| e.breached)
            .map(describe)
            .collect();
        (Decision::Rollback, breaches.join("; "))
    } else if candidate.calls < cfg.promote_after {
        (
            Decision::Continue,
            format!(
                "no breach; {} of {} candidate calls before promotion",
                candidate.calls, cfg.promote_after
            ),
        )
    } else {
        // The feedback bound counts once both arms have enough scores.
        match quality
            .as_ref()
            .filter(|q| q.n_baseline >= MIN_FEEDBACK && q.n_candidate >= MIN_FEEDBACK)
        {
            Some(q) if q.lo < -cfg.quality_margin => (
                Decision::Continue,
                format!(
                    "no breach after {} candidate calls, but feedback is not yet shown within \
                     {} of the baseline: candidate − baseline {:+.3}, interval [{:+.3}, \
                     {:+.3}] ({} / {} scores)",
                    candidate.calls,
                    cfg.quality_margin,
                    q.diff,
                    q.lo,
                    q.hi,
                    q.n_candidate,
                    q.n_baseline
                ),
            ),
            Some(q) => (
                Decision::Promote,
                format!(
                    "no breach after {} candidate calls; feedback candidate − baseline {:+.3}, \
                     interval [{:+.3}, {:+.3}]",
                    candidate.calls, q.diff, q.lo, q.hi
                ),
            ),
            None => (
                Decision::Promote,
                format!(
                    "no breach after {} candidate calls (too little feedback to compare)",
                    candidate.calls
                ),
            ),
        }
    };

    Verdict {
        decision,
        reason,
        srm,
        guardrails,
        quality,
    }
}

/// A proportion for a variance: (x + 1) / (n + 2) (Agresti–Caffo), so that no errors in either
/// arm does not make the variance — and Λ — degenerate.
fn shrunk(x: f64, n: f64) -> f64 {
    (x + 1.0) / (n + 2.0)
}

/// Λ counted on the worse side only (see [`Evidence::lambda`]).
fn worse_side(lambda: f64, worse: bool) -> f64 {
    if worse {
        lambda
    } else {
        lambda.min(1.0)
    }
}

fn evidence(metric: &str, baseline: f64, candidate: f64, limit: f64, lambda: f64) -> Evidence {
    Evidence {
        metric: metric.into(),
        baseline,
        candidate,
        limit,
        lambda,
        p: 1.0,
        breached: false,
    }
}

/// Two proportions: θ̂ = p_c − p_b against θ₀.
fn error_rate(b: &ArmSample, c: &ArmSample, theta0: f64, tau2: f64) -> Evidence {
    let rate = |a: &ArmSample| {
        if a.calls == 0 {
            0.0
        } else {
            a.errors as f64 / a.calls as f64
        }
    };
    let (p_b, p_c) = (rate(b), rate(c));
    let var = |a: &ArmSample| {
        let s = shrunk(a.errors as f64, a.calls as f64);
        s * (1.0 - s)
    };
    let lambda = msprt(
        b.calls as f64,
        c.calls as f64,
        p_b,
        p_c,
        var(b),
        var(c),
        theta0,
        tau2,
    );
    evidence(
        "error_rate",
        p_b,
        p_c,
        (p_b + theta0).min(1.0),
        worse_side(lambda, p_c - p_b > theta0),
    )
}

/// How many of `xs` are strictly above `t`.
fn above(xs: &[f64], t: f64) -> usize {
    let mut count = 0;
    for &x in xs {
        count += usize::from(x > t);
    }
    count
}

/// The candidate's share of calls slower than T = (1 + m) · baseline p95 against the baseline's
/// share slower than its own p95. The baseline's binomial variance stands in for the noise of
/// T: at the tolerance's edge (the candidate the baseline scaled by 1 + m) the delta method
/// gives exactly 0.95 · 0.05 / n_b.
fn p95_latency(b: &ArmSample, c: &ArmSample, m: f64, tau2: f64) -> Evidence {
    let ((p95_b, above_b), p95_c) = (p95_and_above(&b.latencies_ms), p95(&c.latencies_ms));
    let t = p95_b * (1.0 + m);
    let (n_b, n_c) = (b.latencies_ms.len() as f64, c.latencies_ms.len() as f64);
    let lambda = if n_b == 0.0 || n_c == 0.0 {
        1.0
    } else {
        let (x_b, x_c) = (above_b as f64, above(&c.latencies_ms, t) as f64);
        let (s_b, s_c) = (shrunk(x_b, n_b), shrunk(x_c, n_c));
        let l = msprt(
            n_b,
            n_c,
            x_b / n_b,
            x_c / n_c,
            s_b * (1.0 - s_b),
            s_c * (1.0 - s_c),
            0.0,
            tau2,
        );
        worse_side(l, x_c / n_c > x_b / n_b)
    };
    evidence("p95_latency_ms", p95_b, p95_c, t, lambda)
}

/// Mean and sample variance (n − 1) in one pass, shifted by the first value so that the sum of
/// squares does not cancel.
fn mean_var(xs: &[f64]) -> (f64, f64) {
    let Some(&x0) = xs.first() else {
        return (0.0, 0.0);
    };
    let n = xs.len() as f64;
    let (mut s, mut ss) = (0.0, 0.0);
    for &x in xs {
        let d = x - x0;
        s += d;
        ss += d * d;
    }
    let var = if xs.len() > 1 {
        ((ss - s * s / n) / (n - 1.0)).max(0.0)
    } else {
        0.0
    };
    (x0 + s / n, var)
}

/// Mean cost per successful call: θ̂ = mean_c − (1 + m) · mean_b against 0, τ² relative to
/// mean_b².
fn cost_per_call(b: &ArmSample, c: &ArmSample, m: f64, tau2: f64) -> Evidence {
    let (mean_b, var_b) = mean_var(&b.costs_usd);
    let (mean_c, var_c) = mean_var(&c.costs_usd);
    let k = 1.0 + m;
    let lambda = if b.costs_usd.len() < 2 || c.costs_usd.len() < 2 {
        1.0
    } else {
        let l = msprt(
            b.costs_usd.len() as f64,
            c.costs_usd.len() as f64,
            k * mean_b,
            mean_c,
            k * k * var_b,
            var_c,
            0.0,
            tau2 * mean_b * mean_b,
        );
        worse_side(l, mean_c > k * mean_b)
    };
    evidence("cost_per_call_usd", mean_b, mean_c, k * mean_b, lambda)
}

/// The always-valid interval of candidate − baseline mean feedback: {θ : Λ(θ) < 1/α}, i.e.
/// θ̂ ± √(V(V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V))). Each arm's variance is (Σ(x − x̄)² + ¼) / n:
/// one pseudo-score at the worst case ¼ of [0, 1] data, so a few identical scores do not
/// make a zero-width interval.
fn quality(b: &ArmSample, c: &ArmSample, alpha: f64, tau2: f64) -> Option<Quality> {
    if b.feedback.is_empty() || c.feedback.is_empty() {
        return None;
    }
    let stats = |xs: &[f64]| {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        (n, mean, (ss + 0.25) / n)
    };
    let (n_b, mean_b, var_b) = stats(&b.feedback);
    let (n_c, mean_c, var_c) = stats(&c.feedback);
    let diff = mean_c - mean_b;
    let v = var_b / n_b + var_c / n_c;
    let half = if tau2 > 0.0 && alpha > 0.0 && alpha < 1.0 {
        (v * (v + tau2) / tau2 * (2.0 * (1.0 / alpha).ln() + ((v + tau2) / v).ln())).sqrt()
    } else {
        f64::INFINITY
    };
    Some(Quality {
        baseline: mean_b,
        candidate: mean_c,
        n_baseline: b.feedback.len() as u64,
        n_candidate: c.feedback.len() as u64,
        diff,
        lo: (diff - half).max(-1.0),
        hi: (diff + half).min(1.0),
    })
}

/// The 95th percentile with linear interpolation (as `stats::quantile`, numpy's default). The
/// judge runs at every look over all calls so far, so rather than sort them all it keeps the
/// values at or above a cut (the 85th percentile of a strided sample of ~200), which hold both
/// order statistics whenever they number at least the top 5 %, and selects among those; when
/// the cut keeps too few it selects among all.
fn p95(xs: &[f64]) -> f64 {
    p95_and_above(xs).0
}

/// The 95th percentile and how many values are above it.
fn p95_and_above(xs: &[f64]) -> (f64, usize) {
    let n = xs.len();
    if n == 0 {
        return (0.0, 0);
    }
    let pos = 0.95 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    // Values of ascending rank lo and above.
    let top = n - lo;
    let mut kept = Vec::new();
    if n >= 1000 {
        let mut sample: Vec<f64> = xs.iter().step_by(n / 200).copied().collect();
        let at = sample.len() * 85 / 100;
        let (_, &mut cut, _) = sample.select_nth_unstable_by(at, f64::total_cmp);
        // Plain loops: this runs over every call at every look, also in unoptimised tests.
        for &x in xs {
            if x >= cut {
                kept.push(x);
            }
        }
    }
    if kept.len() < top {
        kept = xs.to_vec();
    }
    // Every value of rank ≥ lo is ≥ the cut (else fewer than `top` would be), so rank lo of
    // `xs` is rank kept.len() − top of `kept`.
    let k = kept.len() - top;
    let (_, &mut x_lo, rest) = kept.select_nth_unstable_by(k, f64::total_cmp);
    let x_hi = if pos > lo as f64 {
        rest.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        x_lo
    };
    let p = x_lo + (x_hi - x_lo) * (pos - lo as f64);
    // Everything above p is above the cut, so `kept` holds it.
    (p, above(rest, p))
}

/// "p = 0.003", or "p = 1.9e-4" below 0.001.
fn fmt_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

/// `x` with three significant digits.
fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// "error rate 12.1 % vs 2.0 % (limit 2.0 %), p = 0.003".
fn describe(e: &Evidence) -> String {
    let p = fmt_p(e.p);
    match e.metric.as_str() {
        "error_rate" => format!(
            "error rate {:.1} % vs {:.1} % (limit {:.1} %), p = {p}",
            100.0 * e.candidate,
            100.0 * e.baseline,
            100.0 * e.limit
        ),
        "p95_latency_ms" => format!(
            "p95 latency {:.0} ms vs {:.0} ms (limit {:.0} ms), p = {p}",
            e.candidate, e.baseline, e.limit
        ),
        "cost_per_call_usd" => format!(
            "cost per call {} USD vs {} USD (limit {} USD), p = {p}",
            sig3(e.candidate),
            sig3(e.baseline),
            sig3(e.limit)
        ),
        other => format!(
            "{other} {} vs {} (limit {}), p = {p}",
            e.candidate, e.baseline, e.limit
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    #[test]
    fn msprt_matches_the_metrics_vector() {
        let l = msprt(900.0, 100.0, 0.0, 0.3, 1.0, 1.0, 0.0, 0.01);
        assert!((l - 4.9406).abs() < 5e-5, "{l}");
        assert!((1.0 / l - 0.2024).abs() < 5e-5, "{}", 1.0 / l);
        // Symmetric in the sign of θ̂ − θ₀, and no data is no evidence.
        assert!((msprt(900.0, 100.0, 0.3, 0.0, 1.0, 1.0, 0.0, 0.01) - l).abs() < 1e-12);
        assert_eq!(msprt(0.0, 100.0, 0.0, 0.3, 1.0, 1.0, 0.0, 0.01), 1.0);
    }

    #[test]
    fn srm_matches_the_metrics_vectors() {
        let s = srm(&[1850, 150], &[0.9, 0.1]);
        assert!((s.chi2 - 13.8889).abs() < 5e-5, "{s:?}");
        assert!((s.p - 0.000194).abs() < 5e-7 && s.flagged, "{s:?}");
        let s = srm(&[1810, 190], &[90.0, 10.0]);
        assert!((s.chi2 - 0.5556).abs() < 5e-5, "{s:?}");
        assert!((s.p - 0.4561).abs() < 5e-5 && !s.flagged, "{s:?}");
        // Traffic on an arm that should get none.
        assert!(srm(&[100, 1], &[1.0, 0.0]).flagged);
    }

    #[test]
    fn p95_interpolates_as_numpy() {
        let xs: Vec<f64> = (1..=21).rev().map(f64::from).collect();
        assert_eq!(p95(&xs), 20.0);
        let xs: Vec<f64> = (0..10).map(f64::from).collect();
        // numpy.percentile(range(10), 95) = 8.55
        assert!((p95(&xs) - 8.55).abs() < 1e-12);
    }

    /// Draws for the simulated arms: SplitMix64 only, so every run gives the same figures.
    struct Draw(SplitMix64);

    impl Draw {
        fn bernoulli(&mut self, p: f64) -> bool {
            self.0.unit() < p
        }

        /// Standard normal by Box–Muller (one of the pair is enough here).
        fn normal(&mut self) -> f64 {
            let u1 = 1.0 - self.0.unit(); // (0, 1]: ln stays finite
            let u2 = self.0.unit();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }

        fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
            median * (sigma * self.normal()).exp()
        }

        fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.0.unit()
        }
    }

    /// How one arm behaves.
    #[derive(Clone, Copy)]
    struct Arm {
        error_rate: f64,
        latency_median_ms: f64,
        cost_usd: f64,
        feedback_mean: f64,
    }

    const BASE: Arm = Arm {
        error_rate: 0.02,
        latency_median_ms: 300.0,
        cost_usd: 0.001,
        feedback_mean: 0.7,
    };

    /// One finished call on `arm`: an error, or a latency (lognormal, σ 0.5), a cost (± 10 %)
    /// and, on 20 % of calls, a Bernoulli score.
    fn call(d: &mut Draw, arm: &Arm, s: &mut ArmSample) {
        s.assigned += 1;
        s.calls += 1;
        if d.bernoulli(arm.error_rate) {
            s.errors += 1;
            return;
        }
        s.latencies_ms.push(d.lognormal(arm.latency_median_ms, 0.5));
        s.costs_usd.push(arm.cost_usd * d.uniform(0.9, 1.1));
        if d.bernoulli(0.2) {
            s.feedback.push(if d.bernoulli(arm.feedback_mean) {
                1.0
            } else {
                0.0
            });
        }
    }

    /// Feeds `requests` calls at 90/10 without judging.
    fn traffic(seed: u64, requests: u64, b: &Arm, c: &Arm) -> (ArmSample, ArmSample) {
        let mut d = Draw(SplitMix64(seed));
        let (mut sb, mut sc) = (ArmSample::default(), ArmSample::default());
        for _ in 0..requests {
            if d.bernoulli(0.1) {
                call(&mut d, c, &mut sc);
            } else {
                call(&mut d, b, &mut sb);
            }
        }
        (sb, sc)
    }

    /// One canary: requests one by one at 90/10, the judge consulted every 50, until a decision
    /// other than Continue or 20 000 requests. Returns the last verdict and the requests served.
    fn experiment(seed: u64, b: &Arm, c: &Arm, cfg: &JudgeConfig) -> (Verdict, u64) {
        let mut d = Draw(SplitMix64(seed));
        let (mut sb, mut sc) = (ArmSample::default(), ArmSample::default());
        let mut prev: Option<Verdict> = None;
        for request in 1..=20_000u64 {
            if d.bernoulli(0.1) {
                call(&mut d, c, &mut sc);
            } else {
                call(&mut d, b, &mut sb);
            }
            if request % 50 == 0 {
                let v = judge(&sb, &sc, (0.9, 0.1), cfg, prev.as_ref());
                if v.decision != Decision::Continue {
                    return (v, request);
                }
                prev = Some(v);
            }
        }
        (prev.expect("at least one look"), 20_000)
    }

    /// The median of `xs` (the upper one of an even count), or "none".
    fn median(mut xs: Vec<u64>) -> String {
        xs.sort_unstable();
        xs.get(xs.len() / 2)
            .map_or_else(|| "none".into(), u64::to_string)
    }

    const EXPERIMENTS: u64 = 200;

    fn simulate(b: &Arm, c: &Arm, seed: u64) -> Vec<(Verdict, u64)> {
        let cfg = JudgeConfig::default();
        (0..EXPERIMENTS)
            .map(|i| experiment(seed.wrapping_add(i.wrapping_mul(0x9e37_79b9)), b, c, &cfg))
            .collect()
    }

    fn count(runs: &[(Verdict, u64)], d: Decision) -> usize {
        runs.iter().filter(|(v, _)| v.decision == d).count()
    }

    #[test]
    fn canary_aa_simulation_keeps_false_rollbacks_within_alpha() {
        let runs = simulate(&BASE, &BASE, 1);
        let (rollback, broken) = (
            count(&runs, Decision::Rollback),
            count(&runs, Decision::SplitBroken),
        );
        let promoted: Vec<u64> = runs
            .iter()
            .filter(|(v, _)| v.decision == Decision::Promote)
            .map(|(_, r)| *r)
            .collect();
        let held = runs
            .iter()
            .filter(|(v, _)| v.reason.contains("feedback is not yet shown"))
            .count();
        // The running (always-valid) p of the error-rate guardrail, the only one at its null
        // here: latency and cost are far inside their tolerances in an A/A.
        let lowest = runs
            .iter()
            .map(|(v, _)| v.guardrails[0].p)
            .fold(1.0, f64::min);
        let false_rate = (rollback + broken) as f64 / EXPERIMENTS as f64;
        println!(
            "A/A, {EXPERIMENTS} experiments: false rollbacks {:.1} % ({rollback} rollback, \
             {broken} split broken); promoted {:.1} % ({} runs, median requests to promote \
             {}); still held by the feedback bound at 20 000 requests: {held}; lowest \
             error-rate p {lowest:.3} (breach at {:.4})",
            100.0 * false_rate,
            100.0 * promoted.len() as f64 / EXPERIMENTS as f64,
            promoted.len(),
            median(promoted),
            JudgeConfig::default().alpha / 3.0,
        );
        for (v, r) in runs
            .iter()
            .filter(|(v, _)| matches!(v.decision, Decision::Rollback | Decision::SplitBroken))
        {
            println!("  after {r} requests: {}", v.reason);
        }
        assert!(false_rate <= 0.05, "false rollbacks {false_rate}");
    }

    /// Rollbacks, split alarms, promotions and the median requests to a rollback of `runs`.
    fn report(name: &str, runs: &[(Verdict, u64)]) -> f64 {
        let rolled: Vec<u64> = runs
            .iter()
            .filter(|(v, _)| v.decision == Decision::Rollback)
            .map(|(_, r)| *r)
            .collect();
        let rate = rolled.len() as f64 / runs.len() as f64;
        println!(
            "{name}, {} experiments: rolled back {:.1} %, split broken {:.1} %, promoted {:.1} %, \
             median requests to rollback {}",
            runs.len(),
            100.0 * rate,
            100.0 * count(runs, Decision::SplitBroken) as f64 / runs.len() as f64,
            100.0 * count(runs, Decision::Promote) as f64 / runs.len() as f64,
            median(rolled),
        );
        rate
    }

    #[test]
    fn canary_error_rate_shift_simulation_rolls_back() {
        let worse = Arm {
            error_rate: 0.12,
            ..BASE
        };
        let rate = report("error rate 12 % vs 2 %", &simulate(&BASE, &worse, 2));
        assert!(rate >= 0.95, "rolled back {rate}");
    }

    #[test]
    fn canary_smaller_error_rate_shifts_simulation() {
        // Not the product's acceptance test: how power falls with the shift, for the docs.
        let worse = Arm {
            error_rate: 0.07,
            ..BASE
        };
        let rate = report("error rate 7 % vs 2 %", &simulate(&BASE, &worse, 3));
        assert!(rate >= 0.9, "rolled back {rate}");
        let worse = Arm {
            error_rate: 0.04,
            ..BASE
        };
        let rate = report("error rate 4 % vs 2 %", &simulate(&BASE, &worse, 4));
        assert!(rate >= 0.5, "rolled back {rate}");
    }

    #[test]
    fn a_slower_candidate_rolls_back_and_a_tolerably_slower_one_does_not() {
        let cfg = JudgeConfig::default();
        let slow = Arm {
            latency_median_ms: 600.0,
            ..BASE
        };
        let (b, c) = traffic(11, 3000, &BASE, &slow);
        let v = judge(&b, &c, (0.9, 0.1), &cfg, None);
        assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
        assert!(v.reason.starts_with("p95 latency"), "{}", v.reason);
        let lat = &v.guardrails[1];
        assert!(lat.candidate > lat.limit && lat.breached, "{lat:?}");
        // 10 % slower is within the 25 % the guardrail tolerates, however much data there is.
        let a_bit = Arm {
            latency_median_ms: 330.0,
            ..BASE
        };
        let (b, c) = traffic(12, 30_000, &BASE, &a_bit);
        let v = judge(&b, &c, (0.9, 0.1), &cfg, None);
        assert!(!v.guardrails[1].breached, "{:?}", v.guardrails[1]);
    }

    #[test]
    fn a_costlier_candidate_rolls_back() {
        let dear = Arm {
            cost_usd: 0.002,
            ..BASE
        };
        let (b, c) = traffic(13, 1000, &BASE, &dear);
        let v = judge(&b, &c, (0.9, 0.1), &JudgeConfig::default(), None);
        assert_eq!(v.decision, Decision::Rollback, "{}", v.reason);
        assert!(v.reason.contains("cost per call"), "{}", v.reason);
        assert!(v.reason.contains("(limit 0.00125 USD)"), "{}", v.reason);
    }

    #[test]
    fn a_candidate_with_much_worse_feedback_is_not_promoted() {
        let cfg = JudgeConfig::default();
        let disliked = Arm {
            feedback_mean: 0.4,
            ..BASE
        };
        let (b, c) = traffic(14, 20_000, &BASE, &disliked);
        assert!(c.calls >= cfg.promote_after);
        let v = judge(&b, &c, (0.9, 0.1), &cfg, None);
        assert_eq!(v.decision, Decision::Continue, "{}", v.reason);
        let q = v.quality.expect("both arms have feedback");
        assert!(q.hi < -0.1 && q.lo < -cfg.quality_margin, "{q:?}");
        // Without feedback, the same guardrails promote.
        let strip = |mut s: ArmSample| {
            s.feedback.clear();
            s
        };
        let v = judge(&strip(b), &strip(c), (0.9, 0.1), &cfg, None);
        assert_eq!(v.decision, Decision::Promote, "{}", v.reason);
    }

    #[test]
    fn prev_keeps_the_lower_p_and_its_breach() {
        let cfg = JudgeConfig::default();
        let worse = Arm {
            error_rate: 0.12,
            ..BASE
        };
        let (b, c) = traffic(15, 3000, &BASE, &worse);
        let first = judge(&b, &c, (0.9, 0.1), &cfg, None);
        assert_eq!(first.decision, Decision::Rollback, "{}", first.reason);
        let low = first.guardrails[0].p;
        // The next look sees a clean candidate; the breach already seen stands.
        let (b2, c2) = traffic(16, 3000, &BASE, &BASE);
        let fresh = judge(&b2, &c2, (0.9, 0.1), &cfg, None);
        assert!(fresh.guardrails[0].p > low, "{:?}", fresh.guardrails[0]);
        let next = judge(&b2, &c2, (0.9, 0.1), &cfg, Some(&first));
        assert_eq!(next.guardrails[0].p, low);
        assert_eq!(next.decision, Decision::Rollback, "{}", next.reason);
        assert!(next.reason.starts_with("error rate"), "{}", next.reason);
    }

    #[test]
    fn split_broken_comes_first_and_tiny_counts_are_not_checked() {
        let cfg = JudgeConfig::default();
        let worse = Arm {
            error_rate: 0.5,
            ..BASE
        };
        let (b, mut c) = traffic(17, 2000, &BASE, &worse);
        c.assigned *= 2;
        let v = judge(&b, &c, (0.9, 0.1), &cfg, None);
        assert_eq!(v.decision, Decision::SplitBroken, "{}", v.reason);
        assert!(v.srm.flagged && v.srm.p < cfg.srm_alpha);
        // 60 / 40 of 100 is a gross mismatch but too few to judge; so is any split at weight 0.
        let few = |assigned| ArmSample {
            assigned,
            ..ArmSample::default()
        };
        let v = judge(&few(60), &few(39), (0.9, 0.1), &cfg, None);
        assert!(!v.srm.flagged && v.decision == Decision::Continue, "{v:?}");
        let v = judge(&few(1000), &few(1000), (1.0, 0.0), &cfg, None);
        assert!(!v.srm.flagged, "{v:?}");
    }

    #[test]
    fn nothing_is_decided_before_min_calls_but_figures_are_filled() {
        let cfg = JudgeConfig::default();
        let broken = Arm {
            error_rate: 1.0,
            ..BASE
        };
        let (b, c) = traffic(18, 300, &BASE, &broken);
        assert!(c.calls < cfg.min_calls);
        let v = judge(&b, &c, (0.9, 0.1), &cfg, None);
        assert_eq!(v.decision, Decision::Continue, "{}", v.reason);
        assert_eq!(v.guardrails[0].candidate, 1.0);
        assert_eq!(v.guardrails[0].p, 1.0);
    }

    #[test]
    fn verdicts_round_trip_through_json_with_snake_case_decisions() {
        let (b, c) = traffic(19, 500, &BASE, &BASE);
        let v = judge(&b, &c, (0.9, 0.1), &JudgeConfig::default(), None);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
        assert_eq!(
            serde_json::to_string(&Decision::SplitBroken).unwrap(),
            "\"split_broken\""
        );
        // A partial config takes the defaults for what it leaves out.
        let cfg: JudgeConfig = serde_json::from_str(r#"{"min_calls": 10}"#).unwrap();
        assert_eq!(
            cfg,
            JudgeConfig {
                min_calls: 10,
                ..JudgeConfig::default()
            }
        );
    }
}
