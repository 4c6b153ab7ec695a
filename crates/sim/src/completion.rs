//! A generated chat completion: each choice's text with where its streamed pieces end, and the
//! usage figures. `chat.rs` makes one and renders it as a JSON body, `sse.rs` as an event stream.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceText {
    pub text: String,
    /// Byte offset where each streamed piece ends; piece k is `text[ends[k-1]..ends[k]]`.
    pub ends: Vec<usize>,
    pub finish_reason: &'static str,
}

impl ChoiceText {
    pub fn piece(&self, k: usize) -> Option<&str> {
        let end = *self.ends.get(k)?;
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        Some(&self.text[start..end])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetails,
    pub completion_tokens_details: CompletionDetails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PromptDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompletionDetails {
    pub reasoning_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub choices: Vec<ChoiceText>,
    pub usage: Usage,
}
