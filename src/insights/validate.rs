//! The rules every insight obeys, wherever it comes from: the data files (`library`), a curator's
//! Discord form, or an imported file (`import`). One function, [`validate`], so that an insight a
//! server stores is exactly as valid as one the loader accepts.
//!
//! [`validate`] knows nothing about files or spans: it reports each problem with the field it is
//! about ([`FieldProblem`]), and the caller places it (the loader on the field's line, a form next
//! to its input). The wording is the loader's, which its tests and docs/curation.md pin down.
//!
//! Also here: the helpers a form or an import needs to turn free text into fields
//! ([`slug_from_title`], [`parse_topics`], [`parse_asks`]); what they produce is still checked by
//! [`validate`].

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{
    is_slug, Insight, Source, MAX_ID_CHARS, MAX_SOURCE_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS,
};

/// An entry of `topics` or `asks` may hold at most this many characters.
pub const MAX_ITEM_CHARS: usize = 100;
/// The most example questions (`asks`) one insight may have. Each is embedded and searched as a
/// document of its own, so this bounds what one insight costs to save, store and search: 25 is
/// three times what the shipped insights use (7 to 9), and an import of 1,000 insights stays
/// under 26,000 documents.
pub const MAX_ASKS: usize = 25;
/// The most topics one insight may have: the shipped ones use 3 or 4; topics are browsing
/// tags, and `/topics` lists every one.
pub const MAX_TOPICS: usize = 10;

/// The fields of one insight as given, before validation. `None` is an absent field, which is not
/// the same as an empty one: only an absent `topics`, `asks` or `source` can take a default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub id: Option<&'a str>,
    pub title: Option<&'a str>,
    pub text: Option<&'a str>,
    pub topics: Option<&'a [String]>,
    pub asks: Option<&'a [String]>,
    pub source: Option<SourceFields<'a>>,
}

/// The parts of a source as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceFields<'a> {
    pub title: Option<&'a str>,
    pub publisher: Option<&'a str>,
    pub url: Option<&'a str>,
}

/// What may be left out, and what takes its place. The checks themselves never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `asks` must be given and hold at least one question (data files). When false, an absent
    /// `asks` is an empty list and an empty list is allowed (a curator may add questions later).
    pub asks_required: bool,
    /// The source of an insight given without one; `None`: the source is required (data files).
    /// A default is checked like a given source.
    pub default_source: Option<Source>,
    /// The topic of an insight given without `topics`; `None`: topics are required. Checked like
    /// a given topic. (An explicitly empty `topics` is still refused.)
    pub default_topic: Option<String>,
    /// Ids that are taken outside what is being checked (a server's insights may not take a
    /// shipped insight's id): [`validate`] refuses them, and ids made from titles avoid them.
    pub reserved_ids: BTreeSet<String>,
}

impl Rules {
    /// The data files' rules: every field but `source.url` is required.
    pub fn file() -> Rules {
        Rules {
            asks_required: true,
            default_source: None,
            default_topic: None,
            reserved_ids: BTreeSet::new(),
        }
    }

    /// A server's rules for its curators' forms and imports: `asks` optional (may be empty), the
    /// source and, when given, the topic default to the caller's.
    pub fn server(default_source: Source, default_topic: Option<String>) -> Rules {
        Rules {
            asks_required: false,
            default_source: Some(default_source),
            default_topic,
            reserved_ids: BTreeSet::new(),
        }
    }

    /// These rules, refusing `ids` as well.
    pub fn reserving(mut self, ids: impl IntoIterator<Item = String>) -> Rules {
        self.reserved_ids.extend(ids);
        self
    }
}

