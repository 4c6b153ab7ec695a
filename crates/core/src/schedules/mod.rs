//! Scheduled evaluations: a card's dataset and chosen candidate (or a run spec of its own)
//! evaluated every so often. `run_due` runs what is due (claimed, so two processes never run
//! one schedule twice), attaches each run to its card, then checks the drift watches: the one
//! call a cron job or a systemd timer makes.

pub mod storage;

use milc_api::lifecycle::{DueReport, NewSchedule, Schedule, ScheduledRun};
use milc_api::run::{default_concurrency, RunProgress, RunSpec, ScorerSpec};
use tokio_util::sync::CancellationToken;

use crate::db::{self, now_ms};
use crate::{endpoints, Console, Error};

impl Console {
    /// Adds a schedule, first due at once.
    pub async fn add_schedule(&self, new: NewSchedule) -> Result<Schedule, Error> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(Error::invalid("name", "a schedule needs a name"));
        }
        if new.every_ms < 60_000 {
            return Err(Error::invalid("every", "at least one minute"));
        }
        let (spec, usecase_id) = match (&new.usecase, new.spec) {
            (Some(card), None) => (
                self.card_run_spec(card).await?,
                Some(self.usecase(card).await?.id),
            ),
            (None, Some(spec)) => (spec, None),
            _ => {
                return Err(Error::invalid(
                    "schedule",
                    "name either a use case or a run spec (prompt, endpoint, dataset)",
                ))
            }
        };
        // The run it will start must be one that can be created now, on an endpoint in service.
        parse_check(&spec)?;
        self.check_in_service(&spec.endpoint).await?;
        let version = self.resolve_prompt(&spec.prompt).await?;
        let mut c = self.store.read().await?;
        let ep = endpoints::storage::endpoint_by_name(&mut c, &spec.endpoint).await?;
        let refs = storage::Refs {
            usecase_id,
            endpoint_id: ep.id,
            prompt_version_id: db::prompt_version_id(&mut c, &version.prompt, version.version)
                .await?,
        };
        let now = now_ms();
        storage::insert(&mut c, name, &refs, &spec, new.every_ms, now, now).await?;
        let added = storage::list(&mut c)
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| db::StoreError::NoSuchSchedule(name.to_owned()))?;
        drop(c);
        self.noted("schedule.add", name).await?;
        Ok(added)
    }

    pub async fn schedules(&self) -> Result<Vec<Schedule>, Error> {
        Ok(storage::list(&mut self.store.read().await?).await?)
    }

    pub async fn remove_schedule(&self, name: &str) -> Result<(), Error> {
        storage::remove(&mut self.store.read().await?, name).await?;
        self.noted("schedule.remove", name).await
    }

    /// The run a card's schedule starts: its chosen candidate on the dataset of its score SLO,
    /// with that scorer.
    async fn card_run_spec(&self, card: &str) -> Result<RunSpec, Error> {
        let u = self.usecase(card).await?;
        let chosen = u.chosen().ok_or_else(|| {
            Error::invalid(
                "usecase",
                format!("'{card}' has no chosen candidate to evaluate"),
            )
        })?;
        let score = u.spec.slo.min_score.as_ref().ok_or_else(|| {
            Error::invalid(
                "usecase",
                format!("'{card}' sets no minimum score, so there is nothing to evaluate"),
            )
        })?;
        Ok(RunSpec {
            prompt: chosen.prompt.clone(),
            endpoint: chosen.endpoint.clone(),
            dataset: score.dataset.clone(),
            params: chosen.params.clone(),
            repeat: 1,
            concurrency: default_concurrency(),
            scorers: vec![
                ScorerSpec::parse(&score.scorer).map_err(|e| Error::invalid("min score", e))?
            ],
            stem: false,
        })
    }

    /// Runs every schedule due at `now`, one after another, then checks the drift watches.
    /// A schedule that cannot run (a retired endpoint, a card with no chosen candidate) is
    /// reported and skipped until its next time; the others still run.
    pub async fn run_due(
        &self,
        on_progress: &(dyn Fn(&str, &RunProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<DueReport, Error> {
        let now = now_ms();
        let due = storage::due(&mut self.store.read().await?, now).await?;
        let mut runs = Vec::new();
        for s in due {
            if cancel.is_cancelled() {
                break;
            }
            let next = now + s.every_ms;
            if !storage::claim(&mut self.store.read().await?, &s, next).await? {
                continue;
            }
            let outcome = self.run_schedule(&s, on_progress, cancel).await;
            runs.push(match outcome {
                Ok(summary) => ScheduledRun {
                    schedule: s.name.clone(),
                    run: Some(summary),
                    error: None,
                },
                Err(e) => ScheduledRun {
                    schedule: s.name.clone(),
                    run: None,
                    error: Some(e.to_string()),
                },
            });
        }
        let (drift, alerts) = self.check_drift().await?;
        Ok(DueReport {
            runs,
            drift,
            alerts,
        })
    }

    async fn run_schedule(
        &self,
        s: &Schedule,
        on_progress: &(dyn Fn(&str, &RunProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<milc_api::run::RunSummary, Error> {
        let spec = match &s.usecase {
            Some(card) => self.card_run_spec(card).await?,
            None => s.spec.clone(),
        };
        let run = self.create_run(spec).await?;
        storage::record_run(&mut self.store.read().await?, s.id, run.id, now_ms()).await?;
        let summary = self
            .execute_run(run.id, &|p| on_progress(&s.name, p), cancel)
            .await?;
        if let Some(card) = &s.usecase {
            self.attach_run(card, run.id).await?;
        }
        Ok(summary)
    }
}

fn parse_check(spec: &RunSpec) -> Result<(), Error> {
    crate::runs::parse_scorers(spec).map(|_| ())
}
