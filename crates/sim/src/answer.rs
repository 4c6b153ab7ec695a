//! What a plain-text answer says. The simulator answers like a small extractive summariser: it
//! picks sentences from the last user message, shapes them by the instructions of the system /
//! developer messages, and (for a "small" model) drops details. Everything here is a pure
//! function of the request and the choice's seed; `chat.rs` then applies the token limit, stop
//! sequences and reasoning tokens, and streams the result one tokenizer token per piece.
//!
//! # Source
//!
//! The source is the LAST `user` message (a string, or its `text` parts joined by newlines). It is
//! split into sentences after `.`, `!`, `?` or `…` followed by whitespace or the end (closing
//! quotes and brackets stay with their sentence), after `。`, `！`, `？` wherever they are, and at
//! every line break. There is no abbreviation handling: "e.g. this" is two sentences. Leading
//! list markers (`-`, `*`, `•`, `>`) are dropped; a piece without a letter ("1.", "---") is not a
//! sentence. A sentence that is itself an instruction (it has a word starting with "summar", or one
//! of the length and format phrases below) is left out, except for its text after a colon
//! ("Summarize this ticket: The app crashes." keeps "The app crashes."), unless that would leave
//! nothing. With no sentence left (no user message, or no letter in it) the answer is 12–48
//! random words, as before.
//!
//! # Which sentences win
//!
//! Sentence number `p` (0 for the first usable one) scores
//!
//! ```text
//! 1 / (p + 1)                        lead bias: 1, 0.5, 0.33, 0.25, …
//! + 2    if it has a problem/action word (list below)
//! + 0.5  per distinct system-prompt word it contains, at most 2 of them (+1)
//! − 1    if it is filler: fewer than 3 words, a "Label: value" line without final punctuation,
//!        or a greeting or sign-off without a problem word (its first word is one of
//!        [`GREETINGS`], or it starts with "good morning / afternoon / evening")
//! ```
//!
//! Ties go to the earlier sentence. Chosen sentences are given back in their original order,
//! casing and wording. So the first sentence with a problem word wins, unless:
//!
//! * a later sentence with a problem word shares more system-prompt words: against the very
//!   first sentence it needs two more (one more ties at best, and the tie goes to the first),
//!   against any later one, one more is enough;
//! * it is filler: a short "Please help!" scores 1 less, so a non-filler problem sentence
//!   anywhere beats it (ties aside), and an earlier sentence without a problem word can beat it
//!   with more system-prompt words. ("Hi, my card was charged twice." is not filler.)
//!
//! A sentence without a problem word never beats a non-filler one with it. A dataset author who
//! wants the one-sentence answer to match the reference should copy the first sentence of the
//! ticket that states the problem, and keep the system prompt's topic words out of the others.
//!
//! * Problem/action words match as the start of a lowercase word, so "charg" covers "charged"
//!   and "charges": error, fail, cannot, can't, cant, unable, broke, crash, refund, charg,
//!   overcharg, lock, block, slow, miss, wrong, outage, timeout, timed, urgent, please, need,
//!   request, cancel, bug, issue, problem, stuck, freez, froze, denied, declin, reject, invalid,
//!   incorrect, duplicate, lost, unavailable, doesn't, won't, didn't, complain, expired, delay;
//!   a few French, German and Spanish ones (erreur, impossib, bloqu, rembours, panne, annul,
//!   problè, fehler, gesperrt, erstatt, absturz, stürzt, dringend, kündig, falsch, reembols,
//!   falla, fallo); and, matched anywhere in the sentence, a few Japanese and Chinese ones
//!   (エラー, できません, ロック, 返金, 遅い, 失敗, 障害, 不具合, 至急, 错误, 无法, 失败, 退款).
//! * System-prompt words are the words of the system and developer messages with at least 3
//!   characters, not digits, and not in [`STOPWORDS`] (English function words and instruction
//!   vocabulary such as "summarize", "sentence", "words"). A sentence word matches one when equal,
//!   or equal after dropping a final "s" or "'s".
//! * Words are runs of letters, digits and apostrophes, compared in lowercase.
//!
//! # Instructions
//!
//! Read in lowercase from the system and developer messages, or, when those hold none of them,
//! from the user message (so, without a system prompt, a ticket that happens to say "in a
//! sentence" or "bullets" is taken at its word):
//!
//! * "one sentence", "single sentence", "1 sentence", "in a sentence": the top sentence only;
//!   "N sentences": the top N.
//! * "N bullets" / "bullet points" / "as a list" / "in a list": the top N (default 3) sentences
//!   as lines "- …" (bullets win over sentences).
//! * "brief", "briefly", "concise", "terse" (system and developer messages only), with neither
//!   of the above: the top sentence.
//! * none of these: the top 2 sentences.
//! * "in / under / within N words", "at most N words", "no more than N words",
//!   "fewer / less than N words", "N words or fewer / or less", "N words max", "an N-word …"
//!   (N in digits or one to twenty): the whole answer is cut after its N-th word (a
//!   whitespace-separated chunk with a letter or digit) and, when cut, ends with a ".".
//! * "name the X" / "mention the X": when the source has "X: value" (any case, X a whole word; the
//!   value runs to the line end or to `,` `;` `|` or a sentence end), the answer starts with
//!   "X: value. " (X spelled as in the source), and that field line is not also a sentence.
//!
//! Sentences lacking final punctuation get a "." ("。" after CJK text) in prose answers; bullet
//! lines are left as they are.
//!
//! # Sampling
//!
//! The first choice of a request without `seed` is the greedy answer above. Any other choice
//! (a `seed` is set, or `n > 1` beyond the first) is sampled: the same answer after a short
//! lead-in such as "In short: " picked from [`LEAD_INS`] (distinct for up to 16 choices of one
//! request). `temperature: 0` always gives the greedy answer.
//!
//! # Models
//!
//! A model id containing "small" drops details, deterministically per choice: every number goes
//! (a chunk with a digit is removed; in CJK text only the digits), each other content word
//! (not a stopword, not the first word of its sentence) goes with probability 0.3, and in 30 % of
//! choices the length, brevity and format instructions are ignored (the answer is the default
//! two sentences; "name the X" still applies).

