//! The insight of the week on Discord: the `/weekly` commands and the [`DiscordPublisher`] that
//! the core [`Poster`](crate::weekly::poster::Poster) sends through.
//!
//! `/weekly` is server-only and needs Manage Server twice over: `default_member_permissions`
//! hides it from other members in Discord's UI, and poise's `required_permissions` checks the
//! member's permissions from the interaction again at run time (a server can override the UI
//! default, so the run-time check is the one that counts).
//!
//! The publisher makes plain REST calls with reqwest instead of serenity's `Http`: serenity turns a
//! 429 into an error without its `retry_after`, and the poster needs the status (403/404 pause a
//! schedule, 5xx retry, 429 waits) to follow Discord's rules.

use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use poise::serenity_prelude as serenity;
use serenity::{ChannelType, Mentionable, Permissions};

use super::commands::{answer_in_time, ephemeral};
use super::render::{self, WEEKLY_TITLE};
use super::{Context, Error};
use crate::config::Token;
use crate::sharding::Shards;
use crate::weekly::poster::{Delivery, OutgoingPost, PublishError, PublishFuture, Publisher};
use crate::weekly::schedule::{
    format_rfc3339_z, parse_time, parse_zone, weekday_name, WeekKey, WeeklySchedule,
};

/// What the bot needs in a channel to post there.
const NEEDED: [(Permissions, &str); 3] = [
    (Permissions::VIEW_CHANNEL, "View Channel"),
    (Permissions::SEND_MESSAGES, "Send Messages"),
    (Permissions::EMBED_LINKS, "Embed Links"),
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

/// The insight of the week for this server (Manage Server).
#[poise::command(
    slash_command,
    subcommands("set", "show", "off", "post_now"),
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
async fn autocomplete_zone(
    _ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
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
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// The bot's missing permissions in `channel`, as names; empty when it can post there.
pub(super) async fn missing_permissions(
    ctx: Context<'_>,
    channel_id: serenity::ChannelId,
) -> Vec<&'static str> {
    let everything = || NEEDED.iter().map(|(_, name)| *name).collect();
    let Some(guild_id) = ctx.guild_id() else {
        return everything();
    };
    // A channel the bot cannot see answers 403/404: that is "View Channel" missing.
    let channel = match ctx.http().get_channel(channel_id).await {
        Ok(serenity::Channel::Guild(channel)) => channel,
        _ => return vec!["View Channel"],
    };
    let bot_id = ctx.framework().bot_id();
    let (guild, member) = match (
        guild_id.to_partial_guild(ctx).await,
        guild_id.member(ctx, bot_id).await,
    ) {
        (Ok(guild), Ok(member)) => (guild, member),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(%guild_id, "cannot read the server to check permissions: {e}");
            return everything();
        }
    };
    let have = guild.user_permissions_in(&channel, &member);
    NEEDED
        .iter()
        .filter(|(permission, _)| !have.contains(*permission))
        .map(|(_, name)| *name)
        .collect()
}

fn discord_timestamp(at: chrono::DateTime<Utc>) -> String {
    format!("<t:{0}:F> (<t:{0}:R>)", at.timestamp())
}

