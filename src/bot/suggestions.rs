//! Members' suggestions: `/suggest` (a form: title, text, why it helped), `/insights review`
//! (the oldest waiting suggestion, for curators) and the review buttons — Approve, Edit & approve
//! (a form, filled in), Reject (a form with an optional reason).
//!
//! With a review channel set (`/insights review-channel`), each new suggestion is also posted
//! there with the same buttons. Anyone who can see that channel can press them, so every click
//! checks that the member is a curator, then and there. A decision is one database transaction
//! that only a *pending* suggestion accepts: two curators clicking at once decide once, and the
//! second is told it was already decided.
//!
//! The suggester is told the outcome by DM when their DMs are open, and never otherwise (a closed
//! DM is logged, not retried, and not announced anywhere else).

use chrono::Utc;
use poise::serenity_prelude as serenity;
use serenity::{
    ButtonStyle, CreateActionRow, CreateButton, CreateEmbed, CreateInputText, CreateMessage,
    CreateModal, EditMessage, InputTextStyle, Mentionable,
};

use super::access::{is_curator, not_a_curator, Answer, Incoming};
use super::commands::{collection_unavailable, ephemeral};
use super::curating::{as_curator, checked, insight_form, refusal, Typed};
use super::render::{self, escape_within, no_pings, Reply};
use super::{Context, Data, Error};
use crate::collections::{CollectionError, MAX_PENDING_PER_MEMBER};
use crate::insights::{slug_from_title, MAX_TEXT_CHARS, MAX_TITLE_CHARS};
use crate::store::{NewSuggestion, StoreError, Suggestion, SuggestionStatus};

/// At most this many characters of "why it helped you".
const MAX_WHY: usize = 1000;
/// At most this many characters of a rejection's reason.
const MAX_REASON: usize = 1000;

/// Suggest an insight for this server: curators review it.
#[poise::command(
    slash_command,
    guild_only,
    install_context = "Guild",
    interaction_context = "Guild"
)]
pub async fn suggest(ctx: Context<'_>) -> Result<(), Error> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    let form = CreateModal::new("sug:new", "Suggest an insight").components(vec![
        CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Short, "Title", "title")
                .max_length(MAX_TITLE_CHARS as u16)
                .placeholder("Delegate outcomes, not tasks"),
        ),
        CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Paragraph, "The insight", "text")
                .max_length(MAX_TEXT_CHARS.min(4000) as u16),
        ),
        CreateActionRow::InputText(
            CreateInputText::new(
                InputTextStyle::Paragraph,
                "Why it helped you (optional)",
                "why",
            )
            .max_length(MAX_WHY as u16)
            .required(false),
        ),
    ]);
    app.interaction
        .create_response(ctx.http(), serenity::CreateInteractionResponse::Modal(form))
        .await?;
    app.has_sent_initial_response
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// Review the suggestion that has waited longest (curators).
#[poise::command(slash_command)]
pub async fn review(ctx: Context<'_>) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let guild = collection.guild_id().unwrap_or_default();
    let reply = match next_for_review(ctx.data(), guild, None).await {
        Ok(reply) => reply.to_poise(true),
        Err(e) => ephemeral(refusal(&e)),
    };
    ctx.send(reply).await?;
    Ok(())
}

/// The oldest pending suggestion with its buttons (after `outcome`, the line saying what was
/// just decided), or that none is waiting.
async fn next_for_review(
    data: &Data,
    guild: u64,
    outcome: Option<String>,
) -> Result<Reply, CollectionError> {
    let store = data.store.clone();
    let (next, waiting) = store
        .call(move |db| {
            Ok((
                db.oldest_pending_suggestion(guild)?,
                db.pending_suggestion_count(guild)?,
            ))
        })
        .await?;
    let prefix = outcome.map(|o| format!("{o}\n")).unwrap_or_default();
    Ok(match next {
        None => Reply {
            content: Some(format!("{prefix}No suggestions are waiting for review.")),
            ..Reply::default()
        },
        Some(s) => Reply {
            content: Some(format!(
                "{prefix}{waiting} {} waiting; the oldest first:",
                if waiting == 1 {
                    "suggestion"
                } else {
                    "suggestions"
                }
            )),
            embeds: vec![suggestion_embed(&s)],
            buttons: review_buttons(s.id),
        },
    })
}

