//! Several processes over one PostgreSQL database, each running a range of the bot's shards:
//! each answers what Discord routes to its shards, posts the insight of the week only for its own
//! shards' servers, and the database's claim keeps exactly one post per server and week, through
//! a kill -9 and a restart, and even when two processes were misconfigured to overlap.
//!
//! Needs PostgreSQL's server binaries (a throwaway server, tests/support/postgres.rs). Run with
//! `cargo test --features postgres --test shards_postgres`.

#[path = "support/postgres.rs"]
mod pg;
mod support;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Timelike, Utc};
use insight_bot::config::DatabaseUrl;
use insight_bot::insights::Library;
use insight_bot::sharding::{shard_of, Shards};
use insight_bot::store::{FeedSpec, Store};
use insight_bot::weekly::clock::ManualClock;
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::poster::{OutgoingPost, Poster, PosterOptions, PublishFuture, Publisher};
use insight_bot::weekly::schedule::{Period, Schedule};
use serde_json::Value;
use support::payloads::{
    self, guild_text_channel, opt_string, opt_subcommand, role, slash_command, TestGuild, APP_ID,
    MEMBER_PERMISSIONS,
};
use support::{FakeDiscord, TOKEN, WAIT};

const SERVERS: u64 = 20;

/// Server `i`: its id's timestamp bits are `300_000_000_000 + i`, so it is on shard `i % 2` of 2.
fn guild_id(i: u64) -> u64 {
    ((300_000_000_000 + i) << 22) | 100
}

fn weekly_channel(i: u64) -> u64 {
    ((300_000_000_000 + i) << 22) | 111
}

/// Server `i`'s feed: its weekly channel.
fn feed(i: u64) -> FeedId {
    FeedId::new(guild_id(i), weekly_channel(i))
}

fn general_channel(i: u64) -> u64 {
    ((300_000_000_000 + i) << 22) | 110
}

fn guild(i: u64) -> TestGuild {
    let id = guild_id(i);
    TestGuild {
        id,
        name: format!("Server {i}"),
        channels: vec![
            guild_text_channel(general_channel(i), id, "general"),
            guild_text_channel(weekly_channel(i), id, "weekly"),
        ],
        roles: vec![role(id, "@everyone", MEMBER_PERMISSIONS, 0)],
        ..TestGuild::default()
    }
}

/// A weekly UTC feed whose latest slot was a minute ago, set two days ago: due at once.
fn schedule_due_now(store: &Store, feed: FeedId) -> Period {
    let now = Utc::now();
    let minute_ago = now - chrono::Duration::minutes(1);
    let time = chrono::NaiveTime::from_hms_opt(minute_ago.hour(), minute_ago.minute(), 0).unwrap();
    let schedule = Schedule::weekly(minute_ago.weekday(), time, chrono_tz::UTC);
    store
        .blocking()
        .set_feed(
            feed,
            &FeedSpec::plain(schedule),
            now - chrono::Duration::days(2),
        )
        .unwrap();
    schedule.latest_slot_at_or_before(now).period
}

fn spawn(fake: &FakeDiscord, dir: &std::path::Path, url: &str, range: &str) -> Child {
    let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
    Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("run")
        .current_dir(dir)
        .env("DISCORD_TOKEN", TOKEN)
        .env("DISCORD_API_BASE", fake.base_url())
        .env("DATABASE_URL", url)
        .env("SHARD_RANGE", range)
        .env("SHARD_TOTAL", "2")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("INSIGHTS_PATH")
        .env_remove("SHARDS")
        .env("RUST_LOG", "info")
        .stdout(log("stdout.log"))
        .stderr(log(&format!("stderr-{range}.log")))
        .spawn()
        .expect("start insight-bot run")
}

