//! Verdicts: how a run ended, as a type.
//!
//! This is the only module that inspects wasmtime errors, and it does so by downcasting to
//! types (`Trap`, `I32Exit`, the gate's own payloads) — never by matching message text.

use std::fmt;

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

/// Why the gate stopped a run from inside a host call. Carried as a typed error payload so
/// the verdict module can downcast it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GateStop {
    /// A refused call, under `on_denial = "end_run"`.
    Denied(String),
    /// A limit that ends the run at once.
    Limit(LimitKind),
    /// A host call with arguments it cannot accept (WASI defines these as traps).
    BadHostCall(String),
}

impl fmt::Display for GateStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateStop::Denied(why) => write!(f, "call denied: {why}"),
            GateStop::Limit(kind) => write!(f, "limit reached: {kind}"),
            GateStop::BadHostCall(why) => write!(f, "bad host call: {why}"),
        }
    }
}

impl std::error::Error for GateStop {}

/// How a run ended. Guest misbehaviour is always a verdict, never an `Err`.
#[derive(
    Debug, Clone, PartialEq, Eq, strum::IntoStaticStr, serde::Serialize, serde::Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// The guest completed with exit code 0.
    Ok,
    /// The guest completed with a non-zero exit code.
    Exit(i32),
    /// The guest trapped.
    Trap(TrapKind),
    /// A resource limit was reached (the first one reached is reported).
    Limit(LimitKind),
    /// A runtime capability check refused a call and the policy ends runs on refusal.
    Denied(String),
    /// The module failed admission.
    Rejected(String),
    /// The source failed to compile.
    CompileError(String),
    /// The invocation or an input file was invalid.
    InvalidInput(String),
    /// The host failed; nothing about the guest is known.
    HostError(String),
}

/// Kinds of trap, named as in the JSON report.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::EnumIter,
    serde::Serialize,
    serde::Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum TrapKind {
    /// `unreachable` executed (also Rust `panic!` with `panic=abort`, C `abort()`).
    Unreachable,
    /// The wasm call stack overflowed.
    StackOverflow,
    /// Out-of-bounds linear memory access.
    MemoryOutOfBounds,
    /// Misaligned atomic access.
    HeapMisaligned,
    /// Out-of-bounds table access.
    TableOutOfBounds,
    /// `call_indirect` to a null entry.
    IndirectCallToNull,
    /// `call_indirect` signature mismatch.
    BadSignature,
    /// Integer overflow (e.g. `i32.div_s` of `MIN / -1`).
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivideByZero,
    /// Float-to-int conversion out of range or NaN.
    BadConversionToInteger,
    /// A host call got an argument it cannot accept (out-of-bounds or misaligned pointer,
    /// malformed data), which WASI defines as a trap.
    BadHostCall,
    /// Any other trap.
    Other,
}

/// Which limit ended (or degraded) a run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::EnumIter,
    serde::Serialize,
    serde::Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[non_exhaustive]
pub enum LimitKind {
    /// The deterministic fuel budget.
    Fuel,
    /// The wall-clock backstop (non-deterministic).
    WallTime,
    /// Linear memory.
    Memory,
    /// Table elements, or more instances/tables/memories than one.
    Table,
    /// The stdout capture cap.
    Stdout,
    /// The stderr capture cap.
    Stderr,
    /// The cumulative file-write quota.
    FsBytes,
    /// The file-creation quota.
    FsFiles,
    /// The open-descriptor cap.
    OpenFiles,
}

impl TrapKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the snake_case name.
    pub fn from_name(s: &str) -> Option<TrapKind> {
        s.parse().ok()
    }

    fn describe(self) -> &'static str {
        match self {
            TrapKind::Unreachable => "executed `unreachable` (a panic or abort)",
            TrapKind::StackOverflow => "overflowed its call stack",
            TrapKind::MemoryOutOfBounds => "accessed memory out of bounds",
            TrapKind::HeapMisaligned => "made a misaligned atomic access",
            TrapKind::TableOutOfBounds => "accessed a table out of bounds",
            TrapKind::IndirectCallToNull => "called a null function reference",
            TrapKind::BadSignature => "made an indirect call with the wrong signature",
            TrapKind::IntegerOverflow => "overflowed an integer operation",
            TrapKind::IntegerDivideByZero => "divided an integer by zero",
            TrapKind::BadConversionToInteger => "converted an out-of-range float to an integer",
            TrapKind::BadHostCall => "passed an invalid argument to a host call",
            TrapKind::Other => "trapped",
        }
    }
}

