//! Lexical ranking: BM25 over the insights' words, the precise-word half of the search (see the
//! parent module for how it is combined with semantic similarity).
//!
//! Text analysis: text is folded to ASCII (`deunicode`, so "résumé" meets "resume" and every
//! script has a form) and lowercased, split into words (runs of letters and digits; an apostrophe
//! inside a word keeps it whole), NLTK English stop words are dropped (`stop-words`), and words are
//! stemmed with Snowball English (`rust-stemmers`). On top of that a small domain vocabulary
//! ([`crate::vocabulary`]) adds a *concept* term wherever one of its related words or phrases
//! appears ("let go", "micromanage" and "delegate" all add `~delegate`), in insights and questions
//! alike. That is how a question that shares no word with an insight still finds it.
//!
//! Ranking: BM25 (k1 = 1.2, b = 0.75) over one weighted document per insight, where a word counts
//! more in the title and topics than in the long text, and the curated `asks` count as much as the
//! text. The index is an inverted index of term ids whose postings hold each insight's finished
//! BM25 term-frequency part, so answering a question is one multiply-add per posting of its terms.
//! The `bm25` crate was measured against this in `benches/search.rs`: its scorer collects
//! candidates in a hash set and scans each document's terms linearly, and it has no field weights
//! or concept terms; ours answers 30-120x faster at 100,000 insights (figures in docs/benchmarks.md).
//! Equal scores are ordered by id, so answers are stable.
//!
//! Indexing analyses each distinct word once (stem, stop word, concepts) and keeps the result by
//! word, so a collection of 100,000 insights costs a hash look-up per word, not a stemmer call.
//!
//! "No close match" is decided separately from the score, because a BM25 score cannot tell a
//! stray common word ("best", "time") from a weak but real question. A question is on topic when
//! it contains at least one *strong* word (a word of the domain vocabulary or one of the
//! collection's topics) or at least two distinct *weak* words (other words of the collection that
//! are not everyday English), and its meaningful words are not mostly unknown. See [`Evidence`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

use rustc_hash::{FxHashMap, FxHashSet};

use rust_stemmers::{Algorithm, Stemmer};

use super::vocabulary::{CONCEPTS, EVERYDAY_WORDS, KEPT_STOP_WORDS};
use crate::insights::Insight;

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

/// The question's words as the collection knows them: shown by `ask --explain` as the lexical
/// evidence behind an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Domain-vocabulary words and topics found in the question (stems; `~name` for a phrase).
    pub strong: Vec<String>,
    /// Other words of the collection found in the question (stems), everyday words excluded.
    pub weak: Vec<String>,
    /// Words that are neither everyday English nor known to the collection (stems).
    pub unknown: Vec<String>,
}

type TermId = u32;

/// One term's postings: (insight index, BM25 term-frequency part), by insight index.
type Postings = [(u32, f32)];

/// Folds to ASCII and lowercases: after this every text is plain ASCII.
fn normalise(text: &str) -> String {
    let folded: Cow<str> = deunicode::deunicode_with_tofu_cow(text, " ");
    let mut lower = folded.into_owned();
    lower.make_ascii_lowercase();
    lower
}

/// The words of a normalised (ASCII, lowercase) text: runs of letters and digits, with an
/// apostrophe between two of them kept inside the word ("don't", but "engineers'" -> "engineers").
fn words(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() && !bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        loop {
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let joined =
                i + 1 < bytes.len() && bytes[i] == b'\'' && bytes[i + 1].is_ascii_alphanumeric();
            if !joined {
                break;
            }
            i += 1;
        }
        Some(&text[start..i])
    })
}

/// What analysis knows about one distinct word.
#[derive(Debug, Clone)]
struct WordInfo {
    /// The stem's term id; `None` only for a question's word whose stem the collection lacks.
    stem: Option<TermId>,
    stop: bool,
    everyday: bool,
    /// Concepts this single word triggers (their term ids).
    concepts: Vec<TermId>,
    /// Whether some vocabulary phrase starts with this word's stem.
    starts_phrase: bool,
}

