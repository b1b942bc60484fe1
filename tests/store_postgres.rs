//! The store's conformance suite (tests/support/conformance.rs) on the PostgreSQL backend, and
//! what only PostgreSQL has: schema checks under an advisory lock, several processes on one
//! database, connections the server drops, passwords.
//!
//! Needs PostgreSQL's server binaries; starts its own throwaway server (tests/support/postgres.rs)
//! with a fresh database per test. Run with
//! `cargo test --features postgres --test store_postgres`.

#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/postgres.rs"]
mod pg;

use insight_bot::store::PostgresBackend;

struct PgHarness {
    db: pg::TestDb,
}

impl PgHarness {
    fn new() -> PgHarness {
        PgHarness {
            db: pg::fresh_database(),
        }
    }
}

impl conformance::Harness for PgHarness {
    type Backend = PostgresBackend;

    fn try_open(&self) -> Result<PostgresBackend, String> {
        PostgresBackend::connect(&self.db.url).map_err(|e| e.to_string())
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        self.db.execute(sql)
    }

    fn query_row(&self, sql: &str) -> Vec<String> {
        let rows = self.db.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let first = rows
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{sql}: no row"));
        first
            .into_iter()
            .map(|v| v.unwrap_or_else(|| "NULL".into()))
            .collect()
    }

    fn insert_weeklies(&self, count: u64) {
        self.exec(&format!(
            "INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, \
                 active_since, failure_reason, failed_at, updated_at) \
             SELECT g, g, 'mon', '09:00', 'Europe/London', true, '2026-03-03T10:00:00.000Z', \
                 NULL, NULL, '2026-03-03T10:00:00.000Z' FROM generate_series(1, {count}) g"
        ))
        .unwrap();
    }

    fn create_version_1(&self) {
        // As insight-bot 1 did: its one migration and the version, in one transaction.
        self.exec(&format!(
            "BEGIN; {} INSERT INTO insight_bot_schema (version) VALUES (1); COMMIT;",
            include_str!("../migrations/postgres/0001_init.sql")
        ))
        .unwrap();
    }

    fn create_version_2(&self) {
        // As insight-bot 2 did: each migration and its version, in one transaction.
        self.create_version_1();
        self.exec(&format!(
            "BEGIN; {} INSERT INTO insight_bot_schema (version) VALUES (2); COMMIT;",
            include_str!("../migrations/postgres/0002_server_insights.sql")
        ))
        .unwrap();
    }

    fn create_version_3(&self) {
        self.create_version_2();
        self.exec(&format!(
            "BEGIN; {} INSERT INTO insight_bot_schema (version) VALUES (3); COMMIT;",
            include_str!("../migrations/postgres/0003_usage.sql")
        ))
        .unwrap();
    }

    fn create_version_4(&self) {
        self.create_version_3();
        self.exec(&format!(
            "BEGIN; {} INSERT INTO insight_bot_schema (version) VALUES (4); COMMIT;",
            include_str!("../migrations/postgres/0004_gap_vectors.sql")
        ))
        .unwrap();
    }

    fn create_version_6(&self) {
        self.create_version_4();
        for (version, sql) in [
            (
                5,
                include_str!("../migrations/postgres/0005_server_packs.sql"),
            ),
            (
                6,
                include_str!("../migrations/postgres/0006_weak_answers.sql"),
            ),
        ] {
            self.exec(&format!(
                "BEGIN; {sql} INSERT INTO insight_bot_schema (version) VALUES ({version}); COMMIT;"
            ))
            .unwrap();
        }
    }

    fn schema_version(&self) -> i64 {
        self.query_row("SELECT max(version) FROM insight_bot_schema")[0]
            .parse()
            .unwrap()
    }
}

conformance::conformance_suite!(PgHarness::new());

// ---- PostgreSQL only ----

use std::sync::Barrier;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use conformance::Harness;
use insight_bot::config::DatabaseUrl;
use insight_bot::store::postgres::{POOL_SIZE, SCHEMA_VERSION};
use insight_bot::store::{Backend, Claim, FeedSpec, PostSource, Store, StoreError};
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::schedule::{Period, Schedule, WeekKey};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-09T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn monday_9() -> FeedSpec {
    FeedSpec {
        schedule: Schedule::weekly(
            Weekday::Mon,
            NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            chrono_tz::UTC,
        ),
        topic: None,
        thread: false,
        ping_role: None,
        forum: false,
    }
}

