//! The weekly poster: one task that posts each server's insight of the week, exactly once.
//!
//! How "exactly one post per server per week" holds:
//! - Every post belongs to a *slot*: (server, ISO week of the slot's local date). Before anything
//!   is sent, the slot is *claimed* in the store, in one transaction with the rotation step; the
//!   (server, week) primary key makes a second claim impossible, whatever path asks (the schedule,
//!   `/weekly post-now`, a restart, a READY after a reconnect).
//! - A claim is confirmed with the message id once Discord accepts the message. A claim that was
//!   tried but never confirmed (a crash between send and commit, a timeout, an answer lost after
//!   Discord created the message) is resolved before sending again: the channel's recent messages
//!   are read for the bot's own post of that week. The send itself carries a per-slot nonce with
//!   `enforce_nonce`, so an HTTP retry of the same slot within Discord's dedup window returns the
//!   first message instead of a second one.
//! - Catch-up rule: when the poster (re)starts or wakes, a server's *latest* slot at or before now
//!   is posted if it is unclaimed and not older than the schedule itself (`active_since`). Older
//!   missed weeks are not posted: one late post, never a burst. An unconfirmed claim older than
//!   the latest slot is given up, whether or not a send was ever tried, so a stale week can never
//!   go out beside the new one.
//!
//! Failures: 5xx and timeouts are retried with backoff, then left for a later wake (the claim keeps
//! its insight and nonce) until a newer slot of the same server is due, which replaces it; a 429
//! waits `retry_after` (a bounded number of times); 403/404 (channel deleted, permission lost)
//! pauses that server's schedule with the reason recorded, so no further requests go there until an
//! admin runs `/weekly set` again (Discord bans IPs that make too many invalid requests).
//!
//! **No server can stall another.** The loop never waits for a delivery: each slot is delivered by
//! its own task, and the loop goes back to sleeping until the next instant anything is due. A set
//! of in-flight slots keeps a slot from being delivered twice at once (a wake and `post-now`, or
//! two wakes). A permit limits how many *requests* are in flight at once, and is held only around
//! the request itself, never during a backoff or a 429 wait, so a server waiting a minute for
//! Discord holds up nobody. Slots are found on the poster's [`Clock`] (tests move it by hand);
//! backoffs and 429 waits are Discord's real seconds, on tokio's timer.
//!
//! **Shutdown is prompt.** [`Poster::run`] returns as soon as it is told to stop: deliveries in
//! flight are aborted. An aborted delivery keeps its claim (and, if a send had started, its
//! attempt count), so the next start resolves it through the channel check and the nonce.
//!
//! Scale: one loop, no per-server timer. Each wake reads the active schedules in one query,
//! computes every server's latest and next slot (microseconds each), starts what is due, and sleeps
//! until the earliest next slot or retry — or until [`Poster::wake`] is called after a settings
//! change or a finished delivery. The Discord specifics sit behind [`Publisher`], so this module
//! is tested and benchmarked without Discord.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::AbortHandle;

use crate::insights::{Insight, Library};
use crate::sharding::Shards;
use crate::store::{Claim, PostRecord, PostSource, Store, StoreError, WeeklySettings};
use crate::weekly::clock::Clock;
use crate::weekly::schedule::{Slot, WeekKey};

pub type PublishFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PublishError>> + Send + 'a>>;

/// One weekly post, ready to send.
#[derive(Debug, Clone)]
pub struct OutgoingPost {
    pub guild_id: u64,
    pub channel_id: u64,
    pub week: WeekKey,
    pub insight: Insight,
    /// Per-slot nonce, sent with `enforce_nonce` so Discord drops a duplicate of a retried send.
    pub nonce: String,
}

/// How a send or a look-up failed, in the terms the poster acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// 403/404: the channel is gone or the bot may not post there. Stop sending to this server.
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
    /// Sends the post; the message id on success.
    fn send<'a>(&'a self, post: &'a OutgoingPost) -> PublishFuture<'a, u64>;
    /// Looks in the channel for the bot's own post of `week` among the messages sent since
    /// `since` (the claim: the post cannot be older); its id if found.
    fn find_post<'a>(
        &'a self,
        channel_id: u64,
        week: WeekKey,
        since: DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>>;
}

/// Tuning; the defaults are production values, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct PosterOptions {
    /// Sends tried in a row before leaving a claim for a later wake.
    pub attempts_per_wake: u32,
    /// The first backoff between those sends; doubled each time.
    pub first_backoff: Duration,
    /// When a claim is left for later, how long until the next wake tries it again.
    pub retry_later: Duration,
    /// Requests (sends and channel reads) in flight at once, across all servers.
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
    /// The slot already had a confirmed post.
    AlreadyPosted(PostRecord),
    /// Another delivery of the same slot is running right now (a wake and `post-now` met).
    InProgress,
    /// Not posted yet; it will be retried on a later wake.
    WillRetry(String),
    /// The channel refused (403/404): the schedule is paused with this reason.
    Paused(String),
    /// The collection is empty.
    NothingToPost,
}

