//! BERT encoder forward pass (HF `BertModel` without the pooler) on candle, CPU only.
//!
//! Matches the PyTorch reference on the points that are easy to get wrong:
//! - embeddings = word + absolute position (0..seq_len) + token_type[0] (a single sentence has
//!   token_type_ids all 0; the row must still be added), then LayerNorm;
//! - every LayerNorm uses `layer_norm_eps` from config.json (1e-12, not candle's usual 1e-5);
//! - GELU is the exact erf form (`hidden_act: "gelu"`), not the tanh approximation;
//! - padded keys get a large negative additive mask before the softmax (HF uses dtype::MIN);
//!   padded query rows compute garbage that the mean pooling then ignores.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor, D};
use serde::Deserialize;

use super::limits::Dimensions;

/// The fields of HF `config.json` that the forward pass needs; the rest are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_string()
}

impl BertConfig {
    /// Refuses configurations this forward pass does not implement.
    pub fn check(&self) -> Result<(), String> {
        if self.model_type != "bert" {
            return Err(format!(
                "model_type is {:?}, expected \"bert\"",
                self.model_type
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act is {:?}, only \"gelu\" (erf) is implemented",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not implemented",
                self.position_embedding_type
            ));
        }
        Ok(())
    }

    /// The sizes that `limits::check` bounds (it also checks that the heads divide the hidden
    /// size), before [`Bert::new`] allocates anything from them.
    pub fn dimensions(&self, max_seq_length: usize) -> Dimensions {
        Dimensions {
            num_hidden_layers: self.num_hidden_layers,
            hidden_size: self.hidden_size,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            vocab_size: self.vocab_size,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            layer_norm_eps: self.layer_norm_eps,
            max_seq_length,
        }
    }
}

/// Errors while assembling the model from named tensors; the caller adds the file path.
#[derive(Debug)]
pub enum WeightError {
    Missing(String),
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    DType {
        name: String,
        found: DType,
    },
    NonFinite(String),
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for WeightError {
    fn from(e: candle_core::Error) -> Self {
        WeightError::Candle(e)
    }
}

/// Takes named tensors out of the loaded map, checking shape and widening to `dtype`.
struct Weights {
    map: HashMap<String, Tensor>,
    dtype: DType,
}

impl Weights {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, WeightError> {
        let t = self
            .map
            .remove(name)
            .ok_or_else(|| WeightError::Missing(name.to_string()))?;
        if t.dims() != shape {
            return Err(WeightError::Shape {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.dims().to_vec(),
            });
        }
        if !matches!(t.dtype(), DType::F16 | DType::BF16 | DType::F32) {
            return Err(WeightError::DType {
                name: name.to_string(),
                found: t.dtype(),
            });
        }
        let t = t.to_dtype(self.dtype)?;
        // One sum per tensor, no copy (measured 30 ms for all 22.5M weights, once per start):
        // NaN and infinities propagate into it, and a real model's weights (|x| < 100) are far
        // too small to overflow an f32 sum, so a non-finite sum means a damaged tensor. The
        // self-check would miss most of these: a NaN in the embedding row of a token its
        // sentence lacks only shows when a question uses that token.
        let sum = t.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        if !sum.is_finite() {
            return Err(WeightError::NonFinite(name.to_string()));
        }
        Ok(t)
    }

    fn linear(&mut self, prefix: &str, inp: usize, out: usize) -> Result<Linear, WeightError> {
        let w = self.get(&format!("{prefix}.weight"), &[out, inp])?;
        let b = self.get(&format!("{prefix}.bias"), &[out])?;
        Linear::new(&w, b)
    }

