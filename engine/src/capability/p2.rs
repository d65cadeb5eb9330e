//! WASI 0.2 (components) through the gate.
//!
//! `GateView` implements every `Host` trait of the `wasi:cli/command` world. This adapter
//! translates between WASI 0.2 types and the gate core's ([`rules`](super::rules)); every
//! decision is a [`GateCore`] call, the same as for preview 1: paths, quotas (holes
//! included, also through file output streams and `set-size`), what may be opened,
//! directory listings, random caps, stream contracts, denials, fuel for host work. On top:
//! virtual clocks whose sleeps never really wait, seeded random, virtual file timestamps and
//! identities, no-op syncs, and an audit event for every call. Socket creation and name
//! lookups go through the gate and are refused (no policy grants network access), so no
//! socket resource ever exists.

use std::sync::Arc;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::cli::{
    environment, exit, stderr, stdin, stdout, terminal_input, terminal_output, terminal_stderr,
    terminal_stdin, terminal_stdout,
};
use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types as fst};
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::p2::bindings::sockets::{
    instance_network, ip_name_lookup, network, tcp, tcp_create_socket, udp, udp_create_socket,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, FsError, FsResult, Pollable, SocketError,
    SocketResult, StreamError, StreamResult,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_io::bindings::wasi::io::{error as ioerror, poll, streams};

use super::audit::{Dig, Digest, ERRNO_TRAP};
use super::clock::{RESOLUTION_NS, VirtualClock};
use super::rules::{Charge, EntryKind, Errc, ListEntry, Work, WritePlan, host_identity};
use super::{GateCore, GateStop};

/// Store data of a component run.
pub(crate) struct CompState {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) core: GateCore,
    pub(crate) limiter: super::limits::Limiter,
    pub(crate) fuel_budget: u64,
}

impl std::fmt::Debug for CompState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompState").finish_non_exhaustive()
    }
}

/// The gate's view of a component store for one host call.
pub(crate) struct GateView<'a> {
    ctx: &'a mut WasiCtx,
    table: &'a mut ResourceTable,
    core: &'a mut GateCore,
}

impl WasiView for GateView<'_> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.ctx,
            table: self.table,
        }
    }
}

/// `HasData` marker for [`GateView`].
pub(crate) struct G;

impl HasData for G {
    type Data<'a> = GateView<'a>;
}

fn view(s: &mut CompState) -> GateView<'_> {
    GateView {
        ctx: &mut s.ctx,
        table: &mut s.table,
        core: &mut s.core,
    }
}

/// Registers every interface of the command world, through the gate.
pub(crate) fn add_to_linker(
    l: &mut wasmtime::component::Linker<CompState>,
) -> wasmtime::Result<()> {
    ioerror::add_to_linker::<CompState, G>(l, view)?;
    poll::add_to_linker::<CompState, G>(l, view)?;
    streams::add_to_linker::<CompState, G>(l, view)?;
    wall_clock::add_to_linker::<CompState, G>(l, view)?;
    monotonic_clock::add_to_linker::<CompState, G>(l, view)?;
    preopens::add_to_linker::<CompState, G>(l, view)?;
    fst::add_to_linker::<CompState, G>(l, view)?;
    random::add_to_linker::<CompState, G>(l, view)?;
    insecure::add_to_linker::<CompState, G>(l, view)?;
    insecure_seed::add_to_linker::<CompState, G>(l, view)?;
    exit::add_to_linker::<CompState, G>(l, view)?;
    environment::add_to_linker::<CompState, G>(l, view)?;
    stdin::add_to_linker::<CompState, G>(l, view)?;
    stdout::add_to_linker::<CompState, G>(l, view)?;
    stderr::add_to_linker::<CompState, G>(l, view)?;
    terminal_input::add_to_linker::<CompState, G>(l, view)?;
    terminal_output::add_to_linker::<CompState, G>(l, view)?;
    terminal_stdin::add_to_linker::<CompState, G>(l, view)?;
    terminal_stdout::add_to_linker::<CompState, G>(l, view)?;
    terminal_stderr::add_to_linker::<CompState, G>(l, view)?;
    // Sockets: every way to get a socket (creating one, resolving a name) goes through the
    // gate, which records and refuses it. The methods of `tcp-socket` and `udp-socket`
    // (and their streams) stay wasmtime-wasi's: no such resource can ever exist, so none of
    // them can be called on anything (a forged handle fails when it is lifted).
    network::add_to_linker::<CompState, G>(l, &network::LinkOptions::default(), view)?;
    instance_network::add_to_linker::<CompState, G>(l, view)?;
    ip_name_lookup::add_to_linker::<CompState, G>(l, view)?;
    tcp_create_socket::add_to_linker::<CompState, G>(l, view)?;
    udp_create_socket::add_to_linker::<CompState, G>(l, view)?;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
    let s = <CompState as WasiSocketsView>::sockets;
    tcp::add_to_linker::<CompState, WasiSockets>(l, s)?;
    udp::add_to_linker::<CompState, WasiSockets>(l, s)?;
    Ok(())
}

// ---- shared helpers ----

const FS_ERR_BASE: u16 = 1000;
const STREAM_CLOSED: u16 = 2000;
const STREAM_FAILED: u16 = 2001;

fn fs_errno<T>(r: &FsResult<T>) -> u16 {
    match r {
        Ok(_) => 0,
        Err(e) => e
            .downcast_ref()
            .map_or(ERRNO_TRAP, |c: &fst::ErrorCode| FS_ERR_BASE + *c as u16),
    }
}

/// A WASI 0.2 filesystem error as the gate core sees it.
fn errc_of<T>(r: &FsResult<T>) -> Option<Errc> {
    let c: &fst::ErrorCode = r.as_ref().err()?.downcast_ref()?;
    Some(match c {
        fst::ErrorCode::NotPermitted => Errc::NotPermitted,
        fst::ErrorCode::Access => Errc::Access,
        fst::ErrorCode::ReadOnly => Errc::ReadOnly,
        fst::ErrorCode::NameTooLong => Errc::NameTooLong,
        fst::ErrorCode::InsufficientSpace => Errc::NoSpace,
        fst::ErrorCode::Quota => Errc::TooManyOpen,
        fst::ErrorCode::InsufficientMemory => Errc::NoMemory,
        fst::ErrorCode::Invalid => Errc::Invalid,
        fst::ErrorCode::IllegalByteSequence => Errc::IllegalSequence,
        _ => Errc::Other,
    })
}

/// The error code the guest gets for an error the gate core raised.
fn code(c: Errc) -> FsError {
    match c {
        Errc::NotPermitted => fst::ErrorCode::NotPermitted,
        Errc::Access => fst::ErrorCode::Access,
        Errc::NotCapable => fst::ErrorCode::NotPermitted,
        Errc::ReadOnly => fst::ErrorCode::ReadOnly,
        Errc::NameTooLong => fst::ErrorCode::NameTooLong,
        Errc::NoSpace => fst::ErrorCode::InsufficientSpace,
        Errc::TooManyOpen => fst::ErrorCode::Quota,
        Errc::NoMemory => fst::ErrorCode::InsufficientMemory,
        Errc::Invalid => fst::ErrorCode::Invalid,
        Errc::IllegalSequence => fst::ErrorCode::IllegalByteSequence,
        Errc::Other => fst::ErrorCode::Io,
    }
    .into()
}

