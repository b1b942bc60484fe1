//! The everyday slash commands — `/advice`, `/insight`, `/topics`, `/help` — and the "Another one"
//! button of `/insight`.
//!
//! Each command is a thin call into the core (the server's collection: `Catalog::ask`,
//! `Library::random`) and a reply built by [`super::render`]. All are usable in servers (drawing
//! from the server's collection: shipped plus its own) and in DMs with the bot (the shipped
//! collection). Also here: what every command shares (the reply budget, deferring in time,
//! ephemeral hints).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poise::serenity_prelude as serenity;
use serenity::{
    AutocompleteChoice, ComponentInteraction, CreateAutocompleteResponse,
    CreateInteractionResponse, CreateInteractionResponseMessage,
};

use super::feedback;
use super::render::{self, no_pings};
use super::{Context, Data, Error};
use crate::collections::CollectionError;
use crate::insights::search::{AskError, Question};
use crate::stats::gap_vectors;

/// How long a command works before it defers its answer: Discord drops an interaction that is not
/// acknowledged within 3 s. Most answers take milliseconds and go out in one request; a long
/// question's embedding, or a store call waiting for a lock held by another process, can take
/// longer, and then the command defers first and answers when ready.
const DEFER_AFTER: Duration = Duration::from_millis(1500);

/// Awaits `work`, first deferring the command's answer (ephemeral or not, as the answer will be)
/// if `work` takes longer than [`DEFER_AFTER`], so the interaction is acknowledged in time.
pub async fn answer_in_time<T>(
    ctx: Context<'_>,
    ephemeral: bool,
    work: impl Future<Output = T>,
) -> Result<T, Error> {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return Ok(done),
        _ = tokio::time::sleep(DEFER_AFTER) => {}
    }
    if ephemeral {
        ctx.defer_ephemeral().await?;
    } else {
        ctx.defer().await?;
    }
    crate::ops::interaction::note_acknowledged();
    Ok(work.await)
}

/// The example shown whenever someone needs to know what to type.
const ADVICE_EXAMPLE: &str = "/advice question: How do I stop micromanaging my team?";

/// An ephemeral reply with plain text: errors and hints only the invoking user sees.
pub fn ephemeral(text: impl Into<String>) -> poise::CreateReply {
    poise::CreateReply::default()
        .content(render::truncate(&text.into(), render::MAX_CONTENT))
        .ephemeral(true)
        .allowed_mentions(no_pings())
}

/// The bot refused to reply because the person's budget is spent: what to tell them, and whether
/// this is the first refusal of the current wait (a DM gets the notice once, not per message).
pub struct SlowDown {
    pub text: String,
    pub first: bool,
}

/// Spends one reply of `user`'s budget, shared by every way in: slash commands, DMs (questions,
/// `help`, empty messages) and buttons. `Err` when the budget is spent.
pub fn spend_budget(data: &Data, user: serenity::UserId) -> Result<(), SlowDown> {
    spend(&data.cooldown, user)
}

/// Spends one action of `user`'s curating budget (`/insights`, its buttons and forms, the review
/// buttons, `/suggest`'s form): see [`super::CURATION_ACTIONS_PER_MINUTE`].
pub fn spend_curation_budget(data: &Data, user: serenity::UserId) -> Result<(), SlowDown> {
    spend(&data.curation_cooldown, user)
}

fn spend(
    budget: &std::sync::Mutex<crate::cooldown::Cooldown>,
    user: serenity::UserId,
) -> Result<(), SlowDown> {
    let mut cooldown = budget.lock().unwrap_or_else(|e| e.into_inner());
    cooldown
        .check(user.get(), Instant::now())
        .inspect_err(|_| {
            crate::ops::interaction::note_outcome(crate::ops::interaction::Outcome::RateLimited)
        })
        .map_err(|refusal| SlowDown {
            text: format!(
                "Slow down a little — you can ask again in {} s.",
                refusal.wait.as_secs()
            ),
            first: refusal.first,
        })
}

/// Marks an invocation whose reply was already counted (poise runs the global check once per
/// command of the tree, parent and subcommand).
struct Counted;

