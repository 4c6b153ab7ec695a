//! `milc`: every MILC Console capability, headless. A thin layer over `milc_core::Console`:
//! it parses arguments, prints results, and maps errors to messages and exit codes.

mod archive;
mod compare;
mod eval;
mod format;
mod gateway;
mod lifecycle;
mod otel;
mod output;
mod retire;
mod usage;
mod workspace;

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use milc_api::{
    CallSource, ChatRequest, EndpointSpec, EndpointStatus, Message, Params, PricePerMillion, Role,
};
use milc_core::{Console, Error as CoreError, SecretString};
use tokio_util::sync::CancellationToken;

use crate::format::explain;

#[derive(Parser)]
#[command(
    name = "milc",
    version,
    about = "MILC Console: carry LLM integrations through their lifecycle, headless"
)]
struct Cli {
    /// SQLite database file, or a team workspace's server as postgres://USER@HOST/DB
    /// [default: the file in the OS data directory]
    #[arg(long, global = true, env = "MILC_DB", value_name = "PATH|URL")]
    db: Option<PathBuf>,
    /// The team workspace to open on a --db postgres://… server
    #[arg(
        long,
        global = true,
        env = "MILC_WORKSPACE",
        value_name = "NAME",
        default_value = "main"
    )]
    workspace: String,
    /// Who is acting: recorded as the author of prompt versions, label moves, recomputed costs
    /// and canary moves [default: the OS user]
    #[arg(long = "as", global = true, env = "MILC_AS", value_name = "NAME")]
    act_as: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the local OpenAI-compatible simulator until interrupted
    Sim(SimArgs),
    /// Manage endpoints (tokens live in the OS keyring)
    #[command(subcommand)]
    Endpoints(EndpointsCmd),
    /// Send one chat message (or a prompt version) and stream the answer to stdout
    Chat(ChatArgs),
    /// The prompt library: versions, labels, diffs
    #[command(subcommand)]
    Prompts(PromptsCmd),
    /// Datasets for test runs: import CSV / JSONL, list, export
    #[command(subcommand)]
    Datasets(DatasetsCmd),
    /// Run a prompt version over a dataset on an endpoint, score it, and gate a build on the result
    Eval(eval::EvalArgs),
    /// Test runs: list, show
    #[command(subcommand)]
    Runs(eval::RunsCmd),
    /// A/B comparisons: variants side by side, blind votes, leaderboard, preference export
    #[command(subcommand)]
    Compare(compare::CompareCmd),
    /// Votes gathered elsewhere, for a comparison
    #[command(subcommand)]
    Votes(compare::VotesCmd),
    /// Serve the OpenAI-compatible gateway (routes, arms, canary judge); `gateway keys`
    Gateway(gateway::GatewayArgs),
    /// Gateway routes: list, show, set-weight, rollback, promote, load, export
    #[command(subcommand)]
    Routes(gateway::RoutesCmd),
    /// A route's canary: live figures per arm, the verdict with its evidence, events
    #[command(subcommand)]
    Canary(gateway::CanaryCmd),
    /// The sample project: `demo load` fills every page with a support-ticket summarizer;
    /// `demo remove` takes exactly that away
    #[command(subcommand)]
    Demo(DemoCmd),
    /// Usage and cost from the hourly rollups: --group-by day,endpoint …; `usage export`
    Usage(usage::UsageArgs),
    /// Effective-dated prices and the recomputation of past costs
    #[command(subcommand)]
    Prices(usage::PricesCmd),
    /// Daily and monthly budgets, per endpoint or overall
    #[command(subcommand)]
    Budgets(usage::BudgetsCmd),
    /// Deprecated and retired endpoints: sunset date, replacement, remaining traffic, references
    Retirement(retire::RetirementArgs),
    /// Alerts (budgets crossed, cost spikes, error rates), newest first; ack; settings
    Alerts(usage::AlertsArgs),
    /// Requirements cards: use cases with SLOs, candidates and their verdicts; `check` gates CI
    #[command(subcommand)]
    Usecases(lifecycle::UsecasesCmd),
    /// Feasibility load test: concurrency levels against an endpoint, latency and throughput
    /// per level, the knee, cost projections
    Loadtest(lifecycle::LoadtestArgs),
    /// Scheduled evaluations: add, list, rm, run-due (for cron or a systemd timer)
    #[command(subcommand)]
    Schedule(lifecycle::ScheduleCmd),
    /// Drift of an endpoint, a prompt version or a route against a baseline; watches
    #[command(subcommand)]
    Drift(lifecycle::DriftCmd),
    /// Export every call as an OpenTelemetry span (OTLP over HTTP/protobuf): set, show, clear,
    /// status
    #[command(subcommand)]
    Otel(otel::OtelCmd),
    /// Keep request and response bodies N days (figures, the log and rollups stay); no option:
    /// show the setting
    Retention {
        #[arg(long, value_name = "N")]
        bodies_days: Option<u32>,
        /// Keep bodies for ever
        #[arg(long, conflicts_with = "bodies_days")]
        off: bool,
    },
    /// Print a prompt version's messages rendered with variables, as JSON
    Render {
        /// NAME (latest version), NAME@N or NAME:LABEL
        prompt: String,
        /// KEY=VALUE (repeatable)
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// Search the Playground and `milc chat` history, newest first
    History {
        /// Words that must all appear (inputs, variables, output, endpoint, prompt)
        #[arg(long, default_value = "")]
        search: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Read text on stdin and print it with personal data replaced by placeholders
    Redact {
        /// Print the redacted text and the entities found (kinds and byte offsets) as JSON
        #[arg(long)]
        json: bool,
        /// Also redact matches of a pattern of your own, NAME=REGEX (repeatable)
        #[arg(long = "custom", value_name = "NAME=REGEX")]
        custom: Vec<String>,
    },
    /// Score pairs read on stdin as JSON lines {"prediction": …, "reference": … or […]}; prints
    /// one JSON line per pair (ROUGE as rouge-score computes it, sentence BLEU as sacrebleu)
    Score {
        /// Comma-separated: rouge1, rouge2, rougeL, rougeLsum, bleu
        #[arg(long, default_value = "rouge1,rouge2,rougeL,rougeLsum,bleu")]
        metrics: String,
        /// Porter-stem tokens longer than 3 characters (ROUGE only), as rouge-score's use_stemmer
        #[arg(long)]
        stem: bool,
    },
    /// Win rates (Wilson intervals) and a Bradley–Terry leaderboard (bootstrap intervals) from
    /// pairwise votes: JSON lines {"a": VARIANT, "b": VARIANT, "winner": "a"|"b"|"tie"|"both_bad"}
    Stats {
        /// The votes file; - for stdin
        #[arg(long, default_value = "-")]
        input: PathBuf,
        /// Bootstrap rounds for the rating intervals
        #[arg(long, default_value_t = 1000)]
        rounds: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        json: bool,
    },
    /// Compliance archives: create (one .tar.zst of an endpoint's, prompt's or use case's
    /// records, no secrets), verify, show, purge the archived calls (usage figures stay)
    #[command(subcommand)]
    Archive(archive::ArchiveCmd),
    /// A team workspace on PostgreSQL (--db postgres://…): init, grant, members, whoami
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCmd),
    /// Who changed what, newest first: endpoints, datasets, runs, comparisons, routes, keys,
    /// prices, budgets, use cases, schedules, settings
    Activity {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show the call log, newest first
    Calls {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
        /// Print the (redacted) request and response bodies kept with call ID, as JSON
        #[arg(long, value_name = "ID", conflicts_with = "show")]
        body: Option<i64>,
        /// Show call ID: its bodies (where kept) and the run, comparison or route that made it
        #[arg(long, value_name = "ID")]
        show: Option<i64>,
        #[command(flatten)]
        filter: CallsFilter,
    },
}

/// Which calls `milc calls` lists.
#[derive(Args)]
struct CallsFilter {
    /// From: 24h, 7d, a date or an RFC 3339 time
    #[arg(long)]
    since: Option<String>,
    /// Until (not included), as --since [default: now]
    #[arg(long)]
    until: Option<String>,
    /// An endpoint's name ('(deleted endpoint)' for calls whose endpoint is gone)
    #[arg(long)]
    endpoint: Option<String>,
    /// A prompt version NAME@N ('(no prompt version)' for calls made without one)
    #[arg(long)]
    prompt: Option<String>,
    /// cli, playground, run, gateway or loadtest
    #[arg(long, value_parser = parse_source)]
    source: Option<milc_api::CallSource>,
    /// ok, error or cancelled
    #[arg(long, value_parser = parse_outcome)]
    status: Option<milc_api::Outcome>,
}

fn parse_source(s: &str) -> Result<milc_api::CallSource, String> {
    milc_api::CallSource::parse(s)
        .ok_or_else(|| format!("'{s}' is not a source: cli, playground, run, gateway or loadtest"))
}

fn parse_outcome(s: &str) -> Result<milc_api::Outcome, String> {
    milc_api::Outcome::parse(s)
        .ok_or_else(|| format!("'{s}' is not a status: ok, error or cancelled"))
}

impl CallsFilter {
    fn is_empty(&self) -> bool {
        self.since.is_none()
            && self.until.is_none()
            && self.endpoint.is_none()
            && self.prompt.is_none()
            && self.source.is_none()
            && self.status.is_none()
    }

    fn query(self, limit: u32) -> Result<milc_api::usage::CallsQuery> {
        let now = milc_core::db::now_ms();
        let when = |flag: &str, s: Option<String>, default: i64| match s {
            None => Ok(default),
            Some(s) => milc_core::usage::parse_when(&s, now).ok_or_else(|| {
                anyhow!("--{flag} '{s}': 24h, 7d, a date like 2026-11-01 or an RFC 3339 time")
            }),
        };
        Ok(milc_api::usage::CallsQuery {
            since_ms: when("since", self.since, 0)?,
            until_ms: when("until", self.until, i64::MAX)?,
            endpoint: self.endpoint,
            prompt: self.prompt,
            source: self.source,
            outcome: self.status,
            limit,
        })
    }
}

#[derive(Subcommand)]
enum DemoCmd {
    /// Load the sample project (two prompt versions, a dataset, runs, a comparison, a week of usage)
    Load {
        #[arg(long)]
        json: bool,
    },
    /// Remove the sample project and everything it created
    Remove,
}

#[derive(Subcommand)]
enum DatasetsCmd {
    /// Import a .csv or .jsonl file as a new version of dataset NAME (all or nothing)
    Import {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// Show what would be imported (counts, variables, the first items) and store nothing
        #[arg(long)]
        preview: bool,
        #[arg(long)]
        json: bool,
    },
    /// List dataset versions, newest first
    List {
        #[arg(long)]
        json: bool,
    },
    /// Write a version (NAME for the newest, NAME@HASH with 6+ hash characters) to stdout
    Export {
        dataset: String,
        #[arg(long, default_value = "jsonl", value_name = "csv|jsonl")]
        format: String,
        /// Write to FILE instead (through a temporary file: never half-written)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Store an edited copy of a version as a new version (the base stays as it was)
    Edit {
        /// NAME for the newest version, or NAME@HASH
        dataset: String,
        /// Replace item IDX (0-based) with a JSONL line, e.g. 3='{"q": "…", "expected": "…"}'
        #[arg(long = "set", value_name = "IDX=JSON")]
        set: Vec<String>,
        /// Leave out item IDX (0-based)
        #[arg(long = "delete", value_name = "IDX")]
        delete: Vec<u64>,
        /// Append an item written as a JSONL line
        #[arg(long = "add", value_name = "JSON")]
        add: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PromptsCmd {
    /// Create a prompt with its first version from a YAML or JSON file
    Create {
        name: String,
        #[arg(long)]
        file: PathBuf,
        /// What the prompt is for [default: the file's `description`]
        #[arg(long)]
        description: Option<String>,
        /// Note of version 1 [default: the file's `note`]
        #[arg(long)]
        note: Option<String>,
    },
    /// Add a version from a YAML or JSON file (identical content adds nothing)
    Version {
        name: String,
        #[arg(long)]
        file: PathBuf,
        /// What changed and why [default: the file's `note`]
        #[arg(long)]
        note: Option<String>,
    },
    /// List prompts with their latest version and labels
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a version (NAME, NAME@N or NAME:LABEL), or with --history every version and label move
    Show {
        prompt: String,
        #[arg(long)]
        json: bool,
        /// All versions and the label history
        #[arg(long)]
        history: bool,
    },
    /// Side-by-side diff of two versions: every message line by line, then changed settings
    Diff {
        name: String,
        left: u32,
        right: u32,
        #[arg(long)]
        json: bool,
    },
    /// Point LABEL (production, candidate, any name) at version N; the move is recorded
    Label {
        name: String,
        version: u32,
        label: String,
    },
    /// What still uses a prompt version (labels, routes, comparisons, use cases, schedules,
    /// drift watches) and its calls of the last 7 and 30 days
    UsedBy(retire::UsedByArgs),
}

#[derive(Args)]
struct SimArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on; 0 picks a free one (the URL is printed on the first line of stdout)
    #[arg(long, default_value_t = 8089)]
    port: u16,
    /// Delay before each response starts
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Streaming pace; 0 streams as fast as possible
    #[arg(long, default_value_t = 0.0)]
    tokens_per_sec: f64,
    /// Inject a fault into a share of the requests, e.g. rate_limit:0.1 (repeatable). Kinds:
    /// rate_limit, quota, server_error, hang, malformed, html, mid_stream_error, no_usage
    #[arg(long = "fault", value_name = "KIND:RATE", value_parser = parse_fault)]
    faults: Vec<(milc_sim::Fault, f64)>,
    /// Seed of the random fault choice
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Allow at most N requests per window (e.g. 20/1s, 600/1m), announced in x-ratelimit-*
    /// headers; requests over it get 429 with Retry-After
    #[arg(long, value_name = "N/WINDOW", value_parser = milc_sim::parse_rate_window)]
    rate_limit: Option<milc_sim::RateWindow>,
    /// Require this bearer token (taken from the environment so it stays out of `ps`)
    #[arg(long = "api-key-env", value_name = "VAR")]
    api_key_env: Option<String>,
}

fn parse_fault(s: &str) -> Result<(milc_sim::Fault, f64), String> {
    milc_sim::parse_fault_spec(s)
}

#[derive(Subcommand)]
enum EndpointsCmd {
    /// Add an endpoint
    Add(AddArgs),
    /// List endpoints
    List {
        #[arg(long)]
        json: bool,
    },
    /// Test the connection: GET /models, latency, and whether the model is served
    Test {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace the endpoint's token with one read from stdin, or remove it
    SetToken {
        name: String,
        #[arg(long)]
        remove: bool,
    },
    /// Set the lifecycle: active, deprecated (--sunset DATE --replacement ENDPOINT) or retired
    /// (takes no calls; refused while something still uses it, unless --force)
    Status(retire::StatusArgs),
    /// What still uses an endpoint (prompt versions, labels, routes, comparisons, use cases,
    /// schedules, budgets, drift watches) and its calls of the last 7 and 30 days
    UsedBy(retire::UsedByArgs),
    /// Set the redaction policy: when personal data is redacted and whether bodies are logged
    Redaction {
        name: String,
        #[command(flatten)]
        policy: RedactionArgs,
    },
    /// Name the base model a fine-tuned or custom model was tuned from (and on what), shown in
    /// comparisons and leaderboards; --clear removes it
    Lineage {
        name: String,
        #[command(flatten)]
        lineage: LineageArgs,
        #[arg(long, conflicts_with_all = ["base_model", "tuned_on"])]
        clear: bool,
    },
    /// Delete an endpoint and its token (its calls stay in the log)
    Rm { name: String },
}

#[derive(Args)]
struct LineageArgs {
    /// The model this one was fine-tuned from, e.g. meta/llama-3.1-8b-instruct
    #[arg(long, value_name = "MODEL")]
    base_model: Option<String>,
    /// What it was tuned on: a dataset (NAME@HASH) or an export file
    #[arg(long, value_name = "DATA", requires = "base_model")]
    tuned_on: Option<String>,
}

impl LineageArgs {
    fn lineage(self) -> Option<milc_api::Lineage> {
        self.base_model.map(|base_model| milc_api::Lineage {
            base_model,
            tuned_on: self.tuned_on,
        })
    }
}

#[derive(Args)]
struct AddArgs {
    name: String,
    /// Base URL with the version prefix, e.g. https://integrate.api.nvidia.com/v1
    #[arg(long)]
    url: String,
    #[arg(long)]
    model: String,
    /// Read the API token from stdin and store it in the OS keyring
    #[arg(long)]
    token_stdin: bool,
    /// USD per 1M input tokens
    #[arg(long, value_name = "USD_PER_M")]
    price_in: Option<PricePerMillion>,
    /// USD per 1M cached input tokens [default: the input price]
    #[arg(long, value_name = "USD_PER_M")]
    price_cached: Option<PricePerMillion>,
    /// USD per 1M output tokens
    #[arg(long, value_name = "USD_PER_M")]
    price_out: Option<PricePerMillion>,
    /// Extra header sent with every request, NAME=VALUE (repeatable)
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    #[arg(long, default_value_t = milc_api::default_timeout_ms())]
    timeout_ms: u64,
    #[arg(long, default_value_t = milc_api::default_max_retries())]
    max_retries: u32,
    #[command(flatten)]
    redaction: RedactionArgs,
    #[command(flatten)]
    lineage: LineageArgs,
}

#[derive(Args)]
struct RedactionArgs {
    /// When personal data is redacted: off, sending, logging (default) or both
    #[arg(long = "redact", value_name = "WHEN", value_parser = parse_redact_mode)]
    redact: Option<milc_api::prompt::RedactMode>,
    /// Keep (redacted) request and response bodies with the call log
    #[arg(long)]
    log_bodies: bool,
    /// Also redact matches of a pattern of your own, NAME=REGEX (repeatable)
    #[arg(long = "redact-custom", value_name = "NAME=REGEX")]
    custom: Vec<String>,
}

impl RedactionArgs {
    fn policy(&self) -> Result<milc_api::RedactionPolicy> {
        Ok(milc_api::RedactionPolicy {
            mode: self.redact.unwrap_or_default(),
            log_bodies: self.log_bodies,
            custom: self
                .custom
                .iter()
                .map(|c| {
                    let (name, pattern) = c
                        .split_once('=')
                        .ok_or_else(|| anyhow!("--redact-custom '{c}': write it as NAME=REGEX"))?;
                    Ok(milc_api::prompt::CustomPattern {
                        name: name.to_owned(),
                        pattern: pattern.to_owned(),
                    })
                })
                .collect::<Result<_>>()?,
        })
    }
}

fn parse_redact_mode(s: &str) -> Result<milc_api::prompt::RedactMode, String> {
    milc_api::prompt::RedactMode::parse(s)
        .ok_or_else(|| format!("'{s}': use off, sending, logging or both"))
}

#[derive(Args)]
struct ChatArgs {
    /// Endpoint name [default: the only active endpoint]
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long)]
    system: Option<String>,
    #[arg(long)]
    max_tokens: Option<u32>,
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long)]
    top_p: Option<f64>,
    #[arg(long)]
    seed: Option<i64>,
    /// Stop sequence (repeatable)
    #[arg(long)]
    stop: Vec<String>,
    /// Wait for the whole answer instead of streaming it
    #[arg(long)]
    no_stream: bool,
    /// Print one JSON object with output, ttft_ms, latency_ms, usage and cost
    #[arg(long)]
    json: bool,
    /// Use a prompt version: NAME (latest), NAME@N or NAME:LABEL. Its parameters apply unless
    /// overridden here, and its default endpoint unless --endpoint is given
    #[arg(long)]
    prompt: Option<String>,
    /// A variable of the prompt's templates, KEY=VALUE (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// Ask for a JSON object (json_object) or, with a schema file, for JSON that follows it
    #[arg(long, value_name = "json_object|SCHEMA_FILE")]
    response_format: Option<String>,
    /// The user message (appended after a prompt's messages); `-` reads it from stdin
    message: Option<String>,
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a reader that stops early (`milc usage --json | head`) made every
    // later write an error. Like other Unix tools, end quietly when the pipe closes.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MILC_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens `--db`: the SQLite file (the default one without it) or, for a `postgres://` URL,
/// team workspace `workspace` on that server.
async fn open(db: Option<PathBuf>, workspace: &str) -> Result<Console> {
    let db = db.unwrap_or_else(milc_core::default_db_path);
    let db = db.to_string_lossy();
    Console::open_db(&db, Some(workspace))
        .await
        .map_err(explain)
        .with_context(|| format!("opening {}", milc_core::db::redacted_url(&db)))
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sim(args) => return sim(args).await,
        Command::Redact { json, custom } => return redact(json, &custom),
        Command::Score { metrics, stem } => return score(&metrics, stem),
        Command::Stats {
            input,
            rounds,
            seed,
            json,
        } => return stats(&input, rounds, seed, json),
        Command::Archive(cmd) => {
            return archive::archive(|| open(cli.db.clone(), &cli.workspace), cmd).await
        }
        Command::Workspace(cmd) => return workspace::workspace(cli.db, &cli.workspace, cmd).await,
        _ => {}
    }
    let console = open(cli.db.clone(), &cli.workspace).await?;
    if let Some(name) = &cli.act_as {
        console.set_author(name).map_err(explain)?;
    }
    let command = match cli.command {
        // The gateway shares the console with its tasks and closes it itself.
        Command::Gateway(args) => return gateway::gateway(console, args).await,
        c => c,
    };
    let code = match command {
        Command::Sim(_)
        | Command::Redact { .. }
        | Command::Score { .. }
        | Command::Stats { .. }
        | Command::Archive(_)
        | Command::Workspace(_)
        | Command::Gateway(_) => {
            unreachable!("handled above")
        }
        Command::Routes(cmd) => gateway::routes(&console, cmd).await?,
        Command::Canary(cmd) => gateway::canary(&console, cmd).await?,
        Command::Demo(DemoCmd::Load { json }) => {
            let s = console.demo_load().await.map_err(explain)?;
            output::emit(json, &s, |s| {
                format!(
                    "sample project loaded: endpoint '{}', prompt '{}' (production v1, candidate v2), dataset '{}', runs {}, comparison '{}', {} calls of usage\n",
                    s.endpoint,
                    s.prompt,
                    s.dataset,
                    s.runs.iter().map(|r| format!("#{r}")).collect::<Vec<_>>().join(" and "),
                    s.comparison,
                    s.calls
                )
            })?;
            ExitCode::SUCCESS
        }
        Command::Demo(DemoCmd::Remove) => {
            console.demo_remove().await.map_err(explain)?;
            eprintln!("sample project removed");
            ExitCode::SUCCESS
        }
        Command::Otel(cmd) => otel::otel(&console, cmd).await?,
        Command::Usecases(cmd) => lifecycle::usecases(&console, cmd).await?,
        Command::Loadtest(args) => lifecycle::loadtest(&console, args).await?,
        Command::Schedule(cmd) => lifecycle::schedule(&console, cmd).await?,
        Command::Drift(cmd) => lifecycle::drift(&console, cmd).await?,
        Command::Endpoints(cmd) => endpoints(&console, cmd).await?,
        Command::Chat(args) => chat(&console, args).await?,
        Command::Prompts(cmd) => prompts(&console, cmd).await?,
        Command::Datasets(cmd) => datasets(&console, cmd).await?,
        Command::Eval(args) => eval::eval(&console, args).await?,
        Command::Runs(cmd) => eval::runs(&console, cmd).await?,
        Command::Compare(cmd) => compare::compare(&console, cmd).await?,
        Command::Votes(cmd) => compare::votes(&console, cmd).await?,
        Command::Usage(a) => usage::usage(&console, a).await?,
        Command::Prices(cmd) => usage::prices(&console, cmd).await?,
        Command::Budgets(cmd) => usage::budgets(&console, cmd).await?,
        Command::Retirement(a) => retire::retirement(&console, a).await?,
        Command::Alerts(a) => usage::alerts(&console, a).await?,
        Command::Retention { bodies_days, off } => usage::retention(&console, bodies_days, off).await?,
        Command::Render { prompt, vars } => {
            let (v, messages, unused) = console
                .render_prompt(&prompt, &parse_vars(&vars)?)
                .await
                .map_err(explain)?;
            for u in &unused {
                eprintln!("warning: variable '{u}' is used by no message of {}@{}", v.prompt, v.version);
            }
            output::json(&messages)?;
            ExitCode::SUCCESS
        }
        Command::History {
            search,
            limit,
            json,
        } => {
            let entries = console.history(&search, limit).await?;
            output::emit(json, &entries, |e| format::history_table(e))?;
            ExitCode::SUCCESS
        }
        Command::Activity { limit, json } => {
            let a = console.activity(limit).await.map_err(explain)?;
            output::emit(json, &a, |a| {
                a.iter()
                    .map(|x| {
                        format!(
                            "{}  {:<16} {:<22} {}\n",
                            format::local_time(x.at_ms),
                            x.author,
                            x.action,
                            x.subject
                        )
                    })
                    .collect()
            })?;
            ExitCode::SUCCESS
        }
        Command::Calls {
            body: Some(id), ..
        } => match console.call_body(id).await? {
            Some(b) => {
                output::json(&b)?;
                ExitCode::SUCCESS
            }
            None => bail!("call #{id} has no bodies: its endpoint's policy does not keep them (milc endpoints redaction NAME --log-bodies)"),
        },
        Command::Calls {
            show: Some(id), ..
        } => {
            output::json(&console.call_detail(id).await.map_err(explain)?)?;
            ExitCode::SUCCESS
        }
        Command::Calls {
            limit,
            json,
            filter,
            ..
        } => {
            let calls = if filter.is_empty() {
                console.calls(limit).await?
            } else {
                console.usage_calls(&filter.query(limit)?).await?
            };
            output::emit(json, &calls, |c| format::calls_table(c))?;
            ExitCode::SUCCESS
        }
    };
    // Budgets and alerts see every call this command logged before the process ends.
    console.close().await;
    Ok(code)
}

