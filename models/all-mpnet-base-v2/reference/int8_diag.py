"""Which matrices does the int8 loss come from? Quantizes (as convert.py does) only one group of
matrices at a time, the rest staying f32, and prints the int8-vs-f32 cosine over the fixture
sentences (numpy float32 compute, for speed). Also tries alternatives to one scale per row (none
of them shipped): one scale per column (per input feature), one scale per 64- or 128-wide group
of each row, W2 alone per 64-wide group, W2 left in f32.

    MPNET_WHEELS=/dir/with/the/five/wheels python3 int8_diag.py     # DIAG_ONLY=8 skips variants 0-7
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from convert import quantize_rows
from numpy_mpnet import load_model, encode_many, token_ids
from sentences import SENTENCES

w, cfg, tok = load_model("f32", dtype=np.float32)
ids = [token_ids(tok, s) for s in SENTENCES]
ref = encode_many(w, cfg, ids)


def deq_rows(t):
    q, s = quantize_rows(t)
    return (q.astype(np.float64) * s.astype(np.float64)[:, None]).astype(np.float32)


def deq_cols(t):
    return deq_rows(t.T).T


def deq_group64(t):
    r, c = t.shape
    return deq_rows(t.reshape(r * c // 64, 64)).reshape(r, c)


def deq_group128(t):
    r, c = t.shape
    return deq_rows(t.reshape(r * c // 128, 128)).reshape(r, c)


groups = {
    "embeddings (word+position)": lambda n: n.startswith("embeddings.") and n.endswith("embeddings.weight"),
    "attention q,k,v": lambda n: ".attn.q." in n or ".attn.k." in n or ".attn.v." in n,
    "attention o": lambda n: ".attn.o." in n,
    "FFN intermediate (W1)": lambda n: "intermediate.dense.weight" in n,
    "FFN output (W2)": lambda n: "output.dense.weight" in n and "attention" not in n,
}
all2d = lambda n: any(g(n) for g in groups.values())
only = os.environ.get("DIAG_ONLY")  # "8" or "8-": run variants 8 onwards
variants = [(f"only {k}, per row", v, deq_rows) for k, v in groups.items()]
variants += [("all, per row (the shipped format)", all2d, deq_rows),
             ("all, per column", all2d, deq_cols),
             ("all, per row per 64-wide group", all2d, deq_group64),
             ("all but FFN output (W2 stays f32), per row", lambda n: all2d(n) and not groups["FFN output (W2)"](n), deq_rows),
             ("all per row, W2 per 64-wide group", all2d,
              lambda t: deq_group64(t) if t.shape == (768, 3072) else deq_rows(t)),
             ("all, per row per 128-wide group", all2d, deq_group128)]
if only:
    variants = variants[int(only.rstrip("-")):]
for label, pick, deq in variants:
    w2 = {n: (deq(t) if t.ndim == 2 and pick(n) else t) for n, t in w.items()}
    out = encode_many(w2, cfg, ids)
    cos = np.array([float(a @ b) for a, b in zip(ref, out)])
    worst = np.argsort(cos)[:3]
    print(f"{label:40s} min {cos.min():.6f} median {np.median(cos):.6f}  worst: "
          + ", ".join(f"{SENTENCES[i][:20]!r} {cos[i]:.4f}" for i in worst), flush=True)
