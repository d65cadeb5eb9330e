//! `corral eval`: compile a program once, run every case of a suite concurrently, grade each.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use corral::eval::{self, CaseStatus, EvalOptions, Suite};
use corral::record::RecordStore;
use corral::{ErrorKind, Policy, exit};

use crate::{output, setup};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The suite file (TOML; see fixtures/eval/README.md).
    suite: PathBuf,
    /// Print one JSON object per case, then a summary object.
    #[arg(long)]
    json: bool,
    /// Cases run at once (default: the number of cores): as many worker processes.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Run the guests in this process instead of in locked-down worker processes (one wall
    /// instead of two; for comparisons and machines where workers cannot start).
    #[arg(long)]
    in_process: bool,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// A policy replacing the suite's own (bundled name or TOML file).
    #[arg(long, value_name = "NAME|PATH")]
    policy: Option<String>,
    /// Do not record failing cases.
    #[arg(long)]
    no_record: bool,
    /// Where failing cases are recorded (default: the record store, as for `run`).
    #[arg(long, value_name = "DIR")]
    record_dir: Option<PathBuf>,
}

pub fn main(a: Args) -> ExitCode {
    let mut suite = match Suite::load(&a.suite) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    if let Some(p) = &a.policy {
        match Policy::resolve(p) {
            Ok(p) => suite.replace_policy(Arc::new(p)),
            Err(e) => {
                eprintln!("corral: {e}");
                return ExitCode::from(exit::INVALID);
            }
        }
    }
    let jobs = setup::jobs(a.jobs);
    let rt = match setup::multi_thread(jobs) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let engine = match setup::engine(
        Some(u32::try_from(jobs * 2).unwrap_or(64)),
        (!a.in_process).then_some(jobs),
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(exit::HOST);
        }
    };
    let store = if a.no_record {
        None
    } else {
        a.record_dir
            .clone()
            .or_else(RecordStore::default_location)
            .map(RecordStore::new)
    };
    let opts = EvalOptions { jobs, store };
    let started = std::time::Instant::now();
    let results = match rt.block_on(eval::run_suite(
        &engine,
        &suite,
        &opts,
        output::progress("eval"),
    )) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(match e.kind() {
                ErrorKind::Host => exit::HOST,
                _ => exit::INVALID,
            });
        }
    };
    let elapsed = started.elapsed();
    let summary = eval::summarize(&results);
    if a.json {
        for r in &results {
            output::print_json(&r.to_json());
        }
        output::print_json(&summary.to_json(results.len(), elapsed));
    } else {
        for r in results.iter().filter(|r| r.status != CaseStatus::Pass) {
            let why = match &r.status {
                CaseStatus::Fail { reason } => reason.clone(),
                _ => r.report.message.clone(),
            };
            eprintln!(
                "✗ {}: {} — {}",
                output::for_terminal(&r.name),
                r.status.label(),
                output::for_terminal(&why).replace('\n', "\n    ")
            );
            if let Some(rec) = &r.record {
                eprintln!("    record: {rec}");
            }
        }
        let detail: Vec<String> = summary
            .by_status
            .iter()
            .filter(|(k, _)| k.as_str() != "pass")
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        println!(
            "{} passed, {} failed{} ({} cases in {:.2} s, {} jobs)",
            summary.passed,
            summary.failed,
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", detail.join(", "))
            },
            results.len(),
            elapsed.as_secs_f64(),
            jobs
        );
    }
    if let Some(j) = &a.junit {
        let name = a
            .suite
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) =
            corral::hostfs::write_atomic(j, &[eval::junit::render(&name, &results).as_bytes()])
        {
            eprintln!("corral: cannot write `{}`: {e}", j.display());
            return ExitCode::from(exit::HOST);
        }
    }
    ExitCode::from(if summary.failed == 0 {
        exit::OK
    } else {
        exit::GUEST
    })
}
