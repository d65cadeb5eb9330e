//! What a command runs on: the engine (configured from the environment) and the async
//! runtime.

use std::process::ExitCode;

use corral::{Engine, EngineConfig, Isolation, WorkerConfig, exit};

/// The engine, configured from the environment ([`EngineConfig::from_env`]), with a pool of
/// instance slots for commands that run many sandboxes at once, and, with `workers`, that
/// many worker processes (the second wall) instead of running guests in this process.
///
/// # Errors
///
/// The engine cannot be configured.
pub fn engine(pool: Option<u32>, workers: Option<usize>) -> Result<Engine, corral::Error> {
    let isolation = match workers {
        Some(n) => Isolation::Workers(WorkerConfig {
            workers: n.max(1),
            ..WorkerConfig::default()
        }),
        None => Isolation::InProcess,
    };
    Engine::new(EngineConfig {
        pool,
        isolation,
        ..EngineConfig::from_env()
    })
}

/// A runtime on this thread (one run at a time).
pub fn current_thread() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| {
            eprintln!("corral: cannot start the runtime: {e}");
            ExitCode::from(exit::HOST)
        })
}

/// A runtime with `threads` workers (many runs at once).
pub fn multi_thread(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_time()
        .build()
        .map_err(|e| {
            eprintln!("corral: cannot start the runtime: {e}");
            ExitCode::from(exit::HOST)
        })
}

/// `--jobs`, or the number of cores.
pub fn jobs(j: Option<usize>) -> usize {
    j.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}
