//! Determinism under wall-clock pressure: reports must not depend on when epoch ticks land.
//!
//! The epoch ticker interrupts guests at wall-clock moments (the time slice and the
//! wall-time backstop). Those interrupts enter the host through wasmtime libcalls, which run
//! the same call hook as gate calls; a component call also runs guest code (`cabi_realloc`)
//! while it lowers its results, so a tick can land inside a gate call. Nothing the guest sees
//! (fuel, the virtual clocks, the trail) may change with that. These tests tick every few
//! microseconds, so thousands of interrupts land at different places in every run, and
//! compare each report with one from an engine ticking at the default rate.

use std::path::Path;
use std::time::Duration;

use corral::compile::Language;
use corral::compile::Source;
use corral::job::{self, Invocation, Recording};
use corral::{Engine, EngineConfig, Policy};
use libtest_mimic::{Failed, Trial};

use crate::support;

pub fn trials() -> Vec<Trial> {
    [
        "fixtures/lang/py_determinism.py",
        "fixtures/lang/js_determinism.js",
        "fixtures/lang/c_stdin_sum.c",
    ]
    .into_iter()
    .map(|p| {
        let name = Path::new(p)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Trial::test(
            format!("determinism::fast_epoch_ticks::{name}"),
            move || fast_ticks(p),
        )
    })
    .collect()
}

fn engine(tick: Duration, dir: &Path) -> Result<Engine, Failed> {
    Engine::new(EngineConfig {
        temp_root: dir.to_path_buf(),
        cache_dir: Some(support::cache_dir()),
        epoch_tick: tick,
        pool: Some(4),
        ..EngineConfig::default()
    })
    .map_err(|e| Failed::from(e.to_string()))
}

fn fast_ticks(path: &str) -> Result<(), Failed> {
    let file = support::repo().join(path);
    let source = std::fs::read(&file).map_err(|e| e.to_string())?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let language = Language::from_path(&file).ok_or("unknown language")?;
    let source = Source::new(source, name, language);
    let policy = Policy::strict();
    let invocation = Invocation {
        stdin: b"1 2 3 4 5 6 7 8 9 10\n".to_vec(),
        seed: 7,
        ..Invocation::default()
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;

    let calm = engine(corral::EPOCH_TICK, dir.path())?;
    let want = rt
        .block_on(job::run_source(
            &calm,
            &source,
            &policy,
            &invocation,
            Recording::Off,
        ))
        .map_err(|e| e.to_string())?
        .report;
    if want.verdict != corral::Verdict::Ok {
        return Err(format!("baseline run failed: {}", want.message).into());
    }
    let want = want.deterministic_json();

    // Several runs at once on two threads, each interrupted every few microseconds.
    let busy = engine(Duration::from_micros(5), dir.path())?;
    let reports = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (busy, source, policy, invocation) = (
                busy.clone(),
                source.clone(),
                policy.clone(),
                invocation.clone(),
            );
            tasks.push(tokio::spawn(async move {
                job::run_source(&busy, &source, &policy, &invocation, Recording::Off).await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    for (i, r) in reports.into_iter().enumerate() {
        let got = r
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .report
            .deterministic_json();
        if got != want {
            return Err(format!(
                "run {i} under fast ticks differs from the baseline:\n{}\n---\n{}",
                serde_json::to_string_pretty(&want).unwrap_or_default(),
                serde_json::to_string_pretty(&got).unwrap_or_default()
            )
            .into());
        }
    }
    Ok(())
}
