//! SandboxFusion's `POST /run_code`, as verl's reward code and the `sandbox-fusion` client
//! call it: `{code, language, stdin, compile_timeout, run_timeout, files, fetch_files}` →
//! `{status, message, compile_result, run_result, executor_pod_name, files}`. Statuses come
//! from [`crate::mapping::fusion`]; what cannot be honoured is answered with FastAPI's
//! validation shape (`422 {"detail": [...]}`), as the real service answers bad requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use corral::compile::Language;
use corral::job::Invocation;
use corral::policy::LimitRequest;
use corral::{RunReport, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{json_body, refusal_status, with_retry_after};
use crate::mapping;
use crate::service::{self, Job, Refusal, Service};

/// The request. Unknown keys are ignored, as the real service ignores them.
#[derive(Debug, Deserialize)]
pub struct RunCodeRequest {
    code: String,
    language: String,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    compile_timeout: Option<f64>,
    #[serde(default)]
    run_timeout: Option<f64>,
    #[serde(default)]
    memory_limit_mb: Option<f64>,
    #[serde(default, rename = "memory_limit_MB")]
    memory_limit_mb_upper: Option<f64>,
    #[serde(default)]
    files: BTreeMap<String, Option<String>>,
    #[serde(default)]
    fetch_files: Vec<String>,
}

/// FastAPI's validation error: `422 {"detail": [{"loc", "msg", "type"}]}`.
fn detail(status: StatusCode, field: &str, msg: &str) -> Response {
    with_retry_after(
        (
            status,
            axum::Json(json!({
                "detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]
            })),
        )
            .into_response(),
    )
}

/// The languages of SandboxFusion's list that corral runs, and what they are here.
fn language(name: &str) -> Option<Language> {
    match name {
        "python" | "python3" => Some(Language::Python),
        "cpp" => Some(Language::Cpp),
        "c" => Some(Language::C),
        "rust" => Some(Language::Rust),
        "nodejs" | "javascript" => Some(Language::JavaScript),
        _ => None,
    }
}

fn seconds_to_ms(s: f64) -> Option<u64> {
    (s.is_finite() && s > 0.0).then(|| (s * 1000.0).ceil().min(u64::MAX as f64) as u64)
}

/// `POST /run_code`.
pub async fn run_code(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: RunCodeRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return detail(e.status, "body", &e.message),
    };
    let Some(lang) = language(&req.language) else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "language",
            &format!(
                "language `{}` is not available in corral (python, cpp, c, rust, nodejs)",
                req.language.escape_debug()
            ),
        );
    };
    if !req.files.is_empty() {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "files",
            "input files are not supported by corral's /run_code (runs have no working directory)",
        );
    }
    if !req.fetch_files.is_empty() {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "fetch_files",
            "fetching files is not supported by corral's /run_code (runs have no writable directory)",
        );
    }
    // Timeouts lower the wall-clock limit; one above the server policy's is held to it.
    let ceiling = &svc.config().policy;
    let max_ms = u64::try_from(ceiling.limits.wall_time.as_millis()).unwrap_or(u64::MAX);
    let mut limits = LimitRequest {
        wall_time_ms: req
            .run_timeout
            .and_then(seconds_to_ms)
            .map(|ms| ms.min(max_ms)),
        ..LimitRequest::default()
    };
    if let Some(mb) = req.memory_limit_mb.or(req.memory_limit_mb_upper) {
        if !(mb.is_finite() && mb > 0.0) {
            return detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "memory_limit_MB",
                "must be a positive number",
            );
        }
        let bytes = (mb * 1024.0 * 1024.0).min(u64::MAX as f64) as u64;
        limits.memory_bytes = Some(bytes.min(ceiling.limits.memory.0));
    }
    let _ = req.compile_timeout; // compiles are bounded by the compile jail's own limits
    let policy = match svc.policy_for(&limits) {
        Ok(p) => p,
        Err(r) => return detail(refusal_status(&r), "body", &r.message()),
    };
    let job = Job {
        source: service::source(req.code.into_bytes(), lang),
        policy,
        invocation: Invocation {
            stdin: req.stdin.unwrap_or_default().into_bytes(),
            ..Invocation::default()
        },
        record: true,
    };
    match svc.run(job).await {
        Ok(report) => axum::Json(response(&report, lang)).into_response(),
        Err(Refusal::Invalid(m)) => detail(StatusCode::UNPROCESSABLE_ENTITY, "body", &m),
        Err(r) => detail(refusal_status(&r), "body", &r.message()),
    }
}

fn compiled(lang: Language) -> bool {
    matches!(lang, Language::C | Language::Cpp | Language::Rust)
}

/// The response for a report.
pub fn response(report: &RunReport, lang: Language) -> Value {
    let m = mapping::fusion(&report.verdict);
    let secs = report.wall_time.as_secs_f64();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (compile_result, run_result) = if mapping::is_build_failure(&report.verdict) {
        let stderr = report
            .diagnostics
            .clone()
            .unwrap_or_else(|| report.message.clone());
        (
            json!({"status": m.stage, "execution_time": null, "return_code": m.return_code,
                   "stdout": "", "stderr": stderr}),
            Value::Null,
        )
    } else if matches!(
        report.verdict,
        Verdict::HostError(_) | Verdict::InvalidInput(_)
    ) {
        (Value::Null, Value::Null)
    } else {
        let compile = if compiled(lang) {
            json!({"status": "Finished", "execution_time": null, "return_code": 0,
                   "stdout": "", "stderr": ""})
        } else {
            Value::Null
        };
        (
            compile,
            json!({"status": m.stage, "execution_time": secs, "return_code": m.return_code,
                   "stdout": text(&report.stdout), "stderr": text(&report.stderr)}),
        )
    };
    json!({
        "status": m.status,
        "message": if m.status == "Success" { String::new() } else { report.message.clone() },
        "compile_result": compile_result,
        "run_result": run_result,
        "executor_pod_name": null,
        "files": {},
        "corral": {
            "verdict": report.verdict.kind(),
            "limit": report.verdict.limit().map(|l| l.as_str()),
            "trap": report.verdict.trap().map(|t| t.as_str()),
            "fuel_consumed": report.fuel_consumed,
            "module_hash": report.module_hash.map(|h| h.to_string()),
            "record": report.record,
        },
    })
}