/// What kind of problem a [`FieldProblem`] is, for callers that place or reword it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The field is absent and has no default (`id`, `title`, `text`, `topics`, `asks`, `source`).
    Missing,
    /// The field is present but blank, an empty list, or (for `source.title` and
    /// `source.publisher`) absent or blank.
    Empty,
    /// The field is over its limit.
    TooLong,
    /// One entry of a list (`topics`, `asks`) is blank or over [`MAX_ITEM_CHARS`].
    BadEntry,
    /// A list (`topics`, `asks`) has more entries than [`MAX_TOPICS`] or [`MAX_ASKS`].
    TooMany,
    /// `id` is not a lowercase slug, or an entry of `topics` is not a lowercase tag.
    NotSlug,
    /// `id` is one of [`Rules::reserved_ids`].
    Reserved,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// `id`, `title`, `text`, `topics`, `asks`, `source`, `source.title` or `source.publisher`.
    pub field: &'static str,
    pub kind: ProblemKind,
    /// A sentence for a person, naming the field, e.g. "`text` is empty".
    pub reason: String,
}

struct Problems(Vec<FieldProblem>);

impl Problems {
    fn add(&mut self, field: &'static str, kind: ProblemKind, reason: impl Into<String>) {
        self.0.push(FieldProblem {
            field,
            kind,
            reason: reason.into(),
        });
    }
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Checks every field and returns the insight (strings trimmed, `url` as given when not blank),
/// or every problem found, in field order: id, title, text, topics, asks, source, then whether the
/// id is a slug.
pub fn validate(fields: Fields<'_>, rules: &Rules) -> Result<Insight, Vec<FieldProblem>> {
    let mut problems = Problems(Vec::new());

    let mut text_field = |value: Option<&str>, name: &'static str, max: usize| {
        let Some(value) = value else {
            problems.add(
                name,
                ProblemKind::Missing,
                format!("[[insight]] is missing the `{name}` field"),
            );
            return String::new();
        };
        if value.trim().is_empty() {
            problems.add(name, ProblemKind::Empty, format!("`{name}` is empty"));
        } else if char_count(value) > max {
            problems.add(
                name,
                ProblemKind::TooLong,
                format!(
                    "`{name}` is {} characters long; the limit is {max} (Discord's embed limit)",
                    char_count(value)
                ),
            );
        }
        value.trim().to_string()
    };
    let id = text_field(fields.id, "id", MAX_ID_CHARS);
    let title = text_field(fields.title, "title", MAX_TITLE_CHARS);
    let text = text_field(fields.text, "text", MAX_TEXT_CHARS);

    let default_topic = rules.default_topic.clone().map(|topic| vec![topic]);
    let topics = list_field(
        fields.topics.or(default_topic.as_deref()),
        "topics",
        true,
        true,
        &mut problems,
    );
    let asks = list_field(
        fields.asks,
        "asks",
        false,
        rules.asks_required,
        &mut problems,
    );

    let source = match fields.source.or_else(|| {
        rules.default_source.as_ref().map(|s| SourceFields {
            title: Some(&s.title),
            publisher: Some(&s.publisher),
            url: s.url.as_deref(),
        })
    }) {
        None => {
            problems.add(
                "source",
                ProblemKind::Missing,
                "[[insight]] is missing the `source` field (source = { title = \"...\", publisher = \"...\" })",
            );
            None
        }
        Some(source) => {
            let mut part = |value: Option<&str>, name: &'static str| match value {
                Some(v) if !v.trim().is_empty() => {
                    if char_count(v) > MAX_SOURCE_CHARS {
                        problems.add(
                            name,
                            ProblemKind::TooLong,
                            format!("`{name}` is over {MAX_SOURCE_CHARS} characters"),
                        );
                    }
                    v.trim().to_string()
                }
                _ => {
                    problems.add(
                        name,
                        ProblemKind::Empty,
                        format!("`{name}` is missing or empty"),
                    );
                    String::new()
                }
            };
            let title = part(source.title, "source.title");
            let publisher = part(source.publisher, "source.publisher");
            Some(Source {
                title,
                publisher,
                url: source
                    .url
                    .filter(|u| !u.trim().is_empty())
                    .map(str::to_string),
            })
        }
    };

    if !id.is_empty() && !is_slug(&id) {
        problems.add(
            "id",
            ProblemKind::NotSlug,
            format!("id {id:?} is not a lowercase slug (a-z, 0-9 and single hyphens, e.g. \"tour-of-duty\")"),
        );
    }
    if rules.reserved_ids.contains(&id) {
        problems.add(
            "id",
            ProblemKind::Reserved,
            format!("id {id:?} is the id of a shipped insight: give this one another id"),
        );
    }
    match source {
        Some(source) if problems.0.is_empty() => Ok(Insight {
            id,
            title,
            text,
            topics,
            asks,
            source,
            pack: None,
        }),
        _ => Err(problems.0),
    }
}

