//! The exit statuses of the `corral` command, as the contract fixes them (docs/interface.md).
//! Every command and face that maps an outcome to a process status uses these, and only these.

/// The guest completed with exit code 0 (for `eval`: every case passed; for `replay`: the
/// replay was identical).
pub const OK: u8 = 0;
/// Any other verdict of the guest: a non-zero exit, a trap, a limit, a denial, a rejection,
/// a compile error (for `eval`: a case did not pass; for `replay`: it diverged).
pub const GUEST: u8 = 1;
/// A bad invocation or input file (an unreadable file, an invalid policy, suite or record,
/// an unknown option).
pub const INVALID: u8 = 2;
/// corral itself failed.
pub const HOST: u8 = 70;
