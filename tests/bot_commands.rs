//! End-to-end tests of the slash commands and the "Another one" button: the real bot, started
//! with `insight_bot::bot::start`, answers INTERACTION_CREATE dispatches from the fake Discord,
//! and each test asserts on the interaction callback the bot POSTs (type, flags, embeds, buttons,
//! allowed mentions) and ends with the fake's check that every body was valid (OpenAPI schema
//! when a spec is available, Discord's length limits always).
//!
//! Expected answers come from the shipped collection (`data/`) through the core's own calls
//! (`Library::ask`, `Library::topics`), so these tests pin the adapter, not the ranking.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::bot::*;
use support::payloads::*;
use support::{FakeDiscord, RecordedRequest};

/// The one embed of a message.
fn only_embed(message: &Value) -> &Value {
    let embeds = message["embeds"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(embeds.len(), 1, "expected one embed: {message:#}");
    &embeds[0]
}

/// A message body as text, without its `allowed_mentions` (which names the mention kinds).
fn text_outside_allowed_mentions(message: &Value) -> String {
    let mut m = message.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("allowed_mentions");
    }
    m.to_string()
}

/// The custom ids of a message's buttons.
fn button_ids(message: &Value) -> Vec<String> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_owned))
        .collect()
}

/// The characters Discord counts towards a message's 6000 across its embeds.
fn embed_chars(message: &Value) -> usize {
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    message["embeds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let fields: usize = e["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| chars(&f["name"]) + chars(&f["value"]))
                .sum();
            chars(&e["title"])
                + chars(&e["description"])
                + chars(&e["footer"]["text"])
                + chars(&e["author"]["name"])
                + fields
        })
        .sum()
}

/// The insight a shown embed is, by its title.
fn insight_titled(title: &Value) -> insight_bot::insights::Insight {
    library()
        .insights()
        .iter()
        .find(|i| title.as_str() == Some(i.title.as_str()))
        .unwrap_or_else(|| panic!("no insight is titled {title}"))
        .clone()
}

