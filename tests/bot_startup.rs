//! End-to-end tests of the bot's start-up against the fake Discord: the token is checked with one
//! REST call before anything connects (a rejected token is a clear `RejectedToken` error that
//! names DISCORD_TOKEN and never shows the token), the gateway IDENTIFY asks only for unprivileged
//! intents, and the slash commands are registered once, globally or in one development server,
//! with the options, the server, bot-DM and private-channel contexts and both install types
//! (server and user) the issues ask for.
//! The last test proves that CI validates every body against Discord's OpenAPI spec.

mod support;

use serde_json::{json, Value};
use support::bot::*;
use support::payloads::*;
use support::{FakeDiscord, REJECTED_TOKEN, TOKEN, WAIT};

/// The four everyday commands, in registration order.
const EVERYDAY: [&str; 4] = ["advice", "insight", "topics", "help"];

/// The registration `PUT` the bot made to `route`, as a list of commands.
async fn registration(fake: &FakeDiscord, route: &str) -> Vec<Value> {
    let put = fake
        .wait_for_request(&format!("PUT {route}"), WAIT, |r| r.is("PUT", route))
        .await;
    assert_eq!(
        put.authorization.as_deref(),
        Some(format!("Bot {TOKEN}").as_str()),
        "the bot authenticates REST calls with its token"
    );
    put.json()
        .as_array()
        .unwrap_or_else(|| panic!("the registration body is not a list: {}", put.body_text()))
        .clone()
}

fn command<'a>(commands: &'a [Value], name: &str) -> &'a Value {
    commands
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("/{name} is not registered: {commands:#?}"))
}

fn option<'a>(command: &'a Value, name: &str) -> &'a Value {
    command["options"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("/{} has no option {name}: {command:#}", command["name"]))
}

