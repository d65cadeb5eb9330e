//! `corral mcp`: the MCP server (tools `run_code`, `run_tests`, `replay`) on stdio, or on
//! streamable HTTP at `/mcp` with `--http`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use corral::record::RecordStore;
use corral::{Policy, exit};

use crate::setup;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve streamable HTTP at `http://ADDR:PORT/mcp` instead of stdio. A non-loopback
    /// address needs `--token-file`.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// The server policy (a bundled name or a TOML file): the ceiling of every tool call.
    #[arg(long, value_name = "NAME|PATH", default_value = "strict")]
    policy: String,
    /// With `--http`: the bearer token clients must send.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Worker processes that run guests (and the service's threads). Default: the cores.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Run guests in this process instead of in locked-down worker processes (drops the
    /// second wall; for debugging and for measuring what the wall costs).
    #[arg(long)]
    in_process: bool,
    /// Record runs into this store (default: $CORRAL_HOME/store, else
    /// ~/.local/share/corral/store); `replay` replays records from it.
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
}

pub fn main(a: Args) -> ExitCode {
    let bad = |m: String| {
        eprintln!("corral mcp: {m}");
        ExitCode::from(exit::INVALID)
    };
    let policy = match Policy::resolve(&a.policy) {
        Ok(p) => p,
        Err(e) => return bad(e.to_string()),
    };
    let token = match setup::token(a.token_file.as_deref()) {
        Ok(t) => t,
        Err(m) => return bad(m),
    };
    let addr: Option<SocketAddr> = match a.http.as_deref().map(str::parse) {
        None => None,
        Some(Ok(x)) => Some(x),
        Some(Err(_)) => return bad("`--http` is not ADDR:PORT".into()),
    };
    if let Some(addr) = addr
        && token.is_none()
        && !addr.ip().is_loopback()
    {
        return bad(format!(
            "listening on {addr} (not a loopback address) needs a token (hint: --token-file FILE)"
        ));
    }
    // stdout is the protocol on stdio: logs go to stderr, as text.
    setup::logging(false);
    let workers = setup::jobs(a.workers);
    let mut config = corral_serve::Config::new(policy);
    config.token = token;
    config.concurrency = workers * 2;
    config.records = a
        .record_dir
        .or_else(RecordStore::default_location)
        .map(RecordStore::new);
    let rt = match setup::service_runtime(workers) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let engine = match corral_serve::engine(workers, a.in_process) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("corral mcp: {e}");
            return ExitCode::from(exit::HOST);
        }
    };
    let svc = corral_serve::Service::new(engine.clone(), config);
    let status = rt.block_on(async move {
        match addr {
            None => match corral_serve::mcp::serve_stdio(svc).await {
                Ok(()) => exit::OK,
                Err(m) => {
                    eprintln!("corral mcp: {m}");
                    exit::HOST
                }
            },
            Some(addr) => {
                let listener = match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("corral mcp: cannot listen on {addr}: {e}");
                        return exit::INVALID;
                    }
                };
                let shown = listener.local_addr().map_or(addr, |a| a);
                eprintln!("corral mcp: listening on http://{shown}/mcp");
                match corral_serve::serve(listener, svc, setup::terminated()).await {
                    Ok(()) => exit::OK,
                    Err(e) => {
                        eprintln!("corral mcp: {e}");
                        exit::HOST
                    }
                }
            }
        }
    });
    engine.remove_work_dir();
    ExitCode::from(status)
}
