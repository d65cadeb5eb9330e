//! `corral mcp`: an MCP server (the official Rust SDK, `rmcp`) over stdio or streamable
//! HTTP, with three tools on the same [`Service`] as the HTTP faces:
//!
//! - `run_code {code, language, stdin?, timeout_ms?}` → the verdict, stdout and stderr as
//!   text, the report as structured content;
//! - `run_tests {code, language, cases: [{stdin, expected_stdout}]}` → per-case verdicts
//!   (compiled once);
//! - `replay {record}` → whether a recorded run of this server reproduces bit-for-bit.
//!
//! Every failure a caller can act on (a bad argument, a full queue, a compile error) is a
//! tool result with `isError`, never a protocol error.

use std::sync::Arc;

use corral::compile::Language;
use corral::eval::compare::Compare;
use corral::job::Invocation;
use corral::policy::LimitRequest;
use corral::{RunReport, Verdict};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{CaseRequest, cases_of};
use crate::service::{self, Job, Service};

/// The MCP server: a handle on the service.
#[derive(Debug, Clone)]
pub struct Server {
    svc: Arc<Service>,
}

impl Server {
    /// A server on `svc`.
    pub fn new(svc: Arc<Service>) -> Server {
        Server { svc }
    }
}

fn object(v: Value) -> Arc<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(serde_json::Map::new()),
    }
}

const LANGUAGES: &str = "python, c, cpp, rust, javascript, wat";

