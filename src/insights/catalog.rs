//! A collection ready to answer questions: the insights, their search index and the model.
//!
//! [`Library`] is the collection alone (load, validate, look up, pick at random), which is all
//! `check`, `topics` or `/insight` need; a [`Catalog`] adds what answering needs, at the cost of
//! embedding the collection's documents once (from the vector cache when it has them).
//!
//! A server's catalog ([`Catalog::for_server`]) is the shipped catalog's visible insights and then
//! the server's own, built in milliseconds: it shares the shipped collection's vectors (every
//! server scans the same ones, with the hidden insights left out) and brings its own as already
//! embedded [`InsightVectors`], so a change in a server never runs the model on anything but what
//! changed.

use std::sync::Arc;

use super::search::semantic::{InsightVectors, SemanticIndex};
use super::search::{Answer, AskError, Question, SearchIndex, Searcher};
use super::{Insight, Library};
use crate::embedding::{EmbedError, Vector};

#[derive(Debug)]
pub struct Catalog {
    library: Arc<Library>,
    index: SearchIndex,
    searcher: Searcher,
}

/// Which of the shipped insights a server sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipped<'a> {
    /// All but the insights with these ids (sorted: the ones it hid) and those of these built-in
    /// packs (sorted: the packs it turned off).
    AllBut(&'a [String], &'a [String]),
    /// None: the server answers from its own insights only.
    None,
}

impl Catalog {
    /// Indexes `library` with `searcher`'s model.
    pub fn new(library: Arc<Library>, searcher: Searcher) -> Result<Catalog, EmbedError> {
        let index = searcher.index(library.insights())?;
        Ok(Catalog {
            library,
            index,
            searcher,
        })
    }

    /// A server's catalog: `shipped`'s insights as `visible` says, then `own` (whose documents
    /// are `own_index`, in the same order). Ids in `own` must not be shipped ids.
    pub fn for_server(
        shipped: &Catalog,
        visible: Shipped<'_>,
        own: &[Insight],
        own_index: Arc<SemanticIndex>,
    ) -> Catalog {
        debug_assert_eq!(own.len(), own_index.insights());
        let all = shipped.library.insights();
        let keep: Vec<u32> = match visible {
            Shipped::None => Vec::new(),
            Shipped::AllBut(hidden, packs_off) => (0..all.len() as u32)
                .filter(|&i| {
                    let insight = &all[i as usize];
                    let pack_off = insight.pack.is_some_and(|pack| {
                        packs_off
                            .binary_search_by(|off| off.as_str().cmp(pack))
                            .is_ok()
                    });
                    !pack_off && hidden.binary_search(&insight.id).is_err()
                })
                .collect(),
        };
        let mut insights = Vec::with_capacity(keep.len() + own.len());
        insights.extend(keep.iter().map(|&i| all[i as usize].clone()));
        insights.extend_from_slice(own);
        let mut layers = Vec::with_capacity(2);
        if !keep.is_empty() {
            let shipped_index = shipped
                .index
                .layer(0)
                .expect("a shipped catalog has one layer");
            let keep = (keep.len() < all.len()).then_some(keep);
            layers.push((Arc::clone(shipped_index), keep));
        }
        layers.push((own_index, None));
        let index = SearchIndex::layered(&insights, layers);
        Catalog {
            library: Arc::new(Library::from_insights(insights)),
            index,
            searcher: shipped.searcher.clone(),
        }
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    pub fn searcher(&self) -> &Searcher {
        &self.searcher
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// The best `limit` insights for `question`, or none and "no close match". CPU work of
    /// milliseconds: run it off the async runtime's worker threads.
    pub fn ask(&self, question: &str, limit: usize) -> Result<Answer<'_>, AskError> {
        self.searcher
            .ask(&self.index, self.library.insights(), question, limit)
    }

    /// [`Catalog::ask`] for a question already read and embedded (benchmarks, and several
    /// catalogs asked the same question).
    pub fn rank(&self, question: &Question, vectors: &[Vector], limit: usize) -> Answer<'_> {
        self.searcher.rank(
            &self.index,
            self.library.insights(),
            question,
            vectors,
            limit,
        )
    }

    /// The embedded documents of `insight` (body, then each ask), for a server to keep.
    pub fn embed_insight(&self, insight: &Insight) -> Result<InsightVectors, EmbedError> {
        let texts: Vec<String> = super::search::semantic::documents(insight)
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        // Straight to the model, not through the vector cache: a server's texts are its own,
        // kept with its insights in the database, and would only grow the shared cache.
        let vectors = self.searcher.embedder().embed(&refs)?;
        Ok(InsightVectors::from_vectors(&vectors))
    }

    /// The insight most like `vectors`' (an insight's, from [`Catalog::embed_insight`]) by title
    /// and text, other than `except`, with the cosine similarity of the two.
    pub fn nearest(
        &self,
        vectors: &InsightVectors,
        except: Option<&str>,
    ) -> Option<(&Insight, f32)> {
        let body = vectors.body_vector()?;
        let insights = self.library.insights();
        self.index
            .body_similarities(&body)
            .into_iter()
            .enumerate()
            .filter(|&(i, _)| Some(insights[i].id.as_str()) != except)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, s)| (&insights[i], s))
    }
}