impl LimitKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the snake_case name.
    pub fn from_name(s: &str) -> Option<LimitKind> {
        s.parse().ok()
    }
}

impl Verdict {
    /// The `verdict` string of the JSON report.
    pub fn kind(&self) -> &'static str {
        self.into()
    }

    /// The guest's exit code, for `ok` (0) and `exit`.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Verdict::Ok => Some(0),
            Verdict::Exit(c) => Some(*c),
            _ => None,
        }
    }

    /// The limit, for `limit`.
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            Verdict::Limit(l) => Some(*l),
            _ => None,
        }
    }

    /// The trap kind, for `trap`.
    pub fn trap(&self) -> Option<TrapKind> {
        match self {
            Verdict::Trap(t) => Some(*t),
            _ => None,
        }
    }

    /// The exit status of `corral run` for this verdict ([`crate::exit`]).
    pub fn process_exit_status(&self) -> u8 {
        match self {
            Verdict::Ok => crate::exit::OK,
            Verdict::InvalidInput(_) => crate::exit::INVALID,
            Verdict::HostError(_) => crate::exit::HOST,
            _ => crate::exit::GUEST,
        }
    }

    /// Whether this verdict came from running the guest (as opposed to never starting it).
    pub fn ran(&self) -> bool {
        !matches!(
            self,
            Verdict::Rejected(_)
                | Verdict::CompileError(_)
                | Verdict::InvalidInput(_)
                | Verdict::HostError(_)
        )
    }
}

/// Limits that were reached during a run, as recorded by the limiter and the gate. The first
/// one reached is the verdict.
#[derive(Debug, Default, Clone)]
pub(crate) struct LimitFlags {
    first: Option<LimitKind>,
}

impl LimitFlags {
    /// Notes that `kind` was reached; keeps the first one.
    pub(crate) fn hit(&mut self, kind: LimitKind) {
        if self.first.is_none() {
            self.first = Some(kind);
        }
    }

    pub(crate) fn first(&self) -> Option<LimitKind> {
        self.first
    }
}

/// Classifies the outcome of running the guest's entry point.
///
/// `limits` are the limits noted during the run; a noted limit wins over whatever the guest
/// did afterwards (INTERFACE.md: "any limit reached is the verdict").
pub(crate) fn classify(result: &wasmtime::Result<()>, limits: &LimitFlags) -> Verdict {
    let err = match result {
        Ok(()) => return limits.first().map_or(Verdict::Ok, Verdict::Limit),
        Err(e) => e,
    };
    if let Some(stop) = err.downcast_ref::<GateStop>() {
        return match stop {
            GateStop::Denied(why) => Verdict::Denied(why.clone()),
            GateStop::Limit(kind) => Verdict::Limit(limits.first().unwrap_or(*kind)),
            GateStop::BadHostCall(_) => match limits.first() {
                Some(l) => Verdict::Limit(l),
                None => Verdict::Trap(TrapKind::BadHostCall),
            },
        };
    }
    if let Some(first) = limits.first() {
        return Verdict::Limit(first);
    }
    if let Some(I32Exit(code)) = err.downcast_ref::<I32Exit>() {
        return if *code == 0 {
            Verdict::Ok
        } else {
            Verdict::Exit(*code)
        };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Verdict::Limit(LimitKind::Fuel),
            other => Verdict::Trap(trap_kind(*other)),
        };
    }
    if err.downcast_ref::<wiggle::GuestError>().is_some() {
        return Verdict::Trap(TrapKind::BadHostCall);
    }
    Verdict::HostError(host_error_message(err))
}

fn trap_kind(trap: Trap) -> TrapKind {
    match trap {
        Trap::StackOverflow => TrapKind::StackOverflow,
        Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
        Trap::HeapMisaligned => TrapKind::HeapMisaligned,
        Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
        Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
        Trap::BadSignature => TrapKind::BadSignature,
        Trap::IntegerOverflow => TrapKind::IntegerOverflow,
        Trap::IntegerDivisionByZero => TrapKind::IntegerDivideByZero,
        Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        _ => TrapKind::Other,
    }
}

