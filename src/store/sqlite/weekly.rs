//! The SQLite backend's weekly posts: each server's weekly settings, the claims and post log
//! that make a weekly post go out exactly once, and the rotation state that picks the next
//! insight. Their row types and SQL live here with the functions that
//! [`SqliteBackend`]'s `Backend` methods delegate to, so a change to how weekly posts are stored
//! touches one file; the connection, transactions and errors are the backend's (`mod.rs`).

use chrono::{DateTime, Timelike, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{
    db_id, db_time, from_db_id, parse_time, query_all, weekday_code, Fault, SqliteBackend,
};
use crate::store::{
    post_nonce, Claim, Failure, PostRecord, PostSource, StoreError, WeeklySettings,
};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{WeekKey, WeeklySchedule};

pub(super) fn set_weekly(
    backend: &SqliteBackend,
    guild_id: u64,
    channel_id: u64,
    schedule: &WeeklySchedule,
    now: DateTime<Utc>,
) -> Result<WeeklySettings, StoreError> {
    backend.write(|tx| {
        upsert_weekly(tx, guild_id, channel_id, schedule, now)?;
        select_weekly(tx, guild_id)?.ok_or(Fault::Sql(rusqlite::Error::QueryReturnedNoRows))
    })
}

pub(super) fn disable_weekly(
    backend: &SqliteBackend,
    guild_id: u64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    backend.write(|tx| {
        let changed = tx.execute(
            "UPDATE weekly SET enabled = 0, updated_at = ?2 WHERE guild_id = ?1 AND enabled = 1",
            params![db_id(guild_id), db_time(now)],
        )?;
        Ok(changed > 0)
    })
}

pub(super) fn weekly(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<Option<WeeklySettings>, StoreError> {
    backend.read(|conn| select_weekly(conn, guild_id))
}

pub(super) fn active_weeklies(backend: &SqliteBackend) -> Result<Vec<WeeklySettings>, StoreError> {
    let sql = format!(
        "SELECT {WEEKLY_COLUMNS} FROM weekly \
         WHERE enabled = 1 AND failure_reason IS NULL ORDER BY guild_id"
    );
    let rows = backend.read(|conn| query_all(conn, &sql, [], WeeklyRow::read))?;
    Ok(backend.keep_valid(rows, WeeklyRow::into_settings))
}

pub(super) fn mark_failing(
    backend: &SqliteBackend,
    guild_id: u64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.execute(
            "UPDATE weekly SET failure_reason = ?2, failed_at = ?3, updated_at = ?3 \
             WHERE guild_id = ?1",
            params![db_id(guild_id), reason, db_time(now)],
        )?;
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)] // each is a plain value the poster already holds
pub(super) fn claim(
    backend: &SqliteBackend,
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
    backend.write(|tx| {
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
        let record = select_post(tx, guild_id, week)?.ok_or(Fault::NoClaim { guild_id, week })?;
        if inserted == 0 {
            return Ok(Some(Claim::AlreadyClaimed(record)));
        }
        save_rotation(tx, guild_id, &next, now)?;
        Ok(Some(Claim::Claimed(record)))
    })
}

pub(super) fn record_attempt(
    backend: &SqliteBackend,
    guild_id: u64,
    week: WeekKey,
    now: DateTime<Utc>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<PostRecord, StoreError> {
    backend.write(|tx| {
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

pub(super) fn confirm_post(
    backend: &SqliteBackend,
    guild_id: u64,
    week: WeekKey,
    message_id: u64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    backend.write(|tx| {
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

pub(super) fn release_claim(
    backend: &SqliteBackend,
    guild_id: u64,
    week: WeekKey,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.execute(
            "DELETE FROM post_log \
             WHERE guild_id = ?1 AND iso_year = ?2 AND iso_week = ?3 AND message_id IS NULL",
            params![db_id(guild_id), week.year, week.week],
        )?;
        Ok(())
    })
}

pub(super) fn post(
    backend: &SqliteBackend,
    guild_id: u64,
    week: WeekKey,
) -> Result<Option<PostRecord>, StoreError> {
    backend.read(|conn| select_post(conn, guild_id, week))
}

pub(super) fn last_post(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<Option<PostRecord>, StoreError> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM post_log \
         WHERE guild_id = ?1 AND message_id IS NOT NULL \
         ORDER BY iso_year DESC, iso_week DESC LIMIT 1"
    );
    backend.read(|conn| {
        conn.prepare_cached(&sql)?
            .query_row([db_id(guild_id)], PostRow::read)
            .optional()?
            .map(PostRow::into_record)
            .transpose()
    })
}

pub(super) fn claimed_slots_since(
    backend: &SqliteBackend,
    week: WeekKey,
) -> Result<std::collections::HashSet<(u64, WeekKey)>, StoreError> {
    let rows = backend.read(|conn| {
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

pub(super) fn unconfirmed_posts(backend: &SqliteBackend) -> Result<Vec<PostRecord>, StoreError> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM post_log WHERE message_id IS NULL \
         ORDER BY iso_year, iso_week, guild_id"
    );
    let rows = backend.read(|conn| query_all(conn, &sql, [], PostRow::read))?;
    Ok(backend.keep_valid(rows, PostRow::into_record))
}

pub(super) fn rotation(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<RotationState, StoreError> {
    backend.read(|conn| select_rotation(conn, guild_id))
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
