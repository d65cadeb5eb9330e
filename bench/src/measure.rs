//! The measurements behind each group of `corral bench`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::guests::{
    HELLO, HELLO_PY, KERNELS, KERNELS_RS, NOOP_WAT, SPIN_PY, SPIN_WAT, writes_wat,
};
use super::{BenchOptions, Row, Stats, Value};
use corral::compile::{Language, Source};
use corral::eval::{self, humaneval};
use corral::job::{self, Invocation, Program, Recording};
use corral::policy::{Fuel, Policy};
use corral::record::RecordStore;
use corral::sandbox::baseline::{Alloc, RawP1, RawP2};
use corral::{Engine, EngineConfig, Error, GuestModule, RunReport, Verdict};

type Rows = Result<Vec<Row>, Error>;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub(super) fn engine(opts: &BenchOptions, pool: Option<u32>) -> Result<Engine, Error> {
    Engine::new(EngineConfig {
        temp_root: opts.temp_root.clone(),
        cache_dir: Some(opts.cache_dir.clone()),
        pool,
        ..EngineConfig::default()
    })
}

pub(super) fn current_thread() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::host(format!("cannot start the runtime: {e}")))
}

fn multi_thread(threads: usize) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_time()
        .build()
        .map_err(|e| Error::host(format!("cannot start the runtime: {e}")))
}

fn policy(name: &str) -> Result<Policy, Error> {
    Policy::bundled(name).map_err(|e| Error::host(e.to_string()))
}

fn admit(engine: &Engine, wasm: &[u8], policy: &Policy) -> Result<GuestModule, Error> {
    engine
        .admit(wasm, policy)
        .map_err(|r| Error::host(format!("the benchmark guest was rejected: {r}")))
}

fn wat(text: &str) -> Result<Vec<u8>, Error> {
    wat::parse_str(text).map_err(|e| Error::host(format!("benchmark guest: {e}")))
}

pub(super) fn count(opts: &BenchOptions, full: usize, quick: usize) -> usize {
    if opts.quick { quick } else { full }
}

pub(super) fn temp_dir(opts: &BenchOptions) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("corral-bench-")
        .tempdir_in(&opts.temp_root)
        .map_err(|e| Error::host(format!("cannot create a temporary directory: {e}")))
}

fn expect_ok(report: &RunReport, what: &str) -> Result<(), Error> {
    if report.verdict == Verdict::Ok {
        Ok(())
    } else {
        Err(Error::host(format!(
            "{what} did not run cleanly: {}",
            report.message
        )))
    }
}

/// Prepares (compiles, admits) a program from source, through the job stage.
pub(super) fn prepare(
    engine: &Engine,
    name: &str,
    source: &str,
    policy: &Policy,
) -> Result<Program, Error> {
    let language = Language::from_path(Path::new(name))
        .ok_or_else(|| Error::host(format!("no language for {name}")))?;
    let source = Source::new(source.as_bytes().to_vec(), name, language);
    let program = Program::prepare(engine, &source, policy)?;
    if let Some(failure) = program.failure() {
        return Err(Error::host(format!(
            "cannot prepare {name}: {}",
            failure.message
        )));
    }
    Ok(program)
}

/// A benchmark guest's wasm as a program.
fn program_of(engine: &Engine, wasm: &[u8], policy: &Policy) -> Result<Program, Error> {
    Ok(Program::from_module(
        admit(engine, wasm, policy)?,
        Language::Wasm,
        "main",
    ))
}

/// One run through the job stage (no record).
pub(super) async fn run_job(
    engine: &Engine,
    program: &Program,
    policy: &Policy,
    invocation: &Invocation,
) -> Result<RunReport, Error> {
    Ok(
        job::run(engine, program, policy, invocation, Recording::Off)
            .await?
            .report,
    )
}

/// An invocation with only a seed.
pub(super) fn seeded(seed: u64) -> Invocation {
    Invocation {
        seed,
        ..Invocation::default()
    }
}

// ---------------------------------------------------------------------------------------
// per-run

pub(super) fn per_run(opts: &BenchOptions) -> Rows {
    let wasm = wat(NOOP_WAT)?;
    let engine = engine(opts, Some(64))?;
    let strict = Policy::strict();
    let program = program_of(&engine, &wasm, &strict)?;
    let rt = current_thread()?;
    let raw_pool = RawP1::new(&wasm, Alloc::Pooling)?;
    let raw_default = RawP1::new(&wasm, Alloc::OnDemand)?;

    let corral_run = |i: u64| -> Result<Duration, Error> {
        let t = Instant::now();
        let report = rt.block_on(run_job(&engine, &program, &strict, &seeded(i)))?;
        let d = t.elapsed();
        if report.verdict != Verdict::Ok || report.stdout != b"ok\n" {
            return Err(Error::host(format!(
                "trivial run failed: {}",
                report.message
            )));
        }
        Ok(d)
    };
    let raw_run = |raw: &RawP1| -> Result<Duration, Error> {
        let t = Instant::now();
        let (status, out) = raw.run(&["noop"], None)?;
        let d = t.elapsed();
        if status != 0 || out != b"ok\n" {
            return Err(Error::host("raw trivial run failed"));
        }
        Ok(d)
    };
    for i in 0..500 {
        corral_run(i)?;
        raw_run(&raw_pool)?;
        raw_run(&raw_default)?;
    }
    let rounds = count(opts, 200, 30);
    let (mut c, mut rp, mut rd) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for i in 0..100 {
            c.push(corral_run((round * 100 + i) as u64)?);
        }
        for _ in 0..100 {
            rp.push(raw_run(&raw_pool)?);
        }
        for _ in 0..100 {
            rd.push(raw_run(&raw_default)?);
        }
    }
    let (c, rp, rd) = (Stats::of(&mut c), Stats::of(&mut rp), Stats::of(&mut rd));

    // The same with the `standard` policy: a private scratch directory per run.
    let standard = policy("standard")?;
    let std_program = program_of(&engine, &wasm, &standard)?;
    let mut s = Vec::new();
    for i in 0..count(opts, 5000, 1000) {
        let t = Instant::now();
        let r = rt.block_on(run_job(&engine, &std_program, &standard, &seeded(i as u64)))?;
        s.push(t.elapsed());
        expect_ok(&r, "the trivial module")?;
    }
    let s = Stats::of(&mut s);
    Ok(vec![
        Row::new("per-run", "trivial module, in-process, p50", Value::Time(c.p50))
            .baseline("raw wasmtime 48, pooling, no gate", Value::Time(rp.p50))
            .at_most(Value::Time(Duration::from_micros(20)), "≤ 20 µs")
            .note(format!(
                "fresh store + WASI context + gate + limits + instantiate + run + report, {} runs; p99 {:?}; raw wasmtime 48 default config p50 {:?}",
                c.n, c.p99, rd.p50
            )),
        Row::new("per-run", "same, standard policy (scratch dir), p50", Value::Time(s.p50))
            .baseline("raw wasmtime 48, pooling, no gate", Value::Time(rp.p50))
            .note("a private /tmp per run: an empty directory left by an earlier run, checked with one readdir (creating and removing one costs ~80 µs on ext4)"),
    ])
}

