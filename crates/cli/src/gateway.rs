//! `milc gateway`, `milc gateway keys`, `milc routes`, `milc canary`: the live half, headless.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use milc_api::gateway::{CanaryStatus, GatewayKey, Route};
use milc_core::{Console, SecretString};

use crate::format::explain;
use crate::output;

#[derive(Args)]
pub(crate) struct GatewayArgs {
    #[command(subcommand)]
    cmd: Option<GatewayCmd>,
    /// Address to serve on (loopback unless told otherwise)
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
    listen: String,
    /// A route file (TOML) loaded into the store before serving: it is the whole truth
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Largest request body in bytes (bigger ones get 413)
    #[arg(long, default_value_t = 4 << 20)]
    body_limit: usize,
    /// Do not run the canary judge in this process
    #[arg(long)]
    no_judge: bool,
    /// An upstream token for endpoint NAME, read at start instead of the OS keyring (a server
    /// has none): NAME=env:VAR from an environment variable, NAME=file:PATH from a file (a
    /// relative PATH is looked up in $CREDENTIALS_DIRECTORY, as systemd's LoadCredential=
    /// provides it). Repeatable
    #[arg(long = "token", value_name = "NAME=env:VAR|NAME=file:PATH")]
    tokens: Vec<String>,
}

/// The token `--token NAME=SOURCE` names, as (endpoint, token); errors name the flag, the
/// variable or the file, never a token.
fn read_token(arg: &str) -> Result<(String, SecretString)> {
    let (name, source) = arg
        .rsplit_once('=')
        .filter(|(n, s)| !n.trim().is_empty() && (s.starts_with("env:") || s.starts_with("file:")))
        .ok_or_else(|| anyhow!("--token {arg:?}: write NAME=env:VAR or NAME=file:PATH"))?;
    let token = if let Some(var) = source.strip_prefix("env:") {
        std::env::var(var)
            .map_err(|_| anyhow!("--token {name}: the environment variable {var} is not set"))?
    } else {
        let path = PathBuf::from(source.trim_start_matches("file:"));
        let path = match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) if path.is_relative() => PathBuf::from(dir).join(path),
            _ => path,
        };
        std::fs::read_to_string(&path)
            .map_err(|e| anyhow!("--token {name}: cannot read {}: {e}", path.display()))?
    };
    let token = token.trim();
    if token.is_empty() {
        bail!("--token {name}: the token is empty");
    }
    Ok((name.trim().to_owned(), SecretString::new(token)))
}

#[derive(Subcommand)]
enum GatewayCmd {
    /// Keys clients send as `Authorization: Bearer KEY` (only a hash is stored)
    #[command(subcommand)]
    Keys(KeysCmd),
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Create a key and print it once
    Create {
        name: String,
        /// Requests per minute
        #[arg(long, value_name = "N")]
        rate_per_min: Option<u32>,
        /// Spend per UTC day, in USD
        #[arg(long, value_name = "USD")]
        daily_budget: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: requests with it get 401 within 2 s
    Revoke { name: String },
}

#[derive(Subcommand)]
pub(crate) enum RoutesCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        route: String,
        #[arg(long)]
        json: bool,
    },
    /// Set one arm's weight; running gateways follow within 2 s
    SetWeight {
        route: String,
        arm: String,
        weight: f64,
    },
    /// Roll the route's canary back: its candidate takes no more traffic
    Rollback {
        route: String,
        #[arg(long, default_value = "by hand")]
        reason: String,
    },
    /// Promote the route's canary: the candidate takes all traffic and its prompt version
    /// becomes `production`
    Promote {
        route: String,
        #[arg(long, default_value = "by hand")]
        reason: String,
    },
    /// Load a route file into the store (the file is the whole truth)
    Load { file: PathBuf },
    /// Every route as a route file (TOML) on stdout
    Export,
}

