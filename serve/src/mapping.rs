//! The one table from corral's verdicts to the statuses of the APIs it speaks
//! (docs/interface.md shows it). Every compatible endpoint asks this module; none maps a
//! verdict itself.
//!
//! The compatible APIs describe native processes, which end with an exit code or a signal.
//! A verdict that is not an exit is given the signal a native process would have died of
//! ([`native_signal`]): a wasm trap is the fault the same code raises natively, a limit is
//! the `SIGKILL` a supervisor sends (or `SIGXFSZ` for the file-size quota), a refusal that
//! ends the run is seccomp's `SIGSYS`. Shell-style exit codes are `128 + signal`.

use corral::{LimitKind, RunReport, TrapKind, Verdict};

/// A POSIX signal: its number and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The Linux number.
    pub number: i32,
    /// `SIGSEGV`, …
    pub name: &'static str,
}

const SIGILL: Signal = Signal {
    number: 4,
    name: "SIGILL",
};
const SIGABRT: Signal = Signal {
    number: 6,
    name: "SIGABRT",
};
const SIGBUS: Signal = Signal {
    number: 7,
    name: "SIGBUS",
};
const SIGFPE: Signal = Signal {
    number: 8,
    name: "SIGFPE",
};
const SIGKILL: Signal = Signal {
    number: 9,
    name: "SIGKILL",
};
const SIGSEGV: Signal = Signal {
    number: 11,
    name: "SIGSEGV",
};
const SIGXFSZ: Signal = Signal {
    number: 25,
    name: "SIGXFSZ",
};
const SIGSYS: Signal = Signal {
    number: 31,
    name: "SIGSYS",
};

/// The signal a native process would have died of, for verdicts of a guest that ran and did
/// not exit; `None` for `ok`, `exit` and verdicts where nothing ran.
pub fn native_signal(v: &Verdict) -> Option<Signal> {
    Some(match v {
        Verdict::Trap(t) => match t {
            TrapKind::Unreachable => SIGABRT,
            TrapKind::StackOverflow
            | TrapKind::MemoryOutOfBounds
            | TrapKind::TableOutOfBounds
            | TrapKind::IndirectCallToNull
            | TrapKind::BadHostCall => SIGSEGV,
            TrapKind::HeapMisaligned => SIGBUS,
            TrapKind::IntegerOverflow
            | TrapKind::IntegerDivideByZero
            | TrapKind::BadConversionToInteger => SIGFPE,
            _ => SIGILL,
        },
        Verdict::Limit(LimitKind::FsBytes) => SIGXFSZ,
        Verdict::Limit(_) => SIGKILL,
        Verdict::Denied(_) => SIGSYS,
        _ => return None,
    })
}

/// Whether the verdict is a time limit (fuel or wall time): every API has a status for it.
pub fn is_timeout(v: &Verdict) -> bool {
    matches!(v, Verdict::Limit(LimitKind::Fuel | LimitKind::WallTime))
}

/// Whether the program never became runnable because of its source (a compile error, or a
/// module that admission rejected).
pub fn is_build_failure(v: &Verdict) -> bool {
    matches!(v, Verdict::CompileError(_) | Verdict::Rejected(_))
}

/// The exit status a shell reports: the exit code, `128 + signal`, or `None` (nothing ran,
/// or a time limit, which the APIs report by status instead).
pub fn shell_status(v: &Verdict) -> Option<i32> {
    v.exit_code()
        .or_else(|| native_signal(v).map(|s| 128 + s.number))
}

// ---------------------------------------------------------------------------------------
// SandboxFusion

/// SandboxFusion's top-level `status` and the `status` of the stage that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fusion {
    /// `Success`, `Failed` or `SandboxError`.
    pub status: &'static str,
    /// `Finished`, `TimeLimitExceeded` or `Error` (of the compile stage for build failures,
    /// else of the run stage).
    pub stage: &'static str,
    /// The stage's `return_code`.
    pub return_code: Option<i32>,
}