// ---------------------------------------------------------------------------------------
// throughput

pub(super) fn throughput(opts: &BenchOptions) -> Rows {
    let threads = cores();
    let wasm = wat(NOOP_WAT)?;
    let engine = engine(opts, Some(u32::try_from(threads * 4).unwrap_or(64)))?;
    let strict = Arc::new(Policy::strict());
    let program = program_of(&engine, &wasm, &strict)?;
    let span = Duration::from_millis(count(opts, 3000, 1000) as u64);

    let rt = multi_thread(threads)?;
    let corral_rate = rate(&rt, &engine, &program, &strict, threads, span)?;
    drop(rt);

    let raw = Arc::new(RawP1::new(&wasm, Alloc::Pooling)?);
    let raw_rate = |n_threads: usize| -> Result<f64, Error> {
        let started = Instant::now();
        let handles: Vec<_> = (0..n_threads)
            .map(|_| {
                let raw = raw.clone();
                std::thread::spawn(move || {
                    let mut n = 0usize;
                    while started.elapsed() < span {
                        raw.run(&["noop"], None)?;
                        n += 1;
                    }
                    Ok::<usize, Error>(n)
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h
                .join()
                .map_err(|_| Error::host("a raw benchmark thread panicked"))??;
        }
        Ok(total as f64 / started.elapsed().as_secs_f64())
    };
    let raw_all = raw_rate(threads)?;
    let raw_one = raw_rate(1)?;
    Ok(vec![
        Row::new(
            "throughput",
            format!("trivial runs per second, {threads} cores"),
            Value::Rate(corral_rate),
        )
        .baseline(format!("raw wasmtime 48, {threads} threads"), Value::Rate(raw_all))
        .at_least(Value::Rate(100_000.0), "≥ 100k/s")
        .note(format!(
            "tokio, {threads} workers, pool of {} slots, {span:?}; raw wasmtime 48 on one thread: {:.0}/s",
            threads * 4,
            raw_one
        )),
    ])
}

// ---------------------------------------------------------------------------------------
// python

pub(super) fn python(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Rows {
    let engine = engine(opts, Some(16))?;
    let strict = Policy::strict();
    let program = prepare(&engine, "hello.py", HELLO_PY, &strict)?;
    let rt = current_thread()?;
    let run = |i: u64| -> Result<Duration, Error> {
        let t = Instant::now();
        let r = rt.block_on(run_job(&engine, &program, &strict, &seeded(i)))?;
        let d = t.elapsed();
        if r.verdict != Verdict::Ok || r.stdout != b"hello\n" {
            return Err(Error::host(format!("Python hello failed: {}", r.message)));
        }
        Ok(d)
    };
    let runner = corral::compile::runner::ensure(
        corral::compile::runner::RunnerKind::Python,
        &opts.cache_dir,
    )?;
    progress("bench: loading the Python runner on raw wasmtime (compiled once, then cached)");
    let raw = RawP2::new(&runner.wasm, runner.hash, &opts.cache_dir)?;
    let program = HELLO_PY.to_string();
    let raw_run = || -> Result<Duration, Error> {
        let t = Instant::now();
        let (ok, out) = raw.run(&["hello.py", &program])?;
        let d = t.elapsed();
        if !ok || out != b"hello\n" {
            return Err(Error::host("raw Python hello failed"));
        }
        Ok(d)
    };
    for i in 0..20 {
        run(i)?;
        raw_run()?;
    }
    let rounds = count(opts, 30, 5);
    let (mut c, mut r) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for i in 0..10 {
            c.push(run((round * 10 + i) as u64)?);
        }
        for _ in 0..10 {
            r.push(raw_run()?);
        }
    }
    let (c, r) = (Stats::of(&mut c), Stats::of(&mut r));
    Ok(vec![
        Row::new(
            "python",
            "Python hello, fresh instance, in-process, p50",
            Value::Time(c.p50),
        )
        .baseline("raw wasmtime 48, pooling, no gate", Value::Time(r.p50))
        .at_most(Value::Time(Duration::from_micros(1300)), "≤ 1.3 ms")
        .note(format!("{} runs; p99 {:?}", c.n, c.p99)),
    ])
}

// ---------------------------------------------------------------------------------------
// process

pub(super) fn spawn_time(cmd: &mut Command) -> Result<Duration, Error> {
    let t = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| Error::host(format!("cannot start {cmd:?}: {e}")))?;
    let d = t.elapsed();
    if !status.success() {
        return Err(Error::host(format!("{cmd:?} failed: {status}")));
    }
    Ok(d)
}

pub(super) fn process(opts: &BenchOptions) -> Rows {
    let Some(exe) = &opts.corral_exe else {
        return Ok(vec![Row::skipped(
            "process",
            "corral run, whole process",
            "no corral executable (run `corral bench`)",
        )]);
    };
    let dir = temp_dir(opts)?;
    let wat_file = dir.path().join("hello.wat");
    let py_file = dir.path().join("hello.py");
    std::fs::write(&wat_file, NOOP_WAT).map_err(|e| Error::host(e.to_string()))?;
    std::fs::write(&py_file, HELLO_PY).map_err(|e| Error::host(e.to_string()))?;
    let records = dir.path().join("records");
    let corral = |file: &Path, record: bool| {
        let mut c = Command::new(exe);
        c.arg("run").arg(file);
        if record {
            c.arg("--record-dir").arg(&records);
        } else {
            c.arg("--no-record");
        }
        c.env(
            "CORRAL_HOME",
            opts.cache_dir.parent().unwrap_or(&opts.cache_dir),
        );
        c
    };
    // Warm the caches (compiled .wat, precompiled artifacts).
    for _ in 0..3 {
        spawn_time(&mut corral(&wat_file, false))?;
        spawn_time(&mut corral(&py_file, false))?;
    }
    let n = count(opts, 40, 10);
    let (mut t, mut w, mut wr, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        t.push(spawn_time(&mut Command::new("/bin/true"))?);
        w.push(spawn_time(&mut corral(&wat_file, false))?);
        wr.push(spawn_time(&mut corral(&wat_file, true))?);
        p.push(spawn_time(&mut corral(&py_file, false))?);
    }
    let (t, w, wr, p) = (
        Stats::of(&mut t),
        Stats::of(&mut w),
        Stats::of(&mut wr),
        Stats::of(&mut p),
    );
    let base = "/bin/true, fork+exec";
    Ok(vec![
        Row::new(
            "process",
            "corral run hello.wat --no-record",
            Value::Time(w.p50),
        )
        .baseline(base, Value::Time(t.p50))
        .at_most(Value::Time(Duration::from_millis(4)), "≤ 4 ms")
        .note(format!("{} runs each, interleaved; p99 {:?}", w.n, w.p99)),
        Row::new(
            "process",
            "corral run hello.wat (recorded)",
            Value::Time(wr.p50),
        )
        .baseline(base, Value::Time(t.p50)),
        Row::new(
            "process",
            "corral run hello.py --no-record",
            Value::Time(p.p50),
        )
        .baseline(base, Value::Time(t.p50))
        .at_most(Value::Time(Duration::from_millis(8)), "≤ 8 ms")
        .note(format!("warm cache; p99 {:?}", p.p99)),
    ])
}

// ---------------------------------------------------------------------------------------
// compute

/// Parses `checksum nanoseconds`.
fn kernel_output(out: &[u8]) -> Result<(u64, u64), Error> {
    let text = String::from_utf8_lossy(out);
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(c)), Some(Ok(ns))) => Ok((c, ns)),
        _ => Err(Error::host(format!("unexpected kernel output: {text:?}"))),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    Stats::of(&mut v).p50
}

