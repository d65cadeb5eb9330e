//! WASI preview 1 through the gate.
//!
//! `Gate` implements wasmtime-wasi's generated `WasiSnapshotPreview1` trait. This adapter
//! translates between preview 1 types and the gate core's ([`rules`](super::rules)): every
//! decision (paths, quotas, what may be opened, listings, random, polls, denials, fuel) is a
//! [`GateCore`](super::GateCore) call. Most calls delegate to `WasiP1Ctx`; the ones that would
//! expose the host or break determinism are replaced here (clocks, `poll_oneoff`,
//! `fd_readdir`, stat results, `*_set_times`, `fd_sync`/`fd_datasync`, `sched_yield`).

use std::sync::Arc;

use wasmtime_wasi::p1::types::{self, Errno, Error};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wiggle::{GuestMemory, GuestPtr};

use super::audit::{Dig, Digest, ERRNO_TRAP};
use super::clock::{MONO_START_NS, RESOLUTION_NS};
use super::rules::{
    Charge, EntryKind, Errc, FdInfo, FdKind, HostDir, Work, WritePlan, host_identity,
};
use super::{Gate, GateCore, GateStop, RunState};

type R<T> = Result<T, Error>;

/// Registers the gate's `wasi_snapshot_preview1` functions.
pub(crate) fn add_to_linker(linker: &mut wasmtime::Linker<RunState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::wasi_snapshot_preview1::add_to_linker(linker, |s: &mut RunState| &mut s.gate)
}

fn errno_code(e: &Error) -> u16 {
    e.downcast_ref().map_or(ERRNO_TRAP, |e: &Errno| *e as u16)
}

/// A preview 1 errno as the gate core sees it.
fn errc_of(e: &Error) -> Option<Errc> {
    let e: &Errno = e.downcast_ref()?;
    Some(match e {
        Errno::Perm => Errc::NotPermitted,
        Errno::Acces => Errc::Access,
        Errno::Notcapable => Errc::NotCapable,
        Errno::Rofs => Errc::ReadOnly,
        Errno::Nametoolong => Errc::NameTooLong,
        Errno::Nospc => Errc::NoSpace,
        Errno::Mfile => Errc::TooManyOpen,
        Errno::Nomem => Errc::NoMemory,
        Errno::Inval => Errc::Invalid,
        Errno::Ilseq => Errc::IllegalSequence,
        _ => Errc::Other,
    })
}

/// The errno the guest gets for an error the gate core raised.
fn errno(c: Errc) -> Error {
    match c {
        Errc::NotPermitted => Errno::Perm,
        Errc::Access => Errno::Acces,
        Errc::NotCapable => Errno::Notcapable,
        Errc::ReadOnly => Errno::Rofs,
        Errc::NameTooLong => Errno::Nametoolong,
        Errc::NoSpace => Errno::Nospc,
        Errc::TooManyOpen => Errno::Mfile,
        Errc::NoMemory => Errno::Nomem,
        Errc::Invalid => Errno::Inval,
        Errc::IllegalSequence => Errno::Ilseq,
        Errc::Other => Errno::Io,
    }
    .into()
}

fn stop(kind: GateStop) -> Error {
    Error::trap(wasmtime::Error::new(kind))
}

/// The preview 1 file type of an entry kind.
fn filetype(k: EntryKind) -> types::Filetype {
    match k {
        EntryKind::File => types::Filetype::RegularFile,
        EntryKind::Dir => types::Filetype::Directory,
        EntryKind::Symlink => types::Filetype::SymbolicLink,
        EntryKind::CharDevice => types::Filetype::CharacterDevice,
        EntryKind::BlockDevice => types::Filetype::BlockDevice,
        EntryKind::Socket => types::Filetype::SocketStream,
        EntryKind::Fifo | EntryKind::Unknown => types::Filetype::Unknown,
    }
}

/// The entry kind of a preview 1 file type.
fn kind_of(t: types::Filetype) -> EntryKind {
    match t {
        types::Filetype::RegularFile => EntryKind::File,
        types::Filetype::Directory => EntryKind::Dir,
        types::Filetype::SymbolicLink => EntryKind::Symlink,
        types::Filetype::CharacterDevice => EntryKind::CharDevice,
        types::Filetype::BlockDevice => EntryKind::BlockDevice,
        types::Filetype::SocketDgram | types::Filetype::SocketStream => EntryKind::Socket,
        types::Filetype::Unknown => EntryKind::Unknown,
    }
}

/// The first non-empty iovec (the only one wasmtime-wasi reads into or writes from) and how
/// many iovecs were scanned to find it. `None` for a malformed array (the delegated call
/// then fails on its own).
fn first_nonempty<T: wiggle::GuestType>(
    mem: &GuestMemory<'_>,
    iovs: impl IntoIterator<Item = Result<GuestPtr<T>, wiggle::GuestError>>,
    get: impl Fn(T) -> (GuestPtr<u8>, u32),
) -> (Option<(GuestPtr<u8>, u32)>, u64) {
    let mut scanned = 0u64;
    for iov in iovs {
        scanned += 1;
        let Ok(iov) = iov.and_then(|p| mem.read(p)) else {
            return (None, scanned);
        };
        let (buf, len) = get(iov);
        if len > 0 {
            return (Some((buf, len)), scanned);
        }
    }
    (None, scanned)
}

fn path_bytes(mem: &GuestMemory<'_>, p: GuestPtr<str>) -> Vec<u8> {
    mem.as_cow(p.as_bytes())
        .map(|b| b.into_owned())
        .unwrap_or_else(|_| b"<bad path>".to_vec())
}

fn filestat_digest(s: &types::Filestat) -> Digest {
    Dig::new()
        .u64(s.dev)
        .u64(s.ino)
        .u64(s.filetype as u64)
        .u64(s.nlink)
        .u64(s.size)
        .u64(s.atim)
        .u64(s.mtim)
        .u64(s.ctim)
        .finish()
}

fn bytes_at(mem: &GuestMemory<'_>, ptr: GuestPtr<u8>, len: u32) -> Digest {
    match mem.as_cow(ptr.as_array(len)) {
        Ok(b) => Dig::new().bytes(&b).finish(),
        Err(_) => Dig::new().bytes(b"<bad buffer>").finish(),
    }
}

