//! `milc endpoints status`, `milc endpoints used-by`, `milc prompts used-by` and `milc
//! retirement`: an endpoint's lifecycle (deprecated with a sunset date and a replacement, then
//! retired), what still uses an endpoint or a prompt version, and what is left to retire. The
//! lifecycle warning every command that calls an endpoint prints is here too.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use milc_api::lifecycle::{Lifecycle, RetirementEntry, UsedBy};
use milc_api::EndpointStatus;
use milc_core::retirement::{parse_sunset, when};
use milc_core::Console;

use crate::format::{explain, lifecycle_text, table};
use crate::output;

#[derive(Args)]
pub(crate) struct StatusArgs {
    name: String,
    /// active, deprecated (needs --sunset and --replacement) or retired (takes no calls)
    status: String,
    /// When a deprecated endpoint is to be retired: a UTC date like 2027-01-31, or an RFC 3339
    /// time
    #[arg(long, value_name = "DATE")]
    sunset: Option<String>,
    /// The endpoint that replaces it (named in every warning and refusal)
    #[arg(long, value_name = "ENDPOINT")]
    replacement: Option<String>,
    /// Retire it although something still uses it, or bring a retired endpoint back
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub(crate) struct UsedByArgs {
    /// An endpoint's name, or a prompt version (NAME@N, NAME:LABEL, or NAME for the latest)
    subject: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct RetirementArgs {
    #[arg(long)]
    json: bool,
}

/// `milc endpoints status NAME STATUS`: refused (exit 1, listing what breaks) when retiring
/// something still used without --force.
pub(crate) async fn status(console: &Console, a: StatusArgs) -> Result<ExitCode> {
    let status = EndpointStatus::parse(&a.status).ok_or_else(|| {
        anyhow!(
            "'{}' is not a status: use active, deprecated or retired",
            a.status
        )
    })?;
    let sunset_ms = match &a.sunset {
        Some(s) => Some(parse_sunset(s).map_err(explain)?),
        None => None,
    };
    let lifecycle = Lifecycle {
        status,
        sunset_ms,
        replacement: a.replacement,
    };
    let used = console
        .set_lifecycle(&a.name, lifecycle, a.force)
        .await
        .map_err(explain)?;
    let ep = console.endpoint(&a.name).await.map_err(explain)?;
    eprintln!("'{}' is now {}", a.name, lifecycle_text(&ep.lifecycle()));
    if status == EndpointStatus::Retired && used.is_referenced() {
        eprintln!("retired with --force; these no longer work:");
        for r in used.references() {
            eprintln!("  {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `milc endpoints used-by NAME`.
pub(crate) async fn endpoint_used_by(console: &Console, a: UsedByArgs) -> Result<ExitCode> {
    let used = console
        .endpoint_used_by(&a.subject)
        .await
        .map_err(explain)?;
    output::emit(a.json, &used, used_by_text)?;
    Ok(ExitCode::SUCCESS)
}

/// `milc prompts used-by REF`.
pub(crate) async fn prompt_used_by(console: &Console, a: UsedByArgs) -> Result<ExitCode> {
    let used = console.prompt_used_by(&a.subject).await.map_err(explain)?;
    output::emit(a.json, &used, used_by_text)?;
    Ok(ExitCode::SUCCESS)
}

/// `milc retirement`.
pub(crate) async fn retirement(console: &Console, a: RetirementArgs) -> Result<ExitCode> {
    let list = console.retirement().await.map_err(explain)?;
    output::emit(a.json, &list, |l| retirement_table(l))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints on stderr the lifecycle warnings of the endpoints a command is about to call.
pub(crate) async fn warn_about(console: &Console, endpoints: &[&str]) -> Result<()> {
    for w in console
        .lifecycle_warnings(endpoints)
        .await
        .map_err(explain)?
    {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// `12 (cli 2, gateway 10)`, or `none`.
fn calls_text(by_source: &BTreeMap<String, u64>) -> String {
    let total: u64 = by_source.values().sum();
    if total == 0 {
        return "none".into();
    }
    let parts: Vec<String> = by_source.iter().map(|(s, n)| format!("{s} {n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

fn used_by_text(u: &UsedBy) -> String {
    let refs = u.references();
    let mut out = if refs.is_empty() {
        format!("nothing refers to {}\n", u.subject)
    } else {
        format!(
            "{} is still used by {} reference{}:\n",
            u.subject,
            refs.len(),
            if refs.len() == 1 { "" } else { "s" }
        )
    };
    for r in &refs {
        out.push_str(&format!("  {r}\n"));
    }
    out.push_str(&format!(
        "calls in the last 7 days: {}; in the last 30 days: {}\n",
        calls_text(&u.calls_7d),
        calls_text(&u.calls_30d)
    ));
    out
}

fn retirement_table(list: &[RetirementEntry]) -> String {
    if list.is_empty() {
        return "no endpoint is deprecated or retired\n".into();
    }
    let mut rows = vec![vec![
        "ENDPOINT".to_owned(),
        "STATUS".into(),
        "SUNSET".into(),
        "REPLACEMENT".into(),
        "CALLS 7D".into(),
        "CALLS 30D".into(),
        "REFERENCES".into(),
    ]];
    for e in list {
        let l = &e.lifecycle;
        rows.push(vec![
            e.endpoint.clone(),
            l.status.as_str().into(),
            l.sunset_ms.map_or("-".into(), when),
            l.replacement.clone().unwrap_or_else(|| "-".into()),
            e.calls_7d.to_string(),
            e.calls_30d.to_string(),
            e.references.to_string(),
        ]);
    }
    table(&rows)
}
