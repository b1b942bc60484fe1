"""Calibration study for insight-bot's three-way answer (strong / weak / none) with
all-mpnet-base-v2 (int8 weights run in float32, as the Rust bot runs them).

    python calibrate.py --embed     # embed every text the study needs (cached, resumable)
    python calibrate.py             # the figures of the report (from the cache; embeds what is missing)

Embeddings are cached in $CALIB_DIR (default /work/calibration): texts.json + vectors.npy.
What is embedded mirrors the bot (src/insights/search):
- a question: trimmed, abbreviations expanded exactly like normalize::expand_abbreviations, and, when
  it has more than 30 words, also its first 5 sentences (normalize::sentences, >= 3 words each, only
  if there are >= 2 of them); each similarity is the best over these vectors;
- an insight: documents f"{title}. {text}" and each ask; similarity = max cosine over its documents;
- the gate's anchors: non-comment lines of on_topic_anchors.txt / off_topic_anchors.txt, raw.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
CALIB = Path(os.environ.get("CALIB_DIR", "/work/calibration"))
SEARCH = REPO / "src/insights/search"
EVAL = REPO / "tests/data/eval"

LONG_MESSAGE_WORDS = 30
MAX_SENTENCES = 5
MIN_SENTENCE_WORDS = 3
MAX_ANALYSED_CHARS = 4000

# ----------------------------------------------------------------------------------------------
# Question normalisation (port of src/insights/search/normalize.rs and mod.rs Question::read)

_ABBR = tomllib.loads((SEARCH / "abbreviations.toml").read_text())["expand"]


def _strip_core(raw):
    keep = lambda c: c.isalnum() or c in ":/-"
    i, j = 0, len(raw)
    while i < j and not keep(raw[i]):
        i += 1
    while j > i and not keep(raw[j - 1]):
        j -= 1
    core = raw[i:j]
    return core.rstrip(":/-")


def expand_abbreviations(q):
    out = []
    for raw in q.split():
        core = _strip_core(raw)
        exp = _ABBR.get(core.lower()) if core else None
        at = raw.find(core) if core else -1
        if exp is not None and at >= 0:
            out.append(raw[:at] + exp + raw[at + len(core):])
        else:
            out.append(raw)
    return " ".join(out)


def sentences(text):
    import re
    parts = [p.strip() for p in re.split(r"[.!?;\n]", text)]
    return [p for p in parts if len(p.split()) >= MIN_SENTENCE_WORDS]


def question_texts(q):
    """What the bot embeds for a question: the normalised question, then its sentences."""
    t = q.strip()[:MAX_ANALYSED_CHARS]
    norm = expand_abbreviations(t)
    sents = []
    if len(norm.split()) > LONG_MESSAGE_WORDS:
        a = sentences(norm)
        if len(a) >= 2:
            sents = a[:MAX_SENTENCES]
    return [norm] + sents


# ----------------------------------------------------------------------------------------------
# Data

def anchor_lines(path):
    return [l.strip() for l in Path(path).read_text().splitlines()
            if l.strip() and not l.strip().startswith("#")]


ON_ANCHORS = anchor_lines(SEARCH / "on_topic_anchors.txt")
OFF_ANCHORS = anchor_lines(SEARCH / "off_topic_anchors.txt")


def load_collection(path):
    data = tomllib.loads(Path(path).read_text())
    out = []
    for ins in data["insight"]:
        docs = [f"{ins['title']}. {ins['text']}"] + list(ins.get("asks", []))
        out.append({"id": ins["id"], "docs": docs, "asks": list(ins.get("asks", []))})
    return out


PACK_IDS = sorted(p.name for p in (REPO / "data/packs").iterdir()
                  if (p / "insights.toml").exists() and p.name != "ic-and-management")
SEED = load_collection(REPO / "data/packs/ic-and-management/insights.toml")
FEEDBACK = load_collection(REPO / "tests/data/feedback/insights.toml")
PACKS = {p: load_collection(REPO / f"data/packs/{p}/insights.toml") for p in PACK_IDS}
LIBRARY = SEED + [i for p in PACK_IDS for i in PACKS[p]]


def read_tsv(path, three_class):
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split("\t")
        if three_class:
            q, cls, ids = f[0], f[1], f[2] if len(f) > 2 else "-"
            ids = [] if ids.strip() in ("-", "") else [x.strip() for x in ids.split(",")]
        else:
            q, ids = f[0], f[1]
            if ids.strip() == "NONE":
                cls, ids = "offtopic", []
            else:
                cls, ids = "covered", [x.strip() for x in ids.split(",")]
        rows.append((q, cls, ids))
    return rows


THREE = {f"{c}_{s}": read_tsv(EVAL / f"three_class/{c}_{s}.tsv", True)
         for c in ("seed", "feedback") for s in ("tuning", "heldout")}
PACK_EVAL = {p: read_tsv(EVAL / f"packs/{p}.tsv", False) for p in PACK_IDS}
OLD2 = {n: read_tsv(EVAL / f"{n}.tsv", False) for n in
        ("tuning_discord", "tuning_plain", "tuning_blind", "dev_questions", "heldout_discord", "heldout_plain")}


def all_texts():
    texts = list(ON_ANCHORS) + list(OFF_ANCHORS)
    for coll in [SEED, FEEDBACK] + [PACKS[p] for p in PACK_IDS]:
        for ins in coll:
            texts += ins["docs"]
    qs = [q for rows in list(THREE.values()) + list(PACK_EVAL.values()) + list(OLD2.values()) for q, _, _ in rows]
    for q in qs:
        texts += question_texts(q)
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


# ----------------------------------------------------------------------------------------------
# Embedding cache

class Cache:
    def __init__(self):
        self.tp, self.vp = CALIB / "texts.json", CALIB / "vectors.npy"
        if self.tp.exists() and self.vp.exists():
            self.texts = json.loads(self.tp.read_text())
            self.vecs = list(np.load(self.vp))
            assert len(self.texts) == len(self.vecs)
        else:
            self.texts, self.vecs = [], []
        self.index = {t: i for i, t in enumerate(self.texts)}

    def save(self):
        CALIB.mkdir(parents=True, exist_ok=True)
        np.save(self.vp.with_suffix(".tmp.npy"), np.array(self.vecs, dtype=np.float32))
        os.replace(self.vp.with_suffix(".tmp.npy"), self.vp)
        self.tp.with_suffix(".tmp").write_text(json.dumps(self.texts))
        os.replace(self.tp.with_suffix(".tmp"), self.tp)

    def ensure(self, texts, chunk=32):
        missing = [t for t in dict.fromkeys(texts) if t not in self.index]
        if not missing:
            return
        sys.path.insert(0, str(HERE))
        from numpy_mpnet import load_model, token_ids, encode_many
        w, cfg, tok = load_model("int8", dtype=np.float32)
        # short texts first: similar lengths per chunk
        missing.sort(key=lambda t: len(token_ids(tok, t)))
        t0 = time.time()
        for c in range(0, len(missing), chunk):
            part = missing[c:c + chunk]
            vecs = encode_many(w, cfg, [token_ids(tok, t) for t in part], chunk=chunk)
            for t, v in zip(part, vecs):
                self.index[t] = len(self.texts)
                self.texts.append(t)
                self.vecs.append(np.asarray(v, dtype=np.float32))
            self.save()
            done = c + len(part)
            print(f"[embed] {done}/{len(missing)} {done / (time.time() - t0):.1f} texts/s", flush=True)

    def matrix(self, texts):
        return np.stack([self.vecs[self.index[t]] for t in texts]) if texts else np.zeros((0, 768), np.float32)




# ----------------------------------------------------------------------------------------------
# Features

class Ctx:
    """Embedded anchors, and a way to embed questions (all from the cache)."""

    def __init__(self, cache):
        self.cache = cache
        self.on = cache.matrix(ON_ANCHORS)
        self.off = cache.matrix(OFF_ANCHORS)

    def q(self, question):
        return self.cache.matrix(question_texts(question))


class Coll:
    """A collection as the bot indexes it, plus what is computed once per collection at index time."""

    def __init__(self, ctx, insights):
        self.ids = [i["id"] for i in insights]
        docs, owner, is_body = [], [], []
        for k, ins in enumerate(insights):
            for d_i, d in enumerate(ins["docs"]):
                docs.append(d)
                owner.append(k)
                is_body.append(d_i == 0)
        self.D = ctx.cache.matrix(docs)
        self.owner = np.array(owner)
        self.n = len(insights)
        # index time: each on-topic anchor's best similarity to the collection (any document)
        self.anchor_cov = (ctx.on @ self.D.T).max(1)
        self.anchor_cov_ask = np.where(np.array(is_body)[None, :], -1, ctx.on @ self.D.T).max(1)

    def insight_sims(self, Q):
        S = (Q @ self.D.T).max(0)  # best over question vectors
        out = np.full(self.n, -1.0, dtype=np.float32)
        np.maximum.at(out, self.owner, S)
        return out


def feats(ctx, coll, question):
    Q = ctx.q(question)
    sims = coll.insight_sims(Q)
    order = np.argsort(-sims)
    on = (Q @ ctx.on.T)            # nq x n_on
    off = (Q @ ctx.off.T)
    # the bot's gate: per question vector, margin = max(best insight, best on anchor) - best off
    best_ins_per_q = np.array([(Qi @ coll.D.T).max() for Qi in Q])
    margins = np.maximum(best_ins_per_q, on.max(1)) - off.max(1)
    k = int(np.argmax(margins))
    return dict(
        sims=sims, order=order, top=[coll.ids[i] for i in order[:3]],
        s1=float(sims[order[0]]), s2=float(sims[order[1]]) if coll.n > 1 else -1.0,
        on=on.max(0), a=float(on.max()), o=float(off.max()),
        margin=float(margins[k]), gate_ins=float(best_ins_per_q[k]),
        off_sorted=np.sort(off.max(0))[::-1][:10], on_sorted=np.sort(on.max(0))[::-1][:10],
    )


def auc(pos, neg):
    """P(score(pos) > score(neg)), ties half."""
    pos, neg = np.asarray(pos), np.asarray(neg)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + eq / 2)


# ----------------------------------------------------------------------------------------------
# The rule

RULE = dict(
    K=5,          # gate: mean of the K best of {on-topic anchor sims} + {s1} vs mean of the K best off-topic anchor sims
    MARGIN=0.04,  # gate margin (none below)
    FLOOR=0.0,    # gate floor on the best insight similarity (0 = no floor)
    COVERED=0.45, # index time: an on-topic anchor is "covered" when some document of the collection is >= this close
    DELTA=0.07,   # weak when (best uncovered on-topic anchor) - (best insight) > DELTA
)


def decide(f, coll, r=RULE):
    """-> 'strong' | 'weak' | 'none' for one question's features f against collection coll."""
    k = r["K"]
    pos = np.append(f["on"], f["s1"])   # every on-topic anchor's similarity, and the best insight's
    gate = np.sort(pos)[::-1][:k].mean() - f["off_sorted"][:k].mean()
    if gate < r["MARGIN"] or f["s1"] < r["FLOOR"]:
        return "none"
    uncovered = coll.anchor_cov < r["COVERED"]
    a_unc = f["on"][uncovered].max() if uncovered.any() else -1.0
    return "weak" if a_unc - f["s1"] > r["DELTA"] else "strong"


