//! Scoring the redactor against the labelled corpus in tests/data/pii_corpus.jsonl: a found
//! entity is a true positive when the corpus labels the same kind and the same text on that line.
//! Shared by the corpus test and the core benchmark.

use std::collections::BTreeMap;

use milc_api::PiiKind;
use milc_core::redact::Redactor;

pub struct Line {
    pub text: String,
    pub labels: Vec<(String, String)>,
}

pub fn corpus() -> Vec<Line> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pii_corpus.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let labels = v["entities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap().to_owned(),
                        e["text"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            Line {
                text: v["text"].as_str().unwrap().to_owned(),
                labels,
            }
        })
        .collect()
}

/// The corpus's name for a kind.
fn name(kind: &PiiKind) -> String {
    match kind {
        PiiKind::Custom(n) => n.clone(),
        k => k.tag().to_ascii_lowercase(),
    }
}

/// Per detector: (true positives, false positives, false negatives).
pub fn score(redactor: &Redactor, lines: &[Line]) -> BTreeMap<String, (u32, u32, u32)> {
    let mut s: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    for line in lines {
        let mut expected = line.labels.clone();
        for (kind, r) in redactor.find(&line.text) {
            let found = (name(&kind), line.text[r].to_owned());
            match expected.iter().position(|e| *e == found) {
                Some(i) => {
                    expected.remove(i);
                    s.entry(found.0).or_default().0 += 1;
                }
                None => s.entry(found.0).or_default().1 += 1,
            }
        }
        for (kind, _) in expected {
            s.entry(kind).or_default().2 += 1;
        }
    }
    s
}

pub fn precision_recall((tp, fp, fne): (u32, u32, u32)) -> (f64, f64) {
    let p = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let r = if tp + fne == 0 {
        1.0
    } else {
        tp as f64 / (tp + fne) as f64
    };
    (p, r)
}
