//! Who may change a server's collection, and answering the clicks and forms that do it.
//!
//! **Curators** are members with Manage Server (or Administrator) and members holding the
//! server's curator role (`/insights curators`). Discord only decides who *sees* a command; a
//! server can change that, and anyone who sees a message can press its buttons. So every
//! curator action checks the member again when it runs: in the command, and on each button
//! click and form submission, from the member data Discord sends with that interaction.
//!
//! [`Incoming`] is a button click or a modal submission: both are answered once, in 3 seconds,
//! either by a new message, by updating the message the button is on, or (for a button) by
//! opening a form. [`Incoming::answer_in_time`] defers when the work is slow (embedding a long
//! insight, a database waiting on a lock) and edits the answer in when it is ready.

use std::future::Future;
use std::time::Duration;

use poise::serenity_prelude as serenity;
use serenity::{
    ComponentInteraction, CreateInteractionResponse, CreateInteractionResponseMessage, CreateModal,
    EditInteractionResponse, Member, ModalInteraction, Permissions, RoleId,
};

use super::render::{self, no_pings};
use crate::store::ServerSettings;

/// Whether `member` is a curator of a server with `settings`.
pub fn is_curator(member: &Member, settings: &ServerSettings) -> bool {
    let permissions = member.permissions.unwrap_or_else(Permissions::empty);
    permissions.manage_guild()
        || permissions.administrator()
        || settings
            .curator_role
            .is_some_and(|role| member.roles.contains(&RoleId::new(role)))
}

/// Whether `member` has Manage Server (what changing the curator role needs: a curator by role
/// must not be able to hand the role's powers to another role).
pub fn manages_server(member: &Member) -> bool {
    let permissions = member.permissions.unwrap_or_else(Permissions::empty);
    permissions.manage_guild() || permissions.administrator()
}

/// What a member who is not a curator is told. Every refusal of a non-curator goes through
/// here, so this is also where the interaction is noted as refused (for the metrics).
pub fn not_a_curator(settings: &ServerSettings) -> String {
    crate::ops::interaction::note_outcome(crate::ops::interaction::Outcome::Refused);
    match settings.curator_role {
        Some(role) => format!(
            "Only curators can do this: members with the Manage Server permission or the <@&{role}> role."
        ),
        None => "Only curators can do this: members with the Manage Server permission (a server admin can make a role curators with `/insights curators`).".into(),
    }
}

/// How long an interaction's work may take before its answer is deferred (Discord drops an
/// interaction not acknowledged within 3 s).
const DEFER_AFTER: Duration = Duration::from_millis(1500);

/// How a click or form is answered.
pub enum Answer {
    /// A new message only the member sees.
    Notice(String),
    /// A new message, ephemeral or not.
    Message(render::Reply, bool),
    /// The message the button (or the form's button) is on, replaced.
    Update(render::Reply),
    /// A form to fill in (buttons only: Discord refuses a form in answer to a form).
    Form(CreateModal),
}

impl Answer {
    fn response(self) -> CreateInteractionResponse {
        match self {
            Answer::Notice(text) => CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(render::truncate(&text, render::MAX_CONTENT))
                    .ephemeral(true)
                    .allowed_mentions(no_pings()),
            ),
            Answer::Message(reply, ephemeral) => CreateInteractionResponse::Message(
                reply.to_interaction_message().ephemeral(ephemeral),
            ),
            Answer::Update(reply) => {
                CreateInteractionResponse::UpdateMessage(reply.to_interaction_message())
            }
            Answer::Form(modal) => CreateInteractionResponse::Modal(modal),
        }
    }
}

