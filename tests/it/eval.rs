//! `corral eval` and `corral humaneval`.

use std::path::{Path, PathBuf};

use corral::eval::{self, CaseStatus, EvalOptions, Suite};
use corral::record::RecordStore as Store;
use corral::{Engine, EngineConfig, LimitKind, TrapKind, Verdict};
use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::support;

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("eval::big_suite_1000_cases", big_suite),
        Trial::test("eval::python_suite", python_suite),
        Trial::test("eval::guest_sdk_result_and_metrics", sdk_suite),
        Trial::test("eval::cli_json_and_junit", cli_json_junit),
        Trial::test("eval::invalid_suites", invalid_suites),
        Trial::test(
            "eval::a_case_below_the_programs_caps_is_rejected_in_every_wall",
            case_below_caps,
        ),
        Trial::test(
            "eval::junit_with_control_characters_parses_as_xml",
            junit_control_characters,
        ),
        Trial::test("humaneval::python_canonical_and_samples", humaneval_python),
        Trial::test(
            "humaneval::all_164_canonical_solutions_pass",
            humaneval_full,
        ),
        Trial::test("humaneval::rust_canonical_and_samples", humaneval_rust),
    ]
}

fn engine(dir: &Path) -> Result<Engine, Failed> {
    std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
    Engine::new(EngineConfig {
        temp_root: dir.join("tmp"),
        cache_dir: Some(support::cache_dir()),
        pool: Some(8),
        ..EngineConfig::default()
    })
    .map_err(|e| Failed::from(e.to_string()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

fn run(suite: &Suite, dir: &Path, store: Option<Store>) -> Result<Vec<eval::CaseResult>, Failed> {
    let e = engine(dir)?;
    let opts = EvalOptions { jobs: 2, store };
    rt().block_on(eval::run_suite(&e, suite, &opts, |_, _| {}))
        .map_err(|e| Failed::from(e.to_string()))
}

fn big_suite() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let suite = Suite::load(&support::repo().join("fixtures/eval/big/suite.toml"))
        .map_err(|e| e.to_string())?;
    if suite.cases.len() != 1000 {
        return Err(format!("{} cases", suite.cases.len()).into());
    }
    let store = Store::new(dir.path().join("store"));
    let results = run(&suite, dir.path(), Some(store))?;
    let mut replayed = std::collections::BTreeSet::new();
    for r in &results {
        let kind = r.name.split('-').next().unwrap_or("");
        let ok = match (kind, &r.status) {
            ("ok" | "peek", CaseStatus::Pass) => true,
            ("wrong", CaseStatus::Fail { reason }) => reason.contains("first difference at line 1"),
            ("crash", CaseStatus::Error(Verdict::Trap(TrapKind::Unreachable))) => true,
            ("spin", CaseStatus::Error(Verdict::Limit(LimitKind::Fuel))) => true,
            ("flood", CaseStatus::Error(Verdict::Limit(LimitKind::Stdout))) => {
                r.report.stdout.len() == 4096
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "case {}: unexpected {:?}: {}",
                r.name, r.status, r.report.message
            )
            .into());
        }
        if kind == "peek"
            && String::from_utf8_lossy(&r.report.stdout).contains("case-a secret")
            && r.name != "peek-owner"
        {
            return Err(format!("case {} read another case's file", r.name).into());
        }
        // Failing cases name a record that replays identically (one of each kind).
        if r.status != CaseStatus::Pass {
            let rec = r
                .record
                .as_ref()
                .ok_or_else(|| format!("case {} has no record", r.name))?;
            if replayed.insert(kind.to_string()) {
                let e = engine(dir.path())?;
                let rep = rt()
                    .block_on(corral::replay::replay(
                        &e,
                        Path::new(rec),
                        &corral::replay::ReplayOptions::default(),
                    ))
                    .map_err(|e| format!("replay of {}: {e}", r.name))?;
                if !rep.identical {
                    return Err(
                        format!("replay of {} diverged: {:?}", r.name, rep.divergence).into(),
                    );
                }
            }
        }
    }
    let s = eval::summarize(&results);
    // 951 ok + 10 peek pass; 9 wrong, 10 crash, 10 spin, 10 flood fail (gen_cases.py).
    if (s.passed, s.failed) != (961, 39) {
        return Err(format!("summary {s:?}").into());
    }
    Ok(())
}

fn python_suite() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let suite = Suite::load(&support::repo().join("fixtures/eval/sum/suite.toml"))
        .map_err(|e| e.to_string())?;
    let results = run(&suite, dir.path(), None)?;
    let want = [
        ("ints", "pass"),
        ("floats-within-tolerance", "pass"),
        ("wrong-answer", "fail"),
        ("exception", "fail"),
        ("timeout", "limit (fuel)"),
        ("exit-code", "pass"),
    ];
    for (name, status) in want {
        let r = results
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("no case {name}"))?;
        if r.status.label() != status {
            return Err(format!(
                "{name}: {} (expected {status}): {:?}",
                r.status.label(),
                r.status
            )
            .into());
        }
    }
    Ok(())
}

