//! The host compilers (rustc, Debian clang), each run in the jail.
//!
//! rustc is invoked directly on one file (never cargo, build scripts or proc-macros), from its
//! real sysroot (not the rustup proxy). clang uses only the wasm sysroot headers (`-nostdinc`),
//! so host glibc headers are never seen. Each compile gets a fresh work dir (the only writable
//! place), an empty environment plus a fixed `PATH`, no network, and limits on CPU, memory,
//! output and wall time. Diagnostics come back with host paths replaced by neutral names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::Compiled;
use super::jail::{self, JailLimitKind, JailLimits, JailSpec};
use crate::error::Error;

/// A located toolchain.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    /// The compiler binary.
    program: PathBuf,
    /// The C++ driver (clang only).
    program_cpp: Option<PathBuf>,
    /// Directories it may read.
    read_only: Vec<PathBuf>,
    /// Its version string (part of the compile-cache key).
    pub(crate) version: String,
    /// `(host path, neutral name)` pairs for diagnostics.
    neutral: Vec<(PathBuf, &'static str)>,
    /// Extra environment (e.g. `LD_LIBRARY_PATH` for rustc under bubblewrap).
    env: Vec<(String, String)>,
    /// Include directories (clang).
    includes: Vec<PathBuf>,
    includes_cpp: Vec<PathBuf>,
}

fn limits() -> JailLimits {
    JailLimits {
        cpu_seconds: 20,
        address_space_bytes: 3 << 30,
        file_size_bytes: 64 << 20,
        processes: 32,
        open_files: 256,
        wall_time: Duration::from_secs(60),
        output_bytes: 256 << 10,
        pids_cgroup: None,
    }
}

/// Locates rustc's real sysroot once per process (installing the wasm target if missing).
pub(crate) fn rust() -> Result<Toolchain, Error> {
    static TC: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    TC.get_or_init(|| {
        super::ensure_rust_target("wasm32-wasip1").map_err(|e| e.to_string())?;
        let out = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .map_err(|e| format!("cannot run rustc (is Rust installed?): {e}"))?;
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let program = sysroot.join("bin/rustc");
        if !program.is_file() {
            return Err(format!(
                "rustc's sysroot has no bin/rustc ({})",
                sysroot.display()
            ));
        }
        let version = Command::new(&program)
            .arg("-vV")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| format!("cannot run rustc: {e}"))?;
        // The loader's files for rustc and the linkers it runs (only what they load).
        let lib = sysroot.join("lib");
        let mut programs = vec![program.clone()];
        programs.extend(executables_in(&sysroot.join("lib/rustlib")));
        let mut read_only = jail::loader_paths(&programs, lib.to_str());
        read_only.push(sysroot.clone());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut neutral = vec![(sysroot.clone(), "<rust>")];
        if let Some(h) = home {
            neutral.push((h, "~"));
        }
        Ok(Toolchain {
            program,
            program_cpp: None,
            read_only,
            version,
            neutral,
            env: vec![(
                "LD_LIBRARY_PATH".into(),
                sysroot.join("lib").display().to_string(),
            )],
            includes: Vec::new(),
            includes_cpp: Vec::new(),
        })
    })
    .clone()
    .map_err(Error::host)
}

const CLANG_PACKAGES: &str =
    "clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32";

