//! Drift: has a subject's recent window moved away from its baseline window? The tests the
//! console's drift monitoring runs on each figure, and the Hodges–Lehmann shift of METRICS.md's
//! canary judgement. Pure functions, no I/O; x is the sample under test (the current window),
//! y the reference (the baseline), and every sign reads "x − y".
//!
//! # Drift
//!
//! - **Continuous figures** (latency, output tokens, cost per call, scores): [`mann_whitney`],
//!   the Wilcoxon rank-sum test, two-sided, normal approximation with continuity and tie
//!   correction — exactly `scipy.stats.mannwhitneyu(x, y, alternative='two-sided',
//!   method='asymptotic', use_continuity=True)` (scipy 1.17): U is x's, p is scipy's. The signed
//!   z is R's `wilcox.test(x, y, exact=FALSE, correct=TRUE)` statistic; its magnitude is the z
//!   scipy's p comes from.
//! - **The size of a shift**: [`hodges_lehmann`], the median of all m·n differences x_i − y_j
//!   (`numpy.median(numpy.subtract.outer(x, y))`), found by selection in O((m + n) log(mn))
//!   without listing the pairs; its interval is Lehmann's distribution-free one from the order
//!   statistics of those differences (Hollander & Wolfe, *Nonparametric Statistical Methods*,
//!   §4.3, large-sample form): with C = ⌊mn/2 + ½ − z_{(1+c)/2}·√(mn(m+n+1)/12)⌋, the interval
//!   is [D₍C₎, D₍mn+1−C₎] — the shifts d at which the test above, continuity-corrected and
//!   without ties, does not reject x − d against y. METRICS.md's canary uses c = 0.98. It takes
//!   no tie correction (ties only narrow it), where Kayenta, following R, inverts the
//!   tie-corrected test numerically; on data without ties the two agree.
//! - **Rates** (error rate, refusal rate): [`two_proportions`], the pooled two-proportion z-test,
//!   two-sided — exactly `statsmodels.stats.proportion.proportions_ztest([x1, x2], [n1, n2])`
//!   (statsmodels 0.15), except where that divides 0 by 0 (no event, or only events, in both
//!   samples together): there nothing differs, so z = 0 and p = 1 rather than NaN.
//!
//! An empty sample, a non-finite value or a count above its total gives `None`: there is no
//! test to run, and a NaN would read as "not significant" downstream. The test vectors, with
//! the Python that produced them, are in this module's tests; p-values come from
//! [`crate::stats::normal_sf`], the crate's one normal distribution.

use crate::stats::{normal_quantile, normal_sf, SplitMix64};

/// A rank-sum test of x against y.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankSum {
    /// Mann–Whitney U of x: the pairs (x_i, y_j) with x_i > y_j, ties counting ½.
    pub u: f64,
    /// Standardised U − mn/2, continuity- and tie-corrected; positive when x tends to be larger.
    /// 0 when every value is tied.
    pub z: f64,
    /// Two-sided p-value, in [0, 1].
    pub p: f64,
}

/// The two-sided Mann–Whitney U (Wilcoxon rank-sum) test of x against y by the normal
/// approximation with continuity and tie correction, as scipy computes it (see the module doc).
/// `None` when either sample is empty or holds a NaN or an infinity.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<RankSum> {
    if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    // −0 and 0 sort next to each other under total_cmp, so grouping by == still ties them.
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks (1-based) and Σ(t³ − t) over the groups of tied values.
    let (mut r1, mut tie_term) = (0.0, 0.0);
    let mut start = 0;
    while start < all.len() {
        let mut end = start + 1;
        while end < all.len() && all[end].0 == all[start].0 {
            end += 1;
        }
        let rank = (start + 1 + end) as f64 / 2.0;
        let in_x = all[start..end].iter().filter(|v| v.1).count();
        r1 += rank * in_x as f64;
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    let u = r1 - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let d = u - mu;
    // |U − mn/2| − ½ over σ, as scipy's `_get_mwu_z` of max(U1, U2); U and mn/2 are multiples
    // of ½, so below ½ means 0 and there is nothing to correct.
    let excess = (d.abs() - 0.5).max(0.0);
    let z = if var > 0.0 && excess > 0.0 {
        d.signum() * excess / var.sqrt()
    } else {
        // All values tied (σ = 0), or U exactly at its mean: no evidence either way.
        0.0
    };
    let p = (2.0 * normal_sf(z.abs())).min(1.0);
    Some(RankSum { u, z, p })
}

