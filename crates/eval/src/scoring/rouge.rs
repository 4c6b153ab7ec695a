//! ROUGE exactly as Google's `rouge-score` package (0.1.x) computes it: its tokenizer (lowercase,
//! every run of non-`[a-z0-9]` characters is a separator, optional Porter stemming of tokens
//! longer than 3 characters), ROUGE-N on n-gram counts, ROUGE-L on the LCS, and ROUGE-Lsum as the
//! summary-level union LCS over newline-separated sentences with its double-counting guard.

use std::collections::HashMap;

use super::porter;

/// Precision, recall and F1 of one ROUGE type, named as `rouge-score` names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub fmeasure: f64,
}

impl Score {
    fn new(precision: f64, recall: f64) -> Self {
        let fmeasure = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        Self {
            precision,
            recall,
            fmeasure,
        }
    }
}

/// A ROUGE variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RougeType {
    /// ROUGE-N for n ≥ 1.
    N(usize),
    L,
    Lsum,
}

impl RougeType {
    /// `rouge1`, `rouge2`, … `rougeL`, `rougeLsum`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rougeL" => Some(Self::L),
            "rougeLsum" => Some(Self::Lsum),
            _ => s
                .strip_prefix("rouge")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .map(Self::N),
        }
    }

    pub fn name(self) -> String {
        match self {
            Self::N(n) => format!("rouge{n}"),
            Self::L => "rougeL".into(),
            Self::Lsum => "rougeLsum".into(),
        }
    }
}

/// `rouge-score`'s tokenizer.
pub fn tokenize(text: &str, stem: bool) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(|t| {
            if stem && t.len() > 3 {
                porter::stem(t)
            } else {
                t.to_owned()
            }
        })
        // The stemmer can in principle produce anything; the reference drops invalid tokens.
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        .collect()
}

fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    if tokens.len() >= n {
        for w in tokens.windows(n) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    counts
}

fn rouge_n(target: &[String], prediction: &[String], n: usize) -> Score {
    let t = ngram_counts(target, n);
    let p = ngram_counts(prediction, n);
    let overlap: usize = t
        .iter()
        .map(|(g, c)| (*c).min(p.get(g).copied().unwrap_or(0)))
        .sum();
    let total_t: usize = t.values().sum();
    let total_p: usize = p.values().sum();
    Score::new(
        overlap as f64 / total_p.max(1) as f64,
        overlap as f64 / total_t.max(1) as f64,
    )
}

/// The LCS table of `a` (rows) against `b` (columns), `(|a|+1) × (|b|+1)`, row-major.
fn lcs_table(a: &[String], b: &[String]) -> Vec<Vec<u32>> {
    let mut t = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i][j] = if a[i - 1] == b[j - 1] {
                t[i - 1][j - 1] + 1
            } else {
                t[i - 1][j].max(t[i][j - 1])
            };
        }
    }
    t
}

/// LCS length with two rows of memory: ROUGE-L needs only the length.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn rouge_l(target: &[String], prediction: &[String]) -> Score {
    if target.is_empty() || prediction.is_empty() {
        return Score::default();
    }
    let lcs = lcs_len(target, prediction) as f64;
    Score::new(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// The indices into `reference` of one LCS with `candidate`, backtracked as the reference does.
fn lcs_indices(reference: &[String], candidate: &[String]) -> Vec<usize> {
    let t = lcs_table(reference, candidate);
    let (mut i, mut j) = (reference.len(), candidate.len());
    let mut out = Vec::new();
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i][j - 1] > t[i - 1][j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    out
}

fn rouge_lsum(target: &[Vec<String>], prediction: &[Vec<String>]) -> Score {
    let m: usize = target.iter().map(Vec::len).sum();
    let n: usize = prediction.iter().map(Vec::len).sum();
    if m == 0 || n == 0 {
        return Score::default();
    }
    let mut left_t: HashMap<&str, usize> = HashMap::new();
    let mut left_p: HashMap<&str, usize> = HashMap::new();
    for t in target.iter().flatten() {
        *left_t.entry(t).or_default() += 1;
    }
    for p in prediction.iter().flatten() {
        *left_p.entry(p).or_default() += 1;
    }
    let mut hits = 0usize;
    for r in target {
        let mut union: Vec<usize> = prediction.iter().flat_map(|c| lcs_indices(r, c)).collect();
        union.sort_unstable();
        union.dedup();
        for i in union {
            let tok = r[i].as_str();
            let (ct, cp) = (
                left_t.get(tok).copied().unwrap_or(0),
                left_p.get(tok).copied().unwrap_or(0),
            );
            if ct > 0 && cp > 0 {
                hits += 1;
                left_t.insert(tok, ct - 1);
                left_p.insert(tok, cp - 1);
            }
        }
    }
    Score::new(hits as f64 / n as f64, hits as f64 / m as f64)
}

fn sentences(text: &str, stem: bool) -> Vec<Vec<String>> {
    text.split('\n')
        .filter(|s| !s.is_empty())
        .map(|s| tokenize(s, stem))
        .collect()
}

/// One ROUGE type of `prediction` against `target`.
pub fn score(kind: RougeType, target: &str, prediction: &str, stem: bool) -> Score {
    match kind {
        RougeType::Lsum => rouge_lsum(&sentences(target, stem), &sentences(prediction, stem)),
        RougeType::L => rouge_l(&tokenize(target, stem), &tokenize(prediction, stem)),
        RougeType::N(n) => rouge_n(&tokenize(target, stem), &tokenize(prediction, stem), n),
    }
}

/// Against several references, the one with the best F1 (`rouge-score`'s `score_multi`).
pub fn score_multi(kind: RougeType, targets: &[String], prediction: &str, stem: bool) -> Score {
    targets
        .iter()
        .map(|t| score(kind, t, prediction, stem))
        .fold(None::<Score>, |best, s| match best {
            Some(b) if b.fmeasure >= s.fmeasure => Some(b),
            _ => Some(s),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_published_vectors_hold() {
        let s = score(RougeType::N(1), "testing one two", "testing", false);
        assert!(close(s.precision, 1.0) && close(s.recall, 1.0 / 3.0) && close(s.fmeasure, 0.5));
        let s = score(
            RougeType::Lsum,
            "w1 w2 w3 w4 w5",
            "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5",
            false,
        );
        assert!(close(s.recall, 0.8) && close(s.precision, 0.4), "{s:?}");
        assert!((s.fmeasure - 0.5333).abs() < 1e-4);
        for kind in [
            RougeType::N(1),
            RougeType::N(2),
            RougeType::L,
            RougeType::Lsum,
        ] {
            assert_eq!(score(kind, "the cat", "", false), Score::default());
            assert_eq!(score(kind, "the cat", "/", false), Score::default());
        }
    }

    #[test]
    fn tokens_are_ascii_alphanumeric_runs_in_lower_case() {
        assert_eq!(
            tokenize("Hello, World! café 42x", false),
            ["hello", "world", "caf", "42x"]
        );
        assert_eq!(tokenize("Running quickly", true), ["run", "quickli"]);
        assert_eq!(tokenize("the cats", true), ["the", "cat"]);
    }

    #[test]
    fn names_parse() {
        assert_eq!(RougeType::parse("rouge2"), Some(RougeType::N(2)));
        assert_eq!(RougeType::parse("rougeLsum"), Some(RougeType::Lsum));
        assert_eq!(RougeType::parse("rouge0"), None);
        assert_eq!(RougeType::N(3).name(), "rouge3");
    }
}
