//! Which insight answers a person's question, and whether any does: the one code path behind
//! `ask`, `/advice` and DMs.
//!
//! A question goes through four steps:
//! 1. **Normalise** ([`normalize`]): the field's abbreviations spelled out ("new EM" -> "new
//!    engineering manager"); a long message is also cut into sentences, so that its point is not
//!    drowned by the rest.
//! 2. **Semantic similarity** ([`semantic`]): the question (and its sentences) embedded with the
//!    sentence-transformer model and compared with every insight's documents (title + text, and
//!    each `ask` on its own); an insight's similarity is its best document's.
//! 3. **Lexical evidence** ([`lexical`]): BM25 over the insights' words, with the domain
//!    vocabulary's related words ([`vocabulary`]). It still wins on precise words, so it is
//!    blended in: `score = similarity + LEXICAL_WEIGHT x bm25 / best bm25 of this question`.
//!    Equal scores are ordered by id, so answers are stable.
//! 4. **Confidence** ([`gate`]), decided apart from the score: **none** when the question is
//!    nearer to everyday off-topic messages than to leadership questions; **weak** when it is a
//!    leadership question on a topic this collection has no insight on (a generic question the
//!    collection does not cover is nearer to it than any insight); **strong** otherwise. A weak
//!    answer still names the closest insight, as the closest one.
//!
//! Calibration: `LEXICAL_WEIGHT` and the gate's constants were chosen on the tuning sets and then
//! measured once on the held-out sets (figures in docs/relevance.md). Embedding is CPU work of
//! milliseconds; callers on the async runtime run [`Searcher::ask`] on the blocking pool.

pub mod gate;
pub mod language;
pub mod lexical;
pub mod normalize;
pub mod semantic;
pub mod vocabulary;

use std::sync::{Arc, Mutex};

use crate::embedding::cache::VectorCache;
use crate::embedding::{EmbedError, Embedder, Vector};
use crate::insights::Insight;
use gate::{anchor_lines, Anchors, Uncovered, Verdict, OFF_TOPIC_ANCHORS, ON_TOPIC_ANCHORS};
use lexical::{Evidence, LexicalIndex};
use semantic::{DocKind, SemanticIndex};

/// How much the lexical score (scaled to this question's best) adds to the semantic similarity.
pub const LEXICAL_WEIGHT: f32 = 0.2;

/// Questions longer than this are analysed on their first part only: nobody's question needs
/// more, and it bounds the work a single message can cause.
pub const MAX_ANALYSED_CHARS: usize = 4000;

/// A message with more words than this is also matched sentence by sentence.
const LONG_MESSAGE_WORDS: usize = 30;
/// At most this many sentences of a long message are embedded (the first ones): each costs a
/// forward pass of the model.
const MAX_SENTENCES: usize = 4;
/// Word pieces embedded of the whole question, and of each of its sentences. The model reads 384,
/// but a 12-layer encoder costs about 85 million multiply-adds per piece: a 1,000-character
/// message and its sentences were 560 pieces, two seconds of both cores, past Discord's three
/// seconds under load. A question's point is in its first 128 pieces (about 90 words), and a
/// sentence's in 64; the rest of a long message still counts through its words (BM25).
pub const QUESTION_PIECES: usize = 128;
const SENTENCE_PIECES: usize = 64;
/// Lexical candidates considered beside the semantic ones.
const LEXICAL_CANDIDATES: usize = 50;
/// Candidates kept in an answer's explanation.
const EXPLAINED: usize = 5;

/// Why a question could not be ranked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error(
        "the question is empty: type a question, for example \"How do I stop micromanaging?\""
    )]
    Empty,
    #[error("the embedding model failed on this question: {0}")]
    Embedding(String),
}

/// One ranked insight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match<'a> {
    pub insight: &'a Insight,
    /// The blended score the ranking sorts on.
    pub score: f32,
}

/// One candidate as `ask --explain` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub score: f32,
    /// Cosine similarity of its best document.
    pub similarity: f32,
    /// Which document: "title and text" or the ask's text.
    pub matched: String,
    /// BM25 score, and as the share of this question's best that the blend used.
    pub bm25: f32,
    pub lexical: f32,
}

/// How well the answer fits the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confidence {
    /// The best insight fits.
    Strong,
    /// The closest insight, shown as the closest: the question is about a topic the collection
    /// has no insight on.
    Weak,
    /// No close match: the question is not about what the collection is about.
    None,
}

