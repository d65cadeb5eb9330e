//! HumanEval: problems (`task_id`, `prompt`, `canonical_solution`, `test`, `entry_point`),
//! samples (`task_id`, `completion`), results and pass@k — every program sandboxed.
//!
//! - Python: program = `prompt + completion + "\n" + test + "\n" + "check(ENTRY_POINT)\n"`,
//!   run by the CPython runner; it passes when it completes with exit code 0.
//! - Rust (HumanEval-Rust: the test is a `#[cfg(test)]` module): program = `prompt +
//!   completion + "\n" + test`, compiled as a test harness (`rustc --test`, in the jail); it
//!   passes when every test passes (a failing test aborts the module: `panic = abort`).
//!
//! Default limits per program (the `humaneval` policy below): 10¹⁰ fuel, 10 s of wall time,
//! 512 MiB of memory, 1 MiB of output each for stdout and stderr, no filesystem, no
//! environment. The reference harness gives each program 3 s of wall time; fuel makes the
//! cut deterministic instead.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::compile::{Language, Source};
use crate::engine::Engine;
use crate::error::Error;
use crate::job::{self, Build, Invocation, Program, Recording};
use crate::policy::Policy;
use crate::verdict::Verdict;

/// The policy HumanEval programs run under by default.
pub fn policy() -> Policy {
    let text = "extends = \"strict\"\n[limits]\nfuel = 10_000_000_000\nwall_time_ms = 10_000\nmemory_bytes = 536_870_912\n";
    Policy::parse("<humaneval>", text)
        .map(|p| p.with_name("humaneval"))
        .unwrap_or_else(|_| Policy::strict())
}

/// One problem.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    /// E.g. `HumanEval/0`.
    pub task_id: String,
    /// The function signature and docstring.
    pub prompt: String,
    /// The reference body.
    #[serde(default)]
    pub canonical_solution: String,
    /// The tests.
    pub test: String,
    /// The function under test.
    #[serde(default)]
    pub entry_point: String,
}

/// One sample to grade: its `task_id`, `completion`, and every other field of its line (kept
/// for the results file).
#[derive(Debug, Clone)]
pub struct Sample {
    /// The problem.
    pub task_id: String,
    /// The generated body.
    pub completion: String,
    /// The whole JSON object of the line.
    pub fields: Map<String, Value>,
}

/// Reads a JSON-lines file (plain, or gzip when the name ends in `.gz`).
/// One JSON object per line, with its 1-based line number.
type JsonLines = Vec<(usize, Map<String, Value>)>;

fn read_jsonl(path: &Path) -> Result<JsonLines, Error> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid_input(format!("cannot read `{shown}`: {e}")))?;
    let mut text = String::new();
    let limit = 1u64 << 30;
    let res = if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file)
            .take(limit)
            .read_to_string(&mut text)
    } else {
        file.take(limit).read_to_string(&mut text)
    };
    res.map_err(|e| Error::invalid_input(format!("cannot read `{shown}`: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error::invalid_input(format!("{shown}:{}:{}: {e}", i + 1, e.column())))?;
        match v {
            Value::Object(m) => out.push((i + 1, m)),
            _ => {
                return Err(Error::invalid_input(format!(
                    "{shown}:{}: not a JSON object",
                    i + 1
                )));
            }
        }
    }
    Ok(out)
}

/// Loads problems.
///
/// # Errors
///
/// Unreadable files, malformed lines, missing fields, duplicate task ids.
pub fn load_problems(path: &Path) -> Result<Vec<Problem>, Error> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (line, m) in read_jsonl(path)? {
        let p: Problem = serde_json::from_value(Value::Object(m))
            .map_err(|e| Error::invalid_input(format!("{}:{line}: {e}", path.display())))?;
        if !seen.insert(p.task_id.clone()) {
            return Err(Error::invalid_input(format!(
                "{}:{line}: duplicate task_id `{}`",
                path.display(),
                p.task_id
            )));
        }
        out.push(p);
    }
    Ok(out)
}