const WEEK: Period = Period::Week(WeekKey {
    year: 2026,
    week: 11,
});

/// The Monday of [`WEEK`].
fn week_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()
}

/// Server `guild`'s feed, in the channel of the same number.
fn feed(guild: u64) -> FeedId {
    FeedId::new(guild, guild)
}

fn claim(store: &(impl Backend + ?Sized), guild: u64, seed: u64) -> Option<Claim> {
    let mut rng = StdRng::seed_from_u64(seed);
    store
        .claim(
            feed(guild),
            WEEK,
            &["a", "b", "c"],
            PostSource::Schedule,
            &mut rng,
            now(),
        )
        .unwrap()
}

/// Every table of the database's `public` schema with its row count, and the schema versions:
/// enough to see whether anything was created, dropped, or written.
fn snapshot(db: &pg::TestDb) -> Vec<Vec<Option<String>>> {
    let mut rows = db
        .query(
            "SELECT c.relname::text, c.reltuples::bigint::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' ORDER BY 1",
        )
        .unwrap();
    let tables = db
        .query(
            "SELECT c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
        )
        .unwrap();
    for table in tables.into_iter().filter_map(|r| r[0].clone()) {
        rows.extend(
            db.query(&format!("SELECT '{table}', count(*)::text FROM {table}"))
                .unwrap(),
        );
    }
    if rows
        .iter()
        .any(|r| r[0].as_deref() == Some("insight_bot_schema"))
    {
        rows.extend(
            db.query("SELECT version::text, NULL FROM insight_bot_schema ORDER BY 1")
                .unwrap(),
        );
    }
    rows
}

#[test]
fn a_database_from_a_newer_version_is_refused_and_left_unchanged() {
    let h = PgHarness::new();
    let store = h.open();
    store.set_feed(feed(1), &monday_9(), now()).unwrap();
    drop(store);
    h.exec("INSERT INTO insight_bot_schema (version) VALUES (99)")
        .unwrap();
    let before = snapshot(&h.db);
    let err = PostgresBackend::connect(&h.db.url).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 99, known, .. } if known == SCHEMA_VERSION),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("was written by a newer insight-bot"),
        "{message}"
    );
    assert!(message.contains(&h.db.url), "{message}");
    assert_eq!(snapshot(&h.db), before);
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let db = pg::fresh_database();
    db.execute(
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('mine'); \
         CREATE VIEW shouting AS SELECT upper(body) FROM notes",
    )
    .unwrap();
    let before = snapshot(&db);
    let err = PostgresBackend::connect(&db.url).unwrap_err();
    assert!(matches!(err, StoreError::PgNotOurs { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&db.url), "{message}");
    assert!(message.contains("\"public\""), "{message}");
    assert!(message.contains("2 tables and views"), "{message}");
    assert_eq!(snapshot(&db), before, "nothing created or changed");
    assert_eq!(
        db.query("SELECT body FROM notes").unwrap(),
        [[Some("mine".to_string())]]
    );

    // What the message advises: a schema of its own in the same database.
    db.execute("CREATE SCHEMA insight_bot").unwrap();
    let url = format!("{}?options=-csearch_path%3Dinsight_bot", db.url);
    let store = PostgresBackend::connect(&url).unwrap();
    store.set_feed(feed(1), &monday_9(), now()).unwrap();
    assert_eq!(
        db.query("SELECT count(*)::text FROM insight_bot.feed")
            .unwrap(),
        [[Some("1".to_string())]]
    );
    assert_eq!(snapshot(&db), before, "public is still untouched");
}

