//! Policies: what a run may do and how much of each resource it may use.
//!
//! A policy is TOML. It is parsed in two stages: [`PolicyFile`](file) is the raw serde form
//! (unknown keys rejected, every value carrying its source span), and [`Policy`] is the
//! validated, normalised result. Only [`Policy`] crosses module boundaries; nothing downstream
//! ever sees a raw string from a policy file.
//!
//! Policies name guest-visible things only (guest paths, env, limits). Host paths are bound by
//! the invocation (`--dir HOST::GUEST`), never by a policy, so a policy file can be shared or
//! embedded in a run record without carrying anything of the machine it was written on.
//!
//! # Keys and what `0` means
//!
//! | key | unit | range | `0` means |
//! |---|---|---|---|
//! | `limits.fuel` | fuel units (≈ one wasm instruction) | 0 ..= 10¹³ | the guest cannot execute anything: every run ends with `limit = fuel` |
//! | `limits.wall_time_ms` | milliseconds | 1 ..= 3 600 000 | rejected: a run with no wall-clock budget cannot start |
//! | `limits.memory_bytes` | bytes, all linear memory | 0 ..= 4 GiB | no linear memory: modules declaring one are rejected |
//! | `limits.stdout_bytes`, `limits.stderr_bytes` | bytes captured | 0 ..= 256 MiB | nothing is captured; the first write hits the cap |
//! | `limits.stdin_bytes` | bytes of stdin given to the guest | 0 ..= 1 GiB | the guest's stdin must be empty |
//! | `limits.fs_bytes` | bytes written to writable dirs, cumulative | 0 ..= 16 GiB | no byte may be written to a file |
//! | `limits.fs_files` | files, dirs and links created | 0 ..= 1 000 000 | nothing may be created |
//! | `limits.open_files` | guest file descriptors open at once | 0 ..= 1 024 | the guest may open no file |
//! | `limits.table_elements` | elements, all tables | 0 ..= 1 000 000 | no table may hold an element |
//! | `limits.module_bytes` | bytes of the wasm module | 8 ..= 512 MiB | rejected (no module is that small) |
//! | `limits.functions` | functions defined + imported | 0 ..= 1 000 000 | every module with a function is rejected |
//!
//! Every limit is a hard maximum on what the guest can use; none of them means "unlimited".

mod bundled;
mod file;
pub(crate) use file::line_col;
mod guest_path;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use bundled::{BUNDLED, bundled_names};
pub use guest_path::{GuestPath, GuestPathError};

/// The policy format version this build understands.
pub const POLICY_VERSION: u32 = 1;

/// Largest policy file accepted, in bytes. Policies are small; anything larger is hostile.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// At most this many environment variables reach a guest (policy and `--env` together).
pub const MAX_ENV_VARS: usize = 256;
/// At most this many bytes of environment (`KEY=VALUE\0` summed) reach a guest.
pub const MAX_ENV_BYTES: usize = 64 * 1024;

/// Most resources (descriptors, streams, pollables, …) a component run may hold at once in
/// the host's table; one more is a `limit = open_files`. Below wasmtime's own per-store
/// handle cap (100,000), so the host's cap is never what stops a guest. A fixed limit of the
/// gate (`capability::rules`), here so that the verdict messages can name it.
pub const MAX_HANDLES: usize = 20_000;

/// The largest `limits.fuel` a policy may set (also the most a budget factor reaches).
pub const MAX_FUEL: u64 = 10_000_000_000_000;

/// The largest `limits.wall_time_ms` a policy may set, as a duration.
pub const MAX_WALL_TIME: Duration = Duration::from_millis(3_600_000);

/// A deterministic CPU budget in wasmtime fuel units (about one per wasm instruction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fuel(pub u64);

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// A count of things (files, descriptors, table elements, functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count(pub u64);

