//! The fixture harness: every program under `fixtures/` with the expectation beside it.
//!
//! A fixture is `fixtures/<category>/<name>.<ext>` (`wat`, `rs`, `c`, `cpp`, `py`, `js`,
//! `wasm`) plus `fixtures/<category>/<name>.toml` (its expectation; see `fixtures/README.md`).
//! An expectation with `generate = "…"` needs no source file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corral::compile::{Language, Source};
use corral::job::{self, Invocation, Outcome, Recording};
use corral::record::RecordStore;
use corral::{DirGrant, Engine, EngineConfig, Policy, RunReport};
use libtest_mimic::{Failed, Trial};
use serde::Deserialize;

use crate::seccomp::NO_OPENAT2_ENV;
use crate::support::{self, Node};

/// Sizes of the fixture runs' records (without blobs), for the summary printed at the end.
pub static RECORD_SIZES: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

const SOURCE_EXTS: [&str; 8] = ["wat", "rs", "c", "cpp", "cc", "py", "js", "wasm"];

/// One directory grant in an expectation.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct DirSpec {
    /// Relative to the fixture's host root.
    host: String,
    guest: String,
    #[serde(default)]
    mode: Option<String>,
}

/// The expectation file.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// What the fixture tests (one sentence).
    description: String,
    /// Threat-catalogue id(s), e.g. `FS-01`.
    #[serde(default)]
    threat: Option<String>,
    /// A hostile fixture (host checks are strict for every fixture anyway).
    #[serde(default)]
    malicious: bool,
    /// Generated module instead of a source file: `functions:N`, `module_bytes:N`,
    /// `bytes:HEX`, `random:N`.
    #[serde(default)]
    generate: Option<String>,

    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    dirs: Vec<DirSpec>,
    /// Files created in the host root before the run (relative path → contents).
    #[serde(default)]
    tree: BTreeMap<String, String>,
    /// Symlinks created in the host root (relative path → target; `{root}` is replaced by
    /// the host root's absolute path).
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
    /// Empty directories created in the host root.
    #[serde(default)]
    empty_dirs: Vec<String>,
    /// FIFOs (named pipes) created in the host root: nothing ever writes to them, so a host
    /// that opens or reads one blocks.
    #[serde(default)]
    fifos: Vec<String>,
    /// Unix-domain sockets bound in the host root (no one accepts on them).
    #[serde(default)]
    sockets: Vec<String>,

    verdict: String,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    trap: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stdout_contains: Vec<String>,
    #[serde(default)]
    stdout_not_contains: Vec<String>,
    #[serde(default)]
    stderr_contains: Vec<String>,
    #[serde(default)]
    message_contains: Vec<String>,
    #[serde(default)]
    diagnostics_contains: Vec<String>,
    #[serde(default)]
    stdout_truncated: Option<bool>,
    #[serde(default)]
    stderr_truncated: Option<bool>,
    #[serde(default)]
    denials_min: Option<u64>,
    /// Also run with `openat2` made to fail (defaults to true for the `fs` category).
    #[serde(default)]
    no_openat2: Option<bool>,
    /// Allowed to differ between two runs (only for wall-clock verdicts).
    #[serde(default)]
    nondeterministic: bool,
}

/// A discovered fixture.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub category: String,
    pub name: String,
    pub source: Option<PathBuf>,
    pub expect: Expect,
}

impl Fixture {
    pub fn id(&self) -> String {
        format!("{}::{}", self.category, self.name)
    }
}

