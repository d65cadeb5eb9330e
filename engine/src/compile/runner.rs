//! Language runners: interpreters that are themselves WebAssembly.
//!
//! Python and JavaScript need no host compiler: CPython (a WASI 0.2 component made with
//! componentize-py) and QuickJS (a WASI preview 1 module built from the `rquickjs` crate) run
//! inside the sandbox, and the guest's program is data handed to them as `argv[1]`
//! (`argv[0]` is the display name). Each runner is built once per machine, from pinned
//! PyPI/crates.io packages and the sources embedded in this binary, into the cache directory,
//! then reused. Building prints one progress line; a missing host tool gives an error naming
//! what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;

/// A runner kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunnerKind {
    /// CPython 3.14 via componentize-py.
    Python,
    /// QuickJS-ng via rquickjs.
    JavaScript,
}

/// [`RunnerKind::budget_factor`] of the Python runner (see `docs/budgets.md`).
pub const PYTHON_BUDGET_FACTOR: u64 = 24;

/// [`RunnerKind::budget_factor`] of the JavaScript runner (see `docs/budgets.md`).
pub const JS_BUDGET_FACTOR: u64 = 25;

/// The pinned componentize-py version.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The guest environment variable telling the JS runner how much wasm stack it has, so that
/// deep recursion becomes a JS `RangeError` rather than a wasm stack overflow. (Its QuickJS
/// stack limit is a quarter of this, and its C stack in linear memory is 2 MiB.)
pub const JS_STACK_ENV: (&str, &str) = ("CORRAL_WASM_STACK", "6291456");

const PY_FILES: &[(&str, &str)] = &[
    ("app.py", include_str!("../../../runners/python/app.py")),
    (
        "requirements.txt",
        include_str!("../../../runners/python/requirements.txt"),
    ),
    (
        "wit/world.wit",
        include_str!("../../../runners/python/wit/world.wit"),
    ),
    (
        "wit/deps/cli/cli.wit",
        include_str!("../../../runners/python/wit/deps/cli/cli.wit"),
    ),
    (
        "wit/deps/clocks/clocks.wit",
        include_str!("../../../runners/python/wit/deps/clocks/clocks.wit"),
    ),
    (
        "wit/deps/filesystem/filesystem.wit",
        include_str!("../../../runners/python/wit/deps/filesystem/filesystem.wit"),
    ),
    (
        "wit/deps/io/io.wit",
        include_str!("../../../runners/python/wit/deps/io/io.wit"),
    ),
    (
        "wit/deps/random/random.wit",
        include_str!("../../../runners/python/wit/deps/random/random.wit"),
    ),
    (
        "wit/deps/sockets/sockets.wit",
        include_str!("../../../runners/python/wit/deps/sockets/sockets.wit"),
    ),
];

const JS_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../runners/js/Cargo.toml")),
    ("Cargo.lock", include_str!("../../../runners/js/Cargo.lock")),
    ("build.rs", include_str!("../../../runners/js/build.rs")),
    (
        "src/main.rs",
        include_str!("../../../runners/js/src/main.rs"),
    ),
];

/// A built runner on disk.
#[derive(Debug, Clone)]
pub struct RunnerArtifact {
    /// Which runner.
    pub kind: RunnerKind,
    /// The wasm (component or module).
    pub wasm: PathBuf,
    /// blake3 of the wasm, as written when it was built.
    pub hash: crate::ModuleHash,
}

impl RunnerKind {
    /// How many times a compiled program's fuel (and wall-clock backstop) a program on this
    /// runner gets: the job stage multiplies the policy's `fuel` and `wall_time_ms` by it, so
    /// that a budget means about the same amount of the program's own work in every
    /// language. Measured in `docs/budgets.md` (fuel per second of native CPU time: CPython
    /// and node against clang -O2).
    pub fn budget_factor(self) -> u64 {
        match self {
            RunnerKind::Python => PYTHON_BUDGET_FACTOR,
            RunnerKind::JavaScript => JS_BUDGET_FACTOR,
        }
    }

    /// The runner a language runs on, if it runs on one.
    pub fn of(language: crate::compile::Language) -> Option<RunnerKind> {
        match language {
            crate::compile::Language::Python => Some(RunnerKind::Python),
            crate::compile::Language::JavaScript => Some(RunnerKind::JavaScript),
            _ => None,
        }
    }

