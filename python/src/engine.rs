//! `Engine` and `Program`: the Python faces of [`corral::Engine`] and [`job::Program`], and
//! the jobs they run (always through [`job::run`], [`eval::run_cases`],
//! [`humaneval::evaluate`] and [`corral::replay::replay`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use corral::compile::{Language, Source};
use corral::eval::compare::Compare;
use corral::eval::humaneval::{self, Problem, Sample};
use corral::eval::{self, Case, EvalOptions};
use corral::job::{self, Invocation, Recording};
use corral::record::RecordStore;
use corral::replay::{ReplayError, ReplayOptions};
use corral::{EngineConfig, Isolation, RunReport, Verdict, WorkerConfig};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

use crate::inputs::{self, InputArgs};
use crate::results::{CaseResult, EvalResult, HumanEvalResult, ReplayResult, Report};
use crate::{convert, errors, runtime};

/// Creates every engine of the package: the one place that decides how engines are made.
/// `workers`: run guests in that many worker processes (the second wall, `Isolation::Workers`),
/// started from `worker_program` (the `corral` command the wheel carries); else in this
/// process.
fn new_engine(
    cache_dir: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    jobs: usize,
    workers: Option<(usize, PathBuf)>,
) -> Result<corral::Engine, corral::Error> {
    let isolation = match workers {
        Some((workers, program)) => Isolation::Workers(WorkerConfig {
            program,
            workers: workers.max(1),
            ..WorkerConfig::default()
        }),
        None => Isolation::InProcess,
    };
    let mut config = EngineConfig {
        // Slots for twice as many sandboxes as run at once, as `corral eval` has: runs
        // beyond that wait for a slot (back-pressure for thousands of async runs).
        pool: Some(u32::try_from(jobs.saturating_mul(2)).unwrap_or(64)),
        isolation,
        ..EngineConfig::from_env()
    };
    if let Some(d) = cache_dir {
        config.cache_dir = Some(d);
    }
    if let Some(t) = temp_dir {
        config.temp_root = t;
    }
    let engine = corral::Engine::new(config)?;
    crate::signals::capture();
    Ok(engine)
}

/// Why a job produced no result: a library error (by kind) or a refused record.
#[derive(Debug)]
pub(crate) enum Fail {
    Corral(corral::Error),
    Replay(ReplayError),
}

impl From<corral::Error> for Fail {
    fn from(e: corral::Error) -> Fail {
        Fail::Corral(e)
    }
}

impl Fail {
    fn into_pyerr(self) -> PyErr {
        match self {
            Fail::Corral(e) => errors::from_corral(e),
            Fail::Replay(ReplayError::Refused(m)) => errors::record(m),
            Fail::Replay(e) => errors::host(e.to_string()),
        }
    }
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> Result<T, Fail> {
    r.map_err(|e| Fail::Corral(corral::Error::host(format!("a corral task failed: {e}"))))
}

/// Runs `work` with the GIL released and converts its result: on the shared runtime
/// (`many`: work that runs guests concurrently, like eval), or on this thread alone.
fn blocking<T: Send>(
    py: Python<'_>,
    many: bool,
    work: impl Future<Output = Result<T, Fail>> + Send,
) -> PyResult<T> {
    crate::signals::guard();
    if many {
        let rt = runtime()?;
        py.detach(|| rt.block_on(work)).map_err(Fail::into_pyerr)
    } else {
        py.detach(|| crate::block_on_here(work))?
            .map_err(Fail::into_pyerr)
    }
}

/// Runs `work` on the runtime and returns an `asyncio` future of the current event loop
/// that `wrap(result)` resolves (or the matching exception rejects).
fn future<'py, T: Send + 'static>(
    py: Python<'py>,
    work: impl Future<Output = Result<T, Fail>> + Send + 'static,
    wrap: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let resolve = RESOLVE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("corral._aio")?.getattr("resolve")?.unbind())
        })?
        .clone_ref(py);
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let fut = event_loop.call_method0("create_future")?;
    let (event_loop, target) = (event_loop.unbind(), fut.clone().unbind());
    let rt = runtime()?;
    let handle = rt.spawn(async move {
        crate::signals::guard();
        work.await
    });
    rt.spawn(async move {
        let out = joined(handle.await).and_then(|r| r);
        // The runtime's workers never wait for the GIL: the result goes to the thread that
        // hands results to event loops.
        crate::complete(Box::new(move |py: Python<'_>| {
            let (ok, value) = match out.map_err(Fail::into_pyerr).and_then(|t| wrap(py, t)) {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            // A closed loop has nobody waiting: nothing to tell.
            let _ =
                event_loop.call_method1(py, "call_soon_threadsafe", (resolve, target, ok, value));
        }));
    });
    Ok(fut)
}