impl Confidence {
    /// The word `ask --json`, the logs and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Strong => "strong",
            Confidence::Weak => "weak",
            Confidence::None => "none",
        }
    }
}

/// Why an answer is what it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The question as matched (abbreviations spelled out).
    pub normalised: String,
    /// Sentences of a long message matched on their own.
    pub sentences: Vec<String>,
    /// The question's words as the collection knows them.
    pub evidence: Evidence,
    pub verdict: Verdict,
    /// For a weak answer, the uncovered topic the question is nearer to.
    pub uncovered: Option<Uncovered>,
    /// Whether the question has no word of English the model knows (so it was not matched).
    pub no_known_word: bool,
    /// Whether the question is written in another language (so it was not matched: the bot
    /// understands English only, and says so).
    pub other_language: bool,
    /// The best candidates, gate or not.
    pub candidates: Vec<Candidate>,
}

/// The answer to a question: the best insights first (also when weak), or none and
/// `no_close_match`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<'a> {
    pub question: String,
    pub matches: Vec<Match<'a>>,
    pub confidence: Confidence,
    /// Exactly `confidence == Confidence::None`.
    pub no_close_match: bool,
    pub explanation: Explanation,
}

impl<'a> Answer<'a> {
    pub fn best(&self) -> Option<&Match<'a>> {
        self.matches.first()
    }
}

/// The searchable form of one collection: its lexical index and its embedded documents.
///
/// The documents may come in layers: a server's collection is the shipped collection's index
/// (shared by every server, less the insights the server hid) and then the server's own. Ranking
/// sees one list of insights either way, so a server's answers are one ranking over both, with
/// the same gate and the same "no close match" rule; only the lexical index is the server's
/// own, since its word statistics are the whole collection's.
#[derive(Debug)]
pub struct SearchIndex {
    lexical: LexicalIndex,
    semantic: Vec<Layer>,
    /// Each generic anchor's similarity to this collection's nearest document, computed the
    /// first time a question needs it ([`SearchIndex::anchor_coverage`]).
    coverage: Mutex<rustc_hash::FxHashMap<usize, f32>>,
}

/// Documents of some of a collection's insights: all of `index`'s, or those numbered in `keep`.
#[derive(Debug)]
struct Layer {
    index: Arc<SemanticIndex>,
    keep: Option<Vec<u32>>,
}

impl Layer {
    fn len(&self) -> usize {
        self.keep.as_ref().map_or(self.index.insights(), Vec::len)
    }

    fn pick<T: Copy>(&self, all: Vec<T>, out: &mut Vec<T>) {
        match &self.keep {
            None => out.extend(all),
            Some(keep) => out.extend(keep.iter().map(|&i| all[i as usize])),
        }
    }
}

impl SearchIndex {
    /// An index from already computed document vectors ([`semantic::documents`] order).
    pub fn from_vectors(insights: &[Insight], vectors: &[Vector]) -> SearchIndex {
        SearchIndex::from_parts(insights, SemanticIndex::new(insights, vectors))
    }

    /// An index whose semantic side is given (benchmarks on made-up vectors).
    pub fn from_parts(insights: &[Insight], semantic: SemanticIndex) -> SearchIndex {
        SearchIndex {
            lexical: LexicalIndex::build(insights),
            semantic: vec![Layer {
                index: Arc::new(semantic),
                keep: None,
            }],
            coverage: Mutex::default(),
        }
    }

    /// The index of `insights` whose documents are `layers`, in order: each an index and which
    /// of its insights to keep (all with `None`). The kept insights, layer after layer, must be
    /// `insights`, in order.
    pub fn layered(
        insights: &[Insight],
        layers: Vec<(Arc<SemanticIndex>, Option<Vec<u32>>)>,
    ) -> SearchIndex {
        let semantic: Vec<Layer> = layers
            .into_iter()
            .map(|(index, keep)| Layer { index, keep })
            .collect();
        debug_assert_eq!(
            semantic.iter().map(Layer::len).sum::<usize>(),
            insights.len()
        );
        SearchIndex {
            lexical: LexicalIndex::build(insights),
            semantic,
            coverage: Mutex::default(),
        }
    }

