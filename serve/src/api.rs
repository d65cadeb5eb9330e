//! The service's own API, version 1: `/v1/run`, `/v1/eval`, `/v1/records/{hash}`,
//! `/v1/replay`. Responses carry the keys of the CLI's JSON report; `record` is the record's
//! id (`blake3:…`, retrievable at `/v1/records/{id}`), never a host path.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use corral::compile::{Language, Source};
use corral::eval::compare::Compare;
use corral::eval::{self, Case};
use corral::job::Invocation;
use corral::policy::LimitRequest;
use corral::{RunReport, Verdict};
use serde::Deserialize;

use crate::http::{self, json_body, refusal};
use crate::service::{self, Job, Refusal, Service};

/// `POST /v1/run`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Program text (with `language`).
    pub code: Option<String>,
    /// A wasm module or component, base64 (instead of `code`).
    pub wasm_base64: Option<String>,
    /// `python`, `c`, `cpp`, `rust`, `javascript`, `wat`, `wasm` (and their usual spellings).
    pub language: Option<String>,
    /// Guest stdin.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Guest arguments after `argv[0]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Guest environment, over the server policy's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seed of the virtual clocks and randomness.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Lower limits than the server policy's.
    #[serde(default)]
    pub limits: Option<LimitRequest>,
    /// Record the run (default true when the service keeps records).
    #[serde(default)]
    pub record: Option<bool>,
}

/// The program of a request: text and language, or wasm.
pub(crate) fn program_source(
    code: Option<String>,
    wasm_base64: Option<String>,
    language: Option<&str>,
) -> Result<Source, String> {
    let lang = match language {
        Some(l) => Some(Language::from_name(l).ok_or_else(|| {
            format!(
                "unknown language `{}` (corral runs python, c, cpp, rust, javascript, wat and wasm)",
                l.escape_debug()
            )
        })?),
        None => None,
    };
    match (code, wasm_base64) {
        (Some(_), Some(_)) => Err("give `code` or `wasm_base64`, not both".into()),
        (None, None) => Err("`code` or `wasm_base64` is required".into()),
        (Some(code), None) => {
            let lang = lang.ok_or("`language` is required with `code`")?;
            Ok(service::source(code.into_bytes(), lang))
        }
        (None, Some(b64)) => {
            if lang.is_some_and(|l| l != Language::Wasm) {
                return Err("`wasm_base64` is a wasm binary (language `wasm`)".into());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("`wasm_base64` is not base64: {e}"))?;
            Ok(service::source(bytes, Language::Wasm))
        }
    }
}

/// The JSON of a report as the service gives it.
fn report_response(report: &RunReport) -> Response {
    let status = match report.verdict {
        Verdict::InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Verdict::HostError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    };
    (status, axum::Json(report.to_json())).into_response()
}

/// `POST /v1/run`: one run; the report.
pub async fn run(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: RunRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return http::error(e.status, &e.message),
    };
    let invalid = |m: String| refusal(&Refusal::Invalid(m));
    let source = match program_source(req.code, req.wasm_base64, req.language.as_deref()) {
        Ok(s) => s,
        Err(m) => return invalid(m),
    };
    let policy = match svc.policy_for(&req.limits.unwrap_or_default()) {
        Ok(p) => p,
        Err(r) => return refusal(&r),
    };
    let job = Job {
        source,
        policy,
        invocation: Invocation {
            args: req.args,
            env: req.env,
            stdin: req.stdin.unwrap_or_default().into_bytes(),
            seed: req.seed.unwrap_or(0),
            ..Invocation::default()
        },
        record: req.record.unwrap_or(true),
    };
    match svc.run(job).await {
        Ok(report) => report_response(&report),
        Err(r) => refusal(&r),
    }
}

/// One case of `POST /v1/eval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    /// Name (default `case-N`).
    pub name: Option<String>,
    /// Stdin.
    pub stdin: Option<String>,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Expected stdout (not checked when absent).
    pub expect_stdout: Option<String>,
    /// Expected exit code (default 0).
    pub expect_exit: Option<i32>,
    /// `exact`, `trim` or `tokens` (default: the request's).
    pub compare: Option<String>,
    /// Lower limits for this case.
    pub limits: Option<LimitRequest>,
}

/// `POST /v1/eval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRequest {
    /// Program text.
    pub code: Option<String>,
    /// Or a wasm binary, base64.
    pub wasm_base64: Option<String>,
    /// The language of `code`.
    pub language: Option<String>,
    /// The cases.
    pub cases: Vec<CaseRequest>,
    /// `exact`, `trim` (default) or `tokens`.
    pub compare: Option<String>,
    /// For `tokens`: numbers within this match (default 1e-9).
    pub float_tolerance: Option<f64>,
    /// Seed of every case.
    pub seed: Option<u64>,
    /// Lower limits for every case.
    pub limits: Option<LimitRequest>,
    /// Record the cases that did not pass (default true when the service keeps records).
    pub record: Option<bool>,
}

