//! Argument parsing and command dispatch.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use corral::compile::Language;
use corral::request::RunRequest;
use corral::{DirGrant, Engine, EngineConfig, Policy, RunReport, Verdict};

use crate::output;

/// Exit status for a bad invocation or input (INTERFACE.md).
const EXIT_INVALID: u8 = 2;
/// Exit status for an internal host error.
const EXIT_HOST: u8 = 70;

#[derive(Parser, Debug)]
#[command(
    name = "corral",
    version,
    about = "Run untrusted code as WebAssembly under a policy, with typed verdicts and replayable records",
    long_about = "Run untrusted code as WebAssembly under a policy, with typed verdicts and replayable records.\n\n\
        FILE is chosen by extension: .wasm (core module or WASI 0.2 component), .wat, .rs (rustc for wasm32-wasip1), \
        .c/.cpp/.cc (clang for wasm32-wasi), .py (CPython 3.14 runner), .js (QuickJS runner).\n\
        Exit status of `run`: 0 when the guest completed with exit code 0; 1 for any other verdict of the guest \
        (non-zero exit, trap, limit, denied, rejected, compile error); 2 for a bad invocation or input file; \
        70 for an internal host error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile if needed, admit, run once, print a report.
    Run(RunArgs),
    /// Static admission only: compile if needed and check the module, without running it.
    Check(CheckArgs),
    /// Re-execute a recorded run (a record path or a bundle) and verify it bit-for-bit.
    /// Exit status: 0 identical, 1 diverged, 2 the record is invalid, altered or refused
    /// (nothing runs then), 70 host error.
    Replay(ReplayArgs),
    /// Write one self-contained file holding a record and every blob it needs, to replay on
    /// another machine.
    Bundle(BundleArgs),
    /// Compile a program once, run every case of a suite concurrently, grade each.
    /// Exit status: 0 when every case passed, 1 otherwise, 2 for an invalid suite.
    Eval(EvalArgs),
    /// Evaluate HumanEval problems (canonical solutions, or samples with pass@k), sandboxed.
    Humaneval(HumanevalArgs),
    /// Measure what runs cost on this machine, against baselines measured in the same run
    /// (raw wasmtime, native processes, python3), and print a table of medians and ratios.
    /// Build with --release first: `cargo run --release -p corral-cli -- bench`.
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Fewer repetitions and smaller workloads: a quick smoke run (noisier numbers).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Only these groups, comma-separated: per-run, throughput, python, process, compute,
    /// gate, record, compile, eval, humaneval, memory.
    #[arg(long, value_name = "GROUPS", value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Print the rows as JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// The repository's fixtures directory (the eval suite and HumanEval); by default
    /// `fixtures/` in the current directory or beside the source tree this binary was built from.
    #[arg(long, value_name = "DIR")]
    pub(crate) fixtures: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct EvalArgs {
    /// The suite file (TOML; see fixtures/eval/README.md).
    pub(crate) suite: PathBuf,
    /// Print one JSON object per case, then a summary object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Cases run at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// A policy replacing the suite's own (bundled name or TOML file).
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) policy: Option<String>,
    /// Do not record failing cases.
    #[arg(long)]
    pub(crate) no_record: bool,
    /// Where failing cases are recorded (default: the record store, as for `run`).
    #[arg(long, value_name = "DIR")]
    pub(crate) record_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct HumanevalArgs {
    /// Problems in the HumanEval format (JSON lines, optionally .gz).
    pub(crate) problems: PathBuf,
    /// Samples to grade (`task_id`, `completion` per line). Without it, the canonical
    /// solutions are graded. Results go to SAMPLES_results.jsonl (SAMPLES.jsonl_results.jsonl).
    #[arg(long, value_name = "SAMPLES.jsonl")]
    pub(crate) samples: Option<PathBuf>,
    /// The language of the problems.
    #[arg(long, value_enum, default_value = "python")]
    pub(crate) language: HeLang,
    /// The k of pass@k, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub(crate) k: Vec<u64>,
    /// Programs run at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// A policy replacing the default HumanEval limits (bundled name or TOML file).
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) policy: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum HeLang {
    Python,
    Rust,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// A record (`.json`, as printed in a report's `record`) or a bundle file.
    record: PathBuf,
    /// Print the replayed report as one JSON object, plus `identical`, `divergence`, `notes`.
    #[arg(long)]
    json: bool,
    /// Replay a record made by another corral version or configuration anyway, and say what
    /// may differ.
    #[arg(long)]
    best_effort: bool,
    /// Look for blobs in this store first (default: the store the record sits in, then
    /// $CORRAL_HOME/store or ~/.local/share/corral/store).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// The most a record's policy may grant (a bundled policy or a TOML file). Default:
    /// permissive.
    #[arg(long, value_name = "NAME|PATH", default_value = "permissive")]
    ceiling: String,
}

