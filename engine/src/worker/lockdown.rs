//! How a worker process locks itself down, irreversibly, before it accepts work.
//!
//! In order, while the process is still single-threaded (namespaces, Landlock and seccomp
//! apply to the calling thread and are inherited by threads created afterwards):
//!
//! 1. `PR_SET_PDEATHSIG(SIGKILL)`: the worker dies with its supervisor;
//!    `PR_SET_DUMPABLE(0)`: no core dumps, no `ptrace` attach by other processes of the user;
//! 2. rlimits: no core files (`RLIMIT_CORE` 0), open files, file size (a second bound behind
//!    the gate's quotas; `SIGXFSZ` ignored so a write fails instead of killing the worker),
//!    address space (the engine's reservation plus headroom);
//! 3. `unshare(CLONE_NEWNET)`: a network namespace with only a down loopback (needs
//!    `CAP_SYS_ADMIN`; without it the seccomp filter still refuses every socket);
//! 4. `PR_SET_NO_NEW_PRIVS`;
//! 5. Landlock: read-only below the cache (precompiled artifacts, runners) and read-only
//!    grants; read-write (no exec, no device, socket or FIFO creation) below the worker's own
//!    root and read-write grants; nothing else; TCP bind/connect denied; signals and abstract
//!    unix sockets scoped to the worker;
//! 6. seccomp: an allow-list of the system calls a worker needs (see [`ALLOWED`] for how it
//!    was derived); `socket`, `connect`, `execve`, `fork`, `ptrace`, … are refused with
//!    `EPERM`, foreign architectures kill the process.
//!
//! The worker's engine is created before all this (no thread, no guest input yet), so that
//! the address-space rlimit can be sized to the pool it reserved up front. Each wall that the kernel does not offer is skipped and reported
//! as down in [`Walls`]; a policy can require walls (`[isolation] require`).

#![expect(
    unsafe_code,
    reason = "the lock-down is made of raw syscalls: prctl, setrlimit, unshare, signal"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use landlock::{ABI, AccessFs, BitFlags, PathBeneath, PathFd, RulesetCreatedAttr, RulesetStatus};

use crate::confine;

use super::Walls;

/// What a worker may touch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Readable (not writable, not executable) directory trees.
    pub read_only: Vec<PathBuf>,
    /// Readable and writable directory trees (no exec, no device/socket/FIFO creation).
    pub read_write: Vec<PathBuf>,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// `RLIMIT_FSIZE`: the largest file the worker may write.
    pub file_size: u64,
    /// `RLIMIT_AS`: what the process has mapped before lock-down (the engine's pool is
    /// reserved up front) plus headroom for the heap, module code and stacks.
    pub address_space: Option<u64>,
}

/// Test builds only: start workers without the seccomp filter, so that a syscall trace sees
/// everything they do (how [`ALLOWED`] is derived).
pub(crate) const NO_SECCOMP_FOR_TRACE: &str = "CORRAL_WORKER_TRACE_NO_SECCOMP";

