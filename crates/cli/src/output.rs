//! A command's result on stdout: pretty JSON for scripts (`--json`) or text for a person, written
//! in one place so a closed pipe or a full disk ends the command with an error, not a panic.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

/// Prints `value` as pretty JSON when `json`, else the text `human` makes of it (which ends with
/// its own newline).
pub(crate) fn emit<T: Serialize + ?Sized>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<()> {
    let text = if json {
        serde_json::to_string_pretty(value)? + "\n"
    } else {
        human(value)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Prints `value` as pretty JSON, for the commands whose output is JSON with or without `--json`.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    emit(true, value, |_| String::new())
}
