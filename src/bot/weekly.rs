//! Scheduled posts on Discord: the `/weekly` commands that manage a server's feeds, and the
//! [`DiscordPublisher`] that the core [`Poster`](crate::weekly::poster::Poster) sends through.
//!
//! `/weekly` is server-only and needs Manage Server twice over: `default_member_permissions`
//! hides it from other members in Discord's UI, and poise's `required_permissions` checks the
//! member's permissions from the interaction again at run time (a server can override the UI
//! default, so the run-time check is the one that counts).
//!
//! A server has up to ten feeds, one per channel. `set` creates or changes the feed of the
//! channel it names; every other subcommand takes an optional `channel`, which may be left out
//! when the server has one feed (with several, the reply names them and asks which): a command
//! that guessed would skip or pause the wrong channel's posts.
//!
//! Pings: a post mentions at most the feed's one role, and its `allowed_mentions` lists that
//! role and nothing else (`parse: []`), so no insight text, title or topic can ping anyone.
//! `set` refuses `@everyone` and a role the bot could not mention (not mentionable, and the bot
//! lacks Mention Everyone), rather than save a ping that silently does nothing.
//!
//! The publisher makes plain REST calls with reqwest instead of serenity's `Http`: serenity turns a
//! 429 into an error without its `retry_after`, and the poster needs the status (403/404 pause a
//! feed, 5xx retry, 429 waits) to follow Discord's rules.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use poise::serenity_prelude as serenity;
use serenity::{ChannelType, CreateAutocompleteResponse, Mentionable, Permissions};

use super::commands::{answer_in_time, ephemeral};
use super::render::{self, post_title};
use super::{Context, Error};
use crate::config::Token;
use crate::sharding::Shards;
use crate::store::{FeedSettings, FeedSpec, Limit, Pause, PostSource, StoreError};
use crate::weekly::feed::{FeedId, MAX_FEEDS_PER_SERVER, MAX_PAUSE_DAYS, THREAD_ARCHIVE_MINUTES};
use crate::weekly::poster::{Delivery, OutgoingPost, PublishError, PublishFuture, Publisher};
use crate::weekly::schedule::{format_rfc3339_z, parse_time, parse_zone, Repeat, Schedule};

/// What the bot needs in a channel to post there.
const NEEDED: [(Permissions, &str); 3] = [
    (Permissions::VIEW_CHANNEL, "View Channel"),
    (Permissions::SEND_MESSAGES, "Send Messages"),
    (Permissions::EMBED_LINKS, "Embed Links"),
];

/// What the bot needs besides [`NEEDED`] to start a thread under each post.
const NEEDED_FOR_THREADS: [(Permissions, &str); 2] = [
    (Permissions::CREATE_PUBLIC_THREADS, "Create Public Threads"),
    (
        Permissions::SEND_MESSAGES_IN_THREADS,
        "Send Messages in Threads",
    ),
];

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday as W;
        match self {
            Day::Monday => W::Mon,
            Day::Tuesday => W::Tue,
            Day::Wednesday => W::Wed,
            Day::Thursday => W::Thu,
            Day::Friday => W::Fri,
            Day::Saturday => W::Sat,
            Day::Sunday => W::Sun,
        }
    }
}

/// How often a feed posts (`repeat:`).
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum RepeatChoice {
    #[name = "weekly"]
    Weekly,
    #[name = "every-2-weeks"]
    EveryTwoWeeks,
    #[name = "weekdays"]
    Weekdays,
    #[name = "daily"]
    Daily,
}

impl RepeatChoice {
    fn repeat(self) -> Repeat {
        match self {
            RepeatChoice::Weekly => Repeat::Weekly,
            RepeatChoice::EveryTwoWeeks => Repeat::EveryTwoWeeks,
            RepeatChoice::Weekdays => Repeat::Weekdays,
            RepeatChoice::Daily => Repeat::Daily,
        }
    }
}

/// Scheduled insight posts for this server (Manage Server).
#[poise::command(
    slash_command,
    subcommands(
        "set", "list", "show", "off", "post_now", "skip", "pause", "resume", "preview"
    ),
    subcommand_required,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD",
    install_context = "Guild",
    interaction_context = "Guild"
)]
pub async fn weekly(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// How long `/weekly post-now` waits for its post before saying it keeps trying in the background.
const POST_NOW_WAIT: Duration = Duration::from_secs(10);

/// IANA zones matching what has been typed, at most 25.
async fn autocomplete_zone(_ctx: Context<'_>, partial: &str) -> CreateAutocompleteResponse {
    let typed = partial.trim().to_lowercase().replace(' ', "_");
    let mut zones: Vec<(bool, &str)> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|name| name.to_lowercase().contains(&typed))
        .map(|name| {
            let city = name.rsplit('/').next().unwrap_or(name).to_lowercase();
            (
                !(city.starts_with(&typed) || name.to_lowercase().starts_with(&typed)),
                name,
            )
        })
        .collect();
    zones.sort();
    let choices = zones
        .into_iter()
        .take(25)
        .map(|(_, name)| serenity::AutocompleteChoice::new(name, name))
        .collect();
    CreateAutocompleteResponse::new().set_choices(choices)
}

/// What `topic:` takes to draw from every insight again.
const ALL_TOPICS: &str = "all";

/// The topics and packs of this server's collection matching what has been typed (`all` first,
/// then packs: a pack is a whole library section), at most 25.
async fn autocomplete_feed_topic(ctx: Context<'_>, partial: &str) -> CreateAutocompleteResponse {
    let typed = partial.trim().to_lowercase();
    let Ok(collection) = ctx
        .data()
        .collections
        .get(ctx.guild_id().map(|g| g.get()))
        .await
    else {
        return CreateAutocompleteResponse::new();
    };
    let library = collection.library();
    let packs = library
        .packs()
        .into_iter()
        .map(|(pack, count)| (pack.to_string(), format!("pack: {pack} ({count})")));
    let topics = library
        .topics()
        .map(|(topic, count)| (topic.to_string(), format!("{topic} ({count})")));
    let all = std::iter::once((ALL_TOPICS.to_string(), "all: every insight".to_string()));
    let choices = all
        .chain(packs)
        .chain(topics)
        .filter(|(value, _)| value.contains(&typed))
        .take(25)
        .map(|(value, name)| {
            serenity::AutocompleteChoice::new(
                render::truncate(&name, 100),
                render::truncate(&value, 100),
            )
        })
        .collect();
    CreateAutocompleteResponse::new().set_choices(choices)
}

