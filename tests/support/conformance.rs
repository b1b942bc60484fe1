//! The store's behaviour, once, for every backend: what `Backend`'s documentation promises
//! (claims, rotation, attempts, confirmation, release, the scheduler's queries, bad rows), checked
//! the same way against SQLite (`tests/store_sqlite.rs`) and PostgreSQL
//! (`tests/store_postgres.rs`).
//!
//! A backend's test file implements [`Harness`] (open a handle on a test's own database, run raw
//! SQL as an operator's shell would) and expands [`conformance_suite!`], which declares one
//! `#[test]` per function below. A function missing from the macro's list is dead code, which
//! `clippy -D warnings` refuses, so no test is forgotten for one backend.
//!
//! The raw SQL here is written to mean the same in both dialects (ISO instants as text literals,
//! which PostgreSQL casts and SQLite stores as is).

// Each includer uses the whole suite, but not every helper of the harness side.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashSet};
use std::sync::Barrier;
use std::thread;

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Europe::London;
use insight_bot::store::{
    post_nonce, Backend, Claim, Failure, PostSource, Store, StoreError, WeeklySettings,
};
use insight_bot::weekly::rotation::RotationState;
use insight_bot::weekly::schedule::{WeekKey, WeeklySchedule};
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
    /// statement, for the tests about many servers.
    fn insert_weeklies(&self, count: u64);
}