fn fdv(fd: types::Fd) -> u64 {
    u64::from(u32::from(fd))
}

fn scalar(v: u64) -> Digest {
    Dig::new().u64(v).finish()
}

fn none() -> Digest {
    Digest::default()
}

const DIRENT_SIZE: usize = 24;
const DIR_SIZE: u64 = 4096;
const DIR_NLINK: u64 = 2;

/// A path argument: its bytes when the gate accepts it, for the audit digest and the rules.
struct PathArg(Result<Vec<u8>, Errc>);

impl PathArg {
    /// The bytes digested for the audit trail (a refused path by its length only).
    fn digest_bytes(&self) -> Vec<u8> {
        match &self.0 {
            Ok(b) => b.clone(),
            Err(_) => b"<path too long>".to_vec(),
        }
    }
}

/// The first refused path among a call's path arguments.
fn path_err(paths: &[&PathArg]) -> Option<Errc> {
    paths.iter().find_map(|p| p.0.as_ref().err().copied())
}

/// Digest of the bytes a write takes (the first non-empty iovec: all wasmtime-wasi writes).
fn write_digest(mem: &GuestMemory<'_>, first: Option<(GuestPtr<u8>, u32)>) -> Digest {
    match first {
        Some((buf, len)) => bytes_at(mem, buf, len),
        None => none(),
    }
}

impl Gate {
    /// Digest of what a read returned (`n` bytes into the first non-empty iovec); charges
    /// the bytes copied.
    fn read_digest(
        &mut self,
        mem: &GuestMemory<'_>,
        r: &R<types::Size>,
        first: Option<(GuestPtr<u8>, u32)>,
    ) -> Digest {
        match (r, first) {
            (Ok(n), Some((buf, len))) => {
                let n = (*n).min(len);
                self.core.charge(Work::Bytes(n.into()));
                Dig::new()
                    .u64(n.into())
                    .bytes(&bytes_at(mem, buf, n).0)
                    .finish()
            }
            (Ok(n), None) => Dig::new().u64((*n).into()).finish(),
            (Err(_), _) => none(),
        }
    }

    /// Opens the gate's own handle on the directory a guest just opened at `path` under
    /// `dirfd` (resolved inside the parent's handle, never outside it).
    fn open_host_dir(&mut self, dirfd: types::Fd, path: &[u8]) -> Option<HostDir> {
        let parent = self.host_dir(dirfd).ok()?;
        let path = std::str::from_utf8(path).ok()?;
        let dir = parent.open_dir(path).ok()?;
        Some(HostDir::Open(Arc::new(dir)))
    }

    /// Records the call (audit, denials, `on_denial`) through the gate core.
    fn done<T>(
        &mut self,
        func: &'static str,
        args: Digest,
        r: R<T>,
        result: impl FnOnce(&T) -> Digest,
    ) -> R<T> {
        let (code, errc, rd) = match &r {
            Ok(v) => (0, None, result(v)),
            Err(e) => (errno_code(e), errc_of(e), none()),
        };
        if code == ERRNO_TRAP {
            self.core.trapped();
        }
        match self.core.record(func, args, code, rd, errc) {
            Some(stop_run) => Err(stop(stop_run)),
            None => r,
        }
    }

    /// Records a call the gate core refused with `c`.
    fn refused<T>(&mut self, func: &'static str, args: Digest, c: Errc) -> R<T> {
        self.done(func, args, Err(errno(c)), |_| none())
    }

    /// Reads a path argument: the gate core refuses one longer than it allows before its
    /// bytes are read, and charges the rest per component.
    fn path(&mut self, mem: &GuestMemory<'_>, p: GuestPtr<str>) -> PathArg {
        if let Err(e) = GateCore::path_len_ok(p.len() as usize) {
            return PathArg(Err(e));
        }
        let bytes = path_bytes(mem, p);
        PathArg(self.core.check_path(&bytes).map(|()| bytes))
    }

    /// A socket call: the gate core records it as a denial (no policy grants network
    /// access); the errno is wasmtime-wasi's (there are no socket descriptors).
    fn socket<T>(&mut self, func: &'static str, args: Digest, r: R<T>) -> R<T> {
        let code = match &r {
            Ok(_) => 0,
            Err(e) => errno_code(e),
        };
        match self.core.refuse_socket(func, args, code) {
            Some(stop_run) => Err(stop(stop_run)),
            None => r,
        }
    }

    fn fd_info(&self, fd: types::Fd) -> Option<FdInfo> {
        self.core.fds.get(&u32::from(fd)).cloned()
    }

    /// Virtualises a stat result: synthetic inode, fixed or guest-set times, normalised
    /// directory size and link count.
    fn virt_stat(&mut self, mut s: types::Filestat) -> types::Filestat {
        if self.core.leak_host_metadata {
            return s;
        }
        let (ino, (atim, mtim, ctim)) = self.core.virt_times(s.ino);
        s.dev = 1;
        s.ino = ino;
        s.atim = atim;
        s.mtim = mtim;
        s.ctim = ctim;
        if s.filetype == types::Filetype::Directory {
            s.size = DIR_SIZE;
            s.nlink = DIR_NLINK;
        }
        s
    }

