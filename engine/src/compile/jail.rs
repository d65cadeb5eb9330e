//! Runs a host compiler (`rustc`, `clang`) inside an OS jail (threat catalogue CT-01..CT-07).
//!
//! The compile step reads untrusted source with a host program, so the program must not be
//! able to read host files (`include_str!("/etc/passwd")`, `#include "/etc/shadow"`,
//! `.incbin`), read the engine's environment (`env!("SECRET")`), reach the network, or use
//! unbounded CPU, memory, disk or output.
//!
//! Two mechanisms; [`Mechanism::Auto`] picks the first that works here ([`probe`]):
//!
//! * [`Mechanism::Landlock`] (Landlock ABI >= 1 and user namespaces). Between `fork` and
//!   `exec` the child: starts a new session (`setsid`); optionally joins a per-run pids cgroup;
//!   sets rlimits (`CPU`, `AS`, `FSIZE`, `CORE`=0, `NOFILE`, `MEMLOCK`=0);
//!   `unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS)` (no capability left in the host's
//!   user namespace, even when the engine runs as root; an empty network namespace; a private
//!   mount namespace); builds the bubblewrap layout itself: a fresh read-only tmpfs root in
//!   which only [`JailSpec::read_only`] (read-only), the work dir (read-write) and `/dev/null`,
//!   `/dev/zero`, `/dev/urandom` exist, at their host paths (`pivot_root`, the host's root
//!   detached), so a path outside them does not exist at all (no existence oracle); sets
//!   `RLIMIT_NPROC`;
//!   `PR_SET_NO_NEW_PRIVS`; enforces a Landlock ruleset the parent built (read+execute below
//!   [`JailSpec::read_only`]; read+write, but no exec and no device/socket/fifo creation, below
//!   [`JailSpec::work_dir`]; `/dev/null` rw, `/dev/zero` and `/dev/urandom` ro; nothing else;
//!   TCP bind/connect denied; signals and abstract unix sockets scoped to the jail); marks
//!   every inherited descriptor above 2 close-on-exec; and installs a small seccomp filter
//!   (`socket(AF_UNIX)`, `setsid`, `setpgid`, `io_uring_setup` refused; foreign-arch and x32
//!   syscalls kill). `/proc`, `/etc`, `/tmp`, `$HOME` do not exist in the jail (without
//!   `/proc`, `ld.so` cannot expand `$ORIGIN`: a rustc from rustup needs
//!   `LD_LIBRARY_PATH=<sysroot>/lib` in [`JailSpec::env`]).
//! * [`Mechanism::Bubblewrap`] (fallback; a working `bwrap` binary): `bwrap --unshare-all
//!   --die-with-parent --new-session --clearenv --cap-drop ALL --dev /dev --remount-ro /`,
//!   with only the read-only paths and the work dir (read-write) mounted at their host paths,
//!   no `/proc`. The rlimits are set on `bwrap` itself and inherited. Without `/proc`, `ld.so`
//!   cannot expand `$ORIGIN`, so a rustc from rustup needs `LD_LIBRARY_PATH=<sysroot>/lib` in
//!   [`JailSpec::env`].
//!
//! If neither works, [`run_jailed`] returns [`JailError::Unavailable`]; it never runs a program
//! unjailed. [`run_jailed`] blocks (call it from `spawn_blocking` in async code).
//!
//! The environment is always cleared and replaced by [`JailSpec::env`]; stdin is `/dev/null`;
//! the working directory is the work dir. The parent captures stdout and stderr (bounded by
//! [`JailLimits::output_bytes`]), enforces the wall-clock limit by killing the whole process
//! group (bubblewrap: its pid namespace dies with it), and classifies the outcome (see
//! [`JailLimitKind`] for what can be told reliably).
//!
//! Known limits (measured on kernel 6.18, Landlock ABI 7, as root and as uid 65534):
//! * `RLIMIT_NPROC` is never enforced for processes whose *real* uid is 0 (the kernel exempts
//!   the root user), also inside a user namespace. When the engine runs as root, only the
//!   optional pids cgroup ([`JailLimits::pids_cgroup`]) limits the number of processes; without
//!   it a fork bomb is bounded only by the wall-clock kill (and the host's `pid_max`). For a
//!   non-root engine, Landlock mode counts `RLIMIT_NPROC` per run (the run's own user
//!   namespace); bubblewrap mode counts all processes of the engine's uid.
//! * Killed descendants are orphans that PID 1 reaps; until then they are zombies that still
//!   count against `RLIMIT_NPROC` of the uid.
//! * Both modes show only the granted paths: a host path outside them is missing (`ENOENT`)
//!   whether it exists on the host or not. The grants for a dynamically linked program are
//!   the files its loader opens ([`loader_paths`]), not the system library directories or
//!   `/etc/ld.so.cache` (so the host's library inventory cannot be compiled in).
//! * Without the seccomp filter (architectures other than x86-64 and aarch64), Landlock
//!   ABI < 9 would let the program `connect(2)` to an existing pathname unix socket of a host
//!   daemon, and a descendant could `setsid` out of the process group.

#![expect(
    unsafe_code,
    reason = "jail setup between fork and exec needs raw syscalls (setrlimit, unshare, prctl, \
              landlock_restrict_self, seccomp, close_range) and the parent needs wait4/poll/kill"
)]

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use landlock::{ABI, AccessFs, BitFlags, PathBeneath, PathFd, RulesetCreatedAttr};

/// Which OS mechanism confines the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Landlock if usable, else bubblewrap, else [`JailError::Unavailable`].
    Auto,
    /// Landlock + user and network namespaces + rlimits, set up in-process before `exec`.
    Landlock,
    /// The `bwrap` binary (mount, pid, net, ipc, uts namespaces) + rlimits.
    Bubblewrap,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Auto => "auto",
            Mechanism::Landlock => "landlock",
            Mechanism::Bubblewrap => "bubblewrap",
        })
    }
}

/// Resource limits for one jailed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailLimits {
    /// `RLIMIT_CPU` soft limit in seconds (the hard limit is one second more). Per process.
    pub cpu_seconds: u64,
    /// `RLIMIT_AS` in bytes (virtual address space, per process).
    pub address_space_bytes: u64,
    /// `RLIMIT_FSIZE` in bytes (largest file the program may write).
    pub file_size_bytes: u64,
    /// `RLIMIT_NPROC`, and `pids.max` when [`JailLimits::pids_cgroup`] is set. Not enforced by
    /// the kernel for real uid 0: see the module documentation.
    pub processes: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// Wall-clock limit; at expiry the whole process group is killed with `SIGKILL`.
    pub wall_time: Duration,
    /// Cap on captured stdout + stderr bytes together. When exceeded, the run is killed.
    pub output_bytes: usize,
    /// Optional existing cgroup directory with the pids controller enabled (cgroup v1 `pids`
    /// hierarchy, or v2 with `+pids` in its `cgroup.subtree_control`). The jail creates one
    /// child cgroup per run in it, sets `pids.max`, and removes it afterwards.
    pub pids_cgroup: Option<PathBuf>,
}