impl fmt::Display for Fuel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * KIB;
        const GIB: u64 = 1024 * MIB;
        let b = self.0;
        if b >= GIB && b.is_multiple_of(GIB) {
            write!(f, "{} GiB", b / GIB)
        } else if b >= MIB && b.is_multiple_of(MIB) {
            write!(f, "{} MiB", b / MIB)
        } else if b >= KIB && b.is_multiple_of(KIB) {
            write!(f, "{} KiB", b / KIB)
        } else {
            write!(f, "{b} bytes")
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The resource limits of a run. Every field is a hard maximum; see the module docs for units,
/// ranges and what `0` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deterministic CPU budget. By default (strict) 2·10⁹ units.
    pub fuel: Fuel,
    /// Wall-clock backstop (non-deterministic). By default (strict) 5 s.
    pub wall_time: Duration,
    /// All linear memory together. By default (strict) 256 MiB.
    pub memory: Bytes,
    /// Captured stdout. By default (strict) 1 MiB.
    pub stdout: Bytes,
    /// Captured stderr. By default (strict) 1 MiB.
    pub stderr: Bytes,
    /// The guest's stdin (an invocation with more is invalid input; the command reads no
    /// more than this). By default (strict) 16 MiB.
    pub stdin: Bytes,
    /// Cumulative bytes the guest may write into files (writes, and extensions by
    /// `set_size`/`allocate`; deletions do not refund). By default (strict) 0.
    pub fs_bytes: Bytes,
    /// Files, directories and links the guest may create. By default (strict) 0.
    pub fs_files: Count,
    /// File descriptors the guest may hold open at once (not stdio, not preopens).
    /// By default (strict) 16.
    pub open_files: Count,
    /// Table elements, all tables together. By default 10 000.
    pub table_elements: Count,
    /// Size of the wasm module. By default (strict) 64 MiB.
    pub module_bytes: Bytes,
    /// Functions (imported + defined) in the module. By default (strict) 100 000.
    pub functions: Count,
}

/// What happens when the gate refuses a guest's call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDenial {
    /// The guest gets the WASI error and the run goes on (default).
    #[default]
    Errno,
    /// The first refusal ends the run with `verdict = denied`.
    EndRun,
}

/// Filesystem grants of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsPolicy {
    /// A fresh, private, empty writable directory at this guest path, removed after the run.
    /// By default none.
    pub scratch: Option<GuestPath>,
    /// Whether `--dir HOST::GUEST:rw` may be used. By default `false`.
    pub allow_rw_dirs: bool,
}

/// The walls a run may be required to have (`[isolation] require`): the names of the
/// report's `isolation` object.
pub const WALLS: [&str; 6] = [
    "process",
    "no_new_privs",
    "seccomp",
    "landlock",
    "netns",
    "rlimits",
];

/// What isolation a run must have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IsolationPolicy {
    /// Walls (from [`WALLS`]) that must be up, or the run is refused (`invalid_input`),
    /// sorted. By default none.
    pub require: Vec<String>,
}

/// Virtual clock settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPolicy {
    /// Wall-clock time the guest sees at the start of the run, in seconds since the Unix
    /// epoch. Also the timestamp of every file the guest sees. By default 1 700 000 000
    /// (2023-11-14T22:13:20Z).
    pub epoch_secs: u64,
}

impl Default for ClockPolicy {
    fn default() -> Self {
        ClockPolicy {
            epoch_secs: 1_700_000_000,
        }
    }
}

/// A validated policy. Immutable and cheap to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    /// Resource limits.
    pub limits: Limits,
    /// Filesystem grants.
    pub fs: FsPolicy,
    /// Fixed guest environment (merged under `--env`), sorted by key.
    pub env: BTreeMap<String, String>,
    /// What a refused call does to the run.
    pub on_denial: OnDenial,
    /// Virtual clock settings.
    pub clock: ClockPolicy,
    /// Walls the run must have.
    pub isolation: IsolationPolicy,
}

/// A policy that failed to load: the file (as the user named it), the position, the message
/// and an optional hint. Displayed as `file:line:col: message (hint: …)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct PolicyError {
    /// The file name as given by the user, or `<bundled:NAME>`.
    pub file: String,
    /// 1-based line and column, when the error has a position.
    pub position: Option<(usize, usize)>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl PolicyError {
    fn render(&self) -> String {
        let mut s = match self.position {
            Some((line, col)) => format!("{}:{line}:{col}: {}", self.file, self.message),
            None => format!("{}: {}", self.file, self.message),
        };
        if let Some(hint) = &self.hint {
            s.push_str(&format!(" (hint: {hint})"));
        }
        s
    }
}

impl Policy {
    /// The default policy, `strict`.
    pub fn strict() -> Policy {
        Self::bundled("strict").unwrap_or_else(|e| unreachable!("bundled strict policy: {e}"))
    }

