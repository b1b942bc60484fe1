//! Discord JSON payloads for the end-to-end tests: gateway dispatches the tests send to the bot
//! (INTERACTION_CREATE: slash commands, autocomplete, button clicks, modal submits; MESSAGE_CREATE,
//! GUILD_CREATE, READY) and the objects the fake Discord answers REST calls with (users, members,
//! channels, roles, guilds, the application, attachments).
//!
//! Serenity silently drops a dispatch whose payload does not deserialize into its model (the test
//! then just times out), so every builder here is checked in `tests/fake_discord_selftest.rs` by
//! deserializing its output into the serenity type, and `FakeDiscord::dispatch` re-checks each
//! payload before it goes out. The shapes follow Discord's documented objects, with every field
//! serenity 0.12.5 requires (e.g. `attachment_size_limit`, `entitlements` and `locale` on
//! interactions).
//!
//! Ids are snowflakes written as JSON strings, as Discord sends them. The fixed ids below describe
//! one test world: the bot (whose user id is its application id, as on Discord), an owner, a plain
//! member and an admin, one guild with a general and a weekly channel, a forum channel, a
//! mentionable role to ping and a role that is not mentionable, and a DM channel.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

pub const APP_ID: u64 = 1_100_000_000_000_000_001;
/// On Discord a bot's user id equals its application id.
pub const BOT_USER_ID: u64 = APP_ID;
pub const OWNER_ID: u64 = 1_100_000_000_000_000_002;
/// A plain guild member ("alice").
pub const USER_ID: u64 = 1_100_000_000_000_000_003;
/// A member holding the admin role ("ada").
pub const ADMIN_USER_ID: u64 = 1_100_000_000_000_000_004;
pub const GUILD_ID: u64 = 1_100_000_000_000_000_100;
/// The @everyone role's id is the guild's id.
pub const EVERYONE_ROLE_ID: u64 = GUILD_ID;
pub const ADMIN_ROLE_ID: u64 = 1_100_000_000_000_000_101;
/// The mentionable role "weekly-readers" (members opt in to be pinged by the weekly post).
pub const PING_ROLE_ID: u64 = 1_100_000_000_000_000_103;
/// The role "quiet", which is not mentionable: a mention of it pings nobody unless the author
/// may Mention Everyone.
pub const QUIET_ROLE_ID: u64 = 1_100_000_000_000_000_104;
pub const GENERAL_CHANNEL_ID: u64 = 1_100_000_000_000_000_110;
pub const WEEKLY_CHANNEL_ID: u64 = 1_100_000_000_000_000_111;
/// The forum channel #ideas (type 15): posts there are threads.
pub const FORUM_CHANNEL_ID: u64 = 1_100_000_000_000_000_112;
/// The tag "weekly" of the forum #ideas (its only tag; not required).
pub const FORUM_TAG_ID: u64 = 1_100_000_000_000_000_130;
/// The DM channel between alice and the bot.
pub const DM_CHANNEL_ID: u64 = 1_100_000_000_000_000_200;

pub const ADMINISTRATOR: u64 = 1 << 3;
pub const MANAGE_CHANNELS: u64 = 1 << 4;
pub const MANAGE_GUILD: u64 = 1 << 5;
pub const VIEW_CHANNEL: u64 = 1 << 10;
pub const SEND_MESSAGES: u64 = 1 << 11;
pub const EMBED_LINKS: u64 = 1 << 14;
pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
/// Lets a message ping @everyone, @here and roles that are not mentionable.
pub const MENTION_EVERYONE: u64 = 1 << 17;
/// Manage Roles (in a channel's overwrites: Manage Permissions).
pub const MANAGE_ROLES: u64 = 1 << 28;
pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
pub const CREATE_PRIVATE_THREADS: u64 = 1 << 36;
/// Posting in a thread needs this, not Send Messages.
pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
/// What an ordinary member may do in a channel (the thread permissions are in Discord's default
/// @everyone set).
pub const MEMBER_PERMISSIONS: u64 = VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS;
/// What an admin may do (Discord reports the computed set).
pub const ADMIN_PERMISSIONS: u64 =
    MEMBER_PERMISSIONS | ADMINISTRATOR | MANAGE_GUILD | MANAGE_CHANNELS;
