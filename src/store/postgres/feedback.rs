//! The PostgreSQL backend's record of use: answers given, votes on them, the shown counts and
//! usage totals, the unanswered-question gaps, the daily prune and the store's secret. These are
//! the functions [`PostgresBackend`]'s `Backend` methods delegate to, with the SQL they run; the
//! pool, sessions and transactions are the backend's (`mod.rs`).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::{count, db_id, from_db_id, Fault, PostgresBackend, Session, QUESTIONS_LOCK};
use crate::stats::{DayAnswers, InsightUse};
use crate::store::{
    answer_totals, count_from_db, questions_over_cap, retention_cutoffs, vote_change, Gap,
    NewAnswer, Pruned, StoreError, StoredVectors, UsageScope, UsageStats, Vote, VoteOutcome,
    VOTE_WINDOW_DAYS,
};

pub(super) fn record_shown(
    backend: &PostgresBackend,
    guild_id: u64,
    insight_id: &str,
    day: NaiveDate,
) -> Result<(), StoreError> {
    backend.write(|s| {
        s.execute(
            "INSERT INTO insight_shown (guild_id, insight_id, count) VALUES ($1, $2, 1) \
             ON CONFLICT (guild_id, insight_id) \
             DO UPDATE SET count = insight_shown.count + 1",
            &[&db_id(guild_id), &insight_id],
        )?;
        s.execute(
            "INSERT INTO usage_day (guild_id, day, insight_id, shown) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (guild_id, day, insight_id) \
             DO UPDATE SET shown = usage_day.shown + 1",
            &[&db_id(guild_id), &day, &insight_id],
        )
    })?;
    Ok(())
}

pub(super) fn shown_counts(
    backend: &PostgresBackend,
    guild_id: u64,
) -> Result<HashMap<String, u64>, StoreError> {
    backend.read(|s| {
        s.query(
            "SELECT insight_id, count FROM insight_shown WHERE guild_id = $1",
            &[&db_id(guild_id)],
        )?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<_, String>(0)?,
                count_from_db(row.try_get::<_, i64>(1)?),
            ))
        })
        .collect()
    })
}