/// Finds every fixture; returns the fixtures and the problems (unclaimed files, bad
/// expectations) as failing trials.
pub fn discover() -> (Vec<Fixture>, Vec<String>) {
    let root = support::repo().join("fixtures");
    let mut fixtures = Vec::new();
    let mut problems = Vec::new();
    let Ok(cats) = std::fs::read_dir(&root) else {
        problems.push("fixtures/ is missing".into());
        return (fixtures, problems);
    };
    let mut cats: Vec<_> = cats.flatten().filter(|e| e.path().is_dir()).collect();
    cats.sort_by_key(|e| e.file_name());
    for cat in cats {
        let category = cat.file_name().to_string_lossy().into_owned();
        if matches!(category.as_str(), "policies" | "eval" | "humaneval") {
            continue; // policies, suites and HumanEval files used by other tests
        }
        let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut expects: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut files: Vec<_> = std::fs::read_dir(cat.path())
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        files.sort_by_key(|e| e.file_name());
        for f in files {
            let p = f.path();
            if p.is_dir() {
                continue; // data trees used by fixtures
            }
            let (Some(stem), Some(ext)) = (
                p.file_stem().map(|s| s.to_string_lossy().into_owned()),
                p.extension().map(|s| s.to_string_lossy().into_owned()),
            ) else {
                problems.push(format!("unclaimed fixture file {}", p.display()));
                continue;
            };
            if ext == "toml" {
                expects.insert(stem, p);
            } else if SOURCE_EXTS.contains(&ext.as_str()) {
                if let Some(prev) = sources.insert(stem.clone(), p.clone()) {
                    problems.push(format!(
                        "two sources for fixture {category}::{stem}: {} and {}",
                        prev.display(),
                        p.display()
                    ));
                }
            } else if ext != "md" && ext != "txt" {
                problems.push(format!("unclaimed fixture file {}", p.display()));
            }
        }
        for (stem, exp_path) in &expects {
            let text = match std::fs::read_to_string(exp_path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: {e}", exp_path.display()));
                    continue;
                }
            };
            let expect: Expect = match toml::from_str(&text) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("{}: {e}", exp_path.display()));
                    continue;
                }
            };
            let source = sources.remove(stem);
            if source.is_none() && expect.generate.is_none() {
                problems.push(format!(
                    "{}: no source file and no `generate`",
                    exp_path.display()
                ));
                continue;
            }
            fixtures.push(Fixture {
                category: category.clone(),
                name: stem.clone(),
                source,
                expect,
            });
        }
        for (stem, p) in sources {
            problems.push(format!(
                "unclaimed fixture {category}::{stem} ({}) has no expectation .toml",
                p.display()
            ));
        }
    }
    (fixtures, problems)
}

pub fn trials() -> Vec<Trial> {
    let (fixtures, problems) = discover();
    let mut trials = Vec::new();
    for p in problems {
        trials.push(Trial::test(
            format!("fixture::problem::{}", trials.len()),
            move || Err(Failed::from(p)),
        ));
    }
    let count = fixtures.len();
    trials.push(Trial::test("fixture::suite_is_not_empty", move || {
        if count < 10 {
            return Err(format!("only {count} fixtures found").into());
        }
        Ok(())
    }));
    for f in fixtures {
        let no_openat2 = f.expect.no_openat2.unwrap_or(f.category == "fs");
        let id = f.id();
        let f2 = f.clone();
        trials.push(Trial::test(format!("fixture::{id}"), move || {
            run_fixture(&f2)
        }));
        if no_openat2 {
            let id2 = id.clone();
            trials.push(Trial::test(
                format!("fixture_no_openat2::{id}"),
                move || rerun_without_openat2(&id2),
            ));
        }
    }
    trials
}

