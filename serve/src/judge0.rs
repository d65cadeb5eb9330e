//! Judge0 CE: `/languages`, `/statuses`, `/about`, `/config_info`, `/submissions` (with
//! `wait`, `base64_encoded`, `fields`, `expected_output`), `/submissions/{token}` and
//! `/submissions/batch`, as judge0/judge0 (`config/routes.rb`, `docs/api`) and the official
//! `judge0` SDK use them. Statuses come from [`crate::mapping::judge0`]; what corral cannot
//! honour is a `422 {"field": ["message"]}` validation error, Judge0's own shape.
//!
//! Submissions without `wait=true` run in the background; their results are kept (bounded in
//! count and bytes, oldest finished first) for `GET /submissions/{token}`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use corral::compile::Language;
use corral::job::Invocation;
use corral::policy::LimitRequest;
use corral::{RunReport, Verdict};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::http::{json_body, refusal_status, with_retry_after};
use crate::mapping::{self, JUDGE0_STATUSES};
use crate::service::{self, Job, Refusal, Service};

/// The Judge0 version corral's ids follow (the SDK resolves language aliases by it).
pub const VERSION: &str = "1.13.1";

/// Most submissions in one batch.
pub const MAX_BATCH: usize = 20;

/// Bytes of submissions (source, stdin, outputs) kept for `GET /submissions/{token}`.
pub const MAX_KEPT_BYTES: usize = 256 << 20;

/// The language ids corral answers to (Judge0 1.13.1's ids for these languages).
const LANGUAGES: [(u32, &str, Language, &str); 8] = [
    (50, "C (Clang 14.0.6)", Language::C, "main.c"),
    (52, "C++ (Clang 14.0.6)", Language::Cpp, "main.cpp"),
    (54, "C++ (Clang 14.0.6)", Language::Cpp, "main.cpp"),
    (
        63,
        "JavaScript (QuickJS-ng 0.10.0)",
        Language::JavaScript,
        "script.js",
    ),
    (71, "Python (3.14.0)", Language::Python, "script.py"),
    (73, "Rust (1.95.0)", Language::Rust, "main.rs"),
    (75, "C (Clang 14.0.6)", Language::C, "main.c"),
    (76, "C++ (Clang 14.0.6)", Language::Cpp, "main.cpp"),
];

const DEFAULT_FIELDS: [&str; 8] = [
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

const ALL_FIELDS: [&str; 24] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "exit_code",
    "exit_signal",
    "status",
    "status_id",
    "created_at",
    "finished_at",
    "token",
    "time",
    "wall_time",
    "memory",
    "language",
    "number_of_runs",
    "cpu_time_limit",
    "wall_time_limit",
    "memory_limit",
    "redirect_stderr_to_stdout",
];

/// Fields whose text is base64-encoded with `base64_encoded=true`.
const TEXT_FIELDS: [&str; 7] = [
    "source_code",
    "stdin",
    "expected_output",
    "stdout",
    "stderr",
    "compile_output",
    "message",
];

#[derive(Debug, Clone)]
enum State_ {
    Queued,
    Done(Box<RunReport>),
    Refused(String),
}

#[derive(Debug, Clone)]
struct Entry {
    language_id: u32,
    source: Vec<u8>,
    stdin: Vec<u8>,
    expected: Option<Vec<u8>>,
    redirect: bool,
    runs: u32,
    limits: (f64, f64, u64),
    created: SystemTime,
    finished: Option<SystemTime>,
    state: State_,
}

impl Entry {
    fn bytes(&self) -> usize {
        let out = match &self.state {
            State_::Done(r) => {
                r.stdout.len()
                    + r.stderr.len()
                    + r.message.len()
                    + r.diagnostics.as_ref().map_or(0, String::len)
            }
            State_::Refused(m) => m.len(),
            State_::Queued => 0,
        };
        self.source.len() + self.stdin.len() + self.expected.as_ref().map_or(0, Vec::len) + out
    }
}

