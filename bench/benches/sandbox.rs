//! Criterion benches: the per-run fixed cost, the gate per host call, recording and replay,
//! fuel metering and compilation, each beside its raw-wasmtime baseline so regressions show.
//! `corral bench` prints the same comparisons (and the whole-process, language and eval
//! ones) as one table.
//!
//! ```sh
//! cargo bench -p corral-bench --bench sandbox
//! ```

use std::hint::black_box;

use corral::compile::{Language, Source};
use corral::job::{self, Invocation, Program, Recording};
use corral::policy::Fuel;
use corral::record::RecordStore;
use corral::sandbox::baseline::{Alloc, RawP1};
use corral::{Engine, EngineConfig, Policy, Verdict};
use corral_bench::{NOOP_WAT, writes_wat};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// A sieve of Eratosthenes over 1 M entries, in WAT (no toolchain needed).
const SIEVE_WAT: &str = r#"
(module
  (memory (export "memory") 16)
  (func (export "_start") (local $i i32) (local $j i32) (local $count i32)
    (local.set $i (i32.const 2))
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (i32.const 1000000)))
        (if (i32.eqz (i32.load8_u (local.get $i)))
          (then
            (local.set $count (i32.add (local.get $count) (i32.const 1)))
            (local.set $j (i32.mul (local.get $i) (local.get $i)))
            (block $inner_done
              (loop $inner
                (br_if $inner_done (i32.ge_u (local.get $j) (i32.const 1000000)))
                (i32.store8 (local.get $j) (i32.const 1))
                (local.set $j (i32.add (local.get $j) (local.get $i)))
                (br $inner)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.store (i32.const 0) (local.get $count))))
"#;

fn engine(pool: Option<u32>) -> Engine {
    Engine::new(EngineConfig {
        pool,
        ..EngineConfig::default()
    })
    .expect("engine")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// A benchmark guest's wasm, admitted, as a program.
fn program(engine: &Engine, wasm: &[u8], policy: &Policy) -> Program {
    let module = engine.admit(wasm, policy).expect("admit");
    Program::from_module(module, Language::Wasm, "main")
}

/// One complete run through the job stage that must end `ok`.
fn run_ok(rt: &tokio::runtime::Runtime, engine: &Engine, program: &Program, policy: &Policy) {
    let o = rt
        .block_on(job::run(
            engine,
            program,
            policy,
            &Invocation::default(),
            Recording::Off,
        ))
        .expect("run");
    assert_eq!(o.report.verdict, Verdict::Ok);
}

fn permissive() -> Policy {
    let mut p = Policy::bundled("permissive").expect("permissive");
    p.limits.fuel = Fuel(1 << 50);
    p
}

fn run_noop(c: &mut Criterion) {
    let wasm = wat::parse_str(NOOP_WAT).expect("wat");
    let engine = engine(Some(64));
    let strict = Policy::strict();
    let module = program(&engine, &wasm, &strict);
    let rt = rt();
    let raw = RawP1::new(&wasm, Alloc::Pooling).expect("raw");
    let mut g = c.benchmark_group("run_noop");
    g.bench_function("corral", |b| {
        b.iter(|| run_ok(&rt, &engine, &module, &strict));
    });
    g.bench_function("raw_wasmtime", |b| {
        b.iter(|| black_box(raw.run(&["noop"], None).expect("raw run")));
    });
    g.finish();
}

fn host_calls(c: &mut Criterion) {
    const CALLS: u32 = 10_000;
    let wasm = wat::parse_str(writes_wat(CALLS)).expect("wat");
    let engine = engine(Some(4));
    let policy = permissive();
    let module = program(&engine, &wasm, &policy);
    let rt = rt();
    let raw = RawP1::new(&wasm, Alloc::Pooling).expect("raw");
    let mut g = c.benchmark_group("policy_check_10k_fd_write");
    g.sample_size(20);
    g.bench_function("gate", |b| {
        b.iter(|| run_ok(&rt, &engine, &module, &policy));
    });
    g.bench_function("raw_wasmtime_wasi", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (status, _) = raw.run(&["writes"], Some(dir.path())).expect("raw run");
            assert_eq!(status, 0);
        });
    });
    g.finish();
}

fn record_overhead(c: &mut Criterion) {
    let wasm = wat::parse_str(writes_wat(10_000)).expect("wat");
    let engine = engine(Some(4));
    let rt = rt();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RecordStore::new(dir.path().join("records"));
    let source = Source::new(wasm, "writes.wasm", Language::Wasm);
    let policy = permissive();
    let none = Invocation::default();
    let run = |recording| {
        rt.block_on(job::run_source(&engine, &source, &policy, &none, recording))
            .expect("run")
    };
    let mut g = c.benchmark_group("record_overhead");
    g.sample_size(20);
    g.bench_function("no_record", |b| {
        b.iter(|| black_box(run(Recording::Off)));
    });
    g.bench_function("record", |b| {
        b.iter(|| {
            let mut o = run(Recording::On);
            black_box(o.write_record(&engine, &store).expect("record"))
        });
    });
    let mut o = run(Recording::On);
    let path = o
        .write_record(&engine, &store)
        .expect("record")
        .expect("a record");
    let opts = corral::replay::ReplayOptions {
        ceiling: permissive(),
        ..Default::default()
    };
    g.bench_function("replay", |b| {
        b.iter(|| {
            let r = rt
                .block_on(corral::replay::replay(&engine, &path, &opts))
                .expect("replay");
            assert!(r.identical);
        });
    });
    g.finish();
}

fn fuel_overhead(c: &mut Criterion) {
    let wasm = wat::parse_str(SIEVE_WAT).expect("wat");
    let engine = engine(Some(4));
    let policy = permissive();
    let module = program(&engine, &wasm, &policy);
    let rt = rt();
    let raw = RawP1::new(&wasm, Alloc::Pooling).expect("raw");
    let mut g = c.benchmark_group("fuel_overhead_sieve_1m");
    g.bench_function("corral_full_limits", |b| {
        b.iter(|| run_ok(&rt, &engine, &module, &policy));
    });
    g.bench_function("raw_no_fuel", |b| {
        b.iter(|| black_box(raw.run(&["sieve"], None).expect("raw run")));
    });
    g.finish();
}

/// A module of `n` small functions.
fn module_of(n: usize) -> Vec<u8> {
    let mut text = String::from("(module (memory (export \"memory\") 1)\n");
    for i in 0..n {
        text.push_str(&format!(
            "(func $f{i} (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))\n"
        ));
    }
    text.push_str("(func (export \"_start\")))");
    wat::parse_str(&text).expect("wat")
}

fn compile(c: &mut Criterion) {
    let policy = Policy::strict();
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for n in [10usize, 1_000, 10_000] {
        let wasm = module_of(n);
        g.bench_with_input(
            BenchmarkId::new("admit_and_compile", n),
            &wasm,
            |b, wasm| {
                b.iter(|| {
                    // A fresh engine each time: no in-memory module cache, no disk cache.
                    let e = engine(None);
                    black_box(e.admit(wasm, &policy).expect("admit"))
                });
            },
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    run_noop,
    host_calls,
    record_overhead,
    fuel_overhead,
    compile
);
criterion_main!(benches);
