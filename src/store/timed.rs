//! Every store call timed for operators: `insight_bot_store_call_seconds{op}`, where `op` is
//! the [`Backend`] method's name (a fixed set, so the label stays bounded).
//!
//! A decorator around whichever backend [`super::Store`] holds, rather than timing inside each
//! backend, so SQLite and PostgreSQL are measured the same way and neither knows about metrics.
//! Every method forwards as is; only `describe` (no database work) is not timed.

// The trait's own imports (its argument and result types).
use super::*;

/// A [`Backend`] whose calls are timed.
pub struct Timed<B>(pub B);

fn timed<T>(op: &'static str, call: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let result = call();
    crate::ops::metrics()
        .store_calls
        .observe_duration(op, started.elapsed());
    result
}

impl<B: Backend> Backend for Timed<B> {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn set_feed(
        &self,
        feed: FeedId,
        spec: &FeedSpec,
        now: DateTime<Utc>,
    ) -> Result<FeedSettings, StoreError> {
        timed("set_feed", || self.0.set_feed(feed, spec, now))
    }

    fn disable_feed(&self, feed: FeedId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        timed("disable_feed", || self.0.disable_feed(feed, now))
    }

    fn set_pause(
        &self,
        feed: FeedId,
        pause: Option<Pause>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        timed("set_pause", || self.0.set_pause(feed, pause, now))
    }

    fn feed(&self, feed: FeedId) -> Result<Option<FeedSettings>, StoreError> {
        timed("feed", || self.0.feed(feed))
    }

    fn feeds(&self, guild_id: u64) -> Result<Vec<FeedSettings>, StoreError> {
        timed("feeds", || self.0.feeds(guild_id))
    }

    fn active_feeds(&self) -> Result<Vec<FeedSettings>, StoreError> {
        timed("active_feeds", || self.0.active_feeds())
    }

    fn mark_failing(
        &self,
        feed: FeedId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        timed("mark_failing", || self.0.mark_failing(feed, reason, now))
    }

    fn claim(
        &self,
        feed: FeedId,
        period: Period,
        insight_ids: &[&str],
        source: PostSource,
        rng: &mut dyn rand::RngCore,
        now: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        timed("claim", || {
            self.0.claim(feed, period, insight_ids, source, rng, now)
        })
    }

    fn skip(&self, feed: FeedId, period: Period, now: DateTime<Utc>) -> Result<Claim, StoreError> {
        timed("skip", || self.0.skip(feed, period, now))
    }

    fn record_attempt(
        &self,
        feed: FeedId,
        period: Period,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<PostRecord, StoreError> {
        timed("record_attempt", || {
            self.0.record_attempt(feed, period, now, error, retry_at)
        })
    }

    fn confirm_post(
        &self,
        feed: FeedId,
        period: Period,
        message_id: u64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        timed("confirm_post", || {
            self.0.confirm_post(feed, period, message_id, now)
        })
    }

    fn record_thread(
        &self,
        feed: FeedId,
        period: Period,
        outcome: Result<u64, &str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        timed("record_thread", || {
            self.0.record_thread(feed, period, outcome, now)
        })
    }

    fn posts_awaiting_thread(&self, since: DateTime<Utc>) -> Result<Vec<PostRecord>, StoreError> {
        timed("posts_awaiting_thread", || {
            self.0.posts_awaiting_thread(since)
        })
    }

    fn release_claim(&self, feed: FeedId, period: Period) -> Result<(), StoreError> {
        timed("release_claim", || self.0.release_claim(feed, period))
    }

    fn post(&self, feed: FeedId, period: Period) -> Result<Option<PostRecord>, StoreError> {
        timed("post", || self.0.post(feed, period))
    }

    fn last_post(&self, feed: FeedId) -> Result<Option<PostRecord>, StoreError> {
        timed("last_post", || self.0.last_post(feed))
    }

    fn claimed_slots_since(
        &self,
        since: NaiveDate,
    ) -> Result<HashSet<(FeedId, Period)>, StoreError> {
        timed("claimed_slots_since", || self.0.claimed_slots_since(since))
    }

    fn unconfirmed_posts(&self) -> Result<Vec<PostRecord>, StoreError> {
        timed("unconfirmed_posts", || self.0.unconfirmed_posts())
    }

    fn rotation(&self, feed: FeedId) -> Result<RotationState, StoreError> {
        timed("rotation", || self.0.rotation(feed))
    }

    fn server_insights(&self, guild_id: u64) -> Result<Vec<ServerInsight>, StoreError> {
        timed("server_insights", || self.0.server_insights(guild_id))
    }

    fn all_server_insights(&self) -> Result<Vec<ServerInsight>, StoreError> {
        timed("all_server_insights", || self.0.all_server_insights())
    }

    fn server_insight_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        timed("server_insight_count", || {
            self.0.server_insight_count(guild_id)
        })
    }

    fn save_server_insights(
        &self,
        guild_id: u64,
        insights: &[ServerInsight],
        limit: usize,
    ) -> Result<SaveOutcome, StoreError> {
        timed("save_server_insights", || {
            self.0.save_server_insights(guild_id, insights, limit)
        })
    }