/// The bot's permissions in a channel (`app_permissions` on interactions).
pub const BOT_PERMISSIONS: u64 = VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | READ_MESSAGE_HISTORY
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS;

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A fresh snowflake, strictly greater than every one handed out before in this process, with
/// the current time in its timestamp bits (so ids sort by creation like Discord's).
pub fn next_snowflake() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    let by_time = (now_ms - DISCORD_EPOCH_MS) << 22;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = by_time.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// The smallest snowflake created at `at`.
pub fn snowflake_at(at: std::time::SystemTime) -> u64 {
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    ms.saturating_sub(DISCORD_EPOCH_MS) << 22
}

/// The creation time encoded in a snowflake, as an RFC 3339 timestamp.
pub fn snowflake_timestamp(id: u64) -> String {
    let ms = (id >> 22) + DISCORD_EPOCH_MS;
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .expect("snowflake time in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// The current time as Discord writes timestamps.
pub fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn id(v: u64) -> Value {
    Value::String(v.to_string())
}

/// A user object. `bot` marks bot accounts (a DM from one must not be answered).
pub fn user(user_id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": null,
        "bot": bot,
        "public_flags": 0,
        // Discord's user object has these two; the spec's UserResponse requires them.
        "flags": 0,
        "primary_guild": null,
    })
}

/// The bot's own user, as in READY and `GET /users/@me`.
pub fn bot_user() -> Value {
    let mut u = user(BOT_USER_ID, "insight-bot", true);
    let o = u.as_object_mut().unwrap();
    o.insert("verified".into(), json!(true));
    o.insert("mfa_enabled".into(), json!(false));
    u
}

/// The plain member "alice".
pub fn alice() -> Value {
    user(USER_ID, "alice", false)
}

/// The admin member "ada".
pub fn ada() -> Value {
    user(ADMIN_USER_ID, "ada", false)
}

/// A guild member. `permissions` is only present on members inside interactions (the member's
/// computed permissions in the channel).
pub fn member(user: Value, roles: &[u64], permissions: Option<u64>) -> Value {
    let mut m = json!({
        "user": user,
        "nick": null,
        "avatar": null,
        "roles": roles.iter().map(|r| id(*r)).collect::<Vec<_>>(),
        "joined_at": "2024-01-01T00:00:00.000000+00:00",
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
    });
    if let Some(p) = permissions {
        m["permissions"] = Value::String(p.to_string());
    }
    m
}

/// The application, as `GET /oauth2/applications/@me` returns it (poise reads `owner`).
pub fn application() -> Value {
    json!({
        "id": id(APP_ID),
        "name": "insight-bot",
        "icon": null,
        "description": "Leadership insights, found by question, posted weekly.",
        "summary": "",
        "rpc_origins": [],
        "bot_public": true,
        "bot_require_code_grant": false,
        "bot": bot_user(),
        "owner": user(OWNER_ID, "owner", false),
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "team": null,
        "flags": 0,
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "approximate_guild_count": 1,
    })
}