/// Builds the guest-sdk example for wasm32-wasip1 (its own target dir, so no lock waits).
fn build_sdk_example() -> Result<PathBuf, Failed> {
    let repo = support::repo();
    let target = repo.join("target").join("guest-sdk-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(&repo)
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "-q",
            "-p",
            "guest-sdk",
            "--example",
            "wordstats",
            "--target",
            "wasm32-wasip1",
            "--release",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "building the SDK example failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(target.join("wasm32-wasip1/release/examples/wordstats.wasm"))
}

fn sdk_suite() -> Result<(), Failed> {
    let wasm = build_sdk_example()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::copy(
        support::repo().join("fixtures/eval/sdk/suite.toml"),
        dir.path().join("suite.toml"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::copy(&wasm, dir.path().join("wordstats.wasm")).map_err(|e| e.to_string())?;
    let suite = Suite::load(&dir.path().join("suite.toml")).map_err(|e| e.to_string())?;
    let results = run(&suite, dir.path(), None)?;
    let three = &results[0];
    if three.status != CaseStatus::Pass
        || three.report.result.as_deref() != Some("{\"words\": 3, \"longest\": 5}")
        || three.report.metrics.get("words") != Some(&3.0)
        || three.report.metrics.get("longest") != Some(&5.0)
    {
        return Err(format!(
            "{:?} {:?} {:?}",
            three.status, three.report.result, three.report.metrics
        )
        .into());
    }
    let empty = &results[1];
    let failed_check = empty
        .report
        .result
        .as_deref()
        .is_some_and(|r| r.contains("check_failed"));
    if empty.status != CaseStatus::Error(Verdict::Trap(TrapKind::Unreachable)) || !failed_check {
        return Err(format!("{:?} {:?}", empty.status, empty.report.result).into());
    }
    Ok(())
}

fn cli_json_junit() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let junit = dir.path().join("report.xml");
    let out = crate::cli::corral()
        .arg("eval")
        .arg("--record-dir")
        .arg(dir.path().join("store"))
        .args(["--json", "--jobs", "2", "--junit"])
        .arg(&junit)
        .arg(support::repo().join("fixtures/eval/sum/suite.toml"))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.code() != Some(1) {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if lines.len() != 7
        || lines[6]["summary"] != true
        || lines[6]["passed"] != 3
        || lines[6]["failed"] != 3
    {
        return Err(format!("{lines:?}").into());
    }
    for l in &lines[..6] {
        for k in crate::cli::REPORT_KEYS.iter().chain(&["case", "status"]) {
            if l.get(*k).is_none() {
                return Err(format!("case object lacks `{k}`: {l}").into());
            }
        }
        if l["status"] != "pass" && l["record"].is_null() {
            return Err(format!("failing case without a record: {l}").into());
        }
    }
    let xml = std::fs::read_to_string(&junit).map_err(|e| e.to_string())?;
    if !xml.contains("tests=\"6\"")
        || xml.matches("<testcase").count() != 6
        || !xml.contains("<failure")
    {
        return Err(xml.into());
    }
    Ok(())
}

fn invalid_suites() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cases = [
        (
            "unknown-key.toml",
            "program = \"x.py\"\nprogramme = 1\n",
            "unknown-key.toml:2:1: unknown field `programme`",
        ),
        (
            "over.toml",
            "program = \"x.py\"\n[[case]]\nname = \"a\"\nlimits = { fuel = 99_000_000_000 }\n",
            "case `a`: `limits.fuel` = 99000000000 is above the policy's 2000000000",
        ),
        (
            "dup.toml",
            "program = \"x.py\"\n[[case]]\nname = \"a\"\n[[case]]\nname = \"a\"\n",
            "case `a`: duplicate case name",
        ),
        (
            "missing.toml",
            "program = \"x.py\"\n[[case]]\nstdin_file = \"nope.txt\"\n",
            "cannot read `nope.txt`",
        ),
    ];
    for (file, text, want) in cases {
        let p = dir.path().join(file);
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        match Suite::load(&p) {
            Ok(_) => return Err(format!("{file} was accepted").into()),
            Err(e) if e.to_string().contains(want) => {}
            Err(e) => return Err(format!("{file}: {e} (wanted {want})").into()),
        }
    }
    let out = crate::cli::corral()
        .arg("eval")
        .arg(dir.path().join("unknown-key.toml"))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.code() != Some(2) {
        return Err(format!("invalid suite must exit 2, got {:?}", out.status.code()).into());
    }
    Ok(())
}

fn humaneval_cmd(dir: &Path, args: &[&str]) -> Result<Value, Failed> {
    let _ = dir;
    let out = crate::cli::corral()
        .arg("humaneval")
        .args(args)
        .arg("--json")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("humaneval failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| Failed::from(format!("{e}: {}", String::from_utf8_lossy(&out.stdout))))
}

fn results(path: &Path) -> Result<Vec<Value>, Failed> {
    std::fs::read_to_string(path)
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| Failed::from(e.to_string())))
        .collect()
}

/// The real HumanEval set (as shipped on PyPI): every canonical solution passes sandboxed.
fn humaneval_full() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let problems = support::repo().join("fixtures/humaneval/HumanEval.jsonl.gz");
    let s = humaneval_cmd(dir.path(), &[problems.to_str().unwrap_or("")])?;
    if s["passed"] != 164 || s["programs"] != 164 || s["tasks"] != 164 {
        return Err(format!("HumanEval canonical solutions: {s}").into());
    }
    Ok(())
}