/// The WASI 0.2 descriptor type of an entry kind.
fn descriptor_type(k: EntryKind) -> fst::DescriptorType {
    match k {
        EntryKind::File => fst::DescriptorType::RegularFile,
        EntryKind::Dir => fst::DescriptorType::Directory,
        EntryKind::Symlink => fst::DescriptorType::SymbolicLink,
        EntryKind::Fifo => fst::DescriptorType::Fifo,
        EntryKind::Socket => fst::DescriptorType::Socket,
        EntryKind::CharDevice => fst::DescriptorType::CharacterDevice,
        EntryKind::BlockDevice => fst::DescriptorType::BlockDevice,
        EntryKind::Unknown => fst::DescriptorType::Unknown,
    }
}

/// The entry kind of a WASI 0.2 descriptor type.
fn kind_of(t: fst::DescriptorType) -> EntryKind {
    match t {
        fst::DescriptorType::RegularFile => EntryKind::File,
        fst::DescriptorType::Directory => EntryKind::Dir,
        fst::DescriptorType::SymbolicLink => EntryKind::Symlink,
        fst::DescriptorType::Fifo => EntryKind::Fifo,
        fst::DescriptorType::Socket => EntryKind::Socket,
        fst::DescriptorType::CharacterDevice => EntryKind::CharDevice,
        fst::DescriptorType::BlockDevice => EntryKind::BlockDevice,
        fst::DescriptorType::Unknown => EntryKind::Unknown,
    }
}

fn stream_errno<T>(r: &StreamResult<T>) -> u16 {
    match r {
        Ok(_) => 0,
        Err(StreamError::Closed) => STREAM_CLOSED,
        Err(StreamError::LastOperationFailed(_)) => STREAM_FAILED,
        Err(StreamError::Trap(_)) => ERRNO_TRAP,
    }
}

fn none() -> Digest {
    Digest::default()
}

fn dig_str(parts: &[&str]) -> Digest {
    let mut d = Dig::new();
    for p in parts {
        d = d.bytes(p.as_bytes());
    }
    d.finish()
}

fn nospc() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ENOSPC)
}

impl GateView<'_> {
    fn fs_done<T>(
        &mut self,
        func: &'static str,
        args: Digest,
        r: FsResult<T>,
        res: impl FnOnce(&T) -> Digest,
    ) -> FsResult<T> {
        let errno = fs_errno(&r);
        if errno == ERRNO_TRAP {
            self.core.trapped();
        }
        let rd = r.as_ref().map_or(none(), res);
        match self.core.record(func, args, errno, rd, errc_of(&r)) {
            Some(stop) => Err(FsError::trap(wasmtime::Error::new(stop))),
            None => r,
        }
    }

    fn stream_done<T>(
        &mut self,
        func: &'static str,
        args: Digest,
        r: StreamResult<T>,
        res: impl FnOnce(&T) -> Digest,
    ) -> StreamResult<T> {
        let errno = stream_errno(&r);
        if errno == ERRNO_TRAP {
            self.core.trapped();
        }
        let rd = r.as_ref().map_or(none(), res);
        match self.core.record(func, args, errno, rd, None) {
            Some(stop) => Err(StreamError::Trap(wasmtime::Error::new(stop))),
            None => r,
        }
    }

    fn done<T>(
        &mut self,
        func: &'static str,
        args: Digest,
        r: wasmtime::Result<T>,
        res: impl FnOnce(&T) -> Digest,
    ) -> wasmtime::Result<T> {
        let errno = if r.is_ok() { 0 } else { ERRNO_TRAP };
        if r.is_err() {
            self.core.trapped();
        }
        let rd = r.as_ref().map_or(none(), res);
        match self.core.record(func, args, errno, rd, None) {
            Some(stop) => Err(wasmtime::Error::new(stop)),
            None => r,
        }
    }

    /// Whether the descriptor allows writing (files) or mutating (directories).
    async fn mutable(&mut self, fd: &Resource<fst::Descriptor>) -> bool {
        let fd = Resource::new_borrow(fd.rep());
        match fst::HostDescriptor::get_flags(&mut self.filesystem(), fd).await {
            Ok(f) => {
                f.intersects(fst::DescriptorFlags::WRITE | fst::DescriptorFlags::MUTATE_DIRECTORY)
            }
            Err(_) => false,
        }
    }

    /// A host identity for `fd` (the wasmtime metadata hash), used for synthetic inodes.
    async fn identity(&mut self, fd: &Resource<fst::Descriptor>) -> FsResult<u64> {
        let fd = Resource::new_borrow(fd.rep());
        fst::HostDescriptor::metadata_hash(&mut self.filesystem(), fd)
            .await
            .map(|h| h.lower)
    }

    async fn identity_at(
        &mut self,
        fd: &Resource<fst::Descriptor>,
        flags: fst::PathFlags,
        path: &str,
    ) -> FsResult<u64> {
        let fd = Resource::new_borrow(fd.rep());
        fst::HostDescriptor::metadata_hash_at(&mut self.filesystem(), fd, flags, path.to_string())
            .await
            .map(|h| h.lower)
    }

    fn virt_stat(&mut self, mut s: fst::DescriptorStat, host_id: u64) -> fst::DescriptorStat {
        if self.core.leak_host_metadata {
            return s;
        }
        let (_, (a, m, c)) = self.core.virt_times(host_id);
        let dt = |ns: u64| {
            Some(wall_clock::Datetime {
                seconds: ns / 1_000_000_000,
                nanoseconds: (ns % 1_000_000_000) as u32,
            })
        };
        s.data_access_timestamp = dt(a);
        s.data_modification_timestamp = dt(m);
        s.status_change_timestamp = dt(c);
        if s.type_ == fst::DescriptorType::Directory {
            s.size = 4096;
            s.link_count = 2;
        }
        s
    }

    fn new_time(&self, t: fst::NewTimestamp) -> Option<u64> {
        match t {
            fst::NewTimestamp::NoChange => None,
            fst::NewTimestamp::Now => Some(self.core.clock.wall_now()),
            fst::NewTimestamp::Timestamp(d) => Some(
                d.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(u64::from(d.nanoseconds)),
            ),
        }
    }

    /// The gate core's creation rule for `path` under `fd` (whether it exists is looked up
    /// only when the quota is used up).
    async fn create_check(
        &mut self,
        fd: &Resource<fst::Descriptor>,
        path: &str,
    ) -> Result<(), Errc> {
        if !self.core.files_exhausted() {
            return Ok(());
        }
        let writable = self.mutable(fd).await;
        let exists = writable
            && self
                .identity_at(fd, fst::PathFlags::empty(), path)
                .await
                .is_ok();
        self.core.create_allowed(writable, exists)
    }

    /// The gate core's path rule for a path argument.
    fn path(&mut self, path: &str) -> Result<(), Errc> {
        self.core.check_path(path.as_bytes())
    }

    /// How a write at `offset` through `fd` is charged: by where it lands in the file (its
    /// identity and size from the tracked sizes, else one `fstat`), holes included.
    async fn write_charge(&mut self, fd: &Resource<fst::Descriptor>, offset: u64) -> Charge {
        if !self.mutable(fd).await {
            return Charge::Free;
        }
        match self.write_plan(fd, offset) {
            Some(p) => Charge::Plan(p),
            None => Charge::Flat,
        }
    }

    /// Where a write at `offset` through `fd` lands. `None` for directories.
    fn write_plan(&mut self, fd: &Resource<fst::Descriptor>, offset: u64) -> Option<WritePlan> {
        use std::os::unix::fs::MetadataExt;
        let b: Resource<wasmtime_wasi::filesystem::Descriptor> = Resource::new_borrow(fd.rep());
        let wasmtime_wasi::filesystem::Descriptor::File(f) = self.table.get(&b).ok()? else {
            return None;
        };
        let meta = f.file.metadata().ok()?;
        let id = host_identity(meta.dev(), meta.ino());
        let size = self.core.known_size(id).unwrap_or(meta.len());
        Some(WritePlan {
            file_id: id,
            start: offset,
            size,
        })
    }

    /// The gate's own handle on the directory behind `fd`, for listings.
    fn host_dir(&mut self, fd: &Resource<fst::Descriptor>) -> FsResult<cap_std::fs::Dir> {
        let b: Resource<wasmtime_wasi::filesystem::Descriptor> = Resource::new_borrow(fd.rep());
        match self.table.get(&b)? {
            wasmtime_wasi::filesystem::Descriptor::Dir(d) => {
                let f = d.dir.try_clone().map_err(|_| code(Errc::Other))?;
                Ok(cap_std::fs::Dir::from_std_file(f))
            }
            wasmtime_wasi::filesystem::Descriptor::File(_) => {
                Err(fst::ErrorCode::NotDirectory.into())
            }
        }
    }
}

