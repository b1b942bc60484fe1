//! Every server's own collection at the scale of a popular bot: 2,000 servers with 200 insights of
//! their own each (400,000 in all) in one SQLite database, with `insight_bot::collections`.
//!
//! Run: `cargo bench --bench collections` (release; about two minutes on top of the build, most
//! of it filling the database and warming up four times). Figures are printed; there is no timing
//! assertion. What is measured:
//!
//! - **Fill** (context, not a goal): the generated insights saved with `save_server_insights`, one
//!   transaction per server, while another thread generates the next servers; the database size.
//! - **Startup**, three times: a fresh `Store::open` + `Collections::new` +
//!   `Collections::warm_up` (one read of every server's insights, then every server's catalog
//!   built on all cores). Split into the open, the `all_server_insights` read alone, the 2,000
//!   `server_settings` reads, and the build (the rest). Then where a server's build goes, timed
//!   one server at a time: decoding its stored vectors, its semantic index, `LexicalIndex::build`
//!   over its catalog (shipped + own), and the rest of `Catalog::for_server`.
//! - **Memory**, with the counting allocator (`benches/common/counting_alloc.rs`): the heap the
//!   warmed `Collections` keeps (all 2,000 servers built) and the peak during warm-up, and per
//!   server by part (semantic index, lexical index, library) on a sample of servers.
//! - **`/advice`**: `ServerCollection::catalog().rank` (what `/advice` does once the question is
//!   embedded) for 20,000 (server, question) pairs drawn at random over all servers from 50
//!   leadership questions embedded once with the real model. The embedding of a short question
//!   is reported beside it for context (it is the model's cost: `benches/search.rs`).
//! - **Adding one insight**: `Collections::save` of one ready draft (made-up vectors) in 200
//!   servers: the database write and the rebuild of that server's collection; each part alone
//!   too. Beside it, `Collections::prepare` of a typical new insight (the real model), which a
//!   real add also pays.
//! - **Lazy load**: `Collections::get` of a server not yet in memory (one 200-insight server read
//!   from the database and built).
//!
//! The generated insights are deterministic (fixed seed per server): titles of 4-9 words, texts
//! of 40-80 words in sentences, 1-3 topics, 0-3 asks, words drawn by a Zipf law (exponent 1.07)
//! from a 12,000-word vocabulary (the shipped insights' words, most frequent first, then the
//! domain vocabulary's words, then pronounceable pseudo-words standing for rarer words and names).
//! Their stored vectors are deterministic pseudo-random unit vectors (one per document: body and
//! each ask) encoded for the real model's fingerprint, so loading never runs the model; a question
//! is therefore near none of a server's own insights (only the 11 shipped ones score by meaning),
//! which changes no cost: every document is scanned either way. 10% of the servers hide two
//! shipped insights, 2% answer from their own only (`source: ours`), 20% have a curator role.
//!
//! Measured when it was written (release, 2 cores shared with other builds, so noisy; ranges over
//! three runs): see the figures at the end of this header, and the report that came with it.
//!
//! - startup (open + warm-up of all 2,000 servers): 8.5-9.2 s (open 1.1-1.2 s, of which SQLite's
//!   quick_check is most; reading every server's insights 1.8-2.1 s; building 5.2-6.3 s on 2
//!   threads). Before the analyser's tables were shared and stems memoised: 14.9-17.0 s (on a
//!   loaded machine). The bot answers meanwhile: a server not built yet is built on its first
//!   question.
//! - memory: 2,356 MiB of heap kept (1.18 MiB a server: lexical index 0.75, semantic 0.25,
//!   library 0.19), peak 3,124 MiB during warm-up (all rows held at once: 787 MiB).
//! - `/advice` rank over a server of 211 insights: p50 148 µs, p99 542 µs; the question's
//!   embedding beside it: 11.7 ms short, 148 ms for three sentences.
//! - adding one insight (write + rebuild): p50 4.8-6.5 ms, p99 7.3-10.3 ms; the model's
//!   `prepare` beside it: 139 ms. A server loaded lazily: p50 5.3-8.1 ms.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "common/text.rs"]
mod text;

use text::{pseudo_word, Zipf};

