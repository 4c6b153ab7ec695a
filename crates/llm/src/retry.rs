//! When to retry a failed attempt and how long to wait, following openai-python's rules:
//! retry 408, 409, 429, ≥ 500, timeouts and connection errors (never an exhausted quota);
//! `x-should-retry` overrides; wait what `retry-after-ms` or `retry-after` (seconds or an HTTP date)
//! asks when 0 < delay ≤ 120 s, give up when the server asks for longer, and otherwise back off
//! exponentially: `min(0.5 · 2^attempt, 8) s × (1 − 0.25 · jitter)`.

use std::time::{Duration, SystemTime};

use milc_api::ErrorKind;
use reqwest::header::HeaderMap;

/// The longest server-requested wait that is honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Whether a failed attempt may be retried.
pub fn is_retryable(kind: ErrorKind, status: Option<u16>, headers: Option<&HeaderMap>) -> bool {
    if let Some(v) = headers
        .and_then(|h| h.get("x-should-retry"))
        .and_then(|v| v.to_str().ok())
    {
        match v.trim() {
            "true" => return true,
            "false" => return false,
            _ => {}
        }
    }
    if kind == ErrorKind::Quota {
        return false;
    }
    match status {
        Some(s) => matches!(s, 408 | 409 | 429) || s >= 500,
        None => matches!(kind, ErrorKind::Connection | ErrorKind::Timeout),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wait {
    /// Wait this long, then retry.
    For(Duration),
    /// The server asked for a longer pause than is worth waiting: do not retry.
    TooLong(Duration),
}

/// How long to wait before retry number `attempt + 1` (`attempt` counts from 0).
/// `jitter` is a random number in [0, 1).
pub fn delay(headers: Option<&HeaderMap>, attempt: u32, now: SystemTime, jitter: f64) -> Wait {
    if let Some(asked) = headers.and_then(|h| server_asked(h, now)) {
        if asked > MAX_RETRY_AFTER {
            return Wait::TooLong(asked);
        }
        if !asked.is_zero() {
            return Wait::For(asked);
        }
    }
    let base = (0.5 * 2f64.powi(attempt.min(16) as i32)).min(8.0);
    Wait::For(Duration::from_secs_f64(
        base * (1.0 - 0.25 * jitter.clamp(0.0, 1.0)),
    ))
}

fn server_asked(h: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn secs(s: f64) -> Wait {
        Wait::For(Duration::from_secs_f64(s))
    }

    #[test]
    fn retry_after_ms_comes_first_then_seconds_then_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "9")]);
        assert_eq!(delay(Some(&h), 0, now, 0.0), secs(0.25));
        assert_eq!(
            delay(Some(&headers(&[("retry-after", "1.5")])), 0, now, 0.0),
            secs(1.5)
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            delay(Some(&headers(&[("retry-after", &date)])), 0, now, 0.0),
            secs(30.0)
        );
    }

    #[test]
    fn waits_over_two_minutes_are_not_retried_and_zero_or_junk_fall_back_to_backoff() {
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            delay(Some(&headers(&[("retry-after", "121")])), 0, now, 0.0),
            Wait::TooLong(Duration::from_secs(121))
        );
        assert_eq!(
            delay(Some(&headers(&[("retry-after", "120")])), 0, now, 0.0),
            secs(120.0)
        );
        for junk in ["0", "-3", "soon"] {
            assert_eq!(
                delay(Some(&headers(&[("retry-after", junk)])), 0, now, 0.0),
                secs(0.5)
            );
        }
        // A date in the past means "now": back off normally.
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(50);
        assert_eq!(
            delay(Some(&headers(&[("retry-after", &past)])), 1, later, 0.0),
            secs(1.0)
        );
    }

    #[test]
    fn backoff_doubles_caps_at_eight_seconds_and_jitter_shortens_by_up_to_a_quarter() {
        let now = SystemTime::UNIX_EPOCH;
        let waits: Vec<Wait> = (0..6).map(|a| delay(None, a, now, 0.0)).collect();
        assert_eq!(
            waits,
            [
                secs(0.5),
                secs(1.0),
                secs(2.0),
                secs(4.0),
                secs(8.0),
                secs(8.0)
            ]
        );
        assert_eq!(delay(None, 2, now, 1.0), secs(1.5));
        assert_eq!(delay(None, 40, now, 0.0), secs(8.0));
    }

    #[test]
    fn which_failures_are_retried() {
        use ErrorKind::*;
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(is_retryable(Server, Some(s), None), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_retryable(BadRequest, Some(s), None), "{s}");
        }
        assert!(
            !is_retryable(Quota, Some(429), None),
            "an exhausted quota never recovers by waiting"
        );
        assert!(is_retryable(Connection, None, None));
        assert!(is_retryable(Timeout, None, None));
        assert!(!is_retryable(Protocol, None, None));
        let no = headers(&[("x-should-retry", "false")]);
        assert!(!is_retryable(Server, Some(503), Some(&no)));
        let yes = headers(&[("x-should-retry", "true")]);
        assert!(is_retryable(BadRequest, Some(400), Some(&yes)));
    }
}
