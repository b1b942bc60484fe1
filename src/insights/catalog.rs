//! A collection ready to answer questions: the insights, their search index and the model.
//!
//! [`Library`] is the collection alone (load, validate, look up, pick at random), which is all
//! `check`, `topics` or `/insight` need; a [`Catalog`] adds what answering needs, at the cost of
//! embedding the collection's documents once (from the vector cache when it has them).

use std::sync::Arc;

use super::search::{Answer, AskError, SearchIndex, Searcher};
use super::Library;
use crate::embedding::EmbedError;

#[derive(Debug)]
pub struct Catalog {
    library: Arc<Library>,
    index: SearchIndex,
    searcher: Searcher,
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

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    pub fn searcher(&self) -> &Searcher {
        &self.searcher
    }

    /// The best `limit` insights for `question`, or none and "no close match". CPU work of
    /// milliseconds: run it off the async runtime's worker threads.
    pub fn ask(&self, question: &str, limit: usize) -> Result<Answer<'_>, AskError> {
        self.searcher
            .ask(&self.index, self.library.insights(), question, limit)
    }
}
