//! The two ends of the lifecycle: requirements cards (use cases with SLOs, candidates and their
//! verdicts), feasibility load tests, drift against a baseline, scheduled evaluations, endpoint
//! retirement with its "still used by" report, and compliance archives.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::money::Cost;
use crate::run::Percentiles;
use crate::{EndpointStatus, Params};

// ---- retirement ------------------------------------------------------------------------------

/// An endpoint's place in its lifecycle: deprecated ones name a sunset date and a replacement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    pub status: EndpointStatus,
    /// When a deprecated endpoint is to be retired (UTC ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset_ms: Option<i64>,
    /// The endpoint that replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

/// What an endpoint or a prompt version is still used by: everything that would break if it were
/// retired, and its recent traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsedBy {
    /// `endpoint 'X'` or `prompt summarize@3`.
    pub subject: String,
    /// Prompt versions whose default endpoint it is (`name@version`).
    pub prompt_versions: Vec<String>,
    /// Labels pointing at those versions (or at the version itself): `name:label → version`.
    pub labels: Vec<String>,
    /// Gateway routes and arms: `route model / arm name`.
    pub routes: Vec<String>,
    /// Comparisons with a variant on it: `comparison / variant label`.
    pub comparisons: Vec<String>,
    /// Requirements cards with a candidate on it: `card (chosen)` or `card`.
    pub usecases: Vec<String>,
    /// Scheduled evaluations that call it.
    pub schedules: Vec<String>,
    /// Budgets set on it.
    pub budgets: Vec<String>,
    /// Drift watches on it.
    pub drift_watches: Vec<String>,
    /// Deprecated endpoints that name it as their replacement (an endpoint only).
    #[serde(default)]
    pub replacement_for: Vec<String>,
    /// Calls in the last 7 days, by source.
    pub calls_7d: BTreeMap<String, u64>,
    /// Calls in the last 30 days, by source.
    pub calls_30d: BTreeMap<String, u64>,
}

impl UsedBy {
    /// Whether anything still refers to it (recent calls alone do not count).
    pub fn is_referenced(&self) -> bool {
        !(self.prompt_versions.is_empty()
            && self.labels.is_empty()
            && self.routes.is_empty()
            && self.comparisons.is_empty()
            && self.usecases.is_empty()
            && self.schedules.is_empty()
            && self.budgets.is_empty()
            && self.drift_watches.is_empty()
            && self.replacement_for.is_empty())
    }

    /// Every reference as one line each, `kind: what`.
    pub fn references(&self) -> Vec<String> {
        let groups: [(&str, &Vec<String>); 9] = [
            ("prompt version", &self.prompt_versions),
            ("label", &self.labels),
            ("gateway route", &self.routes),
            ("comparison", &self.comparisons),
            ("use case", &self.usecases),
            ("schedule", &self.schedules),
            ("budget", &self.budgets),
            ("drift watch", &self.drift_watches),
            ("replacement for", &self.replacement_for),
        ];
        groups
            .iter()
            .flat_map(|(kind, xs)| xs.iter().map(move |x| format!("{kind}: {x}")))
            .collect()
    }
}

/// One row of the retirement page: a deprecated or retired endpoint and its remaining traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetirementEntry {
    pub endpoint: String,
    pub lifecycle: Lifecycle,
    /// Calls in the last 7 days (all sources).
    pub calls_7d: u64,
    /// Calls in the last 30 days (all sources).
    pub calls_30d: u64,
    /// How many references would break (see [`UsedBy::references`]).
    pub references: u64,
}

// ---- requirements cards -----------------------------------------------------------------------

/// A use case as written down: who owns it, what it must achieve, and the traffic it expects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UseCaseSpec {
    pub name: String,
    pub owner: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub slo: Slo,
    #[serde(default)]
    pub traffic: Traffic,
}

/// The service-level objectives every candidate is held to; an unset one is not checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ttft_ms: Option<u64>,
    /// Cost per 1 000 requests in pico-USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_1k_pico: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<ScoreSlo>,
    /// The highest acceptable share of failed calls, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Personal data must be redacted before a request leaves the machine.
    #[serde(default)]
    pub pii_redaction: bool,
}