/// Runs `fixture::<id>` in a child process with the openat2 filter installed.
fn rerun_without_openat2(id: &str) -> Result<(), Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(["--exact", &format!("fixture::{id}"), "--test-threads", "1"])
        .env(NO_OPENAT2_ENV, "1")
        .output()
        .map_err(|e| format!("cannot spawn: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "without openat2:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if !stdout.contains("1 passed") {
        return Err(format!("without openat2 the fixture did not run:\n{stdout}").into());
    }
    Ok(())
}

/// Builds the module bytes of a generated fixture.
fn generate(spec: &str) -> Result<Vec<u8>, Failed> {
    let (kind, arg) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "functions" => {
            let n: usize = arg.parse().map_err(|_| "bad functions count")?;
            let mut wat =
                String::from("(module (memory (export \"memory\") 1) (func (export \"_start\"))\n");
            for _ in 0..n {
                wat.push_str("(func)\n");
            }
            wat.push(')');
            Ok(wat::parse_str(&wat).map_err(|e| e.to_string())?)
        }
        "module_bytes" => {
            let n: usize = arg.parse().map_err(|_| "bad size")?;
            // A valid module padded with a custom section.
            let mut m =
                wat::parse_str("(module (func (export \"_start\")))").map_err(|e| e.to_string())?;
            m.push(0); // custom section id
            let payload = n.saturating_sub(m.len() + 8);
            let mut leb = Vec::new();
            let mut v = payload + 2;
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    leb.push(b);
                    break;
                }
                leb.push(b | 0x80);
            }
            m.extend_from_slice(&leb);
            m.extend_from_slice(&[1, b'x']);
            m.resize(m.len() + payload, 0);
            Ok(m)
        }
        "bytes" => {
            let hex: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| Failed::from(e.to_string()))
        }
        "random" => {
            let n: usize = arg.parse().map_err(|_| "bad size")?;
            let mut out = Vec::with_capacity(n);
            let mut h = blake3::Hasher::new()
                .update(b"corral fixture random")
                .finalize_xof();
            out.resize(n, 0);
            h.fill(&mut out);
            Ok(out)
        }
        other => Err(format!("unknown generator `{other}`").into()),
    }
}

fn resolve_policy(f: &Fixture) -> Result<Policy, Failed> {
    match &f.expect.policy {
        None => Ok(Policy::strict()),
        Some(p) if p.ends_with(".toml") => {
            let path = support::repo().join("fixtures").join(&f.category).join(p);
            Policy::from_path(&path).map_err(|e| Failed::from(e.to_string()))
        }
        Some(name) => Policy::resolve(name).map_err(|e| Failed::from(e.to_string())),
    }
}

/// The host root of one fixture run: canaries outside, the fixture's tree, the engine's temp.
struct HostRoot {
    dir: tempfile::TempDir,
}