#[test]
fn many_handles_opening_a_new_database_at_once_create_its_schema_once() {
    const HANDLES: usize = 8;
    let h = PgHarness::new();
    let barrier = Barrier::new(HANDLES);
    let opened: Vec<Result<PostgresBackend, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..HANDLES)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    h.try_open()
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (i, store) in opened.iter().enumerate() {
        let store = store.as_ref().unwrap_or_else(|e| panic!("handle {i}: {e}"));
        store
            .set_feed(FeedId::new(i as u64 + 1, 1), &monday_9(), now())
            .unwrap();
    }
    let versions: Vec<Vec<Option<String>>> = (1..=SCHEMA_VERSION)
        .map(|v| vec![Some(v.to_string())])
        .collect();
    assert_eq!(
        h.db.query("SELECT version::text FROM insight_bot_schema ORDER BY version")
            .unwrap(),
        versions
    );
    assert_eq!(
        h.open().active_feeds().unwrap().len(),
        HANDLES,
        "every handle writes to the same tables"
    );
}

/// Closes every connection of this database but the caller's, and waits until they are gone.
fn terminate_connections(db: &pg::TestDb) -> usize {
    let rows = db
        .query(
            "SELECT pg_terminate_backend(pid, 10000)::text FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .unwrap();
    rows.len()
}

fn our_connections(db: &pg::TestDb) -> usize {
    let rows = db
        .query(
            "SELECT count(*)::text FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'insight-bot'",
        )
        .unwrap();
    rows[0][0].as_deref().unwrap().parse().unwrap()
}

#[test]
fn connections_the_server_closed_are_replaced() {
    let h = PgHarness::new();
    let store = h.open();
    store.set_feed(feed(1), &monday_9(), now()).unwrap();
    assert!(terminate_connections(&h.db) >= 1);
    // A read on a dead connection runs again on a new one.
    assert!(store.feed(feed(1)).unwrap().is_some());

    assert!(terminate_connections(&h.db) >= 1);
    // So does a write that failed before its commit: claimed once, the rotation advanced once.
    assert!(matches!(claim(&store, 1, 1), Some(Claim::Claimed(_))));
    assert_eq!(store.rotation(feed(1)).unwrap().shown, 1);

    // Several connections at once, all closed: concurrent calls all get through.
    std::thread::scope(|scope| {
        for guild in 2..=9 {
            let store = &store;
            scope.spawn(move || claim(store, guild, guild));
        }
    });
    assert!(terminate_connections(&h.db) >= 1);
    std::thread::scope(|scope| {
        for guild in 2..=9 {
            let store = &store;
            scope.spawn(move || {
                store
                    .record_attempt(feed(guild), WEEK, now(), None, None)
                    .unwrap()
            });
        }
    });
    assert_eq!(store.unconfirmed_posts().unwrap().len(), 9);
    // The closed ones were dropped, not kept beside new ones.
    wait_until("at most the pool's connections", || {
        our_connections(&h.db) <= POOL_SIZE
    });
}

/// Polls `condition` for up to ten seconds.
fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_claim_whose_connection_is_closed_under_it_runs_again() {
    let h = PgHarness::new();
    let store = h.open();
    std::thread::scope(|scope| {
        // Another process holds server 1's claim lock (keys 0, 1) for a moment...
        let holder = scope.spawn(|| h.exec("SELECT pg_advisory_lock(0, 1); SELECT pg_sleep(1.5)"));
        wait_until("the lock is held", || {
            !h.db
                .query(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 \
                     AND objid = 1 AND objsubid = 2 AND granted",
                )
                .unwrap()
                .is_empty()
        });
        // ... so the claim waits inside its transaction, where its connection is closed.
        let claimer = scope.spawn(|| claim(&store, 1, 1));
        wait_until("the claim waits for the lock", || {
            !h.db
                .query(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'insight-bot' AND wait_event_type = 'Lock'",
                )
                .unwrap()
                .is_empty()
        });
        h.db.query(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'insight-bot'",
        )
        .unwrap();
        holder.join().unwrap().unwrap();
        // Nothing was committed, so it ran again on a new connection once the lock was free.
        assert!(matches!(claimer.join().unwrap(), Some(Claim::Claimed(_))));
    });
    assert_eq!(store.rotation(feed(1)).unwrap().shown, 1);
    assert!(store.post(feed(1), WEEK).unwrap().is_some());
}

#[test]
fn concurrent_calls_share_a_few_connections() {
    let h = PgHarness::new();
    let store = h.open();
    std::thread::scope(|scope| {
        for t in 0..16u64 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..20 {
                    let guild = t * 100 + i + 1;
                    store.set_feed(feed(guild), &monday_9(), now()).unwrap();
                    assert!(matches!(
                        claim(store, guild, guild),
                        Some(Claim::Claimed(_))
                    ));
                }
            });
        }
    });
    assert_eq!(store.active_feeds().unwrap().len(), 320);
    assert_eq!(store.claimed_slots_since(week_start()).unwrap().len(), 320);
    let open = our_connections(&h.db);
    assert!((1..=POOL_SIZE).contains(&open), "{open} connections");
    // Dropping the backend closes them (the server notices a moment later).
    drop(store);
    wait_until("the connections are closed", || our_connections(&h.db) == 0);
}