/// poise's global command check: every command invocation spends one reply of the author's
/// budget (autocomplete does not: it fires on every keystroke and posts nothing). A refused
/// invocation gets an ephemeral "slow down" (an interaction must be answered; only its author
/// sees it) and the command does not run.
pub async fn budget_check(ctx: Context<'_>) -> Result<bool, Error> {
    if let poise::Context::Application(app) = ctx {
        if app.interaction_type == poise::CommandInteractionType::Autocomplete {
            return Ok(true);
        }
    }
    if ctx.invocation_data::<Counted>().await.is_some() {
        return Ok(true);
    }
    ctx.set_invocation_data(Counted).await;
    let curating = ctx.command().qualified_name.starts_with("insights");
    let spent = if curating {
        spend_curation_budget(ctx.data(), ctx.author().id)
    } else {
        spend_budget(ctx.data(), ctx.author().id)
    };
    match spent {
        Ok(()) => Ok(true),
        Err(slow_down) => {
            ctx.send(ephemeral(slow_down.text)).await?;
            Ok(false)
        }
    }
}

/// Answers `question` the way `/advice` and DMs do, from what `guild` sees (the shipped
/// collection in DMs); `Err` is a message for the user. Ranking embeds the question (milliseconds
/// of CPU), so it runs on the blocking pool, never on the runtime's worker threads: a burst of
/// questions cannot stall the gateway or other replies.
pub async fn answer_question(
    data: &Data,
    guild: Option<serenity::GuildId>,
    question: &str,
) -> Result<render::Reply, String> {
    let guild = guild.map(|g| g.get());
    let collection = data
        .collections
        .get(guild)
        .await
        .map_err(|e| collection_unavailable(guild, &e))?;
    let catalog = Arc::clone(collection.catalog());
    let asked = question.to_string();
    let ranked = tokio::task::spawn_blocking(move || {
        // Catalog::ask in its two steps, to keep the question's vector: a server's answer
        // carries it to the store, where it is kept with the question if gaps are on.
        let read = Question::read(&asked)?;
        let queries = catalog.searcher().embed_question(&read)?;
        let answer = catalog.rank(&read, &queries, 3);
        let question_vector = guild
            .and(queries.first())
            .map(|v| gap_vectors::encode(v, catalog.searcher().embedder().fingerprint()));
        // A question in another language gets "English only", not a random insight.
        let fallback = if answer.no_close_match && !answer.explanation.other_language {
            catalog
                .library()
                .random(None, None, &mut rand::thread_rng())
        } else {
            None
        };
        let shown = answer
            .best()
            .map(|m| m.insight)
            .or(fallback)
            .map(|i| i.id.clone());
        let facts = feedback::AnswerFacts {
            insight_id: answer.best().map(|m| m.insight.id.clone()),
            no_close_match: answer.no_close_match,
            weak: answer.confidence == crate::insights::search::Confidence::Weak,
            question_vector,
        };
        let confidence = answer.confidence;
        let reply = render::answer(&answer, fallback, guild.is_some());
        Ok::<_, AskError>((reply, shown, facts, confidence))
    })
    .await;
    match ranked {
        Ok(Ok((mut reply, shown, facts, confidence))) => {
            crate::ops::metrics().answers.inc([confidence.as_str()]);
            let day = data.clock.now().date_naive();
            if let Some(id) = shown {
                data.collections.record_shown(guild, &id, day);
            }
            // The buttons carry the answer's id; the record is written in the background.
            let answer_id = feedback::new_answer_id();
            reply.buttons.extend(feedback::buttons(answer_id));
            feedback::record(
                &data.store,
                feedback::new_answer(answer_id, guild, day, facts, question),
            );
            Ok(reply)
        }
        Ok(Err(AskError::Empty)) => Err(format!(
            "Type a question after the command, for example `{ADVICE_EXAMPLE}`"
        )),
        Ok(Err(e)) => {
            tracing::error!("answering a question failed: {e}");
            Err("Sorry, I could not read that question. Please try again in other words.".into())
        }
        Err(e) => {
            tracing::error!("the answering task failed: {e}");
            Err("Sorry, something went wrong while answering. Please try again in a moment.".into())
        }
    }
}

/// Where a command was used, as far as answering goes.
///
/// `/advice`, `/insight`, `/topics` and `/help` can be installed to a person as well as to a
/// server (Discord's user installs), so they also run where the bot itself is not: a server that
/// never added it, a group DM, someone else's DM. There they are **outside**: they draw on the
/// shipped collection (a server's own insights need that server's install) and answer so that
/// only the asker sees it, since the people around never asked for the bot. In a server that
/// installed the bot, and in the bot's own DM, they are inside, as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// The server whose collection answers; `None`: the shipped collection.
    pub guild: Option<serenity::GuildId>,
    /// Used where the bot is not installed: answers are ephemeral.
    pub outside: bool,
}

