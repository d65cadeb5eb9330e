//! The job stage: source in, report out.
//!
//! compile → admit → sandbox → run → verdict → record, written once. `corral run` and
//! `check`, `eval`, `humaneval`, `replay`, the benchmarks and every face (the HTTP service,
//! MCP, the Python package) call it; nothing else builds a sandbox.
//!
//! - A [`Source`] (bytes, a display name, a [`Language`]) becomes a [`Program`] once:
//!   compiled, admitted under a policy, and knowing the `argv[0]`, leading arguments and
//!   environment its runner needs (interpreted languages run inside a runner that gets the
//!   program text as `argv[1]`).
//! - An [`Invocation`] carries the six inputs of one run: arguments, environment, stdin,
//!   directory grants, seed, and the guest-SDK case input.
//! - [`run`] runs a program once for an invocation and returns an [`Outcome`]: the report
//!   (every failure that is not the host's own is a verdict, mapped here and nowhere else)
//!   and, when the guest ran, what [`Outcome::write_record`] needs to write its run record.
//!
//! # Example
//!
//! ```
//! use corral::job::{self, Invocation, Program, Recording};
//! use corral::compile::{Language, Source};
//! use corral::{Engine, EngineConfig, Policy, Verdict};
//!
//! let wat = r#"(module
//!     (import "wasi_snapshot_preview1" "fd_write"
//!       (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 16) "hello\n")
//!     (func (export "_start")
//!       (i32.store (i32.const 0) (i32.const 16))
//!       (i32.store (i32.const 4) (i32.const 6))
//!       (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;
//! let engine = Engine::new(EngineConfig::default())?;
//! let policy = Policy::strict();
//! let source = Source::new(wat.as_bytes().to_vec(), "hello.wat", Language::Wat);
//! let program = Program::prepare(&engine, &source, &policy)?; // once
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! let outcome = rt.block_on(job::run(&engine, &program, &policy, &Invocation::default(), Recording::Off))?; // many times
//! assert_eq!(outcome.report.verdict, Verdict::Ok);
//! assert_eq!(outcome.report.stdout, b"hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(test)]
mod tests;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compile::runner::RunnerKind;
use crate::compile::{self, Compiled, Language, Source};
use crate::engine::{Engine, GuestModule};
use crate::error::{Error, ErrorKind};
use crate::inputs::RunInputs;
pub use crate::inputs::{Invocation, Recording};
use crate::policy::Policy;
use crate::record::trail::TrailSnapshot;
use crate::record::{self, RecordStore};
use crate::report::{ModuleHash, RunReport};
use crate::verdict::Verdict;
use crate::worker::protocol::Finished;
pub use worker::serve_worker;

/// How a source becomes wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Build {
    /// The program itself (`main`, or the runner for interpreted languages).
    #[default]
    Program,
    /// A Rust file compiled as a test harness (`rustc --test`): it runs every `#[test]` and
    /// exits non-zero if any fails (HumanEval-Rust).
    RustTests,
}

/// A compiled, admitted program that knows how its runner is invoked; or why it is not
/// runnable (a compile error or a rejection, as a report). Prepare once, run many times.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Program {
    name: String,
    language: Language,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Ready(Box<Ready>),
    Failed(Box<RunReport>),
}

#[derive(Debug, Clone)]
struct Ready {
    module: GuestModule,
    argv0: String,
    /// For runners: the program text (`argv[1]`).
    lead_args: Vec<String>,
    /// Environment the runner needs (over the policy's, under the invocation's).
    env: Vec<(String, String)>,
    /// The runner the program runs on (interpreted languages).
    runner: Option<RunnerKind>,
    /// For Python: the compile check that runs before the program's first run.
    check: Option<Arc<CompileCheck>>,
    /// The runner's budget factor (1 for compiled programs): see [`budget`].
    budget_factor: u64,
    /// Compiler warnings every report of the program carries in `diagnostics`.
    warnings: Option<String>,
}

/// The Python runner's compile check of one program (`argv = ["--corral-compile", NAME,
/// SOURCE]`: the runner compiles the text exactly as a run does and executes none of it).
///
/// The check is itself a sandboxed run of the runner (in a worker process when the engine
/// has them), under [`check_policy`]: its outcome is a function of the program text and of
/// that policy's limits, so results are remembered per limits and the same program under
/// the same policy always gets the same verdict, whatever ran before.
#[derive(Debug)]
struct CompileCheck {
    /// At most [`CHECK_MEMO`] (limits, result) pairs.
    memo: std::sync::Mutex<Vec<(CheckKey, Checked)>>,
}

