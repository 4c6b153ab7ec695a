//! The gateway's routes, arms, keys, feedback and canary verdicts, as the store, the CLI, the
//! route file and the window see them.

use serde::{Deserialize, Serialize};

use crate::Cost;

/// A route: what clients send as `model`, and the arms its traffic is split between.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub model: String,
    /// Who a caller is, for sticky assignment: `header:NAME` or `user` (the body's `user`
    /// field). Without one, or when a request carries no caller id, weighted random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<String>,
    #[serde(default, rename = "arm")]
    pub arms: Vec<ArmSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanarySpec>,
}

/// One arm of a route: an endpoint, optionally a prompt version whose messages are rendered
/// with the request's `variables` and whose parameters are the defaults, and a weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    pub name: String,
    pub endpoint: String,
    /// `NAME`, `NAME@N` or `NAME:LABEL`, resolved when the gateway loads its routes (a label
    /// that moves is followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    pub weight: f64,
    /// Overrides the endpoint's own timeout for this arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Overrides the endpoint's own retry count for this arm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Another arm of the same route that answers when this one's upstream fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// A canary on a route: the judge compares `candidate` with `baseline` as traffic flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySpec {
    pub baseline: String,
    pub candidate: String,
    #[serde(default)]
    pub guardrails: Guardrails,
    #[serde(default)]
    pub on_fail: OnFail,
    #[serde(default)]
    pub on_pass: OnPass,
    /// Seconds between verdicts.
    #[serde(default = "default_every_s")]
    pub every_s: u64,
    /// Candidate calls before any verdict but "continue".
    #[serde(default = "default_min_calls")]
    pub min_calls: u64,
    /// Candidate calls after which a candidate with no breach is promoted.
    #[serde(default = "default_promote_after")]
    pub promote_after: u64,
}

fn default_every_s() -> u64 {
    5
}
fn default_min_calls() -> u64 {
    50
}
fn default_promote_after() -> u64 {
    1000
}

/// How much worse than the baseline the candidate may be before it is rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Absolute: 0.02 lets the candidate's error rate be 2 points above the baseline's.
    #[serde(default)]
    pub max_error_rate_increase: f64,
    /// Relative: 0.25 tolerates a p95 latency 25 % above the baseline's.
    #[serde(default = "quarter")]
    pub max_p95_latency_increase: f64,
    /// Relative, on the mean cost per call.
    #[serde(default = "quarter")]
    pub max_cost_increase: f64,
}

fn quarter() -> f64 {
    0.25
}

impl Default for Guardrails {
    fn default() -> Self {
        Self {
            max_error_rate_increase: 0.0,
            max_p95_latency_increase: 0.25,
            max_cost_increase: 0.25,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    /// Candidate weight → 0.
    #[default]
    Rollback,
    /// Record the verdict and raise it; change nothing.
    Alert,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPass {
    /// Candidate → 100 %, and the `production` label moves to its prompt version.
    #[default]
    Promote,
    /// Record the verdict; change nothing.
    Hold,
}

/// A stored route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub id: i64,
    #[serde(flatten)]
    pub spec: RouteSpec,
    /// When the running canary started (its calls are judged from then on).
    pub canary_started_ms: Option<i64>,
    pub canary_state: Option<CanaryState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryState {
    Running,
    RolledBack,
    Promoted,
}

impl CanaryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::RolledBack => "rolled_back",
            Self::Promoted => "promoted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "rolled_back" => Some(Self::RolledBack),
            "promoted" => Some(Self::Promoted),
            _ => None,
        }
    }
}

/// A gateway key as listed: never the key itself, which is shown once at creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatewayKey {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// Requests per minute, if limited.
    pub rate_per_min: Option<u32>,
    /// Spend per UTC day, if limited.
    pub daily_budget: Option<Cost>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A user's rating of one gateway answer, by the `x-milc-call-id` it came with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    pub call_id: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One arm's live figures since the canary started (or over the last hour without one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmFigures {
    pub arm: String,
    pub weight: f64,
    pub calls: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    pub cost_per_call: Option<Cost>,
    pub feedback_mean: Option<f64>,
    pub feedback_n: u64,
}

/// What the gateway should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Keep the split and ask again later.
    Continue,
    /// Send all traffic back to the baseline.
    Rollback,
    /// Send all traffic to the candidate.
    Promote,
    /// The arms did not get the traffic the weights say: fix the router, trust no verdict.
    SplitBroken,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::Rollback => "rollback",
            Self::Promote => "promote",
            Self::SplitBroken => "split_broken",
        }
    }
}

/// Sample-ratio mismatch: Pearson χ² of the assignment counts against the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Srm {
    pub chi2: f64,
    pub p: f64,
    pub flagged: bool,
}

/// One guardrail at one look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// `error_rate`, `p95_latency_ms` or `cost_per_call_usd`.
    pub metric: String,
    pub baseline: f64,
    pub candidate: f64,
    /// The candidate value the guardrail tolerates.
    pub limit: f64,
    /// The mSPRT statistic of this look, counted on the worse side only: Λ when the estimate is
    /// worse than θ₀, at most 1 otherwise (a better candidate is no evidence against it).
    pub lambda: f64,
    /// Always-valid p: min(1, 1/lambda), and no more than the same metric's p at the last look.
    pub p: f64,
    /// p ≤ α/3, once the candidate has `min_calls` calls.
    pub breached: bool,
}

/// The quality signal (feedback scores): each arm's mean and an always-valid interval of the
/// difference, candidate − baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub baseline: f64,
    pub candidate: f64,
    pub n_baseline: u64,
    pub n_candidate: u64,
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
}

/// The judge's answer at one look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    /// One line a person can act on, with the figures that decided.
    pub reason: String,
    pub srm: Srm,
    pub guardrails: Vec<Evidence>,
    pub quality: Option<Quality>,
}

/// Something that happened to a route's canary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryEvent {
    pub at_ms: i64,
    /// `started`, `rollback`, `promote`, `split_broken`, `weights`.
    pub kind: String,
    /// Who: `judge`, or a person.
    pub actor: String,
    pub reason: String,
}

/// What `milc canary status` and the Routes page show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryStatus {
    pub route: Route,
    pub arms: Vec<ArmFigures>,
    /// The latest verdict (judged now from the store).
    pub verdict: Option<Verdict>,
    /// Newest first.
    pub events: Vec<CanaryEvent>,
}

/// A gateway key just created: the key itself is in `secret`, shown this once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewGatewayKey {
    pub key: GatewayKey,
    pub secret: String,
}

/// The gateway the window started, if any.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// What clients use as the OpenAI SDK's `base_url`.
    pub base_url: String,
}