/// Term ids and names. Stems are stored as themselves, concepts as `~name`.
#[derive(Debug, Default, Clone)]
struct Dictionary {
    ids: FxHashMap<String, TermId>,
    names: Vec<String>,
}

impl Dictionary {
    fn intern(&mut self, term: &str) -> TermId {
        if let Some(&id) = self.ids.get(term) {
            return id;
        }
        let id = self.names.len() as TermId;
        self.ids.insert(term.to_string(), id);
        self.names.push(term.to_string());
        id
    }

    fn get(&self, term: &str) -> Option<TermId> {
        self.ids.get(term).copied()
    }
}

/// `rust_stemmers::Stemmer` is not `Debug`; this wrapper is, so the index can be.
struct StemmerBox(Stemmer);

impl std::fmt::Debug for StemmerBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stemmer(English)")
    }
}

/// What every index's analysis shares and never changes: stop words, everyday words, the
/// vocabulary's single words and phrases as term ids, and the dictionary holding those terms.
/// Built once per process ([`shared_tables`]): a server's collection is indexed in milliseconds,
/// and with thousands of servers, rebuilding these for each (stemming the vocabulary again) was
/// a tenth of the work and of the memory of every server's index.
#[derive(Debug)]
struct AnalyzerTables {
    stop_words: HashSet<String>,
    everyday_stems: HashSet<String>,
    everyday_words: HashSet<&'static str>,
    /// stem id -> concept term ids triggered by that single stem.
    single: FxHashMap<TermId, Vec<TermId>>,
    /// first stem id -> (stem ids of the whole phrase, concept term id).
    phrases: FxHashMap<TermId, Vec<(Vec<TermId>, TermId)>>,
    /// The terms the tables name, interned first: every index's dictionary starts as a copy.
    dictionary: Dictionary,
}

fn shared_tables() -> &'static Arc<AnalyzerTables> {
    static TABLES: OnceLock<Arc<AnalyzerTables>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut dictionary = Dictionary::default();
        let stop_words: HashSet<String> = stop_words::get(stop_words::LANGUAGE::English)
            .iter()
            .map(|w| normalise(w))
            .filter(|w| !KEPT_STOP_WORDS.contains(&w.as_str()))
            .collect();
        let everyday_stems = EVERYDAY_WORDS
            .iter()
            .map(|w| stemmer.stem(&normalise(w)).into_owned())
            .collect();
        let mut single: FxHashMap<TermId, Vec<TermId>> = FxHashMap::default();
        let mut phrases: FxHashMap<TermId, Vec<(Vec<TermId>, TermId)>> = FxHashMap::default();
        for (name, members) in CONCEPTS {
            let concept = dictionary.intern(&format!("~{name}"));
            for member in *members {
                let normalised = normalise(member);
                let stems: Vec<TermId> = words(&normalised)
                    .map(|w| dictionary.intern(&stemmer.stem(w)))
                    .collect();
                match stems.as_slice() {
                    [] => {}
                    [one] => single.entry(*one).or_default().push(concept),
                    [first, ..] => phrases
                        .entry(*first)
                        .or_default()
                        .push((stems.clone(), concept)),
                }
            }
        }
        for concepts in single.values_mut() {
            concepts.sort_unstable();
            concepts.dedup();
        }
        Arc::new(AnalyzerTables {
            stop_words,
            everyday_stems,
            everyday_words: EVERYDAY_WORDS.iter().copied().collect(),
            single,
            phrases,
            dictionary,
        })
    })
}

