//! Exporting insights in the data-file format: [`export_toml`].
//!
//! The output is what `data/insights.toml` looks like (same keys in the same order, `asks` one per
//! line), so an export can be read back by [`super::parse_import`], loaded with `INSIGHTS_PATH`, or
//! edited by hand. Strings are escaped here rather than with the `toml` crate's serializer, which
//! would need its `display` feature and gives no say over the layout.

use std::fmt::Write;

use super::Insight;

/// The insights as one TOML document of `[[insight]]` tables, in the given order, after a comment
/// line saying what the file is.
///
/// `text` is written as a multi-line string (`"""…"""`) when it holds a newline or a quote, as the
/// data file writes its texts; every other string as a basic string (`"…"`). An empty `asks` is
/// written `asks = []` (allowed by a server's rules, refused by the data files').
pub fn export_toml(insights: &[Insight]) -> String {
    let mut out = String::new();
    let count = match insights.len() {
        1 => "1 insight".to_string(),
        n => format!("{n} insights"),
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# {count} exported by insight-bot, in the format of its data files (see \
         docs/curation.md in its repository)."
    );
    for insight in insights {
        out.push_str("\n[[insight]]\nid = ");
        push_basic(&mut out, &insight.id);
        out.push_str("\ntitle = ");
        push_basic(&mut out, &insight.title);
        out.push_str("\ntext = ");
        if insight.text.contains(['\n', '"']) {
            push_multi_line(&mut out, &insight.text);
        } else {
            push_basic(&mut out, &insight.text);
        }
        out.push_str("\ntopics = [");
        for (i, topic) in insight.topics.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_basic(&mut out, topic);
        }
        out.push_str("]\nasks = [");
        for ask in &insight.asks {
            out.push_str("\n    ");
            push_basic(&mut out, ask);
            out.push(',');
        }
        if !insight.asks.is_empty() {
            out.push('\n');
        }
        out.push_str("]\nsource = { title = ");
        push_basic(&mut out, &insight.source.title);
        out.push_str(", publisher = ");
        push_basic(&mut out, &insight.source.publisher);
        if let Some(url) = &insight.source.url {
            out.push_str(", url = ");
            push_basic(&mut out, url);
        }
        out.push_str(" }\n");
    }
    out
}

/// The escape of a character that may not appear as itself in any TOML basic string: the quote,
/// the backslash and the control characters (tab too, for legibility). `None` for the others.
fn escape(c: char) -> Option<String> {
    Some(match c {
        '"' => "\\\"".into(),
        '\\' => "\\\\".into(),
        '\n' => "\\n".into(),
        '\t' => "\\t".into(),
        '\r' => "\\r".into(),
        '\u{8}' => "\\b".into(),
        '\u{c}' => "\\f".into(),
        c if c.is_control() => format!("\\u{:04X}", u32::from(c)),
        _ => return None,
    })
}

/// `"…"`, on one line.
fn push_basic(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match escape(c) {
            Some(escaped) => out.push_str(&escaped),
            None => out.push(c),
        }
    }
    out.push('"');
}