/// Declares one `#[test]` per conformance test, each on a fresh harness from `$harness`.
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance::conformance_suite!(@tests $harness;
            reopening_keeps_everything,
            weekly_settings_round_trip,
            ids_round_trip_over_the_whole_u64_range,
            active_weeklies_excludes_disabled_and_failing_and_set_clears_a_failure,
            a_stored_schedule_that_no_longer_parses_is_an_error_for_that_server_only,
            active_weeklies_reads_ten_thousand_servers_quickly,
            claiming_a_week_twice_returns_the_first_claim_and_advances_the_rotation_once,
            an_empty_collection_claims_nothing,
            a_week_that_does_not_exist_is_refused,
            eleven_weeks_show_eleven_insights_once_each_across_a_restart,
            the_primary_key_refuses_a_second_row_for_the_same_week,
            two_handles_racing_for_the_same_weeks_claim_each_week_once,
            two_handles_claiming_different_weeks_of_one_server_advance_its_rotation_in_turn,
            attempts_confirmation_and_release,
            last_post_orders_by_week_across_years,
            unconfirmed_posts_lists_only_unconfirmed_claims_oldest_week_first,
            claimed_slots_since_lists_every_claim_from_a_week_on_across_years,
            a_broken_rotation_row_is_an_error_for_that_server,
            store_calls_from_inside_a_multi_thread_runtime,
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

const GUILD: u64 = 1_100_000_000_000_000_001;
const CHANNEL: u64 = 1_200_000_000_000_000_002;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn monday_9_london() -> WeeklySchedule {
    WeeklySchedule::new(
        Weekday::Mon,
        NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        London,
    )
}

fn week(n: u32) -> WeekKey {
    WeekKey {
        year: 2026,
        week: n,
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("insight-{i:02}")).collect()
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

fn claim_week(store: &impl Backend, rng: &mut StdRng, ids: &[String], w: u32) -> Option<Claim> {
    store
        .claim(
            GUILD,
            week(w),
            CHANNEL,
            &refs(ids),
            PostSource::Schedule,
            rng,
            utc("2026-03-02T09:00:00Z"),
        )
        .unwrap()
}

fn guild_ids(settings: &[WeeklySettings]) -> Vec<u64> {
    settings.iter().map(|s| s.guild_id).collect()
}

// ---- weekly settings ----

pub fn reopening_keeps_everything(h: &impl Harness) {
    let ids = ids(3);
    let mut rng = StdRng::seed_from_u64(1);
    let (settings, claimed) = {
        let store = h.open();
        let settings = store
            .set_weekly(
                GUILD,
                CHANNEL,
                &monday_9_london(),
                utc("2026-03-03T10:00:00Z"),
            )
            .unwrap();
        let claimed = claim_week(&store, &mut rng, &ids, 10)
            .unwrap()
            .into_record();
        store
            .confirm_post(GUILD, week(10), 42, utc("2026-03-09T09:00:01Z"))
            .unwrap();
        (settings, claimed)
    };
    let store = h.open();
    assert_eq!(store.weekly(GUILD).unwrap(), Some(settings));
    let post = store.post(GUILD, week(10)).unwrap().unwrap();
    assert_eq!(post.insight_id, claimed.insight_id);
    assert_eq!(post.message_id, Some(42));
    assert_eq!(store.rotation(GUILD).unwrap().shown, 1);
}

pub fn weekly_settings_round_trip(h: &impl Harness) {
    let store = h.open();
    assert_eq!(store.weekly(GUILD).unwrap(), None);
    assert!(!store
        .disable_weekly(GUILD, utc("2026-03-03T10:00:00Z"))
        .unwrap());

    let set_at = utc("2026-03-03T10:00:00.123456Z");
    let settings = store
        .set_weekly(GUILD, CHANNEL, &monday_9_london(), set_at)
        .unwrap();
    let expected = WeeklySettings {
        guild_id: GUILD,
        channel_id: CHANNEL,
        schedule: monday_9_london(),
        enabled: true,
        active_since: utc("2026-03-03T10:00:00.123Z"), // stored to the millisecond
        failure: None,
        updated_at: utc("2026-03-03T10:00:00.123Z"),
    };
    assert_eq!(settings, expected);
    assert_eq!(store.weekly(GUILD).unwrap(), Some(expected.clone()));

    let off_at = utc("2026-03-04T08:00:00Z");
    assert!(store.disable_weekly(GUILD, off_at).unwrap());
    assert!(!store.disable_weekly(GUILD, off_at).unwrap(), "already off");
    let off = store.weekly(GUILD).unwrap().unwrap();
    assert_eq!(
        off,
        WeeklySettings {
            enabled: false,
            updated_at: off_at,
            ..expected
        }
    );

    // Setting again re-enables with the new values and a new active_since.
    let friday = WeeklySchedule::parse("fri", "17:30", "America/New_York").unwrap();
    let again = store
        .set_weekly(GUILD, 77, &friday, utc("2026-03-05T00:00:00Z"))
        .unwrap();
    assert_eq!(
        (again.channel_id, again.schedule, again.enabled),
        (77, friday, true)
    );
    assert_eq!(again.active_since, utc("2026-03-05T00:00:00Z"));
    // Stored as the text an admin types, readable in the database's shell.
    assert_eq!(
        h.query_row(&format!(
            "SELECT weekday, time, zone FROM weekly WHERE guild_id = {GUILD}"
        )),
        ["fri", "17:30", "America/New_York"]
    );
}

pub fn ids_round_trip_over_the_whole_u64_range(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    for id in [1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let s = store.set_weekly(id, id, &monday_9_london(), now).unwrap();
        assert_eq!((s.guild_id, s.channel_id), (id, id));
        let mut rng = StdRng::seed_from_u64(id);
        let claim = store
            .claim(id, week(3), id, &["a"], PostSource::PostNow, &mut rng, now)
            .unwrap()
            .unwrap();
        assert_eq!(claim.record().guild_id, id);
        assert_eq!(claim.record().channel_id, id);
        store.confirm_post(id, week(3), id, now).unwrap();
        assert_eq!(store.last_post(id).unwrap().unwrap().message_id, Some(id));
        assert!(store
            .claimed_slots_since(week(3))
            .unwrap()
            .contains(&(id, week(3))));
    }
}

pub fn active_weeklies_excludes_disabled_and_failing_and_set_clears_a_failure(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    for g in 1..=4 {
        store
            .set_weekly(g, 100 + g, &monday_9_london(), now)
            .unwrap();
    }
    store.disable_weekly(2, now).unwrap();
    let failed_at = utc("2026-03-09T09:00:00Z");
    store
        .mark_failing(3, "403 Missing Access on channel 103", failed_at)
        .unwrap();
    store.mark_failing(99, "no such server", failed_at).unwrap(); // nothing to mark
    assert_eq!(store.weekly(99).unwrap(), None);
    assert_eq!(guild_ids(&store.active_weeklies().unwrap()), [1, 4]);
    assert_eq!(
        store.weekly(3).unwrap().unwrap().failure,
        Some(Failure {
            reason: "403 Missing Access on channel 103".into(),
            at: failed_at,
        })
    );

    let reset = store
        .set_weekly(3, 203, &monday_9_london(), utc("2026-03-10T12:00:00Z"))
        .unwrap();
    assert_eq!(reset.failure, None);
    assert_eq!(reset.active_since, utc("2026-03-10T12:00:00Z"));
    assert_eq!(guild_ids(&store.active_weeklies().unwrap()), [1, 3, 4]);
}

pub fn a_stored_schedule_that_no_longer_parses_is_an_error_for_that_server_only(h: &impl Harness) {
    let store = h.open();
    let now = utc("2026-03-03T10:00:00Z");
    store.set_weekly(1, 10, &monday_9_london(), now).unwrap();
    store.set_weekly(2, 20, &monday_9_london(), now).unwrap();
    h.exec("UPDATE weekly SET zone = 'Mars/Olympus_Mons' WHERE guild_id = 2")
        .unwrap();
    let err = store.weekly(2).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                guild_id: 2,
                table: "weekly",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("Mars/Olympus_Mons"), "{message}");
    assert!(message.contains("server 2"), "{message}");
    assert!(message.contains(&store.describe()), "{message}");
    assert_eq!(
        guild_ids(&store.active_weeklies().unwrap()),
        [1],
        "the broken row is skipped, the others still run"
    );
    // /weekly set replaces the broken row.
    store.set_weekly(2, 20, &monday_9_london(), now).unwrap();
    assert!(store.weekly(2).unwrap().is_some());
}

pub fn active_weeklies_reads_ten_thousand_servers_quickly(h: &impl Harness) {
    let store = h.open();
    h.insert_weeklies(10_000);
    let started = std::time::Instant::now();
    let active = store.active_weeklies().unwrap();
    let took = started.elapsed();
    assert_eq!(active.len(), 10_000);
    assert_eq!(active[0].schedule, monday_9_london());
    assert!(
        active.windows(2).all(|w| w[0].guild_id < w[1].guild_id),
        "ordered by server"
    );
    // Typically a few milliseconds in release and tens in a debug build.
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
}

// ---- claims ----

pub fn claiming_a_week_twice_returns_the_first_claim_and_advances_the_rotation_once(
    h: &impl Harness,
) {
    let store = h.open();
    let ids = ids(5);
    let mut rng = StdRng::seed_from_u64(9);
    let Some(Claim::Claimed(first)) = claim_week(&store, &mut rng, &ids, 10) else {
        panic!("the first claim should claim");
    };
    assert_eq!(first.week, week(10));
    assert_eq!(first.channel_id, CHANNEL);
    assert_eq!(first.nonce, post_nonce(GUILD, week(10)));
    assert_eq!(first.source, PostSource::Schedule);
    assert_eq!(first.claimed_at, utc("2026-03-02T09:00:00Z"));
    assert_eq!(first.attempts, 0);
    assert_eq!(first.message_id, None);
    assert!(!first.is_confirmed());
    let rotation = store.rotation(GUILD).unwrap();
    assert_eq!((rotation.cycle, rotation.shown), (1, 1));

    let again = store
        .claim(
            GUILD,
            week(10),
            999,
            &refs(&ids),
            PostSource::PostNow,
            &mut rng,
            utc("2026-03-02T09:30:00Z"),
        )
        .unwrap();
    assert_eq!(again, Some(Claim::AlreadyClaimed(first.clone())));
    assert_eq!(
        store.rotation(GUILD).unwrap(),
        rotation,
        "advanced only once"
    );

    // Still AlreadyClaimed when confirmed, and even with an empty collection.
    store
        .confirm_post(GUILD, week(10), 5, utc("2026-03-02T09:00:02Z"))
        .unwrap();
    let confirmed = claim_week(&store, &mut rng, &[], 10).unwrap();
    assert!(
        matches!(&confirmed, Claim::AlreadyClaimed(r) if r.insight_id == first.insight_id && r.message_id == Some(5))
    );
}

pub fn an_empty_collection_claims_nothing(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(claim_week(&store, &mut rng, &[], 10), None);
    assert_eq!(store.post(GUILD, week(10)).unwrap(), None);
    assert_eq!(store.rotation(GUILD).unwrap(), RotationState::default());
}

pub fn a_week_that_does_not_exist_is_refused(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(1);
    // 2025 has 52 ISO weeks (2026 has 53).
    for bad in [
        WeekKey {
            year: 2025,
            week: 53,
        },
        WeekKey {
            year: 2026,
            week: 0,
        },
    ] {
        let err = store
            .claim(
                GUILD,
                bad,
                CHANNEL,
                &["a"],
                PostSource::Schedule,
                &mut rng,
                Utc::now(),
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidWeek { .. }), "{err:?}");
    }
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
    let rotation = store.rotation(GUILD).unwrap();
    assert_eq!((rotation.cycle, rotation.shown), (1, 11));
}

