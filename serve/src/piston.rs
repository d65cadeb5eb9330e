//! Piston v2: `GET /api/v2/runtimes` and `POST /api/v2/execute`, following engineer-man's
//! `api/src/api/v2.js`: validation errors are `400 {"message"}`, a wrong content type is 415,
//! limits above the configured maximum are refused, stdin gets a trailing newline, a compiled
//! language has a `compile` stage and a failed compile stage is also given as `run`.
//! Statuses come from [`crate::mapping::piston`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use corral::compile::Language;
use corral::job::Invocation;
use corral::policy::LimitRequest;
use corral::{RunReport, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{json_body, refusal_status, with_retry_after};
use crate::mapping;
use crate::service::{self, Job, Service};

/// A runtime: language, version, aliases, and what corral runs it with.
struct Runtime {
    language: &'static str,
    version: &'static str,
    aliases: &'static [&'static str],
    lang: Language,
}

/// The runtimes. Versions are those of the toolchains corral provisions (CPython 3.14 in the
/// Python runner, QuickJS-ng, Debian's clang 14, the installed rustc).
const RUNTIMES: [Runtime; 5] = [
    Runtime {
        language: "python",
        version: "3.14.0",
        aliases: &["py", "py3", "python3", "python3.14"],
        lang: Language::Python,
    },
    Runtime {
        language: "javascript",
        version: "0.10.0",
        aliases: &[
            "node-javascript",
            "node-js",
            "javascript",
            "js",
            "quickjs",
            "nodejs",
        ],
        lang: Language::JavaScript,
    },
    Runtime {
        language: "c",
        version: "14.0.6",
        aliases: &["gcc", "clang"],
        lang: Language::C,
    },
    Runtime {
        language: "c++",
        version: "14.0.6",
        aliases: &["cpp", "g++", "clang++"],
        lang: Language::Cpp,
    },
    Runtime {
        language: "rust",
        version: "1.95.0",
        aliases: &["rs"],
        lang: Language::Rust,
    },
];

fn message(status: StatusCode, m: &str) -> Response {
    with_retry_after((status, axum::Json(json!({ "message": m }))).into_response())
}

/// `GET /api/v2/runtimes`.
pub async fn runtimes() -> Response {
    let list: Vec<Value> = RUNTIMES
        .iter()
        .map(|r| {
            json!({"language": r.language, "version": r.version, "aliases": r.aliases,
                   "runtime": "corral"})
        })
        .collect();
    axum::Json(list).into_response()
}

/// Piston's semver selector: `*`, `x`, an exact version, or a prefix such as `3.x` / `3`.
fn version_matches(selector: &str, version: &str) -> bool {
    let s = selector.trim();
    if s == "*" || s == "x" || s.is_empty() {
        return true;
    }
    let want: Vec<&str> = s.split('.').collect();
    let have: Vec<&str> = version.split('.').collect();
    want.iter()
        .enumerate()
        .all(|(i, w)| *w == "x" || *w == "*" || have.get(i) == Some(w))
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    name: Option<String>,
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

/// The request (unknown keys are ignored, as Piston ignores them).
#[derive(Debug, Deserialize)]
pub struct ExecuteRequest {
    language: Option<Value>,
    version: Option<Value>,
    files: Option<Vec<File>>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    compile_timeout: Option<Value>,
    run_timeout: Option<Value>,
    compile_cpu_time: Option<Value>,
    run_cpu_time: Option<Value>,
    compile_memory_limit: Option<Value>,
    run_memory_limit: Option<Value>,
}

/// A number field: `None` when absent, `Err` (Piston's message) when not a non-negative
/// number.
fn number(name: &str, v: &Option<Value>) -> Result<Option<f64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(-1.0);
            if f < 0.0 && f != -1.0 {
                Err(format!("{name} must be non-negative"))
            } else {
                Ok(Some(f))
            }
        }
        Some(_) => Err(format!("If specified, {name} must be a number")),
    }
}

