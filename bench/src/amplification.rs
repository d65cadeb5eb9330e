//! The `amplification` group: how much host time a hostile call pattern buys per fuel unit,
//! against a plain wasm loop measured in the same run.
//!
//! Fuel is the deterministic budget; a guest that makes the host work much harder per fuel
//! unit than plain wasm code does would end at the wall clock (non-deterministic, not
//! replayable) instead of at its fuel budget. For each pattern the guest repeats one hostile
//! call `k` and `2k` times; the row is the marginal host time per marginal fuel unit,
//! `(t(2k) - t(k)) / (fuel(2k) - fuel(k))` (setup and per-run costs cancel), as time per
//! 1,000,000 fuel units; the baseline is the same quantity for a plain counting loop. The target
//! is at most 10× the loop for every row.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{BenchOptions, Row, Value};
use corral::compile::Language;
use corral::job::{self, Invocation, Program, Recording};
use corral::policy::Policy;
use corral::{Access, DirGrant, Engine, EngineConfig, Error, Verdict};

type Rows = Result<Vec<Row>, Error>;

/// Entries in the directory the listing patterns read.
const LIST_ENTRIES: usize = 5_000;
/// Subscriptions per `poll_oneoff`.
const POLL_SUBS: u32 = 10_000;
/// Zero-length iovecs per `fd_write`.
const EMPTY_IOVECS: u32 = 1_000_000;
/// Iovecs, all pointing at the same 64 KiB, per `fd_pwrite`.
const ALIASED_IOVECS: u32 = 16_384;
/// Host time one measured run should take, roughly.
const TARGET_RUN: Duration = Duration::from_millis(150);

/// One hostile pattern: a name, and the guest repeating it `k` times.
struct Pattern {
    name: &'static str,
    guest: fn(u32) -> String,
    /// Most repetitions worth trying (quotas bound some patterns).
    max_k: u32,
}

const PATTERNS: [Pattern; 14] = [
    Pattern {
        name: "fd_readdir: whole 5,000-entry directory, 64 KiB pages",
        guest: readdir_wat,
        max_k: 100_000,
    },
    Pattern {
        name: "fd_readdir: first page only, cookie 0",
        guest: readdir_first_page_wat,
        max_k: 1_000_000,
    },
    Pattern {
        name: "fd_readdir after creating and removing a file (a changed directory)",
        guest: readdir_changed_wat,
        // 2k files created in a run stay within permissive's 100,000.
        max_k: 40_000,
    },
    Pattern {
        name: "p2 read-directory (stream created and dropped), 5,000 entries",
        guest: p2_open_stream_wat,
        max_k: 1_000_000,
    },
    Pattern {
        name: "p2 read-directory + every read-directory-entry, 5,000 entries",
        guest: p2_readdir_wat,
        max_k: 100_000,
    },
    Pattern {
        name: "fd_write with 1,000,000 zero-length iovecs",
        guest: empty_iovecs_wat,
        max_k: 100_000,
    },
    Pattern {
        name: "fd_pwrite with 16,384 iovecs aliasing one 64 KiB buffer",
        guest: aliased_iovecs_wat,
        max_k: 4_000,
    },
    Pattern {
        name: "poll_oneoff with 10,000 clock subscriptions",
        guest: poll_wat,
        max_k: 100_000,
    },
    Pattern {
        name: "path_open + fd_close, 4 KiB `./././…` path",
        guest: dotted_open_wat,
        max_k: 1_000_000,
    },
    Pattern {
        name: "path_filestat_get, 4 KiB `./././…` path",
        guest: dotted_stat_wat,
        max_k: 1_000_000,
    },
    Pattern {
        name: "fd_prestat_dir_name with a 16 MiB length",
        guest: prestat_name_wat,
        max_k: 1_000_000,
    },
    Pattern {
        name: "random_get of 1 MiB",
        guest: random_wat,
        max_k: 100_000,
    },
    Pattern {
        name: "fd_pread of 1 MiB from a file",
        guest: pread_wat,
        max_k: 100_000,
    },
    Pattern {
        name: "fd_pwrite of 1 MiB at offset 0",
        guest: pwrite_wat,
        max_k: 400,
    },
];

