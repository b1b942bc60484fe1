//! The SQLite backend: one file, created when missing, through rusqlite (bundled SQLite).
//!
//! Decisions:
//! - **rusqlite, not sqlx.** The store is a handful of small transactional queries. A
//!   synchronous API is simpler to reason about (a transaction is a plain scope, no await points
//!   inside it); the async [`Store`](super::Store) runs each call on tokio's blocking pool, so a
//!   write waiting for SQLite's lock never holds up the runtime. The bundled SQLite means no
//!   system dependency and a far smaller build than sqlx.
//! - **One connection in a `std::sync::Mutex`.** No `.await` ever happens while the lock is held
//!   (the API is synchronous), and every critical section is one short query, so a blocking mutex
//!   is correct and cheaper than an async one. SQLite itself serializes writers anyway; several
//!   processes (or several handles on one file) are safe because writes take SQLite's write lock
//!   up front (`BEGIN IMMEDIATE`) and wait for it (`busy_timeout`). A poisoned mutex is recovered:
//!   a panic mid-call drops its `Transaction`, which rolls back, so the connection is still sound.
//! - **WAL with `synchronous=NORMAL`**, SQLite's recommended pairing. WAL lets readers run during
//!   a write; NORMAL makes every commit survive an application crash, and only a power cut or OS
//!   crash can lose the last few commits. That case is still covered: a claim that lost its
//!   confirmation keeps `attempts > 0`, so the poster reads the channel before sending again, and
//!   a lost claim is re-sent with the same deterministic nonce, which Discord de-duplicates.
//!   FULL was measured (benches/scheduler.rs): one fsync per commit made 10,000 due posts take
//!   46 s instead of 3.3 s.
//! - **Instants as RFC 3339 UTC text with milliseconds** (`2026-03-02T09:00:00.000Z`). Fixed
//!   width, so text order is time order for queries; readable as-is in the `sqlite3` shell,
//!   which is where an operator asks "why did server X not post"; milliseconds keep claim/attempt/
//!   confirm order visible. Instants are therefore stored to the millisecond, and the methods that
//!   return what they wrote return the stored (rounded-down) value.
//! - **Schedules as the text an admin types** (`mon`, `09:00`, `Europe/London`), parsed back with
//!   [`WeeklySchedule::parse`]. A row that no longer parses (a zone removed from tzdata) is an
//!   error for that server ([`StoreError::BadRow`]), never a panic; `active_weeklies` logs and
//!   skips such a row so one broken server cannot stop every other server's posts.
//! - **Limits hold across processes.** A write that checks one of a server's limits (its
//!   insights, pending suggestions) counts and writes in one `BEGIN IMMEDIATE` transaction:
//!   SQLite's single writer lock keeps the count true until the commit, in every process.
//! - **Migrations** are embedded SQL files (`migrations/NNNN_*.sql`) applied in order, each in
//!   one transaction with `PRAGMA user_version`; the file also carries an `application_id` so
//!   another program's SQLite file is refused rather than migrated.
//! - **Deleted text is in no file.** `PRAGMA secure_delete = ON` zeroes what a delete or an
//!   update frees in the database's pages; and every write that deletes what people wrote
//!   (turning gaps off, the daily prune, the per-server cap on kept questions) is followed by
//!   `PRAGMA wal_checkpoint(TRUNCATE)`, because until a checkpoint the WAL still holds the page
//!   images that carried the text (SQLite's automatic checkpoints copy pages but never truncate
//!   the log). The cap clears 50 questions at a time so this is not a checkpoint per answer.
//! - **Never lost or silently replaced.** An existing file that is not an insight-bot database,
//!   is damaged, or was written by a newer version stops [`SqliteBackend::open`] with an error
//!   naming the file and saying what to do; it is never recreated or overwritten.
//!
//! Layout: this file holds the backend itself (opening, migrations, the read/write/transaction
//! helpers, errors, the column conversions every table shares) and the one `impl Backend`, whose
//! methods delegate to a file per domain: `weekly.rs` (weekly settings, claims, the post log,
//! rotation), `collections.rs` (servers' own insights, server settings, suggestions) and
//! `feedback.rs` (answers, votes, usage totals, gaps, pruning, the secret). Each domain file
//! keeps its own row types and SQL.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, Row, Transaction};
use rusqlite::{Params, TransactionBehavior};