/// The READY dispatch's data. `guild_ids` are listed as unavailable stubs, as Discord does;
/// each is followed by a GUILD_CREATE.
pub fn ready(
    session_id: &str,
    resume_gateway_url: &str,
    guild_ids: &[u64],
    shard: Option<[u32; 2]>,
) -> Value {
    json!({
        "v": 10,
        "user": bot_user(),
        "guilds": guild_ids.iter().map(|g| json!({"id": id(*g), "unavailable": true})).collect::<Vec<_>>(),
        "session_id": session_id,
        "resume_gateway_url": resume_gateway_url,
        "shard": shard,
        "application": {"id": id(APP_ID), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "geo_ordered_rtc_regions": [],
        "user_settings": {},
    })
}

/// A guild text channel.
pub fn guild_text_channel(channel_id: u64, guild_id: u64, name: &str) -> Value {
    json!({
        "id": id(channel_id),
        "type": 0,
        "guild_id": id(guild_id),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": false,
        "topic": null,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "parent_id": null,
        "flags": 0,
    })
}

/// A guild forum channel (type 15, GUILD_FORUM): it holds only threads (posts), each started with
/// a message. No tags, no default reaction, Discord's defaults otherwise; add tags with
/// [`forum_tag`] into `available_tags`.
pub fn guild_forum_channel(channel_id: u64, guild_id: u64, name: &str) -> Value {
    // A text channel's fields (a forum's `topic` is its guidelines, its `last_message_id` the
    // latest post's thread, its `flags` bit 4 REQUIRE_TAG), then the forum's own.
    let mut forum = guild_text_channel(channel_id, guild_id, name);
    let fields = json!({
        "type": 15,
        "available_tags": [],
        "default_reaction_emoji": null,
        "default_thread_rate_limit_per_user": 0,
        "default_auto_archive_duration": 4320,
        // null: the client's choice (LATEST_ACTIVITY); 0 LATEST_ACTIVITY, 1 CREATION_DATE.
        "default_sort_order": null,
        // 0 NOT_SET, 1 LIST_VIEW, 2 GALLERY_VIEW.
        "default_forum_layout": 0,
        "template": "",
    });
    for (key, value) in fields.as_object().into_iter().flatten() {
        forum[key] = value.clone();
    }
    forum
}

/// A forum tag (for a forum channel's `available_tags`), shown with the unicode emoji `emoji`.
pub fn forum_tag(tag_id: u64, name: &str, emoji: &str) -> Value {
    json!({
        "id": id(tag_id),
        "name": name,
        "moderated": false,
        "emoji_id": null,
        "emoji_name": emoji,
    })
}

/// A thread channel as Discord answers it: `kind` 11 (PUBLIC_THREAD), 10 (ANNOUNCEMENT_THREAD)
/// or 12 (PRIVATE_THREAD), in `parent_id` (a text, announcement or forum channel), started by
/// `owner_id`, not archived, with no messages counted yet (Discord counts neither the starter
/// message nor deleted ones) and its owner as its only member.
pub fn thread_channel(
    thread_id: u64,
    guild_id: u64,
    parent_id: u64,
    owner_id: u64,
    name: &str,
    kind: u8,
    auto_archive_duration: u64,
) -> Value {
    let created = snowflake_timestamp(thread_id);
    json!({
        "id": id(thread_id),
        "type": kind,
        "guild_id": id(guild_id),
        "parent_id": id(parent_id),
        "owner_id": id(owner_id),
        "name": name,
        "last_message_id": null,
        "last_pin_timestamp": null,
        "rate_limit_per_user": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": false,
            "auto_archive_duration": auto_archive_duration,
            "archive_timestamp": created,
            "locked": false,
            "create_timestamp": created,
        },
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "applied_tags": [],
    })
}

/// Adds a permission overwrite to a channel: `kind` 0 for a role, 1 for a member.
pub fn with_overwrite(
    mut channel: Value,
    target_id: u64,
    kind: u8,
    allow: u64,
    deny: u64,
) -> Value {
    channel["permission_overwrites"]
        .as_array_mut()
        .expect("a guild channel")
        .push(json!({
            "id": id(target_id),
            "type": kind,
            "allow": allow.to_string(),
            "deny": deny.to_string(),
        }));
    channel
}

/// A DM channel with `recipient`.
pub fn dm_channel(channel_id: u64, recipient: Value) -> Value {
    json!({
        "id": id(channel_id),
        "type": 1,
        "last_message_id": null,
        "recipients": [recipient],
        "flags": 0,
    })
}

/// A role nobody may ping by mentioning it (`mentionable: false`) unless they may Mention
/// Everyone; see [`mentionable_role`].
pub fn role(role_id: u64, name: &str, permissions: u64, position: u16) -> Value {
    json!({
        "id": id(role_id),
        "name": name,
        "color": 0,
        // serenity 0.12.5 requires `colors` (Discord's gradient role colours) on every role.
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": permissions.to_string(),
        "managed": false,
        "mentionable": false,
        "flags": 0,
    })
}

/// A role anyone may ping by mentioning it (`<@&id>`), as a role members opt in to for
/// announcements.
pub fn mentionable_role(role_id: u64, name: &str, permissions: u64, position: u16) -> Value {
    let mut r = role(role_id, name, permissions, position);
    r["mentionable"] = json!(true);
    r
}

/// A message object. `guild_id` is `None` for DMs.
pub fn message(
    message_id: u64,
    channel_id: u64,
    guild_id: Option<u64>,
    author: Value,
    content: &str,
) -> Value {
    let mut m = json!({
        "id": id(message_id),
        "channel_id": id(channel_id),
        "author": author,
        "content": content,
        "timestamp": snowflake_timestamp(message_id),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
    });
    if let Some(g) = guild_id {
        m["guild_id"] = id(g);
    }
    m
}

