//! Relevance ranking: which insight answers a person's question, and whether any does.
//!
//! Text analysis: Unicode words (`unicode-segmentation`), folded to ASCII (`deunicode`) and
//! lowercased, NLTK English stop words dropped (`stop-words`), Snowball English stems
//! (`rust-stemmers`). On top of that a small domain vocabulary ([`crate::vocabulary`]) adds a
//! *concept* term wherever one of its related words or phrases appears ("let go", "micromanage"
//! and "delegate" all add `~delegate`), in insights and questions alike. That is how a question
//! that shares no word with an insight still finds it.
//!
//! Ranking: BM25 (k1 = 1.2, b = 0.75) over one weighted document per insight, where a word counts
//! more in the title and topics than in the long text, and the curated `asks` count as much as the
//! text. Scoring walks an inverted index with a dense accumulator, so a question touches only the
//! insights that share a term with it. The `bm25` crate was measured against this in
//! `benches/search.rs` (its scorer collects candidates into a hash set and scans each document's
//! terms linearly, and it has no field weights or concept terms); see the README for the figures.
//! Equal scores are ordered by id, so answers are stable.
//!
//! "No close match" is decided separately from the score, because a BM25 score cannot tell a
//! stray common word ("best", "time") from a weak but real question. A question is on topic when
//! it contains at least one *strong* word (a word of the domain vocabulary or one of the
//! collection's topics) or at least two distinct *weak* words (other words of the collection that
//! are not everyday English). See [`Evidence`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

use crate::library::Insight;
use crate::vocabulary::{CONCEPTS, EVERYDAY_WORDS, KEPT_STOP_WORDS};

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;

/// How much an occurrence counts, by field. Titles and topics are short and chosen with care;
/// asks are many, so each counts like the text.
const TITLE_WEIGHT: f32 = 2.0;
const TOPIC_WEIGHT: f32 = 2.0;
const TEXT_WEIGHT: f32 = 1.0;
const ASK_WEIGHT: f32 = 1.0;

/// A concept term stands for a family of words, so a match through it is weaker evidence of
/// relevance than the same word.
const CONCEPT_QUERY_WEIGHT: f32 = 0.8;

/// Questions longer than this are analysed on their first part only: nobody's question needs
/// more, and it bounds the work a single message can cause.
pub const MAX_ANALYSED_CHARS: usize = 4000;

/// Why a question could not be ranked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error(
        "the question is empty: type a question, for example \"How do I stop micromanaging?\""
    )]
    Empty,
}

/// One ranked insight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match<'a> {
    pub insight: &'a Insight,
    pub score: f32,
}

/// The answer to a question: the best insights first, or none and `no_close_match`.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<'a> {
    pub question: String,
    pub matches: Vec<Match<'a>>,
    pub no_close_match: bool,
    pub evidence: Evidence,
}

impl<'a> Answer<'a> {
    pub fn best(&self) -> Option<&Match<'a>> {
        self.matches.first()
    }
}

/// What the question contained that ties it to the collection; the basis of "no close match".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Domain-vocabulary words and topics found in the question (stems).
    pub strong: Vec<String>,
    /// Other words of the collection found in the question (stems), everyday words excluded.
    pub weak: Vec<String>,
    /// Words that are neither everyday English nor known to the collection (stems).
    pub unknown: Vec<String>,
}

impl Evidence {
    /// On topic: one strong or two weak words, and the question is not mostly about something
    /// else. The second rule is what keeps "how do I delegate DNS to Cloudflare?" or "which
    /// package manager for node?" from being answered with leadership advice: one domain word
    /// among three or more words the collection has never seen is a homonym, not a question.
    pub fn is_on_topic(&self) -> bool {
        let known = self.strong.len() + self.weak.len();
        (!self.strong.is_empty() || self.weak.len() >= 2) && 2 * known >= self.unknown.len()
    }
}

type TermId = u32;

