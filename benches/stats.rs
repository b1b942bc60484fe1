//! `/insights stats` over a server with 1,000,000 recorded answers, and what recording costs.
//!
//! Run: `cargo bench --bench stats` (release). SQLite, in a temporary directory; with
//! `BENCH_DATABASE_URL=postgres://…` set, the same on that (empty, throwaway) PostgreSQL database
//! too. Figures are printed; there is no timing assertion.
//!
//! The history: one server, 1,000,000 answers spread evenly over the last 365 days, each giving
//! one of 60 insights (the 11 shipped and 49 of the server's own ids, drawn by a Zipf law) or, one
//! in five, no close match; 50,000 of them voted on (70% helpful), 20,000 showings; plus 200,000
//! answers in 100 other servers and DMs, which a server's report must skip. Answers are written
//! with `record_answers` in batches of 10,000.
//!
//! What is measured:
//! - **`/insights stats`**: what the command does between the click and the reply — the store's
//!   `usage_stats` for the period, `Report::build` over the server's collection, and the PNG
//!   chart — for 30 days (the default) and 365 days (the longest); each part alone too.
//! - **Recording**: one `record_answers` of a single answer (what runs in the background after
//!   every answer) and one `record_vote` (what a click waits for), on the filled database.
//! - **`/insights gaps`** over 300 kept questions of 1,000 characters (generated prose): as it was
//!   (every listing embedded them all, then grouped) and as it is (the vectors stored with the
//!   questions are read, then grouped; no model call, checked).
//!
//! The gap listing, measured (release, 2 cores shared with other builds, so the model's figure is
//! high; the finding measured 27.6 s on a quiet machine): embedding all 300 then grouping 54.0 s;
//! reading the stored vectors then grouping 8.6 ms (median of 30). The groups differ slightly
//! (23 and 25) because the stored vectors are 8-bit: on this near-random prose some pairs sit at
//! the 0.75 threshold, where a rounding of about 0.003 tips them.
//!
//! Measured when it was written (release, 2 cores, quiet): `/insights stats` over 30 days 6.9-8.0
//! ms on SQLite (usage_stats 1.3-1.5, Report::build 0.05, the PNG 5.7-6.4) and 6.5 ms on
//! PostgreSQL; over 365 days 24.5-25.2 ms and 33.6 ms. Recording an answer 0.03 ms (SQLite) /
//! 0.43 ms (PostgreSQL), a vote 0.02 / 0.56 ms. Filling 1.2 million answers takes 21 s on SQLite.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use insight_bot::config::DatabaseUrl;
use insight_bot::embedding::{Embedder, Vector};
use insight_bot::insights::{Insight, Library};
use insight_bot::stats::gap_vectors::{self, QuestionModel};
use insight_bot::stats::{chart, gaps, Report};
use insight_bot::store::{NewAnswer, Store, UsageScope, Vote};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "common/text.rs"]
mod text;

const GUILD: u64 = 1_100_000_000_000_000_100;
const ANSWERS: u64 = 1_000_000;
const OTHERS: u64 = 200_000;
const VOTES: u64 = 50_000;
const SHOWINGS: u64 = 20_000;
const BATCH: usize = 10_000;
const RUNS: usize = 30;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The server's collection: the shipped insights and 49 of its own.
fn library() -> Library {
    let mut insights = Library::builtin().expect("built-in").insights().to_vec();
    for n in 0..49 {
        insights.push(Insight {
            id: format!("own-{n}"),
            title: format!("Own insight number {n}"),
            text: "A server's own insight, for the report's titles.".into(),
            topics: vec!["general".into()],
            pack: None,
            ..insights[0].clone()
        });
    }
    Library::from_insights(insights)
}