impl WasiView for CompState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

// ---- virtual time ----

/// A clock subscription on virtual time: ready at once, advancing the clock to its deadline.
struct VirtualDeadline {
    clock: Arc<VirtualClock>,
    deadline: u64,
}

#[async_trait::async_trait]
impl Pollable for VirtualDeadline {
    async fn ready(&mut self) {
        self.clock.sleep_until(self.deadline);
    }
}

fn subscribe_deadline(
    table: &mut ResourceTable,
    clock: Arc<VirtualClock>,
    deadline: u64,
) -> wasmtime::Result<Resource<DynPollable>> {
    let r = table.push(VirtualDeadline { clock, deadline })?;
    wasmtime_wasi::p2::subscribe(table, r)
}

impl wall_clock::Host for GateView<'_> {
    fn now(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        let ns = self.core.clock.wall_now();
        let r = Ok(wall_clock::Datetime {
            seconds: ns / 1_000_000_000,
            nanoseconds: (ns % 1_000_000_000) as u32,
        });
        self.done("wall-clock.now", none(), r, |d| {
            Dig::new().u64(d.seconds).u64(d.nanoseconds.into()).finish()
        })
    }

    fn resolution(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        let r = Ok(wall_clock::Datetime {
            seconds: 0,
            nanoseconds: RESOLUTION_NS as u32,
        });
        self.done("wall-clock.resolution", none(), r, |_| none())
    }
}

impl monotonic_clock::Host for GateView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        let r = Ok(self.core.clock.mono_now());
        self.done("monotonic-clock.now", none(), r, |v| {
            Dig::new().u64(*v).finish()
        })
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        self.done(
            "monotonic-clock.resolution",
            none(),
            Ok(RESOLUTION_NS),
            |_| none(),
        )
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let r = subscribe_deadline(self.table, self.core.clock.clone(), when);
        self.done(
            "monotonic-clock.subscribe-instant",
            Dig::new().u64(when).finish(),
            r,
            |_| none(),
        )
    }

    fn subscribe_duration(
        &mut self,
        d: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let deadline = self.core.clock.mono_peek().saturating_add(d);
        let r = subscribe_deadline(self.table, self.core.clock.clone(), deadline);
        self.done(
            "monotonic-clock.subscribe-duration",
            Dig::new().u64(d).finish(),
            r,
            |_| none(),
        )
    }
}

// ---- random ----

impl random::Host for GateView<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let r = match self.core.random_len("get-random-bytes", len) {
            Ok(_) => random::Host::get_random_bytes(self.ctx.random(), len),
            Err(stop) => Err(wasmtime::Error::new(stop)),
        };
        self.done(
            "random.get-random-bytes",
            Dig::new().u64(len).finish(),
            r,
            |b| Dig::new().bytes(b).finish(),
        )
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.core.charge(Work::RandomBytes(8));
        let r = random::Host::get_random_u64(self.ctx.random());
        self.done("random.get-random-u64", none(), r, |v| {
            Dig::new().u64(*v).finish()
        })
    }
}

impl insecure::Host for GateView<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let r = match self.core.random_len("get-insecure-random-bytes", len) {
            Ok(_) => insecure::Host::get_insecure_random_bytes(self.ctx.random(), len),
            Err(stop) => Err(wasmtime::Error::new(stop)),
        };
        self.done(
            "insecure.get-insecure-random-bytes",
            Dig::new().u64(len).finish(),
            r,
            |b| Dig::new().bytes(b).finish(),
        )
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        let r = insecure::Host::get_insecure_random_u64(self.ctx.random());
        self.done("insecure.get-insecure-random-u64", none(), r, |v| {
            Dig::new().u64(*v).finish()
        })
    }
}

impl insecure_seed::Host for GateView<'_> {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        let r = insecure_seed::Host::insecure_seed(self.ctx.random());
        self.done("insecure-seed.insecure-seed", none(), r, |(a, b)| {
            Dig::new().u64(*a).u64(*b).finish()
        })
    }
}

// ---- cli ----

impl environment::Host for GateView<'_> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        let r = environment::Host::get_environment(&mut self.cli());
        if let Ok(v) = &r {
            let n: usize = v.iter().map(|(k, x)| k.len() + x.len() + 16).sum();
            self.core.charge(Work::Bytes(n as u64));
        }
        self.done("environment.get-environment", none(), r, |v| {
            let mut d = Dig::new();
            for (k, x) in v {
                d = d.bytes(k.as_bytes()).bytes(x.as_bytes());
            }
            d.finish()
        })
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        let r = environment::Host::get_arguments(&mut self.cli());
        if let Ok(v) = &r {
            let n: usize = v.iter().map(|a| a.len() + 8).sum();
            self.core.charge(Work::Bytes(n as u64));
        }
        self.done("environment.get-arguments", none(), r, |v| {
            let mut d = Dig::new();
            for a in v {
                d = d.bytes(a.as_bytes());
            }
            d.finish()
        })
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        let r = environment::Host::initial_cwd(&mut self.cli());
        self.done("environment.initial-cwd", none(), r, |v| {
            dig_str(&[v.as_deref().unwrap_or("")])
        })
    }
}

impl exit::Host for GateView<'_> {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        self.core.record(
            "exit.exit",
            Dig::new().u64(u64::from(status.is_err())).finish(),
            ERRNO_TRAP,
            none(),
            None,
        );
        exit::Host::exit(&mut self.cli(), status)
    }

    fn exit_with_code(&mut self, code: u8) -> wasmtime::Result<()> {
        self.core.record(
            "exit.exit-with-code",
            Dig::new().u64(code.into()).finish(),
            ERRNO_TRAP,
            none(),
            None,
        );
        exit::Host::exit_with_code(&mut self.cli(), code)
    }
}

impl stdin::Host for GateView<'_> {
    fn get_stdin(&mut self) -> wasmtime::Result<Resource<DynInputStream>> {
        let r = stdin::Host::get_stdin(&mut self.cli());
        self.done("stdin.get-stdin", none(), r, |_| none())
    }
}

impl stdout::Host for GateView<'_> {
    fn get_stdout(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        let r = stdout::Host::get_stdout(&mut self.cli());
        self.done("stdout.get-stdout", none(), r, |_| none())
    }
}

impl stderr::Host for GateView<'_> {
    fn get_stderr(&mut self) -> wasmtime::Result<Resource<DynOutputStream>> {
        let r = stderr::Host::get_stderr(&mut self.cli());
        self.done("stderr.get-stderr", none(), r, |_| none())
    }
}

