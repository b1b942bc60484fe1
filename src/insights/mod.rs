//! Insights: what one is ([`Insight`]), the rules every insight obeys wherever it comes from
//! ([`validate`]), the collection that holds them ([`library`]: loading, look-up, random picks),
//! how a question finds them ([`search`]), and a collection ready to answer ([`catalog`]: the
//! collection, its index and the model).
//!
//! The types live here, above `library` and `search`, so that neither imports the other:
//! `search` ranks `Insight`s, `library` owns them, `catalog` puts the two together.

use std::fmt;

pub mod catalog;
pub mod duplicates;
pub mod export;
pub mod import;
pub mod library;
pub mod packs;
pub mod search;
pub mod validate;

pub use catalog::Catalog;
pub use export::export_toml;
pub use import::{parse_import, MAX_IMPORT_BYTES, MAX_IMPORT_INSIGHTS, MAX_LISTED_PROBLEMS};
pub use library::Library;
pub use packs::PackSelection;
pub use validate::{
    parse_asks, parse_topics, slug_from_title, validate, FieldProblem, Fields, ProblemKind, Rules,
    SourceFields, TitleIds, MAX_ASKS, MAX_TOPICS,
};

/// Discord: an embed description holds at most 4096 characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Discord: an embed title holds at most 256 characters.
pub const MAX_TITLE_CHARS: usize = 256;
/// Ids travel inside button custom ids (at most 100 characters with our prefix), so keep them short.
pub const MAX_ID_CHARS: usize = 64;
/// Discord: an embed footer holds at most 2048 characters; the source is shown there.
pub const MAX_SOURCE_CHARS: usize = 1024;

/// Where an insight comes from, shown in the embed footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub title: String,
    pub publisher: String,
    pub url: Option<String>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} | {}", self.title, self.publisher)
    }
}

/// One insight, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insight {
    /// A lowercase slug, unique across the collection: `tour-of-duty`.
    pub id: String,
    /// A short headline a person would click.
    pub title: String,
    /// The insight itself, verbatim from its source.
    pub text: String,
    /// Lowercase tags, e.g. `delegation`, `career`.
    pub topics: Vec<String>,
    /// Questions and situations, in people's own words, that this insight answers.
    pub asks: Vec<String>,
    pub source: Source,
    /// The built-in pack it comes from ([`packs`]); `None` for an operator's (`INSIGHTS_PATH`)
    /// or a server's own insight. Not part of the file format: the loader sets it.
    pub pack: Option<&'static str>,
}

/// True for a lowercase slug: `a-z`, `0-9`, single hyphens between words.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}
