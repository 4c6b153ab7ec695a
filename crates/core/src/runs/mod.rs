//! The run engine: a prompt version × an endpoint × a dataset version, each item (and repetition)
//! sent with bounded concurrency through `Console::chat` (so redaction, retries and the call log
//! apply as everywhere), scored, and committed the moment it finishes. A run killed at any point
//! resumes with only the items that have no result yet; the primary key makes a duplicate
//! impossible. An adaptive limiter halves the concurrency when the endpoint rate-limits (and
//! sends the item again after a pause) and grows it back one step per window of successes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use milc_api::dataset::DatasetItem;
use milc_api::prompt::{PromptPin, PromptVersion};
use milc_api::run::{
    Interval, ItemDelta, ItemResult, Percentiles, ResultsPage, ResultsQuery, RunComparison,
    RunInfo, RunProgress, RunSpec, RunStatus, RunSummary, COMPARE_ITEMS,
};
use milc_api::{CallSource, ChatRequest, Cost, ErrorKind, UsageSource};
use tokio_util::sync::CancellationToken;

use crate::calllog::{ResultRow, Row};
use crate::db::{self, now_ms, Result as StoreResult, Store, StoreError};
use crate::{datasets, prompts, Console, Error};
use milc_eval::scoring::ItemScorer;
use milc_eval::stats::{quantile, SplitMix64};

pub mod storage;

/// How many times a rate-limited item is sent again by the engine (on top of the client's own
/// retries) before it is recorded as failed.
const MAX_REQUEUES: u32 = 8;

/// The scorers of a spec, parsed: (name, scorer, threshold).
pub fn parse_scorers(spec: &RunSpec) -> Result<Vec<(String, ItemScorer, Option<f64>)>, Error> {
    let mut out: Vec<(String, ItemScorer, Option<f64>)> = Vec::new();
    for s in &spec.scorers {
        let scorer = ItemScorer::parse(&s.metric, s.arg.as_deref())?;
        if out.iter().any(|(n, ..)| *n == s.metric) {
            return Err(Error::invalid(
                "scorers",
                format!("'{}' is listed twice", s.metric),
            ));
        }
        // A check must pass unless a threshold says otherwise.
        let threshold = s.threshold.or(scorer.is_check().then_some(1.0));
        out.push((s.metric.clone(), scorer, threshold));
    }
    Ok(out)
}

/// The endpoints a run calls: its own, then its judges' and embedders'.
fn run_endpoints(spec: &RunSpec) -> Vec<String> {
    let mut names = vec![spec.endpoint.clone()];
    for (_, s, _) in parse_scorers(spec).unwrap_or_default() {
        if let ItemScorer::Judge { endpoint, .. } | ItemScorer::Similarity { endpoint } = s {
            names.push(endpoint);
        }
    }
    names
}

/// How long a run stays leased to its runner without a renewal: a runner that died frees it
/// this long after.
pub const RUN_LEASE_MS: i64 = 30_000;

/// Whether `owner` (as `console::runner` wrote it) is a process of this machine that no longer runs.
/// Only where the process table can be read (Linux); elsewhere a dead runner's lease lapses.
fn dead_here(owner: &str) -> bool {
    let Some((_, rest)) = owner.split_once('@') else {
        return false;
    };
    let Some((host_part, rest)) = rest.split_once(" (pid ") else {
        return false;
    };
    let Some(pid) = rest
        .split(',')
        .next()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return false;
    };
    cfg!(target_os = "linux")
        && host_part == crate::console::host()
        && pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A prompt version's parameters (`base`) with a spec's overrides (`o`) on top.
pub(crate) fn merged_params(base: &milc_api::Params, o: &milc_api::Params) -> milc_api::Params {
    milc_api::Params {
        temperature: o.temperature.or(base.temperature),
        top_p: o.top_p.or(base.top_p),
        max_tokens: o.max_tokens.or(base.max_tokens),
        stop: if o.stop.is_empty() {
            base.stop.clone()
        } else {
            o.stop.clone()
        },
        seed: o.seed.or(base.seed),
        response_format: o
            .response_format
            .clone()
            .or_else(|| base.response_format.clone()),
    }
}