/// Loads samples.
///
/// # Errors
///
/// Unreadable files, malformed lines, missing `task_id`/`completion`.
pub fn load_samples(path: &Path) -> Result<Vec<Sample>, Error> {
    let mut out = Vec::new();
    for (line, m) in read_jsonl(path)? {
        let get = |k: &str| -> Result<String, Error> {
            m.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "{}:{line}: missing string field `{k}`",
                        path.display()
                    ))
                })
        };
        out.push(Sample {
            task_id: get("task_id")?,
            completion: get("completion")?,
            fields: m,
        });
    }
    Ok(out)
}

/// The program for `problem` with `completion`.
pub fn program(lang: Language, problem: &Problem, completion: &str) -> String {
    match lang {
        Language::Rust => format!("{}{}\n{}\n", problem.prompt, completion, problem.test),
        _ => format!(
            "{}{}\n{}\ncheck({})\n",
            problem.prompt, completion, problem.test, problem.entry_point
        ),
    }
}

/// The unbiased pass@k estimator (Chen et al., 2021): `1 - C(n-c, k) / C(n, k)`, computed as
/// a product for numerical stability.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> f64 {
    if n.saturating_sub(c) < k {
        return 1.0;
    }
    let mut prod = 1.0f64;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    1.0 - prod
}

/// pass@k per requested k: the mean over tasks, for the ks every task has enough samples for
/// (as the reference harness does).
pub fn pass_at_ks(per_task: &BTreeMap<String, (u64, u64)>, ks: &[u64]) -> BTreeMap<u64, f64> {
    let mut out = BTreeMap::new();
    if per_task.is_empty() {
        return out;
    }
    for &k in ks {
        if k == 0 || per_task.values().any(|(n, _)| *n < k) {
            continue;
        }
        let sum: f64 = per_task.values().map(|(n, c)| pass_at_k(*n, *c, k)).sum();
        out.insert(k, sum / per_task.len() as f64);
    }
    out
}

/// The graded outcome of one program.
#[derive(Debug, Clone)]
pub struct Graded {
    /// Passed every test.
    pub passed: bool,
    /// `passed`, `timed out`, or `failed: …` (like the reference harness).
    pub result: String,
    /// The run's verdict kind.
    pub verdict: String,
    /// Fuel used.
    pub fuel: u64,
}

/// The most telling line of a failed program's stderr: a Rust panic's message (the line
/// after `panicked at`), else the last line that is not a hint.
fn last_line(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let pick = lines
        .iter()
        .position(|l| l.contains("panicked at"))
        .and_then(|i| lines.get(i + 1))
        .or_else(|| lines.iter().rev().find(|l| !l.starts_with("note:")))
        .copied()
        .unwrap_or("");
    pick.chars().take(300).collect()
}

/// Compiles (Rust, as a test harness) or prepares (Python) and runs one program under
/// `policy`, through the job stage.
///
/// # Errors
///
/// Host failures only.
pub async fn grade(
    engine: &Engine,
    lang: Language,
    source: String,
    policy: &Policy,
) -> Result<Graded, Error> {
    let (name, build, args): (&str, Build, &[&str]) = if lang == Language::Rust {
        (
            "main.rs",
            Build::RustTests,
            &["--test-threads=1", "--nocapture"],
        )
    } else {
        ("main.py", Build::Program, &[])
    };
    let source = Source::new(source.into_bytes(), name, lang);
    let program = Program::build(engine, &source, policy, build)?;
    let invocation = Invocation {
        args: args.iter().map(|a| (*a).to_string()).collect(),
        ..Invocation::default()
    };
    let report = job::run(engine, &program, policy, &invocation, Recording::Off)
        .await?
        .report;
    let verdict = report.verdict.kind().to_string();
    let (passed, result) = match &report.verdict {
        Verdict::Ok => (true, "passed".to_string()),
        Verdict::Limit(crate::LimitKind::Fuel | crate::LimitKind::WallTime) => {
            (false, "timed out".to_string())
        }
        Verdict::Exit(_) | Verdict::Trap(_) => {
            let why = last_line(&report.stderr);
            (
                false,
                if why.is_empty() {
                    format!("failed: {}", report.message)
                } else {
                    format!("failed: {why}")
                },
            )
        }
        Verdict::CompileError(diag) => {
            let first = job::compile_error_line(lang, diag);
            (false, format!("failed: compile error: {first}"))
        }
        _ => (false, format!("failed: {}", report.message)),
    };
    Ok(Graded {
        passed,
        result,
        verdict,
        fuel: report.fuel_consumed,
    })
}

