//! `milc`: every MILC Console capability, headless. A thin layer over `milc_core::Console`:
//! it parses arguments, prints results, and maps errors to messages and exit codes.

mod format;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use milc_api::{
    CallSource, ChatRequest, EndpointSpec, EndpointStatus, Message, Params, PricePerMillion, Role,
};
use milc_core::{Console, Error as CoreError, SecretString};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "milc",
    version,
    about = "MILC Console: carry LLM integrations through their lifecycle, headless"
)]
struct Cli {
    /// SQLite database file [default: the OS data directory]
    #[arg(long, global = true, env = "MILC_DB", value_name = "PATH")]
    db: Option<PathBuf>,
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
    /// Send one chat message and stream the answer to stdout
    Chat(ChatArgs),
    /// Read text on stdin and print it with personal data replaced by placeholders
    Redact {
        /// Print the redacted text and the entities found (kinds and byte offsets) as JSON
        #[arg(long)]
        json: bool,
        /// Also redact matches of a pattern of your own, NAME=REGEX (repeatable)
        #[arg(long = "custom", value_name = "NAME=REGEX")]
        custom: Vec<String>,
    },
    /// Show the call log, newest first
    Calls {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
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
    /// Set the lifecycle status: active, deprecated or retired (retired endpoints take no calls)
    Status { name: String, status: String },
    /// Delete an endpoint and its token (its calls stay in the log)
    Rm { name: String },
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
    /// The user message; `-` reads it from stdin
    message: String,
}

fn main() -> ExitCode {
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

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sim(args) => return sim(args).await,
        Command::Redact { json, custom } => return redact(json, &custom),
        _ => {}
    }
    let db = cli.db.unwrap_or_else(milc_core::default_db_path);
    let console = Console::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let code = match cli.command {
        Command::Sim(_) | Command::Redact { .. } => {
            unreachable!("handled above: they need no database")
        }
        Command::Endpoints(cmd) => endpoints(&console, cmd).await?,
        Command::Chat(args) => chat(&console, args).await?,
        Command::Calls { limit, json } => {
            let calls = console.calls(limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&calls)?);
            } else {
                print!("{}", format::calls_table(&calls));
            }
            ExitCode::SUCCESS
        }
    };
    console.store().close().await;
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
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"text": red.text, "entities": red.entities})
            )?
        );
    } else {
        print!("{}", red.text);
    }
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
            if json {
                println!("{}", serde_json::to_string_pretty(&eps)?);
            } else {
                print!("{}", format::endpoints_table(&eps));
            }
        }
        EndpointsCmd::Test { name, json } => {
            let t = console.test_endpoint(&name).await.map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!("{}", format::connection_test(&name, &t));
            }
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
        EndpointsCmd::Status { name, status } => {
            let status = EndpointStatus::parse(&status).ok_or_else(|| {
                anyhow!("'{status}' is not a status: use active, deprecated or retired")
            })?;
            let ep = console.endpoint(&name).await.map_err(explain)?;
            let spec = EndpointSpec { status, ..ep.spec };
            console
                .update_endpoint(ep.id, spec)
                .await
                .map_err(explain)?;
            eprintln!("'{name}' is now {}", status.as_str());
        }
        EndpointsCmd::Rm { name } => {
            console.remove_endpoint(&name).await.map_err(explain)?;
            eprintln!("removed endpoint '{name}'");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn chat(console: &Console, a: ChatArgs) -> Result<ExitCode> {
    let endpoint = match a.endpoint {
        Some(e) => e,
        None => only_active_endpoint(console).await?,
    };
    let text = if a.message == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        a.message
    };
    let mut messages = Vec::new();
    if let Some(s) = a.system {
        messages.push(Message::new(Role::System, s));
    }
    messages.push(Message::new(Role::User, text));
    let req = ChatRequest {
        messages,
        params: Params {
            temperature: a.temperature,
            top_p: a.top_p,
            max_tokens: a.max_tokens,
            stop: a.stop,
            seed: a.seed,
        },
        stream: !a.no_stream,
    };
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
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!();
                eprintln!("{}", format::figures(&r));
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

/// Core errors carry the field or upstream message already; add what to do next.
fn explain(e: CoreError) -> anyhow::Error {
    match &e {
        CoreError::Secret(_) => anyhow!(
            "{e}\nhint: run inside a desktop session, or start gnome-keyring-daemon --unlock"
        ),
        _ => anyhow!(e),
    }
}
