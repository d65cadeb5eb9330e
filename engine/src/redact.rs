//! Redaction: the one home of the functions that keep host paths out of text a guest or a
//! user sees (messages, compiler diagnostics, link errors).
//!
//! corral's own messages never contain host paths to begin with; these functions clean text
//! that comes from elsewhere (wasmtime, the OS, a compiler) before it reaches a report.

use std::path::Path;

/// Replaces anything that looks like an absolute host path with `<path>`.
///
/// Used on text that may carry host error detail (wasmtime or OS errors) before it goes into
/// a message; messages that corral writes itself never contain host paths to begin with.
pub fn scrub_host_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('/') {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let prev = before.chars().last();
        let starts_path = prev.is_none_or(|c| c.is_whitespace() || "`'\"(=:".contains(c));
        let end = after
            .find(|c: char| c.is_whitespace() || "`'\")".contains(c))
            .unwrap_or(after.len());
        let token = &after[..end];
        if starts_path && token.len() > 1 && token[1..].contains(|c: char| c.is_alphanumeric()) {
            out.push_str("<path>");
        } else {
            out.push_str(token);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces host paths in compiler diagnostics, e.g. the work dir with `/src`, the toolchain
/// sysroot with `<toolchain>`, `$HOME` with `~`. Longer paths win; a path only matches when it
/// is followed by a non-name character (so `/tmp/ab` does not match inside `/tmp/abc`).
pub fn neutralise_paths(diagnostics: &str, replacements: &[(&Path, &str)]) -> String {
    let mut reps: Vec<(&str, &str)> = replacements
        .iter()
        .filter_map(|(p, r)| p.to_str().map(|p| (p.trim_end_matches('/'), *r)))
        .filter(|(p, _)| !p.is_empty())
        .collect();
    reps.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let is_name_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '~');
    let mut out = String::with_capacity(diagnostics.len());
    let mut rest = diagnostics;
    let mut prev: Option<char> = None;
    'outer: while !rest.is_empty() {
        if !prev.is_some_and(|c| is_name_char(c) || c == '/') {
            for (from, to) in &reps {
                if let Some(after) = rest.strip_prefix(from)
                    && !after.starts_with(is_name_char)
                {
                    out.push_str(to);
                    prev = to.chars().last();
                    rest = after;
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
            prev = Some(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralise_paths_replaces_longest_first_on_boundaries() {
        let work = Path::new("/tmp/.tmpAb12/job");
        let sysroot = Path::new("/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu");
        let home = Path::new("/root");
        let reps = [(work, "/src"), (sysroot, "<toolchain>"), (home, "~")];
        let diag = "error: couldn't read `/tmp/.tmpAb12/job/a.rs`\n --> /root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/src/x.rs:1\n note: /root/.cargo/env and /rootfs and /tmp/.tmpAb12/jobs and x/root";
        assert_eq!(
            neutralise_paths(diag, &reps),
            "error: couldn't read `/src/a.rs`\n --> <toolchain>/lib/rustlib/src/x.rs:1\n note: ~/.cargo/env and /rootfs and /tmp/.tmpAb12/jobs and x/root"
        );
        assert_eq!(neutralise_paths("'/tmp/.tmpAb12/job'", &reps), "'/src'");
        assert_eq!(neutralise_paths("héllo /root: ü", &reps), "héllo ~: ü");
        assert_eq!(neutralise_paths("", &reps), "");
        assert_eq!(neutralise_paths("/root", &[(Path::new("/"), "X")]), "/root");
    }
}
