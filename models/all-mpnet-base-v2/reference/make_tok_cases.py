"""Generate varied strings and their HF `tokenizers` ids (from all-mpnet-base-v2's tokenizer.json)
for the Rust tokenizer check. Output: the file named on the command line (default
mpnet_tokenizer_cases.jsonl), one {"text","ids","ids384"} per line (ids: untruncated, with <s>=0
and </s>=2; ids384: truncated to 384 ids as the model uses it). 5,000 strings are generated (the
same generator and seed as the all-MiniLM-L6-v2 cases, with MPNet's special-token spellings); the
fixed ones (sentences, tricky pieces, special tokens) are all kept and a seeded sample of the
generated ones fills the file to 1,000 lines, in generation order.

    python3 make_tok_cases.py ../../../tests/data/embedding/mpnet_tokenizer_cases.jsonl
"""
import json
import random
import sys
import unicodedata
from pathlib import Path

from tokenizers import Tokenizer

sys.path.insert(0, __import__("os").path.dirname(__file__))
from sentences import SENTENCES, LONG

spec = (Path(__file__).resolve().parent.parent / "tokenizer.json").read_text(encoding="utf-8")
full = Tokenizer.from_str(spec)
full.no_truncation()
full.no_padding()
trunc = Tokenizer.from_str(spec)
trunc.enable_truncation(384)
trunc.no_padding()
vocab = [t for t, _ in sorted(full.get_vocab().items(), key=lambda kv: kv[1])]
words = [t for t in vocab if t.isalpha() and not t.startswith("##")]

rng = random.Random(20260426)

RANGES = [
    (0x20, 0x7E), (0x00, 0x1F), (0x7F, 0x9F), (0xA0, 0xFF), (0x100, 0x24F), (0x250, 0x2FF),
    (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x530, 0x58F), (0x590, 0x5FF), (0x600, 0x6FF),
    (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F),
    (0x2070, 0x209F), (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2150, 0x218F), (0x2190, 0x22FF),
    (0x2460, 0x24FF), (0x2500, 0x27BF), (0x2E00, 0x2E7F), (0x3000, 0x303F), (0x3040, 0x30FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xA4CF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF),
    (0xF900, 0xFAFF), (0xFB00, 0xFB4F), (0xFE00, 0xFE6F), (0xFF00, 0xFFEF), (0xFFF0, 0xFFFF),
    (0x10000, 0x1007F), (0x1D400, 0x1D7FF), (0x1F000, 0x1F0FF), (0x1F300, 0x1FAFF),
    (0x20000, 0x2A6DF), (0x2A700, 0x2EBEF), (0x2F800, 0x2FA1F), (0x30000, 0x3134F), (0xE0000, 0xE007F),
    (0xF0000, 0xF00FF), (0x0870, 0x08FF), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x10D00, 0x10FFF),
    (0x11000, 0x11FFF), (0x16F00, 0x16FFF), (0x1E000, 0x1EFFF),
]
SPECIAL = ["<s>", "</s>", "<pad>", "<unk>", "<mask>", "[UNK]", "<S>", "</S>", "<UNK>", "<Unk>", "<MASK>", "<PAD>",
           "<s", "</s >", "<<s>>", "[[UNK]]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "[unk]", " <mask>", "a<mask>b",
           "a <mask> b", "<mask>a", "\t<mask>", "[unused0]", "##", "##a"]
TRICKY = ["İstanbul", "ß", "ΣΑΣ", "ὈΔΥΣΣΕΎΣ", "ﬁ", "ﬀ", "Ⅻ", "ⓐⓑ", "𝐀𝐁𝐂", "²³", "½", "Å", "Å",
          "é", "é", "ǅ", "ẞ", "K", "Ω", "ﾊﾟ", "ｶﾞ", "\u0130", "\u1E9E", "\u00DF\u0301", "İ̇",
          "a\u0308\u0323", "a\u0323\u0308", "\u0345", "\u1F80", "\u0390", "ﬃ", "Ǆ", "\u2126", "\u212A",
          "\ufeff", "\u200b", "\u200c", "\u200d", "\u00ad", "\u2028", "\u2029", "\u0085", "\u180e",
          "\u3000", "\u00a0", "\u1680", "\ufffd", "\x00", "\x1c", "\x1f", "👍🏽", "🇫🇷", "🏳️‍🌈", "😀😃"]