/// The bot's permissions in `channel_id`, or the names to report when they cannot be known
/// (a channel it cannot see is "View Channel" missing).
async fn bot_permissions(
    ctx: Context<'_>,
    channel_id: serenity::ChannelId,
) -> Result<Permissions, Vec<&'static str>> {
    bot_access(ctx, channel_id)
        .await
        .map(|access| access.permissions)
}

/// What the bot may do where a feed posts: its permissions in the channel, the channel as
/// Discord describes it, and whether it can hand out each role (Manage Roles in the server, and
/// a role above it).
struct Access {
    permissions: Permissions,
    channel: serenity::GuildChannel,
    guild: serenity::PartialGuild,
    member: serenity::Member,
}

impl Access {
    /// Whether the bot can give and take `role` (for the "Ping me" button).
    fn can_manage(&self, role: serenity::RoleId) -> bool {
        let top = self
            .member
            .roles
            .iter()
            .filter_map(|r| self.guild.roles.get(r))
            .map(|r| r.position)
            .max()
            .unwrap_or(0);
        let position = self.guild.roles.get(&role).map_or(u16::MAX, |r| r.position);
        let manage = self.guild.owner_id == self.member.user.id
            || self
                .guild
                .member_permissions(&self.member)
                .intersects(Permissions::MANAGE_ROLES | Permissions::ADMINISTRATOR);
        manage && (self.guild.owner_id == self.member.user.id || top > position)
    }
}

/// [`bot_permissions`], with what else [`Access`] holds.
async fn bot_access(
    ctx: Context<'_>,
    channel_id: serenity::ChannelId,
) -> Result<Access, Vec<&'static str>> {
    let everything = || NEEDED.iter().map(|(_, name)| *name).collect();
    let Some(guild_id) = ctx.guild_id() else {
        return Err(everything());
    };
    let channel = match ctx.http().get_channel(channel_id).await {
        Ok(serenity::Channel::Guild(channel)) => channel,
        _ => return Err(vec!["View Channel"]),
    };
    let bot_id = ctx.framework().bot_id();
    match (
        guild_id.to_partial_guild(ctx).await,
        guild_id.member(ctx, bot_id).await,
    ) {
        (Ok(guild), Ok(member)) => Ok(Access {
            permissions: guild.user_permissions_in(&channel, &member),
            channel,
            guild,
            member,
        }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(%guild_id, "cannot read the server to check permissions: {e}");
            Err(everything())
        }
    }
}