    /// How close this collection comes to generic anchor `n` (vector `anchor`): its best
    /// document's similarity, -1 for a collection with none. One scan of the documents the
    /// first time, remembered after: only anchors nearer to a question than its best insight are
    /// ever asked, so most are never computed.
    pub fn anchor_coverage(&self, n: usize, anchor: &Vector) -> f32 {
        let known = self
            .coverage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&n)
            .copied();
        known.unwrap_or_else(|| {
            let best = self
                .similarities(std::slice::from_ref(anchor))
                .iter()
                .map(|s| s.value)
                .fold(-1f32, f32::max);
            self.coverage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(n, best);
            best
        })
    }

    /// The documents of layer `n` (`0` is the whole index of a collection built in one piece).
    pub fn layer(&self, n: usize) -> Option<&Arc<SemanticIndex>> {
        self.semantic.get(n).map(|l| &l.index)
    }

    /// Documents in the index (of the insights it keeps and of those it does not).
    pub fn documents(&self) -> usize {
        self.semantic.iter().map(|l| l.index.documents()).sum()
    }

    fn similarities(&self, queries: &[Vector]) -> Vec<semantic::Similarity> {
        if let [Layer { index, keep: None }] = self.semantic.as_slice() {
            return index.similarities(queries);
        }
        let mut out = Vec::new();
        for layer in &self.semantic {
            layer.pick(layer.index.similarities(queries), &mut out);
        }
        out
    }

    /// Each insight's similarity to `vector` by its title and text alone (see
    /// [`SemanticIndex::body_similarities`]).
    pub fn body_similarities(&self, vector: &Vector) -> Vec<f32> {
        let mut out = Vec::new();
        for layer in &self.semantic {
            layer.pick(layer.index.body_similarities(vector), &mut out);
        }
        out
    }
}

/// A question read for matching: trimmed and cut to [`MAX_ANALYSED_CHARS`], abbreviations
/// spelled out, and a long one cut into sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub text: String,
    pub normalised: String,
    pub sentences: Vec<String>,
}

impl Question {
    /// Reads `question`; [`AskError::Empty`] when there is nothing to read.
    pub fn read(question: &str) -> Result<Question, AskError> {
        let trimmed = question.trim();
        if trimmed.is_empty() {
            return Err(AskError::Empty);
        }
        let analysed = match trimmed.char_indices().nth(MAX_ANALYSED_CHARS) {
            Some((cut, _)) => &trimmed[..cut],
            None => trimmed,
        };
        let normalised = normalize::expand_abbreviations(analysed);
        let sentences: Vec<String> = if normalised.split_whitespace().count() > LONG_MESSAGE_WORDS {
            let all = normalize::sentences(&normalised);
            if all.len() >= 2 {
                all.into_iter()
                    .take(MAX_SENTENCES)
                    .map(str::to_string)
                    .collect()
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        Ok(Question {
            text: trimmed.to_string(),
            normalised,
            sentences,
        })
    }

    /// What is embedded: the whole (normalised) question, then each sentence.
    pub fn texts(&self) -> Vec<&str> {
        std::iter::once(self.normalised.as_str())
            .chain(self.sentences.iter().map(String::as_str))
            .collect()
    }
}

/// The model and what comes with it: its vector cache and the gate's anchors. Cheap to clone.
#[derive(Clone)]
pub struct Searcher {
    embedder: Arc<Embedder>,
    cache: Arc<VectorCache>,
    anchors: Arc<Anchors>,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Searcher")
            .field("embedder", &self.embedder)
            .field("cache", &self.cache.path())
            .finish()
    }
}

/// Vectors shipped with the program: every gate anchor and every document of the built-in
/// collection, for the built-in model (a vector cache file, 1.6 MB). Without them a first start
/// would embed about 1,100 texts (some ten seconds) before it could answer; with them it embeds
/// only what an operator or a server added. `tests/embedding.rs` checks that they match the model
/// and the current texts, and rewrites them with `INSIGHT_BOT_WRITE_SHIPPED_VECTORS=1`.
pub const SHIPPED_VECTORS: &[u8] = include_bytes!("shipped_vectors.bin");

/// Every text whose vector is shipped: the anchors, then the built-in collection's documents.
pub fn shipped_texts(builtin: &[Insight]) -> Vec<String> {
    anchor_lines(ON_TOPIC_ANCHORS)
        .into_iter()
        .chain(anchor_lines(OFF_TOPIC_ANCHORS))
        .map(str::to_string)
        .chain(
            builtin
                .iter()
                .flat_map(|i| semantic::documents(i).into_iter().map(|(_, text)| text)),
        )
        .collect()
}

impl Searcher {
    /// Embeds the gate's anchors (the shipped vectors, or `cache`, have them unless the model
    /// was replaced).
    pub fn new(embedder: Arc<Embedder>, cache: Arc<VectorCache>) -> Result<Searcher, EmbedError> {
        match cache.merge(SHIPPED_VECTORS) {
            Ok(count) => tracing::debug!(count, "shipped vectors loaded"),
            Err(reason) => tracing::info!(
                "the shipped vectors do not fit this model ({reason}): embedding the anchors once"
            ),
        }
        let on = cache.embed(&embedder, &anchor_lines(ON_TOPIC_ANCHORS))?;
        let off = cache.embed(&embedder, &anchor_lines(OFF_TOPIC_ANCHORS))?;
        Ok(Searcher {
            anchors: Arc::new(Anchors::new(on, off)),
            embedder,
            cache,
        })
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    pub fn cache(&self) -> &VectorCache {
        &self.cache
    }

    /// The vectors of `insights`' documents, embedding only what the cache lacks.
    pub fn document_vectors(&self, insights: &[Insight]) -> Result<Vec<Vector>, EmbedError> {
        let texts: Vec<String> = insights
            .iter()
            .flat_map(|i| semantic::documents(i).into_iter().map(|(_, text)| text))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.cache.embed(&self.embedder, &refs)
    }

    /// Indexes `insights` (lexical and semantic). New vectors are saved to the cache's file; a
    /// cache that cannot be written is logged, not an error.
    pub fn index(&self, insights: &[Insight]) -> Result<SearchIndex, EmbedError> {
        let vectors = self.document_vectors(insights)?;
        if let Err(e) = self.cache.save() {
            let path = self.cache.path().map(|p| p.display().to_string());
            tracing::warn!(
                path = path.unwrap_or_default(),
                "cannot write the embedding cache (answers are not affected): {e}"
            );
        }
        Ok(SearchIndex::from_vectors(insights, &vectors))
    }

    /// Whether `text` has a word of two letters or more that the model's vocabulary knows whole.
    fn has_a_known_word(&self, text: &str) -> bool {
        let tokenizer = self.embedder.tokenizer();
        text.split(|c: char| !c.is_alphabetic())
            .filter(|w| w.chars().count() >= 2)
            .any(|w| tokenizer.token_id(&w.to_lowercase()).is_some())
    }

    /// Ranks `insights` (the ones `index` was built from) for `question`: at most `limit`
    /// matches, best first, and none when the question is not close to the collection.
    pub fn ask<'a>(
        &self,
        index: &SearchIndex,
        insights: &'a [Insight],
        question: &str,
        limit: usize,
    ) -> Result<Answer<'a>, AskError> {
        let question = Question::read(question)?;
        let queries = self.embed_question(&question)?;
        Ok(self.rank(index, insights, &question, &queries, limit))
    }

