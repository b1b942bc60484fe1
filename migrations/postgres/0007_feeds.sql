-- insight-bot state store on PostgreSQL, schema version 7: feeds (issue 17), the same change as
-- the SQLite schema (migrations/0007_feeds.sql). A server's one weekly schedule becomes the
-- *feed* of its channel, and a server may have up to ten feeds, one per channel, each with its
-- own cadence, topic, thread, ping, pause, rotation and post log.
--
-- Applied by src/store/postgres/mod.rs in the migration transaction under its advisory lock,
-- with version 7 recorded in insight_bot_schema in that same transaction: a crash half-way
-- leaves version 6 and the old tables, never half of each. Every existing schedule, rotation and
-- post is copied to the new tables under the feed of the server's channel, then the old tables
-- are dropped. Do not edit a released migration; add 0008_*.sql instead.

-- One row per feed: (server, channel).
CREATE TABLE feed (
    guild_id       bigint      NOT NULL,
    channel_id     bigint      NOT NULL,
    cadence        text        NOT NULL
                   CHECK (cadence IN ('weekly', 'every-2-weeks', 'weekdays', 'daily')),
    weekday        text,                  -- 'mon' .. 'sun' for weekly and every-2-weeks, else NULL
    parity         integer     NOT NULL DEFAULT 0 CHECK (parity IN (0, 1)),  -- every-2-weeks
    time           text        NOT NULL,  -- local wall-clock 'HH:MM'
    zone           text        NOT NULL,  -- IANA zone name, 'Europe/London'
    topic          text,                  -- a topic or pack id; NULL: the whole collection
    thread         boolean     NOT NULL DEFAULT false,
    ping_role_id   bigint,                -- the one role each post mentions
    forum          boolean     NOT NULL DEFAULT false,
    enabled        boolean     NOT NULL,
    paused         boolean     NOT NULL DEFAULT false,
    paused_until   date,                  -- local: posts again from this date
    active_since   timestamptz NOT NULL,  -- slots before this instant are never posted
    failure_reason text,                  -- set when the channel answered 403/404: paused
    failed_at      timestamptz,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (guild_id, channel_id),
    CHECK ((failure_reason IS NULL) = (failed_at IS NULL)),
    CHECK (paused_until IS NULL OR paused),
    CHECK ((weekday IS NULL) = (cadence IN ('weekdays', 'daily')))
);

INSERT INTO feed (guild_id, channel_id, cadence, weekday, time, zone, enabled, active_since,
                  failure_reason, failed_at, updated_at)
SELECT guild_id, channel_id, 'weekly', weekday, time, zone, enabled, active_since,
       failure_reason, failed_at, updated_at
FROM weekly;

-- Where each feed is in its no-repeat order (rotation::RotationState as JSON). A missing row is
-- the initial state.
CREATE TABLE feed_rotation (
    guild_id   bigint      NOT NULL,
    channel_id bigint      NOT NULL,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

INSERT INTO feed_rotation (guild_id, channel_id, state, updated_at)
SELECT r.guild_id, w.channel_id, r.state, r.updated_at
FROM rotation r JOIN weekly w ON w.guild_id = r.guild_id;

-- One row per post of a feed, claimed before it is sent; or a skipped period (source 'skip', no
-- insight, never sent). The primary key makes a second post for the same feed and period
-- impossible, whichever code path and whichever process tries it. `period` is '2026-W48' for
-- weekly and every-2-weeks feeds, '2026-12-07' for daily and weekdays ones; `period_start` (its
-- first local date) is what the poster's range query reads.
CREATE TABLE feed_post (
    guild_id        bigint      NOT NULL,
    feed_channel_id bigint      NOT NULL,  -- the feed
    period          text        NOT NULL,
    period_start    date        NOT NULL,
    channel_id      bigint      NOT NULL,  -- where it was sent (the feed's channel since version 7)
    insight_id      text        NOT NULL,
    nonce           text        NOT NULL CHECK (length(nonce) BETWEEN 1 AND 25),  -- Discord's limit
    source          text        NOT NULL CHECK (source IN ('schedule', 'post_now', 'skip')),
    claimed_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- sends started
    updated_at      timestamptz NOT NULL,
    retry_at        timestamptz,
    last_error      text,
    message_id      bigint,                -- NULL until Discord confirmed the message
    posted_at       timestamptz,
    thread_wanted   boolean     NOT NULL DEFAULT false,
    thread_id       bigint,                -- the thread under the post, once created
    thread_error    text,                  -- why the last try to create it failed
    PRIMARY KEY (guild_id, feed_channel_id, period),
    CHECK ((message_id IS NULL) = (posted_at IS NULL)),
    CHECK ((source = 'skip') = (insight_id = '')),
    CHECK (source <> 'skip' OR message_id IS NULL)
);

-- The period is written as the program writes it (schedule::WeekKey's Display, '2026-W08');
-- its start is the Monday of that ISO week: to_date with 'IYYY-IW' and no day gives the Monday.
INSERT INTO feed_post (guild_id, feed_channel_id, period, period_start, channel_id, insight_id,
                       nonce, source, claimed_at, attempts, updated_at, retry_at, last_error,
                       message_id, posted_at)
SELECT p.guild_id, w.channel_id,
       p.iso_year::text || '-W' || lpad(p.iso_week::text, 2, '0'),
       to_date(p.iso_year::text || '-' || p.iso_week::text, 'IYYY-IW'),
       p.channel_id, p.insight_id, p.nonce, p.source, p.claimed_at, p.attempts, p.updated_at,
       p.retry_at, p.last_error, p.message_id, p.posted_at
FROM post_log p JOIN weekly w ON w.guild_id = p.guild_id;

-- The poster's "what is claimed since" and start-up recovery's "what has no message yet".
CREATE INDEX feed_post_start ON feed_post (period_start);
CREATE INDEX feed_post_unconfirmed ON feed_post (period_start, guild_id, feed_channel_id)
    WHERE message_id IS NULL AND source <> 'skip';
CREATE INDEX feed_post_awaiting_thread ON feed_post (posted_at)
    WHERE thread_wanted AND thread_id IS NULL AND message_id IS NOT NULL;

DROP TABLE post_log;
DROP TABLE rotation;
DROP TABLE weekly;
