//! `--rate-limit N/WINDOW`: a fixed-window request limit, announced the way OpenAI does it.
//! Every answer carries `x-ratelimit-{limit,remaining,reset}-requests`; a request over the limit
//! gets a 429 with `retry-after-ms` / `retry-after` pointing at the window's end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// At most `requests` requests per `window`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateWindow {
    pub requests: u32,
    pub window: Duration,
}

/// `N/DURATION`, e.g. `20/1s`, `600/1m`, `5/500ms`.
pub fn parse_rate_window(s: &str) -> Result<RateWindow, String> {
    let err = || format!("'{s}': expected REQUESTS/WINDOW, e.g. 20/1s, 600/1m or 5/500ms");
    let (n, w) = s.split_once('/').ok_or_else(err)?;
    let requests: u32 = n.trim().parse().ok().filter(|&n| n > 0).ok_or_else(err)?;
    let w = w.trim();
    let (value, scale) = if let Some(v) = w.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = w.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = w.strip_suffix('m') {
        (v, 60.0)
    } else {
        return Err(err());
    };
    let secs: f64 = value.parse().map_err(|_| err())?;
    let window = Duration::try_from_secs_f64(secs * scale)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(err)?;
    Ok(RateWindow { requests, window })
}

/// The current window: when it started and how many requests it has taken.
#[derive(Debug)]
pub(crate) struct WindowState {
    limit: RateWindow,
    counted: Mutex<(Instant, u32)>,
}

impl WindowState {
    pub fn new(limit: RateWindow) -> Self {
        Self {
            limit,
            counted: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Counts one request: its place in the window and the time left until the window resets.
    fn count(&self) -> (u32, Duration) {
        let mut c = self.counted.lock().expect("window lock");
        let now = Instant::now();
        if now >= c.0 + self.limit.window {
            *c = (now, 0);
        }
        c.1 += 1;
        (
            c.1,
            (c.0 + self.limit.window).saturating_duration_since(now),
        )
    }
}

/// The middleware, installed only when a limit is configured.
pub(crate) async fn limit(State(w): State<Arc<WindowState>>, req: Request, next: Next) -> Response {
    let (n, reset) = w.count();
    let limit = w.limit.requests;
    let mut res = if n > limit {
        let ms = reset.as_millis().max(1);
        let mut res = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "Rate limit reached for requests: limit {limit} per {} ms (simulated by \
                 milc-sim). Please try again in {ms}ms.",
                w.limit.window.as_millis()
            ),
            kind: "requests",
            param: None,
            code: Some("rate_limit_exceeded"),
        }
        .into_response();
        let h = res.headers_mut();
        insert(h, "retry-after-ms", ms.to_string());
        insert(
            h,
            header::RETRY_AFTER.as_str(),
            ms.div_ceil(1000).to_string(),
        );
        res
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    insert(h, "x-ratelimit-limit-requests", limit.to_string());
    insert(
        h,
        "x-ratelimit-remaining-requests",
        limit.saturating_sub(n).to_string(),
    );
    insert(
        h,
        "x-ratelimit-reset-requests",
        format!("{}ms", reset.as_millis()),
    );
    res
}

fn insert(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_junk_is_refused() {
        let w = |requests, ms| RateWindow {
            requests,
            window: Duration::from_millis(ms),
        };
        assert_eq!(parse_rate_window("20/1s"), Ok(w(20, 1000)));
        assert_eq!(parse_rate_window("600/1m"), Ok(w(600, 60_000)));
        assert_eq!(parse_rate_window("5/500ms"), Ok(w(5, 500)));
        for junk in ["20", "0/1s", "x/1s", "20/1h", "20/0s", "20/-1s"] {
            assert!(parse_rate_window(junk).is_err(), "{junk}");
        }
    }
}