/// MESSAGE_CREATE data for a direct message to the bot in [`DM_CHANNEL_ID`]: no `guild_id`, no
/// `member`. Use `user(.., true)` as `author` for a message from another bot.
pub fn dm_message_create(content: &str, author: Value) -> Value {
    message(next_snowflake(), DM_CHANNEL_ID, None, author, content)
}

/// MESSAGE_CREATE data for a message in a guild channel (with the author's partial member).
pub fn guild_message_create(channel_id: u64, guild_id: u64, content: &str, author: Value) -> Value {
    let mut m = message(
        next_snowflake(),
        channel_id,
        Some(guild_id),
        author,
        content,
    );
    let mut partial = member(Value::Null, &[], None);
    partial.as_object_mut().unwrap().remove("user");
    m["member"] = partial;
    m
}

/// A guild as the tests configure it: what GUILD_CREATE carries and what the REST routes
/// `GET /guilds/{id}`, `/roles`, `/members/{user}`, `/channels` and `GET /channels/{id}` answer.
#[derive(Clone, Debug)]
pub struct TestGuild {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub channels: Vec<Value>,
    pub roles: Vec<Value>,
    pub members: Vec<Value>,
}

impl Default for TestGuild {
    /// The standard test guild: text channels #general and #weekly, the forum #ideas (one tag,
    /// "weekly"), roles @everyone (member permissions), admin (ADMINISTRATOR), weekly-readers
    /// (mentionable, no permissions) and quiet (not mentionable, no permissions), members alice,
    /// ada (admin), the owner and the bot.
    fn default() -> Self {
        let mut ideas = guild_forum_channel(FORUM_CHANNEL_ID, GUILD_ID, "ideas");
        ideas["available_tags"] = json!([forum_tag(FORUM_TAG_ID, "weekly", "\u{1f4a1}")]);
        Self {
            id: GUILD_ID,
            name: "Test Guild".into(),
            owner_id: OWNER_ID,
            channels: vec![
                guild_text_channel(GENERAL_CHANNEL_ID, GUILD_ID, "general"),
                guild_text_channel(WEEKLY_CHANNEL_ID, GUILD_ID, "weekly"),
                ideas,
            ],
            roles: vec![
                role(EVERYONE_ROLE_ID, "@everyone", MEMBER_PERMISSIONS, 0),
                role(ADMIN_ROLE_ID, "admin", ADMINISTRATOR, 1),
                mentionable_role(PING_ROLE_ID, "weekly-readers", 0, 2),
                role(QUIET_ROLE_ID, "quiet", 0, 3),
            ],
            members: vec![
                member(alice(), &[], None),
                member(ada(), &[ADMIN_ROLE_ID], None),
                member(user(OWNER_ID, "owner", false), &[], None),
                member(bot_user(), &[], None),
            ],
        }
    }
}

impl TestGuild {
    fn common(&self) -> Value {
        json!({
            "id": id(self.id),
            "name": self.name,
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": id(self.owner_id),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self.roles,
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": null,
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "max_presences": null,
            "max_members": 250000,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": null,
        })
    }

    /// `GET /guilds/{id}` (serenity's `PartialGuild`).
    pub fn rest_guild(&self) -> Value {
        self.common()
    }

    /// GUILD_CREATE data (serenity's `GuildCreateEvent`).
    pub fn guild_create(&self) -> Value {
        let mut g = self.common();
        let o = g.as_object_mut().unwrap();
        o.insert(
            "joined_at".into(),
            json!("2024-01-01T00:00:00.000000+00:00"),
        );
        o.insert("large".into(), json!(false));
        o.insert("unavailable".into(), json!(false));
        o.insert("member_count".into(), json!(self.members.len()));
        o.insert("voice_states".into(), json!([]));
        o.insert("members".into(), json!(self.members));
        o.insert("channels".into(), json!(self.channels));
        o.insert("threads".into(), json!([]));
        o.insert("presences".into(), json!([]));
        o.insert("stage_instances".into(), json!([]));
        o.insert("guild_scheduled_events".into(), json!([]));
        o.insert("soundboard_sounds".into(), json!([]));
        g
    }

