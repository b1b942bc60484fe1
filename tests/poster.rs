//! The poster's rules, tested on the core with a recording publisher and a manual clock: a post
//! at its instant and not before, exactly one per feed and period across restarts, catch-up
//! after downtime (the latest slot only), retries, rate limits, a stopped feed on 403/404,
//! `post-now` against the schedule, DST, one feed's trouble never delaying another's, several
//! feeds per server with their own cadence, topic and rotation, skip, pause and resume, preview,
//! and threads under posts that are never duplicated. The same poster runs against the fake
//! Discord in `tests/weekly_e2e.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use insight_bot::insights::Library;
use insight_bot::store::{Backend, FeedSpec, Pause, PostSource, Store};
use insight_bot::weekly::clock::{Clock, ManualClock};
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::poster::{
    Delivery, OutgoingPost, Poster, PosterOptions, PublishError, PublishFuture, Publisher,
};
use insight_bot::weekly::schedule::{
    parse_repeat, parse_time, parse_weekday, parse_zone, Period, WeekKey,
};
use tokio::sync::Notify;

const WAIT: Duration = Duration::from_secs(5);

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn library() -> Arc<Library> {
    Arc::new(Library::builtin().unwrap())
}

/// Records sends, keeps each channel's messages for `find_post`, and fails on cue.
#[derive(Default)]
struct RecordingPublisher {
    sent: Mutex<Vec<(OutgoingPost, DateTime<Utc>)>>,
    channels: Mutex<HashMap<u64, Vec<(u64, Period)>>>,
    /// Threads started: (channel, message, name).
    threads: Mutex<Vec<(u64, u64, String)>>,
    /// Errors to return on the next thread starts, in order.
    thread_script: Mutex<VecDeque<PublishError>>,
    /// Sends whose answer is lost after the message was made: how many are left.
    lose_answers: AtomicUsize,
    /// Per guild: errors to return on the next sends, in order.
    script: Mutex<HashMap<u64, VecDeque<PublishError>>>,
    /// Per guild: how long a send takes.
    slow: Mutex<HashMap<u64, Duration>>,
    calls: AtomicUsize,
    lookups: AtomicUsize,
    next_id: AtomicU64,
    clock: Mutex<Option<Arc<ManualClock>>>,
    sent_signal: Notify,
}

impl RecordingPublisher {
    fn fail_next(&self, guild: u64, errors: Vec<PublishError>) {
        self.script.lock().unwrap().insert(guild, errors.into());
    }

    fn posts(&self) -> Vec<OutgoingPost> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The periods of the posts sent so far, in order (`2026-W48`, `2026-11-23`).
    fn periods(&self) -> Vec<String> {
        self.posts().iter().map(|p| p.period.to_string()).collect()
    }

    fn posts_for(&self, guild: u64) -> Vec<OutgoingPost> {
        self.posts()
            .into_iter()
            .filter(|p| p.feed.guild_id == guild)
            .collect()
    }

    /// Pretends an earlier run of the bot already posted this (the message exists in the channel).
    fn add_existing(&self, channel: u64, week: Period) -> u64 {
        let id = 900_000 + self.next_id.fetch_add(1, Ordering::SeqCst);
        self.channels
            .lock()
            .unwrap()
            .entry(channel)
            .or_default()
            .push((id, week));
        id
    }

    async fn wait_for_posts(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.sent_signal.notified();
            if self.sent.lock().unwrap().len() >= count {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} posts within {WAIT:?}, got {}",
                    self.sent.lock().unwrap().len()
                );
            }
        }
    }
}

impl Publisher for RecordingPublisher {
    fn send<'a>(&'a self, post: &'a OutgoingPost) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let delay = self.slow.lock().unwrap().get(&post.feed.guild_id).copied();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let scripted = self
                .script
                .lock()
                .unwrap()
                .get_mut(&post.feed.guild_id)
                .and_then(VecDeque::pop_front);
            if let Some(error) = scripted {
                return Err(error);
            }
            let id = 1 + self.next_id.fetch_add(1, Ordering::SeqCst);
            let now = self
                .clock
                .lock()
                .unwrap()
                .as_ref()
                .map(|c| c.now())
                .unwrap_or_else(Utc::now);
            self.sent.lock().unwrap().push((post.clone(), now));
            self.channels
                .lock()
                .unwrap()
                .entry(post.feed.channel_id)
                .or_default()
                .push((id, post.period));
            self.sent_signal.notify_waiters();
            let lost = self
                .lose_answers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if lost {
                return Err(PublishError::Transient("the answer was lost".into()));
            }
            Ok(id)
        })
    }

    fn find_post<'a>(
        &'a self,
        post: &'a OutgoingPost,
        _since: DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>> {
        Box::pin(async move {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .channels
                .lock()
                .unwrap()
                .get(&post.feed.channel_id)
                .and_then(|msgs| {
                    msgs.iter()
                        .find(|(_, p)| *p == post.period)
                        .map(|(id, _)| *id)
                }))
        })
    }

    fn create_thread<'a>(
        &'a self,
        channel_id: u64,
        message_id: u64,
        name: &'a str,
    ) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            if let Some(error) = self.thread_script.lock().unwrap().pop_front() {
                return Err(error);
            }
            let mut threads = self.threads.lock().unwrap();
            // As on Discord: one thread per message, with the message's id.
            if threads.iter().any(|(_, m, _)| *m == message_id) {
                return Err(PublishError::Transient(
                    "A thread has already been created for this message".into(),
                ));
            }
            threads.push((channel_id, message_id, name.to_string()));
            Ok(message_id)
        })
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    clock: Arc<ManualClock>,
    publisher: Arc<RecordingPublisher>,
    poster: Arc<Poster>,
}

