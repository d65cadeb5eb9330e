//! `corral eval` and `corral humaneval`: argument handling and output.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use corral::compile::Language;
use corral::eval::{self, CaseStatus, EvalOptions, Suite, humaneval};
use corral::{Policy, record::Store};
use serde_json::json;

use crate::cli::{EvalArgs, HeLang, HumanevalArgs};
use crate::output;

fn runtime(jobs: usize) -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs.max(1))
        .enable_time()
        .build()
        .ok()
}

/// A progress bar on a terminal (nothing otherwise).
fn progress(label: &'static str) -> impl Fn(usize, usize) + Send + Sync + 'static {
    let tty = std::io::stderr().is_terminal();
    move |done, total| {
        if !tty {
            return;
        }
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let bar: String = "█".repeat(filled) + &"░".repeat(width - filled);
        eprint!("\r{label} {bar} {done}/{total}");
        if done == total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

fn engine_for(jobs: usize) -> Result<corral::Engine, ExitCode> {
    let mut config = corral::EngineConfig::default();
    if let Some(t) = std::env::var_os("CORRAL_TMPDIR") {
        config.temp_root = PathBuf::from(t);
    }
    config.cache_dir = corral::compile::runner::default_cache_dir();
    config.pool = Some(u32::try_from(jobs.max(1) * 2).unwrap_or(64));
    corral::Engine::new(config).map_err(|e| {
        eprintln!("corral: {e}");
        ExitCode::from(70)
    })
}

fn jobs(j: Option<usize>) -> usize {
    j.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

pub(crate) fn eval(a: EvalArgs) -> ExitCode {
    let mut suite = match Suite::load(&a.suite) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(p) = &a.policy {
        match Policy::resolve(p) {
            Ok(p) => {
                let p = Arc::new(p);
                suite.policy = p.clone();
                for c in &mut suite.cases {
                    c.policy = p.clone();
                }
            }
            Err(e) => {
                eprintln!("corral: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let jobs = jobs(a.jobs);
    let Some(rt) = runtime(jobs) else {
        eprintln!("corral: cannot start the runtime");
        return ExitCode::from(70);
    };
    let engine = match engine_for(jobs) {
        Ok(e) => e,
        Err(c) => return c,
    };
    let store = if a.no_record {
        None
    } else {
        a.record_dir
            .clone()
            .or_else(Store::default_location)
            .map(Store::new)
    };
    let opts = EvalOptions { jobs, store };
    let started = std::time::Instant::now();
    let results = match rt.block_on(eval::run_suite(&engine, &suite, &opts, progress("eval"))) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(if *e.kind() == corral::ErrorKind::InvalidInput {
                2
            } else {
                70
            });
        }
    };
    let elapsed = started.elapsed();
    let summary = eval::summarize(&results);
    if a.json {
        for r in &results {
            let mut v = r.report.to_json();
            v["case"] = json!(r.name);
            v["status"] = json!(r.status.label());
            v["reason"] = match &r.status {
                CaseStatus::Fail { reason } => json!(reason),
                _ => serde_json::Value::Null,
            };
            output::print_json(&v);
        }
        output::print_json(&json!({
            "summary": true,
            "cases": results.len(),
            "passed": summary.passed,
            "failed": summary.failed,
            "by_status": summary.by_status,
            "wall_time_ms": elapsed.as_secs_f64() * 1000.0,
        }));
    } else {
        for r in results.iter().filter(|r| r.status != CaseStatus::Pass) {
            let why = match &r.status {
                CaseStatus::Fail { reason } => reason.clone(),
                _ => r.report.message.clone(),
            };
            eprintln!(
                "✗ {}: {} — {}",
                r.name,
                r.status.label(),
                why.replace('\n', "\n    ")
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
        if let Err(e) = std::fs::write(j, eval::junit::render(&name, &results)) {
            eprintln!("corral: cannot write `{}`: {e}", j.display());
            return ExitCode::from(70);
        }
    }
    ExitCode::from(if summary.failed == 0 { 0 } else { 1 })
}

fn results_path(samples: &Path) -> PathBuf {
    let mut s = samples.as_os_str().to_owned();
    s.push("_results.jsonl");
    PathBuf::from(s)
}

pub(crate) fn humaneval(a: HumanevalArgs) -> ExitCode {
    let lang = match a.language {
        HeLang::Python => Language::Python,
        HeLang::Rust => Language::Rust,
    };
    let problems = match humaneval::load_problems(&a.problems) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(2);
        }
    };
    let by_id: BTreeMap<&str, &humaneval::Problem> =
        problems.iter().map(|p| (p.task_id.as_str(), p)).collect();
    let samples = match &a.samples {
        Some(path) => match humaneval::load_samples(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("corral: {e}");
                return ExitCode::from(2);
            }
        },
        None => problems
            .iter()
            .map(|p| humaneval::Sample {
                task_id: p.task_id.clone(),
                completion: p.canonical_solution.clone(),
                fields: serde_json::Map::new(),
            })
            .collect(),
    };
    let mut programs = Vec::with_capacity(samples.len());
    for s in &samples {
        match by_id.get(s.task_id.as_str()) {
            Some(p) => programs.push(humaneval::program(lang, p, &s.completion)),
            None => {
                eprintln!("corral: sample for unknown task `{}`", s.task_id);
                return ExitCode::from(2);
            }
        }
    }
    let policy = match &a.policy {
        Some(p) => match Policy::resolve(p) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("corral: {e}");
                return ExitCode::from(2);
            }
        },
        None => humaneval::policy(),
    };
    let jobs = jobs(a.jobs);
    let Some(rt) = runtime(jobs) else {
        return ExitCode::from(70);
    };
    let engine = match engine_for(jobs) {
        Ok(e) => e,
        Err(c) => return c,
    };
    let started = std::time::Instant::now();
    let graded = match rt.block_on(humaneval::grade_all(
        &engine,
        lang,
        Arc::new(policy),
        programs,
        jobs,
        progress("humaneval"),
    )) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(70);
        }
    };
    let elapsed = started.elapsed();
    let mut per_task: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (s, g) in samples.iter().zip(&graded) {
        let e = per_task.entry(s.task_id.clone()).or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::from(g.passed);
    }
    let passed = graded.iter().filter(|g| g.passed).count();
    if let Some(path) = &a.samples {
        let out = results_path(path);
        let mut text = String::new();
        for (s, g) in samples.iter().zip(&graded) {
            let mut m = s.fields.clone();
            m.insert("result".into(), json!(g.result));
            m.insert("passed".into(), json!(g.passed));
            text.push_str(&serde_json::Value::Object(m).to_string());
            text.push('\n');
        }
        if let Err(e) = std::fs::write(&out, text) {
            eprintln!("corral: cannot write `{}`: {e}", out.display());
            return ExitCode::from(70);
        }
        eprintln!("corral: wrote {}", out.display());
    } else {
        for (s, g) in samples.iter().zip(&graded).filter(|(_, g)| !g.passed) {
            eprintln!("✗ {}: {}", s.task_id, g.result);
        }
    }
    let ks = humaneval::pass_at_ks(&per_task, &a.k);
    if a.json {
        let ks_json: BTreeMap<String, f64> =
            ks.iter().map(|(k, v)| (format!("pass@{k}"), *v)).collect();
        output::print_json(&json!({
            "programs": graded.len(),
            "passed": passed,
            "tasks": per_task.len(),
            "pass_at_k": ks_json,
            "wall_time_ms": elapsed.as_secs_f64() * 1000.0,
        }));
    } else {
        println!(
            "{passed}/{} programs passed ({} tasks) in {:.2} s",
            graded.len(),
            per_task.len(),
            elapsed.as_secs_f64()
        );
        for (k, v) in &ks {
            println!("pass@{k}: {v:.4}");
        }
    }
    ExitCode::SUCCESS
}
