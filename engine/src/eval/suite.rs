//! Evaluation suites: a program, a policy and test cases, in TOML (plus optional JSON lines).
//!
//! ```toml
//! program = "solution.py"     # source or wasm, relative to this file (required)
//! policy = "strict"           # bundled name, or a TOML file relative to this file
//! compare = "trim"            # exact | trim (default) | tokens
//! float_tolerance = 1e-9      # for `tokens`: numbers within this (absolute or relative) match
//! cases_file = "cases.jsonl"  # optional: more cases, one JSON object per line
//!
//! [[case]]
//! name = "small"              # default: case-N
//! stdin = "1 2\n"             # or stdin_file = "in/1.txt"
//! args = ["--fast"]
//! env = { K = "v" }
//! input = "…"                 # or input_file: bytes for the guest SDK (corral_v1)
//! dirs = [{ host = "data", guest = "/data" }]   # read-only input dirs, relative to this file
//! expect_stdout = "3\n"       # or expect_stdout_file; omitted: output not checked
//! expect_exit = 0             # default 0
//! compare = "exact"           # per-case override
//! limits = { fuel = 1_000_000, wall_time_ms = 1000 }   # never above the policy's
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::compare::Compare;
use crate::job::Invocation;
use crate::policy::{LimitRequest, Policy};
use crate::sandbox::DirGrant;

/// Largest suite file, and largest case file.
pub const MAX_SUITE_BYTES: u64 = 64 << 20;
/// Most cases in a suite.
pub const MAX_CASES: usize = 1_000_000;

/// A suite error: the file (as given), an optional position, the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match position { Some((l, c)) => format!("{file}:{l}:{c}: {message}"), None => format!("{file}: {message}") })]
pub struct SuiteError {
    /// The file.
    pub file: String,
    /// 1-based line and column.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    program: String,
    policy: Option<String>,
    compare: Option<String>,
    float_tolerance: Option<f64>,
    cases_file: Option<String>,
    seed: Option<u64>,
    #[serde(default, rename = "case")]
    cases: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirFile {
    host: String,
    guest: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: Option<String>,
    stdin: Option<String>,
    stdin_file: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    input: Option<String>,
    input_file: Option<String>,
    #[serde(default)]
    dirs: Vec<DirFile>,
    expect_stdout: Option<String>,
    expect_stdout_file: Option<String>,
    expect_exit: Option<i32>,
    compare: Option<String>,
    limits: Option<LimitRequest>,
}

/// One test case, resolved.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name (unique in the suite).
    pub name: String,
    /// The run's inputs (the seed is the suite's).
    pub invocation: Invocation,
    /// Expected stdout (when checked).
    pub expect_stdout: Option<String>,
    /// Expected exit code.
    pub expect_exit: i32,
    /// How to compare stdout.
    pub compare: Compare,
    /// The policy for this case (the suite's, with the case's lower limits).
    pub policy: Arc<Policy>,
}

/// A resolved suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The suite file as given.
    pub file: String,
    /// The program file.
    pub program: PathBuf,
    /// The suite policy.
    pub policy: Arc<Policy>,
    /// Seed for every case.
    pub seed: u64,
    /// Cases, in order.
    pub cases: Vec<Case>,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    crate::policy::line_col(text, offset)
}

fn compare_of(s: Option<&str>, tol: f64) -> Result<Option<Compare>, String> {
    match s {
        None => Ok(None),
        Some("exact") => Ok(Some(Compare::Exact)),
        Some("trim") => Ok(Some(Compare::Trim)),
        Some("tokens") => Ok(Some(Compare::Tokens { tolerance: tol })),
        Some(other) => Err(format!(
            "unknown comparison `{other}` (use exact, trim or tokens)"
        )),
    }
}

impl Suite {
    /// Replaces the suite's policy (and every case's) with `policy` (`corral eval --policy`).
    pub fn replace_policy(&mut self, policy: Arc<Policy>) {
        for c in &mut self.cases {
            c.policy = policy.clone();
        }
        self.policy = policy;
    }

