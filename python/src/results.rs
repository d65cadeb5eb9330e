//! What runs give back to Python: `Report` (the JSON report's fields as attributes),
//! per-case eval results, HumanEval results, replay results.

use std::collections::BTreeMap;

use corral::RunReport;
use corral::eval::humaneval::{self, Evaluation};
use corral::eval::{CaseResult as LibCaseResult, CaseStatus, Summary};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use serde_json::Value;

use crate::convert;

/// The report of one run: how it ended (`verdict`), what it printed, what it used. Every
/// key of the JSON report (`corral run --json`) is an attribute; `to_dict()` gives the JSON
/// object itself. A guest's misbehaviour (a trap, a limit, a compile error, …) is a report,
/// never an exception.
#[pyclass(module = "corral", name = "Report", frozen)]
#[derive(Debug)]
pub struct Report {
    pub(crate) inner: RunReport,
}

impl Report {
    pub(crate) fn new(inner: RunReport) -> Report {
        Report { inner }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[pymethods]
impl Report {
    /// `ok`, `exit`, `trap`, `limit`, `denied`, `rejected`, `compile_error`,
    /// `invalid_input` or `host_error`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.inner.verdict.kind()
    }

    /// Whether the guest completed with exit code 0.
    #[getter]
    fn ok(&self) -> bool {
        self.inner.verdict == corral::Verdict::Ok
    }

    /// The guest's exit code when it completed (`ok` → 0, `exit` → non-zero), else `None`.
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.inner.verdict.exit_code()
    }

    /// With `verdict == "limit"`: which limit (`fuel`, `wall_time`, `memory`, …).
    #[getter]
    fn limit(&self) -> Option<&'static str> {
        self.inner.verdict.limit().map(|l| l.as_str())
    }

    /// With `verdict == "trap"`: which trap (`unreachable`, `stack_overflow`, …).
    #[getter]
    fn trap(&self) -> Option<&'static str> {
        self.inner.verdict.trap().map(|t| t.as_str())
    }

    /// One human sentence saying how the run ended.
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }

    /// Captured stdout (lossy UTF-8; at most the policy's cap).
    #[getter]
    fn stdout(&self) -> String {
        lossy(&self.inner.stdout)
    }

    /// Captured stderr (lossy UTF-8; at most the policy's cap).
    #[getter]
    fn stderr(&self) -> String {
        lossy(&self.inner.stderr)
    }

    /// Captured stdout, as the bytes the guest wrote.
    #[getter]
    fn stdout_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.stdout)
    }

    /// Captured stderr, as the bytes the guest wrote.
    #[getter]
    fn stderr_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.stderr)
    }

    /// The guest tried to write past the stdout cap.
    #[getter]
    fn stdout_truncated(&self) -> bool {
        self.inner.stdout_truncated
    }

    /// The guest tried to write past the stderr cap.
    #[getter]
    fn stderr_truncated(&self) -> bool {
        self.inner.stderr_truncated
    }

    /// Deterministic CPU units used.
    #[getter]
    fn fuel_consumed(&self) -> u64 {
        self.inner.fuel_consumed
    }

    /// `blake3:` + hex of the wasm that ran (for interpreted languages: the runner).
    #[getter]
    fn module_hash(&self) -> Option<String> {
        self.inner.module_hash.map(|h| h.to_string())
    }

    /// Path of the run record, when one was written (`record=`).
    #[getter]
    fn record(&self) -> Option<&str> {
        self.inner.record.as_deref()
    }

    /// Host calls: `{"total", "denials", "per_function": {name: count}}`.
    #[getter]
    fn calls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(&self.inner.calls).unwrap_or(Value::Null);
        convert::to_py(py, &v)
    }

    /// False only for `limit = wall_time` and `host_error`.
    #[getter]
    fn deterministic(&self) -> bool {
        self.inner.deterministic()
    }

    /// Compiler output, for `compile_error` (host paths replaced).
    #[getter]
    fn diagnostics(&self) -> Option<&str> {
        self.inner.diagnostics.as_deref()
    }

    /// Chained blake3 over the gate's call trail.
    #[getter]
    fn trail_hash(&self) -> Option<&str> {
        self.inner.trail_hash.as_deref()
    }

    /// What the guest reported through the guest SDK (`corral_v1`).
    #[getter]
    fn result(&self) -> Option<&str> {
        self.inner.result.as_deref()
    }

    /// Metrics the guest reported through the guest SDK.
    #[getter]
    fn metrics(&self) -> BTreeMap<String, f64> {
        self.inner.metrics.clone()
    }

    /// Which walls were up: `{"process": bool, "no_new_privs", "seccomp", "netns",
    /// "rlimits": bool, "landlock": int}` (where it ran, not part of the deterministic
    /// report).
    #[getter]
    fn isolation<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(self.inner.isolation).unwrap_or(Value::Null);
        convert::to_py(py, &v)
    }

    /// Wall-clock duration of the run in milliseconds (not deterministic).
    #[getter]
    fn wall_time_ms(&self) -> f64 {
        self.inner.wall_time.as_secs_f64() * 1000.0
    }

    /// The JSON report as a dict (the object `corral run --json` prints).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.to_json())
    }

    /// The JSON report as text (keys sorted, as `corral run --json` prints it).
    fn to_json(&self) -> String {
        self.inner.to_json().to_string()
    }

    /// The deterministic part of the report (without `record` and `wall_time_ms`), for
    /// comparing runs.
    fn deterministic_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.deterministic_json())
    }

    fn __repr__(&self) -> String {
        let mut s = format!("Report(verdict={:?}", self.inner.verdict.kind());
        if let Some(c) = self.inner.verdict.exit_code() {
            s.push_str(&format!(", exit_code={c}"));
        }
        if let Some(l) = self.inner.verdict.limit() {
            s.push_str(&format!(", limit={:?}", l.as_str()));
        }
        if let Some(t) = self.inner.verdict.trap() {
            s.push_str(&format!(", trap={:?}", t.as_str()));
        }
        let out = lossy(&self.inner.stdout);
        let short: String = out.chars().take(60).collect();
        s.push_str(&format!(
            ", stdout={short:?}{}, fuel_consumed={})",
            if short.len() < out.len() { "…" } else { "" },
            self.inner.fuel_consumed
        ));
        s
    }
}

