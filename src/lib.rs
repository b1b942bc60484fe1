//! insight-bot: leadership insights, found by question, posted weekly.
//!
//! Crate map (the core knows nothing of Discord; `bot` is the only adapter):
//! - [`config`]: environment and `.env` -> a validated [`config::Config`]; the token never prints.
//! - [`cli`]: the command line (clap) and the offline commands: ask, random, topics, check.
//! - [`library`]: the insight collection: load and validate TOML files, look up, pick at random.
//! - [`search`]: text analysis and BM25 ranking; the "no close match" decision.
//! - [`vocabulary`]: the domain vocabulary (related words) and everyday words the ranking uses.
//! - [`schedule`]: weekday + local time + IANA zone -> the UTC instants of weekly posts, week slots.
//! - [`rotation`]: a per-server order through the collection that never repeats within a cycle.

pub mod cli;
pub mod config;
pub mod library;
pub mod rotation;
pub mod search;
pub mod vocabulary;
pub mod schedule;