/// SandboxFusion's view of a verdict.
pub fn fusion(v: &Verdict) -> Fusion {
    match v {
        Verdict::Ok => Fusion {
            status: "Success",
            stage: "Finished",
            return_code: Some(0),
        },
        Verdict::CompileError(_) | Verdict::Rejected(_) => Fusion {
            status: "Failed",
            stage: "Finished",
            return_code: Some(1),
        },
        v if is_timeout(v) => Fusion {
            status: "Failed",
            stage: "TimeLimitExceeded",
            return_code: None,
        },
        Verdict::HostError(_) | Verdict::InvalidInput(_) => Fusion {
            status: "SandboxError",
            stage: "Error",
            return_code: None,
        },
        v => Fusion {
            status: "Failed",
            stage: "Finished",
            return_code: shell_status(v),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Piston

/// Piston's stage `code`, `signal` and `status` for a verdict of the run stage.
pub fn piston(v: &Verdict) -> (Option<i32>, Option<&'static str>, Option<&'static str>) {
    match v {
        Verdict::Ok => (Some(0), None, None),
        Verdict::Exit(c) => (Some(*c), None, Some("RE")),
        Verdict::Limit(LimitKind::Fuel | LimitKind::WallTime) => {
            (None, Some("SIGKILL"), Some("TO"))
        }
        Verdict::Limit(LimitKind::Stdout) => (None, Some("SIGKILL"), Some("OL")),
        Verdict::Limit(LimitKind::Stderr) => (None, Some("SIGKILL"), Some("EL")),
        Verdict::HostError(_) | Verdict::InvalidInput(_) => (None, None, Some("XX")),
        Verdict::CompileError(_) | Verdict::Rejected(_) => (Some(1), None, Some("RE")),
        v => (None, native_signal(v).map(|s| s.name), Some("SG")),
    }
}

// ---------------------------------------------------------------------------------------
// Judge0

/// Judge0's status table (`GET /statuses`).
pub const JUDGE0_STATUSES: [(u8, &str); 14] = [
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// Judge0's status id for a report; `expected` is the submission's `expected_output`.
pub fn judge0(report: &RunReport, expected: Option<&[u8]>) -> u8 {
    let v = &report.verdict;
    match v {
        Verdict::Ok => match expected {
            Some(e) if judge0_normalise(e) != judge0_normalise(&report.stdout) => 4,
            _ => 3,
        },
        Verdict::Exit(_) => 11,
        Verdict::CompileError(_) => 6,
        Verdict::Rejected(_) => 14,
        Verdict::HostError(_) | Verdict::InvalidInput(_) => 13,
        v if is_timeout(v) => 5,
        v => match native_signal(v).map(|s| s.number) {
            Some(11) => 7,
            Some(25) => 8,
            Some(8) => 9,
            Some(6) => 10,
            _ => 12,
        },
    }
}

/// Judge0's comparison of outputs: trailing whitespace of every line and trailing newlines
/// do not count.
fn judge0_normalise(s: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(s);
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out = lines.join("\n");
    while out.ends_with('\n') {
        out.pop();
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(v: Verdict, stdout: &str) -> RunReport {
        let mut r = RunReport::without_run(v, String::new());
        r.stdout = stdout.as_bytes().to_vec();
        r
    }

    #[test]
    fn judge0_statuses() {
        assert_eq!(judge0(&report(Verdict::Ok, "3 \n\n"), Some(b"3")), 3);
        assert_eq!(judge0(&report(Verdict::Ok, "4\n"), Some(b"3\n")), 4);
        assert_eq!(judge0(&report(Verdict::Exit(2), ""), None), 11);
        assert_eq!(
            judge0(
                &report(Verdict::Trap(TrapKind::MemoryOutOfBounds), ""),
                None
            ),
            7
        );
        assert_eq!(
            judge0(
                &report(Verdict::Trap(TrapKind::IntegerDivideByZero), ""),
                None
            ),
            9
        );
        assert_eq!(
            judge0(&report(Verdict::Trap(TrapKind::Unreachable), ""), None),
            10
        );
        assert_eq!(
            judge0(&report(Verdict::Limit(LimitKind::Fuel), ""), None),
            5
        );
        assert_eq!(
            judge0(&report(Verdict::Limit(LimitKind::FsBytes), ""), None),
            8
        );
        assert_eq!(
            judge0(&report(Verdict::CompileError("x".into()), ""), None),
            6
        );
        assert_eq!(
            judge0(&report(Verdict::HostError("x".into()), ""), None),
            13
        );
    }

    #[test]
    fn fusion_and_piston() {
        assert_eq!(fusion(&Verdict::Ok).status, "Success");
        let t = fusion(&Verdict::Limit(LimitKind::WallTime));
        assert_eq!((t.status, t.stage), ("Failed", "TimeLimitExceeded"));
        assert_eq!(
            fusion(&Verdict::Trap(TrapKind::MemoryOutOfBounds)).return_code,
            Some(139)
        );
        assert_eq!(
            fusion(&Verdict::HostError("x".into())).status,
            "SandboxError"
        );
        assert_eq!(
            piston(&Verdict::Limit(LimitKind::Stdout)),
            (None, Some("SIGKILL"), Some("OL"))
        );
        assert_eq!(
            piston(&Verdict::Trap(TrapKind::IntegerDivideByZero)),
            (None, Some("SIGFPE"), Some("SG"))
        );
    }
}