impl terminal_input::Host for GateView<'_> {}
impl terminal_input::HostTerminalInput for GateView<'_> {
    fn drop(&mut self, r: Resource<terminal_input::TerminalInput>) -> wasmtime::Result<()> {
        terminal_input::HostTerminalInput::drop(&mut self.cli(), r)
    }
}
impl terminal_output::Host for GateView<'_> {}
impl terminal_output::HostTerminalOutput for GateView<'_> {
    fn drop(&mut self, r: Resource<terminal_output::TerminalOutput>) -> wasmtime::Result<()> {
        terminal_output::HostTerminalOutput::drop(&mut self.cli(), r)
    }
}
impl terminal_stdin::Host for GateView<'_> {
    fn get_terminal_stdin(
        &mut self,
    ) -> wasmtime::Result<Option<Resource<terminal_input::TerminalInput>>> {
        let r = terminal_stdin::Host::get_terminal_stdin(&mut self.cli());
        self.done("terminal-stdin.get-terminal-stdin", none(), r, |v| {
            Dig::new().u64(u64::from(v.is_some())).finish()
        })
    }
}
impl terminal_stdout::Host for GateView<'_> {
    fn get_terminal_stdout(
        &mut self,
    ) -> wasmtime::Result<Option<Resource<terminal_output::TerminalOutput>>> {
        let r = terminal_stdout::Host::get_terminal_stdout(&mut self.cli());
        self.done("terminal-stdout.get-terminal-stdout", none(), r, |v| {
            Dig::new().u64(u64::from(v.is_some())).finish()
        })
    }
}
impl terminal_stderr::Host for GateView<'_> {
    fn get_terminal_stderr(
        &mut self,
    ) -> wasmtime::Result<Option<Resource<terminal_output::TerminalOutput>>> {
        let r = terminal_stderr::Host::get_terminal_stderr(&mut self.cli());
        self.done("terminal-stderr.get-terminal-stderr", none(), r, |v| {
            Dig::new().u64(u64::from(v.is_some())).finish()
        })
    }
}

// ---- io ----

impl ioerror::Host for GateView<'_> {}

impl ioerror::HostError for GateView<'_> {
    fn drop(&mut self, err: Resource<streams::Error>) -> wasmtime::Result<()> {
        ioerror::HostError::drop(self.table, err)
    }

    fn to_debug_string(&mut self, err: Resource<streams::Error>) -> wasmtime::Result<String> {
        // Host error text can carry host details; the guest gets a fixed string.
        let _ = ioerror::HostError::to_debug_string(self.table, err)?;
        self.done(
            "error.to-debug-string",
            none(),
            Ok("I/O error".to_string()),
            |_| none(),
        )
    }
}

impl poll::Host for GateView<'_> {
    async fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let n = pollables.len() as u64;
        let r = match self.core.poll_size(n) {
            Ok(()) => poll::Host::poll(self.table, pollables).await,
            Err(_) => Err(wasmtime::Error::new(GateStop::BadHostCall(format!(
                "a poll of {n} pollables (at most {})",
                super::MAX_POLL_SIZE
            )))),
        };
        self.done("poll.poll", Dig::new().u64(n).finish(), r, |v| {
            let mut d = Dig::new();
            for i in v {
                d = d.u64((*i).into());
            }
            d.finish()
        })
    }
}

impl poll::HostPollable for GateView<'_> {
    async fn block(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<()> {
        let r = poll::HostPollable::block(self.table, p).await;
        self.done("pollable.block", none(), r, |_| none())
    }

    async fn ready(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<bool> {
        let r = poll::HostPollable::ready(self.table, p).await;
        self.done("pollable.ready", none(), r, |b| {
            Dig::new().u64(u64::from(*b)).finish()
        })
    }

    fn drop(&mut self, p: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, p)
    }
}

impl streams::Host for GateView<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl GateView<'_> {
    /// How a write into an output stream is charged: file streams by where the write lands
    /// (a hole counts too), other streams (stdout, stderr) not at all.
    fn stream_charge(&self, s: &Resource<DynOutputStream>) -> Charge {
        if !self.core.file_streams.contains(&s.rep()) {
            return Charge::Free;
        }
        let Some(&(id, pos, append)) = self.core.stream_pos.get(&s.rep()) else {
            return Charge::Flat;
        };
        let Some(size) = self.core.known_size(id) else {
            return Charge::Flat;
        };
        Charge::Plan(WritePlan {
            file_id: id,
            start: if append { size } else { pos },
            size,
        })
    }

    /// The gate core's rules for `len` bytes into an output stream: the stream contract
    /// (a non-blocking write within what `check-write` permits, a blocking one within
    /// 4096 bytes) and the byte quota. `Err` is the call's result.
    fn stream_rules(
        &mut self,
        s: &Resource<DynOutputStream>,
        len: u64,
        blocking: bool,
    ) -> Result<Charge, StreamError> {
        let contract = if blocking {
            self.core.blocking_write(len)
        } else {
            let permit = streams::HostOutputStream::check_write(self.table, borrow_out(s))?;
            self.core.stream_write(len, permit)
        };
        contract.map_err(|stop| StreamError::Trap(wasmtime::Error::new(stop)))?;
        let charge = self.stream_charge(s);
        self.core
            .write_allowed(charge, len)
            .map_err(|_| StreamError::LastOperationFailed(nospc().into()))?;
        Ok(charge)
    }

    /// Records `n` bytes written into an output stream.
    fn stream_wrote(&mut self, s: &Resource<DynOutputStream>, charge: Charge, n: u64) {
        self.core.wrote(charge, n);
        if let (Charge::Plan(p), Some(e)) = (charge, self.core.stream_pos.get_mut(&s.rep())) {
            e.1 = p.start.saturating_add(n);
        }
    }
}

fn borrow_out(s: &Resource<DynOutputStream>) -> Resource<DynOutputStream> {
    Resource::new_borrow(s.rep())
}