impl Console {
    /// Checks a spec and records the run, pinning the prompt and dataset versions it names.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn create_run(&self, spec: RunSpec) -> Result<RunInfo, Error> {
        if spec.repeat == 0 || spec.repeat > 100 {
            return Err(Error::invalid("repeat", "from 1 to 100"));
        }
        if spec.concurrency == 0 || spec.concurrency > 512 {
            return Err(Error::invalid("concurrency", "from 1 to 512"));
        }
        // A judge's rubric is pinned to the version it names now, so a resumed run is judged
        // by the same rubric even if a label moves in between.
        let mut spec = spec;
        for s in &mut spec.scorers {
            if let (Some(ItemScorer::Judge { prompt, endpoint }), Some(arg)) = (
                ItemScorer::parse(&s.metric, s.arg.as_deref()).ok(),
                &mut s.arg,
            ) {
                let v = self.resolve_prompt(&prompt).await?;
                *arg = format!("{}@{}@{endpoint}", v.prompt, v.version);
            }
        }
        // A retired endpoint is refused before anything is stored; a deprecated one warns.
        let mut warnings: Vec<String> = Vec::new();
        let mut in_service =
            async |endpoint: &str, field: &str| match self.check_in_service(endpoint).await {
                Ok(w) => {
                    warnings.extend(w.filter(|w| !warnings.contains(w)));
                    Ok(())
                }
                Err(Error::Invalid { message, .. }) => Err(Error::invalid(field, message)),
                Err(e) => Err(e),
            };
        in_service(&spec.endpoint, "endpoint").await?;
        for (name, scorer, _) in parse_scorers(&spec)? {
            match scorer {
                ItemScorer::Judge { prompt, endpoint } => {
                    self.resolve_prompt(&prompt).await?;
                    in_service(&endpoint, &format!("scorers.{name}")).await?;
                }
                ItemScorer::Similarity { endpoint } => {
                    in_service(&endpoint, &format!("scorers.{name}")).await?;
                }
                _ => {}
            }
        }
        let version = self.resolve_prompt(&spec.prompt).await?;
        merged_params(&version.content.params, &spec.params)
            .check()
            .map_err(|(field, allowed)| Error::invalid(format!("params.{field}"), allowed))?;
        let mut c = self.store.read().await?;
        let (dataset_version_id, _) =
            datasets::storage::dataset_version(&mut c, &spec.dataset).await?;
        let version_id = db::prompt_version_id(&mut c, &version.prompt, version.version)
            .await?
            .ok_or_else(|| StoreError::NoSuchPrompt(spec.prompt.clone()))?;
        let id = storage::insert_run(&mut c, version_id, dataset_version_id, &spec).await?;
        let mut info = storage::run(&mut c, id).await?;
        for w in &warnings {
            tracing::warn!(run = id, "{w}");
        }
        info.warnings = warnings;
        drop(c);
        self.noted("run.start", &format!("#{id}")).await?;
        Ok(info)
    }

    /// The lifecycle warnings of the endpoints a run calls, as they stand now.
    async fn with_warnings(&self, mut info: RunInfo) -> Result<RunInfo, Error> {
        let names = run_endpoints(&info.spec);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        info.warnings = self.lifecycle_warnings(&names).await?;
        Ok(info)
    }

    /// Runs (or resumes) run `id` until every item has a result or `cancel` fires; reports
    /// progress after each item. Items cancelled in flight get no result, so a resume runs them.
    /// One runner at a time: the run is leased to this process (renewed while it runs, given
    /// up at the end), and a second machine or process resuming it is told who has it.
    #[tracing::instrument(skip_all, fields(run = id), err(level = "info"))]
    pub async fn execute_run(
        &self,
        id: i64,
        on_progress: &(dyn Fn(&RunProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<RunSummary, Error> {
        let me = self.runner.clone();
        let lease = |now: i64| now + RUN_LEASE_MS;
        let now = now_ms();
        if let Some((owner, until)) =
            storage::claim_run(&mut self.store.read().await?, id, &me, now, lease(now)).await?
        {
            // A runner of this machine whose process is gone (killed, crashed) holds nothing:
            // its run is taken over at once rather than after its lease.
            let gone = dead_here(&owner)
                && storage::take_over_run(
                    &mut self.store.read().await?,
                    id,
                    &owner,
                    &me,
                    lease(now),
                )
                .await?;
            if !gone {
                return Err(StoreError::RunTaken {
                    id,
                    owner,
                    until_ms: until,
                    lapse_s: RUN_LEASE_MS / 1000,
                }
                .into());
            }
            tracing::info!(run = id, previous = %owner, "took over a run whose runner is gone");
        }
        // Renewed a third of the lease at a time until the run ends, however it ends.
        let done = CancellationToken::new();
        let renew = {
            let (store, me, done) = (self.store.clone(), me.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = done.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_millis((RUN_LEASE_MS / 3) as u64)) => {}
                    }
                    let now = now_ms();
                    if let Ok(mut c) = store.read().await {
                        let _ = storage::claim_run(&mut c, id, &me, now, now + RUN_LEASE_MS).await;
                    }
                }
            })
        };
        let result = self.run_items(id, on_progress, cancel).await;
        done.cancel();
        let _ = renew.await;
        storage::release_run(&mut self.store.read().await?, id, &me).await?;
        result
    }

    async fn run_items(
        &self,
        id: i64,
        on_progress: &(dyn Fn(&RunProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<RunSummary, Error> {
        let info = storage::run(&mut self.store.read().await?, id).await?;
        let spec = &info.spec;
        let scorers = parse_scorers(spec)?;
        let version = prompts::storage::resolve(
            &mut self.store.read().await?,
            &milc_api::prompt::PromptRef {
                name: info.prompt.prompt.clone(),
                pick: milc_api::prompt::Pick::Version(info.prompt.version),
            },
        )
        .await?;
        let params = merged_params(&version.content.params, &spec.params);
        // Items are read in chunks as they are sent: memory does not grow with the dataset.
        let count = info.total / u64::from(spec.repeat);
        let mut c = self.store.read().await?;
        let version_id = storage::dataset_version_id(&mut c, id).await?;
        let cache = &ItemCache::new(version_id);
        let done = storage::run_done(&mut c, id).await?;
        let queue: VecDeque<(u64, u32, u32)> = (0..count)
            .flat_map(|i| (0..spec.repeat).map(move |r| (i, r, 0)))
            .filter(|(i, r, _)| !done.contains(&(*i, *r)))
            .collect();
        storage::set_run_status(&mut c, id, RunStatus::Running).await?;

        let max = spec.concurrency as usize;
        let state = Shared {
            queue: Mutex::new(queue),
            changed: tokio::sync::Notify::new(),
            allowed: AtomicUsize::new(max),
            in_flight: AtomicUsize::new(0),
            streak: AtomicUsize::new(0),
            done: AtomicU64::new(info.done),
            errors: AtomicU64::new(storage::run_errors(&mut c, id).await?),
            cost_pico: AtomicI64::new(0),
            started: Instant::now(),
            done_at_start: info.done,
        };
        // Not held while the run goes on: preparing and logging ask the pool too.
        drop(c);
        let total = info.total;
        let pin = PromptPin {
            prompt: version.prompt.clone(),
            version: version.version,
        };
        let prepared = &self.prepare(&spec.endpoint, Some(&pin)).await?.in_run(id);
        let mut judges = Vec::new();
        for (name, scorer, threshold) in &scorers {
            if let ItemScorer::Judge { prompt, endpoint } = scorer {
                let rubric = self.resolve_prompt(prompt).await?;
                let pin = PromptPin {
                    prompt: rubric.prompt.clone(),
                    version: rubric.version,
                };
                let prepared = self.prepare(endpoint, Some(&pin)).await?.in_run(id);
                judges.push(Judge {
                    name: name.clone(),
                    rubric,
                    prepared,
                    threshold: *threshold,
                });
            }
        }
        let judges = &judges;
        let mut embedders = Vec::new();
        for (name, scorer, threshold) in &scorers {
            if let ItemScorer::Similarity { endpoint } = scorer {
                embedders.push((
                    name.clone(),
                    self.prepare(endpoint, None).await?.in_run(id),
                    *threshold,
                ));
            }
        }
        let embedders = &embedders;
        // Commits one result and reports it. A worker runs this for its previous item while its
        // next request is out, so the write is not between one answer and the next request.
        let state = &state;
        let commit = |mut result: ItemResult| async move {
            // What is stored follows the endpoint's policy, like the history.
            result.output = prepared.redact_for_storage(&result.output);
            for note in result.notes.values_mut() {
                *note = prepared.redact_for_storage(note);
            }
            self.insert_result(id, &result).await?;
            if result.error.is_some() {
                state.errors.fetch_add(1, Ordering::Relaxed);
            } else if state.streak.fetch_add(1, Ordering::Relaxed) + 1
                >= state.allowed.load(Ordering::Relaxed)
            {
                // A window of successes: allow one more at once, up to the maximum.
                state.streak.store(0, Ordering::Relaxed);
                let now = state.allowed.load(Ordering::Relaxed);
                state.allowed.store((now + 1).min(max), Ordering::Relaxed);
            }
            if let Some(c) = result.cost {
                state.cost_pico.fetch_add(c.pico_usd, Ordering::Relaxed);
            }
            state.done.fetch_add(1, Ordering::Relaxed);
            on_progress(&state.progress(id, total));
            Ok::<(), Error>(())
        };
        let worker = |slot: usize| {
            let (params, scorers, version) = (&params, &scorers, &version);
            async move {
                // This worker's last result, not yet committed.
                let mut tail: Option<ItemResult> = None;
                loop {
                    if cancel.is_cancelled() {
                        break;
                    }
                    if slot >= state.allowed.load(Ordering::Relaxed) {
                        if let Some(t) = tail.take() {
                            commit(t).await?;
                        }
                        state.wait().await;
                        if state.idle() {
                            break;
                        }
                        continue;
                    }
                    // Taken and counted in flight under one lock, so `idle` never sees a job
                    // that is neither queued nor in flight.
                    let job = {
                        let mut queue = state.queue.lock().expect("queue lock");
                        let job = queue.pop_front();
                        if job.is_some() {
                            state.in_flight.fetch_add(1, Ordering::SeqCst);
                        }
                        job
                    };
                    let Some((idx, rep, requeued)) = job else {
                        if let Some(t) = tail.take() {
                            commit(t).await?;
                        }
                        if state.idle() {
                            break;
                        }
                        state.wait().await;
                        continue;
                    };
                    // Released on every path, errors included, or the other workers would wait
                    // for it forever.
                    let _flight = InFlight(state);
                    let item = match cache.get(&self.store, idx).await {
                        Ok(item) => item,
                        Err(e) => {
                            // Keep what was answered and scored before giving up.
                            if let Some(t) = tail.take() {
                                commit(t).await?;
                            }
                            return Err(e.into());
                        }
                    };
                    let item = &item;
                    let mut req =
                        ChatRequest::new(version.content.messages.clone(), params.clone());
                    req.variables = item.vars.clone();
                    req.prompt = Some(PromptPin {
                        prompt: version.prompt.clone(),
                        version: version.version,
                    });
                    let on_delta = &mut |_: &str| {};
                    let (r, committed) = tokio::join!(
                        self.chat_prepared(prepared, &req, CallSource::Run, on_delta, cancel),
                        async {
                            match tail.take() {
                                Some(t) => commit(t).await,
                                None => Ok(()),
                            }
                        }
                    );
                    committed?;
                    tail = match r {
                        Err(Error::Call { error, .. }) if error.kind == ErrorKind::Cancelled => {
                            None
                        }
                        Err(Error::Call { error, .. })
                            if error.kind == ErrorKind::RateLimit && requeued < MAX_REQUEUES =>
                        {
                            // Back off: halve what runs at once, wait, and send it again.
                            let now = state.allowed.load(Ordering::Relaxed);
                            state.allowed.store((now / 2).max(1), Ordering::Relaxed);
                            state.streak.store(0, Ordering::Relaxed);
                            let wait = Duration::from_millis(250 << requeued.min(5));
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = cancel.cancelled() => {}
                            }
                            state.queue.lock().expect("queue lock").push_back((
                                idx,
                                rep,
                                requeued + 1,
                            ));
                            None
                        }
                        other => {
                            let mut result =
                                item_result(idx, rep, requeued, other, item, scorers, spec.stem);
                            if result.error.is_none() {
                                for j in judges {
                                    self.judge(j, version, item, &mut result, cancel).await;
                                }
                                for (name, p, threshold) in embedders {
                                    self.similarity(name, p, *threshold, item, &mut result)
                                        .await;
                                }
                            }
                            // Cancelled while judging: no result, so a resume does it again.
                            (!cancel.is_cancelled()).then_some(result)
                        }
                    };
                }
                // Whatever happened, what was answered and scored is kept.
                if let Some(t) = tail.take() {
                    commit(t).await?;
                }
                Ok::<(), Error>(())
            }
        };
        let results = futures_util::future::join_all((0..max).map(worker)).await;
        for r in results {
            r?;
        }
        let mut c = self.store.read().await?;
        let finished = storage::run_done(&mut c, id).await?.len() as u64 == total;
        if finished {
            storage::set_run_status(&mut c, id, RunStatus::Finished).await?;
        } else if cancel.is_cancelled() {
            storage::set_run_status(&mut c, id, RunStatus::Cancelled).await?;
        }
        drop(c);
        self.run_summary(id).await
    }

    /// Compares two runs over the same dataset version item by item: per-item score deltas
    /// (regressions first), and mean deltas with paired bootstrap intervals.
    pub async fn compare_runs(&self, a: i64, b: i64) -> Result<RunComparison, Error> {
        let mut c = self.store.read().await?;
        let (ra, rb) = (
            storage::run(&mut c, a).await?,
            storage::run(&mut c, b).await?,
        );
        if ra.dataset_hash != rb.dataset_hash || ra.spec.repeat != rb.spec.repeat {
            return Err(Error::invalid(
                "runs",
                format!(
                    "run {a} and run {b} are over different dataset versions ({} and {}) or repeat counts: only runs over the same items compare",
                    &ra.dataset_hash[..12],
                    &rb.dataset_hash[..12]
                ),
            ));
        }
        // The items both runs answered, paired by the store and read as they stream; only the
        // scores are kept (never the outputs), so memory stays small as runs grow.
        let metrics = common_metrics(&ra, &rb);
        let scores = |json: Option<String>| -> Result<BTreeMap<String, f64>, Error> {
            match json {
                None => Ok(BTreeMap::new()),
                Some(j) => serde_json::from_str(&j)
                    .map_err(|e| StoreError::Corrupt(format!("run result scores: {e}")).into()),
            }
        };
        let mut pairs = Vec::new();
        storage::for_each_pair(&mut c, a, b, |item, rep, sa, sb| {
            let (sa, sb) = (scores(sa)?, scores(sb)?);
            pairs.push(ItemDelta {
                item: item as u64,
                rep: rep as u32,
                deltas: metrics
                    .iter()
                    .filter_map(|m| Some((m.clone(), sb.get(m)? - sa.get(m)?)))
                    .collect(),
                a_output: String::new(),
                b_output: String::new(),
            });
            Ok(())
        })
        .await?;
        let (answered_a, answered_b) = storage::answered(&mut c, a, b).await?;
        let unpaired = (answered_a + answered_b) as u64 - 2 * pairs.len() as u64;
        let mut cmp = rank(ra, rb, metrics, pairs, unpaired);
        // Outputs only for the items shown.
        for (run, b_side) in [(a, false), (b, true)] {
            let wanted: Vec<u64> = cmp.items.iter().map(|d| d.item).collect();
            if wanted.is_empty() {
                break;
            }
            let outputs = storage::outputs(&mut c, run, &wanted).await?;
            for d in &mut cmp.items {
                if let Some(o) = outputs.get(&(d.item, d.rep)) {
                    *(if b_side {
                        &mut d.b_output
                    } else {
                        &mut d.a_output
                    }) = o.clone();
                }
            }
        }
        Ok(cmp)
    }

    /// Item `idx` of a run's dataset version (to show an output beside its reference).
    pub async fn run_item(&self, id: i64, idx: u64) -> Result<DatasetItem, Error> {
        let json = storage::run_item_json(&mut self.store.read().await?, id, idx).await?;
        let json =
            json.ok_or_else(|| Error::invalid("item", format!("run {id} has no item {idx}")))?;
        Ok(serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("dataset item: {e}")))?)
    }

    pub async fn runs(&self) -> Result<Vec<RunInfo>, Error> {
        let endpoints = self.endpoints().await?;
        let mut runs = storage::runs(&mut self.store.read().await?).await?;
        for r in &mut runs {
            let names = run_endpoints(&r.spec);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            r.warnings = crate::retirement::warnings_among(&endpoints, &names);
        }
        Ok(runs)
    }

    /// Aggregates: mean of each score with a bootstrap 95 % interval (1000 resamples, seeded),
    /// pass rate, latency and TTFT percentiles, tokens, cost, errors by kind.
    pub async fn run_summary(&self, id: i64) -> Result<RunSummary, Error> {
        // The warnings first: holding a connection while asking the pool for another could
        // leave every connection waiting for one more.
        let info = storage::run(&mut self.store.read().await?, id).await?;
        let info = self.with_warnings(info).await?;
        let mut c = self.store.read().await?;
        let mut tally = Tally::new(info);
        storage::for_each_result(&mut c, id, |r| tally.add(&r)).await?;
        Ok(tally.finish())
    }

    /// One page of a run's results, filtered and sorted in the store.
    pub async fn run_results_page(&self, id: i64, q: &ResultsQuery) -> Result<ResultsPage, Error> {
        let mut c = self.store.read().await?;
        storage::run(&mut c, id).await?;
        Ok(storage::results_page(&mut c, id, q).await?)
    }
}

