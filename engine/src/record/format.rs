//! The run-record format: versioned, canonical, bounded, strictly parsed. No wasmtime here.
//!
//! A record is compact JSON whose field order is fixed by these types, so serialising a parsed
//! record gives back the exact same bytes; `record_hash` is blake3 of the record serialised
//! with `record_hash` empty. Records are untrusted input: the parser rejects unknown fields,
//! oversized input, malformed hashes and anything that is not the canonical encoding.

use serde::{Deserialize, Serialize};

/// Major version: a reader refuses other majors.
pub const FORMAT_MAJOR: u32 = 1;
/// Minor version: a reader accepts older minors of its major, refuses newer ones.
pub const FORMAT_MINOR: u32 = 0;
/// Largest record file accepted.
pub const MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;
/// Inline argv/env values up to this many bytes; longer ones are blobs.
pub const MAX_INLINE_VALUE: usize = 256;

/// Format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

/// What produced the record. Replays refuse other engine identities unless asked to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineId {
    /// corral's version.
    pub corral: String,
    /// wasmtime's version.
    pub wasmtime: String,
    /// Digest of every setting that can change guest-visible behaviour.
    pub config: String,
    /// The host CPU's codegen flags (informational: semantics do not depend on them, the
    /// wasm stack depth at which overflow happens may).
    pub host_isa: String,
}

/// A reference to a blob: its hash and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    /// `blake3:<hex>`.
    pub blob: String,
    /// Size in bytes.
    pub size: u64,
}

/// An argv or env value: inline text, or a blob for long values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// The value, when short.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    /// The value's blob, when long.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub blob: Option<BlobRef>,
}

/// The module that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleRef {
    /// `blake3:<hex>` of the wasm bytes (also the blob name).
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// The source language it came from (informational).
    pub language: String,
}

/// The resolved policy (its canonical TOML is a blob).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    /// The policy's name.
    pub name: String,
    /// Its canonical TOML.
    pub toml: BlobRef,
}

/// One read-only input directory; its listing (dirs, files with blobs) is a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirRef {
    /// Guest path.
    pub guest: String,
    /// The tree listing ([`Tree`] as JSON).
    pub tree: BlobRef,
}

/// The listing of an input directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// Directories, relative.
    pub dirs: Vec<String>,
    /// Files: relative path and contents.
    pub files: Vec<TreeFile>,
}

/// One file of an input directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeFile {
    /// Relative path.
    pub path: String,
    /// Contents.
    pub contents: BlobRef,
}

/// Everything the guest received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// `argv`, including `argv[0]`.
    pub argv: Vec<Text>,
    /// The environment, sorted by name.
    pub env: Vec<(String, Text)>,
    /// Stdin (absent when empty).
    pub stdin: Option<BlobRef>,
    /// Seed of the virtual random streams.
    pub seed: u64,
    /// The case input offered through `corral_v1` (absent when none).
    pub input: Option<BlobRef>,
    /// Read-only input directories.
    pub dirs: Vec<DirRef>,
    /// Guest paths of writable host directories (their contents are not recorded).
    pub rw_dirs: Vec<String>,
}

/// Captured output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputRef {
    /// The captured bytes.
    pub data: BlobRef,
    /// The guest tried to write past the cap.
    pub truncated: bool,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedOutcome {
    /// Verdict kind.
    pub verdict: String,
    /// Exit code (ok/exit).
    pub exit_code: Option<i32>,
    /// Limit name.
    pub limit: Option<String>,
    /// Trap kind.
    pub trap: Option<String>,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Stdout.
    pub stdout: OutputRef,
    /// Stderr.
    pub stderr: OutputRef,
    /// Host calls made.
    pub calls: u64,
    /// Calls refused.
    pub denials: u64,
    /// Chained hash over the audit trail.
    pub trail_hash: String,
    /// False for wall-clock verdicts, which no replay can promise to reproduce.
    pub deterministic: bool,
}

/// A checkpoint of the audit chain: `(calls, fuel, chain hash)`.
pub type CheckpointEntry = (u64, u64, String);

/// A run record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Format version (checked first).
    pub format: FormatVersion,
    /// Engine identity.
    pub engine: EngineId,
    /// The module that ran.
    pub module: ModuleRef,
    /// The resolved policy.
    pub policy: PolicyRef,
    /// Inputs.
    pub inputs: Inputs,
    /// RecordedOutcome.
    pub outcome: RecordedOutcome,
    /// The kept audit events (a binary blob; absent for runs that made no call).
    pub trail: Option<BlobRef>,
    /// Whether `trail` holds every call (else only the first ones).
    pub trail_complete: bool,
    /// At most [`MAX_CHECKPOINTS`](crate::MAX_CHECKPOINTS) checkpoints,
    /// evenly spaced on multiples of
    /// [`CHECKPOINT_EVERY`](crate::CHECKPOINT_EVERY) calls.
    pub checkpoints: Vec<CheckpointEntry>,
    /// blake3 of this record serialised with `record_hash` empty.
    pub record_hash: String,
}

