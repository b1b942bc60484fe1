//! How fast the bot answers `/advice`, end to end through the gateway and REST, against the
//! in-process fake Discord of the end-to-end tests (`tests/support/`).
//!
//! One fake and one bot (`insight_bot::bot::start`, the shipped collection in `data/`) are
//! started once; then `/advice` INTERACTION_CREATE dispatches are sent:
//! 1. **sequentially** (the next one when the previous callback has arrived), for latency: the
//!    question's embedding is most of it (goal: p50 <= 15 ms);
//! 2. as a **burst** of 50 at once, as when a popular channel asks together: every one must be
//!    answered within Discord's 3 seconds (the embedding runs on the blocking pool, so the burst
//!    queues there, not on the runtime).
//!
//! Latency is measured by the fake, from the moment the dispatch's frame has been written to the
//! gateway socket until the bot's `POST /interactions/{id}/{token}/callback` has been received
//! (its body read): the bot's work (gateway parse, poise dispatch, search, render, HTTP request),
//! not the benchmark's own waiting. Every interaction comes from a different user, so the
//! per-user cooldown never answers instead of the search.
//!
//! The fake's OpenAPI body validation is OFF here (`FakeDiscordBuilder::without_body_validation`): it would
//! measure the validator, not the bot. Discord's 3-second interaction deadline is off too, so a
//! slow burst is measured rather than refused. The fake, the bot and this driver share one
//! process and its tokio runtime (2 worker threads), so the figures include the fake's own cost of
//! serving and recording each request: they are an upper bound for the bot.
//!
//! Run: `cargo bench --bench interactions` (release). `BENCH_INTERACTIONS=N` changes the
//! sequential count (default 300). `BENCH_METRICS=on` runs the bot with its operators' endpoint
//! (`METRICS_ADDR` on 127.0.0.1) and scrapes `/metrics` every second meanwhile, far more often
//! than Prometheus does: compare with a run without it to see what serving metrics costs
//! (recording them is always on).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::bot::{advice, start_bot, stop_bot};
use support::FakeDiscord;

/// Questions people ask, on-topic and one off-topic, taken in turn.
const QUESTIONS: [&str; 8] = [
    "How do I stop micromanaging?",
    "How do I delegate effectively?",
    "Should I become a manager or stay an engineer?",
    "How do I get promoted to senior?",
    "My team keeps making the same mistakes, what should I change?",
    "How do I learn AI as an engineering leader?",
    "What changes when you go from manager to director?",
    "Recommend a movie for tonight",
];
const GOAL_P50: Duration = Duration::from_millis(15);
const BURST: usize = 50;
const DEADLINE: Duration = Duration::from_secs(3);
const WARM_UP: usize = 20;

