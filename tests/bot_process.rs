//! `insight-bot run` as a process, the way an operator runs it: it connects to the fake Discord
//! through `DISCORD_API_BASE`, registers its commands, answers, and on SIGTERM or SIGINT shuts
//! down cleanly with exit code 0. A missing token is exit 2 with a message naming `DISCORD_TOKEN`,
//! and at the most verbose log level the token never appears in anything the process prints.
//! The weekly post survives the operator's signals: SIGTERM in the middle of a 60 s 429 wait
//! exits within 10 s, and a kill -9 between Discord creating the post and the bot recording it
//! leaves exactly one post after the restart.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use insight_bot::store::FeedSpec;
use insight_bot::store::Store;
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::schedule::{Period, Schedule};
use support::payloads::{self, APP_ID};
use support::{FakeDiscord, TOKEN, WAIT};

fn spawn_bot(fake: &FakeDiscord, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("run")
        .current_dir(dir)
        .env("DISCORD_TOKEN", TOKEN)
        .env("DISCORD_API_BASE", fake.base_url())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("state.db").display()),
        )
        .env_remove("INSIGHTS_PATH")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("DISCORD_GUILD_ID")
        // Everything, serenity's and reqwest's debug output included: the token must not show.
        .env("RUST_LOG", "debug")
        .stdout(log_file(dir, "stdout.log"))
        .stderr(log_file(dir, "stderr.log"))
        .spawn()
        .expect("start insight-bot run")
}

/// Output goes to files, not pipes: at debug level the bot writes more than a pipe buffers, and
/// a full pipe would block it.
fn log_file(dir: &std::path::Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(name)).expect("create a log file"))
}

/// Waits for the process to exit (polling, so the test's runtime keeps serving the fake).
async fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("insight-bot did not exit after {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn output(dir: &std::path::Path) -> String {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!("{}{}", read("stdout.log"), read("stderr.log"))
}

