//! The store's behaviour, once, for every backend: what `Backend`'s documentation promises
//! (feeds, claims, skips, threads, rotation, attempts, confirmation, release, the scheduler's
//! queries, bad rows, migrations), checked the same way against SQLite (`tests/store_sqlite.rs`)
//! and PostgreSQL (`tests/store_postgres.rs`).
//!
//! A backend's test file implements [`Harness`] (open a handle on a test's own database, run raw
//! SQL as an operator's shell would) and expands [`conformance_suite!`], which declares one
//! `#[test]` per function below. A function missing from the macro's list is dead code, which
//! `clippy -D warnings` refuses, so no test is forgotten for one backend.
//!
//! The raw SQL here is written to mean the same in both dialects (ISO instants and dates as text
//! literals, which PostgreSQL casts and SQLite stores as is; `true` for a flag, which SQLite
//! stores as 1).

// Each includer uses the whole suite, but not every helper of the harness side.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Barrier;
use std::thread;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Europe::London;
use insight_bot::insights::{Insight, Source};
use insight_bot::stats::{DayAnswers, InsightUse};
use insight_bot::store::{
    post_nonce, Backend, Claim, Decision, Failure, FeedSettings, FeedSpec, Gap, InsightSource,
    Limit, NewAnswer, NewSuggestion, Pause, PostRecord, PostSource, Pruned, ReviewMessage,
    SaveOutcome, ServerInsight, ServerSettings, Store, StoreError, StoredVectors, Suggestion,
    SuggestionStatus, UsageScope, UsageStats, Vote, VoteOutcome, DECIDED_SUGGESTION_RETENTION_DAYS,
    KEPT_QUESTIONS_PER_SERVER, KEPT_QUESTIONS_TRIMMED_TO, VOTE_WINDOW_DAYS,
};
use insight_bot::weekly::feed::{FeedId, MAX_FEEDS_PER_SERVER, MAX_KEPT_FEEDS_PER_SERVER};
use insight_bot::weekly::rotation::RotationState;
use insight_bot::weekly::schedule::{Cadence, Period, Schedule, WeekKey};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// One test's database, on one backend.
pub trait Harness: Sync {
    type Backend: Backend;

    /// A new handle on this test's database: opening it again is a restart, two handles are two
    /// processes. The first one creates the schema.
    fn try_open(&self) -> Result<Self::Backend, String>;

    fn open(&self) -> Self::Backend {
        self.try_open().unwrap_or_else(|e| panic!("open: {e}"))
    }

    /// Runs `sql` outside the store, as an operator's shell would.
    fn exec(&self, sql: &str) -> Result<(), String>;

    /// The first row of `sql`, every column as text.
    fn query_row(&self, sql: &str) -> Vec<String>;

    /// Inserts `count` enabled schedules (servers 1..=count, Monday 09:00 London) in one
    /// statement into the `weekly` table of a database from before schema version 7, for the
    /// migration tests.
    fn insert_weeklies(&self, count: u64);

    /// Inserts `count` enabled weekly feeds (servers 1..=count, each in the channel of its own
    /// number, Monday 09:00 London) in one statement, for the tests about many servers.
    fn insert_feeds(&self, count: u64) {
        self.exec(&format!(
            "WITH RECURSIVE n(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < {count}) \
             INSERT INTO feed (guild_id, channel_id, cadence, weekday, time, zone, enabled, \
                 active_since, updated_at) \
             SELECT g, g, 'weekly', 'mon', '09:00', 'Europe/London', true, \
                 '2026-03-03T10:00:00.000Z', '2026-03-03T10:00:00.000Z' FROM n"
        ))
        .unwrap();
    }

    /// Creates this test's (new) database as an insight-bot of schema version 1 left it: with
    /// that version's migration SQL, by the backend's own means, without opening a store.
    fn create_version_1(&self);

    /// Creates this test's (new) database as an insight-bot of schema version 2 left it: the
    /// migrations of versions 1 and 2, by the backend's own means, without opening a store.
    fn create_version_2(&self);

    /// Creates this test's (new) database as an insight-bot of schema version 3 left it.
    fn create_version_3(&self);

    /// Creates this test's (new) database as an insight-bot of schema version 4 left it.
    fn create_version_4(&self);

    /// Creates this test's (new) database as an insight-bot of schema version 6 left it (the last
    /// one with a single weekly schedule per server). The default does it as insight-bot 6 did
    /// on SQLite: version 4, then each migration in a transaction with its `user_version`; the
    /// PostgreSQL harness overrides it.
    fn create_version_6(&self) {
        self.create_version_4();
        for (version, sql) in [
            (5, include_str!("../../migrations/0005_server_packs.sql")),
            (6, include_str!("../../migrations/0006_weak_answers.sql")),
        ] {
            self.exec(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {version}; COMMIT;"
            ))
            .unwrap();
        }
    }

    /// The database's schema version, as the backend records it.
    fn schema_version(&self) -> i64;
}

/// Declares one `#[test]` per conformance test, each on a fresh harness from `$harness`.
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance::conformance_suite!(@tests $harness;
            reopening_keeps_everything,
            feed_settings_round_trip,
            every_cadence_round_trips,
            ids_round_trip_over_the_whole_u64_range,
            active_feeds_excludes_disabled_and_failing_and_set_clears_a_failure,
            a_stored_schedule_that_no_longer_parses_is_an_error_for_that_feed_only,
            active_feeds_reads_ten_thousand_servers_quickly,
            a_server_may_have_ten_feeds_and_an_eleventh_is_refused,
            two_handles_adding_feeds_at_once_never_exceed_the_limit,
            pausing_and_resuming_a_feed,
            claiming_a_period_twice_returns_the_first_claim_and_advances_the_rotation_once,
            an_empty_collection_claims_nothing,
            a_period_that_does_not_exist_is_refused,
            eleven_weeks_show_eleven_insights_once_each_across_a_restart,
            two_feeds_of_one_server_have_their_own_rotation_and_post_log,
            a_skipped_period_is_taken_without_a_post_or_a_rotation_step,
            threads_are_wanted_recorded_once_and_never_replaced,
            the_primary_key_refuses_a_second_row_for_the_same_period,
            two_handles_racing_for_the_same_weeks_claim_each_week_once,
            two_handles_claiming_different_weeks_of_one_server_advance_its_rotation_in_turn,
            attempts_confirmation_and_release,
            last_post_orders_by_period_across_years,
            unconfirmed_posts_lists_only_unconfirmed_claims_oldest_period_first,
            claimed_slots_since_lists_every_claim_from_a_date_on_across_years,
            a_broken_rotation_row_is_an_error_for_that_feed,
            store_calls_from_inside_a_multi_thread_runtime,
            server_insights_round_trip_with_every_field,
            a_save_over_the_limit_changes_nothing,
            replacing_does_not_count_twice_against_the_limit,
            two_handles_saving_at_once_never_exceed_the_insight_limit,
            a_stored_insight_that_no_longer_parses_is_an_error_for_that_server_only,
            servers_are_kept_apart_in_every_table,
            server_settings_defaults_and_updates,
            hiding_and_showing_shipped_insights,
            suggestions_are_added_read_and_queued_oldest_first,
            a_member_may_have_five_suggestions_pending,
            a_server_pending_limit_counts_every_member,
            approving_saves_the_insight_and_marks_the_suggestion_in_one_transaction,
            rejecting_records_the_reason_and_a_second_decision_changes_nothing,
            an_approval_over_the_insight_limit_changes_nothing,
            two_curators_deciding_at_once_decide_once,
            shown_counters_count_per_server_and_insight,
            a_version_1_database_migrates_forward_keeping_its_rows,
            reopening_keeps_server_insights_settings_and_suggestions,
            two_handles_adding_suggestions_for_one_member_never_exceed_five_pending,
            answers_add_up_per_day_and_scope,
            an_answer_id_already_recorded_fails_the_batch_and_writes_nothing,
            showings_are_counted_per_day_and_all_time,
            votes_count_once_per_voter_and_a_change_moves_the_count,
            gap_questions_are_kept_only_while_gaps_are_on,
            prune_deletes_old_answers_but_keeps_the_daily_totals,
            a_weak_answer_is_a_gap_and_its_question_is_kept_like_a_no_close_match,
            the_secret_is_made_once_and_shared,
            concurrent_votes_on_one_answer_are_all_counted,
            a_version_2_database_migrates_forward_keeping_its_rows,
            gap_vectors_are_kept_with_their_question_and_go_with_it,
            kept_questions_are_capped_per_server_oldest_first,
            decided_suggestions_are_deleted_after_their_period,
            a_version_3_database_migrates_forward_keeping_its_rows,
            turning_packs_off_and_on,
            a_version_4_database_migrates_forward_keeping_its_rows,
            a_version_6_database_migrates_its_weekly_schedules_to_feeds,
        );
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let harness = $harness;
                $crate::conformance::$name(&harness);
            }
        )*
    };
}
pub(crate) use conformance_suite;

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 7;

