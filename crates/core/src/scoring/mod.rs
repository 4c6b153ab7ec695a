//! Reference-exact scorers: ROUGE as Google's `rouge-score`, BLEU as sacrebleu (see
//! ../shared/METRICS.md). Each is checked against vectors computed by the reference packages
//! themselves (`crates/core/tests/data/score_vectors.jsonl`, with its generator).

pub mod bleu;
pub mod porter;
pub mod rouge;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::Error;
use rouge::RougeType;

/// A metric `milc score` and the run engine compute per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Rouge(RougeType),
    /// Sentence BLEU (0–100).
    Bleu,
}

impl Metric {
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "bleu" => Ok(Self::Bleu),
            other => RougeType::parse(other).map(Self::Rouge).ok_or_else(|| {
                Error::invalid(
                    "metrics",
                    format!(
                        "'{other}' is not a metric: use rouge1, rouge2, rougeL, rougeLsum or bleu"
                    ),
                )
            }),
        }
    }

    /// A comma-separated list, as `--metrics` takes it.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, Error> {
        s.split(',')
            .filter(|m| !m.trim().is_empty())
            .map(Self::parse)
            .collect()
    }

    pub fn name(self) -> String {
        match self {
            Self::Rouge(r) => r.name(),
            Self::Bleu => "bleu".into(),
        }
    }
}

/// One line of `milc score`'s input: a prediction and one reference or several.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub prediction: String,
    #[serde(alias = "references")]
    pub reference: References,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum References {
    One(String),
    Many(Vec<String>),
}

impl References {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(r) => vec![r.clone()],
            Self::Many(r) => r.clone(),
        }
    }
}

/// Every metric of one pair: ROUGE as `{precision, recall, fmeasure}`, BLEU as a number.
pub fn score_pair(metrics: &[Metric], pair: &Pair, stem: bool) -> Map<String, Value> {
    let refs = pair.reference.to_vec();
    metrics
        .iter()
        .map(|m| {
            let v = match m {
                Metric::Rouge(kind) => {
                    json!(rouge::score_multi(*kind, &refs, &pair.prediction, stem))
                }
                Metric::Bleu => json!(bleu::sentence(&pair.prediction, &refs)),
            };
            (m.name(), v)
        })
        .collect()
}

/// Reads one JSON line of `milc score`'s input; an error names the line and what is wrong.
pub fn parse_pair(line_no: usize, line: &str) -> Result<Pair, Error> {
    serde_json::from_str(line).map_err(|e| {
        Error::invalid(
            format!("line {line_no}, column {}", e.column()),
            e.to_string(),
        )
    })
}

/// A per-item scorer of a run: a metric name, checked up front.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemScorer {
    Text(Metric),
    /// 1 when the output equals a reference (surrounding white space ignored).
    Exact,
    /// 1 when the output contains a reference.
    Contains,
    /// 1 when the output parses as JSON.
    JsonValid,
    /// The call's latency in ms (passes at or below the threshold).
    LatencyMs,
    /// The call's cost in USD (passes at or below the threshold).
    CostUsd,
}

impl ItemScorer {
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "exact" => Self::Exact,
            "contains" => Self::Contains,
            "json_valid" => Self::JsonValid,
            "latency_ms" => Self::LatencyMs,
            "cost_usd" => Self::CostUsd,
            other => Self::Text(Metric::parse(other).map_err(|_| {
                Error::invalid(
                    "scorers",
                    format!(
                        "'{other}' is not a scorer: use rouge1, rouge2, rougeL, rougeLsum, bleu, \
                         exact, contains, json_valid, latency_ms or cost_usd"
                    ),
                )
            })?),
        })
    }

    /// Lower is better for latency and cost; higher for everything else.
    pub fn lower_is_better(&self) -> bool {
        matches!(self, Self::LatencyMs | Self::CostUsd)
    }

    /// The score of one answer. ROUGE is the F1 against the best reference, BLEU sentence BLEU.
    pub fn score(
        &self,
        output: &str,
        expected: &[String],
        latency_ms: u64,
        cost_usd: f64,
        stem: bool,
    ) -> f64 {
        let yes = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            Self::Text(Metric::Rouge(kind)) => {
                rouge::score_multi(*kind, expected, output, stem).fmeasure
            }
            Self::Text(Metric::Bleu) => bleu::sentence(output, expected),
            Self::Exact => yes(expected.iter().any(|e| e.trim() == output.trim())),
            Self::Contains => yes(expected.iter().any(|e| output.contains(e.as_str()))),
            Self::JsonValid => yes(serde_json::from_str::<Value>(output.trim()).is_ok()),
            Self::LatencyMs => latency_ms as f64,
            Self::CostUsd => cost_usd,
        }
    }
}
