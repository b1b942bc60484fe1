//! `/insights`: a server's own collection, kept by its curators — add, edit, remove, show, list,
//! import, export, hide and unhide shipped insights, turn packs of them on and off, choose the
//! source, name the curator role and the review channel. (`/insights review` and `/suggest` are in [`super::suggestions`].)
//!
//! Every change goes through [`Collections`](crate::collections::Collections), which writes the
//! database and then puts the server's new collection in place: the next `/advice` in the server
//! sees it. Forms (modals) and buttons are answered in `on_form` / `on_button` here; their custom
//! ids carry what they act on (`ins:edit:<id>`, `ins:rm:<id>`, `ins:list:<page>`,
//! `ins:packoff:<pack>`), so they work
//! after a restart, except the two that hold a draft in memory while a curator decides (Save
//! anyway after a near-duplicate warning, Import after a preview): those expire after
//! [`super::held::HOLD_FOR`] or a restart ([`super::held`]), and say so, with the typed text
//! shown so nothing is lost.
//!
//! What a curator typed is checked by the same rules as the data files
//! ([`crate::insights::validate`]); a refused form keeps what was typed behind a "Fix it" button
//! that reopens the form filled in.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use poise::serenity_prelude as serenity;
use serenity::{
    ButtonStyle, CreateAttachment, CreateButton, CreateEmbed, CreateInteractionResponse,
    CreateModal,
};

use super::access::{is_curator, manages_server, not_a_curator, Answer, Incoming};
use super::commands::{answer_in_time, collection_unavailable, ephemeral};
use super::curating::{as_curator, checked, insight_form, refusal, server, typed_echo, Typed};
use super::held::{Held, HoldRefused, BUSY};
use super::render::{self, escape_within, insight_embed, no_pings, Reply};
use super::{Context, Data, Error};
use crate::collections::{
    CollectionError, Draft, Origin, ServerCollection, MAX_OWN_INSIGHTS, NEAR_DUPLICATE,
};
use crate::insights::library::Problem;
use crate::insights::{export_toml, parse_import, slug_from_title, Insight, MAX_IMPORT_BYTES};
use crate::store::InsightSource;

/// Insights per page of `/insights list`.
const PER_PAGE: usize = 10;
/// How long downloading an import may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long reading an import may take, its wait for a turn included (the largest hostile
/// file is read in well under a second: see `benches/import.rs`).
const READ_LIMIT: Duration = Duration::from_secs(10);
/// How long embedding an import may take, its wait for a turn included: 1,000 insights with 25
/// example questions each are 26,000 documents, about a minute and a half on 2 cores. The
/// click's interaction token lives 15 minutes.
const EMBED_LIMIT: Duration = Duration::from_secs(10 * 60);
/// The longest line of `import-errors.txt`: a problem quotes at most 60 characters of a title,
/// so only a file name or an odd TOML message comes near it.
const MAX_ERROR_LINE: usize = 500;
// ---------------------------------------------------------------------------------------------
// Shared steps

/// A button or form's server collection, for curators only: checked at click time, since anyone
/// who sees a message can press its buttons.
async fn clicked_by_curator(
    incoming: Incoming<'_>,
    data: &Data,
) -> Result<Arc<ServerCollection>, Answer> {
    let Some(guild) = incoming.guild_id() else {
        return Err(Answer::Notice("This works in a server, not in DMs.".into()));
    };
    let collection = data
        .collections
        .get(Some(guild.get()))
        .await
        .map_err(|e| Answer::Notice(collection_unavailable(Some(guild.get()), &e)))?;
    match incoming.member() {
        Some(member) if is_curator(member, collection.settings()) => Ok(collection),
        _ => Err(Answer::Notice(not_a_curator(collection.settings()))),
    }
}