use serde_json::Value;

use crate::tokens::{mix64, SplitMix64};

const CUE_BONUS: f64 = 2.0;
const TOPIC_BONUS: f64 = 0.5;
const TOPIC_CAP: usize = 2;
const FILLER_PENALTY: f64 = 1.0;
const SHORT_WORDS: usize = 3;
const DEFAULT_SENTENCES: usize = 2;
const DEFAULT_BULLETS: usize = 3;
const MAX_BULLETS: usize = 10;
const MAX_SENTENCES: usize = 10;
const MAX_WORD_LIMIT: usize = 500;
const SMALL_DROP: f64 = 0.3;
const SMALL_IGNORE: f64 = 0.3;
/// Keeps the small model's draws independent of the other uses of the choice seed.
const SMALL_SALT: u64 = 0x736d_616c_6c00_0001;

const CUES: &[&str] = &[
    "error",
    "fail",
    "cannot",
    "can't",
    "cant",
    "unable",
    "broke",
    "crash",
    "refund",
    "charg",
    "overcharg",
    "lock",
    "block",
    "slow",
    "miss",
    "wrong",
    "outage",
    "timeout",
    "timed",
    "urgent",
    "please",
    "need",
    "request",
    "cancel",
    "bug",
    "issue",
    "problem",
    "stuck",
    "freez",
    "froze",
    "denied",
    "declin",
    "reject",
    "invalid",
    "incorrect",
    "duplicate",
    "lost",
    "unavailable",
    "doesn't",
    "won't",
    "didn't",
    "complain",
    "expired",
    "delay",
    // French, German, Spanish.
    "erreur",
    "impossib",
    "bloqu",
    "rembours",
    "panne",
    "annul",
    "problè",
    "fehler",
    "gesperrt",
    "erstatt",
    "absturz",
    "stürzt",
    "dringend",
    "kündig",
    "falsch",
    "reembols",
    "falla",
    "fallo",
];

/// Matched as substrings: these scripts do not separate words with spaces.
const CJK_CUES: &[&str] = &[
    "エラー",
    "できません",
    "ロック",
    "返金",
    "遅い",
    "失敗",
    "障害",
    "不具合",
    "至急",
    "错误",
    "无法",
    "失败",
    "退款",
];

/// Words that carry no topic: English function words and the vocabulary of instructions.
pub const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "act",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "answer",
    "any",
    "are",
    "as",
    "assistant",
    "at",
    "be",
    "been",
    "before",
    "being",
    "below",
    "both",
    "brief",
    "briefly",
    "bullet",
    "bullets",
    "but",
    "by",
    "can",
    "concise",
    "could",
    "did",
    "do",
    "does",
    "each",
    "eight",
    "few",
    "fewer",
    "five",
    "following",
    "for",
    "four",
    "from",
    "give",
    "had",
    "has",
    "have",
    "he",
    "helpful",
    "her",
    "here",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "least",
    "less",
    "list",
    "may",
    "me",
    "mention",
    "message",
    "might",
    "more",
    "most",
    "must",
    "my",
    "name",
    "nine",
    "no",
    "not",
    "of",
    "off",
    "on",
    "one",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "per",
    "point",
    "points",
    "reply",
    "respond",
    "response",
    "same",
    "seven",
    "shall",
    "she",
    "short",
    "should",
    "single",
    "six",
    "so",
    "some",
    "such",
    "sentence",
    "sentences",
    "summarise",
    "summarize",
    "summary",
    "ten",
    "text",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "three",
    "to",
    "too",
    "two",
    "under",
    "up",
    "user",
    "using",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "word",
    "words",
    "would",
    "write",
    "you",
    "you're",
    "your",
];

/// First words that make a sentence a greeting or a sign-off.
pub const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "thanks",
    "thank",
    "regards",
    "cheers",
    "best",
    "greetings",
    "bonjour",
    "salut",
    "merci",
    "cordialement",
    "hallo",
    "danke",
    "grüße",
    "hola",
    "gracias",
    "saludos",
];

/// Lead-ins of sampled answers.
pub const LEAD_INS: &[&str] = &[
    "In short:",
    "Summary:",
    "Briefly:",
    "Key point:",
    "TL;DR:",
    "Overall:",
    "In brief:",
    "To summarise:",
    "Short version:",
    "The gist:",
    "Bottom line:",
    "Main point:",
    "Put simply:",
    "In a nutshell:",
    "Essentially:",
    "Core issue:",
];

const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// How well a model follows the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Good,
    /// Drops details and sometimes the instructions; see the module doc.
    Small,
}

impl Quality {
    /// Any served model whose id contains "small" answers like the default `milc-sim-small`.
    pub fn of(model: &str) -> Self {
        if model.contains("small") {
            Quality::Small
        } else {
            Quality::Good
        }
    }
}

