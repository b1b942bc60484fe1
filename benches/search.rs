//! Search benchmarks (criterion): question latency with the embedding model, on the shipped
//! collection and on 100,000 insights; embedding a new insight; load + index time; memory.
//!
//! Run: `cargo bench --bench search` (add `-- --warm-up-time 1 --measurement-time 3` for a
//! quicker run). Groups:
//!
//! - `ask/shipped`: `Catalog::ask` on the built-in collection, the question's embedding included.
//!   Goal: p50 <= 15 ms.
//! - `ask/100k`: the same search over 100,000 generated insights (three documents each: 300,000
//!   vectors scanned by brute force), the question embedded for real. The generated documents get
//!   deterministic random unit vectors instead of embeddings (embedding 300,000 texts would take
//!   an hour and measure the model, not the search). Goal: p50 <= 25 ms.
//! - `embed/new_insight`: embedding one insight's documents (title + text, two asks), what adding
//!   an insight costs. Goal: <= 50 ms.
//! - `load_index/100k`: `Library::from_sources` (parse + validate) of the generated collection and
//!   the lexical index build.
//!
//! Memory (printed once, labelled `memory:`): the model loaded, as the process's resident set;
//! and the 100,000-insight index, on the heap.
//!
//! The generated collection is deterministic (fixed seed): a ~20,000-word vocabulary made of the
//! real words of the shipped insights (most frequent first) followed by pronounceable
//! pseudo-words, word ranks drawn with P(rank r) ∝ 1/r^1.07, realistic field lengths, written as
//! 100 TOML files of 1,000 insights in the format of `data/insights.toml`.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "common/text.rs"]
mod text;

use text::{capitalised, pseudo_word, real_words, Zipf};

use std::cell::OnceCell;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use counting_alloc::CountingAlloc;
use criterion::{Criterion, SamplingMode};
use insight_bot::embedding::cache::VectorCache;
use insight_bot::embedding::{Embedder, Vector, DIM};
use insight_bot::insights::search::lexical::LexicalIndex;
use insight_bot::insights::search::semantic::{self, SemanticIndex};
use insight_bot::insights::search::{Answer, SearchIndex, Searcher};
use insight_bot::insights::{Catalog, Library};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Runs `f` with allocation counting on; returns its value, the peak heap growth during the call
/// and the heap growth still live when it returned (bytes, relative to the start).
fn measure_heap<T>(f: impl FnOnce() -> T) -> (T, isize, isize) {
    let (value, used) = counting_alloc::measure(f);
    (value, used.peak, used.retained)
}

fn mib(bytes: f64) -> f64 {
    counting_alloc::mib(bytes as isize)
}

// ---------------------------------------------------------------------------------------------
// Questions
// ---------------------------------------------------------------------------------------------

/// (bench name, question). The last one is off topic: it must get "no close match", fast.
const QUESTIONS: &[(&str, &str)] = &[
    ("micromanaging", "How do I stop micromanaging?"),
    ("director_day", "What does a director actually do all day?"),
    (
        "startup_50_people",
        "my startup grew to 50 people and I feel lost",
    ),
    (
        "back_to_ic",
        "Can I go back to being an engineer after managing a team?",
    ),
    ("off_topic_movie", "Recommend a movie for tonight"),
];

/// How many matches a question asks for (the bot shows the best and offers a couple more).
const LIMIT: usize = 3;

// ---------------------------------------------------------------------------------------------
// The generated collection
// ---------------------------------------------------------------------------------------------

const SEED: u64 = 0x01d5_eb07_2024;
const GENERATED: usize = 100_000;
const FILES: usize = 100;
const VOCABULARY: usize = 20_000;
const ZIPF_EXPONENT: f64 = 1.07;
const TOPICS: usize = 300;

struct GenInsight {
    id: String,
    title: String,
    text: String,
    topics: Vec<String>,
    asks: Vec<String>,
    source_title: String,
    publisher: String,
}

struct Corpus {
    /// The collection as TOML files, as `Library::load` would read them from a directory.
    sources: Vec<(PathBuf, String)>,
    toml_bytes: usize,
}