use super::{
    count_from_db, Backend, Claim, Decision, FeedSettings, FeedSpec, Gap, InsightSource, Limit,
    NewAnswer, NewSuggestion, Pause, PostRecord, PostSource, Pruned, SaveOutcome, ServerInsight,
    ServerSettings, StoreError, StoredVectors, Suggestion, UsageScope, UsageStats, Vote,
    VoteOutcome,
};
use crate::weekly::feed::FeedId;
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::Period;

/// The schema migrations, in order: `MIGRATIONS[i]` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_server_insights.sql"),
    include_str!("../../../migrations/0003_usage.sql"),
    include_str!("../../../migrations/0004_gap_vectors.sql"),
    include_str!("../../../migrations/0005_server_packs.sql"),
    include_str!("../../../migrations/0006_weak_answers.sql"),
    include_str!("../../../migrations/0007_feeds.sql"),
];

/// The newest schema version this build knows.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of an insight-bot database ('iBot'), set by the first migration.
const APPLICATION_ID: i64 = 0x6942_6F74;

/// How long a write waits for another connection's write lock before failing with "busy". The
/// wait happens on tokio's blocking pool (see `Store::call`), never on the runtime, so it can be
/// generous: a backup or another process holding the lock for seconds delays a write, not fails it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The assignments that clear a kept question: its vector goes with its text, always.
macro_rules! clear_question {
    () => {
        "question = NULL, question_vector = NULL, question_model = NULL"
    };
}

// Declared after `clear_question!` so the domain files can use it (macros are textually scoped).
mod collections;
mod feedback;
mod weekly;

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The SQLite backend. Every method takes `&self`; calls are serialized on one connection.
#[derive(Debug)]
pub struct SqliteBackend {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteBackend {
    /// Opens the database at `path`, creating it (and its directory) when missing, and brings
    /// its schema up to date.
    ///
    /// An existing file is checked before anything is written to it: it must be a SQLite file,
    /// insight-bot's (or empty), not from a newer version, and pass `PRAGMA quick_check`.
    /// Otherwise the error names the file and it is left byte-for-byte unchanged.
    pub fn open(path: &Path) -> Result<SqliteBackend, StoreError> {
        // Two processes opening a new file at once can meet SQLITE_BUSY where SQLite does not
        // wait by itself (switching to WAL, or a lock upgrade it refuses to avoid deadlock): the
        // whole open is retried for up to BUSY_TIMEOUT, then the error is reported.
        let started = std::time::Instant::now();
        loop {
            match SqliteBackend::open_once(path) {
                Err(StoreError::Open { source, .. })
                    if is_busy(&source) && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }

    fn open_once(path: &Path) -> Result<SqliteBackend, StoreError> {
        let path = path.to_path_buf();
        let exists = check_header(&path)?;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if !exists {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    dir: dir.to_path_buf(),
                    source,
                })?;
            }
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_with_flags(&path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        inspect(&conn, &path)?;

        // Only now, with the file known to be ours and sound, change anything.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal { path, mode });
        }
        // secure_delete: what a delete or an update frees is overwritten with zeros in the file,
        // not left in free space (see `write_erasing`).
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )
        .map_err(|e| classify(&path, e))?;
        migrate(&mut conn, &path)?;
        Ok(SqliteBackend {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    // ---- plumbing ----

    /// Runs `f` on the connection. The lock is held only for this synchronous call.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Fault>) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn).map_err(|fault| self.error(fault))
    }

    /// Runs `f` in one write transaction, committed when `f` returns `Ok`, rolled back otherwise.
    /// IMMEDIATE takes the write lock up front: a deferred transaction that read first could not
    /// upgrade to a write while another connection wrote (SQLITE_BUSY without waiting).
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        result.map_err(|fault| self.error(fault))
    }

