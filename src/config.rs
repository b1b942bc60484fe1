//! Configuration from the environment (and `.env`, loaded by `main` through dotenvy; variables
//! already set in the environment win over the file).
//!
//! Every variable is validated here, once, so the rest of the program holds typed values and a
//! bad value is reported with the variable's name before anything starts. The token is wrapped in
//! [`Token`], whose `Debug` and `Display` never show it, so it cannot leak through a log line.

use std::fmt;
use std::path::PathBuf;

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

/// Validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `DISCORD_TOKEN`: needed only by `run`.
    pub discord_token: Option<Token>,
    /// `INSIGHTS_PATH`: the operator's own collection, a `.toml` file or a directory of them,
    /// added to the built-in one. `None`: the built-in collection alone.
    pub insights_path: Option<PathBuf>,
    /// `INSIGHTS_BUILTIN` (default on): serve the collection built into the binary. Off, only
    /// `INSIGHTS_PATH` is served.
    pub builtin_insights: bool,
    /// `DATABASE_URL`: the SQLite file, as `sqlite://path`.
    pub database_path: PathBuf,
    /// `DISCORD_GUILD_ID`: register commands in this server only (instant; for development).
    pub guild_id: Option<u64>,
    /// `DISCORD_API_BASE`: send REST calls here (a rate-limiting proxy, or a test's fake Discord).
    pub api_base: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests). Empty values
    /// count as unset, which is what an untouched line of `.env.example` gives.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let discord_token = match get("DISCORD_TOKEN") {
            None => None,
            Some(token) => Some(parse_token(&token)?),
        };
        let insights_path = get("INSIGHTS_PATH").map(PathBuf::from);
        let builtin_insights = match get("INSIGHTS_BUILTIN") {
            None => true,
            Some(value) => parse_switch(&value).ok_or_else(|| ConfigError {
                variable: "INSIGHTS_BUILTIN",
                reason: format!("{value:?} is not on or off: use on (the default: serve the built-in collection, plus INSIGHTS_PATH) or off (serve INSIGHTS_PATH alone)"),
            })?,
        };
        if !builtin_insights && insights_path.is_none() {
            return Err(ConfigError {
                variable: "INSIGHTS_BUILTIN",
                reason: "is off, but INSIGHTS_PATH is not set: there would be no insights; set INSIGHTS_PATH to your collection, or turn INSIGHTS_BUILTIN on".into(),
            });
        }
        let database_path = parse_database_url(
            &get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()),
        )?;
        let guild_id = match get("DISCORD_GUILD_ID") {
            None => None,
            Some(id) => Some(parse_snowflake(&id).ok_or_else(|| ConfigError {
                variable: "DISCORD_GUILD_ID",
                reason: format!(
                    "{id:?} is not a server id: copy it with Developer Mode on (right-click the server, Copy Server ID); it is a number like 1234567890123456789"
                ),
            })?),
        };
        let api_base = match get("DISCORD_API_BASE") {
            None => None,
            Some(base) => Some(parse_api_base(&base)?),
        };
        Ok(Config {
            discord_token,
            insights_path,
            builtin_insights,
            database_path,
            guild_id,
            api_base,
        })
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

fn parse_database_url(url: &str) -> Result<PathBuf, ConfigError> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| ConfigError {
            variable: "DATABASE_URL",
            reason: format!("{url:?} is not a SQLite URL: use sqlite://path/to/file.db, for example {DEFAULT_DATABASE_URL}"),
        })?;
    // Drop URL options such as `?mode=rwc`: the store always creates the file when missing.
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(ConfigError {
            variable: "DATABASE_URL",
            reason: format!("{url:?} names no file: the bot keeps its schedules in a file, for example {DEFAULT_DATABASE_URL}"),
        });
    }
    Ok(PathBuf::from(path))
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
    let url = reqwest::Url::parse(base).map_err(|e| {
        error(format!(
            "{base:?} is not a URL ({e}): use the proxy's base, for example http://127.0.0.1:3000"
        ))
    })?;
    let host = url
        .host()
        .ok_or_else(|| error(format!("{base:?} names no host")))?;
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
                    "{base:?} is plain http to another machine, which would send the bot token in clear text: use https://, or http:// only to this machine (127.0.0.1, ::1 or localhost)"
                )));
            }
        }
        other => {
            return Err(error(format!(
                "{base:?} is not an http(s) URL (scheme {other:?}): use the proxy's base, for example http://127.0.0.1:3000"
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
        assert_eq!(c.database_path, PathBuf::from("insight-bot.db"));
        assert_eq!(c.discord_token, None);
        assert_eq!(c.guild_id, None);
        assert_eq!(c.api_base, None);
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
            ("DATABASE_URL", "postgres://x"),
            ("DATABASE_URL", "sqlite://"),
            ("DISCORD_API_BASE", "localhost:3000"),
            ("DISCORD_API_BASE", "http://proxy.internal:3000"),
            ("DISCORD_API_BASE", "http://10.0.0.5:3000"),
            ("DISCORD_API_BASE", "http://[2001:db8::1]:3000"),
            ("DISCORD_API_BASE", "ftp://127.0.0.1"),
            ("INSIGHTS_BUILTIN", "maybe"),
            ("INSIGHTS_BUILTIN", "off"),
            ("DISCORD_TOKEN", "not a token"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{value}");
            assert!(err.to_string().starts_with(name), "{err}");
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
        assert_eq!(c.database_path, PathBuf::from("/tmp/x.db"));
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
}