/// The names of `needed` missing from `have`.
fn missing_of(have: Permissions, needed: &[(Permissions, &'static str)]) -> Vec<&'static str> {
    needed
        .iter()
        .filter(|(permission, _)| !have.contains(*permission))
        .map(|(_, name)| *name)
        .collect()
}

/// The bot's missing permissions in `channel`, as names; empty when it can post there.
pub(super) async fn missing_permissions(
    ctx: Context<'_>,
    channel_id: serenity::ChannelId,
) -> Vec<&'static str> {
    match bot_permissions(ctx, channel_id).await {
        Ok(have) => missing_of(have, &NEEDED),
        Err(missing) => missing,
    }
}

fn discord_timestamp(at: chrono::DateTime<Utc>) -> String {
    format!("<t:{0}:F> (<t:{0}:R>)", at.timestamp())
}

fn local(at: chrono::DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

/// "every Monday at 09:00", "every other Monday at 09:00", "every weekday (Monday to Friday) at
/// 09:00", "every day at 09:00": how a feed's cadence reads in a sentence.
fn cadence_phrase(schedule: &Schedule) -> String {
    use crate::weekly::schedule::{weekday_name, Cadence};
    let when = match schedule.cadence {
        Cadence::Weekly(day) => format!("every {}", weekday_name(day)),
        Cadence::EveryTwoWeeks { weekday, .. } => format!("every other {}", weekday_name(weekday)),
        Cadence::Weekdays => "every weekday (Monday to Friday)".to_string(),
        Cadence::Daily => "every day".to_string(),
    };
    format!("{when} at {}", schedule.time.format("%H:%M"))
}

/// Replies ephemerally with `text` and returns `Ok(())`: the shape of every refusal.
async fn refuse(ctx: Context<'_>, text: impl Into<String>) -> Result<(), Error> {
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

/// Create or change the scheduled insight posts of a channel.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
#[allow(clippy::too_many_arguments)] // one per command option
pub async fn set(
    ctx: Context<'_>,
    #[description = "The channel to post in (a text, announcement or forum channel)"]
    #[channel_types("Text", "News", "Forum")]
    channel: serenity::PartialChannel,
    #[description = "Day of the week, for weekly and every-2-weeks (default Monday)"] day: Option<
        Day,
    >,
    #[description = "Local time, 24-hour HH:MM (default 09:00)"]
    #[max_length = 5]
    time: Option<String>,
    #[description = "IANA time zone, e.g. Europe/London (default UTC)"]
    #[autocomplete = "autocomplete_zone"]
    #[max_length = 64]
    timezone: Option<String>,
    #[description = "How often (default weekly)"] repeat: Option<RepeatChoice>,
    #[description = "Post only insights of this topic or pack (all: every insight, the default)"]
    #[autocomplete = "autocomplete_feed_topic"]
    #[max_length = 64]
    topic: Option<String>,
    #[description = "Start a discussion thread under each post (default no)"] thread: Option<bool>,
    #[description = "A role to mention in each post (members opt in by taking the role)"]
    ping: Option<serenity::Role>,
    #[description = "Stop mentioning the feed's role"]
    #[rename = "no-ping"]
    no_ping: Option<bool>,
) -> Result<(), Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(());
    };
    let feed = FeedId::new(guild_id.get(), channel.id.get());
    let data = ctx.data();
    // Changing a feed: an option left out keeps its value (re-running `set` after fixing a
    // permission must not drop the topic, the thread or the ping). A stored row that no longer
    // parses is replaced as if new.
    let prior = answer_in_time(ctx, true, data.store.call(move |db| db.feed(feed)))
        .await?
        .ok()
        .flatten();
    let repeat = repeat
        .map(RepeatChoice::repeat)
        .or(prior.as_ref().map(|p| Repeat::of(p.schedule.cadence)))
        .unwrap_or(Repeat::Weekly);
    let example = format!(
        "/weekly set channel:#{} repeat:{}",
        channel.name.as_deref().unwrap_or("general"),
        repeat.name()
    );
    if day.is_some() && !repeat.takes_a_day() {
        return refuse(ctx, format!(
            "`day` is only for weekly and every-2-weeks posts: a `{}` feed posts on {} at `time`. Leave `day` out, for example `{example} time:09:00`, or add `repeat:weekly` for one post a week.",
            repeat.name(),
            if repeat == Repeat::Daily { "every day" } else { "every weekday, Monday to Friday," },
        )).await;
    }
    let weekday = day
        .map(Day::weekday)
        .or(prior.as_ref().and_then(|p| p.schedule.cadence.weekday()))
        .unwrap_or(chrono::Weekday::Mon);
    let time = match time {
        None => prior
            .as_ref()
            .map(|p| p.schedule.time)
            .unwrap_or(chrono::NaiveTime::MIN + chrono::Duration::hours(9)),
        Some(typed) => match parse_time(&typed) {
            Ok(t) => t,
            Err(e) => return refuse(ctx, format!("{e}. Try `{example} time:09:00`.")).await,
        },
    };
    let zone = match timezone {
        None => prior.as_ref().map_or(Tz::UTC, |p| p.schedule.zone),
        Some(typed) => match parse_zone(&typed) {
            Ok(z) => z,
            Err(e) => return refuse(ctx, format!("{e}. Pick a zone from the list as you type, for example `timezone:Europe/London` or `timezone:America/New_York`.")).await,
        },
    };
    let forum = match channel.kind {
        ChannelType::Text | ChannelType::News => false,
        ChannelType::Forum => true,
        _ => {
            return refuse(
                ctx,
                "Pick a text, announcement or forum channel for the posts.",
            )
            .await
        }
    };
    let topic = match topic.map(|t| t.trim().to_lowercase()) {
        None => prior.as_ref().and_then(|p| p.topic.clone()),
        Some(t) if t.is_empty() || t == ALL_TOPICS => None,
        Some(t) => Some(t),
    };
    if let Some(topic) = &topic {
        let collection = data.collections.get(Some(guild_id.get())).await?;
        let library = collection.library();
        let known = library.packs().iter().any(|(pack, _)| pack == topic)
            || library.topics().any(|(t, _)| t == topic);
        if !known {
            return refuse(ctx, format!(
                "This server's insights have no topic or pack `{}`. Pick one from the list as you type `topic:` (`/topics` lists the topics, `/insights packs` the packs), or give `topic:all` to post from every insight.",
                render::escape_within(topic, 64),
            )).await;
        }
    }
    // A forum post is a thread already: `thread` only applies to text and announcement channels.
    let thread = thread.unwrap_or(prior.as_ref().is_some_and(|p| p.thread)) && !forum;
    if let Some(role) = &ping {
        if role.id.get() == guild_id.get() {
            return refuse(ctx, "I won't ping @everyone. Make a role for the people who want the posts (for example `insights`), let them take it, and give it as `ping:`.").await;
        }
    }
    ctx.defer_ephemeral().await?;
    let access = match bot_access(ctx, channel.id).await {
        Ok(access) => access,
        Err(missing) => return refuse(ctx, missing_message(channel.id, &missing)).await,
    };
    let (have, described) = (access.permissions, &access.channel);
    // A forum that requires a tag refuses an untagged post with 400, every time: say so now
    // rather than fail every week. (Tagging the posts is left for when someone asks.)
    if forum
        && described
            .flags
            .contains(serenity::ChannelFlags::REQUIRE_TAG)
    {
        return refuse(ctx, format!(
            "{} requires a tag on every post, and I post without tags. Turn off \"Require people to select tags when posting\" in the forum's settings, or pick another channel.",
            channel.id.mention(),
        )).await;
    }
    let mut missing = missing_of(have, &NEEDED);
    if thread {
        missing.extend(missing_of(have, &NEEDED_FOR_THREADS));
    }
    if !missing.is_empty() {
        return refuse(ctx, missing_message(channel.id, &missing)).await;
    }
    if let Some(role) = &ping {
        if !role.mentionable && !have.contains(Permissions::MENTION_EVERYONE) {
            return refuse(ctx, format!(
                "I can't ping {}: the role is not mentionable, and I lack **Mention Everyone** in {}. Turn on \"Allow anyone to @mention this role\" in the role's settings (Server Settings › Roles), or give me Mention Everyone there, then run `/weekly set` again.",
                role.id.mention(),
                channel.id.mention(),
            )).await;
        }
    }
    let now = data.poster.clock().now();
    let mut schedule = repeat.schedule(weekday, time, zone, now);
    if let Some(prior) = &prior {
        schedule = schedule.keeping_alternation_of(&prior.schedule);
    }
    let ping_role = match (&ping, no_ping.unwrap_or(false)) {
        (Some(role), _) => Some(role.id.get()),
        (None, true) => None,
        (None, false) => prior.as_ref().and_then(|p| p.ping_role),
    };
    let spec = FeedSpec {
        schedule,
        topic,
        thread,
        ping_role,
        forum,
    };
    let stored = data
        .store
        .call(move |db| db.set_feed(feed, &spec, now))
        .await;
    let settings = match stored {
        Ok(settings) => settings,
        Err(StoreError::Limit {
            what: Limit::Feeds, ..
        }) => {
            return refuse(ctx, format!(
                "This server already has {MAX_FEEDS_PER_SERVER} feeds on, the most it may have. Change one of them with `/weekly set` on its channel, or turn one off with `/weekly off channel:` first (`/weekly list` shows them)."
            )).await;
        }
        Err(e @ StoreError::Limit { .. }) => {
            return refuse(ctx, format!("Not saved: {e}.")).await;
        }
        Err(e) => return Err(e.into()),
    };
    data.poster.wake();
    let next = settings.next_slot_after(now);
    tracing::info!(%feed, schedule = %settings.schedule, next = ?next.map(|slot| format_rfc3339_z(slot.at)), "feed set");
    let mut text = format!(
        "Done: an insight {} ({}) in {}{}.",
        cadence_phrase(&settings.schedule),
        zone.name(),
        channel.id.mention(),
        feed_extras(&settings),
    );
    if let Some(next) = next {
        text.push_str(&format!(
            "\nNext post: {} — {}.",
            local(next.at, zone),
            discord_timestamp(next.at)
        ));
    }
    if forum {
        text.push_str("\nIn a forum, each post is a forum post titled by its insight, with room to discuss under it.");
    }
    if let Some(role) = settings.ping_role {
        let role = serenity::RoleId::new(role);
        if access.can_manage(role) {
            text.push_str(&format!(
                "\nMembers take or drop {} with the 🔔 button under each post.",
                role.mention()
            ));
        } else {
            text.push_str(&format!("\nThe 🔔 button under each post lets members take or drop {} once I have **Manage Roles** and my role is above it (Server Settings › Roles); until then, give the role by hand.", role.mention()));
        }
    }
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

fn missing_message(channel: serenity::ChannelId, missing: &[&str]) -> String {
    format!(
        "I can't post in {}: I am missing **{}** there. Give me {} in the channel's settings (Edit Channel › Permissions), then run `/weekly set` again.",
        channel.mention(),
        missing.join(", "),
        if missing.len() == 1 { "that permission" } else { "those permissions" },
    )
}

/// ", topic `delegation`, with a thread, pinging @role": what a feed adds to its cadence.
fn feed_extras(settings: &FeedSettings) -> String {
    let mut extras = String::new();
    if let Some(topic) = &settings.topic {
        extras.push_str(&format!(", topic `{}`", render::escape_within(topic, 64)));
    }
    if settings.thread {
        extras.push_str(", with a discussion thread");
    }
    if let Some(role) = settings.ping_role {
        extras.push_str(&format!(", pinging <@&{role}>"));
    }
    extras
}

/// The feed a subcommand acts on: the `channel` given, or the server's only feed. `None` once
/// the reply saying why there is none was sent: no feed, several and no `channel`, or (with
/// `on`) a feed that is off or stopped by a channel problem.
async fn target_feed(
    ctx: Context<'_>,
    channel: Option<&serenity::PartialChannel>,
    command: &str,
    on: bool,
) -> Result<Option<FeedSettings>, Error> {
    let refusal = match find_feed(ctx, channel, command).await? {
        Ok(settings) if !on => return Ok(Some(settings)),
        Ok(settings) => match inactive_reason(&settings) {
            None => return Ok(Some(settings)),
            Some(reply) => reply,
        },
        Err(reply) => reply,
    };
    refuse(ctx, refusal).await?;
    Ok(None)
}

/// [`target_feed`]'s look-up: `Err` holds the reply when there is no feed to act on.
async fn find_feed(
    ctx: Context<'_>,
    channel: Option<&serenity::PartialChannel>,
    command: &str,
) -> Result<Result<FeedSettings, String>, Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(Err("This works in a server.".into()));
    };
    let guild = guild_id.get();
    let data = ctx.data();
    if let Some(channel) = channel {
        let feed = FeedId::new(guild, channel.id.get());
        let found = answer_in_time(ctx, true, data.store.call(move |db| db.feed(feed))).await??;
        return Ok(found.ok_or_else(|| {
            format!(
                "{} has no scheduled posts. `/weekly list` shows this server's feeds; `/weekly set channel:{}` starts one.",
                channel.id.mention(),
                channel.id.mention(),
            )
        }));
    }
    let mut feeds = answer_in_time(ctx, true, data.store.call(move |db| db.feeds(guild))).await??;
    Ok(match feeds.len() {
        0 => Err("No scheduled posts are set up here. Start one with `/weekly set channel:#general day:Monday time:09:00 timezone:Europe/London`.".into()),
        1 => Ok(feeds.remove(0)),
        n => Err(format!(
            "This server has {n} feeds: {}. Say which, for example `/weekly {command} channel:<#{}>`.",
            feeds.iter().map(|f| format!("<#{}>", f.feed.channel_id)).collect::<Vec<_>>().join(", "),
            feeds[0].feed.channel_id,
        )),
    })
}

/// One feed as `/weekly list` and `show` describe it.
async fn describe_feed(
    ctx: Context<'_>,
    settings: &FeedSettings,
) -> Result<FeedDescription, Error> {
    let data = ctx.data();
    let feed = settings.feed;
    let last_post = data.store.call(move |db| db.last_post(feed)).await?;
    let schedule = &settings.schedule;
    let mut lines = vec![format!(
        "**<#{}>** — {} ({}){}{}",
        feed.channel_id,
        cadence_phrase(schedule),
        schedule.zone.name(),
        feed_extras(settings),
        if settings.forum { ", forum posts" } else { "" },
    )];
    let mut short = format!(
        "**<#{}>** — {} ({})",
        feed.channel_id,
        cadence_phrase(schedule),
        schedule.zone.name()
    );
    let today = schedule.local_date(data.poster.clock().now());
    if !settings.enabled {
        lines.push("**Off.** `/weekly set` on this channel turns it back on.".into());
        short.push_str(" · off");
    } else if let Some(failure) = &settings.failure {
        short.push_str(" · ⚠️ **stopped**");
        lines.push(format!(
            "⚠️ **Stopped since {}:** {}. Fix the channel or my permissions, then run `/weekly set` again.",
            discord_timestamp(failure.at),
            render::escape_within(&failure.reason, 200),
        ));
    } else {
        match settings.pause {
            Some(Pause::Indefinitely) => {
                lines.push("**Paused.** `/weekly resume` starts it again.".into())
            }
            Some(Pause::Until(until)) if until > today => {
                lines.push(format!(
                    "**Paused until {}.**",
                    until.format("%A %-d %B %Y")
                ));
                short.push_str(&format!(" · paused until {}", until.format("%Y-%m-%d")));
            }
            _ => {}
        }
        match data.poster.next_post(settings).await? {
            Some(next) => {
                lines.push(format!("Next post: {}", discord_timestamp(next.at)));
                short.push_str(&format!(" · next <t:{}:R>", next.at.timestamp()));
            }
            None => {
                lines.push("Next post: none scheduled".into());
                short.push_str(" · paused");
            }
        }
    }
    match last_post {
        Some(post) => {
            lines.push(format!(
                "Last post: {} ({}), https://discord.com/channels/{}/{}/{}",
                post.period.label(),
                post.posted_at.map(discord_timestamp).unwrap_or_default(),
                feed.guild_id,
                post.channel_id,
                post.message_id.unwrap_or_default(),
            ));
            if let (true, None, Some(error)) =
                (post.thread_wanted, post.thread_id, &post.thread_error)
            {
                lines.push(format!(
                    "⚠️ No thread under it yet: {}. I try again; give me Create Public Threads and Send Messages in Threads in the channel.",
                    render::escape_within(error, 200)
                ));
                short.push_str(" · ⚠️ no thread");
            }
        }
        None => lines.push("Last post: none yet".into()),
    }
    Ok(FeedDescription {
        full: lines.join("\n"),
        short,
    })
}

/// A feed as `/weekly show` describes it (`full`), and as one line of a `/weekly list` too long
/// to show every feed in full (`short`).
struct FeedDescription {
    full: String,
    short: String,
}

/// The text of `/weekly list`: every feed in full when they fit one embed, else one line each
/// (a server may keep 30 feeds, and a cut list would hide some without saying so).
fn feed_list(feeds: &[FeedDescription]) -> String {
    let full = feeds
        .iter()
        .map(|f| f.full.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    if full.chars().count() <= render::MAX_EMBED_DESCRIPTION {
        return full;
    }
    let mut short: Vec<&str> = feeds.iter().map(|f| f.short.as_str()).collect();
    short.push("\nToo many to show in full here: `/weekly show channel:` shows one.");
    render::truncate(&short.join("\n"), render::MAX_EMBED_DESCRIPTION)
}

/// Every scheduled feed of this server.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn list(ctx: Context<'_>) -> Result<(), Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(());
    };
    let guild = guild_id.get();
    let data = ctx.data();
    let feeds = answer_in_time(ctx, true, data.store.call(move |db| db.feeds(guild))).await??;
    if feeds.is_empty() {
        return refuse(ctx, "No scheduled posts are set up here. Start one with `/weekly set channel:#general day:Monday time:09:00 timezone:Europe/London`.").await;
    }
    let described = async {
        let mut blocks = Vec::with_capacity(feeds.len());
        for settings in &feeds {
            blocks.push(describe_feed(ctx, settings).await?);
        }
        Ok::<_, Error>(blocks)
    };
    let blocks = answer_in_time(ctx, true, described).await??;
    let on = feeds.iter().filter(|f| f.enabled).count();
    let embed = serenity::CreateEmbed::new()
        .title(format!(
            "Scheduled posts: {on} on (at most {MAX_FEEDS_PER_SERVER}), {} off",
            feeds.len() - on
        ))
        .description(feed_list(&blocks))
        .colour(render::COLOUR);
    ctx.send(
        poise::CreateReply::default()
            .embed(embed)
            .ephemeral(true)
            .allowed_mentions(render::no_pings()),
    )
    .await?;
    Ok(())
}

