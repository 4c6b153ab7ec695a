//! A/B comparisons: two or more variants (prompt version × endpoint × parameters) over one
//! dataset version, each answered by a run of the run engine (a finished run of the same variant
//! on the same version is reused). Evaluators rate pairs blind: the server keeps which variant is
//! on which side (a seeded coin per item) and records it with each vote, so tallies undo it. With
//! more than two variants each item gets one pair, the pairs taking turns, so every pair is rated
//! as often as the others (within one). LLM judges vote on the same pairs in both orders.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use futures_util::StreamExt;
use milc_api::arena::{Agreement, Vote, Winner};
use milc_api::compare::{
    Ballot, CompareProgress, ComparisonInfo, ComparisonResults, ComparisonSpec, CriteriaScores,
    JudgeResult, JudgeRun, PositionBias, RaterProgress, RatingTask, Segment, SideBySide,
    SideBySideQuery, SideBySideRow, SideOutput, Variant, VariantResult, Verdict,
};
use milc_api::dataset::DatasetItem;
use milc_api::export::{Exported, Format};
use milc_api::prompt::{check_name, Pick, PromptPin, PromptRef, PromptVersion};
use milc_api::run::{default_concurrency, ItemResult, RunProgress, RunSpec, RunStatus};
use milc_api::{CallSource, ChatRequest, Message, Role};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::db::{self, now_ms, PartialFile, StoreError};
use crate::{datasets, prompts, runs, Console, Error};
use storage::VoteRow;

pub mod storage;
use milc_eval::stats::{self, SplitMix64};

/// Bootstrap rounds behind the leaderboard's intervals.
const ROUNDS: u32 = 1000;
/// Judge calls in flight at once.
const JUDGE_CONCURRENCY: usize = 8;
/// Prefix of a judge's rater name; people's names may not start with it.
const JUDGE: &str = "judge:";

/// What a comparison exports as: preferences for fine-tuning, preference pairs, every vote.
pub const EXPORT_FORMATS: [Format; 3] = [Format::Finetune, Format::Dpo, Format::Csv];

/// The variants shown left and right for `item`: the pairs (in order 0-1, 0-2, …, 1-2, …) take
/// turns from a seeded start, so each pair gets ⌊n/P⌋ or ⌈n/P⌉ of n items, and a seeded coin
/// per item picks the sides.
pub fn task_pair(seed: u64, variants: u32, item: u64) -> (u32, u32) {
    let pairs: Vec<(u32, u32)> = (0..variants)
        .flat_map(|a| (a + 1..variants).map(move |b| (a, b)))
        .collect();
    let (a, b) = pairs[(item.wrapping_add(seed) % pairs.len() as u64) as usize];
    let flip = SplitMix64(seed ^ item.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64() & 1 == 1;
    if flip {
        (b, a)
    } else {
        (a, b)
    }
}

/// A vote on (item, left, right) keyed by the pair in variant order, with the verdict read from
/// the lower-numbered variant's side: 0 it wins, 1 the other wins, 2 tie, 3 both bad.
fn normalized(item: u64, left: u32, right: u32, verdict: Verdict) -> ((u64, u32, u32), usize) {
    let swapped = right < left;
    let key = if swapped {
        (item, right, left)
    } else {
        (item, left, right)
    };
    let label = match (verdict, swapped) {
        (Verdict::Left, false) | (Verdict::Right, true) => 0,
        (Verdict::Right, false) | (Verdict::Left, true) => 1,
        (Verdict::Tie, _) => 2,
        (Verdict::BothBad, _) => 3,
    };
    (key, label)
}

/// A pairwise judge's verdict: JSON with `winner` (or `verdict`, `choice`) of A / B / tie /
/// both_bad, or MT-Bench's `[[A]]`, `[[B]]`, `[[C]]` (tie). A is the left side.
pub fn parse_pairwise(text: &str) -> Option<(Verdict, String)> {
    fn word(s: &str) -> Option<Verdict> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
            .as_str()
        {
            "a" | "left" | "1" | "output_a" | "assistant_a" => Some(Verdict::Left),
            "b" | "right" | "2" | "output_b" | "assistant_b" => Some(Verdict::Right),
            "tie" | "c" | "equal" | "draw" => Some(Verdict::Tie),
            "both_bad" | "neither" | "none" | "d" => Some(Verdict::BothBad),
            _ => None,
        }
    }
    fn from_object(v: &Value) -> Option<(Verdict, String)> {
        let verdict = ["winner", "verdict", "choice", "better"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).and_then(word))?;
        let reason = ["reason", "rationale", "explanation"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned();
        Some((verdict, reason))
    }
    for (i, _) in text.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        if let Some(Ok(v)) = stream.next() {
            if let Some(found) = from_object(&v) {
                return Some(found);
            }
        }
    }
    ["[[A]]", "[[B]]", "[[C]]"]
        .iter()
        .zip([Verdict::Left, Verdict::Right, Verdict::Tie])
        .filter_map(|(tag, v)| text.rfind(tag).map(|at| (at, v)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, v)| (v, text.trim().to_owned()))
}

/// Word-level diff of two outputs: each side's text cut into parts, changed or shared.
pub fn word_diff(a: &str, b: &str) -> (Vec<Segment>, Vec<Segment>) {
    use similar::{ChangeTag, TextDiff};
    fn push(out: &mut Vec<Segment>, text: &str, changed: bool) {
        match out.last_mut() {
            Some(last) if last.changed == changed => last.text.push_str(text),
            _ => out.push(Segment {
                text: text.to_owned(),
                changed,
            }),
        }
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for change in TextDiff::from_words(a, b).iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => {
                push(&mut left, change.value(), false);
                push(&mut right, change.value(), false);
            }
            ChangeTag::Delete => push(&mut left, change.value(), true),
            ChangeTag::Insert => push(&mut right, change.value(), true),
        }
    }
    (left, right)
}

/// How much of two texts differs, by words: 0 the same, 1 nothing shared.
fn text_gap(a: &str, b: &str) -> f64 {
    1.0 - f64::from(similar::TextDiff::from_words(a, b).ratio())
}

/// A comparison as loaded for work on it.
struct Loaded {
    info: ComparisonInfo,
    spec: ComparisonSpec,
    dataset_version_id: i64,
    versions: Vec<PromptVersion>,
}

impl Loaded {
    fn run_of(&self, variant: u32) -> Result<i64, Error> {
        self.info
            .variants
            .get(variant as usize)
            .and_then(|v| v.run_id)
            .ok_or_else(|| not_ready(&self.info.name))
    }

    fn label(&self, variant: u32) -> &str {
        &self.info.variants[variant as usize].label
    }
}

fn not_ready(name: &str) -> Error {
    Error::invalid(
        "comparison",
        format!("'{name}' has not been run to the end: run it first (milc compare run {name})"),
    )
}

impl VoteRow {
    fn verdict(&self) -> Verdict {
        Verdict::parse(&self.verdict).unwrap_or(Verdict::Tie)
    }

    fn key(&self) -> ((u64, u32, u32), usize) {
        normalized(
            self.item_idx as u64,
            self.left_idx as u32,
            self.right_idx as u32,
            self.verdict(),
        )
    }

    fn is_judge(&self) -> bool {
        self.source == "judge"
    }