/// The kept submissions.
#[derive(Debug)]
pub(crate) struct Submissions {
    inner: Mutex<Kept>,
    max: usize,
    next: AtomicU64,
    seed: u64,
}

#[derive(Debug, Default)]
struct Kept {
    map: HashMap<String, Entry>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Submissions {
    pub(crate) fn new(max: usize) -> Submissions {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Submissions {
            inner: Mutex::new(Kept::default()),
            max: max.max(1),
            next: AtomicU64::new(0),
            seed: h.finish(),
        }
    }

    fn token(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let h = blake3::hash(&[self.seed.to_le_bytes(), n.to_le_bytes()].concat());
        let x = h.to_hex();
        let x = x.as_str();
        format!(
            "{}-{}-4{}-a{}-{}",
            &x[0..8],
            &x[8..12],
            &x[13..16],
            &x[17..20],
            &x[20..32]
        )
    }

    /// Keeps `entry`; `Err` when the store is full of unfinished submissions.
    fn insert(&self, entry: Entry) -> Result<String, ()> {
        let token = self.token();
        let Ok(mut k) = self.inner.lock() else {
            return Err(());
        };
        let size = entry.bytes();
        while k.map.len() >= self.max || k.bytes + size > MAX_KEPT_BYTES {
            // The oldest finished submission goes first.
            let Some(pos) = k.order.iter().position(|t| {
                k.map
                    .get(t)
                    .is_some_and(|e| !matches!(e.state, State_::Queued))
            }) else {
                return Err(());
            };
            if let Some(t) = k.order.remove(pos)
                && let Some(e) = k.map.remove(&t)
            {
                k.bytes = k.bytes.saturating_sub(e.bytes());
            }
        }
        k.bytes += size;
        k.order.push_back(token.clone());
        k.map.insert(token.clone(), entry);
        Ok(token)
    }

    fn finish(&self, token: &str, state: State_) {
        if let Ok(mut k) = self.inner.lock()
            && let Some(e) = k.map.get_mut(token)
        {
            let before = e.bytes();
            e.state = state;
            e.finished = Some(SystemTime::now());
            let after = e.bytes();
            k.bytes = (k.bytes + after).saturating_sub(before);
        }
    }

    fn get(&self, token: &str) -> Option<Entry> {
        self.inner.lock().ok()?.map.get(token).cloned()
    }
}

fn error(status: StatusCode, m: &str) -> Response {
    with_retry_after((status, axum::Json(json!({ "error": m }))).into_response())
}

fn field_errors(errors: BTreeMap<&'static str, Vec<String>>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!(errors))).into_response()
}

/// `GET /languages`.
pub async fn languages() -> Response {
    let list: Vec<Value> = LANGUAGES
        .iter()
        .map(|(id, name, ..)| json!({"id": id, "name": name}))
        .collect();
    axum::Json(list).into_response()
}

/// `GET /languages/{id}`.
pub async fn language(Path(id): Path<String>) -> Response {
    match LANGUAGES
        .iter()
        .find(|(i, ..)| id.parse::<u32>().ok() == Some(*i))
    {
        Some((id, name, _, file)) => axum::Json(json!({
            "id": id, "name": name, "is_archived": false, "source_file": file,
            "compile_cmd": null, "run_cmd": null,
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "language not found"),
    }
}

/// `GET /statuses`.
pub async fn statuses() -> Response {
    let list: Vec<Value> = JUDGE0_STATUSES
        .iter()
        .map(|(id, d)| json!({"id": id, "description": d}))
        .collect();
    axum::Json(list).into_response()
}

/// `GET /about`.
pub async fn about() -> Response {
    axum::Json(json!({
        "version": VERSION,
        "homepage": "corral",
        "source_code": "corral",
        "maintainer": "corral (a Judge0 CE-compatible endpoint; runs are WebAssembly sandboxes)",
    }))
    .into_response()
}

/// `GET /config_info`: the defaults and maxima, from the server policy.
pub async fn config_info(State(svc): State<Arc<Service>>) -> Response {
    let p = &svc.config().policy;
    let wall = p.limits.wall_time.as_secs_f64();
    let mem_kb = p.limits.memory.0 / 1024;
    axum::Json(json!({
        "allow_enable_network": false,
        "allow_enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_time_limit": false,
        "allowed_languages_for_compile_options": [],
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "cpu_extra_time": 0.0,
        "cpu_time_limit": wall,
        "enable_additional_files": false,
        "enable_batched_submissions": true,
        "enable_callbacks": false,
        "enable_command_line_arguments": true,
        "enable_compiler_options": false,
        "enable_network": false,
        "enable_per_process_and_thread_memory_limit": false,
        "enable_per_process_and_thread_time_limit": false,
        "enable_submission_delete": false,
        "enable_wait_result": true,
        "maintenance_mode": false,
        "max_cpu_extra_time": 0.0,
        "max_cpu_time_limit": wall,
        "max_extract_size": 0,
        "max_file_size": p.limits.fs_bytes.0 / 1024,
        "max_max_file_size": p.limits.fs_bytes.0 / 1024,
        "max_max_processes_and_or_threads": 1,
        "max_memory_limit": mem_kb,
        "max_number_of_runs": 20,
        "max_processes_and_or_threads": 1,
        "max_queue_size": svc.config().queue,
        "max_stack_limit": corral_stack_kb(),
        "max_submission_batch_size": MAX_BATCH,
        "max_wall_time_limit": wall,
        "memory_limit": mem_kb,
        "number_of_runs": 1,
        "redirect_stderr_to_stdout": false,
        "stack_limit": corral_stack_kb(),
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": false,
        "wall_time_limit": wall,
    }))
    .into_response()
}

/// The wasm stack, in KB (fixed for determinism).
fn corral_stack_kb() -> u64 {
    16 * 1024
}

/// Query parameters.
#[derive(Debug, Deserialize, Default)]
pub struct Params {
    base64_encoded: Option<String>,
    wait: Option<String>,
    fields: Option<String>,
    tokens: Option<String>,
}

/// The query parameters, or Judge0's `400 {"error"}`.
fn query(q: Result<Query<Params>, QueryRejection>) -> Result<Params, Response> {
    q.map(|Query(p)| p).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("invalid query parameters: {}", e.body_text()),
        )
    })
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("true") || s == "1")
}