pub(super) fn amplification(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Rows {
    let engine = Engine::new(EngineConfig {
        temp_root: opts.temp_root.clone(),
        cache_dir: Some(opts.cache_dir.clone()),
        ..EngineConfig::default()
    })?;
    let policy = Policy::bundled("permissive").map_err(|e| Error::host(e.to_string()))?;
    let data = tempdir(opts)?;
    let list = tempdir(opts)?;
    populate(data.path(), list.path())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::host(format!("cannot start the runtime: {e}")))?;
    let bench = Bench {
        engine: &engine,
        policy: &policy,
        data: data.path(),
        list: list.path(),
        rt: &rt,
    };
    let rounds = if opts.quick { 3 } else { 7 };

    let loop_pair = bench.pair(loop_wat, 1 << 30)?;
    // A pattern that fails (a guest that does not end `ok`) gives a skipped row; the others
    // still run.
    let mut measured: Vec<(&Pattern, Result<Pair, Error>)> = Vec::new();
    for p in &PATTERNS {
        progress(&format!("bench: amplification: {}", p.name));
        measured.push((p, bench.pair(p.guest, p.max_k)));
    }
    // Rounds interleave the loop with every pattern, so load changes hit all alike.
    let mut baseline = Vec::new();
    let mut samples: Vec<Result<Vec<f64>, String>> = vec![Ok(Vec::new()); PATTERNS.len()];
    for _ in 0..rounds {
        baseline.push(bench.ns_per_fuel(&loop_pair)?);
        for (i, (_, pair)) in measured.iter().enumerate() {
            let Ok(pair) = pair else { continue };
            if let Ok(v) = &mut samples[i] {
                match bench.ns_per_fuel(pair) {
                    Ok(ns) => v.push(ns),
                    Err(e) => samples[i] = Err(e.to_string()),
                }
            }
        }
    }
    let loop_ns = median(baseline);
    // Per million fuel units: a plain loop runs about a million units in a few hundred µs.
    let per_mfuel = |ns: f64| Value::Time(Duration::from_secs_f64(ns * 1e6 / 1e9));
    let mut rows = Vec::new();
    for ((p, pair), s) in measured.into_iter().zip(samples) {
        let (pair, s) = match (pair, s) {
            (Ok(pair), Ok(s)) => (pair, s),
            (Err(e), _) => {
                rows.push(Row::skipped("amplification", p.name, e.to_string()));
                continue;
            }
            (_, Err(e)) => {
                rows.push(Row::skipped("amplification", p.name, e));
                continue;
            }
        };
        let ns = median(s);
        rows.push(
            Row::new("amplification", p.name, per_mfuel(ns))
                .baseline("plain wasm loop", per_mfuel(loop_ns))
                .ratio_at_most(10.0, "≤ 10×")
                .note(format!(
                    "host time per 1,000,000 fuel; {} vs {} repetitions, {:.0} vs {:.0} fuel per run; {rounds} rounds",
                    pair.k,
                    2 * pair.k,
                    pair.fuel.0,
                    pair.fuel.1
                )),
        );
    }
    Ok(rows)
}

fn tempdir(opts: &BenchOptions) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("corral-bench-")
        .tempdir_in(&opts.temp_root)
        .map_err(|e| Error::host(format!("cannot create a temporary directory: {e}")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The host trees: `data` (the file `f`, a 1 MiB `big`) and `list` (5,000 entries).
fn populate(data: &Path, list: &Path) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::host(format!("cannot set up the benchmark tree: {e}"));
    std::fs::write(data.join("f"), b"x").map_err(io)?;
    std::fs::write(data.join("big"), vec![7u8; 1 << 20]).map_err(io)?;
    for i in 0..LIST_ENTRIES {
        std::fs::write(list.join(format!("entry-{i:05}")), b"").map_err(io)?;
    }
    Ok(())
}

/// A pattern's two modules (`k` and `2k` repetitions) and their fuel.
struct Pair {
    k: u32,
    small: Program,
    large: Program,
    fuel: (f64, f64),
}

struct Bench<'a> {
    engine: &'a Engine,
    policy: &'a Policy,
    data: &'a Path,
    list: &'a Path,
    rt: &'a tokio::runtime::Runtime,
}