/// Locates Debian's clang 14 and the wasm sysroot once per process.
pub(crate) fn clang() -> Result<Toolchain, Error> {
    static TC: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    TC.get_or_init(|| {
        let missing = |what: &str| {
            format!("C/C++ support needs {what} (hint: `apt-get install {CLANG_PACKAGES}`, or run scripts/provision.sh)")
        };
        let llvm = PathBuf::from("/usr/lib/llvm-14");
        let program = llvm.join("bin/clang");
        if !program.is_file() {
            return Err(missing("clang 14"));
        }
        let wasi_inc = PathBuf::from("/usr/include/wasm32-wasi");
        let wasi_lib = PathBuf::from("/usr/lib/wasm32-wasi");
        if !wasi_inc.join("stdio.h").is_file() || !wasi_lib.join("libc.a").is_file() {
            return Err(missing("the WebAssembly C library (wasi-libc)"));
        }
        let resource = std::fs::read_dir(llvm.join("lib/clang"))
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.join("include/stddef.h").is_file()))
            .ok_or_else(|| missing("clang's resource headers"))?;
        if !resource.join("lib/wasi").is_dir() {
            return Err(missing("the wasm32 compiler runtime (libclang-rt-14-dev-wasm32)"));
        }
        let cxx = llvm.join("include/wasm32-wasi/c++/v1");
        let version = Command::new(&program)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| format!("cannot run clang: {e}"))?;
        // The loader's files for clang and the linker it runs (only what they load).
        let mut read_only =
            jail::loader_paths(&[program.clone(), llvm.join("bin/wasm-ld")], None);
        read_only.extend([llvm.clone(), wasi_inc.clone(), wasi_lib.clone()]);
        // clang finds its linker by name on PATH: the links to it (visible, not grants).
        read_only.extend(
            ["/usr/bin/wasm-ld-14", "/usr/bin/wasm-ld"]
                .iter()
                .map(PathBuf::from)
                .filter(|p| std::fs::symlink_metadata(p).is_ok()),
        );
        Ok(Toolchain {
            program_cpp: Some(llvm.join("bin/clang++")),
            program,
            read_only,
            version,
            neutral: vec![
                (llvm, "<clang>"),
                (wasi_inc.clone(), "<wasi-libc>"),
                (wasi_lib, "<wasi-libc>"),
            ],
            env: Vec::new(),
            includes: vec![resource.join("include"), wasi_inc.clone()],
            includes_cpp: vec![cxx, resource.join("include"), wasi_inc],
        })
    })
    .clone()
    .map_err(Error::host)
}

/// A file name safe to use in the work dir and to show in diagnostics.
fn file_name(name: &str, ext: &str, fallback: &str) -> String {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.ends_with(ext)
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        name.to_string()
    } else {
        fallback.to_string()
    }
}

/// The link in a build dir to the toolchain's library dir (a name no source file can take:
/// source names never start with a dot).
const LIB_LINK: &str = ".corral-lib";

/// Runs the compiler in the jail: `Ok(Ok(output))` when it succeeded (its warnings, host
/// paths replaced), `Ok(Err(diagnostics))` when it failed.
fn run(
    tc: &Toolchain,
    program: &Path,
    args: Vec<String>,
    work: &Path,
) -> Result<Result<String, String>, Error> {
    let mut spec = JailSpec::new(program, work);
    spec.args = args.into_iter().map(Into::into).collect();
    spec.read_only = tc.read_only.clone();
    // The environment is all the compiler sees of us, and a guest can compile it in
    // (`option_env!`): only fixed, path-free values. Temporary files go to the work dir
    // (the cwd) through a relative TMPDIR.
    spec.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("TMPDIR".into(), ".".into()),
    ];
    // Without /proc (neither jail has one), ld.so cannot expand $ORIGIN for a rustup rustc:
    // it needs LD_LIBRARY_PATH. Its value must not be a host path either (`option_env!`
    // would compile the toolchain's location under the user's home into the module): a
    // relative link in the work dir (the cwd of the compiler and of the linker it starts)
    // points at the library dir, which the jail grants read-only anyway.
    for (key, value) in &tc.env {
        if key == "LD_LIBRARY_PATH" && Path::new(value).is_absolute() {
            let link = work.join(LIB_LINK);
            std::os::unix::fs::symlink(value, &link)
                .map_err(|e| Error::host(format!("cannot prepare the build directory: {e}")))?;
            spec.env.push((key.clone(), format!("./{LIB_LINK}")));
        } else {
            spec.env.push((key.clone(), value.clone()));
        }
    }
    spec.limits = limits();
    let outcome = jail::run_jailed(&spec).map_err(|e| match e {
        jail::JailError::Unavailable(why) => Error::host(format!(
            "cannot compile safely: no compile jail is available here ({why}) (hint: a kernel with Landlock and user namespaces, or the `bubblewrap` package)"
        )),
        other => Error::host(format!("the compile jail failed: {other}")),
    })?;
    let mut neutral: Vec<(&Path, &str)> =
        tc.neutral.iter().map(|(p, n)| (p.as_path(), *n)).collect();
    let work_with_slash = format!("{}/", work.display());
    neutral.push((Path::new(&work_with_slash), ""));
    neutral.push((work, "."));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&outcome.stdout),
        String::from_utf8_lossy(&outcome.stderr)
    );
    let mut diag = crate::redact::neutralise_paths(&text, &neutral);
    diag = crate::redact::scrub_host_paths(&diag);
    if let Some(limit) = outcome.limit_hit {
        let what = match limit {
            // Which of the two a runaway compiler hits first depends on the machine's load;
            // the diagnosis must not (reports are deterministic), so both read the same.
            JailLimitKind::Cpu | JailLimitKind::WallTime => {
                "time limit (20 s of CPU time, 60 s of wall time)"
            }
            JailLimitKind::Memory => "memory limit (3 GiB)",
            JailLimitKind::FileSize => "output file size limit (64 MiB)",
            JailLimitKind::Processes => "process limit",
            JailLimitKind::Output => "diagnostics limit (256 KiB)",
        };
        // What a compiler prints while dying of a limit (backtraces, partial output) varies
        // run to run; the limit is the diagnosis.
        return Ok(Err(format!("the compiler exceeded its {what}")));
    }
    let signaled = matches!(outcome.status, jail::ExitKind::Signaled(_));
    let dumped = diag
        .lines()
        .any(|l| l.starts_with("Stack dump:") || l.starts_with("PLEASE submit a bug report"));
    if signaled || dumped {
        return Ok(Err(crashed(&diag)));
    }
    if !outcome.success() {
        return Ok(Err(if diag.trim().is_empty() {
            format!("the compiler failed ({:?})", outcome.status)
        } else {
            diag
        }));
    }
    Ok(Ok(diag))
}

