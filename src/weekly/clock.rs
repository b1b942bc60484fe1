//! Wall-clock time for the weekly scheduler, injectable so tests control it.
//!
//! The scheduler asks a [`Clock`] for "now" and sleeps until an instant through it. In production
//! that is [`SystemClock`]; the end-to-end tests use [`ManualClock`] and move time forward by hand,
//! so "the post arrives at 09:00 Monday" is tested in milliseconds with the real Discord client
//! running on real time beside it. (tokio's paused time would pause the client's heartbeats and
//! HTTP timeouts too, which is not what a test of the bot wants.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Completes at or after `at` (immediately when `at` has passed).
    fn sleep_until(&self, at: DateTime<Utc>) -> SleepFuture<'_>;
}

/// The system clock. Long sleeps wake at least once a minute to re-read the time, so a clock
/// change or a suspended machine delays a post by at most a minute instead of by the jump.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> SleepFuture<'_> {
        Box::pin(async move {
            loop {
                let left = at - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLEEP)).await;
            }
        })
    }
}

/// A clock that only moves when told to. Sleepers wake as soon as `set`/`advance` passes their
/// instant.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
            changed: watch::Sender::new(start),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
        self.changed.send_replace(at);
    }

    pub fn advance(&self, by: chrono::Duration) {
        let at = self.now() + by;
        self.set(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> SleepFuture<'_> {
        let mut changes = self.changed.subscribe();
        Box::pin(async move {
            while *changes.borrow_and_update() < at {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved_past_them() {
        let start = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock.sleep_until(start + chrono::Duration::hours(1)).await;
                clock.now()
            })
        };
        tokio::task::yield_now().await;
        clock.advance(chrono::Duration::minutes(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "woke before its instant");
        clock.advance(chrono::Duration::minutes(31));
        let woke_at = tokio::time::timeout(Duration::from_secs(2), sleeper)
            .await
            .expect("the sleeper never woke")
            .unwrap();
        assert_eq!(woke_at, start + chrono::Duration::minutes(61));
        // A past instant completes at once.
        tokio::time::timeout(Duration::from_millis(100), clock.sleep_until(start))
            .await
            .expect("a past instant should not block");
    }

    #[tokio::test]
    async fn system_clock_sleeps_until_the_instant() {
        let at = Utc::now() + chrono::Duration::milliseconds(50);
        SystemClock.sleep_until(at).await;
        assert!(Utc::now() >= at);
    }
}
