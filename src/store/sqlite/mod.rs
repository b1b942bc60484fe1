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

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Timelike, Utc, Weekday};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction};
use rusqlite::{Params, TransactionBehavior};

use super::{
    answer_totals, count_from_db, list_json, parse_list, post_nonce, questions_over_cap,
    retention_cutoffs, vote_change, Backend, Claim, Decision, Failure, Gap, InsightSource, Limit,
    NewAnswer, NewSuggestion, PostRecord, PostSource, Pruned, ReviewMessage, SaveOutcome,
    ServerInsight, ServerSettings, StoreError, StoredVectors, Suggestion, SuggestionStatus,
    UsageScope, UsageStats, Vote, VoteOutcome, WeeklySettings, VOTE_WINDOW_DAYS,
};
use crate::insights::{Insight, Source};
use crate::stats::{DayAnswers, InsightUse};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{WeekKey, WeeklySchedule};

/// The schema migrations, in order: `MIGRATIONS[i]` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_init.sql"),
    include_str!("../../../migrations/0002_server_insights.sql"),
    include_str!("../../../migrations/0003_usage.sql"),
    include_str!("../../../migrations/0004_gap_vectors.sql"),
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

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// What to tell the operator when the file cannot be used as it is.
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
            Fault::NoClaim { guild_id, week } => StoreError::NoClaim {
                database,
                guild_id,
                week,
            },
            Fault::Limit { what, limit } => StoreError::Limit { what, limit },
        }
    }
}

impl Backend for SqliteBackend {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    // ---- weekly settings ----

    fn set_weekly(
        &self,
        guild_id: u64,
        channel_id: u64,
        schedule: &WeeklySchedule,
        now: DateTime<Utc>,
    ) -> Result<WeeklySettings, StoreError> {
        self.write(|tx| {
            upsert_weekly(tx, guild_id, channel_id, schedule, now)?;
            select_weekly(tx, guild_id)?.ok_or(Fault::Sql(rusqlite::Error::QueryReturnedNoRows))
        })
    }