/// `topics` (entries must be slugs, at most [`MAX_TOPICS`]) or `asks` (at most [`MAX_ASKS`]),
/// trimmed.
fn list_field(
    value: Option<&[String]>,
    name: &'static str,
    slugs: bool,
    required: bool,
    problems: &mut Problems,
) -> Vec<String> {
    let Some(items) = value else {
        if required {
            problems.add(
                name,
                ProblemKind::Missing,
                format!("[[insight]] is missing the `{name}` field"),
            );
        }
        return Vec::new();
    };
    if items.is_empty() && required {
        problems.add(
            name,
            ProblemKind::Empty,
            format!("`{name}` is empty: give at least one"),
        );
    }
    let max = if slugs { MAX_TOPICS } else { MAX_ASKS };
    if items.len() > max {
        // One problem for the list, not one per entry: a list of half a million entries gets
        // one line, and nothing is copied.
        problems.add(name, ProblemKind::TooMany, too_many(name, items.len()));
        return Vec::new();
    }
    for item in items {
        if item.trim().is_empty() {
            problems.add(
                name,
                ProblemKind::BadEntry,
                format!("`{name}` has an empty entry"),
            );
        } else if slugs && !is_slug(item) {
            problems.add(
                name,
                ProblemKind::NotSlug,
                format!("topic {item:?} is not a lowercase tag (a-z, 0-9 and hyphens, e.g. \"career-ladder\")"),
            );
        } else if char_count(item) > MAX_ITEM_CHARS {
            problems.add(
                name,
                ProblemKind::BadEntry,
                format!("`{name}` has an entry over {MAX_ITEM_CHARS} characters"),
            );
        }
    }
    items.iter().map(|s| s.trim().to_string()).collect()
}

/// The problem with a `topics` or `asks` list of `count` entries, over [`MAX_TOPICS`] or
/// [`MAX_ASKS`]. An importer that stops reading a list past its limit reports the list's whole
/// count with it.
pub fn too_many(field: &str, count: usize) -> String {
    let (max, what) = if field == "topics" {
        (MAX_TOPICS, "topics")
    } else {
        (MAX_ASKS, "example questions")
    };
    format!(
        "`{field}` has {count} entries; the limit is {max} {what} per insight: keep the {max} \
         that matter most"
    )
}

/// An id for an insight that has only a title: the title folded to ASCII (`deunicode`), lowercased,
/// every run of other characters made one hyphen, cut to [`MAX_ID_CHARS`] (at a word boundary when
/// there is one), `insight` when nothing is left; then `-2`, `-3`... appended while `taken` says
/// the id is in use. Always a slug (see [`super::is_slug`]).
///
/// For one title (a form). Many titles at once (an import) go through [`TitleIds`], which
/// remembers where each title's suffixes stopped: asking this function N times for one title
/// would try 1 + 2 + ... + N ids.
pub fn slug_from_title(title: &str, taken: &dyn Fn(&str) -> bool) -> String {
    first_free(&slug_base(title), 1, taken).0
}

/// Ids for the titles of one file, each unique in the file and free of `reserved`, in amortised
/// constant time a title (plus the title's length): each base (`trust` for "Trust" and "Trust!")
/// keeps the next suffix to try, so a thousand identical titles cost a thousand look-ups, not
/// half a million.
#[derive(Default)]
pub struct TitleIds {
    given: HashSet<String>,
    next_suffix: HashMap<String, u64>,
}

impl TitleIds {
    /// The id for `title`, as [`slug_from_title`] would choose it with every id given so far and
    /// every id `reserved` says is taken.
    pub fn id_for(&mut self, title: &str, reserved: &dyn Fn(&str) -> bool) -> String {
        let base = slug_base(title);
        let from = self.next_suffix.get(&base).copied().unwrap_or(1);
        let given = &self.given;
        let (id, n) = first_free(&base, from, &|id: &str| given.contains(id) || reserved(id));
        self.next_suffix.insert(base, n + 1);
        self.given.insert(id.clone());
        id
    }
}

