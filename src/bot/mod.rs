//! The Discord adapter: the only part of the crate that knows Discord.
//!
//! This file builds the client (serenity 0.12) and the command framework (poise 0.7), starts it,
//! and shuts it down cleanly. The pieces:
//! - [`commands`]: `/advice`, `/insight`, `/topics`, `/help` and the "Another one" button, and
//!   what every command shares (the reply budget, deferring in time);
//! - [`curation`]: `/insights`, a server's own collection kept by its curators (forms, import,
//!   export, list, hide, source, curator role, review channel);
//! - [`suggestions`]: `/suggest`, `/insights review` and the review buttons;
//! - [`access`]: who is a curator, and answering button clicks and forms;
//! - [`dm`]: questions sent in direct messages;
//! - [`render`]: core results -> embeds and messages, with Discord's limits and no pings;
//! - [`weekly`]: the `/weekly` commands and the publisher the core weekly poster sends through;
//! - `operations`: what the operators' endpoint ([`crate::ops`]) reads from the running bot.
//!
//! Where poise is in the way we use serenity directly, in three places: DMs and button clicks are
//! handled in poise's event handler as raw events (poise only dispatches commands), and the
//! framework is wrapped in [`TrackedFramework`] so shutdown can wait for in-flight replies
//! (poise has no such hook).
//!
//! Start-up order matters: the token is checked with one REST call before connecting, so a bad
//! token is a clear error rather than a gateway close; commands are registered in poise's `setup`,
//! which runs once (poise ignores later READY events), so a gateway reconnect never re-registers.

pub mod access;
pub mod commands;
pub mod curating;
pub mod curation;
pub mod dm;
pub mod feedback;
pub mod heavy_work;
pub mod held;
pub mod one_at_a_time;
mod operations;
pub mod render;
pub mod suggestions;
pub mod usage;
pub mod weekly;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poise::serenity_prelude as serenity;
use serenity::{FullEvent, GatewayIntents, Interaction};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::collections::Collections;
use crate::config::Token;
use crate::cooldown::Cooldown;
use crate::insights::Catalog;
use crate::ops;
use crate::redact::{redact_url, redact_urls_in};
use crate::sharding::Shards;
use crate::store::Store;
use crate::weekly::clock::Clock;
use crate::weekly::poster::{Poster, PosterOptions};
use operations::{interaction_labels, BotProbe, LoopStopped, LoopsRunning};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Context<'a> = poise::Context<'a, Data, Error>;

/// Replies per person per minute, across every way in: slash commands, DMs and buttons. Enough
/// for a conversation and a few "Another one" clicks; a flood is cut short (see `cooldown`).
pub const REPLIES_PER_MINUTE: usize = 8;
/// Curating (`/insights`, its buttons and forms, review buttons, the forms of `/suggest`) has a
/// budget of its own: a curator reviewing ten suggestions or paging a list clicks more than a
/// person asking questions, and each of these answers only the one who clicked. Still bounded,
/// so a script cannot make the bot work without end.
pub const CURATION_ACTIONS_PER_MINUTE: usize = 30;
/// How long shutdown waits for replies already being worked on. With the poster stopped at once
/// and the gateway closed, this bounds the whole shutdown under 10 s, inside the time systemd and
/// container runtimes give between SIGTERM and SIGKILL.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(7);
/// How long shutdown waits for the client to stop after its shards were told to.
const CLIENT_STOP_GRACE: Duration = Duration::from_secs(2);

/// State shared by every command and event handler.
/// How long start-up waits for Discord's first answer (the token check).
pub const START_ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// Imports read or embedded at once across servers: the machine this runs on has 2 cores, and
/// answering questions needs a share of them.
pub const HEAVY_JOBS_AT_ONCE: usize = 2;

