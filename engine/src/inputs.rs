//! The inputs of a run: what the caller gives (an [`Invocation`]: arguments, environment,
//! stdin, directory grants, seed, case input), what a record keeps of them ([`RunInputs`]),
//! and what a run keeps beyond its report ([`Recording`]). Plain data, shared by the sandbox,
//! the job stage, records and the worker protocol.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::capability::stage::StagedFile;
use crate::error::Error;
use crate::policy::GuestPath;

/// How a host directory is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Access {
    /// Staged copy, read-only (the default).
    ReadOnly,
    /// The host directory itself, writable (needs `fs.allow_rw_dirs`).
    ReadWrite,
}

/// A host directory bound to a guest path (`--dir HOST::GUEST[:ro|:rw]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirGrant {
    /// Host directory.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: GuestPath,
    /// Read-only (staged copy) or read-write.
    pub access: Access,
}

impl DirGrant {
    /// Parses `HOST::GUEST[:ro|:rw]`.
    ///
    /// # Errors
    ///
    /// A missing `::`, an invalid guest path, an unknown mode.
    pub fn parse(spec: &str) -> Result<DirGrant, Error> {
        let (host, rest) = spec.split_once("::").ok_or_else(|| {
            Error::invalid_input(format!(
                "`--dir {spec}` is not of the form HOST::GUEST[:ro|:rw]"
            ))
        })?;
        let (guest, access) = match rest.rsplit_once(':') {
            Some((g, "ro")) => (g, Access::ReadOnly),
            Some((g, "rw")) => (g, Access::ReadWrite),
            Some((_, mode)) if !mode.contains('/') => {
                return Err(Error::invalid_input(format!(
                    "`--dir {spec}`: unknown mode `{mode}` (use `ro` or `rw`)"
                )));
            }
            _ => (rest, Access::ReadOnly),
        };
        if host.is_empty() {
            return Err(Error::invalid_input(format!(
                "`--dir {spec}`: empty host path"
            )));
        }
        let guest = GuestPath::new(guest).map_err(|e| {
            Error::invalid_input(format!("`--dir {spec}`: {e} (hint: {})", e.hint()))
        })?;
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest,
            access,
        })
    }
}

/// The inputs of one run. Deny by default: no arguments after `argv[0]`, only the policy's
/// environment, empty stdin, no directories, seed 0, no case input.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invocation {
    /// Guest arguments after `argv[0]` (and after a runner's program text).
    pub args: Vec<String>,
    /// Guest environment, merged over the policy's `[env]`.
    pub env: BTreeMap<String, String>,
    /// Guest stdin.
    pub stdin: Vec<u8>,
    /// Host directories exposed to the guest.
    pub dirs: Vec<DirGrant>,
    /// Seed of the virtual random streams and clocks.
    pub seed: u64,
    /// The case input offered through `corral_v1` (the guest SDK).
    pub input: Option<std::sync::Arc<[u8]>>,
}

/// The inputs of a run that a record must keep to replay it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RunInputs {
    /// `argv`, including `argv[0]`.
    pub argv: Vec<String>,
    /// The guest environment (policy merged under invocation), sorted.
    pub env: BTreeMap<String, String>,
    /// Stdin bytes.
    pub stdin: Vec<u8>,
    /// Seed of the random and clock virtualisation.
    pub seed: u64,
    /// The case input (`corral_v1`).
    pub input: Option<std::sync::Arc<[u8]>>,
    /// Staged read-only inputs: guest path, directories, files (with bytes).
    pub inputs: Vec<StagedInput>,
    /// Whether any writable host directory was granted (such runs replay only if the
    /// directory's initial contents are the same; they are not captured).
    pub rw_dirs: Vec<String>,
}

/// One read-only input directory as staged for a run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StagedInput {
    /// Guest path.
    pub guest: String,
    /// Directories, relative.
    pub dirs: Vec<String>,
    /// Files, relative, with their hashes.
    pub files: Vec<StagedFile>,
    /// The staged bytes of each file (same order as `files`).
    pub contents: Vec<Vec<u8>>,
}

/// What a run keeps beyond its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Recording {
    /// The audit trail and the bytes of staged inputs: the caller may write a record of the
    /// run ([`Outcome::write_record`](crate::job::Outcome::write_record)).
    On,
    /// The audit trail only ([`Outcome::trail`](crate::job::Outcome::trail): `--trace`, replay's comparison).
    Trail,
    /// Nothing: no record will be written.
    Off,
}
