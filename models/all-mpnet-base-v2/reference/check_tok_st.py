"""Check tests/data/embedding/mpnet_tokenizer_cases.jsonl (made with the bare `tokenizers` library
and tokenizer.json) against the tokenizer sentence-transformers actually builds for the model
(transformers' MPNetTokenizer from the whole model folder, tokenizer_config.json included, and
sentence-transformers' own preprocessing: strip, truncation to max_seq_length 384).

    MPNET_ST_DIR=/path/to/unzipped/all-mpnet-base-v2 python3 check_tok_st.py
"""
import json
import os
import sys
from pathlib import Path

from sentence_transformers import SentenceTransformer

cases = Path(__file__).resolve().parents[3] / "tests/data/embedding/mpnet_tokenizer_cases.jsonl"
st = SentenceTransformer(os.environ["MPNET_ST_DIR"], device="cpu")
bad = 0
n = 0
for line in cases.read_text(encoding="utf-8").split("\n")[:-1]:  # not splitlines(): texts hold U+2028 etc.
    case = json.loads(line)
    got = st.tokenize([case["text"]])["input_ids"][0].tolist()
    n += 1
    if got != case["ids384"]:
        bad += 1
        if bad <= 10:
            print("DIFFERS", repr(case["text"][:80]), case["ids384"][:12], got[:12])
print(f"{n} cases, {bad} differ from sentence-transformers' tokenizer")
sys.exit(1 if bad else 0)