const GUILD: u64 = 1_100_000_000_000_000_001;
const CHANNEL: u64 = 1_200_000_000_000_000_002;
/// The feed most tests use: `CHANNEL` of `GUILD`.
const FEED: FeedId = FeedId {
    guild_id: GUILD,
    channel_id: CHANNEL,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn monday_9_london() -> Schedule {
    Schedule::weekly(Weekday::Mon, hm(9, 0), London)
}

fn weekly_spec() -> FeedSpec {
    FeedSpec::plain(monday_9_london())
}

fn feed_of(guild: u64, channel: u64) -> FeedId {
    FeedId::new(guild, channel)
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn week_of(year: i32, week: u32) -> Period {
    Period::Week(WeekKey { year, week })
}

fn week(n: u32) -> Period {
    week_of(2026, n)
}

fn day_period(s: &str) -> Period {
    Period::Day(day(s))
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("insight-{i:02}")).collect()
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

fn claim_in(
    store: &impl Backend,
    feed: FeedId,
    period: Period,
    rng: &mut StdRng,
    ids: &[&str],
) -> Option<Claim> {
    store
        .claim(
            feed,
            period,
            ids,
            PostSource::Schedule,
            rng,
            utc("2026-03-02T09:00:00Z"),
        )
        .unwrap()
}

fn claim_week(store: &impl Backend, rng: &mut StdRng, ids: &[String], w: u32) -> Option<Claim> {
    claim_in(store, FEED, week(w), rng, &refs(ids))
}

/// The servers of feeds, in order.
fn guild_ids(settings: &[FeedSettings]) -> Vec<u64> {
    settings.iter().map(|s| s.feed.guild_id).collect()
}

fn feed_ids(settings: &[FeedSettings]) -> Vec<FeedId> {
    settings.iter().map(|s| s.feed).collect()
}

fn keys(records: &[PostRecord]) -> Vec<(FeedId, Period)> {
    records.iter().map(|r| (r.feed, r.period)).collect()
}

// ---- feeds ----

pub fn reopening_keeps_everything(h: &impl Harness) {
    let ids = ids(3);
    let mut rng = StdRng::seed_from_u64(1);
    let (settings, claimed) = {
        let store = h.open();
        let settings = store
            .set_feed(FEED, &weekly_spec(), utc("2026-03-03T10:00:00Z"))
            .unwrap();
        let claimed = claim_week(&store, &mut rng, &ids, 10)
            .unwrap()
            .into_record();
        store
            .confirm_post(FEED, week(10), 42, utc("2026-03-09T09:00:01Z"))
            .unwrap();
        store
            .skip(FEED, week(11), utc("2026-03-10T09:00:00Z"))
            .unwrap();
        (settings, claimed)
    };
    let store = h.open();
    assert_eq!(store.feed(FEED).unwrap(), Some(settings));
    let post = store.post(FEED, week(10)).unwrap().unwrap();
    assert_eq!(post.insight_id, claimed.insight_id);
    assert_eq!(post.message_id, Some(42));
    assert_eq!(
        store.post(FEED, week(11)).unwrap().unwrap().source,
        PostSource::Skip
    );
    assert_eq!(store.rotation(FEED).unwrap().shown, 1);
}

pub fn feed_settings_round_trip(h: &impl Harness) {
    let store = h.open();
    assert_eq!(store.feed(FEED).unwrap(), None);
    assert_eq!(store.feeds(GUILD).unwrap(), vec![]);
    assert!(!store
        .disable_feed(FEED, utc("2026-03-03T10:00:00Z"))
        .unwrap());

    let set_at = utc("2026-03-03T10:00:00.123456Z");
    let settings = store.set_feed(FEED, &weekly_spec(), set_at).unwrap();
    let expected = FeedSettings {
        feed: FEED,
        schedule: monday_9_london(),
        topic: None,
        thread: false,
        ping_role: None,
        forum: false,
        enabled: true,
        pause: None,
        active_since: utc("2026-03-03T10:00:00.123Z"), // stored to the millisecond
        failure: None,
        updated_at: utc("2026-03-03T10:00:00.123Z"),
    };
    assert_eq!(settings, expected);
    assert_eq!(settings.spec(), weekly_spec());
    assert_eq!(store.feed(FEED).unwrap(), Some(expected.clone()));

    let off_at = utc("2026-03-04T08:00:00Z");
    assert!(store.disable_feed(FEED, off_at).unwrap());
    assert!(!store.disable_feed(FEED, off_at).unwrap(), "already off");
    let off = store.feed(FEED).unwrap().unwrap();
    assert_eq!(
        off,
        FeedSettings {
            enabled: false,
            updated_at: off_at,
            ..expected
        }
    );

    // Setting again re-enables with the new values and a new active_since.
    let friday = FeedSpec {
        schedule: Schedule::parse("fri", "17:30", "America/New_York").unwrap(),
        topic: Some("delegation".into()),
        thread: true,
        ping_role: Some(u64::MAX),
        forum: false,
    };
    let again = store
        .set_feed(FEED, &friday, utc("2026-03-05T00:00:00Z"))
        .unwrap();
    assert_eq!(again.spec(), friday);
    assert!(again.enabled);
    assert_eq!(again.active_since, utc("2026-03-05T00:00:00Z"));
    assert_eq!(store.feed(FEED).unwrap(), Some(again.clone()));
    // Stored as the text an admin types, readable in the database's shell.
    assert_eq!(
        h.query_row(&format!(
            "SELECT cadence, weekday, time, zone, topic FROM feed \
             WHERE guild_id = {GUILD} AND channel_id = {CHANNEL}"
        )),
        ["weekly", "fri", "17:30", "America/New_York", "delegation"]
    );

    // Another channel is another feed of the same server; a forum feed keeps its flag.
    let forum = FeedSpec {
        forum: true,
        ..weekly_spec()
    };
    let other = store
        .set_feed(feed_of(GUILD, 77), &forum, utc("2026-03-05T00:00:00Z"))
        .unwrap();
    assert_eq!(other.spec(), forum);
    assert_eq!(
        feed_ids(&store.feeds(GUILD).unwrap()),
        [feed_of(GUILD, 77), FEED],
        "ordered by channel"
    );
    assert_eq!(store.feeds(GUILD).unwrap()[1], again);
    assert_eq!(store.feeds(GUILD + 1).unwrap(), vec![]);
}

pub fn every_cadence_round_trips(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    let cadences = [
        Cadence::Weekly(Weekday::Sun),
        Cadence::EveryTwoWeeks {
            weekday: Weekday::Wed,
            parity: 0,
        },
        Cadence::EveryTwoWeeks {
            weekday: Weekday::Fri,
            parity: 1,
        },
        Cadence::Weekdays,
        Cadence::Daily,
    ];
    for (channel, cadence) in (1..).zip(cadences) {
        let schedule = Schedule::new(cadence, hm(7, 5), chrono_tz::Asia::Kolkata);
        let set = store
            .set_feed(feed_of(GUILD, channel), &FeedSpec::plain(schedule), now)
            .unwrap();
        assert_eq!(set.schedule, schedule);
        assert_eq!(
            store
                .feed(feed_of(GUILD, channel))
                .unwrap()
                .unwrap()
                .schedule,
            schedule,
            "{cadence:?}"
        );
    }
    let stored: Vec<Schedule> = store
        .feeds(GUILD)
        .unwrap()
        .iter()
        .map(|f| f.schedule)
        .collect();
    assert_eq!(stored.len(), cadences.len());
    assert_eq!(
        h.query_row(&format!(
            "SELECT cadence, weekday, parity, time FROM feed \
             WHERE guild_id = {GUILD} AND channel_id = 3"
        )),
        ["every-2-weeks", "fri", "1", "07:05"]
    );
    assert_eq!(
        h.query_row(&format!(
            "SELECT cadence, weekday, parity FROM feed WHERE guild_id = {GUILD} AND channel_id = 5"
        )),
        ["daily", "NULL", "0"]
    );
    // Changing the cadence of a feed replaces every column of it.
    let weekly = store
        .set_feed(feed_of(GUILD, 3), &weekly_spec(), now)
        .unwrap();
    assert_eq!(weekly.schedule, monday_9_london());
    assert_eq!(
        h.query_row(&format!(
            "SELECT cadence, weekday, parity FROM feed WHERE guild_id = {GUILD} AND channel_id = 3"
        )),
        ["weekly", "mon", "0"]
    );
}

pub fn ids_round_trip_over_the_whole_u64_range(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    for id in [1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let feed = feed_of(id, id);
        let spec = FeedSpec {
            ping_role: Some(id),
            ..weekly_spec()
        };
        let s = store.set_feed(feed, &spec, now).unwrap();
        assert_eq!((s.feed, s.ping_role), (feed, Some(id)));
        let mut rng = StdRng::seed_from_u64(id);
        let claim = store
            .claim(feed, week(3), &["a"], PostSource::PostNow, &mut rng, now)
            .unwrap()
            .unwrap();
        assert_eq!(claim.record().feed, feed);
        assert_eq!(claim.record().channel_id, id);
        store.confirm_post(feed, week(3), id, now).unwrap();
        store.record_thread(feed, week(3), Ok(id), now).unwrap();
        let last = store.last_post(feed).unwrap().unwrap();
        assert_eq!((last.message_id, last.thread_id), (Some(id), Some(id)));
        assert!(store
            .claimed_slots_since(day("2026-01-12"))
            .unwrap()
            .contains(&(feed, week(3))));
    }
}

pub fn active_feeds_excludes_disabled_and_failing_and_set_clears_a_failure(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    for g in 1..=4 {
        store
            .set_feed(feed_of(g, 100 + g), &weekly_spec(), now)
            .unwrap();
    }
    store.disable_feed(feed_of(2, 102), now).unwrap();
    let failed_at = utc("2026-03-09T09:00:00Z");
    store
        .mark_failing(
            feed_of(3, 103),
            "403 Missing Access on channel 103",
            failed_at,
        )
        .unwrap();
    store
        .mark_failing(feed_of(99, 1), "no such server", failed_at)
        .unwrap(); // nothing to mark
    assert_eq!(store.feed(feed_of(99, 1)).unwrap(), None);
    assert_eq!(guild_ids(&store.active_feeds().unwrap()), [1, 4]);
    assert_eq!(
        store.feed(feed_of(3, 103)).unwrap().unwrap().failure,
        Some(Failure {
            reason: "403 Missing Access on channel 103".into(),
            at: failed_at,
        })
    );

    // A failing feed of a server does not stop its other feeds.
    store
        .set_feed(feed_of(3, 203), &weekly_spec(), now)
        .unwrap();
    assert_eq!(
        feed_ids(&store.active_feeds().unwrap()),
        [feed_of(1, 101), feed_of(3, 203), feed_of(4, 104)]
    );
    let reset = store
        .set_feed(feed_of(3, 103), &weekly_spec(), utc("2026-03-10T12:00:00Z"))
        .unwrap();
    assert_eq!(reset.failure, None);
    assert_eq!(reset.active_since, utc("2026-03-10T12:00:00Z"));
    assert_eq!(
        feed_ids(&store.active_feeds().unwrap()),
        [
            feed_of(1, 101),
            feed_of(3, 103),
            feed_of(3, 203),
            feed_of(4, 104)
        ],
        "ordered by server, then channel"
    );
}

pub fn a_stored_schedule_that_no_longer_parses_is_an_error_for_that_feed_only(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    store.set_feed(feed_of(1, 10), &weekly_spec(), now).unwrap();
    store.set_feed(feed_of(2, 20), &weekly_spec(), now).unwrap();
    store.set_feed(feed_of(2, 21), &weekly_spec(), now).unwrap();
    h.exec("UPDATE feed SET zone = 'Mars/Olympus_Mons' WHERE guild_id = 2 AND channel_id = 20")
        .unwrap();
    let err = store.feed(feed_of(2, 20)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                guild_id: 2,
                table: "feed",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("Mars/Olympus_Mons"), "{message}");
    assert!(message.contains("server 2"), "{message}");
    assert!(message.contains(&store.describe()), "{message}");
    assert!(matches!(
        store.feeds(2).unwrap_err(),
        StoreError::BadRow { guild_id: 2, .. }
    ));
    assert!(store.feed(feed_of(2, 21)).unwrap().is_some());
    assert_eq!(
        feed_ids(&store.active_feeds().unwrap()),
        [feed_of(1, 10), feed_of(2, 21)],
        "the broken row is skipped, the others still run"
    );
    // /weekly set replaces the broken row.
    store.set_feed(feed_of(2, 20), &weekly_spec(), now).unwrap();
    assert!(store.feed(feed_of(2, 20)).unwrap().is_some());
    assert_eq!(store.feeds(2).unwrap().len(), 2);
}

pub fn active_feeds_reads_ten_thousand_servers_quickly(h: &impl Harness) {
    let store = h.open();
    h.insert_feeds(10_000);
    let started = std::time::Instant::now();
    let active = store.active_feeds().unwrap();
    let took = started.elapsed();
    assert_eq!(active.len(), 10_000);
    assert_eq!(active[0].schedule, monday_9_london());
    assert!(
        active.windows(2).all(|w| w[0].feed < w[1].feed),
        "ordered by feed"
    );
    // Typically a few milliseconds in release and tens in a debug build.
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
}

pub fn a_server_may_have_ten_feeds_and_an_eleventh_is_refused(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    assert_eq!(MAX_FEEDS_PER_SERVER, 10);
    for channel in 1..=10 {
        store
            .set_feed(feed_of(GUILD, channel), &weekly_spec(), now)
            .unwrap();
    }
    let before = store.feeds(GUILD).unwrap();
    let err = store
        .set_feed(
            feed_of(GUILD, 11),
            &weekly_spec(),
            utc("2026-03-04T10:00:00Z"),
        )
        .unwrap_err();
    assert_limit(err, Limit::Feeds, MAX_FEEDS_PER_SERVER);
    assert_eq!(store.feed(feed_of(GUILD, 11)).unwrap(), None);
    assert_eq!(store.feeds(GUILD).unwrap(), before, "nothing changed");

    // Changing one of the ten is not adding one.
    let daily = FeedSpec::plain(Schedule::new(Cadence::Daily, hm(8, 0), London));
    let changed = store
        .set_feed(feed_of(GUILD, 5), &daily, utc("2026-03-04T10:00:00Z"))
        .unwrap();
    assert_eq!(changed.schedule, daily.schedule);
    // Nor is turning one off and on again.
    store.disable_feed(feed_of(GUILD, 6), now).unwrap();
    store
        .set_feed(feed_of(GUILD, 6), &weekly_spec(), now)
        .unwrap();
    assert_eq!(store.feeds(GUILD).unwrap().len(), 10);
    // A feed that is off does not count: with one off, an eleventh channel may start...
    store.disable_feed(feed_of(GUILD, 6), now).unwrap();
    store
        .set_feed(feed_of(GUILD, 11), &weekly_spec(), now)
        .unwrap();
    // ...and then the one that is off cannot come back on without another going off.
    let err = store
        .set_feed(feed_of(GUILD, 6), &weekly_spec(), now)
        .unwrap_err();
    assert_limit(err, Limit::Feeds, MAX_FEEDS_PER_SERVER);
    assert!(!store.feed(feed_of(GUILD, 6)).unwrap().unwrap().enabled);
    // The limit is per server.
    store
        .set_feed(feed_of(OTHER_GUILD, 11), &weekly_spec(), now)
        .unwrap();
    // Feeds kept, on or off, are bounded too: turn channels off and start new ones until the
    // server keeps MAX_KEPT_FEEDS_PER_SERVER.
    let mut channel = 12;
    while store.feeds(GUILD).unwrap().len() < MAX_KEPT_FEEDS_PER_SERVER {
        store
            .disable_feed(feed_of(GUILD, channel - 1), now)
            .unwrap();
        store
            .set_feed(feed_of(GUILD, channel), &weekly_spec(), now)
            .unwrap();
        channel += 1;
    }
    store
        .disable_feed(feed_of(GUILD, channel - 1), now)
        .unwrap();
    let err = store
        .set_feed(feed_of(GUILD, channel), &weekly_spec(), now)
        .unwrap_err();
    assert_limit(err, Limit::KeptFeeds, MAX_KEPT_FEEDS_PER_SERVER);
    // A channel kept (off) may still be turned back on.
    store
        .set_feed(feed_of(GUILD, channel - 1), &weekly_spec(), now)
        .unwrap();
}

/// Two processes adding feeds to one server at once: the count each checks stays true until it
/// commits, so the server never has more than ten.
pub fn two_handles_adding_feeds_at_once_never_exceed_the_limit(h: &impl Harness) {
    let first = h.open(); // creates the schema
    let barrier = Barrier::new(2);
    // Per racer and attempt: added (true) or refused at the limit (false); any other outcome
    // is an error, collected rather than raised so that the other racer is not left waiting.
    let results: Vec<Result<bool, String>> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2u64)
            .map(|n| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let store = h.try_open();
                    (0..8u64)
                        .map(|i| {
                            barrier.wait();
                            let store = store.as_ref().map_err(|e| format!("open: {e}"))?;
                            let feed = feed_of(GUILD, 100 * (n + 1) + i);
                            let now = utc("2026-03-03T10:00:00Z");
                            match store.set_feed(feed, &weekly_spec(), now) {
                                Ok(_) => Ok(true),
                                Err(StoreError::Limit {
                                    what: Limit::Feeds, ..
                                }) => Ok(false),
                                Err(e) => Err(format!("{feed}: {e}")),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        racers.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let outcomes: Vec<bool> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let added = outcomes.iter().filter(|&&added| added).count();
    assert_eq!(added, MAX_FEEDS_PER_SERVER, "{outcomes:?}");
    assert_eq!(first.feeds(GUILD).unwrap().len(), MAX_FEEDS_PER_SERVER);
}

pub fn pausing_and_resuming_a_feed(h: &impl Harness) {
    let store = h.open();
    let set_at = utc("2026-03-03T10:00:00Z");
    let other = feed_of(GUILD, CHANNEL + 1);
    store.set_feed(FEED, &weekly_spec(), set_at).unwrap();
    store.set_feed(other, &weekly_spec(), set_at).unwrap();
    assert!(!store
        .set_pause(feed_of(GUILD, 1), Some(Pause::Indefinitely), set_at)
        .unwrap());
    assert!(!store.set_pause(feed_of(GUILD, 1), None, set_at).unwrap());

    // Paused indefinitely: not the poster's any more.
    let paused_at = utc("2026-03-04T10:00:00Z");
    assert!(store
        .set_pause(FEED, Some(Pause::Indefinitely), paused_at)
        .unwrap());
    let paused = store.feed(FEED).unwrap().unwrap();
    assert_eq!(paused.pause, Some(Pause::Indefinitely));
    assert_eq!(paused.active_since, set_at, "pausing keeps active_since");
    assert!(paused.enabled);
    assert_eq!(feed_ids(&store.active_feeds().unwrap()), [other]);

    // Paused until a date: still the poster's, which respects the date.
    let until = day("2026-04-06");
    assert!(store
        .set_pause(FEED, Some(Pause::Until(until)), paused_at)
        .unwrap());
    let active = store.active_feeds().unwrap();
    assert_eq!(feed_ids(&active), [FEED, other]);
    assert_eq!(active[0].pause, Some(Pause::Until(until)));
    assert_eq!(
        store.feed(FEED).unwrap().unwrap().pause,
        Some(Pause::Until(until))
    );
    assert_eq!(store.feed(other).unwrap().unwrap().pause, None);

    // Resumed: unpaused, and active from now (a slot missed while paused is not posted late).
    let resumed_at = utc("2026-03-20T08:30:00Z");
    store
        .set_pause(FEED, Some(Pause::Indefinitely), paused_at)
        .unwrap();
    assert!(store.set_pause(FEED, None, resumed_at).unwrap());
    let resumed = store.feed(FEED).unwrap().unwrap();
    assert_eq!(resumed.pause, None);
    assert_eq!(resumed.active_since, resumed_at);
    assert_eq!(resumed.updated_at, resumed_at);
    assert_eq!(feed_ids(&store.active_feeds().unwrap()), [FEED, other]);

    // /weekly set clears a pause too.
    store
        .set_pause(other, Some(Pause::Until(until)), paused_at)
        .unwrap();
    let reset = store.set_feed(other, &weekly_spec(), resumed_at).unwrap();
    assert_eq!(reset.pause, None);
    assert_eq!(store.feed(other).unwrap().unwrap().pause, None);
}

// ---- claims ----

pub fn claiming_a_period_twice_returns_the_first_claim_and_advances_the_rotation_once(
    h: &impl Harness,
) {
    let store = h.open();
    let ids = ids(5);
    let mut rng = StdRng::seed_from_u64(9);
    let Some(Claim::Claimed(first)) = claim_week(&store, &mut rng, &ids, 10) else {
        panic!("the first claim should claim");
    };
    assert_eq!(first.feed, FEED);
    assert_eq!(first.period, week(10));
    assert_eq!(first.channel_id, CHANNEL);
    assert_eq!(first.nonce, post_nonce(FEED, week(10)));
    assert_eq!(first.source, PostSource::Schedule);
    assert_eq!(first.claimed_at, utc("2026-03-02T09:00:00Z"));
    assert_eq!(first.attempts, 0);
    assert_eq!(first.message_id, None);
    assert!(!first.thread_wanted, "no feed, no thread");
    assert!(!first.is_confirmed());
    let rotation = store.rotation(FEED).unwrap();
    assert_eq!((rotation.cycle, rotation.shown), (1, 1));

    let again = store
        .claim(
            FEED,
            week(10),
            &refs(&ids),
            PostSource::PostNow,
            &mut rng,
            utc("2026-03-02T09:30:00Z"),
        )
        .unwrap();
    assert_eq!(again, Some(Claim::AlreadyClaimed(first.clone())));
    assert_eq!(
        store.rotation(FEED).unwrap(),
        rotation,
        "advanced only once"
    );

    // Still AlreadyClaimed when confirmed, and even with an empty collection.
    store
        .confirm_post(FEED, week(10), 5, utc("2026-03-02T09:00:02Z"))
        .unwrap();
    let confirmed = claim_week(&store, &mut rng, &[], 10).unwrap();
    assert!(
        matches!(&confirmed, Claim::AlreadyClaimed(r) if r.insight_id == first.insight_id && r.message_id == Some(5))
    );

    // A day's period is claimed once too, with its own nonce.
    let today = day_period("2026-03-02");
    let Some(Claim::Claimed(daily)) = claim_in(&store, FEED, today, &mut rng, &refs(&ids)) else {
        panic!("a day's first claim should claim");
    };
    assert_eq!(daily.nonce, post_nonce(FEED, today));
    assert_ne!(daily.nonce, first.nonce);
    assert!(matches!(
        claim_in(&store, FEED, today, &mut rng, &refs(&ids)),
        Some(Claim::AlreadyClaimed(r)) if r == daily
    ));
}

pub fn an_empty_collection_claims_nothing(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(claim_week(&store, &mut rng, &[], 10), None);
    assert_eq!(store.post(FEED, week(10)).unwrap(), None);
    assert_eq!(store.rotation(FEED).unwrap(), RotationState::default());
}

pub fn a_period_that_does_not_exist_is_refused(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(1);
    // 2025 has 52 ISO weeks (2026 has 53).
    for bad in [week_of(2025, 53), week_of(2026, 0)] {
        let err = store
            .claim(
                FEED,
                bad,
                &["a"],
                PostSource::Schedule,
                &mut rng,
                Utc::now(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidPeriod { .. }), "{err:?}");
        let err = store.skip(FEED, bad, Utc::now()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidPeriod { .. }), "{err:?}");
    }
    assert_eq!(store.rotation(FEED).unwrap(), RotationState::default());
    assert!(store
        .claimed_slots_since(day("2000-01-03"))
        .unwrap()
        .is_empty());
}

pub fn eleven_weeks_show_eleven_insights_once_each_across_a_restart(h: &impl Harness) {
    let ids = ids(11);
    let mut shown = Vec::new();
    {
        let store = h.open();
        let mut rng = StdRng::seed_from_u64(21);
        for w in 1..=5 {
            let claim = claim_week(&store, &mut rng, &ids, w).unwrap();
            assert!(matches!(claim, Claim::Claimed(_)));
            shown.push(claim.into_record().insight_id);
        }
    }
    let store = h.open();
    // A different rng after the restart: the order is in the store, not in the rng.
    let mut rng = StdRng::seed_from_u64(22);
    for w in 6..=11 {
        shown.push(
            claim_week(&store, &mut rng, &ids, w)
                .unwrap()
                .into_record()
                .insight_id,
        );
    }
    let distinct: BTreeSet<&String> = shown.iter().collect();
    assert_eq!(distinct.len(), 11, "{shown:?}");
    let rotation = store.rotation(FEED).unwrap();
    assert_eq!((rotation.cycle, rotation.shown), (1, 11));
}

/// Two feeds of one server: the same period claimed in each, each with its own rotation, nonce,
/// confirmation and release.
pub fn two_feeds_of_one_server_have_their_own_rotation_and_post_log(h: &impl Harness) {
    let store = h.open();
    let ids = ids(4);
    let mut rng = StdRng::seed_from_u64(31);
    let other = feed_of(GUILD, CHANNEL + 1);
    let now = utc("2026-03-09T09:00:00Z");
    store.set_feed(FEED, &weekly_spec(), now).unwrap();
    store.set_feed(other, &weekly_spec(), now).unwrap();

    for w in 10..=12 {
        assert!(matches!(
            claim_week(&store, &mut rng, &ids, w),
            Some(Claim::Claimed(_))
        ));
    }
    let Some(Claim::Claimed(theirs)) = claim_in(&store, other, week(10), &mut rng, &refs(&ids))
    else {
        panic!("the other feed's week 10 is its own");
    };
    assert_eq!((theirs.feed, theirs.channel_id), (other, CHANNEL + 1));
    assert_ne!(theirs.nonce, post_nonce(FEED, week(10)));
    assert_eq!(theirs.nonce, post_nonce(other, week(10)));
    assert_eq!(store.rotation(FEED).unwrap().shown, 3);
    assert_eq!(store.rotation(other).unwrap().shown, 1);

    store.confirm_post(FEED, week(10), 1010, now).unwrap();
    assert_eq!(store.post(other, week(10)).unwrap(), Some(theirs.clone()));
    assert_eq!(store.last_post(other).unwrap(), None);
    assert_eq!(
        store.last_post(FEED).unwrap().unwrap().message_id,
        Some(1010)
    );
    assert_eq!(
        keys(&store.unconfirmed_posts().unwrap()),
        [(other, week(10)), (FEED, week(11)), (FEED, week(12))]
    );

    // Releasing one feed's claim leaves the other's.
    store.release_claim(other, week(10)).unwrap();
    assert_eq!(store.post(other, week(10)).unwrap(), None);
    assert!(store.post(FEED, week(10)).unwrap().is_some());
    let claimed = store.claimed_slots_since(day("2026-03-02")).unwrap();
    assert!(claimed.contains(&(FEED, week(10))));
    assert!(!claimed.contains(&(other, week(10))));
    // Another server's feed with the same period is apart too.
    assert!(matches!(
        claim_in(
            &store,
            feed_of(OTHER_GUILD, CHANNEL),
            week(10),
            &mut rng,
            &refs(&ids)
        ),
        Some(Claim::Claimed(_))
    ));
}

/// `/weekly skip`: the period is taken (no path posts it), the rotation does not move, and
/// nothing waits for it.
pub fn a_skipped_period_is_taken_without_a_post_or_a_rotation_step(h: &impl Harness) {
    let store = h.open();
    let ids = ids(4);
    let mut rng = StdRng::seed_from_u64(41);
    let thread = FeedSpec {
        thread: true,
        ..weekly_spec()
    };
    store
        .set_feed(FEED, &thread, utc("2026-03-01T00:00:00Z"))
        .unwrap();
    claim_week(&store, &mut rng, &ids, 10).unwrap();
    let rotation = store.rotation(FEED).unwrap();

    let skipped_at = utc("2026-03-10T12:00:00Z");
    let Claim::Claimed(skip) = store.skip(FEED, week(11), skipped_at).unwrap() else {
        panic!("an unclaimed week is skipped");
    };
    assert_eq!(
        (skip.feed, skip.period, skip.source),
        (FEED, week(11), PostSource::Skip)
    );
    assert_eq!(skip.insight_id, "");
    assert_eq!(skip.claimed_at, skipped_at);
    assert_eq!((skip.message_id, skip.attempts), (None, 0));
    assert!(!skip.thread_wanted, "a skip has no thread");
    assert_eq!(store.post(FEED, week(11)).unwrap(), Some(skip.clone()));
    assert_eq!(store.rotation(FEED).unwrap(), rotation, "no rotation step");

    // Every path finds the period taken.
    assert_eq!(
        claim_week(&store, &mut rng, &ids, 11),
        Some(Claim::AlreadyClaimed(skip.clone()))
    );
    assert_eq!(
        store.skip(FEED, week(11), skipped_at).unwrap(),
        Claim::AlreadyClaimed(skip.clone())
    );
    assert_eq!(store.rotation(FEED).unwrap(), rotation);
    assert!(store
        .claimed_slots_since(day("2026-03-09"))
        .unwrap()
        .contains(&(FEED, week(11))));
    // Nothing to send, confirm, resume or make a thread for.
    assert_eq!(
        keys(&store.unconfirmed_posts().unwrap()),
        [(FEED, week(10))]
    );
    for err in [
        store
            .record_attempt(FEED, week(11), skipped_at, None, None)
            .unwrap_err(),
        store
            .confirm_post(FEED, week(11), 7, skipped_at)
            .unwrap_err(),
        store
            .record_thread(FEED, week(11), Ok(7), skipped_at)
            .unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    }
    // Never released: a skip is not a failed send.
    store.release_claim(FEED, week(11)).unwrap();
    assert_eq!(store.post(FEED, week(11)).unwrap(), Some(skip.clone()));
    assert_eq!(store.last_post(FEED).unwrap(), None, "a skip is no post");

    // Skipping a claimed period finds the claim, and changes nothing.
    let claimed = store.post(FEED, week(10)).unwrap().unwrap();
    assert_eq!(
        store.skip(FEED, week(10), skipped_at).unwrap(),
        Claim::AlreadyClaimed(claimed.clone())
    );
    assert_eq!(store.post(FEED, week(10)).unwrap(), Some(claimed));
    // The rotation goes on where it was.
    let next = claim_week(&store, &mut rng, &ids, 12)
        .unwrap()
        .into_record();
    assert_eq!(Some(next.insight_id.as_str()), rotation.peek(&refs(&ids)));
    assert_eq!(store.rotation(FEED).unwrap().shown, 2);
    // A day can be skipped too.
    assert!(matches!(
        store.skip(FEED, day_period("2026-03-14"), skipped_at),
        Ok(Claim::Claimed(r)) if r.source == PostSource::Skip
    ));
}

pub fn threads_are_wanted_recorded_once_and_never_replaced(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(51);
    let set_at = utc("2026-03-01T00:00:00Z");
    let t = |s: &str| utc(&format!("2026-03-09T{s}Z"));
    let with_thread = FeedSpec {
        thread: true,
        ..weekly_spec()
    };
    store.set_feed(FEED, &with_thread, set_at).unwrap();

    let claimed = claim_week(&store, &mut rng, &ids(3), 11)
        .unwrap()
        .into_record();
    assert!(claimed.thread_wanted);
    assert!(!claimed.awaits_thread(), "not sent yet");
    assert_eq!(store.posts_awaiting_thread(set_at).unwrap(), vec![]);
    let err = store
        .record_thread(FEED, week(11), Ok(1), t("09:00:00"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");

    store
        .confirm_post(FEED, week(11), 900, t("09:00:01"))
        .unwrap();
    let posted = store.post(FEED, week(11)).unwrap().unwrap();
    assert!(posted.awaits_thread());
    assert_eq!(
        store.posts_awaiting_thread(set_at).unwrap(),
        vec![posted.clone()]
    );
    assert_eq!(
        store.posts_awaiting_thread(t("09:00:01")).unwrap(),
        vec![posted.clone()],
        "since is inclusive"
    );
    assert_eq!(store.posts_awaiting_thread(t("09:00:02")).unwrap(), vec![]);

    // A failed try is kept, and the post still waits for its thread.
    store
        .record_thread(
            FEED,
            week(11),
            Err("403 Missing Permissions"),
            t("09:00:02"),
        )
        .unwrap();
    let failed = store.post(FEED, week(11)).unwrap().unwrap();
    assert_eq!(
        (failed.thread_id, failed.thread_error.as_deref()),
        (None, Some("403 Missing Permissions"))
    );
    assert_eq!(store.posts_awaiting_thread(set_at).unwrap(), vec![failed]);

    // The thread, once recorded, is the one kept.
    store
        .record_thread(FEED, week(11), Ok(901), t("09:01:00"))
        .unwrap();
    let threaded = store.post(FEED, week(11)).unwrap().unwrap();
    assert!(!threaded.awaits_thread());
    assert_eq!(
        (threaded.thread_id, threaded.thread_error),
        (Some(901), None)
    );
    assert_eq!(store.posts_awaiting_thread(set_at).unwrap(), vec![]);
    store
        .record_thread(FEED, week(11), Ok(902), t("09:02:00"))
        .unwrap();
    store
        .record_thread(FEED, week(11), Err("late failure"), t("09:03:00"))
        .unwrap();
    let kept = store.post(FEED, week(11)).unwrap().unwrap();
    assert_eq!((kept.thread_id, kept.thread_error), (Some(901), None));

    // Whether a thread is wanted is decided at the claim: changing the feed later keeps it.
    store.set_feed(FEED, &weekly_spec(), set_at).unwrap();
    assert!(store.post(FEED, week(11)).unwrap().unwrap().thread_wanted);
    let plain_claim = claim_week(&store, &mut rng, &ids(3), 12)
        .unwrap()
        .into_record();
    assert!(!plain_claim.thread_wanted);

    // A forum post is a thread already.
    let forum = feed_of(GUILD, CHANNEL + 1);
    let forum_spec = FeedSpec {
        thread: true,
        forum: true,
        ..weekly_spec()
    };
    store.set_feed(forum, &forum_spec, set_at).unwrap();
    let forum_post = claim_in(&store, forum, week(11), &mut rng, &["a"])
        .unwrap()
        .into_record();
    assert!(!forum_post.thread_wanted);
    store
        .confirm_post(forum, week(11), 903, t("09:00:05"))
        .unwrap();
    store
        .confirm_post(FEED, week(12), 904, t("09:00:06"))
        .unwrap();
    assert_eq!(store.posts_awaiting_thread(set_at).unwrap(), vec![]);

    // Oldest first, across feeds.
    let second = feed_of(GUILD, CHANNEL + 2);
    store.set_feed(second, &with_thread, set_at).unwrap();
    store.set_feed(FEED, &with_thread, set_at).unwrap();
    for feed in [second, FEED] {
        claim_in(&store, feed, week(13), &mut rng, &["a"]).unwrap();
    }
    store
        .confirm_post(second, week(13), 905, t("10:00:00"))
        .unwrap();
    store
        .confirm_post(FEED, week(13), 906, t("09:30:00"))
        .unwrap();
    let awaiting = store.posts_awaiting_thread(set_at).unwrap();
    assert_eq!(
        awaiting
            .iter()
            .map(|r| (r.feed, r.message_id))
            .collect::<Vec<_>>(),
        [(FEED, Some(906)), (second, Some(905))]
    );
}

pub fn the_primary_key_refuses_a_second_row_for_the_same_period(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(2);
    claim_week(&store, &mut rng, &ids(3), 10).unwrap();
    let err = h
        .exec(&format!(
            "INSERT INTO feed_post (guild_id, feed_channel_id, period, period_start, channel_id, \
                 insight_id, nonce, source, claimed_at, updated_at) \
             VALUES ({GUILD}, {CHANNEL}, '2026-W10', '2026-03-02', 1, 'other', 'n', 'post_now', \
                 '2026-03-02T09:00:00.000Z', '2026-03-02T09:00:00.000Z')"
        ))
        .unwrap_err();
    assert!(err.to_lowercase().contains("unique"), "{err}");
}
pub fn two_handles_racing_for_the_same_weeks_claim_each_week_once(h: &impl Harness) {
    const WEEKS: u32 = 22;
    let ids = ids(11);
    let barrier = Barrier::new(2);
    let results: Vec<Vec<Claim>> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2u64)
            .map(|n| {
                let (ids, barrier) = (&ids, &barrier);
                scope.spawn(move || {
                    // Both open the new database at once too: its schema is created once.
                    barrier.wait();
                    let store = h.try_open();
                    let mut rng = StdRng::seed_from_u64(100 + n);
                    // Errors are collected, not unwrapped here: a racer that stopped early
                    // would leave the other waiting at the barrier forever.
                    (1..=WEEKS)
                        .map(|w| {
                            barrier.wait();
                            match &store {
                                Ok(store) => store
                                    .claim(
                                        FEED,
                                        week(w),
                                        &refs(ids),
                                        PostSource::Schedule,
                                        &mut rng,
                                        utc("2026-03-02T09:00:00Z"),
                                    )
                                    .map_err(|e| format!("week {w}: {e}"))
                                    .and_then(|c| c.ok_or(format!("week {w}: nothing claimed"))),
                                Err(e) => Err(format!("open: {e}")),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap()
                    .into_iter()
                    .collect::<Result<Vec<Claim>, String>>()
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    });
    let mut firsts = Vec::new();
    assert_eq!((results[0].len(), results[1].len()), (22, 22));
    for (w, (a, b)) in (1..).zip(results[0].iter().zip(&results[1])) {
        let claimed = [a, b]
            .iter()
            .filter(|c| matches!(c, Claim::Claimed(_)))
            .count();
        assert_eq!(claimed, 1, "week {w}: {a:?} / {b:?}");
        assert_eq!(a.record(), b.record(), "both see the same post");
        firsts.push(a.record().insight_id.clone());
    }
    // Every claim advanced the rotation exactly once: two full cycles of 11.
    let first_cycle: BTreeSet<&String> = firsts[..11].iter().collect();
    let second_cycle: BTreeSet<&String> = firsts[11..].iter().collect();
    assert_eq!(
        (first_cycle.len(), second_cycle.len()),
        (11, 11),
        "{firsts:?}"
    );
    let rotation = h.open().rotation(FEED).unwrap();
    assert_eq!((rotation.cycle, rotation.shown), (2, 11));
}

/// Two processes posting for one server at once, for different weeks (a `post-now` beside a
/// schedule, or overlapping shard ranges): each claim advances the rotation from the state the
/// other left, so no insight repeats within a cycle.
pub fn two_handles_claiming_different_weeks_of_one_server_advance_its_rotation_in_turn(
    h: &impl Harness,
) {
    let ids = ids(11);
    let first = h.open(); // creates the schema
    let barrier = Barrier::new(2);
    let shown: Vec<String> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2u32)
            .map(|n| {
                let (ids, barrier) = (&ids, &barrier);
                scope.spawn(move || {
                    let store = h.try_open();
                    let mut rng = StdRng::seed_from_u64(200 + u64::from(n));
                    // Weeks 1, 3, .. 21 for one, 2, 4, .. 22 for the other, in lockstep.
                    (0..11)
                        .map(|i| {
                            barrier.wait();
                            let store = store.as_ref().map_err(|e| format!("open: {e}"))?;
                            let w = 2 * i + 1 + n;
                            match store.claim(
                                FEED,
                                week(w),
                                &refs(ids),
                                PostSource::Schedule,
                                &mut rng,
                                utc("2026-03-02T09:00:00Z"),
                            ) {
                                Ok(Some(Claim::Claimed(r))) => Ok(r.insight_id),
                                other => Err(format!("week {w}: {other:?}")),
                            }
                        })
                        .collect::<Vec<Result<String, String>>>()
                })
            })
            .collect();
        racers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Result<Vec<String>, String>>()
            .unwrap_or_else(|e| panic!("{e}"))
    });
    assert_eq!(shown.len(), 22);
    let rotation = first.rotation(FEED).unwrap();
    assert_eq!(
        (rotation.cycle, rotation.shown),
        (2, 11),
        "22 steps, none lost"
    );
    // Whatever the interleaving, the weeks' insights in claim order are two cycles of 11.
    let by_week: Vec<String> = (1..=22)
        .map(|w| first.post(FEED, week(w)).unwrap().unwrap().insight_id)
        .collect();
    let distinct: HashSet<&String> = by_week.iter().collect();
    assert_eq!(distinct.len(), 11, "{by_week:?}");
    let mut counts = std::collections::HashMap::new();
    for id in &by_week {
        *counts.entry(id).or_insert(0) += 1;
    }
    assert!(counts.values().all(|&c| c == 2), "{counts:?}");
}

pub fn attempts_confirmation_and_release(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(5);
    let ids = ids(4);
    let t = |s: &str| utc(&format!("2026-03-09T{s}Z"));

    let err = store
        .record_attempt(FEED, week(11), t("09:00:00"), None, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    let err = store
        .confirm_post(FEED, week(11), 1, t("09:00:00"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    assert!(err.to_string().contains(&store.describe()), "{err}");

    let claimed = claim_week(&store, &mut rng, &ids, 11)
        .unwrap()
        .into_record();
    // Before the send: counted, nothing to retry.
    let r = store
        .record_attempt(FEED, week(11), t("09:00:00"), None, None)
        .unwrap();
    assert_eq!(
        (r.attempts, r.last_error.as_deref(), r.retry_at),
        (1, None, None)
    );
    // After a failed send: the error and when to retry, not another attempt.
    let retry = t("09:05:00");
    let r = store
        .record_attempt(
            FEED,
            week(11),
            t("09:00:01"),
            Some("503 upstream"),
            Some(retry),
        )
        .unwrap();
    assert_eq!(
        (r.attempts, r.last_error.as_deref(), r.retry_at),
        (1, Some("503 upstream"), Some(retry))
    );
    assert_eq!(store.unconfirmed_posts().unwrap(), vec![r.clone()]);
    // The next send clears them and counts again.
    let r = store
        .record_attempt(FEED, week(11), t("09:05:00"), None, None)
        .unwrap();
    assert_eq!(
        (r.attempts, r.last_error.as_deref(), r.retry_at),
        (2, None, None)
    );

    store
        .confirm_post(FEED, week(11), 777, t("09:05:01"))
        .unwrap();
    let posted = store.post(FEED, week(11)).unwrap().unwrap();
    assert!(posted.is_confirmed());
    assert_eq!(posted.message_id, Some(777));
    assert_eq!(posted.posted_at, Some(t("09:05:01")));
    assert_eq!(
        (
            posted.insight_id.as_str(),
            posted.nonce.as_str(),
            posted.attempts
        ),
        (claimed.insight_id.as_str(), claimed.nonce.as_str(), 2)
    );
    assert_eq!(store.last_post(FEED).unwrap(), Some(posted.clone()));
    assert_eq!(store.unconfirmed_posts().unwrap(), vec![]);

    // Confirming again keeps the first message; releasing a confirmed post does nothing.
    store
        .confirm_post(FEED, week(11), 888, t("09:06:00"))
        .unwrap();
    store.release_claim(FEED, week(11)).unwrap();
    assert_eq!(store.post(FEED, week(11)).unwrap(), Some(posted.clone()));
    // A confirmed post takes no further attempt: nothing may be sent for it again.
    let err = store
        .record_attempt(FEED, week(11), t("09:07:00"), None, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    assert_eq!(store.post(FEED, week(11)).unwrap(), Some(posted.clone()));

    // An unconfirmed claim is released, and the week can be claimed again.
    claim_week(&store, &mut rng, &ids, 12).unwrap();
    store.release_claim(FEED, week(12)).unwrap();
    assert_eq!(store.post(FEED, week(12)).unwrap(), None);
    store.release_claim(FEED, week(12)).unwrap(); // nothing left: still fine
    let err = store
        .record_attempt(FEED, week(12), t("09:10:00"), None, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    assert!(matches!(
        claim_week(&store, &mut rng, &ids, 12),
        Some(Claim::Claimed(_))
    ));
    // last_post is the latest *confirmed* week.
    assert_eq!(store.last_post(FEED).unwrap(), Some(posted));
}

pub fn last_post_orders_by_period_across_years(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(8);
    let now = utc("2026-01-01T00:00:00Z");
    assert_eq!(store.last_post(FEED).unwrap(), None);
    for (n, period) in [week_of(2025, 52), week_of(2026, 1), week_of(2025, 3)]
        .into_iter()
        .enumerate()
    {
        claim_in(&store, FEED, period, &mut rng, &["a", "b"]).unwrap();
        store.confirm_post(FEED, period, n as u64 + 1, now).unwrap();
    }
    // An unconfirmed claim and a skip of later periods are not posts.
    claim_in(&store, FEED, week_of(2026, 2), &mut rng, &["a", "b"]).unwrap();
    store.skip(FEED, week_of(2026, 3), now).unwrap();
    let last = store.last_post(FEED).unwrap().unwrap();
    assert_eq!(last.period, week_of(2026, 1));

    // By the day a period starts, not by its text: 2025-12-23 is after the Monday of 2025-W52.
    let other = feed_of(GUILD, CHANNEL + 1);
    assert_eq!(store.last_post(other).unwrap(), None);
    for period in [day_period("2025-12-23"), week_of(2025, 52)] {
        claim_in(&store, other, period, &mut rng, &["a", "b"]).unwrap();
        store.confirm_post(other, period, 9, now).unwrap();
    }
    assert_eq!(
        store.last_post(other).unwrap().unwrap().period,
        day_period("2025-12-23")
    );
}

pub fn unconfirmed_posts_lists_only_unconfirmed_claims_oldest_period_first(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(6);
    let now = utc("2026-03-09T09:00:00Z");
    let mut claim = |feed: FeedId, period: Period| {
        store
            .claim(
                feed,
                period,
                &["a", "b", "c"],
                PostSource::Schedule,
                &mut rng,
                now,
            )
            .unwrap()
            .unwrap()
            .into_record()
    };
    let a = claim(feed_of(1, CHANNEL), week(11));
    let b = claim(feed_of(2, CHANNEL), week(10));
    claim(feed_of(3, CHANNEL), week(11));
    let c = claim(feed_of(4, CHANNEL), week_of(2025, 52));
    let d = claim(feed_of(0, CHANNEL), week(11));
    // By the period's first day: Monday 2026-03-09 before Tuesday 2026-03-10, a day before the
    // Monday of its week.
    let e = claim(feed_of(1, 5), day_period("2026-03-10"));
    let f = claim(feed_of(1, 6), day_period("2026-03-08"));
    let g = claim(feed_of(1, 4), week(11));
    store
        .confirm_post(feed_of(3, CHANNEL), week(11), 33, now)
        .unwrap();
    store.skip(feed_of(5, CHANNEL), week(11), now).unwrap();
    let pending = keys(&store.unconfirmed_posts().unwrap());
    assert_eq!(
        pending,
        [
            (c.feed, c.period),
            (b.feed, b.period),
            (f.feed, f.period),
            (d.feed, d.period),
            (g.feed, g.period),
            (a.feed, a.period),
            (e.feed, e.period),
        ]
    );
}

pub fn claimed_slots_since_lists_every_claim_from_a_date_on_across_years(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(7);
    let now = utc("2026-01-05T09:00:00Z");
    let (one, two, three) = (feed_of(1, 10), feed_of(2, 20), feed_of(3, 30));
    for (feed, period) in [
        (one, week_of(2025, 50)),
        (one, week_of(2025, 52)), // starts Monday 2025-12-22
        (two, week_of(2026, 1)),
        (three, week_of(2026, 2)),
        (three, week_of(2027, 1)),
        (one, day_period("2025-12-21")),
        (one, day_period("2025-12-22")),
    ] {
        claim_in(&store, feed, period, &mut rng, &["a"]).unwrap();
    }
    store.confirm_post(two, week_of(2026, 1), 21, now).unwrap();
    store.skip(two, week_of(2026, 2), now).unwrap();
    assert!(store
        .claimed_slots_since(day("2027-01-05"))
        .unwrap()
        .is_empty());
    let since = store.claimed_slots_since(day("2025-12-22")).unwrap();
    let expected: HashSet<(FeedId, Period)> = [
        (one, week_of(2025, 52)),
        (one, day_period("2025-12-22")),
        (two, week_of(2026, 1)), // confirmed or not
        (two, week_of(2026, 2)), // or skipped
        (three, week_of(2026, 2)),
        (three, week_of(2027, 1)),
    ]
    .into();
    assert_eq!(since, expected);
    // A week counts from its Monday: since a Tuesday, that week is not listed.
    assert!(!store
        .claimed_slots_since(day("2025-12-23"))
        .unwrap()
        .contains(&(one, week_of(2025, 52))));
    store.release_claim(three, week_of(2026, 2)).unwrap();
    assert!(!store
        .claimed_slots_since(day("2025-12-22"))
        .unwrap()
        .contains(&(three, week_of(2026, 2))));
}

pub fn a_broken_rotation_row_is_an_error_for_that_feed(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(6);
    claim_week(&store, &mut rng, &ids(3), 1).unwrap();
    h.exec("UPDATE feed_rotation SET state = '[1, 2]'").unwrap();
    let err = store.rotation(FEED).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                table: "feed_rotation",
                guild_id: GUILD,
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .claim(
            FEED,
            week(2),
            &["a"],
            PostSource::Schedule,
            &mut rng,
            Utc::now(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                table: "feed_rotation",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.post(FEED, week(2)).unwrap(), None, "nothing claimed");
    // A skip needs no rotation.
    assert!(matches!(
        store.skip(FEED, week(3), Utc::now()),
        Ok(Claim::Claimed(_))
    ));
    // The server's other feeds and other servers are not affected.
    for other in [feed_of(GUILD, CHANNEL + 1), feed_of(GUILD + 1, CHANNEL)] {
        assert!(store
            .claim(
                other,
                week(2),
                &["a"],
                PostSource::Schedule,
                &mut rng,
                Utc::now(),
            )
            .unwrap()
            .is_some());
    }
}

// ---- the async facade ----

/// The way the bot calls the store: `Store::call` from tasks of a multi-thread runtime, many at
/// once, each running on tokio's blocking pool; and the last handle dropped inside the runtime.
pub fn store_calls_from_inside_a_multi_thread_runtime(h: &impl Harness) {
    let store = Store::new(h.open());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let now = utc("2026-03-09T09:00:00Z");
        let calls: Vec<_> = (1..=16u64)
            .map(|guild| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .call(move |db| {
                            let feed = feed_of(guild, guild);
                            db.set_feed(feed, &weekly_spec(), now)?;
                            let mut rng = StdRng::seed_from_u64(guild);
                            db.claim(
                                feed,
                                week(11),
                                &["a", "b"],
                                PostSource::Schedule,
                                &mut rng,
                                now,
                            )
                        })
                        .await
                })
            })
            .collect();
        for call in calls {
            let claim = call.await.unwrap().unwrap();
            assert!(matches!(claim, Some(Claim::Claimed(_))), "{claim:?}");
        }
        let active = store.call(|db| db.active_feeds()).await.unwrap();
        assert_eq!(active.len(), 16);
        // The last handle goes away on a runtime thread, as at the bot's shutdown.
        drop(store);
    });
}

// ---- a server's own insights ----

const OTHER_GUILD: u64 = 1_100_000_000_000_000_777;
const CURATOR: u64 = 1_300_000_000_000_000_003;
const MEMBER: u64 = 1_400_000_000_000_000_004;

/// A server insight with every field set from `id` and `n`; vectors when `n` is odd.
fn server_insight(guild_id: u64, id: &str, n: u8) -> ServerInsight {
    let at = utc(&format!("2026-04-01T10:00:{:02}.{n:03}Z", n % 60));
    ServerInsight {
        guild_id,
        insight: Insight {
            id: id.to_string(),
            title: format!("Title {n} of {id}"),
            text: format!("Text {n}: \"quoted\", née, 日本, a ' and a \\ too."),
            topics: vec![format!("topic-{n}"), "delegation".into()],
            asks: vec![format!("how do I {id}?"), "what now".into()],
            source: Source {
                title: format!("Book {n}"),
                publisher: "Publisher".into(),
                url: n
                    .is_multiple_of(2)
                    .then(|| format!("https://example.com/{id}/{n}")),
            },
            pack: None,
        },
        created_by: CURATOR + u64::from(n),
        created_at: at,
        updated_at: at,
        vectors: (n % 2 == 1).then(|| StoredVectors {
            fingerprint: u64::MAX - u64::from(n), // above i64::MAX: stored reinterpreted
            // Every byte value, zeros included, and more than a page's worth.
            bytes: (0..9000u32).map(|i| (i * 7 + u32::from(n)) as u8).collect(),
        }),
    }
}

fn insight_ids(list: &[ServerInsight]) -> Vec<&str> {
    list.iter().map(|s| s.insight.id.as_str()).collect()
}

fn assert_limit(err: StoreError, what: Limit, limit: usize) {
    match &err {
        StoreError::Limit { what: w, limit: l } if *w == what && *l == limit => {}
        _ => panic!("expected the {what:?} limit of {limit}, got {err:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&format!("at most {limit} ")), "{message}");
}

pub fn server_insights_round_trip_with_every_field(h: &impl Harness) {
    let store = h.open();
    assert_eq!(store.server_insights(GUILD).unwrap(), vec![]);
    assert_eq!(store.server_insight_count(GUILD).unwrap(), 0);

    // Saved out of order; listed by id. One has vectors and no URL, one a URL and no vectors.
    let b = server_insight(GUILD, "b-second", 1);
    let a = server_insight(GUILD, "a-first", 2);
    assert!(b.vectors.is_some() && b.insight.source.url.is_none());
    assert!(a.vectors.is_none() && a.insight.source.url.is_some());
    let outcome = store
        .save_server_insights(GUILD, &[b.clone(), a.clone()], 10)
        .unwrap();
    assert_eq!(
        outcome,
        SaveOutcome {
            added: 2,
            replaced: 0
        }
    );
    assert_eq!(
        store.server_insights(GUILD).unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.server_insight_count(GUILD).unwrap(), 2);

    // Replacing keeps who created it and when; everything else is the new insight's.
    let mut edited = server_insight(GUILD, "a-first", 3);
    edited.created_by = 999;
    edited.created_at = utc("2030-01-01T00:00:00Z");
    edited.updated_at = utc("2026-05-01T12:34:56.789123Z"); // stored to the millisecond
    let outcome = store
        .save_server_insights(GUILD, std::slice::from_ref(&edited), 10)
        .unwrap();
    assert_eq!(
        outcome,
        SaveOutcome {
            added: 0,
            replaced: 1
        }
    );
    let expected = ServerInsight {
        created_by: a.created_by,
        created_at: a.created_at,
        updated_at: utc("2026-05-01T12:34:56.789Z"),
        ..edited.clone()
    };
    assert!(expected.vectors.is_some(), "vectors added on replace");
    assert_eq!(
        store.server_insights(GUILD).unwrap(),
        vec![expected.clone(), b.clone()]
    );
    // And replaced by none: vectors of an edited text are gone.
    let plain = ServerInsight {
        vectors: None,
        ..expected.clone()
    };
    store
        .save_server_insights(GUILD, std::slice::from_ref(&plain), 10)
        .unwrap();
    assert_eq!(store.server_insights(GUILD).unwrap()[0], plain);

    assert!(store.delete_server_insight(GUILD, "a-first").unwrap());
    assert!(!store.delete_server_insight(GUILD, "a-first").unwrap());
    assert!(!store.delete_server_insight(GUILD, "never-was").unwrap());
    assert_eq!(store.server_insights(GUILD).unwrap(), vec![b.clone()]);
    assert_eq!(store.all_server_insights().unwrap(), vec![b]);
    assert_eq!(store.server_insight_count(GUILD).unwrap(), 1);
    // An empty save is fine and changes nothing.
    assert_eq!(
        store.save_server_insights(GUILD, &[], 10).unwrap(),
        SaveOutcome::default()
    );
}

pub fn a_save_over_the_limit_changes_nothing(h: &impl Harness) {
    let store = h.open();
    let first = [
        server_insight(GUILD, "one", 1),
        server_insight(GUILD, "two", 2),
    ];
    store.save_server_insights(GUILD, &first, 3).unwrap();
    let before = store.server_insights(GUILD).unwrap();

    // One replacement and two new ones: 4 > 3. The replacement is not applied either.
    let too_many = [
        server_insight(GUILD, "one", 9),
        server_insight(GUILD, "three", 3),
        server_insight(GUILD, "four", 4),
    ];
    let err = store.save_server_insights(GUILD, &too_many, 3).unwrap_err();
    let message = err.to_string();
    assert_limit(err, Limit::ServerInsights, 3);
    assert!(message.contains("insights"), "{message}");
    assert_eq!(store.server_insights(GUILD).unwrap(), before);
    assert_eq!(store.server_insight_count(GUILD).unwrap(), 2);

    // Exactly at the limit is fine.
    let outcome = store
        .save_server_insights(GUILD, &too_many[..2], 3)
        .unwrap();
    assert_eq!(
        outcome,
        SaveOutcome {
            added: 1,
            replaced: 1
        }
    );
    assert_eq!(
        insight_ids(&store.server_insights(GUILD).unwrap()),
        ["one", "three", "two"]
    );
    // A limit of 0 refuses any new insight.
    assert_limit(
        store
            .save_server_insights(OTHER_GUILD, &first[..1], 0)
            .unwrap_err(),
        Limit::ServerInsights,
        0,
    );
    assert_eq!(store.server_insight_count(OTHER_GUILD).unwrap(), 0);
}

pub fn replacing_does_not_count_twice_against_the_limit(h: &impl Harness) {
    let store = h.open();
    let three: Vec<ServerInsight> = ["x", "y", "z"]
        .iter()
        .zip(1..)
        .map(|(id, n)| server_insight(GUILD, id, n))
        .collect();
    store.save_server_insights(GUILD, &three, 3).unwrap();
    // At the limit, every one of them can still be replaced, all at once.
    let edited: Vec<ServerInsight> = ["x", "y", "z"]
        .iter()
        .zip(11..)
        .map(|(id, n)| server_insight(GUILD, id, n))
        .collect();
    assert_eq!(
        store.save_server_insights(GUILD, &edited, 3).unwrap(),
        SaveOutcome {
            added: 0,
            replaced: 3
        }
    );
    assert_eq!(
        store.server_insights(GUILD).unwrap()[0].insight.title,
        edited[0].insight.title
    );
    // An id given twice in one save counts once toward the limit (added, then replaced).
    let twice = [
        server_insight(GUILD, "w", 21),
        server_insight(GUILD, "w", 22),
    ];
    assert_eq!(
        store.save_server_insights(GUILD, &twice, 4).unwrap(),
        SaveOutcome {
            added: 1,
            replaced: 1
        }
    );
    assert_eq!(
        store.server_insights(GUILD).unwrap()[0].insight,
        twice[1].insight,
        "the later one wins"
    );
    assert_eq!(store.server_insight_count(GUILD).unwrap(), 4);
}

/// Two processes saving new insights for one server at once: the limit holds across them.
pub fn two_handles_saving_at_once_never_exceed_the_insight_limit(h: &impl Harness) {
    const LIMIT: usize = 12;
    drop(h.open()); // creates the schema
    let barrier = Barrier::new(2);
    let saved: Vec<usize> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2u8)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let store = h.try_open();
                    (0..10u8)
                        .map(|i| {
                            barrier.wait();
                            let store = store.as_ref().map_err(|e| format!("open: {e}"))?;
                            let id = format!("t{t}-i{i}");
                            match store.save_server_insights(
                                GUILD,
                                &[server_insight(GUILD, &id, i)],
                                LIMIT,
                            ) {
                                Ok(outcome) => Ok(outcome.added),
                                Err(StoreError::Limit { .. }) => Ok(0),
                                Err(e) => Err(format!("{id}: {e}")),
                            }
                        })
                        .collect::<Vec<Result<usize, String>>>()
                })
            })
            .collect();
        racers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Result<Vec<usize>, String>>()
            .unwrap_or_else(|e| panic!("{e}"))
    });
    assert_eq!(saved.iter().sum::<usize>(), LIMIT);
    assert_eq!(h.open().server_insight_count(GUILD).unwrap(), LIMIT);
}

pub fn a_stored_insight_that_no_longer_parses_is_an_error_for_that_server_only(h: &impl Harness) {
    let store = h.open();
    store
        .save_server_insights(1, &[server_insight(1, "fine", 1)], 10)
        .unwrap();
    store
        .save_server_insights(2, &[server_insight(2, "broken", 2)], 10)
        .unwrap();
    // Still a JSON array (the schema checks that much), but not of strings.
    h.exec("UPDATE server_insight SET topics = '[1, 2]' WHERE guild_id = 2")
        .unwrap();
    let err = store.server_insights(2).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                table: "server_insight",
                guild_id: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("broken"), "{message}");
    assert!(message.contains("topics"), "{message}");
    assert!(message.contains(&store.describe()), "{message}");
    // Start-up skips it and loads the others.
    assert_eq!(
        insight_ids(&store.all_server_insights().unwrap()),
        ["fine"],
        "the broken row is skipped"
    );
    // Saving it again replaces the broken row.
    store
        .save_server_insights(2, &[server_insight(2, "broken", 2)], 10)
        .unwrap();
    assert_eq!(store.server_insights(2).unwrap().len(), 1);
}

// ---- every table, two servers ----

pub fn servers_are_kept_apart_in_every_table(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-04-01T10:00:00Z");
    // Insights: the same id in both servers, each with its own content and limit.
    let ours = server_insight(GUILD, "shared-id", 1);
    let theirs = server_insight(OTHER_GUILD, "shared-id", 2);
    store
        .save_server_insights(GUILD, std::slice::from_ref(&ours), 1)
        .unwrap();
    store
        .save_server_insights(OTHER_GUILD, std::slice::from_ref(&theirs), 1)
        .unwrap();
    store
        .save_server_insights(OTHER_GUILD, &[server_insight(OTHER_GUILD, "a", 3)], 2)
        .unwrap();
    assert_eq!(store.server_insights(GUILD).unwrap(), vec![ours.clone()]);
    assert_eq!(store.server_insight_count(OTHER_GUILD).unwrap(), 2);
    let all = store.all_server_insights().unwrap();
    let keys: Vec<(u64, &str)> = all
        .iter()
        .map(|s| (s.guild_id, s.insight.id.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (GUILD, "shared-id"),
            (OTHER_GUILD, "a"),
            (OTHER_GUILD, "shared-id")
        ],
        "ordered by server, then id"
    );
    assert!(store.delete_server_insight(GUILD, "shared-id").unwrap());
    assert!(!store.delete_server_insight(GUILD, "a").unwrap());
    assert_eq!(store.server_insights(OTHER_GUILD).unwrap()[1], theirs);

    // Settings and hidden insights.
    store
        .set_insight_source(GUILD, InsightSource::Ours)
        .unwrap();
    store.set_curator_role(GUILD, Some(5)).unwrap();
    store.set_review_channel(GUILD, Some(6)).unwrap();
    assert!(store.set_hidden(GUILD, "tour-of-duty", true).unwrap());
    assert_eq!(
        store.server_settings(OTHER_GUILD).unwrap(),
        ServerSettings::default()
    );
    assert!(store.set_hidden(OTHER_GUILD, "tour-of-duty", true).unwrap());
    assert!(store
        .set_hidden(OTHER_GUILD, "tour-of-duty", false)
        .unwrap());
    assert_eq!(
        store.server_settings(GUILD).unwrap().hidden,
        ["tour-of-duty"]
    );
    assert!(store.set_pack_on(GUILD, "hiring", false).unwrap());
    assert_eq!(
        store.server_settings(OTHER_GUILD).unwrap().packs_off,
        Vec::<String>::new()
    );
    assert!(store.set_pack_on(OTHER_GUILD, "feedback", false).unwrap());
    assert!(store.set_pack_on(OTHER_GUILD, "feedback", true).unwrap());
    assert_eq!(store.server_settings(GUILD).unwrap().packs_off, ["hiring"]);

    // Suggestions: ids, counts, limits, decisions and review messages are per server.
    let add = |guild: u64| {
        store.add_suggestion(
            NewSuggestion {
                guild_id: guild,
                author_id: MEMBER,
                title: "T".into(),
                text: "X".into(),
                why: None,
                now,
            },
            1,
            1,
        )
    };
    let mine = add(GUILD).unwrap();
    let other = add(OTHER_GUILD).unwrap(); // the same member, limit 1 in each server
    assert_ne!(mine.id, other.id);
    assert_limit(add(GUILD).unwrap_err(), Limit::AuthorPendingSuggestions, 1);
    assert_eq!(store.suggestion(GUILD, other.id).unwrap(), None);
    assert_eq!(
        store.suggestion(OTHER_GUILD, other.id).unwrap(),
        Some(other.clone())
    );
    assert_eq!(
        store
            .decide_suggestion(
                GUILD,
                other.id,
                Decision::Reject { reason: None },
                CURATOR,
                now
            )
            .unwrap(),
        None,
        "another server's suggestion cannot be decided"
    );
    assert!(!store
        .set_suggestion_review_message(GUILD, other.id, 1, 2)
        .unwrap());
    assert_eq!(
        store.suggestion(OTHER_GUILD, other.id).unwrap(),
        Some(other)
    );
    assert_eq!(
        store
            .oldest_pending_suggestion(GUILD)
            .unwrap()
            .map(|s| s.id),
        Some(mine.id)
    );
    store
        .decide_suggestion(
            GUILD,
            mine.id,
            Decision::Reject { reason: None },
            CURATOR,
            now,
        )
        .unwrap()
        .unwrap();
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 0);
    assert_eq!(store.pending_suggestion_count(OTHER_GUILD).unwrap(), 1);

    // Shown counters.
    store
        .record_shown(GUILD, "shared-id", day("2026-03-02"))
        .unwrap();
    store
        .record_shown(GUILD, "shared-id", day("2026-03-02"))
        .unwrap();
    store
        .record_shown(OTHER_GUILD, "shared-id", day("2026-03-02"))
        .unwrap();
    assert_eq!(
        store.shown_counts(GUILD).unwrap(),
        HashMap::from([("shared-id".to_string(), 2)])
    );
    assert_eq!(
        store.shown_counts(OTHER_GUILD).unwrap(),
        HashMap::from([("shared-id".to_string(), 1)])
    );
}

// ---- settings ----

pub fn server_settings_defaults_and_updates(h: &impl Harness) {
    let store = h.open();
    let defaults = store.server_settings(GUILD).unwrap();
    assert_eq!(
        defaults,
        ServerSettings {
            source: InsightSource::All,
            curator_role: None,
            review_channel: None,
            hidden: vec![],
            packs_off: vec![],
            gaps: false,
        }
    );

    // Each setter changes its own setting only, whichever comes first.
    store.set_curator_role(GUILD, Some(u64::MAX)).unwrap();
    assert_eq!(
        store.server_settings(GUILD).unwrap(),
        ServerSettings {
            curator_role: Some(u64::MAX),
            ..defaults.clone()
        }
    );
    store
        .set_insight_source(GUILD, InsightSource::Ours)
        .unwrap();
    store.set_review_channel(GUILD, Some(CHANNEL)).unwrap();
    let set = ServerSettings {
        source: InsightSource::Ours,
        curator_role: Some(u64::MAX),
        review_channel: Some(CHANNEL),
        hidden: vec![],
        packs_off: vec![],
        gaps: false,
    };
    assert_eq!(store.server_settings(GUILD).unwrap(), set);
    // Stored as text an operator can read.
    assert_eq!(
        h.query_row(&format!(
            "SELECT insight_source FROM server_settings WHERE guild_id = {GUILD}"
        )),
        ["ours"]
    );

    store.set_curator_role(GUILD, None).unwrap();
    store.set_review_channel(GUILD, None).unwrap();
    store.set_insight_source(GUILD, InsightSource::All).unwrap();
    assert_eq!(store.server_settings(GUILD).unwrap(), defaults);

    // The schema refuses a source the store could not read back.
    let err = h
        .exec(&format!(
            "UPDATE server_settings SET insight_source = 'nobody' WHERE guild_id = {GUILD}"
        ))
        .unwrap_err();
    assert!(err.to_lowercase().contains("check"), "{err}");
}

pub fn hiding_and_showing_shipped_insights(h: &impl Harness) {
    let store = h.open();
    assert!(store.set_hidden(GUILD, "zeta", true).unwrap());
    assert!(
        !store.set_hidden(GUILD, "zeta", true).unwrap(),
        "already hidden"
    );
    assert!(store.set_hidden(GUILD, "alpha", true).unwrap());
    assert!(store.set_hidden(GUILD, "Beta", true).unwrap());
    assert!(store.set_hidden(GUILD, "a-b", true).unwrap());
    assert!(store.set_hidden(GUILD, "ab", true).unwrap());
    // Sorted by code point, whatever the database's collation.
    assert_eq!(
        store.server_settings(GUILD).unwrap().hidden,
        ["Beta", "a-b", "ab", "alpha", "zeta"]
    );
    assert!(store.set_hidden(GUILD, "zeta", false).unwrap());
    assert!(
        !store.set_hidden(GUILD, "zeta", false).unwrap(),
        "already shown"
    );
    assert!(!store.set_hidden(GUILD, "never-hidden", false).unwrap());
    let settings = store.server_settings(GUILD).unwrap();
    assert_eq!(settings.hidden, ["Beta", "a-b", "ab", "alpha"]);
    assert_eq!(
        settings.source,
        InsightSource::All,
        "hiding sets nothing else"
    );
}

// ---- suggestions ----

fn new_suggestion(guild_id: u64, author_id: u64, n: u32) -> NewSuggestion {
    NewSuggestion {
        guild_id,
        author_id,
        title: format!("Suggestion {n}"),
        text: format!("Text of suggestion {n}, with 'quotes' and ünïcödé."),
        why: n.is_multiple_of(2).then(|| format!("Because {n}")),
        // Later n, later time; milliseconds kept, finer digits dropped.
        now: utc(&format!("2026-04-01T10:{:02}:00.123456Z", n % 60)),
    }
}

fn add(store: &impl Backend, new: NewSuggestion) -> Result<Suggestion, StoreError> {
    store.add_suggestion(new, 5, 50)
}

fn approve(insight: ServerInsight, limit: usize) -> Decision {
    Decision::Approve { insight, limit }
}

pub fn suggestions_are_added_read_and_queued_oldest_first(h: &impl Harness) {
    let store = h.open();
    assert_eq!(store.oldest_pending_suggestion(GUILD).unwrap(), None);
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 0);

    // Added out of time order: the queue goes by created_at.
    let late = add(&store, new_suggestion(GUILD, MEMBER, 20)).unwrap();
    let early = add(&store, new_suggestion(GUILD, MEMBER + 1, 10)).unwrap();
    let expected = Suggestion {
        id: early.id,
        guild_id: GUILD,
        author_id: MEMBER + 1,
        title: "Suggestion 10".into(),
        text: "Text of suggestion 10, with 'quotes' and ünïcödé.".into(),
        why: Some("Because 10".into()),
        status: SuggestionStatus::Pending,
        reason: None,
        created_at: utc("2026-04-01T10:10:00.123Z"),
        decided_at: None,
        decided_by: None,
        insight_id: None,
        review_message: None,
    };
    assert_eq!(early, expected);
    assert_ne!(early.id, late.id);
    assert_eq!(store.suggestion(GUILD, early.id).unwrap(), Some(expected));
    assert_eq!(
        store.suggestion(GUILD, early.id + late.id + 1000).unwrap(),
        None
    );
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 2);
    assert_eq!(
        store
            .oldest_pending_suggestion(GUILD)
            .unwrap()
            .map(|s| s.id),
        Some(early.id)
    );
    // Same instant: the first added first.
    let tie_a = add(&store, new_suggestion(GUILD, MEMBER, 5)).unwrap();
    let tie_b = add(&store, new_suggestion(GUILD, MEMBER, 5)).unwrap();
    assert!(tie_a.id < tie_b.id);
    assert_eq!(tie_b.why, None);
    assert_eq!(
        store
            .oldest_pending_suggestion(GUILD)
            .unwrap()
            .map(|s| s.id),
        Some(tie_a.id)
    );

    // The review message is recorded (and can be replaced).
    assert!(store
        .set_suggestion_review_message(GUILD, tie_a.id, CHANNEL, 77)
        .unwrap());
    assert!(store
        .set_suggestion_review_message(GUILD, tie_a.id, CHANNEL, u64::MAX)
        .unwrap());
    assert!(!store
        .set_suggestion_review_message(GUILD, tie_b.id + 1000, CHANNEL, 1)
        .unwrap());
    assert_eq!(
        store
            .suggestion(GUILD, tie_a.id)
            .unwrap()
            .unwrap()
            .review_message,
        Some(ReviewMessage {
            channel_id: CHANNEL,
            message_id: u64::MAX
        })
    );

    // Decided ones leave the queue.
    let now = utc("2026-04-02T00:00:00Z");
    for id in [tie_a.id, tie_b.id] {
        store
            .decide_suggestion(GUILD, id, Decision::Reject { reason: None }, CURATOR, now)
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        store
            .oldest_pending_suggestion(GUILD)
            .unwrap()
            .map(|s| s.id),
        Some(early.id)
    );
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 2);
}