pub struct Data {
    /// Every server's collection (the shipped one in DMs): look-ups, random picks, questions.
    pub collections: Arc<Collections>,
    /// Drafts and imports waiting for a curator's button.
    pub pending: held::Pending,
    /// Reading and embedding imports: one per server, [`HEAVY_JOBS_AT_ONCE`] across servers.
    pub heavy: heavy_work::HeavyWork,
    /// The host of `DISCORD_API_BASE`, when set: attachments are downloaded from Discord's CDN
    /// hosts and from this one (a test's fake Discord), no other.
    pub api_host: Option<String>,
    /// Every person's reply budget ([`REPLIES_PER_MINUTE`]).
    pub cooldown: Mutex<Cooldown>,
    /// Every person's budget for curating ([`CURATION_ACTIONS_PER_MINUTE`]).
    pub curation_cooldown: Mutex<Cooldown>,
    pub store: Store,
    pub poster: Arc<Poster>,
    /// The day of an answer, a showing, a report (tests pass a manual clock).
    pub clock: Arc<dyn Clock>,
    /// The key of voter keys ([`feedback::voter_key`]), the database's, so every process agrees.
    pub voter_secret: [u8; 32],
    /// Servers whose `/insights gaps` listing is being computed (one at a time per server).
    pub gap_listings: one_at_a_time::OneAtATime,
}

/// What the bot needs to start.
pub struct BotSettings {
    pub token: Token,
    /// The shipped collection, indexed for questions; each server adds its own to it.
    pub catalog: Arc<Catalog>,
    /// Register commands in this server only (instant), instead of globally.
    pub guild_id: Option<u64>,
    /// Send REST calls (and ask for the gateway URL) here instead of discord.com.
    pub api_base: Option<String>,
    /// Server settings, rotations and the post log (opened before start, so a broken database
    /// stops start-up before anything connects).
    pub store: Store,
    /// Wall-clock time for the weekly poster (tests pass a manual clock).
    pub clock: Arc<dyn Clock>,
    pub poster_options: PosterOptions,
    /// `METRICS_ADDR`: serve the operators' endpoint ([`crate::ops`]) here; `None`: no endpoint.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Why the bot could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("DISCORD_TOKEN is not set. Create a bot in the Discord Developer Portal (https://discord.com/developers/applications > your application > Bot > Reset Token) and put DISCORD_TOKEN=<token> in .env or the environment.")]
    MissingToken,
    #[error("DISCORD_TOKEN was rejected by Discord (401 Unauthorized). Reset the token in the Discord Developer Portal (your application > Bot > Reset Token) and update DISCORD_TOKEN.")]
    RejectedToken,
    #[error("cannot reach Discord at {base}: {reason}")]
    Unreachable { base: String, reason: String },
    #[error("cannot use the state database: {0}")]
    Store(String),
    #[error("the Discord client stopped: {0}")]
    Client(String),
    /// The operators' endpoint could not listen (the message names `METRICS_ADDR`).
    #[error("{0}")]
    Endpoint(String),
}

/// Counts event handlers in progress, so shutdown can let them finish.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(Arc::clone(self))
    }

    /// Waits until nothing is in flight, at most `limit`; true when idle.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count.load(Ordering::Acquire) == 0;
            }
        }
    }
}

/// poise's framework, counted: every event's handling (commands, DMs, buttons) holds a guard.
struct TrackedFramework {
    inner: poise::Framework<Data, Error>,
    in_flight: Arc<InFlight>,
}

#[serenity::async_trait]
impl serenity::Framework for TrackedFramework {
    async fn init(&mut self, client: &serenity::Client) {
        self.inner.init(client).await;
    }

    async fn dispatch(&self, ctx: serenity::Context, event: FullEvent) {
        let _guard = self.in_flight.enter();
        match interaction_labels(&event) {
            Some((kind, command)) => {
                ops::interaction::track(kind, command, self.inner.dispatch(ctx, event)).await
            }
            None => self.inner.dispatch(ctx, event).await,
        }
    }
}

