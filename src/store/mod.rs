//! The state store: each server's weekly settings, its rotation state and the post log.
//!
//! What it guarantees, and how:
//! - **Never twice for the same week.** A weekly post is *claimed* before anything is sent:
//!   [`Backend::claim`] inserts a `post_log` row keyed by (server, ISO week) in the same
//!   transaction that advances the server's rotation. The primary key makes a second row for that
//!   week impossible whichever code path asks (schedule, `/weekly post-now`, recovery) and however
//!   they race, and the rotation advances only when the row was inserted.
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
//! Backends: [`sqlite`] (the default, one file) and [`postgres`] (one database shared by several
//! processes, for a bot run as shard ranges). [`Store::connect`] picks one from `DATABASE_URL`.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::DatabaseUrl;
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{WeekKey, WeeklySchedule};

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresBackend;
pub use sqlite::SqliteBackend;

const RESTORE_ADVICE: &str = "It was left unchanged: restore it from a backup, or move it aside \
     to start with an empty database (every server's weekly schedule and post history would then \
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
    /// `record_attempt` / `confirm_post` for a week that was never claimed (or was released).
    #[error("database {database}: server {guild_id} has no post claimed for {week}")]
    NoClaim {
        database: String,
        guild_id: u64,
        week: WeekKey,
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
    #[error("{week} is not a week of the ISO calendar")]
    InvalidWeek { week: WeekKey },
    /// A store call panicked or was cancelled on the blocking pool.
    #[error("the database call did not finish: {0}")]
    Interrupted(String),
}

/// A server's insight-of-the-week settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklySettings {
    pub guild_id: u64,
    pub channel_id: u64,
    pub schedule: WeeklySchedule,
    pub enabled: bool,
    /// When this schedule was (re)set: slots before this instant are never posted (no surprise
    /// post for last Monday when an admin sets the schedule on a Tuesday).
    pub active_since: DateTime<Utc>,
    /// Set when the channel answered 403/404: the schedule is paused until an admin runs
    /// /weekly set again.
    pub failure: Option<Failure>,
    pub updated_at: DateTime<Utc>,
}

/// Why and when a server's weekly posts were paused.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What asked for a post. Stored as text (`schedule`, `post_now`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostSource {
    Schedule,
    PostNow,
}

impl PostSource {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PostSource::Schedule => "schedule",
            PostSource::PostNow => "post_now",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "schedule" => Some(PostSource::Schedule),
            "post_now" => Some(PostSource::PostNow),
            _ => None,
        }
    }
}

/// One server's post for one week: claimed first, confirmed with the message id once sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRecord {
    pub guild_id: u64,
    pub week: WeekKey,
    pub channel_id: u64,
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
}