pub fn a_member_may_have_five_suggestions_pending(h: &impl Harness) {
    let store = h.open();
    let added: Vec<Suggestion> = (1..=5)
        .map(|n| add(&store, new_suggestion(GUILD, MEMBER, n)).unwrap())
        .collect();
    let err = add(&store, new_suggestion(GUILD, MEMBER, 6)).unwrap_err();
    let message = err.to_string();
    assert_limit(err, Limit::AuthorPendingSuggestions, 5);
    assert!(message.contains("member"), "{message}");
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 5);
    // Another member is not held back.
    add(&store, new_suggestion(GUILD, MEMBER + 1, 7)).unwrap();
    // A decision frees a place.
    store
        .decide_suggestion(
            GUILD,
            added[0].id,
            Decision::Reject { reason: None },
            CURATOR,
            utc("2026-04-02T00:00:00Z"),
        )
        .unwrap()
        .unwrap();
    add(&store, new_suggestion(GUILD, MEMBER, 8)).unwrap();
    assert_limit(
        add(&store, new_suggestion(GUILD, MEMBER, 9)).unwrap_err(),
        Limit::AuthorPendingSuggestions,
        5,
    );
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 6);
}

pub fn a_server_pending_limit_counts_every_member(h: &impl Harness) {
    let store = h.open();
    for author in 1..=3 {
        store
            .add_suggestion(new_suggestion(GUILD, author, 1), 5, 3)
            .unwrap();
    }
    let err = store
        .add_suggestion(new_suggestion(GUILD, 4, 1), 5, 3)
        .unwrap_err();
    let message = err.to_string();
    assert_limit(err, Limit::ServerPendingSuggestions, 3);
    assert!(message.contains("server"), "{message}");
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 3);
    // When both limits are reached, the member's own is named.
    assert_limit(
        store
            .add_suggestion(new_suggestion(GUILD, 1, 2), 1, 3)
            .unwrap_err(),
        Limit::AuthorPendingSuggestions,
        1,
    );
}

