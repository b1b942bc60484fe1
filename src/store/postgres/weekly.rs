//! The PostgreSQL backend's feeds: each feed's settings, the claims and post log that make a post
//! go out exactly once per (feed, period), the threads under posts, and the rotation state that
//! picks the next insight. Their row types and SQL live here with the functions that
//! [`PostgresBackend`]'s `Backend` methods delegate to, so a change to how feeds are stored
//! touches one file; the pool, sessions, transactions and errors are the backend's (`mod.rs`).
//! What a row's columns mean (cadence, weekday, parity, pause, failure) is shared with the SQLite
//! backend in [`feed_row`].
//!
//! Every write that must see a server's feeds as a whole (adding a feed under the limit, a claim
//! reading the rotation it advances, a skip) takes the server's advisory lock
//! (`lock_server` in `mod.rs`) first, as SQLite's single writer would serialise them.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;

use super::{count, db_id, db_time, from_db_id, lock_server, Fault, PostgresBackend, Session};
use crate::store::{
    feed_row, post_nonce, Claim, FeedSettings, FeedSpec, Limit, Pause, PostRecord, PostSource,
    StoreError,
};
use crate::weekly::feed::{FeedId, MAX_FEEDS_PER_SERVER, MAX_KEPT_FEEDS_PER_SERVER};
use crate::weekly::rotation::RotationState;
use crate::weekly::schedule::Period;

pub(super) fn set_feed(
    backend: &PostgresBackend,
    feed: FeedId,
    spec: &FeedSpec,
    now: DateTime<Utc>,
) -> Result<FeedSettings, StoreError> {
    let columns = feed_row::ScheduleColumns::of(&spec.schedule);
    // 0 or 1 (every-2-weeks' parity; 0 for every other cadence).
    let parity = i32::from(columns.parity != 0);
    let (guild, channel) = key(feed);
    let row = backend.write(|s| {
        // The count checked below stays true until commit: every add for this server waits here.
        lock_server(s, feed.guild_id)?;
        // Existence only: a row that no longer parses is replaced, not an error.
        let exists = s
            .query_opt(
                "SELECT 1 FROM feed WHERE guild_id = $1 AND channel_id = $2",
                &[&guild, &channel],
            )?
            .is_some();
        let others_on = count(
            s,
            "SELECT count(*) FROM feed WHERE guild_id = $1 AND channel_id <> $2 AND enabled",
            &[&guild, &channel],
        )?;
        if others_on >= MAX_FEEDS_PER_SERVER {
            return Err(Fault::Limit {
                what: Limit::Feeds,
                limit: MAX_FEEDS_PER_SERVER,
            });
        }
        if !exists
            && count(
                s,
                "SELECT count(*) FROM feed WHERE guild_id = $1",
                &[&guild],
            )? >= MAX_KEPT_FEEDS_PER_SERVER
        {
            return Err(Fault::Limit {
                what: Limit::KeptFeeds,
                limit: MAX_KEPT_FEEDS_PER_SERVER,
            });
        }
        let row = s.query_one(
            UPSERT_FEED,
            &[
                &guild,
                &channel,
                &columns.cadence,
                &columns.weekday,
                &parity,
                &columns.time,
                &columns.zone,
                &spec.topic,
                &spec.thread,
                &spec.ping_role.map(db_id),
                &spec.forum,
                &db_time(now),
            ],
        )?;
        Ok(FeedRow::read(&row)?)
    })?;
    row.into_settings().map_err(|fault| backend.error(fault))
}

pub(super) fn disable_feed(
    backend: &PostgresBackend,
    feed: FeedId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (guild, channel) = key(feed);
    let changed = backend.write(|s| {
        s.execute(
            "UPDATE feed SET enabled = false, updated_at = $3 \
             WHERE guild_id = $1 AND channel_id = $2 AND enabled",
            &[&guild, &channel, &db_time(now)],
        )
    })?;
    Ok(changed > 0)
}

