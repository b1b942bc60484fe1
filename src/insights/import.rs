//! Importing insights from an uploaded file: [`parse_import`].
//!
//! All or nothing, like the loader: every problem in the file is reported as `file:line: reason`
//! ([`Problem`], sorted by line), and insights are returned only when there is none. Every insight
//! is checked by [`validate`] with the caller's [`Rules`], the same checks as the data files.
//!
//! # Limits
//!
//! At most [`MAX_IMPORT_BYTES`] (1 MiB) and [`MAX_IMPORT_INSIGHTS`] (1,000) insights per file. The
//! file must be UTF-8; a leading byte-order mark is ignored and CRLF line ends are read as LF.
//!
//! # Which format
//!
//! A file is read as **TOML** (the data-file format, `[[insight]]` tables as in
//! `data/insights.toml`) when its name ends in `.toml` (any case), or when its first line that is
//! neither blank nor a `#` line is `[[insight]]`. A TOML file with a syntax error is therefore
//! still reported as TOML. Duplicate ids in it are errors, as in the loader.
//!
//! Anything else is read as **plain text or Markdown**:
//!
//! - If any line is a Markdown heading (`#` to `######` then a space), **each heading starts an
//!   insight**: the heading is its title, everything up to the next heading is its body, and blank
//!   lines inside the body separate paragraphs of the text (kept as a blank line). Non-blank text
//!   before the first heading is an error.
//! - Otherwise **each block of lines separated by blank lines is an insight**: its first line is the
//!   title, the other lines are its body (so a text is one paragraph).
//!
//! A title loses its heading marks (`## `, and a closing ` ##`), a list mark (`- ` or `* `), and
//! `**…**` or `__…__` around it. In the body, a line of one of these forms (the label in any case,
//! optionally after a list mark or in bold: `- **Topics:** a, b`) is read as data, not text:
//!
//! - `Topics: delegation, new manager` (or `Topic:`): topics as [`super::parse_topics`] reads a form's:
//!   separated by commas or semicolons, lowercased, spaces made hyphens;
//! - `Asks: How do I delegate? | I micromanage`: example questions separated by `|`;
//! - `Ask: How do I delegate?`: one example question (the whole rest of the line).
//!
//! These lines may appear anywhere in the body and more than once (they add up). The other lines
//! are the text: trimmed and joined with a space, as Markdown joins the lines of a paragraph,
//! except that a line starting a list item (`- `, `* `, `+ `, `1. `, `1) `) starts a new line.
//! Markdown emphasis and links are kept as written (Discord renders them). An insight without a
//! `Topics:` line takes [`Rules::default_topic`], one without `Ask`/`Asks` lines has no asks
//! (refused when [`Rules::asks_required`]), and the source is always [`Rules::default_source`].
//! An insight with a title but no text is an error on its title's line.
//!
//! Ids are made from titles ([`slug_from_title`]), unique within the file: a second "Trust" is
//! `trust-2`. Whether an id is free among the insights already stored is the caller's question.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::library::{check_file, drop_duplicates, Problem};
use super::validate::{
    too_many as too_many_entries, topics_in, validate, Fields, ProblemKind, Rules, TitleIds,
    MAX_ASKS, MAX_TOPICS,
};
use super::Insight;