pub fn approving_saves_the_insight_and_marks_the_suggestion_in_one_transaction(h: &impl Harness) {
    let store = h.open();
    let pending = add(&store, new_suggestion(GUILD, MEMBER, 1)).unwrap();
    let mut insight = server_insight(GUILD, "from-a-member", 1);
    insight.created_by = MEMBER;
    let decided_at = utc("2026-04-02T09:30:00.456789Z");
    let approved = store
        .decide_suggestion(
            GUILD,
            pending.id,
            approve(insight.clone(), 10),
            CURATOR,
            decided_at,
        )
        .unwrap()
        .expect("a pending suggestion is decided");
    let expected = Suggestion {
        status: SuggestionStatus::Approved,
        decided_at: Some(utc("2026-04-02T09:30:00.456Z")),
        decided_by: Some(CURATOR),
        insight_id: Some("from-a-member".into()),
        ..pending.clone()
    };
    assert_eq!(approved, expected);
    assert_eq!(
        store.suggestion(GUILD, pending.id).unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.server_insights(GUILD).unwrap(), vec![insight]);
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 0);

    // A second click, approve or reject: nothing happens.
    let other = server_insight(GUILD, "something-else", 2);
    assert_eq!(
        store
            .decide_suggestion(
                GUILD,
                pending.id,
                approve(other, 10),
                CURATOR + 1,
                decided_at
            )
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .decide_suggestion(
                GUILD,
                pending.id,
                Decision::Reject {
                    reason: Some("late".into())
                },
                CURATOR + 1,
                decided_at
            )
            .unwrap(),
        None
    );
    assert_eq!(store.suggestion(GUILD, pending.id).unwrap(), Some(expected));
    assert_eq!(
        insight_ids(&store.server_insights(GUILD).unwrap()),
        ["from-a-member"]
    );
    // No such suggestion: nothing either.
    assert_eq!(
        store
            .decide_suggestion(
                GUILD,
                pending.id + 1000,
                Decision::Reject { reason: None },
                CURATOR,
                decided_at
            )
            .unwrap(),
        None
    );
}

