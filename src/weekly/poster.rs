//! The poster: one task that posts every feed's insights, exactly once per (feed, period).
//!
//! How "exactly one post per feed per period" holds:
//! - Every post belongs to a *slot*: (feed, period), the period being the ISO week of the slot's
//!   local date for weekly and every-two-weeks feeds, the local date for daily and weekdays
//!   ones. Before anything is sent, the slot is *claimed* in the store, in one transaction with
//!   the feed's rotation step; the (feed, period) primary key makes a second claim impossible,
//!   whatever path asks (the schedule, `/weekly post-now`, a restart, a READY after a
//!   reconnect). `/weekly skip` claims a period without a post, so nothing posts it.
//! - A claim is confirmed with the message id once Discord accepts the message. A claim that was
//!   tried but never confirmed (a crash between send and commit, a timeout, an answer lost after
//!   Discord created the message) is resolved before sending again: the channel (or the forum's
//!   threads) is read for the bot's own post of that period. A message send carries a per-slot
//!   nonce with `enforce_nonce`, so an HTTP retry of the same slot within Discord's dedup window
//!   returns the first message instead of a second one. A forum post has no nonce, so after a
//!   failure that may have created it, the forum is read before every resend.
//! - Catch-up rule: when the poster (re)starts or wakes, a feed's *latest* slot at or before now
//!   is posted if it is unclaimed, not older than the feed itself (`active_since`) and not
//!   within a pause. Older missed periods are not posted: one late post, never a burst. An
//!   unconfirmed claim older than the latest slot is given up, whether or not a send was ever
//!   tried, so a stale period can never go out beside the new one; so is a scheduled claim whose
//!   slot the feed no longer posts (a pause over it, a resume or `/weekly set` after it).
//! - **Threads.** A post whose feed asks for a thread is confirmed first and counts as posted;
//!   its thread is a second step, recorded on the post. Every wake creates the threads still
//!   missing (for a week after the post), so a crash or an error between the post and its
//!   thread delays the thread, never duplicates the post. A thread started from a message has
//!   the message's id, and Discord refuses a second one for the same message: an answer lost
//!   after Discord created the thread is recognised on the retry, never duplicated.
//!
//! Failures: 5xx and timeouts are retried with backoff, then left for a later wake (the claim keeps
//! its insight and nonce) until a newer slot of the same feed is due, which replaces it; a 429
//! waits `retry_after` (a bounded number of times); 403/404 (channel deleted, permission lost)
//! pauses that feed with the reason recorded, so no further requests go there until an admin runs
//! `/weekly set` again (Discord bans IPs that make too many invalid requests).
//!
//! **No feed can stall another.** The loop never waits for a delivery: each slot is delivered by
//! its own task, and the loop goes back to sleeping until the next instant anything is due. A set
//! of in-flight slots keeps a slot from being delivered twice at once (a wake and `post-now`, or
//! two wakes). A permit limits how many *requests* are in flight at once, and is held only around
//! the request itself, never during a backoff or a 429 wait, so a feed waiting a minute for
//! Discord holds up nobody. Slots are found on the poster's [`Clock`] (tests move it by hand);
//! backoffs and 429 waits are Discord's real seconds, on tokio's timer.
//!
//! **Shutdown is prompt.** [`Poster::run`] returns as soon as it is told to stop: deliveries in
//! flight are aborted. An aborted delivery keeps its claim (and, if a send had started, its
//! attempt count), so the next start resolves it through the channel check and the nonce.
//!
//! Scale: one loop, no per-feed timer. Each wake reads the active feeds in one query, computes
//! every feed's latest and next slot (microseconds each), starts what is due, and sleeps until the
//! earliest next slot or retry — or until [`Poster::wake`] is called after a settings change or a
//! finished delivery. The Discord specifics sit behind [`Publisher`], so this module is tested
//! and benchmarked without Discord.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::AbortHandle;

use crate::insights::{Insight, Library};
use crate::sharding::Shards;
use crate::store::{Claim, FeedSettings, PostRecord, PostSource, Store, StoreError};
use crate::weekly::clock::Clock;
use crate::weekly::feed::{FeedId, THREAD_ARCHIVE_MINUTES};
use crate::weekly::schedule::{Period, Slot};

pub type PublishFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PublishError>> + Send + 'a>>;

/// One scheduled post, ready to send.
#[derive(Debug, Clone)]
pub struct OutgoingPost {
    pub feed: FeedId,
    pub period: Period,
    pub insight: Insight,
    /// Per-slot nonce, sent with `enforce_nonce` so Discord drops a duplicate of a retried send.
    pub nonce: String,
    /// The one role the post mentions.
    pub ping_role: Option<u64>,
    /// The feed's channel is a forum: the post is a forum post titled by the insight.
    pub forum: bool,
}

/// How a send or a look-up failed, in the terms the poster acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// 403/404: the channel is gone or the bot may not post there. Stop sending to this feed.
    #[error("{0}")]
    Forbidden(String),
    /// 429: wait this long, then try again (not a failure).
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// 5xx, timeouts, network errors: worth retrying later.
    #[error("{0}")]
    Transient(String),
}

