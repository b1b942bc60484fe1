//! The PostgreSQL backend's weekly posts: each server's weekly settings, the claims and post log
//! that make a weekly post go out exactly once, and the rotation state that picks the next
//! insight. Their row types and SQL live here with the functions that
//! [`PostgresBackend`]'s `Backend` methods delegate to, so a change to how weekly posts are
//! stored touches one file; the pool, sessions, transactions and errors are the backend's
//! (`mod.rs`).

use std::collections::HashSet;

use chrono::{DateTime, Timelike, Utc};
use tokio_postgres::Row;

use super::{db_id, db_time, db_week, from_db_id, lock_server, Fault, PostgresBackend, Session};
use crate::store::sqlite::weekday_code;
use crate::store::{
    post_nonce, Claim, Failure, PostRecord, PostSource, StoreError, WeeklySettings,
};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::{WeekKey, WeeklySchedule};

pub(super) fn set_weekly(
    backend: &PostgresBackend,
    guild_id: u64,
    channel_id: u64,
    schedule: &WeeklySchedule,
    now: DateTime<Utc>,
) -> Result<WeeklySettings, StoreError> {
    let time = format!("{:02}:{:02}", schedule.time.hour(), schedule.time.minute());
    let row = backend.write(|s| {
        s.query_one(
            UPSERT_WEEKLY,
            &[
                &db_id(guild_id),
                &db_id(channel_id),
                &weekday_code(schedule.weekday),
                &time,
                &schedule.zone.name(),
                &db_time(now),
            ],
        )
        .and_then(|row| Ok(WeeklyRow::read(&row)?))
    })?;
    row.into_settings().map_err(|fault| backend.error(fault))
}

pub(super) fn disable_weekly(
    backend: &PostgresBackend,
    guild_id: u64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = backend.write(|s| {
        s.execute(
            "UPDATE weekly SET enabled = false, updated_at = $2 \
             WHERE guild_id = $1 AND enabled",
            &[&db_id(guild_id), &db_time(now)],
        )
    })?;
    Ok(changed > 0)
}

