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
    t.push(Trial::test("cli::check_names_the_runner", check_runner));
    t.push(Trial::test(
        "cli::issue_18_check_finds_python_syntax_errors",
        check_python_syntax,
    ));
    t.push(Trial::test(
        "cli::issue_18_policy_drops_inherited_scratch_and_env",
        policy_trims,
    ));
    t.push(Trial::test(
        "cli::issue_11_check_rejects_what_run_cannot_instantiate",
        check_uninstantiable,
    ));
    t.push(Trial::test("cli::help_mentions_every_option", help));
    t.push(Trial::test("cli::bad_option_exits_2", bad_option));
    t.push(Trial::test("cli::args_env_stdin", args_env_stdin));
    t.push(Trial::test("cli::nul_in_arg_is_invalid_input", nul_arg));
    t.push(Trial::test(
        "cli::untrusted_files_are_bounded",
        untrusted_files,
    ));
    t.push(Trial::test(
        "cli::nothing_left_in_the_temp_dir",
        nothing_left_behind,
    ));
    t.push(Trial::test(
        "cli::killed_runs_are_swept_by_the_next",
        killed_runs_are_swept,
    ));
    t.push(Trial::test(
        "cli::record_store_links_are_not_followed",
        record_store_links,
    ));
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

/// `--runner` (a shared option of `run` and `check`): `check` names the runner a `.py`
/// program gets (by its imports, or as chosen); an unknown runner, or a runner for another
/// language, is invalid input (exit 2).
fn check_runner() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(d.path().join("p.py"), "print('hi')\n").map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("m.wat"),
        "(module (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    let check = |args: &[&str]| -> Result<(Option<i32>, Value), Failed> {
        let out = corral()
            .current_dir(d.path())
            .arg("check")
            .args(args)
            .arg("--json")
            .output()
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        Ok((out.status.code(), v))
    };
    for (args, status, verdict, says) in [
        (&["p.py"][..], 0, "ok", "to run on the python runner"),
        (
            &["p.py", "--runner", "python-sci"][..],
            0,
            "ok",
            "to run on the python-sci runner",
        ),
        (
            &["p.py", "--runner", "cobol"][..],
            2,
            "invalid_input",
            "`--runner cobol`: unknown runner",
        ),
        (
            &["m.wat", "--runner", "python"][..],
            2,
            "invalid_input",
            "applies to .py programs only",
        ),
    ] {
        let (code, v) = check(args)?;
        let message = v["message"].as_str().unwrap_or("");
        if code != Some(status) || v["verdict"] != verdict || !message.contains(says) {
            return Err(format!("corral check {args:?}: status {code:?}, {v}").into());
        }
    }
    Ok(())
}

/// Issue 18: `corral check` of a Python program that does not compile is `compile_error`
/// (exit 1) with the interpreter's error in `diagnostics`, and `run` agrees without running
/// any of it; a program that compiles is `ok` for `check` and runs normally.
fn check_python_syntax() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(
        d.path().join("bad.py"),
        "print('ran')\nfor x in range(3)\n    print(x)\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(d.path().join("good.py"), "print('ran')\n").map_err(|e| e.to_string())?;
    for cmd in ["check", "run"] {
        let mut c = corral();
        c.current_dir(d.path()).args([cmd, "bad.py", "--json"]);
        if cmd == "run" {
            c.arg("--no-record");
        }
        let out = c.output().map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        has_all_keys(&v)?;
        let diag = v["diagnostics"].as_str().unwrap_or("");
        if v["verdict"] != "compile_error"
            || out.status.code() != Some(1)
            || v["stdout"] != ""
            || v["fuel_consumed"] != 0
            || !diag.contains("File \"bad.py\", line 2")
            || !diag.contains("SyntaxError: expected ':'")
            || v["message"] != "`bad.py` failed to compile: SyntaxError: expected ':'"
        {
            return Err(format!("{cmd} bad.py: {v}").into());
        }
    }
    let out = corral()
        .current_dir(d.path())
        .args(["check", "good.py", "--json"])
        .output()
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    if v["verdict"] != "ok" || out.status.code() != Some(0) || v["stdout"] != "" {
        return Err(format!("check good.py: {v}").into());
    }
    Ok(())
}

