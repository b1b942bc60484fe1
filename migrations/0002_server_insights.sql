-- insight-bot state store, schema version 2: what each server owns beside its weekly post —
-- its own insights, its settings, its members' suggestions, and how often each insight was shown.
--
-- Applied by src/store/sqlite.rs in one transaction with PRAGMA user_version = 2, like 0001.
-- Version 1 tables and rows are left as they are. Do not edit a released migration; add 0003_*.sql.
-- Conventions as in 0001: ids are INTEGER (u64 reinterpreted as i64), instants RFC 3339 UTC text
-- with milliseconds, STRICT tables. Lists are JSON arrays of strings in TEXT.

-- Insights a server wrote for itself (curators' /insight add, approved suggestions). The
-- length checks are Discord's limits that src/insights/mod.rs names (MAX_ID_CHARS,
-- MAX_TITLE_CHARS, MAX_TEXT_CHARS): an id travels inside button custom ids, title and text fill
-- an embed.
CREATE TABLE server_insight (
    guild_id         INTEGER NOT NULL,
    insight_id       TEXT    NOT NULL CHECK (length(insight_id) BETWEEN 1 AND 64),
    title            TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 256),
    text             TEXT    NOT NULL CHECK (length(text) BETWEEN 1 AND 4096),
    topics           TEXT    NOT NULL CHECK (json_valid(topics) AND json_type(topics) = 'array'),
    asks             TEXT    NOT NULL CHECK (json_valid(asks) AND json_type(asks) = 'array'),
    source_title     TEXT    NOT NULL,
    source_publisher TEXT    NOT NULL,
    source_url       TEXT,
    created_by       INTEGER NOT NULL,  -- the member who wrote it (or whose suggestion it was)
    created_at       TEXT    NOT NULL,  -- kept when the insight is replaced
    updated_at       TEXT    NOT NULL,
    -- The insight's sentence vectors as the embedding module wrote them (opaque here), and the
    -- fingerprint of the model that computed them: vectors of another model are recomputed.
    vectors          BLOB,
    vectors_model    INTEGER,
    PRIMARY KEY (guild_id, insight_id),
    CHECK ((vectors IS NULL) = (vectors_model IS NULL))
) STRICT;

-- A server's choices about insights. A missing row is the defaults: every insight (the shipped
-- collection and the server's own), no curator role, no review channel.
CREATE TABLE server_settings (
    guild_id       INTEGER PRIMARY KEY,
    insight_source TEXT    NOT NULL DEFAULT 'all' CHECK (insight_source IN ('all', 'ours')),
    curator_role   INTEGER,  -- a role id: members with it may manage the server's insights
    review_channel INTEGER   -- a channel id: where suggestions are posted for review
) STRICT;

-- Shipped insights a server chose not to see.
CREATE TABLE hidden_insight (
    guild_id   INTEGER NOT NULL,
    insight_id TEXT    NOT NULL,
    PRIMARY KEY (guild_id, insight_id)
) STRICT, WITHOUT ROWID;

-- Insights members suggested, and what the curators decided. AUTOINCREMENT: an id is never
-- handed out twice, so a review button naming one cannot meet another suggestion.
CREATE TABLE suggestion (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id          INTEGER NOT NULL,
    author_id         INTEGER NOT NULL,
    title             TEXT    NOT NULL,
    text              TEXT    NOT NULL,
    why               TEXT,
    status            TEXT    NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending', 'approved', 'rejected')),
    reason            TEXT,              -- why it was rejected, when the curator said
    created_at        TEXT    NOT NULL,
    decided_at        TEXT,
    decided_by        INTEGER,
    insight_id        TEXT,              -- the server insight it became
    review_channel_id INTEGER,           -- the review message posted for it, if any
    review_message_id INTEGER,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((decided_at IS NULL) = (decided_by IS NULL)),
    CHECK ((status = 'approved') = (insight_id IS NOT NULL)),
    CHECK (reason IS NULL OR status = 'rejected'),
    CHECK ((review_channel_id IS NULL) = (review_message_id IS NULL))
) STRICT;

-- The pending queue: the oldest first for the reviewer, and the counts the limits check.
CREATE INDEX suggestion_pending ON suggestion (guild_id, created_at, id)
    WHERE status = 'pending';
CREATE INDEX suggestion_pending_by_author ON suggestion (guild_id, author_id)
    WHERE status = 'pending';

-- How many times each insight was shown in each server, counted by the bot as it shows them.
CREATE TABLE insight_shown (
    guild_id   INTEGER NOT NULL,
    insight_id TEXT    NOT NULL,
    count      INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (guild_id, insight_id)
) STRICT, WITHOUT ROWID;
