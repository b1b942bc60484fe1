//! The SQLite backend's per-server collections: a server's own insights, its settings (insight
//! source, curator role, review channel, hidden insights) and the suggestions its members make.
//! Their row types and SQL live here with the functions that [`SqliteBackend`]'s `Backend`
//! methods delegate to; the per-server limits are checked in the same `BEGIN IMMEDIATE`
//! transaction as the write, through the backend's helpers in `mod.rs`.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{count, db_id, db_time, from_db_id, parse_time, query_all, Fault, SqliteBackend};
use crate::insights::{Insight, Source};
use crate::store::{
    list_json, parse_list, Decision, InsightSource, Limit, NewSuggestion, ReviewMessage,
    SaveOutcome, ServerInsight, ServerSettings, StoreError, StoredVectors, Suggestion,
    SuggestionStatus,
};

pub(super) fn server_insights(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<Vec<ServerInsight>, StoreError> {
    let sql = format!(
        "SELECT {SERVER_INSIGHT_COLUMNS} FROM server_insight WHERE guild_id = ?1 \
         ORDER BY insight_id"
    );
    backend.read(|conn| {
        query_all(conn, &sql, [db_id(guild_id)], ServerInsightRow::read)?
            .into_iter()
            .map(ServerInsightRow::into_insight)
            .collect()
    })
}

pub(super) fn all_server_insights(
    backend: &SqliteBackend,
) -> Result<Vec<ServerInsight>, StoreError> {
    let sql = format!(
        "SELECT {SERVER_INSIGHT_COLUMNS} FROM server_insight ORDER BY guild_id, insight_id"
    );
    let rows = backend.read(|conn| query_all(conn, &sql, [], ServerInsightRow::read))?;
    Ok(backend.keep_valid(rows, ServerInsightRow::into_insight))
}

pub(super) fn server_insight_count(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<usize, StoreError> {
    backend.read(|conn| count_server_insights(conn, guild_id))
}

pub(super) fn save_server_insights(
    backend: &SqliteBackend,
    guild_id: u64,
    insights: &[ServerInsight],
    limit: usize,
) -> Result<SaveOutcome, StoreError> {
    backend.write(|tx| save_server_insights_in(tx, guild_id, insights, limit))
}

pub(super) fn delete_server_insight(
    backend: &SqliteBackend,
    guild_id: u64,
    insight_id: &str,
) -> Result<bool, StoreError> {
    backend.write(|tx| {
        let deleted = tx.execute(
            "DELETE FROM server_insight WHERE guild_id = ?1 AND insight_id = ?2",
            params![db_id(guild_id), insight_id],
        )?;
        Ok(deleted > 0)
    })
}

pub(super) fn server_settings(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<ServerSettings, StoreError> {
    backend.read(|conn| {
        let row = conn
            .prepare_cached(
                "SELECT insight_source, curator_role, review_channel, gaps \
                 FROM server_settings WHERE guild_id = ?1",
            )?
            .query_row([db_id(guild_id)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, bool>(3)?,
                ))
            })
            .optional()?;
        let hidden = query_all(
            conn,
            "SELECT insight_id FROM hidden_insight WHERE guild_id = ?1 ORDER BY insight_id",
            [db_id(guild_id)],
            |row| row.get::<_, String>(0),
        )?;
        let mut packs_off = query_all(
            conn,
            "SELECT pack_id FROM pack_off WHERE guild_id = ?1",
            [db_id(guild_id)],
            |row| row.get::<_, String>(0),
        )?;
        // Sorted here, by code point, whatever the database's collation (as both backends do).
        packs_off.sort();
        let mut settings = ServerSettings {
            hidden,
            packs_off,
            ..ServerSettings::default()
        };
        if let Some((source, curator_role, review_channel, gaps)) = row {
            settings.source = InsightSource::parse(&source).ok_or_else(|| Fault::BadRow {
                table: "server_settings",
                guild_id,
                detail: format!("unknown insight source {source:?}"),
            })?;
            settings.curator_role = curator_role.map(from_db_id);
            settings.review_channel = review_channel.map(from_db_id);
            settings.gaps = gaps;
        }
        Ok(settings)
    })
}

pub(super) fn set_insight_source(
    backend: &SqliteBackend,
    guild_id: u64,
    source: InsightSource,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.execute(
            "INSERT INTO server_settings (guild_id, insight_source) VALUES (?1, ?2) \
             ON CONFLICT (guild_id) DO UPDATE SET insight_source = excluded.insight_source",
            params![db_id(guild_id), source.as_str()],
        )?;
        Ok(())
    })
}