/// What analysis knows about one distinct lowercase word.
#[derive(Debug, Clone)]
struct WordInfo {
    stem: String,
    stop: bool,
    everyday: bool,
    /// Concepts this single word triggers.
    concepts: Vec<usize>,
    /// Whether some vocabulary phrase starts with this word's stem.
    starts_phrase: bool,
}

/// Text analysis shared by indexing and questions.
#[derive(Debug)]
struct Analyzer {
    stemmer: StemmerBox,
    stop_words: HashSet<String>,
    everyday: HashSet<String>,
    /// stem -> concepts triggered by that single stem.
    single: HashMap<String, Vec<usize>>,
    /// first stem -> (stems of the whole phrase, concept).
    phrases: HashMap<String, Vec<(Vec<String>, usize)>>,
}

/// `rust_stemmers::Stemmer` is not `Debug`; this wrapper is, so the index can be.
struct StemmerBox(Stemmer);

impl std::fmt::Debug for StemmerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stemmer(English)")
    }
}

/// The analysed form of one text: stems (stop words removed) and concept hits.
#[derive(Debug, Default)]
struct Analysed {
    stems: Vec<String>,
    concepts: Vec<usize>,
}

fn normalise(text: &str) -> String {
    let folded: Cow<str> = deunicode::deunicode_with_tofu_cow(text, " ");
    folded.to_lowercase()
}

impl Analyzer {
    fn new() -> Self {
        let stemmer = Stemmer::create(Algorithm::English);
        let stop_words: HashSet<String> = stop_words::get(stop_words::LANGUAGE::English)
            .iter()
            .map(|w| normalise(w))
            .filter(|w| !KEPT_STOP_WORDS.contains(&w.as_str()))
            .collect();
        let stem = |w: &str| stemmer.stem(&normalise(w)).into_owned();
        let everyday = EVERYDAY_WORDS.iter().map(|w| stem(w)).collect();
        let mut single: HashMap<String, Vec<usize>> = HashMap::new();
        let mut phrases: HashMap<String, Vec<(Vec<String>, usize)>> = HashMap::new();
        for (concept, (_, members)) in CONCEPTS.iter().enumerate() {
            for member in *members {
                let words: Vec<String> = normalise(member)
                    .unicode_words()
                    .map(|w| stemmer.stem(w).into_owned())
                    .collect();
                match words.as_slice() {
                    [] => {}
                    [one] => single.entry(one.clone()).or_default().push(concept),
                    [first, ..] => phrases
                        .entry(first.clone())
                        .or_default()
                        .push((words.clone(), concept)),
                }
            }
        }
        for concepts in single.values_mut() {
            concepts.sort_unstable();
            concepts.dedup();
        }
        Analyzer {
            stemmer: StemmerBox(stemmer),
            stop_words,
            everyday,
            single,
            phrases,
        }
    }

    fn word_info(&self, word: &str) -> WordInfo {
        let stem = self.stemmer.0.stem(word).into_owned();
        WordInfo {
            stop: self.stop_words.contains(word),
            everyday: self.everyday.contains(&stem) || EVERYDAY_WORDS.contains(&word),
            concepts: self.single.get(&stem).cloned().unwrap_or_default(),
            starts_phrase: self.phrases.contains_key(&stem),
            stem,
        }
    }

    /// Analyses a text, memoising per-word work in `cache` (collections repeat words a lot).
    fn analyse(&self, text: &str, cache: &mut HashMap<String, WordInfo>) -> Analysed {
        let lower = normalise(text);
        let words: Vec<&str> = lower.unicode_words().collect();
        let mut out = Analysed::default();
        for &word in &words {
            if !cache.contains_key(word) {
                cache.insert(word.to_string(), self.word_info(word));
            }
        }
        for (i, &word) in words.iter().enumerate() {
            let info = &cache[word];
            if info.starts_phrase {
                for (phrase, concept) in &self.phrases[&info.stem] {
                    let fits = phrase.len() <= words.len() - i
                        && phrase
                            .iter()
                            .zip(&words[i..])
                            .all(|(stem, w)| cache[*w].stem == *stem);
                    if fits {
                        out.concepts.push(*concept);
                    }
                }
            }
            if info.stop {
                continue;
            }
            out.concepts.extend_from_slice(&info.concepts);
            out.stems.push(info.stem.clone());
        }
        out
    }
}