pub(super) fn record_answers(
    backend: &PostgresBackend,
    answers: &[NewAnswer],
) -> Result<Vec<u64>, StoreError> {
    if answers.is_empty() {
        return Ok(Vec::new());
    }
    let totals = answer_totals(answers);
    let mut asking: Vec<u64> = answers
        .iter()
        .filter(|a| a.question.is_some())
        .filter_map(|a| a.guild_id)
        .collect();
    asking.sort_unstable();
    asking.dedup();
    let answer_ids: Vec<i64> = answers.iter().map(|a| db_id(a.id)).collect();
    let guilds: Vec<i64> = answers
        .iter()
        .map(|a| db_id(a.guild_id.unwrap_or(0)))
        .collect();
    let days: Vec<NaiveDate> = answers.iter().map(|a| a.day).collect();
    let insights: Vec<Option<&str>> = answers.iter().map(|a| a.insight_id.as_deref()).collect();
    let no_match: Vec<bool> = answers.iter().map(|a| a.no_close_match).collect();
    let weak: Vec<bool> = answers.iter().map(|a| a.weak).collect();
    let (mut t_guilds, mut t_days, mut t_insights, mut t_answers, mut t_no_match) =
        (vec![], vec![], vec![], vec![], vec![]);
    for ((guild, day, insight), (count, no_match)) in &totals {
        t_guilds.push(db_id(*guild));
        t_days.push(*day);
        t_insights.push(insight.as_str());
        t_answers.push(*count);
        t_no_match.push(*no_match);
    }
    backend.write(|s| {
        // FOR SHARE: a set_gaps(off) of these servers waits for this commit, and then
        // clears what it wrote too (or it went first, and its flag is read here as off).
        let mut keep: HashSet<u64> = HashSet::new();
        for &guild in &asking {
            let on = s
                .query_opt(
                    "SELECT gaps FROM server_settings WHERE guild_id = $1 FOR SHARE",
                    &[&db_id(guild)],
                )?
                .map(|row| row.try_get::<_, bool>(0))
                .transpose()?
                .unwrap_or(false);
            if on {
                keep.insert(guild);
            }
        }
        let questions: Vec<Option<&str>> = answers
            .iter()
            .map(|a| match a.guild_id {
                Some(guild) if keep.contains(&guild) => a.question.as_deref(),
                _ => None,
            })
            .collect();
        let kept_vectors: Vec<Option<&StoredVectors>> = answers
            .iter()
            .zip(&questions)
            .map(|(a, q)| a.question_vector.as_ref().filter(|_| q.is_some()))
            .collect();
        let vectors: Vec<Option<&[u8]>> = kept_vectors
            .iter()
            .map(|v| v.map(|v| v.bytes.as_slice()))
            .collect();
        let models: Vec<Option<i64>> = kept_vectors
            .iter()
            .map(|v| v.map(|v| db_id(v.fingerprint)))
            .collect();
        s.execute(
            "INSERT INTO answer (id, guild_id, day, insight_id, no_close_match, question, \
                 question_vector, question_model, weak) \
             SELECT a, g, d, i, n, q, v, m, w \
             FROM unnest($1::bigint[], $2::bigint[], $3::date[], $4::text[], $5::boolean[], \
                         $6::text[], $7::bytea[], $8::bigint[], $9::boolean[]) \
                 AS t (a, g, d, i, n, q, v, m, w)",
            &[
                &answer_ids,
                &guilds,
                &days,
                &insights,
                &no_match,
                &questions,
                &vectors,
                &models,
                &weak,
            ],
        )?;
        // The cap, before the daily totals: this transaction then holds no totals row while
        // it waits for the questions lock or for an answer row a vote holds (a vote locks
        // its answer, then totals), so the two cannot wait for each other.
        let mut kept_by: Vec<u64> = keep.iter().copied().collect();
        kept_by.sort_unstable();
        let mut locked = false;
        for guild in kept_by {
            let kept = count(
                s,
                "SELECT count(*) FROM answer WHERE guild_id = $1 AND question IS NOT NULL",
                &[&db_id(guild)],
            )?;
            let over = questions_over_cap(kept);
            if over == 0 {
                continue;
            }
            if !locked {
                // Clearing updates many answer rows, like prune and set_gaps(off).
                s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
                locked = true;
            }
            s.execute(
                concat!(
                    "UPDATE answer SET ",
                    clear_question!(),
                    " WHERE id IN (SELECT id FROM answer \
                       WHERE guild_id = $1 AND question IS NOT NULL \
                       ORDER BY day, id LIMIT $2)"
                ),
                &[&db_id(guild), &(over as i64)],
            )?;
        }
        // In key order (as sorted by answer_totals): concurrent batches lock the rows they
        // share in the same order, so they cannot deadlock.
        s.execute(
            "INSERT INTO usage_day (guild_id, day, insight_id, answers, no_close_match) \
             SELECT g, d, i, a, n \
             FROM unnest($1::bigint[], $2::date[], $3::text[], $4::bigint[], \
                         $5::bigint[]) WITH ORDINALITY AS t (g, d, i, a, n, o) \
             ORDER BY o \
             ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                 answers = usage_day.answers + excluded.answers, \
                 no_close_match = usage_day.no_close_match + excluded.no_close_match",
            &[&t_guilds, &t_days, &t_insights, &t_answers, &t_no_match],
        )?;
        Ok(())
    })?;
    Ok(answers.iter().map(|a| a.id).collect())
}

pub(super) fn record_vote(
    backend: &PostgresBackend,
    answer_id: u64,
    voter: &[u8; 32],
    vote: Vote,
    today: NaiveDate,
) -> Result<VoteOutcome, StoreError> {
    let voter = &voter[..];
    let open_since = open_since_for(today);
    backend.write(|s| {
        // FOR UPDATE: votes on one answer run one after the other, so each sees the one
        // before (the same voter clicking twice at once changes it once), and prune cannot
        // delete the answer under it.
        let Some(answer) = s.query_opt(
            "SELECT guild_id, day, coalesce(insight_id, '') FROM answer WHERE id = $1 \
             FOR UPDATE",
            &[&db_id(answer_id)],
        )?
        else {
            return Ok(VoteOutcome::UnknownAnswer);
        };
        let guild: i64 = answer.try_get(0)?;
        let day: NaiveDate = answer.try_get(1)?;
        let insight: String = answer.try_get(2)?;
        if day < open_since {
            return Ok(VoteOutcome::Closed);
        }
        let old = s
            .query_opt(
                "SELECT vote FROM answer_vote WHERE answer_id = $1 AND voter = $2",
                &[&db_id(answer_id), &voter],
            )?
            .map(|row| row.try_get::<_, String>(0))
            .transpose()?;
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
        s.execute(
            "INSERT INTO answer_vote (answer_id, voter, vote) VALUES ($1, $2, $3) \
             ON CONFLICT (answer_id, voter) DO UPDATE SET vote = excluded.vote",
            &[&db_id(answer_id), &voter, &vote.as_str()],
        )?;
        s.execute(
            "INSERT INTO usage_day (guild_id, day, insight_id, helpful, not_helpful) \
             VALUES ($1, $2, $3, GREATEST($4::bigint, 0), GREATEST($5::bigint, 0)) \
             ON CONFLICT (guild_id, day, insight_id) DO UPDATE SET \
                 helpful = usage_day.helpful + $4::bigint, \
                 not_helpful = usage_day.not_helpful + $5::bigint",
            &[&guild, &day, &insight, &helpful, &not_helpful],
        )?;
        if not_helpful != 0 {
            s.execute(
                "UPDATE answer SET not_helpful = not_helpful + $2::bigint WHERE id = $1",
                &[&db_id(answer_id), &not_helpful],
            )?;
        }
        Ok(outcome)
    })
}

