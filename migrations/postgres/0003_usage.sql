-- insight-bot state store on PostgreSQL, schema version 3: the same tables as the SQLite
-- schema (migrations/0003_usage.sql), in PostgreSQL's types. The answers the bot gave, the votes
-- on them, daily usage totals, the questions behind gaps (only in servers that turned gaps on),
-- and the secret that keys voters.
--
-- Applied by src/store/postgres.rs in the migration transaction under its advisory lock, with
-- version 3 recorded in insight_bot_schema in that same transaction. Version 1 and 2 tables and
-- rows are left as they are (server_settings gains a column). Do not edit a released migration;
-- add 0004_*.sql instead.
--
-- What is kept how long (src/store/mod.rs, Backend::prune, run daily): answer rows and their
-- votes ANSWER_RETENTION_DAYS (365); a question GAP_RETENTION_DAYS (30) if it is a gap (no close
-- match, or a "not helpful" vote), else until the day after it was asked. usage_day is never
-- pruned: reports over older periods still add up.

-- One row per answer given (/advice, a DM). No author and no message: only where (guild_id 0 is
-- a direct message; Discord ids are never 0), which day, what was answered. The id is the bot's:
-- random (below 2^53), sent in the vote buttons before the row is written, so that recording
-- stays off the answer's path.
CREATE TABLE answer (
    id             bigint  PRIMARY KEY CHECK (id > 0),
    guild_id       bigint  NOT NULL,
    day            date    NOT NULL,
    insight_id     text    COLLATE "C",  -- NULL when nothing matched closely enough
    no_close_match boolean NOT NULL,
    question       text,                 -- only in a server with gaps on, never in a DM
    not_helpful    bigint  NOT NULL DEFAULT 0 CHECK (not_helpful >= 0),  -- current "not helpful" votes: a gap, even after the voter keys are gone
    CHECK (question IS NULL OR guild_id <> 0)
);

CREATE INDEX answer_by_server_day ON answer (guild_id, day);
-- prune's "older than a year", across every server.
CREATE INDEX answer_by_day ON answer (day);
-- The few answers that still carry a question: gaps, set_gaps(off), prune's clearing.
CREATE INDEX answer_with_question ON answer (guild_id, day) WHERE question IS NOT NULL;

-- One vote per voter per answer. The voter is an opaque 32-byte key the bot derives from the
-- person and the answer (keyed with the secret below), so no two answers link to one person.
CREATE TABLE answer_vote (
    answer_id bigint NOT NULL REFERENCES answer (id) ON DELETE CASCADE,
    voter     bytea  NOT NULL CHECK (length(voter) = 32),
    vote      text   NOT NULL CHECK (vote IN ('helpful', 'not_helpful')),
    PRIMARY KEY (answer_id, voter)
);

-- Daily totals per (server, day, insight), written with every answer, showing and vote; what
-- usage reports read. insight_id '' holds the answers with no insight. Never pruned.
CREATE TABLE usage_day (
    guild_id       bigint NOT NULL,
    day            date   NOT NULL,
    insight_id     text   COLLATE "C" NOT NULL,
    answers        bigint NOT NULL DEFAULT 0 CHECK (answers >= 0),
    no_close_match bigint NOT NULL DEFAULT 0 CHECK (no_close_match >= 0),
    shown          bigint NOT NULL DEFAULT 0 CHECK (shown >= 0),
    helpful        bigint NOT NULL DEFAULT 0 CHECK (helpful >= 0),
    not_helpful    bigint NOT NULL DEFAULT 0 CHECK (not_helpful >= 0),
    PRIMARY KEY (guild_id, day, insight_id)
);

-- Whether a server keeps the questions behind gaps (/insights gaps on). Off by default.
ALTER TABLE server_settings ADD COLUMN gaps boolean NOT NULL DEFAULT false;

-- One random 32-byte secret, made by the first Backend::secret call (from the operating
-- system's generator): the key of voter keys.
CREATE TABLE secret (
    id    integer PRIMARY KEY CHECK (id = 1),
    value bytea   NOT NULL CHECK (length(value) = 32)
);