/// Sends a modal as the command's answer (poise has no builder for a bare modal).
async fn open_form(ctx: Context<'_>, modal: CreateModal) -> Result<(), Error> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    app.interaction
        .create_response(ctx.http(), CreateInteractionResponse::Modal(modal))
        .await?;
    app.has_sent_initial_response
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

fn button(id: String, label: &str, style: ButtonStyle) -> CreateButton {
    CreateButton::new(id).label(label).style(style)
}

fn notice_with(text: String, embeds: Vec<CreateEmbed>, buttons: Vec<CreateButton>) -> Reply {
    Reply {
        content: Some(text),
        embeds,
        buttons,
    }
}

/// What a curator sees of an insight they act on: the insight as members will see it, with its
/// id, topics and example questions in fields. Those fields get what is left of Discord's
/// 6,000 characters a message after the insight itself (title, text and source can take 4,900 of
/// them), topics first: a long insight shows fewer example questions, never a message Discord
/// refuses.
fn preview(insight: &Insight) -> CreateEmbed {
    let mut embed = insight_embed(insight);
    embed = embed.field("Id", format!("`{}`", insight.id), true);
    let mut left = render::MAX_EMBEDS_TOTAL.saturating_sub(render::embed_chars(&embed));
    let mut add = |embed: CreateEmbed, name: &str, value: String, inline: bool| {
        let room = left.saturating_sub(name.chars().count());
        if room < 2 || value.is_empty() {
            return embed;
        }
        let value = render::truncate(&value, room.min(render::MAX_FIELD_VALUE));
        left -= name.chars().count() + value.chars().count();
        embed.field(name, value, inline)
    };
    let topics = escape_within(&insight.topics.join(", "), render::MAX_FIELD_VALUE);
    embed = add(embed, "Topics", topics, true);
    let asks = insight
        .asks
        .iter()
        .map(|a| format!("• {}", escape_within(a, 200)))
        .collect::<Vec<_>>()
        .join("\n");
    add(embed, "Example questions", asks, false)
}

// ---------------------------------------------------------------------------------------------
// The command group

/// This server's own insights: add, import, review and curate them.
#[poise::command(
    slash_command,
    subcommands(
        "add",
        "edit",
        "remove",
        "show",
        "list",
        "import",
        "export",
        "hide",
        "unhide",
        "packs",
        "source",
        "curators",
        "review_channel",
        "super::suggestions::review",
        "super::usage::stats",
        "super::usage::gaps"
    ),
    subcommand_required,
    guild_only,
    install_context = "Guild",
    interaction_context = "Guild"
)]
pub async fn insights(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Ids this server sees, matching what has been typed (for `show`, `edit`, `remove`, `hide`).
async fn autocomplete_id(ctx: Context<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let typed = partial.trim().to_lowercase();
    let guild = ctx.guild_id().map(|g| g.get());
    let Ok(collection) = ctx.data().collections.get(guild).await else {
        return serenity::CreateAutocompleteResponse::new();
    };
    let mut ids: Vec<(bool, String)> = collection
        .library()
        .insights()
        .iter()
        .map(|i| i.id.clone())
        .chain(collection.settings().hidden.iter().cloned())
        .filter(|id| id.contains(&typed))
        .map(|id| (!id.starts_with(&typed), id))
        .collect();
    ids.sort();
    ids.dedup();
    let choices = ids
        .into_iter()
        .take(25)
        .map(|(_, id)| serenity::AutocompleteChoice::new(id.clone(), id))
        .collect();
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// Add an insight to this server (curators): opens a form.
#[poise::command(slash_command)]
pub async fn add(ctx: Context<'_>) -> Result<(), Error> {
    if as_curator(ctx).await?.is_none() {
        return Ok(());
    }
    open_form(
        ctx,
        insight_form("ins:add", "New insight", &Typed::default()),
    )
    .await
}

/// Edit one of this server's insights (curators): opens the form, filled in.
#[poise::command(slash_command)]
pub async fn edit(
    ctx: Context<'_>,
    #[description = "The insight's id (see /insights list)"]
    #[autocomplete = "autocomplete_id"]
    id: String,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let id = id.trim().to_lowercase();
    match (collection.origin(&id), collection.library().get(&id)) {
        (Some(Origin::Own), Some(insight)) => {
            let form_id = format!("ins:edit:{id}");
            let heading = format!("Edit {id}");
            open_form(
                ctx,
                insight_form(&form_id, &heading, &Typed::from_insight(insight)),
            )
            .await
        }
        (Some(Origin::Shipped), _) => {
            ctx.send(ephemeral(format!(
                "`{id}` comes with the bot and cannot be edited here. Hide it with `/insights hide id:{id}` and add your own version with `/insights add`."
            )))
            .await?;
            Ok(())
        }
        _ => {
            ctx.send(ephemeral(unknown_id(&id))).await?;
            Ok(())
        }
    }
}

fn unknown_id(id: &str) -> String {
    format!(
        "This server has no insight `{}`. `/insights list` shows every id.",
        escape_within(id, 80)
    )
}

/// Remove one of this server's insights (curators), after a confirmation.
#[poise::command(slash_command)]
pub async fn remove(
    ctx: Context<'_>,
    #[description = "The insight's id (see /insights list)"]
    #[autocomplete = "autocomplete_id"]
    id: String,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let id = id.trim().to_lowercase();
    let reply = match (collection.origin(&id), collection.library().get(&id)) {
        (Some(Origin::Own), Some(insight)) => notice_with(
            format!("Remove `{id}` from this server? Members will no longer get it."),
            vec![preview(insight)],
            vec![
                button(format!("ins:rm:{id}"), "Remove", ButtonStyle::Danger),
                button("ins:keep".into(), "Keep it", ButtonStyle::Secondary),
            ],
        )
        .to_poise(true),
        (Some(Origin::Shipped), _) => ephemeral(format!(
            "`{id}` comes with the bot and cannot be removed; `/insights hide id:{id}` stops this server from using it."
        )),
        _ => ephemeral(unknown_id(&id)),
    };
    ctx.send(reply).await?;
    Ok(())
}

/// Show one insight: its text, topics, example questions, origin and how often it was shown.
#[poise::command(slash_command)]
pub async fn show(
    ctx: Context<'_>,
    #[description = "The insight's id (see /insights list)"]
    #[autocomplete = "autocomplete_id"]
    id: String,
) -> Result<(), Error> {
    let Some(collection) = server(ctx).await? else {
        return Ok(());
    };
    let id = id.trim().to_lowercase();
    let guild = collection.guild_id().unwrap_or_default();
    let shown = ctx
        .data()
        .store
        .call(move |db| db.shown_counts(guild))
        .await
        .unwrap_or_default();
    let times = shown.get(&id).copied().unwrap_or(0);
    let origin = match (collection.origin(&id), collection.library().get(&id)) {
        (Some(Origin::Own), _) => "this server's own".to_string(),
        (
            Some(Origin::Shipped),
            Some(Insight {
                pack: Some(pack), ..
            }),
        ) => {
            format!("comes with the bot, pack `{pack}`")
        }
        (Some(Origin::Shipped), _) => "comes with the bot".to_string(),
        (None, _) => String::new(),
    };
    let reply = match collection.library().get(&id) {
        Some(insight) => notice_with(
            format!("`{id}` · {origin} · shown {times} {}", plural(times, "time", "times")),
            vec![preview(insight)],
            Vec::new(),
        )
        .to_poise(true),
        None if collection.settings().hidden.contains(&id) => ephemeral(format!(
            "`{id}` comes with the bot and is hidden in this server; `/insights unhide id:{id}` brings it back."
        )),
        None => match ctx.data().collections.shipped().library().get(&id) {
            Some(Insight { pack: Some(pack), .. })
                if collection.settings().packs_off.iter().any(|p| p == pack) =>
            {
                ephemeral(format!(
                    "`{id}` comes with the bot in the pack `{pack}`, which is off in this server; `/insights packs` turns it on."
                ))
            }
            _ => ephemeral(unknown_id(&id)),
        },
    };
    ctx.send(reply).await?;
    Ok(())
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Every insight this server sees, a page at a time, with where each comes from.
#[poise::command(slash_command)]
pub async fn list(ctx: Context<'_>) -> Result<(), Error> {
    let Some(collection) = server(ctx).await? else {
        return Ok(());
    };
    let reply = list_page(ctx.data(), &collection, 0).await;
    ctx.send(reply.to_poise(true)).await?;
    Ok(())
}

async fn list_page(data: &Data, collection: &ServerCollection, page: usize) -> Reply {
    let guild = collection.guild_id().unwrap_or_default();
    let shown = data
        .store
        .call(move |db| db.shown_counts(guild))
        .await
        .unwrap_or_default();
    // Own insights first (what curators look after), then shipped ones, then hidden ones.
    let own = collection.own();
    let shipped_count = collection.library().len() - own.len();
    let shipped = &collection.library().insights()[..shipped_count];
    let hidden = &collection.settings().hidden;
    // A shipped insight's origin names its pack (an operator's INSIGHTS_PATH insight has none).
    let origin = |insight: &Insight| match insight.pack {
        Some(pack) => format!("pack {pack}"),
        None => "shipped".to_string(),
    };
    let mut rows: Vec<(String, String, String)> = own
        .iter()
        .map(|i| (i.id.clone(), i.title.clone(), "this server".to_string()))
        .chain(
            shipped
                .iter()
                .map(|i| (i.id.clone(), i.title.clone(), origin(i))),
        )
        .collect();
    for id in hidden {
        let found = data.collections.shipped().library().get(id);
        let title = found.map_or_else(String::new, |i| i.title.clone());
        let origin = found.map_or_else(|| "shipped".to_string(), origin);
        rows.push((id.clone(), title, format!("{origin}, hidden")));
    }
    let pages = rows.len().div_ceil(PER_PAGE).max(1);
    let page = page.min(pages - 1);
    let lines: Vec<String> = rows
        .iter()
        .skip(page * PER_PAGE)
        .take(PER_PAGE)
        .map(|(id, title, origin)| {
            let times = shown.get(id).copied().unwrap_or(0);
            format!(
                "`{id}` — {} · {origin} · shown {times} {}",
                escape_within(title, 120),
                plural(times, "time", "times")
            )
        })
        .collect();
    let description = if lines.is_empty() {
        "No insights. A curator can add one with `/insights add`, or switch back to the shipped ones with `/insights source which:all`.".to_string()
    } else {
        lines.join("\n")
    };
    let packs_off = collection.settings().packs_off.len();
    let source = match collection.settings().source {
        InsightSource::All if packs_off > 0 => {
            format!(
                "shipped and own, {packs_off} {} off",
                plural(packs_off as u64, "pack", "packs")
            )
        }
        InsightSource::All => "shipped and own".to_string(),
        InsightSource::Ours => "own only".to_string(),
    };
    let embed = CreateEmbed::new()
        .title(format!(
            "This server's insights: {} ({} own, {source})",
            collection.library().len(),
            own.len()
        ))
        .description(render::truncate(
            &description,
            render::MAX_EMBED_DESCRIPTION,
        ))
        .footer(serenity::CreateEmbedFooter::new(format!(
            "Page {} of {pages} · /insights show id:<id> for one",
            page + 1
        )));
    let mut buttons = Vec::new();
    if pages > 1 {
        buttons.push(
            button(
                format!("ins:list:{}", page.saturating_sub(1)),
                "Previous",
                ButtonStyle::Secondary,
            )
            .disabled(page == 0),
        );
        buttons.push(
            button(
                format!("ins:list:{}", page + 1),
                "Next",
                ButtonStyle::Secondary,
            )
            .disabled(page + 1 >= pages),
        );
    }
    Reply {
        content: None,
        embeds: vec![embed],
        buttons,
    }
}

/// Import insights from a file (curators): the data-file TOML, or text/Markdown, at most 1 MiB.
#[poise::command(slash_command)]
pub async fn import(
    ctx: Context<'_>,
    #[description = "A .toml, .txt or .md file of insights (at most 1 MiB)"]
    file: serenity::Attachment,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    if file.size as usize > MAX_IMPORT_BYTES {
        ctx.send(ephemeral(format!(
            "`{}` is {:.1} MiB; an import may be at most 1 MiB. Split it into smaller files.",
            escape_within(&file.filename, 100),
            f64::from(file.size) / (1024.0 * 1024.0)
        )))
        .await?;
        return Ok(());
    }
    let data = ctx.data();
    let user = ctx.author().id.get();
    let guild = collection.guild_id().unwrap_or_default();
    let api_host = data.api_host.clone();
    let work = async {
        let bytes = match download(&file.url, api_host.as_deref()).await {
            Ok(bytes) => bytes,
            Err(reason) => {
                tracing::warn!("downloading an import failed: {reason}");
                return (
                    Reply {
                        content: Some(format!(
                            "I could not download `{}` ({reason}). Nothing was imported; please try again.",
                            escape_within(&file.filename, 100)
                        )),
                        ..Reply::default()
                    },
                    None,
                );
            }
        };
        let rules = data.collections.rules();
        let name = file.filename.clone();
        let parse = move || parse_import(&name, &bytes, &rules);
        match data.heavy.run(guild, READ_LIMIT, parse).await {
            Ok(parsed) => import_preview(data, &collection, user, &file.filename, parsed),
            Err(refused) => (plain(&refused.message("reading the file")), None),
        }
    };
    let (reply, errors) = answer_in_time(ctx, true, work).await?;
    let mut message = reply.to_poise(true);
    if let Some(errors) = errors {
        message = message.attachment(CreateAttachment::bytes(errors, "import-errors.txt"));
    }
    ctx.send(message).await?;
    Ok(())
}

/// Where attachments are downloaded from: Discord's CDN hosts, over HTTPS.
const ATTACHMENT_HOSTS: [&str; 3] = [
    "cdn.discordapp.com",
    "media.discordapp.net",
    "cdn.discord.com",
];

/// Whether an import may be downloaded from `url`: HTTPS to one of [`ATTACHMENT_HOSTS`], or to
/// `api_host` (the configured `DISCORD_API_BASE`'s host: a test's fake Discord, or a proxy),
/// which may be plain HTTP only on this machine. Discord supplies the URL; this keeps a forged
/// one (or a redirect) from making the bot fetch anything else.
fn download_allowed(url: &reqwest::Url, api_host: Option<&str>) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    let ours = api_host == Some(host);
    let secure = url.scheme() == "https" || (url.scheme() == "http" && local && ours);
    if !secure {
        return Err("not an HTTPS address".into());
    }
    if !ATTACHMENT_HOSTS.contains(&host) && !ours {
        return Err("not an address of Discord's file servers".into());
    }
    Ok(())
}

/// Downloads an attachment (see [`download_allowed`]), following a redirect only to another
/// allowed address, at most [`MAX_IMPORT_BYTES`], within [`DOWNLOAD_TIMEOUT`].
async fn download(url: &str, api_host: Option<&str>) -> Result<Vec<u8>, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    download_allowed(&parsed, api_host)?;
    let redirect_host = api_host.map(str::to_string);
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 3 {
            attempt.error("too many redirects")
        } else if download_allowed(attempt.url(), redirect_host.as_deref()).is_err() {
            attempt.error("a redirect away from Discord's file servers")
        } else {
            attempt.follow()
        }
    });
    let client = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .redirect(policy)
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.without_url().to_string())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err("the file is over 1 MiB".into());
        }
    }
    Ok(bytes)
}