pub fn rejecting_records_the_reason_and_a_second_decision_changes_nothing(h: &impl Harness) {
    let store = h.open();
    let with_reason = add(&store, new_suggestion(GUILD, MEMBER, 1)).unwrap();
    let without = add(&store, new_suggestion(GUILD, MEMBER, 2)).unwrap();
    let at = utc("2026-04-03T08:00:00Z");
    let rejected = store
        .decide_suggestion(
            GUILD,
            with_reason.id,
            Decision::Reject {
                reason: Some("We already have this one: see tour-of-duty.".into()),
            },
            CURATOR,
            at,
        )
        .unwrap()
        .unwrap();
    let expected = Suggestion {
        status: SuggestionStatus::Rejected,
        reason: Some("We already have this one: see tour-of-duty.".into()),
        decided_at: Some(at),
        decided_by: Some(CURATOR),
        ..with_reason.clone()
    };
    assert_eq!(rejected, expected);
    let plain = store
        .decide_suggestion(
            GUILD,
            without.id,
            Decision::Reject { reason: None },
            CURATOR,
            at,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (plain.status, plain.reason),
        (SuggestionStatus::Rejected, None)
    );
    // Approving a rejected suggestion does nothing: no insight appears.
    assert_eq!(
        store
            .decide_suggestion(
                GUILD,
                with_reason.id,
                approve(server_insight(GUILD, "x", 1), 10),
                CURATOR,
                at
            )
            .unwrap(),
        None
    );
    assert_eq!(store.server_insight_count(GUILD).unwrap(), 0);
    assert_eq!(
        store.suggestion(GUILD, with_reason.id).unwrap(),
        Some(expected)
    );
    assert_eq!(
        h.query_row(&format!(
            "SELECT status FROM suggestion WHERE id = {}",
            with_reason.id
        )),
        ["rejected"]
    );
}

pub fn an_approval_over_the_insight_limit_changes_nothing(h: &impl Harness) {
    let store = h.open();
    store
        .save_server_insights(GUILD, &[server_insight(GUILD, "only", 1)], 1)
        .unwrap();
    let pending = add(&store, new_suggestion(GUILD, MEMBER, 1)).unwrap();
    let err = store
        .decide_suggestion(
            GUILD,
            pending.id,
            approve(server_insight(GUILD, "one-too-many", 2), 1),
            CURATOR,
            utc("2026-04-02T00:00:00Z"),
        )
        .unwrap_err();
    assert_limit(err, Limit::ServerInsights, 1);
    assert_eq!(
        store.suggestion(GUILD, pending.id).unwrap(),
        Some(pending.clone()),
        "still pending, undecided"
    );
    assert_eq!(
        store.oldest_pending_suggestion(GUILD).unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        insight_ids(&store.server_insights(GUILD).unwrap()),
        ["only"]
    );
    // Approving it as a replacement of the existing insight fits.
    let approved = store
        .decide_suggestion(
            GUILD,
            pending.id,
            approve(server_insight(GUILD, "only", 3), 1),
            CURATOR,
            utc("2026-04-02T00:00:00Z"),
        )
        .unwrap()
        .unwrap();
    assert_eq!(approved.insight_id.as_deref(), Some("only"));
    assert_eq!(
        store.server_insights(GUILD).unwrap()[0].insight.title,
        "Title 3 of only"
    );
}

