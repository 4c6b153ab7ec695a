//! Turning whatever a server or the network says into a typed `CallError` that keeps the upstream
//! message. Tolerant by design: `error.code` may be a string, an integer or missing; older vLLM
//! answers `{"object":"error","message":…}`; proxies answer HTML or plain text.

use milc_api::{CallError, ErrorKind};
use serde_json::Value;

/// Longest upstream text kept in a message: enough to act on, short enough for a log row or a toast.
const MAX_MESSAGE: usize = 500;

/// The error of a non-2xx response.
pub fn from_response(status: u16, content_type: Option<&str>, body: &[u8]) -> CallError {
    let text = String::from_utf8_lossy(body);
    let (message, code) = match serde_json::from_str::<Value>(&text) {
        Ok(v) => json_message(&v),
        Err(_) => (non_json_message(content_type, &text), None),
    };
    let message = if message.is_empty() {
        format!("HTTP {status} {} with an empty body", reason(status))
    } else {
        message
    };
    CallError {
        kind: kind_for(status, code.as_deref()),
        message: clip(&message),
        status: Some(status),
    }
}

/// An `{"error": …}` event that arrived inside a 200 stream.
pub fn from_stream_event(v: &Value) -> CallError {
    let (message, code) = json_message(v);
    let status = v["error"]["code"]
        .as_u64()
        .filter(|c| (400..600).contains(c))
        .map(|c| c as u16);
    let kind = match status {
        Some(s) => kind_for(s, code.as_deref()),
        None if code.as_deref().is_some_and(|c| c.contains("rate_limit")) => ErrorKind::RateLimit,
        None => ErrorKind::Server,
    };
    let message = if message.is_empty() {
        "the server sent an error mid-stream".into()
    } else {
        message
    };
    CallError {
        kind,
        message: clip(&message),
        status,
    }
}

/// A failure below HTTP: bad URL, refused connection, TLS, timeout, broken body.
pub fn from_reqwest(e: &reqwest::Error) -> CallError {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_builder() {
        ErrorKind::Config
    } else if is_tls(e)
        || ["certificate", "tls", "ssl", "handshake"]
            .iter()
            .any(|w| lower.contains(w))
    {
        ErrorKind::Tls
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ErrorKind::Connection
    } else if e.is_decode() {
        ErrorKind::Protocol
    } else {
        ErrorKind::Connection
    };
    let message = match kind {
        ErrorKind::Timeout => format!("no answer within the endpoint's timeout ({chain})"),
        ErrorKind::Connection if lower.contains("refused") => {
            format!("connection refused: is the server running at this address? ({chain})")
        }
        _ => chain,
    };
    CallError {
        kind,
        message: clip(&message),
        status: None,
    }
}

/// Whether a rustls error is in `e`'s chain, including inside an `io::Error` (whose `source`
/// skips the error it wraps).
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if is_tls(inner) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

pub fn protocol(message: impl Into<String>) -> CallError {
    CallError {
        kind: ErrorKind::Protocol,
        message: clip(&message.into()),
        status: None,
    }
}

pub fn kind_for(status: u16, code: Option<&str>) -> ErrorKind {
    match status {
        401 => ErrorKind::Auth,
        403 => ErrorKind::Permission,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        409 => ErrorKind::Conflict,
        429 if code.is_some_and(|c| c.contains("insufficient_quota")) => ErrorKind::Quota,
        429 => ErrorKind::RateLimit,
        s if s >= 500 => ErrorKind::Server,
        _ => ErrorKind::BadRequest,
    }
}