fn compare_of(s: Option<&str>, tol: f64) -> Result<Option<Compare>, String> {
    match s {
        None => Ok(None),
        Some("exact") => Ok(Some(Compare::Exact)),
        Some("trim") => Ok(Some(Compare::Trim)),
        Some("tokens") => Ok(Some(Compare::Tokens { tolerance: tol })),
        Some(other) => Err(format!(
            "unknown comparison `{}` (use exact, trim or tokens)",
            other.escape_debug()
        )),
    }
}

/// The cases of an eval request, under `policy`.
pub(crate) fn cases_of(
    svc: &Service,
    reqs: Vec<CaseRequest>,
    policy: &Arc<corral::Policy>,
    default_compare: Compare,
    tol: f64,
    seed: u64,
) -> Result<Vec<Case>, String> {
    if reqs.len() > svc.config().max_cases {
        return Err(format!(
            "{} cases, more than the {} this service accepts in one request",
            reqs.len(),
            svc.config().max_cases
        ));
    }
    let mut cases = Vec::with_capacity(reqs.len());
    for (i, c) in reqs.into_iter().enumerate() {
        let name = c.name.unwrap_or_else(|| format!("case-{}", i + 1));
        let case_policy = match &c.limits {
            None => policy.clone(),
            Some(l) => Arc::new(
                policy
                    .lowered(l)
                    .map_err(|e| format!("case `{name}`: {e}"))?,
            ),
        };
        cases.push(Case {
            invocation: Invocation {
                args: c.args,
                env: c.env,
                stdin: c.stdin.unwrap_or_default().into_bytes(),
                seed,
                ..Invocation::default()
            },
            expect_stdout: c.expect_stdout,
            expect_exit: c.expect_exit.unwrap_or(0),
            compare: compare_of(c.compare.as_deref(), tol)
                .map_err(|e| format!("case `{name}`: {e}"))?
                .unwrap_or(default_compare),
            policy: case_policy,
            name,
        });
    }
    Ok(cases)
}

/// `POST /v1/eval`: one program, many cases; per-case reports and a summary.
pub async fn eval(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let t0 = std::time::Instant::now();
    let req: EvalRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return http::error(e.status, &e.message),
    };
    let invalid = |m: String| refusal(&Refusal::Invalid(m));
    let source = match program_source(req.code, req.wasm_base64, req.language.as_deref()) {
        Ok(s) => s,
        Err(m) => return invalid(m),
    };
    let policy = match svc.policy_for(&req.limits.unwrap_or_default()) {
        Ok(p) => p,
        Err(r) => return refusal(&r),
    };
    let tol = req.float_tolerance.unwrap_or(1e-9);
    if !(tol.is_finite() && tol >= 0.0) {
        return invalid("`float_tolerance` must be a non-negative number".into());
    }
    let default_compare = match compare_of(req.compare.as_deref(), tol) {
        Ok(c) => c.unwrap_or(Compare::Trim),
        Err(m) => return invalid(m),
    };
    let cases = match cases_of(
        &svc,
        req.cases,
        &policy,
        default_compare,
        tol,
        req.seed.unwrap_or(0),
    ) {
        Ok(c) => c,
        Err(m) => return invalid(m),
    };
    let n = cases.len();
    match svc
        .eval(source, policy, cases, req.record.unwrap_or(true))
        .await
    {
        Ok(results) => {
            let summary = eval::summarize(&results);
            let body = serde_json::json!({
                "cases": results.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
                "summary": summary.to_json(n, t0.elapsed()),
            });
            axum::Json(body).into_response()
        }
        Err(r) => refusal(&r),
    }
}

/// `GET /v1/records/{hash}`: the record's JSON.
pub async fn record(State(svc): State<Arc<Service>>, Path(hash): Path<String>) -> Response {
    match svc.record(&hash) {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(r) => refusal(&r),
    }
}

/// `POST /v1/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The record's id (`blake3:…`, as in a report's `record`).
    pub record: String,
}

/// `POST /v1/replay`: re-runs a record of this service and compares; `identical`,
/// `divergence`, `notes`, `recorded_verdict` beside the report's keys.
pub async fn replay(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: ReplayRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return http::error(e.status, &e.message),
    };
    match svc.replay(&req.record).await {
        Ok(Ok(r)) => axum::Json(r.to_json()).into_response(),
        Ok(Err(e)) => {
            let mut v = e.to_json();
            if let Some(m) = v.get_mut("message") {
                *m = serde_json::json!(corral::scrub_host_paths(m.as_str().unwrap_or("")));
            }
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(v)).into_response()
        }
        Err(r) => refusal(&r),
    }
}
