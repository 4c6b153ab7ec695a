//! OpenTelemetry export of the call log: every call any source logs, as a span sent over OTLP
//! (HTTP/protobuf) to the collector this database names. The settings and their checks are
//! here (`storage.rs` holds the SQL), header values go to the OS keyring; the exporter task is
//! `export.rs`, fed by the call log's tap.

pub mod export;
pub mod storage;

use std::time::Duration;

use milc_api::otel::{OtelChange, OtelSettings, OtelStatus};
use milc_api::TokenChange;
use milc_llm::SecretString;

use crate::db::now_ms;
use crate::{Console, Error};

/// How long closing a console waits for the last spans to go out.
const FLUSH_WITHIN: Duration = Duration::from_secs(5);

/// Headers the exporter sets itself or HTTP forbids a caller to set.
const RESERVED: [&str; 6] = [
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "transfer-encoding",
    "connection",
];

/// Where spans are POSTed for a collector typed as `endpoint`: `{endpoint}/v1/traces`, or the
/// URL as it is when it already ends with `/v1/traces`. Refuses anything but an http(s) URL
/// with a host, and credentials in the URL (they belong in a header, kept in the keyring).
pub fn traces_url(endpoint: &str) -> Result<String, Error> {
    let invalid = |m: &str| Error::invalid("endpoint", m);
    let mut url = reqwest::Url::parse(endpoint.trim()).map_err(|e| {
        invalid(&format!(
            "not a URL ({e}); expected something like http://localhost:4318"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            "an http:// or https:// URL with a host, like http://localhost:4318",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL would be stored in the database; send them as a header (--header authorization=…), which is kept in the OS keyring",
        ));
    }
    url.set_fragment(None);
    if !url.path().trim_end_matches('/').ends_with("/v1/traces") {
        url.path_segments_mut()
            .map_err(|()| invalid("a URL that can have a path"))?
            .pop_if_empty()
            .extend(["v1", "traces"]);
    }
    Ok(url.to_string())
}

/// A header name as stored (lower case), checked.
fn header_name(name: &str) -> Result<String, Error> {
    let lower = name.trim().to_ascii_lowercase();
    let field = format!("headers.{lower}");
    if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
        return Err(Error::invalid(field, "not a valid HTTP header name"));
    }
    if RESERVED.contains(&lower.as_str()) {
        return Err(Error::invalid(
            field,
            "set by the exporter itself; choose another header",
        ));
    }
    Ok(lower)
}

fn settings(s: storage::Settings) -> OtelSettings {
    OtelSettings {
        traces_url: traces_url(&s.endpoint).unwrap_or_else(|_| s.endpoint.clone()),
        endpoint: s.endpoint,
        headers: s.headers.0,
        updated_ms: s.updated_ms,
    }
}

impl Console {
    /// Starts this console's exporter (once, when the database is opened): it reads the
    /// settings now, so the first call made is already exported, then runs on its own task.
    pub(crate) async fn start_export(&self) -> Result<(), Error> {
        let tap = self.log.tap();
        let Some(queue) = tap.take_receiver() else {
            return Ok(());
        };
        let mut exporter = export::Exporter::new(
            self.store.clone(),
            self.secrets.clone(),
            tap.state().clone(),
        );
        exporter.load().await?;
        tokio::spawn(exporter.run(queue));
        Ok(())
    }

    /// This database's export settings (`None`: export is off).
    pub async fn otel_get(&self) -> Result<Option<OtelSettings>, Error> {
        Ok(storage::get(&mut self.store.read().await?)
            .await?
            .map(settings))
    }

