//! Usage reports, exports, dated prices, recomputation and body retention, as shells call them.

use std::io::Write;

use milc_api::usage::{Dim, PriceEntry, Recomputation, UsageQuery, UsageReport};
use milc_api::{PricePerMillion, Prices};

use milc_api::export::{Exported, Format};

use super::{report_csv, storage, CallSink, FORMATS};
use crate::calllog::rollups::DAY_MS;
use crate::db::{self, now_ms, PartialFile};
use crate::{calllog, endpoints, Console, Error};

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The `meta` key holding how many days bodies are kept.
const RETENTION: &str = "retention_body_days";

impl Console {
    /// Usage grouped for a chart or a table, read from the rollups.
    pub async fn usage(&self, q: &UsageQuery) -> Result<UsageReport, Error> {
        if q.until_ms <= q.since_ms {
            return Err(Error::invalid("until", "must be after since"));
        }
        if q.group_by.contains(&Dim::Day) && q.group_by.contains(&Dim::Hour) {
            return Err(Error::invalid("group_by", "day or hour, not both"));
        }
        // This process's calls first: a caller sees what it logged.
        self.log.rolled_up().await;
        Ok(storage::usage(&mut self.store.read().await?, q).await?)
    }

    /// The calls behind a bar.
    pub async fn usage_calls(
        &self,
        q: &milc_api::usage::CallsQuery,
    ) -> Result<Vec<milc_api::CallRecord>, Error> {
        Ok(calllog::storage::calls_between(&mut self.store.read().await?, q).await?)
    }