fn check(r: libc::c_int, what: &str) -> Result<(), String> {
    if r < 0 {
        Err(format!("{what}: {}", std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> Result<(), String> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `lim` is a valid rlimit.
    check(unsafe { libc::setrlimit(resource, &lim) }, "setrlimit")
}

/// Applies every wall it can, in the order of the module documentation. Must be called
/// while the process has a single thread. Fails only if a wall that the kernel offers
/// cannot be raised (then the worker must not accept work).
pub(crate) fn apply(plan: &Plan) -> Result<Walls, String> {
    let mut walls = Walls {
        process: true,
        ..Walls::default()
    };
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    check(r, "PR_SET_PDEATHSIG")?;
    // The parent may have died before the line above: then nobody would kill us.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        return Err("the supervisor is gone".into());
    }
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    check(r, "PR_SET_DUMPABLE")?;
    set_rlimit(libc::RLIMIT_CORE, 0)?;
    set_rlimit(libc::RLIMIT_NOFILE, plan.open_files)?;
    set_rlimit(libc::RLIMIT_FSIZE, plan.file_size)?;
    if let Some(a) = plan.address_space {
        set_rlimit(libc::RLIMIT_AS, a)?;
    }
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    walls.rlimits = plan.address_space.is_some();
    // SAFETY: unshare takes flags only; the process is single-threaded.
    walls.netns = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(r, "PR_SET_NO_NEW_PRIVS")?;
    walls.no_new_privs = true;
    walls.landlock = landlock(plan)?;
    // Deriving the allow-list: a test build traces a worker without the filter (see
    // `scripts/worker-syscalls.sh`); release builds always install it.
    let tracing = cfg!(all(feature = "test-hooks", debug_assertions))
        && std::env::var_os(NO_SECCOMP_FOR_TRACE).is_some();
    walls.seccomp = if tracing { false } else { seccomp()? };
    Ok(walls)
}

/// Enforces the Landlock ruleset; returns the ABI it was enforced with (0: not at all).
fn landlock(plan: &Plan) -> Result<u8, String> {
    let err = |e: &dyn std::fmt::Display| format!("landlock: {e}");
    let abi = ABI::V6;
    let write_access = confine::writable_without_exec(abi);
    let read_access: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
    let mut ruleset = confine::deny_all_ruleset(abi).map_err(|e| err(&e))?;
    let rules = plan
        .read_only
        .iter()
        .map(|p| (p, read_access))
        .chain(plan.read_write.iter().map(|p| (p, write_access)));
    for (path, access) in rules {
        let Ok(fd) = PathFd::new(path) else {
            continue; // a path that does not exist grants nothing
        };
        let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(abi)
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| err(&format!("{}: {e}", path.display())))?;
    }
    let status = ruleset.restrict_self().map_err(|e| err(&e))?;
    Ok(match status.ruleset {
        RulesetStatus::NotEnforced => 0,
        _ => landlock_abi(),
    })
}

/// The Landlock ABI version the kernel offers (0 without Landlock).
fn landlock_abi() -> u8 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset(NULL, 0, VERSION) only returns the ABI version or -1.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u8::try_from(v).unwrap_or(0)
}

/// The system calls a worker may make after lock-down.
///
/// Derived from a trace, not guessed: `scripts/worker-syscalls.sh` runs the worker tests and
/// the fixture suite (whose second run of every fixture happens in a worker) with every
/// worker under `strace -f` and without this filter, and prints what the workers called after
/// their lock-down (on 2026-12-06: the 43 calls marked `traced` below, over 236 workers and
/// 434 threads). The rest are calls the gate makes for guest file operations the fixtures do
/// not all reach in a worker (vectored, positioned and sized I/O, `fsync`, `fallocate`,
/// `utimensat`, `linkat`, …) and calls of the standard library on paths the suite may not take
/// (`sched_yield`, `clock_gettime` without the vDSO, the older path calls of std on x86-64).
/// Everything else — `socket`, `connect`, `bind`, `execve`, `fork`, `vfork`, `ptrace`, `mount`,
/// `unshare`, `setns`, `kill`, `process_vm_*`, `bpf`, `perf_event_open`, `io_uring_*`,
/// `ioctl`, `keyctl`, `userfaultfd`, … — fails with `EPERM`.
#[cfg(target_arch = "x86_64")]
const ALLOWED: &[(libc::c_long, &str)] = &[
    // traced
    (libc::SYS_brk, "brk"),
    (libc::SYS_clock_nanosleep, "clock_nanosleep"),
    (libc::SYS_close, "close"),
    (libc::SYS_exit, "exit"),
    (libc::SYS_exit_group, "exit_group"),
    (libc::SYS_fcntl, "fcntl"),
    (libc::SYS_futex, "futex"),
    (libc::SYS_getdents64, "getdents64"),
    (libc::SYS_geteuid, "geteuid"),
    (libc::SYS_getpid, "getpid"),
    (libc::SYS_getrandom, "getrandom"),
    (libc::SYS_gettid, "gettid"),
    (libc::SYS_landlock_create_ruleset, "landlock_create_ruleset"),
    (libc::SYS_madvise, "madvise"),
    (libc::SYS_mkdir, "mkdir"),
    (libc::SYS_mkdirat, "mkdirat"),
    (libc::SYS_mmap, "mmap"),
    (libc::SYS_mprotect, "mprotect"),
    (libc::SYS_mremap, "mremap"),
    (libc::SYS_munmap, "munmap"),
    (libc::SYS_newfstatat, "newfstatat"),
    (libc::SYS_openat, "openat"),
    (libc::SYS_openat2, "openat2"),
    (libc::SYS_prctl, "prctl"),
    (libc::SYS_pread64, "pread64"),
    (libc::SYS_pwrite64, "pwrite64"),
    (libc::SYS_pwritev2, "pwritev2"),
    (libc::SYS_read, "read"),
    (libc::SYS_readlink, "readlink"),
    (libc::SYS_readlinkat, "readlinkat"),
    (libc::SYS_renameat, "renameat"),
    (libc::SYS_rseq, "rseq"),
    (libc::SYS_rt_sigaction, "rt_sigaction"),
    (libc::SYS_rt_sigprocmask, "rt_sigprocmask"),
    (libc::SYS_rt_sigreturn, "rt_sigreturn"),
    (libc::SYS_sched_getaffinity, "sched_getaffinity"),
    (libc::SYS_set_robust_list, "set_robust_list"),
    (libc::SYS_sigaltstack, "sigaltstack"),
    (libc::SYS_statx, "statx"),
    (libc::SYS_symlinkat, "symlinkat"),
    (libc::SYS_tgkill, "tgkill"),
    (libc::SYS_unlinkat, "unlinkat"),
    (libc::SYS_write, "write"),
    // guest file operations through the gate
    (libc::SYS_readv, "readv"),
    (libc::SYS_writev, "writev"),
    (libc::SYS_preadv, "preadv"),
    (libc::SYS_pwritev, "pwritev"),
    (libc::SYS_preadv2, "preadv2"),
    (libc::SYS_lseek, "lseek"),
    (libc::SYS_fstat, "fstat"),
    (libc::SYS_renameat2, "renameat2"),
    (libc::SYS_linkat, "linkat"),
    (libc::SYS_fchmod, "fchmod"),
    (libc::SYS_fchmodat, "fchmodat"),
    (libc::SYS_utimensat, "utimensat"),
    (libc::SYS_ftruncate, "ftruncate"),
    (libc::SYS_fallocate, "fallocate"),
    (libc::SYS_fsync, "fsync"),
    (libc::SYS_fdatasync, "fdatasync"),
    (libc::SYS_fadvise64, "fadvise64"),
    // the standard library and wasmtime on other paths
    (libc::SYS_rmdir, "rmdir"),
    (libc::SYS_unlink, "unlink"),
    (libc::SYS_rename, "rename"),
    (libc::SYS_access, "access"),
    (libc::SYS_faccessat, "faccessat"),
    (libc::SYS_faccessat2, "faccessat2"),
    (libc::SYS_getcwd, "getcwd"),
    (libc::SYS_sched_yield, "sched_yield"),
    (libc::SYS_clock_gettime, "clock_gettime"),
    (libc::SYS_memfd_create, "memfd_create"),
    // Installing the second filter below needs it; filters can only be added, each one
    // tightening what the process may do, never loosened or removed.
    (libc::SYS_seccomp, "seccomp"),
];

