//! Evaluation: compile a program once, run many cases concurrently, grade each.
//!
//! Every case runs in a fresh sandbox (own store, limits, WASI context, staged input dirs),
//! so cases cannot see each other. A case is `pass` when the guest completed with the
//! expected exit code and (when given) the expected stdout; `fail` when it completed
//! otherwise (with a readable diff); otherwise the run's own verdict (`limit`, `trap`, …).
//! Failing cases are recorded, so each can be replayed with `corral replay`.

pub mod compare;
pub mod humaneval;
pub mod junit;
pub mod suite;

use std::sync::Arc;

use crate::compile::Source;
use crate::engine::Engine;
use crate::error::Error;
use crate::job::{self, Program, Recording};
use crate::record::RecordStore;
use crate::report::RunReport;
use crate::verdict::Verdict;
pub use suite::{Case, Suite, SuiteError};

/// How one case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseStatus {
    /// Completed as expected.
    Pass,
    /// Completed, but with the wrong output or exit code.
    Fail {
        /// What differed.
        reason: String,
    },
    /// Did not complete: the run's verdict (`limit`, `trap`, `denied`, `rejected`, …).
    Error(Verdict),
}

impl CaseStatus {
    /// `pass`, `fail`, or the verdict's kind.
    pub fn label(&self) -> String {
        match self {
            CaseStatus::Pass => "pass".into(),
            CaseStatus::Fail { .. } => "fail".into(),
            CaseStatus::Error(v) => match (v.limit(), v.trap()) {
                (Some(l), _) => format!("limit ({l})"),
                (_, Some(t)) => format!("trap ({t})"),
                _ => v.kind().to_string(),
            },
        }
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Pass, fail, or the verdict.
    pub status: CaseStatus,
    /// The run's report.
    pub report: RunReport,
    /// The run record (written for cases that did not pass, when a store is given).
    pub record: Option<String>,
}

impl CaseResult {
    /// The per-case object of `corral eval --json`: the run's report plus `case`, `status`
    /// and `reason` (the diff of a failing case, else `null`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.report.to_json();
        v["case"] = serde_json::json!(self.name);
        v["status"] = serde_json::json!(self.status.label());
        v["reason"] = match &self.status {
            CaseStatus::Fail { reason } => serde_json::json!(reason),
            _ => serde_json::Value::Null,
        };
        v
    }
}

/// Totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that did not (fail or any other status).
    pub failed: usize,
    /// Count per status label.
    pub by_status: std::collections::BTreeMap<String, usize>,
}

/// Options of a suite run.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Cases run at once. By default the number of cores.
    pub jobs: usize,
    /// Where failing cases are recorded (`None`: no records).
    pub store: Option<RecordStore>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            store: None,
        }
    }
}

/// Grades one finished run of `case`.
pub fn grade(case: &Case, report: &RunReport) -> CaseStatus {
    let code = match &report.verdict {
        Verdict::Ok => 0,
        Verdict::Exit(c) => *c,
        other => return CaseStatus::Error(other.clone()),
    };
    if code != case.expect_exit {
        return CaseStatus::Fail {
            reason: format!("exit code {code}, expected {}", case.expect_exit),
        };
    }
    if let Some(expected) = &case.expect_stdout {
        let actual = String::from_utf8_lossy(&report.stdout);
        if !case.compare.matches(expected, &actual) {
            let mut reason = format!(
                "stdout differs ({} comparison): {}",
                case.compare.name(),
                compare::diff(expected, &actual)
            );
            if report.stdout_truncated {
                reason.push_str(" (stdout was truncated at the policy's cap)");
            }
            return CaseStatus::Fail { reason };
        }
    }
    CaseStatus::Pass
}

impl Summary {
    /// The summary object that ends `corral eval --json`.
    pub fn to_json(&self, cases: usize, wall_time: std::time::Duration) -> serde_json::Value {
        serde_json::json!({
            "summary": true,
            "cases": cases,
            "passed": self.passed,
            "failed": self.failed,
            "by_status": self.by_status,
            "wall_time_ms": wall_time.as_secs_f64() * 1000.0,
        })
    }
}

/// Totals over results.
pub fn summarize(results: &[CaseResult]) -> Summary {
    let mut s = Summary::default();
    for r in results {
        if r.status == CaseStatus::Pass {
            s.passed += 1;
        } else {
            s.failed += 1;
        }
        *s.by_status.entry(r.status.label()).or_insert(0) += 1;
    }
    s
}

/// Runs every case of `suite` (each in a fresh sandbox, `opts.jobs` at a time), calling
/// `progress(done, total)` as cases finish. Results come back in case order.
///
/// # Errors
///
/// Host failures (reading the program, the runtime). Guest outcomes are results.
pub async fn run_suite(
    engine: &Engine,
    suite: &Suite,
    opts: &EvalOptions,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<Vec<CaseResult>, Error> {
    let source = Source::from_file(&suite.program, suite.policy.limits.module_bytes.0)?;
    let program = Arc::new(Program::prepare(engine, &source, &suite.policy)?);
    run_cases(engine, program, suite.cases.clone(), opts, progress).await
}

/// Runs every case against a program prepared once (each case in a fresh sandbox under its
/// own policy, `opts.jobs` at a time), calling `progress(done, total)` as cases finish;
/// cases that did not pass are recorded when `opts.store` is set. Results come back in case
/// order. [`run_suite`] is this for a suite file; faces that receive a program and its cases
/// in one request (the service's `/v1/eval`, the Python package's `Engine.eval`) call it
/// directly.
///
/// # Errors
///
/// Host failures. Guest outcomes, invalid invocations included, are results.
pub async fn run_cases(
    engine: &Engine,
    program: Arc<Program>,
    cases: Vec<Case>,
    opts: &EvalOptions,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<Vec<CaseResult>, Error> {
    let total = cases.len();
    let progress = Arc::new(progress);
    let permits = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, case) in cases.into_iter().enumerate() {
        let (engine, program, permits, store) = (
            engine.clone(),
            program.clone(),
            permits.clone(),
            opts.store.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let recording = if store.is_some() {
                Recording::On
            } else {
                Recording::Off
            };
            let mut outcome =
                job::run(&engine, &program, &case.policy, &case.invocation, recording).await?;
            let status = grade(&case, &outcome.report);
            let mut record = None;
            if status != CaseStatus::Pass
                && let Some(store) = &store
                && let Some(path) = outcome.write_record(&engine, store)?
            {
                record = Some(path.display().to_string());
            }
            Ok::<_, Error>((
                i,
                CaseResult {
                    name: case.name.clone(),
                    status,
                    report: outcome.report,
                    record,
                },
            ))
        });
    }
    let mut results: Vec<Option<CaseResult>> = vec![None; total];
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, r) = joined.map_err(|e| Error::host(format!("a case task failed: {e}")))??;
        results[i] = Some(r);
        done += 1;
        progress(done, total);
    }
    Ok(results.into_iter().flatten().collect())
}