/// A normal (non-ephemeral) reply message of type 4 that pings nobody.
fn public_reply(callback: &RecordedRequest) -> Value {
    let message = callback_message(callback, 4);
    assert!(
        !is_ephemeral(&message),
        "expected a public reply: {message:#}"
    );
    assert_no_pings(&message);
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_answers_with_the_best_insight_and_related_titles() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let question = "How do I stop micromanaging?";
    let lib = library();
    let best = lib
        .get("trust-and-delegate")
        .expect("the shipped collection");
    let catalog = catalog();
    let expected = catalog.ask(question, 3).expect("a question");

    let interaction = advice(question, None).build();
    let callback = ask(&fake, &interaction).await;
    let message = public_reply(&callback);
    let timing = fake.interaction_timing(&interaction).expect("dispatched");
    let latency = timing.latency().expect("sent and answered");
    assert!(
        latency < support::fake_discord::INTERACTION_DEADLINE,
        "answered in {latency:?}, past Discord's 3 s"
    );
    let embed = only_embed(&message);
    assert_eq!(embed["title"], best.title.as_str());
    assert_eq!(embed["description"], best.text.as_str(), "the full text");
    let footer = embed["footer"]["text"].as_str().unwrap_or_default();
    assert!(
        footer.contains("RiffOn"),
        "the source in the footer: {footer:?}"
    );
    assert!(
        message["content"]
            .as_str()
            .unwrap_or_default()
            .contains(question),
        "the question is quoted back: {message:#}"
    );

    let fields = embed["fields"].as_array().expect("fields");
    assert_eq!(fields.len(), 1, "{embed:#}");
    assert_eq!(fields[0]["name"], "Related");
    let related: Vec<&str> = fields[0]["value"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim_start_matches('•').trim())
        .collect();
    let expected_related: Vec<&str> = expected.matches[1..]
        .iter()
        .take(2)
        .map(|m| m.insight.title.as_str())
        .collect();
    assert!((1..=2).contains(&related.len()), "up to two: {related:?}");
    assert_eq!(related, expected_related);
    assert!(!related.contains(&best.title.as_str()));

    // private:true is the same answer, seen only by the asker.
    let callback = ask(&fake, &advice(question, Some(true)).build()).await;
    let message = callback_message(&callback, 4);
    assert!(
        is_ephemeral(&message),
        "private:true sets flag 64: {message:#}"
    );
    assert_eq!(only_embed(&message)["title"], best.title.as_str());
    assert_no_pings(&message);
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_off_topic_says_no_close_match_and_offers_a_random_insight() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let callback = ask(
        &fake,
        &advice("Recommend a movie for tonight", None).build(),
    )
    .await;
    let message = public_reply(&callback);
    let content = message["content"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(content.contains("no close match"), "{content}");
    let embed = only_embed(&message);
    insight_titled(&embed["title"]);
    let label = format!("{} {}", embed["author"]["name"], content).to_lowercase();
    assert!(label.contains("random"), "labelled as random: {message:#}");
    assert!(embed["fields"].is_null(), "no related insights: {embed:#}");
    stop_bot(&fake, bot).await;
}

/// A leadership question on a topic the shipped library has no insight on (impostor feelings).
const WEAK_QUESTION: &str =
    "I feel like an impostor since I became a team lead, how do I deal with it?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_on_a_topic_no_insight_covers_shows_the_closest_as_possibly_not_fitting() {
    use insight_bot::insights::search::Confidence;
    // The premise, from the same collection the bot serves: this question is weak.
    let catalog = catalog();
    let expected = catalog.ask(WEAK_QUESTION, 3).expect("a question");
    assert_eq!(
        expected.confidence,
        Confidence::Weak,
        "{:?}",
        expected.explanation
    );
    let closest = expected.best().expect("the closest insight").insight;

    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let callback = ask(&fake, &advice(WEAK_QUESTION, None).build()).await;
    let message = public_reply(&callback);
    let content = message["content"].as_str().unwrap_or_default();
    assert!(
        content.contains("This is the closest insight I have, and it may not fit."),
        "{content}"
    );
    assert!(
        content.contains("`/suggest`"),
        "invites a suggestion: {content}"
    );
    let embed = only_embed(&message);
    assert_eq!(embed["title"], closest.title.as_str());
    assert_eq!(embed["author"]["name"], "Closest match (may not fit)");

    // A question in another language: English only, no random insight.
    let callback = ask(
        &fake,
        &advice("¿Cómo puedo dar feedback a mi equipo?", None).build(),
    )
    .await;
    let message = public_reply(&callback);
    let content = message["content"].as_str().unwrap_or_default();
    assert!(content.contains("English only for now"), "{content}");
    assert!(
        message["embeds"].as_array().is_none_or(|e| e.is_empty()),
        "{message:#}"
    );
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_never_pings_and_keeps_long_questions_within_limits() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;

    let question = "@everyone @here <@123> <@!123> <@&456> how do I delegate to my team?";
    let callback = ask(&fake, &advice(question, None).build()).await;
    let message = public_reply(&callback);
    let text = text_outside_allowed_mentions(&message);
    for mention in ["@everyone", "@here", "<@123>", "<@!123>", "<@&456>"] {
        assert!(!text.contains(mention), "{mention:?} is sent as is: {text}");
    }
    assert_eq!(message["allowed_mentions"]["parse"], json!([]));

    // Discord's client sends at most 1000 characters (the option's max_length): one more is
    // refused before it reaches the bot.
    let piece = "**how** do I `delegate` _when_ ||I|| ~~do~~ not > trust # the [team] @everyone? ";
    let longest: String = piece
        .repeat(1000 / piece.len() + 1)
        .chars()
        .take(1000)
        .collect();
    let too_long = format!("{longest}x");
    assert!(
        fake.try_dispatch("INTERACTION_CREATE", advice(&too_long, None).build())
            .await
            .is_err(),
        "Discord's client would not send 1001 characters"
    );
    // 1000 characters, nearly all markdown to escape: the echoed line stays within its
    // 200-character cut after escaping, and the answer within Discord's limits.
    // Embedding a long question may take long enough that the bot defers and answers after.
    let long_question = advice(&longest, None).build();
    fake.dispatch("INTERACTION_CREATE", long_question.clone())
        .await;
    let message = answer_message(&fake, &long_question).await;
    assert!(
        !is_ephemeral(&message),
        "expected a public reply: {message:#}"
    );
    assert_no_pings(&message);
    let content = message["content"].as_str().unwrap_or_default();
    let echoed = content.lines().next().unwrap_or_default();
    assert!(
        echoed.trim_start_matches("> ").chars().count() <= 200,
        "the echoed question is {} characters: {echoed}",
        echoed.chars().count()
    );
    assert!(!echoed.contains("@everyone"), "{echoed}");
    assert!(
        content.chars().count() <= 2000,
        "{} characters",
        content.chars().count()
    );
    assert!(embed_chars(&message) <= 6000, "{message:#}");
    insight_titled(&only_embed(&message)["title"]);
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insight_shows_a_random_insight_with_another_one_button() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let lib = library();

    let callback = ask(&fake, &slash_command("insight", vec![]).build()).await;
    let message = public_reply(&callback);
    let embed = only_embed(&message);
    let shown = insight_titled(&embed["title"]);
    assert_eq!(embed["description"], shown.text.as_str());
    assert!(
        embed["author"]["name"]
            .as_str()
            .unwrap_or_default()
            .contains("Random"),
        "{embed:#}"
    );
    let button = &message["components"][0]["components"][0];
    assert_eq!(
        (button["type"].as_u64(), button["label"].as_str()),
        (Some(2), Some("Another one"))
    );
    assert_eq!(button_ids(&message), [format!("another::{}", shown.id)]);

    let callback = ask(
        &fake,
        &slash_command("insight", vec![opt_string("topic", "ai")]).build(),
    )
    .await;
    let message = public_reply(&callback);
    let embed = only_embed(&message);
    let shown = insight_titled(&embed["title"]);
    assert!(
        shown.topics.iter().any(|t| t == "ai"),
        "{} is not on ai",
        shown.id
    );
    assert!(
        embed["author"]["name"]
            .as_str()
            .unwrap_or_default()
            .ends_with("on ai"),
        "{embed:#}"
    );
    assert_eq!(button_ids(&message), [format!("another:ai:{}", shown.id)]);

    // Topics are matched whatever their case and spacing.
    let callback = ask(
        &fake,
        &slash_command("insight", vec![opt_string("topic", "  AI ")]).build(),
    )
    .await;
    assert!(button_ids(&public_reply(&callback))[0].starts_with("another:ai:"));

    let callback = ask(
        &fake,
        &slash_command("insight", vec![opt_string("topic", "astrology")]).build(),
    )
    .await;
    let message = callback_message(&callback, 4);
    assert!(
        is_ephemeral(&message),
        "an unknown topic is a private hint: {message:#}"
    );
    assert_no_pings(&message);
    let content = message["content"].as_str().unwrap_or_default();
    assert!(
        content.contains("astrology") && content.contains("/topics"),
        "{content}"
    );
    assert!(lib.topics().count() > 0);
    stop_bot(&fake, bot).await;
}

