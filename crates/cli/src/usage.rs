//! `milc usage`, `milc prices`, `milc budgets`, `milc alerts`, `milc retention`: cost and usage
//! for team leads and scripts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use milc_api::export::Format;
use milc_api::usage::{AlertSettings, Dim, UsageQuery};
use milc_core::calllog::rollups::{hour_of, HOUR_MS};
use milc_core::db::now_ms;
use milc_core::usage::{bigquery_schema, parse_when};
use milc_core::Console;

use crate::format::{self, explain};
use crate::output;

#[derive(Args)]
pub(crate) struct Range {
    /// Start: 24h, 7d (that long ago), a UTC date 2026-11-01, or an RFC 3339 time
    #[arg(long, default_value = "7d")]
    since: String,
    /// End (exclusive), in the same forms [default: now]
    #[arg(long, default_value = "now")]
    until: String,
}

impl Range {
    /// Whole UTC hours: from the hour `since` falls in to the end of the hour `until` falls in.
    fn query(&self, group_by: Vec<Dim>) -> Result<UsageQuery> {
        let now = now_ms();
        let when = |s: &str, flag: &str| {
            parse_when(s, now).ok_or_else(|| {
                anyhow!("--{flag} '{s}': write 24h, 7d, a date like 2026-11-01 or an RFC 3339 time")
            })
        };
        let (since, until) = (when(&self.since, "since")?, when(&self.until, "until")?);
        let until = if until % HOUR_MS == 0 {
            until
        } else {
            hour_of(until) + HOUR_MS
        };
        Ok(UsageQuery {
            since_ms: hour_of(since),
            until_ms: until,
            group_by,
        })
    }
}

#[derive(Subcommand)]
pub(crate) enum UsageCmd {
    /// Write the call log as NDJSON (BigQuery-ready; --schema writes its schema) or CSV
    Export {
        #[command(flatten)]
        range: Range,
        #[arg(long, value_name = "ndjson|csv", default_value = "ndjson")]
        format: String,
        /// Also write the BigQuery schema (JSON) to FILE
        #[arg(long, value_name = "FILE")]
        schema: Option<PathBuf>,
    },
}

