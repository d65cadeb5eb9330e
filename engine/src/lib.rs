//! corral: run untrusted code as WebAssembly under a policy, with typed verdicts and
//! replayable records.
//!
//! Code an agent wrote is compiled to WebAssembly, checked statically (admission), and run
//! in a wasmtime store with fuel, memory, table, output and filesystem limits, behind a gate
//! that checks, meters, virtualises and records every call the guest makes to the host.
//! Every run ends in a [`Verdict`] inside a [`RunReport`]; an `Err` means the host failed.
//! docs/architecture.md in the repository maps the modules.
//!
//! # Core concepts
//!
//! - [`Engine`]: one per process; holds the wasmtime engine, linkers and module cache.
//! - [`Policy`]: what a run may do (limits, filesystem grants, environment), from TOML.
//! - [`job`]: the job stage, the one way to run anything: a [`compile::Source`] becomes a
//!   [`job::Program`] once (compiled, admitted); [`job::run`] runs it for an [`Invocation`]
//!   (args, env, stdin, dirs, seed, input) and returns a [`job::Outcome`] (the report, and
//!   the run record on request).
//! - [`Verdict`]: how the run ended (`ok`, `exit`, `trap`, `limit`, `denied`, …).
//! - [`record`] and [`replay`]: every run can be recorded and re-executed bit-for-bit.
//! - [`eval`]: suites of cases and HumanEval over one program.
//!
//! # Example
//!
//! ```
//! use corral::compile::{Language, Source};
//! use corral::job::{self, Invocation, Program, Recording};
//! use corral::{Engine, EngineConfig, Policy, Verdict};
//!
//! let wat = r#"
//!     (module
//!       (import "wasi_snapshot_preview1" "fd_write"
//!         (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 16) "hello\n")
//!       (func (export "_start")
//!         (i32.store (i32.const 0) (i32.const 16))
//!         (i32.store (i32.const 4) (i32.const 6))
//!         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
//! "#;
//! let engine = Engine::new(EngineConfig::default())?;
//! let policy = Policy::strict();
//! let source = Source::new(wat.as_bytes().to_vec(), "hello.wat", Language::Wat);
//! let program = Program::prepare(&engine, &source, &policy)?;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! let outcome = rt.block_on(job::run(
//!     &engine,
//!     &program,
//!     &policy,
//!     &Invocation::default(),
//!     Recording::Off,
//! ))?;
//! assert_eq!(outcome.report.verdict, Verdict::Ok);
//! assert_eq!(outcome.report.stdout, b"hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, reason = "tests may unwrap"))]
#![doc(test(attr(deny(warnings))))]

pub mod admit;
mod artifact;
pub(crate) mod capability;
pub mod compile;
mod confine;
mod engine;
mod error;
pub mod eval;
pub mod exit;
pub mod hostfs;
pub mod inputs;
pub mod job;
pub mod policy;
pub mod record;
pub mod redact;
pub mod replay;
mod report;
pub mod sandbox;
mod verdict;
pub mod worker;

pub use admit::{BinaryKind, ModuleInfo, Rejection};
pub use capability::audit::{
    AuditTrail, CHECKPOINT_EVERY, Checkpoint, Digest, ERRNO_TRAP, Event, MAX_CHECKPOINTS,
    MAX_KEPT_EVENTS,
};
pub use engine::{EPOCH_TICK, Engine, EngineConfig, GuestModule, WASMTIME_VERSION, wasm_features};
pub use error::{Error, ErrorKind, Result};
pub use inputs::{Access, DirGrant, Invocation, RunInputs, StagedInput};
pub use policy::{Policy, PolicyError};
pub use redact::scrub_host_paths;
pub use report::{CallSummary, ModuleHash, RunReport, Walls};
pub use verdict::{LimitKind, TrapKind, Verdict};
pub use worker::{Isolation, WorkerConfig};
