//! Replay: re-execute a recorded run and prove the outcome identical, or name where it
//! diverged.
//!
//! A record is untrusted input. Before anything runs, replay checks the record (strict
//! parse, canonical form, self-hash), the engine identity, every blob's hash, and the embedded
//! policy — re-validated from its TOML and checked against a local ceiling, so a record can
//! never grant more than a fresh run could. Inputs are rebuilt from blobs into fresh private
//! directories; host paths are never taken from a record, and no precompiled code is ever
//! loaded from one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::capability::stage;
use crate::compile::Language;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::job::{self, Invocation, Program, Recording};
use crate::policy::Policy;
use crate::record::bundle;
use crate::record::format::{BlobRef, MAX_RECORD_BYTES, RunRecord, Text, Tree};
use crate::record::store::RecordStore;
use crate::record::trail::{self, RecordedEvent, TrailSnapshot};
use crate::report::RunReport;
use crate::sandbox::{Access, DirGrant};

/// A read-only grant of a directory replay rebuilt.
fn read_only(dir: &tempfile::TempDir, guest: crate::policy::GuestPath) -> DirGrant {
    DirGrant {
        host: dir.path().to_path_buf(),
        guest,
        access: Access::ReadOnly,
    }
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Replay a record from another engine identity anyway, saying what may differ.
    pub best_effort: bool,
    /// The most a replayed policy may grant. By default `permissive`.
    pub ceiling: Policy,
    /// Where to find blobs when the record is not in a store (or to prefer another store).
    pub store: Option<RecordStore>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            best_effort: false,
            ceiling: Policy::bundled("permissive").unwrap_or_else(|_| Policy::strict()),
            store: None,
        }
    }
}

/// Why a record was refused (nothing ran), or a host failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The record is invalid, tampered with, or refused. `corral replay` exits with 2.
    #[error("{0}")]
    Refused(String),
    /// The host failed.
    #[error("{0}")]
    Host(String),
}

impl From<Error> for ReplayError {
    fn from(e: Error) -> Self {
        match e.kind() {
            ErrorKind::Host => ReplayError::Host(e.to_string()),
            _ => ReplayError::Refused(e.to_string()),
        }
    }
}

/// One side of a divergent call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// Function.
    pub func: String,
    /// Fuel at the call.
    pub fuel: u64,
    /// Argument digest.
    pub args: String,
    /// Errno (0 = success, 65535 = trap/exit).
    pub errno: u16,
    /// Result digest.
    pub result: String,
}

/// Where a replay first differed from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Divergence {
    /// The first host call that differed (`None` on a side that made no such call).
    HostCall {
        /// Call index.
        index: u64,
        /// What the record says.
        expected: Option<CallView>,
        /// What the replay did.
        actual: Option<CallView>,
    },
    /// The calls differ somewhere in a window between two checkpoints (runs with more calls
    /// than the trail keeps).
    CallWindow {
        /// Calls before the window agree.
        from_call: u64,
        /// By this call the chains differ.
        to_call: u64,
        /// Fuel at the last agreeing checkpoint.
        from_fuel: u64,
    },
    /// Every host call agreed; execution diverged between the last call and the end.
    FuelWindow {
        /// Fuel at the last host call (or 0).
        from_fuel: u64,
        /// The larger of the two runs' final fuel.
        to_fuel: u64,
        /// Which outcome fields differ.
        fields: Vec<String>,
    },
}

/// The result of a replay.
#[derive(Debug)]
pub struct ReplayReport {
    /// The replayed run's report.
    pub report: RunReport,
    /// Whether every compared field matched.
    pub identical: bool,
    /// The first divergence, when not identical.
    pub divergence: Option<Divergence>,
    /// Remarks (best-effort differences, what could not be promised).
    pub notes: Vec<String>,
    /// The record that was replayed.
    pub record: RunRecord,
}

impl CallView {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "function": self.func,
            "fuel": self.fuel,
            "args": self.args,
            "errno": self.errno,
            "result": self.result,
        })
    }
}

impl Divergence {
    /// The divergence as the `divergence` object of `corral replay --json`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Divergence::HostCall {
                index,
                expected,
                actual,
            } => serde_json::json!({
                "kind": "host_call",
                "index": index,
                "function": expected.as_ref().or(actual.as_ref()).map(|c| c.func.clone()),
                "expected": expected.as_ref().map(CallView::to_json),
                "actual": actual.as_ref().map(CallView::to_json),
            }),
            Divergence::CallWindow {
                from_call,
                to_call,
                from_fuel,
            } => serde_json::json!({
                "kind": "call_window",
                "from_call": from_call,
                "to_call": to_call,
                "from_fuel": from_fuel,
            }),
            Divergence::FuelWindow {
                from_fuel,
                to_fuel,
                fields,
            } => serde_json::json!({
                "kind": "fuel_window",
                "from_fuel": from_fuel,
                "to_fuel": to_fuel,
                "fields": fields,
            }),
        }
    }
}

