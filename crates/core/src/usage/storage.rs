//! Every SQL statement of the usage domain: dated prices and recomputation, reports read from the
//! rollups, the call export and body retention.

use std::collections::{BTreeMap, HashMap};

use milc_api::usage::{Dim, PriceEntry, Recomputation, UsageQuery, UsageReport};
use milc_api::{Cost, Endpoint, PricePerMillion, Prices, UsageSource};

use super::{price_at, prices_of, row_of, Timeline};
use crate::calllog::rollups::{day_of, hour_of, Agg, Grain, DAY_MS, SCAN};
use crate::calllog::storage::{rebuild_in, rollup_rows};
use crate::db::{self, now_ms, source_from, DbConn, Result, StoreError};

/// A price as stored: an endpoint's own (no id, no start) or a dated one.
#[derive(sqlx::FromRow)]
struct PriceRow {
    id: Option<i64>,
    endpoint_id: i64,
    from_ms: Option<i64>,
    in_micros: i64,
    cached_micros: Option<i64>,
    out_micros: i64,
}

/// Every endpoint's timeline: its own price from the beginning, then the dated ones in order.
async fn timelines(conn: &mut DbConn) -> Result<HashMap<i64, Timeline>> {
    let rows: Vec<PriceRow> = db::query_as(
        "SELECT NULL AS id, id AS endpoint_id, NULL AS from_ms, price_in_micros AS in_micros,
                price_cached_micros AS cached_micros, price_out_micros AS out_micros
         FROM endpoints
         UNION ALL
         SELECT id, endpoint_id, from_ms, in_micros, cached_micros, out_micros FROM prices
         ORDER BY endpoint_id, from_ms NULLS FIRST",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<i64, Timeline> = HashMap::new();
    for r in rows {
        out.entry(r.endpoint_id).or_default().push((
            r.id,
            r.from_ms.unwrap_or(i64::MIN),
            prices_of(r.in_micros, r.cached_micros, r.out_micros),
        ));
    }
    Ok(out)
}

/// One endpoint's price timeline.
pub async fn timeline(c: &mut DbConn, endpoint_id: i64) -> Result<Timeline> {
    Ok(timelines(c).await?.remove(&endpoint_id).unwrap_or_default())
}

/// An endpoint's prices as lists show them.
pub async fn price_entries(c: &mut DbConn, ep: &Endpoint) -> Result<Vec<PriceEntry>> {
    Ok(timeline(c, ep.id)
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
pub async fn set_price(c: &mut DbConn, endpoint_id: i64, from_ms: i64, p: &Prices) -> Result<i64> {
    db::query_scalar(
        "INSERT INTO prices (endpoint_id, from_ms, in_micros, cached_micros, out_micros,
             created_ms) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (endpoint_id, from_ms) DO UPDATE SET in_micros = excluded.in_micros,
             cached_micros = excluded.cached_micros, out_micros = excluded.out_micros,
             created_ms = excluded.created_ms
         RETURNING id",
    )
    .bind(endpoint_id)
    .bind(from_ms)
    .bind(p.input.micros())
    .bind(p.cached_input.map(PricePerMillion::micros))
    .bind(p.output.micros())
    .bind(now_ms())
    .fetch_one(&mut *c)
    .await
}

/// Costs every call made since `since_ms` again with the price in force when it was made,
/// rebuilds the rollups from there, and logs what changed, in the caller's transaction (so
/// none of it happens alone).
/// Costs the calls in `[since, until)` again with the price in force when each was made. With
/// `apply`, changed calls are updated, their rollups rebuilt and the recomputation logged;
/// without, nothing is written (a preview).
pub async fn recompute_costs(
    c: &mut DbConn,
    since_ms: i64,
    until_ms: Option<i64>,
    apply: bool,
    author: &str,
) -> Result<Recomputation> {
    let at_ms = now_ms();
    let conn = c;
    let (id, checked, changed, before, after) = {
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
            )> = db::query_as(
                "SELECT id, at_ms, endpoint_id, prompt_tokens, cached_tokens,
                         completion_tokens, reasoning_tokens, cost_pico_usd, price_id,
                         usage_reported
                     FROM calls WHERE at_ms >= ? AND at_ms < ? AND id > ?
                         AND prompt_tokens IS NOT NULL
                     ORDER BY id LIMIT ?",
            )
            .bind(since_ms)
            .bind(until_ms.unwrap_or(i64::MAX))
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
                    if !apply {
                        continue;
                    }
                    db::query("UPDATE calls SET cost_pico_usd = ?, price_id = ? WHERE id = ?")
                        .bind(new_cost)
                        .bind(new_id)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        if !apply {
            (None, checked, changed, before, after)
        } else {
            if changed > 0 {
                rebuild_in(conn, since_ms).await?;
            }
            // Logged in the same transaction: no recomputation goes unrecorded.
            let id = db::query(
                "INSERT INTO recomputations (at_ms, since_ms, until_ms, calls_checked,
                 calls_changed, before_pico, after_pico, author) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(at_ms)
            .bind(since_ms)
            .bind(until_ms)
            .bind(checked)
            .bind(changed)
            .bind(before)
            .bind(after)
            .bind(author)
            .returning_id(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a recomputation was not recorded".into()))?;
            (Some(id), checked, changed, before, after)
        }
    };
    let cost = |pico_usd| Cost {
        pico_usd,
        source: UsageSource::Reported,
    };
    Ok(Recomputation {
        id,
        at_ms,
        since_ms,
        until_ms,
        calls_checked: checked as u64,
        calls_changed: changed as u64,
        before: cost(before),
        after: cost(after),
        author: author.to_owned(),
    })
}

/// Usage in `[since, until)` (whole UTC hours) grouped by `group_by`, from the rollups.
pub async fn usage(c: &mut DbConn, q: &UsageQuery) -> Result<UsageReport> {
    // Whole days in the middle come from the daily rollups, the hours around them from the
    // hourly ones (all of it hourly when grouped by hour).
    let (since, until) = (hour_of(q.since_ms), q.until_ms);
    let by = |d: Dim| q.group_by.contains(&d);
    let (d0, d1) = (day_of(since + DAY_MS - 1), day_of(until));
    let rows = if by(Dim::Hour) || d0 >= d1 {
        rollup_rows(c, Grain::Hour, since, until).await?
    } else {
        let mut rows = rollup_rows(c, Grain::Hour, since, d0).await?;
        rows.extend(rollup_rows(c, Grain::Day, d0, d1).await?);
        rows.extend(rollup_rows(c, Grain::Hour, d1, until).await?);
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
    let endpoints: HashMap<i64, String> = db::query_as("SELECT id, name FROM endpoints")
        .fetch_all(&mut *c)
        .await?
        .into_iter()
        .collect();
    let prompts: HashMap<i64, String> = db::query_as(
        "SELECT v.id, p.name || '@' || v.version FROM prompt_versions v
         JOIN prompts p ON p.id = v.prompt_id",
    )
    .fetch_all(&mut *c)
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
pub async fn drop_bodies_before(c: &mut DbConn, before_ms: i64) -> Result<(u64, u64)> {
    let bodies = db::query(
        "DELETE FROM call_bodies WHERE call_id IN (SELECT id FROM calls WHERE at_ms < ?)",
    )
    .bind(before_ms)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let history = db::query(match c.engine() {
        db::Engine::Sqlite => {
            "UPDATE history SET entry_json = json_set(entry_json, '$.messages', json('[]'),
                 '$.variables', json('{}'), '$.output', ''), search = ''
             WHERE at_ms < ? AND json_extract(entry_json, '$.output') <> ''"
        }
        db::Engine::Postgres => {
            "UPDATE history SET entry_json = (entry_json::jsonb
                 || '{\"messages\": [], \"variables\": {}, \"output\": \"\"}')::text,
                 search = ''
             WHERE at_ms < ? AND json_extract(entry_json, '$.output') <> ''"
        }
    })
    .bind(before_ms)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok((bodies, history))
}