/// One case of `Engine.eval`: its name, status (`pass`, `fail`, or the verdict such as
/// `limit (fuel)`), the reason of a failure (a diff), and the run's report.
#[pyclass(module = "corral", name = "CaseResult", frozen)]
#[derive(Debug)]
pub struct CaseResult {
    pub(crate) inner: LibCaseResult,
}

#[pymethods]
impl CaseResult {
    /// The case's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// `pass`, `fail`, or the verdict with its kind (e.g. `limit (fuel)`).
    #[getter]
    fn status(&self) -> String {
        self.inner.status.label()
    }

    /// Whether the case passed.
    #[getter]
    fn passed(&self) -> bool {
        self.inner.status == CaseStatus::Pass
    }

    /// Why a `fail` case failed (a diff of stdout or the exit code), else `None`.
    #[getter]
    fn reason(&self) -> Option<&str> {
        match &self.inner.status {
            CaseStatus::Fail { reason } => Some(reason),
            _ => None,
        }
    }

    /// The run's report.
    #[getter]
    fn report(&self) -> Report {
        Report::new(self.inner.report.clone())
    }

    /// The run record of a case that did not pass, when `record=` was given.
    #[getter]
    fn record(&self) -> Option<&str> {
        self.inner.record.as_deref()
    }

    /// The per-case object of `corral eval --json`: the report plus `case`, `status`,
    /// `reason`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.to_json())
    }

    fn __repr__(&self) -> String {
        format!(
            "CaseResult(name={:?}, status={:?})",
            self.inner.name,
            self.inner.status.label()
        )
    }
}

/// The results of `Engine.eval`: a sequence of `CaseResult` in case order, plus totals.
#[pyclass(module = "corral", name = "EvalResult", frozen, sequence)]
#[derive(Debug)]
pub struct EvalResult {
    pub(crate) cases: Vec<Py<CaseResult>>,
    pub(crate) summary: Summary,
    pub(crate) wall_time: std::time::Duration,
}

#[pymethods]
impl EvalResult {
    /// The cases, in order.
    #[getter]
    fn cases<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.cases.iter().map(|c| c.clone_ref(py)))
    }

    /// Cases that passed.
    #[getter]
    fn passed(&self) -> usize {
        self.summary.passed
    }

    /// Cases that did not.
    #[getter]
    fn failed(&self) -> usize {
        self.summary.failed
    }

    /// Count per status label.
    #[getter]
    fn by_status(&self) -> BTreeMap<String, usize> {
        self.summary.by_status.clone()
    }

    /// The summary object that ends `corral eval --json`.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.summary.to_json(self.cases.len(), self.wall_time))
    }

    fn __len__(&self) -> usize {
        self.cases.len()
    }

    fn __getitem__(&self, py: Python<'_>, i: isize) -> PyResult<Py<CaseResult>> {
        let n = self.cases.len() as isize;
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "case index out of range",
            ));
        }
        Ok(self.cases[j as usize].clone_ref(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "EvalResult(cases={}, passed={}, failed={})",
            self.cases.len(),
            self.summary.passed,
            self.summary.failed
        )
    }
}