/// The REST client: straight to Discord with serenity's rate limiter, or through
/// `DISCORD_API_BASE` with the limiter off (serenity ignores the proxy while its limiter is on;
/// a shared proxy such as twilight-http-proxy does the rate limiting instead).
pub fn build_http(token: &Token, api_base: Option<&str>) -> serenity::Http {
    let builder = serenity::HttpBuilder::new(token.expose());
    match api_base {
        Some(base) => builder.proxy(base).ratelimiter_disabled(true).build(),
        None => builder.build(),
    }
}

/// Every slash command the bot registers.
pub fn all_commands() -> Vec<poise::Command<Data, Error>> {
    vec![
        commands::advice(),
        commands::insight(),
        commands::topics(),
        commands::help(),
        weekly::weekly(),
        curation::insights(),
        suggestions::suggest(),
    ]
}

async fn on_event(ctx: &serenity::Context, event: &FullEvent, data: &Data) -> Result<(), Error> {
    match event {
        FullEvent::Message { new_message } => dm::handle_message(ctx, new_message, data).await,
        FullEvent::InteractionCreate {
            interaction: Interaction::Component(component),
        } => {
            let custom_id = component.data.custom_id.as_str();
            if custom_id.starts_with(feedback::PREFIX)
                || custom_id.starts_with(weekly::PING_BUTTON_PREFIX)
            {
                if let Err(slow_down) = commands::spend_budget(data, component.user.id) {
                    access::Incoming::Button(component)
                        .respond(&ctx.http, access::Answer::Notice(slow_down.text))
                        .await?;
                    return Ok(());
                }
                if custom_id.starts_with(feedback::PREFIX) {
                    feedback::on_button(ctx, component, data).await
                } else {
                    weekly::on_ping_button(ctx, component, data).await
                }
            } else if custom_id.starts_with("ins:") || custom_id.starts_with("sug:") {
                let click = access::Incoming::Button(component);
                if let Err(slow_down) = commands::spend_curation_budget(data, component.user.id) {
                    click
                        .respond(&ctx.http, access::Answer::Notice(slow_down.text))
                        .await?;
                    return Ok(());
                }
                if custom_id.starts_with("ins:") {
                    curation::on_button(ctx, click, data).await
                } else {
                    suggestions::on_button(ctx, click, data).await
                }
            } else {
                commands::another_one(ctx, component, data).await
            }
        }
        FullEvent::InteractionCreate {
            interaction: Interaction::Modal(modal),
        } => {
            let form = access::Incoming::Form(modal);
            if let Err(slow_down) = commands::spend_curation_budget(data, modal.user.id) {
                // A form's content is not lost to the budget: it is shown back.
                let typed: Vec<String> = form
                    .fields()
                    .iter()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(_, v)| render::escape_within(v, 600))
                    .collect();
                let text = format!(
                    "{} Nothing was saved; what you wrote:\n{}",
                    slow_down.text,
                    typed.join("\n")
                );
                form.respond(&ctx.http, access::Answer::Notice(text))
                    .await?;
                return Ok(());
            }
            if modal.data.custom_id.starts_with("sug:") {
                suggestions::on_form(ctx, form, data).await
            } else {
                curation::on_form(ctx, form, data).await
            }
        }
        FullEvent::Ready { data_about_bot } => {
            tracing::info!(
                user = %data_about_bot.user.name,
                guilds = data_about_bot.guilds.len(),
                "connected to the Discord gateway"
            );
            Ok(())
        }
        FullEvent::Resume { .. } => {
            tracing::info!("gateway session resumed");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// One place for every error: log it with context, tell the user in an ephemeral message what
/// to do, never crash.
async fn on_error(error: poise::FrameworkError<'_, Data, Error>) {
    use ops::interaction::{note_outcome, Outcome};
    use poise::FrameworkError as E;
    match error {
        E::Command { error, ctx, .. } => {
            note_outcome(Outcome::Error);
            tracing::error!(command = %ctx.command().qualified_name, user = %ctx.author().id, "command failed: {error}");
            let _ = ctx
                .send(commands::ephemeral(
                    "Sorry, something went wrong while answering. Please try again in a moment.",
                ))
                .await;
        }
        E::ArgumentParse {
            error, input, ctx, ..
        } => {
            note_outcome(Outcome::Refused);
            let options: Vec<(&str, Option<&str>)> = match ctx {
                poise::Context::Application(app) => app
                    .args
                    .iter()
                    .map(|option| match option.value {
                        serenity::ResolvedValue::String(text) => (option.name, Some(text)),
                        _ => (option.name, None),
                    })
                    .collect(),
                poise::Context::Prefix(_) => Vec::new(),
            };
            tracing::info!(
                command = %ctx.command().qualified_name,
                "{}",
                bad_option_log(&options, input.as_deref(), &error.to_string())
            );
            let usage = format!("/{}", ctx.command().qualified_name);
            let _ = ctx
                .send(commands::ephemeral(format!(
                    "I could not read one of the options ({error}). Type `{usage}` and pick the options from Discord's list."
                )))
                .await;
        }
        E::MissingUserPermissions {
            missing_permissions,
            ctx,
            ..
        } => {
            note_outcome(Outcome::Refused);
            // serenity names it "Manage Guild"; Discord's interface says "Manage Server".
            let needed = missing_permissions
                .map(|p| p.to_string().replace("Manage Guild", "Manage Server"))
                .unwrap_or_else(|| "Manage Server".into());
            let _ = ctx
                .send(commands::ephemeral(format!(
                    "You need the {needed} permission in this server to use `/{}`.",
                    ctx.command().qualified_name
                )))
                .await;
        }
        E::GuildOnly { ctx, .. } => {
            note_outcome(Outcome::Refused);
            let _ = ctx
                .send(commands::ephemeral(format!(
                    "`/{}` works in a server, not in DMs.",
                    ctx.command().qualified_name
                )))
                .await;
        }
        // A refused check has answered already (the budget's "slow down", noted as rate
        // limited where the budget was spent; another check's refusal is a refusal).
        E::CommandCheckFailed { error: None, .. } => note_outcome(Outcome::Refused),
        E::CommandCheckFailed {
            error: Some(error),
            ctx,
            ..
        } => {
            note_outcome(Outcome::Error);
            tracing::error!(command = %ctx.command().qualified_name, "command check failed: {error}");
            let _ = ctx
                .send(commands::ephemeral(
                    "Sorry, something went wrong while answering. Please try again in a moment.",
                ))
                .await;
        }
        E::EventHandler { error, event, .. } => {
            note_outcome(Outcome::Error);
            tracing::error!(
                event = event.snake_case_name(),
                "event handler failed: {error}"
            );
        }
        E::Setup { error, .. } => {
            tracing::error!("start-up failed: {error}");
        }
        other => {
            note_outcome(Outcome::Error);
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::error!("error while handling an error: {e}");
            }
        }
    }
}

/// The log line for an option that did not parse: which option (the one of `options`, the
/// command's `(name, text value)` pairs, whose text is `input`) and why, never what the user
/// typed: that is theirs, not the log's (they see it in their own reply). The parser's reason is
/// left out when it quotes the value.
fn bad_option_log(options: &[(&str, Option<&str>)], input: Option<&str>, error: &str) -> String {
    let typed = input.map(str::trim).filter(|text| !text.is_empty());
    let names: Vec<&str> = options
        .iter()
        .filter(|(_, value)| typed.is_some() && value.map(str::trim) == typed)
        .map(|(name, _)| *name)
        .collect();
    let option = match names.as_slice() {
        [] => "an option".to_string(),
        names => format!("option {}", names.join(" or ")),
    };
    // The value as typed, escaped as `{:?}` writes it, or any word of it: a reason that holds
    // one of these is not logged.
    let quotes = |text: &str| {
        let (reason, text) = (error.to_lowercase(), text.to_lowercase());
        let escaped = format!("{text:?}");
        reason.contains(&text)
            || reason.contains(escaped.trim_matches('"'))
            || text
                .split_whitespace()
                .any(|word| word.chars().count() >= 3 && reason.contains(word))
    };
    match typed {
        Some(text) if quotes(text) => {
            format!("{option} did not parse (the reason quotes the value; not logged)")
        }
        _ => format!("{option} did not parse: {error}"),
    }
}

fn framework(
    settings: &BotSettings,
    collections: Arc<Collections>,
    poster: Arc<Poster>,
    voter_secret: [u8; 32],
) -> poise::Framework<Data, Error> {
    let store = settings.store.clone();
    let clock = Arc::clone(&settings.clock);
    let guild_id = settings.guild_id;
    let api_host = settings
        .api_base
        .as_deref()
        .and_then(|base| url::Url::parse(base).ok())
        .and_then(|base| base.host_str().map(str::to_string));
    poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: all_commands(),
            command_check: Some(|ctx| Box::pin(commands::budget_check(ctx))),
            on_error: |error| Box::pin(on_error(error)),
            event_handler: |framework, event| {
                Box::pin(on_event(
                    framework.serenity_context,
                    event,
                    framework.user_data,
                ))
            },
            allowed_mentions: Some(render::no_pings()),
            ..Default::default()
        })
        .setup(move |ctx, _ready, framework| {
            Box::pin(async move {
                register_commands(ctx, &framework.options().commands, guild_id).await;
                Ok(Data {
                    collections,
                    pending: held::Pending::default(),
                    heavy: heavy_work::HeavyWork::new(HEAVY_JOBS_AT_ONCE),
                    api_host,
                    curation_cooldown: Mutex::new(Cooldown::new(
                        CURATION_ACTIONS_PER_MINUTE,
                        Duration::from_secs(60),
                    )),
                    cooldown: Mutex::new(Cooldown::new(
                        REPLIES_PER_MINUTE,
                        Duration::from_secs(60),
                    )),
                    store,
                    poster,
                    clock,
                    voter_secret,
                    gap_listings: one_at_a_time::OneAtATime::default(),
                })
            })
        })
        .build()
}