/// Words stemmed so far, across every index of the process: the servers of one bot write in one
/// language, so most of a new server's words were stemmed for another (a look-up is a tenth of a
/// Snowball call). Bounded: past [`MAX_MEMO_WORDS`] words, new ones are stemmed without being
/// kept, so no collection can grow it without end.
fn stem_memo() -> &'static RwLock<FxHashMap<Box<str>, Box<str>>> {
    static MEMO: OnceLock<RwLock<FxHashMap<Box<str>, Box<str>>>> = OnceLock::new();
    MEMO.get_or_init(|| RwLock::new(FxHashMap::default()))
}

/// The most words [`stem_memo`] keeps (about 20 MB at that size).
const MAX_MEMO_WORDS: usize = 300_000;

/// Text analysis shared by indexing and questions: the stemmer, the shared tables, and every word
/// seen while indexing this collection.
#[derive(Debug)]
struct Analyzer {
    stemmer: StemmerBox,
    tables: Arc<AnalyzerTables>,
    /// Every word seen while indexing, analysed once: word -> index in `word_infos`. (FxHash:
    /// these maps are built from the collection and only looked up with people's text, so the
    /// hash-flooding defence of the std hasher buys nothing and costs a third of indexing.)
    known_words: FxHashMap<Box<str>, u32>,
    word_infos: Vec<WordInfo>,
}

impl Analyzer {
    /// An analyser and the dictionary its tables' terms are interned in.
    fn new() -> (Self, Dictionary) {
        let tables = Arc::clone(shared_tables());
        let dictionary = tables.dictionary.clone();
        let analyzer = Analyzer {
            stemmer: StemmerBox(Stemmer::create(Algorithm::English)),
            tables,
            known_words: FxHashMap::default(),
            word_infos: Vec::new(),
        };
        (analyzer, dictionary)
    }

    /// `word`'s stem, through the process-wide memo; `remember` adds it there (indexing does,
    /// so a collection's words are kept; a question's words are not, so people's typing cannot
    /// fill it).
    fn stem(&self, word: &str, remember: bool) -> String {
        let memo = stem_memo();
        if let Some(stem) = memo.read().unwrap_or_else(|e| e.into_inner()).get(word) {
            return stem.to_string();
        }
        let stem = self.stemmer.0.stem(word).into_owned();
        if remember {
            let mut memo = memo.write().unwrap_or_else(|e| e.into_inner());
            if memo.len() < MAX_MEMO_WORDS {
                memo.insert(word.into(), stem.as_str().into());
            }
        }
        stem
    }

    /// Analyses one word. `stem_id` maps its stem to a term id: interning while indexing, a
    /// read-only look-up for questions (which must not change the index).
    fn word_info(
        &self,
        word: &str,
        remember: bool,
        stem_id: impl FnOnce(&str) -> Option<TermId>,
    ) -> WordInfo {
        let stem_text = self.stem(word, remember);
        let stem = stem_id(&stem_text);
        let tables = &self.tables;
        WordInfo {
            stop: tables.stop_words.contains(word),
            everyday: tables.everyday_stems.contains(stem_text.as_str())
                || tables.everyday_words.contains(word),
            concepts: stem
                .and_then(|s| tables.single.get(&s).cloned())
                .unwrap_or_default(),
            starts_phrase: stem.is_some_and(|s| tables.phrases.contains_key(&s)),
            stem,
        }
    }

    /// Calls `emit(term, is_concept)` for every term of a text, given its words' analyses in
    /// order: each non-stop word's stem, the concepts of its single words, and the concepts of
    /// the vocabulary phrases it contains (matched with stop words kept: "hand off").
    fn terms(&self, text_words: &[&WordInfo], mut emit: impl FnMut(TermId, bool)) {
        for (i, info) in text_words.iter().enumerate() {
            if info.starts_phrase {
                let first = info.stem.unwrap_or(TermId::MAX);
                for (phrase, concept) in &self.tables.phrases[&first] {
                    let fits = phrase.len() <= text_words.len() - i
                        && phrase
                            .iter()
                            .zip(&text_words[i..])
                            .all(|(stem, w)| w.stem == Some(*stem));
                    if fits {
                        emit(*concept, true);
                    }
                }
            }
            if info.stop {
                continue;
            }
            if let Some(stem) = info.stem {
                emit(stem, false);
            }
            for &concept in &info.concepts {
                emit(concept, true);
            }
        }
    }
}