impl Bench<'_> {
    fn module(&self, text: &str) -> Result<Program, Error> {
        let wasm =
            wat::parse_str(text).map_err(|e| Error::host(format!("benchmark guest: {e}")))?;
        let module = self
            .engine
            .admit(&wasm, self.policy)
            .map_err(|r| Error::host(format!("the benchmark guest was rejected: {r}")))?;
        Ok(Program::from_module(module, Language::Wat, "guest.wasm"))
    }

    /// One run: host time and fuel. The guest must end `ok`.
    fn run(&self, program: &Program) -> Result<(Duration, u64), Error> {
        let grant = |host: &Path, guest: &str| -> Result<DirGrant, Error> {
            Ok(DirGrant {
                host: host.to_path_buf(),
                guest: corral::policy::GuestPath::new(guest)
                    .map_err(|e| Error::host(e.to_string()))?,
                access: Access::ReadWrite,
            })
        };
        let invocation = Invocation {
            dirs: vec![grant(self.data, "/data")?, grant(self.list, "/list")?],
            ..Invocation::default()
        };
        let t = Instant::now();
        let report = self
            .rt
            .block_on(job::run(
                self.engine,
                program,
                self.policy,
                &invocation,
                Recording::Off,
            ))?
            .report;
        let elapsed = t.elapsed();
        if report.verdict != Verdict::Ok {
            return Err(Error::host(format!(
                "an amplification guest did not run cleanly: {}",
                report.message
            )));
        }
        Ok((elapsed, report.fuel_consumed))
    }

    /// Calibrates `k` so that `k` more repetitions take about [`TARGET_RUN`] more host time
    /// (growing `k` from 1, so a pattern that is slow per repetition never runs long; the
    /// marginal time, so a slow setup does not stop the growth early).
    fn pair(&self, guest: fn(u32) -> String, max_k: u32) -> Result<Pair, Error> {
        let mut k = 1u32;
        loop {
            let (t1, _) = self.run(&self.module(&guest(k))?)?;
            let (t2, _) = self.run(&self.module(&guest(2 * k))?)?;
            let dt = t2.saturating_sub(t1);
            if dt >= TARGET_RUN / 4 || k >= max_k {
                break;
            }
            let scale = if dt < TARGET_RUN / 64 {
                16.0
            } else {
                TARGET_RUN.as_secs_f64() / dt.as_secs_f64()
            };
            k = ((f64::from(k) * scale) as u32).clamp(k + 1, max_k);
        }
        let small = self.module(&guest(k))?;
        let large = self.module(&guest(2 * k))?;
        let (_, f1) = self.run(&small)?;
        let (_, f2) = self.run(&large)?;
        Ok(Pair {
            k,
            small,
            large,
            fuel: (f1 as f64, f2 as f64),
        })
    }

    /// Marginal host nanoseconds per marginal fuel unit of a pair.
    fn ns_per_fuel(&self, pair: &Pair) -> Result<f64, Error> {
        let (t1, f1) = self.run(&pair.small)?;
        let (t2, f2) = self.run(&pair.large)?;
        let dt = t2.as_secs_f64() - t1.as_secs_f64();
        let df = f2.saturating_sub(f1).max(1) as f64;
        Ok((dt * 1e9 / df).max(0.0))
    }
}

// ---------------------------------------------------------------------------------------
// guests (WASI preview 1 unless named p2; preopens: 3 = /tmp scratch, 4 = /data, 5 = /list)

const P1_IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $prestat_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
"#;

/// A module: imports, `pages` of memory, `extra` (data, helpers), and a `_start` that runs
/// `setup` once and `body` `k` times (a failing call exits with its own status).
fn p1(pages: u32, extra: &str, setup: &str, body: &str, k: u32) -> String {
    format!(
        r#"(module {P1_IMPORTS}
  (memory (export "memory") {pages})
  {extra}
  (func $check (param i32) (if (local.get 0) (then (call $exit (i32.add (i32.const 10) (local.get 0))))))
  (func (export "_start") (local $i i32) (local $fd i32) (local $j i32)
    {setup}
    (loop $l
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {k})))))
)"#
    )
}

fn loop_wat(k: u32) -> String {
    p1(1, "", "", "", k)
}