    /// This guild with a role of the bot's own (`role_id`, named insight-bot) with `permissions`
    /// at `position`, which the bot's member has: what Manage Roles and the role hierarchy are
    /// checked against.
    pub fn with_bot_role(mut self, role_id: u64, permissions: u64, position: u16) -> Self {
        self.roles
            .push(role(role_id, "insight-bot", permissions, position));
        for member in &mut self.members {
            if id_of(&member["user"]) == BOT_USER_ID {
                member["roles"] = json!([id(role_id)]);
            }
        }
        self
    }

    /// The member object for `user_id`, if that user is in the guild.
    pub fn member(&self, user_id: u64) -> Option<Value> {
        self.members
            .iter()
            .find(|m| m["user"]["id"] == id(user_id))
            .cloned()
    }

    /// The channel object for `channel_id`, if the guild has it.
    pub fn channel(&self, channel_id: u64) -> Option<Value> {
        self.channels
            .iter()
            .find(|c| c["id"] == id(channel_id))
            .cloned()
    }
}

// ---------------------------------------------------------------------------------------------
// Interaction options

/// A string option (type 3).
pub fn opt_string(name: &str, value: &str) -> Value {
    json!({"name": name, "type": 3, "value": value})
}

/// An integer option (type 4).
pub fn opt_int(name: &str, value: i64) -> Value {
    json!({"name": name, "type": 4, "value": value})
}

/// A boolean option (type 5).
pub fn opt_bool(name: &str, value: bool) -> Value {
    json!({"name": name, "type": 5, "value": value})
}

/// A channel option (type 7). The interaction builder adds the channel to `data.resolved`, which
/// serenity needs to hand the option to poise.
pub fn opt_channel(name: &str, channel_id: u64) -> Value {
    json!({"name": name, "type": 7, "value": id(channel_id)})
}

/// A subcommand (type 1) with its options: `/weekly set channel:...` is
/// `opt_subcommand("set", vec![opt_channel("channel", ..)])` on command `weekly`.
pub fn opt_subcommand(name: &str, options: Vec<Value>) -> Value {
    json!({"name": name, "type": 1, "options": options})
}

/// A subcommand group (type 2) holding subcommands.
pub fn opt_group(name: &str, subcommands: Vec<Value>) -> Value {
    json!({"name": name, "type": 2, "options": subcommands})
}

/// A role option (type 8); the interaction resolves it to a role with that id.
pub fn opt_role(name: &str, role_id: u64) -> Value {
    json!({"name": name, "type": 8, "value": role_id.to_string()})
}

/// An attachment option (type 11): the value is the attachment's id. Discord resolves it in
/// `data.resolved.attachments`, so give the builder the attachment object with
/// [`InteractionBuilder::resolved_attachment`] (e.g. one from `FakeDiscord::host_attachment`);
/// [`InteractionBuilder::build`] panics when it is missing (serenity would leave the option
/// unresolved and poise would refuse the command).
pub fn opt_attachment(name: &str, attachment_id: u64) -> Value {
    json!({"name": name, "type": 11, "value": id(attachment_id)})
}

/// The `id` of a Discord object (an attachment, a message...), written as a string or a number.
pub fn id_of(object: &Value) -> u64 {
    match &object["id"] {
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("id {s:?} is not a snowflake")),
        Value::Number(n) => n.as_u64().expect("id is not a snowflake"),
        _ => panic!("no id in {object}"),
    }
}

/// An attachment object as Discord sends it in messages and in `data.resolved.attachments`.
/// `size` is what Discord reports (the bytes' length, unless a test lies about it).
pub fn attachment(
    attachment_id: u64,
    filename: &str,
    content_type: Option<&str>,
    size: u64,
    url: &str,
) -> Value {
    let mut a = json!({
        "id": id(attachment_id),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": url,
    });
    if let Some(ct) = content_type {
        a["content_type"] = json!(ct);
    }
    a
}

/// The focused string option of an autocomplete interaction, holding what was typed so far.
pub fn opt_focused(name: &str, typed: &str) -> Value {
    json!({"name": name, "type": 3, "value": typed, "focused": true})
}

// ---------------------------------------------------------------------------------------------
// Interactions

#[derive(Clone, Debug)]
enum Place {
    Guild {
        guild_id: u64,
        channel_id: u64,
        member: Value,
    },
    /// `context` 1 is the bot's DM, 2 a private channel (group DM or another user's DM).
    Dm {
        channel_id: u64,
        user: Value,
        context: u8,
    },
}