async fn runs_answers_and_stops_on(signal: &str) {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_bot(&fake, dir.path());
    fake.wait_for_request("the command registration PUT", WAIT * 4, |r| {
        r.is("PUT", &format!("/applications/{APP_ID}/commands")) && r.status == 200
    })
    .await;
    let interaction = payloads::slash_command(
        "advice",
        vec![payloads::opt_string(
            "question",
            "How do I delegate effectively?",
        )],
    )
    .build();
    fake.dispatch("INTERACTION_CREATE", interaction.clone())
        .await;
    let reply = fake.wait_for_callback(&interaction, WAIT).await;
    assert!(
        reply.body_text().contains("trust and delegate"),
        "{}",
        reply.body_text()
    );

    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let status = wait_exit(&mut child, signal).await;
    let printed = output(dir.path());
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after {signal}:\n{printed}"
    );
    assert!(
        printed.contains(&format!("SIG{signal}: shutting down")),
        "{printed}"
    );
    assert!(
        printed.contains("loaded and indexed the insight collection"),
        "{printed}"
    );
    assert!(
        printed.contains("registered 7 slash commands globally"),
        "{printed}"
    );
    assert!(
        !printed.contains(TOKEN),
        "the token was printed:\n{printed}"
    );
    assert!(
        dir.path().join("state.db").exists(),
        "the state database was created"
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly_and_the_token_is_never_printed() {
    runs_answers_and_stops_on("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_shuts_down_cleanly() {
    runs_answers_and_stops_on("INT").await;
}

#[test]
fn a_missing_token_is_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .current_dir(dir.path())
        .env_remove("DISCORD_TOKEN")
        .env_remove("INSIGHTS_PATH")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env("DISCORD_API_BASE", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DISCORD_TOKEN is not set"), "{err}");
    assert!(err.contains("discord.com/developers/applications"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_is_exit_2_and_not_echoed() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "wrong.secret.tokenvalue";
    let mut child = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .current_dir(dir.path())
        .env("DISCORD_TOKEN", wrong)
        .env("DISCORD_API_BASE", fake.base_url())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env_remove("INSIGHTS_PATH")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env("RUST_LOG", "debug")
        .stdout(log_file(dir.path(), "stdout.log"))
        .stderr(log_file(dir.path(), "stderr.log"))
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, "a rejected token").await;
    let printed = output(dir.path());
    assert_eq!(status.code(), Some(2), "{printed}");
    assert!(printed.contains("DISCORD_TOKEN was rejected"), "{printed}");
    assert!(
        !printed.contains("secret"),
        "the token was printed:\n{printed}"
    );
}

#[test]
fn a_corrupt_database_stops_start_up_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    std::fs::write(&db, b"this is not a database, but someone's notes").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .current_dir(dir.path())
        .env("DISCORD_TOKEN", TOKEN)
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("INSIGHTS_PATH")
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env("DISCORD_API_BASE", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DATABASE_URL") && err.contains("state.db"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is not a database, but someone's notes",
        "the file was changed"
    );
}

// ---------------------------------------------------------------------------------------------
// The weekly post across signals and kills

/// A UTC schedule in #weekly whose latest slot was a minute ago, set two days ago: due the moment
/// the bot starts. Returns that slot's week.
fn schedule_due_now(db: &std::path::Path) -> Period {
    schedule_due_now_with(db, false)
}

/// [`schedule_due_now`], with a thread under each post when `thread`.
fn schedule_due_now_with(db: &std::path::Path, thread: bool) -> Period {
    use chrono::{Datelike, Timelike};
    let store = Store::open(db).expect("open the state database");
    let now = chrono::Utc::now();
    let minute_ago = now - chrono::Duration::minutes(1);
    let time = chrono::NaiveTime::from_hms_opt(minute_ago.hour(), minute_ago.minute(), 0)
        .expect("a time of day");
    let schedule = Schedule::weekly(minute_ago.weekday(), time, chrono_tz::UTC);
    store
        .blocking()
        .set_feed(
            FeedId::new(payloads::GUILD_ID, payloads::WEEKLY_CHANNEL_ID),
            &FeedSpec {
                thread,
                ..FeedSpec::plain(schedule)
            },
            now - chrono::Duration::days(2),
        )
        .expect("store the schedule");
    schedule.latest_slot_at_or_before(now).period
}

fn weekly_route() -> String {
    format!("/channels/{}/messages", payloads::WEEKLY_CHANNEL_ID)
}

fn weekly_posts_in_channel(fake: &FakeDiscord) -> usize {
    fake.channel_messages(payloads::WEEKLY_CHANNEL_ID)
        .iter()
        .filter(|m| m["embeds"][0]["title"] == "Leadership insight of the week")
        .count()
}

async fn terminate(child: &mut Child, dir: &std::path::Path) -> Duration {
    let asked = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let status = wait_exit(child, "SIGTERM").await;
    assert_eq!(status.code(), Some(0), "{}", output(dir));
    asked.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_429_wait_exits_promptly_and_the_restart_posts_once() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let week = schedule_due_now(&dir.path().join("state.db"));
    fake.rate_limit_next("POST", &weekly_route(), 1, Duration::from_secs(60));
    let mut child = spawn_bot(&fake, dir.path());
    fake.wait_for_request("the weekly post, answered 429 for 60 s", WAIT * 4, |r| {
        r.is("POST", &weekly_route()) && r.status == 429
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = terminate(&mut child, dir.path()).await;
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?}\n{}",
        output(dir.path())
    );
    assert_eq!(weekly_posts_in_channel(&fake), 0);

    // The restart resolves the interrupted claim (nothing in the channel) and posts once.
    let mark = fake.mark();
    let mut child = spawn_bot(&fake, dir.path());
    fake.wait_for_request_since(mark, "the weekly post after the restart", WAIT * 4, |r| {
        r.is("POST", &weekly_route()) && r.status == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&mut child, dir.path()).await;
    assert_eq!(weekly_posts_in_channel(&fake), 1, "exactly one post");
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let record = store
        .blocking()
        .post(
            FeedId::new(payloads::GUILD_ID, payloads::WEEKLY_CHANNEL_ID),
            week,
        )
        .unwrap()
        .unwrap();
    assert!(record.is_confirmed(), "{record:?}");
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_send_and_commit_the_restart_posts_nothing_more() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let week = schedule_due_now(&dir.path().join("state.db"));
    // Discord creates the message at once and answers only after 30 s: the bot is killed (-9)
    // in between, with the message out and its id never recorded.
    fake.delay_next("POST", &weekly_route(), 1, Duration::from_secs(30));
    let mut child = spawn_bot(&fake, dir.path());
    fake.wait_for_request("the weekly post (its answer held back)", WAIT * 4, |r| {
        r.is("POST", &weekly_route())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().expect("kill -9");
    child.wait().expect("reap the killed bot");
    assert_eq!(weekly_posts_in_channel(&fake), 1);

    let mark = fake.mark();
    let mut child = spawn_bot(&fake, dir.path());
    let lookup = fake
        .wait_for_request_since(
            mark,
            "the restart reading #weekly for its own post",
            WAIT * 4,
            |r| r.is("GET", &weekly_route()),
        )
        .await;
    assert_eq!(lookup.status, 200, "{}", lookup.describe());
    tokio::time::sleep(Duration::from_secs(1)).await;
    terminate(&mut child, dir.path()).await;
    assert!(
        fake.requests_matching(|r| r.index > mark && r.is("POST", &weekly_route()))
            .is_empty(),
        "the restart sent the post again"
    );
    assert_eq!(weekly_posts_in_channel(&fake), 1, "exactly one post");
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let record = store
        .blocking()
        .post(
            FeedId::new(payloads::GUILD_ID, payloads::WEEKLY_CHANNEL_ID),
            week,
        )
        .unwrap()
        .unwrap();
    let message_id = fake.channel_messages(payloads::WEEKLY_CHANNEL_ID)[0]["id"].clone();
    assert_eq!(
        record.message_id.map(|id| id.to_string()),
        message_id.as_str().map(str::to_string),
        "confirmed with the message the killed run sent"
    );
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_post_and_its_thread_the_restart_makes_neither_twice() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let week = schedule_due_now_with(&dir.path().join("state.db"), true);
    // The post goes out; Discord creates its thread at once but answers only after 30 s: the bot
    // is killed (-9) in between, the thread made and never recorded.
    let threads = format!("/channels/{}/messages/", payloads::WEEKLY_CHANNEL_ID);
    fake.delay_next("POST", &threads, 1, Duration::from_secs(30));
    let mut child = spawn_bot(&fake, dir.path());
    fake.wait_for_request(
        "the thread under the post (its answer held back)",
        WAIT * 4,
        |r| r.is("POST", &threads) && r.path.ends_with("/threads"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().expect("kill -9");
    child.wait().expect("reap the killed bot");
    assert_eq!(weekly_posts_in_channel(&fake), 1);
    assert_eq!(fake.threads_in(payloads::WEEKLY_CHANNEL_ID).len(), 1);

    // The restart finds the post confirmed and its thread missing, asks for it, hears that it
    // exists (a message has one thread, with the message's id) and records it.
    let mark = fake.mark();
    let mut child = spawn_bot(&fake, dir.path());
    fake.wait_for_request_since(
        mark,
        "the restart asking for the thread again",
        WAIT * 4,
        |r| r.is("POST", &threads) && r.path.ends_with("/threads"),
    )
    .await;
    let feed = FeedId::new(payloads::GUILD_ID, payloads::WEEKLY_CHANNEL_ID);
    let state = dir.path().join("state.db");
    let deadline = Instant::now() + WAIT * 4;
    let record = loop {
        let record = Store::open(&state)
            .unwrap()
            .blocking()
            .post(feed, week)
            .unwrap()
            .expect("the post");
        if record.thread_id.is_some() || Instant::now() > deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    terminate(&mut child, dir.path()).await;
    assert!(
        fake.requests_matching(|r| r.index > mark
            && r.method == "POST"
            && r.path.ends_with(&weekly_route()))
            .is_empty(),
        "the restart sent the post again"
    );
    assert_eq!(weekly_posts_in_channel(&fake), 1, "exactly one post");
    assert_eq!(
        fake.threads_in(payloads::WEEKLY_CHANNEL_ID).len(),
        1,
        "exactly one thread"
    );
    assert_eq!(record.thread_id, record.message_id, "{record:?}");
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_sqlite_file_is_refused() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = spawn_bot(&fake, dir.path());
    fake.wait_for_request("the first process's command registration", WAIT * 4, |r| {
        r.is("PUT", &format!("/applications/{APP_ID}/commands")) && r.status == 200
    })
    .await;
    let second_dir = tempfile::tempdir().unwrap();
    let mut second = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
        .arg("run")
        .current_dir(second_dir.path())
        .env("DISCORD_TOKEN", TOKEN)
        .env("DISCORD_API_BASE", fake.base_url())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("state.db").display()),
        )
        .env(
            "EMBEDDING_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/vectors"),
        )
        .env_remove("INSIGHTS_PATH")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log_file(second_dir.path(), "stderr.log"))
        .spawn()
        .expect("start a second insight-bot run");
    let status = wait_exit(&mut second, "the second process").await;
    let printed = output(second_dir.path());
    assert_eq!(status.code(), Some(2), "{printed}");
    assert!(
        printed.contains("DATABASE_URL: another insight-bot process is running"),
        "{printed}"
    );
    assert!(printed.contains("PostgreSQL"), "{printed}");
    terminate(&mut first, dir.path()).await;
}
