//! insight-bot: leadership insights, found by question, posted weekly.
//!
//! Crate map (the core knows nothing of Discord; [`bot`] is the only adapter):
//! - [`insights`]: the [`insights::Insight`] type; the collection ([`insights::library`]: load and
//!   validate TOML files, look up, pick at random), the built-in packs ([`insights::packs`]), and
//!   ranking ([`insights::search`]: text analysis, BM25, the domain vocabulary, the "no close
//!   match" decision).
//! - [`collections`]: each server's collection: the shipped insights it sees plus its own,
//!   loaded from the store, changed live by its curators.
//! - [`weekly`]: the insight of the week: schedule math across DST, the no-repeat rotation, the
//!   posting task and its injectable clock.
//! - [`store`]: persistent state: weekly settings, rotation state, the post log (one post a week),
//!   servers' own insights and suggestions, answers, votes and daily usage totals.
//! - [`embedding`]: sentence embeddings (all-MiniLM-L6-v2 on candle, CPU) and their disk cache.
//! - [`sharding`]: which gateway shards this process runs and which servers that makes its own.
//! - [`stats`]: what curators learn from the answers: usage reports, the weekly chart (PNG), the
//!   questions the collection cannot answer yet, grouped, and the daily retention pass.
//! - [`cooldown`]: a per-user sliding-window limit on what a user can make the bot send (pure).
//! - [`bot`]: the Discord adapter (serenity + poise): commands, DMs, rendering, start/shutdown.
//! - [`ops`]: what operators see: `/healthz`, `/readyz` and Prometheus `/metrics` on
//!   `METRICS_ADDR`, the metrics registry, and the `healthcheck` client.
//! - [`config`]: environment and `.env` -> a validated [`config::Config`]; the token never prints.
//! - [`redact`]: passwords and user info out of every URL or connection string the bot shows.
//! - [`cli`]: the command line (clap) and the offline commands: ask, random, topics, check,
//!   next-posts, stats.

pub mod bot;
pub mod cli;
pub mod collections;
pub mod config;
pub mod cooldown;
pub mod embedding;
pub mod insights;
pub mod ops;
pub mod redact;
pub mod sharding;
pub mod stats;
pub mod store;
pub mod weekly;
