//! The embedding model as the rest of the bot relies on it: the same token ids as Hugging Face
//! `tokenizers`, the same vectors as sentence-transformers (within the int8 rounding of the
//! shipped weights), and a clear error naming the file for every way the model folder can be
//! broken.
//!
//! The references (`tests/data/embedding/mpnet_*`) were computed in Python from the original f32
//! weights; `models/all-mpnet-base-v2/reference/` has the scripts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use insight_bot::embedding::{
    cosine, self_check, EmbedError, Embedder, ReferenceEmbedding, Tokenizer, Vector, DIM, MODEL_DIR,
};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde::Deserialize;

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(MODEL_DIR)
}

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/embedding")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        Embedder::load_repository_model().unwrap_or_else(|e| panic!("the repository's model: {e}"))
    })
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    sentence: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

#[test]
fn vectors_match_sentence_transformers() {
    let fixture: Fixture = serde_json::from_str(&data("mpnet_reference_embeddings.json")).unwrap();
    assert!(fixture.cases.len() >= 40);
    let e = embedder();
    for c in &fixture.cases {
        assert_eq!(
            e.tokenizer().encode(&c.sentence),
            c.token_ids,
            "token ids of {:?}",
            c.sentence
        );
    }
    let texts: Vec<&str> = fixture.cases.iter().map(|c| c.sentence.as_str()).collect();
    let batched = e.embed(&texts).unwrap();
    let mut cosines = Vec::new();
    for (c, got) in fixture.cases.iter().zip(&batched) {
        let expected: Vector = c.embedding.as_slice().try_into().expect("768 values");
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
        cosines.push((cosine(got, &expected), c.sentence.as_str()));
    }
    cosines.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The int8 weights (one scale per 128) against the original f32 model, measured in numpy
    // float64: worst 0.99775 (the degenerate "word " x 300), median 0.99977. The Rust f32
    // forward must land there too; a forward pass that is wrong anywhere falls far below.
    let (worst, median) = (cosines[0], cosines[cosines.len() / 2]);
    assert!(worst.0 >= 0.997, "worst cosine {worst:?}");
    assert!(median.0 >= 0.9995, "median cosine {median:?}");
    // Batching and padding change nothing: a text alone gives the same vector.
    let alone = e.embed_one(texts[0]).unwrap();
    assert!(cosine(&alone, &batched[0]) > 0.99999);
}

#[derive(Deserialize)]
struct TokenCase {
    text: String,
    ids: Vec<u32>,
    ids384: Vec<u32>,
}

