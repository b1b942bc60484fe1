//! A kept question's sentence vector: what lets `/insights gaps` group a server's questions
//! without running the model on each of them at every listing.
//!
//! Answering a question already embeds it to search; that vector (the whole question's, the first
//! of [`Question::texts`]) travels with the answer record and is stored with the question, in the
//! 8-bit form of a server's own insight vectors ([`InsightVectors`], one document) and with the
//! model's fingerprint. A listing then only reads. Questions kept before schema version 4, or
//! under another model, have no usable vector: a listing embeds at most
//! [`MAX_EMBEDDED_PER_LISTING`] of them, newest first, and writes each back, so no question is
//! embedded twice; the rest wait for the next listing (the reply says how many).
//!
//! Blocking (the store and the model): run it on the store's blocking pool ([`Store::call`]).
//!
//! [`Store::call`]: crate::store::Store::call

use chrono::NaiveDate;

use crate::embedding::Vector;
use crate::insights::search::semantic::InsightVectors;
use crate::insights::search::{Question, Searcher};
use crate::store::{Backend, Gap, StoreError, StoredVectors};

/// The most questions without a usable vector one listing embeds. A long question costs the
/// model about 90 ms on this machine (300 of 1,000 characters took 27.6 s), so 32 keep a listing
/// within a few seconds; questions kept before version 4 are at most 30 days old, so a few
/// listings fill them all.
pub const MAX_EMBEDDED_PER_LISTING: usize = 32;

/// What embeds a question for a listing: the bot's [`Searcher`]; tests count its calls.
pub trait QuestionModel: Send + Sync {
    /// The fingerprint of the model, stored with each vector it computes.
    fn fingerprint(&self) -> u64;

    /// The whole question's vector, as answering it computes it (the normalised question).
    fn embed_question(&self, question: &str) -> Result<Vector, String>;
}

impl QuestionModel for Searcher {
    fn fingerprint(&self) -> u64 {
        self.embedder().fingerprint()
    }

    fn embed_question(&self, question: &str) -> Result<Vector, String> {
        let read = Question::read(question).map_err(|e| e.to_string())?;
        // Only the whole question: its sentences are for ranking, not for grouping.
        self.embedder()
            .embed(&[read.normalised.as_str()])
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| "the model returned no vector".to_string())
    }
}

/// A question's vector as the store keeps it.
pub fn encode(vector: &Vector, fingerprint: u64) -> StoredVectors {
    StoredVectors {
        fingerprint,
        bytes: InsightVectors::from_vectors(std::slice::from_ref(vector)).encode(),
    }
}

/// A stored vector back, when `fingerprint`'s model computed it and it reads as one vector.
pub fn decode(stored: &StoredVectors, fingerprint: u64) -> Option<Vector> {
    if stored.fingerprint != fingerprint {
        return None;
    }
    match InsightVectors::decode(&stored.bytes) {
        Ok(v) if v.len() == 1 => v.body_vector(),
        _ => None,
    }
}

/// A server's gaps for a listing, each with its vector.
#[derive(Debug)]
pub struct Listed {
    /// Newest first, as [`Backend::gaps`] reads them.
    pub gaps: Vec<Gap>,
    /// `vectors[i]` is `gaps[i]`'s.
    pub vectors: Vec<Vector>,
    /// Kept gaps left out of this listing: without a usable vector, beyond what one listing
    /// embeds (or the model failed on them). The next listing embeds them.
    pub left_out: usize,
    /// How many this listing embedded (and wrote back).
    pub embedded: usize,
}

