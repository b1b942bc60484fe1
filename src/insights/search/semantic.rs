//! Semantic similarity: every insight as several embedded documents, a question scored against
//! all of them, an insight's similarity being its best document's.
//!
//! Documents of an insight: its title and text together (what it says), and each of its `asks`
//! on its own (how people ask for it). Indexing the asks apart matters: averaged into one
//! vector, eight ways of asking blur into none; apart, the one closest to the question speaks.
//!
//! Storage and scan: vectors are unit length, so a cosine is a dot product. They are kept as i8
//! with one scale per vector (768 bytes instead of 3,072): a scan is bound by memory bandwidth,
//! so at 100,000 insights (about 300,000 documents, 115 MB) a brute-force pass over all of them
//! stays around ten milliseconds on this machine, where f32 would read four times as much. The
//! rounding moves a cosine by about 0.003 (at most 0.01, tested), far below the differences the
//! ranking and the gate act on. Brute force rather than an approximate index: exact, simple, and
//! fast enough at the scale the bot is built for (docs/benchmarks.md has the measurements).

use crate::embedding::{Vector, DIM};
use crate::insights::Insight;

/// Which part of an insight a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// Title and text together.
    Body,
    /// One of the insight's `asks` (its index).
    Ask(u16),
}

/// The documents of one insight, in a fixed order: body first, then each ask.
pub fn documents(insight: &Insight) -> Vec<(DocKind, String)> {
    let mut docs = vec![(
        DocKind::Body,
        format!("{}. {}", insight.title, insight.text),
    )];
    docs.extend(
        insight
            .asks
            .iter()
            .enumerate()
            .map(|(i, ask)| (DocKind::Ask(i.min(u16::MAX as usize) as u16), ask.clone())),
    );
    docs
}

/// A vector stored in 8 bits: `value[k] ~ scale * q[k]`.
#[derive(Debug, Clone)]
struct Quantized {
    scale: f32,
    q: [i8; DIM],
}

fn quantize(v: &Vector) -> Quantized {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let mut q = [0i8; DIM];
    for (out, x) in q.iter_mut().zip(v) {
        *out = (x / scale).round().clamp(-127.0, 127.0) as i8;
    }
    Quantized { scale, q }
}

/// A question's vector in 16 bits, for the scan: `value[k] ~ scale * q[k]`. 16 bits keep the
/// question's own rounding a hundred times below the documents' 8 bits.
struct QuantizedQuery {
    scale: f32,
    q: [i16; DIM],
}

fn quantize_query(v: &Vector) -> QuantizedQuery {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 32767.0 } else { 1.0 };
    let mut q = [0i16; DIM];
    for (out, x) in q.iter_mut().zip(v) {
        *out = (x / scale).round().clamp(-32767.0, 32767.0) as i16;
    }
    QuantizedQuery { scale, q }
}

/// The dot product of a question with a stored document, in integers: 16 x 8-bit products summed
/// in 32 bits per lane (each of the 16 lanes sums 48 products: |lane| < 48 x 32767 x 127 < 2^31;
/// the lanes are added in 64 bits, since 768 x 32767 x 127 is not < 2^31), which the compiler
/// turns into vector multiply-adds of 16-bit pairs. About four times faster than widening to f32, and the scan over
/// 300,000 documents is most of a question's time at 100,000 insights.
#[inline(always)]
fn dot(query: &QuantizedQuery, doc: &Quantized) -> f32 {
    let mut acc = [0i32; 16];
    for (q, d) in query.q.chunks_exact(16).zip(doc.q.chunks_exact(16)) {
        for k in 0..16 {
            acc[k] += i32::from(q[k]) * i32::from(d[k]);
        }
    }
    acc.iter().map(|&lane| i64::from(lane)).sum::<i64>() as f32 * query.scale * doc.scale
}

/// One insight's documents (body, then each ask) as the index keeps them, in 8 bits: also the
/// form a server's own insights keep in the database, so a restart loads them without running
/// the model (772 bytes a document; [`InsightVectors::encode`]).
#[derive(Debug, Clone)]
pub struct InsightVectors {
    docs: Vec<Quantized>,
}

/// The first byte of [`InsightVectors::encode`]'s output: the layout's version.
const VECTORS_FORMAT: u8 = 1;
/// Bytes per encoded document: the scale (f32, little-endian) and the 8-bit components.
const ENCODED_DOC_BYTES: usize = 4 + DIM;

impl InsightVectors {
    /// From the embedded documents, in [`documents`] order.
    pub fn from_vectors(vectors: &[Vector]) -> InsightVectors {
        InsightVectors {
            docs: vectors.iter().map(quantize).collect(),
        }
    }