fn shipped() -> Library {
    Library::builtin().unwrap_or_else(|e| panic!("the shipped collection does not load:\n{e}"))
}

struct Generator {
    rng: StdRng,
    vocabulary: Vec<String>,
    words: Zipf,
    topics: Vec<String>,
    topic_ranks: Zipf,
    publishers: Vec<String>,
}

impl Generator {
    fn new(shipped: &Library) -> Generator {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut vocabulary = real_words(shipped);
        let mut seen: HashSet<String> = vocabulary.iter().cloned().collect();
        // Zipf's law of abbreviation: the more frequent pseudo-words are the shorter ones.
        while vocabulary.len() < VOCABULARY {
            let syllables = match vocabulary.len() {
                n if n < 2_000 => 1..=2,
                n if n < 10_000 => 2..=3,
                _ => 2..=4,
            };
            let word = pseudo_word(&mut rng, syllables);
            if word.len() >= 2 && seen.insert(word.clone()) {
                vocabulary.push(word);
            }
        }

        // Topics: the shipped ones (most used first), then one- and two-word generated slugs.
        let mut shipped_topics: Vec<(&str, usize)> = shipped.topics().collect();
        shipped_topics.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut topics: Vec<String> = shipped_topics.iter().map(|(t, _)| t.to_string()).collect();
        let mut seen_topics: HashSet<String> = topics.iter().cloned().collect();
        while topics.len() < TOPICS {
            let mut slug = pseudo_word(&mut rng, 2..=3);
            if rng.gen_bool(0.3) {
                slug.push('-');
                slug.push_str(&pseudo_word(&mut rng, 1..=3));
            }
            if seen_topics.insert(slug.clone()) {
                topics.push(slug);
            }
        }
        let publishers = (0..40)
            .map(|_| {
                let words = rng.gen_range(1..=2);
                (0..words)
                    .map(|_| capitalised(&pseudo_word(&mut rng, 2..=3)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        Generator {
            rng,
            vocabulary,
            words: Zipf::new(VOCABULARY, ZIPF_EXPONENT),
            topic_ranks: Zipf::new(TOPICS, 1.0),
            topics,
            publishers,
        }
    }

    fn phrase(&mut self, n: usize) -> String {
        text::phrase(&mut self.rng, &self.vocabulary, &self.words, n)
    }

    fn prose(&mut self, n: usize) -> String {
        text::prose(&mut self.rng, &self.vocabulary, &self.words, n)
    }

    fn ask(&mut self) -> String {
        let n = self.rng.gen_range(6..=12);
        let mut ask = self.phrase(n);
        // The loader refuses asks over 100 characters: drop trailing words until it fits.
        while ask.chars().count() > 99 {
            match ask.rfind(' ') {
                Some(cut) => ask.truncate(cut),
                None => break,
            }
        }
        let ask = ask.trim_end_matches(',').to_string();
        if self.rng.gen_bool(0.7) {
            ask + "?"
        } else {
            ask
        }
    }

    fn insight(&mut self, i: usize) -> GenInsight {
        let title_words = self.rng.gen_range(5..=9);
        let title = self.phrase(title_words);
        let text_words = self.rng.gen_range(40..=70);
        let text = self.prose(text_words);
        let topic_count = self.rng.gen_range(2..=4);
        let mut topics: Vec<String> = Vec::with_capacity(topic_count);
        while topics.len() < topic_count {
            let topic = &self.topics[self.topic_ranks.sample(&mut self.rng)];
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
        let ask_count = self.rng.gen_range(3..=8);
        let asks = (0..ask_count).map(|_| self.ask()).collect();
        let source_words = self.rng.gen_range(3..=8);
        let source_title = self.phrase(source_words);
        let publisher = self.publishers[self.rng.gen_range(0..self.publishers.len())].clone();
        GenInsight {
            id: format!("gen-{i:06}"),
            title,
            text,
            topics,
            asks,
            source_title,
            publisher,
        }
    }
}

/// A TOML basic string.
fn push_toml_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One `[[insight]]` entry, in the layout of `data/insights.toml`.
fn push_toml_insight(out: &mut String, insight: &GenInsight) {
    out.push_str("[[insight]]\nid = ");
    push_toml_str(out, &insight.id);
    out.push_str("\ntitle = ");
    push_toml_str(out, &insight.title);
    out.push_str("\ntext = ");
    push_toml_str(out, &insight.text);
    out.push_str("\ntopics = [");
    for (i, topic) in insight.topics.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_toml_str(out, topic);
    }
    out.push_str("]\nasks = [\n");
    for ask in &insight.asks {
        out.push_str("    ");
        push_toml_str(out, ask);
        out.push_str(",\n");
    }
    out.push_str("]\nsource = { title = ");
    push_toml_str(out, &insight.source_title);
    out.push_str(", publisher = ");
    push_toml_str(out, &insight.publisher);
    out.push_str(" }\n\n");
}

fn generate(shipped: &Library) -> Corpus {
    let started = Instant::now();
    let mut generator = Generator::new(shipped);
    let insights: Vec<GenInsight> = (0..GENERATED).map(|i| generator.insight(i)).collect();
    let per_file = GENERATED.div_ceil(FILES);
    let sources: Vec<(PathBuf, String)> = insights
        .chunks(per_file)
        .enumerate()
        .map(|(f, chunk)| {
            let mut text = String::with_capacity(chunk.len() * 1100);
            text.push_str("# Generated by benches/search.rs: not real insights.\n\n");
            for insight in chunk {
                push_toml_insight(&mut text, insight);
            }
            (PathBuf::from(format!("generated/gen-{f:03}.toml")), text)
        })
        .collect();
    let toml_bytes = sources.iter().map(|(_, t)| t.len()).sum();
    let words: usize = insights
        .iter()
        .map(|i| {
            [&i.title, &i.text]
                .into_iter()
                .chain(&i.asks)
                .map(|f| f.split_whitespace().count())
                .sum::<usize>()
        })
        .sum();
    eprintln!(
        "generated {GENERATED} insights in {FILES} TOML files ({:.1} MiB of TOML, {:.1} words per \
         insight in title + text + asks, vocabulary {VOCABULARY} words of which {} real) in {:.2?}",
        mib(toml_bytes as f64),
        words as f64 / GENERATED as f64,
        real_words(shipped).len(),
        started.elapsed()
    );
    Corpus {
        sources,
        toml_bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------------------------

/// Prints, once per question, what the answer was, so a run shows the benches measure real work.
fn describe_answer(label: &str, answer: &Answer<'_>) {
    eprintln!(
        "{label}: {:?} -> {} (no_close_match: {}, gate margin {:.3})",
        answer.question,
        answer
            .matches
            .iter()
            .map(|m| format!("{} {:.3}", m.insight.id, m.score))
            .collect::<Vec<_>>()
            .join(", "),
        answer.no_close_match,
        answer.explanation.verdict.margin,
    );
}

/// The process's resident set size in bytes (Linux), for the model's memory figure.
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// A deterministic pseudo-random unit vector: stands for an embedded document at scale.
fn random_unit(rng: &mut StdRng) -> Vector {
    let mut v = [0f32; DIM];
    for x in v.iter_mut() {
        *x = rng.gen::<f32>() - 0.5;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.map(|x| x / norm)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    let searcher_cell = OnceCell::new();
    let searcher = || {
        searcher_cell.get_or_init(|| {
            let before = resident_bytes();
            let embedder = Embedder::load_repository_model().unwrap();
            let cache = VectorCache::in_memory(embedder.fingerprint());
            let searcher = Searcher::new(Arc::new(embedder), Arc::new(cache)).unwrap();
            if let (Some(before), Some(after)) = (before, resident_bytes()) {
                eprintln!(
                    "memory: the embedding model loaded (f32 weights, anchors embedded): resident \
                     set +{:.0} MiB",
                    mib(after - before)
                );
            }
            searcher
        })
    };
    let shipped_cell = OnceCell::new();
    let shipped_catalog = || {
        shipped_cell.get_or_init(|| Catalog::new(Arc::new(shipped()), searcher().clone()).unwrap())
    };
    // Built on first use, so that a filtered run (`cargo bench --bench search -- ask/shipped`)
    // does not generate 100,000 insights.
    let corpus_cell = OnceCell::new();
    let corpus = || corpus_cell.get_or_init(|| generate(&shipped()));
    let library_cell = OnceCell::new();
    let library_100k = || {
        library_cell.get_or_init(|| {
            let corpus = corpus();
            let started = Instant::now();
            let library = Library::from_sources(&corpus.sources).unwrap();
            eprintln!(
                "load: {} insights from {:.1} MiB of TOML in {:.2?}",
                library.len(),
                mib(corpus.toml_bytes as f64),
                started.elapsed()
            );
            library
        })
    };
    let index_cell = OnceCell::new();
    let index_100k = || {
        index_cell.get_or_init(|| {
            let library = library_100k();
            let (index, peak, retained) = measure_heap(|| {
                let mut rng = StdRng::seed_from_u64(SEED);
                let docs: Vec<(u32, Vector)> = (0..library.len() as u32)
                    .flat_map(|owner| (0..3).map(move |_| owner))
                    .map(|owner| (owner, random_unit(&mut rng)))
                    .collect();
                let semantic = SemanticIndex::from_documents(library.len(), &docs);
                SearchIndex::from_parts(library.insights(), semantic)
            });
            eprintln!(
                "memory: index of {} insights ({} document vectors + lexical): peak heap {:.1} \
                 MiB, retained {:.1} MiB",
                library.len(),
                index.documents(),
                mib(peak as f64),
                mib(retained as f64)
            );
            index
        })
    };

    // ---- ask on the shipped collection, the question's embedding included ----
    {
        let mut group = c.benchmark_group("ask/shipped");
        for &(name, question) in QUESTIONS {
            let mut described = false;
            group.bench_function(name, |b| {
                let catalog = shipped_catalog();
                if !std::mem::replace(&mut described, true) {
                    describe_answer("ask/shipped", &catalog.ask(question, LIMIT).unwrap());
                }
                b.iter(|| catalog.ask(black_box(question), LIMIT).unwrap())
            });
        }
        group.finish();
    }

    // ---- ask on 100,000 generated insights ----
    {
        let mut group = c.benchmark_group("ask/100k");
        for &(name, question) in QUESTIONS {
            let mut described = false;
            group.bench_function(name, |b| {
                let (library, index, searcher) = (library_100k(), index_100k(), searcher());
                if !std::mem::replace(&mut described, true) {
                    let answer = searcher
                        .ask(index, library.insights(), question, LIMIT)
                        .unwrap();
                    describe_answer("ask/100k", &answer);
                }
                b.iter(|| {
                    searcher
                        .ask(index, library.insights(), black_box(question), LIMIT)
                        .unwrap()
                })
            });
        }
        group.finish();
    }

    // ---- embedding a new insight ----
    {
        let mut group = c.benchmark_group("embed");
        group.bench_function("new_insight", |b| {
            let searcher = searcher();
            let mut new = shipped().insights()[5].clone();
            new.asks.truncate(2);
            let docs: Vec<String> = semantic::documents(&new)
                .into_iter()
                .map(|(_, text)| text)
                .collect();
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            b.iter(|| searcher.embedder().embed(black_box(&refs)).unwrap())
        });
        group.finish();
    }

    // ---- load + index of 100,000 generated insights ----
    {
        let mut group = c.benchmark_group("load_index/100k");
        group.sample_size(10);
        group.sampling_mode(SamplingMode::Flat);
        group.warm_up_time(Duration::from_secs(1));
        group.bench_function("from_sources", |b| {
            let corpus = corpus();
            b.iter_with_large_drop(|| Library::from_sources(black_box(&corpus.sources)).unwrap())
        });
        group.bench_function("lexical_index_build", |b| {
            let library = library_100k();
            b.iter_with_large_drop(|| LexicalIndex::build(black_box(library.insights())))
        });
        group.finish();
    }

    c.final_summary();
}