/// One feed's settings, next and last post.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn show(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "show", false).await? else {
        return Ok(());
    };
    let described = answer_in_time(ctx, true, describe_feed(ctx, &settings)).await??;
    refuse(ctx, described.full).await
}

/// Stop a channel's scheduled posts (its settings and rotation are kept).
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn off(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "off", false).await? else {
        return Ok(());
    };
    let data = ctx.data();
    let (feed, now) = (settings.feed, data.poster.clock().now());
    let was_on = answer_in_time(
        ctx,
        true,
        data.store.call(move |db| db.disable_feed(feed, now)),
    )
    .await??;
    data.poster.wake();
    let text = if was_on {
        format!("The posts in <#{}> are off. `/weekly set` on that channel turns them back on (the rotation continues where it left off).", feed.channel_id)
    } else {
        format!(
            "The posts in <#{}> were not on. `/weekly set` starts them.",
            feed.channel_id
        )
    };
    refuse(ctx, text).await
}

/// Post the current period's insight now (that period's scheduled post is then skipped).
#[poise::command(
    slash_command,
    guild_only,
    required_permissions = "MANAGE_GUILD",
    rename = "post-now"
)]
pub async fn post_now(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "post-now", true).await? else {
        return Ok(());
    };
    let data = ctx.data();
    let (guild_id, channel_id) = (settings.feed.guild_id, settings.feed.channel_id);
    // Sending can take a while with retries: answer Discord within its 3 s first.
    ctx.defer_ephemeral().await?;
    let outcome = tokio::time::timeout(POST_NOW_WAIT, data.poster.post_now(settings.feed)).await;
    let Ok(outcome) = outcome else {
        return refuse(ctx, "Discord has not confirmed the post yet. I keep trying in the background; `/weekly list` shows it once it is out.").await;
    };
    let period = settings.schedule.period_at(data.poster.clock().now());
    let this = period.this();
    // A weekend day of a weekdays feed, the off week of an every-2-weeks one: nothing was
    // scheduled, so nothing is skipped.
    let scheduled = if settings.schedule.slot_in(period).is_some() {
        format!("The scheduled post of {this} is skipped; the next one follows the schedule.")
    } else {
        "The next post follows the schedule.".to_string()
    };
    let text = match outcome? {
        Some(Delivery::Posted(message_id)) => format!("Posted {this}'s insight: https://discord.com/channels/{guild_id}/{channel_id}/{message_id}. {scheduled}"),
        Some(Delivery::AlreadyPosted(record)) if record.source == PostSource::Skip => format!("{} was skipped with `/weekly skip`, so nothing is posted for it. The next post follows the schedule (`/weekly preview`).", record.period.label()),
        Some(Delivery::AlreadyPosted(record)) => format!(
            "The insight of {} is already posted{}. One post per period: the next one follows the schedule (`/weekly show`).",
            record.period.label(),
            record.posted_at.map(|at| format!(" {}", discord_timestamp(at))).unwrap_or_default(),
        ),
        Some(Delivery::InProgress) => format!("The insight of {this} is being posted right now; `/weekly show` shows it once it is out."),
        Some(Delivery::WillRetry(error)) => format!("Discord did not take the post yet ({}); I will retry in a few minutes.", render::escape(&error)),
        Some(Delivery::Paused(reason)) => format!("I could not post: {}. These posts are stopped until you fix it and run `/weekly set` again.", render::escape(&reason)),
        Some(Delivery::NothingToPost) => "There is no insight to post: the collection (or this feed's topic) is empty.".to_string(),
        None => "These posts are not on.".to_string(),
    };
    refuse(ctx, text).await
}