/// A program: a source ready to compile, or a prepared [`job::Program`].
enum Target {
    Ready(Arc<job::Program>),
    Source(Source),
}

impl Target {
    /// The prepared program (compiling and admitting a source now: call off the runtime's
    /// workers).
    fn prepare(
        self,
        engine: &corral::Engine,
        policy: &corral::Policy,
    ) -> Result<Arc<job::Program>, Fail> {
        match self {
            Target::Ready(p) => Ok(p),
            Target::Source(s) => Ok(Arc::new(job::Program::prepare(engine, &s, policy)?)),
        }
    }
}

/// One `run`: program, policy, inputs, and where its record goes.
struct RunJob {
    engine: corral::Engine,
    target: Target,
    policy: Arc<corral::Policy>,
    inputs: inputs::Inputs,
    store: Option<RecordStore>,
}

impl RunJob {
    /// Runs through the job stage. An invalid invocation (an `invalid_input` verdict) is
    /// the caller's error, raised as one; every other verdict is the report.
    async fn run(self, program: Arc<job::Program>) -> Result<RunReport, Fail> {
        let recording = if self.store.is_some() {
            Recording::On
        } else {
            Recording::Off
        };
        let mut outcome = job::run(
            &self.engine,
            &program,
            &self.policy,
            &self.inputs.invocation,
            recording,
        )
        .await?;
        drop(self.inputs.staged);
        if let Verdict::InvalidInput(m) = &outcome.report.verdict {
            return Err(corral::Error::invalid_input(m.clone()).into());
        }
        if let Some(store) = &self.store {
            outcome.write_record(&self.engine, store)?;
        }
        Ok(outcome.report)
    }

    /// Prepares (off the runtime's workers) and runs.
    async fn run_async(mut self) -> Result<RunReport, Fail> {
        let target = std::mem::replace(&mut self.target, Target::Source(empty_source()));
        let program = match target {
            Target::Ready(p) => p,
            source => {
                let (engine, policy) = (self.engine.clone(), self.policy.clone());
                joined(
                    tokio::task::spawn_blocking(move || source.prepare(&engine, &policy)).await,
                )??
            }
        };
        self.run(program).await
    }
}

fn empty_source() -> Source {
    Source::new(Vec::new(), "main.wasm", Language::Wasm)
}

/// `record=`: `None`/`False` → no record; `True` → the default record store; a path → a
/// store there.
fn store(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<RecordStore>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(b) = obj.extract::<bool>() {
        if !b {
            return Ok(None);
        }
        return RecordStore::default_location()
            .map(|p| Some(RecordStore::new(p)))
            .ok_or_else(|| {
                errors::invalid(
                    "no default record store (hint: set CORRAL_HOME or pass record=DIR)",
                )
            });
    }
    let path: PathBuf = obj
        .extract()
        .map_err(|_| errors::invalid("`record` is a bool or a directory path"))?;
    Ok(Some(RecordStore::new(path)))
}

/// The path of a record: a path, or a `Report` that has one.
fn record_path(obj: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    if let Ok(r) = obj.cast::<Report>() {
        return r
            .get()
            .inner
            .record
            .as_ref()
            .map(PathBuf::from)
            .ok_or_else(|| {
                errors::invalid("this report has no record (hint: run with record=True)")
            });
    }
    obj.extract::<PathBuf>()
        .map_err(|_| errors::invalid("a record is a path or a Report with a record"))
}

static NEXT_ENGINE: AtomicU64 = AtomicU64::new(1);

