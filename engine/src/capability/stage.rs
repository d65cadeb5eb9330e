//! Staging of read-only input directories into engine-owned copies.
//!
//! A `--dir HOST::GUEST` input is copied, through cap-std handles, into a fresh private
//! directory that the guest then sees read-only. Regular files and directories are copied in
//! name order. A relative symlink whose target is a file or directory inside the input tree
//! (`ok_link -> sub/inner.txt`) is staged as a copy of its target, resolved inside the tree
//! (cap-std refuses any step outside it); absolute links, links that leave the tree, links
//! to a directory that contains them, devices, FIFOs and sockets are skipped, so nothing
//! outside the input tree can be reached through it. Files are opened non-blocking and must
//! still be regular files once open (a FIFO swapped in cannot stall the host). The copy is
//! also what makes a run independent of the host tree's later changes, and it yields the
//! content hash of the input that run records store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::error::Error;

/// Most bytes the staged inputs of one run may hold together.
pub const MAX_STAGE_BYTES: u64 = 1 << 30;
/// Most files and directories the staged inputs of one run may hold together.
pub const MAX_STAGE_ENTRIES: u64 = 100_000;
/// Deepest directory nesting staged.
pub const MAX_STAGE_DEPTH: usize = 64;

/// What the staged inputs of one run may still hold: every input staged (or rebuilt by
/// replay) takes from it, so a run's inputs together stay within [`MAX_STAGE_BYTES`] and
/// [`MAX_STAGE_ENTRIES`] however many directories it names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StageBudget {
    bytes: u64,
    entries: u64,
}

impl Default for StageBudget {
    fn default() -> Self {
        StageBudget {
            bytes: MAX_STAGE_BYTES,
            entries: MAX_STAGE_ENTRIES,
        }
    }
}

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
/// The host path is not a readable directory, or the tree exceeds what is left of the run's
/// `budget` ([`MAX_STAGE_BYTES`], [`MAX_STAGE_ENTRIES`] for all inputs together) or
/// [`MAX_STAGE_DEPTH`].
///
/// # Ambient authority
///
/// Opens `host` by path with the process's authority (the user named it on the command line).
/// Everything below it is reached through the opened handle only.
pub(crate) fn stage_dir(
    host: &Path,
    temp_root: &Path,
    budget: &mut StageBudget,
) -> Result<Staged, Error> {
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
    let root = src
        .try_clone()
        .map_err(|e| Error::host(format!("cannot open input directory `{shown}`: {e}")))?;
    let mut total = MAX_STAGE_BYTES - budget.bytes;
    let mut entries = MAX_STAGE_ENTRIES - budget.entries;
    let too_big = || {
        Error::invalid_input(format!(
            "input directory `{shown}` holds more than {MAX_STAGE_BYTES} bytes (with the run's other inputs)"
        ))
    };
    // Iterative walk: (source dir, destination dir, relative path, depth, identities of the
    // directories on the way down, for refusing a link to a directory that contains it).
    let src_id = dir_identity(&src)
        .map_err(|e| Error::invalid_input(format!("cannot read input `{shown}`: {e}")))?;
    let mut stack: Vec<Walk> = vec![(src, dst, String::new(), 0, vec![src_id])];
    while let Some((from, to, rel, depth, ancestors)) = stack.pop() {
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
                    "input directory `{shown}` has more than {MAX_STAGE_ENTRIES} entries (with the run's other inputs)"
                )));
            }
            let meta = from.symlink_metadata(&name).map_err(|e| {
                Error::invalid_input(format!("cannot read `{child_rel}` in input `{shown}`: {e}"))
            })?;
            let ft = meta.file_type();
            // What to copy: the entry itself, or for an in-tree link its target (opened
            // through the root handle, so no step of the resolution leaves the tree).
            let source = if ft.is_dir() {
                Source::Dir(from.open_dir(&name).map_err(|e| {
                    Error::invalid_input(format!(
                        "cannot open `{child_rel}` in input `{shown}`: {e}"
                    ))
                })?)
            } else if ft.is_file() {
                match open_file(&from, Path::new(&name)) {
                    Some(f) => Source::File(f),
                    None => Source::Skip,
                }
            } else if ft.is_symlink() {
                link_target(&root, &from, &rel, &name)
            } else {
                Source::Skip
            };
            match source {
                Source::Dir(sub_from) => {
                    if depth + 1 > MAX_STAGE_DEPTH {
                        return Err(Error::invalid_input(format!(
                            "input directory `{shown}` is nested deeper than {MAX_STAGE_DEPTH} levels"
                        )));
                    }
                    let id = dir_identity(&sub_from).map_err(|e| {
                        Error::invalid_input(format!(
                            "cannot read `{child_rel}` in input `{shown}`: {e}"
                        ))
                    })?;
                    if ancestors.contains(&id) {
                        // A link to a directory that contains it would copy forever.
                        staged.skipped.push(child_rel);
                        continue;
                    }
                    to.create_dir(&name)
                        .map_err(|e| Error::host(format!("cannot stage `{child_rel}`: {e}")))?;
                    let sub_to = to
                        .open_dir(&name)
                        .map_err(|e| Error::host(format!("cannot stage `{child_rel}`: {e}")))?;
                    staged.dirs.push(child_rel.clone());
                    let mut chain = ancestors.clone();
                    chain.push(id);
                    subdirs.push((sub_from, sub_to, format!("{child_rel}/"), depth + 1, chain));
                }
                Source::File(file) => {
                    let (hash, size) =
                        copy_file(file, &to, &name, &mut total).map_err(|e| match e {
                            CopyError::TooBig => too_big(),
                            CopyError::Io(e) => Error::invalid_input(format!(
                                "cannot copy `{child_rel}` from input `{shown}`: {e}"
                            )),
                        })?;
                    staged.files.push(StagedFile {
                        path: child_rel,
                        hash,
                        size,
                    });
                }
                Source::Skip => staged.skipped.push(child_rel),
            }
        }
        // Depth-first in name order: push in reverse so the smallest name is walked first.
        stack.extend(subdirs.into_iter().rev());
    }
    budget.bytes = MAX_STAGE_BYTES.saturating_sub(total);
    budget.entries = MAX_STAGE_ENTRIES.saturating_sub(entries);
    Ok(staged)
}

