//! Python arguments → the library's inputs: a [`Source`], a [`corral::Policy`], an
//! [`Invocation`] (with `files` staged into private directories granted read-only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral::compile::{Language, Source};
use corral::{Access, DirGrant, Invocation};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors;

/// A language by the names users write (`python`, `py`, `python3`, `javascript`, `js`,
/// `nodejs`, `c`, `cpp`, `c++`, `rust`, `rs`, `wasm`, `wat`).
pub(crate) fn language(name: &str) -> PyResult<Language> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "python" | "py" | "python3" => Language::Python,
        "javascript" | "js" | "nodejs" | "node" | "mjs" => Language::JavaScript,
        "c" => Language::C,
        "cpp" | "c++" | "cxx" | "cc" => Language::Cpp,
        "rust" | "rs" => Language::Rust,
        "wasm" => Language::Wasm,
        "wat" => Language::Wat,
        other => {
            return Err(errors::invalid(format!(
                "unknown language `{other}` (hint: python, javascript, c, cpp, rust, wasm or wat)"
            )));
        }
    })
}

/// The file name a program given as text or bytes is shown as (and, for interpreted
/// languages, its `argv[0]`).
fn default_name(lang: Language) -> &'static str {
    match lang {
        Language::Python => "main.py",
        Language::JavaScript => "main.js",
        Language::C => "main.c",
        Language::Cpp => "main.cpp",
        Language::Rust => "main.rs",
        Language::Wat => "main.wat",
        _ => "main.wasm",
    }
}

/// `os.fspath(obj)` for path-like objects (not `str`: a `str` is code or a path depending on
/// `language`).
fn fspath(obj: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Ok(None);
    }
    if !obj.hasattr("__fspath__")? {
        return Ok(None);
    }
    let p = obj.call_method0("__fspath__")?;
    Ok(Some(PathBuf::from(p.extract::<String>()?)))
}

/// The program a user passed: a path-like object (read, its language from the extension
/// unless `language` is given), `bytes` (wasm, or source text with `language`), or a `str`:
/// source text when `language` is given, else the path of a file.
pub(crate) fn source(
    obj: &Bound<'_, PyAny>,
    lang: Option<&str>,
    name: Option<&str>,
    max_wasm_bytes: u64,
) -> PyResult<Source> {
    let lang = lang.map(language).transpose()?;
    let path = match fspath(obj)? {
        Some(p) => Some(p),
        None if lang.is_none() && obj.is_instance_of::<PyString>() => {
            Some(PathBuf::from(obj.extract::<String>()?))
        }
        None => None,
    };
    let mut src = if let Some(path) = path {
        match lang {
            None if !path.exists() && obj.is_instance_of::<PyString>() => {
                return Err(errors::invalid(format!(
                    "`{}`: no such file (hint: a str without `language=` is a path; pass language=\"python\" or another to run it as code)",
                    path.display()
                )));
            }
            None => Source::from_file(&path, max_wasm_bytes).map_err(errors::from_corral)?,
            Some(l) => {
                let max = if l == Language::Wasm {
                    max_wasm_bytes
                } else {
                    corral::compile::MAX_SOURCE_BYTES as u64
                };
                let bytes = corral::hostfs::read_bounded(&path, max).map_err(|e| {
                    errors::invalid(format!("cannot read `{}`: {e}", path.display()))
                })?;
                let shown = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| default_name(l).to_string());
                Source::new(bytes, shown, l)
            }
        }
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        let bytes = b.as_bytes().to_vec();
        let l = match lang {
            Some(l) => l,
            None if bytes.starts_with(b"\0asm") => Language::Wasm,
            None => {
                return Err(errors::invalid(
                    "bytes that are not a wasm binary need `language=` (hint: language=\"python\")",
                ));
            }
        };
        Source::new(bytes, default_name(l), l)
    } else if let (Ok(s), Some(l)) = (obj.cast::<PyString>(), lang) {
        Source::new(s.to_str()?.as_bytes().to_vec(), default_name(l), l)
    } else {
        return Err(errors::invalid(format!(
            "a program is a str, bytes or a path, not `{}`",
            obj.get_type().name()?
        )));
    };
    if let Some(n) = name {
        if n.is_empty() || n.contains('/') || n.contains('\0') {
            return Err(errors::invalid(format!(
                "`name` must be a file name without directories, not `{n}`"
            )));
        }
        src.name = n.to_string();
    }
    Ok(src)
}

/// A validated policy: what a run may do (limits, filesystem grants, environment).
///
/// Make one with `Policy.bundled("standard")`, `Policy.from_file(path)` or
/// `Policy.from_toml(text)`; anywhere a policy is accepted, a bundled name or a path to a
/// `.toml` file works too.
#[pyclass(module = "corral", name = "Policy", frozen)]
#[derive(Debug)]
pub struct Policy {
    pub(crate) inner: Arc<corral::Policy>,
}

#[pymethods]
impl Policy {
    /// A bundled policy: `strict` (the default), `standard` or `permissive`.
    #[staticmethod]
    fn bundled(name: &str) -> PyResult<Policy> {
        corral::Policy::bundled(name)
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| errors::from_corral(e.into()))
    }

    /// A policy from a TOML file.
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<Policy> {
        corral::Policy::from_path(&path)
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| errors::from_corral(e.into()))
    }

    /// A policy from TOML text; `name` is used in error messages and reports.
    #[staticmethod]
    #[pyo3(signature = (text, name = "policy"))]
    fn from_toml(text: &str, name: &str) -> PyResult<Policy> {
        corral::Policy::parse(&format!("{name}.toml"), text)
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| errors::from_corral(e.into()))
    }

    /// The policy's name (the bundled name, or the file stem).
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The canonical TOML form: every key explicit, no `extends`.
    fn to_toml(&self) -> String {
        self.inner.to_canonical_toml()
    }

    fn __repr__(&self) -> String {
        format!("Policy({:?})", self.inner.name())
    }
}