    fn disable_weekly(&self, guild_id: u64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE weekly SET enabled = 0, updated_at = ?2 WHERE guild_id = ?1 AND enabled = 1",
                params![db_id(guild_id), db_time(now)],
            )?;
            Ok(changed > 0)
        })
    }

    fn weekly(&self, guild_id: u64) -> Result<Option<WeeklySettings>, StoreError> {
        self.read(|conn| select_weekly(conn, guild_id))
    }

    fn active_weeklies(&self) -> Result<Vec<WeeklySettings>, StoreError> {
        let sql = format!(
            "SELECT {WEEKLY_COLUMNS} FROM weekly \
             WHERE enabled = 1 AND failure_reason IS NULL ORDER BY guild_id"
        );
        let rows = self.read(|conn| query_all(conn, &sql, [], WeeklyRow::read))?;
        Ok(self.keep_valid(rows, WeeklyRow::into_settings))
    }

    fn mark_failing(
        &self,
        guild_id: u64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE weekly SET failure_reason = ?2, failed_at = ?3, updated_at = ?3 \
                 WHERE guild_id = ?1",
                params![db_id(guild_id), reason, db_time(now)],
            )?;
            Ok(())
        })
    }

    // ---- posts ----

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
    ) -> Result<Option<Claim>, StoreError> {
        if week.monday().is_none() {
            return Err(StoreError::InvalidWeek { week });
        }
        self.write(|tx| {
            if let Some(existing) = select_post(tx, guild_id, week)? {
                return Ok(Some(Claim::AlreadyClaimed(existing)));
            }
            let rotation = select_rotation(tx, guild_id)?;
            let Some((insight_id, next)) = rotation.next(insight_ids, rng) else {
                return Ok(None);
            };
            // The primary key decides. Under BEGIN IMMEDIATE no other writer can have inserted
            // since the check above, but if one ever did, its row wins and the rotation is left
            // as it was, because it is written only after our insert succeeded.
            let inserted = tx.execute(
                "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, \
                     nonce, source, claimed_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                 ON CONFLICT (guild_id, iso_year, iso_week) DO NOTHING",
                params![
                    db_id(guild_id),
                    week.year,
                    week.week,
                    db_id(channel_id),
                    insight_id,
                    post_nonce(guild_id, week),
                    source.as_str(),
                    db_time(now),
                ],
            )?;
            let record =
                select_post(tx, guild_id, week)?.ok_or(Fault::NoClaim { guild_id, week })?;
            if inserted == 0 {
                return Ok(Some(Claim::AlreadyClaimed(record)));
            }
            save_rotation(tx, guild_id, &next, now)?;
            Ok(Some(Claim::Claimed(record)))
        })
    }

    fn record_attempt(
        &self,
        guild_id: u64,
        week: WeekKey,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE post_log SET attempts = attempts + ?4, last_error = ?5, retry_at = ?6, \
                     updated_at = ?7 \
                 WHERE guild_id = ?1 AND iso_year = ?2 AND iso_week = ?3",
                params![
                    db_id(guild_id),
                    week.year,
                    week.week,
                    i64::from(error.is_none()),
                    error,
                    retry_at.map(db_time),
                    db_time(now),
                ],
            )?;
            let record = select_post(tx, guild_id, week)?;
            match record {
                Some(record) if changed > 0 => Ok(record),
                _ => Err(Fault::NoClaim { guild_id, week }),
            }
        })
    }

    fn confirm_post(
        &self,
        guild_id: u64,
        week: WeekKey,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE post_log SET message_id = ?4, posted_at = ?5, retry_at = NULL, \
                     updated_at = ?5 \
                 WHERE guild_id = ?1 AND iso_year = ?2 AND iso_week = ?3 AND message_id IS NULL",
                params![
                    db_id(guild_id),
                    week.year,
                    week.week,
                    db_id(message_id),
                    db_time(now)
                ],
            )?;
            if changed == 0 {
                match select_post(tx, guild_id, week)? {
                    None => return Err(Fault::NoClaim { guild_id, week }),
                    Some(record) if record.message_id != Some(message_id) => {
                        tracing::warn!(
                            guild_id,
                            %week,
                            kept = ?record.message_id,
                            ignored = message_id,
                            "weekly post confirmed twice with different messages; keeping the first"
                        );
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        })
    }

    fn release_claim(&self, guild_id: u64, week: WeekKey) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM post_log \
                 WHERE guild_id = ?1 AND iso_year = ?2 AND iso_week = ?3 AND message_id IS NULL",
                params![db_id(guild_id), week.year, week.week],
            )?;
            Ok(())
        })
    }

    fn post(&self, guild_id: u64, week: WeekKey) -> Result<Option<PostRecord>, StoreError> {
        self.read(|conn| select_post(conn, guild_id, week))
    }

    fn last_post(&self, guild_id: u64) -> Result<Option<PostRecord>, StoreError> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM post_log \
             WHERE guild_id = ?1 AND message_id IS NOT NULL \
             ORDER BY iso_year DESC, iso_week DESC LIMIT 1"
        );
        self.read(|conn| {
            conn.prepare_cached(&sql)?
                .query_row([db_id(guild_id)], PostRow::read)
                .optional()?
                .map(PostRow::into_record)
                .transpose()
        })
    }

    fn claimed_slots_since(
        &self,
        week: WeekKey,
    ) -> Result<std::collections::HashSet<(u64, WeekKey)>, StoreError> {
        let rows = self.read(|conn| {
            query_all(
                conn,
                "SELECT guild_id, iso_year, iso_week FROM post_log \
                 WHERE (iso_year, iso_week) >= (?1, ?2)",
                rusqlite::params![week.year, week.week],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i32>(1)?,
                        row.get::<_, u32>(2)?,
                    ))
                },
            )
        })?;
        Ok(rows
            .into_iter()
            .map(|(guild, year, week)| (guild as u64, WeekKey { year, week }))
            .collect())
    }

    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError> {
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM post_log WHERE message_id IS NULL \
             ORDER BY iso_year, iso_week, guild_id"
        );
        let rows = self.read(|conn| query_all(conn, &sql, [], PostRow::read))?;
        Ok(self.keep_valid(rows, PostRow::into_record))
    }

    fn rotation(&self, guild_id: u64) -> Result<RotationState, StoreError> {
        self.read(|conn| select_rotation(conn, guild_id))
    }

    // ---- a server's own insights ----

    fn server_insights(&self, guild_id: u64) -> Result<Vec<ServerInsight>, StoreError> {
        let sql = format!(
            "SELECT {SERVER_INSIGHT_COLUMNS} FROM server_insight WHERE guild_id = ?1 \
             ORDER BY insight_id"
        );
        self.read(|conn| {
            query_all(conn, &sql, [db_id(guild_id)], ServerInsightRow::read)?
                .into_iter()
                .map(ServerInsightRow::into_insight)
                .collect()
        })
    }

    fn all_server_insights(&self) -> Result<Vec<ServerInsight>, StoreError> {
        let sql = format!(
            "SELECT {SERVER_INSIGHT_COLUMNS} FROM server_insight ORDER BY guild_id, insight_id"
        );
        let rows = self.read(|conn| query_all(conn, &sql, [], ServerInsightRow::read))?;
        Ok(self.keep_valid(rows, ServerInsightRow::into_insight))
    }

    fn server_insight_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        self.read(|conn| count_server_insights(conn, guild_id))
    }

    fn save_server_insights(
        &self,
        guild_id: u64,
        insights: &[ServerInsight],
        limit: usize,
    ) -> Result<SaveOutcome, StoreError> {
        self.write(|tx| save_server_insights(tx, guild_id, insights, limit))
    }

    fn delete_server_insight(&self, guild_id: u64, insight_id: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            let deleted = tx.execute(
                "DELETE FROM server_insight WHERE guild_id = ?1 AND insight_id = ?2",
                params![db_id(guild_id), insight_id],
            )?;
            Ok(deleted > 0)
        })
    }

    // ---- a server's settings ----

    fn server_settings(&self, guild_id: u64) -> Result<ServerSettings, StoreError> {
        self.read(|conn| {
            let row = conn
                .prepare_cached(
                    "SELECT insight_source, curator_role, review_channel, gaps \
                     FROM server_settings WHERE guild_id = ?1",
                )?
                .query_row([db_id(guild_id)], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<i64>>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            let hidden = query_all(
                conn,
                "SELECT insight_id FROM hidden_insight WHERE guild_id = ?1 ORDER BY insight_id",
                [db_id(guild_id)],
                |row| row.get::<_, String>(0),
            )?;
            let mut settings = ServerSettings {
                hidden,
                ..ServerSettings::default()
            };
            if let Some((source, curator_role, review_channel, gaps)) = row {
                settings.source = InsightSource::parse(&source).ok_or_else(|| Fault::BadRow {
                    table: "server_settings",
                    guild_id,
                    detail: format!("unknown insight source {source:?}"),
                })?;
                settings.curator_role = curator_role.map(from_db_id);
                settings.review_channel = review_channel.map(from_db_id);
                settings.gaps = gaps;
            }
            Ok(settings)
        })
    }

    fn set_insight_source(&self, guild_id: u64, source: InsightSource) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO server_settings (guild_id, insight_source) VALUES (?1, ?2) \
                 ON CONFLICT (guild_id) DO UPDATE SET insight_source = excluded.insight_source",
                params![db_id(guild_id), source.as_str()],
            )?;
            Ok(())
        })
    }

    fn set_curator_role(&self, guild_id: u64, role_id: Option<u64>) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO server_settings (guild_id, curator_role) VALUES (?1, ?2) \
                 ON CONFLICT (guild_id) DO UPDATE SET curator_role = excluded.curator_role",
                params![db_id(guild_id), role_id.map(db_id)],
            )?;
            Ok(())
        })
    }

    fn set_review_channel(&self, guild_id: u64, channel_id: Option<u64>) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO server_settings (guild_id, review_channel) VALUES (?1, ?2) \
                 ON CONFLICT (guild_id) DO UPDATE SET review_channel = excluded.review_channel",
                params![db_id(guild_id), channel_id.map(db_id)],
            )?;
            Ok(())
        })
    }

    fn set_hidden(
        &self,
        guild_id: u64,
        insight_id: &str,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        let sql = if hidden {
            "INSERT INTO hidden_insight (guild_id, insight_id) VALUES (?1, ?2) \
             ON CONFLICT (guild_id, insight_id) DO NOTHING"
        } else {
            "DELETE FROM hidden_insight WHERE guild_id = ?1 AND insight_id = ?2"
        };
        self.write(|tx| Ok(tx.execute(sql, params![db_id(guild_id), insight_id])? > 0))
    }

    // ---- suggestions ----

    fn add_suggestion(
        &self,
        suggestion: NewSuggestion,
        per_author_pending_limit: usize,
        per_server_pending_limit: usize,
    ) -> Result<Suggestion, StoreError> {
        let guild = db_id(suggestion.guild_id);
        // BEGIN IMMEDIATE: no other connection, in this process or another, writes between the
        // counts and the insert.
        self.write(|tx| {
            let author_pending = count(
                tx,
                "SELECT count(*) FROM suggestion \
                 WHERE guild_id = ?1 AND author_id = ?2 AND status = 'pending'",
                params![guild, db_id(suggestion.author_id)],
            )?;
            if author_pending >= per_author_pending_limit {
                return Err(Fault::Limit {
                    what: Limit::AuthorPendingSuggestions,
                    limit: per_author_pending_limit,
                });
            }
            let server_pending = count(
                tx,
                "SELECT count(*) FROM suggestion WHERE guild_id = ?1 AND status = 'pending'",
                params![guild],
            )?;
            if server_pending >= per_server_pending_limit {
                return Err(Fault::Limit {
                    what: Limit::ServerPendingSuggestions,
                    limit: per_server_pending_limit,
                });
            }
            let sql = format!(
                "INSERT INTO suggestion (guild_id, author_id, title, text, why, status, \
                     created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) \
                 RETURNING {SUGGESTION_COLUMNS}"
            );
            tx.prepare_cached(&sql)?
                .query_row(
                    params![
                        guild,
                        db_id(suggestion.author_id),
                        suggestion.title,
                        suggestion.text,
                        suggestion.why,
                        db_time(suggestion.now),
                    ],
                    SuggestionRow::read,
                )?
                .into_suggestion()
        })
    }

    fn suggestion(&self, guild_id: u64, id: u64) -> Result<Option<Suggestion>, StoreError> {
        let sql =
            format!("SELECT {SUGGESTION_COLUMNS} FROM suggestion WHERE guild_id = ?1 AND id = ?2");
        self.read(|conn| {
            conn.prepare_cached(&sql)?
                .query_row(params![db_id(guild_id), db_id(id)], SuggestionRow::read)
                .optional()?
                .map(SuggestionRow::into_suggestion)
                .transpose()
        })
    }

    fn oldest_pending_suggestion(&self, guild_id: u64) -> Result<Option<Suggestion>, StoreError> {
        let sql = format!(
            "SELECT {SUGGESTION_COLUMNS} FROM suggestion \
             WHERE guild_id = ?1 AND status = 'pending' ORDER BY created_at, id LIMIT 1"
        );
        self.read(|conn| {
            conn.prepare_cached(&sql)?
                .query_row([db_id(guild_id)], SuggestionRow::read)
                .optional()?
                .map(SuggestionRow::into_suggestion)
                .transpose()
        })
    }

    fn pending_suggestion_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        self.read(|conn| {
            count(
                conn,
                "SELECT count(*) FROM suggestion WHERE guild_id = ?1 AND status = 'pending'",
                [db_id(guild_id)],
            )
        })
    }

    fn decide_suggestion(
        &self,
        guild_id: u64,
        id: u64,
        decision: Decision,
        decided_by: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, StoreError> {
        let (status, reason, insight_id) = match &decision {
            Decision::Approve { insight, .. } => (
                SuggestionStatus::Approved,
                None,
                Some(insight.insight.id.as_str()),
            ),
            Decision::Reject { reason } => (SuggestionStatus::Rejected, reason.as_deref(), None),
        };
        let sql = format!(
            "UPDATE suggestion SET status = ?3, reason = ?4, insight_id = ?5, decided_at = ?6, \
                 decided_by = ?7 \
             WHERE guild_id = ?1 AND id = ?2 AND status = 'pending' \
             RETURNING {SUGGESTION_COLUMNS}"
        );
        self.write(|tx| {
            let decided = tx
                .prepare_cached(&sql)?
                .query_row(
                    params![
                        db_id(guild_id),
                        db_id(id),
                        status.as_str(),
                        reason,
                        insight_id,
                        db_time(now),
                        db_id(decided_by),
                    ],
                    SuggestionRow::read,
                )
                .optional()?;
            let Some(decided) = decided else {
                return Ok(None); // none such, or already decided
            };
            if let Decision::Approve { insight, limit } = &decision {
                // Refused here, the transaction rolls back: the suggestion stays pending.
                save_server_insights(tx, guild_id, std::slice::from_ref(insight), *limit)?;
            }
            decided.into_suggestion().map(Some)
        })
    }

    fn set_suggestion_review_message(
        &self,
        guild_id: u64,
        id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE suggestion SET review_channel_id = ?3, review_message_id = ?4 \
                 WHERE guild_id = ?1 AND id = ?2",
                params![
                    db_id(guild_id),
                    db_id(id),
                    db_id(channel_id),
                    db_id(message_id)
                ],
            )?;
            Ok(changed > 0)
        })
    }

    // ---- how often insights were shown ----

    fn record_shown(
        &self,
        guild_id: u64,
        insight_id: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO insight_shown (guild_id, insight_id, count) VALUES (?1, ?2, 1) \
                 ON CONFLICT (guild_id, insight_id) \
                 DO UPDATE SET count = insight_shown.count + 1",
            )?
            .execute(params![db_id(guild_id), insight_id])?;
            tx.prepare_cached(
                "INSERT INTO usage_day (guild_id, day, insight_id, shown) VALUES (?1, ?2, ?3, 1) \
                 ON CONFLICT (guild_id, day, insight_id) \
                 DO UPDATE SET shown = usage_day.shown + 1",
            )?
            .execute(params![db_id(guild_id), db_day(day), insight_id])?;
            Ok(())
        })
    }

    fn shown_counts(&self, guild_id: u64) -> Result<HashMap<String, u64>, StoreError> {
        let rows = self.read(|conn| {
            query_all(
                conn,
                "SELECT insight_id, count FROM insight_shown WHERE guild_id = ?1",
                [db_id(guild_id)],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
            )
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, n)| (id, count_from_db(n)))
            .collect())
    }

    // ---- answers, votes, usage and gaps ----

    fn record_answers(&self, answers: &[NewAnswer]) -> Result<Vec<u64>, StoreError> {
        if answers.is_empty() {
            return Ok(Vec::new());
        }
        let totals = answer_totals(answers);
        self.write_erasing(|tx| {
            // Under BEGIN IMMEDIATE no set_gaps can commit between this read and the inserts.
            let mut gaps_on: HashMap<u64, bool> = HashMap::new();
            let mut insert = tx.prepare_cached(
                "INSERT INTO answer (id, guild_id, day, insight_id, no_close_match, question, \
                     question_vector, question_model) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for answer in answers {
                let question = match (answer.guild_id, &answer.question) {
                    (Some(guild), Some(question)) => {
                        let on = match gaps_on.get(&guild) {
                            Some(&on) => on,
                            None => {
                                let on = gaps_enabled(tx, guild)?;
                                gaps_on.insert(guild, on);
                                on
                            }
                        };
                        on.then_some(question.as_str())
                    }
                    _ => None,
                };
                let vector = answer
                    .question_vector
                    .as_ref()
                    .filter(|_| question.is_some());
                insert.execute(params![
                    db_id(answer.id),
                    db_id(answer.guild_id.unwrap_or(0)),
                    db_day(answer.day),
                    answer.insight_id,
                    answer.no_close_match,
                    question,
                    vector.map(|v| &v.bytes),
                    vector.map(|v| db_id(v.fingerprint)),
                ])?;
            }
            let mut trimmed = 0;
            for (&guild, _) in gaps_on.iter().filter(|(_, &on)| on) {
                trimmed += trim_kept_questions(tx, guild)?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO usage_day (guild_id, day, insight_id, answers, no_close_match) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                     answers = usage_day.answers + excluded.answers, \
                     no_close_match = usage_day.no_close_match + excluded.no_close_match",
            )?;
            for ((guild, day, insight), (count, no_match)) in &totals {
                upsert.execute(params![
                    db_id(*guild),
                    db_day(*day),
                    insight,
                    count,
                    no_match
                ])?;
            }
            Ok((answers.iter().map(|a| a.id).collect(), trimmed > 0))
        })
    }

    fn record_vote(
        &self,
        answer_id: u64,
        voter: &[u8; 32],
        vote: Vote,
        today: NaiveDate,
    ) -> Result<VoteOutcome, StoreError> {
        let open_since = db_day(today - chrono::Duration::days(VOTE_WINDOW_DAYS));
        self.write(|tx| {
            let answer = tx
                .prepare_cached(
                    "SELECT guild_id, day, coalesce(insight_id, ''), day < ?2 \
                     FROM answer WHERE id = ?1",
                )?
                .query_row(params![db_id(answer_id), open_since], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            let Some((guild, day, insight, closed)) = answer else {
                return Ok(VoteOutcome::UnknownAnswer);
            };
            if closed {
                return Ok(VoteOutcome::Closed);
            }
            let old = tx
                .prepare_cached("SELECT vote FROM answer_vote WHERE answer_id = ?1 AND voter = ?2")?
                .query_row(params![db_id(answer_id), &voter[..]], |row| {
                    row.get::<_, String>(0)
                })
                .optional()?;
            let old = old
                .map(|text| {
                    Vote::parse(&text).ok_or_else(|| Fault::BadRow {
                        table: "answer_vote",
                        guild_id: from_db_id(guild),
                        detail: format!("unknown vote {text:?}"),
                    })
                })
                .transpose()?;
            let (outcome, helpful, not_helpful) = vote_change(old, vote);
            if outcome == VoteOutcome::Unchanged {
                return Ok(outcome);
            }
            tx.prepare_cached(
                "INSERT INTO answer_vote (answer_id, voter, vote) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (answer_id, voter) DO UPDATE SET vote = excluded.vote",
            )?
            .execute(params![db_id(answer_id), &voter[..], vote.as_str()])?;
            tx.prepare_cached(
                "INSERT INTO usage_day (guild_id, day, insight_id, helpful, not_helpful) \
                 VALUES (?1, ?2, ?3, max(?4, 0), max(?5, 0)) \
                 ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                     helpful = usage_day.helpful + ?4, \
                     not_helpful = usage_day.not_helpful + ?5",
            )?
            .execute(params![guild, day, insight, helpful, not_helpful])?;
            if not_helpful != 0 {
                tx.prepare_cached(
                    "UPDATE answer SET not_helpful = not_helpful + ?2 WHERE id = ?1",
                )?
                .execute(params![db_id(answer_id), not_helpful])?;
            }
            Ok(outcome)
        })
    }

    fn usage_stats(
        &self,
        scope: UsageScope,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<UsageStats, StoreError> {
        let guild = match scope {
            UsageScope::Server(guild) => Some(db_id(guild)),
            UsageScope::DirectMessages => Some(0),
            UsageScope::Everywhere => None,
        };
        // The same filter for both queries; `?3` is the server (0: direct messages).
        let filter = if guild.is_some() {
            "guild_id = ?3 AND day BETWEEN ?1 AND ?2"
        } else {
            "day BETWEEN ?1 AND ?2"
        };
        let days_sql = format!(
            "SELECT day, sum(answers), sum(no_close_match) FROM usage_day WHERE {filter} \
             GROUP BY day HAVING sum(answers) > 0 ORDER BY day"
        );
        let insights_sql = format!(
            "SELECT insight_id, sum(shown), sum(helpful), sum(not_helpful) FROM usage_day \
             WHERE {filter} AND insight_id <> '' GROUP BY insight_id \
             HAVING sum(shown) > 0 OR sum(helpful) > 0 OR sum(not_helpful) > 0 \
             ORDER BY insight_id"
        );
        let (since, until) = (db_day(since), db_day(until));
        self.read(|conn| {
            // One snapshot for both.
            let snapshot = conn.unchecked_transaction()?;
            let mut days = Vec::new();
            {
                let mut stmt = snapshot.prepare_cached(&days_sql)?;
                let mut rows = match guild {
                    Some(g) => stmt.query(params![since, until, g])?,
                    None => stmt.query(params![since, until])?,
                };
                while let Some(row) = rows.next()? {
                    let text: String = row.get(0)?;
                    days.push(DayAnswers {
                        day: parse_day("usage_day", &text)?,
                        answers: count_from_db(row.get(1)?),
                        no_close_match: count_from_db(row.get(2)?),
                    });
                }
            }
            let mut insights = Vec::new();
            {
                let mut stmt = snapshot.prepare_cached(&insights_sql)?;
                let mut rows = match guild {
                    Some(g) => stmt.query(params![since, until, g])?,
                    None => stmt.query(params![since, until])?,
                };
                while let Some(row) = rows.next()? {
                    insights.push(InsightUse {
                        id: row.get(0)?,
                        shown: count_from_db(row.get(1)?),
                        helpful: count_from_db(row.get(2)?),
                        not_helpful: count_from_db(row.get(3)?),
                    });
                }
            }
            snapshot.commit()?;
            Ok(UsageStats { days, insights })
        })
    }

    fn set_gaps(&self, guild_id: u64, on: bool) -> Result<u64, StoreError> {
        self.write_erasing(|tx| {
            tx.execute(
                "INSERT INTO server_settings (guild_id, gaps) VALUES (?1, ?2) \
                 ON CONFLICT (guild_id) DO UPDATE SET gaps = excluded.gaps",
                params![db_id(guild_id), on],
            )?;
            if on {
                return Ok((0, false));
            }
            let cleared = tx.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE guild_id = ?1 AND question IS NOT NULL"
                ),
                [db_id(guild_id)],
            )?;
            Ok((cleared as u64, cleared > 0))
        })
    }

    fn gaps(&self, guild_id: u64, since: NaiveDate, limit: usize) -> Result<Vec<Gap>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, question, day, no_close_match, not_helpful, question_vector, \
                     question_model FROM ( \
                     SELECT a.id, a.question, a.day, a.no_close_match, \
                         a.not_helpful > 0 AS not_helpful, a.question_vector, a.question_model \
                     FROM answer a \
                     WHERE a.guild_id = ?1 AND a.question IS NOT NULL AND a.day >= ?2) \
                 WHERE no_close_match OR not_helpful \
                 ORDER BY day DESC, id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![db_id(guild_id), db_day(since), limit], |row| {
                Ok((
                    (
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, bool>(3)?,
                        row.get::<_, bool>(4)?,
                    ),
                    row.get::<_, Option<Vec<u8>>>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        rows.into_iter()
            .map(
                |((id, question, day, no_close_match, not_helpful), bytes, model)| {
                    Ok(Gap {
                        answer_id: from_db_id(id),
                        question,
                        day: parse_day("answer", &day).map_err(|fault| self.error(fault))?,
                        no_close_match,
                        not_helpful,
                        // The schema keeps both or neither.
                        vector: bytes.zip(model).map(|(bytes, model)| StoredVectors {
                            fingerprint: from_db_id(model),
                            bytes,
                        }),
                    })
                },
            )
            .collect()
    }

    fn set_gap_vectors(
        &self,
        guild_id: u64,
        vectors: &[(u64, StoredVectors)],
    ) -> Result<u64, StoreError> {
        if vectors.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let mut update = tx.prepare_cached(
                "UPDATE answer SET question_vector = ?3, question_model = ?4 \
                 WHERE id = ?1 AND guild_id = ?2 AND question IS NOT NULL",
            )?;
            let mut stored = 0;
            for (id, vector) in vectors {
                stored += update.execute(params![
                    db_id(*id),
                    db_id(guild_id),
                    vector.bytes,
                    db_id(vector.fingerprint)
                ])?;
            }
            Ok(stored as u64)
        })
    }

    fn prune(&self, today: NaiveDate) -> Result<Pruned, StoreError> {
        let cutoffs = retention_cutoffs(today);
        self.write_erasing(|tx| {
            // Votes go with their answers: foreign keys are on (see open_once).
            let answers = tx.execute(
                "DELETE FROM answer WHERE day < ?1",
                [db_day(cutoffs.answers)],
            )?;
            let old_gaps = tx.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE question IS NOT NULL AND day < ?1"
                ),
                [db_day(cutoffs.gaps)],
            )?;
            let not_gaps = tx.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE question IS NOT NULL AND day < ?1 AND NOT no_close_match \
                     AND not_helpful = 0"
                ),
                [db_day(today)],
            )?;
            let voter_keys = tx.execute(
                "DELETE FROM answer_vote WHERE answer_id IN (SELECT id FROM answer WHERE day < ?1)",
                [db_day(today - chrono::Duration::days(VOTE_WINDOW_DAYS))],
            )?;
            let suggestions = tx.execute(
                "DELETE FROM suggestion WHERE decided_at IS NOT NULL AND decided_at < ?1",
                [db_time(cutoffs.decided)],
            )?;
            let pruned = Pruned {
                answers: answers as u64,
                questions: (old_gaps + not_gaps) as u64,
                voter_keys: voter_keys as u64,
                suggestions: suggestions as u64,
            };
            let erased = pruned != Pruned::default();
            Ok((pruned, erased))
        })
    }

    fn secret(&self) -> Result<[u8; 32], StoreError> {
        if let Some(secret) = self.read(select_secret)? {
            return Ok(secret);
        }
        let mut fresh = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        self.write(|tx| {
            // Another process may have made one since the read: its secret stays.
            tx.execute(
                "INSERT INTO secret (id, value) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                [&fresh[..]],
            )?;
            select_secret(tx)?.ok_or(Fault::Sql(rusqlite::Error::QueryReturnedNoRows))
        })
    }
}

