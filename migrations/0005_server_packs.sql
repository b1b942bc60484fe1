-- insight-bot state store, schema version 5: the built-in packs a server turned off
-- (`/insights packs`, issue 16).
--
-- Applied by src/store/sqlite.rs in one transaction with PRAGMA user_version = 5, like 0001.
-- Version 1 to 4 tables and rows are left as they are: every server starts with every pack on.
-- Do not edit a released migration; add 0006_*.sql.
--
-- What is stored is the packs turned OFF, not the ones on: every pack is on by default, so a
-- server that never chose stores nothing, and a pack shipped in a later version reaches every
-- server at once, as the insights added to a pack do. A row naming a pack the binary no longer
-- has (or the operator no longer serves, INSIGHTS_PACKS) changes nothing and is kept, so the
-- choice holds again if the pack comes back. The length check is the id limit of
-- src/insights/mod.rs (MAX_ID_CHARS), which pack ids share.
CREATE TABLE pack_off (
    guild_id INTEGER NOT NULL,
    pack_id  TEXT    NOT NULL CHECK (length(pack_id) BETWEEN 1 AND 64),
    PRIMARY KEY (guild_id, pack_id)
) STRICT, WITHOUT ROWID;