/// Where posts go: Discord in production (`bot::weekly`), a recorder in tests and benchmarks.
pub trait Publisher: Send + Sync + 'static {
    /// Sends the post; the message id on success (for a forum post, its thread's id, which is
    /// also its first message's).
    fn send<'a>(&'a self, post: &'a OutgoingPost) -> PublishFuture<'a, u64>;
    /// Looks in the feed's channel (or forum) for the bot's own post of `post.period` among what
    /// was sent since `since` (the claim: the post cannot be older); its id if found.
    fn find_post<'a>(
        &'a self,
        post: &'a OutgoingPost,
        since: DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>>;
    /// Starts the thread `name` under message `message_id` of `channel_id`, archived after
    /// [`THREAD_ARCHIVE_MINUTES`]; the thread's id. A thread that already exists for the message
    /// (an earlier try whose answer was lost) is that thread, not an error.
    fn create_thread<'a>(
        &'a self,
        channel_id: u64,
        message_id: u64,
        name: &'a str,
    ) -> PublishFuture<'a, u64>;
}

/// Tuning; the defaults are production values, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct PosterOptions {
    /// Sends tried in a row before leaving a claim for a later wake.
    pub attempts_per_wake: u32,
    /// The first backoff between those sends; doubled each time.
    pub first_backoff: Duration,
    /// When a claim (or a thread) is left for later, how long until the next wake tries it again.
    pub retry_later: Duration,
    /// Requests (sends and channel reads) in flight at once, across all feeds.
    pub concurrency: usize,
    /// The longest wait for a 429 before giving the slot back to a later wake.
    pub max_rate_limit_wait: Duration,
    /// 429s accepted in a row for one post before giving it back to a later wake: each 429 counts
    /// towards Discord's invalid-request limit, so a run of them must end.
    pub max_rate_limits_per_wake: u32,
    /// How long one request to Discord may take before it counts as failed (the answer may still
    /// have been lost after Discord created the message: the nonce and the channel check cover
    /// that). Used by the Discord publisher.
    pub request_timeout: Duration,
    /// The shards of this process: it posts only for their servers (another process posts for
    /// the others).
    pub shards: Shards,
}

impl Default for PosterOptions {
    fn default() -> Self {
        PosterOptions {
            attempts_per_wake: 3,
            first_backoff: Duration::from_secs(2),
            retry_later: Duration::from_secs(300),
            concurrency: 16,
            max_rate_limit_wait: Duration::from_secs(60),
            max_rate_limits_per_wake: 5,
            request_timeout: Duration::from_secs(15),
            shards: Shards::Auto,
        }
    }
}

/// What happened to one slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Posted (or found already posted); the message id.
    Posted(u64),
    /// The slot already had a confirmed post, or was skipped.
    AlreadyPosted(PostRecord),
    /// Another delivery of the same slot is running right now (a wake and `post-now` met).
    InProgress,
    /// Not posted yet; it will be retried on a later wake.
    WillRetry(String),
    /// The channel refused (403/404): the feed is paused with this reason.
    Paused(String),
    /// The collection (or the feed's topic) has no insight.
    NothingToPost,
}

/// Errors from the store, surfaced to the caller (a command shows them; the task logs them).
pub type PosterResult<T> = Result<T, StoreError>;

/// Where the poster finds the insights a server's posts pick from. The bot gives each server its
/// own collection ([`crate::collections::Collections`]: its own insights, less the shipped ones
/// it hid, or only its own); an `Arc<Library>` is one collection for every server (tests, tools).
pub trait ServerLibraries: Send + Sync {
    /// The insights `guild_id`'s feeds may pick from.
    fn library_for(
        &self,
        guild_id: u64,
    ) -> Pin<Box<dyn Future<Output = PosterResult<Arc<Library>>> + Send + '_>>;
}

impl ServerLibraries for Arc<Library> {
    fn library_for(
        &self,
        _guild_id: u64,
    ) -> Pin<Box<dyn Future<Output = PosterResult<Arc<Library>>> + Send + '_>> {
        Box::pin(std::future::ready(Ok(Arc::clone(self))))
    }
}

/// Whether a feed with `topic` draws `insight`: every insight without a topic, else those
/// tagged with it or from the pack of that id.
pub fn feed_draws(insight: &Insight, topic: Option<&str>) -> bool {
    match topic {
        None => true,
        Some(topic) => insight.pack == Some(topic) || insight.topics.iter().any(|t| t == topic),
    }
}

/// The ids a feed with `topic` picks from, in the collection's order.
pub fn feed_ids<'a>(library: &'a Library, topic: Option<&str>) -> Vec<&'a str> {
    library
        .insights()
        .iter()
        .filter(|insight| feed_draws(insight, topic))
        .map(|insight| insight.id.as_str())
        .collect()
}

/// The random source of a feed's picks in rotation cycle `cycle`: seeded by the feed and the
/// cycle, so the same rotation state and collection always draw the same next insight. That is
/// what lets `/weekly preview` show exactly what the claim will pick, and a skipped period leave
/// its insight to the next post.
pub fn pick_rng(feed: FeedId, cycle: u32) -> rand::rngs::StdRng {
    let key = format!("{}/{}/{cycle}", feed.guild_id, feed.channel_id);
    rand::rngs::StdRng::seed_from_u64(stable_hash(&key))
}

