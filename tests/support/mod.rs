//! Shared support for the end-to-end tests: an in-process fake Discord (REST + gateway on one
//! 127.0.0.1 port) that the real serenity/poise client connects to, the Discord payloads the
//! tests send through it, and the OpenAPI validator that checks every body the bot sends.
//!
//! Each test file that needs it declares `mod support;` and typically does:
//! ```ignore
//! let fake = support::FakeDiscord::start().await;
//! // start insight-bot on it (waits for READY and the command registration):
//! let bot = support::bot::start_bot(&fake).await;
//! // (or build any serenity client with fake.http() / fake.base_url(), start it, then
//! // fake.wait_for_ready(support::WAIT).await)
//! let interaction = support::payloads::slash_command("help", vec![]).build();
//! fake.dispatch("INTERACTION_CREATE", interaction.clone()).await;
//! let reply = fake.wait_for_callback(&interaction, support::WAIT).await;
//! support::bot::stop_bot(&fake, bot).await; // clean shutdown + every body valid
//! ```
//!
//! - `answers`: the bot's answer to a dispatched interaction, its content and buttons.
//! - `fake_discord`: the fake server, request log, waits, fault injection, interaction timings.
//! - `bot`: starting and stopping the real insight-bot on the fake; the interactions its tests
//!   send.
//! - `payloads`: dispatch and REST payloads, tested to deserialize into serenity's models.
//! - `openapi`: request-body validation against Discord's OpenAPI spec.
//! - `prometheus`: a strict parser of the Prometheus text format, for the `/metrics` tests.

// Every test crate compiles this module but uses only part of it; without this each one would
// warn about the helpers it happens not to call.
#![allow(dead_code)]

pub mod answers;
pub mod bot;
pub mod fake_discord;
pub mod openapi;
pub mod payloads;
pub mod prometheus;

// Short paths for the names most tests use; a test crate that uses none of them must not warn.
#[allow(unused_imports)]
pub use fake_discord::{
    check_dispatch, FakeDiscord, FakeDiscordBuilder, FaultKind, GatewayStats, InteractionTiming,
    RecordedFile, RecordedRequest, REJECTED_TOKEN, TOKEN, WAIT,
};
#[allow(unused_imports)]
pub use openapi::OpenApiSpec;
#[allow(unused_imports)]
pub use payloads::TestGuild;
