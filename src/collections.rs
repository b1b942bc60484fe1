//! Each server's collection: the shipped insights it sees plus its own, kept live.
//!
//! The shipped collection (built in, plus `INSIGHTS_PATH`) is loaded once at start-up. A server
//! adds its own insights (written by its curators, imported, or approved from members'
//! suggestions), may hide shipped ones, or may answer from its own only (`source: ours`). What a
//! server sees is a [`ServerCollection`]: a [`Catalog`] over exactly those insights, so that
//! `/advice`, `/insight`, "Another one" and the weekly post all draw from the same list, and a
//! question gets one ranking over shipped and own insights together, with the same gate.
//!
//! **Where the truth lives.** The database holds every server's insights (with their embedded
//! vectors, so loading never runs the model), settings and suggestions; [`Collections`] holds a
//! built [`ServerCollection`] per server that was used, loaded on first use (or by
//! [`Collections::warm_up`] at start) and replaced whole after each change, so a reader never
//! sees half a change. Every change writes the database first and then updates memory, under
//! that server's lock. A server's interactions all reach the one process that runs its shard,
//! so this process's copy is the only one that changes; DMs draw from the shipped collection.
//!
//! **Costs.** A change re-embeds only what changed (milliseconds a document on the model) and
//! rebuilds the server's lexical index (about a millisecond for a few hundred insights); the
//! shipped vectors are shared by every server, never copied.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use crate::insights::catalog::Shipped;
use crate::insights::search::semantic::{documents, InsightVectors, SemanticIndex};
use crate::insights::{Catalog, Insight, Library, Rules, Source, MAX_ASKS, MAX_TOPICS};
use crate::store::{
    Decision, InsightSource, NewSuggestion, SaveOutcome, ServerInsight, ServerSettings, Store,
    StoreError, StoredVectors, Suggestion,
};

/// The most insights a server may own.
pub const MAX_OWN_INSIGHTS: usize = 1000;
/// The most suggestions one member may have waiting for review in a server.
pub const MAX_PENDING_PER_MEMBER: usize = 5;
/// The most suggestions a server may have waiting for review.
pub const MAX_PENDING_PER_SERVER: usize = 100;
/// From this cosine similarity of title and text, a new insight is shown the existing one it is
/// most like before it is saved: the same line `insight-bot check` draws across the library
/// ([`crate::insights::duplicates`], where the figures behind it are).
pub use crate::insights::duplicates::NEAR_DUPLICATE;
/// The topic of a server insight given without one.
pub const DEFAULT_TOPIC: &str = "general";

/// The source a server's own insight carries unless an imported file names one.
pub fn server_source() -> Source {
    Source {
        title: "This server's collection".into(),
        publisher: "added by its curators".into(),
        url: None,
    }
}

/// Where an insight a server sees comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Shipped,
    Own,
}

/// What one server sees: its catalog, its settings, and which insights are its own.
#[derive(Debug)]
pub struct ServerCollection {
    guild_id: Option<u64>,
    catalog: Arc<Catalog>,
    settings: ServerSettings,
    /// Where the server's own insights begin in the catalog's library (they come last).
    own_start: usize,
    own_index: Arc<SemanticIndex>,
}

impl ServerCollection {
    /// The server, or `None` for the shipped collection alone (DMs).
    pub fn guild_id(&self) -> Option<u64> {
        self.guild_id
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn library(&self) -> &Arc<Library> {
        self.catalog.library()
    }

    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// The server's own insights, in the order they were added.
    pub fn own(&self) -> &[Insight] {
        &self.library().insights()[self.own_start..]
    }

    /// Where a visible insight comes from; `None` when the server does not see it.
    pub fn origin(&self, id: &str) -> Option<Origin> {
        let position = self.library().position(id)?;
        Some(if position >= self.own_start {
            Origin::Own
        } else {
            Origin::Shipped
        })
    }

    fn own_position(&self, id: &str) -> Option<usize> {
        self.library()
            .position(id)
            .and_then(|p| p.checked_sub(self.own_start))
    }
}

/// Why a change to a server's collection was refused or failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    /// The database failed or refused ([`StoreError::Limit`] says which limit).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the embedding model failed: {0}")]
    Embedding(String),
    #[error(
        "\"{0}\" is the id of a shipped insight: a server's own insights need ids of their own"
    )]
    ShippedId(String),
    #[error("there is no shipped insight \"{0}\"")]
    NotShipped(String),
    #[error("there is no pack \"{0}\" among the packs this bot serves")]
    UnknownPack(String),
    /// A task of the blocking pool panicked or was cancelled.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// An insight ready to save: validated and embedded.
