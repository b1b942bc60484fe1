//! Which gateway shards this process runs, and so which servers it is responsible for.
//!
//! Discord splits a bot's servers over shards: server -> shard is `(server_id >> 22) % total`,
//! and DMs arrive on shard 0. A small bot runs every shard in one process (`SHARDS=auto`, the
//! default: Discord recommends the count); a large one runs shard ranges in several processes
//! over one PostgreSQL database (`SHARD_RANGE=4-7` with `SHARD_TOTAL=16`). Each process answers
//! what Discord routes to its shards and posts the insight of the week only for its own shards'
//! servers. If two processes were misconfigured with overlapping ranges, the per-(server, week)
//! claim in the database lets one claim each week, and a resend by the other (which sees the
//! claim unconfirmed) carries the claim's nonce, which Discord drops: still one post.

use std::fmt;

/// The shards of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shards {
    /// Every shard, as many as Discord recommends (`GET /gateway/bot`), in this process.
    #[default]
    Auto,
    /// Every one of `n` shards, in this process.
    All(u32),
    /// Shards `first..=last` of `total`; the other shards run in other processes.
    Range { first: u32, last: u32, total: u32 },
}

/// The shard of a server among `total` shards.
pub fn shard_of(guild_id: u64, total: u32) -> u32 {
    ((guild_id >> 22) % u64::from(total.max(1))) as u32
}

impl Shards {
    /// Whether this process is responsible for `guild_id` (its weekly post, say).
    pub fn owns(&self, guild_id: u64) -> bool {
        match *self {
            Shards::Auto | Shards::All(_) => true,
            Shards::Range { first, last, total } => {
                (first..=last).contains(&shard_of(guild_id, total))
            }
        }
    }

    /// Whether other processes run the other shards (a range that is not every shard).
    pub fn is_partial(&self) -> bool {
        matches!(*self, Shards::Range { first, last, total } if first > 0 || last + 1 < total)
    }
}

impl fmt::Display for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shards::Auto => f.write_str("all shards (count recommended by Discord)"),
            Shards::All(n) => write!(f, "all {n} shards"),
            Shards::Range { first, last, total } => write!(f, "shards {first}-{last} of {total}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_belongs_to_the_shard_of_its_id_timestamp() {
        // Discord's formula: (id >> 22) % total.
        assert_eq!(
            shard_of(41_771_983_423_143_937, 2),
            ((41_771_983_423_143_937u64 >> 22) % 2) as u32
        );
        assert_eq!(shard_of(5 << 22, 4), 1);
        assert_eq!(shard_of(u64::MAX, 1), 0);
        assert_eq!(shard_of(7 << 22, 0), 0, "a total of 0 is treated as 1");
    }

    #[test]
    fn a_range_owns_exactly_its_shards_servers() {
        let range = Shards::Range {
            first: 1,
            last: 2,
            total: 4,
        };
        let owned: Vec<u64> = (0..8u64).filter(|s| range.owns(s << 22)).collect();
        assert_eq!(owned, [1, 2, 5, 6]);
        assert!(range.is_partial());
        assert!(Shards::Auto.owns(123) && Shards::All(3).owns(123));
        assert!(!Shards::Range {
            first: 0,
            last: 3,
            total: 4
        }
        .is_partial());
        assert_eq!(range.to_string(), "shards 1-2 of 4");
    }
}
