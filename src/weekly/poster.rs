//! The weekly poster: one task that posts each server's insight of the week, exactly once.
//!
//! How "exactly one post per server per week" holds:
//! - Every post belongs to a *slot*: (server, ISO week of the slot's local date). Before anything
//!   is sent, the slot is *claimed* in the store, in one transaction with the rotation step; the
//!   (server, week) primary key makes a second claim impossible, whatever path asks (the schedule,
//!   `/weekly post-now`, a restart, a READY after a reconnect).
//! - A claim is confirmed with the message id once Discord accepts the message. A claim that was
//!   tried but never confirmed (a crash between send and commit, a timeout) is resolved before
//!   sending again: the channel's recent messages are read for the bot's own post of that week.
//!   The send itself carries a per-slot nonce with `enforce_nonce`, so an HTTP retry of the same
//!   slot within Discord's dedup window returns the first message instead of a second one.
//! - Catch-up rule: when the poster (re)starts or wakes, a server's *latest* slot at or before now
//!   is posted if it is unclaimed and not older than the schedule itself (`active_since`). Older
//!   missed weeks are not posted: one late post, never a burst.
//!
//! Failures: 5xx and timeouts are retried with backoff, then left for a later wake (the claim keeps
//! its insight and nonce) until a newer slot of the same server is due, which replaces it; a 429
//! waits `retry_after` (a bounded number of times); 403/404 (channel deleted, permission lost)
//! pauses that server's schedule with the reason recorded, so no further requests go there until an
//! admin runs `/weekly set` again (Discord bans IPs that make too many invalid requests). Posts
//! for different servers run concurrently (bounded), so one server's trouble never delays another.
//!
//! Scale: one task, no per-server timer. Each wake reads the active schedules in one query,
//! computes every server's latest and next slot (microseconds each), posts what is due, and sleeps
//! until the earliest next slot or retry — or until [`Poster::wake`] is called after a settings
//! change. The Discord specifics sit behind [`Publisher`], so this module is tested and
//! benchmarked without Discord.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::insights::{Insight, Library};
use crate::store::{Claim, PostRecord, PostSource, Store, WeeklySettings};
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
    /// Posts in flight at once.
    pub concurrency: usize,
    /// The longest wait for a 429 before giving the slot back to a later wake.
    pub max_rate_limit_wait: Duration,
    /// 429s accepted in a row for one post before giving it back to a later wake: each 429 counts
    /// towards Discord's invalid-request limit, so a run of them must end.
    pub max_rate_limits_per_wake: u32,
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
        }
    }
}

/// What happened to one slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Posted (or found already posted); the message id.
    Posted(u64),
    /// The slot already had a post, or someone is posting it right now.
    AlreadyPosted(PostRecord),
    /// Not posted yet; it will be retried on a later wake.
    WillRetry(String),
    /// The channel refused (403/404): the schedule is paused with this reason.
    Paused(String),
    /// The collection is empty.
    NothingToPost,
}

/// Errors from the store, surfaced to the caller (a command shows them; the task logs them).
pub type PosterResult<T> = Result<T, crate::store::StoreError>;

pub struct Poster {
    store: Arc<Store>,
    library: Arc<Library>,
    publisher: Arc<dyn Publisher>,
    clock: Arc<dyn Clock>,
    options: PosterOptions,
    wake: Notify,
    /// Slots being delivered right now, so a wake and a `/weekly post-now` never send the same
    /// slot twice at once.
    in_progress: Mutex<HashSet<(u64, WeekKey)>>,
}

/// Removes a slot from `in_progress` when its delivery ends, however it ends.
struct InProgress<'a> {
    set: &'a Mutex<HashSet<(u64, WeekKey)>>,
    key: (u64, WeekKey),
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// A slot to post now, with why.
struct Due {
    settings: WeeklySettings,
    slot: Slot,
}

impl Poster {
    pub fn new(
        store: Arc<Store>,
        library: Arc<Library>,
        publisher: Arc<dyn Publisher>,
        clock: Arc<dyn Clock>,
        options: PosterOptions,
    ) -> Self {
        Poster {
            store,
            library,
            publisher,
            clock,
            options,
            wake: Notify::new(),
            in_progress: Mutex::new(HashSet::new()),
        }
    }

