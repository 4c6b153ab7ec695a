//! Statistics for pairwise votes (definitions and test vectors in METRICS.md): Wilson score
//! intervals for win rates, and Bradley–Terry ratings fitted as LMSYS Chatbot Arena fits them,
//! with multinomial bootstrap intervals. Also the seeded generator and quantile the run engine's
//! bootstraps use, and the one implementation of the χ² and normal distributions the canary
//! judge and the drift tests read their p-values from.

use std::collections::{BTreeMap, BTreeSet};

use milc_api::arena::{Agreement, PairRecord, Rating, Standings, Vote, Winner};

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959964;

/// The Wilson score interval of `wins` out of `n` (wins may count halves).
pub fn wilson(wins: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 0.0);
    }
    let p = wins / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Identical (a, b, outcome for a) votes merged, with their counts as weights.
type Rows = Vec<(usize, usize, f64, f64)>;

/// Bradley–Terry log-strengths `r` (base 10) maximising the likelihood of `rows`, from zeros,
/// by Newton's method with the ratings' sum held at zero (only differences are identified). A
/// ridge of 1e-9 per vote keeps a variant that never lost finite; it moves the published vectors
/// by less than 1e-6.
fn fit(n: usize, rows: &Rows) -> Vec<f64> {
    let alpha = std::f64::consts::LN_10;
    let total: f64 = rows.iter().map(|r| r.3).sum();
    let ridge = 1e-9 * total.max(1.0);
    let mut r = vec![0.0; n];
    for _ in 0..100 {
        let mut g = vec![0.0; n];
        let mut h = vec![vec![0.0; n]; n];
        for &(a, b, y, w) in rows {
            let p = 1.0 / (1.0 + (-alpha * (r[a] - r[b])).exp());
            let d = w * alpha * (y - p);
            g[a] += d;
            g[b] -= d;
            let c = w * alpha * alpha * p * (1.0 - p);
            h[a][a] += c;
            h[b][b] += c;
            h[a][b] -= c;
            h[b][a] -= c;
        }
        for i in 0..n {
            g[i] -= ridge * r[i];
            // The all-ones direction has no curvature: adding 1·1ᵀ fixes it (keeping Σr = 0).
            for hij in h[i].iter_mut() {
                *hij += 1.0;
            }
            h[i][i] += ridge;
        }
        let step = solve(h, g);
        let size = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        for (ri, si) in r.iter_mut().zip(&step) {
            *ri += si;
        }
        if size < 1e-12 {
            break;
        }
    }
    r
}

