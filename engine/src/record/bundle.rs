//! Portable bundles: one file holding a record and every blob it names.
//!
//! Layout: the magic `CORRAL-BUNDLE-1\n`; the record (`u64` length + bytes); the blob count
//! (`u32`); per blob its blake3 (32 bytes), `u64` length and bytes; finally blake3 of all the
//! preceding bytes. Reading checks the trailer, every blob's hash, that the record parses and
//! that the blobs are exactly the record's (no more, no fewer) before anything runs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;

use super::format::{RunRecord, hash_of, parse_hash};
use super::store::{MAX_BLOB_BYTES, RecordStore};

const MAGIC: &[u8; 16] = b"CORRAL-BUNDLE-1\n";
/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: u64 = 2 << 30;
/// Most blobs in a bundle.
pub const MAX_BUNDLE_BLOBS: u32 = 1_000_000;

/// Whether `bytes` start like a bundle.
pub fn is_bundle(prefix: &[u8]) -> bool {
    prefix.starts_with(MAGIC)
}

/// Writes the record at `record_path` (with its blobs from `store`) as a bundle at `out`.
///
/// # Errors
///
/// The record is invalid, a blob is missing or altered, or `out` cannot be written.
pub fn write(record_bytes: &[u8], store: &RecordStore, out: &Path) -> Result<(), Error> {
    let record = RunRecord::parse(record_bytes).map_err(|e| Error::invalid_input(e.to_string()))?;
    let mut names: Vec<String> = record.blobs().into_iter().map(|b| b.blob.clone()).collect();
    names.push(record.module.hash.clone());
    // Input trees name further blobs (the files).
    for d in &record.inputs.dirs {
        let tree: super::format::Tree = serde_json::from_slice(&store.get_blob(&d.tree.blob)?)
            .map_err(|e| Error::invalid_input(format!("input listing is malformed: {e}")))?;
        names.extend(tree.files.into_iter().map(|f| f.contents.blob));
    }
    names.sort();
    names.dedup();
    let mut buf = Vec::new();
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(record_bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(record_bytes);
    buf.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for n in &names {
        let bytes = store.get_blob(n)?;
        let hash = parse_hash(n).ok_or_else(|| Error::invalid_input("bad blob name"))?;
        buf.extend_from_slice(&hash);
        buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        buf.extend_from_slice(&bytes);
    }
    let trailer = *blake3::hash(&buf).as_bytes();
    buf.extend_from_slice(&trailer);
    crate::hostfs::write_atomic(out, &[&buf])
        .map_err(|e| Error::invalid_input(format!("cannot write `{}`: {e}", out.display())))
}

/// A verified bundle: the record bytes and its blobs.
#[derive(Debug)]
pub struct Bundle {
    /// The record's bytes.
    pub record: Vec<u8>,
    /// Blobs by `blake3:` name.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

/// Reads and verifies a bundle.
///
/// # Errors
///
/// Any inconsistency: bad magic, truncation, trailer mismatch, a blob not matching its hash,
/// duplicate blobs, caps exceeded.
pub fn read(bytes: &[u8]) -> Result<Bundle, String> {
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err("the bundle is too large".into());
    }
    if bytes.len() < MAGIC.len() + 32 || !bytes.starts_with(MAGIC) {
        return Err("not a corral bundle".into());
    }
    let (body, trailer) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != trailer {
        return Err("the bundle was altered (its checksum does not match)".into());
    }
    let mut r = &body[MAGIC.len()..];
    let mut take = |n: u64| -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflow")?;
        if r.len() < n {
            return Err("the bundle is truncated".into());
        }
        let (a, b) = r.split_at(n);
        r = b;
        Ok(a)
    };
    let rec_len = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "bad length")?);
    if rec_len > super::format::MAX_RECORD_BYTES as u64 {
        return Err("the bundle's record is too large".into());
    }
    let record = take(rec_len)?.to_vec();
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad count")?);
    if count > MAX_BUNDLE_BLOBS {
        return Err("the bundle has too many blobs".into());
    }
    let mut blobs = BTreeMap::new();
    for _ in 0..count {
        let hash: [u8; 32] = take(32)?.try_into().map_err(|_| "bad hash")?;
        let len = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "bad length")?);
        if len > MAX_BLOB_BYTES {
            return Err("a blob in the bundle is too large".into());
        }
        let data = take(len)?;
        if blake3::hash(data).as_bytes() != &hash {
            return Err("a blob in the bundle does not match its hash".into());
        }
        let name = hash_of(data);
        if blobs.insert(name, data.to_vec()).is_some() {
            return Err("the bundle holds a blob twice".into());
        }
    }
    if !r.is_empty() {
        return Err("the bundle has trailing bytes".into());
    }
    Ok(Bundle { record, blobs })
}
