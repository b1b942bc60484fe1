//! The SQLite backend's feeds: each feed's settings, the claims and post log that make a post go
//! out exactly once per (feed, period), the threads under posts, and the rotation state that
//! picks the next insight. Their row types and SQL live here with the functions that
//! [`SqliteBackend`]'s `Backend` methods delegate to, so a change to how feeds are stored touches
//! one file; the connection, transactions and errors are the backend's (`mod.rs`).

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{db_day, db_id, db_time, from_db_id, parse_time, query_all, Fault, SqliteBackend};
use crate::store::{
    feed_row, post_nonce, Claim, FeedSettings, FeedSpec, Limit, Pause, PostRecord, PostSource,
    StoreError,
};
use crate::weekly::feed::{FeedId, MAX_FEEDS_PER_SERVER, MAX_KEPT_FEEDS_PER_SERVER};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::Period;

pub(super) fn set_feed(
    backend: &SqliteBackend,
    feed: FeedId,
    spec: &FeedSpec,
    now: DateTime<Utc>,
) -> Result<FeedSettings, StoreError> {
    backend.write(|tx| {
        // Existence only: a row that no longer parses is replaced, not an error.
        let exists = tx
            .prepare_cached("SELECT 1 FROM feed WHERE guild_id = ?1 AND channel_id = ?2")?
            .exists(params_of(feed))?;
        let others_on: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM feed WHERE guild_id = ?1 AND channel_id <> ?2 AND enabled = 1",
            )?
            .query_row(params_of(feed), |r| r.get(0))?;
        if others_on as usize >= MAX_FEEDS_PER_SERVER {
            return Err(Fault::Limit {
                what: Limit::Feeds,
                limit: MAX_FEEDS_PER_SERVER,
            });
        }
        let kept: i64 = tx
            .prepare_cached("SELECT count(*) FROM feed WHERE guild_id = ?1")?
            .query_row([db_id(feed.guild_id)], |r| r.get(0))?;
        if !exists && kept as usize >= MAX_KEPT_FEEDS_PER_SERVER {
            return Err(Fault::Limit {
                what: Limit::KeptFeeds,
                limit: MAX_KEPT_FEEDS_PER_SERVER,
            });
        }
        let columns = feed_row::ScheduleColumns::of(&spec.schedule);
        tx.prepare_cached(
            "INSERT INTO feed (guild_id, channel_id, cadence, weekday, parity, time, zone, topic, \
                 thread, ping_role_id, forum, enabled, paused, paused_until, active_since, \
                 failure_reason, failed_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, 0, NULL, ?12, NULL, NULL, ?12) \
             ON CONFLICT (guild_id, channel_id) DO UPDATE SET \
                 cadence = excluded.cadence, weekday = excluded.weekday, \
                 parity = excluded.parity, time = excluded.time, zone = excluded.zone, \
                 topic = excluded.topic, thread = excluded.thread, \
                 ping_role_id = excluded.ping_role_id, forum = excluded.forum, enabled = 1, \
                 paused = 0, paused_until = NULL, active_since = excluded.active_since, \
                 failure_reason = NULL, failed_at = NULL, updated_at = excluded.updated_at",
        )?
        .execute(params![
            db_id(feed.guild_id),
            db_id(feed.channel_id),
            columns.cadence,
            columns.weekday,
            columns.parity,
            columns.time,
            columns.zone,
            spec.topic,
            spec.thread,
            spec.ping_role.map(db_id),
            spec.forum,
            db_time(now),
        ])?;
        select_feed(tx, feed)?.ok_or(Fault::Sql(rusqlite::Error::QueryReturnedNoRows))
    })
}

pub(super) fn disable_feed(
    backend: &SqliteBackend,
    feed: FeedId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    backend.write(|tx| {
        let changed = tx.execute(
            "UPDATE feed SET enabled = 0, updated_at = ?3 \
             WHERE guild_id = ?1 AND channel_id = ?2 AND enabled = 1",
            params![db_id(feed.guild_id), db_id(feed.channel_id), db_time(now)],
        )?;
        Ok(changed > 0)
    })
}

