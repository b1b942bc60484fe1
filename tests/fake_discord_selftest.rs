//! Self-tests of the end-to-end test support (`tests/support/`): the payload helpers deserialize
//! into serenity's models (serenity silently drops a dispatch that does not), the OpenAPI
//! validator accepts good bodies and rejects bad ones (with only the permission-string and
//! upload-placeholder deviations relaxed) and checks answers against the response schemas, the
//! fake's REST answers are accepted by serenity's `Http`, faults are injected as asked, an unknown
//! token is refused (401 on REST, close 4004 on IDENTIFY), and the real serenity + poise client
//! runs against the fake: READY, command registration, slash commands, options, autocomplete,
//! DMs, a gateway close with RESUME, and a failed callback that does not stop the next
//! interaction. Gateway sharding: two serenity processes on shards 0 and 1 of 2 (and
//! one autosharded process) each get only their shard's guilds, interactions and messages, DMs go
//! to shard 0, a RESUME replays only its own shard's missed dispatches, and a dispatch for a shard
//! nobody runs is refused with the reason. Modals (opened, validated, submitted, refused as a
//! MODAL_SUBMIT's answer), component and modal updates of a stored message, attachment options
//! downloaded from the fake's CDN, files sent by serenity recorded byte for byte and attached to
//! the stored messages, stable DM channels and closed DMs (403 50007). Threads started from a
//! message (same id, once per message, with Create Public Threads), forum posts (a thread whose
//! starter message has its id), active threads, and the mentions a message actually makes; the
//! raw answers of those routes match the spec's response schemas.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use poise::serenity_prelude as serenity;
use serde_json::{json, Value};
use serenity::model::application::{
    CommandDataOptionValue, Interaction, InteractionContext, ResolvedValue,
};
use support::payloads::{self, *};
use support::{FakeDiscord, OpenApiSpec, WAIT};

// -------------------------------------------------------------------------------------------
// Payload helpers deserialize into serenity's models

fn interaction(v: &Value) -> Interaction {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not an Interaction: {e}\n{v:#}"))
}

fn dispatch_ok(event: &str, data: &Value) {
    if let Err(e) = support::check_dispatch(event, data) {
        panic!("{event} would be dropped by serenity: {e}\n{data:#}");
    }
}

#[test]
fn guild_slash_command_deserializes_with_member_permissions() {
    let v = slash_command("ping", vec![])
        .member_permissions(MEMBER_PERMISSIONS | MANAGE_GUILD)
        .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Command(c) = interaction(&v) else {
        panic!("not a command")
    };
    assert_eq!(c.data.name, "ping");
    assert_eq!(c.guild_id.map(|g| g.get()), Some(GUILD_ID));
    assert_eq!(c.channel_id.get(), GENERAL_CHANNEL_ID);
    let member = c.member.as_ref().expect("member");
    assert_eq!(member.user.id.get(), USER_ID);
    assert_eq!(
        c.user.id.get(),
        USER_ID,
        "serenity copies member.user into user"
    );
    assert!(member.permissions.expect("permissions").manage_guild());
    assert!(c.app_permissions.expect("app permissions").send_messages());
    assert_eq!(c.context, Some(InteractionContext::Guild));
    assert_ne!(
        slash_command("ping", vec![]).build()["id"],
        v["id"],
        "each build gets a fresh id"
    );
}

#[test]
fn dm_slash_commands_deserialize_with_user_and_context() {
    let v = slash_command("ping", vec![]).in_dm(alice()).build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Command(c) = interaction(&v) else {
        panic!("not a command")
    };
    assert!(c.guild_id.is_none() && c.member.is_none());
    assert_eq!(c.user.id.get(), USER_ID);
    assert_eq!(c.channel_id.get(), DM_CHANNEL_ID);
    assert_eq!(c.context, Some(InteractionContext::BotDm));

    let v = slash_command("ping", vec![])
        .in_private_channel(42, alice())
        .build();
    let Interaction::Command(c) = interaction(&v) else {
        panic!("not a command")
    };
    assert_eq!(c.context, Some(InteractionContext::PrivateChannel));
    assert_eq!(c.channel_id.get(), 42);
}

#[test]
fn options_subcommands_and_groups_deserialize_and_resolve() {
    let v = slash_command(
        "weekly",
        vec![opt_subcommand(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                opt_string("day", "monday"),
                opt_bool("enabled", true),
                opt_int("hour", 9),
            ],
        )],
    )
    .by_admin()
    .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Command(c) = interaction(&v) else {
        panic!("not a command")
    };
    assert!(c
        .member
        .as_ref()
        .unwrap()
        .permissions
        .unwrap()
        .administrator());
    let options = c.data.options();
    let ResolvedValue::SubCommand(sub) = &options[0].value else {
        panic!("{options:?}")
    };
    assert_eq!(options[0].name, "set");
    let ResolvedValue::Channel(channel) = &sub[0].value else {
        panic!("channel unresolved: {sub:?}")
    };
    assert_eq!(channel.id.get(), WEEKLY_CHANNEL_ID);
    assert_eq!(channel.name.as_deref(), Some("weekly"));
    assert!(matches!(sub[1].value, ResolvedValue::String("monday")));
    assert!(matches!(sub[2].value, ResolvedValue::Boolean(true)));
    assert!(matches!(sub[3].value, ResolvedValue::Integer(9)));

    let v = slash_command(
        "admin",
        vec![opt_group("weekly", vec![opt_subcommand("clear", vec![])])],
    )
    .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Command(c) = interaction(&v) else {
        panic!("not a command")
    };
    let CommandDataOptionValue::SubCommandGroup(subs) = &c.data.options[0].value else {
        panic!()
    };
    assert_eq!(subs[0].name, "clear");
}

#[test]
fn autocomplete_deserializes_with_the_focused_option() {
    let v = autocomplete(
        "advice",
        vec![opt_focused("topic", "dele"), opt_bool("public", false)],
    )
    .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Autocomplete(c) = interaction(&v) else {
        panic!("not autocomplete")
    };
    let focused = c.data.autocomplete().expect("focused option");
    assert_eq!((focused.name, focused.value), ("topic", "dele"));
}

#[test]
fn button_click_deserializes_with_its_message() {
    let msg = payloads::message(
        next_snowflake(),
        GENERAL_CHANNEL_ID,
        Some(GUILD_ID),
        bot_user(),
        "an insight",
    );
    let v = button_click("another", msg).build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Component(c) = interaction(&v) else {
        panic!("not a component")
    };
    assert_eq!(c.data.custom_id, "another");
    assert_eq!(c.message.content, "an insight");
    assert!(c.message.author.bot);
    let v = button_click(
        "x",
        payloads::message(1, DM_CHANNEL_ID, None, bot_user(), ""),
    )
    .in_dm(alice())
    .build();
    let Interaction::Component(c) = interaction(&v) else {
        panic!("not a component")
    };
    assert_eq!(c.user.id.get(), USER_ID);
}