fn options() -> PosterOptions {
    PosterOptions {
        first_backoff: Duration::from_millis(20),
        ..PosterOptions::default()
    }
}

fn setup(start: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let clock = Arc::new(ManualClock::new(at(start)));
    let publisher = Arc::new(RecordingPublisher::default());
    *publisher.clock.lock().unwrap() = Some(Arc::clone(&clock));
    let poster = Arc::new(Poster::new(
        store.clone(),
        Arc::new(library()),
        publisher.clone(),
        clock.clone(),
        options(),
    ));
    Setup {
        _dir: dir,
        path,
        store,
        clock,
        publisher,
        poster,
    }
}

impl Setup {
    /// A new poster on the same database, as after a restart of the bot.
    fn restart(&mut self) {
        self.store = Store::open(&self.path).unwrap();
        self.poster = Arc::new(Poster::new(
            self.store.clone(),
            Arc::new(library()),
            self.publisher.clone(),
            self.clock.clone(),
            options(),
        ));
    }

    /// The database, called directly (the poster is the one under test).
    fn db(&self) -> &dyn Backend {
        self.store.blocking()
    }

    fn set(&self, guild: u64, channel: u64, day: &str, time: &str, zone: &str) {
        self.set_feed(guild, channel, "weekly", day, time, zone, None, false);
    }

    #[allow(clippy::too_many_arguments)]
    fn set_feed(
        &self,
        guild: u64,
        channel: u64,
        repeat: &str,
        day: &str,
        time: &str,
        zone: &str,
        topic: Option<&str>,
        thread: bool,
    ) {
        let schedule = parse_repeat(repeat).unwrap().schedule(
            parse_weekday(day).unwrap(),
            parse_time(time).unwrap(),
            parse_zone(zone).unwrap(),
            self.clock.now(),
        );
        let spec = FeedSpec {
            schedule,
            topic: topic.map(String::from),
            thread,
            ping_role: None,
            forum: false,
        };
        self.db()
            .set_feed(FeedId::new(guild, channel), &spec, self.clock.now())
            .unwrap();
    }

    /// One poster pass, run to completion: starts what is due and waits for those deliveries.
    async fn pass(&self) {
        self.poster.tick().await.unwrap();
        tokio::time::timeout(WAIT, self.poster.wait_idle())
            .await
            .expect("the deliveries of a pass did not finish");
    }

    /// When the poster would wake next, after a pass (a pass that finds nothing due).
    async fn next_wake(&self) -> Option<DateTime<Utc>> {
        let next = self.poster.tick().await.unwrap();
        assert!(
            self.poster.in_flight().is_empty(),
            "this pass started a delivery"
        );
        next
    }

    fn spawn(&self) -> (tokio::task::JoinHandle<()>, Arc<Notify>) {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(Arc::clone(&self.poster).run(Arc::clone(&stop)));
        (task, stop)
    }
}

/// Lets the poster task run whatever became due.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn posts_at_the_scheduled_instant_and_not_before() {
    // Sunday 22 November 2026; London is on GMT, so Monday 09:00 local is 09:00Z.
    let s = setup("2026-11-22T12:00:00Z");
    s.set(1, 10, "mon", "09:00", "Europe/London");
    let (task, stop) = s.spawn();
    settle().await;
    s.clock.set(at("2026-11-23T08:59:59Z"));
    settle().await;
    assert!(s.publisher.posts().is_empty(), "posted before its instant");
    s.clock.set(at("2026-11-23T09:00:00Z"));
    s.publisher.wait_for_posts(1).await;
    let (post, sent_at) = s.publisher.sent.lock().unwrap()[0].clone();
    assert_eq!(
        sent_at,
        at("2026-11-23T09:00:00Z"),
        "sent at the instant, not on a poll"
    );
    assert_eq!(post.feed, FeedId::new(1, 10));
    assert_eq!(post.period.to_string(), "2026-W48");
    tokio::time::timeout(WAIT, s.poster.wait_idle())
        .await
        .unwrap();
    let record = s
        .db()
        .post(FeedId::new(1, 10), post.period)
        .unwrap()
        .unwrap();
    assert!(record.is_confirmed());
    assert_eq!(record.insight_id, post.insight.id);
    assert_eq!(record.nonce, post.nonce);
    // An hour later, and after a READY-style wake: still one post.
    s.clock.set(at("2026-11-23T10:00:00Z"));
    s.poster.wake();
    settle().await;
    assert_eq!(s.publisher.posts().len(), 1);
    // The next week posts again.
    s.clock.set(at("2026-11-30T09:00:00Z"));
    s.publisher.wait_for_posts(2).await;
    assert_eq!(s.publisher.posts()[1].period.to_string(), "2026-W49");
    stop.notify_one();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the poster did not stop")
        .unwrap();
}

