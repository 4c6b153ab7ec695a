//! Deterministic text machinery: the stable request hash, the word PRNG, the fixed vocabulary and
//! the tokenizer the simulator uses for every `usage` figure.
//!
//! # Tokenizer
//!
//! The token count of a text is the number of matches of two patterns, scanned left to right:
//!
//! * a maximal run of alphanumeric characters (`char::is_alphanumeric`, so Unicode letters and
//!   digits count) is one token;
//! * every other character that is not whitespace (`char::is_whitespace`) is one token on its own.
//!
//! Whitespace is free. `"Hello, world!"` is 4 tokens (`Hello`, `,`, `world`, `!`).
//!
//! Prompt accounting on top of that (see `chat.rs`): each message costs `tokens(content) + 4`,
//! the whole prompt adds 3. Every vocabulary word is a single alphanumeric run, so every generated
//! word is exactly one completion token; extracted answers (`answer.rs`) are streamed one token
//! per piece. Either way the tokenizer agrees with the stream: one content chunk per token.

use serde_json::Value;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit. Used instead of std's `DefaultHasher` because that one is randomly keyed per
/// process and its algorithm is not a stability promise; simulator output must be identical
/// across runs, processes and toolchains.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(FNV_OFFSET)
    }
}

impl Fnv1a {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// A field boundary, so that ("ab", "c") and ("a", "bc") hash differently.
    pub fn separator(&mut self) {
        self.write(&[0xff]);
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    h.write(bytes);
    h.finish()
}

/// Hashes a JSON value canonically: object keys in sorted order whatever order they arrived in
/// (and whether or not some other crate turns on serde_json's `preserve_order`), numbers by their
/// JSON spelling.
pub fn hash_json(h: &mut Fnv1a, value: &Value) {
    match value {
        Value::Null => h.write(b"n"),
        Value::Bool(b) => h.write(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.write(b"#");
            h.write(n.to_string().as_bytes());
        }
        Value::String(s) => {
            h.write(b"s");
            h.write(s.as_bytes());
        }
        Value::Array(items) => {
            h.write(b"[");
            for item in items {
                hash_json(h, item);
                h.separator();
            }
            h.write(b"]");
        }
        Value::Object(map) => {
            h.write(b"{");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            for key in keys {
                h.write(key.as_bytes());
                h.separator();
                hash_json(h, &map[key.as_str()]);
                h.separator();
            }
            h.write(b"}");
        }
    }
}

/// SplitMix64: tiny, fast, and fully specified, so sequences never change under a dependency
/// upgrade (unlike `rand`'s `StdRng`, whose algorithm is explicitly not stable).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform-enough in `0..n` for small `n` (modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The SplitMix64 finaliser: a good 64-bit bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Token count of `text` under the simulator's tokenizer (see the module doc).
pub fn count_tokens(text: &str) -> u64 {
    let mut count = 0;
    let mut in_run = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if !in_run {
                count += 1;
                in_run = true;
            }
        } else {
            in_run = false;
            if !c.is_whitespace() {
                count += 1;
            }
        }
    }
    count
}

/// Plain lowercase English words; each is one alphanumeric run and therefore one token.
pub static VOCABULARY: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are", "with", "as",
    "be", "at", "one", "have", "this", "from", "by", "hot", "word", "but", "what", "some", "we",
    "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said",
    "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many",
    "then", "them", "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see",
    "him", "two", "has", "look", "more", "day", "could", "go", "come", "did", "number", "sound",
    "no", "most", "people", "my", "over", "know", "water", "than", "call", "first", "who", "may",
    "down", "side", "been", "now", "find", "any", "new", "work", "part", "take", "get", "place",
    "made", "live", "where", "after", "back", "little", "only", "round", "man", "year", "came",
    "show", "every", "good", "me", "give", "our", "under", "name", "very", "through", "just",
    "form", "sentence", "great", "think", "say", "help", "low", "line", "differ", "turn", "cause",
    "much", "mean", "before", "move", "right", "boy", "old", "too", "same", "tell", "does", "set",
    "three", "want", "air", "well", "also", "play", "small", "end", "put", "home", "read", "hand",
    "port", "large", "spell", "add", "even", "land", "here", "must", "big", "high", "such",
    "follow", "act", "why", "ask", "men", "change", "went", "light", "kind", "off", "need",
    "house", "picture", "try", "us", "again", "animal", "point", "mother", "world", "near",
    "build", "self", "earth", "father", "head", "stand", "own", "page", "should", "country",
    "found", "answer", "school", "grow", "study", "still", "learn", "plant", "cover", "food",
    "sun", "four", "between", "state", "keep", "eye", "never", "last", "let", "thought", "city",
    "tree", "cross", "farm", "hard", "start", "might", "story", "saw", "far", "sea", "draw",
    "left", "late", "run", "while", "press", "close", "night", "real", "life", "few", "north",
    "open", "seem", "together", "next", "white", "children", "begin", "got", "walk", "example",
    "ease", "paper", "group", "always", "music", "those", "both", "mark", "often", "letter",
    "until", "mile", "river", "car", "feet", "care", "second", "book", "carry", "took", "science",
    "eat", "room", "friend", "began", "idea", "fish", "mountain", "stop", "once", "base", "hear",
    "horse",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_counts_runs_and_symbols() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("   \n\t"), 0);
        assert_eq!(count_tokens("Hello, world!"), 4);
        assert_eq!(count_tokens("gpt-4o"), 3);
        assert_eq!(count_tokens("café 42x"), 2);
        assert_eq!(count_tokens("a  b\nc"), 3);
    }

    #[test]
    fn every_vocabulary_word_is_one_token_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for &word in VOCABULARY {
            assert_eq!(count_tokens(word), 1, "{word}");
            assert!(word.chars().all(|c| c.is_ascii_lowercase()), "{word}");
            assert!(seen.insert(word), "duplicate {word}");
        }
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn json_hash_ignores_key_order() {
        let a: Value = serde_json::from_str(r#"{"role":"user","content":"hi"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"content":"hi","role":"user"}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"content":"ho","role":"user"}"#).unwrap();
        let h = |v: &Value| {
            let mut h = Fnv1a::default();
            hash_json(&mut h, v);
            h.finish()
        };
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
    }

    #[test]
    fn splitmix_f64_in_unit_interval() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