/// A suggestion as curators see it: everything the member wrote, escaped.
fn suggestion_embed(s: &Suggestion) -> CreateEmbed {
    let mut embed = CreateEmbed::new()
        .title(escape_within(
            &format!("Suggestion #{}: {}", s.id, s.title),
            render::MAX_EMBED_TITLE,
        ))
        .description(escape_within(&s.text, render::MAX_EMBED_DESCRIPTION))
        .field(
            "Suggested by",
            serenity::UserId::new(s.author_id).mention().to_string(),
            true,
        );
    if let Some(why) = s.why.as_deref().filter(|w| !w.trim().is_empty()) {
        embed = embed.field(
            "Why it helped them",
            escape_within(why, render::MAX_FIELD_VALUE),
            false,
        );
    }
    embed
}

fn review_buttons(id: u64) -> Vec<CreateButton> {
    vec![
        CreateButton::new(format!("sug:ok:{id}"))
            .label("Approve")
            .style(ButtonStyle::Success),
        CreateButton::new(format!("sug:edit:{id}"))
            .label("Edit & approve")
            .style(ButtonStyle::Primary),
        CreateButton::new(format!("sug:no:{id}"))
            .label("Reject")
            .style(ButtonStyle::Danger),
    ]
}

/// A submitted form: a new suggestion (`sug:new`), an edited approval (`sug:approve:<id>`) or a
/// rejection's reason (`sug:reject:<id>`).
pub async fn on_form(
    ctx: &serenity::Context,
    form: Incoming<'_>,
    data: &Data,
) -> Result<(), Error> {
    let custom_id = form.custom_id();
    if custom_id == "sug:new" {
        let answer = submitted(ctx, form, data).await;
        form.respond(&ctx.http, answer).await?;
        return Ok(());
    }
    let work = async {
        let (action, id) = custom_id
            .strip_prefix("sug:")
            .and_then(|r| r.split_once(':'))
            .unwrap_or(("", ""));
        let Ok(id) = id.parse::<u64>() else {
            return Answer::Notice("This form is no longer active.".into());
        };
        match action {
            "approve" => {
                let typed = Typed::from_form(&form);
                decide(ctx, form, data, id, Choice::Approve(Some(typed))).await
            }
            "reject" => {
                let reason = form.field("reason").trim();
                let reason = (!reason.is_empty()).then(|| reason.to_string());
                decide(ctx, form, data, id, Choice::Reject(reason)).await
            }
            _ => Answer::Notice("This form is no longer active.".into()),
        }
    };
    form.answer_in_time(&ctx.http, work).await?;
    Ok(())
}

/// A new suggestion: saved (within the limits), posted in the review channel if there is one.
async fn submitted(ctx: &serenity::Context, form: Incoming<'_>, data: &Data) -> Answer {
    let Some(guild) = form.guild_id() else {
        return Answer::Notice("Suggestions are made in a server.".into());
    };
    let title = form.field("title").trim().to_string();
    let text = form.field("text").trim().to_string();
    let why = form.field("why").trim().to_string();
    let echo = || {
        format!(
            "What you wrote:\n**{}**\n{}",
            escape_within(&title, 256),
            escape_within(&text, 1200)
        )
    };
    if title.is_empty() || text.is_empty() {
        return Answer::Notice(format!(
            "A suggestion needs a title and a text; nothing was saved.\n{}",
            echo()
        ));
    }
    let title_chars = title.chars().count();
    let text_chars = text.chars().count();
    if title_chars > MAX_TITLE_CHARS || text_chars > MAX_TEXT_CHARS || why.chars().count() > MAX_WHY
    {
        return Answer::Notice(format!(
            "The title may have at most {MAX_TITLE_CHARS} characters, the text {MAX_TEXT_CHARS} and the reason {MAX_WHY}; nothing was saved.\n{}",
            echo()
        ));
    }
    let suggestion = NewSuggestion {
        guild_id: guild.get(),
        author_id: form.user().id.get(),
        title: title.clone(),
        text: text.clone(),
        why: (!why.is_empty()).then_some(why.clone()),
        now: Utc::now(),
    };
    let saved = match data.collections.suggest(suggestion).await {
        Ok(s) => s,
        Err(CollectionError::Store(e @ StoreError::Limit { .. })) => {
            return Answer::Notice(format!("Not saved: {e}.\n{}", echo()));
        }
        Err(e) => {
            tracing::error!("saving a suggestion failed: {e}");
            return Answer::Notice(format!(
                "Sorry, I could not save your suggestion. Please try again in a moment.\n{}",
                echo()
            ));
        }
    };
    let settings = match data.collections.get(Some(guild.get())).await {
        Ok(c) => c.settings().clone(),
        Err(e) => {
            let _ = collection_unavailable(Some(guild.get()), &e);
            Default::default()
        }
    };
    if let Some(channel) = settings.review_channel {
        post_for_review(ctx, data, &saved, channel).await;
    }
    Answer::Notice(format!(
        "Thanks! Your suggestion (#{}) is waiting for a curator. I will tell you the outcome by DM if your DMs are open. (A member may have {MAX_PENDING_PER_MEMBER} suggestions waiting at a time.)",
        saved.id
    ))
}