#[tokio::test]
async fn every_week_of_a_year_posts_exactly_once_without_repeating_early() {
    let s = setup("2026-01-01T00:00:00Z");
    s.set(1, 10, "fri", "17:30", "America/New_York");
    let mut weeks = Vec::new();
    for _ in 0..53 {
        let next = s.next_wake().await.expect("a next slot");
        s.clock.set(next);
        s.pass().await;
        // A second pass at the same instant must not post again.
        s.pass().await;
        weeks.push(s.publisher.posts().len());
    }
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 53);
    let mut keys: Vec<Period> = posts.iter().map(|p| p.period).collect();
    keys.dedup();
    assert_eq!(keys.len(), 53, "one post per week");
    // The collection has 11 insights: every window of 11 consecutive posts shows each once.
    for window in posts.chunks(11).filter(|c| c.len() == 11) {
        let mut ids: Vec<&str> = window.iter().map(|p| p.insight.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 11, "a repeat within a cycle");
    }
    assert!(posts.windows(2).all(|w| w[0].insight.id != w[1].insight.id));
}

#[tokio::test]
async fn dst_keeps_the_local_time() {
    // London moves to BST on Sunday 29 March 2026: a Monday 09:00 post goes from 09:00Z to 08:00Z.
    let s = setup("2026-03-20T00:00:00Z");
    s.set(1, 10, "mon", "09:00", "Europe/London");
    let mut instants = Vec::new();
    for _ in 0..2 {
        let next = s.next_wake().await.unwrap();
        s.clock.set(next);
        s.pass().await;
        instants.push(s.publisher.sent.lock().unwrap().last().unwrap().1);
    }
    assert_eq!(
        instants,
        [at("2026-03-23T09:00:00Z"), at("2026-03-30T08:00:00Z")]
    );
}

#[tokio::test]
async fn down_across_the_slot_catches_up_once_with_the_latest_week_only() {
    let mut s = setup("2026-11-01T12:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    // The bot is down from Sunday 1 November until Wednesday 18 November: the slots of 2, 9 and
    // 16 November pass unseen. On return only the latest (W47, 16 November) is posted.
    s.clock.set(at("2026-11-18T15:00:00Z"));
    s.restart();
    let (task, stop) = s.spawn();
    s.publisher.wait_for_posts(1).await;
    settle().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 1, "one catch-up post, never a burst");
    assert_eq!(posts[0].period.to_string(), "2026-W47");
    // Another restart the same week: nothing more.
    stop.notify_one();
    task.await.unwrap();
    s.restart();
    s.pass().await;
    assert_eq!(s.publisher.posts().len(), 1);
}

#[tokio::test]
async fn setting_a_schedule_after_this_weeks_slot_waits_for_next_week() {
    let s = setup("2026-11-24T12:00:00Z"); // a Tuesday
    s.set(1, 10, "mon", "09:00", "UTC");
    let next = s.next_wake().await.unwrap();
    assert!(
        s.publisher.posts().is_empty(),
        "no surprise post for yesterday's slot"
    );
    assert_eq!(next, at("2026-11-30T09:00:00Z"));
}

#[tokio::test]
async fn a_restart_after_an_unconfirmed_send_does_not_post_twice() {
    let mut s = setup("2026-11-22T12:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    s.clock.set(at("2026-11-23T09:00:00Z"));
    // The previous run claimed the slot, started the send (attempts = 1), Discord took the
    // message, and the process died before recording its id.
    let week: Period = WeekKey {
        year: 2026,
        week: 48,
    }
    .into();
    let ids: Vec<&str> = vec!["tour-of-duty"];
    let claim = s
        .db()
        .claim(
            FeedId::new(1, 10),
            week,
            &ids,
            PostSource::Schedule,
            &mut rand::thread_rng(),
            s.clock.now(),
        )
        .unwrap()
        .unwrap();
    s.db()
        .record_attempt(FeedId::new(1, 10), week, s.clock.now(), None, None)
        .unwrap();
    let existing = s.publisher.add_existing(10, week);
    s.restart();
    s.pass().await;
    assert_eq!(s.publisher.calls.load(Ordering::SeqCst), 0, "sent again");
    assert_eq!(s.publisher.lookups.load(Ordering::SeqCst), 1);
    let record = s.db().post(FeedId::new(1, 10), week).unwrap().unwrap();
    assert_eq!(record.message_id, Some(existing));
    assert_eq!(record.nonce, claim.record().nonce);
}

#[tokio::test]
async fn a_restart_after_a_send_that_never_arrived_posts_once_with_the_same_insight() {
    let mut s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let week: Period = WeekKey {
        year: 2026,
        week: 48,
    }
    .into();
    let claim = s
        .db()
        .claim(
            FeedId::new(1, 10),
            week,
            &["fix-the-system"],
            PostSource::Schedule,
            &mut rand::thread_rng(),
            s.clock.now(),
        )
        .unwrap()
        .unwrap();
    s.db()
        .record_attempt(FeedId::new(1, 10), week, s.clock.now(), None, None)
        .unwrap();
    s.restart();
    s.pass().await;
    s.pass().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].insight.id, "fix-the-system");
    assert_eq!(
        posts[0].nonce,
        claim.record().nonce,
        "a resend carries the same nonce"
    );
    assert!(s
        .db()
        .post(FeedId::new(1, 10), week)
        .unwrap()
        .unwrap()
        .is_confirmed());
}

