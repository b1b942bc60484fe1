-- insight-bot state store on PostgreSQL, schema version 6: the same change as the SQLite schema
-- (migrations/0006_weak_answers.sql). Whether an answer was weak (the closest insight, shown as
-- possibly not fitting): its question is a gap like a "no close match" one.
--
-- Applied by src/store/postgres.rs in the migration transaction under its advisory lock, with
-- version 6 recorded in insight_bot_schema in that same transaction. Answers recorded before this
-- version count as not weak. Do not edit a released migration; add 0007_*.sql instead.
ALTER TABLE answer ADD COLUMN weak boolean NOT NULL DEFAULT false;
