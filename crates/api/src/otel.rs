//! OpenTelemetry export of the call log (OTLP over HTTP/protobuf): the per-database settings,
//! what a form sends to change them, and the exporter's counts.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TokenChange;

/// Where this database's calls go as spans. Header values (an `Authorization` for the
/// collector, say) live in the OS keyring: only their names are stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtelSettings {
    /// The collector as typed: a base URL (`http://localhost:4318`) or the full traces URL.
    pub endpoint: String,
    /// Where spans are POSTed: `{endpoint}/v1/traces`, or `endpoint` if it already ends so.
    pub traces_url: String,
    /// Names of the headers sent with each export (lower case), values in the keyring.
    pub headers: Vec<String>,
    pub updated_ms: i64,
}

/// What a form or `milc otel set` sends. Headers not named here are removed; a header's
/// value is `Replace` (stored in the keyring), `Keep` (the value already stored for that name)
/// or `Remove`. `Debug` never prints a value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtelChange {
    pub endpoint: String,
    #[serde(default)]
    pub headers: BTreeMap<String, TokenChange>,
}

impl fmt::Debug for OtelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // TokenChange's own Debug already hides the value.
        f.debug_struct("OtelChange")
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers)
            .finish()
    }
}

/// The export as this process runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtelStatus {
    /// The stored settings (`None`: export is off for this database).
    pub settings: Option<OtelSettings>,
    /// Whether this process is exporting now (settings present and their header values read).
    pub active: bool,
    /// Spans the collector accepted since this process opened the database.
    pub exported: u64,
    /// Spans given up since then: the queue was full, the collector did not answer or refused
    /// them. Calls are never slowed or failed by the export.
    pub dropped: u64,
    /// Why the last export failed, if the most recent one did.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_never_shows_in_debug_and_travels_as_a_token_change() {
        let change = OtelChange {
            endpoint: "http://127.0.0.1:4318".into(),
            headers: [(
                "authorization".to_owned(),
                TokenChange::Replace("Bearer canary-otel-91".into()),
            )]
            .into(),
        };
        assert!(!format!("{change:?}").contains("canary"));
        let wire = serde_json::to_value(&change).unwrap();
        assert_eq!(
            wire["headers"]["authorization"],
            serde_json::json!({"action": "replace", "token": "Bearer canary-otel-91"})
        );
        let back: OtelChange =
            serde_json::from_value(serde_json::json!({"endpoint": "http://x:4318"})).unwrap();
        assert!(back.headers.is_empty());
    }
}
