//! Vectors of texts already embedded, kept on disk so a process that starts cold (`insight-bot
//! ask`, a restart of the bot) does not embed its collection again: embedding the built-in
//! collection's ~100 documents takes about a second, reading them back a millisecond.
//!
//! Keyed by the model's fingerprint (one file per model, so another model never sees these
//! vectors) and a 128-bit hash of the exact text embedded (so an edited insight is embedded anew).
//! It is a cache, never a source of truth: a missing, unreadable, damaged or foreign file is
//! ignored with a warning and rebuilt, and a cache that cannot be written costs speed, not
//! answers. Writes go to a temporary file renamed over the old one, so a crash or a second
//! process never leaves a half-written file.
//!
//! Format: `IBVC`, version (u32), model fingerprint (u64), entry count (u64), then per entry the
//! text hash (u128) and `DIM` (768) f32, all little-endian.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{EmbedError, Embedder, Vector, DIM};

const MAGIC: &[u8; 4] = b"IBVC";
const VERSION: u32 = 1;
const HEADER: usize = 4 + 4 + 8 + 8;
const ENTRY: usize = 16 + DIM * 4;

/// A 128-bit key for a text: two independent 64-bit hashes (FxHash and FNV-1a), so that a
/// collision (a wrong vector served for a text) is out of reach for any realistic collection.
/// Both are fixed algorithms, so keys stay valid across builds and Rust releases (the shipped
/// vectors depend on it).
fn key(text: &str) -> u128 {
    let mut fx = rustc_hash::FxHasher::default();
    text.hash(&mut fx);
    let fnv = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (u128::from(fx.finish()) << 64) | u128::from(fnv)
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<u128, Vector>,
    /// Entries added since the file was read or written.
    new: usize,
}

/// The cache of one model. `Send + Sync`.
#[derive(Debug)]
pub struct VectorCache {
    /// The file; `None` for a cache kept in memory only.
    path: Option<PathBuf>,
    fingerprint: u64,
    entries: Mutex<Entries>,
}

impl VectorCache {
    /// A cache that is never written to disk.
    pub fn in_memory(fingerprint: u64) -> VectorCache {
        VectorCache {
            path: None,
            fingerprint,
            entries: Mutex::default(),
        }
    }

    /// The cache of the model with `fingerprint` in `dir` (created when first saved). A file that
    /// cannot be used is ignored with a warning.
    pub fn open(dir: &Path, fingerprint: u64) -> VectorCache {
        let path = dir.join(format!("vectors-{fingerprint:016x}.bin"));
        let map = match std::fs::read(&path) {
            Ok(bytes) => parse(&bytes, fingerprint).unwrap_or_else(|reason| {
                tracing::warn!(path = %path.display(), "ignoring the embedding cache: {reason}");
                HashMap::new()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => {
                // One warning, and no second one at every save: a file that cannot be read
                // will not be written either, so the cache stays in memory.
                tracing::warn!(
                    path = %path.display(),
                    "cannot read the embedding cache ({e}): vectors are kept in memory only"
                );
                return VectorCache {
                    path: None,
                    fingerprint,
                    entries: Mutex::default(),
                };
            }
        };
        VectorCache {
            path: Some(path),
            fingerprint,
            entries: Mutex::new(Entries { map, new: 0 }),
        }
    }

    /// Adds the entries of a cache file's bytes written for the same model (vectors shipped with
    /// the program), without marking them as new: they are never written back. `Err` says why
    /// the bytes were not used (another model, a damaged file).
    pub fn merge(&self, bytes: &[u8]) -> Result<usize, String> {
        let map = parse(bytes, self.fingerprint)?;
        let count = map.len();
        let mut entries = self.lock();
        for (k, v) in map {
            entries.map.entry(k).or_insert(v);
        }
        Ok(count)
    }

    /// The cache file's bytes for exactly the vectors of `texts` (to ship them), in memory.
    pub fn export(&self, texts: &[&str]) -> Vec<u8> {
        let entries = self.lock();
        let map: HashMap<u128, Vector> = texts
            .iter()
            .filter_map(|t| entries.map.get(&key(t)).map(|v| (key(t), *v)))
            .collect();
        serialize(&map, self.fingerprint)
    }

    /// The file, when the cache is kept on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, text: &str) -> Option<Vector> {
        self.lock().map.get(&key(text)).copied()
    }

    pub fn insert(&self, text: &str, vector: Vector) {
        let mut entries = self.lock();
        if entries.map.insert(key(text), vector).is_none() {
            entries.new += 1;
        }
    }

    /// The vectors of `texts`, embedding only those not cached yet (in one batch) and caching them.
    pub fn embed(&self, embedder: &Embedder, texts: &[&str]) -> Result<Vec<Vector>, EmbedError> {
        let mut out: Vec<Option<Vector>> = texts.iter().map(|t| self.get(t)).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let batch: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            for (&i, vector) in missing.iter().zip(embedder.embed(&batch)?) {
                self.insert(texts[i], vector);
                out[i] = Some(vector);
            }
        }
        Ok(out.into_iter().map(|v| v.unwrap_or([0.0; DIM])).collect())
    }

