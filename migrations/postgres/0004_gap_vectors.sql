-- insight-bot state store on PostgreSQL, schema version 4: the same change as the SQLite schema
-- (migrations/0004_gap_vectors.sql). A kept question's sentence vector, stored with the question
-- when it is kept, so listing gaps embeds nothing; and an index for the daily deletion of decided
-- suggestions.
--
-- Applied by src/store/postgres.rs in the migration transaction under its advisory lock, with
-- version 4 recorded in insight_bot_schema in that same transaction. Version 1 to 3 tables and
-- rows are left as they are: questions kept before this version have no vector (the gap listing
-- embeds them once and writes the vector back). Do not edit a released migration; add
-- 0005_*.sql instead.
--
-- The vector is the one the answer already computed to search, in the 8-bit form of a server's
-- own insight vectors (opaque here), with the fingerprint of the model that computed it. It is
-- deleted with its question, always.
ALTER TABLE answer
    ADD COLUMN question_vector bytea,
    ADD COLUMN question_model  bigint,
    ADD CHECK ((question_model IS NULL) = (question_vector IS NULL)),
    ADD CHECK (question_vector IS NULL OR question IS NOT NULL);

-- Backend::prune deletes approved and rejected suggestions some time after the decision.
CREATE INDEX suggestion_decided ON suggestion (decided_at) WHERE decided_at IS NOT NULL;
