//! The state store on PostgreSQL against SQLite, in one run.
//!
//! - **Claims per second**: 10,000 feeds (one per server) each claiming their week (the claim
//!   transaction with its rotation step), from one thread, then 10,000 more from 8 threads
//!   sharing one backend (as the poster's concurrent deliveries do).
//! - **An idle scheduler wake** over 100,000 feeds: `active_feeds` + `unconfirmed_posts` +
//!   `posts_awaiting_thread`, the three reads of every poster wake, with five weeks of post
//!   history (500,000 rows, this week's all claimed, 100 of them unconfirmed). Printed beside
//!   it: `claimed_slots_since(this week's Monday)`, the range read of a poster's first wake
//!   after a start (later wakes read only the slots that just came due: the poster remembers
//!   which latest slots it knows are claimed).
//! - **Usage reports** (`usage_stats`): one server with 1,000,000 answers recorded through
//!   `record_answers` (batches of 10,000) over 365 days and 60 insights, 10,000 votes, and
//!   showings; the report over 30 and 365 days for the server, and over 365 days everywhere.
//!
//! PostgreSQL is a throwaway local server reached over a Unix socket (tests/support/postgres.rs,
//! the test suite's), with `fsync=off`; SQLite is a temporary file with the backend's production
//! settings (WAL, `synchronous=NORMAL`, which does not sync on commit either). So the figures
//! compare the backends' own costs (round trips, encoding, locking), not disks; a PostgreSQL
//! across a network adds its round-trip time to every statement (a claim is five).
//!
//! Run with `cargo bench --bench store` (needs PostgreSQL's server binaries, like
//! `tests/store_postgres.rs`), or one group with `cargo bench --bench store -- usage_stats`
//! (criterion-style options are accepted and ignored). Figures are printed; there is no timing
//! assertion.
//!
//! Measured when it was written (release, 2 cores shared with other builds, PostgreSQL 15;
//! ranges over three runs): claims, SQLite 14,000-22,000/s from one thread and 10,000-14,000/s
//! from 8; PostgreSQL 2,400-2,700/s (about 0.4 ms: seven round trips) and 5,100-6,800/s from 8
//! threads over its 4 connections. Idle wake over 100,000 schedules: SQLite 175-260 ms,
//! PostgreSQL 255-370 ms (median), most of it `active_weeklies` decoding 100,000 rows and
//! parsing their schedules. With feeds (schema version 7, one run): SQLite 125 ms, PostgreSQL
//! 180 ms, almost all `active_feeds`; the first wake's `claimed_slots_since` 31 / 48 ms. Either is far below what a weekly post needs: Discord's rate limit
//! (about 50 requests a second) bounds the posting, and a wake comes once per due slot.
//!
//! usage_stats, measured when it was added (one run, same machine, median of 15): SQLite 0.75 ms
//! for a server's 30 days, 9.0 ms for its 365 days, 11.6 ms for 365 days everywhere; PostgreSQL
//! 2.6 ms, 28 ms and 17 ms. Reports read only the daily totals (here about 22,000 rows a year for
//! the server), not the million answers, so the goal of well under 200 ms holds with room.
//! Loading: record_answers 57,000 answers/s on SQLite, 92,000/s on PostgreSQL (one unnest
//! insert per batch); record_vote 27,000/s and 3,500/s (six round trips each on PostgreSQL).

#[path = "../tests/support/postgres.rs"]
mod pg;