/// The title as one long slug, before it is cut to [`MAX_ID_CHARS`].
fn slug_base(title: &str) -> String {
    // Letters and digits only: deunicode would spell emoji and symbols out as words.
    let letters: String = title
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    // deunicode spaces the syllables of some scripts itself ("北京" -> "Bei Jing").
    let folded: String = deunicode::deunicode_with_tofu(&letters, " ")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = folded.split_whitespace().collect();
    if words.is_empty() {
        "insight".to_string()
    } else {
        words.join("-")
    }
}

/// `base` cut to `max` characters: at the last hyphen when the cut falls in a word and an earlier
/// word boundary exists.
fn fit_slug(base: &str, max: usize) -> &str {
    if base.len() <= max {
        return base;
    }
    // ASCII, so byte positions are characters.
    let cut = &base[..max];
    let cut = if base.as_bytes()[max] != b'-' {
        cut.rfind('-').map_or(cut, |at| &cut[..at])
    } else {
        cut
    };
    cut.trim_end_matches('-')
}

/// The first id made from `base` that `taken` does not hold, trying suffix `from`, `from + 1`...
/// (suffix 1 is the bare base, 2 is `-2`), and the suffix it took.
fn first_free(base: &str, from: u64, taken: &dyn Fn(&str) -> bool) -> (String, u64) {
    (from.max(1)..)
        .map(|n| {
            let id = if n == 1 {
                fit_slug(base, MAX_ID_CHARS).to_string()
            } else {
                let suffix = format!("-{n}");
                format!("{}{suffix}", fit_slug(base, MAX_ID_CHARS - suffix.len()))
            };
            (id, n)
        })
        .find(|(id, _)| !taken(id))
        .expect("some suffix is free")
}

/// Topics typed by a person: `"Delegation, New Manager;trust"` -> `["delegation", "new-manager",
/// "trust"]`. Separated by commas or semicolons; each trimmed and lowercased, each run of spaces
/// made one hyphen, empty ones dropped. Not checked: [`validate`] refuses what is not a tag.
pub fn parse_topics(input: &str) -> Vec<String> {
    topics_in(input).collect()
}

/// [`parse_topics`], one topic at a time (an importer counts a long list without keeping it).
pub fn topics_in(input: &str) -> impl Iterator<Item = String> + '_ {
    input
        .split([',', ';'])
        .map(|topic| {
            topic
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("-")
                .to_lowercase()
        })
        .filter(|topic| !topic.is_empty())
}

