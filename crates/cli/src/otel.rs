//! `milc otel`: where this database's calls are exported as OpenTelemetry spans.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use milc_api::otel::{OtelChange, OtelSettings, OtelStatus};
use milc_api::TokenChange;
use milc_core::Console;

use crate::format::explain;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum OtelCmd {
    /// Export every call as a span (OTLP over HTTP/protobuf) to a collector; replaces the
    /// settings, headers included
    Set {
        /// The collector: a base URL (http://localhost:4318; /v1/traces is added) or the full
        /// traces URL
        #[arg(long, value_name = "URL")]
        endpoint: String,
        /// A header sent with each export, NAME=VALUE (repeatable); the value is kept in the
        /// OS keyring
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
        /// A header whose value is read from stdin (stays out of `ps` and the shell history)
        #[arg(long, value_name = "NAME")]
        header_stdin: Option<String>,
        /// Keep the stored headers not named here (default: they are removed)
        #[arg(long)]
        keep_headers: bool,
        #[arg(long)]
        json: bool,
    },
    /// The export's settings (header names only)
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Stop exporting; the header values leave the keyring
    Clear,
    /// The settings and this process's exported and dropped span counts
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn otel(console: &Console, cmd: OtelCmd) -> Result<ExitCode> {
    match cmd {
        OtelCmd::Set {
            endpoint,
            headers,
            header_stdin,
            keep_headers,
            json,
        } => {
            let mut change = OtelChange {
                endpoint,
                headers: BTreeMap::new(),
            };
            if keep_headers {
                if let Some(current) = console.otel_get().await.map_err(explain)? {
                    for name in current.headers {
                        change.headers.insert(name, TokenChange::Keep);
                    }
                }
            }
            for h in &headers {
                // The argument is not echoed: it may hold the value.
                let (name, value) = h
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--header: write each as NAME=VALUE"))?;
                change.headers.insert(
                    name.trim().to_ascii_lowercase(),
                    TokenChange::Replace(value.trim().to_owned()),
                );
            }
            if let Some(name) = header_stdin {
                change.headers.insert(
                    name.trim().to_ascii_lowercase(),
                    TokenChange::Replace(read_value(&name)?),
                );
            }
            let s = console.otel_set(&change).await.map_err(explain)?;
            output::emit(json, &s, settings_text)?;
        }
        OtelCmd::Show { json } => {
            let s = console.otel_get().await.map_err(explain)?;
            output::emit(json, &s, |s| match s {
                Some(s) => settings_text(s),
                None => "export off (milc otel set --endpoint URL)\n".into(),
            })?;
        }
        OtelCmd::Clear => {
            console.otel_clear().await.map_err(explain)?;
            eprintln!("export off; header values removed from the OS keyring");
        }
        OtelCmd::Status { json } => {
            let s = console.otel_status().await.map_err(explain)?;
            output::emit(json, &s, status_text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn settings_text(s: &OtelSettings) -> String {
    let mut out = format!("spans to {}\n", s.traces_url);
    for h in &s.headers {
        out.push_str(&format!("  {h}: <in the OS keyring>\n"));
    }
    out
}

fn status_text(s: &OtelStatus) -> String {
    let mut out = match &s.settings {
        Some(settings) => settings_text(settings),
        None => "export off\n".into(),
    };
    out.push_str(&format!(
        "this process: {}, {} exported, {} dropped\n",
        if s.active {
            "exporting"
        } else {
            "not exporting"
        },
        s.exported,
        s.dropped
    ));
    if let Some(e) = &s.last_error {
        out.push_str(&format!("last error: {e}\n"));
    }
    out
}

/// A header value from stdin: the first line, trimmed. Never echoed, never logged.
fn read_value(name: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{name} (input is not hidden; prefer piping it in): ");
    }
    let mut s = String::new();
    stdin
        .lock()
        .read_to_string(&mut s)
        .context("reading the header value from stdin")?;
    let value = s.lines().next().unwrap_or("").trim().to_owned();
    if value.is_empty() {
        bail!("--header-stdin {name}: stdin held no value");
    }
    Ok(value)
}
