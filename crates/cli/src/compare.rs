//! `milc compare` and `milc votes`: A/B comparisons headless — create, run, rate, judge, read
//! the results and export what people preferred.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use milc_api::compare::{Ballot, CompareProgress, ComparisonSpec, VariantSpec, Verdict};
use milc_api::Params;
use milc_core::Console;
use tokio_util::sync::CancellationToken;

use crate::format::{self, explain};
use crate::output;

#[derive(Subcommand)]
pub(crate) enum CompareCmd {
    /// Create a comparison of two or more variants over a dataset version (or ad-hoc inputs)
    Create {
        #[arg(long)]
        name: String,
        /// NAME (newest version) or NAME@HASH
        #[arg(long, default_value = "", required_unless_present = "inputs")]
        dataset: String,
        /// An ad-hoc input instead of a dataset (repeatable; the variable is `input`)
        #[arg(long = "input", value_name = "TEXT")]
        inputs: Vec<String>,
        /// PROMPT_REF@ENDPOINT, e.g. qa@2@Local simulator (repeatable, 2 or more)
        #[arg(long = "variant", value_name = "PROMPT_REF@ENDPOINT", required = true)]
        variants: Vec<String>,
        /// Parameters for variant N (1 = first) as JSON, e.g. 2='{"temperature": 0.2}'
        #[arg(long = "params", value_name = "N=JSON")]
        params: Vec<String>,
        /// A rubric criterion raters score 1–5 per side (repeatable)
        #[arg(long = "criterion", value_name = "NAME")]
        criteria: Vec<String>,
        /// Comma-separated scorers each variant's run applies (shown side by side)
        #[arg(long, default_value = "")]
        scorers: String,
        /// Seed of the side randomization
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// List comparisons, newest first
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run every variant (reusing finished runs of the same variant on the same dataset version)
    Run { name: String },
    /// Win rates, the Bradley–Terry leaderboard, agreement, position bias and judges
    Results {
        name: String,
        /// As this rater may see them: refused until the rater has voted on every pair
        #[arg(long)]
        rater: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Two variants' answers side by side with their scores (largest gap first with --by-gap)
    Show {
        name: String,
        /// Variant numbers (1 = first)
        #[arg(long, default_value_t = 1)]
        a: u32,
        #[arg(long, default_value_t = 2)]
        b: u32,
        #[arg(long)]
        by_gap: bool,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
    /// Print a rater's task N (0-based) as JSON: the input and the two outputs, names hidden
    Task {
        name: String,
        /// Who rates [default: who is acting: --as, else the OS user]
        #[arg(long)]
        rater: Option<String>,
        #[arg(long, default_value_t = 0)]
        index: u64,
    },
    /// Vote on a rater's task N: left, right, tie or both_bad
    Vote {
        name: String,
        /// Who rates [default: who is acting: --as, else the OS user]
        #[arg(long)]
        rater: Option<String>,
        #[arg(long)]
        index: u64,
        verdict: String,
        #[arg(long)]
        comment: Option<String>,
        /// A rubric criterion's scores 1–5 for the left and right side, e.g. clarity=4,2
        /// (repeatable; either side may be left empty)
        #[arg(long = "score", value_name = "CRITERION=LEFT,RIGHT")]
        scores: Vec<String>,
    },
    /// Have an LLM judge vote on every pair in both orders (the rubric gets input, expected,
    /// output_a, output_b)
    Judge {
        name: String,
        /// RUBRIC_PROMPT_REF@ENDPOINT
        #[arg(long)]
        judge: String,
        #[arg(long)]
        json: bool,
    },
    /// Export preferred outputs as fine-tuning JSONL, preference pairs (dpo) or ratings CSV
    Export {
        name: String,
        #[arg(long, value_name = "finetune|dpo|csv")]
        format: String,
        /// Write to FILE instead of stdout (through a temporary file)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum VotesCmd {
    /// Import votes from JSONL lines {"item", "left", "right", "vote", "rater"} (all or nothing)
    Import { name: String, file: PathBuf },
}

fn variant(spec: &str) -> Result<VariantSpec> {
    let (prompt, endpoint) = spec
        .rsplit_once('@')
        .filter(|(p, e)| !p.is_empty() && !e.is_empty())
        .ok_or_else(|| anyhow!("--variant '{spec}' is not PROMPT_REF@ENDPOINT"))?;
    Ok(VariantSpec {
        prompt: prompt.to_owned(),
        endpoint: endpoint.to_owned(),
        params: Params::default(),
    })
}

pub(crate) async fn compare(console: &Console, cmd: CompareCmd) -> Result<ExitCode> {
    match cmd {
        CompareCmd::Create {
            name,
            dataset,
            inputs,
            variants,
            params,
            criteria,
            scorers,
            seed,
            json,
        } => {
            let mut variants: Vec<VariantSpec> =
                variants.iter().map(|v| variant(v)).collect::<Result<_>>()?;
            for p in &params {
                let (n, j) = p
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--params '{p}' is not N=JSON"))?;
                let v = n
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|i| variants.get_mut(i))
                    .ok_or_else(|| anyhow!("--params '{p}': no variant {n}"))?;
                v.params = serde_json::from_str(j).map_err(|e| anyhow!("--params '{p}': {e}"))?;
            }
            let c = console
                .create_comparison(ComparisonSpec {
                    name,
                    dataset,
                    inputs,
                    variants,
                    criteria,
                    scorers: crate::eval::parse_scorers(&scorers, &[])?,
                    seed,
                })
                .await
                .map_err(explain)?;
            let endpoints: Vec<&str> = c.variants.iter().map(|v| v.endpoint.as_str()).collect();
            crate::retire::warn_about(console, &endpoints).await?;
            output::emit(json, &c, format::comparison_info)?;
        }
        CompareCmd::List { json } => {
            let list = console.comparisons().await.map_err(explain)?;
            output::emit(json, &list, |l| {
                l.iter().map(format::comparison_info).collect()
            })?;
        }
        CompareCmd::Run { name } => {
            let c = console.comparison(&name).await.map_err(explain)?;
            let endpoints: Vec<&str> = c.variants.iter().map(|v| v.endpoint.as_str()).collect();
            crate::retire::warn_about(console, &endpoints).await?;
            let cancel = CancellationToken::new();
            let on_signal = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    on_signal.cancel();
                }
            });
            let tty = std::io::stderr().is_terminal();
            let progress = std::sync::Mutex::new(BTreeMap::<u32, (u64, u64)>::new());
            let show = |p: &CompareProgress| {
                if tty {
                    let mut all = progress.lock().expect("progress lock");
                    all.insert(p.variant, (p.done, p.total));
                    let (done, total) = all.values().fold((0, 0), |(d, t), (a, b)| (d + a, t + b));
                    eprint!("\r{done}/{total} answers");
                }
            };
            let c = console
                .run_comparison(&name, &show, &cancel)
                .await
                .map_err(explain)?;
            if tty {
                eprintln!();
            }
            print!("{}", format::comparison_info(&c));
            if cancel.is_cancelled() {
                eprintln!("cancelled: run it again to resume");
                return Ok(ExitCode::from(130));
            }
        }
        CompareCmd::Results { name, rater, json } => {
            let r = console
                .comparison_results(&name, rater.as_deref())
                .await
                .map_err(explain)?;
            output::emit(json, &r, format::comparison_results)?;
        }
        CompareCmd::Show {
            name,
            a,
            b,
            by_gap,
            offset,
            limit,
            json,
        } => {
            let q = milc_api::compare::SideBySideQuery {
                a: a.checked_sub(1)
                    .ok_or_else(|| anyhow!("--a: variants count from 1"))?,
                b: b.checked_sub(1)
                    .ok_or_else(|| anyhow!("--b: variants count from 1"))?,
                by_gap,
                offset,
                limit,
            };
            let s = console.side_by_side(&name, &q).await.map_err(explain)?;
            output::emit(json, &s, format::side_by_side)?;
        }
        CompareCmd::Task { name, rater, index } => {
            let rater = rater.unwrap_or_else(|| console.author());
            output::json(
                &console
                    .rating_task(&name, &rater, index)
                    .await
                    .map_err(explain)?,
            )?;
        }
        CompareCmd::Vote {
            name,
            rater,
            index,
            verdict,
            comment,
            scores,
        } => {
            let verdict = Verdict::parse(&verdict)
                .ok_or_else(|| anyhow!("'{verdict}' is not left, right, tie or both_bad"))?;
            let mut criteria = milc_api::compare::CriteriaScores::new();
            for s in &scores {
                let parsed = s.split_once('=').and_then(|(name, sides)| {
                    let (l, r) = sides.split_once(',')?;
                    let side = |x: &str| match x.trim() {
                        "" => Some(None),
                        n => n.parse::<u8>().ok().map(Some),
                    };
                    Some((name.trim().to_owned(), [side(l)?, side(r)?]))
                });
                let (name, sides) =
                    parsed.ok_or_else(|| anyhow!("--score '{s}' is not CRITERION=LEFT,RIGHT"))?;
                criteria.insert(name, sides);
            }
            let ballot = Ballot {
                verdict,
                comment,
                criteria,
            };
            let rater = rater.unwrap_or_else(|| console.author());
            let rated = console
                .cast_vote(&name, &rater, index, &ballot)
                .await
                .map_err(explain)?;
            println!("{rated} rated");
        }
        CompareCmd::Judge { name, judge, json } => {
            if let Some((_, endpoint)) = judge.rsplit_once('@') {
                crate::retire::warn_about(console, &[endpoint]).await?;
            }
            let tty = std::io::stderr().is_terminal();
            let show = |done: u64, total: u64| {
                if tty {
                    eprint!("\r{done}/{total} verdicts");
                }
            };
            let run = console
                .judge_comparison(&name, &judge, &show, &CancellationToken::new())
                .await
                .map_err(explain)?;
            if tty {
                eprintln!();
            }
            output::emit(json, &run, |r| format::judge(&r.result))?;
            // A note for a person; a script reads `failed` and `first_failure` in the JSON.
            if let (false, Some(why)) = (json, &run.first_failure) {
                eprintln!("{} calls gave no verdict; the first: {why}", run.failed);
            }
        }
        CompareCmd::Export { name, format, out } => match out {
            Some(path) => {
                let done = console
                    .export_comparison_file(&name, export_format(&format)?, &path.to_string_lossy())
                    .await
                    .map_err(explain)?;
                eprintln!("{} records written to {}", done.records, done.path);
            }
            None => {
                let mut stdout = std::io::stdout();
                console
                    .export_comparison(&name, export_format(&format)?, &mut stdout)
                    .await
                    .map_err(explain)?;
                stdout.flush()?;
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn votes(console: &Console, cmd: VotesCmd) -> Result<ExitCode> {
    match cmd {
        VotesCmd::Import { name, file } => {
            let n = console.import_votes(&name, &file).await.map_err(explain)?;
            println!("{n} votes imported into {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export_format(name: &str) -> Result<milc_api::export::Format> {
    milc_api::export::Format::parse(name)
        .ok_or_else(|| anyhow::anyhow!("--format '{name}': finetune, dpo or csv"))
}