use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use insight_bot::store::{
    Backend, Claim, NewAnswer, PostSource, PostgresBackend, SqliteBackend, UsageScope, Vote,
};
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::schedule::{Period, WeekKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLAIMS: u64 = 10_000;
const THREADS: u64 = 8;
const SCHEDULES: u64 = 100_000;
const HISTORY_WEEKS: u32 = 5;
const UNCONFIRMED: u64 = 100;
const WAKES: usize = 7;

const USAGE_GUILD: u64 = 1_100_000_000_000_000_001;
const USAGE_ANSWERS: usize = 1_000_000;
const USAGE_BATCH: usize = 10_000;
const USAGE_DAYS: u64 = 365;
const USAGE_INSIGHTS: usize = 60;
const USAGE_VOTES: usize = 10_000;
const USAGE_RUNS: usize = 15;

const WEEK_KEY: WeekKey = WeekKey {
    year: 2026,
    week: 11,
};
const WEEK: Period = Period::Week(WEEK_KEY);

/// The Monday of [`WEEK`]: where the poster's `claimed_slots_since` starts.
fn week_start() -> NaiveDate {
    WEEK_KEY.monday().unwrap()
}

/// What the poster passes to `posts_awaiting_thread`: a week before now.
fn week_ago() -> DateTime<Utc> {
    now() - chrono::Duration::days(7)
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-09T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// One backend under test, with a way to load bulk data behind its back.
struct Subject<B> {
    name: &'static str,
    backend: B,
    load: Box<dyn Fn(&str)>,
    /// The dialect's spelling of `true`.
    yes: &'static str,
    /// The dialect's typed instant literal (a bare string in PostgreSQL is text inside CASE).
    instant: fn(&str) -> String,
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let sqlite = Subject {
        name: "SQLite",
        backend: SqliteBackend::open(&path).unwrap(),
        load: Box::new(move |sql: &str| {
            rusqlite::Connection::open(&path)
                .unwrap()
                .execute_batch(sql)
                .unwrap()
        }),
        yes: "1",
        instant: |at| format!("'{at}'"),
    };
    let started = Instant::now();
    let db = pg::fresh_database();
    let server_start = started.elapsed();
    let postgres = Subject {
        name: "PostgreSQL",
        backend: PostgresBackend::connect(&db.url).unwrap(),
        load: Box::new(move |sql: &str| db.execute(sql).unwrap()),
        yes: "true",
        instant: |at| format!("TIMESTAMPTZ '{at}'"),
    };
    println!(
        "store: PostgreSQL against SQLite (a throwaway PostgreSQL started in {:.1} s)",
        server_start.as_secs_f64()
    );
    let ids: Vec<String> = (0..40).map(|i| format!("insight-{i:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let filter = name_filter();
    let run = |group: &str| filter.as_deref().is_none_or(|f| group.contains(f));

    if run("claims") {
        println!("\nclaims ({CLAIMS} servers claiming this week, rotation over 40 insights):");
        claims(&sqlite, &ids);
        claims(&postgres, &ids);
    }

    if run("idle_wake") {
        println!(
            "\nidle scheduler wake over {SCHEDULES} feeds ({} feed_post rows): \
             active_feeds + unconfirmed_posts + posts_awaiting_thread",
            SCHEDULES * u64::from(HISTORY_WEEKS)
        );
        idle_wake(&sqlite);
        idle_wake(&postgres);
    }

    if run("usage_stats") {
        println!(
            "\nusage_stats: one server with {USAGE_ANSWERS} answers over {USAGE_DAYS} days and \
             {USAGE_INSIGHTS} insights, {USAGE_VOTES} votes (median of {USAGE_RUNS} runs)"
        );
        usage_stats(&sqlite);
        usage_stats(&postgres);
    }
}

/// The group to run, like criterion's filter: the first argument that is not an option (options
/// such as criterion's `--warm-up-time 1` are accepted and ignored, with their values).
fn name_filter() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--warm-up-time" | "--measurement-time" | "--sample-size" | "--save-baseline"
            | "--baseline" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            _ => return Some(arg),
        }
    }
    None
}

fn claim(backend: &impl Backend, guild: u64, ids: &[&str]) {
    let mut rng = StdRng::seed_from_u64(guild);
    let claim = backend
        .claim(
            FeedId::new(guild, guild),
            WEEK,
            ids,
            PostSource::Schedule,
            &mut rng,
            now(),
        )
        .unwrap();
    assert!(matches!(claim, Some(Claim::Claimed(_))), "{claim:?}");
}

fn claims<B: Backend>(subject: &Subject<B>, ids: &[&str]) {
    let backend = &subject.backend;
    let started = Instant::now();
    for guild in 1..=CLAIMS {
        claim(backend, guild, ids);
    }
    let sequential = started.elapsed();

    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                let mut guild = CLAIMS + 1 + t;
                while guild <= 2 * CLAIMS {
                    claim(backend, guild, ids);
                    guild += THREADS;
                }
            });
        }
    });
    let parallel = started.elapsed();
    let rate = |d: Duration| CLAIMS as f64 / d.as_secs_f64();
    println!(
        "  {:<10}  1 thread: {:>6.0} claims/s ({:>5.0} µs each)   {THREADS} threads: {:>6.0} claims/s",
        subject.name,
        rate(sequential),
        sequential.as_micros() as f64 / CLAIMS as f64,
        rate(parallel),
    );
}

