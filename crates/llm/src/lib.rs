//! The OpenAI-compatible client and everything only it uses: the SSE parser, retries, the
//! rate-limit gate, error classification, token estimates, structured-output checks and the
//! keyring's secrets. No SQL: the caller logs what [`client::Exchange`] reports.

pub mod client;
pub mod errors;
pub mod forward;
pub mod ratelimit;
pub mod retry;
pub mod secrets;
pub mod sse;
pub mod structured;
pub mod tokens;

pub use client::{Client, Exchange, Target};
pub use secrets::{set_workspace_password, workspace_password, SecretError, SecretString, Secrets};