/// Registers the commands globally, or in one server when `guild_id` is set. A failure is logged
/// and start-up goes on: commands registered earlier keep working, and DMs need no registration.
/// (Failing `setup` instead would leave poise waiting for it forever, answering nothing.)
async fn register_commands(
    ctx: &serenity::Context,
    commands: &[poise::Command<Data, Error>],
    guild_id: Option<u64>,
) {
    let names: Vec<String> = commands.iter().map(|c| format!("/{}", c.name)).collect();
    let result = match guild_id {
        Some(id) => {
            poise::builtins::register_in_guild(ctx, commands, serenity::GuildId::new(id)).await
        }
        None => poise::builtins::register_globally(ctx, commands).await,
    };
    let scope = match guild_id {
        Some(id) => format!("in server {id} (DISCORD_GUILD_ID)"),
        None => "globally".to_string(),
    };
    match result {
        Ok(()) => {
            tracing::info!(commands = %names.join(" "), "registered {} slash commands {scope}", names.len())
        }
        Err(e) => {
            tracing::error!(commands = %names.join(" "), "could not register slash commands {scope}: {e}")
        }
    }
}

/// A running bot: stop it with [`RunningBot::shutdown`].
pub struct RunningBot {
    shard_manager: Arc<serenity::ShardManager>,
    client_task: JoinHandle<Result<(), serenity::Error>>,
    in_flight: Arc<InFlight>,
    poster_task: JoinHandle<()>,
    stop_poster: Arc<Notify>,
    poster: Arc<Poster>,
    /// The daily usage housekeeping ([`crate::stats::retention`]).
    housekeeping_task: JoinHandle<()>,
    /// The operators' endpoint, when `METRICS_ADDR` is set.
    endpoint: Option<ops::Endpoint>,
}