fn humaneval_python() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fx = support::repo().join("fixtures/humaneval");
    let problems = fx.join("problems.jsonl");
    let canon = humaneval_cmd(dir.path(), &[problems.to_str().unwrap_or("")])?;
    if canon["passed"] != 5 || canon["programs"] != 5 {
        return Err(format!("canonical solutions: {canon}").into());
    }
    let samples = dir.path().join("samples.jsonl");
    std::fs::copy(fx.join("samples.jsonl"), &samples).map_err(|e| e.to_string())?;
    let s = humaneval_cmd(
        dir.path(),
        &[
            problems.to_str().unwrap_or(""),
            "--samples",
            samples.to_str().unwrap_or(""),
            "--k",
            "1,3",
        ],
    )?;
    let rows = results(&dir.path().join("samples.jsonl_results.jsonl"))?;
    if rows.len() != 17 {
        return Err(format!("{} result rows", rows.len()).into());
    }
    for r in &rows {
        let note = r["note"].as_str().unwrap_or("");
        let passed = r["passed"].as_bool().unwrap_or(false);
        let result = r["result"].as_str().unwrap_or("");
        let expect_pass = note.starts_with("correct") || note.starts_with("filesystem");
        let ok = passed == expect_pass
            && match note {
                "infinite loop" | "runaway recursion" => result == "timed out",
                "huge output" => result.contains("stdout"),
                "memory bomb" => result.contains("memory"),
                "network attempt" => result.contains("ModuleNotFoundError"),
                // Issue 18: found by the compile check, before anything runs.
                "syntax error" => {
                    result == "failed: compile error: SyntaxError: '(' was never closed"
                }
                n if n.starts_with("wrong") => result.contains("AssertionError"),
                _ => true,
            };
        if !ok || result.contains(support::secret()) {
            return Err(format!("sample {note}: {r}").into());
        }
    }
    // Per task (n, c): 0: (4, 2), 1: (3, 1), 2: (3, 1), 3: (3, 1), 4: (4, 1).
    let want1 = (0.5 + 3.0 * (1.0 / 3.0) + 0.25) / 5.0;
    // pass@3 of (4, 1) is 1 - C(3,3)/C(4,3) = 0.75; the other tasks 1.
    let want3 = (4.0 + 0.75) / 5.0;
    let got1 = s["pass_at_k"]["pass@1"].as_f64().unwrap_or(-1.0);
    let got3 = s["pass_at_k"]["pass@3"].as_f64().unwrap_or(-1.0);
    if (got1 - want1).abs() > 1e-9 || (got3 - want3).abs() > 1e-9 {
        return Err(format!("pass@k: {s}").into());
    }
    Ok(())
}

