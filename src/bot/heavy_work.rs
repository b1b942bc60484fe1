//! Bounds on the CPU-heavy work a server's curators can start: reading an imported file and
//! embedding an import's insights.
//!
//! Any server owner is a curator, so this work is hostile until bounded. [`HeavyWork::run`] runs
//! it on tokio's blocking pool, never on the runtime's worker threads (which answer every
//! server's interactions and keep the gateway's heartbeats), and bounds it three ways:
//! - **one job at a time per server**: a second import while the first is read or embedded is
//!   told to wait, so one server cannot queue up work;
//! - **[`HeavyWork::new`]'s `at_once` jobs across servers**: the rest wait their turn (within
//!   their time limit), so the machine's cores stay shared with everyone's questions;
//! - **a time limit** per job. Work on the blocking pool cannot be stopped from outside; a job
//!   past its limit is answered as timed out and keeps its server's slot and its permit until it
//!   really ends, so that timing out never lets more work pile up. What it then returns is
//!   dropped. The jobs themselves are linear in their bounded input (1 MiB, 1,000 insights), so
//!   the limit is a backstop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::one_at_a_time::OneAtATime;

/// Why a job did not run, or did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This server already has a job running.
    ServerBusy,
    /// The job (or its wait for a turn) took longer than its limit.
    TimedOut,
}

impl Refused {
    /// What the member is told, for `what` ("checking a file", "importing").
    pub fn message(self, what: &str) -> String {
        match self {
            Refused::ServerBusy => format!(
                "This server already has an import being read or saved. Wait for it to finish, then try {what} again."
            ),
            Refused::TimedOut => format!(
                "That took too long, so I stopped {what}; nothing was changed. Split the file into smaller ones and try again."
            ),
        }
    }
}

/// See the module documentation.
pub struct HeavyWork {
    /// One job per server (the same rule as `/insights gaps`' listings, a set of its own).
    turns: OneAtATime,
    permits: Arc<Semaphore>,
}

impl HeavyWork {
    /// At most `at_once` jobs run at a time across servers.
    pub fn new(at_once: usize) -> HeavyWork {
        HeavyWork {
            turns: OneAtATime::default(),
            permits: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    /// Runs `job` for `guild` on the blocking pool within `limit` (the wait for a turn
    /// included), or refuses it (see the module documentation).
    pub async fn run<T: Send + 'static>(
        &self,
        guild: u64,
        limit: Duration,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let slot = self.turns.try_start(guild).ok_or(Refused::ServerBusy)?;
        let work = async {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            // The slot and the permit go with the job, so they are held until it really ends.
            tokio::task::spawn_blocking(move || {
                let done = job();
                drop((permit, slot));
                done
            })
            .await
        };
        match tokio::time::timeout(limit, work).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(panicked)) => std::panic::resume_unwind(panicked.into_panic()),
            Err(_) => Err(Refused::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn one_job_per_server_and_others_run_beside_it() {
        let work = Arc::new(HeavyWork::new(2));
        let (started, running) = mpsc::channel::<()>();
        let (release, wait) = mpsc::channel::<()>();
        let first = {
            let work = Arc::clone(&work);
            tokio::spawn(async move {
                let job = move || {
                    started.send(()).unwrap();
                    wait.recv().is_ok()
                };
                work.run(1, Duration::from_secs(30), job).await
            })
        };
        tokio::task::spawn_blocking(move || running.recv().unwrap())
            .await
            .unwrap();
        let again = work.run(1, Duration::from_secs(30), || 0).await;
        assert_eq!(again, Err(Refused::ServerBusy));
        assert_eq!(work.run(2, Duration::from_secs(30), || 7).await, Ok(7));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        // Free again once the job ended.
        assert_eq!(work.run(1, Duration::from_secs(30), || 1).await, Ok(1));
    }

    #[tokio::test]
    async fn a_job_past_its_limit_is_timed_out_and_keeps_its_slot_until_it_ends() {
        let work = HeavyWork::new(1);
        let (release, wait) = mpsc::channel::<()>();
        let late = work
            .run(1, Duration::from_millis(50), move || wait.recv().is_ok())
            .await;
        assert_eq!(late, Err(Refused::TimedOut));
        // Still running: its server stays busy, and with one permit another server's job waits
        // for its turn, within its own limit.
        assert_eq!(
            work.run(1, Duration::from_secs(5), || 0).await,
            Err(Refused::ServerBusy)
        );
        assert_eq!(
            work.run(2, Duration::from_millis(50), || 0).await,
            Err(Refused::TimedOut)
        );
        release.send(()).unwrap();
        assert_eq!(work.run(2, Duration::from_secs(30), || 2).await, Ok(2));
        // The first job's slot is freed once it ends (on its blocking thread).
        let mut tries = 0;
        while work.run(1, Duration::from_secs(30), || 1).await != Ok(1) {
            tries += 1;
            assert!(tries < 1000, "server 1's slot was never freed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
