//! The architecture, checked: the library's modules import each other without cycles, the
//! choke points hold (one module creates stores, one builds sandboxes, one maps errors to
//! verdicts, one writes records), and the command's files do not import each other.
//! docs/architecture.md describes what these tests enforce.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use libtest_mimic::{Failed, Trial};

use crate::support;

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("architecture::library_modules_are_acyclic", acyclic),
        Trial::test("architecture::choke_points", choke_points),
        Trial::test("architecture::commands_do_not_import_each_other", commands),
    ]
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

/// The text without comments (`//` to the end of the line; doc comments included), so that
/// paths named in prose do not count as imports.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The library's top-level module a file belongs to (`lib` for lib.rs).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

/// Names the crate root re-exports (`pub use module::{A, B}` in lib.rs) → their module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let code = code_of(lib);
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for n in names.split(',') {
            let last = n.trim().rsplit("::").next().unwrap_or("").trim();
            if !last.is_empty() {
                out.insert(last.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// The top-level modules `code` refers to through `crate::…` paths (including grouped
/// `use crate::{a, b::c}` imports and names the root re-exports).
fn imports(code: &str, roots: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let firsts: Vec<String> = if let Some(group) = after.strip_prefix('{') {
            // Top-level items of the group (nested groups belong to their first segment).
            let mut depth = 0;
            let mut end = group.len();
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = j;
                        break;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let mut items = Vec::new();
            let mut depth = 0;
            let mut cur = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut cur)),
                    _ if depth == 0 => cur.push(c),
                    _ => {}
                }
            }
            items.push(cur);
            items
                .iter()
                .map(|it| {
                    it.trim()
                        .split("::")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
                .collect()
        } else {
            vec![
                after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            ]
        };
        for f in firsts {
            if f.is_empty() || f == "self" {
                continue;
            }
            let m = roots.get(&f).cloned().unwrap_or(f);
            out.insert(m);
        }
        rest = after;
    }
    out
}

/// The module graph of the library: module → modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = support::repo().join("engine/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let roots = reexports(&lib);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in sources(&src) {
        let m = module_of(&src, &file);
        if m == "lib" {
            continue;
        }
        let deps = imports(&code_of(&text), &roots);
        let entry = g.entry(m.clone()).or_default();
        entry.extend(deps.into_iter().filter(|d| *d != m));
    }
    g
}

/// A cycle in `g`, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut c = path[start..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn acyclic() -> Result<(), Failed> {
    let g = graph();
    if g.len() < 10 {
        return Err(format!("the module graph looks wrong: {g:?}").into());
    }
    // The checker itself must see imports: the job stage uses the sandbox, the sandbox the
    // engine, the verdicts nothing above them.
    for (from, to) in [("job", "engine"), ("sandbox", "engine"), ("eval", "job")] {
        if !g.get(from).is_some_and(|d| d.contains(to)) {
            return Err(format!("the checker missed `{from}` → `{to}`: {g:?}").into());
        }
    }
    if let Some(c) = find_cycle(&g) {
        return Err(format!(
            "import cycle among the library's modules: {}",
            c.join(" → ")
        )
        .into());
    }
    // And it finds a cycle when there is one.
    let mut bad = g.clone();
    bad.entry("engine".into()).or_default().insert("job".into());
    if find_cycle(&bad).is_none() {
        return Err("the cycle finder cannot find cycles".into());
    }
    Ok(())
}

/// Whether `needle` occurs in `code` not as the tail of a longer name (`RecordStore::new(`
/// is not `Store::new(`).
fn contains_token(code: &str, needle: &str) -> bool {
    code.match_indices(needle).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Files (relative to the repository) whose code contains `needle`.
fn files_containing(dirs: &[&str], needle: &str) -> Vec<String> {
    let repo = support::repo();
    let mut out = Vec::new();
    for d in dirs {
        for (file, text) in sources(&repo.join(d)) {
            if contains_token(&code_of(&text), needle) {
                let rel = file.strip_prefix(&repo).unwrap_or(&file);
                out.push(rel.display().to_string());
            }
        }
    }
    out
}

fn choke_points() -> Result<(), Failed> {
    let everywhere = [
        "engine/src",
        "cli/src",
        "bench/src",
        "bench/benches",
        "python/src",
    ];
    let rules: [(&str, &[&str]); 6] = [
        // Only the sandbox creates stores (the raw-wasmtime baselines live beside it).
        (
            "Store::new(",
            &[
                "engine/src/sandbox/mod.rs",
                "engine/src/sandbox/baseline.rs",
            ],
        ),
        // Only the job stage builds a sandbox for a job.
        (".sandbox(&", &["engine/src/job/mod.rs"]),
        // Host errors become verdicts in the job stage; guest outcomes are classified by the
        // verdict module (which also names and matches verdicts). The Python face turns an
        // `invalid_input` verdict back into its exception (and nothing else).
        (
            "Verdict::InvalidInput(",
            &[
                "engine/src/job/mod.rs",
                "engine/src/verdict.rs",
                "python/src/engine.rs",
            ],
        ),
        (
            "Verdict::HostError(",
            &[
                "engine/src/job/mod.rs",
                "engine/src/verdict.rs",
                "engine/src/report.rs",
            ],
        ),
        // Only the job stage writes run records.
        ("record::write(", &["engine/src/job/mod.rs"]),
        // Only the verdict module classifies wasmtime outcomes.
        ("downcast_ref::<Trap>", &["engine/src/verdict.rs"]),
    ];
    let mut errs = Vec::new();
    for (needle, allowed) in rules {
        let found = files_containing(&everywhere, needle);
        if found.is_empty() {
            errs.push(format!("`{needle}` appears nowhere (the rule is stale)"));
        }
        for f in found {
            if !allowed.contains(&f.as_str()) {
                errs.push(format!("`{needle}` in {f} (only {allowed:?} may)"));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n").into())
    }
}

fn commands() -> Result<(), Failed> {
    let dir = support::repo().join("cli/src");
    let commands = [
        "run",
        "check",
        "replay",
        "bundle",
        "eval",
        "humaneval",
        "bench",
    ];
    let mut errs = Vec::new();
    for c in commands {
        let text = std::fs::read_to_string(dir.join(format!("{c}.rs")))
            .map_err(|e| format!("cli/src/{c}.rs: {e}"))?;
        let deps = imports(&code_of(&text), &BTreeMap::new());
        for other in commands {
            if other != c && deps.contains(other) {
                errs.push(format!("cli/src/{c}.rs imports the `{other}` command"));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n").into())
    }
}