impl Console {
    /// Commits one result (grouped with other waiting rows by the call log's writer); a second
    /// result for the same item and repetition is ignored.
    async fn insert_result(&self, run_id: i64, r: &ItemResult) -> StoreResult<()> {
        self.log
            .write(Row::RunResult(ResultRow {
                run_id,
                item: r.item,
                rep: r.rep,
                call_id: r.call_id,
                failed: r.error.is_some(),
                passed: r.passed,
                latency_ms: r.latency_ms,
                json: serde_json::to_string(r).expect("a result serializes"),
            }))
            .await?;
        Ok(())
    }
}

/// A judge scorer, ready to call: its rubric version and its prepared endpoint.
struct Judge {
    name: String,
    rubric: PromptVersion,
    prepared: crate::chat::Prepared,
    threshold: Option<f64>,
}

impl Console {
    /// Sends the rubric, filled with the item's variables and `input`, `output` and `expected`,
    /// to the judge endpoint (logged and costed as a run call), and records its score and reason.
    /// A judge that fails or gives no score fails the item, with the reason in its notes.
    async fn judge(
        &self,
        j: &Judge,
        version: &PromptVersion,
        item: &DatasetItem,
        result: &mut ItemResult,
        cancel: &CancellationToken,
    ) {
        let mut vars = item.vars.clone();
        let input = crate::prompts::render(&version.content.messages, &item.vars)
            .ok()
            .and_then(|(m, _)| {
                m.into_iter()
                    .rev()
                    .find(|m| m.role == milc_api::Role::User)
                    .map(|m| m.content)
            })
            .unwrap_or_default();
        vars.insert("input".into(), input);
        vars.insert("output".into(), result.output.clone());
        vars.insert("expected".into(), item.expected.join("\n---\n"));
        let mut req = ChatRequest::new(
            j.rubric.content.messages.clone(),
            j.rubric.content.params.clone(),
        );
        req.variables = vars;
        req.prompt = Some(PromptPin {
            prompt: j.rubric.prompt.clone(),
            version: j.rubric.version,
        });
        let verdict = match self
            .chat_prepared(&j.prepared, &req, CallSource::Run, &mut |_| {}, cancel)
            .await
        {
            Ok(r) => milc_eval::scoring::parse_judgement(&r.output)
                .ok_or_else(|| format!("no score in the judge's answer: {}", r.output)),
            Err(e) => Err(format!("the judge call failed: {e}")),
        };
        match verdict {
            Ok((score, reason)) => {
                result.scores.insert(j.name.clone(), score);
                result.notes.insert(j.name.clone(), reason);
                if let Some(t) = j.threshold {
                    result.passed &= score >= t;
                }
            }
            Err(why) => {
                result.notes.insert(j.name.clone(), why);
                result.passed = false;
            }
        }
    }
}