/// Walks the whole listing of fd 5 (64 KiB pages, following cookies), `k` times.
fn readdir_wat(k: u32) -> String {
    let walk = r#"
  (func $walk (local $cookie i64) (local $used i32) (local $off i32) (local $n i32)
    (block $done (loop $page
      (call $check (call $fd_readdir (i32.const 5) (i32.const 0x10000) (i32.const 0x10000) (local.get $cookie) (i32.const 8)))
      (local.set $used (i32.load (i32.const 8)))
      (local.set $off (i32.const 0))
      (block $end (loop $ent
        (br_if $end (i32.gt_u (i32.add (local.get $off) (i32.const 24)) (local.get $used)))
        (local.set $n (i32.load (i32.add (local.get $off) (i32.const 0x10010))))
        (br_if $end (i32.gt_u (i32.add (i32.add (local.get $off) (i32.const 24)) (local.get $n)) (local.get $used)))
        (local.set $cookie (i64.load (i32.add (local.get $off) (i32.const 0x10000))))
        (local.set $off (i32.add (i32.add (local.get $off) (i32.const 24)) (local.get $n)))
        (br $ent)))
      (br_if $done (i32.lt_u (local.get $used) (i32.const 0x10000)))
      (br $page))))"#;
    p1(3, walk, "", "(call $walk)", k)
}

/// Creates and removes `/list/x` (a changed directory), then reads the first page.
fn readdir_changed_wat(k: u32) -> String {
    p1(
        3,
        r#"(data (i32.const 0x400) "x")"#,
        "",
        r#"(call $check (call $path_open (i32.const 5) (i32.const 0) (i32.const 0x400) (i32.const 1)
             (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
           (call $check (call $fd_close (i32.load (i32.const 16))))
           (call $check (call $unlink (i32.const 5) (i32.const 0x400) (i32.const 1)))
           (call $check (call $fd_readdir (i32.const 5) (i32.const 0x10000) (i32.const 0x10000) (i64.const 0) (i32.const 8)))"#,
        k,
    )
}

fn prestat_name_wat(k: u32) -> String {
    p1(
        257,
        "",
        "",
        "(call $check (call $prestat_name (i32.const 3) (i32.const 0x10000) (i32.const 0x1000000)))",
        k,
    )
}

fn readdir_first_page_wat(k: u32) -> String {
    p1(
        3,
        "",
        "",
        "(call $check (call $fd_readdir (i32.const 5) (i32.const 0x10000) (i32.const 0x10000) (i64.const 0) (i32.const 8)))",
        k,
    )
}

fn empty_iovecs_wat(k: u32) -> String {
    // The iovec array is zero memory: every iovec is empty.
    let pages = (EMPTY_IOVECS * 8).div_ceil(65536) + 2;
    p1(
        pages,
        "",
        "",
        &format!(
            "(call $check (call $fd_write (i32.const 1) (i32.const 0x10000) (i32.const {EMPTY_IOVECS}) (i32.const 8)))"
        ),
        k,
    )
}

fn open_sink() -> &'static str {
    // /data/sink, created and truncated, read/write/seek/tell rights; fd at 16.
    r#"(call $check (call $path_open (i32.const 4) (i32.const 0) (i32.const 0x400) (i32.const 4)
         (i32.const 9) (i64.const 102) (i64.const 0) (i32.const 0) (i32.const 16)))
       (local.set $fd (i32.load (i32.const 16)))"#
}

fn aliased_iovecs_wat(k: u32) -> String {
    // 64 KiB of data at 0x10000; the iovecs at 0x20000 all point at it.
    let setup = format!(
        r#"{}
    (loop $fill
      (i32.store (i32.add (i32.const 0x20000) (i32.shl (local.get $j) (i32.const 3))) (i32.const 0x10000))
      (i32.store (i32.add (i32.const 0x20004) (i32.shl (local.get $j) (i32.const 3))) (i32.const 0x10000))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $j) (i32.const {ALIASED_IOVECS}))))"#,
        open_sink()
    );
    p1(
        6,
        r#"(data (i32.const 0x400) "sink")"#,
        &setup,
        &format!(
            "(call $check (call $fd_pwrite (local.get $fd) (i32.const 0x20000) (i32.const {ALIASED_IOVECS}) (i64.const 0) (i32.const 8)))"
        ),
        k,
    )
}

