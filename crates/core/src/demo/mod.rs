//! The sample project a new user opens: a support-ticket summarizer — an endpoint on the
//! built-in simulator with prices, two prompt versions (`production` and `candidate`), fifty
//! tickets with reference summaries, a finished run of each version, a comparison between them
//! with votes, and a week of back-dated usage with a budget alert. Everything it creates is
//! registered in `samples`, so `remove` takes exactly that away and leaves the rest as it was.

mod storage;
mod tickets;

use std::collections::BTreeMap;

use milc_api::compare::{ComparisonSpec, VariantSpec};
use milc_api::dataset::DatasetItem;
use milc_api::prompt::{NewVersion, PromptContent};
use milc_api::run::{RunSpec, ScorerSpec};
use milc_api::{CallSource, EndpointSpec, Message, Outcome, Role, Usage, UsageSource};
use tokio_util::sync::CancellationToken;

use crate::db::{self, now_ms};
use crate::{Console, Error};

pub const ENDPOINT: &str = "Sample endpoint (simulated)";
pub const PROMPT: &str = "sample-ticket-summary";
pub const DATASET: &str = "sample-tickets";
pub const COMPARISON: &str = "sample-production-vs-candidate";

pub use milc_api::demo::{DemoState, Sample};

fn system(instruction: &str) -> Vec<Message> {
    vec![
        Message::new(
            Role::System,
            format!("You are a support assistant. {instruction}"),
        ),
        Message::new(Role::User, "{{ticket}}"),
    ]
}

impl Console {
    /// Loads the sample project (refused when it is already there).
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn demo_load(&self) -> Result<Sample, Error> {
        if !storage::samples(&mut self.store.read().await?)
            .await?
            .is_empty()
        {
            return Err(Error::invalid(
                "sample",
                "the sample project is already loaded (milc demo remove takes it away)",
            ));
        }
        // What loading it notes in the activity log is the sample's too.
        let noted_before = crate::activity::storage::last_id(&mut self.store.read().await?).await?;
        // The runs are answered by a simulator at full speed; the endpoint then points at the
        // built-in one, paced like a real model for the Playground.
        let fast = milc_sim::start(([127, 0, 0, 1], 0).into(), milc_sim::SimConfig::default())
            .await
            .map_err(|e| Error::invalid("sample", format!("cannot start a simulator: {e}")))?;
        let mut spec = EndpointSpec::new(ENDPOINT, fast.base_url(), "milc-sim");
        spec.prices.input = "0.50".parse().expect("a price");
        spec.prices.output = "1.50".parse().expect("a price");
        let ep = self.add_endpoint(spec.clone(), None).await?;
        self.mark("endpoint", ep.id).await?;

        let v1 = system("Summarize the customer's message for the support queue.");
        let v2 = system("Summarize the customer's message in one sentence for the support queue.");
        for (i, (messages, note)) in [(v1, "first version"), (v2, "one sentence, for the queue")]
            .into_iter()
            .enumerate()
        {
            self.save_prompt(
                NewVersion {
                    prompt: PROMPT.into(),
                    description: Some("Sample: support tickets summarized for the queue".into()),
                    content: PromptContent {
                        messages,
                        params: milc_api::Params {
                            max_tokens: Some(120),
                            ..Default::default()
                        },
                        endpoint: Some(ENDPOINT.into()),
                        redaction: None,
                    },
                    note: note.into(),
                },
                i == 0,
            )
            .await?;
            if i == 0 {
                let id = crate::prompts::storage::prompt_id(&mut self.store.read().await?, PROMPT)
                    .await?
                    .ok_or_else(|| crate::StoreError::NoSuchPrompt(PROMPT.into()))?;
                self.mark("prompt", id).await?;
            }
        }
        self.label_prompt(PROMPT, 1, "production").await?;
        self.label_prompt(PROMPT, 2, "candidate").await?;

        let items: Vec<DatasetItem> = tickets::tickets()
            .into_iter()
            .map(|(ticket, reference)| DatasetItem {
                vars: BTreeMap::from([("ticket".to_owned(), ticket)]),
                expected: vec![reference],
                metadata: BTreeMap::new(),
            })
            .collect();
        self.import_items(DATASET, &items, "sample").await?;
        let id =
            crate::datasets::storage::dataset_id(&mut self.store.read().await?, DATASET).await?;
        self.mark("dataset", id).await?;

        let scorers = ["rougeL", "bleu"].map(|m| ScorerSpec {
            metric: m.into(),
            arg: None,
            threshold: None,
        });
        let mut runs = Vec::new();
        for label in ["production", "candidate"] {
            let run = self
                .create_run(RunSpec {
                    prompt: format!("{PROMPT}:{label}"),
                    endpoint: ENDPOINT.into(),
                    dataset: DATASET.into(),
                    params: Default::default(),
                    repeat: 1,
                    concurrency: 16,
                    scorers: scorers.to_vec(),
                    stem: false,
                })
                .await?;
            self.mark("run", run.id).await?;
            self.execute_run(run.id, &|_| {}, &CancellationToken::new())
                .await?;
            runs.push(run.id);
        }

        let cmp = self
            .create_comparison(ComparisonSpec {
                name: COMPARISON.into(),
                dataset: DATASET.into(),
                inputs: vec![],
                variants: ["production", "candidate"]
                    .map(|l| VariantSpec {
                        prompt: format!("{PROMPT}:{l}"),
                        endpoint: ENDPOINT.into(),
                        params: Default::default(),
                    })
                    .to_vec(),
                criteria: vec!["faithful".into(), "brief".into()],
                scorers: scorers.to_vec(),
                seed: Some(7),
            })
            .await?;
        self.mark("comparison", cmp.id).await?;
        let cmp = self
            .run_comparison(COMPARISON, &|_| {}, &CancellationToken::new())
            .await?;
        // The comparison reuses the two runs when it can; any run it made is the sample's too.
        for run in cmp.variants.iter().filter_map(|v| v.run_id) {
            self.mark("run", run).await?;
        }
        self.sample_votes().await?;

        // From now on the endpoint is the built-in simulator, paced like a model.
        spec.base_url = crate::endpoints::EMBEDDED_SIM_URL.into();
        self.update_endpoint(ep.id, spec).await?;
        fast.stop().await;

        let calls = self.sample_usage(ep.id).await?;
        let noted =
            crate::activity::storage::ids_after(&mut self.store.read().await?, noted_before)
                .await?;
        for id in noted {
            self.mark("activity", id).await?;
        }
        Ok(Sample {
            endpoint: ENDPOINT.into(),
            prompt: PROMPT.into(),
            dataset: DATASET.into(),
            runs,
            comparison: COMPARISON.into(),
            calls,
        })
    }