/// Checks an uploaded file and says what importing it would do, holding it for the Import
/// button; or lists every problem (with an attached text file when they do not fit a message).
fn import_preview(
    data: &Data,
    collection: &ServerCollection,
    user: u64,
    file_name: &str,
    parsed: Result<Vec<Insight>, Vec<Problem>>,
) -> (Reply, Option<Vec<u8>>) {
    let shown_name = escape_within(file_name, 100);
    let insights = match parsed {
        Ok(insights) => insights,
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("line {}: {}", p.line, p.reason))
                .collect();
            let head = format!(
                "`{shown_name}` has {} {}; nothing was imported. Fix {} and import the file again:\n",
                problems.len(),
                if problems.len() == 1 { "problem" } else { "problems" },
                if problems.len() == 1 { "it" } else { "them" },
            );
            let listed: Vec<String> = lines
                .iter()
                .map(|l| format!("• {}", escape_within(l, 300)))
                .collect();
            let full = format!("{head}{}", listed.join("\n"));
            if full.chars().count() <= render::MAX_CONTENT {
                return (notice_with(full, Vec::new(), Vec::new()), None);
            }
            let mut shown = head;
            let mut count = 0;
            for line in &listed {
                if shown.chars().count() + line.chars().count() + 80 > render::MAX_CONTENT {
                    break;
                }
                shown.push_str(line);
                shown.push('\n');
                count += 1;
            }
            shown.push_str(&format!(
                "…and {} more: every problem is in the attached `import-errors.txt`.",
                lines.len() - count
            ));
            // The attachment is bounded too: at most MAX_LISTED_PROBLEMS lines (parse_import's
            // last says when there were more), each within MAX_ERROR_LINE characters.
            let bounded: Vec<String> = lines
                .iter()
                .map(|l| render::truncate(l, MAX_ERROR_LINE))
                .collect();
            let file = format!(
                "{}\n\n{}\n",
                render::truncate(file_name, 200),
                bounded.join("\n")
            );
            return (
                notice_with(shown, Vec::new(), Vec::new()),
                Some(file.into_bytes()),
            );
        }
    };
    let own = collection.own();
    let replacing: Vec<&str> = insights
        .iter()
        .filter(|i| own.iter().any(|o| o.id == i.id))
        .map(|i| i.id.as_str())
        .collect();
    let new = insights.len() - replacing.len();
    let after = own.len() + new;
    if after > MAX_OWN_INSIGHTS {
        return (
            notice_with(
                format!(
                    "`{shown_name}` would bring this server to {after} insights of its own; the limit is {MAX_OWN_INSIGHTS}. Nothing was imported. Remove some with `/insights remove`, or import fewer."
                ),
                Vec::new(),
                Vec::new(),
            ),
            None,
        );
    }
    let guild = collection.guild_id().unwrap_or_default();
    let Ok(token) = data.pending.hold(
        guild,
        user,
        Held::Import {
            insights: insights.clone(),
            file: file_name.to_string(),
        },
    ) else {
        return (
            plain(&format!(
                "`{shown_name}` is fine, but {BUSY} Nothing was imported."
            )),
            None,
        );
    };
    let mut text = format!(
        "`{shown_name}`: **{new} new**, **{} would replace** existing ids.",
        replacing.len()
    );
    if !replacing.is_empty() {
        let ids: Vec<String> = replacing
            .iter()
            .take(20)
            .map(|id| format!("`{id}`"))
            .collect();
        text.push_str(&format!(
            "\nReplaced: {}{}",
            ids.join(", "),
            if replacing.len() > 20 { ", …" } else { "" }
        ));
    }
    let sample: Vec<String> = insights
        .iter()
        .take(10)
        .map(|i| format!("• `{}` — {}", i.id, escape_within(&i.title, 100)))
        .collect();
    text.push_str(&format!(
        "\n{}{}\nImport them? (This offer stands for 15 minutes.)",
        sample.join("\n"),
        if insights.len() > 10 { "\n• …" } else { "" }
    ));
    (
        notice_with(
            text,
            Vec::new(),
            vec![
                button(
                    format!("ins:import:{token}"),
                    "Import",
                    ButtonStyle::Primary,
                ),
                button(
                    format!("ins:cancel:{token}"),
                    "Cancel",
                    ButtonStyle::Secondary,
                ),
            ],
        ),
        None,
    )
}

