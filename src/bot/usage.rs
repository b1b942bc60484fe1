//! What curators learn from the answers: `/insights stats` (usage over a period, with a chart of
//! answers per week) and `/insights gaps` (turn keeping unanswered questions on or off, and list
//! them grouped, each group with an "Add an insight for this" button).
//!
//! Both read the store's figures and hand them to the pure [`crate::stats`]; this module only
//! words and draws them for Discord. Both replies are ephemeral: what a server's members asked is
//! for its curators, not for the channel.

use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use poise::serenity_prelude as serenity;
use serenity::{ButtonStyle, CreateAttachment, CreateButton, CreateEmbed};

use super::access::Answer;
use super::commands::{answer_in_time, ephemeral};
use super::curating::{as_curator, insight_form, refusal, Typed};
use super::render::{self, escape_within, no_pings};
use super::{Context, Data, Error};
use crate::stats::{chart, gap_vectors, gaps, Report, MIN_VOTES};
use crate::store::{Gap, UsageScope, GAP_RETENTION_DAYS};

/// `/insights stats`' default period, in days.
pub const DEFAULT_DAYS: u32 = 30;
/// The longest period `/insights stats` reports (votes and answers are kept a year).
pub const MAX_DAYS: u32 = 365;
/// Gaps read for one listing: a busy server's month of unanswered questions.
const MAX_GAPS_READ: usize = 300;
/// Groups listed at once (each has a button; a message holds at most 5 rows of buttons).
const GROUPS_SHOWN: usize = 5;
/// Questions of a group carried by its button (a custom id holds 100 characters).
const QUESTIONS_PER_BUTTON: usize = 5;
/// The chart's file name, as the embed refers to it.
const CHART_FILE: &str = "answers-per-week.png";

/// The first and last day of a period of `days` ending today.
pub fn period(today: NaiveDate, days: u32) -> (NaiveDate, NaiveDate) {
    (today - Duration::days(i64::from(days.max(1)) - 1), today)
}

/// Usage of this server's insights: answers, no-match share, most shown, helpfulness, a chart.
#[poise::command(slash_command)]
pub async fn stats(
    ctx: Context<'_>,
    #[description = "How many days back (default 30, at most 365)"]
    #[min = 1]
    #[max = 365]
    days: Option<u32>,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let days = days.unwrap_or(DEFAULT_DAYS).clamp(1, MAX_DAYS);
    let guild = collection.guild_id().unwrap_or_default();
    let data = ctx.data();
    let (since, until) = period(data.clock.now().date_naive(), days);
    let store = data.store.clone();
    let library = Arc::clone(collection.library());
    let work = async move {
        let usage = store
            .call(move |db| db.usage_stats(UsageScope::Server(guild), since, until))
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let report = Report::build(since, until, &usage.days, &usage.insights, &library);
            let title = format!("Answers per week, {since} to {until}");
            let png = chart::answers_per_week(&title, &report.weeks).map_err(|e| e.to_string())?;
            Ok::<_, String>((report, png))
        })
        .await
        .map_err(|e| e.to_string())?
    };
    match answer_in_time(ctx, true, work).await? {
        Ok((report, png)) => {
            let reply = poise::CreateReply::default()
                .ephemeral(true)
                .allowed_mentions(no_pings())
                .embed(report_embed(&report, days).image(format!("attachment://{CHART_FILE}")))
                .attachment(CreateAttachment::bytes(png, CHART_FILE));
            ctx.send(reply).await?;
        }
        Err(e) => {
            tracing::error!(guild, "cannot build a usage report: {e}");
            ctx.send(ephemeral(
                "Sorry, I cannot read this server's figures right now. Please try again in a minute.",
            ))
            .await?;
        }
    }
    Ok(())
}

