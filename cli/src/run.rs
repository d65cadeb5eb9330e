//! `corral run`: compile if needed, admit, run once, print a report, record the run.

use std::path::PathBuf;
use std::process::ExitCode;

use corral::job::{self, Program, Recording};
use corral::record::RecordStore;
use corral::{RunReport, exit};

use crate::job_args::JobArgs;
use crate::{output, setup};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The program: .wasm, .wat, .rs, .c, .cpp, .py or .js.
    file: PathBuf,
    #[command(flatten)]
    job: JobArgs,
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
    /// Run the guest in a locked-down worker process (a second wall: seccomp, Landlock, no
    /// network, rlimits) instead of in this process.
    #[arg(long)]
    isolate: bool,
    /// Arguments passed to the guest after `argv[0]` (which is always `main`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

pub fn main(a: Args) -> ExitCode {
    let json = a.job.json;
    let job = match a.job.job(&a.file, a.args) {
        Ok(j) => j,
        Err(e) => {
            let report = job::error_report(&e);
            output::finish(&report, json, false, report.verdict.process_exit_status())
        }
    };
    let rt = match setup::current_thread() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let engine = match setup::engine(None, a.isolate.then_some(1)) {
        Ok(e) => e,
        Err(e) => output::finish(&job::error_report(&e), json, false, exit::HOST),
    };
    let recording = match (a.no_record, a.trace) {
        (false, _) => Recording::On,
        (true, true) => Recording::Trail,
        (true, false) => Recording::Off,
    };
    let outcome = Program::prepare(&engine, &job.source, &job.policy).map(|program| {
        rt.block_on(job::run(
            &engine,
            &program,
            &job.policy,
            &job.invocation,
            recording,
        ))
    });
    let mut outcome = match outcome.and_then(|o| o) {
        Ok(o) => o,
        Err(e) => {
            engine.remove_work_dir();
            let report = job::error_report(&e);
            let status = report.verdict.process_exit_status();
            output::finish(&report, json, false, status)
        }
    };
    if !a.no_record {
        match a.record_dir.clone().or_else(RecordStore::default_location) {
            Some(dir) => {
                if let Err(e) = outcome.write_record(&engine, &RecordStore::new(dir)) {
                    eprintln!("corral: warning: the run record could not be written: {e}");
                }
            }
            None => eprintln!(
                "corral: warning: no place for run records (set CORRAL_HOME or use --record-dir)"
            ),
        }
    }
    if a.trace
        && let Some(trail) = outcome.trail()
    {
        eprint!("{}", output::trace_text(trail));
    }
    engine.remove_work_dir();
    let report: &RunReport = &outcome.report;
    output::finish(
        report,
        json,
        outcome.ran(),
        report.verdict.process_exit_status(),
    )
}
