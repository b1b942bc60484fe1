-- insight-bot state store on PostgreSQL, schema version 2: the same tables as the SQLite
-- schema (migrations/0002_server_insights.sql), in PostgreSQL's types. What each server owns
-- beside its weekly post: its own insights, its settings, its members' suggestions, and how often
-- each insight was shown.
--
-- Applied by src/store/postgres.rs in the migration transaction under its advisory lock, with
-- version 2 recorded in insight_bot_schema in that same transaction. Version 1 tables and rows
-- are left as they are. Do not edit a released migration; add 0003_*.sql instead.
--
-- Conventions as in 0001 (ids bigint, instants timestamptz to the millisecond). Lists are jsonb
-- arrays of strings. Insight ids are text COLLATE "C": ordered by code point, as SQLite and Rust
-- order them, whatever the database's collation.

-- Insights a server wrote for itself (curators' /insight add, approved suggestions). The
-- length checks are Discord's limits that src/insights/mod.rs names (MAX_ID_CHARS,
-- MAX_TITLE_CHARS, MAX_TEXT_CHARS): an id travels inside button custom ids, title and text fill
-- an embed.
CREATE TABLE server_insight (
    guild_id         bigint      NOT NULL,
    insight_id       text        COLLATE "C" NOT NULL CHECK (length(insight_id) BETWEEN 1 AND 64),
    title            text        NOT NULL CHECK (length(title) BETWEEN 1 AND 256),
    text             text        NOT NULL CHECK (length(text) BETWEEN 1 AND 4096),
    topics           jsonb       NOT NULL CHECK (jsonb_typeof(topics) = 'array'),
    asks             jsonb       NOT NULL CHECK (jsonb_typeof(asks) = 'array'),
    source_title     text        NOT NULL,
    source_publisher text        NOT NULL,
    source_url       text,
    created_by       bigint      NOT NULL,  -- the member who wrote it (or whose suggestion it was)
    created_at       timestamptz NOT NULL,  -- kept when the insight is replaced
    updated_at       timestamptz NOT NULL,
    -- The insight's sentence vectors as the embedding module wrote them (opaque here), and the
    -- fingerprint of the model that computed them: vectors of another model are recomputed.
    vectors          bytea,
    vectors_model    bigint,
    PRIMARY KEY (guild_id, insight_id),
    CHECK ((vectors IS NULL) = (vectors_model IS NULL))
);

-- A server's choices about insights. A missing row is the defaults: every insight (the shipped
-- collection and the server's own), no curator role, no review channel.
CREATE TABLE server_settings (
    guild_id       bigint PRIMARY KEY,
    insight_source text   NOT NULL DEFAULT 'all' CHECK (insight_source IN ('all', 'ours')),
    curator_role   bigint,  -- a role id: members with it may manage the server's insights
    review_channel bigint   -- a channel id: where suggestions are posted for review
);

-- Shipped insights a server chose not to see.
CREATE TABLE hidden_insight (
    guild_id   bigint NOT NULL,
    insight_id text   COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, insight_id)
);

-- Insights members suggested, and what the curators decided. An identity column: an id is never
-- handed out twice, so a review button naming one cannot meet another suggestion.
CREATE TABLE suggestion (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id          bigint      NOT NULL,
    author_id         bigint      NOT NULL,
    title             text        NOT NULL,
    text              text        NOT NULL,
    why               text,
    status            text        NOT NULL DEFAULT 'pending'
                                  CHECK (status IN ('pending', 'approved', 'rejected')),
    reason            text,                  -- why it was rejected, when the curator said
    created_at        timestamptz NOT NULL,
    decided_at        timestamptz,
    decided_by        bigint,
    insight_id        text        COLLATE "C",  -- the server insight it became
    review_channel_id bigint,                -- the review message posted for it, if any
    review_message_id bigint,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((decided_at IS NULL) = (decided_by IS NULL)),
    CHECK ((status = 'approved') = (insight_id IS NOT NULL)),
    CHECK (reason IS NULL OR status = 'rejected'),
    CHECK ((review_channel_id IS NULL) = (review_message_id IS NULL))
);

-- The pending queue: the oldest first for the reviewer, and the counts the limits check.
CREATE INDEX suggestion_pending ON suggestion (guild_id, created_at, id)
    WHERE status = 'pending';
CREATE INDEX suggestion_pending_by_author ON suggestion (guild_id, author_id)
    WHERE status = 'pending';

-- How many times each insight was shown in each server, counted by the bot as it shows them.
CREATE TABLE insight_shown (
    guild_id   bigint NOT NULL,
    insight_id text   COLLATE "C" NOT NULL,
    count      bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (guild_id, insight_id)
);
