//! Endpoints: checking one as a user typed it (naming the field that is wrong), its table and
//! its actions.

mod actions;
pub mod storage;

use milc_api::EndpointSpec;
use reqwest::header::{HeaderName, HeaderValue};

use crate::Error;

/// Base URL of the built-in simulator, started inside the process on first use.
pub const EMBEDDED_SIM_URL: &str = "sim://embedded";

/// Header names that carry credentials: a token belongs in the OS keyring, not in a header field
/// that is stored in the database.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
];

/// Returns the spec with its base URL normalised, or the first field that is wrong.
pub fn validate(mut spec: EndpointSpec) -> Result<EndpointSpec, Error> {
    spec.name = spec.name.trim().to_owned();
    if spec.name.is_empty()
        || spec.name.chars().count() > 80
        || spec.name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "name",
            "give a name of 1 to 80 printable characters",
        ));
    }
    spec.base_url = normalize_url(spec.base_url.trim())?;
    spec.model = spec.model.trim().to_owned();
    if spec.model.is_empty() {
        return Err(Error::invalid(
            "model",
            "give the model id the endpoint serves, e.g. meta/llama-3.3-70b-instruct",
        ));
    }
    for (k, v) in &spec.headers {
        let field = format!("headers.{k}");
        if HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(Error::invalid(field, "is not a valid HTTP header name"));
        }
        if SECRET_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(Error::invalid(field, "carries a credential: store the token in the OS keyring instead (milc endpoints add … --token-stdin)"));
        }
        if HeaderValue::from_str(v).is_err() {
            return Err(Error::invalid(
                field,
                "has a value that cannot be sent in an HTTP header",
            ));
        }
    }
    if spec.timeout_ms == 0 || spec.timeout_ms > 3_600_000 {
        return Err(Error::invalid(
            "timeout_ms",
            "must be between 1 ms and one hour",
        ));
    }
    if spec.max_retries > 10 {
        return Err(Error::invalid("max_retries", "must be at most 10"));
    }
    crate::redact::Redactor::for_policy(&spec.redaction, "redaction")?;
    if let Some(l) = &mut spec.lineage {
        l.base_model = l.base_model.trim().to_owned();
        l.tuned_on = l
            .tuned_on
            .take()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if l.base_model.is_empty() {
            return Err(Error::invalid(
                "lineage.base_model",
                "name the model this one was tuned from, e.g. meta/llama-3.1-8b-instruct",
            ));
        }
    }
    Ok(spec)
}

/// `http(s)://host[:port][/path]`, without a trailing slash; a bare host gets `/v1`, the prefix
/// every OpenAI-compatible server uses.
fn normalize_url(raw: &str) -> Result<String, Error> {
    if raw == EMBEDDED_SIM_URL {
        return Ok(raw.to_owned());
    }
    let url = reqwest::Url::parse(raw).map_err(|e| {
        Error::invalid(
            "base_url",
            format!(
                "'{raw}' is not a URL ({e}); write it like https://integrate.api.nvidia.com/v1"
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::invalid(
            "base_url",
            format!("'{raw}' must be an http:// or https:// URL with a host"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            "base_url",
            format!("'{raw}' must not have a query or fragment"),
        ));
    }
    let s = url.as_str().trim_end_matches('/').to_owned();
    Ok(if url.path() == "/" {
        format!("{s}/v1")
    } else {
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(spec: EndpointSpec) -> String {
        match validate(spec) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn urls_are_normalised() {
        let ok = |u: &str| validate(EndpointSpec::new("a", u, "m")).unwrap().base_url;
        assert_eq!(ok("http://127.0.0.1:8000"), "http://127.0.0.1:8000/v1");
        assert_eq!(
            ok("https://integrate.api.nvidia.com/v1/"),
            "https://integrate.api.nvidia.com/v1"
        );
        assert_eq!(ok(" http://host/openai/v1 "), "http://host/openai/v1");
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(EndpointSpec::new(" ", "http://h", "m")), "name");
        assert_eq!(
            field_of(EndpointSpec::new("a", "localhost:8000", "m")),
            "base_url"
        );
        assert_eq!(field_of(EndpointSpec::new("a", "ftp://h", "m")), "base_url");
        assert_eq!(field_of(EndpointSpec::new("a", "http://h", "")), "model");
        let mut s = EndpointSpec::new("a", "http://h", "m");
        s.headers.insert("Authorization".into(), "Bearer x".into());
        assert_eq!(field_of(s), "headers.Authorization");
        let mut s = EndpointSpec::new("a", "http://h", "m");
        s.headers.insert("bad header".into(), "x".into());
        assert_eq!(field_of(s), "headers.bad header");
        let mut s = EndpointSpec::new("a", "http://h", "m");
        s.timeout_ms = 0;
        assert_eq!(field_of(s), "timeout_ms");
    }
}
