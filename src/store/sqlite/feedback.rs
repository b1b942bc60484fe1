//! The SQLite backend's record of use: answers given, votes on them, the shown counts and usage
//! totals, the unanswered-question gaps, the daily prune and the store's secret. Everything that
//! deletes what people wrote lives here, and goes through `write_erasing` (see `mod.rs`) so the
//! deleted text is in no file; these are the functions [`SqliteBackend`]'s `Backend` methods
//! delegate to.

use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{
    count, db_day, db_id, db_time, from_db_id, parse_day, query_all, Fault, SqliteBackend,
};
use crate::stats::{DayAnswers, InsightUse};
use crate::store::{
    answer_totals, count_from_db, questions_over_cap, retention_cutoffs, vote_change, Gap,
    NewAnswer, Pruned, StoreError, StoredVectors, UsageScope, UsageStats, Vote, VoteOutcome,
    VOTE_WINDOW_DAYS,
};

pub(super) fn record_shown(
    backend: &SqliteBackend,
    guild_id: u64,
    insight_id: &str,
    day: NaiveDate,
) -> Result<(), StoreError> {
    backend.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO insight_shown (guild_id, insight_id, count) VALUES (?1, ?2, 1) \
             ON CONFLICT (guild_id, insight_id) \
             DO UPDATE SET count = insight_shown.count + 1",
        )?
        .execute(params![db_id(guild_id), insight_id])?;
        tx.prepare_cached(
            "INSERT INTO usage_day (guild_id, day, insight_id, shown) VALUES (?1, ?2, ?3, 1) \
             ON CONFLICT (guild_id, day, insight_id) \
             DO UPDATE SET shown = usage_day.shown + 1",
        )?
        .execute(params![db_id(guild_id), db_day(day), insight_id])?;
        Ok(())
    })
}

pub(super) fn shown_counts(
    backend: &SqliteBackend,
    guild_id: u64,
) -> Result<HashMap<String, u64>, StoreError> {
    let rows = backend.read(|conn| {
        query_all(
            conn,
            "SELECT insight_id, count FROM insight_shown WHERE guild_id = ?1",
            [db_id(guild_id)],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, n)| (id, count_from_db(n)))
        .collect())
}

pub(super) fn record_answers(
    backend: &SqliteBackend,
    answers: &[NewAnswer],
) -> Result<Vec<u64>, StoreError> {
    if answers.is_empty() {
        return Ok(Vec::new());
    }
    let totals = answer_totals(answers);
    backend.write_erasing(|tx| {
        // Under BEGIN IMMEDIATE no set_gaps can commit between this read and the inserts.
        let mut gaps_on: HashMap<u64, bool> = HashMap::new();
        let mut insert = tx.prepare_cached(
            "INSERT INTO answer (id, guild_id, day, insight_id, no_close_match, question, \
                 question_vector, question_model, weak) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for answer in answers {
            let question = match (answer.guild_id, &answer.question) {
                (Some(guild), Some(question)) => {
                    let on = match gaps_on.get(&guild) {
                        Some(&on) => on,
                        None => {
                            let on = gaps_enabled(tx, guild)?;
                            gaps_on.insert(guild, on);
                            on
                        }
                    };
                    on.then_some(question.as_str())
                }
                _ => None,
            };
            let vector = answer
                .question_vector
                .as_ref()
                .filter(|_| question.is_some());
            insert.execute(params![
                db_id(answer.id),
                db_id(answer.guild_id.unwrap_or(0)),
                db_day(answer.day),
                answer.insight_id,
                answer.no_close_match,
                question,
                vector.map(|v| &v.bytes),
                vector.map(|v| db_id(v.fingerprint)),
                answer.weak,
            ])?;
        }
        let mut trimmed = 0;
        for (&guild, _) in gaps_on.iter().filter(|(_, &on)| on) {
            trimmed += trim_kept_questions(tx, guild)?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO usage_day (guild_id, day, insight_id, answers, no_close_match) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                 answers = usage_day.answers + excluded.answers, \
                 no_close_match = usage_day.no_close_match + excluded.no_close_match",
        )?;
        for ((guild, day, insight), (count, no_match)) in &totals {
            upsert.execute(params![
                db_id(*guild),
                db_day(*day),
                insight,
                count,
                no_match
            ])?;
        }
        Ok((answers.iter().map(|a| a.id).collect(), trimmed > 0))
    })
}

