//! End-to-end tests of the operators' endpoint (`METRICS_ADDR`): the real bot on the fake
//! Discord, with the endpoint on 127.0.0.1 port 0. `/readyz` follows the gateway (503 before
//! READY, 200 once READY, 503 when the connection is closed and cannot resume), the
//! `healthcheck` subcommand says the same with its exit code, and `/metrics` parses and counts
//! one `/advice`, one DM and one weekly post exactly.
//!
//! The metrics registry is the process's, shared by every test of this binary: only one test
//! here makes the bot answer or post, and it compares before and after.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use insight_bot::bot::{start, RunningBot, REPLIES_PER_MINUTE};
use insight_bot::store::Store;
use support::bot::{advice, ask, fresh_store, settings};
use support::payloads::{
    alice, message, modal_submit, next_snowflake, opt_string, opt_subcommand, slash_command,
    APP_ID, DM_CHANNEL_ID, GUILD_ID, WEEKLY_CHANNEL_ID,
};
use support::prometheus::{self, Exposition, Labels};

/// Counter series by name, then labels.
type Counters = BTreeMap<String, BTreeMap<Labels, f64>>;
use support::{FakeDiscord, TOKEN, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on the endpoint: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to the endpoint at {addr}: {e}"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer))
        .await
        .expect("the endpoint closes the connection after answering")
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// Polls `path` until it answers `status` (the bot reaches a state a moment after the fake sees
/// it); panics with the last answer after [`WAIT`].
async fn wait_for_status(addr: SocketAddr, path: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (got, body) = get(addr, path).await;
        if got == status {
            return body;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{path} still answers {got} after {WAIT:?}, expected {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    prometheus::parse(&body).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"))
}

/// Starts the bot on `fake` with the endpoint on 127.0.0.1 port 0; does not wait for READY.
async fn start_with_endpoint(
    fake: &FakeDiscord,
) -> (RunningBot, tempfile::TempDir, insight_bot::store::Store) {
    let (store, dir) = fresh_store();
    let mut settings = settings(fake, TOKEN, None, store.clone());
    settings.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let bot = tokio::time::timeout(WAIT, start(settings))
        .await
        .expect("start returns")
        .unwrap_or_else(|e| panic!("the bot did not start: {e}"));
    (bot, dir, store)
}

/// `insight-bot healthcheck` with `METRICS_ADDR` (or none): its exit code and stderr.
async fn healthcheck(metrics_addr: Option<SocketAddr>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_insight-bot"));
        command
            .arg("healthcheck")
            .current_dir(dir.path())
            .env_remove("METRICS_ADDR")
            .env_remove("DISCORD_TOKEN");
        if let Some(addr) = metrics_addr {
            command.env("METRICS_ADDR", addr.to_string());
        }
        command.output().expect("run insight-bot healthcheck")
    })
    .await
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_gateway_and_healthcheck_says_the_same() {
    // Heartbeats often, so a round trip is measured within the test.
    let fake = FakeDiscord::builder()
        .heartbeat_interval(Duration::from_millis(200))
        .start()
        .await;
    // IDENTIFY stays unanswered: the bot runs but is not READY.
    fake.hold_sessions(true);
    let (bot, _dir, _store) = start_with_endpoint(&fake).await;
    let addr = bot.endpoint_addr().expect("METRICS_ADDR was set");
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let (status, reason) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{reason}");
    assert!(reason.starts_with("not ready: "), "{reason}");
    assert_eq!(reason.trim_end().lines().count(), 1, "one line: {reason:?}");
    let (code, stderr) = healthcheck(Some(addr)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("/readyz answered 503"), "{stderr}");

    fake.hold_sessions(false);
    fake.wait_for_ready(WAIT).await;
    let ready = wait_for_status(addr, "/readyz", 200).await;
    assert!(
        ready.contains("1 shard(s) connected, the store answers"),
        "{ready}"
    );
    let (code, stderr) = healthcheck(Some(addr)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let metrics = scrape(addr).await;
    assert_eq!(
        metrics.value("insight_bot_shard_up", &[("shard", "0")]),
        Some(1.0)
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let latency = loop {
        let metrics = scrape(addr).await;
        if let Some(latency) = metrics.value("insight_bot_shard_latency_seconds", &[("shard", "0")])
        {
            break latency;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat round trip measured"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!((0.0..WAIT.as_secs_f64()).contains(&latency), "{latency}");

    // The connection closes and the RESUME stays unanswered: not ready, shard 0 down.
    fake.hold_sessions(true);
    fake.close_gateway(4000);
    let reason = wait_for_status(addr, "/readyz", 503).await;
    assert!(reason.contains("shard 0 is "), "{reason}");
    assert_eq!(
        get(addr, "/healthz").await.0,
        200,
        "alive while reconnecting"
    );
    let metrics = scrape(addr).await;
    assert_eq!(
        metrics.value("insight_bot_shard_up", &[("shard", "0")]),
        Some(0.0)
    );
    let (code, _) = healthcheck(Some(addr)).await;
    assert_eq!(code, Some(1));

    // Once it resumes, ready again.
    fake.hold_sessions(false);
    wait_for_status(addr, "/readyz", 200).await;
    bot.shutdown().await.unwrap();
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_every_shard_discord_recommends() {
    // Two shards recommended (SHARDS=auto): serenity starts the second 5 s after the first.
    let fake = FakeDiscord::builder().recommended_shards(2).start().await;
    let (bot, _dir, _store) = start_with_endpoint(&fake).await;
    let addr = bot.endpoint_addr().unwrap();
    fake.wait_for_shards(&[(0, 2)], WAIT).await;
    // The bot sees shard 0 READY a moment after the fake sent it.
    let deadline = tokio::time::Instant::now() + WAIT;
    while scrape(addr)
        .await
        .value("insight_bot_shard_up", &[("shard", "0")])
        != Some(1.0)
    {
        assert!(tokio::time::Instant::now() < deadline, "shard 0 never up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        fake.shard_session((1, 2)).is_none(),
        "shard 1 identified already: the test needs serenity's spacing"
    );
    let (status, reason) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "shard 0 alone is not ready: {reason}");
    assert!(reason.contains("shard 1 is "), "{reason}");
    // The second identify comes after serenity's 5 s spacing.
    fake.wait_for_shards(&[(0, 2), (1, 2)], WAIT * 3).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let ready = loop {
        let (status, body) = get(addr, "/readyz").await;
        if status == 200 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(ready.contains("2 shard(s) connected"), "{ready}");
    let metrics = scrape(addr).await;
    for shard in ["0", "1"] {
        assert_eq!(
            metrics.value("insight_bot_shard_up", &[("shard", shard)]),
            Some(1.0)
        );
    }
    bot.shutdown().await.unwrap();
    fake.assert_all_bodies_valid();
}

#[tokio::test]
async fn healthcheck_without_metrics_addr_fails_with_what_to_set() {
    let (code, stderr) = healthcheck(None).await;
    assert_eq!(code, Some(1), "a HEALTHCHECK's unhealthy, not 2: {stderr}");
    assert!(stderr.contains("METRICS_ADDR is not set"), "{stderr}");
    // Nothing listening there: unhealthy, naming the address.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let (code, stderr) = healthcheck(Some(addr)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_metrics_addr_stops_start_up_naming_the_variable() {
    let fake = FakeDiscord::start().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (store, _dir) = fresh_store();
    let mut settings = settings(&fake, TOKEN, None, store);
    settings.metrics_addr = Some(taken.local_addr().unwrap());
    match start(settings).await {
        Ok(_) => panic!("started with METRICS_ADDR taken"),
        Err(e) => assert!(
            e.to_string().starts_with("METRICS_ADDR: cannot listen on"),
            "{e}"
        ),
    }
    assert_eq!(fake.gateway_stats().identifies, 0, "nothing connected");
}

/// Every series of the counters this test checks, as `name -> labels -> value`.
fn counters(e: &Exposition) -> Counters {
    [
        "insight_bot_interactions_total",
        "insight_bot_answers_total",
        "insight_bot_dm_messages_total",
        "insight_bot_posts_total",
        "insight_bot_discord_responses_total",
        "insight_bot_interaction_ack_seconds_count",
        "insight_bot_post_delay_seconds_count",
        "insight_bot_discord_rate_limited_seconds_total",
    ]
    .iter()
    .map(|name| (name.to_string(), e.series(name)))
    .collect()
}

/// What moved between two scrapes: only the series whose value changed.
fn moved(before: &Counters, after: &Counters) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (name, series) in after {
        for (labels, value) in series {
            let old = before[name].get(labels).copied().unwrap_or(0.0);
            if *value != old {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.insert(format!("{name}{{{}}}", labels.join(",")), value - old);
            }
        }
    }
    out
}

/// Held by the tests that compare counters before and after: the registry is the process's.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// [`start_with_endpoint`], then waits until the commands are registered and `/readyz` is 200.
async fn start_ready(fake: &FakeDiscord) -> (RunningBot, tempfile::TempDir, Store, SocketAddr) {
    let (bot, dir, store) = start_with_endpoint(fake).await;
    let addr = bot.endpoint_addr().unwrap();
    fake.wait_for_ready(WAIT).await;
    let route = format!("/applications/{APP_ID}/commands");
    fake.wait_for_request("the command registration", WAIT, |r| {
        r.is("PUT", &route) && r.status == 200
    })
    .await;
    wait_for_status(addr, "/readyz", 200).await;
    (bot, dir, store, addr)
}

/// Scrapes until `done` holds for what moved since `before` (an interaction is counted when its
/// handling returns, a moment after its reply), at most [`WAIT`]; the last scrape.
async fn scrape_until(
    addr: SocketAddr,
    before: &Counters,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> Exposition {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = scrape(addr).await;
        if done(&moved(before, &counters(&now))) || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_one_advice_one_dm_and_one_weekly_post_exactly() {
    let _counters = COUNTERS.lock().await;
    let fake = FakeDiscord::start().await;
    let (bot, _dir, store, addr) = start_ready(&fake).await;
    let first = scrape(addr).await;
    assert_eq!(
        first.value(
            "insight_bot_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    let before = counters(&first);

    // One /advice.
    let question = "How do I delegate effectively?";
    let callback = ask(&fake, &advice(question, None).build()).await;
    assert_eq!(callback.status, 204, "{}", callback.describe());
    // One DM.
    let mark = fake.mark();
    let dm = message(next_snowflake(), DM_CHANNEL_ID, None, alice(), question);
    fake.dispatch("MESSAGE_CREATE", dm).await;
    fake.wait_for_channel_message_since(mark, DM_CHANNEL_ID, WAIT)
        .await;
    // One scheduled weekly post: a schedule active for eight days has a slot due in the last
    // week, which the poster posts (late) when woken.
    let schedule = insight_bot::weekly::schedule::Schedule::weekly(
        chrono::Weekday::Mon,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        chrono_tz::UTC,
    );
    let active_since = chrono::Utc::now() - chrono::Duration::days(8);
    store
        .blocking()
        .set_feed(
            insight_bot::weekly::feed::FeedId::new(GUILD_ID, WEEKLY_CHANNEL_ID),
            &insight_bot::store::FeedSpec::plain(schedule),
            active_since,
        )
        .unwrap();
    // Its first send is answered 429 (a quarter of a second), the second goes out.
    let route = format!("/channels/{WEEKLY_CHANNEL_ID}/messages");
    fake.rate_limit_next("POST", &route, 1, Duration::from_millis(250));
    let mark = fake.mark();
    bot.poster().wake();
    fake.wait_for_channel_message_since(mark, WEEKLY_CHANNEL_ID, WAIT)
        .await;

    let after = scrape_until(addr, &before, |moved| {
        moved.contains_key("insight_bot_posts_total{outcome=sent}")
            && moved.contains_key(
                "insight_bot_interactions_total{command=advice,kind=slash,outcome=ok}",
            )
    })
    .await;
    let expected: BTreeMap<String, f64> = [
        (
            "insight_bot_interactions_total{command=advice,kind=slash,outcome=ok}",
            1.0,
        ),
        ("insight_bot_interaction_ack_seconds_count{}", 1.0),
        ("insight_bot_answers_total{confidence=strong}", 2.0),
        ("insight_bot_dm_messages_total{}", 1.0),
        ("insight_bot_posts_total{outcome=sent}", 1.0),
        ("insight_bot_post_delay_seconds_count{}", 1.0),
        ("insight_bot_discord_responses_total{status=2xx}", 1.0),
        ("insight_bot_discord_responses_total{status=429}", 1.0),
        ("insight_bot_discord_rate_limited_seconds_total{}", 0.25),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(moved(&before, &counters(&after)), expected);
    // The store and the model were timed: the post's claim and confirmation once each, and the
    // two questions' embeddings (at least; a question may be embedded in more than one run).
    let count =
        |e: &Exposition, name: &str, labels: &[(&str, &str)]| e.value(name, labels).unwrap_or(0.0);
    for op in ["claim", "confirm_post"] {
        let name = "insight_bot_store_call_seconds_count";
        assert_eq!(
            count(&after, name, &[("op", op)]) - count(&first, name, &[("op", op)]),
            1.0,
            "{op}"
        );
    }
    let name = "insight_bot_embedding_seconds_count";
    assert!(count(&after, name, &[]) - count(&first, name, &[]) >= 2.0);
    // The post went out after its slot (within the last week), not before.
    let delay = after
        .value("insight_bot_post_delay_seconds_sum", &[])
        .unwrap()
        - first
            .value("insight_bot_post_delay_seconds_sum", &[])
            .unwrap();
    assert!(delay > 0.0 && delay <= 7.0 * 86400.0, "{delay}");
    bot.shutdown().await.unwrap();
    fake.assert_all_bodies_valid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_an_error_and_a_spent_reply_budget_are_counted_by_outcome() {
    let _counters = COUNTERS.lock().await;
    let fake = FakeDiscord::start().await;
    let (bot, _dir, _store, addr) = start_ready(&fake).await;
    let before = counters(&scrape(addr).await);
    // One person asks one more time than the budget allows.
    let member = support::bot::fresh_member();
    for _ in 0..=REPLIES_PER_MINUTE {
        let interaction =
            slash_command("advice", vec![opt_string("question", "How do I delegate?")])
                .in_guild_member(member.clone())
                .build();
        let callback = ask(&fake, &interaction).await;
        assert_eq!(callback.status, 204, "{}", callback.describe());
    }
    // A member who is not a curator: the command and a form sent anyway are refused.
    let refused = ask(
        &fake,
        &slash_command("insights", vec![opt_subcommand("add", vec![])]).build(),
    )
    .await;
    assert!(
        refused.body_text().contains("Only curators"),
        "{}",
        refused.body_text()
    );
    let form = modal_submit("ins:add", &[("title", "Sneaky"), ("text", "Sneaky text.")]).build();
    let refused = ask(&fake, &form).await;
    assert!(
        refused.body_text().contains("Only curators"),
        "{}",
        refused.body_text()
    );
    // Discord fails the answer of one /advice (a 500 on its callback): an error.
    fake.fail_next("POST", "/interactions/", 1, 500);
    let failed = ask(
        &fake,
        &advice("How do I delegate effectively?", None).build(),
    )
    .await;
    assert_eq!(failed.status, 500, "{}", failed.describe());
    let key = |outcome: &str| {
        format!("insight_bot_interactions_total{{command=advice,kind=slash,outcome={outcome}}}")
    };
    let after = scrape_until(addr, &before, |moved| {
        let total: f64 = moved
            .iter()
            .filter(|(k, _)| k.starts_with("insight_bot_interactions_total"))
            .map(|(_, v)| v)
            .sum();
        total == (REPLIES_PER_MINUTE + 4) as f64
    })
    .await;
    let moved = moved(&before, &counters(&after));
    assert_eq!(
        moved.get(&key("ok")),
        Some(&(REPLIES_PER_MINUTE as f64)),
        "{moved:#?}"
    );
    assert_eq!(moved.get(&key("rate_limited")), Some(&1.0), "{moved:#?}");
    let refusals = [
        "insight_bot_interactions_total{command=advice,kind=slash,outcome=error}",
        "insight_bot_interactions_total{command=insights,kind=slash,outcome=refused}",
        "insight_bot_interactions_total{command=insights,kind=modal,outcome=refused}",
    ];
    for refusal in refusals {
        assert_eq!(moved.get(refusal), Some(&1.0), "{moved:#?}");
    }
    assert_eq!(
        moved
            .keys()
            .filter(|k| k.starts_with("insight_bot_interactions_total"))
            .count(),
        5,
        "ok, rate_limited, the error and the two refusals, nothing else: {moved:#?}"
    );
    assert_eq!(
        moved.get("insight_bot_answers_total{confidence=strong}"),
        Some(&(REPLIES_PER_MINUTE as f64 + 1.0)),
        "the budget's answers and the one whose delivery failed; not the refused one: {moved:#?}"
    );
    bot.shutdown().await.unwrap();
    fake.assert_all_bodies_valid();
}

#[test]
fn the_test_parser_accepts_the_format_and_rejects_what_scrapers_reject() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\\\"x\",j=\"2\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3.5\nh_count 2\n";
    let e = prometheus::parse(good).unwrap();
    assert_eq!(e.value("a_total", &[("k", "v\"x"), ("j", "2")]), Some(3.0));
    for bad in [
        "a_total 1\n",                  // no TYPE
        "# TYPE a counter\na{k=v} 1\n", // unquoted
        "# TYPE a counter\na 1\na 2\n", // twice
        "# TYPE a counter\na one\n",    // not a number
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
    ] {
        assert!(prometheus::parse(bad).is_err(), "accepted {bad:?}");
    }
}