/// Why a feed posts nothing at all (off, stopped by a channel problem), as a reply; `None` when
/// it is on (a pause aside).
fn inactive_reason(settings: &FeedSettings) -> Option<String> {
    let channel = settings.feed.channel_id;
    if !settings.enabled {
        return Some(format!("The posts in <#{channel}> are off. `/weekly set channel:<#{channel}>` turns them back on."));
    }
    settings.failure.as_ref().map(|_| format!(
        "The posts in <#{channel}> are stopped because of a channel problem (see `/weekly show`). Fix it and run `/weekly set channel:<#{channel}>` first."
    ))
}

/// Skip the next post of a feed (its insight waits for the post after).
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn skip(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "skip", true).await? else {
        return Ok(());
    };
    let data = ctx.data();
    let skipping = async {
        let skipped = data.poster.skip_next(&settings).await?;
        let after = data.poster.next_post(&settings).await?;
        Ok::<_, StoreError>((skipped, after))
    };
    let (skipped, after) = answer_in_time(ctx, true, skipping).await??;
    let Some(skipped) = skipped else {
        return refuse(ctx, "These posts are paused, so there is no next post to skip. `/weekly resume` starts them again.").await;
    };
    let text = format!(
        "Skipped the post of {} ({}). The insight it would have carried comes next: {}.",
        skipped.period.label(),
        discord_timestamp(skipped.at),
        after.map_or("no later post is scheduled".to_string(), |slot| {
            discord_timestamp(slot.at)
        }),
    );
    refuse(ctx, text).await
}