    /// How many documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The body document's vector, back to floats (`None` without documents).
    pub fn body_vector(&self) -> Option<Vector> {
        let doc = self.docs.first()?;
        let mut v = [0f32; DIM];
        for (out, &q) in v.iter_mut().zip(&doc.q) {
            *out = f32::from(q) * doc.scale;
        }
        Some(v)
    }

    /// The stored form: a version byte, the document count (u16, little-endian), then each
    /// document's scale and components.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.docs.len() * ENCODED_DOC_BYTES);
        out.push(VECTORS_FORMAT);
        out.extend_from_slice(&(self.docs.len().min(u16::MAX as usize) as u16).to_le_bytes());
        for doc in self.docs.iter().take(u16::MAX as usize) {
            out.extend_from_slice(&doc.scale.to_le_bytes());
            out.extend(doc.q.iter().map(|&b| b as u8));
        }
        out
    }

    /// The stored form back. An error says why the bytes are not vectors of this layout (the
    /// caller then embeds the insight again).
    pub fn decode(bytes: &[u8]) -> Result<InsightVectors, String> {
        let [format, n0, n1, rest @ ..] = bytes else {
            return Err(format!("{} bytes is too short", bytes.len()));
        };
        if *format != VECTORS_FORMAT {
            return Err(format!(
                "layout version {format}, expected {VECTORS_FORMAT}"
            ));
        }
        let count = usize::from(u16::from_le_bytes([*n0, *n1]));
        if rest.len() != count * ENCODED_DOC_BYTES {
            return Err(format!(
                "{} bytes of documents for {count} documents (expected {})",
                rest.len(),
                count * ENCODED_DOC_BYTES
            ));
        }
        let mut docs = Vec::with_capacity(count);
        for chunk in rest.chunks_exact(ENCODED_DOC_BYTES) {
            let scale = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if !scale.is_finite() || scale <= 0.0 {
                return Err(format!("a document's scale is {scale}"));
            }
            let mut q = [0i8; DIM];
            for (out, &b) in q.iter_mut().zip(&chunk[4..]) {
                *out = b as i8;
            }
            docs.push(Quantized { scale, q });
        }
        Ok(InsightVectors { docs })
    }
}

/// Documents scanned per thread: below this a second thread costs more than it saves.
const PARALLEL_SCAN_DOCS: usize = 40_000;

/// The embedded documents of one collection.
#[derive(Debug, Clone, Default)]
pub struct SemanticIndex {
    docs: Vec<Quantized>,
    /// The insight (index in the collection) of each document.
    owners: Vec<u32>,
    kinds: Vec<DocKind>,
    insights: usize,
}

/// An insight's similarity to a question, and which document gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub value: f32,
    pub doc: DocKind,
}

impl SemanticIndex {
    /// The index of `insights` given each one's document vectors in [`documents`] order
    /// (`vectors` holds them all, insight after insight).
    pub fn new(insights: &[Insight], vectors: &[Vector]) -> SemanticIndex {
        let mut index = SemanticIndex {
            insights: insights.len(),
            ..SemanticIndex::default()
        };
        let mut next = vectors.iter();
        for (owner, insight) in insights.iter().enumerate() {
            for (kind, _) in documents(insight) {
                let Some(vector) = next.next() else { break };
                index.docs.push(quantize(vector));
                index.owners.push(owner as u32);
                index.kinds.push(kind);
            }
        }
        index
    }

    /// An index over made-up documents (benchmarks): `(owner, vector)` pairs for `insights`
    /// insights, every document a body.
    pub fn from_documents(insights: usize, docs: &[(u32, Vector)]) -> SemanticIndex {
        SemanticIndex {
            docs: docs.iter().map(|(_, v)| quantize(v)).collect(),
            owners: docs.iter().map(|(o, _)| *o).collect(),
            kinds: vec![DocKind::Body; docs.len()],
            insights,
        }
    }

    pub fn documents(&self) -> usize {
        self.docs.len()
    }

    /// How many insights the index covers (some may have no document).
    pub fn insights(&self) -> usize {
        self.insights
    }