pub(super) fn set_curator_role(
    backend: &SqliteBackend,
    guild_id: u64,
    role_id: Option<u64>,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.execute(
            "INSERT INTO server_settings (guild_id, curator_role) VALUES (?1, ?2) \
             ON CONFLICT (guild_id) DO UPDATE SET curator_role = excluded.curator_role",
            params![db_id(guild_id), role_id.map(db_id)],
        )?;
        Ok(())
    })
}

pub(super) fn set_review_channel(
    backend: &SqliteBackend,
    guild_id: u64,
    channel_id: Option<u64>,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.execute(
            "INSERT INTO server_settings (guild_id, review_channel) VALUES (?1, ?2) \
             ON CONFLICT (guild_id) DO UPDATE SET review_channel = excluded.review_channel",
            params![db_id(guild_id), channel_id.map(db_id)],
        )?;
        Ok(())
    })
}

pub(super) fn set_hidden(
    backend: &SqliteBackend,
    guild_id: u64,
    insight_id: &str,
    hidden: bool,
) -> Result<bool, StoreError> {
    let sql = if hidden {
        "INSERT INTO hidden_insight (guild_id, insight_id) VALUES (?1, ?2) \
         ON CONFLICT (guild_id, insight_id) DO NOTHING"
    } else {
        "DELETE FROM hidden_insight WHERE guild_id = ?1 AND insight_id = ?2"
    };
    backend.write(|tx| Ok(tx.execute(sql, params![db_id(guild_id), insight_id])? > 0))
}

pub(super) fn set_pack_on(
    backend: &SqliteBackend,
    guild_id: u64,
    pack_id: &str,
    on: bool,
) -> Result<bool, StoreError> {
    // The packs turned off are the rows: turning one on deletes its row.
    let sql = if on {
        "DELETE FROM pack_off WHERE guild_id = ?1 AND pack_id = ?2"
    } else {
        "INSERT INTO pack_off (guild_id, pack_id) VALUES (?1, ?2) \
         ON CONFLICT (guild_id, pack_id) DO NOTHING"
    };
    backend.write(|tx| Ok(tx.execute(sql, params![db_id(guild_id), pack_id])? > 0))
}

pub(super) fn add_suggestion(
    backend: &SqliteBackend,
    suggestion: NewSuggestion,
    per_author_pending_limit: usize,
    per_server_pending_limit: usize,
) -> Result<Suggestion, StoreError> {
    let guild = db_id(suggestion.guild_id);
    // BEGIN IMMEDIATE: no other connection, in this process or another, writes between the
    // counts and the insert.
    backend.write(|tx| {
        let author_pending = count(
            tx,
            "SELECT count(*) FROM suggestion \
             WHERE guild_id = ?1 AND author_id = ?2 AND status = 'pending'",
            params![guild, db_id(suggestion.author_id)],
        )?;
        if author_pending >= per_author_pending_limit {
            return Err(Fault::Limit {
                what: Limit::AuthorPendingSuggestions,
                limit: per_author_pending_limit,
            });
        }
        let server_pending = count(
            tx,
            "SELECT count(*) FROM suggestion WHERE guild_id = ?1 AND status = 'pending'",
            params![guild],
        )?;
        if server_pending >= per_server_pending_limit {
            return Err(Fault::Limit {
                what: Limit::ServerPendingSuggestions,
                limit: per_server_pending_limit,
            });
        }
        let sql = format!(
            "INSERT INTO suggestion (guild_id, author_id, title, text, why, status, \
                 created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) \
             RETURNING {SUGGESTION_COLUMNS}"
        );
        tx.prepare_cached(&sql)?
            .query_row(
                params![
                    guild,
                    db_id(suggestion.author_id),
                    suggestion.title,
                    suggestion.text,
                    suggestion.why,
                    db_time(suggestion.now),
                ],
                SuggestionRow::read,
            )?
            .into_suggestion()
    })
}