/// A minimum score on a named dataset with a named scorer: `rougeL >= 0.35 on tickets@v3`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreSlo {
    /// A scorer as typed (`rougeL`, `contains:refund`).
    pub scorer: String,
    pub min: f64,
    /// `name` or `name@version-prefix`.
    pub dataset: String,
}

impl fmt::Display for ScoreSlo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} >= {} on {}", self.scorer, self.min, self.dataset)
    }
}

impl ScoreSlo {
    /// Reads `SCORER>=MIN@DATASET`, e.g. `rougeL>=0.35@tickets`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not SCORER>=MIN@DATASET, e.g. rougeL>=0.35@tickets");
        let (scorer, rest) = s.split_once(">=").ok_or_else(bad)?;
        let (min, dataset) = rest.split_once('@').ok_or_else(bad)?;
        let min: f64 = min.trim().parse().map_err(|_| bad())?;
        let (scorer, dataset) = (scorer.trim(), dataset.trim());
        if scorer.is_empty() || dataset.is_empty() || !min.is_finite() {
            return Err(bad());
        }
        Ok(Self {
            scorer: scorer.to_owned(),
            min,
            dataset: dataset.to_owned(),
        })
    }
}

/// The traffic a use case expects, for cost projections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    #[serde(default)]
    pub requests_per_minute: f64,
    #[serde(default)]
    pub tokens_per_request: u64,
}

/// A candidate for a use case: prompt version × endpoint (× parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateSpec {
    /// `name@version` or `name:label` (pinned to the version it points at when added).
    pub prompt: String,
    pub endpoint: String,
    #[serde(default)]
    pub params: Params,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Unknown => "unknown",
        }
    }
}

/// Where a figure came from: a run, a load test, or the live calls of a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Run {
        id: i64,
    },
    Loadtest {
        id: i64,
        concurrency: u32,
    },
    Live {
        since_ms: i64,
        until_ms: i64,
        calls: u64,
    },
    Policy {
        policy: String,
    },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Run { id } => write!(f, "run #{id}"),
            Self::Loadtest { id, concurrency } => {
                write!(f, "load test #{id} at concurrency {concurrency}")
            }
            Self::Live { calls, .. } => write!(f, "live calls of the last 7 days ({calls})"),
            Self::Policy { policy } => write!(f, "redaction policy: {policy}"),
        }
    }
}

/// One SLO checked for one candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloCheck {
    /// `p95 latency`, `p95 TTFT`, `cost per 1k requests`, `score`, `error rate`, `PII redaction`.
    pub slo: String,
    /// The target as written, e.g. `<= 3000 ms`.
    pub target: String,
    /// The measured value as shown, if any.
    pub value: Option<String>,
    pub verdict: Verdict,
    pub evidence: Option<Evidence>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: i64,
    /// `name@version`, pinned.
    pub prompt: String,
    pub endpoint: String,
    pub params: Params,
    pub chosen: bool,
    pub checks: Vec<SloCheck>,
    /// Fail if any SLO fails, else unknown if any is unknown, else pass.
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttachedEvidence {
    pub kind: String,
    pub id: i64,
    pub attached_ms: i64,
}

/// A requirements card: the use case, each candidate's verdict, what is attached to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UseCase {
    pub id: i64,
    pub spec: UseCaseSpec,
    pub candidates: Vec<Candidate>,
    pub attached: Vec<AttachedEvidence>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl UseCase {
    pub fn chosen(&self) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.chosen)
    }
}

// ---- load tests -------------------------------------------------------------------------------

/// A feasibility load test: each concurrency level held for `duration_ms` against one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadTestSpec {
    pub endpoint: String,
    /// A prompt version (`name@version` or `name:label`); without one, `message` is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default = "default_message")]
    pub message: String,
    pub concurrency: Vec<u32>,
    pub duration_ms: u64,
    #[serde(default)]
    pub params: Params,
    /// The card whose expected traffic the cost is projected at (and that it is attached to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usecase: Option<String>,
}

