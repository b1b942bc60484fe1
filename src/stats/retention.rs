//! Housekeeping of what the answers left behind: once a day, the store's
//! [`prune`](crate::store::Backend::prune) deletes answers and votes older than
//! [`ANSWER_RETENTION_DAYS`](crate::store::ANSWER_RETENTION_DAYS) (their counts stay in the daily
//! totals), questions kept as gaps for longer than
//! [`GAP_RETENTION_DAYS`](crate::store::GAP_RETENTION_DAYS), the questions of earlier days
//! that did not become gaps, and suggestions approved or rejected more than
//! [`DECIDED_SUGGESTION_RETENTION_DAYS`](crate::store::DECIDED_SUGGESTION_RETENTION_DAYS) ago.
//! On SQLite, a pass that deleted anything then empties the write-ahead log into the file, so
//! the deleted text is in no file (see [`crate::store::sqlite`]).
//!
//! It runs on the same [`Clock`] as the weekly poster, so tests move time forward instead of
//! waiting. Every process of a sharded bot runs it; pruning is idempotent, so that costs a few
//! empty deletes.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::store::Store;
use crate::weekly::clock::Clock;

/// When the daily pass runs: a few minutes after midnight UTC, when "today" has just moved.
const AFTER_MIDNIGHT: Duration = Duration::minutes(5);

/// The next pass after `now`.
pub fn next_pass(now: DateTime<Utc>) -> DateTime<Utc> {
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let today = midnight + AFTER_MIDNIGHT;
    if today > now {
        today
    } else {
        today + Duration::days(1)
    }
}

/// Prunes now, then once a day, forever (the bot aborts the task when it stops). A failed pass
/// is logged and retried at the next.
pub async fn run(store: Store, clock: Arc<dyn Clock>) {
    loop {
        // The next pass is reckoned from the instant this one started, not from the clock after
        // it: a clock that moved past the next pass during this one (a manual clock in tests, a
        // machine suspended) then runs it at once instead of skipping a whole day.
        let started = clock.now();
        let today = started.date_naive();
        match store.call(move |db| db.prune(today)).await {
            Ok(pruned) if pruned.answers > 0 || pruned.questions > 0 || pruned.suggestions > 0 => {
                tracing::info!(
                    answers = pruned.answers,
                    questions = pruned.questions,
                    suggestions = pruned.suggestions,
                    "usage housekeeping: deleted what is past its retention"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("usage housekeeping failed (retried tomorrow): {e}"),
        }
        clock.sleep_until(next_pass(started)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_pass_runs_just_after_each_midnight() {
        assert_eq!(
            next_pass(at("2026-11-26T17:00:00Z")),
            at("2026-11-27T00:05:00Z")
        );
        assert_eq!(
            next_pass(at("2026-11-26T00:01:00Z")),
            at("2026-11-26T00:05:00Z")
        );
        assert_eq!(
            next_pass(at("2026-11-26T00:05:00Z")),
            at("2026-11-27T00:05:00Z")
        );
    }
}