/// A report as an embed: the same figures as `insight-bot stats`, in Discord's words.
pub fn report_embed(report: &Report, days: u32) -> CreateEmbed {
    let answers = if report.answers == 0 {
        "No questions were answered in this period.".to_string()
    } else {
        format!(
            "{} answered; {} ({:.0}%) with no close match.",
            report.answers,
            report.no_close_match,
            report.no_match_share() * 100.0
        )
    };
    let mut embed = CreateEmbed::new()
        .title(format!("Usage over the last {days} days"))
        .description(format!(
            "{answers}\n{} to {}. Votes count for the day of the answer they rate.",
            report.since, report.until
        ));
    let most_shown = lines(report.most_shown.iter().map(|l| {
        format!(
            "{} · `{}` — {} ×",
            escape_within(&l.title, 80),
            l.id,
            l.value
        )
    }));
    embed = embed.field(
        "Most shown",
        or_none(most_shown, "Nothing shown yet."),
        false,
    );
    let helpful = lines(report.helpful.iter().map(|l| {
        let (yes, votes) = l.value;
        format!(
            "{} · `{}` — {:.0}% of {votes} votes",
            escape_within(&l.title, 80),
            l.id,
            yes as f64 * 100.0 / votes as f64
        )
    }));
    embed = embed.field(
        "Helpful",
        or_none(
            helpful,
            &format!("No insight has {MIN_VOTES} votes yet in this period."),
        ),
        false,
    );
    let never = &report.never_shown;
    let listed = fitted_list(
        never
            .iter()
            .map(|l| format!("{} · `{}`", escape_within(&l.title, 80), l.id)),
        10,
    );
    embed.field(
        format!("Never shown ({})", never.len()),
        or_none(listed, "Every insight was shown at least once."),
        false,
    )
}

/// At most `most` lines, as many as fit in a field with room for "…and N more" after them.
fn fitted_list(items: impl ExactSizeIterator<Item = String>, most: usize) -> String {
    const ROOM_FOR_MORE: usize = 40;
    let total = items.len();
    let mut text = String::new();
    let mut shown = 0;
    for line in items.take(most) {
        let needed = text.chars().count() + line.chars().count() + 1;
        if needed > render::MAX_FIELD_VALUE - ROOM_FOR_MORE {
            break;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line);
        shown += 1;
    }
    if shown < total {
        text.push_str(&format!("\n…and {} more", total - shown));
    }
    text
}

fn lines(items: impl Iterator<Item = String>) -> String {
    render::truncate(
        &items.collect::<Vec<_>>().join("\n"),
        render::MAX_FIELD_VALUE,
    )
}

fn or_none(text: String, none: &str) -> String {
    if text.is_empty() {
        none.to_string()
    } else {
        text
    }
}

/// Turn keeping gaps on or off, or see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poise::ChoiceParameter)]
pub enum GapsChoice {
    #[name = "on: keep questions the insights did not answer"]
    On,
    #[name = "off: keep nothing, and delete what was kept"]
    Off,
}

/// The questions your insights did not answer, grouped; or turn keeping them on or off.
#[poise::command(slash_command)]
pub async fn gaps(
    ctx: Context<'_>,
    #[description = "on or off; leave out to see the gaps"] turn: Option<GapsChoice>,
) -> Result<(), Error> {
    let Some(collection) = as_curator(ctx).await? else {
        return Ok(());
    };
    let guild = collection.guild_id().unwrap_or_default();
    let data = ctx.data();
    let text = match turn {
        Some(GapsChoice::On) => {
            match answer_in_time(ctx, true, data.collections.set_gaps(guild, true)).await? {
                Ok(_) => format!(
                    "Gaps are on. From now on I keep {}. `/insights gaps` lists them; `/insights gaps turn:off` deletes them all at once.",
                    render::what_gaps_keep()
                ),
                Err(e) => refusal(&e),
            }
        }
        Some(GapsChoice::Off) => {
            match answer_in_time(ctx, true, data.collections.set_gaps(guild, false)).await? {
                Ok(deleted) => format!(
                    "Gaps are off: no question text is kept, and the {deleted} kept {} deleted now.",
                    if deleted == 1 { "question was" } else { "questions were" }
                ),
                Err(e) => refusal(&e),
            }
        }
        None => {
            let reply = answer_in_time(ctx, true, listing(data, &collection)).await?;
            ctx.send(reply.to_poise(true)).await?;
            return Ok(());
        }
    };
    ctx.send(ephemeral(text)).await?;
    Ok(())
}

