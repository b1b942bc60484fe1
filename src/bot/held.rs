//! Drafts and import previews waiting for a curator's button ("Fix it", "Save anyway",
//! "Import"), held in memory by a random token that the button's custom id carries, for
//! [`HOLD_FOR`]; a restart forgets them and the button then says to start again.
//!
//! Any server owner is a curator, so what is held is bounded in bytes, per member, per server
//! and in all, and one server can never push out another's (see [`MAX_HELD_PER_MEMBER`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use super::curating::Typed;
use crate::collections::Draft;
use crate::insights::Insight;

/// How long a draft or an import preview waits for its button.
pub const HOLD_FOR: Duration = Duration::from_secs(15 * 60);
/// What waits for a button is bounded so that no curator can fill the process's memory and no
/// server can push out another's: each member holds at most [`MAX_HELD_PER_MEMBER`] (their
/// oldest goes first), each server at most [`MAX_HELD_BYTES_PER_SERVER`] (its own oldest goes
/// first), and past [`MAX_HELD_BYTES`] across servers a new one is refused, never made room for
/// by dropping another server's. A preview of a 1 MiB import holds about 1.5 MiB.
pub(super) const MAX_HELD_PER_MEMBER: usize = 3;
/// See [`MAX_HELD_PER_MEMBER`]: two previews of the largest import, or thousands of drafts.
pub(super) const MAX_HELD_BYTES_PER_SERVER: usize = 4 * 1024 * 1024;
/// See [`MAX_HELD_PER_MEMBER`]: 32 servers each at their limit at once.
pub(super) const MAX_HELD_BYTES: usize = 128 * 1024 * 1024;
/// What waits for a curator's button.
pub(super) enum Held {
    /// A form refused by validation: "Fix it" reopens it, filled in.
    Refused { form_id: String, typed: Typed },
    /// A draft like an existing insight: "Save anyway" saves it.
    Draft { draft: Box<Draft>, typed: Typed },
    /// A previewed import: "Import" saves these.
    Import {
        insights: Vec<Insight>,
        file: String,
    },
}

impl Held {
    /// About how many bytes this holds: its text, plus a fixed allowance for each string and
    /// list, plus the vectors of a draft (one 8-bit vector per document).
    fn size(&self) -> usize {
        const PER_STRING: usize = 32;
        const PER_VECTOR: usize = 4 + crate::embedding::DIM;
        let text = |s: &str| s.len() + PER_STRING;
        let typed = |t: &Typed| text(&t.title) + text(&t.text) + text(&t.topics) + text(&t.asks);
        let insight = |i: &Insight| {
            let lists: usize = i.topics.iter().chain(&i.asks).map(|s| text(s)).sum();
            text(&i.id)
                + text(&i.title)
                + text(&i.text)
                + lists
                + text(&i.source.title)
                + text(&i.source.publisher)
                + i.source.url.as_deref().map_or(0, text)
        };
        match self {
            Held::Refused { form_id, typed: t } => text(form_id) + typed(t),
            Held::Draft { draft, typed: t } => {
                insight(&draft.insight) + (1 + draft.insight.asks.len()) * PER_VECTOR + typed(t)
            }
            Held::Import { insights, file } => {
                text(file) + insights.iter().map(insight).sum::<usize>()
            }
        }
    }
}

struct HeldEntry {
    guild: u64,
    user: u64,
    at: Instant,
    size: usize,
    held: Held,
}

/// Drafts and previews waiting for a button, by a random token in the button's custom id.
#[derive(Default)]
pub struct Pending {
    entries: Mutex<HashMap<String, HeldEntry>>,
}

/// Nothing more can be held now: the process holds [`MAX_HELD_BYTES`] for other servers.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct HoldRefused;

/// What a member is told when [`HoldRefused`].
pub(super) const BUSY: &str = "I am holding too many previews for other servers right now to keep this one for a button. Please try again in a few minutes.";