#[derive(Args)]
pub(crate) struct UsageArgs {
    #[command(subcommand)]
    cmd: Option<UsageCmd>,
    #[command(flatten)]
    range: Range,
    /// day, hour, endpoint, prompt, source (repeatable or comma-separated)
    #[arg(long = "group-by", value_delimiter = ',')]
    group_by: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub(crate) async fn usage(console: &Console, a: UsageArgs) -> Result<ExitCode> {
    if let Some(UsageCmd::Export {
        range,
        format,
        schema,
    }) = a.cmd
    {
        let kind = match Format::parse(&format) {
            Some(f @ (Format::Ndjson | Format::Csv)) => f,
            _ => bail!("--format '{format}': ndjson or csv"),
        };
        if let Some(path) = schema {
            std::fs::write(&path, serde_json::to_string_pretty(&bigquery_schema())?)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        }
        let mut out = std::io::stdout();
        console
            .export_usage(&range.query(vec![])?, kind, &mut out)
            .await
            .map_err(explain)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let group_by = a
        .group_by
        .iter()
        .map(|g| {
            Dim::parse(g.trim())
                .ok_or_else(|| anyhow!("--group-by '{g}': day, hour, endpoint, prompt or source"))
        })
        .collect::<Result<Vec<_>>>()?;
    let report = console
        .usage(&a.range.query(group_by)?)
        .await
        .map_err(explain)?;
    output::emit(a.json, &report, format::usage)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(crate) enum PricesCmd {
    /// A price for ENDPOINT from a date on (USD per 1M tokens); past calls keep their cost until
    /// `milc prices recompute`
    Set {
        endpoint: String,
        /// A UTC date 2026-11-01, an RFC 3339 time, or now
        #[arg(long)]
        from: String,
        #[arg(long = "in", value_name = "USD")]
        input: String,
        /// [default: the input price]
        #[arg(long, value_name = "USD", default_value = "")]
        cached: String,
        #[arg(long, value_name = "USD")]
        out: String,
    },
    /// An endpoint's prices over time
    List {
        endpoint: String,
        #[arg(long)]
        json: bool,
    },
    /// Cost calls again with the price in force when each was made (logged)
    Recompute {
        /// From: 30d, a date, an RFC 3339 time [default: every call]
        #[arg(long, default_value = "")]
        since: String,
        /// Until (not included), as --since [default: now]
        #[arg(long, default_value = "")]
        until: String,
        /// Show what would change and write nothing
        #[arg(long)]
        preview: bool,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn prices(console: &Console, cmd: PricesCmd) -> Result<ExitCode> {
    let print_list =
        |list: &[milc_api::usage::PriceEntry], json: bool| output::emit(json, list, format::prices);
    match cmd {
        PricesCmd::Set {
            endpoint,
            from,
            input,
            cached,
            out,
        } => {
            let list = console
                .set_price_as_typed(&endpoint, &from, &input, &cached, &out)
                .await
                .map_err(explain)?;
            print_list(&list, false)?;
        }
        PricesCmd::List { endpoint, json } => {
            print_list(&console.prices(&endpoint).await.map_err(explain)?, json)?;
        }
        PricesCmd::Recompute {
            since,
            until,
            preview,
            json,
        } => {
            let r = console
                .recompute_costs_as_typed(&since, &until, !preview)
                .await
                .map_err(explain)?;
            output::emit(json, &r, |r| {
                let what = match r.id {
                    Some(id) => format!("recomputation {id}"),
                    None => "preview (nothing changed)".to_owned(),
                };
                format!("{what}: {r}\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(crate) enum BudgetsCmd {
    /// Set the daily and/or monthly budget of ENDPOINT (or of everything); UTC days and months
    Set {
        endpoint: Option<String>,
        #[arg(long, value_name = "USD")]
        daily: Option<String>,
        #[arg(long, value_name = "USD")]
        monthly: Option<String>,
        /// Remove the budget
        #[arg(long, conflicts_with_all = ["daily", "monthly"])]
        clear: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn budgets(console: &Console, cmd: BudgetsCmd) -> Result<ExitCode> {
    match cmd {
        BudgetsCmd::Set {
            endpoint,
            daily,
            monthly,
            clear,
        } => {
            if !clear && daily.is_none() && monthly.is_none() {
                bail!("give --daily, --monthly or --clear");
            }
            console
                .set_budget(endpoint.as_deref(), daily.as_deref(), monthly.as_deref())
                .await
                .map_err(explain)?;
        }
        BudgetsCmd::List { json } => {
            let list = console.budgets().await.map_err(explain)?;
            output::emit(json, &list, |list| {
                list.iter()
                    .map(|b| {
                        format!(
                            "{}: daily {}, monthly {}\n",
                            b.endpoint.as_deref().unwrap_or("all endpoints"),
                            b.daily.map_or("-".into(), |c| format!("${}", c.usd())),
                            b.monthly.map_or("-".into(), |c| format!("${}", c.usd()))
                        )
                    })
                    .collect()
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(crate) enum AlertsCmd {
    /// Acknowledge alert ID
    Ack { id: i64 },
    /// When alerts fire
    Settings {
        /// Cost per 1K tokens in this and the previous UTC hour above the 7-day baseline × this
        #[arg(long)]
        spike_factor: Option<f64>,
        /// Share of failed calls in this and the previous UTC hour above this (0–1)
        #[arg(long)]
        error_rate: Option<f64>,
        /// Calls those two hours need before a spike or an error rate counts
        #[arg(long)]
        min_calls: Option<u64>,
    },
}

#[derive(Args)]
pub(crate) struct AlertsArgs {
    #[command(subcommand)]
    cmd: Option<AlertsCmd>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

pub(crate) async fn alerts(console: &Console, a: AlertsArgs) -> Result<ExitCode> {
    match a.cmd {
        Some(AlertsCmd::Ack { id }) => console.ack_alert(id).await.map_err(explain)?,
        Some(AlertsCmd::Settings {
            spike_factor,
            error_rate,
            min_calls,
        }) => {
            let mut s: AlertSettings = console.alert_settings().await.map_err(explain)?;
            s.spike_factor = spike_factor.unwrap_or(s.spike_factor);
            s.error_rate = error_rate.unwrap_or(s.error_rate);
            s.min_calls = min_calls.unwrap_or(s.min_calls);
            let s = console.set_alert_settings(&s).await.map_err(explain)?;
            println!("{}", serde_json::to_string(&s)?);
        }
        None => {
            let list = console.alerts(a.limit).await.map_err(explain)?;
            output::emit(a.json, &list, |l| format::alerts(l))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `milc retention --bodies-days N`: keep request and response bodies N days.
pub(crate) async fn retention(console: &Console, days: Option<u32>, off: bool) -> Result<ExitCode> {
    if days.is_none() && !off {
        match console.retention().await.map_err(explain)? {
            Some(d) => println!("call bodies and history entries are kept {d} days"),
            None => println!("call bodies and history entries are kept for ever"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (bodies, history) = console
        .set_retention(if off { None } else { days })
        .await
        .map_err(explain)?;
    println!("{bodies} call bodies and {history} history entries emptied");
    Ok(ExitCode::SUCCESS)
}
