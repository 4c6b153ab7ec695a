//! Feasibility load tests: concurrency levels held in turn against one endpoint, each call
//! logged as source `loadtest` (so usage and budgets see it), figures per level, the knee, and a
//! cost projection at a card's expected traffic.

pub mod storage;

use std::time::{Duration, Instant};

use milc_api::lifecycle::{
    LevelResult, LoadTest, LoadTestProgress, LoadTestSpec, LoadTestStatus, Traffic,
};
use milc_api::prompt::PromptPin;
use milc_api::{CallSource, ChatRequest, Cost, ErrorKind, Message, Role, UsageSource};
use tokio_util::sync::CancellationToken;

use crate::db::now_ms;
use crate::{Console, Error};

/// The most callers a level may hold at once.
pub const MAX_CONCURRENCY: u32 = 1024;

/// What one call of a level measured.
struct Sample {
    latency_ms: f64,
    ttft_ms: Option<f64>,
    output_tokens: u64,
    cost_pico: i64,
    estimated: bool,
    failed: bool,
    rate_limited: bool,
}

impl Console {
    /// Runs a load test: each concurrency level in turn for `duration_ms`, with that many callers
    /// sending one request after another (no retries, and no holding back for the limits the
    /// server announces, so its 429s are counted rather than avoided or hidden), the cost
    /// projected at `traffic`. Stored as it goes. (`Console::loadtest`, beside the cards, is
    /// what shells call: it reads the card a spec names and attaches the test to it.)
    pub(crate) async fn run_loadtest(
        &self,
        spec: LoadTestSpec,
        traffic: Option<Traffic>,
        on_progress: &(dyn Fn(&LoadTestProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<LoadTest, Error> {
        check(&spec)?;
        let version = match &spec.prompt {
            Some(r) => Some(self.resolve_prompt(r).await?),
            None => None,
        };
        let pin = version.as_ref().map(|v| PromptPin {
            prompt: v.prompt.clone(),
            version: v.version,
        });
        let prepared = self
            .prepare(&spec.endpoint, pin.as_ref())
            .await?
            .with_overrides(None, Some(0))
            .ignoring_rate_limits();
        let req = match &version {
            Some(v) => ChatRequest {
                variables: spec.variables.clone(),
                prompt: pin.clone(),
                ..ChatRequest::new(
                    v.content.messages.clone(),
                    crate::runs::merged_params(&v.content.params, &spec.params),
                )
            },
            None => ChatRequest::new(
                vec![Message::new(Role::User, spec.message.clone())],
                spec.params.clone(),
            ),
        };
        // A template that does not render fails here, before any level starts.
        crate::prompts::render(&req.messages, &req.variables)?;

        let id = {
            let mut c = self.store.read().await?;
            let pv = match &pin {
                Some(p) => crate::db::prompt_version_id(&mut c, &p.prompt, p.version).await?,
                None => None,
            };
            storage::insert(&mut c, &spec, prepared.endpoint().id, pv, now_ms()).await?
        };
        self.noted("loadtest.start", &format!("#{id} on {}", spec.endpoint))
            .await?;
        let total = spec.concurrency.len() as u32;
        let mut levels = Vec::new();
        let mut status = LoadTestStatus::Finished;
        for (i, &level) in spec.concurrency.iter().enumerate() {
            if cancel.is_cancelled() {
                status = LoadTestStatus::Cancelled;
                break;
            }
            let started = Instant::now();
            let deadline = started + Duration::from_millis(spec.duration_ms);
            let done = std::sync::atomic::AtomicU64::new(0);
            let report = |n: u64| {
                let into = started.elapsed().as_secs_f64() / (spec.duration_ms as f64 / 1000.0);
                on_progress(&LoadTestProgress {
                    id,
                    level,
                    level_index: i as u32,
                    levels: total,
                    fraction: ((i as f64 + into.min(1.0)) / f64::from(total)).min(1.0),
                    requests: n,
                });
            };
            let worker = || async {
                let mut out = Vec::new();
                while Instant::now() < deadline && !cancel.is_cancelled() {
                    let sent = Instant::now();
                    let r = self
                        .chat_prepared(&prepared, &req, CallSource::Loadtest, &mut |_| {}, cancel)
                        .await;
                    let sample = match r {
                        Ok(r) => Sample {
                            latency_ms: r.latency_ms as f64,
                            ttft_ms: r.ttft_ms.map(|t| t as f64),
                            output_tokens: r.usage.completion_tokens,
                            cost_pico: r.cost.pico_usd,
                            estimated: r.cost.source == UsageSource::Estimated,
                            failed: false,
                            rate_limited: false,
                        },
                        Err(Error::Call { error, .. }) if error.kind == ErrorKind::Cancelled => {
                            break
                        }
                        Err(Error::Call { error, .. }) => Sample {
                            latency_ms: sent.elapsed().as_secs_f64() * 1000.0,
                            ttft_ms: None,
                            output_tokens: 0,
                            cost_pico: 0,
                            estimated: false,
                            failed: true,
                            rate_limited: error.status == Some(429),
                        },
                        Err(e) => return Err(e),
                    };
                    out.push(sample);
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    report(n);
                }
                Ok(out)
            };
            let results = futures_util::future::join_all((0..level).map(|_| worker())).await;
            let elapsed = started.elapsed().as_secs_f64();
            let mut samples = Vec::new();
            for r in results {
                samples.extend(r?);
            }
            levels.push(figures(level, &samples, elapsed, traffic.as_ref()));
            storage::set_levels(&mut self.store.read().await?, id, &levels).await?;
        }
        if cancel.is_cancelled() {
            status = LoadTestStatus::Cancelled;
        }
        let mut c = self.store.read().await?;
        storage::finish(&mut c, id, status, &levels, now_ms()).await?;
        drop(c);
        self.loadtest_info(id).await
    }

    pub async fn loadtest_info(&self, id: i64) -> Result<LoadTest, Error> {
        Ok(storage::get(&mut self.store.read().await?, id).await?)
    }

    /// Every load test, newest first.
    pub async fn loadtests(&self) -> Result<Vec<LoadTest>, Error> {
        Ok(storage::list(&mut self.store.read().await?).await?)
    }
}

fn check(spec: &LoadTestSpec) -> Result<(), Error> {
    if spec.concurrency.is_empty() {
        return Err(Error::invalid(
            "concurrency",
            "name at least one level, e.g. 1,4,16",
        ));
    }
    if let Some(c) = spec
        .concurrency
        .iter()
        .find(|c| **c == 0 || **c > MAX_CONCURRENCY)
    {
        return Err(Error::invalid(
            "concurrency",
            format!("{c} is not a level from 1 to {MAX_CONCURRENCY}"),
        ));
    }
    if !(100..=3_600_000).contains(&spec.duration_ms) {
        return Err(Error::invalid(
            "duration",
            "each level lasts from 100 ms to 1 hour",
        ));
    }
    Ok(())
}

/// Minutes in the 30-day month a projection uses.
const MINUTES_PER_MONTH: f64 = 60.0 * 24.0 * 30.0;

/// One level's figures from its samples. Latency and TTFT percentiles count answered calls only;
/// rates count every request; cost per 1 000 requests is the mean over every request × 1 000.
fn figures(level: u32, s: &[Sample], elapsed_s: f64, traffic: Option<&Traffic>) -> LevelResult {
    let n = s.len() as u64;
    let ok: Vec<&Sample> = s.iter().filter(|x| !x.failed).collect();
    let errors = n - ok.len() as u64;
    let rate_limited = s.iter().filter(|x| x.rate_limited).count() as u64;
    let pico: i64 = s.iter().map(|x| x.cost_pico).sum();
    let source = if s.iter().any(|x| x.estimated) {
        UsageSource::Estimated
    } else {
        UsageSource::Reported
    };
    let per_request = if n == 0 { 0 } else { pico / n as i64 };
    let per_1k = if n == 0 {
        0
    } else {
        (i128::from(pico) * 1000 / i128::from(n)) as i64
    };
    let rate = |k: u64| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let elapsed = elapsed_s.max(1e-9);
    LevelResult {
        concurrency: level,
        requests: n,
        errors,
        rate_limited,
        latency_ms: crate::runs::percentiles(ok.iter().map(|x| x.latency_ms).collect()),
        ttft_ms: crate::runs::percentiles(ok.iter().filter_map(|x| x.ttft_ms).collect()),
        requests_per_s: ok.len() as f64 / elapsed,
        output_tokens_per_s: ok.iter().map(|x| x.output_tokens).sum::<u64>() as f64 / elapsed,
        error_rate: rate(errors),
        rate_limited_rate: rate(rate_limited),
        cost: Cost {
            pico_usd: pico,
            source,
        },
        cost_per_1k: Cost {
            pico_usd: per_1k,
            source,
        },
        cost_per_month: traffic
            .filter(|t| t.requests_per_minute > 0.0)
            .map(|t| Cost {
                pico_usd: (per_request as f64 * t.requests_per_minute * MINUTES_PER_MONTH).round()
                    as i64,
                source,
            }),
    }
}

/// The knee: the last level before latency grows faster than throughput. Going from level a to
/// the next b, latency (p50) grows by p50_b / p50_a and throughput by rps_b / rps_a; the first
/// step where latency's factor exceeds throughput's names level a. None when every step still
/// pays for itself (or there is nothing to compare).
pub fn knee(levels: &[LevelResult]) -> Option<u32> {
    levels.windows(2).find_map(|w| {
        let (a, b) = (&w[0], &w[1]);
        if a.latency_ms.p50 <= 0.0 || a.requests_per_s <= 0.0 {
            return None;
        }
        let latency = b.latency_ms.p50 / a.latency_ms.p50;
        let throughput = b.requests_per_s / a.requests_per_s;
        (latency > throughput).then_some(a.concurrency)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use milc_api::run::Percentiles;

    fn level(c: u32, p50: f64, rps: f64) -> LevelResult {
        LevelResult {
            concurrency: c,
            latency_ms: Percentiles {
                p50,
                p95: p50,
                p99: p50,
            },
            requests_per_s: rps,
            ..LevelResult::default()
        }
    }

    #[test]
    fn the_knee_is_the_level_after_which_latency_outgrows_throughput() {
        // Throughput scales up to 16 callers; at 64 it only doubles while latency triples.
        let levels = [
            level(1, 100.0, 10.0),
            level(4, 102.0, 39.0),
            level(16, 110.0, 145.0),
            level(64, 330.0, 290.0),
        ];
        assert_eq!(knee(&levels), Some(16));
        assert_eq!(knee(&levels[..3]), None);
        assert_eq!(knee(&[]), None);
    }

    #[test]
    fn a_level_counts_every_request_for_rates_and_answered_ones_for_latency() {
        let ok = |ms: f64| Sample {
            latency_ms: ms,
            ttft_ms: Some(ms / 2.0),
            output_tokens: 10,
            cost_pico: 3_000_000,
            estimated: false,
            failed: false,
            rate_limited: false,
        };
        let limited = Sample {
            latency_ms: 1.0,
            ttft_ms: None,
            output_tokens: 0,
            cost_pico: 0,
            estimated: false,
            failed: true,
            rate_limited: true,
        };
        let s = [ok(100.0), ok(200.0), ok(300.0), limited];
        let traffic = Traffic {
            requests_per_minute: 10.0,
            tokens_per_request: 0,
        };
        let f = figures(4, &s, 2.0, Some(&traffic));
        assert_eq!((f.requests, f.errors, f.rate_limited), (4, 1, 1));
        assert_eq!(f.latency_ms.p50, 200.0);
        assert_eq!(f.requests_per_s, 1.5);
        assert_eq!(f.output_tokens_per_s, 15.0);
        assert_eq!(f.rate_limited_rate, 0.25);
        // 9 µ$ over 4 requests: 2.25 µ$ each, 2.25 m$ per 1 000.
        assert_eq!(f.cost_per_1k.usd(), "0.00225");
        // 2.25 µ$ × 10/min × 43 200 min.
        assert_eq!(f.cost_per_month.unwrap().usd(), "0.972");
    }
}
