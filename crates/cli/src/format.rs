//! Human-readable tables and figure lines for the terminal.

use milc_api::{CallRecord, ChatResult, ConnectionTest, Endpoint, ErrorKind, Usage, UsageSource};

pub fn figures(r: &ChatResult) -> String {
    let mut parts = Vec::new();
    if let Some(t) = r.ttft_ms {
        parts.push(format!("ttft {t} ms"));
    }
    parts.push(format!("latency {} ms", r.latency_ms));
    parts.push(tokens(&r.usage));
    if let Some(tps) = r.tokens_per_sec {
        parts.push(format!("{tps:.1} tok/s"));
    }
    parts.push(format!("${} ({})", r.cost.usd(), source(r.usage.source)));
    if r.attempts > 1 {
        parts.push(format!("{} attempts", r.attempts));
    }
    parts.join(" · ")
}

fn tokens(u: &Usage) -> String {
    let mut s = format!("{} → {} tokens", u.prompt_tokens, u.completion_tokens);
    if u.cached_tokens > 0 {
        s.push_str(&format!(", {} cached", u.cached_tokens));
    }
    if u.reasoning_tokens > 0 {
        s.push_str(&format!(", {} reasoning", u.reasoning_tokens));
    }
    s
}

fn source(s: UsageSource) -> &'static str {
    match s {
        UsageSource::Reported => "reported",
        UsageSource::Estimated => "estimated",
    }
}

pub fn hint(kind: ErrorKind, endpoint: &str) -> String {
    let text = match kind {
        ErrorKind::Auth | ErrorKind::Permission => {
            "check the token: `milc endpoints set-token NAME` reads a new one from stdin"
        }
        ErrorKind::NotFound => {
            "check the model id: `milc endpoints test NAME` lists what the endpoint serves"
        }
        ErrorKind::Connection | ErrorKind::Tls | ErrorKind::Config => {
            "check the endpoint's URL with `milc endpoints test NAME`"
        }
        ErrorKind::RateLimit => "the endpoint is rate-limiting; retry later or raise --max-retries",
        ErrorKind::Quota => "the account's quota is exhausted; retrying will not help",
        ErrorKind::Timeout => "the endpoint did not answer in time; raise --timeout-ms or retry",
        ErrorKind::Server | ErrorKind::Protocol => {
            "the server failed; retry, or report it to its operators"
        }
        ErrorKind::BadRequest | ErrorKind::Conflict => "the server refused the request as sent",
        ErrorKind::Cancelled => "cancelled; the partial answer is above",
        ErrorKind::Internal => "a local failure (database or keyring)",
    };
    text.replace("NAME", &format!("'{endpoint}'"))
}

pub fn endpoints_table(eps: &[Endpoint]) -> String {
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "KIND".into(),
        "STATUS".into(),
        "MODEL".into(),
        "URL".into(),
        "TOKEN".into(),
        "$/1M IN".into(),
        "$/1M OUT".into(),
        "LAST TEST".into(),
    ]];
    for e in eps {
        rows.push(vec![
            e.spec.name.clone(),
            if e.simulator {
                "simulator".into()
            } else {
                "remote".into()
            },
            e.spec.status.as_str().into(),
            e.spec.model.clone(),
            e.spec.base_url.clone(),
            if e.has_token {
                "keyring".into()
            } else {
                "-".into()
            },
            e.spec.prices.input.to_string(),
            e.spec.prices.output.to_string(),
            match &e.last_test {
                None => "-".into(),
                Some(t) if t.ok => format!("ok {} ms", t.latency_ms.unwrap_or(0)),
                Some(t) => format!(
                    "failed: {}",
                    t.error.as_ref().map(|e| e.kind.as_str()).unwrap_or("?")
                ),
            },
        ]);
    }
    table(&rows)
}

pub fn connection_test(name: &str, t: &ConnectionTest) -> String {
    match (&t.error, t.latency_ms) {
        (None, Some(ms)) => format!("'{name}': ok in {ms} ms; models: {}", t.models.join(", ")),
        (Some(e), _) => format!("'{name}': {e}"),
        (None, None) => format!("'{name}': ok"),
    }
}

pub fn calls_table(calls: &[CallRecord]) -> String {
    let mut rows = vec![vec![
        "ID".to_owned(),
        "TIME".into(),
        "ENDPOINT".into(),
        "MODEL".into(),
        "SOURCE".into(),
        "OUTCOME".into(),
        "HTTP".into(),
        "LATENCY".into(),
        "TTFT".into(),
        "TOKENS".into(),
        "COST".into(),
    ]];
    for r in calls {
        let c = &r.call;
        let when = chrono::DateTime::from_timestamp_millis(c.at_ms)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        rows.push(vec![
            r.id.to_string(),
            when,
            r.endpoint.clone().unwrap_or_else(|| "(deleted)".into()),
            c.model.clone(),
            c.source.as_str().into(),
            match c.error_kind {
                Some(k) => format!("{}: {k}", c.outcome.as_str()),
                None => c.outcome.as_str().into(),
            },
            c.http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            format!("{} ms", c.latency_ms),
            c.ttft_ms
                .map(|t| format!("{t} ms"))
                .unwrap_or_else(|| "-".into()),
            c.usage
                .map(|u| format!("{}→{}", u.prompt_tokens, u.completion_tokens))
                .unwrap_or_else(|| "-".into()),
            c.cost
                .map(|c| {
                    format!(
                        "${}{}",
                        c.usd(),
                        if c.source == UsageSource::Estimated {
                            " est."
                        } else {
                            ""
                        }
                    )
                })
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