/// Grades every (problem, completion) pair, `jobs` at a time; `progress(done, total)`.
///
/// # Errors
///
/// Host failures.
pub async fn grade_all(
    engine: &Engine,
    lang: Language,
    policy: Arc<Policy>,
    programs: Vec<String>,
    jobs: usize,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<Vec<Graded>, Error> {
    let total = programs.len();
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, src) in programs.into_iter().enumerate() {
        let (engine, policy, permits) = (engine.clone(), policy.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            // Compiling Rust blocks (a jailed rustc); keep it off the async workers.
            let g = if lang == Language::Rust {
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    handle.block_on(grade(&engine, lang, src, &policy))
                })
                .await
                .map_err(|e| Error::host(format!("a grading task failed: {e}")))??
            } else {
                grade(&engine, lang, src, &policy).await?
            };
            Ok::<_, Error>((i, g))
        });
    }
    let mut out: Vec<Option<Graded>> = vec![None; total];
    let mut done = 0;
    while let Some(j) = tasks.join_next().await {
        let (i, g) = j.map_err(|e| Error::host(format!("a grading task failed: {e}")))??;
        out[i] = Some(g);
        done += 1;
        progress(done, total);
    }
    Ok(out.into_iter().flatten().collect())
}

/// One graded program, as a row of the results file: the sample's own fields plus
/// `result` and `passed` (the reference harness's shape).
#[derive(Debug, Clone)]
pub struct ResultRow {
    /// The problem.
    pub task_id: String,
    /// Every field of the sample's line (empty for canonical solutions).
    pub fields: Map<String, Value>,
    /// How the program did.
    pub graded: Graded,
}

impl ResultRow {
    /// The row as the reference harness writes it: the sample's fields, `result`, `passed`.
    pub fn to_json(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert("result".into(), Value::from(self.graded.result.clone()));
        m.insert("passed".into(), Value::from(self.graded.passed));
        Value::Object(m)
    }
}

/// A whole evaluation: the rows in sample order, per-task tallies and pass@k.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// One row per program, in the order of the samples (or problems).
    pub rows: Vec<ResultRow>,
    /// Per task: (programs, programs that passed).
    pub tasks: BTreeMap<String, (u64, u64)>,
    /// pass@k for each requested k that every task has enough samples for.
    pub pass_at_k: BTreeMap<u64, f64>,
}

impl Evaluation {
    /// Programs that passed.
    pub fn passed(&self) -> usize {
        self.rows.iter().filter(|r| r.graded.passed).count()
    }

    /// The results file: one JSON object per line ([`ResultRow::to_json`]).
    pub fn results_jsonl(&self) -> String {
        let mut text = String::new();
        for r in &self.rows {
            text.push_str(&r.to_json().to_string());
            text.push('\n');
        }
        text
    }

    /// The summary object of `corral humaneval --json`.
    pub fn summary_json(&self, wall_time: std::time::Duration) -> Value {
        let ks: Map<String, Value> = self
            .pass_at_k
            .iter()
            .map(|(k, v)| (format!("pass@{k}"), Value::from(*v)))
            .collect();
        serde_json::json!({
            "programs": self.rows.len(),
            "passed": self.passed(),
            "tasks": self.tasks.len(),
            "pass_at_k": ks,
            "wall_time_ms": wall_time.as_secs_f64() * 1000.0,
        })
    }
}

/// Where the results of `SAMPLES` go: `SAMPLES_results.jsonl` (the reference harness's name).
pub fn results_path(samples: &Path) -> std::path::PathBuf {
    let mut s = samples.as_os_str().to_owned();
    s.push("_results.jsonl");
    std::path::PathBuf::from(s)
}

/// How [`evaluate`] grades.
#[derive(Debug, Clone)]
pub struct Options {
    /// The language of the problems (Python or Rust).
    pub language: Language,
    /// The policy every program runs under (by default [`policy`]).
    pub policy: Arc<Policy>,
    /// The k of pass@k.
    pub ks: Vec<u64>,
    /// Programs run at once.
    pub jobs: usize,
}