#[test]
fn token_ids_match_hugging_face_tokenizers() {
    let json = std::fs::read_to_string(model_dir().join("tokenizer.json")).unwrap();
    let tok = Tokenizer::from_json(&json, 384).unwrap();
    let (cls, sep) = (tok.token_id("<s>").unwrap(), tok.token_id("</s>").unwrap());
    let cases: Vec<TokenCase> = data("mpnet_tokenizer_cases.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cases.len(), 1000);
    let mut mismatches = Vec::new();
    for c in &cases {
        let mut full = vec![cls];
        full.extend(tok.encode_untruncated(&c.text));
        full.push(sep);
        if full != c.ids || tok.encode(&c.text) != c.ids384 {
            mismatches.push(format!("{:?}\n  hf   {:?}\n  ours {full:?}", c.text, c.ids));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn a_text_limited_to_n_pieces_embeds_as_its_first_n_minus_2_pieces() {
    let e = embedder();
    // Each "word" is one piece: 300 of them limited to 16 tokens are the first 14 in the template.
    let long = "word ".repeat(300);
    let short = "word ".repeat(14);
    let limited = e.embed_limited(&[&long, "short one"], &[16, 16]).unwrap();
    let expected = e.embed(&[&short, "short one"]).unwrap();
    assert!(cosine(&limited[0], &expected[0]) > 0.99999);
    assert!(
        cosine(&limited[1], &expected[1]) > 0.99999,
        "under the limit: unchanged"
    );
    assert!(
        cosine(&limited[0], &e.embed_one(&long).unwrap()) < 0.9999,
        "the cut matters"
    );
}

#[test]
fn empty_and_odd_input_still_embeds() {
    let e = embedder();
    assert!(e.embed(&[]).unwrap().is_empty());
    for text in [
        "",
        " ",
        "?",
        "<pad>",
        "<s></s>",
        "🙂🙂🙂",
        &"word ".repeat(2000),
    ] {
        let v = e.embed_one(text).unwrap();
        assert_eq!(v.len(), DIM);
        assert!(v.iter().all(|x| x.is_finite()), "{text:?}");
    }
}

/// Every file of the model folder that loading reads.
fn model_files() -> Vec<String> {
    let mut files: Vec<String> = [
        "config.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "model.safetensors.index.json",
        self_check::FILE,
    ]
    .map(String::from)
    .to_vec();
    files.extend(shards());
    files
}

/// The weight shards' file names, from the index.
fn shards() -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model_dir().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let mut names: Vec<String> = index["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A scratch copy of the model folder with `file` replaced by `contents` (or removed).
fn broken_copy(file: &str, contents: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in model_files() {
        if f != file {
            std::fs::copy(model_dir().join(&f), dir.path().join(&f)).unwrap();
        }
    }
    if let Some(c) = contents {
        std::fs::write(dir.path().join(file), c).unwrap();
    }
    dir
}

fn load_error(dir: &Path) -> EmbedError {
    match Embedder::load_dir(dir) {
        Ok(_) => panic!("loaded {}", dir.display()),
        Err(e) => e,
    }
}

/// One tensor as stored: dtype, shape, bytes.
type Stored = (Dtype, Vec<usize>, Vec<u8>);

/// A scratch copy of the model folder whose shard `shard` has `edit` applied to its tensors.
fn copy_with_shard(
    shard: &str,
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, Stored>),
) -> tempfile::TempDir {
    let bytes = std::fs::read(model_dir().join(shard)).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: std::collections::BTreeMap<String, Stored> = file
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                (v.dtype(), v.shape().to_vec(), v.data().to_vec()),
            )
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let d = broken_copy(shard, None);
    std::fs::write(
        d.path().join(shard),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    d
}

/// The shard that holds `tensor`.
fn shard_of(tensor: &str) -> String {
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model_dir().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    index["weight_map"][tensor].as_str().unwrap().to_string()
}

#[test]
fn a_missing_or_corrupt_model_is_an_error_naming_the_file() {
    let e = load_error(Path::new("/nonexistent/model"));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/model/config.json: cannot read"),
        "{e}"
    );

    let second = &shards()[1];
    let d = broken_copy(second, None);
    let e = load_error(d.path());
    assert!(matches!(e, EmbedError::Read { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("{second}: cannot read")),
        "{e}"
    );

    let full = std::fs::read(model_dir().join(second)).unwrap();
    for (what, bytes) in [
        ("empty", &b""[..]),
        ("garbage", &b"this is not a safetensors file at all"[..]),
        (
            "a huge header length",
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, b'{'][..],
        ),
        ("truncated", &full[..full.len() / 2]),
    ] {
        let d = broken_copy(second, Some(bytes));
        let e = load_error(d.path());
        assert!(matches!(e, EmbedError::Invalid { .. }), "{what}: {e}");
        let named = d.path().join(second);
        assert!(
            e.to_string().starts_with(&*named.to_string_lossy()),
            "{what}: {e}"
        );
    }

    let d = broken_copy(
        "model.safetensors.index.json",
        Some(br#"{"weight_map": {"x": "../../etc/passwd"}}"#),
    );
    let e = load_error(d.path()).to_string();
    assert!(
        e.contains("model.safetensors.index.json: invalid safetensors index"),
        "{e}"
    );

    let d = broken_copy("config.json", Some(br#"{"model_type": "bert"}"#));
    let e = load_error(d.path());
    assert!(
        e.to_string()
            .contains("config.json: invalid model config: model_type \"bert\" is not implemented"),
        "{e}"
    );
    let d = broken_copy("tokenizer.json", Some(br#"{"added_tokens": []}"#));
    let e = load_error(d.path());
    assert!(
        e.to_string().contains("tokenizer.json: invalid tokenizer"),
        "{e}"
    );

    // A readable shard with one tensor of the wrong shape, and then one missing.
    let bias = "encoder.layer.3.output.dense.bias";
    let d = copy_with_shard(&shard_of(bias), |map| {
        map.insert(bias.into(), (Dtype::F32, vec![383], vec![0; 383 * 4]));
    });
    let e = load_error(d.path());
    assert!(
        matches!(e, EmbedError::Shape { ref name, .. } if name == bias),
        "{e}"
    );
    let table = "encoder.relative_attention_bias.weight";
    let d = copy_with_shard(&shard_of(table), |map| {
        map.remove(table);
    });
    let e = load_error(d.path());
    assert!(
        matches!(e, EmbedError::MissingTensor { ref name, .. } if name == table),
        "{e}"
    );
}

#[test]
fn related_texts_are_closer_than_unrelated_ones() {
    let e = embedder();
    let v = e
        .embed(&[
            "How do I stop micromanaging my team?",
            "Learn to trust your engineers and delegate the work.",
            "What is the best pizza in Naples?",
        ])
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}

#[test]
fn the_shipped_vectors_match_the_model_and_the_current_texts() {
    use insight_bot::embedding::cache::VectorCache;
    use insight_bot::insights::search::{shipped_texts, SHIPPED_VECTORS};
    use insight_bot::insights::Library;
    let e = embedder();
    let texts = shipped_texts(Library::builtin().unwrap().insights());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/insights/search/shipped_vectors.bin");
    if std::env::var_os("INSIGHT_BOT_WRITE_SHIPPED_VECTORS").is_some() {
        let cache = VectorCache::in_memory(e.fingerprint());
        // Texts already shipped for this model keep their vectors (the merge refuses another
        // model's); only new texts are embedded, and texts no longer used are left out.
        let _ = cache.merge(SHIPPED_VECTORS);
        cache.embed(e, &refs).unwrap();
        std::fs::write(&file, cache.export(&refs)).unwrap();
        eprintln!("wrote {} vectors to {}", refs.len(), file.display());
        return;
    }
    let shipped = VectorCache::in_memory(e.fingerprint());
    let count = shipped.merge(SHIPPED_VECTORS).unwrap_or_else(|reason| {
        panic!("the shipped vectors do not fit the model ({reason}): run INSIGHT_BOT_WRITE_SHIPPED_VECTORS=1 cargo test --test embedding shipped")
    });
    let missing: Vec<&&str> = refs.iter().filter(|t| shipped.get(t).is_none()).collect();
    assert!(
        missing.is_empty(),
        "{} texts have no shipped vector (an anchor or a built-in insight changed): run INSIGHT_BOT_WRITE_SHIPPED_VECTORS=1 cargo test --test embedding shipped\n{missing:?}",
        missing.len()
    );
    assert_eq!(
        count,
        refs.len(),
        "the shipped file holds vectors of texts no longer used"
    );
    // A sample is embedded again: the shipped vectors are this model's.
    let sample: Vec<&str> = refs.iter().step_by(97).copied().collect();
    for (text, fresh) in sample.iter().zip(e.embed(&sample).unwrap()) {
        let stored = shipped.get(text).unwrap();
        assert!(cosine(&stored, &fresh) > 0.9999, "{text:?}");
    }
}

/// A scratch copy of the model folder whose `file` (a JSON file) has `field` set to `value`.
fn copy_with_json_field(file: &str, field: &str, value: serde_json::Value) -> tempfile::TempDir {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model_dir().join(file)).unwrap()).unwrap();
    json[field] = value;
    broken_copy(file, Some(&serde_json::to_vec(&json).unwrap()))
}

#[test]
fn a_config_outside_sane_bounds_is_refused_naming_file_field_value_and_range() {
    // 10^12 layers used to abort the process on a 112 TB allocation; zero layers and a
    // 2-piece max_seq_length used to load.
    for (file, field, value, expected) in [
        (
            "config.json",
            "num_hidden_layers",
            serde_json::json!(1_000_000_000_000u64),
            "num_hidden_layers is 1000000000000, allowed 1..=48",
        ),
        (
            "config.json",
            "num_hidden_layers",
            serde_json::json!(0),
            "num_hidden_layers is 0, allowed 1..=48",
        ),
        (
            "sentence_bert_config.json",
            "max_seq_length",
            serde_json::json!(2),
            "max_seq_length is 2, allowed 16..=514",
        ),
        (
            "config.json",
            "max_position_embeddings",
            serde_json::json!(1u64 << 40),
            "max_position_embeddings is 1099511627776, allowed 16..=16384",
        ),
        (
            "config.json",
            "num_attention_heads",
            serde_json::json!(0),
            "num_attention_heads is 0, allowed 1..=64",
        ),
    ] {
        let d = copy_with_json_field(file, field, value);
        let e = load_error(d.path());
        assert!(matches!(e, EmbedError::OutOfRange { .. }), "{e}");
        let named = format!("{}: {expected}", d.path().join(file).display());
        assert!(e.to_string().starts_with(&named), "{e}\nexpected: {named}");
    }
}

#[test]
fn nan_weights_are_refused_naming_the_file_and_the_tensor() {
    // They used to load, and then every vector was NaN: every answer "no close match". A NaN
    // scale makes a whole group of an int8 matrix NaN.
    let name = "encoder.layer.2.attention.attn.o.weight";
    let shard = shard_of(name);
    let d = copy_with_shard(&shard, |map| {
        let scale = map.get_mut(&format!("{name}.scale")).unwrap();
        scale.2[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let e = load_error(d.path());
    assert!(
        matches!(e, EmbedError::NonFinite { name: ref n, .. } if n == name),
        "{e}"
    );
    let named = d.path().join(&shard);
    assert!(e.to_string().starts_with(&*named.to_string_lossy()), "{e}");
    assert!(e.to_string().contains("NaN"), "{e}");
}

#[test]
fn garbage_weights_fail_the_self_check_naming_the_model() {
    // Well-formed, finite and wrong: two layers' feed-forward weights swapped, as a bad
    // conversion might. Bounds, shapes and the finiteness scan all pass; the vector does not.
    let shard = shard_of("encoder.layer.0.output.dense.weight");
    assert_eq!(shard, shard_of("encoder.layer.1.output.dense.weight"));
    let d = copy_with_shard(&shard, |map| {
        for part in [
            "intermediate.dense.weight",
            "intermediate.dense.weight.scale",
            "output.dense.weight",
            "output.dense.weight.scale",
        ] {
            let a = map.remove(&format!("encoder.layer.0.{part}")).unwrap();
            let b = map.remove(&format!("encoder.layer.1.{part}")).unwrap();
            map.insert(format!("encoder.layer.0.{part}"), b);
            map.insert(format!("encoder.layer.1.{part}"), a);
        }
    });
    assert!(
        Embedder::load_dir_without_self_check(d.path()).is_ok(),
        "the other checks pass: this exercises the self-check alone"
    );
    let e = load_error(d.path());
    assert!(matches!(e, EmbedError::SelfCheck { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "{}: the model fails its self-check",
            d.path().display()
        )),
        "{message}"
    );
    assert!(message.contains("cosine"), "{message}");
}

#[test]
fn a_missing_or_wrong_reference_embedding_is_an_error_saying_what_to_do() {
    let d = broken_copy(self_check::FILE, None);
    let e = load_error(d.path()).to_string();
    assert!(
        e.starts_with(&d.path().join(self_check::FILE).display().to_string()),
        "{e}"
    );
    assert!(e.contains("insight-bot model-reference"), "{e}");

    // Another sentence's vector: the model is fine, the reference does not belong to it.
    let mut r: ReferenceEmbedding =
        serde_json::from_slice(&std::fs::read(model_dir().join(self_check::FILE)).unwrap())
            .unwrap();
    r.sentence = "What is the best pizza in Naples?".to_string();
    let d = broken_copy(self_check::FILE, Some(&serde_json::to_vec(&r).unwrap()));
    assert!(matches!(load_error(d.path()), EmbedError::SelfCheck { .. }));

    r.embedding.pop();
    let d = broken_copy(self_check::FILE, Some(&serde_json::to_vec(&r).unwrap()));
    let e = load_error(d.path()).to_string();
    assert!(e.contains("767 values, the model embeds in 768"), "{e}");
}

#[test]
fn the_shipped_reference_embedding_is_the_python_one_and_passes() {
    // Computed independently of this Rust forward pass (numpy float64, original f32 weights),
    // so the self-check pins the implementation as well as the files.
    let r: ReferenceEmbedding =
        serde_json::from_slice(&std::fs::read(model_dir().join(self_check::FILE)).unwrap())
            .unwrap();
    let fixture: Fixture = serde_json::from_str(&data("mpnet_reference_embeddings.json")).unwrap();
    let case = fixture
        .cases
        .iter()
        .find(|c| c.sentence == r.sentence)
        .expect("the reference sentence is a fixture case");
    assert_eq!(r.embedding, case.embedding);
    // The int8 weights against the f32 model's vector: 0.9997 or better (numpy: see
    // models/all-mpnet-base-v2/PROVENANCE.md); the load refuses anything under 0.999.
    let c = embedder().self_check_cosine();
    assert!((0.9997..=1.0001).contains(&c), "{c}");
}
