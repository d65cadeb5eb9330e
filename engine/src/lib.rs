//! corral: run untrusted WebAssembly under a policy, with typed verdicts.
//!
//! Code an agent wrote is compiled to WebAssembly, checked statically (admission), and run
//! in a wasmtime store with fuel, memory, table, output and filesystem limits, behind a gate
//! that checks, meters, virtualises and records every call the guest makes to the host.
//! Every run ends in a [`Verdict`] inside a [`RunReport`]; an `Err` means the host failed.
//!
//! # Core concepts
//!
//! - [`Engine`]: one per process; holds the wasmtime engine, linker and module cache.
//! - [`Policy`]: what a run may do (limits, filesystem grants, environment), from TOML.
//! - [`GuestModule`]: an admitted, compiled module; admit once, run many times.
//! - [`Sandbox`]: one run, configured with [`SandboxBuilder`] and consumed by
//!   [`Sandbox::run`].
//! - [`Verdict`]: how the run ended (`ok`, `exit`, `trap`, `limit`, `denied`, …).
//!
//! # Example
//!
//! ```
//! use corral::{Engine, EngineConfig, Policy, Verdict};
//!
//! let wasm = wat::parse_str(r#"
//!     (module
//!       (import "wasi_snapshot_preview1" "fd_write"
//!         (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 16) "hello\n")
//!       (func (export "_start")
//!         (i32.store (i32.const 0) (i32.const 16))
//!         (i32.store (i32.const 4) (i32.const 6))
//!         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
//! "#)?;
//! let engine = Engine::new(EngineConfig::default())?;
//! let policy = Policy::strict();
//! let module = engine.admit(&wasm, &policy).expect("admitted");
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! let report = rt.block_on(engine.sandbox(&module, &policy).build()?.run())?;
//! assert_eq!(report.verdict, Verdict::Ok);
//! assert_eq!(report.stdout, b"hello\n");
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
mod engine;
mod error;
pub mod eval;
pub mod policy;
pub mod record;
pub mod redact;
pub mod replay;
mod report;
pub mod request;
pub mod sandbox;
mod verdict;

pub use admit::{BinaryKind, ModuleInfo, Rejection};
pub use capability::audit::{
    AuditTrail, CHECKPOINT_EVERY, Checkpoint, Digest, ERRNO_TRAP, Event, MAX_CHECKPOINTS,
    MAX_KEPT_EVENTS,
};
pub use engine::{EPOCH_TICK, Engine, EngineConfig, GuestModule, WASMTIME_VERSION, wasm_features};
pub use error::{Error, ErrorKind, Result};
pub use policy::{Policy, PolicyError};
pub use redact::scrub_host_paths;
pub use report::{CallSummary, ModuleHash, RunReport};
pub use sandbox::{Access, DirGrant, Finished, RunInputs, Sandbox, SandboxBuilder, StagedInput};
pub use verdict::{LimitKind, TrapKind, Verdict};