    /// [`Self::write`] for a transaction that may delete what people wrote (question texts,
    /// suggestions): `f` returns its value and whether it erased any. Then, with the commit
    /// done, the WAL is checkpointed into the file and truncated, so the text is in no file:
    /// `secure_delete` zeroes it in the database's pages, but until a checkpoint the WAL still
    /// holds the page images that carried it, and SQLite's own checkpoints never truncate it.
    /// A checkpoint that another process's open reader holds back is logged and left to the
    /// next erasing write (the commit stands).
    fn write_erasing<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, bool), Fault>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        let (value, erased) = result.map_err(|fault| self.error(fault))?;
        if erased {
            match checkpoint(&conn) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    path = %self.path.display(),
                    "deleted text stays in the write-ahead log until the next checkpoint: another \
                     connection was reading"
                ),
                Err(e) => tracing::warn!(
                    path = %self.path.display(),
                    "cannot checkpoint the write-ahead log after deleting text: {e}"
                ),
            }
        }
        Ok(value)
    }

    /// Converts raw rows, logging and dropping the ones that no longer parse.
    fn keep_valid<R, T>(&self, rows: Vec<R>, convert: impl Fn(R) -> Result<T, Fault>) -> Vec<T> {
        rows.into_iter()
            .filter_map(|row| match convert(row) {
                Ok(value) => Some(value),
                Err(fault) => {
                    tracing::warn!("skipped: {}", self.error(fault));
                    None
                }
            })
            .collect()
    }

    fn error(&self, fault: Fault) -> StoreError {
        let database = self.describe();
        match fault {
            Fault::Sql(source) => classify_runtime(self.path.clone(), source),
            Fault::BadRow {
                table,
                guild_id,
                detail,
            } => StoreError::BadRow {
                database,
                table,
                guild_id,
                detail,
            },
            Fault::NoClaim { feed, period } => StoreError::NoClaim {
                database,
                feed,
                period,
            },
            Fault::Limit { what, limit } => StoreError::Limit { what, limit },
        }
    }
}

impl Backend for SqliteBackend {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    // ---- feeds ----

    fn set_feed(
        &self,
        feed: FeedId,
        spec: &FeedSpec,
        now: DateTime<Utc>,
    ) -> Result<FeedSettings, StoreError> {
        weekly::set_feed(self, feed, spec, now)
    }

    fn disable_feed(&self, feed: FeedId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        weekly::disable_feed(self, feed, now)
    }

    fn set_pause(
        &self,
        feed: FeedId,
        pause: Option<Pause>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        weekly::set_pause(self, feed, pause, now)
    }

    fn feed(&self, feed: FeedId) -> Result<Option<FeedSettings>, StoreError> {
        weekly::feed(self, feed)
    }

    fn feeds(&self, guild_id: u64) -> Result<Vec<FeedSettings>, StoreError> {
        weekly::feeds(self, guild_id)
    }

    fn active_feeds(&self) -> Result<Vec<FeedSettings>, StoreError> {
        weekly::active_feeds(self)
    }

    fn mark_failing(
        &self,
        feed: FeedId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        weekly::mark_failing(self, feed, reason, now)
    }

    // ---- posts ----

    fn claim(
        &self,
        feed: FeedId,
        period: Period,
        insight_ids: &[&str],
        source: PostSource,
        rng: &mut dyn rand::RngCore,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        weekly::claim(self, feed, period, insight_ids, source, rng, now)
    }

    fn skip(&self, feed: FeedId, period: Period, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        weekly::skip(self, feed, period, now)
    }