/// A corral engine: admit once, run many.
///
/// One engine holds the wasmtime engine, the module cache and a pool of instance slots; it
/// is safe to share between threads and coroutines. `policy` is the default policy of its
/// runs (a bundled name, a path, or a `Policy`; by default `strict`); `jobs` bounds how many
/// guests `eval`, `humaneval` and `run_async` run at once (by default the number of cores).
/// `isolation="workers"` runs guests in `jobs` locked-down worker processes (the second
/// wall: no new privileges, seccomp, Landlock, no network, rlimits) started from the
/// `corral` command the wheel carries; by default they run in this process.
#[pyclass(module = "corral", name = "Engine", frozen)]
#[derive(Debug)]
pub struct Engine {
    id: u64,
    inner: corral::Engine,
    policy: Arc<corral::Policy>,
    jobs: usize,
    /// `jobs` permits: how many `run_async` guests run at once (the rest wait in order, as
    /// `corral eval`'s cases do), so thousands of awaited runs do not contend for slots.
    running: Arc<tokio::sync::Semaphore>,
}

/// A compiled, admitted program bound to the engine that prepared it and the policy it was
/// admitted under. Prepare once with `Engine.prepare`, run many times.
#[pyclass(module = "corral", name = "Program", frozen)]
#[derive(Debug)]
pub struct Program {
    engine: u64,
    inner: Arc<job::Program>,
    policy: Arc<corral::Policy>,
}

#[pymethods]
impl Program {
    /// The display name (`main.py` for code given as text, else the file name).
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The language it came from.
    #[getter]
    fn language(&self) -> &'static str {
        self.inner.language().name()
    }

    /// Whether it compiled and was admitted (else running it returns `failure`).
    #[getter]
    fn ok(&self) -> bool {
        self.inner.failure().is_none()
    }

    /// The `compile_error` or `rejected` report, when it cannot run.
    #[getter]
    fn failure(&self) -> Option<Report> {
        self.inner.failure().map(|r| Report::new(r.clone()))
    }

    /// The hash of the module that runs (for interpreted languages: the runner).
    #[getter]
    fn module_hash(&self) -> Option<String> {
        self.inner.module().map(|m| m.hash().to_string())
    }

    /// The policy it was admitted under (its runs use it).
    #[getter]
    fn policy(&self) -> inputs::Policy {
        inputs::Policy {
            inner: self.policy.clone(),
        }
    }

    /// The report of `corral check`: `ok` with what admission learnt, or why not.
    fn check_report(&self) -> Report {
        Report::new(self.inner.check_report())
    }

    fn __repr__(&self) -> String {
        format!(
            "Program(name={:?}, language={:?}, ok={})",
            self.inner.name(),
            self.inner.language().name(),
            if self.inner.failure().is_none() {
                "True"
            } else {
                "False"
            }
        )
    }
}

impl Engine {
    /// The program and the policy it runs under.
    fn target(
        &self,
        program: &Bound<'_, PyAny>,
        language: Option<&str>,
        name: Option<&str>,
        policy: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Target, Arc<corral::Policy>)> {
        if let Ok(p) = program.cast::<Program>() {
            let p = p.get();
            if p.engine != self.id {
                return Err(errors::invalid(
                    "this program was prepared by another engine (hint: prepare it with this one)",
                ));
            }
            if policy.is_some_and(|x| !x.is_none()) || language.is_some() || name.is_some() {
                return Err(errors::invalid(
                    "a prepared program runs under the policy, language and name it was prepared with (hint: pass them to prepare)",
                ));
            }
            return Ok((Target::Ready(p.inner.clone()), p.policy.clone()));
        }
        let policy = inputs::policy(policy)?.unwrap_or_else(|| self.policy.clone());
        let source = inputs::source(program, language, name, policy.limits.module_bytes.0)?;
        Ok((Target::Source(source), policy))
    }