/// A submission's attributes (unknown keys are ignored, as Judge0 ignores them).
#[derive(Debug, Deserialize)]
pub struct SubmissionRequest {
    source_code: Option<String>,
    language_id: Option<Value>,
    compiler_options: Option<String>,
    command_line_arguments: Option<String>,
    stdin: Option<String>,
    expected_output: Option<String>,
    cpu_time_limit: Option<f64>,
    cpu_extra_time: Option<f64>,
    wall_time_limit: Option<f64>,
    memory_limit: Option<f64>,
    stack_limit: Option<f64>,
    max_processes_and_or_threads: Option<f64>,
    enable_per_process_and_thread_time_limit: Option<bool>,
    enable_per_process_and_thread_memory_limit: Option<bool>,
    max_file_size: Option<f64>,
    redirect_stderr_to_stdout: Option<bool>,
    enable_network: Option<bool>,
    number_of_runs: Option<f64>,
    additional_files: Option<String>,
    callback_url: Option<String>,
}

/// A validated submission: its job and what is kept of it.
struct Valid {
    job: Job,
    entry: Entry,
}

fn decode(b64: bool, field: &'static str, v: &str) -> Result<Vec<u8>, (&'static str, String)> {
    if b64 {
        base64::engine::general_purpose::STANDARD
            .decode(v.trim().replace(['\n', '\r'], ""))
            .map_err(|_| (field, "is not valid base64".to_string()))
    } else {
        Ok(v.as_bytes().to_vec())
    }
}