async fn sim(args: SimArgs) -> Result<ExitCode> {
    let api_key = match &args.api_key_env {
        Some(var) => {
            Some(std::env::var(var).with_context(|| format!("--api-key-env: ${var} is not set"))?)
        }
        None => None,
    };
    let config = milc_sim::SimConfig {
        latency_ms: args.latency_ms,
        tokens_per_sec: args.tokens_per_sec,
        faults: args.faults,
        seed: args.seed,
        api_key,
        rate_limit: args.rate_limit,
        ..milc_sim::SimConfig::default()
    };
    let handle = milc_sim::start((args.host, args.port).into(), config)
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    println!(
        "milc sim: OpenAI-compatible simulator at {}",
        handle.base_url()
    );
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    handle.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// Redaction needs no database: it is a pure function of the text and the patterns.
fn redact(json: bool, custom: &[String]) -> Result<ExitCode> {
    let mut redactor = milc_core::redact::Redactor::new();
    for c in custom {
        let (name, pattern) = c
            .split_once('=')
            .ok_or_else(|| anyhow!("--custom '{c}': write it as NAME=REGEX"))?;
        redactor = redactor
            .with_custom(name, pattern)
            .map_err(|e| anyhow!("--custom: {e}"))?;
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading stdin")?;
    let red = redactor.redact(&text, &mut milc_core::redact::Placeholders::default());
    let redacted = serde_json::json!({"text": red.text, "entities": red.entities});
    output::emit(json, &redacted, |_| red.text)?;
    Ok(ExitCode::SUCCESS)
}

/// Scoring needs no database either; lines stream through, so memory stays flat.
fn score(metrics: &str, stem: bool) -> Result<ExitCode> {
    use milc_core::eval::scoring::{parse_pair, score_pair, Metric};
    let metrics = Metric::parse_list(metrics).map_err(|e| anyhow!(e))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let pair = parse_pair(i + 1, &line).map_err(|e| anyhow!("stdin {e}"))?;
        serde_json::to_writer(&mut out, &score_pair(&metrics, &pair, stem))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn stats(input: &Path, rounds: u32, seed: u64, json: bool) -> Result<ExitCode> {
    use milc_api::arena::Vote;
    let (shown, text) = if input.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .context("reading stdin")?;
        ("stdin".to_owned(), t)
    } else {
        let shown = input.display().to_string();
        let t = std::fs::read_to_string(input).with_context(|| format!("reading {shown}"))?;
        (shown, t)
    };
    let mut votes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Vote = serde_json::from_str(line)
            .map_err(|e| anyhow!("{shown}:{}:{}: {e}", i + 1, e.column()))?;
        if v.a == v.b {
            bail!(
                "{shown}:{}: a variant is compared with itself ('{}')",
                i + 1,
                v.a
            );
        }
        votes.push(v);
    }
    if votes.is_empty() {
        bail!("{shown}: holds no votes");
    }
    let s = milc_core::eval::stats::standings(&votes, rounds, seed);
    output::emit(json, &s, format::standings)?;
    Ok(ExitCode::SUCCESS)
}

async fn endpoints(console: &Console, cmd: EndpointsCmd) -> Result<ExitCode> {
    match cmd {
        EndpointsCmd::Add(a) => {
            let mut spec = EndpointSpec::new(a.name, a.url, a.model);
            spec.prices.input = a.price_in.unwrap_or_default();
            spec.prices.cached_input = a.price_cached;
            spec.prices.output = a.price_out.unwrap_or_default();
            spec.timeout_ms = a.timeout_ms;
            spec.max_retries = a.max_retries;
            spec.headers = parse_headers(&a.headers)?;
            spec.redaction = a.redaction.policy()?;
            spec.lineage = a.lineage.lineage();
            let token = if a.token_stdin {
                Some(read_token()?)
            } else {
                None
            };
            let ep = console.add_endpoint(spec, token).await.map_err(explain)?;
            eprintln!(
                "added endpoint '{}' ({}){}",
                ep.spec.name,
                ep.spec.base_url,
                if ep.has_token {
                    ", token stored in the OS keyring"
                } else {
                    ""
                }
            );
        }
        EndpointsCmd::List { json } => {
            let eps = console.endpoints().await?;
            output::emit(json, &eps, |e| format::endpoints_table(e))?;
        }
        EndpointsCmd::Test { name, json } => {
            let t = console.test_endpoint(&name).await.map_err(explain)?;
            output::emit(json, &t, |t| format::connection_test(&name, t) + "\n")?;
            if !t.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        EndpointsCmd::SetToken { name, remove } => {
            let ep = console.endpoint(&name).await.map_err(explain)?;
            let token = if remove { None } else { Some(read_token()?) };
            console.set_token(ep.id, token).await.map_err(explain)?;
            eprintln!(
                "{}",
                if remove {
                    "token removed"
                } else {
                    "token replaced in the OS keyring"
                }
            );
        }
        EndpointsCmd::Status(a) => return retire::status(console, a).await,
        EndpointsCmd::UsedBy(a) => return retire::endpoint_used_by(console, a).await,
        EndpointsCmd::Redaction { name, policy } => {
            let ep = console.endpoint(&name).await.map_err(explain)?;
            let spec = EndpointSpec {
                redaction: policy.policy()?,
                ..ep.spec
            };
            let ep = console
                .update_endpoint(ep.id, spec)
                .await
                .map_err(explain)?;
            eprintln!(
                "'{name}': redaction {}{}",
                ep.spec.redaction.mode.as_str(),
                if ep.spec.redaction.log_bodies {
                    ", bodies kept (redacted)"
                } else {
                    ", no bodies kept"
                }
            );
        }
        EndpointsCmd::Lineage {
            name,
            lineage,
            clear,
        } => {
            let lineage = lineage.lineage();
            if lineage.is_none() && !clear {
                bail!("give --base-model MODEL [--tuned-on DATA] or --clear");
            }
            let ep = console.endpoint(&name).await.map_err(explain)?;
            let spec = EndpointSpec { lineage, ..ep.spec };
            let ep = console
                .update_endpoint(ep.id, spec)
                .await
                .map_err(explain)?;
            match &ep.spec.lineage {
                Some(l) => eprintln!("'{name}': {l}"),
                None => eprintln!("'{name}': no lineage"),
            }
        }
        EndpointsCmd::Rm { name } => {
            console.remove_endpoint(&name).await.map_err(explain)?;
            eprintln!("removed endpoint '{name}'");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn chat(console: &Console, a: ChatArgs) -> Result<ExitCode> {
    let text = match a.message.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            Some(s)
        }
        other => other.map(str::to_owned),
    };
    let (mut req, prompt_endpoint) = match &a.prompt {
        Some(r) => console
            .prompt_request(r, parse_vars(&a.vars)?)
            .await
            .map_err(explain)?,
        None => {
            if !a.vars.is_empty() {
                bail!("--var needs --prompt (or {{{{variables}}}} in a prompt version)");
            }
            let Some(_) = &text else {
                bail!("give a message, `-` to read it from stdin, or --prompt NAME");
            };
            (ChatRequest::new(vec![], Params::default()), None)
        }
    };
    if let Some(s) = a.system {
        req.messages.insert(0, Message::new(Role::System, s));
    }
    if let Some(t) = text {
        req.messages.push(Message::new(Role::User, t));
    }
    let p = &mut req.params;
    p.temperature = a.temperature.or(p.temperature);
    p.top_p = a.top_p.or(p.top_p);
    p.max_tokens = a.max_tokens.or(p.max_tokens);
    p.seed = a.seed.or(p.seed);
    if !a.stop.is_empty() {
        p.stop = a.stop;
    }
    if let Some(f) = &a.response_format {
        p.response_format = Some(response_format(f)?);
    }
    req.stream = !a.no_stream;
    let endpoint = match a.endpoint.or(prompt_endpoint) {
        Some(e) => e,
        None => only_active_endpoint(console).await?,
    };
    retire::warn_about(console, &[&endpoint]).await?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let json = a.json;
    let mut stdout = std::io::stdout();
    let mut print = |delta: &str| {
        if !json {
            // A closed pipe must not abort the call: it still gets logged.
            let _ = stdout
                .write_all(delta.as_bytes())
                .and_then(|_| stdout.flush());
        }
    };
    let result = console
        .chat(&endpoint, &req, CallSource::Cli, &mut print, &cancel)
        .await;
    match result {
        Ok(r) => {
            // The text went out as it streamed; a person gets the figures on stderr.
            if json {
                output::json(&r)?;
            } else {
                println!();
                eprintln!("{}", format::figures(&r));
                for u in &r.unused_variables {
                    eprintln!("warning: variable '{u}' is used by no message");
                }
                if !r.redacted.is_empty() {
                    eprintln!(
                        "{} value(s) redacted before sending; the answer with them restored:",
                        r.redacted.len()
                    );
                    if let Some(restored) = &r.restored {
                        eprintln!("{restored}");
                    }
                }
                if let Some(c) = &r.structured {
                    eprint!("{}", format::structured(c));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(CoreError::Call { error, call_id, .. }) => {
            if !json {
                println!();
            }
            eprintln!("error: {} — {}", error, format::hint(error.kind, &endpoint));
            if let Some(id) = call_id {
                eprintln!("(logged as call #{id})");
            }
            Ok(if error.kind == milc_api::ErrorKind::Cancelled {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => Err(explain(e)),
    }
}

async fn only_active_endpoint(console: &Console) -> Result<String> {
    let active: Vec<String> = console
        .endpoints()
        .await?
        .into_iter()
        .filter(|e| e.spec.status != EndpointStatus::Retired)
        .map(|e| e.spec.name)
        .collect();
    match active.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no endpoint to call: add one with `milc endpoints add NAME --url URL --model MODEL`"
        ),
        many => bail!("choose an endpoint with --endpoint: {}", many.join(", ")),
    }
}

fn parse_vars(raw: &[String]) -> Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow!("--var '{v}': write it as KEY=VALUE"))
        })
        .collect()
}

/// `json_object`, `text`, or the path of a JSON Schema file (its stem names the schema).
fn response_format(arg: &str) -> Result<milc_api::ResponseFormat> {
    use milc_api::prompt::JsonSchemaFormat;
    use milc_api::ResponseFormat;
    Ok(match arg {
        "json_object" => ResponseFormat::JsonObject,
        "text" => ResponseFormat::Text,
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--response-format: reading the schema file {path}"))?;
            let schema = serde_json::from_str(&text)
                .map_err(|e| anyhow!("{path}:{}:{}: {e}", e.line(), e.column()))?;
            let name: String = std::path::Path::new(path)
                .file_stem()
                .map(|s| {
                    s.to_string_lossy()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                        .take(64)
                        .collect()
                })
                .filter(|n: &String| !n.is_empty())
                .unwrap_or_else(|| "schema".into());
            ResponseFormat::JsonSchema {
                json_schema: JsonSchemaFormat {
                    name,
                    schema,
                    strict: Some(true),
                },
            }
        }
    })
}

async fn prompts(console: &Console, cmd: PromptsCmd) -> Result<ExitCode> {
    use milc_api::prompt::NewVersion;
    use milc_core::prompts::PromptFile;
    match cmd {
        PromptsCmd::Create {
            name,
            file,
            description,
            note,
        } => {
            let f = PromptFile::read(&file).map_err(explain)?;
            let nv = NewVersion {
                prompt: name,
                description: description.or(f.description.clone()),
                content: f.content(),
                note: note.or(f.note).unwrap_or_else(|| "first version".into()),
            };
            let saved = console.save_prompt(nv, true).await.map_err(explain)?;
            let v = &saved.version;
            eprintln!(
                "created prompt '{}' at version {} ({})",
                v.prompt,
                v.version,
                &v.hash[..12]
            );
            print_variables(v);
        }
        PromptsCmd::Version { name, file, note } => {
            let f = PromptFile::read(&file).map_err(explain)?;
            let nv = NewVersion {
                prompt: name,
                description: None,
                content: f.content(),
                note: note.or(f.note).unwrap_or_default(),
            };
            let saved = console.save_prompt(nv, false).await.map_err(explain)?;
            let v = &saved.version;
            if saved.created {
                eprintln!("'{}' version {} ({})", v.prompt, v.version, &v.hash[..12]);
            } else {
                eprintln!(
                    "unchanged: the content is identical to '{}' version {}; no version added",
                    v.prompt, v.version
                );
            }
            print_variables(v);
        }
        PromptsCmd::List { json } => {
            let list = console.prompts().await?;
            output::emit(json, &list, |l| format::prompts_table(l))?;
        }
        PromptsCmd::Show {
            prompt,
            json,
            history: true,
        } => {
            let name = milc_api::prompt::PromptRef::parse(&prompt)
                .map_err(|e| anyhow!(e))?
                .name;
            let d = console.prompt(&name).await.map_err(explain)?;
            output::emit(json, &d, format::prompt_history)?;
        }
        PromptsCmd::Show { prompt, json, .. } => {
            let v = console.resolve_prompt(&prompt).await.map_err(explain)?;
            output::emit(json, &v, format::prompt_version)?;
        }
        PromptsCmd::Diff {
            name,
            left,
            right,
            json,
        } => {
            let d = console
                .diff_prompt(&name, left, right)
                .await
                .map_err(explain)?;
            let width = terminal_width();
            output::emit(json, &d, |d| format::diff(d, width))?;
        }
        PromptsCmd::Label {
            name,
            version,
            label,
        } => match console
            .label_prompt(&name, version, &label)
            .await
            .map_err(explain)?
        {
            Some(m) => eprintln!(
                "'{label}' of '{name}' moved {} → {}",
                m.from.map_or("(new)".to_owned(), |v| format!("v{v}")),
                m.to
            ),
            None => eprintln!("'{label}' of '{name}' already points at version {version}"),
        },
        PromptsCmd::UsedBy(a) => return retire::prompt_used_by(console, a).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn datasets(console: &Console, cmd: DatasetsCmd) -> Result<ExitCode> {
    match cmd {
        DatasetsCmd::Import {
            file,
            name,
            preview: true,
            json,
        } => {
            let p = console.preview_dataset(&file, 5).map_err(explain)?;
            output::emit(json, &p, |p| format::dataset_preview(&name, p))?;
        }
        DatasetsCmd::Import {
            file, name, json, ..
        } => {
            let imported = console
                .import_dataset(&file, &name)
                .await
                .map_err(explain)?;
            let v = &imported.version;
            // Without --json this is a notice on stderr, not output.
            if json {
                output::json(&imported)?;
            } else if imported.created {
                eprintln!(
                    "imported {} items into '{}' as version {} (variables: {})",
                    v.items,
                    v.dataset,
                    &v.hash[..12],
                    v.variables.join(", ")
                );
            } else {
                eprintln!(
                    "unchanged: '{}' already has this content as version {}",
                    v.dataset,
                    &v.hash[..12]
                );
            }
        }
        DatasetsCmd::List { json } => {
            let list = console.datasets().await?;
            output::emit(json, &list, |l| format::datasets_table(l))?;
        }
        DatasetsCmd::Export {
            dataset,
            format,
            out: Some(path),
        } => {
            let format = milc_core::datasets::format(&format).map_err(explain)?;
            let done = console
                .export_dataset_file(&dataset, format, &path.to_string_lossy())
                .await
                .map_err(explain)?;
            eprintln!(
                "wrote {} items of {} to {}",
                done.records, done.source, done.path
            );
        }
        DatasetsCmd::Edit {
            dataset,
            set,
            delete,
            add,
        } => {
            let mut edit = milc_api::dataset::DatasetEdit {
                base: dataset,
                delete: delete.into_iter().collect(),
                add,
                ..Default::default()
            };
            for s in set {
                let (idx, line) = s
                    .split_once('=')
                    .and_then(|(i, l)| Some((i.trim().parse::<u64>().ok()?, l)))
                    .ok_or_else(|| {
                        anyhow!("--set '{s}': write it as IDX=JSON, e.g. 3='{{\"q\": \"…\"}}'")
                    })?;
                edit.set.insert(idx, line.to_owned());
            }
            let i = console.edit_dataset(&edit).await.map_err(explain)?;
            let v = &i.version;
            if i.created {
                println!(
                    "stored {} items as version {} of '{}'",
                    v.items,
                    &v.hash[..12],
                    v.dataset
                );
            } else {
                println!(
                    "unchanged: '{}' already has this content as version {}",
                    v.dataset,
                    &v.hash[..12]
                );
            }
        }
        DatasetsCmd::Export {
            dataset,
            format,
            out: None,
        } => {
            let format = milc_core::datasets::format(&format).map_err(explain)?;
            let mut out = std::io::BufWriter::new(std::io::stdout());
            console
                .export_dataset(&dataset, format, &mut out)
                .await
                .map_err(explain)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_variables(v: &milc_api::prompt::PromptVersion) {
    let vars = v.content.variables();
    if !vars.is_empty() {
        eprintln!("variables: {}", vars.join(", "));
    }
}

fn parse_headers(raw: &[String]) -> Result<BTreeMap<String, String>> {
    raw.iter()
        .map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| anyhow!("--header '{h}': write it as NAME=VALUE"))
        })
        .collect()
}

/// Reads a token from stdin: the first line, trimmed. Never echoed, never logged.
fn read_token() -> Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("token (input is not hidden; prefer piping it in): ");
    }
    let mut s = String::new();
    stdin
        .lock()
        .read_to_string(&mut s)
        .context("reading the token from stdin")?;
    let token = s.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        bail!("--token-stdin: stdin held no token");
    }
    Ok(SecretString::new(token))
}

/// The width of the terminal stdout writes to; `None` when it is a pipe or a file.
fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    #[cfg(unix)]
    {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the winsize struct it is given, nothing else.
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
        if ok && ws.ws_col > 0 {
            return Some(ws.ws_col as usize);
        }
    }
    Some(
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100),
    )
}
