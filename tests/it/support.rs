//! Shared test support: paths, canaries, host-tree snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_path_buf()
}

/// `CORRAL_HOME` of the test run (under target/), shared by CLI and in-process tests so the
/// language runners are built once.
pub fn home() -> PathBuf {
    repo().join("target").join("corral-test-home")
}

/// The shared cache (compiled wasm, runners, artifacts): `$CORRAL_HOME/cache`.
pub fn cache_dir() -> PathBuf {
    let dir = home().join("cache");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The secret planted in canary files and in this process's environment. Must never appear
/// in any guest output, message or record.
pub fn secret() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("CANARY-{:x}-{}", nanos, std::process::id())
    })
}

/// The environment variable holding the secret in this process.
pub const SECRET_ENV: &str = "CORRAL_TEST_HOST_SECRET";

/// One entry of a host tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File([u8; 32]),
    Link(PathBuf),
    Other,
}

/// Snapshots every entry below `root`, skipping `skip` (relative paths).
pub fn snapshot(root: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for entry in rd.flatten() {
            let rel_child = rel.join(entry.file_name());
            if skip.iter().any(|s| rel_child.starts_with(s)) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            let node = if meta.file_type().is_symlink() {
                Node::Link(std::fs::read_link(entry.path()).unwrap_or_default())
            } else if meta.is_dir() {
                stack.push(rel_child.clone());
                Node::Dir
            } else if meta.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                Node::File(*blake3::hash(&bytes).as_bytes())
            } else {
                Node::Other
            };
            out.insert(rel_child, node);
        }
    }
    out
}

/// Differences between two snapshots, as readable lines.
pub fn diff(before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    let mut lines = Vec::new();
    for (p, n) in before {
        match after.get(p) {
            None => lines.push(format!("removed {}", p.display())),
            Some(m) if m != n => lines.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    for p in after.keys() {
        if !before.contains_key(p) {
            lines.push(format!("created {}", p.display()));
        }
    }
    lines
}

/// A canary file at a fixed absolute path, for compile-time attack fixtures
/// (`include_str!("/tmp/corral-ct-canary.txt")`, `#include "/tmp/corral-ct-canary.txt"`).
pub const CT_CANARY: &str = "/tmp/corral-ct-canary.txt";

static CT_CANARY_PLANTED: OnceLock<()> = OnceLock::new();

/// Writes [`CT_CANARY`] (once per process).
pub fn plant_ct_canary() {
    CT_CANARY_PLANTED.get_or_init(|| {
        let _ = std::fs::write(CT_CANARY, format!("{} compile-time canary\n", secret()));
    });
}

/// Removes [`CT_CANARY`] if this process planted it (after all tests ran: nothing of the
/// suite stays in the shared temp dir).
pub fn remove_ct_canary() {
    if CT_CANARY_PLANTED.get().is_some() {
        let _ = std::fs::remove_file(CT_CANARY);
    }
}
