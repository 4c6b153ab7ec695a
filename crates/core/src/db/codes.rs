//! The small integer codes stored in `calls`. Never renumber: rows already written use them.

use milc_api::{CallSource, ErrorKind, Outcome};

use super::{Result, StoreError};

pub fn source_code(s: CallSource) -> i64 {
    match s {
        CallSource::Cli => 1,
        CallSource::Playground => 2,
        CallSource::Run => 3,
        CallSource::Gateway => 4,
        CallSource::Loadtest => 5,
    }
}

pub fn source_from(code: i64) -> Result<CallSource> {
    CallSource::ALL
        .into_iter()
        .find(|s| source_code(*s) == code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown call source code {code}")))
}

pub fn outcome_code(o: Outcome) -> i64 {
    match o {
        Outcome::Ok => 0,
        Outcome::Error => 1,
        Outcome::Cancelled => 2,
    }
}

pub fn outcome_from(code: i64) -> Result<Outcome> {
    Outcome::ALL
        .into_iter()
        .find(|o| outcome_code(*o) == code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown call outcome code {code}")))
}

pub fn error_code(k: ErrorKind) -> i64 {
    match k {
        ErrorKind::Config => 1,
        ErrorKind::Connection => 2,
        ErrorKind::Tls => 3,
        ErrorKind::Auth => 4,
        ErrorKind::Permission => 5,
        ErrorKind::NotFound => 6,
        ErrorKind::BadRequest => 7,
        ErrorKind::Conflict => 8,
        ErrorKind::RateLimit => 9,
        ErrorKind::Quota => 10,
        ErrorKind::Timeout => 11,
        ErrorKind::Server => 12,
        ErrorKind::Protocol => 13,
        ErrorKind::Cancelled => 14,
        ErrorKind::Internal => 15,
    }
}

pub fn error_from(code: i64) -> Result<ErrorKind> {
    ErrorKind::ALL
        .into_iter()
        .find(|k| error_code(*k) == code)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown error kind code {code}")))
}