/// Diagnostics of a compiler that crashed: the lines before its stack dump, with addresses
/// (which differ run to run) masked.
fn crashed(diag: &str) -> String {
    let mut out = String::from("the compiler crashed\n");
    for line in diag.lines() {
        if line.starts_with("Stack dump:")
            || line.starts_with("PLEASE submit")
            || line.contains("stack backtrace:")
        {
            break;
        }
        out.push_str(&mask_addresses(line));
        out.push('\n');
    }
    out
}

/// Replaces hex numbers of 8+ digits (addresses) with `0x…`.
fn mask_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0' && i + 1 < b.len() && b[i + 1] == b'x' {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j - i - 2 >= 8 {
                out.push_str("0x…");
                i = j;
                continue;
            }
        }
        let c = line[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The flags every C (or, with `cpp`, C++) guest is compiled with, before the include
/// paths, the file and the output (part of the compile cache key).
pub(crate) fn c_flags(cpp: bool) -> Vec<&'static str> {
    const COMMON: &[&str] = &[
        "--target=wasm32-wasi",
        "-O2",
        // Fixed-width SIMD (wasm 2.0) lets loops vectorise; relaxed SIMD stays off.
        "-msimd128",
        "-nostdinc",
        // A crashing clang otherwise writes a reproducer with a random name and says so.
        "-fno-crash-diagnostics",
        // The compile date and time would make the same source compile differently.
        "-Wno-builtin-macro-redefined",
        "-D__DATE__=\"Jan  1 1970\"",
        "-D__TIME__=\"00:00:00\"",
        "-D__TIMESTAMP__=\"Thu Jan  1 00:00:00 1970\"",
        // A 64-bit value stored in a 32-bit `long`, `size_t` or pointer: natively (LP64) no
        // loss, here (ILP32) a truncation. Reported with the run (`platform_warnings`).
        "-Wshorten-64-to-32",
    ];
    const CPP: &[&str] = &[
        "-std=c++17",
        "-fno-exceptions",
        "-nostdinc++",
        // corral's own headers (`<bits/stdc++.h>`), written into the build dir: searched
        // before libc++'s.
        "-isystem",
        CXX_INCLUDE_DIR,
    ];
    let mut flags = COMMON.to_vec();
    if cpp {
        flags.extend_from_slice(CPP);
    }
    flags
}