impl ReplayReport {
    /// The object of `corral replay --json`: the replayed run's report plus `identical`,
    /// `divergence` (`null` when identical), `notes` and `recorded_verdict`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.report.to_json();
        v["identical"] = serde_json::json!(self.identical);
        v["divergence"] = self
            .divergence
            .as_ref()
            .map_or(serde_json::Value::Null, Divergence::to_json);
        v["notes"] = serde_json::json!(self.notes);
        v["recorded_verdict"] = serde_json::json!(self.record.outcome.verdict);
        v
    }
}

impl ReplayError {
    /// The report of a replay that did not run: `invalid_input` for a refused record,
    /// `host_error` for a host failure.
    pub fn report(&self) -> RunReport {
        let e = match self {
            ReplayError::Refused(m) => Error::invalid_input(m.clone()),
            ReplayError::Host(m) => Error::host(m.clone()),
        };
        job::error_report(&e)
    }

    /// The exit status of `corral replay` for this error ([`crate::exit`]).
    pub fn exit_status(&self) -> u8 {
        match self {
            ReplayError::Refused(_) => crate::exit::INVALID,
            ReplayError::Host(_) => crate::exit::HOST,
        }
    }

    /// The object of `corral replay --json` when nothing ran: [`ReplayError::report`] plus
    /// `identical: false` and `divergence: null`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = self.report().to_json();
        v["identical"] = serde_json::json!(false);
        v["divergence"] = serde_json::Value::Null;
        v
    }
}

fn refuse(msg: impl Into<String>) -> ReplayError {
    ReplayError::Refused(msg.into())
}

/// Where blobs come from during one replay.
struct Source {
    stores: Vec<RecordStore>,
    _tmp: Option<tempfile::TempDir>,
}

impl Source {
    fn get(&self, name: &str) -> Result<Vec<u8>, ReplayError> {
        let mut last = None;
        for s in &self.stores {
            if s.has_blob(name) {
                return s.get_blob(name).map_err(ReplayError::from);
            }
            last = Some(name);
        }
        let _ = last;
        Err(refuse(format!(
            "blob {name} named by the record is missing (hint: move records between machines with `corral bundle`)"
        )))
    }

    fn blob(&self, b: &BlobRef) -> Result<Vec<u8>, ReplayError> {
        let bytes = self.get(&b.blob)?;
        if bytes.len() as u64 != b.size {
            return Err(refuse(format!("blob {} has the wrong size", b.blob)));
        }
        Ok(bytes)
    }

    fn text(&self, t: &Text) -> Result<String, ReplayError> {
        match (&t.text, &t.blob) {
            (Some(s), None) => Ok(s.clone()),
            (None, Some(b)) => String::from_utf8(self.blob(b)?)
                .map_err(|_| refuse("an argv/env blob is not UTF-8")),
            _ => Err(refuse("malformed argv/env value")),
        }
    }
}