/// The largest file [`parse_import`] reads: 1 MiB.
pub const MAX_IMPORT_BYTES: usize = 1024 * 1024;
/// The most insights one imported file may hold.
pub const MAX_IMPORT_INSIGHTS: usize = 1000;
/// The most problems [`parse_import`] lists; past this it says there are more. A hostile 1 MiB
/// file can hold 80,000 broken blocks, and nobody fixes a file from the 80,000th error.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// Reads the insights of an uploaded file (see the module documentation for the formats), in file
/// order, or every problem found. `file_name` chooses the format and names the file in problems.
pub fn parse_import(
    file_name: &str,
    bytes: &[u8],
    rules: &Rules,
) -> Result<Vec<Insight>, Vec<Problem>> {
    let file = PathBuf::from(file_name);
    let whole_file = |reason: String| {
        Err(vec![Problem {
            file: file.clone(),
            line: 1,
            reason,
        }])
    };
    if bytes.len() > MAX_IMPORT_BYTES {
        return whole_file(format!(
            "the file is {:.1} MiB ({} bytes); the limit is 1 MiB ({MAX_IMPORT_BYTES} bytes): \
             split it into smaller files",
            bytes.len() as f64 / MAX_IMPORT_BYTES as f64,
            bytes.len()
        ));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return whole_file("the file is UTF-16 text: save it as UTF-8".into());
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.valid_up_to();
            return Err(vec![Problem {
                file,
                line: bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1,
                reason: format!(
                    "the file is not UTF-8 text: byte {} (0x{:02X}) is not valid UTF-8; save the \
                     file as UTF-8",
                    at + 1,
                    bytes[at]
                ),
            }]);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text: Cow<str> = if text.contains("\r\n") {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    };

    let (insights, mut problems) = if is_toml(file_name, &text) {
        parse_toml(&file, &text, rules)
    } else {
        parse_text(&file, &text, rules)
    };
    if insights.is_empty() && problems.is_empty() {
        return whole_file("the file holds no insights: nothing to import".into());
    }
    if problems.is_empty() {
        Ok(insights)
    } else {
        problems.sort_by_key(|p| p.line);
        if problems.len() > MAX_LISTED_PROBLEMS {
            problems.truncate(MAX_LISTED_PROBLEMS);
            let line = problems.last().map_or(1, |p| p.line);
            problems.push(Problem {
                file,
                line,
                reason: format!(
                    "more problems follow; only the first {MAX_LISTED_PROBLEMS} are listed: fix \
                     these and import the file again"
                ),
            });
        }
        Err(problems)
    }
}

/// The data-file format: by name, or by its first line that is not blank or a comment.
fn is_toml(file_name: &str, text: &str) -> bool {
    if file_name.to_ascii_lowercase().ends_with(".toml") {
        return true;
    }
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .is_some_and(|line| {
            let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            squeezed.starts_with("[[insight]]")
        })
}

/// The problem reported on the first insight past [`MAX_IMPORT_INSIGHTS`]; reading stops there,
/// so the file's whole count is not known (nor worth the time to learn).
fn too_many() -> String {
    format!(
        "the file holds more than {MAX_IMPORT_INSIGHTS} insights; an import may hold at most \
         {MAX_IMPORT_INSIGHTS} (this is the first one over): split the file"
    )
}

/// A title as quoted in a problem: enough to find it, never the whole of a 1 MiB line (a
/// problem list repeats it once per problem).
fn quoted_title(title: &str) -> String {
    const SHOWN: usize = 60;
    if title.chars().count() <= SHOWN {
        return format!("\"{title}\"");
    }
    let start: String = title.chars().take(SHOWN - 1).collect();
    format!("\"{start}…\"")
}

fn parse_toml(file: &Path, text: &str, rules: &Rules) -> (Vec<Insight>, Vec<Problem>) {
    // Counted before parsing: 87,000 `[[insight]]` tables in 1 MiB would parse into 56 MiB of
    // tables only to be refused (measured: `benches/import.rs`).
    let headers = text.lines().enumerate().filter(|(_, line)| {
        line.trim_start().starts_with('[') && {
            let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            squeezed == "[[insight]]"
        }
    });
    if let Some((at, _)) = headers.clone().nth(MAX_IMPORT_INSIGHTS) {
        let problem = Problem {
            file: file.to_path_buf(),
            line: at + 1,
            reason: too_many(),
        };
        return (Vec::new(), vec![problem]);
    }
    let mut checked = check_file(file, text, rules, Some(MAX_IMPORT_INSIGHTS));
    if let Some(span) = checked.entries.get(MAX_IMPORT_INSIGHTS) {
        checked.check.report(span.clone(), too_many());
    }
    let insights = drop_duplicates(checked.insights, &mut checked.check, &mut HashMap::new());
    (insights, checked.check.problems)
}

/// One insight of a text or Markdown file, as written.
struct Entry<'a> {
    title_line: usize,
    title: String,
    /// Every line after the title, blank ones included, with its number.
    body: Vec<(usize, &'a str)>,
}

/// What a body holds: the text and the `Topics:`/`Ask:` lines, each with its (first) line.
#[derive(Default)]
struct Body {
    text: String,
    text_line: Option<usize>,
    topics: Option<(usize, Vec<String>)>,
    asks: Option<(usize, Vec<String>)>,
    /// How many topics and asks were written: the lists keep one past their limit, enough for
    /// validation to refuse them, and a half-million-entry line is counted, not kept.
    topics_written: usize,
    asks_written: usize,
}

fn parse_text(file: &Path, text: &str, rules: &Rules) -> (Vec<Insight>, Vec<Problem>) {
    let mut problems = Vec::new();
    // One past the listed maximum is kept, so that `parse_import` knows there were more.
    let mut report = |line: usize, reason: String| {
        if problems.len() > MAX_LISTED_PROBLEMS {
            return;
        }
        problems.push(Problem {
            file: file.to_path_buf(),
            line,
            reason,
        })
    };
    // Lines are read as they come, never collected: reading stops at the 1,001st insight, and a
    // 1 MiB file of 800,000 short lines costs no list of them.
    let lines = || text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let sections = text.lines().any(|line| heading(line).is_some());
    let mut entries: Vec<Entry> = Vec::new();
    if sections {
        let mut preamble_reported = false;
        for (n, line) in lines() {
            if let Some(title) = heading(line) {
                if entries.len() == MAX_IMPORT_INSIGHTS {
                    report(n, too_many());
                    break;
                }
                entries.push(Entry {
                    title_line: n,
                    title: clean_title(title),
                    body: Vec::new(),
                });
            } else if let Some(entry) = entries.last_mut() {
                entry.body.push((n, line));
            } else if !line.trim().is_empty() && !preamble_reported {
                preamble_reported = true;
                report(
                    n,
                    "text before the first heading: in a file with `#` headings, each insight \
                     starts with its heading"
                        .into(),
                );
            }
        }
    } else {
        for block in blocks(lines()) {
            let Some(&(n, first)) = block.first() else {
                continue;
            };
            if let Some((label, _)) = meta_line(first) {
                report(
                    n,
                    format!(
                        "a `{label}` line alone: it belongs in an insight's block, under its \
                         title with no blank line before it"
                    ),
                );
                continue;
            }
            if entries.len() == MAX_IMPORT_INSIGHTS {
                report(n, too_many());
                break;
            }
            entries.push(Entry {
                title_line: n,
                title: clean_title(first),
                body: block[1..].to_vec(),
            });
        }
    }

    let mut ids = TitleIds::default();
    let mut insights = Vec::new();
    for entry in &entries {
        let id = ids.id_for(&entry.title, &|id: &str| rules.reserved_ids.contains(id));
        let body = read_body(&entry.body);
        let fields = Fields {
            id: Some(&id),
            title: Some(&entry.title),
            text: Some(&body.text),
            topics: body.topics.as_ref().map(|(_, t)| t.as_slice()),
            asks: body.asks.as_ref().map(|(_, a)| a.as_slice()),
            source: None,
        };
        let found = match validate(fields, rules) {
            Ok(insight) => {
                insights.push(insight);
                continue;
            }
            Err(found) => found,
        };
        for problem in found {
            let line = match problem.field {
                "text" => body.text_line,
                "topics" => body.topics.as_ref().map(|(n, _)| *n),
                "asks" => body.asks.as_ref().map(|(n, _)| *n),
                _ => None,
            };
            let reason = match (problem.field, problem.kind) {
                ("text", ProblemKind::Empty) => format!(
                    "{} has a title but no text: {}",
                    quoted_title(&entry.title),
                    if sections {
                        "write it under the heading, before the next heading"
                    } else {
                        "write it on the lines under the title (a blank line ends an insight)"
                    }
                ),
                ("topics", ProblemKind::Missing) => {
                    "no topics: add a line `Topics: a, b` to this insight".into()
                }
                ("asks", ProblemKind::Missing) => {
                    "no example questions: add a line `Asks: a question | another` to this \
                     insight"
                        .into()
                }
                ("topics", ProblemKind::TooMany) => too_many_entries("topics", body.topics_written),
                ("asks", ProblemKind::TooMany) => too_many_entries("asks", body.asks_written),
                ("source", ProblemKind::Missing) => "no source: a text or Markdown file names \
                                                     none, and this import has no default source"
                    .into(),
                _ => problem.reason,
            };
            report(line.unwrap_or(entry.title_line), reason);
        }
    }
    (insights, problems)
}

/// Runs of non-blank numbered lines, as they come (blank lines separate them).
fn blocks<'a>(
    mut lines: impl Iterator<Item = (usize, &'a str)>,
) -> impl Iterator<Item = Vec<(usize, &'a str)>> {
    std::iter::from_fn(move || {
        let mut block = Vec::new();
        for (n, line) in lines.by_ref() {
            if line.trim().is_empty() {
                if block.is_empty() {
                    continue;
                }
                return Some(block);
            }
            block.push((n, line));
        }
        (!block.is_empty()).then_some(block)
    })
}

/// The text of a Markdown ATX heading line (`## Title ##` -> `Title`), or `None`.
fn heading(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let marks = line.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&marks) {
        return None;
    }
    let rest = &line[marks..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    let unclosed = rest.trim_end_matches('#');
    Some(if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        unclosed.trim_end()
    } else {
        rest
    })
}

