//! `milc archive`: compliance archives of an endpoint, a prompt or a use case: create, verify,
//! show, and purge the archived calls from the log. Verify and show read only the file (no
//! database is opened).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::{ArgGroup, Args, Subcommand};
use milc_api::lifecycle::{ArchiveReport, ArchiveScope, Purged};
use milc_core::{archive, Console};

use crate::format::explain;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum ArchiveCmd {
    /// Write everything an endpoint, a prompt or a use case touched to one .tar.zst: settings
    /// (never a token), prompt versions and label moves, datasets, runs, comparisons and votes,
    /// load tests, use cases, and the calls with their kept (redacted) bodies, gateway tags and
    /// feedback, one JSONL file each, with a manifest of their SHA-256s
    Create(CreateArgs),
    /// Recompute every member's SHA-256 and the manifest's; exits 1 naming each member that
    /// changed, is missing or was added
    Verify {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print an archive's manifest: scope, members, rows, hashes (read, not verified)
    Show {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Verify the archive, then delete its calls from this database's log (with their bodies,
    /// gateway tags and feedback) in one transaction; usage charts and totals stay as they were
    Purge {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["endpoint", "usecase", "prompt"])))]
pub(crate) struct CreateArgs {
    /// The endpoint, and what used it: its calls, the runs, comparisons and load tests on it,
    /// the prompts and datasets they used
    #[arg(long)]
    endpoint: Option<String>,
    /// The use case's card, its candidates' calls, the runs and load tests attached to it
    #[arg(long)]
    usecase: Option<String>,
    /// The prompt with every version and label move, and the runs, comparisons, load tests and
    /// calls on its versions
    #[arg(long)]
    prompt: Option<String>,
    /// Only calls, runs, comparisons and load tests from: 24h, 7d, a date like 2026-11-01
    /// (UTC) or an RFC 3339 time
    #[arg(long)]
    since: Option<String>,
    /// Until (not included), as --since
    #[arg(long)]
    until: Option<String>,
    /// The archive to write (written whole or not at all)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

impl CreateArgs {
    fn scope(&self) -> ArchiveScope {
        match (&self.endpoint, &self.usecase, &self.prompt) {
            (Some(e), _, _) => ArchiveScope::Endpoint(e.clone()),
            (_, Some(u), _) => ArchiveScope::Usecase(u.clone()),
            (_, _, Some(p)) => ArchiveScope::Prompt(p.clone()),
            _ => unreachable!("clap requires one of --endpoint, --usecase, --prompt"),
        }
    }
}

/// Runs an archive command; `open` opens `--db` (create and purge open the database, verify
/// and show do not).
pub(crate) async fn archive<F: std::future::Future<Output = Result<Console>>>(
    open: impl Fn() -> F,
    cmd: ArchiveCmd,
) -> Result<ExitCode> {
    match cmd {
        ArchiveCmd::Verify { file, json } => {
            let r = archive::verify(&file).map_err(explain)?;
            output::emit(json, &r, report_text)?;
            if !r.damaged.is_empty() {
                eprintln!(
                    "error: {} changed since the archive was written: {}",
                    file.display(),
                    r.damaged.join(", ")
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        ArchiveCmd::Show { file, json } => {
            let r = archive::manifest(&file).map_err(explain)?;
            output::emit(json, &r, report_text)?;
            if !r.damaged.is_empty() {
                eprintln!(
                    "error: {}: {} does not match its hash",
                    file.display(),
                    r.damaged.join(", ")
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        ArchiveCmd::Create(args) => {
            let console = open().await?;
            let now = milc_core::db::now_ms();
            let when = |flag: &str, s: &Option<String>| {
                s.as_deref()
                    .map(|s| {
                        milc_core::usage::parse_when(s, now).ok_or_else(|| {
                            anyhow!("--{flag} '{s}': 24h, 7d, a date like 2026-11-01 or an RFC 3339 time")
                        })
                    })
                    .transpose()
            };
            let (since, until) = (when("since", &args.since)?, when("until", &args.until)?);
            let out = path_arg(&args.out)?;
            let tty = std::io::stderr().is_terminal();
            let mut progress = |done: u64, total: u64| {
                if tty {
                    eprint!("\r{}% ({done}/{total})", done * 100 / total.max(1));
                }
            };
            let r = console
                .archive_create(&args.scope(), since, until, out, &mut progress)
                .await
                .map_err(explain);
            if tty {
                eprintln!();
            }
            let r = r?;
            output::emit(args.json, &r, |r| {
                format!(
                    "{}: {} calls, {} members, manifest sha256 {}\n",
                    r.path,
                    r.manifest.calls,
                    r.manifest.members.len(),
                    r.manifest_sha256
                )
            })?;
            console.close().await;
        }
        ArchiveCmd::Purge { file, json } => {
            let console = open().await?;
            let p = console
                .archive_purge(path_arg(&file)?)
                .await
                .map_err(explain)?;
            output::emit(json, &p, |p: &Purged| {
                let mut s = format!(
                    "{} calls deleted ({} with kept bodies); usage figures unchanged\n",
                    p.calls, p.bodies
                );
                if p.skipped > 0 {
                    s.push_str(&format!(
                        "{} archived calls were no longer in the log\n",
                        p.skipped
                    ));
                }
                s
            })?;
            console.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn path_arg(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow!("{}: not a UTF-8 path", p.display()))
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

fn report_text(r: &ArchiveReport) -> String {
    let m = &r.manifest;
    let mut s = format!(
        "archive of {} ({})\ncreated {}, schema version {}, format {}\n",
        m.scope,
        r.path,
        utc(m.created_ms),
        m.schema_version,
        m.format
    );
    match (m.since_ms, m.until_ms) {
        (None, None) => {}
        (since, until) => s.push_str(&format!(
            "window {} to {}\n",
            since.map_or("the beginning".into(), utc),
            until.map_or("the end".into(), utc)
        )),
    }
    s.push_str(&format!(
        "{} calls; manifest sha256 {}\n\n",
        m.calls, r.manifest_sha256
    ));
    let width = m.members.iter().map(|x| x.name.len()).max().unwrap_or(0);
    for x in &m.members {
        let mark = if r.damaged.contains(&x.name) {
            "  CHANGED"
        } else {
            ""
        };
        s.push_str(&format!(
            "{:<width$}  {:>8} rows  {}{mark}\n",
            x.name, x.rows, x.sha256
        ));
    }
    s.push('\n');
    s.push_str(if !r.damaged.is_empty() {
        "verify: FAILED\n"
    } else if r.verified {
        "verify: OK, every member matches its hash\n"
    } else {
        "not verified: milc archive verify FILE recomputes every hash\n"
    });
    s
}