/// Example questions typed by a person, one per line: each non-empty line, trimmed.
pub fn parse_asks(input: &str) -> Vec<String> {
    input
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            title: "A page".into(),
            publisher: "RiffOn".into(),
            url: None,
        }
    }

    fn topics() -> Vec<String> {
        vec!["delegation".to_string()]
    }

    fn asks() -> Vec<String> {
        vec!["How do I delegate?".to_string()]
    }

    fn full<'a>(topics: &'a [String], asks: &'a [String]) -> Fields<'a> {
        Fields {
            id: Some("first-one"),
            title: Some(" A title "),
            text: Some("Some text."),
            topics: Some(topics),
            asks: Some(asks),
            source: Some(SourceFields {
                title: Some("A page"),
                publisher: Some("RiffOn"),
                url: Some("https://example.com"),
            }),
        }
    }

    fn reasons(result: Result<Insight, Vec<FieldProblem>>) -> Vec<(&'static str, String)> {
        result
            .expect_err("should not validate")
            .into_iter()
            .map(|p| (p.field, p.reason))
            .collect()
    }

    #[test]
    fn a_whole_entry_validates_trimmed() {
        let (t, a) = (topics(), asks());
        let insight = validate(full(&t, &a), &Rules::file()).unwrap();
        assert_eq!(insight.title, "A title");
        assert_eq!(insight.source.url.as_deref(), Some("https://example.com"));
    }

    #[test]
    fn file_rules_require_every_field_and_report_all_in_order() {
        let p = reasons(validate(Fields::default(), &Rules::file()));
        let fields: Vec<&str> = p.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["id", "title", "text", "topics", "asks", "source"]);
        assert_eq!(p[0].1, "[[insight]] is missing the `id` field");
    }

    #[test]
    fn server_rules_default_the_source_and_topic_and_allow_no_asks() {
        let rules = Rules::server(source(), Some("ours".into()));
        let fields = Fields {
            id: Some("x"),
            title: Some("T"),
            text: Some("Text"),
            ..Fields::default()
        };
        let insight = validate(fields, &rules).unwrap();
        assert_eq!(insight.topics, ["ours"]);
        assert!(insight.asks.is_empty());
        assert_eq!(insight.source, source());
        let no_asks: [String; 0] = [];
        let fields = Fields {
            asks: Some(&no_asks),
            ..fields
        };
        assert!(validate(fields, &rules).is_ok(), "empty asks are allowed");

        let no_topics: [String; 0] = [];
        let explicit_empty = Fields {
            topics: Some(&no_topics),
            ..fields
        };
        assert_eq!(
            reasons(validate(explicit_empty, &rules)),
            [("topics", "`topics` is empty: give at least one".to_string())]
        );
        let bad_default = Rules::server(source(), Some("Our Topic".into()));
        assert_eq!(
            validate(fields, &bad_default).unwrap_err()[0].kind,
            ProblemKind::NotSlug
        );
        let blank_source = Rules::server(
            Source {
                publisher: " ".into(),
                ..source()
            },
            None,
        );
        let p = validate(fields, &blank_source).unwrap_err();
        let p: Vec<_> = p.iter().map(|p| (p.field, p.kind)).collect();
        assert_eq!(
            p,
            [
                ("topics", ProblemKind::Missing),
                ("source.publisher", ProblemKind::Empty)
            ]
        );
    }

    #[test]
    fn limits_and_slugs_are_checked() {
        let long_ask = vec!["q".repeat(101)];
        let bad_topics = vec!["New Manager".to_string(), " ".to_string()];
        let long_text = "x".repeat(MAX_TEXT_CHARS + 1);
        let fields = Fields {
            id: Some("Not A Slug"),
            text: Some(&long_text),
            ..full(&bad_topics, &long_ask)
        };
        let p = validate(fields, &Rules::file()).unwrap_err();
        let kinds: Vec<_> = p.iter().map(|p| (p.field, p.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("text", ProblemKind::TooLong),
                ("topics", ProblemKind::NotSlug),
                ("topics", ProblemKind::BadEntry),
                ("asks", ProblemKind::BadEntry),
                ("id", ProblemKind::NotSlug),
            ]
        );
        assert_eq!(
            p[0].reason,
            "`text` is 4097 characters long; the limit is 4096 (Discord's embed limit)"
        );
        assert_eq!(p[3].reason, "`asks` has an entry over 100 characters");
    }

    #[test]
    fn slugs_from_titles() {
        let free = |_: &str| false;
        assert_eq!(
            slug_from_title("Learn to Trust & Delegate!", &free),
            "learn-to-trust-delegate"
        );
        assert_eq!(
            slug_from_title("  Résumé: the Überblick ", &free),
            "resume-the-uberblick"
        );
        assert_eq!(slug_from_title("北京 office", &free), "bei-jing-office");
        assert_eq!(slug_from_title("🚀🙂 launch", &free), "launch");
        assert_eq!(slug_from_title("🚀", &free), "insight");
        assert_eq!(slug_from_title("", &free), "insight");
        assert_eq!(slug_from_title("½ done", &free), "1-2-done");

        let long = "word ".repeat(40);
        let slug = slug_from_title(&long, &free);
        assert!(slug.len() <= MAX_ID_CHARS && is_slug(&slug), "{slug}");
        assert_eq!(slug, "word-".repeat(12) + "word");
        let cut_in_a_word = slug_from_title(&"words ".repeat(40), &free);
        assert_eq!(cut_in_a_word, "words-".repeat(9) + "words");
        let one_word = "x".repeat(100);
        assert_eq!(slug_from_title(&one_word, &free), "x".repeat(64));

        let taken = |id: &str| ["trust", "trust-2", "insight"].contains(&id);
        assert_eq!(slug_from_title("Trust", &taken), "trust-3");
        assert_eq!(slug_from_title("???", &taken), "insight-2");
        let long_taken = |id: &str| id == "x".repeat(64);
        let slug = slug_from_title(&one_word, &long_taken);
        assert_eq!(slug, format!("{}-2", "x".repeat(62)));
    }

    #[test]
    fn topics_and_asks_from_typed_text() {
        assert_eq!(
            parse_topics("Delegation, New Manager;trust"),
            ["delegation", "new-manager", "trust"]
        );
        assert_eq!(parse_topics(" , ;  career   ladder ,"), ["career-ladder"]);
        assert!(parse_topics("").is_empty());
        assert_eq!(
            parse_asks("  How do I delegate?\r\n\n   \nI micromanage  \n"),
            ["How do I delegate?", "I micromanage"]
        );
    }

    #[test]
    fn at_most_25_asks_and_10_topics_each_refused_in_one_line_stating_the_limit() {
        let asks = |n: usize| (0..n).map(|i| format!("question {i}?")).collect::<Vec<_>>();
        let topics = |n: usize| (0..n).map(|i| format!("topic-{i}")).collect::<Vec<_>>();
        let (ok_topics, ok_asks) = (topics(MAX_TOPICS), asks(MAX_ASKS));
        assert!(validate(full(&ok_topics, &ok_asks), &Rules::file()).is_ok());

        // Half a million asks (the hostile import) give one problem each for the two lists.
        let (many_topics, many_asks) = (topics(100_000), asks(500_000));
        let p = validate(full(&many_topics, &many_asks), &Rules::file()).unwrap_err();
        let reasons: Vec<(&str, ProblemKind, &str)> = p
            .iter()
            .map(|p| (p.field, p.kind, p.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    "topics",
                    ProblemKind::TooMany,
                    "`topics` has 100000 entries; the limit is 10 topics per insight: keep the 10 \
                     that matter most"
                ),
                (
                    "asks",
                    ProblemKind::TooMany,
                    "`asks` has 500000 entries; the limit is 25 example questions per insight: \
                     keep the 25 that matter most"
                ),
            ]
        );
        let (one_more_topic, one_more_ask) = (topics(MAX_TOPICS + 1), asks(MAX_ASKS + 1));
        assert_eq!(
            validate(full(&one_more_topic, &ok_asks), &Rules::file())
                .unwrap_err()
                .len(),
            1
        );
        assert_eq!(
            validate(full(&ok_topics, &one_more_ask), &Rules::file()).unwrap_err()[0].kind,
            ProblemKind::TooMany
        );
    }

    #[test]
    fn ids_for_many_titles_agree_with_one_at_a_time_and_cost_constant_look_ups_each() {
        let reserved = |id: &str| id == "trust" || id == "insight-3";
        let titles = [
            "Trust", "Trust!", "trust 2", "Trust", "🚀", "???", "🚀", "Other",
        ];
        let mut ids = TitleIds::default();
        let mut given: Vec<String> = Vec::new();
        for title in titles {
            let alone = slug_from_title(title, &|id: &str| {
                reserved(id) || given.iter().any(|g| g == id)
            });
            let id = ids.id_for(title, &reserved);
            assert_eq!(id, alone, "{title}");
            given.push(id);
        }
        assert_eq!(
            given,
            [
                "trust-2",
                "trust-3",
                "trust-2-2",
                "trust-4",
                "insight",
                "insight-2",
                "insight-4",
                "other"
            ]
        );

        // 16,000 identical titles (the hostile import) take about one look-up each, not 128
        // million.
        let look_ups = std::cell::Cell::new(0u64);
        let counting = |_: &str| {
            look_ups.set(look_ups.get() + 1);
            false
        };
        let mut ids = TitleIds::default();
        for _ in 0..16_000 {
            ids.id_for("a", &counting);
        }
        assert_eq!(ids.id_for("a", &counting), "a-16001");
        assert!(look_ups.get() <= 2 * 16_001, "{} look-ups", look_ups.get());
    }
}
