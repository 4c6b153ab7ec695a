//! Fault injection: the fault kinds, their CLI/header spellings, the per-request choice (header
//! first, then the seeded random rates) and the canned responses of the faults that replace the
//! whole HTTP answer.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::ApiError;
use crate::tokens::{mix64, SplitMix64};

/// A failure the simulator can inject into a chat completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 429 `rate_limit_exceeded` with `retry-after-ms` / `retry-after` (retryable).
    RateLimit,
    /// 429 `insufficient_quota`, no retry hint (must not be retried).
    Quota,
    /// 500 `server_error`.
    ServerError,
    /// Never answers, until the client gives up or the simulator stops.
    Hang,
    /// 200 with a body that is not valid JSON (stream: one invalid `data:` event).
    Malformed,
    /// 502 with an nginx-style HTML page, as a misbehaving proxy would send.
    Html,
    /// Stream: a few tokens, then an `{"error": …}` event and the connection closes without
    /// `[DONE]`. Non-stream: same as `ServerError`.
    MidStreamError,
    /// The response carries no usage at all, even when `include_usage` was requested.
    NoUsage,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::RateLimit,
        Fault::Quota,
        Fault::ServerError,
        Fault::Hang,
        Fault::Malformed,
        Fault::Html,
        Fault::MidStreamError,
        Fault::NoUsage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimit => "rate_limit",
            Fault::Quota => "quota",
            Fault::ServerError => "server_error",
            Fault::Hang => "hang",
            Fault::Malformed => "malformed",
            Fault::Html => "html",
            Fault::MidStreamError => "mid_stream_error",
            Fault::NoUsage => "no_usage",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn valid_names() -> String {
    Fault::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Fault {
    type Err = String;

    /// Accepts the snake_case names; `-` is taken for `_` so `rate-limit` works on a command line.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().replace('-', "_");
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| format!("unknown fault `{s}`; valid faults: {}", valid_names()))
    }
}

/// Parses `KIND:RATE` (e.g. `rate_limit:0.1`), RATE a probability in `0..=1`.
pub fn parse_fault_spec(s: &str) -> Result<(Fault, f64), String> {
    let (kind, rate) = s.split_once(':').ok_or_else(|| {
        format!("invalid fault spec `{s}`: expected KIND:RATE, e.g. rate_limit:0.1")
    })?;
    let fault: Fault = kind.parse()?;
    let rate: f64 = rate.trim().parse().map_err(|_| {
        format!("invalid fault rate `{rate}` in `{s}`: expected a number between 0 and 1")
    })?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!(
            "invalid fault rate `{rate}` in `{s}`: must be between 0 and 1"
        ));
    }
    Ok((fault, rate))
}

/// The `x-sim-fault` request header: `KIND` (every such request) or `KIND:N` (only the first N
/// requests with the same body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultHeader {
    pub fault: Fault,
    pub times: Option<u64>,
}

pub const FAULT_HEADER: &str = "x-sim-fault";

pub fn parse_fault_header(value: &str) -> Result<FaultHeader, String> {
    let (kind, times) = match value.split_once(':') {
        Some((kind, n)) => {
            let n: u64 = n.trim().parse().map_err(|_| {
                format!("invalid {FAULT_HEADER} `{value}`: expected KIND or KIND:N with N a whole number")
            })?;
            (kind, Some(n))
        }
        None => (value, None),
    };
    let fault = kind
        .parse()
        .map_err(|e: String| format!("invalid {FAULT_HEADER}: {e}"))?;
    Ok(FaultHeader { fault, times })
}

/// Per-server fault state. The random draw is lock-free (an atomic draw counter feeding a
/// stateless PRNG) so a fault-free or randomly-faulted benchmark never serialises on a lock; the
/// counter map is only locked for requests that carry a counted `x-sim-fault` header.
pub struct FaultPicker {
    rates: Vec<(Fault, f64)>,
    seed: u64,
    draws: AtomicU64,
    counted: Mutex<HashMap<(Fault, Bytes), u64>>,
}

impl FaultPicker {
    pub fn new(rates: Vec<(Fault, f64)>, seed: u64) -> Self {
        FaultPicker {
            rates,
            seed,
            draws: AtomicU64::new(0),
            counted: Mutex::new(HashMap::new()),
        }
    }

    /// The fault for this request, if any. `body` is the raw request body, the identity used by
    /// `KIND:N` counting.
    pub fn pick(&self, header: Option<FaultHeader>, body: &Bytes) -> Option<Fault> {
        if let Some(FaultHeader { fault, times }) = header {
            let Some(limit) = times else {
                return Some(fault);
            };
            // A poisoned lock only means another request panicked mid-update; the counts are
            // still usable.
            let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
            let seen = counted.entry((fault, body.clone())).or_insert(0);
            if *seen < limit {
                *seen += 1;
                return Some(fault);
            }
            return None;
        }
        if self.rates.is_empty() {
            return None;
        }
        let draw = self.draws.fetch_add(1, Ordering::Relaxed);
        let mut rng = SplitMix64::new(mix64(self.seed) ^ mix64(draw.wrapping_add(1)));
        self.rates
            .iter()
            .find(|(_, rate)| rng.next_f64() < *rate)
            .map(|(fault, _)| *fault)
    }
}

