//! The on-disk cache of precompiled code (DESIGN.md §10).
//!
//! Compiling a big module (the Python runner is ~28 MB of wasm) takes seconds; loading its
//! precompiled artifact with `deserialize_file` (mmap) takes milliseconds. Artifacts are keyed
//! by blake3 of the wasm bytes and the engine identity, hold only code this engine produced
//! from bytes it admitted, and live in a private directory of the user's.
//!
//! Loading precompiled code is `unsafe` in wasmtime (it is trusted native code), so every
//! artifact has a sidecar (`.meta`) written after it, recording the artifact's blake3, its
//! size, inode and change time, and the admission facts of the wasm it came from. An artifact
//! is used only if the sidecar parses and the file's (size, inode, ctime) still match — any
//! rewrite, replacement or truncation changes at least one of them — and otherwise it is
//! re-hashed (and discarded if the hash differs). Nothing from a run record or a request is
//! ever loaded this way.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::admit::ModuleInfo;
use crate::report::ModuleHash;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    info: ModuleInfo,
    blake3: String,
    len: u64,
    ino: u64,
    ctime_ns: i128,
}

/// A cache directory of artifacts for one engine identity.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

fn stat_key(path: &Path) -> Option<(u64, u64, i128)> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.len(),
        m.ino(),
        i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    ))
}

impl ArtifactCache {
    pub(crate) fn new(dir: PathBuf, engine_key: String) -> ArtifactCache {
        ArtifactCache { dir, engine_key }
    }

    fn paths(&self, hash: &ModuleHash) -> (PathBuf, PathBuf) {
        let h = blake3::Hash::from_bytes(hash.0).to_hex();
        let base = self.dir.join(format!("{}-{}", &h[..32], self.engine_key));
        (base.with_extension("cwasm"), base.with_extension("meta"))
    }

    /// The artifact for `hash`, if present and intact: its path and the module's facts.
    pub(crate) fn lookup(&self, hash: &ModuleHash) -> Option<(PathBuf, ModuleInfo)> {
        let (art, meta_path) = self.paths(hash);
        let meta: Meta = serde_json::from_slice(&std::fs::read(&meta_path).ok()?).ok()?;
        let (len, ino, ctime) = stat_key(&art)?;
        if (len, ino, ctime) == (meta.len, meta.ino, meta.ctime_ns) {
            return Some((art, meta.info));
        }
        // Changed since written (or copied): trust it only if its contents still hash right.
        let bytes = std::fs::read(&art).ok()?;
        if blake3::hash(&bytes).to_hex().as_str() != meta.blake3 {
            let _ = std::fs::remove_file(&art);
            let _ = std::fs::remove_file(&meta_path);
            return None;
        }
        let _ = self.write_meta(&art, &meta_path, meta.info.clone(), &meta.blake3);
        Some((art, meta.info))
    }

    /// Stores a freshly serialised artifact (atomically; failures only cost a recompile).
    pub(crate) fn store(&self, hash: &ModuleHash, info: &ModuleInfo, serialized: &[u8]) {
        let (art, meta_path) = self.paths(hash);
        if crate::hostfs::write_atomic(&art, &[serialized]).is_err() {
            return;
        }
        let digest = blake3::hash(serialized).to_hex().to_string();
        let _ = self.write_meta(&art, &meta_path, info.clone(), &digest);
    }

    fn write_meta(
        &self,
        art: &Path,
        meta_path: &Path,
        info: ModuleInfo,
        digest: &str,
    ) -> Option<()> {
        let (len, ino, ctime_ns) = stat_key(art)?;
        let meta = Meta {
            info,
            blake3: digest.to_string(),
            len,
            ino,
            ctime_ns,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).ok()?;
        tmp.write_all(&serde_json::to_vec(&meta).ok()?).ok()?;
        tmp.persist(meta_path).ok()?;
        Some(())
    }
}