#[derive(Debug, Clone)]
pub struct Draft {
    pub insight: Insight,
    pub vectors: InsightVectors,
}

/// What [`Collections::warm_up`] loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WarmUp {
    pub servers: usize,
    pub insights: usize,
    /// Servers left to load on first use, because some of their vectors need the model (they
    /// were computed by another model).
    pub deferred: usize,
}

/// Every server's collection, built on first use; see the module documentation.
pub struct Collections {
    shipped: Arc<Catalog>,
    /// The shipped collection as a server that changed nothing sees it; also what DMs use.
    shipped_view: Arc<ServerCollection>,
    shipped_ids: BTreeSet<String>,
    store: Store,
    servers: Mutex<HashMap<u64, Arc<ServerCollection>>>,
    /// One lock per server: loads and changes of a server happen one at a time.
    locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CollectionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CollectionError::Interrupted(e.to_string()))
}

impl Collections {
    pub fn new(shipped: Arc<Catalog>, store: Store) -> Collections {
        let shipped_view = Arc::new(ServerCollection {
            guild_id: None,
            own_start: shipped.library().len(),
            catalog: Arc::clone(&shipped),
            settings: ServerSettings::default(),
            own_index: Arc::new(SemanticIndex::default()),
        });
        Collections {
            // Every built-in pack's ids are reserved, served or not: a server that took the id of
            // a pack the operator does not serve today would collide with it the day the pack
            // is served (a pack file that does not load has already stopped start-up).
            shipped_ids: shipped
                .library()
                .insights()
                .iter()
                .map(|i| i.id.clone())
                .chain(
                    Library::builtin()
                        .map(|all| all.insights().iter().map(|i| i.id.clone()).collect())
                        .unwrap_or_else(|_| Vec::new()),
                )
                .collect(),
            shipped,
            shipped_view,
            store,
            servers: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The shipped collection as DMs see it.
    pub fn shipped(&self) -> &Arc<ServerCollection> {
        &self.shipped_view
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The rules a server's insights are checked by: the data files' checks, with a default
    /// source and topic, optional example questions, and the shipped ids reserved.
    pub fn rules(&self) -> Rules {
        Rules::server(server_source(), Some(DEFAULT_TOPIC.to_string()))
            .reserving(self.shipped_ids.iter().cloned())
    }

    /// Whether a server's own insight may not take `id`: the id of a shipped insight, or of any
    /// built-in pack's, served or not.
    pub fn is_shipped_id(&self, id: &str) -> bool {
        self.shipped_ids.contains(id)
    }

    /// What `guild_id` sees (the shipped collection for `None`, a DM), loading it on first use.
    pub async fn get(
        &self,
        guild_id: Option<u64>,
    ) -> Result<Arc<ServerCollection>, CollectionError> {
        let Some(guild) = guild_id else {
            return Ok(Arc::clone(&self.shipped_view));
        };
        if let Some(found) = lock(&self.servers).get(&guild) {
            return Ok(Arc::clone(found));
        }
        let _held = self.server_lock(guild).await;
        if let Some(found) = lock(&self.servers).get(&guild) {
            return Ok(Arc::clone(found));
        }
        let loaded = self.load(guild).await?;
        lock(&self.servers)
            .entry(guild)
            .or_insert_with(|| Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Servers whose collection is built in memory.
    pub fn loaded(&self) -> usize {
        lock(&self.servers).len()
    }

    /// The servers' own insights, summed over the servers loaded in memory (a gauge for
    /// operators: no database query).
    pub fn own_insights(&self) -> usize {
        lock(&self.servers).values().map(|c| c.own().len()).sum()
    }

    async fn server_lock(&self, guild: u64) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = Arc::clone(lock(&self.locks).entry(guild).or_default());
        mutex.lock_owned().await
    }

    /// The server's collection as it is now, for a change made under the server's lock.
    async fn current(&self, guild: u64) -> Result<Arc<ServerCollection>, CollectionError> {
        if let Some(found) = lock(&self.servers).get(&guild) {
            return Ok(Arc::clone(found));
        }
        self.load(guild).await
    }

    /// Reads a server from the database and builds its collection. Insights whose stored vectors
    /// are missing or from another model are embedded again, and the new vectors stored.
    async fn load(&self, guild: u64) -> Result<Arc<ServerCollection>, CollectionError> {
        let (rows, settings) = self
            .store
            .call(move |db| Ok((db.server_insights(guild)?, db.server_settings(guild)?)))
            .await?;
        let fingerprint = self.shipped.searcher().embedder().fingerprint();
        let shipped = Arc::clone(&self.shipped);
        let (vectors, stale) = blocking(move || {
            let mut vectors = Vec::with_capacity(rows.len());
            let mut stale = Vec::new();
            for mut row in rows {
                if cut_to_limits(&mut row.insight) {
                    tracing::warn!(guild, id = %row.insight.id, "a stored insight had more example questions or topics than the limits; kept the first ones and saved it so");
                    row.vectors = None;
                }
                match stored_vectors(&row, fingerprint) {
                    Some(v) => vectors.push((row.insight, v)),
                    None => {
                        let v = shipped
                            .embed_insight(&row.insight)
                            .map_err(|e| CollectionError::Embedding(e.to_string()))?;
                        row.vectors = Some(StoredVectors {
                            fingerprint,
                            bytes: v.encode(),
                        });
                        vectors.push((row.insight.clone(), v));
                        stale.push(row);
                    }
                }
            }
            Ok::<_, CollectionError>((vectors, stale))
        })
        .await??;
        if !stale.is_empty() {
            tracing::info!(
                guild,
                insights = stale.len(),
                "server insights embedded again (their stored vectors were from another model)"
            );
            // Same fields and times, new vectors: nothing a person sees changes.
            self.store
                .call(move |db| db.save_server_insights(guild, &stale, usize::MAX))
                .await?;
        }
        let (own, parts): (Vec<Insight>, Vec<InsightVectors>) = vectors.into_iter().unzip();
        let index = Arc::new(SemanticIndex::from_insight_vectors(&parts));
        Ok(Arc::new(self.build(Some(guild), settings, own, index)))
    }

    fn build(
        &self,
        guild_id: Option<u64>,
        settings: ServerSettings,
        own: Vec<Insight>,
        own_index: Arc<SemanticIndex>,
    ) -> ServerCollection {
        let visible = match settings.source {
            InsightSource::All => Shipped::AllBut(&settings.hidden, &settings.packs_off),
            InsightSource::Ours => Shipped::None,
        };
        let catalog = Catalog::for_server(&self.shipped, visible, &own, Arc::clone(&own_index));
        ServerCollection {
            guild_id,
            own_start: catalog.library().len() - own.len(),
            catalog: Arc::new(catalog),
            settings,
            own_index,
        }
    }

    /// Builds the collection of every server that owns insights, from one read of the database,
    /// on every core. Servers already in memory are left as they are (they may have changed
    /// since the read). Servers with nothing of their own, and servers whose vectors need the
    /// model, are loaded on first use instead.
    pub async fn warm_up(self: &Arc<Self>) -> Result<WarmUp, CollectionError> {
        let rows = self.store.call(|db| db.all_server_insights()).await?;
        let mut by_guild: Vec<(u64, Vec<ServerInsight>)> = Vec::new();
        for row in rows {
            match by_guild.last_mut() {
                Some((g, list)) if *g == row.guild_id => list.push(row),
                _ => by_guild.push((row.guild_id, vec![row])),
            }
        }
        let guilds: Vec<u64> = by_guild.iter().map(|(g, _)| *g).collect();
        let settings = self
            .store
            .call(move |db| {
                guilds
                    .iter()
                    .map(|&g| db.server_settings(g))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let this = Arc::clone(self);
        blocking(move || {
            let fingerprint = this.shipped.searcher().embedder().fingerprint();
            let jobs: Vec<(u64, Vec<ServerInsight>, ServerSettings)> = by_guild
                .into_iter()
                .zip(settings)
                .map(|((g, rows), s)| (g, rows, s))
                .collect();
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = jobs.len().div_ceil(threads).max(1);
            let results: Vec<WarmUp> = std::thread::scope(|scope| {
                let handles: Vec<_> = jobs
                    .chunks(chunk)
                    .map(|part| {
                        let this = &this;
                        scope.spawn(move || {
                            let mut done = WarmUp::default();
                            for (guild, rows, settings) in part {
                                // A row over the limits is cut and saved by `load`, on
                                // first use.
                                let parts: Option<Vec<InsightVectors>> = rows
                                    .iter()
                                    .map(|r| {
                                        let over = r.insight.asks.len() > MAX_ASKS
                                            || r.insight.topics.len() > MAX_TOPICS;
                                        (!over).then(|| stored_vectors(r, fingerprint)).flatten()
                                    })
                                    .collect();
                                let Some(parts) = parts else {
                                    done.deferred += 1;
                                    continue;
                                };
                                let own: Vec<Insight> =
                                    rows.iter().map(|r| r.insight.clone()).collect();
                                let index = Arc::new(SemanticIndex::from_insight_vectors(&parts));
                                let built = this.build(Some(*guild), settings.clone(), own, index);
                                lock(&this.servers)
                                    .entry(*guild)
                                    .or_insert_with(|| Arc::new(built));
                                done.servers += 1;
                                done.insights += rows.len();
                            }
                            done
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            results.into_iter().fold(WarmUp::default(), |a, b| WarmUp {
                servers: a.servers + b.servers,
                insights: a.insights + b.insights,
                deferred: a.deferred + b.deferred,
            })
        })
        .await
    }

    /// Embeds `insights` (already validated) for saving; CPU work of milliseconds an insight,
    /// run on the blocking pool.
    pub async fn prepare(&self, insights: Vec<Insight>) -> Result<Vec<Draft>, CollectionError> {
        let shipped = Arc::clone(&self.shipped);
        blocking(move || embed_drafts(&shipped, insights)).await?
    }

    /// [`Collections::prepare`] on the caller's thread, for a caller that runs it on the
    /// blocking pool itself (under its own bounds: see `bot::heavy_work`).
    pub fn prepare_here(&self, insights: Vec<Insight>) -> Result<Vec<Draft>, CollectionError> {
        embed_drafts(&self.shipped, insights)
    }

    /// Saves `drafts` as `guild`'s own insights, all or nothing: an id the server has is
    /// replaced, others are added, and the server's limit ([`MAX_OWN_INSIGHTS`]) holds.
    pub async fn save(
        &self,
        guild: u64,
        drafts: Vec<Draft>,
        author: u64,
        now: DateTime<Utc>,
    ) -> Result<SaveOutcome, CollectionError> {
        if let Some(d) = drafts.iter().find(|d| self.is_shipped_id(&d.insight.id)) {
            return Err(CollectionError::ShippedId(d.insight.id.clone()));
        }
        let fingerprint = self.shipped.searcher().embedder().fingerprint();
        let rows: Vec<ServerInsight> = drafts
            .iter()
            .map(|d| server_insight(guild, d, author, now, fingerprint))
            .collect();
        let _held = self.server_lock(guild).await;
        let current = self.current(guild).await?;
        let outcome = self
            .store
            .call(move |db| db.save_server_insights(guild, &rows, MAX_OWN_INSIGHTS))
            .await?;
        self.replace_own(&current, drafts, &[]);
        Ok(outcome)
    }

    /// Rebuilds a server's collection with `drafts` saved and `removed` ids gone, and puts it in
    /// place.
    fn replace_own(&self, current: &ServerCollection, drafts: Vec<Draft>, removed: &[&str]) {
        // The last draft of an id wins, as in the database.
        let mut latest: Vec<Draft> = Vec::with_capacity(drafts.len());
        for draft in drafts {
            latest.retain(|d| d.insight.id != draft.insight.id);
            latest.push(draft);
        }
        let gone = |id: &str| removed.contains(&id) || latest.iter().any(|d| d.insight.id == id);
        let own = current.own();
        let mut insights: Vec<Insight> = own.iter().filter(|i| !gone(&i.id)).cloned().collect();
        insights.extend(latest.iter().map(|d| d.insight.clone()));
        let appended: Vec<&InsightVectors> = latest.iter().map(|d| &d.vectors).collect();
        let index = Arc::new(current.own_index.edited(|i| !gone(&own[i].id), &appended));
        let guild = current.guild_id.expect("a server's collection");
        let built = self.build(Some(guild), current.settings.clone(), insights, index);
        lock(&self.servers).insert(guild, Arc::new(built));
    }

    /// Rebuilds a server's collection with new settings (its own insights unchanged).
    fn replace_settings(&self, current: &ServerCollection, settings: ServerSettings) {
        let guild = current.guild_id.expect("a server's collection");
        let built = self.build(
            Some(guild),
            settings,
            current.own().to_vec(),
            Arc::clone(&current.own_index),
        );
        lock(&self.servers).insert(guild, Arc::new(built));
    }

    /// Deletes one of the server's own insights; `false` when it has none with that id.
    pub async fn remove(&self, guild: u64, id: &str) -> Result<bool, CollectionError> {
        let _held = self.server_lock(guild).await;
        let current = self.current(guild).await?;
        let owned = id.to_string();
        let deleted = self
            .store
            .call(move |db| db.delete_server_insight(guild, &owned))
            .await?;
        if deleted || current.own_position(id).is_some() {
            self.replace_own(&current, Vec::new(), &[id]);
        }
        Ok(deleted)
    }

    /// Hides a shipped insight in a server, or shows it again; `false` when it already was so.
    pub async fn set_hidden(
        &self,
        guild: u64,
        id: &str,
        hidden: bool,
    ) -> Result<bool, CollectionError> {
        // Only what is served can be hidden (an unserved pack's insight is not there to hide).
        if self.shipped.library().get(id).is_none() {
            return Err(CollectionError::NotShipped(id.to_string()));
        }
        let owned = id.to_string();
        self.change_settings(guild, move |db| db.set_hidden(guild, &owned, hidden))
            .await
    }

    /// The built-in packs this bot serves (`INSIGHTS_PACKS`), with how many insights each, in
    /// order: what a server may turn on and off.
    pub fn packs(&self) -> Vec<(&'static str, usize)> {
        self.shipped.library().packs()
    }

    /// Turns a served pack off in a server, or on again; `false` when it already was so. Its
    /// insights leave (or join) the server's answers, topics and weekly rotation at once: the
    /// rotation skips what left and adds what joined to the current round, as it does for any
    /// insight removed or added.
    pub async fn set_pack_on(
        &self,
        guild: u64,
        pack: &str,
        on: bool,
    ) -> Result<bool, CollectionError> {
        let Some(pack) = self
            .packs()
            .into_iter()
            .map(|(id, _)| id)
            .find(|&id| id == pack)
        else {
            return Err(CollectionError::UnknownPack(pack.to_string()));
        };
        self.change_settings(guild, move |db| db.set_pack_on(guild, pack, on))
            .await
    }

    /// Which insights a server answers from.
    pub async fn set_source(
        &self,
        guild: u64,
        source: InsightSource,
    ) -> Result<(), CollectionError> {
        self.change_settings(guild, move |db| db.set_insight_source(guild, source))
            .await
    }

    /// The role whose members are curators besides those with Manage Server (`None`: no role).
    pub async fn set_curator_role(
        &self,
        guild: u64,
        role: Option<u64>,
    ) -> Result<(), CollectionError> {
        self.change_settings(guild, move |db| db.set_curator_role(guild, role))
            .await
    }

    /// Where new suggestions are posted for review (`None`: nowhere).
    pub async fn set_review_channel(
        &self,
        guild: u64,
        channel: Option<u64>,
    ) -> Result<(), CollectionError> {
        self.change_settings(guild, move |db| db.set_review_channel(guild, channel))
            .await
    }

    /// Turns keeping gap questions on or off; off deletes the kept ones at once and returns how
    /// many.
    pub async fn set_gaps(&self, guild: u64, on: bool) -> Result<u64, CollectionError> {
        self.change_settings(guild, move |db| db.set_gaps(guild, on))
            .await
    }

    async fn change_settings<T: Send + 'static>(
        &self,
        guild: u64,
        change: impl FnOnce(&dyn crate::store::Backend) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CollectionError> {
        let _held = self.server_lock(guild).await;
        let current = self.current(guild).await?;
        let (result, settings) = self
            .store
            .call(move |db| {
                let result = change(db)?;
                Ok((result, db.server_settings(guild)?))
            })
            .await?;
        self.replace_settings(&current, settings);
        Ok(result)
    }

    /// Adds a member's suggestion, under the per-member and per-server limits.
    pub async fn suggest(&self, suggestion: NewSuggestion) -> Result<Suggestion, CollectionError> {
        Ok(self
            .store
            .call(move |db| {
                db.add_suggestion(suggestion, MAX_PENDING_PER_MEMBER, MAX_PENDING_PER_SERVER)
            })
            .await?)
    }

    /// Approves a pending suggestion as `draft` (saved like [`Collections::save`], in the same
    /// transaction as the decision). `None` when it was not pending any more.
    pub async fn approve(
        &self,
        guild: u64,
        suggestion: u64,
        draft: Draft,
        curator: u64,
        author: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, CollectionError> {
        if self.is_shipped_id(&draft.insight.id) {
            return Err(CollectionError::ShippedId(draft.insight.id.clone()));
        }
        let fingerprint = self.shipped.searcher().embedder().fingerprint();
        let row = server_insight(guild, &draft, author, now, fingerprint);
        let _held = self.server_lock(guild).await;
        let current = self.current(guild).await?;
        let decision = Decision::Approve {
            insight: row,
            limit: MAX_OWN_INSIGHTS,
        };
        let decided = self
            .store
            .call(move |db| db.decide_suggestion(guild, suggestion, decision, curator, now))
            .await?;
        if decided.is_some() {
            self.replace_own(&current, vec![draft], &[]);
        }
        Ok(decided)
    }

    /// Rejects a pending suggestion. `None` when it was not pending any more.
    pub async fn reject(
        &self,
        guild: u64,
        suggestion: u64,
        reason: Option<String>,
        curator: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<Suggestion>, CollectionError> {
        Ok(self
            .store
            .call(move |db| {
                db.decide_suggestion(guild, suggestion, Decision::Reject { reason }, curator, now)
            })
            .await?)
    }

    /// Counts one showing of an insight on `day` in a server (direct messages count under
    /// server 0, which no Discord server has, as the usage totals keep them), in the background:
    /// a failure is logged and costs nothing but the count.
    pub fn record_shown(&self, guild: Option<u64>, id: &str, day: NaiveDate) {
        let guild = guild.unwrap_or(0);
        let id = id.to_string();
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.call(move |db| db.record_shown(guild, &id, day)).await {
                tracing::warn!(guild, "could not count an insight as shown: {e}");
            }
        });
    }
}

/// A stored insight's vectors, when they are this model's and fit its documents.
/// Cuts an insight stored before the limits on example questions and topics ([`MAX_ASKS`],
/// [`MAX_TOPICS`]) to its first ones; true when it was over. Such a row would otherwise be
/// embedded again at every load, under the server's lock (with 500,000 example questions, for
/// half an hour).
fn cut_to_limits(insight: &mut Insight) -> bool {
    let over = insight.asks.len() > MAX_ASKS || insight.topics.len() > MAX_TOPICS;
    insight.asks.truncate(MAX_ASKS);
    insight.topics.truncate(MAX_TOPICS);
    over
}

/// Each insight with its vectors, or the model's error.
fn embed_drafts(shipped: &Catalog, insights: Vec<Insight>) -> Result<Vec<Draft>, CollectionError> {
    insights
        .into_iter()
        .map(|insight| {
            let vectors = shipped
                .embed_insight(&insight)
                .map_err(|e| CollectionError::Embedding(e.to_string()))?;
            Ok(Draft { insight, vectors })
        })
        .collect()
}

fn stored_vectors(row: &ServerInsight, fingerprint: u64) -> Option<InsightVectors> {
    let stored = row
        .vectors
        .as_ref()
        .filter(|v| v.fingerprint == fingerprint)?;
    match InsightVectors::decode(&stored.bytes) {
        Ok(v) if v.len() == documents(&row.insight).len() => Some(v),
        Ok(_) => None,
        Err(reason) => {
            tracing::warn!(guild = row.guild_id, id = %row.insight.id, "stored vectors unreadable ({reason}); embedding again");
            None
        }
    }
}

fn server_insight(
    guild: u64,
    draft: &Draft,
    author: u64,
    now: DateTime<Utc>,
    fingerprint: u64,
) -> ServerInsight {
    ServerInsight {
        guild_id: guild,
        insight: draft.insight.clone(),
        created_by: author,
        created_at: now,
        updated_at: now,
        vectors: Some(StoredVectors {
            fingerprint,
            bytes: draft.vectors.encode(),
        }),
    }
}

impl crate::weekly::poster::ServerLibraries for Collections {
    fn library_for(
        &self,
        guild_id: u64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Arc<Library>, StoreError>> + Send + '_>,
    > {
        Box::pin(async move {
            match self.get(Some(guild_id)).await {
                Ok(collection) => Ok(Arc::clone(collection.library())),
                Err(CollectionError::Store(e)) => Err(e),
                // The poster holds the slot back and tries again later, as for a store error.
                Err(e) => Err(StoreError::Interrupted(format!(
                    "loading the server's collection: {e}"
                ))),
            }
        })
    }
}
