//! Sentence embeddings, offline and in-process: `sentence-transformers/all-mpnet-base-v2`
//! (MPNet, 12 layers, 768 dimensions) run on candle's CPU tensors, mean-pooled over real tokens
//! and L2-normalised, so the cosine of two texts is the dot product of their vectors.
//!
//! - [`tokenizer`]: the model's WordPiece tokenizer, built from its `tokenizer.json` and written
//!   to give exactly the ids of Hugging Face `tokenizers` (checked id for id in the tests).
//! - [`encoder`]: the one trait a model architecture implements, and the choice of
//!   implementation by `config.json`; [`mpnet`] is the forward pass, made of [`layers`].
//! - [`weights`]: the weight shards, int8 with one scale per 128 weights on disk, f32 in memory.
//! - [`cache`]: vectors of texts already embedded, kept on disk by model and text, so a process
//!   that starts cold does not embed its whole collection again.
//! - [`limits`] and [`self_check`]: what every model goes through in [`Embedder::from_files`],
//!   whatever its architecture: sane bounds on its configuration before anything is allocated,
//!   and, once built, one sentence embedded and compared with the reference embedding shipped
//!   beside it, so damaged weights stop start-up instead of silently answering "no close match".
//!
//! Why this model: it replaced all-MiniLM-L6-v2 (6 layers, 384 dimensions) because it ranks
//! clearly better on questions written without looking at the collection and separates
//! on-topic from off-topic questions with almost no overlap (figures in docs/relevance.md). It
//! costs about 6x the compute per question (tens of milliseconds on 2 cores) and 440 MB of f32
//! weights in memory.
//!
//! Where the model comes from: the files under `models/all-mpnet-base-v2/` (int8 weights in three
//! shards under 50 MB each, 110 MB; licence, provenance and the conversion script there). The
//! `insight-bot` binary embeds them (`src/main.rs`), so an installed binary needs nothing beside
//! it; `EMBEDDING_MODEL_PATH` points at another copy of the folder. Only the binary embeds them:
//! the library takes the files as bytes ([`Embedder::from_files`]) or reads a folder
//! ([`Embedder::load_dir`]), so the test binaries that link the library do not each carry 110 MB.
//!
//! Embedding is CPU work of milliseconds: callers on the async runtime run it on the blocking
//! pool.

pub mod cache;
pub mod encoder;
pub mod layers;
pub mod limits;
pub mod mpnet;
pub mod self_check;
pub mod tokenizer;
pub mod weights;

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::Deserialize;

use encoder::Encoder;

pub use self_check::ReferenceEmbedding;
pub use tokenizer::Tokenizer;

/// Embedding width of all-mpnet-base-v2; a model of another width is refused.
pub const DIM: usize = 768;

/// One embedding: unit length, so a dot product is a cosine.
pub type Vector = [f32; DIM];

/// The model's folder in the repository, relative to the crate root.
pub const MODEL_DIR: &str = "models/all-mpnet-base-v2";

/// Sentences per forward pass. Inputs are sorted by length before batching, so each batch pads
/// only to its own longest text. Measured on 2 cores for 32 texts of 10..45 tokens (one thread):
/// batch 4: 654 ms, 8: 638 ms, 16: 767 ms, 32: 888 ms (padding waste grows faster than gemm
/// efficiency once a batch has a few hundred token rows). It also bounds the attention scores'
/// memory, (batch, 12, seq, seq).
const MAX_BATCH: usize = 8;

/// Why the model could not be loaded or run. Every load error names the file.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: invalid {what}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{}: {field} is {value}, allowed {allowed}", path.display())]
    OutOfRange {
        path: PathBuf,
        field: &'static str,
        value: String,
        allowed: String,
    },
    #[error("{}: tensor `{name}` holds NaN or infinite values: the file is damaged", path.display())]
    NonFinite { path: PathBuf, name: String },
    #[error(
        "{}: the model fails its self-check: {sentence:?} embeds to {found}; the weights are damaged or do not match {}",
        path.display(), self_check::FILE
    )]
    SelfCheck {
        path: PathBuf,
        sentence: String,
        found: String,
    },
    #[error("{}: tensor `{name}` is missing", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: tensor `{name}` has shape {found:?}, expected {expected:?}", path.display())]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: tensor `{name}` has dtype {dtype}, expected F32, F16, BF16, or I8 with a `.scale`", path.display())]
    DType {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("embedding failed: {0}")]
    Inference(#[from] candle_core::Error),
}