# ----------------------------------------------------------------------------------------------
# Evaluation

CLASSES = ("covered", "uncovered", "offtopic")
OUTCOMES = ("strong", "weak", "none")


def evaluate(ctx, coll, rows, r=RULE):
    """rows: (question, class, acceptable ids) -> confusion dict, top-1 on covered, details."""
    conf = {c: {o: 0 for o in OUTCOMES} for c in CLASSES}
    top1, n_cov, details = 0, 0, []
    for q, cls, ids in rows:
        f = feats(ctx, coll, q)
        out = decide(f, coll, r)
        conf[cls][out] += 1
        if cls == "covered":
            n_cov += 1
            top1 += f["top"][0] in ids
        details.append((q, cls, ids, out, f))
    return conf, (top1 / n_cov if n_cov else float("nan")), details


def fmt_conf(conf):
    lines = ["              strong  weak  none   n"]
    for c in CLASSES:
        n = sum(conf[c].values())
        if n:
            lines.append(f"  {c:10s} " + " ".join(f"{conf[c][o]:5d}" for o in OUTCOMES) + f" {n:4d}")
    return "\n".join(lines)


def rates(conf):
    n = lambda c: max(sum(conf[c].values()), 1)
    return dict(cov_strong=conf["covered"]["strong"] / n("covered"),
                cov_none=conf["covered"]["none"] / n("covered"),
                unc_caught=(conf["uncovered"]["weak"] + conf["uncovered"]["none"]) / n("uncovered"),
                unc_weak=conf["uncovered"]["weak"] / n("uncovered"),
                off_none=conf["offtopic"]["none"] / n("offtopic"))


