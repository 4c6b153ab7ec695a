//! Rate-limit headers (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, as OpenAI, NIM
//! behind a gateway and others send them) and a gate that keeps requests to an endpoint within
//! what its last answers said is left, so a run waits for the window to reset instead of
//! collecting 429s.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use reqwest::header::HeaderMap;

/// What one response said about the endpoint's limits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateLimit {
    pub remaining_requests: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens: Option<Duration>,
}

impl RateLimit {
    /// The limits in `h`, or `None` when it carries none.
    pub fn from_headers(h: &HeaderMap) -> Option<Self> {
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let count = |name: &str| text(name).and_then(|v| v.parse().ok());
        let reset = |name: &str| text(name).and_then(parse_reset);
        let r = Self {
            remaining_requests: count("x-ratelimit-remaining-requests"),
            reset_requests: reset("x-ratelimit-reset-requests"),
            remaining_tokens: count("x-ratelimit-remaining-tokens"),
            reset_tokens: reset("x-ratelimit-reset-tokens"),
        };
        (r != Self::default()).then_some(r)
    }
}

/// A reset time as servers write it: `6m0s`, `1h2m3.5s`, `12ms`, `0.5s`, or bare seconds (`20`).
pub fn parse_reset(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Keeps the requests sent to one endpoint within the budget its responses announce: after a
/// response says `remaining` requests are left until `reset`, at most `remaining` minus those
/// already on their way go out before the reset; then senders wait for it. Token budgets are
/// not predicted, only honoured: when none are left, senders wait for their reset.
#[derive(Debug, Default)]
pub struct RateGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    in_flight: i64,
    /// Requests that may still go out before the instant, as far as the server has told.
    requests: Option<(i64, Instant)>,
    /// No tokens are left until the instant.
    tokens_until: Option<Instant>,
}

/// One request counted in flight, and when it was let out; dropping it ends the count.
#[derive(Debug)]
pub struct Ticket<'a> {
    gate: &'a RateGate,
    sent: Instant,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.gate.lock().in_flight -= 1;
    }
}

/// Resets further away than this are taken as this (a server that sends a timestamp, or junk,
/// must not park a run for years).
const MAX_RESET: Duration = Duration::from_secs(3600);

