//! The run report: what a run did, as data, and its JSON form (INTERFACE.md).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::verdict::{LimitKind, TrapKind, Verdict};

/// Which walls were up for a run: the report's `isolation` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Walls {
    /// The guest ran in a worker process, not in the caller's.
    pub process: bool,
    /// `PR_SET_NO_NEW_PRIVS` was set.
    pub no_new_privs: bool,
    /// The seccomp allow-list was installed.
    pub seccomp: bool,
    /// The Landlock ABI the worker's ruleset was enforced with (0: none).
    pub landlock: u8,
    /// The worker had a network namespace of its own (no interfaces but a down loopback).
    pub netns: bool,
    /// The worker's rlimits were set (core files, open files, file size, address space).
    pub rlimits: bool,
}

impl Walls {
    /// Whether the wall named `name` (one of [`policy::WALLS`](crate::policy::WALLS)) was
    /// up.
    pub fn has(&self, name: &str) -> bool {
        match name {
            "process" => self.process,
            "no_new_privs" => self.no_new_privs,
            "seccomp" => self.seccomp,
            "landlock" => self.landlock > 0,
            "netns" => self.netns,
            "rlimits" => self.rlimits,
            _ => false,
        }
    }
}

/// The JSON form of a [`RunReport`], derived: the contract's keys and types.
#[derive(serde::Serialize)]
struct ReportJson<'a> {
    verdict: &'static str,
    exit_code: Option<i32>,
    limit: Option<&'static str>,
    trap: Option<&'static str>,
    message: &'a str,
    stdout: std::borrow::Cow<'a, str>,
    stderr: std::borrow::Cow<'a, str>,
    stdout_truncated: bool,
    stderr_truncated: bool,
    fuel_consumed: u64,
    module_hash: Option<String>,
    record: Option<&'a str>,
    deterministic: bool,
    calls: &'a CallSummary,
    diagnostics: Option<&'a str>,
    trail_hash: Option<&'a str>,
    result: Option<&'a str>,
    metrics: &'a BTreeMap<String, f64>,
    isolation: Walls,
    wall_time_ms: f64,
}

/// blake3 hash of a module's bytes, shown as `blake3:<hex>`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ModuleHash(pub [u8; 32]);

impl ModuleHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> ModuleHash {
        ModuleHash(*blake3::hash(bytes).as_bytes())
    }

    /// Parses `blake3:<64 hex digits>`.
    pub fn parse(s: &str) -> Option<ModuleHash> {
        let hex = s.strip_prefix("blake3:")?;
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| ModuleHash(*h.as_bytes()))
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", blake3::Hash::from_bytes(self.0).to_hex())
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Counts of the guest's host calls, from the gate's audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallSummary {
    /// Total host calls.
    pub total: u64,
    /// Calls per function name, sorted by name.
    pub per_function: BTreeMap<String, u64>,
    /// Calls the gate refused.
    pub denials: u64,
}

/// Everything a run produced. Returned inside `Ok` for every guest outcome.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// How the run ended.
    pub verdict: Verdict,
    /// One human sentence; never a host path.
    pub message: String,
    /// Captured stdout (at most the policy's cap).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most the policy's cap).
    pub stderr: Vec<u8>,
    /// The guest tried to write past the stdout cap.
    pub stdout_truncated: bool,
    /// The guest tried to write past the stderr cap.
    pub stderr_truncated: bool,
    /// Deterministic CPU units used.
    pub fuel_consumed: u64,
    /// Hash of the wasm bytes that ran (absent when nothing was admitted).
    pub module_hash: Option<ModuleHash>,
    /// Path of the run record, when one was written.
    pub record: Option<String>,
    /// The gate's call counts.
    pub calls: CallSummary,
    /// Compiler diagnostics, for `compile_error` (host paths replaced).
    pub diagnostics: Option<String>,
    /// Wall-clock duration of the run (not part of the deterministic report).
    pub wall_time: Duration,
    /// Chained hash over the gate's call trail (`blake3:` hex).
    pub trail_hash: Option<String>,
    /// The structured result the guest reported (`corral_v1::result_write`).
    pub result: Option<String>,
    /// Metrics the guest reported (`corral_v1::metric`).
    pub metrics: BTreeMap<String, f64>,
    /// Which walls were up (not part of the deterministic report).
    pub isolation: Walls,
}

impl RunReport {
    /// A report for a run that never reached the guest (bad input, compile error, rejection,
    /// host failure).
    pub fn without_run(verdict: Verdict, message: String) -> RunReport {
        RunReport {
            verdict,
            message,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            fuel_consumed: 0,
            module_hash: None,
            record: None,
            calls: CallSummary::default(),
            diagnostics: None,
            wall_time: Duration::ZERO,
            trail_hash: None,
            result: None,
            metrics: BTreeMap::new(),
            isolation: Walls::default(),
        }
    }

    /// Whether the outcome is reproducible by replay (everything but `wall_time` limits).
    pub fn deterministic(&self) -> bool {
        !matches!(
            self.verdict,
            Verdict::Limit(LimitKind::WallTime) | Verdict::HostError(_)
        )
    }

    /// The JSON object of the contract (docs/interface.md): every documented key, `null`
    /// where it does not apply, plus `calls`, `deterministic`, `diagnostics`, `trail_hash`,
    /// `result`, `metrics` and `wall_time_ms`. Keys come out sorted.
    pub fn to_json(&self) -> Value {
        let v = &self.verdict;
        let view = ReportJson {
            verdict: v.kind(),
            exit_code: v.exit_code(),
            limit: v.limit().map(LimitKind::as_str),
            trap: v.trap().map(TrapKind::as_str),
            message: &self.message,
            stdout: String::from_utf8_lossy(&self.stdout),
            stderr: String::from_utf8_lossy(&self.stderr),
            stdout_truncated: self.stdout_truncated,
            stderr_truncated: self.stderr_truncated,
            fuel_consumed: self.fuel_consumed,
            module_hash: self.module_hash.map(|h| h.to_string()),
            record: self.record.as_deref(),
            deterministic: self.deterministic(),
            calls: &self.calls,
            diagnostics: self.diagnostics.as_deref(),
            trail_hash: self.trail_hash.as_deref(),
            result: self.result.as_deref(),
            metrics: &self.metrics,
            isolation: self.isolation,
            wall_time_ms: self.wall_time.as_secs_f64() * 1000.0,
        };
        // A struct of strings, numbers, booleans and maps with string keys always serialises.
        serde_json::to_value(view).unwrap_or(Value::Null)
    }

    /// The deterministic part of the report, for comparing two runs: the JSON without
    /// `record`, `wall_time_ms` and `isolation` (where it ran is not what it did).
    pub fn deterministic_json(&self) -> Value {
        let mut v = self.to_json();
        if let Value::Object(m) = &mut v {
            m.remove("record");
            m.remove("wall_time_ms");
            m.remove("isolation");
        }
        v
    }
}