/// Posts a new suggestion in the review channel and records the message, so a decision made
/// elsewhere can update it. A failure (a missing permission, a deleted channel) is logged: the
/// suggestion still waits in `/insights review`.
async fn post_for_review(ctx: &serenity::Context, data: &Data, s: &Suggestion, channel: u64) {
    let message = CreateMessage::new()
        .content("New suggestion for this server's insights (curators can decide):")
        .embed(suggestion_embed(s))
        .components(vec![CreateActionRow::Buttons(review_buttons(s.id))])
        .allowed_mentions(no_pings());
    match serenity::ChannelId::new(channel)
        .send_message(&ctx.http, message)
        .await
    {
        Ok(posted) => {
            let (guild, id, message_id) = (s.guild_id, s.id, posted.id.get());
            if let Err(e) = data
                .store
                .call(move |db| db.set_suggestion_review_message(guild, id, channel, message_id))
                .await
            {
                tracing::warn!(
                    guild,
                    suggestion = id,
                    "could not record the review message: {e}"
                );
            }
        }
        Err(e) => tracing::warn!(
            guild = s.guild_id,
            channel,
            suggestion = s.id,
            "could not post a suggestion in the review channel (it waits in /insights review): {e}"
        ),
    }
}

enum Choice {
    /// Approve as written, or as edited in the form.
    Approve(Option<Typed>),
    Reject(Option<String>),
}

/// A click on a review button (`sug:ok:<id>`, `sug:edit:<id>`, `sug:no:<id>`).
pub async fn on_button(
    ctx: &serenity::Context,
    click: Incoming<'_>,
    data: &Data,
) -> Result<(), Error> {
    let (action, id) = click
        .custom_id()
        .strip_prefix("sug:")
        .and_then(|r| r.split_once(':'))
        .unwrap_or(("", ""));
    let Ok(id) = id.parse::<u64>() else {
        click
            .respond(
                &ctx.http,
                Answer::Notice("This button is no longer active.".into()),
            )
            .await?;
        return Ok(());
    };
    let work = async {
        match action {
            "ok" => decide(ctx, click, data, id, Choice::Approve(None)).await,
            // The forms: checked for curator rights now, and again when submitted.
            "edit" | "no" => {
                let Some(guild) = click.guild_id() else {
                    return Answer::Notice("This works in a server.".into());
                };
                let collection = match data.collections.get(Some(guild.get())).await {
                    Ok(c) => c,
                    Err(e) => return Answer::Notice(collection_unavailable(Some(guild.get()), &e)),
                };
                if !click
                    .member()
                    .is_some_and(|m| is_curator(m, collection.settings()))
                {
                    return Answer::Notice(not_a_curator(collection.settings()));
                }
                let store = data.store.clone();
                let guild = guild.get();
                let found = store.call(move |db| db.suggestion(guild, id)).await;
                match found {
                    Ok(Some(s)) if s.status == SuggestionStatus::Pending => {
                        if action == "edit" {
                            let typed = Typed {
                                title: s.title.clone(),
                                text: s.text.clone(),
                                ..Typed::default()
                            };
                            Answer::Form(insight_form(
                                &format!("sug:approve:{id}"),
                                &format!("Edit & approve #{id}"),
                                &typed,
                            ))
                        } else {
                            Answer::Form(
                                CreateModal::new(
                                    format!("sug:reject:{id}"),
                                    format!("Reject #{id}"),
                                )
                                .components(vec![
                                    CreateActionRow::InputText(
                                        CreateInputText::new(
                                            InputTextStyle::Paragraph,
                                            "Reason, sent to the member (optional)",
                                            "reason",
                                        )
                                        .max_length(MAX_REASON as u16)
                                        .required(false),
                                    ),
                                ]),
                            )
                        }
                    }
                    Ok(Some(s)) => Answer::Update(decided_reply(&s, "It was already decided")),
                    Ok(None) => Answer::Notice("This suggestion no longer exists.".into()),
                    Err(e) => Answer::Notice(refusal(&CollectionError::Store(e))),
                }
            }
            _ => Answer::Notice("This button is no longer active.".into()),
        }
    };
    // A form must be the immediate answer; building one is quick (one read of the database).
    click.answer_in_time(&ctx.http, work).await?;
    Ok(())
}

