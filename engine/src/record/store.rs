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

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir). The parent
/// directory must already exist ([`RecordStore::dir`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::hostfs::write_atomic(path, &[bytes])
        .map_err(|e| Error::host(format!("cannot write to the record store: {e}")))
}

/// Whether `path` is a regular file of `len` bytes, not reached through a symlink.
fn present(path: &Path, len: usize) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == len as u64)
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

    /// The directory `root/parts…`, created if missing. The root may be a symlink (the user
    /// chose it); nothing inside the store is ever followed: a component that is a symlink or
    /// not a directory is refused, so a link planted in the store cannot redirect writes.
    fn dir(&self, parts: &[&str]) -> Result<PathBuf, Error> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| Error::host(format!("cannot create the record store: {e}")))?;
        let mut path = self.root.clone();
        for part in parts {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::host(format!(
                        "the record store holds something other than a directory at `{}` (corral never follows links inside its store)",
                        parts.join("/")
                    )));
                }
                Err(_) => match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                            return Err(Error::host(format!(
                                "the record store holds something other than a directory at `{}`",
                                parts.join("/")
                            )));
                        }
                    }
                    Err(e) => {
                        return Err(Error::host(format!("cannot create the record store: {e}")));
                    }
                },
            }
        }
        Ok(path)
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
        let (a, b) = hex_parts(&hash);
        let path = self.dir(&["blobs", &a])?.join(b);
        if !present(&path, bytes.len()) {
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
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(Error::invalid_input(format!(
                "blob {name} is not in the store (hint: move records between machines with `corral bundle`)"
            )));
        }
        if !self.inside(&path) {
            return Err(Error::invalid_input(format!(
                "blob {name} is reached through a link inside the store (corral never follows one)"
            )));
        }
        let bytes = crate::hostfs::read_bounded(&path, MAX_BLOB_BYTES)
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
        parse_hash(name).is_some_and(|h| {
            let p = self.blob_path(&h);
            std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) && self.inside(&p)
        })
    }

    /// Whether no component of `path` below the root is a symlink.
    fn inside(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let mut p = self.root.clone();
        rel.components().all(|c| {
            p.push(c);
            std::fs::symlink_metadata(&p).is_ok_and(|m| !m.file_type().is_symlink())
        })
    }

    /// Writes a sealed record and returns its path.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    pub fn put_record(&self, bytes: &[u8]) -> Result<PathBuf, Error> {
        let hash = *blake3::hash(bytes).as_bytes();
        let (a, b) = hex_parts(&hash);
        let path = self.dir(&["records", &a])?.join(format!("{b}.json"));
        // Content-addressed: a file already there under this name holds these bytes.
        if !present(&path, bytes.len()) {
            write_atomic(&path, bytes)?;
        }
        Ok(path)
    }

    /// The id of the record at `path` in a store (`blake3:` + the hex of its bytes, which is
    /// its file name): what the service answers instead of a host path.
    pub fn id_of(path: &Path) -> Option<String> {
        let stem = path.file_stem()?.to_str()?;
        let dir = path.parent()?.file_name()?.to_str()?;
        let id = format!("blake3:{dir}{stem}");
        parse_hash(&id).map(|_| id)
    }

    /// Where the record named `id` (`blake3:<64 hex>` or the bare hex) would be in this store;
    /// `None` for anything that is not such a name.
    pub fn record_path(&self, id: &str) -> Option<PathBuf> {
        let hex = id.strip_prefix("blake3:").unwrap_or(id);
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let hash = parse_hash(&format!("blake3:{hex}"))?;
        let (a, b) = hex_parts(&hash);
        Some(self.root.join("records").join(a).join(format!("{b}.json")))
    }

    /// Reads the record named `id` and checks that its bytes hash to its name.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `id` is not a record
    /// name, the record is not in the store (or reached through a link), too large, or
    /// altered. Messages never name a host path.
    pub fn read_record(&self, id: &str) -> Result<Vec<u8>, Error> {
        let path = self.record_path(id).ok_or_else(|| {
            Error::invalid_input(format!(
                "`{}` is not a record id (hint: `blake3:` and 64 hex digits)",
                id.escape_debug()
            ))
        })?;
        if std::fs::symlink_metadata(&path).is_err() || !self.inside(&path) {
            return Err(Error::invalid_input(format!(
                "record {id} is not in the store"
            )));
        }
        let bytes = crate::hostfs::read_bounded(&path, super::format::MAX_RECORD_BYTES as u64)
            .map_err(|_| Error::invalid_input(format!("record {id} cannot be read")))?;
        let hex = id.strip_prefix("blake3:").unwrap_or(id);
        if blake3::hash(&bytes).to_hex().as_str() != hex {
            return Err(Error::invalid_input(format!(
                "record {id} was altered (its contents do not match its name)"
            )));
        }
        Ok(bytes)
    }

    /// The store a record file lives in, if it sits in one (`<root>/records/xx/…json`).
    pub fn containing(record: &Path) -> Option<RecordStore> {
        let root = record.parent()?.parent()?;
        (root.file_name()? == "records").then(|| RecordStore::new(root.parent().unwrap_or(root)))
    }
}
