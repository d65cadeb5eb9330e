//! The `corral` binary: JSON report keys, exit statuses, help text.

use std::path::Path;
use std::process::{Command, Output};

use libtest_mimic::{Failed, Trial};
use serde_json::Value;

use crate::support;

/// Keys INTERFACE.md says are always present.
pub const REPORT_KEYS: [&str; 13] = [
    "verdict",
    "exit_code",
    "limit",
    "trap",
    "message",
    "stdout",
    "stderr",
    "stdout_truncated",
    "stderr_truncated",
    "fuel_consumed",
    "module_hash",
    "record",
    "verdict",
];

pub fn corral() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_corral"));
    c.env(support::SECRET_ENV, support::secret());
    c.env(
        "CORRAL_HOME",
        support::repo().join("target").join("corral-test-home"),
    );
    c
}

pub fn trials() -> Vec<Trial> {
    let mut t = Vec::new();
    for (name, wat, verdict, status) in CASES {
        t.push(Trial::test(format!("cli::json::{name}"), move || {
            json_case(wat, verdict, *status)
        }));
    }
    t.push(Trial::test("cli::json::invalid_input", invalid_input));
    t.push(Trial::test("cli::json::compile_error", compile_error));
    t.push(Trial::test(
        "cli::json::rejected_component",
        rejected_component,
    ));
    t.push(Trial::test("cli::json::denied", denied));
    t.push(Trial::test("cli::check", check_cmd));
    t.push(Trial::test(
        "cli::issue_11_check_rejects_what_run_cannot_instantiate",
        check_uninstantiable,
    ));
    t.push(Trial::test("cli::help_mentions_every_option", help));
    t.push(Trial::test("cli::bad_option_exits_2", bad_option));
    t.push(Trial::test("cli::args_env_stdin", args_env_stdin));
    t.push(Trial::test("cli::nul_in_arg_is_invalid_input", nul_arg));
    t
}

const CASES: &[(&str, &str, &str, i32)] = &[
    ("ok", "(module (func (export \"_start\")))", "ok", 0),
    (
        "exit",
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
            (memory (export "memory") 1) (func (export "_start") (call $e (i32.const 7))))"#,
        "exit",
        1,
    ),
    (
        "trap",
        "(module (func (export \"_start\") unreachable))",
        "trap",
        1,
    ),
    (
        "limit",
        "(module (func (export \"_start\") (loop br 0)))",
        "limit",
        1,
    ),
    (
        "rejected",
        r#"(module (import "evil" "get_secret" (func)) (func (export "_start")))"#,
        "rejected",
        1,
    ),
];

fn tmpdir() -> Result<tempfile::TempDir, Failed> {
    tempfile::tempdir().map_err(|e| Failed::from(e.to_string()))
}

fn run_json(dir: &Path, file: &str, extra: &[&str]) -> Result<(Output, Value), Failed> {
    let mut cmd = corral();
    cmd.current_dir(dir).arg("run").arg(file).arg("--json");
    if !extra.contains(&"--policy") {
        // A small fuel budget keeps the `limit` case fast.
        std::fs::write(dir.join("small.toml"), "[limits]\nfuel = 20_000_000\n")
            .map_err(|e| e.to_string())?;
        cmd.args(["--policy", "small.toml"]);
    }
    cmd.args(extra);
    let out = cmd.output().map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    Ok((out, v))
}

fn has_all_keys(v: &Value) -> Result<(), Failed> {
    for k in REPORT_KEYS {
        if v.get(k).is_none() {
            return Err(format!("key `{k}` missing from {v}").into());
        }
    }
    Ok(())
}

fn json_case(wat: &str, verdict: &str, status: i32) -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(d.path().join("m.wat"), wat).map_err(|e| e.to_string())?;
    let (out, v) = run_json(d.path(), "m.wat", &[])?;
    has_all_keys(&v)?;
    if v["verdict"] != verdict {
        return Err(format!("verdict {} != {verdict}: {v}", v["verdict"]).into());
    }
    if out.status.code() != Some(status) {
        return Err(format!("exit status {:?} != {status}", out.status.code()).into());
    }
    match verdict {
        "ok" if v["exit_code"] != 0 => return Err("ok needs exit_code 0".into()),
        "exit" if v["exit_code"] != 7 => return Err("exit needs exit_code 7".into()),
        "trap" if v["trap"] != "unreachable" => return Err("trap kind".into()),
        "limit" if v["limit"] != "fuel" => return Err("limit kind".into()),
        "rejected"
            if !v["message"]
                .as_str()
                .unwrap_or("")
                .contains("evil::get_secret") =>
        {
            return Err("rejection must name the import".into());
        }
        _ => {}
    }
    if !matches!(verdict, "ok" | "exit") && !v["exit_code"].is_null() {
        return Err("exit_code must be null unless ok/exit".into());
    }
    Ok(())
}