/// Builds INTERACTION_CREATE data. Start from [`slash_command`], [`autocomplete`],
/// [`button_click`] or [`modal_submit`]; by default the interaction comes from alice in #general of the test guild,
/// with [`MEMBER_PERMISSIONS`]. Each [`build`](Self::build) gets a fresh id and token.
#[derive(Clone, Debug)]
pub struct InteractionBuilder {
    kind: u8,
    data: Value,
    message: Option<Value>,
    place: Place,
    member_permissions: u64,
    app_permissions: u64,
    resolved_channels: Vec<Value>,
    resolved_attachments: Vec<Value>,
    /// Through the asker's own install of the bot, in a server that has not installed it.
    user_installed: bool,
}

/// A slash command (interaction type 2) named `name` with `options`.
pub fn slash_command(name: &str, options: Vec<Value>) -> InteractionBuilder {
    InteractionBuilder::new(2, command_data(name, options))
}

/// An autocomplete request (interaction type 4) for command `name`; one option must be
/// [`opt_focused`].
pub fn autocomplete(name: &str, options: Vec<Value>) -> InteractionBuilder {
    InteractionBuilder::new(4, command_data(name, options))
}

/// A click on button `custom_id` (interaction type 3) of `message` (the message the button is
/// attached to; its `channel_id` should match the interaction's channel).
pub fn button_click(custom_id: &str, message: Value) -> InteractionBuilder {
    let mut b = InteractionBuilder::new(3, json!({"custom_id": custom_id, "component_type": 2}));
    b.message = Some(message);
    b
}

/// The submission of modal `custom_id` (interaction type 5, MODAL_SUBMIT) with the values the
/// user typed: `fields` are `(text input custom_id, value)`, each in its own action row as
/// Discord sends them (`{type: 1, components: [{type: 4, custom_id, value}]}`), which serenity
/// reads as `ModalInteractionData`. A modal opened from a message component carries that message:
/// add it with [`with_message`](InteractionBuilder::with_message) (then the bot may answer with
/// UPDATE_MESSAGE or DEFERRED_UPDATE_MESSAGE).
pub fn modal_submit(custom_id: &str, fields: &[(&str, &str)]) -> InteractionBuilder {
    let rows: Vec<Value> = fields
        .iter()
        .map(|(input, value)| {
            json!({"type": 1, "components": [{"type": 4, "custom_id": input, "value": value}]})
        })
        .collect();
    InteractionBuilder::new(5, json!({"custom_id": custom_id, "components": rows}))
}

fn command_data(name: &str, options: Vec<Value>) -> Value {
    // A stable id per command name (Discord's ids are per registration; poise matches by name).
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let command_id = 1_200_000_000_000_000_000 + hash % 100_000_000_000_000_000;
    json!({"id": id(command_id), "name": name, "type": 1, "options": options})
}

impl InteractionBuilder {
    fn new(kind: u8, data: Value) -> Self {
        Self {
            kind,
            data,
            message: None,
            place: Place::Guild {
                guild_id: GUILD_ID,
                channel_id: GENERAL_CHANNEL_ID,
                member: member(alice(), &[], None),
            },
            member_permissions: MEMBER_PERMISSIONS,
            app_permissions: BOT_PERMISSIONS,
            resolved_channels: Vec::new(),
            resolved_attachments: Vec::new(),
            user_installed: false,
        }
    }

    /// Through the asker's own (user) install, in a server that never installed the bot:
    /// `authorizing_integration_owners` names the user only, as Discord sends it.
    pub fn user_installed(mut self) -> Self {
        self.user_installed = true;
        self
    }

    /// The message the interaction comes from: for a button click, the one its button is on;
    /// for a modal submit, the message of the component that opened the modal.
    pub fn with_message(mut self, message: Value) -> Self {
        self.message = Some(message);
        self
    }

    /// In the bot's DM with `user` (context 1, channel [`DM_CHANNEL_ID`]).
    pub fn in_dm(mut self, user: Value) -> Self {
        self.place = Place::Dm {
            channel_id: DM_CHANNEL_ID,
            user,
            context: 1,
        };
        self
    }