fn local(at: chrono::DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

/// Post an insight every week in a channel.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn set(
    ctx: Context<'_>,
    #[description = "The channel to post in"]
    #[channel_types("Text", "News")]
    channel: serenity::PartialChannel,
    #[description = "Day of the week (default Monday)"] day: Option<Day>,
    #[description = "Local time, 24-hour HH:MM (default 09:00)"]
    #[max_length = 5]
    time: Option<String>,
    #[description = "IANA time zone, e.g. Europe/London (default UTC)"]
    #[autocomplete = "autocomplete_zone"]
    timezone: Option<String>,
) -> Result<(), Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(());
    };
    let weekday = day.unwrap_or(Day::Monday).weekday();
    let time = match parse_time(time.as_deref().unwrap_or("09:00")) {
        Ok(t) => t,
        Err(e) => {
            ctx.send(ephemeral(format!(
                "{e}. Try `/weekly set channel:#general time:09:00`."
            )))
            .await?;
            return Ok(());
        }
    };
    let zone = match parse_zone(timezone.as_deref().unwrap_or("UTC")) {
        Ok(z) => z,
        Err(e) => {
            ctx.send(ephemeral(format!("{e}. Pick a zone from the list as you type, for example `timezone:Europe/London` or `timezone:America/New_York`."))).await?;
            return Ok(());
        }
    };
    if !matches!(channel.kind, ChannelType::Text | ChannelType::News) {
        ctx.send(ephemeral(
            "Pick a text or announcement channel for the weekly post.",
        ))
        .await?;
        return Ok(());
    }
    ctx.defer_ephemeral().await?;
    let missing = missing_permissions(ctx, channel.id).await;
    if !missing.is_empty() {
        ctx.send(ephemeral(format!(
            "I can't post in {}: I am missing **{}** there. Give me {} in the channel's settings (Edit Channel › Permissions), then run `/weekly set` again.",
            channel.id.mention(),
            missing.join(", "),
            if missing.len() == 1 { "that permission" } else { "those permissions" },
        )))
        .await?;
        return Ok(());
    }
    let schedule = WeeklySchedule::new(weekday, time, zone);
    let data = ctx.data();
    let now = data.poster.clock().now();
    let (guild, channel_id) = (guild_id.get(), channel.id.get());
    data.store
        .call(move |db| db.set_weekly(guild, channel_id, &schedule, now))
        .await?;
    data.poster.wake();
    let next = schedule.next_slot_at_or_after(now);
    tracing::info!(guild = %guild_id, channel = %channel.id, %schedule, next = %format_rfc3339_z(next.at), "weekly post set");
    ctx.send(ephemeral(format!(
        "Done: an insight every **{} at {}** ({}) in {}.\nNext post: {} — {}.",
        weekday_name(weekday),
        time.format("%H:%M"),
        zone.name(),
        channel.id.mention(),
        local(next.at, zone),
        discord_timestamp(next.at),
    )))
    .await?;
    Ok(())
}

/// Show this server's weekly post settings.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn show(ctx: Context<'_>) -> Result<(), Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(());
    };
    let data = ctx.data();
    let guild = guild_id.get();
    let stored = answer_in_time(
        ctx,
        true,
        data.store
            .call(move |db| Ok((db.weekly(guild)?, db.last_post(guild)?))),
    )
    .await??;
    let (settings, last_post) = stored;
    let Some(settings) = settings else {
        ctx.send(ephemeral("No weekly post is set up here. Start one with `/weekly set channel:#general day:Monday time:09:00 timezone:Europe/London`.")).await?;
        return Ok(());
    };
    let schedule = &settings.schedule;
    let zone = schedule.zone;
    let mut lines = vec![format!(
        "**Weekly insight:** {} at {} ({}) in <#{}>{}",
        weekday_name(schedule.weekday),
        schedule.time.format("%H:%M"),
        zone.name(),
        settings.channel_id,
        if settings.enabled { "" } else { " — **off**" },
    )];
    if let Some(failure) = &settings.failure {
        lines.push(format!(
            "⚠️ **Paused since {}:** {}. Fix the channel or my permissions, then run `/weekly set` again.",
            discord_timestamp(failure.at),
            render::escape(&failure.reason),
        ));
    } else if settings.enabled {
        let next = schedule.next_slot_at_or_after(data.poster.clock().now());
        lines.push(format!(
            "**Next post:** {} — {}",
            local(next.at, zone),
            discord_timestamp(next.at)
        ));
    }
    match last_post {
        Some(post) => lines.push(format!(
            "**Last post:** {} ({}), https://discord.com/channels/{}/{}/{}",
            post.week.label(),
            post.posted_at.map(discord_timestamp).unwrap_or_default(),
            guild_id,
            post.channel_id,
            post.message_id.unwrap_or_default(),
        )),
        None => lines.push("**Last post:** none yet".into()),
    }
    ctx.send(ephemeral(lines.join("\n"))).await?;
    Ok(())
}

/// Stop the weekly post.
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
pub async fn off(ctx: Context<'_>) -> Result<(), Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(());
    };
    let data = ctx.data();
    let (guild, now) = (guild_id.get(), data.poster.clock().now());
    let was_on = answer_in_time(
        ctx,
        true,
        data.store.call(move |db| db.disable_weekly(guild, now)),
    )
    .await??;
    data.poster.wake();
    let text = if was_on {
        "The weekly post is off. `/weekly set` turns it back on (the rotation continues where it left off)."
    } else {
        "The weekly post was not on. `/weekly set` starts it."
    };
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