/// Checks the token, connects, and returns once the client is started (not yet ready).
pub async fn start(settings: BotSettings) -> Result<RunningBot, BotError> {
    // Listening first: a taken port stops start-up before anything connects, and `/readyz`
    // answers (503) while the bot connects.
    let endpoint = match settings.metrics_addr {
        Some(addr) => Some(
            ops::Endpoint::bind(addr, settings.store.clone())
                .await
                .map_err(BotError::Endpoint)?,
        ),
        None => None,
    };
    let http = build_http(&settings.token, settings.api_base.as_deref());
    let base = settings
        .api_base
        .clone()
        .unwrap_or_else(|| "https://discord.com".into());
    // An address that accepts the connection and never answers (a stuck proxy) would otherwise
    // hold start-up, silently, for as long as the connection lives.
    let current_user = tokio::time::timeout(START_ANSWER_WITHIN, http.get_current_user()).await;
    let Ok(current_user) = current_user else {
        return Err(BotError::Unreachable {
            base: redact_url(&base),
            reason: format!(
                "no answer within {} s (is DISCORD_API_BASE a proxy that is up?)",
                START_ANSWER_WITHIN.as_secs()
            ),
        });
    };
    let bot_user = match current_user {
        Ok(user) => {
            tracing::info!(bot = %user.name, id = %user.id, "token accepted");
            user
        }
        Err(serenity::Error::Http(e))
            if e.status_code() == Some(serenity::StatusCode::UNAUTHORIZED) =>
        {
            return Err(BotError::RejectedToken)
        }
        Err(e) => {
            // reqwest's message names the URL it failed on, with the proxy's credentials.
            return Err(BotError::Unreachable {
                base: redact_url(&base),
                reason: redact_urls_in(&e.to_string()),
            });
        }
    };
    let publisher = weekly::DiscordPublisher::new(
        &settings.token,
        settings.api_base.as_deref(),
        bot_user.id.get(),
        settings.poster_options.request_timeout,
        settings.poster_options.shards,
    )
    .map_err(|e| BotError::Client(e.to_string()))?;
    let voter_secret = settings
        .store
        .call(|db| db.secret())
        .await
        .map_err(|e| BotError::Store(e.to_string()))?;
    let collections = Arc::new(Collections::new(
        Arc::clone(&settings.catalog),
        settings.store.clone(),
    ));
    let probe_collections = Arc::clone(&collections);
    // Every server's collection is built in the background; a server asked about before its
    // turn is built on the spot (a few milliseconds), so nothing waits for this.
    {
        let collections = Arc::clone(&collections);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match collections.warm_up().await {
                Ok(w) => tracing::info!(
                    servers = w.servers,
                    insights = w.insights,
                    deferred = w.deferred,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "servers' own insights loaded"
                ),
                Err(e) => tracing::error!(
                    "could not load the servers' own insights at start (each server loads on first use): {e}"
                ),
            }
        });
    }
    let poster = Arc::new(Poster::new(
        settings.store.clone(),
        Arc::clone(&collections) as Arc<dyn crate::weekly::poster::ServerLibraries>,
        Arc::new(publisher),
        Arc::clone(&settings.clock),
        settings.poster_options.clone(),
    ));
    let in_flight = Arc::new(InFlight::default());
    let tracked = TrackedFramework {
        inner: framework(&settings, collections, Arc::clone(&poster), voter_secret),
        in_flight: Arc::clone(&in_flight),
    };
    // Guilds for server commands, DIRECT_MESSAGES for questions in DMs; both unprivileged
    // (DM content arrives without the privileged MESSAGE_CONTENT intent).
    let intents = GatewayIntents::GUILDS | GatewayIntents::DIRECT_MESSAGES;
    let mut client = serenity::ClientBuilder::new_with_http(http, intents)
        .framework(tracked)
        .await
        .map_err(|e| BotError::Client(e.to_string()))?;
    let shard_manager = Arc::clone(&client.shard_manager);
    let shards = settings.poster_options.shards;
    let loops = Arc::new(LoopsRunning::default());
    if let Some(endpoint) = &endpoint {
        endpoint.attach(Arc::new(BotProbe {
            shard_manager: Arc::clone(&shard_manager),
            shards,
            cache: Arc::clone(&client.cache),
            collections: Arc::clone(&probe_collections),
            loops: Arc::clone(&loops),
        }));
    }
    let client_stopped = LoopStopped(Arc::clone(&loops));
    let client_task = tokio::spawn(async move {
        let _stopped = client_stopped;
        match shards {
            Shards::Auto => client.start_autosharded().await,
            Shards::All(n) => client.start_shards(n).await,
            // serenity's range includes its end: 4..7 starts shards 4, 5, 6 and 7.
            Shards::Range { first, last, total } => {
                client.start_shard_range(first..last, total).await
            }
        }
    });
    // The weekly poster is started here, once, not from READY (which fires again after every
    // reconnect). It needs only REST, so it runs even while the gateway reconnects.
    let stop_poster = Arc::new(Notify::new());
    let poster_stopped = LoopStopped(Arc::clone(&loops));
    let poster_run = Arc::clone(&poster).run(Arc::clone(&stop_poster));
    let poster_task = tokio::spawn(async move {
        let _stopped = poster_stopped;
        poster_run.await
    });
    let housekeeping_task = tokio::spawn(crate::stats::retention::run(
        settings.store.clone(),
        Arc::clone(&settings.clock),
    ));
    Ok(RunningBot {
        shard_manager,
        client_task,
        in_flight,
        poster_task,
        stop_poster,
        poster,
        housekeeping_task,
        endpoint,
    })
}

