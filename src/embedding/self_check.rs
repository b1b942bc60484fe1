//! The model's self-check at load: one fixed sentence is embedded and compared with its
//! *reference embedding*, a vector stored beside the model in `reference_embedding.json`.
//!
//! Why: the bounds (`limits.rs`) and the tensor shapes catch a malformed folder, but not weights
//! that are well-formed and wrong (garbage bytes, another model's file of the same shape, a
//! bad conversion). Such a model still loads and then answers every question with "no close
//! match", silently. Comparing one sentence's vector with one computed independently catches
//! that at start-up, for a few milliseconds (one sentence of 12 word pieces: 25 ms in a debug
//! build, a few ms in release).
//!
//! Not to be confused with the model *fingerprint* (`Embedder::fingerprint`), a hash of the
//! files that keys the vector cache: the fingerprint says which files these are, the reference
//! embedding says they compute what they should.
//!
//! The shipped reference was computed by the Python float64 forward pass on the original f32
//! weights (`models/all-MiniLM-L6-v2/reference/`); the f16 weights give cosine 0.9999995 with
//! it, so [`MIN_COSINE`] leaves f16 and platform rounding plenty of room while any damaged
//! weights land far below. For a new model, `insight-bot model-reference DIR` prints the file
//! as this build computes it (check it against sentence-transformers before shipping it).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{EmbedError, Embedder, DIM};

/// The file, in the model's folder.
pub const FILE: &str = "reference_embedding.json";

/// The least cosine between the sentence's vector and its reference. Measured 0.9999995 for the
/// shipped f16 weights; damaged weights give far less (two layers' feed-forward weights swapped:
/// 0.44).
pub const MIN_COSINE: f32 = 0.999;

/// The sentence `model-reference` embeds unless told otherwise: short (12 word pieces with
/// [CLS] and [SEP]), so the check costs a few milliseconds, and plain English any vocabulary
/// covers.
pub const DEFAULT_SENTENCE: &str = "The quick brown fox jumps over the lazy dog.";

/// Longest reference sentence accepted, in bytes: the check runs at every start-up.
const MAX_SENTENCE_BYTES: usize = 200;

/// The contents of `reference_embedding.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceEmbedding {
    /// How the vector was produced (free text, for the reader).
    #[serde(default)]
    pub about: String,
    pub sentence: String,
    pub embedding: Vec<f32>,
}

impl ReferenceEmbedding {
    /// Reads the file's bytes; `path` is named in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, EmbedError> {
        let invalid = |reason: String| EmbedError::Invalid {
            path: path.to_path_buf(),
            what: "reference embedding",
            reason,
        };
        let r: ReferenceEmbedding =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        if r.sentence.trim().is_empty() || r.sentence.len() > MAX_SENTENCE_BYTES {
            return Err(invalid(format!(
                "the sentence must be 1..={MAX_SENTENCE_BYTES} bytes, found {}",
                r.sentence.len()
            )));
        }
        if r.embedding.len() != DIM {
            return Err(invalid(format!(
                "{} values, the model embeds in {DIM}",
                r.embedding.len()
            )));
        }
        if !r.embedding.iter().all(|x| x.is_finite()) || norm(&r.embedding) < 0.5 {
            return Err(invalid(
                "the embedding must be finite values of unit length".to_string(),
            ));
        }
        Ok(r)
    }

    /// Embeds the sentence with `embedder` (not self-checked yet) and builds the file's contents.
    pub fn compute(embedder: &Embedder, sentence: &str, about: &str) -> Result<Self, EmbedError> {
        let v = embedder.embed_one(sentence)?;
        Ok(ReferenceEmbedding {
            about: about.to_string(),
            sentence: sentence.to_string(),
            embedding: v.iter().map(|x| (x * 1e6).round() / 1e6).collect(),
        })
    }
}

/// Embeds the reference sentence and compares it with the reference vector; returns the cosine.
/// A non-finite value or a cosine below [`MIN_COSINE`] is an error naming the model folder.
pub fn verify(
    embedder: &Embedder,
    reference: &ReferenceEmbedding,
    model: &Path,
) -> Result<f32, EmbedError> {
    let got = embedder.embed_one(&reference.sentence)?;
    let fail = |found: String| EmbedError::SelfCheck {
        path: model.to_path_buf(),
        sentence: reference.sentence.clone(),
        found,
    };
    if !got.iter().all(|x| x.is_finite()) {
        return Err(fail("NaN or infinite values".to_string()));
    }
    let cosine = dot(&got, &reference.embedding) / (norm(&got) * norm(&reference.embedding));
    // A zero vector gives a NaN cosine: a failure too.
    if cosine.is_nan() || cosine < MIN_COSINE {
        return Err(fail(format!(
            "cosine {cosine:.6} with its reference, {MIN_COSINE} at least"
        )));
    }
    Ok(cosine)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}