impl streams::HostOutputStream for GateView<'_> {
    async fn drop(&mut self, s: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        self.core.file_streams.remove(&s.rep());
        self.core.stream_pos.remove(&s.rep());
        streams::HostOutputStream::drop(self.table, s).await
    }

    fn check_write(&mut self, s: Resource<DynOutputStream>) -> StreamResult<u64> {
        let r = streams::HostOutputStream::check_write(self.table, s);
        self.stream_done("output-stream.check-write", none(), r, |v| {
            Dig::new().u64(*v).finish()
        })
    }

    fn write(&mut self, s: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        const F: &str = "output-stream.write";
        let args = Dig::new().u64(s.rep().into()).bytes(&bytes).finish();
        let len = bytes.len() as u64;
        let charge = match self.stream_rules(&s, len, false) {
            Ok(c) => c,
            Err(e) => return self.stream_done(F, args, Err(e), |_| none()),
        };
        let b = borrow_out(&s);
        let r = streams::HostOutputStream::write(self.table, s, bytes);
        if r.is_ok() {
            self.stream_wrote(&b, charge, len);
        }
        self.stream_done(F, args, r, |_| none())
    }

    fn subscribe(
        &mut self,
        s: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let r = streams::HostOutputStream::subscribe(self.table, s);
        self.done("output-stream.subscribe", none(), r, |_| none())
    }

    async fn blocking_write_and_flush(
        &mut self,
        s: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        const F: &str = "output-stream.blocking-write-and-flush";
        let args = Dig::new().u64(s.rep().into()).bytes(&bytes).finish();
        let len = bytes.len() as u64;
        let charge = match self.stream_rules(&s, len, true) {
            Ok(c) => c,
            Err(e) => return self.stream_done(F, args, Err(e), |_| none()),
        };
        let b = borrow_out(&s);
        let r = streams::HostOutputStream::blocking_write_and_flush(self.table, s, bytes).await;
        if r.is_ok() {
            self.stream_wrote(&b, charge, len);
        }
        self.stream_done(F, args, r, |_| none())
    }

    async fn blocking_write_zeroes_and_flush(
        &mut self,
        s: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        const F: &str = "output-stream.blocking-write-zeroes-and-flush";
        let args = Dig::new().u64(s.rep().into()).u64(len).finish();
        let charge = match self.stream_rules(&s, len, true) {
            Ok(c) => c,
            Err(e) => return self.stream_done(F, args, Err(e), |_| none()),
        };
        let b = borrow_out(&s);
        let r =
            streams::HostOutputStream::blocking_write_zeroes_and_flush(self.table, s, len).await;
        if r.is_ok() {
            self.stream_wrote(&b, charge, len);
        }
        self.stream_done(F, args, r, |_| none())
    }

    fn write_zeroes(&mut self, s: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        const F: &str = "output-stream.write-zeroes";
        let args = Dig::new().u64(s.rep().into()).u64(len).finish();
        let charge = match self.stream_rules(&s, len, false) {
            Ok(c) => c,
            Err(e) => return self.stream_done(F, args, Err(e), |_| none()),
        };
        let b = borrow_out(&s);
        let r = streams::HostOutputStream::write_zeroes(self.table, s, len);
        if r.is_ok() {
            self.stream_wrote(&b, charge, len);
        }
        self.stream_done(F, args, r, |_| none())
    }

    fn flush(&mut self, s: Resource<DynOutputStream>) -> StreamResult<()> {
        let r = streams::HostOutputStream::flush(self.table, s);
        self.stream_done("output-stream.flush", none(), r, |_| none())
    }

    async fn blocking_flush(&mut self, s: Resource<DynOutputStream>) -> StreamResult<()> {
        let r = streams::HostOutputStream::blocking_flush(self.table, s).await;
        self.stream_done("output-stream.blocking-flush", none(), r, |_| none())
    }

    fn splice(
        &mut self,
        dest: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        const F: &str = "output-stream.splice";
        let args = Dig::new()
            .u64(dest.rep().into())
            .u64(src.rep().into())
            .u64(len)
            .finish();
        // wasmtime-wasi's splice moves at most what `check-write` permits.
        let charge = self.stream_charge(&dest);
        if let Err(_e) = self.core.write_allowed(charge, len.min(MAX_STREAM_CHUNK)) {
            return self.stream_done(
                F,
                args,
                Err(StreamError::LastOperationFailed(nospc().into())),
                |_| none(),
            );
        }
        let b = borrow_out(&dest);
        let r = streams::HostOutputStream::splice(self.table, dest, src, len);
        if let Ok(n) = &r {
            self.core.charge(Work::Bytes(*n));
            self.stream_wrote(&b, charge, *n);
        }
        self.stream_done(F, args, r, |n| Dig::new().u64(*n).finish())
    }

    async fn blocking_splice(
        &mut self,
        dest: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        const F: &str = "output-stream.blocking-splice";
        let args = Dig::new()
            .u64(dest.rep().into())
            .u64(src.rep().into())
            .u64(len)
            .finish();
        let charge = self.stream_charge(&dest);
        if let Err(_e) = self.core.write_allowed(charge, len.min(MAX_STREAM_CHUNK)) {
            return self.stream_done(
                F,
                args,
                Err(StreamError::LastOperationFailed(nospc().into())),
                |_| none(),
            );
        }
        let b = borrow_out(&dest);
        let r = streams::HostOutputStream::blocking_splice(self.table, dest, src, len).await;
        if let Ok(n) = &r {
            self.core.charge(Work::Bytes(*n));
            self.stream_wrote(&b, charge, *n);
        }
        self.stream_done(F, args, r, |n| Dig::new().u64(*n).finish())
    }
}

/// The most bytes one splice moves (what any stream's `check-write` permits at most).
const MAX_STREAM_CHUNK: u64 = 64 * 1024;

impl streams::HostInputStream for GateView<'_> {
    async fn drop(&mut self, s: Resource<DynInputStream>) -> wasmtime::Result<()> {
        streams::HostInputStream::drop(self.table, s).await
    }

    fn read(&mut self, s: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        let args = Dig::new().u64(s.rep().into()).u64(len).finish();
        let r = streams::HostInputStream::read(self.table, s, len);
        if let Ok(b) = &r {
            self.core.charge(Work::Bytes(b.len() as u64));
        }
        self.stream_done("input-stream.read", args, r, |b| {
            Dig::new().bytes(b).finish()
        })
    }

    async fn blocking_read(
        &mut self,
        s: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        let args = Dig::new().u64(s.rep().into()).u64(len).finish();
        let r = streams::HostInputStream::blocking_read(self.table, s, len).await;
        if let Ok(b) = &r {
            self.core.charge(Work::Bytes(b.len() as u64));
        }
        self.stream_done("input-stream.blocking-read", args, r, |b| {
            Dig::new().bytes(b).finish()
        })
    }

    fn skip(&mut self, s: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        let args = Dig::new().u64(s.rep().into()).u64(len).finish();
        let r = streams::HostInputStream::skip(self.table, s, len);
        if let Ok(n) = &r {
            self.core.charge(Work::Bytes(*n));
        }
        self.stream_done("input-stream.skip", args, r, |n| {
            Dig::new().u64(*n).finish()
        })
    }

    async fn blocking_skip(&mut self, s: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        let args = Dig::new().u64(s.rep().into()).u64(len).finish();
        let r = streams::HostInputStream::blocking_skip(self.table, s, len).await;
        if let Ok(n) = &r {
            self.core.charge(Work::Bytes(*n));
        }
        self.stream_done("input-stream.blocking-skip", args, r, |n| {
            Dig::new().u64(*n).finish()
        })
    }

    fn subscribe(
        &mut self,
        s: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let r = streams::HostInputStream::subscribe(self.table, s);
        self.done("input-stream.subscribe", none(), r, |_| none())
    }
}

// ---- filesystem ----

impl preopens::Host for GateView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<fst::Descriptor>, String)>> {
        let r = preopens::Host::get_directories(&mut self.filesystem());
        self.done("preopens.get-directories", none(), r, |v| {
            let mut d = Dig::new();
            for (_, p) in v {
                d = d.bytes(p.as_bytes());
            }
            d.finish()
        })
    }
}

