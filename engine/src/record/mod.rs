//! Run records: what a run needs to be re-executed and verified bit-for-bit.
//!
//! A record (`format.rs`) is small — hashes and a few scalars — and names content-addressed
//! blobs in the same [`RecordStore`] for everything bulky: the module, the resolved policy, stdin,
//! each input file, long argv/env values, captured output and the audit events. See
//! `replay.rs` for how a record is checked and re-executed.

pub mod bundle;
pub mod format;
pub mod store;
pub mod trail;

use std::path::PathBuf;

use self::trail::TrailSnapshot;
use crate::compile::Language;
use crate::error::Error;
use crate::policy::Policy;
use crate::report::RunReport;
use crate::sandbox::RunInputs;
pub use format::{RecordError, RunRecord};
pub use store::RecordStore;

use format::{
    BlobRef, DirRef, EngineId, FORMAT_MAJOR, FORMAT_MINOR, FormatVersion, Inputs, MAX_INLINE_VALUE,
    ModuleRef, OutputRef, PolicyRef, RecordedOutcome, Text, Tree, TreeFile,
};

fn blob(store: &RecordStore, bytes: &[u8]) -> Result<BlobRef, Error> {
    Ok(BlobRef {
        blob: store.put_blob(bytes)?,
        size: bytes.len() as u64,
    })
}

fn text(store: &RecordStore, s: &str) -> Result<Text, Error> {
    if s.len() <= MAX_INLINE_VALUE {
        Ok(Text {
            text: Some(s.to_string()),
            blob: None,
        })
    } else {
        Ok(Text {
            text: None,
            blob: Some(blob(store, s.as_bytes())?),
        })
    }
}

/// What a record is written from.
#[derive(Debug)]
pub struct RecordParts<'a> {
    /// The module that ran.
    pub module: &'a crate::GuestModule,
    /// The language the module came from.
    pub language: Language,
    /// The policy that applied.
    pub policy: &'a Policy,
    /// The inputs (with staged file bytes).
    pub inputs: &'a RunInputs,
    /// The report.
    pub report: &'a RunReport,
    /// The audit trail.
    pub trail: &'a TrailSnapshot,
    /// The engine's identity.
    pub engine: EngineId,
}

/// Builds a sealed record from a finished run, writing its blobs into `store`.
///
/// # Errors
///
/// The store cannot be written.
pub fn build(store: &RecordStore, p: RecordParts<'_>) -> Result<RunRecord, Error> {
    let module_hash = store_module(store, p.module)?;
    let policy_toml = p.policy.to_canonical_toml();
    let mut dirs = Vec::new();
    for input in &p.inputs.inputs {
        let mut files = Vec::new();
        for (f, bytes) in input.files.iter().zip(&input.contents) {
            files.push(TreeFile {
                path: f.path.clone(),
                contents: blob(store, bytes)?,
            });
        }
        let tree = Tree {
            dirs: input.dirs.clone(),
            files,
        };
        let tree_bytes = serde_json::to_vec(&tree).map_err(|e| Error::host(e.to_string()))?;
        dirs.push(DirRef {
            guest: input.guest.clone(),
            tree: blob(store, &tree_bytes)?,
        });
    }
    let r = p.report;
    let events = &p.trail.events;
    let mut record = RunRecord {
        format: FormatVersion {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
        },
        engine: p.engine,
        module: ModuleRef {
            hash: module_hash,
            size: p.module.info().size,
            language: p.language.name().to_string(),
        },
        policy: PolicyRef {
            name: p.policy.name().to_string(),
            toml: blob(store, policy_toml.as_bytes())?,
        },
        inputs: Inputs {
            argv: p
                .inputs
                .argv
                .iter()
                .map(|a| text(store, a))
                .collect::<Result<_, _>>()?,
            env: p
                .inputs
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), text(store, v)?)))
                .collect::<Result<_, Error>>()?,
            stdin: if p.inputs.stdin.is_empty() {
                None
            } else {
                Some(blob(store, &p.inputs.stdin)?)
            },
            seed: p.inputs.seed,
            input: match &p.inputs.input {
                Some(i) => Some(blob(store, i)?),
                None => None,
            },
            dirs,
            rw_dirs: p.inputs.rw_dirs.clone(),
        },
        outcome: RecordedOutcome {
            verdict: r.verdict.kind().to_string(),
            exit_code: r.verdict.exit_code(),
            limit: r.verdict.limit().map(|l| l.as_str().to_string()),
            trap: r.verdict.trap().map(|t| t.as_str().to_string()),
            fuel_consumed: r.fuel_consumed,
            stdout: OutputRef {
                data: blob(store, &r.stdout)?,
                truncated: r.stdout_truncated,
            },
            stderr: OutputRef {
                data: blob(store, &r.stderr)?,
                truncated: r.stderr_truncated,
            },
            calls: r.calls.total,
            denials: r.calls.denials,
            trail_hash: format!("blake3:{}", p.trail.hash),
            deterministic: r.deterministic(),
        },
        trail: if events.is_empty() {
            None
        } else {
            Some(blob(store, &trail::encode(events))?)
        },
        trail_complete: p.trail.complete(),
        checkpoints: p
            .trail
            .checkpoints
            .iter()
            .map(|c| (c.calls, c.fuel, format!("blake3:{}", c.hash)))
            .collect(),
        record_hash: String::new(),
    };
    record.seal();
    Ok(record)
}

/// Builds and stores a record; returns the record file's path.
///
/// # Errors
///
/// The store cannot be written.
pub fn write(store: &RecordStore, parts: RecordParts<'_>) -> Result<PathBuf, Error> {
    let record = build(store, parts)?;
    store.put_record(&record.to_bytes())
}

impl crate::engine::Engine {
    /// The identity recorded in run records: versions, and a digest of every setting that
    /// can change what a guest observes (wasm features, stack size, fuel and clock constants,
    /// gate version). CPU codegen flags are recorded apart (`host_isa`): they do not change
    /// semantics, so records replay across machines.
    pub fn identity(&self) -> format::EngineId {
        let desc = format!(
            "features={:x};nan_canon=1;relaxed_simd=off;fuel=1;stack={};async_stack={};\
             ns_per_fuel={};mono_start={};resolution={};max_random={};gate={};dir_size=4096;dir_nlink=2",
            crate::engine::wasm_features().bits(),
            crate::engine::MAX_WASM_STACK,
            crate::engine::ASYNC_STACK,
            crate::capability::clock::NS_PER_FUEL,
            crate::capability::clock::MONO_START_NS,
            crate::capability::clock::RESOLUTION_NS,
            crate::capability::wasi::MAX_RANDOM_BYTES,
            crate::engine::GATE_VERSION,
        );
        format::EngineId {
            corral: env!("CARGO_PKG_VERSION").to_string(),
            wasmtime: crate::engine::WASMTIME_VERSION.to_string(),
            config: format::hash_of(desc.as_bytes()),
            host_isa: crate::engine::compatibility_digest(self.wasmtime())[..16].to_string(),
        }
    }
}

/// Stores `module`'s bytes as a blob in `store` (without reading them if present); returns
/// the blob's name.
///
/// # Errors
///
/// The store cannot be written or the module cannot be read.
pub fn store_module(store: &RecordStore, module: &crate::GuestModule) -> Result<String, Error> {
    let name = module.hash().to_string();
    if store.has_blob(&name) {
        return Ok(name);
    }
    store.put_blob(&module.bytes()?)
}