    /// A bundled policy by name (`strict`, `standard`, `permissive`).
    ///
    /// # Errors
    ///
    /// Unknown names, or a bundled file that fails validation (a build defect, tested).
    pub fn bundled(name: &str) -> Result<Policy, PolicyError> {
        match bundled::source(name) {
            Some(src) => file::load(&format!("<bundled:{name}>"), src, name),
            None => Err(PolicyError {
                file: name.to_string(),
                position: None,
                message: format!("unknown bundled policy `{name}`"),
                hint: Some(format!(
                    "bundled policies are {}; a path to a .toml file also works",
                    bundled_names().join(", ")
                )),
            }),
        }
    }

    /// Parses and validates policy text. `file` is the name used in error messages.
    ///
    /// # Errors
    ///
    /// Any syntax error, unknown key, wrong type, out-of-range value or conflict, with
    /// `file:line:col` and a hint.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let name = Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.to_string());
        file::load(file, text, &name)
    }

    /// Loads a policy from a file path.
    ///
    /// # Errors
    ///
    /// Unreadable or oversized files, and everything [`Policy::parse`] rejects.
    ///
    /// # Ambient authority
    ///
    /// Reads `path` from the host filesystem with the process's authority.
    pub fn from_path(path: &Path) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let err = |message: String| PolicyError {
            file: shown.clone(),
            position: None,
            message,
            hint: None,
        };
        // A regular file of at most MAX_POLICY_BYTES: never /dev/zero, never a FIFO.
        let bytes = crate::hostfs::read_bounded(path, MAX_POLICY_BYTES as u64).map_err(|e| {
            err(match e {
                crate::hostfs::ReadError::TooLarge { size, max } => {
                    format!("policy file is {size} bytes, more than the {max} allowed")
                }
                other => format!("cannot read policy: {other}"),
            })
        })?;
        let text = String::from_utf8(bytes).map_err(|e| PolicyError {
            hint: Some("policies are UTF-8 TOML".into()),
            ..err(format!(
                "policy is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Self::parse(&shown, &text)
    }

    /// Resolves `--policy NAME|PATH`: a bundled name, or else a path to a TOML file.
    ///
    /// # Errors
    ///
    /// As [`Policy::bundled`] and [`Policy::from_path`].
    pub fn resolve(spec: &str) -> Result<Policy, PolicyError> {
        if bundled::source(spec).is_some() {
            return Self::bundled(spec);
        }
        let path = Path::new(spec);
        if !spec.contains('/') && !spec.ends_with(".toml") && !path.exists() {
            return Self::bundled(spec);
        }
        Self::from_path(path)
    }

    /// The policy's name: the bundled name, or the file stem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This policy with `name` replaced (used when a policy is restored from a record).
    pub fn with_name(mut self, name: &str) -> Policy {
        self.name = name.to_string();
        self
    }

    /// The canonical TOML form: every key explicit, no `extends`, sorted. Parsing it gives
    /// back an equal policy (tested). Records embed this form.
    pub fn to_canonical_toml(&self) -> String {
        file::to_canonical_toml(self)
    }

    /// This policy with `req`'s lower limits: a request may lower any limit it names, never
    /// raise one.
    ///
    /// # Errors
    ///
    /// The first key above this policy's value (``"`limits.KEY` = V is above the policy's
    /// MAX"``), or `wall_time_ms = 0`.
    pub fn lowered(&self, req: &LimitRequest) -> Result<Policy, String> {
        let mut p = self.clone();
        let check = |key: &str, v: u64, max: u64| {
            if v > max {
                Err(format!("`limits.{key}` = {v} is above the policy's {max}"))
            } else {
                Ok(v)
            }
        };
        if let Some(v) = req.fuel {
            p.limits.fuel = Fuel(check("fuel", v, self.limits.fuel.0)?);
        }
        if let Some(v) = req.wall_time_ms {
            let max = u64::try_from(self.limits.wall_time.as_millis()).unwrap_or(u64::MAX);
            if v == 0 {
                return Err("`limits.wall_time_ms` must be at least 1".into());
            }
            p.limits.wall_time = Duration::from_millis(check("wall_time_ms", v, max)?);
        }
        if let Some(v) = req.memory_bytes {
            p.limits.memory.0 = check("memory_bytes", v, self.limits.memory.0)?;
        }
        if let Some(v) = req.stdout_bytes {
            p.limits.stdout.0 = check("stdout_bytes", v, self.limits.stdout.0)?;
        }
        if let Some(v) = req.stderr_bytes {
            p.limits.stderr.0 = check("stderr_bytes", v, self.limits.stderr.0)?;
        }
        debug_assert!(
            p.within(self).is_ok(),
            "a lowered policy stays within its own"
        );
        Ok(p)
    }

    /// Checks that `self` grants nothing `max` does not: every limit at most `max`'s, no
    /// scratch or rw dirs unless `max` has them.
    ///
    /// # Errors
    ///
    /// The first key where `self` exceeds `max`, by name.
    pub fn within(&self, max: &Policy) -> Result<(), String> {
        let l = &self.limits;
        let m = &max.limits;
        let checks: [(&str, u128, u128); 12] = [
            ("limits.fuel", l.fuel.0.into(), m.fuel.0.into()),
            (
                "limits.wall_time_ms",
                l.wall_time.as_millis(),
                m.wall_time.as_millis(),
            ),
            ("limits.memory_bytes", l.memory.0.into(), m.memory.0.into()),
            ("limits.stdout_bytes", l.stdout.0.into(), m.stdout.0.into()),
            ("limits.stderr_bytes", l.stderr.0.into(), m.stderr.0.into()),
            ("limits.stdin_bytes", l.stdin.0.into(), m.stdin.0.into()),
            ("limits.fs_bytes", l.fs_bytes.0.into(), m.fs_bytes.0.into()),
            ("limits.fs_files", l.fs_files.0.into(), m.fs_files.0.into()),
            (
                "limits.open_files",
                l.open_files.0.into(),
                m.open_files.0.into(),
            ),
            (
                "limits.table_elements",
                l.table_elements.0.into(),
                m.table_elements.0.into(),
            ),
            (
                "limits.module_bytes",
                l.module_bytes.0.into(),
                m.module_bytes.0.into(),
            ),
            (
                "limits.functions",
                l.functions.0.into(),
                m.functions.0.into(),
            ),
        ];
        for (key, v, max_v) in checks {
            if v > max_v {
                return Err(format!("`{key}` = {v} exceeds the maximum {max_v}"));
            }
        }
        if self.fs.allow_rw_dirs && !max.fs.allow_rw_dirs {
            return Err("`fs.allow_rw_dirs` is not allowed".into());
        }
        Ok(())
    }
}

/// Lower limits asked for by one case or one request (an eval suite's `limits = {…}`, the
/// service's `limits` object): each key, when present, replaces the policy's value and must
/// not exceed it. Applied with [`Policy::lowered`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Fuel units.
    pub fuel: Option<u64>,
    /// Milliseconds (at least 1).
    pub wall_time_ms: Option<u64>,
    /// Bytes of linear memory.
    pub memory_bytes: Option<u64>,
    /// Bytes of captured stdout.
    pub stdout_bytes: Option<u64>,
    /// Bytes of captured stderr.
    pub stderr_bytes: Option<u64>,
}

/// Checks one environment variable; used for policy `[env]` and for `--env`.
///
/// # Errors
///
/// Empty keys, keys with `=` or NUL, values with NUL.
pub fn check_env_var(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("environment variable names must not be empty".into());
    }
    if key.contains('=') {
        return Err(format!(
            "environment variable name `{}` contains `=`",
            key.escape_debug()
        ));
    }
    if key.contains('\0') {
        return Err(format!(
            "environment variable name `{}` contains a NUL byte",
            key.escape_debug()
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of environment variable `{}` contains a NUL byte",
            key.escape_debug()
        ));
    }
    Ok(())
}

/// Checks the whole environment against [`MAX_ENV_VARS`] and [`MAX_ENV_BYTES`].
///
/// # Errors
///
/// Too many variables or too many bytes.
pub fn check_env_size(env: &BTreeMap<String, String>) -> Result<(), String> {
    if env.len() > MAX_ENV_VARS {
        return Err(format!(
            "{} environment variables, more than the {MAX_ENV_VARS} allowed",
            env.len()
        ));
    }
    let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if bytes > MAX_ENV_BYTES {
        return Err(format!(
            "the environment is {bytes} bytes, more than the {MAX_ENV_BYTES} allowed"
        ));
    }
    Ok(())
}
