//! The gate core: every capability rule, once, for both WASI worlds.
//!
//! The preview 1 adapter (`p1.rs`) and the WASI 0.2 adapter (`p2.rs`) translate between their
//! world's types and the neutral ones here ([`Errc`], [`EntryKind`], [`WritePlan`], [`Work`])
//! and ask [`GateCore`] for every decision:
//!
//! | rule | gate-core functions |
//! |---|---|
//! | audit trail, denials, `on_denial` | [`GateCore::record`], [`GateCore::refuse_socket`], [`Errc::is_denial`] |
//! | fuel for host work | [`GateCore::charge`], [`Work::fuel`] (the table is in `policies/README.md`) |
//! | path length and components | [`GateCore::check_path`] |
//! | open descriptors | [`GateCore::open_allowed`], [`GateCore::opened`], [`GateCore::closed`] |
//! | what may be opened (no FIFOs, sockets, devices) | [`GateCore::open_target`] |
//! | created files, dirs, links | [`GateCore::create_allowed`], [`GateCore::created`], [`GateCore::changed`] |
//! | written bytes, holes included | [`GateCore::write_allowed`], [`GateCore::wrote`] |
//! | file size changes | [`GateCore::resize_allowed`], [`GateCore::resized`] |
//! | directory listings | [`GateCore::listing`], [`GateCore::forget_listing`] |
//! | random bytes | [`GateCore::random_len`] |
//! | poll sets | [`GateCore::poll_size`] |
//! | stream contracts (0.2) | [`GateCore::stream_write`], [`GateCore::blocking_write`] |
//! | virtual metadata | [`GateCore::virt_times`], [`GateCore::set_virt_times`], [`GateCore::inode`] |
//!
//! A rule that refuses a call returns an [`Errc`] (the adapter turns it into its errno or
//! error code) or, where WASI defines the misuse as a trap, a [`GateStop`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::audit::{self, AuditTrail};
use super::clock::VirtualClock;
use super::limits::LimitLog;
use crate::policy::OnDenial;
use crate::verdict::{GateStop, LimitKind};

/// Fuel charged for every host call, on top of the guest's own instructions and of the
/// [`Work`] the call causes: without a price a guest could spin on cheap host calls
/// (`sched_yield`, zero-length sleeps) until the wall clock, a non-deterministic limit,
/// stopped it.
pub const HOST_CALL_FUEL: u64 = 4096;

/// Longest path a guest may pass (bytes). Checked by the gate itself, so the answer never
/// depends on which path resolver the host kernel offers.
pub const MAX_PATH_BYTES: usize = 4096;

/// Largest single random request (bytes): `random_get`, `get-random-bytes`,
/// `get-insecure-random-bytes`. Larger requests trap (`bad_host_call`).
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Most entries a directory listing may have. A larger directory cannot be listed (the call
/// fails with `nomem` / `insufficient-memory`); no listing costs the host more than this.
pub const MAX_LISTING_ENTRIES: usize = 100_000;

/// Most subscriptions (`poll_oneoff`) or pollables (`poll`) in one call; more fail with
/// `inval` (preview 1) or trap (0.2, where the call has no error result).
pub const MAX_POLL_SIZE: u64 = 65_536;

/// Most bytes one `blocking-write-and-flush` / `blocking-write-zeroes-and-flush` may carry
/// (the WASI 0.2 contract); more is a trap.
pub const MAX_BLOCKING_WRITE: u64 = 4096;

pub use crate::policy::MAX_HANDLES;

/// Host work a call causes beyond the call itself, charged in fuel ([`Work::fuel`]).
///
/// The prices keep every measured call pattern within a few times the host time per fuel
/// unit of plain wasm code (`corral bench --only amplification`; docs/performance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Bytes copied between guest memory and the host (read, written, digested).
    Bytes(u64),
    /// Iovecs scanned.
    Iovecs(u64),
    /// Directory entries read from the host while building a listing.
    Listed(u64),
    /// Host `stat`s made while building a listing.
    Stats(u64),
    /// Listing entries copied to the guest.
    Entries(u64),
    /// Poll subscriptions or pollables examined.
    Subscriptions(u64),
    /// Components of a path the host resolves.
    PathComponents(u64),
    /// Random bytes generated.
    RandomBytes(u64),
}