impl RunningBot {
    /// Where the operators' endpoint listens (`METRICS_ADDR`, its port resolved), if it does.
    pub fn endpoint_addr(&self) -> Option<std::net::SocketAddr> {
        self.endpoint.as_ref().map(ops::Endpoint::local_addr)
    }

    /// The weekly poster (tests drive and inspect it).
    pub fn poster(&self) -> &Arc<Poster> {
        &self.poster
    }

    /// Stops the weekly poster (deliveries in flight are interrupted; their claims stay and the
    /// next start resolves them), closes the gateway connection, lets replies in progress finish
    /// (up to a grace period) and waits for the client to stop. Returns within 10 s whatever is
    /// in flight.
    pub async fn shutdown(mut self) -> Result<(), BotError> {
        // notify_one stores a permit, so the poster stops even if it is mid-pass right now.
        self.stop_poster.notify_one();
        // The endpoint goes with the bot; until here `/readyz` reports the shards going down.
        let endpoint = self.endpoint.take();
        // A pass in progress finishes its transaction on the blocking pool; the task stops here.
        self.housekeeping_task.abort();
        if let Err(e) = self.poster_task.await {
            tracing::error!("the weekly poster ended abnormally: {e}");
        }
        self.shard_manager.shutdown_all().await;
        if !self.in_flight.wait_idle(SHUTDOWN_GRACE).await {
            tracing::warn!("shutting down with replies still in progress");
        }
        let stopped = match tokio::time::timeout(CLIENT_STOP_GRACE, &mut self.client_task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(BotError::Client(e.to_string())),
            Ok(Err(e)) => Err(BotError::Client(e.to_string())),
            Err(_) => {
                tracing::warn!("the Discord client did not stop in time; leaving it");
                self.client_task.abort();
                Ok(())
            }
        };
        drop(endpoint);
        stopped
    }

