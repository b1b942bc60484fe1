//! The insight collection: loading, validation, look-up and random picks.
//!
//! A collection is one TOML file or a directory of them (see docs/curation.md).
//! Loading is all-or-nothing: every file is parsed and every entry validated, all problems are
//! collected and reported as `file:line: reason`, and only a collection with no problem at all is
//! returned. A half-loaded collection would silently hide insights (or serve a broken one to
//! Discord), which is worse than refusing to start.
//!
//! The limits mirror Discord's embed limits, so that any insight that loads can be posted as is.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::Rng;
use serde::Deserialize;
use toml::Spanned;

#[cfg(test)]
use super::is_slug;
use super::packs::{self, PackSelection, BUILTIN_PACKS};
use super::validate::{validate, Fields, ProblemKind, Rules, SourceFields};
use super::Insight;

/// One problem found while loading: the file, the 1-based line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// Why a collection could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The path itself cannot be used (missing, unreadable, a directory without `*.toml`). The
    /// path is absolute, so the message says exactly where the program looked whatever its
    /// working directory.
    Path { path: PathBuf, reason: String },
    /// Problems inside the files: every one found, each with its file and line.
    Invalid { problems: Vec<Problem> },
}

impl LoadError {
    fn path(path: &Path, reason: impl Into<String>) -> LoadError {
        LoadError::Path {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            reason: reason.into(),
        }
    }