fn ratelimit_headers(headers: &mut HeaderMap) {
    headers.insert(
        "x-ratelimit-limit-requests",
        HeaderValue::from_static("600"),
    );
    headers.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("0"),
    );
    headers.insert(
        "x-ratelimit-reset-requests",
        HeaderValue::from_static("250ms"),
    );
}

pub fn rate_limit_response() -> Response {
    let mut res = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        message:
            "Rate limit reached for requests (simulated by milc-sim). Please retry after 200ms."
                .to_owned(),
        kind: "rate_limit_exceeded",
        param: None,
        code: Some("rate_limit_exceeded"),
    }
    .into_response();
    let headers = res.headers_mut();
    ratelimit_headers(headers);
    headers.insert("retry-after-ms", HeaderValue::from_static("200"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

pub fn quota_response() -> Response {
    let mut res = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: "You exceeded your current quota, please check your plan and billing details \
                  (simulated by milc-sim)."
            .to_owned(),
        kind: "insufficient_quota",
        param: None,
        code: Some("insufficient_quota"),
    }
    .into_response();
    ratelimit_headers(res.headers_mut());
    res
}

pub fn server_error_response() -> Response {
    ApiError::server_error(
        "The server had an error while processing your request (simulated by milc-sim).",
    )
    .into_response()
}

pub const HTML_502: &str = "<html><head><title>502 Bad Gateway</title></head><body><center>\
<h1>502 Bad Gateway</h1></center></body></html>";

pub fn html_response() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        HTML_502,
    )
        .into_response()
}

/// A 200 whose JSON body stops mid-string, as if a proxy cut the upstream response.
pub fn malformed_response(id: &str, model: &str) -> Response {
    let model = serde_json::to_string(model).unwrap_or_else(|_| "\"\"".to_owned());
    let body = format!(
        r#"{{"id":"{id}","object":"chat.completion","model":{model},"choices":[{{"index":0,"message":{{"role":"assistant","content":"the quick brown"#
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!("rate-limit".parse::<Fault>(), Ok(Fault::RateLimit));
    }

    #[test]
    fn unknown_fault_lists_valid_names() {
        let err = "explode".parse::<Fault>().unwrap_err();
        assert!(err.contains("explode"));
        for f in Fault::ALL {
            assert!(err.contains(f.name()), "{err}");
        }
    }

    #[test]
    fn fault_spec_parsing() {
        assert_eq!(
            parse_fault_spec("rate_limit:0.1"),
            Ok((Fault::RateLimit, 0.1))
        );
        assert_eq!(parse_fault_spec("hang:1"), Ok((Fault::Hang, 1.0)));
        assert_eq!(parse_fault_spec("no_usage:0"), Ok((Fault::NoUsage, 0.0)));
        assert!(parse_fault_spec("rate_limit")
            .unwrap_err()
            .contains("KIND:RATE"));
        assert!(parse_fault_spec("rate_limit:1.5")
            .unwrap_err()
            .contains("between 0 and 1"));
        assert!(parse_fault_spec("rate_limit:-0.1").is_err());
        assert!(parse_fault_spec("rate_limit:NaN").is_err());
        assert!(parse_fault_spec("rate_limit:lots").is_err());
        assert!(parse_fault_spec("boom:0.5")
            .unwrap_err()
            .contains("server_error"));
    }

    #[test]
    fn fault_header_parsing() {
        assert_eq!(
            parse_fault_header("quota"),
            Ok(FaultHeader {
                fault: Fault::Quota,
                times: None
            })
        );
        assert_eq!(
            parse_fault_header("hang:2"),
            Ok(FaultHeader {
                fault: Fault::Hang,
                times: Some(2)
            })
        );
        assert!(parse_fault_header("hang:x").is_err());
        assert!(parse_fault_header("nope").is_err());
    }

    #[test]
    fn counted_header_faults_only_the_first_n_identical_bodies() {
        let picker = FaultPicker::new(vec![], 0);
        let header = Some(FaultHeader {
            fault: Fault::ServerError,
            times: Some(2),
        });
        let a = Bytes::from_static(b"{\"a\":1}");
        let b = Bytes::from_static(b"{\"b\":1}");
        assert_eq!(picker.pick(header, &a), Some(Fault::ServerError));
        assert_eq!(picker.pick(header, &a), Some(Fault::ServerError));
        assert_eq!(picker.pick(header, &a), None);
        assert_eq!(picker.pick(header, &b), Some(Fault::ServerError));
    }

    #[test]
    fn random_rates_are_seeded_and_roughly_honoured() {
        let run = |seed| {
            let picker = FaultPicker::new(vec![(Fault::RateLimit, 0.25), (Fault::Hang, 0.0)], seed);
            (0..4000)
                .map(|_| picker.pick(None, &Bytes::new()))
                .collect::<Vec<_>>()
        };
        let first = run(1);
        assert_eq!(first, run(1), "same seed, same fault sequence");
        assert_ne!(first, run(2));
        assert!(!first.contains(&Some(Fault::Hang)), "rate 0 never fires");
        let hits = first.iter().filter(|f| f.is_some()).count();
        assert!((800..1200).contains(&hits), "{hits} of 4000 at rate 0.25");

        let always = FaultPicker::new(vec![(Fault::Quota, 1.0)], 9);
        assert!((0..100).all(|_| always.pick(None, &Bytes::new()) == Some(Fault::Quota)));
    }
}