fn validate(
    svc: &Service,
    req: SubmissionRequest,
    b64: bool,
) -> Result<Valid, BTreeMap<&'static str, Vec<String>>> {
    let mut errs: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut err = |f: &'static str, m: String| errs.entry(f).or_default().push(m);
    let p = &svc.config().policy;
    let max_wall = p.limits.wall_time.as_secs_f64();
    let lang = match &req.language_id {
        None | Some(Value::Null) => {
            err("language_id", "can't be blank".into());
            None
        }
        Some(v) => {
            let id = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
            match id.and_then(|id| LANGUAGES.iter().find(|l| u64::from(l.0) == id)) {
                Some(l) => Some(*l),
                None => {
                    err("language_id", format!("language with id {v} doesn't exist"));
                    None
                }
            }
        }
    };
    let mut text = |f: &'static str, v: &Option<String>| -> Option<Vec<u8>> {
        match v.as_deref().map(|s| decode(b64, f, s)) {
            Some(Ok(b)) => Some(b),
            Some(Err((f, m))) => {
                errs.entry(f).or_default().push(m);
                None
            }
            None => None,
        }
    };
    let source = text("source_code", &req.source_code);
    let stdin = text("stdin", &req.stdin).unwrap_or_default();
    let expected = text("expected_output", &req.expected_output);
    let mut err = |f: &'static str, m: String| errs.entry(f).or_default().push(m);
    if source.as_ref().is_none_or(Vec::is_empty) {
        err("source_code", "can't be blank".into());
    }
    let unsupported: [(&'static str, bool, &str); 4] = [
        (
            "enable_network",
            req.enable_network == Some(true),
            "network access is not available in corral",
        ),
        (
            "callback_url",
            req.callback_url.as_deref().is_some_and(|s| !s.is_empty()),
            "callbacks are not supported by corral",
        ),
        (
            "additional_files",
            req.additional_files
                .as_deref()
                .is_some_and(|s| !s.is_empty()),
            "additional files are not supported by corral",
        ),
        (
            "compiler_options",
            req.compiler_options
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty()),
            "compiler options are not supported by corral (every program is compiled with fixed flags so that runs are reproducible)",
        ),
    ];
    for (f, bad, m) in unsupported {
        if bad {
            err(f, m.into());
        }
    }
    for (f, bad) in [
        (
            "enable_per_process_and_thread_time_limit",
            req.enable_per_process_and_thread_time_limit == Some(true),
        ),
        (
            "enable_per_process_and_thread_memory_limit",
            req.enable_per_process_and_thread_memory_limit == Some(true),
        ),
    ] {
        if bad {
            err(
                f,
                "is not allowed (a corral run is one process with one thread)".into(),
            );
        }
    }
    let mut limit = |f: &'static str, v: Option<f64>, min: f64, max: f64| -> Option<f64> {
        let v = v?;
        if !v.is_finite() || v < min {
            err(f, format!("must be greater than or equal to {min}"));
            None
        } else if v > max {
            err(f, format!("must be less than or equal to {max}"));
            None
        } else {
            Some(v)
        }
    };
    let wall = limit("wall_time_limit", req.wall_time_limit, 0.001, max_wall);
    let cpu = limit("cpu_time_limit", req.cpu_time_limit, 0.0, max_wall);
    let extra = limit("cpu_extra_time", req.cpu_extra_time, 0.0, max_wall);
    let mem_kb = limit(
        "memory_limit",
        req.memory_limit,
        2048.0,
        (p.limits.memory.0 / 1024) as f64,
    );
    let _ = limit(
        "stack_limit",
        req.stack_limit,
        0.0,
        corral_stack_kb() as f64,
    );
    let _ = limit(
        "max_processes_and_or_threads",
        req.max_processes_and_or_threads,
        0.0,
        1e9,
    );
    let _ = limit("max_file_size", req.max_file_size, 0.0, 1e12);
    let runs = limit("number_of_runs", req.number_of_runs, 1.0, 20.0);
    if !errs.is_empty() {
        return Err(errs);
    }
    let Some((language_id, _, language, _)) = lang else {
        return Err(errs);
    };
    // The run's wall-clock limit: the smallest of wall_time_limit and cpu_time_limit plus
    // its extra time (corral has one clock per run).
    let cpu_total = cpu.map(|c| (c + extra.unwrap_or(0.0)).min(max_wall));
    let wall_s = [wall, cpu_total].into_iter().flatten().reduce(f64::min);
    let limits = LimitRequest {
        wall_time_ms: wall_s.map(|s| ((s * 1000.0).ceil() as u64).max(1)),
        memory_bytes: mem_kb.map(|kb| kb as u64 * 1024),
        ..LimitRequest::default()
    };
    let policy = svc
        .policy_for(&limits)
        .map_err(|r| BTreeMap::from([("limits", vec![r.message()])]))?;
    let source = source.unwrap_or_default();
    let args = req
        .command_line_arguments
        .as_deref()
        .map(|a| a.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let entry = Entry {
        language_id,
        source: source.clone(),
        stdin: stdin.clone(),
        expected,
        redirect: req.redirect_stderr_to_stdout == Some(true),
        runs: runs.map_or(1, |r| r as u32),
        limits: (
            policy.limits.wall_time.as_secs_f64(),
            policy.limits.wall_time.as_secs_f64(),
            policy.limits.memory.0 / 1024,
        ),
        created: SystemTime::now(),
        finished: None,
        state: State_::Queued,
    };
    Ok(Valid {
        job: Job {
            source: service::source(source, language),
            policy,
            invocation: Invocation {
                args,
                stdin,
                ..Invocation::default()
            },
            record: true,
        },
        entry,
    })
}

fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Every attribute of a kept submission, text fields as bytes (encoded later).
fn attributes(token: &str, e: &Entry) -> (Map<String, Value>, BTreeMap<&'static str, Vec<u8>>) {
    let mut m = Map::new();
    let mut texts: BTreeMap<&'static str, Vec<u8>> = BTreeMap::new();
    texts.insert("source_code", e.source.clone());
    texts.insert("stdin", e.stdin.clone());
    if let Some(x) = &e.expected {
        texts.insert("expected_output", x.clone());
    }
    let (status, exit_code, exit_signal, time) = match &e.state {
        State_::Queued => (1, Value::Null, Value::Null, Value::Null),
        State_::Refused(msg) => {
            texts.insert("message", msg.clone().into_bytes());
            (13, Value::Null, Value::Null, Value::Null)
        }
        State_::Done(r) => {
            let mut stdout = r.stdout.clone();
            if e.redirect {
                stdout.extend_from_slice(&r.stderr);
            } else {
                texts.insert("stderr", r.stderr.clone());
            }
            texts.insert("stdout", stdout);
            if let Some(d) = &r.diagnostics {
                texts.insert("compile_output", d.clone().into_bytes());
            }
            if r.verdict != Verdict::Ok {
                texts.insert("message", r.message.clone().into_bytes());
            }
            let status = mapping::judge0(r, e.expected.as_deref());
            let sig = mapping::native_signal(&r.verdict);
            (
                status,
                json!(r.verdict.exit_code()),
                json!(sig.map(|s| s.number)),
                json!(format!("{:.3}", r.wall_time.as_secs_f64())),
            )
        }
    };
    let desc = JUDGE0_STATUSES
        .iter()
        .find(|(i, _)| *i == status)
        .map_or("", |(_, d)| d);
    let lang_name = LANGUAGES
        .iter()
        .find(|l| l.0 == e.language_id)
        .map_or("", |l| l.1);
    m.insert("token".into(), json!(token));
    m.insert("status".into(), json!({"id": status, "description": desc}));
    m.insert("status_id".into(), json!(status));
    m.insert("exit_code".into(), exit_code);
    m.insert("exit_signal".into(), exit_signal);
    m.insert("time".into(), time.clone());
    m.insert("wall_time".into(), time);
    m.insert("memory".into(), Value::Null);
    m.insert("language_id".into(), json!(e.language_id));
    m.insert(
        "language".into(),
        json!({"id": e.language_id, "name": lang_name}),
    );
    m.insert("created_at".into(), json!(timestamp(e.created)));
    m.insert("finished_at".into(), json!(e.finished.map(timestamp)));
    m.insert("number_of_runs".into(), json!(e.runs));
    m.insert("cpu_time_limit".into(), json!(e.limits.0));
    m.insert("wall_time_limit".into(), json!(e.limits.1));
    m.insert("memory_limit".into(), json!(e.limits.2));
    m.insert("redirect_stderr_to_stdout".into(), json!(e.redirect));
    (m, texts)
}