/// A Hodges–Lehmann shift of x against y.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// The median of all differences x_i − y_j.
    pub estimate: f64,
    /// The distribution-free interval at the confidence asked for (see the module doc), or
    /// `None` when the samples are too small for it: no shift could be rejected at that level,
    /// so the interval is unbounded.
    pub interval: Option<(f64, f64)>,
}

/// The Hodges–Lehmann shift of x against y and its `confidence` interval (0.98 for
/// METRICS.md's canary judgement). `None` when either sample is empty or holds a NaN or an
/// infinity, or when `confidence` is not strictly between 0 and 1.
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> Option<Shift> {
    if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) {
        return None;
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let diffs = Differences::new(x, y);
    let total = diffs.len();
    let estimate = if total % 2 == 1 {
        diffs.kth(total / 2)
    } else {
        (diffs.kth(total / 2 - 1) + diffs.kth(total / 2)) / 2.0
    };
    let (m, n, mn) = (x.len() as f64, y.len() as f64, total as f64);
    let z = normal_quantile((1.0 + confidence) / 2.0);
    let c = (mn / 2.0 + 0.5 - z * (mn * (m + n + 1.0) / 12.0).sqrt()).floor();
    // C ≤ ⌊mn/2 + ½⌋, so the upper rank mn + 1 − C is never below C.
    let interval = (c >= 1.0).then(|| {
        let c = c as usize;
        (diffs.kth(c - 1), diffs.kth(total - c))
    });
    Some(Shift { estimate, interval })
}

/// A pooled two-proportion z-test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoProportions {
    /// x1 / n1.
    pub p1: f64,
    /// x2 / n2.
    pub p2: f64,
    /// (x1 + x2) / (n1 + n2).
    pub pooled: f64,
    /// (p1 − p2) / √(pooled·(1 − pooled)·(1/n1 + 1/n2)); 0 when pooled is 0 or 1.
    pub z: f64,
    /// Two-sided p-value; 1 when pooled is 0 or 1.
    pub p: f64,
}

/// The pooled two-proportion z-test of x1 events in n1 trials against x2 in n2, two-sided, as
/// statsmodels' `proportions_ztest` computes it (see the module doc). `None` when a sample has
/// no trials or more events than trials.
pub fn two_proportions(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<TwoProportions> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let (p1, p2) = (x1 / n1, x2 / n2);
    let pooled = (x1 + x2) / (n1 + n2);
    let var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    let (z, p) = if var > 0.0 {
        let z = (p1 - p2) / var.sqrt();
        (z, 2.0 * normal_sf(z.abs()))
    } else {
        (0.0, 1.0)
    };
    Some(TwoProportions {
        p1,
        p2,
        pooled,
        z,
        p,
    })
}

fn all_finite(xs: &[f64]) -> bool {
    xs.iter().all(|v| v.is_finite())
}

/// The m·n differences x_i − y_j as a matrix sorted along both axes — x ascending down the rows,
/// y descending along the columns — never built: the k-th smallest is found by selection with
/// random pivots (each round counts, per row, the entries below a pivot in one O(m + n)
/// staircase walk and narrows each row's window of candidates): expected time O((m + n) log(mn)),
/// no memory beyond the two samples.
struct Differences {
    x: Vec<f64>,
    /// y, descending.
    y: Vec<f64>,
}

impl Differences {
    fn new(x: &[f64], y: &[f64]) -> Self {
        let mut x = x.to_vec();
        let mut y = y.to_vec();
        x.sort_unstable_by(f64::total_cmp);
        y.sort_unstable_by(|a, b| b.total_cmp(a));
        Self { x, y }
    }

    fn len(&self) -> usize {
        self.x.len() * self.y.len()
    }

    /// Row i, column j. Rounding is monotone, so the computed values stay sorted along both
    /// axes, and every comparison below sees the same value for the same pair.
    fn at(&self, i: usize, j: usize) -> f64 {
        self.x[i] - self.y[j]
    }

    /// Per row, how many entries are below `t` (or at most `t` when `inclusive`): non-increasing
    /// down the rows, so one pointer walks left across all of them.
    fn counts(&self, t: f64, inclusive: bool, out: &mut [usize]) {
        let mut j = self.y.len();
        for (i, c) in out.iter_mut().enumerate() {
            while j > 0 && {
                let v = self.at(i, j - 1);
                if inclusive {
                    v > t
                } else {
                    v >= t
                }
            } {
                j -= 1;
            }
            *c = j;
        }
    }