    /// Environment the runner needs in every run (set over the policy's `[env]`, under the
    /// invocation's).
    pub fn guest_env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RunnerKind::Python => &[],
            RunnerKind::JavaScript => &[JS_STACK_ENV],
        }
    }

    fn name(self) -> &'static str {
        match self {
            RunnerKind::Python => "python",
            RunnerKind::JavaScript => "javascript",
        }
    }

    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RunnerKind::Python => PY_FILES,
            RunnerKind::JavaScript => JS_FILES,
        }
    }

    /// A hash of everything that determines the runner build (sources and pinned versions).
    fn recipe(self) -> String {
        let mut h = blake3::Hasher::new_derive_key("corral 2026 runner recipe v1");
        h.update(self.name().as_bytes());
        h.update(COMPONENTIZE_PY_VERSION.as_bytes());
        for (path, text) in self.files() {
            h.update(path.as_bytes());
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.finalize().to_hex()[..16].to_string()
    }
}

/// The default cache directory ([`hostfs::cache_dir`](crate::hostfs::cache_dir)).
///
/// # Ambient authority
///
/// Reads `CORRAL_HOME`, `XDG_CACHE_HOME` and `HOME`.
pub fn default_cache_dir() -> Option<PathBuf> {
    crate::hostfs::cache_dir()
}

/// Returns the runner, building it into `cache_dir` first if needed.
///
/// # Errors
///
/// A host tool is missing (the message names the package to install), the package registry
/// cannot be reached, or the build fails (the message carries the end of the tool's output).
pub fn ensure(kind: RunnerKind, cache_dir: &Path) -> Result<RunnerArtifact, Error> {
    let dir = cache_dir
        .join("runners")
        .join(format!("{}-{}", kind.name(), kind.recipe()));
    let wasm = dir.join("runner.wasm");
    let hash_file = dir.join("runner.hash");
    if let Some(a) = read_built(kind, &wasm, &hash_file) {
        return Ok(a);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::host(format!("cannot create the runner cache: {e}")))?;
    let _lock = lock(&dir.join(".lock"))?;
    if let Some(a) = read_built(kind, &wasm, &hash_file) {
        return Ok(a); // another process built it while we waited
    }
    let what = match kind {
        RunnerKind::Python => {
            "the Python runner (CPython 3.14 via componentize-py; one time, ~10-30 s)"
        }
        RunnerKind::JavaScript => {
            "the JavaScript runner (QuickJS via rquickjs; one time, ~20-60 s)"
        }
    };
    eprintln!("corral: building {what}…");
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    for (path, text) in kind.files() {
        let p = src.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::host(format!("cannot write runner sources: {e}")))?;
        }
        std::fs::write(&p, text)
            .map_err(|e| Error::host(format!("cannot write runner sources: {e}")))?;
    }
    let built = match kind {
        RunnerKind::Python => build_python(&dir, &src)?,
        RunnerKind::JavaScript => build_js(&dir, &src)?,
    };
    let bytes = std::fs::read(&built)
        .map_err(|e| Error::host(format!("cannot read the built runner: {e}")))?;
    let hash = crate::ModuleHash::of(&bytes);
    crate::hostfs::write_atomic(&wasm, &[&bytes])
        .and_then(|()| crate::hostfs::write_atomic(&hash_file, &[hash.to_string().as_bytes()]))
        .map_err(|e| Error::host(format!("cannot store the built runner: {e}")))?;
    eprintln!("corral: built {} ({} bytes)", wasm.display(), bytes.len());
    Ok(RunnerArtifact { kind, wasm, hash })
}

fn read_built(kind: RunnerKind, wasm: &Path, hash_file: &Path) -> Option<RunnerArtifact> {
    let text = std::fs::read_to_string(hash_file).ok()?;
    let hash = crate::ModuleHash::parse(text.trim())?;
    wasm.is_file().then(|| RunnerArtifact {
        kind,
        wasm: wasm.to_path_buf(),
        hash,
    })
}

/// An exclusive lock on `path` for the life of the returned file.
fn lock(path: &Path) -> Result<std::fs::File, Error> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::host(format!("cannot lock the runner cache: {e}")))?;
    f.lock()
        .map_err(|e| Error::host(format!("cannot lock the runner cache: {e}")))?;
    Ok(f)
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn run(cmd: &mut Command, what: &str, hint: &str) -> Result<(), Error> {
    let out = cmd
        .output()
        .map_err(|e| Error::host(format!("{what}: cannot start it ({e}) (hint: {hint})")))?;
    if !out.status.success() {
        return Err(Error::host(format!(
            "{what} failed (hint: {hint}):\n{}\n{}",
            tail(&out.stdout),
            tail(&out.stderr)
        )));
    }
    Ok(())
}

