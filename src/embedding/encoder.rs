//! The one seam between the embedder and a model architecture: [`Encoder`], and
//! [`from_config`], which picks the implementation named by `config.json`'s `model_type`.
//!
//! Everything else in [`super`] (tokenizer, batching, caching, self-check, limits) is the same
//! for every model, so a better model is a new file implementing this trait and one line in
//! [`from_config`]. The embedding width is fixed ([`super::DIM`]): vectors are stored and
//! compared as `[f32; DIM]` throughout the program, and a model of another width is refused at
//! load rather than padded or cut.

use std::path::Path;

use candle_core::Tensor;
use serde::Deserialize;

use super::limits::Dimensions;
use super::weights::Weights;
use super::EmbedError;

/// A sentence encoder: token ids in, one unit-length vector per sentence out.
pub trait Encoder: Send + Sync {
    /// Mean-pooled, L2-normalised sentence embeddings, shape (batch, [`super::DIM`]), f32.
    /// `ids` and `mask` are (batch, seq) u32 tensors; mask is 1 for real tokens, 0 for padding.
    fn embed(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor>;

    /// The id right-padding uses (the model's `pad_token_id`).
    fn pad_id(&self) -> u32;
}

/// What every architecture's `config.json` says about itself.
#[derive(Deserialize)]
struct ModelType {
    model_type: String,
}

/// The encoder `config` (a `config.json`) describes, built from `weights`. Its sizes go through
/// [`super::limits::check`] before anything is allocated from them, whatever the architecture.
pub fn from_config(
    config: &[u8],
    config_path: &Path,
    max_seq_length: usize,
    sentence_config_path: &Path,
    weights: &mut Weights<'_>,
) -> Result<(Box<dyn Encoder>, Dimensions), EmbedError> {
    let parse = |what| move |e: serde_json::Error| super::invalid(config_path, what, e.to_string());
    let kind: ModelType = serde_json::from_slice(config).map_err(parse("model config"))?;
    match kind.model_type.as_str() {
        "mpnet" => {
            let cfg: super::mpnet::MpnetConfig =
                serde_json::from_slice(config).map_err(parse("MPNet config"))?;
            let dims = cfg.dimensions(max_seq_length);
            super::limits::check(&dims, config_path, sentence_config_path)?;
            cfg.check(max_seq_length)
                .map_err(|reason| super::invalid(config_path, "MPNet config", reason))?;
            let model = super::mpnet::Mpnet::new(&cfg, weights)?;
            Ok((Box::new(model), dims))
        }
        other => Err(super::invalid(
            config_path,
            "model config",
            format!(
                "model_type {other:?} is not implemented; insight-bot runs \"mpnet\" \
                 (sentence-transformers/all-mpnet-base-v2)"
            ),
        )),
    }
}