pub(super) fn suggestion(
    backend: &SqliteBackend,
    guild_id: u64,
    id: u64,
) -> Result<Option<Suggestion>, StoreError> {
    let sql =
        format!("SELECT {SUGGESTION_COLUMNS} FROM suggestion WHERE guild_id = ?1 AND id = ?2");
    backend.read(|conn| {
        conn.prepare_cached(&sql)?
            .query_row(params![db_id(guild_id), db_id(id)], SuggestionRow::read)
            .optional()?
            .map(SuggestionRow::into_suggestion)
            .transpose()
    })
}

pub(super) fn oldest_pending_suggestion(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<Option<Suggestion>, StoreError> {
    let sql = format!(
        "SELECT {SUGGESTION_COLUMNS} FROM suggestion \
         WHERE guild_id = ?1 AND status = 'pending' ORDER BY created_at, id LIMIT 1"
    );
    backend.read(|conn| {
        conn.prepare_cached(&sql)?
            .query_row([db_id(guild_id)], SuggestionRow::read)
            .optional()?
            .map(SuggestionRow::into_suggestion)
            .transpose()
    })
}

pub(super) fn pending_suggestion_count(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<usize, StoreError> {
    backend.read(|conn| {
        count(
            conn,
            "SELECT count(*) FROM suggestion WHERE guild_id = ?1 AND status = 'pending'",
            [db_id(guild_id)],
        )
    })
}

pub(super) fn decide_suggestion(
    backend: &SqliteBackend,
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
    let sql = format!(
        "UPDATE suggestion SET status = ?3, reason = ?4, insight_id = ?5, decided_at = ?6, \
             decided_by = ?7 \
         WHERE guild_id = ?1 AND id = ?2 AND status = 'pending' \
         RETURNING {SUGGESTION_COLUMNS}"
    );
    backend.write(|tx| {
        let decided = tx
            .prepare_cached(&sql)?
            .query_row(
                params![
                    db_id(guild_id),
                    db_id(id),
                    status.as_str(),
                    reason,
                    insight_id,
                    db_time(now),
                    db_id(decided_by),
                ],
                SuggestionRow::read,
            )
            .optional()?;
        let Some(decided) = decided else {
            return Ok(None); // none such, or already decided
        };
        if let Decision::Approve { insight, limit } = &decision {
            // Refused here, the transaction rolls back: the suggestion stays pending.
            save_server_insights_in(tx, guild_id, std::slice::from_ref(insight), *limit)?;
        }
        decided.into_suggestion().map(Some)
    })
}

pub(super) fn set_suggestion_review_message(
    backend: &SqliteBackend,
    guild_id: u64,
    id: u64,
    channel_id: u64,
    message_id: u64,
) -> Result<bool, StoreError> {
    backend.write(|tx| {
        let changed = tx.execute(
            "UPDATE suggestion SET review_channel_id = ?3, review_message_id = ?4 \
             WHERE guild_id = ?1 AND id = ?2",
            params![
                db_id(guild_id),
                db_id(id),
                db_id(channel_id),
                db_id(message_id)
            ],
        )?;
        Ok(changed > 0)
    })
}

fn count_server_insights(conn: &Connection, guild_id: u64) -> Result<usize, Fault> {
    count(
        conn,
        "SELECT count(*) FROM server_insight WHERE guild_id = ?1",
        [db_id(guild_id)],
    )
}

/// Inserts or replaces `insights` as `guild_id`'s, inside the caller's write transaction; fails
/// (and the caller's transaction rolls back) when the server would own more than `limit`.
fn save_server_insights_in(
    tx: &Connection,
    guild_id: u64,
    insights: &[ServerInsight],
    limit: usize,
) -> Result<SaveOutcome, Fault> {
    let before = count_server_insights(tx, guild_id)?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO server_insight (guild_id, insight_id, title, text, topics, asks, \
             source_title, source_publisher, source_url, created_by, created_at, updated_at, \
             vectors, vectors_model) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (guild_id, insight_id) DO UPDATE SET \
             title = excluded.title, text = excluded.text, topics = excluded.topics, \
             asks = excluded.asks, source_title = excluded.source_title, \
             source_publisher = excluded.source_publisher, source_url = excluded.source_url, \
             updated_at = excluded.updated_at, vectors = excluded.vectors, \
             vectors_model = excluded.vectors_model",
    )?;
    for saved in insights {
        let insight = &saved.insight;
        upsert.execute(params![
            db_id(guild_id),
            insight.id,
            insight.title,
            insight.text,
            list_json(&insight.topics),
            list_json(&insight.asks),
            insight.source.title,
            insight.source.publisher,
            insight.source.url,
            db_id(saved.created_by),
            db_time(saved.created_at),
            db_time(saved.updated_at),
            saved.vectors.as_ref().map(|v| v.bytes.as_slice()),
            saved.vectors.as_ref().map(|v| db_id(v.fingerprint)),
        ])?;
    }
    let after = count_server_insights(tx, guild_id)?;
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

const SERVER_INSIGHT_COLUMNS: &str = "guild_id, insight_id, title, text, topics, asks, \
     source_title, source_publisher, source_url, created_by, created_at, updated_at, vectors, \
     vectors_model";

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
    created_at: String,
    updated_at: String,
    vectors: Option<Vec<u8>>,
    vectors_model: Option<i64>,
}

impl ServerInsightRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ServerInsightRow {
            guild_id: row.get(0)?,
            insight_id: row.get(1)?,
            title: row.get(2)?,
            text: row.get(3)?,
            topics: row.get(4)?,
            asks: row.get(5)?,
            source_title: row.get(6)?,
            source_publisher: row.get(7)?,
            source_url: row.get(8)?,
            created_by: row.get(9)?,
            created_at: row.get(10)?,
            updated_at: row.get(11)?,
            vectors: row.get(12)?,
            vectors_model: row.get(13)?,
        })
    }

    fn into_insight(self) -> Result<ServerInsight, Fault> {
        const TABLE: &str = "server_insight";
        let guild_id = from_db_id(self.guild_id);
        let id = self.insight_id;
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
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
        let time = |column: &str, text: &str| {
            parse_time(TABLE, guild_id, column, text).map_err(|fault| match fault {
                Fault::BadRow { detail, .. } => bad(detail),
                other => other,
            })
        };
        let created_at = time("created_at", &self.created_at)?;
        let updated_at = time("updated_at", &self.updated_at)?;
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
            created_at,
            updated_at,
            vectors,
        })
    }
}

