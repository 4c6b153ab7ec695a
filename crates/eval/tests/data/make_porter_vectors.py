"""Writes porter_vectors.tsv: `word<TAB>stem` lines where the stem is what NLTK's
`PorterStemmer()` (default mode NLTK_EXTENSIONS) returns. The Rust port in
crates/core/src/scoring/porter.rs must reproduce every line.

Run (with any Python that has nltk; the committed file was made with nltk 3.10.4 on CPython 3.11):
    /tmp/refenv/bin/python make_porter_vectors.py > porter_vectors.tsv

Words are lowercase `[a-z0-9]+`, the only tokens `rouge-score` ever stems. They come from:
  * a hand-written list: NLTK's irregular forms, the examples of Porter's paper, and words that
    reach each NLTK-specific rule (-ational, -izer, -fulness, -ously, -alli, -bli, -logi, -ies/-ied
    on four letters, y-endings, doubled consonants, short words);
  * English text on disk: words from the docstrings and comments of Python's standard library and
    of the nltk package (camelCase split, lowercased), sampled per suffix so that every rule of
    every step is exercised, plus short words of 4-6 letters and a random remainder;
  * a few alphanumeric tokens (digits count as consonants in Porter's definition).
Sampling is seeded, so the output is deterministic for a given Python and nltk installation.
"""
import os
import random
import re
import sys
import sysconfig

import nltk
from nltk.stem.porter import PorterStemmer

TARGET = 5000  # total vectors; keeps the file well under 150 KB
rnd = random.Random(20260514)
stemmer = PorterStemmer()
assert stemmer.mode == PorterStemmer.NLTK_EXTENSIONS

HAND_PICKED = """
sky skies dying lying tying news innings inning outings outing cannings canning howe proceed
exceed succeed proceeds exceeded succeeding proceeding
caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled
sized hopping tanned falling hissing fizzed failing filing relational conditional rational
valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli vietnamization
predication operator feudalism decisiveness hopefulness callousness formaliti sensitiviti
sensibiliti triplicate formative formalize electriciti electrical hopeful goodness revival
allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment
dependent adoption homologou communism activate angulariti homologous effective bowdlerize
probate rate cease controll roll
dies died lies lied ties tied pies vies flies fried spied tried cried skied
generously running agreed happy enjoy enjoyment spy fly try sly
relational sensational operational educational international inspirational
organizer realizer fertilizer optimizer equalizer
usefulness carefulness helpfulness faithfulness cheerfully hopefully
famously continuously seriously dangerously generously previously ambiguously
radically basically logically magically tragically typically formally
possibly probably terribly humbly nobly visibly
apologize apology geology theology archaeology biology analogy zoology technology psychology
geologic theologians
happy angry dry shy sly say stay enjoy toy boy play employ destroy syzygy yyyy ayyy yes eye
stopping stopped planning planned fitted fitting hissed buzzing fizzing filled telling
beginning committed controlled regretting referred occurring
owing owed ow bowing sewing mixing boxing fixing
ab abs aby abed abes able ably ache acid aged also area army away axes
bias bled bred bird bits busy cafe cage cake calm came cane cars cats ears eats eggs ends
fuss gas gases goes hers hiss ions iris kiss less loss mass miss moss oats pass toss
ideology methodology topology ontology terminology chronology mythology etymology trilogy eulogy
neurology cardiology astrology ideologies methodologies logistic logical biological
finally naturally actually really totally usually generally occasionally exceptionally rationally
nationally emotionally centrally globally ally rally tally sally medically critically
reasonably comfortably notably inevitably incredibly horribly doubly feebly bubbly
beautifully successfully gracefully painfully wonderfully fully skillfully
lovely namely completely rarely solely entirely closely barely timely likely
recently currently frequently apparently evidently silently
sensational rotational motivational computational organizational denominational
authorizer synthesizer visualizer stabilizer normalizer tokenizer
playfulness thoughtfulness forgetfulness wastefulness truthfulness
"""

ALNUM = """
mp3 mp3s x86 h2o covid19 1990s 2nd 3rd 4th 100th 2019 123 4096 gpt4 l2 a1b2c3 abc123 abc123s
123ing 1ed 2ied 7ies 99ly yy9y 3y 12y b4 r2d2 utf8 sha256 base64 ipv6 h264 5g 4k
"""

# Suffixes whose rules are worth covering, longest first so each word lands in its most specific
# bucket.
SUFFIXES = sorted(
    set(
        """
        sses ies ied eed ed ing ings ingly edly s ss us is
        y ly ily ally fully ously ently ably ibly ely ety ity ary ory ery ry
        ational tional enci anci ence ance izer izers bli alli entli eli ousli ization izations
        ation ations ator ators alism iveness fulness ousness aliti iviti biliti fulli logi logy
        logies logical icate icates ative atives alize alized iciti ical ful ness
        al als er ers ic ics able ible ant ants ement ements ment ments ent ents ion ions sion tion
        ou ism isms ate ated ates ating iti ities ous ive ives ize ized izes izing
        e le ll lled lling ssed ssing tted tting pped pping nned nning
        at bl iz eer oy ay ey
        """.split()
    ),
    key=lambda s: (-len(s), s),
)


def corpus_words():
    """Lowercased English-looking words from Python's and nltk's own text files."""
    roots = [sysconfig.get_paths()["stdlib"], os.path.dirname(nltk.__file__)]
    counts = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if "site-packages" in dirpath:
                continue
            for name in sorted(filenames):
                if not name.endswith((".py", ".txt", ".rst", ".doctest")):
                    continue
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8", errors="ignore") as f:
                        text = f.read()
                except OSError:
                    continue
                # Split identifiers such as "readLines" or "HTTPServer" into words.
                for token in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", text):
                    word = token.lower()
                    if 2 <= len(word) <= 20:
                        counts[word] = counts.get(word, 0) + 1
    # Words seen at least three times are far more likely to be real words than fragments.
    return sorted(w for w, c in counts.items() if c >= 3)


def main():
    chosen = []
    seen = set()

    def add(word):
        if word not in seen and re.fullmatch(r"[a-z0-9]+", word):
            seen.add(word)
            chosen.append(word)

    for word in HAND_PICKED.split() + ALNUM.split():
        add(word)
    # The y-run cases that NLTK resolves iteratively.
    for n in range(1, 9):
        add("y" * n)
        add("a" + "y" * n)
        add("b" + "y" * n)

    words = corpus_words()

    buckets = {s: [] for s in SUFFIXES}
    for word in words:
        for suffix in SUFFIXES:
            if word.endswith(suffix) and len(word) > len(suffix):
                buckets[suffix].append(word)
                break
    for suffix in SUFFIXES:
        members = buckets[suffix]
        for word in rnd.sample(members, min(len(members), 45)):
            add(word)

    short = [w for w in words if 4 <= len(w) <= 6]
    for word in rnd.sample(short, min(len(short), 900)):
        add(word)

    rest = [w for w in words if w not in seen]
    for word in rnd.sample(rest, max(0, min(len(rest), TARGET - len(chosen)))):
        add(word)

    out = sys.stdout
    for word in chosen:
        out.write(f"{word}\t{stemmer.stem(word)}\n")
    print(f"{len(chosen)} vectors", file=sys.stderr)


if __name__ == "__main__":
    main()