fn fill(store: &Store, library: &Library, today: NaiveDate) -> Duration {
    let started = Instant::now();
    let db = store.blocking();
    let ids: Vec<String> = library.insights().iter().map(|i| i.id.clone()).collect();
    let weights: Vec<f64> = (1..=ids.len())
        .map(|r| 1.0 / (r as f64).powf(1.07))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut rng = StdRng::seed_from_u64(11);
    let pick = |rng: &mut StdRng| {
        let mut x = rng.gen::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            x -= w;
            if x <= 0.0 {
                return i;
            }
        }
        ids.len() - 1
    };
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..ANSWERS + OTHERS {
        let guild = if n < ANSWERS {
            Some(GUILD)
        } else if n % 10 == 0 {
            None
        } else {
            Some(GUILD + 1 + n % 100)
        };
        let no_match = rng.gen_ratio(1, 5);
        batch.push(NewAnswer {
            id: n + 1,
            guild_id: guild,
            day: today - chrono::Duration::days((n % 365) as i64),
            insight_id: (!no_match).then(|| ids[pick(&mut rng)].clone()),
            no_close_match: no_match,
            weak: false,
            question: None,
            question_vector: None,
        });
        if batch.len() == BATCH {
            db.record_answers(&batch).expect("record answers");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        db.record_answers(&batch).expect("record answers");
    }
    for n in 0..VOTES {
        let answer = 1 + (n * 19) % ANSWERS;
        let vote = if n % 10 < 7 {
            Vote::Helpful
        } else {
            Vote::NotHelpful
        };
        // Cast on the answer's day (answer n + 1 was given `n % 365` days ago).
        let cast_on = today - chrono::Duration::days(((answer - 1) % 365) as i64);
        db.record_vote(answer, &[(n % 251) as u8; 32], vote, cast_on)
            .expect("vote");
    }
    for n in 0..SHOWINGS {
        let day = today - chrono::Duration::days((n % 365) as i64);
        db.record_shown(GUILD, &ids[(n as usize) % ids.len()], day)
            .expect("shown");
    }
    started.elapsed()
}

fn measure(name: &str, store: &Store, library: &Arc<Library>, today: NaiveDate) {
    for days in [30i64, 365] {
        let since = today - chrono::Duration::days(days - 1);
        let mut read = Vec::new();
        let mut build = Vec::new();
        let mut draw = Vec::new();
        let mut whole = Vec::new();
        for _ in 0..RUNS {
            let t0 = Instant::now();
            let usage = store
                .blocking()
                .usage_stats(UsageScope::Server(GUILD), since, today)
                .expect("usage");
            let t1 = Instant::now();
            let report = Report::build(since, today, &usage.days, &usage.insights, library);
            let t2 = Instant::now();
            let png = chart::answers_per_week("Answers per week", &report.weeks).expect("chart");
            let t3 = Instant::now();
            assert!(report.answers > 0 && png.len() > 1000);
            read.push(t1 - t0);
            build.push(t2 - t1);
            draw.push(t3 - t2);
            whole.push(t3 - t0);
        }
        println!(
            "{name}: /insights stats over {days} days: {:.1} ms (usage_stats {:.1} ms, Report::build {:.3} ms, chart {:.1} ms), medians of {RUNS}",
            ms(median(whole)),
            ms(median(read)),
            ms(median(build)),
            ms(median(draw)),
        );
    }
    let mut one_answer = Vec::new();
    let mut one_vote = Vec::new();
    for n in 0..200u64 {
        let id = 10_000_000 + n;
        let t0 = Instant::now();
        store
            .blocking()
            .record_answers(&[NewAnswer {
                id,
                guild_id: Some(GUILD),
                day: today,
                insight_id: Some("trust-and-delegate".into()),
                no_close_match: false,
                weak: false,
                question: None,
                question_vector: None,
            }])
            .expect("answer");
        let t1 = Instant::now();
        store
            .blocking()
            .record_vote(id, &[7; 32], Vote::Helpful, today)
            .expect("vote");
        one_answer.push(t1 - t0);
        one_vote.push(t1.elapsed());
    }
    println!(
        "{name}: record_answers of one answer {:.2} ms, record_vote {:.2} ms (medians of 200; written off the answer's path)",
        ms(median(one_answer)),
        ms(median(one_vote)),
    );
}

