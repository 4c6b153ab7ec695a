"""Reference scores for milc's ROUGE and BLEU, computed by the reference implementations.

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install rouge-score sacrebleu nltk
    /tmp/refenv/bin/python crates/eval/tests/data/make_score_vectors.py > crates/eval/tests/data/score_vectors.jsonl

Each line: {"prediction", "references", "stem", "rouge": {type: [P, R, F]}, "bleu": sentence BLEU}.
ROUGE against several references is rouge-score's score_multi (best F); BLEU is
sacrebleu.sentence_bleu (13a, exp smoothing, effective order). The pairs are seeded variations of
a small corpus: dropped, swapped, repeated and replaced words, case and punctuation changes,
numbers, non-ASCII text, several lines (for ROUGE-Lsum), empty texts and several references.
"""
import json
import random

import sacrebleu
from rouge_score import rouge_scorer

SENTENCES = [
    "The model answered the question about canary releases in two sentences.",
    "Latency at the 95th percentile rose after the new prompt was deployed.",
    "Cached input tokens are a subset of the prompt tokens and cost less.",
    "A rollout sends ten percent of the traffic to the candidate variant first.",
    "The evaluator rated both answers and preferred the shorter, clearer one.",
    "Running the dataset twice gives the same scores when the seed is fixed.",
    "Generously configured timeouts hide slow endpoints until users complain.",
    "It's 3.5-4 km from the station; the bus costs $2.50 (cash only).",
    "Résumé of the naïve café owner: 12 employees, 3 shops, 1 dream.",
    "ROUGE-L uses the longest common subsequence; BLEU uses n-gram precision.",
    "They were running, jumped over the fences and happily flew the kites.",
    "Nationalization of the railways was the conditional agreement's outcome.",
]
WORDS = "the a of model answer users tokens cost latency prompt quickly relational hopeful".split()


def vary(rng, text):
    words = text.split()
    for _ in range(rng.randint(0, 4)):
        op = rng.random()
        if not words:
            break
        i = rng.randrange(len(words))
        if op < 0.25:
            del words[i]
        elif op < 0.45:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif op < 0.65:
            words.insert(i, rng.choice(WORDS))
        elif op < 0.8:
            words[i] = words[i].upper()
        else:
            words[i] = words[i] + rng.choice([",", ".", "!", "?", "'s", "-"])
    return " ".join(words)


def main():
    rng = random.Random(20261128)
    scorer = {
        stem: rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=stem)
        for stem in (False, True)
    }
    cases = []
    for i in range(120):
        base = rng.sample(SENTENCES, rng.randint(1, 3))
        reference = "\n".join(base)
        prediction = "\n".join(vary(rng, s) for s in rng.sample(base, len(base)))
        refs = [reference]
        if i % 5 == 0:
            refs.append("\n".join(vary(rng, s) for s in base))
        cases.append((prediction, refs))
    cases += [
        ("", ["the cat sat"]),
        ("/", ["the cat sat"]),
        ("the cat sat", [""]),
        ("testing", ["testing one two"]),
        ("w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", ["w1 w2 w3 w4 w5"]),
        ("完全に日本語の文です", ["これは日本語です"]),
        ("The dog bit the man.", ["The dog bit the man.", "The dog had bit the man."]),
    ]
    for prediction, refs in cases:
        for stem in (False, True):
            s = scorer[stem].score_multi(refs, prediction)
            line = {
                "prediction": prediction,
                "references": refs,
                "stem": stem,
                "rouge": {k: [v.precision, v.recall, v.fmeasure] for k, v in s.items()},
                "bleu": sacrebleu.sentence_bleu(prediction, refs).score,
            }
            print(json.dumps(line, ensure_ascii=False))


main()
