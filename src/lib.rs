//! insight-bot: leadership insights, found by question, posted weekly.
//!
//! Crate map (the core knows nothing of Discord; [`bot`] is the only adapter):
//! - [`bot`]: the Discord adapter (serenity + poise): commands, DMs, rendering, start/shutdown.
//! - [`config`]: environment and `.env` -> a validated [`config::Config`]; the token never prints.
//! - [`cli`]: the command line (clap) and the offline commands: ask, random, topics, check.
//! - [`library`]: the insight collection: load and validate TOML files, look up, pick at random.
//! - [`search`]: text analysis and BM25 ranking; the "no close match" decision.
//! - [`vocabulary`]: the domain vocabulary (related words) and everyday words the ranking uses.
//! - [`clock`]: wall-clock time for the weekly poster, injectable (tests move it by hand).
//! - [`poster`]: the weekly posting task: due slots, claims, retries, exactly one post a week.
//! - [`cooldown`]: a per-user sliding-window limit on questions (pure, clock passed in).
//! - [`schedule`]: weekday + local time + IANA zone -> the UTC instants of weekly posts, week slots.
//! - [`rotation`]: a per-server order through the collection that never repeats within a cycle.
//! - [`store`]: SQLite state: weekly settings, rotation state, the post log (one post a week).

pub mod bot;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cooldown;
pub mod library;
pub mod poster;

pub mod rotation;
pub mod schedule;
pub mod search;
pub mod store;
pub mod vocabulary;