/// FNV-1a: stable across builds and runs (unlike std's hasher), for seeds and picks that must
/// come out the same after a restart.
fn stable_hash(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A slot: (feed, period).
type SlotKey = (FeedId, Period);

/// What a delivery task starts from.
enum Job {
    /// A due slot, not claimed yet.
    Claim(FeedSettings, Period),
    /// A claimed slot (a retry, a recovery after a restart, or `post-now`'s own claim).
    Claimed(PostRecord),
    /// A confirmed post whose thread is still to be created.
    Thread(PostRecord),
}

impl Job {
    fn key(&self) -> SlotKey {
        match self {
            Job::Claim(settings, period) => (settings.feed, *period),
            Job::Claimed(record) | Job::Thread(record) => (record.feed, record.period),
        }
    }
}

/// How long after a post its missing thread is still created: the thread's own archive time.
const THREAD_WINDOW: chrono::Duration = chrono::Duration::minutes(THREAD_ARCHIVE_MINUTES as i64);

/// A thread refused with 403/404 (permissions taken away) is tried again this many times less
/// often than a transient failure, so a server that never fixes it costs Discord's
/// invalid-request budget a few requests a day, not hundreds.
const FORBIDDEN_THREAD_BACKOFF: i32 = 12;

pub struct Poster {
    store: Store,
    libraries: Arc<dyn ServerLibraries>,
    publisher: Arc<dyn Publisher>,
    clock: Arc<dyn Clock>,
    options: PosterOptions,
    wake: Notify,
    /// Limits requests in flight; held only around a request.
    requests: Semaphore,
    /// Deliveries running now, by slot, with the handle that aborts each at shutdown.
    in_flight: Mutex<HashMap<SlotKey, AbortHandle>>,
    /// Signalled whenever a delivery ends (see [`Poster::wait_idle`]).
    delivery_ended: Notify,
    /// Slots whose last delivery (or thread) ended unresolved with nothing in the store to say
    /// when to try again (a store error, an empty collection, a thread refused): not before
    /// this instant, so a broken database is retried every `retry_later`, not in a tight loop.
    held_back: Mutex<HashMap<SlotKey, DateTime<Utc>>>,
    /// Posts whose thread failed to start: not tried again before this instant.
    threads_held_back: Mutex<HashMap<SlotKey, DateTime<Utc>>>,
    /// Per feed, a period this poster knows is claimed (by itself or found in the store). Only
    /// this poster releases its feeds' claims (each feed belongs to one process's shards), and it
    /// forgets the feed's entry when it does, so a feed whose latest slot is known claimed needs
    /// no store read.
    known_claimed: Mutex<HashMap<FeedId, Period>>,
}

/// Removes a slot from the in-flight set when its delivery ends, however it ends (an abort drops
/// the task's future, and with it this guard).
struct InFlightSlot {
    poster: Arc<Poster>,
    key: SlotKey,
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        lock(&self.poster.in_flight).remove(&self.key);
        self.poster.delivery_ended.notify_waiters();
        // The loop recomputes its next wake: a retry time may have been recorded.
        self.poster.wake.notify_one();
    }
}