/// The inverted index over one collection.
#[derive(Debug)]
pub struct SearchIndex {
    analyzer: Analyzer,
    /// term -> id; stems are stored as is, concepts as `~name`.
    terms: HashMap<String, TermId>,
    /// term id -> (insight index, weighted term frequency), by insight index.
    postings: Vec<Vec<(u32, f32)>>,
    /// insight index -> weighted document length.
    doc_len: Vec<f32>,
    avg_doc_len: f32,
    /// Stems that count as strong evidence: the collection's topics (vocabulary words are known
    /// to the analyzer already).
    topic_stems: HashSet<String>,
    /// Every stem that occurs in the collection.
    known_stems: HashSet<String>,
}

fn concept_term(concept: usize) -> String {
    format!("~{}", CONCEPTS[concept].0)
}

impl SearchIndex {
    /// Analyses and indexes every insight.
    pub fn build(insights: &[Insight]) -> SearchIndex {
        let analyzer = Analyzer::new();
        let mut cache: HashMap<String, WordInfo> = HashMap::new();
        let mut terms: HashMap<String, TermId> = HashMap::new();
        let mut postings: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut doc_len = Vec::with_capacity(insights.len());
        let mut topic_stems = HashSet::new();
        let mut known_stems = HashSet::new();
        let concept_terms: Vec<String> = (0..CONCEPTS.len()).map(concept_term).collect();
        let mut weights: HashMap<TermId, f32> = HashMap::new();

        for (doc, insight) in insights.iter().enumerate() {
            weights.clear();
            let mut length = 0.0;
            let mut add = |analysed: Analysed, weight: f32, weights: &mut HashMap<TermId, f32>| {
                let concept_names = analysed.concepts.iter().map(|&c| concept_terms[c].as_str());
                for term in analysed
                    .stems
                    .iter()
                    .map(String::as_str)
                    .chain(concept_names)
                {
                    let next_id = terms.len() as TermId;
                    let id = match terms.get(term) {
                        Some(&id) => id,
                        None => {
                            terms.insert(term.to_string(), next_id);
                            postings.push(Vec::new());
                            next_id
                        }
                    };
                    *weights.entry(id).or_insert(0.0) += weight;
                    length += weight;
                }
                for stem in analysed.stems {
                    if !known_stems.contains(&stem) {
                        known_stems.insert(stem);
                    }
                }
            };
            add(
                analyzer.analyse(&insight.title, &mut cache),
                TITLE_WEIGHT,
                &mut weights,
            );
            add(
                analyzer.analyse(&insight.text, &mut cache),
                TEXT_WEIGHT,
                &mut weights,
            );
            for ask in &insight.asks {
                add(analyzer.analyse(ask, &mut cache), ASK_WEIGHT, &mut weights);
            }
            for topic in &insight.topics {
                let analysed = analyzer.analyse(&topic.replace('-', " "), &mut cache);
                for stem in &analysed.stems {
                    if !analyzer.everyday.contains(stem) {
                        topic_stems.insert(stem.clone());
                    }
                }
                add(analysed, TOPIC_WEIGHT, &mut weights);
            }
            for (&term, &weight) in &weights {
                postings[term as usize].push((doc as u32, weight));
            }
            doc_len.push(length);
        }
        // Postings were filled in insight order, but within one insight from a hash map: sort
        // so that accumulation order (and so float rounding) is the same on every run.
        for list in &mut postings {
            list.sort_unstable_by_key(|&(doc, _)| doc);
        }
        let avg_doc_len = if doc_len.is_empty() {
            1.0
        } else {
            (doc_len.iter().sum::<f32>() / doc_len.len() as f32).max(f32::EPSILON)
        };
        SearchIndex {
            analyzer,
            terms,
            postings,
            doc_len,
            avg_doc_len,
            topic_stems,
            known_stems,
        }
    }