def fmt_rates(conf):
    r = rates(conf)
    return (f"covered strong {r['cov_strong']:.1%} (none {r['cov_none']:.1%}); uncovered caught {r['unc_caught']:.1%} "
            f"(as weak {r['unc_weak']:.1%}); off-topic none {r['off_none']:.1%}")


def offtopic_rows(heldout=True):
    """The off-topic lines of the three-class sets (only the tuning ones unless heldout)."""
    return [(q, c, ids) for n in THREE if heldout or n.endswith("tuning") for q, c, ids in THREE[n] if c == "offtopic"]


def random_collections(n, seed):
    """n collections of 5 insights: even ones from one pack, odd ones from the union of two packs."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        packs = [PACK_IDS[rng.integers(len(PACK_IDS))]] if k % 2 == 0 else list(rng.choice(PACK_IDS, 2, replace=False))
        pool = [i for p in packs for i in PACKS[p]]
        out.append((packs, [pool[j] for j in rng.choice(len(pool), 5, replace=False)]))
    return out


def random_rows(packs, coll, heldout=True):
    """Per-pack held-out questions: covered if an acceptable id is in coll, else uncovered
    (sub-class 'same' when the question comes from one of the collection's packs); plus off-topic."""
    ids = set(coll.ids)
    rows, sub = [], []
    for p in PACK_IDS:
        for q, _, acc in PACK_EVAL[p]:
            if set(acc) & ids:
                rows.append((q, "covered", acc)); sub.append("covered")
            else:
                rows.append((q, "uncovered", acc)); sub.append("same" if p in packs else "other")
    off = offtopic_rows(heldout)
    rows += off; sub += ["offtopic"] * len(off)
    return rows, sub


def add(c1, c2):
    return {c: {o: c1[c][o] + c2[c][o] for o in OUTCOMES} for c in CLASSES}


def report(ctx, r=RULE, heldout=True, n_random=30, seed=2026):
    print("RULE", r)
    colls = {"seed": Coll(ctx, SEED), "feedback": Coll(ctx, FEEDBACK)}
    names = [n for n in THREE if heldout or n.endswith("tuning")]
    for n in names:
        conf, top1, det = evaluate(ctx, colls[n.split("_")[0]], THREE[n], r)
        print(f"\n== {n}: top-1 on covered {top1:.1%}\n{fmt_conf(conf)}\n  {fmt_rates(conf)}")
    # old 2-class sets (seed collection): covered vs off-topic
    for n in OLD2:
        if not heldout and n.startswith("heldout"):
            continue
        conf, top1, _ = evaluate(ctx, colls["seed"], OLD2[n], r)
        print(f"== old {n}: top-1 {top1:.1%}; {fmt_rates(conf)}")
    # whole library
    lib = Coll(ctx, LIBRARY)
    rows = [(q, "covered", ids) for p in PACK_IDS for q, _, ids in PACK_EVAL[p]] + offtopic_rows(heldout)
    conf, top1, det = evaluate(ctx, lib, rows, r)
    top3 = np.mean([any(t in ids for t in f["top"][:3]) for q, c, ids, o, f in det if c == "covered"])
    print(f"\n== whole library ({len(LIBRARY)} insights), per-pack sets + {'all' if heldout else 'tuning'} off-topic lines of the three-class sets: "
          f"top-1 {top1:.1%} top-3 {top3:.1%}\n{fmt_conf(conf)}\n  {fmt_rates(conf)}")
    if "-v" in sys.argv:
        for q, c, ids, o, f in det:
            if (c == "offtopic") != (o == "none"):
                print(f"   MISS {c} -> {o}: s1={f['s1']:.3f} a={f['a']:.3f} o={f['o']:.3f} {q}")
    print(f"   library anchors covered (cov >= {r['COVERED']}): {(lib.anchor_cov >= r['COVERED']).sum()}/{len(ON_ANCHORS)}")
    # random 5-insight collections
    tot = {c: {o: 0 for o in OUTCOMES} for c in CLASSES}
    same = {o: 0 for o in OUTCOMES}
    per = []
    for packs, pick in random_collections(n_random, seed):
        coll = Coll(ctx, pick)
        rows, sub = random_rows(packs, coll, heldout)
        conf, _, det = evaluate(ctx, coll, rows, r)
        for s, d in zip(sub, det):
            if s == "same":
                same[d[3]] += 1
        tot = add(tot, conf)
        per.append(rates(conf)["cov_strong"])
    ns = sum(same.values())
    print(f"\n== {n_random} random 5-insight collections (seed {seed}; one or two packs)\n{fmt_conf(tot)}\n  {fmt_rates(tot)}"
          f"\n  uncovered from the same pack(s): caught {(same['weak'] + same['none']) / ns:.1%} "
          f"(weak {same['weak'] / ns:.1%}, none {same['none'] / ns:.1%}, n={ns})")



# ----------------------------------------------------------------------------------------------
# The study: what was compared, on TUNING data only (three-class *_tuning sets, the old 2-class
# tuning sets, and 20 random 5-insight collections drawn with seed 1, scored with the per-pack
# questions and the tuning off-topic lines). The report's random collections use another seed.

def _dev_features(ctx):
    colls = {"seed": Coll(ctx, SEED), "feedback": Coll(ctx, FEEDBACK)}
    F = {}
    for n in ("seed_tuning", "feedback_tuning"):
        c = colls[n.split("_")[0]]
        F[n] = [(cls, feats(ctx, c, q), c, "") for q, cls, ids in THREE[n]]
    F["old2"] = [(cls, feats(ctx, colls["seed"], q), colls["seed"], "") for n in
                 ("tuning_discord", "tuning_plain", "tuning_blind", "dev_questions") for q, cls, ids in OLD2[n]]
    lib = Coll(ctx, LIBRARY)
    F["library"] = [(cls, feats(ctx, lib, q), lib, "") for q, cls, ids in
                    [(q, "covered", ids) for p in PACK_IDS for q, _, ids in PACK_EVAL[p]] + offtopic_rows(False)]
    F["rand"] = []
    for packs, pick in random_collections(20, 1):
        c = Coll(ctx, pick)
        rows, sub = random_rows(packs, c, False)
        F["rand"] += [(cls, feats(ctx, c, q), c, s) for (q, cls, ids), s in zip(rows, sub)]
    return F


def study(ctx):
    F = _dev_features(ctx)

    def a_unc(f, c, cover):
        m = cover < c
        return f["on"][m].max() if m.any() else -1.0

    print("== covered-vs-uncovered AUC of weak scores (higher = more covered); columns: seed_tuning, "
          "feedback_tuning, random collections (all uncovered), random (uncovered from the same packs only)")
    V = {"s1": lambda f, co: f["s1"], "s1-s2": lambda f, co: f["s1"] - f["s2"],
         "s1-a (all anchors)": lambda f, co: f["s1"] - f["a"]}
    for c in (0.40, 0.45, 0.50, 0.55, 0.60):
        V[f"s1-a_unc(c={c})"] = (lambda c: lambda f, co: f["s1"] - a_unc(f, c, co.anchor_cov))(c)
    for c in (0.45,):
        for lam in (0.5, 0.75):
            V[f"s1-{lam}*a_unc(c={c})"] = (lambda c, lam: lambda f, co: f["s1"] - lam * a_unc(f, c, co.anchor_cov))(c, lam)
    V["s1-0.5*a (all anchors)"] = lambda f, co: f["s1"] - 0.5 * f["a"]
    for k in (3, 5):
        V[f"s1-mean top{k} anchors"] = (lambda k: lambda f, co: f["s1"] - f["on_sorted"][:k].mean())(k)
    tight = {}
    for ins in SEED + FEEDBACK + LIBRARY:
        D = ctx.cache.matrix(ins["docs"]); S = D @ D.T; np.fill_diagonal(S, -1)
        tight[ins["id"]] = float(np.mean(S.max(1)[1:]))
    V["s1-ask tightness"] = lambda f, co: f["s1"] - tight[f["top"][0]]
    V["s1/ask tightness"] = lambda f, co: f["s1"] / tight[f["top"][0]]
    for name, fn in V.items():
        out = []
        for n in ("seed_tuning", "feedback_tuning", "rand"):
            out.append(auc([fn(f, co) for c, f, co, s in F[n] if c == "covered"],
                           [fn(f, co) for c, f, co, s in F[n] if c == "uncovered"]))
        out.append(auc([fn(f, co) for c, f, co, s in F["rand"] if c == "covered"],
                       [fn(f, co) for c, f, co, s in F["rand"] if s == "same"]))
        print(f"  {name:28s}", " ".join(f"{x:.3f}" for x in out))

    print("\n== gate variants: none rate per class (off-topic should be high, covered low)")
    G = {"bot (k=1: max(s1,a)-o)": lambda f: max(f["s1"], f["a"]) - f["o"]}
    for k in (3, 5):
        G[f"top{k} of on-anchors+all insights"] = (lambda k: lambda f: np.sort(np.concatenate([f["sims"], f["on"]]))[::-1][:k].mean() - f["off_sorted"][:k].mean())(k)
        G[f"top{k} of on-anchors+s1"] = (lambda k: lambda f: np.sort(np.append(f["on"], f["s1"]))[::-1][:k].mean() - f["off_sorted"][:k].mean())(k)
        G[f"top{k} of on-anchors only"] = (lambda k: lambda f: f["on_sorted"][:k].mean() - f["off_sorted"][:k].mean())(k)
    for name, fn in G.items():
        for M in (0.0, 0.02, 0.04, 0.06):
            out = []
            for n in ("seed_tuning", "feedback_tuning", "old2", "library", "rand"):
                off = np.mean([fn(f) < M for c, f, co, s in F[n] if c == "offtopic"])
                cov = np.mean([fn(f) < M for c, f, co, s in F[n] if c == "covered"])
                out.append(f"{n[:5]} off {off:.2f} cov {cov:.3f}")
            print(f"  {name:34s} M={M:.2f} | " + " | ".join(out))

    print("\n== the chosen rule around its constants: covered strong / uncovered caught")
    for cv in (0.40, 0.45, 0.50):
        for d in (0.05, 0.07, 0.09):
            r = dict(RULE, COVERED=cv, DELTA=d)
            out = []
            for n in ("seed_tuning", "feedback_tuning", "rand"):
                o = [(c, decide(f, co, r), s) for c, f, co, s in F[n]]
                out.append(f"{n[:5]} {np.mean([x == 'strong' for c, x, s in o if c == 'covered']):.2f}/"
                           f"{np.mean([x != 'strong' for c, x, s in o if c == 'uncovered']):.2f}")
            same = np.mean([x != 'strong' for c, x, s in o if s == 'same'])
            print(f"  COVERED={cv:.2f} DELTA={d:.2f} | " + " | ".join(out) + f" | rand same-pack caught {same:.2f}")


if __name__ == "__main__":
    cache = Cache()
    cache.ensure(all_texts())
    if "--embed" in sys.argv:
        sys.exit(0)
    ctx = Ctx(cache)
    if "--study" in sys.argv:
        study(ctx)
    else:
        report(ctx, heldout="--tuning-only" not in sys.argv)