impl Console {
    /// Cosine similarity between the embeddings of the output and of each reference (the best
    /// one counts), in one `/v1/embeddings` request that is logged and costed as a run call.
    async fn similarity(
        &self,
        name: &str,
        p: &crate::chat::Prepared,
        threshold: Option<f64>,
        item: &DatasetItem,
        result: &mut ItemResult,
    ) {
        if item.expected.is_empty() {
            result
                .notes
                .insert(name.to_owned(), "no reference to compare with".into());
            result.passed = false;
            return;
        }
        let mut inputs = vec![result.output.clone()];
        inputs.extend(item.expected.iter().cloned());
        match self.embed(p, &inputs, CallSource::Run).await {
            Ok(v) => {
                let best = v[1..]
                    .iter()
                    .map(|r| milc_eval::scoring::cosine(&v[0], r))
                    .fold(f64::MIN, f64::max);
                result.scores.insert(name.to_owned(), best);
                if let Some(t) = threshold {
                    result.passed &= best >= t;
                }
            }
            Err(e) => {
                result
                    .notes
                    .insert(name.to_owned(), format!("the embeddings call failed: {e}"));
                result.passed = false;
            }
        }
    }
}

/// Dataset items in chunks of `CHUNK`, read from the store when a job first needs one; the few
/// most recent chunks are kept (jobs go out roughly in item order).
struct ItemCache {
    version_id: i64,
    chunks: Mutex<VecDeque<(u64, Arc<Vec<DatasetItem>>)>>,
    loading: tokio::sync::Mutex<()>,
}