    /// The host identity of what `path` under `dirfd` names, not following a final symlink
    /// (`None`: nothing, or it cannot be looked up). Looked up before a removal, so the
    /// identity can be forgotten after it ([`GateCore::removed`]).
    async fn identity_at(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> Option<u64> {
        self.wasi
            .path_filestat_get(mem, dirfd, types::Lookupflags::empty(), path)
            .await
            .ok()
            .map(|s| s.ino)
    }

    /// What `path` under `dirfd` names (`None`: nothing, or it cannot be looked up).
    async fn kind_at(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        flags: types::Lookupflags,
        path: GuestPtr<str>,
    ) -> Option<EntryKind> {
        self.wasi
            .path_filestat_get(mem, dirfd, flags, path)
            .await
            .ok()
            .map(|s| kind_of(s.filetype))
    }

    /// The gate core's creation rule for `path` under `dirfd` (whether it exists is looked
    /// up only when the quota is used up).
    async fn create_check(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> Result<(), Errc> {
        if !self.core.files_exhausted() {
            return Ok(());
        }
        let writable = self
            .fd_info(dirfd)
            .is_some_and(|i| i.kind == FdKind::Dir && i.dir_writable);
        let exists = writable
            && self
                .kind_at(mem, dirfd, types::Lookupflags::empty(), path)
                .await
                .is_some();
        self.core.create_allowed(writable, exists)
    }

    /// How a write through `fd` is charged (`offset` for `fd_pwrite`).
    fn write_charge(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        offset: Option<u64>,
    ) -> Charge {
        let Some(info) = self.fd_info(fd) else {
            return Charge::Free;
        };
        if info.kind != FdKind::File || !info.file_writable {
            return Charge::Free;
        }
        let Some(file_id) = info.file_id else {
            return Charge::Flat;
        };
        let Some(size) = self.core.known_size(file_id) else {
            return Charge::Flat;
        };
        let start = if info.append {
            size
        } else {
            match offset {
                Some(o) => o,
                None => match self.wasi.fd_tell(mem, fd) {
                    Ok(p) => p,
                    Err(_) => return Charge::Flat,
                },
            }
        };
        Charge::Plan(WritePlan {
            file_id,
            start,
            size,
        })
    }

    /// The gate's own handle on the directory behind `fd` (opened on first use for a
    /// preopen), for listings.
    fn host_dir(&mut self, fd: types::Fd) -> Result<Arc<cap_std::fs::Dir>, Errc> {
        let key = u32::from(fd);
        let info = self.core.fds.get_mut(&key).ok_or(Errc::Other)?;
        match &info.host_dir {
            Some(HostDir::Open(d)) => Ok(d.clone()),
            Some(HostDir::Path(p)) => {
                // An engine-owned directory (staged input, scratch) or a granted rw dir,
                // opened by the path the engine itself chose for the preopen.
                let d = Arc::new(
                    cap_std::fs::Dir::open_ambient_dir(p, cap_std::ambient_authority())
                        .map_err(|_| Errc::Other)?,
                );
                info.host_dir = Some(HostDir::Open(d.clone()));
                Ok(d)
            }
            None => Err(Errc::Other),
        }
    }

    /// Serves one `fd_readdir` page from the gate core's listing of `fd`.
    fn readdir_page(&mut self, fd: types::Fd, cookie: u64, cap: usize) -> Result<Vec<u8>, Errc> {
        use cap_std::fs::MetadataExt;
        let dir = self.host_dir(fd)?;
        let entries = self.core.listing(fdv(fd), &dir, true)?;
        let m = dir.dir_metadata().map_err(|_| Errc::Other)?;
        let dir_ino = self.core.inode(host_identity(m.dev(), m.ino()));
        let mut out: Vec<u8> = Vec::new();
        let start = usize::try_from(cookie).unwrap_or(usize::MAX);
        let mut served = 0u64;
        let dots = [(&b"."[..], dir_ino), (&b".."[..], dir_ino)];
        let total = entries.len() + 2;
        for i in start..total {
            if out.len() >= cap {
                break;
            }
            let (name, ino, ft) = match i {
                0 | 1 => (dots[i].0, dots[i].1, types::Filetype::Directory),
                _ => {
                    let e = &entries[i - 2];
                    let ino = self.core.inode(e.host_id);
                    (e.name.as_bytes(), ino, filetype(e.kind))
                }
            };
            let mut h = [0u8; DIRENT_SIZE];
            h[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            h[8..16].copy_from_slice(&ino.to_le_bytes());
            h[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            h[20] = ft as u8;
            out.extend_from_slice(&h);
            out.extend_from_slice(name);
            served += 1;
        }
        out.truncate(cap);
        self.core.charge(Work::Entries(served));
        self.core.charge(Work::Bytes(out.len() as u64));
        Ok(out)
    }
}

impl WasiSnapshotPreview1 for Gate {
    fn set_hostcall_fuel(&mut self, fuel: usize) {
        self.wasi.set_hostcall_fuel(fuel);
    }

    fn args_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        argv: GuestPtr<GuestPtr<u8>>,
        argv_buf: GuestPtr<u8>,
    ) -> R<()> {
        let args = Dig::new()
            .u64(argv.offset().into())
            .u64(argv_buf.offset().into())
            .finish();
        if let Ok((n, size)) = self.wasi.args_sizes_get(mem) {
            self.core
                .charge(Work::Bytes(u64::from(size) + 4 * u64::from(n)));
        }
        let r = self.wasi.args_get(mem, argv, argv_buf);
        self.done("args_get", args, r, |_| none())
    }

    fn args_sizes_get(&mut self, mem: &mut GuestMemory<'_>) -> R<(types::Size, types::Size)> {
        let r = self.wasi.args_sizes_get(mem);
        self.done("args_sizes_get", none(), r, |(a, b)| {
            Dig::new().u64((*a).into()).u64((*b).into()).finish()
        })
    }

    fn environ_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        environ: GuestPtr<GuestPtr<u8>>,
        environ_buf: GuestPtr<u8>,
    ) -> R<()> {
        let args = Dig::new()
            .u64(environ.offset().into())
            .u64(environ_buf.offset().into())
            .finish();
        if let Ok((n, size)) = self.wasi.environ_sizes_get(mem) {
            self.core
                .charge(Work::Bytes(u64::from(size) + 4 * u64::from(n)));
        }
        let r = self.wasi.environ_get(mem, environ, environ_buf);
        self.done("environ_get", args, r, |_| none())
    }

    fn environ_sizes_get(&mut self, mem: &mut GuestMemory<'_>) -> R<(types::Size, types::Size)> {
        let r = self.wasi.environ_sizes_get(mem);
        self.done("environ_sizes_get", none(), r, |(a, b)| {
            Dig::new().u64((*a).into()).u64((*b).into()).finish()
        })
    }

    fn clock_res_get(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        id: types::Clockid,
    ) -> R<types::Timestamp> {
        self.done("clock_res_get", scalar(id as u64), Ok(RESOLUTION_NS), |v| {
            scalar(*v)
        })
    }

    fn clock_time_get(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        id: types::Clockid,
        precision: types::Timestamp,
    ) -> R<types::Timestamp> {
        let c = &self.core.clock;
        let now = match id {
            types::Clockid::Realtime => c.wall_now(),
            types::Clockid::Monotonic => c.mono_now(),
            types::Clockid::ProcessCputimeId | types::Clockid::ThreadCputimeId => c.cpu_now(),
        };
        let args = Dig::new().u64(id as u64).u64(precision).finish();
        self.done("clock_time_get", args, Ok(now), |v| scalar(*v))
    }

    async fn fd_advise(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> R<()> {
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(offset)
            .u64(len)
            .u64(advice as u64)
            .finish();
        let r = self.wasi.fd_advise(mem, fd, offset, len, advice).await;
        self.done("fd_advise", args, r, |_| none())
    }

    fn fd_allocate(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        offset: types::Filesize,
        len: types::Filesize,
    ) -> R<()> {
        // wasmtime-wasi answers `notsup` for every file, so nothing is allocated on the host.
        let args = Dig::new().u64(fdv(fd)).u64(offset).u64(len).finish();
        let r = self.wasi.fd_allocate(mem, fd, offset, len);
        self.done("fd_allocate", args, r, |_| none())
    }

    async fn fd_close(&mut self, mem: &mut GuestMemory<'_>, fd: types::Fd) -> R<()> {
        let r = self.wasi.fd_close(mem, fd).await;
        if r.is_ok()
            && let Some(info) = self.core.fds.remove(&u32::from(fd))
            && info.guest_opened
        {
            self.core.closed();
        }
        self.core.forget_listing(fdv(fd));
        self.done("fd_close", scalar(fdv(fd)), r, |_| none())
    }

    async fn fd_datasync(&mut self, mem: &mut GuestMemory<'_>, fd: types::Fd) -> R<()> {
        // Validated no-op: the host never fsyncs for a guest (cheap and deterministic).
        let r = match self.fd_info(fd) {
            Some(i) if i.kind == FdKind::File => Ok(()),
            Some(_) => self.wasi.fd_datasync(mem, fd).await,
            None => Err(Errno::Badf.into()),
        };
        self.done("fd_datasync", scalar(fdv(fd)), r, |_| none())
    }

    async fn fd_fdstat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
    ) -> R<types::Fdstat> {
        let r = self.wasi.fd_fdstat_get(mem, fd).await;
        self.done("fd_fdstat_get", scalar(fdv(fd)), r, |s| {
            Dig::new()
                .u64(s.fs_filetype as u64)
                .u64(s.fs_flags.bits().into())
                .u64(s.fs_rights_base.bits())
                .u64(s.fs_rights_inheriting.bits())
                .finish()
        })
    }

    fn fd_fdstat_set_flags(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        flags: types::Fdflags,
    ) -> R<()> {
        let args = Dig::new().u64(fdv(fd)).u64(flags.bits().into()).finish();
        let r = self.wasi.fd_fdstat_set_flags(mem, fd, flags);
        self.done("fd_fdstat_set_flags", args, r, |_| none())
    }

    fn fd_fdstat_set_rights(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        base: types::Rights,
        inheriting: types::Rights,
    ) -> R<()> {
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(base.bits())
            .u64(inheriting.bits())
            .finish();
        let r = self.wasi.fd_fdstat_set_rights(mem, fd, base, inheriting);
        self.done("fd_fdstat_set_rights", args, r, |_| none())
    }

    async fn fd_filestat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
    ) -> R<types::Filestat> {
        let r = self.wasi.fd_filestat_get(mem, fd).await;
        let r = r.map(|s| self.virt_stat(s));
        self.done("fd_filestat_get", scalar(fdv(fd)), r, filestat_digest)
    }

    async fn fd_filestat_set_size(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        size: types::Filesize,
    ) -> R<()> {
        let args = Dig::new().u64(fdv(fd)).u64(size).finish();
        let (current, id) = match self.wasi.fd_filestat_get(mem, fd).await {
            Ok(s) => (s.size, s.ino),
            Err(e) => return self.done("fd_filestat_set_size", args, Err(e), |_| none()),
        };
        let writable = self
            .fd_info(fd)
            .is_some_and(|i| i.kind == FdKind::File && i.file_writable);
        if let Err(e) = self.core.resize_allowed(writable, current, size) {
            return self.refused("fd_filestat_set_size", args, e);
        }
        let r = self.wasi.fd_filestat_set_size(mem, fd, size).await;
        if r.is_ok() {
            self.core.resized(Some(id), current, size);
        }
        self.done("fd_filestat_set_size", args, r, |_| none())
    }

    async fn fd_filestat_set_times(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        atim: types::Timestamp,
        mtim: types::Timestamp,
        flags: types::Fstflags,
    ) -> R<()> {
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(atim)
            .u64(mtim)
            .u64(flags.bits().into())
            .finish();
        let r = match times_of(atim, mtim, flags, self.core.clock.wall_now()) {
            Err(e) => Err(e),
            Ok((a, m)) => match self.fd_info(fd) {
                None => Err(Errno::Badf.into()),
                Some(i) if matches!(i.kind, FdKind::Stdin | FdKind::Stdout | FdKind::Stderr) => {
                    Err(Errno::Badf.into())
                }
                Some(i) if !i.dir_writable => Err(Errno::Perm.into()),
                Some(_) => match self.wasi.fd_filestat_get(mem, fd).await {
                    Ok(s) => {
                        self.core.set_virt_times(s.ino, a, m);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            },
        };
        self.done("fd_filestat_set_times", args, r, |_| none())
    }

    async fn fd_read(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        iovs: types::IovecArray,
    ) -> R<types::Size> {
        let args = Dig::new().u64(fdv(fd)).u64(iovs.len().into()).finish();
        let (first, scanned) =
            first_nonempty(mem, iovs.iter(), |i: types::Iovec| (i.buf, i.buf_len));
        self.core.charge(Work::Iovecs(scanned));
        let r = self.wasi.fd_read(mem, fd, iovs).await;
        if let Ok(n) = &r
            && self.fd_info(fd).is_some_and(|i| i.kind == FdKind::Stdin)
        {
            self.core.stdin_remaining = self.core.stdin_remaining.saturating_sub((*n).into());
        }
        let digest = self.read_digest(mem, &r, first);
        self.done("fd_read", args, r, |_| digest)
    }

    async fn fd_pread(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        iovs: types::IovecArray,
        offset: types::Filesize,
    ) -> R<types::Size> {
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(iovs.len().into())
            .u64(offset)
            .finish();
        let (first, scanned) =
            first_nonempty(mem, iovs.iter(), |i: types::Iovec| (i.buf, i.buf_len));
        self.core.charge(Work::Iovecs(scanned));
        let r = self.wasi.fd_pread(mem, fd, iovs, offset).await;
        let digest = self.read_digest(mem, &r, first);
        self.done("fd_pread", args, r, |_| digest)
    }

    async fn fd_write(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        ciovs: types::CiovecArray,
    ) -> R<types::Size> {
        let (first, scanned) =
            first_nonempty(mem, ciovs.iter(), |i: types::Ciovec| (i.buf, i.buf_len));
        self.core.charge(Work::Iovecs(scanned));
        let args = Dig::new()
            .u64(fdv(fd))
            .bytes(&write_digest(mem, first).0)
            .finish();
        let charge = self.write_charge(mem, fd, None);
        let len = first.map_or(0, |(_, l)| u64::from(l));
        if let Err(e) = self.core.write_allowed(charge, len) {
            return self.refused("fd_write", args, e);
        }
        self.core.charge(Work::Bytes(len));
        let r = self.wasi.fd_write(mem, fd, ciovs).await;
        if let Ok(n) = &r {
            self.core.wrote(charge, (*n).into());
        }
        self.done("fd_write", args, r, |n| scalar((*n).into()))
    }

    async fn fd_pwrite(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        ciovs: types::CiovecArray,
        offset: types::Filesize,
    ) -> R<types::Size> {
        let (first, scanned) =
            first_nonempty(mem, ciovs.iter(), |i: types::Ciovec| (i.buf, i.buf_len));
        self.core.charge(Work::Iovecs(scanned));
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(offset)
            .bytes(&write_digest(mem, first).0)
            .finish();
        let charge = self.write_charge(mem, fd, Some(offset));
        let len = first.map_or(0, |(_, l)| u64::from(l));
        if let Err(e) = self.core.write_allowed(charge, len) {
            return self.refused("fd_pwrite", args, e);
        }
        self.core.charge(Work::Bytes(len));
        let r = self.wasi.fd_pwrite(mem, fd, ciovs, offset).await;
        if let Ok(n) = &r {
            self.core.wrote(charge, (*n).into());
        }
        self.done("fd_pwrite", args, r, |n| scalar((*n).into()))
    }

    fn fd_prestat_get(&mut self, mem: &mut GuestMemory<'_>, fd: types::Fd) -> R<types::Prestat> {
        let r = self.wasi.fd_prestat_get(mem, fd);
        self.done("fd_prestat_get", scalar(fdv(fd)), r, |p| match p {
            types::Prestat::Dir(d) => scalar(d.pr_name_len.into()),
        })
    }

    fn fd_prestat_dir_name(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        path: GuestPtr<u8>,
        path_max_len: types::Size,
    ) -> R<()> {
        let args = Dig::new().u64(fdv(fd)).u64(path_max_len.into()).finish();
        // Only the name's bytes are written (and digested), whatever length the guest gave.
        let name_len = match self.wasi.fd_prestat_get(mem, fd) {
            Ok(types::Prestat::Dir(d)) => d.pr_name_len.min(path_max_len),
            Err(_) => 0,
        };
        let r = self.wasi.fd_prestat_dir_name(mem, fd, path, path_max_len);
        let digest = if r.is_ok() {
            bytes_at(mem, path, name_len)
        } else {
            none()
        };
        self.done("fd_prestat_dir_name", args, r, |_| digest)
    }

    async fn fd_renumber(
        &mut self,
        mem: &mut GuestMemory<'_>,
        from: types::Fd,
        to: types::Fd,
    ) -> R<()> {
        let args = Dig::new().u64(fdv(from)).u64(fdv(to)).finish();
        let r = self.wasi.fd_renumber(mem, from, to).await;
        if r.is_ok() && from != to {
            let (from, to) = (u32::from(from), u32::from(to));
            if let Some(old) = self.core.fds.remove(&to)
                && old.guest_opened
            {
                self.core.closed();
            }
            if let Some(info) = self.core.fds.remove(&from) {
                self.core.fds.insert(to, info);
            }
            self.core.forget_listing(u64::from(from));
            self.core.forget_listing(u64::from(to));
        }
        self.done("fd_renumber", args, r, |_| none())
    }

    async fn fd_seek(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        offset: types::Filedelta,
        whence: types::Whence,
    ) -> R<types::Filesize> {
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(offset as u64)
            .u64(whence as u64)
            .finish();
        let r = self.wasi.fd_seek(mem, fd, offset, whence).await;
        self.done("fd_seek", args, r, |v| scalar(*v))
    }

    async fn fd_sync(&mut self, mem: &mut GuestMemory<'_>, fd: types::Fd) -> R<()> {
        let r = match self.fd_info(fd) {
            Some(i) if i.kind == FdKind::File || i.kind == FdKind::Dir => Ok(()),
            Some(_) => self.wasi.fd_sync(mem, fd).await,
            None => Err(Errno::Badf.into()),
        };
        self.done("fd_sync", scalar(fdv(fd)), r, |_| none())
    }

    fn fd_tell(&mut self, mem: &mut GuestMemory<'_>, fd: types::Fd) -> R<types::Filesize> {
        let r = self.wasi.fd_tell(mem, fd);
        self.done("fd_tell", scalar(fdv(fd)), r, |v| scalar(*v))
    }

    async fn fd_readdir(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        buf: GuestPtr<u8>,
        buf_len: types::Size,
        cookie: types::Dircookie,
    ) -> R<types::Size> {
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(buf_len.into())
            .u64(cookie)
            .finish();
        let is_dir = self.fd_info(fd).is_some_and(|i| i.kind == FdKind::Dir);
        if !is_dir {
            // Not a directory (or no descriptor): wasmtime-wasi's answer, at once.
            let r = self.wasi.fd_readdir(mem, fd, buf, 0, cookie).await;
            return self.done("fd_readdir", args, r, |n| scalar((*n).into()));
        }
        let out = match self.readdir_page(fd, cookie, buf_len as usize) {
            Ok(out) => out,
            Err(e) => return self.refused("fd_readdir", args, e),
        };
        let n = out.len() as u32;
        let r = mem
            .copy_from_slice(&out, buf.as_array(n))
            .map(|()| n)
            .map_err(Error::from);
        let digest = Dig::new().bytes(&out).finish();
        self.done("fd_readdir", args, r, |_| digest)
    }

    async fn path_create_directory(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> R<()> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&p_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_create_directory", args, e);
        }
        if let Err(e) = self.create_check(mem, dirfd, path).await {
            return self.refused("path_create_directory", args, e);
        }
        let r = self.wasi.path_create_directory(mem, dirfd, path).await;
        if r.is_ok() {
            self.core.created();
        }
        self.done("path_create_directory", args, r, |_| none())
    }

    async fn path_filestat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        flags: types::Lookupflags,
        path: GuestPtr<str>,
    ) -> R<types::Filestat> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .u64(flags.bits().into())
            .bytes(&p_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_filestat_get", args, e);
        }
        let r = self.wasi.path_filestat_get(mem, dirfd, flags, path).await;
        let r = r.map(|s| self.virt_stat(s));
        self.done("path_filestat_get", args, r, filestat_digest)
    }