    /// Runs until SIGINT/SIGTERM (then shuts down cleanly) or until the client stops by itself.
    pub async fn run_until_signal(self) -> Result<(), BotError> {
        let mut signals = ShutdownSignals::listen();
        self.run_until(&mut signals).await
    }

    /// Runs until one of `signals` arrives (then shuts down in order) or the client stops.
    pub async fn run_until(mut self, signals: &mut ShutdownSignals) -> Result<(), BotError> {
        tokio::select! {
            signal = signals.recv() => {
                tracing::info!("{signal}: shutting down");
                self.shutdown().await
            }
            result = &mut self.client_task => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(serenity::Error::Gateway(serenity::GatewayError::InvalidAuthentication))) => {
                    Err(BotError::RejectedToken)
                }
                Ok(Err(e)) => Err(BotError::Client(e.to_string())),
                Err(e) => Err(BotError::Client(e.to_string())),
            },
        }
    }
}

/// SIGINT and SIGTERM, listened for from the moment [`ShutdownSignals::listen`] is called (in a
/// runtime's context): one that arrives while the bot is still loading or connecting is kept and
/// stops it as soon as that step allows, with exit status 0, instead of the default action,
/// which kills the process (status 143) in the middle of whatever it was doing.
pub struct ShutdownSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    /// Starts listening. Needs a tokio runtime's context (`Runtime::enter` is enough).
    pub fn listen() -> ShutdownSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .map_err(|e| tracing::warn!("cannot listen for SIGINT/SIGTERM ({e}); Ctrl-C only"))
                .ok();
            ShutdownSignals { streams }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignals {}
        }
    }

    /// The next signal's name.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            return tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

