//! `corral check`: compile if needed and admit, without running anything.

use std::path::PathBuf;
use std::process::ExitCode;

use corral::exit;
use corral::job::{self, Program};

use crate::job_args::JobArgs;
use crate::{output, setup};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The program: .wasm, .wat, .rs, .c, .cpp, .py or .js.
    file: PathBuf,
    #[command(flatten)]
    job: JobArgs,
}

pub fn main(a: Args) -> ExitCode {
    let json = a.job.json;
    let job = match a.job.job(&a.file, Vec::new()) {
        Ok(j) => j,
        Err(e) => {
            let report = job::error_report(&e);
            output::finish(&report, json, false, report.verdict.process_exit_status())
        }
    };
    let engine = match setup::engine(None, None) {
        Ok(e) => e,
        Err(e) => output::finish(&job::error_report(&e), json, false, exit::HOST),
    };
    let report = match Program::prepare(&engine, &job.source, &job.policy) {
        // A Python program's compile check runs the runner (none of the program).
        Ok(program) => match setup::current_thread() {
            Ok(rt) => rt
                .block_on(job::check(&engine, &program, &job.policy))
                .unwrap_or_else(|e| job::error_report(&e)),
            Err(code) => {
                engine.remove_work_dir();
                return code;
            }
        },
        Err(e) => job::error_report(&e),
    };
    engine.remove_work_dir();
    output::finish(&report, json, false, report.verdict.process_exit_status())
}
