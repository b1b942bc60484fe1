//! The `insight-bot` binary: parse the command line, set up logging and configuration, and hand
//! over to the library. Every error ends here, printed on stderr, with exit code 2.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use std::sync::Arc;

use clap::Parser;
use insight_bot::bot::{self, BotError, BotSettings};
use insight_bot::cli::{self, Cli, CliError, Command};
use insight_bot::config::{Config, DatabaseUrl};
use insight_bot::embedding::cache::VectorCache;
use insight_bot::embedding::{Embedder, ModelFiles, MODEL_DIR};
use insight_bot::insights::library::LoadError;
use insight_bot::insights::search::Searcher;
use insight_bot::insights::{Catalog, Library, PackSelection};
use insight_bot::redact::{redact_url, redact_urls_in, redacted_stderr};
use insight_bot::store::Store;
use insight_bot::weekly::clock::SystemClock;
use insight_bot::weekly::poster::PosterOptions;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A HEALTHCHECK reads 1 as unhealthy and reserves 2: every failure of this one is 1.
    let failure = match cli.command {
        Some(Command::Healthcheck) => ExitCode::FAILURE,
        _ => ExitCode::from(2),
    };
    match execute(cli) {
        Ok(code) => code,
        // 128 + SIGPIPE, what a shell reports for `cat` in the same place; nothing printed.
        Err(e) if e.0 == cli::BROKEN_PIPE => ExitCode::from(141),
        Err(e) => {
            // A library's error may quote a URL with its credentials (reqwest does). A hint's
            // `postgres://user:<password>@…` stays: a `<` ends a URL in text.
            eprintln!("error: {}", redact_urls_in(&e.to_string()));
            failure
        }
    }
}

fn init_tracing() -> Result<(), CliError> {
    // Logs go to stderr so that stdout stays clean for `ask --json` and friends.
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).map_err(|e| {
            CliError(format!(
                "RUST_LOG: {spec:?} is not a log filter ({e}); use e.g. info or insight_bot=debug"
            ))
        })?,
        _ => EnvFilter::new("info"),
    };
    // Colours only for a person at a terminal: piped into a file or a log collector, escape
    // codes are noise.
    let colours = std::io::stderr().is_terminal();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Through the redactor: serenity's and reqwest's errors name the URL they failed on,
        // DISCORD_API_BASE's user info included.
        .with_writer(redacted_stderr);
    match log_format()? {
        LogFormat::Text => logs.with_ansi(colours).init(),
        // One object a line: time, level, target, message and the event's fields at the top
        // level, for a log collector; no colours.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .init(),
    }
    Ok(())
}

/// How logs are written: `LOG_FORMAT`.
enum LogFormat {
    Text,
    Json,
}

/// `LOG_FORMAT`: `text` (the default) or `json`. Read here, before the rest of the configuration,
/// because the configuration's own problems are logged.
fn log_format() -> Result<LogFormat, CliError> {
    match std::env::var("LOG_FORMAT") {
        Err(_) => Ok(LogFormat::Text),
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(CliError(format!(
                "LOG_FORMAT: {value:?} is not a log format: use text (the default, for people) or json (one object a line, for a log collector)"
            ))),
        },
    }
}

fn load_library(config: &Config) -> Result<Library, CliError> {
    let packs = config.builtin_insights.then_some(&config.packs);
    Library::load_collection(packs, config.insights_path.as_deref()).map_err(|e| match e {
        LoadError::Path { .. } => CliError(format!("INSIGHTS_PATH: {e}")),
        LoadError::Invalid { .. } => CliError(format!("cannot load the insight collection:\n{e}")),
    })
}