impl HostRoot {
    /// Plants the fixture's host tree. With `shuffled`, the same contents are laid out
    /// differently: files created in reverse order, with spacer files created and removed
    /// between them (other inode numbers), and mtimes set far in the past; reports must not
    /// change.
    fn new(e: &Expect, shuffled: bool) -> Result<HostRoot, Failed> {
        let dir = tempfile::Builder::new()
            .prefix("corral-fixture-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let root = dir.path();
        let secret = support::secret();
        std::fs::create_dir_all(root.join("outside/sub")).map_err(|e| e.to_string())?;
        std::fs::write(
            root.join("outside/canary.txt"),
            format!("{secret} outside\n"),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            root.join("outside/sub/canary2.txt"),
            format!("{secret} deep\n"),
        )
        .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
        for d in &e.empty_dirs {
            std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
        }
        let mut tree: Vec<_> = e.tree.iter().collect();
        if shuffled {
            tree.reverse();
        }
        for (i, (rel, contents)) in tree.into_iter().enumerate() {
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            if shuffled {
                let spacer = root.join(format!("spacer-{i}"));
                std::fs::write(&spacer, b"").map_err(|e| e.to_string())?;
                std::fs::remove_file(&spacer).map_err(|e| e.to_string())?;
            }
            let contents = contents.replace("{secret}", secret);
            std::fs::write(&p, contents).map_err(|e| e.to_string())?;
            if shuffled {
                let when = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(1_000_000_000 + i as u64 * 7_777);
                let times = std::fs::FileTimes::new()
                    .set_modified(when)
                    .set_accessed(when);
                for path in [Some(p.as_path()), p.parent()].into_iter().flatten() {
                    std::fs::File::open(path)
                        .and_then(|f| f.set_times(times))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        for rel in &e.fifos {
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                .map_err(|e| e.to_string())?;
            // SAFETY: `c` is a valid NUL-terminated path.
            #[expect(unsafe_code, reason = "mkfifo has no safe std wrapper")]
            if unsafe { libc::mkfifo(c.as_ptr(), 0o644) } != 0 {
                return Err(format!("mkfifo: {}", std::io::Error::last_os_error()).into());
            }
        }
        for rel in &e.sockets {
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            // The socket file stays when the listener is dropped.
            drop(std::os::unix::net::UnixListener::bind(&p).map_err(|e| e.to_string())?);
        }
        for (rel, target) in &e.symlinks {
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let target = target.replace("{root}", &root.display().to_string());
            std::os::unix::fs::symlink(target, &p).map_err(|e| e.to_string())?;
        }
        Ok(HostRoot { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A fixture's job: its source, policy and invocation.
struct Request {
    source: Source,
    policy: Policy,
    invocation: Invocation,
}

fn request(f: &Fixture, root: &Path) -> Result<Request, Failed> {
    let e = &f.expect;
    let policy = resolve_policy(f)?;
    let (source, name, language) = match (&f.source, &e.generate) {
        (Some(p), _) => {
            let lang = Language::from_path(p).ok_or("unknown source type")?;
            let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (bytes, name, lang)
        }
        (None, Some(g)) => (generate(g)?, format!("{}.wasm", f.name), Language::Wasm),
        (None, None) => return Err("no source".into()),
    };
    let mut req = Request {
        source: Source::new(source, name, language),
        policy,
        invocation: Invocation {
            args: e.args.clone(),
            env: e.env.clone(),
            stdin: e.stdin.clone().unwrap_or_default().into_bytes(),
            seed: e.seed.unwrap_or(0),
            ..Invocation::default()
        },
    };
    for d in &e.dirs {
        let mode = d
            .mode
            .as_deref()
            .map(|m| format!(":{m}"))
            .unwrap_or_default();
        let spec = format!("{}::{}{mode}", root.join(&d.host).display(), d.guest);
        req.invocation
            .dirs
            .push(DirGrant::parse(&spec).map_err(|e| e.to_string())?);
    }
    Ok(req)
}

/// The engine of a fixture run: in this process for the first (recorded) run, in a worker
/// process for the second, so that the two reports, which must be identical, also show that
/// a worker reports what an in-process run does.
fn engine_for(root: &Path, in_worker: bool) -> Result<Engine, Failed> {
    engine_with_cache(root, &support::cache_dir(), in_worker)
}

fn engine_with_cache(root: &Path, cache: &Path, in_worker: bool) -> Result<Engine, Failed> {
    let isolation = if in_worker {
        corral::Isolation::Workers(corral::WorkerConfig {
            program: crate::workers::worker_program()?,
            workers: 1,
            ..corral::WorkerConfig::default()
        })
    } else {
        corral::Isolation::InProcess
    };
    let config = EngineConfig {
        temp_root: root.join("tmp"),
        cache_dir: Some(cache.to_path_buf()),
        isolation,
        ..EngineConfig::default()
    };
    Engine::new(config).map_err(|e| Failed::from(e.to_string()))
}

/// The fixture's report on an engine whose cache (compiled programs, runners, artifacts) is
/// `cache`; no host checks, no record.
pub fn report_with_cache(f: &Fixture, cache: &Path) -> Result<RunReport, Failed> {
    let host = HostRoot::new(&f.expect, false)?;
    let engine = engine_with_cache(host.path(), cache, false)?;
    let req = request(f, host.path())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let outcome = rt
        .block_on(job::run_source(
            &engine,
            &req.source,
            &req.policy,
            &req.invocation,
            Recording::Off,
        ))
        .map_err(|e| format!("host error (Err): {e}"))?;
    Ok(outcome.report)
}

fn run_once(f: &Fixture, record: bool) -> Result<RunReport, Failed> {
    support::plant_ct_canary();
    // The recorded (first) run and the second see the same contents laid out differently.
    let host = HostRoot::new(&f.expect, !record)?;
    let root = host.path();
    let rw: Vec<PathBuf> = f
        .expect
        .dirs
        .iter()
        .filter(|d| d.mode.as_deref() == Some("rw"))
        .map(|d| PathBuf::from(&d.host))
        .collect();
    let mut skip = rw.clone();
    skip.push(PathBuf::from("tmp"));
    let before = support::snapshot(root, &skip);
    let engine = engine_for(root, !record)?;
    let req = request(f, root)?;
    let recording = if record {
        Recording::On
    } else {
        Recording::Off
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let mut outcome = rt
        .block_on(job::run_source(
            &engine,
            &req.source,
            &req.policy,
            &req.invocation,
            recording,
        ))
        .map_err(|e| format!("host error (Err): {e}"))?;
    // Compiled guests must not carry host secrets (runners are our own builds; skip them).
    if let Some(m) = outcome.module()
        && m.info().size < 8 << 20
        && let Ok(bytes) = m.bytes()
        && bytes
            .windows(support::secret().len())
            .any(|w| w == support::secret().as_bytes())
    {
        return Err("a host secret was compiled into the module".into());
    }
    // Recorded before the host checks, so they cover the replay too.
    let records = tempfile::tempdir().map_err(|e| e.to_string())?;
    if record {
        record_and_replay(f, &engine, &req.policy, &mut outcome, records.path(), &rt)?;
    }
    // The engine keeps empty scratch dirs for reuse while it lives.
    drop(engine);
    let report = outcome.report;

    // Host checks.
    let after = support::snapshot(root, &skip);
    let changes = support::diff(&before, &after);
    if !changes.is_empty() {
        return Err(format!("the run changed the host outside its dirs: {changes:?}").into());
    }
    let leftover: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if !leftover.is_empty() {
        return Err(format!("temporary dirs left behind: {leftover:?}").into());
    }
    let root_str = root.display().to_string();
    let texts = [
        (
            "stdout",
            String::from_utf8_lossy(&report.stdout).into_owned(),
        ),
        (
            "stderr",
            String::from_utf8_lossy(&report.stderr).into_owned(),
        ),
        ("message", report.message.clone()),
        (
            "diagnostics",
            report.diagnostics.clone().unwrap_or_default(),
        ),
    ];
    for (what, text) in &texts {
        if text.contains(support::secret()) {
            return Err(format!("a host secret leaked into {what}: {text:?}").into());
        }
        if text.contains(&root_str) {
            return Err(format!("a host path leaked into {what}: {text:?}").into());
        }
        if let Ok(home) = std::env::var("HOME")
            && home.len() > 1
            && (*what == "message" || *what == "diagnostics")
            && text.contains(&home)
        {
            return Err(format!("$HOME leaked into {what}: {text:?}").into());
        }
    }
    // A fixture that wrote into an rw dir must not have left links that point outside.
    for r in &rw {
        for (p, n) in support::snapshot(&root.join(r), &[]) {
            if let Node::Link(t) = n
                && t.is_absolute()
            {
                let _ = (p, t); // links are data; the collector never follows them
            }
        }
    }
    Ok(report)
}

fn check(f: &Fixture, r: &RunReport) -> Result<(), Failed> {
    let e = &f.expect;
    let mut errs = Vec::new();
    let json = r.to_json();
    let show = || serde_json::to_string_pretty(&json).unwrap_or_default();
    if r.verdict.kind() != e.verdict {
        errs.push(format!(
            "verdict: expected `{}`, got `{}`",
            e.verdict,
            r.verdict.kind()
        ));
    }
    if let Some(c) = e.exit_code
        && r.verdict.exit_code() != Some(c)
    {
        errs.push(format!(
            "exit_code: expected {c}, got {:?}",
            r.verdict.exit_code()
        ));
    }
    if let Some(t) = &e.trap
        && r.verdict.trap().map(|t| t.as_str()) != Some(t.as_str())
    {
        errs.push(format!("trap: expected {t}, got {:?}", r.verdict.trap()));
    }
    if let Some(l) = &e.limit
        && r.verdict.limit().map(|l| l.as_str()) != Some(l.as_str())
    {
        errs.push(format!("limit: expected {l}, got {:?}", r.verdict.limit()));
    }
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    if let Some(s) = &e.stdout
        && stdout != s.as_str()
    {
        errs.push(format!("stdout: expected {s:?}, got {stdout:?}"));
    }
    for s in &e.stdout_contains {
        if !stdout.contains(s.as_str()) {
            errs.push(format!("stdout does not contain {s:?}"));
        }
    }
    for s in &e.stdout_not_contains {
        if stdout.contains(s.as_str()) {
            errs.push(format!("stdout contains {s:?}"));
        }
    }
    for s in &e.stderr_contains {
        if !stderr.contains(s.as_str()) {
            errs.push(format!("stderr does not contain {s:?}"));
        }
    }
    for s in &e.message_contains {
        if !r.message.contains(s.as_str()) {
            errs.push(format!("message does not contain {s:?}"));
        }
    }
    for s in &e.diagnostics_contains {
        if !r.diagnostics.as_deref().unwrap_or("").contains(s.as_str()) {
            errs.push(format!(
                "diagnostics do not contain {s:?}: {:?}",
                r.diagnostics
            ));
        }
    }
    if let Some(t) = e.stdout_truncated
        && r.stdout_truncated != t
    {
        errs.push(format!("stdout_truncated: expected {t}"));
    }
    if let Some(t) = e.stderr_truncated
        && r.stderr_truncated != t
    {
        errs.push(format!("stderr_truncated: expected {t}"));
    }
    if let Some(d) = e.denials_min
        && r.calls.denials < d
    {
        errs.push(format!(
            "denials: expected at least {d}, got {}",
            r.calls.denials
        ));
    }
    if let corral::Verdict::HostError(m) = &r.verdict {
        errs.push(format!("host_error: {m}"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nreport: {}", errs.join("\n"), show()).into())
    }
}

/// Records the run, replays the record (it must be identical), and notes its size. Runs
/// that wrote to host directories are refused by replay (their contents are not recorded):
/// that refusal is checked instead.
fn record_and_replay(
    f: &Fixture,
    engine: &Engine,
    policy: &Policy,
    outcome: &mut Outcome,
    store_dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> Result<(), Failed> {
    let store = RecordStore::new(store_dir.to_path_buf());
    let Some(path) = outcome
        .write_record(engine, &store)
        .map_err(|e| format!("cannot record: {e}"))?
    else {
        // The guest never ran (compile error, rejection): nothing to record.
        if outcome.report.verdict.ran() {
            return Err("a run that happened left no record".into());
        }
        return Ok(());
    };
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    RECORD_SIZES.lock().map_err(|e| e.to_string())?.push(size);
    let opts = corral::replay::ReplayOptions {
        ceiling: policy.clone(),
        ..Default::default()
    };
    let result = rt.block_on(corral::replay::replay(engine, &path, &opts));
    let writes_host = f
        .expect
        .dirs
        .iter()
        .any(|d| d.mode.as_deref() == Some("rw"));
    match result {
        Err(e) if writes_host => {
            if !e.to_string().contains("wrote to host directories") {
                return Err(format!("replay refused for another reason: {e}").into());
            }
        }
        Err(e) => return Err(format!("replay of the fixture's record failed: {e}").into()),
        Ok(_) if writes_host => {
            return Err("replay accepted a run that wrote to host directories".into());
        }
        Ok(r) if !r.identical && !f.expect.nondeterministic => {
            return Err(format!("replay diverged: {:?}", r.divergence).into());
        }
        Ok(_) => {}
    }
    Ok(())
}

fn run_fixture(f: &Fixture) -> Result<(), Failed> {
    let first = run_once(f, true)?;
    check(f, &first)?;
    let second = run_once(f, false)?;
    if !f.expect.nondeterministic && first.deterministic_json() != second.deterministic_json() {
        return Err(format!(
            "two runs differ:\n{}\n---\n{}",
            serde_json::to_string_pretty(&first.deterministic_json()).unwrap_or_default(),
            serde_json::to_string_pretty(&second.deterministic_json()).unwrap_or_default()
        )
        .into());
    }
    let _ = (&f.expect.description, &f.expect.threat, f.expect.malicious);
    dump_report(f, &first)
}

/// With `CORRAL_FIXTURE_REPORTS=DIR`, writes each fixture's deterministic report (pretty JSON,
/// sorted keys) to `DIR/<category>__<name>.json`: two trees of dumps, made before and after a
/// change, are compared with `diff -r` to show that reports did not change.
fn dump_report(f: &Fixture, r: &RunReport) -> Result<(), Failed> {
    let Some(dir) = std::env::var_os("CORRAL_FIXTURE_REPORTS") else {
        return Ok(());
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&r.deterministic_json()).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join(format!("{}__{}.json", f.category, f.name)),
        text + "\n",
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