pub(super) fn set_pause(
    backend: &PostgresBackend,
    feed: FeedId,
    pause: Option<Pause>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (guild, channel) = key(feed);
    let changed = backend.write(|s| match pause {
        Some(pause) => s.execute(
            "UPDATE feed SET paused = true, paused_until = $3, updated_at = $4 \
             WHERE guild_id = $1 AND channel_id = $2",
            &[&guild, &channel, &paused_until(pause), &db_time(now)],
        ),
        // Active from now: a slot missed while paused is not posted late.
        None => s.execute(
            "UPDATE feed SET paused = false, paused_until = NULL, active_since = $3, \
                 updated_at = $3 \
             WHERE guild_id = $1 AND channel_id = $2 AND paused",
            &[&guild, &channel, &db_time(now)],
        ),
    })?;
    Ok(changed > 0)
}

fn paused_until(pause: Pause) -> Option<NaiveDate> {
    match pause {
        Pause::Indefinitely => None,
        Pause::Until(day) => Some(day),
    }
}

pub(super) fn feed(
    backend: &PostgresBackend,
    feed: FeedId,
) -> Result<Option<FeedSettings>, StoreError> {
    let (guild, channel) = key(feed);
    let row = backend.read(|s| {
        s.query_opt(SELECT_FEED, &[&guild, &channel])?
            .map(|row| FeedRow::read(&row))
            .transpose()
            .map_err(Fault::Pg)
    })?;
    row.map(FeedRow::into_settings)
        .transpose()
        .map_err(|fault| backend.error(fault))
}