/// A host error's message without anything of the host: only the error chain's kinds.
fn host_error_message(err: &wasmtime::Error) -> String {
    // The root cause text comes from wasmtime or the gate, never from a host path we
    // formatted in; still, strip anything that looks like an absolute host path.
    crate::redact::scrub_host_paths(&format!("host error: {}", err.root_cause()))
}

/// One human sentence describing the verdict.
pub(crate) fn message(verdict: &Verdict, policy: &crate::Policy) -> String {
    match verdict {
        Verdict::Ok => "the guest completed successfully".into(),
        Verdict::Exit(c) => format!("the guest exited with code {c}"),
        Verdict::Trap(t) => format!("the guest {}", t.describe()),
        Verdict::Limit(l) => limit_message(*l, policy),
        Verdict::Denied(why) => format!("the policy denied a call: {why}"),
        Verdict::Rejected(why) => format!("the module was rejected: {why}"),
        Verdict::CompileError(_) => "the source failed to compile".into(),
        Verdict::InvalidInput(why) => why.clone(),
        Verdict::HostError(why) => why.clone(),
    }
}

fn limit_message(kind: LimitKind, policy: &crate::Policy) -> String {
    let l = &policy.limits;
    match kind {
        LimitKind::Fuel => format!("the guest used its whole fuel budget of {} units", l.fuel),
        LimitKind::WallTime => format!(
            "the guest ran past the wall-clock limit of {} ms (non-deterministic)",
            l.wall_time.as_millis()
        ),
        LimitKind::Memory => format!("the guest reached the memory limit of {}", l.memory),
        LimitKind::Table => format!(
            "the guest reached the table limit of {} elements",
            l.table_elements
        ),
        LimitKind::Stdout => format!("the guest wrote more than {} to stdout", l.stdout),
        LimitKind::Stderr => format!("the guest wrote more than {} to stderr", l.stderr),
        LimitKind::FsBytes => format!("the guest reached the file-write quota of {}", l.fs_bytes),
        LimitKind::FsFiles => format!(
            "the guest reached the quota of {} created files",
            l.fs_files
        ),
        LimitKind::OpenFiles => {
            format!("the guest reached the limit of {} open files", l.open_files)
        }
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    /// The names are the contract (docs/interface.md): they must not change by accident.
    #[test]
    fn names_are_the_contract() {
        let traps: Vec<&str> = TrapKind::iter().map(TrapKind::as_str).collect();
        assert_eq!(
            traps,
            [
                "unreachable",
                "stack_overflow",
                "memory_out_of_bounds",
                "heap_misaligned",
                "table_out_of_bounds",
                "indirect_call_to_null",
                "bad_signature",
                "integer_overflow",
                "integer_divide_by_zero",
                "bad_conversion_to_integer",
                "bad_host_call",
                "other"
            ]
        );
        let limits: Vec<&str> = LimitKind::iter().map(LimitKind::as_str).collect();
        assert_eq!(
            limits,
            [
                "fuel",
                "wall_time",
                "memory",
                "table",
                "stdout",
                "stderr",
                "fs_bytes",
                "fs_files",
                "open_files"
            ]
        );
        for t in TrapKind::iter() {
            assert_eq!(TrapKind::from_name(t.as_str()), Some(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        for l in LimitKind::iter() {
            assert_eq!(LimitKind::from_name(l.as_str()), Some(l));
        }
        let kinds: Vec<&str> = [
            Verdict::Ok,
            Verdict::Exit(3),
            Verdict::Trap(TrapKind::Other),
            Verdict::Limit(LimitKind::Fuel),
            Verdict::Denied(String::new()),
            Verdict::Rejected(String::new()),
            Verdict::CompileError(String::new()),
            Verdict::InvalidInput(String::new()),
            Verdict::HostError(String::new()),
        ]
        .iter()
        .map(Verdict::kind)
        .collect();
        assert_eq!(
            kinds,
            [
                "ok",
                "exit",
                "trap",
                "limit",
                "denied",
                "rejected",
                "compile_error",
                "invalid_input",
                "host_error"
            ]
        );
        assert_eq!(TrapKind::from_name("Unreachable"), None);
    }
}