/// The fields asked for: `None` (the defaults), `*`, or a comma list.
fn fields_of(p: &Params) -> Result<Vec<&'static str>, Response> {
    match p.fields.as_deref().map(str::trim) {
        None | Some("") => Ok(DEFAULT_FIELDS.to_vec()),
        Some("*") => Ok(ALL_FIELDS.to_vec()),
        Some(list) => {
            let mut out = Vec::new();
            let mut bad = Vec::new();
            for f in list.split(',').map(str::trim) {
                match ALL_FIELDS.iter().find(|a| **a == f) {
                    Some(a) => out.push(*a),
                    None => bad.push(f.to_string()),
                }
            }
            if bad.is_empty() {
                Ok(out)
            } else {
                Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid fields: [{}]", bad.join(", ")),
                ))
            }
        }
    }
}

const UTF8_ERROR: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";

/// The projected view of a submission; `Err(())` when a text is not UTF-8 and base64 was
/// not asked for.
fn view(token: &str, e: &Entry, fields: &[&str], b64: bool) -> Result<Value, ()> {
    let (attrs, texts) = attributes(token, e);
    let mut out = Map::new();
    for f in fields {
        if TEXT_FIELDS.contains(f) {
            let v = match texts.get(f) {
                None => Value::Null,
                Some(b) if b64 => json!(base64::engine::general_purpose::STANDARD.encode(b)),
                Some(b) => json!(String::from_utf8(b.clone()).map_err(|_| ())?),
            };
            out.insert((*f).to_string(), v);
        } else {
            out.insert(
                (*f).to_string(),
                attrs.get(*f).cloned().unwrap_or(Value::Null),
            );
        }
    }
    Ok(Value::Object(out))
}

async fn run_and_keep(svc: Arc<Service>, token: String, job: Job) {
    let state = match svc.run(job).await {
        Ok(r) => State_::Done(Box::new(r)),
        Err(r) => State_::Refused(r.message()),
    };
    svc.submissions.finish(&token, state);
}

/// `POST /submissions`.
pub async fn create(
    State(svc): State<Arc<Service>>,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match query(params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req: SubmissionRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return error(e.status, &e.message),
    };
    let b64 = flag(&params.base64_encoded);
    let valid = match validate(&svc, req, b64) {
        Ok(v) => v,
        Err(errs) => return field_errors(errs),
    };
    if flag(&params.wait) {
        let fields = match fields_of(&params) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let mut entry = valid.entry;
        let report = match svc.run(valid.job).await {
            Ok(r) => r,
            Err(Refusal::Busy) => return error(StatusCode::SERVICE_UNAVAILABLE, "queue is full"),
            Err(r) => return error(refusal_status(&r), &r.message()),
        };
        entry.state = State_::Done(Box::new(report));
        entry.finished = Some(SystemTime::now());
        let Ok(token) = svc.submissions.insert(entry.clone()) else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "queue is full");
        };
        return match view(&token, &entry, &fields, b64) {
            Ok(v) => (StatusCode::CREATED, axum::Json(v)).into_response(),
            Err(()) => (
                StatusCode::CREATED,
                axum::Json(json!({"token": token, "error": UTF8_ERROR})),
            )
                .into_response(),
        };
    }
    match submit(&svc, valid) {
        Ok(token) => (StatusCode::CREATED, axum::Json(json!({ "token": token }))).into_response(),
        Err(r) => r,
    }
}