/// Solves `a·x = b` by Gaussian elimination with partial pivoting (a is small and, here,
/// positive definite).
// Gaussian elimination reads clearest with row and column indices.
#[allow(clippy::needless_range_loop)]
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("a non-empty column");
        a.swap(col, pivot);
        b.swap(col, pivot);
        let d = a[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        for row in col + 1..n {
            let f = a[row][col] / d;
            if f != 0.0 {
                for k in col..n {
                    a[row][k] -= f * a[col][k];
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = if a[row][row].abs() < 1e-300 {
            0.0
        } else {
            (b[row] - s) / a[row][row]
        };
    }
    x
}

fn scaled(r: f64) -> f64 {
    400.0 * r + 1000.0
}

/// Win rates for every pair that met, and Bradley–Terry ratings with `rounds` bootstrap rounds
/// seeded by `seed`, best first.
pub fn standings(votes: &[Vote], rounds: u32, seed: u64) -> Standings {
    let names: Vec<String> = votes
        .iter()
        .flat_map(|v| [v.a.clone(), v.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |name: &str| {
        names
            .binary_search_by(|n| n.as_str().cmp(name))
            .expect("a known name")
    };

    // Merged rows for the fit: outcome for `a` is 1, 0.5 (tie or both bad) or 0.
    let mut merged: BTreeMap<(usize, usize, u8), f64> = BTreeMap::new();
    let mut pairs: BTreeMap<(usize, usize), [u64; 4]> = BTreeMap::new();
    let mut votes_of = vec![0u64; names.len()];
    for v in votes {
        let (a, b) = (index(&v.a), index(&v.b));
        votes_of[a] += 1;
        votes_of[b] += 1;
        let y2 = match v.winner {
            Winner::A => 2,
            Winner::B => 0,
            Winner::Tie | Winner::BothBad => 1,
        };
        *merged.entry((a, b, y2)).or_insert(0.0) += 1.0;
        // Pair records are kept under the alphabetically first variant.
        let (first, second, first_won) = if a <= b {
            (a, b, v.winner == Winner::A)
        } else {
            (b, a, v.winner == Winner::B)
        };
        let rec = pairs.entry((first, second)).or_insert([0; 4]);
        match v.winner {
            Winner::Tie => rec[2] += 1,
            Winner::BothBad => rec[3] += 1,
            _ if first_won => rec[0] += 1,
            _ => rec[1] += 1,
        }
    }
    let rows: Rows = merged
        .into_iter()
        .map(|((a, b, y2), w)| (a, b, f64::from(y2) / 2.0, w))
        .collect();
    let point = fit(names.len(), &rows);

    // Multinomial bootstrap over the merged rows.
    let total: f64 = rows.iter().map(|r| r.3).sum();
    let mut cumulative = Vec::with_capacity(rows.len());
    let mut acc = 0.0;
    for r in &rows {
        acc += r.3;
        cumulative.push(acc);
    }
    let mut rng = SplitMix64(seed);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds as usize); names.len()];
    for _ in 0..rounds {
        let mut counts = vec![0.0; rows.len()];
        for _ in 0..total as u64 {
            let u = rng.unit() * total;
            let k = cumulative.partition_point(|&c| c <= u).min(rows.len() - 1);
            counts[k] += 1.0;
        }
        let resampled: Rows = rows
            .iter()
            .zip(&counts)
            .filter(|(_, &c)| c > 0.0)
            .map(|(&(a, b, y, _), &c)| (a, b, y, c))
            .collect();
        for (i, r) in fit(names.len(), &resampled).into_iter().enumerate() {
            samples[i].push(scaled(r));
        }
    }
    let bounds: Vec<(f64, f64)> = samples
        .iter_mut()
        .zip(&point)
        .map(|(s, &r)| {
            if s.is_empty() {
                return (scaled(r), scaled(r));
            }
            s.sort_by(f64::total_cmp);
            (quantile(s, 0.025), quantile(s, 0.975))
        })
        .collect();
    let mut ratings: Vec<Rating> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Rating {
            variant: name.clone(),
            rating: scaled(point[i]),
            low: bounds[i].0,
            high: bounds[i].1,
            rank: 1 + bounds.iter().filter(|(lo, _)| *lo > bounds[i].1).count() as u32,
            votes: votes_of[i],
        })
        .collect();
    ratings.sort_by(|x, y| {
        y.rating
            .total_cmp(&x.rating)
            .then(x.variant.cmp(&y.variant))
    });

    let pairs = pairs
        .into_iter()
        .map(|((a, b), [aw, bw, ties, bad])| {
            let n = (aw + bw + ties + bad) as f64;
            let wins = aw as f64 + 0.5 * (ties + bad) as f64;
            let (low, high) = wilson(wins, n);
            PairRecord {
                first: names[a].clone(),
                second: names[b].clone(),
                first_wins: aw,
                second_wins: bw,
                ties,
                both_bad: bad,
                win_rate: wins / n,
                low,
                high,
            }
        })
        .collect();
    Standings {
        votes: votes.len() as u64,
        pairs,
        ratings,
        agreement: agreement(votes),
        rounds,
        seed,
    }
}

/// Agreement between raters on the items (and pairs) several of them rated; votes are read from
/// the alphabetically first variant's side, so swapped sides agree. Two raters: Cohen's κ over
/// the items both rated; more: Fleiss' κ over the items rated by the most common number of
/// raters (Fleiss needs the same number on every item).
pub fn agreement(votes: &[Vote]) -> Option<Agreement> {
    let mut by_item: BTreeMap<(&str, &str, &str), BTreeMap<&str, usize>> = BTreeMap::new();
    for v in votes {
        let (Some(item), Some(rater)) = (v.item.as_deref(), v.rater.as_deref()) else {
            continue;
        };
        let swapped = v.b < v.a;
        let (first, second) = if swapped { (&v.b, &v.a) } else { (&v.a, &v.b) };
        let label = match (v.winner, swapped) {
            (Winner::A, false) | (Winner::B, true) => 0,
            (Winner::B, false) | (Winner::A, true) => 1,
            (Winner::Tie, _) => 2,
            (Winner::BothBad, _) => 3,
        };
        by_item
            .entry((item, first.as_str(), second.as_str()))
            .or_default()
            .insert(rater, label);
    }
    let raters: BTreeSet<&str> = by_item.values().flat_map(|r| r.keys().copied()).collect();
    if raters.len() == 2 {
        let (x, y) = (raters.first()?, raters.last()?);
        let pairs: Vec<(usize, usize)> = by_item
            .values()
            .filter_map(|r| Some((*r.get(x)?, *r.get(y)?)))
            .collect();
        return Some(Agreement {
            method: "cohen".into(),
            kappa: cohen_kappa(&pairs)?,
            items: pairs.len() as u64,
            raters: 2,
        });
    }
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for r in by_item.values().filter(|r| r.len() >= 2) {
        *sizes.entry(r.len()).or_default() += 1;
    }
    let (&n, _) = sizes.iter().max_by_key(|(n, count)| (**count, **n))?;
    let table: Vec<Vec<u64>> = by_item
        .values()
        .filter(|r| r.len() == n)
        .map(|r| {
            let mut c = vec![0u64; 4];
            for &label in r.values() {
                c[label] += 1;
            }
            c
        })
        .collect();
    Some(Agreement {
        method: "fleiss".into(),
        kappa: fleiss_kappa(&table)?,
        items: table.len() as u64,
        raters: n as u64,
    })
}

/// Cohen's κ for two raters who labelled the same items: (p_o − p_e) / (1 − p_e), with p_e from
/// each rater's own label frequencies. `None` when there are no items or agreement by chance is
/// certain (both raters used one and the same label throughout).
pub fn cohen_kappa<L: Ord + Clone>(pairs: &[(L, L)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let observed = pairs.iter().filter(|(x, y)| x == y).count() as f64 / n;
    let mut first: BTreeMap<L, f64> = BTreeMap::new();
    let mut second: BTreeMap<L, f64> = BTreeMap::new();
    for (x, y) in pairs {
        *first.entry(x.clone()).or_default() += 1.0;
        *second.entry(y.clone()).or_default() += 1.0;
    }
    let expected: f64 = first
        .iter()
        .map(|(l, c)| c / n * second.get(l).copied().unwrap_or(0.0) / n)
        .sum();
    (expected < 1.0).then(|| (observed - expected) / (1.0 - expected))
}

/// Fleiss' κ: `counts[i][j]` raters put item i in category j, the same number of raters for
/// every item (at least two). `None` when that does not hold or agreement by chance is certain.
pub fn fleiss_kappa(counts: &[Vec<u64>]) -> Option<f64> {
    let raters: u64 = counts.first()?.iter().sum();
    if raters < 2 || counts.iter().any(|c| c.iter().sum::<u64>() != raters) {
        return None;
    }
    let (items, n) = (counts.len() as f64, raters as f64);
    let categories = counts.iter().map(Vec::len).max().unwrap_or(0);
    let p_bar = counts
        .iter()
        .map(|c| (c.iter().map(|&x| (x * x) as f64).sum::<f64>() - n) / (n * (n - 1.0)))
        .sum::<f64>()
        / items;
    let p_e: f64 = (0..categories)
        .map(|j| {
            let share = counts
                .iter()
                .map(|c| c.get(j).copied().unwrap_or(0) as f64)
                .sum::<f64>()
                / (items * n);
            share * share
        })
        .sum();
    (p_e < 1.0).then(|| (p_bar - p_e) / (1.0 - p_e))
}

/// P(χ²_df > x): the regularized upper incomplete gamma Q(df/2, x/2), by its series below
/// a + 1 and Lentz's continued fraction above (Numerical Recipes §6.2), to about 1e-14.
/// 1 for x ≤ 0, NaN for df ≤ 0 or a NaN argument.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    gamma_q(df / 2.0, x / 2.0)
}

/// ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms), relative error ~1e-15.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the approximation where it is accurate.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x > 0.
fn gamma_q(a: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-16;
    const TINY: f64 = 1e-300;
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // P by its series; Q = 1 − P is not small here, so nothing cancels badly.
        let (mut ap, mut term) = (a, 1.0 / a);
        let mut sum = term;
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * EPS {
                break;
            }
        }
        (1.0 - sum * front).clamp(0.0, 1.0)
    } else {
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < EPS {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
    }
}

