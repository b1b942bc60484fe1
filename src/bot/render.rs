//! Core results -> Discord messages: embeds, buttons, and the safety rules for anything sent.
//!
//! Every message the bot builds comes from here, so the rules live in one place:
//! - allowed mentions parse nothing ([`no_pings`]), on every message and reply;
//! - user text echoed back is escaped ([`escape`]: markdown neutralised, `@` broken with a
//!   zero-width space so `@everyone` reads as text even where a client ignores allowed mentions)
//!   and truncated ([`truncate`]) so no message breaks Discord's limits (content 2000, embed title
//!   256, description 4096, field 1024, footer 2048, 6000 across a message's embeds).
//!
//! A reply is described as [`Reply`] (content + embeds + buttons), and turned into the builder each
//! way of sending needs (interaction reply, component update, channel message).

use poise::serenity_prelude as serenity;
use serenity::{
    ButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed,
    CreateEmbedFooter, CreateInteractionResponseMessage, CreateMessage,
};

use crate::insights::search::{Answer, Confidence};
use crate::insights::{Insight, Library};
use crate::weekly::schedule::Period;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBED_TITLE: usize = 256;
pub const MAX_EMBED_DESCRIPTION: usize = 4096;
pub const MAX_FIELD_VALUE: usize = 1024;
/// Our own cap for the footer (Discord allows 2048): with the title and description at their
/// limits and the related field, it keeps a message under the 6000-character total.
pub const MAX_FOOTER: usize = 512;
/// Discord: the characters of all of a message's embeds together (titles, descriptions, field
/// names and values, footers, author names) may be at most 6,000.
pub const MAX_EMBEDS_TOTAL: usize = 6000;
/// How much of a question is echoed back: enough to recognise it, short enough to read.
pub const MAX_ECHOED_QUESTION: usize = 200;
/// Discord: a custom id holds at most 100 characters.
pub const MAX_CUSTOM_ID: usize = 100;

/// Embed accent colour (a calm blue).
pub const COLOUR: u32 = 0x3b82f6;

/// The prefix of the "Another one" button's custom id: `another:<topic>:<shown id>`.
pub const ANOTHER_PREFIX: &str = "another:";

/// Allowed mentions that parse nothing: no `@everyone`, roles, users or replied user is pinged.
pub fn no_pings() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .empty_users()
        .empty_roles()
        .replied_user(false)
}

/// Cuts `text` to at most `max` characters (not bytes), ending with "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Makes user text inert: markdown characters are escaped, every `@` is followed by a
/// zero-width space, links are wrapped in `<…>` and invite addresses broken, and direction
/// controls are dropped, so nothing typed can format, mention, ping, unfurl or reorder the rest
/// of the bot's line.
pub fn escape(text: &str) -> String {
    escaped_units(text).concat()
}

/// Characters that reorder the text after them (bidi embeddings, overrides and isolates,
/// U+202A–U+202E and U+2066–U+2069): echoed, one would turn the rest of the bot's line around.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` starts with the ASCII `prefix`, in any case (compared as bytes: no char boundary to
/// find, and no copy of a long text).
fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The length in bytes of a link starting `rest` (`http://` or `https://`, any case, and at least
/// one more character), up to the first space, `<`, `>`, `\\` or control character (a `\\`
/// before the closing `>` would escape it).
fn link_len(rest: &str) -> Option<usize> {
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|s| starts_with_ignoring_case(rest, s))?;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            c.is_whitespace()
                || matches!(c, '<' | '>' | '\\')
                || c.is_control()
                || is_direction_control(c)
        })
        .map_or(rest.len(), |(at, _)| at);
    (end > scheme.len()).then_some(end)
}

/// Invite addresses Discord shows as an invite card even without `https://`.
const INVITE_HOSTS: [&str; 3] = [
    "discord.gg/",
    "discord.com/invite/",
    "discordapp.com/invite/",
];