    fn vote(&self, c: &Loaded) -> Vote {
        Vote {
            a: c.label(self.left_idx as u32).to_owned(),
            b: c.label(self.right_idx as u32).to_owned(),
            winner: match self.verdict() {
                Verdict::Left => Winner::A,
                Verdict::Right => Winner::B,
                Verdict::Tie => Winner::Tie,
                Verdict::BothBad => Winner::BothBad,
            },
            item: Some(self.item_idx.to_string()),
            rater: Some(self.rater.clone()),
        }
    }
}

/// The last user message of `version` rendered for `item` (what the model was asked), or the
/// item's variables when it cannot be rendered.
fn input_text(version: &PromptVersion, item: &DatasetItem) -> String {
    crate::prompts::render(&version.content.messages, &item.vars)
        .ok()
        .and_then(|(m, _)| m.into_iter().rev().find(|m| m.role == Role::User))
        .map(|m| m.content)
        .unwrap_or_else(|| {
            item.vars
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
}

fn rater_name(rater: &str) -> Result<&str, Error> {
    let r = rater.trim();
    if r.is_empty() {
        return Err(Error::invalid("rater", "enter your name"));
    }
    if r.starts_with(JUDGE) {
        return Err(Error::invalid(
            "rater",
            "names starting with 'judge:' are judges'",
        ));
    }
    Ok(r)
}

fn check_criteria(c: &Loaded, criteria: &CriteriaScores) -> Result<(), Error> {
    for (name, sides) in criteria {
        if !c.info.criteria.contains(name) {
            return Err(Error::invalid(
                format!("criteria.{name}"),
                format!(
                    "not a criterion of this comparison ({})",
                    c.info.criteria.join(", ")
                ),
            ));
        }
        if sides.iter().flatten().any(|s| !(1..=5).contains(s)) {
            return Err(Error::invalid(
                format!("criteria.{name}"),
                "scores are 1 to 5",
            ));
        }
    }
    Ok(())
}

impl Console {
    /// Checks and stores a comparison, pinning its prompt versions and dataset version. Ad-hoc
    /// inputs become a dataset named `NAME-inputs` (one item per input, variable `input`).
    #[tracing::instrument(skip_all, fields(name = %spec.name), err(level = "info"))]
    pub async fn create_comparison(&self, spec: ComparisonSpec) -> Result<ComparisonInfo, Error> {
        let mut spec = spec;
        check_name("comparison name", &spec.name).map_err(|e| Error::invalid("name", e))?;
        if spec.variants.len() < 2 || spec.variants.len() > 16 {
            return Err(Error::invalid("variants", "from 2 to 16"));
        }
        if storage::comparison_id(&mut self.store.read().await?, &spec.name)
            .await?
            .is_some()
        {
            return Err(StoreError::DuplicateComparison(spec.name.clone()).into());
        }
        let mut criteria = Vec::new();
        for c in spec.criteria.iter().map(|c| c.trim()) {
            if c.is_empty() || criteria.iter().any(|k: &String| k == c) {
                return Err(Error::invalid(
                    "criteria",
                    format!("'{c}' is empty or repeated"),
                ));
            }
            criteria.push(c.to_owned());
        }
        spec.criteria = criteria;
        // Scorers are checked as a run would check them.
        crate::runs::parse_scorers(&RunSpec {
            prompt: String::new(),
            endpoint: String::new(),
            dataset: String::new(),
            params: Default::default(),
            repeat: 1,
            concurrency: 1,
            scorers: spec.scorers.clone(),
            stem: false,
        })?;
        let mut rows = Vec::new();
        for (i, v) in spec.variants.iter_mut().enumerate() {
            let field = format!("variants[{}]", i + 1);
            // A retired endpoint is refused here, naming its replacement.
            self.check_in_service(&v.endpoint)
                .await
                .map_err(|e| match e {
                    Error::Invalid { message, .. } => {
                        Error::invalid(format!("{field}.endpoint"), message)
                    }
                    e => e,
                })?;
            let version = self.resolve_prompt(&v.prompt).await?;
            v.params
                .check()
                .map_err(|(f, allowed)| Error::invalid(format!("{field}.params.{f}"), allowed))?;
            v.prompt = format!("{}@{}", version.prompt, version.version);
            let mut label = format!("{} · {}", v.prompt, v.endpoint);
            if v.params != Default::default() {
                label.push(' ');
                label.push_str(&serde_json::to_string(&v.params).expect("params serialize"));
            }
            if let Some(j) = rows.iter().position(|(l, _): &(String, i64)| *l == label) {
                return Err(Error::invalid(
                    field,
                    format!("the same as variant {} ({label})", j + 1),
                ));
            }
            let version_id = db::prompt_version_id(
                &mut self.store.read().await?,
                &version.prompt,
                version.version,
            )
            .await?
            .ok_or_else(|| StoreError::NoSuchPrompt(v.prompt.clone()))?;
            rows.push((label, version_id));
        }
        if spec.dataset.trim().is_empty() {
            let items: Vec<DatasetItem> = spec
                .inputs
                .iter()
                .map(|i| DatasetItem {
                    vars: [("input".to_owned(), i.clone())].into(),
                    ..Default::default()
                })
                .collect();
            if items.is_empty() {
                return Err(Error::invalid("dataset", "name a dataset or give inputs"));
            }
            let name = format!("{}-inputs", spec.name);
            check_name("dataset name", &name).map_err(|e| Error::invalid("name", e))?;
            self.import_items(&name, &items, "comparison inputs")
                .await?;
            spec.dataset = name;
        } else if !spec.inputs.is_empty() {
            return Err(Error::invalid(
                "inputs",
                "give a dataset or inputs, not both",
            ));
        }
        let (dataset_version_id, dv) =
            datasets::storage::dataset_version(&mut self.store.read().await?, spec.dataset.trim())
                .await?;
        spec.dataset = format!("{}@{}", dv.dataset, dv.hash);
        spec.inputs.clear();
        // Seeds stay below 2^53, so they cross to the window (JavaScript numbers) exactly.
        const MAX_SEED: u64 = (1 << 53) - 1;
        if spec.seed.is_some_and(|s| s > MAX_SEED) {
            return Err(Error::invalid("seed", format!("at most {MAX_SEED}")));
        }
        let seed = spec.seed.unwrap_or_else(|| {
            SplitMix64(now_ms() as u64 ^ u64::from(std::process::id())).next_u64() & MAX_SEED
        });
        spec.seed = Some(seed);
        let mut tx = self.store.write().await?;
        storage::insert_comparison(&mut tx, &spec, dataset_version_id, seed, &rows).await?;
        db::commit(tx).await?;
        self.noted("comparison.create", &spec.name).await?;
        Ok(self.load_comparison(&spec.name).await?.info)
    }

    async fn load_comparison(&self, name: &str) -> Result<Loaded, Error> {
        let mut conn = self.store.read().await?;
        let storage::ComparisonRow {
            id,
            dataset_version_id,
            spec_json,
            seed,
            created_ms,
        } = storage::comparison_row(&mut conn, name).await?;
        let spec: ComparisonSpec = serde_json::from_str(&spec_json)
            .map_err(|e| StoreError::Corrupt(format!("comparison {name}: {e}")))?;
        let (_, dv) = datasets::storage::dataset_version(&mut conn, &spec.dataset).await?;
        let rows = storage::variant_rows(&mut conn, id).await?;
        let mut variants = Vec::new();
        let mut versions = Vec::new();
        for storage::VariantRow {
            idx,
            label,
            prompt,
            version,
            endpoint,
            params_json: params,
            run_id,
            status,
            lineage,
        } in rows
        {
            let version = prompts::storage::resolve(
                &mut conn,
                &PromptRef {
                    name: prompt.clone(),
                    pick: Pick::Version(version as u32),
                },
            )
            .await?;
            variants.push(Variant {
                idx: idx as u32,
                label,
                prompt: PromptPin {
                    prompt,
                    version: version.version,
                },
                endpoint,
                lineage: lineage.map(|j| j.0),
                params: serde_json::from_str(&params)
                    .map_err(|e| StoreError::Corrupt(format!("comparison {name}: {e}")))?,
                run_id,
                run_status: status.as_deref().map(|s| match s {
                    "finished" => RunStatus::Finished,
                    "cancelled" => RunStatus::Cancelled,
                    _ => RunStatus::Running,
                }),
            });
            versions.push(version);
        }
        Ok(Loaded {
            info: ComparisonInfo {
                id,
                name: name.to_owned(),
                dataset: dv.dataset,
                dataset_hash: dv.hash,
                items: dv.items,
                variants,
                criteria: spec.criteria.clone(),
                seed: seed as u64,
                created_ms,
            },
            spec,
            dataset_version_id,
            versions,
        })
    }

    /// One comparison.
    pub async fn comparison(&self, name: &str) -> Result<ComparisonInfo, Error> {
        Ok(self.load_comparison(name).await?.info)
    }

    /// Every comparison, newest first.
    pub async fn comparisons(&self) -> Result<Vec<ComparisonInfo>, Error> {
        let names = storage::comparison_names(&mut self.store.read().await?).await?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.comparison(&n).await?);
        }
        Ok(out)
    }

    /// Gives every variant a run — a finished run of the same prompt version, endpoint,
    /// parameters and dataset version (with the comparison's scorers) if there is one, else a
    /// new one — and runs (or resumes) the unfinished ones side by side.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn run_comparison(
        &self,
        name: &str,
        on_progress: &(dyn Fn(&CompareProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<ComparisonInfo, Error> {
        let c = self.load_comparison(name).await?;
        for v in c.info.variants.iter().filter(|v| v.run_id.is_none()) {
            let run_id = match self.reusable_run(&c, v).await? {
                Some(id) => id,
                None => {
                    self.create_run(RunSpec {
                        prompt: v.prompt.to_string(),
                        endpoint: v.endpoint.clone(),
                        dataset: c.spec.dataset.clone(),
                        params: v.params.clone(),
                        repeat: 1,
                        concurrency: default_concurrency(),
                        scorers: c.spec.scorers.clone(),
                        stem: false,
                    })
                    .await?
                    .id
                }
            };
            storage::set_variant_run(&mut self.store.read().await?, c.info.id, v.idx, run_id)
                .await?;
        }
        let c = self.load_comparison(name).await?;
        let pending = c
            .info
            .variants
            .iter()
            .filter(|v| v.run_status != Some(RunStatus::Finished))
            .filter_map(|v| Some((v.idx, v.run_id?)));
        let runs = pending.map(|(variant, run)| async move {
            let report = move |p: &RunProgress| {
                on_progress(&CompareProgress {
                    variant,
                    done: p.done,
                    total: p.total,
                })
            };
            self.execute_run(run, &report, cancel).await
        });
        for r in futures_util::future::join_all(runs).await {
            r?;
        }
        self.comparison(name).await
    }

    async fn reusable_run(&self, c: &Loaded, v: &Variant) -> Result<Option<i64>, Error> {
        let version_id = db::prompt_version_id(
            &mut self.store.read().await?,
            &v.prompt.prompt,
            v.prompt.version,
        )
        .await?;
        let rows = runs::storage::finished_runs(
            &mut self.store.read().await?,
            version_id,
            c.dataset_version_id,
        )
        .await?;
        Ok(rows.into_iter().find_map(|(id, json)| {
            let spec: RunSpec = serde_json::from_str(&json).ok()?;
            let has_scorers = c.spec.scorers.iter().all(|s| {
                spec.scorers
                    .iter()
                    .any(|t| t.metric == s.metric && t.arg == s.arg)
            });
            (spec.endpoint == v.endpoint
                && spec.params == v.params
                && spec.repeat == 1
                && has_scorers)
                .then_some(id)
        }))
    }

    async fn item_result(&self, run_id: i64, item: u64) -> Result<Option<ItemResult>, Error> {
        let json = runs::storage::result_json(&mut self.store.read().await?, run_id, item).await?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| StoreError::Corrupt(format!("run {run_id} item {item}: {e}")).into())
        })
        .transpose()
    }

    /// Variant `variant`'s answer to `item`.
    async fn output(&self, c: &Loaded, variant: u32, item: u64) -> Result<String, Error> {
        Ok(self
            .item_result(c.run_of(variant)?, item)
            .await?
            .map(|r| r.output)
            .unwrap_or_default())
    }

    async fn item(&self, c: &Loaded, item: u64) -> Result<DatasetItem, Error> {
        Ok(datasets::storage::version_items(
            &mut self.store.read().await?,
            c.dataset_version_id,
            item,
            1,
        )
        .await?
        .pop()
        .unwrap_or_default())
    }

    /// The rating queue, the same for every rater: (item, left, right) for each item both of
    /// whose scheduled variants answered without an error.
    async fn tasks(&self, c: &Loaded) -> Result<Vec<(u64, u32, u32)>, Error> {
        if !c.info.ready() {
            return Err(not_ready(&c.info.name));
        }
        let mut failed: Vec<HashSet<u64>> = Vec::new();
        for v in &c.info.variants {
            let rows = match v.run_id {
                Some(run) => {
                    runs::storage::failed_items(&mut self.store.read().await?, run).await?
                }
                None => Vec::new(),
            };
            failed.push(rows.into_iter().map(|i| i as u64).collect());
        }
        let n = c.info.variants.len() as u32;
        Ok((0..c.info.items)
            .map(|i| {
                let (l, r) = task_pair(c.info.seed, n, i);
                (i, l, r)
            })
            .filter(|(i, l, r)| {
                !failed[*l as usize].contains(i) && !failed[*r as usize].contains(i)
            })
            .collect())
    }

    async fn rated(&self, c: &Loaded, rater: &str) -> Result<u64, Error> {
        let n = storage::human_votes_by(&mut self.store.read().await?, c.info.id, rater).await?;
        Ok(n as u64)
    }

    /// Task `index` of the rating queue as rater `rater` sees it: the input and two outputs,
    /// with no variant named, and the rater's vote on it if cast.
    pub async fn rating_task(
        &self,
        name: &str,
        rater: &str,
        index: u64,
    ) -> Result<RatingTask, Error> {
        let rater = rater_name(rater)?;
        let c = self.load_comparison(name).await?;
        let tasks = self.tasks(&c).await?;
        let &(item, l, r) = tasks.get(index as usize).ok_or_else(|| {
            Error::invalid(
                "index",
                format!("{index} is past the last task ({} tasks)", tasks.len()),
            )
        })?;
        let data = self.item(&c, item).await?;
        let left = self.output(&c, l, item).await?;
        let right = self.output(&c, r, item).await?;
        let ballot = storage::ballot(
            &mut self.store.read().await?,
            c.info.id,
            rater,
            (item, l, r),
        )
        .await?;
        Ok(RatingTask {
            index,
            total: tasks.len() as u64,
            item,
            input: input_text(&c.versions[l.min(r) as usize], &data),
            expected: data.expected,
            left,
            right,
            ballot: ballot.map(|(v, comment, criteria)| Ballot {
                verdict: Verdict::parse(&v).unwrap_or(Verdict::Tie),
                comment,
                criteria: criteria
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default(),
            }),
            rated: self.rated(&c, rater).await?,
        })
    }

    /// Records (or changes) `rater`'s vote on task `index`; returns how many tasks the rater has
    /// voted on.
    pub async fn cast_vote(
        &self,
        name: &str,
        rater: &str,
        index: u64,
        ballot: &Ballot,
    ) -> Result<u64, Error> {
        let rater = rater_name(rater)?;
        let c = self.load_comparison(name).await?;
        check_criteria(&c, &ballot.criteria)?;
        let tasks = self.tasks(&c).await?;
        let &(item, l, r) = tasks
            .get(index as usize)
            .ok_or_else(|| Error::invalid("index", format!("{index} is past the last task")))?;
        let comment = ballot
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let criteria = (!ballot.criteria.is_empty()).then_some(&ballot.criteria);
        storage::upsert_vote(
            &mut self.store.read().await?,
            c.info.id,
            (item, l, r),
            ballot.verdict,
            (rater, "human"),
            comment,
            criteria,
        )
        .await?;
        self.rated(&c, rater).await
    }

    async fn vote_rows(&self, c: &Loaded) -> Result<Vec<VoteRow>, Error> {
        Ok(storage::votes(&mut self.store.read().await?, c.info.id).await?)
    }

    /// What the votes add up to: per-pair records, the Bradley–Terry leaderboard, agreement,
    /// position bias, each variant's run figures and rubric means, and each judge beside the
    /// people. With `rater`, refused until that rater has voted on every task (raters see no
    /// result, nor any variant's name, before they finish).
    pub async fn comparison_results(
        &self,
        name: &str,
        rater: Option<&str>,
    ) -> Result<ComparisonResults, Error> {
        let c = self.load_comparison(name).await?;
        let tasks = if c.info.ready() {
            self.tasks(&c).await?.len() as u64
        } else {
            0
        };
        if let Some(rater) = rater {
            let rater = rater_name(rater)?;
            let rated = self.rated(&c, rater).await?;
            if rated < tasks || tasks == 0 {
                return Err(Error::invalid(
                    "results",
                    format!("rate every pair first ({rated} of {tasks} rated)"),
                ));
            }
        }
        let rows = self.vote_rows(&c).await?;
        let (judged, human): (Vec<&VoteRow>, Vec<&VoteRow>) =
            rows.iter().partition(|r| r.is_judge());
        let human_votes: Vec<Vote> = human.iter().map(|r| r.vote(&c)).collect();

        let decisive = human
            .iter()
            .filter(|r| matches!(r.verdict(), Verdict::Left | Verdict::Right))
            .count() as u64;
        let left_wins = human
            .iter()
            .filter(|r| r.verdict() == Verdict::Left)
            .count() as u64;
        let (low, high) = if decisive == 0 {
            (0.0, 1.0)
        } else {
            stats::wilson(left_wins as f64, decisive as f64)
        };
        let position_bias = PositionBias {
            decisive,
            left_wins,
            share: if decisive == 0 {
                0.5
            } else {
                left_wins as f64 / decisive as f64
            },
            low,
            high,
        };

        let mut raters: BTreeMap<&str, u64> = BTreeMap::new();
        let mut criteria: Vec<BTreeMap<&str, (f64, u64)>> =
            vec![BTreeMap::new(); c.info.variants.len()];
        for r in &human {
            *raters.entry(&r.rater).or_default() += 1;
            let scores: CriteriaScores = r
                .criteria_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            for (name, sides) in &scores {
                let Some(name) = c.info.criteria.iter().find(|k| *k == name) else {
                    continue;
                };
                for (side, variant) in sides.iter().zip([r.left_idx, r.right_idx]) {
                    if let Some(s) = side {
                        let e = criteria[variant as usize].entry(name).or_default();
                        e.0 += f64::from(*s);
                        e.1 += 1;
                    }
                }
            }
        }

        let mut variants = Vec::new();
        for (v, crit) in c.info.variants.iter().zip(&criteria) {
            let summary = match v.run_id {
                Some(id) if v.run_status.is_some() => Some(self.run_summary(id).await?),
                _ => None,
            };
            variants.push(VariantResult {
                label: v.label.clone(),
                run_id: v.run_id,
                errors: summary.as_ref().map_or(0, |s| s.errors),
                scores: summary
                    .as_ref()
                    .map(|s| s.scores.clone())
                    .unwrap_or_default(),
                latency_p50_ms: summary.as_ref().map_or(0.0, |s| s.latency_ms.p50),
                cost: summary.as_ref().map(|s| s.cost),
                cost_estimated: summary.as_ref().is_some_and(|s| s.cost_estimated),
                criteria: crit
                    .iter()
                    .map(|(k, (sum, n))| ((*k).to_owned(), sum / *n as f64))
                    .collect(),
            });
        }

        let mut by_judge: BTreeMap<&str, Vec<&VoteRow>> = BTreeMap::new();
        for r in &judged {
            by_judge.entry(&r.rater).or_default().push(r);
        }
        let judges = by_judge
            .into_iter()
            .map(|(judge, rows)| judge_result(&c, judge, &rows, &human))
            .collect();

        Ok(ComparisonResults {
            tasks,
            variants,
            human: stats::standings(&human_votes, ROUNDS, c.info.seed),
            position_bias,
            raters: raters
                .into_iter()
                .map(|(rater, rated)| RaterProgress {
                    rater: rater.to_owned(),
                    rated,
                })
                .collect(),
            judges,
            comparison: c.info,
        })
    }

    /// Two variants' answers item by item, with a word diff, each side's scores, latency and
    /// cost; in item order or largest gap first (the primary score's, else the text's).
    pub async fn side_by_side(&self, name: &str, q: &SideBySideQuery) -> Result<SideBySide, Error> {
        let c = self.load_comparison(name).await?;
        let n = c.info.variants.len() as u32;
        if q.a >= n || q.b >= n || q.a == q.b {
            return Err(Error::invalid(
                "variants",
                format!("pick two different variants from 1 to {n}"),
            ));
        }
        let (ra, rb) = (c.run_of(q.a)?, c.run_of(q.b)?);
        let (sa, sb) = (
            runs::storage::run(&mut self.store.read().await?, ra).await?,
            runs::storage::run(&mut self.store.read().await?, rb).await?,
        );
        let primary = sa
            .spec
            .scorers
            .iter()
            .map(|s| &s.metric)
            .find(|m| sb.spec.scorers.iter().any(|t| &t.metric == *m))
            .cloned();
        // Only the gap is kept per item, so memory stays small whatever the dataset's size.
        let mut gaps: Vec<(u64, f64)> = Vec::new();
        // Without a primary score the path names nothing, so the text gap is used.
        let path = primary
            .as_ref()
            .map_or("$.none".to_owned(), |p| format!("$.scores.\"{p}\""));
        runs::storage::for_each_side_by_side(
            &mut self.store.read().await?,
            (ra, rb),
            &path,
            |item, oa, ob, xa, xb| {
                let gap = match (xa, xb) {
                    (Some(a), Some(b)) => (b - a).abs(),
                    _ => text_gap(oa.as_deref().unwrap_or(""), ob.as_deref().unwrap_or("")),
                };
                gaps.push((item as u64, gap));
            },
        )
        .await?;
        if q.by_gap {
            gaps.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
        }
        let total = gaps.len() as u64;
        let mut rows = Vec::new();
        for &(item, gap) in gaps
            .iter()
            .skip(q.offset as usize)
            .take(q.limit.clamp(1, 500) as usize)
        {
            let data = self.item(&c, item).await?;
            let (Some(a), Some(b)) = (
                self.item_result(ra, item).await?,
                self.item_result(rb, item).await?,
            ) else {
                continue;
            };
            let (da, db) = word_diff(&a.output, &b.output);
            let side = |r: ItemResult, segments| SideOutput {
                output: r.output,
                segments,
                error: r.error,
                scores: r.scores,
                latency_ms: r.latency_ms,
                cost: r.cost,
            };
            rows.push(SideBySideRow {
                item,
                input: input_text(&c.versions[q.a as usize], &data),
                a: side(a, da),
                b: side(b, db),
                gap,
            });
        }
        Ok(SideBySide {
            a: c.label(q.a).to_owned(),
            b: c.label(q.b).to_owned(),
            primary,
            total,
            rows,
        })
    }

    /// Has an LLM judge vote on every task in both orders (`judge` = `RUBRIC@ENDPOINT`; the
    /// rubric gets the item's variables and `input`, `expected`, `output_a` (left) and
    /// `output_b` (right)). Pairs already judged in an order are not judged again.
    #[tracing::instrument(skip_all, fields(name), err(level = "info"))]
    pub async fn judge_comparison(
        &self,
        name: &str,
        judge: &str,
        on_progress: &(dyn Fn(u64, u64) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<JudgeRun, Error> {
        let (prompt, endpoint) = judge
            .rsplit_once('@')
            .filter(|(p, e)| !p.is_empty() && !e.is_empty())
            .ok_or_else(|| Error::invalid("judge", format!("'{judge}' is not RUBRIC@ENDPOINT")))?;
        let c = self.load_comparison(name).await?;
        let rubric = self.resolve_prompt(prompt).await?;
        let pin = PromptPin {
            prompt: rubric.prompt.clone(),
            version: rubric.version,
        };
        let prepared = self.prepare(endpoint, Some(&pin)).await?;
        let rater = format!("{JUDGE}{}@{}@{endpoint}", rubric.prompt, rubric.version);
        let done: HashSet<(i64, i64, i64)> =
            storage::judged(&mut self.store.read().await?, c.info.id, &rater)
                .await?
                .into_iter()
                .collect();
        let jobs: Vec<(u64, u32, u32)> = self
            .tasks(&c)
            .await?
            .into_iter()
            .flat_map(|(i, l, r)| [(i, l, r), (i, r, l)])
            .filter(|(i, l, r)| !done.contains(&(*i as i64, i64::from(*l), i64::from(*r))))
            .collect();
        let total = jobs.len() as u64;
        let finished = std::sync::atomic::AtomicU64::new(0);
        let (c, rubric, prepared, rater) = (&c, &rubric, &prepared, &rater);
        let finished = &finished;
        let outcomes: Vec<Result<(), Error>> = futures_util::stream::iter(jobs)
            .map(|(item, l, r)| async move {
                let data = self.item(c, item).await?;
                let mut vars = data.vars.clone();
                vars.insert(
                    "input".into(),
                    input_text(&c.versions[l.min(r) as usize], &data),
                );
                vars.insert("expected".into(), data.expected.join("\n---\n"));
                vars.insert("output_a".into(), self.output(c, l, item).await?);
                vars.insert("output_b".into(), self.output(c, r, item).await?);
                let mut req = ChatRequest::new(
                    rubric.content.messages.clone(),
                    rubric.content.params.clone(),
                );
                req.variables = vars;
                req.prompt = Some(PromptPin {
                    prompt: rubric.prompt.clone(),
                    version: rubric.version,
                });
                let answer = self
                    .chat_prepared(prepared, &req, CallSource::Run, &mut |_| {}, cancel)
                    .await;
                finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                on_progress(finished.load(std::sync::atomic::Ordering::Relaxed), total);
                let answer = answer?;
                let (verdict, reason) = parse_pairwise(&answer.output).ok_or_else(|| {
                    Error::invalid(
                        "judge",
                        format!("no verdict in the judge's answer: {}", answer.output),
                    )
                })?;
                storage::upsert_vote(
                    &mut self.store.read().await?,
                    c.info.id,
                    (item, l, r),
                    verdict,
                    (rater, "judge"),
                    Some(&prepared.redact_for_storage(&reason)),
                    None,
                )
                .await?;
                Ok(())
            })
            .buffer_unordered(JUDGE_CONCURRENCY)
            .collect()
            .await;
        let failed: Vec<Error> = outcomes.into_iter().filter_map(Result::err).collect();
        if failed.len() as u64 == total && total > 0 {
            return Err(failed.into_iter().next().expect("one failure"));
        }
        self.noted("comparison.judge", &format!("{name} by {judge}"))
            .await?;
        let results = self.comparison_results(name, None).await?;
        let result = results
            .judges
            .into_iter()
            .find(|j| j.judge == *rater)
            .ok_or_else(|| Error::invalid("judge", "the judge cast no vote"))?;
        Ok(JudgeRun {
            result,
            failed: failed.len() as u64,
            first_failure: failed.first().map(ToString::to_string),
        })
    }

    /// Imports votes gathered elsewhere: JSONL lines `{"item", "left", "right", "vote",
    /// "rater"}` (and optionally `"comment"`), variants named by label or number (1 = first),
    /// votes `left`, `right`, `tie` or `both_bad`. All or nothing: a bad line is named and
    /// nothing is stored.
    pub async fn import_votes(&self, name: &str, path: &Path) -> Result<u64, Error> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(file.clone(), format!("cannot read: {e}")))?;
        let c = self.load_comparison(name).await?;
        let votes = parse_votes(&file, &text, c.info.items, &c.info.variants)?;
        let mut tx = self.store.write().await?;
        for v in &votes {
            storage::upsert_vote(
                &mut tx,
                c.info.id,
                (v.item, v.left, v.right),
                v.verdict,
                (&v.rater, "import"),
                v.comment.as_deref(),
                None,
            )
            .await?;
        }
        db::commit(tx).await?;
        self.noted(
            "comparison.import_votes",
            &format!("{name}: {} votes from {file}", votes.len()),
        )
        .await?;
        Ok(votes.len() as u64)
    }

    /// Writes what people preferred: `finetune` (OpenAI chat fine-tuning JSONL: the winning
    /// variant's prompt rendered for the item, then its answer), `dpo` (preference pairs:
    /// `prompt` messages, `chosen` and `rejected` answers) or `csv` (every vote). A pair's
    /// preference is the majority of its human votes; ties and "both bad" give none. Returns the
    /// number of records written.
    pub async fn export_comparison(
        &self,
        name: &str,
        format: Format,
        out: &mut (dyn Write + Send),
    ) -> Result<u64, Error> {
        let format = format
            .one_of("a comparison", &EXPORT_FORMATS)
            .map_err(|e| Error::invalid("format", e))?;
        let c = self.load_comparison(name).await?;
        let rows = self.vote_rows(&c).await?;
        let io = |e: std::io::Error| Error::invalid("output", format!("cannot write: {e}"));
        if format == Format::Csv {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "item", "left", "right", "verdict", "winner", "rater", "source", "comment",
                "criteria", "at_ms",
            ])
            .map_err(|e| io(e.into()))?;
            for r in &rows {
                let (l, rr) = (c.label(r.left_idx as u32), c.label(r.right_idx as u32));
                let winner = match r.verdict() {
                    Verdict::Left => l,
                    Verdict::Right => rr,
                    Verdict::Tie | Verdict::BothBad => "",
                };
                w.write_record([
                    r.item_idx.to_string().as_str(),
                    l,
                    rr,
                    r.verdict.as_str(),
                    winner,
                    &r.rater,
                    &r.source,
                    r.comment.as_deref().unwrap_or(""),
                    r.criteria_json.as_deref().unwrap_or(""),
                    &r.at_ms.to_string(),
                ])
                .map_err(|e| io(e.into()))?;
            }
            w.flush().map_err(io)?;
            return Ok(rows.len() as u64);
        }
        // Majority per pair, from the first variant's side.
        let mut tally: BTreeMap<(u64, u32, u32), [u64; 4]> = BTreeMap::new();
        for r in rows.iter().filter(|r| !r.is_judge()) {
            let (key, label) = r.key();
            tally.entry(key).or_default()[label] += 1;
        }
        let preferred = tally.into_iter().filter_map(|((item, a, b), t)| {
            let top = *t.iter().max()?;
            let winners: Vec<usize> = (0..4).filter(|k| t[*k] == top).collect();
            match winners.as_slice() {
                [0] => Some((item, a, b)),
                [1] => Some((item, b, a)),
                _ => None,
            }
        });
        let messages = |v: u32, item: &DatasetItem| -> Result<Vec<Message>, Error> {
            Ok(crate::prompts::render(&c.versions[v as usize].content.messages, &item.vars)?.0)
        };
        let mut written = 0u64;
        let mut seen_items = HashSet::new();
        for (item, win, lose) in preferred {
            if format == Format::Finetune && !seen_items.insert(item) {
                continue;
            }
            let data = self.item(&c, item).await?;
            let prompt = messages(win, &data)?;
            let chosen = self.output(&c, win, item).await?;
            let line = if format == Format::Finetune {
                let mut m = prompt;
                m.push(Message::new(Role::Assistant, chosen));
                json!({ "messages": m })
            } else {
                json!({
                    "prompt": prompt,
                    "chosen": [Message::new(Role::Assistant, chosen)],
                    "rejected": [Message::new(Role::Assistant, self.output(&c, lose, item).await?)],
                })
            };
            serde_json::to_writer(&mut *out, &line).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
            written += 1;
        }
        out.flush().map_err(io)?;
        Ok(written)
    }

    /// Writes an export to `path` (empty: `NAME-FORMAT.EXT` in the downloads folder) through a
    /// temporary file.
    pub async fn export_comparison_file(
        &self,
        name: &str,
        format: Format,
        path: &str,
    ) -> Result<Exported, Error> {
        let default = format!("{name}-{format}.{}", format.extension());
        let mut file = PartialFile::create(path, &default)?;
        let records = self.export_comparison(name, format, file.writer()).await?;
        Ok(Exported {
            source: name.to_owned(),
            path: file.commit()?,
            format,
            records,
        })
    }
}