#[tokio::test]
async fn a_server_error_then_success_posts_once() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    s.publisher.fail_next(
        1,
        vec![PublishError::Transient("Discord answered 500".into())],
    );
    // The schedule was set at the slot's instant, so this week's slot is due now.
    s.pass().await;
    assert_eq!(s.publisher.posts().len(), 1);
    assert_eq!(s.publisher.calls.load(Ordering::SeqCst), 2);
    let record = s
        .db()
        .post(
            FeedId::new(1, 10),
            WeekKey {
                year: 2026,
                week: 48,
            }
            .into(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(record.attempts, 2);
    assert!(record.is_confirmed());
}

#[tokio::test]
async fn persistent_errors_are_retried_on_a_later_wake() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let errors = (0..3)
        .map(|_| PublishError::Transient("timeout".into()))
        .collect();
    s.publisher.fail_next(1, errors);
    s.pass().await;
    let next = s.next_wake().await.unwrap();
    assert!(s.publisher.posts().is_empty());
    assert_eq!(
        next,
        at("2026-11-23T09:05:00Z"),
        "retry after PosterOptions::retry_later"
    );
    let record = s
        .db()
        .post(
            FeedId::new(1, 10),
            WeekKey {
                year: 2026,
                week: 48,
            }
            .into(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(record.last_error.as_deref(), Some("timeout"));
    // Not before the retry time...
    s.pass().await;
    assert_eq!(s.publisher.calls.load(Ordering::SeqCst), 3);
    // ...then it goes out, checking the channel first in case a timeout had delivered it.
    s.clock.set(next);
    s.pass().await;
    assert_eq!(s.publisher.posts().len(), 1);
    assert_eq!(s.publisher.lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rate_limit_waits_retry_after_and_is_not_a_failure() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let waits = (0..4)
        .map(|_| PublishError::RateLimited(Duration::from_millis(150)))
        .collect();
    s.publisher.fail_next(1, waits);
    let started = std::time::Instant::now();
    s.pass().await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        s.publisher.posts().len(),
        1,
        "four 429s are not three failures"
    );
}

#[tokio::test]
async fn a_post_still_failing_when_the_next_week_comes_is_given_up_for_the_new_one() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let errors = (0..3)
        .map(|_| PublishError::Transient("Discord answered 503".into()))
        .collect();
    s.publisher.fail_next(1, errors);
    s.pass().await;
    assert!(s.publisher.posts().is_empty());
    // A week later the old slot is still unsent: only the new week posts.
    s.clock.set(at("2026-11-30T09:00:00Z"));
    s.pass().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 1, "one post, not a backlog");
    assert_eq!(posts[0].period.to_string(), "2026-W49");
    assert!(s.db().unconfirmed_posts().unwrap().is_empty());
}

#[tokio::test]
async fn a_run_of_rate_limits_ends_and_waits_for_a_later_wake() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let waits = (0..50)
        .map(|_| PublishError::RateLimited(Duration::from_millis(1)))
        .collect();
    s.publisher.fail_next(1, waits);
    s.pass().await;
    let next = s.next_wake().await.unwrap();
    let limit = PosterOptions::default().max_rate_limits_per_wake as usize;
    assert_eq!(s.publisher.calls.load(Ordering::SeqCst), limit + 1);
    assert_eq!(next, at("2026-11-23T09:05:00Z"));
    assert!(
        s.db()
            .feed(FeedId::new(1, 10))
            .unwrap()
            .unwrap()
            .failure
            .is_none(),
        "429 is not a failure"
    );
}

#[tokio::test]
async fn forbidden_pauses_the_server_and_no_request_follows() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    s.publisher.fail_next(
        1,
        vec![PublishError::Forbidden(
            "Discord answered 403 Forbidden: Missing Access".into(),
        )],
    );
    s.pass().await;
    let settings = s.db().feed(FeedId::new(1, 10)).unwrap().unwrap();
    let failure = settings.failure.expect("marked failing");
    assert!(failure.reason.contains("403"), "{}", failure.reason);
    assert_eq!(s.publisher.calls.load(Ordering::SeqCst), 1);
    // Weeks go by: not one more request to that channel.
    for week in 1..4 {
        s.clock
            .set(at("2026-11-23T09:00:00Z") + chrono::Duration::weeks(week));
        s.pass().await;
    }
    assert_eq!(s.publisher.calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.publisher.lookups.load(Ordering::SeqCst), 0);
    // An admin fixes it with /weekly set: the failure clears and posting resumes next slot.
    s.set(1, 10, "mon", "09:00", "UTC");
    assert!(s
        .db()
        .feed(FeedId::new(1, 10))
        .unwrap()
        .unwrap()
        .failure
        .is_none());
    s.clock.set(at("2026-12-21T09:00:00Z"));
    s.pass().await;
    assert_eq!(s.publisher.posts_for(1).len(), 1);
    assert_eq!(s.publisher.posts_for(1)[0].feed.channel_id, 10);
}

#[tokio::test]
async fn post_now_takes_this_weeks_slot_and_the_schedule_skips_it() {
    let s = setup("2026-11-24T12:00:00Z"); // Tuesday of W48; the schedule is Friday 09:00
    s.set(1, 10, "fri", "09:00", "UTC");
    let first = s
        .poster
        .post_now(FeedId::new(1, 10))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Delivery::Posted(_)), "{first:?}");
    let second = s
        .poster
        .post_now(FeedId::new(1, 10))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(second, Delivery::AlreadyPosted(_)), "{second:?}");
    s.clock.set(at("2026-11-27T09:00:00Z"));
    s.pass().await;
    assert_eq!(
        s.publisher.posts().len(),
        1,
        "Friday's slot of the same week was taken by post-now"
    );
    s.clock.set(at("2026-12-04T09:00:00Z"));
    s.pass().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].period.to_string(), "2026-W49");
    assert_ne!(
        posts[0].insight.id, posts[1].insight.id,
        "post-now advanced the rotation"
    );
    assert_eq!(
        s.db()
            .post(FeedId::new(1, 10), posts[0].period)
            .unwrap()
            .unwrap()
            .source,
        PostSource::PostNow
    );
}