    fn delete_server_insight(&self, guild_id: u64, insight_id: &str) -> Result<bool, StoreError> {
        timed("delete_server_insight", || {
            self.0.delete_server_insight(guild_id, insight_id)
        })
    }

    fn server_settings(&self, guild_id: u64) -> Result<ServerSettings, StoreError> {
        timed("server_settings", || self.0.server_settings(guild_id))
    }

    fn set_insight_source(&self, guild_id: u64, source: InsightSource) -> Result<(), StoreError> {
        timed("set_insight_source", || {
            self.0.set_insight_source(guild_id, source)
        })
    }

    fn set_curator_role(&self, guild_id: u64, role_id: Option<u64>) -> Result<(), StoreError> {
        timed("set_curator_role", || {
            self.0.set_curator_role(guild_id, role_id)
        })
    }

    fn set_review_channel(&self, guild_id: u64, channel_id: Option<u64>) -> Result<(), StoreError> {
        timed("set_review_channel", || {
            self.0.set_review_channel(guild_id, channel_id)
        })
    }

    fn set_hidden(
        &self,
        guild_id: u64,
        insight_id: &str,
        hidden: bool,
    ) -> Result<bool, StoreError> {
        timed("set_hidden", || {
            self.0.set_hidden(guild_id, insight_id, hidden)
        })
    }

    fn set_pack_on(&self, guild_id: u64, pack_id: &str, on: bool) -> Result<bool, StoreError> {
        timed("set_pack_on", || self.0.set_pack_on(guild_id, pack_id, on))
    }

    fn add_suggestion(
        &self,
        suggestion: NewSuggestion,
        per_author_pending_limit: usize,
        per_server_pending_limit: usize,
    ) -> Result<Suggestion, StoreError> {
        timed("add_suggestion", || {
            self.0.add_suggestion(
                suggestion,
                per_author_pending_limit,
                per_server_pending_limit,
            )
        })
    }

    fn suggestion(&self, guild_id: u64, id: u64) -> Result<Option<Suggestion>, StoreError> {
        timed("suggestion", || self.0.suggestion(guild_id, id))
    }

    fn oldest_pending_suggestion(&self, guild_id: u64) -> Result<Option<Suggestion>, StoreError> {
        timed("oldest_pending_suggestion", || {
            self.0.oldest_pending_suggestion(guild_id)
        })
    }

    fn pending_suggestion_count(&self, guild_id: u64) -> Result<usize, StoreError> {
        timed("pending_suggestion_count", || {
            self.0.pending_suggestion_count(guild_id)
        })
    }

    fn decide_suggestion(
        &self,
        guild_id: u64,
        id: u64,
        decision: Decision,
        decided_by: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, StoreError> {
        timed("decide_suggestion", || {
            self.0
                .decide_suggestion(guild_id, id, decision, decided_by, now)
        })
    }

    fn set_suggestion_review_message(
        &self,
        guild_id: u64,
        id: u64,
        channel_id: u64,
        message_id: u64,
    ) -> Result<bool, StoreError> {
        timed("set_suggestion_review_message", || {
            self.0
                .set_suggestion_review_message(guild_id, id, channel_id, message_id)
        })
    }

    fn record_shown(
        &self,
        guild_id: u64,
        insight_id: &str,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        timed("record_shown", || {
            self.0.record_shown(guild_id, insight_id, day)
        })
    }

    fn shown_counts(&self, guild_id: u64) -> Result<HashMap<String, u64>, StoreError> {
        timed("shown_counts", || self.0.shown_counts(guild_id))
    }

    fn record_answers(&self, answers: &[NewAnswer]) -> Result<Vec<u64>, StoreError> {
        timed("record_answers", || self.0.record_answers(answers))
    }

    fn record_vote(
        &self,
        answer_id: u64,
        voter: &[u8; 32],
        vote: Vote,
        today: NaiveDate,
    ) -> Result<VoteOutcome, StoreError> {
        timed("record_vote", || {
            self.0.record_vote(answer_id, voter, vote, today)
        })
    }

    fn usage_stats(
        &self,
        scope: UsageScope,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<UsageStats, StoreError> {
        timed("usage_stats", || self.0.usage_stats(scope, since, until))
    }

    fn set_gaps(&self, guild_id: u64, on: bool) -> Result<u64, StoreError> {
        timed("set_gaps", || self.0.set_gaps(guild_id, on))
    }

    fn gaps(&self, guild_id: u64, since: NaiveDate, limit: usize) -> Result<Vec<Gap>, StoreError> {
        timed("gaps", || self.0.gaps(guild_id, since, limit))
    }

    fn set_gap_vectors(
        &self,
        guild_id: u64,
        vectors: &[(u64, StoredVectors)],
    ) -> Result<u64, StoreError> {
        timed("set_gap_vectors", || {
            self.0.set_gap_vectors(guild_id, vectors)
        })
    }

    fn prune(&self, today: NaiveDate) -> Result<Pruned, StoreError> {
        timed("prune", || self.0.prune(today))
    }

    fn secret(&self) -> Result<[u8; 32], StoreError> {
        timed("secret", || self.0.secret())
    }

    fn ping(&self) -> Result<(), StoreError> {
        timed("ping", || self.0.ping())
    }
}
