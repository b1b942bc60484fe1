//! What the bot tells the operators' endpoint ([`crate::ops`]): the labels an interaction is
//! counted under, whether its loops still run, and its shards, servers and servers' insights as
//! `/readyz` and `/metrics` read them.
//!
//! Apart from `mod.rs` because it is the one place that turns serenity's state (the shard
//! manager's runners, the cache) into the plain values `ops` knows, which knows nothing of Discord.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use poise::serenity_prelude as serenity;
use serenity::{FullEvent, Interaction};

use super::feedback;
use crate::collections::Collections;
use crate::ops;
use crate::sharding::Shards;

/// The top-level commands, as the metrics name them: a fixed list, so a name Discord sends that
/// the bot does not have (a stale registration) is counted as "other", never as itself.
pub(super) const COMMAND_LABELS: &[&str] = &[
    "advice", "insight", "topics", "help", "weekly", "insights", "suggest",
];

/// The `kind` and `command` labels of an interaction event; `None` for other events.
pub(super) fn interaction_labels(
    event: &FullEvent,
) -> Option<(ops::interaction::Kind, &'static str)> {
    use ops::interaction::Kind;
    let FullEvent::InteractionCreate { interaction } = event else {
        return None;
    };
    let known = |name: &str| {
        COMMAND_LABELS
            .iter()
            .copied()
            .find(|known| *known == name)
            .unwrap_or("other")
    };
    Some(match interaction {
        Interaction::Command(command) => (Kind::Slash, known(&command.data.name)),
        Interaction::Autocomplete(command) => (Kind::Autocomplete, known(&command.data.name)),
        // Buttons and forms by the family their custom id belongs to (see `on_event`).
        Interaction::Component(component) => {
            let id = component.data.custom_id.as_str();
            let family = if id.starts_with(feedback::PREFIX) {
                "feedback"
            } else if id.starts_with("ins:") {
                "insights"
            } else if id.starts_with("sug:") {
                "suggest"
            } else {
                "insight"
            };
            (Kind::Component, family)
        }
        Interaction::Modal(modal) => {
            let family = if modal.data.custom_id.starts_with("sug:") {
                "suggest"
            } else {
                "insights"
            };
            (Kind::Modal, family)
        }
        // A ping (only sent to HTTP endpoints) or a kind serenity adds later: still counted.
        _ => (Kind::Component, "other"),
    })
}

/// Whether the gateway client and the weekly poster still run (`/healthz`).
#[derive(Default)]
pub(super) struct LoopsRunning {
    stopped: std::sync::atomic::AtomicBool,
}

/// Held by a loop's task: marks the loops stopped when the task ends, however it ends.
pub(super) struct LoopStopped(pub(super) Arc<LoopsRunning>);

impl Drop for LoopStopped {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
    }
}

/// What the operators' endpoint reads from the running bot.
pub(super) struct BotProbe {
    pub(super) shard_manager: Arc<serenity::ShardManager>,
    pub(super) shards: Shards,
    pub(super) cache: Arc<serenity::Cache>,
    pub(super) collections: Arc<Collections>,
    pub(super) loops: Arc<LoopsRunning>,
}

impl ops::Probe for BotProbe {
    fn loops_running(&self) -> bool {
        !self.loops.stopped.load(Ordering::Acquire)
    }

    fn snapshot(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ops::Snapshot> + Send + '_>> {
        Box::pin(async move {
            let mut shards: Vec<ops::ShardStatus> = self
                .shard_manager
                .runners
                .lock()
                .await
                .iter()
                .map(|(id, runner)| ops::ShardStatus {
                    id: id.0,
                    connected: runner.stage == serenity::ConnectionStage::Connected,
                    stage: runner.stage.to_string(),
                    latency: runner.latency,
                })
                .collect();
            // Shards this process must run that have no runner yet (queued: serenity starts
            // them 5 s apart; or restarting) count as down. With `auto` the count is Discord's,
            // which the cache learns from the first READY (1 until then).
            let expected: Vec<u32> = match self.shards {
                Shards::All(n) => (0..n).collect(),
                Shards::Range { first, last, .. } => (first..=last).collect(),
                Shards::Auto => (0..self.cache.shard_count()).collect(),
            };
            for id in expected {
                if !shards.iter().any(|s| s.id == id) {
                    shards.push(ops::ShardStatus {
                        id,
                        connected: false,
                        stage: "not started".into(),
                        latency: None,
                    });
                }
            }
            shards.sort_by_key(|s| s.id);
            ops::Snapshot {
                shards,
                servers: self.cache.guild_count() as u64,
                server_insights: self.collections.own_insights() as u64,
            }
        })
    }
}
