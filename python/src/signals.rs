//! Keeping guest traps verdicts when another library takes the signal handlers.
//!
//! wasmtime turns a guest's traps (out-of-bounds accesses, `unreachable`, division by zero)
//! into verdicts with handlers for SIGSEGV, SIGBUS, SIGILL and SIGFPE, installed when the
//! first engine of the process is created; for faults that are not a guest's it calls the
//! handler it found. A library loaded into the same Python process later may install its own
//! handlers over them without chaining back: `ray.init()` does (Ray's failure handler), and
//! so does `faulthandler.enable()`. The next guest trap then kills the whole process instead
//! of ending in a `trap` verdict.
//!
//! So the binding records wasmtime's handlers right after it creates its first engine, and
//! before every job checks that they are still in place, putting them back (and saying so
//! once on stderr) if they are not. The replaced handler is lost for faults that are not a
//! guest's: wasmtime passes those to the handler that was there before it.
//!
//! This is the binding's only `unsafe` (the `sigaction` calls). The worker processes of the
//! second wall (issue 12) make it moot: there, guests run where no other library lives.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// wasmtime's handlers, as installed in this process.
static SAVED: OnceLock<Vec<(libc::c_int, libc::sigaction)>> = OnceLock::new();

/// The current action for `sig`.
#[expect(
    unsafe_code,
    reason = "reading the process's signal actions (see the module docs)"
)]
fn current(sig: libc::c_int) -> Option<libc::sigaction> {
    // SAFETY: `sigaction` is plain data (a handler address, a mask, flags); all zeroes is a
    // valid value of it.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: with a null `act`, sigaction only writes the current action into `old`, a valid
    // and exclusively borrowed `sigaction`.
    let r = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
    (r == 0).then_some(old)
}

/// Records wasmtime's handlers; call right after creating an engine (wasmtime installs them
/// in `Engine::new`). Only the first call records.
pub(crate) fn capture() {
    SAVED.get_or_init(|| {
        SIGNALS
            .iter()
            .filter_map(|&s| current(s).map(|a| (s, a)))
            .collect()
    });
}

/// Puts wasmtime's handlers back where another library replaced them.
#[expect(
    unsafe_code,
    reason = "restoring wasmtime's signal actions (see the module docs)"
)]
pub(crate) fn guard() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let Some(saved) = SAVED.get() else {
        return;
    };
    for (sig, want) in saved {
        let Some(now) = current(*sig) else {
            continue;
        };
        if now.sa_sigaction == want.sa_sigaction && now.sa_flags == want.sa_flags {
            continue;
        }
        // SAFETY: `want` is exactly the action wasmtime installed in this process (recorded
        // after it did); its handler is code of this library, loaded for the life of the
        // process, and its state (`TRAP_HANDLER`) is never torn down by the binding.
        let r = unsafe { libc::sigaction(*sig, want, std::ptr::null_mut()) };
        if r == 0 && !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "corral: another library replaced the signal handlers that turn guest traps into verdicts (ray.init() and faulthandler.enable() do); corral put them back"
            );
        }
    }
}