impl fst::Host for GateView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<fst::ErrorCode> {
        fst::Host::convert_error_code(&mut self.filesystem(), err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<fst::ErrorCode>> {
        let r = fst::Host::filesystem_error_code(&mut self.filesystem(), err);
        self.done("types.filesystem-error-code", none(), r, |c| {
            Dig::new().u64(c.map_or(0, |c| c as u64 + 1)).finish()
        })
    }
}

fn fd_borrow(fd: &Resource<fst::Descriptor>) -> Resource<fst::Descriptor> {
    Resource::new_borrow(fd.rep())
}

fn stat_digest(s: &fst::DescriptorStat) -> Digest {
    let t = |d: &Option<wall_clock::Datetime>| {
        d.as_ref().map_or(0, |d| {
            d.seconds
                .wrapping_mul(1_000_000_000)
                .wrapping_add(d.nanoseconds.into())
        })
    };
    Dig::new()
        .u64(s.type_ as u64)
        .u64(s.link_count)
        .u64(s.size)
        .u64(t(&s.data_access_timestamp))
        .u64(t(&s.data_modification_timestamp))
        .u64(t(&s.status_change_timestamp))
        .finish()
}

impl fst::HostDescriptor for GateView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<fst::Descriptor>,
        offset: u64,
        len: u64,
        advice: fst::Advice,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .u64(offset)
            .u64(len)
            .u64(advice as u64)
            .finish();
        let r = fst::HostDescriptor::advise(&mut self.filesystem(), fd, offset, len, advice).await;
        self.fs_done("descriptor.advise", args, r, |_| none())
    }

    async fn sync_data(&mut self, fd: Resource<fst::Descriptor>) -> FsResult<()> {
        // Validated no-op: the host never fsyncs for a guest.
        let args = Dig::new().u64(fd.rep().into()).finish();
        let r = fst::HostDescriptor::get_type(&mut self.filesystem(), fd)
            .await
            .map(|_| ());
        self.fs_done("descriptor.sync-data", args, r, |_| none())
    }

    async fn get_flags(&mut self, fd: Resource<fst::Descriptor>) -> FsResult<fst::DescriptorFlags> {
        let args = Dig::new().u64(fd.rep().into()).finish();
        let r = fst::HostDescriptor::get_flags(&mut self.filesystem(), fd).await;
        self.fs_done("descriptor.get-flags", args, r, |f| {
            Dig::new().bytes(format!("{f:?}").as_bytes()).finish()
        })
    }

    async fn get_type(&mut self, fd: Resource<fst::Descriptor>) -> FsResult<fst::DescriptorType> {
        let args = Dig::new().u64(fd.rep().into()).finish();
        let r = fst::HostDescriptor::get_type(&mut self.filesystem(), fd).await;
        self.fs_done("descriptor.get-type", args, r, |t| {
            Dig::new().u64(*t as u64).finish()
        })
    }

    async fn set_size(&mut self, fd: Resource<fst::Descriptor>, size: u64) -> FsResult<()> {
        const F: &str = "descriptor.set-size";
        let args = Dig::new().u64(fd.rep().into()).u64(size).finish();
        let current = match fst::HostDescriptor::stat(&mut self.filesystem(), fd_borrow(&fd)).await
        {
            Ok(s) => s.size,
            Err(e) => return self.fs_done(F, args, Err(e), |_| none()),
        };
        let writable = self.mutable(&fd).await;
        if let Err(e) = self.core.resize_allowed(writable, current, size) {
            return self.fs_done(F, args, Err(code(e)), |_| none());
        }
        let id = self.write_plan(&fd, 0).map(|p| p.file_id);
        let r = fst::HostDescriptor::set_size(&mut self.filesystem(), fd, size).await;
        if r.is_ok() {
            self.core.resized(id, current, size);
        }
        self.fs_done(F, args, r, |_| none())
    }

    async fn set_times(
        &mut self,
        fd: Resource<fst::Descriptor>,
        atim: fst::NewTimestamp,
        mtim: fst::NewTimestamp,
    ) -> FsResult<()> {
        let (a, m) = (self.new_time(atim), self.new_time(mtim));
        let args = Dig::new()
            .u64(fd.rep().into())
            .u64(a.unwrap_or(u64::MAX))
            .u64(m.unwrap_or(u64::MAX))
            .finish();
        let r = if !self.mutable(&fd).await {
            Err(fst::ErrorCode::NotPermitted.into())
        } else {
            match self.identity(&fd).await {
                Ok(id) => {
                    self.core.set_virt_times(id, a, m);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        self.fs_done("descriptor.set-times", args, r, |_| none())
    }

    async fn read(
        &mut self,
        fd: Resource<fst::Descriptor>,
        len: u64,
        offset: u64,
    ) -> FsResult<(Vec<u8>, bool)> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .u64(len)
            .u64(offset)
            .finish();
        let r = fst::HostDescriptor::read(&mut self.filesystem(), fd, len, offset).await;
        if let Ok((b, _)) = &r {
            self.core.charge(Work::Bytes(b.len() as u64));
        }
        self.fs_done("descriptor.read", args, r, |(b, eof)| {
            Dig::new().bytes(b).u64(u64::from(*eof)).finish()
        })
    }

    async fn write(
        &mut self,
        fd: Resource<fst::Descriptor>,
        buf: Vec<u8>,
        offset: u64,
    ) -> FsResult<u64> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(&buf)
            .u64(offset)
            .finish();
        // Charged by where the write lands: a write at an offset past the end pays for the
        // hole it leaves (a sparse file counts by its logical size).
        let len = buf.len() as u64;
        self.core.charge(Work::Bytes(len));
        let charge = self.write_charge(&fd, offset).await;
        if let Err(e) = self.core.write_allowed(charge, len) {
            return self.fs_done("descriptor.write", args, Err(code(e)), |_| none());
        }
        let r = fst::HostDescriptor::write(&mut self.filesystem(), fd, buf, offset).await;
        if let Ok(n) = &r {
            self.core.wrote(charge, *n);
        }
        self.fs_done("descriptor.write", args, r, |n| Dig::new().u64(*n).finish())
    }

    async fn read_directory(
        &mut self,
        fd: Resource<fst::Descriptor>,
    ) -> FsResult<Resource<fst::DirectoryEntryStream>> {
        // The gate core's listing (sorted, built once per descriptor and reused while the
        // directory is unchanged), served by the gate's own stream resource.
        let args = Dig::new().u64(fd.rep().into()).finish();
        let r = match self.host_dir(&fd) {
            Ok(dir) => match self.core.listing(u64::from(fd.rep()), &dir, false) {
                Ok(entries) => self
                    .table
                    .push(DirStream { entries, next: 0 })
                    .map(|r| Resource::new_own(r.rep()))
                    .map_err(FsError::trap),
                Err(e) => Err(code(e)),
            },
            Err(e) => Err(e),
        };
        self.fs_done("descriptor.read-directory", args, r, |_| none())
    }

    async fn sync(&mut self, fd: Resource<fst::Descriptor>) -> FsResult<()> {
        let args = Dig::new().u64(fd.rep().into()).finish();
        let r = fst::HostDescriptor::get_type(&mut self.filesystem(), fd)
            .await
            .map(|_| ());
        self.fs_done("descriptor.sync", args, r, |_| none())
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(path.as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.create-directory-at", args, Err(code(e)), |_| {
                none()
            });
        }
        if let Err(e) = self.create_check(&fd, &path).await {
            return self.fs_done("descriptor.create-directory-at", args, Err(code(e)), |_| {
                none()
            });
        }
        let r = fst::HostDescriptor::create_directory_at(&mut self.filesystem(), fd, path).await;
        if r.is_ok() {
            self.core.created();
        }
        self.fs_done("descriptor.create-directory-at", args, r, |_| none())
    }

    async fn stat(&mut self, fd: Resource<fst::Descriptor>) -> FsResult<fst::DescriptorStat> {
        let args = Dig::new().u64(fd.rep().into()).finish();
        let id = self.identity(&fd).await;
        let r = fst::HostDescriptor::stat(&mut self.filesystem(), fd).await;
        let r = match (r, id) {
            (Ok(s), Ok(id)) => Ok(self.virt_stat(s, id)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self.fs_done("descriptor.stat", args, r, stat_digest)
    }

    async fn stat_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        flags: fst::PathFlags,
        path: String,
    ) -> FsResult<fst::DescriptorStat> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(format!("{flags:?}").as_bytes())
            .bytes(path.as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.stat-at", args, Err(code(e)), |_| none());
        }
        let id = self.identity_at(&fd, flags, &path).await;
        let r = fst::HostDescriptor::stat_at(&mut self.filesystem(), fd, flags, path).await;
        let r = match (r, id) {
            (Ok(s), Ok(id)) => Ok(self.virt_stat(s, id)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self.fs_done("descriptor.stat-at", args, r, stat_digest)
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        flags: fst::PathFlags,
        path: String,
        atim: fst::NewTimestamp,
        mtim: fst::NewTimestamp,
    ) -> FsResult<()> {
        let (a, m) = (self.new_time(atim), self.new_time(mtim));
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(format!("{flags:?}").as_bytes())
            .bytes(path.as_bytes())
            .u64(a.unwrap_or(u64::MAX))
            .u64(m.unwrap_or(u64::MAX))
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.set-times-at", args, Err(code(e)), |_| none());
        }
        let r = if !self.mutable(&fd).await {
            Err(fst::ErrorCode::NotPermitted.into())
        } else {
            match self.identity_at(&fd, flags, &path).await {
                Ok(id) => {
                    self.core.set_virt_times(id, a, m);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        self.fs_done("descriptor.set-times-at", args, r, |_| none())
    }

    async fn link_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        old_flags: fst::PathFlags,
        old_path: String,
        new_fd: Resource<fst::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(format!("{old_flags:?}").as_bytes())
            .bytes(old_path.as_bytes())
            .u64(new_fd.rep().into())
            .bytes(new_path.as_bytes())
            .finish();
        if let Err(e) = self.path(&old_path) {
            return self.fs_done("descriptor.link-at", args, Err(code(e)), |_| none());
        }
        if let Err(e) = self.path(&new_path) {
            return self.fs_done("descriptor.link-at", args, Err(code(e)), |_| none());
        }
        if let Err(e) = self.create_check(&new_fd, &new_path).await {
            return self.fs_done("descriptor.link-at", args, Err(code(e)), |_| none());
        }
        let r = fst::HostDescriptor::link_at(
            &mut self.filesystem(),
            fd,
            old_flags,
            old_path,
            new_fd,
            new_path,
        )
        .await;
        if r.is_ok() {
            self.core.created();
        }
        self.fs_done("descriptor.link-at", args, r, |_| none())
    }

    async fn open_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        flags: fst::PathFlags,
        path: String,
        oflags: fst::OpenFlags,
        dflags: fst::DescriptorFlags,
    ) -> FsResult<Resource<fst::Descriptor>> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(format!("{flags:?}").as_bytes())
            .bytes(path.as_bytes())
            .bytes(format!("{oflags:?}").as_bytes())
            .bytes(format!("{dflags:?}").as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.open-at", args, Err(code(e)), |_| none());
        }
        if let Err(e) = self.core.open_allowed() {
            return self.fs_done("descriptor.open-at", args, Err(code(e)), |_| none());
        }
        // What the path names now: a FIFO, socket or device is refused before the host
        // opens it (opening one can block without bound).
        let target = fst::HostDescriptor::stat_at(
            &mut self.filesystem(),
            fd_borrow(&fd),
            flags,
            path.clone(),
        )
        .await
        .ok()
        .map(|s| kind_of(s.type_));
        if let Err(e) = self.core.open_target(target) {
            return self.fs_done("descriptor.open-at", args, Err(code(e)), |_| none());
        }
        let created = oflags.contains(fst::OpenFlags::CREATE) && target.is_none();
        if created && let Err(e) = self.create_check(&fd, &path).await {
            return self.fs_done("descriptor.open-at", args, Err(code(e)), |_| none());
        }
        let r =
            fst::HostDescriptor::open_at(&mut self.filesystem(), fd, flags, path, oflags, dflags)
                .await;
        if let Ok(new) = &r {
            if created {
                self.core.created();
            }
            self.core.forget_listing(u64::from(new.rep()));
            self.core.p2_open.insert(new.rep());
            self.core.opened();
        }
        self.fs_done("descriptor.open-at", args, r, |_| none())
    }

    fn drop(&mut self, fd: Resource<fst::Descriptor>) -> wasmtime::Result<()> {
        if self.core.p2_open.remove(&fd.rep()) {
            self.core.closed();
        }
        self.core.forget_listing(u64::from(fd.rep()));
        fst::HostDescriptor::drop(&mut self.filesystem(), fd)
    }

    async fn readlink_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        path: String,
    ) -> FsResult<String> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(path.as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.readlink-at", args, Err(code(e)), |_| none());
        }
        let r = fst::HostDescriptor::readlink_at(&mut self.filesystem(), fd, path).await;
        self.fs_done("descriptor.readlink-at", args, r, |s| dig_str(&[s]))
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(path.as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.remove-directory-at", args, Err(code(e)), |_| {
                none()
            });
        }
        let removed = self
            .identity_at(&fd, fst::PathFlags::empty(), &path)
            .await
            .ok();
        let r = fst::HostDescriptor::remove_directory_at(&mut self.filesystem(), fd, path).await;
        if r.is_ok() {
            self.core.changed();
            if let Some(id) = removed {
                self.core.removed(id);
            }
        }
        self.fs_done("descriptor.remove-directory-at", args, r, |_| none())
    }

    async fn rename_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        old_path: String,
        new_fd: Resource<fst::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(old_path.as_bytes())
            .u64(new_fd.rep().into())
            .bytes(new_path.as_bytes())
            .finish();
        if let Err(e) = self.path(&old_path) {
            return self.fs_done("descriptor.rename-at", args, Err(code(e)), |_| none());
        }
        if let Err(e) = self.path(&new_path) {
            return self.fs_done("descriptor.rename-at", args, Err(code(e)), |_| none());
        }
        // A rename onto an existing name removes what the name held (unless both names are
        // links to one object, when nothing changes).
        let flags = fst::PathFlags::empty();
        let replaced = match self.identity_at(&new_fd, flags, &new_path).await {
            Ok(dest) if self.identity_at(&fd, flags, &old_path).await.ok() != Some(dest) => {
                Some(dest)
            }
            _ => None,
        };
        let r =
            fst::HostDescriptor::rename_at(&mut self.filesystem(), fd, old_path, new_fd, new_path)
                .await;
        if r.is_ok() {
            self.core.changed();
            if let Some(id) = replaced {
                self.core.removed(id);
            }
        }
        self.fs_done("descriptor.rename-at", args, r, |_| none())
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        src: String,
        dest: String,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(src.as_bytes())
            .bytes(dest.as_bytes())
            .finish();
        if let Err(e) = self.path(&src) {
            return self.fs_done("descriptor.symlink-at", args, Err(code(e)), |_| none());
        }
        if let Err(e) = self.path(&dest) {
            return self.fs_done("descriptor.symlink-at", args, Err(code(e)), |_| none());
        }
        if let Err(e) = self.create_check(&fd, &dest).await {
            return self.fs_done("descriptor.symlink-at", args, Err(code(e)), |_| none());
        }
        let r = fst::HostDescriptor::symlink_at(&mut self.filesystem(), fd, src, dest).await;
        if r.is_ok() {
            self.core.created();
        }
        self.fs_done("descriptor.symlink-at", args, r, |_| none())
    }

    async fn unlink_file_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(path.as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.unlink-file-at", args, Err(code(e)), |_| none());
        }
        let removed = self
            .identity_at(&fd, fst::PathFlags::empty(), &path)
            .await
            .ok();
        let r = fst::HostDescriptor::unlink_file_at(&mut self.filesystem(), fd, path).await;
        if r.is_ok() {
            self.core.changed();
            if let Some(id) = removed {
                self.core.removed(id);
            }
        }
        self.fs_done("descriptor.unlink-file-at", args, r, |_| none())
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<fst::Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynInputStream>> {
        let args = Dig::new().u64(fd.rep().into()).u64(offset).finish();
        let r = fst::HostDescriptor::read_via_stream(&mut self.filesystem(), fd, offset);
        self.fs_done("descriptor.read-via-stream", args, r, |_| none())
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<fst::Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynOutputStream>> {
        let args = Dig::new().u64(fd.rep().into()).u64(offset).finish();
        let plan = self.write_plan(&fd, offset);
        let r = fst::HostDescriptor::write_via_stream(&mut self.filesystem(), fd, offset);
        if let Ok(s) = &r {
            self.core.file_streams.insert(s.rep());
            if let Some(p) = plan {
                self.core.track_size(p.file_id, p.size);
                self.core
                    .stream_pos
                    .insert(s.rep(), (p.file_id, offset, false));
            }
        }
        self.fs_done("descriptor.write-via-stream", args, r, |_| none())
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<fst::Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let args = Dig::new().u64(fd.rep().into()).finish();
        let plan = self.write_plan(&fd, 0);
        let r = fst::HostDescriptor::append_via_stream(&mut self.filesystem(), fd);
        if let Ok(s) = &r {
            self.core.file_streams.insert(s.rep());
            if let Some(p) = plan {
                self.core.track_size(p.file_id, p.size);
                self.core.stream_pos.insert(s.rep(), (p.file_id, 0, true));
            }
        }
        self.fs_done("descriptor.append-via-stream", args, r, |_| none())
    }

    async fn is_same_object(
        &mut self,
        a: Resource<fst::Descriptor>,
        b: Resource<fst::Descriptor>,
    ) -> wasmtime::Result<bool> {
        let args = Dig::new().u64(a.rep().into()).u64(b.rep().into()).finish();
        let r = fst::HostDescriptor::is_same_object(&mut self.filesystem(), a, b).await;
        self.done("descriptor.is-same-object", args, r, |v| {
            Dig::new().u64(u64::from(*v)).finish()
        })
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<fst::Descriptor>,
    ) -> FsResult<fst::MetadataHashValue> {
        let args = Dig::new().u64(fd.rep().into()).finish();
        let r = self.identity(&fd).await.map(|id| self.synthetic_hash(id));
        self.fs_done("descriptor.metadata-hash", args, r, |h| {
            Dig::new().u64(h.lower).u64(h.upper).finish()
        })
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<fst::Descriptor>,
        flags: fst::PathFlags,
        path: String,
    ) -> FsResult<fst::MetadataHashValue> {
        let args = Dig::new()
            .u64(fd.rep().into())
            .bytes(format!("{flags:?}").as_bytes())
            .bytes(path.as_bytes())
            .finish();
        if let Err(e) = self.path(&path) {
            return self.fs_done("descriptor.metadata-hash-at", args, Err(code(e)), |_| {
                none()
            });
        }
        let r = self
            .identity_at(&fd, flags, &path)
            .await
            .map(|id| self.synthetic_hash(id));
        self.fs_done("descriptor.metadata-hash-at", args, r, |h| {
            Dig::new().u64(h.lower).u64(h.upper).finish()
        })
    }
}