/// One vote read from an import file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedVote {
    pub item: u64,
    pub left: u32,
    pub right: u32,
    pub verdict: Verdict,
    pub rater: String,
    pub comment: Option<String>,
}

/// Reads the JSONL lines of a vote import (see [`Console::import_votes`]) for a comparison of
/// `items` items and `variants`; the first bad line is an error naming `FILE:LINE` and the field.
/// Reads only: nothing is stored.
pub fn parse_votes(
    file: &str,
    text: &str,
    items: u64,
    variants: &[Variant],
) -> Result<Vec<ImportedVote>, Error> {
    let variant = |line: usize, field: &str, v: Option<&Value>| -> Result<u32, Error> {
        let at = format!("{file}:{line}: {field}");
        let labels = || {
            variants
                .iter()
                .map(|v| format!("{} = {}", v.idx + 1, v.label))
                .collect::<Vec<_>>()
                .join("; ")
        };
        match v {
            Some(Value::Number(n)) => n
                .as_u64()
                .filter(|n| (1..=variants.len() as u64).contains(n))
                .map(|n| n as u32 - 1)
                .ok_or_else(|| Error::invalid(at, format!("no variant {n} ({})", labels()))),
            Some(Value::String(s)) => variants
                .iter()
                .find(|v| v.label == *s)
                .map(|v| v.idx)
                .ok_or_else(|| Error::invalid(at, format!("no variant '{s}' ({})", labels()))),
            _ => Err(Error::invalid(at, "missing: a variant's label or number")),
        }
    };
    // Windows tools often save UTF-8 with a byte-order mark: it is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut votes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error::invalid(format!("{file}:{n}"), format!("not JSON: {e}")))?;
        let Some(obj) = v.as_object() else {
            return Err(Error::invalid(format!("{file}:{n}"), "not a JSON object"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["item", "left", "right", "vote", "rater", "comment"].contains(&k.as_str()))
        {
            return Err(Error::invalid(format!("{file}:{n}: {k}"), "unknown field"));
        }
        let item = obj
            .get("item")
            .and_then(Value::as_u64)
            .filter(|i| *i < items)
            .ok_or_else(|| {
                Error::invalid(
                    format!("{file}:{n}: item"),
                    format!("an item index from 0 to {}", items.saturating_sub(1)),
                )
            })?;
        let left = variant(n, "left", obj.get("left"))?;
        let right = variant(n, "right", obj.get("right"))?;
        if left == right {
            return Err(Error::invalid(
                format!("{file}:{n}: right"),
                "the same variant as left",
            ));
        }
        let verdict = obj
            .get("vote")
            .and_then(Value::as_str)
            .and_then(Verdict::parse)
            .ok_or_else(|| {
                Error::invalid(format!("{file}:{n}: vote"), "left, right, tie or both_bad")
            })?;
        let rater = obj
            .get("rater")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::invalid(format!("{file}:{n}: rater"), "a rater's name"))?;
        if rater.starts_with(JUDGE) {
            return Err(Error::invalid(
                format!("{file}:{n}: rater"),
                "names starting with 'judge:' are judges'",
            ));
        }
        let comment = match obj.get("comment") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(_) => {
                return Err(Error::invalid(
                    format!("{file}:{n}: comment"),
                    "a comment is text",
                ))
            }
        };
        votes.push(ImportedVote {
            item,
            left,
            right,
            verdict,
            rater: rater.to_owned(),
            comment,
        });
    }
    Ok(votes)
}