pub(super) fn weekly(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<Option<WeeklySettings>, StoreError> {
    let row = backend.read(|s| {
        s.query_opt(SELECT_WEEKLY, &[&db_id(guild_id)])?
            .map(|row| WeeklyRow::read(&row))
            .transpose()
            .map_err(Fault::Pg)
    })?;
    row.map(WeeklyRow::into_settings)
        .transpose()
        .map_err(|fault| backend.error(fault))
}

pub(super) fn active_weeklies(
    backend: &PostgresBackend,
) -> Result<Vec<WeeklySettings>, StoreError> {
    let rows = backend.read(|s| {
        let rows = s.query(ACTIVE_WEEKLIES, &[])?;
        Ok(rows
            .iter()
            .map(WeeklyRow::read)
            .collect::<Result<Vec<_>, _>>()?)
    })?;
    Ok(backend.keep_valid(rows, WeeklyRow::into_settings))
}

pub(super) fn mark_failing(
    backend: &PostgresBackend,
    guild_id: u64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    backend.write(|s| {
        s.execute(
            "UPDATE weekly SET failure_reason = $2, failed_at = $3, updated_at = $3 \
             WHERE guild_id = $1",
            &[&db_id(guild_id), &reason, &db_time(now)],
        )
    })?;
    Ok(())
}

#[allow(clippy::too_many_arguments)] // each is a plain value the poster already holds
pub(super) fn claim(
    backend: &PostgresBackend,
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
    let nonce = post_nonce(guild_id, week);
    backend.write(|s| {
        // One claim per server at a time, in every process: the rotation read below is the
        // one the insert will advance.
        lock_server(s, guild_id)?;
        if let Some(existing) = select_post(s, guild_id, week)? {
            return Ok(Some(Claim::AlreadyClaimed(existing)));
        }
        let rotation = select_rotation(s, guild_id)?;
        let Some((insight_id, next)) = rotation.next(insight_ids, rng) else {
            return Ok(None);
        };
        // The primary key decides. Under the lock no other claim can have inserted since the
        // check above, but if a writer without it ever did, its row wins and the rotation is
        // left as it was, because it is written only after our insert succeeded.
        let inserted = s.query_opt(
            INSERT_CLAIM,
            &[
                &db_id(guild_id),
                &week.year,
                &db_week(week.week),
                &db_id(channel_id),
                &insight_id,
                &nonce,
                &source.as_str(),
                &db_time(now),
            ],
        )?;
        let Some(row) = inserted else {
            let record =
                select_post(s, guild_id, week)?.ok_or(Fault::NoClaim { guild_id, week })?;
            return Ok(Some(Claim::AlreadyClaimed(record)));
        };
        let record = PostRow::read(&row)?.into_record()?;
        save_rotation(s, guild_id, &next, now)?;
        Ok(Some(Claim::Claimed(record)))
    })
}

pub(super) fn record_attempt(
    backend: &PostgresBackend,
    guild_id: u64,
    week: WeekKey,
    now: DateTime<Utc>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<PostRecord, StoreError> {
    let counted = i32::from(error.is_none());
    let row = backend.write(|s| {
        s.query_opt(
            RECORD_ATTEMPT,
            &[
                &db_id(guild_id),
                &week.year,
                &db_week(week.week),
                &counted,
                &error,
                &retry_at.map(db_time),
                &db_time(now),
            ],
        )?
        .map(|row| PostRow::read(&row))
        .transpose()
        .map_err(Fault::Pg)
    })?;
    let row = row.ok_or_else(|| backend.error(Fault::NoClaim { guild_id, week }))?;
    row.into_record().map_err(|fault| backend.error(fault))
}

pub(super) fn confirm_post(
    backend: &PostgresBackend,
    guild_id: u64,
    week: WeekKey,
    message_id: u64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    backend.write(|s| {
        let changed = s.execute(
            "UPDATE post_log SET message_id = $4, posted_at = $5, retry_at = NULL, \
                 updated_at = $5 \
             WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3 AND message_id IS NULL",
            &[
                &db_id(guild_id),
                &week.year,
                &db_week(week.week),
                &db_id(message_id),
                &db_time(now),
            ],
        )?;
        if changed == 0 {
            match select_post(s, guild_id, week)? {
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
    backend: &PostgresBackend,
    guild_id: u64,
    week: WeekKey,
) -> Result<(), StoreError> {
    backend.write(|s| {
        s.execute(
            "DELETE FROM post_log \
             WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3 AND message_id IS NULL",
            &[&db_id(guild_id), &week.year, &db_week(week.week)],
        )
    })?;
    Ok(())
}

pub(super) fn post(
    backend: &PostgresBackend,
    guild_id: u64,
    week: WeekKey,
) -> Result<Option<PostRecord>, StoreError> {
    backend.read(|s| select_post(s, guild_id, week))
}

pub(super) fn last_post(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<Option<PostRecord>, StoreError> {
    backend.read(|s| {
        s.query_opt(LAST_POST, &[&db_id(guild_id)])?
            .map(|row| PostRow::read(&row)?.into_record())
            .transpose()
    })
}

pub(super) fn claimed_slots_since(
    backend: &PostgresBackend,
    week: WeekKey,
) -> Result<HashSet<(u64, WeekKey)>, StoreError> {
    backend.read(|s| {
        let rows = s.query(
            "SELECT guild_id, iso_year, iso_week FROM post_log \
             WHERE (iso_year, iso_week) >= ($1, $2)",
            &[&week.year, &db_week(week.week)],
        )?;
        rows.iter()
            .map(|row| -> Result<(u64, WeekKey), Fault> {
                let guild_id = from_db_id(row.try_get(0)?);
                let (year, number): (i32, i32) = (row.try_get(1)?, row.try_get(2)?);
                let week = u32::try_from(number).map_err(|_| Fault::BadRow {
                    table: "post_log",
                    guild_id,
                    detail: format!("week {year}-W{number} is out of range"),
                })?;
                Ok((guild_id, WeekKey { year, week }))
            })
            .collect()
    })
}

pub(super) fn unconfirmed_posts(backend: &PostgresBackend) -> Result<Vec<PostRecord>, StoreError> {
    let rows = backend.read(|s| {
        let rows = s.query(UNCONFIRMED_POSTS, &[])?;
        Ok(rows
            .iter()
            .map(PostRow::read)
            .collect::<Result<Vec<_>, _>>()?)
    })?;
    Ok(backend.keep_valid(rows, PostRow::into_record))
}

pub(super) fn rotation(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<RotationState, StoreError> {
    backend.read(|s| select_rotation(s, guild_id))
}

macro_rules! weekly_columns {
    () => {
        "guild_id, channel_id, weekday, time, zone, enabled, active_since, failure_reason, \
         failed_at, updated_at"
    };
}

macro_rules! post_columns {
    () => {
        "guild_id, iso_year, iso_week, channel_id, insight_id, nonce, source, claimed_at, \
         attempts, retry_at, last_error, message_id, posted_at"
    };
}

const SELECT_WEEKLY: &str = concat!(
    "SELECT ",
    weekly_columns!(),
    " FROM weekly WHERE guild_id = $1"
);

const ACTIVE_WEEKLIES: &str = concat!(
    "SELECT ",
    weekly_columns!(),
    " FROM weekly WHERE enabled AND failure_reason IS NULL ORDER BY guild_id"
);

const UPSERT_WEEKLY: &str = concat!(
    "INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, active_since, \
         failure_reason, failed_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, true, $6, NULL, NULL, $6) \
     ON CONFLICT (guild_id) DO UPDATE SET \
         channel_id = excluded.channel_id, weekday = excluded.weekday, \
         time = excluded.time, zone = excluded.zone, enabled = true, \
         active_since = excluded.active_since, failure_reason = NULL, failed_at = NULL, \
         updated_at = excluded.updated_at \
     RETURNING ",
    weekly_columns!()
);

const SELECT_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM post_log WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3"
);

const INSERT_CLAIM: &str = concat!(
    "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, source, \
         claimed_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
     ON CONFLICT (guild_id, iso_year, iso_week) DO NOTHING \
     RETURNING ",
    post_columns!()
);

const RECORD_ATTEMPT: &str = concat!(
    "UPDATE post_log SET attempts = attempts + $4, last_error = $5, retry_at = $6, \
         updated_at = $7 \
     WHERE guild_id = $1 AND iso_year = $2 AND iso_week = $3 \
     RETURNING ",
    post_columns!()
);

const LAST_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM post_log WHERE guild_id = $1 AND message_id IS NOT NULL \
      ORDER BY iso_year DESC, iso_week DESC LIMIT 1"
);

const UNCONFIRMED_POSTS: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM post_log WHERE message_id IS NULL ORDER BY iso_year, iso_week, guild_id"
);

/// A `weekly` row as stored, before parsing.
struct WeeklyRow {
    guild_id: i64,
    channel_id: i64,
    weekday: String,
    time: String,
    zone: String,
    enabled: bool,
    active_since: DateTime<Utc>,
    failure_reason: Option<String>,
    failed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl WeeklyRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(WeeklyRow {
            guild_id: row.try_get(0)?,
            channel_id: row.try_get(1)?,
            weekday: row.try_get(2)?,
            time: row.try_get(3)?,
            zone: row.try_get(4)?,
            enabled: row.try_get(5)?,
            active_since: row.try_get(6)?,
            failure_reason: row.try_get(7)?,
            failed_at: row.try_get(8)?,
            updated_at: row.try_get(9)?,
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
            (Some(reason), Some(at)) => Some(Failure { reason, at }),
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
            active_since: self.active_since,
            failure,
            updated_at: self.updated_at,
        })
    }
}

/// A `post_log` row as stored, before parsing.
struct PostRow {
    guild_id: i64,
    iso_year: i32,
    iso_week: i32,
    channel_id: i64,
    insight_id: String,
    nonce: String,
    source: String,
    claimed_at: DateTime<Utc>,
    attempts: i32,
    retry_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    message_id: Option<i64>,
    posted_at: Option<DateTime<Utc>>,
}

impl PostRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(PostRow {
            guild_id: row.try_get(0)?,
            iso_year: row.try_get(1)?,
            iso_week: row.try_get(2)?,
            channel_id: row.try_get(3)?,
            insight_id: row.try_get(4)?,
            nonce: row.try_get(5)?,
            source: row.try_get(6)?,
            claimed_at: row.try_get(7)?,
            attempts: row.try_get(8)?,
            retry_at: row.try_get(9)?,
            last_error: row.try_get(10)?,
            message_id: row.try_get(11)?,
            posted_at: row.try_get(12)?,
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
        let week = u32::try_from(self.iso_week)
            .map(|week| WeekKey {
                year: self.iso_year,
                week,
            })
            .map_err(|_| {
                bad(format!(
                    "week {}-W{} is out of range",
                    self.iso_year, self.iso_week
                ))
            })?;
        let source = PostSource::parse(&self.source)
            .ok_or_else(|| bad(format!("unknown source {:?}", self.source)))?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| bad(format!("attempts {} is out of range", self.attempts)))?;
        Ok(PostRecord {
            guild_id,
            week,
            channel_id: from_db_id(self.channel_id),
            insight_id: self.insight_id,
            nonce: self.nonce,
            source,
            claimed_at: self.claimed_at,
            attempts,
            retry_at: self.retry_at,
            last_error: self.last_error,
            message_id: self.message_id.map(from_db_id),
            posted_at: self.posted_at,
        })
    }
}

fn select_post(
    s: &mut Session<'_>,
    guild_id: u64,
    week: WeekKey,
) -> Result<Option<PostRecord>, Fault> {
    s.query_opt(
        SELECT_POST,
        &[&db_id(guild_id), &week.year, &db_week(week.week)],
    )?
    .map(|row| PostRow::read(&row)?.into_record())
    .transpose()
}

fn select_rotation(s: &mut Session<'_>, guild_id: u64) -> Result<RotationState, Fault> {
    let json: Option<String> = match s.query_opt(
        "SELECT state::text FROM rotation WHERE guild_id = $1",
        &[&db_id(guild_id)],
    )? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    };
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
    s: &mut Session<'_>,
    guild_id: u64,
    state: &RotationState,
    now: DateTime<Utc>,
) -> Result<(), Fault> {
    let json = serde_json::to_string(state).map_err(|e| Fault::BadRow {
        table: "rotation",
        guild_id,
        detail: format!("the rotation state cannot be written as JSON ({e})"),
    })?;
    s.execute(
        "INSERT INTO rotation (guild_id, state, updated_at) VALUES ($1, $2::text::jsonb, $3) \
         ON CONFLICT (guild_id) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        &[&db_id(guild_id), &json, &db_time(now)],
    )?;
    Ok(())
}
