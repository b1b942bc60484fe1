//! "Was this helpful?": the two buttons under every answer to a question (`/advice`, a DM), and
//! what is recorded about each answer.
//!
//! Each answer gets a random id when it is sent; the buttons carry it (`fb:<id>:y|n`), so they
//! keep working after a restart and on any process. The answer is recorded in the background,
//! after the reply is on its way: recording never delays an answer, and a failed write costs a
//! count, never the answer. What is recorded is the server (or "DM"), the day, the insight given
//! (or "no close match") and, only in a server that turned gaps on, the question — never who asked
//! and never the message.
//!
//! A vote is stored under a *voter key*: a keyed hash of the person's id and the answer's id with
//! the database's secret. It lets one person change their vote on one answer and nothing else: it
//! names nobody, and the same person's keys on two answers have nothing in common. Votes do not
//! change the ranking (see docs/curation.md): they are shown to curators in `/insights stats`.

use chrono::NaiveDate;
use poise::serenity_prelude as serenity;
use rand::Rng;
use serenity::{ButtonStyle, ComponentInteraction, CreateButton};
use sha2::{Digest, Sha256};

use super::access::{Answer, Incoming};
use super::{Data, Error};
use crate::store::{NewAnswer, Store, StoredVectors, Vote, VoteOutcome, VOTE_WINDOW_DAYS};

/// The custom id prefix of the feedback buttons.
pub const PREFIX: &str = "fb:";

/// How long a vote on an answer not found yet waits before looking again (see `on_button`).
const UNKNOWN_ANSWER_RETRY: std::time::Duration = std::time::Duration::from_millis(800);

/// A fresh answer id: random, so it says nothing about when or by whom, below 2^53 so it stays
/// exact anywhere a JSON number is read, and never 0.
pub fn new_answer_id() -> u64 {
    rand::thread_rng().gen_range(1..(1u64 << 53))
}

/// The two buttons under an answer.
pub fn buttons(answer_id: u64) -> Vec<CreateButton> {
    vec![
        CreateButton::new(format!("{PREFIX}{answer_id}:y"))
            .label("Helpful")
            .style(ButtonStyle::Secondary),
        CreateButton::new(format!("{PREFIX}{answer_id}:n"))
            .label("Not what I needed")
            .style(ButtonStyle::Secondary),
    ]
}

/// A button's answer id and vote; `None` for anything else.
pub fn parse(custom_id: &str) -> Option<(u64, Vote)> {
    let (id, vote) = custom_id.strip_prefix(PREFIX)?.split_once(':')?;
    let vote = match vote {
        "y" => Vote::Helpful,
        "n" => Vote::NotHelpful,
        _ => return None,
    };
    Some((id.parse().ok()?, vote))
}

/// The key a vote is stored under: SHA-256 of the secret, the person and the answer.
pub fn voter_key(secret: &[u8; 32], user: u64, answer_id: u64) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"insight-bot voter key v1");
    hash.update(secret);
    hash.update(user.to_le_bytes());
    hash.update(answer_id.to_le_bytes());
    hash.finalize().into()
}

/// Records an answer in the background (see the module documentation).
pub fn record(store: &Store, answer: NewAnswer) {
    let store = store.clone();
    tokio::spawn(async move {
        let guild = answer.guild_id;
        if let Err(e) = store
            .call(move |db| db.record_answers(std::slice::from_ref(&answer)))
            .await
        {
            tracing::warn!(?guild, "could not record an answer for the stats: {e}");
        }
    });
}

/// What an answer records, before its id and day are known.
pub struct AnswerFacts {
    pub insight_id: Option<String>,
    pub no_close_match: bool,
    /// The closest insight was shown as possibly not fitting: a gap like "no close match".
    pub weak: bool,
    /// The question's vector as answering computed it, stored form
    /// ([`crate::stats::gap_vectors::encode`]): kept with the question where gaps are on, so
    /// listing gaps embeds nothing.
    pub question_vector: Option<StoredVectors>,
}

/// The [`NewAnswer`] for an answer sent in `guild` (`None`: a DM) on `day`. The question goes
/// with a server's answer, with its vector (the store keeps both only where gaps are on); a DM's
/// is never passed.
pub fn new_answer(
    id: u64,
    guild: Option<u64>,
    day: NaiveDate,
    facts: AnswerFacts,
    question: &str,
) -> NewAnswer {
    NewAnswer {
        id,
        guild_id: guild,
        day,
        insight_id: facts.insight_id,
        no_close_match: facts.no_close_match,
        weak: facts.weak,
        question: guild.map(|_| question.to_string()),
        question_vector: facts.question_vector.filter(|_| guild.is_some()),
    }
}

