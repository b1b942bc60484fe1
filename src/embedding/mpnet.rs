//! MPNet encoder forward pass (HF `MPNetModel` without the pooler), as
//! `sentence-transformers/all-mpnet-base-v2` runs it, on candle, CPU only.
//!
//! Matches the reference (`models/all-mpnet-base-v2/reference/numpy_mpnet.py`, itself checked
//! against sentence-transformers) on the points that are easy to get wrong:
//! - embeddings = word + absolute position, **no token-type table**, then LayerNorm; positions
//!   count from `pad_token_id + 1` = 2 over the non-padding ids, and an id equal to
//!   `pad_token_id` (padding, or a `<pad>` typed in the text) gets position `pad_token_id`
//!   (HF `create_position_ids_from_input_ids`);
//! - a **relative position bias** (32 buckets, T5-style, bidirectional, max distance 128) is
//!   computed once per batch from one table [buckets, heads] and added to the scaled attention
//!   scores of **every** layer;
//! - every LayerNorm uses `layer_norm_eps` (1e-5 for this model, not BERT's 1e-12);
//! - GELU is the exact erf form; post-LN layers as in BERT.

use candle_core::{DType, Module, Tensor, D};
use serde::Deserialize;

use super::encoder::Encoder;
use super::layers::{mean_pool_normalized, padding_bias, LayerNorm, Linear};
use super::limits::Dimensions;
use super::weights::Weights;
use super::{EmbedError, DIM};

/// HF hard-codes the relative positions' max distance (it is not in `config.json`).
const MAX_DISTANCE: usize = 128;

/// The fields of HF `config.json` the forward pass needs; the rest are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct MpnetConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    pub relative_attention_num_buckets: usize,
    pub pad_token_id: u32,
}

impl MpnetConfig {
    /// Refuses configurations this forward pass does not implement (after [`super::limits`]).
    pub fn check(&self, max_seq_length: usize) -> Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act is {:?}, only \"gelu\" (erf) is implemented",
                self.hidden_act
            ));
        }
        if self.hidden_size != DIM {
            return Err(format!(
                "hidden_size is {}, insight-bot embeds in {DIM}",
                self.hidden_size
            ));
        }
        if !(2..=64).contains(&self.relative_attention_num_buckets)
            || !self.relative_attention_num_buckets.is_multiple_of(2)
        {
            return Err(format!(
                "relative_attention_num_buckets is {}, allowed an even number in 2..=64",
                self.relative_attention_num_buckets
            ));
        }
        let pad = self.pad_token_id as usize;
        if pad >= self.vocab_size || max_seq_length + pad + 1 > self.max_position_embeddings {
            return Err(format!(
                "pad_token_id {pad} with max_seq_length {max_seq_length} needs positions up to \
                 {}, but max_position_embeddings is {} (and the id must be in the vocabulary)",
                max_seq_length + pad,
                self.max_position_embeddings
            ));
        }
        Ok(())
    }

    /// The sizes [`super::limits::check`] bounds before anything is allocated from them.
    pub fn dimensions(&self, max_seq_length: usize) -> Dimensions {
        Dimensions {
            num_hidden_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            vocab_size: self.vocab_size,
            max_position_embeddings: self.max_position_embeddings,
            layer_norm_eps: self.layer_norm_eps,
            max_seq_length,
        }
    }
}

