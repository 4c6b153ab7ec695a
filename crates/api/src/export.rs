//! The formats of every file the console writes or reads as a whole — dataset files, the call
//! log, usage reports, comparison exports — and the one shape an export reports.

use serde::{Deserialize, Serialize};

/// A file format, by the name shells and the window use for it (`"csv"`, `"jsonl"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON object per line with a BigQuery schema: the call log.
    Ndjson,
    /// A usage report as shown: its rows and a totals line, as CSV.
    Shown,
    /// OpenAI chat fine-tuning JSONL: the preferred variant's prompt and answer.
    Finetune,
    /// Preference pairs: prompt, chosen, rejected.
    Dpo,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Self::Csv,
        Self::Jsonl,
        Self::Ndjson,
        Self::Shown,
        Self::Finetune,
        Self::Dpo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ndjson => "ndjson",
            Self::Shown => "shown",
            Self::Finetune => "finetune",
            Self::Dpo => "dpo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s.trim())
    }

    /// The file name ending a file of this format takes.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv | Self::Shown => "csv",
            Self::Ndjson => "ndjson",
            Self::Jsonl | Self::Finetune | Self::Dpo => "jsonl",
        }
    }

    /// `self` if `what` is written in it, else the message that names what is.
    pub fn one_of(self, what: &str, allowed: &[Format]) -> Result<Self, String> {
        if allowed.contains(&self) {
            return Ok(self);
        }
        let names: Vec<&str> = allowed.iter().map(|f| f.as_str()).collect();
        Err(match names.split_last() {
            Some((last, [])) => format!("{what} exports as {last} only"),
            Some((last, rest)) => format!("{what} exports as {} or {last}", rest.join(", ")),
            None => format!("{what} cannot be exported"),
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an export wrote: what it was of (`NAME@HASH` for a dataset version, a comparison's
/// name, a range of calls), where, in which format, and how many records (items, rows, votes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    pub source: String,
    pub path: String,
    pub format: Format,
    pub records: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_cross_as_their_names_and_refuse_what_does_not_fit() {
        for f in Format::ALL {
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("xml"), None);
        assert_eq!(
            Format::Dpo.one_of("a dataset", &[Format::Csv, Format::Jsonl]),
            Err("a dataset exports as csv or jsonl".into())
        );
        assert_eq!(Format::Csv.one_of("x", &[Format::Csv]), Ok(Format::Csv));
    }
}
