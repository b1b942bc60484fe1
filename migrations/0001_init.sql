-- insight-bot state store, schema version 1.
--
-- Embedded in the binary by src/store.rs, which runs it inside one transaction and then sets
-- PRAGMA user_version = 1 in that same transaction: a crash half-way leaves version 0 and no
-- tables, never a half-built schema. Do not edit a released migration; add 0002_*.sql instead.
--
-- Conventions:
-- - Discord ids (snowflakes) are INTEGER. SQLite integers are signed 64-bit, so a u64 is stored
--   reinterpreted as i64; every real snowflake is below 2^63 (until the year 2084), so the file
--   shows the same digits Discord does.
-- - Instants are UTC RFC 3339 text with milliseconds ('2026-03-02T09:00:00.000Z'): fixed width,
--   so text order is time order, and readable as-is in the sqlite3 shell.
-- - STRICT tables: a value of the wrong type is refused instead of stored.

-- Marks the file as insight-bot's, so the store refuses to migrate another program's database.
PRAGMA application_id = 1765961588; -- 0x69426F74, 'iBot'

-- A server's insight-of-the-week settings: one row per server that ever ran /weekly set.
-- guild_id is the rowid, so the scheduler's "all active schedules" is one ordered table scan.
CREATE TABLE weekly (
    guild_id       INTEGER PRIMARY KEY,
    channel_id     INTEGER NOT NULL,
    weekday        TEXT    NOT NULL,  -- 'mon' .. 'sun'
    time           TEXT    NOT NULL,  -- local wall-clock 'HH:MM'
    zone           TEXT    NOT NULL,  -- IANA zone name, 'Europe/London'
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    active_since   TEXT    NOT NULL,  -- slots before this instant are never posted
    failure_reason TEXT,              -- set when the channel answered 403/404: paused
    failed_at      TEXT,
    updated_at     TEXT    NOT NULL,
    CHECK ((failure_reason IS NULL) = (failed_at IS NULL))
) STRICT;

-- Where each server is in its no-repeat order through the collection (rotation::RotationState
-- as JSON). A missing row is the initial state.
CREATE TABLE rotation (
    guild_id   INTEGER PRIMARY KEY,
    state      TEXT    NOT NULL CHECK (json_valid(state)),
    updated_at TEXT    NOT NULL
) STRICT;

-- One row per weekly post, written *before* the message is sent (a claim) and confirmed with
-- the message id after. The primary key is what makes a second post for the same server and week
-- impossible, whichever code path (schedule, /weekly post-now, start-up recovery) tries it.
CREATE TABLE post_log (
    guild_id        INTEGER NOT NULL,
    iso_year        INTEGER NOT NULL,  -- schedule::WeekKey, local ISO week of the slot
    iso_week        INTEGER NOT NULL CHECK (iso_week BETWEEN 1 AND 53),
    channel_id      INTEGER NOT NULL,
    insight_id      TEXT    NOT NULL,
    nonce           TEXT    NOT NULL CHECK (length(nonce) BETWEEN 1 AND 25),  -- Discord's limit
    source          TEXT    NOT NULL CHECK (source IN ('schedule', 'post_now')),
    claimed_at      TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- sends started
    updated_at      TEXT    NOT NULL,  -- last change (claim, attempt, confirmation); for operators
    retry_at        TEXT,
    last_error      TEXT,
    message_id      INTEGER,           -- NULL until Discord confirmed the message
    posted_at       TEXT,
    PRIMARY KEY (guild_id, iso_year, iso_week),
    CHECK ((message_id IS NULL) = (posted_at IS NULL))
) STRICT, WITHOUT ROWID;

-- Start-up recovery lists the claims that have no message yet, across all servers.
CREATE INDEX post_log_unconfirmed ON post_log (iso_year, iso_week, guild_id)
    WHERE message_id IS NULL;