/// The limits a check ran under: fuel, memory.
type CheckKey = (u64, u64);

/// Results remembered per program (one per distinct policy limits it ran under).
const CHECK_MEMO: usize = 8;

/// `argv[0]` of the Python runner's compile check.
const CHECK_ARGV0: &str = "--corral-compile";

/// What a compile check decided.
#[derive(Debug, Clone)]
enum Checked {
    /// Run the program: it compiles, or the check could not tell (the run reports that).
    Run,
    /// The program does not compile: this `compile_error` report is every run's outcome.
    Failed(Box<RunReport>),
}

/// `` `NAME` failed to compile: FIRST ERROR `` (the line of the diagnostics that names the
/// error, see [`compile_error_line`]).
fn compile_message(name: &str, language: Language, diag: &str) -> String {
    let first = compile_error_line(language, diag);
    if first.is_empty() {
        format!("`{name}` failed to compile")
    } else {
        format!("`{name}` failed to compile: {first}")
    }
}

/// The most telling line of compiler diagnostics: the first that says `error` (or is the
/// compiler's own note), else the first non-empty one; at most 200 characters.
pub fn first_error_line(diag: &str) -> String {
    let first = diag
        .lines()
        .map(str::trim)
        .find(|l| l.contains("error") || l.starts_with("the compiler"))
        .or_else(|| diag.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    first.chars().take(200).collect()
}

/// The line of `language`'s compiler diagnostics that names the error: for Python (a
/// `SyntaxError` as the interpreter prints it: location, source line, caret, then
/// `SyntaxError: …`) the last non-empty line; for the compiled languages
/// [`first_error_line`]. At most 200 characters.
pub fn compile_error_line(language: Language, diag: &str) -> String {
    if language == Language::Python {
        let last = diag.lines().map(str::trim).rfind(|l| !l.is_empty());
        return last.unwrap_or("").chars().take(200).collect();
    }
    first_error_line(diag)
}

impl Program {
    /// Compiles (if needed) and admits `source` under `policy`.
    ///
    /// # Errors
    ///
    /// Host failures only (no compiler installed, a runner cannot be built). A source that
    /// does not compile or a module that is rejected is a program whose
    /// [`Program::failure`] says why; running it returns that report.
    pub fn prepare(engine: &Engine, source: &Source, policy: &Policy) -> Result<Program, Error> {
        Program::build(engine, source, policy, Build::Program)
    }

    /// As [`Program::prepare`], choosing how the source becomes wasm.
    ///
    /// # Errors
    ///
    /// As [`Program::prepare`].
    pub fn build(
        engine: &Engine,
        source: &Source,
        policy: &Policy,
        build: Build,
    ) -> Result<Program, Error> {
        let cfg = engine.config();
        let cache = cfg.cache_dir.as_deref();
        let compiled = match build {
            Build::Program => compile::compile(source, engine.work_dir(), cache)?,
            Build::RustTests => compile::compile_rust_tests(source, engine.work_dir(), cache)?,
        };
        let failed = |report: RunReport| Program {
            name: source.name.clone(),
            language: source.language,
            state: State::Failed(Box::new(report)),
        };
        let rejected = |rejection: crate::admit::Rejection, hash: ModuleHash| {
            failed(rejected(rejection, hash))
        };
        let ready = match compiled {
            Compiled::Wasm(w) => match admit(engine, Wasm::Bytes(&w), ModuleHash::of(&w), policy) {
                Ok(module) => Ready {
                    module,
                    argv0: "main".into(),
                    lead_args: Vec::new(),
                    env: Vec::new(),
                    runner: None,
                    check: None,
                    budget_factor: 1,
                    warnings: None,
                },
                Err(r) => return Ok(rejected(r, ModuleHash::of(&w))),
            },
            Compiled::Warned { wasm, warnings } => {
                match admit(engine, Wasm::Bytes(&wasm), ModuleHash::of(&wasm), policy) {
                    Ok(module) => Ready {
                        module,
                        argv0: "main".into(),
                        lead_args: Vec::new(),
                        env: Vec::new(),
                        runner: None,
                        check: None,
                        budget_factor: 1,
                        warnings: Some(warnings),
                    },
                    Err(r) => return Ok(rejected(r, ModuleHash::of(&wasm))),
                }
            }
            Compiled::Runner {
                runner,
                source: text,
            } => {
                match admit(engine, Wasm::File(&runner.wasm), runner.hash, policy) {
                    // Interpreters get the display name as argv[0] and the program as argv[1].
                    Ok(module) => Ready {
                        module,
                        argv0: runner_argv0(&source.name),
                        lead_args: vec![text],
                        env: runner
                            .kind
                            .guest_env()
                            .iter()
                            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                            .collect(),
                        runner: Some(runner.kind),
                        check: (runner.kind == RunnerKind::Python).then(|| {
                            Arc::new(CompileCheck {
                                memo: std::sync::Mutex::new(Vec::new()),
                            })
                        }),
                        budget_factor: runner.kind.budget_factor(),
                        warnings: None,
                    },
                    Err(r) => return Ok(rejected(r, runner.hash)),
                }
            }
            Compiled::Error(diag) => {
                let mut report = RunReport::without_run(
                    Verdict::CompileError(diag.clone()),
                    compile_message(&source.name, source.language, &diag),
                );
                report.diagnostics = Some(diag);
                return Ok(failed(report));
            }
        };
        Ok(Program {
            name: source.name.clone(),
            language: source.language,
            state: State::Ready(Box::new(ready)),
        })
    }

    /// A program from a module admitted elsewhere (a record's module, a benchmark guest),
    /// run with `argv0` and no runner arguments.
    pub fn from_module(
        module: GuestModule,
        language: Language,
        argv0: impl Into<String>,
    ) -> Program {
        let argv0 = argv0.into();
        Program {
            name: argv0.clone(),
            language,
            state: State::Ready(Box::new(Ready {
                module,
                argv0,
                lead_args: Vec::new(),
                env: Vec::new(),
                runner: None,
                check: None,
                budget_factor: 1,
                warnings: None,
            })),
        }
    }

    /// A program from its parts (a worker process rebuilding what its supervisor prepared).
    pub(crate) fn from_parts(
        module: GuestModule,
        argv0: String,
        lead_args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Program {
        Program {
            name: argv0.clone(),
            language: Language::Wasm,
            state: State::Ready(Box::new(Ready {
                module,
                argv0,
                lead_args,
                env,
                runner: None,
                check: None,
                budget_factor: 1,
                warnings: None,
            })),
        }
    }

    /// The display name (the file name the user gave).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The language the program came from.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The admitted module, unless compiling or admission failed.
    pub fn module(&self) -> Option<&GuestModule> {
        match &self.state {
            State::Ready(r) => Some(&r.module),
            State::Failed(_) => None,
        }
    }

    /// Why the program cannot run (`compile_error` or `rejected`), if it cannot.
    pub fn failure(&self) -> Option<&RunReport> {
        match &self.state {
            State::Ready(_) => None,
            State::Failed(r) => Some(r),
        }
    }

    /// The report of `corral check`: `ok` with what admission learnt, or why not.
    pub fn check_report(&self) -> RunReport {
        match &self.state {
            State::Failed(r) => (**r).clone(),
            State::Ready(r) => {
                let info = r.module.info();
                let message = match r.runner {
                    Some(kind) => format!(
                        "the program was admitted, to run on the {} runner ({} bytes)",
                        kind.name(),
                        info.size
                    ),
                    None => format!(
                        "the module was admitted ({} functions, {} bytes)",
                        info.functions, info.size
                    ),
                };
                let mut report = RunReport::without_run(Verdict::Ok, message);
                report.module_hash = Some(r.module.hash());
                report.diagnostics = r.warnings.clone();
                report
            }
        }
    }
}

/// A module to admit: its bytes, or a file (a language runner in the cache).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wasm<'a> {
    /// The bytes.
    Bytes(&'a [u8]),
    /// A file whose blake3 the caller knows.
    File(&'a Path),
}

/// Admits a job's module under `policy`, whether it was compiled here, read from a record
/// or sent to a worker: the pinned scientific Python runner (by its hash) on the runner
/// engine, with its standard library (provisioned first if this machine has not built it;
/// it must be the one built here); every other module with corral's own features.
///
/// # Errors
///
/// A [`Rejection`](crate::admit::Rejection) naming the problem.
pub(crate) fn admit(
    engine: &Engine,
    wasm: Wasm<'_>,
    hash: ModuleHash,
    policy: &Policy,
) -> Result<GuestModule, crate::admit::Rejection> {
    use crate::admit::Rejection;
    let cache = engine.config().cache_dir.as_deref();
    if !compile::runner::is_reactor_runner(hash, cache) {
        return match wasm {
            Wasm::Bytes(b) => engine.admit(b, policy),
            Wasm::File(p) => engine.admit_file(p, hash, policy),
        };
    }
    let cache = cache.ok_or_else(|| {
        Rejection("the scientific Python runner needs a cache directory (set CORRAL_HOME)".into())
    })?;
    let built = compile::runner::ensure(RunnerKind::PythonSci, cache)
        .map_err(|e| Rejection(e.message().to_string()))?;
    if built.hash != hash {
        return Err(Rejection(
            "the module is not the scientific Python runner built here".into(),
        ));
    }
    let lib = built
        .lib
        .clone()
        .ok_or_else(|| Rejection("the runner has no library directory".into()))?;
    let (bytes, path) = match wasm {
        Wasm::Bytes(b) => (Some(b), built.wasm.as_path()),
        Wasm::File(p) => (None, p),
    };
    engine.admit_reactor_runner(hash, bytes, path, lib, built.mpl_data(), policy)
}

/// What a job produced: the report, and when the guest ran, what its record needs.
#[derive(Debug)]
pub struct Outcome {
    /// The report (every verdict, including compile errors, rejections and invalid input).
    pub report: RunReport,
    ran: Option<Ran>,
}

#[derive(Debug)]
struct Ran {
    module: GuestModule,
    language: Language,
    policy: Policy,
    /// With [`Recording::On`]: what a record needs.
    trail: Option<TrailSnapshot>,
    inputs: Option<RunInputs>,
}

impl Outcome {
    /// An outcome in which the guest never ran.
    pub fn without_run(report: RunReport) -> Outcome {
        Outcome { report, ran: None }
    }

    /// Whether the guest ran (so its output and trail mean something).
    pub fn ran(&self) -> bool {
        self.ran.is_some()
    }

    /// The gate's audit trail, when the guest ran with [`Recording::On`] or
    /// [`Recording::Trail`].
    pub fn trail(&self) -> Option<&TrailSnapshot> {
        self.ran.as_ref().and_then(|r| r.trail.as_ref())
    }

    /// The module that ran.
    pub fn module(&self) -> Option<&GuestModule> {
        self.ran.as_ref().map(|r| &r.module)
    }

    /// Writes the run record into `store` (when the guest ran) and sets the report's
    /// `record` to its path. The run must have been made with [`Recording::On`] for input
    /// directories to be recorded.
    ///
    /// # Errors
    ///
    /// The store cannot be written.
    pub fn write_record(
        &mut self,
        engine: &Engine,
        store: &RecordStore,
    ) -> Result<Option<PathBuf>, Error> {
        let Some(ran) = &self.ran else {
            return Ok(None);
        };
        let (Some(trail), Some(inputs)) = (&ran.trail, &ran.inputs) else {
            return Ok(None); // run with Recording::Off
        };
        let path = record::write(
            store,
            record::RecordParts {
                module: &ran.module,
                language: ran.language,
                policy: &ran.policy,
                inputs,
                report: &self.report,
                trail,
                engine: engine.identity(),
            },
        )?;
        self.report.record = Some(path.display().to_string());
        Ok(Some(path))
    }
}

/// The report for an error of the host side: `invalid_input` for the caller's bad input (an
/// unreadable file, a bad policy, an invalid invocation), `host_error` for corral's own
/// failures. The one place where errors become verdicts.
pub fn error_report(e: &Error) -> RunReport {
    let verdict = match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::Policy => Verdict::InvalidInput(e.to_string()),
        _ => Verdict::HostError(e.to_string()),
    };
    RunReport::without_run(verdict, e.to_string())
}

/// `Ok(report)` for errors that are the caller's (invalid input), `Err` for the host's.
fn caller_error(e: Error, module: &GuestModule) -> Result<Outcome, Error> {
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::Policy => {
            let mut report = error_report(&e);
            report.module_hash = Some(module.hash());
            Ok(Outcome::without_run(report))
        }
        _ => Err(e),
    }
}

/// Runs `program` once under `policy` with `invocation`: in this process, or in a worker
/// process when the engine is configured with [`Isolation::Workers`](crate::worker::Isolation).
///
/// # Errors
///
/// Host failures only. A program that did not compile or was rejected returns its report;
/// an invalid invocation (bad arguments or environment, a directory grant the policy does
/// not allow, an unreadable directory, walls the policy requires that are not up) is an
/// `invalid_input` verdict; every guest outcome is a verdict.
///
/// # Determinism
///
/// With the same program, policy and invocation, the report is identical except for
/// `isolation`, `wall_time` and `limit = wall_time` verdicts.
pub async fn run(
    engine: &Engine,
    program: &Program,
    policy: &Policy,
    invocation: &Invocation,
    recording: Recording,
) -> Result<Outcome, Error> {
    let ready = match &program.state {
        State::Ready(r) => r,
        State::Failed(report) => return Ok(Outcome::without_run((**report).clone())),
    };
    // The program was admitted under the policy it was built with; a run may lower the
    // caps (an eval case's `limits`), and then it is refused here the way admission refuses
    // it, in this process or a worker alike.
    if let Err(rejection) = ready.module.check_caps(policy) {
        return Ok(Outcome::without_run(rejected(
            rejection,
            ready.module.hash(),
        )));
    }
    // The policy the run has (and its record holds): the runner's budget factor applied.
    let scaled = budget(policy, ready.budget_factor);
    let policy = &scaled;
    let workers = engine.workers().await?;
    let walls = workers.map(|p| p.walls()).unwrap_or_default();
    let missing: Vec<&str> = policy
        .isolation
        .require
        .iter()
        .map(String::as_str)
        .filter(|w| !walls.has(w))
        .collect();
    if !missing.is_empty() {
        return caller_error(
            Error::invalid_input(format!(
                "the policy requires isolation walls that are not up here: {} (hint: run in worker processes, e.g. `corral run --isolate`; `corral check` does not run anything)",
                missing.join(", ")
            )),
            &ready.module,
        );
    }
    if let Some(report) = compile_check(engine, workers, program, ready, policy).await? {
        return Ok(Outcome::without_run(report));
    }
    let finished = match workers {
        None => match run_here(engine, program, policy, invocation, recording).await {
            Ok(f) => f,
            Err(e) => return caller_error(e, &ready.module),
        },
        Some(pool) => match in_worker(pool, ready, policy, invocation, recording).await? {
            Ok(f) => f,
            Err(report) => return Ok(Outcome::without_run(report)),
        },
    };
    let mut report = finished.report;
    report.isolation = walls;
    if report.diagnostics.is_none() {
        report.diagnostics = ready.warnings.clone();
    }
    Ok(Outcome {
        report,
        ran: Some(Ran {
            module: ready.module.clone(),
            language: program.language,
            policy: policy.clone(),
            trail: finished.trail,
            inputs: finished.inputs,
        }),
    })
}

/// The report of a module admission refused: nothing ran.
fn rejected(rejection: crate::admit::Rejection, hash: ModuleHash) -> RunReport {
    let mut report = RunReport::without_run(
        Verdict::Rejected(rejection.0.clone()),
        format!("the module was rejected: {}", rejection.0),
    );
    report.module_hash = Some(hash);
    report
}

/// The report of `corral check` for `program` under `policy`: [`Program::check_report`],
/// after the compile check of a Python program (which runs the runner in a sandbox, in a
/// worker process when the engine has them, but none of the program).
///
/// # Errors
///
/// Host failures only.
pub async fn check(
    engine: &Engine,
    program: &Program,
    policy: &Policy,
) -> Result<RunReport, Error> {
    if let State::Ready(ready) = &program.state {
        let workers = engine.workers().await?;
        let policy = budget(policy, ready.budget_factor);
        if let Some(report) = compile_check(engine, workers, program, ready, &policy).await? {
            return Ok(report);
        }
    }
    Ok(program.check_report())
}

/// `policy` as a program on a runner with budget factor `factor` runs under it: `fuel` and
/// `wall_time_ms` multiplied by `factor` (held to their largest allowed values, 10¹³ and one
/// hour), everything else unchanged. Interpreters spend many times the fuel of compiled code
/// on the same work (`docs/budgets.md`), so this makes a policy's budget mean about the same
/// work in every language. Deterministic: the factor is fixed per runner, and the run's
/// record holds the resulting policy, so a replay (which runs the recorded module as it is)
/// has the same budget.
pub fn budget(policy: &Policy, factor: u64) -> Policy {
    let mut p = policy.clone();
    if factor > 1 {
        p.limits.fuel.0 = policy
            .limits
            .fuel
            .0
            .saturating_mul(factor)
            .min(crate::policy::MAX_FUEL);
        p.limits.wall_time = policy
            .limits
            .wall_time
            .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX))
            .min(crate::policy::MAX_WALL_TIME);
    }
    p
}

