//! A per-user budget for everything a person can make the bot send: at most `limit` in any
//! sliding `window`.
//!
//! Pure and clock-free (the caller passes `now`), so it is tested without waiting. One budget
//! covers every way in (slash commands, DMs, "help", buttons), so no single path can make the bot
//! flood a channel or Discord's rate limits. The adapter answers the first refusal with "slow
//! down, try again in N s" instead of dropping it, which is what people expect from a bot that
//! otherwise always answers; [`Refusal::first`] says whether this refusal is the first of the
//! current wait, so a DM flood gets one notice, not one per message. Memory stays bounded: a
//! user's entry holds at most `limit` instants and entries older than the window are pruned.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Why something was refused: how long until the budget allows it again (whole seconds, at
/// least 1, for a message a person reads), and whether this is the first refusal of that wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub wait: Duration,
    pub first: bool,
}

#[derive(Debug, Default)]
struct History {
    recent: VecDeque<Instant>,
    /// The end of the wait the user was last told about.
    told_until: Option<Instant>,
}

#[derive(Debug)]
pub struct Cooldown {
    limit: usize,
    window: Duration,
    recent: HashMap<u64, History>,
    /// Prune every user's history every this many calls, so idle users do not accumulate.
    calls_since_prune: usize,
}

impl Cooldown {
    /// `limit` questions per `window` per user (`limit` of at least 1).
    pub fn new(limit: usize, window: Duration) -> Self {
        Cooldown {
            limit: limit.max(1),
            window,
            recent: HashMap::new(),
            calls_since_prune: 0,
        }
    }

    /// Records one reply for `user` at `now`, or refuses it (see [`Refusal`]).
    pub fn check(&mut self, user: u64, now: Instant) -> Result<(), Refusal> {
        self.calls_since_prune += 1;
        if self.calls_since_prune >= 1024 {
            self.prune(now);
        }
        let window = self.window;
        let history = self.recent.entry(user).or_default();
        let times = &mut history.recent;
        while times
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let free_at = times[0] + window;
            let wait = free_at.saturating_duration_since(now);
            let first = history.told_until != Some(free_at);
            history.told_until = Some(free_at);
            return Err(Refusal {
                wait: Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64),
                first,
            });
        }
        times.push_back(now);
        Ok(())
    }

    fn prune(&mut self, now: Instant) {
        self.calls_since_prune = 0;
        let window = self.window;
        self.recent.retain(|_, history| {
            history
                .recent
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < window)
        });
    }

    /// How many users are being tracked (for tests and metrics).
    pub fn tracked_users(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_limit_then_says_how_long_to_wait() {
        let start = Instant::now();
        let mut c = Cooldown::new(5, Duration::from_secs(60));
        for i in 0..5 {
            assert_eq!(c.check(1, start + Duration::from_secs(i)), Ok(()));
        }
        // The first question was at 0 s; at 10 s the window frees up 50 s later.
        assert_eq!(
            c.check(1, start + Duration::from_secs(10)),
            Err(Refusal {
                wait: Duration::from_secs(50),
                first: true
            })
        );
        // Asking again during the same wait: refused, and not the first refusal any more.
        assert_eq!(
            c.check(1, start + Duration::from_secs(20)),
            Err(Refusal {
                wait: Duration::from_secs(40),
                first: false
            })
        );
        // Another user is not affected.
        assert_eq!(c.check(2, start + Duration::from_secs(10)), Ok(()));
        // Once the first question leaves the window, one more is allowed, and only one; the next
        // refusal starts a new wait, so it is a first refusal again.
        assert_eq!(c.check(1, start + Duration::from_secs(60)), Ok(()));
        assert!(
            c.check(1, start + Duration::from_secs(60))
                .unwrap_err()
                .first
        );
    }

    #[test]
    fn waits_are_whole_seconds_and_never_zero() {
        let start = Instant::now();
        let mut c = Cooldown::new(1, Duration::from_secs(10));
        c.check(7, start).unwrap();
        let wait = |r: Result<(), Refusal>| r.unwrap_err().wait;
        assert_eq!(
            wait(c.check(7, start + Duration::from_millis(9_999))),
            Duration::from_secs(1)
        );
        assert_eq!(
            wait(c.check(7, start + Duration::from_millis(100))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn idle_users_are_pruned() {
        let start = Instant::now();
        let mut c = Cooldown::new(5, Duration::from_secs(60));
        for user in 0..2000 {
            c.check(user, start).unwrap();
        }
        let later = start + Duration::from_secs(120);
        for _ in 0..1024 {
            c.check(999_999, later).unwrap_or(());
        }
        assert!(c.tracked_users() <= 2, "{}", c.tracked_users());
    }
}
