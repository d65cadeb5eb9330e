//! corral's service faces: `corral serve` (HTTP) and `corral mcp` (MCP), thin layers over the
//! library's job stage.
//!
//! # Core concepts
//!
//! - [`Service`]: the state every face shares — the engine (made by [`engine`]: guests in
//!   locked-down worker processes by default), the server policy that is the ceiling of every
//!   request, the bounded queue (429/503 with `Retry-After` instead of growing), per-request
//!   deadlines, the prepared-program cache, the record store. [`Service::run`] and
//!   [`Service::eval`] go through `corral::job` and `corral::eval`; nothing here builds a
//!   sandbox.
//! - [`router`]: the HTTP application — the service's own API (`/v1/run`, `/v1/eval`,
//!   `/v1/records/{hash}`, `/v1/replay`), health, readiness, Prometheus metrics, the OpenAPI
//!   document, and the SandboxFusion, Piston v2 and Judge0 CE shapes eval pipelines already
//!   speak ([`fusion`], [`piston`], [`judge0`]), each mapping verdicts through the one table
//!   in [`mapping`].
//! - [`mcp`]: the MCP server (`run_code`, `run_tests`, `replay`) over stdio or streamable HTTP.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = corral::Policy::strict();
//! let svc = corral_serve::Service::new(corral_serve::engine(2, false)?, corral_serve::Config::new(policy));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! corral_serve::serve(listener, svc, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod fusion;
pub mod http;
pub mod judge0;
pub mod mapping;
pub mod mcp;
pub mod metrics;
pub mod piston;
pub mod service;

use std::future::Future;
use std::sync::Arc;

pub use http::router;
pub use service::{Config, Job, Refusal, Service, engine, engine_config};

/// Serves HTTP on `listener` (every endpoint of [`router`], and MCP's streamable HTTP at
/// `/mcp`) until `shutdown` resolves; then stops admitting runs (503), lets the runs in
/// flight finish, waits for background runs, and returns.
///
/// # Errors
///
/// The listener failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    svc: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(svc.clone());
    let drain = svc.clone();
    let stop = async move {
        shutdown.await;
        drain.drain();
        tracing::info!("shutting down: refusing new runs, finishing those in flight");
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    svc.finish_background().await;
    Ok(())
}