/// Fuel per two bytes copied between guest memory and the host.
pub const FUEL_PER_2_BYTES: u64 = 1;
/// Fuel per iovec scanned.
pub const FUEL_PER_IOVEC: u64 = 64;
/// Fuel per directory entry read from the host.
pub const FUEL_PER_LISTED: u64 = 1024;
/// Fuel per host `stat` made for a listing.
pub const FUEL_PER_STAT: u64 = 4096;
/// Fuel per listing entry copied to the guest.
pub const FUEL_PER_ENTRY: u64 = 128;
/// Fuel per poll subscription.
pub const FUEL_PER_SUBSCRIPTION: u64 = 512;
/// Fuel per path component.
pub const FUEL_PER_PATH_COMPONENT: u64 = 256;
/// Fuel per random byte.
pub const FUEL_PER_RANDOM_BYTE: u64 = 32;

impl Work {
    /// What the work costs.
    pub(crate) fn fuel(self) -> u64 {
        match self {
            Work::Bytes(n) => n.div_ceil(2).saturating_mul(FUEL_PER_2_BYTES),
            Work::Iovecs(n) => n.saturating_mul(FUEL_PER_IOVEC),
            Work::Listed(n) => n.saturating_mul(FUEL_PER_LISTED),
            Work::Stats(n) => n.saturating_mul(FUEL_PER_STAT),
            Work::Entries(n) => n.saturating_mul(FUEL_PER_ENTRY),
            Work::Subscriptions(n) => n.saturating_mul(FUEL_PER_SUBSCRIPTION),
            Work::PathComponents(n) => n.saturating_mul(FUEL_PER_PATH_COMPONENT),
            Work::RandomBytes(n) => n.saturating_mul(FUEL_PER_RANDOM_BYTE),
        }
    }
}

/// An error as the rules see it: what the core raises, and what it must recognise in the
/// results of delegated calls (the adapters translate errnos and error codes both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Errc {
    /// `perm` / `not-permitted`.
    NotPermitted,
    /// `acces` / `access`.
    Access,
    /// `notcapable` (preview 1 only).
    NotCapable,
    /// `rofs` / `read-only`.
    ReadOnly,
    /// `nametoolong` / `name-too-long`.
    NameTooLong,
    /// `nospc` / `insufficient-space`.
    NoSpace,
    /// `mfile` / `quota`: the open-descriptor cap.
    TooManyOpen,
    /// `nomem` / `insufficient-memory`.
    NoMemory,
    /// `inval` / `invalid`.
    Invalid,
    /// `ilseq` / `illegal-byte-sequence` (a host name that is not UTF-8).
    IllegalSequence,
    /// Anything else.
    Other,
}

impl Errc {
    /// Whether the error is a refusal by a capability check (counted as a denial, and
    /// under `on_denial = "end_run"` the end of the run).
    pub(crate) fn is_denial(self) -> bool {
        matches!(
            self,
            Errc::NotPermitted | Errc::Access | Errc::NotCapable | Errc::ReadOnly
        )
    }
}

/// What kind of object a path or directory entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl EntryKind {
    pub(crate) fn of(ft: cap_std::fs::FileType) -> EntryKind {
        use cap_std::fs::FileTypeExt;
        if ft.is_file() {
            EntryKind::File
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else if ft.is_socket() {
            EntryKind::Socket
        } else if ft.is_char_device() {
            EntryKind::CharDevice
        } else if ft.is_block_device() {
            EntryKind::BlockDevice
        } else {
            EntryKind::Unknown
        }
    }
}

/// The host identity the gate keys virtual metadata by: the same 64-bit value wasmtime-wasi
/// derives from `(dev, ino)` (its `metadata-hash`, its preview 1 `ino`), so identities from
/// the gate's own listings and from delegated `stat`s agree.
pub(crate) fn host_identity(dev: u64, ino: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (dev, ino).hash(&mut h);
    h.finish()
}