/// P(Z > z) for a standard normal Z. Through the χ² tail above, since P(|Z| > z) = P(χ²₁ > z²):
/// ½·Q(½, z²/2) for z ≥ 0 and its complement below, so the upper tail keeps its relative
/// accuracy (~1e-14) far out (8σ: 6.2e-16). NaN for NaN.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let tail = 0.5 * chi2_sf(z * z, 1.0);
    if z >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// P(Z ≤ z) for a standard normal Z: [`normal_sf`] of −z.
pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// The z with P(Z ≤ z) = `p` (scipy's `norm.ppf`): ∓∞ at 0 and 1, NaN outside [0, 1]. Starts
/// from Abramowitz & Stegun 26.2.23 (error < 4.5e-4) in the lower tail and polishes with Halley
/// steps on [`normal_cdf`], so it is as accurate as the CDF (~1e-15 relative); the upper half
/// by symmetry (1 − p is exact there).
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p > 0.5 {
        return -normal_quantile(1.0 - p);
    }
    let t = (-2.0 * p.ln()).sqrt();
    let mut x = -(t
        - (2.515_517 + t * (0.802_853 + t * 0.010_328))
            / (1.0 + t * (1.432_788 + t * (0.189_269 + t * 0.001_308))));
    let sqrt_2pi = (2.0 * std::f64::consts::PI).sqrt();
    for _ in 0..8 {
        // Halley: u = (Φ(x) − p) / φ(x); x ← x − u / (1 + x·u/2).
        let u = (normal_cdf(x) - p) * sqrt_2pi * (0.5 * x * x).exp();
        let step = u / (1.0 + 0.5 * x * u);
        if !step.is_finite() {
            break;
        }
        x -= step;
        if step.abs() <= 1e-15 * x.abs() {
            break;
        }
    }
    x
}

