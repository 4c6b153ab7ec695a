//! Usage and cost over time, read from the call log's hourly and daily rollups (see
//! [`crate::calllog::rollups`]): a chart reads a few hundred rollup rows instead of the log,
//! whole days from the daily rows and the hours around them from the hourly ones. Prices are effective-dated: a call is costed with the price in force
//! when it was made and records which one; a recomputation re-costs past calls after a price is
//! corrected, rebuilds the rollups it touched and is logged. Retention drops bodies, never
//! figures. The export is newline-delimited JSON with a BigQuery schema, or CSV.

mod actions;
mod alerts;
pub mod storage;

use std::io::Write;

use milc_api::export::Format;
use milc_api::usage::{UsageReport, UsageRow};
use milc_api::{CallRecord, Cost, PricePerMillion, Prices, UsageSource};

use crate::calllog::rollups::{Agg, DAY_MS, HOUR_MS};

/// An endpoint's prices in time order: its own (from the beginning), then the dated ones.
pub type Timeline = Vec<(Option<i64>, i64, Prices)>;

/// The price in force at `at_ms`, and its id (`None`: the endpoint's own price).
pub fn price_at(timeline: &Timeline, at_ms: i64) -> (Option<i64>, Prices) {
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
        "cli, playground, run, gateway or loadtest",
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

/// One call as a line of the export: the columns of [`EXPORT_COLUMNS`].
fn export_json(r: &CallRecord) -> serde_json::Value {
    let c = &r.call;
    let at = chrono::DateTime::from_timestamp_millis(c.at_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let u = c.usage.as_ref();
    serde_json::json!({
        "id": r.id,
        "at": at,
        "endpoint": r.endpoint,
        "model": c.model,
        "source": c.source.as_str(),
        "outcome": c.outcome.as_str(),
        "http_status": c.http_status,
        "error_kind": c.error_kind.map(|k| k.as_str()),
        "latency_ms": c.latency_ms,
        "ttft_ms": c.ttft_ms,
        "prompt_tokens": u.map(|u| u.prompt_tokens),
        "cached_tokens": u.map(|u| u.cached_tokens),
        "completion_tokens": u.map(|u| u.completion_tokens),
        "reasoning_tokens": u.map(|u| u.reasoning_tokens),
        "cost_usd": c.cost.map(|c| c.usd()),
        "usage_source": u.map(|u| match u.source {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
        }),
        "prompt": c.prompt.as_ref().map(ToString::to_string),
        "price_id": c.price_id,
    })
}

/// Writes calls as NDJSON lines or CSV rows with the same columns.
pub(crate) enum CallSink<'a> {
    Csv(Box<csv::Writer<&'a mut (dyn Write + Send)>>),
    Json(&'a mut (dyn Write + Send)),
}

impl<'a> CallSink<'a> {
    pub(crate) fn new(csv_format: bool, out: &'a mut (dyn Write + Send)) -> std::io::Result<Self> {
        Ok(if csv_format {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(EXPORT_COLUMNS.iter().map(|(n, ..)| *n))?;
            Self::Csv(Box::new(w))
        } else {
            Self::Json(out)
        })
    }

    pub(crate) fn write(&mut self, r: &CallRecord) -> std::io::Result<()> {
        let v = export_json(r);
        match self {
            Self::Csv(w) => {
                let cells: Vec<String> = EXPORT_COLUMNS
                    .iter()
                    .map(|(name, ..)| match &v[*name] {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                Ok(w.write_record(&cells)?)
            }
            Self::Json(out) => {
                serde_json::to_writer(&mut **out, &v)?;
                out.write_all(b"\n")
            }
        }
    }

    pub(crate) fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Csv(mut w) => w.flush(),
            Self::Json(out) => out.flush(),
        }
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

/// What a usage export holds: the rows of a report as shown, or the calls themselves as
/// NDJSON (with a BigQuery schema) or CSV.
pub const FORMATS: [Format; 3] = [Format::Shown, Format::Ndjson, Format::Csv];

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

#[cfg(test)]
mod tests {
    use super::*;

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