/// Locks a std mutex, recovering from poisoning: every critical section here is a single map
/// operation, which cannot leave the map half-changed.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Poster {
    pub fn new(
        store: Store,
        libraries: Arc<dyn ServerLibraries>,
        publisher: Arc<dyn Publisher>,
        clock: Arc<dyn Clock>,
        options: PosterOptions,
    ) -> Self {
        Poster {
            store,
            libraries,
            publisher,
            clock,
            requests: Semaphore::new(options.concurrency.max(1)),
            options,
            wake: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            delivery_ended: Notify::new(),
            held_back: Mutex::new(HashMap::new()),
            threads_held_back: Mutex::new(HashMap::new()),
            known_claimed: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers that `period` of `feed` is claimed (see `known_claimed`).
    fn note_claimed(&self, (feed, period): SlotKey) {
        lock(&self.known_claimed).insert(feed, period);
    }

    /// Forgets what is known of `feed`'s claims: called whenever this poster releases one.
    fn forget_claimed(&self, feed: FeedId) {
        lock(&self.known_claimed).remove(&feed);
    }

    /// Tells the running task that settings changed, so it recomputes when to wake.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The slots being delivered right now.
    pub fn in_flight(&self) -> Vec<(FeedId, Period)> {
        lock(&self.in_flight).keys().copied().collect()
    }

    /// Waits until no delivery is running.
    pub async fn wait_idle(&self) {
        loop {
            let ended = self.delivery_ended.notified();
            if lock(&self.in_flight).is_empty() {
                return;
            }
            ended.await;
        }
    }

    /// Runs until `shutdown` is notified, then aborts the deliveries in flight and returns. Start
    /// it once (never from READY, which fires again after every reconnect).
    pub async fn run(self: Arc<Self>, shutdown: Arc<Notify>) {
        tracing::info!("poster started");
        loop {
            let next = match self.tick().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!("poster could not read the store: {e}");
                    Some(self.clock.now() + chrono::Duration::seconds(60))
                }
            };
            // With nothing scheduled, still wake hourly: cheap, and a safety net.
            let until = next.unwrap_or_else(|| self.clock.now() + chrono::Duration::hours(1));
            tracing::debug!(%until, "poster sleeping");
            tokio::select! {
                _ = self.clock.sleep_until(until) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.notified() => break,
            }
        }
        self.stop_deliveries().await;
        tracing::info!("poster stopped");
    }

    /// Aborts every delivery in flight and waits for them to end. Their claims stay in the store.
    pub async fn stop_deliveries(&self) {
        let aborted: Vec<SlotKey> = {
            let in_flight = lock(&self.in_flight);
            in_flight.values().for_each(AbortHandle::abort);
            in_flight.keys().copied().collect()
        };
        for (feed, period) in &aborted {
            tracing::info!(%feed, %period, "post interrupted by shutdown; the next start resolves it");
        }
        self.wait_idle().await;
    }

    /// One pass: starts a delivery for every due slot, every due retry and every missing thread,
    /// and returns the next instant anything is due. It does not wait for the deliveries
    /// ([`Poster::wait_idle`] does).
    pub async fn tick(self: &Arc<Self>) -> PosterResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let thread_since = now - THREAD_WINDOW;
        // Taken before the store is read: a delivery that ends after this snapshot is still in
        // it, and one that ended before it has its outcome in what the read returns. (Taken
        // after, a delivery ending in between would be missing from both, and its record read
        // as unconfirmed would be sent again.)
        let busy: HashSet<SlotKey> = lock(&self.in_flight).keys().copied().collect();
        let (mut active, mut unconfirmed, mut awaiting_thread) = self
            .store
            .call(move |db| {
                Ok((
                    db.active_feeds()?,
                    db.unconfirmed_posts()?,
                    db.posts_awaiting_thread(thread_since)?,
                ))
            })
            .await?;
        // Only this process's shards' servers: another process posts for the others.
        let shards = self.options.shards;
        active.retain(|s| shards.owns(s.feed.guild_id));
        unconfirmed.retain(|r| shards.owns(r.feed.guild_id));
        awaiting_thread.retain(|r| shards.owns(r.feed.guild_id));
        let held_back = {
            let mut held = lock(&self.held_back);
            held.retain(|_, until| *until > now);
            held.clone()
        };
        let threads_held_back = {
            let mut held = lock(&self.threads_held_back);
            held.retain(|_, until| *until > now);
            held.clone()
        };
        let mut next: Option<DateTime<Utc>> = None;
        let mut earliest = |at: DateTime<Utc>| {
            next = Some(next.map_or(at, |n| n.min(at)));
        };
        // Each active feed's latest slot: an unconfirmed claim of an earlier period is stale.
        let latest_slots: HashMap<FeedId, (Slot, &FeedSettings)> = active
            .iter()
            .map(|s| (s.feed, (s.schedule.latest_slot_at_or_before(now), s)))
            .collect();
        let mut jobs = Vec::new();
        let mut pending: HashSet<SlotKey> = HashSet::new();
        let mut stale = Vec::new();
        for record in unconfirmed {
            let key = (record.feed, record.period);
            pending.insert(key);
            if busy.contains(&key) {
                continue;
            }
            let Some(&(latest, settings)) = latest_slots.get(&record.feed) else {
                continue;
            };
            // A scheduled post whose slot the feed no longer posts (paused over it, or resumed
            // or set again after it) is given up like a stale one: a pause or a resume never
            // lets a claimed slot out late. A `post-now` waits while the feed is paused.
            let still_wanted = match record.source {
                PostSource::Schedule => settings
                    .schedule
                    .slot_in(record.period)
                    .is_some_and(|slot| settings.posts(&slot)),
                _ => !settings.paused_on(now),
            };
            if !still_wanted && record.source == PostSource::Schedule {
                stale.push(key);
                continue;
            }
            if !still_wanted {
                continue;
            }
            if record.period.start() < latest.period.start() {
                // A newer slot has come while this one was unresolved: the catch-up rule posts
                // only the latest slot, so this one is given up, whether a send was tried (it may
                // even have gone out) or not (a claim whose send never started, after a store
                // error or a crash). The newer slot posts normally.
                stale.push(key);
                continue;
            }
            match (held_back.get(&key), record.retry_at) {
                (Some(&until), _) => earliest(until),
                (None, Some(at)) if at > now => earliest(at),
                _ => jobs.push(Job::Claimed(record)),
            }
        }
        for record in awaiting_thread {
            let key = (record.feed, record.period);
            if busy.contains(&key) {
                continue;
            }
            match threads_held_back.get(&key) {
                Some(&until) => earliest(until),
                None => jobs.push(Job::Thread(record)),
            }
        }
        if !stale.is_empty() {
            for (feed, period) in &stale {
                tracing::warn!(%feed, %period, "giving up an unsent post: a newer period's slot is due");
            }
            for &(feed, _) in &stale {
                self.forget_claimed(feed);
            }
            self.store
                .call(move |db| {
                    stale
                        .iter()
                        .try_for_each(|&(feed, period)| db.release_claim(feed, period))
                })
                .await?;
        }
        // The feeds whose latest slot may be due: postable, not pending or in flight, and not
        // already known to be claimed.
        let candidates: Vec<(FeedSettings, Slot)> = {
            let known = lock(&self.known_claimed);
            active
                .iter()
                .map(|settings| (settings, latest_slots[&settings.feed].0))
                .filter(|(settings, latest)| {
                    let key = (settings.feed, latest.period);
                    settings.posts(latest)
                        && !pending.contains(&key)
                        && !busy.contains(&key)
                        && known.get(&settings.feed) != Some(&latest.period)
                })
                .map(|(settings, latest)| (settings.clone(), latest))
                .collect()
        };
        // One range query over the post log for those only: after the first pass, that is the
        // slots that just came due, so an idle wake reads next to nothing.
        let since = candidates
            .iter()
            .filter_map(|(_, latest)| latest.period.start())
            .min();
        let claimed = match since {
            Some(since) => {
                self.store
                    .call(move |db| db.claimed_slots_since(since))
                    .await?
            }
            None => HashSet::new(),
        };
        for (settings, latest) in candidates {
            let key = (settings.feed, latest.period);
            if claimed.contains(&key) {
                self.note_claimed(key);
                continue;
            }
            match held_back.get(&key) {
                Some(&until) => earliest(until),
                None => jobs.push(Job::Claim(settings, latest.period)),
            }
        }
        for settings in &active {
            if let Some(upcoming) = settings.next_slot_after(now) {
                earliest(upcoming.at);
            }
        }
        if !jobs.is_empty() {
            tracing::info!(deliveries = jobs.len(), "posts due");
        }
        for job in jobs {
            self.spawn_delivery(job);
        }
        Ok(next)
    }

    /// Starts a delivery task for `job` unless its slot is already in flight; the receiver gets
    /// its outcome.
    fn spawn_delivery(self: &Arc<Self>, job: Job) -> Option<oneshot::Receiver<Delivery>> {
        let key = job.key();
        let mut in_flight = lock(&self.in_flight);
        if in_flight.contains_key(&key) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let guard = InFlightSlot {
            poster: Arc::clone(self),
            key,
        };
        let poster = Arc::clone(self);
        // The task holds the in-flight map's lock only after this function returns it: the entry
        // is inserted below, before the task can run to completion and remove it.
        let task = tokio::spawn(async move {
            let _guard = guard;
            let delivery = poster.run_job(job).await;
            let _ = tx.send(delivery);
        });
        in_flight.insert(key, task.abort_handle());
        Some(rx)
    }

    async fn run_job(&self, job: Job) -> Delivery {
        let key = job.key();
        if let Job::Thread(record) = job {
            self.make_thread(&record).await;
            return Delivery::AlreadyPosted(record);
        }
        // The schedule of a scheduled post, for its delay against the slot (`None` for
        // `post-now`, which has no slot; a retry's is read back when it succeeds).
        let schedule = match &job {
            Job::Claim(settings, _) => Some(settings.schedule),
            _ => None,
        };
        let from_schedule = match &job {
            Job::Claim(..) => true,
            Job::Claimed(record) | Job::Thread(record) => record.source == PostSource::Schedule,
        };
        let result = match job {
            Job::Claim(settings, period) => {
                let claimed = self.claim(&settings, period, PostSource::Schedule).await;
                if let Ok(Some(_)) = &claimed {
                    self.note_claimed(key);
                }
                match claimed {
                    Ok(Some(Claim::Claimed(record))) => {
                        self.try_deliver(&record, Some(settings)).await
                    }
                    Ok(Some(Claim::AlreadyClaimed(record))) => Ok(Delivery::AlreadyPosted(record)),
                    Ok(None) => Ok(Delivery::NothingToPost),
                    Err(e) => Err(e),
                }
            }
            Job::Claimed(record) | Job::Thread(record) => self.try_deliver(&record, None).await,
        };
        self.count_delivery(&result, key, schedule, from_schedule)
            .await;
        let retry_later = chrono::Duration::from_std(self.options.retry_later).unwrap_or_default();
        match result {
            Ok(Delivery::NothingToPost) => {
                lock(&self.held_back).insert(key, self.clock.now() + retry_later);
                Delivery::NothingToPost
            }
            Ok(delivery) => {
                lock(&self.held_back).remove(&key);
                delivery
            }
            Err(e) => {
                tracing::error!(feed = %key.0, period = %key.1, "post: store error: {e}");
                lock(&self.held_back).insert(key, self.clock.now() + retry_later);
                Delivery::WillRetry(e.to_string())
            }
        }
    }

    /// `posts_total{outcome}`, and for a scheduled post that went out, `post_delay_seconds`:
    /// when it went out against its slot.
    async fn count_delivery(
        &self,
        result: &PosterResult<Delivery>,
        (feed, period): SlotKey,
        schedule: Option<crate::weekly::schedule::Schedule>,
        from_schedule: bool,
    ) {
        let metrics = crate::ops::metrics();
        let outcome = match result {
            Ok(Delivery::Posted(_)) => "sent",
            Ok(Delivery::Paused(_)) => "paused",
            Ok(Delivery::WillRetry(_)) | Err(_) => "failed",
            Ok(Delivery::AlreadyPosted(_) | Delivery::InProgress | Delivery::NothingToPost) => {
                "skipped"
            }
        };
        metrics.posts.inc([outcome]);
        if outcome != "sent" || !from_schedule {
            return;
        }
        let schedule = match schedule {
            Some(schedule) => Some(schedule),
            // A retried slot: its schedule is read back (a count must not fail the post).
            None => self
                .store
                .call(move |db| db.feed(feed))
                .await
                .ok()
                .flatten()
                .map(|settings| settings.schedule),
        };
        if let Some(slot) = schedule.and_then(|s| s.slot_in(period)) {
            let late = (self.clock.now() - slot.at).to_std().unwrap_or_default();
            metrics.post_delay.observe_duration(late);
        }
    }

    async fn claim(
        &self,
        settings: &FeedSettings,
        period: Period,
        source: PostSource,
    ) -> PosterResult<Option<Claim>> {
        let library = self.libraries.library_for(settings.feed.guild_id).await?;
        let (feed, now, topic) = (settings.feed, self.clock.now(), settings.topic.clone());
        self.store
            .call(move |db| {
                let ids = feed_ids(&library, topic.as_deref());
                // Read outside the claim's transaction: a claim racing in between changes only
                // which seed this draw uses, never what is claimed.
                let cycle = db.rotation(feed)?.cycle;
                db.claim(feed, period, &ids, source, &mut pick_rng(feed, cycle), now)
            })
            .await
    }

    /// The next post `settings` will make after now, and the insight it will carry when that is
    /// already decided: `/weekly preview`. Periods already taken (a skip, a `post-now`) are
    /// passed over; the insight is what the claim will pick, with the same seeded draw, as long
    /// as the collection and the feed do not change first (`None` with an empty collection).
    pub async fn preview(
        &self,
        settings: &FeedSettings,
    ) -> PosterResult<Option<(Slot, Option<Insight>)>> {
        let Some(slot) = self.next_post(settings).await? else {
            return Ok(None);
        };
        let library = self.libraries.library_for(settings.feed.guild_id).await?;
        let feed = settings.feed;
        let rotation = self.store.call(move |db| db.rotation(feed)).await?;
        let ids = feed_ids(&library, settings.topic.as_deref());
        let insight = rotation
            .next(&ids, &mut pick_rng(feed, rotation.cycle))
            .and_then(|(id, _)| library.get(&id).cloned());
        Ok(Some((slot, insight)))
    }

    /// The next slot `settings` will post: after now, not before a pause's end, and not in a
    /// period already taken by a skip or `post-now`. `None` for a feed that is off or paused
    /// indefinitely (or, absurdly, with the next 400 periods all taken).
    pub async fn next_post(&self, settings: &FeedSettings) -> PosterResult<Option<Slot>> {
        let Some(first) = settings.next_slot_after(self.clock.now()) else {
            return Ok(None);
        };
        let (schedule, feed) = (settings.schedule, settings.feed);
        // One point look-up per slot, this feed's only: usually one or two.
        self.store
            .call(move |db| {
                let mut slot = first;
                for _ in 0..400 {
                    if db.post(feed, slot.period)?.is_none() {
                        return Ok(Some(slot));
                    }
                    slot = schedule.first_slot_on_or_after(slot.date + chrono::Days::new(1));
                }
                Ok(None)
            })
            .await
    }

    /// `/weekly skip`: marks the feed's next post (see [`Poster::next_post`]) as skipped; the
    /// slot skipped, or `None` when the feed has no next post.
    pub async fn skip_next(&self, settings: &FeedSettings) -> PosterResult<Option<Slot>> {
        // The next post may be claimed between the look-up and the skip (its slot came due):
        // then the one after is the next post. Three tries are plenty for slots a day apart.
        for _ in 0..3 {
            let Some(slot) = self.next_post(settings).await? else {
                return Ok(None);
            };
            let (feed, now) = (settings.feed, self.clock.now());
            let skipped = self
                .store
                .call(move |db| db.skip(feed, slot.period, now))
                .await?;
            if let Claim::Claimed(_) = skipped {
                self.wake();
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// `/weekly post-now`: posts the current period's insight at once (`None` when the feed is
    /// not active). The current period is the one of today in the feed's zone (this week, for a
    /// weekly feed); its slot is claimed like a scheduled one, so the scheduled post of the same
    /// period is skipped, and a second `post-now` in the same period is refused. The delivery
    /// runs as the poster's own task (so shutdown stops it like any other); this waits for its
    /// outcome.
    pub async fn post_now(self: &Arc<Self>, feed: FeedId) -> PosterResult<Option<Delivery>> {
        let active = self.store.call(move |db| db.feed(feed)).await?;
        let Some(settings) = active.filter(|s| s.enabled && s.failure.is_none()) else {
            return Ok(None);
        };
        let period = settings.schedule.period_at(self.clock.now());
        let record = match self.claim(&settings, period, PostSource::PostNow).await? {
            Some(Claim::Claimed(record)) => record,
            Some(Claim::AlreadyClaimed(record))
                if !record.is_confirmed() && record.source != PostSource::Skip =>
            {
                record
            }
            Some(Claim::AlreadyClaimed(record)) => {
                return Ok(Some(Delivery::AlreadyPosted(record)))
            }
            None => return Ok(Some(Delivery::NothingToPost)),
        };
        let delivery = match self.spawn_delivery(Job::Claimed(record)) {
            None => Delivery::InProgress,
            Some(outcome) => outcome
                .await
                .unwrap_or_else(|_| Delivery::WillRetry("interrupted by shutdown".into())),
        };
        self.wake();
        Ok(Some(delivery))
    }

    /// The post a record stands for, with its feed's options (`None` when the collection is
    /// empty). `settings` are the feed's when the caller has them (a claim just made from
    /// them); else they are read.
    async fn outgoing(
        &self,
        record: &PostRecord,
        settings: Option<FeedSettings>,
    ) -> PosterResult<Option<OutgoingPost>> {
        let feed = record.feed;
        let settings = match settings {
            Some(settings) => Some(settings),
            None => self.store.call(move |db| db.feed(feed)).await?,
        };
        let library = self.libraries.library_for(feed.guild_id).await?;
        let topic = settings.as_ref().and_then(|s| s.topic.clone());
        let insight = match library.get(&record.insight_id) {
            Some(insight) => insight.clone(),
            // Removed from the collection (or hidden) since the claim: post another rather than
            // nothing, from the feed's topic when it still has one. The same one on every try
            // (picked by the slot's nonce), so a retry is recognisable as the same post.
            None => {
                let ids = feed_ids(&library, topic.as_deref());
                let ids = if ids.is_empty() {
                    library.insights().iter().map(|i| i.id.as_str()).collect()
                } else {
                    ids
                };
                let index = (stable_hash(&record.nonce) % ids.len().max(1) as u64) as usize;
                let pick = ids.get(index).and_then(|id| library.get(id));
                match pick {
                    Some(insight) => insight.clone(),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(OutgoingPost {
            feed,
            period: record.period,
            insight,
            nonce: record.nonce.clone(),
            ping_role: settings.as_ref().and_then(|s| s.ping_role),
            forum: settings.as_ref().is_some_and(|s| s.forum),
        }))
    }

    /// Sends one claimed slot, resolving an earlier unconfirmed attempt first. `settings`: the
    /// feed's, when the caller has them.
    async fn try_deliver(
        &self,
        record: &PostRecord,
        settings: Option<FeedSettings>,
    ) -> PosterResult<Delivery> {
        let (feed, period) = (record.feed, record.period);
        let Some(post) = self.outgoing(record, settings).await? else {
            return Ok(Delivery::NothingToPost);
        };
        if record.attempts > 0 {
            // Tried before and never confirmed: it may have gone out (a crash after the send, a
            // timeout or a lost answer after Discord accepted it). Look before sending again.
            let lookup = {
                let _permit = self.requests.acquire().await;
                self.publisher.find_post(&post, record.claimed_at).await
            };
            match lookup {
                Ok(Some(message_id)) => {
                    tracing::info!(%feed, %period, message_id, "post found already sent; confirmed without sending again");
                    let now = self.clock.now();
                    self.store
                        .call(move |db| db.confirm_post(feed, period, message_id, now))
                        .await?;
                    self.after_post(record, &post, message_id).await;
                    return Ok(Delivery::Posted(message_id));
                }
                Ok(None) => {}
                Err(PublishError::Forbidden(reason)) => return self.pause(record, reason).await,
                // Cannot tell: send anyway; the nonce still guards a recent duplicate.
                Err(e) => {
                    tracing::warn!(%feed, %period, "could not read the channel to check an earlier attempt: {e}")
                }
            }
        }
        let mut backoff = self.options.first_backoff;
        let mut failures = 0;
        let mut rate_limits = 0;
        let mut last_error = String::new();
        while failures < self.options.attempts_per_wake {
            // A forum post carries no nonce, so Discord cannot drop a resend: after a failure
            // that may have created it (a 5xx, a timeout), look for it before sending again.
            if post.forum && failures > 0 {
                let lookup = {
                    let _permit = self.requests.acquire().await;
                    self.publisher.find_post(&post, record.claimed_at).await
                };
                if let Ok(Some(message_id)) = lookup {
                    tracing::info!(%feed, %period, message_id, "forum post found already made; confirmed without posting again");
                    let now = self.clock.now();
                    self.store
                        .call(move |db| db.confirm_post(feed, period, message_id, now))
                        .await?;
                    self.after_post(record, &post, message_id).await;
                    return Ok(Delivery::Posted(message_id));
                }
            }
            let now = self.clock.now();
            self.store
                .call(move |db| db.record_attempt(feed, period, now, None, None))
                .await?;
            let sent = {
                let _permit = self.requests.acquire().await;
                self.publisher.send(&post).await
            };
            match sent {
                Ok(message_id) => {
                    let now = self.clock.now();
                    self.store
                        .call(move |db| db.confirm_post(feed, period, message_id, now))
                        .await?;
                    tracing::info!(%feed, %period, insight = %post.insight.id, message_id, "insight posted");
                    self.after_post(record, &post, message_id).await;
                    return Ok(Delivery::Posted(message_id));
                }
                Err(PublishError::Forbidden(reason)) => return self.pause(record, reason).await,
                Err(PublishError::RateLimited(wait)) => {
                    rate_limits += 1;
                    if wait > self.options.max_rate_limit_wait
                        || rate_limits > self.options.max_rate_limits_per_wake
                    {
                        last_error =
                            format!("rate limited ({rate_limits} times, last for {wait:?})");
                        break;
                    }
                    tracing::warn!(%feed, %period, ?wait, "rate limited; waiting as Discord asks");
                    tokio::time::sleep(wait).await;
                }
                Err(PublishError::Transient(e)) => {
                    failures += 1;
                    tracing::warn!(%feed, %period, attempt = failures, "post failed, will retry: {e}");
                    last_error = e;
                    if failures < self.options.attempts_per_wake {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
        let now = self.clock.now();
        let retry_at =
            now + chrono::Duration::from_std(self.options.retry_later).unwrap_or_default();
        let error = last_error.clone();
        self.store
            .call(move |db| db.record_attempt(feed, period, now, Some(&error), Some(retry_at)))
            .await?;
        tracing::warn!(%feed, %period, %retry_at, "post not sent yet: {last_error}; retrying later");
        Ok(Delivery::WillRetry(last_error))
    }

    /// What follows a confirmed post: it counts as a showing, and its thread is started. Neither
    /// can fail the post, which is out: a count is logged, a thread is tried again later.
    async fn after_post(&self, record: &PostRecord, post: &OutgoingPost, message_id: u64) {
        let (guild, id, day) = (
            record.feed.guild_id,
            post.insight.id.clone(),
            self.clock.now().date_naive(),
        );
        if let Err(e) = self
            .store
            .call(move |db| db.record_shown(guild, &id, day))
            .await
        {
            tracing::warn!(guild, "could not count the posted insight as shown: {e}");
        }
        if record.thread_wanted {
            let mut posted = record.clone();
            posted.message_id = Some(message_id);
            self.make_thread(&posted).await;
        }
    }

    /// Starts the thread under a confirmed post and records it, or records why it failed and
    /// holds the slot back until the next try.
    async fn make_thread(&self, record: &PostRecord) {
        let Some(message_id) = record.message_id else {
            return;
        };
        let (feed, period) = (record.feed, record.period);
        let title = match self.libraries.library_for(feed.guild_id).await {
            Ok(library) => library
                .get(&record.insight_id)
                .map(|insight| insight.title.clone()),
            Err(_) => None,
        };
        let name = crate::weekly::feed::thread_name(title.as_deref().unwrap_or("Discussion"));
        let created = {
            let _permit = self.requests.acquire().await;
            self.publisher
                .create_thread(record.channel_id, message_id, &name)
                .await
        };
        let now = self.clock.now();
        let retry_later = chrono::Duration::from_std(self.options.retry_later).unwrap_or_default();
        let (outcome, hold) = match created {
            Ok(thread_id) => {
                tracing::info!(%feed, %period, thread_id, "thread started under the post");
                (Ok(thread_id), None)
            }
            Err(PublishError::Forbidden(reason)) => {
                let reason = format!("could not start the thread: {reason}");
                tracing::warn!(%feed, %period, "{reason}");
                (Err(reason), Some(retry_later * FORBIDDEN_THREAD_BACKOFF))
            }
            Err(e) => {
                let reason = format!("could not start the thread yet: {e}");
                tracing::warn!(%feed, %period, "{reason}");
                (Err(reason), Some(retry_later))
            }
        };
        let stored = outcome.clone();
        if let Err(e) = self
            .store
            .call(move |db| {
                db.record_thread(
                    feed,
                    period,
                    stored.as_ref().copied().map_err(|e| e.as_str()),
                    now,
                )
            })
            .await
        {
            tracing::error!(%feed, %period, "could not record the thread: {e}");
        }
        match hold {
            Some(wait) => lock(&self.threads_held_back).insert((feed, period), now + wait),
            None => lock(&self.threads_held_back).remove(&(feed, period)),
        };
    }

    async fn pause(&self, record: &PostRecord, reason: String) -> PosterResult<Delivery> {
        tracing::error!(feed = %record.feed, period = %record.period, "posts paused for this feed: {reason}");
        let (feed, period, now) = (record.feed, record.period, self.clock.now());
        self.forget_claimed(feed);
        let stored = reason.clone();
        self.store
            .call(move |db| {
                db.mark_failing(feed, &stored, now)?;
                db.release_claim(feed, period)
            })
            .await?;
        Ok(Delivery::Paused(reason))
    }
}
