//! Stage one of policy loading: the raw TOML form, then validation into [`Policy`].

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Bytes, ClockPolicy, Count, FsPolicy, Fuel, GuestPath, IsolationPolicy, Limits,
    MAX_POLICY_BYTES, OnDenial, POLICY_VERSION, Policy, PolicyError, bundled, check_env_size,
    check_env_var,
};

/// The raw policy file. Every key optional; unknown keys rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: Option<Spanned<u32>>,
    extends: Option<Spanned<String>>,
    env_mode: Option<Spanned<String>>,
    limits: Option<LimitsFile>,
    fs: Option<FsFile>,
    env: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    gate: Option<GateFile>,
    clock: Option<ClockFile>,
    isolation: Option<IsolationFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IsolationFile {
    require: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    fuel: Option<Spanned<u64>>,
    wall_time_ms: Option<Spanned<u64>>,
    memory_bytes: Option<Spanned<u64>>,
    stdout_bytes: Option<Spanned<u64>>,
    stderr_bytes: Option<Spanned<u64>>,
    stdin_bytes: Option<Spanned<u64>>,
    fs_bytes: Option<Spanned<u64>>,
    fs_files: Option<Spanned<u64>>,
    open_files: Option<Spanned<u64>>,
    table_elements: Option<Spanned<u64>>,
    module_bytes: Option<Spanned<u64>>,
    functions: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FsFile {
    /// A guest path, or `false` (no scratch dir, also none inherited).
    scratch: Option<Spanned<toml::Value>>,
    allow_rw_dirs: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    on_denial: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockFile {
    epoch_secs: Option<Spanned<u64>>,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// `(key, min, max, what the minimum means when it is rejected)` for every numeric limit.
struct Range64 {
    min: u64,
    max: u64,
}

fn range_of(key: &str) -> Range64 {
    let (min, max) = match key {
        "fuel" => (0, super::MAX_FUEL),
        "wall_time_ms" => (1, super::MAX_WALL_TIME.as_millis() as u64),
        "memory_bytes" => (0, 4 * GIB),
        "stdout_bytes" | "stderr_bytes" => (0, 256 * MIB),
        "stdin_bytes" => (0, GIB),
        "fs_bytes" => (0, 16 * GIB),
        "fs_files" => (0, 1_000_000),
        "open_files" => (0, 1024),
        "table_elements" => (0, 1_000_000),
        "module_bytes" => (8, 512 * MIB),
        "functions" => (0, 1_000_000),
        "epoch_secs" => (0, 253_402_300_799), // 9999-12-31T23:59:59Z
        _ => (0, u64::MAX),
    };
    Range64 { min, max }
}

/// The defaults every policy starts from when it has no `extends`: the `strict` values.
pub(super) fn defaults(name: &str) -> Policy {
    Policy {
        name: name.to_string(),
        limits: Limits {
            fuel: Fuel(2_000_000_000),
            wall_time: Duration::from_millis(5_000),
            memory: Bytes(256 * MIB),
            stdout: Bytes(MIB),
            stderr: Bytes(MIB),
            stdin: Bytes(16 * MIB),
            fs_bytes: Bytes(0),
            fs_files: Count(0),
            open_files: Count(16),
            table_elements: Count(10_000),
            module_bytes: Bytes(64 * MIB),
            functions: Count(100_000),
        },
        fs: FsPolicy::default(),
        env: BTreeMap::new(),
        on_denial: OnDenial::Errno,
        clock: ClockPolicy::default(),
        isolation: IsolationPolicy::default(),
    }
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut start = offset.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

impl Ctx<'_> {
    fn position(&self, span: &Range<usize>) -> (usize, usize) {
        line_col(self.text, span.start)
    }

    fn err(
        &self,
        span: Option<&Range<usize>>,
        message: String,
        hint: Option<String>,
    ) -> PolicyError {
        PolicyError {
            file: self.file.to_string(),
            position: span.map(|s| self.position(s)),
            message,
            hint,
        }
    }

    fn number(&self, section: &str, key: &str, value: &Spanned<u64>) -> Result<u64, PolicyError> {
        let r = range_of(key);
        let v = *value.get_ref();
        if v < r.min || v > r.max {
            let hint = if v < r.min && key == "wall_time_ms" {
                "a run needs a wall-clock budget of at least 1 ms; use `limits.fuel` to bound CPU deterministically".to_string()
            } else {
                format!(
                    "`{section}.{key}` takes a value from {} to {}",
                    r.min, r.max
                )
            };
            return Err(self.err(
                Some(&value.span()),
                format!("`{section}.{key}` = {v} is out of range"),
                Some(hint),
            ));
        }
        Ok(v)
    }
}

/// Parses, resolves `extends` and validates.
pub(super) fn load(file: &str, text: &str, name: &str) -> Result<Policy, PolicyError> {
    let cx = Ctx { file, text };
    if text.len() > MAX_POLICY_BYTES {
        return Err(cx.err(
            None,
            format!(
                "policy file is {} bytes, more than the {MAX_POLICY_BYTES} allowed",
                text.len()
            ),
            None,
        ));
    }
    let raw: PolicyFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().trim_end_matches('.').to_string();
        let hint = hint_for_parse_error(&message);
        cx.err(e.span().as_ref(), message, hint)
    })?;

    if let Some(v) = &raw.version
        && *v.get_ref() != POLICY_VERSION
    {
        return Err(cx.err(
            Some(&v.span()),
            format!(
                "policy version {} is not supported by this corral",
                v.get_ref()
            ),
            Some(format!(
                "this corral understands `version = {POLICY_VERSION}`"
            )),
        ));
    }

    let mut policy = match &raw.extends {
        Some(base) => {
            let base_name = base.get_ref();
            match bundled::source(base_name) {
                Some(src) => {
                    let mut p = load(&format!("<bundled:{base_name}>"), src, base_name)?;
                    p.name = name.to_string();
                    p
                }
                None => {
                    return Err(cx.err(
                        Some(&base.span()),
                        format!("`extends` names unknown bundled policy `{base_name}`"),
                        Some(format!(
                            "a policy can extend {}",
                            bundled::bundled_names().join(", ")
                        )),
                    ));
                }
            }
        }
        None => defaults(name),
    };

    if let Some(l) = &raw.limits {
        let lim = &mut policy.limits;
        let n = |key, v: &Option<Spanned<u64>>| -> Result<Option<u64>, PolicyError> {
            v.as_ref().map(|v| cx.number("limits", key, v)).transpose()
        };
        if let Some(v) = n("fuel", &l.fuel)? {
            lim.fuel = Fuel(v);
        }
        if let Some(v) = n("wall_time_ms", &l.wall_time_ms)? {
            lim.wall_time = Duration::from_millis(v);
        }
        if let Some(v) = n("memory_bytes", &l.memory_bytes)? {
            lim.memory = Bytes(v);
        }
        if let Some(v) = n("stdout_bytes", &l.stdout_bytes)? {
            lim.stdout = Bytes(v);
        }
        if let Some(v) = n("stderr_bytes", &l.stderr_bytes)? {
            lim.stderr = Bytes(v);
        }
        if let Some(v) = n("stdin_bytes", &l.stdin_bytes)? {
            lim.stdin = Bytes(v);
        }
        if let Some(v) = n("fs_bytes", &l.fs_bytes)? {
            lim.fs_bytes = Bytes(v);
        }
        if let Some(v) = n("fs_files", &l.fs_files)? {
            lim.fs_files = Count(v);
        }
        if let Some(v) = n("open_files", &l.open_files)? {
            lim.open_files = Count(v);
        }
        if let Some(v) = n("table_elements", &l.table_elements)? {
            lim.table_elements = Count(v);
        }
        if let Some(v) = n("module_bytes", &l.module_bytes)? {
            lim.module_bytes = Bytes(v);
        }
        if let Some(v) = n("functions", &l.functions)? {
            lim.functions = Count(v);
        }
    }

    if let Some(fs) = &raw.fs {
        if let Some(s) = &fs.scratch {
            policy.fs.scratch = match s.get_ref() {
                toml::Value::String(p) => Some(GuestPath::new(p).map_err(|e| {
                    cx.err(
                        Some(&s.span()),
                        format!("`fs.scratch`: {e}"),
                        Some(e.hint().to_string()),
                    )
                })?),
                toml::Value::Boolean(false) => None,
                other => {
                    let shown = match other {
                        toml::Value::Boolean(_) => "`true`".to_string(),
                        v => {
                            let t = v.type_str();
                            let a = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
                                "an"
                            } else {
                                "a"
                            };
                            format!("{a} {t}")
                        }
                    };
                    return Err(cx.err(
                        Some(&s.span()),
                        format!("`fs.scratch` is {shown}, not a guest path or `false`"),
                        Some(
                            "give the scratch dir's guest path, such as `scratch = \"/tmp\"`, or `scratch = false` for none, which also drops the extended policy's"
                                .into(),
                        ),
                    ));
                }
            };
        }
        if let Some(b) = &fs.allow_rw_dirs {
            policy.fs.allow_rw_dirs = *b.get_ref();
        }
    }

    if let Some(g) = &raw.gate
        && let Some(d) = &g.on_denial
    {
        policy.on_denial = match d.get_ref().as_str() {
            "errno" => OnDenial::Errno,
            "end_run" => OnDenial::EndRun,
            other => {
                return Err(cx.err(
                    Some(&d.span()),
                    format!(
                        "`gate.on_denial` = `{}` is not a known mode",
                        other.escape_debug()
                    ),
                    Some(
                        "use `errno` (the guest gets the error) or `end_run` (verdict `denied`)"
                            .into(),
                    ),
                ));
            }
        };
    }

    if let Some(i) = &raw.isolation
        && let Some(req) = &i.require
    {
        let mut require = Vec::new();
        for w in req.get_ref() {
            if !super::WALLS.contains(&w.get_ref().as_str()) {
                return Err(cx.err(
                    Some(&w.span()),
                    format!(
                        "`isolation.require`: `{}` is not a wall corral knows",
                        w.get_ref().escape_debug()
                    ),
                    Some(format!("the walls are {}", super::WALLS.join(", "))),
                ));
            }
            require.push(w.get_ref().clone());
        }
        require.sort();
        require.dedup();
        policy.isolation.require = require;
    }

    if let Some(c) = &raw.clock
        && let Some(e) = &c.epoch_secs
    {
        policy.clock.epoch_secs = cx.number("clock", "epoch_secs", e)?;
    }

    if let Some(mode) = &raw.env_mode {
        match mode.get_ref().as_str() {
            "merge" => {}
            // The extended policy's environment is dropped; `[env]` is the whole of it.
            "replace" => policy.env.clear(),
            other => {
                return Err(cx.err(
                    Some(&mode.span()),
                    format!("`env_mode` = `{}` is not a known mode", other.escape_debug()),
                    Some(
                        "use `merge` (the default: `[env]` adds to and overrides the extended policy's environment) or `replace` (`[env]` is the whole environment)"
                            .into(),
                    ),
                ));
            }
        }
    }

    if let Some(env) = &raw.env {
        for (k, v) in env.get_ref() {
            if k == "env_mode" {
                // TOML puts a key written after `[env]` into that table: this is almost
                // certainly the mode in the wrong place, which would silently do nothing.
                return Err(cx.err(
                    Some(&v.span()),
                    "`env_mode` is inside `[env]`, where it would be an environment variable".into(),
                    Some("write `env_mode = \"replace\"` at the top of the file, before the first `[section]`".into()),
                ));
            }
            check_env_var(k, v.get_ref()).map_err(|m| {
                cx.err(
                    Some(&v.span()),
                    format!("`env`: {m}"),
                    Some("names are non-empty without `=` or NUL; values have no NUL".into()),
                )
            })?;
            policy.env.insert(k.clone(), v.get_ref().clone());
        }
        check_env_size(&policy.env).map_err(|m| {
            cx.err(
                Some(&env.span()),
                format!("`env`: {m}"),
                Some("pass large data through stdin or an input dir".into()),
            )
        })?;
    }

    Ok(policy)
}