/// Checks the four everyday commands: names, descriptions, options, contexts, install type.
fn check_everyday_commands(commands: &[Value]) {
    let names: Vec<&str> = commands.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        &names[..4],
        EVERYDAY,
        "the everyday commands come first, in order"
    );
    for name in EVERYDAY {
        let c = command(commands, name);
        assert!(c["type"].is_null() || c["type"] == 1, "/{name}: {c:#}");
        let description = c["description"].as_str().unwrap_or_default();
        assert!(
            (1..=100).contains(&description.chars().count()),
            "/{name} needs a description of 1..=100 characters: {c:#}"
        );
        let contexts = c["contexts"]
            .as_array()
            .unwrap_or_else(|| panic!("/{name} has no contexts: {c:#}"));
        for (context, what) in [
            (0, "servers (0)"),
            (1, "the bot's DMs (1)"),
            (2, "group DMs and other DMs, through a user install (2)"),
        ] {
            assert!(
                contexts.contains(&json!(context)),
                "/{name} must be usable in {what}: {c:#}"
            );
        }
        assert_eq!(
            c["integration_types"],
            json!([0, 1]),
            "/{name}: installable to a server and to a user: {c:#}"
        );
    }

    // The server's own commands stay with the server's install.
    for name in ["weekly", "insights", "suggest"] {
        let c = command(commands, name);
        assert_eq!(c["integration_types"], json!([0]), "/{name}: {c:#}");
        assert_eq!(c["contexts"], json!([0]), "/{name}: {c:#}");
    }

    let advice = command(commands, "advice");
    let question = option(advice, "question");
    assert_eq!(question["type"], 3, "a string: {question}");
    assert_eq!(question["required"], true, "{question}");
    assert_eq!(question["max_length"], 1000, "{question}");
    let private = option(advice, "private");
    assert_eq!(private["type"], 5, "a boolean: {private}");
    assert_ne!(private["required"], true, "optional: {private}");

    let insight = command(commands, "insight");
    let topic = option(insight, "topic");
    assert_eq!(topic["type"], 3, "a string: {topic}");
    assert_ne!(topic["required"], true, "optional: {topic}");
    assert_eq!(topic["autocomplete"], true, "{topic}");

    for name in ["topics", "help"] {
        let c = command(commands, name);
        assert!(
            c["options"].as_array().is_none_or(Vec::is_empty),
            "/{name} takes no options: {c:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_the_commands_globally_for_servers_and_dms() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot(&fake).await;

    // The token was checked first, with one REST call, before the gateway was used.
    let requests = fake.requests();
    assert!(
        requests[0].is("GET", "/users/@me") && requests[0].status == 200,
        "the first call checks the token: {}",
        requests[0].describe()
    );
    let identify = &fake.identify_payloads()[0];
    assert_eq!(identify["token"], format!("Bot {TOKEN}"));
    // GUILDS (1 << 0) and DIRECT_MESSAGES (1 << 12), nothing privileged (MESSAGE_CONTENT 1 << 15).
    assert_eq!(identify["intents"], (1 << 0) | (1 << 12), "{identify:#}");

    let commands = registration(&fake, &format!("/applications/{APP_ID}/commands")).await;
    check_everyday_commands(&commands);
    assert_eq!(fake.registered_commands(None).len(), commands.len());
    let in_guild =
        fake.requests_matching(|r| r.is("PUT", &format!("/applications/{APP_ID}/guilds/")));
    assert!(
        in_guild.is_empty(),
        "no guild registration without DISCORD_GUILD_ID: {}",
        in_guild[0].describe()
    );
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_the_commands_in_the_development_server_when_a_guild_id_is_set() {
    let fake = FakeDiscord::start().await;
    let bot = start_bot_with(&fake, Some(GUILD_ID)).await;
    let route = format!("/applications/{APP_ID}/guilds/{GUILD_ID}/commands");
    let commands = registration(&fake, &route).await;
    check_everyday_commands(&commands);
    assert_eq!(
        fake.registered_commands(Some(GUILD_ID)).len(),
        commands.len()
    );
    let global =
        fake.requests_matching(|r| r.is("PUT", &format!("/applications/{APP_ID}/commands")));
    assert!(
        global.is_empty(),
        "no global registration with DISCORD_GUILD_ID: {}",
        global[0].describe()
    );
    assert!(fake.registered_commands(None).is_empty());
    stop_bot(&fake, bot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_a_clear_error_that_never_shows_the_token() {
    let fake = FakeDiscord::start().await;
    let error = start_error(&fake, REJECTED_TOKEN).await;
    assert!(
        matches!(error, insight_bot::bot::BotError::RejectedToken),
        "expected BotError::RejectedToken, got {error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("DISCORD_TOKEN"), "{text}");
    for shown in [text.as_str(), &format!("{error:?}")] {
        assert!(
            !shown.contains(REJECTED_TOKEN) && !shown.contains("wrong.fake"),
            "the error shows the token: {shown}"
        );
    }
    // One call, refused; nothing connected or registered afterwards.
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        1,
        "only the token check: {:#?}",
        requests.iter().map(|r| r.describe()).collect::<Vec<_>>()
    );
    assert!(requests[0].is("GET", "/users/@me") && requests[0].status == 401);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bot {REJECTED_TOKEN}").as_str())
    );
    assert_eq!(fake.gateway_stats().connections, 0, "no gateway connection");
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_is_validated_against_the_openapi_spec() {
    // Always on, in every `cargo test`, with the copy in tests/data (or DISCORD_OPENAPI_SPEC).
    // (That the validator rejects bad bodies is proven by `openapi_rejects_bad_bodies` and
    // `invalid_bodies_are_recorded` in tests/fake_discord_selftest.rs.)
    let fake = FakeDiscord::start().await;
    assert!(fake.validates_bodies(), "the fake must validate every body");
    // The bot's own bodies are matched to the spec's operations and checked.
    let bot = start_bot(&fake).await;
    let put = fake
        .wait_for_request("the registration PUT", WAIT, |r| {
            r.is("PUT", "/applications/")
        })
        .await;
    assert_eq!(
        put.operation.as_deref(),
        Some("PUT /applications/{application_id}/commands"),
        "{}",
        put.describe()
    );
    let interaction = advice("How do I give feedback to a senior engineer?", None).build();
    let callback = ask(&fake, &interaction).await;
    assert_eq!(
        callback.operation.as_deref(),
        Some("POST /interactions/{interaction_id}/{interaction_token}/callback"),
        "{}",
        callback.describe()
    );
    assert!(callback.problem.is_none(), "{:?}", callback.problem);
    stop_bot(&fake, bot).await;
}