/// Kept questions a `/insights gaps` listing reads (the bot's MAX_GAPS_READ).
const GAPS: usize = 300;

/// The model as a listing of stored vectors needs it: its fingerprint, and never a call.
struct StoredOnly(u64);

impl QuestionModel for StoredOnly {
    fn fingerprint(&self) -> u64 {
        self.0
    }

    fn embed_question(&self, _: &str) -> Result<Vector, String> {
        Err("a listing of stored vectors embedded a question".into())
    }
}

/// `/insights gaps` over 300 kept questions of 1,000 characters, as it was (every listing
/// embedded them all, then grouped) and as it is (the vectors stored with them are read, then
/// grouped); both without Discord.
fn measure_gap_listing(library: &Library, today: NaiveDate) {
    let embedder = Embedder::load_repository_model().expect("the repository's model");
    let words = text::real_words(library);
    let zipf = text::Zipf::new(words.len(), 1.0);
    let mut rng = StdRng::seed_from_u64(300);
    let questions: Vec<String> = (0..GAPS)
        .map(|_| {
            text::prose(&mut rng, &words, &zipf, 250)
                .chars()
                .take(1000)
                .collect()
        })
        .collect();
    let refs: Vec<&str> = questions.iter().map(String::as_str).collect();

    let started = Instant::now();
    let vectors = embedder.embed(&refs).expect("embed");
    let groups = gaps::group(&questions, &vectors);
    let before = started.elapsed();

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("gaps.db")).expect("open SQLite");
    let db = store.blocking();
    db.set_gaps(GUILD, true).expect("gaps on");
    let answers: Vec<NewAnswer> = questions
        .iter()
        .zip(&vectors)
        .enumerate()
        .map(|(i, (question, vector))| NewAnswer {
            id: i as u64 + 1,
            guild_id: Some(GUILD),
            day: today,
            insight_id: None,
            no_close_match: true,
            weak: false,
            question: Some(question.clone()),
            question_vector: Some(gap_vectors::encode(vector, embedder.fingerprint())),
        })
        .collect();
    db.record_answers(&answers).expect("record");
    let model = StoredOnly(embedder.fingerprint());
    let since = today - chrono::Duration::days(30);
    let mut times = Vec::with_capacity(RUNS);
    let mut grouped = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let listed = gap_vectors::gaps_with_vectors(db, GUILD, since, GAPS, &model).expect("list");
        let questions: Vec<String> = listed.gaps.iter().map(|g| g.question.clone()).collect();
        grouped = gaps::group(&questions, &listed.vectors).len();
        times.push(started.elapsed());
        assert_eq!((listed.gaps.len(), listed.embedded), (GAPS, 0));
    }
    println!(
        "gaps: listing {GAPS} questions of 1,000 characters: embedding them all {:.0} ms ({} \
         groups); reading the stored vectors {:.2} ms median ({grouped} groups)",
        ms(before),
        groups.len(),
        ms(median(times))
    );
}

fn main() {
    let today = chrono::Utc::now().date_naive();
    let library = Arc::new(library());
    measure_gap_listing(&library, today);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("stats.db");
    let store = Store::open(&path).expect("open SQLite");
    let filled = fill(&store, &library, today);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "sqlite: filled {} answers, {VOTES} votes, {SHOWINGS} showings in {:.1} s; {:.0} MiB",
        ANSWERS + OTHERS,
        filled.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );
    measure("sqlite", &store, &library, today);
    if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
        let store = Store::connect(&DatabaseUrl::Postgres(url)).expect("connect PostgreSQL");
        let filled = fill(&store, &library, today);
        println!("postgres: filled in {:.1} s", filled.as_secs_f64());
        measure("postgres", &store, &library, today);
    }
}