pub(super) fn record_vote(
    backend: &SqliteBackend,
    answer_id: u64,
    voter: &[u8; 32],
    vote: Vote,
    today: NaiveDate,
) -> Result<VoteOutcome, StoreError> {
    let open_since = db_day(today - chrono::Duration::days(VOTE_WINDOW_DAYS));
    backend.write(|tx| {
        let answer = tx
            .prepare_cached(
                "SELECT guild_id, day, coalesce(insight_id, ''), day < ?2 \
                 FROM answer WHERE id = ?1",
            )?
            .query_row(params![db_id(answer_id), open_since], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                ))
            })
            .optional()?;
        let Some((guild, day, insight, closed)) = answer else {
            return Ok(VoteOutcome::UnknownAnswer);
        };
        if closed {
            return Ok(VoteOutcome::Closed);
        }
        let old = tx
            .prepare_cached("SELECT vote FROM answer_vote WHERE answer_id = ?1 AND voter = ?2")?
            .query_row(params![db_id(answer_id), &voter[..]], |row| {
                row.get::<_, String>(0)
            })
            .optional()?;
        let old = old
            .map(|text| {
                Vote::parse(&text).ok_or_else(|| Fault::BadRow {
                    table: "answer_vote",
                    guild_id: from_db_id(guild),
                    detail: format!("unknown vote {text:?}"),
                })
            })
            .transpose()?;
        let (outcome, helpful, not_helpful) = vote_change(old, vote);
        if outcome == VoteOutcome::Unchanged {
            return Ok(outcome);
        }
        tx.prepare_cached(
            "INSERT INTO answer_vote (answer_id, voter, vote) VALUES (?1, ?2, ?3) \
             ON CONFLICT (answer_id, voter) DO UPDATE SET vote = excluded.vote",
        )?
        .execute(params![db_id(answer_id), &voter[..], vote.as_str()])?;
        tx.prepare_cached(
            "INSERT INTO usage_day (guild_id, day, insight_id, helpful, not_helpful) \
             VALUES (?1, ?2, ?3, max(?4, 0), max(?5, 0)) \
             ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                 helpful = usage_day.helpful + ?4, \
                 not_helpful = usage_day.not_helpful + ?5",
        )?
        .execute(params![guild, day, insight, helpful, not_helpful])?;
        if not_helpful != 0 {
            tx.prepare_cached("UPDATE answer SET not_helpful = not_helpful + ?2 WHERE id = ?1")?
                .execute(params![db_id(answer_id), not_helpful])?;
        }
        Ok(outcome)
    })
}