/// Approves or rejects suggestion `id` for the clicking curator, then updates the message the
/// click came from (the review channel post, or the curator's own review with the next
/// suggestion), the review channel post if the decision was made elsewhere, and tells the
/// suggester by DM.
async fn decide(
    ctx: &serenity::Context,
    incoming: Incoming<'_>,
    data: &Data,
    id: u64,
    choice: Choice,
) -> Answer {
    let Some(guild) = incoming.guild_id().map(|g| g.get()) else {
        return Answer::Notice("This works in a server.".into());
    };
    let collection = match data.collections.get(Some(guild)).await {
        Ok(c) => c,
        Err(e) => return Answer::Notice(collection_unavailable(Some(guild), &e)),
    };
    let Some(member) = incoming.member() else {
        return Answer::Notice(not_a_curator(collection.settings()));
    };
    if !is_curator(member, collection.settings()) {
        return Answer::Notice(not_a_curator(collection.settings()));
    }
    let curator = incoming.user().id.get();
    let store = data.store.clone();
    let suggestion = match store.call(move |db| db.suggestion(guild, id)).await {
        Ok(Some(s)) => s,
        Ok(None) => return Answer::Notice("This suggestion no longer exists.".into()),
        Err(e) => return Answer::Notice(refusal(&CollectionError::Store(e))),
    };
    if suggestion.status != SuggestionStatus::Pending {
        return answer_on(
            incoming,
            decided_reply(&suggestion, "It was already decided"),
        );
    }
    let now = Utc::now();
    let decided = match choice {
        Choice::Approve(typed) => {
            let edited = typed.is_some();
            let typed = typed.unwrap_or_else(|| Typed {
                title: suggestion.title.clone(),
                text: suggestion.text.clone(),
                ..Typed::default()
            });
            let insight_id = slug_from_title(typed.title.trim(), &|taken: &str| {
                collection.origin(taken).is_some() || data.collections.is_shipped_id(taken)
            });
            let insight = match checked(&insight_id, &typed, data) {
                Ok(insight) => insight,
                Err(problems) => {
                    let how = if edited {
                        "Fix the form and submit it again (press Edit & approve)"
                    } else {
                        "Use Edit & approve to fix it"
                    };
                    return Answer::Notice(format!(
                        "Not approved; the insight would not be valid:\n{problems}\n{how}."
                    ));
                }
            };
            let draft = match data.collections.prepare(vec![insight]).await {
                Ok(mut drafts) => drafts.remove(0),
                Err(e) => return Answer::Notice(refusal(&e)),
            };
            data.collections
                .approve(guild, id, draft, curator, suggestion.author_id, now)
                .await
        }
        Choice::Reject(reason) => {
            data.collections
                .reject(guild, id, reason, curator, now)
                .await
        }
    };
    let decided = match decided {
        Ok(Some(s)) => s,
        // Decided by someone else between the read and the write.
        Ok(None) => {
            let latest = store
                .call(move |db| db.suggestion(guild, id))
                .await
                .ok()
                .flatten()
                .unwrap_or(suggestion);
            return answer_on(incoming, decided_reply(&latest, "It was already decided"));
        }
        Err(e) => return Answer::Notice(refusal(&e)),
    };
    tell_suggester(ctx, &decided).await;
    let outcome = outcome_line(&decided);
    // The review channel post, when the decision came from somewhere else.
    if let Some(posted) = decided.review_message {
        let clicked = incoming.message().map(|m| m.id.get());
        if clicked != Some(posted.message_id) {
            let edit = EditMessage::new()
                .content(render::truncate(&outcome, render::MAX_CONTENT))
                .embed(suggestion_embed(&decided))
                .components(Vec::new())
                .allowed_mentions(no_pings());
            if let Err(e) = serenity::ChannelId::new(posted.channel_id)
                .edit_message(&ctx.http, posted.message_id, edit)
                .await
            {
                tracing::warn!(
                    guild,
                    suggestion = id,
                    "could not update the review post: {e}"
                );
            }
        }
    }
    let ephemeral_review = incoming.message().is_some_and(|m| {
        m.flags
            .is_some_and(|f| f.contains(serenity::MessageFlags::EPHEMERAL))
    });
    if ephemeral_review {
        // A curator's own review: on to the next suggestion.
        match next_for_review(data, guild, Some(outcome.clone())).await {
            Ok(next) => Answer::Update(next),
            Err(_) => Answer::Update(decided_reply(&decided, &outcome)),
        }
    } else {
        answer_on(incoming, decided_reply(&decided, &outcome))
    }
}

