//! The sample project a new user can open (`milc demo load`, the window's first-start offer).

use serde::{Deserialize, Serialize};

/// What the sample project holds once loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub endpoint: String,
    pub prompt: String,
    pub dataset: String,
    pub runs: Vec<i64>,
    pub comparison: String,
    pub calls: u64,
}

/// Whether the sample is loaded, and whether the window should offer it (a workspace with
/// no prompt and no dataset of its own yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoState {
    pub loaded: bool,
    pub offer: bool,
}
