//! `Console`: the one place shells (the CLI, the desktop window) call. Each
//! method is a whole user action — validate, touch the keyring and the store, call the endpoint,
//! log the call — so every shell behaves the same. The actions live beside their domain's storage
//! (`endpoints/actions.rs`, `prompts/actions.rs`, …); this file holds what they share.

use std::path::{Path, PathBuf};
use std::time::Duration;

use milc_api::Endpoint;
use milc_llm::client::{Client, Target};
use milc_llm::secrets::{SecretString, Secrets};
use tokio::sync::OnceCell;

use crate::calllog::CallLog;
use crate::db::{self, Store};
use crate::Error;

/// Name of the endpoint a new database starts with.
pub const SIMULATOR_ENDPOINT: &str = "Local simulator";

pub struct Console {
    pub(crate) store: Store,
    pub(crate) log: CallLog,
    pub(crate) secrets: Secrets,
    pub(crate) client: Client,
    embedded_sim: OnceCell<milc_sim::SimHandle>,
    /// Bumped by every change to what a gateway serves (routes, weights, keys), so gateways
    /// in this process reload at once; others notice within their polling interval.
    pub(crate) gateway_changed: tokio::sync::watch::Sender<u64>,
    /// This console as the owner of the runs it runs: `user@host (pid N, console XXXX)`.
    pub(crate) runner: String,
    /// Who this console's writes are recorded as: the OS user unless set (`--as`).
    author: std::sync::RwLock<String>,
    /// Upstream tokens given to this process (a headless gateway's, from a file or an
    /// environment variable), by endpoint name: used before the keyring, kept in memory only.
    tokens: std::sync::RwLock<std::collections::HashMap<String, SecretString>>,
    /// Which store this is, as the window shows it.
    pub(crate) place: milc_api::workspace::Store,
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "milc", "milc-console")
}

/// Where log files go when `MILC_LOG_DIR` does not say otherwise.
pub fn default_log_dir() -> PathBuf {
    project_dirs().map_or_else(
        || PathBuf::from("logs"),
        |d| d.data_local_dir().join("logs"),
    )
}

/// The desktop's own settings (which store it opens, who you are), in the OS config directory.
pub fn default_config_dir() -> PathBuf {
    project_dirs().map_or_else(|| PathBuf::from("."), |d| d.config_dir().to_path_buf())
}

/// The database file used when neither `--db` nor `MILC_DB` says otherwise.
pub fn default_db_path() -> PathBuf {
    project_dirs().map_or_else(
        || PathBuf::from("milc.db"),
        |d| d.data_dir().join("milc.db"),
    )
}

impl Console {
    /// Who this console's writes are recorded as (prompt versions, label moves, recomputed
    /// costs, canary moves): the OS user unless [`Console::set_author`] said otherwise.
    pub fn author(&self) -> String {
        self.author.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// Records this console's writes as `name` (the CLI's `--as`), which must not be blank.
    pub fn set_author(&self, name: &str) -> Result<(), Error> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid("as", "name who is acting"));
        }
        if let Ok(mut a) = self.author.write() {
            *a = name.to_owned();
        }
        Ok(())
    }

    /// Opens (creating if needed) the database at `path`. A new database starts with the
    /// built-in simulator as its endpoint, so a first run works with no credentials.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let place = milc_api::workspace::Store::Local {
            path: path.display().to_string(),
        };
        Self::on(Store::open(path).await?, place).await
    }

    /// The console over an open store (`place` says which, for the window).
    pub(crate) async fn on(store: Store, place: milc_api::workspace::Store) -> Result<Self, Error> {
        let scope = db::meta_get_or_init(
            &mut store.read().await?,
            "install_id",
            &format!("{:016x}", rand::random::<u64>()),
        )
        .await?;
        let console = Self {
            log: CallLog::start(&store).await?,
            store,
            secrets: Secrets::new(scope),
            client: Client::new(),
            embedded_sim: OnceCell::new(),
            gateway_changed: tokio::sync::watch::Sender::new(0),
            runner: runner(),
            author: std::sync::RwLock::new(os_user()),
            tokens: Default::default(),
            place,
        };
        console.seed_simulator().await?;
        // Old bodies go at open wherever this login may delete them (a workspace's viewers
        // and raters leave that to its admins).
        if let Err(e) = console.apply_retention().await {
            if !e.is_denied() {
                return Err(e);
            }
        }
        console.start_export().await?;
        Ok(console)
    }

    /// Sends `token` to endpoint `endpoint` from this process, instead of the keyring's: how a
    /// headless gateway (no keyring, no desktop session) is given its upstream tokens. Kept
    /// in memory only; nothing is stored.
    pub async fn use_token(&self, endpoint: &str, token: SecretString) -> Result<(), Error> {
        self.endpoint(endpoint).await?;
        if let Ok(mut t) = self.tokens.write() {
            t.insert(endpoint.to_owned(), token);
        }
        Ok(())
    }

    /// The store and the call log themselves, for tests and benchmarks that check what is on
    /// disk (shells go through actions only).
    #[cfg(feature = "test-support")]
    pub fn store(&self) -> &Store {
        &self.store
    }

    #[cfg(feature = "test-support")]
    pub fn call_log(&self) -> &CallLog {
        &self.log
    }

    /// The HTTP client every call goes through (the gateway opens its upstreams with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Waits until every call logged so far has been evaluated for alerts (and exported, when
    /// export is on, within a few seconds), then closes the database: what a command that exits
    /// does last.
    pub async fn close(&self) {
        self.otel_flush().await;
        self.log.flush().await;
        self.store.close().await;
    }

    pub(crate) async fn target(&self, ep: &Endpoint) -> Result<Target, Error> {
        let base_url = if ep.simulator {
            self.embedded_sim_url().await?
        } else {
            ep.spec.base_url.clone()
        };
        let given = self
            .tokens
            .read()
            .ok()
            .and_then(|t| t.get(&ep.spec.name).cloned());
        let token = match given {
            Some(t) => Some(t),
            None if ep.has_token => self.secrets.get(ep.id).await?,
            None => None,
        };
        Ok(Target {
            base_url,
            model: ep.spec.model.clone(),
            token,
            headers: ep.spec.headers.clone(),
            timeout: Duration::from_millis(ep.spec.timeout_ms),
            max_retries: ep.spec.max_retries,
        })
    }

    /// Starts the built-in simulator on a free loopback port the first time it is needed.
    async fn embedded_sim_url(&self) -> Result<String, Error> {
        let sim = self
            .embedded_sim
            .get_or_try_init(|| async {
                milc_sim::start(([127, 0, 0, 1], 0).into(), milc_sim::SimConfig::realistic()).await
            })
            .await
            .map_err(|e| {
                Error::invalid(
                    "endpoint",
                    format!("cannot start the built-in simulator: {e}"),
                )
            })?;
        Ok(sim.base_url())
    }
}

/// The OS user, who a console's writes are recorded as unless a shell says otherwise (the login
/// name from the environment, else the password database entry of the process's user).
pub(crate) fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(passwd_name)
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(unix)]
fn passwd_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid).then(|| name.to_owned())
        })
}

#[cfg(not(unix))]
fn passwd_name() -> Option<String> {
    None
}

/// A console, as a run's owner: `user@host (pid N, console XXXX)` (two consoles of one process
/// are two runners).
pub(crate) fn runner() -> String {
    format!(
        "{}@{} (pid {}, console {:04x})",
        os_user(),
        host(),
        std::process::id(),
        rand::random::<u16>()
    )
}

/// This machine's name, as a runner shows it.
pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".into())
}