use std::collections::HashSet;
use std::hint::black_box;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use counting_alloc::CountingAlloc;
use insight_bot::collections::{server_source, Collections, Draft, MAX_OWN_INSIGHTS};
use insight_bot::embedding::cache::VectorCache;
use insight_bot::embedding::{Embedder, Vector, DIM};
use insight_bot::insights::catalog::Shipped;
use insight_bot::insights::search::lexical::LexicalIndex;
use insight_bot::insights::search::semantic::{InsightVectors, SemanticIndex};
use insight_bot::insights::search::vocabulary::CONCEPTS;
use insight_bot::insights::search::{Question, Searcher};
use insight_bot::insights::{Catalog, Insight, Library};
use insight_bot::store::{InsightSource, ServerInsight, Store, StoredVectors};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashSet;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const SERVERS: usize = 2_000;
const OWN: usize = 200;
/// Discord snowflakes of 2024 are about this size.
const FIRST_GUILD: u64 = 1_230_000_000_000_000_000;
const SEED: u64 = 0xc011_ec71_0005;
const VOCABULARY: usize = 12_000;
const ZIPF_EXPONENT: f64 = 1.07;
const STARTUPS: usize = 3;
/// Servers whose build is taken apart, one at a time (time and memory by part).
const SAMPLE_SERVERS: usize = 100;
const RANKS: usize = 20_000;
const LIMIT: usize = 3;
const ADDS: usize = 200;
const LAZY_LOADS: usize = 50;
const QUESTION_EMBEDS: usize = 20;
const INSIGHT_EMBEDS: usize = 10;
const AUTHOR: u64 = 1_230_000_000_000_000_042;

/// Questions as people ask them in `/advice`: short and long, some with abbreviations, a few off
/// topic (they must get "no close match", and cost the same scan).
const QUESTIONS: &[&str] = &[
    "How do I stop micromanaging?",
    "What does a director actually do all day?",
    "my startup grew to 50 people and I feel lost",
    "Can I go back to being an engineer after managing a team?",
    "how do I give feedback to a senior engineer who is defensive",
    "one of my reports keeps missing deadlines, what should I do",
    "how often should I have 1:1s with my team",
    "I just became a manager of my former peers, how do I handle it?",
    "how do I delegate when nobody on the team is as fast as me",
    "should I become a manager or stay an IC?",
    "how do I run a good retrospective",
    "my team doesn't trust me after the reorg",
    "how do I tell my boss the deadline is unrealistic",
    "what makes a great staff engineer",
    "how do I hire my first engineering manager",
    "how do I fire someone who is a friend",
    "new EM here, what should I focus on in my first 90 days?",
    "how to handle conflict between two senior devs",
    "our meetings are a waste of time, how do I fix them",
    "how do I get promoted to senior",
    "how can I build a culture of ownership",
    "how do I say no to my CEO",
    "what should a career ladder look like for a small team",
    "how do I motivate a team after layoffs",
    "I'm burned out from managing and coding at the same time",
    "how do I set goals for my team for next quarter",
    "how do I onboard a new hire remotely",
    "how do I deal with a toxic high performer",
    "when should I split my team into two",
    "how do I manage managers for the first time",
    "my manager never gives me feedback, what can I do?",
    "how do I prioritize when everything is urgent",
    "how do I write a performance review that is fair",
    "should tech leads write code?",
    "how do I grow influence without authority",
    "how do I handle an underperformer on a PIP",
    "what's the difference between a manager and a leader",
    "how to run a team offsite that people remember",
    "how do I keep my remote team connected",
    "how do I ask for a raise",
    "ok so long story. we had our offsite last week and the food was great and the weather was \
     lovely and we played board games at night. anyway the real thing is that i keep rewriting \
     my engineers' code at night because i do not trust them with it and i am exhausted.",
    "I've been a team lead for two years and I'm not sure whether I want to keep managing. I miss \
     building things, but I like helping people grow. My director wants me to take a second team \
     next quarter. How should I decide?",
    "We are a 12 person startup and the founders still make every decision. People are starting \
     to wait for approval on everything and things are slowing down. How do we push decisions \
     down without chaos?",
    "how do I communicate a decision the team disagrees with",
    "is it normal to feel lonely as a VP",
    "how do I mentor a junior developer",
    "Recommend a movie for tonight",
    "what's the weather in Paris tomorrow",
    "how do I make sourdough bread",
    "which film director made the best westerns?",
];

/// Topics a server's insights carry (1-3 each).
const TOPICS: &[&str] = &[
    "management",
    "career",
    "delegation",
    "feedback",
    "hiring",
    "one-on-ones",
    "meetings",
    "culture",
    "communication",
    "performance",
    "strategy",
    "decision-making",
    "onboarding",
    "remote",
    "conflict",
    "motivation",
    "burnout",
    "promotion",
    "coaching",
    "mentoring",
    "prioritization",
    "planning",
    "trust",
    "influence",
    "organization",
    "team-building",
    "leadership",
    "individual-contributor",
    "goals",
    "growth",
];