    /// The problems inside files (none for a [`LoadError::Path`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Path { .. } => &[],
            LoadError::Invalid { problems } => problems,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Path { path, reason } => write!(f, "{}: {reason}", path.display()),
            LoadError::Invalid { problems } => {
                for (i, problem) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// The loaded collection (answering questions needs a [`super::Catalog`] on top of it).
#[derive(Debug)]
pub struct Library {
    insights: Vec<Insight>,
    by_id: HashMap<String, usize>,
    /// Topic -> indices of its insights; a BTreeMap so listings are alphabetical.
    topics: BTreeMap<String, Vec<usize>>,
}

// ---- the file format, as parsed before validation ----

// Unknown fields are not refused by serde here (that would stop at the first and hide every
// other problem of the file): `unknown_fields` finds them all, from a second, shallow parse.
#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    insight: Vec<Spanned<RawInsight>>,
}

// Every field is optional here so that a missing one is reported by our validation with the
// entry's line and a plain sentence, rather than by serde's generic message.
#[derive(Deserialize)]
struct RawInsight {
    id: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    text: Option<Spanned<String>>,
    topics: Option<Spanned<Vec<String>>>,
    asks: Option<Spanned<Vec<String>>>,
    source: Option<Spanned<RawSource>>,
}

#[derive(Deserialize)]
struct RawSource {
    title: Option<String>,
    publisher: Option<String>,
    url: Option<String>,
}

/// The fields a file may have, at each level.
const FILE_FIELDS: [&str; 1] = ["insight"];
const INSIGHT_FIELDS: [&str; 6] = ["id", "title", "text", "topics", "asks", "source"];
const SOURCE_FIELDS: [&str; 3] = ["title", "publisher", "url"];

/// Only the keys of a file, for [`unknown_fields`]: values are skipped, not built.
#[derive(Deserialize)]
struct FileKeys {
    #[serde(default)]
    insight: Vec<InsightKeys>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct InsightKeys {
    #[serde(default)]
    source: Option<BTreeMap<String, serde::de::IgnoredAny>>,
    #[serde(flatten)]
    other: BTreeMap<String, serde::de::IgnoredAny>,
}

/// Every field no insight has (a typo such as `aks`), each with where it is written: at the top of
/// the file, in an `[[insight]]` (whose span is in `entries`), or in its `source`.
fn unknown_fields(text: &str, entries: &[Range<usize>]) -> Vec<(Range<usize>, String)> {
    let Ok(keys) = toml::from_str::<FileKeys>(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let known = |list: &[&str], key: &str| list.contains(&key);
    for key in keys.other.keys().filter(|k| !known(&FILE_FIELDS, k)) {
        let at = key_position(text, 0..text.len(), key);
        found.push((
            at,
            format!("unknown field `{key}`: a file holds `[[insight]]` tables only"),
        ));
    }
    // An entry's span may cover its header only: its keys are written up to the next entry.
    let regions: Vec<Range<usize>> = entries
        .iter()
        .enumerate()
        .map(|(i, span)| {
            let end = entries.get(i + 1).map_or(text.len(), |next| next.start);
            span.start..end.max(span.end)
        })
        .collect();
    for (entry, span) in keys.insight.iter().zip(&regions) {
        let mut report = |key: &str, fields: &[&str]| {
            found.push((
                key_position(text, span.clone(), key),
                format!(
                    "unknown field `{key}` (a typo?): the fields are {}",
                    fields
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        for key in entry.other.keys().filter(|k| !known(&INSIGHT_FIELDS, k)) {
            report(key, &INSIGHT_FIELDS);
        }
        for key in entry.source.iter().flat_map(|s| s.keys()) {
            if !known(&SOURCE_FIELDS, key) {
                report(key, &SOURCE_FIELDS);
            }
        }
    }
    found
}

/// Where `key = …` is written within `span` of `text` (bare or quoted, at the start of a line or
/// inside an inline table), or the span's start when it cannot be told.
fn key_position(text: &str, span: Range<usize>, key: &str) -> Range<usize> {
    let within = &text[span.clone()];
    let mut from = 0;
    while let Some(found) = within[from..].find(key) {
        let at = from + found;
        let before = within[..at].chars().next_back();
        let starts = matches!(
            before,
            None | Some(' ' | '\t' | '\n' | '{' | ',' | '"' | '\'')
        );
        let after = within[at + key.len()..].trim_start_matches(['"', '\'', ' ', '\t']);
        if starts && after.starts_with('=') {
            return span.start + at..span.start + at + key.len();
        }
        from = at + key.len();
    }
    span.start..span.start
}

/// Maps byte offsets of one file to 1-based line numbers.
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset).max(1)
    }
}

/// Collects problems for one file.
pub(super) struct FileCheck {
    pub file: PathBuf,
    pub lines: LineIndex,
    pub problems: Vec<Problem>,
}

impl FileCheck {
    pub fn report(&mut self, span: Range<usize>, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            line: self.lines.line(span.start),
            reason: reason.into(),
        });
    }
}

/// One file parsed and validated.
pub(super) struct CheckedFile {
    /// Its whole insights, each with the span of its id, in file order.
    pub insights: Vec<(Insight, Range<usize>)>,
    /// The span of every `[[insight]]` entry, whole or not.
    pub entries: Vec<Range<usize>>,
    pub check: FileCheck,
}

/// Parses and validates one file with `rules`. With `max_entries`, only the first `max_entries`
/// entries are validated (an import's limit: what comes after is refused anyway, and validating
/// tens of thousands of entries would only make a longer list of errors); `entries` still
/// holds every entry's span.
pub(super) fn check_file(
    file: &Path,
    text: &str,
    rules: &Rules,
    max_entries: Option<usize>,
) -> CheckedFile {
    let mut check = FileCheck {
        file: file.to_path_buf(),
        lines: LineIndex::new(text),
        problems: Vec::new(),
    };
    let mut insights = Vec::new();
    let mut entries = Vec::new();
    match toml::from_str::<RawFile>(text) {
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            check.report(span, format!("invalid TOML: {}", e.message().trim()));
        }
        Ok(raw) => {
            let validated = max_entries.unwrap_or(usize::MAX);
            for entry in raw.insight {
                entries.push(entry.span());
                if entries.len() <= validated {
                    insights.extend(check_entry(entry, rules, &mut check));
                }
            }
            let unknown = unknown_fields(text, &entries[..entries.len().min(validated)]);
            if !unknown.is_empty() {
                // An insight with an unknown field is not whole: keep none of them.
                insights.clear();
            }
            for (span, reason) in unknown {
                check.report(span, reason);
            }
        }
    }
    CheckedFile {
        insights,
        entries,
        check,
    }
}

/// Keeps the insights of one file whose id was not seen before (in `first_seen`, from earlier
/// files, or earlier in this one) and reports the others as duplicates naming both places.
pub(super) fn drop_duplicates(
    entries: Vec<(Insight, Range<usize>)>,
    check: &mut FileCheck,
    first_seen: &mut HashMap<String, (PathBuf, usize)>,
) -> Vec<Insight> {
    let mut kept = Vec::with_capacity(entries.len());
    for (insight, id_span) in entries {
        let line = check.lines.line(id_span.start);
        if let Some((other_file, other_line)) = first_seen.get(&insight.id) {
            let reason = format!(
                "duplicate id {:?}: already defined at {}:{}",
                insight.id,
                other_file.display(),
                other_line
            );
            check.report(id_span, reason);
            continue;
        }
        first_seen.insert(insight.id.clone(), (check.file.clone(), line));
        kept.push(insight);
    }
    kept
}

/// `items.iter().map(f)`, spread over the machine's cores in contiguous chunks, in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// One file to load, with the built-in pack it is (`None`: an operator's file, or a test's).
struct SourceFile {
    file: PathBuf,
    text: String,
    pack: Option<&'static str>,
}

/// Every built-in pack's insights file, in [`BUILTIN_PACKS`] order, named by its folder.
fn builtin_sources() -> Vec<SourceFile> {
    BUILTIN_PACKS
        .iter()
        .map(|pack| SourceFile {
            file: pack.insights_file(),
            text: pack.insights_toml.to_string(),
            pack: Some(pack.id),
        })
        .collect()
}

/// The (file, text) pairs at `path`: the file itself, or every `*.toml` file of the directory.
fn read_sources(path: &Path) -> Result<Vec<(PathBuf, String)>, LoadError> {
    let metadata =
        std::fs::metadata(path).map_err(|e| LoadError::path(path, format!("cannot read: {e}")))?;
    let files: Vec<PathBuf> = if metadata.is_dir() {
        let cannot_list = |e: std::io::Error| LoadError::path(path, format!("cannot list: {e}"));
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(cannot_list)? {
            let p = entry.map_err(cannot_list)?.path();
            if p.extension().is_some_and(|ext| ext == "toml") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(LoadError::path(
                path,
                "no *.toml files in this directory: the collection is empty",
            ));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|file| match std::fs::read_to_string(&file) {
            Ok(text) => Ok((file, text)),
            Err(e) => Err(LoadError::path(&file, format!("cannot read: {e}"))),
        })
        .collect()
}

/// Parses and validates `sources` in parallel (TOML parsing is most of the cost of a large
/// collection), then merges them in order, which is where duplicate ids are found: the whole
/// insights, each tagged with its file's pack, and every problem.
fn check_sources(sources: &[SourceFile]) -> (Vec<Insight>, Vec<Problem>) {
    let rules = Rules::file();
    let checked = parallel_map(sources, |source| {
        check_file(&source.file, &source.text, &rules, None)
    });
    let mut insights = Vec::new();
    let mut problems = Vec::new();
    // id -> (file, line) of its first definition, so a duplicate names both places.
    let mut first_seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for (mut file, source) in checked.into_iter().zip(sources) {
        let kept = drop_duplicates(file.insights, &mut file.check, &mut first_seen);
        insights.extend(kept.into_iter().map(|insight| Insight {
            pack: source.pack,
            ..insight
        }));
        // In line order within each file (validation reports field by field, then
        // duplicates), files in the order given.
        file.check.problems.sort_by_key(|p| p.line);
        problems.append(&mut file.check.problems);
    }
    if insights.is_empty() && problems.is_empty() {
        problems.push(Problem {
            file: sources.first().map(|s| s.file.clone()).unwrap_or_default(),
            line: 1,
            reason: "the collection is empty: add at least one [[insight]]".into(),
        });
    }
    (insights, problems)
}

impl Library {
    /// The built-in collection alone: every pack.
    pub fn builtin() -> Result<Library, LoadError> {
        Library::load_collection(Some(&PackSelection::All), None)
    }

    /// The built-in packs in `selection` alone (the relevance tests serve the seed pack alone).
    pub fn builtin_packs(selection: &PackSelection) -> Result<Library, LoadError> {
        Library::load_collection(Some(selection), None)
    }

    /// What the program serves: the built-in packs in `packs` (`None`: `INSIGHTS_BUILTIN=off`),
    /// plus the operator's files at `extra` (`INSIGHTS_PATH`). An id may not be defined twice,
    /// also across the two: an operator's file changes the collection by adding to it, never by
    /// silently replacing a shipped insight (see docs/curation.md).
    ///
    /// Every built-in pack is loaded and checked, the ones not selected included, and only then
    /// are those left out: ids are unique across the whole library, so that selecting another
    /// pack later never turns an operator's file into a duplicate.
    pub fn load_collection(
        packs: Option<&PackSelection>,
        extra: Option<&Path>,
    ) -> Result<Library, LoadError> {
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        if packs.is_some() {
            if let Err(mut found) = packs::builtin_packs() {
                problems.append(&mut found);
            }
            sources.extend(builtin_sources());
        }
        if let Some(path) = extra {
            sources.extend(
                read_sources(path)?
                    .into_iter()
                    .map(|(file, text)| SourceFile {
                        file,
                        text,
                        pack: None,
                    }),
            );
        }
        if sources.is_empty() {
            return Err(LoadError::Invalid {
                problems: vec![Problem {
                    file: PathBuf::from("INSIGHTS_BUILTIN"),
                    line: 1,
                    reason: "the built-in collection is off and INSIGHTS_PATH is not set: there \
                             is nothing to load"
                        .into(),
                }],
            });
        }
        let (insights, mut found) = check_sources(&sources);
        problems.append(&mut found);
        if !problems.is_empty() {
            return Err(LoadError::Invalid { problems });
        }
        let selection = packs.cloned().unwrap_or_default();
        Ok(Library::from_insights(
            insights
                .into_iter()
                .filter(|i| i.pack.is_none_or(|p| selection.includes(p)))
                .collect(),
        ))
    }

    /// Loads a collection from a `.toml` file, or from every `*.toml` file of a directory
    /// (sorted by name, so ids and errors come out in a stable order).
    pub fn load(path: &Path) -> Result<Library, LoadError> {
        Library::from_sources(&read_sources(path)?)
    }

    /// Parses and validates collections given as (file name, TOML text) pairs.
    ///
    /// Files are parsed and validated in parallel (TOML parsing is most of the cost of a large
    /// collection), then merged in order, which is where duplicate ids are found.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Library, LoadError> {
        let sources: Vec<SourceFile> = sources
            .iter()
            .map(|(file, text)| SourceFile {
                file: file.clone(),
                text: text.clone(),
                pack: None,
            })
            .collect();
        let (insights, problems) = check_sources(&sources);
        if !problems.is_empty() {
            return Err(LoadError::Invalid { problems });
        }
        Ok(Library::from_insights(insights))
    }

    /// Builds the look-up tables for already validated insights.
    pub fn from_insights(insights: Vec<Insight>) -> Library {
        let mut by_id = HashMap::with_capacity(insights.len());
        let mut topics: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, insight) in insights.iter().enumerate() {
            by_id.insert(insight.id.clone(), i);
            for topic in &insight.topics {
                topics.entry(topic.clone()).or_default().push(i);
            }
        }
        Library {
            insights,
            by_id,
            topics,
        }
    }

