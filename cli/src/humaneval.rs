//! `corral humaneval`: HumanEval problems (canonical solutions, or samples with pass@k).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use corral::compile::Language;
use corral::eval::humaneval;
use corral::{ErrorKind, Policy, exit};

use crate::{output, setup};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Problems in the HumanEval format (JSON lines, optionally .gz).
    problems: PathBuf,
    /// Samples to grade (`task_id`, `completion` per line). Without it, the canonical
    /// solutions are graded. Results go to SAMPLES_results.jsonl (SAMPLES.jsonl_results.jsonl).
    #[arg(long, value_name = "SAMPLES.jsonl")]
    samples: Option<PathBuf>,
    /// The language of the problems.
    #[arg(long, value_enum, default_value = "python")]
    language: Lang,
    /// The k of pass@k, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    k: Vec<u64>,
    /// Programs run at once (default: the number of cores): as many worker processes.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Run the guests in this process instead of in locked-down worker processes (one wall
    /// instead of two; for comparisons and machines where workers cannot start).
    #[arg(long)]
    in_process: bool,
    /// A policy replacing the default HumanEval limits (bundled name or TOML file).
    #[arg(long, value_name = "NAME|PATH")]
    policy: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Lang {
    Python,
    Rust,
}

fn invalid(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("corral: {e}");
    ExitCode::from(exit::INVALID)
}

pub fn main(a: Args) -> ExitCode {
    let lang = match a.language {
        Lang::Python => Language::Python,
        Lang::Rust => Language::Rust,
    };
    let problems = match humaneval::load_problems(&a.problems) {
        Ok(p) => p,
        Err(e) => return invalid(e),
    };
    let samples = match &a.samples {
        Some(path) => match humaneval::load_samples(path) {
            Ok(s) => Some(s),
            Err(e) => return invalid(e),
        },
        None => None,
    };
    let policy = match &a.policy {
        Some(p) => match Policy::resolve(p) {
            Ok(p) => p,
            Err(e) => return invalid(e),
        },
        None => humaneval::policy(),
    };
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
    let started = std::time::Instant::now();
    let evaluation = match rt.block_on(humaneval::evaluate(
        &engine,
        &problems,
        samples,
        &humaneval::Options {
            language: lang,
            policy: Arc::new(policy),
            ks: a.k.clone(),
            jobs,
        },
        output::progress("humaneval"),
    )) {
        Ok(e) => e,
        Err(e) if *e.kind() == ErrorKind::InvalidInput => return invalid(e),
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(exit::HOST);
        }
    };
    let elapsed = started.elapsed();
    if let Some(path) = &a.samples {
        let out = humaneval::results_path(path);
        if let Err(e) = corral::hostfs::write_atomic(&out, &[evaluation.results_jsonl().as_bytes()])
        {
            eprintln!("corral: cannot write `{}`: {e}", out.display());
            return ExitCode::from(exit::HOST);
        }
        eprintln!("corral: wrote {}", out.display());
    } else {
        for r in evaluation.rows.iter().filter(|r| !r.graded.passed) {
            eprintln!(
                "✗ {}: {}",
                output::for_terminal(&r.task_id),
                output::for_terminal(&r.graded.result)
            );
        }
    }
    if a.json {
        output::print_json(&evaluation.summary_json(elapsed));
    } else {
        println!(
            "{}/{} programs passed ({} tasks) in {:.2} s",
            evaluation.passed(),
            evaluation.rows.len(),
            evaluation.tasks.len(),
            elapsed.as_secs_f64()
        );
        for (k, v) in &evaluation.pass_at_k {
            println!("pass@{k}: {v:.4}");
        }
    }
    ExitCode::from(exit::OK)
}
