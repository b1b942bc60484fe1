//! Hiding secrets in what the bot shows: the password (or the whole user info) of a URL, and the
//! value of a `password=`-like option, replaced by [`REDACTED`] wherever a URL or connection
//! string reaches a message, a log line or `check-config`.
//!
//! One string is read in several ways because its readers disagree, and whatever any of them
//! would take for a secret is hidden (when in doubt, more is hidden, never less):
//! - the WHATWG reading of the `url` crate (and reqwest): the user info ends at the last `@`
//!   before the first `/`, `?` or `#`;
//! - tokio-postgres: the credentials end at the *first* `@` of the whole string;
//! - what the operator meant with a raw `?`, `#`, `/` or `@` in a password
//!   (`postgres://bot:s3cr?et@db/x`): the user info ends at the *last* `@` of the string, so it
//!   is taken to run that far (this may hide the host too when a query holds a raw `@`);
//! - a query or libpq option (`?password=…`, `&sslpassword=…`, `password='a b\' c'`) whose key,
//!   percent-decoded in any case, names a secret: its value and everything after it in the query
//!   is hidden, since a raw `&` in the value would otherwise show the rest of it.
//!
//! A PostgreSQL URL keeps its user name, which says which role failed to log in; any other URL
//! (a proxy's `https://user:pw@…`, or `https://token@…`) loses its whole user info.

use std::io;
use std::ops::Range;

use url::form_urlencoded;

/// What replaces a secret that is shown.
pub const REDACTED: &str = "<redacted>";

/// Option names whose values are hidden, matched inside the lower-cased, percent-decoded key
/// (`password`, `sslpassword`, `PassWord`, `passw%6Frd`, `api_token`…).
const SECRET_KEY_PARTS: [&str; 4] = ["pass", "pwd", "secret", "token"];

/// `url`, a value an operator configured (`DATABASE_URL` as a URL or as libpq `key=value` pairs,
/// `DISCORD_API_BASE`), with every secret in it replaced by [`REDACTED`]. The scheme, host, port,
/// database and the other options stay, so a message still says what it is about.
pub fn redact_url(url: &str) -> String {
    if !starts_with_scheme(url) {
        // libpq's `host=db user=bot password=secret` form (or something unknown, read as such:
        // the values of secret-looking keys go), then any URL inside it.
        let mut hidden = secret_keyword_values(url);
        hidden.extend(secret_query_values(url, 0..url.len()));
        return redact_urls_in(&replace(url, hidden));
    }
    let separator = url.find("://").unwrap_or_default();
    let mut hidden = Vec::new();
    hidden.extend(user_info_secret(url, separator, url.len(), Reading::LastAt));
    hidden.extend(secret_query_values(url, separator + 3..url.len()));
    replace(url, hidden)
}

/// Whether `text` begins (after spaces) with `scheme://`.
fn starts_with_scheme(text: &str) -> bool {
    let text = text.trim_start();
    let scheme_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .unwrap_or(text.len());
    text.starts_with(|c: char| c.is_ascii_alphabetic()) && text[scheme_end..].starts_with("://")
}

/// `text` (an error message from a library, a log line) with the secrets of every URL in it
/// replaced by [`REDACTED`]. A URL runs from its scheme to the next space, `"`, `<` or `>`: the
/// characters a URL library always percent-encodes (a `)` or `'` may be in a password).
/// An http(s) URL there was written by a URL library, so its user info ends where the WHATWG
/// reading says (`https://user:pw@host/users/@me` keeps `host/users/@me`); any other is read as
/// conservatively as [`redact_url`] reads it.
pub fn redact_urls_in(text: &str) -> String {
    let mut hidden = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let separator = from + found;
        let after = separator + 3;
        let end = text[after..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>'))
            .map_or(text.len(), |i| after + i);
        let reading = match scheme_before(text, separator).as_str() {
            "http" | "https" | "ws" | "wss" => Reading::Authority,
            _ => Reading::LastAt,
        };
        hidden.extend(user_info_secret(text, separator, end, reading));
        hidden.extend(secret_query_values(text, after..end));
        from = end.max(after);
    }
    replace(text, hidden)
}

