//! The command line: argument definitions (clap) and the offline commands.
//!
//! `main.rs` only sets up logging and configuration and calls [`execute`]. The offline commands
//! (`ask`, `random`, `topics`, `check`, `packs`, `next-posts`) print to stdout and report problems on
//! stderr; every failure maps to exit code 2 so scripts can tell "bad input or data" from success.

use std::io::Write;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::insights::duplicates::{near_duplicates, NEAR_DUPLICATE};
use crate::insights::packs::{describe, BUILTIN_PACKS};
use crate::insights::search::{Answer, Confidence};
use crate::insights::{Catalog, Insight, Library, PackSelection};
use crate::stats::{chart, Report, MIN_VOTES};
use crate::weekly::schedule::{
    format_rfc3339_z, parse_repeat, parse_time, parse_weekday, parse_zone,
};

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
    /// Run the Discord bot (needs DISCORD_TOKEN; see docs/operations.md).
    Run,
    /// Answer a question with the most relevant insight.
    Ask(AskArgs),
    /// Print a random insight.
    Random(RandomArgs),
    /// List the topics and how many insights each has.
    Topics,
    /// Validate the collection and print a summary, with a warning for each pair of insights
    /// that say nearly the same thing (near-duplicates: cosine >= 0.85 of title and text).
    Check,
    /// List the built-in packs: id, title, how many insights, and whether INSIGHTS_PACKS serves
    /// it.
    Packs,
    /// Validate the deployment settings (environment and .env) without connecting to Discord or
    /// the database: the collection, the embedding model and its cache folder, the database URL,
    /// the shards, the token's shape.
    CheckConfig,
    /// Ask the running bot's `/readyz` at METRICS_ADDR: exit 0 when it is ready (every shard
    /// connected, the database answering), 1 otherwise, with the reason on stderr. For a
    /// container's HEALTHCHECK.
    Healthcheck,
    /// Print the next post instants (UTC) for a schedule (weekly by default).
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
    /// Say why, in plain sentences: which example question or text the answer is closest to,
    /// and what to add to change it. `--explain=debug` shows the figures instead: every
    /// candidate's similarity, the document that matched, its lexical score and the gate's
    /// margins.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "plain", require_equals = true)]
    pub explain: Option<ExplainLevel>,
    /// The question, in your own words.
    #[arg(required = true, num_args = 1.., value_name = "QUESTION")]
    pub question: Vec<String>,
}

/// How much `ask --explain` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainLevel {
    /// Sentences for a curator.
    Plain,
    /// The figures, for whoever tunes the ranking.
    Debug,
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
    /// How often: weekly, every-2-weeks, weekdays or daily.
    #[arg(long, default_value = "weekly")]
    pub repeat: String,
    /// Weekday: mon, tue, ... or monday, tuesday, ... (weekly and every-2-weeks only).
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
    /// Also show each instant in the schedule's zone, with its offset, beside UTC (to check a
    /// DST change by eye). Without it: one RFC 3339 UTC instant a line, for scripts.
    #[arg(long)]
    pub local: bool,
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

/// The error of a write to a closed pipe (`insight-bot topics | head -1`): not a failure of the
/// command, so `main` ends quietly with the status a shell gives a command stopped by SIGPIPE,
/// as `cat` does.
pub const BROKEN_PIPE: &str = "the reader of the output went away (broken pipe)";

impl<E: std::error::Error + 'static> From<E> for CliError {
    fn from(e: E) -> Self {
        let io = (&e as &(dyn std::error::Error + 'static)).downcast_ref::<std::io::Error>();
        if io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return CliError(BROKEN_PIPE.to_string());
        }
        CliError(e.to_string())
    }
}

#[derive(Serialize)]
struct JsonMatch<'a> {
    id: &'a str,
    title: &'a str,
    text: &'a str,
    topics: &'a [String],
    source: String,
    score: f32,
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    question: &'a str,
    confidence: &'static str,
    matches: Vec<JsonMatch<'a>>,
    no_close_match: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<serde_json::Value>,
}