fn weekly_posts(fake: &FakeDiscord) -> BTreeMap<u64, Vec<Value>> {
    (0..SERVERS)
        .map(|i| {
            let posts = fake
                .channel_messages(weekly_channel(i))
                .into_iter()
                .filter(|m| m["embeds"][0]["title"] == "Leadership insight of the week")
                .collect();
            (i, posts)
        })
        .collect()
}

/// Runs blocking work (the throwaway PostgreSQL, the store's synchronous API) off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking work")
}

/// Waits for `done`; on time-out, fails with the processes' logs (kept in `logs`), since what
/// went wrong happened in them.
async fn wait_until(
    what: &str,
    logs: &std::path::Path,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            let mut text = String::new();
            for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                text += &format!("\n--- {} ---\n{log}", entry.path().display());
            }
            panic!("timed out: {what}{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_shards_and_post_each_server_exactly_once() {
    let db = blocking(pg::fresh_database).await;
    let url = db.url.clone();
    let week = blocking(move || {
        let store = Store::connect(&DatabaseUrl::Postgres(url)).unwrap();
        // Every server's schedule is set (a lazy `map(..).last()` would set only the last one).
        let mut week = None;
        for i in 0..SERVERS {
            week = Some(schedule_due_now(&store, feed(i)));
        }
        week.expect("at least one server")
    })
    .await;
    let fake = FakeDiscord::builder()
        .guilds((0..SERVERS).map(guild).collect())
        .recommended_shards(2)
        .start()
        .await;
    // Shard 1's posts are created at once but answered only after 3 s: its process is killed in
    // between, with its posts out and unconfirmed.
    for i in (1..SERVERS).step_by(2) {
        fake.delay_next(
            "POST",
            &format!("/channels/{}/messages", weekly_channel(i)),
            1,
            Duration::from_secs(3),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut shard0 = spawn(&fake, dir.path(), &db.url, "0-0");
    let mut shard1 = spawn(&fake, dir.path(), &db.url, "1-1");
    fake.wait_for_shards(&[(0, 2), (1, 2)], WAIT * 6).await;

    // Every shard-0 server posts, from shard 0's process only.
    wait_until("shard 0's ten posts", dir.path(), WAIT * 4, || {
        weekly_posts(&fake)
            .iter()
            .filter(|(i, _)| *i % 2 == 0)
            .all(|(_, posts)| posts.len() == 1)
    })
    .await;
    // Shard 1's process has sent some of its posts (answers held back): kill -9 it now.
    wait_until("shard 1's first post", dir.path(), WAIT * 4, || {
        weekly_posts(&fake)
            .iter()
            .any(|(i, posts)| i % 2 == 1 && !posts.is_empty())
    })
    .await;
    shard1.kill().expect("kill -9 shard 1's process");
    shard1.wait().unwrap();
    let mut shard1 = spawn(&fake, dir.path(), &db.url, "1-1");
    wait_until("one post for every server", dir.path(), WAIT * 6, || {
        weekly_posts(&fake).values().all(|posts| posts.len() == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts = weekly_posts(&fake);
    for (i, posts) in &posts {
        assert_eq!(posts.len(), 1, "server {i}: {posts:#?}");
    }
    // Each post came from the process that owns its server's shard.
    let posts_by = |range: &str| {
        fake.requests_matching(|r| {
            r.method == "POST"
                && r.path.ends_with("/messages")
                && r.user_agent.as_deref().is_some_and(|ua| ua.contains(range))
        })
        .into_iter()
        .map(|r| r.path)
        .collect::<Vec<String>>()
    };
    for i in 0..SERVERS {
        let route = format!("/api/v10/channels/{}/messages", weekly_channel(i));
        let mine = if i % 2 == 0 {
            "shards 0-0 of 2"
        } else {
            "shards 1-1 of 2"
        };
        let theirs = if i % 2 == 0 {
            "shards 1-1 of 2"
        } else {
            "shards 0-0 of 2"
        };
        assert!(
            posts_by(mine).contains(&route),
            "server {i} posted by its shard's process"
        );
        assert!(
            !posts_by(theirs).contains(&route),
            "server {i} posted by the other process"
        );
    }
    // And every claim is confirmed in the database (a post whose answer is still held back by
    // the fake is confirmed when it arrives).
    let deadline = Instant::now() + WAIT * 3;
    loop {
        let url = db.url.clone();
        let records = blocking(move || {
            let store = Store::connect(&DatabaseUrl::Postgres(url)).unwrap();
            (0..SERVERS)
                .map(|i| store.blocking().post(feed(i), week).unwrap())
                .collect::<Vec<_>>()
        })
        .await;
        let unconfirmed: Vec<_> = records
            .iter()
            .filter(|r| !r.as_ref().is_some_and(|r| r.is_confirmed()))
            .collect();
        if unconfirmed.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never confirmed: {unconfirmed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        weekly_posts(&fake).values().map(Vec::len).sum::<usize>(),
        SERVERS as usize
    );

    // /advice and /weekly show are answered on both shards, and a DM (shard 0).
    for i in [2, 3] {
        let advice = slash_command("advice", vec![opt_string("question", "How do I delegate?")])
            .in_guild(
                guild_id(i),
                general_channel(i),
                payloads::member(payloads::alice(), &[], None),
            )
            .build();
        fake.dispatch("INTERACTION_CREATE", advice.clone()).await;
        let callback = fake.wait_for_callback(&advice, WAIT).await;
        assert_eq!(callback.status, 204, "server {i}: {}", callback.describe());
        let show = slash_command("weekly", vec![opt_subcommand("show", vec![])])
            .in_guild(
                guild_id(i),
                general_channel(i),
                payloads::member(payloads::ada(), &[], None),
            )
            .member_permissions(payloads::ADMIN_PERMISSIONS)
            .build();
        fake.dispatch("INTERACTION_CREATE", show.clone()).await;
        let callback = fake.wait_for_callback(&show, WAIT).await;
        assert_eq!(callback.status, 204, "server {i}: {}", callback.describe());
        assert!(
            callback.body_text().contains("Last post"),
            "{}",
            callback.body_text()
        );
    }
    let mark = fake.mark();
    let dm = payloads::dm_message_create("How do I delegate?", payloads::alice());
    fake.dispatch("MESSAGE_CREATE", dm).await;
    let reply = fake
        .wait_for_channel_message_since(mark, payloads::DM_CHANNEL_ID, WAIT)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert!(
        fake.shard_session((0, 2)).is_some_and(|s| s.dispatches > 0),
        "the DM went to shard 0"
    );

    for child in [&mut shard0, &mut shard1] {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a process did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let registration = format!("/applications/{APP_ID}/commands");
    assert!(!fake
        .requests_matching(|r| r.is("PUT", &registration))
        .is_empty());
    fake.assert_all_bodies_valid();
}

/// Discord's side of the weekly posts, as the overlapping-ranges test needs it: every send is
/// recorded, and a send whose nonce this channel has seen answers the first message's id and
/// creates nothing (Discord's `enforce_nonce` rule, within its few-minute window; this test's
/// sends all happen within a second). Slow enough that two posters overlap.
#[derive(Default)]
struct Recorder {
    /// Every send, in order.
    sent: Mutex<Vec<OutgoingPost>>,
    /// The messages created: (channel, nonce) -> message id.
    created: Mutex<HashMap<(u64, String), u64>>,
    next: Mutex<u64>,
}

impl Publisher for Recorder {
    fn send<'a>(&'a self, post: &'a OutgoingPost) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.sent.lock().unwrap().push(post.clone());
            let mut created = self.created.lock().unwrap();
            let key = (post.feed.channel_id, post.nonce.clone());
            if let Some(&id) = created.get(&key) {
                return Ok(id);
            }
            let mut next = self.next.lock().unwrap();
            *next += 1;
            created.insert(key, *next);
            Ok(*next)
        })
    }

    fn find_post<'a>(
        &'a self,
        _post: &'a OutgoingPost,
        _since: DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>> {
        Box::pin(async move { Ok(None) })
    }

    /// No feed here asks for a thread.
    fn create_thread<'a>(
        &'a self,
        _channel_id: u64,
        message_id: u64,
        _name: &'a str,
    ) -> PublishFuture<'a, u64> {
        Box::pin(async move { Ok(message_id) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_shard_ranges_still_post_once_per_server_and_week() {
    let db = blocking(pg::fresh_database).await;
    let url = DatabaseUrl::Postgres(db.url.clone());
    let setup_url = url.clone();
    let stores = blocking(move || {
        let setup = Store::connect(&setup_url).unwrap();
        let set_at: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        for i in 0..SERVERS {
            let schedule = Schedule::parse("mon", "09:00", "UTC").unwrap();
            setup
                .blocking()
                .set_feed(feed(i), &FeedSpec::plain(schedule), set_at)
                .unwrap();
        }
        // Two processes' stores: two handles on the database.
        vec![
            Store::connect(&setup_url).unwrap(),
            Store::connect(&setup_url).unwrap(),
        ]
    })
    .await;
    let clock = Arc::new(ManualClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
    let recorder = Arc::new(Recorder::default());
    let library = Arc::new(Library::builtin().unwrap());
    // Misconfigured: both processes claim shards 0-1 of 2, every server.
    let posters: Vec<Arc<Poster>> = stores
        .into_iter()
        .map(|store| {
            Arc::new(Poster::new(
                store,
                Arc::new(Arc::clone(&library)),
                recorder.clone(),
                clock.clone(),
                PosterOptions {
                    shards: Shards::Range {
                        first: 0,
                        last: 1,
                        total: 2,
                    },
                    ..PosterOptions::default()
                },
            ))
        })
        .collect();
    let (a, b) = (Arc::clone(&posters[0]), Arc::clone(&posters[1]));
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    ra.unwrap();
    rb.unwrap();
    for poster in &posters {
        tokio::time::timeout(WAIT, poster.wait_idle())
            .await
            .unwrap();
    }
    // One claim per server and week in the database. A process may still resume a claim the
    // other is delivering (to it, an unconfirmed claim looks like a crashed delivery's), but the
    // resend carries the claim's nonce, so Discord creates one message: exactly one per server.
    let sent = recorder.sent.lock().unwrap().clone();
    let mut nonces: HashMap<u64, HashSet<String>> = HashMap::new();
    for post in &sent {
        nonces
            .entry(post.feed.guild_id)
            .or_default()
            .insert(post.nonce.clone());
    }
    assert_eq!(nonces.len(), SERVERS as usize, "{nonces:?}");
    assert!(
        nonces.values().all(|n| n.len() == 1),
        "every send of a server's post carries its claim's nonce: {nonces:?}"
    );
    let created = recorder.created.lock().unwrap().clone();
    let mut per_server: HashMap<u64, usize> = HashMap::new();
    for (channel, _) in created.keys() {
        let server = (0..SERVERS)
            .find(|&i| weekly_channel(i) == *channel)
            .map(guild_id)
            .expect("a weekly channel");
        *per_server.entry(server).or_default() += 1;
    }
    assert_eq!(per_server.len(), SERVERS as usize, "{per_server:?}");
    assert!(per_server.values().all(|&n| n == 1), "{per_server:?}");
    // And a process with a proper range posts only its shard's servers.
    let only_one: VecDeque<u64> = (0..SERVERS)
        .map(guild_id)
        .filter(|&g| {
            Shards::Range {
                first: 1,
                last: 1,
                total: 2,
            }
            .owns(g)
        })
        .collect();
    assert!(only_one.iter().all(|&g| shard_of(g, 2) == 1));
    assert_eq!(only_one.len(), SERVERS as usize / 2);
}
