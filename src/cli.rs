//! The command line: argument definitions (clap) and the offline commands.
//!
//! `main.rs` only sets up logging and configuration and calls [`execute`]. The offline commands
//! (`ask`, `random`, `topics`, `check`, `next-posts`) print to stdout and report problems on
//! stderr; every failure maps to exit code 2 so scripts can tell "bad input or data" from success.

use std::io::Write;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::insights::search::Answer;
use crate::insights::{Catalog, Insight, Library};
use crate::stats::{chart, Report, MIN_VOTES};
use crate::weekly::schedule::{format_rfc3339_z, WeeklySchedule};

#[derive(Debug, Parser)]
#[command(
    name = "insight-bot",
    version,
    about = "A Discord bot that answers leadership questions with the most relevant insight and posts an insight of the week.",
    long_about = "A Discord bot that answers leadership questions with the most relevant insight and posts an insight of the week.\n\nWith no command it runs the bot (`run`). The other commands work offline on the built-in collection, plus the files at INSIGHTS_PATH when it is set."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Discord bot (needs DISCORD_TOKEN; see README).
    Run,
    /// Answer a question with the most relevant insight.
    Ask(AskArgs),
    /// Print a random insight.
    Random(RandomArgs),
    /// List the topics and how many insights each has.
    Topics,
    /// Validate the collection and print a summary.
    Check,
    /// Validate the deployment settings (environment and .env) without connecting to Discord or
    /// the database: the collection, the embedding model and its cache folder, the database URL,
    /// the shards, the token's shape.
    CheckConfig,
    /// Ask the running bot's `/readyz` at METRICS_ADDR: exit 0 when it is ready (every shard
    /// connected, the database answering), 1 otherwise, with the reason on stderr. For a
    /// container's HEALTHCHECK.
    Healthcheck,
    /// Print the next weekly post instants (UTC) for a schedule.
    NextPosts(NextPostsArgs),
    /// Usage across every server and DMs (or one server, or DMs only): answers, the share with no
    /// close match, the most shown insights, how helpful they were, and answers per week. Reads
    /// the database at DATABASE_URL (a running bot may keep using it).
    Stats(StatsArgs),
    /// Print the reference embedding of a model folder, as JSON for its
    /// `reference_embedding.json` (the self-check every start-up runs): the folder is loaded with
    /// every check but that one, and the sentence embedded by this build. Check the vector
    /// against sentence-transformers before shipping it with the model.
    ModelReference(ModelReferenceArgs),
}