    /// All insights, in load order.
    pub fn insights(&self) -> &[Insight] {
        &self.insights
    }

    pub fn len(&self) -> usize {
        self.insights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insights.is_empty()
    }

    /// Where insight `id` is in [`Library::insights`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn get(&self, id: &str) -> Option<&Insight> {
        self.by_id.get(id).map(|&i| &self.insights[i])
    }

    /// Topics with how many insights carry each, alphabetically.
    pub fn topics(&self) -> impl Iterator<Item = (&str, usize)> {
        self.topics.iter().map(|(t, v)| (t.as_str(), v.len()))
    }

    /// The built-in packs this collection holds insights of, with how many each, in load order
    /// (the insights of no pack are not counted).
    pub fn packs(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for pack in self.insights.iter().filter_map(|i| i.pack) {
            match counts.iter_mut().find(|(id, _)| *id == pack) {
                Some((_, n)) => *n += 1,
                None => counts.push((pack, 1)),
            }
        }
        counts
    }

    pub fn has_topic(&self, topic: &str) -> bool {
        self.topic(topic).is_some()
    }

    /// The insights of `topic` as typed: exactly, or as a tag (`Delegation`, ` New Manager `
    /// find `delegation` and `new-manager`), since topics are lowercase tags and people type
    /// them as words.
    fn topic(&self, typed: &str) -> Option<&Vec<usize>> {
        self.topics.get(typed).or_else(|| {
            let tag = super::validate::topics_in(typed).next()?;
            self.topics.get(&tag)
        })
    }

    /// A random insight, from `topic` when given, preferring one other than `avoid` (so "another
    /// one" never shows the same insight twice in a row when there is a choice).
    /// `None` when the topic is unknown.
    pub fn random<R: Rng + ?Sized>(
        &self,
        topic: Option<&str>,
        avoid: Option<&str>,
        rng: &mut R,
    ) -> Option<&Insight> {
        let everything: Vec<usize>;
        let pool: &[usize] = match topic {
            Some(t) => self.topic(t)?,
            None => {
                everything = (0..self.insights.len()).collect();
                &everything
            }
        };
        let preferred: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|&i| Some(self.insights[i].id.as_str()) != avoid)
            .collect();
        let choice = if preferred.is_empty() {
            pool.choose(rng)
        } else {
            preferred.choose(rng)
        };
        choice.map(|&i| &self.insights[i])
    }
}