/// One question's lexical scores: the best insights (index into the collection, BM25 score),
/// best first, ties by id, and the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalScores {
    pub matches: Vec<(usize, f32)>,
    pub evidence: Evidence,
}

/// The inverted index over one collection.
#[derive(Debug)]
pub struct LexicalIndex {
    analyzer: Analyzer,
    dictionary: Dictionary,
    /// term id -> (insight index, BM25 term-frequency part), by insight index.
    postings: Vec<Vec<(u32, f32)>>,
    /// term id -> its largest BM25 term-frequency part (for pruning, see `rank`).
    max_part: Vec<f32>,
    documents: usize,
    /// Stems of the collection's topics: strong evidence.
    topic_stems: FxHashSet<TermId>,
}

impl LexicalIndex {
    /// Analyses and indexes every insight.
    pub fn build(insights: &[Insight]) -> LexicalIndex {
        let (mut analyzer, mut dictionary) = Analyzer::new();
        let mut postings: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut doc_len = Vec::with_capacity(insights.len());
        let mut topic_stems = FxHashSet::default();
        let mut known_words = std::mem::take(&mut analyzer.known_words);
        let mut word_infos = std::mem::take(&mut analyzer.word_infos);
        let mut field_words: Vec<u32> = Vec::new();
        let mut doc_terms: Vec<(TermId, f32)> = Vec::new();

        for (doc, insight) in insights.iter().enumerate() {
            let doc = doc as u32;
            let mut length = 0.0;
            // (text, weight, is a topic); a topic's hyphens separate words ("new-manager").
            let topic_texts: Vec<String> =
                insight.topics.iter().map(|t| t.replace('-', " ")).collect();
            let fields = [
                (insight.title.as_str(), TITLE_WEIGHT, false),
                (insight.text.as_str(), TEXT_WEIGHT, false),
            ]
            .into_iter()
            .chain(insight.asks.iter().map(|a| (a.as_str(), ASK_WEIGHT, false)))
            .chain(topic_texts.iter().map(|t| (t.as_str(), TOPIC_WEIGHT, true)));
            for (text, weight, is_topic) in fields {
                let normalised = normalise(text);
                field_words.clear();
                for word in words(&normalised) {
                    let index = match known_words.get(word) {
                        Some(&index) => index,
                        None => {
                            let info = analyzer
                                .word_info(word, true, |stem| Some(dictionary.intern(stem)));
                            let index = word_infos.len() as u32;
                            word_infos.push(info);
                            known_words.insert(word.into(), index);
                            index
                        }
                    };
                    field_words.push(index);
                }
                // New words may have added terms: make room once, not per posting.
                postings.resize_with(dictionary.names.len(), Vec::new);
                let infos: Vec<&WordInfo> = field_words
                    .iter()
                    .map(|&i| &word_infos[i as usize])
                    .collect();
                if is_topic {
                    for info in &infos {
                        if !info.stop && !info.everyday {
                            topic_stems.extend(info.stem);
                        }
                    }
                }
                analyzer.terms(&infos, |term, _| {
                    doc_terms.push((term, weight));
                    length += weight;
                });
            }
            // Merged per insight, then appended once per distinct term: appending only writes
            // to a list's end, where checking its last entry for this insight was a cache miss
            // per word (a quarter of indexing time at 100,000 insights).
            doc_terms.sort_unstable_by_key(|&(term, _)| term);
            let mut pending: Option<(TermId, f32)> = None;
            for &(term, weight) in &doc_terms {
                match &mut pending {
                    Some((t, w)) if *t == term => *w += weight,
                    _ => {
                        if let Some((t, w)) = pending.replace((term, weight)) {
                            postings[t as usize].push((doc, w));
                        }
                    }
                }
            }
            if let Some((t, w)) = pending {
                postings[t as usize].push((doc, w));
            }
            doc_terms.clear();
            doc_len.push(length);
        }
        postings.resize_with(dictionary.names.len(), Vec::new);
        analyzer.known_words = known_words;
        analyzer.word_infos = word_infos;

        // Turn term frequencies into BM25's term-frequency part now that lengths are known.
        let avg = if doc_len.is_empty() {
            1.0
        } else {
            (doc_len.iter().sum::<f32>() / doc_len.len() as f32).max(f32::EPSILON)
        };
        let mut max_part = Vec::with_capacity(postings.len());
        for list in &mut postings {
            let mut max = 0f32;
            for (doc, tf) in list.iter_mut() {
                let norm = K1 * (1.0 - B + B * doc_len[*doc as usize] / avg);
                *tf = *tf * (K1 + 1.0) / (*tf + norm);
                max = max.max(*tf);
            }
            max_part.push(max);
            list.shrink_to_fit();
        }
        LexicalIndex {
            analyzer,
            dictionary,
            postings,
            max_part,
            documents: insights.len(),
            topic_stems,
        }
    }