/// `POST /api/v2/execute`.
pub async fn execute(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req: ExecuteRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return message(e.status, &e.message),
    };
    let bad = |m: String| message(StatusCode::BAD_REQUEST, &m);
    let Some(Value::String(language)) = &req.language else {
        return bad("language is required as a string".into());
    };
    let Some(Value::String(version)) = &req.version else {
        return bad("version is required as a string".into());
    };
    let Some(files) = &req.files else {
        return bad("files is required as an array".into());
    };
    let runtime = RUNTIMES.iter().find(|r| {
        (r.language == language || r.aliases.contains(&language.as_str()))
            && version_matches(version, r.version)
    });
    let Some(runtime) = runtime else {
        return bad(format!("{language}-{version} runtime is unknown"));
    };
    if files.is_empty() {
        return bad("files must include at least one utf8 encoded file".into());
    }
    if files.len() > 1 {
        return bad(
            "corral runs one file per program: files must hold exactly one file (multi-file programs are not supported)"
                .into(),
        );
    }
    let file = &files[0];
    let Some(content) = &file.content else {
        return bad("files[0].content is required as a string".into());
    };
    if file.name.as_deref().is_some_and(|n| n.contains("..")) {
        return bad("files[0].name must not contain `..`".into());
    }
    let code = match file.encoding.as_deref().unwrap_or("utf8") {
        "utf8" => content.clone().into_bytes(),
        "base64" => match base64::engine::general_purpose::STANDARD.decode(content.trim()) {
            Ok(b) => b,
            Err(_) => return bad("files[0].content is not valid base64".into()),
        },
        "hex" => match decode_hex(content.trim()) {
            Some(b) => b,
            None => return bad("files[0].content is not valid hex".into()),
        },
        other => {
            return bad(format!(
                "files[0].encoding must be one of utf8, base64, hex (got {})",
                other.escape_debug()
            ));
        }
    };
    // Limits: "request ≤ configured max", otherwise 400. -1 means "the maximum".
    let ceiling = &svc.config().policy;
    let max_ms = u64::try_from(ceiling.limits.wall_time.as_millis()).unwrap_or(u64::MAX);
    let mut limits = LimitRequest::default();
    for (name, v) in [
        ("compile_timeout", &req.compile_timeout),
        ("compile_cpu_time", &req.compile_cpu_time),
        ("compile_memory_limit", &req.compile_memory_limit),
    ] {
        if let Err(m) = number(name, v) {
            return bad(m);
        }
    }
    for (name, v) in [
        ("run_timeout", &req.run_timeout),
        ("run_cpu_time", &req.run_cpu_time),
    ] {
        match number(name, v) {
            Err(m) => return bad(m),
            Ok(Some(ms)) if ms >= 0.0 => {
                let ms = ms.ceil() as u64;
                if ms > max_ms {
                    return bad(format!(
                        "{name} cannot exceed the configured limit of {max_ms}"
                    ));
                }
                let ms = ms.max(1);
                limits.wall_time_ms = Some(limits.wall_time_ms.map_or(ms, |w| w.min(ms)));
            }
            Ok(_) => {}
        }
    }
    match number("run_memory_limit", &req.run_memory_limit) {
        Err(m) => return bad(m),
        Ok(Some(b)) if b >= 0.0 => {
            let b = b as u64;
            if b > ceiling.limits.memory.0 {
                return bad(format!(
                    "run_memory_limit cannot exceed the configured limit of {}",
                    ceiling.limits.memory.0
                ));
            }
            limits.memory_bytes = Some(b);
        }
        Ok(_) => {}
    }
    let policy = match svc.policy_for(&limits) {
        Ok(p) => p,
        Err(r) => return message(refusal_status(&r), &r.message()),
    };
    let mut stdin = req.stdin.clone().unwrap_or_default();
    if !stdin.is_empty() && !stdin.ends_with('\n') {
        stdin.push('\n');
    }
    let job = Job {
        source: service::source(code, runtime.lang),
        policy,
        invocation: Invocation {
            args: req.args.clone().unwrap_or_default(),
            stdin: stdin.into_bytes(),
            ..Invocation::default()
        },
        record: true,
    };
    match svc.run(job).await {
        Ok(report) => {
            if matches!(report.verdict, Verdict::InvalidInput(_)) {
                return bad(report.message.clone());
            }
            axum::Json(response(&report, runtime)).into_response()
        }
        Err(r) => message(refusal_status(&r), &r.message()),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn stage(report: &RunReport) -> Value {
    let (code, signal, status) = mapping::piston(&report.verdict);
    let out = String::from_utf8_lossy(&report.stdout).into_owned();
    let err = String::from_utf8_lossy(&report.stderr).into_owned();
    let ms = (report.wall_time.as_secs_f64() * 1000.0).round();
    json!({
        "stdout": out,
        "stderr": err,
        // stdout and stderr are captured separately, so `output` is stdout then stderr.
        "output": format!("{out}{err}"),
        "code": code,
        "signal": signal,
        "message": if report.verdict == Verdict::Ok { Value::Null } else { json!(report.message) },
        "status": status,
        "cpu_time": ms,
        "wall_time": ms,
        "memory": null,
    })
}

fn response(report: &RunReport, rt: &Runtime) -> Value {
    let compiled = matches!(rt.lang, Language::C | Language::Cpp | Language::Rust);
    let mut v = json!({"language": rt.language, "version": rt.version});
    if mapping::is_build_failure(&report.verdict) {
        let (code, _, status) = mapping::piston(&report.verdict);
        let diag = report
            .diagnostics
            .clone()
            .unwrap_or_else(|| report.message.clone());
        let s = json!({"stdout": "", "stderr": diag, "output": diag, "code": code,
                       "signal": null, "message": report.message, "status": status,
                       "cpu_time": 0, "wall_time": 0, "memory": null});
        v["compile"] = s.clone();
        v["run"] = s;
    } else {
        if compiled {
            v["compile"] = json!({"stdout": "", "stderr": "", "output": "", "code": 0,
                                  "signal": null, "message": null, "status": null,
                                  "cpu_time": 0, "wall_time": 0, "memory": null});
        }
        v["run"] = stage(report);
    }
    v["corral"] = json!({
        "verdict": report.verdict.kind(),
        "record": report.record,
        "fuel_consumed": report.fuel_consumed,
    });
    v
}
