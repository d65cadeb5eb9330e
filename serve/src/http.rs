//! HTTP plumbing shared by every API: the router, bearer-token auth, body reading with its
//! caps (content type, size, JSON), response accounting, and the health, readiness, metrics
//! and OpenAPI endpoints.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::service::{Refusal, Service};

/// Seconds a refused client is told to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u32 = 1;

/// The whole HTTP application: every endpoint of `corral serve`, and MCP's streamable HTTP
/// at `/mcp` (behind the same token).
pub fn router(svc: Arc<Service>) -> Router {
    let max_body = svc.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/run", post(crate::api::run))
        .route("/v1/eval", post(crate::api::eval))
        .route("/v1/records/{hash}", get(crate::api::record))
        .route("/v1/replay", post(crate::api::replay))
        .route("/run_code", post(crate::fusion::run_code))
        .route("/api/v2/runtimes", get(crate::piston::runtimes))
        .route("/api/v2/execute", post(crate::piston::execute))
        .route("/languages", get(crate::judge0::languages))
        .route("/languages/{id}", get(crate::judge0::language))
        .route("/statuses", get(crate::judge0::statuses))
        .route("/about", get(crate::judge0::about))
        .route("/config_info", get(crate::judge0::config_info))
        .route("/submissions", post(crate::judge0::create))
        .route(
            "/submissions/batch",
            post(crate::judge0::create_batch).get(crate::judge0::get_batch),
        )
        .route("/submissions/{token}", get(crate::judge0::get))
        .nest_service(
            "/mcp",
            crate::mcp::http_service(svc.clone(), svc.shutdown_token()),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(svc.clone(), guard))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(svc)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Adds `Retry-After` to 429 and 503 responses.
pub fn with_retry_after(mut r: Response) -> Response {
    if matches!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    r
}

/// The HTTP status of a refusal (every API uses these; each gives its own body shape).
pub fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Busy => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Draining | Refusal::QueueTimeout => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Deadline => StatusCode::GATEWAY_TIMEOUT,
        Refusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::NotFound(_) => StatusCode::NOT_FOUND,
        Refusal::Host(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal in the service's own shape `{"error": …}`.
pub fn refusal(r: &Refusal) -> Response {
    with_retry_after(error(refusal_status(r), &r.message()))
}

/// Auth, response accounting and a log line per request.
async fn guard(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let open = matches!(path.as_str(), "/healthz" | "/readyz");
    let response = if !open && !authorised(&svc, req.headers()) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (hint: `Authorization: Bearer TOKEN`)",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    } else {
        next.run(req).await
    };
    let status = response.status().as_u16();
    svc.metrics.response(status);
    tracing::debug!(%method, path, status, "request");
    response
}

/// Whether the request carries the service's token (`Authorization: Bearer T`, or Judge0's
/// `X-Auth-Token: T`); always true without a token.
fn authorised(svc: &Service, headers: &HeaderMap) -> bool {
    let Some(token) = &svc.config().token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-auth-token").and_then(|v| v.to_str().ok()));
    // blake3::Hash compares in constant time.
    given.is_some_and(|g| blake3::hash(g.trim().as_bytes()) == blake3::hash(token.as_bytes()))
}

/// A request body that could not be read: the status and a sentence.
#[derive(Debug)]
pub struct BodyError {
    /// 400, 413, 415 or 422.
    pub status: StatusCode,
    /// What is wrong.
    pub message: String,
}

/// Reads a JSON request body: `Content-Type: application/json` (415 otherwise), at most the
/// configured size (413), valid JSON (400) of the expected shape (422).
pub fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, BodyError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(BodyError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "the body must be JSON (`Content-Type: application/json`)".into(),
        });
    }
    let bytes = body.map_err(|e| BodyError {
        status: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        },
        message: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "the body is larger than this service accepts".into()
        } else {
            "the body could not be read".into()
        },
    })?;
    serde_json::from_slice(&bytes).map_err(|e| BodyError {
        status: if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        },
        message: format!("invalid request body: {e}"),
    })
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    if svc.ready() {
        axum::Json(serde_json::json!({
            "status": "ready",
            "queued": svc.queued(),
            "running": svc.running(),
        }))
        .into_response()
    } else {
        with_retry_after(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "draining" })),
            )
                .into_response(),
        )
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        svc.metrics
            .render(svc.queued(), svc.running(), svc.uptime()),
    )
        .into_response()
}

/// The OpenAPI document of the service (kept true by tests and schemathesis).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}
