//! `milc usecases`, `milc loadtest`, `milc schedule` and `milc drift`: requirements cards with
//! their verdicts (and `usecases check`, the CI gate on them), feasibility load tests,
//! scheduled evaluations and drift against a baseline.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use milc_api::lifecycle::{
    format_duration_ms, parse_duration_ms, CandidateSpec, DriftKind, DriftQuery, DriftReport,
    LoadTest, LoadTestProgress, LoadTestSpec, NewSchedule, Schedule, ScoreSlo, Slo, Traffic,
    UseCase, UseCaseSpec, Verdict,
};
use milc_api::run::{RunSpec, ScorerSpec};
use milc_api::{Cost, Params};
use milc_core::Console;
use tokio_util::sync::CancellationToken;

use crate::format::explain;
use crate::output;

/// `usecases check`: the chosen candidate fails an SLO.
pub const CHECK_FAILED: u8 = 3;
/// `usecases check`: no chosen candidate, or an SLO without evidence yet.
pub const CHECK_UNKNOWN: u8 = 4;

#[derive(Args)]
pub(crate) struct CardArgs {
    /// Who owns the use case
    #[arg(long)]
    owner: String,
    #[arg(long, default_value = "")]
    description: String,
    /// p95 latency target, e.g. 3s or 2500ms
    #[arg(long, value_parser = parse_duration_ms)]
    p95_latency: Option<i64>,
    /// p95 time-to-first-token target
    #[arg(long, value_parser = parse_duration_ms)]
    p95_ttft: Option<i64>,
    /// Cost per 1 000 requests at most, in USD, e.g. 0.50
    #[arg(long, value_name = "USD")]
    cost_per_1k: Option<String>,
    /// A minimum score on a dataset: SCORER>=MIN@DATASET, e.g. rougeL>=0.35@tickets
    #[arg(long, value_parser = ScoreSlo::parse)]
    min_score: Option<ScoreSlo>,
    /// The highest share of failed calls, e.g. 0.01
    #[arg(long)]
    max_error_rate: Option<f64>,
    /// Personal data must be redacted before requests leave the machine
    #[arg(long)]
    pii: bool,
    /// Expected requests per minute (for cost projections and the load level judged)
    #[arg(long, default_value_t = 0.0)]
    rpm: f64,
    /// Expected tokens per request
    #[arg(long, default_value_t = 0)]
    tokens_per_request: u64,
}

impl CardArgs {
    fn spec(self, name: String) -> Result<UseCaseSpec> {
        let cost = Cost::parse_usd_field(self.cost_per_1k.as_deref())
            .map_err(|e| anyhow!("--cost-per-1k: {}", e.0))?;
        Ok(UseCaseSpec {
            name,
            owner: self.owner,
            description: self.description,
            slo: Slo {
                p95_latency_ms: self.p95_latency.map(|v| v as u64),
                p95_ttft_ms: self.p95_ttft.map(|v| v as u64),
                cost_per_1k_pico: cost,
                min_score: self.min_score,
                max_error_rate: self.max_error_rate,
                pii_redaction: self.pii,
            },
            traffic: Traffic {
                requests_per_minute: self.rpm,
                tokens_per_request: self.tokens_per_request,
            },
        })
    }
}

#[derive(Subcommand)]
pub(crate) enum UsecasesCmd {
    /// Write a use case down with its SLOs and expected traffic
    Add {
        name: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Replace a use case's owner, description, SLOs and traffic
    Edit {
        name: String,
        #[command(flatten)]
        card: CardArgs,
    },
    /// Every use case and its chosen candidate's verdict
    List {
        #[arg(long)]
        json: bool,
    },
    /// A card: each candidate's SLOs as pass / fail / unknown with their evidence
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a candidate: prompt version × endpoint (× parameters)
    Candidate {
        name: String,
        /// NAME@N or NAME:LABEL (pinned to the version it names now)
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        temperature: Option<f64>,
        #[arg(long)]
        max_tokens: Option<u32>,
        /// Make it the chosen candidate (the one `check` gates on)
        #[arg(long)]
        choose: bool,
    },
    /// Make candidate ID the chosen one
    Choose { name: String, id: i64 },
    /// Remove candidate ID
    Drop { name: String, id: i64 },
    /// Attach a run or a load test as evidence
    Attach {
        name: String,
        #[arg(
            long,
            conflicts_with = "loadtest",
            required_unless_present = "loadtest"
        )]
        run: Option<i64>,
        #[arg(long)]
        loadtest: Option<i64>,
    },
    /// Exit 0 when the chosen candidate meets every SLO, 3 when it fails one, 4 when there is
    /// no chosen candidate or an SLO has no evidence yet
    Check {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a use case (its runs and load tests stay)
    Rm { name: String },
}