/// Clears a server's oldest kept questions beyond [`super::KEPT_QUESTIONS_PER_SERVER`] (see
/// [`questions_over_cap`]); returns how many. Oldest by day, then by id (random: in no set order
/// within a day).
fn trim_kept_questions(tx: &Transaction<'_>, guild_id: u64) -> Result<usize, Fault> {
    let kept = count(
        tx,
        "SELECT count(*) FROM answer WHERE guild_id = ?1 AND question IS NOT NULL",
        [db_id(guild_id)],
    )?;
    let over = questions_over_cap(kept);
    if over == 0 {
        return Ok(0);
    }
    Ok(tx.execute(
        concat!(
            "UPDATE answer SET ",
            clear_question!(),
            " WHERE id IN (SELECT id FROM answer WHERE guild_id = ?1 AND question IS NOT NULL \
               ORDER BY day, id LIMIT ?2)"
        ),
        params![db_id(guild_id), over as i64],
    )?)
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
        guild_id: u64,
        week: WeekKey,
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

/// The stored form of a weekday (`mon` .. `sun`), shared with the PostgreSQL backend.
pub(super) fn weekday_code(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
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

/// Whether a server keeps gap questions (off when it never changed its settings).
fn gaps_enabled(conn: &Connection, guild_id: u64) -> Result<bool, Fault> {
    Ok(conn
        .prepare_cached("SELECT gaps FROM server_settings WHERE guild_id = ?1")?
        .query_row([db_id(guild_id)], |row| row.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

fn select_secret(conn: &Connection) -> Result<Option<[u8; 32]>, Fault> {
    let value = conn
        .prepare_cached("SELECT value FROM secret WHERE id = 1")?
        .query_row([], |row| row.get::<_, Vec<u8>>(0))
        .optional()?;
    value
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Fault::BadRow {
                table: "secret",
                guild_id: 0,
                detail: format!("the secret is {} bytes, not 32", bytes.len()),
            })
        })
        .transpose()
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

const WEEKLY_COLUMNS: &str = "guild_id, channel_id, weekday, time, zone, enabled, active_since, \
     failure_reason, failed_at, updated_at";

/// A `weekly` row as stored, before parsing.
struct WeeklyRow {
    guild_id: i64,
    channel_id: i64,
    weekday: String,
    time: String,
    zone: String,
    enabled: bool,
    active_since: String,
    failure_reason: Option<String>,
    failed_at: Option<String>,
    updated_at: String,
}

impl WeeklyRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(WeeklyRow {
            guild_id: row.get(0)?,
            channel_id: row.get(1)?,
            weekday: row.get(2)?,
            time: row.get(3)?,
            zone: row.get(4)?,
            enabled: row.get(5)?,
            active_since: row.get(6)?,
            failure_reason: row.get(7)?,
            failed_at: row.get(8)?,
            updated_at: row.get(9)?,
        })
    }

    fn into_settings(self) -> Result<WeeklySettings, Fault> {
        const TABLE: &str = "weekly";
        let guild_id = from_db_id(self.guild_id);
        let schedule =
            WeeklySchedule::parse(&self.weekday, &self.time, &self.zone).map_err(|e| {
                Fault::BadRow {
                    table: TABLE,
                    guild_id,
                    detail: format!(
                        "the stored schedule {} {} {} no longer parses ({e}); run /weekly set \
                         again to replace it",
                        self.weekday, self.time, self.zone
                    ),
                }
            })?;
        let failure = match (self.failure_reason, self.failed_at) {
            (None, None) => None,
            (Some(reason), Some(at)) => Some(Failure {
                reason,
                at: parse_time(TABLE, guild_id, "failed_at", &at)?,
            }),
            _ => {
                return Err(Fault::BadRow {
                    table: TABLE,
                    guild_id,
                    detail: "failure_reason and failed_at must be set together".into(),
                })
            }
        };
        Ok(WeeklySettings {
            guild_id,
            channel_id: from_db_id(self.channel_id),
            schedule,
            enabled: self.enabled,
            active_since: parse_time(TABLE, guild_id, "active_since", &self.active_since)?,
            failure,
            updated_at: parse_time(TABLE, guild_id, "updated_at", &self.updated_at)?,
        })
    }
}

fn select_weekly(conn: &Connection, guild_id: u64) -> Result<Option<WeeklySettings>, Fault> {
    let sql = format!("SELECT {WEEKLY_COLUMNS} FROM weekly WHERE guild_id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([db_id(guild_id)], WeeklyRow::read)
        .optional()?
        .map(WeeklyRow::into_settings)
        .transpose()
}

fn upsert_weekly(
    conn: &Connection,
    guild_id: u64,
    channel_id: u64,
    schedule: &WeeklySchedule,
    now: DateTime<Utc>,
) -> Result<(), Fault> {
    let time = format!("{:02}:{:02}", schedule.time.hour(), schedule.time.minute());
    conn.prepare_cached(
        "INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, active_since, \
             failure_reason, failed_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, NULL, NULL, ?6) \
         ON CONFLICT (guild_id) DO UPDATE SET \
             channel_id = excluded.channel_id, weekday = excluded.weekday, \
             time = excluded.time, zone = excluded.zone, enabled = 1, \
             active_since = excluded.active_since, failure_reason = NULL, failed_at = NULL, \
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        db_id(guild_id),
        db_id(channel_id),
        weekday_code(schedule.weekday),
        time,
        schedule.zone.name(),
        db_time(now),
    ])?;
    Ok(())
}

const POST_COLUMNS: &str = "guild_id, iso_year, iso_week, channel_id, insight_id, nonce, source, \
     claimed_at, attempts, retry_at, last_error, message_id, posted_at";

/// A `post_log` row as stored, before parsing.
struct PostRow {
    guild_id: i64,
    iso_year: i64,
    iso_week: i64,
    channel_id: i64,
    insight_id: String,
    nonce: String,
    source: String,
    claimed_at: String,
    attempts: i64,
    retry_at: Option<String>,
    last_error: Option<String>,
    message_id: Option<i64>,
    posted_at: Option<String>,
}

impl PostRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(PostRow {
            guild_id: row.get(0)?,
            iso_year: row.get(1)?,
            iso_week: row.get(2)?,
            channel_id: row.get(3)?,
            insight_id: row.get(4)?,
            nonce: row.get(5)?,
            source: row.get(6)?,
            claimed_at: row.get(7)?,
            attempts: row.get(8)?,
            retry_at: row.get(9)?,
            last_error: row.get(10)?,
            message_id: row.get(11)?,
            posted_at: row.get(12)?,
        })
    }

    fn into_record(self) -> Result<PostRecord, Fault> {
        const TABLE: &str = "post_log";
        let guild_id = from_db_id(self.guild_id);
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail,
        };
        let week = match (i32::try_from(self.iso_year), u32::try_from(self.iso_week)) {
            (Ok(year), Ok(week)) => WeekKey { year, week },
            _ => {
                return Err(bad(format!(
                    "week {}-W{} is out of range",
                    self.iso_year, self.iso_week
                )))
            }
        };
        let source = PostSource::parse(&self.source)
            .ok_or_else(|| bad(format!("unknown source {:?}", self.source)))?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| bad(format!("attempts {} is out of range", self.attempts)))?;
        let time = |column: &str, text: &str| parse_time(TABLE, guild_id, column, text);
        Ok(PostRecord {
            guild_id,
            week,
            channel_id: from_db_id(self.channel_id),
            insight_id: self.insight_id,
            nonce: self.nonce,
            source,
            claimed_at: time("claimed_at", &self.claimed_at)?,
            attempts,
            retry_at: self.retry_at.map(|t| time("retry_at", &t)).transpose()?,
            last_error: self.last_error,
            message_id: self.message_id.map(from_db_id),
            posted_at: self.posted_at.map(|t| time("posted_at", &t)).transpose()?,
        })
    }
}

