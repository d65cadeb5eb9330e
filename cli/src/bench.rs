//! `corral bench`: runs `corral::bench` and prints its table.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use corral_bench::{self as bench, BenchOptions};

use crate::cli::BenchArgs;

/// `fixtures/` in the current directory, else beside the source tree of this build.
fn default_fixtures() -> Option<PathBuf> {
    let here = PathBuf::from("fixtures");
    if here.join("eval").is_dir() {
        return Some(here);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    built.join("eval").is_dir().then_some(built)
}

pub(crate) fn bench(a: BenchArgs) -> ExitCode {
    for g in &a.only {
        if !bench::GROUPS.contains(&g.as_str()) {
            eprintln!(
                "corral: unknown benchmark group `{g}` (hint: one of {})",
                bench::GROUPS.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let Some(cache_dir) = corral::compile::runner::default_cache_dir() else {
        eprintln!("corral: no cache directory (hint: set CORRAL_HOME)");
        return ExitCode::from(2);
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
        temp_root: std::env::var_os("CORRAL_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir),
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
    ExitCode::SUCCESS
}