/// The [`Reach`] of a command.
pub fn reach(ctx: Context<'_>) -> Reach {
    match ctx {
        poise::Context::Application(app) => reach_of(
            app.interaction.guild_id,
            &app.interaction.authorizing_integration_owners,
            app.interaction.context,
        ),
        poise::Context::Prefix(_) => Reach {
            guild: ctx.guild_id(),
            outside: false,
        },
    }
}

/// The [`Reach`] of any interaction (a command, a button under an answer), from its fields.
pub fn reach_of(
    guild_id: Option<serenity::GuildId>,
    owners: &serenity::AuthorizingIntegrationOwners,
    context: Option<serenity::InteractionContext>,
) -> Reach {
    match guild_id {
        Some(guild) => {
            let installed = owners.0.iter().any(|owner| {
                matches!(owner, serenity::AuthorizingIntegrationOwner::GuildInstall(Some(id)) if *id == guild)
            });
            Reach {
                guild: installed.then_some(guild),
                outside: !installed,
            }
        }
        None => Reach {
            guild: None,
            outside: context == Some(serenity::InteractionContext::PrivateChannel),
        },
    }
}

/// What a person is told when their server's collection cannot be loaded (the database is
/// down): the cause is logged, the person is asked to retry.
pub fn collection_unavailable(guild: Option<u64>, error: &CollectionError) -> String {
    tracing::error!(?guild, "cannot load the server's collection: {error}");
    "Sorry, I cannot reach this server's insights right now. Please try again in a minute.".into()
}

/// What `/insight` and "Another one" say when a server sees no insight at all.
const NOTHING_TO_SHOW: &str = "This server answers from its own insights only (`/insights source`) and has none yet. A curator can add one with `/insights add`, or switch back with `/insights source which:all`.";

/// Ask for advice: the most relevant insight for your question.
#[poise::command(
    slash_command,
    install_context = "Guild|User",
    interaction_context = "Guild|BotDm|PrivateChannel"
)]
pub async fn advice(
    ctx: Context<'_>,
    #[description = "Your question or situation, in your own words"]
    #[max_length = 1000]
    question: String,
    #[description = "Only you see the answer (default: false)"] private: Option<bool>,
) -> Result<(), Error> {
    let reach = reach(ctx);
    let private = private.unwrap_or(false) || reach.outside;
    let answered = answer_in_time(
        ctx,
        private,
        answer_question(ctx.data(), reach.guild, &question),
    )
    .await?;
    let reply = match answered {
        Ok(reply) => reply.to_poise(private),
        Err(hint) => ephemeral(hint),
    };
    ctx.send(reply).await?;
    Ok(())
}

/// Topics matching what has been typed: prefix matches first, at most 25 (Discord's limit).
async fn autocomplete_topic(ctx: Context<'_>, partial: &str) -> CreateAutocompleteResponse {
    let typed = partial.trim().to_lowercase();
    let guild = reach(ctx).guild.map(|g| g.get());
    let Ok(collection) = ctx.data().collections.get(guild).await else {
        return CreateAutocompleteResponse::new();
    };
    let mut topics: Vec<(bool, &str, usize)> = collection
        .library()
        .topics()
        .filter(|(topic, _)| topic.contains(&typed))
        .map(|(topic, count)| (!topic.starts_with(&typed), topic, count))
        .collect();
    topics.sort();
    let choices = topics
        .into_iter()
        .take(25)
        .map(|(_, topic, count)| {
            let name = render::truncate(&format!("{topic} ({count})"), 100);
            AutocompleteChoice::new(name, render::truncate(topic, 100))
        })
        .collect();
    CreateAutocompleteResponse::new().set_choices(choices)
}

