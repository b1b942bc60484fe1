"""Cross-check numpy_mpnet.py (float64, original f32 weights) against sentence-transformers with
torch on the same original model folder, and HF's relative_position_bucket against ours.

    MPNET_ST_DIR=/path/to/unzipped/all-mpnet-base-v2 python3 check_st.py

Needs torch, transformers, sentence-transformers (see README.md for how torch was run here).
Prints per-sentence cosine and max |diff|; exits non-zero if any cosine < 0.99999 or any id differs.
"""
import os
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_mpnet import load_model, encode, token_ids, relative_position_bucket, MAX_LEN
from sentences import SENTENCES, LONG

EXTRA = [
    "<pad>", "a <pad> b <pad> c", "<s> hello </s>", "x <mask> y", "x<mask>y", "<UNK> and <unk> and [UNK]",
    "[CLS] [SEP] [MASK] [PAD]", "<S> upper-case specials </S> <PAD> <MASK>", "#### ##ing", LONG * 2,
]

rel = np.arange(-1000, 1001)
hf = MPNetEncoder.relative_position_bucket(torch.from_numpy(rel)).numpy()
ours = relative_position_bucket(rel)
print(f"relative_position_bucket: {int((hf != ours).sum())} of {len(rel)} distances differ from HF (|d| <= 1000)")
bad = int((hf != ours).sum())

st = SentenceTransformer(os.environ["MPNET_ST_DIR"], device="cpu")
print("sentence-transformers max_seq_length:", st.max_seq_length)
assert st.max_seq_length == MAX_LEN
w, cfg, tok = load_model("f32")
cosines, diffs = [], []
for s in list(SENTENCES) + EXTRA:
    ids = token_ids(tok, s)
    st_ids = st.tokenize([s])["input_ids"][0].tolist()
    if ids != st_ids:
        print("TOKEN IDS DIFFER", repr(s[:60]), ids[:20], st_ids[:20])
        bad += 1
    ref = st.encode([s], batch_size=1, convert_to_numpy=True)[0].astype(np.float64)
    e = encode(w, cfg, ids)
    cos = float(e @ ref / np.linalg.norm(ref))
    diff = float(np.abs(e - ref).max())
    cosines.append(cos)
    diffs.append(diff)
    print(f"{len(ids):4d} cos {cos:.10f} max|diff| {diff:.2e}  {s[:50]!r}")
    if cos < 0.99999:
        bad += 1
print(f"{len(cosines)} sentences: min cosine {min(cosines):.10f}, max |diff| {max(diffs):.2e}; problems: {bad}")
sys.exit(1 if bad else 0)