/// The files of a model folder, as bytes (read from disk, or embedded in the binary).
#[derive(Debug, Clone, Copy)]
pub struct ModelFiles<'a> {
    pub config: &'a [u8],
    pub sentence_config: &'a [u8],
    /// `tokenizer.json`.
    pub tokenizer: &'a [u8],
    /// The weight shards: each one's file name in the folder, and its bytes.
    pub weights: &'a [(&'a str, &'a [u8])],
    /// `reference_embedding.json`, for the self-check ([`self_check`]).
    pub reference: &'a [u8],
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

/// The loaded model. `Send + Sync`: share one behind an `Arc`.
pub struct Embedder {
    tokenizer: Tokenizer,
    model: Box<dyn Encoder>,
    device: Device,
    fingerprint: u64,
    /// The cosine the self-check measured (1.0 before it ran).
    self_check_cosine: f32,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish()
    }
}

impl Embedder {
    /// Loads the model folder at `dir` (`config.json`, `sentence_bert_config.json`,
    /// `tokenizer.json`, the weights: the shards `model.safetensors.index.json` names, or
    /// `model.safetensors`) and self-checks it against its `reference_embedding.json`.
    pub fn load_dir(dir: &Path) -> Result<Embedder, EmbedError> {
        Embedder::read_dir(dir, true)
    }

    /// Loads the model folder at `dir` with every check but the self-check, which needs the
    /// reference embedding this is for: only to write `reference_embedding.json` for a new
    /// model (`insight-bot model-reference`). Do not serve answers from it.
    pub fn load_dir_without_self_check(dir: &Path) -> Result<Embedder, EmbedError> {
        Embedder::read_dir(dir, false)
    }