pub(super) fn usage_stats(
    backend: &SqliteBackend,
    scope: UsageScope,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<UsageStats, StoreError> {
    let guild = match scope {
        UsageScope::Server(guild) => Some(db_id(guild)),
        UsageScope::DirectMessages => Some(0),
        UsageScope::Everywhere => None,
    };
    // The same filter for both queries; `?3` is the server (0: direct messages).
    let filter = if guild.is_some() {
        "guild_id = ?3 AND day BETWEEN ?1 AND ?2"
    } else {
        "day BETWEEN ?1 AND ?2"
    };
    let days_sql = format!(
        "SELECT day, sum(answers), sum(no_close_match) FROM usage_day WHERE {filter} \
         GROUP BY day HAVING sum(answers) > 0 ORDER BY day"
    );
    let insights_sql = format!(
        "SELECT insight_id, sum(shown), sum(helpful), sum(not_helpful) FROM usage_day \
         WHERE {filter} AND insight_id <> '' GROUP BY insight_id \
         HAVING sum(shown) > 0 OR sum(helpful) > 0 OR sum(not_helpful) > 0 \
         ORDER BY insight_id"
    );
    let (since, until) = (db_day(since), db_day(until));
    backend.read(|conn| {
        // One snapshot for both.
        let snapshot = conn.unchecked_transaction()?;
        let mut days = Vec::new();
        {
            let mut stmt = snapshot.prepare_cached(&days_sql)?;
            let mut rows = match guild {
                Some(g) => stmt.query(params![since, until, g])?,
                None => stmt.query(params![since, until])?,
            };
            while let Some(row) = rows.next()? {
                let text: String = row.get(0)?;
                days.push(DayAnswers {
                    day: parse_day("usage_day", &text)?,
                    answers: count_from_db(row.get(1)?),
                    no_close_match: count_from_db(row.get(2)?),
                });
            }
        }
        let mut insights = Vec::new();
        {
            let mut stmt = snapshot.prepare_cached(&insights_sql)?;
            let mut rows = match guild {
                Some(g) => stmt.query(params![since, until, g])?,
                None => stmt.query(params![since, until])?,
            };
            while let Some(row) = rows.next()? {
                insights.push(InsightUse {
                    id: row.get(0)?,
                    shown: count_from_db(row.get(1)?),
                    helpful: count_from_db(row.get(2)?),
                    not_helpful: count_from_db(row.get(3)?),
                });
            }
        }
        snapshot.commit()?;
        Ok(UsageStats { days, insights })
    })
}

pub(super) fn set_gaps(
    backend: &SqliteBackend,
    guild_id: u64,
    on: bool,
) -> Result<u64, StoreError> {
    backend.write_erasing(|tx| {
        tx.execute(
            "INSERT INTO server_settings (guild_id, gaps) VALUES (?1, ?2) \
             ON CONFLICT (guild_id) DO UPDATE SET gaps = excluded.gaps",
            params![db_id(guild_id), on],
        )?;
        if on {
            return Ok((0, false));
        }
        let cleared = tx.execute(
            concat!(
                "UPDATE answer SET ",
                clear_question!(),
                " WHERE guild_id = ?1 AND question IS NOT NULL"
            ),
            [db_id(guild_id)],
        )?;
        Ok((cleared as u64, cleared > 0))
    })
}

pub(super) fn gaps(
    backend: &SqliteBackend,
    guild_id: u64,
    since: NaiveDate,
    limit: usize,
) -> Result<Vec<Gap>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = backend.read(|conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id, question, day, no_close_match, not_helpful, question_vector, \
                 question_model, weak FROM ( \
                 SELECT a.id, a.question, a.day, a.no_close_match, \
                     a.not_helpful > 0 AS not_helpful, a.question_vector, a.question_model, \
                     a.weak \
                 FROM answer a \
                 WHERE a.guild_id = ?1 AND a.question IS NOT NULL AND a.day >= ?2) \
             WHERE no_close_match OR weak OR not_helpful \
             ORDER BY day DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![db_id(guild_id), db_day(since), limit], |row| {
            Ok((
                (
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, bool>(4)?,
                ),
                row.get::<_, Option<Vec<u8>>>(5)?,
                row.get::<_, Option<i64>>(6)?,
                row.get::<_, bool>(7)?,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    rows.into_iter()
        .map(
            |((id, question, day, no_close_match, not_helpful), bytes, model, weak)| {
                Ok(Gap {
                    answer_id: from_db_id(id),
                    question,
                    day: parse_day("answer", &day).map_err(|fault| backend.error(fault))?,
                    no_close_match,
                    weak,
                    not_helpful,
                    // The schema keeps both or neither.
                    vector: bytes.zip(model).map(|(bytes, model)| StoredVectors {
                        fingerprint: from_db_id(model),
                        bytes,
                    }),
                })
            },
        )
        .collect()
}

pub(super) fn set_gap_vectors(
    backend: &SqliteBackend,
    guild_id: u64,
    vectors: &[(u64, StoredVectors)],
) -> Result<u64, StoreError> {
    if vectors.is_empty() {
        return Ok(0);
    }
    backend.write(|tx| {
        let mut update = tx.prepare_cached(
            "UPDATE answer SET question_vector = ?3, question_model = ?4 \
             WHERE id = ?1 AND guild_id = ?2 AND question IS NOT NULL",
        )?;
        let mut stored = 0;
        for (id, vector) in vectors {
            stored += update.execute(params![
                db_id(*id),
                db_id(guild_id),
                vector.bytes,
                db_id(vector.fingerprint)
            ])?;
        }
        Ok(stored as u64)
    })
}

pub(super) fn prune(backend: &SqliteBackend, today: NaiveDate) -> Result<Pruned, StoreError> {
    let cutoffs = retention_cutoffs(today);
    backend.write_erasing(|tx| {
        // Votes go with their answers: foreign keys are on (see open_once).
        let answers = tx.execute(
            "DELETE FROM answer WHERE day < ?1",
            [db_day(cutoffs.answers)],
        )?;
        let old_gaps = tx.execute(
            concat!(
                "UPDATE answer SET ",
                clear_question!(),
                " WHERE question IS NOT NULL AND day < ?1"
            ),
            [db_day(cutoffs.gaps)],
        )?;
        let not_gaps = tx.execute(
            concat!(
                "UPDATE answer SET ",
                clear_question!(),
                " WHERE question IS NOT NULL AND day < ?1 AND NOT no_close_match \
                 AND NOT weak AND not_helpful = 0"
            ),
            [db_day(today)],
        )?;
        let voter_keys = tx.execute(
            "DELETE FROM answer_vote WHERE answer_id IN (SELECT id FROM answer WHERE day < ?1)",
            [db_day(today - chrono::Duration::days(VOTE_WINDOW_DAYS))],
        )?;
        let suggestions = tx.execute(
            "DELETE FROM suggestion WHERE decided_at IS NOT NULL AND decided_at < ?1",
            [db_time(cutoffs.decided)],
        )?;
        let pruned = Pruned {
            answers: answers as u64,
            questions: (old_gaps + not_gaps) as u64,
            voter_keys: voter_keys as u64,
            suggestions: suggestions as u64,
        };
        let erased = pruned != Pruned::default();
        Ok((pruned, erased))
    })
}

pub(super) fn secret(backend: &SqliteBackend) -> Result<[u8; 32], StoreError> {
    if let Some(secret) = backend.read(select_secret)? {
        return Ok(secret);
    }
    let mut fresh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
    backend.write(|tx| {
        // Another process may have made one since the read: its secret stays.
        tx.execute(
            "INSERT INTO secret (id, value) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
            [&fresh[..]],
        )?;
        select_secret(tx)?.ok_or(Fault::Sql(rusqlite::Error::QueryReturnedNoRows))
    })
}

/// Clears a server's oldest kept questions beyond [`super::KEPT_QUESTIONS_PER_SERVER`] (see
/// [`questions_over_cap`]); returns how many. Oldest by day, then by id (random: in no set order
/// within a day).
fn trim_kept_questions(tx: &Transaction<'_>, guild_id: u64) -> Result<usize, Fault> {
    let kept = count(
        tx,
        "SELECT count(*) FROM answer WHERE guild_id = ?1 AND question IS NOT NULL",
        [db_id(guild_id)],
    )?;
    let over = questions_over_cap(kept);
    if over == 0 {
        return Ok(0);
    }
    Ok(tx.execute(
        concat!(
            "UPDATE answer SET ",
            clear_question!(),
            " WHERE id IN (SELECT id FROM answer WHERE guild_id = ?1 AND question IS NOT NULL \
               ORDER BY day, id LIMIT ?2)"
        ),
        params![db_id(guild_id), over as i64],
    )?)
}

/// Whether a server keeps gap questions (off when it never changed its settings).
fn gaps_enabled(conn: &Connection, guild_id: u64) -> Result<bool, Fault> {
    Ok(conn
        .prepare_cached("SELECT gaps FROM server_settings WHERE guild_id = ?1")?
        .query_row([db_id(guild_id)], |row| row.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

fn select_secret(conn: &Connection) -> Result<Option<[u8; 32]>, Fault> {
    let value = conn
        .prepare_cached("SELECT value FROM secret WHERE id = 1")?
        .query_row([], |row| row.get::<_, Vec<u8>>(0))
        .optional()?;
    value
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Fault::BadRow {
                table: "secret",
                guild_id: 0,
                detail: format!("the secret is {} bytes, not 32", bytes.len()),
            })
        })
        .transpose()
}