impl GateView<'_> {
    fn synthetic_hash(&mut self, host_id: u64) -> fst::MetadataHashValue {
        if self.core.leak_host_metadata {
            return fst::MetadataHashValue {
                lower: host_id,
                upper: 0,
            };
        }
        let (ino, _) = self.core.virt_times(host_id);
        fst::MetadataHashValue {
            lower: ino,
            upper: 0,
        }
    }
}

/// A directory listing being read by the guest: the gate's own `directory-entry-stream`
/// (every function on that resource is the gate's, so the table holds this type under it).
pub(crate) struct DirStream {
    entries: std::sync::Arc<[ListEntry]>,
    next: usize,
}

impl fst::HostDirectoryEntryStream for GateView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<fst::DirectoryEntryStream>,
    ) -> FsResult<Option<fst::DirectoryEntry>> {
        let args = Dig::new().u64(stream.rep().into()).finish();
        let s: Resource<DirStream> = Resource::new_borrow(stream.rep());
        let r = match self.table.get_mut(&s) {
            Ok(st) => {
                let e = st.entries.get(st.next).map(|e| fst::DirectoryEntry {
                    type_: descriptor_type(e.kind),
                    name: e.name.clone(),
                });
                st.next += usize::from(e.is_some());
                Ok(e)
            }
            Err(e) => Err(FsError::trap(e)),
        };
        if let Ok(Some(e)) = &r {
            self.core.charge(Work::Entries(1));
            self.core.charge(Work::Bytes(e.name.len() as u64));
        }
        self.fs_done(
            "directory-entry-stream.read-directory-entry",
            args,
            r,
            |e| match e {
                Some(e) => Dig::new()
                    .u64(e.type_ as u64)
                    .bytes(e.name.as_bytes())
                    .finish(),
                None => none(),
            },
        )
    }

    fn drop(&mut self, stream: Resource<fst::DirectoryEntryStream>) -> wasmtime::Result<()> {
        let s: Resource<DirStream> = Resource::new_own(stream.rep());
        self.table.delete(s)?;
        Ok(())
    }
}

