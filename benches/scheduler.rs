//! The poster at scale: 10,000 servers with 3 feeds each (weekly, daily on one topic, and
//! weekdays with a thread under each post), all 30,000 posts falling in the same minute.
//!
//! Measures the time from the poster waking until every post has been handed to the publisher
//! (claim in SQLite with the rotation step, render, send, confirm, and for a third of them the
//! thread), and the heap that pass needs.
//! The publisher here answers at once: Discord's rate limits and network time are left aside (in
//! production they, not the poster, bound how fast 10,000 posts go out: Discord allows about 50
//! requests a second per bot). Also measured: an idle pass over the same 30,000 feeds, which is
//! what every wake costs when nothing is due.
//!
//! Run with `cargo bench --bench scheduler`. Figures are printed; there is no timing assertion.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use counting_alloc::{measure, mib, CountingAlloc};
use insight_bot::insights::Library;
use insight_bot::store::{FeedSpec, Store};
use insight_bot::weekly::clock::ManualClock;
use insight_bot::weekly::feed::FeedId;
use insight_bot::weekly::poster::{OutgoingPost, Poster, PosterOptions, PublishFuture, Publisher};
use insight_bot::weekly::schedule::{parse_time, parse_zone, Repeat};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const SERVERS: u64 = 10_000;
const FEEDS_PER_SERVER: u64 = 3;

/// Hands posts over instantly and counts them.
#[derive(Default)]
struct InstantPublisher {
    sent: AtomicU64,
    threads: AtomicU64,
}

impl Publisher for InstantPublisher {
    fn send<'a>(&'a self, _post: &'a OutgoingPost) -> PublishFuture<'a, u64> {
        Box::pin(async move { Ok(self.sent.fetch_add(1, Ordering::Relaxed) + 1) })
    }

    fn find_post<'a>(
        &'a self,
        _post: &'a OutgoingPost,
        _since: DateTime<Utc>,
    ) -> PublishFuture<'a, Option<u64>> {
        Box::pin(async move { Ok(None) })
    }

    fn create_thread<'a>(
        &'a self,
        _channel_id: u64,
        message_id: u64,
        _name: &'a str,
    ) -> PublishFuture<'a, u64> {
        Box::pin(async move {
            self.threads.fetch_add(1, Ordering::Relaxed);
            Ok(message_id)
        })
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = Store::open(&path).unwrap();
    let library = Arc::new(Library::builtin().unwrap());
    // Every feed posts at 09:00 local in a zone at UTC+0 in November, and Monday is a day of all
    // three cadences, so all 30,000 slots fall in the same minute.
    let zones = [
        "UTC",
        "Europe/London",
        "Europe/Lisbon",
        "Atlantic/Reykjavik",
        "Africa/Accra",
    ];
    let set_at = at("2026-11-22T12:00:00Z");
    let (topic, _) = library.topics().next().expect("a topic");
    let started = Instant::now();
    for guild in 1..=SERVERS {
        let zone = parse_zone(zones[(guild % zones.len() as u64) as usize]).unwrap();
        let time = parse_time("09:00").unwrap();
        let schedule = |repeat: Repeat| repeat.schedule(chrono::Weekday::Mon, time, zone, set_at);
        let feeds = [
            FeedSpec::plain(schedule(Repeat::Weekly)),
            FeedSpec {
                topic: Some(topic.to_string()),
                ..FeedSpec::plain(schedule(Repeat::Daily))
            },
            FeedSpec {
                thread: true,
                ..FeedSpec::plain(schedule(Repeat::Weekdays))
            },
        ];
        for (n, spec) in (0u64..).zip(&feeds) {
            let feed = FeedId::new(guild, 1_000_000 * (n + 1) + guild);
            store.blocking().set_feed(feed, spec, set_at).unwrap();
        }
    }
    let setup = started.elapsed();

    let clock = Arc::new(ManualClock::new(at("2026-11-23T09:00:00Z")));
    let publisher = Arc::new(InstantPublisher::default());
    let poster = Arc::new(Poster::new(
        store.clone(),
        Arc::new(Arc::clone(&library)),
        publisher.clone(),
        clock.clone(),
        PosterOptions::default(),
    ));

    let ((elapsed, next), heap) = measure(|| {
        runtime.block_on(async {
            let started = Instant::now();
            let next = poster.tick().await.unwrap();
            poster.wait_idle().await;
            (started.elapsed(), next)
        })
    });
    let sent = publisher.sent.load(Ordering::Relaxed);
    assert_eq!(sent, SERVERS * FEEDS_PER_SERVER, "every feed posted once");
    assert_eq!(publisher.threads.load(Ordering::Relaxed), SERVERS);
    assert_eq!(next, Some(at("2026-11-24T09:00:00Z")));

    // An idle wake: nothing due, every schedule's next slot computed.
    clock.set(at("2026-11-23T09:01:00Z"));
    let mut idle = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        runtime.block_on(poster.tick()).unwrap();
        idle.push(started.elapsed());
    }
    idle.sort();
    assert_eq!(
        publisher.sent.load(Ordering::Relaxed),
        SERVERS * FEEDS_PER_SERVER,
        "an idle pass posted"
    );

    let db_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let feeds = SERVERS * FEEDS_PER_SERVER;
    println!("scheduler: {SERVERS} servers x {FEEDS_PER_SERVER} feeds due in the same minute");
    println!(
        "  setting up {feeds} feeds (one transaction each): {:.2} s",
        setup.as_secs_f64()
    );
    println!(
        "  all {sent} posts (and {SERVERS} threads) handed to the publisher in {:.2} s ({:.0} posts/s, {:.0} µs each)",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        elapsed.as_micros() as f64 / sent as f64,
    );
    println!(
        "  heap during that pass: peak {:.1} MiB, retained {:.1} MiB",
        mib(heap.peak),
        mib(heap.retained)
    );
    println!(
        "  idle pass over {feeds} feeds (nothing due): median {:.1} ms",
        idle[2].as_secs_f64() * 1000.0
    );
    println!(
        "  database on disk: {:.1} MiB",
        db_bytes as f64 / (1024.0 * 1024.0)
    );
}