/// [`escape`], one unit at a time: an escaped character, or a whole link. A cut between units
/// never splits an escape or a link.
fn escaped_units(text: &str) -> Vec<String> {
    let mut units = Vec::with_capacity(text.len());
    let mut at = 0;
    let mut previous: Option<char> = None;
    while let Some(c) = text[at..].chars().next() {
        let rest = &text[at..];
        let word_start = !previous.is_some_and(|p| p.is_alphanumeric() || p == '.');
        if word_start {
            // A link in `<…>` is still a link but shows no preview, as Discord documents; its
            // `@`s get the zero-width space too.
            if let Some(len) = link_len(rest) {
                let link = rest[..len].replace('@', "@\u{200B}");
                units.push(format!("<{link}>"));
                previous = rest[..len].chars().last();
                at += len;
                continue;
            }
            if INVITE_HOSTS
                .iter()
                .any(|host| starts_with_ignoring_case(rest, host))
            {
                // "discord\u{200B}.gg/…": no longer an invite, still readable.
                units.push(format!("{}\u{200B}", &rest[..7]));
                previous = Some('d');
                at += 7;
                continue;
            }
        }
        at += c.len_utf8();
        previous = Some(c);
        units.push(match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '<' => format!("\\{c}"),
            '@' => "@\u{200B}".to_string(),
            // Newlines would let a question break out of the quote it is shown in.
            '\n' | '\r' => " ".to_string(),
            c if is_direction_control(c) => continue,
            c => c.to_string(),
        });
    }
    units
}

/// Escapes `text` ([`escape`]) and fits the result in `max` characters, ending with "…" when
/// cut. Escaping comes first and the cut falls between escaped units, so an escape or a link is
/// never split (a lone `\\` would escape whatever follows it) and the result never exceeds `max`,
/// however much markdown the text holds.
pub fn escape_within(text: &str, max: usize) -> String {
    let units = escaped_units(text);
    let widths: Vec<usize> = units.iter().map(|u| u.chars().count()).collect();
    if widths.iter().sum::<usize>() <= max {
        return units.concat();
    }
    let budget = max.saturating_sub(1);
    let mut out = String::with_capacity(max * 2);
    let mut used = 0;
    for (unit, width) in units.iter().zip(widths) {
        if used + width > budget {
            break;
        }
        out.push_str(unit);
        used += width;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// An insight's text as shown: its Markdown kept (curators format their insights, and an
/// imported Markdown file keeps its emphasis and links), its mentions made plain text (`@everyone`,
/// `@here`, `<@id>`, `<@&id>`, `<#id>` get a zero-width space after the `@`/`#`/`<`), within `max`
/// characters, without direction controls. `allowed_mentions` already stops any ping; this also
/// keeps a mention from even looking like one. Anything else user-written (titles in lists, reasons, modal echoes) goes
/// through [`escape_within`] instead.
pub fn defuse_within(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text
        .chars()
        .filter(|&c| !is_direction_control(c))
        .peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        let next = chars.peek().copied();
        let defuse = match (c, next) {
            ('@', Some(n)) => n.is_alphanumeric() || n == '&' || n == '!',
            ('<', Some(n)) => matches!(n, '@' | '#' | '/' | ':' | 'a' | 't'),
            _ => false,
        };
        if defuse {
            out.push('\u{200B}');
        }
    }
    truncate(&out, max)
}

/// A question as shown back to its author: one line, escaped, within [`MAX_ECHOED_QUESTION`].
pub fn echo_question(question: &str) -> String {
    let one_line = question.split_whitespace().collect::<Vec<_>>().join(" ");
    escape_within(&one_line, MAX_ECHOED_QUESTION)
}

/// Discord: at most 5 buttons in an action row.
pub const BUTTONS_PER_ROW: usize = 5;
/// Discord: at most 5 action rows in a message.
pub const MAX_BUTTON_ROWS: usize = 5;

/// What to send: content, embeds, and optionally the "Another one" button.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub content: Option<String>,
    pub embeds: Vec<CreateEmbed>,
    pub buttons: Vec<CreateButton>,
}

impl Reply {
    /// The buttons in rows of [`BUTTONS_PER_ROW`], as Discord lays them out (at most
    /// [`MAX_BUTTON_ROWS`] rows; a reply never has more buttons than fit).
    fn components(&self) -> Vec<CreateActionRow> {
        debug_assert!(self.buttons.len() <= BUTTONS_PER_ROW * MAX_BUTTON_ROWS);
        self.buttons
            .chunks(BUTTONS_PER_ROW)
            .take(MAX_BUTTON_ROWS)
            .map(|row| CreateActionRow::Buttons(row.to_vec()))
            .collect()
    }