/// Post this week's insight now (the scheduled post of this week is then skipped).
#[poise::command(
    slash_command,
    guild_only,
    required_permissions = "MANAGE_GUILD",
    rename = "post-now"
)]
pub async fn post_now(ctx: Context<'_>) -> Result<(), Error> {
    let Some(guild_id) = ctx.guild_id() else {
        return Ok(());
    };
    let data = ctx.data();
    let guild = guild_id.get();
    let settings = answer_in_time(ctx, true, data.store.call(move |db| db.weekly(guild))).await??;
    let channel_id = match settings {
        Some(s) if s.enabled && s.failure.is_none() => s.channel_id,
        Some(s) if s.failure.is_some() => {
            ctx.send(ephemeral("The weekly post is paused because of a channel problem (see `/weekly show`). Fix it with `/weekly set` first.")).await?;
            return Ok(());
        }
        _ => {
            ctx.send(ephemeral(
                "No weekly post is set up here. Start one with `/weekly set channel:#general`.",
            ))
            .await?;
            return Ok(());
        }
    };
    // Sending can take a while with retries: answer Discord within its 3 s first.
    ctx.defer_ephemeral().await?;
    let outcome = tokio::time::timeout(POST_NOW_WAIT, data.poster.post_now(guild_id.get())).await;
    let Ok(outcome) = outcome else {
        ctx.send(ephemeral("Discord has not confirmed the post yet. I keep trying in the background; `/weekly show` shows it once it is out.")).await?;
        return Ok(());
    };
    let text = match outcome? {
        Some(Delivery::Posted(message_id)) => format!("Posted this week's insight: https://discord.com/channels/{guild_id}/{channel_id}/{message_id}. This week's scheduled post is skipped; the next one follows the schedule."),
        Some(Delivery::AlreadyPosted(record)) => format!(
            "This week's insight ({}) is already posted{}. One post a week: the next one follows the schedule (`/weekly show`).",
            record.week.label(),
            record.posted_at.map(|at| format!(" {}", discord_timestamp(at))).unwrap_or_default(),
        ),
        Some(Delivery::InProgress) => "This week's insight is being posted right now; `/weekly show` shows it once it is out.".to_string(),
        Some(Delivery::WillRetry(error)) => format!("Discord did not take the post yet ({}); I will retry in a few minutes.", render::escape(&error)),
        Some(Delivery::Paused(reason)) => format!("I could not post: {}. The weekly post is paused until you fix it and run `/weekly set` again.", render::escape(&reason)),
        Some(Delivery::NothingToPost) => "The insight collection is empty.".to_string(),
        None => "No weekly post is set up here.".to_string(),
    };
    ctx.send(ephemeral(text)).await?;
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
            .map_err(|e| PublishError::Transient(format!("network error: {}", e.without_url())))?;
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
        Err(match status.as_u16() {
            403 | 404 => PublishError::Forbidden(format!("Discord answered {status}: {message}")),
            429 => {
                let seconds = body["retry_after"].as_f64().or(header_wait).unwrap_or(1.0);
                crate::ops::metrics()
                    .discord_rate_limited_seconds
                    .add(seconds);
                PublishError::RateLimited(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
            }
            _ => PublishError::Transient(format!("Discord answered {status}: {message}")),
        })
    }
}

impl Publisher for DiscordPublisher {
    fn send<'a>(&'a self, post: &'a OutgoingPost) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            let message = render::weekly_post(&post.insight, post.week)
                .to_message()
                .nonce(serenity::Nonce::String(post.nonce.clone()))
                .enforce_nonce(true);
            let url = format!("{}/channels/{}/messages", self.base, post.channel_id);
            let body = self.call(self.client.post(url).json(&message)).await?;
            body["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| PublishError::Transient("Discord's answer has no message id".into()))
        })
    }

    fn find_post<'a>(
        &'a self,
        channel_id: u64,
        week: WeekKey,
        since: chrono::DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>> {
        Box::pin(async move {
            // Messages after the claim (a minute earlier, for clock skew), oldest first as
            // Discord pages `after`: the post, if it went out, is among the first sent after the
            // claim, so a busy channel cannot push it out of the page the way "latest 50" could.
            let after = snowflake_at(since - chrono::Duration::minutes(1));
            let url = format!(
                "{}/channels/{channel_id}/messages?after={after}&limit=100",
                self.base
            );
            let body = self.call(self.client.get(url)).await?;
            let label = week.label();
            let bot = self.bot_user_id.to_string();
            let found = body.as_array().into_iter().flatten().find(|m| {
                m["author"]["id"].as_str() == Some(bot.as_str())
                    && m["embeds"].as_array().into_iter().flatten().any(|e| {
                        e["title"].as_str() == Some(WEEKLY_TITLE)
                            && e["footer"]["text"].as_str() == Some(label.as_str())
                    })
            });
            Ok(found
                .and_then(|m| m["id"].as_str())
                .and_then(|id| id.parse().ok()))
        })
    }
}
