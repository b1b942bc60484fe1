//! The state store: each server's feeds (scheduled posts, one per channel), their rotation state
//! and post log, and everything else a server owns.
//!
//! What it guarantees, and how:
//! - **Never twice for the same period.** A post is *claimed* before anything is sent:
//!   [`Backend::claim`] inserts a `feed_post` row keyed by (feed, period) in the same transaction
//!   that advances the feed's rotation. The primary key makes a second row for that period
//!   impossible whichever code path asks (schedule, `/weekly post-now`, recovery, `/weekly skip`)
//!   and however they race, and the rotation advances only when the row was inserted.
//! - **Never skipped by a restart.** A claim without a message id ([`Backend::unconfirmed_posts`])
//!   is a post that may or may not have gone out; it keeps its insight and its nonce
//!   ([`post_nonce`]), so the poster can look for it or resend it with Discord's nonce dedup.
//! - **Never lost or silently replaced.** A database that is not insight-bot's, is damaged, or
//!   was written by a newer version stops start-up with an error naming it; it is never recreated
//!   or overwritten. Every write is one transaction.
//! - **Never blocks the async runtime.** A [`Backend`] is synchronous (a transaction is a plain
//!   scope, with no `.await` inside it); [`Store::call`] runs each call on tokio's blocking pool,
//!   so a write waiting seconds for a lock held by another process delays that one caller, not
//!   the bot's answers.
//!
//! Posting protocol (the poster's side): `claim` → `record_attempt(.., None, None)` before each
//! send → `confirm_post` with the message id, or `record_attempt(.., Some(error), Some(retry_at))`
//! when the sends of this wake failed, or `mark_failing` + `release_claim` when the channel is
//! gone for good (403/404).
//!
//! What a server owns besides its feeds (schema version 2): its own insights
//! ([`ServerInsight`], saved all or nothing under a per-server limit), its settings
//! ([`ServerSettings`]: which insights it sees, its curator role, its review channel, the shipped
//! insights it hid, and since schema version 5 the built-in packs it turned off), its members'
//! suggestions ([`Suggestion`], pending until a curator decides,
//! with per-member and per-server limits on what may wait), and how often each insight was shown.
//! Every check of a limit happens in the transaction that writes, holding the server's write lock
//! (SQLite's single writer, a per-server advisory lock on PostgreSQL), so concurrent calls from
//! several processes cannot together exceed it.
//!
//! What the bot learns from its answers (schema version 3), kept as little and as briefly as
//! serves the usage reports and the gaps:
//! - **Answers** ([`Backend::record_answers`]): one row per answer given, with its server (0 for
//!   a direct message), its day, the insight given or "no close match", and no author and no
//!   message. Deleted after [`ANSWER_RETENTION_DAYS`] by [`Backend::prune`], which the bot runs
//!   daily.
//! - **Votes** ([`Backend::record_vote`]): one per voter per answer, the voter an opaque key the
//!   bot derives from the person and the answer with the database's [`Backend::secret`], so no
//!   two answers link to one person. Taken for [`VOTE_WINDOW_DAYS`] after the answer; then the
//!   keys are deleted (the counts, and the answer's number of "not helpful" votes, stay), so
//!   nothing is left that could be tested against a person's id.
//! - **Daily totals** per (server, day, insight): answers, no close match, showings
//!   ([`Backend::record_shown`]), helpful and not helpful votes, each updated in the transaction
//!   that records what it counts. [`Backend::usage_stats`] reads only these, so a report over a
//!   year costs the same however many answers there were; they are never pruned, so reports over
//!   older periods still add up after the answers are gone.
//! - **Gap questions**: what was asked is kept only in a server that turned gaps on
//!   ([`Backend::set_gaps`]; never for a direct message), only while it is or may become a gap:
//!   cleared the next day unless it had no close match or a "not helpful" vote, and after
//!   [`GAP_RETENTION_DAYS`] in any case. Turning gaps off clears every question of the server at
//!   once.
//!
//! What a server can make the store keep is bounded (schema version 4):
//! - **Kept questions**: at most [`KEPT_QUESTIONS_PER_SERVER`] per server, the oldest cleared
//!   first ([`Backend::record_answers`]). Each keeps its sentence vector, the one answering
//!   computed (8-bit, with the model's fingerprint, like a server's insights), so listing gaps
//!   runs no model; the vector is always cleared with its text.
//! - **Decided suggestions** are deleted [`DECIDED_SUGGESTION_RETENTION_DAYS`] after the decision
//!   ([`Backend::prune`]); pending ones are bounded by the per-member and per-server limits.
//! - **Deleted text is in no file** on SQLite: see [`sqlite`] (`secure_delete`, and a checkpoint
//!   after every deletion of what people wrote). On PostgreSQL the row is deleted and its bytes
//!   go when `VACUUM` reuses the space.
//!
//! Backends: [`sqlite`] (the default, one file) and [`postgres`] (one database shared by several
//! processes, for a bot run as shard ranges). [`Store::connect`] picks one from `DATABASE_URL`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::config::DatabaseUrl;
use crate::insights::Insight;
use crate::stats::{DayAnswers, InsightUse};
use crate::weekly::feed::FeedId;
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{Period, Schedule, Slot};

pub(crate) mod feed_row;
pub mod postgres;
pub mod sqlite;
mod timed;

pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;

const RESTORE_ADVICE: &str = "It was left unchanged: restore it from a backup, or move it aside \
     to start with an empty database (every server's feeds and post history would then \
     be lost).";

