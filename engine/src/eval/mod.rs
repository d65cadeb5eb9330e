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

use crate::compile::Language;
use crate::engine::{Engine, GuestModule};
use crate::error::Error;
use crate::record::Store;
use crate::report::RunReport;
use crate::request::RunRequest;
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
    pub store: Option<Store>,
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

/// A program compiled and admitted once, ready to run for many cases.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The module (or `None` when compiling or admission failed: then `early` says why).
    pub module: Option<GuestModule>,
    /// For interpreted languages, the program text (`argv[1]`).
    pub program: Option<String>,
    /// The language.
    pub language: Language,
    /// The display name (`argv[0]` for runners).
    pub name: String,
    /// The report of a failed compile/admission.
    pub early: Option<RunReport>,
}

impl Prepared {
    /// Compiles and admits `req` once.
    ///
    /// # Errors
    ///
    /// Host failures.
    pub fn new(engine: &Engine, req: &RunRequest) -> Result<Prepared, Error> {
        let (outcome, program) = engine.prepare_request(req)?;
        let early = outcome.module.is_none().then(|| outcome.report.clone());
        Ok(Prepared {
            module: outcome.module,
            program,
            language: req.language,
            name: req.name.clone(),
            early,
        })
    }
}

/// Runs one case with a prepared program; returns the report and, when asked to record,
/// the trail and inputs.
///
/// # Errors
///
/// Host failures.
pub async fn run_case(
    engine: &Engine,
    prepared: &Prepared,
    case: &Case,
    seed: u64,
    keep: bool,
) -> Result<crate::request::Outcome, Error> {
    let Some(module) = &prepared.module else {
        let report = prepared.early.clone().unwrap_or_else(|| {
            RunReport::without_run(Verdict::HostError("no module".into()), "no module".into())
        });
        return Ok(crate::request::Outcome {
            report,
            module: None,
            run: None,
        });
    };
    let mut b = engine.sandbox(module, &case.policy);
    if let Some(src) = &prepared.program {
        b = b.argv0(prepared.name.clone()).args([src.clone()]);
        if prepared.language == Language::JavaScript {
            b = b.env(
                crate::compile::runner::JS_STACK_ENV.0,
                crate::compile::runner::JS_STACK_ENV.1,
            );
        }
    }
    b = b
        .args(case.args.iter().cloned())
        .stdin(case.stdin.clone())
        .input(case.input.clone())
        .seed(seed)
        .keep_inputs(keep);
    for (k, v) in &case.env {
        b = b.env(k.clone(), v.clone());
    }
    for d in &case.dirs {
        b = b.dir(d.clone());
    }
    let sandbox = match b.build() {
        Ok(s) => s,
        Err(e) if *e.kind() == crate::ErrorKind::InvalidInput => {
            let report = RunReport::without_run(
                Verdict::InvalidInput(e.message().into()),
                e.message().into(),
            );
            return Ok(crate::request::Outcome {
                report,
                module: Some(module.clone()),
                run: None,
            });
        }
        Err(e) => return Err(e),
    };
    let f = sandbox.run_full().await?;
    Ok(crate::request::Outcome {
        report: f.report,
        module: Some(module.clone()),
        run: Some((f.trail, f.inputs)),
    })
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
    let source = std::fs::read(&suite.program).map_err(|e| {
        Error::invalid_input(format!("cannot read `{}`: {e}", suite.program.display()))
    })?;
    let language = Language::from_path(&suite.program).ok_or_else(|| {
        Error::invalid_input(format!(
            "`{}`: unknown program type",
            suite.program.display()
        ))
    })?;
    let name = suite
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "main".into());
    let req = RunRequest::new(source, name, language, (*suite.policy).clone());
    let prepared = Arc::new(Prepared::new(engine, &req)?);
    let total = suite.cases.len();
    let progress = Arc::new(progress);
    let permits = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, case) in suite.cases.iter().cloned().enumerate() {
        let (engine, prepared, permits, store) = (
            engine.clone(),
            prepared.clone(),
            permits.clone(),
            opts.store.clone(),
        );
        let seed = suite.seed;
        let req_policy = case.policy.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut outcome = run_case(&engine, &prepared, &case, seed, store.is_some()).await?;
            let status = grade(&case, &outcome.report);
            let mut record = None;
            if status != CaseStatus::Pass
                && let Some(store) = &store
                && let (Some(module), Some((trail, inputs))) = (&outcome.module, &outcome.run)
            {
                let path = crate::record::write(
                    store,
                    crate::record::RecordParts {
                        module,
                        language: prepared.language,
                        policy: &req_policy,
                        inputs,
                        report: &outcome.report,
                        trail,
                        engine: engine.identity(),
                    },
                )?;
                record = Some(path.display().to_string());
                outcome.report.record = record.clone();
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
