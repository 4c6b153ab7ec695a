//! The redactor on the labelled corpus: every detector finds what it should and little else.
//! The figures themselves are in BENCHMARKS.md (`cargo bench -p milc-core --bench core`).

mod common;

use common::pii::{corpus, precision_recall, score};
use milc_core::redact::{Placeholders, Redactor};

#[test]
fn every_detector_is_precise_and_finds_what_is_labelled() {
    let lines = corpus();
    assert!(lines.len() > 250, "the corpus ships with the tests");
    let scores = score(&Redactor::new(), &lines);
    for kind in ["email", "phone", "card", "ssn", "ipv4", "ipv6", "iban"] {
        let (p, r) = precision_recall(scores[kind]);
        println!("{kind:6} precision {p:.3} recall {r:.3} {:?}", scores[kind]);
        assert!(
            p >= 0.95 && r >= 0.95,
            "{kind}: precision {p:.3}, recall {r:.3} {:?}",
            scores[kind]
        );
    }
}

#[test]
fn redacted_corpus_lines_keep_no_labelled_value() {
    let redactor = Redactor::new();
    for line in corpus() {
        let mut ph = Placeholders::default();
        let red = redactor.redact(&line.text, &mut ph);
        for (_, value) in &line.labels {
            assert!(
                !red.text.contains(value.as_str()),
                "{value} survived in {}",
                red.text
            );
        }
        assert_eq!(
            ph.restore(&red.text),
            line.text,
            "restoring gives the original back"
        );
    }
}
