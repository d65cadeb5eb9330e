//! For programs that run inside corral: read the evaluation case's input, report a
//! structured result and metrics. They appear in `corral eval`'s report beside the verdict.
//!
//! It talks to the host through corral's versioned import module `corral_v1`, which the gate
//! implements and records like every other call. Programs that do not use this crate run
//! as plain WASI programs. Outside corral (on the host, in unit tests) every function is a
//! harmless stub: no input, results and metrics are dropped.
//!
//! # Core concepts
//!
//! - [`input`]: the bytes the case gave this run (`input = "…"` in an eval suite).
//! - [`set_result`]: one structured result (UTF-8, e.g. JSON, at most 64 KiB).
//! - [`metric`]: named numbers (at most 256, names at most 64 bytes).
//!
//! # Example
//!
//! ```
//! let n: u64 = guest_sdk::input_string()
//!     .and_then(|s| s.trim().parse().ok())
//!     .unwrap_or(10);
//! let sum: u64 = (1..=n).sum();
//! guest_sdk::metric("n", n as f64);
//! guest_sdk::set_result(&format!("{{\"sum\": {sum}}}")).ok();
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![doc(test(attr(deny(warnings))))]

mod sys;

use std::fmt;

/// The host refused a call (the result was too large, not UTF-8, or a metric was invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the corral host refused the call")
    }
}

impl std::error::Error for Refused {}

/// The case input, or `None` when the run has none (or runs outside corral).
pub fn input() -> Option<Vec<u8>> {
    let size = usize::try_from(sys::input_size()?).ok()?;
    let mut buf = vec![0u8; size];
    let mut done = 0;
    while done < size {
        let n = sys::input_read(&mut buf[done..], done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Some(buf)
}

/// The case input as UTF-8 text (`None` when absent or not UTF-8).
pub fn input_string() -> Option<String> {
    String::from_utf8(input()?).ok()
}

/// Sets this run's structured result (replacing an earlier one).
///
/// # Errors
///
/// [`Refused`] when the text is larger than 64 KiB.
pub fn set_result(text: &str) -> Result<(), Refused> {
    sys::result_write(text.as_bytes())
}

/// Records a named number (the last value for a name wins).
///
/// Invalid metrics (empty or long names, non-finite values, more than 256 names) are
/// dropped; the program goes on.
pub fn metric(name: &str, value: f64) {
    let _ = sys::metric(name, value);
}

/// Like `assert!`, but reports the failed check as the run's result before panicking, so an
/// evaluation shows which check failed.
#[track_caller]
pub fn check(condition: bool, what: &str) {
    if !condition {
        let loc = std::panic::Location::caller();
        let _ = set_result(&format!(
            "{{\"check_failed\": {:?}, \"at\": \"{}:{}\"}}",
            what,
            loc.file(),
            loc.line()
        ));
        panic!("check failed: {what}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stubs_outside_corral() {
        assert_eq!(super::input(), None);
        assert!(super::set_result("{}").is_ok());
        super::metric("x", 1.0);
    }
}