/// Pause a feed, until you resume it or until a date.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn pause(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
    #[description = "Resume on this date, YYYY-MM-DD in the feed's time zone (default: until /weekly resume)"]
    #[max_length = 10]
    until: Option<String>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "pause", true).await? else {
        return Ok(());
    };
    let data = ctx.data();
    let now = data.poster.clock().now();
    let today = settings.schedule.local_date(now);
    let pause = match until.as_deref().map(str::trim) {
        None | Some("") => Pause::Indefinitely,
        Some(text) => match parse_until(text, today) {
            Ok(day) => Pause::Until(day),
            Err(reply) => return refuse(ctx, reply).await,
        },
    };
    let feed = settings.feed;
    answer_in_time(
        ctx,
        true,
        data.store
            .call(move |db| db.set_pause(feed, Some(pause), now)),
    )
    .await??;
    data.poster.wake();
    let text = match pause {
        Pause::Indefinitely => format!(
            "The posts in <#{}> are paused. `/weekly resume` starts them again.",
            feed.channel_id
        ),
        Pause::Until(day) => {
            let first = settings.schedule.first_slot_on_or_after(day);
            format!(
                "The posts in <#{}> are paused until {}: the first one after is {}. `/weekly resume` starts them sooner.",
                feed.channel_id,
                day.format("%A %-d %B %Y"),
                discord_timestamp(first.at),
            )
        }
    };
    refuse(ctx, text).await
}

/// A `pause until:` date: `YYYY-MM-DD`, after `today` and within [`MAX_PAUSE_DAYS`].
fn parse_until(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let example = (today + chrono::Days::new(14)).format("%Y-%m-%d");
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        format!(
            "`{}` is not a date: type it as YYYY-MM-DD, for example `until:{example}`.",
            render::escape_within(text, 20)
        )
    })?;
    if day <= today {
        return Err(format!(
            "{} is not in the future (today is {} in this feed's time zone). Give a later date, for example `until:{example}`, or leave `until` out to pause until `/weekly resume`.",
            day.format("%Y-%m-%d"),
            today.format("%Y-%m-%d"),
        ));
    }
    if (day - today).num_days() > MAX_PAUSE_DAYS {
        return Err(format!(
            "A pause may last at most a year. Give a date before {}, or turn the posts off with `/weekly off`.",
            (today + chrono::Days::new(MAX_PAUSE_DAYS as u64)).format("%Y-%m-%d"),
        ));
    }
    Ok(day)
}

/// Resume a paused feed from its next slot.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn resume(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "resume", true).await? else {
        return Ok(());
    };
    let data = ctx.data();
    let (feed, now) = (settings.feed, data.poster.clock().now());
    if settings.pause.is_none() {
        return refuse(
            ctx,
            format!("The posts in <#{}> are not paused.", feed.channel_id),
        )
        .await;
    }
    let resuming = async {
        let resumed = data
            .store
            .call(move |db| {
                db.set_pause(feed, None, now)?;
                db.feed(feed)
            })
            .await?;
        match &resumed {
            Some(settings) => data.poster.next_post(settings).await,
            None => Ok(None),
        }
    };
    let next = answer_in_time(ctx, true, resuming).await??;
    data.poster.wake();
    let text = format!(
        "The posts in <#{}> are on again. Next post: {}.",
        feed.channel_id,
        next.map_or("none scheduled".to_string(), |slot| discord_timestamp(
            slot.at
        )),
    );
    refuse(ctx, text).await
}

/// See the next post of a feed before it goes out (only you see it).
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn preview(
    ctx: Context<'_>,
    #[description = "The feed's channel (needed when the server has several)"]
    #[channel_types("Text", "News", "Forum")]
    channel: Option<serenity::PartialChannel>,
) -> Result<(), Error> {
    let Some(settings) = target_feed(ctx, channel.as_ref(), "preview", true).await? else {
        return Ok(());
    };
    let data = ctx.data();
    let previewed = answer_in_time(ctx, true, data.poster.preview(&settings)).await??;
    let Some((slot, insight)) = previewed else {
        return refuse(
            ctx,
            "These posts are paused, so nothing is scheduled. `/weekly resume` starts them again.",
        )
        .await;
    };
    let Some(insight) = insight else {
        return refuse(ctx, format!("The next post is due {}, but there is no insight to post: the collection (or this feed's topic) is empty.", discord_timestamp(slot.at))).await;
    };
    let reply = render::feed_post(&insight, slot.period);
    let mut message = poise::CreateReply::default()
        .content(format!(
            "Only you see this. The next post in <#{}>, {}, will carry this insight (unless the collection or the feed changes first):",
            settings.feed.channel_id,
            discord_timestamp(slot.at),
        ))
        .ephemeral(true)
        .allowed_mentions(render::no_pings());
    for embed in reply.embeds {
        message = message.embed(embed);
    }
    ctx.send(message).await?;
    Ok(())
}

