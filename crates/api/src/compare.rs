//! A/B comparisons: variants side by side over one dataset version, rated blind by evaluators
//! (and by LLM judges), with what the votes add up to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arena::{Agreement, Standings};
use crate::prompt::PromptPin;
use crate::run::{Interval, RunStatus, ScorerSpec};
use crate::{CallError, Cost, Params};

/// One variant: a prompt version on an endpoint with parameters on top of the version's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// `NAME`, `NAME@N` or `NAME:LABEL`, pinned to a version when the comparison is created.
    pub prompt: String,
    pub endpoint: String,
    #[serde(default)]
    pub params: Params,
}

/// What to compare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonSpec {
    pub name: String,
    /// `NAME` or `NAME@HASH`; empty when `inputs` are given instead.
    #[serde(default)]
    pub dataset: String,
    /// A handful of ad-hoc inputs (each becomes an item with the variable `input`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    pub variants: Vec<VariantSpec>,
    /// Rubric criteria raters may score 1–5 for each side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub criteria: Vec<String>,
    /// Scorers each variant's run applies (shown side by side).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scorers: Vec<ScorerSpec>,
    /// Seeds the side randomization (random when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A variant as stored: its label is how results name it (raters never see it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub idx: u32,
    pub label: String,
    pub prompt: PromptPin,
    pub endpoint: String,
    /// The endpoint's lineage, so "tuned v2 vs base" reads as such.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::Lineage>,
    pub params: Params,
    pub run_id: Option<i64>,
    pub run_status: Option<RunStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonInfo {
    pub id: i64,
    pub name: String,
    pub dataset: String,
    pub dataset_hash: String,
    pub items: u64,
    pub variants: Vec<Variant>,
    pub criteria: Vec<String>,
    pub seed: u64,
    pub created_ms: i64,
}

impl ComparisonInfo {
    /// Whether every variant has a finished run, so pairs can be rated.
    pub fn ready(&self) -> bool {
        self.variants
            .iter()
            .all(|v| v.run_status == Some(RunStatus::Finished))
    }
}

/// A vote on a pair as shown: the left side better, the right side, a tie, or both bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Left,
    Right,
    Tie,
    BothBad,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [Self::Left, Self::Right, Self::Tie, Self::BothBad];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Right => "right",
            Self::Tie => "tie",
            Self::BothBad => "both_bad",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Scores 1–5 a rater gave each side on the comparison's criteria.
pub type CriteriaScores = BTreeMap<String, [Option<u8>; 2]>;

/// A rater's vote on one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ballot {
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub criteria: CriteriaScores,
}

/// One pair to rate, blind: which variants are on which side stays on the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatingTask {
    /// Position in the rater's queue, from 0.
    pub index: u64,
    pub total: u64,
    pub item: u64,
    /// The item's input as the model saw it (the last user message, rendered).
    pub input: String,
    pub expected: Vec<String>,
    pub left: String,
    pub right: String,
    /// This rater's vote, if cast already.
    pub ballot: Option<Ballot>,
    /// How many tasks this rater has voted on.
    pub rated: u64,
}

/// One part of an output in a word diff against the other side's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    pub changed: bool,
}

/// One variant's answer to an item, as the side-by-side view shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideOutput {
    pub output: String,
    pub segments: Vec<Segment>,
    pub error: Option<CallError>,
    pub scores: BTreeMap<String, f64>,
    pub latency_ms: u64,
    pub cost: Option<Cost>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideBySideRow {
    pub item: u64,
    pub input: String,
    pub a: SideOutput,
    pub b: SideOutput,
    /// |score B − score A| on the primary score, or else how much of the text differs (0–1).
    pub gap: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SideBySideQuery {
    pub a: u32,
    pub b: u32,
    /// Largest gap first instead of item order.
    #[serde(default)]
    pub by_gap: bool,
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "page")]
    pub limit: u64,
}

fn page() -> u64 {
    50
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideBySide {
    pub a: String,
    pub b: String,
    /// The score gaps are measured on (the first scorer both runs have), if any.
    pub primary: Option<String>,
    /// Items both variants answered.
    pub total: u64,
    pub rows: Vec<SideBySideRow>,
}

/// A variant's run figures and its mean rubric scores from raters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub label: String,
    pub run_id: Option<i64>,
    pub errors: u64,
    pub scores: BTreeMap<String, Interval>,
    pub latency_p50_ms: f64,
    pub cost: Option<Cost>,
    pub cost_estimated: bool,
    pub criteria: BTreeMap<String, f64>,
}

/// Share of decisive votes won by the left side, with its Wilson 95 % interval (0.5 = no bias).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionBias {
    pub decisive: u64,
    pub left_wins: u64,
    pub share: f64,
    pub low: f64,
    pub high: f64,
}

/// An LLM judge's pairwise votes: each pair judged in both orders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeResult {
    pub judge: String,
    /// Pairs judged in both orders.
    pub pairs: u64,
    /// Pairs whose two verdicts disagree once sides are undone (left tallied as they are).
    pub inconsistent: u64,
    /// Items of the first inconsistent pairs.
    pub inconsistent_items: Vec<u64>,
    pub standings: Standings,
    /// The judge against human raters on the pairs both voted on (Cohen's κ).
    pub agreement_with_humans: Option<Agreement>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaterProgress {
    pub rater: String,
    pub rated: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonResults {
    pub comparison: ComparisonInfo,
    /// Tasks in each rater's queue.
    pub tasks: u64,
    pub variants: Vec<VariantResult>,
    /// Human (and imported) votes.
    pub human: Standings,
    pub position_bias: PositionBias,
    pub raters: Vec<RaterProgress>,
    pub judges: Vec<JudgeResult>,
}

/// Progress of a comparison's runs: one run per variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareProgress {
    pub variant: u32,
    pub done: u64,
    pub total: u64,
}

/// What a judge pass did: the judge's standing, and the calls that gave no vote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeRun {
    pub result: JudgeResult,
    pub failed: u64,
    pub first_failure: Option<String>,
}
