//! The compile cache: wasm produced from a source, keyed by blake3 of (source, language,
//! toolchain identity, flags), in a directory of the user's.
//!
//! Entries are written atomically (temp file, fsync, rename) and each carries the blake3 of
//! its contents, checked on every read, so a torn or altered entry is a miss, never a wrong
//! module. Only wasm is stored here (data that admission still checks), never native code,
//! with the compiler warnings a run reports (`Compiled::Warned`) in front of it: an entry is
//! `blake3(body) ‖ body`, body = `u32 LE length of the warnings ‖ warnings (UTF-8) ‖ wasm`.

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

/// Reads an entry: the wasm and the warnings stored with it; `None` when absent or when its
/// integrity check fails.
pub fn get(dir: &Path, key: CacheKey) -> Option<(Vec<u8>, Option<String>)> {
    let bytes = std::fs::read(key.file(dir)).ok()?;
    if bytes.len() < 32 {
        return None;
    }
    let (hash, body) = bytes.split_at(32);
    if blake3::hash(body).as_bytes() != hash {
        return None;
    }
    let (len, rest) = body.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (warnings, wasm) = rest.split_at(len);
    let warnings = String::from_utf8(warnings.to_vec()).ok()?;
    Some((wasm.to_vec(), (!warnings.is_empty()).then_some(warnings)))
}

/// Writes an entry atomically. Failures are ignored: the cache is an optimisation.
pub fn put(dir: &Path, key: CacheKey, wasm: &[u8], warnings: Option<&str>) {
    let file = key.file(dir);
    let warnings = warnings.unwrap_or("").as_bytes();
    let Ok(len) = u32::try_from(warnings.len()) else {
        return;
    };
    let len = len.to_le_bytes();
    let mut h = blake3::Hasher::new();
    h.update(&len);
    h.update(warnings);
    h.update(wasm);
    let _ = crate::hostfs::write_atomic(&file, &[h.finalize().as_bytes(), &len, warnings, wasm]);
}