/// A random insight, from a topic if you like, with a button for another one.
#[poise::command(
    slash_command,
    install_context = "Guild|User",
    interaction_context = "Guild|BotDm|PrivateChannel"
)]
pub async fn insight(
    ctx: Context<'_>,
    #[description = "Pick a topic (optional)"]
    #[autocomplete = "autocomplete_topic"]
    topic: Option<String>,
) -> Result<(), Error> {
    let reach = reach(ctx);
    let guild = reach.guild.map(|g| g.get());
    let collection = match ctx.data().collections.get(guild).await {
        Ok(c) => c,
        Err(e) => {
            ctx.send(ephemeral(collection_unavailable(guild, &e)))
                .await?;
            return Ok(());
        }
    };
    let library = collection.library();
    let topic = topic
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty());
    let picked = library.random(topic.as_deref(), None, &mut rand::thread_rng());
    if let Some(insight) = picked {
        ctx.data().collections.record_shown(
            guild,
            &insight.id,
            ctx.data().clock.now().date_naive(),
        );
    }
    let picked = picked.map(|insight| render::random_insight(insight, topic.as_deref()));
    let reply = match (picked, &topic) {
        (Some(reply), _) => reply.to_poise(reach.outside),
        (None, _) if library.is_empty() => ephemeral(NOTHING_TO_SHOW),
        (None, topic) => {
            let examples: Vec<&str> = library.topics().map(|(t, _)| t).take(5).collect();
            ephemeral(format!(
                "I have no topic called \"{}\". Pick one from the list as you type, for example `/insight topic:{}`, or see `/topics`.",
                render::escape_within(topic.as_deref().unwrap_or_default(), 100),
                examples.first().copied().unwrap_or("career"),
            ))
        }
    };
    ctx.send(reply).await?;
    Ok(())
}

/// The topics and how many insights each has.
#[poise::command(
    slash_command,
    install_context = "Guild|User",
    interaction_context = "Guild|BotDm|PrivateChannel"
)]
pub async fn topics(ctx: Context<'_>) -> Result<(), Error> {
    let reach = reach(ctx);
    let guild = reach.guild.map(|g| g.get());
    let reply = match ctx.data().collections.get(guild).await {
        Ok(collection) if collection.library().is_empty() => ephemeral(NOTHING_TO_SHOW),
        Ok(collection) => render::topics(collection.library()).to_poise(reach.outside),
        Err(e) => ephemeral(collection_unavailable(guild, &e)),
    };
    ctx.send(reply).await?;
    Ok(())
}

/// What this bot does and how to use it.
#[poise::command(
    slash_command,
    install_context = "Guild|User",
    interaction_context = "Guild|BotDm|PrivateChannel"
)]
pub async fn help(ctx: Context<'_>) -> Result<(), Error> {
    let guild = reach(ctx).guild.map(|g| g.get());
    let count = match ctx.data().collections.get(guild).await {
        Ok(collection) => collection.library().len(),
        Err(_) => ctx.data().collections.shipped().library().len(),
    };
    let shipped = ctx.data().collections.shipped().library().len();
    ctx.send(render::help(count, shipped, guild.is_some()).to_poise(true))
        .await?;
    Ok(())
}

/// The "Another one" button: replaces the shown insight with a different one from the same topic.
/// Buttons outlive restarts and collection changes, so an unknown id or topic still gets an answer.
pub async fn another_one(
    ctx: &serenity::Context,
    interaction: &ComponentInteraction,
    data: &Data,
) -> Result<(), Error> {
    if let Err(slow_down) = spend_budget(data, interaction.user.id) {
        let notice = CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content(slow_down.text)
                .ephemeral(true)
                .allowed_mentions(no_pings()),
        );
        interaction.create_response(&ctx.http, notice).await?;
        return Ok(());
    }
    let guild = reach_of(
        interaction.guild_id,
        &interaction.authorizing_integration_owners,
        interaction.context,
    )
    .guild
    .map(|g| g.get());
    let collection = match data.collections.get(guild).await {
        Ok(c) => c,
        Err(e) => {
            let notice = CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(collection_unavailable(guild, &e))
                    .ephemeral(true)
                    .allowed_mentions(no_pings()),
            );
            interaction.create_response(&ctx.http, notice).await?;
            return Ok(());
        }
    };
    let library = collection.library();
    let response = match render::parse_another(&interaction.data.custom_id) {
        Some((topic, shown)) => {
            let topic = topic.filter(|t| library.has_topic(t));
            let picked = library.random(topic, Some(shown), &mut rand::thread_rng());
            if let Some(insight) = picked {
                data.collections
                    .record_shown(guild, &insight.id, data.clock.now().date_naive());
            }
            let picked = picked.map(|insight| render::random_insight(insight, topic));
            match picked {
                Some(reply) => {
                    CreateInteractionResponse::UpdateMessage(reply.to_interaction_message())
                }
                None => expired_button(),
            }
        }
        None => expired_button(),
    };
    interaction.create_response(&ctx.http, response).await?;
    Ok(())
}

fn expired_button() -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content("This button is no longer active. Try `/insight` for a new one.")
            .ephemeral(true)
            .allowed_mentions(no_pings()),
    )
}