/// The embedding model's files, built into the binary (and only into it: test binaries that link
/// the library do not carry 110 MB each), so that an installed `insight-bot` needs nothing beside
/// it: one file to copy, and no way to run a binary against another version's model folder.
/// `EMBEDDING_MODEL_PATH` loads another copy instead. The shards are the ones
/// `models/all-mpnet-base-v2/model.safetensors.index.json` names; one missing here is a missing
/// tensor at start-up, which every test of the binary would show.
const BUILTIN_MODEL: ModelFiles<'static> = ModelFiles {
    config: include_bytes!("../models/all-mpnet-base-v2/config.json"),
    sentence_config: include_bytes!("../models/all-mpnet-base-v2/sentence_bert_config.json"),
    tokenizer: include_bytes!("../models/all-mpnet-base-v2/tokenizer.json"),
    weights: &[
        (
            "model-00001-of-00003.safetensors",
            include_bytes!("../models/all-mpnet-base-v2/model-00001-of-00003.safetensors"),
        ),
        (
            "model-00002-of-00003.safetensors",
            include_bytes!("../models/all-mpnet-base-v2/model-00002-of-00003.safetensors"),
        ),
        (
            "model-00003-of-00003.safetensors",
            include_bytes!("../models/all-mpnet-base-v2/model-00003-of-00003.safetensors"),
        ),
    ],
    reference: include_bytes!("../models/all-mpnet-base-v2/reference_embedding.json"),
};

/// The model (built in, or `EMBEDDING_MODEL_PATH`) with its vector cache and the gate's anchors.
fn load_searcher(config: &Config) -> Result<Searcher, CliError> {
    let embedder = match &config.embedding_model_path {
        Some(dir) => {
            Embedder::load_dir(dir).map_err(|e| CliError(format!("EMBEDDING_MODEL_PATH: {e}")))?
        }
        None => Embedder::from_files(
            BUILTIN_MODEL,
            &std::path::Path::new("(built in)").join(MODEL_DIR),
        )
        .map_err(|e| CliError(format!("the built-in embedding model: {e}")))?,
    };
    let fingerprint = embedder.fingerprint();
    let cache = match &config.embedding_cache {
        Some(dir) => VectorCache::open(dir, fingerprint),
        None => VectorCache::in_memory(fingerprint),
    };
    Searcher::new(Arc::new(embedder), Arc::new(cache))
        .map_err(|e| CliError(format!("the embedding model: {e}")))
}

/// The collection, indexed for questions.
fn load_catalog(config: &Config) -> Result<Catalog, CliError> {
    let library = Arc::new(load_library(config)?);
    Catalog::new(library, load_searcher(config)?)
        .map_err(|e| CliError(format!("cannot index the insight collection: {e}")))
}

/// Where the collection comes from, for logs and `check`.
fn collection_origin(config: &Config) -> String {
    let builtin = match &config.packs {
        PackSelection::All => "the built-in packs (data/packs, all)".to_string(),
        PackSelection::Only(ids) => {
            format!("the built-in packs {} (INSIGHTS_PACKS)", ids.join(", "))
        }
    };
    match (&config.insights_path, config.builtin_insights) {
        (None, _) => builtin,
        (Some(path), true) => format!("{builtin} + INSIGHTS_PATH={}", path.display()),
        (Some(path), false) => {
            format!("INSIGHTS_PATH={} (built-in collection off)", path.display())
        }
    }
}

