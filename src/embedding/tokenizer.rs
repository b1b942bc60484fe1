//! BERT (uncased) WordPiece tokenizer over `vocab.txt`, written to give exactly the ids that
//! Hugging Face `tokenizers` gives for the model's `tokenizer.json` (BertNormalizer with
//! clean_text, handle_chinese_chars, lowercase and accent stripping; BertPreTokenizer; WordPiece
//! with `##` continuations and max 100 chars per word; `[CLS] … [SEP]` template).
//!
//! Why hand-written rather than the `tokenizers` crate: the whole pipeline is ~200 lines, needs
//! only two small table crates, and was checked id for id against the Python `tokenizers`
//! package on thousands of generated strings (see the report / `examples/tokcheck.rs`).
//!
//! Steps, in the same order as HF (order matters: e.g. U+0130 'İ' lowercases to "i\u{307}" *after*
//! the combining marks were stripped, so the dot stays and the word becomes [UNK]-prone, as in HF):
//! 1. split out the special tokens written literally in the text (`[CLS]`, `[SEP]`, `[PAD]`,
//!    `[UNK]`, `[MASK]`, case-sensitive: HF matches its added tokens on the raw text);
//! 2. clean: drop U+0000, U+FFFD and "other" chars (Cc/Cf/Co, except \t \n \r), map whitespace to ' ';
//! 3. put spaces around CJK ideographs;
//! 4. NFD, then drop non-spacing marks (Mn) — accent stripping;
//! 5. lowercase (Rust `char::to_lowercase`, as HF);
//! 6. split on whitespace, then isolate each punctuation char (ASCII punctuation or Unicode P*);
//! 7. greedy longest-match WordPiece per word; a word longer than 100 chars, or one with any
//!    piece not in the vocabulary, becomes a single [UNK];
//! 8. truncate to `max_len - 2` pieces and wrap in [CLS] … [SEP].

use std::collections::HashMap;

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// HF `WordPiece::max_input_chars_per_word` in this model's tokenizer.json.
const MAX_CHARS_PER_WORD: usize = 100;
const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    /// Total length including [CLS] and [SEP].
    max_len: usize,
}

impl Tokenizer {
    /// Builds the tokenizer from the text of `vocab.txt` (one token per line, id = line number).
    /// `max_len` counts [CLS] and [SEP] (256 for all-MiniLM-L6-v2).
    pub fn from_vocab(text: &str, max_len: usize) -> Result<Self, String> {
        if max_len < 2 {
            return Err(format!(
                "max_len {max_len} leaves no room for [CLS] and [SEP]"
            ));
        }
        let mut vocab = HashMap::with_capacity(32_000);
        // `lines()` also strips a trailing '\r'; HF trims the end of each line the same way.
        for (id, line) in text.lines().enumerate() {
            let id = u32::try_from(id).map_err(|_| "vocabulary too large".to_string())?;
            // First occurrence wins (HF inserts in order, so a later duplicate would overwrite;
            // the real vocab has none, and refusing duplicates is safer than guessing).
            if vocab.insert(line.trim_end().to_string(), id).is_some() {
                return Err(format!(
                    "duplicate token {:?} on line {}",
                    line.trim_end(),
                    id + 1
                ));
            }
        }
        let get = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| format!("special token {t} is missing"))
        };
        let (unk, cls, sep) = (get("[UNK]")?, get("[CLS]")?, get("[SEP]")?);
        for t in SPECIAL_TOKENS {
            get(t)?;
        }
        Ok(Self {
            vocab,
            unk,
            cls,
            sep,
            max_len,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids of `text` including [CLS] and [SEP], truncated to `max_len`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode_untruncated(text);
        ids.truncate(self.max_len - 2);
        ids.insert(0, self.cls);
        ids.push(self.sep);
        ids
    }

    /// Word-piece ids of `text` without [CLS]/[SEP] and without truncation.
    pub fn encode_untruncated(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        // 1. Literal special tokens are matched on the raw text, before any normalisation.
        while let Some((pos, tok)) = find_special(rest) {
            self.encode_plain(&rest[..pos], &mut ids);
            ids.push(self.vocab[tok]);
            rest = &rest[pos + tok.len()..];
        }
        self.encode_plain(rest, &mut ids);
        ids
    }

    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let normalized = normalize(text);
        let mut piece = String::new();
        for word in normalized.split(char::is_whitespace) {
            // Isolate punctuation: "it's" -> "it", "'", "s".
            let mut start = 0;
            for (i, c) in word.char_indices() {
                if is_bert_punctuation(c) {
                    self.wordpiece(&word[start..i], ids, &mut piece);
                    self.wordpiece(&word[i..i + c.len_utf8()], ids, &mut piece);
                    start = i + c.len_utf8();
                }
            }
            self.wordpiece(&word[start..], ids, &mut piece);
        }
    }

    /// Greedy longest-match-first WordPiece of one pre-token. `buf` is reused scratch space.
    fn wordpiece(&self, word: &str, ids: &mut Vec<u32>, buf: &mut String) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > MAX_CHARS_PER_WORD {
            ids.push(self.unk);
            return;
        }
        let first = ids.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                buf.clear();
                if start > 0 {
                    buf.push_str("##");
                }
                buf.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(buf.as_str()) {
                    found = Some(id);
                    break;
                }
                // Step back one char (not one byte).
                end -= word[..end].chars().next_back().map_or(1, char::len_utf8);
            }
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    // Any unmatched remainder makes the whole word [UNK].
                    ids.truncate(first);
                    ids.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The earliest literal special token in `s`, if any (they cannot overlap one another).
fn find_special(s: &str) -> Option<(usize, &'static str)> {
    if !s.contains('[') {
        return None;
    }
    SPECIAL_TOKENS
        .iter()
        .filter_map(|&t| s.find(t).map(|p| (p, t)))
        .min_by_key(|&(p, _)| p)
}

/// Steps 2-5 (BertNormalizer).
fn normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\0' || c == '\u{FFFD}' || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            cleaned.push(' ');
        } else if is_cjk(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.nfd().filter(|c| !c.is_mark_nonspacing()) {
        out.extend(c.to_lowercase());
    }
    out
}

fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Cc, Cf and Co (`unicode_categories::is_other` — despite its doc it does not include Cn),
/// except \t \n \r which count as whitespace.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK Unified Ideographs blocks BERT isolates (not Hangul, Hiragana or Katakana).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let vocab =
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nresume\n,\n!\nit\n'\ns\n中\n";
        Tokenizer::from_vocab(vocab, 8).unwrap()
    }

    #[test]
    fn wordpiece_and_specials() {
        let t = tiny();
        // [CLS] un ##aff ##able , resume ! [SEP]
        assert_eq!(
            t.encode("UnAffable, Résumé!"),
            vec![2, 5, 6, 7, 9, 8, 10, 3]
        );
        // Unknown word -> one [UNK]; CJK isolated; literal [SEP] kept.
        assert_eq!(
            t.encode_untruncated("xyz 中[SEP]it's"),
            vec![1, 14, 3, 11, 12, 13]
        );
        // Truncation keeps [CLS] + 6 + [SEP].
        assert_eq!(t.encode("it it it it it it it it").len(), 8);
        assert_eq!(t.encode(""), vec![2, 3]);
        assert_eq!(t.encode(" \t\u{200b}\x07 "), vec![2, 3]);
    }

    #[test]
    fn bad_vocab() {
        assert!(Tokenizer::from_vocab("a\nb\n", 256).is_err());
        assert!(Tokenizer::from_vocab("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n[PAD]\n", 256).is_err());
    }
}