#[test]
fn modal_submits_deserialize_with_their_values() {
    let v = modal_submit(
        "suggest",
        &[("text", "Praise in public."), ("source", "a book")],
    )
    .by_admin()
    .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Modal(m) = interaction(&v) else {
        panic!("not a modal submit: {v:#}")
    };
    assert_eq!(m.data.custom_id, "suggest");
    let values: Vec<(String, Option<String>)> = m
        .data
        .components
        .iter()
        .flat_map(|row| &row.components)
        .map(|c| match c {
            serenity::ActionRowComponent::InputText(t) => (t.custom_id.clone(), t.value.clone()),
            other => panic!("not a text input: {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        [
            ("text".to_string(), Some("Praise in public.".to_string())),
            ("source".to_string(), Some("a book".to_string()))
        ]
    );
    assert_eq!(m.data.components.len(), 2, "one action row per text input");
    assert!(m.member.unwrap().permissions.unwrap().administrator());
    assert!(m.message.is_none());

    // From a DM, and from a message component (the modal's message comes along).
    let message = payloads::message(1, DM_CHANNEL_ID, None, bot_user(), "review");
    let v = modal_submit("edit", &[("text", "")])
        .in_dm(alice())
        .with_message(message)
        .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Modal(m) = interaction(&v) else {
        panic!("not a modal submit")
    };
    assert!(m.guild_id.is_none());
    assert_eq!(m.user.id.get(), USER_ID);
    assert_eq!(m.message.expect("message").content, "review");
}

#[test]
fn attachment_options_resolve_to_serenitys_attachment() {
    let file = payloads::attachment(
        next_snowflake(),
        "insights.toml",
        Some("application/toml"),
        12,
        "http://127.0.0.1:1/attachments/1/2/insights.toml",
    );
    let v = slash_command(
        "collection",
        vec![opt_subcommand(
            "import",
            vec![opt_attachment("file", id_of(&file))],
        )],
    )
    .by_admin()
    .resolved_attachment(file.clone())
    .build();
    dispatch_ok("INTERACTION_CREATE", &v);
    let Interaction::Command(c) = interaction(&v) else {
        panic!("not a command")
    };
    let options = c.data.options();
    let ResolvedValue::SubCommand(sub) = &options[0].value else {
        panic!("{options:?}")
    };
    let ResolvedValue::Attachment(a) = sub[0].value else {
        panic!("attachment unresolved: {sub:?}")
    };
    assert_eq!(a.id.get(), id_of(&file));
    assert_eq!(
        (a.filename.as_str(), a.size, a.content_type.as_deref()),
        ("insights.toml", 12, Some("application/toml"))
    );
    assert_eq!(a.url, file["url"]);

    // An attachment option Discord could not have sent (nothing resolved) is refused.
    let unresolved = std::panic::catch_unwind(|| {
        slash_command("collection", vec![opt_attachment("file", 5)]).build()
    });
    assert!(unresolved.is_err());
}

#[test]
fn messages_deserialize_dm_and_guild() {
    let v = dm_message_create("how do I delegate?", alice());
    dispatch_ok("MESSAGE_CREATE", &v);
    let m: serenity::Message = serde_json::from_value(v).unwrap();
    assert!(m.guild_id.is_none() && !m.author.bot);
    assert_eq!(m.channel_id.get(), DM_CHANNEL_ID);
    assert_eq!(m.content, "how do I delegate?");

    let v = dm_message_create("beep", user(77, "other-bot", true));
    dispatch_ok("MESSAGE_CREATE", &v);
    let m: serenity::Message = serde_json::from_value(v).unwrap();
    assert!(m.author.bot);

    let v = guild_message_create(GENERAL_CHANNEL_ID, GUILD_ID, "hello", alice());
    dispatch_ok("MESSAGE_CREATE", &v);
    let m: serenity::Message = serde_json::from_value(v).unwrap();
    assert_eq!(m.guild_id.map(|g| g.get()), Some(GUILD_ID));
}

#[test]
fn guild_create_and_ready_deserialize() {
    let guild = TestGuild::default();
    let v = guild.guild_create();
    dispatch_ok("GUILD_CREATE", &v);
    let g: serenity::model::event::GuildCreateEvent = serde_json::from_value(v).unwrap();
    assert_eq!(g.guild.channels.len(), 3);
    assert_eq!(g.guild.roles.len(), 4);
    assert_eq!(g.guild.members.len(), 4);
    let weekly = &g.guild.channels[&serenity::ChannelId::new(WEEKLY_CHANNEL_ID)];
    assert_eq!(weekly.guild_id.get(), GUILD_ID);
    let ideas = &g.guild.channels[&serenity::ChannelId::new(FORUM_CHANNEL_ID)];
    assert_eq!(ideas.kind, serenity::ChannelType::Forum);
    assert_eq!(ideas.available_tags[0].id.get(), FORUM_TAG_ID);
    assert!(matches!(
        ideas.available_tags[0].emoji,
        Some(serenity::ForumEmoji::Name(_))
    ));
    let role = |id| &g.guild.roles[&serenity::RoleId::new(id)];
    assert!(role(PING_ROLE_ID).mentionable);
    assert!(!role(QUIET_ROLE_ID).mentionable);

    let v = payloads::ready("s", "ws://127.0.0.1:1/gateway", &[GUILD_ID], Some([0, 1]));
    dispatch_ok("READY", &v);
    let r: serenity::Ready = serde_json::from_value(v).unwrap();
    assert_eq!(r.application.id.get(), APP_ID);
    assert!(r.user.bot);
    assert_eq!(r.guilds.len(), 1);
}

#[test]
fn rest_objects_deserialize() {
    use serenity::model::prelude::*;
    let app: CurrentApplicationInfo = serde_json::from_value(application()).unwrap();
    assert_eq!(app.owner.expect("owner").id.get(), OWNER_ID);
    let me: CurrentUser = serde_json::from_value(bot_user()).unwrap();
    assert_eq!(me.id.get(), BOT_USER_ID);
    let guild = TestGuild::default();
    let g: PartialGuild = serde_json::from_value(guild.rest_guild()).unwrap();
    assert_eq!(g.owner_id.get(), OWNER_ID);
    let roles: Vec<Role> = serde_json::from_value(json!(guild.roles)).unwrap();
    assert!(roles[1].permissions.administrator());
    let m: Member = serde_json::from_value(guild.member(ADMIN_USER_ID).unwrap()).unwrap();
    assert_eq!(m.roles, vec![RoleId::new(ADMIN_ROLE_ID)]);
    let channel = with_overwrite(
        guild.channel(WEEKLY_CHANNEL_ID).unwrap(),
        EVERYONE_ROLE_ID,
        0,
        0,
        SEND_MESSAGES,
    );
    let Channel::Guild(c) = serde_json::from_value(channel).unwrap() else {
        panic!("not a guild channel")
    };
    assert!(c.permission_overwrites[0].deny.send_messages());
    let Channel::Private(dm) = serde_json::from_value(dm_channel(DM_CHANNEL_ID, alice())).unwrap()
    else {
        panic!("not a DM channel")
    };
    assert_eq!(dm.recipient.id.get(), USER_ID);
}

#[test]
fn check_dispatch_rejects_what_serenity_would_drop() {
    let mut v = slash_command("ping", vec![]).build();
    v.as_object_mut().unwrap().remove("attachment_size_limit");
    let e = support::check_dispatch("INTERACTION_CREATE", &v).unwrap_err();
    assert!(e.contains("attachment_size_limit"), "{e}");
    assert!(support::check_dispatch("INTERACTION_CRAETE", &json!({})).is_err());
}

// -------------------------------------------------------------------------------------------
// The OpenAPI validator

fn spec() -> Arc<OpenApiSpec> {
    OpenApiSpec::from_env()
}

const MESSAGES: &str = "/api/v10/channels/1100000000000000110/messages";
const COMMANDS: &str = "/api/v10/applications/1100000000000000001/commands";

#[test]
fn openapi_accepts_a_good_message_body() {
    let spec = spec();
    let body = json!({
        "content": "Delegate outcomes, not tasks.",
        "embeds": [{
            "title": "Insight #3",
            "description": "Give the whole problem away.",
            "color": 0x5865F2,
            "url": "https://example.com/insights/3",
            "timestamp": "2024-01-01T09:00:00.000Z",
            "footer": {"text": "insight-bot"},
            "fields": [{"name": "Topic", "value": "delegation", "inline": true}],
        }],
        "allowed_mentions": {"parse": []},
        "nonce": "123",
    });
    assert_eq!(
        spec.check("POST", MESSAGES, Some(&body)),
        Ok("POST /channels/{channel_id}/messages".into())
    );
}

#[test]
fn openapi_accepts_what_serenity_builders_send() {
    let spec = spec();
    let embed = serenity::CreateEmbed::new()
        .title("t")
        .description("d")
        .field("n", "v", false);
    let message = serenity::CreateMessage::new()
        .content("hi")
        .embed(embed.clone())
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    spec.check(
        "POST",
        MESSAGES,
        Some(&serde_json::to_value(&message).unwrap()),
    )
    .unwrap();
    let reply = serenity::CreateInteractionResponse::Message(
        serenity::CreateInteractionResponseMessage::new()
            .content("pong")
            .embed(embed)
            .ephemeral(true),
    );
    let callback = "/api/v10/interactions/1/tok/callback";
    spec.check(
        "POST",
        callback,
        Some(&serde_json::to_value(&reply).unwrap()),
    )
    .unwrap();
    let choices = serenity::CreateInteractionResponse::Autocomplete(
        serenity::CreateAutocompleteResponse::new().add_string_choice("delegation", "delegation"),
    );
    spec.check(
        "POST",
        callback,
        Some(&serde_json::to_value(&choices).unwrap()),
    )
    .unwrap();
    let command = serenity::CreateCommand::new("weekly")
        .description("Weekly insight")
        .default_member_permissions(serenity::Permissions::MANAGE_GUILD);
    let body = serde_json::to_value(vec![command]).unwrap();
    assert_eq!(
        body[0]["default_member_permissions"], "32",
        "serenity sends a digit string"
    );
    spec.check("PUT", COMMANDS, Some(&body)).unwrap();
}

#[test]
fn openapi_rejects_bad_bodies() {
    let spec = spec();
    for bad in [
        json!({"content": 5}),
        json!({"embeds": [{"title": 7}]}),
        json!({"allowed_mentions": {"parse": ["everybody"]}}),
        json!({"embeds": [{"url": "not a url"}]}),
        json!(["not", "an", "object"]),
    ] {
        let err = spec
            .check("POST", MESSAGES, Some(&bad))
            .expect_err(&bad.to_string());
        assert!(
            err.contains("POST /channels/{channel_id}/messages"),
            "{err}"
        );
    }
    let bad_callback = json!({"type": 4, "data": {"content": 5}});
    assert!(spec
        .check(
            "POST",
            "/api/v10/interactions/1/t/callback",
            Some(&bad_callback)
        )
        .is_err());
    assert!(spec
        .check("POST", "/api/v10/no/such/route", Some(&json!({})))
        .is_err());
    assert!(
        spec.check("PUT", COMMANDS, None).is_err(),
        "the body is required"
    );
}

#[test]
fn openapi_accepts_permission_digit_strings_only() {
    let spec = spec();
    let command = |perms: Value| json!([{"name": "weekly", "description": "d", "default_member_permissions": perms}]);
    spec.check("PUT", COMMANDS, Some(&command(json!("32"))))
        .unwrap();
    spec.check("PUT", COMMANDS, Some(&command(json!(32))))
        .unwrap();
    spec.check("PUT", COMMANDS, Some(&command(Value::Null)))
        .unwrap();
    for bad in [
        json!("abc"),
        json!(""),
        json!("-1"),
        json!("3 2"),
        json!(true),
    ] {
        assert!(
            spec.check("PUT", COMMANDS, Some(&command(bad.clone())))
                .is_err(),
            "{bad} accepted"
        );
    }
    // Nothing else is relaxed: a digit string where the spec wants an integer is still wrong.
    assert!(spec
        .check("POST", MESSAGES, Some(&json!({"flags": "64"})))
        .is_err());
}

#[test]
fn openapi_accepts_integer_placeholders_of_uploaded_files_only() {
    use support::openapi::upload_placeholders_to_strings;
    let spec = spec();
    let body = json!({"content": "x", "attachments": [{"id": 0, "filename": "a.json"}]});
    // As JSON (no file uploaded) the integer id is still what the spec refuses...
    let err = spec.check("POST", MESSAGES, Some(&body)).unwrap_err();
    assert!(err.contains("at /attachments/0/id"), "{err}");
    // ...and with files[0] uploaded it is the placeholder Discord reads as "0".
    let mut uploaded = body.clone();
    upload_placeholders_to_strings(&mut uploaded, &[0]);
    assert_eq!(uploaded["attachments"][0]["id"], "0");
    spec.check("POST", MESSAGES, Some(&uploaded)).unwrap();
    // Only the placeholders of uploaded parts: files[1] does not make `"id": 0` valid.
    let mut other = body.clone();
    upload_placeholders_to_strings(&mut other, &[1]);
    assert!(spec.check("POST", MESSAGES, Some(&other)).is_err());
    // An interaction callback carries them under `data`.
    let mut callback = json!({"type": 4, "data": {"attachments": [{"id": 0}]}});
    upload_placeholders_to_strings(&mut callback, &[0]);
    assert_eq!(callback["data"]["attachments"][0]["id"], "0");
    spec.check(
        "POST",
        "/api/v10/interactions/1/t/callback",
        Some(&callback),
    )
    .unwrap();
}

#[test]
fn openapi_checks_answers_against_response_schemas() {
    let spec = spec();
    let path = "/api/v10/channels/5/messages/6/threads";
    let thread = thread_channel(6, GUILD_ID, 5, BOT_USER_ID, "talk", 11, 1440);
    assert_eq!(
        spec.check_response("POST", path, 201, &thread),
        Ok("POST /channels/{channel_id}/messages/{message_id}/threads -> 201".into())
    );
    let mut partial = thread.clone();
    partial.as_object_mut().unwrap().remove("thread_metadata");
    let e = spec
        .check_response("POST", path, 201, &partial)
        .unwrap_err();
    assert!(e.contains("thread_metadata"), "{e}");
    let error =
        json!({"message": "A thread has already been created for this message", "code": 160004});
    spec.check_response("POST", path, 400, &error).unwrap();
    assert!(spec
        .check_response("POST", path, 400, &json!({"code": "x"}))
        .is_err());
    assert!(
        spec.check_response("POST", path, 302, &error).is_err(),
        "not documented"
    );
    // The fake's messages and users have what the spec's MessageResponse and UserResponse
    // require.
    let history = json!([
        message(7, 5, None, bot_user(), "hello"),
        message(8, 5, None, alice(), "hi"),
    ]);
    spec.check_response("GET", "/api/v10/channels/5/messages", 200, &history)
        .unwrap();
}

#[test]
fn openapi_prefers_literal_path_segments() {
    let spec = spec();
    let op = spec.operation_name("PATCH", "/api/v10/webhooks/1/tok/messages/@original");
    assert_eq!(
        op.as_deref(),
        Some("PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original")
    );
    let op = spec.operation_name("GET", "/api/v10/channels/5/messages?&limit=3");
    assert_eq!(op.as_deref(), Some("GET /channels/{channel_id}/messages"));
}

// -------------------------------------------------------------------------------------------
// The fake's REST side, driven by serenity's Http

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_are_accepted_by_serenity() {
    use serenity::model::prelude::*;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    assert_eq!(http.get_gateway().await.unwrap().url, fake.ws_url());
    assert_eq!(http.get_bot_gateway().await.unwrap().shards, 1);
    assert_eq!(
        http.get_current_application_info().await.unwrap().id.get(),
        APP_ID
    );
    assert!(http.get_current_user().await.unwrap().bot);
    let Channel::Guild(general) = http
        .get_channel(ChannelId::new(GENERAL_CHANNEL_ID))
        .await
        .unwrap()
    else {
        panic!("guild channel expected")
    };
    assert_eq!(general.guild_id.get(), GUILD_ID);
    assert!(matches!(
        http.get_channel(ChannelId::new(DM_CHANNEL_ID))
            .await
            .unwrap(),
        Channel::Private(_)
    ));
    assert_eq!(
        http.get_guild(GuildId::new(GUILD_ID)).await.unwrap().name,
        "Test Guild"
    );
    assert_eq!(
        http.get_guild_roles(GuildId::new(GUILD_ID))
            .await
            .unwrap()
            .len(),
        4
    );
    let ada = http
        .get_member(GuildId::new(GUILD_ID), UserId::new(ADMIN_USER_ID))
        .await
        .unwrap();
    assert_eq!(ada.roles, vec![RoleId::new(ADMIN_ROLE_ID)]);

    // Commands are echoed with ids and listed afterwards.
    let commands = vec![serenity::CreateCommand::new("ping").description("Ping")];
    let echoed = http.create_global_commands(&commands).await.unwrap();
    assert_eq!(echoed[0].name, "ping");
    assert_eq!(fake.registered_commands(None).len(), 1);
    let echoed = GuildId::new(GUILD_ID)
        .set_commands(&http, commands)
        .await
        .unwrap();
    assert_eq!(echoed[0].guild_id.map(|g| g.get()), Some(GUILD_ID));

    // Messages: posted ones come back newest first, after the configured ones.
    let old = payloads::message(
        next_snowflake(),
        WEEKLY_CHANNEL_ID,
        Some(GUILD_ID),
        alice(),
        "older",
    );
    fake.add_message(old);
    let weekly = ChannelId::new(WEEKLY_CHANNEL_ID);
    let embed = serenity::CreateEmbed::new()
        .title("Insight")
        .description("text");
    let sent = weekly
        .send_message(
            &http,
            serenity::CreateMessage::new()
                .content("first")
                .embed(embed)
                .nonce(Nonce::String("n1".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        (sent.content.as_str(), sent.embeds[0].title.as_deref()),
        ("first", Some("Insight"))
    );
    assert!(sent.author.bot);
    weekly.say(&http, "second").await.unwrap();
    let history = http.get_messages(weekly, None, Some(2)).await.unwrap();
    let contents: Vec<_> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, ["second", "first"]);
    let all = http.get_messages(weekly, None, Some(50)).await.unwrap();
    assert_eq!(all.len(), 3);
    let req = fake
        .wait_for_request("GET messages", WAIT, |r| {
            r.is("GET", "/channels/") && r.path.ends_with("/messages")
        })
        .await;
    assert_eq!(
        req.query.as_deref(),
        Some("&limit=2"),
        "serenity's query style"
    );
    assert_eq!(req.query_param("limit").as_deref(), Some("2"));

    // A multipart message is recorded (and validated) through its payload_json, its file parts
    // kept. Serenity numbers new attachments with integer placeholder ids (`"id": 0`, as
    // Discord's own upload example does) where the spec types ids as snowflake strings: accepted
    // only for the index of a file actually uploaded (see `upload_placeholders_to_strings`).
    let file = serenity::CreateAttachment::bytes(b"hello".as_slice(), "hello.txt");
    weekly
        .send_files(
            &http,
            [file],
            serenity::CreateMessage::new().content("with a file"),
        )
        .await
        .unwrap();
    let req = fake
        .wait_for_request("the multipart POST", WAIT, |r| {
            r.body_text().contains("with a file")
        })
        .await;
    assert!(req.problem.is_none(), "{:?}", req.problem);
    assert!(req
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("multipart/form-data"));
    assert_eq!(req.json()["attachments"][0]["filename"], "hello.txt");
    assert_eq!(
        req.json()["attachments"][0]["id"],
        0,
        "serenity's placeholder"
    );
    assert_eq!(req.files.len(), 1);
    assert_eq!(
        (
            req.files[0].field_name.as_str(),
            req.files[0].bytes.as_slice()
        ),
        ("files[0]", b"hello".as_slice())
    );

    // Anything else: recorded, 404 with a Discord error body.
    let err = http
        .get_guild_webhooks(GuildId::new(GUILD_ID))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown"), "{err}");
    assert_eq!(fake.unhandled_requests().len(), 1);

    // Requests are recorded with their time and the operation of the spec.
    let requests = fake.requests();
    assert!(requests
        .windows(2)
        .all(|w| w[0].received_at <= w[1].received_at));
    let post = requests
        .iter()
        .find(|r| r.is("POST", "/channels/"))
        .unwrap();
    assert_eq!(
        post.operation.as_deref(),
        Some("POST /channels/{channel_id}/messages")
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_as_asked() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);

    fake.fail_next("POST", "/channels/", 1, 500);
    let err = general.say(&http, "a").await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    general
        .say(&http, "b")
        .await
        .expect("only the next one fails");

    fake.fail_next("*", "/channels/", 2, 403);
    for _ in 0..2 {
        let serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(e)) =
            general.say(&http, "c").await.unwrap_err()
        else {
            panic!("expected an HTTP error")
        };
        assert_eq!(
            (
                e.status_code.as_u16(),
                e.error.code,
                e.error.message.as_str()
            ),
            (403, 50013, "Missing Permissions")
        );
    }

    fake.delete_channel(WEEKLY_CHANNEL_ID);
    let err = serenity::ChannelId::new(WEEKLY_CHANNEL_ID)
        .say(&http, "gone")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown Channel"), "{err}");

    fake.delay_next("POST", "/channels/", 1, Duration::from_millis(300));
    let started = Instant::now();
    general.say(&http, "slow").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    // 429: retry_after in the body and in the headers (checked on the raw response).
    fake.rate_limit_next("GET", "/channels/", 1, Duration::from_millis(1500));
    let raw = raw_get(
        fake.addr(),
        &format!("/api/v10/channels/{GENERAL_CHANNEL_ID}"),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 429"), "{raw}");
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 2\r\n"), "{raw}");
    assert!(
        lower.contains("x-ratelimit-reset-after: 1.500\r\n"),
        "{raw}"
    );
    assert!(raw.contains("\"retry_after\":1.5"), "{raw}");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200, 403, 403, 404, 200, 429]);
}

/// A bare HTTP/1.1 GET, to see response headers serenity's `Http` does not expose.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_bodies_are_recorded() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);
    // Over Discord's 2000-character limit: a problem whether or not the spec is loaded.
    // (serenity's `say` refuses it before sending, so the raw body goes through `Http`.)
    let err = too_long(&fake).await.unwrap_err();
    assert!(err.to_string().contains("Invalid Form Body"), "{err}");
    let problems = fake.take_body_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("2001 characters (max 2000)"),
        "{problems:?}"
    );
    let _ = http
        .send_message(general, vec![], &json!({"content": 5}))
        .await;
    let problems = fake.take_body_problems();
    assert!(
        problems[0].contains("POST /channels/{channel_id}/messages"),
        "{problems:?}"
    );
    fake.assert_all_bodies_valid();
}