const CHUNK: u64 = 256;
const CHUNKS_KEPT: usize = 8;

impl ItemCache {
    fn new(version_id: i64) -> Self {
        Self {
            version_id,
            chunks: Mutex::new(VecDeque::new()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, chunk: u64) -> Option<Arc<Vec<DatasetItem>>> {
        let chunks = self.chunks.lock().expect("cache lock");
        chunks
            .iter()
            .find(|(c, _)| *c == chunk)
            .map(|(_, items)| items.clone())
    }

    async fn get(&self, store: &Store, idx: u64) -> StoreResult<DatasetItem> {
        let chunk = idx / CHUNK;
        let items = match self.cached(chunk) {
            Some(items) => items,
            None => {
                // One worker loads a chunk while the others that need it wait for it, instead of
                // every worker at a chunk boundary running the same query.
                let _loading = self.loading.lock().await;
                match self.cached(chunk) {
                    Some(items) => items,
                    None => {
                        let items = Arc::new(self.load(store, chunk).await?);
                        let mut chunks = self.chunks.lock().expect("cache lock");
                        chunks.push_back((chunk, items.clone()));
                        if chunks.len() > CHUNKS_KEPT {
                            chunks.pop_front();
                        }
                        items
                    }
                }
            }
        };
        items
            .get((idx % CHUNK) as usize)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("dataset item {idx} is missing")))
    }

