//! The gate: every guest→host call passes through here.
//!
//! It delegates to wasmtime-wasi where that is safe and replaces it where it is not:
//! quotas (`fs_bytes`, `fs_files`, `open_files`), virtual metadata (synthetic inodes, fixed
//! timestamps, sorted `fd_readdir`), virtual clocks and a `poll_oneoff` that never really
//! sleeps, seeded random, and an audit trail of every call. Only this module builds WASI
//! contexts (`wasi.rs`); a call that must stop the run returns a typed [`GateStop`] payload,
//! which the verdict module downcasts.

pub(crate) mod audit;
pub(crate) mod clock;
pub(crate) mod door;
pub(crate) mod imports;
pub(crate) mod limits;
pub(crate) mod output;
mod p1;
pub(crate) mod p2;
pub(crate) mod random;
mod sdk;
pub(crate) mod stage;
pub(crate) mod wasi;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use wasmtime_wasi::p1::WasiP1Ctx;

use crate::policy::OnDenial;
pub(crate) use crate::verdict::GateStop;
use crate::verdict::LimitKind;
use audit::AuditTrail;
use clock::VirtualClock;
use limits::{LimitLog, Limiter};

/// Fuel charged for every host call, on top of the guest's own instructions: host work is
/// real work, and without a price a guest could spin on cheap host calls (`sched_yield`,
/// zero-length sleeps) until the wall clock, a non-deterministic limit, stopped it.
pub const HOST_CALL_FUEL: u64 = 4096;

/// Longest path a guest may pass (bytes). Checked by the gate itself, so the answer never
/// depends on which path resolver the host kernel offers.
pub const MAX_PATH_BYTES: usize = 4096;

/// What kind of object a guest descriptor refers to (mirrors wasmtime-wasi's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    Stdin,
    Stdout,
    Stderr,
    Dir,
    File,
}

/// The gate's view of one guest descriptor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdInfo {
    pub(crate) kind: FdKind,
    /// For directories: entries may be created, removed or have their times set below it.
    /// For files: the directory it was opened from allows that.
    pub(crate) dir_writable: bool,
    /// For files: opened with write rights.
    pub(crate) file_writable: bool,
    /// Opened by the guest (counts against `open_files`), not stdio or a preopen.
    pub(crate) guest_opened: bool,
    /// For files: the host identity of the file (shared by all descriptors to it).
    pub(crate) file_id: Option<u64>,
    /// For files: opened in append mode.
    pub(crate) append: bool,
}

/// Where a write will land, for charging it: the file, where it starts, and the file's
/// size before it. A write costs its length plus any hole it leaves before `start`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WritePlan {
    pub(crate) file_id: u64,
    pub(crate) start: u64,
    pub(crate) size: u64,
}

impl WritePlan {
    /// Bytes charged for writing `n` bytes (a sparse hole counts by its logical size).
    pub(crate) fn charge(&self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            n.saturating_add(self.start.saturating_sub(self.size))
        }
    }
}

/// Write and creation quotas of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota {
    pub(crate) fs_bytes_max: u64,
    pub(crate) fs_bytes_used: u64,
    pub(crate) fs_files_max: u64,
    pub(crate) fs_files_used: u64,
    pub(crate) open_max: u64,
    pub(crate) open_now: u64,
}

/// Synthetic file identities and the virtual timestamps set by the guest.
#[derive(Debug, Default)]
pub(crate) struct MetaView {
    inodes: HashMap<u64, u64>,
    times: HashMap<u64, (u64, u64)>,
}

impl MetaView {
    /// The synthetic inode for a host-derived identity, assigned in order of first sight.
    pub(crate) fn inode(&mut self, host: u64) -> u64 {
        let next = self.inodes.len() as u64 + 1;
        *self.inodes.entry(host).or_insert(next)
    }

    pub(crate) fn times(&self, ino: u64, epoch: u64) -> (u64, u64) {
        self.times.get(&ino).copied().unwrap_or((epoch, epoch))
    }