pub(super) fn usage_stats(
    backend: &PostgresBackend,
    scope: UsageScope,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<UsageStats, StoreError> {
    let guild = match scope {
        UsageScope::Server(guild) => Some(db_id(guild)),
        UsageScope::DirectMessages => Some(0),
        UsageScope::Everywhere => None,
    };
    let (days, insights) = backend.write(|s| {
        // One snapshot for both (a read-only transaction; nothing is written).
        s.batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let (days, insights) = match &guild {
            Some(g) => (
                s.query(
                    "SELECT day, sum(answers)::bigint, sum(no_close_match)::bigint \
                     FROM usage_day WHERE guild_id = $3 AND day BETWEEN $1 AND $2 \
                     GROUP BY day HAVING sum(answers) > 0 ORDER BY day",
                    &[&since, &until, g],
                )?,
                s.query(
                    "SELECT insight_id, sum(shown)::bigint, sum(helpful)::bigint, \
                         sum(not_helpful)::bigint \
                     FROM usage_day \
                     WHERE guild_id = $3 AND day BETWEEN $1 AND $2 AND insight_id <> '' \
                     GROUP BY insight_id \
                     HAVING sum(shown) > 0 OR sum(helpful) > 0 OR sum(not_helpful) > 0 \
                     ORDER BY insight_id",
                    &[&since, &until, g],
                )?,
            ),
            None => (
                s.query(
                    "SELECT day, sum(answers)::bigint, sum(no_close_match)::bigint \
                     FROM usage_day WHERE day BETWEEN $1 AND $2 \
                     GROUP BY day HAVING sum(answers) > 0 ORDER BY day",
                    &[&since, &until],
                )?,
                s.query(
                    "SELECT insight_id, sum(shown)::bigint, sum(helpful)::bigint, \
                         sum(not_helpful)::bigint \
                     FROM usage_day WHERE day BETWEEN $1 AND $2 AND insight_id <> '' \
                     GROUP BY insight_id \
                     HAVING sum(shown) > 0 OR sum(helpful) > 0 OR sum(not_helpful) > 0 \
                     ORDER BY insight_id",
                    &[&since, &until],
                )?,
            ),
        };
        let days = days
            .iter()
            .map(|row| {
                Ok(DayAnswers {
                    day: row.try_get(0)?,
                    answers: count_from_db(row.try_get(1)?),
                    no_close_match: count_from_db(row.try_get(2)?),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        let insights = insights
            .iter()
            .map(|row| {
                Ok(InsightUse {
                    id: row.try_get(0)?,
                    shown: count_from_db(row.try_get(1)?),
                    helpful: count_from_db(row.try_get(2)?),
                    not_helpful: count_from_db(row.try_get(3)?),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        Ok((days, insights))
    })?;
    Ok(UsageStats { days, insights })
}

pub(super) fn set_gaps(
    backend: &PostgresBackend,
    guild_id: u64,
    on: bool,
) -> Result<u64, StoreError> {
    backend.write(|s| {
        s.execute(
            "INSERT INTO server_settings (guild_id, gaps) VALUES ($1, $2) \
             ON CONFLICT (guild_id) DO UPDATE SET gaps = excluded.gaps",
            &[&db_id(guild_id), &on],
        )?;
        if on {
            return Ok(0);
        }
        s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
        s.execute(
            concat!(
                "UPDATE answer SET ",
                clear_question!(),
                " WHERE guild_id = $1 AND question IS NOT NULL"
            ),
            &[&db_id(guild_id)],
        )
    })
}

pub(super) fn gaps(
    backend: &PostgresBackend,
    guild_id: u64,
    since: NaiveDate,
    limit: usize,
) -> Result<Vec<Gap>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    backend.read(|s| {
        s.query(
            "SELECT id, question, day, no_close_match, not_helpful, question_vector, \
                 question_model, weak FROM ( \
                 SELECT a.id, a.question, a.day, a.no_close_match, \
                     a.not_helpful > 0 AS not_helpful, a.question_vector, a.question_model, \
                     a.weak \
                 FROM answer a \
                 WHERE a.guild_id = $1 AND a.question IS NOT NULL AND a.day >= $2) AS kept \
             WHERE no_close_match OR weak OR not_helpful \
             ORDER BY day DESC, id DESC LIMIT $3",
            &[&db_id(guild_id), &since, &limit],
        )?
        .iter()
        .map(|row| {
            Ok(Gap {
                answer_id: from_db_id(row.try_get(0)?),
                question: row.try_get(1)?,
                day: row.try_get(2)?,
                no_close_match: row.try_get(3)?,
                weak: row.try_get(7)?,
                not_helpful: row.try_get(4)?,
                // The schema keeps both or neither.
                vector: row
                    .try_get::<_, Option<Vec<u8>>>(5)?
                    .zip(row.try_get::<_, Option<i64>>(6)?)
                    .map(|(bytes, model)| StoredVectors {
                        fingerprint: from_db_id(model),
                        bytes,
                    }),
            })
        })
        .collect()
    })
}

pub(super) fn set_gap_vectors(
    backend: &PostgresBackend,
    guild_id: u64,
    vectors: &[(u64, StoredVectors)],
) -> Result<u64, StoreError> {
    if vectors.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = vectors.iter().map(|(id, _)| db_id(*id)).collect();
    let bytes: Vec<&[u8]> = vectors.iter().map(|(_, v)| v.bytes.as_slice()).collect();
    let models: Vec<i64> = vectors.iter().map(|(_, v)| db_id(v.fingerprint)).collect();
    backend.write(|s| {
        // Many answer rows, like prune and the cap: the same lock keeps them from deadlocking.
        s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
        s.execute(
            "UPDATE answer SET question_vector = t.v, question_model = t.m \
             FROM unnest($2::bigint[], $3::bytea[], $4::bigint[]) AS t (a, v, m) \
             WHERE answer.id = t.a AND answer.guild_id = $1 AND answer.question IS NOT NULL",
            &[&db_id(guild_id), &ids, &bytes, &models],
        )
    })
}

pub(super) fn prune(backend: &PostgresBackend, today: NaiveDate) -> Result<Pruned, StoreError> {
    let cutoffs = retention_cutoffs(today);
    backend.write(|s| {
        s.execute("SELECT pg_advisory_xact_lock($1)", &[&QUESTIONS_LOCK])?;
        // Votes go with their answers (ON DELETE CASCADE).
        let answers = s.execute("DELETE FROM answer WHERE day < $1", &[&cutoffs.answers])?;
        let old_gaps = s.execute(
            concat!(
                "UPDATE answer SET ",
                clear_question!(),
                " WHERE question IS NOT NULL AND day < $1"
            ),
            &[&cutoffs.gaps],
        )?;
        let not_gaps = s.execute(
            concat!(
                "UPDATE answer SET ",
                clear_question!(),
                " WHERE question IS NOT NULL AND day < $1 AND NOT no_close_match \
                 AND NOT weak AND not_helpful = 0"
            ),
            &[&today],
        )?;
        // One row each, by the primary key: no order to deadlock on.
        let suggestions = s.execute(
            "DELETE FROM suggestion WHERE decided_at IS NOT NULL AND decided_at < $1",
            &[&cutoffs.decided],
        )?;
        let voter_keys = s.execute(
            "DELETE FROM answer_vote \
             WHERE answer_id IN (SELECT id FROM answer WHERE day < $1)",
            &[&open_since_for(today)],
        )?;
        Ok(Pruned {
            answers,
            questions: old_gaps + not_gaps,
            voter_keys,
            suggestions,
        })
    })
}

pub(super) fn secret(backend: &PostgresBackend) -> Result<[u8; 32], StoreError> {
    if let Some(secret) = backend.read(select_secret)? {
        return Ok(secret);
    }
    let mut fresh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
    backend.write(|s| {
        // Another process may have made one since the read: its secret stays (ON CONFLICT
        // waits for its commit, and the SELECT after it sees it).
        s.execute(
            "INSERT INTO secret (id, value) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&&fresh[..]],
        )?;
        select_secret(s)?.ok_or_else(|| Fault::BadRow {
            table: "secret",
            guild_id: 0,
            detail: "no secret after inserting one".into(),
        })
    })
}

fn select_secret(s: &mut Session<'_>) -> Result<Option<[u8; 32]>, Fault> {
    let Some(row) = s.query_opt("SELECT value FROM secret WHERE id = 1", &[])? else {
        return Ok(None);
    };
    let bytes: Vec<u8> = row.try_get(0)?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| Fault::BadRow {
            table: "secret",
            guild_id: 0,
            detail: format!("the secret is {} bytes, not 32", bytes.len()),
        })
}

/// The first day whose answers still take votes on `today`.
fn open_since_for(today: NaiveDate) -> NaiveDate {
    today - chrono::Duration::days(VOTE_WINDOW_DAYS)
}
