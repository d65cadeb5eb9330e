//! Staging of read-only input directories into engine-owned copies.
//!
//! A `--dir HOST::GUEST` input is copied, through cap-std handles, into a fresh private
//! directory that the guest then sees read-only. Regular files and directories are copied in
//! name order; symlinks, devices, FIFOs and sockets are skipped (never followed), so nothing
//! outside the input tree can be reached through it. The copy is also what makes a run
//! independent of the host tree's later changes, and it yields the content hash of the input
//! that run records store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::error::Error;

/// Most bytes one staged input may hold.
pub const MAX_STAGE_BYTES: u64 = 1 << 30;
/// Most files and directories one staged input may hold.
pub const MAX_STAGE_ENTRIES: u64 = 100_000;
/// Deepest directory nesting staged.
pub const MAX_STAGE_DEPTH: usize = 64;

/// One staged file: its path inside the input (`/`-separated), content hash and size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StagedFile {
    /// Path relative to the input root.
    pub path: String,
    /// blake3 of the contents.
    pub hash: [u8; 32],
    /// Size in bytes.
    pub size: u64,
}

/// A staged copy of an input directory.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) dir: tempfile::TempDir,
    /// Directories (relative paths), in creation order.
    pub(crate) dirs: Vec<String>,
    /// Files, in creation order.
    pub(crate) files: Vec<StagedFile>,
    /// Entries skipped (symlinks and special files), by relative path.
    pub(crate) skipped: Vec<String>,
}