impl Pending {
    /// Holds `held` for `guild` and `user` until [`HOLD_FOR`] passes and returns its token, after
    /// making room within this member's and this server's bounds (dropping their own oldest);
    /// or refuses when what all servers hold leaves no room (see [`MAX_HELD_PER_MEMBER`]).
    pub(super) fn hold(&self, guild: u64, user: u64, held: Held) -> Result<String, HoldRefused> {
        let size = held.size();
        if size > MAX_HELD_BYTES_PER_SERVER {
            return Err(HoldRefused);
        }
        let token = format!("{:016x}", rand::thread_rng().gen::<u64>());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| e.at.elapsed() < HOLD_FOR);
        let oldest = |entries: &HashMap<String, HeldEntry>, of: &dyn Fn(&HeldEntry) -> bool| {
            entries
                .iter()
                .filter(|(_, e)| of(e))
                .min_by_key(|(_, e)| e.at)
                .map(|(k, _)| k.clone())
        };
        let members = |e: &HeldEntry| e.guild == guild && e.user == user;
        while entries.values().filter(|e| members(e)).count() >= MAX_HELD_PER_MEMBER {
            let Some(key) = oldest(&entries, &members) else {
                break;
            };
            entries.remove(&key);
        }
        let servers = |e: &HeldEntry| e.guild == guild;
        let server_bytes = |entries: &HashMap<String, HeldEntry>| -> usize {
            entries
                .values()
                .filter(|e| servers(e))
                .map(|e| e.size)
                .sum()
        };
        while server_bytes(&entries) + size > MAX_HELD_BYTES_PER_SERVER {
            let Some(key) = oldest(&entries, &servers) else {
                break;
            };
            entries.remove(&key);
        }
        let total: usize = entries.values().map(|e| e.size).sum();
        if total + size > MAX_HELD_BYTES {
            return Err(HoldRefused);
        }
        entries.insert(
            token.clone(),
            HeldEntry {
                guild,
                user,
                at: Instant::now(),
                size,
                held,
            },
        );
        Ok(token)
    }

    /// Takes what `token` holds, if it is still held, for this server and member.
    pub(super) fn take(&self, token: &str, guild: u64, user: u64) -> Option<Held> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token)?;
        if entry.guild != guild || entry.user != user || entry.at.elapsed() >= HOLD_FOR {
            return None;
        }
        entries.remove(token).map(|e| e.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::{parse_import, MAX_ASKS, MAX_IMPORT_BYTES, MAX_TOPICS};

    fn refused(bytes: usize) -> Held {
        Held::Refused {
            form_id: "f".into(),
            typed: Typed {
                text: "x".repeat(bytes),
                ..Typed::default()
            },
        }
    }

    fn held(pending: &Pending, guild: u64) -> usize {
        let entries = pending.entries.lock().unwrap();
        entries.values().filter(|e| e.guild == guild).count()
    }

    #[test]
    fn a_member_holds_at_most_three_and_their_oldest_goes_first() {
        let pending = Pending::default();
        let tokens: Vec<String> = (0..4)
            .map(|_| pending.hold(1, 10, refused(10)).unwrap())
            .collect();
        assert_eq!(held(&pending, 1), MAX_HELD_PER_MEMBER);
        assert!(pending.take(&tokens[0], 1, 10).is_none(), "the oldest went");
        assert!(pending.take(&tokens[3], 1, 10).is_some());
        // Another member of the server keeps theirs.
        let other = pending.hold(1, 11, refused(10)).unwrap();
        pending.hold(1, 10, refused(10)).unwrap();
        assert!(pending.take(&other, 1, 11).is_some());
    }

    #[test]
    fn a_server_over_its_bytes_drops_its_own_oldest_never_another_servers() {
        let pending = Pending::default();
        let quarter = MAX_HELD_BYTES_PER_SERVER / 4;
        let theirs = pending.hold(2, 20, refused(quarter)).unwrap();
        // Server 1's members fill its share, again and again.
        for user in 0..40 {
            pending.hold(1, user, refused(quarter)).unwrap();
        }
        let bytes: usize = {
            let entries = pending.entries.lock().unwrap();
            entries
                .values()
                .filter(|e| e.guild == 1)
                .map(|e| e.size)
                .sum()
        };
        assert!(bytes <= MAX_HELD_BYTES_PER_SERVER, "{bytes}");
        assert_eq!(held(&pending, 1), 3);
        assert!(
            pending.take(&theirs, 2, 20).is_some(),
            "server 2's preview stays"
        );
        // One thing larger than a server's share is refused outright.
        assert_eq!(
            pending.hold(1, 1, refused(MAX_HELD_BYTES_PER_SERVER)),
            Err(HoldRefused)
        );
    }

    #[test]
    fn past_the_total_a_new_hold_is_refused_and_nothing_is_dropped() {
        let pending = Pending::default();
        let servers = MAX_HELD_BYTES / MAX_HELD_BYTES_PER_SERVER;
        let big = MAX_HELD_BYTES_PER_SERVER - 1024;
        let tokens: Vec<(u64, String)> = (0..servers as u64)
            .map(|guild| (guild, pending.hold(guild, 1, refused(big)).unwrap()))
            .collect();
        assert_eq!(pending.hold(999, 1, refused(big)), Err(HoldRefused));
        for (guild, token) in tokens {
            assert!(pending.take(&token, guild, 1).is_some(), "server {guild}'s");
        }
    }

    #[test]
    fn the_preview_of_the_largest_import_is_held_within_a_servers_share() {
        // 1,000 insights with every list full, in just under 1 MiB: what a preview holds most.
        let topics = (0..MAX_TOPICS).map(|i| format!("t{i}")).collect::<Vec<_>>();
        let asks = (0..MAX_ASKS).map(|i| format!("q{i}")).collect::<Vec<_>>();
        let block = |i: usize| {
            format!(
                "Title {i}\n{}\nTopics: {}\nAsks: {}\n\n",
                "w".repeat(800),
                topics.join(","),
                asks.join("|")
            )
        };
        let file: String = (0..1000).map(block).collect();
        assert!(file.len() <= MAX_IMPORT_BYTES, "{}", file.len());
        let rules = crate::insights::Rules::server(crate::collections::server_source(), None);
        let insights = parse_import("a.txt", file.as_bytes(), &rules).unwrap();
        let held = Held::Import {
            insights,
            file: "a.txt".into(),
        };
        assert!(held.size() < MAX_HELD_BYTES_PER_SERVER, "{}", held.size());
        assert!(Pending::default().hold(1, 1, held).is_ok());
    }
}