/// Grades `samples` (or, without samples, every problem's canonical solution), `jobs` at a
/// time, calling `progress(done, total)`; tallies per task and computes pass@k.
///
/// # Errors
///
/// A sample for a task that is not among the problems
/// ([`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput)); host failures.
pub async fn evaluate(
    engine: &Engine,
    problems: &[Problem],
    samples: Option<Vec<Sample>>,
    opts: &Options,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> Result<Evaluation, Error> {
    let lang = opts.language;
    let by_id: BTreeMap<&str, &Problem> =
        problems.iter().map(|p| (p.task_id.as_str(), p)).collect();
    let samples = samples.unwrap_or_else(|| {
        problems
            .iter()
            .map(|p| Sample {
                task_id: p.task_id.clone(),
                completion: p.canonical_solution.clone(),
                fields: Map::new(),
            })
            .collect()
    });
    let mut programs = Vec::with_capacity(samples.len());
    for s in &samples {
        let p = by_id.get(s.task_id.as_str()).ok_or_else(|| {
            Error::invalid_input(format!("sample for unknown task `{}`", s.task_id))
        })?;
        programs.push(program(lang, p, &s.completion));
    }
    let graded = grade_all(
        engine,
        lang,
        opts.policy.clone(),
        programs,
        opts.jobs,
        progress,
    )
    .await?;
    let mut tasks: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut rows = Vec::with_capacity(samples.len());
    for (s, g) in samples.into_iter().zip(graded) {
        let e = tasks.entry(s.task_id.clone()).or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::from(g.passed);
        rows.push(ResultRow {
            task_id: s.task_id,
            fields: s.fields,
            graded: g,
        });
    }
    let pass_at_k = pass_at_ks(&tasks, &opts.ks);
    Ok(Evaluation {
        rows,
        tasks,
        pass_at_k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference implementation, as a direct formula with exact binomials.
    fn reference(n: u64, c: u64, k: u64) -> f64 {
        fn comb(n: u64, k: u64) -> f64 {
            if k > n {
                return 0.0;
            }
            let mut r = 1.0;
            for i in 0..k {
                r = r * (n - i) as f64 / (i + 1) as f64;
            }
            r
        }
        if n - c < k {
            1.0
        } else {
            1.0 - comb(n - c, k) / comb(n, k)
        }
    }

    #[test]
    fn pass_at_k_matches_the_reference_estimator() {
        // Known values: n=10, c=3 → pass@1 = 0.3; pass@10 = 1.
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        assert!((pass_at_k(10, 3, 10) - 1.0).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 0, 1), 0.0);
        assert!((pass_at_k(2, 1, 1) - 0.5).abs() < 1e-12);
        // n=20, c=5, k=10: 1 - C(15,10)/C(20,10) = 1 - 3003/184756
        assert!((pass_at_k(20, 5, 10) - (1.0 - 3003.0 / 184756.0)).abs() < 1e-12);
        for n in 1..30u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let (a, b) = (pass_at_k(n, c, k), reference(n, c, k));
                    assert!((a - b).abs() < 1e-9, "n={n} c={c} k={k}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn pass_at_ks_skips_ks_without_enough_samples() {
        let mut t = BTreeMap::new();
        t.insert("a".to_string(), (10u64, 5u64));
        t.insert("b".to_string(), (10, 0));
        let r = pass_at_ks(&t, &[1, 10, 100]);
        assert!((r[&1] - 0.25).abs() < 1e-12);
        assert!((r[&10] - 0.5).abs() < 1e-12);
        assert!(!r.contains_key(&100));
    }

    #[test]
    fn programs_are_assembled_like_the_reference() {
        let p = Problem {
            task_id: "T/0".into(),
            prompt: "def f(x):\n".into(),
            canonical_solution: "    return x\n".into(),
            test: "def check(c):\n    assert c(1) == 1\n".into(),
            entry_point: "f".into(),
        };
        assert_eq!(
            program(Language::Python, &p, &p.canonical_solution),
            "def f(x):\n    return x\n\ndef check(c):\n    assert c(1) == 1\n\ncheck(f)\n"
        );
    }
}