/// Where a URL's user info is taken to end.
#[derive(Clone, Copy)]
enum Reading {
    /// At the last `@` before the first `/`, `?`, `#` or `\` (the WHATWG URL standard).
    Authority,
    /// At the last `@` of the URL: covers the two other readings, and a raw `/`, `?`, `#` or `@`
    /// in a password.
    LastAt,
}

/// The scheme ending at `separator` (the `://`), lower-cased.
fn scheme_before(text: &str, separator: usize) -> String {
    let head = &text[..separator];
    let start = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .map_or(0, |i| i + 1);
    head[start..].to_ascii_lowercase()
}

/// The secret part of the user info of the URL whose `://` is at `separator` and which ends at
/// `end`: the password of a PostgreSQL URL (an empty one too, so `bot:@db` shows it had one),
/// the whole user info of any other.
fn user_info_secret(
    text: &str,
    separator: usize,
    end: usize,
    reading: Reading,
) -> Option<Range<usize>> {
    let start = separator + 3;
    let rest = &text[start..end];
    let at = match reading {
        Reading::LastAt => rest.rfind('@')?,
        Reading::Authority => {
            let authority = &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())];
            authority.rfind('@')?
        }
    };
    let keeps_user = matches!(
        scheme_before(text, separator).as_str(),
        "postgres" | "postgresql"
    );
    if keeps_user {
        // tokio-postgres and the URL standard both end the user name at the first `:`.
        let colon = rest[..at].find(':')?;
        Some(start + colon + 1..start + at)
    } else if at == 0 {
        None
    } else {
        Some(start..start + at)
    }
}

/// In `text[span]`, the value of the first query option whose key names a secret, and all that
/// follows it in the span. Every `?`, `&` and `;` is taken as a possible start of an option,
/// since a raw `?` in a password makes the real start of the query uncertain.
fn secret_query_values(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let part = &text[span.clone()];
    part.match_indices(['?', '&', ';']).find_map(|(i, _)| {
        let key_start = i + 1;
        let key_end = key_start + part[key_start..].find(['=', '&', '?', ';'])?;
        (part[key_end..].starts_with('=') && is_secret_key(&part[key_start..key_end]))
            .then(|| span.start + key_end + 1..span.end)
    })
}

/// The values of the secret options of a libpq connection string (`host=db password=secret`,
/// `password = 'a b\' c'`), each up to the next `key=` word: a stray word after a value
/// (`password=a b host=db`) is taken to belong to it.
fn secret_keyword_values(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut hidden = Vec::new();
    let mut i = skip_spaces(0);
    while i < bytes.len() {
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = &text[key_start..i];
        i = skip_spaces(i);
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i = skip_spaces(i + 1);
        let value_start = i;
        // libpq: a value is quoted with `'`, or runs to a space; `\` escapes the next character
        // in both.
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'\'' if quoted => {
                    i += 1;
                    break;
                }
                b if !quoted && b.is_ascii_whitespace() => break,
                _ => i += 1,
            }
        }
        i = i.min(bytes.len());
        if is_secret_key(key) {
            let end = next_keyword(text, i);
            hidden.push(value_start..end.max(value_start));
            i = end;
        }
        i = skip_spaces(i);
    }
    hidden
}

/// Where the next `key=` word after `from` starts (its preceding spaces excluded), or the end.
fn next_keyword(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            let word = i + 1;
            let mut j = word;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j > word && bytes.get(j) == Some(&b'=') {
                return text[..i].trim_end().len().max(from);
            }
        }
        i += 1;
    }
    bytes.len()
}