fn strip_list_mark(line: &str) -> &str {
    line.strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .unwrap_or(line)
}

/// A title without heading marks, list mark or bold around it.
fn clean_title(line: &str) -> String {
    let line = line.trim();
    let line = heading(line).unwrap_or(line);
    let mut title = strip_list_mark(line).trim();
    for wrapper in ["**", "__"] {
        if let Some(inner) = title
            .strip_prefix(wrapper)
            .and_then(|t| t.strip_suffix(wrapper))
        {
            if !inner.contains(wrapper) {
                title = inner.trim();
            }
        }
    }
    title.to_string()
}

/// A `Topics:`, `Asks:` or `Ask:` line: its label as written and the rest of the line.
fn meta_line(line: &str) -> Option<(&str, &str)> {
    let line = strip_list_mark(line.trim()).trim_start_matches(['*', '_']);
    let (label, rest) = line.split_once(':')?;
    let label = label.trim_end_matches(['*', '_']).trim();
    let known = ["topic", "topics", "ask", "asks"];
    if !known.iter().any(|k| label.eq_ignore_ascii_case(k)) {
        return None;
    }
    Some((label, rest.trim_start_matches(['*', '_']).trim()))
}

fn starts_list_item(line: &str) -> bool {
    if ["- ", "* ", "+ "].iter().any(|mark| line.starts_with(mark)) {
        return true;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") "))
}