/// Why the store could not do what was asked. Every variant about the database names its file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory {} for the database: {source}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot read the database {}: {source}; check that the file and its directory are readable \
         and writable by the bot's user",
        .path.display()
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot open the database {}: {source}; check that the file and its directory are readable \
         and writable by the bot's user",
        .path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Not a SQLite file, or a damaged one. Never repaired or recreated automatically.
    #[error("the database {} is damaged or is not a database ({detail}). {RESTORE_ADVICE}", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// A healthy SQLite file that belongs to another program.
    #[error(
        "{} is a SQLite database of another program ({detail}); insight-bot leaves it unchanged: \
         set DATABASE_URL to another file",
        .path.display()
    )]
    NotOurs { path: PathBuf, detail: String },
    #[error(
        "the database {database} was written by a newer insight-bot (schema version {found}; this \
         version knows up to {known}): run the newer insight-bot, or restore a backup made by this \
         version"
    )]
    TooNew {
        /// The file, or the PostgreSQL URL without its password.
        database: String,
        found: i64,
        known: i64,
    },
    #[error(
        "cannot switch the database {} to write-ahead logging (the journal mode stays {mode:?}); \
         keep the file on a local file system",
        .path.display()
    )]
    NoWal { path: PathBuf, mode: String },
    #[error("cannot update the database {} to schema version {version}: {source}", .path.display())]
    Migrate {
        path: PathBuf,
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row that no longer makes sense (a hand edit, a zone removed from tzdata).
    #[error("database {database}: the {table} row of server {guild_id} is invalid: {detail}")]
    BadRow {
        database: String,
        table: &'static str,
        guild_id: u64,
        detail: String,
    },
    /// `record_attempt` / `confirm_post` for a period that was never claimed (or was released).
    #[error("database {database}: feed {feed} has no post claimed for {period}")]
    NoClaim {
        database: String,
        feed: FeedId,
        period: Period,
    },
    /// The PostgreSQL server could not be reached or refused the login. `database` is the URL
    /// without its password, and `detail` never contains it either.
    #[error(
        "cannot connect to the PostgreSQL database {database}: {detail}; check that the server is \
         running and that DATABASE_URL names the right host, port, database, user and password"
    )]
    PgConnect { database: String, detail: String },
    /// A PostgreSQL schema with tables but no insight-bot mark: another program's. Never modified.
    #[error(
        "the PostgreSQL database {database} already has tables of another program in schema \
         {schema:?} ({detail}); insight-bot leaves them unchanged: set DATABASE_URL to an empty \
         database, or give insight-bot its own schema with ?options=-csearch_path%3Dinsight_bot"
    )]
    PgNotOurs {
        database: String,
        schema: String,
        detail: String,
    },
    #[error(
        "cannot update the PostgreSQL database {database} to schema version {version}: {detail}"
    )]
    PgMigrate {
        database: String,
        version: i64,
        detail: String,
    },
    /// A query failed (the server went away, a timeout, a constraint). The call can be retried.
    #[error("PostgreSQL database {database}: {detail}")]
    Postgres { database: String, detail: String },
    /// A write refused because it would exceed one of a server's limits. Nothing was changed.
    #[error("{}", .what.describe(*.limit))]
    Limit { what: Limit, limit: usize },
    #[error("{period} is not a period of the calendar")]
    InvalidPeriod { period: Period },
    /// A store call panicked or was cancelled on the blocking pool.
    #[error("the database call did not finish: {0}")]
    Interrupted(String),
}

/// Which of a server's limits a write would exceed ([`StoreError::Limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// How many insights a server may own ([`Backend::save_server_insights`], approvals).
    ServerInsights,
    /// How many suggestions one member may have pending in a server.
    AuthorPendingSuggestions,
    /// How many suggestions a server may have pending.
    ServerPendingSuggestions,
    /// How many feeds (scheduled posts, one per channel) a server may have on.
    Feeds,
    /// How many feeds, on or off, a server may keep.
    KeptFeeds,
}

impl Limit {
    /// What the refusal says, with the limit's value.
    fn describe(self, limit: usize) -> String {
        match self {
            Limit::ServerInsights => format!(
                "a server may own at most {limit} insights, and this would make more; nothing was \
                 saved"
            ),
            Limit::AuthorPendingSuggestions => format!(
                "a member may have at most {limit} suggestions waiting for review; nothing was \
                 added"
            ),
            Limit::ServerPendingSuggestions => format!(
                "a server may have at most {limit} suggestions waiting for review; nothing was \
                 added"
            ),
            Limit::Feeds => format!(
                "a server may have at most {limit} feeds on; nothing was changed: turn one off \
                 with `/weekly off channel:` first"
            ),
            Limit::KeptFeeds => format!(
                "a server may keep at most {limit} feeds, on or off; nothing was added: use the \
                 channel of a feed that is off instead (`/weekly list` shows them)"
            ),
        }
    }
}

/// What an admin chooses for a feed with `/weekly set`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSpec {
    pub schedule: Schedule,
    /// The feed draws only from insights with this topic or from this pack (checked when set);
    /// `None` for the server's whole collection.
    pub topic: Option<String>,
    /// A discussion thread under each post (not for a forum, where each post is a thread).
    pub thread: bool,
    /// The one role each post mentions.
    pub ping_role: Option<u64>,
    /// The channel is a forum: each post is a forum post titled by its insight.
    pub forum: bool,
}

impl FeedSpec {
    /// A feed of `schedule` drawing from the whole collection, with no thread and no ping, in a
    /// text channel: what a server's one weekly schedule was before feeds.
    pub fn plain(schedule: Schedule) -> Self {
        FeedSpec {
            schedule,
            topic: None,
            thread: false,
            ping_role: None,
            forum: false,
        }
    }
}

/// A paused feed: no post until `resume`, or none scheduled before a local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    Indefinitely,
    /// Slots on this local date or later post again, with no `resume` needed.
    Until(NaiveDate),
}

/// One feed's settings: a channel's scheduled posts.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSettings {
    pub feed: FeedId,
    pub schedule: Schedule,
    pub topic: Option<String>,
    pub thread: bool,
    pub ping_role: Option<u64>,
    pub forum: bool,
    pub enabled: bool,
    pub pause: Option<Pause>,
    /// When this feed was (re)set or resumed: slots before this instant are never posted (no
    /// surprise post for last Monday when an admin sets the feed on a Tuesday).
    pub active_since: DateTime<Utc>,
    /// Set when the channel answered 403/404: the feed is paused until an admin runs
    /// /weekly set again.
    pub failure: Option<Failure>,
    pub updated_at: DateTime<Utc>,
}

impl FeedSettings {
    /// What `/weekly set` chose.
    pub fn spec(&self) -> FeedSpec {
        FeedSpec {
            schedule: self.schedule,
            topic: self.topic.clone(),
            thread: self.thread,
            ping_role: self.ping_role,
            forum: self.forum,
        }
    }

    /// Whether the poster posts for this feed at all (on, not failing, not paused for good).
    pub fn is_active(&self) -> bool {
        self.enabled && self.failure.is_none() && self.pause != Some(Pause::Indefinitely)
    }

    /// Whether the feed is paused at `now` (indefinitely, or until a date after `now`'s local
    /// date in the feed's zone).
    pub fn paused_on(&self, now: DateTime<Utc>) -> bool {
        match self.pause {
            None => false,
            Some(Pause::Indefinitely) => true,
            Some(Pause::Until(until)) => self.schedule.local_date(now) < until,
        }
    }

