//! What every curator command shares, whichever file it lives in (`/insights` in
//! [`super::curation`], its stats and gaps in [`super::usage`], the review of suggestions in
//! [`super::suggestions`]): the server's collection for a curator, checked when the command runs
//! ([`as_curator`]); the insight form ([`insight_form`], [`Typed`], [`checked`]); and the words
//! for a refused change ([`refusal`]). In a module of its own so that those files depend on it
//! and not on each other: `/insights` lists `usage`'s subcommands, and `usage` needs the form.

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use serenity::{CreateActionRow, CreateInputText, CreateModal, InputTextStyle};

use super::access::{is_curator, not_a_curator, Incoming};
use super::commands::{collection_unavailable, ephemeral};
use super::render::{self, escape_within};
use super::{Context, Data, Error};
use crate::collections::{CollectionError, ServerCollection};
use crate::insights::{
    parse_asks, parse_topics, validate, Fields, Insight, MAX_TEXT_CHARS, MAX_TITLE_CHARS,
};
use crate::store::StoreError;

/// Discord: a text input holds at most 4,000 characters.
pub(super) const MAX_INPUT: usize = 4000;

/// A form as typed, kept so a refused or expired one can be filled in again.
#[derive(Debug, Clone, Default)]
pub struct Typed {
    pub title: String,
    pub text: String,
    pub topics: String,
    pub asks: String,
}

impl Typed {
    pub(super) fn from_form(form: &Incoming<'_>) -> Typed {
        Typed {
            title: form.field("title").to_string(),
            text: form.field("text").to_string(),
            topics: form.field("topics").to_string(),
            asks: form.field("asks").to_string(),
        }
    }

    pub(super) fn from_insight(insight: &Insight) -> Typed {
        Typed {
            title: insight.title.clone(),
            text: insight.text.clone(),
            topics: insight.topics.join(", "),
            asks: insight.asks.join("\n"),
        }
    }
}

/// The server's collection for a command, or `None` after telling the member why not.
pub(super) async fn server(ctx: Context<'_>) -> Result<Option<Arc<ServerCollection>>, Error> {
    let Some(guild) = ctx.guild_id() else {
        ctx.send(ephemeral("This works in a server, not in DMs."))
            .await?;
        return Ok(None);
    };
    match ctx.data().collections.get(Some(guild.get())).await {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            ctx.send(ephemeral(collection_unavailable(Some(guild.get()), &e)))
                .await?;
            Ok(None)
        }
    }
}

/// [`server`], for curators only.
pub(super) async fn as_curator(ctx: Context<'_>) -> Result<Option<Arc<ServerCollection>>, Error> {
    let Some(collection) = server(ctx).await? else {
        return Ok(None);
    };
    let curator = ctx
        .author_member()
        .await
        .is_some_and(|m| is_curator(&m, collection.settings()));
    if !curator {
        ctx.send(ephemeral(not_a_curator(collection.settings())))
            .await?;
        return Ok(None);
    }
    Ok(Some(collection))
}

/// A refused change, in words for the curator. Limits and shipped ids are theirs to act on;
/// anything else is logged and reported as a failure to retry.
pub(super) fn refusal(error: &CollectionError) -> String {
    match error {
        CollectionError::Store(StoreError::Limit { .. })
        | CollectionError::ShippedId(_)
        | CollectionError::NotShipped(_)
        | CollectionError::UnknownPack(_) => {
            let text = error.to_string();
            let mut chars = text.chars();
            let first = chars.next().map(|c| c.to_uppercase().to_string());
            format!("{}{}.", first.unwrap_or_default(), chars.as_str())
        }
        other => {
            tracing::error!("a change to a server's collection failed: {other}");
            "Sorry, I could not save that (nothing was changed). Please try again in a moment."
                .into()
        }
    }
}

fn input(id: &str, label: &str, style: InputTextStyle, max: usize, value: &str) -> CreateActionRow {
    let mut input = CreateInputText::new(style, label, id).max_length(max as u16);
    if !value.is_empty() {
        input = input.value(render::truncate(value, max));
    }
    CreateActionRow::InputText(input)
}

/// The insight form: title, text, topics, example questions.
pub fn insight_form(custom_id: &str, heading: &str, typed: &Typed) -> CreateModal {
    let topics = CreateInputText::new(
        InputTextStyle::Short,
        "Topics, comma-separated (optional)",
        "topics",
    )
    .max_length(400)
    .required(false)
    .placeholder("delegation, new-manager");
    let topics = if typed.topics.is_empty() {
        topics
    } else {
        topics.value(render::truncate(&typed.topics, 400))
    };
    let asks = CreateInputText::new(
        InputTextStyle::Paragraph,
        "Example questions, one per line (optional)",
        "asks",
    )
    .max_length(MAX_INPUT as u16)
    .required(false)
    .placeholder("How do I stop micromanaging?");
    let asks = if typed.asks.is_empty() {
        asks
    } else {
        asks.value(render::truncate(&typed.asks, MAX_INPUT))
    };
    CreateModal::new(custom_id, render::truncate(heading, 45)).components(vec![
        input(
            "title",
            "Title",
            InputTextStyle::Short,
            MAX_TITLE_CHARS,
            &typed.title,
        ),
        input(
            "text",
            "Text",
            InputTextStyle::Paragraph,
            MAX_TEXT_CHARS.min(MAX_INPUT),
            &typed.text,
        ),
        CreateActionRow::InputText(topics),
        CreateActionRow::InputText(asks),
    ])
}

/// What was typed in a form, shown back when it cannot be kept for a button.
pub(super) fn typed_echo(typed: &Typed) -> String {
    format!(
        "**{}**\n{}",
        escape_within(&typed.title, 256),
        escape_within(&typed.text, 1400)
    )
}

/// The insight a form describes, checked by the data files' rules, or the problems as lines.
pub(super) fn checked(id: &str, typed: &Typed, data: &Data) -> Result<Insight, String> {
    let topics = parse_topics(&typed.topics);
    let asks = parse_asks(&typed.asks);
    let fields = Fields {
        id: Some(id),
        title: Some(&typed.title),
        text: Some(&typed.text),
        topics: (!topics.is_empty()).then_some(topics.as_slice()),
        asks: Some(asks.as_slice()),
        source: None,
    };
    validate(fields, &data.collections.rules()).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("• {}", escape_within(&p.reason, 300)))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