#[derive(Args, Debug)]
struct BundleArgs {
    /// The record to bundle.
    record: PathBuf,
    /// The bundle file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// The store holding the record's blobs (default: the one the record sits in).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

/// Options shared by `run`, `check` and `eval`.
#[derive(Args, Debug, Clone)]
struct Shared {
    /// A bundled policy by name (strict, standard, permissive) or a TOML file. Default: strict.
    #[arg(long, value_name = "NAME|PATH", default_value = "strict")]
    policy: String,
    /// Expose a host directory at a guest path: read-only (a private copy) unless `:rw` and
    /// the policy allows it. Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]")]
    dirs: Vec<String>,
    /// One guest environment variable (repeatable); overrides the policy's `[env]`.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Guest stdin from a file (`-` = this process's stdin, read fully first). Default: empty.
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Seed of the guest's random and clock virtualisation (recorded). Default: 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Print the report as one JSON object on stdout (guest output is inside it).
    #[arg(long)]
    json: bool,
    /// The runner of a .py program: `python` (CPython 3.14 with the standard library),
    /// `python-sci` (CPython 3.15 with numpy, pandas, scipy, scikit-learn, …) or `auto`
    /// (the default: `python-sci` when the program imports one of its packages).
    #[arg(long, value_name = "NAME", default_value = "auto")]
    runner: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The program: .wasm, .wat, .rs, .c, .cpp, .py or .js.
    file: PathBuf,
    #[command(flatten)]
    shared: Shared,
    /// Do not write a run record.
    #[arg(long)]
    no_record: bool,
    /// Write the run record into this store directory (default: $CORRAL_HOME/store, else
    /// $XDG_DATA_HOME/corral/store, else ~/.local/share/corral/store).
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
    /// Print every host call the guest made (the gate's audit trail) to stderr.
    #[arg(long)]
    trace: bool,
    /// Arguments passed to the guest after `argv[0]` (which is always `main`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The program: .wasm, .wat, .rs, .c, .cpp, .py or .js.
    file: PathBuf,
    #[command(flatten)]
    shared: Shared,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_HOST);
        }
    };
    match cli.command {
        Command::Run(a) => rt.block_on(run(a)),
        Command::Check(a) => check(a),
        Command::Replay(a) => rt.block_on(replay(a)),
        Command::Bundle(a) => bundle(a),
        Command::Eval(a) => crate::evalcmd::eval(a),
        Command::Humaneval(a) => crate::evalcmd::humaneval(a),
        Command::Bench(a) => crate::bench::bench(a),
    }
}

pub(crate) fn engine() -> Result<Engine, Box<RunReport>> {
    let mut config = EngineConfig::default();
    if let Some(t) = std::env::var_os("CORRAL_TMPDIR") {
        config.temp_root = PathBuf::from(t);
    }
    config.cache_dir = corral::compile::runner::default_cache_dir();
    Engine::new(config).map_err(|e| {
        Box::new(RunReport::without_run(
            Verdict::HostError(e.to_string()),
            e.to_string(),
        ))
    })
}

