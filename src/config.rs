//! Configuration from the environment (and `.env`, loaded by `main` through dotenvy; variables
//! already set in the environment win over the file).
//!
//! Every variable is validated here, once, so the rest of the program holds typed values and a
//! bad value is reported with the variable's name before anything starts. The token is wrapped in
//! [`Token`], whose `Debug` and `Display` never show it, so it cannot leak through a log line; a
//! PostgreSQL [`DatabaseUrl`] shows its password as `<redacted>` for the same reason, and so do
//! `DISCORD_API_BASE`'s credentials ([`crate::redact`]).

use std::fmt;
use std::path::PathBuf;

use crate::insights::PackSelection;
use crate::redact::redact_url;

pub use crate::sharding::Shards;

/// The default state database, created next to where the bot runs.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://insight-bot.db";

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// The Discord bot token. Never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Checks the shape of a bot token (three dot-separated base64url parts); a `Bot ` prefix is
    /// accepted and dropped. The error never contains the value.
    pub fn parse(token: &str) -> Result<Token, ConfigError> {
        parse_token(token)
    }

    /// The secret itself, for the one place that hands it to Discord's client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `DATABASE_URL`: which database holds the bot's state.
///
/// `Debug` and `Display` never show a PostgreSQL password (see [`redact_url`]).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path` (the default): one file, created when missing.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, as given (the store parses it; it may hold a password).
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DatabaseUrl::Postgres(url) => {
                f.debug_tuple("Postgres").field(&redact_url(url)).finish()
            }
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

// The store names the database through these.
pub use crate::redact::{redact_url as redact_password, REDACTED};

