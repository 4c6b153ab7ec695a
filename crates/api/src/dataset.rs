//! Datasets: items with variables, one or more reference outputs and metadata; immutable
//! versions identified by content hash.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One test case: the values of the prompt's variables, the reference outputs (zero or more) and
/// free-form metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetItem {
    pub vars: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// A version of a dataset as lists show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetVersion {
    pub dataset: String,
    /// SHA-256 of the items' canonical JSON; a prefix of 6 or more characters names it.
    pub hash: String,
    pub items: u64,
    /// Variable names over all items, sorted.
    pub variables: Vec<String>,
    pub created_ms: i64,
    /// Where it was imported from.
    pub source: String,
}

/// A parsed file before anything is stored: what `--preview` and the import dialog show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetPreview {
    pub items: u64,
    pub variables: Vec<String>,
    pub with_expected: u64,
    pub first: Vec<DatasetItem>,
    pub hash: String,
}

/// The outcome of an import: `created` is false when this content was already a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub version: DatasetVersion,
    pub created: bool,
}

/// Changes to one dataset version. Saving them stores a new version of the same dataset (the
/// base stays as it was, and runs keep pointing at it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetEdit {
    /// The version edited: `NAME@HASH`, or `NAME` for the newest.
    pub base: String,
    /// Replacement items by index (0-based) in the base version, each as one JSONL line.
    #[serde(default)]
    pub set: BTreeMap<u64, String>,
    /// Indexes (0-based) of items to leave out.
    #[serde(default)]
    pub delete: BTreeSet<u64>,
    /// Items appended after the last one, each as one JSONL line.
    #[serde(default)]
    pub add: Vec<String>,
}

impl DatasetEdit {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty() && self.add.is_empty()
    }
}