    /// The index of insights given as their [`InsightVectors`], in order.
    pub fn from_insight_vectors<'a>(
        insights: impl IntoIterator<Item = &'a InsightVectors>,
    ) -> SemanticIndex {
        let mut index = SemanticIndex::default();
        for (owner, vectors) in insights.into_iter().enumerate() {
            index.push(owner as u32, vectors);
            index.insights = owner + 1;
        }
        index
    }

    fn push(&mut self, owner: u32, vectors: &InsightVectors) {
        for (k, doc) in vectors.docs.iter().enumerate() {
            self.docs.push(doc.clone());
            self.owners.push(owner);
            self.kinds.push(if k == 0 {
                DocKind::Body
            } else {
                DocKind::Ask((k - 1).min(u16::MAX as usize) as u16)
            });
        }
    }

    /// This index with the insights `keep` refuses taken out (the rest keep their order and are
    /// numbered anew) and `appended` added at the end: how a server's own insights change without
    /// touching the others' vectors.
    pub fn edited(
        &self,
        keep: impl Fn(usize) -> bool,
        appended: &[&InsightVectors],
    ) -> SemanticIndex {
        let mut index = SemanticIndex::default();
        let mut renumbered: Vec<Option<u32>> = vec![None; self.insights];
        let mut next = 0u32;
        for (old, slot) in renumbered.iter_mut().enumerate() {
            if keep(old) {
                *slot = Some(next);
                next += 1;
            }
        }
        for ((doc, &owner), &kind) in self.docs.iter().zip(&self.owners).zip(&self.kinds) {
            if let Some(new) = renumbered[owner as usize] {
                index.docs.push(doc.clone());
                index.owners.push(new);
                index.kinds.push(kind);
            }
        }
        for vectors in appended {
            index.push(next, vectors);
            next += 1;
        }
        index.insights = next as usize;
        index
    }

    /// The documents of insight `owner` (empty when it has none).
    pub fn insight_vectors(&self, owner: usize) -> InsightVectors {
        InsightVectors {
            docs: self
                .docs
                .iter()
                .zip(&self.owners)
                .filter(|(_, &o)| o as usize == owner)
                .map(|(d, _)| d.clone())
                .collect(),
        }
    }

    /// Each insight's similarity to `vector` by its body document alone (-1 without one): how
    /// close a new insight is to the existing ones, where an ask that happens to match is not a
    /// duplicate.
    pub fn body_similarities(&self, vector: &Vector) -> Vec<f32> {
        let query = quantize_query(vector);
        let mut best = vec![-1f32; self.insights];
        for ((doc, &owner), &kind) in self.docs.iter().zip(&self.owners).zip(&self.kinds) {
            if kind == DocKind::Body {
                best[owner as usize] = dot(&query, doc);
            }
        }
        best
    }

    /// Every insight's similarity to the question: the best over its documents and over the
    /// question's vectors (the whole question and, for a long one, its sentences). Insights
    /// without a document get -1. A large index is scanned by two threads, each over half of the
    /// documents (an insight's documents are contiguous, so the halves merge by maximum).
    pub fn similarities(&self, queries: &[Vector]) -> Vec<Similarity> {
        let queries: Vec<QuantizedQuery> = queries.iter().map(quantize_query).collect();
        let threads = if self.docs.len() >= 2 * PARALLEL_SCAN_DOCS {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
        } else {
            1
        };
        if threads == 1 {
            return self.scan(&queries, 0..self.docs.len());
        }
        let half = self.docs.len() / 2;
        let (mut first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| self.scan(&queries, half..self.docs.len()));
            let first = self.scan(&queries, 0..half);
            (
                first,
                second
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            )
        });
        for (a, b) in first.iter_mut().zip(second) {
            if b.value > a.value {
                *a = b;
            }
        }
        first
    }

    fn scan(&self, queries: &[QuantizedQuery], range: std::ops::Range<usize>) -> Vec<Similarity> {
        let mut best = vec![
            Similarity {
                value: -1.0,
                doc: DocKind::Body
            };
            self.insights
        ];
        let docs = &self.docs[range.clone()];
        let owners = &self.owners[range.clone()];
        let kinds = &self.kinds[range];
        // Release builds target baseline x86-64 (SSE2), where the 16-bit multiply-adds need
        // extra shuffles; with AVX2 (nearly every server CPU of the last decade) the same loop,
        // compiled for it, runs about twice as fast. Checked at run time, once per scan.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above), the only requirement of
            // `scan_avx2`.
            unsafe { scan_avx2(queries, docs, owners, kinds, &mut best) };
            return best;
        }
        scan_into(queries, docs, owners, kinds, &mut best);
        best
    }
}

/// The scan of documents `docs` (owned by `owners`, of kinds `kinds`) into every insight's best.
#[inline(always)]
fn scan_into(
    queries: &[QuantizedQuery],
    docs: &[Quantized],
    owners: &[u32],
    kinds: &[DocKind],
    best: &mut [Similarity],
) {
    for query in queries {
        for ((doc, &owner), &kind) in docs.iter().zip(owners).zip(kinds) {
            let value = dot(query, doc);
            let slot = &mut best[owner as usize];
            if value > slot.value {
                *slot = Similarity { value, doc: kind };
            }
        }
    }
}