fn run_bot(config: Config) -> Result<(), CliError> {
    let token = config
        .discord_token
        .clone()
        .ok_or_else(|| CliError(BotError::MissingToken.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // From here a SIGTERM or SIGINT is kept, not fatal: loading the collection and the model
    // takes a moment, and a signal meanwhile stops the bot before it connects, with status 0.
    let mut signals = {
        let _context = runtime.enter();
        bot::ShutdownSignals::listen()
    };
    let catalog = load_catalog(&config)?;
    tracing::info!(
        insights = catalog.library().len(),
        from = %collection_origin(&config),
        "loaded and indexed the insight collection"
    );
    // One process per SQLite file: a second one (a second shard range, or the same bot started
    // twice) would double every answer and race the first for the file. Held until exit.
    let _sqlite_lock = match &config.database {
        DatabaseUrl::Sqlite(path) => Some(lock_sqlite_file(path)?),
        DatabaseUrl::Postgres(_) => None,
    };
    // Opened before connecting: a corrupt or unreadable database, or an unreachable PostgreSQL
    // server, stops start-up here.
    let store =
        Store::connect(&config.database).map_err(|e| CliError(format!("DATABASE_URL: {e}")))?;
    tracing::info!(database = %store.describe(), "opened the state database");
    let settings = BotSettings {
        token,
        catalog: Arc::new(catalog),
        guild_id: config.guild_id,
        api_base: config.api_base.clone(),
        store,
        clock: Arc::new(SystemClock),
        poster_options: PosterOptions {
            shards: config.shards,
            ..PosterOptions::default()
        },
        metrics_addr: config.metrics_addr,
    };
    runtime.block_on(bot::run_with_signals(settings, &mut signals))?;
    tracing::info!("stopped");
    Ok(())
}

/// Takes the process lock of a SQLite database: a file beside it, locked for as long as this
/// process runs (the operating system releases it when the process ends, however it ends).
fn lock_sqlite_file(database: &std::path::Path) -> Result<std::fs::File, CliError> {
    let lock_path = std::path::PathBuf::from(format!("{}.lock", database.display()));
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError(format!(
                "DATABASE_URL: cannot create {}: {e}",
                dir.display()
            ))
        })?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            CliError(format!(
                "DATABASE_URL: cannot open {}: {e}",
                lock_path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(CliError(format!(
            "DATABASE_URL: another insight-bot process is running on {} (it holds {}). Several processes cannot share one SQLite file: run every shard in one process, or set DATABASE_URL to a PostgreSQL database for several",
            database.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(CliError(format!(
            "DATABASE_URL: cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

/// `insight-bot stats`: the store's usage over the period, over the collection the scope sees
/// (the shipped one, plus the server's own for `--server`, for "never shown").
fn stats(config: &Config, args: &cli::StatsArgs, out: &mut impl Write) -> Result<(), CliError> {
    use insight_bot::store::UsageScope;
    // A report reads; it never creates a database (nor its folders) to report nothing from.
    if let DatabaseUrl::Sqlite(path) = &config.database {
        if !path.exists() {
            let shown = absolute(path);
            return Err(CliError(format!(
                "DATABASE_URL: there is no database at {}: nothing has been recorded there. Point DATABASE_URL at the bot's database (the one `run` uses)",
                shown.display()
            )));
        }
    }
    let store =
        Store::connect(&config.database).map_err(|e| CliError(format!("DATABASE_URL: {e}")))?;
    let db = store.blocking();
    let until = chrono::Utc::now().date_naive();
    let since = until - chrono::Duration::days(i64::from(args.days) - 1);
    let shipped = load_library(config)?;
    let (scope, label, library) = match (args.server, args.dms) {
        (Some(guild), _) => {
            let settings = db.server_settings(guild)?;
            let own: Vec<_> = db
                .server_insights(guild)?
                .into_iter()
                .map(|row| row.insight)
                .collect();
            let mut insights: Vec<_> = match settings.source {
                insight_bot::store::InsightSource::Ours => Vec::new(),
                insight_bot::store::InsightSource::All => shipped
                    .insights()
                    .iter()
                    .filter(|i| !settings.hidden.contains(&i.id))
                    .cloned()
                    .collect(),
            };
            insights.extend(own);
            (
                UsageScope::Server(guild),
                format!("server {guild}"),
                Library::from_insights(insights),
            )
        }
        (None, true) => (
            UsageScope::DirectMessages,
            "direct messages".to_string(),
            shipped,
        ),
        (None, false) => (
            UsageScope::Everywhere,
            "every server and direct messages (never shown: of the shipped insights)".to_string(),
            shipped,
        ),
    };
    let usage = db.usage_stats(scope, since, until)?;
    let report =
        insight_bot::stats::Report::build(since, until, &usage.days, &usage.insights, &library);
    cli::stats(&report, &label, args, out)
}

/// `insight-bot check-config`: every deployment setting checked without connecting anywhere.
/// `check-config`: everything `run` would refuse, all of it, without connecting to Discord or to
/// PostgreSQL. What is fine goes to stdout, one line a setting; each problem to stderr as
/// `error: …`; exit 2 when there was any, so a systemd `ExecStartPre` stops a bad deployment.
fn check_config(out: &mut impl Write) -> Result<ExitCode, CliError> {
    let mut problems: Vec<String> = Vec::new();
    let config = match Config::check_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(found) => {
            problems.extend(found.iter().map(ToString::to_string));
            // Go on with what the offline commands read, to report the rest too.
            match Config::offline_from_env() {
                Ok(config) => config,
                Err(_) => return Ok(report_problems(out, &problems)?),
            }
        }
    };
    match &config.discord_token {
        Some(_) => writeln!(
            out,
            "DISCORD_TOKEN: set (well-formed; Discord checks it at start-up)"
        )?,
        None if problems.iter().any(|p| p.starts_with("DISCORD_TOKEN")) => {}
        None => {
            writeln!(out, "DISCORD_TOKEN: NOT SET")?;
            problems.push(
                "DISCORD_TOKEN: not set: `run` needs the bot token (DISCORD_TOKEN, or DISCORD_TOKEN_FILE naming a file that holds it)".into(),
            );
        }
    }
    match load_library(&config) {
        Ok(library) => writeln!(
            out,
            "collection: {} insights from {}",
            library.len(),
            collection_origin(&config)
        )?,
        Err(e) => problems.push(e.0),
    }
    match load_searcher(&config) {
        Ok(searcher) => {
            let model = match &config.embedding_model_path {
                Some(dir) => format!("EMBEDDING_MODEL_PATH={}", absolute(dir).display()),
                None => "built in (all-mpnet-base-v2)".to_string(),
            };
            writeln!(
                out,
                "embedding model: {model}, loaded; self-check passed (reference embedding cosine {:.7})",
                searcher.embedder().self_check_cosine()
            )?;
        }
        Err(e) => problems.push(e.0),
    }
    match &config.embedding_cache {
        None => writeln!(out, "embedding cache: off (vectors kept in memory only)")?,
        Some(dir) => {
            let dir = absolute(dir);
            let probe = dir.join(".insight-bot-write-test");
            let writable = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&probe, b"ok"))
                .and_then(|()| std::fs::remove_file(&probe));
            match writable {
                Ok(()) => writeln!(out, "embedding cache: {} (writable)", dir.display())?,
                Err(e) => problems.push(format!(
                    "EMBEDDING_CACHE_DIR: {} is not writable ({e}): make it writable, or set EMBEDDING_CACHE_DIR=off to keep vectors in memory only",
                    dir.display()
                )),
            }
        }
    }
    match &config.database {
        DatabaseUrl::Sqlite(path) => {
            let path = absolute(path);
            match sqlite_health(&path) {
                Ok(state) => writeln!(
                    out,
                    "DATABASE_URL: SQLite file {} ({state}; one process only)",
                    path.display()
                )?,
                Err(reason) => problems.push(format!("DATABASE_URL: {}: {reason}", path.display())),
            }
        }
        DatabaseUrl::Postgres(_) => writeln!(
            out,
            "DATABASE_URL: PostgreSQL {} (not contacted by this check)",
            config.database
        )?,
    }
    writeln!(out, "shards: {}", config.shards)?;
    if config.shards.is_partial() {
        writeln!(
            out,
            "  other processes must run the other shards with the same SHARD_TOTAL and DATABASE_URL; DMs arrive on shard 0"
        )?;
    }
    writeln!(
        out,
        "Discord API: {}",
        config
            .api_base
            .as_deref()
            .map_or_else(|| "https://discord.com".into(), redact_url)
    )?;
    match config.metrics_addr {
        Some(addr) => writeln!(
            out,
            "METRICS_ADDR: {addr} serves /healthz, /readyz and /metrics (not bound by this check)"
        )?,
        None => writeln!(out, "METRICS_ADDR: off (no health or metrics endpoint)")?,
    }
    match config.guild_id {
        Some(id) => writeln!(
            out,
            "commands: registered in server {id} only (DISCORD_GUILD_ID)"
        )?,
        None => writeln!(out, "commands: registered globally")?,
    }
    Ok(report_problems(out, &problems)?)
}

/// The end of `check-config`: `OK` (exit 0), or every problem on stderr (exit 2).
fn report_problems(out: &mut impl Write, problems: &[String]) -> std::io::Result<ExitCode> {
    if problems.is_empty() {
        writeln!(out, "OK")?;
        return Ok(ExitCode::SUCCESS);
    }
    out.flush()?;
    for problem in problems {
        eprintln!("error: {}", redact_urls_in(problem));
    }
    let count = problems.len();
    eprintln!(
        "{count} {}: `run` would not start",
        if count == 1 { "problem" } else { "problems" }
    );
    Ok(ExitCode::from(2))
}

/// `path` made absolute (against the working directory), for messages an operator acts on.
fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A SQLite state file as `run` would find it: missing (created at start), or readable, a
/// database, and whole (`PRAGMA quick_check`), read only, so the check changes nothing.
fn sqlite_health(path: &std::path::Path) -> Result<&'static str, String> {
    if !path.exists() {
        return Ok("not there yet: created at start");
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = rusqlite::Connection::open_with_flags(path, flags)
        .map_err(|e| format!("cannot open it: {e}"))?;
    let verdict: String = db
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(|e| format!("not a readable SQLite database ({e}); restore it from a backup"))?;
    if verdict != "ok" {
        return Err(format!(
            "the database is damaged ({verdict}); restore it from a backup"
        ));
    }
    Ok("present and whole")
}

/// `insight-bot healthcheck`: `/readyz` of the endpoint at `METRICS_ADDR`; an error (exit 1)
/// unless it answers 200.
fn healthcheck(config: &Config, out: &mut impl Write) -> Result<(), CliError> {
    let addr = config.metrics_addr.ok_or_else(|| {
        CliError(
            "METRICS_ADDR is not set: the health check asks the bot's /readyz there; set it, for example METRICS_ADDR=127.0.0.1:9100, for both the bot and this check".into(),
        )
    })?;
    let ready = insight_bot::ops::healthcheck::check(addr).map_err(CliError)?;
    writeln!(out, "{ready}")?;
    Ok(())
}

fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    // A missing .env is normal; a broken one is reported. Variables already set win.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            return Err(CliError(format!(".env: {e}")));
        }
    }
    init_tracing()?;
    let command = cli.command.unwrap_or(Command::Run);
    if matches!(command, Command::CheckConfig) {
        // It reads the settings itself, to report every problem.
        let code = check_config(&mut std::io::stdout().lock())?;
        return Ok(code);
    }
    let config = if matches!(command, Command::Run | Command::Stats(_)) {
        Config::from_env()?
    } else {
        Config::offline_from_env()?
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match command {
        Command::Run => run_bot(config)?,
        Command::Ask(args) => cli::ask(&load_catalog(&config)?, &args, &mut out)?,
        Command::Random(args) => cli::random(&load_library(&config)?, &args, &mut out)?,
        Command::Topics => cli::topics(&load_library(&config)?, &mut out)?,
        Command::Check => cli::check(
            &load_catalog(&config)?,
            &collection_origin(&config),
            &mut out,
        )?,
        Command::Packs => cli::packs(
            &Library::builtin()
                .map_err(|e| CliError(format!("cannot load the built-in packs:\n{e}")))?,
            config.builtin_insights.then_some(&config.packs),
            &mut out,
        )?,
        Command::NextPosts(args) => cli::next_posts(&args, &mut out)?,
        Command::CheckConfig => unreachable!("answered above"),
        Command::Stats(args) => stats(&config, &args, &mut out)?,
        Command::ModelReference(args) => cli::model_reference(&args, &mut out)?,
        Command::Healthcheck => healthcheck(&config, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
