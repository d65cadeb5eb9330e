//! The gate: every guest→host call passes through here.
//!
//! It delegates to wasmtime-wasi where that is safe and replaces it where it is not:
//! quotas (`fs_bytes`, `fs_files`, `open_files`), virtual metadata (synthetic inodes, fixed
//! timestamps, sorted directory listings), virtual clocks and a `poll_oneoff` that never
//! really sleeps, seeded random, fuel for the host work each call causes, and an audit trail
//! of every call. Every rule lives once, in the gate core ([`rules`]); the preview 1
//! adapter (`p1.rs`) and the WASI 0.2 adapter (`p2.rs`) translate their world's types and
//! call it. Only this module builds WASI contexts (`wasi.rs`); a call that must stop the run
//! returns a typed [`GateStop`] payload, which the verdict module downcasts.

pub(crate) mod audit;
pub(crate) mod clock;
pub(crate) mod door;
pub(crate) mod imports;
pub(crate) mod limits;
pub(crate) mod output;
mod p1;
pub(crate) mod p2;
pub(crate) mod random;
pub(crate) mod rules;
mod sdk;
pub(crate) mod stage;
pub(crate) mod wasi;

use std::fmt;

use wasmtime_wasi::p1::WasiP1Ctx;

pub(crate) use crate::verdict::GateStop;
use limits::Limiter;
pub(crate) use rules::{GateCore, SdkState};
pub use rules::{MAX_METRIC_NAME, MAX_METRICS, MAX_POLL_SIZE, MAX_RESULT_BYTES};

/// The store data of a core-module run.
pub(crate) struct RunState {
    /// WASI preview 1 context (wasmtime-wasi) plus the gate's own state.
    pub(crate) gate: Gate,
    /// Memory/table limiter.
    pub(crate) limiter: Limiter,
    /// Fuel the run started with (to turn "remaining" into "consumed").
    pub(crate) fuel_budget: u64,
}

impl fmt::Debug for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunState").finish_non_exhaustive()
    }
}

/// The preview 1 gate: wasmtime-wasi's context plus the gate core.
pub(crate) struct Gate {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) core: GateCore,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// Registers everything a core module may import: WASI preview 1 and `corral_v1`.
pub(crate) fn add_to_linker(linker: &mut wasmtime::Linker<RunState>) -> wasmtime::Result<()> {
    p1::add_to_linker(linker)?;
    sdk::add_to_linker(linker)
}

/// Registers what the scientific Python runner imports: WASI preview 1 and `host::call`.
pub(crate) fn add_runner_to_linker(
    linker: &mut wasmtime::Linker<RunState>,
) -> wasmtime::Result<()> {
    p1::add_to_linker(linker)?;
    door::add_to_linker(linker)
}