/// Exits with 10 × (number of environment variables) + (1 if descriptor 3 is a preopen).
const ENV_FD3_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $es (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $pg (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $es (i32.const 0) (i32.const 4)))
    (call $exit
      (i32.add
        (i32.mul (i32.load (i32.const 0)) (i32.const 10))
        (i32.eqz (call $pg (i32.const 3) (i32.const 16)))))))"#;

/// Issue 18: a policy that extends `standard` can drop the inherited scratch dir
/// (`[fs] scratch = false`: descriptor 3 is no preopen) and replace the inherited
/// environment (`env_mode = "replace"`: only its own `[env]`).
fn policy_trims() -> Result<(), Failed> {
    let d = tmpdir()?;
    std::fs::write(d.path().join("m.wat"), ENV_FD3_WAT).map_err(|e| e.to_string())?;
    let policies = [
        // (policy text, expected exit code)
        ("extends = \"standard\"\n", 11),
        ("extends = \"standard\"\n[fs]\nscratch = false\n", 10),
        ("extends = \"standard\"\nenv_mode = \"replace\"\n", 1),
        (
            "extends = \"standard\"\nenv_mode = \"replace\"\n[fs]\nscratch = false\n[env]\nA = \"1\"\nB = \"2\"\n",
            20,
        ),
        (
            "extends = \"standard\"\nenv_mode = \"merge\"\n[env]\nA = \"1\"\n",
            21,
        ),
    ];
    for (text, want) in policies {
        std::fs::write(d.path().join("p.toml"), text).map_err(|e| e.to_string())?;
        let (_, v) = run_json(d.path(), "m.wat", &["--policy", "p.toml", "--no-record"])?;
        let got = if v["verdict"] == "ok" {
            Some(0)
        } else {
            v["exit_code"].as_i64()
        };
        if got != Some(want) {
            return Err(format!("policy {text:?}: expected exit {want}: {v}").into());
        }
    }
    // A mistake says what is allowed, where.
    std::fs::write(
        d.path().join("p.toml"),
        "extends = \"standard\"\n[fs]\nscratch = true\n",
    )
    .map_err(|e| e.to_string())?;
    let (out, v) = run_json(d.path(), "m.wat", &["--policy", "p.toml", "--no-record"])?;
    let msg = v["message"].as_str().unwrap_or("");
    if out.status.code() != Some(2)
        || v["verdict"] != "invalid_input"
        || !msg.contains("p.toml:3:11: `fs.scratch` is `true`, not a guest path or `false`")
    {
        return Err(format!("scratch = true: {v}").into());
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
                "--runner",
                "--no-record",
                "--trace",
            ],
        ),
        (
            &["check", "--help"],
            &[
                "--policy", "--dir", "--env", "--stdin", "--seed", "--json", "--runner",
            ],
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

/// Runs `cmd` and waits at most `secs` for it (killed after that).
fn output_within(mut cmd: Command, secs: u64) -> Result<Output, Failed> {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child
                .wait_with_output()
                .map_err(|e| Failed::from(e.to_string()));
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {secs} s").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Files a user (or an agent) names may be symlinks to `/dev/zero`, FIFOs, or too large:
/// each is refused at once with exit status 2, never read until memory runs out or waited on
/// (threat RE-41).
fn untrusted_files() -> Result<(), Failed> {
    let d = tmpdir()?;
    let p = |n: &str| d.path().join(n);
    std::os::unix::fs::symlink("/dev/zero", p("solution.py")).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/dev/zero", p("zero.toml")).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/dev/zero", p("record.json")).map_err(|e| e.to_string())?;
    let fifo = std::ffi::CString::new(p("fifo.wat").to_string_lossy().as_bytes())
        .map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path.
    #[expect(unsafe_code, reason = "mkfifo for the test")]
    let r = unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
    if r != 0 {
        return Err("mkfifo failed".into());
    }
    std::fs::write(p("ok.wat"), "(module (func (export \"_start\")))")
        .map_err(|e| e.to_string())?;
    std::fs::write(
        p("tiny.toml"),
        "extends = \"strict\"\n[limits]\nstdin_bytes = 10\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(p("eleven.txt"), "0123456789\n").map_err(|e| e.to_string())?;
    std::fs::write(p("ten.txt"), "012345678\n").map_err(|e| e.to_string())?;
    let cases: [(&str, &[&str], &str); 7] = [
        (
            "source -> /dev/zero",
            &["run", "solution.py", "--json"],
            "not a regular file",
        ),
        (
            "source is a FIFO",
            &["run", "fifo.wat", "--json"],
            "not a regular file",
        ),
        (
            "policy -> /dev/zero",
            &["run", "ok.wat", "--json", "--policy", "./zero.toml"],
            "not a regular file",
        ),
        (
            "stdin is /dev/zero",
            &["run", "ok.wat", "--json", "--stdin", "/dev/zero"],
            "not a regular file",
        ),
        (
            "stdin over the policy's cap",
            &[
                "run",
                "ok.wat",
                "--json",
                "--policy",
                "tiny.toml",
                "--stdin",
                "eleven.txt",
            ],
            "more than the 10 allowed",
        ),
        (
            "check: source -> /dev/zero",
            &["check", "solution.py", "--json"],
            "not a regular file",
        ),
        (
            "replay of /dev/zero",
            &["replay", "record.json", "--json"],
            "not a regular file",
        ),
    ];
    for (what, args, message) in cases {
        let mut cmd = corral();
        cmd.current_dir(d.path()).args(args);
        let out = output_within(cmd, 20)?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{what}: stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        if out.status.code() != Some(2) || v["verdict"] != "invalid_input" {
            return Err(format!("{what}: status {:?}, report {v}", out.status.code()).into());
        }
        if !v["message"].as_str().unwrap_or("").contains(message) {
            return Err(format!("{what}: message does not say `{message}`: {v}").into());
        }
    }
    // At the cap is fine, from a file and from a pipe; over it from a pipe is refused.
    let mut cmd = corral();
    cmd.current_dir(d.path())
        .args([
            "run",
            "ok.wat",
            "--json",
            "--no-record",
            "--policy",
            "tiny.toml",
        ])
        .args(["--stdin", "ten.txt"]);
    let out = output_within(cmd, 20)?;
    if out.status.code() != Some(0) {
        return Err(format!("stdin at the cap was refused: {:?}", out.status.code()).into());
    }
    for (bytes, status) in [(&b"012345678\n"[..], 0), (&b"0123456789\n"[..], 2)] {
        use std::io::Write;
        let mut child = corral()
            .current_dir(d.path())
            .args([
                "run",
                "ok.wat",
                "--json",
                "--no-record",
                "--policy",
                "tiny.toml",
            ])
            .args(["--stdin", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(bytes).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.code() != Some(status) {
            return Err(format!(
                "{} bytes on a pipe: status {:?}, want {status}",
                bytes.len(),
                out.status.code()
            )
            .into());
        }
    }
    Ok(())
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Result<Vec<String>, Failed> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// A run with a scratch dir and a staged input dir leaves nothing in `CORRAL_TMPDIR`
/// (threat RE-40: an empty `corral-scratch-*` used to pile up per run).
fn nothing_left_behind() -> Result<(), Failed> {
    let d = tmpdir()?;
    let tmp = d.path().join("tmp");
    std::fs::create_dir_all(d.path().join("in/sub")).map_err(|e| e.to_string())?;
    std::fs::write(d.path().join("in/sub/a.txt"), "x").map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("ok.wat"),
        "(module (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    for args in [
        &[
            "run",
            "ok.wat",
            "--policy",
            "standard",
            "--dir",
            "in::/in",
            "--no-record",
        ][..],
        &["check", "ok.wat", "--policy", "standard"][..],
        &["run", "missing.wat", "--policy", "standard"][..],
    ] {
        let mut cmd = corral();
        cmd.current_dir(d.path())
            .env("CORRAL_TMPDIR", &tmp)
            .args(args);
        output_within(cmd, 60)?;
        let left = entries(&tmp).unwrap_or_default();
        if !left.is_empty() {
            return Err(
                format!("`corral {}` left {left:?} in its temp dir", args.join(" ")).into(),
            );
        }
    }
    Ok(())
}

/// A run killed with SIGKILL cannot clean up; the next corral removes what it left (its
/// scratch dir and the private copy of its inputs), and nothing of a live run.
fn killed_runs_are_swept() -> Result<(), Failed> {
    let d = tmpdir()?;
    let tmp = d.path().join("tmp");
    std::fs::create_dir_all(d.path().join("in")).map_err(|e| e.to_string())?;
    std::fs::write(d.path().join("in/secret-input.txt"), "input").map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("spin.wat"),
        "(module (func (export \"_start\") (loop br 0)))",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("ok.wat"),
        "(module (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    let mut child = corral()
        .current_dir(d.path())
        .env("CORRAL_TMPDIR", &tmp)
        .args([
            "run",
            "spin.wat",
            "--policy",
            "standard",
            "--dir",
            "in::/in",
            "--no-record",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    // Wait until the run has staged its input (a copy of the file exists under tmp).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let staged = loop {
        let found = crate::support::snapshot(&tmp, &[])
            .keys()
            .any(|p| p.ends_with("secret-input.txt"));
        if found {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    if !staged {
        return Err("the spinning run never staged its input".into());
    }
    if entries(&tmp)?.is_empty() {
        return Err("the killed run left nothing (the test proves nothing)".into());
    }
    let mut cmd = corral();
    cmd.current_dir(d.path())
        .env("CORRAL_TMPDIR", &tmp)
        .args(["run", "ok.wat", "--no-record"]);
    let out = output_within(cmd, 60)?;
    if out.status.code() != Some(0) {
        return Err(format!("the next run failed: {:?}", out.status.code()).into());
    }
    let left = entries(&tmp)?;
    if !left.is_empty() {
        return Err(format!("the killed run's files were not swept: {left:?}").into());
    }
    Ok(())
}

/// Links planted inside a record store never redirect its writes (threat RT-40).
fn record_store_links() -> Result<(), Failed> {
    let d = tmpdir()?;
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
    std::fs::write(
        d.path().join("ok.wat"),
        "(module (func (export \"_start\")))",
    )
    .map_err(|e| e.to_string())?;
    for planted in ["records", "blobs"] {
        let store = d.path().join(format!("store-{planted}"));
        std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(&outside, store.join(planted)).map_err(|e| e.to_string())?;
        let mut cmd = corral();
        cmd.current_dir(d.path())
            .args(["run", "ok.wat", "--json", "--record-dir"])
            .arg(&store);
        let out = output_within(cmd, 60)?;
        if out.status.code() != Some(0) {
            return Err(format!("the run failed: {:?}", out.status.code()).into());
        }
        let left = crate::support::snapshot(&outside, &[]);
        if !left.is_empty() {
            return Err(format!(
                "a link at store/{planted} redirected writes outside the store: {:?}",
                left.keys().collect::<Vec<_>>()
            )
            .into());
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        if !v["record"].is_null() {
            return Err(format!("a record was reported written: {v}").into());
        }
        if !String::from_utf8_lossy(&out.stderr).contains("never follows links") {
            return Err(format!(
                "no warning about the link: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    Ok(())
}