    fn run_job(
        &self,
        program: &Bound<'_, PyAny>,
        language: Option<&str>,
        name: Option<&str>,
        policy: Option<&Bound<'_, PyAny>>,
        args: InputArgs<'_, '_>,
        record: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RunJob> {
        let (target, policy) = self.target(program, language, name, policy)?;
        Ok(RunJob {
            engine: self.inner.clone(),
            target,
            policy,
            inputs: args.resolve(self.inner.work_dir())?,
            store: store(record)?,
        })
    }

    fn cases(
        &self,
        cases: &Bound<'_, PyAny>,
        policy: &Arc<corral::Policy>,
        seed: u64,
    ) -> PyResult<(Vec<Case>, Vec<tempfile::TempDir>)> {
        let mut out = Vec::new();
        let mut staged = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, case) in cases.try_iter()?.enumerate() {
            let case = case?;
            let d = case
                .cast::<PyDict>()
                .map_err(|_| errors::invalid(format!("case {}: a case is a dict", i + 1)))?;
            const KEYS: &[&str] = &[
                "name",
                "stdin",
                "args",
                "env",
                "input",
                "files",
                "expect_stdout",
                "expect_exit",
                "compare",
                "float_tolerance",
            ];
            for k in d.keys() {
                let k: String = k.extract()?;
                if !KEYS.contains(&k.as_str()) {
                    return Err(errors::invalid(format!(
                        "case {}: unknown key `{k}` (hint: {})",
                        i + 1,
                        KEYS.join(", ")
                    )));
                }
            }
            let name: String = match d.get_item("name")? {
                Some(n) if !n.is_none() => n.extract()?,
                _ => format!("case-{}", i + 1),
            };
            if !names.insert(name.clone()) {
                return Err(errors::invalid(format!(
                    "case `{name}`: duplicate case name"
                )));
            }
            let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
                Ok(d.get_item(k)?.filter(|v| !v.is_none()))
            };
            let stdin = get("stdin")?;
            let files = get("files")?;
            let input = get("input")?;
            let resolved = InputArgs {
                stdin: stdin.as_ref(),
                args: get("args")?.map(|a| a.extract()).transpose()?,
                env: get("env")?.map(|e| e.extract()).transpose()?,
                seed,
                files: files.as_ref(),
                input: input.as_ref(),
            }
            .resolve(self.inner.work_dir())
            .map_err(|e| prefix(&name, e))?;
            let tolerance: f64 = get("float_tolerance")?
                .map(|t| t.extract())
                .transpose()?
                .unwrap_or(1e-9);
            let compare = match get("compare")?
                .map(|c| c.extract::<String>())
                .transpose()?
                .as_deref()
            {
                None | Some("trim") => Compare::Trim,
                Some("exact") => Compare::Exact,
                Some("tokens") => Compare::Tokens { tolerance },
                Some(other) => {
                    return Err(errors::invalid(format!(
                        "case `{name}`: unknown comparison `{other}` (use exact, trim or tokens)"
                    )));
                }
            };
            let expect_stdout = match get("expect_stdout")? {
                Some(s) => Some(
                    String::from_utf8_lossy(&inputs::bytes_of(&s, "expect_stdout")?).into_owned(),
                ),
                None => None,
            };
            out.push(Case {
                name,
                invocation: resolved.invocation,
                expect_stdout,
                expect_exit: get("expect_exit")?
                    .map(|c| c.extract())
                    .transpose()?
                    .unwrap_or(0),
                compare,
                policy: policy.clone(),
            });
            staged.extend(resolved.staged);
        }
        Ok((out, staged))
    }

    fn humaneval_inputs(
        problems: &Bound<'_, PyAny>,
        samples: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Vec<Problem>, Option<Vec<Sample>>)> {
        let as_path = |o: &Bound<'_, PyAny>| -> PyResult<Option<PathBuf>> {
            if o.is_instance_of::<PyString>() || o.hasattr("__fspath__")? {
                Ok(Some(o.extract::<PathBuf>()?))
            } else {
                Ok(None)
            }
        };
        let problems = match as_path(problems)? {
            Some(p) => humaneval::load_problems(&p).map_err(errors::from_corral)?,
            None => {
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::new();
                for (i, p) in problems.try_iter()?.enumerate() {
                    let v = convert::from_py(&p?, &format!("problems[{i}]"))?;
                    let p: Problem = serde_json::from_value(v)
                        .map_err(|e| errors::invalid(format!("problems[{i}]: {e}")))?;
                    if !seen.insert(p.task_id.clone()) {
                        return Err(errors::invalid(format!(
                            "problems[{i}]: duplicate task_id `{}`",
                            p.task_id
                        )));
                    }
                    out.push(p);
                }
                out
            }
        };
        let samples = match samples.filter(|s| !s.is_none()) {
            None => None,
            Some(s) => Some(match as_path(s)? {
                Some(p) => humaneval::load_samples(&p).map_err(errors::from_corral)?,
                None => {
                    let mut out = Vec::new();
                    for (i, x) in s.try_iter()?.enumerate() {
                        let v = convert::from_py(&x?, &format!("samples[{i}]"))?;
                        let serde_json::Value::Object(fields) = v else {
                            return Err(errors::invalid(format!("samples[{i}]: not a dict")));
                        };
                        let get = |k: &str| {
                            fields
                                .get(k)
                                .and_then(serde_json::Value::as_str)
                                .map(str::to_string)
                                .ok_or_else(|| {
                                    errors::invalid(format!(
                                        "samples[{i}]: missing string field `{k}`"
                                    ))
                                })
                        };
                        out.push(Sample {
                            task_id: get("task_id")?,
                            completion: get("completion")?,
                            fields,
                        });
                    }
                    out
                }
            }),
        };
        Ok((problems, samples))
    }
}

