//! Sane bounds on an embedding model's configuration, checked before anything is allocated from
//! it: a model folder is data, and a typo or a damaged `config.json` (`num_hidden_layers` of
//! 10^12) must be a clear error, not a process aborted on a 112 TB allocation.
//!
//! Every architecture (MPNet today) describes itself as a [`Dimensions`] and goes
//! through [`check`] in `Embedder::from_files`, before its tokenizer or weights are built. The
//! bounds are wide enough for any real sentence-transformer encoder; the largest ones known
//! when they were chosen:
//!
//! | model | layers | hidden | heads | intermediate | vocab | positions | max_seq_length |
//! |---|---:|---:|---:|---:|---:|---:|---:|
//! | all-MiniLM-L6-v2 (BERT) | 6 | 384 | 12 | 1536 | 30522 | 512 | 256 |
//! | all-mpnet-base-v2 (MPNet) | 12 | 768 | 12 | 3072 | 30527 | 514 | 384 |
//! | bge-large / e5-large (BERT) | 24 | 1024 | 16 | 4096 | 30522 | 512 | 512 |
//! | multilingual-e5-large (XLM-R) | 24 | 1024 | 16 | 4096 | 250002 | 514 | 512 |
//! | bge-m3 (XLM-R) | 24 | 1024 | 16 | 4096 | 250002 | 8194 | 8192 |
//!
//! Within these bounds the only large allocations are the weight tensors, and each tensor's
//! shape is checked against the file before it is used (`weights.rs`), so memory stays
//! proportional to the size of the file itself.

use std::ops::RangeInclusive;
use std::path::Path;

use super::EmbedError;

pub const LAYERS: RangeInclusive<usize> = 1..=48;
pub const HIDDEN_SIZE: RangeInclusive<usize> = 1..=4096;
pub const ATTENTION_HEADS: RangeInclusive<usize> = 1..=64;
/// Four times the largest hidden size, the usual ratio.
pub const INTERMEDIATE_SIZE: RangeInclusive<usize> = 1..=16_384;
/// XLM-R's 250,002 tokens with room to spare; the vocabulary file must hold exactly this many.
pub const VOCAB_SIZE: RangeInclusive<usize> = 1..=300_000;
pub const MAX_POSITION_EMBEDDINGS: RangeInclusive<usize> = 16..=16_384;
/// The least `max_seq_length`: [CLS] and [SEP] take two positions, and a model that keeps fewer
/// than 14 word pieces of a question would silently answer its first few words only. The upper
/// bound is the model's own `max_position_embeddings`.
pub const MIN_SEQ_LENGTH: usize = 16;
/// Real models use 1e-12 (BERT), 1e-6 or 1e-5; zero or a large epsilon flattens every LayerNorm.
pub const LAYER_NORM_EPS: RangeInclusive<f64> = 1e-15..=1e-2;

/// The sizes of an encoder, read from its configuration files, whatever the architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimensions {
    pub num_hidden_layers: usize,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    /// From `sentence_bert_config.json`, not `config.json`.
    pub max_seq_length: usize,
}

/// Refuses dimensions outside the bounds above; the error names the file, the field, its value
/// and the allowed range. `config` is the path of `config.json`, `sentence_config` that of
/// `sentence_bert_config.json`.
pub fn check(d: &Dimensions, config: &Path, sentence_config: &Path) -> Result<(), EmbedError> {
    let in_range = |field: &'static str, value: usize, range: RangeInclusive<usize>| {
        if range.contains(&value) {
            Ok(())
        } else {
            Err(out_of_range(
                config,
                field,
                value,
                format!("{}..={}", range.start(), range.end()),
            ))
        }
    };
    in_range("num_hidden_layers", d.num_hidden_layers, LAYERS)?;
    in_range("hidden_size", d.hidden_size, HIDDEN_SIZE)?;
    in_range(
        "num_attention_heads",
        d.num_attention_heads,
        ATTENTION_HEADS,
    )?;
    if !d.hidden_size.is_multiple_of(d.num_attention_heads) {
        return Err(out_of_range(
            config,
            "hidden_size",
            d.hidden_size,
            format!(
                "a multiple of num_attention_heads ({})",
                d.num_attention_heads
            ),
        ));
    }
    in_range("intermediate_size", d.intermediate_size, INTERMEDIATE_SIZE)?;
    in_range("vocab_size", d.vocab_size, VOCAB_SIZE)?;
    in_range(
        "max_position_embeddings",
        d.max_position_embeddings,
        MAX_POSITION_EMBEDDINGS,
    )?;
    // `contains` is false for NaN, so a NaN epsilon is refused too.
    if !LAYER_NORM_EPS.contains(&d.layer_norm_eps) {
        return Err(out_of_range(
            config,
            "layer_norm_eps",
            d.layer_norm_eps,
            format!("{:e}..={:e}", LAYER_NORM_EPS.start(), LAYER_NORM_EPS.end()),
        ));
    }
    if !(MIN_SEQ_LENGTH..=d.max_position_embeddings).contains(&d.max_seq_length) {
        return Err(out_of_range(
            sentence_config,
            "max_seq_length",
            d.max_seq_length,
            format!(
                "{MIN_SEQ_LENGTH}..={} (max_position_embeddings in config.json)",
                d.max_position_embeddings
            ),
        ));
    }
    Ok(())
}