fn humaneval_rust() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fx = support::repo().join("fixtures/humaneval");
    let problems = fx.join("rust_problems.jsonl");
    let p = problems.to_str().unwrap_or("");
    let canon = humaneval_cmd(dir.path(), &[p, "--language", "rust"])?;
    if canon["passed"] != 2 {
        return Err(format!("canonical: {canon}").into());
    }
    let samples = dir.path().join("rust_samples.jsonl");
    std::fs::copy(fx.join("rust_samples.jsonl"), &samples).map_err(|e| e.to_string())?;
    humaneval_cmd(
        dir.path(),
        &[
            p,
            "--language",
            "rust",
            "--samples",
            samples.to_str().unwrap_or(""),
        ],
    )?;
    for r in results(&dir.path().join("rust_samples.jsonl_results.jsonl"))? {
        let note = r["note"].as_str().unwrap_or("");
        let result = r["result"].as_str().unwrap_or("");
        let ok = match note {
            "correct" => result == "passed",
            "wrong" => result.contains("assertion"),
            "infinite loop" => result == "timed out",
            "compile-time host read" => {
                result.contains("compile error") && !result.contains("root:")
            }
            "syntax error" => result.contains("compile error"),
            _ => false,
        };
        if !ok {
            return Err(format!("sample {note}: {r}").into());
        }
    }
    Ok(())
}

/// A guest that prints ANSI escapes, a NUL and other control characters, under case names,
/// expectations and outputs full of them: the JUnit file must parse with a strict XML parser
/// (Python's `xml.etree`), and nothing raw may reach a terminal line.
const NOISY_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\1b[31mred\00nul\07bell\1b[0m\0b\0c\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 24))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// A case whose `limits` lower `memory_bytes` below the memory the program declares: the
/// same `rejected` verdict in this process and in a worker (the worker path once made it a
/// host error, and `corral serve` a 500).
fn case_below_caps() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("p.wat"),
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (func (export "_start") (call $exit (i32.const 0))))"#,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("s.toml"),
        "program = \"p.wat\"\n[[case]]\nname = \"small\"\nlimits = { memory_bytes = 849 }\n\n[[case]]\nname = \"fits\"\n",
    )
    .map_err(|e| e.to_string())?;
    for wall in [&["--in-process"][..], &[]] {
        let out = crate::cli::corral()
            .arg("eval")
            .arg("--json")
            .args(wall)
            .arg(dir.path().join("s.toml"))
            .env("TMPDIR", dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let verdict = |name: &str| {
            lines
                .iter()
                .find(|l| l["case"] == name)
                .map(|l| l["verdict"].clone())
        };
        if out.status.code() != Some(1)
            || verdict("small") != Some(Value::from("rejected"))
            || verdict("fits") != Some(Value::from("ok"))
        {
            return Err(format!(
                "{wall:?}: exit {:?}, {lines:?}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    Ok(())
}

fn junit_control_characters() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("noisy.wat"), NOISY_WAT).map_err(|e| e.to_string())?;
    let suite = r#"program = "noisy.wat"
compare = "exact"

[[case]]
name = "pass \u001b[1mbold\u001b[0m"
expect_stdout = "\u001b[31mred\u0000nul\u0007bell\u001b[0m\u000b\u000c\n"

[[case]]
name = "fail \u0000 nul \u001b]0;title\u0007 \u0008"
expect_stdout = "\u001b[32mgreen\u0000\n"

[[case]]
name = "error \u001b[2J"
limits = { fuel = 1 }
"#;
    std::fs::write(dir.path().join("suite.toml"), suite).map_err(|e| e.to_string())?;
    let suite = Suite::load(&dir.path().join("suite.toml")).map_err(|e| e.to_string())?;
    let results = run(&suite, dir.path(), None)?;
    let statuses: Vec<String> = results.iter().map(|r| r.status.label()).collect();
    if statuses != ["pass", "fail", "limit (fuel)"] {
        return Err(format!("unexpected statuses {statuses:?}").into());
    }
    let xml = eval::junit::render("suite \u{1b}[4m\u{0}", &results);
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, &xml).map_err(|e| e.to_string())?;
    let script = "import sys, xml.etree.ElementTree as E\n\
        t = E.parse(sys.argv[1]).getroot()\n\
        cases = t.findall('.//testcase')\n\
        print(len(cases), len(t.findall('.//failure')), len(t.findall('.//error')))\n\
        print('|'.join(c.get('name') for c in cases))\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the JUnit file does not parse as XML: {}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    if lines.next() != Some("3 1 1") {
        return Err(format!("wrong testcase/failure/error counts: {text}").into());
    }
    let names = lines.next().unwrap_or("");
    for want in ["pass ", "bold", "fail ", " nul ", "error "] {
        if !names.contains(want) {
            return Err(format!("case names lost `{want}`: {names:?}").into());
        }
    }
    if xml.contains('\u{1b}') || xml.contains('\u{0}') || xml.contains("&#x") {
        return Err(format!("raw or forbidden characters in the XML:\n{xml}").into());
    }
    Ok(())
}