/// One directory still to stage: source, destination, relative path, depth, and the
/// identities of the directories on the way down to it.
type Walk = (Dir, Dir, String, usize, Vec<(u64, u64)>);

/// What one input entry is staged from.
enum Source {
    File(cap_std::fs::File),
    Dir(Dir),
    Skip,
}

/// The `(dev, ino)` of a directory.
fn dir_identity(d: &Dir) -> std::io::Result<(u64, u64)> {
    use cap_std::fs::MetadataExt;
    let m = d.dir_metadata()?;
    Ok((m.dev(), m.ino()))
}

/// Opens a regular file without blocking (a FIFO or device swapped in since it was
/// listed is not waited on) and checks it is still a regular file once open.
fn open_file(dir: &Dir, path: &Path) -> Option<cap_std::fs::File> {
    use cap_std::fs::OpenOptionsExt;
    let mut opts = cap_std::fs::OpenOptions::new();
    opts.read(true).custom_flags(libc::O_NONBLOCK);
    let f = dir.open_with(path, &opts).ok()?;
    f.metadata().ok()?.is_file().then_some(f)
}

/// The target of the symlink `name` in the directory `from` (at `rel` inside the input),
/// if it is a relative link to a file or directory inside the input tree. The target is
/// resolved lexically against `rel` (a `..` above the root refuses it), then opened through
/// the root handle, which refuses every step that would leave the tree (absolute or
/// escaping links met on the way included).
fn link_target(root: &Dir, from: &Dir, rel: &str, name: &std::ffi::OsStr) -> Source {
    let Ok(target) = from.read_link(name) else {
        return Source::Skip;
    };
    let Some(target) = target.to_str() else {
        return Source::Skip;
    };
    if target.starts_with('/') {
        return Source::Skip;
    }
    let mut parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Source::Skip;
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Source::Skip; // the input root itself contains every link
    }
    let path = PathBuf::from(parts.join("/"));
    match root.metadata(&path) {
        Ok(m) if m.is_dir() => root.open_dir(&path).map_or(Source::Skip, Source::Dir),
        Ok(m) if m.is_file() => open_file(root, &path).map_or(Source::Skip, Source::File),
        _ => Source::Skip,
    }
}

enum CopyError {
    TooBig,
    Io(std::io::Error),
}

