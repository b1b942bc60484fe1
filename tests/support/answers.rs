//! Reading the bot's answers to interactions the tests dispatch: the callback (or the edit that
//! completes a deferred one), its content, its buttons, and the message it became.

use serde_json::Value;

use super::fake_discord::{FakeDiscord, WAIT};
use super::payloads::{InteractionBuilder, APP_ID};

/// The bot's answer to `interaction`: the callback's type and its data (a message, or a form for
/// type 9). A deferred answer (5, or 6 for a component or form) is completed by an edit of the
/// original response, which is returned with the callback type it stands for (4 or 7).
pub async fn answer_of(fake: &FakeDiscord, interaction: &Value) -> (u64, Value) {
    let callback = fake.wait_for_callback(interaction, WAIT).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());
    let kind = callback.json()["type"].as_u64().unwrap_or(0);
    match kind {
        4 | 7 | 9 => (kind, callback.json()["data"].clone()),
        5 | 6 => {
            let token = interaction["token"].as_str().expect("token");
            let webhook = format!("/webhooks/{APP_ID}/{token}");
            let edit = fake
                .wait_for_request(
                    &format!("the edit completing the deferred answer ({webhook})"),
                    WAIT * 2,
                    |r| r.is("PATCH", &webhook) || (kind == 5 && r.is("POST", &webhook)),
                )
                .await;
            (if kind == 5 { 4 } else { 7 }, edit.json().clone())
        }
        other => panic!("unexpected callback type {other}: {}", callback.body_text()),
    }
}

pub async fn send(fake: &FakeDiscord, interaction: &InteractionBuilder) -> (Value, u64, Value) {
    let interaction = interaction.build();
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    let (kind, data) = answer_of(fake, &interaction).await;
    (interaction, kind, data)
}

pub fn content(message: &Value) -> String {
    message["content"].as_str().unwrap_or_default().to_string()
}

pub fn button_ids(message: &Value) -> Vec<String> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_owned))
        .collect()
}

pub fn button_starting(message: &Value, prefix: &str) -> String {
    button_ids(message)
        .into_iter()
        .find(|id| id.starts_with(prefix))
        .unwrap_or_else(|| panic!("no button {prefix}…: {message:#}"))
}

/// The message a reply to `interaction` became (what a click on its buttons carries).
pub fn shown(fake: &FakeDiscord, interaction: &Value) -> Value {
    fake.original_response(interaction)
        .unwrap_or_else(|| panic!("no stored response to {}", interaction["id"]))
}