fn prefix(name: &str, e: PyErr) -> PyErr {
    Python::attach(|py| {
        let msg = e.value(py).to_string();
        let ty = e.get_type(py);
        PyErr::from_type(ty, format!("case `{name}`: {msg}"))
    })
}

/// An eval run, ready to go.
struct EvalJob {
    engine: corral::Engine,
    target: Target,
    policy: Arc<corral::Policy>,
    cases: Vec<Case>,
    staged: Vec<tempfile::TempDir>,
    opts: EvalOptions,
}

impl EvalJob {
    async fn run(self, program: Arc<job::Program>) -> Result<EvalOutput, Fail> {
        let started = Instant::now();
        let results =
            eval::run_cases(&self.engine, program, self.cases, &self.opts, |_, _| {}).await?;
        drop(self.staged);
        if let Some(bad) = results
            .iter()
            .find(|r| matches!(r.report.verdict, Verdict::InvalidInput(_)))
        {
            return Err(corral::Error::invalid_input(format!(
                "case `{}`: {}",
                bad.name, bad.report.message
            ))
            .into());
        }
        Ok(EvalOutput {
            summary: eval::summarize(&results),
            results,
            wall_time: started.elapsed(),
        })
    }

    async fn run_async(mut self) -> Result<EvalOutput, Fail> {
        let target = std::mem::replace(&mut self.target, Target::Source(empty_source()));
        let (engine, policy) = (self.engine.clone(), self.policy.clone());
        let program =
            joined(tokio::task::spawn_blocking(move || target.prepare(&engine, &policy)).await)??;
        self.run(program).await
    }
}

struct EvalOutput {
    results: Vec<corral::eval::CaseResult>,
    summary: eval::Summary,
    wall_time: std::time::Duration,
}

fn eval_result(py: Python<'_>, out: EvalOutput) -> PyResult<EvalResult> {
    let cases = out
        .results
        .into_iter()
        .map(|r| Py::new(py, CaseResult { inner: r }))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(EvalResult {
        cases,
        summary: out.summary,
        wall_time: out.wall_time,
    })
}

/// A HumanEval run, ready to go.
struct HumanEvalJob {
    engine: corral::Engine,
    problems: Vec<Problem>,
    samples: Option<Vec<Sample>>,
    opts: humaneval::Options,
}