pub async fn run(settings: BotSettings) -> Result<(), BotError> {
    tracing::info!(
        shards = %settings.poster_options.shards,
        insights = settings.catalog.library().len(),
        api_base = settings
            .api_base
            .as_deref()
            .map_or_else(|| "https://discord.com".into(), redact_url),
        "starting the Discord bot"
    );
    let mut signals = ShutdownSignals::listen();
    run_with_signals(settings, &mut signals).await
}

/// [`run`], with signals listened for since before the bot started loading (`main` starts
/// listening before it loads the collection and the model).
pub async fn run_with_signals(
    settings: BotSettings,
    signals: &mut ShutdownSignals,
) -> Result<(), BotError> {
    let bot = tokio::select! {
        signal = signals.recv() => {
            tracing::info!("{signal} during start-up: stopping before connecting");
            return Ok(());
        }
        started = start(settings) => started?,
    };
    bot.run_until(signals).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_option_is_logged_by_name_without_its_value() {
        let options = [("topic", Some("hunter2 secret words")), ("count", None)];
        let line = bad_option_log(
            &options,
            Some("hunter2 secret words"),
            "invalid digit found in string",
        );
        assert_eq!(
            line,
            "option topic did not parse: invalid digit found in string"
        );
        // A reason that quotes the value is not logged either.
        let line = bad_option_log(
            &options,
            Some("hunter2 secret words"),
            "\"hunter2 secret words\" is not a channel",
        );
        assert!(!line.contains("hunter2"), "{line}");
        assert!(line.starts_with("option topic did not parse"), "{line}");
        // Nor one that quotes it escaped, or a word of it in another case.
        for reason in [
            r#""he said \"hi\" twice" is not a channel"#,
            "no channel named Said",
        ] {
            let line = bad_option_log(
                &[("channel", Some(r#"he said "hi" twice"#))],
                Some(r#"he said "hi" twice"#),
                reason,
            );
            assert_eq!(
                line,
                "option channel did not parse (the reason quotes the value; not logged)"
            );
        }
        // No option holds the value (a prefix command): still named as a failure, value unseen.
        let line = bad_option_log(&[], Some("hunter2"), "no such channel: hunter2");
        assert_eq!(
            line,
            "an option did not parse (the reason quotes the value; not logged)"
        );
    }
}
