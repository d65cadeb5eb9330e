//! The language runners are pinned artifacts (DESIGN.md decision 16).
//!
//! - `runner::pinned::<kind>`: the runner in the shared test cache (built on first use, so on
//!   a fresh clone in CI) has exactly the bytes pinned in `runners/pins.toml`.
//! - `runner::rebuilt::<kind>`: the runner built a second time, in a child process with a
//!   different `HOME`, `TMPDIR`, `CARGO_HOME`, working directory and cache path (with spaces),
//!   a Turkish locale, another time zone and hostile build variables (`RUSTFLAGS`,
//!   `CARGO_PROFILE_RELEASE_OPT_LEVEL`, `CFLAGS`, `PYTHONHASHSEED`, `SOURCE_DATE_EPOCH`) has
//!   identical bytes; and every Python or JavaScript fixture gives the identical report under
//!   both builds.
//!
//! Cost: the second Python build reuses the compiled builder program (a deterministic tool;
//! compiling it is what takes minutes) and takes ~20 s; the second JavaScript build is a
//! whole `cargo build` in a fresh cargo home, ~1-2 min. Both run in every `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use corral::compile::runner::{self, RunnerKind};
use libtest_mimic::{Failed, Trial};

use crate::fixtures;
use crate::support;

/// Set in the child process: build this runner kind into [`CHILD_CACHE_ENV`] and exit.
pub const CHILD_KIND_ENV: &str = "CORRAL_IT_BUILD_RUNNER";
/// The cache directory the child builds into.
pub const CHILD_CACHE_ENV: &str = "CORRAL_IT_BUILD_CACHE";

const KINDS: [RunnerKind; 3] = [
    RunnerKind::Python,
    RunnerKind::JavaScript,
    RunnerKind::PythonSci,
];

fn kind_named(name: &str) -> Option<RunnerKind> {
    KINDS.into_iter().find(|k| k.name() == name)
}