/// This server's own insights as a data file (curators); `/insights import` reads it back.
#[poise::command(slash_command)]
pub async fn export(ctx: Context<'_>) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let own = collection.own();
    if own.is_empty() {
        ctx.send(ephemeral(
            "This server has no insights of its own yet: nothing to export. Add some with `/insights add` or `/insights import`.",
        ))
        .await?;
        return Ok(());
    }
    let toml = export_toml(own);
    let name = format!(
        "insights-{}.toml",
        collection.guild_id().unwrap_or_default()
    );
    let reply = poise::CreateReply::default()
        .content(format!(
            "This server's {} own {} in the data-file format. `/insights import` reads this file back.",
            own.len(),
            if own.len() == 1 { "insight" } else { "insights" }
        ))
        .attachment(CreateAttachment::bytes(toml.into_bytes(), name))
        .ephemeral(true)
        .allowed_mentions(no_pings());
    ctx.send(reply).await?;
    Ok(())
}

/// Hide a shipped insight in this server (curators).
#[poise::command(slash_command)]
pub async fn hide(
    ctx: Context<'_>,
    #[description = "The shipped insight's id (see /insights list)"]
    #[autocomplete = "autocomplete_id"]
    id: String,
) -> Result<(), Error> {
    set_hidden(ctx, id, true).await
}

