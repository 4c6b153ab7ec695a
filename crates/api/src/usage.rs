//! Usage and cost over time: hourly rollups of the call log grouped as a chart needs them,
//! effective-dated prices, budgets and alerts.

use serde::{Deserialize, Serialize};

use crate::{Cost, Prices};

/// What usage rows are grouped by (a time bucket and/or a dimension).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Day,
    Hour,
    Endpoint,
    Prompt,
    Source,
}

impl Dim {
    pub const ALL: [Dim; 5] = [
        Self::Day,
        Self::Hour,
        Self::Endpoint,
        Self::Prompt,
        Self::Source,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Hour => "hour",
            Self::Endpoint => "endpoint",
            Self::Prompt => "prompt",
            Self::Source => "source",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A range of whole UTC hours, `[since, until)`, and how to group it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    #[serde(default)]
    pub group_by: Vec<Dim>,
}

/// One group's figures. `bucket_ms` is the start of its UTC day or hour when grouped by time;
/// `endpoint`, `prompt` and `source` are set when grouped by them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub calls: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    /// Exact; `estimated` when any call in the group had its usage estimated.
    pub cost: Cost,
    /// Calls whose usage (so cost) was estimated, not reported by the server.
    pub estimated_calls: u64,
    /// From hourly latency histograms (buckets 25 % wide: within ±12 % of the exact value).
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub query: UsageQuery,
    pub rows: Vec<UsageRow>,
    pub totals: UsageRow,
}

/// The group of a usage row whose calls' endpoint has been deleted since.
pub const DELETED_ENDPOINT: &str = "(deleted endpoint)";
/// The group of a usage row whose calls were made without a prompt version.
pub const NO_PROMPT_VERSION: &str = "(no prompt version)";

/// Calls in `[since, until)`, newest first: the calls behind one bar of a chart, or the Calls
/// page's filters. `endpoint` may be [`DELETED_ENDPOINT`] and `prompt` [`NO_PROMPT_VERSION`],
/// the groups a usage report names so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallsQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `NAME@N`.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub source: Option<crate::CallSource>,
    #[serde(default)]
    pub outcome: Option<crate::Outcome>,
    pub limit: u32,
}

/// One call with what it belongs to: its kept (redacted) bodies, and the run, comparison and
/// gateway route that made it, so the window can jump there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallDetail {
    pub record: crate::CallRecord,
    /// `None`: the endpoint's policy keeps no bodies (or retention emptied them).
    pub body: Option<crate::prompt::CallBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<CallRun>,
    /// The comparison whose variant's run made the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    /// The gateway route (its model name) and arm that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<(String, String)>,
}

/// The run item a call answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRun {
    pub run_id: i64,
    pub item: u64,
    pub rep: u32,
}

/// A price in an endpoint's timeline: the base price (no id, from the beginning) or a dated one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceEntry {
    pub id: Option<i64>,
    pub endpoint: String,
    pub from_ms: Option<i64>,
    pub prices: Prices,
}

/// A logged recomputation of past costs after a price change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recomputation {
    /// `None`: a preview; nothing was changed or logged.
    pub id: Option<i64>,
    pub at_ms: i64,
    pub since_ms: i64,
    /// `None`: up to now.
    #[serde(default)]
    pub until_ms: Option<i64>,
    pub calls_checked: u64,
    pub calls_changed: u64,
    pub before: Cost,
    pub after: Cost,
    pub author: String,
}

impl std::fmt::Display for Recomputation {
    /// What it did (or, a preview, would do): `3 of 9 calls changed: $0.01 → $0.03`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} calls {}: ${} → ${}",
            self.calls_changed,
            self.calls_checked,
            if self.id.is_some() {
                "changed"
            } else {
                "would change"
            },
            self.before.usd(),
            self.after.usd()
        )
    }
}

/// A daily and/or monthly budget, for one endpoint or (`endpoint` None) for everything. Days and
/// months are UTC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub endpoint: Option<String>,
    pub daily: Option<Cost>,
    pub monthly: Option<Cost>,
}

/// When alerts fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertSettings {
    /// Cost per 1K tokens in the current and the previous UTC hour (60 to 120 minutes) above the
    /// trailing 7-day baseline × this.
    pub spike_factor: f64,
    /// Errors / calls in the current and the previous UTC hour above this.
    pub error_rate: f64,
    /// Calls those two hours need before the error rate or a spike counts.
    pub min_calls: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            spike_factor: 2.0,
            error_rate: 0.2,
            min_calls: 20,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    BudgetDaily,
    BudgetMonthly,
    CostSpike,
    ErrorRate,
    /// A gateway canary was rolled back or promoted, or its split is broken.
    Canary,
    /// An endpoint's, a prompt version's or a route's figures moved away from their baseline.
    Drift,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BudgetDaily => "budget_daily",
            Self::BudgetMonthly => "budget_monthly",
            Self::CostSpike => "cost_spike",
            Self::ErrorRate => "error_rate",
            Self::Canary => "canary",
            Self::Drift => "drift",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::BudgetDaily,
            Self::BudgetMonthly,
            Self::CostSpike,
            Self::ErrorRate,
            Self::Canary,
            Self::Drift,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What an alert measured, in its own unit; money stays exact (integer pico-USD).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Reading {
    /// USD spent (budgets).
    Usd(Cost),
    /// USD per 1,000 tokens (cost spikes).
    UsdPer1k(Cost),
    /// A share of calls, from 0 to 1 (error rates).
    Rate(f64),
}

impl std::fmt::Display for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usd(c) => write!(f, "${}", c.usd()),
            Self::UsdPer1k(c) => write!(f, "${} per 1K tokens", c.usd()),
            Self::Rate(r) => write!(f, "{:.0} %", r * 100.0),
        }
    }
}

/// One episode of a condition: fired once when it began; `resolved_ms` once it ended (a budget's
/// episode is its day or month).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub kind: AlertKind,
    pub endpoint: Option<String>,
    pub message: String,
    pub value: Reading,
    pub threshold: Reading,
    pub fired_ms: i64,
    pub resolved_ms: Option<i64>,
    pub acked_ms: Option<i64>,
}