pub(super) fn feeds(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<Vec<FeedSettings>, StoreError> {
    let rows = backend.read(|s| feed_rows(s, SERVER_FEEDS, &[&db_id(guild_id)]))?;
    rows.into_iter()
        .map(FeedRow::into_settings)
        .collect::<Result<_, _>>()
        .map_err(|fault| backend.error(fault))
}

pub(super) fn active_feeds(backend: &PostgresBackend) -> Result<Vec<FeedSettings>, StoreError> {
    let rows = backend.read(|s| feed_rows(s, ACTIVE_FEEDS, &[]))?;
    Ok(backend.keep_valid(rows, FeedRow::into_settings))
}

pub(super) fn mark_failing(
    backend: &PostgresBackend,
    feed: FeedId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (guild, channel) = key(feed);
    backend.write(|s| {
        s.execute(
            "UPDATE feed SET failure_reason = $3, failed_at = $4, updated_at = $4 \
             WHERE guild_id = $1 AND channel_id = $2",
            &[&guild, &channel, &reason, &db_time(now)],
        )
    })?;
    Ok(())
}

/// A feed's key columns: (guild_id, channel_id).
fn key(feed: FeedId) -> (i64, i64) {
    (db_id(feed.guild_id), db_id(feed.channel_id))
}

fn period_start(period: Period) -> Result<NaiveDate, StoreError> {
    period.start().ok_or(StoreError::InvalidPeriod { period })
}

/// Inserts a post row unless the period has one: the row inserted, or `None`.
fn insert_post(
    s: &mut Session<'_>,
    feed: FeedId,
    period: Period,
    start: NaiveDate,
    insight_id: &str,
    source: PostSource,
    now: DateTime<Utc>,
) -> Result<Option<PostRecord>, Fault> {
    let (guild, channel) = key(feed);
    s.query_opt(
        INSERT_POST,
        &[
            &guild,
            &channel,
            &period.to_string(),
            &start,
            &insight_id,
            &post_nonce(feed, period),
            &source.as_str(),
            &db_time(now),
        ],
    )?
    .map(|row| PostRow::read(&row)?.into_record())
    .transpose()
}

pub(super) fn claim(
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
    insight_ids: &[&str],
    source: PostSource,
    rng: &mut dyn rand::RngCore,
    now: DateTime<Utc>,
) -> Result<Option<Claim>, StoreError> {
    let start = period_start(period)?;
    backend.write(|s| {
        // One claim per server at a time, in every process: the rotation read below is the
        // one the insert will advance.
        lock_server(s, feed.guild_id)?;
        if let Some(existing) = select_post(s, feed, period)? {
            return Ok(Some(Claim::AlreadyClaimed(existing)));
        }
        let rotation = select_rotation(s, feed)?;
        let Some((insight_id, next)) = rotation.next(insight_ids, rng) else {
            return Ok(None);
        };
        // The primary key decides. Under the lock no other claim can have inserted since the
        // check above, but if a writer without it ever did, its row wins and the rotation is
        // left as it was, because it is written only after our insert succeeded.
        let Some(record) = insert_post(s, feed, period, start, &insight_id, source, now)? else {
            let record = select_post(s, feed, period)?.ok_or(Fault::NoClaim { feed, period })?;
            return Ok(Some(Claim::AlreadyClaimed(record)));
        };
        save_rotation(s, feed, &next, now)?;
        Ok(Some(Claim::Claimed(record)))
    })
}

pub(super) fn skip(
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Claim, StoreError> {
    let start = period_start(period)?;
    backend.write(|s| {
        lock_server(s, feed.guild_id)?;
        match insert_post(s, feed, period, start, "", PostSource::Skip, now)? {
            Some(record) => Ok(Claim::Claimed(record)),
            None => select_post(s, feed, period)?
                .map(Claim::AlreadyClaimed)
                .ok_or(Fault::NoClaim { feed, period }),
        }
    })
}

pub(super) fn record_attempt(
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
    now: DateTime<Utc>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
) -> Result<PostRecord, StoreError> {
    let (guild, channel) = key(feed);
    let counted = i32::from(error.is_none());
    let row = backend.write(|s| {
        s.query_opt(
            RECORD_ATTEMPT,
            &[
                &guild,
                &channel,
                &period.to_string(),
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
    let row = row.ok_or_else(|| backend.error(Fault::NoClaim { feed, period }))?;
    row.into_record().map_err(|fault| backend.error(fault))
}

pub(super) fn confirm_post(
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
    message_id: u64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (guild, channel) = key(feed);
    backend.write(|s| {
        let changed = s.execute(
            "UPDATE feed_post SET message_id = $4, posted_at = $5, retry_at = NULL, \
                 updated_at = $5 \
             WHERE guild_id = $1 AND feed_channel_id = $2 AND period = $3 \
                 AND message_id IS NULL AND source <> 'skip'",
            &[
                &guild,
                &channel,
                &period.to_string(),
                &db_id(message_id),
                &db_time(now),
            ],
        )?;
        if changed == 0 {
            match select_post(s, feed, period)? {
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
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
    outcome: Result<u64, &str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (guild, channel) = key(feed);
    let (thread_id, error) = match outcome {
        Ok(id) => (Some(db_id(id)), None),
        Err(reason) => (None, Some(reason)),
    };
    let changed = backend.write(|s| {
        // A recorded thread is never replaced; an error is kept only while there is no thread.
        s.execute(
            "UPDATE feed_post SET thread_id = coalesce(thread_id, $4), \
                 thread_error = CASE WHEN thread_id IS NULL AND $4::bigint IS NULL \
                     THEN $5::text ELSE NULL END, \
                 updated_at = $6 \
             WHERE guild_id = $1 AND feed_channel_id = $2 AND period = $3 \
                 AND message_id IS NOT NULL",
            &[
                &guild,
                &channel,
                &period.to_string(),
                &thread_id,
                &error,
                &db_time(now),
            ],
        )
    })?;
    if changed == 0 {
        return Err(backend.error(Fault::NoClaim { feed, period }));
    }
    Ok(())
}

pub(super) fn posts_awaiting_thread(
    backend: &PostgresBackend,
    since: DateTime<Utc>,
) -> Result<Vec<PostRecord>, StoreError> {
    let rows = backend.read(|s| post_rows(s, AWAITING_THREAD, &[&db_time(since)]))?;
    Ok(backend.keep_valid(rows, PostRow::into_record))
}

pub(super) fn release_claim(
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
) -> Result<(), StoreError> {
    let (guild, channel) = key(feed);
    backend.write(|s| {
        s.execute(
            "DELETE FROM feed_post \
             WHERE guild_id = $1 AND feed_channel_id = $2 AND period = $3 \
                 AND message_id IS NULL AND source <> 'skip'",
            &[&guild, &channel, &period.to_string()],
        )
    })?;
    Ok(())
}

pub(super) fn post(
    backend: &PostgresBackend,
    feed: FeedId,
    period: Period,
) -> Result<Option<PostRecord>, StoreError> {
    backend.read(|s| select_post(s, feed, period))
}

pub(super) fn last_post(
    backend: &PostgresBackend,
    feed: FeedId,
) -> Result<Option<PostRecord>, StoreError> {
    let (guild, channel) = key(feed);
    backend.read(|s| {
        s.query_opt(LAST_POST, &[&guild, &channel])?
            .map(|row| PostRow::read(&row)?.into_record())
            .transpose()
    })
}

pub(super) fn claimed_slots_since(
    backend: &PostgresBackend,
    since: NaiveDate,
) -> Result<HashSet<(FeedId, Period)>, StoreError> {
    let rows = backend.read(|s| {
        let rows = s.query(
            "SELECT guild_id, feed_channel_id, period FROM feed_post WHERE period_start >= $1",
            &[&since],
        )?;
        rows.iter()
            .map(|row| -> Result<(i64, i64, String), Fault> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    // A period that no longer parses is no slot the poster could be asking about.
    Ok(rows
        .into_iter()
        .filter_map(|(guild, channel, period)| {
            let feed = FeedId::new(from_db_id(guild), from_db_id(channel));
            Period::parse(&period).map(|period| (feed, period))
        })
        .collect())
}

pub(super) fn unconfirmed_posts(backend: &PostgresBackend) -> Result<Vec<PostRecord>, StoreError> {
    let rows = backend.read(|s| post_rows(s, UNCONFIRMED_POSTS, &[]))?;
    Ok(backend.keep_valid(rows, PostRow::into_record))
}

pub(super) fn rotation(
    backend: &PostgresBackend,
    feed: FeedId,
) -> Result<RotationState, StoreError> {
    backend.read(|s| select_rotation(s, feed))
}

macro_rules! feed_columns {
    () => {
        "guild_id, channel_id, cadence, weekday, parity, time, zone, topic, thread, \
         ping_role_id, forum, enabled, paused, paused_until, active_since, failure_reason, \
         failed_at, updated_at"
    };
}

macro_rules! post_columns {
    () => {
        "guild_id, feed_channel_id, period, channel_id, insight_id, nonce, source, claimed_at, \
         attempts, retry_at, last_error, message_id, posted_at, thread_wanted, thread_id, \
         thread_error"
    };
}

const SELECT_FEED: &str = concat!(
    "SELECT ",
    feed_columns!(),
    " FROM feed WHERE guild_id = $1 AND channel_id = $2"
);

const SERVER_FEEDS: &str = concat!(
    "SELECT ",
    feed_columns!(),
    " FROM feed WHERE guild_id = $1 ORDER BY channel_id"
);

const ACTIVE_FEEDS: &str = concat!(
    "SELECT ",
    feed_columns!(),
    " FROM feed \
      WHERE enabled AND failure_reason IS NULL AND NOT (paused AND paused_until IS NULL) \
      ORDER BY guild_id, channel_id"
);

const UPSERT_FEED: &str = concat!(
    "INSERT INTO feed (guild_id, channel_id, cadence, weekday, parity, time, zone, topic, \
         thread, ping_role_id, forum, enabled, paused, paused_until, active_since, \
         failure_reason, failed_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true, false, NULL, $12, NULL, NULL, \
         $12) \
     ON CONFLICT (guild_id, channel_id) DO UPDATE SET \
         cadence = excluded.cadence, weekday = excluded.weekday, parity = excluded.parity, \
         time = excluded.time, zone = excluded.zone, topic = excluded.topic, \
         thread = excluded.thread, ping_role_id = excluded.ping_role_id, \
         forum = excluded.forum, enabled = true, paused = false, paused_until = NULL, \
         active_since = excluded.active_since, failure_reason = NULL, failed_at = NULL, \
         updated_at = excluded.updated_at \
     RETURNING ",
    feed_columns!()
);

const SELECT_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM feed_post WHERE guild_id = $1 AND feed_channel_id = $2 AND period = $3"
);

// A thread is wanted when the feed asks for one and is not a forum (a forum post is a thread
// already); a skip never has one.
const INSERT_POST: &str = concat!(
    "INSERT INTO feed_post (guild_id, feed_channel_id, period, period_start, channel_id, \
         insight_id, nonce, source, claimed_at, updated_at, thread_wanted) \
     VALUES ($1, $2, $3, $4, $2, $5, $6, $7::text, $8, $8, \
         $7::text <> 'skip' AND coalesce((SELECT thread AND NOT forum FROM feed \
             WHERE guild_id = $1 AND channel_id = $2), false)) \
     ON CONFLICT (guild_id, feed_channel_id, period) DO NOTHING \
     RETURNING ",
    post_columns!()
);

const RECORD_ATTEMPT: &str = concat!(
    "UPDATE feed_post SET attempts = attempts + $4, last_error = $5, retry_at = $6, \
         updated_at = $7 \
     WHERE guild_id = $1 AND feed_channel_id = $2 AND period = $3 AND source <> 'skip' \
         AND message_id IS NULL \
     RETURNING ",
    post_columns!()
);

const AWAITING_THREAD: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM feed_post \
      WHERE thread_wanted AND thread_id IS NULL AND message_id IS NOT NULL \
          AND posted_at >= $1 \
      ORDER BY posted_at, guild_id, feed_channel_id, period_start"
);

const LAST_POST: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM feed_post \
      WHERE guild_id = $1 AND feed_channel_id = $2 AND message_id IS NOT NULL \
      ORDER BY period_start DESC, posted_at DESC LIMIT 1"
);

const UNCONFIRMED_POSTS: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM feed_post WHERE message_id IS NULL AND source <> 'skip' \
      ORDER BY period_start, guild_id, feed_channel_id"
);

fn feed_rows(
    s: &mut Session<'_>,
    sql: &'static str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<FeedRow>, Fault> {
    let rows = s.query(sql, params)?;
    Ok(rows
        .iter()
        .map(FeedRow::read)
        .collect::<Result<Vec<_>, _>>()?)
}

fn post_rows(
    s: &mut Session<'_>,
    sql: &'static str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<PostRow>, Fault> {
    let rows = s.query(sql, params)?;
    Ok(rows
        .iter()
        .map(PostRow::read)
        .collect::<Result<Vec<_>, _>>()?)
}

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
    paused_until: Option<NaiveDate>,
    active_since: DateTime<Utc>,
    failure_reason: Option<String>,
    failed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl FeedRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(FeedRow {
            guild_id: row.try_get(0)?,
            channel_id: row.try_get(1)?,
            schedule: feed_row::ScheduleColumns {
                cadence: row.try_get(2)?,
                weekday: row.try_get(3)?,
                parity: i64::from(row.try_get::<_, i32>(4)?),
                time: row.try_get(5)?,
                zone: row.try_get(6)?,
            },
            topic: row.try_get(7)?,
            thread: row.try_get(8)?,
            ping_role_id: row.try_get(9)?,
            forum: row.try_get(10)?,
            enabled: row.try_get(11)?,
            paused: row.try_get(12)?,
            paused_until: row.try_get(13)?,
            active_since: row.try_get(14)?,
            failure_reason: row.try_get(15)?,
            failed_at: row.try_get(16)?,
            updated_at: row.try_get(17)?,
        })
    }

    fn into_settings(self) -> Result<FeedSettings, Fault> {
        let guild_id = from_db_id(self.guild_id);
        let parsed = feed_row::Parsed {
            schedule: self.schedule,
            paused: self.paused,
            // The text form both backends' rows are checked in.
            paused_until: self
                .paused_until
                .map(|day| day.format("%Y-%m-%d").to_string()),
            failure_reason: self.failure_reason,
            failed_at: self.failed_at,
        };
        let (schedule, pause, failure) = parsed.parse().map_err(|detail| Fault::BadRow {
            table: "feed",
            guild_id,
            detail,
        })?;
        Ok(FeedSettings {
            feed: FeedId::new(guild_id, from_db_id(self.channel_id)),
            schedule,
            topic: self.topic,
            thread: self.thread,
            ping_role: self.ping_role_id.map(from_db_id),
            forum: self.forum,
            enabled: self.enabled,
            pause,
            active_since: self.active_since,
            failure,
            updated_at: self.updated_at,
        })
    }
}

/// A `feed_post` row as stored, before parsing.
struct PostRow {
    guild_id: i64,
    feed_channel_id: i64,
    period: String,
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
    thread_wanted: bool,
    thread_id: Option<i64>,
    thread_error: Option<String>,
}

impl PostRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(PostRow {
            guild_id: row.try_get(0)?,
            feed_channel_id: row.try_get(1)?,
            period: row.try_get(2)?,
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
            thread_wanted: row.try_get(13)?,
            thread_id: row.try_get(14)?,
            thread_error: row.try_get(15)?,
        })
    }

    fn into_record(self) -> Result<PostRecord, Fault> {
        let guild_id = from_db_id(self.guild_id);
        let bad = |detail: String| Fault::BadRow {
            table: "feed_post",
            guild_id,
            detail,
        };
        let period = Period::parse(&self.period)
            .ok_or_else(|| bad(format!("period {:?} is not a week or a date", self.period)))?;
        let source = PostSource::parse(&self.source)
            .ok_or_else(|| bad(format!("unknown source {:?}", self.source)))?;
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| bad(format!("attempts {} is out of range", self.attempts)))?;
        Ok(PostRecord {
            feed: FeedId::new(guild_id, from_db_id(self.feed_channel_id)),
            period,
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
            thread_wanted: self.thread_wanted,
            thread_id: self.thread_id.map(from_db_id),
            thread_error: self.thread_error,
        })
    }
}

fn select_post(
    s: &mut Session<'_>,
    feed: FeedId,
    period: Period,
) -> Result<Option<PostRecord>, Fault> {
    let (guild, channel) = key(feed);
    s.query_opt(SELECT_POST, &[&guild, &channel, &period.to_string()])?
        .map(|row| PostRow::read(&row)?.into_record())
        .transpose()
}

fn select_rotation(s: &mut Session<'_>, feed: FeedId) -> Result<RotationState, Fault> {
    let (guild, channel) = key(feed);
    let json: Option<String> = match s.query_opt(
        "SELECT state::text FROM feed_rotation WHERE guild_id = $1 AND channel_id = $2",
        &[&guild, &channel],
    )? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    };
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
    s: &mut Session<'_>,
    feed: FeedId,
    state: &RotationState,
    now: DateTime<Utc>,
) -> Result<(), Fault> {
    let json = serde_json::to_string(state).map_err(|e| Fault::BadRow {
        table: "feed_rotation",
        guild_id: feed.guild_id,
        detail: format!("the rotation state cannot be written as JSON ({e})"),
    })?;
    let (guild, channel) = key(feed);
    s.execute(
        "INSERT INTO feed_rotation (guild_id, channel_id, state, updated_at) \
         VALUES ($1, $2, $3::text::jsonb, $4) \
         ON CONFLICT (guild_id, channel_id) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        &[&guild, &channel, &json, &db_time(now)],
    )?;
    Ok(())
}