    /// The content, cut to Discord's limit.
    fn content(&self) -> Option<String> {
        self.content.as_deref().map(|c| truncate(c, MAX_CONTENT))
    }

    /// As a slash-command reply (poise), optionally ephemeral.
    pub fn to_poise(&self, ephemeral: bool) -> poise::CreateReply {
        let mut reply = poise::CreateReply::default()
            .ephemeral(ephemeral)
            .allowed_mentions(no_pings())
            .components(self.components());
        if let Some(content) = self.content() {
            reply = reply.content(content);
        }
        for embed in &self.embeds {
            reply = reply.embed(embed.clone());
        }
        reply
    }

    /// As an interaction response message (component updates).
    pub fn to_interaction_message(&self) -> CreateInteractionResponseMessage {
        let mut message = CreateInteractionResponseMessage::new()
            .allowed_mentions(no_pings())
            .embeds(self.embeds.clone())
            .components(self.components());
        if let Some(content) = self.content() {
            message = message.content(content);
        }
        message
    }

    /// As the edit of a deferred interaction answer.
    pub fn to_edit(&self) -> serenity::EditInteractionResponse {
        let mut edit = serenity::EditInteractionResponse::new()
            .allowed_mentions(no_pings())
            .embeds(self.embeds.clone())
            .components(self.components());
        edit = edit.content(self.content().unwrap_or_default());
        edit
    }

    /// As a channel message (DM answers, weekly posts).
    pub fn to_message(&self) -> CreateMessage {
        let mut message = CreateMessage::new()
            .allowed_mentions(no_pings())
            .embeds(self.embeds.clone())
            .components(self.components());
        if let Some(content) = self.content() {
            message = message.content(content);
        }
        message
    }
}

/// The characters Discord counts against [`MAX_EMBEDS_TOTAL`] in `embed`: read from the JSON it
/// is sent as, so that nothing a builder adds is missed.
pub fn embed_chars(embed: &CreateEmbed) -> usize {
    let json = serde_json::to_value(embed).unwrap_or_default();
    let chars = |v: &serde_json::Value| v.as_str().map_or(0, |s| s.chars().count());
    let fields = json["fields"].as_array().map_or(0, |fields| {
        fields
            .iter()
            .map(|f| chars(&f["name"]) + chars(&f["value"]))
            .sum()
    });
    chars(&json["title"])
        + chars(&json["description"])
        + chars(&json["footer"]["text"])
        + chars(&json["author"]["name"])
        + fields
}

/// An insight as an embed: its title, its full text, its source in the footer.
pub fn insight_embed(insight: &Insight) -> CreateEmbed {
    CreateEmbed::new()
        .title(defuse_within(&insight.title, MAX_EMBED_TITLE))
        .description(defuse_within(&insight.text, MAX_EMBED_DESCRIPTION))
        .footer(CreateEmbedFooter::new(truncate(
            &insight.source.to_string(),
            MAX_FOOTER,
        )))
        .colour(COLOUR)
}

/// The "Another one" button for an insight shown from `topic` (or the whole collection).
pub fn another_button(topic: Option<&str>, shown: &Insight) -> CreateButton {
    let mut id = format!("{ANOTHER_PREFIX}{}:{}", topic.unwrap_or(""), shown.id);
    if id.chars().count() > MAX_CUSTOM_ID {
        // Ids are at most 64 characters; a very long topic is dropped rather than cut, so the
        // button still works (on the whole collection).
        id = format!("{ANOTHER_PREFIX}:{}", shown.id);
    }
    CreateButton::new(id)
        .label("Another one")
        .style(ButtonStyle::Secondary)
}

/// Parses an "Another one" custom id into (topic, shown id).
pub fn parse_another(custom_id: &str) -> Option<(Option<&str>, &str)> {
    let rest = custom_id.strip_prefix(ANOTHER_PREFIX)?;
    let (topic, shown) = rest.split_once(':')?;
    Some(((!topic.is_empty()).then_some(topic), shown))
}