    /// In a private channel that is not the bot's DM (context 2), e.g. a user-installed command.
    pub fn in_private_channel(mut self, channel_id: u64, user: Value) -> Self {
        self.place = Place::Dm {
            channel_id,
            user,
            context: 2,
        };
        self
    }

    /// In a guild channel, by `member` (see [`member`]); its `permissions` are set from
    /// [`member_permissions`](Self::member_permissions).
    pub fn in_guild(mut self, guild_id: u64, channel_id: u64, member: Value) -> Self {
        self.place = Place::Guild {
            guild_id,
            channel_id,
            member,
        };
        self
    }

    /// In another channel of the current guild (or another DM channel).
    pub fn in_channel(mut self, new_channel: u64) -> Self {
        match &mut self.place {
            Place::Guild { channel_id, .. } | Place::Dm { channel_id, .. } => {
                *channel_id = new_channel
            }
        }
        self
    }

    /// By ada, who holds the admin role, with [`ADMIN_PERMISSIONS`].
    pub fn by_admin(self) -> Self {
        self.in_guild_member(member(ada(), &[ADMIN_ROLE_ID], None))
            .member_permissions(ADMIN_PERMISSIONS)
    }

    /// By another guild member (same guild and channel).
    pub fn in_guild_member(mut self, new_member: Value) -> Self {
        if let Place::Guild { member, .. } = &mut self.place {
            *member = new_member;
        } else {
            panic!("in_guild_member on a DM interaction");
        }
        self
    }

    /// The invoking member's computed permissions in the channel.
    pub fn member_permissions(mut self, permissions: u64) -> Self {
        self.member_permissions = permissions;
        self
    }

    /// The bot's permissions in the channel.
    pub fn app_permissions(mut self, permissions: u64) -> Self {
        self.app_permissions = permissions;
        self
    }

    /// Resolves a channel option to this channel object instead of a generated text channel.
    pub fn resolved_channel(mut self, channel: Value) -> Self {
        self.resolved_channels.push(channel);
        self
    }

    /// Resolves an attachment option ([`opt_attachment`]) to this attachment object (see
    /// [`attachment`]; `FakeDiscord::host_attachment` returns one whose `url` serves the bytes).
    pub fn resolved_attachment(mut self, attachment: Value) -> Self {
        assert!(
            attachment["id"].is_string(),
            "an attachment object needs its id as a string: {attachment}"
        );
        self.resolved_attachments.push(attachment);
        self
    }

    /// The INTERACTION_CREATE data, with a fresh id and token.
    ///
    /// # Panics
    /// When an attachment option has no [`resolved_attachment`](Self::resolved_attachment).
    pub fn build(&self) -> Value {
        let interaction_id = next_snowflake();
        let mut d = json!({
            "id": id(interaction_id),
            "application_id": id(APP_ID),
            "type": self.kind,
            "token": format!("fake-interaction-token-{interaction_id}"),
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "app_permissions": self.app_permissions.to_string(),
            "attachment_size_limit": 10_485_760,
        });
        let mut data = self.data.clone();
        if matches!(self.kind, 2 | 4) {
            let mut resolved = Map::new();
            let channels = self.resolve_channels(&data["options"]);
            if !channels.is_empty() {
                resolved.insert("channels".into(), Value::Object(channels));
            }
            let attachments = self.resolve_attachments(&data["options"]);
            if !attachments.is_empty() {
                resolved.insert("attachments".into(), Value::Object(attachments));
            }
            let roles = self.resolve_roles(&data["options"]);
            if !roles.is_empty() {
                resolved.insert("roles".into(), Value::Object(roles));
            }
            if !resolved.is_empty() {
                data["resolved"] = Value::Object(resolved);
            }
        }
        let o = d.as_object_mut().unwrap();
        o.insert("data".into(), data);
        match &self.place {
            Place::Guild {
                guild_id,
                channel_id,
                member,
            } => {
                let mut member = member.clone();
                member["permissions"] = Value::String(self.member_permissions.to_string());
                o.insert("guild_id".into(), id(*guild_id));
                o.insert(
                    "guild".into(),
                    json!({"id": id(*guild_id), "locale": "en-US", "features": []}),
                );
                o.insert("guild_locale".into(), json!("en-US"));
                o.insert("channel_id".into(), id(*channel_id));
                o.insert(
                    "channel".into(),
                    json!({"id": id(*channel_id), "type": 0, "guild_id": id(*guild_id), "name": "channel"}),
                );
                let owners = if self.user_installed {
                    json!({"1": member["user"]["id"]})
                } else {
                    json!({"0": id(*guild_id)})
                };
                o.insert("member".into(), member);
                o.insert("authorizing_integration_owners".into(), owners);
                o.insert("context".into(), json!(0));
            }
            Place::Dm {
                channel_id,
                user,
                context,
            } => {
                o.insert("channel_id".into(), id(*channel_id));
                o.insert(
                    "channel".into(),
                    json!({"id": id(*channel_id), "type": 1, "recipients": [user]}),
                );
                o.insert("user".into(), user.clone());
                let owners = if *context == 1 {
                    json!({"0": "0"})
                } else {
                    json!({"1": user["id"]})
                };
                o.insert("authorizing_integration_owners".into(), owners);
                o.insert("context".into(), json!(context));
            }
        }
        if let Some(m) = &self.message {
            o.insert("message".into(), m.clone());
        }
        d
    }

