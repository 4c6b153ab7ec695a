//! MILC Console's core: the store, secrets, the OpenAI-compatible client and the engines built on
//! them. No Tauri and no UI: the CLI and the desktop shell are thin layers over [`Console`].

pub mod alerts;
pub mod client;
pub mod compare;
pub mod console;
pub mod datasets;
pub mod endpoints;
pub mod errors;
pub mod history;
pub mod prompts;
pub mod ratelimit;
pub mod redact;
pub mod retry;
pub mod runs;
pub mod scoring;
pub mod secrets;
pub mod sse;
pub mod stats;
pub mod store;
pub mod structured;
pub mod tokens;
pub mod usage;
pub mod writer;

pub use console::{default_db_path, default_log_dir, Console, SIMULATOR_ENDPOINT};
pub use secrets::{SecretError, SecretString, Secrets};
pub use store::{Store, StoreError};

use milc_api::{CallError, ErrorKind};

/// Every failure a user action can end in.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{error}")]
    Call {
        error: CallError,
        call_id: Option<i64>,
        partial: String,
    },
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error as it crosses to a UI: a kind to branch on and a message to show.
    pub fn to_api(&self) -> CallError {
        match self {
            Self::Call { error, .. } => error.clone(),
            Self::Invalid { .. } => CallError {
                kind: ErrorKind::Config,
                message: self.to_string(),
                status: None,
            },
            Self::Store(
                StoreError::NoSuchEndpoint(_)
                | StoreError::NoSuchPrompt(_)
                | StoreError::NoSuchDataset(_)
                | StoreError::NoSuchRun(_)
                | StoreError::NoSuchComparison(_),
            ) => CallError {
                kind: ErrorKind::NotFound,
                message: self.to_string(),
                status: None,
            },
            Self::Store(
                StoreError::DuplicateName(_)
                | StoreError::DuplicatePrompt(_)
                | StoreError::DuplicateComparison(_),
            ) => CallError {
                kind: ErrorKind::Conflict,
                message: self.to_string(),
                status: None,
            },
            _ => CallError {
                kind: ErrorKind::Internal,
                message: self.to_string(),
                status: None,
            },
        }
    }
}