/// What kind of object a guest descriptor refers to (preview 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    Stdin,
    Stdout,
    Stderr,
    Dir,
    File,
}

/// Where the gate reads a directory from when it lists it itself.
#[derive(Debug, Clone)]
pub(crate) enum HostDir {
    /// An engine-owned preopen (opened on first use).
    Path(Arc<std::path::Path>),
    /// An open directory handle.
    Open(Arc<cap_std::fs::Dir>),
}

/// The gate's view of one preview 1 descriptor.
#[derive(Debug, Clone)]
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
    /// For directories: the gate's own handle, for listings.
    pub(crate) host_dir: Option<HostDir>,
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

/// How a write is charged against `fs_bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Charge {
    /// Not a write into a file (stdout, stderr, pipes): no quota.
    Free,
    /// Into a file whose position and size are known: its length plus any hole.
    Plan(WritePlan),
    /// Into a file at an unknown position: its length.
    Flat,
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
    /// Synthetic inodes handed out so far (never reused).
    assigned: u64,
    times: HashMap<u64, (u64, u64)>,
}

impl MetaView {
    /// The synthetic inode for a host-derived identity, assigned in order of first sight.
    fn inode(&mut self, host: u64) -> u64 {
        let next = self.assigned + 1;
        let ino = *self.inodes.entry(host).or_insert(next);
        if ino == next {
            self.assigned = next;
        }
        ino
    }

    /// Forgets a host identity whose object was removed: the host may give its inode number
    /// to the next file created, which must not inherit the removed one's synthetic inode (a
    /// replay on a host that does not reuse it would see a different one).
    fn forget(&mut self, host: u64) {
        self.inodes.remove(&host);
    }

    fn times(&self, ino: u64, epoch: u64) -> (u64, u64) {
        self.times.get(&ino).copied().unwrap_or((epoch, epoch))
    }

    fn set_times(&mut self, ino: u64, atim: Option<u64>, mtim: Option<u64>, epoch: u64) {
        let (a, m) = self.times(ino, epoch);
        self.times
            .insert(ino, (atim.unwrap_or(a), mtim.unwrap_or(m)));
    }
}

/// One directory entry as listed by the gate.
#[derive(Debug, Clone)]
pub(crate) struct ListEntry {
    pub(crate) name: String,
    pub(crate) kind: EntryKind,
    /// [`host_identity`] of the entry (0 when the listing was built without `stat`s).
    pub(crate) host_id: u64,
}

/// A listing and what it was built from: reused while nothing the guest did and nothing on
/// the host (the directory's change times) says the directory changed.
#[derive(Debug, Clone)]
struct Listing {
    entries: Arc<[ListEntry]>,
    stamp: (u64, i64, i64, i64, i64),
    with_ids: bool,
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
    pub(crate) input: Option<Arc<[u8]>>,
    pub(crate) result: Option<String>,
    pub(crate) metrics: BTreeMap<String, f64>,
}

/// Per-run state of the gate, the same for WASI preview 1 and 0.2, and the rules over it.
#[derive(Debug)]
pub(crate) struct GateCore {
    pub(crate) clock: Arc<VirtualClock>,
    pub(crate) log: Arc<LimitLog>,
    pub(crate) trail: AuditTrail,
    quota: Quota,
    on_denial: OnDenial,
    /// Preview 1 descriptors.
    pub(crate) fds: BTreeMap<u32, FdInfo>,
    meta: MetaView,
    listings: HashMap<u64, Listing>,
    /// Bumped by every change the guest makes to any directory: listings built before it
    /// are stale.
    generation: u64,
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
    /// Guest code has started running (instantiation or the entry point).
    pub(crate) wasm_entered: bool,
    /// A gate function returned an error of a delegated call as a trap (an error the gate
    /// does not itself attribute to the guest).
    pub(crate) gate_trapped: bool,
    /// Known size of every file the guest writes, by host identity.
    sizes: BTreeMap<u64, u64>,
    /// Component runs: file output streams: rep → (file identity, position, append).
    pub(crate) stream_pos: HashMap<u32, (u64, u64, bool)>,
    /// Component runs: descriptors the guest opened (resource reps).
    pub(crate) p2_open: std::collections::HashSet<u32>,
    /// Component runs: output streams that write into files.
    pub(crate) file_streams: std::collections::HashSet<u32>,
}