fn idle_wake<B: Backend>(subject: &Subject<B>) {
    let started = Instant::now();
    let yes = subject.yes;
    // Servers are numbered from 1,000,001 so they do not meet the claims' servers.
    (subject.load)(&format!(
        "DELETE FROM feed_post; DELETE FROM feed_rotation; DELETE FROM feed; \
         INSERT INTO feed (guild_id, channel_id, cadence, weekday, time, zone, enabled, \
             active_since, failure_reason, failed_at, updated_at) \
         SELECT 1000000 + g, g, 'weekly', 'mon', '09:00', 'Europe/London', {yes}, \
             '2026-01-01T00:00:00.000Z', NULL, NULL, '2026-01-01T00:00:00.000Z' \
         FROM ({}) AS servers;",
        series(yes, SCHEDULES)
    ));
    for w in (WEEK_KEY.week + 1 - HISTORY_WEEKS)..=WEEK_KEY.week {
        let key = WeekKey {
            year: WEEK_KEY.year,
            week: w,
        };
        // This week: the first UNCONFIRMED servers' posts are claimed but not confirmed.
        let confirmed = if w == WEEK_KEY.week {
            format!("g > {UNCONFIRMED}")
        } else {
            "1 = 1".into()
        };
        (subject.load)(&format!(
            "INSERT INTO feed_post (guild_id, feed_channel_id, period, period_start, channel_id, \
                 insight_id, nonce, source, claimed_at, attempts, updated_at, message_id, \
                 posted_at) \
             SELECT 1000000 + g, g, '{key}', '{start}', g, 'insight-01', 'iw' || g, \
                 'schedule', '2026-03-09T09:00:00.000Z', 1, '2026-03-09T09:00:00.000Z', \
                 CASE WHEN {confirmed} THEN g END, \
                 CASE WHEN {confirmed} THEN {posted_at} END \
             FROM ({series}) AS servers;",
            start = key.monday().unwrap().format("%Y-%m-%d"),
            series = series(yes, SCHEDULES),
            posted_at = (subject.instant)("2026-03-09T09:00:01.000Z"),
        ));
    }
    let setup = started.elapsed();

    let backend = &subject.backend;
    let mut wakes = Vec::new();
    for _ in 0..WAKES {
        let started = Instant::now();
        let active = backend.active_feeds().unwrap();
        let unconfirmed = backend.unconfirmed_posts().unwrap();
        let threads = backend.posts_awaiting_thread(week_ago()).unwrap();
        let took = started.elapsed();
        assert_eq!(active.len() as u64, SCHEDULES);
        assert_eq!(unconfirmed.len() as u64, UNCONFIRMED);
        assert!(threads.is_empty());
        let parts = [active.len(), unconfirmed.len(), threads.len()];
        wakes.push((took, parts));
    }
    wakes.sort_by_key(|(took, _)| *took);
    // Each read alone, for where the time goes.
    let time = |f: &dyn Fn()| {
        let mut runs: Vec<Duration> = (0..WAKES)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed()
            })
            .collect();
        runs.sort();
        runs[WAKES / 2].as_secs_f64() * 1000.0
    };
    let active = time(&|| drop(backend.active_feeds().unwrap()));
    let unconfirmed = time(&|| drop(backend.unconfirmed_posts().unwrap()));
    let threads = time(&|| drop(backend.posts_awaiting_thread(week_ago()).unwrap()));
    let claimed = time(&|| {
        let claimed = backend.claimed_slots_since(week_start()).unwrap();
        assert_eq!(claimed.len() as u64, SCHEDULES);
    });
    println!(
        "  {:<10}  median {:>6.1} ms, best {:>6.1} ms  (active_feeds {active:.1} ms, \
         unconfirmed_posts {unconfirmed:.1} ms, posts_awaiting_thread {threads:.1} ms; \
         a first wake's claimed_slots_since {claimed:.1} ms; bulk load {:.1} s)",
        subject.name,
        wakes[WAKES / 2].0.as_secs_f64() * 1000.0,
        wakes[0].0.as_secs_f64() * 1000.0,
        setup.as_secs_f64(),
    );
}