/// Whether an option's key names a secret, in any case and however often percent-encoded.
fn is_secret_key(key: &str) -> bool {
    let mut key = key.to_string();
    // The key as written, then up to three rounds of decoding: one is what the drivers do; more
    // costs nothing and catches a doubly encoded key.
    for _ in 0..4 {
        let lower = key.to_lowercase();
        if SECRET_KEY_PARTS.iter().any(|part| lower.contains(part)) {
            return true;
        }
        key = form_urlencoded::parse(key.as_bytes())
            .flat_map(|(name, value)| [name, value])
            .collect();
    }
    false
}

/// `text` with the `hidden` ranges (merged where they overlap or touch) replaced by [`REDACTED`].
fn replace(text: &str, mut hidden: Vec<Range<usize>>) -> String {
    hidden.sort_by_key(|r| (r.start, r.end));
    let mut shown = String::with_capacity(text.len());
    let mut position = 0;
    let mut ranges = hidden.into_iter().peekable();
    while let Some(range) = ranges.next() {
        let mut end = range.end;
        while let Some(next) = ranges.next_if(|next| next.start <= end) {
            end = end.max(next.end);
        }
        shown.push_str(&text[position..range.start]);
        shown.push_str(REDACTED);
        position = end;
    }
    shown.push_str(&text[position..]);
    shown
}

