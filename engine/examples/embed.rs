//! Embedding corral: create an engine once, prepare a program once, run it many times
//! through the job stage.
//!
//! ```sh
//! cargo run --release -p corral --example embed
//! ```

use std::time::Instant;

use corral::compile::{Language, Source};
use corral::job::{self, Invocation, Program, Recording};
use corral::{Engine, EngineConfig, Policy, Verdict};

const GUEST: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\n")
  (func (export "_start")
    (drop (call $args (i32.const 32) (i32.const 36)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One engine per process (shared, `Clone`, `Send + Sync`).
    // `pool` pre-allocates slots for concurrent sandboxes (pooling allocator, CoW memory).
    let engine = Engine::new(EngineConfig {
        pool: Some(64),
        ..EngineConfig::default()
    })?;
    let policy = Policy::strict();

    // Compilation and admission happen once; the `Program` is cheap to clone.
    let source = Source::new(GUEST.as_bytes().to_vec(), "guest.wat", Language::Wat);
    let program = Program::prepare(&engine, &source, &policy)?;

    // Each run gets a fresh sandbox: its own store, limits, WASI context and gate.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let runs = 10_000;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        let invocation = Invocation {
            seed: i as u64,
            ..Invocation::default()
        };
        let report = rt
            .block_on(job::run(
                &engine,
                &program,
                &policy,
                &invocation,
                Recording::Off,
            ))?
            .report;
        samples.push(t.elapsed());
        assert_eq!(report.verdict, Verdict::Ok);
        assert_eq!(report.stdout, b"ok\n");
    }
    samples.sort();
    println!(
        "{runs} runs: p50 {:?}, p90 {:?}, p99 {:?} per run (build + instantiate + run + report)",
        samples[runs / 2],
        samples[runs * 9 / 10],
        samples[runs * 99 / 100]
    );
    Ok(())
}