fn build_python(dir: &Path, src: &Path) -> Result<PathBuf, Error> {
    let venv = dir.join("venv");
    let cpy = venv.join("bin/componentize-py");
    let python = std::env::var_os("CORRAL_PYTHON").unwrap_or_else(|| "python3".into());
    if !cpy.is_file() {
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new(&python).arg("-m").arg("venv").arg(&venv),
            "creating a Python venv for componentize-py",
            "install Python 3.9+ with venv support, e.g. Debian packages `python3 python3-venv`",
        )?;
        run(
            Command::new(venv.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                    "--only-binary=:all:",
                    "--require-hashes",
                    "-r",
                ])
                .arg(src.join("requirements.txt")),
            &format!("installing componentize-py {COMPONENTIZE_PY_VERSION} from PyPI"),
            "PyPI must be reachable (the wheel is checked against pinned hashes)",
        )?;
    }
    let out = dir.join("build.wasm");
    run(
        Command::new(&cpy)
            .current_dir(src)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env("VIRTUAL_ENV", &venv)
            .args([
                "--quiet",
                "--wit-path",
                "wit",
                "--world",
                "runner",
                "componentize",
                "--python-path",
                ".",
                "--output",
            ])
            .arg(&out)
            .arg("app"),
        "componentize-py",
        "see the output above",
    )?;
    Ok(out)
}

fn build_js(dir: &Path, src: &Path) -> Result<PathBuf, Error> {
    crate::compile::ensure_rust_target("wasm32-wasip1")?;
    let find = |names: &[&str]| -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        for name in names {
            for d in std::env::split_paths(&path) {
                let p = d.join(name);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        None
    };
    let missing =
        "install the Debian packages `clang lld wasi-libc` (clang 14 and llvm-ar come with them)";
    let clang = find(&["clang-14", "clang"]).ok_or_else(|| {
        Error::host(format!(
            "building the JavaScript runner needs clang ({missing})"
        ))
    })?;
    let ar = find(&["llvm-ar-14", "llvm-ar"]).ok_or_else(|| {
        Error::host(format!(
            "building the JavaScript runner needs llvm-ar ({missing})"
        ))
    })?;
    let wasi_inc = Path::new("/usr/include/wasm32-wasi");
    let wasi_lib = Path::new("/usr/lib/wasm32-wasi");
    if !wasi_inc.join("stdio.h").is_file() {
        return Err(Error::host(format!(
            "building the JavaScript runner needs the wasi-libc headers ({missing})"
        )));
    }
    let sdk = dir.join("sdk");
    let _ = std::fs::remove_dir_all(&sdk);
    let link = |target: &Path, at: PathBuf| -> Result<(), Error> {
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::host(format!("cannot make the WASI SDK shim: {e}")))?;
        }
        std::os::unix::fs::symlink(target, &at)
            .map_err(|e| Error::host(format!("cannot make the WASI SDK shim: {e}")))
    };
    link(&clang, sdk.join("bin/clang"))?;
    link(&ar, sdk.join("bin/ar"))?;
    link(&ar, sdk.join("bin/llvm-ar"))?;
    if let Some(ld) = find(&["wasm-ld-14", "wasm-ld"]) {
        link(&ld, sdk.join("bin/wasm-ld"))?;
    }
    for t in ["wasm32-wasi", "wasm32-wasip1"] {
        link(wasi_inc, sdk.join("share/wasi-sysroot/include").join(t))?;
        link(wasi_lib, sdk.join("share/wasi-sysroot/lib").join(t))?;
    }
    let target = dir.join("target");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let rustflags = format!(
        "--remap-path-prefix={}=/cargo --remap-path-prefix={}=/corral-js-runner",
        cargo_home.display(),
        src.display()
    );
    run(
        Command::new("cargo")
            .current_dir(src)
            .env("WASI_SDK", &sdk)
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", rustflags)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .args([
                "build",
                "--release",
                "--locked",
                "--quiet",
                "--target",
                "wasm32-wasip1",
            ]),
        "building the JavaScript runner with cargo",
        "crates.io must be reachable; see the output above",
    )?;
    Ok(target.join("wasm32-wasip1/release/corral-js-runner.wasm"))
}