def rand_char():
    lo, hi = rng.choice(RANGES)
    c = rng.randint(lo, hi)
    if 0xD800 <= c <= 0xDFFF:
        c = 0x41
    return chr(c)


def rand_word():
    w = rng.choice(words)
    r = rng.random()
    if r < 0.2:
        w = w.upper()
    elif r < 0.4:
        w = w.capitalize()
    elif r < 0.5:  # add accents
        w = "".join(c + rng.choice(["\u0301", "\u0300", "\u0308", "\u0327", ""]) for c in w)
        if rng.random() < 0.5:
            w = unicodedata.normalize("NFC", w)
    elif r < 0.6:  # typo
        if len(w) > 2:
            i = rng.randrange(len(w) - 1)
            w = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    return w


def gen():
    kind = rng.randrange(10)
    if kind == 0:  # random chars
        return "".join(rand_char() for _ in range(rng.randint(1, 40)))
    if kind == 1:  # words + punctuation
        parts = []
        for _ in range(rng.randint(1, 30)):
            parts.append(rand_word())
            if rng.random() < 0.3:
                parts.append(rng.choice(list(".,;:!?'\"()[]{}-–—…/\\@#$%^&*_+=<>|~`«»¿¡“”‘’")))
        sep = rng.choice([" ", "", "  ", "\t", "\n", "\u00a0", "\u3000"])
        return sep.join(parts)
    if kind == 2:  # words with random chars mixed in
        return " ".join(rand_word() + ("".join(rand_char() for _ in range(rng.randint(0, 3)))) for _ in range(rng.randint(1, 15)))
    if kind == 3:  # tricky pieces
        return " ".join(rng.choice(TRICKY + SPECIAL + words[:50]) for _ in range(rng.randint(1, 10)))
    if kind == 4:  # special tokens glued
        return "".join(rng.choice(SPECIAL + ["a", "b c", " ", "x[", "]"]) for _ in range(rng.randint(1, 10)))
    if kind == 5:  # long word near the 100-char limit
        n = rng.choice([98, 99, 100, 101, 102, 150])
        base = rng.choice(["a", "ab", "é", "中", "x1", "ü"])
        w = (base * n)[:n]
        return rng.choice(["", "pre ", "pre-"]) + w + rng.choice(["", " post", "!"])
    if kind == 6:  # long text (truncation)
        return " ".join(rand_word() for _ in range(rng.randint(200, 400)))
    if kind == 7:  # numbers, urls, code
        return rng.choice([
            f"{rng.randint(0, 10**9)}.{rng.randint(0, 999)}",
            f"https://ex{rng.randint(0, 99)}.com/a_b?c={rng.randint(0, 9)}&d=e#f",
            "fn main() { println!(\"{}\", x[0]); }",
            f"user_{rng.randint(0, 999)}@mail.example.org",
            f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/20{rng.randint(10, 30)} {rng.randint(0, 23)}:{rng.randint(10, 59)}",
        ])
    if kind == 8:  # emoji and symbols with words
        return " ".join(rng.choice([rand_word(), rand_char(), "🎉", "🚀", "👨‍👩‍👧", "❤️", "✔", "™", "©"]) for _ in range(rng.randint(1, 12)))
    # whitespace/control soup
    return "".join(rng.choice([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x00", "\x07", "\x7f", "\u200b", "\u2028", "\u00a0", "a", "?", "\ufeff", "\u0300"]) for _ in range(rng.randint(0, 12)))


fixed = list(SENTENCES) + [LONG * 3, "", " ", "<s>", "</s></s>", "<pad><pad>", "<unk>"] + TRICKY + SPECIAL
generated = []
while len(fixed) + len(generated) < 5000:
    generated.append(gen())
keep = set(random.Random(20261207).sample(range(len(generated)), 1000 - len(fixed)))
texts = fixed + [t for i, t in enumerate(generated) if i in keep]

with open(sys.argv[1] if len(sys.argv) > 1 else "mpnet_tokenizer_cases.jsonl", "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps({"text": t, "ids": full.encode(t).ids, "ids384": trunc.encode(t).ids}, ensure_ascii=False) + "\n")
print(len(texts), "cases of", len(fixed) + len(generated), "generated")
