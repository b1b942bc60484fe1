//! The PostgreSQL backend's per-server collections: a server's own insights, its settings
//! (insight source, curator role, review channel, hidden insights) and the suggestions its members
//! make. Their row types and SQL live here with the functions that [`PostgresBackend`]'s
//! `Backend` methods delegate to; the per-server limits hold across processes through the
//! server's advisory lock (`lock_server` in `mod.rs`), taken in the same transaction as the write.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{count, db_id, db_time, from_db_id, lock_server, Fault, PostgresBackend, Session};
use crate::insights::{Insight, Source};
use crate::store::{
    list_json, parse_list, Decision, InsightSource, Limit, NewSuggestion, ReviewMessage,
    SaveOutcome, ServerInsight, ServerSettings, StoreError, StoredVectors, Suggestion,
    SuggestionStatus,
};

pub(super) fn server_insights(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<Vec<ServerInsight>, StoreError> {
    backend.read(|s| {
        s.query(SERVER_INSIGHTS, &[&db_id(guild_id)])?
            .iter()
            .map(|row| ServerInsightRow::read(row)?.into_insight())
            .collect()
    })
}

pub(super) fn all_server_insights(
    backend: &PostgresBackend,
) -> Result<Vec<ServerInsight>, StoreError> {
    let rows = backend.read(|s| {
        let rows = s.query(ALL_SERVER_INSIGHTS, &[])?;
        Ok(rows
            .iter()
            .map(ServerInsightRow::read)
            .collect::<Result<Vec<_>, _>>()?)
    })?;
    Ok(backend.keep_valid(rows, ServerInsightRow::into_insight))
}

pub(super) fn server_insight_count(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<usize, StoreError> {
    backend.read(|s| count_server_insights(s, guild_id))
}

pub(super) fn save_server_insights(
    backend: &PostgresBackend,
    guild_id: u64,
    insights: &[ServerInsight],
    limit: usize,
) -> Result<SaveOutcome, StoreError> {
    backend.write(|s| {
        lock_server(s, guild_id)?;
        save_server_insights_in(s, guild_id, insights, limit)
    })
}

pub(super) fn delete_server_insight(
    backend: &PostgresBackend,
    guild_id: u64,
    insight_id: &str,
) -> Result<bool, StoreError> {
    let deleted = backend.write(|s| {
        s.execute(
            "DELETE FROM server_insight WHERE guild_id = $1 AND insight_id = $2",
            &[&db_id(guild_id), &insight_id],
        )
    })?;
    Ok(deleted > 0)
}

pub(super) fn server_settings(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<ServerSettings, StoreError> {
    backend.read(|s| {
        let row = s.query_opt(
            "SELECT insight_source, curator_role, review_channel, gaps FROM server_settings \
             WHERE guild_id = $1",
            &[&db_id(guild_id)],
        )?;
        let hidden = s
            .query(
                "SELECT insight_id FROM hidden_insight WHERE guild_id = $1 \
                 ORDER BY insight_id",
                &[&db_id(guild_id)],
            )?
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let mut packs_off = s
            .query(
                "SELECT pack_id FROM pack_off WHERE guild_id = $1",
                &[&db_id(guild_id)],
            )?
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, by code point, whatever the database's collation (as both backends do).
        packs_off.sort();
        let mut settings = ServerSettings {
            hidden,
            packs_off,
            ..ServerSettings::default()
        };
        if let Some(row) = row {
            let source: String = row.try_get(0)?;
            settings.source = InsightSource::parse(&source).ok_or_else(|| Fault::BadRow {
                table: "server_settings",
                guild_id,
                detail: format!("unknown insight source {source:?}"),
            })?;
            settings.curator_role = row.try_get::<_, Option<i64>>(1)?.map(from_db_id);
            settings.review_channel = row.try_get::<_, Option<i64>>(2)?.map(from_db_id);
            settings.gaps = row.try_get(3)?;
        }
        Ok(settings)
    })
}

pub(super) fn set_insight_source(
    backend: &PostgresBackend,
    guild_id: u64,
    source: InsightSource,
) -> Result<(), StoreError> {
    backend.write(|s| {
        s.execute(
            "INSERT INTO server_settings (guild_id, insight_source) VALUES ($1, $2) \
             ON CONFLICT (guild_id) DO UPDATE SET insight_source = excluded.insight_source",
            &[&db_id(guild_id), &source.as_str()],
        )
    })?;
    Ok(())
}

pub(super) fn set_curator_role(
    backend: &PostgresBackend,
    guild_id: u64,
    role_id: Option<u64>,
) -> Result<(), StoreError> {
    backend.write(|s| {
        s.execute(
            "INSERT INTO server_settings (guild_id, curator_role) VALUES ($1, $2) \
             ON CONFLICT (guild_id) DO UPDATE SET curator_role = excluded.curator_role",
            &[&db_id(guild_id), &role_id.map(db_id)],
        )
    })?;
    Ok(())
}

pub(super) fn set_review_channel(
    backend: &PostgresBackend,
    guild_id: u64,
    channel_id: Option<u64>,
) -> Result<(), StoreError> {
    backend.write(|s| {
        s.execute(
            "INSERT INTO server_settings (guild_id, review_channel) VALUES ($1, $2) \
             ON CONFLICT (guild_id) DO UPDATE SET review_channel = excluded.review_channel",
            &[&db_id(guild_id), &channel_id.map(db_id)],
        )
    })?;
    Ok(())
}

pub(super) fn set_hidden(
    backend: &PostgresBackend,
    guild_id: u64,
    insight_id: &str,
    hidden: bool,
) -> Result<bool, StoreError> {
    let sql = if hidden {
        "INSERT INTO hidden_insight (guild_id, insight_id) VALUES ($1, $2) \
         ON CONFLICT (guild_id, insight_id) DO NOTHING"
    } else {
        "DELETE FROM hidden_insight WHERE guild_id = $1 AND insight_id = $2"
    };
    let changed = backend.write(|s| s.execute(sql, &[&db_id(guild_id), &insight_id]))?;
    Ok(changed > 0)
}

pub(super) fn set_pack_on(
    backend: &PostgresBackend,
    guild_id: u64,
    pack_id: &str,
    on: bool,
) -> Result<bool, StoreError> {
    // The packs turned off are the rows: turning one on deletes its row.
    let sql = if on {
        "DELETE FROM pack_off WHERE guild_id = $1 AND pack_id = $2"
    } else {
        "INSERT INTO pack_off (guild_id, pack_id) VALUES ($1, $2) \
         ON CONFLICT (guild_id, pack_id) DO NOTHING"
    };
    let changed = backend.write(|s| s.execute(sql, &[&db_id(guild_id), &pack_id]))?;
    Ok(changed > 0)
}

pub(super) fn add_suggestion(
    backend: &PostgresBackend,
    suggestion: NewSuggestion,
    per_author_pending_limit: usize,
    per_server_pending_limit: usize,
) -> Result<Suggestion, StoreError> {
    let guild = db_id(suggestion.guild_id);
    let author = db_id(suggestion.author_id);
    let now = db_time(suggestion.now);
    backend.write(|s| {
        // One writer per server at a time, in every process: the counts below stay true
        // until the insert commits.
        lock_server(s, suggestion.guild_id)?;
        let author_pending = count(
            s,
            "SELECT count(*) FROM suggestion \
             WHERE guild_id = $1 AND author_id = $2 AND status = 'pending'",
            &[&guild, &author],
        )?;
        if author_pending >= per_author_pending_limit {
            return Err(Fault::Limit {
                what: Limit::AuthorPendingSuggestions,
                limit: per_author_pending_limit,
            });
        }
        let server_pending = count(s, PENDING_SUGGESTION_COUNT, &[&guild])?;
        if server_pending >= per_server_pending_limit {
            return Err(Fault::Limit {
                what: Limit::ServerPendingSuggestions,
                limit: per_server_pending_limit,
            });
        }
        let row = s.query_one(
            INSERT_SUGGESTION,
            &[
                &guild,
                &author,
                &suggestion.title,
                &suggestion.text,
                &suggestion.why,
                &now,
            ],
        )?;
        SuggestionRow::read(&row)?.into_suggestion()
    })
}

pub(super) fn suggestion(
    backend: &PostgresBackend,
    guild_id: u64,
    id: u64,
) -> Result<Option<Suggestion>, StoreError> {
    backend.read(|s| {
        s.query_opt(SELECT_SUGGESTION, &[&db_id(guild_id), &db_id(id)])?
            .map(|row| SuggestionRow::read(&row)?.into_suggestion())
            .transpose()
    })
}

pub(super) fn oldest_pending_suggestion(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<Option<Suggestion>, StoreError> {
    backend.read(|s| {
        s.query_opt(OLDEST_PENDING_SUGGESTION, &[&db_id(guild_id)])?
            .map(|row| SuggestionRow::read(&row)?.into_suggestion())
            .transpose()
    })
}

pub(super) fn pending_suggestion_count(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<usize, StoreError> {
    backend.read(|s| count(s, PENDING_SUGGESTION_COUNT, &[&db_id(guild_id)]))
}

pub(super) fn decide_suggestion(
    backend: &PostgresBackend,
    guild_id: u64,
    id: u64,
    decision: Decision,
    decided_by: u64,
    now: DateTime<Utc>,
) -> Result<Option<Suggestion>, StoreError> {
    let (status, reason, insight_id) = match &decision {
        Decision::Approve { insight, .. } => (
            SuggestionStatus::Approved,
            None,
            Some(insight.insight.id.as_str()),
        ),
        Decision::Reject { reason } => (SuggestionStatus::Rejected, reason.as_deref(), None),
    };
    backend.write(|s| {
        // The server's lock first, as every write that counts its rows takes it: the
        // approval's save checks the insight limit.
        lock_server(s, guild_id)?;
        let decided = s.query_opt(
            DECIDE_SUGGESTION,
            &[
                &db_id(guild_id),
                &db_id(id),
                &status.as_str(),
                &reason,
                &insight_id,
                &db_time(now),
                &db_id(decided_by),
            ],
        )?;
        let Some(decided) = decided else {
            return Ok(None); // none such, or already decided
        };
        let decided = SuggestionRow::read(&decided)?;
        if let Decision::Approve { insight, limit } = &decision {
            // Refused here, the transaction rolls back: the suggestion stays pending.
            save_server_insights_in(s, guild_id, std::slice::from_ref(insight), *limit)?;
        }
        decided.into_suggestion().map(Some)
    })
}

pub(super) fn set_suggestion_review_message(
    backend: &PostgresBackend,
    guild_id: u64,
    id: u64,
    channel_id: u64,
    message_id: u64,
) -> Result<bool, StoreError> {
    let changed = backend.write(|s| {
        s.execute(
            "UPDATE suggestion SET review_channel_id = $3, review_message_id = $4 \
             WHERE guild_id = $1 AND id = $2",
            &[
                &db_id(guild_id),
                &db_id(id),
                &db_id(channel_id),
                &db_id(message_id),
            ],
        )
    })?;
    Ok(changed > 0)
}

fn count_server_insights(s: &mut Session<'_>, guild_id: u64) -> Result<usize, Fault> {
    count(
        s,
        "SELECT count(*) FROM server_insight WHERE guild_id = $1",
        &[&db_id(guild_id)],
    )
}

/// Inserts or replaces `insights` as `guild_id`'s, inside the caller's transaction, which holds
/// the server's lock; fails (and the transaction rolls back) when the server would own more than
/// `limit`.
fn save_server_insights_in(
    s: &mut Session<'_>,
    guild_id: u64,
    insights: &[ServerInsight],
    limit: usize,
) -> Result<SaveOutcome, Fault> {
    let before = count_server_insights(s, guild_id)?;
    for saved in insights {
        let insight = &saved.insight;
        s.execute(
            UPSERT_SERVER_INSIGHT,
            &[
                &db_id(guild_id),
                &insight.id,
                &insight.title,
                &insight.text,
                &list_json(&insight.topics),
                &list_json(&insight.asks),
                &insight.source.title,
                &insight.source.publisher,
                &insight.source.url,
                &db_id(saved.created_by),
                &db_time(saved.created_at),
                &db_time(saved.updated_at),
                &saved.vectors.as_ref().map(|v| v.bytes.as_slice()),
                &saved.vectors.as_ref().map(|v| db_id(v.fingerprint)),
            ],
        )?;
    }
    let after = count_server_insights(s, guild_id)?;
    if after > limit {
        return Err(Fault::Limit {
            what: Limit::ServerInsights,
            limit,
        });
    }
    // Nothing is deleted here, so the growth is what was added; every other write replaced.
    let added = after.saturating_sub(before);
    Ok(SaveOutcome {
        added,
        replaced: insights.len().saturating_sub(added),
    })
}

macro_rules! server_insight_columns {
    () => {
        "guild_id, insight_id, title, text, topics::text, asks::text, source_title, \
         source_publisher, source_url, created_by, created_at, updated_at, vectors, vectors_model"
    };
}

macro_rules! suggestion_columns {
    () => {
        "id, guild_id, author_id, title, text, why, status, reason, created_at, decided_at, \
         decided_by, insight_id, review_channel_id, review_message_id"
    };
}

const SERVER_INSIGHTS: &str = concat!(
    "SELECT ",
    server_insight_columns!(),
    " FROM server_insight WHERE guild_id = $1 ORDER BY insight_id"
);

const ALL_SERVER_INSIGHTS: &str = concat!(
    "SELECT ",
    server_insight_columns!(),
    " FROM server_insight ORDER BY guild_id, insight_id"
);

const UPSERT_SERVER_INSIGHT: &str = "INSERT INTO server_insight (guild_id, insight_id, title, \
         text, topics, asks, source_title, source_publisher, source_url, created_by, created_at, \
         updated_at, vectors, vectors_model) \
     VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7, $8, $9, $10, $11, $12, $13, \
         $14) \
     ON CONFLICT (guild_id, insight_id) DO UPDATE SET \
         title = excluded.title, text = excluded.text, topics = excluded.topics, \
         asks = excluded.asks, source_title = excluded.source_title, \
         source_publisher = excluded.source_publisher, source_url = excluded.source_url, \
         updated_at = excluded.updated_at, vectors = excluded.vectors, \
         vectors_model = excluded.vectors_model";

const PENDING_SUGGESTION_COUNT: &str =
    "SELECT count(*) FROM suggestion WHERE guild_id = $1 AND status = 'pending'";

const INSERT_SUGGESTION: &str = concat!(
    "INSERT INTO suggestion (guild_id, author_id, title, text, why, status, created_at) \
     VALUES ($1, $2, $3, $4, $5, 'pending', $6) \
     RETURNING ",
    suggestion_columns!()
);

const SELECT_SUGGESTION: &str = concat!(
    "SELECT ",
    suggestion_columns!(),
    " FROM suggestion WHERE guild_id = $1 AND id = $2"
);

const OLDEST_PENDING_SUGGESTION: &str = concat!(
    "SELECT ",
    suggestion_columns!(),
    " FROM suggestion WHERE guild_id = $1 AND status = 'pending' \
      ORDER BY created_at, id LIMIT 1"
);

const DECIDE_SUGGESTION: &str = concat!(
    "UPDATE suggestion SET status = $3, reason = $4, insight_id = $5, decided_at = $6, \
         decided_by = $7 \
     WHERE guild_id = $1 AND id = $2 AND status = 'pending' \
     RETURNING ",
    suggestion_columns!()
);

/// A `server_insight` row as stored, before parsing.
struct ServerInsightRow {
    guild_id: i64,
    insight_id: String,
    title: String,
    text: String,
    topics: String,
    asks: String,
    source_title: String,
    source_publisher: String,
    source_url: Option<String>,
    created_by: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    vectors: Option<Vec<u8>>,
    vectors_model: Option<i64>,
}

impl ServerInsightRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(ServerInsightRow {
            guild_id: row.try_get(0)?,
            insight_id: row.try_get(1)?,
            title: row.try_get(2)?,
            text: row.try_get(3)?,
            topics: row.try_get(4)?,
            asks: row.try_get(5)?,
            source_title: row.try_get(6)?,
            source_publisher: row.try_get(7)?,
            source_url: row.try_get(8)?,
            created_by: row.try_get(9)?,
            created_at: row.try_get(10)?,
            updated_at: row.try_get(11)?,
            vectors: row.try_get(12)?,
            vectors_model: row.try_get(13)?,
        })
    }

    fn into_insight(self) -> Result<ServerInsight, Fault> {
        let guild_id = from_db_id(self.guild_id);
        let id = self.insight_id;
        let bad = |detail: String| Fault::BadRow {
            table: "server_insight",
            guild_id,
            detail: format!("insight {id:?}: {detail}"),
        };
        let topics = parse_list("topics", &self.topics).map_err(bad)?;
        let asks = parse_list("asks", &self.asks).map_err(bad)?;
        let vectors = match (self.vectors, self.vectors_model) {
            (None, None) => None,
            (Some(bytes), Some(model)) => Some(StoredVectors {
                fingerprint: from_db_id(model),
                bytes,
            }),
            _ => return Err(bad("vectors and vectors_model must be set together".into())),
        };
        Ok(ServerInsight {
            guild_id,
            insight: Insight {
                id,
                title: self.title,
                text: self.text,
                topics,
                asks,
                source: Source {
                    title: self.source_title,
                    publisher: self.source_publisher,
                    url: self.source_url,
                },
                pack: None,
            },
            created_by: from_db_id(self.created_by),
            created_at: self.created_at,
            updated_at: self.updated_at,
            vectors,
        })
    }
}

/// A `suggestion` row as stored, before parsing.
struct SuggestionRow {
    id: i64,
    guild_id: i64,
    author_id: i64,
    title: String,
    text: String,
    why: Option<String>,
    status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<i64>,
    insight_id: Option<String>,
    review_channel_id: Option<i64>,
    review_message_id: Option<i64>,
}

impl SuggestionRow {
    fn read(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok(SuggestionRow {
            id: row.try_get(0)?,
            guild_id: row.try_get(1)?,
            author_id: row.try_get(2)?,
            title: row.try_get(3)?,
            text: row.try_get(4)?,
            why: row.try_get(5)?,
            status: row.try_get(6)?,
            reason: row.try_get(7)?,
            created_at: row.try_get(8)?,
            decided_at: row.try_get(9)?,
            decided_by: row.try_get(10)?,
            insight_id: row.try_get(11)?,
            review_channel_id: row.try_get(12)?,
            review_message_id: row.try_get(13)?,
        })
    }

    fn into_suggestion(self) -> Result<Suggestion, Fault> {
        let guild_id = from_db_id(self.guild_id);
        let id = from_db_id(self.id);
        let bad = |detail: String| Fault::BadRow {
            table: "suggestion",
            guild_id,
            detail: format!("suggestion {id}: {detail}"),
        };
        let status = SuggestionStatus::parse(&self.status)
            .ok_or_else(|| bad(format!("unknown status {:?}", self.status)))?;
        let review_message = match (self.review_channel_id, self.review_message_id) {
            (None, None) => None,
            (Some(channel), Some(message)) => Some(ReviewMessage {
                channel_id: from_db_id(channel),
                message_id: from_db_id(message),
            }),
            _ => {
                return Err(bad(
                    "review_channel_id and review_message_id must be set together".into(),
                ))
            }
        };
        Ok(Suggestion {
            id,
            guild_id,
            author_id: from_db_id(self.author_id),
            title: self.title,
            text: self.text,
            why: self.why,
            status,
            reason: self.reason,
            created_at: self.created_at,
            decided_at: self.decided_at,
            decided_by: self.decided_by.map(from_db_id),
            insight_id: self.insight_id,
            review_message,
        })
    }
}