    /// Loads a suite file.
    ///
    /// # Errors
    ///
    /// Unreadable or malformed files, unknown keys, missing referenced files, case limits
    /// above the policy's, duplicate case names.
    ///
    /// # Ambient authority
    ///
    /// Reads the suite file and the files it references, relative to the suite's directory.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let file = path.display().to_string();
        let err = |message: String| SuiteError {
            file: file.clone(),
            position: None,
            message,
        };
        let meta =
            std::fs::metadata(path).map_err(|e| err(format!("cannot read the suite: {e}")))?;
        if meta.len() > MAX_SUITE_BYTES {
            return Err(err("the suite file is too large".into()));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read the suite: {e}")))?;
        let raw: SuiteFile = toml::from_str(&text).map_err(|e| SuiteError {
            file: file.clone(),
            position: e.span().map(|s| position(&text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let rel = |p: &str| base.join(p);
        let read = |p: &str| -> Result<Vec<u8>, SuiteError> {
            std::fs::read(rel(p)).map_err(|e| err(format!("cannot read `{p}`: {e}")))
        };
        let policy = match &raw.policy {
            None => Policy::strict(),
            Some(p) if p.ends_with(".toml") => {
                Policy::from_path(&rel(p)).map_err(|e| err(e.to_string()))?
            }
            Some(name) => Policy::resolve(name).map_err(|e| err(e.to_string()))?,
        };
        let policy = Arc::new(policy);
        let tol = raw.float_tolerance.unwrap_or(1e-9);
        if !(tol.is_finite() && tol >= 0.0) {
            return Err(err("`float_tolerance` must be a non-negative number".into()));
        }
        let default_compare = compare_of(raw.compare.as_deref(), tol)
            .map_err(err)?
            .unwrap_or(Compare::Trim);

        let mut raw_cases: Vec<(String, CaseFile)> =
            raw.cases.into_iter().map(|c| (String::new(), c)).collect();
        if let Some(cf) = &raw.cases_file {
            let bytes = read(cf)?;
            if bytes.len() as u64 > MAX_SUITE_BYTES {
                return Err(err(format!("`{cf}` is too large")));
            }
            let text = String::from_utf8(bytes).map_err(|_| err(format!("`{cf}` is not UTF-8")))?;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let c: CaseFile = serde_json::from_str(line).map_err(|e| SuiteError {
                    file: rel(cf).display().to_string(),
                    position: Some((i + 1, e.column())),
                    message: e.to_string(),
                })?;
                raw_cases.push((format!("{cf}:{}", i + 1), c));
            }
        }
        if raw_cases.len() > MAX_CASES {
            return Err(err(format!("more than {MAX_CASES} cases")));
        }
        let seed = raw.seed.unwrap_or(0);
        let mut cases = Vec::with_capacity(raw_cases.len());
        let mut names = std::collections::HashSet::new();
        for (i, (_, c)) in raw_cases.into_iter().enumerate() {
            let name = c.name.clone().unwrap_or_else(|| format!("case-{}", i + 1));
            let cerr = |m: String| err(format!("case `{name}`: {m}"));
            if !names.insert(name.clone()) {
                return Err(cerr("duplicate case name".into()));
            }
            let stdin = match (&c.stdin, &c.stdin_file) {
                (Some(_), Some(_)) => {
                    return Err(cerr("give `stdin` or `stdin_file`, not both".into()));
                }
                (Some(s), None) => s.clone().into_bytes(),
                (None, Some(f)) => read(f)?,
                (None, None) => Vec::new(),
            };
            let input = match (&c.input, &c.input_file) {
                (Some(_), Some(_)) => {
                    return Err(cerr("give `input` or `input_file`, not both".into()));
                }
                (Some(s), None) => Some(Arc::from(s.as_bytes())),
                (None, Some(f)) => Some(Arc::from(read(f)?)),
                (None, None) => None,
            };
            let expect_stdout = match (&c.expect_stdout, &c.expect_stdout_file) {
                (Some(_), Some(_)) => {
                    return Err(cerr(
                        "give `expect_stdout` or `expect_stdout_file`, not both".into(),
                    ));
                }
                (Some(s), None) => Some(s.clone()),
                (None, Some(f)) => Some(String::from_utf8_lossy(&read(f)?).into_owned()),
                (None, None) => None,
            };
            let mut dirs = Vec::new();
            for d in &c.dirs {
                let spec = format!("{}::{}", rel(&d.host).display(), d.guest);
                dirs.push(DirGrant::parse(&spec).map_err(|e| cerr(e.to_string()))?);
            }
            let compare = compare_of(c.compare.as_deref(), tol)
                .map_err(&cerr)?
                .unwrap_or(default_compare);
            let case_policy = match &c.limits {
                None => policy.clone(),
                Some(l) => Arc::new(policy.lowered(l).map_err(&cerr)?),
            };
            cases.push(Case {
                name,
                invocation: Invocation {
                    args: c.args,
                    env: c.env,
                    stdin,
                    dirs,
                    seed,
                    input,
                },
                expect_stdout,
                expect_exit: c.expect_exit.unwrap_or(0),
                compare,
                policy: case_policy,
            });
        }
        Ok(Suite {
            file,
            program: rel(&raw.program),
            policy,
            seed,
            cases,
        })
    }
}
