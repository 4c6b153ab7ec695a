//! Reference-exact scorers: ROUGE as Google's `rouge-score`, BLEU as sacrebleu (see
//! ../shared/METRICS.md). Each is checked against vectors computed by the reference packages
//! themselves (`crates/eval/tests/data/score_vectors.jsonl`, with its generator).

pub mod bleu;
pub mod porter;
pub mod rouge;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::Invalid;
use rouge::RougeType;

/// A metric `milc score` and the run engine compute per item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Rouge(RougeType),
    /// Sentence BLEU (0–100).
    Bleu,
}

impl Metric {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s.trim() {
            "bleu" => Ok(Self::Bleu),
            other => RougeType::parse(other).map(Self::Rouge).ok_or_else(|| {
                Invalid::new(
                    "metrics",
                    format!(
                        "'{other}' is not a metric: use rouge1, rouge2, rougeL, rougeLsum or bleu"
                    ),
                )
            }),
        }
    }

    /// A comma-separated list, as `--metrics` takes it.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, Invalid> {
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
pub fn parse_pair(line_no: usize, line: &str) -> Result<Pair, Invalid> {
    serde_json::from_str(line).map_err(|e| {
        Invalid::new(
            format!("line {line_no}, column {}", e.column()),
            e.to_string(),
        )
    })
}

/// A per-item scorer of a run: a metric name (and argument), checked up front.
pub enum ItemScorer {
    Text(Metric),
    /// 1 when the output equals a reference (surrounding white space ignored).
    Exact,
    /// 1 when the output contains the given text, or else a reference.
    Contains(Option<String>),
    /// 1 when the output does not contain the given text.
    NotContains(String),
    /// 1 when the pattern matches somewhere in the output.
    Regex(regex::Regex),
    /// 1 when the output parses as JSON.
    JsonValid,
    /// 1 when the output is JSON that follows the schema.
    JsonSchema(Box<jsonschema::Validator>),
    /// 1 when the output's length in characters is within the bounds.
    Length(usize, usize),
    /// The call's latency in ms (passes at or below the threshold).
    LatencyMs,
    /// A rubric prompt version sent to a judge endpoint (`judge=PROMPT@ENDPOINT`, e.g.
    /// `judge=rubric:production@gpt-judge`); scored by the run engine, which makes the call.
    Judge {
        prompt: String,
        endpoint: String,
    },
    /// Cosine similarity between `/v1/embeddings` vectors of the output and the closest
    /// reference, from the named endpoint (`similarity=ENDPOINT`); computed by the run engine.
    Similarity {
        endpoint: String,
    },
    /// The call's cost in USD (passes at or below the threshold).
    CostUsd,
}

