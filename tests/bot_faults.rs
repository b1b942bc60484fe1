//! End-to-end tests of the bot under faults injected by the fake Discord: a gateway close (4000)
//! in the middle of a session (the bot RESUMEs, does not register its commands again, and keeps
//! answering), a 500 on an interaction callback or a DM reply (the next one is still answered and
//! the bot keeps running), and shutdown (`RunningBot::shutdown` returns Ok, closes the gateway
//! connection for good, and first lets a reply in progress finish). Every test ends with the
//! fake's check that all bodies were valid.

mod support;

use std::time::{Duration, Instant};

use support::bot::*;
use support::payloads::*;
use support::{FakeDiscord, WAIT};

/// Asks `/advice` and checks that a full answer (one embed) was accepted.
async fn answered(fake: &FakeDiscord, question: &str) {
    let callback = ask(fake, &advice(question, None).build()).await;
    let message = callback_message(&callback, 4);
    assert_eq!(
        message["embeds"].as_array().map(Vec::len),
        Some(1),
        "{question:?} is answered: {message:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_close_mid_session_is_resumed_and_questions_are_still_answered() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    answered(&fake, "How do I stop micromanaging?").await;

    fake.close_gateway(4000);
    let stats = fake
        .wait_for_gateway("a RESUME (or a new IDENTIFY) after close 4000", WAIT, |s| {
            s.resumed >= 1 || s.identifies >= 2
        })
        .await;
    assert_eq!(
        (stats.connections, stats.identifies, stats.resumed),
        (2, 1, 1),
        "the bot resumes its session instead of identifying again"
    );
    fake.wait_for_ready(WAIT).await;
    answered(&fake, "How do I delegate effectively?").await;

    let registrations = fake.requests_matching(|r| r.is("PUT", "/applications/"));
    assert_eq!(
        registrations.len(),
        1,
        "commands are registered once, not again after a reconnect"
    );
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_callback_does_not_stop_the_next_interaction() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    fake.fail_next("POST", "/interactions/", 1, 500);
    let failed = advice("How do I stop micromanaging?", None).build();
    fake.dispatch("INTERACTION_CREATE", failed.clone()).await;
    let callback = fake.wait_for_callback(&failed, WAIT).await;
    assert_eq!(callback.status, 500, "{}", callback.describe());
    // The error handler apologises on the same interaction, privately (a second callback).
    let path = callback_path(&failed);
    let apology = fake
        .wait_for_request_since(callback.index + 1, "the apology after the 500", WAIT, |r| {
            r.is("POST", &path)
        })
        .await;
    let message = callback_message(&apology, 4);
    assert!(is_ephemeral(&message), "{message:#}");
    assert!(
        message["content"]
            .as_str()
            .unwrap_or_default()
            .contains("try again"),
        "{message:#}"
    );

    answered(&fake, "How do I delegate effectively?").await;
    answered(&fake, "Should I become a manager?").await;

    // A failed DM reply does not stop DMs either.
    fake.fail_next(
        "POST",
        &format!("/channels/{DM_CHANNEL_ID}/messages"),
        1,
        500,
    );
    for expected in [500, 200] {
        let mark = fake.mark();
        let data = dm_message_create("How do I delegate effectively?", alice());
        fake.dispatch("MESSAGE_CREATE", data).await;
        let reply = fake
            .wait_for_channel_message_since(mark, DM_CHANNEL_ID, WAIT)
            .await;
        assert_eq!(reply.status, expected, "{}", reply.describe());
    }
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_gateway_for_good() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    answered(&fake, "How do I stop micromanaging?").await;
    let before = fake.gateway_stats();
    assert!(before.session_live);

    let started = Instant::now();
    match tokio::time::timeout(WAIT, bot.bot.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("shutdown returned an error: {e}"),
        Err(_) => panic!("shutdown did not return within {WAIT:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown with nothing in flight took {:?}",
        started.elapsed()
    );
    fake.wait_for_gateway("the gateway connection to close", WAIT, |s| !s.session_live)
        .await;
    // It stays closed: no reconnect, no RESUME, no IDENTIFY.
    tokio::time::sleep(QUIET).await;
    let after = fake.gateway_stats();
    assert_eq!(
        (
            after.connections,
            after.identifies,
            after.resumes,
            after.session_live
        ),
        (before.connections, before.identifies, before.resumes, false),
        "the bot reconnected after shutdown"
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_reply_in_progress_finish() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let slow = Duration::from_millis(600);
    fake.delay_next("POST", "/interactions/", 1, slow);
    let interaction = advice("How do I stop micromanaging?", None).build();
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    // The fake records the callback as it arrives, then answers only after `slow`.
    let callback = fake.wait_for_callback(&interaction, WAIT).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());

    match tokio::time::timeout(WAIT, bot.bot.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("shutdown returned an error: {e}"),
        Err(_) => panic!("shutdown did not return within {WAIT:?}"),
    }
    let waited = callback.received_at.elapsed();
    assert!(
        waited >= slow - Duration::from_millis(50),
        "shutdown returned {waited:?} after the callback was sent, before its answer ({slow:?})"
    );
    fake.assert_all_bodies_valid();
}