    async fn load(&self, store: &Store, chunk: u64) -> StoreResult<Vec<DatasetItem>> {
        datasets::storage::version_items(
            &mut store.read().await?,
            self.version_id,
            chunk * CHUNK,
            CHUNK,
        )
        .await
    }
}

/// One job in flight; dropping it (however the job ends) lets the pool see it is done.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        // A waiting worker may now find the run done, or a requeued job.
        self.0.changed.notify_waiters();
    }
}

struct Shared {
    queue: Mutex<VecDeque<(u64, u32, u32)>>,
    /// Notified when a job leaves flight, so idle workers need not poll.
    changed: tokio::sync::Notify,
    allowed: AtomicUsize,
    in_flight: AtomicUsize,
    streak: AtomicUsize,
    done: AtomicU64,
    errors: AtomicU64,
    cost_pico: AtomicI64,
    started: Instant,
    done_at_start: u64,
}

impl Shared {
    /// Waits until a job leaves flight (or 25 ms, should the notice come between the check
    /// and the wait).
    async fn wait(&self) {
        tokio::select! {
            _ = self.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
        }
    }

    /// Nothing queued and nothing in flight that could come back.
    fn idle(&self) -> bool {
        let queue = self.queue.lock().expect("queue lock");
        queue.is_empty() && self.in_flight.load(Ordering::SeqCst) == 0
    }

    fn progress(&self, run_id: i64, total: u64) -> RunProgress {
        let done = self.done.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let here = done.saturating_sub(self.done_at_start);
        let eta_ms = (here > 0).then(|| {
            (elapsed.as_secs_f64() / here as f64 * total.saturating_sub(done) as f64 * 1000.0)
                as u64
        });
        RunProgress {
            run_id,
            done,
            total,
            errors: self.errors.load(Ordering::Relaxed),
            cost: Cost {
                pico_usd: self.cost_pico.load(Ordering::Relaxed),
                source: UsageSource::Reported,
            },
            elapsed_ms: elapsed.as_millis() as u64,
            eta_ms,
            concurrency: self.allowed.load(Ordering::Relaxed) as u32,
        }
    }
}

fn item_result(
    idx: u64,
    rep: u32,
    requeued: u32,
    r: Result<milc_api::ChatResult, Error>,
    item: &DatasetItem,
    scorers: &[(String, ItemScorer, Option<f64>)],
    stem: bool,
) -> ItemResult {
    match r {
        Ok(res) => {
            let cost_usd = res.cost.pico_usd as f64 / 1e12;
            // Redacted before sending, the answer may hold placeholders: score what it says.
            let answer = res.restored.as_deref().unwrap_or(&res.output);
            let mut passed = true;
            let scores = scorers
                .iter()
                // Judges and similarity need calls: the engine scores them after this.
                .filter(|(_, s, _)| {
                    !matches!(s, ItemScorer::Judge { .. } | ItemScorer::Similarity { .. })
                })
                .map(|(name, s, threshold)| {
                    let v = s.score(answer, &item.expected, res.latency_ms, cost_usd, stem);
                    if let Some(t) = threshold {
                        passed &= if s.lower_is_better() {
                            v <= *t
                        } else {
                            v >= *t
                        };
                    }
                    (name.clone(), v)
                })
                .collect();
            ItemResult {
                item: idx,
                rep,
                call_id: Some(res.call_id),
                output: res.output,
                error: None,
                latency_ms: res.latency_ms,
                ttft_ms: res.ttft_ms,
                usage: Some(res.usage),
                cost: Some(res.cost),
                scores,
                passed,
                attempts: res.attempts,
                requeued,
                notes: BTreeMap::new(),
            }
        }
        Err(e) => {
            let (error, call_id, partial) = match e {
                Error::Call {
                    error,
                    call_id,
                    partial,
                } => (error, call_id, partial),
                other => (other.to_api(), None, String::new()),
            };
            ItemResult {
                item: idx,
                rep,
                call_id,
                output: partial,
                error: Some(error),
                latency_ms: 0,
                ttft_ms: None,
                usage: None,
                cost: None,
                scores: BTreeMap::new(),
                passed: false,
                attempts: 1,
                requeued,
                notes: BTreeMap::new(),
            }
        }
    }
}