#[tokio::test]
async fn a_slow_server_does_not_delay_another_and_a_pass_does_not_wait_for_it() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    s.set(2, 20, "mon", "09:00", "UTC");
    s.publisher
        .slow
        .lock()
        .unwrap()
        .insert(1, Duration::from_secs(2));
    let started = std::time::Instant::now();
    s.poster.tick().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the pass waited for a delivery"
    );
    s.publisher.wait_for_posts(1).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the slow server held up the other"
    );
    assert_eq!(s.publisher.posts()[0].feed.guild_id, 2);
    wait_until("server 2's delivery ended", || {
        s.poster.in_flight().len() == 1
    })
    .await;
    assert_eq!(s.publisher.posts().len(), 1, "server 1 is still sending");
    tokio::time::timeout(WAIT, s.poster.wait_idle())
        .await
        .unwrap();
    assert_eq!(s.publisher.posts().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_a_long_rate_limit_wait_does_not_delay_anothers_slot_and_stops_at_once() {
    let mut s = setup("2026-11-23T08:59:00Z");
    s.set(2, 20, "mon", "09:00", "UTC"); // B
    s.set(3, 30, "mon", "09:01", "UTC"); // C
    s.publisher
        .fail_next(2, vec![PublishError::RateLimited(Duration::from_secs(60))]);
    let (task, stop) = s.spawn();
    settle().await;
    // B's post starts at 09:00:40 and Discord asks it to wait 60 s.
    s.clock.set(at("2026-11-23T09:00:40Z"));
    wait_until("B's first send", || {
        s.publisher.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(s.poster.in_flight().len(), 1, "B is waiting out its 429");
    // C's slot, 20 s later, posts at its instant while B still waits.
    s.clock.set(at("2026-11-23T09:01:00Z"));
    s.publisher.wait_for_posts(1).await;
    let (post, sent_at) = s.publisher.sent.lock().unwrap()[0].clone();
    assert_eq!(
        (post.feed.guild_id, sent_at),
        (3, at("2026-11-23T09:01:00Z"))
    );
    wait_until("C's delivery ended", || s.poster.in_flight().len() == 1).await;
    assert_eq!(
        s.poster.in_flight(),
        [(FeedId::new(2, 20), post.period)],
        "B is still in its wait, and only B"
    );
    // Shutdown does not wait out B's 429: the loop stops and B's delivery is interrupted.
    let stopping = std::time::Instant::now();
    stop.notify_one();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the poster did not stop during a 429 wait")
        .unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "{:?}",
        stopping.elapsed()
    );
    assert!(s.poster.in_flight().is_empty());
    // B keeps its claim, with the attempt that may have reached Discord.
    let b = s
        .db()
        .post(FeedId::new(2, 20), post.period)
        .unwrap()
        .expect("B's claim is kept");
    assert_eq!((b.attempts, b.message_id), (1, None));
    // After a restart B is resolved (its channel checked: the 429 created nothing) and posted
    // once; C is not posted again.
    s.restart();
    s.pass().await;
    assert_eq!(s.publisher.lookups.load(Ordering::SeqCst), 1);
    assert_eq!(s.publisher.posts_for(2).len(), 1);
    assert_eq!(s.publisher.posts_for(3).len(), 1);
    assert!(s
        .db()
        .post(FeedId::new(2, 20), post.period)
        .unwrap()
        .unwrap()
        .is_confirmed());
}

#[tokio::test]
async fn an_old_claim_never_sent_is_given_up_for_the_new_week() {
    // A claim for W48 whose send never started (a store error after the claim, or a crash):
    // when W49's slot is due, only W49 posts; the stale claim never goes out beside it.
    let s = setup("2026-11-23T09:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let w48: Period = WeekKey {
        year: 2026,
        week: 48,
    }
    .into();
    s.db()
        .claim(
            FeedId::new(1, 10),
            w48,
            &["fix-the-system"],
            PostSource::Schedule,
            &mut rand::thread_rng(),
            s.clock.now(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        s.db()
            .post(FeedId::new(1, 10), w48)
            .unwrap()
            .unwrap()
            .attempts,
        0
    );
    s.clock.set(at("2026-11-30T09:00:00Z"));
    s.pass().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].period.to_string(), "2026-W49");
    assert_eq!(
        s.db().post(FeedId::new(1, 10), w48).unwrap(),
        None,
        "the stale claim is released"
    );
}

/// Waits (real time, up to [`WAIT`]) until `done` holds.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn turning_it_off_stops_posts() {
    let s = setup("2026-11-22T12:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    assert!(s
        .db()
        .disable_feed(FeedId::new(1, 10), s.clock.now())
        .unwrap());
    s.clock.set(at("2026-11-23T09:00:00Z"));
    s.pass().await;
    assert!(s.publisher.posts().is_empty());
    assert_eq!(
        s.poster.post_now(FeedId::new(1, 10)).await.unwrap(),
        None,
        "post-now refuses when off"
    );
    assert!(s.publisher.posts().is_empty());
}

// ---- feeds ----

/// The topics of the shipped library's insights, to choose a topic with several insights.
fn a_topic_with_insights(min: usize) -> (String, Vec<String>) {
    let library = library();
    let (topic, _) = library
        .topics()
        .find(|(_, count)| *count >= min)
        .expect("a topic with enough insights");
    let ids = library
        .insights()
        .iter()
        .filter(|i| i.topics.iter().any(|t| t == topic))
        .map(|i| i.id.clone())
        .collect();
    (topic.to_string(), ids)
}