/// The build-dir-relative directory of corral's own C++ headers ([`CXX_HEADERS`]).
const CXX_INCLUDE_DIR: &str = "corral-include";

/// Headers corral adds to the C++ toolchain, `(path below CXX_INCLUDE_DIR, text)`: GCC's
/// `<bits/stdc++.h>` (every standard header the wasm sysroot has), which most
/// competitive-programming C++ starts with. Part of the compile cache key.
pub(crate) const CXX_HEADERS: &[(&str, &str)] =
    &[("bits/stdc++.h", include_str!("include/bits/stdc++.h"))];

/// Makes a compile failure of C or C++ say what corral does not have, in front of clang's
/// own diagnostics: exceptions (`throw`/`try` under `-fno-exceptions`, or a link against the
/// C++ runtime's throw functions) and libraries that are not installed (a missing
/// `<header>` that is not a path). The added line has the `file:line:col: error:` form of the
/// clang line it explains, so it is the one the report's message shows.
pub(crate) fn explain(diag: String, cpp: bool) -> String {
    let mut notes = Vec::new();
    for line in diag.lines() {
        // FILE:LINE:COL: error: cannot use 'throw' with exceptions disabled
        if let Some((at, rest)) = line.split_once(": error: ")
            && rest.starts_with("cannot use '")
            && rest.ends_with("' with exceptions disabled")
        {
            notes.push(format!(
                "{at}: error: C++ exceptions (`throw`, `try`, `catch`) are not available: corral compiles C++ for WebAssembly without exception handling (see docs/platform.md)"
            ));
            break;
        }
        // FILE:LINE:COL: fatal error: 'boost/any.hpp' file not found
        if let Some((at, rest)) = line.split_once(": fatal error: '")
            && let Some(header) = rest.strip_suffix("' file not found")
            && !header.starts_with('/')
            && !header.starts_with('.')
            && !header.contains("..")
        {
            let lang = if cpp { "C++" } else { "C" };
            notes.push(format!(
                "{at}: error: `{header}` is not available: corral compiles {lang} against the standard library only (wasi-libc{}), without Boost, OpenSSL or other libraries (see docs/platform.md)",
                if cpp { " and libc++" } else { "" }
            ));
            break;
        }
    }
    if notes.is_empty()
        && cpp
        && (diag.contains("__cxa_throw") || diag.contains("__cxa_allocate_exception"))
    {
        notes.push("error: C++ exceptions are not available: corral compiles C++ for WebAssembly without exception handling (see docs/platform.md)".into());
    }
    if notes.is_empty() {
        return diag;
    }
    format!("{}\n{diag}", notes.join("\n"))
}

/// The clang warnings that point at wasm32's 32-bit model, the flags they carry.
const PLATFORM_WARNINGS: [&str; 3] = [
    "[-Wshorten-64-to-32]",
    "[-Wconstant-conversion]",
    "[-Winteger-overflow]",
];

/// At most this many warning lines are kept.
const MAX_PLATFORM_WARNINGS: usize = 20;