/// Builds the request from the command line; an `invalid_input` report on failure.
fn request(file: &Path, shared: &Shared, args: Vec<String>) -> Result<RunRequest, Box<RunReport>> {
    let invalid = |msg: String| {
        Box::new(RunReport::without_run(
            Verdict::InvalidInput(msg.clone()),
            msg,
        ))
    };
    let policy = Policy::resolve(&shared.policy).map_err(|e| invalid(e.to_string()))?;
    let shown = file.display().to_string();
    let mut language = Language::from_path(file).ok_or_else(|| {
        invalid(format!(
            "`{shown}`: unknown file type (hint: corral runs .wasm, .wat, .rs, .c, .cpp, .py and .js files)"
        ))
    })?;
    if language == Language::Python {
        language = Language::python_runner(&shared.runner).ok_or_else(|| {
            invalid(format!(
                "`--runner {}`: unknown runner (hint: `python`, `python-sci` or `auto`)",
                shared.runner
            ))
        })?;
    } else if shared.runner != "auto" {
        return Err(invalid(format!(
            "`--runner {}` applies to .py programs only",
            shared.runner
        )));
    }
    let source = std::fs::read(file).map_err(|e| invalid(format!("cannot read `{shown}`: {e}")))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "main".into());
    let mut req = RunRequest::new(source, name, language, policy);
    req.args = args;
    req.seed = shared.seed;
    let mut env = BTreeMap::new();
    for kv in &shared.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid(format!("`--env {kv}` is not of the form KEY=VALUE")))?;
        env.insert(k.to_string(), v.to_string());
    }
    req.env = env;
    for d in &shared.dirs {
        req.dirs
            .push(DirGrant::parse(d).map_err(|e| invalid(e.to_string()))?);
    }
    if let Some(path) = &shared.stdin {
        req.stdin = if path.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| invalid(format!("cannot read stdin: {e}")))?;
            buf
        } else {
            std::fs::read(path)
                .map_err(|e| invalid(format!("cannot read `{}`: {e}", path.display())))?
        };
    }
    Ok(req)
}

fn finish(report: &RunReport, json: bool, ran: bool, exit: u8) -> ExitCode {
    if json {
        output::print_json(&report.to_json());
    } else {
        if ran {
            output::pass_through(report);
        }
        eprint!("{}", output::summary(report, ran));
    }
    // Everything is written and flushed: leave without unmapping the engine, the module
    // artifact and the pools one by one (the kernel reclaims them at once).
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(i32::from(exit))
}

fn status(v: &Verdict) -> u8 {
    u8::try_from(v.process_exit_status()).unwrap_or(EXIT_HOST)
}

async fn run(a: RunArgs) -> ExitCode {
    let json = a.shared.json;
    let mut req = match request(&a.file, &a.shared, a.args) {
        Ok(r) => r,
        Err(report) => return finish(&report, json, false, EXIT_INVALID),
    };
    req.keep_inputs = !a.no_record;
    let engine = match engine() {
        Ok(e) => e,
        Err(report) => return finish(&report, json, false, EXIT_HOST),
    };
    let mut outcome = match engine.run_request(&req).await {
        Ok(o) => o,
        Err(e) => {
            let report = RunReport::without_run(Verdict::HostError(e.to_string()), e.to_string());
            return finish(&report, json, false, EXIT_HOST);
        }
    };
    if !a.no_record {
        let dir = a
            .record_dir
            .clone()
            .or_else(corral::record::Store::default_location);
        match dir {
            Some(dir) => {
                if let Err(e) = engine.record(&req, &mut outcome, &corral::record::Store::new(dir))
                {
                    eprintln!("corral: warning: the run record could not be written: {e}");
                }
            }
            None => eprintln!(
                "corral: warning: no place for run records (set CORRAL_HOME or use --record-dir)"
            ),
        }
    }
    if a.trace
        && let Some((trail, _)) = &outcome.run
    {
        eprint!("{}", trace_text(trail));
    }
    let ran = outcome.run.is_some();
    finish(&outcome.report, json, ran, status(&outcome.report.verdict))
}