/// One judge's votes, its consistency across the two orders and its agreement with people.
fn judge_result(c: &Loaded, judge: &str, rows: &[&VoteRow], human: &[&VoteRow]) -> JudgeResult {
    let votes: Vec<Vote> = rows.iter().map(|r| r.vote(c)).collect();
    let mut by_pair: BTreeMap<(u64, u32, u32), Vec<usize>> = BTreeMap::new();
    for r in rows {
        let (key, label) = r.key();
        by_pair.entry(key).or_default().push(label);
    }
    let both: Vec<_> = by_pair.iter().filter(|(_, l)| l.len() >= 2).collect();
    let inconsistent: Vec<u64> = both
        .iter()
        .filter(|(_, l)| l.iter().any(|x| *x != l[0]))
        .map(|((item, ..), _)| *item)
        .collect();
    let mut pairs = Vec::new();
    for h in human {
        let (key, label) = h.key();
        for j in by_pair.get(&key).into_iter().flatten() {
            pairs.push((label, *j));
        }
    }
    let agreement_with_humans = stats::cohen_kappa(&pairs).map(|kappa| Agreement {
        method: "cohen".into(),
        kappa,
        items: pairs.len() as u64,
        raters: 2,
    });
    let mut standings = stats::standings(&votes, ROUNDS, c.info.seed);
    standings.agreement = None;
    JudgeResult {
        judge: judge.to_owned(),
        pairs: both.len() as u64,
        inconsistent: inconsistent.len() as u64,
        inconsistent_items: inconsistent.into_iter().take(50).collect(),
        standings,
        agreement_with_humans,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn vote_files_with_a_bom_are_read_and_a_comment_that_is_not_text_is_refused() {
        let variants = super::props::variants(&["a".into(), "b".into()]);
        let read = |text: &str| parse_votes("v.jsonl", text, 3, &variants);
        let line = r#"{"item": 0, "left": "a", "right": 2, "vote": "left", "rater": "ada""#;
        // Found by the property tests: a BOM made line 1 "not JSON", and a comment that is not
        // text was dropped without a word.
        let votes = read(&format!("\u{feff}{line}, \"comment\": null}}\r\n")).unwrap();
        assert_eq!(
            (votes[0].left, votes[0].right, votes[0].comment.clone()),
            (0, 1, None)
        );
        let e = read(&format!("{line}}}\n{line}, \"comment\": 5}}\n")).unwrap_err();
        assert_eq!(e.to_string(), "v.jsonl:2: comment: a comment is text");
        let e = read(&format!("{}}}", line.replace("ada", "judge:gpt"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "v.jsonl:1: rater: names starting with 'judge:' are judges'"
        );
    }

    #[test]
    fn pairs_take_turns_evenly_and_sides_are_mixed() {
        for variants in 2..=5u32 {
            let pairs = (variants * (variants - 1) / 2) as usize;
            let mut count: HashMap<(u32, u32), u64> = HashMap::new();
            let mut left_first = 0;
            for item in 0..1000u64 {
                let (l, r) = task_pair(42, variants, item);
                assert_ne!(l, r);
                assert!(l < variants && r < variants);
                *count.entry((l.min(r), l.max(r))).or_default() += 1;
                left_first += u64::from(l < r);
                assert_eq!(
                    task_pair(42, variants, item),
                    (l, r),
                    "the schedule is fixed"
                );
            }
            assert_eq!(count.len(), pairs, "every pair is rated");
            let (lo, hi) = (count.values().min().unwrap(), count.values().max().unwrap());
            assert!(hi - lo <= 1, "{variants} variants: {count:?}");
            assert!(
                (400..600).contains(&left_first),
                "sides randomized: {left_first}"
            );
        }
    }

    #[test]
    fn swapped_sides_are_undone() {
        // Variant 0 wins whether it was shown left or right.
        assert_eq!(normalized(3, 0, 1, Verdict::Left), ((3, 0, 1), 0));
        assert_eq!(normalized(3, 1, 0, Verdict::Right), ((3, 0, 1), 0));
        assert_eq!(normalized(3, 1, 0, Verdict::Left), ((3, 0, 1), 1));
        assert_eq!(normalized(3, 2, 1, Verdict::Tie), ((3, 1, 2), 2));
        assert_eq!(normalized(3, 2, 1, Verdict::BothBad), ((3, 1, 2), 3));
    }

    #[test]
    fn pairwise_verdicts_are_read_from_json_or_mt_bench_tags() {
        let cases = [
            (
                r#"{"winner": "A", "reason": "clearer"}"#,
                Some(Verdict::Left),
            ),
            (r#"Sure: {"verdict": "b"}"#, Some(Verdict::Right)),
            (r#"{"winner": "both_bad"}"#, Some(Verdict::BothBad)),
            (r#"{"winner": "tie"}"#, Some(Verdict::Tie)),
            ("A is longer. Final verdict: [[B]]", Some(Verdict::Right)),
            ("[[C]]", Some(Verdict::Tie)),
            ("I cannot decide", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_pairwise(text).map(|v| v.0), want, "{text}");
        }
        assert_eq!(
            parse_pairwise(r#"{"winner": "A", "reason": "clearer"}"#)
                .unwrap()
                .1,
            "clearer"
        );
    }

    #[test]
    fn word_diff_marks_what_differs_on_each_side() {
        let (a, b) = word_diff("the cat sat", "the dog sat");
        let changed = |s: &[Segment]| {
            s.iter()
                .filter(|x| x.changed)
                .map(|x| x.text.trim().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(changed(&a), ["cat"]);
        assert_eq!(changed(&b), ["dog"]);
        let joined = |s: &[Segment]| s.iter().map(|x| x.text.as_str()).collect::<String>();
        assert_eq!(joined(&a), "the cat sat");
        assert_eq!(joined(&b), "the dog sat");
        assert_eq!(text_gap("a b c", "a b c"), 0.0);
        assert!(text_gap("a b c", "x y z") > text_gap("a b c", "a b z"));
        assert!(text_gap("a b c", "a b z") > 0.0);
    }
}

/// Property tests of the vote importer: 10 000 generated, arbitrary or mutated files each.
#[cfg(test)]
mod props {
    use super::*;
    use milc_api::mutation::{self, mutate, Edit};
    use proptest::prelude::*;

    const FILE: &str = "votes.jsonl";
    const FIELDS: [&str; 6] = ["item", "left", "right", "vote", "rater", "comment"];

    /// Variants with these labels, as an import reads them.
    pub(super) fn variants(labels: &[String]) -> Vec<Variant> {
        labels
            .iter()
            .enumerate()
            .map(|(i, label)| Variant {
                idx: i as u32,
                label: label.clone(),
                prompt: PromptPin {
                    prompt: "p".into(),
                    version: 1,
                },
                endpoint: "e".into(),
                lineage: None,
                params: Default::default(),
                run_id: None,
                run_status: None,
            })
            .collect()
    }

    /// A comparison (items, variant labels), the votes cast on it, and an import file that
    /// writes them: variants by label or number, raters with spaces around, comments or none,
    /// LF or CRLF, blank lines, maybe a BOM.
    #[derive(Clone, Debug)]
    struct File {
        items: u64,
        labels: Vec<String>,
        votes: Vec<ImportedVote>,
        lines: Vec<String>,
        text: String,
    }

    fn file(votes: std::ops::Range<usize>) -> impl Strategy<Value = File> {
        let labels = prop::collection::btree_set("[a-z][a-z0-9 -]{0,5}", 2..5)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>());
        (labels, 1..20u64).prop_flat_map(move |(labels, items)| {
            let n = labels.len() as u32;
            let vote = (
                0..items,
                0..n,
                1..n,
                prop::sample::select(Verdict::ALL.to_vec()),
                " ?[A-Za-zé][A-Za-zé .]{0,6} ?",
                prop::option::of(".{0,8}"),
                any::<(bool, bool)>(),
            );
            (
                Just(labels),
                Just(items),
                prop::collection::vec(vote, votes.clone()),
                any::<(bool, bool, bool)>(),
            )
                .prop_map(|(labels, items, raw, (crlf, blank, bom))| {
                    let mut votes = Vec::new();
                    let mut lines = Vec::new();
                    for (item, left, shift, verdict, rater, comment, (by_label_l, by_label_r)) in
                        raw
                    {
                        let right = (left + shift) % labels.len() as u32;
                        let name = |v: u32, by_label: bool| {
                            if by_label {
                                json!(labels[v as usize])
                            } else {
                                json!(v + 1)
                            }
                        };
                        let mut line = json!({
                            "item": item,
                            "left": name(left, by_label_l),
                            "right": name(right, by_label_r),
                            "vote": verdict.as_str(),
                            "rater": rater,
                        });
                        if let Some(c) = &comment {
                            line["comment"] = json!(c);
                        }
                        lines.push(line.to_string());
                        votes.push(ImportedVote {
                            item,
                            left,
                            right,
                            verdict,
                            rater: rater.trim().to_owned(),
                            comment,
                        });
                    }
                    let end = if crlf { "\r\n" } else { "\n" };
                    let sep = if blank {
                        format!("{end} \t{end}")
                    } else {
                        end.to_owned()
                    };
                    let text = format!(
                        "{}{}{end}",
                        if bom { "\u{feff}" } else { "" },
                        lines.join(&sep)
                    );
                    File {
                        items,
                        labels,
                        votes,
                        lines,
                        text,
                    }
                })
        })
    }

    /// The line an error names (`FILE:LINE` …) and the field after it, if any.
    fn named(e: &Error) -> Option<(usize, Option<String>)> {
        let shown = e.to_string();
        let rest = shown.strip_prefix(FILE)?.strip_prefix(':')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let field = rest[digits.len()..]
            .strip_prefix(": ")
            .and_then(|r| r.split(':').next())
            .filter(|f| FIELDS.contains(f))
            .map(str::to_owned);
        Some((digits.parse().ok()?, field))
    }

    /// Any file: votes that fit the comparison, or an error naming the first line that is not
    /// one (each line before it is).
    fn check_any(text: &str, items: u64, labels: &[String]) -> Result<(), TestCaseError> {
        let vs = variants(labels);
        match parse_votes(FILE, text, items, &vs) {
            Ok(votes) => {
                for v in &votes {
                    prop_assert!(v.item < items);
                    prop_assert!(v.left != v.right);
                    prop_assert!(
                        (v.left as usize) < labels.len() && (v.right as usize) < labels.len()
                    );
                    prop_assert!(!v.rater.is_empty() && v.rater == v.rater.trim());
                    prop_assert!(!v.rater.starts_with(JUDGE));
                }
            }
            Err(e) => {
                let lines: Vec<&str> = text.lines().collect();
                let n = named(&e).map(|(n, _)| n);
                prop_assert!(
                    n.is_some_and(|n| (1..=lines.len()).contains(&n)),
                    "{text:?}: {e} names no line of the file"
                );
                let n = n.unwrap();
                // Each line read alone, where it stands (a BOM is only skipped at the start).
                let alone = |i: usize, line: &str| {
                    let pad = if i == 0 { "" } else { "\n" };
                    parse_votes(FILE, &format!("{pad}{line}"), items, &vs)
                };
                prop_assert!(alone(n - 1, lines[n - 1]).is_err());
                for (i, l) in lines[..n - 1].iter().enumerate() {
                    prop_assert!(alone(i, l).is_ok(), "{e}, but {l:?} before it is bad");
                }
            }
        }
        Ok(())
    }

    /// Mutations of valid inputs ([`milc_api::mutation`]), with this parser's symbols.
    fn edits() -> impl Strategy<Value = Vec<Edit<char>>> {
        mutation::edits(mutation::chars("{}[]\":,0123 \n\u{feff}ab-"), true)
    }

    /// Ways to spoil one line, and the field the error must then name (`None`: the line).
    fn spoil(
        line: &str,
        how: usize,
        items: u64,
        labels: &[String],
    ) -> (String, Option<&'static str>) {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let field = match how {
            0 => return (line.chars().take(line.chars().count() / 2).collect(), None),
            1 => return ("[1, 2]".into(), None),
            2 => {
                v["colour"] = json!("red");
                return (v.to_string(), None);
            }
            3 => {
                v["item"] = json!(items);
                "item"
            }
            4 => {
                v["item"] = json!(-1);
                "item"
            }
            5 => {
                v["left"] = json!(labels.len() + 1);
                "left"
            }
            6 => {
                v["right"] = json!(format!("{}?", labels[0]));
                "right"
            }
            7 => {
                v.as_object_mut().unwrap().remove("left");
                "left"
            }
            8 => {
                v["right"] = v["left"].clone();
                "right"
            }
            9 => {
                v["vote"] = json!("LEFT");
                "vote"
            }
            10 => {
                v["rater"] = json!("  ");
                "rater"
            }
            11 => {
                v["rater"] = json!("judge:gpt");
                "rater"
            }
            12 => {
                v["rater"] = json!(7);
                "rater"
            }
            _ => {
                v["comment"] = json!(["not", "text"]);
                "comment"
            }
        };
        (v.to_string(), Some(field))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// An import file gives exactly the votes it writes, however it is laid out.
        #[test]
        fn a_vote_file_gives_the_votes_it_writes(f in file(0..6)) {
            let votes = parse_votes(FILE, &f.text, f.items, &variants(&f.labels))?;
            prop_assert_eq!(votes, f.votes);
        }

        /// One spoiled line: the error names its line and the field that is wrong.
        #[test]
        fn a_bad_vote_is_named_by_line_and_field(
            f in file(1..6),
            which in any::<prop::sample::Index>(),
            how in 0..14usize,
        ) {
            let bad = which.index(f.lines.len());
            let (spoiled, field) = spoil(&f.lines[bad], how, f.items, &f.labels);
            let mut lines = f.lines.clone();
            lines[bad] = spoiled;
            let e = parse_votes(FILE, &lines.join("\n"), f.items, &variants(&f.labels)).unwrap_err();
            let (line, named_field) = named(&e).unwrap_or_default();
            prop_assert_eq!(line, bad + 1, "{}", e);
            if let Some(field) = field {
                prop_assert_eq!(named_field.as_deref(), Some(field), "{}", e);
            }
            prop_assert!(matches!(&e, Error::Invalid { message, .. } if !message.is_empty()), "{}", e);
        }

        /// Arbitrary text: votes, or an error naming the first bad line.
        #[test]
        fn arbitrary_text_is_read_or_refused_at_its_first_bad_line(
            s in prop_oneof![any::<String>(), "[a-z,\"\r\n {}:0-9]{0,40}"],
            items in 0..5u64,
        ) {
            check_any(&s, items, &["a".into(), "b".into()])?;
        }

        /// Valid files with characters and lines inserted, deleted, replaced or cut.
        #[test]
        fn mutated_vote_files_are_read_or_refused_at_their_first_bad_line(
            f in file(0..6),
            e in edits(),
        ) {
            check_any(&mutate(&f.text, &e), f.items, &f.labels)?;
        }
    }
}