// ---------------------------------------------------------------------------------------------
// Made-up collections
// ---------------------------------------------------------------------------------------------

/// The word list: the shipped insights' words (most frequent first), the domain vocabulary's,
/// then pseudo-words up to [`VOCABULARY`].
fn vocabulary(shipped: &Library) -> Vec<String> {
    let mut words: Vec<String> = text::real_words(shipped);
    let mut seen: HashSet<String> = words.iter().cloned().collect();
    for (_, members) in CONCEPTS {
        for member in *members {
            for word in member.split(|c: char| !c.is_alphanumeric()) {
                let word = word.to_lowercase();
                if word.len() >= 2 && seen.insert(word.clone()) {
                    words.push(word);
                }
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    while words.len() < VOCABULARY {
        let syllables = if words.len() < 4_000 { 1..=2 } else { 2..=4 };
        let word = pseudo_word(&mut rng, syllables);
        if word.len() >= 2 && seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// Writes one server's insights.
struct Writer<'a> {
    rng: StdRng,
    words: &'a [String],
    zipf: &'a Zipf,
}

impl Writer<'_> {
    fn phrase(&mut self, n: usize) -> String {
        text::phrase(&mut self.rng, self.words, self.zipf, n)
    }

    fn prose(&mut self, n: usize) -> String {
        text::prose(&mut self.rng, self.words, self.zipf, n)
    }

    fn insight(&mut self, id_suffix: &str) -> Insight {
        let title_words = self.rng.gen_range(4..=9);
        let title = self.phrase(title_words);
        let text_words = self.rng.gen_range(40..=80);
        let text = self.prose(text_words);
        let topic_count = self.rng.gen_range(1..=3);
        let mut topics: Vec<String> = Vec::with_capacity(topic_count);
        while topics.len() < topic_count {
            let topic = TOPICS[self.rng.gen_range(0..TOPICS.len())];
            if !topics.iter().any(|t| t == topic) {
                topics.push(topic.to_string());
            }
        }
        let ask_count = self.rng.gen_range(0..=3);
        let asks = (0..ask_count)
            .map(|_| {
                let n = self.rng.gen_range(5..=12);
                let ask = self.phrase(n).trim_end_matches(',').to_string();
                if self.rng.gen_bool(0.7) {
                    ask + "?"
                } else {
                    ask
                }
            })
            .collect();
        // A slug of the title's first words, made unique in the server by the suffix.
        let slug: Vec<String> = title
            .split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase()
            })
            .filter(|w| !w.is_empty())
            .take(3)
            .collect();
        let mut id = slug.join("-");
        id.truncate(48);
        let id = format!("{}-{id_suffix}", id.trim_end_matches('-'))
            .trim_start_matches('-')
            .to_string();
        Insight {
            id,
            title,
            text,
            topics,
            asks,
            source: server_source(),
            pack: None,
        }
    }
}

/// Deterministic pseudo-random unit vectors (xorshift), one per document of an insight.
fn made_up_vectors(insight: &Insight, seed: u64) -> InsightVectors {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let vectors: Vec<Vector> = (0..1 + insight.asks.len())
        .map(|_| {
            let mut v = [0f32; DIM];
            for value in v.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *value = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.map(|a| a / norm)
        })
        .collect();
    InsightVectors::from_vectors(&vectors)
}

fn guild(n: usize) -> u64 {
    FIRST_GUILD + n as u64 * 7_919
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-09T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A server's own insights as stored rows.
fn server_rows(n: usize, words: &[String], zipf: &Zipf, fingerprint: u64) -> Vec<ServerInsight> {
    let guild_id = guild(n);
    let mut writer = Writer {
        rng: StdRng::seed_from_u64(SEED ^ guild_id),
        words,
        zipf,
    };
    (0..OWN)
        .map(|i| {
            let insight = writer.insight(&format!("{i:03}"));
            let vectors = made_up_vectors(&insight, guild_id ^ ((i as u64) << 48));
            ServerInsight {
                guild_id,
                insight,
                created_by: AUTHOR + (i % 7) as u64,
                created_at: now(),
                updated_at: now(),
                vectors: Some(StoredVectors {
                    fingerprint,
                    bytes: vectors.encode(),
                }),
            }
        })
        .collect()
}

/// Fills the database at `path`: [`SERVERS`] servers of [`OWN`] insights, and some settings.
fn fill(path: &Path, shipped: &Library, fingerprint: u64) {
    let words = vocabulary(shipped);
    let zipf = Zipf::new(words.len(), ZIPF_EXPONENT);
    let store = Store::open(path).unwrap();
    let started = Instant::now();
    let (sender, receiver) = mpsc::sync_channel::<Vec<ServerInsight>>(8);
    let (mut generating, mut saving) = (Duration::ZERO, Duration::ZERO);
    let (mut documents, mut words_total, mut distinct_words) = (0usize, 0usize, 0usize);
    std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let mut busy = Duration::ZERO;
            for n in 0..SERVERS {
                let t = Instant::now();
                let rows = server_rows(n, &words, &zipf, fingerprint);
                busy += t.elapsed();
                if sender.send(rows).is_err() {
                    break;
                }
            }
            drop(sender);
            busy
        });
        for (n, rows) in receiver.iter().enumerate() {
            if n < 20 {
                let mut distinct = HashSet::new();
                for row in &rows {
                    let i = &row.insight;
                    for field in [&i.title, &i.text].into_iter().chain(&i.asks) {
                        for w in field.split_whitespace() {
                            words_total += 1;
                            distinct.insert(w.trim_matches(|c: char| !c.is_alphanumeric()));
                        }
                    }
                }
                distinct_words += distinct.len();
            }
            documents += rows.iter().map(|r| 1 + r.insight.asks.len()).sum::<usize>();
            let t = Instant::now();
            let outcome = store
                .blocking()
                .save_server_insights(guild(n), &rows, MAX_OWN_INSIGHTS)
                .unwrap();
            saving += t.elapsed();
            assert_eq!(outcome.added, OWN);
        }
        generating = producer.join().unwrap();
    });
    let db = store.blocking();
    let mut hidden = 0;
    let mut ours = 0;
    for n in 0..SERVERS {
        let g = guild(n);
        if n % 10 == 3 {
            for id in ["tour-of-duty", "management-vs-authority"] {
                assert!(db.set_hidden(g, id, true).unwrap());
            }
            hidden += 1;
        }
        if n % 50 == 7 {
            db.set_insight_source(g, InsightSource::Ours).unwrap();
            ours += 1;
        }
        if n % 5 == 1 {
            db.set_curator_role(g, Some(g + 1)).unwrap();
        }
    }
    let took = started.elapsed();
    drop(store);
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = path.with_extension("db-wal");
    println!(
        "fill: {SERVERS} servers x {OWN} insights ({} in all, {documents} documents: {:.2} a \
         insight) in {:.1} s (generating {:.1} s on another thread, save_server_insights {:.1} s: \
         {:.0} insights/s); {hidden} servers hide 2 shipped insights, {ours} answer from their own \
         only",
        SERVERS * OWN,
        documents as f64 / (SERVERS * OWN) as f64,
        took.as_secs_f64(),
        generating.as_secs_f64(),
        saving.as_secs_f64(),
        (SERVERS * OWN) as f64 / saving.as_secs_f64(),
    );
    println!(
        "      database {:.0} MiB (+ WAL {:.1} MiB); a server's own insights: {:.0} words (title, \
         text, asks), {:.0} distinct (mean of 20 servers)",
        mib(size(path) as isize),
        mib(size(&wal) as isize),
        words_total as f64 / 20.0,
        distinct_words as f64 / 20.0,
    );
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