/// The limits and settings a [`GateCore`] starts from.
#[derive(Debug)]
pub(crate) struct CoreSetup {
    pub(crate) clock: Arc<VirtualClock>,
    pub(crate) log: Arc<LimitLog>,
    pub(crate) quota: Quota,
    pub(crate) on_denial: OnDenial,
    pub(crate) fds: BTreeMap<u32, FdInfo>,
    pub(crate) stdin_len: u64,
    pub(crate) leak_host_metadata: bool,
    pub(crate) input: Option<Arc<[u8]>>,
}

impl GateCore {
    pub(crate) fn new(s: CoreSetup) -> GateCore {
        GateCore {
            clock: s.clock,
            log: s.log,
            trail: AuditTrail::default(),
            quota: s.quota,
            on_denial: s.on_denial,
            fds: s.fds,
            meta: MetaView::default(),
            listings: HashMap::new(),
            generation: 0,
            stdin_remaining: s.stdin_len,
            leak_host_metadata: s.leak_host_metadata,
            sdk: SdkState {
                input: s.input,
                ..Default::default()
            },
            pending_fuel: 0,
            host_depth: 0,
            wasm_entered: false,
            gate_trapped: false,
            sizes: BTreeMap::new(),
            stream_pos: HashMap::new(),
            p2_open: Default::default(),
            file_streams: Default::default(),
        }
    }

    /// Notes a limit (the first one noted is the verdict).
    pub(crate) fn limit(&self, kind: LimitKind) {
        self.log.hit(kind);
    }

    // ---- audit, denials, fuel ----

    /// Records one call in the audit trail and charges its base fuel. `errc` is the error
    /// the call returned (translated by the adapter): a refusal is counted as a denial, and
    /// under `on_denial = "end_run"` returns `Some(stop)`: the run must end now. A call that
    /// trapped (`errno` [`audit::ERRNO_TRAP`]) is noted for the verdict.
    pub(crate) fn record(
        &mut self,
        func: &'static str,
        args: audit::Digest,
        errno: u16,
        result: audit::Digest,
        errc: Option<Errc>,
    ) -> Option<GateStop> {
        let fuel = self.clock.fuel_consumed();
        self.trail.push(func, fuel, args, errno, result);
        self.pending_fuel = self.pending_fuel.saturating_add(HOST_CALL_FUEL);
        if errc.is_some_and(Errc::is_denial) {
            return self.deny(func);
        }
        None
    }

    /// Notes that a delegated call trapped with an error the gate did not raise.
    pub(crate) fn trapped(&mut self) {
        self.gate_trapped = true;
    }

    fn deny(&mut self, func: &'static str) -> Option<GateStop> {
        self.trail.note_denial();
        if self.on_denial == OnDenial::EndRun {
            return Some(GateStop::Denied(format!("`{func}` was refused")));
        }
        None
    }

    /// Refuses a network call (no policy grants network access): records it as a denial.
    /// The adapter returns its world's "access denied".
    pub(crate) fn refuse_socket(
        &mut self,
        func: &'static str,
        args: audit::Digest,
        errno: u16,
    ) -> Option<GateStop> {
        let fuel = self.clock.fuel_consumed();
        self.trail
            .push(func, fuel, args, errno, audit::Digest::default());
        self.pending_fuel = self.pending_fuel.saturating_add(HOST_CALL_FUEL);
        self.deny(func)
    }