    /// Tells the running task that settings changed, so it recomputes when to wake.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Runs until `shutdown` is notified. Start it once (never from READY, which fires again
    /// after every reconnect).
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
        tracing::info!("weekly poster stopped");
    }

    /// One pass: posts every due slot (and retries due unconfirmed claims), then returns the next
    /// instant anything is due.
    pub async fn tick(self: &Arc<Self>) -> PosterResult<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let active = self.store.active_weeklies()?;
        let unconfirmed = self.store.unconfirmed_posts()?;
        let mut next: Option<DateTime<Utc>> = None;
        let mut earliest = |at: DateTime<Utc>| {
            next = Some(next.map_or(at, |n| n.min(at)));
        };
        let mut due = Vec::new();
        let mut retries = Vec::new();
        // Each active server's latest slot week: an unconfirmed claim older than it is stale.
        let latest_slots: HashMap<u64, Slot> = active
            .iter()
            .map(|s| (s.guild_id, s.schedule.latest_slot_at_or_before(now)))
            .collect();
        for record in unconfirmed {
            let Some(latest_week) = latest_slots.get(&record.guild_id).map(|slot| slot.week) else {
                continue;
            };
            if record.week < latest_week && record.attempts > 0 {
                // A newer slot has come while this one kept failing: the catch-up rule posts only
                // the latest slot, so this one is given up (it was tried, and may even have gone
                // out; the next slot posts normally).
                tracing::warn!(guild = record.guild_id, week = %record.week, "giving up an unsent weekly post: a newer week's slot is due");
                self.store.release_claim(record.guild_id, record.week)?;
                continue;
            }
            match record.retry_at {
                Some(at) if at > now => earliest(at),
                _ => retries.push(record),
            }
        }
        let retrying: HashSet<(u64, WeekKey)> =
            retries.iter().map(|r| (r.guild_id, r.week)).collect();
        let claimed = match latest_slots.values().map(|slot| slot.week).min() {
            Some(oldest) => self.store.claimed_slots_since(oldest)?,
            None => HashSet::new(),
        };
        for settings in active {
            let latest = latest_slots[&settings.guild_id];
            if latest.at >= settings.active_since
                && !retrying.contains(&(settings.guild_id, latest.week))
                && !claimed.contains(&(settings.guild_id, latest.week))
            {
                due.push(Due {
                    settings: settings.clone(),
                    slot: latest,
                });
            }
            let upcoming = settings
                .schedule
                .next_slot_at_or_after(now + chrono::Duration::seconds(1));
            earliest(upcoming.at);
        }
        if !due.is_empty() || !retries.is_empty() {
            tracing::info!(due = due.len(), retries = retries.len(), "weekly posts due");
        }
        // Each slot is its own task (bounded by the semaphore), so a slow or failing server
        // never holds up another's post.
        let semaphore = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for record in retries {
            let (poster, permit) = (Arc::clone(self), Arc::clone(&semaphore));
            tasks.spawn(async move {
                let _permit = permit.acquire_owned().await;
                poster.deliver(record).await
            });
        }
        for item in due {
            let (poster, permit) = (Arc::clone(self), Arc::clone(&semaphore));
            tasks.spawn(async move {
                let _permit = permit.acquire_owned().await;
                match poster.claim(&item.settings, item.slot.week, PostSource::Schedule) {
                    Ok(Some(Claim::Claimed(record))) => poster.deliver(record).await,
                    Ok(Some(Claim::AlreadyClaimed(record))) => Delivery::AlreadyPosted(record),
                    Ok(None) => Delivery::NothingToPost,
                    Err(e) => Delivery::WillRetry(e.to_string()),
                }
            });
        }
        let retry_later = chrono::Duration::from_std(self.options.retry_later).unwrap_or_default();
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Delivery::WillRetry(_)) => earliest(self.clock.now() + retry_later),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("a weekly post task failed: {e}");
                    earliest(self.clock.now() + retry_later);
                }
            }
        }
        Ok(next)
    }

    fn claim(
        &self,
        settings: &WeeklySettings,
        week: WeekKey,
        source: PostSource,
    ) -> PosterResult<Option<Claim>> {
        let ids: Vec<&str> = self
            .library
            .insights()
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        self.store.claim(
            settings.guild_id,
            week,
            settings.channel_id,
            &ids,
            source,
            &mut rand::thread_rng(),
            self.clock.now(),
        )
    }

    /// `/weekly post-now`: posts this week's insight at once (`None` when the server has no
    /// active schedule). This week is the ISO week of today
    /// in the server's zone; its slot is claimed like a scheduled one, so the scheduled post of
    /// the same week is skipped, and a second `post-now` in the same week is refused.
    pub async fn post_now(&self, guild_id: u64) -> PosterResult<Option<Delivery>> {
        let active = self.store.weekly(guild_id)?;
        let Some(settings) = active.filter(|s| s.enabled && s.failure.is_none()) else {
            return Ok(None);
        };
        let today = self
            .clock
            .now()
            .with_timezone(&settings.schedule.zone)
            .date_naive();
        let week = WeekKey::from_date(today);
        let delivery = match self.claim(&settings, week, PostSource::PostNow)? {
            Some(Claim::Claimed(record)) => self.deliver(record).await,
            Some(Claim::AlreadyClaimed(record)) if !record.is_confirmed() => {
                self.deliver(record).await
            }
            Some(Claim::AlreadyClaimed(record)) => Delivery::AlreadyPosted(record),
            None => Delivery::NothingToPost,
        };
        self.wake();
        Ok(Some(delivery))
    }

    /// Sends one claimed slot, resolving an earlier unconfirmed attempt first.
    async fn deliver(&self, record: PostRecord) -> Delivery {
        let key = (record.guild_id, record.week);
        if !self
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key)
        {
            return Delivery::AlreadyPosted(record);
        }
        let _in_progress = InProgress {
            set: &self.in_progress,
            key,
        };
        match self.try_deliver(&record).await {
            Ok(delivery) => delivery,
            Err(e) => {
                tracing::error!(guild = record.guild_id, week = %record.week, "weekly post: store error: {e}");
                Delivery::WillRetry(e.to_string())
            }
        }
    }

    async fn try_deliver(&self, record: &PostRecord) -> PosterResult<Delivery> {
        let (guild, week) = (record.guild_id, record.week);
        if record.attempts > 0 {
            // Tried before and never confirmed: it may have gone out (a crash after the send, a
            // timeout after Discord accepted it). Look before sending again.
            let lookup = self
                .publisher
                .find_post(record.channel_id, week, record.claimed_at);
            match lookup.await {
                Ok(Some(message_id)) => {
                    tracing::info!(guild, %week, message_id, "weekly post found already sent; confirmed without sending again");
                    self.store
                        .confirm_post(guild, week, message_id, self.clock.now())?;
                    return Ok(Delivery::Posted(message_id));
                }
                Ok(None) => {}
                Err(PublishError::Forbidden(reason)) => return self.pause(record, reason),
                // Cannot tell: send anyway; the nonce still guards a recent duplicate.
                Err(e) => {
                    tracing::warn!(guild, %week, "could not read the channel to check an earlier attempt: {e}")
                }
            }
        }
        let insight = match self.library.get(&record.insight_id) {
            Some(insight) => insight.clone(),
            // Removed from the collection since the claim: post another rather than nothing.
            None => match self.library.random(None, None, &mut rand::thread_rng()) {
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
            self.store
                .record_attempt(guild, week, self.clock.now(), None, None)?;
            match self.publisher.send(&post).await {
                Ok(message_id) => {
                    self.store
                        .confirm_post(guild, week, message_id, self.clock.now())?;
                    tracing::info!(guild, channel = record.channel_id, %week, insight = %post.insight.id, message_id, "weekly insight posted");
                    return Ok(Delivery::Posted(message_id));
                }
                Err(PublishError::Forbidden(reason)) => return self.pause(record, reason),
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
        let retry_at = self.clock.now()
            + chrono::Duration::from_std(self.options.retry_later).unwrap_or_default();
        self.store.record_attempt(
            guild,
            week,
            self.clock.now(),
            Some(&last_error),
            Some(retry_at),
        )?;
        tracing::warn!(guild, %week, %retry_at, "weekly post not sent yet: {last_error}; retrying later");
        Ok(Delivery::WillRetry(last_error))
    }

    fn pause(&self, record: &PostRecord, reason: String) -> PosterResult<Delivery> {
        tracing::error!(guild = record.guild_id, channel = record.channel_id, week = %record.week, "weekly posts paused for this server: {reason}");
        self.store
            .mark_failing(record.guild_id, &reason, self.clock.now())?;
        self.store.release_claim(record.guild_id, record.week)?;
        Ok(Delivery::Paused(reason))
    }
}
