//! Token counts for calls whose server reported no usage (an interrupted stream, a server that
//! omits it). Figures from here are always flagged `estimated`.
//!
//! The encoding follows the model name: `o200k_base` for gpt-4o, gpt-4.1, gpt-5 and the o-series,
//! `cl100k_base` for gpt-4, gpt-3.5 and OpenAI's embedding models. Other models (Llama,
//! Nemotron, Mistral, …) have tokenizers of their own that are not bundled: they are counted with
//! `cl100k_base`, a stand-in of the same kind (byte-level BPE with a 100k vocabulary) — close on
//! English prose, rougher on code and other languages. The tables are embedded in the binary and
//! loaded on first use (60–150 ms, once per process).

use std::sync::OnceLock;

use milc_api::Message;
use tiktoken_rs::CoreBPE;

/// The encoding counted for `model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    O200k,
    Cl100k,
}

impl Encoding {
    pub fn for_model(model: &str) -> Self {
        // Namespaced ids such as `openai/gpt-4o` count as their last part.
        let m = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let o_series = m.len() > 1
            && m.starts_with('o')
            && m[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
        if m.starts_with("gpt-4o") || m.starts_with("gpt-4.1") || m.starts_with("gpt-5") || o_series
        {
            Self::O200k
        } else {
            Self::Cl100k
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        static O200K: OnceLock<CoreBPE> = OnceLock::new();
        static CL100K: OnceLock<CoreBPE> = OnceLock::new();
        match self {
            Self::O200k => {
                O200K.get_or_init(|| tiktoken_rs::o200k_base().expect("the embedded table loads"))
            }
            Self::Cl100k => {
                CL100K.get_or_init(|| tiktoken_rs::cl100k_base().expect("the embedded table loads"))
            }
        }
    }

    /// Tokens in `text` (special-token text counted as ordinary text).
    pub fn count(self, text: &str) -> u64 {
        self.bpe().encode_ordinary(text).len() as u64
    }
}

/// Tokens of a chat prompt: each message's content plus 3 tokens of framing, and 3 that prime the
/// reply (OpenAI's published accounting for its chat models).
pub fn prompt_tokens(model: &str, messages: &[Message]) -> u64 {
    let e = Encoding::for_model(model);
    messages
        .iter()
        .map(|m| e.count(&m.content) + 3)
        .sum::<u64>()
        + 3
}

/// Tokens of a text for `model`.
pub fn text_tokens(model: &str, text: &str) -> u64 {
    Encoding::for_model(model).count(text)
}

#[cfg(test)]
mod tests {
    use milc_api::Role;

    use super::*;

    #[test]
    fn encodings_follow_the_model_and_count_like_tiktoken() {
        for (model, e) in [
            ("gpt-4o-mini", Encoding::O200k),
            ("openai/gpt-4.1", Encoding::O200k),
            ("o3-mini", Encoding::O200k),
            ("gpt-4-turbo", Encoding::Cl100k),
            ("gpt-3.5-turbo", Encoding::Cl100k),
            ("meta/llama-3.3-70b-instruct", Encoding::Cl100k),
            ("ollama", Encoding::Cl100k),
        ] {
            assert_eq!(Encoding::for_model(model), e, "{model}");
        }
        // Counts as OpenAI's tiktoken gives them for the same strings.
        assert_eq!(Encoding::Cl100k.count("hello world"), 2);
        assert_eq!(
            Encoding::Cl100k.count("The quick brown fox jumps over the lazy dog."),
            10
        );
        assert_eq!(
            Encoding::Cl100k.count("<|endoftext|>"),
            7,
            "not a special token here"
        );
        assert_eq!(Encoding::O200k.count("hello world"), 2);
        let m = [
            Message::new(Role::System, "You are terse."),
            Message::new(Role::User, "hello world"),
        ];
        // 4 + 2 content tokens, 3 of framing each, 3 to prime the reply.
        assert_eq!(prompt_tokens("gpt-4", &m), 4 + 2 + 3 * 2 + 3);
    }
}