/// Posts a 2001-character message, one over Discord's limit.
async fn too_long(fake: &FakeDiscord) -> serenity::Result<serenity::Message> {
    let body = json!({"content": "x".repeat(2001)});
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);
    fake.http().send_message(general, vec![], &body).await
}

#[test]
#[should_panic(expected = "request bodies the real Discord would reject")]
fn dropping_the_fake_fails_on_unreported_invalid_bodies() {
    multi_thread().block_on(async {
        let fake = FakeDiscord::start().await;
        let _ = too_long(&fake).await;
        // No assertion here: dropping `fake` must fail the test.
    });
}

#[test]
#[should_panic(expected = "request bodies the real Discord would reject")]
fn waits_fail_fast_on_invalid_bodies() {
    multi_thread().block_on(async {
        let fake = FakeDiscord::start().await;
        let _ = too_long(&fake).await;
        fake.wait_for_request(
            "something that never comes",
            Duration::from_secs(30),
            |_| false,
        )
        .await;
    });
}

#[test]
#[should_panic(expected = "the reply to nothing never arrived")]
fn wait_timeouts_say_what_never_arrived() {
    multi_thread().block_on(async {
        let fake = FakeDiscord::start().await;
        fake.wait_for_request("the reply to nothing", Duration::from_millis(100), |_| true)
            .await;
    });
}

// -------------------------------------------------------------------------------------------
// The real serenity + poise client against the fake

type Error = Box<dyn std::error::Error + Send + Sync>;
type Ctx<'a> = poise::Context<'a, (), Error>;

/// Replies pong.
#[poise::command(slash_command)]
async fn ping(ctx: Ctx<'_>) -> Result<(), Error> {
    ctx.send(poise::CreateReply::default().content("pong"))
        .await?;
    Ok(())
}

/// Weekly insight settings.
#[poise::command(slash_command, subcommands("set"))]
async fn weekly(_ctx: Ctx<'_>) -> Result<(), Error> {
    Ok(())
}

/// Choose the channel.
#[poise::command(slash_command)]
async fn set(
    ctx: Ctx<'_>,
    #[description = "Where to post"] channel: serenity::GuildChannel,
    #[description = "On or off"] enabled: Option<bool>,
) -> Result<(), Error> {
    ctx.say(format!("weekly: #{} enabled={enabled:?}", channel.name))
        .await?;
    Ok(())
}