/// From the output of a compile that succeeded: the warnings about conversions that lose
/// bits on wasm32 but not on a 64-bit machine (`long`, `size_t` and pointers are 32-bit
/// here), one line each under a note saying why they matter, or `None`. The run goes on:
/// the job stage puts them in the report's `diagnostics`.
pub(crate) fn platform_warnings(output: &str) -> Option<String> {
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| {
            l.contains(": warning: ")
                && PLATFORM_WARNINGS.iter().any(|w| l.ends_with(w))
                // Only where the narrow type is `long` (or a `size_t`/pointer-sized alias of
                // it): `long long` to `int` loses bits natively too.
                && (l.contains("'long'") || l.contains("'unsigned long'"))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut out = String::from(
        "note: the program compiled, with warnings about values that do not fit in 32 bits: `long`, `size_t` and pointers are 32-bit on wasm32 (64-bit natively), so the results may differ from a native run (see docs/platform.md)\n",
    );
    for l in lines.iter().take(MAX_PLATFORM_WARNINGS) {
        out.push_str(l);
        out.push('\n');
    }
    if lines.len() > MAX_PLATFORM_WARNINGS {
        out.push_str(&format!(
            "… and {} more\n",
            lines.len() - MAX_PLATFORM_WARNINGS
        ));
    }
    Some(out)
}

/// The regular files below `dir` that are executables (the linkers rustc runs), at most
/// a few levels down.
fn executables_in(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            };
            if m.is_dir() && depth < 4 {
                stack.push((p, depth + 1));
            } else if m.is_file()
                && m.permissions().mode() & 0o111 != 0
                && p.parent()
                    .is_some_and(|d| d.ends_with("bin") || d.ends_with("gcc-ld"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Compiles one Rust file (a binary, or with `test` a test harness).
pub(crate) fn compile_rust(
    tc: &Toolchain,
    source: &[u8],
    name: &str,
    temp_root: &Path,
    test: bool,
) -> Result<Compiled, Error> {
    let work = tempfile::Builder::new()
        .prefix("corral-build-")
        .tempdir_in(temp_root)
        .map_err(|e| Error::host(format!("cannot create a build directory: {e}")))?;
    let file = file_name(name, ".rs", "main.rs");
    std::fs::write(work.path().join(&file), source)
        .map_err(|e| Error::host(format!("cannot write the source: {e}")))?;
    let mut args: Vec<String> = super::RUST_FLAGS.iter().map(|s| s.to_string()).collect();
    if test {
        args.push("--test".into());
    }
    args.extend([
        "--crate-name".into(),
        "main".into(),
        "-o".into(),
        "main.wasm".into(),
        file,
    ]);
    match run(tc, &tc.program, args, work.path())? {
        Err(diag) => Ok(Compiled::Error(diag)),
        Ok(_) => {
            let bytes = std::fs::read(work.path().join("main.wasm"))
                .map_err(|e| Error::host(format!("cannot read rustc output: {e}")))?;
            Ok(Compiled::Wasm(bytes))
        }
    }
}

/// Compiles one C or C++ file.
pub(crate) fn compile_c(
    tc: &Toolchain,
    source: &[u8],
    name: &str,
    temp_root: &Path,
    cpp: bool,
) -> Result<Compiled, Error> {
    let work = tempfile::Builder::new()
        .prefix("corral-build-")
        .tempdir_in(temp_root)
        .map_err(|e| Error::host(format!("cannot create a build directory: {e}")))?;
    let (ext, fallback) = if cpp {
        (
            if name.ends_with(".cc") { ".cc" } else { ".cpp" },
            "main.cpp",
        )
    } else {
        (".c", "main.c")
    };
    let file = file_name(name, ext, fallback);
    std::fs::write(work.path().join(&file), source)
        .map_err(|e| Error::host(format!("cannot write the source: {e}")))?;
    if cpp {
        for (path, text) in CXX_HEADERS {
            let p = work.path().join(CXX_INCLUDE_DIR).join(path);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::host(format!("cannot write corral's headers: {e}")))?;
            }
            std::fs::write(&p, text)
                .map_err(|e| Error::host(format!("cannot write corral's headers: {e}")))?;
        }
    }
    let mut args: Vec<String> = c_flags(cpp).iter().map(|s| s.to_string()).collect();
    let includes = if cpp { &tc.includes_cpp } else { &tc.includes };
    for inc in includes {
        args.push("-isystem".into());
        args.push(inc.display().to_string());
    }
    args.extend([
        file,
        "-o".into(),
        "main.wasm".into(),
        "-Wl,--strip-all".into(),
    ]);
    let program = if cpp {
        tc.program_cpp.as_deref().unwrap_or(&tc.program)
    } else {
        &tc.program
    };
    match run(tc, program, args, work.path())? {
        Err(diag) => Ok(Compiled::Error(explain(diag, cpp))),
        Ok(output) => {
            let bytes = std::fs::read(work.path().join("main.wasm"))
                .map_err(|e| Error::host(format!("cannot read clang output: {e}")))?;
            Ok(match platform_warnings(&output) {
                Some(warnings) => Compiled::Warned {
                    wasm: bytes,
                    warnings,
                },
                None => Compiled::Wasm(bytes),
            })
        }
    }
}