/// Loads a record or bundle from `path` and resolves where its blobs are.
fn load(
    path: &Path,
    opts: &ReplayOptions,
    temp_root: &Path,
) -> Result<(RunRecord, Source), ReplayError> {
    // A regular file of at most a bundle's size: never /dev/zero, never a FIFO.
    let bytes = crate::hostfs::read_bounded(path, bundle::MAX_BUNDLE_BYTES).map_err(|e| {
        refuse(format!(
            "`{}` cannot be read as a record or bundle: {e}",
            path.display()
        ))
    })?;
    if bundle::is_bundle(&bytes) {
        let b = bundle::read(&bytes).map_err(|e| refuse(format!("`{}`: {e}", path.display())))?;
        let record = RunRecord::parse(&b.record).map_err(|e| refuse(e.to_string()))?;
        let tmp = tempfile::Builder::new()
            .prefix("corral-bundle-")
            .tempdir_in(temp_root)
            .map_err(|e| ReplayError::Host(format!("cannot unpack the bundle: {e}")))?;
        let store = RecordStore::new(tmp.path());
        for data in b.blobs.values() {
            store.put_blob(data)?;
        }
        // Exactly the record's blobs: no more, no fewer.
        let mut needed: Vec<String> = record.blobs().iter().map(|b| b.blob.clone()).collect();
        needed.push(record.module.hash.clone());
        for d in &record.inputs.dirs {
            let tree: Tree = serde_json::from_slice(
                &store
                    .get_blob(&d.tree.blob)
                    .map_err(|e| refuse(e.to_string()))?,
            )
            .map_err(|e| refuse(format!("input listing is malformed: {e}")))?;
            needed.extend(tree.files.into_iter().map(|f| f.contents.blob));
        }
        needed.sort();
        needed.dedup();
        let have: Vec<&String> = b.blobs.keys().collect();
        if needed.iter().collect::<Vec<_>>() != have {
            return Err(refuse("the bundle's blobs do not match its record"));
        }
        return Ok((
            record,
            Source {
                stores: vec![store],
                _tmp: Some(tmp),
            },
        ));
    }
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(refuse(format!(
            "`{}` is too large to be a record",
            path.display()
        )));
    }
    let record = RunRecord::parse(&bytes).map_err(|e| refuse(e.to_string()))?;
    let mut stores = Vec::new();
    stores.extend(opts.store.clone());
    stores.extend(RecordStore::containing(path));
    if let Some(d) = RecordStore::default_location() {
        stores.push(RecordStore::new(d));
    }
    Ok((record, Source { stores, _tmp: None }))
}

fn view_of_recorded(e: &RecordedEvent) -> CallView {
    CallView {
        func: e.func.to_string(),
        fuel: e.fuel,
        args: e.args.to_string(),
        errno: e.errno,
        result: e.result.to_string(),
    }
}

/// Compares the recorded outcome with the replayed report; names differing fields.
fn differing_fields(rec: &RunRecord, r: &RunReport, trail: &TrailSnapshot) -> Vec<String> {
    let o = &rec.outcome;
    let mut d = Vec::new();
    let mut cmp = |name: &str, same: bool| {
        if !same {
            d.push(name.to_string());
        }
    };
    cmp("verdict", o.verdict == r.verdict.kind());
    cmp("exit_code", o.exit_code == r.verdict.exit_code());
    cmp(
        "limit",
        o.limit.as_deref() == r.verdict.limit().map(|l| l.as_str()),
    );
    cmp(
        "trap",
        o.trap.as_deref() == r.verdict.trap().map(|t| t.as_str()),
    );
    cmp("fuel_consumed", o.fuel_consumed == r.fuel_consumed);
    cmp(
        "stdout",
        o.stdout.data.blob == crate::record::format::hash_of(&r.stdout),
    );
    cmp("stdout_truncated", o.stdout.truncated == r.stdout_truncated);
    cmp(
        "stderr",
        o.stderr.data.blob == crate::record::format::hash_of(&r.stderr),
    );
    cmp("stderr_truncated", o.stderr.truncated == r.stderr_truncated);
    cmp("calls", o.calls == trail.total);
    cmp(
        "trail_hash",
        o.trail_hash == format!("blake3:{}", trail.hash),
    );
    d
}

fn locate(
    rec: &RunRecord,
    recorded: &[RecordedEvent],
    trail: &TrailSnapshot,
    fields: Vec<String>,
    report: &RunReport,
) -> Divergence {
    let actual = &trail.events;
    let n = recorded.len().min(actual.len());
    for i in 0..n {
        if recorded[i] != actual[i] {
            return Divergence::HostCall {
                index: i as u64,
                expected: Some(view_of_recorded(&recorded[i])),
                actual: Some(view_of_recorded(&actual[i])),
            };
        }
    }
    // One side made more calls within what both kept.
    let both_complete = rec.trail_complete && trail.complete();
    if both_complete && recorded.len() != actual.len() {
        return Divergence::HostCall {
            index: n as u64,
            expected: recorded.get(n).map(view_of_recorded),
            actual: actual.get(n).map(view_of_recorded),
        };
    }
    if !both_complete {
        // Past the kept events: compare checkpoints.
        // Matched by call index: a run with more calls may have thinned its checkpoints
        // further, so a recorded one without a counterpart is skipped.
        let mine: std::collections::BTreeMap<u64, (u64, u64, String)> = trail
            .checkpoints
            .iter()
            .map(|c| (c.calls, (c.calls, c.fuel, format!("blake3:{}", c.hash))))
            .collect();
        let mut prev = (
            n as u64,
            actual.get(n.saturating_sub(1)).map_or(0, |e| e.fuel),
        );
        for a in &rec.checkpoints {
            let Some(b) = mine.get(&a.0) else {
                continue;
            };
            if a != b {
                return Divergence::CallWindow {
                    from_call: prev.0,
                    to_call: a.0,
                    from_fuel: prev.1,
                };
            }
            prev = (a.0, a.1);
        }
        if rec.outcome.calls != trail.total
            || rec.outcome.trail_hash != format!("blake3:{}", trail.hash)
        {
            return Divergence::CallWindow {
                from_call: prev.0,
                to_call: rec.outcome.calls.max(trail.total),
                from_fuel: prev.1,
            };
        }
    }
    let last_fuel = actual.last().map_or(0, |e| e.fuel);
    Divergence::FuelWindow {
        from_fuel: last_fuel,
        to_fuel: rec.outcome.fuel_consumed.max(report.fuel_consumed),
        fields,
    }
}