    fn record_attempt(
        &self,
        feed: FeedId,
        period: Period,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError> {
        weekly::record_attempt(self, feed, period, now, error, retry_at)
    }

    fn confirm_post(
        &self,
        feed: FeedId,
        period: Period,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        weekly::confirm_post(self, feed, period, message_id, now)
    }

    fn record_thread(
        &self,
        feed: FeedId,
        period: Period,
        outcome: Result<u64, &str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        weekly::record_thread(self, feed, period, outcome, now)
    }

    fn posts_awaiting_thread(&self, since: DateTime<Utc>) -> Result<Vec<PostRecord>, StoreError> {
        weekly::posts_awaiting_thread(self, since)
    }

    fn release_claim(&self, feed: FeedId, period: Period) -> Result<(), StoreError> {
        weekly::release_claim(self, feed, period)
    }

    fn post(&self, feed: FeedId, period: Period) -> Result<Option<PostRecord>, StoreError> {
        weekly::post(self, feed, period)
    }

    fn last_post(&self, feed: FeedId) -> Result<Option<PostRecord>, StoreError> {
        weekly::last_post(self, feed)
    }

    fn claimed_slots_since(
        &self,
        since: NaiveDate,
    ) -> Result<std::collections::HashSet<(FeedId, Period)>, StoreError> {
        weekly::claimed_slots_since(self, since)
    }

    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError> {
        weekly::unconfirmed_posts(self)
    }

    fn rotation(&self, feed: FeedId) -> Result<RotationState, StoreError> {
        weekly::rotation(self, feed)
    }

    // ---- a server's own insights ----

    fn server_insights(&self, guild_id: u64) -> Result<Vec<ServerInsight>, StoreError> {
        collections::server_insights(self, guild_id)
    }

    fn all_server_insights(&self) -> Result<Vec<ServerInsight>, StoreError> {
        collections::all_server_insights(self)
    }

    fn server_insight_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        collections::server_insight_count(self, guild_id)
    }

    fn save_server_insights(
        &self,
        guild_id: u64,
        insights: &[ServerInsight],
        limit: usize,
    ) -> Result<SaveOutcome, StoreError> {
        collections::save_server_insights(self, guild_id, insights, limit)
    }

    fn delete_server_insight(&self, guild_id: u64, insight_id: &str) -> Result<bool, StoreError> {
        collections::delete_server_insight(self, guild_id, insight_id)
    }

    // ---- a server's settings ----

    fn server_settings(&self, guild_id: u64) -> Result<ServerSettings, StoreError> {
        collections::server_settings(self, guild_id)
    }

    fn set_insight_source(&self, guild_id: u64, source: InsightSource) -> Result<(), StoreError> {
        collections::set_insight_source(self, guild_id, source)
    }

    fn set_curator_role(&self, guild_id: u64, role_id: Option<u64>) -> Result<(), StoreError> {
        collections::set_curator_role(self, guild_id, role_id)
    }

    fn set_review_channel(&self, guild_id: u64, channel_id: Option<u64>) -> Result<(), StoreError> {
        collections::set_review_channel(self, guild_id, channel_id)
    }

    fn set_hidden(
        &self,
        guild_id: u64,
        insight_id: &str,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        collections::set_hidden(self, guild_id, insight_id, hidden)
    }

    fn set_pack_on(&self, guild_id: u64, pack_id: &str, on: bool) -> Result<bool, StoreError> {
        collections::set_pack_on(self, guild_id, pack_id, on)
    }

    // ---- suggestions ----

    fn add_suggestion(
        &self,
        suggestion: NewSuggestion,
        per_author_pending_limit: usize,
        per_server_pending_limit: usize,
    ) -> Result<Suggestion, StoreError> {
        collections::add_suggestion(
            self,
            suggestion,
            per_author_pending_limit,
            per_server_pending_limit,
        )
    }

    fn suggestion(&self, guild_id: u64, id: u64) -> Result<Option<Suggestion>, StoreError> {
        collections::suggestion(self, guild_id, id)
    }

    fn oldest_pending_suggestion(&self, guild_id: u64) -> Result<Option<Suggestion>, StoreError> {
        collections::oldest_pending_suggestion(self, guild_id)
    }