    /// Whether the sample is loaded, and whether to offer it (nothing of the user's own yet).
    pub async fn demo_state(&self) -> Result<DemoState, Error> {
        let loaded = !storage::samples(&mut self.store.read().await?)
            .await?
            .is_empty();
        let empty = self.prompts().await?.is_empty() && self.datasets().await?.is_empty();
        Ok(DemoState {
            loaded,
            offer: !loaded && empty,
        })
    }

    /// Takes the sample project away: every row it created, and nothing else.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn demo_remove(&self) -> Result<(), Error> {
        let samples = storage::samples(&mut self.store.read().await?).await?;
        if samples.is_empty() {
            return Err(Error::invalid("sample", "no sample project is loaded"));
        }
        let ids = |kind: &str| -> Vec<i64> {
            samples
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, id)| *id)
                .collect()
        };
        let mut tx = self.store.write().await?;
        self.log.rollups_rewritten();
        for id in ids("comparison") {
            crate::compare::storage::delete_comparison(&mut tx, id).await?;
        }
        for id in ids("run") {
            crate::runs::storage::delete_run(&mut tx, id).await?;
        }
        for id in ids("dataset") {
            crate::datasets::storage::delete_dataset(&mut tx, id).await?;
        }
        for id in ids("prompt") {
            crate::prompts::storage::delete_prompt(&mut tx, id).await?;
        }
        for id in ids("endpoint") {
            crate::calllog::storage::delete_calls_of(&mut tx, id).await?;
            crate::endpoints::storage::delete_endpoint(&mut tx, id).await?;
        }
        for id in ids("activity") {
            crate::activity::storage::delete(&mut tx, id).await?;
        }
        crate::calllog::storage::rebuild_in(&mut tx, i64::MIN / 2).await?;
        storage::clear(&mut tx).await?;
        db::commit(tx).await.map_err(|e| match e {
            crate::StoreError::Sql(sqlx::Error::Database(d))
                if d.is_foreign_key_violation() || d.message().contains("FOREIGN KEY") =>
            {
                Error::invalid(
                    "sample",
                    "something of your own uses the sample (a run or comparison over its prompt or dataset): remove it first",
                )
            }
            e => e.into(),
        })?;
        Ok(())
    }

    async fn mark(&self, kind: &str, id: i64) -> Result<(), Error> {
        Ok(storage::mark(&mut self.store.read().await?, kind, id).await?)
    }

    /// Two raters' blind votes and a judge's, both orders of each pair: mostly for the
    /// candidate, as its scores say.
    async fn sample_votes(&self) -> Result<(), Error> {
        use milc_api::compare::{Ballot, Verdict};
        let info = self.comparison(COMPARISON).await?;
        for (r, rater) in ["sample rater Ana", "sample rater Ben"].iter().enumerate() {
            for index in 0..info.items.min(20) {
                let task = self.rating_task(COMPARISON, rater, index).await?;
                // The shorter answer is the candidate's: prefer it 4 times in 5.
                let left_shorter = task.left.len() <= task.right.len();
                let agree = !(index + r as u64).is_multiple_of(5);
                let verdict = match (left_shorter, agree) {
                    (true, true) | (false, false) => Verdict::Left,
                    _ => Verdict::Right,
                };
                self.cast_vote(
                    COMPARISON,
                    rater,
                    index,
                    &Ballot {
                        verdict,
                        comment: None,
                        criteria: Default::default(),
                    },
                )
                .await?;
            }
        }
        let mut tx = self.store.write().await?;
        for item in 0..info.items.min(20) {
            let candidate_wins = item % 5 != 4;
            for (left, right) in [(0, 1), (1, 0)] {
                let verdict = match (candidate_wins, left == 1) {
                    (true, true) | (false, false) => Verdict::Left,
                    _ => Verdict::Right,
                };
                crate::compare::storage::upsert_vote(
                    &mut tx,
                    info.id,
                    (item, left, right),
                    verdict,
                    ("judge:sample-rubric", "judge"),
                    Some("sample judge vote"),
                    None,
                )
                .await?;
            }
        }
        db::commit(tx).await?;
        Ok(())
    }

    /// A week of back-dated calls on the sample endpoint from every source, costed with its
    /// prices, and a daily budget today's spend has crossed (one alert).
    async fn sample_usage(&self, endpoint_id: i64) -> Result<u64, Error> {
        let ep =
            crate::endpoints::storage::endpoint(&mut self.store.read().await?, endpoint_id).await?;
        let now = now_ms();
        let hour = 3_600_000;
        let mut rng = milc_eval::stats::SplitMix64(42);
        let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let sources = [
            CallSource::Playground,
            CallSource::Cli,
            CallSource::Run,
            CallSource::Gateway,
        ];
        let mut calls = Vec::new();
        for h in 0..(7 * 24) {
            // Office hours are busier.
            let at_hour = now - (7 * 24 - h) * hour;
            let busy = ((at_hour / hour) % 24 + 24) % 24;
            let n = if (8..19).contains(&busy) { 30 } else { 6 };
            for _ in 0..n {
                let failed = unit() < 0.03;
                let prompt_tokens = 180 + (unit() * 300.0) as u64;
                let completion_tokens = if failed {
                    0
                } else {
                    20 + (unit() * 60.0) as u64
                };
                let usage = (!failed).then_some(Usage {
                    prompt_tokens,
                    cached_tokens: 0,
                    completion_tokens,
                    reasoning_tokens: 0,
                    source: UsageSource::Reported,
                });
                let latency = (350.0 * (1.0 + 2.0 * unit() * unit())) as u64;
                calls.push(milc_api::Call {
                    at_ms: at_hour + (unit() * hour as f64) as i64,
                    endpoint_id: Some(endpoint_id),
                    model: ep.spec.model.clone(),
                    source: sources[(unit() * 4.0) as usize % 4],
                    outcome: if failed { Outcome::Error } else { Outcome::Ok },
                    http_status: Some(if failed { 503 } else { 200 }),
                    error_kind: failed.then_some(milc_api::ErrorKind::Server),
                    latency_ms: latency,
                    ttft_ms: (!failed).then_some(latency / 3),
                    usage,
                    cost: usage.map(|u| ep.spec.prices.cost(&u)),
                    prompt: None,
                    price_id: None,
                });
            }
        }
        let n = calls.len() as u64;
        let spent_today: i64 = calls
            .iter()
            .filter(|c| c.at_ms >= now.div_euclid(24 * hour) * 24 * hour)
            .filter_map(|c| c.cost.map(|k| k.pico_usd))
            .sum();
        // Written past the exporter's tap: a made-up week of traffic never leaves the machine.
        for chunk in calls.chunks(512) {
            let logged = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|c| self.log.write(crate::calllog::Row::Call(c.clone(), None))),
            )
            .await;
            for r in logged {
                r?;
            }
        }
        // A daily budget a little under what today's traffic spent: the alert a team lead sees.
        let budget = milc_api::Cost {
            pico_usd: (spent_today * 4 / 5).max(1),
            source: UsageSource::Reported,
        };
        self.set_budget(Some(ENDPOINT), Some(&budget.usd()), None)
            .await?;
        self.flush_alerts().await;
        Ok(n)
    }
}
