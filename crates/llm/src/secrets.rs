//! API tokens (and the values of OpenTelemetry collector headers) in the OS keyring (Secret
//! Service on Linux, Keychain on macOS, Credential Manager on Windows). A token is read from the
//! keyring just before a request and dropped after it; it is never written to SQLite, logs or any
//! file the app writes, and `Debug` never prints it.

use std::fmt;

/// A secret string whose `Debug` prints `<redacted>`. It has no `Display` and no `Serialize`, so
/// it cannot end up in a log line or a JSON file by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that needs it: the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the OS keyring is not available ({0}); on Linux a Secret Service provider such as gnome-keyring must be running and unlocked")]
    Unavailable(String),
    #[error("the OS keyring refused the operation: {0}")]
    Keyring(String),
}

/// The keyring entries of one database. Entries are keyed by an id that is random per database
/// plus the endpoint id (or the OpenTelemetry header name), so two databases (say, a test's and
/// yours) never share a token.
#[derive(Clone, Debug)]
pub struct Secrets {
    service: String,
    scope: String,
}

pub const KEYRING_SERVICE: &str = "milc-console";

impl Secrets {
    pub fn new(scope: impl Into<String>) -> Self {
        Self {
            service: KEYRING_SERVICE.to_owned(),
            scope: scope.into(),
        }
    }

    fn entry(&self, endpoint_id: i64) -> Result<keyring::Entry, SecretError> {
        self.entry_for(&self.account(endpoint_id))
    }

    fn entry_for(&self, account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, account).map_err(map_err)
    }

    /// The keyring account name of an endpoint's token (not secret).
    pub fn account(&self, endpoint_id: i64) -> String {
        format!("{}/endpoint/{endpoint_id}", self.scope)
    }

    /// The per-database install id that scopes this store's accounts (not secret).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    // The keyring crate's calls block on D-Bus / the OS: run them off the async executor.

    pub async fn set(&self, endpoint_id: i64, token: &SecretString) -> Result<(), SecretError> {
        let entry = self.entry(endpoint_id)?;
        let token = token.clone();
        blocking(move || entry.set_password(token.expose()).map_err(map_err)).await
    }

    pub async fn get(&self, endpoint_id: i64) -> Result<Option<SecretString>, SecretError> {
        get(self.entry(endpoint_id)?).await
    }

    /// Removes the token; removing a token that is not there is not an error.
    pub async fn delete(&self, endpoint_id: i64) -> Result<(), SecretError> {
        delete(self.entry(endpoint_id)?).await
    }

    /// The keyring account name of the value of an OpenTelemetry collector header (not
    /// secret): one per header name and database.
    pub fn otel_header_account(&self, name: &str) -> String {
        format!("{}/otel-header/{name}", self.scope)
    }

    pub async fn set_otel_header(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        let entry = self.entry_for(&self.otel_header_account(name))?;
        let value = value.clone();
        blocking(move || entry.set_password(value.expose()).map_err(map_err)).await
    }

    pub async fn otel_header(&self, name: &str) -> Result<Option<SecretString>, SecretError> {
        get(self.entry_for(&self.otel_header_account(name))?).await
    }

    /// Removes a header's value; one that is not there is not an error.
    pub async fn delete_otel_header(&self, name: &str) -> Result<(), SecretError> {
        delete(self.entry_for(&self.otel_header_account(name))?).await
    }
}

/// The keyring account of a team workspace's database password: the login it belongs to, as
/// `user@host:port/database` (not secret).
fn workspace_account(login: &str) -> String {
    format!("workspace/{login}")
}

/// A team workspace's database password for `login` (`user@host:port/database`), kept in the
/// OS keyring by the desktop, never in a file or the database.
pub async fn workspace_password(login: &str) -> Result<Option<SecretString>, SecretError> {
    get(keyring::Entry::new(KEYRING_SERVICE, &workspace_account(login)).map_err(map_err)?).await
}

pub async fn set_workspace_password(
    login: &str,
    password: &SecretString,
) -> Result<(), SecretError> {
    let entry = keyring::Entry::new(KEYRING_SERVICE, &workspace_account(login)).map_err(map_err)?;
    let password = password.clone();
    blocking(move || entry.set_password(password.expose()).map_err(map_err)).await
}

async fn get(entry: keyring::Entry) -> Result<Option<SecretString>, SecretError> {
    blocking(move || match entry.get_password() {
        Ok(p) => Ok(Some(SecretString(p))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(map_err(e)),
    })
    .await
}

async fn delete(entry: keyring::Entry) -> Result<(), SecretError> {
    blocking(move || match entry.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(map_err(e)),
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, SecretError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SecretError::Keyring(format!("keyring task failed: {e}")))?
}

fn map_err(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            SecretError::Unavailable(inner.to_string())
        }
        other => SecretError::Keyring(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let s = SecretString::new("canary-7f3a9c");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert!(!format!("{:?}", Some(&s)).contains("canary"));
    }
}