impl Staged {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Copies the directory at `host` into a new temporary directory under `temp_root`.
///
/// # Errors
///
/// The host path is not a readable directory, or the tree exceeds [`MAX_STAGE_BYTES`],
/// [`MAX_STAGE_ENTRIES`] or [`MAX_STAGE_DEPTH`].
///
/// # Ambient authority
///
/// Opens `host` by path with the process's authority (the user named it on the command line).
/// Everything below it is reached through the opened handle only.
pub(crate) fn stage_dir(host: &Path, temp_root: &Path) -> Result<Staged, Error> {
    let shown = host.display();
    let src = Dir::open_ambient_dir(host, ambient_authority())
        .map_err(|e| Error::invalid_input(format!("cannot open input directory `{shown}`: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("corral-in-")
        .tempdir_in(temp_root)
        .map_err(|e| Error::host(format!("cannot create a staging directory: {e}")))?;
    let dst = Dir::open_ambient_dir(dir.path(), ambient_authority())
        .map_err(|e| Error::host(format!("cannot open the staging directory: {e}")))?;
    let mut staged = Staged {
        dir,
        dirs: Vec::new(),
        files: Vec::new(),
        skipped: Vec::new(),
    };
    let mut total = 0u64;
    let mut entries = 0u64;
    // Iterative walk: (source dir, destination dir, relative path, depth).
    let mut stack: Vec<(Dir, Dir, String, usize)> = vec![(src, dst, String::new(), 0)];
    while let Some((from, to, rel, depth)) = stack.pop() {
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for entry in from
            .entries()
            .map_err(|e| Error::invalid_input(format!("cannot list input `{shown}`: {e}")))?
        {
            let entry = entry
                .map_err(|e| Error::invalid_input(format!("cannot list input `{shown}`: {e}")))?;
            names.push(entry.file_name());
        }
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let Some(name_str) = name.to_str() else {
                staged
                    .skipped
                    .push(format!("{rel}{}", name.to_string_lossy()));
                continue;
            };
            let child_rel = format!("{rel}{name_str}");
            entries += 1;
            if entries > MAX_STAGE_ENTRIES {
                return Err(Error::invalid_input(format!(
                    "input directory `{shown}` has more than {MAX_STAGE_ENTRIES} entries"
                )));
            }
            let meta = from.symlink_metadata(&name).map_err(|e| {
                Error::invalid_input(format!("cannot read `{child_rel}` in input `{shown}`: {e}"))
            })?;
            let ft = meta.file_type();
            if ft.is_dir() {
                if depth + 1 > MAX_STAGE_DEPTH {
                    return Err(Error::invalid_input(format!(
                        "input directory `{shown}` is nested deeper than {MAX_STAGE_DEPTH} levels"
                    )));
                }
                to.create_dir(&name)
                    .map_err(|e| Error::host(format!("cannot stage `{child_rel}`: {e}")))?;
                let sub_from = from.open_dir(&name).map_err(|e| {
                    Error::invalid_input(format!(
                        "cannot open `{child_rel}` in input `{shown}`: {e}"
                    ))
                })?;
                let sub_to = to
                    .open_dir(&name)
                    .map_err(|e| Error::host(format!("cannot stage `{child_rel}`: {e}")))?;
                staged.dirs.push(child_rel.clone());
                subdirs.push((sub_from, sub_to, format!("{child_rel}/"), depth + 1));
            } else if ft.is_file() {
                let (hash, size) =
                    copy_file(&from, &to, &name, &mut total).map_err(|e| match e {
                        CopyError::TooBig => Error::invalid_input(format!(
                            "input directory `{shown}` holds more than {MAX_STAGE_BYTES} bytes"
                        )),
                        CopyError::Io(e) => Error::invalid_input(format!(
                            "cannot copy `{child_rel}` from input `{shown}`: {e}"
                        )),
                    })?;
                staged.files.push(StagedFile {
                    path: child_rel,
                    hash,
                    size,
                });
            } else {
                staged.skipped.push(child_rel);
            }
        }
        // Depth-first in name order: push in reverse so the smallest name is walked first.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(staged)
}

enum CopyError {
    TooBig,
    Io(std::io::Error),
}

fn copy_file(
    from: &Dir,
    to: &Dir,
    name: &std::ffi::OsStr,
    total: &mut u64,
) -> Result<([u8; 32], u64), CopyError> {
    // `name` was a regular file a moment ago; if it is swapped for a symlink now, cap-std
    // still resolves it inside `from`, so nothing outside the input tree can be read.
    let mut src = from.open(name).map_err(CopyError::Io)?;
    let mut dst = to.create(name).map_err(CopyError::Io)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(CopyError::Io)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        *total += n as u64;
        if *total > MAX_STAGE_BYTES {
            return Err(CopyError::TooBig);
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(CopyError::Io)?;
    }
    Ok((*hasher.finalize().as_bytes(), size))
}

/// Rebuilds an input directory from `(relative path, bytes)` (replay). Paths come from a
/// record and are untrusted: each component must be a plain name.
///
/// # Errors
///
/// A path with an empty, `.` or `..` component, or a backslash; or an I/O failure.
pub(crate) fn rebuild_dir(
    temp_root: &Path,
    dirs: &[String],
    files: &[(String, Vec<u8>)],
) -> Result<tempfile::TempDir, Error> {
    let dir = tempfile::Builder::new()
        .prefix("corral-in-")
        .tempdir_in(temp_root)
        .map_err(|e| Error::host(format!("cannot create a staging directory: {e}")))?;
    let root = Dir::open_ambient_dir(dir.path(), ambient_authority())
        .map_err(|e| Error::host(format!("cannot open the staging directory: {e}")))?;
    let check = |p: &str| -> Result<PathBuf, Error> {
        let ok = !p.is_empty()
            && !p.contains('\\')
            && !p.contains('\0')
            && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if ok {
            Ok(PathBuf::from(p))
        } else {
            Err(Error::invalid_input(format!(
                "record names an input path `{}` that is not a plain relative path",
                p.escape_debug()
            )))
        }
    };
    for d in dirs {
        root.create_dir_all(check(d)?)
            .map_err(|e| Error::host(format!("cannot rebuild input dir: {e}")))?;
    }
    for (p, bytes) in files {
        root.write(check(p)?, bytes)
            .map_err(|e| Error::host(format!("cannot rebuild input file: {e}")))?;
    }
    Ok(dir)
}
