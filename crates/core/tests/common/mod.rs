//! Test helpers shared by integration tests and benchmarks.

pub mod pii;