/// Show a hidden shipped insight again in this server (curators).
#[poise::command(slash_command)]
pub async fn unhide(
    ctx: Context<'_>,
    #[description = "The hidden insight's id (see /insights list)"]
    #[autocomplete = "autocomplete_id"]
    id: String,
) -> Result<(), Error> {
    set_hidden(ctx, id, false).await
}

async fn set_hidden(ctx: Context<'_>, id: String, hidden: bool) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let id = id.trim().to_lowercase();
    if collection.origin(&id) == Some(Origin::Own) {
        ctx.send(ephemeral(format!(
            "`{id}` is this server's own insight; `/insights remove id:{id}` removes it."
        )))
        .await?;
        return Ok(());
    }
    let guild = collection.guild_id().unwrap_or_default();
    let changed = answer_in_time(
        ctx,
        true,
        ctx.data().collections.set_hidden(guild, &id, hidden),
    )
    .await?;
    let text = match (changed, hidden) {
        (Ok(true), true) => format!("`{id}` is hidden: this server's answers and weekly posts no longer use it. `/insights unhide id:{id}` brings it back."),
        (Ok(false), true) => format!("`{id}` was already hidden."),
        (Ok(true), false) => format!("`{id}` is back in this server's answers and weekly posts."),
        (Ok(false), false) => format!("`{id}` was not hidden."),
        (Err(CollectionError::NotShipped(_)), _) => unknown_id(&id),
        (Err(e), _) => refusal(&e),
    };
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

/// The packs of shipped insights, each with an on/off button (curators).
#[poise::command(slash_command)]
pub async fn packs(ctx: Context<'_>) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let reply = packs_page(ctx.data(), &collection, None);
    ctx.send(reply.to_poise(true)).await?;
    Ok(())
}

/// `/insights packs`: every pack the bot serves, with its insight count and whether this server
/// uses it, and one button a pack that turns it off (green, on) or on (grey, off). The button
/// names the state it sets (`ins:packoff:<id>`, `ins:packon:<id>`), not "toggle", so a second
/// click on an old message, or two curators at once, cannot flip a pack back unseen.
fn packs_page(data: &Data, collection: &ServerCollection, note: Option<String>) -> Reply {
    let settings = collection.settings();
    let off = |id: &str| settings.packs_off.iter().any(|p| p == id);
    let packs = data.collections.packs();
    let lines: Vec<String> = packs
        .iter()
        .map(|&(id, count)| {
            let described = crate::insights::packs::describe(id);
            let title = described.as_ref().map_or(id, |d| d.title.as_str());
            let description = described
                .as_ref()
                .map(|d| format!("\n{}", escape_within(&d.description, 200)))
                .unwrap_or_default();
            format!(
                "**{}** · {} · `{id}` · {count} {}{description}",
                escape_within(title, 80),
                if off(id) { "off" } else { "on" },
                plural(count as u64, "insight", "insights")
            )
        })
        .collect();
    let on: usize = packs
        .iter()
        .filter(|(id, _)| !off(id))
        .map(|&(_, n)| n)
        .sum();
    let mut description = if lines.is_empty() {
        "This bot serves no built-in pack (its operator turned them off).".to_string()
    } else {
        lines.join("\n\n")
    };
    if settings.source == InsightSource::Ours {
        description.push_str("\n\nThis server answers from its own insights only (`/insights source which:ours`), so no pack is used until `/insights source which:all`.");
    }
    let embed = CreateEmbed::new()
        .title(format!(
            "Packs: {} of {} on, {on} insights",
            packs.iter().filter(|(id, _)| !off(id)).count(),
            packs.len()
        ))
        .description(render::truncate(
            &description,
            render::MAX_EMBED_DESCRIPTION,
        ))
        .footer(serenity::CreateEmbedFooter::new(
            "A pack's button turns it off or on for this server's answers, topics and weekly posts.",
        ));
    let buttons = packs
        .iter()
        .take(render::BUTTONS_PER_ROW * render::MAX_BUTTON_ROWS)
        .map(|&(id, _)| {
            let title = crate::insights::packs::describe(id).map_or(id.to_string(), |d| d.title);
            let label = render::truncate(&title, 80);
            if off(id) {
                button(format!("ins:packon:{id}"), &label, ButtonStyle::Secondary)
            } else {
                button(format!("ins:packoff:{id}"), &label, ButtonStyle::Success)
            }
        })
        .collect();
    Reply {
        content: note,
        embeds: vec![embed],
        buttons,
    }
}

/// A click on a pack's button: turn it on or off, then show the packs as they are now.
async fn set_pack(data: &Data, collection: &ServerCollection, pack: &str, on: bool) -> Answer {
    let guild = collection.guild_id().unwrap_or_default();
    let title = crate::insights::packs::describe(pack).map_or(pack.to_string(), |d| d.title);
    let note = match data.collections.set_pack_on(guild, pack, on).await {
        Ok(true) if on => format!(
            "**{}** is on: its insights are back in this server's answers and weekly posts.",
            escape_within(&title, 80)
        ),
        Ok(true) => format!(
            "**{}** is off: this server's answers and weekly posts no longer use its insights.",
            escape_within(&title, 80)
        ),
        Ok(false) => format!(
            "**{}** was already {}.",
            escape_within(&title, 80),
            if on { "on" } else { "off" }
        ),
        Err(e) => return Answer::Notice(refusal(&e)),
    };
    match data.collections.get(Some(guild)).await {
        Ok(now) => Answer::Update(packs_page(data, &now, Some(note))),
        Err(e) => Answer::Notice(collection_unavailable(Some(guild), &e)),
    }
}

/// Which insights this server answers and posts from.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum SourceChoice {
    #[name = "all: the shipped insights and this server's own"]
    All,
    #[name = "ours: only this server's own insights"]
    Ours,
}

