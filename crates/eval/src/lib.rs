//! Scorers and statistics: pure functions over texts and votes, reference-exact (see
//! ../shared/METRICS.md), the canary judge of a gateway's live split, and the tests drift
//! monitoring runs (`drift`: Mann–Whitney U as scipy, Hodges–Lehmann shift, two proportions as
//! statsmodels). No I/O.

pub mod canary;
pub mod drift;
pub mod scoring;
pub mod stats;

/// A scorer's specification that cannot be used, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
