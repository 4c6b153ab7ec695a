//! Requirements cards: a use case's SLOs and expected traffic, its candidates (prompt version ×
//! endpoint × parameters), the runs and load tests attached to it, and each candidate's verdict
//! per SLO with the evidence it rests on.

pub mod storage;

use milc_api::lifecycle::{
    Candidate, CandidateSpec, Evidence, LoadTest, LoadTestProgress, LoadTestSpec, LoadTestStatus,
    ScoreSlo, SloCheck, UseCase, UseCaseSpec, Verdict,
};
use milc_api::prompt::PromptPin;
use milc_api::run::{RunStatus, RunSummary, ScorerSpec};
use milc_api::{Cost, UsageSource};

use tokio_util::sync::CancellationToken;

use crate::db::{self, now_ms};
use crate::{endpoints, Console, Error};

/// How far back a candidate's live calls count, and how many it needs to count at all.
pub const LIVE_WINDOW_MS: i64 = 7 * 24 * 3_600_000;
pub const LIVE_MIN_CALLS: usize = 20;

/// The figures one piece of evidence offers (None: it does not measure that).
#[derive(Default)]
struct Figures {
    p95_latency_ms: Option<f64>,
    p95_ttft_ms: Option<f64>,
    cost_per_1k: Option<Cost>,
    error_rate: Option<f64>,
}

impl Console {
    /// Writes a use case down. Its SLOs are checked: positive targets, an error rate from 0 to
    /// 1, a score on a dataset that exists with a scorer as typed.
    #[tracing::instrument(skip_all, fields(usecase = %spec.name), err(level = "info"))]
    pub async fn create_usecase(&self, spec: UseCaseSpec) -> Result<UseCase, Error> {
        let spec = self.check_usecase_spec(spec).await?;
        storage::insert(&mut self.store.read().await?, &spec, now_ms()).await?;
        self.noted("usecase.create", &spec.name).await?;
        self.usecase(&spec.name).await
    }

    /// Replaces a use case's spec (its name may change); candidates and evidence stay.
    pub async fn update_usecase(&self, name: &str, spec: UseCaseSpec) -> Result<UseCase, Error> {
        let spec = self.check_usecase_spec(spec).await?;
        let mut c = self.store.read().await?;
        let row = storage::by_name(&mut c, name).await?;
        storage::update(&mut c, row.id, &spec, now_ms()).await?;
        drop(c);
        self.noted("usecase.edit", &spec.name).await?;
        self.usecase(&spec.name).await
    }

    pub async fn delete_usecase(&self, name: &str) -> Result<(), Error> {
        let mut c = self.store.read().await?;
        let row = storage::by_name(&mut c, name).await?;
        storage::delete(&mut c, row.id).await?;
        drop(c);
        self.noted("usecase.remove", name).await
    }

