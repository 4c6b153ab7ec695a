//! ROUGE and BLEU against scores computed by `rouge-score` and sacrebleu themselves
//! (tests/data/score_vectors.jsonl; tests/data/make_score_vectors.py regenerates it).

use milc_eval::scoring::rouge::{score_multi, RougeType};
use milc_eval::scoring::{bleu, Metric};
use serde_json::Value;

#[test]
fn rouge_and_bleu_equal_the_reference_packages() {
    let text = include_str!("data/score_vectors.jsonl");
    let mut checked = 0;
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let prediction = v["prediction"].as_str().unwrap();
        let refs: Vec<String> = v["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        let stem = v["stem"].as_bool().unwrap();
        for (name, want) in v["rouge"].as_object().unwrap() {
            let kind = RougeType::parse(name).unwrap();
            let got = score_multi(kind, &refs, prediction, stem);
            let want: Vec<f64> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            for (g, w) in [got.precision, got.recall, got.fmeasure].iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-12,
                    "line {}: {name} (stem {stem}) {got:?} ≠ {want:?}\nprediction: {prediction:?}\nreferences: {refs:?}",
                    i + 1
                );
            }
            checked += 1;
        }
        let want = v["bleu"].as_f64().unwrap();
        let got = bleu::sentence(prediction, &refs);
        assert!(
            (got - want).abs() < 1e-9 * want.max(1.0),
            "line {}: BLEU {got} ≠ {want}\nprediction: {prediction:?}\nreferences: {refs:?}",
            i + 1
        );
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} scores checked");
}

#[test]
fn metric_names_are_checked() {
    assert_eq!(
        Metric::parse_list("rouge1, rougeLsum,bleu").unwrap().len(),
        3
    );
    let e = Metric::parse("rouge-l").unwrap_err().to_string();
    assert!(e.contains("'rouge-l' is not a metric"), "{e}");
}