    /// Whether the slot is one this feed posts: active, at or after `active_since`, and not
    /// before the end of a pause.
    pub fn posts(&self, slot: &Slot) -> bool {
        self.is_active()
            && slot.at >= self.active_since
            && !matches!(self.pause, Some(Pause::Until(until)) if slot.date < until)
    }

    /// The first slot after `now` this feed would post (ignoring claims: a `skip` or
    /// `post-now` may have taken it), `None` when the feed is not active.
    pub fn next_slot_after(&self, now: DateTime<Utc>) -> Option<Slot> {
        if !self.is_active() {
            return None;
        }
        let from = now.max(self.active_since) + chrono::Duration::seconds(1);
        let next = self.schedule.next_slot_at_or_after(from);
        Some(match self.pause {
            Some(Pause::Until(until)) if next.date < until => {
                self.schedule.first_slot_on_or_after(until)
            }
            _ => next,
        })
    }
}

/// Why and when a feed's posts were paused by Discord.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What asked for a post. Stored as text (`schedule`, `post_now`, `skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostSource {
    Schedule,
    PostNow,
    /// `/weekly skip`: the period is taken without a post, and the rotation does not advance.
    Skip,
}

impl PostSource {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PostSource::Schedule => "schedule",
            PostSource::PostNow => "post_now",
            PostSource::Skip => "skip",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "schedule" => Some(PostSource::Schedule),
            "post_now" => Some(PostSource::PostNow),
            "skip" => Some(PostSource::Skip),
            _ => None,
        }
    }
}

/// One feed's post for one period: claimed first, confirmed with the message id once sent. A
/// skipped period is a record too ([`PostSource::Skip`], no insight, never sent).
#[derive(Debug, Clone, PartialEq)]
pub struct PostRecord {
    pub feed: FeedId,
    pub period: Period,
    /// Where it is sent: the feed's channel (a post from before feeds, schema version 7, keeps
    /// the channel it went to).
    pub channel_id: u64,
    /// Empty for a skipped period.
    pub insight_id: String,
    /// Sent as the message nonce (with `enforce_nonce`), so Discord drops a resend of the same
    /// post within its dedup window. See [`post_nonce`].
    pub nonce: String,
    pub source: PostSource,
    pub claimed_at: DateTime<Utc>,
    /// Sends started (see [`Store::record_attempt`]). Above 0 on an unconfirmed post means a
    /// send may have reached Discord.
    pub attempts: u32,
    pub retry_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub message_id: Option<u64>,
    pub posted_at: Option<DateTime<Utc>>,
    /// A discussion thread is wanted under this post (the feed asked for one when it was
    /// claimed).
    pub thread_wanted: bool,
    /// The thread, once created (on Discord a message's thread has the message's id).
    pub thread_id: Option<u64>,
    /// Why the last try to create the thread failed.
    pub thread_error: Option<String>,
}

impl PostRecord {
    /// Whether Discord accepted the message (its id is recorded).
    pub fn is_confirmed(&self) -> bool {
        self.message_id.is_some()
    }

    /// A confirmed post whose thread is still to be created.
    pub fn awaits_thread(&self) -> bool {
        self.thread_wanted && self.thread_id.is_none() && self.is_confirmed()
    }
}

/// The outcome of [`Store::claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This call claimed the week: the caller is the one that sends.
    Claimed(PostRecord),
    /// The week was already claimed (confirmed or not); nothing was changed.
    AlreadyClaimed(PostRecord),
}

impl Claim {
    /// The post record, whoever claimed it.
    pub fn record(&self) -> &PostRecord {
        match self {
            Claim::Claimed(r) | Claim::AlreadyClaimed(r) => r,
        }
    }

    /// The post record, whoever claimed it.
    pub fn into_record(self) -> PostRecord {
        match self {
            Claim::Claimed(r) | Claim::AlreadyClaimed(r) => r,
        }
    }
}

/// An insight a server owns: written by its curators or approved from a member's suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInsight {
    pub guild_id: u64,
    pub insight: Insight,
    /// The member who wrote it. Kept when the insight is replaced, as is `created_at`.
    pub created_by: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The insight's embedded document vectors, when computed.
    pub vectors: Option<StoredVectors>,
}

/// Embedded vectors as stored: bytes the store does not interpret, and the fingerprint of the
/// embedding model that computed them (vectors of another model must be recomputed).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredVectors {
    pub fingerprint: u64,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for StoredVectors {
    /// The length, not the bytes: test failures and logs stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredVectors")
            .field("fingerprint", &format_args!("{:#018x}", self.fingerprint))
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .finish()
    }
}

/// What [`Backend::save_server_insights`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaveOutcome {
    /// Insights the server did not have before.
    pub added: usize,
    /// Insights that replaced one with the same id.
    pub replaced: usize,
}

/// Which insights a server sees. Stored as text (`all`, `ours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsightSource {
    /// The shipped collection (less the hidden ones) and the server's own.
    #[default]
    All,
    /// Only the server's own insights.
    Ours,
}

impl InsightSource {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            InsightSource::All => "all",
            InsightSource::Ours => "ours",
        }
    }

    /// The stored form back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(InsightSource::All),
            "ours" => Some(InsightSource::Ours),
            _ => None,
        }
    }
}

/// A server's insight settings; [`Default`] is what a server that never changed them has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSettings {
    pub source: InsightSource,
    /// Members with this role may manage the server's insights and review suggestions.
    pub curator_role: Option<u64>,
    /// Where suggestions are posted for review.
    pub review_channel: Option<u64>,
    /// Shipped insights the server hid, by id, sorted.
    pub hidden: Vec<String>,
    /// Built-in packs the server turned off (`/insights packs`), by id, sorted. Every pack is on
    /// unless named here, so a pack shipped later reaches every server.
    pub packs_off: Vec<String>,
    /// Whether the questions behind gaps are kept (`/insights gaps on`); off by default.
    pub gaps: bool,
}

/// Where a suggestion stands. Stored as text (`pending`, `approved`, `rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuggestionStatus {
    Pending,
    Approved,
    Rejected,
}

impl SuggestionStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Approved => "approved",
            SuggestionStatus::Rejected => "rejected",
        }
    }

    /// The stored form back; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(SuggestionStatus::Pending),
            "approved" => Some(SuggestionStatus::Approved),
            "rejected" => Some(SuggestionStatus::Rejected),
            _ => None,
        }
    }
}

/// A member's suggestion, as [`Backend::add_suggestion`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuggestion {
    pub guild_id: u64,
    pub author_id: u64,
    pub title: String,
    pub text: String,
    /// Why the member thinks the server needs it.
    pub why: Option<String>,
    pub now: DateTime<Utc>,
}