/// The tools and their input schemas.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "run_code",
            "Run a program in a corral sandbox (WebAssembly, no network, no host files, \
             deterministic CPU budget) and return its verdict, stdout and stderr. The same \
             code and stdin always give the same result.",
            object(json!({
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "the program text"},
                    "language": {"type": "string", "description": format!("one of {LANGUAGES}")},
                    "stdin": {"type": "string", "description": "standard input (default empty)"},
                    "timeout_ms": {"type": "integer", "minimum": 1,
                                   "description": "wall-clock limit in ms (at most the server's)"}
                },
                "required": ["code", "language"]
            })),
        ),
        Tool::new(
            "run_tests",
            "Compile a program once and run it on each test case (stdin → expected stdout); \
             returns a verdict per case (pass, fail with a diff, or how the run ended).",
            object(json!({
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "language": {"type": "string", "description": format!("one of {LANGUAGES}")},
                    "cases": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "stdin": {"type": "string"},
                                "expected_stdout": {"type": "string"}
                            }
                        }
                    },
                    "timeout_ms": {"type": "integer", "minimum": 1}
                },
                "required": ["code", "language", "cases"]
            })),
        ),
        Tool::new(
            "replay",
            "Re-run a recorded run of this server (its `record` id, `blake3:…`) and say \
             whether it reproduced bit-for-bit, or where it diverged.",
            object(json!({
                "type": "object",
                "properties": {
                    "record": {"type": "string", "description": "a record id from a result"}
                },
                "required": ["record"]
            })),
        ),
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunCode {
    code: String,
    language: String,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    expected_stdout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunTests {
    code: String,
    language: String,
    cases: Vec<TestCase>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayArgs {
    record: String,
}

fn failure(message: impl Into<String>) -> CallToolResult {
    let message = message.into();
    CallToolResult::structured_error(json!({ "error": message })).with_text(message)
}

trait WithText {
    fn with_text(self, text: String) -> Self;
}

impl WithText for CallToolResult {
    /// Replaces the text content (the structured JSON stays in `structuredContent`).
    fn with_text(mut self, text: String) -> Self {
        self.content = vec![ContentBlock::text(text)];
        self
    }
}

fn args<T: for<'de> Deserialize<'de>>(p: &CallToolRequestParams) -> Result<T, CallToolResult> {
    let v = Value::Object(p.arguments.clone().unwrap_or_default());
    serde_json::from_value(v).map_err(|e| failure(format!("invalid arguments: {e}")))
}

fn language(name: &str) -> Result<Language, CallToolResult> {
    match Language::from_name(name) {
        Some(Language::Wasm) | None => Err(failure(format!(
            "unknown language `{}` (use one of {LANGUAGES})",
            name.escape_debug()
        ))),
        Some(l) => Ok(l),
    }
}

/// The text an agent reads: the verdict line, then stdout and stderr.
fn text_of(r: &RunReport) -> String {
    let mut t = format!("verdict: {}", r.verdict.kind());
    if let Some(c) = r.verdict.exit_code() {
        t.push_str(&format!(" (exit code {c})"));
    }
    if r.verdict != Verdict::Ok {
        t.push_str(&format!("\n{}", r.message));
    }
    if let Some(d) = &r.diagnostics {
        t.push_str(&format!("\n--- compiler output ---\n{d}"));
    }
    t.push_str(&format!(
        "\n--- stdout ---\n{}",
        String::from_utf8_lossy(&r.stdout)
    ));
    if !r.stderr.is_empty() {
        t.push_str(&format!(
            "\n--- stderr ---\n{}",
            String::from_utf8_lossy(&r.stderr)
        ));
    }
    if let Some(rec) = &r.record {
        t.push_str(&format!("\n(record: {rec})"));
    }
    t
}

impl Server {
    fn limits(&self, timeout_ms: Option<u64>) -> LimitRequest {
        let max = u64::try_from(self.svc.config().policy.limits.wall_time.as_millis())
            .unwrap_or(u64::MAX);
        LimitRequest {
            wall_time_ms: timeout_ms.map(|t| t.clamp(1, max)),
            ..LimitRequest::default()
        }
    }

    async fn run_code(&self, a: RunCode) -> CallToolResult {
        let lang = match language(&a.language) {
            Ok(l) => l,
            Err(e) => return e,
        };
        let policy = match self.svc.policy_for(&self.limits(a.timeout_ms)) {
            Ok(p) => p,
            Err(r) => return failure(r.message()),
        };
        let job = Job {
            source: service::source(a.code.into_bytes(), lang),
            policy,
            invocation: Invocation {
                stdin: a.stdin.unwrap_or_default().into_bytes(),
                ..Invocation::default()
            },
            record: true,
        };
        match self.svc.run(job).await {
            // Every verdict is a result (the tool worked); `isError` is for runs that could
            // not be made.
            Ok(report) => CallToolResult::structured(report.to_json()).with_text(text_of(&report)),
            Err(r) => failure(r.message()),
        }
    }

    async fn run_tests(&self, a: RunTests) -> CallToolResult {
        let lang = match language(&a.language) {
            Ok(l) => l,
            Err(e) => return e,
        };
        let policy = match self.svc.policy_for(&self.limits(a.timeout_ms)) {
            Ok(p) => p,
            Err(r) => return failure(r.message()),
        };
        let reqs = a
            .cases
            .into_iter()
            .map(|c| CaseRequest {
                name: None,
                stdin: c.stdin,
                args: Vec::new(),
                env: Default::default(),
                expect_stdout: c.expected_stdout,
                expect_exit: None,
                compare: None,
                limits: None,
            })
            .collect();
        let cases = match cases_of(&self.svc, reqs, &policy, Compare::Trim, 1e-9, 0) {
            Ok(c) => c,
            Err(m) => return failure(m),
        };
        let n = cases.len();
        let source = service::source(a.code.into_bytes(), lang);
        match self.svc.eval(source, policy, cases, true).await {
            Ok(results) => {
                let summary = corral::eval::summarize(&results);
                let mut text = format!("{} of {n} cases passed", summary.passed);
                for r in &results {
                    text.push_str(&format!("\n{}: {}", r.name, r.status.label()));
                    if let corral::eval::CaseStatus::Fail { reason } = &r.status {
                        text.push_str(&format!(" — {reason}"));
                    } else if r.status != corral::eval::CaseStatus::Pass {
                        text.push_str(&format!(" — {}", r.report.message));
                    }
                }
                let cases: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        json!({
                            "case": r.name,
                            "status": r.status.label(),
                            "verdict": r.report.verdict.kind(),
                            "reason": match &r.status {
                                corral::eval::CaseStatus::Fail { reason } => json!(reason),
                                _ => Value::Null,
                            },
                            "stdout": String::from_utf8_lossy(&r.report.stdout),
                            "stderr": String::from_utf8_lossy(&r.report.stderr),
                            "message": r.report.message,
                            "record": r.record,
                        })
                    })
                    .collect();
                let body = json!({
                    "passed": summary.passed,
                    "failed": summary.failed,
                    "cases": cases,
                });
                CallToolResult::structured(body).with_text(text)
            }
            Err(r) => failure(r.message()),
        }
    }

    async fn replay(&self, a: ReplayArgs) -> CallToolResult {
        match self.svc.replay(&a.record).await {
            Ok(Ok(r)) => {
                let text = if r.identical {
                    format!(
                        "identical: the run reproduced bit-for-bit (verdict {})",
                        r.report.verdict.kind()
                    )
                } else {
                    format!(
                        "diverged: {}",
                        r.divergence.as_ref().map_or(Value::Null, |d| d.to_json())
                    )
                };
                CallToolResult::structured(r.to_json()).with_text(text)
            }
            Ok(Err(e)) => failure(format!(
                "replay refused: {}",
                corral::scrub_host_paths(&e.to_string())
            )),
            Err(r) => failure(r.message()),
        }
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("corral", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "corral runs untrusted code in WebAssembly sandboxes with typed verdicts. \
                 Use run_code for one run, run_tests for a program against test cases, and \
                 replay to check that a recorded run reproduces.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let result = match request.name.as_ref() {
            "run_code" => match args::<RunCode>(&request) {
                Ok(a) => self.run_code(a).await,
                Err(e) => e,
            },
            "run_tests" => match args::<RunTests>(&request) {
                Ok(a) => self.run_tests(a).await,
                Err(e) => e,
            },
            "replay" => match args::<ReplayArgs>(&request) {
                Ok(a) => self.replay(a).await,
                Err(e) => e,
            },
            other => failure(format!(
                "unknown tool `{}` (tools: run_code, run_tests, replay)",
                other.escape_debug()
            )),
        };
        Ok(result.into())
    }
}

/// Serves MCP on this process's stdin and stdout until the client closes them.
///
/// # Errors
///
/// The transport failed.
pub async fn serve_stdio(svc: Arc<Service>) -> Result<(), String> {
    use rmcp::ServiceExt;
    let running = Server::new(svc)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("cannot start the MCP server: {e}"))?;
    running
        .waiting()
        .await
        .map_err(|e| format!("the MCP server failed: {e}"))?;
    Ok(())
}

/// The streamable-HTTP MCP endpoint, to nest at `/mcp`.
pub fn http_service(
    svc: Arc<Service>,
    cancel: tokio_util::sync::CancellationToken,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    Server,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    StreamableHttpService::new(
        move || Ok(Server::new(svc.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_cancellation_token(cancel),
    )
}