    fn pending_suggestion_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        collections::pending_suggestion_count(self, guild_id)
    }

    fn decide_suggestion(
        &self,
        guild_id: u64,
        id: u64,
        decision: Decision,
        decided_by: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, StoreError> {
        collections::decide_suggestion(self, guild_id, id, decision, decided_by, now)
    }

    fn set_suggestion_review_message(
        &self,
        guild_id: u64,
        id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<bool, StoreError> {
        collections::set_suggestion_review_message(self, guild_id, id, channel_id, message_id)
    }

    // ---- how often insights were shown ----

    fn record_shown(
        &self,
        guild_id: u64,
        insight_id: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        feedback::record_shown(self, guild_id, insight_id, day)
    }

    fn shown_counts(&self, guild_id: u64) -> Result<HashMap<String, u64>, StoreError> {
        feedback::shown_counts(self, guild_id)
    }

    // ---- answers, votes, usage and gaps ----

    fn record_answers(&self, answers: &[NewAnswer]) -> Result<Vec<u64>, StoreError> {
        feedback::record_answers(self, answers)
    }

    fn record_vote(
        &self,
        answer_id: u64,
        voter: &[u8; 32],
        vote: Vote,
        today: NaiveDate,
    ) -> Result<VoteOutcome, StoreError> {
        feedback::record_vote(self, answer_id, voter, vote, today)
    }

    fn usage_stats(
        &self,
        scope: UsageScope,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<UsageStats, StoreError> {
        feedback::usage_stats(self, scope, since, until)
    }

    fn set_gaps(&self, guild_id: u64, on: bool) -> Result<u64, StoreError> {
        feedback::set_gaps(self, guild_id, on)
    }

    fn gaps(&self, guild_id: u64, since: NaiveDate, limit: usize) -> Result<Vec<Gap>, StoreError> {
        feedback::gaps(self, guild_id, since, limit)
    }

    fn set_gap_vectors(
        &self,
        guild_id: u64,
        vectors: &[(u64, StoredVectors)],
    ) -> Result<u64, StoreError> {
        feedback::set_gap_vectors(self, guild_id, vectors)
    }

    fn prune(&self, today: NaiveDate) -> Result<Pruned, StoreError> {
        feedback::prune(self, today)
    }

    fn secret(&self) -> Result<[u8; 32], StoreError> {
        feedback::secret(self)
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies every committed page into the database file and
/// empties the write-ahead log. `false` when a reader kept it from finishing.
fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    let (busy, _log, _copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(busy == 0)
}

/// A failure inside a store call, before the file name is attached.
enum Fault {
    Sql(rusqlite::Error),
    BadRow {
        table: &'static str,
        guild_id: u64,
        detail: String,
    },
    NoClaim {
        feed: FeedId,
        period: Period,
    },
    Limit {
        what: Limit,
        limit: usize,
    },
}

impl From<rusqlite::Error> for Fault {
    fn from(e: rusqlite::Error) -> Self {
        Fault::Sql(e)
    }
}

// ---- opening ----

/// Whether the file exists, after checking that an existing non-empty one starts with the SQLite
/// header. Done with plain file I/O before SQLite touches it, so a file that is not a database
/// (random bytes, a text file, a path mix-up) is refused with no chance of being written to.
/// An empty file is accepted as a new database (`touch insight-bot.db`).
fn check_header(path: &Path) -> Result<bool, StoreError> {
    let unreadable = |source| StoreError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(unreadable(e)),
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(unreadable)?;
    if !header.is_empty() && header != SQLITE_HEADER {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "it does not start with the SQLite file header".into(),
        });
    }
    Ok(true)
}

/// Read-only checks of a freshly opened file: ours (or empty), not newer, structurally sound.
fn inspect(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // One read transaction, so the marks and the table count come from the same snapshot: a
    // process migrating the same new file cannot commit between them.
    let snapshot = conn
        .unchecked_transaction()
        .map_err(|e| classify(path, e))?;
    let conn: &Connection = &snapshot;
    let int = |sql: &str| -> Result<i64, StoreError> {
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(|e| classify(path, e))
    };
    let application_id = int("PRAGMA application_id")?;
    let version = int("PRAGMA user_version")?;
    let objects = int("SELECT count(*) FROM sqlite_schema")?;
    let empty = application_id == 0 && version == 0 && objects == 0;
    if application_id != APPLICATION_ID && !empty {
        let detail = if application_id != 0 {
            format!("its application id is {application_id:#x}")
        } else {
            format!("it has {objects} tables and indexes but no insight-bot mark")
        };
        return Err(StoreError::NotOurs {
            path: path.to_path_buf(),
            detail,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            database: path.display().to_string(),
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let problems = (|| {
        let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })()
    .map_err(|e| classify(path, e))?;
    if problems != ["ok"] {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("integrity check: {}", problems.join("; ")),
        });
    }
    snapshot.commit().map_err(|e| classify(path, e))
}

/// Applies the migrations the file lacks, each in its own IMMEDIATE transaction that re-reads
/// the version, so two processes opening a new file at once migrate it once.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    loop {
        let mut version = 0;
        let step = (|| -> rusqlite::Result<Option<i64>> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            version = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let Some(sql) = usize::try_from(version)
                .ok()
                .and_then(|i| MIGRATIONS.get(i))
            else {
                return Ok(None);
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
            Ok(Some(version + 1))
        })();
        match step {
            Ok(Some(_)) => continue,
            Ok(None) if version == SCHEMA_VERSION => return Ok(()),
            Ok(None) if version > SCHEMA_VERSION => {
                return Err(StoreError::TooNew {
                    database: path.display().to_string(),
                    found: version,
                    known: SCHEMA_VERSION,
                })
            }
            Ok(None) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("its schema version is {version}"),
                })
            }
            Err(source) => {
                return Err(match classify(path, source) {
                    StoreError::Open { source, .. } => StoreError::Migrate {
                        path: path.to_path_buf(),
                        version: version + 1,
                        source,
                    },
                    other => other,
                })
            }
        }
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// An error while opening: damage is `Corrupt`, anything else `Open`.
/// SQLite said another connection holds a lock it needs.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    if is_corruption(&e) {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// An error during a call: damage found later is still `Corrupt`, with the same advice.
fn classify_runtime(path: PathBuf, e: rusqlite::Error) -> StoreError {
    if is_corruption(&e) {
        StoreError::Corrupt {
            path,
            detail: e.to_string(),
        }
    } else {
        StoreError::Sqlite { path, source: e }
    }
}

