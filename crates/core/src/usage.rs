//! Usage and cost over time. Hourly rollups (UTC hour × endpoint × prompt version × source) are
//! kept by the writer in the same transaction as the calls they count, so a chart reads a few
//! hundred rollup rows instead of the log; latency percentiles come from a 64-bucket log-spaced
//! histogram per rollup row. Prices are effective-dated: a call is costed with the price in force
//! when it was made and records which one; a recomputation re-costs past calls after a price is
//! corrected, rebuilds the rollups it touched and is logged. Retention drops bodies, never
//! figures. The export is newline-delimited JSON with a BigQuery schema, or CSV.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use milc_api::usage::{Dim, PriceEntry, Recomputation, UsageQuery, UsageReport, UsageRow};
use milc_api::{Cost, PricePerMillion, Prices, UsageSource};
use sqlx::SqliteConnection;

use crate::store::{now_ms, source_from, Result, Store, StoreError};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
const BUCKETS: usize = 64;
/// Each latency bucket is this much wider than the one before.
const RATIO: f64 = 1.25;
/// Calls read per round trip when the log is scanned.
const SCAN: i64 = 20_000;

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
pub(crate) enum Grain {
    Hour,
    Day,
}

impl Grain {
    fn table(self) -> &'static str {
        match self {
            Self::Hour => "usage_hourly",
            Self::Day => "usage_daily",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Hour => "hour_ms",
            Self::Day => "day_ms",
        }
    }
}

/// A rollup row's key; 0 stands for "none" (no endpoint any more, no prompt version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub grain: Grain,
    /// The start of its hour or day.
    pub at_ms: i64,
    pub endpoint_id: i64,
    pub prompt_version_id: i64,
    pub source: i64,
}