fn select_post(
    conn: &Connection,
    guild_id: u64,
    week: WeekKey,
) -> Result<Option<PostRecord>, Fault> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM post_log \
         WHERE guild_id = ?1 AND iso_year = ?2 AND iso_week = ?3"
    );
    conn.prepare_cached(&sql)?
        .query_row(
            params![db_id(guild_id), week.year, week.week],
            PostRow::read,
        )
        .optional()?
        .map(PostRow::into_record)
        .transpose()
}

fn select_rotation(conn: &Connection, guild_id: u64) -> Result<RotationState, Fault> {
    let json: Option<String> = conn
        .prepare_cached("SELECT state FROM rotation WHERE guild_id = ?1")?
        .query_row([db_id(guild_id)], |r| r.get(0))
        .optional()?;
    match json {
        None => Ok(RotationState::default()),
        Some(json) => serde_json::from_str(&json).map_err(|e| Fault::BadRow {
            table: "rotation",
            guild_id,
            detail: format!("the stored rotation state is not valid ({e})"),
        }),
    }
}

fn save_rotation(
    conn: &Connection,
    guild_id: u64,
    state: &RotationState,
    now: DateTime<Utc>,
) -> Result<(), Fault> {
    let json = serde_json::to_string(state).map_err(|e| Fault::BadRow {
        table: "rotation",
        guild_id,
        detail: format!("the rotation state cannot be written as JSON ({e})"),
    })?;
    conn.prepare_cached(
        "INSERT INTO rotation (guild_id, state, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (guild_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
    )?
    .execute(params![db_id(guild_id), json, db_time(now)])?;
    Ok(())
}