/// How one choice is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Decoding {
    pub quality: Quality,
    /// The choice's seed: the request hash plus the choice index.
    pub seed: u64,
    /// `Some(k)` for a sampled answer, whose lead-in is `LEAD_INS[k % len]`; `None` for greedy.
    pub sample: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Sentences(usize),
    Bullets(usize),
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Instructions {
    shape: Option<Shape>,
    /// "be brief", "concise", "terse": one sentence when nothing else sets the shape. Only read
    /// from the system and developer messages (a ticket may well say "brief").
    brief: bool,
    word_limit: Option<usize>,
    /// The X of each "name the X" / "mention the X", lowercase.
    names: Vec<String>,
}

impl Instructions {
    fn parse(text: &str, from_system: bool) -> Self {
        let lower = text.to_lowercase();
        let w: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|s| !s.is_empty())
            .collect();
        let at = |i: usize, back: usize| i.checked_sub(back).map(|j| w[j]);

        let mut sentences = None;
        let mut brief = false;
        let mut bullets = None;
        let mut word_limit = None;
        let mut names = Vec::new();
        for (i, &word) in w.iter().enumerate() {
            let next = w.get(i + 1).copied();
            let one = word == "sentence"
                && (matches!(at(i, 1), Some("one" | "1" | "single"))
                    || (at(i, 1) == Some("a") && at(i, 2) == Some("in")));
            if one && sentences.is_none() {
                sentences = Some(1);
            }
            if word == "sentences" && sentences.is_none() {
                sentences = at(i, 1).and_then(number).map(|n| n.clamp(1, MAX_SENTENCES));
            }
            brief |= from_system
                && matches!(
                    word,
                    "brief" | "briefly" | "concise" | "concisely" | "terse" | "tersely"
                );
            if word.starts_with("bullet") && bullets.is_none() {
                let n = at(i, 1).and_then(number).map(|n| n.clamp(1, MAX_BULLETS));
                bullets = Some(n.unwrap_or(DEFAULT_BULLETS));
            }
            if word == "list"
                && at(i, 1) == Some("a")
                && matches!(at(i, 2), Some("as" | "in"))
                && bullets.is_none()
            {
                bullets = Some(DEFAULT_BULLETS);
            }
            if matches!(word, "words" | "word") && word_limit.is_none() {
                if let Some(n) = at(i, 1).and_then(number) {
                    let (b2, b3, b4) = (at(i, 2), at(i, 3), at(i, 4));
                    let after = (next, w.get(i + 2).copied());
                    let limited = word == "word"
                        || matches!(b2, Some("in" | "under" | "within"))
                        || (b2 == Some("most") && b3 == Some("at"))
                        || (b2 == Some("than") && matches!(b3, Some("fewer" | "less")))
                        || (b2 == Some("than") && b3 == Some("more") && b4 == Some("no"))
                        || matches!(after, (Some("or"), Some("fewer" | "less")))
                        || matches!(next, Some("max" | "maximum"));
                    if limited {
                        word_limit = Some(n.min(MAX_WORD_LIMIT));
                    }
                }
            }
            if matches!(word, "name" | "mention") && next == Some("the") {
                if let Some(x) = w.get(i + 2) {
                    if x.chars().all(char::is_alphabetic) && !names.iter().any(|n| n == x) {
                        names.push((*x).to_owned());
                    }
                }
            }
        }
        let shape = match (bullets, sentences) {
            (Some(n), _) => Some(Shape::Bullets(n)),
            (None, Some(n)) => Some(Shape::Sentences(n)),
            (None, None) => brief.then_some(Shape::Sentences(1)),
        };
        Instructions {
            shape,
            brief,
            word_limit,
            names,
        }
    }

    fn is_empty(&self) -> bool {
        self.shape.is_none() && !self.brief && self.word_limit.is_none() && self.names.is_empty()
    }

    /// Length and format instructions only: what makes a source sentence an instruction.
    fn shapes_the_answer(&self) -> bool {
        self.shape.is_some() || self.word_limit.is_some()
    }
}

/// `N` of "N words": digits, or one to twenty spelled out.
fn number(word: &str) -> Option<usize> {
    if word.chars().all(|c| c.is_ascii_digit()) {
        return word.parse().ok().filter(|&n| n >= 1);
    }
    NUMBER_WORDS.iter().position(|&n| n == word).map(|i| i + 1)
}

fn role(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

fn content_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '”' | '’' | '»' | '」' | '』' | '）'
    )
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff      // hiragana, katakana
        | 0x3400..=0x4dbf    // CJK extension A
        | 0x4e00..=0x9fff    // CJK unified ideographs
        | 0xac00..=0xd7af    // hangul syllables
        | 0xf900..=0xfaff    // CJK compatibility ideographs
        | 0xff66..=0xff9f) // half-width katakana
}

/// Trimmed, marker-free sentences that have at least one letter, in order.
fn split_sentences(text: &str) -> Vec<&str> {
    fn push<'a>(out: &mut Vec<&'a str>, s: &'a str) {
        let s = s
            .trim()
            .trim_start_matches(['-', '*', '•', '>'])
            .trim_start();
        if s.chars().any(char::is_alphabetic) {
            out.push(s);
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let boundary = if c == '\n' || c == '\r' {
            Some((i, i + c.len_utf8()))
        } else if is_terminal(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !(is_terminal(d) || is_closer(d)) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            let wide = matches!(c, '。' | '！' | '？');
            let at_break = wide || chars.peek().is_none_or(|&(_, d)| d.is_whitespace());
            at_break.then_some((end, end))
        } else {
            None
        };
        if let Some((cut, next)) = boundary {
            push(&mut out, &text[start..cut]);
            start = next;
        }
    }
    push(&mut out, &text[start..]);
    out
}