/// The answer to a question (`/advice` and DMs), by its confidence:
/// - strong: the best insight as an embed and up to two related insights by title;
/// - weak: the same, but introduced as the closest match that may not fit, with the invitation
///   to suggest an insight (`/suggest`, in a server: `in_server`);
/// - none: says so in plain words ("no close match", or "English only for now" for a question
///   in another language) and offers `fallback`, a random insight, labelled as such.
pub fn answer(answer: &Answer<'_>, fallback: Option<&Insight>, in_server: bool) -> Reply {
    let question = echo_question(&answer.question);
    if answer.explanation.other_language {
        return Reply {
            content: Some(format!(
                "> {question}\nI understand English only for now. Ask me in English, for example: How do I stop micromanaging my team?"
            )),
            embeds: Vec::new(),
            buttons: Vec::new(),
        };
    }
    match answer.matches.split_first() {
        Some((best, related)) => {
            let mut embed = insight_embed(best.insight);
            if !related.is_empty() {
                let list = related
                    .iter()
                    .take(2)
                    .map(|m| format!("• {}", escape_within(&m.insight.title, MAX_EMBED_TITLE)))
                    .collect::<Vec<_>>()
                    .join("\n");
                embed = embed.field("Related", truncate(&list, MAX_FIELD_VALUE), false);
            }
            let content = if answer.confidence == Confidence::Weak {
                embed = embed.author(serenity::CreateEmbedAuthor::new(
                    "Closest match (may not fit)",
                ));
                let invite = if in_server {
                    " If you know what would help, `/suggest` an insight for this server."
                } else {
                    ""
                };
                format!(
                    "> {question}\nI have nothing written on exactly this. This is the closest insight I have, and it may not fit.{invite}"
                )
            } else {
                format!("> {question}")
            };
            Reply {
                content: Some(content),
                embeds: vec![embed],
                buttons: Vec::new(),
            }
        }
        None => {
            let mut content = format!(
                "> {question}\nNo close match for that in my collection. Try other words, or `/topics` to see what I know about."
            );
            let mut embeds = Vec::new();
            if let Some(insight) = fallback {
                content.push_str("\nHere is a random insight instead:");
                embeds.push(
                    insight_embed(insight).author(serenity::CreateEmbedAuthor::new(
                        "Random insight (no close match)",
                    )),
                );
            }
            Reply {
                content: Some(content),
                embeds,
                buttons: Vec::new(),
            }
        }
    }
}

/// A random insight (`/insight` and "Another one"), with the button to get a different one.
pub fn random_insight(insight: &Insight, topic: Option<&str>) -> Reply {
    let label = match topic {
        Some(t) => format!("Random insight on {t}"),
        None => "Random insight".to_string(),
    };
    Reply {
        content: None,
        embeds: vec![insight_embed(insight).author(serenity::CreateEmbedAuthor::new(label))],
        buttons: vec![another_button(topic, insight)],
    }
}

/// The title of a weekly (or every-two-weeks) feed's post; with the period label in the footer
/// it identifies the bot's own post of a slot when an unconfirmed send is checked after a
/// restart.
pub const WEEKLY_TITLE: &str = "Leadership insight of the week";

/// The title of a daily or weekdays feed's post.
pub const DAILY_TITLE: &str = "Leadership insight of the day";

/// The title of a post of `period`.
pub fn post_title(period: Period) -> &'static str {
    match period {
        Period::Week(_) => WEEKLY_TITLE,
        Period::Day(_) => DAILY_TITLE,
    }
}

/// A feed's post: fixed title, the insight's headline as author line, its full text, its
/// source, and the period ("Week 48 · 2026", "Monday 7 December 2026") in the footer.
pub fn feed_post(insight: &Insight, period: Period) -> Reply {
    let embed = CreateEmbed::new()
        .title(post_title(period))
        .author(serenity::CreateEmbedAuthor::new(defuse_within(
            &insight.title,
            MAX_EMBED_TITLE,
        )))
        .description(defuse_within(&insight.text, MAX_EMBED_DESCRIPTION))
        .field(
            "Source",
            truncate(&insight.source.to_string(), MAX_FOOTER),
            false,
        )
        .footer(CreateEmbedFooter::new(period.label()))
        .colour(COLOUR);
    Reply {
        content: None,
        embeds: vec![embed],
        buttons: Vec::new(),
    }
}