/// A `count(*)` as a `usize`.
fn count<P: Params>(conn: &Connection, sql: &str, params: P) -> Result<usize, Fault> {
    let n: i64 = conn.prepare_cached(sql)?.query_row(params, |r| r.get(0))?;
    Ok(usize::try_from(count_from_db(n)).unwrap_or(usize::MAX))
}

fn count_server_insights(conn: &Connection, guild_id: u64) -> Result<usize, Fault> {
    count(
        conn,
        "SELECT count(*) FROM server_insight WHERE guild_id = ?1",
        [db_id(guild_id)],
    )
}

/// Inserts or replaces `insights` as `guild_id`'s, inside the caller's write transaction; fails
/// (and the caller's transaction rolls back) when the server would own more than `limit`.
fn save_server_insights(
    tx: &Connection,
    guild_id: u64,
    insights: &[ServerInsight],
    limit: usize,
) -> Result<SaveOutcome, Fault> {
    let before = count_server_insights(tx, guild_id)?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO server_insight (guild_id, insight_id, title, text, topics, asks, \
             source_title, source_publisher, source_url, created_by, created_at, updated_at, \
             vectors, vectors_model) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (guild_id, insight_id) DO UPDATE SET \
             title = excluded.title, text = excluded.text, topics = excluded.topics, \
             asks = excluded.asks, source_title = excluded.source_title, \
             source_publisher = excluded.source_publisher, source_url = excluded.source_url, \
             updated_at = excluded.updated_at, vectors = excluded.vectors, \
             vectors_model = excluded.vectors_model",
    )?;
    for saved in insights {
        let insight = &saved.insight;
        upsert.execute(params![
            db_id(guild_id),
            insight.id,
            insight.title,
            insight.text,
            list_json(&insight.topics),
            list_json(&insight.asks),
            insight.source.title,
            insight.source.publisher,
            insight.source.url,
            db_id(saved.created_by),
            db_time(saved.created_at),
            db_time(saved.updated_at),
            saved.vectors.as_ref().map(|v| v.bytes.as_slice()),
            saved.vectors.as_ref().map(|v| db_id(v.fingerprint)),
        ])?;
    }
    let after = count_server_insights(tx, guild_id)?;
    if after > limit {
        return Err(Fault::Limit {
            what: Limit::ServerInsights,
            limit,
        });
    }
    // Nothing is deleted here, so the growth is what was added; every other write replaced.
    let added = after.saturating_sub(before);
    Ok(SaveOutcome {
        added,
        replaced: insights.len().saturating_sub(added),
    })
}