/// The sums of one rollup row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Agg {
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
pub(crate) struct Fact {
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
        self.errors += i64::from(f.outcome == crate::store::outcome_code(milc_api::Outcome::Error));
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
    fn blob(&self) -> Vec<u8> {
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

    fn hist_from(blob: &[u8]) -> [u32; BUCKETS] {
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

/// Rollup rows as last written, kept by the writer so that adding a batch reads nothing back.
/// Anything else that rewrites rollups bumps the generation, which empties the cache.
#[derive(Default)]
pub(crate) struct RollupCache {
    rows: HashMap<Key, Agg>,
    generation: u64,
}

/// Most rows the cache keeps before it starts again from the tables.
const CACHE_ROWS: usize = 100_000;

impl RollupCache {
    /// Adds `deltas` to the rollup rows (inside the caller's transaction) and returns the new
    /// rows, to [`RollupCache::keep`] once the transaction has committed.
    pub async fn add(
        &mut self,
        conn: &mut SqliteConnection,
        deltas: HashMap<Key, Agg>,
        generation: u64,
    ) -> Result<Vec<(Key, Agg)>> {
        if generation != self.generation || self.rows.len() > CACHE_ROWS {
            self.rows.clear();
            self.generation = generation;
        }
        // Rows not in the cache are read in one range query per table, not one by one.
        let mut stored: HashMap<Key, Agg> = HashMap::new();
        for grain in [Grain::Hour, Grain::Day] {
            let missing = deltas
                .keys()
                .filter(|k| k.grain == grain && !self.rows.contains_key(k))
                .map(|k| k.at_ms);
            let (Some(lo), Some(hi)) = (missing.clone().min(), missing.max()) else {
                continue;
            };
            let found: Vec<RollupRow> = sqlx::query_as(&format!(
                "SELECT {0} AS at_ms, {COLUMNS} FROM {1} WHERE {0} >= ? AND {0} <= ?",
                grain.column(),
                grain.table()
            ))
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *conn)
            .await?;
            stored.extend(found.into_iter().map(|r| r.into_parts(grain)));
        }
        let mut rows = Vec::with_capacity(deltas.len());
        for (k, d) in deltas {
            let mut total = match self.rows.get(&k) {
                Some(a) => a.clone(),
                None => stored.remove(&k).unwrap_or_default(),
            };
            total.merge(&d);
            rows.push((k, total));
        }
        put_rollups(conn, &rows).await?;
        Ok(rows)
    }

    pub fn keep(&mut self, rows: Vec<(Key, Agg)>) {
        self.rows.extend(rows);
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

/// Writes whole rollup rows, up to 64 per statement.
async fn put_rollups(conn: &mut SqliteConnection, rows: &[(Key, Agg)]) -> Result<()> {
    use sqlx::Arguments;
    for grain in [Grain::Hour, Grain::Day] {
        let these: Vec<&(Key, Agg)> = rows.iter().filter(|(k, _)| k.grain == grain).collect();
        for chunk in these.chunks(64) {
            let sql = format!(
                "INSERT INTO {0} ({1}, endpoint_id, prompt_version_id, source, calls,
                     errors, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens,
                     cost_pico, estimated_calls, latency_hist) VALUES {2}
                 ON CONFLICT ({1}, endpoint_id, prompt_version_id, source) DO UPDATE SET
                     calls = excluded.calls, errors = excluded.errors,
                     prompt_tokens = excluded.prompt_tokens, cached_tokens = excluded.cached_tokens,
                     completion_tokens = excluded.completion_tokens,
                     reasoning_tokens = excluded.reasoning_tokens, cost_pico = excluded.cost_pico,
                     estimated_calls = excluded.estimated_calls,
                     latency_hist = excluded.latency_hist",
                grain.table(),
                grain.column(),
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut args = sqlx::sqlite::SqliteArguments::default();
            for (k, a) in chunk {
                for v in [
                    k.at_ms,
                    k.endpoint_id,
                    k.prompt_version_id,
                    k.source,
                    a.calls,
                    a.errors,
                    a.prompt_tokens,
                    a.cached_tokens,
                    a.completion_tokens,
                    a.reasoning_tokens,
                    a.cost_pico,
                    a.estimated_calls,
                ] {
                    args.add(v).expect("an integer encodes");
                }
                args.add(a.blob()).expect("a blob encodes");
            }
            sqlx::query_with(&sql, args).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// A rollup row's columns after its time.
const COLUMNS: &str = "endpoint_id, prompt_version_id, source, calls, errors, prompt_tokens,
     cached_tokens, completion_tokens, reasoning_tokens, cost_pico, estimated_calls, latency_hist";

#[derive(sqlx::FromRow)]
pub(crate) struct RollupRow {
    at_ms: i64,
    endpoint_id: i64,
    prompt_version_id: i64,
    source: i64,
    calls: i64,
    errors: i64,
    prompt_tokens: i64,
    cached_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
    cost_pico: i64,
    estimated_calls: i64,
    latency_hist: Vec<u8>,
}

impl RollupRow {
    pub(crate) fn into_parts(self, grain: Grain) -> (Key, Agg) {
        (
            Key {
                grain,
                at_ms: self.at_ms,
                endpoint_id: self.endpoint_id,
                prompt_version_id: self.prompt_version_id,
                source: self.source,
            },
            Agg {
                calls: self.calls,
                errors: self.errors,
                prompt_tokens: self.prompt_tokens,
                cached_tokens: self.cached_tokens,
                completion_tokens: self.completion_tokens,
                reasoning_tokens: self.reasoning_tokens,
                cost_pico: self.cost_pico,
                estimated_calls: self.estimated_calls,
                hist: Agg::hist_from(&self.latency_hist),
            },
        )
    }
}

const FACTS: &str = "SELECT id, at_ms, endpoint_id, prompt_version_id, source, outcome, latency_ms,
     prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost_pico_usd,
     usage_reported FROM calls WHERE at_ms >= ? AND id > ? ORDER BY id LIMIT ?";

#[derive(sqlx::FromRow)]
struct FactRow {
    id: i64,
    #[sqlx(flatten)]
    fact: Fact,
}

/// Rebuilds every rollup row from the UTC day of `from_ms` on, from the log (in the caller's
/// transaction).
async fn rebuild_in(conn: &mut SqliteConnection, from_ms: i64) -> Result<()> {
    let from = day_of(from_ms);
    for grain in [Grain::Hour, Grain::Day] {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE {} >= ?",
            grain.table(),
            grain.column()
        ))
        .bind(from)
        .execute(&mut *conn)
        .await?;
    }
    let mut aggs: HashMap<Key, Agg> = HashMap::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<FactRow> = sqlx::query_as(FACTS)
            .bind(from)
            .bind(after)
            .bind(SCAN)
            .fetch_all(&mut *conn)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for r in &rows {
            r.fact.count_in(&mut aggs);
        }
    }
    let rows: Vec<(Key, Agg)> = aggs.into_iter().collect();
    put_rollups(conn, &rows).await
}

/// Runs `f` inside `BEGIN IMMEDIATE … COMMIT` on a connection of the pool (rolled back on error).
macro_rules! immediate {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut pooled = $store.pool().acquire().await?;
        let $conn: &mut SqliteConnection = &mut pooled;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *$conn).await?;
        let out: Result<_> = async { $body }.await;
        match out {
            Ok(v) => match sqlx::query("COMMIT").execute(&mut *$conn).await {
                Ok(_) => Ok(v),
                Err(e) => {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *$conn).await;
                    Err(StoreError::from(e))
                }
            },
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *$conn).await;
                Err(e)
            }
        }
    }};
}