fn pass_at_k_dict(m: &BTreeMap<u64, f64>) -> BTreeMap<String, f64> {
    m.iter().map(|(k, v)| (format!("pass@{k}"), *v)).collect()
}

/// A HumanEval evaluation: the reference harness's result rows (each sample's fields plus
/// `result` and `passed`, in sample order) and pass@k.
#[pyclass(module = "corral", name = "HumanEvalResult", frozen)]
#[derive(Debug)]
pub struct HumanEvalResult {
    pub(crate) inner: Evaluation,
    pub(crate) wall_time: std::time::Duration,
}

#[pymethods]
impl HumanEvalResult {
    /// The result rows, as the reference harness writes them (one dict per sample).
    #[getter]
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = self
            .inner
            .rows
            .iter()
            .map(|r| convert::to_py(py, &r.to_json()))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, rows)
    }

    /// `{"pass@1": …, "pass@10": …}` for each k every task has enough samples for.
    #[getter]
    fn pass_at_k(&self) -> BTreeMap<String, f64> {
        pass_at_k_dict(&self.inner.pass_at_k)
    }

    /// Programs that passed.
    #[getter]
    fn passed(&self) -> usize {
        self.inner.passed()
    }

    /// Programs graded.
    #[getter]
    fn programs(&self) -> usize {
        self.inner.rows.len()
    }

    /// Tasks graded.
    #[getter]
    fn tasks(&self) -> usize {
        self.inner.tasks.len()
    }

    /// The results file (`SAMPLES_results.jsonl`), byte for byte as `corral humaneval`
    /// writes it.
    fn results_jsonl(&self) -> String {
        self.inner.results_jsonl()
    }

    /// The summary object of `corral humaneval --json`.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.summary_json(self.wall_time))
    }

    fn __repr__(&self) -> String {
        format!(
            "HumanEvalResult(programs={}, passed={}, pass_at_k={:?})",
            self.inner.rows.len(),
            self.inner.passed(),
            pass_at_k_dict(&self.inner.pass_at_k)
        )
    }
}

/// The result of a replay: the replayed run's report, whether it was identical to the
/// record, and where it first diverged if not.
#[pyclass(module = "corral", name = "ReplayResult", frozen)]
#[derive(Debug)]
pub struct ReplayResult {
    pub(crate) inner: corral::replay::ReplayReport,
}

#[pymethods]
impl ReplayResult {
    /// Whether every compared field matched the record.
    #[getter]
    fn identical(&self) -> bool {
        self.inner.identical
    }

    /// The replayed run's report.
    #[getter]
    fn report(&self) -> Report {
        Report::new(self.inner.report.clone())
    }

    /// Where the replay first differed (the `divergence` object of `corral replay --json`),
    /// or `None`.
    #[getter]
    fn divergence<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.divergence {
            Some(d) => convert::to_py(py, &d.to_json()),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Remarks (best-effort differences, what could not be promised).
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.inner.notes.clone()
    }

    /// The verdict the record says the run had.
    #[getter]
    fn recorded_verdict(&self) -> String {
        self.inner.record.outcome.verdict.clone()
    }

    /// The object of `corral replay --json`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.inner.to_json())
    }

    fn __repr__(&self) -> String {
        format!(
            "ReplayResult(identical={}, verdict={:?})",
            if self.inner.identical {
                "True"
            } else {
                "False"
            },
            self.inner.report.verdict.kind()
        )
    }
}

/// pass@k (the unbiased estimator of the reference harness) from result rows: each row a
/// dict with `task_id` and `passed`. Only the ks every task has enough samples for appear.
#[pyfunction]
#[pyo3(signature = (rows, k = vec![1, 10]))]
pub fn pass_at_k(rows: &Bound<'_, PyAny>, k: Vec<u64>) -> PyResult<BTreeMap<String, f64>> {
    let mut tasks: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in rows.try_iter()? {
        let row = row?;
        let row = row
            .cast::<PyDict>()
            .map_err(|_| crate::errors::invalid("each row must be a dict"))?;
        let task: String = row
            .get_item("task_id")?
            .ok_or_else(|| crate::errors::invalid("a row without `task_id`"))?
            .extract()?;
        let passed: bool = row
            .get_item("passed")?
            .ok_or_else(|| crate::errors::invalid("a row without `passed`"))?
            .extract()?;
        let e = tasks.entry(task).or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::from(passed);
    }
    Ok(pass_at_k_dict(&humaneval::pass_at_ks(&tasks, &k)))
}
