-- insight-bot state store on PostgreSQL, schema version 5: the same change as the SQLite schema
-- (migrations/0005_server_packs.sql). The built-in packs a server turned off (`/insights packs`,
-- issue 16).
--
-- Applied by src/store/postgres.rs in the migration transaction under its advisory lock, with
-- version 5 recorded in insight_bot_schema in that same transaction. Version 1 to 4 tables and
-- rows are left as they are: every server starts with every pack on. Do not edit a released
-- migration; add 0006_*.sql instead.
--
-- The packs turned OFF are stored, not the ones on: a server that never chose stores nothing,
-- and a pack shipped later reaches every server at once. A row naming a pack that is no longer
-- served changes nothing and is kept.
CREATE TABLE pack_off (
    guild_id bigint NOT NULL,
    pack_id  text   NOT NULL CHECK (length(pack_id) BETWEEN 1 AND 64),
    PRIMARY KEY (guild_id, pack_id)
);