/// A member's suggestion and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// Unique in the database (not only in the server), never reused.
    pub id: u64,
    pub guild_id: u64,
    pub author_id: u64,
    pub title: String,
    pub text: String,
    pub why: Option<String>,
    pub status: SuggestionStatus,
    /// Why it was rejected, when the curator said.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When and by whom it was approved or rejected; `None` while pending.
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<u64>,
    /// The server insight it became, when approved.
    pub insight_id: Option<String>,
    /// The message posted for it in the review channel, if any.
    pub review_message: Option<ReviewMessage>,
}

/// A message in a server's review channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewMessage {
    pub channel_id: u64,
    pub message_id: u64,
}

/// A curator's decision on a pending suggestion ([`Backend::decide_suggestion`]).
// `Approve` is much larger than `Reject`, but a decision is made once per click and never
// stored in bulk: boxing the insight would only make callers' code noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Saves `insight` as one of the server's (under `limit`, as
    /// [`Backend::save_server_insights`] does) and marks the suggestion approved with its id.
    Approve {
        insight: ServerInsight,
        limit: usize,
    },
    Reject {
        reason: Option<String>,
    },
}

/// The message nonce of a feed's post for `period`: deterministic, so every resend of the same
/// post carries the same nonce, and at most 23 characters (Discord allows 25).
///
/// `iw` + the ISO year (4 digits) + the week (2 digits), or `id` + the date (8 digits), + the
/// channel id in base 36 (at most 13 digits for `u64::MAX`; a channel id is unique across
/// Discord, so it names the feed). The fixed-width prefix makes it unique per (feed, period) for
/// years 0..=9999; Discord only compares nonces within minutes, so wrapping outside that is
/// harmless.
pub fn post_nonce(feed: FeedId, period: Period) -> String {
    let channel = base36(feed.channel_id);
    match period {
        Period::Week(week) => format!(
            "iw{:04}{:02}{channel}",
            week.year.rem_euclid(10_000),
            week.week % 100,
        ),
        Period::Day(day) => format!(
            "id{:04}{:02}{:02}{channel}",
            day.year().rem_euclid(10_000),
            day.month(),
            day.day()
        ),
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(13);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// One database: every operation of the store, synchronous. Implementations keep the guarantees
/// in the module documentation; the conformance tests check them.
pub trait Backend: Send + Sync + 'static {
    /// Where the data lives, for messages (a file path, a URL without its password).
    fn describe(&self) -> String;

    /// Creates or changes the feed of `feed`'s channel: enabled, unpaused, any failure cleared,
    /// active from `now` (so no slot before `now` is posted). [`StoreError::Limit`], changing
    /// nothing, when the server would have more than
    /// [`MAX_FEEDS_PER_SERVER`](crate::weekly::feed::MAX_FEEDS_PER_SERVER) feeds on
    /// ([`Limit::Feeds`]), or keep more than
    /// [`MAX_KEPT_FEEDS_PER_SERVER`](crate::weekly::feed::MAX_KEPT_FEEDS_PER_SERVER) on or off
    /// ([`Limit::KeptFeeds`]). A stored row that no longer parses is replaced.
    /// Changing a feed keeps its rotation and post log. Returns the stored settings.
    fn set_feed(
        &self,
        feed: FeedId,
        spec: &FeedSpec,
        now: DateTime<Utc>,
    ) -> Result<FeedSettings, StoreError>;

    /// Turns a feed off (the settings are kept for `/weekly list`). `false` when there was
    /// nothing enabled.
    fn disable_feed(&self, feed: FeedId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Pauses a feed (`Some`), or resumes a paused one (`None`: unpaused and active from `now`,
    /// so a slot missed while paused is not posted late). `false` when nothing changed: no such
    /// feed, or a resume of a feed that was not paused (whose `active_since` is left alone, so a
    /// slot due right now still posts).
    fn set_pause(
        &self,
        feed: FeedId,
        pause: Option<Pause>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// A feed's settings, enabled or not. A stored row that no longer parses is
    /// [`StoreError::BadRow`] (running `/weekly set` again replaces it).
    fn feed(&self, feed: FeedId) -> Result<Option<FeedSettings>, StoreError>;

    /// Every feed of a server, enabled or not, ordered by channel id. A row that no longer
    /// parses is [`StoreError::BadRow`].
    fn feeds(&self, guild_id: u64) -> Result<Vec<FeedSettings>, StoreError>;

    /// The scheduler's input: every feed that is enabled, not paused by a failure and not
    /// paused indefinitely (a pause until a date is the poster's to respect), ordered by feed,
    /// in one query. A row that no longer parses is logged and skipped, so one broken feed does
    /// not stop the others ([`Backend::feed`] reports it).
    fn active_feeds(&self) -> Result<Vec<FeedSettings>, StoreError>;

    /// Pauses a feed because its channel is unusable (403/404, deleted), recording why, until
    /// an admin runs `/weekly set` again. Nothing happens for a feed that does not exist.
    fn mark_failing(
        &self,
        feed: FeedId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Claims `period` for `feed`'s post, in one transaction:
    /// - if the period already has a post (confirmed or not, or skipped): `AlreadyClaimed` with
    ///   that record, and nothing changes (the rotation does not advance);
    /// - else the feed's rotation advances over `insight_ids` and a post row is inserted (no
    ///   attempts, no message yet, nonce [`post_nonce`], a thread wanted if the feed asks for
    ///   one): `Claimed`.
    ///
    /// `None` when the collection is empty and the period is unclaimed.
    #[allow(clippy::too_many_arguments)] // each is a plain value the poster already holds
    fn claim(
        &self,
        feed: FeedId,
        period: Period,
        insight_ids: &[&str],
        source: PostSource,
        rng: &mut dyn rand::RngCore,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError>;

    /// Marks `period` as skipped: a post record with [`PostSource::Skip`] and no insight, so
    /// no path posts it, and the rotation does not advance. `AlreadyClaimed` when the period
    /// already has a post (or is already skipped).
    fn skip(&self, feed: FeedId, period: Period, now: DateTime<Utc>) -> Result<Claim, StoreError>;

    /// Records a send attempt of a claimed, unconfirmed post and returns the updated record
    /// ([`StoreError::NoClaim`] for a confirmed one: nothing may be sent for it again).
    ///
    /// Call it twice around sends: *before* each send with `error: None` — this counts the
    /// attempt (`attempts += 1`, so a crash mid-send still shows that a send may have gone out)
    /// and clears `last_error` and `retry_at` — and *after* failed sends with the error and when
    /// to retry, which records them without counting another attempt. So `attempts` is the
    /// number of sends started, whatever the caller's retry loop looks like.
    fn record_attempt(
        &self,
        feed: FeedId,
        period: Period,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError>;

    /// Confirms a claimed post with the id of the message Discord created. Idempotent: a post
    /// already confirmed keeps its first message id (a different one is logged, not stored).
    fn confirm_post(
        &self,
        feed: FeedId,
        period: Period,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Records the thread under a confirmed post (`Ok(thread id)`), or why creating it failed
    /// (`Err(reason)`, kept for `/weekly list`; the thread is tried again). A recorded thread
    /// is never replaced.
    fn record_thread(
        &self,
        feed: FeedId,
        period: Period,
        outcome: Result<u64, &str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Confirmed posts since `since` whose thread is wanted and not created yet, oldest first:
    /// what the poster creates threads for.
    fn posts_awaiting_thread(&self, since: DateTime<Utc>) -> Result<Vec<PostRecord>, StoreError>;

    /// Deletes an *unconfirmed* claim, so the period can be claimed again (used when a send
    /// failed permanently). A confirmed post or a skip is never deleted; a missing one is not an
    /// error.
    fn release_claim(&self, feed: FeedId, period: Period) -> Result<(), StoreError>;

    /// A feed's post for `period`, confirmed or not, or its skip.
    fn post(&self, feed: FeedId, period: Period) -> Result<Option<PostRecord>, StoreError>;

    /// A feed's latest confirmed post (by period).
    fn last_post(&self, feed: FeedId) -> Result<Option<PostRecord>, StoreError>;

    /// Every (feed, period) that has a post (claimed, confirmed or skipped) in a period that
    /// starts on local date `since` or later: what the poster checks its due slots against, in
    /// one query instead of one per feed.
    fn claimed_slots_since(
        &self,
        since: NaiveDate,
    ) -> Result<HashSet<(FeedId, Period)>, StoreError>;

    /// Every claim without a message id (skips aside), all feeds, oldest period first: what
    /// start-up recovery must resolve. A row that no longer parses is logged and skipped.
    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError>;

    /// A feed's rotation state (the default state when it never posted).
    fn rotation(&self, feed: FeedId) -> Result<RotationState, StoreError>;

    // ---- a server's own insights ----

    /// A server's own insights, ordered by id (code point order). A row that no longer parses
    /// is [`StoreError::BadRow`].
    fn server_insights(&self, guild_id: u64) -> Result<Vec<ServerInsight>, StoreError>;

    /// Every server's own insights, ordered by server then id, in one query: what start-up
    /// loads. A row that no longer parses is logged and skipped, so one broken row does not stop
    /// every server's insights ([`Backend::server_insights`] reports it for that server).
    fn all_server_insights(&self) -> Result<Vec<ServerInsight>, StoreError>;

    /// How many insights a server owns.
    fn server_insight_count(&self, guild_id: u64) -> Result<usize, StoreError>;

    /// Saves `insights` as `guild_id`'s (their own `guild_id` fields are not consulted), in one
    /// transaction, all or nothing:
    /// - an insight whose id the server already has replaces it, keeping its `created_at` and
    ///   `created_by` and taking the new `updated_at`; the others are added;
    /// - if the server would then own more than `limit` insights, nothing changes and the error
    ///   is [`StoreError::Limit`] ([`Limit::ServerInsights`]). Replacing does not count twice:
    ///   what is checked is the number the server would own.
    ///
    /// An id given twice is saved twice, the later winning (counted as added, then replaced).
    fn save_server_insights(
        &self,
        guild_id: u64,
        insights: &[ServerInsight],
        limit: usize,
    ) -> Result<SaveOutcome, StoreError>;

    /// Deletes one of a server's insights. `false` when it had none with that id.
    fn delete_server_insight(&self, guild_id: u64, insight_id: &str) -> Result<bool, StoreError>;

    // ---- a server's settings ----

    /// A server's insight settings; the defaults ([`ServerSettings::default`]) when it never
    /// changed them. A stored row that no longer parses is [`StoreError::BadRow`].
    fn server_settings(&self, guild_id: u64) -> Result<ServerSettings, StoreError>;

    /// Sets which insights a server sees.
    fn set_insight_source(&self, guild_id: u64, source: InsightSource) -> Result<(), StoreError>;

    /// Sets (or with `None` clears) a server's curator role.
    fn set_curator_role(&self, guild_id: u64, role_id: Option<u64>) -> Result<(), StoreError>;

    /// Sets (or with `None` clears) a server's review channel.
    fn set_review_channel(&self, guild_id: u64, channel_id: Option<u64>) -> Result<(), StoreError>;

    /// Hides (`hidden: true`) or shows again a shipped insight in a server. `true` when this
    /// changed something, `false` when it was already so.
    fn set_hidden(&self, guild_id: u64, insight_id: &str, hidden: bool)
        -> Result<bool, StoreError>;

    /// Turns a built-in pack off (`on: false`) or on again in a server (schema version 5). `true`
    /// when this changed something, `false` when it was already so. Any id is stored as given:
    /// which packs exist is the program's knowledge, not the store's.
    fn set_pack_on(&self, guild_id: u64, pack_id: &str, on: bool) -> Result<bool, StoreError>;

    // ---- suggestions ----

    /// Adds a member's suggestion, pending, and returns it with its new id. Refused with
    /// [`StoreError::Limit`], adding nothing, when its author already has
    /// `per_author_pending_limit` suggestions pending in that server
    /// ([`Limit::AuthorPendingSuggestions`], checked first) or the server has
    /// `per_server_pending_limit` pending ([`Limit::ServerPendingSuggestions`]). The check and the
    /// insert are one transaction holding the server's write lock, so concurrent adds, from any
    /// number of processes, never exceed either limit.
    fn add_suggestion(
        &self,
        suggestion: NewSuggestion,
        per_author_pending_limit: usize,
        per_server_pending_limit: usize,
    ) -> Result<Suggestion, StoreError>;

    /// A server's suggestion by id, whatever its status; `None` when the server has no suggestion
    /// with that id (another server's is never returned).
    fn suggestion(&self, guild_id: u64, id: u64) -> Result<Option<Suggestion>, StoreError>;

    /// The pending suggestion a server has waited longest for (by `created_at`, then id).
    fn oldest_pending_suggestion(&self, guild_id: u64) -> Result<Option<Suggestion>, StoreError>;

    /// How many suggestions a server has pending.
    fn pending_suggestion_count(&self, guild_id: u64) -> Result<usize, StoreError>;

    /// Decides a *pending* suggestion of `guild_id`, in one transaction, and returns it as
    /// decided. `Ok(None)`, changing nothing, when there is no such suggestion or it was already
    /// decided (a second click on a review button, or two curators at once: one of them wins).
    ///
    /// [`Decision::Approve`] saves the insight as [`Backend::save_server_insights`] does (the
    /// suggestion records its id) in the same transaction: if the save is refused (its limit, a
    /// constraint) the error is returned and nothing changes, the suggestion stays pending.
    /// [`Decision::Reject`] records the reason, if any.
    fn decide_suggestion(
        &self,
        guild_id: u64,
        id: u64,
        decision: Decision,
        decided_by: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, StoreError>;

    /// Records the review message posted for a suggestion (replacing an earlier one). `false`
    /// when the server has no suggestion with that id.
    fn set_suggestion_review_message(
        &self,
        guild_id: u64,
        id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<bool, StoreError>;

    // ---- how often insights were shown ----

    /// Counts one more showing of an insight in a server on `day`: in the all-time count
    /// ([`Backend::shown_counts`]) and in that day's totals ([`Backend::usage_stats`]).
    fn record_shown(
        &self,
        guild_id: u64,
        insight_id: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError>;

    /// How many times each insight was shown in a server (insights never shown are absent).
    fn shown_counts(&self, guild_id: u64) -> Result<HashMap<String, u64>, StoreError>;

    // ---- answers, votes, usage and gaps (schema version 3) ----

    /// Records answers (one transaction for the batch) and adds them to the daily totals. Returns
    /// each answer's id ([`NewAnswer::id`]), in order. A question (and its vector) is kept only
    /// when the answer's server has gaps on at the time of writing; it is dropped otherwise. A
    /// server that would then keep more than [`KEPT_QUESTIONS_PER_SERVER`] questions has its
    /// oldest cleared (by day; within one day in no set order, since an answer records no time)
    /// down to [`KEPT_QUESTIONS_TRIMMED_TO`], in the same transaction.
    fn record_answers(&self, answers: &[NewAnswer]) -> Result<Vec<u64>, StoreError>;

    /// One voter's vote on an answer, on `today`. `voter` is an opaque key the caller derives
    /// from the person and the answer (so it links no two answers to one person); the store keeps
    /// it only while the vote may change, [`VOTE_WINDOW_DAYS`] after the answer's day, and
    /// answers [`VoteOutcome::Closed`] after that. The vote counts in the totals of the answer's
    /// day, and a changed vote moves its count; the answer also keeps how many "not helpful"
    /// votes it has (what makes it a gap), after its voter keys are gone.
    fn record_vote(
        &self,
        answer_id: u64,
        voter: &[u8; 32],
        vote: Vote,
        today: NaiveDate,
    ) -> Result<VoteOutcome, StoreError>;

    /// Answers per day and showings and votes per insight, from `since` to `until` inclusive.
    fn usage_stats(
        &self,
        scope: UsageScope,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<UsageStats, StoreError>;

    /// Turns keeping gap questions on or off for a server. Off deletes every kept question of the
    /// server in the same transaction; returns how many.
    fn set_gaps(&self, guild_id: u64, on: bool) -> Result<u64, StoreError>;

    /// A server's kept gaps since `since`, newest first, at most `limit`: answers whose question
    /// is kept and that had no close match or carry a "not helpful" vote.
    fn gaps(&self, guild_id: u64, since: NaiveDate, limit: usize) -> Result<Vec<Gap>, StoreError>;

    /// Stores the vectors of kept questions of `guild_id` that had none (or another model's),
    /// by answer id. An answer of another server, or whose question is no longer kept, is left
    /// as it is (no vector without its question). Returns how many were stored.
    fn set_gap_vectors(
        &self,
        guild_id: u64,
        vectors: &[(u64, StoredVectors)],
    ) -> Result<u64, StoreError>;

    /// Housekeeping, run daily: deletes answers (and their votes) from before `today` −
    /// [`ANSWER_RETENTION_DAYS`], deletes the voter keys of answers from before `today` −
    /// [`VOTE_WINDOW_DAYS`], clears gap questions from before `today` −
    /// [`GAP_RETENTION_DAYS`], clears the questions of answers from before `today` that are
    /// not gaps (a question is kept one day for a "not helpful" vote to make it one), and deletes
    /// suggestions decided before `today` − [`DECIDED_SUGGESTION_RETENTION_DAYS`] (pending ones
    /// stay).
    fn prune(&self, today: NaiveDate) -> Result<Pruned, StoreError>;

    /// A random 32-byte secret made on first use and stable afterwards (shared by every process
    /// on the database): the key of voter keys.
    fn secret(&self) -> Result<[u8; 32], StoreError>;

    /// A trivial query, for readiness: the database answers. Reads one feed's settings (server
    /// and channel 0, which Discord never uses), so any backend has it without a method of its
    /// own.
    fn ping(&self) -> Result<(), StoreError> {
        self.feed(FeedId::new(0, 0)).map(|_| ())
    }
}

/// How long an answer's row (and the votes on it) is kept, in days. Older rows are deleted by
/// [`Backend::prune`]; their counts stay in the daily totals, so reports over older periods
/// still add up.
pub const ANSWER_RETENTION_DAYS: i64 = 365;

/// How long a vote on an answer may be cast or changed, in days after the answer's day. Then the
/// voter keys of that answer are deleted ([`Backend::prune`]): the counts stay, and nothing is
/// left that could be tested against a person's id.
pub const VOTE_WINDOW_DAYS: i64 = 7;

/// How long the question behind a gap is kept, in days (only in servers with gaps on).
pub const GAP_RETENTION_DAYS: i64 = 30;

/// The most questions one server keeps at once (gaps, and today's questions that may still
/// become gaps). A server that asks faster than the 30 days of [`GAP_RETENTION_DAYS`] would clear
/// loses its oldest first ([`Backend::record_answers`]; their answers stay counted). 500 is
/// above the 300 newest gaps a listing reads, with room for a day's questions still waiting for a
/// vote, and bounds what one server can make the store keep to about 2.5 MB (questions of at
/// most 1,000 characters, up to 4 bytes each, and 391 bytes of vector).
pub const KEPT_QUESTIONS_PER_SERVER: usize = 500;

/// Where a server over [`KEPT_QUESTIONS_PER_SERVER`] is brought back to. Clearing 50 at once
/// rather than one per answer means the SQLite file is rewritten (so the cleared text is in no
/// file, see [`sqlite`]) once per 50 questions of a server at its cap, not on every answer.
pub const KEPT_QUESTIONS_TRIMMED_TO: usize = 450;

/// How long an approved or rejected suggestion (its text, its author's id, who decided) is kept
/// after the decision, in days; then [`Backend::prune`] deletes it. 90 days leave a curator time to
/// look back at what was decided and why, and a suggester's DM about the outcome links nothing
/// that is gone sooner than that. Pending suggestions are never deleted: they wait for a curator,
/// under the per-member and per-server limits.
pub const DECIDED_SUGGESTION_RETENTION_DAYS: i64 = 90;

/// An answer given to a question (`/advice`, a DM), as recorded: no author, no message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnswer {
    /// Chosen by the caller: random, below 2^53 and never 0 (the bot sends it in the vote buttons
    /// before the answer is written, so that recording stays off the answer's path). An id
    /// already recorded makes the whole batch fail, writing nothing.
    pub id: u64,
    /// `None` for a direct message.
    pub guild_id: Option<u64>,
    pub day: NaiveDate,
    /// The insight given; `None` when nothing matched closely enough.
    pub insight_id: Option<String>,
    /// The answer was the "no close match" reply (with or without a suggestion).
    pub no_close_match: bool,
    /// The answer was weak: the closest insight, shown as possibly not fitting (schema version
    /// 6). Its question is a gap like a "no close match" one.
    pub weak: bool,
    /// What was asked: only for a server with gaps on, never for a direct message. The bot
    /// passes it; the store keeps it only while it may be or is a gap (see [`Backend::prune`]).
    pub question: Option<String>,
    /// The question's sentence vector, as answering it computed it (8-bit, with the model's
    /// fingerprint): kept with the question, and only while the question is, so that listing
    /// gaps embeds nothing (schema version 4). Ignored when the question is not kept.
    pub question_vector: Option<StoredVectors>,
}

/// A vote on an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    Helpful,
    NotHelpful,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Helpful => "helpful",
            Vote::NotHelpful => "not_helpful",
        }
    }

    pub fn parse(s: &str) -> Option<Vote> {
        match s {
            "helpful" => Some(Vote::Helpful),
            "not_helpful" => Some(Vote::NotHelpful),
            _ => None,
        }
    }
}

/// What [`Backend::record_vote`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// The first vote of this voter on this answer.
    Recorded,
    /// The voter's earlier vote was the other one and is replaced.
    Changed,
    /// The voter had already voted the same.
    Unchanged,
    /// No such answer (never recorded, or older than [`ANSWER_RETENTION_DAYS`]).
    UnknownAnswer,
    /// The answer is older than [`VOTE_WINDOW_DAYS`]: its votes are final.
    Closed,
}

/// Whose usage a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageScope {
    Server(u64),
    DirectMessages,
    /// Every server and direct messages (the operator's `insight-bot stats`).
    Everywhere,
}

/// Usage over a period, from the daily totals: answers per day and each insight's showings and
/// votes. Days without answers and insights never shown are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageStats {
    pub days: Vec<DayAnswers>,
    pub insights: Vec<InsightUse>,
}

/// A kept question that the collection did not answer well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub answer_id: u64,
    pub question: String,
    pub day: NaiveDate,
    /// Nothing matched closely enough.
    pub no_close_match: bool,
    /// Only the closest insight, shown as possibly not fitting, was found.
    pub weak: bool,
    /// Someone voted "Not what I needed" (and has not changed it since).
    pub not_helpful: bool,
    /// The question's vector as stored with it; `None` for a question kept before schema
    /// version 4 (or whose vector was never written back).
    pub vector: Option<StoredVectors>,
}

/// What [`Backend::prune`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Answer rows (with their votes) older than [`ANSWER_RETENTION_DAYS`].
    pub answers: u64,
    /// Questions cleared: gaps older than [`GAP_RETENTION_DAYS`], and questions of earlier days
    /// that did not become gaps.
    pub questions: u64,
    /// Voter keys deleted: votes on answers older than [`VOTE_WINDOW_DAYS`].
    pub voter_keys: u64,
    /// Approved and rejected suggestions deleted, decided more than
    /// [`DECIDED_SUGGESTION_RETENTION_DAYS`] ago.
    pub suggestions: u64,
}

/// A list column (topics, asks) as stored: a JSON array of strings.
pub(crate) fn list_json(items: &[String]) -> String {
    // Strings always serialize: this never falls back.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

/// A stored list column back; the error is the detail of a [`StoreError::BadRow`].
pub(crate) fn parse_list(column: &str, json: &str) -> Result<Vec<String>, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("{column} {json:?} is not a JSON array of strings ({e})"))
}

/// A count from the database as a `usize`/`u64`, for both backends.
pub(crate) fn count_from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The daily totals a batch of answers adds, per (server or 0 for direct messages, day, insight
/// or `""`): (answers, no close match). Sorted, so every backend updates the rows of a batch in
/// the same order (on PostgreSQL, two batches then never wait for each other's rows in a cycle).
pub(crate) fn answer_totals(
    answers: &[NewAnswer],
) -> BTreeMap<(u64, NaiveDate, String), (i64, i64)> {
    let mut totals: BTreeMap<(u64, NaiveDate, String), (i64, i64)> = BTreeMap::new();
    for answer in answers {
        let key = (
            answer.guild_id.unwrap_or(0),
            answer.day,
            answer.insight_id.clone().unwrap_or_default(),
        );
        let total = totals.entry(key).or_default();
        total.0 += 1;
        total.1 += i64::from(answer.no_close_match);
    }
    totals
}

/// What [`Backend::prune`] compares with on `today`.
pub(crate) struct Cutoffs {
    /// Answers from before this day are deleted.
    pub answers: NaiveDate,
    /// Gap questions from before this day are cleared.
    pub gaps: NaiveDate,
    /// Suggestions decided before this instant (midnight UTC starting the day) are deleted.
    pub decided: DateTime<Utc>,
}

pub(crate) fn retention_cutoffs(today: NaiveDate) -> Cutoffs {
    let back = |days: i64| {
        today
            .checked_sub_days(chrono::Days::new(days.unsigned_abs()))
            .unwrap_or(NaiveDate::MIN)
    };
    Cutoffs {
        answers: back(ANSWER_RETENTION_DAYS),
        gaps: back(GAP_RETENTION_DAYS),
        decided: back(DECIDED_SUGGESTION_RETENTION_DAYS)
            .and_hms_opt(0, 0, 0)
            .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc()),
    }
}

/// How many of a server's `kept` questions to clear so that it keeps at most
/// [`KEPT_QUESTIONS_PER_SERVER`]: none up to the cap, else down to [`KEPT_QUESTIONS_TRIMMED_TO`].
pub(crate) fn questions_over_cap(kept: usize) -> usize {
    if kept > KEPT_QUESTIONS_PER_SERVER {
        kept - KEPT_QUESTIONS_TRIMMED_TO
    } else {
        0
    }
}

/// How a vote changes an insight's (helpful, not helpful) totals, and what to report: `old` is
/// the voter's earlier vote on the answer, if any.
pub(crate) fn vote_change(old: Option<Vote>, new: Vote) -> (VoteOutcome, i64, i64) {
    let delta = |v: Vote, n: i64| match v {
        Vote::Helpful => (n, 0),
        Vote::NotHelpful => (0, n),
    };
    let (h, nh) = delta(new, 1);
    match old {
        None => (VoteOutcome::Recorded, h, nh),
        Some(old) if old == new => (VoteOutcome::Unchanged, 0, 0),
        Some(old) => {
            let (oh, onh) = delta(old, -1);
            (VoteOutcome::Changed, h + oh, nh + onh)
        }
    }
}

/// The store as the async side uses it: a cheap-to-clone handle on one [`Backend`].
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.describe())
            .finish()
    }
}