#[tokio::test]
async fn two_feeds_of_one_server_post_once_each_in_their_own_periods_and_topics() {
    // Monday 23 November 2026, 08:00 UTC. Channel 10: weekly on Mondays at 09:00, every
    // insight. Channel 11: daily at 12:00, one topic only.
    let s = setup("2026-11-23T08:00:00Z");
    let (topic, topic_ids) = a_topic_with_insights(2);
    s.set(1, 10, "mon", "09:00", "UTC");
    s.set_feed(1, 11, "daily", "mon", "12:00", "UTC", Some(&topic), false);
    // A week, pass by pass, twice at every wake.
    loop {
        let next = s.next_wake().await.unwrap();
        if next >= at("2026-11-30T08:00:00Z") {
            break;
        }
        s.clock.set(next);
        s.pass().await;
        s.pass().await;
    }
    let weekly: Vec<_> = s
        .publisher
        .posts()
        .into_iter()
        .filter(|p| p.feed.channel_id == 10)
        .collect();
    let daily: Vec<_> = s
        .publisher
        .posts()
        .into_iter()
        .filter(|p| p.feed.channel_id == 11)
        .collect();
    assert_eq!(weekly.len(), 1, "one weekly post in the week");
    assert_eq!(weekly[0].period.to_string(), "2026-W48");
    let days: Vec<String> = daily.iter().map(|p| p.period.to_string()).collect();
    assert_eq!(
        days,
        [
            "2026-11-23",
            "2026-11-24",
            "2026-11-25",
            "2026-11-26",
            "2026-11-27",
            "2026-11-28",
            "2026-11-29"
        ],
        "one daily post a day"
    );
    assert!(
        daily.iter().all(|p| topic_ids.contains(&p.insight.id)),
        "the daily feed draws only from {topic}"
    );
    // Each feed has its own rotation: the daily one cycles through its topic without a repeat.
    let first_cycle: Vec<&str> = daily
        .iter()
        .take(topic_ids.len())
        .map(|p| p.insight.id.as_str())
        .collect();
    let mut unique = first_cycle.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first_cycle.len(), "{first_cycle:?}");
    assert!(s.db().rotation(FeedId::new(1, 10)).unwrap().shown == 1);
}

#[tokio::test]
async fn weekdays_skip_the_weekend_and_every_two_weeks_alternates() {
    let s = setup("2026-11-27T08:00:00Z"); // Friday
    s.set_feed(1, 10, "weekdays", "mon", "09:00", "UTC", None, false);
    s.set_feed(1, 11, "every-2-weeks", "mon", "09:00", "UTC", None, false);
    loop {
        let next = s.next_wake().await.unwrap();
        if next >= at("2026-12-15T00:00:00Z") {
            break;
        }
        s.clock.set(next);
        s.pass().await;
    }
    let periods = |channel| -> Vec<String> {
        s.publisher
            .posts()
            .iter()
            .filter(|p| p.feed.channel_id == channel)
            .map(|p| p.period.to_string())
            .collect()
    };
    assert_eq!(
        periods(10),
        [
            "2026-11-27",
            "2026-11-30",
            "2026-12-01",
            "2026-12-02",
            "2026-12-03",
            "2026-12-04",
            "2026-12-07",
            "2026-12-08",
            "2026-12-09",
            "2026-12-10",
            "2026-12-11",
            "2026-12-14"
        ]
    );
    assert_eq!(periods(11), ["2026-W49", "2026-W51"]);
}

#[tokio::test]
async fn skip_takes_the_next_post_only_and_its_insight_waits_for_the_one_after() {
    let mut s = setup("2026-11-24T12:00:00Z"); // Tuesday; Mondays 09:00
    s.set(1, 10, "mon", "09:00", "UTC");
    let feed = FeedId::new(1, 10);
    let settings = s.db().feed(feed).unwrap().unwrap();
    let (_, would_be) = s.poster.preview(&settings).await.unwrap().unwrap();
    let would_be = would_be.unwrap();
    let skipped = s.poster.skip_next(&settings).await.unwrap().unwrap();
    assert_eq!(skipped.at, at("2026-11-30T09:00:00Z"));
    let record = s.db().post(feed, skipped.period).unwrap().unwrap();
    assert_eq!(record.source, PostSource::Skip);
    assert!(s.db().unconfirmed_posts().unwrap().is_empty());
    // The preview now shows the week after, with the insight the skipped week would have had.
    let (next, insight) = s.poster.preview(&settings).await.unwrap().unwrap();
    assert_eq!(next.at, at("2026-12-07T09:00:00Z"));
    assert_eq!(
        insight.unwrap().id,
        would_be.id,
        "the rotation did not advance"
    );
    // Across a restart: nothing on the skipped Monday, post-now refuses it, the next one posts.
    s.restart();
    s.clock.set(at("2026-11-30T09:00:00Z"));
    s.pass().await;
    assert!(s.publisher.posts().is_empty(), "the skipped week posted");
    let refused = s.poster.post_now(feed).await.unwrap().unwrap();
    assert!(
        matches!(&refused, Delivery::AlreadyPosted(r) if r.source == PostSource::Skip),
        "{refused:?}"
    );
    s.clock.set(at("2026-12-07T09:00:00Z"));
    s.pass().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].period.to_string(), "2026-W50");
    assert_eq!(posts[0].insight.id, would_be.id);
}

