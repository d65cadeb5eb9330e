//! What the supervisor and a worker say to each other over the worker's stdin and stdout:
//! frames of a little-endian `u32` length and a postcard-encoded message.
//!
//! The supervisor trusts nothing a worker says beyond its shape: a frame longer than the
//! reader's cap, or one that does not decode, ends the worker.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::capability::audit::TrailSnapshot;
use crate::inputs::{Invocation, Recording, RunInputs};
use crate::report::{ModuleHash, RunReport};

use super::Walls;

/// The environment variables a supervisor starts a worker with (its only other input).
pub(crate) mod env {
    /// The worker's own directory (read-write to it).
    pub(crate) const ROOT: &str = "CORRAL_WORKER_ROOT";
    /// The cache (read-only to it).
    pub(crate) const CACHE: &str = "CORRAL_WORKER_CACHE";
    /// Instance slots of its engine's pool.
    pub(crate) const POOL: &str = "CORRAL_WORKER_POOL";
    /// Extra read-only trees (a one-off worker's read-only grants), `:`-separated.
    pub(crate) const READ_ONLY: &str = "CORRAL_WORKER_RO";
    /// Extra read-write trees (a one-off worker's read-write grants), `:`-separated.
    pub(crate) const READ_WRITE: &str = "CORRAL_WORKER_RW";
}

/// Where a worker finds the module to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ModuleRef {
    /// One this worker has admitted before.
    Known(ModuleHash),
    /// The bytes (sent the first time).
    Bytes(ModuleHash, Vec<u8>),
    /// A file in the cache (a language runner), read-only to the worker.
    File(ModuleHash, PathBuf),
}

/// The policy of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PolicyRef {
    /// One this worker has parsed before, by the blake3 of its name and canonical TOML.
    Known([u8; 32]),
    /// Its name and canonical TOML (the worker validates it again).
    Text([u8; 32], String, String),
}

/// A misbehaviour on request, to test the walls and the supervisor (feature `test-hooks`,
/// refused by release builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hook {
    /// Crash with SIGSEGV before running.
    Crash,
    /// Block the worker forever before running (as a host call that never returns would).
    Block,
}

/// One run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRequest {
    pub id: u64,
    pub module: ModuleRef,
    pub policy: PolicyRef,
    pub argv0: String,
    pub lead_args: Vec<String>,
    pub runner_env: Vec<(String, String)>,
    pub invocation: Invocation,
    /// What to return beyond the report.
    pub recording: Recording,
    pub hook: Option<Hook>,
}

/// A probe of one wall, made by the worker itself after lock-down (feature `test-hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// `socket(AF_INET, SOCK_STREAM)`.
    Socket,
    /// `execve("/bin/true")`.
    Exec,
    /// `ptrace(PTRACE_TRACEME)`.
    Ptrace,
    /// `fork()`.
    Fork,
    /// Open `/etc/passwd` for reading.
    ReadPasswd,
    /// Create a file in the directory given (outside the worker's root).
    WriteOutside,
}

/// Supervisor → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    Run(Box<RunRequest>),
    Probe(u64, Probe, PathBuf),
}

/// What a finished run returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Finished {
    pub report: RunReport,
    pub trail: Option<TrailSnapshot>,
    pub inputs: Option<RunInputs>,
}

/// Worker → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// Locked down and ready; which walls are up.
    Ready(Walls),
    /// A run ended: its result, or the message of a host error (or of invalid input, with
    /// `true`).
    Done(u64, Result<Box<Finished>, (bool, String)>),
    /// A probe's outcome: `Ok` if the call succeeded (a wall failed), else the error.
    Probed(u64, Result<(), String>),
}

/// Writes one frame.
pub(crate) fn write<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let body = postcard::to_stdvec(msg)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let len = u32::try_from(body.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one frame of at most `max` bytes; `Ok(None)` at a clean end of stream.
pub(crate) fn read<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    max: u64,
) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from(u32::from_le_bytes(len));
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes, more than the {max} allowed"),
        ));
    }
    let mut body = Vec::new();
    r.take(len).read_to_end(&mut body)?;
    if body.len() as u64 != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "a truncated frame",
        ));
    }
    postcard::from_bytes(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
