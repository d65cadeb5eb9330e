//! WASI preview 1 through the gate.
//!
//! `Gate` implements wasmtime-wasi's generated `WasiSnapshotPreview1` trait. Every method
//! records an audit event; most delegate to `WasiP1Ctx`; the ones that would expose the host
//! or break determinism are replaced here (clocks, `poll_oneoff`, `fd_readdir`, stat results,
//! `*_set_times`, `fd_sync`/`fd_datasync`, `sched_yield`), and the ones that consume disk or
//! descriptors are metered first.

use wasmtime_wasi::p1::types::{self, Errno, Error};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wiggle::{GuestMemory, GuestPtr};

use super::audit::{Dig, Digest, ERRNO_TRAP};
use super::clock::{MONO_START_NS, RESOLUTION_NS};
use super::{DirEntry, FdInfo, FdKind, Gate, GateStop, RunState, WritePlan};

type R<T> = Result<T, Error>;

/// Registers the gate's `wasi_snapshot_preview1` functions.
pub(crate) fn add_to_linker(linker: &mut wasmtime::Linker<RunState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::wasi_snapshot_preview1::add_to_linker(linker, |s: &mut RunState| &mut s.gate)
}

fn errno_of(e: &Error) -> u16 {
    e.downcast_ref().map_or(ERRNO_TRAP, |e: &Errno| *e as u16)
}

fn is_denial(func: &str, errno: u16) -> bool {
    func.starts_with("sock_")
        || errno == Errno::Perm as u16
        || errno == Errno::Notcapable as u16
        || errno == Errno::Acces as u16
}

fn stop(kind: GateStop) -> Error {
    Error::trap(wasmtime::Error::new(kind))
}

/// Digest of the bytes referenced by an iovec array, up to `limit` bytes in all.
fn iovs_digest(mem: &GuestMemory<'_>, iovs: types::IovecArray, limit: Option<u64>) -> Digest {
    let mut d = Dig::new();
    let mut left = limit.unwrap_or(u64::MAX);
    for iov in iovs.iter() {
        let Ok(iov) = iov.and_then(|p| mem.read(p)) else {
            return Dig::new().bytes(b"<bad iovec>").finish();
        };
        let take = u64::from(iov.buf_len).min(left);
        let Ok(bytes) = mem.as_cow(iov.buf.as_array(take as u32)) else {
            return Dig::new().bytes(b"<bad iovec>").finish();
        };
        d.raw(&bytes);
        left -= take;
        if left == 0 {
            break;
        }
    }
    d.finish()
}

fn ciovs_digest(mem: &GuestMemory<'_>, iovs: types::CiovecArray) -> Digest {
    let mut d = Dig::new();
    for iov in iovs.iter() {
        let Ok(iov) = iov.and_then(|p| mem.read(p)) else {
            return Dig::new().bytes(b"<bad iovec>").finish();
        };
        let Ok(bytes) = mem.as_cow(iov.buf.as_array(iov.buf_len)) else {
            return Dig::new().bytes(b"<bad iovec>").finish();
        };
        d.raw(&bytes);
    }
    d.finish()
}

/// Length of the first non-empty ciovec: what wasmtime-wasi writes in one `fd_write`.
fn first_write_len(mem: &GuestMemory<'_>, iovs: types::CiovecArray) -> u64 {
    for iov in iovs.iter() {
        if let Ok(iov) = iov.and_then(|p| mem.read(p))
            && iov.buf_len > 0
        {
            return u64::from(iov.buf_len);
        }
    }
    0
}