impl PostRecord {
    /// Whether Discord accepted the message (its id is recorded).
    pub fn is_confirmed(&self) -> bool {
        self.message_id.is_some()
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

/// The message nonce of a server's post for `week`: deterministic, so every resend of the same
/// post carries the same nonce, and at most 21 characters (Discord allows 25).
///
/// `iw` + the ISO year (4 digits) + the week (2 digits) + the server id in base 36 (at most 13
/// digits for `u64::MAX`). The fixed-width prefix makes it unique per (server, week) for years
/// 0..=9999; Discord only compares nonces within minutes, so wrapping outside that is harmless.
pub fn post_nonce(guild_id: u64, week: WeekKey) -> String {
    format!(
        "iw{:04}{:02}{}",
        week.year.rem_euclid(10_000),
        week.week % 100,
        base36(guild_id)
    )
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

    /// Sets (or replaces) a server's weekly schedule: enabled, any failure cleared, active from
    /// `now` (so no slot before `now` is posted). Returns the stored settings.
    fn set_weekly(
        &self,
        guild_id: u64,
        channel_id: u64,
        schedule: &WeeklySchedule,
        now: DateTime<Utc>,
    ) -> Result<WeeklySettings, StoreError>;

    /// Turns a server's weekly posts off (the settings are kept for `/weekly show`). `false` when
    /// there was nothing enabled.
    fn disable_weekly(&self, guild_id: u64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// A server's settings, enabled or not. A stored row that no longer parses is
    /// [`StoreError::BadRow`] (running `/weekly set` again replaces it).
    fn weekly(&self, guild_id: u64) -> Result<Option<WeeklySettings>, StoreError>;

    /// The scheduler's input: every server whose posts are enabled and not paused by a failure,
    /// ordered by server id, in one query. A row that no longer parses is logged and skipped, so
    /// one broken server does not stop the others ([`Store::weekly`] reports it for that server).
    fn active_weeklies(&self) -> Result<Vec<WeeklySettings>, StoreError>;

    /// Pauses a server's weekly posts because its channel is unusable (403/404), recording why,
    /// until an admin runs `/weekly set` again. Nothing happens for a server without settings.
    fn mark_failing(
        &self,
        guild_id: u64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Claims `week` for `guild_id`'s post, in one transaction:
    /// - if the week already has a post (confirmed or not): `AlreadyClaimed` with that record,
    ///   and nothing changes (the rotation does not advance);
    /// - else the server's rotation advances over `insight_ids` and a post row is inserted
    ///   (no attempts, no message yet, nonce [`post_nonce`]): `Claimed`.
    ///
    /// `None` when the collection is empty and the week is unclaimed.
    #[allow(clippy::too_many_arguments)] // each is a plain value the poster already holds
    fn claim(
        &self,
        guild_id: u64,
        week: WeekKey,
        channel_id: u64,
        insight_ids: &[&str],
        source: PostSource,
        rng: &mut dyn rand::RngCore,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError>;

    /// Records a send attempt of a claimed post and returns the updated record.
    ///
    /// Call it twice around sends: *before* each send with `error: None` — this counts the
    /// attempt (`attempts += 1`, so a crash mid-send still shows that a send may have gone out)
    /// and clears `last_error` and `retry_at` — and *after* failed sends with the error and when
    /// to retry, which records them without counting another attempt. So `attempts` is the
    /// number of sends started, whatever the caller's retry loop looks like.
    fn record_attempt(
        &self,
        guild_id: u64,
        week: WeekKey,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError>;

    /// Confirms a claimed post with the id of the message Discord created. Idempotent: a post
    /// already confirmed keeps its first message id (a different one is logged, not stored).
    fn confirm_post(
        &self,
        guild_id: u64,
        week: WeekKey,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes an *unconfirmed* claim, so the week can be claimed again (used when a send failed
    /// permanently). A confirmed post is never deleted; a missing one is not an error.
    fn release_claim(&self, guild_id: u64, week: WeekKey) -> Result<(), StoreError>;

    /// A server's post for `week`, confirmed or not.
    fn post(&self, guild_id: u64, week: WeekKey) -> Result<Option<PostRecord>, StoreError>;

    /// A server's latest confirmed post (by week).
    fn last_post(&self, guild_id: u64) -> Result<Option<PostRecord>, StoreError>;

    /// Every (server, week) that has a post (claimed or confirmed) in `week` or later: what the
    /// poster checks its due slots against, in one query instead of one per server.
    fn claimed_slots_since(&self, week: WeekKey) -> Result<HashSet<(u64, WeekKey)>, StoreError>;

    /// Every claim without a message id, all servers, oldest week first: what start-up recovery
    /// must resolve. A row that no longer parses is logged and skipped.
    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError>;

    /// A server's rotation state (the default state when it never posted).
    fn rotation(&self, guild_id: u64) -> Result<RotationState, StoreError>;
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

    pub fn new(backend: impl Backend) -> Store {
        Store {
            backend: Arc::new(backend),
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

    const GUILD: u64 = 1_100_000_000_000_000_001;

    fn week(n: u32) -> WeekKey {
        WeekKey {
            year: 2026,
            week: n,
        }
    }

    #[test]
    fn nonces_fit_discord_and_differ_per_server_and_week() {
        let longest = post_nonce(
            u64::MAX,
            WeekKey {
                year: 2026,
                week: 53,
            },
        );
        assert_eq!(longest, "iw2026533w5e11264sgsf");
        assert!(longest.len() <= 25);
        for year in [i32::MIN, -1, 0, 9999, 10_000, i32::MAX] {
            for w in [0, 1, 53, u32::MAX] {
                let n = post_nonce(u64::MAX, WeekKey { year, week: w });
                assert!(n.len() <= 21, "{n}");
            }
        }
        assert_eq!(post_nonce(0, week(1)), "iw2026010");
        assert_eq!(
            post_nonce(GUILD, week(10)),
            post_nonce(GUILD, week(10)),
            "deterministic"
        );

        let guilds = [0, 1, 35, 36, 1_234_567, GUILD, i64::MAX as u64, u64::MAX];
        let mut seen = BTreeSet::new();
        let mut count = 0;
        for year in [2025, 2026, 2027, 2126] {
            for w in 1..=53 {
                for g in guilds {
                    let n = post_nonce(g, WeekKey { year, week: w });
                    assert!(n.is_ascii() && n.len() <= 25);
                    seen.insert(n);
                    count += 1;
                }
            }
        }
        assert_eq!(seen.len(), count, "every (server, week) has its own nonce");
    }
}
