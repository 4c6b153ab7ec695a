//! `milc eval` and `milc runs`: create or resume a run, show its progress on a terminal, print the
//! summary, write JSON / JUnit reports, and turn gates into the exit code a CI job checks.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use milc_api::run::{RunProgress, RunSpec, RunSummary, ScorerSpec};
use milc_api::Params;
use milc_core::Console;
use tokio_util::sync::CancellationToken;

use crate::format::{self, explain};
use crate::output;

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// NAME (latest version), NAME@N or NAME:LABEL
    #[arg(long, required_unless_present = "resume")]
    prompt: Option<String>,
    #[arg(long, required_unless_present = "resume")]
    endpoint: Option<String>,
    /// NAME (newest version) or NAME@HASH
    #[arg(long, required_unless_present = "resume")]
    dataset: Option<String>,
    /// Comma-separated scorers, each optionally with a pass threshold: rougeL:0.3,bleu,exact,
    /// contains, json_valid, latency_ms:2000, cost_usd:0.01
    #[arg(long, default_value = "")]
    scorers: String,
    /// One more scorer, for those that take an argument (its text may hold commas):
    /// regex=PATTERN, contains=TEXT, not_contains=TEXT, length=MIN..MAX, json_schema=@FILE
    /// (repeatable)
    #[arg(long = "scorer", value_name = "NAME=ARG")]
    scorer: Vec<String>,
    #[arg(long, default_value_t = milc_api::run::default_concurrency())]
    concurrency: u32,
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Porter-stem tokens for ROUGE
    #[arg(long)]
    stem: bool,
    /// Override the version's temperature
    #[arg(long)]
    temperature: Option<f64>,
    /// Override the version's max tokens
    #[arg(long)]
    max_tokens: Option<u32>,
    /// A condition on the aggregates, e.g. 'rougeL>=0.35', 'pass_rate>=0.9', 'errors<=0',
    /// 'latency_p95_ms<2000' (repeatable); any that fails makes the exit code 3
    #[arg(long = "gate")]
    gates: Vec<String>,
    /// Write the summary as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write one JUnit test case per item to FILE
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Resume run RUN_ID: only the items without a result are sent
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["prompt", "endpoint", "dataset"])]
    resume: Option<i64>,
}

#[derive(Subcommand)]
pub(crate) enum RunsCmd {
    /// List runs, newest first
    List {
        #[arg(long)]
        json: bool,
    },
    /// A run's summary, or with --results its results as JSON (filtered, sorted and paged by
    /// the store)
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        results: bool,
        /// With --results: all, passed, failed or errors
        #[arg(long, default_value = "all")]
        filter: String,
        /// With --results: item, latency, or score:NAME
        #[arg(long, default_value = "item")]
        sort: String,
        #[arg(long)]
        desc: bool,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Compare two runs over the same dataset version: regressions and improvements first, mean
    /// deltas (B − A) with paired bootstrap 95% intervals
    Compare {
        a: i64,
        b: i64,
        #[arg(long)]
        json: bool,
    },
}

/// Exit code of a run whose gates failed (1 is any other error).
const GATE_FAILED: u8 = 3;

/// Scorers as [`ScorerSpec::parse`] reads them: a comma-separated list, then one per
/// `--scorer`; `NAME=@FILE` reads the argument from a file (`json_schema=@schema.json`).
pub(crate) fn parse_scorers(list: &str, single: &[String]) -> Result<Vec<ScorerSpec>> {
    let mut out = ScorerSpec::parse_list(list).map_err(|e| anyhow!(e))?;
    for x in single {
        out.push(ScorerSpec::parse(x).map_err(|e| anyhow!(e))?);
    }
    for s in &mut out {
        if let Some(path) = s.arg.as_deref().and_then(|a| a.strip_prefix('@')) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow!("--scorer '{}': cannot read {path}: {e}", s.metric))?;
            s.arg = Some(text);
        }
    }
    Ok(out)
}

/// A gate: `NAME OP NUMBER` on the summary.
struct Gate {
    text: String,
    name: String,
    op: &'static str,
    value: f64,
    /// For `cost_usd`: the limit in exact pico-USD, compared as an integer.
    pico_usd: Option<i64>,
}

fn parse_gate(s: &str) -> Result<Gate> {
    for op in [">=", "<=", ">", "<", "=="] {
        if let Some((name, v)) = s.split_once(op) {
            let value = v
                .trim()
                .parse()
                .map_err(|_| anyhow!("--gate '{s}': '{}' is not a number", v.trim()))?;
            let name = name.trim().to_owned();
            let pico_usd = match name.as_str() {
                "cost_usd" => Some(milc_api::Cost::parse_usd(v).ok_or_else(|| {
                    anyhow!("--gate '{s}': cost_usd takes a USD amount like 0.50")
                })?),
                _ => None,
            };
            return Ok(Gate {
                text: s.to_owned(),
                name,
                op,
                value,
                pico_usd,
            });
        }
    }
    bail!("--gate '{s}': write it as NAME>=NUMBER (or <=, >, <, ==)")
}

fn gate_value(s: &RunSummary, name: &str) -> Option<f64> {
    match name {
        "pass_rate" => Some(s.pass_rate),
        "errors" => Some(s.errors as f64),
        "latency_p50_ms" => Some(s.latency_ms.p50),
        "latency_p95_ms" => Some(s.latency_ms.p95),
        "latency_p99_ms" => Some(s.latency_ms.p99),
        other => s.scores.get(other).map(|i| i.mean),
    }
}