/// The smallest snowflake of an instant: Discord ids carry their creation time (milliseconds
/// since 2015-01-01) in the bits above 22.
fn snowflake_at(at: chrono::DateTime<Utc>) -> u64 {
    const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;
    ((at.timestamp_millis() - DISCORD_EPOCH_MS).max(0) as u64) << 22
}

/// Sends weekly posts to Discord's REST API (or `DISCORD_API_BASE`).
pub struct DiscordPublisher {
    client: reqwest::Client,
    base: String,
    authorization: String,
    bot_user_id: u64,
    /// The earliest instant the next request may start (see [`REQUEST_SPACING`]).
    next_request: tokio::sync::Mutex<tokio::time::Instant>,
}

/// The gap between two weekly-post requests: 40 a second, under Discord's global limit of 50 a
/// second per bot, which these calls share with the bot's replies. These calls bypass serenity's
/// rate limiter, so they pace themselves: 10,000 servers due in the same minute go out over about
/// four minutes without a single 429 (each 429 counts towards Discord's invalid-request ban).
const REQUEST_SPACING: Duration = Duration::from_millis(25);

impl DiscordPublisher {
    /// `request_timeout` bounds each request (connect, send, answer). The user agent names the
    /// process's shards, so a proxy's log (or a test) can tell the processes of a bot apart.
    pub fn new(
        token: &Token,
        api_base: Option<&str>,
        bot_user_id: u64,
        request_timeout: Duration,
        shards: Shards,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(request_timeout)
            .user_agent(format!(
                "DiscordBot (https://github.com/insight-bot, {}) insight-bot {shards}",
                env!("CARGO_PKG_VERSION"),
            ))
            .build()?;
        Ok(DiscordPublisher {
            client,
            base: format!("{}/api/v10", api_base.unwrap_or("https://discord.com")),
            authorization: format!("Bot {}", token.expose()),
            bot_user_id,
            next_request: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, PublishError> {
        self.call_with_code(request)
            .await
            .map_err(|(error, _)| error)
    }

    /// [`Self::call`], keeping Discord's JSON error code beside a failure (`160004` says a
    /// thread already exists).
    async fn call_with_code(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, (PublishError, Option<u64>)> {
        // Take the next free start time, then wait for it outside the lock.
        let start = {
            let mut next = self.next_request.lock().await;
            let start = (*next).max(tokio::time::Instant::now());
            *next = start + REQUEST_SPACING;
            start
        };
        tokio::time::sleep_until(start).await;
        let response = request
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .send()
            .await
            .map_err(|e| {
                (
                    PublishError::Transient(format!("network error: {}", e.without_url())),
                    None,
                )
            })?;
        let status = response.status();
        crate::ops::metrics().discord_response(status.as_u16());
        let header_wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok());
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["message"].as_str().unwrap_or("no message").to_string();
        let code = body["code"].as_u64();
        let error = match status.as_u16() {
            403 | 404 => PublishError::Forbidden(format!("Discord answered {status}: {message}")),
            429 => {
                let seconds = body["retry_after"].as_f64().or(header_wait).unwrap_or(1.0);
                crate::ops::metrics()
                    .discord_rate_limited_seconds
                    .add(seconds);
                PublishError::RateLimited(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
            }
            _ => PublishError::Transient(format!("Discord answered {status}: {message}")),
        };
        Err((error, code))
    }
}

/// The `custom_id` prefix of a post's "Ping me" button; the role's id follows.
pub const PING_BUTTON_PREFIX: &str = "fp:";

/// The message of a post: its embed, and when the feed pings a role, that role's mention as the
/// content with `allowed_mentions` naming that role only (`parse: []`), and a button with which
/// members take or drop the role: the ping is opt-in from the post itself.
fn post_message(post: &OutgoingPost) -> serenity::CreateMessage {
    let message = render::feed_post(&post.insight, post.period).to_message();
    let Some(role) = post.ping_role else {
        return message;
    };
    let button = serenity::CreateButton::new(format!("{PING_BUTTON_PREFIX}{role}"))
        .label("Ping me for these / stop")
        .emoji('🔔')
        .style(serenity::ButtonStyle::Secondary);
    message
        .content(format!("<@&{role}>"))
        .allowed_mentions(
            serenity::CreateAllowedMentions::new()
                .empty_users()
                .roles(vec![serenity::RoleId::new(role)])
                .replied_user(false),
        )
        .components(vec![serenity::CreateActionRow::Buttons(vec![button])])
}

/// The "Ping me" button under a post that pings a role: gives the clicking member the role, or
/// takes it away when they have it. Only a role that is some feed's ping role of this server is
/// ever given, whatever the button's id says.
pub async fn on_ping_button(
    ctx: &serenity::Context,
    click: &serenity::ComponentInteraction,
    data: &super::Data,
) -> Result<(), Error> {
    let incoming = super::access::Incoming::Button(click);
    let role = click
        .data
        .custom_id
        .strip_prefix(PING_BUTTON_PREFIX)
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|&id| id != 0);
    let (Some(role), Some(guild_id), Some(member)) = (role, click.guild_id, click.member.as_ref())
    else {
        let text = "This button works in the server the post is in.".to_string();
        incoming
            .respond(&ctx.http, super::access::Answer::Notice(text))
            .await?;
        return Ok(());
    };
    let guild = guild_id.get();
    let feeds = data.store.call(move |db| db.feeds(guild)).await?;
    let text = if !feeds.iter().any(|f| f.ping_role == Some(role)) {
        "These posts no longer ping a role, so there is nothing to sign up for.".to_string()
    } else {
        let role_id = serenity::RoleId::new(role);
        let has = member.roles.contains(&role_id);
        let changed = if has {
            ctx.http
                .remove_member_role(
                    guild_id,
                    click.user.id,
                    role_id,
                    Some("asked to stop the insight pings"),
                )
                .await
        } else {
            ctx.http
                .add_member_role(
                    guild_id,
                    click.user.id,
                    role_id,
                    Some("asked for the insight pings"),
                )
                .await
        };
        match changed {
            Ok(()) if has => format!("Done: you no longer have <@&{role}>, so these posts won't ping you. Click again to sign up."),
            Ok(()) => format!("Done: you have <@&{role}> now, so these posts will ping you. Click again to stop."),
            Err(e) => {
                tracing::warn!(guild, role, "could not change a member's ping role: {e}");
                format!("I couldn't change your roles: a server admin needs to give me **Manage Roles** and put my role above <@&{role}> (Server Settings › Roles).")
            }
        }
    };
    incoming
        .respond(&ctx.http, super::access::Answer::Notice(text))
        .await?;
    Ok(())
}

/// Whether a message is the bot's own post of `period` (its embed's title and footer).
fn is_own_post(message: &serde_json::Value, bot: &str, post: &OutgoingPost) -> bool {
    let label = post.period.label();
    let title = post_title(post.period);
    message["author"]["id"].as_str() == Some(bot)
        && message["embeds"].as_array().into_iter().flatten().any(|e| {
            e["title"].as_str() == Some(title)
                && e["footer"]["text"].as_str() == Some(label.as_str())
        })
}

/// Discord's error code for a second thread on the same message.
const THREAD_ALREADY_CREATED: u64 = 160_004;

impl Publisher for DiscordPublisher {
    fn send<'a>(&'a self, post: &'a OutgoingPost) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            let channel = post.feed.channel_id;
            let body = if post.forum {
                // A forum post: a thread titled by the insight, whose first message is the post
                // (Discord gives both the same id). Forum posts take no nonce; a lost answer is
                // resolved by `find_post` through the forum's active threads.
                let form = serde_json::json!({
                    "name": crate::weekly::feed::thread_name(&post.insight.title),
                    "auto_archive_duration": THREAD_ARCHIVE_MINUTES,
                    "message": post_message(post),
                });
                let url = format!("{}/channels/{channel}/threads", self.base);
                self.call(self.client.post(url).json(&form)).await?
            } else {
                let message = post_message(post)
                    .nonce(serenity::Nonce::String(post.nonce.clone()))
                    .enforce_nonce(true);
                let url = format!("{}/channels/{channel}/messages", self.base);
                self.call(self.client.post(url).json(&message)).await?
            };
            body["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| PublishError::Transient("Discord's answer has no id".into()))
        })
    }

    fn find_post<'a>(
        &'a self,
        post: &'a OutgoingPost,
        since: chrono::DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>> {
        Box::pin(async move {
            let after = snowflake_at(since - chrono::Duration::minutes(1));
            let bot = self.bot_user_id.to_string();
            let channel = post.feed.channel_id;
            if post.forum {
                // The forum's active threads: the bot's own, started after the claim, named
                // after the insight. Its first message has the thread's id.
                let url = format!("{}/guilds/{}/threads/active", self.base, post.feed.guild_id);
                let body = self.call(self.client.get(url)).await?;
                let name = crate::weekly::feed::thread_name(&post.insight.title);
                let found = body["threads"].as_array().into_iter().flatten().find(|t| {
                    t["parent_id"].as_str() == Some(channel.to_string().as_str())
                        && t["owner_id"].as_str() == Some(bot.as_str())
                        && t["name"].as_str() == Some(name.as_str())
                        && t["id"]
                            .as_str()
                            .and_then(|id| id.parse::<u64>().ok())
                            .is_some_and(|id| id >= after)
                });
                return Ok(found
                    .and_then(|t| t["id"].as_str())
                    .and_then(|id| id.parse().ok()));
            }
            // Messages after the claim (a minute earlier, for clock skew), oldest first as
            // Discord pages `after`: the post, if it went out, is among the first sent after the
            // claim, so a busy channel cannot push it out of the page the way "latest 50" could.
            let url = format!(
                "{}/channels/{channel}/messages?after={after}&limit=100",
                self.base
            );
            let body = self.call(self.client.get(url)).await?;
            let found = body
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| is_own_post(m, &bot, post));
            Ok(found
                .and_then(|m| m["id"].as_str())
                .and_then(|id| id.parse().ok()))
        })
    }