/// The autocomplete choices the bot offers for `/insight topic:` after typing `typed`.
async fn topic_choices(fake: &FakeDiscord, typed: &str) -> Vec<(String, String)> {
    let interaction = autocomplete("insight", vec![opt_focused("topic", typed)]).build();
    let callback = ask(fake, &interaction).await;
    let data = callback_message(&callback, 8);
    let choices = data["choices"].as_array().expect("choices");
    assert!(choices.len() <= 25, "at most 25 choices: {}", choices.len());
    choices
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("name").to_string();
            let value = c["value"].as_str().expect("a string value").to_string();
            assert!((1..=100).contains(&name.chars().count()), "{name:?}");
            assert!((1..=100).contains(&value.chars().count()), "{value:?}");
            (name, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insight_topic_autocomplete_offers_matching_topics() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let lib = library();

    let choices = topic_choices(&fake, "ca").await;
    assert!(!choices.is_empty());
    for (name, value) in &choices {
        assert!(
            name.contains("ca") && value.contains("ca"),
            "{name:?} / {value:?}"
        );
        assert!(lib.has_topic(value), "{value:?} is not a topic");
    }
    let offered: BTreeSet<&str> = choices.iter().map(|(_, v)| v.as_str()).collect();
    let expected: BTreeSet<&str> = lib
        .topics()
        .map(|(t, _)| t)
        .filter(|t| t.contains("ca"))
        .collect();
    assert_eq!(offered, expected);

    let choices = topic_choices(&fake, "").await;
    let all: Vec<&str> = lib.topics().map(|(t, _)| t).collect();
    assert_eq!(choices.len(), all.len().min(25), "{choices:?}");
    let offered: BTreeSet<&str> = choices.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(offered, all.iter().copied().take(25).collect());

    assert!(topic_choices(&fake, "zzz-no-such-topic").await.is_empty());
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_one_replaces_the_insight_with_a_different_one_on_the_same_topic() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let lib = library();
    let topic = "growth";
    assert!(
        lib.topics().any(|(t, n)| t == topic && n >= 2),
        "the test needs a topic with two insights or more"
    );

    let first = slash_command("insight", vec![opt_string("topic", topic)]).build();
    public_reply(&ask(&fake, &first).await);
    let mut message = fake
        .original_response(&first)
        .expect("the /insight reply is the interaction's original message");
    for click in 1..=5 {
        let custom_id = button_ids(&message).pop().expect("a button");
        let shown = custom_id.rsplit(':').next().unwrap().to_string();
        let interaction = button_click(&custom_id, message.clone()).build();
        let callback = ask(&fake, &interaction).await;
        let update = callback_message(&callback, 7);
        assert_no_pings(&update);
        let embed = only_embed(&update);
        let now = insight_titled(&embed["title"]);
        assert_ne!(now.id, shown, "click {click} showed the same insight again");
        assert!(
            now.topics.iter().any(|t| t == topic),
            "click {click}: {} is not on {topic}",
            now.id
        );
        assert_eq!(button_ids(&update), [format!("another:{topic}:{}", now.id)]);
        assert!(
            embed["author"]["name"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!("on {topic}")),
            "{embed:#}"
        );
        message = fake
            .original_response(&interaction)
            .expect("the message the button updated");
    }

    // A button the bot does not know (or no longer knows) gets a private answer, not silence.
    let stray = payloads_message_by_bot();
    for custom_id in ["vote:yes", "another"] {
        let callback = ask(&fake, &button_click(custom_id, stray.clone()).build()).await;
        let reply = callback_message(&callback, 4);
        assert!(is_ephemeral(&reply), "{custom_id}: {reply:#}");
        assert!(
            reply["content"]
                .as_str()
                .unwrap_or_default()
                .contains("/insight"),
            "{custom_id}: {reply:#}"
        );
        assert_no_pings(&reply);
    }
    stop_bot(&fake, bot).await;
}

/// A message by the bot in #general with no components, for stray button clicks.
fn payloads_message_by_bot() -> Value {
    message(
        next_snowflake(),
        GENERAL_CHANNEL_ID,
        Some(GUILD_ID),
        bot_user(),
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_lists_every_topic_with_its_count_and_help_is_private() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let lib = library();

    let callback = ask(&fake, &slash_command("topics", vec![]).build()).await;
    let message = public_reply(&callback);
    let embed = only_embed(&message);
    let listed = embed["description"].as_str().unwrap_or_default();
    for (topic, count) in lib.topics() {
        let line = listed
            .lines()
            .find(|l| l.contains(&format!("`{topic}`")))
            .unwrap_or_else(|| panic!("{topic} is not listed: {listed}"));
        assert!(
            line.contains(&format!(" {count} insight")),
            "{topic}: {line}"
        );
    }
    assert_eq!(listed.lines().count(), lib.topics().count());

    let callback = ask(&fake, &slash_command("help", vec![]).in_dm(alice()).build()).await;
    let message = callback_message(&callback, 4);
    assert!(is_ephemeral(&message), "/help is private: {message:#}");
    assert_no_pings(&message);
    let help = message.to_string();
    for mention in ["/advice", "/insight", "/topics", "DM"] {
        assert!(
            help.contains(mention),
            "/help does not mention {mention}: {message:#}"
        );
    }
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_work_in_the_bots_dms_too() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let interaction = slash_command(
        "advice",
        vec![opt_string("question", "How do I stop micromanaging?")],
    )
    .in_dm(alice())
    .build();
    let message = public_reply(&ask(&fake, &interaction).await);
    assert_eq!(
        only_embed(&message)["title"],
        library().get("trust-and-delegate").unwrap().title.as_str()
    );
    let interaction = slash_command("insight", vec![]).in_dm(alice()).build();
    let message = public_reply(&ask(&fake, &interaction).await);
    assert!(button_ids(&message)[0].starts_with("another:"));
    stop_bot(&fake, bot).await;
}

/// A server that never installed the bot.
const STRANGER_GUILD: u64 = 1_100_000_000_000_000_777;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_installed_commands_answer_privately_where_the_bot_is_not() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;
    let question = "How do I stop micromanaging?";
    let best = catalog().ask(question, 3).expect("a question").matches[0]
        .insight
        .title
        .clone();
    // In a server without the bot, through the asker's own install; and in a group DM.
    let places = [
        advice(question, None)
            .in_guild(STRANGER_GUILD, GENERAL_CHANNEL_ID, fresh_member())
            .user_installed(),
        advice(question, None).in_private_channel(1_100_000_000_000_000_888, fresh_user()),
    ];
    for place in places {
        let interaction = place.build();
        let callback = ask(&fake, &interaction).await;
        let message = callback_message(&callback, 4);
        assert!(
            is_ephemeral(&message),
            "only the asker sees it: {message:#}"
        );
        assert_no_pings(&message);
        assert_eq!(only_embed(&message)["title"], best.as_str(), "{message:#}");
    }
    // /insight and /topics too; /help says what it is.
    for command in ["insight", "topics", "help"] {
        let interaction = slash_command(command, vec![])
            .in_guild(STRANGER_GUILD, GENERAL_CHANNEL_ID, fresh_member())
            .user_installed()
            .build();
        let message = callback_message(&ask(&fake, &interaction).await, 4);
        assert!(is_ephemeral(&message), "/{command}: {message:#}");
    }
    // In a server that installed the bot, answers stay public.
    let inside = advice(question, None).build();
    public_reply(&ask(&fake, &inside).await);
    stop_bot(&fake, bot).await;
}
