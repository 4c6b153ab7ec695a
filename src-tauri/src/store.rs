//! Which store the window opens, and the desktop's own settings: `MILC_DB` (a file, or a
//! `postgres://` server with `MILC_WORKSPACE`) when set and not empty; else the team workspace
//! chosen in the window (its connection string and name in `desktop.json` in the OS config
//! directory, its password in the OS keyring, never in a file); else the local file. A
//! workspace that cannot be opened leaves the window on the local file, saying why.

use std::path::PathBuf;

use milc_core::{workspace, Console, Error, SecretString};
use serde::{Deserialize, Serialize};

/// What the window keeps between starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// A team workspace's server, without a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Whom writes are recorded as (the OS user when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

fn path() -> PathBuf {
    milc_core::default_config_dir().join("desktop.json")
}

pub fn load() -> Settings {
    std::fs::read(path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save(s: &Settings) -> Result<(), Error> {
    let p = path();
    let bad = |e: std::io::Error| Error::invalid(p.display().to_string(), e.to_string());
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(bad)?;
    }
    let text = serde_json::to_vec_pretty(s).expect("settings serialize");
    std::fs::write(&p, text).map_err(bad)
}

/// Opens team workspace `name` on `url` with the password the keyring keeps for its login.
pub async fn open_team(url: &str, name: &str) -> Result<Console, Error> {
    let login = workspace::login_of(url)?;
    let password = milc_core::workspace_password(&login).await.ok().flatten();
    Console::open_workspace_with(url, name, password.as_ref()).await
}

/// Checks that workspace `name` on `url` opens with `password`, then keeps the choice (the
/// password in the keyring) for the window's next start.
pub async fn choose_team(
    url: &str,
    name: &str,
    password: Option<SecretString>,
) -> Result<(), Error> {
    let userinfo = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(user, _)| user);
    if userinfo.is_some_and(|u| u.contains(':')) {
        return Err(Error::invalid(
            "url",
            "leave the password out of the connection string and type it in the password \
             field: it goes to the OS keyring, never to a file",
        ));
    }
    let console = match &password {
        Some(p) => Console::open_workspace_with(url, name, Some(p)).await?,
        None => open_team(url, name).await?,
    };
    console.close().await;
    if let Some(p) = &password {
        milc_core::set_workspace_password(&workspace::login_of(url)?, p).await?;
    }
    let mut s = load();
    s.url = Some(url.to_owned());
    s.workspace = Some(name.to_owned());
    save(&s)
}

/// Goes back to the local file at the next start.
pub fn choose_local() -> Result<(), Error> {
    let mut s = load();
    s.url = None;
    s.workspace = None;
    save(&s)
}

/// The console the window opens, and why it is not the workspace it was set to, if so.
pub async fn open() -> Result<(Console, Option<String>), Error> {
    let settings = load();
    let db = std::env::var_os("MILC_DB").filter(|v| !v.is_empty());
    let (console, warning) = if let Some(db) = db {
        let db = db.to_string_lossy().into_owned();
        let console = if workspace::is_url(&db) {
            let name = std::env::var("MILC_WORKSPACE").unwrap_or_else(|_| "main".to_owned());
            open_team(&db, &name).await?
        } else {
            Console::open(std::path::Path::new(&db)).await?
        };
        (console, None)
    } else if let (Some(url), Some(name)) = (&settings.url, &settings.workspace) {
        match open_team(url, name).await {
            Ok(c) => (c, None),
            Err(e) => {
                let why = format!(
                    "team workspace '{name}' on {} did not open, so this is the local file: {e}",
                    milc_core::db::redacted_url(url)
                );
                tracing::warn!("{why}");
                (
                    Console::open(&milc_core::default_db_path()).await?,
                    Some(why),
                )
            }
        }
    } else {
        (Console::open(&milc_core::default_db_path()).await?, None)
    };
    if let Some(a) = &settings.author {
        console.set_author(a)?;
    }
    Ok((console, warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the real keyring and a PostgreSQL server (scripts/test provides both).
    #[tokio::test]
    async fn a_chosen_workspace_keeps_its_password_in_the_keyring_and_nothing_secret_in_a_file() {
        let url = std::env::var("MILC_TEST_PG").expect("run under scripts/with-postgres");
        let config = tempfile::tempdir().unwrap();
        // This test alone reads the settings, from a directory of its own.
        std::env::set_var("XDG_CONFIG_HOME", config.path());
        let name = format!("desk{}", std::process::id());
        workspace::Workspace::init(&url, &name).await.unwrap();
        const CANARY: &str = "CANARY_workspace_password_4b1d";

        let with_password = url.replacen("milc@", &format!("milc:{CANARY}@"), 1);
        let refused = choose_team(&with_password, &name, None).await.unwrap_err();
        assert!(refused.to_string().contains("keyring"), "{refused}");
        let missing = choose_team(&url, "nobody_here", None).await.unwrap_err();
        assert!(
            missing.to_string().contains("no workspace 'nobody_here'"),
            "{missing}"
        );
        assert_eq!(
            load(),
            Settings::default(),
            "nothing kept of what did not open"
        );

        choose_team(&url, &name, Some(SecretString::new(CANARY)))
            .await
            .unwrap();
        let saved = load();
        assert_eq!(saved.url.as_deref(), Some(url.as_str()));
        assert_eq!(saved.workspace.as_deref(), Some(name.as_str()));
        let file = std::fs::read_to_string(path()).unwrap();
        assert!(
            !file.contains(CANARY),
            "the password reached {}",
            path().display()
        );
        let kept = milc_core::workspace_password(&workspace::login_of(&url).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.expose(), CANARY);

        // The next start opens the workspace (with the keyring's password).
        let (console, warning) = open().await.unwrap();
        assert_eq!(warning, None);
        let id = console.identity().await.unwrap();
        assert!(
            matches!(&id.store, milc_api::workspace::Store::Team { workspace, .. } if *workspace == name),
            "{id:?}"
        );
        console.close().await;
        choose_local().unwrap();
        assert_eq!(load().url, None);
    }
}