struct Layer {
    /// Query, key and value fused into one (hidden, 3*hidden) projection: one gemm instead of 3.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    intermediate: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

pub struct Mpnet {
    word: Tensor,
    position: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    /// [buckets, heads].
    relative_bias: Tensor,
    buckets: usize,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    pad_id: u32,
}

impl Mpnet {
    /// Builds the model from its weights (HF `MPNetModel` tensor names, no `mpnet.` prefix).
    /// Tensors left over (a pooler, say) are simply unused.
    pub fn new(cfg: &MpnetConfig, w: &mut Weights<'_>) -> Result<Self, EmbedError> {
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let word = w.get("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let position = w.get(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let emb_norm = LayerNorm::load(w, "embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let name = |x: &str, kind: &str| format!("{p}.attention.attn.{x}.{kind}");
            let w_t = w.get_transposed(
                &[
                    &name("q", "weight"),
                    &name("k", "weight"),
                    &name("v", "weight"),
                ],
                h,
                h,
            )?;
            let biases = [
                w.get(&name("q", "bias"), &[h])?,
                w.get(&name("k", "bias"), &[h])?,
                w.get(&name("v", "bias"), &[h])?,
            ];
            let qkv = Linear::from_transposed(w_t, Tensor::cat(&biases, 0)?);
            layers.push(Layer {
                qkv,
                attn_out: Linear::load(w, &format!("{p}.attention.attn.o"), h, h)?,
                attn_norm: LayerNorm::load(w, &format!("{p}.attention.LayerNorm"), h, eps)?,
                intermediate: Linear::load(
                    w,
                    &format!("{p}.intermediate.dense"),
                    h,
                    cfg.intermediate_size,
                )?,
                out: Linear::load(w, &format!("{p}.output.dense"), cfg.intermediate_size, h)?,
                out_norm: LayerNorm::load(w, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        let relative_bias = w.get(
            "encoder.relative_attention_bias.weight",
            &[cfg.relative_attention_num_buckets, cfg.num_attention_heads],
        )?;
        Ok(Self {
            word,
            position,
            emb_norm,
            layers,
            relative_bias,
            buckets: cfg.relative_attention_num_buckets,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            hidden: h,
            pad_id: cfg.pad_token_id,
        })
    }

    /// (batch, seq) position ids: `pad + 1, pad + 2, …` over the non-padding ids, `pad` for each
    /// padding id.
    fn position_ids(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let rows = ids.to_vec2::<u32>()?;
        let (b, s) = ids.dims2()?;
        let mut out = Vec::with_capacity(b * s);
        for row in rows {
            let mut seen = 0;
            for id in row {
                if id == self.pad_id {
                    out.push(self.pad_id);
                } else {
                    seen += 1;
                    out.push(self.pad_id + seen);
                }
            }
        }
        Tensor::from_vec(out, (b, s), ids.device())
    }

    /// The relative position bias of a `seq`-long input, (1, heads, seq, seq).
    fn position_bias(&self, seq: usize) -> candle_core::Result<Tensor> {
        let mut buckets = Vec::with_capacity(seq * seq);
        for query in 0..seq {
            for key in 0..seq {
                buckets.push(relative_bucket(key as i64 - query as i64, self.buckets) as u32);
            }
        }
        let buckets = Tensor::from_vec(buckets, seq * seq, self.relative_bias.device())?;
        self.relative_bias
            .index_select(&buckets, 0)? // (seq*seq, heads)
            .t()?
            .reshape((1, self.heads, seq, seq))
    }
}

/// HF `MPNetEncoder.relative_position_bucket` for `relative` = key position − query position:
/// half the buckets for keys before (or at) the query, half for keys after; exact up to a
/// quarter of the buckets, then logarithmic up to [`MAX_DISTANCE`]. HF evaluates the logarithm
/// in f32; so does this (the buckets agree with HF's for every |relative| ≤ 1000, checked by
/// the reference scripts).
pub fn relative_bucket(relative: i64, buckets: usize) -> usize {
    let half = buckets / 2;
    let mut bucket = if relative > 0 { half } else { 0 };
    let distance = relative.unsigned_abs() as usize;
    let exact = half / 2;
    if distance < exact {
        bucket += distance;
    } else {
        let log = ((distance as f32 / exact as f32).ln()
            / (MAX_DISTANCE as f32 / exact as f32).ln()
            * (half - exact) as f32) as usize;
        bucket += (exact + log).min(half - 1);
    }
    bucket
}

impl Encoder for Mpnet {
    fn embed(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let word = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, s, self.hidden))?;
        let pos = self
            .position
            .index_select(&self.position_ids(ids)?.flatten_all()?, 0)?
            .reshape((b, s, self.hidden))?;
        let mut x = self.emb_norm.forward(&(word + pos)?)?;

        let bias = padding_bias(mask)?.broadcast_add(&self.position_bias(s)?)?; // (b, heads, s, s)
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?; // (b, s, 3h)
            let split = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(D::Minus1, i * self.hidden, self.hidden)?
                    .reshape((b, s, self.heads, self.head_dim))?
                    .transpose(1, 2)? // (b, heads, s, head_dim)
                    .contiguous()
            };
            let q = (split(0)? * scale)?;
            let k = split(1)?;
            let v = split(2)?;
            let scores = q.matmul(&k.t()?)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, s, self.hidden))?;
            let attn = layer
                .attn_norm
                .forward(&(layer.attn_out.forward(&ctx)? + &x)?)?;
            let inter = layer.intermediate.forward(&attn)?.gelu_erf()?;
            x = layer
                .out_norm
                .forward(&(layer.out.forward(&inter)? + &attn)?)?;
        }
        mean_pool_normalized(&x.to_dtype(DType::F32)?, mask)
    }

    fn pad_id(&self) -> u32 {
        self.pad_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_buckets_are_hugging_faces() {
        // The ranges of models/all-mpnet-base-v2/reference/README.md (32 buckets).
        let expect = |d: i64| -> usize {
            let m = d.unsigned_abs();
            let b = match m {
                0..=7 => m as usize,
                8..=11 => 8,
                12..=15 => 9,
                16..=22 => 10,
                23..=31 => 11,
                32..=45 => 12,
                46..=63 => 13,
                64..=90 => 14,
                _ => 15,
            };
            if d > 0 {
                16 + b
            } else {
                b
            }
        };
        for d in -1000..=1000 {
            assert_eq!(relative_bucket(d, 32), expect(d), "relative position {d}");
        }
    }
}