fn read_body(lines: &[(usize, &str)]) -> Body {
    let mut body = Body::default();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut paragraph = String::new();
    for &(n, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            if !paragraph.is_empty() {
                paragraphs.push(std::mem::take(&mut paragraph));
            }
            continue;
        }
        match meta_line(line) {
            Some((label, rest)) if label.to_ascii_lowercase().starts_with("topic") => {
                let topics = &mut body.topics.get_or_insert((n, Vec::new())).1;
                for topic in topics_in(rest) {
                    body.topics_written += 1;
                    if topics.len() <= MAX_TOPICS {
                        topics.push(topic);
                    }
                }
            }
            Some((label, rest)) => {
                let asks = &mut body.asks.get_or_insert((n, Vec::new())).1;
                let written: Box<dyn Iterator<Item = &str>> = if label.eq_ignore_ascii_case("ask") {
                    Box::new((!rest.is_empty()).then_some(rest).into_iter())
                } else {
                    Box::new(rest.split('|').map(str::trim).filter(|ask| !ask.is_empty()))
                };
                for ask in written {
                    body.asks_written += 1;
                    if asks.len() <= MAX_ASKS {
                        asks.push(ask.to_string());
                    }
                }
            }
            None => {
                body.text_line.get_or_insert(n);
                if !paragraph.is_empty() {
                    paragraph.push(if starts_list_item(line) { '\n' } else { ' ' });
                }
                paragraph.push_str(line);
            }
        }
    }
    if !paragraph.is_empty() {
        paragraphs.push(paragraph);
    }
    body.text = paragraphs.join("\n\n");
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    use crate::insights::packs::BUILTIN_PACKS;
    use crate::insights::{Library, Source};

    const GOOD: &str = r#"
