//! Direct messages: any text sent to the bot in a DM is a question and gets the `/advice` answer;
//! `help` gets the help text.
//!
//! This is raw serenity (a `Message` event), not poise: poise's prefix commands would need a prefix
//! and would treat free text as "unknown command", while here every message *is* the question.
//! Messages from bots (the bot itself included) and webhooks are ignored so two bots can never
//! talk to each other in a loop. Guild messages never arrive (no GUILD_MESSAGES intent) and are
//! ignored if they do.

use poise::serenity_prelude as serenity;
use serenity::{CreateMessage, Message};

use super::commands::{answer_question, spend_budget};
use super::render::{self, no_pings};
use super::{Data, Error};

/// Words that ask for the help text instead of an answer.
fn is_help_request(text: &str) -> bool {
    let word = text
        .trim()
        .trim_start_matches(['/', '!'])
        .trim_end_matches(['?', '!', '.']);
    ["help", "hi", "hello", "hey", "start"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

fn plain(text: String) -> CreateMessage {
    CreateMessage::new()
        .content(render::truncate(&text, render::MAX_CONTENT))
        .allowed_mentions(no_pings())
}

pub async fn handle_message(
    ctx: &serenity::Context,
    message: &Message,
    data: &Data,
) -> Result<(), Error> {
    if message.guild_id.is_some() || message.author.bot || message.webhook_id.is_some() {
        return Ok(());
    }
    crate::ops::metrics().dm_messages.inc();
    // Every DM spends the author's budget, whatever it asks: a flood gets one notice, then
    // silence until the budget allows a reply again.
    if let Err(slow_down) = spend_budget(data, message.author.id) {
        if slow_down.first {
            let notice = plain(slow_down.text);
            message.channel_id.send_message(&ctx.http, notice).await?;
        }
        return Ok(());
    }
    let reply = if is_help_request(&message.content) {
        {
            let shipped = data.collections.shipped().library().len();
            render::help(shipped, shipped, false).to_message()
        }
    } else if message.content.trim().is_empty() {
        // Attachments, stickers or an embed alone: nothing to answer, but say what works.
        plain("Send me your question as text, for example: *How do I stop micromanaging my team?* — or `help` to see what I can do.".into())
    } else {
        match answer_question(data, None, &message.content).await {
            Ok(reply) => reply.to_message(),
            Err(hint) => plain(hint),
        }
    };
    message.channel_id.send_message(&ctx.http, reply).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_help_request;

    #[test]
    fn help_words_are_recognised_loosely() {
        for text in ["help", "HELP", " /help ", "!help", "help?", "Hi", "hello!"] {
            assert!(is_help_request(text), "{text}");
        }
        for text in ["help me delegate", "how do I get help from my team"] {
            assert!(!is_help_request(text), "{text}");
        }
    }
}
