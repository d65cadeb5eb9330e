//! Host-side errors. A guest's misbehaviour is never one of these; it is a
//! [`Verdict`](crate::Verdict) inside `Ok(RunReport)`.

use std::fmt;

/// What went wrong on the host side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input is invalid: a bad argument, environment variable, `--dir` binding,
    /// unreadable input file. The CLI exits with status 2.
    InvalidInput,
    /// A policy failed to load or validate.
    Policy,
    /// The host itself failed (wasmtime could not be configured, a temp dir could not be
    /// created, …). The CLI exits with status 70.
    Host,
}

/// A host-side error: a kind and a message (lowercase, no trailing period, never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    /// An [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// An [`ErrorKind::Host`] error.
    pub fn host(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Host,
            message: message.into(),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<crate::policy::PolicyError> for Error {
    fn from(e: crate::policy::PolicyError) -> Error {
        Error {
            kind: ErrorKind::Policy,
            message: e.to_string(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