impl RateGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().expect("rate gate lock")
    }

    /// Waits until one more request fits the announced limits, then counts it in flight.
    pub async fn acquire(&self) -> Ticket<'_> {
        loop {
            let wait_until = {
                let mut s = self.lock();
                let now = Instant::now();
                if s.tokens_until.is_some_and(|t| t <= now) {
                    s.tokens_until = None;
                }
                if s.requests.is_some_and(|(_, t)| t <= now) {
                    s.requests = None;
                }
                match (s.tokens_until, &mut s.requests) {
                    (Some(t), _) => Some(t),
                    (None, Some((left, t))) if *left <= 0 => Some(*t),
                    (None, requests) => {
                        if let Some((left, _)) = requests {
                            *left -= 1;
                        }
                        s.in_flight += 1;
                        None
                    }
                }
            };
            match wait_until {
                None => {
                    return Ticket {
                        gate: self,
                        sent: Instant::now(),
                    }
                }
                Some(t) => {
                    tracing::debug!(
                        wait_ms = t.saturating_duration_since(Instant::now()).as_millis() as u64,
                        "rate limit reached; waiting for its reset"
                    );
                    tokio::time::sleep_until(t).await;
                }
            }
        }
    }

    /// Takes in what a response (sent under `ticket`) said about the limits. The server counted
    /// the request somewhere between its send and its answer, so the window ends between
    /// `sent + reset` and `now + reset`: the later one is waited for (never early), the earlier
    /// one tells whether the answer belongs to the window already known (a slow answer must not
    /// look like a new window and reopen a spent one).
    pub fn observe(&self, ticket: &Ticket<'_>, r: &RateLimit) {
        let mut s = self.lock();
        let now = Instant::now();
        if let (Some(left), Some(reset)) = (r.remaining_requests, r.reset_requests) {
            // The others in flight were sent after the server counted this one, or will be
            // counted after it: either way they use up what it said was left.
            let others = s.in_flight - 1;
            let left = (left.min(i64::MAX as u64) as i64).saturating_sub(others);
            let reset = reset.min(MAX_RESET);
            let (earliest, latest) = (ticket.sent + reset, now + reset);
            s.requests = Some(match s.requests {
                // The same window (or an older one): never raise the budget.
                Some((old, t)) if t > now && earliest <= t + Duration::from_millis(50) => {
                    (old.min(left), t)
                }
                _ => (left, latest),
            });
        }
        if let (Some(0), Some(reset)) = (r.remaining_tokens, r.reset_tokens) {
            s.tokens_until = Some(now + reset.min(MAX_RESET));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_parse_as_servers_write_them() {
        let ms = |s| parse_reset(s).map(|d| d.as_secs_f64() * 1000.0);
        assert_eq!(ms("6m0s"), Some(360_000.0));
        assert_eq!(ms("1h2m3.5s"), Some(3_723_500.0));
        assert_eq!(ms("12ms"), Some(12.0));
        assert_eq!(ms("0.5s"), Some(500.0));
        assert_eq!(ms("20"), Some(20_000.0));
        assert_eq!(ms("1m30s250ms"), Some(90_250.0));
        for junk in ["", "s", "5x", "-1", "1.2.3s"] {
            assert_eq!(ms(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn headers_become_limits_and_absent_ones_none() {
        let mut h = HeaderMap::new();
        assert_eq!(RateLimit::from_headers(&h), None);
        h.insert("x-ratelimit-remaining-requests", "3".parse().unwrap());
        h.insert("x-ratelimit-reset-requests", "1s".parse().unwrap());
        h.insert("x-ratelimit-remaining-tokens", "0".parse().unwrap());
        h.insert("x-ratelimit-reset-tokens", "250ms".parse().unwrap());
        assert_eq!(
            RateLimit::from_headers(&h),
            Some(RateLimit {
                remaining_requests: Some(3),
                reset_requests: Some(Duration::from_secs(1)),
                remaining_tokens: Some(0),
                reset_tokens: Some(Duration::from_millis(250)),
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_spends_the_announced_budget_then_waits_for_the_reset() {
        let gate = RateGate::default();
        let (a, b) = (gate.acquire().await, gate.acquire().await);
        // `a` comes back: 2 left for 1 s, but `b` is already out, so one more may go.
        gate.observe(
            &a,
            &RateLimit {
                remaining_requests: Some(2),
                reset_requests: Some(Duration::from_secs(1)),
                ..RateLimit::default()
            },
        );
        drop(a);
        let start = tokio::time::Instant::now();
        let c = gate.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        let d = gate.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "the fourth waited for the reset"
        );
        drop((b, c, d));

        // No tokens left: everyone waits for the token reset.
        let e = gate.acquire().await;
        gate.observe(
            &e,
            &RateLimit {
                remaining_tokens: Some(0),
                reset_tokens: Some(Duration::from_millis(300)),
                ..RateLimit::default()
            },
        );
        drop(e);
        let start = tokio::time::Instant::now();
        let _f = gate.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_answer_does_not_reopen_a_spent_window_and_resets_are_capped() {
        let gate = RateGate::default();
        let (slow, fast) = (gate.acquire().await, gate.acquire().await);
        let limit = |left, reset| RateLimit {
            remaining_requests: Some(left),
            reset_requests: Some(reset),
            ..RateLimit::default()
        };
        gate.observe(&fast, &limit(0, Duration::from_secs(1)));
        drop(fast);
        tokio::time::advance(Duration::from_millis(500)).await;
        // Counted when it was sent, with 5 left of the same window: the window stays spent.
        gate.observe(&slow, &limit(5, Duration::from_secs(1)));
        drop(slow);
        let start = tokio::time::Instant::now();
        let t = gate.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));

        // A reset years away (a timestamp sent as seconds) waits an hour at most.
        gate.observe(
            &t,
            &RateLimit {
                remaining_tokens: Some(0),
                reset_tokens: parse_reset("1800000000"),
                ..RateLimit::default()
            },
        );
        drop(t);
        let start = tokio::time::Instant::now();
        let _t = gate.acquire().await;
        assert!(start.elapsed() <= MAX_RESET, "{:?}", start.elapsed());
    }
}