    /// The k-th smallest difference, 0-based (k < len).
    fn kth(&self, k: usize) -> f64 {
        let (m, n) = (self.x.len(), self.y.len());
        // Row i's candidates are columns lo[i]..hi[i]: everything left of them is known to rank
        // before the answer, everything right of them after it.
        let mut lo = vec![0usize; m];
        let mut hi = vec![n; m];
        let (mut lt, mut le) = (vec![0usize; m], vec![0usize; m]);
        // Seeded: the same samples take the same path (the answer never depends on it).
        let mut rng = SplitMix64(0x5eed_d1f7_5eed_d1f7);
        let small = 4 * (m + n) + 64;
        loop {
            let before: usize = lo.iter().sum();
            let active: usize = lo.iter().zip(&hi).map(|(l, h)| h - l).sum();
            if active <= small {
                let mut rest: Vec<f64> = (0..m)
                    .flat_map(|i| (lo[i]..hi[i]).map(move |j| (i, j)))
                    .map(|(i, j)| self.at(i, j))
                    .collect();
                let (_, v, _) = rest.select_nth_unstable_by(k - before, f64::total_cmp);
                return *v;
            }
            // A uniformly chosen candidate as the pivot.
            let mut r = rng.below(active);
            let mut pivot = f64::NAN;
            for i in 0..m {
                let width = hi[i] - lo[i];
                if r < width {
                    pivot = self.at(i, lo[i] + r);
                    break;
                }
                r -= width;
            }
            self.counts(pivot, false, &mut lt);
            self.counts(pivot, true, &mut le);
            let below: usize = lt.iter().sum();
            let at_most: usize = le.iter().sum();
            if k < below {
                // The answer is below the pivot: drop everything at or above it.
                for i in 0..m {
                    hi[i] = hi[i].min(lt[i]).max(lo[i]);
                }
            } else if k < at_most {
                return pivot;
            } else {
                // The answer is above the pivot: everything at or below it ranks before.
                for i in 0..m {
                    lo[i] = lo[i].max(le[i]).min(hi[i]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within 1e-9 of `want`, relatively (so a p of 1e-85 is checked to 1e-94); within 1e-15 of 0.
    fn close(got: f64, want: f64) -> bool {
        if want == 0.0 {
            got.abs() <= 1e-15
        } else {
            (got - want).abs() <= 1e-9 * want.abs()
        }
    }

    fn f(xs: &[i32]) -> Vec<f64> {
        xs.iter().map(|&v| f64::from(v)).collect()
    }

    fn tokens() -> (Vec<f64>, Vec<f64>) {
        (
            (0..40).map(|i| f64::from((i * 7) % 13)).collect(),
            (0..25).map(|i| f64::from((i * 5) % 11 + 2)).collect(),
        )
    }

    fn latency() -> (Vec<f64>, Vec<f64>) {
        (
            vec![
                212.5, 198.25, 305.0, 250.75, 199.5, 410.0, 275.25, 233.0, 260.5, 221.75, 301.0,
                288.5,
            ],
            vec![
                180.0, 205.5, 190.25, 240.0, 175.5, 199.5, 210.0, 230.75, 185.25, 220.0,
            ],
        )
    }

    /// The samples of the vectors below, by name.
    fn samples() -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
        let (tx, ty) = tokens();
        let (lx, ly) = latency();
        vec![
            ("textbook", f(&[19, 22, 16, 29, 24]), f(&[20, 11, 17, 12])),
            (
                "ties_unequal",
                f(&[1, 2, 2, 3, 3, 3, 4, 5]),
                f(&[3, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9]),
            ),
            ("identical", f(&[1, 2, 3, 4, 5]), f(&[1, 2, 3, 4, 5])),
            ("tokens", tx, ty),
            (
                "separated",
                f(&(31..=60).collect::<Vec<_>>()),
                f(&(1..=30).collect::<Vec<_>>()),
            ),
            ("latency", lx, ly),
            ("one_each", vec![1.0], vec![2.0]),
            ("all_tied", vec![3.0; 2], vec![3.0; 3]),
        ]
    }

    // Reference vectors, from scipy 1.17.1 / numpy 2.4.6 / statsmodels 0.15.0 on the samples
    // above (each x, y as numpy float arrays; `tokens` is x = [(i*7) % 13 for i in range(40)],
    // y = [(i*5) % 11 + 2 for i in range(25)]):
    //
    //   r = scipy.stats.mannwhitneyu(x, y, alternative='two-sided', method='asymptotic',
    //                                use_continuity=True)        # U = r.statistic, p = r.pvalue
    //   n1, n2 = len(x), len(y); n = n1 + n2
    //   _, t = numpy.unique(numpy.concatenate([x, y]), return_counts=True)
    //   s = numpy.sqrt(n1*n2/12 * ((n + 1) - (t**3 - t).sum()/(n*(n-1))))
    //   d = U - n1*n2/2; z = numpy.sign(d) * max(abs(d) - 0.5, 0) / s     # 0 when s == 0
    //
    //   D = numpy.sort(numpy.subtract.outer(x, y).ravel()); estimate = numpy.median(D)
    //   mn = n1*n2; c = floor(mn/2 + 0.5 - scipy.stats.norm.ppf(0.99) * sqrt(mn*(n+1)/12))
    //   interval = (D[c-1], D[mn-c]) if c >= 1 else None
    struct Vector {
        name: &'static str,
        u: f64,
        z: f64,
        p: f64,
        estimate: f64,
        interval: Option<(f64, f64)>,
    }

    const VECTORS: [Vector; 8] = [
        Vector {
            name: "textbook",
            u: 17.0,
            z: 1.5921683328090657,
            p: 0.11134688653314041,
            estimate: 7.0,
            interval: Some((-4.0, 18.0)),
        },
        Vector {
            name: "ties_unequal",
            u: 10.5,
            z: -2.758978149905264,
            p: 0.005798241168678046,
            estimate: -3.0,
            interval: Some((-5.0, -1.0)),
        },
        Vector {
            name: "identical",
            u: 12.5,
            z: 0.0,
            p: 1.0,
            estimate: 0.0,
            interval: Some((-4.0, 4.0)),
        },
        Vector {
            name: "tokens",
            u: 412.5,
            z: -1.1767004329416342,
            p: 0.2393150949971633,
            estimate: -1.0,
            interval: Some((-4.0, 1.0)),
        },
        Vector {
            name: "separated",
            u: 900.0,
            z: 6.64559922588161,
            p: 3.019859359162157e-11,
            estimate: 30.0,
            interval: Some((24.0, 36.0)),
        },
        Vector {
            name: "latency",
            u: 102.5,
            z: 2.770180193612817,
            p: 0.0056025288349961485,
            estimate: 50.875,
            interval: Some((10.75, 99.5)),
        },
        Vector {
            name: "one_each",
            u: 0.0,
            z: 0.0,
            p: 1.0,
            estimate: -1.0,
            interval: None,
        },
        Vector {
            name: "all_tied",
            u: 3.0,
            z: 0.0,
            p: 1.0,
            estimate: 0.0,
            interval: None,
        },
    ];

    #[test]
    fn mann_whitney_matches_scipy() {
        for ((name, x, y), v) in samples().into_iter().zip(VECTORS) {
            assert_eq!(name, v.name);
            let r = mann_whitney(&x, &y).unwrap();
            assert!(
                close(r.u, v.u) && close(r.z, v.z) && close(r.p, v.p),
                "{name}: got {r:?}, want U {} z {} p {}",
                v.u,
                v.z,
                v.p
            );
        }
    }

    #[test]
    fn mann_whitney_is_antisymmetric_in_its_samples() {
        let (x, y) = latency();
        let (a, b) = (mann_whitney(&x, &y).unwrap(), mann_whitney(&y, &x).unwrap());
        assert_eq!(a.u + b.u, (x.len() * y.len()) as f64);
        assert_eq!((a.z, a.p), (-b.z, b.p));
    }

    #[test]
    fn hodges_lehmann_matches_numpy_and_the_interval_formula() {
        for ((name, x, y), v) in samples().into_iter().zip(VECTORS) {
            let s = hodges_lehmann(&x, &y, 0.98).unwrap();
            assert!(close(s.estimate, v.estimate), "{name}: {s:?}");
            assert_eq!(s.interval, v.interval, "{name}");
        }
        // A 95 % interval is inside the 98 % one.
        let (x, y) = latency();
        let (wide, narrow) = (
            hodges_lehmann(&x, &y, 0.98).unwrap().interval.unwrap(),
            hodges_lehmann(&x, &y, 0.95).unwrap().interval.unwrap(),
        );
        assert!(
            wide.0 <= narrow.0 && narrow.1 <= wide.1,
            "{wide:?} {narrow:?}"
        );
    }

    #[test]
    fn the_selection_agrees_with_sorting_every_difference() {
        // Large enough to take the pivoting path, with many ties and both signs of zero.
        let mut rng = SplitMix64(42);
        let x: Vec<f64> = (0..157).map(|_| (rng.below(40) as f64) - 20.0).collect();
        let mut y: Vec<f64> = (0..93).map(|_| rng.unit() * 30.0 - 10.0).collect();
        y.extend([0.0, -0.0, 5.0, 5.0]);
        let mut all: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        all.sort_by(f64::total_cmp);
        let d = Differences::new(&x, &y);
        for k in (0..all.len())
            .step_by(97)
            .chain([0, all.len() / 2, all.len() - 1])
        {
            assert_eq!(d.kth(k), all[k], "k = {k}");
        }
    }

    #[test]
    fn hodges_lehmann_of_large_samples_does_not_list_the_pairs() {
        // 10⁹ differences; listing them would take 8 GB.
        let x: Vec<f64> = (0..40_000).map(|i| f64::from(i % 1000) + 7.0).collect();
        let y: Vec<f64> = (0..25_000).map(|i| f64::from(i % 1000)).collect();
        let s = hodges_lehmann(&x, &y, 0.98).unwrap();
        assert_eq!(s.estimate, 7.0);
        let (lo, hi) = s.interval.unwrap();
        assert!(lo <= 7.0 && 7.0 <= hi && hi - lo <= 20.0, "{s:?}");
    }

    // statsmodels 0.15.0:
    //   z, p = statsmodels.stats.proportion.proportions_ztest([x1, x2], [n1, n2])
    // The last two give nan, nan there (0 / 0); here z 0 and p 1.
    /// (x1, n1), (x2, n2), z, p.
    type Rates = ((u64, u64), (u64, u64), f64, f64);

    const PROPORTIONS: [Rates; 8] = [
        (
            (15, 200),
            (25, 210),
            -1.5024781117175967,
            0.13297367663174484,
        ),
        (
            (0, 100),
            (5, 100),
            -2.2645540682891916,
            0.023540058261177936,
        ),
        ((30, 300), (30, 300), 0.0, 1.0),
        ((1, 3), (0, 7), 1.6101529717988265, 0.10736446520661455),
        (
            (120, 1000),
            (90, 1500),
            5.298335995093724,
            1.1686277618169483e-07,
        ),
        (
            (500, 1000),
            (100, 1000),
            19.518001458970662,
            7.719934594295634e-85,
        ),
        ((0, 10), (0, 20), 0.0, 1.0),
        ((10, 10), (20, 20), 0.0, 1.0),
    ];

    #[test]
    fn two_proportions_matches_statsmodels() {
        for ((x1, n1), (x2, n2), z, p) in PROPORTIONS {
            let r = two_proportions(x1, n1, x2, n2).unwrap();
            assert!(
                close(r.z, z) && close(r.p, p),
                "{x1}/{n1} vs {x2}/{n2}: got {r:?}, want z {z} p {p}"
            );
            assert!(r.p.is_finite() && r.z.is_finite());
        }
        let r = two_proportions(15, 200, 25, 210).unwrap();
        assert_eq!((r.p1, r.p2, r.pooled), (0.075, 25.0 / 210.0, 40.0 / 410.0));
    }

    #[test]
    fn nothing_to_test_is_none_not_nan() {
        let some = [1.0, 2.0];
        assert_eq!(mann_whitney(&[], &some), None);
        assert_eq!(mann_whitney(&some, &[]), None);
        assert_eq!(mann_whitney(&[1.0, f64::NAN], &some), None);
        assert_eq!(mann_whitney(&[f64::INFINITY], &some), None);
        assert_eq!(hodges_lehmann(&[], &some, 0.98), None);
        assert_eq!(hodges_lehmann(&some, &[f64::NAN], 0.98), None);
        assert_eq!(hodges_lehmann(&some, &some, 1.0), None);
        assert_eq!(hodges_lehmann(&some, &some, f64::NAN), None);
        assert_eq!(two_proportions(0, 0, 1, 10), None);
        assert_eq!(two_proportions(1, 10, 0, 0), None);
        assert_eq!(two_proportions(11, 10, 1, 10), None);
    }
}
