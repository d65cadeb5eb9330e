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

/// The token in `file` (trimmed; at most 4 KiB; not empty), if a file is given.
///
/// # Errors
///
/// A sentence naming the file.
pub fn token(file: Option<&std::path::Path>) -> Result<Option<String>, String> {
    let Some(path) = file else {
        return Ok(None);
    };
    let bytes = corral::hostfs::read_bounded(path, 4096)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let token = String::from_utf8(bytes)
        .map_err(|_| format!("`{}` is not UTF-8", path.display()))?
        .trim()
        .to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(format!(
            "`{}` must hold one token without spaces",
            path.display()
        ));
    }
    Ok(Some(token))
}

/// Structured logs on stderr (JSON or text), level from `CORRAL_LOG` (default `info`).
pub fn logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
pub async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A runtime with `threads` workers, time and I/O (the services).
pub fn service_runtime(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("corral: cannot start the runtime: {e}");
            ExitCode::from(exit::HOST)
        })
}