    /// The question's vectors ([`Question::texts`]): the model's part of answering, milliseconds
    /// where ranking takes microseconds.
    pub fn embed_question(&self, question: &Question) -> Result<Vec<Vector>, AskError> {
        let texts = question.texts();
        let limits: Vec<usize> = (0..texts.len())
            .map(|i| {
                if i == 0 {
                    QUESTION_PIECES
                } else {
                    SENTENCE_PIECES
                }
            })
            .collect();
        self.embedder
            .embed_limited(&texts, &limits)
            .map_err(|e| AskError::Embedding(e.to_string()))
    }

    /// [`Searcher::ask`] once the question is read and embedded (`queries` from
    /// [`Searcher::embed_question`]).
    pub fn rank<'a>(
        &self,
        index: &SearchIndex,
        insights: &'a [Insight],
        question: &Question,
        queries: &[Vector],
        limit: usize,
    ) -> Answer<'a> {
        let normalised = &question.normalised;
        // Semantic: every insight's best document for each of the question's vectors (the whole
        // question, then its sentences); an insight's similarity is its best over them, and the
        // gate weighs each vector on its own.
        let per_query: Vec<Vec<semantic::Similarity>> = queries
            .iter()
            .map(|q| index.similarities(std::slice::from_ref(q)))
            .collect();
        let mut similarities = per_query[0].clone();
        for other in &per_query[1..] {
            for (best, s) in similarities.iter_mut().zip(other) {
                if s.value > best.value {
                    *best = *s;
                }
            }
        }
        let per_query_best: Vec<f32> = per_query
            .iter()
            .map(|sims| sims.iter().map(|s| s.value).fold(-1f32, f32::max))
            .collect();
        let (mut verdict, anchor_similarities) = self.anchors.verdict(queries, &per_query_best);
        // Punctuation, numbers, emoji, other languages or keyboard mashing alone say nothing a
        // collection could answer, whatever the model makes of them: at least one word must be
        // a word of English (one the model's vocabulary holds whole).
        let no_known_word = !self.has_a_known_word(normalised);
        let other_language = language::is_other_language(&question.text);
        if no_known_word || other_language {
            verdict.on_topic = false;
        }
        let uncovered = if verdict.on_topic {
            self.uncovered_topic(index, &anchor_similarities, verdict.insight_similarity)
        } else {
            None
        };
        let confidence = match (verdict.on_topic, &uncovered) {
            (false, _) => Confidence::None,
            (true, Some(_)) => Confidence::Weak,
            (true, None) => Confidence::Strong,
        };

        // Lexical: the best BM25 candidates, scaled to this question's best.
        let lexical = index
            .lexical
            .score(insights, normalised, LEXICAL_CANDIDATES.max(limit));
        let top_bm25 = lexical.matches.first().map_or(0.0, |&(_, s)| s);
        let mut bm25 = vec![0f32; insights.len()];
        for &(i, s) in &lexical.matches {
            bm25[i] = s;
        }

        let score_of = |i: usize| {
            let lexical = if top_bm25 > 0.0 {
                bm25[i] / top_bm25
            } else {
                0.0
            };
            similarities[i].value + LEXICAL_WEIGHT * lexical
        };
        let mut order: Vec<usize> = (0..insights.len())
            .filter(|&i| similarities[i].value > -1.0 || bm25[i] > 0.0)
            .collect();
        let wanted = limit.max(EXPLAINED).min(order.len());
        let better = |a: &usize, b: &usize| {
            score_of(*b)
                .total_cmp(&score_of(*a))
                .then_with(|| insights[*a].id.cmp(&insights[*b].id))
        };
        if wanted < order.len() {
            order.select_nth_unstable_by(wanted, better);
            order.truncate(wanted);
        }
        order.sort_by(better);

        let candidates = order
            .iter()
            .take(EXPLAINED)
            .map(|&i| Candidate {
                id: insights[i].id.clone(),
                score: score_of(i),
                similarity: similarities[i].value,
                matched: match similarities[i].doc {
                    DocKind::Body => "title and text".to_string(),
                    DocKind::Ask(a) => format!(
                        "ask: {}",
                        insights[i].asks.get(a as usize).map_or("", String::as_str)
                    ),
                },
                bm25: bm25[i],
                lexical: if top_bm25 > 0.0 {
                    bm25[i] / top_bm25
                } else {
                    0.0
                },
            })
            .collect();
        let matches: Vec<Match<'a>> = if verdict.on_topic {
            order
                .iter()
                .take(limit)
                .map(|&i| Match {
                    insight: &insights[i],
                    score: score_of(i),
                })
                .collect()
        } else {
            Vec::new()
        };
        tracing::debug!(
            confidence = confidence.as_str(),
            margin = verdict.margin,
            best = ?matches.first().map(|m| &m.insight.id),
            "question ranked"
        );
        Answer {
            question: question.text.clone(),
            // An empty collection has nothing to show, whatever the gate says.
            confidence: if matches.is_empty() {
                Confidence::None
            } else {
                confidence
            },
            no_close_match: matches.is_empty(),
            matches,
            explanation: Explanation {
                normalised: normalised.clone(),
                sentences: question.sentences.clone(),
                evidence: lexical.evidence,
                verdict,
                uncovered,
                no_known_word,
                other_language,
                candidates,
            },
        }
    }

    /// The nearest generic anchor the collection does not cover, when it is nearer to the
    /// question than the best insight by more than [`gate::UNCOVERED_LEAD`] (see [`gate`]).
    /// Anchors are tried nearest first, and each one's coverage is computed only when reached.
    fn uncovered_topic(
        &self,
        index: &SearchIndex,
        anchor_similarities: &[f32],
        best_insight: f32,
    ) -> Option<Uncovered> {
        let mut nearer: Vec<(usize, f32)> = anchor_similarities
            .iter()
            .enumerate()
            .map(|(i, &s)| (i, s))
            .filter(|&(_, s)| s - best_insight > gate::UNCOVERED_LEAD)
            .collect();
        nearer.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let anchors = self.anchors.on_topic();
        nearer.into_iter().find_map(|(n, similarity)| {
            let coverage = index.anchor_coverage(n, &anchors[n]);
            (coverage < gate::COVERED).then(|| Uncovered {
                anchor: self.anchors.on_topic_text(n).to_string(),
                similarity,
                coverage,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::{Catalog, Library};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn shipped() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let embedder = Embedder::load_repository_model().unwrap();
            let cache = VectorCache::in_memory(embedder.fingerprint());
            let searcher = Searcher::new(Arc::new(embedder), Arc::new(cache)).unwrap();
            Catalog::new(Arc::new(Library::builtin().unwrap()), searcher).unwrap()
        })
    }

    fn best(question: &str) -> Option<String> {
        let answer = shipped().ask(question, 3).unwrap();
        answer.best().map(|m| m.insight.id.clone())
    }

    #[test]
    fn empty_and_blank_questions_are_an_error() {
        for q in ["", "   ", "\n\t "] {
            assert_eq!(shipped().ask(q, 3).unwrap_err(), AskError::Empty);
        }
    }

    #[test]
    fn punctuation_numbers_and_foreign_scripts_get_no_close_match() {
        for q in [
            "?!?",
            "...",
            "2+2",
            "🙂🙂",
            "今日は何曜日ですか",
            "asdfgh qwerty",
        ] {
            let answer = shipped().ask(q, 3).unwrap();
            assert!(
                answer.no_close_match,
                "{q}: {:?}",
                answer.explanation.verdict
            );
            assert!(answer.matches.is_empty());
        }
    }

    #[test]
    fn ranking_is_ordered_stable_and_limited() {
        let a = shipped().ask("should I become a manager?", 5).unwrap();
        assert_eq!(a.matches.len(), 5);
        assert!(a.matches.windows(2).all(|w| {
            w[0].score > w[1].score
                || (w[0].score == w[1].score && w[0].insight.id < w[1].insight.id)
        }));
        assert_eq!(a, shipped().ask("should I become a manager?", 5).unwrap());
        let two = shipped().ask("should I become a manager?", 2).unwrap();
        assert_eq!(two.matches[..], a.matches[..2]);
        // The explanation shows the ranked candidates with their parts.
        let c = &a.explanation.candidates[0];
        assert_eq!(c.id, a.matches[0].insight.id);
        assert!((c.score - (c.similarity + LEXICAL_WEIGHT * c.lexical)).abs() < 1e-5);
    }

    #[test]
    fn abbreviations_are_read_as_words() {
        let answer = shipped().ask("just made dir, now what", 3).unwrap();
        assert!(answer.explanation.normalised.contains("director"));
        assert_eq!(
            best("just made dir, now what").as_deref(),
            Some("manager-to-director")
        );
    }

    #[test]
    fn a_long_message_is_not_drowned_by_its_rambling() {
        let ramble = "ok so long story, sorry in advance. we had our offsite last week and the \
            food was great and the weather was lovely and we played some board games at night. \
            anyway the real thing is that i keep rewriting my engineers' code at night because i \
            do not trust them with it and i am exhausted. also the hotel wifi was terrible.";
        let answer = shipped().ask(ramble, 3).unwrap();
        assert!(
            answer.explanation.sentences.len() >= 3,
            "{:?}",
            answer.explanation
        );
        assert!(!answer.no_close_match, "{:?}", answer.explanation.verdict);
        let top: Vec<&str> = answer
            .matches
            .iter()
            .map(|m| m.insight.id.as_str())
            .collect();
        assert!(top[..2].contains(&"trust-and-delegate"), "{top:?}");
    }

    #[test]
    fn homonyms_of_the_domain_get_no_close_match() {
        for q in [
            "which film director made the best westerns?",
            "how do I delegate DNS for a subdomain to cloudflare",
        ] {
            let answer = shipped().ask(q, 3).unwrap();
            assert!(
                answer.no_close_match,
                "{q}: {:?}",
                answer.explanation.verdict
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(60))]
        #[test]
        fn any_text_gets_an_answer_or_a_clear_error(question in "\\PC{0,200}") {
            match shipped().ask(&question, 3) {
                Err(AskError::Empty) => prop_assert!(question.trim().is_empty()),
                Err(e) => prop_assert!(false, "{e}"),
                Ok(answer) => {
                    prop_assert_eq!(answer.no_close_match, answer.matches.is_empty());
                    prop_assert_eq!(answer.no_close_match, answer.confidence == Confidence::None);
                    prop_assert!(answer.matches.len() <= 3);
                    prop_assert!(answer.matches.iter().all(|m| m.score.is_finite()));
                }
            }
        }
    }
}