pub(super) fn set_pause(
    backend: &SqliteBackend,
    feed: FeedId,
    pause: Option<Pause>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let [guild, channel] = params_of(feed);
    backend.write(|tx| {
        let changed = match pause {
            Some(pause) => tx.execute(
                "UPDATE feed SET paused = 1, paused_until = ?3, updated_at = ?4 \
                 WHERE guild_id = ?1 AND channel_id = ?2",
                params![
                    guild,
                    channel,
                    paused_until(pause).map(db_day),
                    db_time(now)
                ],
            )?,
            // Active from now: a slot missed while paused is not posted late.
            None => tx.execute(
                "UPDATE feed SET paused = 0, paused_until = NULL, active_since = ?3, \
                     updated_at = ?3 \
                 WHERE guild_id = ?1 AND channel_id = ?2 AND paused = 1",
                params![guild, channel, db_time(now)],
            )?,
        };
        Ok(changed > 0)
    })
}

fn paused_until(pause: Pause) -> Option<NaiveDate> {
    match pause {
        Pause::Indefinitely => None,
        Pause::Until(day) => Some(day),
    }
}

pub(super) fn feed(
    backend: &SqliteBackend,
    feed: FeedId,
) -> Result<Option<FeedSettings>, StoreError> {
    backend.read(|conn| select_feed(conn, feed))
}

pub(super) fn feeds(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<Vec<FeedSettings>, StoreError> {
    let sql = format!("SELECT {FEED_COLUMNS} FROM feed WHERE guild_id = ?1 ORDER BY channel_id");
    backend.read(|conn| {
        query_all(conn, &sql, [db_id(guild_id)], FeedRow::read)?
            .into_iter()
            .map(FeedRow::into_settings)
            .collect()
    })
}

pub(super) fn active_feeds(backend: &SqliteBackend) -> Result<Vec<FeedSettings>, StoreError> {
    let sql = format!(
        "SELECT {FEED_COLUMNS} FROM feed \
         WHERE enabled = 1 AND failure_reason IS NULL \
             AND NOT (paused = 1 AND paused_until IS NULL) \
         ORDER BY guild_id, channel_id"
    );
    let rows = backend.read(|conn| query_all(conn, &sql, [], FeedRow::read))?;
    Ok(backend.keep_valid(rows, FeedRow::into_settings))
}

pub(super) fn mark_failing(
    backend: &SqliteBackend,
    feed: FeedId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.execute(
            "UPDATE feed SET failure_reason = ?3, failed_at = ?4, updated_at = ?4 \
             WHERE guild_id = ?1 AND channel_id = ?2",
            params![
                db_id(feed.guild_id),
                db_id(feed.channel_id),
                reason,
                db_time(now)
            ],
        )?;
        Ok(())
    })
}

/// A feed's key as SQL parameters: `[guild, channel]`.
fn params_of(feed: FeedId) -> [i64; 2] {
    [db_id(feed.guild_id), db_id(feed.channel_id)]
}

fn period_start(period: Period) -> Result<String, StoreError> {
    period
        .start()
        .map(db_day)
        .ok_or(StoreError::InvalidPeriod { period })
}

/// Inserts a post row unless the period has one; the number of rows inserted.
fn insert_post(
    tx: &Connection,
    feed: FeedId,
    period: Period,
    start: &str,
    insight_id: &str,
    source: PostSource,
    now: DateTime<Utc>,
) -> Result<usize, Fault> {
    let [guild, channel] = params_of(feed);
    // A thread is wanted when the feed asks for one and is not a forum (a forum post is a
    // thread already); a skip never has one.
    Ok(tx
        .prepare_cached(
            "INSERT INTO feed_post (guild_id, feed_channel_id, period, period_start, channel_id, \
                 insight_id, nonce, source, claimed_at, updated_at, thread_wanted) \
             VALUES (?1, ?2, ?3, ?4, ?2, ?5, ?6, ?7, ?8, ?8, \
                 ?7 <> 'skip' AND coalesce((SELECT thread = 1 AND forum = 0 FROM feed \
                     WHERE guild_id = ?1 AND channel_id = ?2), 0)) \
             ON CONFLICT (guild_id, feed_channel_id, period) DO NOTHING",
        )?
        .execute(params![
            guild,
            channel,
            period.to_string(),
            start,
            insight_id,
            post_nonce(feed, period),
            source.as_str(),
            db_time(now),
        ])?)
}

pub(super) fn claim(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
    insight_ids: &[&str],
    source: PostSource,
    rng: &mut dyn rand::RngCore,
    now: DateTime<Utc>,
) -> Result<Option<Claim>, StoreError> {
    let start = period_start(period)?;
    backend.write(|tx| {
        if let Some(existing) = select_post(tx, feed, period)? {
            return Ok(Some(Claim::AlreadyClaimed(existing)));
        }
        let rotation = select_rotation(tx, feed)?;
        let Some((insight_id, next)) = rotation.next(insight_ids, rng) else {
            return Ok(None);
        };
        // The primary key decides. Under BEGIN IMMEDIATE no other writer can have inserted
        // since the check above, but if one ever did, its row wins and the rotation is left
        // as it was, because it is written only after our insert succeeded.
        let inserted = insert_post(tx, feed, period, &start, &insight_id, source, now)?;
        let record = select_post(tx, feed, period)?.ok_or(Fault::NoClaim { feed, period })?;
        if inserted == 0 {
            return Ok(Some(Claim::AlreadyClaimed(record)));
        }
        save_rotation(tx, feed, &next, now)?;
        Ok(Some(Claim::Claimed(record)))
    })
}