fn poll_wat(k: u32) -> String {
    // Clock subscriptions (tag 0, monotonic, relative timeout 0) at 0x10000, 48 bytes each;
    // events at 0x90000.
    let setup = format!(
        r#"(loop $fill
      (i64.store (i32.add (i32.const 0x10000) (i32.mul (local.get $j) (i32.const 48))) (i64.extend_i32_u (local.get $j)))
      (i32.store (i32.add (i32.const 0x10010) (i32.mul (local.get $j) (i32.const 48))) (i32.const 1))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $j) (i32.const {POLL_SUBS}))))"#
    );
    p1(
        15,
        "",
        &setup,
        &format!(
            "(call $check (call $poll (i32.const 0x10000) (i32.const 0x90000) (i32.const {POLL_SUBS}) (i32.const 8)))"
        ),
        k,
    )
}

/// `./` repeated, then `f`: 4,093 bytes, at 0x1000.
fn dotted_path() -> String {
    format!(r#"(data (i32.const 0x1000) "{}f")"#, "./".repeat(2046))
}

fn dotted_open_wat(k: u32) -> String {
    p1(
        1,
        &dotted_path(),
        "",
        r#"(call $check (call $path_open (i32.const 4) (i32.const 0) (i32.const 0x1000) (i32.const 4093)
             (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
           (call $check (call $fd_close (i32.load (i32.const 16))))"#,
        k,
    )
}

fn dotted_stat_wat(k: u32) -> String {
    p1(
        1,
        &dotted_path(),
        "",
        "(call $check (call $stat (i32.const 4) (i32.const 0) (i32.const 0x1000) (i32.const 4093) (i32.const 0x3000)))",
        k,
    )
}

fn random_wat(k: u32) -> String {
    p1(
        18,
        "",
        "",
        "(call $check (call $random (i32.const 0x10000) (i32.const 0x100000)))",
        k,
    )
}

fn pread_wat(k: u32) -> String {
    let setup = r#"(call $check (call $path_open (i32.const 4) (i32.const 0) (i32.const 0x400) (i32.const 3)
         (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
       (local.set $fd (i32.load (i32.const 16)))
       (i32.store (i32.const 32) (i32.const 0x10000))
       (i32.store (i32.const 36) (i32.const 0x100000))"#;
    p1(
        18,
        r#"(data (i32.const 0x400) "big")"#,
        setup,
        "(call $check (call $fd_pread (local.get $fd) (i32.const 32) (i32.const 1) (i64.const 0) (i32.const 8)))",
        k,
    )
}

fn pwrite_wat(k: u32) -> String {
    let setup = format!(
        r#"{}
       (i32.store (i32.const 32) (i32.const 0x10000))
       (i32.store (i32.const 36) (i32.const 0x100000))"#,
        open_sink()
    );
    p1(
        18,
        r#"(data (i32.const 0x400) "sink")"#,
        &setup,
        "(call $check (call $fd_pwrite (local.get $fd) (i32.const 32) (i32.const 1) (i64.const 0) (i32.const 8)))",
        k,
    )
}

/// A component that lists its third preopen (`/list`) `k` times through
/// `read-directory` and `read-directory-entry`.
fn p2_readdir_wat(k: u32) -> String {
    p2_listing(k, true)
}

/// The same, creating the stream and dropping it without reading an entry.
fn p2_open_stream_wat(k: u32) -> String {
    p2_listing(k, false)
}

fn p2_listing(k: u32, read_entries: bool) -> String {
    let entries = if read_entries { 1 } else { 0 };
    format!(
        r#"(component $C
  (import "wasi:filesystem/types@0.2.0" (instance $types
    (export "descriptor" (type $desc (sub resource)))
    (export "directory-entry-stream" (type $des (sub resource)))
    (type $dt (enum "unknown" "block-device" "character-device" "directory" "fifo" "symbolic-link" "regular-file" "socket"))
    (export "descriptor-type" (type $dt2 (eq $dt)))
    (type $ec (enum {ERROR_CODES}))
    (export "error-code" (type $ec2 (eq $ec)))
    (type $de (record (field "type" $dt2) (field "name" string)))
    (export "directory-entry" (type $de2 (eq $de)))
    (export "[method]descriptor.read-directory" (func (param "self" (borrow $desc)) (result (result (own $des) (error $ec2)))))
    (export "[method]directory-entry-stream.read-directory-entry" (func (param "self" (borrow $des)) (result (result (option $de2) (error $ec2)))))))
  (alias export $types "descriptor" (type $descriptor))
  (alias export $types "directory-entry-stream" (type $dirstream))
  (import "wasi:filesystem/preopens@0.2.0" (instance $preopens
    (alias outer $C $descriptor (type $d))
    (export "descriptor" (type $d2 (eq $d)))
    (export "get-directories" (func (result (list (tuple (own $d2) string)))))))
  {MEM_MODULE}
  (core func $get_dirs (canon lower (func $preopens "get-directories") (memory $memory) (realloc $realloc)))
  (core func $read_dir (canon lower (func $types "[method]descriptor.read-directory") (memory $memory)))
  (core func $read_entry (canon lower (func $types "[method]directory-entry-stream.read-directory-entry") (memory $memory) (realloc $realloc)))
  (core func $drop_stream (canon resource.drop $dirstream))
  (core module $main
    (import "h" "get-dirs" (func $get_dirs (param i32)))
    (import "h" "read-dir" (func $read_dir (param i32 i32)))
    (import "h" "read-entry" (func $read_entry (param i32 i32)))
    (import "h" "drop-stream" (func $drop_stream (param i32)))
    (import "h" "reset" (func $reset))
    (import "h" "memory" (memory 1))
    (func (export "run") (result i32) (local $dir i32) (local $s i32) (local $i i32)
      (call $get_dirs (i32.const 0))
      (local.set $dir (i32.load (i32.add (i32.load (i32.const 0)) (i32.const 24))))
      (loop $iter
        (call $read_dir (local.get $dir) (i32.const 16))
        (if (i32.load8_u (i32.const 16)) (then (unreachable)))
        (local.set $s (i32.load (i32.const 20)))
        (block $done (br_if $done (i32.eqz (i32.const {entries}))) (loop $ent
          (call $read_entry (local.get $s) (i32.const 32))
          (if (i32.load8_u (i32.const 32)) (then (unreachable)))
          (br_if $done (i32.eqz (i32.load8_u (i32.const 36))))
          (call $reset)
          (br $ent)))
        (call $drop_stream (local.get $s))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $iter (i32.lt_u (local.get $i) (i32.const {k}))))
      (i32.const 0)))
  (core instance $mi (instantiate $main (with "h" (instance
    (export "get-dirs" (func $get_dirs))
    (export "read-dir" (func $read_dir))
    (export "read-entry" (func $read_entry))
    (export "drop-stream" (func $drop_stream))
    (export "reset" (func $reset))
    (export "memory" (memory $memory))))))
  (func $run (result (result)) (canon lift (core func $mi "run")))
  (instance $runi (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $runi)))"#
    )
}

/// `wasi:filesystem/types` `error-code`, in order.
const ERROR_CODES: &str = r#""access" "would-block" "already" "bad-descriptor" "busy" "deadlock" "quota" "exist" "file-too-large" "illegal-byte-sequence" "in-progress" "interrupted" "invalid" "io" "is-directory" "loop" "too-many-links" "message-size" "name-too-long" "no-device" "no-entry" "no-lock" "insufficient-memory" "insufficient-space" "not-directory" "not-empty" "not-recoverable" "unsupported" "no-tty" "no-such-device" "overflow" "not-permitted" "pipe" "read-only" "invalid-seek" "text-file-busy" "cross-device""#;

/// The memory and a bump allocator (`realloc`; `reset` frees everything above 64 KiB).
const MEM_MODULE: &str = r#"(core module $mem
    (memory (export "memory") 2)
    (global $bump (mut i32) (i32.const 0x10000))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $bump (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $bump) (i32.const 0x20000)) (then (unreachable)))
      (local.get $p))
    (func (export "reset") (global.set $bump (i32.const 0x10000))))
  (core instance $m (instantiate $mem))
  (alias core export $m "memory" (core memory $memory))
  (alias core export $m "realloc" (core func $realloc))
  (alias core export $m "reset" (core func $reset))"#;
