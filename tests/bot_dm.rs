//! End-to-end tests of questions sent to the bot in direct messages: the fake Discord dispatches
//! MESSAGE_CREATE events in a DM channel and the tests assert on the `POST
//! /channels/{dm}/messages` the bot makes: the same answer as `/advice`, the help text, silence
//! towards bots (itself included) and server messages, and the per-user cooldown of questions that
//! DMs share with `/advice`. Every test ends with the fake's check that all bodies were valid.

mod support;

use serde_json::Value;
use support::bot::*;
use support::payloads::*;
use support::{FakeDiscord, RecordedRequest, WAIT};

/// Sends `content` as a DM from `author` in `channel_id` and returns the bot's reply there.
async fn dm(fake: &FakeDiscord, channel_id: u64, author: Value, content: &str) -> RecordedRequest {
    let mark = fake.mark();
    let data = message(next_snowflake(), channel_id, None, author, content);
    fake.dispatch("MESSAGE_CREATE", data).await;
    let reply = fake
        .wait_for_channel_message_since(mark, channel_id, WAIT)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_no_pings(reply.json());
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_question_gets_the_same_answer_as_advice() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let question = "How do I delegate effectively?";
    let catalog = catalog();
    let expected = catalog.ask(question, 3).expect("a question");
    let best = expected
        .matches
        .first()
        .expect("an on-topic question")
        .insight;

    let reply = dm(&fake, DM_CHANNEL_ID, alice(), question).await;
    let body = reply.json();
    let embeds = body["embeds"].as_array().expect("embeds");
    assert_eq!(embeds.len(), 1, "{body:#}");
    assert_eq!(embeds[0]["title"], best.title.as_str());
    assert_eq!(embeds[0]["description"], best.text.as_str());
    assert!(embeds[0]["footer"]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("RiffOn"));
    assert_eq!(embeds[0]["fields"][0]["name"], "Related", "{body:#}");
    assert!(body["content"]
        .as_str()
        .unwrap_or_default()
        .contains(question));

    // The same embed as the slash command's.
    let callback = ask(&fake, &advice(question, None).build()).await;
    let slash = callback_message(&callback, 4);
    assert_eq!(body["embeds"], slash["embeds"]);
    assert_eq!(body["content"], slash["content"]);
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_in_a_dm_names_the_slash_commands() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    for text in ["help", "Hello!"] {
        let reply = dm(&fake, DM_CHANNEL_ID, alice(), text).await;
        let help = reply.json()["embeds"][0]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for command in ["/advice", "/insight", "/topics"] {
            assert!(help.contains(command), "{text:?}: no {command} in {help}");
        }
    }
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_bots_and_servers_get_no_answer() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let mark = fake.mark();
    let question = "How do I delegate effectively?";
    let another_bot = user(1_300_000_000_000_000_077, "other-bot", true);
    for author in [another_bot, bot_user()] {
        fake.dispatch("MESSAGE_CREATE", dm_message_create(question, author))
            .await;
    }
    // A message in a server channel never reaches the bot: it asks for no GUILD_MESSAGES intent
    // (it needs none), so Discord does not send it.
    let in_server = guild_message_create(GENERAL_CHANNEL_ID, GUILD_ID, question, alice());
    let refused = fake.try_dispatch("MESSAGE_CREATE", in_server).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("GUILD_MESSAGES")),
        "{refused:?}"
    );
    fake.assert_no_request_since(
        mark,
        "request after messages from bots and in a server",
        QUIET,
        |_| true,
    )
    .await;

    // The bot is listening: a person's DM right after is answered.
    dm(&fake, DM_CHANNEL_ID, alice(), question).await;
    stop_bot(&fake, bot).await;
}

/// The number in "... again in N s".
fn wait_seconds(text: &str) -> Option<u64> {
    let rest = &text[text.find("again in ")? + "again in ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with(" s")
        .then(|| digits.parse().ok())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reply_budget_covers_every_way_in_and_a_flood_gets_one_notice() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    // Every kind of DM spends the budget: questions, "help", and messages without text.
    let kinds = [
        "How do I delegate effectively?",
        "help",
        "",
        "How do I get promoted?",
    ];
    for i in 0..REPLIES_PER_MINUTE {
        let content = kinds[i % kinds.len()];
        let reply = dm(&fake, DM_CHANNEL_ID, alice(), content).await;
        assert!(
            !reply.body_text().to_lowercase().contains("slow down"),
            "reply {} of {REPLIES_PER_MINUTE} to {content:?} was refused",
            i + 1
        );
    }
    let reply = dm(&fake, DM_CHANNEL_ID, alice(), "And how do I hire well?").await;
    let text = reply.json()["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.to_lowercase().contains("slow down"), "{text}");
    let seconds = wait_seconds(&text).unwrap_or_else(|| panic!("no \"again in N s\": {text}"));
    assert!((1..=60).contains(&seconds), "{text}");
    assert!(
        reply.json()["embeds"].as_array().is_none_or(Vec::is_empty),
        "no answer with the slow-down: {}",
        reply.body_text()
    );
    // A flood during the same wait gets no more messages: one notice, then silence.
    let mark = fake.mark();
    for content in ["help", "hello?", "", "How do I delegate?"] {
        let data = message(next_snowflake(), DM_CHANNEL_ID, None, alice(), content);
        fake.dispatch("MESSAGE_CREATE", data).await;
    }
    fake.assert_no_request_since(mark, "a reply to a DM flood", QUIET, |r| {
        r.is("POST", "/channels/")
    })
    .await;

    // The limit is per user: someone else, in their own DM, is answered.
    let bob_dm = 1_300_000_000_000_000_300;
    let bob = user(1_300_000_000_000_000_301, "bob", false);
    let reply = dm(&fake, bob_dm, bob, "How do I delegate effectively?").await;
    assert_eq!(reply.json()["embeds"].as_array().map(Vec::len), Some(1));

    // And it is shared with every command and button: each is refused, privately.
    let another = slash_command("insight", vec![]).in_dm(alice()).build();
    let clicks_on = {
        // A message with an "Another one" button, as /insight leaves it (shown to someone else).
        let shown = callback_message(
            &ask(
                &fake,
                &slash_command("insight", vec![]).in_dm(carol()).build(),
            )
            .await,
            4,
        );
        let mut m = message(next_snowflake(), DM_CHANNEL_ID, None, bot_user(), "");
        m["components"] = shown["components"].clone();
        m["embeds"] = shown["embeds"].clone();
        m
    };
    let custom_id = clicks_on["components"][0]["components"][0]["custom_id"]
        .as_str()
        .expect("an Another one button")
        .to_string();
    let click = button_click(&custom_id, clicks_on).in_dm(alice()).build();
    for interaction in [
        slash_command("advice", vec![opt_string("question", "How do I delegate?")])
            .in_dm(alice())
            .build(),
        slash_command("help", vec![]).in_dm(alice()).build(),
        another,
        click,
    ] {
        let message = callback_message(&ask(&fake, &interaction).await, 4);
        assert!(is_ephemeral(&message), "{message:#}");
        let text = message["content"].as_str().unwrap_or_default();
        assert!(
            text.to_lowercase().contains("slow down") && wait_seconds(text).is_some(),
            "{text}"
        );
    }
    stop_bot(&fake, bot).await;
}

/// A third person, for the budget's per-user check.
fn carol() -> Value {
    user(1_300_000_000_000_000_302, "carol", false)
}