/// The gaps of the last [`GAP_RETENTION_DAYS`] days, grouped, most asked first.
///
/// The grouping reads the vectors stored with the questions ([`gap_vectors`]), embedding only
/// those kept without one, a bounded number per listing. One listing per server at a time
/// ([`Data::gap_listings`]): a second one meanwhile is told to try again in a few seconds. The
/// work runs on the blocking pool, holding the server's turn until it ends.
async fn listing(data: &Data, collection: &crate::collections::ServerCollection) -> render::Reply {
    let guild = collection.guild_id().unwrap_or_default();
    let on = collection.settings().gaps;
    let Some(turn) = data.gap_listings.try_start(guild) else {
        return plain(LISTING_BUSY);
    };
    let since = data.clock.now().date_naive() - Duration::days(GAP_RETENTION_DAYS);
    let searcher = collection.catalog().searcher().clone();
    let found = data
        .store
        .call(move |db| {
            let _turn = turn;
            let listed =
                gap_vectors::gaps_with_vectors(db, guild, since, MAX_GAPS_READ, &searcher)?;
            let questions: Vec<String> = listed.gaps.iter().map(|g| g.question.clone()).collect();
            let groups = gaps::group(&questions, &listed.vectors);
            Ok((listed, groups))
        })
        .await;
    let (listed, groups) = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(guild, "cannot list gaps: {e}");
            return plain(
                "Sorry, I cannot read this server's gaps right now. Please try again in a minute.",
            );
        }
    };
    let kept = &listed.gaps;
    if groups.is_empty() && listed.left_out > 0 {
        return plain(&left_out_note(listed.left_out));
    }
    if groups.is_empty() {
        return plain(&if on {
            format!("No gaps in the last {GAP_RETENTION_DAYS} days: every question kept found a close match and nobody said it was not what they needed.")
        } else {
            format!("Gaps are off, so no questions are kept. `/insights gaps turn:on` starts keeping {}.", render::what_gaps_keep())
        });
    }
    let mut embed = CreateEmbed::new().title(format!(
        "Questions your insights did not answer (last {GAP_RETENTION_DAYS} days)"
    ));
    let mut buttons = Vec::new();
    for (n, group) in groups.iter().take(GROUPS_SHOWN).enumerate() {
        let members: Vec<&Gap> = group.members.iter().map(|&i| &kept[i]).collect();
        let no_match = members.iter().filter(|g| g.no_close_match).count();
        let weak = members
            .iter()
            .filter(|g| g.weak && !g.no_close_match)
            .count();
        let wordings = group
            .questions
            .iter()
            .take(4)
            .map(|q| format!("> {}", escape_within(q, 180)))
            .collect::<Vec<_>>()
            .join("\n");
        // Each answer counts once, by its first reason: no close match, only a weak match, or
        // a "not what I needed" vote on an answer that looked fine.
        let voted = group.asked.saturating_sub(no_match + weak);
        let reasons: Vec<(usize, &str)> = [
            (no_match, "no close match"),
            (weak, "only a weak match"),
            (voted, "\"not what I needed\""),
        ]
        .into_iter()
        .filter(|&(n, _)| n > 0)
        .collect();
        let why = match reasons.as_slice() {
            [(_, only)] => only.to_string(),
            several => several
                .iter()
                .map(|(n, reason)| format!("{n} {reason}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        embed = embed.field(
            format!("{}. Asked {} × ({why})", n + 1, group.asked),
            render::truncate(&wordings, render::MAX_FIELD_VALUE),
            false,
        );
        let ids: Vec<String> = members
            .iter()
            .take(QUESTIONS_PER_BUTTON)
            .map(|g| g.answer_id.to_string())
            .collect();
        buttons.push(
            CreateButton::new(format!("ins:gap:{}", ids.join(",")))
                .label(format!("{}. Add an insight for this", n + 1))
                .style(ButtonStyle::Primary),
        );
    }
    let mut footer = Vec::new();
    if groups.len() > GROUPS_SHOWN {
        footer.push(format!(
            "{} more groups; add insights for these first and they will show.",
            groups.len() - GROUPS_SHOWN
        ));
    }
    if listed.left_out > 0 {
        footer.push(left_out_note(listed.left_out));
    }
    if !footer.is_empty() {
        embed = embed.footer(serenity::CreateEmbedFooter::new(footer.join(" ")));
    }
    render::Reply {
        content: None,
        embeds: vec![embed],
        buttons,
    }
}

/// What a curator is told when another listing of the server's gaps is being computed.
const LISTING_BUSY: &str = "I am already listing this server's gaps (for you or another curator). Please try again in a few seconds.";

/// The questions a listing left out: kept without a vector (before the bot stored them), beyond
/// the few one listing prepares. The next listing prepares more.
fn left_out_note(left_out: usize) -> String {
    let these = if left_out == 1 {
        "1 older question is not".to_string()
    } else {
        format!("{left_out} older questions are not")
    };
    let them = if left_out == 1 { "it" } else { "them" };
    format!(
        "{these} grouped yet (each listing prepares a few): list the gaps again to include {them}."
    )
}

fn plain(text: &str) -> render::Reply {
    render::Reply {
        content: Some(text.to_string()),
        embeds: Vec::new(),
        buttons: Vec::new(),
    }
}

/// "Add an insight for this" (`ins:gap:<answer ids>`, clicked by a curator): the add form, with
/// the group's questions as its example questions.
pub async fn add_for_gap(
    data: &Data,
    collection: &crate::collections::ServerCollection,
    ids: &str,
) -> Answer {
    let guild = collection.guild_id().unwrap_or_default();
    let wanted: Vec<u64> = ids.split(',').filter_map(|id| id.parse().ok()).collect();
    let since = data.clock.now().date_naive() - Duration::days(GAP_RETENTION_DAYS);
    let kept = data
        .store
        .call(move |db| db.gaps(guild, since, MAX_GAPS_READ))
        .await;
    let mut asks: Vec<String> = Vec::new();
    match kept {
        Ok(kept) => {
            for gap in kept.into_iter().filter(|g| wanted.contains(&g.answer_id)) {
                let ask = gap.question.trim().replace('\n', " ");
                if !asks.iter().any(|a| a.eq_ignore_ascii_case(&ask)) {
                    asks.push(ask);
                }
            }
        }
        Err(e) => tracing::warn!(guild, "cannot read gaps for a new insight: {e}"),
    }
    if asks.is_empty() {
        return Answer::Notice(
            "Those questions are no longer kept (gaps were turned off, or 30 days passed). `/insights add` opens an empty form.".into(),
        );
    }
    let typed = Typed {
        asks: asks.join("\n"),
        ..Typed::default()
    };
    Answer::Form(insight_form("ins:add", "New insight", &typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_fits_its_field_and_says_how_many_are_left() {
        let long = |n: usize| format!("{} · `{}`", "t".repeat(80), "i".repeat(64 + n % 3));
        let text = fitted_list((0..50).map(long), 10);
        assert!(
            text.chars().count() <= render::MAX_FIELD_VALUE,
            "{}",
            text.len()
        );
        let shown = text.lines().filter(|l| l.contains('`')).count();
        assert!(shown >= 5, "{text}");
        assert!(
            text.ends_with(&format!("…and {} more", 50 - shown)),
            "{text}"
        );
        let short = fitted_list(["a".to_string(), "b".to_string()].into_iter(), 10);
        assert_eq!(short, "a\nb");
    }

    #[test]
    fn a_period_ends_today_and_has_its_days() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(
            period(today, 30),
            (NaiveDate::from_ymd_opt(2026, 10, 28).unwrap(), today)
        );
        assert_eq!(period(today, 1), (today, today));
    }
}