    async fn path_filestat_set_times(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        flags: types::Lookupflags,
        path: GuestPtr<str>,
        atim: types::Timestamp,
        mtim: types::Timestamp,
        fst: types::Fstflags,
    ) -> R<()> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .u64(flags.bits().into())
            .bytes(&p_path.digest_bytes())
            .u64(atim)
            .u64(mtim)
            .u64(fst.bits().into())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_filestat_set_times", args, e);
        }
        let r = match times_of(atim, mtim, fst, self.core.clock.wall_now()) {
            Err(e) => Err(e),
            Ok((a, m)) => match self.fd_info(dirfd) {
                Some(i) if i.kind == FdKind::Dir && !i.dir_writable => Err(Errno::Perm.into()),
                Some(i) if i.kind == FdKind::Dir => {
                    match self.wasi.path_filestat_get(mem, dirfd, flags, path).await {
                        Ok(s) => {
                            self.core.set_virt_times(s.ino, a, m);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Some(_) => Err(Errno::Notdir.into()),
                None => Err(Errno::Badf.into()),
            },
        };
        self.done("path_filestat_set_times", args, r, |_| none())
    }

    async fn path_link(
        &mut self,
        mem: &mut GuestMemory<'_>,
        src_fd: types::Fd,
        src_flags: types::Lookupflags,
        src_path: GuestPtr<str>,
        target_fd: types::Fd,
        target_path: GuestPtr<str>,
    ) -> R<()> {
        let p_src_path = self.path(mem, src_path);
        let p_target_path = self.path(mem, target_path);
        let args = Dig::new()
            .u64(fdv(src_fd))
            .u64(src_flags.bits().into())
            .bytes(&p_src_path.digest_bytes())
            .u64(fdv(target_fd))
            .bytes(&p_target_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_src_path, &p_target_path]) {
            return self.refused("path_link", args, e);
        }
        if let Err(e) = self.create_check(mem, target_fd, target_path).await {
            return self.refused("path_link", args, e);
        }
        let r = self
            .wasi
            .path_link(mem, src_fd, src_flags, src_path, target_fd, target_path)
            .await;
        if r.is_ok() {
            self.core.created();
        }
        self.done("path_link", args, r, |_| none())
    }

    async fn path_open(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        dirflags: types::Lookupflags,
        path: GuestPtr<str>,
        oflags: types::Oflags,
        base: types::Rights,
        inheriting: types::Rights,
        fdflags: types::Fdflags,
    ) -> R<types::Fd> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .u64(dirflags.bits().into())
            .bytes(&p_path.digest_bytes())
            .u64(oflags.bits().into())
            .u64(base.bits())
            .u64(inheriting.bits())
            .u64(fdflags.bits().into())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_open", args, e);
        }
        if let Err(e) = self.core.open_allowed() {
            return self.refused("path_open", args, e);
        }
        // What the path names now: a FIFO, socket or device is refused before the host
        // opens it (opening one can block without bound).
        let target = self.kind_at(mem, dirfd, dirflags, path).await;
        if let Err(e) = self.core.open_target(target) {
            return self.refused("path_open", args, e);
        }
        let created = oflags.contains(types::Oflags::CREAT) && target.is_none();
        if created && let Err(e) = self.create_check(mem, dirfd, path).await {
            return self.refused("path_open", args, e);
        }
        let r = self
            .wasi
            .path_open(
                mem, dirfd, dirflags, path, oflags, base, inheriting, fdflags,
            )
            .await;
        if let Ok(new_fd) = &r {
            if created {
                self.core.created();
            }
            let parent = self.fd_info(dirfd);
            let dir_writable = parent.as_ref().is_some_and(|i| i.dir_writable);
            let (kind, file_writable) = match self.wasi.fd_fdstat_get(mem, *new_fd).await {
                Ok(s) if s.fs_filetype == types::Filetype::Directory => (FdKind::Dir, false),
                Ok(s) => (
                    FdKind::File,
                    s.fs_rights_base.contains(types::Rights::FD_WRITE),
                ),
                Err(_) => (FdKind::File, false),
            };
            // Writable files: remember their identity and size, to charge writes by how far
            // they extend the file.
            let mut file_id = None;
            if kind == FdKind::File
                && file_writable
                && let Ok(st) = self.wasi.fd_filestat_get(mem, *new_fd).await
            {
                self.core.note_size(st.ino, st.size);
                file_id = Some(st.ino);
            }
            // Directories: the gate's own handle on the same directory, for listings.
            let host_dir = match (kind, &p_path.0) {
                (FdKind::Dir, Ok(bytes)) => self.open_host_dir(dirfd, bytes),
                _ => None,
            };
            self.core.fds.insert(
                u32::from(*new_fd),
                FdInfo {
                    kind,
                    dir_writable,
                    file_writable,
                    guest_opened: true,
                    file_id,
                    append: fdflags.contains(types::Fdflags::APPEND),
                    host_dir,
                },
            );
            self.core.forget_listing(fdv(*new_fd));
            self.core.opened();
        }
        self.done("path_open", args, r, |fd| scalar(fdv(*fd)))
    }

    async fn path_readlink(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
        buf: GuestPtr<u8>,
        buf_len: types::Size,
    ) -> R<types::Size> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&p_path.digest_bytes())
            .u64(buf_len.into())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_readlink", args, e);
        }
        let r = self
            .wasi
            .path_readlink(mem, dirfd, path, buf, buf_len)
            .await;
        let digest = match &r {
            Ok(n) => bytes_at(mem, buf, *n),
            Err(_) => none(),
        };
        self.done("path_readlink", args, r, |_| digest)
    }

    async fn path_remove_directory(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> R<()> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&p_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_remove_directory", args, e);
        }
        let removed = self.identity_at(mem, dirfd, path).await;
        let r = self.wasi.path_remove_directory(mem, dirfd, path).await;
        if r.is_ok() {
            self.core.changed();
            if let Some(id) = removed {
                self.core.removed(id);
            }
        }
        self.done("path_remove_directory", args, r, |_| none())
    }

    async fn path_rename(
        &mut self,
        mem: &mut GuestMemory<'_>,
        src_fd: types::Fd,
        src_path: GuestPtr<str>,
        dest_fd: types::Fd,
        dest_path: GuestPtr<str>,
    ) -> R<()> {
        let p_src_path = self.path(mem, src_path);
        let p_dest_path = self.path(mem, dest_path);
        let args = Dig::new()
            .u64(fdv(src_fd))
            .bytes(&p_src_path.digest_bytes())
            .u64(fdv(dest_fd))
            .bytes(&p_dest_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_src_path, &p_dest_path]) {
            return self.refused("path_rename", args, e);
        }
        // A rename onto an existing name removes what the name held (unless both names are
        // links to one object, when nothing changes).
        let replaced = match self.identity_at(mem, dest_fd, dest_path).await {
            Some(dest) if self.identity_at(mem, src_fd, src_path).await != Some(dest) => Some(dest),
            _ => None,
        };
        let r = self
            .wasi
            .path_rename(mem, src_fd, src_path, dest_fd, dest_path)
            .await;
        if r.is_ok() {
            self.core.changed();
            if let Some(id) = replaced {
                self.core.removed(id);
            }
        }
        self.done("path_rename", args, r, |_| none())
    }

    async fn path_symlink(
        &mut self,
        mem: &mut GuestMemory<'_>,
        src_path: GuestPtr<str>,
        dirfd: types::Fd,
        dest_path: GuestPtr<str>,
    ) -> R<()> {
        let p_src_path = self.path(mem, src_path);
        let p_dest_path = self.path(mem, dest_path);
        let args = Dig::new()
            .bytes(&p_src_path.digest_bytes())
            .u64(fdv(dirfd))
            .bytes(&p_dest_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_src_path, &p_dest_path]) {
            return self.refused("path_symlink", args, e);
        }
        if let Err(e) = self.create_check(mem, dirfd, dest_path).await {
            return self.refused("path_symlink", args, e);
        }
        let r = self
            .wasi
            .path_symlink(mem, src_path, dirfd, dest_path)
            .await;
        if r.is_ok() {
            self.core.created();
        }
        self.done("path_symlink", args, r, |_| none())
    }

    async fn path_unlink_file(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> R<()> {
        let p_path = self.path(mem, path);
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&p_path.digest_bytes())
            .finish();
        if let Some(e) = path_err(&[&p_path]) {
            return self.refused("path_unlink_file", args, e);
        }
        let removed = self.identity_at(mem, dirfd, path).await;
        let r = self.wasi.path_unlink_file(mem, dirfd, path).await;
        if r.is_ok() {
            self.core.changed();
            if let Some(id) = removed {
                self.core.removed(id);
            }
        }
        self.done("path_unlink_file", args, r, |_| none())
    }

    async fn poll_oneoff(
        &mut self,
        mem: &mut GuestMemory<'_>,
        subs: GuestPtr<types::Subscription>,
        events: GuestPtr<types::Event>,
        nsubscriptions: types::Size,
    ) -> R<types::Size> {
        let args = Dig::new().u64(nsubscriptions.into()).finish();
        if let Err(e) = self.core.poll_size(nsubscriptions.into()) {
            return self.refused("poll_oneoff", args, e);
        }
        let r = self.poll_virtual(mem, subs, events, nsubscriptions);
        let digest = match &r {
            Ok((n, d)) => Dig::new().u64((*n).into()).bytes(&d.0).finish(),
            Err(_) => none(),
        };
        let r = r.map(|(n, _)| n);
        self.done("poll_oneoff", args, r, |_| digest)
    }

    fn proc_exit(&mut self, mem: &mut GuestMemory<'_>, status: types::Exitcode) -> wasmtime::Error {
        let _ = mem;
        self.core
            .record("proc_exit", scalar(status.into()), ERRNO_TRAP, none(), None);
        // The raw i32 is the exit code (wasmtime-wasi refuses statuses >= 126 with a plain
        // error; corral reports every status as the guest gave it).
        wasmtime::Error::new(wasmtime_wasi::I32Exit(status as i32))
    }

    fn proc_raise(&mut self, mem: &mut GuestMemory<'_>, sig: types::Signal) -> R<()> {
        let r = self.wasi.proc_raise(mem, sig);
        self.done("proc_raise", scalar(sig as u64), r, |_| none())
    }

    fn sched_yield(&mut self, _mem: &mut GuestMemory<'_>) -> R<()> {
        self.done("sched_yield", none(), Ok(()), |_| none())
    }

    fn random_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        buf: GuestPtr<u8>,
        buf_len: types::Size,
    ) -> R<()> {
        if let Err(e) = self.core.random_len("random_get", buf_len.into()) {
            return self.done("random_get", scalar(buf_len.into()), Err(stop(e)), |_| {
                none()
            });
        }
        let r = self.wasi.random_get(mem, buf, buf_len);
        let digest = if r.is_ok() {
            bytes_at(mem, buf, buf_len)
        } else {
            none()
        };
        self.done("random_get", scalar(buf_len.into()), r, |_| digest)
    }

    fn sock_accept(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        flags: types::Fdflags,
    ) -> R<types::Fd> {
        let r = self.wasi.sock_accept(mem, fd, flags);
        self.socket("sock_accept", scalar(fdv(fd)), r)
    }

    fn sock_recv(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        ri_data: types::IovecArray,
        ri_flags: types::Riflags,
    ) -> R<(types::Size, types::Roflags)> {
        let r = self.wasi.sock_recv(mem, fd, ri_data, ri_flags);
        self.socket("sock_recv", scalar(fdv(fd)), r)
    }

    fn sock_send(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        si_data: types::CiovecArray,
        si_flags: types::Siflags,
    ) -> R<types::Size> {
        let r = self.wasi.sock_send(mem, fd, si_data, si_flags);
        self.socket("sock_send", scalar(fdv(fd)), r)
    }

    fn sock_shutdown(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        how: types::Sdflags,
    ) -> R<()> {
        let r = self.wasi.sock_shutdown(mem, fd, how);
        self.socket("sock_shutdown", scalar(fdv(fd)), r)
    }
}

