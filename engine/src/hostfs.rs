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
