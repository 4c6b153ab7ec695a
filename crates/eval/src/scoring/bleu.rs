//! BLEU exactly as sacrebleu computes it with its defaults: the `13a` tokenizer (mteval-v13a, as
//! WMT uses it), case-sensitive, n-grams up to 4, the closest reference length (the shorter on
//! ties) for the brevity penalty, and `exp` smoothing (mteval's: each order with no match gets
//! 100 / (2^k · total) with k doubling). Sentence BLEU uses the effective order.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

const MAX_ORDER: usize = 4;

static PUNCT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([\{-\~\[-`\x20-\&\(-\+:-@/])").expect("pattern compiles"));
static PERIOD_COMMA_AFTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([^0-9])([\.,])").expect("pattern compiles"));
static PERIOD_COMMA_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([\.,])([^0-9])").expect("pattern compiles"));
static DASH_AFTER_DIGIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([0-9])(-)").expect("pattern compiles"));

/// Python's `str.split()` separators: Unicode white space plus the ASCII file, group, record
/// and unit separators.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// sacrebleu's `13a` tokenizer, applied to a segment after `rstrip()`.
pub fn tokenize_13a(segment: &str) -> Vec<String> {
    let mut line = segment
        .trim_end_matches(is_py_space)
        .replace("<skipped>", "");
    line = line.replace("-\n", "").replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let line = format!(" {line} ");
    let line = PUNCT.replace_all(&line, " $1 ");
    let line = PERIOD_COMMA_AFTER.replace_all(&line, "$1 $2 ");
    let line = PERIOD_COMMA_BEFORE.replace_all(&line, " $1 $2");
    let line = DASH_AFTER_DIGIT.replace_all(&line, "$1 $2 ");
    line.split(is_py_space)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sufficient statistics of one segment: hypothesis and chosen reference lengths, and matched
/// and total n-grams per order. Corpus BLEU sums them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub hyp_len: u64,
    pub ref_len: u64,
    pub correct: [u64; MAX_ORDER],
    pub total: [u64; MAX_ORDER],
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.hyp_len += o.hyp_len;
        self.ref_len += o.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += o.correct[n];
            self.total[n] += o.total[n];
        }
    }
}

fn ngrams(tokens: &[String]) -> HashMap<&[String], u64> {
    let mut out = HashMap::new();
    for n in 1..=MAX_ORDER {
        if tokens.len() >= n {
            for w in tokens.windows(n) {
                *out.entry(w).or_insert(0) += 1;
            }
        }
    }
    out
}

/// The statistics of a hypothesis against one or more references.
pub fn stats(hypothesis: &str, references: &[String]) -> Stats {
    let hyp = tokenize_13a(hypothesis);
    let refs: Vec<Vec<String>> = references.iter().map(|r| tokenize_13a(r)).collect();
    // Each n-gram's count is its maximum over the references.
    let mut ref_counts: HashMap<&[String], u64> = HashMap::new();
    for r in &refs {
        for (g, c) in ngrams(r) {
            let e = ref_counts.entry(g).or_insert(0);
            *e = (*e).max(c);
        }
    }
    // The closest reference length; the shorter one on ties.
    let hyp_len = hyp.len() as u64;
    let ref_len = refs
        .iter()
        .map(|r| r.len() as u64)
        .min_by_key(|&l| (l.abs_diff(hyp_len), l))
        .unwrap_or(0);
    let mut s = Stats {
        hyp_len,
        ref_len,
        ..Stats::default()
    };
    for (g, c) in ngrams(&hyp) {
        let n = g.len() - 1;
        s.total[n] += c;
        s.correct[n] += c.min(ref_counts.get(g).copied().unwrap_or(0));
    }
    s
}

/// sacrebleu's `compute_bleu` with `exp` smoothing, on a 0–100 scale.
// Indexing by order keeps this line for line with sacrebleu, which the vectors check.
#[allow(clippy::needless_range_loop)]
pub fn score(s: &Stats, effective_order: bool) -> f64 {
    if s.correct.iter().all(|&c| c == 0) {
        return 0.0;
    }
    let bp = if s.hyp_len < s.ref_len {
        if s.hyp_len > 0 {
            (1.0 - s.ref_len as f64 / s.hyp_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0f64; MAX_ORDER];
    let mut smooth = 1.0f64;
    let mut eff_order = MAX_ORDER;
    for n in 0..MAX_ORDER {
        if s.total[n] == 0 {
            break;
        }
        if effective_order {
            eff_order = n + 1;
        }
        precisions[n] = if s.correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * s.total[n] as f64)
        } else {
            100.0 * s.correct[n] as f64 / s.total[n] as f64
        };
    }
    // sacrebleu's `my_log`: log(0) is floored to -9999999999.
    let log = |p: f64| if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
    let mean = precisions[..eff_order].iter().map(|&p| log(p)).sum::<f64>() / eff_order as f64;
    bp * mean.exp()
}

/// Sentence BLEU (effective order), as `sacrebleu.sentence_bleu` gives it.
pub fn sentence(hypothesis: &str, references: &[String]) -> f64 {
    score(&stats(hypothesis, references), true)
}

/// Corpus BLEU over aligned hypotheses and references, as `sacrebleu.corpus_bleu` gives it.
pub fn corpus<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [String])>) -> f64 {
    let mut total = Stats::default();
    for (h, r) in pairs {
        total += stats(h, r);
    }
    score(&total, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_13a_tokenizer_splits_like_mteval() {
        // As sacrebleu's Tokenizer13a splits it (the apostrophe is not in its punctuation set).
        let want = [
            "Hello", ",", "world", ".", "It's", "3.5", "-", "4", "km", "&", "\"", "fine", "\"", "!",
        ];
        assert_eq!(
            tokenize_13a("Hello, world. It's 3.5-4 km &amp; \"fine\"!"),
            want
        );
    }

    #[test]
    fn sacrebleus_sentence_vector_holds() {
        // From sacrebleu's test suite (test_sentence_bleu, smooth "exp").
        let refs = [
            "The dog bit the man.".to_owned(),
            "The dog had bit the man.".to_owned(),
        ];
        let s = sentence("The dog bit the man.", &refs);
        assert!((s - 100.0).abs() < 1e-9, "{s}");
        let s = sentence(
            "It was not unexpected.",
            &["It was not unexpected.".to_owned()],
        );
        assert!((s - 100.0).abs() < 1e-9, "{s}");
        assert_eq!(sentence("", &["a b".to_owned()]), 0.0);
    }
}