/// Lowercase words: runs of letters, digits and apostrophes (’ read as ').
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.replace('’', "'").trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn stem(word: &str) -> &str {
    let w = word.strip_suffix("'s").unwrap_or(word);
    match w.strip_suffix('s') {
        Some(s) if w.chars().count() > 3 => s,
        _ => w,
    }
}

fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

fn has_cue(sentence: &str, words: &[String]) -> bool {
    words
        .iter()
        .any(|w| CUES.iter().any(|cue| w.starts_with(cue)))
        || CJK_CUES.iter().any(|cue| sentence.contains(cue))
}

/// "Product: Billing Portal": one to three words before a colon, no final punctuation.
fn is_field_line(s: &str) -> bool {
    let Some((label, value)) = s.split_once(':') else {
        return false;
    };
    let label_words = label.split_whitespace().count();
    (1..=3).contains(&label_words)
        && label
            .chars()
            .all(|c| c.is_alphabetic() || c.is_whitespace())
        && !value.trim().is_empty()
        && !s.trim_end().ends_with(is_terminal)
}

fn topic_words(system: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(system) {
        let keep = w.chars().count() >= 3
            && !w.chars().all(|c| c.is_numeric())
            && !is_stopword(&w)
            && !out.contains(&w);
        if keep {
            out.push(w);
        }
    }
    out
}

/// The heuristic of the module doc.
fn score(sentence: &str, position: usize, topic: &[String]) -> f64 {
    let ws = words(sentence);
    let lead = 1.0 / (position as f64 + 1.0);
    let has_cue = has_cue(sentence, &ws);
    let cue = if has_cue { CUE_BONUS } else { 0.0 };
    let hits = topic
        .iter()
        .filter(|t| ws.iter().any(|w| w == *t || stem(w) == stem(t)))
        .count()
        .min(TOPIC_CAP);
    let greeting = !has_cue && ws.first().is_some_and(|w| GREETINGS.contains(&w.as_str()))
        || (ws.first().is_some_and(|w| w == "good")
            && ws
                .get(1)
                .is_some_and(|w| matches!(w.as_str(), "morning" | "afternoon" | "evening")));
    let filler =
        sentence.split_whitespace().count() < SHORT_WORDS || is_field_line(sentence) || greeting;
    let penalty = if filler { FILLER_PENALTY } else { 0.0 };
    lead + cue + TOPIC_BONUS * hits as f64 - penalty
}

/// The top `k` sentences by score (earlier first on ties), in their original order.
fn choose<'a>(sentences: &[&'a str], topic: &[String], k: usize) -> Vec<&'a str> {
    let mut ranked: Vec<(f64, usize)> = sentences
        .iter()
        .enumerate()
        .map(|(p, s)| (score(s, p, topic), p))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut picked: Vec<usize> = ranked.iter().take(k).map(|&(_, p)| p).collect();
    picked.sort_unstable();
    picked.into_iter().map(|p| sentences[p]).collect()
}

/// A source sentence that is an instruction keeps only its text after a colon, if any.
fn without_instruction(sentence: &str) -> Option<&str> {
    let instruction = words(sentence).iter().any(|w| w.starts_with("summar"))
        || Instructions::parse(sentence, false).shapes_the_answer();
    if !instruction {
        return Some(sentence);
    }
    let (_, rest) = sentence.split_once(':')?;
    let rest = rest.trim();
    rest.chars().any(char::is_alphabetic).then_some(rest)
}

/// A "Label: value" field named `name` (any case, a whole word) in `source`.
struct Field<'a> {
    label: &'a str,
    value: &'a str,
}

fn find_field<'a>(source: &'a str, name: &str) -> Option<Field<'a>> {
    for (i, _) in source.char_indices() {
        let Some(label) = source.get(i..i + name.len()) else {
            continue;
        };
        if !label.eq_ignore_ascii_case(name) && label.to_lowercase() != name {
            continue;
        }
        let before_ok = source[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let rest = &source[i + name.len()..];
        let after = rest.trim_start_matches([' ', '\t']);
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        if !before_ok {
            continue;
        }
        let after = after.trim_start_matches([' ', '\t']);
        let mut end = after.len();
        let mut chars = after.char_indices().peekable();
        while let Some((j, c)) = chars.next() {
            let stop = matches!(c, '\n' | '\r' | ',' | ';' | '|')
                || (is_terminal(c) && chars.peek().is_none_or(|&(_, d)| d.is_whitespace()));
            if stop {
                end = j;
                break;
            }
        }
        let value = after[..end].trim();
        if value.chars().any(char::is_alphanumeric) {
            return Some(Field { label, value });
        }
    }
    None
}

/// Adds a final "." (or "。" after CJK text) to a sentence that has no final punctuation.
fn with_period(s: &str) -> String {
    let trimmed = s.trim_end_matches(is_closer);
    if trimmed.ends_with(is_terminal) {
        return s.to_owned();
    }
    let s = s.trim_end_matches([',', ';', ':', '-']);
    let period = if s.chars().next_back().is_some_and(is_cjk) {
        '。'
    } else {
        '.'
    };
    format!("{s}{period}")
}

/// Prose: sentences joined by a space, without one after a CJK full stop.
fn join_prose(sentences: &[String]) -> String {
    let mut out = String::new();
    for s in sentences {
        let s = with_period(s);
        if !out.is_empty() && !out.ends_with(['。', '！', '？']) {
            out.push(' ');
        }
        out.push_str(&s);
    }
    out
}