#[tokio::test]
async fn preview_shows_exactly_what_the_next_post_carries() {
    let s = setup("2026-11-22T12:00:00Z");
    s.set_feed(1, 10, "daily", "mon", "09:00", "UTC", None, false);
    let feed = FeedId::new(1, 10);
    for day in 0..15 {
        let settings = s.db().feed(feed).unwrap().unwrap();
        let (slot, insight) = s.poster.preview(&settings).await.unwrap().unwrap();
        s.clock.set(slot.at);
        s.pass().await;
        let posts = s.publisher.posts();
        assert_eq!(posts.len(), day + 1);
        let post = posts.last().unwrap();
        assert_eq!(post.period, slot.period);
        assert_eq!(
            Some(&post.insight.id),
            insight.as_ref().map(|i| &i.id),
            "day {day}"
        );
    }
}

#[tokio::test]
async fn pause_until_a_date_holds_the_posts_across_a_restart_then_they_resume_alone() {
    let mut s = setup("2026-11-22T12:00:00Z");
    s.set_feed(1, 10, "daily", "mon", "09:00", "UTC", None, false);
    let feed = FeedId::new(1, 10);
    let until = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    assert!(s
        .db()
        .set_pause(feed, Some(Pause::Until(until)), s.clock.now())
        .unwrap());
    let settings = s.db().feed(feed).unwrap().unwrap();
    assert_eq!(
        s.poster.next_post(&settings).await.unwrap().unwrap().at,
        at("2026-11-26T09:00:00Z")
    );
    assert_eq!(s.next_wake().await, Some(at("2026-11-26T09:00:00Z")));
    s.restart();
    // Down over the 25th's slot and back after it: nothing is caught up from the pause.
    s.clock.set(at("2026-11-25T18:00:00Z"));
    s.pass().await;
    assert!(s.publisher.posts().is_empty());
    s.clock.set(at("2026-11-26T09:00:00Z"));
    s.pass().await;
    let days = s.publisher.periods();
    assert_eq!(
        days,
        ["2026-11-26"],
        "posts resume on the date by themselves"
    );
}

#[tokio::test]
async fn pause_indefinitely_stops_until_resume_and_resume_posts_nothing_late() {
    let mut s = setup("2026-11-22T12:00:00Z");
    s.set(1, 10, "mon", "09:00", "UTC");
    let feed = FeedId::new(1, 10);
    s.db()
        .set_pause(feed, Some(Pause::Indefinitely), s.clock.now())
        .unwrap();
    assert_eq!(s.next_wake().await, None, "nothing scheduled while paused");
    s.restart();
    s.clock.set(at("2026-11-30T10:00:00Z"));
    s.pass().await;
    assert!(s.publisher.posts().is_empty());
    // Resumed an hour after Monday's slot: that slot is not posted late; the next one is.
    s.db().set_pause(feed, None, s.clock.now()).unwrap();
    s.pass().await;
    assert!(s.publisher.posts().is_empty(), "a paused slot posted late");
    assert_eq!(s.next_wake().await, Some(at("2026-12-07T09:00:00Z")));
    s.clock.set(at("2026-12-07T09:00:00Z"));
    s.pass().await;
    assert_eq!(s.publisher.posts().len(), 1);
}

#[tokio::test]
async fn a_thread_is_started_under_each_post_and_named_after_the_insight() {
    let s = setup("2026-11-23T09:00:00Z");
    s.set_feed(1, 10, "weekly", "mon", "09:00", "UTC", None, true);
    s.pass().await;
    let posts = s.publisher.posts();
    assert_eq!(posts.len(), 1);
    let threads = s.publisher.threads.lock().unwrap().clone();
    let record = s
        .db()
        .post(FeedId::new(1, 10), posts[0].period)
        .unwrap()
        .unwrap();
    let message_id = record.message_id.unwrap();
    assert_eq!(
        threads,
        [(10, message_id, posts[0].insight.title.clone())],
        "one thread, under the post, named after the insight"
    );
    assert_eq!(record.thread_id, Some(message_id));
    assert!(!record.awaits_thread());
}

#[tokio::test]
async fn a_thread_that_failed_is_retried_later_without_a_second_post_or_thread() {
    let mut s = setup("2026-11-23T09:00:00Z");
    s.set_feed(1, 10, "weekly", "mon", "09:00", "UTC", None, true);
    s.publisher.thread_script.lock().unwrap().extend([
        PublishError::Forbidden("Discord answered 403 Forbidden: Missing Permissions".into()),
        PublishError::Transient("Discord answered 500".into()),
    ]);
    s.pass().await;
    let feed = FeedId::new(1, 10);
    let period = s.publisher.posts()[0].period;
    let record = s.db().post(feed, period).unwrap().unwrap();
    assert!(record.is_confirmed(), "the post counts without its thread");
    assert!(record.awaits_thread());
    assert!(
        record.thread_error.as_deref().unwrap().contains("403"),
        "{record:?}"
    );
    // The feed is not stopped by a thread's 403.
    assert!(s.db().feed(feed).unwrap().unwrap().failure.is_none());
    // Held back for a while after a 403 (not retried on every wake)...
    s.pass().await;
    assert!(s.publisher.threads.lock().unwrap().is_empty());
    // ...then retried, across a restart: the 500, and on the next try, the thread.
    s.restart();
    s.clock.set(at("2026-11-23T10:00:01Z"));
    s.pass().await;
    assert!(s.publisher.threads.lock().unwrap().is_empty());
    s.clock.set(at("2026-11-23T10:05:02Z"));
    s.pass().await;
    assert_eq!(s.publisher.threads.lock().unwrap().len(), 1);
    assert_eq!(
        s.publisher.posts().len(),
        1,
        "the post was never sent again"
    );
    let record = s.db().post(feed, period).unwrap().unwrap();
    assert_eq!(record.thread_id, record.message_id);
    assert_eq!(record.thread_error, None);
}