fn invalid_input() -> Result<(), Failed> {
    let d = tmpdir()?;
    let (out, v) = run_json(d.path(), "missing.wasm", &[])?;
    has_all_keys(&v)?;
    if v["verdict"] != "invalid_input" || out.status.code() != Some(2) {
        return Err(format!("missing file: {v} status {:?}", out.status.code()).into());
    }
    std::fs::write(d.path().join("bad.toml"), "[limits]\nalow_network = true\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("m.wat"),
        "(module (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    let (out, v) = run_json(d.path(), "m.wat", &["--policy", "bad.toml"])?;
    let msg = v["message"].as_str().unwrap_or("");
    if v["verdict"] != "invalid_input"
        || out.status.code() != Some(2)
        || !msg.starts_with("bad.toml:2:1:")
    {
        return Err(format!("bad policy: {v} status {:?}", out.status.code()).into());
    }
    Ok(())
}

fn compile_error() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(
        d.path().join("m.wat"),
        "(module (func (export \"_start\") (i32.add)))",
    )
    .map_err(|e| e.to_string())?;
    let (out, v) = run_json(d.path(), "m.wat", &[])?;
    has_all_keys(&v)?;
    if v["verdict"] != "compile_error" && v["verdict"] != "rejected" {
        return Err(format!("{v}").into());
    }
    std::fs::write(
        d.path().join("n.wat"),
        "(module (func (export \"_start\") (i32.const)))",
    )
    .map_err(|e| e.to_string())?;
    let (out2, v2) = run_json(d.path(), "n.wat", &[])?;
    if v2["verdict"] != "compile_error" || out2.status.code() != Some(1) {
        return Err(format!("{v2}").into());
    }
    let diag = v2["diagnostics"].as_str().unwrap_or("");
    if !diag.contains("n.wat:1:") {
        return Err(format!("diagnostics must point at n.wat:line: {diag}").into());
    }
    let _ = out;
    Ok(())
}

fn rejected_component() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(
        d.path().join("c.wasm"),
        [0, b'a', b's', b'm', 0x0d, 0, 1, 0],
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = corral();
    let out = cmd
        .current_dir(d.path())
        .args(["check", "c.wasm", "--json"])
        .output()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    has_all_keys(&v)?;
    let msg = v["message"].as_str().unwrap_or("");
    if v["verdict"] != "rejected" || !msg.contains("component") {
        return Err(format!("{v}").into());
    }
    Ok(())
}

fn denied() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(
        d.path().join("m.wat"),
        r#"(module (import "wasi_snapshot_preview1" "sock_accept" (func $a (param i32 i32 i32) (result i32)))
            (memory (export "memory") 1) (func (export "_start") (drop (call $a (i32.const 3) (i32.const 0) (i32.const 0)))))"#,
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(d.path().join("p.toml"), "[gate]\non_denial = \"end_run\"\n")
        .map_err(|e| e.to_string())?;
    let (out, v) = run_json(d.path(), "m.wat", &["--policy", "p.toml"])?;
    has_all_keys(&v)?;
    if v["verdict"] != "denied" || out.status.code() != Some(1) {
        return Err(format!("{v}").into());
    }
    Ok(())
}

fn check_cmd() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(
        d.path().join("m.wat"),
        "(module (func (export \"_start\") (loop br 0)))",
    )
    .map_err(|e| e.to_string())?;
    let out = corral()
        .current_dir(d.path())
        .args(["check", "m.wat", "--json"])
        .output()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    has_all_keys(&v)?;
    if v["verdict"] != "ok" || v["fuel_consumed"] != 0 || out.status.code() != Some(0) {
        return Err(format!("check must not run the module: {v}").into());
    }
    Ok(())
}