/// Validates one raw entry with `rules` ([`validate`]), reporting every problem on its line;
/// returns the insight and the span of its id only when the entry is whole.
///
/// A problem is placed on its field's line, except an absent field (and an id that is not a
/// slug), which are placed on the entry's `[[insight]]` line.
fn check_entry(
    entry: Spanned<RawInsight>,
    rules: &Rules,
    check: &mut FileCheck,
) -> Option<(Insight, Range<usize>)> {
    let entry_span = entry.span();
    let raw = entry.into_inner();
    let id_span = raw.id.as_ref().map_or(entry_span.clone(), |id| id.span());
    let fields = Fields {
        id: raw.id.as_ref().map(|v| v.get_ref().as_str()),
        title: raw.title.as_ref().map(|v| v.get_ref().as_str()),
        text: raw.text.as_ref().map(|v| v.get_ref().as_str()),
        topics: raw.topics.as_ref().map(|v| v.get_ref().as_slice()),
        asks: raw.asks.as_ref().map(|v| v.get_ref().as_slice()),
        source: raw.source.as_ref().map(|v| {
            let source = v.get_ref();
            SourceFields {
                title: source.title.as_deref(),
                publisher: source.publisher.as_deref(),
                url: source.url.as_deref(),
            }
        }),
    };
    match validate(fields, rules) {
        Ok(insight) => Some((insight, id_span)),
        Err(problems) => {
            for problem in problems {
                let field_span = match problem.field {
                    "id" => raw.id.as_ref().map(Spanned::span),
                    "title" => raw.title.as_ref().map(Spanned::span),
                    "text" => raw.text.as_ref().map(Spanned::span),
                    "topics" => raw.topics.as_ref().map(Spanned::span),
                    "asks" => raw.asks.as_ref().map(Spanned::span),
                    _ => raw.source.as_ref().map(Spanned::span),
                };
                let span = match (problem.kind, problem.field) {
                    (ProblemKind::Missing, _) | (ProblemKind::NotSlug, "id") => None,
                    _ => field_span,
                };
                check.report(span.unwrap_or(entry_span.clone()), problem.reason);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[insight]]
id = "first-one"
title = "A title"
text = "Some text about delegation."
topics = ["delegation"]
asks = ["How do I delegate?"]
source = { title = "A page", publisher = "RiffOn" }
"#;

    fn load(files: &[(&str, &str)]) -> Result<Library, LoadError> {
        let sources: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(name, text)| (PathBuf::from(name), text.to_string()))
            .collect();
        Library::from_sources(&sources)
    }

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        load(files)
            .expect_err("should not load")
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn with(field: &str, replacement: &str) -> String {
        let line = GOOD
            .lines()
            .find(|l| l.starts_with(&format!("{field} =")))
            .unwrap();
        GOOD.replace(line, replacement)
    }

    #[test]
    fn a_good_file_loads() {
        let library = load(&[("a.toml", GOOD)]).unwrap();
        assert_eq!(library.len(), 1);
        let insight = library.get("first-one").unwrap();
        assert_eq!(insight.source.to_string(), "A page | RiffOn");
        assert_eq!(
            library.topics().collect::<Vec<_>>(),
            vec![("delegation", 1)]
        );
    }

    fn seed_pack() -> Library {
        Library::builtin_packs(&PackSelection::only(&[packs::SEED_PACK]).unwrap())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_seed_pack_holds_the_eleven_insights_of_the_seed_page() {
        let library = seed_pack();
        let ids: Vec<&str> = library.insights().iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tour-of-duty",
                "management-vs-authority",
                "cross-functional",
                "managing-managers",
                "unowned-work",
                "trust-and-delegate",
                "ai-back-to-ic",
                "lateral-move",
                "founder-roles",
                "manager-to-director",
                "fix-the-system"
            ]
        );
        assert!(library
            .insights()
            .iter()
            .all(|i| i.pack == Some("ic-and-management") && i.source.publisher == "RiffOn"));
    }

    #[test]
    fn the_library_is_every_pack_each_insight_knowing_its_pack() {
        let library = Library::builtin().unwrap_or_else(|e| panic!("{e}"));
        let counts = library.packs();
        let ids: Vec<&str> = counts.iter().map(|(id, _)| *id).collect();
        let all: Vec<&str> = BUILTIN_PACKS.iter().map(|p| p.id).collect();
        assert_eq!(ids, all);
        assert!(counts.iter().all(|&(_, n)| n >= 10), "{counts:?}");
        assert_eq!(
            counts.iter().map(|(_, n)| n).sum::<usize>(),
            library.len(),
            "every insight has a pack"
        );
        // Each pack's count is its file's number of entries.
        for pack in BUILTIN_PACKS {
            let entries = pack.insights_toml.matches("[[insight]]").count();
            let counted = counts.iter().find(|(id, _)| *id == pack.id).unwrap().1;
            assert_eq!(counted, entries, "{}", pack.id);
        }
        let starter = library
            .insights()
            .iter()
            .filter(|i| i.pack != Some(packs::SEED_PACK));
        assert!(starter
            .clone()
            .all(|i| i.source.title == "insight-bot starter library"));
        assert!(starter.count() >= 100);
    }

    #[test]
    fn a_selection_serves_its_packs_and_the_operators_files() {
        let two = PackSelection::only(&["hiring", "feedback"]).unwrap();
        let library = Library::builtin_packs(&two).unwrap();
        let packs: Vec<&str> = library.packs().iter().map(|(id, _)| *id).collect();
        assert_eq!(packs, ["feedback", "hiring"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ours.toml"), GOOD).unwrap();
        let with_ours = Library::load_collection(Some(&two), Some(dir.path())).unwrap();
        assert_eq!(with_ours.len(), library.len() + 1);
        assert_eq!(with_ours.get("first-one").unwrap().pack, None);
        // An id of a pack that is not selected is still taken: selecting it later must not
        // break the operator's file.
        let hiring_id = Library::builtin_packs(&PackSelection::only(&["hiring"]).unwrap())
            .unwrap()
            .insights()[0]
            .id
            .clone();
        std::fs::write(
            dir.path().join("ours.toml"),
            GOOD.replace("first-one", &hiring_id),
        )
        .unwrap();
        let only_feedback = PackSelection::only(&["feedback"]).unwrap();
        let err = Library::load_collection(Some(&only_feedback), Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "ours.toml:3: duplicate id {hiring_id:?}: already defined at data/packs/hiring/insights.toml (built in):"
            )),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_texts_are_the_seed_page_verbatim() {
        let seed_path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/seed/000_810378633ead5158.txt"
        );
        let seed = std::fs::read_to_string(seed_path)
            .unwrap_or_else(|e| panic!("the seed page {seed_path}: {e}"));
        let library = seed_pack();
        for insight in library.insights() {
            assert!(
                seed.lines().any(|line| line.trim() == insight.text),
                "{} is not a paragraph of the seed page verbatim",
                insight.id
            );
        }
    }

    #[test]
    fn the_builtin_collection_is_the_data_files_and_operator_files_add_to_it() {
        let on_disk: Vec<(PathBuf, String)> = BUILTIN_PACKS
            .iter()
            .map(|p| {
                let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("data/packs/{}/insights.toml", p.id));
                let text = std::fs::read_to_string(&file).unwrap();
                (file, text)
            })
            .collect();
        let on_disk = Library::from_sources(&on_disk).unwrap_or_else(|e| panic!("{e}"));
        let builtin = Library::builtin().unwrap();
        let without_packs: Vec<Insight> = builtin
            .insights()
            .iter()
            .map(|i| Insight {
                pack: None,
                ..i.clone()
            })
            .collect();
        assert_eq!(on_disk.insights(), without_packs);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ours.toml"), GOOD).unwrap();
        let all = PackSelection::All;
        let both = Library::load_collection(Some(&all), Some(dir.path())).unwrap();
        assert_eq!(both.len(), builtin.len() + 1);
        assert!(both.get("first-one").is_some() && both.get("tour-of-duty").is_some());
        let ours = Library::load_collection(None, Some(dir.path())).unwrap();
        assert_eq!(ours.len(), 1);
        assert_eq!(
            Library::load_collection(Some(&all), None)
                .unwrap()
                .insights(),
            builtin.insights()
        );
        let nothing = Library::load_collection(None, None)
            .unwrap_err()
            .to_string();
        assert!(nothing.contains("nothing to load"), "{nothing}");

        // A shipped id defined again by the operator is a duplicate naming both places.
        std::fs::write(
            dir.path().join("ours.toml"),
            GOOD.replace("first-one", "tour-of-duty"),
        )
        .unwrap();
        let err = Library::load_collection(Some(&all), Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ours.toml:3: duplicate id \"tour-of-duty\": already defined at data/packs/ic-and-management/insights.toml (built in):"),
            "{err}"
        );
    }

    #[test]
    fn invalid_toml_reports_file_and_line() {
        let text = format!("{GOOD}\n[[insight]]\nid = \"broken\ntitle = \"x\"\n");
        let p = problems(&[("bad.toml", &text)]);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("bad.toml:11: invalid TOML"), "{p:?}");
    }

    #[test]
    fn a_missing_field_is_named_with_the_entry_line() {
        let text = GOOD.replace("title = \"A title\"\n", "");
        assert_eq!(
            problems(&[("a.toml", &text)]),
            ["a.toml:2: [[insight]] is missing the `title` field"]
        );
    }

    #[test]
    fn empty_fields_are_refused() {
        for (field, replacement, expected) in [
            ("text", "text = \"   \"", "a.toml:5: `text` is empty"),
            (
                "topics",
                "topics = []",
                "a.toml:6: `topics` is empty: give at least one",
            ),
            (
                "asks",
                "asks = [\"\"]",
                "a.toml:7: `asks` has an empty entry",
            ),
            (
                "source",
                "source = { title = \"A page\", publisher = \"\" }",
                "a.toml:8: `source.publisher` is missing or empty",
            ),
        ] {
            assert_eq!(
                problems(&[("a.toml", &with(field, replacement))]),
                [expected]
            );
        }
    }

    #[test]
    fn ids_must_be_lowercase_slugs() {
        for bad in [
            "Tour",
            "tour_of_duty",
            "-tour",
            "tour--duty",
            "tour of duty",
            "tour-",
        ] {
            let text = with("id", &format!("id = {bad:?}"));
            let p = problems(&[("a.toml", &text)]);
            assert!(p[0].contains("not a lowercase slug"), "{bad}: {p:?}");
        }
        assert!(is_slug("ai-back-to-ic2"));
    }

    #[test]
    fn duplicate_ids_are_refused_also_across_files() {
        let p = problems(&[("a.toml", GOOD), ("b.toml", GOOD)]);
        assert_eq!(
            p,
            ["b.toml:3: duplicate id \"first-one\": already defined at a.toml:3"]
        );
        let twice = format!("{GOOD}{GOOD}");
        assert_eq!(problems(&[("a.toml", &twice)]).len(), 1);
    }

    #[test]
    fn discord_limits_are_enforced() {
        let long_text = with("text", &format!("text = \"{}\"", "x".repeat(4097)));
        assert!(problems(&[("a.toml", &long_text)])[0]
            .contains("`text` is 4097 characters long; the limit is 4096"));
        let at_limit = with("text", &format!("text = \"{}\"", "é".repeat(4096)));
        assert!(
            load(&[("a.toml", &at_limit)]).is_ok(),
            "4096 characters (not bytes) fit"
        );
        let long_title = with("title", &format!("title = \"{}\"", "t".repeat(257)));
        assert!(problems(&[("a.toml", &long_title)])[0].contains("`title` is 257 characters long"));
    }

    #[test]
    fn unknown_fields_are_refused_each_on_its_line_with_the_other_problems() {
        let text = GOOD.replace("asks =", "aks = [\"typo\"]\nasks =");
        let p = problems(&[("a.toml", &text)]);
        assert_eq!(
            p,
            [
                "a.toml:7: unknown field `aks` (a typo?): the fields are `id`, `title`, `text`, \
              `topics`, `asks`, `source`"
            ]
        );
        let top = format!("insights = 1\n{GOOD}");
        assert_eq!(
            problems(&[("a.toml", &top)]),
            ["a.toml:1: unknown field `insights`: a file holds `[[insight]]` tables only"]
        );
        // An unknown field hides nothing else: a typo in one entry's source, a title too long in
        // the next, and a typo there too, each on its own line.
        let second = GOOD
            .replace("first-one", "second-one")
            .replace("\"A title\"", &format!("\"{}\"", "t".repeat(257)))
            .replace("topics =", "topcis = [\"x\"]\ntopics =");
        let text = format!(
            "{}{second}",
            GOOD.replace("publisher = ", "publsher = \"x\", publisher = ")
        );
        let p = problems(&[("a.toml", &text)]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("a.toml:8: unknown field `publsher`"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("a.toml:12: `title` is 257 characters long"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("a.toml:14: unknown field `topcis`"),
            "{p:?}"
        );
    }

    #[test]
    fn an_empty_collection_is_refused() {
        assert_eq!(
            problems(&[("a.toml", "# nothing yet\n")]),
            ["a.toml:1: the collection is empty: add at least one [[insight]]"]
        );
    }

    #[test]
    fn all_problems_are_reported_and_nothing_half_loads() {
        let bad = with("id", "id = \"Bad Id\"");
        let p = problems(&[("a.toml", GOOD), ("b.toml", &bad)]);
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn a_directory_loads_every_toml_file_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            GOOD.replace("first-one", "second-one"),
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let library = Library::load(dir.path()).unwrap();
        let ids: Vec<&str> = library.insights().iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["second-one", "first-one"]);
        let empty = tempfile::tempdir().unwrap();
        let err = Library::load(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no *.toml files"), "{err}");
        let missing = Library::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.ends_with("nope: cannot read: No such file or directory (os error 2)"),
            "{missing}"
        );
        assert!(
            Path::new(missing.split(": ").next().unwrap()).is_absolute(),
            "{missing}"
        );
    }

    #[test]
    fn random_respects_topic_and_avoids_the_previous_pick() {
        let two = format!("{GOOD}{}", GOOD.replace("first-one", "second-one"));
        let library = load(&[("a.toml", &two)]).unwrap();
        let mut rng = rand::thread_rng();
        for _ in 0..20 {
            let pick = library
                .random(Some("delegation"), Some("first-one"), &mut rng)
                .unwrap();
            assert_eq!(pick.id, "second-one");
        }
        assert!(library.random(Some("nope"), None, &mut rng).is_none());
        // Typed as a word, in any case: the tag is found.
        for typed in ["Delegation", " DELEGATION "] {
            assert!(
                library.random(Some(typed), None, &mut rng).is_some(),
                "{typed}"
            );
            assert!(library.has_topic(typed), "{typed}");
        }
        let one = load(&[("a.toml", GOOD)]).unwrap();
        assert_eq!(
            one.random(None, Some("first-one"), &mut rng).unwrap().id,
            "first-one"
        );
    }

    #[test]
    fn problems_are_listed_in_line_order() {
        // The second entry's id is reported on its entry line after its title's problem, and the
        // third repeats the first's id: all come out by line.
        let long_title = "T".repeat(300);
        let text = format!(
            "{GOOD}{}{}",
            GOOD.replace("first-one", "Bad Id")
                .replace("\"A title\"", &format!("\"{long_title}\"")),
            GOOD
        );
        let Err(LoadError::Invalid { problems }) = load(&[("a.toml", &text)]) else {
            panic!("should not load");
        };
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines.len(), 3, "{problems:?}");
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    }
}