const SERVER_INSIGHT_COLUMNS: &str = "guild_id, insight_id, title, text, topics, asks, \
     source_title, source_publisher, source_url, created_by, created_at, updated_at, vectors, \
     vectors_model";

/// A `server_insight` row as stored, before parsing.
struct ServerInsightRow {
    guild_id: i64,
    insight_id: String,
    title: String,
    text: String,
    topics: String,
    asks: String,
    source_title: String,
    source_publisher: String,
    source_url: Option<String>,
    created_by: i64,
    created_at: String,
    updated_at: String,
    vectors: Option<Vec<u8>>,
    vectors_model: Option<i64>,
}

impl ServerInsightRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ServerInsightRow {
            guild_id: row.get(0)?,
            insight_id: row.get(1)?,
            title: row.get(2)?,
            text: row.get(3)?,
            topics: row.get(4)?,
            asks: row.get(5)?,
            source_title: row.get(6)?,
            source_publisher: row.get(7)?,
            source_url: row.get(8)?,
            created_by: row.get(9)?,
            created_at: row.get(10)?,
            updated_at: row.get(11)?,
            vectors: row.get(12)?,
            vectors_model: row.get(13)?,
        })
    }

    fn into_insight(self) -> Result<ServerInsight, Fault> {
        const TABLE: &str = "server_insight";
        let guild_id = from_db_id(self.guild_id);
        let id = self.insight_id;
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail: format!("insight {id:?}: {detail}"),
        };
        let topics = parse_list("topics", &self.topics).map_err(bad)?;
        let asks = parse_list("asks", &self.asks).map_err(bad)?;
        let vectors = match (self.vectors, self.vectors_model) {
            (None, None) => None,
            (Some(bytes), Some(model)) => Some(StoredVectors {
                fingerprint: from_db_id(model),
                bytes,
            }),
            _ => return Err(bad("vectors and vectors_model must be set together".into())),
        };
        let time = |column: &str, text: &str| {
            parse_time(TABLE, guild_id, column, text).map_err(|fault| match fault {
                Fault::BadRow { detail, .. } => bad(detail),
                other => other,
            })
        };
        let created_at = time("created_at", &self.created_at)?;
        let updated_at = time("updated_at", &self.updated_at)?;
        Ok(ServerInsight {
            guild_id,
            insight: Insight {
                id,
                title: self.title,
                text: self.text,
                topics,
                asks,
                source: Source {
                    title: self.source_title,
                    publisher: self.source_publisher,
                    url: self.source_url,
                },
            },
            created_by: from_db_id(self.created_by),
            created_at,
            updated_at,
            vectors,
        })
    }
}