impl Default for JailLimits {
    fn default() -> Self {
        JailLimits {
            cpu_seconds: 30,
            address_space_bytes: 4 << 30,
            file_size_bytes: 64 << 20,
            processes: 64,
            open_files: 256,
            wall_time: Duration::from_secs(60),
            output_bytes: 1 << 20,
            pids_cgroup: None,
        }
    }
}

/// What to run and what it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailSpec {
    /// Absolute path of the program (the real compiler, not a rustup proxy).
    pub program: PathBuf,
    /// Arguments (without `argv[0]`).
    pub args: Vec<OsString>,
    /// Absolute path of an existing directory: the only writable place, and the cwd.
    pub work_dir: PathBuf,
    /// Absolute paths (directories or files) the program may read and execute. `/` is refused.
    /// An entry that is itself a symlink grants nothing: bubblewrap recreates the link, and
    /// Landlock does not check symlink traversal; grant the target separately.
    pub read_only: Vec<PathBuf>,
    /// The complete environment of the program (e.g. `PATH`, `TMPDIR`).
    pub env: Vec<(String, String)>,
    /// Resource limits.
    pub limits: JailLimits,
    /// Which mechanism to use.
    pub mechanism: Mechanism,
}

impl JailSpec {
    /// A spec with no arguments, the files the loader needs to start `program`
    /// ([`loader_paths`]), `PATH=/usr/bin:/bin`, `TMPDIR=<work_dir>`, default limits and
    /// [`Mechanism::Auto`].
    pub fn new(program: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> Self {
        let work_dir = work_dir.into();
        let tmpdir = work_dir.to_string_lossy().into_owned();
        let program = program.into();
        JailSpec {
            read_only: loader_paths(std::slice::from_ref(&program), None),
            program,
            args: Vec::new(),
            work_dir,
            env: vec![
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
                ("TMPDIR".to_owned(), tmpdir),
            ],
            limits: JailLimits::default(),
            mechanism: Mechanism::Auto,
        }
    }

    fn validate(&self) -> Result<(), JailError> {
        let invalid = |msg: String| Err(JailError::InvalidSpec(msg));
        if !self.program.is_absolute() {
            return invalid(format!(
                "program {} is not absolute",
                self.program.display()
            ));
        }
        if !self.work_dir.is_absolute() || !self.work_dir.is_dir() {
            return invalid(format!(
                "work dir {} is not an absolute existing directory",
                self.work_dir.display()
            ));
        }
        for p in &self.read_only {
            if !p.is_absolute() || p.parent().is_none() {
                return invalid(format!(
                    "read-only path {} is not absolute or is /",
                    p.display()
                ));
            }
            if fs::symlink_metadata(p).is_err() {
                return invalid(format!("read-only path {} does not exist", p.display()));
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return invalid(format!("bad environment variable name or value: {k:?}"));
            }
        }
        if self.args.iter().any(|a| a.as_bytes().contains(&0)) {
            return invalid("argument contains a NUL byte".to_owned());
        }
        Ok(())
    }
}

/// What the dynamic loader opens to start `programs` (their interpreter and shared
/// libraries, as the loader itself resolves them, with `LD_LIBRARY_PATH=library_path` if
/// given): each file at its real path, plus the symlinks on the way to it (visible links in
/// the jail, not grants). Not the library directories and not `/etc/ld.so.cache`: inside the
/// jail the loader finds the libraries in its default directories, and nothing else there is
/// readable. A program that is not dynamically linked needs nothing.
///
/// # Security
///
/// Runs each program with `LD_TRACE_LOADED_OBJECTS=1` (what `ldd` does): the loader lists
/// the libraries and exits before the program's code runs. Only for trusted toolchain
/// programs.
pub fn loader_paths(programs: &[PathBuf], library_path: Option<&str>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |p: &Path| {
        for link in symlink_prefixes(p) {
            if !out.contains(&link) {
                out.push(link);
            }
        }
        if let Ok(real) = fs::canonicalize(p)
            && !out.contains(&real)
        {
            out.push(real);
        }
    };
    for program in programs {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("LD_TRACE_LOADED_OBJECTS", "1")
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        if let Some(lp) = library_path {
            cmd.env("LD_LIBRARY_PATH", lp);
        }
        let Ok(o) = cmd.output() else { continue };
        if !o.status.success() {
            continue;
        }
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            // `\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or
            // `\t/lib64/ld-linux-x86-64.so.2 (0x…)`.
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(p) = path.filter(|p| p.starts_with('/')) {
                add(Path::new(p));
            }
        }
    }
    out
}

/// The symlinks among `p` and its ancestors (`/lib64` and `/lib64/ld-linux-x86-64.so.2` for
/// the loader of Debian x86-64), each at its real parent directory.
fn symlink_prefixes(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = PathBuf::from("/");
    for c in p.components().skip(1) {
        cur.push(c);
        if fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            let at = match (cur.parent().map(fs::canonicalize), cur.file_name()) {
                (Some(Ok(dir)), Some(name)) => dir.join(name),
                _ => cur.clone(),
            };
            out.push(at);
            if let Ok(real) = fs::canonicalize(&cur) {
                cur = real;
            }
        }
    }
    out
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Normal exit with this code. (Bubblewrap reports a signal death of the program as exit
    /// code 128 + signal; those are mapped to [`ExitKind::Signaled`].)
    Exited(i32),
    /// Killed by this signal (by the kernel for a limit, by itself, or by the jail).
    Signaled(i32),
}

/// A limit that the run hit. How reliable each one is:
///
/// * `WallTime`, `Output`: certain (the jail itself killed the run).
/// * `Cpu`: reliable (`SIGXCPU`, or `SIGKILL`/abnormal exit with CPU time >= the limit).
/// * `FileSize`: reliable for `SIGXFSZ`; heuristic (`File too large` in stderr) when the
///   program ignores the signal and handles `EFBIG`.
/// * `Processes`: certain with a pids cgroup (its `pids.events` counter); without one it is
///   never reported (a failed `fork` looks like any other error to the parent).
/// * `Memory`: heuristic. `RLIMIT_AS` makes allocations fail; the program then prints something
///   (rustc: `memory allocation of N bytes failed`; LLVM: `out of memory`; C++:
///   `std::bad_alloc`; Python: `MemoryError`) and aborts, or crashes. Reported when the run failed and stderr matches
///   one of those patterns. A bare `SIGSEGV` can also be a stack overflow and is not classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JailLimitKind {
    /// `RLIMIT_CPU`.
    Cpu,
    /// `RLIMIT_AS` (heuristic).
    Memory,
    /// `RLIMIT_FSIZE`.
    FileSize,
    /// The number of processes (pids cgroup only).
    Processes,
    /// [`JailLimits::wall_time`].
    WallTime,
    /// [`JailLimits::output_bytes`].
    Output,
}