/// An endpoint's prices in time order: its own (from the beginning), then the dated ones.
pub(crate) type Timeline = Vec<(Option<i64>, i64, Prices)>;

/// The price in force at `at_ms`, and its id (`None`: the endpoint's own price).
pub(crate) fn price_at(timeline: &Timeline, at_ms: i64) -> (Option<i64>, Prices) {
    timeline
        .iter()
        .rev()
        .find(|(_, from, _)| *from <= at_ms)
        .or(timeline.first())
        .map(|(id, _, p)| (*id, *p))
        .unwrap_or_default()
}

fn prices_of(input: i64, cached: Option<i64>, output: i64) -> Prices {
    Prices {
        input: PricePerMillion::from_micros(input),
        cached_input: cached.map(PricePerMillion::from_micros),
        output: PricePerMillion::from_micros(output),
    }
}

/// Every endpoint's timeline.
async fn timelines(conn: &mut SqliteConnection) -> Result<HashMap<i64, Timeline>> {
    let mut out: HashMap<i64, Timeline> = HashMap::new();
    let base: Vec<(i64, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT id, price_in_micros, price_cached_micros, price_out_micros FROM endpoints",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, i, c, o) in base {
        out.insert(id, vec![(None, i64::MIN, prices_of(i, c, o))]);
    }
    let dated: Vec<(i64, i64, i64, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT id, endpoint_id, from_ms, in_micros, cached_micros, out_micros FROM prices
         ORDER BY endpoint_id, from_ms",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, ep, from, i, c, o) in dated {
        out.entry(ep)
            .or_default()
            .push((Some(id), from, prices_of(i, c, o)));
    }
    Ok(out)
}

impl Store {
    /// Rebuilds the rollups from `from_ms`'s day on from the log.
    pub async fn rebuild_rollups(&self, from_ms: i64) -> Result<()> {
        immediate!(self, |conn| {
            // Inside the transaction: the writer's next batch, which waits for it, sees it.
            self.rollups_rewritten();
            rebuild_in(conn, from_ms).await
        })
    }