const SUGGESTION_COLUMNS: &str = "id, guild_id, author_id, title, text, why, status, reason, \
     created_at, decided_at, decided_by, insight_id, review_channel_id, review_message_id";

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
    created_at: String,
    decided_at: Option<String>,
    decided_by: Option<i64>,
    insight_id: Option<String>,
    review_channel_id: Option<i64>,
    review_message_id: Option<i64>,
}

impl SuggestionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(SuggestionRow {
            id: row.get(0)?,
            guild_id: row.get(1)?,
            author_id: row.get(2)?,
            title: row.get(3)?,
            text: row.get(4)?,
            why: row.get(5)?,
            status: row.get(6)?,
            reason: row.get(7)?,
            created_at: row.get(8)?,
            decided_at: row.get(9)?,
            decided_by: row.get(10)?,
            insight_id: row.get(11)?,
            review_channel_id: row.get(12)?,
            review_message_id: row.get(13)?,
        })
    }

    fn into_suggestion(self) -> Result<Suggestion, Fault> {
        const TABLE: &str = "suggestion";
        let guild_id = from_db_id(self.guild_id);
        let id = from_db_id(self.id);
        let bad = |detail: String| Fault::BadRow {
            table: TABLE,
            guild_id,
            detail: format!("suggestion {id}: {detail}"),
        };
        let status = SuggestionStatus::parse(&self.status)
            .ok_or_else(|| bad(format!("unknown status {:?}", self.status)))?;
        let time = |column: &str, text: &str| {
            parse_time(TABLE, guild_id, column, text).map_err(|fault| match fault {
                Fault::BadRow { detail, .. } => bad(detail),
                other => other,
            })
        };
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
            created_at: time("created_at", &self.created_at)?,
            decided_at: self
                .decided_at
                .map(|t| time("decided_at", &t))
                .transpose()?,
            decided_by: self.decided_by.map(from_db_id),
            insight_id: self.insight_id,
            review_message,
        })
    }
}