impl Gate {
    fn check(&self, s: &RunSummary) -> Result<bool> {
        // With every item failed there is nothing to measure: only error gates can pass.
        if s.items > 0
            && s.errors == s.items
            && !matches!(self.name.as_str(), "errors" | "pass_rate")
        {
            return Ok(false);
        }
        use std::cmp::Ordering::{Equal, Greater, Less};
        let ord = match self.pico_usd {
            Some(limit) => Some(s.cost.pico_usd.cmp(&limit)),
            None => self.measured(s)?.partial_cmp(&self.value),
        };
        Ok(match (self.op, ord) {
            (_, None) => false,
            (">=", Some(o)) => o != Less,
            ("<=", Some(o)) => o != Greater,
            (">", Some(o)) => o == Greater,
            ("<", Some(o)) => o == Less,
            (_, Some(o)) => o == Equal,
        })
    }

    fn measured(&self, s: &RunSummary) -> Result<f64> {
        gate_value(s, &self.name).ok_or_else(|| {
            anyhow!(
                "--gate '{}': '{}' is not measured by this run (scores: {}; also pass_rate, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, cost_usd)",
                self.text,
                self.name,
                s.scores.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

pub async fn eval(console: &Console, a: EvalArgs) -> Result<ExitCode> {
    let gates: Vec<Gate> = a
        .gates
        .iter()
        .map(|g| parse_gate(g))
        .collect::<Result<_>>()?;
    let id = match a.resume {
        Some(id) => id,
        None => {
            let spec = RunSpec {
                prompt: a.prompt.unwrap_or_default(),
                endpoint: a.endpoint.unwrap_or_default(),
                dataset: a.dataset.unwrap_or_default(),
                params: Params {
                    temperature: a.temperature,
                    max_tokens: a.max_tokens,
                    ..Params::default()
                },
                repeat: a.repeat,
                concurrency: a.concurrency,
                scorers: parse_scorers(&a.scorers, &a.scorer)?,
                stem: a.stem,
            };
            let info = console.create_run(spec).await.map_err(explain)?;
            for w in &info.warnings {
                eprintln!("warning: {w}");
            }
            info.id
        }
    };
    // The run id first, so a script can resume it whatever happens next.
    println!("run {id}");
    std::io::stdout().flush()?;

    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let tty = std::io::stderr().is_terminal();
    let show = move |p: &RunProgress| {
        if tty {
            eprint!("\r{}", format::progress_bar(p));
        }
    };
    let summary = console
        .execute_run(id, &show, &cancel)
        .await
        .map_err(explain)?;
    if tty {
        eprintln!();
    }
    if a.resume.is_some() {
        for w in &summary.run.warnings {
            eprintln!("warning: {w}");
        }
    }
    print!("{}", format::run_summary(&summary));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)?;
    }
    if let Some(path) = &a.junit {
        write_junit(console, &summary, path).await?;
    }
    if cancel.is_cancelled() {
        eprintln!("cancelled: resume with `milc eval --resume {id}`");
        return Ok(ExitCode::from(130));
    }
    let mut failed = false;
    for g in &gates {
        let ok = g.check(&summary)?;
        println!("gate {}: {}", g.text, if ok { "passed" } else { "FAILED" });
        failed |= !ok;
    }
    Ok(if failed {
        ExitCode::from(GATE_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the run's results as a JUnit report a page at a time, so a large run is never held
/// whole in memory.
async fn write_junit(console: &Console, s: &RunSummary, path: &Path) -> Result<()> {
    use milc_api::run::{ResultFilter, ResultsQuery};
    let id = s.run.id;
    let failed = ResultsQuery {
        filter: ResultFilter::Failed,
        limit: 0,
        ..ResultsQuery::default()
    };
    let failures = console.run_results_page(id, &failed).await?.total;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(format::junit_head(s, s.items, failures).as_bytes())?;
    let mut q = ResultsQuery {
        limit: 1000,
        ..ResultsQuery::default()
    };
    loop {
        let page = console.run_results_page(id, &q).await?;
        if page.results.is_empty() {
            break;
        }
        for r in &page.results {
            out.write_all(format::junit_case(r).as_bytes())?;
        }
        q.offset += page.results.len() as u64;
    }
    out.write_all(format::JUNIT_TAIL.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub async fn runs(console: &Console, cmd: RunsCmd) -> Result<ExitCode> {
    match cmd {
        RunsCmd::List { json } => {
            let runs = console.runs().await?;
            output::emit(json, &runs, |r| format::runs_table(r))?;
        }
        RunsCmd::Compare { a, b, json } => {
            let c = console.compare_runs(a, b).await.map_err(explain)?;
            output::emit(json, &c, format::comparison)?;
        }
        RunsCmd::Show {
            id,
            json,
            results,
            filter,
            sort,
            desc,
            offset,
            limit,
        } => {
            if results {
                use milc_api::run::{ResultFilter, ResultSort, ResultsQuery};
                let filter = match filter.as_str() {
                    "all" => ResultFilter::All,
                    "passed" => ResultFilter::Passed,
                    "failed" => ResultFilter::Failed,
                    "errors" => ResultFilter::Errors,
                    other => bail!("--filter '{other}': use all, passed, failed or errors"),
                };
                let sort = match sort.as_str() {
                    "item" => ResultSort::Item,
                    "latency" => ResultSort::Latency,
                    other => match other.strip_prefix("score:") {
                        Some(name) => ResultSort::Score(name.to_owned()),
                        None => bail!("--sort '{other}': use item, latency or score:NAME"),
                    },
                };
                let q = ResultsQuery {
                    filter,
                    sort,
                    descending: desc,
                    offset,
                    limit,
                };
                let page = console.run_results_page(id, &q).await.map_err(explain)?;
                eprintln!(
                    "{} of {} matching results from {offset}",
                    page.results.len(),
                    page.total
                );
                output::json(&page.results)?;
            } else {
                let s = console.run_summary(id).await.map_err(explain)?;
                output::emit(json, &s, format::run_summary)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