/// Cuts `text` after its `n`-th word (a whitespace-separated chunk with a letter or digit).
fn cut_words(text: &str, n: usize) -> String {
    let mut count = 0;
    let mut chunk_start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_whitespace() {
            if let Some(start) = chunk_start.take() {
                let chunk: &str = &text[start..i];
                if chunk.chars().any(char::is_alphanumeric) {
                    count += 1;
                    if count == n {
                        let rest = &text[i..];
                        if !rest.chars().any(char::is_alphanumeric) {
                            return text.to_owned();
                        }
                        return with_period(&text[..i]);
                    }
                }
            }
        } else if chunk_start.is_none() {
            chunk_start = Some(i);
        }
    }
    text.to_owned()
}

/// The small model's loss of detail in one sentence: its numbers, and with `rng` some content
/// words. May return an empty string.
fn drop_details(sentence: &str, mut rng: Option<&mut SplitMix64>) -> String {
    let mut out: Vec<String> = Vec::new();
    for (i, chunk) in sentence.split_whitespace().enumerate() {
        let mut chunk = chunk.to_owned();
        let drop = if chunk.chars().any(char::is_numeric) {
            if chunk.chars().any(is_cjk) {
                chunk.retain(|c| !c.is_numeric());
                false
            } else {
                true
            }
        } else {
            let core = words(&chunk).concat();
            let content = !core.is_empty() && !is_stopword(&core);
            match rng.as_deref_mut() {
                Some(rng) => i > 0 && content && rng.next_f64() < SMALL_DROP,
                None => false,
            }
        };
        if !drop {
            out.push(chunk);
            continue;
        }
        // The sentence's final punctuation survives its last word.
        let tail: String = chunk
            .chars()
            .rev()
            .take_while(|c| !c.is_alphanumeric())
            .filter(|&c| is_terminal(c))
            .collect();
        if let Some(last) = out.last_mut() {
            if !tail.is_empty() {
                let kept = last.trim_end_matches([',', ';', ':']).len();
                last.truncate(kept);
                if !last.ends_with(is_terminal) {
                    last.extend(tail.chars().rev());
                }
            }
        }
    }
    let s = out.join(" ");
    if s.chars().any(char::is_alphabetic) {
        s
    } else {
        String::new()
    }
}

