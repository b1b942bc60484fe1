//! Running the real insight-bot (`insight_bot::bot::start`) against the fake Discord, and the
//! interactions the bot's end-to-end tests send it.
//!
//! [`start_bot`] starts the bot exactly as `insight-bot run` does (token check, client, poise
//! framework), with `api_base` pointing at the fake, and returns once poise's `setup` has
//! registered the commands: poise handles no event before that. [`stop_bot`] shuts it down and
//! checks that every body it sent was valid.
//!
//! Replies are limited per user ([`REPLIES_PER_MINUTE`]), so every question helper here
//! asks as a fresh user: a test that means to hit the limit says so by choosing the user.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use insight_bot::bot::{start, BotError, BotSettings, RunningBot};
use insight_bot::config::Token;
use insight_bot::embedding::cache::VectorCache;
use insight_bot::embedding::Embedder;
use insight_bot::insights::packs::SEED_PACK;
use insight_bot::insights::search::Searcher;
use insight_bot::insights::{Catalog, Library, PackSelection};
use insight_bot::store::Store;
use insight_bot::weekly::clock::SystemClock;
use insight_bot::weekly::poster::PosterOptions;
use serde_json::Value;
use tempfile::TempDir;

#[allow(unused_imports)]
pub use insight_bot::bot::REPLIES_PER_MINUTE;

use super::fake_discord::{FakeDiscord, TOKEN, WAIT};
use super::payloads::{self, InteractionBuilder, APP_ID};

/// The seed pack (`ic-and-management`, the page the first collection was), indexed with the
/// repository's model, once per test binary: what the end-to-end and relevance tests were written
/// against, so a pack added to the library does not move their answers. Vectors are cached under
/// the target folder, so only the first test binary of a build embeds them.
pub fn catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let seed = PackSelection::only(&[SEED_PACK]).expect("the seed pack");
            let library = Library::builtin_packs(&seed)
                .unwrap_or_else(|e| panic!("the built-in collection: {e}"));
            Arc::new(
                Catalog::new(Arc::new(library), searcher())
                    .unwrap_or_else(|e| panic!("index the built-in collection: {e}")),
            )
        })
        .clone()
}

/// The whole built-in library (every pack), indexed, once per test binary: what the bot serves
/// by default.
#[allow(dead_code)]
pub fn library_catalog() -> Arc<Catalog> {
    static CATALOG: OnceLock<Arc<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let library =
                Library::builtin().unwrap_or_else(|e| panic!("the built-in library: {e}"));
            Arc::new(
                Catalog::new(Arc::new(library), searcher())
                    .unwrap_or_else(|e| panic!("index the built-in library: {e}")),
            )
        })
        .clone()
}

/// The repository's embedding model with a vector cache under the target folder, once per test
/// binary.
pub fn searcher() -> Searcher {
    static SEARCHER: OnceLock<Searcher> = OnceLock::new();
    SEARCHER
        .get_or_init(|| {
            let embedder = Embedder::load_repository_model()
                .unwrap_or_else(|e| panic!("the repository's embedding model: {e}"));
            let cache_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vectors");
            let cache = VectorCache::open(&cache_dir, embedder.fingerprint());
            Searcher::new(Arc::new(embedder), Arc::new(cache))
                .unwrap_or_else(|e| panic!("embed the gate's anchors: {e}"))
        })
        .clone()
}

/// The seed pack's collection ([`catalog`]'s), loaded once per test binary.
pub fn library() -> Arc<Library> {
    Arc::clone(catalog().library())
}

/// A running bot and the directory holding its state database (removed when dropped).
pub struct TestBot {
    pub bot: RunningBot,
    _state: TempDir,
}

/// A fresh, empty state database in a temporary directory.
pub fn fresh_store() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("insight-bot.db"))
        .unwrap_or_else(|e| panic!("open a fresh store: {e}"));
    (store, dir)
}

/// The settings `insight-bot run` would build, pointed at `fake`, with `token` and `store`.
pub fn settings(
    fake: &FakeDiscord,
    token: &str,
    guild_id: Option<u64>,
    store: Store,
) -> BotSettings {
    BotSettings {
        token: Token::parse(token).unwrap_or_else(|e| panic!("token {token:?}: {e}")),
        catalog: catalog(),
        guild_id,
        api_base: Some(fake.base_url()),
        store,
        clock: Arc::new(SystemClock),
        poster_options: PosterOptions::default(),
        metrics_addr: None,
    }
}