fn hint_for_parse_error(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("check the spelling; the keys are listed in policies/README.md".into())
    } else if message.contains("expected u64")
        || message.contains("expected u32")
        || message.contains("floating-point")
    {
        Some("limits are non-negative integers; `_` separators are allowed".into())
    } else if message.contains("expected a boolean") {
        Some("use `true` or `false`".into())
    } else if message.starts_with("duplicate key") {
        Some("each key may appear once".into())
    } else {
        None
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Writes every key explicitly, in a fixed order.
pub(super) fn to_canonical_toml(p: &Policy) -> String {
    let l = &p.limits;
    let mut out = format!("version = {POLICY_VERSION}\n\n[limits]\n");
    out.push_str(&format!("fuel = {}\n", l.fuel.0));
    out.push_str(&format!("wall_time_ms = {}\n", l.wall_time.as_millis()));
    out.push_str(&format!("memory_bytes = {}\n", l.memory.0));
    out.push_str(&format!("stdout_bytes = {}\n", l.stdout.0));
    out.push_str(&format!("stderr_bytes = {}\n", l.stderr.0));
    out.push_str(&format!("stdin_bytes = {}\n", l.stdin.0));
    out.push_str(&format!("fs_bytes = {}\n", l.fs_bytes.0));
    out.push_str(&format!("fs_files = {}\n", l.fs_files.0));
    out.push_str(&format!("open_files = {}\n", l.open_files.0));
    out.push_str(&format!("table_elements = {}\n", l.table_elements.0));
    out.push_str(&format!("module_bytes = {}\n", l.module_bytes.0));
    out.push_str(&format!("functions = {}\n", l.functions.0));
    out.push_str("\n[fs]\n");
    if let Some(s) = &p.fs.scratch {
        out.push_str(&format!("scratch = {}\n", quote(s.as_str())));
    }
    out.push_str(&format!("allow_rw_dirs = {}\n", p.fs.allow_rw_dirs));
    out.push_str("\n[gate]\n");
    let mode = match p.on_denial {
        OnDenial::Errno => "errno",
        OnDenial::EndRun => "end_run",
    };
    out.push_str(&format!("on_denial = {}\n", quote(mode)));
    out.push_str(&format!("\n[clock]\nepoch_secs = {}\n", p.clock.epoch_secs));
    if !p.isolation.require.is_empty() {
        let walls: Vec<String> = p.isolation.require.iter().map(|w| quote(w)).collect();
        out.push_str(&format!(
            "\n[isolation]\nrequire = [{}]\n",
            walls.join(", ")
        ));
    }
    out.push_str("\n[env]\n");
    for (k, v) in &p.env {
        out.push_str(&format!("{} = {}\n", quote(k), quote(v)));
    }
    out
}