const SUGGESTION_COLUMNS: &str = "id, guild_id, author_id, title, text, why, status, reason, \
     created_at, decided_at, decided_by, insight_id, review_channel_id, review_message_id";

/// A `suggestion` row as stored, before parsing.
struct SuggestionRow {
    id: i64,
    guild_id: i64,
    author_id: i64,
    title: String,
    text: String,
    why: Option<String>,
    status: String,
    reason: Option<String>,
    created_at: String,
    decided_at: Option<String>,
    decided_by: Option<i64>,
    insight_id: Option<String>,
    review_channel_id: Option<i64>,
    review_message_id: Option<i64>,
}

impl SuggestionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(SuggestionRow {
            id: row.get(0)?,
            guild_id: row.get(1)?,
            author_id: row.get(2)?,
            title: row.get(3)?,
            text: row.get(4)?,
            why: row.get(5)?,
            status: row.get(6)?,
            reason: row.get(7)?,
            created_at: row.get(8)?,
            decided_at: row.get(9)?,
            decided_by: row.get(10)?,
            insight_id: row.get(11)?,
            review_channel_id: row.get(12)?,
            review_message_id: row.get(13)?,
        })
    }

    fn into_suggestion(self) -> Result<Suggestion, Fault> {
        const TABLE: &str = "suggestion";
        let guild_id = from_db_id(self.guild_id);
        let id = from_db_id(self.id);
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail: format!("suggestion {id}: {detail}"),
        };
        let status = SuggestionStatus::parse(&self.status)
            .ok_or_else(|| bad(format!("unknown status {:?}", self.status)))?;
        let time = |column: &str, text: &str| {
            parse_time(TABLE, guild_id, column, text).map_err(|fault| match fault {
                Fault::BadRow { detail, .. } => bad(detail),
                other => other,
            })
        };
        let review_message = match (self.review_channel_id, self.review_message_id) {
            (None, None) => None,
            (Some(channel), Some(message)) => Some(ReviewMessage {
                channel_id: from_db_id(channel),
                message_id: from_db_id(message),
            }),
            _ => {
                return Err(bad(
                    "review_channel_id and review_message_id must be set together".into(),
                ))
            }
        };
        Ok(Suggestion {
            id,
            guild_id,
            author_id: from_db_id(self.author_id),
            title: self.title,
            text: self.text,
            why: self.why,
            status,
            reason: self.reason,
            created_at: time("created_at", &self.created_at)?,
            decided_at: self
                .decided_at
                .map(|t| time("decided_at", &t))
                .transpose()?,
            decided_by: self.decided_by.map(from_db_id),
            insight_id: self.insight_id,
            review_message,
        })
    }
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

    fn monday_9_london() -> WeeklySchedule {
        WeeklySchedule::new(
            Weekday::Mon,
            NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            London,
        )
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
            .set_weekly(
                GUILD,
                CHANNEL,
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
        assert_eq!(store.weekly(GUILD).unwrap(), None);
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
                    .set_weekly(g, CHANNEL, &monday_9_london(), utc("2026-03-03T10:00:00Z"))
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