pub(super) fn skip(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    let start = period_start(period)?;
    backend.write(|tx| {
        let inserted = insert_post(tx, feed, period, &start, "", PostSource::Skip, now)?;
        let record = select_post(tx, feed, period)?.ok_or(Fault::NoClaim { feed, period })?;
        Ok(if inserted == 0 {
            Claim::AlreadyClaimed(record)
        } else {
            Claim::Claimed(record)
        })
    })
}

pub(super) fn record_attempt(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
    now: DateTime<Utc>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<PostRecord, StoreError> {
    let [guild, channel] = params_of(feed);
    backend.write(|tx| {
        let changed = tx.execute(
            "UPDATE feed_post SET attempts = attempts + ?4, last_error = ?5, retry_at = ?6, \
                 updated_at = ?7 \
             WHERE guild_id = ?1 AND feed_channel_id = ?2 AND period = ?3 AND source <> 'skip' \
                 AND message_id IS NULL",
            params![
                guild,
                channel,
                period.to_string(),
                i64::from(error.is_none()),
                error,
                retry_at.map(db_time),
                db_time(now),
            ],
        )?;
        let record = select_post(tx, feed, period)?;
        match record {
            Some(record) if changed > 0 => Ok(record),
            _ => Err(Fault::NoClaim { feed, period }),
        }
    })
}

pub(super) fn confirm_post(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
    message_id: u64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let [guild, channel] = params_of(feed);
    backend.write(|tx| {
        let changed = tx.execute(
            "UPDATE feed_post SET message_id = ?4, posted_at = ?5, retry_at = NULL, \
                 updated_at = ?5 \
             WHERE guild_id = ?1 AND feed_channel_id = ?2 AND period = ?3 \
                 AND message_id IS NULL AND source <> 'skip'",
            params![
                guild,
                channel,
                period.to_string(),
                db_id(message_id),
                db_time(now)
            ],
        )?;
        if changed == 0 {
            match select_post(tx, feed, period)? {
                None => return Err(Fault::NoClaim { feed, period }),
                Some(record) if record.source == PostSource::Skip => {
                    return Err(Fault::NoClaim { feed, period })
                }
                Some(record) if record.message_id != Some(message_id) => {
                    tracing::warn!(
                        %feed,
                        %period,
                        kept = ?record.message_id,
                        ignored = message_id,
                        "post confirmed twice with different messages; keeping the first"
                    );
                }
                Some(_) => {}
            }
        }
        Ok(())
    })
}

pub(super) fn record_thread(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
    outcome: Result<u64, &str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let [guild, channel] = params_of(feed);
    let (thread_id, error) = match outcome {
        Ok(id) => (Some(db_id(id)), None),
        Err(reason) => (None, Some(reason)),
    };
    backend.write(|tx| {
        let changed = tx.execute(
            "UPDATE feed_post SET thread_id = coalesce(thread_id, ?4), \
                 thread_error = CASE WHEN thread_id IS NULL AND ?4 IS NULL THEN ?5 ELSE NULL END, \
                 updated_at = ?6 \
             WHERE guild_id = ?1 AND feed_channel_id = ?2 AND period = ?3 \
                 AND message_id IS NOT NULL",
            params![
                guild,
                channel,
                period.to_string(),
                thread_id,
                error,
                db_time(now)
            ],
        )?;
        if changed == 0 {
            return Err(Fault::NoClaim { feed, period });
        }
        Ok(())
    })
}

pub(super) fn posts_awaiting_thread(
    backend: &SqliteBackend,
    since: DateTime<Utc>,
) -> Result<Vec<PostRecord>, StoreError> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM feed_post \
         WHERE thread_wanted = 1 AND thread_id IS NULL AND message_id IS NOT NULL \
             AND posted_at >= ?1 \
         ORDER BY posted_at, guild_id, feed_channel_id, period_start"
    );
    let rows = backend.read(|conn| query_all(conn, &sql, [db_time(since)], PostRow::read))?;
    Ok(backend.keep_valid(rows, PostRow::into_record))
}