// ---- sockets ----

use wasmtime_wasi::sockets::WasiSocketsView as _;

impl GateView<'_> {
    /// A refused socket call: recorded as a denial by the gate core.
    fn socket_refused<T>(&mut self, func: &'static str, args: Digest) -> SocketResult<T> {
        const ACCESS_DENIED: u16 = 3000;
        match self.core.refuse_socket(func, args, ACCESS_DENIED) {
            Some(stop) => Err(SocketError::trap(wasmtime::Error::new(stop))),
            None => Err(network::ErrorCode::AccessDenied.into()),
        }
    }
}

impl network::Host for GateView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<network::ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets(), error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<network::ErrorCode>> {
        let r = network::Host::network_error_code(&mut self.sockets(), err);
        self.done("network.network-error-code", none(), r, |c| {
            Dig::new().u64(c.map_or(0, |c| c as u64 + 1)).finish()
        })
    }
}

impl network::HostNetwork for GateView<'_> {
    fn drop(&mut self, n: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets(), n)
    }
}

impl instance_network::Host for GateView<'_> {
    fn instance_network(&mut self) -> wasmtime::Result<Resource<network::Network>> {
        // The capability object only: everything done with it is refused below.
        let r = instance_network::Host::instance_network(&mut self.sockets());
        self.done("instance-network.instance-network", none(), r, |_| none())
    }
}

impl ip_name_lookup::Host for GateView<'_> {
    fn resolve_addresses(
        &mut self,
        _network: Resource<network::Network>,
        name: String,
    ) -> SocketResult<Resource<ip_name_lookup::ResolveAddressStream>> {
        const F: &str = "ip-name-lookup.resolve-addresses";
        let args = Dig::new().bytes(name.as_bytes()).finish();
        self.core.charge(Work::Bytes(name.len() as u64));
        match self.core.refuse_socket(F, args, 3000) {
            Some(stop) => Err(SocketError::trap(wasmtime::Error::new(stop))),
            // What a resolver that may not look anything up answers.
            None => Err(network::ErrorCode::PermanentResolverFailure.into()),
        }
    }
}

impl ip_name_lookup::HostResolveAddressStream for GateView<'_> {
    fn resolve_next_address(
        &mut self,
        s: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> SocketResult<Option<network::IpAddress>> {
        ip_name_lookup::HostResolveAddressStream::resolve_next_address(&mut self.sockets(), s)
    }

    fn subscribe(
        &mut self,
        s: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        ip_name_lookup::HostResolveAddressStream::subscribe(&mut self.sockets(), s)
    }

    fn drop(&mut self, s: Resource<ip_name_lookup::ResolveAddressStream>) -> wasmtime::Result<()> {
        ip_name_lookup::HostResolveAddressStream::drop(&mut self.sockets(), s)
    }
}

impl tcp_create_socket::Host for GateView<'_> {
    fn create_tcp_socket(
        &mut self,
        family: network::IpAddressFamily,
    ) -> SocketResult<Resource<tcp::TcpSocket>> {
        let args = Dig::new().u64(family as u64).finish();
        self.socket_refused("tcp-create-socket.create-tcp-socket", args)
    }
}

impl udp_create_socket::Host for GateView<'_> {
    async fn create_udp_socket(
        &mut self,
        family: network::IpAddressFamily,
    ) -> SocketResult<Resource<udp::UdpSocket>> {
        let args = Dig::new().u64(family as u64).finish();
        self.socket_refused("udp-create-socket.create-udp-socket", args)
    }
}