pub(crate) fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    Percentiles {
        p50: quantile(&v, 0.5),
        p95: quantile(&v, 0.95),
        p99: quantile(&v, 0.99),
    }
}

/// The mean and its bootstrap 95 % interval: 1000 resamples with replacement (seeded, so the
/// same results give the same interval), 2.5th and 97.5th percentiles of the resampled means.
pub fn bootstrap_mean(values: &[f64], seed: u64) -> Interval {
    if values.is_empty() {
        return Interval {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..1000)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    Interval {
        mean,
        low: quantile(&means, 0.025),
        high: quantile(&means, 0.975),
    }
}

/// The scores both runs have, in run A's order.
fn common_metrics(a: &RunInfo, b: &RunInfo) -> Vec<String> {
    a.spec
        .scorers
        .iter()
        .map(|s| s.metric.clone())
        .filter(|m| b.spec.scorers.iter().any(|s| s.metric == *m))
        .collect()
}

/// Orders paired items (regressions first, then improvements, then the rest), counts them, adds
/// paired bootstrap intervals of the mean deltas, and keeps the first [`COMPARE_ITEMS`] items.
fn rank(
    a: RunInfo,
    b: RunInfo,
    metrics: Vec<String>,
    mut items: Vec<ItemDelta>,
    unpaired: u64,
) -> RunComparison {
    let primary = metrics.first().cloned();
    // Lower latency and cost are better: their "regression" is a rise.
    let sign = |m: &str| {
        if matches!(m, "latency_ms" | "cost_usd") {
            -1.0
        } else {
            1.0
        }
    };
    let key = |d: &ItemDelta| {
        primary
            .as_ref()
            .and_then(|m| d.deltas.get(m).map(|v| v * sign(m)))
            .unwrap_or(0.0)
    };
    let (regressions, improvements) = (
        items.iter().filter(|d| key(d) < 0.0).count() as u64,
        items.iter().filter(|d| key(d) > 0.0).count() as u64,
    );
    // Regressions (most negative first), then improvements (largest first), then the rest.
    items.sort_by(|x, y| {
        let (kx, ky) = (key(x), key(y));
        let group = |k: f64| {
            if k < 0.0 {
                0
            } else if k > 0.0 {
                1
            } else {
                2
            }
        };
        group(kx)
            .cmp(&group(ky))
            .then_with(|| {
                if kx < 0.0 {
                    kx.total_cmp(&ky)
                } else {
                    ky.total_cmp(&kx)
                }
            })
            .then((x.item, x.rep).cmp(&(y.item, y.rep)))
    });
    let deltas = metrics
        .iter()
        .map(|m| {
            let d: Vec<f64> = items
                .iter()
                .filter_map(|i| i.deltas.get(m).copied())
                .collect();
            (m.clone(), bootstrap_mean(&d, 0))
        })
        .collect();
    let paired = items.len() as u64;
    items.truncate(COMPARE_ITEMS);
    RunComparison {
        a,
        b,
        primary,
        deltas,
        regressions,
        improvements,
        paired,
        items,
        unpaired,
    }
}

/// The aggregates of a run, folded one result at a time: only numbers are kept (a score per
/// item and metric, latencies), never the outputs, so summarising a 100,000-item run stays small.
pub struct Tally {
    run: RunInfo,
    items: u64,
    errors: u64,
    passed: u64,
    errors_by_kind: BTreeMap<String, u64>,
    scores: BTreeMap<String, Vec<f64>>,
    latency: Vec<f64>,
    ttft: Vec<f64>,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost: i64,
    cost_estimated: bool,
    retries: u64,
}

impl Tally {
    pub fn new(run: RunInfo) -> Self {
        let scores = run
            .spec
            .scorers
            .iter()
            .map(|s| (s.metric.clone(), Vec::new()))
            .collect();
        Self {
            run,
            items: 0,
            errors: 0,
            passed: 0,
            errors_by_kind: BTreeMap::new(),
            scores,
            latency: Vec::new(),
            ttft: Vec::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost: 0,
            cost_estimated: false,
            retries: 0,
        }
    }

    pub fn add(&mut self, r: &ItemResult) {
        self.items += 1;
        self.passed += u64::from(r.passed);
        self.retries += r.requeued as u64 + r.attempts.saturating_sub(1) as u64;
        if let Some(c) = r.cost {
            self.cost += c.pico_usd;
            self.cost_estimated |= c.source == UsageSource::Estimated;
        }
        if let Some(e) = &r.error {
            self.errors += 1;
            *self
                .errors_by_kind
                .entry(e.kind.as_str().to_owned())
                .or_insert(0) += 1;
            return;
        }
        for (metric, values) in &mut self.scores {
            if let Some(v) = r.scores.get(metric) {
                values.push(*v);
            }
        }
        self.latency.push(r.latency_ms as f64);
        if let Some(t) = r.ttft_ms {
            self.ttft.push(t as f64);
        }
        if let Some(u) = r.usage {
            self.prompt_tokens += u.prompt_tokens;
            self.completion_tokens += u.completion_tokens;
        }
    }

    pub fn finish(self) -> RunSummary {
        RunSummary {
            items: self.items,
            errors: self.errors,
            errors_by_kind: self.errors_by_kind,
            pass_rate: if self.items == 0 {
                0.0
            } else {
                self.passed as f64 / self.items as f64
            },
            scores: self
                .scores
                .into_iter()
                .map(|(m, v)| (m, bootstrap_mean(&v, 0)))
                .collect(),
            latency_ms: percentiles(self.latency),
            ttft_ms: percentiles(self.ttft),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cost: Cost {
                pico_usd: self.cost,
                source: if self.cost_estimated {
                    UsageSource::Estimated
                } else {
                    UsageSource::Reported
                },
            },
            cost_estimated: self.cost_estimated,
            retries: self.retries,
            run: self.run,
        }
    }
}

// ---- the store ------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runner_of_this_machine_whose_process_is_gone_holds_nothing() {
        let me = crate::console::runner();
        assert!(!dead_here(&me), "this process runs");
        let gone = format!(
            "ana@{} (pid {}, console 0001)",
            crate::console::host(),
            u32::MAX - 1
        );
        assert_eq!(dead_here(&gone), cfg!(target_os = "linux"));
        let elsewhere = format!(
            "ana@not-{} (pid {}, console 0001)",
            crate::console::host(),
            u32::MAX - 1
        );
        assert!(
            !dead_here(&elsewhere),
            "another machine's process cannot be seen"
        );
        assert!(!dead_here("garbled"));
    }

    fn info(id: i64) -> RunInfo {
        RunInfo {
            id,
            spec: RunSpec {
                prompt: "p".into(),
                endpoint: "e".into(),
                dataset: "d".into(),
                params: milc_api::Params::default(),
                repeat: 1,
                concurrency: 1,
                scorers: vec![milc_api::run::ScorerSpec {
                    metric: "rougeL".into(),
                    arg: None,
                    threshold: None,
                }],
                stem: false,
            },
            prompt: PromptPin {
                prompt: "p".into(),
                version: 1,
            },
            dataset_hash: "0".repeat(64),
            status: RunStatus::Finished,
            created_ms: 0,
            finished_ms: None,
            total: 4,
            done: 4,
            warnings: Vec::new(),
        }
    }

    fn result(item: u64, score: Option<f64>) -> ItemResult {
        ItemResult {
            item,
            rep: 0,
            call_id: None,
            output: format!("out {item}"),
            error: score.is_none().then(|| milc_api::CallError {
                kind: ErrorKind::Server,
                message: "boom".into(),
                status: Some(500),
            }),
            latency_ms: 10,
            ttft_ms: None,
            usage: None,
            cost: None,
            scores: score
                .map(|s| [("rougeL".to_owned(), s)].into())
                .unwrap_or_default(),
            passed: score.is_some(),
            attempts: 1,
            requeued: 0,
            notes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_comparison_lists_regressions_first_and_counts_paired_items() {
        let a = [
            result(0, Some(0.5)),
            result(1, Some(0.5)),
            result(2, Some(0.5)),
            result(3, Some(0.5)),
        ];
        let b = [
            result(0, Some(0.4)),
            result(1, Some(0.9)),
            result(2, Some(0.1)),
            result(3, None),
        ];
        // What the store pairs: the items both answered, B − A per score.
        let pairs: Vec<ItemDelta> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.error.is_none() && y.error.is_none())
            .map(|(x, y)| ItemDelta {
                item: x.item,
                rep: x.rep,
                deltas: [("rougeL".to_owned(), y.scores["rougeL"] - x.scores["rougeL"])].into(),
                a_output: String::new(),
                b_output: String::new(),
            })
            .collect();
        let (metrics, unpaired) = (vec!["rougeL".to_owned()], 1);
        let c = rank(info(1), info(2), metrics, pairs, unpaired);
        assert_eq!(
            (c.paired, c.regressions, c.improvements, c.unpaired),
            (3, 2, 1, 1)
        );
        let order: Vec<u64> = c.items.iter().map(|d| d.item).collect();
        assert_eq!(
            order,
            [2, 0, 1],
            "worst regression first, then improvements"
        );
        let d = c.deltas["rougeL"];
        assert!((d.mean - (-0.4 - 0.1 + 0.4) / 3.0).abs() < 1e-12);
        assert!(d.low <= d.mean && d.mean <= d.high);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert!((quantile(&v, 0.95) - 3.85).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_is_seeded() {
        let v: Vec<f64> = (0..200).map(|i| (i % 10) as f64 / 10.0).collect();
        let a = bootstrap_mean(&v, 0);
        assert!((a.mean - 0.45).abs() < 1e-12);
        assert!(a.low < a.mean && a.mean < a.high);
        assert!(a.high - a.low < 0.1, "{a:?}");
        assert_eq!(a, bootstrap_mean(&v, 0));
        let same = bootstrap_mean(&[0.5; 10], 3);
        assert_eq!((same.low, same.high), (0.5, 0.5));
    }
}