    /// Sets where this database's calls are exported, and the headers sent with them: values
    /// go to the OS keyring, names to the database. Headers not in `change` are removed. Every
    /// process using the database picks the change up (this one at once, others within a few
    /// seconds).
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn otel_set(&self, change: &OtelChange) -> Result<OtelSettings, Error> {
        let endpoint = change.endpoint.trim();
        traces_url(endpoint)?;
        let current = self.otel_get().await?;
        let stored: Vec<String> = current.map(|s| s.headers).unwrap_or_default();
        let mut names = Vec::new();
        let mut values = Vec::new();
        for (name, value) in &change.headers {
            let name = header_name(name)?;
            if names.contains(&name) || values.iter().any(|(n, _)| n == &name) {
                return Err(Error::invalid(
                    format!("headers.{name}"),
                    "named twice (header names are case-insensitive)",
                ));
            }
            match value {
                TokenChange::Replace(v) => {
                    let v = v.trim();
                    if v.is_empty() || reqwest::header::HeaderValue::from_str(v).is_err() {
                        return Err(Error::invalid(
                            format!("headers.{name}"),
                            "a header value: printable text on one line",
                        ));
                    }
                    values.push((name, SecretString::new(v)));
                }
                TokenChange::Keep if stored.contains(&name) => names.push(name),
                TokenChange::Keep => {
                    return Err(Error::invalid(
                        format!("headers.{name}"),
                        "has no stored value to keep; give its value",
                    ))
                }
                TokenChange::Remove => {}
            }
        }
        // Values first, so a process that sees the new settings finds them in the keyring.
        for (name, value) in &values {
            self.secrets.set_otel_header(name, value).await?;
        }
        names.extend(values.into_iter().map(|(n, _)| n));
        names.sort();
        let saved = storage::put(&mut self.store.read().await?, endpoint, &names, now_ms()).await?;
        for gone in stored.iter().filter(|n| !names.contains(n)) {
            self.secrets.delete_otel_header(gone).await?;
        }
        let state = self.log.tap().state();
        state.set_on(true);
        state.settings_changed();
        self.noted("otel.set", &change.endpoint).await?;
        Ok(settings(saved))
    }

    /// Turns the export off for this database and removes its header values from the keyring.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn otel_clear(&self) -> Result<(), Error> {
        let current = self.otel_get().await?;
        storage::clear(&mut self.store.read().await?).await?;
        let state = self.log.tap().state();
        state.set_on(false);
        state.settings_changed();
        for name in current.map(|s| s.headers).unwrap_or_default() {
            self.secrets.delete_otel_header(&name).await?;
        }
        self.noted("otel.clear", "export").await
    }

    /// The settings, and how many spans this process exported and dropped since it opened the
    /// database.
    pub async fn otel_status(&self) -> Result<OtelStatus, Error> {
        let settings = self.otel_get().await?;
        let state = self.log.tap().state();
        let (exported, dropped, last_error) = state.counts();
        Ok(OtelStatus {
            active: settings.is_some() && state.is_on(),
            settings,
            exported,
            dropped,
            last_error,
        })
    }

    /// Sends the spans waiting now and waits until the collector answered (or gave up): what a
    /// command does before it exits. At once when nothing is exported.
    pub async fn otel_flush(&self) {
        self.log.tap().flush(FLUSH_WITHIN).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_is_added_once_and_credentials_stay_out_of_the_url() {
        let url = |s| traces_url(s).map_err(|e| e.to_string());
        assert_eq!(
            url("http://localhost:4318").unwrap(),
            "http://localhost:4318/v1/traces"
        );
        assert_eq!(
            url("https://otel.example.com/ingest/").unwrap(),
            "https://otel.example.com/ingest/v1/traces"
        );
        assert_eq!(
            url("http://127.0.0.1:4318/v1/traces").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            url("http://c:4318/v1/traces/").unwrap(),
            "http://c:4318/v1/traces/"
        );
        assert!(url("localhost:4318").unwrap_err().starts_with("endpoint:"));
        assert!(url("ftp://x").is_err());
        let creds = url("https://user:secret@otel.example.com").unwrap_err();
        assert!(creds.contains("header"), "{creds}");
        assert!(!creds.contains("secret@"));
    }

    #[test]
    fn header_names_are_lower_case_and_the_exporters_own_are_refused() {
        assert_eq!(header_name(" Authorization ").unwrap(), "authorization");
        assert!(header_name("Content-Type").is_err());
        assert!(header_name("bad header").is_err());
    }
}