pub(super) fn release_claim(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
) -> Result<(), StoreError> {
    let [guild, channel] = params_of(feed);
    backend.write(|tx| {
        tx.execute(
            "DELETE FROM feed_post \
             WHERE guild_id = ?1 AND feed_channel_id = ?2 AND period = ?3 \
                 AND message_id IS NULL AND source <> 'skip'",
            params![guild, channel, period.to_string()],
        )?;
        Ok(())
    })
}

pub(super) fn post(
    backend: &SqliteBackend,
    feed: FeedId,
    period: Period,
) -> Result<Option<PostRecord>, StoreError> {
    backend.read(|conn| select_post(conn, feed, period))
}

pub(super) fn last_post(
    backend: &SqliteBackend,
    feed: FeedId,
) -> Result<Option<PostRecord>, StoreError> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM feed_post \
         WHERE guild_id = ?1 AND feed_channel_id = ?2 AND message_id IS NOT NULL \
         ORDER BY period_start DESC, posted_at DESC LIMIT 1"
    );
    let [guild, channel] = params_of(feed);
    backend.read(|conn| {
        conn.prepare_cached(&sql)?
            .query_row([guild, channel], PostRow::read)
            .optional()?
            .map(PostRow::into_record)
            .transpose()
    })
}

pub(super) fn claimed_slots_since(
    backend: &SqliteBackend,
    since: NaiveDate,
) -> Result<HashSet<(FeedId, Period)>, StoreError> {
    let rows = backend.read(|conn| {
        query_all(
            conn,
            "SELECT guild_id, feed_channel_id, period FROM feed_post WHERE period_start >= ?1",
            [db_day(since)],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            },
        )
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(guild, channel, period)| {
            let feed = FeedId::new(from_db_id(guild), from_db_id(channel));
            Period::parse(&period).map(|period| (feed, period))
        })
        .collect())
}

pub(super) fn unconfirmed_posts(backend: &SqliteBackend) -> Result<Vec<PostRecord>, StoreError> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM feed_post WHERE message_id IS NULL AND source <> 'skip' \
         ORDER BY period_start, guild_id, feed_channel_id"
    );
    let rows = backend.read(|conn| query_all(conn, &sql, [], PostRow::read))?;
    Ok(backend.keep_valid(rows, PostRow::into_record))
}

pub(super) fn rotation(backend: &SqliteBackend, feed: FeedId) -> Result<RotationState, StoreError> {
    backend.read(|conn| select_rotation(conn, feed))
}

const FEED_COLUMNS: &str = "guild_id, channel_id, cadence, weekday, parity, time, zone, topic, \
     thread, ping_role_id, forum, enabled, paused, paused_until, active_since, failure_reason, \
     failed_at, updated_at";

/// A `feed` row as stored, before parsing.
struct FeedRow {
    guild_id: i64,
    channel_id: i64,
    schedule: feed_row::ScheduleColumns,
    topic: Option<String>,
    thread: bool,
    ping_role_id: Option<i64>,
    forum: bool,
    enabled: bool,
    paused: bool,
    paused_until: Option<String>,
    active_since: String,
    failure_reason: Option<String>,
    failed_at: Option<String>,
    updated_at: String,
}

impl FeedRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(FeedRow {
            guild_id: row.get(0)?,
            channel_id: row.get(1)?,
            schedule: feed_row::ScheduleColumns {
                cadence: row.get(2)?,
                weekday: row.get(3)?,
                parity: row.get(4)?,
                time: row.get(5)?,
                zone: row.get(6)?,
            },
            topic: row.get(7)?,
            thread: row.get(8)?,
            ping_role_id: row.get(9)?,
            forum: row.get(10)?,
            enabled: row.get(11)?,
            paused: row.get(12)?,
            paused_until: row.get(13)?,
            active_since: row.get(14)?,
            failure_reason: row.get(15)?,
            failed_at: row.get(16)?,
            updated_at: row.get(17)?,
        })
    }

    fn into_settings(self) -> Result<FeedSettings, Fault> {
        const TABLE: &str = "feed";
        let guild_id = from_db_id(self.guild_id);
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail,
        };
        let time = |column: &str, text: &str| parse_time(TABLE, guild_id, column, text);
        let failed_at = self
            .failed_at
            .map(|at| time("failed_at", &at))
            .transpose()?;
        let parsed = feed_row::Parsed {
            schedule: self.schedule,
            paused: self.paused,
            paused_until: self.paused_until,
            failure_reason: self.failure_reason,
            failed_at,
        };
        let (schedule, pause, failure) = parsed.parse().map_err(bad)?;
        Ok(FeedSettings {
            feed: FeedId::new(guild_id, from_db_id(self.channel_id)),
            schedule,
            topic: self.topic,
            thread: self.thread,
            ping_role: self.ping_role_id.map(from_db_id),
            forum: self.forum,
            enabled: self.enabled,
            pause,
            active_since: time("active_since", &self.active_since)?,
            failure,
            updated_at: time("updated_at", &self.updated_at)?,
        })
    }
}