/// A button click or a modal submission.
#[derive(Clone, Copy)]
pub enum Incoming<'a> {
    Button(&'a ComponentInteraction),
    Form(&'a ModalInteraction),
}

impl<'a> Incoming<'a> {
    pub fn custom_id(&self) -> &'a str {
        match self {
            Incoming::Button(i) => &i.data.custom_id,
            Incoming::Form(i) => &i.data.custom_id,
        }
    }

    pub fn user(&self) -> &'a serenity::User {
        match self {
            Incoming::Button(i) => &i.user,
            Incoming::Form(i) => &i.user,
        }
    }

    pub fn guild_id(&self) -> Option<serenity::GuildId> {
        match self {
            Incoming::Button(i) => i.guild_id,
            Incoming::Form(i) => i.guild_id,
        }
    }

    pub fn member(&self) -> Option<&'a Member> {
        match self {
            Incoming::Button(i) => i.member.as_ref(),
            Incoming::Form(i) => i.member.as_ref(),
        }
    }

    /// The message the button is on (for a form: the message of the button that opened it).
    pub fn message(&self) -> Option<&'a serenity::Message> {
        match self {
            Incoming::Button(i) => Some(&i.message),
            Incoming::Form(i) => i.message.as_deref(),
        }
    }

    /// A form's text inputs by custom id (empty for a button).
    pub fn fields(&self) -> Vec<(&'a str, &'a str)> {
        let Incoming::Form(form) = self else {
            return Vec::new();
        };
        form.data
            .components
            .iter()
            .flat_map(|row| &row.components)
            .filter_map(|c| match c {
                serenity::ActionRowComponent::InputText(input) => Some((
                    input.custom_id.as_str(),
                    input.value.as_deref().unwrap_or(""),
                )),
                _ => None,
            })
            .collect()
    }

    /// One text input of a form, `""` when absent or empty.
    pub fn field(&self, id: &str) -> &'a str {
        self.fields()
            .into_iter()
            .find(|(k, _)| *k == id)
            .map_or("", |(_, v)| v)
    }

    pub async fn respond(&self, http: &serenity::Http, answer: Answer) -> serenity::Result<()> {
        let response = answer.response();
        match self {
            Incoming::Button(i) => i.create_response(http, response).await,
            Incoming::Form(i) => i.create_response(http, response).await,
        }
    }

    async fn edit(
        &self,
        http: &serenity::Http,
        edit: EditInteractionResponse,
    ) -> serenity::Result<serenity::Message> {
        match self {
            Incoming::Button(i) => i.edit_response(http, edit).await,
            Incoming::Form(i) => i.edit_response(http, edit).await,
        }
    }

    /// Answers with what `work` gives, deferring first if it takes longer than 1.5 s (then the
    /// answer is edited in; a [`Answer::Form`] cannot be deferred and must come at once).
    pub async fn answer_in_time(
        &self,
        http: &serenity::Http,
        work: impl Future<Output = Answer>,
    ) -> serenity::Result<()> {
        // Whether a slow answer will be an update of the clicked message or a new notice is not
        // known yet; a button on an ephemeral message (previews, reviews) is updated, every other
        // slow answer is a new ephemeral message.
        let update = self.message().is_some_and(|m| {
            m.flags
                .is_some_and(|f| f.contains(serenity::MessageFlags::EPHEMERAL))
        });
        self.in_time(http, work, update).await
    }

    /// [`Incoming::answer_in_time`] for work whose answer is always a new ephemeral
    /// [`Answer::Notice`], so a slow one is deferred as a new message, never as an update of the
    /// clicked message.
    pub async fn notice_in_time(
        &self,
        http: &serenity::Http,
        work: impl Future<Output = Answer>,
    ) -> serenity::Result<()> {
        self.in_time(http, work, false).await
    }

    async fn in_time(
        &self,
        http: &serenity::Http,
        work: impl Future<Output = Answer>,
        update: bool,
    ) -> serenity::Result<()> {
        tokio::pin!(work);
        tokio::select! {
            answer = &mut work => return self.respond(http, answer).await,
            _ = tokio::time::sleep(DEFER_AFTER) => {}
        }
        let deferral = if update {
            CreateInteractionResponse::Acknowledge
        } else {
            CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new().ephemeral(true),
            )
        };
        match self {
            Incoming::Button(i) => i.create_response(http, deferral).await?,
            Incoming::Form(i) => i.create_response(http, deferral).await?,
        }
        crate::ops::interaction::note_acknowledged();
        let edit = match work.await {
            Answer::Notice(text) => EditInteractionResponse::new()
                .content(render::truncate(&text, render::MAX_CONTENT))
                .allowed_mentions(no_pings()),
            Answer::Message(reply, _) | Answer::Update(reply) => reply.to_edit(),
            Answer::Form(_) => EditInteractionResponse::new()
                .content("Sorry, that took too long. Please click again.")
                .allowed_mentions(no_pings()),
        };
        self.edit(http, edit).await.map(|_| ())
    }
}
