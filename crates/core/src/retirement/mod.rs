//! Retiring endpoints: the lifecycle (active → deprecated, with a sunset date and a replacement
//! → retired), the one text every shell shows for a deprecated or a retired endpoint, and the
//! "still used by" report of an endpoint or a prompt version, which reads across the domains
//! (prompts and labels, gateway arms, comparisons, use cases, schedules, budgets, drift watches,
//! the call log). Retiring something still referenced, and bringing a retired endpoint back,
//! take an explicit force.

pub mod storage;

use std::collections::BTreeMap;

use milc_api::lifecycle::{Lifecycle, RetirementEntry, UsedBy};
use milc_api::prompt::PromptRef;
use milc_api::{Cost, Endpoint, EndpointStatus, UsageSource};

use crate::db::{self, now_ms, DbConn, StoreError};
use crate::{endpoints, prompts, Console, Error};
use storage::On;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A moment as the lifecycle shows it: the UTC date, with the time when it is not midnight.
pub fn when(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms.rem_euclid(DAY_MS) == 0 => t.format("%Y-%m-%d").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => format!("{ms} ms"),
    }
}

/// A sunset as typed: a UTC date `2027-01-31` (its midnight) or an RFC 3339 time.
pub fn parse_sunset(s: &str) -> Result<i64, Error> {
    let t = s.trim();
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|d| d.timestamp_millis())
        })
        .ok_or_else(|| {
            Error::invalid(
                "sunset",
                format!(
                    "'{s}' is not a date: write it like 2027-01-31 (UTC) or as an RFC 3339 time"
                ),
            )
        })
}

/// What every shell says when a deprecated endpoint is used (its sunset date and replacement);
/// `None` for an endpoint that is not deprecated.
pub fn warning(ep: &Endpoint) -> Option<String> {
    (ep.spec.status == EndpointStatus::Deprecated).then(|| {
        let mut s = format!("endpoint '{}' is deprecated", ep.spec.name);
        match ep.sunset_ms {
            Some(ms) => s.push_str(&format!(" (sunset {})", when(ms))),
            None => s.push_str(" (no sunset date set)"),
        }
        if let Some(r) = &ep.replacement {
            s.push_str(&format!(": use '{r}' instead"));
        }
        s
    })
}

/// Why a retired endpoint refuses a call, naming what replaces it.
pub fn retired_message(ep: &Endpoint) -> String {
    let mut s = format!("'{}' is retired and takes no new calls", ep.spec.name);
    if let Some(r) = &ep.replacement {
        s.push_str(&format!(": use '{r}' instead"));
    }
    s
}

/// Whether calls may go to `ep`: a retired endpoint is refused (the error names its
/// replacement); a deprecated one may be used, with [`warning`] to show (and logged).
pub fn check_usable(ep: &Endpoint) -> Result<Option<String>, Error> {
    if ep.spec.status == EndpointStatus::Retired {
        return Err(Error::invalid("endpoint", retired_message(ep)));
    }
    let w = warning(ep);
    if let Some(w) = &w {
        tracing::info!(endpoint = %ep.spec.name, "{w}");
    }
    Ok(w)
}

