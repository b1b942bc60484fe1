-- insight-bot state store, schema version 4: a kept question's sentence vector, stored with the
-- question when it is kept, so listing gaps embeds nothing; and an index for the daily deletion
-- of decided suggestions.
--
-- Applied by src/store/sqlite.rs in one transaction with PRAGMA user_version = 4, like 0001.
-- Version 1 to 3 tables and rows are left as they are: questions kept before this version have
-- no vector (the gap listing embeds them once and writes the vector back). Do not edit a
-- released migration; add 0005_*.sql.
--
-- The vector is the one the answer already computed to search (no second embedding), in the
-- 8-bit form of a server's own insight vectors (src/insights/search/semantic.rs,
-- InsightVectors::encode; opaque here), with the fingerprint of the model that computed it: a
-- vector of another model is not used. It is deleted with its question, always (the daily prune,
-- turning gaps off, the per-server cap).
ALTER TABLE answer ADD COLUMN question_vector BLOB;
ALTER TABLE answer ADD COLUMN question_model  INTEGER
    CHECK ((question_model IS NULL) = (question_vector IS NULL));

-- Backend::prune deletes approved and rejected suggestions some time after the decision.
CREATE INDEX suggestion_decided ON suggestion (decided_at) WHERE decided_at IS NOT NULL;
