//! Pairwise votes between variants and what they add up to: win rates with Wilson intervals and
//! a Bradley–Terry leaderboard with bootstrap intervals (definitions in METRICS.md).

use serde::{Deserialize, Serialize};

/// The outcome of one side-by-side comparison of variant `a` with variant `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    A,
    B,
    Tie,
    BothBad,
}

/// One vote: `a` against `b`, optionally on a named item by a named rater (agreement between
/// raters is measured on items several of them rated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub a: String,
    pub b: String,
    pub winner: Winner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rater: Option<String>,
}

/// How much raters agree on the 4-way vote (first variant better, second better, tie, both
/// bad): Cohen's κ for two raters, Fleiss' κ for more, over the items `raters` raters all rated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// "cohen" or "fleiss".
    pub method: String,
    pub kappa: f64,
    pub items: u64,
    pub raters: u64,
}

/// Two variants' record against each other. `win_rate` is `first`'s, with ties and "both bad"
/// counted as half a win, and its Wilson 95 % interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub first: String,
    pub second: String,
    pub first_wins: u64,
    pub second_wins: u64,
    pub ties: u64,
    pub both_bad: u64,
    pub win_rate: f64,
    pub low: f64,
    pub high: f64,
}

/// A variant's Bradley–Terry rating (400·r + 1000) with its bootstrap 95 % interval; rank 1 is
/// best (1 + the number of variants whose lower bound is above this one's upper bound).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub variant: String,
    pub rating: f64,
    pub low: f64,
    pub high: f64,
    pub rank: u32,
    pub votes: u64,
}

/// Everything a set of votes says, ratings best first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standings {
    pub votes: u64,
    pub pairs: Vec<PairRecord>,
    pub ratings: Vec<Rating>,
    /// Present when votes name items and raters and some items were rated more than once.
    pub agreement: Option<Agreement>,
    /// Bootstrap rounds behind the rating intervals, and their seed.
    pub rounds: u32,
    pub seed: u64,
}
