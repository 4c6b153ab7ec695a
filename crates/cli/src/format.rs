//! Human-readable tables, figure lines and error hints for the terminal.

use anyhow::anyhow;
use milc_api::dataset::{DatasetPreview, DatasetVersion};
use milc_api::prompt::{
    Change, DiffRow, HistoryEntry, PromptDetail, PromptDiff, PromptSummary, PromptVersion,
};
use milc_api::run::{ItemResult, RunComparison, RunInfo, RunProgress, RunSummary};
use milc_api::{
    CallRecord, ChatResult, ConnectionTest, Endpoint, ErrorKind, StructuredCheck, Usage,
    UsageSource,
};
use milc_core::Error as CoreError;

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
            lifecycle_text(&e.lifecycle()),
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

pub(crate) fn table(rows: &[Vec<String>]) -> String {
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

pub(crate) fn local_time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// First line of a text, cut to `n` characters.
fn gist(text: &str, n: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > n {
        format!("{}…", line.chars().take(n - 1).collect::<String>())
    } else {
        line.to_owned()
    }
}

pub fn structured(c: &StructuredCheck) -> String {
    if c.valid {
        return "structured output: valid\n".into();
    }
    let mut s = format!("structured output: {} error(s)\n", c.errors.len());
    for e in &c.errors {
        let at = if e.path.is_empty() {
            "(answer)"
        } else {
            &e.path
        };
        s.push_str(&format!("  {at}: {}\n", e.message));
    }
    s
}

pub fn prompts_table(list: &[PromptSummary]) -> String {
    let mut rows = vec![vec![
        "NAME".to_owned(),
        "LATEST".into(),
        "LABELS".into(),
        "UPDATED".into(),
        "DESCRIPTION".into(),
    ]];
    for p in list {
        rows.push(vec![
            p.name.clone(),
            format!("v{}", p.latest),
            p.labels
                .iter()
                .map(|(l, v)| format!("{l}=v{v}"))
                .collect::<Vec<_>>()
                .join(" "),
            local_time(p.updated_ms),
            gist(&p.description, 50),
        ]);
    }
    table(&rows)
}

pub fn prompt_version(v: &PromptVersion) -> String {
    let mut s = format!(
        "{}@{}  {}  by {} at {}\n",
        v.prompt,
        v.version,
        &v.hash[..12],
        v.author,
        local_time(v.created_ms)
    );
    if !v.labels.is_empty() {
        s.push_str(&format!("labels: {}\n", v.labels.join(", ")));
    }
    if !v.note.is_empty() {
        s.push_str(&format!("note: {}\n", v.note));
    }
    let vars = v.content.variables();
    if !vars.is_empty() {
        s.push_str(&format!("variables: {}\n", vars.join(", ")));
    }
    if let Some(e) = &v.content.endpoint {
        s.push_str(&format!("endpoint: {e}\n"));
    }
    let params = serde_json::to_string(&v.content.params).unwrap_or_default();
    if params != "{}" {
        s.push_str(&format!("params: {params}\n"));
    }
    if let Some(r) = &v.content.redaction {
        s.push_str(&format!(
            "redaction: {}\n",
            serde_json::to_string(r).unwrap_or_default()
        ));
    }
    for m in &v.content.messages {
        s.push_str(&format!("\n[{}]\n{}\n", m.role.as_str(), m.content));
    }
    s
}

pub fn prompt_history(d: &PromptDetail) -> String {
    let mut rows = vec![vec![
        "VERSION".to_owned(),
        "HASH".into(),
        "AUTHOR".into(),
        "TIME".into(),
        "LABELS".into(),
        "NOTE".into(),
    ]];
    for v in &d.versions {
        rows.push(vec![
            format!("v{}", v.version),
            v.hash[..12].to_owned(),
            v.author.clone(),
            local_time(v.created_ms),
            v.labels.join(" "),
            gist(&v.note, 60),
        ]);
    }
    let mut s = format!("{}: {}\n\n", d.summary.name, d.summary.description);
    s.push_str(&table(&rows));
    if !d.label_history.is_empty() {
        s.push_str("\nlabel moves:\n");
        for m in &d.label_history {
            s.push_str(&format!(
                "  {}  {:<12} {} → v{}  by {}\n",
                local_time(m.at_ms),
                m.label,
                m.from.map_or("(new)".to_owned(), |v| format!("v{v}")),
                m.to,
                m.author
            ));
        }
    }
    s
}

/// Two columns, left version and right version; `~` changed, `-` only left, `+` only right.
/// A prompt diff. On a terminal `width` wide: the two versions side by side, long lines
/// wrapped to the column (never cut). Into a pipe or a file (`width` None): a unified diff,
/// every line whole.
pub fn diff(d: &PromptDiff, width: Option<usize>) -> String {
    let mut s = format!("{} v{} ↔ v{}\n", d.prompt, d.left, d.right);
    for m in d.messages.iter().filter(|m| m.changed()) {
        let role = |r: Option<milc_api::Role>| r.map_or("(none)", |r| r.as_str());
        s.push_str(&format!(
            "\nmessage {} ({} ↔ {})\n",
            m.index + 1,
            role(m.left_role),
            role(m.right_role)
        ));
        for r in &m.rows {
            match width {
                Some(w) => side_by_side_row(&mut s, r, w),
                None => unified_row(&mut s, r),
            }
        }
    }
    if !d.settings.is_empty() {
        s.push_str("\nsettings\n");
        for c in &d.settings {
            s.push_str(&format!(
                "~ {:<16} {} → {}\n",
                c.field,
                c.left.as_deref().unwrap_or("(unset)"),
                c.right.as_deref().unwrap_or("(unset)")
            ));
        }
    }
    if d.messages.iter().all(|m| !m.changed()) && d.settings.is_empty() {
        s.push_str("(no differences)\n");
    }
    s
}

fn diff_mark(c: Change) -> char {
    match c {
        Change::Same => ' ',
        Change::Changed => '~',
        Change::Removed => '-',
        Change::Added => '+',
    }
}

/// `text` in pieces of at most `n` characters (at least one piece).
fn wrap(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// One row side by side in `width` columns: "M nnn text │ nnn text", wrapped.
fn side_by_side_row(s: &mut String, r: &DiffRow, width: usize) {
    // "M " + two cells of "nnn " + text, and " │ " between them.
    let col = width.saturating_sub(5) / 2;
    let text_w = col.saturating_sub(4).max(8);
    let cell = |side: &Option<(u32, String)>| -> Vec<String> {
        match side {
            Some((n, text)) => wrap(text, text_w)
                .into_iter()
                .enumerate()
                .map(|(k, piece)| {
                    if k == 0 {
                        format!("{n:>3} {piece}")
                    } else {
                        format!("    {piece}")
                    }
                })
                .collect(),
            None => vec![String::new()],
        }
    };
    let (left, right) = (cell(&r.left), cell(&r.right));
    for k in 0..left.len().max(right.len()) {
        let mark = if k == 0 { diff_mark(r.change) } else { ' ' };
        let l = left.get(k).map_or("", String::as_str);
        let rr = right.get(k).map_or("", String::as_str);
        let pad = " ".repeat(col.saturating_sub(l.chars().count()));
        let line = format!("{mark} {l}{pad} │ {rr}");
        s.push_str(line.trim_end());
        s.push('\n');
    }
}

/// One row as a unified diff: unchanged lines once, a change as its old and new line.
fn unified_row(s: &mut String, r: &DiffRow) {
    let line = |mark: char, side: &Option<(u32, String)>| match side {
        Some((n, text)) => format!("{mark}{n:>4}  {text}\n"),
        None => String::new(),
    };
    match r.change {
        Change::Same => s.push_str(&line(' ', &r.left)),
        Change::Removed => s.push_str(&line('-', &r.left)),
        Change::Added => s.push_str(&line('+', &r.right)),
        Change::Changed => {
            s.push_str(&line('-', &r.left));
            s.push_str(&line('+', &r.right));
        }
    }
}

pub fn history_table(entries: &[HistoryEntry]) -> String {
    let mut rows = vec![vec![
        "ID".to_owned(),
        "TIME".into(),
        "ENDPOINT".into(),
        "PROMPT".into(),
        "OUTCOME".into(),
        "INPUT".into(),
        "OUTPUT".into(),
    ]];
    for e in entries {
        rows.push(vec![
            e.id.to_string(),
            local_time(e.at_ms),
            e.endpoint.clone(),
            e.prompt.as_ref().map_or("-".into(), ToString::to_string),
            e.outcome.as_str().into(),
            gist(e.messages.last().map_or("", |m| m.content.as_str()), 40),
            gist(&e.output, 40),
        ]);
    }
    table(&rows)
}

pub fn datasets_table(list: &[DatasetVersion]) -> String {
    let mut rows = vec![vec![
        "DATASET".to_owned(),
        "VERSION".into(),
        "ITEMS".into(),
        "VARIABLES".into(),
        "IMPORTED".into(),
        "FROM".into(),
    ]];
    for v in list {
        rows.push(vec![
            v.dataset.clone(),
            v.hash[..12].to_owned(),
            v.items.to_string(),
            v.variables.join(", "),
            local_time(v.created_ms),
            v.source.clone(),
        ]);
    }
    table(&rows)
}

pub fn dataset_preview(name: &str, p: &DatasetPreview) -> String {
    let mut s = format!(
        "'{name}' would get {} items ({} with references), variables: {}\nversion {}\n\n",
        p.items,
        p.with_expected,
        p.variables.join(", "),
        &p.hash[..12]
    );
    let mut rows = vec![{
        let mut h = p.variables.clone();
        h.push("EXPECTED".into());
        h
    }];
    for item in &p.first {
        let mut r: Vec<String> = p
            .variables
            .iter()
            .map(|v| gist(item.vars.get(v).map_or("", String::as_str), 30))
            .collect();
        r.push(gist(&item.expected.join(" | "), 40));
        rows.push(r);
    }
    s.push_str(&table(&rows));
    s
}

pub fn progress_bar(p: &RunProgress) -> String {
    const W: usize = 30;
    let filled = if p.total == 0 {
        W
    } else {
        (p.done as usize * W / p.total as usize).min(W)
    };
    let eta = p
        .eta_ms
        .map(|ms| format!(" · ETA {}s", ms.div_ceil(1000)))
        .unwrap_or_default();
    format!(
        "[{}{}] {}/{} · {} errors · ${} · {} at once{eta}   ",
        "#".repeat(filled),
        ".".repeat(W - filled),
        p.done,
        p.total,
        p.errors,
        p.cost.usd(),
        p.concurrency
    )
}

pub fn run_summary(s: &RunSummary) -> String {
    let r = &s.run;
    let mut out = format!(
        "run {} · {} on '{}' over {}@{} · {} · {}/{} items\n",
        r.id,
        r.prompt,
        r.spec.endpoint,
        r.spec.dataset.split('@').next().unwrap_or(""),
        &r.dataset_hash[..12],
        r.status.as_str(),
        r.done,
        r.total
    );
    let mut rows = vec![vec!["SCORE".to_owned(), "MEAN".into(), "95% CI".into()]];
    for (name, i) in &s.scores {
        rows.push(vec![
            name.clone(),
            format!("{:.4}", i.mean),
            format!("[{:.4}, {:.4}]", i.low, i.high),
        ]);
    }
    if s.scores.is_empty() {
        out.push_str("no scorers\n");
    } else {
        out.push_str(&table(&rows));
    }
    out.push_str(&format!(
        "pass rate {:.1}% · errors {}{} · latency p50 {:.0} / p95 {:.0} / p99 {:.0} ms · TTFT p50 {:.0} ms\n",
        s.pass_rate * 100.0,
        s.errors,
        if s.errors_by_kind.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                s.errors_by_kind
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        s.latency_ms.p50,
        s.latency_ms.p95,
        s.latency_ms.p99,
        s.ttft_ms.p50
    ));
    out.push_str(&format!(
        "tokens {} → {} · cost ${}{} · {} retries\n",
        s.prompt_tokens,
        s.completion_tokens,
        s.cost.usd(),
        if s.cost_estimated {
            " (partly estimated)"
        } else {
            ""
        },
        s.retries
    ));
    out
}

pub fn runs_table(runs: &[RunInfo]) -> String {
    let mut rows = vec![vec![
        "RUN".to_owned(),
        "STARTED".into(),
        "PROMPT".into(),
        "ENDPOINT".into(),
        "DATASET".into(),
        "STATUS".into(),
        "DONE".into(),
    ]];
    for r in runs {
        rows.push(vec![
            r.id.to_string(),
            local_time(r.created_ms),
            r.prompt.to_string(),
            r.spec.endpoint.clone(),
            format!(
                "{}@{}",
                r.spec.dataset.split('@').next().unwrap_or(""),
                &r.dataset_hash[..8]
            ),
            r.status.as_str().into(),
            format!("{}/{}", r.done, r.total),
        ]);
    }
    table(&rows)
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One JUnit test case per item (and repetition): failed items carry their scores or error.
/// The opening of a JUnit report: one suite for the run, `tests` cases of which `failures` failed.
pub fn junit_head(s: &RunSummary, tests: u64, failures: u64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"milc run {}: {}\" tests=\"{tests}\" failures=\"{failures}\">\n",
        s.run.id,
        xml(&s.run.prompt.to_string()),
    )
}

/// One result as a JUnit test case: failed when it errored or a score fell below its threshold.
pub fn junit_case(r: &ItemResult) -> String {
    let scores = r
        .scores
        .iter()
        .map(|(k, v)| format!("{k}={v:.4}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = format!(
        "  <testcase name=\"item {} rep {}\" time=\"{:.3}\">",
        r.item,
        r.rep,
        r.latency_ms as f64 / 1000.0
    );
    if !r.passed {
        let why = match &r.error {
            Some(e) => e.to_string(),
            None => format!("below threshold: {scores}"),
        };
        out.push_str(&format!("<failure message=\"{}\"/>", xml(&why)));
    }
    out.push_str("</testcase>\n");
    out
}

pub const JUNIT_TAIL: &str = "</testsuite>\n";

pub fn comparison(c: &RunComparison) -> String {
    let mut out = format!(
        "run {} ({}) → run {} ({}) over {} items: {} regressions, {} improvements{}\n",
        c.a.id,
        c.a.prompt,
        c.b.id,
        c.b.prompt,
        c.paired,
        c.regressions,
        c.improvements,
        c.primary
            .as_ref()
            .map(|p| format!(" (by {p})"))
            .unwrap_or_default()
    );
    let mut rows = vec![vec![
        "SCORE".to_owned(),
        "MEAN B − A".into(),
        "95% CI (paired)".into(),
    ]];
    for (m, i) in &c.deltas {
        rows.push(vec![
            m.clone(),
            format!("{:+.4}", i.mean),
            format!("[{:+.4}, {:+.4}]", i.low, i.high),
        ]);
    }
    out.push_str(&table(&rows));
    let show = |out: &mut String,
                title: &str,
                items: &mut dyn Iterator<Item = &milc_api::run::ItemDelta>| {
        let list: Vec<_> = items.take(10).collect();
        if list.is_empty() {
            return;
        }
        out.push_str(&format!("\n{title}\n"));
        for d in list {
            let deltas = d
                .deltas
                .iter()
                .map(|(k, v)| format!("{k} {v:+.4}"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!("  item {} rep {}: {deltas}\n", d.item, d.rep));
        }
    };
    let n_reg = c.regressions as usize;
    show(
        &mut out,
        "regressions (worst first)",
        &mut c.items.iter().take(n_reg),
    );
    show(
        &mut out,
        "improvements (best first)",
        &mut c.items.iter().skip(n_reg).take(c.improvements as usize),
    );
    if c.unpaired > 0 {
        out.push_str(&format!(
            "\n{} items were answered by only one of the runs (errors) and are left out\n",
            c.unpaired
        ));
    }
    out
}

/// Pair records and the leaderboard of a set of votes.
pub fn standings(s: &milc_api::arena::Standings) -> String {
    let mut rows = vec![vec![
        "PAIR".to_owned(),
        "W-L-T".into(),
        "BOTH BAD".into(),
        "WIN RATE".into(),
        "95% CI (Wilson, ties ½)".into(),
    ]];
    for p in &s.pairs {
        rows.push(vec![
            format!("{} vs {}", p.first, p.second),
            format!("{}-{}-{}", p.first_wins, p.second_wins, p.ties),
            p.both_bad.to_string(),
            format!("{:.3}", p.win_rate),
            format!("[{:.3}, {:.3}]", p.low, p.high),
        ]);
    }
    let mut out = format!("{} votes\n", s.votes);
    out.push_str(&table(&rows));
    let mut rows = vec![vec![
        "RANK".to_owned(),
        "VARIANT".into(),
        "RATING".into(),
        format!("95% CI ({} rounds, seed {})", s.rounds, s.seed),
        "VOTES".into(),
    ]];
    for r in &s.ratings {
        rows.push(vec![
            r.rank.to_string(),
            r.variant.clone(),
            format!("{:.1}", r.rating),
            format!("[{:.1}, {:.1}]", r.low, r.high),
            r.votes.to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&table(&rows));
    if let Some(a) = &s.agreement {
        let who = if a.method == "cohen" {
            "Cohen"
        } else {
            "Fleiss"
        };
        out.push_str(&format!(
            "\nagreement: {who}'s κ {:.3} over {} items rated by {} raters\n",
            a.kappa, a.items, a.raters
        ));
    }
    out
}

pub fn comparison_info(c: &milc_api::compare::ComparisonInfo) -> String {
    let mut out = format!(
        "comparison {}: {} items of {}@{}, seed {}\n",
        c.name,
        c.items,
        c.dataset,
        &c.dataset_hash[..12.min(c.dataset_hash.len())],
        c.seed
    );
    let mut rows = vec![vec![
        "#".to_owned(),
        "VARIANT".into(),
        "ENDPOINT".into(),
        "RUN".into(),
    ]];
    for v in &c.variants {
        rows.push(vec![
            (v.idx + 1).to_string(),
            v.label.clone(),
            match &v.lineage {
                Some(l) => format!("{} ({l})", v.endpoint),
                None => v.endpoint.clone(),
            },
            match (v.run_id, v.run_status) {
                (Some(id), Some(s)) => format!("{id} ({})", s.as_str()),
                _ => "not run".into(),
            },
        ]);
    }
    out.push_str(&table(&rows));
    if !c.criteria.is_empty() {
        out.push_str(&format!("criteria: {}\n", c.criteria.join(", ")));
    }
    out
}

pub fn comparison_results(r: &milc_api::compare::ComparisonResults) -> String {
    let mut out = comparison_info(&r.comparison);
    let mut rows = vec![vec![
        "VARIANT".to_owned(),
        "ERRORS".into(),
        "SCORES".into(),
        "P50 MS".into(),
        "COST USD".into(),
        "CRITERIA".into(),
    ]];
    for v in &r.variants {
        let scores: Vec<String> = v
            .scores
            .iter()
            .map(|(k, i)| format!("{k} {:.3}", i.mean))
            .collect();
        let criteria: Vec<String> = v
            .criteria
            .iter()
            .map(|(k, m)| format!("{k} {m:.2}"))
            .collect();
        rows.push(vec![
            v.label.clone(),
            v.errors.to_string(),
            scores.join(", "),
            format!("{:.0}", v.latency_p50_ms),
            v.cost.map_or("-".into(), |c| {
                format!(
                    "{}{}",
                    c.usd(),
                    if v.cost_estimated { " (estimated)" } else { "" }
                )
            }),
            criteria.join(", "),
        ]);
    }
    out.push('\n');
    out.push_str(&table(&rows));
    let raters: Vec<String> = r
        .raters
        .iter()
        .map(|p| format!("{} {}/{}", p.rater, p.rated, r.tasks))
        .collect();
    out.push_str(&format!(
        "\nraters: {}\n",
        if raters.is_empty() {
            "none yet".to_owned()
        } else {
            raters.join(", ")
        }
    ));
    out.push_str(&standings(&r.human));
    let b = &r.position_bias;
    out.push_str(&format!(
        "position bias: left side won {} of {} decisive votes ({:.3}, 95% CI [{:.3}, {:.3}])\n",
        b.left_wins, b.decisive, b.share, b.low, b.high
    ));
    for j in &r.judges {
        out.push('\n');
        out.push_str(&judge(j));
    }
    out
}

pub fn judge(j: &milc_api::compare::JudgeResult) -> String {
    let mut out = format!(
        "judge {}: {} pairs judged in both orders, {} inconsistent{}\n",
        j.judge,
        j.pairs,
        j.inconsistent,
        if j.inconsistent_items.is_empty() {
            String::new()
        } else {
            format!(
                " (items {})",
                j.inconsistent_items
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    out.push_str(&standings(&j.standings));
    if let Some(a) = &j.agreement_with_humans {
        out.push_str(&format!(
            "agreement with people: Cohen's κ {:.3} over {} vote pairs\n",
            a.kappa, a.items
        ));
    }
    out
}

pub fn side_by_side(s: &milc_api::compare::SideBySide) -> String {
    let mut out = format!(
        "A: {}\nB: {}\n{} items answered by both; gap by {}\n",
        s.a,
        s.b,
        s.total,
        s.primary.as_deref().unwrap_or("text difference")
    );
    for r in &s.rows {
        let scores = |m: &std::collections::BTreeMap<String, f64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\n#{} gap {:.3}  {}\n  A ({} ms; {}): {}\n  B ({} ms; {}): {}\n",
            r.item,
            r.gap,
            gist(&r.input, 80),
            r.a.latency_ms,
            scores(&r.a.scores),
            gist(&r.a.output, 100),
            r.b.latency_ms,
            scores(&r.b.scores),
            gist(&r.b.output, 100),
        ));
    }
    out
}

pub fn usage(r: &milc_api::usage::UsageReport) -> String {
    let mut rows = vec![vec![
        "BUCKET (UTC)".to_owned(),
        "ENDPOINT".into(),
        "PROMPT".into(),
        "SOURCE".into(),
        "CALLS".into(),
        "ERR %".into(),
        "TOKENS IN→OUT".into(),
        "COST USD".into(),
        "P50 MS".into(),
        "P95 MS".into(),
    ]];
    let when = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let line = |label: String, x: &milc_api::usage::UsageRow| {
        vec![
            label,
            x.endpoint.clone().unwrap_or_default(),
            x.prompt.clone().unwrap_or_default(),
            x.source.clone().unwrap_or_default(),
            x.calls.to_string(),
            format!("{:.1}", x.error_rate * 100.0),
            format!("{}→{}", x.prompt_tokens, x.completion_tokens),
            x.cost.to_string().trim_start_matches('$').to_owned(),
            format!("{:.0}", x.latency_p50_ms),
            format!("{:.0}", x.latency_p95_ms),
        ]
    };
    for x in &r.rows {
        rows.push(line(when(x.bucket_ms), x));
    }
    rows.push(line("total".into(), &r.totals));
    table(&rows)
}

pub fn prices(list: &[milc_api::usage::PriceEntry]) -> String {
    let mut rows = vec![vec![
        "ID".to_owned(),
        "FROM (UTC)".into(),
        "IN".into(),
        "CACHED".into(),
        "OUT (USD per 1M tokens)".into(),
    ]];
    for p in list {
        rows.push(vec![
            p.id.map_or("base".into(), |i| i.to_string()),
            p.from_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map_or("the beginning".into(), |t| {
                    t.format("%Y-%m-%d %H:%M").to_string()
                }),
            p.prices.input.to_string(),
            p.prices
                .cached_input
                .map_or("= in".into(), |c| c.to_string()),
            p.prices.output.to_string(),
        ]);
    }
    table(&rows)
}

pub fn alerts(list: &[milc_api::usage::Alert]) -> String {
    if list.is_empty() {
        return "no alerts\n".into();
    }
    let mut rows = vec![vec![
        "ID".to_owned(),
        "FIRED".into(),
        "KIND".into(),
        "STATE".into(),
        "MESSAGE".into(),
    ]];
    for a in list {
        rows.push(vec![
            a.id.to_string(),
            local_time(a.fired_ms),
            a.kind.as_str().into(),
            match (a.resolved_ms, a.acked_ms) {
                (Some(_), _) => "resolved".into(),
                (None, Some(_)) => "acknowledged".into(),
                (None, None) => "open".into(),
            },
            a.message.clone(),
        ]);
    }
    table(&rows)
}

/// `deprecated (sunset 2027-01-31, replaced by 'new')`.
pub(crate) fn lifecycle_text(l: &milc_api::lifecycle::Lifecycle) -> String {
    let mut parts = Vec::new();
    if l.status != milc_api::EndpointStatus::Active {
        if let Some(ms) = l.sunset_ms {
            parts.push(format!("sunset {}", milc_core::retirement::when(ms)));
        }
        if let Some(r) = &l.replacement {
            parts.push(format!("replaced by '{r}'"));
        }
    }
    if parts.is_empty() {
        l.status.as_str().to_owned()
    } else {
        format!("{} ({})", l.status.as_str(), parts.join(", "))
    }
}

/// Core errors carry the field or upstream message already; add what to do next.
pub(crate) fn explain(e: CoreError) -> anyhow::Error {
    match &e {
        CoreError::Secret(_) => anyhow!(
            "{e}\nhint: run inside a desktop session, or start gnome-keyring-daemon --unlock"
        ),
        _ => anyhow!(e),
    }
}

#[cfg(test)]
mod tests {
    use milc_api::prompt::{Change, DiffRow, MessageDiff, PromptDiff};

    fn long_change() -> PromptDiff {
        let old = "You are a support assistant. Summarize the customer's message for the queue.";
        let new = "You are a support assistant. Summarize the customer's message for the queue in one sentence.";
        PromptDiff {
            prompt: "support".into(),
            left: 1,
            right: 2,
            messages: vec![MessageDiff {
                index: 0,
                left_role: Some(milc_api::Role::System),
                right_role: Some(milc_api::Role::System),
                rows: vec![DiffRow {
                    change: Change::Changed,
                    left: Some((1, old.into())),
                    right: Some((1, new.into())),
                }],
            }],
            settings: vec![],
        }
    }

    #[test]
    fn on_a_terminal_long_lines_wrap_to_its_width_and_nothing_is_cut() {
        let text = super::diff(&long_change(), Some(60));
        assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
        let joined: String = text.split_whitespace().collect();
        assert!(
            joined.contains("onesentence."),
            "the end of the line is there: {text}"
        );
    }

    #[test]
    fn into_a_pipe_it_is_a_unified_diff_of_whole_lines() {
        let text = super::diff(&long_change(), None);
        assert!(text.contains("-   1  You are a support assistant. Summarize the customer's message for the queue.\n"), "{text}");
        assert!(text.contains("+   1  You are a support assistant. Summarize the customer's message for the queue in one sentence.\n"), "{text}");
    }
}