/// [`scan_into`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(
    queries: &[QuantizedQuery],
    docs: &[Quantized],
    owners: &[u32],
    kinds: &[DocKind],
    best: &mut [Similarity],
) {
    scan_into(queries, docs, owners, kinds, best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u32) -> Vector {
        // A deterministic pseudo-random unit vector.
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let mut v = [0f32; DIM];
        for value in v.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *value = (x as f32 / u32::MAX as f32) - 0.5;
        }
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.map(|a| a / norm)
    }

    #[test]
    fn quantised_dot_products_stay_within_a_hundredth_of_the_exact_cosine() {
        let mut worst = 0f32;
        for a in 0..40 {
            for b in 0..40 {
                let (x, y) = (unit(a), unit(1000 + b));
                let exact = crate::embedding::cosine(&x, &y);
                worst = worst.max((dot(&quantize_query(&x), &quantize(&y)) - exact).abs());
            }
            let x = unit(a);
            assert!((dot(&quantize_query(&x), &quantize(&x)) - 1.0).abs() < 0.01);
        }
        assert!(worst < 0.01, "{worst}");
    }

    #[test]
    fn an_insights_similarity_is_its_best_document_over_the_questions_vectors() {
        let docs = [(0, unit(1)), (0, unit(2)), (1, unit(3))];
        let index = SemanticIndex::from_documents(3, &docs);
        let sims = index.similarities(&[unit(2)]);
        assert!((sims[0].value - 1.0).abs() < 0.01, "{sims:?}");
        assert!(sims[1].value < 0.5);
        assert_eq!(sims[2].value, -1.0, "no documents");
        // A second query vector (a sentence of a long message) can raise an insight.
        let sims = index.similarities(&[unit(2), unit(3)]);
        assert!((sims[1].value - 1.0).abs() < 0.01, "{sims:?}");
    }

    #[test]
    fn stored_vectors_round_trip_and_bad_bytes_are_refused() {
        let vectors = InsightVectors::from_vectors(&[unit(1), unit(2), unit(3)]);
        let bytes = vectors.encode();
        assert_eq!(bytes.len(), 3 + 3 * ENCODED_DOC_BYTES);
        let back = InsightVectors::decode(&bytes).unwrap();
        let a = SemanticIndex::from_insight_vectors([&vectors]);
        let b = SemanticIndex::from_insight_vectors([&back]);
        assert_eq!(a.similarities(&[unit(2)]), b.similarities(&[unit(2)]));
        assert!(InsightVectors::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(InsightVectors::decode(&[]).is_err());
        let mut other_version = bytes.clone();
        other_version[0] = 9;
        assert!(InsightVectors::decode(&other_version)
            .unwrap_err()
            .contains("version"));
        let mut zero_scale = bytes;
        zero_scale[3..7].copy_from_slice(&0f32.to_le_bytes());
        assert!(InsightVectors::decode(&zero_scale).is_err());
    }

    #[test]
    fn an_edited_index_keeps_the_rest_and_appends_the_new() {
        let parts: Vec<InsightVectors> = (0..4)
            .map(|i| InsightVectors::from_vectors(&[unit(10 * i), unit(10 * i + 1)]))
            .collect();
        let index = SemanticIndex::from_insight_vectors(&parts);
        assert_eq!((index.insights(), index.documents()), (4, 8));
        let added = InsightVectors::from_vectors(&[unit(99)]);
        let edited = index.edited(|i| i != 1, &[&added]);
        assert_eq!((edited.insights(), edited.documents()), (4, 7));
        // Insight 2 is now 1, and the appended one is last.
        let sims = edited.similarities(&[unit(21)]);
        assert!((sims[1].value - 1.0).abs() < 0.01, "{sims:?}");
        assert_eq!(sims[1].doc, DocKind::Ask(0));
        assert!((edited.similarities(&[unit(99)])[3].value - 1.0).abs() < 0.01);
        assert_eq!(edited.insight_vectors(3).len(), 1);
        // Bodies only: the ask of insight 1 (unit(21)) does not count.
        let bodies = edited.body_similarities(&unit(21));
        assert!(bodies[1] < 0.5, "{bodies:?}");
        assert!((edited.body_similarities(&unit(20))[1] - 1.0).abs() < 0.01);
    }

    #[test]
    fn a_parallel_scan_finds_what_a_single_one_does() {
        let owners = 3 * PARALLEL_SCAN_DOCS / 2;
        let docs: Vec<(u32, Vector)> = (0..2 * owners as u32).map(|i| (i / 2, unit(i))).collect();
        let index = SemanticIndex::from_documents(owners, &docs);
        let queries = [unit(7), unit(90_001)];
        let quantized: Vec<QuantizedQuery> = queries.iter().map(quantize_query).collect();
        assert_eq!(
            index.similarities(&queries),
            index.scan(&quantized, 0..docs.len())
        );
    }
}