/// The child's whole job: build one runner (its pin checked as always) and print its hash.
pub fn child_build(kind: &str) -> std::process::ExitCode {
    let Some(kind) = kind_named(kind) else {
        eprintln!("unknown runner `{kind}`");
        return std::process::ExitCode::FAILURE;
    };
    let Some(cache) = std::env::var_os(CHILD_CACHE_ENV) else {
        eprintln!("{CHILD_CACHE_ENV} is not set");
        return std::process::ExitCode::FAILURE;
    };
    match runner::ensure(kind, Path::new(&cache)) {
        Ok(a) => {
            println!("{}", a.hash);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn trials() -> Vec<Trial> {
    let mut trials = Vec::new();
    for kind in KINDS {
        trials.push(Trial::test(
            format!("runner::pinned::{}", kind.name()),
            move || pinned(kind),
        ));
        trials.push(Trial::test(
            format!("runner::rebuilt::{}", kind.name()),
            move || rebuilt(kind),
        ));
    }
    trials
}

fn pinned(kind: RunnerKind) -> Result<(), Failed> {
    let built = runner::ensure(kind, &support::cache_dir()).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&built.wasm).map_err(|e| e.to_string())?;
    let hash = corral::ModuleHash::of(&bytes);
    let pin = kind.pin();
    if hash.to_string() != pin.blake3 || bytes.len() as u64 != pin.size {
        return Err(format!(
            "{} runner: built {hash} ({} bytes, recipe {}), pinned {} ({} bytes, recipe {})",
            kind.name(),
            bytes.len(),
            kind.recipe(),
            pin.blake3,
            pin.size,
            pin.recipe
        )
        .into());
    }
    Ok(())
}

/// Where rustup keeps its toolchains for this user (the child gets another `HOME`).
fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
}

fn rebuilt(kind: RunnerKind) -> Result<(), Failed> {
    let first = runner::ensure(kind, &support::cache_dir()).map_err(|e| e.to_string())?;
    let scratch = tempfile::Builder::new()
        .prefix("corral runner rebuild ")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let base = scratch.path();
    let cache = base.join("another cache, ünïcode");
    let (home, tmp, cwd, cargo_home) = (
        base.join("home"),
        base.join("tmp dir"),
        base.join("cwd"),
        base.join("cargo home"),
    );
    for d in [&cache, &home, &tmp, &cwd, &cargo_home] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    if kind == RunnerKind::Python {
        seed_python_builder(&cache)?;
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.env_clear()
        .current_dir(&cwd)
        .env(CHILD_KIND_ENV, kind.name())
        .env(CHILD_CACHE_ENV, &cache)
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("CARGO_HOME", &cargo_home)
        .env("LANG", "tr_TR.UTF-8")
        .env("LC_ALL", "tr_TR.UTF-8")
        .env("TZ", "Pacific/Chatham")
        .env("USER", "someone-else")
        .env("RUSTFLAGS", "-C opt-level=1 -C debuginfo=2")
        .env("CARGO_ENCODED_RUSTFLAGS", "-Copt-level=0")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CFLAGS", "-O0 -g")
        .env("CC", "false")
        .env("PYTHONHASHSEED", "12345")
        .env("SOURCE_DATE_EPOCH", "0");
    for k in ["PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    if let Some(r) = rustup_home() {
        cmd.env("RUSTUP_HOME", r);
    }
    let out = cmd.output().map_err(|e| format!("cannot spawn: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the second build failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let second = runner::ensure(kind, &cache).map_err(|e| e.to_string())?;
    let (a, b) = (
        std::fs::read(&first.wasm).map_err(|e| e.to_string())?,
        std::fs::read(&second.wasm).map_err(|e| e.to_string())?,
    );
    if a != b {
        let at = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        return Err(format!(
            "two builds of the {} runner differ: {} ({} bytes) and {} ({} bytes), first at byte {at}",
            kind.name(),
            first.hash,
            a.len(),
            second.hash,
            b.len()
        )
        .into());
    }
    if kind == RunnerKind::PythonSci {
        share_artifact(&first.hash, &cache)?;
    }
    same_reports(kind, &support::cache_dir(), &cache)
}

/// Links the first cache's precompiled code of the runner `hash` into `cache`: the bytes are
/// identical (checked above), so compiling them again (minutes, 0.4 GB, for the scientific
/// runner) would make the same code; the reports then check the runs.
fn share_artifact(hash: &corral::ModuleHash, cache: &Path) -> Result<(), Failed> {
    // Artifacts are named by the first 32 hex digits of the module's blake3.
    let hex = hash.to_string();
    let prefix = hex
        .trim_start_matches("blake3:")
        .get(..32)
        .unwrap_or_default();
    let from = support::cache_dir().join("artifacts");
    let to = cache.join("artifacts");
    std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(&from)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            std::fs::hard_link(e.path(), to.join(&name))
                .or_else(|_| std::fs::copy(e.path(), to.join(&name)).map(|_| ()))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Copies the compiled builder program into `cache`, so the second Python build does not spend
/// minutes compiling the same deterministic tool again (what it does is what is tested).
fn seed_python_builder(cache: &Path) -> Result<(), Failed> {
    let runners = support::cache_dir().join("runners");
    let entries = std::fs::read_dir(&runners).map_err(|e| e.to_string())?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let bin = e.path().join("bin");
        if name.starts_with("python-builder-") && bin.is_dir() {
            let to = cache.join("runners").join(&name).join("bin");
            std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
            for f in std::fs::read_dir(&bin)
                .map_err(|e| e.to_string())?
                .flatten()
            {
                std::fs::copy(f.path(), to.join(f.file_name())).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// Every fixture in the runner's language gives the same report with either cache.
fn same_reports(kind: RunnerKind, a: &Path, b: &Path) -> Result<(), Failed> {
    let ext = match kind {
        RunnerKind::JavaScript => "js",
        _ => "py",
    };
    // A `.py` fixture runs on the runner its imports call for: each Python runner is
    // compared on its own fixtures.
    let on_this_runner = |source: &Path| match kind {
        RunnerKind::JavaScript => true,
        _ => {
            let sci = std::fs::read_to_string(source)
                .is_ok_and(|text| corral::compile::wants_sci_runner(&text));
            sci == (kind == RunnerKind::PythonSci)
        }
    };
    let (all, _) = fixtures::discover();
    let mut compared = 0;
    for f in all.iter().filter(|f| {
        f.source
            .as_ref()
            .is_some_and(|s| s.extension().is_some_and(|e| e == ext) && on_this_runner(s))
    }) {
        let ra = fixtures::report_with_cache(f, a)?;
        let rb = fixtures::report_with_cache(f, b)?;
        if ra.deterministic_json() != rb.deterministic_json() {
            return Err(format!(
                "fixture {} reports differently under the two builds:\n{}\n---\n{}",
                f.id(),
                serde_json::to_string_pretty(&ra.deterministic_json()).unwrap_or_default(),
                serde_json::to_string_pretty(&rb.deterministic_json()).unwrap_or_default()
            )
            .into());
        }
        compared += 1;
    }
    if compared < 5 {
        return Err(format!("only {compared} {ext} fixtures compared").into());
    }
    Ok(())
}
