"""The fixture's sentences: the all-MiniLM-L6-v2 reference's own list (read from that folder, not
copied), so that both models are checked on the same texts."""
import importlib.util
import os

_path = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "all-MiniLM-L6-v2", "reference", "sentences.py"
)
_spec = importlib.util.spec_from_file_location("minilm_sentences", _path)
_minilm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_minilm)

SENTENCES = _minilm.SENTENCES
LONG = _minilm.LONG