    /// Scores `insights` (the ones this index was built from) for `question` (already trimmed
    /// and cut to a sane length by the caller): the `limit` best, with the evidence.
    pub fn score(&self, insights: &[Insight], question: &str, limit: usize) -> LexicalScores {
        let normalised = normalise(question);
        // Words the collection never had are analysed here, without touching the index.
        let mut unseen: HashMap<&str, WordInfo> = HashMap::new();
        for word in words(&normalised) {
            if !self.analyzer.known_words.contains_key(word) && !unseen.contains_key(word) {
                let info = self
                    .analyzer
                    .word_info(word, false, |stem| self.dictionary.get(stem));
                unseen.insert(word, info);
            }
        }
        let infos: Vec<(&str, &WordInfo)> = words(&normalised)
            .map(|w| {
                let info = match self.analyzer.known_words.get(w) {
                    Some(&index) => &self.analyzer.word_infos[index as usize],
                    None => &unseen[w],
                };
                (w, info)
            })
            .collect();
        let word_infos: Vec<&WordInfo> = infos.iter().map(|(_, i)| *i).collect();
        let mut terms: Vec<(TermId, bool)> = Vec::new();
        self.analyzer
            .terms(&word_infos, |term, concept| terms.push((term, concept)));
        let evidence = self.evidence(&infos, &terms);

        // Distinct query terms with their weights; a word repeated in a question is not more
        // important for it.
        let mut query: Vec<(TermId, f32)> = Vec::new();
        for &(term, concept) in &terms {
            if !query.iter().any(|(t, _)| *t == term) {
                let weight = if concept { CONCEPT_QUERY_WEIGHT } else { 1.0 };
                query.push((term, weight));
            }
        }
        LexicalScores {
            matches: self.rank(insights, &query, limit),
            evidence,
        }
    }

