//! Builds the WASI context of a run. The only place that calls `WasiCtxBuilder`.
//!
//! Deny by default: no inherited stdio, env, args or network; stdin is the given bytes;
//! stdout/stderr are capped captures; clocks and random are virtual; the only preopens are
//! engine-owned directories (staged inputs, the scratch dir, explicitly granted rw dirs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::clock::{MonoView, VirtualClock, WallView};
use super::limits::LimitLog;
use super::output::Capture;
pub(crate) use super::rules::MAX_RANDOM_BYTES;
use super::rules::{CoreSetup, FdInfo, FdKind, HostDir, Quota};
use super::{Gate, GateCore, random};
use crate::error::Error;
use crate::policy::Policy;

/// One directory the guest sees.
#[derive(Debug, Clone)]
pub(crate) struct Preopen {
    /// An engine-owned directory (staged copy, scratch) or an explicitly granted rw dir.
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
    pub(crate) writable: bool,
}

/// Everything a WASI context is built from.
#[derive(Debug)]
pub(crate) struct WasiSetup<'a> {
    pub(crate) policy: &'a Policy,
    pub(crate) argv: &'a [String],
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) stdin: Vec<u8>,
    pub(crate) preopens: &'a [Preopen],
    pub(crate) seed: u64,
    pub(crate) leak_host_metadata: bool,
    /// The case input offered through `corral_v1::input_*`.
    pub(crate) input: Option<std::sync::Arc<[u8]>>,
}

/// The pieces of a run the sandbox needs back after building the context.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) gate: Gate,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) log: Arc<LimitLog>,
}

fn configure(
    b: &mut WasiCtxBuilder,
    s: &WasiSetup<'_>,
    clock: &Arc<VirtualClock>,
) -> Result<(), Error> {
    b.args(s.argv)
        .stdin(MemoryInputPipe::new(s.stdin.clone()))
        .wall_clock(WallView(clock.clone()))
        .monotonic_clock(MonoView(clock.clone()))
        .secure_random(random::secure(s.seed))
        .insecure_random(random::insecure(s.seed))
        .insecure_random_seed(random::insecure_seed(s.seed))
        .max_random_size(MAX_RANDOM_BYTES)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // File operations run on the guest's own thread instead of a round trip through
        // tokio's blocking pool (~10 µs per call). They are local-disk operations on private
        // directories, each bounded by the quotas; a sandbox only ever waits for its own.
        .allow_blocking_current_thread(true);
    for (k, v) in s.env {
        b.env(k, v);
    }
    for p in s.preopens {
        let perms = if p.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&p.host, &p.guest, perms)
            .map_err(|e| Error::host(format!("cannot preopen `{}`: {e}", p.guest)))?;
    }
    Ok(())
}

/// The pieces of a component run.
pub(crate) struct BuiltP2 {
    pub(crate) ctx: wasmtime_wasi::WasiCtx,
    pub(crate) core: GateCore,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) log: Arc<LimitLog>,
}

impl std::fmt::Debug for BuiltP2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltP2")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// Builds the WASI 0.2 context and gate core for one component run.
///
/// # Errors
///
/// A preopen that cannot be opened.
pub(crate) fn build_p2(s: WasiSetup<'_>) -> Result<BuiltP2, Error> {
    let (mut b, core, stdout, stderr, log) = common(&s)?;
    Ok(BuiltP2 {
        ctx: b.build(),
        core,
        stdout,
        stderr,
        log,
    })
}

/// Builds the preview 1 gate for one run.
///
/// # Errors
///
/// A preopen that cannot be opened.
pub(crate) fn build_p1(s: WasiSetup<'_>) -> Result<Built, Error> {
    let (mut b, core, stdout, stderr, log) = common(&s)?;
    Ok(Built {
        gate: Gate {
            wasi: b.build_p1(),
            core,
        },
        stdout,
        stderr,
        log,
    })
}

type Common = (WasiCtxBuilder, GateCore, Capture, Capture, Arc<LimitLog>);

/// The builder (configured, captures attached) and the gate core, shared by both flavours.
fn common(s: &WasiSetup<'_>) -> Result<Common, Error> {
    let log = Arc::new(LimitLog::default());
    let clock = Arc::new(VirtualClock::new(s.policy.clock.epoch_secs));
    let stdout = Capture::new(
        s.policy.limits.stdout.0,
        crate::LimitKind::Stdout,
        log.clone(),
    );
    let stderr = Capture::new(
        s.policy.limits.stderr.0,
        crate::LimitKind::Stderr,
        log.clone(),
    );
    let mut b = WasiCtxBuilder::new();
    configure(&mut b, s, &clock)?;
    b.stdout(stdout.clone()).stderr(stderr.clone());

    let stdio = |kind| FdInfo {
        kind,
        dir_writable: false,
        file_writable: false,
        guest_opened: false,
        file_id: None,
        append: false,
        host_dir: None,
    };
    let mut fds = BTreeMap::new();
    fds.insert(0, stdio(FdKind::Stdin));
    fds.insert(1, stdio(FdKind::Stdout));
    fds.insert(2, stdio(FdKind::Stderr));
    for (i, p) in s.preopens.iter().enumerate() {
        fds.insert(
            3 + i as u32,
            FdInfo {
                kind: FdKind::Dir,
                dir_writable: p.writable,
                file_writable: false,
                guest_opened: false,
                file_id: None,
                append: false,
                host_dir: Some(HostDir::Path(Arc::from(p.host.as_path()))),
            },
        );
    }
    let l = &s.policy.limits;
    let core = GateCore::new(CoreSetup {
        clock,
        log: log.clone(),
        quota: Quota {
            fs_bytes_max: l.fs_bytes.0,
            fs_bytes_used: 0,
            fs_files_max: l.fs_files.0,
            fs_files_used: 0,
            open_max: l.open_files.0,
            open_now: 0,
        },
        on_denial: s.policy.on_denial,
        fds,
        stdin_len: s.stdin.len() as u64,
        leak_host_metadata: s.leak_host_metadata,
        input: s.input.clone(),
    });
    Ok((b, core, stdout, stderr, log))
}
