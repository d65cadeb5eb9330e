//! The record store: content-addressed blobs and records on disk, written atomically.
//!
//! Layout: `<root>/blobs/<2 hex>/<62 hex>` and `<root>/records/<2 hex>/<62 hex>.json`, named
//! by blake3 of their contents. Every write goes to a temp file in the same directory, is
//! fsynced, then renamed into place (and the directory fsynced), so a process killed at any
//! moment leaves either nothing or a complete file. Blobs are written before the record
//! that names them.

use std::path::{Path, PathBuf};

use crate::error::Error;

use super::format::parse_hash;

/// Largest blob read back from a store (modules can be big; nothing should be bigger).
pub const MAX_BLOB_BYTES: u64 = 1 << 30;

/// A record store rooted at a directory.
#[derive(Debug, Clone)]
pub struct RecordStore {
    root: PathBuf,
}

fn hex_parts(hash: &[u8; 32]) -> (String, String) {
    let hex = blake3::Hash::from_bytes(*hash).to_hex().to_string();
    (hex[..2].to_string(), hex[2..].to_string())
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::hostfs::write_atomic(path, &[bytes])
        .map_err(|e| Error::host(format!("cannot write to the record store: {e}")))
}

impl RecordStore {
    /// A store at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> RecordStore {
        RecordStore { root: root.into() }
    }

    /// The default store's location ([`hostfs::store_dir`](crate::hostfs::store_dir)).
    ///
    /// # Ambient authority
    ///
    /// Reads `CORRAL_HOME`, `XDG_DATA_HOME` and `HOME` from the process environment.
    pub fn default_location() -> Option<PathBuf> {
        crate::hostfs::store_dir()
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, hash: &[u8; 32]) -> PathBuf {
        let (a, b) = hex_parts(hash);
        self.root.join("blobs").join(a).join(b)
    }

    /// Stores `bytes` as a blob (deduplicated) and returns its `blake3:` name.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, Error> {
        let hash = *blake3::hash(bytes).as_bytes();
        let path = self.blob_path(&hash);
        let present = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !present {
            write_atomic(&path, bytes)?;
        }
        Ok(format!(
            "blake3:{}",
            blake3::Hash::from_bytes(hash).to_hex()
        ))
    }

    /// Reads a blob and verifies its hash.
    ///
    /// # Errors
    ///
    /// Missing, oversized, or not matching its name.
    pub fn get_blob(&self, name: &str) -> Result<Vec<u8>, Error> {
        let hash = parse_hash(name).ok_or_else(|| {
            Error::invalid_input(format!("invalid blob name `{}`", name.escape_debug()))
        })?;
        let path = self.blob_path(&hash);
        let meta = std::fs::metadata(&path).map_err(|_| {
            Error::invalid_input(format!(
                "blob {name} is not in the store (hint: move records between machines with `corral bundle`)"
            ))
        })?;
        if meta.len() > MAX_BLOB_BYTES {
            return Err(Error::invalid_input(format!("blob {name} is too large")));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::invalid_input(format!("cannot read blob {name}: {e}")))?;
        if blake3::hash(&bytes).as_bytes() != &hash {
            return Err(Error::invalid_input(format!(
                "blob {name} was altered (its contents do not match its hash)"
            )));
        }
        Ok(bytes)
    }

    /// Whether a blob is present (not verified).
    pub fn has_blob(&self, name: &str) -> bool {
        parse_hash(name).is_some_and(|h| self.blob_path(&h).is_file())
    }

    /// Writes a sealed record and returns its path.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    pub fn put_record(&self, bytes: &[u8]) -> Result<PathBuf, Error> {
        let hash = *blake3::hash(bytes).as_bytes();
        let (a, b) = hex_parts(&hash);
        let path = self.root.join("records").join(a).join(format!("{b}.json"));
        // Content-addressed: a file already there under this name holds these bytes.
        let present = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !present {
            write_atomic(&path, bytes)?;
        }
        Ok(path)
    }

    /// The store a record file lives in, if it sits in one (`<root>/records/xx/…json`).
    pub fn containing(record: &Path) -> Option<RecordStore> {
        let root = record.parent()?.parent()?;
        (root.file_name()? == "records").then(|| RecordStore::new(root.parent().unwrap_or(root)))
    }
}