/// Two curators clicking at once, from two processes: exactly one decision is made, and the
/// insight is saved once.
pub fn two_curators_deciding_at_once_decide_once(h: &impl Harness) {
    let first = h.open();
    let ids: Vec<u64> = (1..=8)
        .map(|n| add(&first, new_suggestion(GUILD, n, 1)).unwrap().id)
        .collect();
    let barrier = Barrier::new(2);
    let outcomes: Vec<Vec<bool>> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2u64)
            .map(|t| {
                let (ids, barrier) = (&ids, &barrier);
                scope.spawn(move || {
                    let store = h.try_open();
                    ids.iter()
                        .map(|&id| {
                            barrier.wait();
                            let store = store.as_ref().map_err(|e| format!("open: {e}"))?;
                            // One approves, the other rejects.
                            let decision = if t == 0 {
                                approve(server_insight(GUILD, &format!("s{id}"), 1), 100)
                            } else {
                                Decision::Reject { reason: None }
                            };
                            store
                                .decide_suggestion(GUILD, id, decision, CURATOR + t, Utc::now())
                                .map(|d| d.is_some())
                                .map_err(|e| format!("{id}: {e}"))
                        })
                        .collect::<Result<Vec<bool>, String>>()
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|t| t.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
            .collect()
    });
    for (i, id) in ids.iter().enumerate() {
        assert!(
            outcomes[0][i] ^ outcomes[1][i],
            "suggestion {id}: decided by {:?}",
            (outcomes[0][i], outcomes[1][i])
        );
        let decided = first.suggestion(GUILD, *id).unwrap().unwrap();
        let approved = decided.status == SuggestionStatus::Approved;
        assert_eq!(approved, outcomes[0][i], "{decided:?}");
        assert_eq!(decided.decided_by, Some(CURATOR + u64::from(!approved)));
    }
    let approvals = outcomes[0].iter().filter(|&&won| won).count();
    assert_eq!(first.server_insight_count(GUILD).unwrap(), approvals);
    assert_eq!(first.pending_suggestion_count(GUILD).unwrap(), 0);
}

/// Two processes adding suggestions for the same member at once: never more than 5 pending.
/// Four members in turn, each raced for in lockstep until both handles are refused.
pub fn two_handles_adding_suggestions_for_one_member_never_exceed_five_pending(h: &impl Harness) {
    const MEMBERS: u64 = 4;
    drop(h.open()); // creates the schema
    let barrier = Barrier::new(2);
    let added: Vec<Suggestion> = thread::scope(|scope| {
        let racers: Vec<_> = (0..2u32)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let store = h.try_open();
                    (0..MEMBERS * 6)
                        .map(|i| {
                            barrier.wait();
                            let store = store.as_ref().map_err(|e| format!("open: {e}"))?;
                            let (member, n) = (MEMBER + i / 6, t * 100 + i as u32);
                            match add(store, new_suggestion(GUILD, member, n)) {
                                Ok(s) => Ok(Some(s)),
                                Err(StoreError::Limit {
                                    what: Limit::AuthorPendingSuggestions,
                                    limit: 5,
                                }) => Ok(None),
                                Err(e) => Err(format!("{t}/{i}: {e}")),
                            }
                        })
                        .collect::<Vec<Result<Option<Suggestion>, String>>>()
                })
            })
            .collect();
        racers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Result<Vec<Option<Suggestion>>, String>>()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .flatten()
            .collect()
    });
    for member in MEMBER..MEMBER + MEMBERS {
        let theirs = added.iter().filter(|s| s.author_id == member).count();
        assert_eq!(theirs, 5, "member {member}: {added:?}");
    }
    let ids: HashSet<u64> = added.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), added.len());
    assert_eq!(
        h.open().pending_suggestion_count(GUILD).unwrap(),
        5 * MEMBERS as usize
    );
}

// ---- shown counters ----

pub fn shown_counters_count_per_server_and_insight(h: &impl Harness) {
    let store = h.open();
    assert_eq!(store.shown_counts(GUILD).unwrap(), HashMap::new());
    for id in ["a", "b", "a", "a", "tour-of-duty"] {
        store.record_shown(GUILD, id, day("2026-03-02")).unwrap();
    }
    assert_eq!(
        store.shown_counts(GUILD).unwrap(),
        HashMap::from([
            ("a".to_string(), 3),
            ("b".to_string(), 1),
            ("tour-of-duty".to_string(), 1),
        ])
    );
    assert_eq!(store.shown_counts(OTHER_GUILD).unwrap(), HashMap::new());
}

// ---- schema versions ----

/// A database an insight-bot of schema version 1 left behind (weekly settings, a post log) is
/// brought to the current version on open, with every row kept.
pub fn a_version_1_database_migrates_forward_keeping_its_rows(h: &impl Harness) {
    h.create_version_1();
    assert_eq!(h.schema_version(), 1);
    h.insert_weeklies(3);
    h.exec(
        "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, \
             source, claimed_at, updated_at, attempts, message_id, posted_at) \
         VALUES (2, 2026, 10, 2, 'tour-of-duty', 'iw2026102', 'schedule', \
             '2026-03-02T09:00:00.000Z', '2026-03-02T09:00:01.000Z', 1, 4242, \
             '2026-03-02T09:00:01.000Z'); \
         INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, \
             source, claimed_at, updated_at) \
         VALUES (3, 2026, 11, 3, 'other', 'iw2026113', 'post_now', \
             '2026-03-09T09:00:00.000Z', '2026-03-09T09:00:00.000Z')",
    )
    .unwrap();

    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    // Each server's schedule is the feed of its channel.
    assert_eq!(guild_ids(&store.active_feeds().unwrap()), [1, 2, 3]);
    let feed = feed_of(2, 2);
    assert_eq!(
        store.feed(feed).unwrap().unwrap().active_since,
        utc("2026-03-03T10:00:00Z")
    );
    let posted = store.last_post(feed).unwrap().unwrap();
    assert_eq!(
        (
            posted.insight_id.as_str(),
            posted.message_id,
            posted.attempts,
            posted.period
        ),
        ("tour-of-duty", Some(4242), 1, week(10))
    );
    let unconfirmed = store.unconfirmed_posts().unwrap();
    assert_eq!(unconfirmed.len(), 1);
    assert_eq!(unconfirmed[0].source, PostSource::PostNow);
    assert_eq!(unconfirmed[0].feed, feed_of(3, 3));
    // The new tables work.
    let mut rng = StdRng::seed_from_u64(1);
    assert!(matches!(
        store
            .claim(
                feed,
                week(12),
                &["a"],
                PostSource::Schedule,
                &mut rng,
                Utc::now()
            )
            .unwrap(),
        Some(Claim::Claimed(_))
    ));
    store
        .save_server_insights(2, &[server_insight(2, "new", 1)], 5)
        .unwrap();
    add(&store, new_suggestion(2, MEMBER, 1)).unwrap();
    assert_eq!(store.server_settings(2).unwrap(), ServerSettings::default());
    drop(store);
    // Opening again migrates nothing more.
    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.server_insight_count(2).unwrap(), 1);
}

pub fn reopening_keeps_server_insights_settings_and_suggestions(h: &impl Harness) {
    let (insights, approved, pending) = {
        let store = h.open();
        let insights = vec![
            server_insight(GUILD, "kept-one", 1),
            server_insight(GUILD, "kept-two", 2),
        ];
        store.save_server_insights(GUILD, &insights, 10).unwrap();
        store
            .set_insight_source(GUILD, InsightSource::Ours)
            .unwrap();
        store.set_curator_role(GUILD, Some(11)).unwrap();
        store.set_review_channel(GUILD, Some(12)).unwrap();
        store.set_hidden(GUILD, "tour-of-duty", true).unwrap();
        store.set_pack_on(GUILD, "hiring", false).unwrap();
        let first = add(&store, new_suggestion(GUILD, MEMBER, 1)).unwrap();
        let pending = add(&store, new_suggestion(GUILD, MEMBER, 2)).unwrap();
        store
            .set_suggestion_review_message(GUILD, pending.id, 12, 13)
            .unwrap();
        let approved = store
            .decide_suggestion(
                GUILD,
                first.id,
                approve(server_insight(GUILD, "kept-three", 3), 10),
                CURATOR,
                utc("2026-04-02T00:00:00Z"),
            )
            .unwrap()
            .unwrap();
        store
            .record_shown(GUILD, "kept-one", day("2026-04-02"))
            .unwrap();
        let pending = store.suggestion(GUILD, pending.id).unwrap().unwrap();
        (insights, approved, pending)
    };
    let store = h.open();
    let listed = store.server_insights(GUILD).unwrap();
    assert_eq!(insight_ids(&listed), ["kept-one", "kept-three", "kept-two"]);
    assert_eq!((&listed[0], &listed[2]), (&insights[0], &insights[1]));
    assert_eq!(store.all_server_insights().unwrap(), listed);
    assert_eq!(
        store.server_settings(GUILD).unwrap(),
        ServerSettings {
            source: InsightSource::Ours,
            curator_role: Some(11),
            review_channel: Some(12),
            hidden: vec!["tour-of-duty".into()],
            packs_off: vec!["hiring".into()],
            gaps: false,
        }
    );
    assert_eq!(
        store.suggestion(GUILD, approved.id).unwrap(),
        Some(approved)
    );
    assert_eq!(
        store.oldest_pending_suggestion(GUILD).unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        pending.review_message,
        Some(ReviewMessage {
            channel_id: 12,
            message_id: 13
        })
    );
    assert_eq!(
        store.shown_counts(GUILD).unwrap(),
        HashMap::from([("kept-one".to_string(), 1)])
    );
    // Ids keep counting up after a restart: a new suggestion never takes an old one's id.
    let next = add(&store, new_suggestion(GUILD, MEMBER + 1, 3)).unwrap();
    assert!(next.id > pending.id);
}

// ---- answers, votes, usage and gaps ----

/// A new answer with a fresh id (increasing, as the tests compare them; the bot's are random).
fn answer(
    guild_id: Option<u64>,
    on: &str,
    insight: Option<&str>,
    question: Option<&str>,
) -> NewAnswer {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NewAnswer {
        id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        guild_id,
        day: day(on),
        insight_id: insight.map(str::to_string),
        no_close_match: insight.is_none(),
        weak: false,
        question: question.map(str::to_string),
        question_vector: None,
    }
}

pub fn an_answer_id_already_recorded_fails_the_batch_and_writes_nothing(h: &impl Harness) {
    let store = h.open();
    let first = answer(Some(GUILD), "2026-03-02", Some("a"), None);
    assert_eq!(
        store.record_answers(std::slice::from_ref(&first)).unwrap(),
        [first.id]
    );
    let fresh = answer(Some(GUILD), "2026-03-02", Some("a"), None);
    let again = NewAnswer {
        insight_id: Some("b".into()),
        ..first.clone()
    };
    assert!(store.record_answers(&[fresh.clone(), again]).is_err());
    let usage = stats(
        &store,
        UsageScope::Server(GUILD),
        "2026-03-01",
        "2026-03-31",
    );
    assert_eq!(usage.days, [day_answers("2026-03-02", 1, 0)]);
    // The fresh answer of the failed batch was not written either: it can be recorded now.
    assert_eq!(
        store.record_answers(std::slice::from_ref(&fresh)).unwrap(),
        [fresh.id]
    );
}

fn day_answers(on: &str, answers: u64, no_close_match: u64) -> DayAnswers {
    DayAnswers {
        day: day(on),
        answers,
        no_close_match,
    }
}

fn insight_use(id: &str, shown: u64, helpful: u64, not_helpful: u64) -> InsightUse {
    InsightUse {
        id: id.into(),
        shown,
        helpful,
        not_helpful,
    }
}

/// A voter key, as the bot would derive one.
fn voter(n: u32) -> [u8; 32] {
    let mut key = [0xA5; 32];
    key[..4].copy_from_slice(&n.to_be_bytes());
    key
}

fn stats(store: &impl Backend, scope: UsageScope, since: &str, until: &str) -> UsageStats {
    store.usage_stats(scope, day(since), day(until)).unwrap()
}

/// What a kept question's row says, by answer id (for the gap tests).
fn gap(answer_id: u64, question: &str, on: &str, no_close_match: bool, not_helpful: bool) -> Gap {
    Gap {
        answer_id,
        question: question.into(),
        day: day(on),
        no_close_match,
        weak: false,
        not_helpful,
        vector: None,
    }
}

pub fn a_weak_answer_is_a_gap_and_its_question_is_kept_like_a_no_close_match(h: &impl Harness) {
    let store = h.open();
    store.set_gaps(GUILD, true).unwrap();
    let weak = NewAnswer {
        weak: true,
        ..answer(Some(GUILD), "2026-03-02", Some("a"), Some("how do I hire?"))
    };
    let strong = answer(Some(GUILD), "2026-03-02", Some("a"), Some("matched fine"));
    let ids = store.record_answers(&[weak, strong]).unwrap();
    let expected = [Gap {
        weak: true,
        ..gap(ids[0], "how do I hire?", "2026-03-02", false, false)
    }];
    assert_eq!(store.gaps(GUILD, day("2026-01-01"), 10).unwrap(), expected);
    // The next day's clearing drops the question that found a fitting insight, keeps the gap.
    store.prune(day("2026-03-03")).unwrap();
    assert_eq!(store.gaps(GUILD, day("2026-01-01"), 10).unwrap(), expected);
    assert_eq!(
        h.query_row("SELECT count(*) FROM answer WHERE question IS NOT NULL"),
        ["1"]
    );
}

pub fn answers_add_up_per_day_and_scope(h: &impl Harness) {
    let store = h.open();
    assert_eq!(store.record_answers(&[]).unwrap(), Vec::<u64>::new());
    let ids = store
        .record_answers(&[
            answer(Some(GUILD), "2026-03-02", Some("a"), None),
            answer(Some(GUILD), "2026-03-02", Some("a"), None),
            answer(Some(GUILD), "2026-03-02", None, None),
            answer(Some(GUILD), "2026-03-04", Some("b"), None),
            answer(Some(OTHER_GUILD), "2026-03-02", Some("a"), None),
            answer(Some(OTHER_GUILD), "2026-03-02", Some("a"), None),
            answer(None, "2026-03-02", Some("c"), None),
        ])
        .unwrap();
    let more = store
        .record_answers(&[answer(None, "2026-03-05", None, None)])
        .unwrap();
    let all: Vec<u64> = ids.iter().chain(&more).copied().collect();
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");

    let server = stats(
        &store,
        UsageScope::Server(GUILD),
        "2026-03-01",
        "2026-03-31",
    );
    assert_eq!(
        server.days,
        [
            day_answers("2026-03-02", 3, 1),
            day_answers("2026-03-04", 1, 0)
        ]
    );
    assert_eq!(
        server.insights,
        Vec::<InsightUse>::new(),
        "answers are not showings or votes"
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(GUILD),
            "2026-03-03",
            "2026-03-04"
        )
        .days,
        [day_answers("2026-03-04", 1, 0)],
        "both ends are included"
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(GUILD),
            "2026-03-03",
            "2026-03-03"
        ),
        UsageStats::default()
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(OTHER_GUILD),
            "2026-03-01",
            "2026-03-31"
        )
        .days,
        [day_answers("2026-03-02", 2, 0)]
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::DirectMessages,
            "2026-03-01",
            "2026-03-31"
        )
        .days,
        [
            day_answers("2026-03-02", 1, 0),
            day_answers("2026-03-05", 1, 1)
        ]
    );
    assert_eq!(
        stats(&store, UsageScope::Everywhere, "2026-03-01", "2026-03-31").days,
        [
            day_answers("2026-03-02", 6, 1),
            day_answers("2026-03-04", 1, 0),
            day_answers("2026-03-05", 1, 1)
        ]
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(CHANNEL),
            "2026-03-01",
            "2026-03-31"
        ),
        UsageStats::default()
    );
    // Another handle (a restart) reads the same.
    assert_eq!(
        stats(
            &h.open(),
            UsageScope::Server(GUILD),
            "2026-03-01",
            "2026-03-31"
        ),
        server
    );
}

pub fn showings_are_counted_per_day_and_all_time(h: &impl Harness) {
    let store = h.open();
    for (guild, id, on) in [
        (GUILD, "a", "2026-03-02"),
        (GUILD, "a", "2026-03-02"),
        (GUILD, "a", "2026-03-03"),
        (GUILD, "b", "2026-03-03"),
        (OTHER_GUILD, "a", "2026-03-02"),
    ] {
        store.record_shown(guild, id, day(on)).unwrap();
    }
    let both = stats(
        &store,
        UsageScope::Server(GUILD),
        "2026-03-02",
        "2026-03-03",
    );
    assert_eq!(
        both.insights,
        [insight_use("a", 3, 0, 0), insight_use("b", 1, 0, 0)]
    );
    assert_eq!(
        both.days,
        Vec::<DayAnswers>::new(),
        "showings are not answers"
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(GUILD),
            "2026-03-03",
            "2026-03-03"
        )
        .insights,
        [insight_use("a", 1, 0, 0), insight_use("b", 1, 0, 0)]
    );
    assert_eq!(
        stats(&store, UsageScope::Everywhere, "2026-03-02", "2026-03-02").insights,
        [insight_use("a", 3, 0, 0)]
    );
    assert_eq!(
        stats(
            &store,
            UsageScope::DirectMessages,
            "2026-03-01",
            "2026-03-31"
        ),
        UsageStats::default()
    );
    assert_eq!(
        store.shown_counts(GUILD).unwrap(),
        HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)])
    );
    assert_eq!(
        store.shown_counts(OTHER_GUILD).unwrap(),
        HashMap::from([("a".to_string(), 1)])
    );
}