/// A log destination that passes every line through [`redact_urls_in`]: libraries' errors
/// (reqwest names the URL it failed on, user info included) reach the log without a secret.
/// Each event is one write of whole lines, so a URL is never split between two writes.
pub struct RedactingWriter<W>(pub W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact_urls_in(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Standard error through a [`RedactingWriter`], for `tracing_subscriber`'s `with_writer`.
pub fn redacted_stderr() -> RedactingWriter<io::Stderr> {
    RedactingWriter(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_raw_question_mark_in_the_password_does_not_end_the_user_info() {
        assert_eq!(
            redact_url("postgres://bot:s3cr?et@db.example:5432/insights"),
            "postgres://bot:<redacted>@db.example:5432/insights"
        );
    }

    #[test]
    fn a_percent_encoded_password_key_is_recognised() {
        assert_eq!(
            redact_url("postgres://bot@db.example/insights?passw%6Frd=topsecret"),
            "postgres://bot@db.example/insights?passw%6Frd=<redacted>"
        );
        for key in [
            "PASSWORD",
            "PassWord",
            "%70assword",
            "p%2561ssword",
            "sslpassword",
        ] {
            let url = format!("postgres://db.example/insights?sslmode=require&{key}=topsecret");
            let shown = redact_url(&url);
            assert_eq!(
                shown,
                format!("postgres://db.example/insights?sslmode=require&{key}=<redacted>")
            );
        }
    }

    #[test]
    fn the_credentials_of_an_api_base_go_whole() {
        assert_eq!(
            redact_url("https://user:pw@proxy.example"),
            "https://<redacted>@proxy.example"
        );
        // A lone user name may be a token.
        assert_eq!(
            redact_url("https://ghp_abc123@proxy.example/api"),
            "https://<redacted>@proxy.example/api"
        );
        assert_eq!(redact_url("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
    }

    #[test]
    fn redaction_keeps_everything_but_the_secrets() {
        for (url, shown) in [
            (
                "postgres://bot:secret@db:5432/x",
                "postgres://bot:<redacted>@db:5432/x",
            ),
            ("postgres://bot@db/x", "postgres://bot@db/x"),
            ("postgres://db/x", "postgres://db/x"),
            ("postgres://bot:@db/x", "postgres://bot:<redacted>@db/x"),
            // Everything after a secret option goes: a raw `&` may be part of the password.
            (
                "postgres://db/x?user=bot&password=secret&sslmode=disable",
                "postgres://db/x?user=bot&password=<redacted>",
            ),
            ("postgres://a:b@c@db/x", "postgres://a:<redacted>@db/x"),
            ("postgres://a:b/c#d@db/x", "postgres://a:<redacted>@db/x"),
            ("postgres://a:b@db/x@y", "postgres://a:<redacted>@y"),
            (
                "postgresql://bot:secret@%2Ftmp%2Fpg/x",
                "postgresql://bot:<redacted>@%2Ftmp%2Fpg/x",
            ),
            ("sqlite://state/bot.db", "sqlite://state/bot.db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn libpq_key_value_strings_lose_their_password() {
        for (conninfo, shown) in [
            (
                "host=db user=bot password=secret",
                "host=db user=bot password=<redacted>",
            ),
            (
                r"host=db password='a b\' c' dbname=insights",
                "host=db password=<redacted> dbname=insights",
            ),
            (
                "host=db password = secret sslpassword=other port=5432",
                "host=db password = <redacted> sslpassword=<redacted> port=5432",
            ),
            // A stray word after an unquoted value is taken as part of it.
            ("password=two words host=db", "password=<redacted> host=db"),
            (r"PASSWORD='unterminated \' host=db", "PASSWORD=<redacted>"),
        ] {
            assert_eq!(redact_url(conninfo), shown, "{conninfo}");
        }
    }

    #[test]
    fn urls_inside_a_message_lose_their_credentials() {
        let message = "error sending request for url (https://user:pw%40x@proxy.example/api/v10/users/@me): connection refused";
        assert_eq!(
            redact_urls_in(message),
            "error sending request for url (https://<redacted>@proxy.example/api/v10/users/@me): connection refused"
        );
        assert_eq!(
            redact_urls_in("cannot reach postgres://bot:a@b@db/x or http://127.0.0.1:9/x"),
            "cannot reach postgres://bot:<redacted>@db/x or http://127.0.0.1:9/x"
        );
        // A placeholder in a hint stays: a `<` ends a URL in text.
        let hint = "use postgres://user:<password>@host:5432/database";
        assert_eq!(redact_urls_in(hint), hint);
        // Already redacted text stays as it is.
        let once = redact_urls_in(message);
        assert_eq!(redact_urls_in(&once), once);
    }

    #[test]
    fn the_log_writer_redacts_what_passes_through() {
        use std::io::Write;
        let mut writer = RedactingWriter(Vec::new());
        let line = b"WARN request failed for url (https://user:hunter2@proxy.example/x)\n";
        assert_eq!(writer.write(line).unwrap(), line.len());
        let written = String::from_utf8(writer.0).unwrap();
        assert_eq!(
            written,
            "WARN request failed for url (https://<redacted>@proxy.example/x)\n"
        );
    }

    /// Every byte but ASCII letters and digits as `%XX`: how a careful operator writes a
    /// password into a URL.
    fn percent_encoded(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// Passwords of printable ASCII (every delimiter a URL or libpq has) and non-ASCII letters.
    fn password() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range(' ', '~'),
                1 => proptest::char::range('\u{a0}', '\u{24f}'),
                1 => Just('中'),
            ],
            6..24,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn host() -> impl Strategy<Value = String> {
        "[a-z]{3,10}\\.example"
    }

    fn database() -> impl Strategy<Value = String> {
        "[a-z]{3,10}_db"
    }

    /// Whether a password holds a word that marks a secret option (`…?pwd=…`), after which
    /// everything is hidden: the URL stays safe, but need not keep its host.
    fn names_a_secret(password: &str) -> bool {
        is_secret_key(password)
    }

    /// The password, raw or encoded, is not in `shown`, unless it was already in what the URL
    /// shows without it (a password such as `redact` or `example`).
    fn assert_hidden(shown: &str, skeleton: &str, password: &str) -> Result<(), TestCaseError> {
        for form in [password.to_string(), percent_encoded(password)] {
            if !skeleton.contains(&form) && !REDACTED.contains(&form) {
                prop_assert!(!shown.contains(&form), "{form:?} shown in {shown:?}");
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn a_password_in_the_user_info_never_shows(
            password in password(),
            encode in any::<bool>(),
            host in host(),
            database in database(),
            query in prop_oneof![Just(""), Just("?sslmode=require")],
        ) {
            let written = if encode { percent_encoded(&password) } else { password.clone() };
            let url = format!("postgres://bot:{written}@{host}:5432/{database}{query}");
            let shown = redact_url(&url);
            let skeleton = format!("postgres://bot:@{host}:5432/{database}{query}");
            assert_hidden(&shown, &skeleton, &password)?;
            if !names_a_secret(&password) {
                prop_assert_eq!(
                    shown,
                    format!("postgres://bot:{REDACTED}@{host}:5432/{database}{query}")
                );
            }
        }

        #[test]
        fn a_password_option_in_the_query_never_shows(
            password in password(),
            encode in any::<bool>(),
            key in prop_oneof![
                Just("password"), Just("PASSWORD"), Just("PassWord"), Just("passw%6Frd"),
                Just("%70assword"), Just("sslpassword"), Just("SSLPASSWORD"),
            ],
            host in host(),
            database in database(),
            after in prop_oneof![Just(""), Just("&application_name=bot")],
        ) {
            let written = if encode { percent_encoded(&password) } else { password.clone() };
            let url = format!(
                "postgres://bot@{host}:5432/{database}?sslmode=require&{key}={written}{after}"
            );
            let shown = redact_url(&url);
            let skeleton = format!("postgres://bot@{host}:5432/{database}?sslmode=require&{key}={after}");
            assert_hidden(&shown, &skeleton, &password)?;
            prop_assert!(shown.contains(&host), "{shown}");
            // A raw `@` in the query makes tokio-postgres read the credentials up to it, so
            // everything from the port on may be hidden then.
            if !written.contains('@') {
                prop_assert_eq!(
                    shown,
                    format!("postgres://bot@{host}:5432/{database}?sslmode=require&{key}={REDACTED}")
                );
            }
        }

        #[test]
        fn a_password_in_a_libpq_string_never_shows(
            password in password(),
            host in host(),
            database in database(),
        ) {
            let quoted = format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"));
            let plain = !password.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\');
            let mut forms = vec![quoted];
            if plain {
                forms.push(password.clone());
            }
            for value in forms {
                let conninfo = format!("host={host} user=bot password={value} dbname={database}");
                let shown = redact_url(&conninfo);
                let skeleton = format!("host={host} user=bot password= dbname={database}");
                assert_hidden(&shown, &skeleton, &password)?;
                if !names_a_secret(&password) {
                    prop_assert_eq!(
                        shown,
                        format!("host={host} user=bot password={REDACTED} dbname={database}")
                    );
                }
            }
        }

        #[test]
        fn the_credentials_of_any_other_url_never_show(
            user in "[a-z]{6,12}",
            password in password(),
            encode in any::<bool>(),
            host in host(),
        ) {
            let written = if encode { percent_encoded(&password) } else { password.clone() };
            let url = format!("https://{user}:{written}@{host}/api");
            let shown = redact_url(&url);
            let skeleton = format!("https://@{host}/api");
            assert_hidden(&shown, &skeleton, &password)?;
            if !skeleton.contains(&user) {
                prop_assert!(!shown.contains(&user), "{shown}");
            }
            if !names_a_secret(&password) {
                prop_assert_eq!(shown, format!("https://{REDACTED}@{host}/api"));
            }
        }

        #[test]
        fn a_url_a_library_wrote_into_a_message_shows_no_credentials(
            user in "[a-z]{6,12}",
            password in password(),
            host in host(),
        ) {
            let mut url = url::Url::parse(&format!("https://{host}/api/v10/users/@me")).unwrap();
            url.set_username(&user).unwrap();
            url.set_password(Some(&password)).unwrap();
            let message = format!("error sending request for url ({url}): timed out");
            let shown = redact_urls_in(&message);
            let skeleton = format!("error sending request for url (https://@{host}/api/v10/users/@me): timed out");
            assert_hidden(&shown, &skeleton, &password)?;
            prop_assert_eq!(
                shown,
                format!("error sending request for url (https://{REDACTED}@{host}/api/v10/users/@me): timed out")
            );
        }
    }
}