    fn read_dir(dir: &Path, with_self_check: bool) -> Result<Embedder, EmbedError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| EmbedError::Read { path, source })
        };
        let (config, sentence_config, tokenizer) = (
            read("config.json")?,
            read("sentence_bert_config.json")?,
            read("tokenizer.json")?,
        );
        let mut shards = Vec::new();
        for path in weights::shard_paths(dir)? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).map_err(|source| EmbedError::Read { path, source })?;
            shards.push((name, bytes));
        }
        let shard_refs: Vec<(&str, &[u8])> = shards
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let reference = if with_self_check {
            read(self_check::FILE).map_err(|e| match e {
                EmbedError::Read { path, source }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    invalid(
                        &path,
                        "reference embedding",
                        format!(
                            "the file is missing; every model folder needs one for the self-check at load: \
                             write it with `insight-bot model-reference {}`, after checking the model's \
                             vectors against sentence-transformers",
                            dir.display()
                        ),
                    )
                }
                e => e,
            })?
        } else {
            Vec::new()
        };
        let files = ModelFiles {
            config: &config,
            sentence_config: &sentence_config,
            tokenizer: &tokenizer,
            weights: &shard_refs,
            reference: &reference,
        };
        if with_self_check {
            Embedder::from_files(files, dir)
        } else {
            Embedder::build(&files, dir)
        }
    }

    /// The model in this repository's `models/` folder: for tests and benchmarks, which run where
    /// the repository is.
    pub fn load_repository_model() -> Result<Embedder, EmbedError> {
        Embedder::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join(MODEL_DIR))
    }

    /// Builds the model from the files' bytes and self-checks it; `origin` is the folder they
    /// came from, named in errors (`<origin>/model.safetensors: ...`). Every model, whatever its
    /// architecture, comes through here: bounds ([`limits`]), shapes, finite weights, then the
    /// reference embedding ([`self_check`]).
    pub fn from_files(files: ModelFiles<'_>, origin: &Path) -> Result<Embedder, EmbedError> {
        // Parsed first: a malformed reference file is reported before the weights are built.
        let reference = ReferenceEmbedding::parse(files.reference, &origin.join(self_check::FILE))?;
        let mut embedder = Embedder::build(&files, origin)?;
        embedder.self_check_cosine = self_check::verify(&embedder, &reference, origin)?;
        Ok(embedder)
    }

    /// Everything of [`Embedder::from_files`] but the self-check.
    fn build(files: &ModelFiles<'_>, origin: &Path) -> Result<Embedder, EmbedError> {
        let device = Device::Cpu;
        let cfg_path = origin.join("config.json");
        let st_path = origin.join("sentence_bert_config.json");
        let st: SentenceBertConfig = parse_json(
            files.sentence_config,
            &st_path,
            "sentence-transformers config",
        )?;
        let shards: Vec<(PathBuf, &[u8])> = files
            .weights
            .iter()
            .map(|&(name, bytes)| (origin.join(name), bytes))
            .collect();
        let mut weights = weights::Weights::read(&shards)?;
        // Bounds are checked inside, before any tensor is allocated from the sizes.
        let (model, dims) = encoder::from_config(
            files.config,
            &cfg_path,
            st.max_seq_length,
            &st_path,
            &mut weights,
        )?;

        let tok_path = origin.join("tokenizer.json");
        let tokenizer_text = std::str::from_utf8(files.tokenizer)
            .map_err(|e| invalid(&tok_path, "tokenizer", e.to_string()))?;
        let tokenizer = Tokenizer::from_json(tokenizer_text, st.max_seq_length)
            .map_err(|r| invalid(&tok_path, "tokenizer", r))?;
        if tokenizer.vocab_size() != dims.vocab_size {
            return Err(invalid(
                &tok_path,
                "tokenizer",
                format!(
                    "{} tokens, but config.json says vocab_size {}",
                    tokenizer.vocab_size(),
                    dims.vocab_size
                ),
            ));
        }
        Ok(Embedder {
            tokenizer,
            model,
            device,
            fingerprint: fingerprint(files),
            self_check_cosine: 1.0,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The cosine between the reference sentence's vector and its reference embedding, measured
    /// at load ([`self_check`]).
    pub fn self_check_cosine(&self) -> f32 {
        self.self_check_cosine
    }

    /// Identifies the model's exact files (config, vocabulary and weights), for caches of its
    /// vectors: another model, or the same one converted differently, gets other cache entries.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Unit-length embeddings of `texts`, in order. Texts longer than the model's 384 tokens
    /// are truncated (as sentence-transformers does). An empty slice gives an empty Vec.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vector>, EmbedError> {
        self.embed_limited(texts, &[])
    }

    /// [`Embedder::embed`] with text `i` cut to `limits[i]` tokens (template included, at least
    /// 2; texts past the end of `limits` are not cut): cheaper for long texts, as the cost of a
    /// forward pass grows with its length.
    pub fn embed_limited(
        &self,
        texts: &[&str],
        limits: &[usize],
    ) -> Result<Vec<Vector>, EmbedError> {
        let started = std::time::Instant::now();
        let seqs: Vec<Vec<u32>> = texts
            .iter()
            .zip(limits.iter().chain(std::iter::repeat(&usize::MAX)))
            .map(|(t, &limit)| {
                let mut seq = self.tokenizer.encode(t);
                if seq.len() > limit.max(2) {
                    let end = *seq.last().expect("the template's end");
                    seq.truncate(limit.max(2) - 1);
                    seq.push(end);
                }
                seq
            })
            .collect();
        let embedded = self.embed_sequences(seqs);
        crate::ops::metrics()
            .embedding
            .observe_duration(started.elapsed());
        embedded
    }

    fn embed_sequences(&self, seqs: Vec<Vec<u32>>) -> Result<Vec<Vector>, EmbedError> {
        // Longest first, so each batch pads to a similar length; results go back in input order.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(seqs[i].len()));
        let mut out = vec![[0f32; DIM]; seqs.len()];
        for chunk in order.chunks(MAX_BATCH) {
            let batch: Vec<Vec<u32>> = chunk.iter().map(|&i| seqs[i].clone()).collect();
            let (ids, mask) = layers::batch_tensors(&batch, self.model.pad_id(), &self.device)?;
            let emb = self.model.embed(&ids, &mask)?.to_vec2::<f32>()?;
            for (&i, row) in chunk.iter().zip(emb) {
                out[i].copy_from_slice(&row);
            }
        }
        Ok(out)
    }

    pub fn embed_one(&self, text: &str) -> Result<Vector, EmbedError> {
        Ok(self.embed(&[text])?[0])
    }
}

/// The dot product of two unit vectors: their cosine.
pub fn cosine(a: &Vector, b: &Vector) -> f32 {
    // Four independent sums let the compiler vectorise without reordering a single chain.
    let mut acc = [0f32; 4];
    for (x, y) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum()
}

/// FxHash of the config, the tokenizer, and of each weight shard its length, header (tensor
/// names, shapes, offsets) and one 4 KiB block per MiB: distinguishes any two real models or
/// conversions while costing microseconds instead of hashing 110 MB at every start.
fn fingerprint(files: &ModelFiles<'_>) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(files.config);
    h.write(files.sentence_config);
    h.write(files.tokenizer);
    for (_, weights) in files.weights {
        h.write_usize(weights.len());
        let header = weights
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes) as usize;
        h.write(&weights[..weights.len().min(8usize.saturating_add(header))]);
        for start in (0..weights.len()).step_by(1 << 20) {
            h.write(&weights[start..weights.len().min(start + 4096)]);
        }
    }
    h.finish()
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<T, EmbedError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(path, what, e.to_string()))
}

pub(crate) fn invalid(path: &Path, what: &'static str, reason: impl Into<String>) -> EmbedError {
    EmbedError::Invalid {
        path: path.to_path_buf(),
        what,
        reason: reason.into(),
    }
}

// The bot shares one Embedder across tasks (behind an Arc, called from spawn_blocking).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Embedder>();
};