/// Validated configuration. `Debug` shows no secret: the token, the database password and the
/// user info of `DISCORD_API_BASE` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `DISCORD_TOKEN`: needed only by `run`.
    pub discord_token: Option<Token>,
    /// `INSIGHTS_PATH`: the operator's own collection, a `.toml` file or a directory of them,
    /// added to the built-in one. `None`: the built-in collection alone.
    pub insights_path: Option<PathBuf>,
    /// `INSIGHTS_BUILTIN` (default on): serve the collection built into the binary. Off, only
    /// `INSIGHTS_PATH` is served.
    pub builtin_insights: bool,
    /// `INSIGHTS_PACKS` (default `all`): which built-in packs are served (see
    /// [`crate::insights::packs`]); each server may then turn some of them off.
    pub packs: PackSelection,
    /// `DATABASE_URL`: a SQLite file (`sqlite://path`, the default) or a PostgreSQL database
    /// (`postgres://…`).
    pub database: DatabaseUrl,
    /// `DISCORD_GUILD_ID`: register commands in this server only (instant; for development).
    pub guild_id: Option<u64>,
    /// `DISCORD_API_BASE`: send REST calls here (a rate-limiting proxy, or a test's fake Discord).
    pub api_base: Option<String>,
    /// `SHARDS` (`auto`, the default, or a count) or `SHARD_RANGE` with `SHARD_TOTAL`.
    pub shards: Shards,
    /// `EMBEDDING_MODEL_PATH`: a folder with another copy of the embedding model; `None`: the
    /// model built into the binary.
    pub embedding_model_path: Option<PathBuf>,
    /// `EMBEDDING_CACHE_DIR`: where embedded insights are cached between runs; `None` (the value
    /// `off`) keeps them in memory only. Default: `$XDG_CACHE_HOME/insight-bot`, else
    /// `~/.cache/insight-bot`.
    pub embedding_cache: Option<PathBuf>,
    /// `METRICS_ADDR`: where the operators' endpoint listens (`/healthz`, `/readyz`,
    /// `/metrics`; see [`crate::ops`]); `None` (the default): no endpoint.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("discord_token", &self.discord_token)
            .field("insights_path", &self.insights_path)
            .field("builtin_insights", &self.builtin_insights)
            .field("packs", &self.packs)
            .field("database", &self.database)
            .field("guild_id", &self.guild_id)
            .field("api_base", &self.api_base.as_deref().map(redact_url))
            .field("shards", &self.shards)
            .field("embedding_model_path", &self.embedding_model_path)
            .field("embedding_cache", &self.embedding_cache)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] for the offline commands (`ask`, `random`, `topics`, `check`,
    /// `next-posts`): the variables only the bot uses ([`BOT_ONLY`]) are not read, so a
    /// half-filled `.env` (a placeholder token, a database not set up yet) never stops them.
    pub fn offline_from_env() -> Result<Config, ConfigError> {
        Config::offline_from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::offline_from_env`] through `lookup`.
    pub fn offline_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            if BOT_ONLY.contains(&name) {
                None
            } else {
                lookup(name)
            }
        })
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests). Empty values
    /// count as unset, which is what an untouched line of `.env.example` gives. The first problem
    /// is the error; [`Config::check_lookup`] gives every one.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::check_lookup(lookup).map_err(|mut problems| problems.remove(0))
    }

    /// [`Config::from_lookup`], reporting every problem (`check-config`): each variable is read on
    /// its own, and one that is wrong does not hide the next.
    pub fn check_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems: Vec<ConfigError> = Vec::new();
        fn keep<T>(problems: &mut Vec<ConfigError>, result: Result<T, ConfigError>) -> Option<T> {
            result.map_err(|problem| problems.push(problem)).ok()
        }
        let discord_token = keep(
            &mut problems,
            (|| {
                let file = get("DISCORD_TOKEN_FILE");
                Ok(
                    match secret(
                        "DISCORD_TOKEN",
                        get("DISCORD_TOKEN"),
                        "DISCORD_TOKEN_FILE",
                        file,
                    )? {
                        None => None,
                        Some(Secret::Given(token)) => Some(parse_token(&token)?),
                        Some(Secret::FromFile(token, path)) => {
                            Some(parse_token(&token).map_err(|e| ConfigError {
                                variable: "DISCORD_TOKEN_FILE",
                                reason: format!("{}: {}", path.display(), e.reason),
                            })?)
                        }
                    },
                )
            })(),
        )
        .flatten();
        let insights_path = get("INSIGHTS_PATH").map(PathBuf::from);
        let builtin_insights = keep(&mut problems, match get("INSIGHTS_BUILTIN") {
            None => Ok(true),
            Some(value) => parse_switch(&value).ok_or_else(|| ConfigError {
                variable: "INSIGHTS_BUILTIN",
                reason: format!("{value:?} is not on or off: use on (the default: serve the built-in collection, plus INSIGHTS_PATH) or off (serve INSIGHTS_PATH alone)"),
            }),
        })
        .unwrap_or(true);
        if !builtin_insights && insights_path.is_none() {
            keep(&mut problems, Err::<(), _>(ConfigError {
                variable: "INSIGHTS_BUILTIN",
                reason: "is off, but INSIGHTS_PATH is not set: there would be no insights; set INSIGHTS_PATH to your collection, or turn INSIGHTS_BUILTIN on".into(),
            }));
        }
        let packs_set = get("INSIGHTS_PACKS");
        let packs = keep(
            &mut problems,
            packs_set
                .as_deref()
                .map_or(Ok(PackSelection::All), PackSelection::parse)
                .map_err(|reason| ConfigError {
                    variable: "INSIGHTS_PACKS",
                    reason,
                }),
        )
        .unwrap_or_default();
        // Choosing packs while serving none of them is a contradiction, not a preference: say so
        // rather than silently ignore one of the two settings.
        if !builtin_insights && packs != PackSelection::All {
            keep(&mut problems, Err::<(), _>(ConfigError {
                variable: "INSIGHTS_PACKS",
                reason: format!("is {packs}, but INSIGHTS_BUILTIN is off, which serves no built-in pack: unset INSIGHTS_PACKS, or turn INSIGHTS_BUILTIN on"),
            }));
        }
        let database = keep(
            &mut problems,
            (|| {
                let file = get("DATABASE_URL_FILE");
                Ok(
                    match secret(
                        "DATABASE_URL",
                        get("DATABASE_URL"),
                        "DATABASE_URL_FILE",
                        file,
                    )? {
                        None => parse_database_url(DEFAULT_DATABASE_URL)?,
                        Some(Secret::Given(url)) => parse_database_url(&url)?,
                        Some(Secret::FromFile(url, path)) => {
                            parse_database_url(&url).map_err(|e| ConfigError {
                                variable: "DATABASE_URL_FILE",
                                reason: format!("{}: {}", path.display(), e.reason),
                            })?
                        }
                    },
                )
            })(),
        );
        let guild_id = keep(&mut problems, match get("DISCORD_GUILD_ID") {
            None => Ok(None),
            Some(id) => parse_snowflake(&id).map(Some).ok_or_else(|| ConfigError {
                variable: "DISCORD_GUILD_ID",
                reason: format!(
                    "{id:?} is not a server id: copy it with Developer Mode on (right-click the server, Copy Server ID); it is a number like 1234567890123456789"
                ),
            }),
        })
        .flatten();
        let api_base = keep(
            &mut problems,
            get("DISCORD_API_BASE")
                .map(|b| parse_api_base(&b))
                .transpose(),
        )
        .flatten();
        let shards = keep(
            &mut problems,
            parse_shards(get("SHARDS"), get("SHARD_RANGE"), get("SHARD_TOTAL")),
        );
        if let (Some(shards), Some(DatabaseUrl::Sqlite(_))) = (&shards, &database) {
            if shards.is_partial() {
                keep(&mut problems, Err::<(), _>(ConfigError {
                    variable: "SHARD_RANGE",
                    reason: format!(
                        "{shards} means other processes run the other shards, and several processes cannot share one SQLite file: set DATABASE_URL to a PostgreSQL database (postgres://...), or run every shard in one process (SHARDS=auto)"
                    ),
                }));
            }
        }
        let embedding_model_path = get("EMBEDDING_MODEL_PATH").map(PathBuf::from);
        let embedding_cache = match get("EMBEDDING_CACHE_DIR") {
            Some(dir) if dir.trim().eq_ignore_ascii_case("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => lookup("XDG_CACHE_HOME")
                .filter(|d| !d.trim().is_empty())
                .map(PathBuf::from)
                .or_else(|| lookup("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .map(|dir| dir.join("insight-bot")),
        };
        let metrics_addr = keep(
            &mut problems,
            get("METRICS_ADDR")
                .map(|addr| parse_metrics_addr(&addr))
                .transpose(),
        )
        .flatten();
        let (Some(database), Some(shards), true) = (database, shards, problems.is_empty()) else {
            return Err(problems);
        };
        Ok(Config {
            discord_token,
            insights_path,
            builtin_insights,
            packs,
            database,
            guild_id,
            api_base,
            shards,
            embedding_model_path,
            embedding_cache,
            metrics_addr,
        })
    }
}

/// The variables only `run` (and `check-config`, `stats`) read: the offline commands take their
/// defaults instead (see [`Config::offline_from_env`]).
pub const BOT_ONLY: &[&str] = &[
    "DISCORD_TOKEN",
    "DISCORD_TOKEN_FILE",
    "DATABASE_URL",
    "DATABASE_URL_FILE",
    "DISCORD_GUILD_ID",
    "DISCORD_API_BASE",
    "SHARDS",
    "SHARD_RANGE",
    "SHARD_TOTAL",
];

/// `METRICS_ADDR`: an IP address and port, never a host name (the endpoint binds exactly there;
/// a name could resolve to an address the operator did not mean to expose).
fn parse_metrics_addr(addr: &str) -> Result<std::net::SocketAddr, ConfigError> {
    addr.trim().parse().map_err(|_| ConfigError {
        variable: "METRICS_ADDR",
        reason: format!(
            "{addr:?} is not an IP address and port: use for example 127.0.0.1:9100 (this machine only) or 0.0.0.0:9100 (every interface, for a container)"
        ),
    })
}

/// `SHARDS`, `SHARD_RANGE` and `SHARD_TOTAL` together.
fn parse_shards(
    shards: Option<String>,
    range: Option<String>,
    total: Option<String>,
) -> Result<Shards, ConfigError> {
    let error = |variable: &'static str, reason: String| ConfigError { variable, reason };
    let count = |variable: &'static str, text: &str| {
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                error(
                    variable,
                    format!("{text:?} is not a shard count (a number of 1 or more)"),
                )
            })
    };
    match (shards, range, total) {
        (Some(_), Some(_), _) => Err(error(
            "SHARDS",
            "is set together with SHARD_RANGE: use SHARDS for a single process, or SHARD_RANGE with SHARD_TOTAL for one of several".into(),
        )),
        (Some(s), None, None) if s.trim().eq_ignore_ascii_case("auto") => Ok(Shards::Auto),
        (Some(s), None, None) => Ok(Shards::All(count("SHARDS", &s)?)),
        (Some(_), None, Some(_)) => Err(error(
            "SHARD_TOTAL",
            "is only used with SHARD_RANGE; with SHARDS the count is SHARDS itself".into(),
        )),
        (None, None, None) => Ok(Shards::Auto),
        (None, None, Some(_)) => Err(error(
            "SHARD_TOTAL",
            "is set but SHARD_RANGE is not: set SHARD_RANGE to this process's shards, for example SHARD_RANGE=0-3".into(),
        )),
        (None, Some(_), None) => Err(error(
            "SHARD_TOTAL",
            "is not set: a SHARD_RANGE needs the total number of shards of all processes, for example SHARD_TOTAL=16".into(),
        )),
        (None, Some(r), Some(t)) => {
            let total = count("SHARD_TOTAL", &t)?;
            let bad_range = || {
                error(
                    "SHARD_RANGE",
                    format!("{r:?} is not a shard range: write FIRST-LAST, both included, for example 4-7"),
                )
            };
            let (first, last) = r.trim().split_once('-').ok_or_else(bad_range)?;
            let first: u32 = first.trim().parse().map_err(|_| bad_range())?;
            let last: u32 = last.trim().parse().map_err(|_| bad_range())?;
            if first > last {
                return Err(bad_range());
            }
            if last >= total {
                return Err(error(
                    "SHARD_RANGE",
                    format!("{r:?} goes beyond SHARD_TOTAL={total}: shards are numbered 0 to {}", total - 1),
                ));
            }
            Ok(Shards::Range { first, last, total })
        }
    }
}

fn parse_token(token: &str) -> Result<Token, ConfigError> {
    let token = token.trim();
    let token = token.strip_prefix("Bot ").unwrap_or(token);
    // A bot token is three base64url parts joined by dots; checking the shape catches a pasted
    // client secret or application id without ever echoing the value.
    let parts: Vec<&str> = token.split('.').collect();
    let shaped = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !shaped {
        return Err(ConfigError {
            variable: "DISCORD_TOKEN",
            reason: "this does not look like a bot token (three parts separated by dots); copy it from the Discord Developer Portal > your application > Bot > Reset Token".into(),
        });
    }
    Ok(Token(token.to_string()))
}

/// A secret as configured: in its variable, or read from the file its `_FILE` variable names.
enum Secret {
    Given(String),
    /// The file's content, trimmed, and the file (absolute when it could be made so).
    FromFile(String, PathBuf),
}

/// `name`, or the content of the file `file_variable` names (Docker and systemd hand secrets to
/// a process as files, so that they appear in no environment listing), with surrounding white
/// space trimmed. Setting both is an error, so that nobody wonders which one won. A file that
/// cannot be read, or is empty, is an error naming the variable and the path, never the content.
fn secret(
    name: &'static str,
    value: Option<String>,
    file_variable: &'static str,
    file: Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    let error = |reason: String| ConfigError {
        variable: file_variable,
        reason,
    };
    match (value, file) {
        (None, None) => Ok(None),
        (Some(value), None) => Ok(Some(Secret::Given(value))),
        (Some(_), Some(_)) => Err(error(format!(
            "is set, and so is {name}: set one of them ({file_variable} names a file holding the value of {name})"
        ))),
        (None, Some(path)) => {
            let path = PathBuf::from(path.trim());
            let path = std::path::absolute(&path).unwrap_or(path);
            match std::fs::read_to_string(&path) {
                Ok(content) if content.trim().is_empty() => Err(error(format!(
                    "{} is empty: put the value of {name} in it",
                    path.display()
                ))),
                Ok(content) => Ok(Some(Secret::FromFile(content.trim().to_string(), path))),
                // The kind only: an io::Error never holds the content, but say so by construction.
                Err(e) => Err(error(format!("cannot read {}: {}", path.display(), e.kind()))),
            }
        }
    }
}

fn parse_database_url(url: &str) -> Result<DatabaseUrl, ConfigError> {
    let url = url.trim();
    let error = |reason: String| ConfigError {
        variable: "DATABASE_URL",
        reason,
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return parse_postgres_url(url).map_err(|problem| {
            error(format!(
                "{:?} is not a PostgreSQL URL ({problem}): use postgres://user:<password>@host:5432/database",
                redact_url(url)
            ))
        });
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            error(format!(
                "{:?} is neither a SQLite nor a PostgreSQL URL: use sqlite://path/to/file.db (for example {DEFAULT_DATABASE_URL}) or postgres://user:<password>@host:5432/database",
                redact_url(url)
            ))
        })?;
    // Drop URL options such as `?mode=rwc`: the store always creates the file when missing.
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(error(format!(
            "{:?} names no file: the bot keeps its schedules in a file, for example {DEFAULT_DATABASE_URL}",
            redact_url(url)
        )));
    }
    Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
}

/// Checks what can be checked without connecting; the store's driver parses the rest. The
/// reasons never quote the URL's user info, which may hold the password.
fn parse_postgres_url(url: &str) -> Result<DatabaseUrl, String> {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.matches('@').count() > 1 {
        return Err("more than one @ before the host: write an @ in the password as %40".into());
    }
    if url.contains('#') {
        return Err("a # is not allowed: write a # in the password as %23".into());
    }
    // The driver's own parser: a bad port or an unknown option is reported now, with the
    // variable's name, rather than at start-up. Its messages name the option, never a value.
    url.parse::<tokio_postgres::Config>().map_err(|e| {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        reason
    })?;
    Ok(DatabaseUrl::Postgres(url.to_string()))
}

/// `on`/`off` and their usual spellings.
fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn parse_snowflake(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&id| id != 0)
}

fn parse_api_base(base: &str) -> Result<String, ConfigError> {
    let base = base.trim().trim_end_matches('/');
    let error = |reason: String| ConfigError {
        variable: "DISCORD_API_BASE",
        reason,
    };
    // A proxy's URL may carry credentials (`https://user:pw@proxy`): messages quote it without.
    let shown = redact_url(base);
    let url = reqwest::Url::parse(base).map_err(|e| {
        error(format!(
            "{shown:?} is not a URL ({e}): use the proxy's base, for example http://127.0.0.1:3000"
        ))
    })?;
    let host = url
        .host()
        .ok_or_else(|| error(format!("{shown:?} names no host")))?;
    match url.scheme() {
        "https" => {}
        // Every REST call carries the bot token: in clear text only to this machine, where
        // nobody on the network can read it (a proxy on the same host, or a test's fake Discord).
        "http" => {
            let loopback = match host {
                url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            };
            if !loopback {
                return Err(error(format!(
                    "{shown:?} is plain http to another machine, which would send the bot token in clear text: use https://, or http:// only to this machine (127.0.0.1, ::1 or localhost)"
                )));
            }
        }
        other => {
            return Err(error(format!(
                "{shown:?} is not an http(s) URL (scheme {other:?}): use the proxy's base, for example http://127.0.0.1:3000"
            )))
        }
    }
    // Accept the base with or without the API path; serenity adds `/api/v10` itself.
    Ok(base.trim_end_matches("/api/v10").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FAKE_TOKEN: &str = "MTIz.fake-test.token_value";

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.insights_path, None);
        assert!(c.builtin_insights);
        assert_eq!(c.embedding_model_path, None);
        assert_eq!(c.embedding_cache, None, "no HOME in this lookup");
        assert_eq!(
            c.database,
            DatabaseUrl::Sqlite(PathBuf::from("insight-bot.db"))
        );
        assert_eq!(c.discord_token, None);
        assert_eq!(c.guild_id, None);
        assert_eq!(c.api_base, None);
        assert_eq!(
            c.metrics_addr, None,
            "the operators' endpoint is off by default"
        );
    }

    #[test]
    fn the_metrics_address_is_an_ip_and_port() {
        let c = config(&[("METRICS_ADDR", " 127.0.0.1:9100 ")]).unwrap();
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        let c = config(&[("METRICS_ADDR", "[::]:9100")]).unwrap();
        assert_eq!(c.metrics_addr, Some("[::]:9100".parse().unwrap()));
        let err = config(&[("METRICS_ADDR", "localhost:9100")]).unwrap_err();
        assert!(err.reason.contains("127.0.0.1:9100"), "{err}");
    }

    #[test]
    fn packs_are_all_by_default_or_the_ones_named() {
        assert_eq!(config(&[]).unwrap().packs, PackSelection::All);
        let c = config(&[("INSIGHTS_PACKS", "hiring, feedback")]).unwrap();
        assert_eq!(c.packs, PackSelection::Only(vec!["feedback", "hiring"]));
        let err = config(&[("INSIGHTS_PACKS", "hiring,onbording")]).unwrap_err();
        assert!(
            err.reason
                .contains("unknown pack \"onbording\": the packs are ic-and-management,"),
            "{err}"
        );
        // Reported with the other problems, by check-config.
        let map: HashMap<&str, &str> =
            [("INSIGHTS_PACKS", "nope"), ("DISCORD_GUILD_ID", "x")].into();
        let all = Config::check_lookup(|n| map.get(n).map(|v| v.to_string())).unwrap_err();
        let variables: Vec<&str> = all.iter().map(|p| p.variable).collect();
        assert!(variables.contains(&"INSIGHTS_PACKS") && variables.contains(&"DISCORD_GUILD_ID"));
        // Packs named with the built-in collection off is a contradiction; `all` is the default.
        let err = config(&[
            ("INSIGHTS_BUILTIN", "off"),
            ("INSIGHTS_PATH", "/srv/ours"),
            ("INSIGHTS_PACKS", "hiring"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "INSIGHTS_PACKS", "{err}");
        assert!(config(&[
            ("INSIGHTS_BUILTIN", "off"),
            ("INSIGHTS_PATH", "/srv/ours"),
            ("INSIGHTS_PACKS", "all"),
        ])
        .is_ok());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[("DISCORD_GUILD_ID", ""), ("DISCORD_TOKEN", "  ")]).unwrap();
        assert_eq!(c.guild_id, None);
        assert_eq!(c.discord_token, None);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("DISCORD_GUILD_ID", "my-server"),
            ("DISCORD_GUILD_ID", "0"),
            ("DATABASE_URL", "mysql://x"),
            ("DATABASE_URL", "postgres://bot@db:port/x"),
            ("DATABASE_URL", "postgres://db/x?nosuchoption=1"),
            ("DATABASE_URL", "sqlite://"),
            ("DISCORD_API_BASE", "localhost:3000"),
            ("DISCORD_API_BASE", "http://proxy.internal:3000"),
            ("DISCORD_API_BASE", "http://10.0.0.5:3000"),
            ("DISCORD_API_BASE", "http://[2001:db8::1]:3000"),
            ("DISCORD_API_BASE", "ftp://127.0.0.1"),
            ("INSIGHTS_BUILTIN", "maybe"),
            ("INSIGHTS_BUILTIN", "off"),
            ("INSIGHTS_PACKS", "feedback,nope"),
            ("INSIGHTS_PACKS", ","),
            ("DISCORD_TOKEN", "not a token"),
            ("SHARDS", "many"),
            ("SHARDS", "0"),
            ("SHARD_TOTAL", "16"),
            ("METRICS_ADDR", "localhost:9100"),
            ("METRICS_ADDR", "127.0.0.1"),
            ("METRICS_ADDR", "127.0.0.1:99999"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn the_embedding_cache_defaults_to_the_users_cache_folder_and_can_be_off() {
        let c = config(&[("HOME", "/home/ada")]).unwrap();
        assert_eq!(
            c.embedding_cache,
            Some(PathBuf::from("/home/ada/.cache/insight-bot"))
        );
        let c = config(&[("HOME", "/home/ada"), ("XDG_CACHE_HOME", "/var/cache/me")]).unwrap();
        assert_eq!(
            c.embedding_cache,
            Some(PathBuf::from("/var/cache/me/insight-bot"))
        );
        let c = config(&[("HOME", "/home/ada"), ("EMBEDDING_CACHE_DIR", "off")]).unwrap();
        assert_eq!(c.embedding_cache, None);
        let c = config(&[
            ("EMBEDDING_CACHE_DIR", "/srv/cache"),
            ("EMBEDDING_MODEL_PATH", "/srv/model"),
        ])
        .unwrap();
        assert_eq!(c.embedding_cache, Some(PathBuf::from("/srv/cache")));
        assert_eq!(c.embedding_model_path, Some(PathBuf::from("/srv/model")));
    }

    #[test]
    fn shards_are_auto_a_count_or_a_range_within_the_total() {
        let shards = |pairs: &[(&str, &str)]| config(pairs).map(|c| c.shards);
        let pg = ("DATABASE_URL", "postgres://bot@db/insights");
        assert_eq!(shards(&[]), Ok(Shards::Auto));
        assert_eq!(shards(&[("SHARDS", "auto")]), Ok(Shards::Auto));
        assert_eq!(shards(&[("SHARDS", "4")]), Ok(Shards::All(4)));
        assert_eq!(
            shards(&[("SHARD_RANGE", "4-7"), ("SHARD_TOTAL", "16"), pg]),
            Ok(Shards::Range {
                first: 4,
                last: 7,
                total: 16
            })
        );
        // A range covering every shard is one process: SQLite is fine.
        assert!(shards(&[("SHARD_RANGE", "0-1"), ("SHARD_TOTAL", "2")]).is_ok());
        for (pairs, variable, says) in [
            (
                vec![("SHARD_RANGE", "4-7"), pg],
                "SHARD_TOTAL",
                "is not set",
            ),
            (
                vec![("SHARD_RANGE", "4-16"), ("SHARD_TOTAL", "16"), pg],
                "SHARD_RANGE",
                "beyond SHARD_TOTAL=16",
            ),
            (
                vec![("SHARD_RANGE", "7-4"), ("SHARD_TOTAL", "16"), pg],
                "SHARD_RANGE",
                "not a shard range",
            ),
            (
                vec![("SHARD_RANGE", "a-b"), ("SHARD_TOTAL", "16"), pg],
                "SHARD_RANGE",
                "not a shard range",
            ),
            (
                vec![("SHARDS", "2"), ("SHARD_RANGE", "0-1")],
                "SHARDS",
                "together",
            ),
            (
                vec![("SHARD_RANGE", "0-7"), ("SHARD_TOTAL", "16")],
                "SHARD_RANGE",
                "cannot share one SQLite file",
            ),
        ] {
            let err = config(&pairs).unwrap_err();
            assert_eq!(err.variable, variable, "{pairs:?}: {err}");
            assert!(err.reason.contains(says), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn plain_http_is_accepted_for_this_machine_only() {
        for base in [
            "http://127.0.0.1:3000",
            "http://127.8.9.10",
            "http://localhost:3000",
            "http://[::1]:3000",
            "https://proxy.internal",
            "https://10.0.0.5:8443",
        ] {
            let c = config(&[("DISCORD_API_BASE", base)]).unwrap_or_else(|e| panic!("{base}: {e}"));
            assert_eq!(c.api_base.as_deref(), Some(base));
        }
        let err = config(&[("DISCORD_API_BASE", "http://proxy.internal:3000")]).unwrap_err();
        assert!(err.to_string().contains("clear text"), "{err}");
    }

    #[test]
    fn values_are_parsed() {
        let c = config(&[
            ("DISCORD_GUILD_ID", "123456789012345678"),
            ("DATABASE_URL", "sqlite:///tmp/x.db?mode=rwc"),
            ("DISCORD_API_BASE", "http://127.0.0.1:3000/api/v10/"),
            ("DISCORD_TOKEN", FAKE_TOKEN),
            ("INSIGHTS_PATH", "/srv/insights"),
            ("INSIGHTS_BUILTIN", "off"),
        ])
        .unwrap();
        assert_eq!(c.insights_path, Some(PathBuf::from("/srv/insights")));
        assert!(!c.builtin_insights);
        assert_eq!(c.guild_id, Some(123456789012345678));
        assert_eq!(c.database, DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db")));
        assert_eq!(c.api_base.as_deref(), Some("http://127.0.0.1:3000"));
        assert_eq!(c.discord_token.unwrap().expose(), FAKE_TOKEN);
    }

    #[test]
    fn the_token_never_shows_in_debug_or_display() {
        let c = config(&[("DISCORD_TOKEN", FAKE_TOKEN)]).unwrap();
        let shown = format!("{c:?} {}", c.discord_token.as_ref().unwrap());
        assert!(!shown.contains("fake-test"), "{shown}");
        // A rejected token is not echoed either.
        let err = config(&[("DISCORD_TOKEN", "secret value with spaces")]).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn postgres_urls_select_postgres() {
        for url in [
            "postgres://bot:s3cret@db.internal:5432/insight",
            "postgresql://bot@db.internal/insight?sslmode=disable",
            "postgresql://%2Fvar%2Frun%2Fpostgresql/insight",
            "postgresql:///insight?host=/var/run/postgresql&user=bot",
        ] {
            let c = config(&[("DATABASE_URL", url)]).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(c.database, DatabaseUrl::Postgres(url.into()));
        }
    }

    #[test]
    fn a_postgres_password_never_shows() {
        let c = config(&[(
            "DATABASE_URL",
            "postgres://bot:pa%24%24word-1@db.internal:5432/insight",
        )])
        .unwrap();
        let shown = format!("{c:?} {}", c.database);
        assert!(!shown.contains("word-1"), "{shown}");
        assert!(
            shown.contains("postgres://bot:<redacted>@db.internal:5432/insight"),
            "{shown}"
        );
        // Nor in the error about a URL that does not parse.
        for bad in [
            "postgres://bot:hunter2-pw@db:notaport/insight",
            "postgres://bot:hunter2@pw@db/insight",
            "postgres://bot:hunter2#pw@db/insight",
            "postgres://db/insight?password=hunter2-pw&nosuchoption=1",
            "postgresx://bot:hunter2-pw@db/insight",
        ] {
            let err = config(&[("DATABASE_URL", bad)]).unwrap_err();
            assert_eq!(err.variable, "DATABASE_URL");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn the_api_base_credentials_never_show() {
        let c = config(&[(
            "DISCORD_API_BASE",
            "https://proxyuser:proxypass@proxy.example",
        )])
        .unwrap();
        assert_eq!(
            c.api_base.as_deref(),
            Some("https://proxyuser:proxypass@proxy.example"),
            "the client needs them"
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("proxypass"), "{shown}");
        assert!(!shown.contains("proxyuser"), "{shown}");
        assert!(
            shown.contains("https://<redacted>@proxy.example"),
            "{shown}"
        );
        // Nor in the error about a base that is refused.
        for bad in [
            "http://proxyuser:proxypass@proxy.example",
            "ftp://proxyuser:proxypass@proxy.example",
            "https://proxyuser:proxypass@",
        ] {
            let err = config(&[("DISCORD_API_BASE", bad)]).unwrap_err();
            assert_eq!(err.variable, "DISCORD_API_BASE");
            assert!(!err.to_string().contains("proxypass"), "{err}");
        }
    }

    #[test]
    fn a_libpq_string_is_refused_without_its_password() {
        let err = config(&[("DATABASE_URL", "host=db.example password='top secret'")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("host=db.example"), "{err}");
    }

    #[test]
    fn a_sqlite_database_shows_its_path() {
        let sqlite = DatabaseUrl::Sqlite(PathBuf::from("state/bot.db"));
        assert_eq!(sqlite.to_string(), "sqlite://state/bot.db");
    }

    #[test]
    fn secrets_may_come_from_files_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("  {FAKE_TOKEN}\n\n")).unwrap();
        let db_file = dir.path().join("db");
        std::fs::write(&db_file, "postgres://bot:s3cr3t@db.example/insights\n").unwrap();
        let c = config(&[
            ("DISCORD_TOKEN_FILE", token_file.to_str().unwrap()),
            ("DATABASE_URL_FILE", db_file.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(c.discord_token.as_ref().unwrap().expose(), FAKE_TOKEN);
        assert!(
            matches!(c.database, DatabaseUrl::Postgres(_)),
            "not PostgreSQL"
        );
    }

    #[test]
    fn a_secret_and_its_file_together_or_an_unreadable_file_are_errors_without_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "not a token but a secret\n").unwrap();
        let both = config(&[
            ("DISCORD_TOKEN", FAKE_TOKEN),
            ("DISCORD_TOKEN_FILE", token_file.to_str().unwrap()),
        ])
        .unwrap_err();
        assert_eq!(both.variable, "DISCORD_TOKEN_FILE");
        assert!(both.reason.contains("and so is DISCORD_TOKEN"), "{both}");

        let missing = dir.path().join("nowhere");
        let err = config(&[("DATABASE_URL_FILE", missing.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL_FILE");
        assert!(err.reason.contains(missing.to_str().unwrap()), "{err}");
        assert!(err.reason.contains("not found"), "{err}");

        // A file whose content is refused names the file, never what is in it.
        let err = config(&[("DISCORD_TOKEN_FILE", token_file.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.variable, "DISCORD_TOKEN_FILE");
        assert!(
            err.reason.starts_with(token_file.to_str().unwrap()),
            "{err}"
        );
        assert!(!err.to_string().contains("secret"), "{err}");
        let db_file = dir.path().join("db");
        std::fs::write(&db_file, "mysql://bot:hunter2@db/x").unwrap();
        let err = config(&[("DATABASE_URL_FILE", db_file.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL_FILE");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let err = config(&[("DISCORD_TOKEN_FILE", empty.to_str().unwrap())]).unwrap_err();
        assert!(
            err.reason
                .ends_with("is empty: put the value of DISCORD_TOKEN in it"),
            "{err}"
        );
    }
}