/// The topics and how many insights each has.
pub fn topics(library: &Library) -> Reply {
    let lines: Vec<String> = library
        .topics()
        .map(|(topic, count)| {
            let noun = if count == 1 { "insight" } else { "insights" };
            format!("`{topic}` — {count} {noun}")
        })
        .collect();
    let embed = CreateEmbed::new()
        .title("Topics")
        .description(truncate(&lines.join("\n"), MAX_EMBED_DESCRIPTION))
        .footer(CreateEmbedFooter::new(format!(
            "{} insights in all · /insight topic:<name> for one at random",
            library.len()
        )))
        .colour(COLOUR);
    Reply {
        content: None,
        embeds: vec![embed],
        buttons: Vec::new(),
    }
}

/// What `/insights gaps turn:on` and `/help` say is kept, and for how long.
pub fn what_gaps_keep() -> String {
    format!(
        "the text of questions asked here (privately too) that found no close match or only a weak one, or got a \"Not what I needed\" vote, without who asked, for {} days (the text of other questions is deleted the next day)",
        crate::store::GAP_RETENTION_DAYS
    )
}

/// What the bot does and every way in. `count` is what the asker sees (their server's
/// collection, or the shipped one in DMs), `shipped` the shipped collection's size.
pub fn help(count: usize, shipped: usize, in_server: bool) -> Reply {
    let collection = if in_server {
        format!("this server's collection of {count} insights (the {shipped} that come with me, plus what this server added)")
    } else {
        format!("my collection of {count} short insights")
    };
    let gaps = what_gaps_keep();
    let description = format!(
        "I answer leadership questions with the most relevant insight from {collection}, on leading a team: one-on-ones, feedback, hiring and onboarding, performance and growth, conflict, team health, meetings, priorities and managing up, resignations and reorganisations, and moving between individual-contributor and management roles.\n\n\
**Ask a question**\n`/advice question:<your question>` — the best insight and two related ones. Add `private:true` to see the answer alone.\n\n\
**Browse**\n`/insight` — a random insight (pick a `topic:` to narrow it), with an *Another one* button.\n`/topics` — the topics and how many insights each has.\n\n\
**Direct messages**\nWrite me a question in a DM, in your own words, and I answer the same way. Send `help` for this message. DMs draw from the {shipped} insights that come with me only: a server's own insights stay in that server.\n\n\
**A server's own insights**\nAnyone can propose one with `/suggest`. Curators (Manage Server, or the role set with `/insights curators`) add, edit, import and review them: `/insights add`, `/insights import`, `/insights review`, `/insights list` and more; `/insights packs` turns off the packs of insights this server does not need.\n\n\
**Was it helpful?**\nEvery answer has *Helpful* and *Not what I needed* buttons. I count each vote with the server (or \"DM\") and the day, never with who voted; a vote can be changed for 7 days, then nothing links it to anyone. Curators see the figures with `/insights stats`. A server's curators can turn on `/insights gaps`: then I also keep {gaps}, so they can add the insights that are missing. Gaps are off unless turned on, and `/insights gaps turn:off` deletes what was kept.\n\n\
**Scheduled insights**\nServer admins (Manage Server) can have me post insights on a schedule, in up to 10 channels (one feed each): `/weekly set channel:<#channel> day:<weekday> time:<HH:MM> timezone:<zone>`. Options: `repeat:` weekly, every-2-weeks, weekdays or daily; `topic:` one topic or pack only; `thread:true` for a discussion thread under each post; `ping:<@role>` to mention a role members opt into with the 🔔 button under each post (nobody else is ever pinged). `/weekly set` on a channel that has a feed changes only the options you give. A forum channel gets one forum post per insight. Then `/weekly list`, `preview`, `skip` (the next post only), `pause` (optionally `until:YYYY-MM-DD`), `resume`, `post-now`, `show` or `off`; with several feeds, add `channel:`."
    );
    Reply {
        content: None,
        embeds: vec![CreateEmbed::new()
            .title("insight-bot — help")
            .description(truncate(&description, MAX_EMBED_DESCRIPTION))
            .colour(COLOUR)],
        buttons: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello!", 5), "hell…");
        assert_eq!(truncate(&"é".repeat(10), 4).chars().count(), 4);
    }

    #[test]
    fn escape_breaks_mentions_and_markdown() {
        let out = escape("@everyone <@123> **bold** `x`\nnext");
        assert!(!out.contains("@everyone"));
        assert!(out.contains("@\u{200B}everyone"));
        // `<@123>` is no longer mention syntax (the `<` is escaped, the `@` followed by a
        // zero-width space), while Discord still shows the plain text `<@123>`.
        assert!(!out.contains("<@1"), "{out}");
        assert!(out.contains("\\<@\u{200B}123\\>"), "{out}");
        assert!(!out.contains('\n'));
        assert!(out.contains("\\*\\*bold\\*\\*"));
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_fits_its_limit_and_never_splits_an_escape(
            text in "(\\PC|[*_`~|>#<@\\\\\\[\\]\n]){0,300}",
            max in 0usize..260,
        ) {
            let out = escape_within(&text, max);
            proptest::prop_assert!(out.chars().count() <= max, "{} > {max}", out.chars().count());
            let full = escape(&text);
            if full.chars().count() <= max {
                proptest::prop_assert_eq!(&out, &full);
            } else {
                let kept = out.strip_suffix('…').unwrap_or(&out);
                proptest::prop_assert!(full.starts_with(kept), "not a prefix of the escaped text");
                // An even number of trailing backslashes: no escape cut in half.
                let trailing = kept.chars().rev().take_while(|&c| c == '\\').count();
                proptest::prop_assert!(trailing % 2 == 0, "{kept:?}");
            }
            proptest::prop_assert!(!out.contains("@everyone") && !out.contains("@here"));
            proptest::prop_assert!(!out.contains('\n'));
        }
    }

    #[test]
    fn echoed_questions_are_short_single_lines() {
        let long = "why ".repeat(2000);
        let shown = echo_question(&long);
        assert!(shown.chars().count() <= MAX_ECHOED_QUESTION);
        assert!(shown.ends_with('…'));
        // All markdown: escaping doubles it, and it still fits.
        let marks = "*_`".repeat(400);
        let shown = echo_question(&marks);
        assert!((MAX_ECHOED_QUESTION - 1..=MAX_ECHOED_QUESTION).contains(&shown.chars().count()));
        assert!(shown.starts_with("\\*\\_\\`"), "{shown}");
    }

    #[test]
    fn defused_text_keeps_markdown_but_no_mention() {
        let out = defuse_within("**Lead** by @everyone, <@123>, <@&9> and <#5> @here", 4096);
        assert!(out.starts_with("**Lead**"), "{out}");
        for mention in ["@everyone", "@here", "<@1", "<@&", "<#5"] {
            assert!(!out.contains(mention), "{mention} in {out}");
        }
        assert_eq!(defuse_within(&"a".repeat(5000), 4096).chars().count(), 4096);
        assert_eq!(
            defuse_within("me@example.org", 100),
            "me@\u{200B}example.org"
        );
    }

    #[test]
    fn another_ids_round_trip_and_fit() {
        assert_eq!(
            parse_another("another:ai:ai-back-to-ic"),
            Some((Some("ai"), "ai-back-to-ic"))
        );
        assert_eq!(parse_another("another::x"), Some((None, "x")));
        assert_eq!(parse_another("other:x"), None);
    }

    /// Insights with every field anywhere from short to its limit, markdown-heavy so that
    /// escaping doubles what it can, for tests that every message fits Discord's limits.
    pub(crate) fn insight_up_to_limits() -> impl proptest::strategy::Strategy<Value = Insight> {
        use crate::insights::{
            Source, MAX_ASKS, MAX_ID_CHARS, MAX_SOURCE_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS,
            MAX_TOPICS,
        };
        use proptest::prelude::*;
        // Either short or exactly at the limit: the limits are where messages break.
        fn text(max: usize) -> impl Strategy<Value = String> {
            (prop::bool::ANY, "[a-z*_@#<é ]{1,20}").prop_map(move |(full, short)| {
                if full {
                    "*_é".chars().cycle().take(max).collect()
                } else {
                    short
                }
            })
        }
        let item = || "[*_a-z]{1,100}";
        (
            text(MAX_TITLE_CHARS),
            text(MAX_TEXT_CHARS),
            prop::collection::vec("[a-z]{1,100}", 0..=MAX_TOPICS),
            prop::collection::vec(item(), 0..=MAX_ASKS),
            text(MAX_SOURCE_CHARS),
            text(MAX_SOURCE_CHARS),
        )
            .prop_map(
                |(title, text, topics, asks, source_title, publisher)| Insight {
                    id: "i".repeat(MAX_ID_CHARS),
                    title,
                    text,
                    topics,
                    asks,
                    source: Source {
                        title: source_title,
                        publisher,
                        url: None,
                    },
                    pack: None,
                },
            )
    }

    /// Every limit of Discord's on one reply: content, each embed part, and the total.
    pub(crate) fn assert_fits(reply: &Reply) {
        if let Some(content) = reply.content() {
            assert!(content.chars().count() <= MAX_CONTENT);
        }
        let total: usize = reply.embeds.iter().map(embed_chars).sum();
        assert!(total <= MAX_EMBEDS_TOTAL, "{total} characters in embeds");
        for embed in &reply.embeds {
            let json = serde_json::to_value(embed).unwrap();
            let chars = |v: &serde_json::Value| v.as_str().map_or(0, |s| s.chars().count());
            assert!(chars(&json["title"]) <= MAX_EMBED_TITLE);
            assert!(chars(&json["description"]) <= MAX_EMBED_DESCRIPTION);
            assert!(chars(&json["footer"]["text"]) <= 2048);
            assert!(chars(&json["author"]["name"]) <= MAX_EMBED_TITLE);
            for field in json["fields"].as_array().into_iter().flatten() {
                assert!((1..=MAX_EMBED_TITLE).contains(&chars(&field["name"])));
                assert!((1..=MAX_FIELD_VALUE).contains(&chars(&field["value"])));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn every_insight_message_fits_discords_limits(
            insight in insight_up_to_limits(),
        ) {
            assert_fits(&random_insight(&insight, Some(&"t".repeat(100))));
            assert_fits(&feed_post(&insight, crate::weekly::schedule::WeekKey { year: 2026, week: 49 }.into()));
            assert_fits(&feed_post(&insight, crate::weekly::schedule::Period::Day(chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap())));
            assert_fits(&Reply {
                content: None,
                embeds: vec![insight_embed(&insight)],
                buttons: Vec::new(),
            });
        }
    }

    #[test]
    fn echoed_links_do_not_unfurl_and_direction_controls_are_gone() {
        assert_eq!(
            escape("see https://example.com/a_b?x=1 now"),
            "see <https://example.com/a_b?x=1> now"
        );
        assert_eq!(escape("HTTP://x.io"), "<HTTP://x.io>");
        // Not a link: no address after the scheme, or inside a word.
        assert_eq!(escape("https:// x"), "https:// x");
        assert_eq!(escape("xhttps://a"), "xhttps://a");
        assert_eq!(escape("join discord.gg/abc"), "join discord\u{200B}.gg/abc");
        assert_eq!(
            escape("Discord.com/invite/abc"),
            "Discord\u{200B}.com/invite/abc"
        );
        assert_eq!(
            escape("https://a@everyone.io"),
            "<https://a@\u{200B}everyone.io>"
        );
        let reversed = "fine \u{202E}evil\u{2066}x\u{2069}\u{202A}";
        assert_eq!(escape(reversed), "fine evilx");
        assert_eq!(echo_question(reversed), "fine evilx");
        assert_eq!(defuse_within(reversed, 100), "fine evilx");
        // A link is never cut in half: it is left out whole when it does not fit.
        let cut = escape_within("ab https://example.com/long/path", 20);
        assert_eq!(cut, "ab …");
    }
}