fn mib(bytes: isize) -> f64 {
    counting_alloc::mib(bytes)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The `p` quantile (0..=1) of `sorted`, nearest rank.
fn quantile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// "p50 x, p99 y, max z" of `times` (sorted here), in `unit` ("µs" or "ms").
fn spread(times: &mut [Duration], unit: &str) -> String {
    times.sort();
    let f = |d: Duration| if unit == "ms" { ms(d) } else { us(d) };
    format!(
        "p50 {:.2} {unit}, p99 {:.2} {unit}, max {:.2} {unit} (n = {})",
        f(quantile(times, 0.5)),
        f(quantile(times, 0.99)),
        f(*times.last().unwrap()),
        times.len()
    )
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    quantile(&times, 0.5)
}

/// The process's resident set size in bytes (Linux).
fn resident_bytes() -> Option<isize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: isize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

/// A fresh open + warm-up, timed and split; returns the warmed collections.
fn startup(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    shipped: &Arc<Catalog>,
    run: usize,
) -> Arc<Collections> {
    let started = Instant::now();
    let store = Store::open(path).unwrap();
    let opened = started.elapsed();
    let collections = Arc::new(Collections::new(Arc::clone(shipped), store.clone()));
    let (warm, warming) = timed(|| rt.block_on(collections.warm_up()).unwrap());
    let total = started.elapsed();
    assert_eq!(
        (warm.servers, warm.insights, warm.deferred),
        (SERVERS, SERVERS * OWN, 0)
    );
    // The parts of warm_up alone, on the same store.
    let (rows, read) = timed(|| store.blocking().all_server_insights().unwrap());
    assert_eq!(rows.len(), SERVERS * OWN);
    let guilds: Vec<u64> = (0..SERVERS).map(guild).collect();
    let (_, settings) = timed(|| {
        for &g in &guilds {
            black_box(store.blocking().server_settings(g).unwrap());
        }
    });
    let (_, dropping) = timed(|| drop(rows));
    // What Store::open spends on the file: the integrity check it runs before anything else.
    let (_, check) = timed(|| {
        let conn = rusqlite::Connection::open(path).unwrap();
        let verdict: String = conn
            .query_row("PRAGMA quick_check(5)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(verdict, "ok");
    });
    println!(
        "startup run {run}: {:.2} s = open {:.0} ms (PRAGMA quick_check alone {:.0} ms) + warm_up \
         {:.2} s (of which, measured alone afterwards: all_server_insights {:.2} s (+{:.2} s to \
         free its rows), 2,000 server_settings {:.0} ms, so the build on {} threads about {:.2} \
         s)",
        total.as_secs_f64(),
        ms(opened),
        ms(check),
        warming.as_secs_f64(),
        read.as_secs_f64(),
        dropping.as_secs_f64(),
        ms(settings),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        (warming.saturating_sub(read + settings)).as_secs_f64(),
    );
    collections
}

/// One server's build taken apart, one server at a time: time and heap by part.
fn build_parts(store: &Store, shipped: &Arc<Catalog>) {
    let fingerprint = shipped.searcher().embedder().fingerprint();
    let mut decode = Vec::new();
    let mut semantic = Vec::new();
    let mut lexical = Vec::new();
    let mut for_server = Vec::new();
    let (mut splitting, mut stemming, mut distinct_total) = (Vec::new(), Vec::new(), 0usize);
    let (mut semantic_heap, mut lexical_heap, mut library_heap, mut catalog_heap) =
        (0isize, 0isize, 0isize, 0isize);
    for k in 0..SAMPLE_SERVERS {
        let rows = store
            .blocking()
            .server_insights(guild(k * (SERVERS / SAMPLE_SERVERS)))
            .unwrap();
        let (parts, t) = timed(|| {
            rows.iter()
                .map(|r| {
                    let stored = r.vectors.as_ref().unwrap();
                    assert_eq!(stored.fingerprint, fingerprint);
                    InsightVectors::decode(&stored.bytes).unwrap()
                })
                .collect::<Vec<_>>()
        });
        decode.push(t);
        let own: Vec<Insight> = rows.iter().map(|r| r.insight.clone()).collect();
        let (index, t) = timed(|| Arc::new(SemanticIndex::from_insight_vectors(&parts)));
        semantic.push(t);
        let (_, heap) =
            counting_alloc::measure(|| black_box(SemanticIndex::from_insight_vectors(&parts)));
        semantic_heap += heap.retained;
        let all: Vec<Insight> = shipped
            .library()
            .insights()
            .iter()
            .chain(&own)
            .cloned()
            .collect();
        let (built, t) = timed(|| LexicalIndex::build(&all));
        lexical.push(t);
        let (distinct, t) = timed(|| distinct_words(&all));
        splitting.push(t);
        distinct_total += distinct.len();
        let stemmer = Stemmer::create(Algorithm::English);
        let (_, t) = timed(|| {
            for word in &distinct {
                black_box(stemmer.stem(word));
            }
        });
        stemming.push(t);
        drop(built);
        let (_, heap) = counting_alloc::measure(|| black_box(LexicalIndex::build(&all)));
        lexical_heap += heap.retained;
        let (_, heap) = counting_alloc::measure(|| black_box(Library::from_insights(all.clone())));
        library_heap += heap.retained;
        let (catalog, t) = timed(|| {
            Catalog::for_server(shipped, Shipped::AllBut(&[], &[]), &own, Arc::clone(&index))
        });
        for_server.push(t);
        drop(catalog);
        let (_, heap) = counting_alloc::measure(|| {
            black_box(Catalog::for_server(
                shipped,
                Shipped::AllBut(&[], &[]),
                &own,
                Arc::clone(&index),
            ))
        });
        catalog_heap += heap.retained;
    }
    let (_, empty) = timed(|| black_box(LexicalIndex::build(&[])));
    let (_, empty_heap) = counting_alloc::measure(|| black_box(LexicalIndex::build(&[])));
    let (d, s, l, f) = (
        median(decode),
        median(semantic),
        median(lexical),
        median(for_server),
    );
    let n = SAMPLE_SERVERS as isize;
    println!(
        "  where LexicalIndex::build goes (same servers, medians): folding + splitting the \
         catalog's text into its {:.0} distinct words {:.2} ms; Snowball-stemming those words \
         once each {:.2} ms",
        distinct_total as f64 / SAMPLE_SERVERS as f64,
        ms(median(splitting)),
        ms(median(stemming)),
    );
    println!(
        "  one server's build, alone (median of {SAMPLE_SERVERS} servers, one thread): decode \
         vectors {:.0} µs + semantic index {:.0} µs + Catalog::for_server {:.2} ms (of which \
         LexicalIndex::build over its {} insights {:.2} ms; over none, i.e. the analyser's tables \
         alone, {:.2} ms) = {:.2} ms; x {SERVERS} servers = {:.1} s of CPU",
        us(d),
        us(s),
        ms(f),
        shipped.library().len() + OWN,
        ms(l),
        ms(empty),
        ms(d + s + f),
        (d + s + f).as_secs_f64() * SERVERS as f64,
    );
    println!(
        "  one server's heap by part (mean of {SAMPLE_SERVERS}): semantic index {:.2} MiB, \
         Catalog::for_server {:.2} MiB (lexical index {:.2} MiB, of which {:.2} MiB the \
         analyser's tables of an empty index; library {:.2} MiB)",
        mib(semantic_heap / n),
        mib(catalog_heap / n),
        mib(lexical_heap / n),
        mib(empty_heap.retained),
        mib(library_heap / n),
    );
}

/// The distinct words of `insights` as the lexical index splits them (folded to ASCII,
/// lowercased, runs of letters and digits; topics' hyphens split too): the words it stems.
fn distinct_words(insights: &[Insight]) -> FxHashSet<String> {
    let mut out = FxHashSet::default();
    for insight in insights {
        let fields = [&insight.title, &insight.text]
            .into_iter()
            .chain(&insight.asks)
            .chain(&insight.topics);
        for field in fields {
            let mut folded = deunicode::deunicode_with_tofu_cow(field, " ").into_owned();
            folded.make_ascii_lowercase();
            for word in folded.split(|c: char| !c.is_ascii_alphanumeric() && c != '\'') {
                let word = word.trim_matches('\'');
                if !word.is_empty() && !out.contains(word) {
                    out.insert(word.to_string());
                }
            }
        }
    }
    out
}

/// The warmed collections' heap and the peak during warm-up.
fn memory(rt: &tokio::runtime::Runtime, path: &Path, shipped: &Arc<Catalog>) {
    let store = Store::open(path).unwrap();
    let rss_before = resident_bytes();
    let ((collections, took), heap) = counting_alloc::measure(|| {
        let collections = Arc::new(Collections::new(Arc::clone(shipped), store.clone()));
        let (_, took) = timed(|| rt.block_on(collections.warm_up()).unwrap());
        (collections, took)
    });
    let rss_after = resident_bytes();
    assert_eq!(collections.loaded(), SERVERS);
    let rss = match (rss_before, rss_after) {
        (Some(a), Some(b)) => format!(", resident set +{:.0} MiB", mib(b - a)),
        _ => String::new(),
    };
    println!(
        "memory: warmed Collections ({SERVERS} servers built) retain {:.0} MiB of heap ({:.2} MiB \
         a server); peak during warm-up {:.0} MiB above the start{rss} (this warm-up, counted: \
         {:.2} s)",
        mib(heap.retained),
        mib(heap.retained / SERVERS as isize),
        mib(heap.peak),
        took.as_secs_f64(),
    );
    let (rows, heap) = counting_alloc::measure(|| store.blocking().all_server_insights().unwrap());
    println!(
        "  the all_server_insights rows alone (all held at once during warm-up): {:.0} MiB",
        mib(heap.retained)
    );
    drop(rows);
    drop(collections);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ((shipped, searcher), loading) = timed(|| {
        let embedder = Embedder::load_repository_model().unwrap();
        let cache = VectorCache::in_memory(embedder.fingerprint());
        let searcher = Searcher::new(Arc::new(embedder), Arc::new(cache)).unwrap();
        let library = Arc::new(Library::builtin().unwrap());
        let catalog = Arc::new(Catalog::new(library, searcher.clone()).unwrap());
        (catalog, searcher)
    });
    let fingerprint = searcher.embedder().fingerprint();
    println!(
        "collections: {SERVERS} servers x {OWN} own insights + {} shipped; model and shipped \
         catalog loaded in {:.1} s; {} cores",
        shipped.library().len(),
        loading.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("insight-bot.db");
    fill(&path, shipped.library(), fingerprint);

    // ---- memory (first, so that the resident set is not inflated by earlier warm-ups) ----
    memory(&rt, &path, &shipped);

    // ---- startup ----
    let mut collections = None;
    for run in 1..=STARTUPS {
        drop(collections.take());
        collections = Some(startup(&rt, &path, &shipped, run));
    }
    let collections = collections.unwrap();
    build_parts(collections.store(), &shipped);

    // ---- /advice ----
    let questions: Vec<(Question, Vec<Vector>)> = QUESTIONS
        .iter()
        .map(|q| {
            let question = Question::read(q).unwrap();
            let vectors = searcher.embed_question(&question).unwrap();
            (question, vectors)
        })
        .collect();
    let servers: Vec<_> = (0..SERVERS)
        .map(|n| rt.block_on(collections.get(Some(guild(n)))).unwrap())
        .collect();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut times = Vec::with_capacity(RANKS);
    let (mut one_vector, mut several) = (Vec::new(), Vec::new());
    let (mut answered, mut own_best) = (0, 0);
    for _ in 0..RANKS {
        let server = &servers[rng.gen_range(0..SERVERS)];
        let (question, vectors) = &questions[rng.gen_range(0..questions.len())];
        let started = Instant::now();
        let answer = server.catalog().rank(question, vectors, LIMIT);
        let took = started.elapsed();
        times.push(took);
        if vectors.len() == 1 {
            one_vector.push(took);
        } else {
            several.push(took);
        }
        if let Some(best) = answer.best() {
            answered += 1;
            if server.origin(&best.insight.id) == Some(insight_bot::collections::Origin::Own) {
                own_best += 1;
            }
        }
        black_box(answer);
    }
    println!(
        "/advice (rank, the question already embedded) over {SERVERS} servers of {} insights: {} \
         ({answered} answered, {own_best} of them by an own insight)",
        shipped.library().len() + OWN,
        spread(&mut times, "µs"),
    );
    println!(
        "  questions embedded as one vector: {}; long ones (whole + each sentence): {}",
        spread(&mut one_vector, "µs"),
        spread(&mut several, "µs"),
    );
    let dm = collections.shipped();
    let mut times: Vec<Duration> = (0..2_000)
        .map(|i| {
            let (question, vectors) = &questions[i % questions.len()];
            let started = Instant::now();
            black_box(dm.catalog().rank(question, vectors, LIMIT));
            started.elapsed()
        })
        .collect();
    println!(
        "  the same on the shipped collection alone (DMs, {} insights): {}",
        dm.library().len(),
        spread(&mut times, "µs"),
    );
    let short = Question::read("How do I stop micromanaging?").unwrap();
    let embeds: Vec<Duration> = (0..QUESTION_EMBEDS)
        .map(|_| timed(|| black_box(searcher.embed_question(&short).unwrap())).1)
        .collect();
    let long = questions
        .iter()
        .find(|(q, _)| q.sentences.len() >= 3)
        .unwrap();
    let long_embeds: Vec<Duration> = (0..5)
        .map(|_| timed(|| black_box(searcher.embed_question(&long.0).unwrap())).1)
        .collect();
    println!(
        "  for context, embedding the question with the model: a short one {:.1} ms, a long one \
         ({} sentences) {:.1} ms (medians)",
        ms(median(embeds)),
        long.0.sentences.len(),
        ms(median(long_embeds)),
    );

    // ---- adding one insight ----
    let words = vocabulary(shipped.library());
    let zipf = Zipf::new(words.len(), ZIPF_EXPONENT);
    let mut writer = Writer {
        rng: StdRng::seed_from_u64(SEED + 1),
        words: &words,
        zipf: &zipf,
    };
    let mut drafts: Vec<(u64, Draft)> = (0..ADDS)
        .map(|k| {
            let g = guild((k * 7 + 1) % SERVERS);
            let insight = writer.insight(&format!("added-{k:03}"));
            let vectors = made_up_vectors(&insight, k as u64 + 1);
            (g, Draft { insight, vectors })
        })
        .collect();
    let mut times = Vec::with_capacity(ADDS);
    for (g, draft) in drafts.drain(..) {
        let started = Instant::now();
        let outcome = rt
            .block_on(collections.save(g, vec![draft], AUTHOR, now()))
            .unwrap();
        times.push(started.elapsed());
        assert_eq!(outcome.added, 1);
    }
    println!(
        "add one insight (Collections::save: database write + rebuild of the server): {}",
        spread(&mut times, "ms")
    );
    // Its parts alone, in other servers: the write, and the rebuild (what replace_own does).
    let mut writes = Vec::with_capacity(ADDS);
    let mut rebuilds = Vec::with_capacity(ADDS);
    for k in 0..ADDS {
        let g = guild((k * 7 + 4) % SERVERS);
        let insight = writer.insight(&format!("added-alone-{k:03}"));
        let vectors = made_up_vectors(&insight, 1_000 + k as u64);
        let row = ServerInsight {
            guild_id: g,
            insight: insight.clone(),
            created_by: AUTHOR,
            created_at: now(),
            updated_at: now(),
            vectors: Some(StoredVectors {
                fingerprint,
                bytes: vectors.encode(),
            }),
        };
        // The server as it was before this write (its own insights in id order, as loaded).
        let current = &servers[(k * 7 + 4) % SERVERS];
        let mut own = current.own().to_vec();
        let parts: Vec<InsightVectors> = rows_vectors(collections.store(), g, fingerprint);
        assert_eq!(parts.len(), own.len());
        let index = SemanticIndex::from_insight_vectors(&parts);
        let (outcome, t) = timed(|| {
            collections
                .store()
                .blocking()
                .save_server_insights(g, &[row], MAX_OWN_INSIGHTS)
                .unwrap()
        });
        assert_eq!(outcome.added, 1);
        writes.push(t);
        let (catalog, t) = timed(|| {
            own.push(insight);
            let edited = Arc::new(index.edited(|_| true, &[&vectors]));
            let visible = match current.settings().source {
                InsightSource::All => {
                    Shipped::AllBut(&current.settings().hidden, &current.settings().packs_off)
                }
                InsightSource::Ours => Shipped::None,
            };
            Catalog::for_server(&shipped, visible, &own, edited)
        });
        rebuilds.push(t);
        drop(catalog);
    }
    println!(
        "  its parts alone: save_server_insights of one row {}; the rebuild (SemanticIndex::edited \
         + Catalog::for_server) {}",
        spread(&mut writes, "ms"),
        spread(&mut rebuilds, "ms"),
    );
    let new = Insight {
        id: "remote-offsites".into(),
        title: "Plan offsites around decisions, not activities".into(),
        text: "A remote team's offsite is expensive time together. Decide beforehand which two or \
               three decisions need everyone in one room, put them on the first morning, and \
               leave the games for after. People remember an offsite for what it settled, not \
               for the activities, so write the decisions down and send them round the week \
               after."
            .into(),
        topics: vec!["remote".into(), "meetings".into()],
        asks: vec![
            "how do I plan an offsite for a remote team?".into(),
            "our offsites feel like a waste of money".into(),
        ],
        source: server_source(),
        pack: None,
    };
    let prepares: Vec<Duration> = (0..INSIGHT_EMBEDS)
        .map(|_| {
            timed(|| black_box(rt.block_on(collections.prepare(vec![new.clone()])).unwrap())).1
        })
        .collect();
    println!(
        "  for context, Collections::prepare of a typical new insight (3 documents, the model): \
         {:.1} ms (median of {INSIGHT_EMBEDS})",
        ms(median(prepares)),
    );
    drop(servers);

    // ---- lazy load of a server not in memory ----
    let cold = Collections::new(Arc::clone(&shipped), collections.store().clone());
    let mut times: Vec<Duration> = (0..LAZY_LOADS)
        .map(|k| {
            let g = guild((k * 37 + 11) % SERVERS);
            let (collection, t) = timed(|| rt.block_on(cold.get(Some(g))).unwrap());
            assert!(collection.own().len() >= OWN);
            t
        })
        .collect();
    println!(
        "lazy load (Collections::get of a server not in memory: read + build): {}",
        spread(&mut times, "ms")
    );
}

/// A server's stored vectors, in the order of its insights (by id).
fn rows_vectors(store: &Store, guild: u64, fingerprint: u64) -> Vec<InsightVectors> {
    store
        .blocking()
        .server_insights(guild)
        .unwrap()
        .iter()
        .map(|r| {
            let stored = r.vectors.as_ref().unwrap();
            assert_eq!(stored.fingerprint, fingerprint);
            InsightVectors::decode(&stored.bytes).unwrap()
        })
        .collect()
}