impl Store {
    /// Opens (creating when missing) the SQLite database at `path`. Blocking: call it before the
    /// runtime starts, or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::new(SqliteBackend::open(path)?))
    }

    /// Opens the database `DATABASE_URL` names: the SQLite file (created when missing) or the
    /// PostgreSQL database (its schema created or brought up to date). Blocking, like
    /// [`Store::open`].
    pub fn connect(url: &DatabaseUrl) -> Result<Store, StoreError> {
        match url {
            DatabaseUrl::Sqlite(path) => Store::open(path),
            DatabaseUrl::Postgres(url) => Ok(Store::new(PostgresBackend::connect(url)?)),
        }
    }

    /// Every call through the store is timed for operators ([`timed`]).
    pub fn new(backend: impl Backend) -> Store {
        Store {
            backend: Arc::new(timed::Timed(backend)),
        }
    }

    /// Runs `f` on the backend on tokio's blocking pool and waits for it without blocking the
    /// runtime: `store.call(move |db| db.weekly(guild)).await`.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || f(backend.as_ref()))
            .await
            .map_err(|e| StoreError::Interrupted(e.to_string()))?
    }

    /// The backend, called synchronously: for start-up, the command line, tests and benchmarks,
    /// never from async code (use [`Store::call`] there).
    pub fn blocking(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Where the data lives (see [`Backend::describe`]).
    pub fn describe(&self) -> String {
        self.backend.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::weekly::schedule::WeekKey;

    const GUILD: u64 = 1_100_000_000_000_000_001;

    fn week(n: u32) -> WeekKey {
        WeekKey {
            year: 2026,
            week: n,
        }
    }

    #[test]
    fn stored_forms_parse_back() {
        for source in [InsightSource::All, InsightSource::Ours] {
            assert_eq!(InsightSource::parse(source.as_str()), Some(source));
        }
        assert_eq!(InsightSource::default(), InsightSource::All);
        assert_eq!(InsightSource::parse("All"), None);
        for status in [
            SuggestionStatus::Pending,
            SuggestionStatus::Approved,
            SuggestionStatus::Rejected,
        ] {
            assert_eq!(SuggestionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SuggestionStatus::parse(""), None);
        let topics = vec!["a".to_string(), "\"quoted\" ü".to_string()];
        assert_eq!(parse_list("topics", &list_json(&topics)), Ok(topics));
        assert_eq!(parse_list("topics", "[]"), Ok(vec![]));
        let err = parse_list("topics", "[1]").unwrap_err();
        assert!(err.contains("topics \"[1]\""), "{err}");
    }

    #[test]
    fn a_limit_error_says_which_limit_and_its_value() {
        let cases = [
            (
                Limit::ServerInsights,
                "a server may own at most 200 insights",
            ),
            (
                Limit::AuthorPendingSuggestions,
                "a member may have at most 200 suggestions waiting",
            ),
            (
                Limit::ServerPendingSuggestions,
                "a server may have at most 200 suggestions waiting",
            ),
        ];
        for (what, expected) in cases {
            let message = StoreError::Limit { what, limit: 200 }.to_string();
            assert!(message.starts_with(expected), "{message}");
            assert!(message.contains("nothing was"), "{message}");
        }
    }

    #[test]
    fn stored_vectors_debug_shows_the_length_not_the_bytes() {
        let vectors = StoredVectors {
            fingerprint: 0xabc,
            bytes: vec![7; 1536],
        };
        assert_eq!(
            format!("{vectors:?}"),
            "StoredVectors { fingerprint: 0x0000000000000abc, bytes: [1536 bytes] }"
        );
    }

    #[test]
    fn nonces_fit_discord_and_differ_per_feed_and_period() {
        let feed = |channel| FeedId::new(GUILD, channel);
        let longest = post_nonce(
            feed(u64::MAX),
            Period::Day(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()),
        );
        assert_eq!(longest, "id202612313w5e11264sgsf");
        assert!(longest.len() <= 25);
        for year in [i32::MIN, -1, 0, 9999, 10_000, i32::MAX] {
            for w in [0, 1, 53, u32::MAX] {
                let n = post_nonce(feed(u64::MAX), Period::Week(WeekKey { year, week: w }));
                assert!(n.len() <= 21, "{n}");
            }
        }
        assert_eq!(post_nonce(feed(0), week(1).into()), "iw2026010");
        assert_eq!(
            post_nonce(feed(GUILD), week(10).into()),
            post_nonce(feed(GUILD), week(10).into()),
            "deterministic"
        );

        let channels = [0, 1, 35, 36, 1_234_567, GUILD, i64::MAX as u64, u64::MAX];
        let mut seen = BTreeSet::new();
        let mut count = 0;
        let mut day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let mut periods: Vec<Period> = Vec::new();
        for year in [2025, 2026, 2027, 2126] {
            for w in 1..=53 {
                periods.push(Period::Week(WeekKey { year, week: w }));
            }
        }
        for _ in 0..800 {
            periods.push(Period::Day(day));
            day = day.succ_opt().unwrap();
        }
        for period in periods {
            for c in channels {
                let n = post_nonce(feed(c), period);
                assert!(n.is_ascii() && n.len() <= 25);
                seen.insert(n);
                count += 1;
            }
        }
        assert_eq!(seen.len(), count, "every (feed, period) has its own nonce");
    }
}
