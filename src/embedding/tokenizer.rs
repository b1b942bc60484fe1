//! The uncased WordPiece tokenizer of BERT-family models, built from the model's own
//! `tokenizer.json` and written to give exactly the ids that Hugging Face `tokenizers` gives for
//! it: BertNormalizer (clean text, CJK spacing, lowercase and accent stripping), BertPreTokenizer,
//! WordPiece with `##` continuations, the added (special) tokens, and the `cls … sep` template of
//! its post-processor. all-mpnet-base-v2 is `<s> … </s>` with `[UNK]` for unknown words;
//! all-MiniLM-L6-v2 was `[CLS] … [SEP]`: both come from the file, not from this code.
//!
//! Why hand-written rather than the `tokenizers` crate: the whole pipeline is ~250 lines, needs
//! only two small table crates, and is checked id for id against the Python `tokenizers`
//! package on 1,000 generated strings (`tests/embedding.rs`).
//!
//! Steps, in the same order as HF (order matters: e.g. U+0130 'İ' lowercases to "i\u{307}" *after*
//! the combining marks were stripped, so the dot stays and the word becomes [UNK]-prone, as in HF):
//! 1. split out the added tokens that are matched on the raw text (`"normalized": false`:
//!    `<s>`, `</s>`, `<pad>`, `[UNK]`, `<mask>` for MPNet; case-sensitive, leftmost, longest);
//! 2. clean: drop U+0000, U+FFFD and "other" chars (Cc/Cf/Co, except \t \n \r), map whitespace to ' ';
//! 3. put spaces around CJK ideographs;
//! 4. NFD, then drop non-spacing marks (Mn) — accent stripping;
//! 5. lowercase (Rust `char::to_lowercase`, as HF);
//! 6. split out the added tokens matched on the normalised text (`"normalized": true`: MPNet's
//!    `<unk>`, so `<UNK>` is one too);
//! 7. split on whitespace, then isolate each punctuation char (ASCII punctuation or Unicode P*);
//! 8. greedy longest-match WordPiece per word; a word longer than `max_input_chars_per_word`, or
//!    one with any piece not in the vocabulary, becomes the single unknown token;
//! 9. truncate to `max_len - 2` pieces and wrap in the template's `cls … sep`.

use std::collections::HashMap;

use serde::Deserialize;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// The parts of `tokenizer.json` this tokenizer implements; anything else is refused by
/// [`Tokenizer::from_json`] rather than tokenized differently from the model's training.
#[derive(Deserialize)]
struct TokenizerJson {
    added_tokens: Vec<AddedToken>,
    normalizer: Option<serde_json::Value>,
    pre_tokenizer: Option<serde_json::Value>,
    post_processor: Option<serde_json::Value>,
    model: WordPieceJson,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
struct WordPieceJson {
    #[serde(rename = "type")]
    kind: String,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: usize,
    vocab: HashMap<String, u32>,
}

#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    /// Added tokens matched on the raw text, and on the normalised text (step 1 and step 6).
    raw_specials: Vec<(String, u32)>,
    normalized_specials: Vec<(String, u32)>,
    unk: u32,
    cls: u32,
    sep: u32,
    max_chars_per_word: usize,
    /// Total length including the template's two tokens.
    max_len: usize,
}