    /// `data.resolved.roles` for every role option: the standard guild's role of that id as it
    /// is (its `mentionable` flag included), else a role of that id with no permissions
    /// (Discord always resolves a role option).
    fn resolve_roles(&self, options: &Value) -> Map<String, Value> {
        let known = TestGuild::default().roles;
        let mut out = Map::new();
        for opt in all_options(options) {
            if opt["type"] != 8 {
                continue;
            }
            let Some(role_id) = opt["value"].as_str() else {
                continue;
            };
            let parsed = role_id.parse::<u64>().unwrap_or(0);
            let resolved = known
                .iter()
                .find(|r| r["id"] == id(parsed))
                .cloned()
                .unwrap_or_else(|| role(parsed, &format!("role-{}", parsed % 1000), 0, 1));
            out.insert(role_id.to_string(), resolved);
        }
        out
    }

    /// `data.resolved.attachments`: every attachment given, keyed by id.
    fn resolve_attachments(&self, options: &Value) -> Map<String, Value> {
        let out: Map<String, Value> = self
            .resolved_attachments
            .iter()
            .map(|a| (a["id"].as_str().unwrap_or_default().to_string(), a.clone()))
            .collect();
        for opt in all_options(options) {
            if opt["type"] != 11 {
                continue;
            }
            let attachment_id = opt["value"].as_str().unwrap_or_default();
            assert!(
                out.contains_key(attachment_id),
                "attachment option {} refers to attachment {attachment_id}, which has no \
                 resolved_attachment: Discord always resolves it",
                opt["name"]
            );
        }
        out
    }

    /// `data.resolved.channels` for every channel option, nested ones included.
    fn resolve_channels(&self, options: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        for opt in all_options(options) {
            if opt["type"] != 7 {
                continue;
            }
            let Some(channel_id) = opt["value"].as_str() else {
                continue;
            };
            let given = self
                .resolved_channels
                .iter()
                .find(|c| c["id"] == channel_id);
            let channel = given.cloned().unwrap_or_else(|| {
                let (name, kind) = match channel_id.parse::<u64>() {
                    Ok(GENERAL_CHANNEL_ID) => ("general".to_string(), 0),
                    Ok(WEEKLY_CHANNEL_ID) => ("weekly".to_string(), 0),
                    Ok(FORUM_CHANNEL_ID) => ("ideas".to_string(), 15),
                    _ => (format!("channel-{channel_id}"), 0),
                };
                json!({
                    "id": channel_id,
                    "name": name,
                    "type": kind,
                    "parent_id": null,
                    "permissions": self.app_permissions.to_string(),
                })
            });
            out.insert(channel_id.to_string(), channel);
        }
        out
    }
}

/// Every option, nested ones (in subcommands and groups) included.
fn all_options(options: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = options
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    while let Some(opt) = stack.pop() {
        if let Some(nested) = opt["options"].as_array() {
            stack.extend(nested);
        }
        out.push(opt);
    }
    out
}

/// The REST path of the interaction callback the bot must call for `interaction` (as built by
/// [`InteractionBuilder::build`]): `/api/v10/interactions/{id}/{token}/callback`.
pub fn callback_path(interaction: &Value) -> String {
    format!(
        "/api/v10/interactions/{}/{}/callback",
        interaction["id"].as_str().expect("interaction id"),
        interaction["token"].as_str().expect("interaction token")
    )
}
