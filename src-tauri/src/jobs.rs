//! The cancellable work the window has started (chats, runs, comparison runs, judge runs), by
//! key, so that a cancel command can reach the job its window started.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

/// What a job is, as its cancel command names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobKey {
    /// A Playground chat, by the id the window gave it.
    Chat(String),
    Run(i64),
    /// A comparison's variant runs, by comparison name.
    Comparison(String),
    /// An LLM judge voting on a comparison, by comparison name.
    Judge(String),
    /// The load test running (one at a time).
    Loadtest,
}

#[derive(Default)]
pub struct Jobs {
    running: Mutex<Running>,
}

#[derive(Default)]
struct Running {
    /// Each job's token and its start number, so a job that ends unregisters only itself.
    jobs: HashMap<JobKey, (u64, CancellationToken)>,
    started: u64,
}

impl Jobs {
    /// Registers a job: its token ends the work when cancelled; dropping the returned guard
    /// unregisters it. A second job under a running job's key takes the key over.
    pub fn start(&self, key: JobKey) -> Job<'_> {
        let token = CancellationToken::new();
        let mut running = self.running();
        running.started += 1;
        let serial = running.started;
        running.jobs.insert(key.clone(), (serial, token.clone()));
        Job {
            jobs: self,
            key,
            serial,
            token,
        }
    }

    /// Cancels the job running under `key`, if any.
    pub fn cancel(&self, key: &JobKey) {
        if let Some((_, token)) = self.running().jobs.get(key) {
            token.cancel();
        }
    }

    fn running(&self) -> MutexGuard<'_, Running> {
        // Every update leaves the map whole, so a panic elsewhere cannot leave it half-written.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registered job; unregisters it when dropped.
pub struct Job<'a> {
    jobs: &'a Jobs,
    key: JobKey,
    serial: u64,
    token: CancellationToken,
}

impl Job<'_> {
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        let mut running = self.jobs.running();
        if running.jobs.get(&self.key).map(|(s, _)| *s) == Some(self.serial) {
            running.jobs.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reaches_the_job_under_its_key_only() {
        let jobs = Jobs::default();
        let run = jobs.start(JobKey::Run(1));
        let judge = jobs.start(JobKey::Judge("c".into()));
        jobs.cancel(&JobKey::Run(1));
        jobs.cancel(&JobKey::Comparison("c".into()));
        assert!(run.token().is_cancelled());
        assert!(!judge.token().is_cancelled());
    }

    #[test]
    fn a_finished_job_can_no_longer_be_cancelled() {
        let jobs = Jobs::default();
        let token = {
            let chat = jobs.start(JobKey::Chat("a".into()));
            chat.token().clone()
        };
        jobs.cancel(&JobKey::Chat("a".into()));
        assert!(!token.is_cancelled());
        assert!(jobs.running().jobs.is_empty());
    }

    #[test]
    fn an_earlier_job_ending_leaves_a_later_one_under_the_same_key() {
        let jobs = Jobs::default();
        let first = jobs.start(JobKey::Run(7));
        let second = jobs.start(JobKey::Run(7));
        drop(first);
        jobs.cancel(&JobKey::Run(7));
        assert!(second.token().is_cancelled());
    }
}
