-- insight-bot state store, schema version 6: whether an answer was weak (issue 15): the closest
-- insight, shown as possibly not fitting because the question is on a topic the collection has
-- no insight on. A weak answer's question is a gap like a "no close match" one: kept (where gaps
-- are on) and listed by /insights gaps.
--
-- Applied by src/store/sqlite.rs in one transaction with PRAGMA user_version = 6, like 0001.
-- Answers recorded before this version count as not weak. Do not edit a released migration;
-- add 0007_*.sql.
ALTER TABLE answer ADD COLUMN weak INTEGER NOT NULL DEFAULT 0 CHECK (weak IN (0, 1));
