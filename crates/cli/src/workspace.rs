//! `milc workspace`: a team workspace on PostgreSQL (`--db postgres://…`), its tables and the
//! roles the database enforces: init, grant, members, whoami.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use milc_api::workspace::MemberRole;
use milc_core::workspace::Workspace;

use crate::format::explain;
use crate::output;

#[derive(Subcommand)]
pub(crate) enum WorkspaceCmd {
    /// Create the workspace (its schema, tables and the viewer / rater / editor / admin roles)
    /// as the connecting user, or bring it up to date
    Init,
    /// Give database login USER the ROLE viewer, rater, editor or admin (and no other)
    Grant {
        user: String,
        #[arg(value_parser = parse_role)]
        role: MemberRole,
    },
    /// Every member and the role they hold
    Members {
        #[arg(long)]
        json: bool,
    },
    /// Who the connection is, and the role it holds
    Whoami,
}

fn parse_role(s: &str) -> Result<MemberRole, String> {
    MemberRole::parse(s)
        .ok_or_else(|| format!("'{s}' is not a role: viewer, rater, editor or admin"))
}

pub(crate) async fn workspace(
    db: Option<PathBuf>,
    name: &str,
    cmd: WorkspaceCmd,
) -> Result<ExitCode> {
    let url = db
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|u| milc_core::workspace::is_url(u))
        .ok_or_else(|| {
            anyhow!("a workspace lives on PostgreSQL: --db postgres://USER@HOST/DB (or MILC_DB)")
        })?;
    match cmd {
        WorkspaceCmd::Init => {
            let ws = Workspace::init(&url, name).await.map_err(explain)?;
            eprintln!(
                "workspace '{name}' is ready (schema {}); add members with `milc workspace grant USER ROLE`",
                ws.schema()
            );
        }
        WorkspaceCmd::Grant { user, role } => {
            let ws = Workspace::open(&url, name).await.map_err(explain)?;
            let m = ws.grant(&user, role).await.map_err(explain)?;
            eprintln!("{} is now a {} of '{name}'", m.user, m.role.as_str());
        }
        WorkspaceCmd::Members { json } => {
            let ws = Workspace::open(&url, name).await.map_err(explain)?;
            let all = ws.members().await.map_err(explain)?;
            output::emit(json, &all, |all| {
                all.iter()
                    .map(|m| format!("{:<24} {}\n", m.user, m.role.as_str()))
                    .collect()
            })?;
        }
        WorkspaceCmd::Whoami => {
            let ws = Workspace::open(&url, name).await.map_err(explain)?;
            let (user, role) = ws.whoami().await.map_err(explain)?;
            println!(
                "{user}: {}",
                role.map_or("no role in this workspace".to_owned(), |r| format!(
                    "{} ({})",
                    r.as_str(),
                    r.may()
                ))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