/// A query giving the integers 1..=n in column `g`, in the dialect whose `true` is `yes`.
fn series(yes: &str, n: u64) -> String {
    if yes == "true" {
        format!("SELECT generate_series(1, {n}) AS g")
    } else {
        format!(
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) \
             SELECT g FROM s"
        )
    }
}

fn usage_stats<B: Backend>(subject: &Subject<B>) {
    let backend = &subject.backend;
    let today = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
    let ago = |n: u64| today.checked_sub_days(Days::new(n)).unwrap();
    let insights: Vec<String> = (0..USAGE_INSIGHTS)
        .map(|i| format!("insight-{i:02}"))
        .collect();
    let mut rng = StdRng::seed_from_u64(11);

    // A year of answers, through the store (one transaction per batch), one in ten without a
    // close match.
    let started = Instant::now();
    let mut ids = Vec::with_capacity(USAGE_ANSWERS);
    for batch in 0..USAGE_ANSWERS / USAGE_BATCH {
        let answers: Vec<NewAnswer> = (0..USAGE_BATCH)
            .map(|i| {
                let n = batch * USAGE_BATCH + i;
                let no_match = rng.gen_ratio(1, 10);
                NewAnswer {
                    id: n as u64 + 1,
                    guild_id: Some(USAGE_GUILD),
                    day: ago(n as u64 % USAGE_DAYS),
                    insight_id: (!no_match)
                        .then(|| insights[rng.gen_range(0..USAGE_INSIGHTS)].clone()),
                    no_close_match: no_match,
                    weak: false,
                    question: None,
                    question_vector: None,
                }
            })
            .collect();
        ids.extend(backend.record_answers(&answers).unwrap());
    }
    let answers_took = started.elapsed();
    let started = Instant::now();
    for _ in 0..USAGE_VOTES {
        let id = ids[rng.gen_range(0..ids.len())];
        let mut voter = [0u8; 32];
        rng.fill(&mut voter);
        let vote = if rng.gen_ratio(3, 4) {
            Vote::Helpful
        } else {
            Vote::NotHelpful
        };
        // Cast on the answer's day (answer n + 1 was given `n % USAGE_DAYS` days ago).
        let cast_on = ago((id - 1) % USAGE_DAYS);
        backend.record_vote(id, &voter, vote, cast_on).unwrap();
    }
    let votes_took = started.elapsed();
    // Every answer with an insight showed it: the showings, loaded behind the store's back
    // (a million record_shown transactions would only slow the setup down).
    (subject.load)(&format!(
        "UPDATE usage_day SET shown = answers WHERE guild_id = {USAGE_GUILD} AND insight_id <> ''"
    ));

    let time = |scope: UsageScope, days: u64| {
        let mut runs: Vec<Duration> = (0..USAGE_RUNS)
            .map(|_| {
                let started = Instant::now();
                let stats = backend.usage_stats(scope, ago(days - 1), today).unwrap();
                let took = started.elapsed();
                assert_eq!(stats.days.len() as u64, days.min(USAGE_DAYS));
                assert_eq!(stats.insights.len(), USAGE_INSIGHTS);
                took
            })
            .collect();
        runs.sort();
        (
            runs[USAGE_RUNS / 2].as_secs_f64() * 1000.0,
            runs[0].as_secs_f64() * 1000.0,
        )
    };
    let (month, month_best) = time(UsageScope::Server(USAGE_GUILD), 30);
    let (year, year_best) = time(UsageScope::Server(USAGE_GUILD), 365);
    let (everywhere, everywhere_best) = time(UsageScope::Everywhere, 365);
    println!(
        "  {:<10}  server, 30 days: {month:>6.2} ms (best {month_best:.2})   server, 365 days: \
         {year:>6.2} ms (best {year_best:.2})   everywhere, 365 days: {everywhere:>6.2} ms \
         (best {everywhere_best:.2})\n              loading: record_answers {:>7.0} answers/s, \
         record_vote {:>6.0} votes/s",
        subject.name,
        USAGE_ANSWERS as f64 / answers_took.as_secs_f64(),
        USAGE_VOTES as f64 / votes_took.as_secs_f64(),
    );
}