    /// Refuses `host::call` (the scientific Python runner's door to host tools): corral
    /// offers no tools, so every call is recorded as a denial and the adapter answers
    /// [`NO_HOST`](super::door::NO_HOST) without touching guest memory.
    pub(crate) fn refuse_host_call(
        &mut self,
        func: &'static str,
        args: audit::Digest,
        result: audit::Digest,
    ) -> Option<GateStop> {
        self.record(func, args, 0, result, Some(Errc::NotPermitted))
    }

    /// Charges the fuel for host work a call causes (collected when the call returns).
    pub(crate) fn charge(&mut self, work: Work) {
        self.pending_fuel = self.pending_fuel.saturating_add(work.fuel());
    }

    // ---- paths ----

    /// A path the guest passes: at most [`MAX_PATH_BYTES`] (refused before the host sees
    /// it, `nametoolong`); charged per component the host will resolve.
    pub(crate) fn check_path(&mut self, path: &[u8]) -> Result<(), Errc> {
        if path.len() > MAX_PATH_BYTES {
            return Err(Errc::NameTooLong);
        }
        let components = path.split(|b| *b == b'/').filter(|c| !c.is_empty()).count();
        self.charge(Work::PathComponents(components as u64));
        self.charge(Work::Bytes(path.len() as u64));
        Ok(())
    }

    /// Whether a path of `len` bytes may be passed at all (checked before its bytes are
    /// read from guest memory).
    pub(crate) fn path_len_ok(len: usize) -> Result<(), Errc> {
        if len > MAX_PATH_BYTES {
            Err(Errc::NameTooLong)
        } else {
            Ok(())
        }
    }

    // ---- descriptors ----

    /// Whether the guest may open one more descriptor; notes `open_files` when not.
    pub(crate) fn open_allowed(&mut self) -> Result<(), Errc> {
        if self.quota.open_now < self.quota.open_max {
            return Ok(());
        }
        self.limit(LimitKind::OpenFiles);
        Err(Errc::TooManyOpen)
    }

    /// Counts a descriptor the guest opened.
    pub(crate) fn opened(&mut self) {
        self.quota.open_now += 1;
    }

    /// Counts a guest-opened descriptor closed.
    pub(crate) fn closed(&mut self) {
        self.quota.open_now = self.quota.open_now.saturating_sub(1);
    }

    /// What a guest may open: regular files and directories (and, for a path that does not
    /// exist yet, whatever it creates). FIFOs, sockets and devices are refused (`access`):
    /// opening or reading one can block the host without bound, where neither fuel nor the
    /// wall clock can stop it.
    pub(crate) fn open_target(&mut self, kind: Option<EntryKind>) -> Result<(), Errc> {
        match kind {
            None | Some(EntryKind::File | EntryKind::Dir | EntryKind::Symlink) => Ok(()),
            Some(_) => Err(Errc::Access),
        }
    }

    // ---- creation ----

    /// Whether the file-creation quota is used up (only then does a creation need the
    /// adapter to find out whether the path exists).
    pub(crate) fn files_exhausted(&self) -> bool {
        self.quota.fs_files_used >= self.quota.fs_files_max
    }

    /// Whether a call may create `path` under a directory: with the quota used up, creating
    /// a new entry in a writable directory fails with `nospc` (and notes `fs_files`); a
    /// call that creates nothing (the path exists, the directory is read-only) fails or
    /// succeeds on its own terms.
    pub(crate) fn create_allowed(&mut self, dir_writable: bool, exists: bool) -> Result<(), Errc> {
        if !self.files_exhausted() || !dir_writable || exists {
            return Ok(());
        }
        self.limit(LimitKind::FsFiles);
        Err(Errc::NoSpace)
    }

    /// Counts one created file, directory or link.
    pub(crate) fn created(&mut self) {
        self.quota.fs_files_used += 1;
        self.changed();
    }

    /// Notes that the guest changed a directory (created, removed or renamed an entry):
    /// listings built before are rebuilt on next use.
    pub(crate) fn changed(&mut self) {
        self.generation += 1;
    }

    // ---- bytes ----