    async fn check_usecase_spec(&self, mut spec: UseCaseSpec) -> Result<UseCaseSpec, Error> {
        spec.name = spec.name.trim().to_owned();
        spec.owner = spec.owner.trim().to_owned();
        if spec.name.is_empty() {
            return Err(Error::invalid("name", "a use case needs a name"));
        }
        if spec.owner.is_empty() {
            return Err(Error::invalid("owner", "a use case needs an owner"));
        }
        let slo = &spec.slo;
        for (field, v) in [
            ("p95 latency", slo.p95_latency_ms),
            ("p95 TTFT", slo.p95_ttft_ms),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(field, "must be more than 0 ms"));
            }
        }
        if slo.cost_per_1k_pico.is_some_and(|c| c < 0) {
            return Err(Error::invalid("cost per 1k requests", "cannot be negative"));
        }
        if let Some(r) = slo.max_error_rate {
            if !(0.0..=1.0).contains(&r) {
                return Err(Error::invalid(
                    "max error rate",
                    format!("{r} is not a share from 0 to 1 (1 % is 0.01)"),
                ));
            }
        }
        if let Some(s) = &slo.min_score {
            ScorerSpec::parse(&s.scorer).map_err(|e| Error::invalid("min score", e))?;
            let name = dataset_name(&s.dataset);
            if !self.datasets().await?.iter().any(|d| d.dataset == name) {
                return Err(db::StoreError::NoSuchDataset(name.to_owned()).into());
            }
        }
        let t = &spec.traffic;
        if !(t.requests_per_minute.is_finite() && t.requests_per_minute >= 0.0) {
            return Err(Error::invalid(
                "requests per minute",
                "must be a number of 0 or more",
            ));
        }
        Ok(spec)
    }

    /// Every use case with its candidates' verdicts, by name.
    pub async fn usecases(&self) -> Result<Vec<UseCase>, Error> {
        let names = storage::names(&mut self.store.read().await?).await?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.usecase(&n).await?);
        }
        Ok(out)
    }

    /// A card: the use case, each candidate checked against every SLO, what is attached.
    pub async fn usecase(&self, name: &str) -> Result<UseCase, Error> {
        let mut c = self.store.read().await?;
        let row = storage::by_name(&mut c, name).await?;
        let rows = storage::candidates(&mut c, row.id).await?;
        let attached = storage::attached(&mut c, row.id).await?;
        drop(c);
        let spec = row.spec_json.0;
        let mut runs = Vec::new();
        let mut loadtests = Vec::new();
        for a in &attached {
            match a.kind.as_str() {
                "run" => runs.push(self.run_summary(a.id).await?),
                _ => loadtests.push(self.loadtest_info(a.id).await?),
            }
        }
        // Newest evidence first: it is what a candidate is judged on.
        runs.sort_by_key(|r| std::cmp::Reverse(r.run.id));
        loadtests.sort_by_key(|l| std::cmp::Reverse(l.id));
        let mut candidates = Vec::with_capacity(rows.len());
        for k in rows {
            candidates.push(self.judge_candidate(&spec, k, &runs, &loadtests).await?);
        }
        Ok(UseCase {
            id: row.id,
            spec,
            candidates,
            attached,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        })
    }

    /// Adds a candidate to a card, its prompt pinned to the version the reference names now;
    /// `choose` makes it the one `usecases check` gates on.
    pub async fn add_candidate(
        &self,
        card: &str,
        cand: CandidateSpec,
        choose: bool,
    ) -> Result<UseCase, Error> {
        let version = self.resolve_prompt(&cand.prompt).await?;
        cand.params
            .check()
            .map_err(|(field, allowed)| Error::invalid(field, allowed))?;
        let mut tx = self.store.write().await?;
        let ep = endpoints::storage::endpoint_by_name(&mut tx, &cand.endpoint).await?;
        let pv = db::prompt_version_id(&mut tx, &version.prompt, version.version)
            .await?
            .ok_or_else(|| Error::invalid("prompt", format!("no version {}", cand.prompt)))?;
        let row = storage::by_name(&mut tx, card).await?;
        let id = storage::add_candidate(&mut tx, row.id, pv, ep.id, &cand.params, now_ms()).await?;
        if choose {
            storage::choose(&mut tx, row.id, id).await?;
        }
        db::commit(tx).await?;
        self.noted("usecase.candidate", &format!("{card} #{id}"))
            .await?;
        self.usecase(card).await
    }

    /// Makes candidate `id` the card's chosen one.
    pub async fn choose_candidate(&self, card: &str, id: i64) -> Result<UseCase, Error> {
        let mut tx = self.store.write().await?;
        let row = storage::by_name(&mut tx, card).await?;
        if !storage::choose(&mut tx, row.id, id).await? {
            return Err(Error::invalid(
                "candidate",
                format!("'{card}' has no candidate #{id}"),
            ));
        }
        db::commit(tx).await?;
        self.noted("usecase.choose", &format!("{card} #{id}"))
            .await?;
        self.usecase(card).await
    }

    pub async fn remove_candidate(&self, card: &str, id: i64) -> Result<UseCase, Error> {
        let mut c = self.store.read().await?;
        let row = storage::by_name(&mut c, card).await?;
        if !storage::remove_candidate(&mut c, row.id, id).await? {
            return Err(Error::invalid(
                "candidate",
                format!("'{card}' has no candidate #{id}"),
            ));
        }
        drop(c);
        self.noted("usecase.drop", &format!("{card} #{id}")).await?;
        self.usecase(card).await
    }

    /// Attaches run `id` to a card: its figures become evidence for the candidate it ran.
    pub async fn attach_run(&self, card: &str, id: i64) -> Result<UseCase, Error> {
        self.run_summary(id).await?;
        let mut c = self.store.read().await?;
        let row = storage::by_name(&mut c, card).await?;
        storage::attach(&mut c, row.id, "run", id, now_ms()).await?;
        drop(c);
        self.noted("usecase.attach", &format!("{card} run #{id}"))
            .await?;
        self.usecase(card).await
    }

    /// Runs a load test (see `run_loadtest`). When its spec names a card, the cost is projected
    /// at the card's expected traffic, a prompt whose variables are not given gets them from the
    /// first item of the card's dataset (so the test sends what the use case sends), and the
    /// finished test is attached to the card.
    #[tracing::instrument(skip_all, fields(endpoint = %spec.endpoint), err(level = "info"))]
    pub async fn loadtest(
        &self,
        mut spec: LoadTestSpec,
        on_progress: &(dyn Fn(&LoadTestProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<LoadTest, Error> {
        let Some(card) = spec.usecase.clone() else {
            return self.run_loadtest(spec, None, on_progress, cancel).await;
        };
        let card_spec = self.usecase(&card).await?.spec;
        if let (Some(prompt), Some(score)) = (&spec.prompt, &card_spec.slo.min_score) {
            let v = self.resolve_prompt(prompt).await?;
            if spec.variables.is_empty() && !v.content.variables().is_empty() {
                let (_, items) = self.dataset_items(&score.dataset, 0, 1).await?;
                spec.variables = items.into_iter().next().map(|i| i.vars).unwrap_or_default();
            }
        }
        let test = self
            .run_loadtest(spec, Some(card_spec.traffic), on_progress, cancel)
            .await?;
        self.attach_loadtest(&card, test.id).await?;
        self.loadtest_info(test.id).await
    }

    /// Attaches load test `id` to a card.
    pub async fn attach_loadtest(&self, card: &str, id: i64) -> Result<UseCase, Error> {
        let mut c = self.store.read().await?;
        if !storage::loadtest_exists(&mut c, id).await? {
            return Err(db::StoreError::NoSuchLoadTest(id).into());
        }
        let row = storage::by_name(&mut c, card).await?;
        storage::attach(&mut c, row.id, "loadtest", id, now_ms()).await?;
        drop(c);
        self.noted("usecase.attach", &format!("{card} load test #{id}"))
            .await?;
        self.usecase(card).await
    }

    /// Checks one candidate against every SLO the card sets.
    async fn judge_candidate(
        &self,
        spec: &UseCaseSpec,
        k: storage::CandidateRow,
        runs: &[RunSummary],
        loadtests: &[LoadTest],
    ) -> Result<Candidate, Error> {
        let pin = PromptPin {
            prompt: k.prompt.clone(),
            version: k.version as u32,
        };
        let params = k.params_json.0;
        // Runs of exactly this candidate, newest first.
        let runs: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| {
                r.run.prompt == pin
                    && r.run.spec.endpoint == k.endpoint
                    && r.run.spec.params == params
            })
            .collect();
        // Load tests on this endpoint with this prompt version, or with none.
        let loads: Vec<&LoadTest> = loadtests
            .iter()
            .filter(|l| {
                l.spec.endpoint == k.endpoint
                    && l.status != LoadTestStatus::Running
                    && !l.levels.is_empty()
                    && l.prompt_version
                        .as_deref()
                        .is_none_or(|p| p == pin.to_string())
            })
            .collect();
        let live_since = now_ms() - LIVE_WINDOW_MS;
        let live = storage::live_calls(
            &mut self.store.read().await?,
            k.endpoint_id,
            k.prompt_version_id,
            live_since,
        )
        .await?;

        // Evidence in the order it is trusted: live traffic, then the newest run or load test.
        let mut sources: Vec<(Evidence, Figures)> = Vec::new();
        if live.len() >= LIVE_MIN_CALLS {
            sources.push((
                Evidence::Live {
                    since_ms: live_since,
                    until_ms: now_ms(),
                    calls: live.len() as u64,
                },
                live_figures(&live),
            ));
        }
        let mut dated: Vec<(i64, Evidence, Figures)> = runs
            .iter()
            .filter(|r| r.items > 0)
            .map(|r| {
                (
                    r.run.finished_ms.unwrap_or(r.run.created_ms),
                    Evidence::Run { id: r.run.id },
                    run_figures(r),
                )
            })
            .collect();
        if let Some(l) = loads.first() {
            let level = pick_level(l, spec.traffic.requests_per_minute);
            let f = &l.levels[level];
            dated.push((
                l.finished_ms.unwrap_or(l.created_ms),
                Evidence::Loadtest {
                    id: l.id,
                    concurrency: f.concurrency,
                },
                Figures {
                    p95_latency_ms: (f.requests > f.errors).then_some(f.latency_ms.p95),
                    p95_ttft_ms: (f.requests > f.errors).then_some(f.ttft_ms.p95),
                    cost_per_1k: (f.requests > 0).then_some(f.cost_per_1k),
                    error_rate: (f.requests > 0).then_some(f.error_rate),
                },
            ));
        }
        dated.sort_by_key(|(at, ..)| std::cmp::Reverse(*at));
        sources.extend(dated.into_iter().map(|(_, e, f)| (e, f)));
        let first = |get: &dyn Fn(&Figures) -> Option<f64>| {
            sources
                .iter()
                .find_map(|(e, f)| get(f).map(|v| (v, e.clone())))
        };

        let slo = &spec.slo;
        let mut checks = Vec::new();
        let ms = |v: f64| format!("{v:.0} ms");
        if let Some(t) = slo.p95_latency_ms {
            let m = first(&|f| f.p95_latency_ms);
            checks.push(at_most(
                "p95 latency",
                format!("<= {t} ms"),
                t as f64,
                m,
                ms,
            ));
        }
        if let Some(t) = slo.p95_ttft_ms {
            let m = first(&|f| f.p95_ttft_ms);
            checks.push(at_most("p95 TTFT", format!("<= {t} ms"), t as f64, m, ms));
        }
        if let Some(t) = slo.cost_per_1k_pico {
            let m = sources
                .iter()
                .find_map(|(e, f)| f.cost_per_1k.map(|c| (c, e.clone())));
            let target = Cost {
                pico_usd: t,
                source: UsageSource::Reported,
            };
            checks.push(SloCheck {
                slo: "cost per 1k requests".into(),
                target: format!("<= ${}", target.usd()),
                value: m.as_ref().map(|(c, _)| c.to_string()),
                verdict: m.as_ref().map_or(Verdict::Unknown, |(c, _)| {
                    if c.pico_usd <= t {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    }
                }),
                evidence: m.map(|(_, e)| e),
            });
        }
        if let Some(s) = &slo.min_score {
            checks.push(score_check(s, &runs));
        }
        if let Some(t) = slo.max_error_rate {
            let m = first(&|f| f.error_rate);
            let pct = |v: f64| format!("{:.2} %", v * 100.0);
            checks.push(at_most("error rate", format!("<= {}", pct(t)), t, m, pct));
        }
        if slo.pii_redaction {
            let version = self.resolve_prompt(&pin.to_string()).await?;
            let ep = self.endpoint(&k.endpoint).await?;
            let policy = version.content.redaction.unwrap_or(ep.spec.redaction);
            let mode = policy.mode.as_str().to_owned();
            checks.push(SloCheck {
                slo: "PII redaction".into(),
                target: "before sending".into(),
                value: Some(mode.clone()),
                verdict: if policy.mode.sending() {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                evidence: Some(Evidence::Policy { policy: mode }),
            });
        }
        let verdict = checks
            .iter()
            .map(|c| c.verdict)
            .max_by_key(|v| match v {
                Verdict::Pass => 0,
                Verdict::Unknown => 1,
                Verdict::Fail => 2,
            })
            .unwrap_or(Verdict::Unknown);
        Ok(Candidate {
            id: k.id,
            prompt: pin.to_string(),
            endpoint: k.endpoint,
            params,
            chosen: k.chosen,
            checks,
            verdict,
        })
    }
}

/// The dataset a reference names: `tickets` of `tickets@3f2a`.
fn dataset_name(r: &str) -> &str {
    r.split_once('@').map_or(r, |(n, _)| n)
}

/// An SLO met when the measured value is at most the target.
fn at_most(
    slo: &str,
    target: String,
    limit: f64,
    measured: Option<(f64, Evidence)>,
    show: impl Fn(f64) -> String,
) -> SloCheck {
    SloCheck {
        slo: slo.to_owned(),
        target,
        value: measured.as_ref().map(|(v, _)| show(*v)),
        verdict: match &measured {
            None => Verdict::Unknown,
            Some((v, _)) if *v <= limit => Verdict::Pass,
            Some(_) => Verdict::Fail,
        },
        evidence: measured.map(|(_, e)| e),
    }
}

/// The minimum score, judged on the newest finished run of this candidate on the named dataset
/// (a version prefix, if given, must match the run's pinned dataset version) with that scorer.
fn score_check(s: &ScoreSlo, runs: &[&RunSummary]) -> SloCheck {
    let metric = ScorerSpec::parse(&s.scorer)
        .map(|x| x.metric)
        .unwrap_or_else(|_| s.scorer.clone());
    let (name, version) = match s.dataset.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (s.dataset.as_str(), None),
    };
    let found = runs.iter().find_map(|r| {
        let on_dataset = dataset_name(&r.run.spec.dataset) == name
            && version.is_none_or(|v| r.run.dataset_hash.starts_with(v));
        let finished = r.run.status == RunStatus::Finished;
        (on_dataset && finished)
            .then(|| r.scores.get(&metric).map(|i| (i.mean, r.run.id)))
            .flatten()
    });
    SloCheck {
        slo: format!("score {metric}"),
        target: format!(">= {} on {}", s.min, s.dataset),
        value: found.map(|(v, _)| format!("{v:.4}")),
        verdict: match found {
            None => Verdict::Unknown,
            Some((v, _)) if v >= s.min => Verdict::Pass,
            Some(_) => Verdict::Fail,
        },
        evidence: found.map(|(_, id)| Evidence::Run { id }),
    }
}

fn run_figures(r: &RunSummary) -> Figures {
    let answered = r.items > r.errors;
    Figures {
        p95_latency_ms: answered.then_some(r.latency_ms.p95),
        p95_ttft_ms: (answered && r.ttft_ms.p95 > 0.0).then_some(r.ttft_ms.p95),
        cost_per_1k: Some(Cost {
            pico_usd: (i128::from(r.cost.pico_usd) * 1000 / i128::from(r.items.max(1))) as i64,
            source: r.cost.source,
        }),
        error_rate: Some(r.errors as f64 / r.items as f64),
    }
}

fn live_figures(calls: &[storage::LiveCall]) -> Figures {
    let ok: Vec<&storage::LiveCall> = calls.iter().filter(|c| !c.failed).collect();
    let p95 = |v: Vec<f64>| (!v.is_empty()).then(|| crate::runs::percentiles(v).p95);
    let pico: i64 = calls.iter().filter_map(|c| c.cost_pico_usd).sum();
    let estimated = calls.iter().any(|c| c.usage_reported == Some(false));
    Figures {
        p95_latency_ms: p95(ok.iter().map(|c| c.latency_ms as f64).collect()),
        p95_ttft_ms: p95(ok
            .iter()
            .filter_map(|c| c.ttft_ms)
            .map(|t| t as f64)
            .collect()),
        cost_per_1k: Some(Cost {
            pico_usd: (i128::from(pico) * 1000 / calls.len().max(1) as i128) as i64,
            source: if estimated {
                UsageSource::Estimated
            } else {
                UsageSource::Reported
            },
        }),
        error_rate: Some((calls.len() - ok.len()) as f64 / calls.len() as f64),
    }
}

/// The level of a load test that stands for the card's traffic: by Little's law the callers in
/// flight are the arrival rate × the time each takes (the lowest level's median latency), so
/// the lowest level at or above that; the highest level when none reaches it; the lowest when
/// the card expects no traffic.
fn pick_level(l: &LoadTest, requests_per_minute: f64) -> usize {
    let first = &l.levels[0];
    let needed = (requests_per_minute / 60.0 * first.latency_ms.p50 / 1000.0).ceil() as u32;
    l.levels
        .iter()
        .position(|x| x.concurrency >= needed.max(1))
        .unwrap_or(l.levels.len() - 1)
}