/// The policy a user passed (`None` when none was).
pub(crate) fn policy(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Arc<corral::Policy>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if let Ok(p) = obj.cast::<Policy>() {
        return Ok(Some(p.get().inner.clone()));
    }
    if let Some(path) = fspath(obj)? {
        return corral::Policy::from_path(&path)
            .map(|p| Some(Arc::new(p)))
            .map_err(|e| errors::from_corral(e.into()));
    }
    if let Ok(s) = obj.extract::<String>() {
        return corral::Policy::resolve(&s)
            .map(|p| Some(Arc::new(p)))
            .map_err(|e| errors::from_corral(e.into()));
    }
    Err(errors::invalid(format!(
        "a policy is a Policy, a bundled name or a path, not `{}`",
        obj.get_type().name()?
    )))
}

/// Bytes from `str` (UTF-8) or `bytes`.
pub(crate) fn bytes_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    Err(errors::invalid(format!(
        "`{what}` must be str or bytes, not `{}`",
        obj.get_type().name()?
    )))
}

/// The inputs of one run, and the private directories holding its `files` (kept until the
/// run has staged them).
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) invocation: Invocation,
    pub(crate) staged: Vec<tempfile::TempDir>,
}

/// What a run gets besides its program.
#[derive(Debug, Default)]
pub(crate) struct InputArgs<'a, 'py> {
    pub(crate) stdin: Option<&'a Bound<'py, PyAny>>,
    pub(crate) args: Option<Vec<String>>,
    pub(crate) env: Option<BTreeMap<String, String>>,
    pub(crate) seed: u64,
    pub(crate) files: Option<&'a Bound<'py, PyAny>>,
    pub(crate) input: Option<&'a Bound<'py, PyAny>>,
}

impl InputArgs<'_, '_> {
    /// Converts the arguments, writing `files` into private directories under `work`.
    pub(crate) fn resolve(&self, work: &Path) -> PyResult<Inputs> {
        let stdin = match self.stdin.filter(|s| !s.is_none()) {
            Some(s) => bytes_of(s, "stdin")?,
            None => Vec::new(),
        };
        let input = match self.input.filter(|s| !s.is_none()) {
            Some(s) => Some(Arc::<[u8]>::from(bytes_of(s, "input")?)),
            None => None,
        };
        let (dirs, staged) = match self.files.filter(|f| !f.is_none()) {
            Some(f) => stage_files(f, work)?,
            None => (Vec::new(), Vec::new()),
        };
        Ok(Inputs {
            invocation: Invocation {
                args: self.args.clone().unwrap_or_default(),
                env: self.env.clone().unwrap_or_default(),
                stdin,
                dirs,
                seed: self.seed,
                input,
            },
            staged,
        })
    }
}

/// `files={"/data/in.txt": "…"}`: each top-level guest directory (`/data`) becomes a private
/// directory holding the given files, granted read-only (the sandbox stages its own copy).
fn stage_files(
    files: &Bound<'_, PyAny>,
    work: &Path,
) -> PyResult<(Vec<DirGrant>, Vec<tempfile::TempDir>)> {
    let files = files
        .cast::<PyDict>()
        .map_err(|_| errors::invalid("`files` must be a dict of guest paths to str or bytes"))?;
    // Top-level directory → (path components below it, contents).
    type Tree = BTreeMap<String, Vec<(Vec<String>, Vec<u8>)>>;
    let mut by_top = Tree::new();
    for (k, v) in files.iter() {
        let path: String = k
            .extract()
            .map_err(|_| errors::invalid("`files` keys must be guest paths (str)"))?;
        let bad = |why: &str| {
            errors::invalid(format!(
                "files: `{path}`: {why} (hint: an absolute path inside a directory, e.g. `/data/input.txt`)"
            ))
        };
        let rest = path.strip_prefix('/').ok_or_else(|| bad("not absolute"))?;
        let parts: Vec<String> = rest.split('/').map(str::to_string).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p == "." || p == ".." || p.contains('\0'))
        {
            return Err(bad("empty, `.` or `..` components"));
        }
        if parts.len() < 2 {
            return Err(bad("a file directly under `/`"));
        }
        let bytes = bytes_of(&v, &format!("files[{path:?}]"))?;
        by_top
            .entry(parts[0].clone())
            .or_default()
            .push((parts[1..].to_vec(), bytes));
    }
    let mut dirs = Vec::new();
    let mut staged = Vec::new();
    for (top, entries) in by_top {
        let guest = corral::policy::GuestPath::new(&format!("/{top}"))
            .map_err(|e| errors::invalid(format!("files: `/{top}`: {e}")))?;
        let dir = tempfile::Builder::new()
            .prefix("files-")
            .tempdir_in(work)
            .map_err(|e| errors::host(format!("cannot stage `files`: {e}")))?;
        for (rel, bytes) in entries {
            let mut p = dir.path().to_path_buf();
            p.extend(&rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    errors::invalid(format!("files: `/{top}/{}`: {e}", rel.join("/")))
                })?;
            }
            std::fs::write(&p, bytes)
                .map_err(|e| errors::invalid(format!("files: `/{top}/{}`: {e}", rel.join("/"))))?;
        }
        dirs.push(DirGrant {
            host: dir.path().to_path_buf(),
            guest,
            access: Access::ReadOnly,
        });
        staged.push(dir);
    }
    Ok((dirs, staged))
}