/// The [`warning`]s of the deprecated endpoints among `names`, looked up in `all`: each once,
/// in order; unknown names are skipped.
pub fn warnings_among(all: &[Endpoint], names: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if let Some(w) = all.iter().find(|e| e.spec.name == *n).and_then(warning) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

fn usd(pico_usd: i64) -> String {
    Cost {
        pico_usd,
        source: UsageSource::Reported,
    }
    .to_string()
}

/// `name:label → name@N`, one per label.
fn labels(rows: Vec<(String, String, i64)>) -> Vec<String> {
    rows.into_iter()
        .map(|(p, l, v)| format!("{p}:{l} → {p}@{v}"))
        .collect()
}

/// `a / b`, one per pair.
fn pairs(rows: Vec<(String, String)>) -> Vec<String> {
    rows.into_iter()
        .map(|(a, b)| format!("{a} / {b}"))
        .collect()
}

fn usecases(rows: Vec<(String, bool)>) -> Vec<String> {
    rows.into_iter()
        .map(|(u, chosen)| if chosen { format!("{u} (chosen)") } else { u })
        .collect()
}

/// Calls since `since_ms` by source name.
async fn calls(c: &mut DbConn, on: On, since_ms: i64) -> Result<BTreeMap<String, u64>, Error> {
    storage::calls_by_source(c, on, since_ms)
        .await?
        .into_iter()
        .map(|(code, n)| Ok((db::source_from(code)?.as_str().to_owned(), n as u64)))
        .collect()
}

/// Everything that refers to endpoint `ep`, and its calls of the last 7 and 30 days.
async fn endpoint_report(c: &mut DbConn, ep: &Endpoint) -> Result<UsedBy, Error> {
    let name = &ep.spec.name;
    let on = On::Endpoint(ep.id);
    let now = now_ms();
    let budgets = match crate::calllog::storage::budget(c, ep.id).await? {
        None | Some((None, None)) => vec![],
        Some((daily, monthly)) => {
            let parts: Vec<String> = [("daily", daily), ("monthly", monthly)]
                .into_iter()
                .filter_map(|(what, v)| Some(format!("{what} {}", usd(v?))))
                .collect();
            vec![parts.join(", ")]
        }
    };
    Ok(UsedBy {
        subject: format!("endpoint '{name}'"),
        prompt_versions: storage::versions_defaulting_to(c, name)
            .await?
            .into_iter()
            .map(|(p, v)| format!("{p}@{v}"))
            .collect(),
        labels: labels(storage::labels_defaulting_to(c, name).await?),
        routes: pairs(storage::arms_on_endpoint(c, ep.id).await?),
        comparisons: pairs(storage::comparison_variants(c, on, name).await?),
        usecases: usecases(storage::usecases(c, on).await?),
        schedules: storage::schedules(c, on).await?,
        budgets,
        drift_watches: storage::drift_watches(c, "endpoint", name)
            .await?
            .into_iter()
            .map(|w| {
                format!(
                    "endpoint '{name}' over {}",
                    milc_api::lifecycle::format_duration_ms(w)
                )
            })
            .collect(),
        replacement_for: storage::replaced_by(c, ep.id)
            .await?
            .into_iter()
            .map(|n| format!("endpoint '{n}' (deprecated)"))
            .collect(),
        calls_7d: calls(c, on, now - 7 * DAY_MS).await?,
        calls_30d: calls(c, on, now - 30 * DAY_MS).await?,
    })
}

impl Console {
    /// Whether endpoint `name` takes calls: a retired one is refused with an error naming its
    /// replacement; a deprecated one gives the warning to show. Everything that is about to use
    /// an endpoint (a run, a comparison, a load test, a schedule, a shell) asks this first.
    pub async fn check_in_service(&self, name: &str) -> Result<Option<String>, Error> {
        let ep = endpoints::storage::endpoint_by_name(&mut self.store.read().await?, name).await?;
        check_usable(&ep)
    }

    /// The warnings of the deprecated endpoints among `names` (each once, in order). Names of
    /// endpoints that do not exist are skipped: this only informs.
    pub async fn lifecycle_warnings(&self, names: &[&str]) -> Result<Vec<String>, Error> {
        let all = endpoints::storage::endpoints(&mut self.store.read().await?).await?;
        Ok(warnings_among(&all, names))
    }

    /// Moves endpoint `name` through its lifecycle and returns what still uses it. Deprecating
    /// needs a sunset date and a replacement (another endpoint, not retired); retiring keeps
    /// the sunset and replacement the deprecation named unless new ones are given. Retiring an
    /// endpoint that is still referenced, and bringing a retired one back, are refused unless
    /// `force`; the refusal lists what would break. Running gateways reload at once.
    #[tracing::instrument(skip_all, fields(name, status = to.status.as_str(), force), err(level = "info"))]
    pub async fn set_lifecycle(
        &self,
        name: &str,
        to: Lifecycle,
        force: bool,
    ) -> Result<UsedBy, Error> {
        let mut tx = self.store.write().await?;
        let ep = endpoints::storage::endpoint_by_name(&mut tx, name).await?;
        let from = ep.spec.status;
        if from == EndpointStatus::Retired && to.status != EndpointStatus::Retired && !force {
            return Err(Error::invalid(
                "status",
                format!(
                    "'{name}' is retired: making it {} again needs force (--force)",
                    to.status.as_str()
                ),
            ));
        }
        // The replacement as given (checked), or the one the deprecation named (kept as is).
        let given = to
            .replacement
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let (sunset_ms, replacement) = match to.status {
            EndpointStatus::Active => {
                if to.sunset_ms.is_some() {
                    return Err(Error::invalid(
                        "sunset",
                        "only a deprecated or retired endpoint has a sunset date",
                    ));
                }
                if given.is_some() {
                    return Err(Error::invalid(
                        "replacement",
                        "only a deprecated or retired endpoint has a replacement",
                    ));
                }
                (None, None)
            }
            EndpointStatus::Deprecated => {
                let sunset = to.sunset_ms.ok_or_else(|| {
                    Error::invalid(
                        "sunset",
                        format!("deprecating '{name}' needs the date it is to be retired, e.g. 2027-01-31"),
                    )
                })?;
                let r = given.ok_or_else(|| {
                    Error::invalid(
                        "replacement",
                        format!("deprecating '{name}' needs the endpoint that replaces it"),
                    )
                })?;
                (Some(sunset), Some((r, true)))
            }
            EndpointStatus::Retired => (
                to.sunset_ms.or(ep.sunset_ms).or(Some(now_ms())),
                given
                    .map(|r| (r, true))
                    .or(ep.replacement.as_deref().map(|r| (r, false))),
            ),
        };
        let replacement_id = match replacement {
            None => None,
            Some((r, check)) => {
                let other = endpoints::storage::endpoint_by_name(&mut tx, r)
                    .await
                    .map_err(|e| match e {
                        StoreError::NoSuchEndpoint(_) => {
                            Error::invalid("replacement", format!("no endpoint named '{r}'"))
                        }
                        e => e.into(),
                    })?;
                if other.id == ep.id {
                    return Err(Error::invalid(
                        "replacement",
                        format!("'{name}' cannot replace itself"),
                    ));
                }
                if check && other.spec.status == EndpointStatus::Retired {
                    return Err(Error::invalid(
                        "replacement",
                        format!("'{r}' is retired itself: name an endpoint that takes calls"),
                    ));
                }
                Some(other.id)
            }
        };
        let used = endpoint_report(&mut tx, &ep).await?;
        if to.status == EndpointStatus::Retired
            && from != EndpointStatus::Retired
            && used.is_referenced()
            && !force
        {
            return Err(Error::invalid(
                "status",
                format!(
                    "'{name}' is still used; retiring it would break:\n  {}\nmove them to another endpoint first, or retire it anyway with force (--force)",
                    used.references().join("\n  ")
                ),
            ));
        }
        endpoints::storage::set_lifecycle(&mut tx, ep.id, to.status, sunset_ms, replacement_id)
            .await?;
        db::commit(tx).await?;
        // This process's gateways reload at once (others see the store's fingerprint change).
        self.gateway_changed.send_modify(|n| *n += 1);
        self.noted(&format!("endpoint.{}", to.status.as_str()), name)
            .await?;
        Ok(used)
    }

    /// What still uses endpoint `name`: prompt versions whose default endpoint it is and the
    /// labels on them, gateway arms, comparisons, use cases, schedules, budgets, drift watches,
    /// endpoints it replaces, and its calls of the last 7 and 30 days by source.
    pub async fn endpoint_used_by(&self, name: &str) -> Result<UsedBy, Error> {
        let mut c = self.store.read().await?;
        let ep = endpoints::storage::endpoint_by_name(&mut c, name).await?;
        endpoint_report(&mut c, &ep).await
    }

    /// What still uses a prompt version (`NAME@N`, `NAME:LABEL` or `NAME` for the latest): the
    /// labels on it, gateway arms whose prompt reference resolves to it now, comparisons, use
    /// cases, schedules, drift watches, and its calls of the last 7 and 30 days by source.
    pub async fn prompt_used_by(&self, reference: &str) -> Result<UsedBy, Error> {
        let r = PromptRef::parse(reference).map_err(|e| Error::invalid("prompt", e))?;
        let mut c = self.store.read().await?;
        let v = prompts::storage::resolve(&mut c, &r).await?;
        let full = format!("{}@{}", v.prompt, v.version);
        let id = db::prompt_version_id(&mut c, &v.prompt, v.version)
            .await?
            .ok_or_else(|| StoreError::NoSuchPrompt(full.clone()))?;
        let on = On::Version(id);
        let mut routes = Vec::new();
        for (model, arm, written) in storage::arms_with_prompts(&mut c).await? {
            let Ok(r) = PromptRef::parse(&written) else {
                continue;
            };
            if let Ok(x) = prompts::storage::resolve(&mut c, &r).await {
                if x.prompt == v.prompt && x.version == v.version {
                    routes.push(format!("{model} / {arm} ({written})"));
                }
            }
        }
        let now = now_ms();
        Ok(UsedBy {
            subject: format!("prompt {full}"),
            prompt_versions: vec![],
            labels: labels(storage::labels_on_version(&mut c, id).await?),
            routes,
            comparisons: pairs(storage::comparison_variants(&mut c, on, "").await?),
            usecases: usecases(storage::usecases(&mut c, on).await?),
            schedules: storage::schedules(&mut c, on).await?,
            budgets: vec![],
            drift_watches: storage::drift_watches(&mut c, "prompt", &full)
                .await?
                .into_iter()
                .map(|w| {
                    format!(
                        "prompt {full} over {}",
                        milc_api::lifecycle::format_duration_ms(w)
                    )
                })
                .collect(),
            replacement_for: vec![],
            calls_7d: calls(&mut c, on, now - 7 * DAY_MS).await?,
            calls_30d: calls(&mut c, on, now - 30 * DAY_MS).await?,
        })
    }

    /// Every deprecated or retired endpoint with its sunset, replacement, remaining traffic and
    /// how many references would break: deprecated ones first, soonest sunset first.
    pub async fn retirement(&self) -> Result<Vec<RetirementEntry>, Error> {
        let mut c = self.store.read().await?;
        let mut out = Vec::new();
        for ep in endpoints::storage::endpoints(&mut c).await? {
            if ep.spec.status == EndpointStatus::Active {
                continue;
            }
            let used = endpoint_report(&mut c, &ep).await?;
            out.push(RetirementEntry {
                endpoint: ep.spec.name.clone(),
                lifecycle: ep.lifecycle(),
                calls_7d: used.calls_7d.values().sum(),
                calls_30d: used.calls_30d.values().sum(),
                references: used.references().len() as u64,
            });
        }
        out.sort_by_key(|e| {
            (
                e.lifecycle.status != EndpointStatus::Deprecated,
                e.lifecycle.sunset_ms.unwrap_or(i64::MAX),
                e.endpoint.clone(),
            )
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sunsets_parse_as_dates_or_times_and_show_as_dates() {
        let ms = parse_sunset("2027-01-31").unwrap();
        assert_eq!(when(ms), "2027-01-31");
        assert_eq!(
            when(parse_sunset("2027-01-31T12:30:00Z").unwrap()),
            "2027-01-31 12:30 UTC"
        );
        match parse_sunset("31/01/2027") {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "sunset"),
            other => panic!("{other:?}"),
        }
    }
}
