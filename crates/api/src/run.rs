//! Test runs: a prompt version × an endpoint × a dataset version, with scorers and thresholds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::prompt::PromptPin;
use crate::{CallError, Cost, Params, Usage};

/// A scorer and, optionally, the threshold an item must reach to pass (at least the threshold
/// for scores, at most for `latency_ms` and `cost_usd`). Checks (`exact`, `contains`, `regex`,
/// `json_schema`, …) score 1 or 0 and must score 1 unless a threshold says otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorerSpec {
    pub metric: String,
    /// The scorer's argument: a pattern (`regex`), a text (`contains`, `not_contains`), bounds
    /// in characters (`length`, `10..200`), a JSON Schema (`json_schema`, the schema itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

impl ScorerSpec {
    /// One scorer as a person types it, in the CLI's `--scorers` list or the window's field:
    /// `NAME`, `NAME:THRESHOLD`, or `NAME=ARG` for the scorers that take an argument
    /// (`regex=^\d+$`, `contains=refund`, `length=10..200`). Whether the scorer and its
    /// argument make sense is core's to say when the run is created.
    pub fn parse(x: &str) -> Result<Self, String> {
        let x = x.trim();
        if let Some((metric, arg)) = x.split_once('=') {
            return Ok(Self {
                metric: metric.trim().to_owned(),
                arg: Some(arg.to_owned()),
                threshold: None,
            });
        }
        let (metric, threshold) = match x.split_once(':') {
            Some((m, t)) => (
                m,
                Some(
                    t.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|t| t.is_finite())
                        .ok_or_else(|| {
                            format!("scorer '{x}': the threshold after ':' is a number")
                        })?,
                ),
            ),
            None => (x, None),
        };
        Ok(Self {
            metric: metric.trim().to_owned(),
            arg: None,
            threshold,
        })
    }

    /// A comma-separated list of [`ScorerSpec::parse`]'s forms without arguments (an argument
    /// may hold commas: those scorers come one at a time).
    pub fn parse_list(list: &str) -> Result<Vec<Self>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Self::parse)
            .collect()
    }
}

impl std::fmt::Display for ScorerSpec {
    /// The form [`ScorerSpec::parse`] reads (an argument after `=`, else a threshold after `:`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.metric)?;
        if let Some(a) = &self.arg {
            write!(f, "={a}")?;
        }
        if let Some(t) = self.threshold {
            write!(f, " (threshold {t})")?;
        }
        Ok(())
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// `NAME`, `NAME@N` or `NAME:LABEL`, pinned to a version when the run is created.
    pub prompt: String,
    pub endpoint: String,
    /// `NAME` or `NAME@HASH`, pinned to a version when the run is created.
    pub dataset: String,
    /// Parameters that override the prompt version's (`None` fields keep the version's).
    #[serde(default)]
    pub params: Params,
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    #[serde(default)]
    pub scorers: Vec<ScorerSpec>,
    /// Porter stemming for ROUGE.
    #[serde(default)]
    pub stem: bool,
}

fn one() -> u32 {
    1
}

pub fn default_concurrency() -> u32 {
    16
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Finished,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A run as lists show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: i64,
    pub spec: RunSpec,
    pub prompt: PromptPin,
    pub dataset_hash: String,
    pub status: RunStatus,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    /// Items × repeats.
    pub total: u64,
    pub done: u64,
    /// What the run's endpoints' lifecycle says now (a deprecated endpoint's sunset and
    /// replacement), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The result of one item (one repetition).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub item: u64,
    pub rep: u32,
    pub call_id: Option<i64>,
    pub output: String,
    pub error: Option<CallError>,
    pub latency_ms: u64,
    pub ttft_ms: Option<u64>,
    pub usage: Option<Usage>,
    pub cost: Option<Cost>,
    pub scores: BTreeMap<String, f64>,
    pub passed: bool,
    /// HTTP attempts of the call that produced this result (the client's retries included).
    pub attempts: u32,
    /// Rate-limited calls the run engine waited out and sent again.
    pub requeued: u32,
    /// What scorers had to say: a judge's reason, or why it could not score.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, String>,
}

/// Progress of a running run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    pub run_id: i64,
    pub done: u64,
    pub total: u64,
    pub errors: u64,
    pub cost: Cost,
    pub elapsed_ms: u64,
    pub eta_ms: Option<u64>,
    /// How many requests the adaptive limiter allows at once right now.
    pub concurrency: u32,
}

/// A mean with its bootstrap 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// Aggregates of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: RunInfo,
    pub items: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub pass_rate: f64,
    pub scores: BTreeMap<String, Interval>,
    pub latency_ms: Percentiles,
    pub ttft_ms: Percentiles,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Cost,
    /// Whether any cost in it was estimated rather than reported.
    pub cost_estimated: bool,
    /// Retries of every kind: the client's (429, 5xx, timeouts) and the engine's re-sends.
    pub retries: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// How one item changed from run A to run B (B − A for each score).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemDelta {
    pub item: u64,
    pub rep: u32,
    pub deltas: BTreeMap<String, f64>,
    pub a_output: String,
    pub b_output: String,
}

/// How many items (worst regressions first) a comparison lists with their outputs.
pub const COMPARE_ITEMS: usize = 200;

/// Two runs over the same dataset version, compared item by item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunComparison {
    pub a: RunInfo,
    pub b: RunInfo,
    /// The score the items are ordered by (the first scorer both runs have).
    pub primary: Option<String>,
    /// Mean of B − A per score over the items both runs answered, with a paired bootstrap 95 %
    /// interval.
    pub deltas: BTreeMap<String, Interval>,
    pub regressions: u64,
    pub improvements: u64,
    /// Items both runs answered.
    pub paired: u64,
    /// The first [`COMPARE_ITEMS`] paired items: regressions first (largest drop first), then
    /// improvements (largest gain first), then unchanged items.
    pub items: Vec<ItemDelta>,
    /// Items only one of the runs answered without an error.
    pub unpaired: u64,
}

/// Which results a page shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultFilter {
    #[default]
    All,
    Passed,
    Failed,
    Errors,
}

/// How a page of results is ordered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultSort {
    #[default]
    Item,
    Latency,
    /// By one score.
    Score(String),
}

/// A page of a run's results, sorted and filtered by the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultsQuery {
    #[serde(default)]
    pub filter: ResultFilter,
    #[serde(default)]
    pub sort: ResultSort,
    #[serde(default)]
    pub descending: bool,
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "page")]
    pub limit: u64,
}

fn page() -> u64 {
    100
}

impl Default for ResultsQuery {
    fn default() -> Self {
        Self {
            filter: ResultFilter::All,
            sort: ResultSort::Item,
            descending: false,
            offset: 0,
            limit: page(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultsPage {
    /// How many results match the filter (over all pages).
    pub total: u64,
    pub results: Vec<ItemResult>,
}
