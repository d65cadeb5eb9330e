//! The second wall: guests run in jailed, supervised worker processes.
//!
//! wasmtime is a strong wall, but a bug in it, in wasmtime-wasi or in the gate would hand a
//! guest whatever the process holding it can reach. With [`Isolation::Workers`], the job
//! stage sends each run to a worker: a re-executed corral process that locked itself down
//! before accepting work (no new privileges, a seccomp allow-list, Landlock limited to its own
//! directory and the cache, no network, rlimits, death with its parent; see `lockdown.rs`).
//! The supervisor (`pool.rs`) keeps warm workers, kills a worker whose run passes its wall time
//! plus a grace (the only way to stop a host call that blocks) and replaces it, and turns a
//! worker's death into a `host_error` for the run it was executing, re-sending the runs that
//! had not started. Runs with directory grants get a worker of their own whose Landlock rules
//! include those directories (as their grants say).
//!
//! A worker returns the same report as an in-process run (minus `isolation`, the record path
//! and the wall time): it runs the same job stage on the same engine configuration.
//!
//! The worker side is [`job::serve_worker`](crate::job::serve_worker) (it runs the job stage):
//! a program that wants to be a worker calls it when started with [`WORKER_ARG`] (the
//! `corral` command does).

pub(crate) mod lockdown;
pub(crate) mod pool;
pub(crate) mod protocol;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::report::Walls;
#[cfg(feature = "test-hooks")]
pub use protocol::Probe;

/// The first argument a program is started with to be a worker.
pub const WORKER_ARG: &str = "__corral-worker";

/// Where the job stage runs guests.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// In this process (one wall: wasmtime). The default.
    #[default]
    InProcess,
    /// In supervised, locked-down worker processes (two walls).
    Workers(WorkerConfig),
}

/// How the worker pool is run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The program started as a worker, with [`WORKER_ARG`] as its first argument; it must
    /// call [`job::serve_worker`](crate::job::serve_worker) then. By default this process's
    /// own executable.
    pub program: PathBuf,
    /// Warm workers. By default one per core.
    pub workers: usize,
    /// Runs sent to one worker ahead of its results (it runs them in order), so that the
    /// exchange with it overlaps with its work. By default 16.
    pub depth: usize,
    /// How long past a run's `wall_time_ms` the supervisor waits before it kills the worker
    /// (the in-process wall clock normally ends the run first). By default 1 s.
    pub grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("corral")),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            depth: 16,
            grace: Duration::from_secs(1),
        }
    }
}