[[insight]]
id = "first-one"
title = "A title"
text = "Some text about delegation."
topics = ["delegation"]
asks = ["How do I delegate?"]
source = { title = "A page", publisher = "RiffOn" }
"#;

    fn our_source() -> Source {
        Source {
            title: "Our own notes".into(),
            publisher: "Curators".into(),
            url: None,
        }
    }

    fn server() -> Rules {
        Rules::server(our_source(), Some("ours".into()))
    }

    fn import(name: &str, text: &str) -> Vec<Insight> {
        parse_import(name, text.as_bytes(), &server()).unwrap_or_else(|p| panic!("{name}: {p:?}"))
    }

    fn problems_with(name: &str, bytes: &[u8], rules: &Rules) -> Vec<String> {
        parse_import(name, bytes, rules)
            .expect_err("should not import")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn problems(name: &str, text: &str) -> Vec<String> {
        problems_with(name, text.as_bytes(), &server())
    }

    fn ids(insights: &[Insight]) -> Vec<&str> {
        insights.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn the_data_files_import_as_the_loader_loads_them() {
        let builtin = Library::builtin().unwrap();
        let mut imported = Vec::new();
        for pack in BUILTIN_PACKS {
            let part = parse_import(
                "insights.toml",
                pack.insights_toml.as_bytes(),
                &Rules::file(),
            )
            .unwrap_or_else(|p| panic!("{}: {p:?}", pack.id));
            // An import is a server's: it belongs to no pack.
            assert!(part.iter().all(|i| i.pack.is_none()));
            imported.extend(part.into_iter().map(|i| Insight {
                pack: Some(pack.id),
                ..i
            }));
        }
        assert_eq!(imported, builtin.insights());
    }

    #[test]
    fn toml_is_chosen_by_name_or_by_its_first_table() {
        let commented = format!("# our insights\n\n  [[ insight ]]{}", &GOOD[12..]);
        for (name, text) in [("a.toml", GOOD), ("A.TOML", GOOD), ("upload", GOOD)] {
            assert_eq!(ids(&import(name, text)), ["first-one"], "{name}");
        }
        assert_eq!(ids(&import("notes.txt", &commented)), ["first-one"]);
        // Broken TOML is still reported as TOML when the name or first table says so.
        let broken = GOOD.replace("\"A title\"", "\"A title");
        assert!(problems("upload", &broken)[0].starts_with("upload:4: invalid TOML"));
        // A Markdown heading is not a TOML comment here: its file is text.
        let markdown = import("notes", "# Title\nText with [[insight]] in it.\n");
        assert_eq!(markdown[0].text, "Text with [[insight]] in it.");
    }

    #[test]
    fn toml_problems_are_all_reported_on_their_lines_and_duplicate_ids_refused() {
        let text = format!(
            "{GOOD}{}{}",
            GOOD.replace("title = \"A title\"\n", ""),
            GOOD.replace("topics = [\"delegation\"]", "topics = [\"Delegation\"]")
                .replace("first-one", "third-one"),
        );
        assert_eq!(
            problems_with("ours.toml", text.as_bytes(), &Rules::file()),
            [
                "ours.toml:10: [[insight]] is missing the `title` field",
                "ours.toml:21: topic \"Delegation\" is not a lowercase tag (a-z, 0-9 and \
                 hyphens, e.g. \"career-ladder\")",
            ]
        );
        let twice = format!("{GOOD}{GOOD}");
        assert_eq!(
            problems("ours.toml", &twice),
            ["ours.toml:11: duplicate id \"first-one\": already defined at ours.toml:3"]
        );
    }

    #[test]
    fn toml_under_server_rules_takes_the_default_source_and_topic() {
        let text = "[[insight]]\nid = \"a\"\ntitle = \"A\"\ntext = \"Text\"\n";
        let insight = &import("a.toml", text)[0];
        assert_eq!(insight.topics, ["ours"]);
        assert!(insight.asks.is_empty());
        assert_eq!(insight.source, our_source());
        assert_eq!(
            problems_with("a.toml", text.as_bytes(), &Rules::file()),
            [
                "a.toml:1: [[insight]] is missing the `topics` field",
                "a.toml:1: [[insight]] is missing the `asks` field",
                "a.toml:1: [[insight]] is missing the `source` field (source = { title = \
                 \"...\", publisher = \"...\" })",
            ]
        );
    }

    #[test]
    fn plain_text_blocks_are_insights_with_topics_and_asks_lines() {
        let text = "\
Trust your team
Let go of the work
  you used to do.
Topics: Delegation, New Manager
Asks: How do I delegate? | I micromanage |
Ask: Should I | can I let go?
- first step
- second step



- **Second insight**
Text of the second, with *emphasis*.
";
        let insights = import("notes.txt", text);
        assert_eq!(ids(&insights), ["trust-your-team", "second-insight"]);
        let first = &insights[0];
        assert_eq!(first.title, "Trust your team");
        assert_eq!(
            first.text,
            "Let go of the work you used to do.\n- first step\n- second step"
        );
        assert_eq!(first.topics, ["delegation", "new-manager"]);
        assert_eq!(
            first.asks,
            [
                "How do I delegate?",
                "I micromanage",
                "Should I | can I let go?"
            ]
        );
        assert_eq!(first.source, our_source());
        let second = &insights[1];
        assert_eq!(second.title, "Second insight");
        assert_eq!(second.text, "Text of the second, with *emphasis*.");
        assert_eq!(second.topics, ["ours"]);
        assert!(second.asks.is_empty());
    }

    #[test]
    fn markdown_headings_start_insights_and_keep_paragraphs() {
        let text = "\
# Trust your team

Let go of the *work*
you used to do.

Start small:
1. one task
2. then more

- **Topics:** delegation; trust
**Ask**: How do I let go?

## Fix the system ##
Blame the process, not the people.
### C#
Code.
";
        let insights = import("insights.md", text);
        assert_eq!(ids(&insights), ["trust-your-team", "fix-the-system", "c"]);
        assert_eq!(
            insights[0].text,
            "Let go of the *work* you used to do.\n\nStart small:\n1. one task\n2. then more"
        );
        assert_eq!(insights[0].topics, ["delegation", "trust"]);
        assert_eq!(insights[0].asks, ["How do I let go?"]);
        assert_eq!(insights[1].title, "Fix the system");
        assert_eq!(insights[1].text, "Blame the process, not the people.");
        assert_eq!(insights[2].title, "C#");
    }

    #[test]
    fn text_before_the_first_heading_is_an_error() {
        assert_eq!(
            problems("a.md", "\n\nAn intro.\nMore intro.\n# Title\nText.\n"),
            [
                "a.md:3: text before the first heading: in a file with `#` headings, each insight \
              starts with its heading"
            ]
        );
    }

    #[test]
    fn a_title_without_text_is_an_error_on_its_line() {
        assert_eq!(
            problems(
                "a.txt",
                "Title A\nText.\n\nLonely title\nTopics: x\n\nTitle C\nText.\n"
            ),
            [
                "a.txt:4: \"Lonely title\" has a title but no text: write it on the lines under \
              the title (a blank line ends an insight)"
            ]
        );
        assert_eq!(
            problems("a.md", "# Group\n## Title\nText.\n"),
            [
                "a.md:1: \"Group\" has a title but no text: write it under the heading, before \
              the next heading"
            ]
        );
        assert_eq!(
            problems("a.txt", "Title\nText.\n\nTopics: x\n"),
            [
                "a.txt:4: a `Topics` line alone: it belongs in an insight's block, under its \
              title with no blank line before it"
            ]
        );
    }

    #[test]
    fn ids_come_from_titles_and_are_unique_in_the_file() {
        let text = "Trust\na\n\nTrust\nb\n\nTrust!\nc\n\nL'équipe d'abord 🚀\nd\n\n🚀\ne\n";
        assert_eq!(
            ids(&import("a.txt", text)),
            ["trust", "trust-2", "trust-3", "l-equipe-d-abord", "insight"]
        );
    }

    #[test]
    fn every_problem_of_a_text_file_is_reported_with_its_line() {
        let long_title = "T".repeat(257);
        let text = format!(
            "Lonely\n\nGood one\nText.\nTopics: C++, fine\n\n{long_title}\nText.\n\nLast\nText.\n"
        );
        assert_eq!(
            problems("a.txt", &text),
            [
                "a.txt:1: \"Lonely\" has a title but no text: write it on the lines under the \
                 title (a blank line ends an insight)",
                "a.txt:5: topic \"c++\" is not a lowercase tag (a-z, 0-9 and hyphens, e.g. \
                 \"career-ladder\")",
                "a.txt:7: `title` is 257 characters long; the limit is 256 (Discord's embed \
                 limit)",
            ]
        );
    }

    #[test]
    fn reserved_ids_are_refused_in_toml_and_avoided_in_text() {
        let rules = server().reserving(["trust".to_string()]);
        let toml =
            b"[[insight]]\nid = \"trust\"\ntitle = \"Trust\"\ntext = \"T.\"\ntopics = [\"a\"]\n";
        assert_eq!(
            problems_with("a.toml", toml, &rules),
            ["a.toml:2: id \"trust\" is the id of a shipped insight: give this one another id"]
        );
        let text = parse_import("a.txt", b"Trust\nSome text.\n\nTrust\nMore.\n", &rules).unwrap();
        let ids: Vec<&str> = text.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["trust-2", "trust-3"]);
    }

    #[test]
    fn text_files_under_file_rules_need_topics_asks_and_a_source() {
        let rules = Rules {
            default_source: Some(our_source()),
            ..Rules::file()
        };
        assert_eq!(
            problems_with("a.txt", b"Title\nText.\nAsks:\n", &rules),
            [
                "a.txt:1: no topics: add a line `Topics: a, b` to this insight",
                "a.txt:3: `asks` is empty: give at least one",
            ]
        );
        assert_eq!(
            problems_with("a.txt", b"Title\nText.\nTopics: a\n", &Rules::file()),
            [
                "a.txt:1: no example questions: add a line `Asks: a question | another` to this \
                 insight",
                "a.txt:1: no source: a text or Markdown file names none, and this import has no \
                 default source",
            ]
        );
    }

    #[test]
    fn crlf_line_ends_and_a_byte_order_mark_are_read_as_plain_lines() {
        let lf = "# Title\nFirst line\nsecond line.\nTopics: a, b\n\n# Other\nText.\n";
        let crlf = format!("\u{feff}{}", lf.replace('\n', "\r\n"));
        assert_eq!(import("a.md", &crlf), import("a.md", lf));
        let toml = GOOD.replace(
            "text = \"Some text about delegation.\"",
            "text = \"\"\"Two\nlines.\"\"\"",
        );
        let toml_crlf = format!("\u{feff}{}", toml.replace('\n', "\r\n"));
        let insights = import("a.toml", &toml_crlf);
        assert_eq!(insights[0].text, "Two\nlines.");
        assert_eq!(insights, import("a.toml", &toml));
        // Lines are counted the same with CRLF.
        assert_eq!(
            problems("a.txt", "A\r\nText\r\n\r\nLonely\r\n"),
            [
                "a.txt:4: \"Lonely\" has a title but no text: write it on the lines under the \
              title (a blank line ends an insight)"
            ]
        );
    }

    #[test]
    fn empty_files_are_refused() {
        for (name, text) in [
            ("a.txt", ""),
            ("a.toml", ""),
            ("a.md", "\n  \n\t\n"),
            ("a.toml", "# only a comment\n"),
        ] {
            assert_eq!(
                problems(name, text),
                [format!(
                    "{name}:1: the file holds no insights: nothing to import"
                )]
            );
        }
    }

    #[test]
    fn files_over_one_mib_are_refused_with_their_size() {
        let big = vec![b'a'; MAX_IMPORT_BYTES + 1];
        assert_eq!(
            problems_with("big.txt", &big, &server()),
            [
                "big.txt:1: the file is 1.0 MiB (1048577 bytes); the limit is 1 MiB (1048576 \
              bytes): split it into smaller files"
            ]
        );
        let at_limit = format!("Title\n{}", "a".repeat(MAX_IMPORT_BYTES - 6));
        assert_eq!(
            problems("big.txt", &at_limit),
            [
                "big.txt:2: `text` is 1048570 characters long; the limit is 4096 (Discord's \
              embed limit)"
            ],
            "1 MiB itself is read"
        );
    }

    #[test]
    fn more_than_a_thousand_insights_are_refused() {
        let blocks = |n: usize| -> String {
            (1..=n)
                .map(|i| format!("Title {i}\nText {i}.\n\n"))
                .collect()
        };
        assert_eq!(import("a.txt", &blocks(1000)).len(), 1000);
        assert_eq!(
            problems("a.txt", &blocks(1002)),
            [
                "a.txt:3001: the file holds more than 1000 insights; an import may hold at most \
                 1000 (this is the first one over): split the file"
            ]
        );
        let entries = |n: usize| -> String {
            (1..=n)
                .map(|i| format!("[[insight]]\nid = \"i{i}\"\ntitle = \"T\"\ntext = \"X\"\n"))
                .collect()
        };
        assert_eq!(import("a.toml", &entries(1000)).len(), 1000);
        assert_eq!(
            problems("a.toml", &entries(1001)),
            [
                "a.toml:4001: the file holds more than 1000 insights; an import may hold at \
                 most 1000 (this is the first one over): split the file"
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_line() {
        assert_eq!(
            problems_with("a.txt", b"Title\nText\nbad \xFF byte\n", &server()),
            [
                "a.txt:3: the file is not UTF-8 text: byte 16 (0xFF) is not valid UTF-8; save \
              the file as UTF-8"
            ]
        );
        // Latin-1 "é" in a TOML file.
        assert_eq!(
            problems_with("a.toml", b"[[insight]]\ntitle = \"caf\xE9\"\n", &server()),
            [
                "a.toml:2: the file is not UTF-8 text: byte 25 (0xE9) is not valid UTF-8; save \
              the file as UTF-8"
            ]
        );
        assert_eq!(
            problems_with("a.txt", b"\xFF\xFET\x00", &server()),
            ["a.txt:1: the file is UTF-16 text: save it as UTF-8"]
        );
    }

    #[test]
    fn titles_lose_their_markdown_marks() {
        for (line, title) in [
            ("## Title ##", "Title"),
            ("###### Title", "Title"),
            ("####### Seven", "####### Seven"),
            ("#hashtag", "#hashtag"),
            ("- Title", "Title"),
            ("* **Title**", "Title"),
            ("## __Title__", "Title"),
            ("**Bold** and **bold**", "**Bold** and **bold**"),
            ("  Title  ", "Title"),
        ] {
            assert_eq!(clean_title(line), title, "{line:?}");
        }
    }

    #[test]
    fn reading_stops_at_the_first_insight_past_the_limit() {
        // 1,001 good blocks, then 80,000 lines that would each be a problem: nothing after the
        // 1,001st block is read.
        let mut text: String = (1..=1001)
            .map(|i| format!("Title {i}\nText.\n\n"))
            .collect();
        text.push_str(&"Topics: x\n\n".repeat(80_000));
        assert_eq!(
            problems("a.txt", &text),
            [
                "a.txt:3001: the file holds more than 1000 insights; an import may hold at most \
                 1000 (this is the first one over): split the file"
            ]
        );
        let mut markdown: String = (1..=1001).map(|i| format!("# T{i}\nText.\n")).collect();
        markdown.push_str(&"# \n".repeat(300_000));
        assert_eq!(problems("a.md", &markdown).len(), 1);
        let mut toml: String = (1..=1001)
            .map(|i| format!("[[insight]]\nid = \"i{i}\"\ntitle = \"T\"\ntext = \"X\"\n"))
            .collect();
        toml.push_str(&"[[insight]]\n".repeat(50_000));
        assert_eq!(problems("a.toml", &toml).len(), 1);
    }

    #[test]
    fn thousands_of_identical_titles_get_ids_in_linear_time() {
        // The hostile shape of the review (16,000 blocks of `a\nb\n\n` took 27.7 s): the first
        // 1,000 get ids `a`, `a-2`... `a-1000`.
        let text = "a\nb\n\n".repeat(1000);
        let insights = import("a.txt", &text);
        assert_eq!(insights[0].id, "a");
        assert_eq!(insights[999].id, "a-1000");
    }

    #[test]
    fn a_list_of_half_a_million_asks_is_one_problem_stating_the_limit() {
        let asks = vec!["a"; 500_000].join("|");
        let text = format!(
            "# Title\nText.\nAsks: {asks}\nTopics: {}\n",
            ["t"; 11].join(",")
        );
        assert_eq!(
            problems("a.md", &text),
            [
                "a.md:3: `asks` has 500000 entries; the limit is 25 example questions per \
                 insight: keep the 25 that matter most",
                "a.md:4: `topics` has 11 entries; the limit is 10 topics per insight: keep the 10 \
                 that matter most",
            ]
        );
        let toml = format!(
            "[[insight]]\nid = \"a\"\ntitle = \"T\"\ntext = \"X\"\nasks = [{}]\n",
            vec!["\"q\""; 26].join(",")
        );
        assert_eq!(
            problems("a.toml", &toml),
            [
                "a.toml:5: `asks` has 26 entries; the limit is 25 example questions per insight: \
              keep the 25 that matter most"
            ]
        );
    }

    #[test]
    fn problems_are_listed_up_to_a_limit_and_quote_titles_briefly() {
        // 1,000 titles without text, each a 200-character title: each problem quotes 60
        // characters of it, and the list stops at 1,000 with a last line saying there are more.
        let long = "T".repeat(200);
        let text: String = (0..1000)
            .map(|i| format!("{long}{i}\n\n"))
            .collect::<String>()
            + "Good\nText.\n\nLonely\n";
        let found = problems("a.txt", &text);
        assert_eq!(found.len(), MAX_LISTED_PROBLEMS + 1);
        assert_eq!(
            found[0],
            format!(
                "a.txt:1: \"{}…\" has a title but no text: write it on the lines under the title \
                 (a blank line ends an insight)",
                "T".repeat(59)
            )
        );
        assert!(
            found.iter().all(|p| p.chars().count() < 400),
            "a problem quotes a whole title"
        );
        assert!(
            found[MAX_LISTED_PROBLEMS].ends_with(
                "more problems follow; only the first 1000 are listed: fix these and import the \
                 file again"
            ),
            "{}",
            found[MAX_LISTED_PROBLEMS]
        );
    }

    /// Pieces of every format, so that generated files reach the parsers' corners: headings,
    /// data lines, TOML tables, strings left open, byte-order marks, CRLF.
    const FRAGMENTS: &[&str] = &[
        "# ",
        "## ",
        "###### ",
        "#",
        "[[insight]]",
        "[insight]",
        "id = ",
        "title = ",
        "text = ",
        "asks = [",
        "topics = [",
        "]",
        "\"",
        "'''",
        "\"\"\"",
        "{",
        "}",
        "=",
        ",",
        "a",
        "Trust",
        "Topics: ",
        "Asks: ",
        "Ask: ",
        "|",
        "**",
        "__",
        "- ",
        "* ",
        "1. ",
        "\n",
        "\n\n",
        "\r\n",
        "\u{feff}",
        "é",
        "🚀",
        "\u{202e}",
        " ",
        "\t",
        "source = { title = \"s\" }",
        "\\",
    ];

    /// What any input must come to: at most 1,000 valid insights with unique slug ids, or a
    /// bounded list of problems in line order.
    fn check_outcome(name: &str, result: Result<Vec<Insight>, Vec<Problem>>) {
        match result {
            Ok(insights) => {
                assert!(!insights.is_empty() && insights.len() <= MAX_IMPORT_INSIGHTS);
                let ids: HashSet<&str> = insights.iter().map(|i| i.id.as_str()).collect();
                assert_eq!(ids.len(), insights.len(), "{name}: ids repeat");
                for insight in &insights {
                    assert!(insight.asks.len() <= crate::insights::MAX_ASKS);
                    assert!(insight.topics.len() <= crate::insights::MAX_TOPICS);
                    assert!(crate::insights::is_slug(&insight.id), "{}", insight.id);
                }
            }
            Err(problems) => {
                assert!(!problems.is_empty() && problems.len() <= MAX_LISTED_PROBLEMS + 1);
                assert!(problems.windows(2).all(|w| w[0].line <= w[1].line));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)
        ) {
            for name in ["a.toml", "a.md", "a.txt"] {
                check_outcome(name, parse_import(name, &bytes, &server()));
            }
        }

        #[test]
        fn adversarial_shapes_never_panic(
            pieces in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..600)
        ) {
            let text: String = pieces.concat();
            for name in ["a.toml", "a.md", "a.txt"] {
                check_outcome(name, parse_import(name, text.as_bytes(), &server()));
                check_outcome(name, parse_import(name, text.as_bytes(), &Rules::file()));
            }
        }
    }
}