    /// Writes the cache if it has new entries (atomically: a temporary file renamed over the old
    /// one). A cache in memory only has nothing to do.
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let (bytes, added) = {
            let mut entries = self.lock();
            if entries.new == 0 {
                return Ok(());
            }
            let added = std::mem::take(&mut entries.new);
            (serialize(&entries.map, self.fingerprint), added)
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::File::create(&tmp).and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        });
        match written.and_then(|()| std::fs::rename(&tmp, path)) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                // Still unsaved: the next save tries again.
                self.lock().new += added;
                Err(e)
            }
        }
    }
}

fn serialize(map: &HashMap<u128, Vector>, fingerprint: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + map.len() * ENTRY);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    // Sorted, so the same entries always give the same bytes.
    let mut keys: Vec<&u128> = map.keys().collect();
    keys.sort();
    for k in keys {
        out.extend_from_slice(&k.to_le_bytes());
        for x in &map[k] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

fn parse(bytes: &[u8], fingerprint: u64) -> Result<HashMap<u128, Vector>, String> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err("not an insight-bot vector cache".into());
    }
    if u32_at(4) != VERSION {
        return Err(format!(
            "format version {} (this build reads {VERSION})",
            u32_at(4)
        ));
    }
    if u64_at(8) != fingerprint {
        return Err("written for another model".into());
    }
    let count = usize::try_from(u64_at(16)).map_err(|_| "entry count too large".to_string())?;
    if count.checked_mul(ENTRY).and_then(|n| n.checked_add(HEADER)) != Some(bytes.len()) {
        return Err(format!(
            "{} bytes for {count} entries: truncated or damaged",
            bytes.len()
        ));
    }
    let mut map = HashMap::with_capacity(count);
    for entry in bytes[HEADER..].chunks_exact(ENTRY) {
        let k = u128::from_le_bytes(entry[..16].try_into().unwrap_or([0; 16]));
        let mut v = [0f32; DIM];
        for (x, b) in v.iter_mut().zip(entry[16..].chunks_exact(4)) {
            *x = f32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
            if !x.is_finite() {
                return Err("a vector holds a non-finite number".into());
            }
        }
        map.insert(k, v);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(seed: f32) -> Vector {
        let mut v = [0f32; DIM];
        for (i, x) in v.iter_mut().enumerate() {
            *x = seed + i as f32;
        }
        v
    }

    #[test]
    fn entries_survive_a_save_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VectorCache::open(dir.path(), 7);
        assert!(cache.is_empty());
        cache.insert("how do I delegate?", vector(1.0));
        cache.insert("fix the system", vector(2.0));
        cache.save().unwrap();
        let again = VectorCache::open(dir.path(), 7);
        assert_eq!(again.len(), 2);
        assert_eq!(again.get("how do I delegate?"), Some(vector(1.0)));
        assert_eq!(again.get("How do I delegate?"), None, "exact text only");
        // Another model's cache is another file: nothing shared.
        assert!(VectorCache::open(dir.path(), 8).is_empty());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VectorCache::open(dir.path(), 7);
        cache.insert("a", vector(1.0));
        cache.save().unwrap();
        let path = cache.path().unwrap().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        assert!(VectorCache::open(dir.path(), 7).is_empty(), "truncated");
        std::fs::write(&path, b"not a cache at all").unwrap();
        let replaced = VectorCache::open(dir.path(), 7);
        assert!(replaced.is_empty());
        replaced.insert("b", vector(3.0));
        replaced.save().unwrap();
        assert_eq!(VectorCache::open(dir.path(), 7).get("b"), Some(vector(3.0)));
        // A fingerprint mismatch inside the file (renamed from another model's) is refused too.
        std::fs::rename(&path, dir.path().join("vectors-0000000000000009.bin")).unwrap();
        assert!(VectorCache::open(dir.path(), 9).is_empty());
    }

    #[test]
    fn a_cache_that_cannot_be_read_stays_in_memory_and_still_answers() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        // The cache folder would have to be inside a regular file: reading it fails with "not a
        // directory", so the cache is kept in memory, with one warning, and never written (no
        // second warning at each save).
        let cache = VectorCache::open(&blocker.join("cache"), 1);
        assert_eq!(cache.path(), None);
        cache.insert("a", vector(1.0));
        assert!(cache.save().is_ok());
        assert_eq!(
            cache.get("a"),
            Some(vector(1.0)),
            "still served from memory"
        );
    }
}