impl HumanEvalJob {
    async fn run(self) -> Result<HumanEvalResult, Fail> {
        let started = Instant::now();
        let inner = humaneval::evaluate(
            &self.engine,
            &self.problems,
            self.samples,
            &self.opts,
            |_, _| {},
        )
        .await?;
        Ok(HumanEvalResult {
            inner,
            wall_time: started.elapsed(),
        })
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (policy = None, *, jobs = None, isolation = "in-process", cache_dir = None, temp_dir = None))]
    fn new(
        py: Python<'_>,
        policy: Option<&Bound<'_, PyAny>>,
        jobs: Option<usize>,
        isolation: &str,
        cache_dir: Option<PathBuf>,
        temp_dir: Option<PathBuf>,
    ) -> PyResult<Engine> {
        let policy = inputs::policy(policy)?.unwrap_or_else(|| Arc::new(corral::Policy::strict()));
        let jobs = jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let workers = match isolation {
            "in-process" => None,
            "workers" => {
                let program: Option<PathBuf> = py
                    .import("corral._runners")?
                    .call_method0("worker_program")?
                    .extract()?;
                let program = program.ok_or_else(|| {
                    errors::host(
                        "this installation of corral carries no worker program (hint: build the wheel with the build backend, which bundles it)",
                    )
                })?;
                Some((jobs, program))
            }
            other => {
                return Err(errors::invalid(format!(
                    "unknown isolation `{other}` (use \"in-process\" or \"workers\")"
                )));
            }
        };
        let inner = py
            .detach(|| new_engine(cache_dir, temp_dir, jobs, workers))
            .map_err(errors::from_corral)?;
        // The language runners the wheel carries go into this engine's cache first.
        py.import("corral._runners")?
            .call_method1("install", (inner.config().cache_dir.clone(),))?;
        Ok(Engine {
            id: NEXT_ENGINE.fetch_add(1, Ordering::Relaxed),
            inner,
            policy,
            jobs,
            running: Arc::new(tokio::sync::Semaphore::new(jobs)),
        })
    }

    /// The default policy of this engine's runs.
    #[getter]
    fn policy(&self) -> inputs::Policy {
        inputs::Policy {
            inner: self.policy.clone(),
        }
    }

    /// How many guests `eval` and `humaneval` run at once.
    #[getter]
    fn jobs(&self) -> usize {
        self.jobs
    }

    /// Where compiled programs, runners and precompiled code are cached (or `None`).
    #[getter]
    fn cache_dir(&self) -> Option<PathBuf> {
        self.inner.config().cache_dir.clone()
    }

    /// Compiles (if needed) and admits a program once, to run it many times.
    #[pyo3(signature = (program, language = None, *, policy = None, name = None))]
    fn prepare(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        language: Option<&str>,
        policy: Option<&Bound<'_, PyAny>>,
        name: Option<&str>,
    ) -> PyResult<Program> {
        if program.cast::<Program>().is_ok() {
            return Err(errors::invalid("this program is prepared already"));
        }
        let (target, policy) = self.target(program, language, name, policy)?;
        let engine = self.inner.clone();
        let pol = policy.clone();
        let inner = py
            .detach(|| target.prepare(&engine, &pol))
            .map_err(Fail::into_pyerr)?;
        Ok(Program {
            engine: self.id,
            inner,
            policy,
        })
    }

    /// Runs a program once and returns its report (the GIL is released while it runs).
    #[pyo3(signature = (program, language = None, *, policy = None, stdin = None, args = None, env = None, seed = 0, files = None, input = None, record = None, name = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn run(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        language: Option<&str>,
        policy: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
        args: Option<Vec<String>>,
        env: Option<BTreeMap<String, String>>,
        seed: u64,
        files: Option<&Bound<'_, PyAny>>,
        input: Option<&Bound<'_, PyAny>>,
        record: Option<&Bound<'_, PyAny>>,
        name: Option<&str>,
    ) -> PyResult<Report> {
        let args = InputArgs {
            stdin,
            args,
            env,
            seed,
            files,
            input,
        };
        let mut job = self.run_job(program, language, name, policy, args, record)?;
        let target = std::mem::replace(&mut job.target, Target::Source(empty_source()));
        let report = blocking(py, false, async move {
            let program = target.prepare(&job.engine, &job.policy)?;
            job.run(program).await
        })?;
        Ok(Report::new(report))
    }

    /// As `run`, as a coroutine of the running event loop: the guest runs on corral's own
    /// threads, never on the loop.
    #[pyo3(signature = (program, language = None, *, policy = None, stdin = None, args = None, env = None, seed = 0, files = None, input = None, record = None, name = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn run_async<'py>(
        &self,
        py: Python<'py>,
        program: &Bound<'py, PyAny>,
        language: Option<&str>,
        policy: Option<&Bound<'py, PyAny>>,
        stdin: Option<&Bound<'py, PyAny>>,
        args: Option<Vec<String>>,
        env: Option<BTreeMap<String, String>>,
        seed: u64,
        files: Option<&Bound<'py, PyAny>>,
        input: Option<&Bound<'py, PyAny>>,
        record: Option<&Bound<'py, PyAny>>,
        name: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = InputArgs {
            stdin,
            args,
            env,
            seed,
            files,
            input,
        };
        let job = self.run_job(program, language, name, policy, args, record)?;
        let running = self.running.clone();
        let work = async move {
            let _permit = running.acquire_owned().await.map_err(|e| {
                Fail::Corral(corral::Error::host(format!("the engine is closed: {e}")))
            })?;
            job.run_async().await
        };
        future(
            py,
            work,
            |py, r| Ok(Py::new(py, Report::new(r))?.into_any()),
        )
    }

    /// Runs `cases` (dicts: `name`, `stdin`, `args`, `env`, `input`, `files`,
    /// `expect_stdout`, `expect_exit`, `compare`, `float_tolerance`) against one program
    /// prepared once, `jobs` at a time; per-case verdicts.
    #[pyo3(signature = (program, cases, language = None, *, policy = None, seed = 0, jobs = None, record = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn eval(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        cases: &Bound<'_, PyAny>,
        language: Option<&str>,
        policy: Option<&Bound<'_, PyAny>>,
        seed: u64,
        jobs: Option<usize>,
        record: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<EvalResult> {
        let mut job = self.eval_job(program, cases, language, policy, seed, jobs, record)?;
        let target = std::mem::replace(&mut job.target, Target::Source(empty_source()));
        let out = blocking(py, true, async move {
            let program = target.prepare(&job.engine, &job.policy)?;
            job.run(program).await
        })?;
        eval_result(py, out)
    }

    /// As `eval`, as a coroutine.
    #[pyo3(signature = (program, cases, language = None, *, policy = None, seed = 0, jobs = None, record = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn eval_async<'py>(
        &self,
        py: Python<'py>,
        program: &Bound<'py, PyAny>,
        cases: &Bound<'py, PyAny>,
        language: Option<&str>,
        policy: Option<&Bound<'py, PyAny>>,
        seed: u64,
        jobs: Option<usize>,
        record: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = self.eval_job(program, cases, language, policy, seed, jobs, record)?;
        future(py, job.run_async(), |py, out| {
            Ok(Py::new(py, eval_result(py, out)?)?.into_any())
        })
    }

    /// Grades HumanEval samples (or, without samples, the canonical solutions): `problems`
    /// and `samples` are JSON-lines paths (`.gz` too) or iterables of dicts. Returns the
    /// reference harness's result rows and pass@k.
    #[pyo3(signature = (problems, samples = None, *, k = vec![1, 10], language = "python", policy = None, jobs = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn humaneval(
        &self,
        py: Python<'_>,
        problems: &Bound<'_, PyAny>,
        samples: Option<&Bound<'_, PyAny>>,
        k: Vec<u64>,
        language: &str,
        policy: Option<&Bound<'_, PyAny>>,
        jobs: Option<usize>,
    ) -> PyResult<HumanEvalResult> {
        let job = self.humaneval_job(problems, samples, k, language, policy, jobs)?;
        blocking(py, true, job.run())
    }

    /// As `humaneval`, as a coroutine.
    #[pyo3(signature = (problems, samples = None, *, k = vec![1, 10], language = "python", policy = None, jobs = None))]
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn humaneval_async<'py>(
        &self,
        py: Python<'py>,
        problems: &Bound<'py, PyAny>,
        samples: Option<&Bound<'py, PyAny>>,
        k: Vec<u64>,
        language: &str,
        policy: Option<&Bound<'py, PyAny>>,
        jobs: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let job = self.humaneval_job(problems, samples, k, language, policy, jobs)?;
        future(py, job.run(), |py, r| Ok(Py::new(py, r)?.into_any()))
    }

    /// Re-executes a recorded run (a record or bundle path, or a `Report` with a record) and
    /// verifies it bit for bit. A record that is invalid, altered or asks for more than this
    /// machine allows raises `RecordError`; a run that differs is a result with
    /// `identical == False`.
    #[pyo3(signature = (record, *, best_effort = false))]
    fn replay(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        best_effort: bool,
    ) -> PyResult<ReplayResult> {
        let path = record_path(record)?;
        let engine = self.inner.clone();
        let opts = ReplayOptions {
            best_effort,
            ..ReplayOptions::default()
        };
        let inner = blocking(py, false, async move {
            corral::replay::replay(&engine, &path, &opts)
                .await
                .map_err(Fail::Replay)
        })?;
        Ok(ReplayResult { inner })
    }

    /// Removes the engine's temporary files now (they are also removed when it is garbage
    /// collected). Runs after `close()` fail.
    fn close(&self) {
        self.inner.remove_work_dir();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    /// Where guests run: `"in-process"` or `"workers"`.
    #[getter]
    fn isolation(&self) -> &'static str {
        match self.inner.config().isolation {
            Isolation::InProcess => "in-process",
            _ => "workers",
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(policy={:?}, jobs={}, isolation={:?})",
            self.policy.name(),
            self.jobs,
            self.isolation()
        )
    }

    /// For the overhead benchmark: runs `program` `n` times from Rust (the library's
    /// `job::run` in a loop, no Python in between) and returns the seconds it took.
    fn _bench_rust(&self, py: Python<'_>, program: &Program, n: usize) -> PyResult<f64> {
        let (engine, prog, policy) = (
            self.inner.clone(),
            program.inner.clone(),
            program.policy.clone(),
        );
        blocking(py, false, async move {
            let started = Instant::now();
            for _ in 0..n {
                job::run(
                    &engine,
                    &prog,
                    &policy,
                    &Invocation::default(),
                    Recording::Off,
                )
                .await?;
            }
            Ok(started.elapsed().as_secs_f64())
        })
    }
}