/// The result of a jailed run that could be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailOutcome {
    /// How the program ended.
    pub status: ExitKind,
    /// Captured stdout (at most [`JailLimits::output_bytes`] together with stderr).
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
    /// Output was cut at the cap.
    pub output_truncated: bool,
    /// The limit that ended the run, if one could be identified.
    pub limit_hit: Option<JailLimitKind>,
    /// User + system CPU time of the program and its reaped descendants. In bubblewrap mode
    /// this is `bwrap`'s own time only (its children are not accounted to it).
    pub cpu_time: Duration,
    /// Wall-clock time from spawn to reap.
    pub wall_time: Duration,
    /// The mechanism that was used.
    pub mechanism: Mechanism,
}

impl JailOutcome {
    /// Exit code 0 and no limit hit.
    pub fn success(&self) -> bool {
        self.status == ExitKind::Exited(0) && self.limit_hit.is_none()
    }
}

/// Why a jailed run could not be performed.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// No jail mechanism works here; the program was not run.
    #[error("cannot build a compile jail: {0}")]
    Unavailable(String),
    /// The spec is unusable.
    #[error("invalid jail spec: {0}")]
    InvalidSpec(String),
    /// Building the Landlock ruleset failed.
    #[error("landlock ruleset: {0}")]
    Landlock(String),
    /// Creating or joining the pids cgroup failed.
    #[error("pids cgroup {path}: {source}")]
    Cgroup {
        /// The cgroup directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Starting the program failed (including jail setup in the child, e.g. `unshare`).
    #[error("cannot start jailed {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Supervising the running program failed (poll, wait).
    #[error("supervising jailed process: {0}")]
    Supervise(io::Error),
}

/// What this machine offers for jailing, from [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailSupport {
    /// Landlock ABI version reported by the kernel, or `None` if Landlock is unavailable.
    pub landlock_abi: Option<i32>,
    /// A child could `unshare(CLONE_NEWUSER | CLONE_NEWNET)`.
    pub user_namespaces: bool,
    /// A `bwrap` binary that could run `bwrap --unshare-all ... true`.
    pub bwrap: Option<PathBuf>,
    /// The engine runs with effective uid 0 (`RLIMIT_NPROC` then does not bite).
    pub root: bool,
}

impl JailSupport {
    /// The mechanism [`Mechanism::Auto`] picks, or `None`.
    pub fn best(&self) -> Option<Mechanism> {
        if self.landlock_abi.is_some_and(|v| v >= 1) && self.user_namespaces {
            Some(Mechanism::Landlock)
        } else if self.bwrap.is_some() {
            Some(Mechanism::Bubblewrap)
        } else {
            None
        }
    }
}

impl fmt::Display for JailSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.landlock_abi {
            Some(v) => write!(f, "landlock ABI {v}")?,
            None => f.write_str("no landlock")?,
        }
        write!(
            f,
            ", user namespaces {}, bwrap {}, root {}",
            if self.user_namespaces { "yes" } else { "no" },
            self.bwrap
                .as_deref()
                .map_or_else(|| "no".to_owned(), |p| p.display().to_string()),
            self.root
        )
    }
}

/// Detects which jail mechanisms work here (cached after the first call; it forks twice).
pub fn probe() -> &'static JailSupport {
    static SUPPORT: OnceLock<JailSupport> = OnceLock::new();
    SUPPORT.get_or_init(|| JailSupport {
        landlock_abi: landlock_abi(),
        user_namespaces: user_namespaces_work(),
        bwrap: find_bwrap(),
        // SAFETY: geteuid has no preconditions and cannot fail.
        root: unsafe { libc::geteuid() } == 0,
    })
}

fn landlock_abi() -> Option<i32> {
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
    i32::try_from(v).ok().filter(|v| *v >= 1)
}

fn user_namespaces_work() -> bool {
    // SAFETY: the child only calls the async-signal-safe syscalls unshare and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above; _exit never returns.
        unsafe {
            let r = libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET);
            libc::_exit(if r == 0 { 0 } else { 1 });
        }
    }
    if pid < 0 {
        return false;
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    let bwrap = std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())?;
    let truth = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).is_file())?;
    let ok = Command::new(&bwrap)
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
        ])
        .args(["--cap-drop", "ALL", "--ro-bind", "/", "/", truth])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(bwrap)
}

/// One step of building the jail's root (Landlock mode), prepared by the parent with paths
/// under the new root's mount point, so that the child only makes system calls.
#[derive(Debug)]
enum ViewOp {
    /// A directory (an existing one is fine).
    Mkdir(std::ffi::CString),
    /// An empty file to bind a file onto.
    Touch(std::ffi::CString),
    /// `src` bind-mounted onto `dst`, read-only unless `rw`.
    Bind {
        src: std::ffi::CString,
        dst: std::ffi::CString,
        rw: bool,
    },
    /// A symlink at `link` with the text `target`.
    Symlink {
        target: std::ffi::CString,
        link: std::ffi::CString,
    },
}