pub(super) fn compute(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Rows {
    let dir = temp_dir(opts)?;
    let src = dir.path().join("kernels.rs");
    std::fs::write(&src, KERNELS_RS).map_err(|e| Error::host(e.to_string()))?;
    let native = dir.path().join("kernels");
    progress("bench: compiling the kernels natively and to wasm");
    let out = Command::new("rustc")
        .args(["-O", "-C", "panic=abort", "--edition", "2021", "-o"])
        .arg(&native)
        .arg(&src)
        .output()
        .map_err(|e| Error::host(format!("cannot run rustc: {e}")))?;
    if !out.status.success() {
        return Err(Error::host(format!(
            "native rustc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let engine = engine(opts, Some(4))?;
    let mut limits = policy("permissive")?;
    limits.limits.fuel = Fuel(1 << 50);
    let limits = limits.with_name("bench-compute");
    let program = prepare(&engine, "kernels.rs", KERNELS_RS, &limits)?;
    let module = program
        .module()
        .ok_or_else(|| Error::host("the kernels did not compile"))?;
    let raw = RawP1::new(&module.bytes()?, Alloc::OnDemand)?;
    let rt = current_thread()?;

    let mut rows = Vec::new();
    for (name, full, quick) in KERNELS {
        let size = if opts.quick { quick } else { full }.to_string();
        let run_native = || -> Result<(u64, Duration), Error> {
            let out = Command::new(&native)
                .args([name, size.as_str()])
                .output()
                .map_err(|e| Error::host(format!("cannot run the native kernel: {e}")))?;
            let (c, ns) = kernel_output(&out.stdout)?;
            Ok((c, Duration::from_nanos(ns)))
        };
        let run_raw = || -> Result<(u64, Duration), Error> {
            let t = Instant::now();
            let (status, out) = raw.run(&["kernels", name, &size], None)?;
            let d = t.elapsed();
            if status != 0 {
                return Err(Error::host("raw kernel failed"));
            }
            Ok((kernel_output(&out)?.0, d))
        };
        let run_corral = || -> Result<(u64, Duration, u64), Error> {
            let t = Instant::now();
            let invocation = Invocation {
                args: vec![name.to_string(), size.clone()],
                ..Invocation::default()
            };
            let r = rt.block_on(run_job(&engine, &program, &limits, &invocation))?;
            let d = t.elapsed();
            expect_ok(&r, name)?;
            Ok((kernel_output(&r.stdout)?.0, d, r.fuel_consumed))
        };
        let (want, _) = run_native()?;
        run_raw()?;
        run_corral()?;
        let rounds = count(opts, 7, 3);
        let (mut n, mut w, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let mut fuel = 0;
        for _ in 0..rounds {
            let (x, d) = run_native()?;
            let (y, e) = run_raw()?;
            let (z, f, used) = run_corral()?;
            if (x, y, z) != (want, want, want) {
                return Err(Error::host(format!(
                    "{name}: checksums differ (native {x}, raw {y}, corral {z})"
                )));
            }
            n.push(d);
            w.push(e);
            c.push(f);
            fuel = used;
        }
        let (n, w, c) = (median(n), median(w), median(c));
        rows.push(
            Row::new("compute", format!("{name} {size}, full limits"), Value::Time(c))
                .baseline("native, same rustc -O", Value::Time(n))
                .ratio_at_most(1.3, "≤ 1.30×")
                .note(format!(
                    "wasm without fuel or limits (raw wasmtime 48): {w:?} ({:.2}× native); fuel used {fuel}; {rounds} rounds",
                    w.as_secs_f64() / n.as_secs_f64().max(1e-9)
                )),
        );
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// gate

pub(super) fn gate(opts: &BenchOptions) -> Rows {
    let calls = u32::try_from(count(opts, 1_000_000, 200_000)).unwrap_or(200_000);
    let wasm = wat(&writes_wat(calls))?;
    let engine = engine(opts, Some(4))?;
    let permissive = policy("permissive")?;
    let program = program_of(&engine, &wasm, &permissive)?;
    let raw = RawP1::new(&wasm, Alloc::Pooling)?;
    let raw_async = RawP1::new_async(&wasm, Alloc::Pooling)?;
    let rt = current_thread()?;
    let async_run = || -> Result<Duration, Error> {
        let dir = temp_dir(opts)?;
        let t = Instant::now();
        let (status, _) = rt.block_on(raw_async.run_async(&["writes"], Some(dir.path())))?;
        let d = t.elapsed();
        if status != 0 {
            return Err(Error::host("the raw async fd_write run failed"));
        }
        Ok(d)
    };
    let corral_run = || -> Result<Duration, Error> {
        let t = Instant::now();
        let r = rt.block_on(run_job(
            &engine,
            &program,
            &permissive,
            &Invocation::default(),
        ))?;
        let d = t.elapsed();
        expect_ok(&r, "the fd_write guest")?;
        if r.calls.total < u64::from(calls) {
            return Err(Error::host("the fd_write guest made too few calls"));
        }
        Ok(d)
    };
    let raw_run = |inline_io: bool| -> Result<Duration, Error> {
        let dir = temp_dir(opts)?;
        let t = Instant::now();
        let (status, _) = raw.run_io(&["writes"], Some(dir.path()), inline_io)?;
        let d = t.elapsed();
        let len = std::fs::metadata(dir.path().join("out.bin"))
            .map(|m| m.len())
            .unwrap_or(0);
        if status != 0 || len != u64::from(calls) * 16 {
            return Err(Error::host(format!(
                "the raw fd_write run failed (exit {status}, {len} bytes)"
            )));
        }
        Ok(d)
    };
    corral_run()?;
    raw_run(true)?;
    async_run()?;
    let rounds = count(opts, 7, 3);
    let (mut c, mut r, mut a, mut pooled) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        c.push(corral_run()?);
        r.push(raw_run(true)?);
        a.push(async_run()?);
        pooled.push(raw_run(false)?);
    }
    let (c, r, a, pooled) = (median(c), median(r), median(a), median(pooled));
    let per_call = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(calls);
    Ok(vec![
        Row::new(
            "gate",
            format!("{calls} × 16-byte fd_write to a file"),
            Value::Time(c),
        )
        .baseline("wasmtime-wasi directly, same I/O mode", Value::Time(r))
        .ratio_at_most(1.10, "≤ 1.10×")
        .note(format!(
            "per call: corral {:.0} ns; wasmtime-wasi sync {:.0} ns, async (corral's execution mode, so sandboxes can share threads) {:.0} ns, sync with its default I/O through tokio's blocking pool {:.0} ns; {rounds} rounds",
            per_call(c),
            per_call(r),
            per_call(a),
            per_call(pooled)
        )),
        Row::new("gate", "same, the gate's own cost", Value::Time(c))
            .baseline("wasmtime-wasi directly, async", Value::Time(a))
            .ratio_at_most(1.10, "≤ 1.10×")
            .note("checks, quotas, virtual metadata, audit trail and host-call fuel, against the same execution mode"),
    ])
}

// ---------------------------------------------------------------------------------------
// record

pub(super) fn record(opts: &BenchOptions) -> Rows {
    let calls = u32::try_from(count(opts, 200_000, 50_000)).unwrap_or(50_000);
    let wasm = wat(&writes_wat(calls))?;
    let engine = engine(opts, Some(4))?;
    let permissive = policy("permissive")?;
    let dir = temp_dir(opts)?;
    let store = RecordStore::new(dir.path().join("records"));
    let rt = current_thread()?;
    let source = Source::new(wasm, "writes.wasm", Language::Wasm);
    let none = Invocation::default();

    let off = || -> Result<Duration, Error> {
        let t = Instant::now();
        let o = rt.block_on(job::run_source(
            &engine,
            &source,
            &permissive,
            &none,
            Recording::Off,
        ))?;
        let d = t.elapsed();
        expect_ok(&o.report, "the fd_write guest")?;
        Ok(d)
    };
    let on = || -> Result<(Duration, PathBuf), Error> {
        let t = Instant::now();
        let mut o = rt.block_on(job::run_source(
            &engine,
            &source,
            &permissive,
            &none,
            Recording::On,
        ))?;
        let path = o
            .write_record(&engine, &store)?
            .ok_or_else(|| Error::host("no record was written"))?;
        let d = t.elapsed();
        expect_ok(&o.report, "the fd_write guest")?;
        Ok((d, path))
    };
    let ceiling = corral::replay::ReplayOptions {
        ceiling: permissive.clone(),
        ..Default::default()
    };
    let replay = |path: &Path| -> Result<Duration, Error> {
        let t = Instant::now();
        let r = rt
            .block_on(corral::replay::replay(&engine, path, &ceiling))
            .map_err(|e| Error::host(format!("replay failed: {e}")))?;
        let d = t.elapsed();
        if !r.identical {
            return Err(Error::host(format!("replay diverged: {:?}", r.divergence)));
        }
        Ok(d)
    };
    off()?;
    let (_, path) = on()?;
    replay(&path)?;
    let rounds = count(opts, 9, 3);
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = path;
    for _ in 0..rounds {
        a.push(off()?);
        let (d, p) = on()?;
        b.push(d);
        c.push(replay(&p)?);
        last = p;
    }
    let size = std::fs::metadata(&last).map(|m| m.len()).unwrap_or(0);
    let (a, b, c) = (median(a), median(b), median(c));

    // The record of a trivial run.
    let noop = wat(NOOP_WAT)?;
    let noop = Source::new(noop, "noop.wasm", Language::Wasm);
    let mut o = rt.block_on(job::run_source(
        &engine,
        &noop,
        &Policy::strict(),
        &none,
        Recording::On,
    ))?;
    let small = o
        .write_record(&engine, &store)?
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    Ok(vec![
        Row::new("record", format!("recorded run, {calls} host calls"), Value::Time(b))
            .baseline("same run with --no-record", Value::Time(a))
            .ratio_at_most(1.03, "≤ 1.03×")
            .note(format!("{rounds} rounds, interleaved")),
        Row::new("record", "replay of that record", Value::Time(c))
            .baseline("the original run", Value::Time(a))
            .ratio_at_most(1.05, "≤ 1.05×")
            .note("verifies every blob, re-executes, compares verdict, fuel, outputs and the call-trail hash"),
        Row::new("record", format!("record size, {calls} host calls"), Value::Bytes(size))
            .at_most(Value::Bytes(4096), "≤ 4 KiB")
            .note("without blobs (module, inputs, trail are deduplicated blobs beside it); at most 32 chain checkpoints, however many calls"),
        Row::new("record", "record size, trivial run", Value::Bytes(small))
            .at_most(Value::Bytes(4096), "≤ 4 KiB")
            .note("the fixture suite's median and p99 are printed by `cargo test` (every fixture is recorded and replayed)"),
    ])
}

// ---------------------------------------------------------------------------------------
// compile

pub(super) fn compile(opts: &BenchOptions) -> Rows {
    let strict = Policy::strict();
    let mut rows = Vec::new();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (name, source) in HELLO {
        let language = Language::from_path(Path::new(name))
            .ok_or_else(|| Error::host(format!("no language for {name}")))?;
        let comment = if language == Language::Python {
            "#"
        } else {
            "//"
        };
        let check = |src: &str| -> Result<Duration, Error> {
            // A fresh engine: nothing in memory, only the disk cache (as a new process).
            let engine = engine(opts, None)?;
            let source = Source::new(src.as_bytes().to_vec(), name, language);
            let t = Instant::now();
            let program = Program::prepare(&engine, &source, &strict)?;
            let d = t.elapsed();
            expect_ok(&program.check_report(), name)?;
            Ok(d)
        };
        let cold_n = count(opts, 3, 1);
        let mut cold = Vec::new();
        let mut last = String::new();
        // First use provisions what the language needs (a runner build, a rustup target):
        // not part of a compile.
        let mut failed = check(&format!("{source}{comment} corral bench {nonce} warm-up\n")).err();
        for i in (0..cold_n).take_while(|_| failed.is_none()) {
            last = format!("{source}{comment} corral bench {nonce} {i}\n");
            match check(&last) {
                Ok(d) => cold.push(d),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            rows.push(Row::skipped(
                "compile",
                format!("{name}: cold"),
                e.to_string(),
            ));
            continue;
        }
        let mut cached = Vec::new();
        for _ in 0..count(opts, 7, 3) {
            cached.push(check(&last)?);
        }
        let what = match language {
            Language::Python | Language::JavaScript => {
                "a new program: no compile step (the source is the runner's data); loads the precompiled runner"
            }
            _ => "a new program: compiled in the jail, then by Cranelift",
        };
        rows.push(
            Row::new(
                "compile",
                format!("{name}: cold"),
                Value::Time(median(cold)),
            )
            .note(what),
        );
        rows.push(
            Row::new("compile", format!("{name}: cached"), Value::Time(median(cached)))
                .note("seen before: compiled wasm and precompiled artifact from the disk cache, fresh engine"),
        );
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// eval

/// Runs `cases` natively, `jobs` at a time, one process each, the way process-jail judges
/// do; returns how many passed.
fn native_cases(
    exe: &Path,
    cwd: &Path,
    cases: &[eval::suite::Case],
    jobs: usize,
) -> Result<usize, Error> {
    let next = AtomicUsize::new(0);
    let passed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| -> Result<(), Error> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(case) = cases.get(i) else {
                            return Ok(());
                        };
                        let mut child = Command::new(exe)
                            .args(&case.invocation.args)
                            .current_dir(cwd)
                            .stdin(Stdio::piped())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::null())
                            .spawn()
                            .map_err(|e| {
                                Error::host(format!("cannot start the native program: {e}"))
                            })?;
                        if let Some(mut stdin) = child.stdin.take() {
                            use std::io::Write;
                            let _ = stdin.write_all(&case.invocation.stdin);
                        }
                        let out = child
                            .wait_with_output()
                            .map_err(|e| Error::host(e.to_string()))?;
                        let stdout = String::from_utf8_lossy(&out.stdout);
                        let ok = out.status.code() == Some(case.expect_exit)
                            && case
                                .expect_stdout
                                .as_deref()
                                .is_none_or(|want| case.compare.matches(want, &stdout));
                        if ok {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| Error::host("a native worker panicked"))??;
        }
        Ok::<(), Error>(())
    })?;
    Ok(passed.into_inner())
}

fn fixtures(opts: &BenchOptions) -> Result<&Path, Error> {
    opts.fixtures
        .as_deref()
        .filter(|p| p.is_dir())
        .ok_or_else(|| Error::host("the repository's fixtures/ directory was not found (run from a checkout, or pass --fixtures)"))
}

pub(super) fn eval(opts: &BenchOptions) -> Rows {
    let suite_path = fixtures(opts)?.join("eval/big/suite.toml");
    let suite = eval::Suite::load(&suite_path).map_err(|e| Error::host(e.to_string()))?;
    let jobs = cores();
    let engine = engine(opts, Some(u32::try_from(jobs * 2).unwrap_or(8)))?;
    let rt = multi_thread(jobs)?;
    let eval_opts = eval::EvalOptions { jobs, store: None };
    let run = |suite: &eval::Suite| -> Result<(Duration, usize), Error> {
        let t = Instant::now();
        let results = rt.block_on(eval::run_suite(&engine, suite, &eval_opts, |_, _| {}))?;
        let d = t.elapsed();
        Ok((d, eval::summarize(&results).passed))
    };
    // Compiles the program (cached from then on, as for a user's second run).
    run(&suite)?;
    // The cases that end by themselves natively too (endless loops and floods would need a
    // judge's timeout; they are in the full-suite row).
    let mut terminating = suite.clone();
    terminating
        .cases
        .retain(|c| !c.name.starts_with("spin") && !c.name.starts_with("flood"));

    let dir = temp_dir(opts)?;
    let native = dir.path().join("solve");
    let out = Command::new("rustc")
        .args(["-O", "--edition", "2021", "-o"])
        .arg(&native)
        .arg(&suite.program)
        .output()
        .map_err(|e| Error::host(format!("cannot run rustc: {e}")))?;
    if !out.status.success() {
        return Err(Error::host("native rustc failed on the suite's program"));
    }
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).map_err(|e| Error::host(e.to_string()))?;

    let rounds = count(opts, 5, 2);
    let (mut full, mut sub, mut nat) = (Vec::new(), Vec::new(), Vec::new());
    let (mut full_pass, mut sub_pass, mut nat_pass) = (0, 0, 0);
    for _ in 0..rounds {
        let (d, p) = run(&suite)?;
        full.push(d);
        full_pass = p;
        let (d, p) = run(&terminating)?;
        sub.push(d);
        sub_pass = p;
        let t = Instant::now();
        nat_pass = native_cases(&native, &cwd, &terminating.cases, jobs)?;
        nat.push(t.elapsed());
    }
    let (full, sub, nat) = (median(full), median(sub), median(nat));
    let n = terminating.cases.len();
    Ok(vec![
        Row::new(
            "eval",
            format!("{}-case suite, corral eval --jobs {jobs}", suite.cases.len()),
            Value::Time(full),
        )
        .note(format!(
            "{full_pass} passed; includes 10 endless loops cut by fuel and 10 output floods; {:.0} µs per case",
            full.as_secs_f64() * 1e6 / suite.cases.len() as f64
        )),
        Row::new("eval", format!("{n} cases that terminate natively"), Value::Time(sub))
            .baseline(format!("native process per case, {jobs} at a time"), Value::Time(nat))
            .note(format!(
                "corral {:.0} µs per case ({sub_pass} passed), native {:.0} µs per case ({nat_pass} passed: unsandboxed, without the input dirs); {rounds} rounds",
                sub.as_secs_f64() * 1e6 / n as f64,
                nat.as_secs_f64() * 1e6 / n as f64
            )),
    ])
}

// ---------------------------------------------------------------------------------------
// humaneval

pub(super) fn humaneval(opts: &BenchOptions) -> Rows {
    let path = fixtures(opts)?.join("humaneval/HumanEval.jsonl.gz");
    let problems = humaneval::load_problems(&path)?;
    let programs: Vec<String> = problems
        .iter()
        .map(|p| humaneval::program(Language::Python, p, &p.canonical_solution))
        .collect();
    let jobs = cores();
    let engine = engine(opts, Some(u32::try_from(jobs * 2).unwrap_or(8)))?;
    let rt = multi_thread(jobs)?;
    let policy = Arc::new(humaneval::policy());
    let grade = |programs: Vec<String>| -> Result<(Duration, usize), Error> {
        let t = Instant::now();
        let graded = rt.block_on(humaneval::grade_all(
            &engine,
            Language::Python,
            policy.clone(),
            programs,
            jobs,
            |_, _| {},
        ))?;
        Ok((t.elapsed(), graded.iter().filter(|g| g.passed).count()))
    };
    // Loads the runner once (as any earlier use would have).
    grade(programs[..1].to_vec())?;

    let dir = temp_dir(opts)?;
    let files: Vec<PathBuf> = programs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = dir.path().join(format!("problem_{i}.py"));
            std::fs::write(&f, p).map(|()| f)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Error::host(e.to_string()))?;
    let python3 = || -> Result<(Duration, usize), Error> {
        let next = AtomicUsize::new(0);
        let passed = AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| {
                    while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let ok = Command::new("python3")
                            .arg(f)
                            .current_dir(dir.path())
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .is_ok_and(|s| s.success());
                        if ok {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        Ok((t.elapsed(), passed.into_inner()))
    };
    let rounds = count(opts, 5, 2);
    let (mut c, mut p) = (Vec::new(), Vec::new());
    let (mut c_pass, mut p_pass) = (0, 0);
    for _ in 0..rounds {
        let (d, n) = grade(programs.clone())?;
        c.push(d);
        c_pass = n;
        let (d, n) = python3()?;
        p.push(d);
        p_pass = n;
    }
    let (c, p) = (median(c), median(p));
    Ok(vec![
        Row::new(
            "humaneval",
            format!(
                "{} HumanEval canonical solutions, {jobs} at a time",
                programs.len()
            ),
            Value::Time(c),
        )
        .baseline("python3 process per problem, unsandboxed", Value::Time(p))
        .note(format!(
            "passed: corral {c_pass}, python3 {p_pass}; {rounds} rounds"
        )),
    ])
}

// ---------------------------------------------------------------------------------------
// memory

/// The resident set of this process.
fn rss() -> Result<u64, Error> {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .map_err(|e| Error::host(format!("cannot read /proc/self/statm: {e}")))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::host("unexpected /proc/self/statm"))?;
    Ok(pages * 4096)
}

/// Starts `n` spinning sandboxes at once, samples the resident set while they all live,
/// and checks that each ended at its wall-clock limit. Returns the growth in bytes.
fn live_sandboxes(
    opts: &BenchOptions,
    name: &str,
    source: &str,
    n: usize,
    wall: Duration,
) -> Result<u64, Error> {
    let engine = Engine::new(EngineConfig {
        temp_root: opts.temp_root.clone(),
        cache_dir: Some(opts.cache_dir.clone()),
        pool: Some(u32::try_from(n).unwrap_or(1000)),
        // Short time slices, so every sandbox is instantiated quickly.
        epoch_tick: Duration::from_micros(200),
        ..EngineConfig::default()
    })?;
    let mut policy = Policy::strict();
    policy.limits.fuel = Fuel(1 << 50);
    policy.limits.wall_time = wall;
    let policy = Arc::new(policy.with_name("bench-memory"));
    let program = prepare(&engine, name, source, &policy)?;
    let rt = current_thread()?;
    // One run first, so that lazily initialised state is not counted.
    let warm = rt.block_on(run_job(&engine, &program, &policy, &Invocation::default()))?;
    if warm.verdict != Verdict::Limit(corral::LimitKind::WallTime) {
        return Err(Error::host(format!(
            "the spinning guest ended early: {}",
            warm.message
        )));
    }
    let before = rss()?;
    let during = rt.block_on(async {
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (engine, program, policy) = (engine.clone(), program.clone(), policy.clone());
            tasks.push(tokio::spawn(async move {
                run_job(&engine, &program, &policy, &Invocation::default()).await
            }));
        }
        tokio::time::sleep(wall / 2).await;
        let during = rss();
        for t in tasks {
            let r = t
                .await
                .map_err(|e| Error::host(format!("a sandbox task failed: {e}")))??;
            if r.verdict != Verdict::Limit(corral::LimitKind::WallTime) {
                return Err(Error::host(format!(
                    "a spinning guest ended early: {}",
                    r.message
                )));
            }
        }
        during
    })?;
    Ok(during.saturating_sub(before))
}

pub(super) fn memory(opts: &BenchOptions) -> Rows {
    let n = count(opts, 1000, 200);
    let core = live_sandboxes(opts, "spin.wat", SPIN_WAT, n, Duration::from_secs(3))?;
    let py_n = count(opts, 20, 5);
    let py = live_sandboxes(opts, "spin.py", SPIN_PY, py_n, Duration::from_secs(4))?;
    Ok(vec![
        Row::new(
            "memory",
            format!("{n} live sandboxes at once (trivial module), resident"),
            Value::Bytes(core),
        )
        .note("growth of the process's resident set while all of them run (time-sliced on one thread)"),
        Row::new(
            "memory",
            "per live sandbox (trivial module)",
            Value::Bytes(core / n as u64),
        ),
        Row::new(
            "memory",
            format!("per live Python sandbox ({py_n} at once)"),
            Value::Bytes(py / py_n as u64),
        )
        .note("CPython's heap is a copy-on-write image: a sandbox pays only for the pages it touches"),
    ])
}

// ---------------------------------------------------------------------------------------
// workers

/// An engine whose runs go to `n` worker processes (the `corral` executable).
fn worker_engine(opts: &BenchOptions, exe: &Path, n: usize) -> Result<Engine, Error> {
    Engine::new(EngineConfig {
        temp_root: opts.temp_root.clone(),
        cache_dir: Some(opts.cache_dir.clone()),
        pool: Some(64),
        isolation: corral::Isolation::Workers(corral::WorkerConfig {
            program: exe.to_path_buf(),
            workers: n,
            ..corral::WorkerConfig::default()
        }),
        ..EngineConfig::default()
    })
}

/// Runs per second of `program` from `tasks` concurrent callers for `span` (every run a
/// fresh seed; a run that does not end `ok` is an error).
pub(super) fn rate(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    program: &Program,
    policy: &Arc<Policy>,
    tasks: usize,
    span: Duration,
) -> Result<f64, Error> {
    let started = Instant::now();
    let total: usize = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let (engine, program, policy) = (engine.clone(), program.clone(), policy.clone());
            set.spawn(async move {
                let mut n = 0usize;
                while started.elapsed() < span {
                    let r = run_job(
                        &engine,
                        &program,
                        &policy,
                        &seeded((t * 1_000_000 + n) as u64),
                    )
                    .await?;
                    if r.verdict != Verdict::Ok {
                        return Err(Error::host(r.message));
                    }
                    n += 1;
                }
                Ok::<usize, Error>(n)
            });
        }
        let mut total = 0;
        while let Some(r) = set.join_next().await {
            total += r.map_err(|e| Error::host(format!("a benchmark task failed: {e}")))??;
        }
        Ok::<usize, Error>(total)
    })?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

pub(super) fn workers(opts: &BenchOptions) -> Rows {
    let Some(exe) = &opts.corral_exe else {
        return Ok(vec![Row::skipped(
            "workers",
            "runs through worker processes",
            "no corral executable (run `corral bench`)",
        )]);
    };
    let threads = cores();
    let wasm = wat(NOOP_WAT)?;
    let strict = Arc::new(Policy::strict());
    let local = engine(opts, Some(64))?;
    let remote = worker_engine(opts, exe, threads)?;
    let local_program = program_of(&local, &wasm, &strict)?;
    let remote_program = program_of(&remote, &wasm, &strict)?;
    let rt = current_thread()?;
    let one = |engine: &Engine, program: &Program, i: u64| -> Result<Duration, Error> {
        let t = Instant::now();
        let r = rt.block_on(run_job(engine, program, &strict, &seeded(i)))?;
        let d = t.elapsed();
        expect_ok(&r, "the trivial module")?;
        Ok(d)
    };
    for i in 0..300 {
        one(&local, &local_program, i)?;
        one(&remote, &remote_program, i)?;
    }
    let rounds = count(opts, 50, 10);
    let (mut l, mut r) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for i in 0..50 {
            l.push(one(&local, &local_program, (round * 50 + i) as u64)?);
        }
        for i in 0..50 {
            r.push(one(&remote, &remote_program, (round * 50 + i) as u64)?);
        }
    }
    let (l, r) = (Stats::of(&mut l), Stats::of(&mut r));
    let mut rows = vec![
        Row::new("workers", "trivial run through a warm worker, one at a time, p50", Value::Time(r.p50))
            .baseline("the same run in-process", Value::Time(l.p50))
            .at_most(Value::Time(l.p50 + Duration::from_micros(15)), "≤ in-process + 15 µs")
            .note(format!(
                "request and report over the worker's pipes, one run in flight; p99 {:?} (in-process p99 {:?}); {} runs each, interleaved",
                r.p99, l.p99, r.n
            )),
    ];

    // Throughput on every core, many runs in flight.
    let span = Duration::from_millis(count(opts, 3000, 1000) as u64);
    let mt = multi_thread(threads)?;
    let local_rate = rate(&mt, &local, &local_program, &strict, threads * 32, span)?;
    let remote_rate = rate(&mt, &remote, &remote_program, &strict, threads * 32, span)?;
    rows.push(
        Row::new(
            "workers",
            format!("trivial runs per second through {threads} workers"),
            Value::Rate(remote_rate),
        )
        .baseline("in-process, same callers", Value::Rate(local_rate))
        .at_least(Value::Rate(100_000.0), "≥ 100k/s")
        .note(format!(
            "{} concurrent callers, {span:?}; requests pipelined, up to {} ahead per worker",
            threads * 32,
            corral::WorkerConfig::default().depth
        )),
    );
    drop(mt);

    // The whole command with a worker.
    let dir = temp_dir(opts)?;
    let wat_file = dir.path().join("hello.wat");
    std::fs::write(&wat_file, NOOP_WAT).map_err(|e| Error::host(e.to_string()))?;
    let corral = |isolate: bool| {
        let mut c = Command::new(exe);
        c.arg("run").arg(&wat_file).arg("--no-record");
        if isolate {
            c.arg("--isolate");
        }
        c.env(
            "CORRAL_HOME",
            opts.cache_dir.parent().unwrap_or(&opts.cache_dir),
        );
        c
    };
    for _ in 0..3 {
        spawn_time(&mut corral(false))?;
        spawn_time(&mut corral(true))?;
    }
    let n = count(opts, 40, 10);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n {
        a.push(spawn_time(&mut corral(false))?);
        b.push(spawn_time(&mut corral(true))?);
    }
    let (a, b) = (Stats::of(&mut a), Stats::of(&mut b));
    rows.push(
        Row::new(
            "workers",
            "corral run --isolate hello.wat, whole process",
            Value::Time(b.p50),
        )
        .baseline("corral run hello.wat (in-process)", Value::Time(a.p50))
        .at_most(Value::Time(Duration::from_millis(4)), "≤ 4 ms")
        .note(format!(
            "starts and locks down one worker; {} runs each, interleaved; p99 {:?}",
            b.n, b.p99
        )),
    );

    // HumanEval's 164 canonical solutions through workers.
    if let Ok(f) = fixtures(opts) {
        let problems = humaneval::load_problems(&f.join("humaneval/HumanEval.jsonl.gz"))?;
        let programs: Vec<String> = problems
            .iter()
            .map(|p| humaneval::program(Language::Python, p, &p.canonical_solution))
            .collect();
        let policy = Arc::new(humaneval::policy());
        let mt = multi_thread(threads)?;
        let local = engine(opts, Some(u32::try_from(threads * 2).unwrap_or(8)))?;
        let remote = worker_engine(opts, exe, threads)?;
        let grade = |engine: &Engine| -> Result<(Duration, usize), Error> {
            let t = Instant::now();
            let graded = mt.block_on(humaneval::grade_all(
                engine,
                Language::Python,
                policy.clone(),
                programs.clone(),
                threads,
                |_, _| {},
            ))?;
            Ok((t.elapsed(), graded.iter().filter(|g| g.passed).count()))
        };
        grade(&local)?;
        grade(&remote)?;
        let (mut l, mut r) = (Vec::new(), Vec::new());
        let mut passed = (0, 0);
        for _ in 0..count(opts, 3, 1) {
            let (d, p) = grade(&local)?;
            l.push(d);
            passed.0 = p;
            let (d, p) = grade(&remote)?;
            r.push(d);
            passed.1 = p;
        }
        rows.push(
            Row::new(
                "workers",
                "HumanEval, 164 canonical solutions, through workers",
                Value::Time(median(r)),
            )
            .baseline("in-process", Value::Time(median(l)))
            .ratio_at_most(1.10, "≤ 1.10×")
            .note(format!(
                "{} / {} passed (in-process / workers); {threads} jobs",
                passed.0, passed.1
            )),
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_output_parses_and_rejects() {
        assert_eq!(kernel_output(b"12 34\n").ok(), Some((12, 34)));
        assert!(kernel_output(b"oops").is_err());
    }

    #[test]
    fn stats_median_and_p99() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Stats::of(&mut v);
        assert_eq!(s.p50, Duration::from_micros(51));
        assert_eq!(s.p99, Duration::from_micros(100));
        assert_eq!(s.n, 100);
    }
}
