//! The process's metrics: a small hand-written registry (atomic counters, fixed-bucket
//! histograms, label sets made of `&'static str` only) and its rendering in the Prometheus text
//! format 0.0.4.
//!
//! Hand-written rather than the `metrics` crates: a dozen series do not need a recorder, a
//! registry and an exporter (and their dependencies on a 2-core build machine). Label values are
//! `&'static str` by type, so no value can come from a user (a server id, a user id, a question):
//! every label set is bounded by the code itself. One registry per process ([`metrics`]), as
//! Prometheus clients do: the store, the model and the poster record without being handed it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The process's registry.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

static METRICS: Metrics = Metrics::new();

/// Seconds, for latencies from a millisecond to a minute.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Seconds a weekly post goes out after its slot: on time is seconds, late is minutes or hours.
const POST_DELAY_BUCKETS: &[f64] = &[
    1.0, 5.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0, 86400.0,
];
/// The most buckets a histogram has (the arrays are fixed so a histogram is a `const`).
const MAX_BUCKETS: usize = 16;

/// A monotonic count.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A monotonic sum of non-negative fractions (seconds), stored as `f64` bits.
#[derive(Default)]
pub struct FloatCounter(AtomicU64);

impl FloatCounter {
    pub const fn new() -> FloatCounter {
        FloatCounter(AtomicU64::new(0))
    }
    pub fn add(&self, amount: f64) {
        if !(amount.is_finite() && amount > 0.0) {
            return;
        }
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + amount).to_bits())
            });
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Counts by a fixed number of labels, each a `&'static str`.
pub struct LabeledCounter<const N: usize> {
    labels: [&'static str; N],
    values: Mutex<BTreeMap<[&'static str; N], u64>>,
}

impl<const N: usize> LabeledCounter<N> {
    pub const fn new(labels: [&'static str; N]) -> Self {
        LabeledCounter {
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }
    pub fn inc(&self, values: [&'static str; N]) {
        *lock(&self.values).entry(values).or_insert(0) += 1;
    }
    pub fn get(&self, values: [&'static str; N]) -> u64 {
        lock(&self.values).get(&values).copied().unwrap_or(0)
    }
}

/// Observations in fixed buckets (cumulative when rendered), with their sum and count.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    sum: FloatCounter,
}

impl Histogram {
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        assert!(bounds.len() <= MAX_BUCKETS);
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; MAX_BUCKETS],
            count: AtomicU64::new(0),
            sum: FloatCounter::new(),
        }
    }
    pub fn observe(&self, value: f64) {
        let value = value.max(0.0);
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // A zero observation still counts; the sum only grows by positive amounts.
        self.sum.add(value);
    }
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Histograms by one `&'static str` label.
pub struct LabeledHistogram {
    label: &'static str,
    bounds: &'static [f64],
    values: Mutex<BTreeMap<&'static str, Box<Histogram>>>,
}

impl LabeledHistogram {
    pub const fn new(label: &'static str, bounds: &'static [f64]) -> Self {
        LabeledHistogram {
            label,
            bounds,
            values: Mutex::new(BTreeMap::new()),
        }
    }
    pub fn observe_duration(&self, value: &'static str, elapsed: Duration) {
        lock(&self.values)
            .entry(value)
            .or_insert_with(|| Box::new(Histogram::new(self.bounds)))
            .observe_duration(elapsed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every metric the process records (the ones read at scrape time, shards and servers, are in
/// [`Live`]). The names are a contract with dashboards: see "Metrics" in docs/operations.md.
pub struct Metrics {
    /// `kind` (slash, component, modal, autocomplete), `command`, `outcome` (ok, error,
    /// refused, rate_limited).
    pub interactions: LabeledCounter<3>,
    pub interaction_ack: Histogram,
    /// `confidence`: answered or none (the ranking has no strong/weak grades).
    pub answers: LabeledCounter<1>,
    pub dm_messages: Counter,
    /// `outcome`: sent, failed, skipped, paused.
    pub posts: LabeledCounter<1>,
    pub post_delay: Histogram,
    /// `status`: 1xx..5xx as classes, 429 on its own.
    pub discord_responses: LabeledCounter<1>,
    pub discord_rate_limited_seconds: FloatCounter,
    /// `op`: the store operation (a [`crate::store::Backend`] method name).
    pub store_calls: LabeledHistogram,
    pub embedding: Histogram,
}

impl Metrics {
    const fn new() -> Metrics {
        Metrics {
            interactions: LabeledCounter::new(["kind", "command", "outcome"]),
            interaction_ack: Histogram::new(LATENCY_BUCKETS),
            answers: LabeledCounter::new(["confidence"]),
            dm_messages: Counter::new(),
            posts: LabeledCounter::new(["outcome"]),
            post_delay: Histogram::new(POST_DELAY_BUCKETS),
            discord_responses: LabeledCounter::new(["status"]),
            discord_rate_limited_seconds: FloatCounter::new(),
            store_calls: LabeledHistogram::new("op", LATENCY_BUCKETS),
            embedding: Histogram::new(LATENCY_BUCKETS),
        }
    }

    /// Counts one response of Discord's REST API by its status class (429 on its own, the one
    /// an operator alerts on).
    pub fn discord_response(&self, status: u16) {
        let class = match status {
            429 => "429",
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.discord_responses.inc([class]);
    }

    /// The whole exposition: these metrics, then what `live` read at scrape time.
    pub fn render(&self, live: &Live) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let p = PREFIX;
        header(
            &mut out,
            "build_info",
            "gauge",
            "Always 1; the version is a label.",
        );
        let _ = writeln!(out, "{p}build_info{{version=\"{}\"}} 1", live.version);
        header(
            &mut out,
            "shard_up",
            "gauge",
            "1 while the gateway shard is connected and READY, else 0.",
        );
        for shard in &live.shards {
            let _ = writeln!(
                out,
                "{p}shard_up{{shard=\"{}\"}} {}",
                shard.id,
                u8::from(shard.connected)
            );
        }
        header(
            &mut out,
            "shard_latency_seconds",
            "gauge",
            "The shard's last heartbeat round trip.",
        );
        for shard in &live.shards {
            if let Some(latency) = shard.latency {
                let _ = writeln!(
                    out,
                    "{p}shard_latency_seconds{{shard=\"{}\"}} {}",
                    shard.id,
                    latency.as_secs_f64()
                );
            }
        }
        labeled(
            &mut out,
            "interactions_total",
            "Interactions handled, by kind, command and outcome.",
            &self.interactions,
        );
        histogram(
            &mut out,
            "interaction_ack_seconds",
            "From an interaction's dispatch to its acknowledgement.",
            &[],
            &self.interaction_ack,
        );
        labeled(
            &mut out,
            "answers_total",
            "Questions answered (/advice and DMs), by confidence.",
            &self.answers,
        );
        header(
            &mut out,
            "dm_messages_total",
            "counter",
            "Direct messages received.",
        );
        let _ = writeln!(out, "{p}dm_messages_total {}", self.dm_messages.get());
        labeled(
            &mut out,
            "posts_total",
            "Weekly posts, by outcome.",
            &self.posts,
        );
        histogram(
            &mut out,
            "post_delay_seconds",
            "How long after its slot a weekly post went out.",
            &[],
            &self.post_delay,
        );
        labeled(
            &mut out,
            "discord_responses_total",
            "Discord REST responses, by status class (429 on its own).",
            &self.discord_responses,
        );
        header(
            &mut out,
            "discord_rate_limited_seconds_total",
            "counter",
            "Seconds Discord asked to wait (retry_after of 429 responses).",
        );
        let _ = writeln!(
            out,
            "{p}discord_rate_limited_seconds_total {}",
            self.discord_rate_limited_seconds.get()
        );
        {
            let by_op = lock(&self.store_calls.values);
            let ops: Vec<(&str, &Histogram)> = by_op.iter().map(|(k, v)| (*k, &**v)).collect();
            histogram_family(
                &mut out,
                "store_call_seconds",
                "State store calls, by operation.",
                self.store_calls.label,
                &ops,
            );
        }
        histogram(
            &mut out,
            "embedding_seconds",
            "Embedding model runs (a question, or a batch of insights).",
            &[],
            &self.embedding,
        );
        header(
            &mut out,
            "servers",
            "gauge",
            "Servers this process's shards serve.",
        );
        let _ = writeln!(out, "{p}servers {}", live.servers);
        header(
            &mut out,
            "server_insights",
            "gauge",
            "Servers' own insights, summed over the servers loaded in this process.",
        );
        let _ = writeln!(out, "{p}server_insights {}", live.server_insights);
        out
    }
}

/// Every metric's name starts with this.
pub const PREFIX: &str = "insight_bot_";

/// What is read at scrape time rather than recorded.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub version: &'static str,
    pub shards: Vec<ShardStatus>,
    pub servers: u64,
    pub server_insights: u64,
}

/// One gateway shard of this process.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardStatus {
    pub id: u32,
    /// Connected and READY (or RESUMED).
    pub connected: bool,
    /// How the gateway client names its state ("connected", "resuming", "not started"...).
    pub stage: String,
    /// The last heartbeat round trip, once there is one.
    pub latency: Option<Duration>,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP {PREFIX}{name} {help}\n# TYPE {PREFIX}{name} {kind}"
    );
}

fn labeled<const N: usize>(out: &mut String, name: &str, help: &str, c: &LabeledCounter<N>) {
    header(out, name, "counter", help);
    for (values, count) in lock(&c.values).iter() {
        let labels: Vec<String> = c
            .labels
            .iter()
            .zip(values)
            .map(|(l, v)| format!("{l}=\"{v}\""))
            .collect();
        let _ = writeln!(out, "{PREFIX}{name}{{{}}} {count}", labels.join(","));
    }
}

fn histogram(out: &mut String, name: &str, help: &str, labels: &[(&str, &str)], h: &Histogram) {
    header(out, name, "histogram", help);
    histogram_series(out, name, labels, h);
}

fn histogram_family(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: &[(&str, &Histogram)],
) {
    header(out, name, "histogram", help);
    for (value, h) in series {
        histogram_series(out, name, &[(label, value)], h);
    }
}

fn histogram_series(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    let with = |extra: Option<String>| {
        let mut parts: Vec<String> = labels.iter().map(|(l, v)| format!("{l}=\"{v}\"")).collect();
        parts.extend(extra);
        if parts.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", parts.join(","))
        }
    };
    // Read the count first: buckets incremented after it only make `+Inf` lag, never exceed.
    let count = h.count();
    let mut cumulative = 0;
    for (bound, bucket) in h.bounds.iter().zip(&h.buckets) {
        cumulative += bucket.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{PREFIX}{name}_bucket{} {}",
            with(Some(format!("le=\"{bound}\""))),
            cumulative.min(count)
        );
    }
    let _ = writeln!(
        out,
        "{PREFIX}{name}_bucket{} {count}",
        with(Some("le=\"+Inf\"".into()))
    );
    let _ = writeln!(out, "{PREFIX}{name}_sum{} {}", with(None), h.sum.get());
    let _ = writeln!(out, "{PREFIX}{name}_count{} {count}", with(None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.7, 3.0] {
            h.observe(v);
        }
        let mut out = String::new();
        histogram(&mut out, "x_seconds", "help", &[], &h);
        let lines: Vec<&str> = out.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "insight_bot_x_seconds_bucket{le=\"0.1\"} 1",
                "insight_bot_x_seconds_bucket{le=\"1\"} 3",
                "insight_bot_x_seconds_bucket{le=\"+Inf\"} 4",
                "insight_bot_x_seconds_sum 4.25",
                "insight_bot_x_seconds_count 4",
            ]
        );
    }

    #[test]
    fn statuses_are_counted_by_class_with_429_apart() {
        let m = Metrics::new();
        for status in [200, 204, 404, 429, 429, 502] {
            m.discord_response(status);
        }
        assert_eq!(m.discord_responses.get(["2xx"]), 2);
        assert_eq!(m.discord_responses.get(["4xx"]), 1);
        assert_eq!(m.discord_responses.get(["429"]), 2);
        assert_eq!(m.discord_responses.get(["5xx"]), 1);
    }

    #[test]
    fn a_float_counter_ignores_what_is_not_a_positive_amount() {
        let c = FloatCounter::new();
        c.add(1.5);
        c.add(-3.0);
        c.add(f64::NAN);
        c.add(0.25);
        assert_eq!(c.get(), 1.75);
    }
}
