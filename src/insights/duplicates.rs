//! Near-duplicates: two insights that say nearly the same thing, found by meaning.
//!
//! Two insights are near-duplicates when the cosine similarity of their `title + ". " + text`
//! embeddings (the body document every insight is searched by, [`documents`]) is at least
//! [`NEAR_DUPLICATE`]. A near-duplicate splits the answers to one question between two insights
//! and makes "related" suggestions repeat the answer, so the library is checked for them as a
//! whole: `insight-bot check` over everything served (built-in packs and `INSIGHTS_PATH`), and
//! `/insights add` for a server's new insight against what the server sees.
//!
//! **A warning, not an error.** `check` reports each pair and still succeeds, and start-up never
//! runs the model for this. The similarity is a heuristic: two insights on one situation that
//! give different advice (telling a person first before a layoff and before a performance plan)
//! can come near the line, and only a reader can say whether one should go. That is also how a
//! server's curators meet it (a warning with **Save anyway**). The shipped library is held to
//! none at all by a test (`tests/packs.rs`), so an operator who sees a warning knows it is about
//! their own files.

use super::search::semantic::documents;
use super::{Catalog, Insight};
use crate::embedding::{cosine, EmbedError};

/// From this cosine similarity of title and text, two insights are near-duplicates. The two
/// closest distinct insights of the seed collection score 0.62, and of the whole library (118)
/// 0.66 (`bad-news-affected-first` and `say-it-in-three-places`); a reworded copy of one scores
/// 0.94 (measured with all-MiniLM-L6-v2 in `tests/collections.rs` and `tests/packs.rs`, which
/// print them: re-measure with a new model).
pub const NEAR_DUPLICATE: f32 = 0.85;

/// Two insights too alike, with their cosine similarity; `first` comes before `second` in the
/// collection.
#[derive(Debug, Clone, PartialEq)]
pub struct NearDuplicate {
    pub first: String,
    pub second: String,
    pub cosine: f32,
}

/// The body text of an insight: what near-duplicates are judged on.
fn body(insight: &Insight) -> String {
    documents(insight)
        .into_iter()
        .next()
        .map(|(_, text)| text)
        .unwrap_or_default()
}

/// Every pair of the catalog's insights at or above [`NEAR_DUPLICATE`], the most alike first.
/// The body vectors come through the catalog's vector cache, which indexing filled, so this
/// embeds nothing new; comparing every pair is 7,000 dot products for the shipped library.
pub fn near_duplicates(catalog: &Catalog) -> Result<Vec<NearDuplicate>, EmbedError> {
    let insights = catalog.library().insights();
    let similarities = body_similarities(catalog, insights)?;
    let mut found: Vec<NearDuplicate> = similarities
        .into_iter()
        .filter(|&(_, _, c)| c >= NEAR_DUPLICATE)
        .map(|(i, j, cosine)| NearDuplicate {
            first: insights[i].id.clone(),
            second: insights[j].id.clone(),
            cosine,
        })
        .collect();
    found.sort_by(|a, b| b.cosine.total_cmp(&a.cosine));
    Ok(found)
}

/// The most alike pair of the catalog's insights (a figure for the docs and the test's message),
/// or `None` with fewer than two insights.
pub fn closest_pair(catalog: &Catalog) -> Result<Option<NearDuplicate>, EmbedError> {
    let insights = catalog.library().insights();
    Ok(body_similarities(catalog, insights)?
        .into_iter()
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(i, j, cosine)| NearDuplicate {
            first: insights[i].id.clone(),
            second: insights[j].id.clone(),
            cosine,
        }))
}

/// The cosine of every pair `(i, j)`, `i < j`.
fn body_similarities(
    catalog: &Catalog,
    insights: &[Insight],
) -> Result<Vec<(usize, usize, f32)>, EmbedError> {
    let texts: Vec<String> = insights.iter().map(body).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let searcher = catalog.searcher();
    let vectors = searcher.cache().embed(searcher.embedder(), &refs)?;
    let mut pairs = Vec::with_capacity(vectors.len() * vectors.len().saturating_sub(1) / 2);
    for i in 0..vectors.len() {
        for j in i + 1..vectors.len() {
            pairs.push((i, j, cosine(&vectors[i], &vectors[j])));
        }
    }
    Ok(pairs)
}