async fn topics(_ctx: Ctx<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let choices = ["delegation", "feedback", "hiring"]
        .into_iter()
        .filter(|t| t.starts_with(partial))
        .map(serenity::AutocompleteChoice::from)
        .collect();
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// Advice on a topic.
#[poise::command(slash_command)]
async fn advice(
    ctx: Ctx<'_>,
    #[description = "Topic"]
    #[autocomplete = "topics"]
    topic: String,
) -> Result<(), Error> {
    ctx.say(format!("advice on {topic}")).await?;
    Ok(())
}

async fn on_event(
    framework: poise::FrameworkContext<'_, (), Error>,
    event: &serenity::FullEvent,
) -> Result<(), Error> {
    if let serenity::FullEvent::Message { new_message } = event {
        if new_message.guild_id.is_none() && !new_message.author.bot {
            let reply = format!("you asked: {}", new_message.content);
            new_message
                .channel_id
                .say(framework.serenity_context, reply)
                .await?;
        }
    }
    Ok(())
}

/// Starts a poise bot (ping, weekly set, advice, DM echo) on the fake and waits until its
/// commands are registered, which is when poise starts handling events.
async fn start_bot(fake: &FakeDiscord) -> tokio::task::JoinHandle<()> {
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![ping(), weekly(), advice()],
            event_handler: |framework, event| Box::pin(on_event(framework, event)),
            ..Default::default()
        })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_globally(ctx, &framework.options().commands).await?;
                Ok(())
            })
        })
        .build();
    let http = serenity::HttpBuilder::new(support::TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let intents = serenity::GatewayIntents::non_privileged();
    let mut client = serenity::ClientBuilder::new_with_http(http, intents)
        .framework(framework)
        .await
        .expect("build the serenity client");
    let task = tokio::spawn(async move {
        client
            .start()
            .await
            .expect("the serenity client stopped with an error");
    });
    fake.wait_for_ready(WAIT).await;
    fake.wait_for_request("poise's GET /oauth2/applications/@me", WAIT, |r| {
        r.is("GET", "/oauth2/applications/@me")
    })
    .await;
    fake.wait_for_request("the global command registration PUT", WAIT, |r| {
        r.is("PUT", &format!("/applications/{APP_ID}/commands")) && r.status == 200
    })
    .await;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_identifies_registers_and_answers_a_slash_command() {
    let fake = FakeDiscord::start().await;
    let _bot = start_bot(&fake).await;
    let stats = fake.gateway_stats();
    assert_eq!(
        (stats.connections, stats.identifies, stats.resumes),
        (1, 1, 0)
    );
    let identify = &fake.identify_payloads()[0];
    // serenity sends the token with its "Bot " prefix.
    assert_eq!(identify["token"], format!("Bot {}", support::TOKEN));
    assert_eq!(
        identify["intents"],
        serenity::GatewayIntents::non_privileged().bits()
    );

    let put = fake
        .wait_for_request("the PUT", WAIT, |r| r.is("PUT", "/applications/"))
        .await;
    let names: Vec<&str> = put
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["ping", "weekly", "advice"]);
    assert_eq!(
        put.json()[1]["options"][0]["options"][0]["type"],
        7,
        "weekly set channel:"
    );

    let interaction = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    let callback = fake.wait_for_callback(&interaction, WAIT).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());
    assert_eq!(callback.json()["type"], 4);
    assert_eq!(callback.json()["data"]["content"], "pong");
    assert!(
        callback.problem.is_none() && callback.operation.is_some(),
        "{callback:?}"
    );
    assert_eq!(
        fake.original_response(&interaction).unwrap()["content"],
        "pong"
    );
    assert_eq!(
        fake.channel_messages(GENERAL_CHANNEL_ID)[0]["content"],
        "pong"
    );

    // Heartbeats arrive (one interval after IDENTIFY) and are acknowledged.
    fake.wait_for_gateway("a heartbeat", WAIT, |s| s.heartbeats >= 1)
        .await;
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_handles_options_autocomplete_and_dms() {
    let fake = FakeDiscord::start().await;
    let _bot = start_bot(&fake).await;

    let set = slash_command(
        "weekly",
        vec![opt_subcommand(
            "set",
            vec![
                opt_channel("channel", WEEKLY_CHANNEL_ID),
                opt_bool("enabled", true),
            ],
        )],
    )
    .by_admin()
    .build();
    fake.dispatch("INTERACTION_CREATE", set.clone()).await;
    let callback = fake.wait_for_callback(&set, WAIT).await;
    assert_eq!(
        callback.json()["data"]["content"],
        "weekly: #weekly enabled=Some(true)"
    );

    let complete = autocomplete("advice", vec![opt_focused("topic", "de")]).build();
    fake.dispatch("INTERACTION_CREATE", complete.clone()).await;
    let callback = fake.wait_for_callback(&complete, WAIT).await;
    assert_eq!(callback.json()["type"], 8);
    assert_eq!(
        callback.json()["data"]["choices"],
        json!([{"name": "delegation", "value": "delegation"}])
    );

    let in_dm = slash_command("ping", vec![]).in_dm(alice()).build();
    fake.dispatch("INTERACTION_CREATE", in_dm.clone()).await;
    assert_eq!(
        fake.wait_for_callback(&in_dm, WAIT).await.json()["data"]["content"],
        "pong"
    );

    let mark = fake.mark();
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message_create("how do I delegate?", alice()),
    )
    .await;
    let reply = fake
        .wait_for_channel_message_since(mark, DM_CHANNEL_ID, WAIT)
        .await;
    assert_eq!(reply.json()["content"], "you asked: how do I delegate?");

    let mark = fake.mark();
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message_create("beep", user(77, "other-bot", true)),
    )
    .await;
    fake.assert_no_request_since(
        mark,
        "reply to a bot's DM",
        Duration::from_millis(500),
        |r| r.is("POST", "/channels/"),
    )
    .await;
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_resumes_after_a_gateway_close() {
    let fake = FakeDiscord::start().await;
    let _bot = start_bot(&fake).await;
    let first = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", first.clone()).await;
    fake.wait_for_callback(&first, WAIT).await;

    fake.close_gateway(4000);
    let stats = fake
        .wait_for_gateway("a RESUME (or a new IDENTIFY) after close 4000", WAIT, |s| {
            s.resumed >= 1 || s.identifies >= 2
        })
        .await;
    assert_eq!(
        (stats.connections, stats.resumed, stats.identifies),
        (2, 1, 1),
        "serenity resumes"
    );
    fake.wait_for_ready(WAIT).await;

    let second = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", second.clone()).await;
    let callback = fake.wait_for_callback(&second, WAIT).await;
    assert_eq!(callback.json()["data"]["content"], "pong");
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_callback_does_not_stop_the_next_interaction() {
    let fake = FakeDiscord::start().await;
    let _bot = start_bot(&fake).await;
    fake.fail_next("POST", "/interactions/", 1, 500);
    let failed = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", failed.clone()).await;
    assert_eq!(fake.wait_for_callback(&failed, WAIT).await.status, 500);

    let next = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", next.clone()).await;
    let callback = fake.wait_for_callback(&next, WAIT).await;
    assert_eq!(callback.status, 204);
    assert_eq!(callback.json()["data"]["content"], "pong");
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interaction_rules_are_enforced() {
    let fake = FakeDiscord::builder()
        .interaction_deadline(Some(Duration::from_millis(1500)))
        .start()
        .await;
    let http = fake.http();
    let _bot = start_bot(&fake).await;
    // The bot answers in time; a second answer is refused as on Discord.
    let i = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", i.clone()).await;
    fake.wait_for_callback(&i, WAIT).await;
    let response = serenity::CreateInteractionResponse::Message(
        serenity::CreateInteractionResponseMessage::new().content("again"),
    );
    let id = serenity::InteractionId::new(i["id"].as_str().unwrap().parse().unwrap());
    let token = i["token"].as_str().unwrap();
    let err = http
        .create_interaction_response(id, token, &response, vec![])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("already been acknowledged"),
        "{err}"
    );
    // An edit of the original and a follow-up work after the callback.
    let edit = serenity::EditInteractionResponse::new().content("pong, edited");
    http.edit_original_interaction_response(token, &edit, vec![])
        .await
        .unwrap();
    assert_eq!(
        fake.original_response(&i).unwrap()["content"],
        "pong, edited"
    );
    let follow = serenity::CreateInteractionResponseFollowup::new()
        .content("more")
        .ephemeral(true);
    http.create_followup_message(token, &follow, vec![])
        .await
        .unwrap();
    assert_eq!(fake.followups(&i)[0]["content"], "more");
    assert_eq!(
        fake.channel_messages(GENERAL_CHANNEL_ID).len(),
        1,
        "ephemeral follow-ups are not in history"
    );
    // Unknown interactions and late answers are refused.
    let err = http
        .create_interaction_response(id, "wrong-token", &response, vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown interaction"), "{err}");
    // A command nobody registered is never sent by Discord's client.
    let unregistered = fake
        .try_dispatch(
            "INTERACTION_CREATE",
            slash_command("no-such-command", vec![]).build(),
        )
        .await;
    assert!(
        unregistered
            .as_ref()
            .is_err_and(|e| e.contains("no command /no-such-command")),
        "{unregistered:?}"
    );
    // A button click this bot does not handle stays unanswered; answering it late is refused.
    let message = fake.channel_messages(GENERAL_CHANNEL_ID)[0].clone();
    let unanswered = button_click("nobody-handles-this", message).build();
    fake.dispatch("INTERACTION_CREATE", unanswered.clone())
        .await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let late_id = serenity::InteractionId::new(unanswered["id"].as_str().unwrap().parse().unwrap());
    let err = http
        .create_interaction_response(
            late_id,
            unanswered["token"].as_str().unwrap(),
            &response,
            vec![],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unknown interaction"), "{err}");
    let late = fake.wait_for_callback(&unanswered, WAIT).await;
    assert!(
        late.note
            .as_deref()
            .unwrap_or_default()
            .contains("past Discord's"),
        "{}",
        late.describe()
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused_on_rest_and_gateway() {
    let fake = FakeDiscord::start().await;
    let http = serenity::HttpBuilder::new(support::REJECTED_TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let err = http.get_current_user().await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    let refused = fake
        .wait_for_request("GET /users/@me", WAIT, |r| r.is("GET", "/users/@me"))
        .await;
    assert_eq!(
        refused.authorization.as_deref(),
        Some(format!("Bot {}", support::REJECTED_TOKEN).as_str())
    );
    // `GET /gateway` needs no token (and must never fail); IDENTIFY is closed with 4004.
    let intents = serenity::GatewayIntents::non_privileged();
    let mut client = serenity::ClientBuilder::new_with_http(http, intents)
        .await
        .expect("build the serenity client");
    let result = tokio::time::timeout(WAIT, client.start())
        .await
        .expect("the client with a wrong token did not stop within WAIT");
    assert!(
        matches!(
            result,
            Err(serenity::Error::Gateway(
                serenity::GatewayError::InvalidAuthentication
            ))
        ),
        "{result:?}"
    );
    assert!(!fake.gateway_stats().session_live);
    fake.assert_all_bodies_valid();
}

// -------------------------------------------------------------------------------------------
// Discord's rules the fake enforces, so no test of the bot can pass on what Discord refuses

/// A message body with a nonce, optionally enforced.
fn with_nonce(content: &str, nonce: &str, enforce: bool) -> Value {
    json!({"content": content, "nonce": nonce, "enforce_nonce": enforce})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_enforced_nonce_returns_the_first_message_and_creates_nothing() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);
    let weekly = serenity::ChannelId::new(WEEKLY_CHANNEL_ID);
    let first = http
        .send_message(general, vec![], &with_nonce("one", "n-1", true))
        .await
        .unwrap();
    let again = http
        .send_message(general, vec![], &with_nonce("one again", "n-1", true))
        .await
        .unwrap();
    assert_eq!(again.id, first.id, "the first message is answered");
    assert_eq!(again.content, "one");
    assert_eq!(fake.channel_messages(GENERAL_CHANNEL_ID).len(), 1);
    // Not enforced, or another channel: a new message, as on Discord.
    let unenforced = http
        .send_message(general, vec![], &with_nonce("two", "n-1", false))
        .await
        .unwrap();
    assert_ne!(unenforced.id, first.id);
    let elsewhere = http
        .send_message(weekly, vec![], &with_nonce("three", "n-1", true))
        .await
        .unwrap();
    assert_ne!(elsewhere.id, first.id);
    assert_eq!(fake.channel_messages(GENERAL_CHANNEL_ID).len(), 2);
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_after_handling_create_the_message_and_lose_the_answer() {
    use support::FaultKind;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);

    fake.add_fault("POST", "/channels/", 1, FaultKind::StatusAfterHandling(500));
    let err = general.say(&http, "created, then 500").await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");

    fake.add_fault("POST", "/channels/", 1, FaultKind::DropAfterHandling);
    let err = general
        .say(&http, "created, then dropped")
        .await
        .unwrap_err();
    assert!(!err.to_string().is_empty());

    // An answer later than the client's timeout: the client gives up, the message exists.
    fake.delay_next("POST", "/channels/", 1, Duration::from_millis(800));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let url = format!(
        "{}/api/v10/channels/{GENERAL_CHANNEL_ID}/messages",
        fake.base_url()
    );
    let err = client
        .post(url)
        .header("authorization", format!("Bot {}", support::TOKEN))
        .json(&json!({"content": "created, answered too late"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    tokio::time::sleep(Duration::from_millis(700)).await;

    let contents: Vec<String> = fake
        .channel_messages(GENERAL_CHANNEL_ID)
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    for created in [
        "created, then 500",
        "created, then dropped",
        "created, answered too late",
    ] {
        assert!(
            contents.iter().any(|c| c == created),
            "{created:?} not in {contents:?}"
        );
    }
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channels_answer_unknown_channel_on_every_route() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let nowhere = serenity::ChannelId::new(1_100_000_000_000_009_999);
    let errors = [
        http.get_channel(nowhere).await.map(|_| ()).unwrap_err(),
        http.get_messages(nowhere, None, None)
            .await
            .map(|_| ())
            .unwrap_err(),
        nowhere.say(&http, "hello?").await.map(|_| ()).unwrap_err(),
    ];
    for err in errors {
        let serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(e)) = err else {
            panic!("expected an HTTP error, got {err}")
        };
        assert_eq!((e.status_code.as_u16(), e.error.code), (404, 10003));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_permissions_come_from_roles_and_overwrites() {
    const BOT_ROLE: u64 = 1_100_000_000_000_000_102;
    const NO_SEND: u64 = 1_100_000_000_000_000_120;
    const NO_VIEW: u64 = 1_100_000_000_000_000_121;
    const ROLE_ALLOWS: u64 = 1_100_000_000_000_000_122;
    const NO_EMBEDS: u64 = 1_100_000_000_000_000_123;
    const NO_HISTORY: u64 = 1_100_000_000_000_000_124;
    let mut guild = TestGuild::default();
    guild.roles.push(role(BOT_ROLE, "bot", 0, 2));
    guild
        .members
        .retain(|m| m["user"]["id"].as_str() != Some(BOT_USER_ID.to_string().as_str()));
    guild.members.push(member(bot_user(), &[BOT_ROLE], None));
    let channel = |id, name| guild_text_channel(id, GUILD_ID, name);
    guild.channels.extend([
        with_overwrite(channel(NO_SEND, "no-send"), GUILD_ID, 0, 0, SEND_MESSAGES),
        with_overwrite(channel(NO_VIEW, "no-view"), GUILD_ID, 0, 0, VIEW_CHANNEL),
        with_overwrite(
            with_overwrite(
                channel(ROLE_ALLOWS, "role-allows"),
                GUILD_ID,
                0,
                0,
                SEND_MESSAGES,
            ),
            BOT_ROLE,
            0,
            SEND_MESSAGES,
            0,
        ),
        with_overwrite(
            channel(NO_EMBEDS, "no-embeds"),
            BOT_USER_ID,
            1,
            0,
            EMBED_LINKS,
        ),
        with_overwrite(
            channel(NO_HISTORY, "no-history"),
            GUILD_ID,
            0,
            0,
            READ_MESSAGE_HISTORY,
        ),
    ]);
    let fake = FakeDiscord::builder().guilds(vec![guild]).start().await;
    let http = fake.http();
    let code = |r: serenity::Result<serenity::Message>| match r {
        Ok(_) => (200, 0),
        Err(serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(e))) => {
            (e.status_code.as_u16(), e.error.code)
        }
        Err(e) => panic!("{e}"),
    };
    let id = serenity::ChannelId::new;
    let embed = serenity::CreateMessage::new().embed(serenity::CreateEmbed::new().title("t"));
    assert_eq!(code(id(NO_SEND).say(&http, "x").await), (403, 50013));
    assert_eq!(code(id(NO_VIEW).say(&http, "x").await), (403, 50001));
    assert!(
        http.get_channel(id(NO_VIEW)).await.is_err(),
        "cannot even see it"
    );
    assert!(http.get_channel(id(NO_SEND)).await.is_ok(), "can see it");
    assert_eq!(
        code(id(ROLE_ALLOWS).say(&http, "x").await),
        (200, 0),
        "the role's allow wins"
    );
    assert_eq!(
        code(id(NO_EMBEDS).say(&http, "text is fine").await),
        (200, 0)
    );
    assert_eq!(
        code(id(NO_EMBEDS).send_message(&http, embed).await),
        (403, 50013)
    );
    id(NO_HISTORY).say(&http, "posted").await.unwrap();
    assert!(
        http.get_messages(id(NO_HISTORY), None, None)
            .await
            .unwrap()
            .is_empty(),
        "no Read Message History: an empty list"
    );
    assert_eq!(
        http.get_messages(id(ROLE_ALLOWS), None, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_arrive_only_as_discords_client_would_send_them() {
    let fake = FakeDiscord::start().await;
    let _bot = start_bot(&fake).await;
    let command = json!({
        "name": "ask", "description": "d", "type": 1,
        "options": [
            {"type": 3, "name": "q", "description": "d", "required": true, "min_length": 2, "max_length": 10},
            {"type": 4, "name": "n", "description": "d", "min_value": 1, "max_value": 5},
            {"type": 3, "name": "c", "description": "d", "choices": [{"name": "A", "value": "a"}]},
        ],
    });
    fake.http()
        .create_guild_command(serenity::GuildId::new(GUILD_ID), &command)
        .await
        .unwrap();
    let ask = |options: Vec<Value>| slash_command("ask", options).build();
    let ok = fake
        .try_dispatch(
            "INTERACTION_CREATE",
            ask(vec![
                opt_string("q", "ten chars!"),
                opt_int("n", 5),
                opt_string("c", "a"),
            ]),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    for (options, expected) in [
        (vec![opt_string("q", "eleven char")], "max_length is 10"),
        (vec![opt_string("q", "x")], "min_length is 2"),
        (vec![opt_int("n", 1)], "required option \"q\" is missing"),
        (
            vec![opt_string("q", "ok"), opt_int("n", 6)],
            "outside the command's range",
        ),
        (
            vec![opt_string("q", "ok"), opt_string("c", "b")],
            "not one of the command's choices",
        ),
        (
            vec![opt_string("q", "ok"), opt_string("zzz", "b")],
            "no option \"zzz\"",
        ),
        (vec![opt_int("q", 3)], "type 4 given"),
    ] {
        let refused = fake
            .try_dispatch("INTERACTION_CREATE", ask(options.clone()))
            .await;
        assert!(
            refused.as_ref().is_err_and(|e| e.contains(expected)),
            "{options:?}: expected {expected:?}, got {refused:?}"
        );
    }
    // Subcommands are checked too.
    let bad = slash_command(
        "weekly",
        vec![opt_subcommand("set", vec![opt_bool("enabled", true)])],
    )
    .build();
    let refused = fake.try_dispatch("INTERACTION_CREATE", bad).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("/weekly set: the required option \"channel\"")),
        "{refused:?}"
    );
}

#[test]
fn messages_need_their_intent_and_content_needs_message_content() {
    use support::fake_discord::filter_message_by_intents;
    const GUILD_MESSAGES: u64 = 1 << 9;
    const DIRECT_MESSAGES: u64 = 1 << 12;
    const MESSAGE_CONTENT: u64 = 1 << 15;
    let in_guild = guild_message_create(GENERAL_CHANNEL_ID, GUILD_ID, "hello", alice());
    let in_dm = dm_message_create("hello", alice());

    let err = filter_message_by_intents(DIRECT_MESSAGES, &mut in_guild.clone()).unwrap_err();
    assert!(err.contains("GUILD_MESSAGES"), "{err}");
    let err = filter_message_by_intents(GUILD_MESSAGES, &mut in_dm.clone()).unwrap_err();
    assert!(err.contains("DIRECT_MESSAGES"), "{err}");

    let mut dm = in_dm.clone();
    filter_message_by_intents(DIRECT_MESSAGES, &mut dm).unwrap();
    assert_eq!(
        dm["content"], "hello",
        "DMs carry their content without MESSAGE_CONTENT"
    );

    let mut guild = in_guild.clone();
    filter_message_by_intents(GUILD_MESSAGES, &mut guild).unwrap();
    assert_eq!(guild["content"], "", "no MESSAGE_CONTENT: emptied");
    let mut mentioning = in_guild.clone();
    mentioning["mentions"] = json!([bot_user()]);
    filter_message_by_intents(GUILD_MESSAGES, &mut mentioning).unwrap();
    assert_eq!(
        mentioning["content"], "hello",
        "a message mentioning the bot keeps it"
    );
    let mut privileged = in_guild.clone();
    filter_message_by_intents(GUILD_MESSAGES | MESSAGE_CONTENT, &mut privileged).unwrap();
    assert_eq!(privileged["content"], "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_the_dispatches_missed_while_disconnected() {
    let fake = FakeDiscord::start().await;
    let _bot = start_bot(&fake).await;
    let before = fake.gateway_stats();
    // The RESUME is held until the dispatch below is queued: serenity reconnects within
    // milliseconds, and the test must not race it.
    fake.hold_sessions(true);
    fake.close_gateway(4000);
    // Sent while the bot is away: kept for the session, not lost.
    let missed = slash_command("ping", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", missed.clone()).await;
    fake.hold_sessions(false);
    let callback = fake.wait_for_callback(&missed, WAIT).await;
    assert_eq!(callback.json()["data"]["content"], "pong");
    let after = fake.gateway_stats();
    assert_eq!(after.resumed, before.resumed + 1, "{after:?}");
    assert!(after.replayed >= 1, "{after:?}");
    assert_eq!(
        after.identifies, before.identifies,
        "resumed, not identified again"
    );
}

// -------------------------------------------------------------------------------------------
// Gateway sharding: several shards, in one process or several, on one fake

/// Two guilds on different shards of 2. A guild's shard is `(guild_id >> 22) % total`, and
/// `guild_id >> 22` is the snowflake's creation time in ms since Discord's epoch, so a guild
/// created at an even millisecond is on shard 0 of 2 and one created at an odd millisecond on
/// shard 1: `(300_000_000_000 << 22 | 100) >> 22 = 300_000_000_000`, `% 2 = 0`;
/// `(300_000_000_001 << 22 | 100) >> 22 = 300_000_000_001`, `% 2 = 1`.
const GUILD_ON_SHARD_0: u64 = (300_000_000_000 << 22) | 100;
const GUILD_ON_SHARD_1: u64 = (300_000_000_001 << 22) | 100;
const CHANNEL_ON_SHARD_0: u64 = GUILD_ON_SHARD_0 + 10;
const CHANNEL_ON_SHARD_1: u64 = GUILD_ON_SHARD_1 + 10;

/// A guild with one text channel, alice and the bot.
fn sharded_guild(guild_id: u64, channel_id: u64, name: &str) -> TestGuild {
    TestGuild {
        id: guild_id,
        name: name.into(),
        owner_id: OWNER_ID,
        channels: vec![guild_text_channel(channel_id, guild_id, "general")],
        roles: vec![role(guild_id, "@everyone", MEMBER_PERMISSIONS, 0)],
        members: vec![member(alice(), &[], None), member(bot_user(), &[], None)],
    }
}

async fn sharded_fake(recommended_shards: u32) -> FakeDiscord {
    FakeDiscord::builder()
        .guilds(vec![
            sharded_guild(GUILD_ON_SHARD_0, CHANNEL_ON_SHARD_0, "Shard Zero"),
            sharded_guild(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1, "Shard One"),
        ])
        .recommended_shards(recommended_shards)
        .start()
        .await
}

/// What the shard clients saw: (process label, `ctx.shard_id`, event summary).
type Seen = Arc<std::sync::Mutex<Vec<(&'static str, u32, String)>>>;

/// A plain serenity event handler that records which shard of which process received what, and
/// answers every slash command with `pong from {process} on shard {id}`.
struct ShardRecorder {
    process: &'static str,
    seen: Seen,
}

impl ShardRecorder {
    fn record(&self, ctx: &serenity::Context, what: String) {
        let entry = (self.process, ctx.shard_id.0, what);
        self.seen.lock().unwrap().push(entry);
    }
}

#[::serenity::async_trait]
impl serenity::EventHandler for ShardRecorder {
    async fn ready(&self, ctx: serenity::Context, ready: serenity::Ready) {
        let mut guilds: Vec<u64> = ready.guilds.iter().map(|g| g.id.get()).collect();
        guilds.sort_unstable();
        let shard = ready.shard.map(|s| (s.id.0, s.total));
        self.record(&ctx, format!("READY {shard:?} {guilds:?}"));
    }

    async fn guild_create(&self, ctx: serenity::Context, guild: serenity::Guild, _: Option<bool>) {
        self.record(&ctx, format!("GUILD_CREATE {}", guild.id));
    }

    async fn message(&self, ctx: serenity::Context, message: serenity::Message) {
        let guild = message.guild_id.map(|g| g.get());
        self.record(&ctx, format!("MESSAGE {guild:?} {:?}", message.content));
    }

    async fn interaction_create(&self, ctx: serenity::Context, interaction: Interaction) {
        let Interaction::Command(command) = interaction else {
            return;
        };
        self.record(&ctx, format!("INTERACTION {}", command.id));
        let content = format!("pong from {} on shard {}", self.process, ctx.shard_id.0);
        let reply = serenity::CreateInteractionResponse::Message(
            serenity::CreateInteractionResponseMessage::new().content(content),
        );
        let _ = command.create_response(&ctx.http, reply).await;
    }
}

/// Which shards a client process runs.
enum Shards {
    /// `start_shard(id, total)`. (Not `start_shard_range(id..id + 1, total)`: serenity 0.12.5
    /// treats the range's end as inclusive and would start two shards.)
    One(u32, u32),
    /// `start_autosharded()`: as many as `GET /gateway/bot` recommends, 5 s apart.
    Auto,
}

struct ShardClient {
    task: tokio::task::JoinHandle<serenity::Result<()>>,
    manager: Arc<serenity::ShardManager>,
}

impl ShardClient {
    /// Shuts every shard down (serenity closes with 1000, which ends the sessions) and waits
    /// for the client to stop.
    async fn stop(self) {
        self.manager.shutdown_all().await;
        let stopped = tokio::time::timeout(WAIT, self.task).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "the client did not stop cleanly: {stopped:?}"
        );
    }
}

/// Starts a plain serenity client (one "process") on the fake, recording into `seen`.
async fn start_shard_client(
    fake: &FakeDiscord,
    process: &'static str,
    shards: Shards,
    seen: &Seen,
) -> ShardClient {
    let http = serenity::HttpBuilder::new(support::TOKEN)
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let handler = ShardRecorder {
        process,
        seen: seen.clone(),
    };
    let mut client =
        serenity::ClientBuilder::new_with_http(http, serenity::GatewayIntents::non_privileged())
            .event_handler(handler)
            .await
            .expect("build the serenity client");
    let manager = client.shard_manager.clone();
    let task = tokio::spawn(async move {
        match shards {
            Shards::One(id, total) => client.start_shard(id, total).await,
            Shards::Auto => client.start_autosharded().await,
        }
    });
    ShardClient { task, manager }
}

/// Waits until a client recorded an event for which `pred` holds.
async fn wait_seen(
    seen: &Seen,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&'static str, u32, &str) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !seen.lock().unwrap().iter().any(|(p, s, w)| pred(p, *s, w)) {
        assert!(
            Instant::now() < deadline,
            "{what} was never seen; the clients saw: {:#?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What each shard of `process` saw, sorted (serenity runs each event's handler in its own
/// task, so the order they are recorded in is not the order they arrived in).
fn seen_by(seen: &Seen, process: &str) -> Vec<(u32, String)> {
    let mut events: Vec<(u32, String)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| *p == process)
        .map(|(_, s, w)| (*s, w.clone()))
        .collect();
    events.sort();
    events
}

fn sorted(mut events: Vec<(u32, String)>) -> Vec<(u32, String)> {
    events.sort();
    events
}

async fn register_ping(fake: &FakeDiscord) {
    let commands = vec![serenity::CreateCommand::new("ping").description("Ping")];
    fake.http()
        .create_global_commands(&commands)
        .await
        .expect("register /ping");
}

fn ping_in(guild_id: u64, channel_id: u64) -> Value {
    slash_command("ping", vec![])
        .in_guild(guild_id, channel_id, member(alice(), &[], None))
        .build()
}

fn interaction_seen(interaction: &Value) -> String {
    format!("INTERACTION {}", interaction["id"].as_str().unwrap())
}

async fn answered_with(fake: &FakeDiscord, interaction: &Value, expected: &str) {
    let callback = fake.wait_for_callback(interaction, WAIT).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());
    assert_eq!(callback.json()["data"]["content"], expected);
}

#[test]
fn guild_shards_and_identify_shards_follow_discords_rules() {
    use support::fake_discord::{guild_shard, identify_shard};
    assert_eq!(guild_shard(GUILD_ON_SHARD_0, 2), 0);
    assert_eq!(guild_shard(GUILD_ON_SHARD_1, 2), 1);
    assert_eq!(
        guild_shard(GUILD_ON_SHARD_1, 1),
        0,
        "one shard has every guild"
    );
    assert_eq!(
        guild_shard(GUILD_ON_SHARD_1, 3),
        (300_000_000_001_u64 % 3) as u32
    );
    assert_eq!(
        identify_shard(&json!({"token": "t"})),
        Ok((0, 1)),
        "no shard: [0, 1]"
    );
    assert_eq!(identify_shard(&json!({"shard": null})), Ok((0, 1)));
    assert_eq!(identify_shard(&json!({"shard": [1, 2]})), Ok((1, 2)));
    for bad in [
        json!([2, 2]),
        json!([0, 0]),
        json!([0]),
        json!("0,1"),
        json!([-1, 2]),
    ] {
        assert!(identify_shard(&json!({ "shard": bad })).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_two_shards_each_get_only_their_guilds_and_events() {
    let fake = sharded_fake(1).await;
    let seen = Seen::default();
    let _a = start_shard_client(&fake, "A", Shards::One(0, 2), &seen).await;
    let _b = start_shard_client(&fake, "B", Shards::One(1, 2), &seen).await;
    let stats = fake.wait_for_shards(&[(0, 2), (1, 2)], WAIT).await;
    assert_eq!(
        (
            stats.connections,
            stats.identifies,
            stats.sessions,
            stats.live_sessions
        ),
        (2, 2, 2, 2),
        "{stats:?}"
    );
    assert!(stats.session_live, "{stats:?}");
    assert_eq!(fake.shards_live(), [(0, 2), (1, 2)]);
    let mut identified: Vec<String> = fake
        .identify_payloads()
        .iter()
        .map(|d| d["shard"].to_string())
        .collect();
    identified.sort();
    assert_eq!(identified, ["[0,2]", "[1,2]"]);

    // READY lists only the shard's guilds, and only those get a GUILD_CREATE.
    let sessions = fake.shard_sessions();
    assert_eq!(sessions[0].guilds, [GUILD_ON_SHARD_0]);
    assert_eq!(sessions[1].guilds, [GUILD_ON_SHARD_1]);
    assert_ne!(sessions[0].session_id, sessions[1].session_id);
    for (process, guild) in [("A", GUILD_ON_SHARD_0), ("B", GUILD_ON_SHARD_1)] {
        let created = format!("GUILD_CREATE {guild}");
        wait_seen(&seen, &created, WAIT, |p, _, w| {
            p == process && w == created
        })
        .await;
    }

    // Interactions go to the shard of their guild; a DM interaction and a DM to shard 0.
    register_ping(&fake).await;
    let in_0 = ping_in(GUILD_ON_SHARD_0, CHANNEL_ON_SHARD_0);
    let in_1 = ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1);
    let in_dm = slash_command("ping", vec![]).in_dm(alice()).build();
    for (interaction, expected) in [
        (&in_0, "pong from A on shard 0"),
        (&in_1, "pong from B on shard 1"),
        (&in_dm, "pong from A on shard 0"),
    ] {
        fake.dispatch("INTERACTION_CREATE", interaction.clone())
            .await;
        answered_with(&fake, interaction, expected).await;
    }
    let callback = fake.wait_for_callback(&in_1, WAIT).await;
    assert!(
        callback
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("DiscordBot (https://github.com/serenity-rs/serenity")),
        "{:?}",
        callback.user_agent
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_message_create("dm for shard 0", alice()),
    )
    .await;
    let in_guild_1 = guild_message_create(CHANNEL_ON_SHARD_1, GUILD_ON_SHARD_1, "hi", alice());
    fake.dispatch("MESSAGE_CREATE", in_guild_1).await;
    // A burst is routed item by item.
    let burst = [
        ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1),
        ping_in(GUILD_ON_SHARD_0, CHANNEL_ON_SHARD_0),
    ];
    fake.dispatch_all("INTERACTION_CREATE", &burst).await;
    answered_with(&fake, &burst[0], "pong from B on shard 1").await;
    answered_with(&fake, &burst[1], "pong from A on shard 0").await;
    wait_seen(&seen, "the DM", WAIT, |p, _, w| {
        p == "A" && w.starts_with("MESSAGE None")
    })
    .await;
    let guild_message = format!("MESSAGE Some({GUILD_ON_SHARD_1}) \"\"");
    wait_seen(&seen, "the guild message", WAIT, |p, _, w| {
        p == "B" && w == guild_message
    })
    .await;
    // Nothing else arrives anywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        seen_by(&seen, "A"),
        sorted(vec![
            (0, format!("READY Some((0, 2)) [{GUILD_ON_SHARD_0}]")),
            (0, format!("GUILD_CREATE {GUILD_ON_SHARD_0}")),
            (0, interaction_seen(&in_0)),
            (0, interaction_seen(&in_dm)),
            (0, "MESSAGE None \"dm for shard 0\"".into()),
            (0, interaction_seen(&burst[1])),
        ])
    );
    assert_eq!(
        seen_by(&seen, "B"),
        sorted(vec![
            (1, format!("READY Some((1, 2)) [{GUILD_ON_SHARD_1}]")),
            (1, format!("GUILD_CREATE {GUILD_ON_SHARD_1}")),
            (1, interaction_seen(&in_1)),
            (1, guild_message),
            (1, interaction_seen(&burst[0])),
        ])
    );
    let sessions = fake.shard_sessions();
    assert_eq!((sessions[0].dispatches, sessions[1].dispatches), (4, 3));
    assert_eq!(fake.gateway_stats().dispatches, 7);
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_one_shards_close_replays_only_that_shards_missed_dispatches() {
    let fake = sharded_fake(1).await;
    let seen = Seen::default();
    let _a = start_shard_client(&fake, "A", Shards::One(0, 2), &seen).await;
    let _b = start_shard_client(&fake, "B", Shards::One(1, 2), &seen).await;
    fake.wait_for_shards(&[(0, 2), (1, 2)], WAIT).await;
    register_ping(&fake).await;

    // Held, so that shard 1 cannot RESUME before the dispatch below (serenity reconnects
    // within milliseconds of a close).
    fake.hold_sessions(true);
    assert_eq!(fake.close_shard(1, 4000), 1, "one connection closed");
    assert_eq!(fake.shards_live(), [(0, 2)], "shard 0 is untouched");
    let stats = fake.gateway_stats();
    assert_eq!(
        (stats.sessions, stats.live_sessions, stats.session_live),
        (2, 1, false)
    );
    // Shard 1's is kept for its RESUME; shard 0's goes out at once.
    let missed = ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1);
    fake.dispatch("INTERACTION_CREATE", missed.clone()).await;
    let live = ping_in(GUILD_ON_SHARD_0, CHANNEL_ON_SHARD_0);
    fake.dispatch("INTERACTION_CREATE", live.clone()).await;
    answered_with(&fake, &live, "pong from A on shard 0").await;
    assert!(fake.shard_session((1, 2)).is_some_and(|s| !s.live));
    fake.hold_sessions(false);
    answered_with(&fake, &missed, "pong from B on shard 1").await;

    let stats = fake.wait_for_shards(&[(0, 2), (1, 2)], WAIT).await;
    assert_eq!(
        (
            stats.connections,
            stats.identifies,
            stats.resumes,
            stats.resumed,
            stats.replayed
        ),
        (3, 2, 1, 1, 1),
        "shard 1 resumed and got its one missed dispatch: {stats:?}"
    );
    let zero = fake.shard_session((0, 2)).unwrap();
    let one = fake.shard_session((1, 2)).unwrap();
    assert_eq!((zero.resumed, zero.replayed, zero.dispatches), (0, 0, 1));
    assert_eq!((one.resumed, one.replayed, one.dispatches), (1, 1, 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = seen_by(&seen, "B");
    assert_eq!(
        b.iter()
            .filter(|(_, w)| *w == interaction_seen(&missed))
            .count(),
        1,
        "delivered once, on the RESUME: {b:?}"
    );
    assert!(
        !seen_by(&seen, "A")
            .iter()
            .any(|(_, w)| *w == interaction_seen(&missed)),
        "shard 0 never sees shard 1's dispatch"
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_for_a_shard_nobody_runs_is_refused_with_the_reason() {
    let fake = sharded_fake(1).await;
    let seen = Seen::default();
    let a = start_shard_client(&fake, "A", Shards::One(0, 2), &seen).await;
    fake.wait_for_shards(&[(0, 2)], WAIT).await;
    register_ping(&fake).await;

    // Only shard 0 of 2 runs: nobody would receive shard 1's guild's events.
    let refused = fake
        .try_dispatch_within(
            "INTERACTION_CREATE",
            ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    for part in [
        format!("guild {GUILD_ON_SHARD_1} is on shard 1 of 2"),
        "no process runs it".to_string(),
        "sessions: shard 0/2 (live)".to_string(),
    ] {
        assert!(refused.contains(&part), "{part:?} not in {refused:?}");
    }

    // A dispatch waits for its shard's session: shard 1's process starts meanwhile.
    let late = ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1);
    let (sent, b) = tokio::join!(
        fake.try_dispatch("INTERACTION_CREATE", late.clone()),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            start_shard_client(&fake, "B", Shards::One(1, 2), &seen).await
        }
    );
    assert!(sent.is_ok(), "{sent:?}");
    answered_with(&fake, &late, "pong from B on shard 1").await;

    // Shard 1's process stops (close 1000: its session ends, as on Discord): refused again,
    // after try_dispatch's full wait.
    b.stop().await;
    let stats = fake
        .wait_for_gateway("shard 1's session to end", WAIT, |s| s.sessions == 1)
        .await;
    assert!(stats.session_live, "shard 0 still runs: {stats:?}");
    assert_eq!(fake.shards_live(), [(0, 2)]);
    let started = Instant::now();
    let refused = fake
        .try_dispatch(
            "INTERACTION_CREATE",
            ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() >= WAIT - Duration::from_millis(100));
    assert!(refused.contains("is on shard 1 of 2"), "{refused}");
    // Shard 0's guild and DMs are still delivered.
    let dm = slash_command("ping", vec![]).in_dm(alice()).build();
    fake.dispatch("INTERACTION_CREATE", dm.clone()).await;
    answered_with(&fake, &dm, "pong from A on shard 0").await;

    // Without shard 0, a DM has nowhere to go either.
    let only_1 = start_shard_client(&fake, "C", Shards::One(1, 2), &seen).await;
    fake.wait_for_shards(&[(0, 2), (1, 2)], WAIT).await;
    a.stop().await;
    fake.wait_for_gateway("only shard 1 left", WAIT, |s| {
        s.sessions == 1 && s.session_live
    })
    .await;
    assert_eq!(fake.shards_live(), [(1, 2)]);
    let refused = fake
        .try_dispatch_within(
            "MESSAGE_CREATE",
            dm_message_create("anyone?", alice()),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(
        refused.contains("DMs") && refused.contains("shard 0 only"),
        "{refused}"
    );
    only_1.stop().await;
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_autosharded_process_runs_the_recommended_shards() {
    let fake = sharded_fake(2).await;
    let gateway = fake.http().get_bot_gateway().await.unwrap();
    assert_eq!(gateway.shards, 2);
    assert_eq!(gateway.session_start_limit.max_concurrency, 1);
    assert_eq!(gateway.url, fake.ws_url());

    let seen = Seen::default();
    let _p = start_shard_client(&fake, "P", Shards::Auto, &seen).await;
    // serenity starts a process's shards 5 s apart.
    let stats = fake
        .wait_for_shards(&[(0, 2), (1, 2)], WAIT + Duration::from_secs(5))
        .await;
    assert_eq!((stats.connections, stats.identifies), (2, 2), "{stats:?}");
    let asked = fake.requests_matching(|r| r.is("GET", "/gateway/bot"));
    assert_eq!(asked.len(), 2, "the test's and the client's");
    register_ping(&fake).await;
    let in_0 = ping_in(GUILD_ON_SHARD_0, CHANNEL_ON_SHARD_0);
    let in_1 = ping_in(GUILD_ON_SHARD_1, CHANNEL_ON_SHARD_1);
    fake.dispatch_all("INTERACTION_CREATE", &[in_0.clone(), in_1.clone()])
        .await;
    answered_with(&fake, &in_0, "pong from P on shard 0").await;
    answered_with(&fake, &in_1, "pong from P on shard 1").await;
    let created = format!("GUILD_CREATE {GUILD_ON_SHARD_1}");
    wait_seen(&seen, &created, WAIT, |_, s, w| s == 1 && w == created).await;
    let p = seen_by(&seen, "P");
    let guild_creates: Vec<&(u32, String)> = p
        .iter()
        .filter(|(_, w)| w.starts_with("GUILD_CREATE"))
        .collect();
    assert_eq!(
        guild_creates,
        [
            &(0, format!("GUILD_CREATE {GUILD_ON_SHARD_0}")),
            &(1, format!("GUILD_CREATE {GUILD_ON_SHARD_1}")),
        ]
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_requests_record_their_user_agent() {
    let fake = FakeDiscord::start().await;
    fake.http().get_current_user().await.unwrap();
    let client = reqwest::Client::new();
    client
        .get(format!("{}/api/v10/users/@me", fake.base_url()))
        .header("authorization", format!("Bot {}", support::TOKEN))
        .header("user-agent", "insight-bot (process 2 of 2)")
        .send()
        .await
        .unwrap();
    let agents: Vec<Option<String>> = fake.requests().into_iter().map(|r| r.user_agent).collect();
    assert!(
        agents[0]
            .as_deref()
            .is_some_and(|ua| ua.starts_with("DiscordBot (")),
        "{agents:?}"
    );
    assert_eq!(agents[1].as_deref(), Some("insight-bot (process 2 of 2)"));
}

// -------------------------------------------------------------------------------------------
// Modals, files and DMs: what the collections (modals, import, export) and suggester DMs need

/// A serenity client without a handler: it holds the gateway session the fake dispatches on,
/// and the test answers the interactions itself through `fake.http()`, as the bot would.
async fn start_listener(fake: &FakeDiscord) -> tokio::task::JoinHandle<()> {
    let intents = serenity::GatewayIntents::non_privileged();
    let mut client = serenity::ClientBuilder::new_with_http(fake.http(), intents)
        .await
        .expect("build the serenity client");
    let task = tokio::spawn(async move {
        client
            .start()
            .await
            .expect("the serenity client stopped with an error");
    });
    fake.wait_for_ready(WAIT).await;
    task
}

/// Registers global commands: `/suggest` and `/import file:<attachment>`.
async fn register_collection_commands(fake: &FakeDiscord) {
    let file = serenity::CreateCommandOption::new(
        serenity::CommandOptionType::Attachment,
        "file",
        "The collection file",
    )
    .required(true);
    let commands = vec![
        serenity::CreateCommand::new("suggest").description("Suggest an insight"),
        serenity::CreateCommand::new("import")
            .description("Import a collection")
            .add_option(file),
    ];
    fake.http().create_global_commands(&commands).await.unwrap();
}

/// The command interaction serenity makes of an INTERACTION_CREATE's data.
fn command(v: &Value) -> serenity::CommandInteraction {
    match interaction(v) {
        Interaction::Command(c) => c,
        other => panic!("not a command: {other:?}"),
    }
}

fn modal(v: &Value) -> serenity::ModalInteraction {
    match interaction(v) {
        Interaction::Modal(m) => m,
        other => panic!("not a modal submit: {other:?}"),
    }
}

fn suggestion_modal(title: &str) -> serenity::CreateInteractionResponse {
    let text =
        serenity::CreateInputText::new(serenity::InputTextStyle::Paragraph, "Insight", "text");
    serenity::CreateInteractionResponse::Modal(
        serenity::CreateModal::new("suggest-modal", title)
            .components(vec![serenity::CreateActionRow::InputText(text)]),
    )
}

fn http_status(err: &serenity::Error) -> (u16, isize) {
    match err {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(e)) => {
            (e.status_code.as_u16(), e.error.code)
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modals_are_opened_validated_and_submitted() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let _listener = start_listener(&fake).await;
    register_collection_commands(&fake).await;

    // A slash command answered with a modal (callback type 9): accepted, validated, recorded.
    let i = slash_command("suggest", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", i.clone()).await;
    command(&i)
        .create_response(&http, suggestion_modal("Suggest an insight"))
        .await
        .unwrap();
    let callback = fake.wait_for_callback(&i, WAIT).await;
    assert_eq!(
        (callback.status, callback.json()["type"].clone()),
        (204, json!(9))
    );
    assert!(
        callback.problem.is_none() && callback.operation.is_some(),
        "{callback:?}"
    );
    let opened = fake.modal_response(&i).expect("the modal");
    assert_eq!(opened["custom_id"], "suggest-modal");
    assert_eq!(opened["title"], "Suggest an insight");
    assert_eq!(
        opened["components"][0]["components"][0]["custom_id"],
        "text"
    );
    assert!(
        fake.original_response(&i).is_none(),
        "a modal is no message"
    );
    assert!(fake
        .modal_response(&slash_command("suggest", vec![]).build())
        .is_none());

    // A modal body Discord refuses (title over 45 characters) is a problem like any other.
    let long = slash_command("suggest", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", long.clone()).await;
    let _ = command(&long)
        .create_response(&http, suggestion_modal(&"t".repeat(46)))
        .await;
    let problems = fake.take_body_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("/callback"), "{problems:?}");

    // The submission: a modal cannot answer it (400, as on Discord); a message can, after that.
    let submit = modal_submit("suggest-modal", &[("text", "Praise in public.")]).build();
    fake.dispatch("INTERACTION_CREATE", submit.clone()).await;
    let submitted = modal(&submit);
    let err = submitted
        .create_response(&http, suggestion_modal("Again"))
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (400, 50035), "{err}");
    let refused = fake.wait_for_callback(&submit, WAIT).await;
    assert!(
        refused
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("MODAL_SUBMIT"),
        "{}",
        refused.describe()
    );
    // Without a message (opened by a slash command) there is no message to update.
    let update = serenity::CreateInteractionResponse::UpdateMessage(
        serenity::CreateInteractionResponseMessage::new().content("lost"),
    );
    let err = submitted.create_response(&http, update).await.unwrap_err();
    assert_eq!(http_status(&err), (400, 50035), "{err}");
    let thanks = serenity::CreateInteractionResponse::Message(
        serenity::CreateInteractionResponseMessage::new()
            .content("Thanks!")
            .ephemeral(true),
    );
    submitted.create_response(&http, thanks).await.unwrap();
    assert_eq!(
        fake.original_response(&submit).unwrap()["content"],
        "Thanks!"
    );
    assert!(fake.modal_response(&submit).is_none());
    // DEFERRED_UPDATE_MESSAGE just closes any modal (Discord accepts it, nothing is shown).
    let closed = modal_submit("suggest-modal", &[("text", "x")]).build();
    fake.dispatch("INTERACTION_CREATE", closed.clone()).await;
    modal(&closed).defer(&http).await.unwrap();
    assert!(fake.original_response(&closed).is_none());
    assert!(
        fake.channel_messages(GENERAL_CHANNEL_ID).is_empty(),
        "no message (Thanks! was ephemeral)"
    );
    fake.assert_all_bodies_valid();
}

/// Posts a review message with an "Edit" button in #general, as the bot would.
async fn post_review(http: &serenity::Http, content: &str) -> Value {
    let button = serenity::CreateButton::new("edit").label("Edit");
    let message = serenity::ChannelId::new(GENERAL_CHANNEL_ID)
        .send_message(
            http,
            serenity::CreateMessage::new()
                .content(content)
                .components(vec![serenity::CreateActionRow::Buttons(vec![button])]),
        )
        .await
        .unwrap();
    serde_json::to_value(message).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_updates_and_edits_change_the_stored_message() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let _listener = start_listener(&fake).await;
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);
    let review = post_review(&http, "pending: Praise in public.").await;
    let review_id = serenity::MessageId::new(id_of(&review));

    // PATCH /channels/{c}/messages/{m}: the channel's history holds the latest version.
    general
        .edit_message(
            &http,
            review_id,
            serenity::EditMessage::new()
                .content("pending (edited)")
                .embed(serenity::CreateEmbed::new().title("Suggested by alice")),
        )
        .await
        .unwrap();
    let history = fake.channel_messages(GENERAL_CHANNEL_ID);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["content"], "pending (edited)");
    assert!(history[0]["edited_timestamp"].is_string());

    // A click carries the message as the client saw it (here: before the edit); UPDATE_MESSAGE
    // (type 7) applies to the message as it is now, in place.
    let click = button_click("approve", review.clone()).build();
    fake.dispatch("INTERACTION_CREATE", click.clone()).await;
    let Interaction::Component(c) = interaction(&click) else {
        panic!("not a component")
    };
    let update = serenity::CreateInteractionResponse::UpdateMessage(
        serenity::CreateInteractionResponseMessage::new()
            .content("approved")
            .components(vec![]),
    );
    c.create_response(&http, update).await.unwrap();
    let history = fake.channel_messages(GENERAL_CHANNEL_ID);
    assert_eq!(history.len(), 1, "updated in place");
    assert_eq!(history[0]["content"], "approved");
    assert_eq!(history[0]["components"], json!([]));
    assert_eq!(
        history[0]["embeds"][0]["title"], "Suggested by alice",
        "the edit before the click is kept"
    );
    assert_eq!(
        fake.original_response(&click).unwrap()["content"],
        "approved"
    );

    // A button that opens a modal; its submission carries the message and may update it:
    // DEFERRED_UPDATE_MESSAGE (type 6), then an edit of the original edits that message.
    let click = button_click("edit", review.clone()).build();
    fake.dispatch("INTERACTION_CREATE", click.clone()).await;
    let Interaction::Component(c) = interaction(&click) else {
        panic!("not a component")
    };
    c.create_response(&http, suggestion_modal("Edit the insight"))
        .await
        .unwrap();
    assert_eq!(
        fake.modal_response(&click).unwrap()["title"],
        "Edit the insight"
    );
    let submit = modal_submit("suggest-modal", &[("text", "Praise in public, often.")])
        .with_message(review.clone())
        .build();
    fake.dispatch("INTERACTION_CREATE", submit.clone()).await;
    let submitted = modal(&submit);
    submitted.defer(&http).await.unwrap();
    assert_eq!(
        fake.wait_for_callback(&submit, WAIT).await.json()["type"],
        6
    );
    submitted
        .edit_response(
            &http,
            serenity::EditInteractionResponse::new().content("Praise in public, often."),
        )
        .await
        .unwrap();
    let history = fake.channel_messages(GENERAL_CHANNEL_ID);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["content"], "Praise in public, often.");

    // UPDATE_MESSAGE (type 7) answers a submission from a component too.
    let submit = modal_submit("suggest-modal", &[("text", "x")])
        .with_message(review)
        .build();
    fake.dispatch("INTERACTION_CREATE", submit.clone()).await;
    let update = serenity::CreateInteractionResponse::UpdateMessage(
        serenity::CreateInteractionResponseMessage::new().content("rejected"),
    );
    modal(&submit).create_response(&http, update).await.unwrap();
    assert_eq!(
        fake.channel_messages(GENERAL_CHANNEL_ID)[0]["content"],
        "rejected"
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_options_download_from_the_fakes_cdn() {
    let fake = FakeDiscord::start().await;
    let _listener = start_listener(&fake).await;
    register_collection_commands(&fake).await;
    // Not UTF-8, and with a CRLF and dashes in it: bytes come back exactly.
    let bytes = b"[[insight]]\r\n--x\xff\x00 text = \"Praise in public.\"\n".to_vec();
    let hosted = fake.host_attachment("my insights.toml", "application/toml", bytes.clone());
    assert_eq!(hosted["size"], bytes.len());
    assert_eq!(hosted["url"], hosted["proxy_url"]);
    let url = hosted["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!(
            "{}/attachments/{GENERAL_CHANNEL_ID}/",
            fake.base_url()
        )) && url.ends_with("/my%20insights.toml"),
        "{url}"
    );

    let i = slash_command("import", vec![opt_attachment("file", id_of(&hosted))])
        .by_admin()
        .resolved_attachment(hosted.clone())
        .build();
    fake.dispatch("INTERACTION_CREATE", i.clone()).await;
    let c = command(&i);
    let serenity::ResolvedValue::Attachment(attachment) = c.data.options()[0].value else {
        panic!("unresolved: {:?}", c.data.options())
    };
    assert_eq!(attachment.filename, "my insights.toml");
    assert_eq!(attachment.size as usize, bytes.len());
    assert_eq!(attachment.content_type.as_deref(), Some("application/toml"));
    assert_eq!(fake.attachment_downloads(), 0);
    assert_eq!(attachment.download().await.unwrap(), bytes);
    assert_eq!(fake.attachment_downloads(), 1);
    let get = fake
        .wait_for_request("the download", WAIT, |r| r.is("GET", "/attachments/"))
        .await;
    assert_eq!(get.status, 200);

    // Unknown files (another id, another name) are 404 and not downloads.
    let client = reqwest::Client::new();
    for wrong in [
        url.replace(&hosted["id"].as_str().unwrap().to_string(), "42"),
        url.replace("my%20insights.toml", "other.toml"),
    ] {
        let status = client.get(&wrong).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 404, "{wrong}");
    }
    assert_eq!(fake.attachment_downloads(), 1);
    // Faults reach the CDN too.
    fake.fail_next("GET", "/attachments/", 1, 500);
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        500
    );

    // A size that lies: serenity reports the declared size; the bytes are what they are.
    let big =
        fake.host_attachment_with_size("big.toml", "application/toml", b"x".to_vec(), 9_000_000);
    let a: serenity::Attachment = serde_json::from_value(big.clone()).unwrap();
    assert_eq!(a.size, 9_000_000);
    assert_eq!(a.download().await.unwrap(), b"x");
    assert_eq!(fake.attachment_bytes(&big).unwrap(), b"x");
    assert_eq!(fake.attachment_downloads(), 2);
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_the_bot_sends_are_recorded_stored_and_served() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let _listener = start_listener(&fake).await;
    register_collection_commands(&fake).await;
    let export = b"[[insight]]\r\n--boundary?\xfe\xff\n".to_vec();
    let file = |name: &str| serenity::CreateAttachment::bytes(export.clone(), name);

    // A channel message with a file.
    let general = serenity::ChannelId::new(GENERAL_CHANNEL_ID);
    let sent = general
        .send_message(
            &http,
            serenity::CreateMessage::new()
                .content("the export")
                .add_file(file("export.toml")),
        )
        .await
        .unwrap();
    assert_eq!(sent.attachments[0].filename, "export.toml");
    assert_eq!(sent.attachments[0].size as usize, export.len());
    assert_eq!(sent.attachments[0].download().await.unwrap(), export);
    let stored = &fake.channel_messages(GENERAL_CHANNEL_ID)[0]["attachments"][0];
    assert_eq!(stored["filename"], "export.toml");
    assert_eq!(fake.attachment_bytes(stored).unwrap(), export);
    let post = fake
        .wait_for_request("the POST", WAIT, |r| r.is("POST", "/channels/"))
        .await;
    assert_eq!(post.files[0].bytes, export, "binary-safe");
    assert_eq!(post.files[0].filename, "export.toml");
    // serenity guesses the type from the name (mime_guess).
    assert_eq!(post.files[0].content_type.as_deref(), Some("text/x-toml"));

    // An interaction: the callback, a follow-up and an edit of the original, each with a file.
    let i = slash_command("suggest", vec![]).build();
    fake.dispatch("INTERACTION_CREATE", i.clone()).await;
    let c = command(&i);
    let reply = serenity::CreateInteractionResponseMessage::new()
        .content("your export")
        .add_file(file("a.toml"));
    c.create_response(&http, serenity::CreateInteractionResponse::Message(reply))
        .await
        .unwrap();
    let follow = serenity::CreateInteractionResponseFollowup::new()
        .content("and another")
        .add_file(file("b.toml"))
        .ephemeral(true);
    c.create_followup(&http, follow).await.unwrap();
    c.edit_response(
        &http,
        serenity::EditInteractionResponse::new().new_attachment(file("c.toml")),
    )
    .await
    .unwrap();
    let files = fake.response_files(&i);
    let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(names, ["a.toml", "b.toml", "c.toml"]);
    assert!(files
        .iter()
        .all(|f| f.bytes == export && f.index() == Some(0)));
    assert_eq!(
        fake.followups(&i)[0]["attachments"][0]["filename"],
        "b.toml"
    );
    let original = fake.original_response(&i).unwrap();
    let on_original: Vec<&Value> = original["attachments"].as_array().unwrap().iter().collect();
    assert_eq!(
        on_original.len(),
        1,
        "new_attachment replaces: {original:#}"
    );
    assert_eq!(on_original[0]["filename"], "c.toml");
    assert!(fake
        .response_files(&slash_command("suggest", vec![]).build())
        .is_empty());
    fake.assert_all_bodies_valid();

    // Entries and parts that do not match are a problem: files[1] listed as id 0.
    let boundary = "fake-selftest-boundary";
    let body = [
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files[1]\"; filename=\"x.toml\"\r\nContent-Type: application/toml\r\n\r\n").into_bytes(),
        export.clone(),
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{{\"content\":\"x\",\"attachments\":[{{\"id\":0,\"filename\":\"x.toml\"}}]}}\r\n--{boundary}--\r\n").into_bytes(),
    ]
    .concat();
    let status = reqwest::Client::new()
        .post(format!(
            "{}/api/v10/channels/{GENERAL_CHANNEL_ID}/messages",
            fake.base_url()
        ))
        .header("authorization", format!("Bot {}", support::TOKEN))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    let problems = fake.take_body_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("attachments[0].id 0 names no uploaded files[0] part"),
        "{problems:?}"
    );
    let req = fake
        .wait_for_request("the hand-made POST", WAIT, |r| {
            r.body_text().contains("\"x\"")
        })
        .await;
    assert_eq!(
        (req.files[0].index(), req.files[0].bytes.clone()),
        (Some(1), export)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_channels_are_stable_and_closed_dms_refuse_messages() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let ada = serenity::UserId::new(ADMIN_USER_ID);
    let stranger = serenity::UserId::new(77);

    let first = ada.create_dm_channel(&http).await.unwrap();
    assert_eq!(first.recipient.id, ada);
    assert_eq!(
        ada.create_dm_channel(&http).await.unwrap().id,
        first.id,
        "stable"
    );
    assert_eq!(fake.dm_channel_of(ADMIN_USER_ID), Some(first.id.get()));
    let other = stranger.create_dm_channel(&http).await.unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(
        stranger.create_dm_channel(&http).await.unwrap().id,
        other.id
    );
    assert_eq!(
        serenity::UserId::new(USER_ID)
            .create_dm_channel(&http)
            .await
            .unwrap()
            .id
            .get(),
        DM_CHANNEL_ID
    );

    ada.direct_message(&http, serenity::CreateMessage::new().content("accepted"))
        .await
        .unwrap();
    first.say(&http, "and published").await.unwrap();
    stranger
        .direct_message(&http, serenity::CreateMessage::new().content("not ada's"))
        .await
        .unwrap();
    let to_ada: Vec<Value> = fake
        .dm_messages_to(ADMIN_USER_ID)
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(to_ada, [json!("accepted"), json!("and published")]);

    fake.close_dms(ADMIN_USER_ID);
    assert_eq!(
        ada.create_dm_channel(&http).await.unwrap().id,
        first.id,
        "still opens"
    );
    let err = ada
        .direct_message(&http, serenity::CreateMessage::new().content("rejected"))
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (403, 50007), "{err}");
    assert!(
        err.to_string()
            .contains("Cannot send messages to this user"),
        "{err}"
    );
    assert_eq!(
        fake.dm_messages_to(ADMIN_USER_ID).len(),
        2,
        "nothing was sent"
    );
    // Others are not affected.
    stranger
        .direct_message(&http, serenity::CreateMessage::new().content("hi"))
        .await
        .unwrap();
    assert_eq!(fake.dm_messages_to(77).len(), 2);
    assert!(fake.dm_messages_to(USER_ID).is_empty());
    fake.assert_all_bodies_valid();
}

// -------------------------------------------------------------------------------------------
// Threads, forum posts and mentions

#[test]
fn forum_and_thread_channels_deserialize() {
    use serenity::model::prelude::*;
    let guild = TestGuild::default();
    let Channel::Guild(forum) =
        serde_json::from_value(guild.channel(FORUM_CHANNEL_ID).unwrap()).unwrap()
    else {
        panic!("not a guild channel")
    };
    assert_eq!(forum.kind, ChannelType::Forum);
    assert_eq!(forum.name, "ideas");
    assert_eq!(forum.available_tags[0].name, "weekly");
    let thread = thread_channel(7, GUILD_ID, WEEKLY_CHANNEL_ID, USER_ID, "talk", 11, 60);
    let Channel::Guild(thread) = serde_json::from_value(thread).unwrap() else {
        panic!("not a guild channel")
    };
    assert_eq!(thread.kind, ChannelType::PublicThread);
    assert_eq!(thread.parent_id, Some(ChannelId::new(WEEKLY_CHANNEL_ID)));
    let metadata = thread.thread_metadata.unwrap();
    assert_eq!(metadata.auto_archive_duration, AutoArchiveDuration::OneHour);
    assert!(!metadata.archived);
    let roles: Vec<Role> = serde_json::from_value(json!(guild.roles)).unwrap();
    assert_eq!(
        roles
            .iter()
            .filter(|r| r.mentionable)
            .map(|r| r.id.get())
            .collect::<Vec<_>>(),
        [PING_ROLE_ID]
    );
}

/// A raw REST call with the fake's token: its status and JSON answer, which must match the
/// spec's response schema for that status (serenity's models would accept more).
async fn raw_call(
    fake: &FakeDiscord,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/api/v10{path}", fake.base_url());
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method.clone(), url)
        .header("Authorization", format!("Bot {}", support::TOKEN));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    if let Err(e) = spec().check_response(method.as_str(), path, status, &answer) {
        panic!("{e}");
    }
    (status, answer)
}

fn snowflake_of(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a snowflake: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_start_from_messages_once_with_the_messages_id() {
    use serenity::model::prelude::*;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let weekly = ChannelId::new(WEEKLY_CHANNEL_ID);
    let post = weekly.say(&http, "Insight of the week").await.unwrap();
    let discuss = serenity::CreateThread::new("Discuss: delegate outcomes")
        .auto_archive_duration(AutoArchiveDuration::OneWeek);
    let thread = weekly
        .create_thread_from_message(&http, post.id, discuss.clone())
        .await
        .unwrap();
    assert_eq!(
        thread.id.get(),
        post.id.get(),
        "a thread has its message's id"
    );
    assert_eq!(thread.kind, ChannelType::PublicThread);
    assert_eq!(thread.parent_id, Some(weekly));
    assert_eq!(thread.owner_id.map(|u| u.get()), Some(BOT_USER_ID));
    assert_eq!(thread.name, "Discuss: delegate outcomes");
    let metadata = thread.thread_metadata.unwrap();
    assert_eq!(metadata.auto_archive_duration, AutoArchiveDuration::OneWeek);
    assert!(!metadata.archived && !metadata.locked);
    assert_eq!(
        (thread.message_count, thread.member_count),
        (Some(0), Some(1))
    );

    // Once per message.
    let err = weekly
        .create_thread_from_message(&http, post.id, discuss.clone())
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (400, 160004), "{err}");
    assert!(err.to_string().contains("already been created"), "{err}");
    assert_eq!(fake.threads().len(), 1);

    // The message now carries its thread; the thread is a channel.
    let history = http.get_messages(weekly, None, None).await.unwrap();
    let started = history.iter().find(|m| m.id == post.id).unwrap();
    assert!(started.flags.unwrap().contains(MessageFlags::HAS_THREAD));
    assert_eq!(started.thread.as_ref().map(|t| t.id), Some(thread.id));
    let Channel::Guild(fetched) = http.get_channel(thread.id).await.unwrap() else {
        panic!("a thread is a guild channel")
    };
    assert_eq!(fetched.parent_id, Some(weekly));
    let thread_path = format!("/channels/{}", thread.id);
    let (status, answer) = raw_call(&fake, "GET", &thread_path, None).await;
    assert_eq!((status, answer["type"].clone()), (200, json!(11)));
    assert_eq!(
        fake.thread_of_message(post.id.get()).unwrap()["id"],
        json!(post.id.to_string())
    );
    assert_eq!(fake.threads_in(WEEKLY_CHANNEL_ID).len(), 1);
    assert!(fake.threads_in(GENERAL_CHANNEL_ID).is_empty());
    let messages_path = format!("/channels/{WEEKLY_CHANNEL_ID}/messages");
    let (_, listed) = raw_call(&fake, "GET", &messages_path, None).await;
    assert_eq!(listed[0]["thread"]["id"], listed[0]["id"]);

    // Replies in the thread are its messages, and counted.
    ChannelId::new(thread.id.get())
        .say(&http, "first reply")
        .await
        .unwrap();
    let replies = fake.channel_messages(thread.id.get());
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["content"], "first reply");
    let counted = fake.thread_of_message(post.id.get()).unwrap();
    assert_eq!(counted["message_count"], 1);
    assert_eq!(counted["last_message_id"], replies[0]["id"]);
    assert_eq!(
        fake.message(post.id.get()).unwrap()["thread"]["message_count"],
        1,
        "the starter message shows its thread as it is now"
    );

    // A message of another channel is unknown here; the raw answer is the spec's (201).
    let elsewhere = ChannelId::new(GENERAL_CHANNEL_ID)
        .say(&http, "hi")
        .await
        .unwrap();
    let err = weekly
        .create_thread_from_message(&http, elsewhere.id, discuss.clone())
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (404, 10008), "{err}");
    let second = weekly.say(&http, "another post").await.unwrap();
    let path = format!(
        "/channels/{WEEKLY_CHANNEL_ID}/messages/{}/threads",
        second.id
    );
    let body = json!({"name": "About it", "auto_archive_duration": 1440});
    let (status, answer) = raw_call(&fake, "POST", &path, Some(body.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(snowflake_of(&answer["id"]), second.id.get());
    let (status, answer) = raw_call(&fake, "POST", &path, Some(body)).await;
    assert_eq!((status, answer["code"].clone()), (400, json!(160004)));

    // Discord's name limit: 400, and the body is a problem.
    let third = weekly.say(&http, "a third").await.unwrap();
    let err = weekly
        .create_thread_from_message(
            &http,
            third.id,
            serenity::CreateThread::new("x".repeat(101)),
        )
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (400, 50035), "{err}");
    let problems = fake.take_body_problems();
    // (The spec's maxLength reports it first; the fake's own check makes the answer a 400.)
    assert!(
        problems.len() == 1 && problems[0].contains("at /name"),
        "{problems:?}"
    );
    assert!(fake.thread_of_message(third.id.get()).is_none());

    // A thread without a message (type 11 asked): no starter, no messages.
    let side = weekly
        .create_thread(
            &http,
            serenity::CreateThread::new("Side talk").kind(ChannelType::PublicThread),
        )
        .await
        .unwrap();
    assert_eq!(side.kind, ChannelType::PublicThread);
    assert!(fake.channel_messages(side.id.get()).is_empty());
    assert!(fake.thread_of_message(side.id.get()).is_none());
    assert_eq!(fake.threads_in(WEEKLY_CHANNEL_ID).len(), 3);

    // Not in a DM.
    let dm = ChannelId::new(DM_CHANNEL_ID);
    let in_dm = dm.say(&http, "private").await.unwrap();
    let err = dm
        .create_thread_from_message(&http, in_dm.id, discuss)
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (400, 50024), "{err}");
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_and_forum_posts_need_their_permissions() {
    use serenity::model::prelude::*;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let guild = TestGuild::default();
    let weekly = ChannelId::new(WEEKLY_CHANNEL_ID);
    let post = weekly.say(&http, "Insight").await.unwrap();
    let open = guild.channel(WEEKLY_CHANNEL_ID).unwrap();
    fake.add_channel(with_overwrite(
        open.clone(),
        GUILD_ID,
        0,
        0,
        CREATE_PUBLIC_THREADS,
    ));
    let err = weekly
        .create_thread_from_message(&http, post.id, serenity::CreateThread::new("Discuss"))
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (403, 50013), "{err}");
    assert!(fake.threads().is_empty());

    // A thread has its parent's permissions: posting there needs Send Messages in Threads.
    fake.add_channel(open.clone());
    let thread = weekly
        .create_thread_from_message(&http, post.id, serenity::CreateThread::new("Discuss"))
        .await
        .unwrap();
    fake.add_channel(with_overwrite(
        open.clone(),
        GUILD_ID,
        0,
        0,
        SEND_MESSAGES_IN_THREADS,
    ));
    let in_thread = ChannelId::new(thread.id.get());
    let err = in_thread.say(&http, "reply").await.unwrap_err();
    assert_eq!(http_status(&err), (403, 50013), "{err}");
    fake.add_channel(with_overwrite(open, GUILD_ID, 0, 0, SEND_MESSAGES));
    in_thread
        .say(&http, "Send Messages is not what counts in a thread")
        .await
        .unwrap();

    // A forum post needs Send Messages in the forum.
    let forum = ChannelId::new(FORUM_CHANNEL_ID);
    let ideas = guild.channel(FORUM_CHANNEL_ID).unwrap();
    fake.add_channel(with_overwrite(ideas, GUILD_ID, 0, 0, SEND_MESSAGES));
    let post =
        serenity::CreateForumPost::new("Insight", serenity::CreateMessage::new().content("text"));
    let err = forum.create_forum_post(&http, post).await.unwrap_err();
    assert_eq!(http_status(&err), (403, 50013), "{err}");
    assert!(fake.threads_in(FORUM_CHANNEL_ID).is_empty());
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forum_posts_are_threads_whose_starter_message_has_their_id() {
    use serenity::model::prelude::*;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let forum = ChannelId::new(FORUM_CHANNEL_ID);
    let starter = serenity::CreateMessage::new()
        .content("Delegate outcomes, not tasks.")
        .embed(serenity::CreateEmbed::new().title("Insight of the week"))
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    let post = serenity::CreateForumPost::new("Delegate outcomes", starter)
        .add_applied_tag(ForumTagId::new(FORUM_TAG_ID));
    let thread = forum.create_forum_post(&http, post).await.unwrap();
    assert_eq!(thread.kind, ChannelType::PublicThread);
    assert_eq!(thread.parent_id, Some(forum));
    assert_eq!(thread.name, "Delegate outcomes");
    assert_eq!(thread.applied_tags, [ForumTagId::new(FORUM_TAG_ID)]);
    assert_eq!(thread.message_count, Some(0), "the starter is not counted");
    let req = fake
        .wait_for_request("the forum post", WAIT, |r| r.is("POST", "/channels/"))
        .await;
    assert_eq!(
        req.operation.as_deref(),
        Some("POST /channels/{channel_id}/threads")
    );
    assert!(req.content_type.unwrap().starts_with("multipart/form-data"));

    // The starter message is the thread's, with the thread's id.
    let messages = fake.channel_messages(thread.id.get());
    assert_eq!(messages.len(), 1);
    assert_eq!(snowflake_of(&messages[0]["id"]), thread.id.get());
    assert_eq!(snowflake_of(&messages[0]["channel_id"]), thread.id.get());
    assert_eq!(messages[0]["embeds"][0]["title"], "Insight of the week");
    let fetched = http.get_messages(thread.id, None, None).await.unwrap();
    assert_eq!(fetched[0].id.get(), thread.id.get());
    assert_eq!(
        fake.thread_of_message(thread.id.get()).unwrap()["parent_id"],
        json!(FORUM_CHANNEL_ID.to_string())
    );
    assert_eq!(fake.threads_in(FORUM_CHANNEL_ID).len(), 1);

    // The raw answer: the thread with its starter in `message`, valid for the spec (201).
    let path = format!("/channels/{FORUM_CHANNEL_ID}/threads");
    let body =
        json!({"name": "Raw post", "message": {"content": "hello"}, "auto_archive_duration": 60});
    let (status, answer) = raw_call(&fake, "POST", &path, Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(answer["message"]["id"], answer["id"]);
    assert_eq!(answer["message"]["channel_id"], answer["id"]);
    assert_eq!(answer["thread_metadata"]["auto_archive_duration"], 60);
    assert_eq!(answer["last_message_id"], answer["id"]);
    let (status, forum_answer) =
        raw_call(&fake, "GET", &format!("/channels/{FORUM_CHANNEL_ID}"), None).await;
    assert_eq!((status, forum_answer["type"].clone()), (200, json!(15)));

    // Discord's refusals.
    let refused = |body: Value| {
        let fake = &fake;
        let path = path.clone();
        async move { raw_call(fake, "POST", &path, Some(body)).await }
    };
    let (status, answer) = refused(json!({"name": "Empty", "message": {"content": ""}})).await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50006)));
    let (status, answer) = refused(json!({
        "name": "Unknown tag", "message": {"content": "x"}, "applied_tags": ["1"],
    }))
    .await;
    assert_eq!((status, answer["code"].clone()), (400, json!(50035)));
    let mut required = TestGuild::default().channel(FORUM_CHANNEL_ID).unwrap();
    required["flags"] = json!(16);
    fake.add_channel(required);
    let (status, answer) = refused(json!({"name": "No tag", "message": {"content": "x"}})).await;
    assert_eq!((status, answer["code"].clone()), (400, json!(40067)));
    let err = forum
        .say(&http, "straight into the forum")
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (400, 50008), "{err}");
    assert_eq!(fake.threads_in(FORUM_CHANNEL_ID).len(), 2);
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_threads_list_the_guilds_open_threads_newest_first() {
    use serenity::model::prelude::*;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let weekly = ChannelId::new(WEEKLY_CHANNEL_ID);
    let post = weekly.say(&http, "Insight").await.unwrap();
    let from_message = weekly
        .create_thread_from_message(&http, post.id, serenity::CreateThread::new("Discuss"))
        .await
        .unwrap();
    let forum_post = ChannelId::new(FORUM_CHANNEL_ID)
        .create_forum_post(
            &http,
            serenity::CreateForumPost::new("Post", serenity::CreateMessage::new().content("x")),
        )
        .await
        .unwrap();
    // Someone else's thread, archived: not listed.
    let mut archived = thread_channel(
        next_snowflake(),
        GUILD_ID,
        GENERAL_CHANNEL_ID,
        USER_ID,
        "old",
        11,
        60,
    );
    archived["thread_metadata"]["archived"] = json!(true);
    fake.add_channel(archived);
    assert_eq!(fake.threads().len(), 3);

    let active = GuildId::new(GUILD_ID)
        .get_active_threads(&http)
        .await
        .unwrap();
    let ids: Vec<ChannelId> = active.threads.iter().map(|t| t.id).collect();
    assert_eq!(ids, [forum_post.id, from_message.id]);
    let joined: Vec<ChannelId> = active.members.iter().map(|m| m.id).collect();
    assert_eq!(joined, ids, "the bot is in the threads it started");
    let (status, answer) = raw_call(
        &fake,
        "GET",
        &format!("/guilds/{GUILD_ID}/threads/active"),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["threads"].as_array().unwrap().len()),
        (200, 2)
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_are_what_discord_would_ping() {
    use serenity::model::prelude::*;
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let general = ChannelId::new(GENERAL_CHANNEL_ID);
    let content = format!("<@&{PING_ROLE_ID}> <@&{QUIET_ROLE_ID}> <@{USER_ID}> @everyone");
    let send = |allowed: Option<serenity::CreateAllowedMentions>| {
        let mut message = serenity::CreateMessage::new().content(content.clone());
        if let Some(allowed) = allowed {
            message = message.allowed_mentions(allowed);
        }
        let http = &http;
        async move { general.send_message(http, message).await.unwrap() }
    };
    let roles = |m: &Message| m.mention_roles.iter().map(|r| r.get()).collect::<Vec<_>>();
    let users = |m: &Message| m.mentions.iter().map(|u| u.id.get()).collect::<Vec<_>>();

    // No allowed_mentions: every mention in the content counts, but a role that is not
    // mentionable and @everyone need Mention Everyone, which the bot lacks.
    let m = send(None).await;
    assert_eq!(
        (roles(&m), users(&m), m.mention_everyone),
        (vec![PING_ROLE_ID], vec![USER_ID], false)
    );
    let stored = fake.message(m.id.get()).unwrap();
    assert_eq!(stored["mention_roles"], json!([PING_ROLE_ID.to_string()]));
    // Only the listed role.
    let only_readers =
        serenity::CreateAllowedMentions::new().roles(vec![RoleId::new(PING_ROLE_ID)]);
    let m = send(Some(only_readers)).await;
    assert_eq!(
        (roles(&m), users(&m), m.mention_everyone),
        (vec![PING_ROLE_ID], vec![], false)
    );
    // Nothing (the bot's no_pings).
    let none = serenity::CreateAllowedMentions::new()
        .empty_users()
        .empty_roles()
        .replied_user(false);
    let m = send(Some(none)).await;
    assert_eq!(
        (roles(&m), users(&m), m.mention_everyone),
        (vec![], vec![], false)
    );
    // Listing a role that is not mentionable does not make it ping.
    let quiet = serenity::CreateAllowedMentions::new().roles(vec![RoleId::new(QUIET_ROLE_ID)]);
    assert!(roles(&send(Some(quiet)).await).is_empty());
    // Listing a role the content does not mention pings nobody.
    let m = general
        .send_message(
            &http,
            serenity::CreateMessage::new()
                .content("no mention here")
                .allowed_mentions(
                    serenity::CreateAllowedMentions::new().roles(vec![RoleId::new(PING_ROLE_ID)]),
                ),
        )
        .await
        .unwrap();
    assert!(roles(&m).is_empty());

    // With Mention Everyone: every role and @everyone, unless allowed_mentions says otherwise.
    let open = TestGuild::default().channel(GENERAL_CHANNEL_ID).unwrap();
    fake.add_channel(with_overwrite(open, GUILD_ID, 0, MENTION_EVERYONE, 0));
    let m = send(None).await;
    assert_eq!(
        (roles(&m), m.mention_everyone),
        (vec![PING_ROLE_ID, QUIET_ROLE_ID], true)
    );
    let all_roles = serenity::CreateAllowedMentions::new().all_roles(true);
    let m = send(Some(all_roles)).await;
    assert_eq!(
        (roles(&m), users(&m), m.mention_everyone),
        (vec![PING_ROLE_ID, QUIET_ROLE_ID], vec![], false)
    );

    // A reply pings the replied-to author unless replied_user is false.
    let asked = guild_message_create(GENERAL_CHANNEL_ID, GUILD_ID, "question", ada());
    fake.add_message(asked.clone());
    let asked_id = MessageId::new(snowflake_of(&asked["id"]));
    let reply = |allowed: Option<serenity::CreateAllowedMentions>| {
        let mut message = serenity::CreateMessage::new()
            .content("answer")
            .reference_message((general, asked_id));
        if let Some(allowed) = allowed {
            message = message.allowed_mentions(allowed);
        }
        let http = &http;
        async move { general.send_message(http, message).await.unwrap() }
    };
    assert_eq!(users(&reply(None).await), [ADMIN_USER_ID]);
    let quiet_reply = serenity::CreateAllowedMentions::new().replied_user(false);
    assert!(users(&reply(Some(quiet_reply)).await).is_empty());

    // parse "roles" with a roles list: Discord refuses the body.
    let body = json!({
        "content": content,
        "allowed_mentions": {"parse": ["roles"], "roles": [PING_ROLE_ID.to_string()]},
    });
    let err = http.send_message(general, vec![], &body).await.unwrap_err();
    assert_eq!(http_status(&err), (400, 50035), "{err}");
    let problems = fake.take_body_problems();
    assert!(problems[0].contains("mutually exclusive"), "{problems:?}");

    // A forum post's starter message pings as a message does.
    let starter = serenity::CreateMessage::new()
        .content(format!(
            "<@&{PING_ROLE_ID}> <@&{QUIET_ROLE_ID}> new insight"
        ))
        .allowed_mentions(
            serenity::CreateAllowedMentions::new().roles(vec![RoleId::new(PING_ROLE_ID)]),
        );
    let thread = ChannelId::new(FORUM_CHANNEL_ID)
        .create_forum_post(&http, serenity::CreateForumPost::new("Weekly", starter))
        .await
        .unwrap();
    let first = fake.message(thread.id.get()).unwrap();
    assert_eq!(first["mention_roles"], json!([PING_ROLE_ID.to_string()]));
    assert_eq!(first["mention_everyone"], false);
    let (_, listed) = raw_call(
        &fake,
        "GET",
        &format!("/channels/{}/messages", thread.id),
        None,
    )
    .await;
    assert_eq!(listed[0]["mention_roles"], first["mention_roles"]);
    let (_, listed) = raw_call(
        &fake,
        "GET",
        &format!("/channels/{GENERAL_CHANNEL_ID}/messages"),
        None,
    )
    .await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mentions"][0]["id"] == json!(ADMIN_USER_ID.to_string())));
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_roles_change_only_with_manage_roles_and_a_higher_role() {
    use serenity::model::prelude::*;
    const BOT_ROLE_ID: u64 = 1_100_000_000_000_000_105;
    let (guild, alice, readers) = (
        GuildId::new(GUILD_ID),
        UserId::new(USER_ID),
        RoleId::new(PING_ROLE_ID),
    );
    // The standard guild: the bot has no role, so no Manage Roles and nothing above readers.
    let fake = FakeDiscord::start().await;
    let err = fake
        .http()
        .add_member_role(guild, alice, readers, None)
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (403, 50013), "{err}");
    assert!(fake.member_roles(GUILD_ID, USER_ID).is_empty());

    // With Manage Roles on a role below the bot's own: added, then removed.
    let with_role = |permissions: u64, position: u16| {
        TestGuild::default().with_bot_role(BOT_ROLE_ID, permissions, position)
    };
    let fake = FakeDiscord::builder()
        .guilds(vec![with_role(payloads::MANAGE_ROLES, 5)])
        .start()
        .await;
    let http = fake.http();
    http.add_member_role(guild, alice, readers, None)
        .await
        .unwrap();
    assert_eq!(fake.member_roles(GUILD_ID, USER_ID), [PING_ROLE_ID]);
    http.remove_member_role(guild, alice, readers, None)
        .await
        .unwrap();
    assert!(fake.member_roles(GUILD_ID, USER_ID).is_empty());
    let err = http
        .add_member_role(guild, alice, RoleId::new(424242), None)
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (404, 10011), "{err}");

    // Manage Roles, but the bot's role is below the one asked for: refused.
    let fake = FakeDiscord::builder()
        .guilds(vec![with_role(payloads::MANAGE_ROLES, 1)])
        .start()
        .await;
    let err = fake
        .http()
        .add_member_role(guild, alice, readers, None)
        .await
        .unwrap_err();
    assert_eq!(http_status(&err), (403, 50013), "{err}");
    fake.assert_all_bodies_valid();
}
