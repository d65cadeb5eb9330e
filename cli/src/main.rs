//! The `corral` command line: argument parsing and output. Each command owns its arguments
//! in its own file and calls the library; none builds a sandbox or holds logic the library
//! lacks, and command files do not import each other.

mod bench;
mod bundle;
mod check;
mod eval;
mod humaneval;
mod job_args;
mod output;
mod replay;
mod run;
mod setup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Run(run::Args),
    /// Static admission only: compile if needed and check the module, without running it.
    Check(check::Args),
    /// Re-execute a recorded run (a record path or a bundle) and verify it bit-for-bit.
    /// Exit status: 0 identical, 1 diverged, 2 the record is invalid, altered or refused
    /// (nothing runs then), 70 host error.
    Replay(replay::Args),
    /// Write one self-contained file holding a record and every blob it needs, to replay on
    /// another machine.
    Bundle(bundle::Args),
    /// Compile a program once, run every case of a suite concurrently, grade each.
    /// Exit status: 0 when every case passed, 1 otherwise, 2 for an invalid suite.
    Eval(eval::Args),
    /// Evaluate HumanEval problems (canonical solutions, or samples with pass@k), sandboxed.
    Humaneval(humaneval::Args),
    /// Measure what runs cost on this machine, against baselines measured in the same run
    /// (raw wasmtime, native processes, python3), and print a table of medians and ratios.
    /// Build with --release first: `cargo run --release -p corral-cli -- bench`.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    // A worker process of the pool (started by this same program): no argument parsing,
    // nothing before the lock-down.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == corral::worker::WORKER_ARG)
    {
        return corral::job::serve_worker();
    }
    match Cli::parse().command {
        Command::Run(a) => run::main(a),
        Command::Check(a) => check::main(a),
        Command::Replay(a) => replay::main(a),
        Command::Bundle(a) => bundle::main(a),
        Command::Eval(a) => eval::main(a),
        Command::Humaneval(a) => humaneval::main(a),
        Command::Bench(a) => bench::main(a),
    }
}