    pub(crate) fn set_times(&mut self, ino: u64, atim: Option<u64>, mtim: Option<u64>, epoch: u64) {
        let (a, m) = self.times(ino, epoch);
        self.times
            .insert(ino, (atim.unwrap_or(a), mtim.unwrap_or(m)));
    }
}

/// One directory entry as the guest sees it (sorted listings are cached per descriptor).
#[derive(Debug, Clone)]
pub(crate) struct DirEntry {
    pub(crate) ino: u64,
    pub(crate) filetype: u8,
    pub(crate) name: Vec<u8>,
}

/// Most bytes of a structured result (`corral_v1::result_write`).
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// Most metrics per run (`corral_v1::metric`).
pub const MAX_METRICS: usize = 256;
/// Longest metric name.
pub const MAX_METRIC_NAME: usize = 64;

/// What the guest SDK (`corral_v1`) exchanges with the host.
#[derive(Debug, Default)]
pub(crate) struct SdkState {
    pub(crate) input: Option<std::sync::Arc<[u8]>>,
    pub(crate) result: Option<String>,
    pub(crate) metrics: BTreeMap<String, f64>,
}

/// Per-run state of the gate that is the same for WASI preview 1 and 0.2.
#[derive(Debug)]
pub(crate) struct GateCore {
    pub(crate) clock: Arc<VirtualClock>,
    pub(crate) log: Arc<LimitLog>,
    pub(crate) trail: AuditTrail,
    pub(crate) quota: Quota,
    pub(crate) on_denial: OnDenial,
    pub(crate) fds: BTreeMap<u32, FdInfo>,
    pub(crate) meta: MetaView,
    pub(crate) listings: HashMap<u32, Vec<DirEntry>>,
    pub(crate) stdin_remaining: u64,
    /// Test-only weakening (see `EngineConfig::leak_host_metadata`).
    pub(crate) leak_host_metadata: bool,
    /// `corral_v1` state: the case input, the structured result and metrics.
    pub(crate) sdk: SdkState,
    /// Fuel owed for host calls made since the store last collected it.
    pub(crate) pending_fuel: u64,
    /// How many host calls (gate functions or wasmtime libcalls) are active: a component
    /// call runs guest code (`cabi_realloc`) while lowering its results, and that code can
    /// enter libcalls (epoch checks, memory growth) at wall-clock-dependent moments.
    pub(crate) host_depth: u32,
    /// Known size of every file the guest writes, by host identity.
    pub(crate) sizes: BTreeMap<u64, u64>,
    /// Component runs: file output streams: rep → (file identity, position, append).
    pub(crate) stream_pos: HashMap<u32, (u64, u64, bool)>,
    /// Component runs: descriptors the guest opened (resource reps).
    pub(crate) p2_open: std::collections::HashSet<u32>,
    /// Component runs: output streams that write into files.
    pub(crate) file_streams: std::collections::HashSet<u32>,
    /// Component runs: sorted directory listings being read, by stream rep.
    pub(crate) p2_listings: HashMap<
        u32,
        std::collections::VecDeque<wasmtime_wasi::p2::bindings::filesystem::types::DirectoryEntry>,
    >,
}

impl GateCore {
    /// Notes a limit (the first one noted is the verdict).
    pub(crate) fn limit(&self, kind: LimitKind) {
        self.log.hit(kind);
    }

    /// Records one call in the audit trail, counts a refusal, and applies the denial policy:
    /// returns `Some(stop)` when the run must end now.
    pub(crate) fn record(
        &mut self,
        func: &'static str,
        args: audit::Digest,
        errno: u16,
        result: audit::Digest,
        denied: bool,
    ) -> Option<GateStop> {
        let fuel = self.clock.fuel_consumed();
        self.trail.push(func, fuel, args, errno, result);
        self.pending_fuel = self.pending_fuel.saturating_add(HOST_CALL_FUEL);
        if denied {
            self.trail.note_denial();
            if self.on_denial == OnDenial::EndRun {
                return Some(GateStop::Denied(format!("`{func}` was refused")));
            }
        }
        None
    }