/// Refuses paths longer than [`MAX_PATH_BYTES`](super::MAX_PATH_BYTES) before the host sees
/// them (so the answer does not depend on the host's path resolver).
fn too_long(p: GuestPtr<str>) -> bool {
    p.len() as usize > super::MAX_PATH_BYTES
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

impl Gate {
    /// Records the call and applies the denial policy.
    fn done<T>(
        &mut self,
        func: &'static str,
        args: Digest,
        r: R<T>,
        result: impl FnOnce(&T) -> Digest,
    ) -> R<T> {
        let (errno, rd) = match &r {
            Ok(v) => (0, result(v)),
            Err(e) => (errno_of(e), none()),
        };
        let denied = errno != 0 && errno != ERRNO_TRAP && is_denial(func, errno);
        match self.core.record(func, args, errno, rd, denied) {
            Some(stop_run) => Err(stop(stop_run)),
            None => r,
        }
    }

    /// Refuses (and records) a call with a path longer than
    /// [`MAX_PATH_BYTES`](super::MAX_PATH_BYTES), before the host sees it.
    fn path_too_long<T>(
        &mut self,
        func: &'static str,
        args: Digest,
        paths: &[GuestPtr<str>],
    ) -> Option<R<T>> {
        paths
            .iter()
            .any(|p| too_long(*p))
            .then(|| self.done(func, args, Err(Errno::Nametoolong.into()), |_| none()))
    }

    fn fd_info(&self, fd: types::Fd) -> Option<FdInfo> {
        self.core.fds.get(&u32::from(fd)).copied()
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

    /// Does `path` exist (without following a final symlink)?
    async fn exists(
        &mut self,
        dirfd: types::Fd,
        path: GuestPtr<str>,
        mem: &mut GuestMemory<'_>,
    ) -> bool {
        self.wasi
            .path_filestat_get(mem, dirfd, types::Lookupflags::empty(), path)
            .await
            .is_ok()
    }

    /// Checks the file-creation quota before a call that creates `path` under `dirfd`.
    /// Returns `Some(err)` when the call must fail with `nospc`.
    async fn creation_blocked(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> Option<Error> {
        let q = self.core.quota;
        if q.fs_files_used < q.fs_files_max {
            return None;
        }
        let writable = self
            .fd_info(dirfd)
            .is_some_and(|i| i.kind == FdKind::Dir && i.dir_writable);
        if !writable || self.exists(dirfd, path, mem).await {
            return None; // the call fails (or creates nothing) on its own terms
        }
        (!self.core.create_fits()).then(|| Errno::Nospc.into())
    }

    /// Where a write through `fd` will land (`offset` for `fd_pwrite`): `None` for
    /// anything but a writable file.
    fn write_plan(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        offset: Option<u64>,
    ) -> Option<WritePlan> {
        let info = self.fd_info(fd)?;
        if info.kind != FdKind::File || !info.file_writable {
            return None;
        }
        let file_id = info.file_id?;
        let size = *self.core.sizes.get(&file_id)?;
        let start = if info.append {
            size
        } else {
            match offset {
                Some(o) => o,
                None => self.wasi.fd_tell(mem, fd).ok()?,
            }
        };
        Some(WritePlan {
            file_id,
            start,
            size,
        })
    }

    /// Checks the byte quota before a write of `len` bytes following `plan`.
    fn bytes_blocked(&mut self, plan: Option<WritePlan>, len: u64) -> Option<Error> {
        let plan = plan?;
        (!self.core.write_fits(plan.charge(len))).then(|| Errno::Nospc.into())
    }

    /// Reads the whole directory behind `fd` through wasmtime-wasi into host memory, then
    /// sorts it by name and assigns synthetic inodes.
    async fn listing(&mut self, fd: types::Fd) -> R<Vec<DirEntry>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut entries: Vec<DirEntry> = Vec::new();
        let mut cookie: u64 = 0;
        loop {
            let len = buf.len() as u32;
            let used = {
                let mut host = GuestMemory::Unshared(&mut buf);
                self.wasi
                    .fd_readdir(&mut host, fd, GuestPtr::new(0), len, cookie)
                    .await?
            } as usize;
            let mut off = 0;
            let mut progressed = false;
            while off + DIRENT_SIZE <= used {
                let h = &buf[off..off + DIRENT_SIZE];
                let next = u64::from_le_bytes(h[0..8].try_into().unwrap_or_default());
                let ino = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
                let namlen = u32::from_le_bytes(h[16..20].try_into().unwrap_or_default()) as usize;
                let ft = h[20];
                if off + DIRENT_SIZE + namlen > used {
                    break; // truncated entry: fetch again from its cookie
                }
                let name = buf[off + DIRENT_SIZE..off + DIRENT_SIZE + namlen].to_vec();
                entries.push(DirEntry {
                    ino,
                    filetype: ft,
                    name,
                });
                cookie = next;
                progressed = true;
                off += DIRENT_SIZE + namlen;
            }
            if used < buf.len() {
                break;
            }
            if !progressed {
                // One entry larger than the buffer cannot happen (names are ≤ 4 KiB).
                return Err(Errno::Nametoolong.into());
            }
        }
        let (mut dots, mut rest): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|e| e.name == b"." || e.name == b"..");
        dots.sort_by(|a, b| a.name.cmp(&b.name));
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        dots.extend(rest);
        for e in &mut dots {
            e.ino = self.core.meta.inode(e.ino);
        }
        Ok(dots)
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
            self.core.quota.open_now = self.core.quota.open_now.saturating_sub(1);
        }
        self.core.listings.remove(&u32::from(fd));
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
        let growth = size.saturating_sub(current);
        let writable = self
            .fd_info(fd)
            .is_some_and(|i| i.kind == FdKind::File && i.file_writable);
        if growth > 0 && writable && !self.core.write_fits(growth) {
            let e = Errno::Nospc.into();
            return self.done("fd_filestat_set_size", args, Err(e), |_| none());
        }
        let r = self.wasi.fd_filestat_set_size(mem, fd, size).await;
        if r.is_ok() {
            self.core.charge_write(growth);
            self.core.sizes.insert(id, size);
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
        let r = self.wasi.fd_read(mem, fd, iovs).await;
        if let Ok(n) = &r
            && self.fd_info(fd).is_some_and(|i| i.kind == FdKind::Stdin)
        {
            self.core.stdin_remaining = self.core.stdin_remaining.saturating_sub((*n).into());
        }
        let digest = match &r {
            Ok(n) => Dig::new()
                .u64((*n).into())
                .bytes(&iovs_digest(mem, iovs, Some((*n).into())).0)
                .finish(),
            Err(_) => none(),
        };
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
        let r = self.wasi.fd_pread(mem, fd, iovs, offset).await;
        let digest = match &r {
            Ok(n) => Dig::new()
                .u64((*n).into())
                .bytes(&iovs_digest(mem, iovs, Some((*n).into())).0)
                .finish(),
            Err(_) => none(),
        };
        self.done("fd_pread", args, r, |_| digest)
    }

    async fn fd_write(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        ciovs: types::CiovecArray,
    ) -> R<types::Size> {
        let args = Dig::new()
            .u64(fdv(fd))
            .bytes(&ciovs_digest(mem, ciovs).0)
            .finish();
        let plan = self.write_plan(mem, fd, None);
        if let Some(e) = self.bytes_blocked(plan, first_write_len(mem, ciovs)) {
            return self.done("fd_write", args, Err(e), |_| none());
        }
        let r = self.wasi.fd_write(mem, fd, ciovs).await;
        if let (Ok(n), Some(plan)) = (&r, plan) {
            self.core.after_write(plan, (*n).into());
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
        let args = Dig::new()
            .u64(fdv(fd))
            .u64(offset)
            .bytes(&ciovs_digest(mem, ciovs).0)
            .finish();
        let plan = self.write_plan(mem, fd, Some(offset));
        if let Some(e) = self.bytes_blocked(plan, first_write_len(mem, ciovs)) {
            return self.done("fd_pwrite", args, Err(e), |_| none());
        }
        let r = self.wasi.fd_pwrite(mem, fd, ciovs, offset).await;
        if let (Ok(n), Some(plan)) = (&r, plan) {
            self.core.after_write(plan, (*n).into());
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
        let r = self.wasi.fd_prestat_dir_name(mem, fd, path, path_max_len);
        let digest = if r.is_ok() {
            bytes_at(mem, path, path_max_len)
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
                self.core.quota.open_now = self.core.quota.open_now.saturating_sub(1);
            }
            if let Some(info) = self.core.fds.remove(&from) {
                self.core.fds.insert(to, info);
            }
            self.core.listings.remove(&from);
            self.core.listings.remove(&to);
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
        let key = u32::from(fd);
        if cookie == 0 || !self.core.listings.contains_key(&key) {
            match self.listing(fd).await {
                Ok(l) => {
                    self.core.listings.insert(key, l);
                }
                Err(e) => return self.done("fd_readdir", args, Err(e), |_| none()),
            }
        }
        let mut out: Vec<u8> = Vec::new();
        let cap = buf_len as usize;
        if let Some(entries) = self.core.listings.get(&key) {
            let start = usize::try_from(cookie).unwrap_or(usize::MAX);
            for (i, e) in entries.iter().enumerate().skip(start) {
                if out.len() >= cap {
                    break;
                }
                let mut h = [0u8; DIRENT_SIZE];
                h[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                h[8..16].copy_from_slice(&e.ino.to_le_bytes());
                h[16..20].copy_from_slice(&(e.name.len() as u32).to_le_bytes());
                h[20] = e.filetype;
                out.extend_from_slice(&h);
                out.extend_from_slice(&e.name);
            }
        }
        out.truncate(cap);
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
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&path_bytes(mem, path))
            .finish();
        if let Some(r) = self.path_too_long("path_create_directory", args, &[path]) {
            return r;
        }
        if let Some(e) = self.creation_blocked(mem, dirfd, path).await {
            return self.done("path_create_directory", args, Err(e), |_| none());
        }
        let r = self.wasi.path_create_directory(mem, dirfd, path).await;
        if r.is_ok() {
            self.core.charge_create();
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
        let args = Dig::new()
            .u64(fdv(dirfd))
            .u64(flags.bits().into())
            .bytes(&path_bytes(mem, path))
            .finish();
        if let Some(r) = self.path_too_long("path_filestat_get", args, &[path]) {
            return r;
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
        let args = Dig::new()
            .u64(fdv(dirfd))
            .u64(flags.bits().into())
            .bytes(&path_bytes(mem, path))
            .u64(atim)
            .u64(mtim)
            .u64(fst.bits().into())
            .finish();
        if let Some(r) = self.path_too_long("path_filestat_set_times", args, &[path]) {
            return r;
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
        let args = Dig::new()
            .u64(fdv(src_fd))
            .u64(src_flags.bits().into())
            .bytes(&path_bytes(mem, src_path))
            .u64(fdv(target_fd))
            .bytes(&path_bytes(mem, target_path))
            .finish();
        if let Some(r) = self.path_too_long("path_link", args, &[src_path, target_path]) {
            return r;
        }
        if let Some(e) = self.creation_blocked(mem, target_fd, target_path).await {
            return self.done("path_link", args, Err(e), |_| none());
        }
        let r = self
            .wasi
            .path_link(mem, src_fd, src_flags, src_path, target_fd, target_path)
            .await;
        if r.is_ok() {
            self.core.charge_create();
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
        let args = Dig::new()
            .u64(fdv(dirfd))
            .u64(dirflags.bits().into())
            .bytes(&path_bytes(mem, path))
            .u64(oflags.bits().into())
            .u64(base.bits())
            .u64(inheriting.bits())
            .u64(fdflags.bits().into())
            .finish();
        if let Some(r) = self.path_too_long("path_open", args, &[path]) {
            return r;
        }
        if !self.core.open_fits() {
            return self.done("path_open", args, Err(Errno::Mfile.into()), |_| none());
        }
        let creating = oflags.contains(types::Oflags::CREAT);
        let mut created = false;
        if creating {
            let existed = self
                .wasi
                .path_filestat_get(mem, dirfd, dirflags, path)
                .await
                .is_ok();
            if !existed {
                if let Some(e) = self.creation_blocked(mem, dirfd, path).await {
                    return self.done("path_open", args, Err(e), |_| none());
                }
                created = true;
            }
        }
        let r = self
            .wasi
            .path_open(
                mem, dirfd, dirflags, path, oflags, base, inheriting, fdflags,
            )
            .await;
        if let Ok(new_fd) = &r {
            if created {
                self.core.charge_create();
            }
            let dir_writable = self.fd_info(dirfd).is_some_and(|i| i.dir_writable);
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
                self.core.sizes.insert(st.ino, st.size);
                file_id = Some(st.ino);
            }
            self.core.fds.insert(
                u32::from(*new_fd),
                FdInfo {
                    kind,
                    dir_writable,
                    file_writable,
                    guest_opened: true,
                    file_id,
                    append: fdflags.contains(types::Fdflags::APPEND),
                },
            );
            self.core.listings.remove(&u32::from(*new_fd));
            self.core.quota.open_now += 1;
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
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&path_bytes(mem, path))
            .u64(buf_len.into())
            .finish();
        if let Some(r) = self.path_too_long("path_readlink", args, &[path]) {
            return r;
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
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&path_bytes(mem, path))
            .finish();
        if let Some(r) = self.path_too_long("path_remove_directory", args, &[path]) {
            return r;
        }
        let r = self.wasi.path_remove_directory(mem, dirfd, path).await;
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
        let args = Dig::new()
            .u64(fdv(src_fd))
            .bytes(&path_bytes(mem, src_path))
            .u64(fdv(dest_fd))
            .bytes(&path_bytes(mem, dest_path))
            .finish();
        if let Some(r) = self.path_too_long("path_rename", args, &[src_path, dest_path]) {
            return r;
        }
        let r = self
            .wasi
            .path_rename(mem, src_fd, src_path, dest_fd, dest_path)
            .await;
        self.done("path_rename", args, r, |_| none())
    }

    async fn path_symlink(
        &mut self,
        mem: &mut GuestMemory<'_>,
        src_path: GuestPtr<str>,
        dirfd: types::Fd,
        dest_path: GuestPtr<str>,
    ) -> R<()> {
        let args = Dig::new()
            .bytes(&path_bytes(mem, src_path))
            .u64(fdv(dirfd))
            .bytes(&path_bytes(mem, dest_path))
            .finish();
        if let Some(r) = self.path_too_long("path_symlink", args, &[src_path, dest_path]) {
            return r;
        }
        if let Some(e) = self.creation_blocked(mem, dirfd, dest_path).await {
            return self.done("path_symlink", args, Err(e), |_| none());
        }
        let r = self
            .wasi
            .path_symlink(mem, src_path, dirfd, dest_path)
            .await;
        if r.is_ok() {
            self.core.charge_create();
        }
        self.done("path_symlink", args, r, |_| none())
    }

    async fn path_unlink_file(
        &mut self,
        mem: &mut GuestMemory<'_>,
        dirfd: types::Fd,
        path: GuestPtr<str>,
    ) -> R<()> {
        let args = Dig::new()
            .u64(fdv(dirfd))
            .bytes(&path_bytes(mem, path))
            .finish();
        if let Some(r) = self.path_too_long("path_unlink_file", args, &[path]) {
            return r;
        }
        let r = self.wasi.path_unlink_file(mem, dirfd, path).await;
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
        self.core.record(
            "proc_exit",
            scalar(status.into()),
            ERRNO_TRAP,
            none(),
            false,
        );
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
        if u64::from(buf_len) > super::wasi::MAX_RANDOM_BYTES {
            let r = Err(stop(GateStop::BadHostCall(format!(
                "random_get of {buf_len} bytes (at most {} per call)",
                super::wasi::MAX_RANDOM_BYTES
            ))));
            return self.done("random_get", scalar(buf_len.into()), r, |_| none());
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
        self.done("sock_accept", scalar(fdv(fd)), r, |fd| scalar(fdv(*fd)))
    }

    fn sock_recv(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        ri_data: types::IovecArray,
        ri_flags: types::Riflags,
    ) -> R<(types::Size, types::Roflags)> {
        let r = self.wasi.sock_recv(mem, fd, ri_data, ri_flags);
        self.done("sock_recv", scalar(fdv(fd)), r, |(n, _)| {
            scalar((*n).into())
        })
    }

    fn sock_send(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        si_data: types::CiovecArray,
        si_flags: types::Siflags,
    ) -> R<types::Size> {
        let r = self.wasi.sock_send(mem, fd, si_data, si_flags);
        self.done("sock_send", scalar(fdv(fd)), r, |n| scalar((*n).into()))
    }

    fn sock_shutdown(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: types::Fd,
        how: types::Sdflags,
    ) -> R<()> {
        let r = self.wasi.sock_shutdown(mem, fd, how);
        self.done("sock_shutdown", scalar(fdv(fd)), r, |_| none())
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