impl Engine {
    #[expect(clippy::too_many_arguments, reason = "the Python signature")]
    fn eval_job(
        &self,
        program: &Bound<'_, PyAny>,
        cases: &Bound<'_, PyAny>,
        language: Option<&str>,
        policy: Option<&Bound<'_, PyAny>>,
        seed: u64,
        jobs: Option<usize>,
        record: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<EvalJob> {
        let (target, policy) = self.target(program, language, None, policy)?;
        let (cases, staged) = self.cases(cases, &policy, seed)?;
        Ok(EvalJob {
            engine: self.inner.clone(),
            target,
            policy,
            cases,
            staged,
            opts: EvalOptions {
                jobs: jobs.unwrap_or(self.jobs).max(1),
                store: store(record)?,
            },
        })
    }

    fn humaneval_job(
        &self,
        problems: &Bound<'_, PyAny>,
        samples: Option<&Bound<'_, PyAny>>,
        k: Vec<u64>,
        language: &str,
        policy: Option<&Bound<'_, PyAny>>,
        jobs: Option<usize>,
    ) -> PyResult<HumanEvalJob> {
        let language = match inputs::language(language)? {
            l @ (Language::Python | Language::Rust) => l,
            _ => {
                return Err(errors::invalid(
                    "HumanEval problems are in Python or Rust (hint: language=\"python\")",
                ));
            }
        };
        let (problems, samples) = Engine::humaneval_inputs(problems, samples)?;
        let policy = inputs::policy(policy)?.unwrap_or_else(|| Arc::new(humaneval::policy()));
        Ok(HumanEvalJob {
            engine: self.inner.clone(),
            problems,
            samples,
            opts: humaneval::Options {
                language,
                policy,
                ks: k,
                jobs: jobs.unwrap_or(self.jobs).max(1),
            },
        })
    }
}