    /// Records that a planned write of `n` bytes happened: charges it and updates the size.
    pub(crate) fn after_write(&mut self, plan: WritePlan, n: u64) {
        self.charge_write(plan.charge(n));
        let end = plan.start.saturating_add(n);
        let size = self.sizes.entry(plan.file_id).or_insert(plan.size);
        if end > *size {
            *size = end;
        }
    }

    /// Whether writing `len` more bytes to a writable file fits the quota; notes the
    /// `fs_bytes` limit when it does not.
    pub(crate) fn write_fits(&mut self, len: u64) -> bool {
        let q = &self.quota;
        if q.fs_bytes_used.saturating_add(len) <= q.fs_bytes_max {
            return true;
        }
        self.limit(LimitKind::FsBytes);
        false
    }

    /// Counts `n` bytes written to (or extended in) a file.
    pub(crate) fn charge_write(&mut self, n: u64) {
        self.quota.fs_bytes_used = self.quota.fs_bytes_used.saturating_add(n);
    }

    /// Whether one more file, dir or link may be created; notes `fs_files` when not.
    pub(crate) fn create_fits(&mut self) -> bool {
        if self.quota.fs_files_used < self.quota.fs_files_max {
            return true;
        }
        self.limit(LimitKind::FsFiles);
        false
    }

    /// Counts one created file, dir or link.
    pub(crate) fn charge_create(&mut self) {
        self.quota.fs_files_used += 1;
    }

    /// Whether the guest may open one more descriptor; notes `open_files` when not.
    pub(crate) fn open_fits(&mut self) -> bool {
        if self.quota.open_now < self.quota.open_max {
            return true;
        }
        self.limit(LimitKind::OpenFiles);
        false
    }

    /// Virtual `(atime, mtime, ctime)` in ns for a host-derived identity, and its synthetic
    /// inode.
    pub(crate) fn virt_times(&mut self, host_id: u64) -> (u64, (u64, u64, u64)) {
        let ino = self.meta.inode(host_id);
        let epoch = self.clock.epoch_ns();
        let (a, m) = self.meta.times(ino, epoch);
        (ino, (a, m, epoch))
    }

    /// Sets virtual times (never the host's).
    pub(crate) fn set_virt_times(&mut self, host_id: u64, atim: Option<u64>, mtim: Option<u64>) {
        let ino = self.meta.inode(host_id);
        let epoch = self.clock.epoch_ns();
        self.meta.set_times(ino, atim, mtim, epoch);
    }
}

/// The store data of a core-module run.
pub(crate) struct RunState {
    /// WASI preview 1 context (wasmtime-wasi) plus the gate's own state.
    pub(crate) gate: Gate,
    /// Memory/table limiter.
    pub(crate) limiter: Limiter,
    /// Fuel the run started with (to turn "remaining" into "consumed").
    pub(crate) fuel_budget: u64,
}

impl fmt::Debug for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunState").finish_non_exhaustive()
    }
}

/// The preview 1 gate: wasmtime-wasi's context plus the gate core.
pub(crate) struct Gate {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) core: GateCore,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// Registers everything a core module may import: WASI preview 1 and `corral_v1`.
pub(crate) fn add_to_linker(linker: &mut wasmtime::Linker<RunState>) -> wasmtime::Result<()> {
    p1::add_to_linker(linker)?;
    sdk::add_to_linker(linker)
}

/// Registers what the scientific Python runner imports: WASI preview 1 and `host::call`.
pub(crate) fn add_runner_to_linker(
    linker: &mut wasmtime::Linker<RunState>,
) -> wasmtime::Result<()> {
    p1::add_to_linker(linker)?;
    door::add_to_linker(linker)
}