/// (message, code-or-type) from an OpenAI-style or vLLM-style error body.
fn json_message(v: &Value) -> (String, Option<String>) {
    let err = &v["error"];
    let (message, code_field, type_field) = if err.is_object() {
        (err["message"].as_str(), &err["code"], &err["type"])
    } else if let Some(s) = err.as_str() {
        (Some(s), &v["code"], &v["type"])
    } else {
        (
            v["message"].as_str().or(v["detail"].as_str()),
            &v["code"],
            &v["type"],
        )
    };
    let code = match code_field {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    // A quota error may say so only in `type`; keep both so the kind can see it.
    let code = match (code, type_field.as_str()) {
        (Some(c), Some(t)) => Some(format!("{c} {t}")),
        (c, t) => c.or(t.map(str::to_owned)),
    };
    let message = message.map(str::to_owned).unwrap_or_else(|| {
        if v.is_object() {
            compact(&v.to_string())
        } else {
            String::new()
        }
    });
    (message, code)
}

fn non_json_message(content_type: Option<&str>, text: &str) -> String {
    let looks_html =
        content_type.is_some_and(|c| c.contains("html")) || text.trim_start().starts_with('<');
    if !looks_html {
        return compact(text);
    }
    let lower = text.to_ascii_lowercase();
    if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
        if a + 7 <= b {
            return format!("HTML page: {}", compact(&text[a + 7..b]));
        }
    }
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    format!("HTML page: {}", compact(&out))
}

fn compact(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_MESSAGE).collect();
    out.push('…');
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_error_bodies_keep_the_upstream_message() {
        let body = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let e = from_response(401, Some("application/json"), body);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert_eq!(e.message, "Incorrect API key provided");
        assert_eq!(e.status, Some(401));
    }

    #[test]
    fn code_may_be_an_integer_null_or_missing_and_vllm_puts_it_at_the_top() {
        let int = br#"{"error":{"message":"bad","code":400}}"#;
        assert_eq!(from_response(400, None, int).message, "bad");
        let null = br#"{"error":{"message":"m","code":null,"type":null}}"#;
        assert_eq!(from_response(500, None, null).kind, ErrorKind::Server);
        let old_vllm = br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
        let e = from_response(404, None, old_vllm);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::NotFound, "The model `x` does not exist.")
        );
        let fastapi = br#"{"detail":"Not Found"}"#;
        assert_eq!(from_response(404, None, fastapi).message, "Not Found");
    }

    #[test]
    fn insufficient_quota_is_not_a_rate_limit_even_when_only_the_type_says_so() {
        let by_code = br#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#;
        assert_eq!(from_response(429, None, by_code).kind, ErrorKind::Quota);
        let by_type = br#"{"error":{"message":"quota","type":"insufficient_quota","code":null}}"#;
        assert_eq!(from_response(429, None, by_type).kind, ErrorKind::Quota);
        let limit = br#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#;
        assert_eq!(from_response(429, None, limit).kind, ErrorKind::RateLimit);
    }

    #[test]
    fn html_and_plain_text_bodies_become_readable_messages() {
        let html =
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>";
        let e = from_response(502, Some("text/html"), html);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Server, "HTML page: 502 Bad Gateway")
        );
        let untitled = b"<p>upstream   connect error</p>";
        assert_eq!(
            from_response(503, None, untitled).message,
            "HTML page: upstream connect error"
        );
        let plain = b"  upstream request timeout\n";
        assert_eq!(
            from_response(504, Some("text/plain"), plain).message,
            "upstream request timeout"
        );
        assert_eq!(
            from_response(503, None, b"").message,
            "HTTP 503 Service Unavailable with an empty body"
        );
        let long = vec![b'x'; 5000];
        assert!(from_response(500, None, &long).message.chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn stream_error_events_are_typed() {
        let v: Value = serde_json::from_str(
            r#"{"error":{"message":"overloaded","type":"server_error","code":"internal_error"}}"#,
        )
        .unwrap();
        let e = from_stream_event(&v);
        assert_eq!(
            (e.kind, e.message.as_str(), e.status),
            (ErrorKind::Server, "overloaded", None)
        );
        let v: Value = serde_json::from_str(r#"{"error":{"message":"slow","code":429}}"#).unwrap();
        assert_eq!(from_stream_event(&v).kind, ErrorKind::RateLimit);
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let cases = [
            (400, ErrorKind::BadRequest),
            (401, ErrorKind::Auth),
            (403, ErrorKind::Permission),
            (404, ErrorKind::NotFound),
            (408, ErrorKind::Timeout),
            (409, ErrorKind::Conflict),
            (422, ErrorKind::BadRequest),
            (429, ErrorKind::RateLimit),
            (500, ErrorKind::Server),
            (503, ErrorKind::Server),
        ];
        for (s, k) in cases {
            assert_eq!(kind_for(s, None), k, "{s}");
        }
    }
}