/// Reads at most `limit` of `guild`'s gaps since `since` and gives each its vector: the stored
/// one, or, for at most [`MAX_EMBEDDED_PER_LISTING`] (newest first), one computed now and written
/// back. A failed write-back is logged: this listing still has the vectors.
pub fn gaps_with_vectors(
    db: &dyn Backend,
    guild: u64,
    since: NaiveDate,
    limit: usize,
    model: &dyn QuestionModel,
) -> Result<Listed, StoreError> {
    let fingerprint = model.fingerprint();
    let kept = db.gaps(guild, since, limit)?;
    let mut listed = Listed {
        gaps: Vec::with_capacity(kept.len()),
        vectors: Vec::with_capacity(kept.len()),
        left_out: 0,
        embedded: 0,
    };
    let mut computed: Vec<(u64, StoredVectors)> = Vec::new();
    for gap in kept {
        let vector = match gap.vector.as_ref().and_then(|v| decode(v, fingerprint)) {
            Some(v) => v,
            None if computed.len() < MAX_EMBEDDED_PER_LISTING => {
                match model.embed_question(&gap.question) {
                    Ok(v) => {
                        // The stored form, read back: the same vector a later listing reads.
                        let stored = encode(&v, fingerprint);
                        let v = decode(&stored, fingerprint).unwrap_or(v);
                        computed.push((gap.answer_id, stored));
                        v
                    }
                    Err(e) => {
                        tracing::warn!(guild, "cannot embed a kept question: {e}");
                        listed.left_out += 1;
                        continue;
                    }
                }
            }
            None => {
                listed.left_out += 1;
                continue;
            }
        };
        listed.gaps.push(gap);
        listed.vectors.push(vector);
    }
    listed.embedded = computed.len();
    if !computed.is_empty() {
        if let Err(e) = db.set_gap_vectors(guild, &computed) {
            tracing::warn!(guild, "cannot store the vectors of kept questions: {e}");
        }
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::DIM;
    use crate::store::{NewAnswer, SqliteBackend};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const GUILD: u64 = 41;

    /// A model that counts its calls: a question's vector is a unit vector from its bytes.
    struct Counting {
        fingerprint: u64,
        calls: AtomicUsize,
    }

    impl Counting {
        fn new(fingerprint: u64) -> Counting {
            Counting {
                fingerprint,
                calls: AtomicUsize::new(0),
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn vector_of(text: &str) -> Vector {
        let mut v = [0f32; DIM];
        for (i, b) in text.bytes().enumerate() {
            v[(i * 31 + usize::from(b)) % DIM] += 1.0 + f32::from(b) / 255.0;
        }
        let norm = v
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        v.map(|x| x / norm)
    }

    impl QuestionModel for Counting {
        fn fingerprint(&self) -> u64 {
            self.fingerprint
        }

        fn embed_question(&self, question: &str) -> Result<Vector, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(vector_of(question))
        }
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
    }

    /// A store with gaps on and `n` unanswered questions, with their vectors from `with_vectors`.
    fn store_with(
        n: u64,
        with_vectors: Option<u64>,
    ) -> (tempfile::TempDir, SqliteBackend, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteBackend::open(&dir.path().join("state.db")).unwrap();
        db.set_gaps(GUILD, true).unwrap();
        let questions: Vec<String> = (0..n).map(|i| format!("question number {i}?")).collect();
        let answers: Vec<NewAnswer> = questions
            .iter()
            .enumerate()
            .map(|(i, q)| NewAnswer {
                id: i as u64 + 1,
                guild_id: Some(GUILD),
                day: day(),
                insight_id: None,
                no_close_match: true,
                weak: false,
                question: Some(q.clone()),
                question_vector: with_vectors.map(|model| encode(&vector_of(q), model)),
            })
            .collect();
        db.record_answers(&answers).unwrap();
        (dir, db, questions)
    }

    fn list(db: &SqliteBackend, model: &Counting) -> Listed {
        gaps_with_vectors(db, GUILD, day(), 300, model).unwrap()
    }

    #[test]
    fn a_stored_vector_round_trips_within_rounding_and_another_models_is_refused() {
        let v = vector_of("how do I lead a team?");
        let stored = encode(&v, 7);
        let back = decode(&stored, 7).unwrap();
        let cos: f32 = v.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!(cos > 0.999, "{cos}");
        assert_eq!(decode(&stored, 8), None);
        let bytes = StoredVectors {
            fingerprint: 7,
            bytes: vec![1, 2],
        };
        assert_eq!(decode(&bytes, 7), None);
    }

    #[test]
    fn listing_stored_vectors_embeds_nothing() {
        let (_dir, db, questions) = store_with(40, Some(7));
        let model = Counting::new(7);
        let listed = list(&db, &model);
        assert_eq!(
            model.calls(),
            0,
            "every vector was stored with its question"
        );
        assert_eq!(listed.embedded, 0);
        assert_eq!(listed.left_out, 0);
        assert_eq!(listed.gaps.len(), 40);
        for (gap, v) in listed.gaps.iter().zip(&listed.vectors) {
            assert!(questions.contains(&gap.question));
            let exact = vector_of(&gap.question);
            let cos: f32 = exact.iter().zip(v).map(|(a, b)| a * b).sum();
            assert!(cos > 0.999, "{}: {cos}", gap.question);
        }
    }

    #[test]
    fn questions_without_a_vector_are_embedded_once_at_most_a_bounded_number_per_listing() {
        let (_dir, db, _) = store_with(40, None);
        let model = Counting::new(7);
        let first = list(&db, &model);
        assert_eq!(model.calls(), MAX_EMBEDDED_PER_LISTING);
        assert_eq!(first.embedded, MAX_EMBEDDED_PER_LISTING);
        assert_eq!(first.gaps.len(), MAX_EMBEDDED_PER_LISTING);
        assert_eq!(first.left_out, 40 - MAX_EMBEDDED_PER_LISTING);
        let second = list(&db, &model);
        assert_eq!(
            model.calls(),
            40,
            "the second listing embeds only the ones the first left out"
        );
        assert_eq!(second.gaps.len(), 40);
        assert_eq!(second.left_out, 0);
        let third = list(&db, &model);
        assert_eq!(model.calls(), 40, "then nothing more");
        assert_eq!(third.vectors.len(), 40);
        assert_eq!(
            third.vectors, second.vectors,
            "the vectors written back are the ones listed"
        );
    }

    #[test]
    fn another_models_vectors_are_embedded_again_once() {
        let (_dir, db, _) = store_with(10, Some(7));
        let model = Counting::new(8);
        list(&db, &model);
        assert_eq!(model.calls(), 10);
        list(&db, &model);
        assert_eq!(model.calls(), 10);
        let stored = db.gaps(GUILD, day(), 300).unwrap();
        assert!(stored
            .iter()
            .all(|g| g.vector.as_ref().map(|v| v.fingerprint) == Some(8)));
    }
}