#[tokio::test]
async fn a_crash_between_the_post_and_its_thread_makes_the_thread_once_on_restart() {
    let mut s = setup("2026-11-23T09:00:00Z");
    s.set_feed(1, 10, "weekly", "mon", "09:00", "UTC", None, true);
    let feed = FeedId::new(1, 10);
    let week: Period = WeekKey {
        year: 2026,
        week: 48,
    }
    .into();
    // The earlier process claimed, sent (the message exists) and confirmed, then died.
    s.db()
        .claim(
            feed,
            week,
            &["fix-the-system"],
            PostSource::Schedule,
            &mut rand::thread_rng(),
            s.clock.now(),
        )
        .unwrap()
        .unwrap();
    let message = s.publisher.add_existing(10, week);
    s.db()
        .confirm_post(feed, week, message, s.clock.now())
        .unwrap();
    s.restart();
    s.pass().await;
    s.pass().await;
    assert!(s.publisher.posts().is_empty(), "posted a second time");
    let threads = s.publisher.threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].1, message);
    // And had it died after Discord made the thread but before recording it: Discord refuses
    // a second thread for the message, which the publisher reads as "it exists".
    assert_eq!(
        s.db().post(feed, week).unwrap().unwrap().thread_id,
        Some(message)
    );
}

#[tokio::test]
async fn a_forum_post_whose_answer_was_lost_is_found_not_posted_again() {
    // A forum post carries no nonce: the retry within the same wake must look first.
    let s = setup("2026-11-23T09:00:00Z");
    let spec = FeedSpec {
        forum: true,
        ..FeedSpec::plain(
            insight_bot::weekly::schedule::Schedule::parse("mon", "09:00", "UTC").unwrap(),
        )
    };
    let feed = FeedId::new(1, 10);
    s.db().set_feed(feed, &spec, s.clock.now()).unwrap();
    s.publisher.lose_answers.store(1, Ordering::SeqCst);
    s.pass().await;
    assert_eq!(s.publisher.posts().len(), 1, "posted twice");
    assert_eq!(s.publisher.lookups.load(Ordering::SeqCst), 1);
    let week: Period = WeekKey {
        year: 2026,
        week: 48,
    }
    .into();
    assert!(s.db().post(feed, week).unwrap().unwrap().is_confirmed());
}

#[tokio::test]
async fn a_claim_still_failing_when_the_feed_is_paused_is_never_posted_late() {
    let s = setup("2026-11-23T08:00:00Z");
    s.set_feed(1, 10, "daily", "mon", "09:00", "UTC", None, false);
    let feed = FeedId::new(1, 10);
    s.clock.set(at("2026-11-23T09:00:00Z"));
    let errors = (0..3)
        .map(|_| PublishError::Transient("Discord answered 503".into()))
        .collect();
    s.publisher.fail_next(1, errors);
    s.pass().await;
    assert!(s.publisher.posts().is_empty());
    // Paused at 09:02 until tomorrow: the 09:05 retry does not go out, today or later.
    s.clock.set(at("2026-11-23T09:02:00Z"));
    let tomorrow = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    s.db()
        .set_pause(feed, Some(Pause::Until(tomorrow)), s.clock.now())
        .unwrap();
    s.clock.set(at("2026-11-23T09:06:00Z"));
    s.pass().await;
    s.clock.set(at("2026-11-23T23:00:00Z"));
    s.pass().await;
    assert!(s.publisher.posts().is_empty(), "a paused slot went out");
    assert!(s.db().unconfirmed_posts().unwrap().is_empty(), "given up");
    // Tomorrow's post goes out as usual.
    s.clock.set(at("2026-11-24T09:00:00Z"));
    s.pass().await;
    let days = s.publisher.periods();
    assert_eq!(days, ["2026-11-24"]);
}

#[tokio::test]
async fn after_a_403_and_a_fix_later_the_same_day_the_new_slot_posts() {
    // The 403 releases today's claim; the admin fixes the channel and moves the post an hour
    // later: that slot, today, posts (the poster must not remember the released claim).
    let s = setup("2026-11-23T08:00:00Z");
    s.set_feed(1, 10, "daily", "mon", "09:00", "UTC", None, false);
    s.clock.set(at("2026-11-23T09:00:00Z"));
    s.publisher.fail_next(
        1,
        vec![PublishError::Forbidden(
            "Discord answered 403 Forbidden".into(),
        )],
    );
    s.pass().await;
    assert!(s
        .db()
        .feed(FeedId::new(1, 10))
        .unwrap()
        .unwrap()
        .failure
        .is_some());
    s.clock.set(at("2026-11-23T09:30:00Z"));
    s.set_feed(1, 10, "daily", "mon", "10:00", "UTC", None, false);
    s.clock.set(at("2026-11-23T10:00:00Z"));
    s.pass().await;
    let days = s.publisher.periods();
    assert_eq!(days, ["2026-11-23"]);
}