/// Installs the allow-list ([`ALLOWED`], plus `clone` for threads only; `clone3` answers
/// `ENOSYS` so that libc falls back to `clone`, whose flags the filter can see). Anything
/// else fails with `EPERM`; a foreign architecture kills the process.
#[cfg(target_arch = "x86_64")]
fn seccomp() -> Result<bool, String> {
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    let err = |e: &dyn std::fmt::Display| format!("seccomp: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|(nr, _)| (*nr, Vec::new())).collect();
    let thread_only = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
        libc::CLONE_THREAD as u64,
    )
    .map_err(|e| err(&e))?;
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![thread_only]).map_err(|e| err(&e))?],
    );
    let allow = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| err(&e))?;
    let allow: seccompiler::BpfProgram = allow.try_into().map_err(|e| err(&e))?;
    // clone3 passes its flags in memory a filter cannot read: answering ENOSYS makes libc fall
    // back to clone, whose flags the allow-list checks. A second filter, evaluated first (the
    // newest filter's answer wins among equal actions), says so.
    let no_clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| err(&e))?;
    let no_clone3: seccompiler::BpfProgram = no_clone3.try_into().map_err(|e| err(&e))?;
    seccompiler::apply_filter(&allow).map_err(|e| err(&e))?;
    seccompiler::apply_filter(&no_clone3).map_err(|e| err(&e))?;
    Ok(true)
}

#[cfg(not(target_arch = "x86_64"))]
fn seccomp() -> Result<bool, String> {
    // The allow-list is measured on x86-64 only; elsewhere the wall is reported as down.
    Ok(false)
}

/// Bytes of address space this process has mapped now (`VmSize`), read before lock-down
/// (Landlock hides `/proc` afterwards).
pub(crate) fn mapped_now() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?;
    Some(kib * 1024)
}