/// `"""…"""`: newlines and quotes as themselves where TOML allows it. A quote is escaped when it
/// would make a third in a row (`"""` ends the string), or stand first or last (next to the
/// delimiters); a newline first would be dropped by TOML, so it is escaped too.
fn push_multi_line(out: &mut String, s: &str) {
    out.push_str("\"\"\"");
    let mut quotes_in_a_row = 0;
    let mut chars = s.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let last = chars.peek().is_none();
        match c {
            '"' if quotes_in_a_row < 2 && !first && !last => {
                out.push('"');
                quotes_in_a_row += 1;
            }
            '\n' if !first => {
                out.push('\n');
                quotes_in_a_row = 0;
            }
            c => {
                match escape(c) {
                    Some(escaped) => out.push_str(&escaped),
                    None => out.push(c),
                }
                quotes_in_a_row = 0;
            }
        }
        first = false;
    }
    out.push_str("\"\"\"");
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::insights::packs::BUILTIN_PACKS;
    use crate::insights::validate::Rules;
    use crate::insights::{parse_import, Library, Source};

    fn insight(text: &str) -> Insight {
        Insight {
            id: "an-id".into(),
            title: "A \"quoted\" title\\".into(),
            text: text.into(),
            topics: vec!["delegation".into(), "new-manager".into()],
            asks: vec!["How do I delegate?".into()],
            source: Source {
                title: "A page".into(),
                publisher: "RiffOn".into(),
                url: Some("https://example.com/a?b=c".into()),
            },
            pack: None,
        }
    }

    #[test]
    fn an_export_looks_like_the_data_file() {
        let mut second = insight("Say \"no\".\nThen \"\"\"breathe\"\"\".");
        second.id = "second".into();
        second.asks.clear();
        second.source.url = None;
        assert_eq!(
            export_toml(&[insight("Plain text."), second]),
            r#"# 2 insights exported by insight-bot, in the format of its data files (see docs/curation.md in its repository).

[[insight]]
id = "an-id"
title = "A \"quoted\" title\\"
text = "Plain text."
topics = ["delegation", "new-manager"]
asks = [
    "How do I delegate?",
]
source = { title = "A page", publisher = "RiffOn", url = "https://example.com/a?b=c" }

[[insight]]
id = "second"
title = "A \"quoted\" title\\"
text = """Say "no".
Then ""\"breathe""\"."""
topics = ["delegation", "new-manager"]
asks = []
source = { title = "A page", publisher = "RiffOn" }
"#
        );
    }

    #[test]
    fn every_pack_survives_export_and_import() {
        // An export is not a pack: what comes back is the pack's insights without their pack.
        let builtin: Vec<Insight> = Library::builtin()
            .unwrap()
            .insights()
            .iter()
            .map(|i| Insight {
                pack: None,
                ..i.clone()
            })
            .collect();
        let exported = export_toml(&builtin);
        let back = parse_import("export.toml", exported.as_bytes(), &Rules::file());
        assert_eq!(back.as_deref(), Ok(&builtin[..]));
        // The same layout as the data files: their entries, without their own header comment,
        // where a text with neither quote nor newline is a basic string.
        let entries = |toml: &str| -> String {
            toml.lines()
                .skip_while(|line| !line.starts_with("[[insight]]"))
                .map(|line| match line.strip_prefix("text = \"\"\"") {
                    Some(rest) if !rest[..rest.len() - 3].contains('"') => {
                        format!("text = \"{}\"", &rest[..rest.len() - 3])
                    }
                    _ => line.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        // The seed pack was written in the exporter's layout; the starter packs were written by
        // hand (a text may open with `""""`, where the exporter escapes the quote), so for them
        // the round trip above is the check.
        let seed = &BUILTIN_PACKS[0];
        let count = seed.insights_toml.matches("[[insight]]").count();
        assert_eq!(
            entries(&export_toml(&builtin[..count])),
            entries(seed.insights_toml)
        );
    }

    #[test]
    fn awkward_texts_are_escaped() {
        for text in [
            "\"quoted at both ends\"",
            "ends with two \"\"",
            "\"\"\"\"\"\" six quotes",
            "a\\\nbackslash at a line end",
            "\u{0}\u{1b}\u{7f}\u{85} controls\r\nand CRLF\ttab",
            "emoji 🚀 and 中文 and é\n\"",
        ] {
            let exported = export_toml(&[insight(text)]);
            let back = parse_import("a.toml", exported.as_bytes(), &Rules::file())
                .unwrap_or_else(|p| panic!("{text:?}: {p:?}\n{exported}"));
            assert_eq!(back[0].text, text, "{exported}");
        }
    }

    /// A trimmed, non-empty string of awkward pieces: quotes, `"""`, backslashes, newlines (also
    /// CRLF), tabs, control characters, TOML syntax, accents, CJK and emoji.
    fn awkward(max_pieces: usize) -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9 ]{1,8}",
            Just("\"".to_string()),
            Just("\"\"\"".to_string()),
            Just("\\".to_string()),
            Just("\\n".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just("\t".to_string()),
            Just("'''".to_string()),
            Just("[[insight]]\nid = \"x\"".to_string()),
            Just("# not a comment".to_string()),
            r"[\x00-\x1f\x7f\x{80}-\x{9f}]",
            "[éüßæøЖ中文日本🚀🙂👩‍💻]{1,3}",
        ];
        proptest::collection::vec(piece, 1..max_pieces)
            .prop_map(|pieces| pieces.concat().trim().to_string())
            .prop_filter("not blank", |s| !s.is_empty())
    }

    fn slug() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,3}"
    }

    fn valid_insight() -> impl Strategy<Value = Insight> {
        (
            slug(),
            awkward(12),
            awkward(40),
            proptest::collection::vec(slug(), 1..4),
            proptest::collection::vec(awkward(6), 1..4),
            (awkward(6), awkward(4), proptest::option::of(awkward(6))),
        )
            .prop_map(
                |(id, title, text, topics, asks, (st, publisher, url))| Insight {
                    id,
                    title,
                    text,
                    topics,
                    asks,
                    source: Source {
                        title: st,
                        publisher,
                        url,
                    },
                    pack: None,
                },
            )
    }

    proptest! {
        #[test]
        fn any_valid_insights_survive_export_and_import(
            mut insights in proptest::collection::vec(valid_insight(), 1..6)
        ) {
            for (i, insight) in insights.iter_mut().enumerate() {
                insight.id = format!("{}-{i}", insight.id); // unique
            }
            let exported = export_toml(&insights);
            let back = parse_import("export.toml", exported.as_bytes(), &Rules::file());
            prop_assert_eq!(back, Ok(insights), "{}", exported);
        }
    }
}
