//! MILC Console's core: `Console`, the one façade every shell calls, over the store (`db`), the
//! call log and one folder per domain, each with its SQL in `storage.rs` and its actions
//! (`impl Console`) beside it. No Tauri and no UI: the shells are thin layers over [`Console`].

pub mod activity;
pub mod archive;
pub mod calllog;
pub mod chat;
pub mod compare;
pub mod console;
pub mod datasets;
pub mod db;
pub mod demo;
pub mod drift;
pub mod endpoints;
pub mod gateway;
pub mod loadtest;
pub mod otel;
pub mod prompts;
pub mod redact;
pub mod retirement;
pub mod runs;
pub mod schedules;
pub mod usage;
pub mod usecases;
pub mod workspace;

pub use console::{
    default_config_dir, default_db_path, default_log_dir, Console, SIMULATOR_ENDPOINT,
};
pub use db::{Store, StoreError};
pub use milc_llm::{
    set_workspace_password, workspace_password, SecretError, SecretString, Secrets,
};
pub use {milc_eval as eval, milc_llm as llm};

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

impl From<milc_eval::Invalid> for Error {
    fn from(e: milc_eval::Invalid) -> Self {
        Self::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl Error {
    /// The database refused this login the statement (a workspace role that does not allow it).
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Store(StoreError::Denied(_)))
    }

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
                | StoreError::NoSuchComparison(_)
                | StoreError::NoSuchRoute(_)
                | StoreError::NoSuchCall(_)
                | StoreError::NoSuchLoadTest(_)
                | StoreError::NoSuchUseCase(_)
                | StoreError::NoSuchSchedule(_),
            ) => CallError {
                kind: ErrorKind::NotFound,
                message: self.to_string(),
                status: None,
            },
            Self::Store(
                StoreError::DuplicateName(_)
                | StoreError::DuplicatePrompt(_)
                | StoreError::DuplicateComparison(_)
                | StoreError::DuplicateKey(_)
                | StoreError::DuplicateUseCase(_)
                | StoreError::RunTaken { .. }
                | StoreError::DuplicateSchedule(_),
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