impl Tokenizer {
    /// Builds the tokenizer from the text of the model's `tokenizer.json`. `max_len` counts the
    /// template's two tokens (sentence-transformers' `max_seq_length`: 384 for
    /// all-mpnet-base-v2; `tokenizer.json`'s own truncation setting is not what it uses).
    pub fn from_json(text: &str, max_len: usize) -> Result<Self, String> {
        if max_len < 2 {
            return Err(format!(
                "max_len {max_len} leaves no room for the template's two tokens"
            ));
        }
        let json: TokenizerJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let kind = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .and_then(|v| v.get("type"))
                .and_then(|t| t.as_str())
                .unwrap_or("none")
                .to_string()
        };
        let normalizer = json.normalizer.as_ref();
        let flag = |name: &str| normalizer.and_then(|n| n.get(name)).cloned();
        let bert_normalizer = kind(&json.normalizer) == "BertNormalizer"
            && flag("lowercase") == Some(serde_json::Value::Bool(true))
            && flag("clean_text") == Some(serde_json::Value::Bool(true))
            && flag("handle_chinese_chars") == Some(serde_json::Value::Bool(true))
            // Unset, it follows `lowercase` (HF): accents are stripped.
            && matches!(
                flag("strip_accents"),
                None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(true))
            );
        if !bert_normalizer {
            return Err(
                "only the lowercasing, accent-stripping BertNormalizer is implemented".to_string(),
            );
        }
        if kind(&json.pre_tokenizer) != "BertPreTokenizer" {
            return Err(format!(
                "pre_tokenizer {} is not implemented, only BertPreTokenizer",
                kind(&json.pre_tokenizer)
            ));
        }
        let model = json.model;
        if model.kind != "WordPiece" || model.continuing_subword_prefix != "##" {
            return Err(format!(
                "model {} with prefix {:?} is not implemented, only WordPiece with \"##\"",
                model.kind, model.continuing_subword_prefix
            ));
        }
        // Ids must be 0..n, each once: the embedding table is indexed by them.
        let mut seen = vec![false; model.vocab.len()];
        for (token, &id) in &model.vocab {
            match seen.get_mut(id as usize) {
                Some(slot) if !*slot => *slot = true,
                _ => {
                    return Err(format!(
                        "token {token:?} has id {id}: ids must be 0..{} and each used once",
                        model.vocab.len()
                    ))
                }
            }
        }
        let id_of = |t: &str| {
            model
                .vocab
                .get(t)
                .copied()
                .ok_or_else(|| format!("token {t:?} is not in the vocabulary"))
        };
        let unk = id_of(&model.unk_token)?;
        let post = json.post_processor.as_ref();
        let template_token = |name: &str| -> Result<u32, String> {
            let pair = post
                .and_then(|p| p.get(name))
                .and_then(|v| v.as_array())
                .ok_or_else(|| {
                    format!(
                        "post_processor {} has no `{name}`: only the BertProcessing and \
                         RobertaProcessing templates are implemented",
                        kind(&json.post_processor)
                    )
                })?;
            let token = pair.first().and_then(|t| t.as_str()).unwrap_or_default();
            let id = id_of(token)?;
            if pair.get(1).and_then(|i| i.as_u64()) != Some(u64::from(id)) {
                return Err(format!(
                    "post_processor `{name}` {token:?} has the wrong id"
                ));
            }
            Ok(id)
        };
        let (cls, sep) = (template_token("cls")?, template_token("sep")?);
        let mut raw_specials = Vec::new();
        let mut normalized_specials = Vec::new();
        for added in json.added_tokens {
            if id_of(&added.content)? != added.id {
                return Err(format!(
                    "added token {:?} has id {}, the vocabulary says {}",
                    added.content,
                    added.id,
                    id_of(&added.content)?
                ));
            }
            if added.single_word {
                return Err(format!(
                    "added token {:?}: single_word is not implemented",
                    added.content
                ));
            }
            // `lstrip`/`rstrip` only move offsets: whitespace makes no token on either side.
            if added.normalized {
                normalized_specials.push((added.content, added.id));
            } else {
                raw_specials.push((added.content, added.id));
            }
        }
        Ok(Self {
            vocab: model.vocab,
            raw_specials,
            normalized_specials,
            unk,
            cls,
            sep,
            max_chars_per_word: model.max_input_chars_per_word,
            max_len,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The id of `token` exactly as the vocabulary holds it (lowercase words, `##` pieces).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids of `text` inside the template (`<s> … </s>`), truncated to `max_len`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode_untruncated(text);
        ids.truncate(self.max_len - 2);
        ids.insert(0, self.cls);
        ids.push(self.sep);
        ids
    }

    /// Word-piece ids of `text` without the template and without truncation.
    pub fn encode_untruncated(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        // 1. Added tokens matched on the raw text, before any normalisation.
        while let Some((pos, len, id)) = find_special(rest, &self.raw_specials) {
            self.encode_normalized(&normalize(&rest[..pos]), &mut ids);
            ids.push(id);
            rest = &rest[pos + len..];
        }
        self.encode_normalized(&normalize(rest), &mut ids);
        ids
    }

    /// Steps 6 to 8, on normalised text.
    fn encode_normalized(&self, text: &str, ids: &mut Vec<u32>) {
        let mut rest = text;
        while let Some((pos, len, id)) = find_special(rest, &self.normalized_specials) {
            self.encode_words(&rest[..pos], ids);
            ids.push(id);
            rest = &rest[pos + len..];
        }
        self.encode_words(rest, ids);
    }

    fn encode_words(&self, normalized: &str, ids: &mut Vec<u32>) {
        if normalized.is_empty() {
            return;
        }
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
        if word.chars().count() > self.max_chars_per_word {
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

/// The leftmost of `specials` in `s`, the longest of those starting there (as HF's
/// leftmost-longest matcher): its byte position, length and id.
fn find_special(s: &str, specials: &[(String, u32)]) -> Option<(usize, usize, u32)> {
    specials
        .iter()
        .filter_map(|(t, id)| s.find(t.as_str()).map(|p| (p, t.len(), *id)))
        .min_by_key(|&(p, len, _)| (p, std::cmp::Reverse(len)))
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

    /// A tokenizer.json of MPNet's shape over a tiny vocabulary.
    fn tiny() -> Tokenizer {
        let vocab = [
            "<s>", "<pad>", "</s>", "<unk>", "[UNK]", "un", "##aff", "##able", "resume", ",", "!",
            "it", "'", "s", "中", "<mask>",
        ];
        let vocab: serde_json::Map<String, serde_json::Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i.into()))
            .collect();
        let json = serde_json::json!({
            "added_tokens": [
                {"id": 0, "content": "<s>", "normalized": false},
                {"id": 1, "content": "<pad>", "normalized": false},
                {"id": 2, "content": "</s>", "normalized": false},
                {"id": 3, "content": "<unk>", "normalized": true},
                {"id": 4, "content": "[UNK]", "normalized": false},
                {"id": 15, "content": "<mask>", "normalized": false, "lstrip": true},
            ],
            "normalizer": {"type": "BertNormalizer", "clean_text": true,
                           "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab},
        });
        Tokenizer::from_json(&json.to_string(), 8).unwrap()
    }

    #[test]
    fn wordpiece_template_and_added_tokens() {
        let t = tiny();
        // <s> un ##aff ##able , resume ! </s>
        assert_eq!(
            t.encode("UnAffable, Résumé!"),
            vec![0, 5, 6, 7, 9, 8, 10, 2]
        );
        // Unknown word -> one [UNK]; CJK isolated; a literal </s> and <mask> kept whole.
        assert_eq!(
            t.encode_untruncated("xyz 中</s>it's <mask>"),
            vec![4, 14, 2, 11, 12, 13, 15]
        );
        // <unk> is matched after normalisation, so upper case is one too; <MASK> is not.
        assert_eq!(t.encode_untruncated("<UNK>"), vec![3]);
        assert_eq!(t.encode_untruncated("<MASK>"), vec![4, 4, 4]);
        // Truncation keeps <s> + 6 + </s>.
        assert_eq!(t.encode("it it it it it it it it").len(), 8);
        assert_eq!(t.encode(""), vec![0, 2]);
        assert_eq!(t.encode(" \t\u{200b}\x07 "), vec![0, 2]);
    }

    #[test]
    fn a_tokenizer_json_this_code_does_not_implement_is_refused() {
        let good: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(crate::embedding::MODEL_DIR)
                    .join("tokenizer.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(Tokenizer::from_json(&good.to_string(), 384).is_ok());
        let broken = |pointer: &str, value: serde_json::Value| {
            let mut json = good.clone();
            *json.pointer_mut(pointer).unwrap() = value;
            Tokenizer::from_json(&json.to_string(), 384).unwrap_err()
        };
        assert!(broken("/normalizer/lowercase", false.into()).contains("BertNormalizer"));
        assert!(broken("/pre_tokenizer/type", "Whitespace".into()).contains("Whitespace"));
        assert!(broken("/model/type", "BPE".into()).contains("BPE"));
        assert!(broken("/model/unk_token", "<nope>".into()).contains("<nope>"));
        assert!(broken(
            "/post_processor",
            serde_json::json!({"type": "TemplateProcessing"})
        )
        .contains("TemplateProcessing"));
        assert!(broken("/model/vocab/hello", 0.into()).contains("each used once"));
        assert!(Tokenizer::from_json("{", 384).is_err());
        assert!(Tokenizer::from_json(&good.to_string(), 1).is_err());
    }
}