fn main() {
    let n: usize = std::env::var("BENCH_INTERACTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(n));
}

fn interactions(count: usize, offset: usize) -> Vec<Value> {
    (0..count)
        .map(|i| advice(QUESTIONS[(i + offset) % QUESTIONS.len()], None).build())
        .collect()
}

/// Latency of each interaction (dispatch written -> callback received).
fn latencies(fake: &FakeDiscord, sent: &[Value]) -> Vec<Duration> {
    sent.iter()
        .map(|i| {
            fake.interaction_timing(i)
                .and_then(|t| t.latency())
                .expect("every interaction was sent and answered")
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// p50 / p99 / max of `values` (sorted here).
fn summary(values: &mut [Duration]) -> (Duration, Duration, Duration) {
    values.sort();
    let at =
        |q: f64| values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1];
    (at(0.50), at(0.99), values[values.len() - 1])
}

async fn run(n: usize) {
    let fake = FakeDiscord::builder()
        .without_body_validation()
        .interaction_deadline(None)
        .start()
        .await;
    assert!(
        !fake.validates_bodies(),
        "OpenAPI validation must be off in the benchmark"
    );
    let with_metrics = std::env::var("BENCH_METRICS").is_ok_and(|v| v == "on");
    let bot = if with_metrics {
        support::bot::start_bot_with_endpoint(&fake).await
    } else {
        start_bot(&fake).await
    };
    // A scraper, as Prometheus would be, every second.
    let scrapes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let scraper = bot.bot.endpoint_addr().map(|addr| {
        let scrapes = std::sync::Arc::clone(&scrapes);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let body = scrape(addr).await;
                assert!(body.contains("insight_bot_interactions_total"), "{body}");
                scrapes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    println!(
        "METRICS_ADDR: {}",
        match bot.bot.endpoint_addr() {
            Some(addr) => format!("on ({addr}), /metrics scraped every second"),
            None => "off".into(),
        }
    );
    let collection = support::bot::library().len();
    println!("interactions: /advice on the shipped collection ({collection} insights), fake Discord on 127.0.0.1, OpenAPI validation off");

    // Warm-up: connections, allocator, caches.
    let warm = interactions(WARM_UP, 0);
    for i in &warm {
        fake.dispatch("INTERACTION_CREATE", i.clone()).await;
        fake.wait_for_callbacks(std::slice::from_ref(i), Duration::from_secs(10))
            .await;
    }

    // 1. Sequential.
    let sequential = interactions(n, 0);
    let started = Instant::now();
    for i in &sequential {
        fake.dispatch("INTERACTION_CREATE", i.clone()).await;
        fake.wait_for_callbacks(std::slice::from_ref(i), Duration::from_secs(10))
            .await;
    }
    let elapsed = started.elapsed();
    let mut lat = latencies(&fake, &sequential);
    let (p50, p99, max) = summary(&mut lat);
    println!(
        "sequential: {n} interactions in {:.2} s = {:.0} answered/s (one at a time, incl. the driver's own waiting)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "sequential latency: p50 {}  p99 {}  max {}",
        ms(p50),
        ms(p99),
        ms(max)
    );

    // 2. Burst: 50 at once.
    let burst = interactions(BURST, 3);
    fake.dispatch_all("INTERACTION_CREATE", &burst).await;
    fake.wait_for_callbacks(&burst, Duration::from_secs(120))
        .await;
    let timings: Vec<_> = burst
        .iter()
        .map(|i| fake.interaction_timing(i).expect("dispatched"))
        .collect();
    let first_sent = timings
        .iter()
        .filter_map(|t| t.dispatch_sent)
        .min()
        .expect("sent");
    let last_answer = timings
        .iter()
        .filter_map(|t| t.callback_received)
        .max()
        .expect("answered");
    let window = last_answer - first_sent;
    let mut lat = latencies(&fake, &burst);
    let (b50, b99, bmax) = summary(&mut lat);
    println!(
        "burst: {BURST} interactions answered in {:.3} s = {:.0} answered/s",
        window.as_secs_f64(),
        BURST as f64 / window.as_secs_f64()
    );
    println!(
        "burst latency (incl. queueing): p50 {}  p99 {}  max {}",
        ms(b50),
        ms(b99),
        ms(bmax)
    );

    let failed = fake.requests_matching(|r| r.is("POST", "/interactions/") && r.status != 204);
    assert!(
        failed.is_empty(),
        "{} callbacks were refused, e.g. {}",
        failed.len(),
        failed[0].describe()
    );
    println!(
        "goals: sequential p50 <= {} -> {}; every one of {BURST} at once within {} -> {}",
        ms(GOAL_P50),
        if p50 <= GOAL_P50 { "met" } else { "MISSED" },
        ms(DEADLINE),
        if bmax < DEADLINE { "met" } else { "MISSED" }
    );
    recording_cost().await;
    if let Some(scraper) = scraper {
        scraper.abort();
        println!(
            "/metrics was scraped {} times meanwhile",
            scrapes.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    stop_bot(&fake, bot).await;
}

/// `GET /metrics`: the body (the endpoint answers and closes).
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

/// What the metrics cost in isolation, free of the end-to-end figures' noise on a shared machine:
/// counting one interaction (the task-local scope, its notes, the counter and the histogram), and
/// rendering `/metrics` once.
async fn recording_cost() {
    use insight_bot::ops::interaction::{note_acknowledged, note_outcome, track, Kind, Outcome};
    const N: u32 = 100_000;
    let started = Instant::now();
    for _ in 0..N {
        track(Kind::Slash, "advice", async {
            note_acknowledged();
            note_outcome(Outcome::Ok);
        })
        .await;
    }
    let per_interaction = started.elapsed() / N;
    let started = Instant::now();
    let renders = 1_000;
    let mut bytes = 0;
    for _ in 0..renders {
        bytes = insight_bot::ops::metrics()
            .render(&insight_bot::ops::Live::default())
            .len();
    }
    let per_render = started.elapsed() / renders;
    println!(
        "metrics: counting one interaction {:.0} ns; rendering /metrics ({bytes} bytes) {:.1} us",
        per_interaction.as_nanos(),
        per_render.as_secs_f64() * 1e6
    );
}