    /// Whether writing `len` bytes fits the `fs_bytes` quota (a hole before the write
    /// counts by its logical size); notes `fs_bytes` and refuses (`nospc`) when not.
    pub(crate) fn write_allowed(&mut self, charge: Charge, len: u64) -> Result<(), Errc> {
        let cost = match charge {
            Charge::Free => return Ok(()),
            Charge::Plan(p) => p.charge(len),
            Charge::Flat => len,
        };
        if self.quota.fs_bytes_used.saturating_add(cost) <= self.quota.fs_bytes_max {
            return Ok(());
        }
        self.limit(LimitKind::FsBytes);
        Err(Errc::NoSpace)
    }

    /// Records that a write of `n` bytes happened: charges the quota, tracks the file's size.
    pub(crate) fn wrote(&mut self, charge: Charge, n: u64) {
        match charge {
            Charge::Free => {}
            Charge::Flat => self.add_bytes(n),
            Charge::Plan(plan) => {
                self.add_bytes(plan.charge(n));
                let end = plan.start.saturating_add(n);
                let size = self.sizes.entry(plan.file_id).or_insert(plan.size);
                if end > *size {
                    *size = end;
                }
            }
        }
    }

    fn add_bytes(&mut self, n: u64) {
        self.quota.fs_bytes_used = self.quota.fs_bytes_used.saturating_add(n);
    }

    /// Whether a file may be resized from `current` to `new` bytes: growth counts against
    /// `fs_bytes` (for files the guest may write); notes `fs_bytes` and refuses when not.
    pub(crate) fn resize_allowed(
        &mut self,
        writable: bool,
        current: u64,
        new: u64,
    ) -> Result<(), Errc> {
        let growth = new.saturating_sub(current);
        if growth == 0 || !writable {
            return Ok(());
        }
        self.write_allowed(Charge::Flat, growth)
    }

    /// Records a resize: charges the growth, tracks the size.
    pub(crate) fn resized(&mut self, file_id: Option<u64>, current: u64, new: u64) {
        self.add_bytes(new.saturating_sub(current));
        if let Some(id) = file_id {
            self.sizes.insert(id, new);
        }
    }

    /// The known size of a file the guest writes (`None`: not tracked yet).
    pub(crate) fn known_size(&self, file_id: u64) -> Option<u64> {
        self.sizes.get(&file_id).copied()
    }

    /// Tracks a file's size as the host reports it now.
    pub(crate) fn note_size(&mut self, file_id: u64, size: u64) {
        self.sizes.insert(file_id, size);
    }

    /// Starts tracking a file's size (first sight wins).
    pub(crate) fn track_size(&mut self, file_id: u64, size: u64) {
        self.sizes.entry(file_id).or_insert(size);
    }

    // ---- random, polls, streams ----

    /// A random request: at most [`MAX_RANDOM_BYTES`] (more is a trap, as WASI's
    /// implementations define it); charged per byte.
    pub(crate) fn random_len(&mut self, func: &str, len: u64) -> Result<u64, GateStop> {
        if len > MAX_RANDOM_BYTES {
            return Err(GateStop::BadHostCall(format!(
                "{func} of {len} bytes (at most {MAX_RANDOM_BYTES} per call)"
            )));
        }
        self.charge(Work::RandomBytes(len));
        Ok(len)
    }

    /// A poll over `n` subscriptions or pollables: at most [`MAX_POLL_SIZE`]; charged per
    /// subscription.
    pub(crate) fn poll_size(&mut self, n: u64) -> Result<(), Errc> {
        if n > MAX_POLL_SIZE {
            return Err(Errc::Invalid);
        }
        self.charge(Work::Subscriptions(n));
        Ok(())
    }

    /// A non-blocking stream write of `len` bytes (or zeroes) where `check-write` allows
    /// `permit`: writing more than permitted is a contract violation (a trap).
    pub(crate) fn stream_write(&mut self, len: u64, permit: u64) -> Result<(), GateStop> {
        if len > permit {
            return Err(GateStop::BadHostCall(format!(
                "a stream write of {len} bytes where `check-write` permits {permit}"
            )));
        }
        self.charge(Work::Bytes(len));
        Ok(())
    }