fn copy_file(
    mut src: cap_std::fs::File,
    to: &Dir,
    name: &std::ffi::OsStr,
    total: &mut u64,
) -> Result<([u8; 32], u64), CopyError> {
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

/// Checks a record's listing of an input directory against what staging a fresh run allows,
/// before anything is written: every path a plain relative path, every parent listed as a
/// directory, no path twice (nor both a file and a directory), at most [`MAX_STAGE_DEPTH`]
/// levels of directories, and what is left of the run's `budget` of entries and bytes
/// (`files` gives each file's size), which it then takes.
///
/// # Errors
///
/// The first reason the listing cannot be staged, as a sentence.
pub(crate) fn check_listing(
    dirs: &[String],
    files: &[(&str, u64)],
    budget: &mut StageBudget,
) -> Result<(), String> {
    use std::collections::BTreeSet;
    let entries = dirs.len() as u64 + files.len() as u64;
    if entries > budget.entries {
        return Err(format!(
            "it lists {entries} entries, more than the {MAX_STAGE_ENTRIES} a run's staged inputs may hold together"
        ));
    }
    let bytes = files
        .iter()
        .try_fold(0u64, |t, (_, n)| t.checked_add(*n))
        .filter(|t| *t <= budget.bytes);
    let Some(bytes) = bytes else {
        return Err(format!(
            "its files hold more than the {MAX_STAGE_BYTES} bytes a run's staged inputs may hold together"
        ));
    };
    let plain = |p: &str| {
        !p.is_empty()
            && !p.contains('\\')
            && !p.contains('\0')
            && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
    };
    let mut seen_dirs: BTreeSet<&str> = BTreeSet::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let parent = |p: &str| p.rfind('/').map(|i| p[..i].to_string());
    for d in dirs {
        if !plain(d) {
            return Err(format!(
                "`{}` is not a plain relative path",
                d.escape_debug()
            ));
        }
        if d.split('/').count() > MAX_STAGE_DEPTH {
            return Err(format!(
                "`{}` is nested deeper than {MAX_STAGE_DEPTH} levels",
                d.escape_debug()
            ));
        }
        if !seen.insert(d) {
            return Err(format!("`{}` is listed twice", d.escape_debug()));
        }
        if let Some(p) = parent(d)
            && !seen_dirs.contains(p.as_str())
        {
            return Err(format!(
                "`{}` is listed before its parent directory",
                d.escape_debug()
            ));
        }
        seen_dirs.insert(d);
    }
    for (f, _) in files {
        if !plain(f) {
            return Err(format!(
                "`{}` is not a plain relative path",
                f.escape_debug()
            ));
        }
        if !seen.insert(f) {
            return Err(format!(
                "`{}` is listed twice (or as both a file and a directory)",
                f.escape_debug()
            ));
        }
        if let Some(p) = parent(f)
            && !seen_dirs.contains(p.as_str())
        {
            return Err(format!(
                "`{}` is in a directory the listing does not have",
                f.escape_debug()
            ));
        }
    }
    budget.bytes -= bytes;
    budget.entries -= entries;
    Ok(())
}

/// Rebuilds an input directory from `(relative path, bytes)` (replay). Paths come from a
/// record and are untrusted: the listing must pass [`check_listing`] (on a budget of its own:
/// the caller applies the run's) before anything is written.
///
/// # Errors
///
/// A listing [`check_listing`] refuses ([`ErrorKind::InvalidInput`](crate::ErrorKind)), or
/// an I/O failure.
pub(crate) fn rebuild_dir(
    temp_root: &Path,
    dirs: &[String],
    files: &[(String, Vec<u8>)],
) -> Result<tempfile::TempDir, Error> {
    let sizes: Vec<(&str, u64)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.len() as u64))
        .collect();
    check_listing(dirs, &sizes, &mut StageBudget::default())
        .map_err(|e| Error::invalid_input(format!("the record's input listing is refused: {e}")))?;
    let dir = tempfile::Builder::new()
        .prefix("corral-in-")
        .tempdir_in(temp_root)
        .map_err(|e| Error::host(format!("cannot create a staging directory: {e}")))?;
    let root = Dir::open_ambient_dir(dir.path(), ambient_authority())
        .map_err(|e| Error::host(format!("cannot open the staging directory: {e}")))?;
    for d in dirs {
        root.create_dir(d)
            .map_err(|e| Error::host(format!("cannot rebuild input dir: {e}")))?;
    }
    for (p, bytes) in files {
        root.write(p, bytes)
            .map_err(|e| Error::host(format!("cannot rebuild input file: {e}")))?;
    }
    Ok(dir)
}