/// The jail's file system (Landlock mode): a tmpfs root holding only what is granted.
#[derive(Debug)]
struct View {
    /// An empty host directory, the mount point of the new root before `pivot_root`.
    root: std::ffi::CString,
    ops: Vec<ViewOp>,
    /// The work dir (the cwd after `pivot_root`).
    work: std::ffi::CString,
    /// `/proc/self/uid_map` and `gid_map` lines: the engine's ids appear as 65534 (`nobody`)
    /// inside, so the program keeps no capability in its namespace across `exec`.
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

/// The devices every jail has: (path, writable).
const JAIL_DEVICES: [(&str, bool); 3] = [
    ("/dev/null", true),
    ("/dev/zero", false),
    ("/dev/urandom", false),
];

/// Plans the jail's root under `mount_point`: the read-only paths (symlinks recreated as
/// links), the work dir read-write, the jail devices; every entry at its host path.
fn view_plan(spec: &JailSpec, mount_point: &Path) -> Result<View, JailError> {
    use std::collections::BTreeSet;
    use std::ffi::CString;
    let err = |what: &str, p: &Path| JailError::InvalidSpec(format!("{what} {}", p.display()));
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| err("NUL in", p));
    let under = |p: &Path| mount_point.join(p.strip_prefix("/").unwrap_or(p));
    // (destination, what): files and dirs to bind (source = destination), links to make.
    enum Entry {
        Bind { dir: bool, rw: bool },
        Link(PathBuf),
    }
    let mut entries: Vec<(PathBuf, Entry)> = Vec::new();
    for p in &spec.read_only {
        let meta = fs::symlink_metadata(p).map_err(|_| err("cannot read", p))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(p).map_err(|_| err("cannot read", p))?;
            let at = match (p.parent().map(fs::canonicalize), p.file_name()) {
                (Some(Ok(dir)), Some(name)) => dir.join(name),
                _ => p.clone(),
            };
            entries.push((at, Entry::Link(target)));
        } else {
            let real = fs::canonicalize(p).map_err(|_| err("cannot resolve", p))?;
            entries.push((
                real,
                Entry::Bind {
                    dir: meta.is_dir(),
                    rw: false,
                },
            ));
        }
    }
    let work =
        fs::canonicalize(&spec.work_dir).map_err(|_| err("cannot resolve", &spec.work_dir))?;
    entries.push((
        work.clone(),
        Entry::Bind {
            dir: true,
            rw: true,
        },
    ));
    for (dev, rw) in JAIL_DEVICES {
        if Path::new(dev).exists() {
            entries.push((PathBuf::from(dev), Entry::Bind { dir: false, rw }));
        }
    }
    // What a bound directory already holds needs nothing more.
    let bound_dirs: Vec<PathBuf> = entries
        .iter()
        .filter(|(_, e)| matches!(e, Entry::Bind { dir: true, .. }))
        .map(|(p, _)| p.clone())
        .collect();
    let covered = |p: &Path| bound_dirs.iter().any(|d| p != d && p.starts_with(d));
    entries.retain(|(p, _)| !covered(p));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for (p, e) in &entries {
        let mut a = p.parent();
        while let Some(d) = a.filter(|d| *d != Path::new("/")) {
            dirs.insert(d.to_path_buf());
            a = d.parent();
        }
        if matches!(e, Entry::Bind { dir: true, .. }) {
            dirs.insert(p.clone());
        }
    }
    let mut ops = Vec::new();
    for d in &dirs {
        ops.push(ViewOp::Mkdir(c(&under(d))?));
    }
    for (p, e) in &entries {
        match e {
            Entry::Bind { dir, rw } => {
                if !dir {
                    ops.push(ViewOp::Touch(c(&under(p))?));
                }
                ops.push(ViewOp::Bind {
                    src: c(p)?,
                    dst: c(&under(p))?,
                    rw: *rw,
                });
            }
            Entry::Link(target) => ops.push(ViewOp::Symlink {
                target: c(target)?,
                link: c(&under(p))?,
            }),
        }
    }
    // SAFETY: getuid and getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    Ok(View {
        root: c(mount_point)?,
        ops,
        work: c(&work)?,
        uid_map: format!("65534 {uid} 1\n").into_bytes(),
        gid_map: format!("65534 {gid} 1\n").into_bytes(),
    })
}

/// The kernel's `struct statfs` on 64-bit Linux (the `libc` crate hides `f_flags`, the
/// mount flags).
#[repr(C)]
#[derive(Default)]
struct KernelStatfs {
    f_type: i64,
    f_bsize: i64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_fsid: [i32; 2],
    f_namelen: i64,
    f_frsize: i64,
    f_flags: i64,
    f_spare: [i64; 4],
}

/// Builds the jail's root from `view` and makes it the root: runs in the child after
/// `unshare(CLONE_NEWUSER | CLONE_NEWNS)`. Only system calls, no allocation.
fn build_view(view: &View) -> io::Result<()> {
    let check = |r: libc::c_long| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let null = std::ptr::null::<libc::c_char>();
    let root = c"/".as_ptr();
    let dot = c".".as_ptr();
    // SAFETY: every pointer is a NUL-terminated string that outlives the call (the plan is
    // borrowed for the whole child setup) or null where the call allows it; these calls are
    // async-signal-safe system calls.
    unsafe {
        // Ids that exist inside (files are created below), none of them 0.
        for (file, bytes) in [
            (c"/proc/self/setgroups", &b"deny"[..]),
            (c"/proc/self/uid_map", &view.uid_map[..]),
            (c"/proc/self/gid_map", &view.gid_map[..]),
        ] {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            check(fd.into())?;
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::close(fd);
            check(n as libc::c_long)?;
        }
        // Nothing done here may propagate back to the host's mounts.
        check(
            libc::mount(
                null,
                root,
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                null.cast(),
            )
            .into(),
        )?;
        check(
            libc::mount(
                c"tmpfs".as_ptr(),
                view.root.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c"size=1048576,nr_inodes=16384,mode=0755".as_ptr().cast(),
            )
            .into(),
        )?;
        for op in &view.ops {
            match op {
                ViewOp::Mkdir(p) => {
                    if libc::mkdir(p.as_ptr(), 0o755) != 0
                        && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return Err(io::Error::last_os_error());
                    }
                }
                ViewOp::Touch(p) => {
                    let fd = libc::open(
                        p.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                        0o644,
                    );
                    check(fd.into())?;
                    libc::close(fd);
                }
                ViewOp::Bind { src, dst, rw } => {
                    check(
                        libc::mount(
                            src.as_ptr(),
                            dst.as_ptr(),
                            null,
                            libc::MS_BIND | libc::MS_REC,
                            null.cast(),
                        )
                        .into(),
                    )?;
                    if !rw {
                        // A remount must keep the flags the host mount locks (nosuid, nodev,
                        // noexec, atime) or the kernel refuses it.
                        let mut st = KernelStatfs::default();
                        check(libc::syscall(
                            libc::SYS_statfs,
                            dst.as_ptr(),
                            &mut st as *mut KernelStatfs,
                        ))?;
                        let f = st.f_flags as libc::c_ulong;
                        let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                        for (st_flag, ms_flag) in [
                            (libc::ST_NOSUID, libc::MS_NOSUID),
                            (libc::ST_NODEV, libc::MS_NODEV),
                            (libc::ST_NOEXEC, libc::MS_NOEXEC),
                            (libc::ST_NOATIME, libc::MS_NOATIME),
                            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                            (libc::ST_RELATIME, libc::MS_RELATIME),
                        ] {
                            if f & st_flag != 0 {
                                flags |= ms_flag;
                            }
                        }
                        check(libc::mount(null, dst.as_ptr(), null, flags, null.cast()).into())?;
                    }
                }
                ViewOp::Symlink { target, link } => {
                    check(libc::symlink(target.as_ptr(), link.as_ptr()).into())?;
                }
            }
        }
        // The tmpfs becomes the root; the host's root is detached from this namespace.
        check(libc::chdir(view.root.as_ptr()).into())?;
        check(libc::syscall(libc::SYS_pivot_root, dot, dot))?;
        check(libc::umount2(dot, libc::MNT_DETACH).into())?;
        check(libc::chdir(root).into())?;
        check(
            libc::mount(
                null,
                root,
                null,
                libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC,
                null.cast(),
            )
            .into(),
        )?;
        check(libc::chdir(view.work.as_ptr()).into())?;
    }
    Ok(())
}