pub fn default_message() -> String {
    "Summarize in two sentences why load tests matter before a model goes to production.".to_owned()
}

/// What one concurrency level measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelResult {
    pub concurrency: u32,
    pub requests: u64,
    pub errors: u64,
    /// Answers that were HTTP 429.
    pub rate_limited: u64,
    pub latency_ms: Percentiles,
    pub ttft_ms: Percentiles,
    pub requests_per_s: f64,
    pub output_tokens_per_s: f64,
    pub error_rate: f64,
    pub rate_limited_rate: f64,
    pub cost: Cost,
    /// Mean cost of a request × 1 000.
    pub cost_per_1k: Cost,
    /// At the card's expected traffic (requests per minute × 30 days), if a card is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_month: Option<Cost>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadTestStatus {
    Running,
    Finished,
    Cancelled,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadTest {
    pub id: i64,
    pub spec: LoadTestSpec,
    /// The pinned prompt version, if any.
    pub prompt_version: Option<String>,
    pub status: LoadTestStatus,
    pub levels: Vec<LevelResult>,
    /// The level after which latency grows faster than throughput, if the levels show one.
    pub knee: Option<u32>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
}

/// A load test's progress: the level running and how far into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadTestProgress {
    pub id: i64,
    pub level: u32,
    pub level_index: u32,
    pub levels: u32,
    /// 0–1 over the whole test.
    pub fraction: f64,
    pub requests: u64,
}

// ---- drift ----------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Endpoint,
    Prompt,
    Route,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Prompt => "prompt",
            Self::Route => "route",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Endpoint, Self::Prompt, Self::Route]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What to compare: a subject's recent window against a baseline window (by default the window
/// just before it, of the same length).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftQuery {
    pub kind: DriftKind,
    /// An endpoint name, a prompt version `name@version`, or a route's model name.
    pub subject: String,
    pub since_ms: i64,
    pub until_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<(i64, i64)>,
}

/// One figure compared: baseline, current, the change and whether it is significant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftFigure {
    /// `latency p50`, `latency p95`, `output tokens`, `error rate`, `refusal rate`,
    /// `cost per call`, `score <name>`.
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// current − baseline, relative to the baseline (0.2 = +20 %).
    pub change: Option<f64>,
    /// The test used: `mann-whitney`, `two-proportion`, or `none` with too few observations.
    pub test: String,
    pub p_value: Option<f64>,
    pub significant: bool,
    /// Significant and beyond the threshold: an alert.
    pub drifted: bool,
    pub baseline_n: u64,
    pub current_n: u64,
}

/// A day of the subject's figures, for the chart over time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftPoint {
    pub day_ms: i64,
    pub calls: u64,
    pub latency_p50_ms: Option<f64>,
    pub output_tokens: Option<f64>,
    pub error_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub query: DriftQuery,
    pub baseline: (i64, i64),
    pub figures: Vec<DriftFigure>,
    pub series: Vec<DriftPoint>,
    pub drifted: bool,
}

/// How drift is judged: the relative change beyond which a significant change is drift, the
/// significance level, and the phrases that mark an answer as a refusal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftSettings {
    pub threshold: f64,
    pub alpha: f64,
    pub refusal_phrases: Vec<String>,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            threshold: 0.25,
            alpha: 0.01,
            refusal_phrases: [
                "I can't help with",
                "I cannot help with",
                "I'm sorry, but I can't",
                "I am unable to",
                "As an AI",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftWatch {
    pub id: i64,
    pub kind: DriftKind,
    pub subject: String,
    pub window_ms: i64,
}

// ---- scheduled evaluation ---------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    /// The card whose dataset and chosen candidate it evaluates, if any.
    pub usecase: Option<String>,
    pub spec: crate::run::RunSpec,
    pub every_ms: i64,
    pub next_due_ms: i64,
    pub last_run: Option<i64>,
}

// ---- compliance archives ----------------------------------------------------------------------

/// What an archive covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ArchiveScope {
    Endpoint(String),
    Usecase(String),
    Prompt(String),
}