/// A click on "Helpful" or "Not what I needed": anyone who sees the answer may vote once, and
/// change their vote.
pub async fn on_button(
    ctx: &serenity::Context,
    component: &ComponentInteraction,
    data: &Data,
) -> Result<(), Error> {
    let click = Incoming::Button(component);
    let Some((answer_id, vote)) = parse(&component.data.custom_id) else {
        return Ok(click
            .respond(
                &ctx.http,
                Answer::Notice("This button is no longer active.".into()),
            )
            .await?);
    };
    let voter = voter_key(&data.voter_secret, component.user.id.get(), answer_id);
    let guild = component.guild_id.map(|g| g.get());
    let store = data.store.clone();
    let today = data.clock.now().date_naive();
    let collections = std::sync::Arc::clone(&data.collections);
    let work = async move {
        let vote_once = || {
            let store = store.clone();
            async move {
                store
                    .call(move |db| db.record_vote(answer_id, &voter, vote, today))
                    .await
            }
        };
        let mut outcome = vote_once().await;
        if matches!(outcome, Ok(VoteOutcome::UnknownAnswer)) {
            // The answer is written in the background after the reply: a click faster than that
            // write (well under a millisecond, but a busy database can hold it) finds nothing.
            // One retry a moment later tells that apart from an answer past its retention.
            tokio::time::sleep(UNKNOWN_ANSWER_RETRY).await;
            outcome = vote_once().await;
        }
        // Only a "not what I needed" reply depends on gaps; the server's settings are in its
        // cached collection, so no extra database read.
        let gaps_on = match guild {
            Some(guild) if vote == Vote::NotHelpful => collections
                .get(Some(guild))
                .await
                .is_ok_and(|c| c.settings().gaps),
            _ => false,
        };
        match outcome {
            Ok(outcome) => Answer::Notice(acknowledgement(outcome, vote, gaps_on)),
            Err(e) => {
                tracing::warn!(?guild, "could not record a vote: {e}");
                Answer::Notice(
                    "Sorry, I could not record that just now. Please try again in a minute.".into(),
                )
            }
        }
    };
    // Always a new ephemeral notice, even slow: the answer a private `/advice` gave is never
    // replaced by the acknowledgement.
    click.notice_in_time(&ctx.http, work).await?;
    Ok(())
}

/// What the voter is told, only to them.
fn acknowledgement(outcome: VoteOutcome, vote: Vote, gaps_on: bool) -> String {
    let what = match vote {
        Vote::Helpful => "helpful",
        Vote::NotHelpful => "not what you needed",
    };
    let next = match vote {
        Vote::Helpful => "",
        // Whether this very question is kept depends on when gaps were turned on and on the
        // daily pass, so the reply says what the server does, not what happens to this one.
        Vote::NotHelpful if gaps_on => {
            " This server's curators see these votes, and the questions behind them while they keep gaps, so they can add what is missing. Meanwhile, try `/advice` with other words, or `/topics`."
        }
        Vote::NotHelpful => {
            " Try `/advice` with other words, or `/topics` to see what I know about."
        }
    };
    match outcome {
        VoteOutcome::Recorded => format!("Thanks — noted as {what}.{next}"),
        VoteOutcome::Changed => format!("Changed your vote to {what}.{next}"),
        VoteOutcome::Unchanged => format!("You already said this was {what}."),
        VoteOutcome::Closed => format!(
            "Votes on this answer closed {VOTE_WINDOW_DAYS} days after it was given. Ask again with `/advice` to rate a fresh answer."
        ),
        VoteOutcome::UnknownAnswer => {
            "This answer is too old to rate now: answers are kept for a year.".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_says_which_answer_and_which_vote() {
        let id = new_answer_id();
        let [yes, no]: [CreateButton; 2] = buttons(id).try_into().ok().unwrap();
        let ids: Vec<String> = [yes, no]
            .iter()
            .map(|b| {
                serde_json::to_value(b).unwrap()["custom_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(parse(&ids[0]), Some((id, Vote::Helpful)));
        assert_eq!(parse(&ids[1]), Some((id, Vote::NotHelpful)));
        assert!(ids.iter().all(|i| i.len() <= 100));
        assert_eq!(parse("fb:12:maybe"), None);
        assert_eq!(parse("fb:x:y"), None);
        assert_eq!(parse("ins:list:1"), None);
    }

    #[test]
    fn voter_keys_differ_per_person_answer_and_secret() {
        let secret = [7u8; 32];
        let key = voter_key(&secret, 1, 100);
        assert_eq!(key, voter_key(&secret, 1, 100));
        assert_ne!(key, voter_key(&secret, 2, 100));
        assert_ne!(key, voter_key(&secret, 1, 101));
        assert_ne!(key, voter_key(&[8u8; 32], 1, 100));
    }

    #[test]
    fn answer_ids_are_in_range() {
        for _ in 0..1000 {
            let id = new_answer_id();
            assert!((1..1 << 53).contains(&id));
        }
    }

    #[test]
    fn a_dm_never_passes_its_question() {
        let vector = StoredVectors {
            fingerprint: 3,
            bytes: vec![1; 8],
        };
        let facts = || AnswerFacts {
            insight_id: None,
            no_close_match: true,
            weak: false,
            question_vector: Some(vector.clone()),
        };
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let dm = new_answer(1, None, day, facts(), "q");
        assert_eq!((dm.question, dm.question_vector), (None, None));
        let server = new_answer(1, Some(5), day, facts(), "q");
        assert_eq!(server.question.as_deref(), Some("q"));
        assert_eq!(server.question_vector, Some(vector));
    }
}