#[derive(Subcommand)]
pub(crate) enum CanaryCmd {
    /// Each arm's live figures, the verdict with its evidence, and the canary's events
    Status {
        route: String,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn gateway(console: Console, args: GatewayArgs) -> Result<ExitCode> {
    match args.cmd {
        Some(GatewayCmd::Keys(cmd)) => {
            let code = keys(&console, cmd).await;
            console.close().await;
            return code;
        }
        None => {}
    }
    for arg in &args.tokens {
        let (name, token) = read_token(arg)?;
        console.use_token(&name, token).await.map_err(explain)?;
    }
    if let Some(file) = &args.config {
        let w = console.load_routes_file(file).await.map_err(explain)?;
        eprintln!(
            "routes from {}: {} written, {} unchanged, {} removed",
            file.display(),
            w.written.len(),
            w.unchanged.len(),
            w.removed.len()
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let console = Arc::new(console);
    let options = milc_gateway::Options {
        body_limit: args.body_limit,
        judge: !args.no_judge,
        ..Default::default()
    };
    let gw = milc_gateway::Gateway::start(console.clone(), listener, options)
        .await
        .map_err(explain)?;
    println!(
        "milc gateway: OpenAI-compatible gateway at {}",
        gw.base_url()
    );
    std::io::stdout().flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("milc gateway: draining in-flight requests and the call log");
    gw.stop().await;
    console.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn keys(console: &Console, cmd: KeysCmd) -> Result<ExitCode> {
    match cmd {
        KeysCmd::Create {
            name,
            rate_per_min,
            daily_budget,
            json,
        } => {
            let k = console
                .create_gateway_key(&name, rate_per_min, daily_budget.as_deref())
                .await
                .map_err(explain)?;
            if json {
                output::json(&serde_json::json!({"key": k.key, "secret": k.secret.expose()}))?;
            } else {
                println!("{}", k.secret.expose());
                eprintln!("gateway key '{name}' created: shown once, only its hash is stored");
            }
        }
        KeysCmd::List { json } => {
            let keys = console.gateway_keys().await?;
            output::emit(json, &keys, |k| keys_table(k))?;
        }
        KeysCmd::Revoke { name } => {
            console.revoke_gateway_key(&name).await.map_err(explain)?;
            eprintln!("gateway key '{name}' revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn keys_table(keys: &[GatewayKey]) -> String {
    let mut out = String::from("NAME\tPREFIX\tRATE/MIN\tDAILY BUDGET\tSTATUS\n");
    for k in keys {
        out.push_str(&format!(
            "{}\t{}…\t{}\t{}\t{}\n",
            k.name,
            k.prefix,
            k.rate_per_min.map_or("-".into(), |r| r.to_string()),
            k.daily_budget
                .map_or("-".into(), |c| format!("${}", c.usd())),
            if k.revoked_ms.is_some() {
                "revoked"
            } else {
                "active"
            }
        ));
    }
    out
}

fn route_text(r: &Route) -> String {
    let mut out = r.spec.model.clone();
    if let Some(s) = &r.spec.sticky {
        out.push_str(&format!("  (sticky: {s})"));
    }
    if let (Some(c), Some(state)) = (&r.spec.canary, r.canary_state) {
        out.push_str(&format!(
            "  canary {} vs {}: {}",
            c.candidate,
            c.baseline,
            state.as_str()
        ));
    }
    out.push('\n');
    let total: f64 = r.spec.arms.iter().map(|a| a.weight).sum();
    for a in &r.spec.arms {
        out.push_str(&format!(
            "  {:<12} {:>6.1} %  {}{}\n",
            a.name,
            if total > 0.0 {
                100.0 * a.weight / total
            } else {
                0.0
            },
            a.endpoint,
            a.prompt
                .as_ref()
                .map_or(String::new(), |p| format!("  prompt {p}"))
        ));
    }
    out
}

pub(crate) async fn routes(console: &Console, cmd: RoutesCmd) -> Result<ExitCode> {
    let who = console.author();
    match cmd {
        RoutesCmd::List { json } => {
            let routes = console.routes().await?;
            output::emit(json, &routes, |rs| rs.iter().map(route_text).collect())?;
        }
        RoutesCmd::Show { route, json } => {
            let r = console.route(&route).await.map_err(explain)?;
            output::emit(json, &r, route_text)?;
        }
        RoutesCmd::SetWeight { route, arm, weight } => {
            let r = console
                .set_weight(&route, &arm, weight)
                .await
                .map_err(explain)?;
            print!("{}", route_text(&r));
        }
        RoutesCmd::Rollback { route, reason } => {
            let r = console
                .rollback(&route, &who, &reason)
                .await
                .map_err(explain)?;
            print!("{}", route_text(&r));
        }
        RoutesCmd::Promote { route, reason } => {
            let r = console
                .promote(&route, &who, &reason)
                .await
                .map_err(explain)?;
            print!("{}", route_text(&r));
        }
        RoutesCmd::Load { file } => {
            let w = console.load_routes_file(&file).await.map_err(explain)?;
            output::json(&w)?;
        }
        RoutesCmd::Export => {
            let text = console.export_routes().await?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn canary(console: &Console, cmd: CanaryCmd) -> Result<ExitCode> {
    match cmd {
        CanaryCmd::Status { route, json } => {
            let st = console.canary_status(&route).await.map_err(explain)?;
            output::emit(json, &st, status_text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn status_text(st: &CanaryStatus) -> String {
    let mut out = route_text(&st.route);
    out.push_str("\nARM\tCALLS\tERRORS\tP50 MS\tP95 MS\tTTFT P50\tTTFT P95\tCOST/CALL\tFEEDBACK\n");
    for a in &st.arms {
        out.push_str(&format!(
            "{}\t{}\t{:.1} %\t{}\t{}\t{}\t{}\t{}\t{}\n",
            a.arm,
            a.calls,
            100.0 * a.error_rate,
            ms(a.p50_ms),
            ms(a.p95_ms),
            ms(a.ttft_p50_ms),
            ms(a.ttft_p95_ms),
            a.cost_per_call.map_or("-".into(), |c| format!(
                "${}{}",
                c.usd(),
                if c.source == milc_api::UsageSource::Estimated {
                    " (est.)"
                } else {
                    ""
                }
            )),
            a.feedback_mean
                .map_or("-".into(), |m| format!("{m:.2} (n={})", a.feedback_n)),
        ));
    }
    if let Some(v) = &st.verdict {
        out.push_str(&format!(
            "\nverdict: {} — {}\n",
            v.decision.as_str(),
            v.reason
        ));
        out.push_str(&format!(
            "  split: χ² {:.2}, p {:.4}{}\n",
            v.srm.chi2,
            v.srm.p,
            if v.srm.flagged { " (broken)" } else { "" }
        ));
        for e in &v.guardrails {
            out.push_str(&format!(
                "  {}: baseline {:.4}, candidate {:.4}, limit {:.4}, always-valid p {:.4}{}\n",
                e.metric,
                e.baseline,
                e.candidate,
                e.limit,
                e.p,
                if e.breached { "  BREACHED" } else { "" }
            ));
        }
        if let Some(q) = &v.quality {
            out.push_str(&format!(
                "  feedback: baseline {:.3} (n={}), candidate {:.3} (n={}), difference {:+.3} [{:+.3}, {:+.3}]\n",
                q.baseline, q.n_baseline, q.candidate, q.n_candidate, q.diff, q.lo, q.hi
            ));
        }
    }
    if !st.events.is_empty() {
        out.push_str("\nevents:\n");
        for e in &st.events {
            out.push_str(&format!(
                "  {}  {}  by {}: {}\n",
                crate::format::local_time(e.at_ms),
                e.kind,
                e.actor,
                e.reason
            ));
        }
    }
    out
}