impl ItemScorer {
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Self, Invalid> {
        let field = format!("scorers.{name}");
        let need = |what: &str| {
            arg.map(str::to_owned)
                .ok_or_else(|| Invalid::new(&field, format!("needs {what}: {name}=…")))
        };
        if arg.is_some()
            && !matches!(
                name,
                "contains"
                    | "not_contains"
                    | "regex"
                    | "json_schema"
                    | "length"
                    | "judge"
                    | "similarity"
            )
        {
            return Err(Invalid::new(&field, "takes no argument"));
        }
        Ok(match name {
            "exact" => Self::Exact,
            "contains" => Self::Contains(arg.map(str::to_owned)),
            "not_contains" => Self::NotContains(need("a text")?),
            "regex" => Self::Regex(
                regex::Regex::new(&need("a pattern")?)
                    .map_err(|e| Invalid::new(&field, format!("not a valid pattern: {e}")))?,
            ),
            "json_schema" => {
                let schema: Value = serde_json::from_str(&need("a JSON Schema")?)
                    .map_err(|e| Invalid::new(&field, format!("the schema is not JSON: {e}")))?;
                Self::JsonSchema(Box::new(
                    milc_llm::structured::compile(&schema).map_err(|e| Invalid::new(&field, e))?,
                ))
            }
            "length" => {
                let bounds = need("bounds, like 10..200")?;
                let parsed = bounds.split_once("..").and_then(|(lo, hi)| {
                    let lo = if lo.is_empty() { 0 } else { lo.parse().ok()? };
                    let hi = if hi.is_empty() {
                        usize::MAX
                    } else {
                        hi.parse().ok()?
                    };
                    (lo <= hi).then_some((lo, hi))
                });
                let (lo, hi) = parsed.ok_or_else(|| {
                    Invalid::new(
                        &field,
                        format!("'{bounds}' is not MIN..MAX (either may be left out)"),
                    )
                })?;
                Self::Length(lo, hi)
            }
            "json_valid" => Self::JsonValid,
            "judge" => {
                let spec = need("a rubric prompt and a judge endpoint: PROMPT@ENDPOINT")?;
                let (prompt, endpoint) = spec
                    .rsplit_once('@')
                    .filter(|(p, e)| !p.is_empty() && !e.is_empty())
                    .ok_or_else(|| {
                        Invalid::new(&field, format!("'{spec}' is not PROMPT@ENDPOINT"))
                    })?;
                Self::Judge {
                    prompt: prompt.to_owned(),
                    endpoint: endpoint.to_owned(),
                }
            }
            "latency_ms" => Self::LatencyMs,
            "cost_usd" => Self::CostUsd,
            "similarity" => Self::Similarity {
                endpoint: need("an embeddings endpoint")?,
            },
            other => Self::Text(Metric::parse(other).map_err(|_| {
                Invalid::new(
                    "scorers",
                    format!(
                        "'{other}' is not a scorer: use rouge1, rouge2, rougeL, rougeLsum, bleu, \
                         exact, contains, not_contains, regex, json_valid, json_schema, length, \
                         latency_ms or cost_usd"
                    ),
                )
            })?),
        })
    }

    /// Lower is better for latency and cost; higher for everything else.
    pub fn lower_is_better(&self) -> bool {
        matches!(self, Self::LatencyMs | Self::CostUsd)
    }

    /// A yes/no check (1 or 0): an item must pass it unless a threshold says otherwise.
    pub fn is_check(&self) -> bool {
        !matches!(
            self,
            Self::Text(_)
                | Self::LatencyMs
                | Self::CostUsd
                | Self::Judge { .. }
                | Self::Similarity { .. }
        )
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros or their lengths differ).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let (na, nb) = (
        a.iter().map(|x| x * x).sum::<f64>().sqrt(),
        b.iter().map(|x| x * x).sum::<f64>().sqrt(),
    );
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Reads a judge's verdict: a JSON object with `score` (a number or a numeric string) and a
/// `reason` (or `rationale` / `explanation`), possibly wrapped in prose or a code fence; failing
/// that, `score: N` anywhere in the text. `None` when no score can be found.
pub fn parse_judgement(text: &str) -> Option<(f64, String)> {
    fn from_object(v: &Value) -> Option<(f64, String)> {
        let score = match v.get("score")? {
            Value::Number(n) => n.as_f64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        let reason = ["reason", "rationale", "explanation"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned();
        score.is_finite().then_some((score, reason))
    }
    if let Ok(v) = serde_json::from_str::<Value>(text.trim()) {
        if let Some(found) = from_object(&v) {
            return Some(found);
        }
    }
    for (i, _) in text.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        if let Some(Ok(v)) = stream.next() {
            if let Some(found) = from_object(&v) {
                return Some(found);
            }
        }
    }
    static SCORE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\bscore\W{0,3}(-?\d+(?:\.\d+)?)").expect("pattern compiles")
    });
    let c = SCORE.captures(text)?;
    Some((c[1].parse().ok()?, text.trim().to_owned()))
}

