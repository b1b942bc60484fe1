//! Each interaction counted once, with its outcome and how long it took to acknowledge.
//!
//! The bot wraps the handling of every interaction in [`track`]; the places that decide how it
//! ends (the reply budget, a refusal, an error) or that acknowledge it early (a deferral) note it
//! with [`note_outcome`] and [`note_acknowledged`], through a task-local, so no handler's
//! signature changes. poise and serenity handle an interaction inline in the dispatching task,
//! which is what makes the task-local reach them. Outside [`track`] (a DM) the notes do nothing.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::metrics::metrics;

/// How an interaction ended. The first note other than `Ok` wins: a refusal's own reply failing
/// later does not turn it into something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A handler failed (the person was told "something went wrong").
    Error,
    /// Not allowed: not a curator, missing permission, wrong place, an option that did not parse.
    Refused,
    /// The person's reply or curating budget was spent.
    RateLimited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

/// The kind of interaction, as the metric's `kind` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Slash,
    Component,
    Modal,
    Autocomplete,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Slash => "slash",
            Kind::Component => "component",
            Kind::Modal => "modal",
            Kind::Autocomplete => "autocomplete",
        }
    }
}

struct Notes {
    outcome: Outcome,
    acknowledged: Option<Instant>,
}

tokio::task_local! {
    static CURRENT: Arc<Mutex<Notes>>;
}

/// Runs `handling` (one interaction's) and counts it: `interactions_total{kind,command,outcome}`
/// and `interaction_ack_seconds`, the time to the first deferral noted, or else to the end of
/// the handling, whose reply is then its acknowledgement. `command` is a name from the bot's
/// fixed list, never something a user typed.
pub async fn track(kind: Kind, command: &'static str, handling: impl Future<Output = ()>) {
    let started = Instant::now();
    let notes = Arc::new(Mutex::new(Notes {
        outcome: Outcome::Ok,
        acknowledged: None,
    }));
    CURRENT.scope(Arc::clone(&notes), handling).await;
    let notes = notes.lock().unwrap_or_else(|e| e.into_inner());
    let acknowledged = notes.acknowledged.unwrap_or_else(Instant::now);
    let m = metrics();
    m.interaction_ack
        .observe_duration(acknowledged.saturating_duration_since(started));
    m.interactions
        .inc([kind.as_str(), command, notes.outcome.as_str()]);
}

/// Notes how the interaction being handled ends (see [`Outcome`] for which note wins).
pub fn note_outcome(outcome: Outcome) {
    let _ = CURRENT.try_with(|notes| {
        let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.outcome == Outcome::Ok {
            notes.outcome = outcome;
        }
    });
}

/// Notes that the interaction being handled was acknowledged now (a deferral), if it was not yet.
pub fn note_acknowledged() {
    let _ = CURRENT.try_with(|notes| {
        let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
        notes.acknowledged.get_or_insert_with(Instant::now);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_outcome_noted_wins_and_notes_outside_do_nothing() {
        note_outcome(Outcome::Error); // no interaction: ignored
        let before = metrics()
            .interactions
            .get(["modal", "unit-test", "rate_limited"]);
        track(Kind::Modal, "unit-test", async {
            note_outcome(Outcome::RateLimited);
            note_outcome(Outcome::Error);
        })
        .await;
        assert_eq!(
            metrics()
                .interactions
                .get(["modal", "unit-test", "rate_limited"]),
            before + 1
        );
        assert_eq!(
            metrics().interactions.get(["modal", "unit-test", "error"]),
            0
        );
    }
}