// ---- rows ----

/// A Discord id as an SQLite integer: the u64 reinterpreted as i64, lossless both ways. Real
/// snowflakes are below 2^63, so they read the same in the `sqlite3` shell.
fn db_id(id: u64) -> i64 {
    id as i64
}

fn from_db_id(id: i64) -> u64 {
    id as u64
}

fn db_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(
    table: &'static str,
    guild_id: u64,
    column: &str,
    text: &str,
) -> Result<DateTime<Utc>, Fault> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Fault::BadRow {
            table,
            guild_id,
            detail: format!("{column} {text:?} is not an RFC 3339 instant ({e})"),
        })
}

/// A day as stored: ISO `YYYY-MM-DD` text, so text order is day order.
fn db_day(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn parse_day(table: &'static str, text: &str) -> Result<NaiveDate, Fault> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| Fault::BadRow {
        table,
        guild_id: 0,
        detail: format!("day {text:?} is not an ISO date ({e})"),
    })
}

fn query_all<T, P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    read: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, Fault> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, read)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

/// A `count(*)` as a `usize`.
fn count<P: Params>(conn: &Connection, sql: &str, params: P) -> Result<usize, Fault> {
    let n: i64 = conn.prepare_cached(sql)?.query_row(params, |r| r.get(0))?;
    Ok(usize::try_from(count_from_db(n)).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    //! What only SQLite has: the file (its creation, header, damage, WAL, application id) and how
    //! an existing file is refused. The behaviour every backend shares is the conformance suite,
    //! tests/support/conformance.rs, run on SQLite by tests/store_sqlite.rs.

    use super::*;
    use chrono::NaiveTime;
    use chrono_tz::Europe::London;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use tempfile::TempDir;

    const GUILD: u64 = 1_100_000_000_000_000_001;
    const CHANNEL: u64 = 1_200_000_000_000_000_002;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn monday_9_london() -> FeedSpec {
        FeedSpec {
            schedule: crate::weekly::schedule::Schedule::weekly(
                chrono::Weekday::Mon,
                NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                London,
            ),
            topic: None,
            thread: false,
            ping_role: None,
            forum: false,
        }
    }

    fn db(dir: &TempDir) -> PathBuf {
        dir.path().join("state").join("insight-bot.db")
    }

    /// A second, plain connection to the file, as an operator's `sqlite3` shell would be.
    fn raw(path: &Path) -> Connection {
        Connection::open(path).unwrap()
    }

    // ---- opening ----

    #[test]
    fn open_creates_the_file_and_its_directory_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        assert!(!path.exists());
        let store = SqliteBackend::open(&path).unwrap();
        assert!(path.is_file());
        assert_eq!(store.path(), path);
        let mode: String = raw(&path)
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = raw(&path)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        store
            .set_feed(
                FeedId::new(GUILD, CHANNEL),
                &monday_9_london(),
                utc("2026-03-03T10:00:00Z"),
            )
            .unwrap();
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        assert!(
            wal.is_file(),
            "{} should exist after a write",
            wal.display()
        );
        let conn = store.conn.lock().unwrap();
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!((fk, sync), (1, 1), "foreign_keys on, synchronous NORMAL");
    }

    #[test]
    fn an_empty_file_is_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("touched.db");
        fs::write(&path, b"").unwrap();
        let store = SqliteBackend::open(&path).unwrap();
        assert_eq!(store.feed(FeedId::new(GUILD, CHANNEL)).unwrap(), None);
    }

    /// `SqliteBackend::open` on `bytes` fails with a `Corrupt` error naming the file, which is left as is.
    fn assert_refused_unchanged(bytes: &[u8]) -> StoreError {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("insight-bot.db");
        fs::write(&path, bytes).unwrap();
        let err = SqliteBackend::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "the file must not change");
        err
    }

    #[test]
    fn a_file_of_random_bytes_is_refused_and_left_unchanged() {
        use rand::RngCore;
        let mut bytes = vec![0u8; 8192];
        StdRng::seed_from_u64(3).fill_bytes(&mut bytes);
        let err = assert_refused_unchanged(&bytes);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("restore it from a backup"), "{message}");
        assert!(message.contains("move it aside"), "{message}");
    }

    #[test]
    fn a_text_file_is_refused_and_left_unchanged() {
        let err = assert_refused_unchanged(b"DISCORD_TOKEN=oops, this is the .env file\n");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_sqlite_header_followed_by_garbage_is_refused_and_left_unchanged() {
        use rand::RngCore;
        let mut bytes = vec![0u8; 4096];
        StdRng::seed_from_u64(4).fill_bytes(&mut bytes);
        bytes[..16].copy_from_slice(SQLITE_HEADER);
        let err = assert_refused_unchanged(&bytes);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_damaged_database_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("insight-bot.db");
        {
            let store = SqliteBackend::open(&path).unwrap();
            for g in 1..=300 {
                store
                    .set_feed(
                        FeedId::new(g, CHANNEL),
                        &monday_9_london(),
                        utc("2026-03-03T10:00:00Z"),
                    )
                    .unwrap();
            }
        }
        let mut bytes = fs::read(&path).unwrap();
        assert!(bytes.len() > 4 * 4096, "{} bytes", bytes.len());
        // Stomp on the middle of the weekly table's pages, keeping the header and schema page.
        for b in &mut bytes[2 * 4096 + 8..4 * 4096] {
            *b = 0xA5;
        }
        let err = assert_refused_unchanged(&bytes);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn another_programs_database_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        raw(&path)
            .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
        let before = fs::read(&path).unwrap();
        let err = SqliteBackend::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::NotOurs { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        drop(SqliteBackend::open(&path).unwrap());
        raw(&path).pragma_update(None, "user_version", 99).unwrap();
        let before = fs::read(&path).unwrap();
        let err = SqliteBackend::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found: 99, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("was written by a newer insight-bot"),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_directory_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteBackend::open(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    // ---- deleting what people wrote ----

    /// Which of the database's files (the file, its -wal, its -shm) hold `text`, byte for byte.
    fn files_holding(path: &Path, text: &str) -> Vec<String> {
        let mut holding = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            let bytes = fs::read(&file).unwrap_or_default();
            if bytes.windows(text.len()).any(|w| w == text.as_bytes()) {
                holding.push(file.display().to_string());
            }
        }
        holding
    }

    fn asked(id: u64, day: &str, question: &str) -> NewAnswer {
        NewAnswer {
            id,
            guild_id: Some(GUILD),
            day: day.parse().unwrap(),
            insight_id: None,
            no_close_match: true,
            weak: false,
            question: Some(question.to_string()),
            question_vector: None,
        }
    }

    #[test]
    fn turning_gaps_off_leaves_the_questions_in_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let store = SqliteBackend::open(&path).unwrap();
        store.set_gaps(GUILD, true).unwrap();
        let secret = "zqx-turned-off-4711 how do I tell my boss I am leaving";
        store
            .record_answers(&[asked(1, "2026-03-02", secret)])
            .unwrap();
        assert!(
            !files_holding(&path, secret).is_empty(),
            "the question is written somewhere before it is deleted"
        );
        assert_eq!(store.set_gaps(GUILD, false).unwrap(), 1);
        // The store is still open: its -wal and -shm exist, as on a running bot.
        assert_eq!(files_holding(&path, secret), Vec::<String>::new());
        drop(store);
        assert_eq!(files_holding(&path, secret), Vec::<String>::new());
    }

    #[test]
    fn pruned_questions_and_suggestions_are_in_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let store = SqliteBackend::open(&path).unwrap();
        store.set_gaps(GUILD, true).unwrap();
        let question = "zqx-pruned-0815 should I report my manager to HR";
        store
            .record_answers(&[
                asked(1, "2026-03-02", question),
                asked(2, "2026-03-30", "a newer question, kept"),
            ])
            .unwrap();
        let text = "zqx-suggestion-2323 a member's own words";
        let suggestion = store
            .add_suggestion(
                NewSuggestion {
                    guild_id: GUILD,
                    author_id: 5,
                    title: "A title".into(),
                    text: text.into(),
                    why: None,
                    now: utc("2026-01-02T10:00:00Z"),
                },
                5,
                50,
            )
            .unwrap();
        store
            .decide_suggestion(
                GUILD,
                suggestion.id,
                Decision::Reject { reason: None },
                6,
                utc("2026-01-03T10:00:00Z"),
            )
            .unwrap();
        assert_eq!(files_holding(&path, question).len(), 1, "in the WAL");
        assert_eq!(files_holding(&path, text).len(), 1, "in the WAL");
        let pruned = store.prune("2026-04-15".parse().unwrap()).unwrap();
        assert_eq!((pruned.questions, pruned.suggestions), (1, 1));
        assert_eq!(files_holding(&path, question), Vec::<String>::new());
        assert_eq!(files_holding(&path, text), Vec::<String>::new());
        assert_eq!(
            files_holding(&path, "a newer question, kept").len(),
            1,
            "what is kept is still there (in the file now)"
        );
    }

    #[test]
    fn questions_over_the_cap_are_in_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let store = SqliteBackend::open(&path).unwrap();
        store.set_gaps(GUILD, true).unwrap();
        let oldest = "zqx-over-the-cap-9001 the oldest question";
        store
            .record_answers(&[asked(1, "2026-01-01", oldest)])
            .unwrap();
        let newer: Vec<NewAnswer> = (2..=super::super::KEPT_QUESTIONS_PER_SERVER as u64 + 1)
            .map(|id| asked(id, "2026-01-02", "a newer question"))
            .collect();
        store.record_answers(&newer).unwrap();
        assert_eq!(files_holding(&path, oldest), Vec::<String>::new());
    }

    // ---- sharing ----

    #[test]
    fn the_store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SqliteBackend>();
    }
}
