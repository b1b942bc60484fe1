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
//! - **Migrations** are embedded SQL files (`migrations/NNNN_*.sql`) applied in order, each in
//!   one transaction with `PRAGMA user_version`; the file also carries an `application_id` so
//!   another program's SQLite file is refused rather than migrated.
//! - **Never lost or silently replaced.** An existing file that is not an insight-bot database,
//!   is damaged, or was written by a newer version stops [`SqliteBackend::open`] with an error
//!   naming the file and saying what to do; it is never recreated or overwritten.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Timelike, Utc, Weekday};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction};
use rusqlite::{Params, TransactionBehavior};

use super::{
    post_nonce, Backend, Claim, Failure, PostRecord, PostSource, StoreError, WeeklySettings,
};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{WeekKey, WeeklySchedule};

/// The schema migrations, in order: `MIGRATIONS[i]` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_init.sql")];

/// The newest schema version this build knows.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of an insight-bot database ('iBot'), set by the first migration.
const APPLICATION_ID: i64 = 0x6942_6F74;

/// How long a write waits for another connection's write lock before failing with "busy". The
/// wait happens on tokio's blocking pool (see `Store::call`), never on the runtime, so it can be
/// generous: a backup or another process holding the lock for seconds delays a write, not fails it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;
    use chrono_tz::Europe::London;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Barrier};
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

    fn week(n: u32) -> WeekKey {
        WeekKey {
            year: 2026,
            week: n,
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("insight-{i:02}")).collect()
    }

    fn refs(ids: &[String]) -> Vec<&str> {
        ids.iter().map(String::as_str).collect()
    }

    fn db(dir: &TempDir) -> PathBuf {
        dir.path().join("state").join("insight-bot.db")
    }

    fn open_new() -> (TempDir, SqliteBackend) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteBackend::open(&db(&dir)).unwrap();
        (dir, store)
    }

    fn claim_week(
        store: &SqliteBackend,
        rng: &mut StdRng,
        ids: &[String],
        w: u32,
    ) -> Option<Claim> {
        store
            .claim(
                GUILD,
                week(w),
                CHANNEL,
                &refs(ids),
                PostSource::Schedule,
                rng,
                utc("2026-03-02T09:00:00Z"),
            )
            .unwrap()
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

    #[test]
    fn reopening_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let ids = ids(3);
        let mut rng = StdRng::seed_from_u64(1);
        let (settings, claimed) = {
            let store = SqliteBackend::open(&path).unwrap();
            let settings = store
                .set_weekly(
                    GUILD,
                    CHANNEL,
                    &monday_9_london(),
                    utc("2026-03-03T10:00:00Z"),
                )
                .unwrap();
            let claimed = claim_week(&store, &mut rng, &ids, 10)
                .unwrap()
                .into_record();
            store
                .confirm_post(GUILD, week(10), 42, utc("2026-03-09T09:00:01Z"))
                .unwrap();
            (settings, claimed)
        };
        let store = SqliteBackend::open(&path).unwrap();
        assert_eq!(store.weekly(GUILD).unwrap(), Some(settings));
        let post = store.post(GUILD, week(10)).unwrap().unwrap();
        assert_eq!(post.insight_id, claimed.insight_id);
        assert_eq!(post.message_id, Some(42));
        assert_eq!(store.rotation(GUILD).unwrap().shown, 1);
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

    // ---- weekly settings ----

    #[test]
    fn weekly_settings_round_trip() {
        let (_dir, store) = open_new();
        assert_eq!(store.weekly(GUILD).unwrap(), None);
        assert!(!store
            .disable_weekly(GUILD, utc("2026-03-03T10:00:00Z"))
            .unwrap());

        let set_at = utc("2026-03-03T10:00:00.123456Z");
        let settings = store
            .set_weekly(GUILD, CHANNEL, &monday_9_london(), set_at)
            .unwrap();
        let expected = WeeklySettings {
            guild_id: GUILD,
            channel_id: CHANNEL,
            schedule: monday_9_london(),
            enabled: true,
            active_since: utc("2026-03-03T10:00:00.123Z"), // stored to the millisecond
            failure: None,
            updated_at: utc("2026-03-03T10:00:00.123Z"),
        };
        assert_eq!(settings, expected);
        assert_eq!(store.weekly(GUILD).unwrap(), Some(expected.clone()));

        let off_at = utc("2026-03-04T08:00:00Z");
        assert!(store.disable_weekly(GUILD, off_at).unwrap());
        assert!(!store.disable_weekly(GUILD, off_at).unwrap(), "already off");
        let off = store.weekly(GUILD).unwrap().unwrap();
        assert_eq!(
            off,
            WeeklySettings {
                enabled: false,
                updated_at: off_at,
                ..expected
            }
        );

        // Setting again re-enables with the new values and a new active_since.
        let friday = WeeklySchedule::parse("fri", "17:30", "America/New_York").unwrap();
        let again = store
            .set_weekly(GUILD, 77, &friday, utc("2026-03-05T00:00:00Z"))
            .unwrap();
        assert_eq!(
            (again.channel_id, again.schedule, again.enabled),
            (77, friday, true)
        );
        assert_eq!(again.active_since, utc("2026-03-05T00:00:00Z"));
        let stored: (String, String, String) = store
            .conn
            .lock()
            .unwrap()
            .query_row(
                "SELECT weekday, time, zone FROM weekly WHERE guild_id = ?1",
                [db_id(GUILD)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            stored,
            ("fri".into(), "17:30".into(), "America/New_York".into())
        );
    }

    #[test]
    fn ids_round_trip_over_the_whole_u64_range() {
        let (_dir, store) = open_new();
        let now = utc("2026-03-03T10:00:00Z");
        for id in [1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            let s = store.set_weekly(id, id, &monday_9_london(), now).unwrap();
            assert_eq!((s.guild_id, s.channel_id), (id, id));
            let mut rng = StdRng::seed_from_u64(id);
            let claim = store
                .claim(id, week(3), id, &["a"], PostSource::PostNow, &mut rng, now)
                .unwrap()
                .unwrap();
            assert_eq!(claim.record().guild_id, id);
            store.confirm_post(id, week(3), id, now).unwrap();
            assert_eq!(store.last_post(id).unwrap().unwrap().message_id, Some(id));
        }
    }

    #[test]
    fn active_weeklies_excludes_disabled_and_failing_and_set_clears_a_failure() {
        let (_dir, store) = open_new();
        let now = utc("2026-03-03T10:00:00Z");
        for g in 1..=4 {
            store
                .set_weekly(g, 100 + g, &monday_9_london(), now)
                .unwrap();
        }
        store.disable_weekly(2, now).unwrap();
        let failed_at = utc("2026-03-09T09:00:00Z");
        store
            .mark_failing(3, "403 Missing Access on channel 103", failed_at)
            .unwrap();
        store.mark_failing(99, "no such server", failed_at).unwrap(); // nothing to mark
        let active: Vec<u64> = store
            .active_weeklies()
            .unwrap()
            .iter()
            .map(|s| s.guild_id)
            .collect();
        assert_eq!(active, [1, 4]);
        assert_eq!(
            store.weekly(3).unwrap().unwrap().failure,
            Some(Failure {
                reason: "403 Missing Access on channel 103".into(),
                at: failed_at,
            })
        );

        let reset = store
            .set_weekly(3, 203, &monday_9_london(), utc("2026-03-10T12:00:00Z"))
            .unwrap();
        assert_eq!(reset.failure, None);
        assert_eq!(reset.active_since, utc("2026-03-10T12:00:00Z"));
        let active: Vec<u64> = store
            .active_weeklies()
            .unwrap()
            .iter()
            .map(|s| s.guild_id)
            .collect();
        assert_eq!(active, [1, 3, 4]);
    }

    #[test]
    fn a_stored_schedule_that_no_longer_parses_is_an_error_for_that_server_only() {
        let (_dir, store) = open_new();
        let now = utc("2026-03-03T10:00:00Z");
        store.set_weekly(1, 10, &monday_9_london(), now).unwrap();
        store.set_weekly(2, 20, &monday_9_london(), now).unwrap();
        raw(store.path())
            .execute(
                "UPDATE weekly SET zone = 'Mars/Olympus_Mons' WHERE guild_id = 2",
                [],
            )
            .unwrap();
        let err = store.weekly(2).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::BadRow {
                    guild_id: 2,
                    table: "weekly",
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("Mars/Olympus_Mons"), "{message}");
        assert!(message.contains("server 2"), "{message}");
        let active: Vec<u64> = store
            .active_weeklies()
            .unwrap()
            .iter()
            .map(|s| s.guild_id)
            .collect();
        assert_eq!(
            active,
            [1],
            "the broken row is skipped, the others still run"
        );
        // /weekly set replaces the broken row.
        store.set_weekly(2, 20, &monday_9_london(), now).unwrap();
        assert!(store.weekly(2).unwrap().is_some());
    }

    #[test]
    fn active_weeklies_reads_ten_thousand_servers_quickly() {
        let (_dir, store) = open_new();
        let now = utc("2026-03-03T10:00:00Z");
        {
            let mut conn = store.conn.lock().unwrap();
            let tx = conn.transaction().unwrap();
            for g in 1..=10_000u64 {
                upsert_weekly(&tx, g, g, &monday_9_london(), now)
                    .ok()
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        let started = std::time::Instant::now();
        let active = store.active_weeklies().unwrap();
        let took = started.elapsed();
        assert_eq!(active.len(), 10_000);
        // Typically a few milliseconds in release and tens in a debug build.
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    // ---- claims ----

    #[test]
    fn claiming_a_week_twice_returns_the_first_claim_and_advances_the_rotation_once() {
        let (_dir, store) = open_new();
        let ids = ids(5);
        let mut rng = StdRng::seed_from_u64(9);
        let Some(Claim::Claimed(first)) = claim_week(&store, &mut rng, &ids, 10) else {
            panic!("the first claim should claim");
        };
        assert_eq!(first.week, week(10));
        assert_eq!(first.channel_id, CHANNEL);
        assert_eq!(first.nonce, post_nonce(GUILD, week(10)));
        assert_eq!(first.source, PostSource::Schedule);
        assert_eq!(first.attempts, 0);
        assert_eq!(first.message_id, None);
        assert!(!first.is_confirmed());
        let rotation = store.rotation(GUILD).unwrap();
        assert_eq!((rotation.cycle, rotation.shown), (1, 1));

        let again = store
            .claim(
                GUILD,
                week(10),
                999,
                &refs(&ids),
                PostSource::PostNow,
                &mut rng,
                utc("2026-03-02T09:30:00Z"),
            )
            .unwrap();
        assert_eq!(again, Some(Claim::AlreadyClaimed(first.clone())));
        assert_eq!(
            store.rotation(GUILD).unwrap(),
            rotation,
            "advanced only once"
        );

        // Still AlreadyClaimed when confirmed, and even with an empty collection.
        store
            .confirm_post(GUILD, week(10), 5, utc("2026-03-02T09:00:02Z"))
            .unwrap();
        let confirmed = claim_week(&store, &mut rng, &[], 10).unwrap();
        assert!(
            matches!(&confirmed, Claim::AlreadyClaimed(r) if r.insight_id == first.insight_id && r.message_id == Some(5))
        );
    }

    #[test]
    fn an_empty_collection_claims_nothing() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(claim_week(&store, &mut rng, &[], 10), None);
        assert_eq!(store.post(GUILD, week(10)).unwrap(), None);
        assert_eq!(store.rotation(GUILD).unwrap(), RotationState::default());
    }

    #[test]
    fn a_week_that_does_not_exist_is_refused() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(1);
        // 2025 has 52 ISO weeks (2026 has 53).
        let bad = WeekKey {
            year: 2025,
            week: 53,
        };
        let err = store
            .claim(
                GUILD,
                bad,
                CHANNEL,
                &["a"],
                PostSource::Schedule,
                &mut rng,
                Utc::now(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidWeek { .. }), "{err:?}");
    }

    #[test]
    fn eleven_weeks_show_eleven_insights_once_each_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let ids = ids(11);
        let mut shown = Vec::new();
        {
            let store = SqliteBackend::open(&path).unwrap();
            let mut rng = StdRng::seed_from_u64(21);
            for w in 1..=5 {
                let claim = claim_week(&store, &mut rng, &ids, w).unwrap();
                assert!(matches!(claim, Claim::Claimed(_)));
                shown.push(claim.into_record().insight_id);
            }
        }
        let store = SqliteBackend::open(&path).unwrap();
        // A different rng after the restart: the order is in the store, not in the rng.
        let mut rng = StdRng::seed_from_u64(22);
        for w in 6..=11 {
            shown.push(
                claim_week(&store, &mut rng, &ids, w)
                    .unwrap()
                    .into_record()
                    .insight_id,
            );
        }
        let distinct: BTreeSet<&String> = shown.iter().collect();
        assert_eq!(distinct.len(), 11, "{shown:?}");
        let rotation = store.rotation(GUILD).unwrap();
        assert_eq!((rotation.cycle, rotation.shown), (1, 11));
    }

    #[test]
    fn the_primary_key_refuses_a_second_row_for_the_same_week() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(2);
        claim_week(&store, &mut rng, &ids(3), 10).unwrap();
        let err = raw(store.path())
            .execute(
                "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, \
                     nonce, source, claimed_at, updated_at) \
                 VALUES (?1, 2026, 10, 1, 'other', 'n', 'post_now', 'x', 'x')",
                [db_id(GUILD)],
            )
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(ErrorCode::ConstraintViolation),
            "{err}"
        );
    }

    #[test]
    fn two_handles_racing_for_the_same_weeks_claim_each_week_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        const WEEKS: u32 = 22;
        let ids = Arc::new(ids(11));
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2u64)
            .map(|n| {
                let (path, ids, barrier) = (path.clone(), ids.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // Both open the new file at once too: it must be migrated once.
                    barrier.wait();
                    let store = SqliteBackend::open(&path);
                    let mut rng = StdRng::seed_from_u64(100 + n);
                    // Errors are collected, not unwrapped here: a racer that stopped early
                    // would leave the other waiting at the barrier forever.
                    (1..=WEEKS)
                        .map(|w| {
                            barrier.wait();
                            match &store {
                                Ok(store) => store
                                    .claim(
                                        GUILD,
                                        week(w),
                                        CHANNEL,
                                        &refs(&ids),
                                        PostSource::Schedule,
                                        &mut rng,
                                        utc("2026-03-02T09:00:00Z"),
                                    )
                                    .map_err(|e| format!("week {w}: {e}"))
                                    .and_then(|c| c.ok_or(format!("week {w}: nothing claimed"))),
                                Err(e) => Err(format!("open: {e}")),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<Claim>> = racers
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap()
                    .into_iter()
                    .collect::<Result<Vec<Claim>, String>>()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let mut firsts = Vec::new();
        assert_eq!((results[0].len(), results[1].len()), (22, 22));
        for (w, (a, b)) in (1..).zip(results[0].iter().zip(&results[1])) {
            let claimed = [a, b]
                .iter()
                .filter(|c| matches!(c, Claim::Claimed(_)))
                .count();
            assert_eq!(claimed, 1, "week {w}: {a:?} / {b:?}");
            assert_eq!(a.record(), b.record(), "both see the same post");
            firsts.push(a.record().insight_id.clone());
        }
        // Every claim advanced the rotation exactly once: two full cycles of 11.
        let first_cycle: BTreeSet<&String> = firsts[..11].iter().collect();
        let second_cycle: BTreeSet<&String> = firsts[11..].iter().collect();
        assert_eq!(
            (first_cycle.len(), second_cycle.len()),
            (11, 11),
            "{firsts:?}"
        );
        let store = SqliteBackend::open(&path).unwrap();
        let rotation = store.rotation(GUILD).unwrap();
        assert_eq!((rotation.cycle, rotation.shown), (2, 11));
    }

    #[test]
    fn attempts_confirmation_and_release() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(5);
        let ids = ids(4);
        let t = |s: &str| utc(&format!("2026-03-09T{s}Z"));

        let err = store
            .record_attempt(GUILD, week(11), t("09:00:00"), None, None)
            .unwrap_err();
        assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
        let err = store
            .confirm_post(GUILD, week(11), 1, t("09:00:00"))
            .unwrap_err();
        assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");

        let claimed = claim_week(&store, &mut rng, &ids, 11)
            .unwrap()
            .into_record();
        // Before the send: counted, nothing to retry.
        let r = store
            .record_attempt(GUILD, week(11), t("09:00:00"), None, None)
            .unwrap();
        assert_eq!(
            (r.attempts, r.last_error.as_deref(), r.retry_at),
            (1, None, None)
        );
        // After a failed send: the error and when to retry, not another attempt.
        let retry = t("09:05:00");
        let r = store
            .record_attempt(
                GUILD,
                week(11),
                t("09:00:01"),
                Some("503 upstream"),
                Some(retry),
            )
            .unwrap();
        assert_eq!(
            (r.attempts, r.last_error.as_deref(), r.retry_at),
            (1, Some("503 upstream"), Some(retry))
        );
        assert_eq!(store.unconfirmed_posts().unwrap(), vec![r.clone()]);
        // The next send clears them and counts again.
        let r = store
            .record_attempt(GUILD, week(11), t("09:05:00"), None, None)
            .unwrap();
        assert_eq!(
            (r.attempts, r.last_error.as_deref(), r.retry_at),
            (2, None, None)
        );

        store
            .confirm_post(GUILD, week(11), 777, t("09:05:01"))
            .unwrap();
        let posted = store.post(GUILD, week(11)).unwrap().unwrap();
        assert!(posted.is_confirmed());
        assert_eq!(posted.message_id, Some(777));
        assert_eq!(posted.posted_at, Some(t("09:05:01")));
        assert_eq!(
            (
                posted.insight_id.as_str(),
                posted.nonce.as_str(),
                posted.attempts
            ),
            (claimed.insight_id.as_str(), claimed.nonce.as_str(), 2)
        );
        assert_eq!(store.last_post(GUILD).unwrap(), Some(posted.clone()));
        assert_eq!(store.unconfirmed_posts().unwrap(), vec![]);

        // Confirming again keeps the first message; releasing a confirmed post does nothing.
        store
            .confirm_post(GUILD, week(11), 888, t("09:06:00"))
            .unwrap();
        store.release_claim(GUILD, week(11)).unwrap();
        assert_eq!(store.post(GUILD, week(11)).unwrap(), Some(posted.clone()));

        // An unconfirmed claim is released, and the week can be claimed again.
        claim_week(&store, &mut rng, &ids, 12).unwrap();
        store.release_claim(GUILD, week(12)).unwrap();
        assert_eq!(store.post(GUILD, week(12)).unwrap(), None);
        store.release_claim(GUILD, week(12)).unwrap(); // nothing left: still fine
        assert!(matches!(
            claim_week(&store, &mut rng, &ids, 12),
            Some(Claim::Claimed(_))
        ));
        // last_post is the latest *confirmed* week.
        assert_eq!(store.last_post(GUILD).unwrap(), Some(posted));
    }

    #[test]
    fn last_post_orders_by_week_across_years() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(8);
        let now = utc("2026-01-01T00:00:00Z");
        assert_eq!(store.last_post(GUILD).unwrap(), None);
        for (year, w) in [(2025, 52), (2026, 1), (2025, 3)] {
            let key = WeekKey { year, week: w };
            store
                .claim(
                    GUILD,
                    key,
                    CHANNEL,
                    &["a", "b"],
                    PostSource::Schedule,
                    &mut rng,
                    now,
                )
                .unwrap();
            store.confirm_post(GUILD, key, u64::from(w), now).unwrap();
        }
        let last = store.last_post(GUILD).unwrap().unwrap();
        assert_eq!(
            last.week,
            WeekKey {
                year: 2026,
                week: 1
            }
        );
    }

    #[test]
    fn unconfirmed_posts_lists_only_unconfirmed_claims_of_every_server() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(6);
        let now = utc("2026-03-09T09:00:00Z");
        let mut claim = |guild: u64, w: u32| {
            store
                .claim(
                    guild,
                    week(w),
                    CHANNEL,
                    &["a", "b", "c"],
                    PostSource::Schedule,
                    &mut rng,
                    now,
                )
                .unwrap()
                .unwrap()
                .into_record()
        };
        let a = claim(1, 11);
        let b = claim(2, 10);
        claim(3, 11);
        store.confirm_post(3, week(11), 33, now).unwrap();
        let pending: Vec<(u64, WeekKey)> = store
            .unconfirmed_posts()
            .unwrap()
            .iter()
            .map(|r| (r.guild_id, r.week))
            .collect();
        assert_eq!(pending, [(b.guild_id, b.week), (a.guild_id, a.week)]);
    }

    #[test]
    fn a_broken_rotation_row_is_an_error_for_that_server() {
        let (_dir, store) = open_new();
        let mut rng = StdRng::seed_from_u64(6);
        claim_week(&store, &mut rng, &ids(3), 1).unwrap();
        raw(store.path())
            .execute("UPDATE rotation SET state = '[1, 2]'", [])
            .unwrap();
        let err = store.rotation(GUILD).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::BadRow {
                    table: "rotation",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = claim_week_err(&store, &mut rng, 2);
        assert!(
            matches!(
                err,
                StoreError::BadRow {
                    table: "rotation",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(store.post(GUILD, week(2)).unwrap(), None, "nothing claimed");
    }

    fn claim_week_err(store: &SqliteBackend, rng: &mut StdRng, w: u32) -> StoreError {
        store
            .claim(
                GUILD,
                week(w),
                CHANNEL,
                &["a"],
                PostSource::Schedule,
                rng,
                Utc::now(),
            )
            .unwrap_err()
    }

    // ---- nonce ----

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

    #[test]
    fn the_store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SqliteBackend>();
    }
}