/// Replays the record (or bundle) at `path`.
///
/// # Errors
///
/// [`ReplayError::Refused`] when the record is invalid, altered, from another engine (unless
/// `best_effort`), names missing blobs, or asks for more than `opts.ceiling` grants — nothing
/// runs then. [`ReplayError::Host`] when the host fails.
pub async fn replay(
    engine: &Engine,
    path: &Path,
    opts: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let temp_root = engine.work_dir().to_path_buf();
    let (record, src) = load(path, opts, &temp_root)?;
    let mut notes = Vec::new();

    let me = engine.identity();
    let theirs = &record.engine;
    if (&theirs.corral, &theirs.wasmtime, &theirs.config) != (&me.corral, &me.wasmtime, &me.config)
    {
        let what = format!(
            "the record was made by corral {} (wasmtime {}, config {}); this is corral {} (wasmtime {}, config {})",
            theirs.corral,
            theirs.wasmtime,
            short(&theirs.config),
            me.corral,
            me.wasmtime,
            short(&me.config)
        );
        if !opts.best_effort {
            return Err(refuse(format!(
                "{what} (hint: `--best-effort` replays anyway and reports what differs)"
            )));
        }
        notes.push(format!(
            "best effort: {what}; fuel counts, clocks and stack depth may differ"
        ));
    }
    if theirs.host_isa != me.host_isa {
        notes.push("the record was made on a CPU with other codegen flags; semantics are the same, the depth at which the wasm stack overflows may differ".into());
    }

    // Every blob the record names must be present and intact before anything runs.
    for b in record.blobs() {
        src.blob(b)?;
    }

    // The policy, re-validated from text and held under the local ceiling.
    let policy_text = String::from_utf8(src.blob(&record.policy.toml)?)
        .map_err(|_| refuse("the record's policy is not UTF-8"))?;
    let policy = Policy::parse("<record policy>", &policy_text)
        .map_err(|e| refuse(format!("the record's policy is invalid: {e}")))?
        .with_name(&sanitize_name(&record.policy.name));
    // A program on a runner ran with its budget factor applied (`job::budget`): so is the
    // ceiling. (The language is the record's word, but the factor only lets a record have
    // the budget a fresh run of that language would have here.)
    let factor = Language::from_name(&record.module.language)
        .and_then(crate::compile::runner::RunnerKind::of)
        .map_or(1, |k| k.budget_factor());
    policy
        .within(&job::budget(&opts.ceiling, factor))
        .map_err(|e| {
            refuse(format!(
                "the record's policy exceeds what this machine allows: {e}"
            ))
        })?;
    if !record.inputs.rw_dirs.is_empty() {
        if !opts.best_effort {
            return Err(refuse(format!(
                "the recorded run wrote to host directories ({}) whose contents are not recorded (hint: `--best-effort` replays with empty directories there)",
                record.inputs.rw_dirs.join(", ")
            )));
        }
        notes.push("best effort: writable host directories were replaced by empty ones".into());
    }
    if !record.outcome.deterministic {
        notes.push(
            "the recorded run was stopped by the wall clock, which no replay can reproduce".into(),
        );
    }

    // The module: bytes from the blob (re-hashed), admitted afresh under the policy.
    let module_bytes = src.get(&record.module.hash)?;
    if module_bytes.len() as u64 != record.module.size {
        return Err(refuse("the module blob has the wrong size"));
    }
    let module = job::admit(
        engine,
        job::Wasm::Bytes(&module_bytes),
        crate::report::ModuleHash::of(&module_bytes),
        &policy,
    )
    .map_err(|r| refuse(format!("the recorded module is not admissible: {r}")))?;

    // Inputs rebuilt from blobs.
    let argv: Vec<String> = record
        .inputs
        .argv
        .iter()
        .map(|t| src.text(t))
        .collect::<Result<_, _>>()?;
    if argv.is_empty() {
        return Err(refuse("the record has no argv[0]"));
    }
    let mut env = BTreeMap::new();
    for (k, t) in &record.inputs.env {
        env.insert(k.clone(), src.text(t)?);
    }
    let stdin = match &record.inputs.stdin {
        Some(b) => src.blob(b)?,
        None => Vec::new(),
    };
    // The caps of a fresh run's staging (all inputs together), on every listing, before any
    // of their blobs is read or anything is written.
    let mut budget = stage::StageBudget::default();
    let mut trees = Vec::new();
    for d in &record.inputs.dirs {
        let guest = crate::policy::GuestPath::new(&d.guest)
            .map_err(|e| refuse(format!("the record names an invalid guest path: {e}")))?;
        let tree: Tree = serde_json::from_slice(&src.blob(&d.tree)?)
            .map_err(|e| refuse(format!("the record's input listing is malformed: {e}")))?;
        let sizes: Vec<(&str, u64)> = tree
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.contents.size))
            .collect();
        stage::check_listing(&tree.dirs, &sizes, &mut budget)
            .map_err(|e| refuse(format!("the record's input listing is refused: {e}")))?;
        trees.push((guest, tree));
    }
    // Input directories are rebuilt from blobs into fresh private directories, then granted
    // read-only like any input (the sandbox stages its own copy of each).
    let mut rebuilt = Vec::new();
    let mut dirs = Vec::new();
    for (guest, tree) in trees {
        let mut files = Vec::new();
        for f in &tree.files {
            files.push((f.path.clone(), src.blob(&f.contents)?));
        }
        let dir = stage::rebuild_dir(&temp_root, &tree.dirs, &files)?;
        dirs.push(read_only(&dir, guest));
        rebuilt.push(dir);
    }
    for g in &record.inputs.rw_dirs {
        let guest = crate::policy::GuestPath::new(g)
            .map_err(|e| refuse(format!("the record names an invalid guest path: {e}")))?;
        let dir = stage::rebuild_dir(&temp_root, &[], &[])?;
        dirs.push(read_only(&dir, guest));
        rebuilt.push(dir);
    }
    let recorded_events = match &record.trail {
        Some(b) => trail::decode(&src.blob(b)?)
            .map_err(|e| refuse(format!("the record's trail is malformed: {e}")))?,
        None => Vec::new(),
    };

    let input = match &record.inputs.input {
        Some(b) => Some(std::sync::Arc::<[u8]>::from(src.blob(b)?)),
        None => None,
    };
    let invocation = Invocation {
        args: argv[1..].to_vec(),
        env,
        stdin,
        dirs,
        seed: record.inputs.seed,
        input,
    };
    let program = Program::from_module(module, Language::Wasm, argv[0].clone());
    let outcome = job::run(engine, &program, &policy, &invocation, Recording::Trail).await?;
    drop(rebuilt);
    let Some(trail) = outcome.trail() else {
        return Err(refuse(format!(
            "the recorded inputs are invalid: {}",
            outcome.report.message
        )));
    };
    let fields = differing_fields(&record, &outcome.report, trail);
    let identical = fields.is_empty() && record.outcome.deterministic;
    let divergence = if identical {
        None
    } else {
        Some(locate(
            &record,
            &recorded_events,
            trail,
            fields,
            &outcome.report,
        ))
    };
    Ok(ReplayReport {
        report: outcome.report,
        identical,
        divergence,
        notes,
        record,
    })
}

fn short(h: &str) -> &str {
    h.get(..19).unwrap_or(h)
}

fn sanitize_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(64)
        .collect()
}

/// Writes a bundle of the record at `record_path` to `out`.
///
/// # Errors
///
/// The record is invalid or altered, a blob is missing, `out` cannot be written.
pub fn bundle(
    record_path: &Path,
    out: &Path,
    store: Option<RecordStore>,
) -> Result<PathBuf, ReplayError> {
    let bytes = crate::hostfs::read_bounded(record_path, MAX_RECORD_BYTES as u64)
        .map_err(|e| refuse(format!("cannot read `{}`: {e}", record_path.display())))?;
    let store = store
        .or_else(|| RecordStore::containing(record_path))
        .or_else(|| RecordStore::default_location().map(RecordStore::new))
        .ok_or_else(|| refuse("cannot find the record's store (hint: `--store DIR`)"))?;
    bundle::write(&bytes, &store, out)?;
    Ok(out.to_path_buf())
}
