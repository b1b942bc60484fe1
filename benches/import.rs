//! Reading hostile imports: what one curator's 1 MiB file costs the process.
//!
//! Run: `cargo bench --bench import` (release). Each shape is a file of just under 1 MiB (the
//! largest an import may be), read by `parse_import` with a server's rules, as `/insights
//! import` does before its preview. Figures are printed: the median time of 10 runs and the
//! peak heap the read allocates (a counting allocator: the largest number of bytes live at once
//! during the read, above what was live before it). There is no timing assertion.
//!
//! The shapes:
//! - **same title**: `a\nb\n\n` repeated, 209,715 insights all titled "a" (the review measured
//!   27.7 s for 80 KB and 177 s for 160 KB of this, quadratic in the ids: over an hour for 1 MiB);
//! - **many asks**: one Markdown insight whose `Asks:` line holds 524,000 questions;
//! - **many entries**: `[[insight]]` tables repeated (87,000 entries of TOML);
//! - **lone data lines**: blocks of a lone `Topics:` line, each a problem;
//! - **largest valid**: 1,000 insights with 10 topics and 25 example questions each (what an
//!   honest curator's biggest file looks like). After reading it, its 26,000 documents are also
//!   embedded once, timed: what the Import button then costs.
//!
//! Measured when it was written (release, 2 cores, another build running): see the README's
//! "Benchmarks" table.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use insight_bot::collections::server_source;
use insight_bot::insights::{parse_import, Rules, MAX_IMPORT_BYTES};

/// The system allocator, counting the bytes live and the most live at once.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `unit` repeated to just under 1 MiB (after `head`).
fn fill(head: &str, unit: &str) -> String {
    let count = (MAX_IMPORT_BYTES - head.len()) / unit.len();
    format!("{head}{}", unit.repeat(count))
}

fn shapes() -> Vec<(&'static str, &'static str, String)> {
    let topics: Vec<String> = (0..10).map(|i| format!("topic-{i}")).collect();
    let asks: Vec<String> = (0..25).map(|i| format!("how do I do thing {i}?")).collect();
    let valid: String = (0..1000)
        .map(|i| {
            format!(
                "Insight number {i}\n{}\nTopics: {}\nAsks: {}\n\n",
                "Some words of advice. ".repeat(13),
                topics.join(", "),
                asks.join(" | ")
            )
        })
        .collect();
    vec![
        ("same title", "hostile.txt", fill("", "a\nb\n\n")),
        (
            "many asks",
            "hostile.md",
            fill("# Title\nText.\nAsks: a", "|a"),
        ),
        ("many entries", "hostile.toml", fill("", "[[insight]]\n")),
        ("lone data lines", "hostile.txt", fill("", "Topics: x\n\n")),
        ("largest valid", "valid.txt", valid),
    ]
}

/// What the **Import** button costs for the largest valid file: every document of 1,000
/// insights with 25 example questions each (26,000 texts) through the model, on one thread of
/// the blocking pool as `Collections::prepare_here` runs it.
fn embed_largest(insights: &[insight_bot::insights::Insight]) {
    let embedder = insight_bot::embedding::Embedder::load_repository_model().expect("the model");
    let texts: Vec<String> = insights
        .iter()
        .flat_map(|i| {
            insight_bot::insights::search::semantic::documents(i)
                .into_iter()
                .map(|(_, text)| text)
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = Instant::now();
    let vectors = embedder.embed(&refs).expect("embedded");
    println!(
        "embedding the largest valid import: {} documents in {:.1} s",
        vectors.len(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let rules = Rules::server(server_source(), Some("general".into()));
    println!("reading a 1 MiB import (median of 10 runs; peak heap of one read)");
    for (name, file, text) in shapes() {
        assert!(text.len() <= MAX_IMPORT_BYTES, "{name}: {}", text.len());
        let mut times: Vec<Duration> = Vec::new();
        let mut peak = 0;
        let mut outcome = String::new();
        for _ in 0..10 {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let started = Instant::now();
            let result = parse_import(file, text.as_bytes(), &rules);
            times.push(started.elapsed());
            peak = peak.max(PEAK.load(Ordering::Relaxed) - before);
            outcome = match &result {
                Ok(insights) => format!("{} insights", insights.len()),
                Err(problems) => format!("{} problems", problems.len()),
            };
            if name == "largest valid" && times.len() == 10 {
                if let Ok(insights) = &result {
                    embed_largest(insights);
                }
            }
            drop(result);
        }
        times.sort();
        println!(
            "{name:>16}: {:>8.1} ms, peak {:>6.1} MiB ({} bytes in, {outcome})",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            peak as f64 / (1024.0 * 1024.0),
            text.len()
        );
    }
}
