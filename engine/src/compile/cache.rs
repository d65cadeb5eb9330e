//! The compile cache: wasm produced from a source, keyed by blake3 of (source, language,
//! toolchain identity, flags), in a directory of the user's.
//!
//! Entries are written atomically (temp file, fsync, rename) and each carries the blake3 of
//! its contents, checked on every read, so a torn or altered entry is a miss, never a wrong
//! module. Only wasm is stored here (data that admission still checks), never native code.

use std::path::{Path, PathBuf};

/// A cache key: 32 bytes of blake3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Derives the key of a compile job.
    pub fn of(parts: &[&[u8]]) -> CacheKey {
        // v2: rustc's environment in the jail changed (a relative LD_LIBRARY_PATH); modules
        // built under v1 may hold the toolchain's host path (`option_env!`), so they must miss.
        let mut h = blake3::Hasher::new_derive_key("corral 2026 compile cache v2");
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        CacheKey(*h.finalize().as_bytes())
    }

    fn file(&self, dir: &Path) -> PathBuf {
        let hex = blake3::Hash::from_bytes(self.0).to_hex();
        dir.join(&hex[..2]).join(format!("{}.wasm", &hex[2..]))
    }
}

/// Reads an entry; `None` when absent or when its integrity check fails.
pub fn get(dir: &Path, key: CacheKey) -> Option<Vec<u8>> {
    let bytes = std::fs::read(key.file(dir)).ok()?;
    if bytes.len() < 32 {
        return None;
    }
    let (hash, body) = bytes.split_at(32);
    (blake3::hash(body).as_bytes() == hash).then(|| body.to_vec())
}

/// Writes an entry atomically. Failures are ignored: the cache is an optimisation.
pub fn put(dir: &Path, key: CacheKey, wasm: &[u8]) {
    let file = key.file(dir);
    let _ = crate::hostfs::write_atomic(&file, &[blake3::hash(wasm).as_bytes(), wasm]);
}