impl ItemScorer {
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
            Self::Contains(Some(text)) => yes(output.contains(text.as_str())),
            Self::Contains(None) => yes(expected.iter().any(|e| output.contains(e.as_str()))),
            Self::NotContains(text) => yes(!output.contains(text.as_str())),
            Self::Regex(re) => yes(re.is_match(output)),
            Self::JsonValid => yes(serde_json::from_str::<Value>(output.trim()).is_ok()),
            Self::JsonSchema(v) => {
                yes(serde_json::from_str::<Value>(output.trim())
                    .is_ok_and(|value| v.is_valid(&value)))
            }
            Self::Length(lo, hi) => yes((*lo..=*hi).contains(&output.chars().count())),
            Self::LatencyMs => latency_ms as f64,
            Self::Judge { .. } | Self::Similarity { .. } => f64::NAN,
            Self::CostUsd => cost_usd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(name: &str, arg: Option<&str>, output: &str) -> f64 {
        ItemScorer::parse(name, arg).unwrap().score(
            output,
            &["Paris".to_owned()],
            120,
            0.002,
            false,
        )
    }

    #[test]
    fn checks_score_one_or_zero() {
        assert_eq!(score("exact", None, " Paris\n"), 1.0);
        assert_eq!(score("exact", None, "Paris."), 0.0);
        assert_eq!(score("contains", None, "It is Paris."), 1.0);
        assert_eq!(score("contains", Some("capital"), "It is Paris."), 0.0);
        assert_eq!(score("not_contains", Some("London"), "It is Paris."), 1.0);
        assert_eq!(score("regex", Some(r"^\d{3}-\d{4}$"), "555-1234"), 1.0);
        assert_eq!(score("regex", Some(r"^\d{3}-\d{4}$"), "call 555-1234"), 0.0);
        assert_eq!(score("length", Some("5..10"), "Paris"), 1.0);
        assert_eq!(score("length", Some("..4"), "Paris"), 0.0);
        assert_eq!(score("json_valid", None, " {\"a\": 1} "), 1.0);
        let schema = r#"{"type":"object","required":["city"]}"#;
        assert_eq!(
            score("json_schema", Some(schema), r#"{"city":"Paris"}"#),
            1.0
        );
        assert_eq!(
            score("json_schema", Some(schema), r#"{"town":"Paris"}"#),
            0.0
        );
        assert_eq!(score("latency_ms", None, ""), 120.0);
        assert_eq!(score("rouge1", None, "paris"), 1.0);
        assert!(ItemScorer::parse("exact", None).unwrap().is_check());
        assert!(!ItemScorer::parse("latency_ms", None).unwrap().is_check());
    }

    #[test]
    fn bad_scorers_name_themselves() {
        let err = |name: &str, arg: Option<&str>| match ItemScorer::parse(name, arg) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{name} {arg:?} was accepted"),
        };
        assert!(err("regex", None).contains("scorers.regex: needs a pattern"));
        assert!(err("regex", Some("(")).contains("not a valid pattern"));
        assert!(err("length", Some("9..2")).contains("'9..2' is not MIN..MAX"));
        assert!(err("json_schema", Some("{\"type\": \"objekt\"}")).contains("JSON Schema"));
        assert!(err("exact", Some("x")).contains("takes no argument"));
        assert!(err("meteor", None).contains("'meteor' is not a scorer"));
    }
}

#[cfg(test)]
mod judge_tests {
    use super::parse_judgement;

    #[test]
    fn verdicts_are_read_from_json_prose_fences_or_plain_text() {
        let cases = [
            (
                r#"{"score": 4, "reason": "accurate"}"#,
                Some((4.0, "accurate")),
            ),
            (
                "Here you go:\n```json\n{\"score\": \"3.5\", \"rationale\": \"ok\"}\n```",
                Some((3.5, "ok")),
            ),
            (
                "{\"note\": 1} then {\"score\": 2, \"explanation\": \"terse\"}",
                Some((2.0, "terse")),
            ),
            (
                "I would give it a Score: 5 out of 5.",
                Some((5.0, "I would give it a Score: 5 out of 5.")),
            ),
            ("No idea.", None),
            (r#"{"score": "high"}"#, None),
        ];
        for (text, want) in cases {
            let got = parse_judgement(text);
            assert_eq!(
                got.as_ref().map(|(s, r)| (*s, r.as_str())),
                want,
                "{text:?}"
            );
        }
    }
}