/// Updates the message the click came from, or answers with a notice when there is none.
fn answer_on(incoming: Incoming<'_>, reply: Reply) -> Answer {
    if incoming.message().is_some() {
        Answer::Update(reply)
    } else {
        Answer::Message(reply, true)
    }
}

fn outcome_line(s: &Suggestion) -> String {
    let by = s
        .decided_by
        .map(|u| serenity::UserId::new(u).mention().to_string())
        .unwrap_or_else(|| "a curator".into());
    match s.status {
        SuggestionStatus::Approved => format!(
            "Suggestion #{} approved by {by} as `{}`.",
            s.id,
            s.insight_id.as_deref().unwrap_or("?")
        ),
        SuggestionStatus::Rejected => match s.reason.as_deref() {
            Some(reason) => format!(
                "Suggestion #{} rejected by {by}: {}",
                s.id,
                escape_within(reason, 500)
            ),
            None => format!("Suggestion #{} rejected by {by}.", s.id),
        },
        SuggestionStatus::Pending => format!("Suggestion #{} is waiting for review.", s.id),
    }
}

/// A decided suggestion, without buttons.
fn decided_reply(s: &Suggestion, headline: &str) -> Reply {
    let text = if headline == "It was already decided" {
        format!("{headline}: {}", outcome_line(s))
    } else {
        headline.to_string()
    };
    Reply {
        content: Some(text),
        embeds: vec![suggestion_embed(s)],
        buttons: Vec::new(),
    }
}

/// DMs the suggester the outcome. A closed DM (Discord's 50007) or any other failure is logged
/// and that is all: never a retry, never a message anywhere else.
async fn tell_suggester(ctx: &serenity::Context, s: &Suggestion) {
    let server = ctx
        .cache
        .guild(s.guild_id)
        .map(|g| g.name.clone())
        .unwrap_or_else(|| "the server".into());
    let server = escape_within(&server, 100);
    let title = escape_within(&s.title, 200);
    let text = match s.status {
        SuggestionStatus::Approved => format!(
            "Your suggestion **{title}** was approved in {server}: it is now one of the server's insights. Thank you!"
        ),
        SuggestionStatus::Rejected => match s.reason.as_deref() {
            Some(reason) => format!(
                "Your suggestion **{title}** was not taken in {server}. The curator's reason: {}",
                escape_within(reason, MAX_REASON)
            ),
            None => format!("Your suggestion **{title}** was not taken in {server}."),
        },
        SuggestionStatus::Pending => return,
    };
    let user = serenity::UserId::new(s.author_id);
    let sent = async {
        let channel = user.create_dm_channel(&ctx.http).await?;
        channel
            .send_message(
                &ctx.http,
                CreateMessage::new()
                    .content(render::truncate(&text, render::MAX_CONTENT))
                    .allowed_mentions(no_pings()),
            )
            .await
    }
    .await;
    if let Err(e) = sent {
        tracing::info!(
            user = s.author_id,
            suggestion = s.id,
            "the suggester was not told by DM (DMs closed?): {e}"
        );
    }
}
