//! `corral bench`: runs the benchmark package (`corral_bench`) and prints its table.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use corral::exit;
use corral_bench::{self as bench, BenchOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fewer repetitions and smaller workloads: a quick smoke run (noisier numbers).
    #[arg(long)]
    quick: bool,
    /// Only these groups, comma-separated (bench/src/lib.rs says what each measures).
    #[arg(long, value_name = "GROUPS", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(bench::GROUPS))]
    only: Vec<String>,
    /// Print the rows as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The repository's fixtures directory (the eval suite and HumanEval); by default
    /// `fixtures/` in the current directory or beside the source tree this binary was built from.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
}

/// `fixtures/` in the current directory, else beside the source tree of this build.
fn default_fixtures() -> Option<PathBuf> {
    let here = PathBuf::from("fixtures");
    if here.join("eval").is_dir() {
        return Some(here);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    built.join("eval").is_dir().then_some(built)
}

pub fn main(a: Args) -> ExitCode {
    let Some(cache_dir) = corral::hostfs::cache_dir() else {
        eprintln!("corral: no cache directory (hint: set CORRAL_HOME)");
        return ExitCode::from(exit::INVALID);
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "corral: warning: this is a debug build, whose numbers mean little (hint: cargo run --release -p corral-cli -- bench)"
        );
    }
    let opts = BenchOptions {
        quick: a.quick,
        only: a.only,
        corral_exe: std::env::current_exe().ok(),
        fixtures: a.fixtures.or_else(default_fixtures),
        cache_dir,
        temp_root: corral::hostfs::temp_root(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let header = format!(
        "corral {} bench (wasmtime {}), {cores} cores{}: medians; every baseline was measured in this run",
        env!("CARGO_PKG_VERSION"),
        corral::WASMTIME_VERSION,
        if opts.quick { ", quick" } else { "" },
    );
    let tty = std::io::stderr().is_terminal();
    let progress = |line: &str| {
        if tty {
            eprintln!("{line}");
        }
    };
    if !a.json {
        eprintln!("{header}");
    }
    let rows = bench::run(&opts, &progress);
    if a.json {
        crate::output::print_json(&serde_json::json!({
            "header": header,
            "rows": bench::to_json(&rows),
        }));
    } else {
        print!("{}", bench::render(&rows));
    }
    let missed = rows
        .iter()
        .filter(|r| r.target.as_ref().is_some_and(|t| !t.met))
        .count();
    if missed > 0 {
        eprintln!("corral: {missed} target(s) not met on this machine in this run");
    }
    ExitCode::from(exit::OK)
}