pub fn the_primary_key_refuses_a_second_row_for_the_same_week(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(2);
    claim_week(&store, &mut rng, &ids(3), 10).unwrap();
    let err = h
        .exec(&format!(
            "INSERT INTO post_log (guild_id, iso_year, iso_week, channel_id, insight_id, nonce, \
                 source, claimed_at, updated_at) \
             VALUES ({GUILD}, 2026, 10, 1, 'other', 'n', 'post_now', \
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
                                        GUILD,
                                        week(w),
                                        CHANNEL,
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
    let rotation = h.open().rotation(GUILD).unwrap();
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
                                GUILD,
                                week(w),
                                CHANNEL,
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
    let rotation = first.rotation(GUILD).unwrap();
    assert_eq!(
        (rotation.cycle, rotation.shown),
        (2, 11),
        "22 steps, none lost"
    );
    // Whatever the interleaving, the weeks' insights in claim order are two cycles of 11.
    let by_week: Vec<String> = (1..=22)
        .map(|w| first.post(GUILD, week(w)).unwrap().unwrap().insight_id)
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
        .record_attempt(GUILD, week(11), t("09:00:00"), None, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    let err = store
        .confirm_post(GUILD, week(11), 1, t("09:00:00"))
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    assert!(err.to_string().contains(&store.describe()), "{err}");

    let claimed = claim_week(&store, &mut rng, &ids, 11)
        .unwrap()
        .into_record();
    // Before the send: counted, nothing to retry.
    let r = store
        .record_attempt(GUILD, week(11), t("09:00:00"), None, None)
        .unwrap();
    assert_eq!(
        (r.attempts, r.last_error.as_deref(), r.retry_at),
        (1, None, None)
    );
    // After a failed send: the error and when to retry, not another attempt.
    let retry = t("09:05:00");
    let r = store
        .record_attempt(
            GUILD,
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
        .record_attempt(GUILD, week(11), t("09:05:00"), None, None)
        .unwrap();
    assert_eq!(
        (r.attempts, r.last_error.as_deref(), r.retry_at),
        (2, None, None)
    );

    store
        .confirm_post(GUILD, week(11), 777, t("09:05:01"))
        .unwrap();
    let posted = store.post(GUILD, week(11)).unwrap().unwrap();
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
    assert_eq!(store.last_post(GUILD).unwrap(), Some(posted.clone()));
    assert_eq!(store.unconfirmed_posts().unwrap(), vec![]);

    // Confirming again keeps the first message; releasing a confirmed post does nothing.
    store
        .confirm_post(GUILD, week(11), 888, t("09:06:00"))
        .unwrap();
    store.release_claim(GUILD, week(11)).unwrap();
    assert_eq!(store.post(GUILD, week(11)).unwrap(), Some(posted.clone()));

    // An unconfirmed claim is released, and the week can be claimed again.
    claim_week(&store, &mut rng, &ids, 12).unwrap();
    store.release_claim(GUILD, week(12)).unwrap();
    assert_eq!(store.post(GUILD, week(12)).unwrap(), None);
    store.release_claim(GUILD, week(12)).unwrap(); // nothing left: still fine
    let err = store
        .record_attempt(GUILD, week(12), t("09:10:00"), None, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoClaim { .. }), "{err:?}");
    assert!(matches!(
        claim_week(&store, &mut rng, &ids, 12),
        Some(Claim::Claimed(_))
    ));
    // last_post is the latest *confirmed* week.
    assert_eq!(store.last_post(GUILD).unwrap(), Some(posted));
}

pub fn last_post_orders_by_week_across_years(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(8);
    let now = utc("2026-01-01T00:00:00Z");
    assert_eq!(store.last_post(GUILD).unwrap(), None);
    for (year, w) in [(2025, 52), (2026, 1), (2025, 3)] {
        let key = WeekKey { year, week: w };
        store
            .claim(
                GUILD,
                key,
                CHANNEL,
                &["a", "b"],
                PostSource::Schedule,
                &mut rng,
                now,
            )
            .unwrap();
        store.confirm_post(GUILD, key, u64::from(w), now).unwrap();
    }
    let last = store.last_post(GUILD).unwrap().unwrap();
    assert_eq!(
        last.week,
        WeekKey {
            year: 2026,
            week: 1
        }
    );
}

pub fn unconfirmed_posts_lists_only_unconfirmed_claims_oldest_week_first(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(6);
    let now = utc("2026-03-09T09:00:00Z");
    let mut claim = |guild: u64, key: WeekKey| {
        store
            .claim(
                guild,
                key,
                CHANNEL,
                &["a", "b", "c"],
                PostSource::Schedule,
                &mut rng,
                now,
            )
            .unwrap()
            .unwrap()
            .into_record()
    };
    let a = claim(1, week(11));
    let b = claim(2, week(10));
    claim(3, week(11));
    let c = claim(
        4,
        WeekKey {
            year: 2025,
            week: 52,
        },
    );
    let d = claim(0, week(11));
    store.confirm_post(3, week(11), 33, now).unwrap();
    let pending: Vec<(u64, WeekKey)> = store
        .unconfirmed_posts()
        .unwrap()
        .iter()
        .map(|r| (r.guild_id, r.week))
        .collect();
    assert_eq!(
        pending,
        [
            (c.guild_id, c.week),
            (b.guild_id, b.week),
            (d.guild_id, d.week),
            (a.guild_id, a.week)
        ]
    );
}

pub fn claimed_slots_since_lists_every_claim_from_a_week_on_across_years(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(7);
    let now = utc("2026-01-05T09:00:00Z");
    let key = |year, week| WeekKey { year, week };
    for (guild, k) in [
        (1, key(2025, 50)),
        (1, key(2025, 52)),
        (2, key(2026, 1)),
        (3, key(2026, 2)),
        (3, key(2027, 1)),
    ] {
        store
            .claim(
                guild,
                k,
                CHANNEL,
                &["a"],
                PostSource::Schedule,
                &mut rng,
                now,
            )
            .unwrap()
            .unwrap();
    }
    store.confirm_post(2, key(2026, 1), 21, now).unwrap();
    assert!(store.claimed_slots_since(key(2028, 1)).unwrap().is_empty());
    let since = store.claimed_slots_since(key(2025, 52)).unwrap();
    let expected: HashSet<(u64, WeekKey)> = [
        (1, key(2025, 52)),
        (2, key(2026, 1)), // confirmed or not
        (3, key(2026, 2)),
        (3, key(2027, 1)),
    ]
    .into();
    assert_eq!(since, expected);
    store.release_claim(3, key(2026, 2)).unwrap();
    assert!(!store
        .claimed_slots_since(key(2025, 52))
        .unwrap()
        .contains(&(3, key(2026, 2))));
}

pub fn a_broken_rotation_row_is_an_error_for_that_server(h: &impl Harness) {
    let store = h.open();
    let mut rng = StdRng::seed_from_u64(6);
    claim_week(&store, &mut rng, &ids(3), 1).unwrap();
    h.exec("UPDATE rotation SET state = '[1, 2]'").unwrap();
    let err = store.rotation(GUILD).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BadRow {
                table: "rotation",
                ..
            }
        ),
        "{err:?}"
    );
    let err = store
        .claim(
            GUILD,
            week(2),
            CHANNEL,
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
                table: "rotation",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.post(GUILD, week(2)).unwrap(), None, "nothing claimed");
    // Other servers are not affected.
    assert!(store
        .claim(
            GUILD + 1,
            week(2),
            CHANNEL,
            &["a"],
            PostSource::Schedule,
            &mut rng,
            Utc::now(),
        )
        .unwrap()
        .is_some());
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
                            db.set_weekly(guild, guild, &monday_9_london(), now)?;
                            let mut rng = StdRng::seed_from_u64(guild);
                            db.claim(
                                guild,
                                week(11),
                                guild,
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
        let active = store.call(|db| db.active_weeklies()).await.unwrap();
        assert_eq!(active.len(), 16);
        // The last handle goes away on a runtime thread, as at the bot's shutdown.
        drop(store);
    });
}