/// The `q`-th quantile of sorted values with linear interpolation (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// SplitMix64 (Steele, Lea, Flood 2014): the same seed gives the same stream on every platform
/// and version, and one draw is a few instructions — a bootstrap over 2,000 items draws 2 million
/// indices per score, where a cryptographic generator cost tens of milliseconds.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (multiply-shift; the bias is below n / 2^64).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniform number in [0, 1) with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(a: &str, b: &str, winner: Winner) -> Vote {
        Vote {
            a: a.into(),
            b: b.into(),
            winner,
            item: None,
            rater: None,
        }
    }

    #[test]
    fn agreement_reads_votes_from_one_side_and_picks_cohen_or_fleiss() {
        let rated = |item: &str, rater: &str, a: &str, b: &str, w: Winner| Vote {
            item: Some(item.into()),
            rater: Some(rater.into()),
            ..vote(a, b, w)
        };
        // Two raters; r2 saw the sides swapped on item 1 and still agreed.
        let votes = vec![
            rated("1", "r1", "A", "B", Winner::A),
            rated("1", "r2", "B", "A", Winner::B),
            rated("2", "r1", "A", "B", Winner::Tie),
            rated("2", "r2", "A", "B", Winner::Tie),
            rated("3", "r1", "A", "B", Winner::B),
            rated("3", "r2", "A", "B", Winner::A),
        ];
        let a = agreement(&votes).unwrap();
        assert_eq!((a.method.as_str(), a.items, a.raters), ("cohen", 3, 2));
        // Observed 2/3; by chance 1/3 (r1: first, second, tie once each; r2: first twice, tie).
        assert!((a.kappa - 0.5).abs() < 1e-12, "{}", a.kappa);
        let mut three = votes.clone();
        three.push(rated("1", "r3", "A", "B", Winner::A));
        three.push(rated("2", "r3", "A", "B", Winner::Tie));
        three.push(rated("3", "r3", "A", "B", Winner::BothBad));
        let a = agreement(&three).unwrap();
        assert_eq!((a.method.as_str(), a.items, a.raters), ("fleiss", 3, 3));
        assert!(agreement(&[vote("A", "B", Winner::A)]).is_none());
    }

    #[test]
    fn chi2_sf_matches_known_quantiles() {
        for (x, df, p) in [
            (3.841458820694124, 1.0, 0.05),
            (5.991464547107979, 2.0, 0.05),
            (11.344866730144373, 3.0, 0.01),
            (6.634896601021214, 1.0, 0.01),
            (18.307038053275146, 10.0, 0.05),
            (0.454936423119572, 1.0, 0.5),
            (124.34211340400407, 100.0, 0.05),
        ] {
            let got = chi2_sf(x, df);
            assert!(
                (got - p).abs() < 1e-10,
                "chi2_sf({x}, {df}) = {got}, want {p}"
            );
        }
        // df 2 is exp(−x/2) exactly; the tails stay accurate.
        assert!((chi2_sf(40.0, 2.0) - (-20.0f64).exp()).abs() < 1e-20);
        assert!((chi2_sf(0.5, 2.0) - (-0.25f64).exp()).abs() < 1e-14);
        assert_eq!(chi2_sf(0.0, 1.0), 1.0);
        assert!(chi2_sf(1.0, 0.0).is_nan());
    }

    #[test]
    fn the_normal_distribution_matches_scipy() {
        // scipy 1.17.1: scipy.stats.norm.sf(z) and scipy.stats.norm.ppf(p).
        for (z, sf) in [
            (0.0, 0.5),
            (0.5, 0.3085375387259869),
            (1.0, 0.15865525393145707),
            (1.7, 0.04456546275854304),
            (1.75, 0.040059156863817086),
            (2.326, 0.010009275340867669),
            (3.0, 0.0013498980316300933),
            (5.0, 2.866515718791933e-07),
            (8.0, 6.22096057427174e-16),
            (12.0, 1.776482112077653e-33),
            (20.0, 2.7536241186061556e-89),
            (-1.0, 0.8413447460685429),
            (-3.0, 0.9986501019683699),
        ] {
            let got = normal_sf(z);
            assert!(
                (got - sf).abs() <= 1e-12 * sf,
                "normal_sf({z}) = {got}, want {sf}"
            );
            assert!((normal_cdf(-z) - sf).abs() <= 1e-12 * sf);
        }
        for (p, z) in [
            (0.99, 2.3263478740408408),
            (0.975, 1.959963984540054),
            (1e-10, -6.361340902404056),
            (0.5, 0.0),
            (0.3, -0.5244005127080409),
        ] {
            let got = normal_quantile(p);
            assert!(
                (got - z).abs() <= 1e-13 * z.abs(),
                "normal_quantile({p}) = {got}, want {z}"
            );
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan() && normal_sf(f64::NAN).is_nan());
        assert_eq!(normal_sf(f64::INFINITY), 0.0);
        assert_eq!(normal_sf(f64::NEG_INFINITY), 1.0);
    }

    #[test]
    fn splitmix64_gives_the_published_stream() {
        // The reference outputs for seed 0 (Vigna's splitmix64.c).
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn kappas_match_textbook_tables() {
        // Cohen (Wikipedia's example): 50 items, both "yes" 20, both "no" 15, 5 and 10 apart.
        let mut pairs = Vec::new();
        pairs.extend(std::iter::repeat_n(("yes", "yes"), 20));
        pairs.extend(std::iter::repeat_n(("yes", "no"), 5));
        pairs.extend(std::iter::repeat_n(("no", "yes"), 10));
        pairs.extend(std::iter::repeat_n(("no", "no"), 15));
        assert!((cohen_kappa(&pairs).unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(cohen_kappa(&[("a", "a"), ("a", "a")]), None);
        // Fleiss (Wikipedia's example): 10 items, 14 raters, 5 categories → κ ≈ 0.210.
        let table: Vec<Vec<u64>> = vec![
            vec![0, 0, 0, 0, 14],
            vec![0, 2, 6, 4, 2],
            vec![0, 0, 3, 5, 6],
            vec![0, 3, 9, 2, 0],
            vec![2, 2, 8, 1, 1],
            vec![7, 7, 0, 0, 0],
            vec![3, 2, 6, 3, 0],
            vec![2, 5, 3, 2, 2],
            vec![6, 5, 2, 1, 0],
            vec![0, 2, 2, 3, 7],
        ];
        let k = fleiss_kappa(&table).unwrap();
        assert!((k - 0.20993).abs() < 1e-5, "{k}");
        assert_eq!(
            fleiss_kappa(&[vec![1, 1], vec![3, 0]]),
            None,
            "raters differ per item"
        );
    }

    #[test]
    fn wilson_intervals_match_the_published_vectors() {
        let (lo, hi) = wilson(8.0, 10.0);
        assert!(
            (lo - 0.490162).abs() < 5e-7 && (hi - 0.943318).abs() < 5e-7,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0.0, 10.0);
        assert!(lo == 0.0 && (hi - 0.277533).abs() < 5e-7, "{lo} {hi}");
    }

    #[test]
    fn bradley_terry_matches_the_published_vectors() {
        let mut votes = vec![
            vote("A", "B", Winner::A),
            vote("A", "B", Winner::A),
            vote("B", "A", Winner::B),
            vote("B", "A", Winner::A),
        ];
        let s = standings(&votes, 200, 7);
        let (a, b) = (&s.ratings[0], &s.ratings[1]);
        assert_eq!((a.variant.as_str(), b.variant.as_str()), ("A", "B"));
        assert!((a.rating - 1095.424).abs() < 5e-4, "{}", a.rating);
        assert!((b.rating - 904.576).abs() < 5e-4, "{}", b.rating);
        assert!(a.low <= a.rating && a.rating <= a.high, "{a:?}");
        votes.push(vote("A", "B", Winner::Tie));
        let s = standings(&votes, 0, 7);
        let d = s.ratings[0].rating - s.ratings[1].rating;
        assert!((d - 147.191).abs() < 5e-4, "{d}");
        // The pair record: A won 3, B won 1, one tie; ties count half.
        let p = &s.pairs[0];
        assert_eq!((p.first_wins, p.second_wins, p.ties), (3, 1, 1));
        assert!((p.win_rate - 0.7).abs() < 1e-12);
    }

    #[test]
    fn a_variant_that_never_lost_stays_finite_and_ranks_are_by_intervals() {
        let mut votes = Vec::new();
        for _ in 0..30 {
            votes.push(vote("strong", "weak", Winner::A));
            votes.push(vote("mid", "weak", Winner::A));
            votes.push(vote("strong", "mid", Winner::Tie));
        }
        let s = standings(&votes, 100, 1);
        assert!(s
            .ratings
            .iter()
            .all(|r| r.rating.is_finite() && r.low.is_finite()));
        let weak = s.ratings.iter().find(|r| r.variant == "weak").unwrap();
        assert_eq!(weak.rank, 3, "{:?}", s.ratings);
        // Seeded: the same votes give the same intervals.
        assert_eq!(standings(&votes, 100, 1), s);
    }
}