pub(crate) async fn usecases(console: &Console, cmd: UsecasesCmd) -> Result<ExitCode> {
    match cmd {
        UsecasesCmd::Add { name, card } => {
            let u = console
                .create_usecase(card.spec(name)?)
                .await
                .map_err(explain)?;
            eprintln!("use case '{}' written down", u.spec.name);
        }
        UsecasesCmd::Edit { name, card } => {
            console
                .update_usecase(&name, card.spec(name.clone())?)
                .await
                .map_err(explain)?;
            eprintln!("use case '{name}' changed");
        }
        UsecasesCmd::List { json } => {
            let all = console.usecases().await.map_err(explain)?;
            output::emit(json, &all, |all| {
                let mut s = String::new();
                for u in all {
                    let verdict = u
                        .chosen()
                        .map_or("no chosen candidate", |c| c.verdict.as_str());
                    let _ = writeln!(
                        s,
                        "{:<24} {:<16} {:>2} candidates  {verdict}",
                        u.spec.name,
                        u.spec.owner,
                        u.candidates.len()
                    );
                }
                s
            })?;
        }
        UsecasesCmd::Show { name, json } => {
            let u = console.usecase(&name).await.map_err(explain)?;
            output::emit(json, &u, card_text)?;
        }
        UsecasesCmd::Candidate {
            name,
            prompt,
            endpoint,
            temperature,
            max_tokens,
            choose,
        } => {
            let cand = CandidateSpec {
                prompt,
                endpoint,
                params: Params {
                    temperature,
                    max_tokens,
                    ..Params::default()
                },
            };
            let u = console
                .add_candidate(&name, cand, choose)
                .await
                .map_err(explain)?;
            print!("{}", card_text(&u));
        }
        UsecasesCmd::Choose { name, id } => {
            let u = console.choose_candidate(&name, id).await.map_err(explain)?;
            print!("{}", card_text(&u));
        }
        UsecasesCmd::Drop { name, id } => {
            console.remove_candidate(&name, id).await.map_err(explain)?;
            eprintln!("candidate #{id} removed from '{name}'");
        }
        UsecasesCmd::Attach {
            name,
            run,
            loadtest,
        } => {
            let u = match (run, loadtest) {
                (Some(id), _) => console.attach_run(&name, id).await,
                (None, Some(id)) => console.attach_loadtest(&name, id).await,
                (None, None) => unreachable!("clap requires one"),
            }
            .map_err(explain)?;
            print!("{}", card_text(&u));
        }
        UsecasesCmd::Check { name, json } => {
            let u = console.usecase(&name).await.map_err(explain)?;
            let verdict = u.chosen().map_or(Verdict::Unknown, |c| c.verdict);
            output::emit(json, &u, card_text)?;
            if !json {
                match u.chosen() {
                    None => eprintln!("'{name}' has no chosen candidate"),
                    Some(c) => eprintln!(
                        "chosen candidate {} on {}: {}",
                        c.prompt,
                        c.endpoint,
                        c.verdict.as_str()
                    ),
                }
            }
            return Ok(match verdict {
                Verdict::Pass => ExitCode::SUCCESS,
                Verdict::Fail => ExitCode::from(CHECK_FAILED),
                Verdict::Unknown => ExitCode::from(CHECK_UNKNOWN),
            });
        }
        UsecasesCmd::Rm { name } => {
            console.delete_usecase(&name).await.map_err(explain)?;
            eprintln!("use case '{name}' deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn card_text(u: &UseCase) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} (owner {})", u.spec.name, u.spec.owner);
    if !u.spec.description.is_empty() {
        let _ = writeln!(s, "  {}", u.spec.description);
    }
    let t = &u.spec.traffic;
    if t.requests_per_minute > 0.0 {
        let _ = writeln!(
            s,
            "  expected traffic: {} requests/min, {} tokens/request",
            t.requests_per_minute, t.tokens_per_request
        );
    }
    if u.candidates.is_empty() {
        let _ = writeln!(s, "  no candidates yet");
    }
    for c in &u.candidates {
        let _ = writeln!(
            s,
            "\n  #{} {} on {}{}: {}",
            c.id,
            c.prompt,
            c.endpoint,
            if c.chosen { " (chosen)" } else { "" },
            c.verdict.as_str().to_uppercase()
        );
        for k in &c.checks {
            let _ = writeln!(
                s,
                "    {:<7} {:<22} {:<24} {:<22} {}",
                k.verdict.as_str(),
                k.slo,
                k.target,
                k.value.as_deref().unwrap_or("–"),
                k.evidence.as_ref().map_or(String::new(), |e| e.to_string())
            );
        }
    }
    if !u.attached.is_empty() {
        let list: Vec<String> = u
            .attached
            .iter()
            .map(|a| format!("{} #{}", a.kind, a.id))
            .collect();
        let _ = writeln!(s, "\n  attached: {}", list.join(", "));
    }
    s
}

#[derive(Args)]
pub(crate) struct LoadtestArgs {
    #[arg(long)]
    endpoint: Option<String>,
    /// A prompt version NAME@N or NAME:LABEL (else a fixed message is sent)
    #[arg(long)]
    prompt: Option<String>,
    /// A variable of the prompt, NAME=VALUE (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Concurrency levels, held in turn
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<u32>,
    /// How long each level lasts
    #[arg(long, value_parser = parse_duration_ms, default_value = "30s")]
    duration: i64,
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Project the cost at this use case's expected traffic, and attach the test to it
    #[arg(long)]
    usecase: Option<String>,
    /// Show stored load test ID instead of running one
    #[arg(long, value_name = "ID", conflicts_with_all = ["endpoint", "prompt", "usecase"])]
    show: Option<i64>,
    /// List the stored load tests
    #[arg(long, conflicts_with_all = ["endpoint", "prompt", "usecase", "show"])]
    list: bool,
    #[arg(long)]
    json: bool,
}

pub(crate) async fn loadtest(console: &Console, a: LoadtestArgs) -> Result<ExitCode> {
    if a.list {
        let all = console.loadtests().await.map_err(explain)?;
        output::emit(a.json, &all, |all| {
            all.iter()
                .map(|l| {
                    format!(
                        "#{:<4} {:<24} {:<20} levels {:<14} knee {}\n",
                        l.id,
                        l.spec.endpoint,
                        l.prompt_version.as_deref().unwrap_or("(message)"),
                        l.spec
                            .concurrency
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                        l.knee.map_or("–".to_owned(), |k| k.to_string())
                    )
                })
                .collect()
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(id) = a.show {
        let l = console.loadtest_info(id).await.map_err(explain)?;
        output::emit(a.json, &l, loadtest_text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let endpoint = a
        .endpoint
        .ok_or_else(|| anyhow!("--endpoint NAME is required to run a load test"))?;
    let mut variables = std::collections::BTreeMap::new();
    for v in &a.vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| anyhow!("--var '{v}': NAME=VALUE"))?;
        variables.insert(k.to_owned(), val.to_owned());
    }
    let spec = LoadTestSpec {
        endpoint,
        prompt: a.prompt,
        variables,
        message: milc_api::lifecycle::default_message(),
        concurrency: a.concurrency,
        duration_ms: a.duration as u64,
        params: Params {
            max_tokens: a.max_tokens,
            ..Params::default()
        },
        usecase: a.usecase,
    };
    if let Some(w) = console
        .check_in_service(&spec.endpoint)
        .await
        .map_err(explain)?
    {
        eprintln!("warning: {w}");
    }
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let tty = std::io::stderr().is_terminal();
    let show = move |p: &LoadTestProgress| {
        if tty {
            eprint!(
                "\rconcurrency {:>4} ({}/{})  {:>3.0} %  {} requests   ",
                p.level,
                p.level_index + 1,
                p.levels,
                p.fraction * 100.0,
                p.requests
            );
        }
    };
    let l = console
        .loadtest(spec, &show, &cancel)
        .await
        .map_err(explain)?;
    if tty {
        eprintln!();
    }
    output::emit(a.json, &l, loadtest_text)?;
    Ok(if cancel.is_cancelled() {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn loadtest_text(l: &LoadTest) -> String {
    let mut s = format!(
        "load test #{} on {}{} ({:?})\n",
        l.id,
        l.spec.endpoint,
        l.prompt_version
            .as_ref()
            .map_or(String::new(), |p| format!(" with {p}")),
        l.status
    );
    let _ = writeln!(
        s,
        "{:>5} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>14}",
        "conc",
        "req",
        "err %",
        "429 %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "ttft p95",
        "req/s",
        "tok/s",
        "$ per 1k"
    );
    for x in &l.levels {
        let _ = writeln!(
            s,
            "{:>5} {:>7} {:>7.2} {:>6.2} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>8.2} {:>9.1} {:>14}",
            x.concurrency,
            x.requests,
            x.error_rate * 100.0,
            x.rate_limited_rate * 100.0,
            x.latency_ms.p50,
            x.latency_ms.p95,
            x.latency_ms.p99,
            x.ttft_ms.p95,
            x.requests_per_s,
            x.output_tokens_per_s,
            x.cost_per_1k.usd()
        );
    }
    if let Some(m) = l.levels.iter().rev().find_map(|x| x.cost_per_month) {
        let _ = writeln!(s, "projected per month at the card's traffic: {m}");
    }
    let _ = writeln!(
        s,
        "knee: {}",
        l.knee.map_or(
            "none within the tested levels (throughput still grows as fast as latency)".to_owned(),
            |k| format!("concurrency {k} (beyond it latency grows faster than throughput)")
        )
    );
    s
}

#[derive(Subcommand)]
pub(crate) enum ScheduleCmd {
    /// Evaluate a card's chosen candidate on its score dataset (--usecase), or a run of your own
    /// (--prompt, --endpoint, --dataset, --scorers), every --every
    Add {
        name: String,
        #[arg(long, value_parser = parse_duration_ms)]
        every: i64,
        #[arg(long, conflicts_with_all = ["prompt", "endpoint", "dataset"])]
        usecase: Option<String>,
        #[arg(long, requires_all = ["endpoint", "dataset"])]
        prompt: Option<String>,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        dataset: Option<String>,
        #[arg(long, default_value = "")]
        scorers: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Rm {
        name: String,
    },
    /// Run every evaluation that is due, then check the drift watches (for cron or a systemd
    /// timer); exits 5 when drift fired an alert or a scheduled run failed
    RunDue {
        #[arg(long)]
        json: bool,
    },
}

/// `schedule run-due`: a scheduled run could not run, or drift fired an alert.
pub const DUE_ATTENTION: u8 = 5;

pub(crate) async fn schedule(console: &Console, cmd: ScheduleCmd) -> Result<ExitCode> {
    match cmd {
        ScheduleCmd::Add {
            name,
            every,
            usecase,
            prompt,
            endpoint,
            dataset,
            scorers,
        } => {
            let spec = match prompt {
                Some(prompt) => Some(RunSpec {
                    prompt,
                    endpoint: endpoint.unwrap_or_default(),
                    dataset: dataset.unwrap_or_default(),
                    params: Params::default(),
                    repeat: 1,
                    concurrency: milc_api::run::default_concurrency(),
                    scorers: ScorerSpec::parse_list(&scorers)
                        .map_err(|e| anyhow!("--scorers: {e}"))?,
                    stem: false,
                }),
                None => None,
            };
            let s = console
                .add_schedule(NewSchedule {
                    name,
                    usecase,
                    spec,
                    every_ms: every,
                })
                .await
                .map_err(explain)?;
            print!("{}", schedule_text(&[s]));
        }
        ScheduleCmd::List { json } => {
            let all = console.schedules().await.map_err(explain)?;
            output::emit(json, &all, |all| schedule_text(all))?;
        }
        ScheduleCmd::Rm { name } => {
            console.remove_schedule(&name).await.map_err(explain)?;
            eprintln!("schedule '{name}' removed");
        }
        ScheduleCmd::RunDue { json } => {
            let r = console
                .run_due(&|_, _| {}, &CancellationToken::new())
                .await
                .map_err(explain)?;
            output::emit(json, &r, |r| {
                let mut s = String::new();
                for x in &r.runs {
                    match (&x.run, &x.error) {
                        (Some(run), _) => {
                            let scores: Vec<String> = run
                                .scores
                                .iter()
                                .map(|(k, v)| format!("{k} {:.4}", v.mean))
                                .collect();
                            let _ = writeln!(
                                s,
                                "{}: run #{} {}",
                                x.schedule,
                                run.run.id,
                                scores.join(", ")
                            );
                        }
                        (None, e) => {
                            let _ = writeln!(
                                s,
                                "{}: not run: {}",
                                x.schedule,
                                e.as_deref().unwrap_or("")
                            );
                        }
                    }
                }
                if r.runs.is_empty() {
                    s.push_str("no evaluation was due\n");
                }
                for d in &r.drift {
                    s.push_str(&drift_text(d));
                }
                for a in &r.alerts {
                    let _ = writeln!(s, "ALERT {}", a.message);
                }
                s
            })?;
            let attention = !r.alerts.is_empty() || r.runs.iter().any(|x| x.error.is_some());
            return Ok(if attention {
                ExitCode::from(DUE_ATTENTION)
            } else {
                ExitCode::SUCCESS
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule_text(all: &[Schedule]) -> String {
    all.iter()
        .map(|s| {
            let next = chrono::DateTime::from_timestamp_millis(s.next_due_ms)
                .map_or(String::new(), |d| {
                    d.format("%Y-%m-%d %H:%M UTC").to_string()
                });
            format!(
                "{:<20} every {:<8} {} on {} over {}{}  next {next}{}\n",
                s.name,
                format_duration_ms(s.every_ms),
                s.spec.prompt,
                s.spec.endpoint,
                s.spec.dataset,
                s.usecase
                    .as_ref()
                    .map_or(String::new(), |u| format!(" (use case {u})")),
                s.last_run
                    .map_or(String::new(), |r| format!("  last run #{r}")),
            )
        })
        .collect()
}

#[derive(Args)]
pub(crate) struct SubjectArgs {
    #[arg(long, conflicts_with_all = ["prompt", "route"], required_unless_present_any = ["prompt", "route"])]
    endpoint: Option<String>,
    /// A prompt version NAME@N
    #[arg(long, conflicts_with = "route")]
    prompt: Option<String>,
    /// A gateway route's model name
    #[arg(long)]
    route: Option<String>,
}

impl SubjectArgs {
    fn subject(self) -> (DriftKind, String) {
        match (self.endpoint, self.prompt, self.route) {
            (Some(e), _, _) => (DriftKind::Endpoint, e),
            (_, Some(p), _) => (DriftKind::Prompt, p),
            (_, _, Some(r)) => (DriftKind::Route, r),
            _ => unreachable!("clap requires one"),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum DriftCmd {
    /// Compare a recent window with a baseline (by default the window before it)
    Show {
        #[command(flatten)]
        subject: SubjectArgs,
        /// The recent window's length, ending now (or at --until)
        #[arg(long, value_parser = parse_duration_ms, default_value = "1d")]
        window: i64,
        /// Where the recent window ends: a date or an RFC 3339 time [default: now]
        #[arg(long)]
        until: Option<String>,
        /// The baseline's start and end, as --until (both or neither)
        #[arg(long, requires = "baseline_until")]
        baseline_since: Option<String>,
        #[arg(long, requires = "baseline_since")]
        baseline_until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Watch a subject: `drift check` (and `schedule run-due`) alert when it drifts
    Watch {
        #[command(flatten)]
        subject: SubjectArgs,
        #[arg(long, value_parser = parse_duration_ms, default_value = "1d")]
        window: i64,
    },
    /// Stop watch ID
    Unwatch { id: i64 },
    /// The watches
    Watches {
        #[arg(long)]
        json: bool,
    },
    /// Check every watch now; exits 5 when drift fired an alert
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Show or change how drift is judged
    Settings {
        /// A significant change at least this large (relative, 0.25 = 25 %) is drift
        #[arg(long)]
        threshold: Option<f64>,
        /// The significance level
        #[arg(long)]
        alpha: Option<f64>,
        /// Phrases that mark an answer as a refusal (repeatable; replaces the list)
        #[arg(long = "refusal")]
        refusals: Vec<String>,
    },
}

pub(crate) async fn drift(console: &Console, cmd: DriftCmd) -> Result<ExitCode> {
    let now = milc_core::db::now_ms();
    let when = |flag: &str, s: &str| {
        milc_core::usage::parse_when(s, now)
            .ok_or_else(|| anyhow!("--{flag} '{s}': a date like 2026-11-01 or an RFC 3339 time"))
    };
    match cmd {
        DriftCmd::Show {
            subject,
            window,
            until,
            baseline_since,
            baseline_until,
            json,
        } => {
            let (kind, subject) = subject.subject();
            let until_ms = match &until {
                Some(u) => when("until", u)?,
                None => now,
            };
            let baseline = match (baseline_since, baseline_until) {
                (Some(a), Some(b)) => {
                    Some((when("baseline-since", &a)?, when("baseline-until", &b)?))
                }
                _ => None,
            };
            let r = console
                .drift(&DriftQuery {
                    kind,
                    subject,
                    since_ms: until_ms - window,
                    until_ms,
                    baseline,
                })
                .await
                .map_err(explain)?;
            output::emit(json, &r, drift_text)?;
        }
        DriftCmd::Watch { subject, window } => {
            let (kind, subject) = subject.subject();
            let w = console
                .watch_drift(kind, &subject, window)
                .await
                .map_err(explain)?;
            eprintln!(
                "watch #{}: {} '{}' over {} windows",
                w.id,
                w.kind.as_str(),
                w.subject,
                format_duration_ms(w.window_ms)
            );
        }
        DriftCmd::Unwatch { id } => {
            console.unwatch_drift(id).await.map_err(explain)?;
            eprintln!("watch #{id} removed");
        }
        DriftCmd::Watches { json } => {
            let all = console.drift_watches().await.map_err(explain)?;
            output::emit(json, &all, |all| {
                all.iter()
                    .map(|w| {
                        format!(
                            "#{:<4} {:<9} {:<30} {}\n",
                            w.id,
                            w.kind.as_str(),
                            w.subject,
                            format_duration_ms(w.window_ms)
                        )
                    })
                    .collect()
            })?;
        }
        DriftCmd::Check { json } => {
            let (reports, alerts) = console.check_drift().await.map_err(explain)?;
            output::emit(json, &(&reports, &alerts), |(reports, alerts)| {
                let mut s: String = reports.iter().map(drift_text).collect();
                for a in alerts.iter() {
                    let _ = writeln!(s, "ALERT {}", a.message);
                }
                s
            })?;
            if !alerts.is_empty() {
                return Ok(ExitCode::from(DUE_ATTENTION));
            }
        }
        DriftCmd::Settings {
            threshold,
            alpha,
            refusals,
        } => {
            let mut s = console.drift_settings().await.map_err(explain)?;
            if threshold.is_some() || alpha.is_some() || !refusals.is_empty() {
                s.threshold = threshold.unwrap_or(s.threshold);
                s.alpha = alpha.unwrap_or(s.alpha);
                if !refusals.is_empty() {
                    s.refusal_phrases = refusals;
                }
                s = console.set_drift_settings(s).await.map_err(explain)?;
            }
            output::json(&s)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn drift_text(r: &DriftReport) -> String {
    let q = &r.query;
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map_or(String::new(), |d| d.format("%Y-%m-%d %H:%M").to_string())
    };
    let mut s = format!(
        "{} '{}': {} → {} against {} → {}{}\n",
        q.kind.as_str(),
        q.subject,
        day(q.since_ms),
        day(q.until_ms),
        day(r.baseline.0),
        day(r.baseline.1),
        if r.drifted { "  DRIFTED" } else { "" }
    );
    let num = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
    for f in &r.figures {
        let _ = writeln!(
            s,
            "  {:<22} {:>12} → {:<12} {:>8} {:<15} {:<10} {}",
            f.metric,
            num(f.baseline),
            num(f.current),
            f.change
                .map_or("–".to_owned(), |c| format!("{:+.1} %", c * 100.0)),
            f.test,
            f.p_value.map_or("–".to_owned(), |p| format!("p={p:.2e}")),
            if f.drifted {
                "DRIFT"
            } else if f.significant {
                "significant"
            } else {
                ""
            }
        );
    }
    s
}