/// Queues a submission to run in the background.
fn submit(svc: &Arc<Service>, valid: Valid) -> Result<String, Response> {
    if !svc.ready() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is shutting down",
        ));
    }
    if !svc.has_room() {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "queue is full"));
    }
    let token = svc
        .submissions
        .insert(valid.entry)
        .map_err(|()| error(StatusCode::SERVICE_UNAVAILABLE, "queue is full"))?;
    svc.spawn(run_and_keep(svc.clone(), token.clone(), valid.job));
    Ok(token)
}

/// `GET /submissions/{token}`.
pub async fn get(
    State(svc): State<Arc<Service>>,
    Path(token): Path<String>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let params = match query(params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let fields = match fields_of(&params) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(e) = svc.submissions.get(&token) else {
        return error(StatusCode::NOT_FOUND, "submission not found");
    };
    match view(&token, &e, &fields, flag(&params.base64_encoded)) {
        Ok(v) => axum::Json(v).into_response(),
        Err(()) => error(StatusCode::BAD_REQUEST, UTF8_ERROR),
    }
}

/// `POST /submissions/batch`.
#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    submissions: Vec<Value>,
}

/// `POST /submissions/batch`: tokens (or field errors) aligned with the input.
pub async fn create_batch(
    State(svc): State<Arc<Service>>,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match query(params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // A body that is not `{"submissions": [...]}` is a bad request (422 is reserved for a
    // batch whose every submission was invalid, answered as an aligned array).
    let req: BatchRequest = match json_body(&headers, body) {
        Ok(r) => r,
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            return error(StatusCode::BAD_REQUEST, &e.message);
        }
        Err(e) => return error(e.status, &e.message),
    };
    if req.submissions.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "there should be at least one submission in a batch",
        );
    }
    if req.submissions.len() > MAX_BATCH {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "number of submissions in a batch should be less than or equal to {MAX_BATCH}"
            ),
        );
    }
    let b64 = flag(&params.base64_encoded);
    let mut out = Vec::new();
    let mut any = false;
    for s in req.submissions {
        let parsed: Result<SubmissionRequest, _> = serde_json::from_value(s);
        let item = match parsed {
            Err(e) => json!({"error": format!("invalid submission: {e}")}),
            Ok(r) => match validate(&svc, r, b64) {
                Err(errs) => json!(errs),
                Ok(valid) => match submit(&svc, valid) {
                    Ok(token) => {
                        any = true;
                        json!({ "token": token })
                    }
                    Err(_) => json!({"error": "queue is full"}),
                },
            },
        };
        out.push(item);
    }
    let status = if any {
        StatusCode::CREATED
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, axum::Json(out)).into_response()
}

/// `GET /submissions/batch?tokens=a,b`.
pub async fn get_batch(
    State(svc): State<Arc<Service>>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let params = match query(params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let fields = match fields_of(&params) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(tokens) = params.tokens.as_deref().filter(|t| !t.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "there should be at least one token",
        );
    };
    let tokens: Vec<&str> = tokens.split(',').map(str::trim).collect();
    if tokens.len() > MAX_BATCH {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("number of tokens in a batch should be less than or equal to {MAX_BATCH}"),
        );
    }
    let b64 = flag(&params.base64_encoded);
    let mut out = Vec::new();
    for t in tokens {
        match svc.submissions.get(t) {
            None => out.push(Value::Null),
            Some(e) => match view(t, &e, &fields, b64) {
                Ok(v) => out.push(v),
                Err(()) => return error(StatusCode::BAD_REQUEST, UTF8_ERROR),
            },
        }
    }
    axum::Json(json!({ "submissions": out })).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_parse_as_judge0_writes_them() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(super::timestamp(t), "2023-11-14T22:13:20.123Z");
    }
}
