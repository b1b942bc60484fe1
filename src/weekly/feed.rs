//! What a feed is: one channel's scheduled insight posts. A server may have several feeds (one
//! per channel, each with its own cadence, topic, thread and ping); a feed is named by its server
//! and channel, which is what the store keys its settings, rotation and post log by.
//!
//! The limits on what one server may ask for live here too, beside the thing they limit.

use std::fmt;

/// At most this many feeds *on* per server: each is a timer's worth of work for the poster and
/// a stream of requests to Discord, and ten channels of scheduled posts is already more than any
/// team reads. A feed turned off does not count, so an admin at the limit can turn one off and
/// start another.
pub const MAX_FEEDS_PER_SERVER: usize = 10;

/// At most this many feeds kept per server, on or off: a feed turned off keeps its settings and
/// rotation (for `/weekly set` to turn it back on), so without this bound a server could make the
/// store keep a row for every channel it ever had.
pub const MAX_KEPT_FEEDS_PER_SERVER: usize = 30;

/// The farthest ahead `pause until:` may reach. A longer pause is `/weekly off`.
pub const MAX_PAUSE_DAYS: i64 = 366;

/// Discord's limit on a thread's name, in characters.
pub const THREAD_NAME_MAX: usize = 100;

/// A thread under a post is archived after this many minutes without activity (7 days), which
/// Discord allows on every server.
pub const THREAD_ARCHIVE_MINUTES: u32 = 10_080;

/// A feed: the channel `channel_id` of server `guild_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedId {
    pub guild_id: u64,
    pub channel_id: u64,
}

impl FeedId {
    pub fn new(guild_id: u64, channel_id: u64) -> Self {
        FeedId {
            guild_id,
            channel_id,
        }
    }
}

impl fmt::Display for FeedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.guild_id, self.channel_id)
    }
}

/// A thread's name from an insight's title: at most [`THREAD_NAME_MAX`] characters, cut at a
/// word with an ellipsis when it is longer, never empty.
pub fn thread_name(title: &str) -> String {
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return "Insight".into();
    }
    if title.chars().count() <= THREAD_NAME_MAX {
        return title;
    }
    let cut: String = title.chars().take(THREAD_NAME_MAX - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > THREAD_NAME_MAX / 2 => cut[..space].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_fit_discord_and_cut_at_a_word() {
        assert_eq!(
            thread_name("  Delegate   the outcome "),
            "Delegate the outcome"
        );
        assert_eq!(thread_name(""), "Insight");
        let long = "word ".repeat(40);
        let name = thread_name(&long);
        assert!(name.chars().count() <= THREAD_NAME_MAX, "{name}");
        assert!(name.ends_with("word…"), "{name}");
        let unbroken = "x".repeat(150);
        let name = thread_name(&unbroken);
        assert_eq!(name.chars().count(), THREAD_NAME_MAX);
        let exact = "é".repeat(THREAD_NAME_MAX);
        assert_eq!(thread_name(&exact), exact);
    }
}