/// Why a record could not be read. The guest never runs for any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("the record is {0} bytes, more than the {MAX_RECORD_BYTES} allowed")]
    TooLarge(usize),
    /// Not a record at all.
    #[error("not a corral run record: {0}")]
    Malformed(String),
    /// Written by a newer corral.
    #[error(
        "the record has format {0}.{1}, newer than this corral understands ({FORMAT_MAJOR}.{FORMAT_MINOR}) (hint: replay it with a newer corral)"
    )]
    TooNew(u32, u32),
    /// Written by an incompatible older corral.
    #[error("the record has format {0}.{1}, older than this corral can replay ({FORMAT_MAJOR}.x)")]
    TooOld(u32, u32),
    /// Altered after it was written.
    #[error("the record was altered after it was written ({0})")]
    Tampered(String),
}

#[derive(Deserialize)]
struct VersionOnly {
    format: FormatVersion,
}

impl RunRecord {
    /// The canonical bytes (compact JSON, fixed field order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Computes and sets `record_hash`.
    pub fn seal(&mut self) {
        self.record_hash = String::new();
        let h = blake3::hash(&self.to_bytes());
        self.record_hash = format!("blake3:{}", h.to_hex());
    }

    /// Parses and verifies a record: size, version, strict fields, canonical encoding,
    /// self-hash, and the syntax of every hash it names.
    ///
    /// # Errors
    ///
    /// See [`RecordError`].
    pub fn parse(bytes: &[u8]) -> Result<RunRecord, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        let v: VersionOnly = serde_json::from_slice(bytes)
            .map_err(|e| RecordError::Malformed(format!("no format version ({e})")))?;
        let (major, minor) = (v.format.major, v.format.minor);
        if major > FORMAT_MAJOR || (major == FORMAT_MAJOR && minor > FORMAT_MINOR) {
            return Err(RecordError::TooNew(major, minor));
        }
        if major < FORMAT_MAJOR {
            return Err(RecordError::TooOld(major, minor));
        }
        let rec: RunRecord =
            serde_json::from_slice(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
        if rec.to_bytes() != bytes {
            return Err(RecordError::Tampered("it is not in canonical form".into()));
        }
        let mut check = rec.clone();
        check.seal();
        if check.record_hash != rec.record_hash {
            return Err(RecordError::Tampered(
                "its hash does not match its contents".into(),
            ));
        }
        rec.check_hashes()?;
        Ok(rec)
    }

    fn check_hashes(&self) -> Result<(), RecordError> {
        let bad = |what: &str, h: &str| {
            RecordError::Malformed(format!("{what} has an invalid hash `{}`", h.escape_debug()))
        };
        let ok = |h: &str| parse_hash(h).is_some();
        let mut blobs: Vec<(&str, &BlobRef)> = vec![
            ("policy", &self.policy.toml),
            ("stdout", &self.outcome.stdout.data),
            ("stderr", &self.outcome.stderr.data),
        ];
        if let Some(s) = &self.inputs.stdin {
            blobs.push(("stdin", s));
        }
        if let Some(s) = &self.inputs.input {
            blobs.push(("input", s));
        }
        if let Some(t) = &self.trail {
            blobs.push(("trail", t));
        }
        for d in &self.inputs.dirs {
            blobs.push(("input dir", &d.tree));
        }
        for t in self
            .inputs
            .argv
            .iter()
            .chain(self.inputs.env.iter().map(|(_, t)| t))
        {
            match (&t.text, &t.blob) {
                (Some(_), None) => {}
                (None, Some(b)) => blobs.push(("argv/env value", b)),
                _ => {
                    return Err(RecordError::Malformed(
                        "an argv/env value must have exactly one of `text` and `blob`".into(),
                    ));
                }
            }
        }
        for (what, b) in blobs {
            if !ok(&b.blob) {
                return Err(bad(what, &b.blob));
            }
        }
        if !ok(&self.module.hash) {
            return Err(bad("module", &self.module.hash));
        }
        if !ok(&self.outcome.trail_hash) && parse_digest(&self.outcome.trail_hash).is_none() {
            return Err(bad("trail", &self.outcome.trail_hash));
        }
        Ok(())
    }

    /// Every blob the record names (to copy into bundles, to verify before a replay).
    pub fn blobs(&self) -> Vec<&BlobRef> {
        let mut out = vec![
            &self.policy.toml,
            &self.outcome.stdout.data,
            &self.outcome.stderr.data,
        ];
        out.extend(self.inputs.stdin.iter());
        out.extend(self.inputs.input.iter());
        out.extend(self.trail.iter());
        out.extend(self.inputs.dirs.iter().map(|d| &d.tree));
        out.extend(
            self.inputs
                .argv
                .iter()
                .chain(self.inputs.env.iter().map(|(_, t)| t))
                .filter_map(|t| t.blob.as_ref()),
        );
        out
    }
}

/// Parses `blake3:<64 hex>` (lowercase only).
pub fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("blake3:")?;
    if hex.len() != 64 || hex.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    blake3::Hash::from_hex(hex).ok().map(|h| *h.as_bytes())
}

/// Parses `blake3:<32 hex>` (a 128-bit trail digest).
pub fn parse_digest(s: &str) -> Option<[u8; 16]> {
    let hex = s.strip_prefix("blake3:")?;
    if hex.len() != 32 || hex.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    crate::capability::audit::Digest::parse(hex).map(|d| d.0)
}

/// `blake3:<hex>` of `bytes`.
pub fn hash_of(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}