/// Starts the bot on `fake` (commands registered globally) and waits until it is ready.
pub async fn start_bot(fake: &FakeDiscord) -> TestBot {
    start_bot_with(fake, None).await
}

/// Starts the bot on `fake`, registering commands in `guild_id` when given, and waits until the
/// gateway session is live and the registration `PUT` has been answered.
pub async fn start_bot_with(fake: &FakeDiscord, guild_id: Option<u64>) -> TestBot {
    let (store, state) = fresh_store();
    let started = tokio::time::timeout(WAIT, start(settings(fake, TOKEN, guild_id, store)));
    let bot = match started.await {
        Ok(Ok(bot)) => TestBot { bot, _state: state },
        Ok(Err(e)) => panic!("the bot did not start: {e}"),
        Err(_) => panic!("insight_bot::bot::start did not return within {WAIT:?}"),
    };
    fake.wait_for_ready(WAIT).await;
    let route = match guild_id {
        Some(g) => format!("/applications/{APP_ID}/guilds/{g}/commands"),
        None => format!("/applications/{APP_ID}/commands"),
    };
    fake.wait_for_request(
        &format!("the command registration (PUT {route}) answered 200"),
        WAIT,
        |r| r.is("PUT", &route) && r.status == 200,
    )
    .await;
    bot
}

/// Starts the bot on `fake` serving `catalog` (e.g. [`library_catalog`], every pack) instead of
/// the seed pack, commands registered globally, and waits until it is ready.
#[allow(dead_code)]
pub async fn start_bot_serving(fake: &FakeDiscord, catalog: Arc<Catalog>) -> TestBot {
    let (store, state) = fresh_store();
    let mut settings = settings(fake, TOKEN, None, store);
    settings.catalog = catalog;
    let bot = match tokio::time::timeout(WAIT, start(settings)).await {
        Ok(Ok(bot)) => TestBot { bot, _state: state },
        Ok(Err(e)) => panic!("the bot did not start: {e}"),
        Err(_) => panic!("insight_bot::bot::start did not return within {WAIT:?}"),
    };
    fake.wait_for_ready(WAIT).await;
    let route = format!("/applications/{APP_ID}/commands");
    fake.wait_for_request(
        &format!("the command registration (PUT {route}) answered 200"),
        WAIT,
        |r| r.is("PUT", &route) && r.status == 200,
    )
    .await;
    bot
}

/// Starts the bot on `fake` with the operators' endpoint on 127.0.0.1 (port 0; read it back with
/// `RunningBot::endpoint_addr`), commands registered globally, and waits until it is ready.
pub async fn start_bot_with_endpoint(fake: &FakeDiscord) -> TestBot {
    let (store, state) = fresh_store();
    let mut settings = settings(fake, TOKEN, None, store);
    settings.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let bot = match tokio::time::timeout(WAIT, start(settings)).await {
        Ok(Ok(bot)) => TestBot { bot, _state: state },
        Ok(Err(e)) => panic!("the bot did not start: {e}"),
        Err(_) => panic!("insight_bot::bot::start did not return within {WAIT:?}"),
    };
    fake.wait_for_ready(WAIT).await;
    let route = format!("/applications/{APP_ID}/commands");
    fake.wait_for_request(
        &format!("the command registration (PUT {route}) answered 200"),
        WAIT,
        |r| r.is("PUT", &route) && r.status == 200,
    )
    .await;
    bot
}

/// Starts the bot on `fake` with `store` (a test that restarts the bot on the same database),
/// commands registered globally, and waits until it is ready.
pub async fn start_bot_with_store(fake: &FakeDiscord, store: Store) -> RunningBot {
    start_bot_with_clock(fake, store, Arc::new(SystemClock)).await
}

/// [`start_bot_with_store`] on `clock` (a test that moves time, e.g. a manual clock).
pub async fn start_bot_with_clock(
    fake: &FakeDiscord,
    store: Store,
    clock: Arc<dyn insight_bot::weekly::clock::Clock>,
) -> RunningBot {
    let mark = fake.mark();
    let mut settings = settings(fake, TOKEN, None, store);
    settings.clock = clock;
    let started = tokio::time::timeout(WAIT, start(settings));
    let bot = match started.await {
        Ok(Ok(bot)) => bot,
        Ok(Err(e)) => panic!("the bot did not start: {e}"),
        Err(_) => panic!("insight_bot::bot::start did not return within {WAIT:?}"),
    };
    fake.wait_for_ready(WAIT).await;
    let route = format!("/applications/{APP_ID}/commands");
    fake.wait_for_request_since(
        mark,
        &format!("the command registration (PUT {route}) answered 200"),
        WAIT,
        |r| r.is("PUT", &route) && r.status == 200,
    )
    .await;
    bot
}