    /// A `blocking-write-and-flush` (or `-zeroes-`) of `len` bytes: at most
    /// [`MAX_BLOCKING_WRITE`] (a trap otherwise).
    pub(crate) fn blocking_write(&mut self, len: u64) -> Result<(), GateStop> {
        if len > MAX_BLOCKING_WRITE {
            return Err(GateStop::BadHostCall(format!(
                "a blocking write of {len} bytes (at most {MAX_BLOCKING_WRITE})"
            )));
        }
        self.charge(Work::Bytes(len));
        Ok(())
    }

    // ---- listings ----

    /// The sorted listing of the directory `dir` (entries other than `.` and `..`), built
    /// once per `key` and reused while the directory is unchanged (no change by the guest
    /// since, same change times on the host). `with_ids` also stats every entry for its
    /// host identity (preview 1 `d_ino`). Building reads at most
    /// [`MAX_LISTING_ENTRIES`] entries (more: `nomem`) and is charged per entry and stat.
    pub(crate) fn listing(
        &mut self,
        key: u64,
        dir: &cap_std::fs::Dir,
        with_ids: bool,
    ) -> Result<Arc<[ListEntry]>, Errc> {
        let stamp = self.stamp(dir)?;
        if let Some(l) = self.listings.get(&key)
            && l.stamp == stamp
            && (l.with_ids || !with_ids)
        {
            return Ok(l.entries.clone());
        }
        let entries: Arc<[ListEntry]> = self.build_listing(dir, with_ids)?.into();
        self.listings.insert(
            key,
            Listing {
                entries: entries.clone(),
                stamp,
                with_ids,
            },
        );
        Ok(entries)
    }

    /// Drops the listing kept for `key` (its descriptor was closed or renumbered).
    pub(crate) fn forget_listing(&mut self, key: u64) {
        self.listings.remove(&key);
    }

    /// What a listing of `dir` is valid for: the guest's changes so far and the
    /// directory's modification and change times on the host.
    fn stamp(&self, dir: &cap_std::fs::Dir) -> Result<(u64, i64, i64, i64, i64), Errc> {
        use cap_std::fs::MetadataExt;
        let m = dir.dir_metadata().map_err(|_| Errc::Other)?;
        Ok((
            self.generation,
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ))
    }

    fn build_listing(
        &mut self,
        dir: &cap_std::fs::Dir,
        with_ids: bool,
    ) -> Result<Vec<ListEntry>, Errc> {
        use cap_std::fs::MetadataExt as _;
        let iter = dir.entries().map_err(|_| Errc::Other)?;
        let mut out = Vec::new();
        for entry in iter {
            if out.len() >= MAX_LISTING_ENTRIES {
                self.charge(Work::Listed(out.len() as u64));
                return Err(Errc::NoMemory);
            }
            let entry = entry.map_err(|_| Errc::Other)?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| Errc::IllegalSequence)?;
            let (kind, host_id) = if with_ids {
                let m = entry.metadata().map_err(|_| Errc::Other)?;
                (
                    EntryKind::of(m.file_type()),
                    host_identity(m.dev(), m.ino()),
                )
            } else {
                let ft = entry.file_type().map_err(|_| Errc::Other)?;
                (EntryKind::of(ft), 0)
            };
            out.push(ListEntry {
                name,
                kind,
                host_id,
            });
        }
        self.charge(Work::Listed(out.len() as u64));
        if with_ids {
            self.charge(Work::Stats(out.len() as u64));
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    // ---- virtual metadata ----

    /// The synthetic inode for a host identity, assigned in order of first sight.
    pub(crate) fn inode(&mut self, host_id: u64) -> u64 {
        self.meta.inode(host_id)
    }

    /// The object with this host identity was removed (unlinked, its directory removed, or
    /// replaced by a rename): whatever the host gives its identity to next is a new object.
    pub(crate) fn removed(&mut self, host_id: u64) {
        self.meta.forget(host_id);
    }

    /// Virtual `(atime, mtime, ctime)` in ns for a host identity, and its synthetic inode.
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