/// Everything the child needs between `fork` and `exec`; plain data, so the closure that uses
/// it allocates nothing.
#[derive(Clone, Copy)]
struct ChildPlan {
    /// (resource, soft, hard), set before `unshare`.
    rlimits: [(libc::__rlimit_resource_t, libc::rlim_t, libc::rlim_t); 6],
    /// `RLIMIT_NPROC` (soft, hard), set after `unshare`.
    nproc: (libc::rlim_t, libc::rlim_t),
    /// `-1` for none.
    cgroup_procs_fd: RawFd,
    /// `-1` for bubblewrap mode (no Landlock, no unshare: bwrap does it).
    landlock_fd: RawFd,
}

/// `value`, lowered to the engine's own hard limit (which an unprivileged child cannot raise).
fn clamp(resource: libc::__rlimit_resource_t, value: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: lim is a valid out pointer.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return value;
    }
    value.min(lim.rlim_max)
}

fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit; setrlimit is async-signal-safe.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs in the forked child before `exec`: only async-signal-safe calls, no allocation.
fn child_setup(plan: &ChildPlan, view: Option<&View>) -> io::Result<()> {
    let check = |r: libc::c_long| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: setsid has no memory-safety preconditions.
    check(unsafe { libc::setsid() }.into())?;
    if plan.cgroup_procs_fd >= 0 {
        // Writing "0" to cgroup.procs moves the writing process.
        // SAFETY: the fd is open (inherited from the parent) and the buffer is 1 valid byte.
        let n = unsafe { libc::write(plan.cgroup_procs_fd, b"0".as_ptr().cast(), 1) };
        check(n as libc::c_long)?;
    }
    // The open-files limit comes after the root is built: until exec the child still holds
    // every descriptor of the (busy, multi-threaded) parent, and with the limit below their
    // numbers, each open of the root's construction failed with EMFILE.
    for (resource, soft, hard) in plan.rlimits {
        if resource != libc::RLIMIT_NOFILE {
            set_rlimit(resource, soft, hard)?;
        }
    }
    if plan.landlock_fd >= 0 {
        // A new user namespace drops every capability in the host namespace (also for root);
        // the new network namespace has only a down loopback.
        // A private mount namespace holds the jail's own root.
        let flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNET
            | if view.is_some() { libc::CLONE_NEWNS } else { 0 };
        // SAFETY: unshare takes flags only; the child is single-threaded as required.
        check(unsafe { libc::unshare(flags) }.into())?;
        if let Some(view) = view {
            build_view(view)?;
        }
    }
    for (resource, soft, hard) in plan.rlimits {
        if resource == libc::RLIMIT_NOFILE {
            set_rlimit(resource, soft, hard)?;
        }
    }
    // Set after unshare so the user namespace records the engine's (higher) limit for the
    // parent level and this limit counts only this run's namespace (non-root engines).
    set_rlimit(libc::RLIMIT_NPROC, plan.nproc.0, plan.nproc.1)?;
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
    if plan.landlock_fd >= 0 {
        // SAFETY: landlock_restrict_self takes an fd and flags; the fd is a ruleset fd.
        check(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, plan.landlock_fd, 0u32) })?;
    }
    // No descriptor other than 0..2 may survive exec (an inherited fd would bypass Landlock).
    // SAFETY: close_range with the CLOEXEC flag only changes descriptor flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })?;
    if plan.landlock_fd >= 0 {
        seccomp::install()?;
    }
    Ok(())
}

/// A fixed seccomp filter for Landlock mode, closing what Landlock ABI 7 leaves open:
/// `socket(AF_UNIX, ..)` -> `EACCES` (pathname unix sockets of host daemons are reachable
/// otherwise; abstract ones are per network namespace), `setsid`/`setpgid` -> `EPERM` (so no
/// descendant can leave the process group the jail kills), `io_uring_setup` -> `ENOSYS` (its
/// operations bypass this filter). Other architectures' syscalls (e.g. i386 `int 0x80`) and the
/// x32 ABI kill the process. Everything else is allowed.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod seccomp {
    use std::io;

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // Offsets in struct seccomp_data: nr, arch, then args[0] at 16 (low half on little endian).
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;

    const fn op(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }
    const fn nr(n: libc::c_long) -> u32 {
        n as u32
    }
    const fn errno(e: libc::c_int) -> u32 {
        libc::SECCOMP_RET_ERRNO | (e as u32)
    }

    static FILTER: [libc::sock_filter; 16] = [
        op(LD_ABS, ARCH, 0, 0),                        // 0
        op(JEQ, AUDIT_ARCH, 1, 0),                     // 1
        op(RET, libc::SECCOMP_RET_KILL_PROCESS, 0, 0), // 2
        op(LD_ABS, NR, 0, 0),                          // 3
        op(JGE, X32_SYSCALL_BIT, 0, 1),                // 4
        op(RET, libc::SECCOMP_RET_KILL_PROCESS, 0, 0), // 5
        op(JEQ, nr(libc::SYS_setsid), 6, 0),           // 6 -> 13
        op(JEQ, nr(libc::SYS_setpgid), 5, 0),          // 7 -> 13
        op(JEQ, nr(libc::SYS_io_uring_setup), 5, 0),   // 8 -> 14
        op(JEQ, nr(libc::SYS_socket), 0, 2),           // 9 -> 10 / 12
        op(LD_ABS, ARG0, 0, 0),                        // 10
        op(JEQ, libc::AF_UNIX as u32, 3, 0),           // 11 -> 15
        op(RET, libc::SECCOMP_RET_ALLOW, 0, 0),        // 12
        op(RET, errno(libc::EPERM), 0, 0),             // 13
        op(RET, errno(libc::ENOSYS), 0, 0),            // 14
        op(RET, errno(libc::EACCES), 0, 0),            // 15
    ];

    /// Installs the filter on the calling thread (needs `PR_SET_NO_NEW_PRIVS` first).
    /// Async-signal-safe.
    pub(super) fn install() -> io::Result<()> {
        let prog = libc::sock_fprog {
            len: FILTER.len() as libc::c_ushort,
            filter: FILTER.as_ptr().cast_mut(),
        };
        // SAFETY: prog points to a valid filter that lives for the whole program (static); the
        // kernel copies it.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const _,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod seccomp {
    /// No filter on this architecture (see the module documentation).
    pub(super) fn install() -> std::io::Result<()> {
        Ok(())
    }
}