    fn layer_norm(&mut self, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm, WeightError> {
        Ok(LayerNorm {
            gamma: self.get(&format!("{prefix}.weight"), &[dim])?,
            beta: self.get(&format!("{prefix}.bias"), &[dim])?,
            eps: eps as f32,
        })
    }
}

/// y = x W^T + b, as one gemm over all batch*seq rows (candle_nn::Linear broadcasts W^T per
/// batch instead). W^T is made contiguous (in, out) once at load: that costs ~40 ms of load time
/// but halves the latency of a short query (12 tokens: 6 ms vs 11 ms on one thread), where gemm
/// would otherwise re-pack the strided weights on every call.
struct Linear {
    w_t: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(w: &Tensor, b: Tensor) -> Result<Self, WeightError> {
        Ok(Self {
            w_t: w.t()?.contiguous()?,
            b,
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, i) = x.dims3()?;
        x.reshape((b * s, i))?
            .matmul(&self.w_t)?
            .broadcast_add(&self.b)?
            .reshape((b, s, ()))
    }
}

struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f32,
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // candle-nn's fused CPU kernel (mean/var in f32 per row).
        candle_nn::ops::layer_norm(x, &self.gamma, &self.beta, self.eps)
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

pub struct Bert {
    word: Tensor,
    position: Tensor,
    token_type0: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    dtype: DType,
}

impl Bert {
    /// Builds the model from the safetensors map, converting every weight to `dtype`
    /// (F32 recommended: candle's CPU f16 matmul is much slower, see the report).
    pub fn new(
        cfg: &BertConfig,
        map: HashMap<String, Tensor>,
        dtype: DType,
    ) -> Result<Self, WeightError> {
        let h = cfg.hidden_size;
        let mut w = Weights { map, dtype };
        let word = w.get("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
        let position = w.get(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        let token_type0 = w
            .get(
                "embeddings.token_type_embeddings.weight",
                &[cfg.type_vocab_size, h],
            )?
            .get(0)?;
        let emb_norm = w.layer_norm("embeddings.LayerNorm", h, cfg.layer_norm_eps)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = w.get(&format!("{p}.attention.self.query.weight"), &[h, h])?;
            let k = w.get(&format!("{p}.attention.self.key.weight"), &[h, h])?;
            let v = w.get(&format!("{p}.attention.self.value.weight"), &[h, h])?;
            let qb = w.get(&format!("{p}.attention.self.query.bias"), &[h])?;
            let kb = w.get(&format!("{p}.attention.self.key.bias"), &[h])?;
            let vb = w.get(&format!("{p}.attention.self.value.bias"), &[h])?;
            layers.push(Layer {
                qkv: Linear::new(&Tensor::cat(&[q, k, v], 0)?, Tensor::cat(&[qb, kb, vb], 0)?)?,
                attn_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: w.layer_norm(
                    &format!("{p}.attention.output.LayerNorm"),
                    h,
                    cfg.layer_norm_eps,
                )?,
                intermediate: w.linear(
                    &format!("{p}.intermediate.dense"),
                    h,
                    cfg.intermediate_size,
                )?,
                out: w.linear(&format!("{p}.output.dense"), cfg.intermediate_size, h)?,
                out_norm: w.layer_norm(&format!("{p}.output.LayerNorm"), h, cfg.layer_norm_eps)?,
            });
        }
        // Anything left over (e.g. a pooler in an unconverted file) is simply unused.
        Ok(Self {
            word,
            position,
            token_type0,
            emb_norm,
            layers,
            heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            hidden: h,
            dtype,
        })
    }

    pub fn max_positions(&self) -> usize {
        self.position.dim(0).unwrap_or(0)
    }

    /// Mean-pooled, L2-normalised sentence embeddings, shape (batch, hidden), always f32.
    /// `ids` and `mask` are (batch, seq) u32 tensors; mask is 1 for real tokens, 0 for padding.
    pub fn embed(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s) = ids.dims2()?;

        // Embeddings.
        let word = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, s, self.hidden))?;
        let pos = self.position.narrow(0, 0, s)?;
        let x = word.broadcast_add(&pos)?.broadcast_add(&self.token_type0)?;
        let mut x = self.emb_norm.forward(&x)?;

        // Additive attention bias over keys: 0 for real tokens, a huge negative for padding.
        // (b, 1, 1, s) broadcast over heads and query rows.
        let maskf = mask.to_dtype(DType::F32)?;
        let bias = ((maskf.ones_like()? - &maskf)? * f32::MIN as f64)?
            .to_dtype(self.dtype)?
            .reshape((b, 1, 1, s))?;
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
            let scores = q.matmul(&k.t()?)?.broadcast_add(&bias)?; // (b, heads, s, s)
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

        // Mean pooling over real tokens, then L2 normalisation (as sentence-transformers'
        // Pooling(mean) + Normalize; the 1e-12 floor mirrors torch.nn.functional.normalize).
        let x = x.to_dtype(DType::F32)?;
        let m = maskf.unsqueeze(2)?; // (b, s, 1)
        let summed = x.broadcast_mul(&m)?.sum(1)?; // (b, h)
        let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norm)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
}

/// Builds the (ids, mask) tensors for a batch, right-padding with `pad_id` to the longest.
pub fn batch_tensors(
    seqs: &[Vec<u32>],
    pad_id: u32,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let s = seqs.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(seqs.len() * s);
    let mut mask = Vec::with_capacity(seqs.len() * s);
    for seq in seqs {
        ids.extend_from_slice(seq);
        ids.extend(std::iter::repeat_n(pad_id, s - seq.len()));
        mask.extend(std::iter::repeat_n(1u32, seq.len()));
        mask.extend(std::iter::repeat_n(0u32, s - seq.len()));
    }
    Ok((
        Tensor::from_vec(ids, (seqs.len(), s), dev)?,
        Tensor::from_vec(mask, (seqs.len(), s), dev)?,
    ))
}
