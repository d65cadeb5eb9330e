//! `corral serve`: the HTTP service (its own API, the SandboxFusion, Piston v2 and Judge0 CE
//! shapes, MCP at `/mcp`), on the `corral-serve` package.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use corral::record::RecordStore;
use corral::{Policy, exit};

use crate::setup;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. A non-loopback address needs `--token-file`.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The server policy (a bundled name or a TOML file): the default and the ceiling of every
    /// request; a request may lower limits, never raise them.
    #[arg(long, value_name = "NAME|PATH", default_value = "strict")]
    policy: String,
    /// A file holding the bearer token every request must carry (`Authorization: Bearer T`,
    /// or Judge0's `X-Auth-Token: T`); `/healthz` and `/readyz` stay open.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Worker processes that run guests (and the service's threads; the engine's instance
    /// pool has four slots per worker). Default: the cores.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Run guests in this process instead of in locked-down worker processes (drops the
    /// second wall; for debugging and for measuring what the wall costs).
    #[arg(long)]
    in_process: bool,
    /// Runs executing at once. Default: twice the workers.
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// Requests that may wait for a run slot; past that, requests are answered 429 with
    /// `Retry-After`.
    #[arg(long, value_name = "N", default_value_t = 256)]
    queue: usize,
    /// Longest a request may take, queueing included (ms); past it the run is cancelled.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    deadline_ms: u64,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// Record runs into this store (default: $CORRAL_HOME/store, else
    /// ~/.local/share/corral/store).
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
    /// Do not record runs (`/v1/records` and `/v1/replay` then answer 404).
    #[arg(long)]
    no_record: bool,
    /// Log lines as JSON (default) or text, on stderr; the level comes from `CORRAL_LOG`
    /// (default `info`).
    #[arg(long, value_name = "json|text", default_value = "json")]
    log_format: String,
}

pub fn main(a: Args) -> ExitCode {
    let bad = |m: String| {
        eprintln!("corral serve: {m}");
        ExitCode::from(exit::INVALID)
    };
    let addr: SocketAddr = match a.listen.parse() {
        Ok(x) => x,
        Err(_) => return bad(format!("`--listen {}` is not ADDR:PORT", a.listen)),
    };
    let policy = match Policy::resolve(&a.policy) {
        Ok(p) => p,
        Err(e) => return bad(e.to_string()),
    };
    let token = match setup::token(a.token_file.as_deref()) {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    if token.is_none() && !addr.ip().is_loopback() {
        return bad(format!(
            "listening on {addr} (not a loopback address) needs a token (hint: --token-file FILE)"
        ));
    }
    if !matches!(a.log_format.as_str(), "json" | "text") {
        return bad(format!("`--log-format {}`: use json or text", a.log_format));
    }
    setup::logging(a.log_format == "json");
    let workers = setup::jobs(a.workers);
    let mut config = corral_serve::Config::new(policy);
    config.token = token;
    config.concurrency = a.concurrency.unwrap_or(workers * 2).max(1);
    config.queue = a.queue;
    config.deadline = Duration::from_millis(a.deadline_ms.max(1));
    config.max_body_bytes = a.max_body_bytes;
    config.records = if a.no_record {
        None
    } else {
        a.record_dir
            .or_else(RecordStore::default_location)
            .map(RecordStore::new)
    };
    let rt = match setup::service_runtime(workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let engine = match corral_serve::engine(workers, a.in_process) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("corral serve: {e}");
            return ExitCode::from(exit::HOST);
        }
    };
    let grace = config.deadline + Duration::from_secs(5);
    let svc = corral_serve::Service::new(engine.clone(), config);
    let status = rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("corral serve: cannot listen on {addr}: {e}");
                return exit::INVALID;
            }
        };
        let shown = listener.local_addr().map_or(addr, |a| a);
        eprintln!("corral serve: listening on http://{shown}");
        tracing::info!(address = %shown, workers, "listening");
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let signalled = stop.clone();
        let shutdown = async move {
            setup::terminated().await;
            signalled.notify_one();
        };
        let served = corral_serve::serve(listener, svc, shutdown);
        tokio::select! {
            r = served => match r {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("corral serve: {e}");
                    exit::HOST
                }
            },
            () = async { stop.notified().await; tokio::time::sleep(grace).await } => {
                eprintln!("corral serve: requests still open {grace:?} after the signal; exiting");
                exit::OK
            }
        }
    });
    engine.remove_work_dir();
    ExitCode::from(status)
}
