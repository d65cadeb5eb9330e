//! corral's own host files (never a guest's): where they live, how corral writes them
//! (atomically and durably) and how it reads files a user names (bounded, regular files only).
//!
//! Everything here uses ambient authority (paths and the process environment); guests never
//! reach it — their files go through the gate and cap-std handles.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A non-empty environment variable as a path.
fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The cache directory (compiled wasm, built runners, precompiled artifacts):
/// `$CORRAL_HOME/cache`, else `$XDG_CACHE_HOME/corral`, else `~/.cache/corral`.
///
/// # Ambient authority
///
/// Reads `CORRAL_HOME`, `XDG_CACHE_HOME` and `HOME`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(home) = env_path("CORRAL_HOME") {
        return Some(home.join("cache"));
    }
    if let Some(c) = env_path("XDG_CACHE_HOME") {
        return Some(c.join("corral"));
    }
    env_path("HOME").map(|h| h.join(".cache/corral"))
}

/// The default record store: `$CORRAL_HOME/store`, else `$XDG_DATA_HOME/corral/store`, else
/// `~/.local/share/corral/store`.
///
/// # Ambient authority
///
/// Reads `CORRAL_HOME`, `XDG_DATA_HOME` and `HOME`.
pub fn store_dir() -> Option<PathBuf> {
    if let Some(home) = env_path("CORRAL_HOME") {
        return Some(home.join("store"));
    }
    if let Some(data) = env_path("XDG_DATA_HOME") {
        return Some(data.join("corral").join("store"));
    }
    env_path("HOME").map(|h| h.join(".local/share/corral/store"))
}

/// Where per-run temporary directories go: `$CORRAL_TMPDIR`, else the system temp dir.
///
/// # Ambient authority
///
/// Reads `CORRAL_TMPDIR` and `TMPDIR`.
pub fn temp_root() -> PathBuf {
    env_path("CORRAL_TMPDIR").unwrap_or_else(std::env::temp_dir)
}

/// The prefix of every engine's work directory in a temp root.
const WORK_PREFIX: &str = "corral-";

/// When this process started, in clock ticks since boot (field 22 of `/proc/PID/stat`): with
/// the pid, it names this process uniquely, even after the pid is reused.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// A directory of one engine's temporary files (scratch dirs, staged inputs, compiler work
/// dirs, rebuilt replay inputs): `<temp root>/corral-<pid>-<start>-<n>`, private (0700),
/// removed when dropped. A process that dies without dropping it (SIGKILL, `exit`) leaves it
/// behind; [`WorkDir::create`] removes those of processes that no longer exist.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// Creates a new work directory in `root` (created if missing), after sweeping the work
    /// directories that dead processes left there.
    ///
    /// # Errors
    ///
    /// `root` cannot be created or written.
    pub fn create(root: &Path) -> std::io::Result<WorkDir> {
        use std::os::unix::fs::DirBuilderExt;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        std::fs::create_dir_all(root)?;
        sweep_stale(root);
        let pid = std::process::id();
        let start = start_ticks(pid).unwrap_or(0);
        loop {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = root.join(format!("{WORK_PREFIX}{pid}-{start}-{n}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(WorkDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the work directories in `root` whose process no longer exists (or whose pid now
/// belongs to another process). Only directories named like a work directory, owned by this
/// user and not symlinks are touched; removal never follows a link.
pub fn sweep_stale(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[expect(unsafe_code, reason = "geteuid, to touch only our own directories")]
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(WORK_PREFIX)) else {
            continue;
        };
        let mut parts = rest.split('-');
        let (Some(pid), Some(start), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Ok(pid), Ok(start), Ok(_)) =
            (pid.parse::<u32>(), start.parse::<u64>(), n.parse::<u64>())
        else {
            continue;
        };
        if start_ticks(pid) == Some(start) {
            continue; // its process is alive
        }
        let path = e.path();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Writes `parts` (concatenated) to `path` atomically and durably: a temporary file in the
/// same directory, written and fsynced, renamed over `path`, then the directory fsynced. The
/// parent directory is created if missing. A reader sees the old file or the whole new one,
/// never a torn one, also after a crash.
///
/// # Errors
///
/// The directory cannot be created or written.
pub fn write_atomic(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    for p in parts {
        tmp.write_all(p)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all()?;
    }
    Ok(())
}

/// Why a file a user named could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The path names something other than a regular file (a directory, FIFO, socket or
    /// device such as `/dev/zero`), possibly through a symlink.
    #[error("not a regular file (it is a {0})")]
    NotRegular(&'static str),
    /// The file is larger than allowed.
    #[error("the file is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size (from its metadata).
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The file cannot be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn kind_name(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// Reads the file a user named at `path`, which must be (or link to) a regular file of at
/// most `max` bytes. Opening never blocks (a FIFO is refused, not waited on) and at most
/// `max + 1` bytes are ever read, so `/dev/zero` or a file that grows while it is read costs
/// nothing.
///
/// # Errors
///
/// [`ReadError`]: not a regular file, too large, or unreadable.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_name(meta.file_type())));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    read_capped(file, max)
}

/// Reads at most `max` bytes from `reader` (a pipe, stdin): an error once it offers more.
///
/// # Errors
///
/// [`ReadError::TooLarge`] (with the bytes seen so far as the size) or a read error.
pub fn read_capped(reader: impl Read, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_dirs_are_refused_without_blocking() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("character device"))
        ));
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_bounded(d.path(), 10),
            Err(ReadError::NotRegular("directory"))
        ));
        let fifo = d.path().join("f");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        #[expect(unsafe_code, reason = "mkfifo for the test")]
        let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(r, 0);
        assert!(matches!(
            read_bounded(&fifo, 10),
            Err(ReadError::NotRegular("FIFO"))
        ));
        let link = d.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_bounded(&link, 10),
            Err(ReadError::NotRegular(_))
        ));
    }

    #[test]
    fn work_dirs_of_dead_processes_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let mine = WorkDir::create(root.path()).unwrap();
        std::fs::write(mine.path().join("f"), b"x").unwrap();
        // A dead process's directory (pid 1 never has start time 1), with a file inside and
        // a link pointing outside, and a look-alike that is not ours to touch.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"keep").unwrap();
        let dead = root.path().join("corral-1-1-0");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("staged"), b"copy of an input").unwrap();
        std::os::unix::fs::symlink(outside.path(), dead.join("link")).unwrap();
        let other = root.path().join("corral-notes");
        std::fs::create_dir(&other).unwrap();
        let again = WorkDir::create(root.path()).unwrap();
        assert!(!dead.exists(), "a dead process's work dir is swept");
        assert!(
            outside.path().join("keep").exists(),
            "links are never followed"
        );
        assert!(other.exists(), "only work dirs are touched");
        assert!(
            mine.path().join("f").exists(),
            "a live process's work dir is kept"
        );
        let (a, b) = (mine.path().to_path_buf(), again.path().to_path_buf());
        drop(mine);
        drop(again);
        assert!(!a.exists() && !b.exists(), "dropped work dirs are removed");
    }

    #[test]
    fn sizes_are_capped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a");
        write_atomic(&p, &[b"hello", b" world"]).unwrap();
        assert_eq!(read_bounded(&p, 11).unwrap(), b"hello world");
        assert!(matches!(
            read_bounded(&p, 10),
            Err(ReadError::TooLarge { size: 11, max: 10 })
        ));
        assert!(matches!(
            read_capped(&b"abc"[..], 2),
            Err(ReadError::TooLarge { .. })
        ));
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), b"abc");
    }
}