#[derive(Debug, Args)]
pub struct ModelReferenceArgs {
    /// The model folder (config.json, sentence_bert_config.json, vocab.txt, model.safetensors).
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
    /// The sentence to embed.
    #[arg(long, default_value = crate::embedding::self_check::DEFAULT_SENTENCE)]
    pub sentence: String,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// How many days back, today included.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// One server only (its id).
    #[arg(long, conflicts_with = "dms")]
    pub server: Option<u64>,
    /// Direct messages only.
    #[arg(long)]
    pub dms: bool,
    /// Also write the chart of answers per week to this PNG file.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many insights to show, best first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=25))]
    pub top: u16,
    /// Show why: for each candidate its semantic similarity, the document that matched and its
    /// lexical score, and the off-topic gate's decision.
    #[arg(long)]
    pub explain: bool,
    /// The question, in your own words.
    #[arg(required = true, num_args = 1.., value_name = "QUESTION")]
    pub question: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RandomArgs {
    /// Pick from this topic only (see `insight-bot topics`).
    #[arg(long)]
    pub topic: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NextPostsArgs {
    /// Weekday: mon, tue, ... or monday, tuesday, ...
    #[arg(long, default_value = "mon")]
    pub day: String,
    /// Local time, 24-hour HH:MM.
    #[arg(long, default_value = "09:00")]
    pub time: String,
    /// IANA time zone, e.g. Europe/London.
    #[arg(long, default_value = "UTC")]
    pub timezone: String,
    /// Start from this instant (RFC 3339, e.g. 2026-03-01T00:00:00Z); default: now.
    #[arg(long)]
    pub from: Option<String>,
    /// How many instants to print.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub count: u16,
}

/// `insight-bot model-reference DIR`: the folder's reference embedding as JSON on `out`.
pub fn model_reference(args: &ModelReferenceArgs, out: &mut impl Write) -> Result<(), CliError> {
    use crate::embedding::{Embedder, ReferenceEmbedding};
    let embedder = Embedder::load_dir_without_self_check(&args.dir)?;
    let about = format!(
        "Self-check at load (src/embedding/self_check.rs): this sentence's vector as computed by \
         `insight-bot model-reference` {} from {}.",
        env!("CARGO_PKG_VERSION"),
        args.dir.display()
    );
    let reference = ReferenceEmbedding::compute(&embedder, &args.sentence, &about)?;
    // Written through `parse`'s own checks, so a model that embeds to NaN gets no file.
    let json = serde_json::to_string_pretty(&reference)?;
    ReferenceEmbedding::parse(json.as_bytes(), &args.dir.join("(output)"))?;
    writeln!(out, "{json}")?;
    Ok(())
}

/// `insight-bot stats`: `report` as text (and its chart as a PNG file when asked).
pub fn stats(
    report: &Report,
    scope: &str,
    args: &StatsArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    writeln!(out, "Usage, {scope}, {} to {}", report.since, report.until)?;
    writeln!(
        out,
        "answers: {} ({} with no close match, {:.1}%)",
        report.answers,
        report.no_close_match,
        report.no_match_share() * 100.0
    )?;
    writeln!(out, "most shown:")?;
    for line in &report.most_shown {
        writeln!(out, "  {:>7}  {} ({})", line.value, line.id, line.title)?;
    }
    writeln!(out, "helpful (insights with at least {MIN_VOTES} votes):")?;
    for line in &report.helpful {
        let (yes, votes) = line.value;
        writeln!(
            out,
            "  {:>5.1}% of {votes:>5}  {}",
            yes as f64 * 100.0 / votes as f64,
            line.id
        )?;
    }
    writeln!(out, "never shown: {}", report.never_shown.len())?;
    for line in &report.never_shown {
        writeln!(out, "  {}", line.id)?;
    }
    writeln!(out, "answers per week (no close match):")?;
    for week in &report.weeks {
        writeln!(
            out,
            "  {}  {:>7} ({})",
            week.label, week.answered, week.no_match
        )?;
    }
    if let Some(path) = &args.chart {
        let title = format!("Answers per week, {} to {}", report.since, report.until);
        let png = chart::answers_per_week(&title, &report.weeks)?;
        std::fs::write(path, png)
            .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
        writeln!(out, "chart: {}", path.display())?;
    }
    Ok(())
}

/// An error for the user: printed on stderr, exit code 2.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

#[derive(Serialize)]
struct JsonMatch<'a> {
    id: &'a str,
    title: &'a str,
    text: &'a str,
    score: f32,
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    question: &'a str,
    matches: Vec<JsonMatch<'a>>,
    no_close_match: bool,
}

/// The `ask --json` object: `{"question", "matches": [{id, title, text, score}], "no_close_match"}`.
pub fn answer_json(answer: &Answer<'_>) -> String {
    let json = JsonAnswer {
        question: &answer.question,
        matches: answer
            .matches
            .iter()
            .map(|m| JsonMatch {
                id: &m.insight.id,
                title: &m.insight.title,
                text: &m.insight.text,
                // Rounded so the output is readable and stable across platforms' float printing.
                score: (m.score * 1000.0).round() / 1000.0,
            })
            .collect(),
        no_close_match: answer.no_close_match,
    };
    serde_json::to_string(&json).expect("plain strings and numbers always serialize")
}

fn write_insight(out: &mut impl Write, insight: &Insight) -> std::io::Result<()> {
    writeln!(out, "{}  [{}]", insight.title, insight.id)?;
    writeln!(out)?;
    writeln!(out, "{}", insight.text)?;
    writeln!(out)?;
    writeln!(out, "  -- {}", insight.source)?;
    writeln!(out, "  topics: {}", insight.topics.join(", "))
}

/// `ask --explain`: what the question became, the gate's reasoning and every candidate's evidence.
fn write_explanation(out: &mut impl Write, answer: &Answer<'_>) -> std::io::Result<()> {
    let e = &answer.explanation;
    writeln!(out, "question as matched: {}", e.normalised)?;
    for sentence in &e.sentences {
        writeln!(out, "  sentence matched on its own: {sentence}")?;
    }
    let v = &e.verdict;
    writeln!(
        out,
        "gate: {} (closest insight {:.3}, closest leadership question {:.3}, closest off-topic message {:.3}: {:?}; margin {:.3}, needed {:.3} and an insight at {:.3} or more)",
        if v.on_topic { "on topic" } else { "no close match" },
        v.insight_similarity,
        v.anchor_similarity,
        v.off_topic.1,
        v.off_topic.0,
        v.margin,
        crate::insights::search::gate::MARGIN,
        crate::insights::search::gate::FLOOR,
    )?;
    let words = |w: &[String]| {
        if w.is_empty() {
            "-".to_string()
        } else {
            w.join(" ")
        }
    };
    writeln!(
        out,
        "lexical evidence: domain words {}, collection words {}, unknown {}",
        words(&e.evidence.strong),
        words(&e.evidence.weak),
        words(&e.evidence.unknown)
    )?;
    writeln!(
        out,
        "candidates (score = similarity + {} x lexical):",
        crate::insights::search::LEXICAL_WEIGHT
    )?;
    for c in &e.candidates {
        writeln!(
            out,
            "  {:<28} score {:.3}  similarity {:.3} ({})  lexical {:.2} (bm25 {:.2})",
            c.id, c.score, c.similarity, c.matched, c.lexical, c.bm25
        )?;
    }
    writeln!(out)
}

pub fn ask(catalog: &Catalog, args: &AskArgs, out: &mut impl Write) -> Result<(), CliError> {
    let question = args.question.join(" ");
    let answer = catalog.ask(&question, args.top as usize)?;
    if args.json {
        writeln!(out, "{}", answer_json(&answer))?;
        return Ok(());
    }
    if args.explain {
        write_explanation(out, &answer)?;
    }
    if answer.no_close_match {
        writeln!(
            out,
            "No close match for {:?} in the collection.\nTry other words, or see `insight-bot topics` and `insight-bot random --topic TOPIC`.",
            answer.question
        )?;
        return Ok(());
    }
    for (rank, m) in answer.matches.iter().enumerate() {
        if answer.matches.len() > 1 {
            writeln!(out, "#{} (score {:.2})", rank + 1, m.score)?;
        }
        write_insight(out, m.insight)?;
        if rank + 1 < answer.matches.len() {
            writeln!(out)?;
        }
    }
    Ok(())
}

pub fn random(library: &Library, args: &RandomArgs, out: &mut impl Write) -> Result<(), CliError> {
    let mut rng = rand::thread_rng();
    let topic = args.topic.as_deref().map(str::trim);
    let insight = library.random(topic, None, &mut rng).ok_or_else(|| {
        let known: Vec<&str> = library.topics().map(|(t, _)| t).collect();
        CliError(format!(
            "unknown topic {:?}; the topics are: {}",
            topic.unwrap_or_default(),
            known.join(", ")
        ))
    })?;
    if args.json {
        let json = serde_json::json!({
            "id": insight.id, "title": insight.title, "text": insight.text,
            "topics": insight.topics, "source": insight.source.to_string(),
        });
        writeln!(out, "{json}")?;
    } else {
        write_insight(out, insight)?;
    }
    Ok(())
}

pub fn topics(library: &Library, out: &mut impl Write) -> Result<(), CliError> {
    for (topic, count) in library.topics() {
        writeln!(out, "{topic}\t{count}")?;
    }
    Ok(())
}

pub fn check(library: &Library, path: &str, out: &mut impl Write) -> Result<(), CliError> {
    let asks: usize = library.insights().iter().map(|i| i.asks.len()).sum();
    writeln!(
        out,
        "{path}: OK: {} insights, {} topics, {asks} asks",
        library.len(),
        library.topics().count()
    )?;
    for insight in library.insights() {
        writeln!(out, "  {:<28} {}", insight.id, insight.title)?;
    }
    Ok(())
}

pub fn next_posts(args: &NextPostsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let schedule = WeeklySchedule::parse(&args.day, &args.time, &args.timezone)?;
    let from = match &args.from {
        None => chrono::Utc::now(),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text.trim())
            .map_err(|e| {
                CliError(format!(
                    "--from {text:?} is not an RFC 3339 instant ({e}); for example 2026-03-01T00:00:00Z"
                ))
            })?
            .with_timezone(&chrono::Utc),
    };
    for slot in schedule.next_slots(from, args.count as usize) {
        writeln!(out, "{}", format_rfc3339_z(slot.at))?;
    }
    Ok(())
}