pub fn votes_count_once_per_voter_and_a_change_moves_the_count(h: &impl Harness) {
    let store = h.open();
    let ids = store
        .record_answers(&[
            answer(Some(GUILD), "2026-03-02", Some("a"), None),
            answer(Some(GUILD), "2026-03-02", None, None),
            answer(Some(OTHER_GUILD), "2026-03-02", Some("a"), None),
        ])
        .unwrap();
    let (matched, no_match, others) = (ids[0], ids[1], ids[2]);
    let a = || {
        stats(
            &store,
            UsageScope::Server(GUILD),
            "2026-03-02",
            "2026-03-02",
        )
        .insights
    };

    assert_eq!(
        store
            .record_vote(matched, &voter(1), Vote::Helpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Recorded
    );
    assert_eq!(a(), [insight_use("a", 0, 1, 0)]);
    assert_eq!(
        store
            .record_vote(matched, &voter(1), Vote::Helpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Unchanged
    );
    assert_eq!(a(), [insight_use("a", 0, 1, 0)]);
    assert_eq!(
        store
            .record_vote(matched, &voter(1), Vote::NotHelpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Changed
    );
    assert_eq!(a(), [insight_use("a", 0, 0, 1)]);
    assert_eq!(
        store
            .record_vote(matched, &voter(2), Vote::Helpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Recorded
    );
    assert_eq!(a(), [insight_use("a", 0, 1, 1)]);
    // From another handle, and back again.
    assert_eq!(
        h.open()
            .record_vote(matched, &voter(1), Vote::Helpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Changed
    );
    assert_eq!(a(), [insight_use("a", 0, 2, 0)]);

    // A vote on an answer without an insight is kept, and counts for no insight.
    assert_eq!(
        store
            .record_vote(no_match, &voter(1), Vote::NotHelpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Recorded
    );
    assert_eq!(a(), [insight_use("a", 0, 2, 0)]);
    // Another server's votes stay in its own totals.
    store
        .record_vote(others, &voter(1), Vote::NotHelpful, day("2026-03-03"))
        .unwrap();
    assert_eq!(a(), [insight_use("a", 0, 2, 0)]);
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(OTHER_GUILD),
            "2026-03-02",
            "2026-03-02"
        )
        .insights,
        [insight_use("a", 0, 0, 1)]
    );
    assert_eq!(
        stats(&store, UsageScope::Everywhere, "2026-03-01", "2026-03-31").insights,
        [insight_use("a", 0, 2, 1)]
    );
    // The totals are the answer's day's, whatever day the vote comes.
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(GUILD),
            "2026-03-03",
            "2026-12-31"
        ),
        UsageStats::default()
    );

    let unknown = ids.iter().max().unwrap() + 1_000;
    for id in [unknown, 0, u64::MAX, i64::MAX as u64 + 1] {
        assert_eq!(
            store
                .record_vote(id, &voter(1), Vote::Helpful, day("2026-03-03"))
                .unwrap(),
            VoteOutcome::UnknownAnswer,
            "{id}"
        );
    }
    assert_eq!(
        h.query_row("SELECT count(*) FROM answer_vote"),
        ["4"],
        "one row per voter and answer"
    );
}

pub fn gap_questions_are_kept_only_while_gaps_are_on(h: &impl Harness) {
    let store = h.open();
    assert!(
        !store.server_settings(GUILD).unwrap().gaps,
        "off by default"
    );
    store
        .record_answers(&[answer(Some(GUILD), "2026-03-01", None, Some("dropped"))])
        .unwrap();
    assert_eq!(
        h.query_row("SELECT count(*) FROM answer WHERE question IS NOT NULL"),
        ["0"],
        "gaps off: the question is not kept"
    );

    assert_eq!(store.set_gaps(GUILD, true).unwrap(), 0);
    assert!(store.server_settings(GUILD).unwrap().gaps);
    store.set_curator_role(GUILD, Some(11)).unwrap();
    assert!(
        store.server_settings(GUILD).unwrap().gaps,
        "other settings leave it"
    );
    store.set_gaps(OTHER_GUILD, true).unwrap();
    let ids = store
        .record_answers(&[
            answer(Some(GUILD), "2026-03-02", None, Some("how do I lead?")),
            answer(Some(GUILD), "2026-03-02", Some("a"), Some("matched fine")),
            answer(Some(GUILD), "2026-03-03", Some("b"), Some("voted down")),
            answer(Some(GUILD), "2026-03-03", None, Some("newest")),
            answer(Some(GUILD), "2026-03-03", None, None),
            answer(
                Some(OTHER_GUILD),
                "2026-03-03",
                None,
                Some("another server's"),
            ),
            answer(None, "2026-03-03", None, Some("a direct message")),
        ])
        .unwrap();
    assert_eq!(
        h.query_row("SELECT count(*) FROM answer WHERE guild_id = 0 AND question IS NOT NULL"),
        ["0"],
        "never for a direct message"
    );
    assert_eq!(
        store
            .record_vote(ids[2], &voter(1), Vote::NotHelpful, day("2026-03-03"))
            .unwrap(),
        VoteOutcome::Recorded
    );
    store
        .record_vote(ids[1], &voter(1), Vote::Helpful, day("2026-03-03"))
        .unwrap();

    let newest = gap(ids[3], "newest", "2026-03-03", true, false);
    let voted_down = gap(ids[2], "voted down", "2026-03-03", false, true);
    let first = gap(ids[0], "how do I lead?", "2026-03-02", true, false);
    assert_eq!(
        store.gaps(GUILD, day("2026-01-01"), 10).unwrap(),
        [newest.clone(), voted_down.clone(), first.clone()]
    );
    assert_eq!(
        store.gaps(GUILD, day("2026-01-01"), 2).unwrap(),
        [newest.clone(), voted_down.clone()]
    );
    assert_eq!(
        store.gaps(GUILD, day("2026-03-03"), 10).unwrap(),
        [newest.clone(), voted_down.clone()]
    );
    assert_eq!(
        store.gaps(GUILD, day("2026-03-04"), 10).unwrap(),
        Vec::<Gap>::new()
    );
    assert_eq!(
        store.gaps(OTHER_GUILD, day("2026-01-01"), 10).unwrap(),
        [gap(ids[5], "another server's", "2026-03-03", true, false)]
    );
    // A vote changed to helpful is no longer a gap.
    store
        .record_vote(ids[2], &voter(1), Vote::Helpful, day("2026-03-03"))
        .unwrap();
    assert_eq!(
        store.gaps(GUILD, day("2026-01-01"), 10).unwrap(),
        [newest.clone(), first.clone()]
    );

    // Off clears every kept question of the server at once, gaps or not yet.
    assert_eq!(store.set_gaps(GUILD, false).unwrap(), 4);
    assert!(!store.server_settings(GUILD).unwrap().gaps);
    assert_eq!(store.server_settings(GUILD).unwrap().curator_role, Some(11));
    assert_eq!(
        store.gaps(GUILD, day("2026-01-01"), 10).unwrap(),
        Vec::<Gap>::new()
    );
    assert_eq!(store.set_gaps(GUILD, false).unwrap(), 0);
    store
        .record_answers(&[answer(Some(GUILD), "2026-03-04", None, Some("while off"))])
        .unwrap();
    assert_eq!(store.set_gaps(GUILD, true).unwrap(), 0);
    assert_eq!(
        store.gaps(GUILD, day("2026-01-01"), 10).unwrap(),
        Vec::<Gap>::new(),
        "turning gaps on again brings nothing old back"
    );
    assert_eq!(
        store
            .gaps(OTHER_GUILD, day("2026-01-01"), 10)
            .unwrap()
            .len(),
        1,
        "the other server keeps its own"
    );
    // The answers themselves stay counted.
    assert_eq!(
        stats(
            &store,
            UsageScope::Server(GUILD),
            "2026-03-01",
            "2026-03-04"
        )
        .days,
        [
            day_answers("2026-03-01", 1, 1),
            day_answers("2026-03-02", 2, 1),
            day_answers("2026-03-03", 3, 2),
            day_answers("2026-03-04", 1, 1),
        ]
    );
}

pub fn prune_deletes_old_answers_but_keeps_the_daily_totals(h: &impl Harness) {
    let store = h.open();
    let today = day("2026-06-15");
    let ago = |n: u64| today.checked_sub_days(Days::new(n)).unwrap();
    let on = |n: u64| ago(n).format("%Y-%m-%d").to_string();
    store.set_gaps(GUILD, true).unwrap();
    let history = [
        answer(Some(GUILD), &on(400), None, Some("a year and more ago")), // 0: deleted
        answer(Some(GUILD), &on(400), Some("a"), None),                   // 1: deleted
        answer(Some(GUILD), &on(366), Some("a"), None),                   // 2: deleted
        answer(Some(GUILD), &on(365), Some("a"), None),                   // 3: kept
        answer(Some(GUILD), &on(40), None, Some("old gap")),              // 4: question cleared
        answer(Some(GUILD), &on(31), None, Some("older gap")),            // 5: question cleared
        answer(Some(GUILD), &on(30), None, Some("gap of 30 days")),       // 6: kept
        answer(Some(GUILD), &on(1), Some("a"), Some("no vote")),          // 7: cleared
        answer(Some(GUILD), &on(1), Some("b"), Some("voted helpful")),    // 8: cleared
        answer(Some(GUILD), &on(1), Some("b"), Some("voted down")),       // 9: kept
        answer(Some(GUILD), &on(0), Some("a"), Some("asked today")),      // 10: kept
        answer(None, &on(400), Some("a"), None),                          // 11: deleted
        answer(
            Some(GUILD),
            &on(10),
            Some("c"),
            Some("voted down a while ago"),
        ), // 12: kept
    ];
    // Each vote is cast on its answer's day.
    let cast_on = |i: usize| day(&history[i].day.format("%Y-%m-%d").to_string());
    let ids = store.record_answers(&history).unwrap();
    for (i, n) in [(1, 1), (1, 2), (3, 1), (8, 1), (11, 1)] {
        store
            .record_vote(ids[i], &voter(n), Vote::Helpful, cast_on(i))
            .unwrap();
    }
    for i in [9, 12] {
        store
            .record_vote(ids[i], &voter(1), Vote::NotHelpful, cast_on(i))
            .unwrap();
    }
    store.record_shown(GUILD, "a", ago(400)).unwrap();
    let scopes = [
        UsageScope::Server(GUILD),
        UsageScope::DirectMessages,
        UsageScope::Everywhere,
    ];
    let before: Vec<UsageStats> = scopes
        .iter()
        .map(|&scope| store.usage_stats(scope, ago(500), today).unwrap())
        .collect();
    assert_eq!(before[0].days.iter().map(|d| d.answers).sum::<u64>(), 12);
    assert_eq!(
        before[0].insights,
        [
            insight_use("a", 1, 3, 0),
            insight_use("b", 0, 1, 1),
            insight_use("c", 0, 0, 1)
        ]
    );

    assert_eq!(
        store.prune(today).unwrap(),
        Pruned {
            answers: 4,
            questions: 4,
            voter_keys: 2,
            suggestions: 0,
        }
    );
    let after: Vec<UsageStats> = scopes
        .iter()
        .map(|&scope| store.usage_stats(scope, ago(500), today).unwrap())
        .collect();
    assert_eq!(after, before, "the daily totals are never pruned");
    for i in [0, 1, 2, 11] {
        assert_eq!(
            store
                .record_vote(ids[i], &voter(9), Vote::NotHelpful, today)
                .unwrap(),
            VoteOutcome::UnknownAnswer
        );
    }
    for i in [3, 12] {
        assert_eq!(
            store
                .record_vote(ids[i], &voter(9), Vote::NotHelpful, today)
                .unwrap(),
            VoteOutcome::Closed,
            "kept, but past its {VOTE_WINDOW_DAYS} days of votes"
        );
    }
    assert_eq!(
        h.query_row("SELECT count(*) FROM answer_vote"),
        ["2"],
        "only the keys of answers still open to votes are kept"
    );
    // Within the window, a vote may still change; the day it closes is the 8th.
    assert_eq!(
        store
            .record_vote(ids[9], &voter(1), Vote::NotHelpful, today + Days::new(6))
            .unwrap(),
        VoteOutcome::Unchanged
    );
    assert_eq!(
        store
            .record_vote(ids[9], &voter(1), Vote::NotHelpful, today + Days::new(7))
            .unwrap(),
        VoteOutcome::Closed
    );
    assert_eq!(
        store.gaps(GUILD, ago(500), 100).unwrap(),
        [
            gap(ids[9], "voted down", &on(1), false, true),
            gap(ids[12], "voted down a while ago", &on(10), false, true),
            gap(ids[6], "gap of 30 days", &on(30), true, false),
        ],
        "a gap stays one when its voter keys are gone"
    );
    assert_eq!(
        h.query_row("SELECT count(*) FROM answer WHERE question IS NOT NULL"),
        ["4"],
        "today's question may still become a gap"
    );
    assert_eq!(store.prune(today).unwrap(), Pruned::default());
    // The next day: the answer of 365 days ago goes, and so do today's unvoted question and
    // the 30-day-old gap.
    let tomorrow = today.checked_add_days(Days::new(1)).unwrap();
    assert_eq!(
        store.prune(tomorrow).unwrap(),
        Pruned {
            answers: 1,
            questions: 2,
            voter_keys: 0,
            suggestions: 0,
        }
    );
    assert_eq!(
        store.gaps(GUILD, ago(500), 100).unwrap(),
        [
            gap(ids[9], "voted down", &on(1), false, true),
            gap(ids[12], "voted down a while ago", &on(10), false, true),
        ]
    );
}

pub fn the_secret_is_made_once_and_shared(h: &impl Harness) {
    const HANDLES: usize = 4;
    let handles: Vec<_> = (0..HANDLES).map(|_| h.open()).collect();
    let barrier = Barrier::new(HANDLES);
    let secrets: Vec<[u8; 32]> = thread::scope(|scope| {
        let workers: Vec<_> = handles
            .iter()
            .map(|store| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    store.secret().unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let first = secrets[0];
    assert!(secrets.iter().all(|s| *s == first), "{secrets:?}");
    assert_ne!(first, [0; 32]);
    assert_eq!(handles[0].secret().unwrap(), first);
    drop(handles);
    assert_eq!(h.open().secret().unwrap(), first, "kept across a restart");
    assert_eq!(h.query_row("SELECT count(*) FROM secret"), ["1"]);
}

pub fn concurrent_votes_on_one_answer_are_all_counted(h: &impl Harness) {
    const THREADS: u32 = 6;
    const VOTERS: u32 = 20;
    let handles = [h.open(), h.open()];
    let id = handles[0]
        .record_answers(&[answer(Some(GUILD), "2026-03-02", Some("a"), None)])
        .unwrap()[0];
    let barrier = Barrier::new(THREADS as usize);
    let outcomes: Vec<VoteOutcome> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (barrier, store) = (&barrier, &handles[t as usize % 2]);
                scope.spawn(move || {
                    barrier.wait();
                    let mut outcomes = Vec::new();
                    for v in 0..VOTERS {
                        let who = voter(t * VOTERS + v);
                        outcomes.push(
                            store
                                .record_vote(id, &who, Vote::Helpful, day("2026-03-03"))
                                .unwrap(),
                        );
                        if v % 2 == 0 {
                            outcomes.push(
                                store
                                    .record_vote(id, &who, Vote::NotHelpful, day("2026-03-03"))
                                    .unwrap(),
                            );
                        }
                    }
                    outcomes
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let count = |o: VoteOutcome| outcomes.iter().filter(|&&x| x == o).count() as u32;
    assert_eq!(count(VoteOutcome::Recorded), THREADS * VOTERS);
    assert_eq!(count(VoteOutcome::Changed), THREADS * VOTERS / 2);
    assert_eq!(
        stats(
            &handles[1],
            UsageScope::Server(GUILD),
            "2026-03-02",
            "2026-03-02"
        )
        .insights,
        [insight_use(
            "a",
            0,
            u64::from(THREADS * VOTERS / 2),
            u64::from(THREADS * VOTERS / 2)
        )]
    );
}

/// A database of schema version 2 (server settings, shown counts) is brought to the current
/// version on open, with its rows kept and the new tables usable.
pub fn a_version_2_database_migrates_forward_keeping_its_rows(h: &impl Harness) {
    h.create_version_2();
    assert_eq!(h.schema_version(), 2);
    h.insert_weeklies(2);
    h.exec(
        "INSERT INTO server_settings (guild_id, insight_source, curator_role, review_channel) \
         VALUES (2, 'ours', 7, 8); \
         INSERT INTO hidden_insight (guild_id, insight_id) VALUES (2, 'hidden-one'); \
         INSERT INTO insight_shown (guild_id, insight_id, count) VALUES (2, 'a', 4)",
    )
    .unwrap();

    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert_eq!(guild_ids(&store.active_feeds().unwrap()), [1, 2]);
    assert_eq!(
        store.server_settings(2).unwrap(),
        ServerSettings {
            source: InsightSource::Ours,
            curator_role: Some(7),
            review_channel: Some(8),
            hidden: vec!["hidden-one".into()],
            packs_off: vec![],
            gaps: false,
        }
    );
    assert_eq!(
        store.shown_counts(2).unwrap(),
        HashMap::from([("a".to_string(), 4)])
    );
    // The new tables work.
    store.set_gaps(2, true).unwrap();
    let ids = store
        .record_answers(&[answer(Some(2), "2026-03-02", None, Some("new"))])
        .unwrap();
    store.record_shown(2, "a", day("2026-03-02")).unwrap();
    assert_eq!(
        store.gaps(2, day("2026-03-01"), 5).unwrap(),
        [gap(ids[0], "new", "2026-03-02", true, false)]
    );
    assert_eq!(
        stats(&store, UsageScope::Server(2), "2026-03-02", "2026-03-02"),
        UsageStats {
            days: vec![day_answers("2026-03-02", 1, 1)],
            insights: vec![insight_use("a", 1, 0, 0)],
        }
    );
    assert_eq!(
        store.shown_counts(2).unwrap(),
        HashMap::from([("a".to_string(), 5)])
    );
    drop(store);
    // Opening again migrates nothing more.
    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert!(store.server_settings(2).unwrap().gaps);
}

// ---- what a server can make the store keep (schema version 4) ----

/// A question's vector as the bot would store it (opaque to the store): distinct per `n`.
fn question_vector(n: u32, model: u64) -> StoredVectors {
    StoredVectors {
        fingerprint: model,
        bytes: (0..391u32).map(|i| (i * 13 + n) as u8).collect(),
    }
}

fn with_vector(mut new: NewAnswer, vector: StoredVectors) -> NewAnswer {
    new.question_vector = Some(vector);
    new
}

fn kept_vectors(h: &impl Harness) -> String {
    h.query_row("SELECT count(*) FROM answer WHERE question_vector IS NOT NULL")[0].clone()
}

pub fn gap_vectors_are_kept_with_their_question_and_go_with_it(h: &impl Harness) {
    let store = h.open();
    store.set_gaps(GUILD, true).unwrap();
    let model = u64::MAX - 5; // above i64::MAX: stored reinterpreted
    let ids = store
        .record_answers(&[
            with_vector(
                answer(Some(GUILD), "2026-03-02", None, Some("with a vector")),
                question_vector(1, model),
            ),
            answer(Some(GUILD), "2026-03-02", None, Some("kept without one")),
            with_vector(
                answer(
                    Some(OTHER_GUILD),
                    "2026-03-02",
                    None,
                    Some("gaps off there"),
                ),
                question_vector(2, model),
            ),
            with_vector(
                answer(None, "2026-03-02", None, Some("a direct message")),
                question_vector(3, model),
            ),
            with_vector(
                answer(Some(GUILD), "2026-03-02", Some("a"), None),
                question_vector(4, model),
            ),
        ])
        .unwrap();
    // Newest first; on one day, by id (the later answer first).
    assert_eq!(
        store.gaps(GUILD, day("2026-03-01"), 10).unwrap(),
        [
            gap(ids[1], "kept without one", "2026-03-02", true, false),
            Gap {
                vector: Some(question_vector(1, model)),
                ..gap(ids[0], "with a vector", "2026-03-02", true, false)
            },
        ]
    );
    assert_eq!(kept_vectors(h), "1", "no vector without its question");

    // The listing writes back what it computed: only for this server's kept questions.
    let new = question_vector(5, model);
    assert_eq!(
        store
            .set_gap_vectors(
                GUILD,
                &[
                    (ids[1], new.clone()),
                    (ids[2], new.clone()),
                    (ids[3], new.clone()),
                    (ids[4], new.clone()),
                    (999_999, new.clone()),
                ],
            )
            .unwrap(),
        1
    );
    assert_eq!(store.set_gap_vectors(GUILD, &[]).unwrap(), 0);
    let listed = store.gaps(GUILD, day("2026-03-01"), 10).unwrap();
    let by_id: HashMap<u64, Option<StoredVectors>> = listed
        .into_iter()
        .map(|g| (g.answer_id, g.vector))
        .collect();
    assert_eq!(by_id[&ids[0]], Some(question_vector(1, model)));
    assert_eq!(by_id[&ids[1]], Some(new));
    assert_eq!(kept_vectors(h), "2");

    // Turning gaps off deletes the vectors with the text.
    assert_eq!(store.set_gaps(GUILD, false).unwrap(), 2);
    assert_eq!(kept_vectors(h), "0");
}

pub fn kept_questions_are_capped_per_server_oldest_first(h: &impl Harness) {
    let store = h.open();
    store.set_gaps(GUILD, true).unwrap();
    store.set_gaps(OTHER_GUILD, true).unwrap();
    let first = day("2025-01-01");
    let on = |i: usize| {
        first
            .checked_add_days(Days::new(i as u64))
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    // One question a day: the cap's "oldest" is then one order.
    let history: Vec<NewAnswer> = (0..KEPT_QUESTIONS_PER_SERVER)
        .map(|i| {
            with_vector(
                answer(Some(GUILD), &on(i), None, Some(&format!("question {i}"))),
                question_vector(i as u32, 7),
            )
        })
        .collect();
    let mut ids = store.record_answers(&history).unwrap();
    let others: Vec<NewAnswer> = (0..10)
        .map(|i| answer(Some(OTHER_GUILD), &on(i), None, Some("another server's")))
        .collect();
    store.record_answers(&others).unwrap();
    let kept = |guild: u64| {
        h.query_row(&format!(
            "SELECT count(*) FROM answer WHERE guild_id = {} AND question IS NOT NULL",
            guild as i64
        ))[0]
            .clone()
    };
    assert_eq!(
        kept(GUILD),
        KEPT_QUESTIONS_PER_SERVER.to_string(),
        "at the cap: all kept"
    );

    // One more: the oldest go, down to KEPT_QUESTIONS_TRIMMED_TO, text and vector.
    let newest = KEPT_QUESTIONS_PER_SERVER;
    ids.extend(
        store
            .record_answers(&[answer(Some(GUILD), &on(newest), None, Some("the newest"))])
            .unwrap(),
    );
    assert_eq!(kept(GUILD), KEPT_QUESTIONS_TRIMMED_TO.to_string());
    let listed: Vec<u64> = store
        .gaps(GUILD, first, 10_000)
        .unwrap()
        .iter()
        .map(|g| g.answer_id)
        .collect();
    let cleared = newest + 1 - KEPT_QUESTIONS_TRIMMED_TO;
    let expected: Vec<u64> = ids[cleared..].iter().rev().copied().collect();
    assert_eq!(listed, expected, "the newest are kept, the oldest cleared");
    assert_eq!(
        kept_vectors(h),
        (KEPT_QUESTIONS_TRIMMED_TO - 1).to_string(),
        "the cleared questions' vectors went with them (the newest had none)"
    );
    assert_eq!(kept(OTHER_GUILD), "10", "another server is untouched");
    // The answers stay counted.
    let usage = stats(
        &store,
        UsageScope::Server(GUILD),
        "2025-01-01",
        "2027-12-31",
    );
    assert_eq!(
        usage.days.iter().map(|d| d.answers).sum::<u64>(),
        newest as u64 + 1
    );
    // Below the cap again: the next question is simply kept.
    store
        .record_answers(&[answer(Some(GUILD), &on(newest + 1), None, Some("next"))])
        .unwrap();
    assert_eq!(kept(GUILD), (KEPT_QUESTIONS_TRIMMED_TO + 1).to_string());
}

pub fn decided_suggestions_are_deleted_after_their_period(h: &impl Harness) {
    let store = h.open();
    let rejected = add(&store, new_suggestion(GUILD, MEMBER, 1)).unwrap();
    let approved = add(&store, new_suggestion(GUILD, MEMBER, 2)).unwrap();
    let later = add(&store, new_suggestion(OTHER_GUILD, MEMBER, 3)).unwrap();
    let pending = add(&store, new_suggestion(GUILD, MEMBER, 4)).unwrap();
    let decide = |guild: u64, id: u64, decision: Decision, at: &str| {
        store
            .decide_suggestion(guild, id, decision, CURATOR, utc(at))
            .unwrap()
            .unwrap()
    };
    decide(
        GUILD,
        rejected.id,
        Decision::Reject { reason: None },
        "2026-04-02T23:59:59Z",
    );
    decide(
        GUILD,
        approved.id,
        approve(server_insight(GUILD, "from-a-suggestion", 2), 10),
        "2026-04-02T08:00:00Z",
    );
    decide(
        OTHER_GUILD,
        later.id,
        Decision::Reject {
            reason: Some("no".into()),
        },
        "2026-04-03T00:00:00Z",
    );
    let decided_on = day("2026-04-02");
    let days_after = |n: i64| decided_on.checked_add_days(Days::new(n as u64)).unwrap();

    // Until DECIDED_SUGGESTION_RETENTION_DAYS have passed since the decision's day, all stay.
    let last_kept = days_after(DECIDED_SUGGESTION_RETENTION_DAYS);
    assert_eq!(store.prune(last_kept).unwrap().suggestions, 0);
    for (guild, id) in [
        (GUILD, rejected.id),
        (GUILD, approved.id),
        (OTHER_GUILD, later.id),
        (GUILD, pending.id),
    ] {
        assert!(store.suggestion(guild, id).unwrap().is_some(), "{id}");
    }
    // The day after: the two decided on 2026-04-02 go; the one decided on the 3rd and the
    // pending one stay.
    let pruned = store.prune(last_kept.succ_opt().unwrap()).unwrap();
    assert_eq!(pruned.suggestions, 2);
    assert_eq!(store.suggestion(GUILD, rejected.id).unwrap(), None);
    assert_eq!(store.suggestion(GUILD, approved.id).unwrap(), None);
    assert!(store.suggestion(OTHER_GUILD, later.id).unwrap().is_some());
    assert_eq!(
        store.suggestion(GUILD, pending.id).unwrap().unwrap().status,
        SuggestionStatus::Pending
    );
    assert_eq!(
        insight_ids(&store.server_insights(GUILD).unwrap()),
        ["from-a-suggestion"],
        "an approved suggestion's insight is the server's: it stays"
    );
    // Pending suggestions are never deleted, however old.
    let much_later = days_after(10 * DECIDED_SUGGESTION_RETENTION_DAYS);
    assert_eq!(store.prune(much_later).unwrap().suggestions, 1);
    assert!(store.suggestion(GUILD, pending.id).unwrap().is_some());
    assert_eq!(store.pending_suggestion_count(GUILD).unwrap(), 1);
    // Ids are never handed out again.
    let next = add(&store, new_suggestion(GUILD, MEMBER, 5)).unwrap();
    assert!(next.id > pending.id);
}

/// A database of schema version 3 (answers and kept questions without vectors) is brought to
/// the current version on open: its questions are kept, without a vector, and can get one.
pub fn a_version_3_database_migrates_forward_keeping_its_rows(h: &impl Harness) {
    h.create_version_3();
    assert_eq!(h.schema_version(), 3);
    h.exec(
        "INSERT INTO server_settings (guild_id, gaps) VALUES (2, true); \
         INSERT INTO answer (id, guild_id, day, insight_id, no_close_match, question) \
         VALUES (5, 2, '2026-03-02', NULL, true, 'kept before vectors')",
    )
    .unwrap();

    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert_eq!(
        store.gaps(2, day("2026-03-01"), 5).unwrap(),
        [gap(5, "kept before vectors", "2026-03-02", true, false)],
        "no vector: the listing embeds it once"
    );
    assert_eq!(
        store
            .set_gap_vectors(2, &[(5, question_vector(1, 9))])
            .unwrap(),
        1
    );
    assert_eq!(
        store.gaps(2, day("2026-03-01"), 5).unwrap()[0].vector,
        Some(question_vector(1, 9))
    );
    drop(store);
    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.gaps(2, day("2026-03-01"), 5).unwrap().len(), 1);
}

pub fn turning_packs_off_and_on(h: &impl Harness) {
    let store = h.open();
    assert_eq!(
        store.server_settings(GUILD).unwrap().packs_off,
        Vec::<String>::new(),
        "every pack is on by default"
    );
    assert!(store.set_pack_on(GUILD, "team-health", false).unwrap());
    assert!(
        !store.set_pack_on(GUILD, "team-health", false).unwrap(),
        "already off"
    );
    assert!(store.set_pack_on(GUILD, "feedback", false).unwrap());
    assert!(store.set_pack_on(GUILD, "Hiring", false).unwrap());
    assert!(store.set_pack_on(GUILD, "a-b", false).unwrap());
    assert!(store.set_pack_on(GUILD, "ab", false).unwrap());
    // Sorted by code point, whatever the database's collation.
    assert_eq!(
        store.server_settings(GUILD).unwrap().packs_off,
        ["Hiring", "a-b", "ab", "feedback", "team-health"]
    );
    assert!(store.set_pack_on(GUILD, "team-health", true).unwrap());
    assert!(
        !store.set_pack_on(GUILD, "team-health", true).unwrap(),
        "already on"
    );
    assert!(!store.set_pack_on(GUILD, "never-off", true).unwrap());
    let settings = store.server_settings(GUILD).unwrap();
    assert_eq!(settings.packs_off, ["Hiring", "a-b", "ab", "feedback"]);
    assert_eq!(
        ServerSettings {
            packs_off: vec![],
            ..settings
        },
        ServerSettings::default(),
        "turning packs off sets nothing else"
    );
    // A reopened store (a restart) keeps the choice.
    drop(store);
    let store = h.open();
    assert_eq!(
        store.server_settings(GUILD).unwrap().packs_off,
        ["Hiring", "a-b", "ab", "feedback"]
    );
    // The schema refuses an id no pack could have.
    let err = h
        .exec(&format!(
            "INSERT INTO pack_off (guild_id, pack_id) VALUES ({GUILD}, '{}')",
            "p".repeat(65)
        ))
        .unwrap_err();
    assert!(err.to_lowercase().contains("check"), "{err}");
}

pub fn a_version_4_database_migrates_forward_keeping_its_rows(h: &impl Harness) {
    h.create_version_4();
    assert_eq!(h.schema_version(), 4);
    h.exec(
        "INSERT INTO server_settings (guild_id, insight_source, curator_role) \
         VALUES (2, 'all', 7); \
         INSERT INTO hidden_insight (guild_id, insight_id) VALUES (2, 'hidden-one')",
    )
    .unwrap();

    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    let before = store.server_settings(2).unwrap();
    assert_eq!(before.curator_role, Some(7));
    assert_eq!(before.hidden, ["hidden-one"]);
    assert!(
        before.packs_off.is_empty(),
        "a server from before packs has every pack on"
    );
    assert!(store.set_pack_on(2, "hiring", false).unwrap());
    drop(store);
    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert_eq!(
        store.server_settings(2).unwrap(),
        ServerSettings {
            packs_off: vec!["hiring".into()],
            ..before
        }
    );
}

/// A database of schema version 6 (one weekly schedule per server, its rotation and post log)
/// is brought to version 7: each schedule becomes the weekly feed of its channel, with its
/// rotation (the next claim continues the cycle) and its posts, keyed by their ISO week and
/// starting on its Monday.
pub fn a_version_6_database_migrates_its_weekly_schedules_to_feeds(h: &impl Harness) {
    h.create_version_6();
    assert_eq!(h.schema_version(), 6);
    h.exec(
        "INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, active_since, \
             failure_reason, failed_at, updated_at) \
         VALUES (2, 20, 'tue', '08:15', 'America/New_York', true, '2026-03-03T10:00:00.000Z', \
             NULL, NULL, '2026-03-04T10:00:00.000Z'); \
         INSERT INTO weekly (guild_id, channel_id, weekday, time, zone, enabled, active_since, \
             failure_reason, failed_at, updated_at) \
         VALUES (3, 30, 'mon', '09:00', 'Europe/London', true, '2026-03-03T10:00:00.000Z', \
             '403 Missing Access', '2026-03-09T09:00:00.000Z', '2026-03-09T09:00:00.000Z'); \
         INSERT INTO rotation (guild_id, state, updated_at) \
         VALUES (2, '{\"cycle\": 1, \"order\": [\"insight-00\", \"insight-01\", \"insight-02\", \
             \"insight-03\"], \"shown\": 3, \"last\": \"insight-02\"}', '2026-12-01T13:00:00.000Z'); \
         INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, \
             source, claimed_at, updated_at, attempts, message_id, posted_at) \
         VALUES (2, 2026, 1, 19, 'insight-00', 'iw2026012', 'schedule', \
             '2025-12-30T13:15:00.000Z', '2025-12-30T13:15:01.000Z', 1, 4141, \
             '2025-12-30T13:15:01.000Z'); \
         INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, \
             source, claimed_at, updated_at, attempts, message_id, posted_at) \
         VALUES (2, 2026, 48, 20, 'insight-01', 'iw2026482', 'post_now', \
             '2026-11-24T13:15:00.000Z', '2026-11-24T13:15:01.000Z', 1, 4242, \
             '2026-11-24T13:15:01.000Z'); \
         INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, \
             source, claimed_at, updated_at, attempts, last_error, retry_at) \
         VALUES (2, 2026, 53, 20, 'insight-02', 'iw2026532', 'schedule', \
             '2026-12-29T13:15:00.000Z', '2026-12-29T13:16:00.000Z', 2, '503 upstream', \
             '2026-12-29T13:20:00.000Z')",
    )
    .unwrap();

    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    let feed = feed_of(2, 20);
    assert_eq!(
        store.feeds(2).unwrap(),
        [FeedSettings {
            feed,
            schedule: Schedule::weekly(Weekday::Tue, hm(8, 15), chrono_tz::America::New_York),
            topic: None,
            thread: false,
            ping_role: None,
            forum: false,
            enabled: true,
            pause: None,
            active_since: utc("2026-03-03T10:00:00Z"),
            failure: None,
            updated_at: utc("2026-03-04T10:00:00Z"),
        }]
    );
    let failing = store.feed(feed_of(3, 30)).unwrap().unwrap();
    assert_eq!(
        failing.failure,
        Some(Failure {
            reason: "403 Missing Access".into(),
            at: utc("2026-03-09T09:00:00Z"),
        })
    );
    assert_eq!(feed_ids(&store.active_feeds().unwrap()), [feed]);

    // The posts, under their weeks, starting on their Mondays (2026-W01 in 2025).
    let first = store.post(feed, week(1)).unwrap().unwrap();
    assert_eq!(
        (
            first.channel_id,
            first.insight_id.as_str(),
            first.nonce.as_str(),
            first.message_id,
            first.source
        ),
        (
            19,
            "insight-00",
            "iw2026012",
            Some(4141),
            PostSource::Schedule
        ),
        "a post keeps the channel it went to, and its nonce"
    );
    assert!(!first.thread_wanted);
    let confirmed = store.post(feed, week(48)).unwrap().unwrap();
    assert_eq!(
        (
            confirmed.message_id,
            confirmed.posted_at,
            confirmed.source,
            confirmed.attempts
        ),
        (
            Some(4242),
            Some(utc("2026-11-24T13:15:01Z")),
            PostSource::PostNow,
            1
        )
    );
    assert_eq!(store.last_post(feed).unwrap(), Some(confirmed));
    let unconfirmed = store.unconfirmed_posts().unwrap();
    assert_eq!(keys(&unconfirmed), [(feed, week(53))]);
    assert_eq!(
        (
            unconfirmed[0].attempts,
            unconfirmed[0].last_error.as_deref(),
            unconfirmed[0].retry_at
        ),
        (2, Some("503 upstream"), Some(utc("2026-12-29T13:20:00Z")))
    );
    for (period, monday) in [
        ("2026-W01", "2025-12-29"),
        ("2026-W48", "2026-11-23"),
        ("2026-W53", "2026-12-28"),
    ] {
        assert_eq!(
            h.query_row(&format!(
                "SELECT period_start FROM feed_post WHERE guild_id = 2 AND period = '{period}'"
            )),
            [monday]
        );
    }
    let from = |d: &str| store.claimed_slots_since(day(d)).unwrap();
    assert_eq!(from("2025-12-29").len(), 3);
    assert_eq!(
        from("2025-12-30"),
        [(feed, week(48)), (feed, week(53))].into()
    );
    assert_eq!(from("2026-12-28"), [(feed, week(53))].into());

    // The rotation goes on where it was: the cycle's last insight, then a new cycle.
    let rotation = store.rotation(feed).unwrap();
    assert_eq!(
        (rotation.cycle, rotation.shown, rotation.last.as_deref()),
        (1, 3, Some("insight-02"))
    );
    let ids = ids(4);
    let mut rng = StdRng::seed_from_u64(61);
    let next = claim_in(&store, feed, week_of(2027, 1), &mut rng, &refs(&ids))
        .unwrap()
        .into_record();
    assert_eq!(next.insight_id, "insight-03");
    assert_eq!(next.nonce, post_nonce(feed, week_of(2027, 1)));
    let after = claim_in(&store, feed, week_of(2027, 2), &mut rng, &refs(&ids))
        .unwrap()
        .into_record();
    assert_ne!(
        after.insight_id, "insight-03",
        "a new cycle never repeats the last"
    );
    assert_eq!(store.rotation(feed).unwrap().cycle, 2);
    // The claimed weeks are still claimed.
    assert!(matches!(
        claim_in(&store, feed, week(48), &mut rng, &refs(&ids)),
        Some(Claim::AlreadyClaimed(_))
    ));

    // The old tables are gone.
    for table in ["weekly", "rotation", "post_log"] {
        assert!(
            h.exec(&format!("SELECT count(*) FROM {table}")).is_err(),
            "{table}"
        );
    }
    drop(store);
    // Opening again migrates nothing more.
    let store = h.open();
    assert_eq!(h.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.feeds(2).unwrap().len(), 1);
    assert_eq!(store.rotation(feed).unwrap().cycle, 2);
}