/// Rounded so the output is readable and stable across platforms' float printing.
fn rounded(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// The `ask --json` object: `{"question", "confidence": "strong" | "weak" | "none", "matches":
/// [{id, title, text, topics, source, score}], "no_close_match"}` (true exactly when confidence
/// is "none"), with `"explanation"` (what `--explain` prints, as data) when `explain`.
pub fn answer_json(answer: &Answer<'_>, explain: bool) -> String {
    let json = JsonAnswer {
        question: &answer.question,
        confidence: answer.confidence.as_str(),
        matches: answer
            .matches
            .iter()
            .map(|m| JsonMatch {
                id: &m.insight.id,
                title: &m.insight.title,
                text: &m.insight.text,
                topics: &m.insight.topics,
                source: m.insight.source.to_string(),
                score: rounded(m.score),
            })
            .collect(),
        no_close_match: answer.no_close_match,
        explanation: explain.then(|| explanation_json(answer)),
    };
    serde_json::to_string(&json).expect("plain strings and numbers always serialize")
}

/// `--explain` as data: the question as matched, the gate's figures and every candidate's.
fn explanation_json(answer: &Answer<'_>) -> serde_json::Value {
    let e = &answer.explanation;
    let v = &e.verdict;
    serde_json::json!({
        "normalised": e.normalised,
        "sentences": e.sentences,
        "gate": {
            "on_topic": v.on_topic,
            "insight_similarity": rounded(v.insight_similarity),
            "leadership_question": {"text": v.on_topic_anchor.0, "similarity": rounded(v.on_topic_anchor.1)},
            "off_topic_message": {"text": v.off_topic.0, "similarity": rounded(v.off_topic.1)},
            "margin": rounded(v.margin),
            "lead": rounded(v.lead),
            "other_language": e.other_language,
            "no_known_word": e.no_known_word,
        },
        "uncovered": e.uncovered.as_ref().map(|u| serde_json::json!({
            "leadership_question": u.anchor,
            "similarity": rounded(u.similarity),
            "collection_coverage": rounded(u.coverage),
        })),
        "evidence": {
            "domain_words": e.evidence.strong,
            "collection_words": e.evidence.weak,
            "unknown_words": e.evidence.unknown,
        },
        "candidates": e.candidates.iter().map(|c| serde_json::json!({
            "id": c.id,
            "score": rounded(c.score),
            "similarity": rounded(c.similarity),
            "matched": c.matched,
            "lexical": rounded(c.lexical),
            "bm25": rounded(c.bm25),
        })).collect::<Vec<_>>(),
    })
}

/// A question as `ask` echoes it: one line (control characters as spaces), direction controls
/// dropped, at most 80 characters with "…" when cut, written as text (an emoji's joiner stays a
/// joiner, not `\u{200d}`). A 10,000-character message is not printed back whole.
fn echoed(question: &str) -> String {
    const SHOWN: usize = 80;
    let line: String = question
        .chars()
        .filter(|c| !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= SHOWN {
        return line;
    }
    let mut cut: String = line.chars().take(SHOWN - 1).collect();
    cut.push('…');
    cut
}

/// The width output is wrapped to: `COLUMNS` when the shell exports it, else 80 (a pipe, or a
/// terminal that does not say), never under 40.
fn output_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .unwrap_or(80)
        .max(40)
}

/// `text` wrapped at spaces to `width` characters a line, its own line breaks kept; a word longer
/// than the width stands on a line of its own.
fn wrap(text: &str, width: usize) -> String {
    let mut wrapped = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if !line.is_empty() && needed > width {
                wrapped.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        wrapped.push(line);
    }
    wrapped.join("\n")
}

fn write_insight(out: &mut impl Write, insight: &Insight) -> std::io::Result<()> {
    let width = output_width();
    writeln!(out, "{}  [{}]", insight.title, insight.id)?;
    writeln!(out)?;
    writeln!(out, "{}", wrap(&insight.text, width))?;
    writeln!(out)?;
    writeln!(out, "  -- {}", insight.source)?;
    writeln!(out, "  topics: {}", insight.topics.join(", "))
}

/// `ask --explain`: why, in sentences a curator can act on, without the figures.
fn write_plain_explanation(
    out: &mut impl Write,
    catalog: &Catalog,
    answer: &Answer<'_>,
) -> std::io::Result<()> {
    let e = &answer.explanation;
    let title = |id: &str| {
        catalog
            .library()
            .get(id)
            .map_or_else(|| id.to_string(), |i| i.title.clone())
    };
    let through = |matched: &str| match matched.strip_prefix("ask: ") {
        Some(ask) => format!("the example question \"{ask}\""),
        None => "its title and text".to_string(),
    };
    let best = e.candidates.first();
    let why = match answer.confidence {
        Confidence::None if e.other_language => {
            "none: the question is not in English, and insight-bot understands English only for now."
                .to_string()
        }
        Confidence::None if e.no_known_word => {
            "none: the question has no word of English in it to match.".to_string()
        }
        Confidence::None if answer.matches.is_empty() && best.is_none() => {
            "none: the collection has no insight.".to_string()
        }
        Confidence::None => "none: the question reads more like a message about something else \
             than like a question about leading people."
            .to_string(),
        Confidence::Weak => match (best, &e.uncovered) {
            (Some(best), Some(u)) => format!(
                "weak: the closest insight is \"{}\", through {}, but the question is nearer to \
                 topics this collection has no insight on, such as \"{}\".",
                title(&best.id),
                through(&best.matched),
                u.anchor
            ),
            _ => "weak: the closest insight may not fit.".to_string(),
        },
        Confidence::Strong => match best {
            Some(best) => format!(
                "strong: matched \"{}\" because the question is closest to {}.",
                title(&best.id),
                through(&best.matched)
            ),
            None => "strong.".to_string(),
        },
    };
    writeln!(out, "{}", wrap(&why, output_width()))?;
    if let Some(next) = e.candidates.get(1).filter(|_| !answer.no_close_match) {
        writeln!(
            out,
            "{}",
            wrap(
                &format!(
                    "Next closest: \"{}\", through {}.",
                    title(&next.id),
                    through(&next.matched)
                ),
                output_width()
            )
        )?;
    }
    writeln!(
        out,
        "{}",
        wrap(
            "To change this, add the question, in the words people use, to the `asks` of the \
             insight that should answer it (in a server: /insights edit), or write that insight.",
            output_width()
        )
    )?;
    writeln!(out)
}

/// `ask --explain=debug`: what the question became, the gate's reasoning and every candidate's
/// evidence.
fn write_explanation(out: &mut impl Write, answer: &Answer<'_>) -> std::io::Result<()> {
    let e = &answer.explanation;
    writeln!(out, "question as matched: {}", e.normalised)?;
    for sentence in &e.sentences {
        writeln!(out, "  sentence matched on its own: {sentence}")?;
    }
    let v = &e.verdict;
    writeln!(
        out,
        "confidence: {}{}{}",
        answer.confidence.as_str(),
        if e.other_language {
            " (not English)"
        } else {
            ""
        },
        if e.no_known_word {
            " (no known word)"
        } else {
            ""
        },
    )?;
    writeln!(
        out,
        "gate: {} (closest insight {:.3}; closest leadership question {:.3}: {:?}; closest off-topic message {:.3}: {:?}; \
         neighbourhood margin {:.3}, needed {:.3}; or the insight's lead over the off-topic message {:.3}, needed {:.3})",
        if v.on_topic { "on topic" } else { "off topic" },
        v.insight_similarity,
        v.on_topic_anchor.1,
        v.on_topic_anchor.0,
        v.off_topic.1,
        v.off_topic.0,
        v.margin,
        crate::insights::search::gate::MARGIN,
        v.lead,
        crate::insights::search::gate::LEAD,
    )?;
    if let Some(u) = &e.uncovered {
        writeln!(
            out,
            "uncovered topic: {:?} at {:.3}, {:.3} nearer than the closest insight (weak from {:.2}); \
             the collection's nearest document to it is at {:.3} (covered from {:.2})",
            u.anchor,
            u.similarity,
            u.similarity - v.insight_similarity,
            crate::insights::search::gate::UNCOVERED_LEAD,
            u.coverage,
            crate::insights::search::gate::COVERED,
        )?;
    }
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
        writeln!(out, "{}", answer_json(&answer, args.explain.is_some()))?;
        return Ok(());
    }
    match args.explain {
        Some(ExplainLevel::Debug) => write_explanation(out, &answer)?,
        Some(ExplainLevel::Plain) => write_plain_explanation(out, catalog, &answer)?,
        None => {}
    }
    if answer.explanation.other_language {
        writeln!(
            out,
            "insight-bot understands English only for now: ask again in English, for example \"How do I give feedback to my team?\"."
        )?;
        return Ok(());
    }
    if answer.no_close_match {
        writeln!(
            out,
            "No close match for \"{}\" in the collection.\nTry other words, or see `insight-bot topics` and `insight-bot random --topic TOPIC`.",
            echoed(&answer.question)
        )?;
        return Ok(());
    }
    let outcome = match answer.confidence {
        Confidence::Weak => {
            "weak: this is the closest insight, but it may not fit: the collection has no insight on this topic."
        }
        _ => "strong: the insight fits the question.",
    };
    writeln!(out, "{}\n", wrap(outcome, output_width()))?;
    if answer.matches.len() > 1 {
        writeln!(
            out,
            "(score: similarity to the question, 0 to 1, plus up to {} for shared words)\n",
            crate::insights::search::LEXICAL_WEIGHT
        )?;
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

/// One line a topic: the topic, padded to a column, and how many insights it has.
pub fn topics(library: &Library, out: &mut impl Write) -> Result<(), CliError> {
    let width = library.topics().map(|(t, _)| t.len()).max().unwrap_or(0);
    for (topic, count) in library.topics() {
        let noun = if count == 1 { "insight" } else { "insights" };
        writeln!(out, "{topic:<width$}  {count} {noun}")?;
    }
    Ok(())
}

/// The collection's summary and every insight, then its near-duplicates, each a warning: the
/// exit status stays 0 (see [`crate::insights::duplicates`] for why it is not an error).
pub fn check(catalog: &Catalog, path: &str, out: &mut impl Write) -> Result<(), CliError> {
    let library = catalog.library();
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
    let pairs = near_duplicates(catalog)
        .map_err(|e| CliError(format!("cannot compare the insights: {e}")))?;
    if pairs.is_empty() {
        writeln!(
            out,
            "near-duplicates (cosine >= {NEAR_DUPLICATE:.2} of title and text): none"
        )?;
    }
    for pair in &pairs {
        writeln!(
            out,
            "warning: near-duplicates: {} and {} (cosine {:.3} >= {NEAR_DUPLICATE:.2}): merge them, or reword one so each says something of its own",
            pair.first, pair.second, pair.cosine
        )?;
    }
    Ok(())
}

/// One line a built-in pack: id, title, how many insights, and whether it is served
/// (`selection`; `None` when `INSIGHTS_BUILTIN=off` serves none).
pub fn packs(
    library: &Library,
    selection: Option<&PackSelection>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let counts = library.packs();
    let rows: Vec<(String, String, usize, bool)> = BUILTIN_PACKS
        .iter()
        .map(|p| {
            let title = describe(p.id).map(|d| d.title).unwrap_or_default();
            let count = counts
                .iter()
                .find(|(id, _)| *id == p.id)
                .map_or(0, |&(_, n)| n);
            let served = selection.is_some_and(|s| s.includes(p.id));
            (p.id.to_string(), title, count, served)
        })
        .collect();
    let id_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let title_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    for (id, title, count, served) in &rows {
        let noun = if *count == 1 { "insight " } else { "insights" };
        let mark = if *served { "selected" } else { "-" };
        writeln!(
            out,
            "{id:<id_width$}  {title:<title_width$}  {count:>3} {noun}  {mark}"
        )?;
    }
    let served: usize = rows.iter().filter(|r| r.3).map(|r| r.2).sum();
    let chosen = match selection {
        None => "INSIGHTS_BUILTIN=off: no pack is served".to_string(),
        Some(PackSelection::All) => "INSIGHTS_PACKS=all (the default)".to_string(),
        Some(s) => format!("INSIGHTS_PACKS={s}"),
    };
    writeln!(
        out,
        "{} packs, {} insights; {served} served ({chosen})",
        rows.len(),
        library.len()
    )?;
    Ok(())
}

pub fn next_posts(args: &NextPostsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let repeat = parse_repeat(&args.repeat)?;
    let (weekday, time, zone) = (
        parse_weekday(&args.day)?,
        parse_time(&args.time)?,
        parse_zone(&args.timezone)?,
    );
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
    let schedule = repeat.schedule(weekday, time, zone, from);
    for slot in schedule.next_slots(from, args.count as usize) {
        if args.local {
            let local = slot.at.with_timezone(&schedule.zone);
            writeln!(
                out,
                "{}  {} ({})",
                format_rfc3339_z(slot.at),
                local.format("%a %Y-%m-%d %H:%M %:z"),
                schedule.zone.name()
            )?;
        } else {
            writeln!(out, "{}", format_rfc3339_z(slot.at))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces_within_the_width_and_keeps_its_line_breaks() {
        let text =
            "Delegate the outcome, not the steps: say what done looks like.\n- first\n- second";
        let wrapped = wrap(text, 20);
        assert_eq!(
            wrapped,
            "Delegate the\noutcome, not the\nsteps: say what done\nlooks like.\n- first\n- second"
        );
        assert!(wrapped.lines().all(|l| l.chars().count() <= 20));
        // A word longer than the line stands alone, uncut.
        let long = format!("a {}", "x".repeat(30));
        assert_eq!(wrap(&long, 10), format!("a\n{}", "x".repeat(30)));
    }
}