impl fmt::Display for ArchiveScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Endpoint(n) => write!(f, "endpoint '{n}'"),
            Self::Usecase(n) => write!(f, "use case '{n}'"),
            Self::Prompt(n) => write!(f, "prompt '{n}'"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveMember {
    pub name: String,
    pub sha256: String,
    pub rows: u64,
}

/// The manifest inside every archive: each member's hash and row count, the schema version, and
/// what the archive covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The highest migration applied to the database it came from.
    pub schema_version: i64,
    pub created_ms: i64,
    pub scope: ArchiveScope,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub members: Vec<ArchiveMember>,
    /// Calls in the archive (what `milc archive purge` deletes).
    pub calls: u64,
    /// The install id of the database it came from: a purge refuses another database's archive.
    #[serde(default)]
    pub database: String,
}

/// An archive read back: its manifest, the SHA-256 of the manifest, and whether every member
/// matches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveReport {
    /// The archive file, as written or read.
    #[serde(default)]
    pub path: String,
    pub manifest: Manifest,
    pub manifest_sha256: String,
    /// Whether every member was read and hashed (false: only the manifest was read).
    #[serde(default)]
    pub verified: bool,
    /// Members whose bytes no longer match the manifest (or that are missing or extra);
    /// `manifest.json` when the manifest does not match `manifest.sha256`.
    pub damaged: Vec<String>,
}

/// What a purge removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Purged {
    pub calls: u64,
    pub bodies: u64,
    /// Calls the archive lists that were not deleted: already gone, or no longer the same call
    /// (another time under a reused id).
    #[serde(default)]
    pub skipped: u64,
}

/// A schedule as typed: a card's dataset and chosen candidate, or a run spec of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSchedule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usecase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::run::RunSpec>,
    pub every_ms: i64,
}

/// One scheduled evaluation that was due: the run it started, or why it could not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledRun {
    pub schedule: String,
    pub run: Option<crate::run::RunSummary>,
    pub error: Option<String>,
}

/// What `schedule run-due` did: the evaluations that were due, then the drift watches checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DueReport {
    pub runs: Vec<ScheduledRun>,
    pub drift: Vec<DriftReport>,
    pub alerts: Vec<crate::usage::Alert>,
}

/// Milliseconds of a duration as typed: `500ms`, `30s`, `5m`, `2h`, `7d` (a bare number is
/// seconds).
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30s, 5m, 2h or 7d"))?;
    let per = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{s}' is not a duration like 30s, 5m, 2h or 7d")),
    };
    n.checked_mul(per)
        .ok_or_else(|| format!("'{s}' is too long"))
}

/// A duration as [`parse_duration_ms`] reads it, in the largest whole unit: `7d`, `6h`, `90m`,
/// `30s`, `500ms`.
pub fn format_duration_ms(ms: i64) -> String {
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms != 0 && ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_they_are_read() {
        for (ms, text) in [
            (604_800_000, "7d"),
            (21_600_000, "6h"),
            (5_400_000, "90m"),
            (30_000, "30s"),
            (1_500, "1500ms"),
            (0, "0ms"),
        ] {
            assert_eq!(format_duration_ms(ms), text);
            assert_eq!(parse_duration_ms(text), Ok(ms));
        }
    }

    #[test]
    fn durations_read_as_typed() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("2"), Ok(2_000));
        assert!(parse_duration_ms("fast").unwrap_err().contains("'fast'"));
        assert!(parse_duration_ms("3w").is_err());
    }

    #[test]
    fn a_score_slo_reads_scorer_minimum_and_dataset() {
        let s = ScoreSlo::parse("rougeL>=0.35@tickets@3f2a").unwrap();
        assert_eq!(
            (s.scorer.as_str(), s.min, s.dataset.as_str()),
            ("rougeL", 0.35, "tickets@3f2a")
        );
        assert!(ScoreSlo::parse("rougeL 0.35")
            .unwrap_err()
            .contains("SCORER>=MIN@DATASET"));
        assert!(ScoreSlo::parse(">=0.3@x").is_err());
    }
}
