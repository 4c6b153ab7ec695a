//! Statistics for pairwise votes (definitions and test vectors in METRICS.md): Wilson score
//! intervals for win rates, and Bradley–Terry ratings fitted as LMSYS Chatbot Arena fits them,
//! with multinomial bootstrap intervals. Also the seeded generator and quantile the run engine's
//! bootstraps use.

use std::collections::{BTreeMap, BTreeSet};

use milc_api::arena::{PairRecord, Rating, Standings, Vote, Winner};

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
        rounds,
        seed,
    }
}

/// The `q`-th quantile of sorted values with linear interpolation (numpy's default).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
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
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index below `n` (multiply-shift; the bias is below n / 2^64).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// A uniform number in [0, 1) with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
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
        }
    }

    #[test]
    fn splitmix64_gives_the_published_stream() {
        // The reference outputs for seed 0 (Vigna's splitmix64.c).
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next(), 0x06c4_5d18_8009_454f);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
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