    /// The query's terms that occur in the collection as (postings, BM25 weight = query weight
    /// x idf, the most the term can add to any insight), the highest bound first.
    fn weighted_terms(&self, query: &[(TermId, f32)]) -> Vec<(&Postings, f32, f32)> {
        let n = self.documents as f32;
        let mut terms: Vec<(&Postings, f32, f32)> = query
            .iter()
            .map(|&(term, query_weight)| {
                let list = self.postings[term as usize].as_slice();
                let df = list.len() as f32;
                let weight = query_weight * (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                (list, weight, weight * self.max_part[term as usize])
            })
            .filter(|(list, _, _)| !list.is_empty())
            .collect();
        terms.sort_by(|a, b| b.2.total_cmp(&a.2));
        terms
    }

    /// Every insight's full score, best first: the reference the pruned `rank` must equal.
    #[cfg(test)]
    fn rank_exhaustive(&self, query: &[(TermId, f32)]) -> Vec<(u32, f32)> {
        // Same terms in the same order as `rank`, so the float additions are identical.
        let mut scores = vec![0f32; self.documents];
        for (list, weight, _) in self.weighted_terms(query) {
            for &(doc, part) in list {
                scores[doc as usize] += weight * part;
            }
        }
        let mut all: Vec<(u32, f32)> = (0..self.documents as u32)
            .map(|d| (d, scores[d as usize]))
            .filter(|&(_, s)| s > 0.0)
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all
    }

    /// The `limit`-th best score among `touched` (which holds at least `limit` insights).
    fn kth_best(scores: &[f32], touched: &[u32], limit: usize) -> f32 {
        let mut values: Vec<f32> = touched.iter().map(|&d| scores[d as usize]).collect();
        let (_, kth, _) = values.select_nth_unstable_by(limit - 1, |a, b| b.total_cmp(a));
        *kth
    }

    fn name(&self, term: TermId) -> String {
        self.dictionary.names[term as usize].clone()
    }

    /// `terms` are the question's terms as `Analyzer::terms` emits them (is_concept flagged).
    fn evidence(&self, words: &[(&str, &WordInfo)], terms: &[(TermId, bool)]) -> Evidence {
        let mut strong = HashSet::new();
        let mut weak = HashSet::new();
        let mut unknown = HashSet::new();
        // Concepts reached through a single non-everyday word; a phrase's concept beyond those is
        // strong evidence on its own ("let go", "tour of duty"), even when its words are everyday.
        let mut single_word_concepts = HashSet::new();
        for (word, info) in words {
            if info.stop || info.everyday {
                continue;
            }
            single_word_concepts.extend(info.concepts.iter().copied());
            match info.stem {
                Some(stem) if !info.concepts.is_empty() || self.topic_stems.contains(&stem) => {
                    strong.insert(self.name(stem));
                }
                Some(stem) if !self.postings[stem as usize].is_empty() => {
                    weak.insert(self.name(stem));
                }
                Some(stem) => {
                    unknown.insert(self.name(stem));
                }
                None => {
                    unknown.insert(self.analyzer.stem(word, false));
                }
            }
        }
        for &(term, concept) in terms {
            if concept && !single_word_concepts.contains(&term) {
                strong.insert(self.name(term));
            }
        }
        let sorted = |set: HashSet<String>| {
            let mut v: Vec<String> = set.into_iter().collect();
            v.sort();
            v
        };
        Evidence {
            strong: sorted(strong),
            weak: sorted(weak),
            unknown: sorted(unknown),
        }
    }

    fn rank(
        &self,
        insights: &[Insight],
        query: &[(TermId, f32)],
        limit: usize,
    ) -> Vec<(usize, f32)> {
        if limit == 0 {
            return Vec::new();
        }
        let terms = self.weighted_terms(query);
        // What all the terms from i on could still add to an insight.
        let mut rest = vec![0f32; terms.len() + 1];
        for i in (0..terms.len()).rev() {
            rest[i] = rest[i + 1] + terms[i].2;
        }

        // Term at a time, rare (high-scoring) terms first. Once what the remaining terms could
        // add is less than the current `limit`-th best score, no insight untouched so far can
        // reach the top, so the remaining (common, long) lists are not walked: their scores are
        // looked up only for the insights that can still make it. Exact, not approximate.
        let mut scores = vec![0f32; self.documents];
        let mut touched: Vec<u32> = Vec::new();
        let mut walked = terms.len();
        // Once most insights are touched, tracking which ones costs more than scanning them all.
        let mut touched_all = false;
        for (i, &(list, weight, _)) in terms.iter().enumerate() {
            // The `limit`-th best score is at most what the walked terms can add (rest[0] -
            // rest[i]), so it is only worth computing once the remaining terms could add less.
            let worth_checking =
                !touched_all && touched.len() >= limit && rest[i] < rest[0] - rest[i];
            if worth_checking && rest[i] < Self::kth_best(&scores, &touched, limit) {
                walked = i;
                break;
            }
            if touched_all {
                for &(doc, part) in list {
                    scores[doc as usize] += weight * part;
                }
                continue;
            }
            for &(doc, part) in list {
                let slot = &mut scores[doc as usize];
                if *slot == 0.0 {
                    touched.push(doc);
                }
                *slot += weight * part;
            }
            if touched.len() > self.documents / 8 {
                touched_all = true;
                touched = Vec::new();
            }
        }
        if walked < terms.len() {
            let threshold = Self::kth_best(&scores, &touched, limit);
            touched.retain(|&doc| scores[doc as usize] + rest[walked] >= threshold);
            for &(list, weight, _) in &terms[walked..] {
                for &doc in &touched {
                    if let Ok(at) = list.binary_search_by_key(&doc, |&(d, _)| d) {
                        scores[doc as usize] += weight * list[at].1;
                    }
                }
            }
        }
        // The best `limit`, kept sorted in one pass: most insights fail the first comparison
        // against the current last place, so this is far cheaper than sorting or selecting
        // among everything touched. Ties on score go to the smaller id, so answers are stable.
        let better = |a: u32, b: u32| {
            let (sa, sb) = (scores[a as usize], scores[b as usize]);
            sa > sb || (sa == sb && insights[a as usize].id < insights[b as usize].id)
        };
        let mut top: Vec<u32> = Vec::with_capacity(limit + 1);
        let mut consider = |doc: u32| {
            if scores[doc as usize] <= 0.0 {
                return;
            }
            if top.len() == limit && !better(doc, top[limit - 1]) {
                return;
            }
            let at = top.partition_point(|&other| better(other, doc));
            top.insert(at, doc);
            top.truncate(limit);
        };
        if touched_all {
            (0..self.documents as u32).for_each(&mut consider);
        } else {
            touched.into_iter().for_each(&mut consider);
        }
        top.into_iter()
            .map(|d| (d as usize, scores[d as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::words as words_of;
    use super::*;
    use crate::insights::Library;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    #[test]
    fn the_stem_memo_gives_the_stemmers_answer_and_keeps_only_indexed_words() {
        let (analyzer, _) = Analyzer::new();
        let stemmer = Stemmer::create(Algorithm::English);
        for word in ["delegating", "managers", "zzqxplorations"] {
            assert_eq!(analyzer.stem(word, false), stemmer.stem(word));
        }
        let read = || stem_memo().read().unwrap().contains_key("zzqxplorations");
        assert!(!read(), "a question's word is not kept");
        assert_eq!(
            analyzer.stem("zzqxplorations", true),
            stemmer.stem("zzqxplorations")
        );
        assert!(read());
        assert_eq!(
            analyzer.stem("zzqxplorations", false),
            stemmer.stem("zzqxplorations")
        );
    }

    fn shipped() -> &'static (Library, LexicalIndex) {
        static SHIPPED: OnceLock<(Library, LexicalIndex)> = OnceLock::new();
        SHIPPED.get_or_init(|| {
            let library = Library::builtin().unwrap();
            let index = LexicalIndex::build(library.insights());
            (library, index)
        })
    }

    fn ranked(question: &str, limit: usize) -> Vec<(String, f32)> {
        let (library, index) = shipped();
        index
            .score(library.insights(), question, limit)
            .matches
            .into_iter()
            .map(|(i, score)| (library.insights()[i].id.clone(), score))
            .collect()
    }

    fn best(question: &str) -> Option<String> {
        ranked(question, 3).into_iter().next().map(|(id, _)| id)
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
    fn evidence_sorts_the_questions_words() {
        let (library, index) = shipped();
        let evidence = index
            .score(library.insights(), "how do I delegate DNS to cloudflare", 3)
            .evidence;
        assert!(
            evidence.strong.iter().any(|w| w.contains("deleg")),
            "{evidence:?}"
        );
        assert!(
            evidence.unknown.iter().any(|w| w == "cloudflar"),
            "{evidence:?}"
        );
    }

    #[test]
    fn ranking_is_ordered_stable_and_limited() {
        let (library, _) = shipped();
        let id = |i: &str| library.get(i).unwrap().id.clone();
        let a = ranked("manager", 25);
        assert!(a.len() > 3);
        assert!(a
            .windows(2)
            .all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && id(&w[0].0) < id(&w[1].0))));
        assert_eq!(a, ranked("manager", 25));
        assert_eq!(ranked("manager", 2)[..], a[..2]);
        assert!(ranked("?!?", 3).is_empty());
    }

    #[test]
    fn very_long_questions_are_answered() {
        let long = "How do I stop micromanaging my team? ".repeat(300);
        assert_eq!(best(&long).as_deref(), Some("trust-and-delegate"));
    }

    /// A collection of `size` insights over a small skewed vocabulary, so that some words are in
    /// almost every insight and others in few: the case pruning is for.
    fn synthetic(size: usize, seed: u64) -> Vec<Insight> {
        use rand::{Rng, SeedableRng};
        let vocabulary: Vec<String> = (0..60).map(|i| format!("w{i}x")).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut text = |len: usize| {
            (0..len)
                .map(|_| {
                    // Squaring a uniform draw favours low indices: a skewed vocabulary.
                    let u: f64 = rng.gen();
                    vocabulary[((u * u) * vocabulary.len() as f64) as usize].as_str()
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        (0..size)
            .map(|i| Insight {
                id: format!("i{i:04}"),
                title: text(4),
                text: text(30),
                topics: vec!["t".into()],
                asks: vec![text(6), text(6)],
                source: crate::insights::Source {
                    title: "s".into(),
                    publisher: "p".into(),
                    url: None,
                },
                pack: None,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn pruned_ranking_equals_exhaustive_ranking(
            seed in 0u64..50,
            words in proptest::collection::vec(0usize..60, 1..8),
            limit in 1usize..6,
        ) {
            let insights = synthetic(300, seed);
            let index = LexicalIndex::build(&insights);
            let question: Vec<String> = words.iter().map(|w| format!("w{w}x")).collect();
            let normalised = normalise(&question.join(" "));
            let infos: Vec<&WordInfo> = words_of(&normalised)
                .map(|w| &index.analyzer.word_infos[index.analyzer.known_words[w] as usize])
                .collect();
            let mut query: Vec<(TermId, f32)> = Vec::new();
            index.analyzer.terms(&infos, |t, _| {
                if !query.iter().any(|(q, _)| *q == t) {
                    query.push((t, 1.0));
                }
            });
            let pruned: Vec<(String, f32)> = index
                .rank(&insights, &query, limit)
                .into_iter()
                .map(|(d, s)| (insights[d].id.clone(), s))
                .collect();
            let exhaustive: Vec<(String, f32)> = index
                .rank_exhaustive(&query)
                .into_iter()
                .take(limit)
                .map(|(d, s)| (insights[d as usize].id.clone(), s))
                .collect();
            prop_assert_eq!(pruned, exhaustive);
        }
    }

    proptest! {
        #[test]
        fn any_bytes_as_utf8_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12_000)) {
            let (library, index) = shipped();
            let question = String::from_utf8_lossy(&bytes);
            let scores = index.score(library.insights(), &question, 5);
            prop_assert!(scores.matches.iter().all(|(_, s)| s.is_finite() && *s > 0.0));
        }
    }
}