fn out_of_range(
    path: &Path,
    field: &'static str,
    value: impl std::fmt::Display,
    allowed: String,
) -> EmbedError {
    EmbedError::OutOfRange {
        path: path.to_path_buf(),
        field,
        value: value.to_string(),
        allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> Dimensions {
        Dimensions {
            num_hidden_layers: 6,
            hidden_size: 384,
            num_attention_heads: 12,
            intermediate_size: 1536,
            vocab_size: 30522,
            max_position_embeddings: 512,
            layer_norm_eps: 1e-12,
            max_seq_length: 256,
        }
    }

    fn check_one(d: &Dimensions) -> Result<(), String> {
        check(
            d,
            Path::new("m/config.json"),
            Path::new("m/sentence_bert_config.json"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn real_sentence_transformers_fit() {
        let mpnet = Dimensions {
            num_hidden_layers: 12,
            hidden_size: 768,
            num_attention_heads: 12,
            intermediate_size: 3072,
            vocab_size: 30527,
            max_position_embeddings: 514,
            layer_norm_eps: 1e-5,
            max_seq_length: 384,
        };
        let bge_m3 = Dimensions {
            num_hidden_layers: 24,
            hidden_size: 1024,
            num_attention_heads: 16,
            intermediate_size: 4096,
            vocab_size: 250_002,
            max_position_embeddings: 8194,
            layer_norm_eps: 1e-5,
            max_seq_length: 8192,
        };
        for d in [minilm(), mpnet, bge_m3] {
            assert_eq!(check_one(&d), Ok(()), "{d:?}");
        }
    }

    #[test]
    fn each_field_out_of_bounds_is_named_with_its_value_and_range() {
        type Edit = fn(&mut Dimensions);
        let cases: [(Edit, &str); 11] = [
            (
                |d| d.num_hidden_layers = 1_000_000_000_000,
                "m/config.json: num_hidden_layers is 1000000000000, allowed 1..=48",
            ),
            (
                |d| d.num_hidden_layers = 0,
                "m/config.json: num_hidden_layers is 0, allowed 1..=48",
            ),
            (
                |d| d.hidden_size = 8192,
                "hidden_size is 8192, allowed 1..=4096",
            ),
            (
                |d| d.num_attention_heads = 0,
                "num_attention_heads is 0, allowed 1..=64",
            ),
            (
                |d| d.num_attention_heads = 10,
                "hidden_size is 384, allowed a multiple of num_attention_heads (10)",
            ),
            (
                |d| d.intermediate_size = 1 << 40,
                "intermediate_size is 1099511627776, allowed 1..=16384",
            ),
            (
                |d| d.vocab_size = 0,
                "vocab_size is 0, allowed 1..=300000",
            ),
            (
                |d| d.max_position_embeddings = 1 << 20,
                "max_position_embeddings is 1048576, allowed 16..=16384",
            ),
            (
                |d| d.layer_norm_eps = f64::NAN,
                "layer_norm_eps is NaN, allowed 1e-15..=1e-2",
            ),
            (
                |d| d.max_seq_length = 2,
                "m/sentence_bert_config.json: max_seq_length is 2, allowed 16..=512 (max_position_embeddings in config.json)",
            ),
            (
                |d| d.max_seq_length = 513,
                "max_seq_length is 513, allowed 16..=512",
            ),
        ];
        for (edit, expected) in cases {
            let mut d = minilm();
            edit(&mut d);
            let e = check_one(&d).expect_err(expected);
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
    }
}
