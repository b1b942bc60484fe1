//! The building blocks every transformer encoder here is made of, on candle's CPU tensors: a
//! linear layer, layer normalisation, the sentence-transformers pooling (mean over real tokens,
//! then unit length), and the padded batch of token ids. An encoder file ([`super::mpnet`])
//! only wires them together in its model's order.

use candle_core::{DType, Device, Module, Tensor};

use super::weights::Weights;
use super::EmbedError;

/// y = x W^T + b, as one gemm over all batch*seq rows (candle_nn::Linear broadcasts W^T per
/// batch instead). W^T is kept contiguous (in, out), decoded that way at load: it halves the
/// latency of a short query, where gemm would otherwise re-pack the strided weights on every call.
pub struct Linear {
    w_t: Tensor,
    b: Tensor,
}

impl Linear {
    /// From W^T, already (in, out) and contiguous ([`Weights::get_transposed`]), and the bias.
    pub fn from_transposed(w_t: Tensor, b: Tensor) -> Self {
        Self { w_t, b }
    }

    /// `{prefix}.weight` [out, inp] and `{prefix}.bias` [out].
    pub fn load(
        w: &mut Weights<'_>,
        prefix: &str,
        inp: usize,
        out: usize,
    ) -> Result<Self, EmbedError> {
        let w_t = w.get_transposed(&[&format!("{prefix}.weight")], out, inp)?;
        let bias = w.get(&format!("{prefix}.bias"), &[out])?;
        Ok(Linear::from_transposed(w_t, bias))
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

pub struct LayerNorm {
    gamma: Tensor,
    beta: Tensor,
    eps: f32,
}

impl LayerNorm {
    /// `{prefix}.weight` and `{prefix}.bias`, both [dim]; `eps` from the model's config (models
    /// differ: 1e-12 for BERT, 1e-5 for MPNet, and the difference shows in the vectors).
    pub fn load(
        w: &mut Weights<'_>,
        prefix: &str,
        dim: usize,
        eps: f64,
    ) -> Result<Self, EmbedError> {
        Ok(LayerNorm {
            gamma: w.get(&format!("{prefix}.weight"), &[dim])?,
            beta: w.get(&format!("{prefix}.bias"), &[dim])?,
            eps: eps as f32,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // candle-nn's fused CPU kernel (mean/var in f32 per row).
        candle_nn::ops::layer_norm(x, &self.gamma, &self.beta, self.eps)
    }
}

/// Mean pooling over real tokens, then L2 normalisation (as sentence-transformers'
/// Pooling(mean) + Normalize; the 1e-12 floor mirrors torch.nn.functional.normalize).
/// `x` is (batch, seq, hidden), `mask` (batch, seq) with 1 for real tokens.
pub fn mean_pool_normalized(x: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (b, s, 1)
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

/// Additive attention bias over keys, (batch, 1, 1, seq): 0 for real tokens, a huge negative for
/// padding (HF uses dtype::MIN), broadcast over heads and query rows. Padded query rows compute
/// garbage that the mean pooling then ignores.
pub fn padding_bias(mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, s) = mask.dims2()?;
    let maskf = mask.to_dtype(DType::F32)?;
    ((maskf.ones_like()? - &maskf)? * f32::MIN as f64)?.reshape((b, 1, 1, s))
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