fn check(a: CheckArgs) -> ExitCode {
    let json = a.shared.json;
    let req = match request(&a.file, &a.shared, Vec::new()) {
        Ok(r) => r,
        Err(report) => return finish(&report, json, false, EXIT_INVALID),
    };
    let engine = match engine() {
        Ok(e) => e,
        Err(report) => return finish(&report, json, false, EXIT_HOST),
    };
    match engine.check_request(&req) {
        Ok(o) => finish(&o.report, json, false, status(&o.report.verdict)),
        Err(e) => {
            let report = RunReport::without_run(Verdict::HostError(e.to_string()), e.to_string());
            finish(&report, json, false, EXIT_HOST)
        }
    }
}

async fn replay(a: ReplayArgs) -> ExitCode {
    let engine = match engine() {
        Ok(e) => e,
        Err(report) => return finish(&report, a.json, false, EXIT_HOST),
    };
    let ceiling = match Policy::resolve(&a.ceiling) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let opts = corral::replay::ReplayOptions {
        best_effort: a.best_effort,
        ceiling,
        store: a.store.map(corral::record::Store::new),
    };
    match corral::replay::replay(&engine, &a.record, &opts).await {
        Ok(r) => {
            if a.json {
                output::print_json(&output::replay_json(&r));
            } else {
                output::pass_through(&r.report);
                eprint!("{}", output::summary(&r.report, true));
                eprint!("{}", output::replay_text(&r));
            }
            ExitCode::from(if r.identical { 0 } else { 1 })
        }
        Err(e) => {
            let (status, verdict) = match &e {
                corral::replay::ReplayError::Refused(m) => {
                    (EXIT_INVALID, Verdict::InvalidInput(m.clone()))
                }
                corral::replay::ReplayError::Host(m) => (EXIT_HOST, Verdict::HostError(m.clone())),
                _ => (EXIT_HOST, Verdict::HostError(e.to_string())),
            };
            let report = RunReport::without_run(verdict, e.to_string());
            if a.json {
                let mut v = report.to_json();
                v["identical"] = serde_json::json!(false);
                v["divergence"] = serde_json::Value::Null;
                output::print_json(&v);
            } else {
                eprintln!("corral: replay refused: {e}");
            }
            ExitCode::from(status)
        }
    }
}

fn bundle(a: BundleArgs) -> ExitCode {
    match corral::replay::bundle(
        &a.record,
        &a.output,
        a.store.map(corral::record::Store::new),
    ) {
        Ok(p) => {
            eprintln!("corral: wrote {}", p.display());
            ExitCode::SUCCESS
        }
        Err(corral::replay::ReplayError::Host(m)) => {
            eprintln!("corral: {m}");
            ExitCode::from(EXIT_HOST)
        }
        Err(e) => {
            eprintln!("corral: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The audit trail, one call per line.
fn trace_text(trail: &corral::AuditTrail) -> String {
    let mut s = format!("── trace: {} host calls ──\n", trail.total());
    for ev in trail.events() {
        let result = match ev.errno {
            0 => format!("ok {}", ev.result),
            u16::MAX => "trap/exit".to_string(),
            e => format!("errno {e}"),
        };
        s.push_str(&format!(
            "#{:<6} fuel {:>12}  {:<24} args {}  → {}\n",
            ev.index, ev.fuel, ev.func, ev.args, result
        ));
    }
    if !trail.complete() {
        s.push_str(&format!(
            "… {} more calls not kept in memory (they are in the chain hash)\n",
            trail.total() - trail.events().len() as u64
        ));
    }
    s.push_str(&format!("chain blake3:{}\n", trail.hash()));
    s
}
