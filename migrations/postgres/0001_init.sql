-- insight-bot state store on PostgreSQL, schema version 1: the same tables as the SQLite
-- schema (migrations/0001_init.sql), in PostgreSQL's types.
--
-- Embedded in the binary by src/store/postgres.rs, which runs it inside one transaction holding
-- an advisory lock and records version 1 in insight_bot_schema in that same transaction: two
-- processes starting at once migrate once, and a crash half-way leaves no table behind. Do not
-- edit a released migration; add 0002_*.sql instead.
--
-- Conventions:
-- - Discord ids (snowflakes) are bigint, a u64 reinterpreted as i64 as in SQLite; every real
--   snowflake is below 2^63 (until the year 2084), so psql shows the same digits Discord does.
-- - Instants are timestamptz, written to the millisecond (as in SQLite) so that both backends
--   return the same values.
-- - Tables are created in the connection's current schema (the first of its search_path), so
--   one database can hold several bots' schemas: add ?options=-csearch_path%3Dname to the URL.

-- Marks the schema as insight-bot's and records which migrations ran. A schema with other tables
-- but not this one belongs to another program and is refused, never migrated.
CREATE TABLE insight_bot_schema (
    version    integer     PRIMARY KEY CHECK (version > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- A server's insight-of-the-week settings: one row per server that ever ran /weekly set.
CREATE TABLE weekly (
    guild_id       bigint      PRIMARY KEY,
    channel_id     bigint      NOT NULL,
    weekday        text        NOT NULL,  -- 'mon' .. 'sun'
    time           text        NOT NULL,  -- local wall-clock 'HH:MM'
    zone           text        NOT NULL,  -- IANA zone name, 'Europe/London'
    enabled        boolean     NOT NULL,
    active_since   timestamptz NOT NULL,  -- slots before this instant are never posted
    failure_reason text,                  -- set when the channel answered 403/404: paused
    failed_at      timestamptz,
    updated_at     timestamptz NOT NULL,
    CHECK ((failure_reason IS NULL) = (failed_at IS NULL))
);

-- Where each server is in its no-repeat order through the collection (rotation::RotationState
-- as JSON). A missing row is the initial state.
CREATE TABLE rotation (
    guild_id   bigint      PRIMARY KEY,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per weekly post, written *before* the message is sent (a claim) and confirmed with
-- the message id after. The primary key is what makes a second post for the same server and week
-- impossible, whichever code path (schedule, /weekly post-now, start-up recovery) and whichever
-- process tries it.
CREATE TABLE post_log (
    guild_id        bigint      NOT NULL,
    iso_year        integer     NOT NULL,  -- schedule::WeekKey, local ISO week of the slot
    iso_week        integer     NOT NULL CHECK (iso_week BETWEEN 1 AND 53),
    channel_id      bigint      NOT NULL,
    insight_id      text        NOT NULL,
    nonce           text        NOT NULL CHECK (length(nonce) BETWEEN 1 AND 25),  -- Discord's limit
    source          text        NOT NULL CHECK (source IN ('schedule', 'post_now')),
    claimed_at      timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),  -- sends started
    updated_at      timestamptz NOT NULL,  -- last change (claim, attempt, confirmation); for operators
    retry_at        timestamptz,
    last_error      text,
    message_id      bigint,                -- NULL until Discord confirmed the message
    posted_at       timestamptz,
    PRIMARY KEY (guild_id, iso_year, iso_week),
    CHECK ((message_id IS NULL) = (posted_at IS NULL))
);

-- Start-up recovery lists the claims that have no message yet, across all servers.
CREATE INDEX post_log_unconfirmed ON post_log (iso_year, iso_week, guild_id)
    WHERE message_id IS NULL;
