-- insight-bot state store, schema version 7: feeds (issue 17). A server's one weekly schedule
-- becomes the *feed* of its channel, and a server may have up to ten feeds, one per channel,
-- each with its own cadence, topic, thread, ping, pause, rotation and post log.
--
-- Applied by src/store/sqlite.rs in one transaction with PRAGMA user_version = 7, like 0001: a
-- crash half-way leaves version 6 and the old tables, never half of each. Every existing
-- schedule, rotation and post is copied to the new tables under the feed of the server's channel,
-- then the old tables are dropped. Do not edit a released migration; add 0008_*.sql.

-- One row per feed: (server, channel).
CREATE TABLE feed (
    guild_id       INTEGER NOT NULL,
    channel_id     INTEGER NOT NULL,
    cadence        TEXT    NOT NULL CHECK (cadence IN ('weekly', 'every-2-weeks', 'weekdays', 'daily')),
    weekday        TEXT,              -- 'mon' .. 'sun' for weekly and every-2-weeks, else NULL
    parity         INTEGER NOT NULL DEFAULT 0 CHECK (parity IN (0, 1)),  -- every-2-weeks: which weeks
    time           TEXT    NOT NULL,  -- local wall-clock 'HH:MM'
    zone           TEXT    NOT NULL,  -- IANA zone name, 'Europe/London'
    topic          TEXT,              -- a topic or pack id; NULL draws from the whole collection
    thread         INTEGER NOT NULL DEFAULT 0 CHECK (thread IN (0, 1)),
    ping_role_id   INTEGER,           -- the one role each post mentions
    forum          INTEGER NOT NULL DEFAULT 0 CHECK (forum IN (0, 1)),
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    paused         INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    paused_until   TEXT,              -- 'YYYY-MM-DD' local: posts again from this date
    active_since   TEXT    NOT NULL,  -- slots before this instant are never posted
    failure_reason TEXT,              -- set when the channel answered 403/404: paused
    failed_at      TEXT,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (guild_id, channel_id),
    CHECK ((failure_reason IS NULL) = (failed_at IS NULL)),
    CHECK (paused_until IS NULL OR paused = 1),
    CHECK ((weekday IS NULL) = (cadence IN ('weekdays', 'daily')))
) STRICT;

INSERT INTO feed (guild_id, channel_id, cadence, weekday, time, zone, enabled, active_since,
                  failure_reason, failed_at, updated_at)
SELECT guild_id, channel_id, 'weekly', weekday, time, zone, enabled, active_since,
       failure_reason, failed_at, updated_at
FROM weekly;

-- Where each feed is in its no-repeat order (rotation::RotationState as JSON).
CREATE TABLE feed_rotation (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (json_valid(state)),
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) STRICT;

-- Rotation and post rows join the server's weekly row for its channel. Every row of either has
-- one (a server claims only with a schedule set, and version 1..6 never deleted a schedule), so
-- the join drops nothing in practice; a hand-made orphan would have no feed to belong to.
INSERT INTO feed_rotation (guild_id, channel_id, state, updated_at)
SELECT r.guild_id, w.channel_id, r.state, r.updated_at
FROM rotation r JOIN weekly w ON w.guild_id = r.guild_id;

-- One row per post of a feed, claimed before it is sent; or a skipped period (source 'skip',
-- no insight, never sent). The primary key makes a second post for the same feed and period
-- impossible. `period` is '2026-W48' for weekly and every-2-weeks feeds, '2026-12-07' for daily
-- and weekdays ones; `period_start` (its first local date) is what the poster's range query
-- reads.
CREATE TABLE feed_post (
    guild_id        INTEGER NOT NULL,
    feed_channel_id INTEGER NOT NULL,  -- the feed
    period          TEXT    NOT NULL,
    period_start    TEXT    NOT NULL,  -- 'YYYY-MM-DD'
    channel_id      INTEGER NOT NULL,  -- where it was sent (the feed's channel since version 7)
    insight_id      TEXT    NOT NULL,
    nonce           TEXT    NOT NULL CHECK (length(nonce) BETWEEN 1 AND 25),  -- Discord's limit
    source          TEXT    NOT NULL CHECK (source IN ('schedule', 'post_now', 'skip')),
    claimed_at      TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- sends started
    updated_at      TEXT    NOT NULL,
    retry_at        TEXT,
    last_error      TEXT,
    message_id      INTEGER,           -- NULL until Discord confirmed the message
    posted_at       TEXT,
    thread_wanted   INTEGER NOT NULL DEFAULT 0 CHECK (thread_wanted IN (0, 1)),
    thread_id       INTEGER,           -- the thread under the post, once created
    thread_error    TEXT,              -- why the last try to create it failed
    PRIMARY KEY (guild_id, feed_channel_id, period),
    CHECK ((message_id IS NULL) = (posted_at IS NULL)),
    CHECK ((source = 'skip') = (insight_id = '')),
    CHECK (source <> 'skip' OR message_id IS NULL)
) STRICT, WITHOUT ROWID;

-- A week's period_start is the Monday of ISO week iso_week of iso_year: 4 January is always in
-- week 1, so its Monday plus (week - 1) weeks.
INSERT INTO feed_post (guild_id, feed_channel_id, period, period_start, channel_id, insight_id,
                       nonce, source, claimed_at, attempts, updated_at, retry_at, last_error,
                       message_id, posted_at)
SELECT p.guild_id, w.channel_id,
       printf('%04d-W%02d', p.iso_year, p.iso_week),
       date(printf('%04d-01-04', p.iso_year),
            '-' || ((CAST(strftime('%w', printf('%04d-01-04', p.iso_year)) AS INTEGER) + 6) % 7) || ' days',
            '+' || ((p.iso_week - 1) * 7) || ' days'),
       p.channel_id, p.insight_id, p.nonce, p.source, p.claimed_at, p.attempts, p.updated_at,
       p.retry_at, p.last_error, p.message_id, p.posted_at
FROM post_log p JOIN weekly w ON w.guild_id = p.guild_id;

-- The poster's "what is claimed since" and start-up recovery's "what has no message yet".
CREATE INDEX feed_post_start ON feed_post (period_start);
CREATE INDEX feed_post_unconfirmed ON feed_post (period_start, guild_id, feed_channel_id)
    WHERE message_id IS NULL AND source <> 'skip';
CREATE INDEX feed_post_awaiting_thread ON feed_post (posted_at)
    WHERE thread_wanted = 1 AND thread_id IS NULL AND message_id IS NOT NULL;

DROP TABLE post_log;
DROP TABLE rotation;
DROP TABLE weekly;