/// A runner's `argv[0]`: the display name, with `./` in front of a name the runner would
/// take for one of its own modes (`--corral-info`, `--corral-compile`).
fn runner_argv0(name: &str) -> String {
    if name.starts_with("--corral-") {
        format!("./{name}")
    } else {
        name.to_string()
    }
}

/// The policy of a compile check under the run's `policy`: nothing but the runner and its
/// arguments, with the run's fuel, memory and wall-clock limits (the check's outcome depends
/// only on the program text and these).
fn check_policy(policy: &Policy) -> Policy {
    let mut p = Policy::strict().with_name("python-compile-check");
    p.limits.fuel = policy.limits.fuel;
    p.limits.memory = policy.limits.memory;
    p.limits.wall_time = policy.limits.wall_time;
    p
}

/// Runs the compile check of `ready` (if it has one) under `policy`'s limits, once per
/// distinct limits. `Some(report)` ends the job without running the program: a
/// `compile_error`, or (never remembered) the check's own wall-clock stop or lost worker.
/// `None`: run the program — it compiles, or compiling it failed in a way that is not a
/// syntax error (out of fuel or memory, a recursion error), which the run itself reports.
async fn compile_check(
    engine: &Engine,
    workers: Option<&crate::worker::pool::Pool>,
    program: &Program,
    ready: &Ready,
    policy: &Policy,
) -> Result<Option<RunReport>, Error> {
    let Some(check) = &ready.check else {
        return Ok(None);
    };
    let key: CheckKey = (policy.limits.fuel.0, policy.limits.memory.0);
    let remembered = |memo: &std::sync::Mutex<Vec<(CheckKey, Checked)>>| {
        let memo = memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        memo.iter().find(|(k, _)| *k == key).map(|(_, c)| c.clone())
    };
    let checked = match remembered(&check.memo) {
        Some(c) => c,
        None => {
            let Some(text) = ready.lead_args.first() else {
                return Ok(None);
            };
            let checker = Ready {
                module: ready.module.clone(),
                argv0: CHECK_ARGV0.to_string(),
                lead_args: vec![ready.argv0.clone(), text.clone()],
                env: Vec::new(),
                runner: ready.runner,
                check: None,
                budget_factor: 1,
                warnings: None,
            };
            let check_policy = check_policy(policy);
            let finished = match workers {
                None => {
                    let checker = Program {
                        name: program.name.clone(),
                        language: program.language,
                        state: State::Ready(Box::new(checker)),
                    };
                    let inv = Invocation::default();
                    match run_here(engine, &checker, &check_policy, &inv, Recording::Off).await {
                        Ok(f) => f.report,
                        // An invocation the sandbox refuses is refused for the run too.
                        Err(e)
                            if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Policy) =>
                        {
                            return Ok(None);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Some(pool) => {
                    let inv = Invocation::default();
                    match in_worker(pool, &checker, &check_policy, &inv, Recording::Off).await? {
                        Ok(f) => f.report,
                        Err(report) => return Ok(Some(report)),
                    }
                }
            };
            let checked = match &finished.verdict {
                Verdict::Exit(1) => {
                    let diag = String::from_utf8_lossy(&finished.stderr).into_owned();
                    let mut report = RunReport::without_run(
                        Verdict::CompileError(diag.clone()),
                        compile_message(&program.name, Language::Python, &diag),
                    );
                    report.diagnostics = Some(diag);
                    Checked::Failed(Box::new(report))
                }
                // Not remembered: a wall-clock stop is not a property of the program.
                Verdict::Limit(crate::verdict::LimitKind::WallTime) | Verdict::HostError(_) => {
                    return Ok(Some(finished));
                }
                _ => Checked::Run,
            };
            let mut memo = check
                .memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !memo.iter().any(|(k, _)| *k == key) {
                if memo.len() >= CHECK_MEMO {
                    memo.remove(0);
                }
                memo.push((key, checked.clone()));
            }
            checked
        }
    };
    Ok(match checked {
        Checked::Run => None,
        Checked::Failed(report) => Some(*report),
    })
}

/// Runs `program` in this process (a worker process runs its runs here too).
pub(crate) async fn run_here(
    engine: &Engine,
    program: &Program,
    policy: &Policy,
    invocation: &Invocation,
    recording: Recording,
) -> Result<Finished, Error> {
    let ready = match &program.state {
        State::Ready(r) => r,
        State::Failed(report) => {
            return Ok(Finished {
                report: (**report).clone(),
                trail: None,
                inputs: None,
            });
        }
    };
    let sandbox = engine
        .sandbox(&ready.module, policy)
        .argv0(ready.argv0.clone())
        .args(ready.lead_args.iter().cloned())
        .runner_env(&ready.env)
        .invocation(invocation.clone())
        .keep_inputs(recording == Recording::On)
        .build()?;
    let finished = sandbox.run_full().await?;
    Ok(Finished {
        report: finished.report,
        trail: (recording != Recording::Off).then(|| TrailSnapshot::of(&finished.trail)),
        inputs: (recording == Recording::On).then_some(finished.inputs),
    })
}

/// Runs `ready` in a worker process; `Err(report)` when the run ended without a result
/// (the worker was killed at the deadline, or died).
async fn in_worker(
    pool: &crate::worker::pool::Pool,
    ready: &Ready,
    policy: &Policy,
    invocation: &Invocation,
    recording: Recording,
) -> Result<Result<Finished, RunReport>, Error> {
    use crate::worker::pool::{Lost, RunFailure};
    use crate::worker::protocol::{ModuleRef, PolicyRef, RunRequest};
    let hash = ready.module.hash();
    let (module, bytes) = match ready.module.source() {
        crate::engine::ModuleSource::File(path) => (ModuleRef::File(hash, path.clone()), None),
        crate::engine::ModuleSource::Bytes(b) => (ModuleRef::Known(hash), Some(b.clone())),
    };
    let req = RunRequest {
        id: 0,
        module,
        policy: PolicyRef::Known([0; 32]),
        argv0: ready.argv0.clone(),
        lead_args: ready.lead_args.clone(),
        runner_env: ready.env.clone(),
        invocation: invocation.clone(),
        recording,
        hook: invocation_hook(invocation),
    };
    let text = (policy.name().to_string(), policy.to_canonical_toml());
    let (reply, walls) = pool.run(req, bytes, text, policy.limits.wall_time).await?;
    let without = |verdict: Verdict, message: String| {
        let mut r = RunReport::without_run(verdict, message);
        r.module_hash = Some(hash);
        r.isolation = walls;
        r
    };
    Ok(match reply {
        Ok(f) => Ok(*f),
        Err(RunFailure::Lost(Lost::Deadline)) => {
            let v = Verdict::Limit(crate::verdict::LimitKind::WallTime);
            let m = crate::verdict::message(&v, policy);
            Err(without(v, m))
        }
        Err(RunFailure::Lost(Lost::Died(m))) => Err(without(Verdict::HostError(m.clone()), m)),
        Err(RunFailure::Lost(Lost::NotStarted)) => {
            return Err(Error::host("a run was lost by the worker pool"));
        }
        Err(RunFailure::Error(true, m)) => Err(without(Verdict::InvalidInput(m.clone()), m)),
        Err(RunFailure::Error(false, m)) => return Err(Error::host(m)),
    })
}

/// Test hooks ride on the environment of an invocation (feature `test-hooks` only).
fn invocation_hook(invocation: &Invocation) -> Option<crate::worker::protocol::Hook> {
    if !cfg!(feature = "test-hooks") {
        return None;
    }
    match invocation.env.get(TEST_HOOK_ENV).map(String::as_str) {
        Some("crash") => Some(crate::worker::protocol::Hook::Crash),
        Some("block") => Some(crate::worker::protocol::Hook::Block),
        _ => None,
    }
}

/// With the `test-hooks` feature, an invocation whose environment sets this to `crash` or
/// `block` makes its worker misbehave (refused by release builds).
pub const TEST_HOOK_ENV: &str = "CORRAL_TEST_WORKER_HOOK";

/// Source in, report out: [`Program::prepare`] then [`run`].
///
/// # Errors
///
/// Host failures only.
pub async fn run_source(
    engine: &Engine,
    source: &Source,
    policy: &Policy,
    invocation: &Invocation,
    recording: Recording,
) -> Result<Outcome, Error> {
    let program = Program::prepare(engine, source, policy)?;
    run(engine, &program, policy, invocation, recording).await
}