/// Errors from the store, surfaced to the caller (a command shows them; the task logs them).
pub type PosterResult<T> = Result<T, StoreError>;

/// Where the poster finds the insights a server's post picks from. The bot gives each server its
/// own collection ([`crate::collections::Collections`]: its own insights, less the shipped ones
/// it hid, or only its own); an `Arc<Library>` is one collection for every server (tests, tools).
pub trait ServerLibraries: Send + Sync {
    /// The insights `guild_id`'s weekly post may pick from.
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

/// A slot: (server, ISO week).
type SlotKey = (u64, WeekKey);

/// What a delivery task starts from.
enum Job {
    /// A due slot, not claimed yet.
    Claim(WeeklySettings, WeekKey),
    /// A claimed slot (a retry, a recovery after a restart, or `post-now`'s own claim).
    Claimed(PostRecord),
}

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
    /// Slots whose last delivery ended unresolved with nothing in the store to say when to try
    /// again (a store error, an empty collection): not before this instant, so a broken database
    /// is retried every `retry_later`, not in a tight loop.
    held_back: Mutex<HashMap<SlotKey, DateTime<Utc>>>,
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
        }
    }

    /// Tells the running task that settings changed, so it recomputes when to wake.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The slots being delivered right now.
    pub fn in_flight(&self) -> Vec<(u64, WeekKey)> {
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
        tracing::info!("weekly poster started");
        loop {
            let next = match self.tick().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!("weekly poster could not read the store: {e}");
                    Some(self.clock.now() + chrono::Duration::seconds(60))
                }
            };
            // With nothing scheduled, still wake hourly: cheap, and a safety net.
            let until = next.unwrap_or_else(|| self.clock.now() + chrono::Duration::hours(1));
            tracing::debug!(%until, "weekly poster sleeping");
            tokio::select! {
                _ = self.clock.sleep_until(until) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.notified() => break,
            }
        }
        self.stop_deliveries().await;
        tracing::info!("weekly poster stopped");
    }

    /// Aborts every delivery in flight and waits for them to end. Their claims stay in the store.
    pub async fn stop_deliveries(&self) {
        let aborted: Vec<SlotKey> = {
            let in_flight = lock(&self.in_flight);
            in_flight.values().for_each(AbortHandle::abort);
            in_flight.keys().copied().collect()
        };
        for (guild, week) in &aborted {
            tracing::info!(guild, %week, "weekly post interrupted by shutdown; the next start resolves it");
        }
        self.wait_idle().await;
    }

    /// One pass: starts a delivery for every due slot and every due retry, and returns the next
    /// instant anything is due. It does not wait for the deliveries ([`Poster::wait_idle`] does).
    pub async fn tick(self: &Arc<Self>) -> PosterResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let (mut active, mut unconfirmed) = self
            .store
            .call(|db| Ok((db.active_weeklies()?, db.unconfirmed_posts()?)))
            .await?;
        // Only this process's shards' servers: another process posts for the others.
        let shards = self.options.shards;
        active.retain(|s| shards.owns(s.guild_id));
        unconfirmed.retain(|r| shards.owns(r.guild_id));
        let busy: HashSet<SlotKey> = lock(&self.in_flight).keys().copied().collect();
        let held_back = {
            let mut held = lock(&self.held_back);
            held.retain(|_, until| *until > now);
            held.clone()
        };
        let mut next: Option<DateTime<Utc>> = None;
        let mut earliest = |at: DateTime<Utc>| {
            next = Some(next.map_or(at, |n| n.min(at)));
        };
        // Each active server's latest slot week: an unconfirmed claim older than it is stale.
        let latest_slots: HashMap<u64, Slot> = active
            .iter()
            .map(|s| (s.guild_id, s.schedule.latest_slot_at_or_before(now)))
            .collect();
        let mut jobs = Vec::new();
        let mut pending: HashSet<SlotKey> = HashSet::new();
        let mut stale = Vec::new();
        for record in unconfirmed {
            let key = (record.guild_id, record.week);
            pending.insert(key);
            if busy.contains(&key) {
                continue;
            }
            let Some(latest_week) = latest_slots.get(&record.guild_id).map(|slot| slot.week) else {
                continue;
            };
            if record.week < latest_week {
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
        if !stale.is_empty() {
            for (guild, week) in &stale {
                tracing::warn!(guild, %week, "giving up an unsent weekly post: a newer week's slot is due");
            }
            self.store
                .call(move |db| {
                    stale
                        .iter()
                        .try_for_each(|&(guild, week)| db.release_claim(guild, week))
                })
                .await?;
        }
        let claimed = match latest_slots.values().map(|slot| slot.week).min() {
            Some(oldest) => {
                self.store
                    .call(move |db| db.claimed_slots_since(oldest))
                    .await?
            }
            None => HashSet::new(),
        };
        for settings in active {
            let latest = latest_slots[&settings.guild_id];
            let key = (settings.guild_id, latest.week);
            if latest.at >= settings.active_since
                && !pending.contains(&key)
                && !claimed.contains(&key)
                && !busy.contains(&key)
            {
                match held_back.get(&key) {
                    Some(&until) => earliest(until),
                    None => jobs.push(Job::Claim(settings.clone(), latest.week)),
                }
            }
            let upcoming = settings
                .schedule
                .next_slot_at_or_after(now + chrono::Duration::seconds(1));
            earliest(upcoming.at);
        }
        if !jobs.is_empty() {
            tracing::info!(deliveries = jobs.len(), "weekly posts due");
        }
        for job in jobs {
            self.spawn_delivery(job);
        }
        Ok(next)
    }

    /// Starts a delivery task for `job` unless its slot is already in flight; the receiver gets
    /// its outcome.
    fn spawn_delivery(self: &Arc<Self>, job: Job) -> Option<oneshot::Receiver<Delivery>> {
        let key = match &job {
            Job::Claim(settings, week) => (settings.guild_id, *week),
            Job::Claimed(record) => (record.guild_id, record.week),
        };
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
        let key = match &job {
            Job::Claim(settings, week) => (settings.guild_id, *week),
            Job::Claimed(record) => (record.guild_id, record.week),
        };
        // The schedule of a scheduled post, for its delay against the slot (`None` for
        // `post-now`, which has no slot; a retry's is read back when it succeeds).
        let schedule = match &job {
            Job::Claim(settings, _) => Some(settings.schedule),
            Job::Claimed(_) => None,
        };
        let from_schedule = match &job {
            Job::Claim(..) => true,
            Job::Claimed(record) => record.source == PostSource::Schedule,
        };
        let result = match job {
            Job::Claim(settings, week) => {
                match self.claim(&settings, week, PostSource::Schedule).await {
                    Ok(Some(Claim::Claimed(record))) => self.try_deliver(&record).await,
                    Ok(Some(Claim::AlreadyClaimed(record))) => Ok(Delivery::AlreadyPosted(record)),
                    Ok(None) => Ok(Delivery::NothingToPost),
                    Err(e) => Err(e),
                }
            }
            Job::Claimed(record) => self.try_deliver(&record).await,
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
                tracing::error!(guild = key.0, week = %key.1, "weekly post: store error: {e}");
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
        (guild, week): (u64, WeekKey),
        schedule: Option<crate::weekly::schedule::WeeklySchedule>,
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
                .call(move |db| db.weekly(guild))
                .await
                .ok()
                .flatten()
                .map(|settings| settings.schedule),
        };
        if let Some(slot) = schedule.and_then(|s| s.slot_in_week(week)) {
            let late = (self.clock.now() - slot.at).to_std().unwrap_or_default();
            metrics.post_delay.observe_duration(late);
        }
    }

    async fn claim(
        &self,
        settings: &WeeklySettings,
        week: WeekKey,
        source: PostSource,
    ) -> PosterResult<Option<Claim>> {
        let library = self.libraries.library_for(settings.guild_id).await?;
        let (guild, channel, now) = (settings.guild_id, settings.channel_id, self.clock.now());
        self.store
            .call(move |db| {
                let ids: Vec<&str> = library.insights().iter().map(|i| i.id.as_str()).collect();
                db.claim(
                    guild,
                    week,
                    channel,
                    &ids,
                    source,
                    &mut rand::thread_rng(),
                    now,
                )
            })
            .await
    }

    /// `/weekly post-now`: posts this week's insight at once (`None` when the server has no
    /// active schedule). This week is the ISO week of today in the server's zone; its slot is
    /// claimed like a scheduled one, so the scheduled post of the same week is skipped, and a
    /// second `post-now` in the same week is refused. The delivery runs as the poster's own task
    /// (so shutdown stops it like any other); this waits for its outcome.
    pub async fn post_now(self: &Arc<Self>, guild_id: u64) -> PosterResult<Option<Delivery>> {
        let active = self.store.call(move |db| db.weekly(guild_id)).await?;
        let Some(settings) = active.filter(|s| s.enabled && s.failure.is_none()) else {
            return Ok(None);
        };
        let today = self
            .clock
            .now()
            .with_timezone(&settings.schedule.zone)
            .date_naive();
        let week = WeekKey::from_date(today);
        let record = match self.claim(&settings, week, PostSource::PostNow).await? {
            Some(Claim::Claimed(record)) => record,
            Some(Claim::AlreadyClaimed(record)) if !record.is_confirmed() => record,
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

    /// Sends one claimed slot, resolving an earlier unconfirmed attempt first.
    async fn try_deliver(&self, record: &PostRecord) -> PosterResult<Delivery> {
        let (guild, week) = (record.guild_id, record.week);
        if record.attempts > 0 {
            // Tried before and never confirmed: it may have gone out (a crash after the send, a
            // timeout or a lost answer after Discord accepted it). Look before sending again.
            let lookup = {
                let _permit = self.requests.acquire().await;
                self.publisher
                    .find_post(record.channel_id, week, record.claimed_at)
                    .await
            };
            match lookup {
                Ok(Some(message_id)) => {
                    tracing::info!(guild, %week, message_id, "weekly post found already sent; confirmed without sending again");
                    let now = self.clock.now();
                    self.store
                        .call(move |db| db.confirm_post(guild, week, message_id, now))
                        .await?;
                    return Ok(Delivery::Posted(message_id));
                }
                Ok(None) => {}
                Err(PublishError::Forbidden(reason)) => return self.pause(record, reason).await,
                // Cannot tell: send anyway; the nonce still guards a recent duplicate.
                Err(e) => {
                    tracing::warn!(guild, %week, "could not read the channel to check an earlier attempt: {e}")
                }
            }
        }
        let library = self.libraries.library_for(guild).await?;
        let insight = match library.get(&record.insight_id) {
            Some(insight) => insight.clone(),
            // Removed from the collection (or hidden) since the claim: post another rather than
            // nothing.
            None => match library.random(None, None, &mut rand::thread_rng()) {
                Some(insight) => insight.clone(),
                None => return Ok(Delivery::NothingToPost),
            },
        };
        let post = OutgoingPost {
            guild_id: guild,
            channel_id: record.channel_id,
            week,
            insight,
            nonce: record.nonce.clone(),
        };
        let mut backoff = self.options.first_backoff;
        let mut failures = 0;
        let mut rate_limits = 0;
        let mut last_error = String::new();
        while failures < self.options.attempts_per_wake {
            let now = self.clock.now();
            self.store
                .call(move |db| db.record_attempt(guild, week, now, None, None))
                .await?;
            let sent = {
                let _permit = self.requests.acquire().await;
                self.publisher.send(&post).await
            };
            match sent {
                Ok(message_id) => {
                    let now = self.clock.now();
                    self.store
                        .call(move |db| db.confirm_post(guild, week, message_id, now))
                        .await?;
                    tracing::info!(guild, channel = record.channel_id, %week, insight = %post.insight.id, message_id, "weekly insight posted");
                    // The weekly post is a showing too (for `/insights stats` and `list`); a
                    // count, so a failure is logged and the post stands.
                    let (id, day) = (post.insight.id.clone(), now.date_naive());
                    if let Err(e) = self
                        .store
                        .call(move |db| db.record_shown(guild, &id, day))
                        .await
                    {
                        tracing::warn!(guild, "could not count the weekly insight as shown: {e}");
                    }
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
                    tracing::warn!(guild, %week, ?wait, "rate limited; waiting as Discord asks");
                    tokio::time::sleep(wait).await;
                }
                Err(PublishError::Transient(e)) => {
                    failures += 1;
                    tracing::warn!(guild, %week, attempt = failures, "weekly post failed, will retry: {e}");
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
            .call(move |db| db.record_attempt(guild, week, now, Some(&error), Some(retry_at)))
            .await?;
        tracing::warn!(guild, %week, %retry_at, "weekly post not sent yet: {last_error}; retrying later");
        Ok(Delivery::WillRetry(last_error))
    }

    async fn pause(&self, record: &PostRecord, reason: String) -> PosterResult<Delivery> {
        tracing::error!(guild = record.guild_id, channel = record.channel_id, week = %record.week, "weekly posts paused for this server: {reason}");
        let (guild, week, now) = (record.guild_id, record.week, self.clock.now());
        let stored = reason.clone();
        self.store
            .call(move |db| {
                db.mark_failing(guild, &stored, now)?;
                db.release_claim(guild, week)
            })
            .await?;
        Ok(Delivery::Paused(reason))
    }
}