fn select_feed(conn: &Connection, feed: FeedId) -> Result<Option<FeedSettings>, Fault> {
    let sql = format!("SELECT {FEED_COLUMNS} FROM feed WHERE guild_id = ?1 AND channel_id = ?2");
    let [guild, channel] = params_of(feed);
    conn.prepare_cached(&sql)?
        .query_row([guild, channel], FeedRow::read)
        .optional()?
        .map(FeedRow::into_settings)
        .transpose()
}

const POST_COLUMNS: &str = "guild_id, feed_channel_id, period, channel_id, insight_id, nonce, \
     source, claimed_at, attempts, retry_at, last_error, message_id, posted_at, thread_wanted, \
     thread_id, thread_error";

/// A `feed_post` row as stored, before parsing.
struct PostRow {
    guild_id: i64,
    feed_channel_id: i64,
    period: String,
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
    thread_wanted: bool,
    thread_id: Option<i64>,
    thread_error: Option<String>,
}

impl PostRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(PostRow {
            guild_id: row.get(0)?,
            feed_channel_id: row.get(1)?,
            period: row.get(2)?,
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
            thread_wanted: row.get(13)?,
            thread_id: row.get(14)?,
            thread_error: row.get(15)?,
        })
    }

    fn into_record(self) -> Result<PostRecord, Fault> {
        const TABLE: &str = "feed_post";
        let guild_id = from_db_id(self.guild_id);
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail,
        };
        let period = Period::parse(&self.period)
            .ok_or_else(|| bad(format!("period {:?} is not a week or a date", self.period)))?;
        let source = PostSource::parse(&self.source)
            .ok_or_else(|| bad(format!("unknown source {:?}", self.source)))?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| bad(format!("attempts {} is out of range", self.attempts)))?;
        let time = |column: &str, text: &str| parse_time(TABLE, guild_id, column, text);
        Ok(PostRecord {
            feed: FeedId::new(guild_id, from_db_id(self.feed_channel_id)),
            period,
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
            thread_wanted: self.thread_wanted,
            thread_id: self.thread_id.map(from_db_id),
            thread_error: self.thread_error,
        })
    }
}

fn select_post(
    conn: &Connection,
    feed: FeedId,
    period: Period,
) -> Result<Option<PostRecord>, Fault> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM feed_post \
         WHERE guild_id = ?1 AND feed_channel_id = ?2 AND period = ?3"
    );
    let [guild, channel] = params_of(feed);
    conn.prepare_cached(&sql)?
        .query_row(params![guild, channel, period.to_string()], PostRow::read)
        .optional()?
        .map(PostRow::into_record)
        .transpose()
}

fn select_rotation(conn: &Connection, feed: FeedId) -> Result<RotationState, Fault> {
    let [guild, channel] = params_of(feed);
    let json: Option<String> = conn
        .prepare_cached("SELECT state FROM feed_rotation WHERE guild_id = ?1 AND channel_id = ?2")?
        .query_row([guild, channel], |r| r.get(0))
        .optional()?;
    match json {
        None => Ok(RotationState::default()),
        Some(json) => serde_json::from_str(&json).map_err(|e| Fault::BadRow {
            table: "feed_rotation",
            guild_id: feed.guild_id,
            detail: format!("the stored rotation state is not valid ({e})"),
        }),
    }
}

fn save_rotation(
    conn: &Connection,
    feed: FeedId,
    state: &RotationState,
    now: DateTime<Utc>,
) -> Result<(), Fault> {
    let json = serde_json::to_string(state).map_err(|e| Fault::BadRow {
        table: "feed_rotation",
        guild_id: feed.guild_id,
        detail: format!("the rotation state cannot be written as JSON ({e})"),
    })?;
    let [guild, channel] = params_of(feed);
    conn.prepare_cached(
        "INSERT INTO feed_rotation (guild_id, channel_id, state, updated_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (guild_id, channel_id) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
    )?
    .execute(params![guild, channel, json, db_time(now)])?;
    Ok(())
}