/// Shuts the bot down (it must stop cleanly, within [`WAIT`]) and checks every body it sent.
pub async fn stop_bot(fake: &FakeDiscord, bot: TestBot) {
    match tokio::time::timeout(WAIT, bot.bot.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("RunningBot::shutdown returned an error: {e}"),
        Err(_) => panic!("RunningBot::shutdown did not return within {WAIT:?}"),
    }
    fake.assert_all_bodies_valid();
}

/// `start` with `token`, expecting it to fail; the error.
pub async fn start_error(fake: &FakeDiscord, token: &str) -> BotError {
    let (store, _state) = fresh_store();
    match tokio::time::timeout(WAIT, start(settings(fake, token, None, store))).await {
        Ok(Ok(bot)) => {
            let _ = bot.shutdown().await;
            panic!("the bot started with token {token:?}; expected an error")
        }
        Ok(Err(e)) => e,
        Err(_) => panic!("insight_bot::bot::start did not return within {WAIT:?}"),
    }
}

/// A user id no other helper call has returned (in this process).
pub fn fresh_user_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A user object for a fresh (non-bot) user.
pub fn fresh_user() -> Value {
    let id = fresh_user_id();
    payloads::user(id, &format!("user-{}", id % 100_000), false)
}

/// A guild member (no roles) for a fresh user.
pub fn fresh_member() -> Value {
    payloads::member(fresh_user(), &[], None)
}

/// `/advice question:<question>` (and `private:<private>` when given), by a fresh member in
/// #general of the test guild.
pub fn advice(question: &str, private: Option<bool>) -> InteractionBuilder {
    let mut options = vec![payloads::opt_string("question", question)];
    if let Some(p) = private {
        options.push(payloads::opt_bool("private", p));
    }
    payloads::slash_command("advice", options).in_guild_member(fresh_member())
}

/// Dispatches `interaction` and returns the bot's callback (its first one).
pub async fn ask(fake: &FakeDiscord, interaction: &Value) -> super::RecordedRequest {
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    fake.wait_for_callback(interaction, WAIT).await
}

/// The message that answers `interaction`: its callback's data (type 4), or, when the bot deferred
/// (type 5, as it does when an answer takes more than a second and a half), the follow-up or edit
/// that completes it.
pub async fn answer_message(fake: &FakeDiscord, interaction: &Value) -> Value {
    let callback = fake.wait_for_callback(interaction, WAIT).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());
    match callback.json()["type"].as_u64() {
        Some(4) => callback.json()["data"].clone(),
        Some(5) => {
            let token = interaction["token"].as_str().expect("token");
            let webhook = format!("/webhooks/{APP_ID}/{token}");
            fake.wait_for_request(
                &format!("the message completing the deferred interaction ({webhook})"),
                WAIT,
                |r| r.is("*", &webhook) && r.method != "GET",
            )
            .await
            .json()
            .clone()
        }
        other => panic!(
            "unexpected callback type {other:?}: {}",
            callback.body_text()
        ),
    }
}

/// A callback's `data` (the message), after checking it was accepted with `callback_type`.
pub fn callback_message(callback: &super::RecordedRequest, callback_type: u64) -> Value {
    assert_eq!(
        (callback.status, callback.json()["type"].as_u64()),
        (204, Some(callback_type)),
        "expected an accepted callback of type {callback_type}: {}\n  body: {}",
        callback.describe(),
        callback.body_text()
    );
    callback.json()["data"].clone()
}

/// The message flags' ephemeral bit.
pub const EPHEMERAL: u64 = 1 << 6;

/// Whether a message body is ephemeral.
pub fn is_ephemeral(message: &Value) -> bool {
    message["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0
}

/// Checks a message body's `allowed_mentions`: present, parsing nothing, listing no user or
/// role, not pinging a replied-to user.
pub fn assert_no_pings(message: &Value) {
    let allowed = &message["allowed_mentions"];
    assert_eq!(
        allowed["parse"],
        serde_json::json!([]),
        "allowed_mentions.parse must be present and empty: {message:#}"
    );
    for list in ["users", "roles"] {
        assert!(
            allowed[list].as_array().is_none_or(Vec::is_empty),
            "allowed_mentions.{list} must be empty: {allowed}"
        );
    }
    assert_ne!(allowed["replied_user"], true, "{allowed}");
}

/// A short timeout for "nothing happens" checks.
pub const QUIET: Duration = Duration::from_secs(1);
