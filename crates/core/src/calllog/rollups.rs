//! Rollups: per UTC hour and per UTC day × endpoint × prompt version × source, with a 64-bucket
//! log-spaced latency histogram per row. The writer adds each committed batch of calls to them in
//! the calls' own transaction and caches the rows it wrote, so a chart reads a few hundred rows
//! instead of the log.

use std::collections::HashMap;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
const BUCKETS: usize = 64;
/// Each latency bucket is this much wider than the one before.
const RATIO: f64 = 1.25;
/// Calls read per round trip when the log is scanned.
pub(crate) const SCAN: i64 = 20_000;

pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

fn bucket(ms: u64) -> usize {
    if ms < 1 {
        0
    } else {
        (1 + ((ms as f64).ln() / RATIO.ln()).floor() as usize).min(BUCKETS - 1)
    }
}

/// The middle (geometric) of a bucket.
fn bucket_value(b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        RATIO.powf(b as f64 - 0.5)
    }
}

pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// The two rollup tables: per UTC hour, and per UTC day for long ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub(super) fn table(self) -> &'static str {
        match self {
            Self::Hour => "usage_hourly",
            Self::Day => "usage_daily",
        }
    }

    pub(super) fn column(self) -> &'static str {
        match self {
            Self::Hour => "hour_ms",
            Self::Day => "day_ms",
        }
    }
}

/// A rollup row's key; 0 stands for "none" (no endpoint any more, no prompt version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub grain: Grain,
    /// The start of its hour or day.
    pub at_ms: i64,
    pub endpoint_id: i64,
    pub prompt_version_id: i64,
    pub source: i64,
}

/// The sums of one rollup row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agg {
    pub calls: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_pico: i64,
    pub estimated_calls: i64,
    pub hist: [u32; BUCKETS],
}

impl Default for Agg {
    fn default() -> Self {
        Self {
            calls: 0,
            errors: 0,
            prompt_tokens: 0,
            cached_tokens: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
            cost_pico: 0,
            estimated_calls: 0,
            hist: [0; BUCKETS],
        }
    }
}

/// What a rollup needs of one call.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Fact {
    pub at_ms: i64,
    pub endpoint_id: Option<i64>,
    pub prompt_version_id: Option<i64>,
    pub source: i64,
    pub outcome: i64,
    pub latency_ms: i64,
    pub prompt_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_pico_usd: Option<i64>,
    pub usage_reported: Option<bool>,
}

impl Fact {
    /// Its hourly and its daily rollup row.
    pub fn keys(&self) -> [Key; 2] {
        let key = |grain, at_ms| Key {
            grain,
            at_ms,
            endpoint_id: self.endpoint_id.unwrap_or(0),
            prompt_version_id: self.prompt_version_id.unwrap_or(0),
            source: self.source,
        };
        [
            key(Grain::Hour, hour_of(self.at_ms)),
            key(Grain::Day, day_of(self.at_ms)),
        ]
    }

    /// Adds it to both of its rollup rows in `aggs`.
    pub fn count_in(&self, aggs: &mut HashMap<Key, Agg>) {
        for k in self.keys() {
            aggs.entry(k).or_default().add(self);
        }
    }
}

impl Agg {
    pub fn add(&mut self, f: &Fact) {
        self.calls += 1;
        self.errors += i64::from(f.outcome == crate::db::outcome_code(milc_api::Outcome::Error));
        self.prompt_tokens += f.prompt_tokens.unwrap_or(0);
        self.cached_tokens += f.cached_tokens.unwrap_or(0);
        self.completion_tokens += f.completion_tokens.unwrap_or(0);
        self.reasoning_tokens += f.reasoning_tokens.unwrap_or(0);
        self.cost_pico += f.cost_pico_usd.unwrap_or(0);
        self.estimated_calls += i64::from(f.usage_reported == Some(false));
        self.hist[bucket(f.latency_ms.max(0) as u64)] += 1;
    }

    pub fn merge(&mut self, o: &Agg) {
        self.calls += o.calls;
        self.errors += o.errors;
        self.prompt_tokens += o.prompt_tokens;
        self.cached_tokens += o.cached_tokens;
        self.completion_tokens += o.completion_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost_pico += o.cost_pico;
        self.estimated_calls += o.estimated_calls;
        for (a, b) in self.hist.iter_mut().zip(o.hist) {
            *a += b;
        }
    }

    /// The histogram, sparse: for each bucket with calls, its index byte and its count as a
    /// LEB128 varint (a row's latencies fill a handful of the 64 buckets).
    pub(super) fn blob(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        for (i, c) in self.hist.iter().enumerate().filter(|(_, c)| **c > 0) {
            out.push(i as u8);
            let mut v = *c;
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(byte);
                    break;
                }
                out.push(byte | 0x80);
            }
        }
        out
    }

    pub(super) fn hist_from(blob: &[u8]) -> [u32; BUCKETS] {
        let mut h = [0u32; BUCKETS];
        let mut bytes = blob.iter().copied();
        while let Some(i) = bytes.next() {
            let (mut v, mut shift) = (0u32, 0);
            for b in bytes.by_ref() {
                v |= u32::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            if let Some(slot) = h.get_mut(usize::from(i)) {
                *slot = v;
            }
        }
        h
    }

    /// The `q` quantile of latency, to the middle of its bucket.
    pub fn latency(&self, q: f64) -> f64 {
        let n: u64 = self.hist.iter().map(|c| u64::from(*c)).sum();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, c) in self.hist.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return bucket_value(b);
            }
        }
        bucket_value(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_within_an_eighth_of_the_value() {
        for ms in [1u64, 3, 17, 99, 250, 1234, 8000, 60_000] {
            let v = bucket_value(bucket(ms));
            assert!((v / ms as f64 - 1.0).abs() < 0.125, "{ms} → {v}");
        }
        let mut a = Agg::default();
        for ms in 1..=100i64 {
            a.add(&Fact {
                at_ms: 0,
                endpoint_id: None,
                prompt_version_id: None,
                source: 1,
                outcome: 0,
                latency_ms: ms,
                prompt_tokens: None,
                cached_tokens: None,
                completion_tokens: None,
                reasoning_tokens: None,
                cost_pico_usd: None,
                usage_reported: None,
            });
        }
        assert!(
            (a.latency(0.5) / 50.0 - 1.0).abs() < 0.125,
            "{}",
            a.latency(0.5)
        );
        assert!(
            (a.latency(0.95) / 95.0 - 1.0).abs() < 0.125,
            "{}",
            a.latency(0.95)
        );
    }

    #[test]
    fn histograms_round_trip_through_their_sparse_encoding() {
        let mut a = Agg::default();
        a.hist[0] = 1;
        a.hist[17] = 127;
        a.hist[18] = 128;
        a.hist[63] = u32::MAX;
        let blob = a.blob();
        assert_eq!(blob.len(), 2 + 2 + 3 + 6);
        assert_eq!(Agg::hist_from(&blob), a.hist);
        assert!(Agg::default().blob().is_empty());
    }
}