/// The text answer to `messages`, or `None` when the last user message has no usable text.
pub fn answer(messages: &[Value], d: Decoding) -> Option<String> {
    let source = content_text(messages.iter().rev().find(|m| role(m) == Some("user"))?);
    let system = messages
        .iter()
        .filter(|m| matches!(role(m), Some("system" | "developer")))
        .map(content_text)
        .collect::<Vec<_>>()
        .join("\n");

    let all = split_sentences(&source);
    let kept: Vec<&str> = all.iter().filter_map(|s| without_instruction(s)).collect();
    let mut sentences = if kept.is_empty() { all } else { kept };
    if sentences.is_empty() {
        return None;
    }

    let mut ins = Instructions::parse(&system, true);
    if ins.is_empty() {
        ins = Instructions::parse(&source, false);
    }
    let small = d.quality == Quality::Small;
    let mut rng = SplitMix64::new(mix64(d.seed ^ SMALL_SALT));
    if small && rng.next_f64() < SMALL_IGNORE {
        ins.shape = None;
        ins.word_limit = None;
    }

    let mut fields = Vec::new();
    for name in &ins.names {
        if let Some(f) = find_field(&source, name) {
            let rest: Vec<&str> = sentences
                .iter()
                .copied()
                .filter(|s| {
                    !(is_field_line(s)
                        && s.get(..f.label.len())
                            .is_some_and(|l| l.eq_ignore_ascii_case(f.label)))
                })
                .collect();
            if !rest.is_empty() {
                sentences = rest;
            }
            fields.push(f);
        }
    }

    let k = match ins.shape {
        Some(Shape::Sentences(n)) => n,
        Some(Shape::Bullets(n)) => n,
        None => DEFAULT_SENTENCES,
    };
    let mut parts: Vec<String> = choose(&sentences, &topic_words(&system), k)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut prefixes: Vec<String> = Vec::new();
    for f in &fields {
        let value = if small {
            drop_details(f.value, None)
        } else {
            f.value.to_owned()
        };
        if !value.is_empty() {
            prefixes.push(with_period(&format!("{}: {value}", f.label)));
        }
    }
    if small {
        parts = parts
            .iter()
            .map(|s| drop_details(s, Some(&mut rng)))
            .filter(|s| !s.is_empty())
            .collect();
    }

    let bullets = matches!(ins.shape, Some(Shape::Bullets(_)));
    let body = if bullets {
        parts
            .iter()
            .map(|p| format!("- {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        join_prose(&parts)
    };
    let sep = if bullets { "\n" } else { " " };
    let mut text = String::new();
    if let Some(k) = d.sample {
        text.push_str(LEAD_INS[(k % LEAD_INS.len() as u64) as usize]);
        text.push_str(sep);
    }
    for p in &prefixes {
        text.push_str(p);
        text.push_str(sep);
    }
    text.push_str(&body);
    if let Some(n) = ins.word_limit {
        text = cut_words(&text, n);
    }
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Where each streamed piece of `text` ends: one piece per tokenizer token (see `tokens.rs`),
/// each carrying the whitespace before it, so the pieces join to `text` and there are exactly
/// `count_tokens(text)` of them when `text` has no trailing whitespace.
pub fn token_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !d.is_alphanumeric() {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            ends.push(end);
        } else if !c.is_whitespace() {
            ends.push(i + c.len_utf8());
        }
    }
    if let Some(last) = ends.last_mut() {
        *last = text.len();
    }
    ends
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::chat::{complete, parse_request};
    use crate::completion::Completion;
    use crate::tokens::count_tokens;

    const TICKET: &str = "Hi there, I hope you are doing well. I was charged twice for my March \
        subscription. I have been a customer since 2019 and never had this happen. Please refund \
        the duplicate payment of $49.99.";
    const PROBLEM: &str = "I was charged twice for my March subscription.";
    const REQUEST: &str = "Please refund the duplicate payment of $49.99.";

    fn ask_with(model: &str, system: Option<&str>, user: &str, extra: Value) -> Completion {
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": user}));
        let mut body = json!({"model": model, "messages": messages});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        complete(&parse_request(body.to_string().as_bytes()).unwrap())
    }

    fn ask(model: &str, system: Option<&str>, user: &str) -> String {
        ask_with(model, system, user, json!({})).choices[0]
            .text
            .clone()
    }

    fn word_count(text: &str) -> usize {
        text.split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .count()
    }

    fn f1(answer: &str, key: &str) -> f64 {
        let (a, k) = (words(answer), words(key));
        let common = a.iter().filter(|w| k.contains(w)).count() as f64;
        if common == 0.0 {
            return 0.0;
        }
        let (p, r) = (common / a.len() as f64, common / k.len() as f64);
        2.0 * p * r / (p + r)
    }

    #[test]
    fn one_sentence_is_the_first_sentence_that_states_the_problem() {
        let system = "Summarize the ticket in one sentence.";
        assert_eq!(ask("milc-sim", Some(system), TICKET), PROBLEM);
        for system in [
            "Answer in a single sentence.",
            "Give a one-sentence summary.",
            "SUMMARIZE IN A SENTENCE",
        ] {
            assert_eq!(ask("milc-sim", Some(system), TICKET), PROBLEM, "{system}");
        }
    }

    #[test]
    fn a_word_limit_cuts_the_answer_and_ends_it_cleanly() {
        let answer = ask("milc-sim", Some("Summarize the ticket in 8 words."), TICKET);
        assert!(word_count(&answer) <= 8, "{answer}");
        assert!(
            PROBLEM.starts_with(answer.trim_end_matches('.')),
            "{answer}"
        );
        for system in [
            "Reply in five words.",
            "Use at most 5 words.",
            "Summarize in 5 words or fewer.",
            "Keep it under five words.",
            "No more than 5 words, please.",
            "Write a 5-word summary.",
        ] {
            let answer = ask("milc-sim", Some(system), TICKET);
            assert_eq!(answer, "I was charged twice for.", "{system}");
        }
        // Words are counted over the whole answer, and an answer that fits is left alone.
        let answer = ask("milc-sim", Some("Summarize in 40 words."), TICKET);
        assert_eq!(answer, format!("{PROBLEM} {REQUEST}"));
    }

    #[test]
    fn bullet_points_are_the_top_three_sentences_in_order() {
        for system in [
            "Summarize the ticket as bullet points.",
            "Use bullets.",
            "Give the key facts as a list.",
        ] {
            let answer = ask("milc-sim", Some(system), TICKET);
            let lines: Vec<&str> = answer.lines().collect();
            assert_eq!(lines.len(), 3, "{system}: {answer}");
            assert!(lines.iter().all(|l| l.starts_with("- ")), "{answer}");
            assert_eq!(lines[0], format!("- {PROBLEM}"), "the greeting is left out");
            assert_eq!(lines[2], format!("- {REQUEST}"));
        }
        let two = ask("milc-sim", Some("Two bullet points."), TICKET);
        assert_eq!(two, format!("- {PROBLEM}\n- {REQUEST}"));
    }

    #[test]
    fn without_instructions_the_top_two_sentences_come_in_their_order() {
        assert_eq!(
            ask("milc-sim", Some("You are a support agent."), TICKET),
            format!("{PROBLEM} {REQUEST}")
        );
        assert_eq!(
            ask("milc-sim", None, TICKET),
            format!("{PROBLEM} {REQUEST}")
        );
        // Fewer sentences than that: the whole source, with a final period.
        assert_eq!(ask("milc-sim", None, "hi"), "hi.");
        assert_eq!(
            ask("milc-sim", None, "Login fails\nsince Monday"),
            "Login fails. since Monday."
        );
    }

    #[test]
    fn naming_a_field_starts_the_answer_with_it() {
        let ticket = format!("Product: Billing Portal\nCustomer: ACME Corp\n{TICKET}");
        let answer = ask(
            "milc-sim",
            Some("Summarize the ticket in one sentence and name the product."),
            &ticket,
        );
        assert_eq!(answer, format!("Product: Billing Portal. {PROBLEM}"));
        let answer = ask(
            "milc-sim",
            Some("Mention the customer and name the PRODUCT."),
            &ticket.to_lowercase().replace("product:", "PRODUCT :"),
        );
        assert!(
            answer.starts_with("customer: acme corp. PRODUCT: billing portal. "),
            "{answer}"
        );
        // No such field: the answer is just the answer.
        let answer = ask("milc-sim", Some("In one sentence; name the team."), &ticket);
        assert_eq!(answer, PROBLEM);
    }

    #[test]
    fn greetings_are_filler_unless_they_state_the_problem() {
        let system = Some("One sentence.");
        let ticket = "Hi, I was charged twice for March. Please refund the duplicate payment.";
        assert_eq!(
            ask("milc-sim", system, ticket),
            "Hi, I was charged twice for March."
        );
        let ticket = "Good morning team, hope all is well. Thanks a lot for last time. \
            The invoice is wrong.";
        assert_eq!(ask("milc-sim", system, ticket), "The invoice is wrong.");
        let ticket = "Hello, I hope you are well. We moved offices last month.";
        assert_eq!(
            ask("milc-sim", Some("Bullets."), ticket),
            "- Hello, I hope you are well.\n- We moved offices last month."
        );
        assert_eq!(
            ask("milc-sim", system, ticket),
            "We moved offices last month."
        );
    }

    #[test]
    fn brevity_and_sentence_counts_in_the_system_prompt() {
        assert_eq!(ask("milc-sim", Some("Be brief."), TICKET), PROBLEM);
        assert_eq!(ask("milc-sim", Some("You are terse."), TICKET), PROBLEM);
        assert_eq!(
            ask(
                "milc-sim",
                Some("Be concise: answer in two sentences."),
                TICKET
            ),
            format!("{PROBLEM} {REQUEST}")
        );
        let three = ask("milc-sim", Some("Summarize in 3 sentences."), TICKET);
        assert_eq!(split_sentences(&three).len(), 3, "{three}");
        // A ticket that says "brief" is not asking for brevity.
        let ticket = "We had a brief outage at noon. The dashboard was slow afterwards.";
        assert_eq!(ask("milc-sim", None, ticket), ticket);
    }

    #[test]
    fn system_prompt_words_steer_the_choice() {
        let ticket = "The invoice total is wrong. The mobile app crashes on the login screen.";
        assert_eq!(
            ask("milc-sim", Some("Summarize in one sentence."), ticket),
            "The invoice total is wrong."
        );
        assert_eq!(
            ask(
                "milc-sim",
                Some("Summarize the mobile login problem in one sentence."),
                ticket
            ),
            "The mobile app crashes on the login screen."
        );
    }

    #[test]
    fn instructions_in_the_user_message_apply_and_are_not_answered_back() {
        let user = format!("Summarize this ticket in one sentence: {TICKET}");
        assert_eq!(ask("milc-sim", None, &user), PROBLEM);
        let user = format!("Summarize this ticket in one sentence.\n\n{TICKET}");
        assert_eq!(ask("milc-sim", None, &user), PROBLEM);
        let user = format!("Please summarize the ticket below as bullet points.\n{TICKET}");
        let answer = ask("milc-sim", None, &user);
        assert_eq!(answer.lines().count(), 3, "{answer}");
        assert!(!answer.contains("ummarize"), "{answer}");
        // Only an instruction: it is all there is to answer from.
        assert_eq!(
            ask("milc-sim", None, "Summarize in one sentence."),
            "Summarize in one sentence."
        );
    }

    #[test]
    fn same_request_same_answer_and_seeds_and_choices_vary() {
        let system = Some("Summarize the ticket in one sentence.");
        assert_eq!(
            ask("milc-sim", system, TICKET),
            ask("milc-sim", system, TICKET)
        );

        let seeded = |seed: u64| {
            ask_with("milc-sim", system, TICKET, json!({"seed": seed})).choices[0]
                .text
                .clone()
        };
        let (a, b) = (seeded(1), seeded(2));
        assert_ne!(a, b);
        assert_eq!(a, seeded(1));
        for s in [&a, &b] {
            assert!(
                s.ends_with(PROBLEM),
                "a sampled answer keeps the content: {s}"
            );
        }

        let many = ask_with("milc-sim", system, TICKET, json!({"n": 4}));
        let texts: Vec<&str> = many.choices.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts[0], PROBLEM, "the first choice is the greedy answer");
        for (i, t) in texts.iter().enumerate() {
            assert!(t.ends_with(PROBLEM), "{t}");
            assert!(!texts[..i].contains(t), "choices differ: {texts:?}");
        }

        let greedy = ask_with(
            "milc-sim",
            system,
            TICKET,
            json!({"seed": 7, "n": 2, "temperature": 0}),
        );
        assert!(greedy.choices.iter().all(|c| c.text == PROBLEM));
    }

    fn tickets(count: u64) -> Vec<(String, String)> {
        let openers = [
            "Hello, I hope you are having a good week.",
            "Hi team, thanks for the quick replies last time.",
            "Good morning from the {city} office.",
        ];
        let problems = [
            "I was charged twice for my {month} invoice of ${n}.",
            "The {product} app crashes every time I open the settings page.",
            "My account has been locked since {n} {month} after three attempts.",
            "The export to CSV fails with a timeout error after {n} minutes.",
            "Order {n} arrived with two items missing from the box.",
        ];
        let middles = [
            "I have been a customer since {year} and this never happened before.",
            "We use the {product} every day for our reporting.",
            "Our office in {city} has {n} people who depend on it.",
        ];
        let closers = [
            "Please fix this before {n} {month}.",
            "I need a refund as soon as possible.",
            "Can you cancel the extra charge?",
        ];
        let months = ["March", "April", "June", "October"];
        let products = ["Billing Portal", "Atlas", "Ledger", "Nimbus Drive"];
        let cities = ["Lyon", "Austin", "Osaka", "Leeds"];
        let mut rng = SplitMix64::new(42);
        let mut pick = |items: &[&'static str]| items[rng.below(items.len() as u64) as usize];
        (0..count)
            .map(|i| {
                let problem = pick(&problems);
                let parts = [pick(&openers), problem, pick(&middles), pick(&closers)];
                let fill = |s: &str| {
                    s.replace("{month}", months[(i % 4) as usize])
                        .replace("{product}", products[(i / 4 % 4) as usize])
                        .replace("{city}", cities[(i / 16 % 4) as usize])
                        .replace("{year}", &(2010 + i % 13).to_string())
                        .replace("{n}", &(3 + i * 7 % 90).to_string())
                };
                let ticket = parts.map(fill).join(" ");
                (ticket, fill(problem))
            })
            .collect()
    }

    #[test]
    fn the_small_model_drops_details_and_sometimes_the_instructions() {
        let mut good_f1 = 0.0;
        let mut small_f1 = 0.0;
        let mut ignored_a_limit = false;
        let tickets = tickets(50);
        for (i, (ticket, problem)) in tickets.iter().enumerate() {
            let system = if i % 2 == 0 {
                "Summarize the ticket in one sentence."
            } else {
                "Summarize the ticket in 8 words."
            };
            let key = ask("milc-sim", Some("In one sentence."), ticket);
            assert_eq!(&key, problem, "the good model finds the problem");
            let good = ask("milc-sim", Some(system), ticket);
            let small = ask("milc-sim-small", Some(system), ticket);
            assert_eq!(small, ask("milc-sim-small", Some(system), ticket));
            assert!(
                !small.chars().any(|c| c.is_ascii_digit()),
                "numbers are dropped: {small}"
            );
            assert!(!small.is_empty());
            if i % 2 == 1 {
                assert!(word_count(&good) <= 8, "{good}");
                ignored_a_limit |= word_count(&small) > 8;
            }
            good_f1 += f1(&good, &key);
            small_f1 += f1(&small, &key);
        }
        let (good_f1, small_f1) = (good_f1 / 50.0, small_f1 / 50.0);
        assert!(
            small_f1 < good_f1,
            "small {small_f1:.3} vs good {good_f1:.3}"
        );
        assert!(
            ignored_a_limit,
            "the small model ignores a length instruction sometimes"
        );
    }

    #[test]
    fn the_reasoning_model_answers_like_the_good_one() {
        let system = Some("Summarize the ticket in one sentence.");
        let c = ask_with("milc-sim-reasoning", system, TICKET, json!({}));
        assert_eq!(c.choices[0].text, PROBLEM);
        assert_eq!(c.usage.completion_tokens_details.reasoning_tokens, 8);
    }

    #[test]
    fn non_ascii_text_is_split_and_answered_from_the_input() {
        let cases = [
            (
                "Bonjour, j'espère que vous allez bien. Mon compte est bloqué depuis hier matin. \
                 Je ne peux plus accéder à mes factures. Merci d'avance !",
                "Mon compte est bloqué depuis hier matin.",
            ),
            (
                "Guten Tag. Seit dem Update stürzt die App beim Start ab. Ich brauche die Daten \
                 für Montag. Viele Grüße, Jürgen",
                "Seit dem Update stürzt die App beim Start ab.",
            ),
            (
                "お世話になっております。昨日からアカウントがロックされています。\
                 パスワードを変更できません。よろしくお願いします。",
                "昨日からアカウントがロックされています。",
            ),
            (
                "Hola. No puedo iniciar sesión: la página muestra un error 500. ¿Pueden ayudarme?",
                "No puedo iniciar sesión: la página muestra un error 500.",
            ),
        ];
        for (ticket, problem) in cases {
            assert_eq!(
                ask("milc-sim", Some("Summarize in one sentence."), ticket),
                problem
            );
            for model in ["milc-sim", "milc-sim-small", "milc-sim-reasoning"] {
                for system in [None, Some("In 3 words."), Some("Bullet points.")] {
                    let c = ask_with(model, system, ticket, json!({"n": 2, "max_tokens": 30}));
                    for choice in &c.choices {
                        assert!(!choice.text.is_empty(), "{model} {system:?} {ticket}");
                        let pieces: String = (0..choice.ends.len())
                            .filter_map(|k| choice.piece(k))
                            .collect();
                        assert_eq!(pieces, choice.text);
                    }
                }
            }
            let answer = ask("milc-sim", None, ticket);
            assert!(
                split_sentences(&answer).iter().all(|s| ticket.contains(s)),
                "{answer}"
            );
        }
    }

    #[test]
    fn pieces_are_tokens_on_char_boundaries_for_any_text() {
        let samples = [
            "",
            "   ",
            "Hello, world!",
            "café – naïve façade… «quoted»",
            "東京は晴れ。大阪は雨！",
            "emoji 🙂 and ZWJ 👩‍💻 and combining é",
            "trailing space ",
            "x",
        ];
        for text in samples {
            let ends = token_ends(text);
            assert_eq!(ends.len() as u64, count_tokens(text), "{text:?}");
            let mut start = 0;
            for &end in &ends {
                assert!(end > start && text.is_char_boundary(end), "{text:?}");
                start = end;
            }
            if !ends.is_empty() {
                assert_eq!(start, text.len());
            }
        }
    }

    #[test]
    fn nothing_to_answer_from_falls_back_to_random_words() {
        for user in ["", "   \n ", "??? 123 ---"] {
            let text = ask("milc-sim", None, user);
            let words = text.split(' ').count();
            assert!((12..=48).contains(&words), "{user:?}: {text}");
            assert!(text
                .split(' ')
                .all(|w| crate::tokens::VOCABULARY.contains(&w)));
        }
        let only_system = json!({"model": "milc-sim",
            "messages": [{"role": "system", "content": "Be brief."}]});
        let c = complete(&parse_request(only_system.to_string().as_bytes()).unwrap());
        assert!(c.choices[0].text.split(' ').count() >= 12);
    }

    #[test]
    fn sentence_splitting() {
        assert_eq!(
            split_sentences("It broke (again). Why?! \"Fix it.\" v2.0 is out\n- item one\n1. x"),
            [
                "It broke (again).",
                "Why?!",
                "\"Fix it.\"",
                "v2.0 is out",
                "item one",
                "x"
            ]
        );
        assert_eq!(
            split_sentences("一つ目。二つ目！三つ目"),
            ["一つ目。", "二つ目！", "三つ目"]
        );
    }
}