#[test]
fn the_last_handle_can_be_dropped_on_a_current_thread_runtime() {
    let h = PgHarness::new();
    let store = Store::new(h.open());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let claimed = store.call(|db| Ok(claim(db, 1, 1))).await.unwrap();
        assert!(matches!(claimed, Some(Claim::Claimed(_))));
        drop(store);
    });
    wait_until("the connections are closed", || our_connections(&h.db) == 0);
}

#[test]
fn a_missing_database_is_a_connect_error_naming_it() {
    let db = pg::fresh_database();
    let url = db.url.replace(&db.name, "no_such_database");
    let err = PostgresBackend::connect(&url).unwrap_err();
    assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("database \"no_such_database\" does not exist"),
        "{message}"
    );
}

#[test]
fn a_password_is_never_shown() {
    let db = pg::fresh_database();
    db.execute(&format!(
        "ALTER DATABASE {} OWNER TO {}",
        db.name,
        pg::PASSWORD_USER
    ))
    .unwrap();
    let wrong = "wrong-Guess-for-the-pw";
    for url in [
        db.url_as(pg::PASSWORD_USER, wrong),
        format!(
            "{}?user={}&password={wrong}",
            db.url.replace("postgres@", ""),
            pg::PASSWORD_USER
        ),
    ] {
        let err = PostgresBackend::connect(&url).unwrap_err();
        assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("password authentication failed"), "{shown}");
        assert!(!shown.contains(wrong), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    let url = db.url_as(pg::PASSWORD_USER, pg::PASSWORD);
    let backend = PostgresBackend::connect(&url).unwrap();
    backend.set_feed(feed(1), &monday_9(), now()).unwrap();
    let mut shown = vec![
        backend.describe(),
        format!("{backend:?}"),
        DatabaseUrl::Postgres(url.clone()).to_string(),
        format!("{:?}", DatabaseUrl::Postgres(url.clone())),
    ];
    // Errors of every kind name the database: a bad row, a failing query.
    db.execute("UPDATE feed SET zone = 'Nowhere/Land'").unwrap();
    shown.push(backend.feed(feed(1)).unwrap_err().to_string());
    db.execute("DROP TABLE feed_post").unwrap();
    let err = backend.post(feed(1), WEEK).unwrap_err();
    assert!(matches!(err, StoreError::Postgres { .. }), "{err:?}");
    shown.push(format!("{err} {err:?}"));
    let store = Store::new(backend);
    shown.push(format!("{store:?}"));
    for text in &shown {
        assert!(!text.contains(pg::PASSWORD), "{text}");
        assert!(text.contains(pg::PASSWORD_USER), "{text}");
    }
}

#[test]
fn store_connect_opens_the_database_a_url_names() {
    let db = pg::fresh_database();
    let store = Store::connect(&DatabaseUrl::Postgres(db.url.clone())).unwrap();
    assert_eq!(store.describe(), db.url);
    store
        .blocking()
        .set_feed(feed(1), &monday_9(), now())
        .unwrap();
    assert_eq!(
        db.query("SELECT count(*)::text FROM feed").unwrap(),
        [[Some("1".to_string())]]
    );
}

#[test]
fn tls_is_not_supported_and_the_error_says_so() {
    let db = pg::fresh_database();
    let err = PostgresBackend::connect(&format!("{}?sslmode=require", db.url)).unwrap_err();
    assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
}
