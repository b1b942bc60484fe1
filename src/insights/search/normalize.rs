//! What a question looks like before it is matched: the field's abbreviations spelled out, and
//! long messages cut into sentences so their point is not drowned.
//!
//! People in a team's Discord write "new EM, my ICs hate our 1:1s tbh". Neither the lexical index
//! nor the embedding model knows "EM" as "engineering manager", so the shorthand is expanded from
//! a table ([`ABBREVIATIONS`], `abbreviations.toml`): data, not special cases in code, and only
//! general workplace shorthand, never words fitted to one collection (server-owned collections
//! have no vocabulary of their own, so this table is all the help they get). Expansion is by
//! whole word, case-insensitive, keeping the punctuation around the word ("EM," -> "engineering
//! manager,").

use std::collections::HashMap;
use std::sync::OnceLock;

/// The abbreviation table, compiled in.
pub const ABBREVIATIONS: &str = include_str!("abbreviations.toml");

/// A sentence needs this many words to be matched on its own.
const MIN_SENTENCE_WORDS: usize = 3;

#[derive(serde::Deserialize)]
struct Table {
    expand: HashMap<String, String>,
}

fn table() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| match toml::from_str::<Table>(ABBREVIATIONS) {
        Ok(table) => table.expand,
        // The table is compiled in and checked by a test; a broken one must not stop answers.
        Err(e) => {
            tracing::error!("abbreviations.toml does not parse: {e}");
            HashMap::new()
        }
    })
}

/// `question` with the field's abbreviations spelled out.
pub fn expand_abbreviations(question: &str) -> String {
    let table = table();
    let mut out = String::with_capacity(question.len() + 16);
    for (i, raw) in question.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // The word without the punctuation around it; ':', '/' and '-' may belong to a key
        // ("1:1", "w/o", "1-1").
        let core =
            raw.trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, ':' | '/' | '-'));
        let core = core.trim_end_matches([':', '/', '-']);
        let expansion = (!core.is_empty())
            .then(|| table.get(&core.to_lowercase()))
            .flatten();
        match (expansion, raw.find(core)) {
            (Some(expansion), Some(at)) => {
                out.push_str(&raw[..at]);
                out.push_str(expansion);
                out.push_str(&raw[at + core.len()..]);
            }
            _ => out.push_str(raw),
        }
    }
    out
}

/// The sentences of `text` that have at least a few words, split at `.`, `!`, `?`, `;` and line
/// breaks. Used to let one sentence of a long message stand for its point.
pub fn sentences(text: &str) -> Vec<&str> {
    text.split(['.', '!', '?', ';', '\n'])
        .map(str::trim)
        .filter(|s| s.split_whitespace().count() >= MIN_SENTENCE_WORDS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_keys_are_lowercase_shorthand() {
        let table: Table = toml::from_str(ABBREVIATIONS).expect("abbreviations.toml parses");
        assert!(table.expand.len() > 50);
        for (key, value) in &table.expand {
            assert_eq!(key, &key.to_lowercase(), "{key}");
            assert!(
                !key.contains(' ') && !value.trim().is_empty(),
                "{key} = {value}"
            );
        }
    }

    #[test]
    fn shorthand_is_spelled_out_with_its_punctuation_kept() {
        assert_eq!(
            expand_abbreviations("new EM, my ICs hate our 1:1s tbh"),
            "new engineering manager, my individual contributors hate our one-on-ones to be honest"
        );
        assert_eq!(expand_abbreviations("(promo?)"), "(promotion?)");
        assert_eq!(
            expand_abbreviations("PIP: what now"),
            "performance improvement plan: what now"
        );
        // Words that are not shorthand, and words merely containing one, stay as typed.
        assert_eq!(expand_abbreviations("Emily's team"), "Emily's team");
        assert_eq!(expand_abbreviations("  spaced   out "), "spaced out");
        assert_eq!(expand_abbreviations(""), "");
    }

    #[test]
    fn long_messages_split_into_sentences() {
        let text = "long post sorry. i run eng at a startup; 4 EMs under me!\nwhat is my job now?";
        assert_eq!(
            sentences(text),
            [
                "long post sorry",
                "i run eng at a startup",
                "4 EMs under me",
                "what is my job now"
            ]
        );
        assert!(sentences("hi. ok.").is_empty());
    }
}