/// Resolves `*_set_times` arguments to the new (atime, mtime), `None` meaning unchanged.
fn times_of(
    atim: u64,
    mtim: u64,
    flags: types::Fstflags,
    now: u64,
) -> R<(Option<u64>, Option<u64>)> {
    use types::Fstflags as F;
    if (flags.contains(F::ATIM) && flags.contains(F::ATIM_NOW))
        || (flags.contains(F::MTIM) && flags.contains(F::MTIM_NOW))
    {
        return Err(Errno::Inval.into());
    }
    let a = if flags.contains(F::ATIM_NOW) {
        Some(now)
    } else if flags.contains(F::ATIM) {
        Some(atim)
    } else {
        None
    };
    let m = if flags.contains(F::MTIM_NOW) {
        Some(now)
    } else if flags.contains(F::MTIM) {
        Some(mtim)
    } else {
        None
    };
    Ok((a, m))
}

impl Gate {
    /// `poll_oneoff` on virtual time: descriptors are always ready (stdin is in memory,
    /// output is captured, files never block); if none was asked for, virtual time jumps to
    /// the earliest clock deadline and those clocks fire. Never sleeps.
    fn poll_virtual(
        &mut self,
        mem: &mut GuestMemory<'_>,
        subs: GuestPtr<types::Subscription>,
        events: GuestPtr<types::Event>,
        n: types::Size,
    ) -> R<(types::Size, Digest)> {
        if n == 0 {
            return Err(Errno::Inval.into());
        }
        let clock = self.core.clock.clone();
        let now = clock.mono_peek();
        let mut clocks: Vec<(u64, u64)> = Vec::new(); // (userdata, mono deadline)
        let mut fd_events: Vec<types::Event> = Vec::new();
        for i in 0..n {
            let sub = mem.read(subs.add(i)?)?;
            let is_read = matches!(sub.u, types::SubscriptionU::FdRead(_));
            match sub.u {
                types::SubscriptionU::Clock(c) => {
                    let abs = c
                        .flags
                        .contains(types::Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME);
                    let deadline = match (c.id, abs) {
                        (_, false) => now.saturating_add(c.timeout),
                        (types::Clockid::Monotonic, true) => c.timeout,
                        (types::Clockid::Realtime, true) => c
                            .timeout
                            .saturating_sub(clock.epoch_ns())
                            .saturating_add(MONO_START_NS),
                        (_, true) => now.saturating_add(c.timeout.saturating_sub(clock.cpu_now())),
                    };
                    clocks.push((sub.userdata, deadline));
                }
                types::SubscriptionU::FdRead(f) | types::SubscriptionU::FdWrite(f) => {
                    let type_ = if is_read {
                        types::Eventtype::FdRead
                    } else {
                        types::Eventtype::FdWrite
                    };
                    let (error, nbytes) = match self.fd_info(f.file_descriptor) {
                        None => (Errno::Badf, 0),
                        Some(i) => match (i.kind, is_read) {
                            (FdKind::Stdin, true) => (Errno::Success, self.core.stdin_remaining),
                            (FdKind::Stdout | FdKind::Stderr, false) => (Errno::Success, 0),
                            (FdKind::File, _) => (Errno::Success, 0),
                            _ => (Errno::Badf, 0),
                        },
                    };
                    fd_events.push(types::Event {
                        userdata: sub.userdata,
                        error,
                        type_,
                        fd_readwrite: types::EventFdReadwrite {
                            nbytes,
                            flags: types::Eventrwflags::empty(),
                        },
                    });
                }
            }
        }
        let fire_at = if fd_events.is_empty() {
            let earliest = clocks.iter().map(|(_, d)| *d).min().unwrap_or(now);
            clock.sleep_until(earliest);
            earliest.max(now)
        } else {
            now
        };
        let mut out = fd_events;
        for (userdata, deadline) in clocks {
            if deadline <= fire_at {
                out.push(types::Event {
                    userdata,
                    error: Errno::Success,
                    type_: types::Eventtype::Clock,
                    fd_readwrite: types::EventFdReadwrite {
                        nbytes: 0,
                        flags: types::Eventrwflags::empty(),
                    },
                });
            }
        }
        let mut d = Dig::new();
        for (i, ev) in out.iter().enumerate() {
            mem.write(events.add(i as u32)?, ev.clone())?;
            d = d
                .u64(ev.userdata)
                .u64(ev.error as u64)
                .u64(ev.type_ as u64)
                .u64(ev.fd_readwrite.nbytes);
        }
        Ok((out.len() as u32, d.finish()))
    }
}