    /// Writes usage to `out`: the report's rows (`Shown`), or the calls of its range as NDJSON
    /// or CSV. Returns the rows written.
    pub async fn export_usage(
        &self,
        q: &UsageQuery,
        format: Format,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, Error> {
        let io = |e: std::io::Error| Error::invalid("output", format!("cannot write: {e}"));
        let format = format
            .one_of("usage", &FORMATS)
            .map_err(|e| Error::invalid("format", e))?;
        match format {
            Format::Shown => {
                let r = self.usage(q).await?;
                report_csv(&r, out).map_err(io)?;
                Ok(r.rows.len() as u64)
            }
            _ => {
                let mut sink = CallSink::new(format == Format::Csv, out).map_err(io)?;
                let mut c = self.store.read().await?;
                let (mut after, mut n) = (0, 0u64);
                loop {
                    let page =
                        calllog::storage::calls_page(&mut c, q.since_ms, q.until_ms, after, 10_000)
                            .await?;
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    for r in &page {
                        sink.write(r).map_err(io)?;
                        n += 1;
                    }
                }
                sink.finish().map_err(io)?;
                Ok(n)
            }
        }
    }

    /// [`Self::export_usage`] to a file (empty path: the downloads folder), written through a
    /// temporary file.
    pub async fn export_usage_file(
        &self,
        q: &UsageQuery,
        format: Format,
        path: &str,
    ) -> Result<Exported, Error> {
        let name = match format {
            Format::Shown => "milc-usage.csv",
            Format::Ndjson => "milc-calls.ndjson",
            _ => "milc-calls.csv",
        };
        let mut file = PartialFile::create(path, name)?;
        let records = self.export_usage(q, format, file.writer()).await?;
        Ok(Exported {
            source: format!("usage from {} to {}", utc(q.since_ms), utc(q.until_ms)),
            path: file.commit()?,
            format,
            records,
        })
    }

    /// A dated price for an endpoint; returns its timeline.
    pub async fn set_price(
        &self,
        endpoint: &str,
        from_ms: i64,
        prices: &Prices,
    ) -> Result<Vec<PriceEntry>, Error> {
        let mut c = self.store.read().await?;
        let ep = endpoints::storage::endpoint_by_name(&mut c, endpoint).await?;
        storage::set_price(&mut c, ep.id, from_ms, prices).await?;
        let entries = storage::price_entries(&mut c, &ep).await?;
        drop(c);
        self.noted("price.set", endpoint).await?;
        Ok(entries)
    }

    pub async fn prices(&self, endpoint: &str) -> Result<Vec<PriceEntry>, Error> {
        let mut c = self.store.read().await?;
        let ep = endpoints::storage::endpoint_by_name(&mut c, endpoint).await?;
        Ok(storage::price_entries(&mut c, &ep).await?)
    }

    /// A dated price as a person types it (the window's form and the CLI's flags): `from` a
    /// date, an RFC 3339 time or `now`; USD per 1M tokens, `cached` empty for the input price.
    /// Each mistake names its field.
    pub async fn set_price_as_typed(
        &self,
        endpoint: &str,
        from: &str,
        input: &str,
        cached: &str,
        output: &str,
    ) -> Result<Vec<PriceEntry>, Error> {
        let from_ms = super::parse_when(from, now_ms()).ok_or_else(|| {
            Error::invalid(
                "from",
                format!("'{from}': a date like 2026-11-01, an RFC 3339 time or now"),
            )
        })?;
        let price = |field: &str, s: &str| {
            s.parse::<PricePerMillion>()
                .map_err(|e| Error::invalid(field, e.to_string()))
        };
        let prices = Prices {
            input: price("input", input)?,
            cached_input: match cached.trim() {
                "" => None,
                c => Some(price("cached", c)?),
            },
            output: price("output", output)?,
        };
        self.set_price(endpoint, from_ms, &prices).await
    }

    /// Costs the calls in `[since, until)` again with the prices in force when they were made:
    /// applied and logged, or (`apply` false) previewed without writing anything.
    pub async fn recompute_costs(
        &self,
        since_ms: i64,
        until_ms: Option<i64>,
        apply: bool,
    ) -> Result<Recomputation, Error> {
        if until_ms.is_some_and(|u| u <= since_ms) {
            return Err(Error::invalid("until", "must be after since"));
        }
        let author = self.author();
        if !apply {
            let mut c = self.store.read().await?;
            return Ok(storage::recompute_costs(&mut c, since_ms, until_ms, false, &author).await?);
        }
        let mut tx = self.store.write().await?;
        // Under the write lock: the writer's next batch waits for this and then reads the
        // rollups afresh.
        self.log.rollups_rewritten();
        let r = storage::recompute_costs(&mut tx, since_ms, until_ms, true, &author).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// [`Console::recompute_costs`] with the range as a person types it: `since` 30d, a date
    /// or an RFC 3339 time (empty: every call), `until` the same (empty: now).
    pub async fn recompute_costs_as_typed(
        &self,
        since: &str,
        until: &str,
        apply: bool,
    ) -> Result<Recomputation, Error> {
        let now = now_ms();
        let when = |field: &str, s: &str| match s.trim() {
            "" => Ok(None),
            t => super::parse_when(t, now).map(Some).ok_or_else(|| {
                Error::invalid(
                    field,
                    format!("'{t}': 30d, a date like 2026-11-01 or an RFC 3339 time"),
                )
            }),
        };
        let since_ms = when("since", since)?.unwrap_or(i64::MIN / 2);
        self.recompute_costs(since_ms, when("until", until)?, apply)
            .await
    }

    /// Keeps request and response bodies `days` days (None: for ever), applied now and at
    /// every start; returns the bodies and history entries emptied now.
    pub async fn set_retention(&self, days: Option<u32>) -> Result<(u64, u64), Error> {
        let value = days.map(|d| d.to_string());
        db::meta_put(&mut self.store.read().await?, RETENTION, value.as_deref()).await?;
        self.noted("retention.set", value.as_deref().unwrap_or("forever"))
            .await?;
        self.apply_retention().await
    }

    /// Days request and response bodies are kept (None: for ever).
    pub async fn retention(&self) -> Result<Option<u32>, Error> {
        let mut c = self.store.read().await?;
        Ok(db::meta(&mut c, RETENTION)
            .await?
            .and_then(|d| d.parse().ok()))
    }

    /// Applies the retention setting, if any.
    pub async fn apply_retention(&self) -> Result<(u64, u64), Error> {
        let mut c = self.store.read().await?;
        let days = db::meta(&mut c, RETENTION)
            .await?
            .and_then(|d| d.parse::<i64>().ok());
        match days {
            Some(d) => Ok(storage::drop_bodies_before(&mut c, now_ms() - d * DAY_MS).await?),
            None => Ok((0, 0)),
        }
    }
}