fn landlock_ruleset(spec: &JailSpec) -> Result<OwnedFd, JailError> {
    let err = |e: &dyn fmt::Display| JailError::Landlock(e.to_string());
    // The newest ABI this crate knows; rights the kernel lacks are dropped (best effort).
    let abi = ABI::V10;
    let work_access = crate::confine::writable_without_exec(abi);
    let mut ruleset = crate::confine::deny_all_ruleset(abi).map_err(|e| err(&e))?;
    // A symlink entry makes the link itself visible (bubblewrap); Landlock does not check
    // symlink traversal, so it needs no rule (its target must be granted on its own).
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = spec
        .read_only
        .iter()
        .filter(|p| !fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
        .map(|p| (p.as_path(), AccessFs::from_read(abi)))
        .collect();
    rules.push((spec.work_dir.as_path(), work_access));
    // A fixed set of harmless devices (shells redirect to /dev/null; LLVM reads urandom).
    let null_access = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate;
    for (dev, access) in [
        ("/dev/null", null_access),
        ("/dev/zero", BitFlags::from(AccessFs::ReadFile)),
        ("/dev/urandom", BitFlags::from(AccessFs::ReadFile)),
    ] {
        if Path::new(dev).exists() {
            rules.push((Path::new(dev), access));
        }
    }
    for (path, access) in rules {
        let fd = PathFd::new(path).map_err(|e| err(&format!("{}: {e}", path.display())))?;
        let is_dir = fs::metadata(path).is_ok_and(|m| m.is_dir());
        // Directory-only rights on a file are rejected by the kernel.
        let access = if is_dir {
            access
        } else {
            access & AccessFs::from_file(abi)
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| err(&format!("{}: {e}", path.display())))?;
    }
    let fd: Option<OwnedFd> = ruleset.into();
    fd.ok_or_else(|| JailError::Unavailable("the kernel does not support Landlock".to_owned()))
}

fn bwrap_command(bwrap: &Path, spec: &JailSpec) -> Command {
    let mut cmd = Command::new(bwrap);
    cmd.args([
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]);
    cmd.args(["--cap-drop", "ALL"]);
    for p in &spec.read_only {
        match fs::read_link(p) {
            Ok(target) => {
                cmd.arg("--symlink").arg(target).arg(p);
            }
            Err(_) => {
                cmd.arg("--ro-bind").arg(p).arg(p);
            }
        }
    }
    // A fresh minimal /dev (null, zero, full, random, urandom, tty, pts): no host devices.
    cmd.args(["--dev", "/dev"]);
    cmd.arg("--bind").arg(&spec.work_dir).arg(&spec.work_dir);
    // Nothing but the work dir is writable (bwrap's root is otherwise a writable tmpfs).
    cmd.args(["--remount-ro", "/"]);
    cmd.arg("--chdir").arg(&spec.work_dir);
    for (k, v) in &spec.env {
        cmd.args(["--setenv", k, v]);
    }
    cmd.arg("--").arg(&spec.program).args(&spec.args);
    cmd
}

/// A per-run child cgroup with `pids.max` set; removed on drop.
struct PidsCgroup {
    dir: PathBuf,
    procs: fs::File,
    events_before: u64,
}

impl PidsCgroup {
    fn create(parent: &Path, max: u64) -> Result<Self, JailError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "corral-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        let cg_err = |source| JailError::Cgroup {
            path: dir.clone(),
            source,
        };
        fs::create_dir(&dir).map_err(cg_err)?;
        let cg = (|| {
            fs::write(dir.join("pids.max"), max.to_string())?;
            let procs = fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?;
            Ok::<_, io::Error>(procs)
        })();
        match cg {
            Ok(procs) => Ok(PidsCgroup {
                events_before: pids_max_events(&dir),
                dir,
                procs,
            }),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(cg_err(e))
            }
        }
    }

    fn limit_was_hit(&self) -> bool {
        pids_max_events(&self.dir) > self.events_before
    }

    /// Kills every process still in the cgroup (descendants that left the process group).
    fn kill_all(&self) {
        for _ in 0..100 {
            let Ok(list) = fs::read_to_string(self.dir.join("cgroup.procs")) else {
                return;
            };
            let pids: Vec<libc::pid_t> =
                list.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        self.kill_all();
        // Dead processes leave the cgroup asynchronously; retry briefly.
        for _ in 0..200 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn pids_max_events(dir: &Path) -> u64 {
    fs::read_to_string(dir.join("pids.events"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs `spec.program` in the jail and waits for it (at most `limits.wall_time` plus cleanup).
/// Blocks the calling thread.
///
/// # Errors
///
/// [`JailError::Unavailable`] if no jail can be built here (the program is not run),
/// [`JailError::InvalidSpec`], [`JailError::Landlock`] or [`JailError::Cgroup`] for setup
/// failures, [`JailError::Spawn`] if the program or the in-child jail setup failed to start
/// (e.g. exec denied because the program is outside [`JailSpec::read_only`]), and
/// [`JailError::Supervise`] if waiting for it failed. A program that runs and fails, or hits
/// a limit, is `Ok` with the details in [`JailOutcome`].
pub fn run_jailed(spec: &JailSpec) -> Result<JailOutcome, JailError> {
    spec.validate()?;
    let support = probe();
    let mechanism = match spec.mechanism {
        Mechanism::Auto => support.best().ok_or_else(|| {
            JailError::Unavailable(format!("neither Landlock nor bubblewrap works ({support})"))
        })?,
        m => m,
    };
    let limits = &spec.limits;
    // The mount point of the jail's root (Landlock mode): an empty host directory, removed
    // when the run ends (the mounts live only in the child's namespace).
    let mut mount_point = None;
    let (mut cmd, landlock_fd, view) = match mechanism {
        Mechanism::Landlock => {
            if !support.user_namespaces {
                return Err(JailError::Unavailable(format!(
                    "Landlock mode needs user namespaces ({support})"
                )));
            }
            let fd = landlock_ruleset(spec)?;
            let point = tempfile::Builder::new()
                .prefix("corral-jail-root-")
                .tempdir()
                .map_err(|e| JailError::InvalidSpec(format!("cannot create the jail root: {e}")))?;
            let view = view_plan(spec, point.path())?;
            mount_point = Some(point);
            let mut cmd = Command::new(&spec.program);
            cmd.args(&spec.args);
            (cmd, Some(fd), Some(std::sync::Arc::new(view)))
        }
        _ => {
            let bwrap = support
                .bwrap
                .as_deref()
                .ok_or_else(|| JailError::Unavailable(format!("no working bwrap ({support})")))?;
            (bwrap_command(bwrap, spec), None, None)
        }
    };
    cmd.env_clear()
        .current_dir(&spec.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if mechanism == Mechanism::Landlock {
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    }
    let cgroup = match &limits.pids_cgroup {
        Some(parent) => Some(PidsCgroup::create(parent, limits.processes)?),
        None => None,
    };
    let same = |resource, v| (resource, clamp(resource, v), clamp(resource, v));
    let plan = ChildPlan {
        rlimits: [
            // The soft CPU limit sends SIGXCPU, the hard one a second later SIGKILL.
            (
                libc::RLIMIT_CPU,
                clamp(libc::RLIMIT_CPU, limits.cpu_seconds),
                clamp(libc::RLIMIT_CPU, limits.cpu_seconds.saturating_add(1)),
            ),
            same(libc::RLIMIT_AS, limits.address_space_bytes),
            same(libc::RLIMIT_FSIZE, limits.file_size_bytes),
            same(libc::RLIMIT_CORE, 0),
            same(libc::RLIMIT_NOFILE, limits.open_files),
            same(libc::RLIMIT_MEMLOCK, 0),
        ],
        nproc: (
            clamp(libc::RLIMIT_NPROC, limits.processes),
            clamp(libc::RLIMIT_NPROC, limits.processes),
        ),
        cgroup_procs_fd: cgroup.as_ref().map_or(-1, |c| c.procs.as_raw_fd()),
        landlock_fd: landlock_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd),
    };
    // SAFETY: child_setup only makes async-signal-safe system calls on plain copied data and
    // does not allocate, as required between fork and exec in a multi-threaded process.
    unsafe {
        cmd.pre_exec(move || child_setup(&plan, view.as_deref()));
    }
    let start = Instant::now();
    let spawned = cmd.spawn();
    drop(landlock_fd);
    let mut child = spawned.map_err(|source| JailError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| JailError::Supervise(io::Error::other("pid out of range")))?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let sup = supervise(
        pid,
        stdout.map(OwnedFd::from),
        stderr.map(OwnedFd::from),
        limits,
        start,
    );
    // Reap even if supervision failed, after making sure the group is dead.
    let sup = match sup {
        Ok(s) => s,
        Err(e) => {
            kill_group(pid);
            let _ = reap(pid);
            return Err(JailError::Supervise(e));
        }
    };
    let (raw_status, rusage) = reap(pid).map_err(JailError::Supervise)?;
    let wall_time = start.elapsed();
    drop(mount_point);
    let processes_hit = cgroup.as_ref().is_some_and(PidsCgroup::limit_was_hit);
    drop(cgroup);

    let mut status = if libc::WIFSIGNALED(raw_status) {
        ExitKind::Signaled(libc::WTERMSIG(raw_status))
    } else {
        ExitKind::Exited(libc::WEXITSTATUS(raw_status))
    };
    if mechanism == Mechanism::Bubblewrap
        && let ExitKind::Exited(code) = status
        && (129..=128 + 64).contains(&code)
    {
        status = ExitKind::Signaled(code - 128);
    }
    let cpu_time = timeval(rusage.ru_utime) + timeval(rusage.ru_stime);
    let limit_hit = sup
        .killed_for
        .or_else(|| classify(status, cpu_time, limits, &sup.stderr, processes_hit));
    Ok(JailOutcome {
        status,
        stdout: sup.stdout,
        stderr: sup.stderr,
        output_truncated: sup.truncated,
        limit_hit,
        cpu_time,
        wall_time,
        mechanism,
    })
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(
        u64::try_from(tv.tv_sec).unwrap_or(0),
        u32::try_from(tv.tv_usec).unwrap_or(0).saturating_mul(1000),
    )
}

fn classify(
    status: ExitKind,
    cpu_time: Duration,
    limits: &JailLimits,
    stderr: &[u8],
    processes_hit: bool,
) -> Option<JailLimitKind> {
    let failed = status != ExitKind::Exited(0);
    let contains = |needle: &str| stderr.windows(needle.len()).any(|w| w == needle.as_bytes());
    match status {
        ExitKind::Signaled(libc::SIGXCPU) => return Some(JailLimitKind::Cpu),
        ExitKind::Signaled(libc::SIGXFSZ) => return Some(JailLimitKind::FileSize),
        _ => {}
    }
    if failed && cpu_time >= Duration::from_secs(limits.cpu_seconds) {
        return Some(JailLimitKind::Cpu);
    }
    if processes_hit {
        return Some(JailLimitKind::Processes);
    }
    if failed {
        const OOM: [&str; 8] = [
            "memory allocation of",
            "failed to map segment",
            "MemoryError",
            "out of memory",
            "Out of memory",
            "std::bad_alloc",
            "Cannot allocate memory",
            "failed to allocate",
        ];
        if OOM.iter().any(|p| contains(p)) {
            return Some(JailLimitKind::Memory);
        }
        if contains("File too large") {
            return Some(JailLimitKind::FileSize);
        }
    }
    None
}

struct Supervised {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
    killed_for: Option<JailLimitKind>,
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill has no memory-safety preconditions. The group leader is our unreaped child,
    // so the group id cannot have been reused.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// `true` if `pid` has exited (without reaping it, so its pid and group id stay reserved).
fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: info is a valid out pointer; P_PID with our child's pid.
    if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled info (si_pid is 0 when the child has not exited).
    Ok(unsafe { info.si_pid() } != 0)
}

fn reap(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid out pointers; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            return Ok((status, rusage));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: fd is a freshly opened descriptor that we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads both pipes until EOF, watches the child and the deadline, kills on limits. Does not
/// reap the child.
fn supervise(
    pid: libc::pid_t,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    limits: &JailLimits,
    start: Instant,
) -> io::Result<Supervised> {
    let deadline = start + limits.wall_time;
    let pidfd = pidfd_open(pid);
    let mut pipes = [stdout.map(fs::File::from), stderr.map(fs::File::from)];
    let mut bufs = [Vec::new(), Vec::new()];
    let mut truncated = false;
    let mut killed_for = None;
    let mut exited = false;
    // After the child exits, wait at most this long for descendants that hold the pipes.
    let mut drain_until: Option<Instant> = None;
    let mut chunk = [0u8; 65536];
    loop {
        let now = Instant::now();
        if !exited && killed_for.is_none() && now >= deadline {
            kill_group(pid);
            killed_for = Some(JailLimitKind::WallTime);
        }
        if pipes.iter().all(Option::is_none) && exited {
            break;
        }
        if let Some(until) = drain_until
            && now >= until
        {
            break;
        }
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        for p in pipes.iter().flatten() {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let watch_pid = !exited && pidfd.is_some();
        if let (true, Some(fd)) = (watch_pid, &pidfd) {
            fds.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let until = drain_until.unwrap_or(deadline).max(now);
        let mut timeout = until.duration_since(now).as_millis().saturating_add(1);
        if !exited && (pidfd.is_none() || killed_for.is_some()) {
            timeout = timeout.min(10);
        }
        let timeout = libc::c_int::try_from(timeout).unwrap_or(libc::c_int::MAX);
        // SAFETY: fds points to fds.len() initialised pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut over = false;
        let mut i = 0;
        for slot_index in 0..2 {
            let Some(file) = &mut pipes[slot_index] else {
                continue;
            };
            let revents = fds[i].revents;
            i += 1;
            if revents == 0 {
                continue;
            }
            match file.read(&mut chunk) {
                Ok(0) => pipes[slot_index] = None,
                Ok(k) => {
                    // Keep the first `output_bytes` bytes in arrival order.
                    let used = bufs[0].len() + bufs[1].len();
                    let room = limits.output_bytes.saturating_sub(used);
                    bufs[slot_index].extend_from_slice(&chunk[..k.min(room)]);
                    over |= k > room;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => pipes[slot_index] = None,
            }
        }
        if over {
            truncated = true;
            if !exited && killed_for.is_none() {
                kill_group(pid);
                killed_for = Some(JailLimitKind::Output);
            }
            // Stop reading; the killed processes close the pipes.
            pipes = [None, None];
        }
        let child_done = if watch_pid {
            fds.last().is_some_and(|p| p.revents != 0)
        } else if !exited {
            has_exited(pid)?
        } else {
            false
        };
        if child_done {
            exited = true;
            // Leftover members of the group (e.g. background children) die with the run.
            kill_group(pid);
            drain_until = Some(Instant::now() + Duration::from_millis(500));
        }
    }
    let [stdout, stderr] = bufs;
    Ok(Supervised {
        stdout,
        stderr,
        truncated,
        killed_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_specs_are_rejected_before_running() {
        let dir = std::env::temp_dir();
        let mut spec = JailSpec::new("/usr/bin/true", &dir);
        spec.program = "true".into();
        assert!(matches!(run_jailed(&spec), Err(JailError::InvalidSpec(_))));
        let mut spec = JailSpec::new("/usr/bin/true", &dir);
        spec.read_only.push("/".into());
        assert!(matches!(run_jailed(&spec), Err(JailError::InvalidSpec(_))));
        let mut spec = JailSpec::new("/usr/bin/true", &dir);
        spec.read_only.push("/does/not/exist".into());
        assert!(matches!(run_jailed(&spec), Err(JailError::InvalidSpec(_))));
        let mut spec = JailSpec::new("/usr/bin/true", "relative");
        spec.work_dir = "relative".into();
        assert!(matches!(run_jailed(&spec), Err(JailError::InvalidSpec(_))));
        let mut spec = JailSpec::new("/usr/bin/true", &dir);
        spec.env.push(("A=B".into(), "x".into()));
        assert!(matches!(run_jailed(&spec), Err(JailError::InvalidSpec(_))));
    }

    #[test]
    fn auto_prefers_landlock_then_bubblewrap_then_nothing() {
        let s = |abi, userns, bwrap: bool| JailSupport {
            landlock_abi: abi,
            user_namespaces: userns,
            bwrap: bwrap.then(|| PathBuf::from("/usr/bin/bwrap")),
            root: true,
        };
        assert_eq!(s(Some(7), true, true).best(), Some(Mechanism::Landlock));
        assert_eq!(s(Some(1), true, false).best(), Some(Mechanism::Landlock));
        assert_eq!(s(None, true, true).best(), Some(Mechanism::Bubblewrap));
        assert_eq!(s(Some(7), false, true).best(), Some(Mechanism::Bubblewrap));
        assert_eq!(s(None, true, false).best(), None);
        assert_eq!(s(Some(7), false, false).best(), None);
    }

    #[test]
    fn probe_reports_something_usable_here() {
        let s = probe();
        assert!(s.best().is_some(), "no jail mechanism: {s}");
    }

    #[test]
    fn a_program_outside_the_read_only_set_cannot_run() {
        let Some(Mechanism::Landlock) = probe().best() else {
            return;
        };
        let dir = tempfile_dir();
        let mut spec = JailSpec::new("/usr/bin/true", &dir);
        spec.mechanism = Mechanism::Landlock;
        // /usr/bin is not granted: exec is denied, and the error is a spawn error.
        assert!(matches!(run_jailed(&spec), Err(JailError::Spawn { .. })));
        spec.read_only.push("/usr/bin".into());
        let o = run_jailed(&spec);
        assert!(o.as_ref().is_ok_and(JailOutcome::success), "{o:?}");
        let _ = fs::remove_dir(&dir);
    }

    /// The open-files limit applies to the program, not to building its root: a parent
    /// that holds more descriptors than the limit (a busy engine) still starts jails.
    #[test]
    fn a_parent_holding_many_descriptors_still_starts_jails() {
        let Some(Mechanism::Landlock) = probe().best() else {
            return;
        };
        let held: Vec<fs::File> = (0..512)
            .map(|_| fs::File::open("/dev/null"))
            .collect::<Result<_, _>>()
            .expect("512 descriptors");
        let dir = tempfile_dir();
        let mut spec = JailSpec::new("/usr/bin/true", &dir);
        spec.mechanism = Mechanism::Landlock;
        spec.read_only.push("/usr/bin".into());
        let o = run_jailed(&spec);
        drop(held);
        let _ = fs::remove_dir(&dir);
        assert!(o.as_ref().is_ok_and(JailOutcome::success), "{o:?}");
    }

    /// Issue 11: in both mechanisms the program sees only its grants: the loader still
    /// starts it, but `/etc/ld.so.cache`, an ungranted library and a missing path all read
    /// as missing (the same error), and `/etc/passwd` too.
    #[test]
    fn issue_11_only_the_grants_exist_in_either_mechanism() {
        let support = probe();
        let mut mechanisms = Vec::new();
        if support.landlock_abi.is_some() && support.user_namespaces {
            mechanisms.push(Mechanism::Landlock);
        }
        if support.bwrap.is_some() {
            mechanisms.push(Mechanism::Bubblewrap);
        }
        let dir = tempfile_dir();
        for m in mechanisms {
            for path in [
                "/etc/ld.so.cache",
                "/etc/passwd",
                "/usr/lib/x86_64-linux-gnu/libcrypt.so.1",
                "/does/not/exist",
            ] {
                let mut spec = JailSpec::new("/usr/bin/cat", &dir);
                spec.mechanism = m;
                spec.read_only.push("/usr/bin/cat".into());
                spec.args = vec![path.into()];
                let o = run_jailed(&spec).expect("the jail runs cat");
                assert_eq!(o.status, ExitKind::Exited(1), "{m}: cat {path}: {o:?}");
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("No such file or directory"),
                    "{m}: cat {path}: {err}"
                );
            }
        }
        let _ = fs::remove_dir(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("corral-jail-unit-{}", std::process::id()));
        let _ = fs::create_dir(&d);
        d
    }
}