/// Issue 11: `corral check` rejects a module no run could instantiate (two tables; a
/// component creating 100 core instances), and `run` agrees: rejected, never host_error.
fn check_uninstantiable() -> Result<(), Failed> {
    let d = tmpdir()?;
    let instances: String = (0..99)
        .map(|_| "(core instance (instantiate $m))")
        .collect();
    std::fs::write(
        d.path().join("t.wat"),
        "(module (memory (export \"memory\") 1) (table 1 funcref) (table 1 funcref) (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("c.wat"),
        format!(
            "(component (core module $m) {instances} (core module $main (func (export \"run\") (result i32) (i32.const 0))) (core instance $mi (instantiate $main)) (func $run (result (result)) (canon lift (core func $mi \"run\"))) (instance $r (export \"run\" (func $run))) (export \"wasi:cli/run@0.2.0\" (instance $r)))"
        ),
    )
    .map_err(|e| e.to_string())?;
    for (file, says) in [("t.wat", "2 tables"), ("c.wat", "100 core instances")] {
        for cmd in [&["check"][..], &["run", "--no-record"][..]] {
            let out = corral()
                .current_dir(d.path())
                .args(cmd)
                .args([file, "--json"])
                .output()
                .map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
            let msg = v["message"].as_str().unwrap_or("");
            if v["verdict"] != "rejected" || !msg.contains(says) || out.status.code() != Some(1) {
                return Err(format!("`corral {} {file}`: {v}", cmd[0]).into());
            }
        }
    }
    Ok(())
}

fn help() -> Result<(), Failed> {
    let cases: [(&[&str], &[&str]); 3] = [
        (&["--help"], &["run", "check"]),
        (
            &["run", "--help"],
            &[
                "--policy",
                "--dir",
                "--env",
                "--stdin",
                "--seed",
                "--json",
                "--no-record",
                "--trace",
            ],
        ),
        (
            &["check", "--help"],
            &["--policy", "--dir", "--env", "--stdin", "--seed", "--json"],
        ),
    ];
    for (args, words) in cases {
        let out = corral().args(args).output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("{args:?} failed").into());
        }
        for w in words {
            if !text.contains(w) {
                return Err(
                    format!("`corral {}` does not mention {w}:\n{text}", args.join(" ")).into(),
                );
            }
        }
    }
    Ok(())
}

fn bad_option() -> Result<(), Failed> {
    let out = corral()
        .args(["run", "x.wasm", "--no-such-option"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.code() != Some(2) {
        return Err(format!("status {:?}", out.status.code()).into());
    }
    Ok(())
}

fn args_env_stdin() -> Result<(), Failed> {
    let d = tmpdir()?;
    let src = r#"use std::io::Read;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    println!("{:?} {:?} {}", args, std::env::var("GREETING").ok(), input.trim());
}"#;
    std::fs::write(d.path().join("p.rs"), src).map_err(|e| e.to_string())?;
    std::fs::write(d.path().join("in.txt"), "from stdin\n").map_err(|e| e.to_string())?;
    let (out, v) = run_json(
        d.path(),
        "p.rs",
        &[
            "--env",
            "GREETING=hi",
            "--stdin",
            "in.txt",
            "--",
            "a",
            "b c",
        ],
    )?;
    let stdout = v["stdout"].as_str().unwrap_or("");
    if stdout != "[\"main\", \"a\", \"b c\"] Some(\"hi\") from stdin\n"
        || out.status.code() != Some(0)
    {
        return Err(format!("{v}").into());
    }
    if stdout.contains(support::secret()) {
        return Err("host env leaked".into());
    }
    Ok(())
}

fn nul_arg() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(
        d.path().join("m.wat"),
        "(module (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    let (out, v) = run_json(d.path(), "m.wat", &["--env", "A=\u{1}", "--", "x"])?;
    if v["verdict"] != "ok" {
        return Err(format!("control characters are fine: {v}").into());
    }
    let _ = out;
    let (out, v) = run_json(d.path(), "m.wat", &["--env", "A=B=C"])?;
    if v["verdict"] != "ok" || out.status.code() != Some(0) {
        return Err(format!("`=` in a value is fine: {v}").into());
    }
    let (out, v) = run_json(d.path(), "m.wat", &["--env", "=x"])?;
    if v["verdict"] != "invalid_input" || out.status.code() != Some(2) {
        return Err(format!("empty env name must be invalid input: {v}").into());
    }
    Ok(())
}