    /// Every rollup row, hourly then daily, in key order (what a rebuild writes, for checks).
    #[allow(clippy::type_complexity)]
    pub async fn rollups(&self) -> Result<Vec<(bool, i64, i64, i64, i64, Vec<i64>, Vec<u8>)>> {
        let mut out = Vec::new();
        for grain in [Grain::Hour, Grain::Day] {
            let rows: Vec<RollupRow> = sqlx::query_as(&format!(
                "SELECT {0} AS at_ms, {COLUMNS} FROM {1}
                 ORDER BY {0}, endpoint_id, prompt_version_id, source",
                grain.column(),
                grain.table()
            ))
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                let blob = r.latency_hist.clone();
                let (k, a) = r.into_parts(grain);
                out.push((
                    grain == Grain::Day,
                    k.at_ms,
                    k.endpoint_id,
                    k.prompt_version_id,
                    k.source,
                    vec![
                        a.calls,
                        a.errors,
                        a.prompt_tokens,
                        a.cached_tokens,
                        a.completion_tokens,
                        a.reasoning_tokens,
                        a.cost_pico,
                        a.estimated_calls,
                    ],
                    blob,
                ));
            }
        }
        Ok(out)
    }

    async fn rollup_rows(&self, grain: Grain, from: i64, to: i64) -> Result<Vec<(Key, Agg)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let rows: Vec<RollupRow> = sqlx::query_as(&format!(
            "SELECT {0} AS at_ms, {COLUMNS} FROM {1} WHERE {0} >= ? AND {0} < ?",
            grain.column(),
            grain.table()
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.into_parts(grain)).collect())
    }

    /// One endpoint's price timeline.
    pub(crate) async fn timeline(&self, endpoint_id: i64) -> Result<Timeline> {
        let mut conn = self.pool().acquire().await?;
        Ok(timelines(&mut conn)
            .await?
            .remove(&endpoint_id)
            .unwrap_or_default())
    }

    /// An endpoint's prices as lists show them.
    pub async fn price_entries(&self, endpoint: &str) -> Result<Vec<PriceEntry>> {
        let ep = self.endpoint_by_name(endpoint).await?;
        Ok(self
            .timeline(ep.id)
            .await?
            .into_iter()
            .map(|(id, from, prices)| PriceEntry {
                id,
                endpoint: ep.spec.name.clone(),
                from_ms: id.map(|_| from),
                prices,
            })
            .collect())
    }

    /// A price for `endpoint` from `from_ms` on (replacing one from the same instant).
    pub async fn set_price(&self, endpoint: &str, from_ms: i64, p: &Prices) -> Result<i64> {
        let ep = self.endpoint_by_name(endpoint).await?;
        Ok(sqlx::query_scalar(
            "INSERT INTO prices (endpoint_id, from_ms, in_micros, cached_micros, out_micros,
                 created_ms) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (endpoint_id, from_ms) DO UPDATE SET in_micros = excluded.in_micros,
                 cached_micros = excluded.cached_micros, out_micros = excluded.out_micros,
                 created_ms = excluded.created_ms
             RETURNING id",
        )
        .bind(ep.id)
        .bind(from_ms)
        .bind(p.input.micros())
        .bind(p.cached_input.map(PricePerMillion::micros))
        .bind(p.output.micros())
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?)
    }

    /// Costs every call made since `since_ms` again with the price in force when it was made,
    /// rebuilds the rollups from there, and logs what changed — all in one transaction.
    pub async fn recompute_costs(&self, since_ms: i64, author: &str) -> Result<Recomputation> {
        let at_ms = now_ms();
        let (id, checked, changed, before, after) = immediate!(self, |conn| {
            let prices = timelines(conn).await?;
            let (mut checked, mut changed, mut before, mut after) = (0i64, 0i64, 0i64, 0i64);
            let mut last = 0i64;
            loop {
                #[allow(clippy::type_complexity)]
                let rows: Vec<(
                    i64,
                    i64,
                    Option<i64>,
                    i64,
                    i64,
                    i64,
                    i64,
                    Option<i64>,
                    Option<i64>,
                    Option<bool>,
                )> = sqlx::query_as(
                    "SELECT id, at_ms, endpoint_id, prompt_tokens, cached_tokens,
                             completion_tokens, reasoning_tokens, cost_pico_usd, price_id,
                             usage_reported
                         FROM calls WHERE at_ms >= ? AND id > ? AND prompt_tokens IS NOT NULL
                         ORDER BY id LIMIT ?",
                )
                .bind(since_ms)
                .bind(last)
                .bind(SCAN)
                .fetch_all(&mut *conn)
                .await?;
                let Some(end) = rows.last() else { break };
                last = end.0;
                for (id, at, ep, pt, ct, cmp, rt, cost, price_id, reported) in rows {
                    checked += 1;
                    let Some(timeline) = ep.and_then(|e| prices.get(&e)) else {
                        continue;
                    };
                    let (new_id, p) = price_at(timeline, at);
                    let usage = milc_api::Usage {
                        prompt_tokens: pt as u64,
                        cached_tokens: ct as u64,
                        completion_tokens: cmp as u64,
                        reasoning_tokens: rt as u64,
                        source: if reported == Some(true) {
                            UsageSource::Reported
                        } else {
                            UsageSource::Estimated
                        },
                    };
                    let new_cost = p.cost(&usage).pico_usd;
                    let old = cost.unwrap_or(0);
                    before += old;
                    after += new_cost;
                    if Some(new_cost) != cost || new_id != price_id {
                        changed += 1;
                        sqlx::query(
                            "UPDATE calls SET cost_pico_usd = ?, price_id = ? WHERE id = ?",
                        )
                        .bind(new_cost)
                        .bind(new_id)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
            }
            if changed > 0 {
                self.rollups_rewritten();
                rebuild_in(conn, since_ms).await?;
            }
            // Logged in the same transaction: no recomputation goes unrecorded.
            let id = sqlx::query(
                "INSERT INTO recomputations (at_ms, since_ms, calls_checked, calls_changed,
                 before_pico, after_pico, author) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(at_ms)
            .bind(since_ms)
            .bind(checked)
            .bind(changed)
            .bind(before)
            .bind(after)
            .bind(author)
            .execute(&mut *conn)
            .await?
            .last_insert_rowid();
            Ok((id, checked, changed, before, after))
        })?;
        let cost = |pico_usd| Cost {
            pico_usd,
            source: UsageSource::Reported,
        };
        Ok(Recomputation {
            id,
            at_ms,
            since_ms,
            calls_checked: checked as u64,
            calls_changed: changed as u64,
            before: cost(before),
            after: cost(after),
            author: author.to_owned(),
        })
    }

    /// Usage in `[since, until)` (whole UTC hours) grouped by `group_by`, from the rollups.
    pub async fn usage(&self, q: &UsageQuery) -> Result<UsageReport> {
        // Whole days in the middle come from the daily rollups, the hours around them from the
        // hourly ones (all of it hourly when grouped by hour).
        let (since, until) = (hour_of(q.since_ms), q.until_ms);
        let by = |d: Dim| q.group_by.contains(&d);
        let (d0, d1) = (day_of(since + DAY_MS - 1), day_of(until));
        let rows = if by(Dim::Hour) || d0 >= d1 {
            self.rollup_rows(Grain::Hour, since, until).await?
        } else {
            let mut rows = self.rollup_rows(Grain::Hour, since, d0).await?;
            rows.extend(self.rollup_rows(Grain::Day, d0, d1).await?);
            rows.extend(self.rollup_rows(Grain::Hour, d1, until).await?);
            rows
        };
        type GroupKey = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);
        let mut groups: BTreeMap<GroupKey, Agg> = BTreeMap::new();
        let mut total = Agg::default();
        for (k, a) in rows {
            let bucket = if by(Dim::Hour) {
                Some(k.at_ms)
            } else if by(Dim::Day) {
                Some(day_of(k.at_ms))
            } else {
                None
            };
            let key = (
                bucket,
                by(Dim::Endpoint).then_some(k.endpoint_id),
                by(Dim::Prompt).then_some(k.prompt_version_id),
                by(Dim::Source).then_some(k.source),
            );
            total.merge(&a);
            groups.entry(key).or_default().merge(&a);
        }
        let endpoints: HashMap<i64, String> = sqlx::query_as("SELECT id, name FROM endpoints")
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .collect();
        let prompts: HashMap<i64, String> = sqlx::query_as(
            "SELECT v.id, p.name || '@' || v.version FROM prompt_versions v
             JOIN prompts p ON p.id = v.prompt_id",
        )
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .collect();
        let name = |map: &HashMap<i64, String>, id: i64, none: &str| {
            map.get(&id).cloned().unwrap_or_else(|| none.to_owned())
        };
        let mut out = Vec::with_capacity(groups.len());
        for ((bucket, ep, pv, src), a) in groups {
            let mut row = row_of(&a);
            row.bucket_ms = bucket;
            row.endpoint = ep.map(|e| name(&endpoints, e, "(deleted endpoint)"));
            row.prompt = pv.map(|p| name(&prompts, p, "(no prompt version)"));
            row.source = src
                .map(|s| source_from(s).map(|s| s.as_str().to_owned()))
                .transpose()?;
            out.push(row);
        }
        Ok(UsageReport {
            query: q.clone(),
            rows: out,
            totals: row_of(&total),
        })
    }

    /// Drops request and response bodies (call bodies; history inputs, variables and outputs)
    /// of calls made before `before_ms`; figures, the log and the rollups stay. Returns how many
    /// bodies and history entries were emptied.
    pub async fn drop_bodies_before(&self, before_ms: i64) -> Result<(u64, u64)> {
        let bodies = sqlx::query(
            "DELETE FROM call_bodies WHERE call_id IN (SELECT id FROM calls WHERE at_ms < ?)",
        )
        .bind(before_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        let history = sqlx::query(
            "UPDATE history SET entry_json = json_set(entry_json, '$.messages', json('[]'),
                 '$.variables', json('{}'), '$.output', ''), search = ''
             WHERE at_ms < ? AND json_extract(entry_json, '$.output') <> ''",
        )
        .bind(before_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok((bodies, history))
    }

    /// Writes the log of `[since, until)` as BigQuery-ready NDJSON (see [`BIGQUERY_SCHEMA`]) or
    /// CSV with the same columns, streamed; returns the rows written.
    pub async fn export_calls(
        &self,
        since_ms: i64,
        until_ms: i64,
        csv_format: bool,
        out: &mut (dyn Write + Send),
    ) -> Result<u64> {
        use futures_util::TryStreamExt;
        let io = |e: std::io::Error| StoreError::Sql(sqlx::Error::Io(e));
        enum Sink<'a> {
            Csv(Box<csv::Writer<&'a mut (dyn Write + Send)>>),
            Json(&'a mut (dyn Write + Send)),
        }
        let mut sink = if csv_format {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(EXPORT_COLUMNS.iter().map(|(n, ..)| *n))
                .map_err(|e| io(e.into()))?;
            Sink::Csv(Box::new(w))
        } else {
            Sink::Json(out)
        };
        let mut rows = sqlx::query_as::<_, ExportRow>(
            "SELECT c.id, c.at_ms, e.name AS endpoint, m.name AS model, c.source, c.outcome,
                 c.http_status, c.error_kind, c.latency_ms, c.ttft_ms, c.prompt_tokens,
                 c.cached_tokens, c.completion_tokens, c.reasoning_tokens, c.cost_pico_usd,
                 c.usage_reported, p.name || '@' || v.version AS prompt, c.price_id
             FROM calls c JOIN models m ON m.id = c.model_id
             LEFT JOIN endpoints e ON e.id = c.endpoint_id
             LEFT JOIN prompt_versions v ON v.id = c.prompt_version_id
             LEFT JOIN prompts p ON p.id = v.prompt_id
             WHERE c.at_ms >= ? AND c.at_ms < ? ORDER BY c.id",
        )
        .bind(since_ms)
        .bind(until_ms)
        .fetch(self.pool());
        let mut n = 0u64;
        while let Some(r) = rows.try_next().await? {
            let v = r.json()?;
            match &mut sink {
                Sink::Csv(w) => {
                    let cells: Vec<String> = EXPORT_COLUMNS
                        .iter()
                        .map(|(name, ..)| match &v[*name] {
                            serde_json::Value::Null => String::new(),
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect();
                    w.write_record(&cells).map_err(|e| io(e.into()))?;
                }
                Sink::Json(out) => {
                    serde_json::to_writer(&mut **out, &v).map_err(|e| io(e.into()))?;
                    out.write_all(b"\n").map_err(io)?;
                }
            }
            n += 1;
        }
        match sink {
            Sink::Csv(mut w) => w.flush().map_err(io)?,
            Sink::Json(out) => out.flush().map_err(io)?,
        }
        Ok(n)
    }
}

fn row_of(a: &Agg) -> UsageRow {
    UsageRow {
        calls: a.calls as u64,
        errors: a.errors as u64,
        error_rate: if a.calls == 0 {
            0.0
        } else {
            a.errors as f64 / a.calls as f64
        },
        prompt_tokens: a.prompt_tokens as u64,
        cached_tokens: a.cached_tokens as u64,
        completion_tokens: a.completion_tokens as u64,
        reasoning_tokens: a.reasoning_tokens as u64,
        cost: Cost {
            pico_usd: a.cost_pico,
            source: if a.estimated_calls > 0 {
                UsageSource::Estimated
            } else {
                UsageSource::Reported
            },
        },
        estimated_calls: a.estimated_calls as u64,
        latency_p50_ms: a.latency(0.5),
        latency_p95_ms: a.latency(0.95),
        ..UsageRow::default()
    }
}

/// The export's columns: name, BigQuery type, mode, description.
pub const EXPORT_COLUMNS: [(&str, &str, &str, &str); 18] = [
    ("id", "INTEGER", "REQUIRED", "Call id in this database"),
    ("at", "TIMESTAMP", "REQUIRED", "When the call ended (UTC)"),
    (
        "endpoint",
        "STRING",
        "NULLABLE",
        "Endpoint name (null once deleted)",
    ),
    ("model", "STRING", "REQUIRED", "Model served"),
    (
        "source",
        "STRING",
        "REQUIRED",
        "cli, playground, run or gateway",
    ),
    ("outcome", "STRING", "REQUIRED", "ok, error or cancelled"),
    (
        "http_status",
        "INTEGER",
        "NULLABLE",
        "HTTP status of a failed call",
    ),
    ("error_kind", "STRING", "NULLABLE", "Kind of failure"),
    (
        "latency_ms",
        "INTEGER",
        "REQUIRED",
        "Latency from the first send",
    ),
    ("ttft_ms", "INTEGER", "NULLABLE", "Time to the first token"),
    (
        "prompt_tokens",
        "INTEGER",
        "NULLABLE",
        "Input tokens (cached included)",
    ),
    (
        "cached_tokens",
        "INTEGER",
        "NULLABLE",
        "Cached input tokens (a subset of prompt_tokens)",
    ),
    (
        "completion_tokens",
        "INTEGER",
        "NULLABLE",
        "Output tokens (reasoning included)",
    ),
    (
        "reasoning_tokens",
        "INTEGER",
        "NULLABLE",
        "Reasoning tokens (a subset of completion_tokens)",
    ),
    (
        "cost_usd",
        "BIGNUMERIC",
        "NULLABLE",
        "Exact cost in USD (12 decimals)",
    ),
    (
        "usage_source",
        "STRING",
        "NULLABLE",
        "reported by the server, or estimated locally",
    ),
    ("prompt", "STRING", "NULLABLE", "Prompt version, NAME@N"),
    (
        "price_id",
        "INTEGER",
        "NULLABLE",
        "Dated price used (null: the endpoint's own price)",
    ),
];

/// The BigQuery schema of the NDJSON export (`bq load --source_format=NEWLINE_DELIMITED_JSON`).
pub fn bigquery_schema() -> serde_json::Value {
    serde_json::Value::Array(
        EXPORT_COLUMNS
            .iter()
            .map(|(name, ty, mode, description)| {
                serde_json::json!({"name": name, "type": ty, "mode": mode, "description": description})
            })
            .collect(),
    )
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    id: i64,
    at_ms: i64,
    endpoint: Option<String>,
    model: String,
    source: i64,
    outcome: i64,
    http_status: Option<i64>,
    error_kind: Option<i64>,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    prompt_tokens: Option<i64>,
    cached_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_pico_usd: Option<i64>,
    usage_reported: Option<bool>,
    prompt: Option<String>,
    price_id: Option<i64>,
}

impl ExportRow {
    fn json(&self) -> Result<serde_json::Value> {
        let at = chrono::DateTime::from_timestamp_millis(self.at_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default();
        let outcome = crate::store::outcome_from(self.outcome)?.as_str();
        Ok(serde_json::json!({
            "id": self.id,
            "at": at,
            "endpoint": self.endpoint,
            "model": self.model,
            "source": source_from(self.source)?.as_str(),
            "outcome": outcome,
            "http_status": self.http_status,
            "error_kind": self.error_kind.map(crate::store::error_from).transpose()?.map(|k| k.as_str()),
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_pico_usd.map(|p| Cost { pico_usd: p, source: UsageSource::Reported }.usd()),
            "usage_source": self.prompt_tokens.map(|_| if self.usage_reported == Some(true) { "reported" } else { "estimated" }),
            "prompt": self.prompt,
            "price_id": self.price_id,
        }))
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

    #[test]
    fn the_price_in_force_is_the_latest_that_began() {
        let p = |i| prices_of(i, None, 0);
        let t: Timeline = vec![
            (None, i64::MIN, p(1)),
            (Some(7), 1000, p(2)),
            (Some(8), 2000, p(3)),
        ];
        assert_eq!(price_at(&t, 5), (None, p(1)));
        assert_eq!(price_at(&t, 1000), (Some(7), p(2)));
        assert_eq!(price_at(&t, 1999), (Some(7), p(2)));
        assert_eq!(price_at(&t, 9999), (Some(8), p(3)));
    }
}

/// A moment as the CLI takes it: `24h` or `7d` (that long ago), `now`, a UTC date `2026-11-01`,
/// or an RFC 3339 time; milliseconds since the epoch.
pub fn parse_when(s: &str, now_ms: i64) -> Option<i64> {
    let t = s.trim();
    if t == "now" {
        return Some(now_ms);
    }
    if let Some(n) = t.strip_suffix('h').and_then(|n| n.parse::<i64>().ok()) {
        return Some(now_ms - n * HOUR_MS);
    }
    if let Some(n) = t.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        return Some(now_ms - n * DAY_MS);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// What an export holds: the rows of a usage report as shown, or the calls themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    Shown,
    Ndjson,
    Csv,
}

impl ExportKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shown" => Some(Self::Shown),
            "ndjson" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// A usage report as CSV, one line per row and a totals line.
pub fn report_csv(r: &UsageReport, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "bucket",
        "endpoint",
        "prompt",
        "source",
        "calls",
        "errors",
        "error_rate",
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cost_usd",
        "cost_estimated",
        "latency_p50_ms",
        "latency_p95_ms",
    ])?;
    let when = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
            .unwrap_or_else(|| "total".into())
    };
    for (row, total) in r.rows.iter().map(|x| (x, false)).chain([(&r.totals, true)]) {
        w.write_record([
            if total {
                "total".to_owned()
            } else {
                when(row.bucket_ms)
            },
            row.endpoint.clone().unwrap_or_default(),
            row.prompt.clone().unwrap_or_default(),
            row.source.clone().unwrap_or_default(),
            row.calls.to_string(),
            row.errors.to_string(),
            format!("{:.4}", row.error_rate),
            row.prompt_tokens.to_string(),
            row.cached_tokens.to_string(),
            row.completion_tokens.to_string(),
            row.reasoning_tokens.to_string(),
            row.cost.usd(),
            (row.cost.source == UsageSource::Estimated).to_string(),
            format!("{:.1}", row.latency_p50_ms),
            format!("{:.1}", row.latency_p95_ms),
        ])?;
    }
    w.flush()
}

impl crate::Console {
    /// Usage grouped for a chart or a table, read from the rollups.
    pub async fn usage(&self, q: &UsageQuery) -> std::result::Result<UsageReport, crate::Error> {
        if q.until_ms <= q.since_ms {
            return Err(crate::Error::invalid("until", "must be after since"));
        }
        if q.group_by.contains(&Dim::Day) && q.group_by.contains(&Dim::Hour) {
            return Err(crate::Error::invalid("group_by", "day or hour, not both"));
        }
        Ok(self.store().usage(q).await?)
    }

    /// The calls behind a bar.
    pub async fn usage_calls(
        &self,
        q: &milc_api::usage::CallsQuery,
    ) -> std::result::Result<Vec<milc_api::CallRecord>, crate::Error> {
        Ok(self.store().calls_between(q).await?)
    }

    /// Writes usage to `out`: the report's rows (`Shown`), or the calls of its range as NDJSON
    /// or CSV. Returns the rows written.
    pub async fn export_usage(
        &self,
        q: &UsageQuery,
        kind: ExportKind,
        out: &mut (dyn Write + Send),
    ) -> std::result::Result<u64, crate::Error> {
        let io = |e: std::io::Error| crate::Error::invalid("output", format!("cannot write: {e}"));
        match kind {
            ExportKind::Shown => {
                let r = self.usage(q).await?;
                report_csv(&r, out).map_err(io)?;
                Ok(r.rows.len() as u64)
            }
            ExportKind::Ndjson | ExportKind::Csv => Ok(self
                .store()
                .export_calls(q.since_ms, q.until_ms, kind == ExportKind::Csv, out)
                .await?),
        }
    }

    /// [`Self::export_usage`] to a file (empty path: the downloads folder), written through a
    /// temporary file; returns its path and the rows written.
    pub async fn export_usage_file(
        &self,
        q: &UsageQuery,
        kind: ExportKind,
        path: &str,
    ) -> std::result::Result<(String, u64), crate::Error> {
        let name = match kind {
            ExportKind::Shown => "milc-usage.csv",
            ExportKind::Ndjson => "milc-calls.ndjson",
            ExportKind::Csv => "milc-calls.csv",
        };
        let mut file = crate::console::PartialFile::create(path, name)?;
        let n = self.export_usage(q, kind, file.writer()).await?;
        Ok((file.commit()?, n))
    }

    /// A dated price for an endpoint; returns its timeline.
    pub async fn set_price(
        &self,
        endpoint: &str,
        from_ms: i64,
        prices: &Prices,
    ) -> std::result::Result<Vec<PriceEntry>, crate::Error> {
        self.store().set_price(endpoint, from_ms, prices).await?;
        Ok(self.store().price_entries(endpoint).await?)
    }

    pub async fn prices(
        &self,
        endpoint: &str,
    ) -> std::result::Result<Vec<PriceEntry>, crate::Error> {
        Ok(self.store().price_entries(endpoint).await?)
    }

    /// Re-costs calls since `since_ms` with the prices in force when they were made (logged).
    pub async fn recompute_costs(
        &self,
        since_ms: i64,
    ) -> std::result::Result<Recomputation, crate::Error> {
        Ok(self
            .store()
            .recompute_costs(since_ms, &crate::prompts::author())
            .await?)
    }

    /// Keeps request and response bodies `days` days (None: for ever), applied now and at
    /// every start; returns the bodies and history entries emptied now.
    pub async fn set_retention(
        &self,
        days: Option<u32>,
    ) -> std::result::Result<(u64, u64), crate::Error> {
        match days {
            Some(d) => {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ('retention_body_days', ?)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(d.to_string())
                .execute(self.store().pool())
                .await
                .map_err(StoreError::from)?;
            }
            None => {
                sqlx::query("DELETE FROM meta WHERE key = 'retention_body_days'")
                    .execute(self.store().pool())
                    .await
                    .map_err(StoreError::from)?;
            }
        }
        self.apply_retention().await
    }

    /// Applies the retention setting, if any.
    pub async fn apply_retention(&self) -> std::result::Result<(u64, u64), crate::Error> {
        let days = self
            .store()
            .meta("retention_body_days")
            .await?
            .and_then(|d| d.parse::<i64>().ok());
        match days {
            Some(d) => Ok(self
                .store()
                .drop_bodies_before(now_ms() - d * DAY_MS)
                .await?),
            None => Ok((0, 0)),
        }
    }
}