    /// Ranks `insights` (the ones this index was built from) for `question`; at most `limit`
    /// matches, best first, and none when the question is not close to anything.
    pub fn ask<'a>(
        &self,
        insights: &'a [Insight],
        question: &str,
        limit: usize,
    ) -> Result<Answer<'a>, AskError> {
        let trimmed = question.trim();
        if trimmed.is_empty() {
            return Err(AskError::Empty);
        }
        let analysed_part = match trimmed.char_indices().nth(MAX_ANALYSED_CHARS) {
            Some((cut, _)) => &trimmed[..cut],
            None => trimmed,
        };
        let mut cache = HashMap::new();
        let analysed = self.analyzer.analyse(analysed_part, &mut cache);
        let evidence = self.evidence(&analysed, &cache);

        // Distinct query terms with their weights; a word repeated in a question is not more
        // important for it.
        let mut query: Vec<(TermId, f32)> = Vec::new();
        let mut seen = HashSet::new();
        let concept_names: Vec<String> =
            analysed.concepts.iter().map(|&c| concept_term(c)).collect();
        let weighted = analysed.stems.iter().map(|s| (s.as_str(), 1.0)).chain(
            concept_names
                .iter()
                .map(|c| (c.as_str(), CONCEPT_QUERY_WEIGHT)),
        );
        for (term, weight) in weighted {
            if let Some(&id) = self.terms.get(term) {
                if seen.insert(id) {
                    query.push((id, weight));
                }
            }
        }

        tracing::debug!(
            ?evidence,
            on_topic = evidence.is_on_topic(),
            "question analysed"
        );
        let matches = if evidence.is_on_topic() && limit > 0 {
            self.rank(insights, &query, limit)
        } else {
            Vec::new()
        };
        Ok(Answer {
            question: trimmed.to_string(),
            no_close_match: matches.is_empty(),
            matches,
            evidence,
        })
    }

    fn evidence(&self, analysed: &Analysed, cache: &HashMap<String, WordInfo>) -> Evidence {
        let mut evidence = Evidence::default();
        let mut strong = HashSet::new();
        let mut weak = HashSet::new();
        let mut unknown = HashSet::new();
        for info in cache.values() {
            if info.stop || info.everyday {
                continue;
            }
            if !info.concepts.is_empty() || self.topic_stems.contains(&info.stem) {
                strong.insert(info.stem.clone());
            } else if self.known_stems.contains(&info.stem) {
                weak.insert(info.stem.clone());
            } else {
                unknown.insert(info.stem.clone());
            }
        }
        // A phrase of the vocabulary ("let go", "tour of duty") is specific even when its words
        // are everyday ones.
        let single_word_concepts: HashSet<usize> = cache
            .values()
            .filter(|i| !i.stop && !i.everyday)
            .flat_map(|i| i.concepts.iter().copied())
            .collect();
        for &concept in &analysed.concepts {
            if !single_word_concepts.contains(&concept) {
                strong.insert(concept_term(concept));
            }
        }
        evidence.strong = strong.into_iter().collect();
        evidence.strong.sort();
        evidence.weak = weak.into_iter().collect();
        evidence.weak.sort();
        evidence.unknown = unknown.into_iter().collect();
        evidence.unknown.sort();
        evidence
    }

    fn rank<'a>(
        &self,
        insights: &'a [Insight],
        query: &[(TermId, f32)],
        limit: usize,
    ) -> Vec<Match<'a>> {
        let n = self.doc_len.len() as f32;
        let mut scores = vec![0f32; self.doc_len.len()];
        let mut touched: Vec<u32> = Vec::new();
        for &(term, query_weight) in query {
            let list = &self.postings[term as usize];
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(doc, tf) in list {
                let norm = K1 * (1.0 - B + B * self.doc_len[doc as usize] / self.avg_doc_len);
                let slot = &mut scores[doc as usize];
                if *slot == 0.0 {
                    touched.push(doc);
                }
                *slot += query_weight * idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let better = |a: &u32, b: &u32| {
            scores[*b as usize]
                .total_cmp(&scores[*a as usize])
                .then_with(|| insights[*a as usize].id.cmp(&insights[*b as usize].id))
        };
        touched.retain(|&d| scores[d as usize] > 0.0);
        if touched.len() > limit {
            touched.select_nth_unstable_by(limit - 1, better);
            touched.truncate(limit);
        }
        touched.sort_unstable_by(better);
        touched
            .into_iter()
            .map(|d| Match {
                insight: &insights[d as usize],
                score: scores[d as usize],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Library;
    use proptest::prelude::*;
    use std::path::Path;
    use std::sync::OnceLock;

    fn shipped() -> &'static Library {
        static LIBRARY: OnceLock<Library> = OnceLock::new();
        LIBRARY.get_or_init(|| {
            Library::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data"))).unwrap()
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
            "¿Qué hora es?",
        ] {
            let answer = shipped().ask(q, 3).unwrap();
            assert!(answer.no_close_match, "{q}: {answer:?}");
            assert!(answer.matches.is_empty());
        }
    }

    #[test]
    fn related_words_reach_an_insight_that_shares_none_of_them() {
        // None of these words is in the trust-and-delegate text; the vocabulary relates them.
        assert_eq!(
            best("I micromanage everyone").as_deref(),
            Some("trust-and-delegate")
        );
        // "CEO" is not in the founder insight at all.
        assert_eq!(
            best("being a CEO is lonely").as_deref(),
            Some("founder-roles")
        );
    }

    #[test]
    fn a_single_everyday_word_is_not_enough() {
        for q in [
            "good",
            "what time is it",
            "best pizza near me",
            "fix my bike",
        ] {
            assert!(shipped().ask(q, 3).unwrap().no_close_match, "{q}");
        }
    }

    #[test]
    fn a_domain_word_among_many_unknown_ones_is_a_homonym() {
        let answer = shipped()
            .ask("how do I delegate DNS for a subdomain to cloudflare", 3)
            .unwrap();
        assert!(answer.no_close_match, "{:?}", answer.evidence);
        assert!(
            !shipped()
                .ask("How do I delegate?", 3)
                .unwrap()
                .no_close_match
        );
    }

    #[test]
    fn ranking_is_ordered_stable_and_limited() {
        let a = shipped().ask("manager", 25).unwrap();
        assert!(a.matches.len() > 3);
        assert!(a.matches.windows(2).all(|w| {
            w[0].score > w[1].score
                || (w[0].score == w[1].score && w[0].insight.id < w[1].insight.id)
        }));
        let again = shipped().ask("manager", 25).unwrap();
        assert_eq!(a, again);
        assert_eq!(shipped().ask("manager", 2).unwrap().matches.len(), 2);
        assert_eq!(
            shipped().ask("manager", 2).unwrap().matches[..],
            a.matches[..2]
        );
    }

    #[test]
    fn very_long_questions_are_answered() {
        let long = "How do I stop micromanaging my team? ".repeat(300);
        assert!(long.chars().count() > 10_000);
        assert_eq!(best(&long).as_deref(), Some("trust-and-delegate"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_text_gets_an_answer_or_a_clear_error(question in "\\PC{0,300}") {
            match shipped().ask(&question, 3) {
                Err(AskError::Empty) => prop_assert!(question.trim().is_empty()),
                Ok(answer) => {
                    prop_assert_eq!(answer.no_close_match, answer.matches.is_empty());
                    prop_assert!(answer.matches.len() <= 3);
                    prop_assert!(answer.matches.iter().all(|m| m.score.is_finite() && m.score > 0.0));
                }
            }
        }

        #[test]
        fn any_bytes_as_utf8_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12_000)) {
            let question = String::from_utf8_lossy(&bytes);
            let _ = shipped().ask(&question, 5);
        }
    }
}