    fn create_thread<'a>(
        &'a self,
        channel_id: u64,
        message_id: u64,
        name: &'a str,
    ) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            let url = format!(
                "{}/channels/{channel_id}/messages/{message_id}/threads",
                self.base
            );
            let form = serde_json::json!({
                "name": name,
                "auto_archive_duration": THREAD_ARCHIVE_MINUTES,
            });
            match self.call_with_code(self.client.post(url).json(&form)).await {
                Ok(body) => body["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| {
                        PublishError::Transient("Discord's answer has no thread id".into())
                    }),
                // An earlier try created it and its answer was lost: a message's thread has the
                // message's id.
                Err((e, Some(THREAD_ALREADY_CREATED))) => {
                    tracing::info!(channel_id, message_id, "the thread already exists: {e}");
                    Ok(message_id)
                }
                Err((e, _)) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_too_long_for_one_embed_shows_every_feed_in_one_line() {
        let feed = |n: usize, long: bool| FeedDescription {
            full: format!(
                "**<#{n}>** — every day at 09:00 (UTC)\n{}",
                "x".repeat(if long { 390 } else { 10 })
            ),
            short: format!("**<#{n}>** — every day at 09:00 (UTC) · next <t:1:R>"),
        };
        let few: Vec<_> = (0..10).map(|n| feed(n, false)).collect();
        assert_eq!(
            feed_list(&few),
            few.iter()
                .map(|f| f.full.clone())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
        let many: Vec<_> = (0..30).map(|n| feed(n, true)).collect();
        let text = feed_list(&many);
        assert!(text.chars().count() <= render::MAX_EMBED_DESCRIPTION);
        for n in 0..30 {
            assert!(text.contains(&format!("<#{n}>")), "feed {n} is missing");
        }
        assert!(text.contains("/weekly show channel:"), "{text}");
    }
}