/// Answer from all insights, or from this server's own only (curators).
#[poise::command(slash_command)]
pub async fn source(
    ctx: Context<'_>,
    #[description = "all: shipped and own; ours: own only"] which: SourceChoice,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let guild = collection.guild_id().unwrap_or_default();
    let source = match which {
        SourceChoice::All => InsightSource::All,
        SourceChoice::Ours => InsightSource::Ours,
    };
    let result =
        answer_in_time(ctx, true, ctx.data().collections.set_source(guild, source)).await?;
    let own = collection.own().len();
    let text = match (result, source) {
        (Ok(()), InsightSource::All) => "This server now answers and posts from the shipped insights and its own.".to_string(),
        (Ok(()), InsightSource::Ours) if own == 0 => "This server now answers and posts from its own insights only — it has none yet, so add some with `/insights add` or `/insights import`.".to_string(),
        (Ok(()), InsightSource::Ours) => format!("This server now answers and posts from its own {own} insights only."),
        (Err(e), _) => refusal(&e),
    };
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

/// Make a role's members curators besides Manage Server (needs Manage Server).
#[poise::command(slash_command)]
pub async fn curators(
    ctx: Context<'_>,
    #[description = "The role whose members may curate insights"] role: Option<serenity::Role>,
    #[description = "Remove the curator role (only Manage Server curates)"] clear: Option<bool>,
) -> Result<(), Error> {
    let Some(collection) = server(ctx).await? else {
        return Ok(());
    };
    let manager = ctx
        .author_member()
        .await
        .is_some_and(|m| manages_server(&m));
    if !manager {
        ctx.send(ephemeral(
            "Only members with the Manage Server permission can choose the curator role.",
        ))
        .await?;
        return Ok(());
    }
    let guild = collection.guild_id().unwrap_or_default();
    let collections = &ctx.data().collections;
    let text = match (role, clear.unwrap_or(false)) {
        (Some(_), true) => "Give a `role` or `clear:true`, not both.".to_string(),
        (Some(role), false) => {
            match answer_in_time(ctx, true, collections.set_curator_role(guild, Some(role.id.get()))).await? {
                Ok(()) => format!("Members with <@&{}> can now curate this server's insights (as can members with Manage Server).", role.id),
                Err(e) => refusal(&e),
            }
        }
        (None, true) => match answer_in_time(ctx, true, collections.set_curator_role(guild, None)).await? {
            Ok(()) => "The curator role is cleared: members with Manage Server curate this server's insights.".to_string(),
            Err(e) => refusal(&e),
        },
        (None, false) => match collection.settings().curator_role {
            Some(role) => format!("Curators: members with Manage Server and members with <@&{role}>. `/insights curators role:<role>` changes it, `clear:true` removes it."),
            None => "Curators: members with Manage Server. `/insights curators role:<role>` makes a role's members curators too.".to_string(),
        },
    };
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

/// Post each new suggestion in a channel for curators to review (curators).
#[poise::command(slash_command, rename = "review-channel")]
pub async fn review_channel(
    ctx: Context<'_>,
    #[description = "Where new suggestions are posted with review buttons"]
    #[channel_types("Text", "News")]
    channel: Option<serenity::PartialChannel>,
    #[description = "Stop posting suggestions in a channel"] clear: Option<bool>,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let guild = collection.guild_id().unwrap_or_default();
    let collections = &ctx.data().collections;
    let text = match (channel, clear.unwrap_or(false)) {
        (Some(_), true) => "Give a `channel` or `clear:true`, not both.".to_string(),
        (Some(channel), false) => {
            let missing = super::weekly::missing_permissions(ctx, channel.id).await;
            if !missing.is_empty() {
                format!(
                    "I cannot post in <#{}>: I am missing {}. Give me those permissions there, or pick another channel.",
                    channel.id,
                    missing.join(", ")
                )
            } else {
                match answer_in_time(ctx, true, collections.set_review_channel(guild, Some(channel.id.get()))).await? {
                    Ok(()) => format!("New suggestions will be posted in <#{}> with Approve, Edit & approve and Reject buttons (only curators' clicks count).", channel.id),
                    Err(e) => refusal(&e),
                }
            }
        }
        (None, true) => match answer_in_time(ctx, true, collections.set_review_channel(guild, None)).await? {
            Ok(()) => "Suggestions are no longer posted in a channel; curators review them with `/insights review`.".to_string(),
            Err(e) => refusal(&e),
        },
        (None, false) => match collection.settings().review_channel {
            Some(channel) => format!("New suggestions are posted in <#{channel}>. `clear:true` stops that."),
            None => "No review channel: curators review suggestions with `/insights review`. `/insights review-channel channel:<#channel>` posts each new one there.".to_string(),
        },
    };
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Forms and buttons

/// A submitted `/insights add` or `edit` form (`ins:add`, `ins:edit:<id>`).
pub async fn on_form(
    ctx: &serenity::Context,
    form: Incoming<'_>,
    data: &Data,
) -> Result<(), Error> {
    let work = async {
        let collection = match clicked_by_curator(form, data).await {
            Ok(c) => c,
            Err(answer) => return answer,
        };
        let typed = Typed::from_form(&form);
        let form_id = form.custom_id().to_string();
        let editing = form_id.strip_prefix("ins:edit:").map(str::to_string);
        if let Some(id) = &editing {
            if collection.origin(id) != Some(Origin::Own) {
                return Answer::Notice(format!(
                    "`{}` is no longer one of this server's insights (someone removed it); nothing was saved. Your text:\n{}",
                    escape_within(id, 80),
                    typed_echo(&typed)
                ));
            }
        }
        let guild = collection.guild_id().unwrap_or_default();
        let user = form.user().id.get();
        let id = match &editing {
            Some(id) => id.clone(),
            None => slug_from_title(typed.title.trim(), &|id: &str| {
                collection.origin(id).is_some() || data.collections.is_shipped_id(id)
            }),
        };
        let insight = match checked(&id, &typed, data) {
            Ok(insight) => insight,
            Err(problems) => {
                let echo = typed_echo(&typed);
                let reply = match data
                    .pending
                    .hold(guild, user, Held::Refused { form_id, typed })
                {
                    Ok(token) => notice_with(
                        format!("Nothing was saved:\n{problems}"),
                        Vec::new(),
                        vec![button(
                            format!("ins:fix:{token}"),
                            "Fix it",
                            ButtonStyle::Primary,
                        )],
                    ),
                    // No "Fix it" to reopen the form: what was typed is shown instead.
                    Err(HoldRefused) => plain(&format!(
                        "Nothing was saved:\n{problems}\nWhat you wrote:\n{echo}"
                    )),
                };
                return Answer::Message(reply, true);
            }
        };
        let draft = match data.collections.prepare(vec![insight]).await {
            Ok(mut drafts) => drafts.remove(0),
            Err(e) => return Answer::Notice(refusal(&e)),
        };
        if let Some((nearest, similarity)) = collection
            .catalog()
            .nearest(&draft.vectors, editing.as_deref())
            .filter(|(_, s)| *s >= NEAR_DUPLICATE)
        {
            let text = format!(
                "This is a lot like **{}** (`{}`, {:.0}% alike), which this server already has. Save yours anyway?",
                escape_within(&nearest.title, 100),
                nearest.id,
                similarity * 100.0
            );
            let embeds = vec![preview(nearest)];
            let Ok(token) = data.pending.hold(
                guild,
                user,
                Held::Draft {
                    draft: Box::new(draft),
                    typed: typed.clone(),
                },
            ) else {
                return Answer::Message(
                    plain(&format!(
                        "{text}\n{BUSY} Nothing was saved. What you wrote:\n{}",
                        typed_echo(&typed)
                    )),
                    true,
                );
            };
            return Answer::Message(
                notice_with(
                    text,
                    embeds,
                    vec![
                        button(
                            format!("ins:save:{token}"),
                            "Save anyway",
                            ButtonStyle::Primary,
                        ),
                        button(
                            format!("ins:cancel:{token}"),
                            "Cancel",
                            ButtonStyle::Secondary,
                        ),
                    ],
                ),
                true,
            );
        }
        Answer::Message(save(data, guild, user, draft).await, true)
    };
    form.answer_in_time(&ctx.http, work).await?;
    Ok(())
}

/// What was typed, shown back (escaped) so a curator can copy it.
/// Saves one draft and says so.
async fn save(data: &Data, guild: u64, user: u64, draft: Draft) -> Reply {
    let insight = draft.insight.clone();
    match data
        .collections
        .save(guild, vec![draft], user, Utc::now())
        .await
    {
        Ok(outcome) => {
            let verb = if outcome.replaced > 0 {
                "Updated"
            } else {
                "Saved"
            };
            notice_with(
                format!(
                    "{verb} `{}`. It is part of this server's answers and weekly posts from now on.",
                    insight.id
                ),
                vec![preview(&insight)],
                Vec::new(),
            )
        }
        Err(e) => notice_with(refusal(&e), Vec::new(), Vec::new()),
    }
}

/// A click on one of `/insights`' buttons (`ins:…`).
pub async fn on_button(
    ctx: &serenity::Context,
    click: Incoming<'_>,
    data: &Data,
) -> Result<(), Error> {
    let id = click.custom_id();
    let (action, arg) = id
        .strip_prefix("ins:")
        .map(|rest| rest.split_once(':').unwrap_or((rest, "")))
        .unwrap_or(("", ""));
    if action == "list" {
        // Reading: anyone may page through the list.
        let page = arg.parse().unwrap_or(0);
        let guild = click.guild_id().map(|g| g.get());
        let answer = match data.collections.get(guild).await {
            Ok(collection) => Answer::Update(list_page(data, &collection, page).await),
            Err(e) => Answer::Notice(collection_unavailable(guild, &e)),
        };
        return Ok(click.respond(&ctx.http, answer).await?);
    }
    if action == "keep" {
        return Ok(click
            .respond(
                &ctx.http,
                Answer::Update(plain("Kept; nothing was changed.")),
            )
            .await?);
    }
    let work = async {
        let collection = match clicked_by_curator(click, data).await {
            Ok(c) => c,
            Err(answer) => return answer,
        };
        let guild = collection.guild_id().unwrap_or_default();
        let user = click.user().id.get();
        match action {
            "gap" => super::usage::add_for_gap(data, &collection, arg).await,
            "packon" => set_pack(data, &collection, arg, true).await,
            "packoff" => set_pack(data, &collection, arg, false).await,
            "rm" => match data.collections.remove(guild, arg).await {
                Ok(true) => Answer::Update(plain(&format!("Removed `{arg}` from this server."))),
                Ok(false) => Answer::Update(plain(&format!("`{arg}` was already gone."))),
                Err(e) => Answer::Notice(refusal(&e)),
            },
            "fix" => match data.pending.take(arg, guild, user) {
                Some(Held::Refused { form_id, typed }) => {
                    let heading = if form_id == "ins:add" {
                        "New insight"
                    } else {
                        "Edit insight"
                    };
                    Answer::Form(insight_form(&form_id, heading, &typed))
                }
                _ => expired(),
            },
            "save" => match data.pending.take(arg, guild, user) {
                Some(Held::Draft { draft, .. }) => {
                    Answer::Update(save(data, guild, user, *draft).await)
                }
                _ => expired(),
            },
            "cancel" => match data.pending.take(arg, guild, user) {
                Some(Held::Draft { typed, .. }) => Answer::Update(plain(&format!(
                    "Cancelled; nothing was saved. What you wrote:\n{}",
                    typed_echo(&typed)
                ))),
                _ => Answer::Update(plain("Cancelled; nothing was changed.")),
            },
            "import" => match data.pending.take(arg, guild, user) {
                Some(Held::Import { insights, file }) => {
                    Answer::Update(run_import(data, guild, user, insights, &file).await)
                }
                _ => expired(),
            },
            _ => Answer::Notice("This button is no longer active.".into()),
        }
    };
    click.answer_in_time(&ctx.http, work).await?;
    Ok(())
}

fn plain(text: &str) -> Reply {
    notice_with(text.to_string(), Vec::new(), Vec::new())
}

fn expired() -> Answer {
    Answer::Update(plain(
        "This is no longer waiting (15 minutes passed, or the bot restarted since). Nothing was saved; please start again.",
    ))
}

/// Embeds and saves a previewed import, all or nothing.
async fn run_import(
    data: &Data,
    guild: u64,
    user: u64,
    insights: Vec<Insight>,
    file: &str,
) -> Reply {
    let count = insights.len();
    // The limit again before the (costly) embedding: the server may have grown since the
    // preview. The store checks it once more when saving.
    match data.collections.get(Some(guild)).await {
        Ok(collection) => {
            let own = collection.own();
            let new = insights
                .iter()
                .filter(|i| !own.iter().any(|o| o.id == i.id))
                .count();
            if own.len() + new > MAX_OWN_INSIGHTS {
                return plain(&format!(
                    "Importing `{}` would bring this server to {} insights of its own; the limit is {MAX_OWN_INSIGHTS}. Nothing was imported. Remove some with `/insights remove`, or import fewer.",
                    escape_within(file, 100),
                    own.len() + new
                ));
            }
        }
        Err(e) => return plain(&collection_unavailable(Some(guild), &e)),
    }
    let collections = Arc::clone(&data.collections);
    let embed = move || collections.prepare_here(insights);
    let drafts = match data.heavy.run(guild, EMBED_LIMIT, embed).await {
        Ok(Ok(drafts)) => drafts,
        Ok(Err(e)) => return plain(&refusal(&e)),
        Err(refused) => return plain(&refused.message("importing")),
    };
    match data.collections.save(guild, drafts, user, Utc::now()).await {
        Ok(outcome) => plain(&format!(
            "Imported `{}`: {} new, {} replaced ({count} in all). They are part of this server's answers and weekly posts from now on.",
            escape_within(file, 100),
            outcome.added,
            outcome.replaced
        )),
        Err(e) => plain(&refusal(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::render::tests::{assert_fits, insight_up_to_limits};
    use crate::insights::{Source, MAX_ASKS, MAX_SOURCE_CHARS, MAX_TOPICS};

    #[test]
    fn the_largest_preview_fits_discords_6000_characters() {
        // Every field at its limit, with asks full of markdown: 7,003 characters before.
        let insight = Insight {
            id: "i".repeat(64),
            title: "T".repeat(256),
            text: "x".repeat(4096),
            topics: vec!["t".repeat(100); MAX_TOPICS],
            asks: vec!["*".repeat(100); MAX_ASKS],
            source: Source {
                title: "s".repeat(MAX_SOURCE_CHARS),
                publisher: "p".repeat(MAX_SOURCE_CHARS),
                url: None,
            },
            pack: None,
        };
        let reply = notice_with(String::new(), vec![preview(&insight)], Vec::new());
        assert_fits(&reply);
        assert!(
            render::embed_chars(&reply.embeds[0]) > 5900,
            "the room is used"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn every_preview_fits(insight in insight_up_to_limits()) {
            assert_fits(&notice_with(String::new(), vec![preview(&insight)], Vec::new()));
        }
    }

    #[test]
    fn downloads_only_from_discords_file_servers_or_the_configured_api() {
        let allowed = |url: &str, api: Option<&str>| {
            download_allowed(&reqwest::Url::parse(url).unwrap(), api)
        };
        assert!(allowed("https://cdn.discordapp.com/attachments/1/2/a.txt", None).is_ok());
        assert!(allowed("https://media.discordapp.net/attachments/1/2/a.txt", None).is_ok());
        assert!(allowed("https://127.0.0.1:9/a.txt", Some("127.0.0.1")).is_ok());
        assert!(allowed("http://127.0.0.1:9/a.txt", Some("127.0.0.1")).is_ok());
        for (url, api) in [
            ("https://evil.example/a.txt", None),
            ("https://cdn.discordapp.com.evil.example/a", None),
            ("http://cdn.discordapp.com/a.txt", None),
            ("http://127.0.0.1:9/a.txt", None),
            ("http://169.254.169.254/latest", Some("169.254.169.254")),
            ("https://127.0.0.1:9/a.txt", Some("proxy.example")),
            ("file:///etc/passwd", None),
        ] {
            assert!(allowed(url, api).is_err(), "{url} with {api:?}");
        }
    }
}
