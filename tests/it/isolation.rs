//! Runs on one engine share nothing: each sees an empty private scratch directory, even
//! though empty scratch directories are reused between runs.

use corral::compile::Language;
use corral::compile::Source;
use corral::job::{self, Invocation, Program, Recording};
use corral::{Engine, EngineConfig, Policy, Verdict};
use libtest_mimic::{Failed, Trial};

use crate::support;

pub fn trials() -> Vec<Trial> {
    vec![Trial::test(
        "isolation::every_run_gets_an_empty_scratch_dir",
        scratch_is_private,
    )]
}

/// Lists /tmp, then leaves a file, a directory, or nothing behind (by the first argument).
const GUEST: &str = r#"
fn main() {
    let seen: Vec<String> = std::fs::read_dir("/tmp")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    println!("{seen:?}");
    match std::env::args().nth(1).as_deref() {
        Some("file") => std::fs::write("/tmp/left-behind", b"secret of an earlier run").unwrap(),
        Some("dir") => std::fs::create_dir_all("/tmp/d/e").unwrap(),
        Some("undo") => {
            std::fs::write("/tmp/gone", b"x").unwrap();
            std::fs::remove_file("/tmp/gone").unwrap();
        }
        _ => {}
    }
}
"#;

fn scratch_is_private() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = Engine::new(EngineConfig {
        temp_root: dir.path().to_path_buf(),
        cache_dir: Some(support::cache_dir()),
        pool: Some(4),
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let policy = Policy::bundled("standard").map_err(|e| e.to_string())?;
    let source = Source::new(GUEST.as_bytes().to_vec(), "scratch.rs", Language::Rust);
    let program = Program::prepare(&engine, &source, &policy).map_err(|e| e.to_string())?;
    if let Some(f) = program.failure() {
        return Err(format!("the guest did not compile: {}", f.message).into());
    }
    let with_arg = |mode: &str| Invocation {
        args: vec![mode.to_string()],
        ..Invocation::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    const MODES: [&str; 8] = [
        "file", "none", "dir", "none", "undo", "none", "file", "none",
    ];
    let modes = MODES;
    // In sequence, then all at once.
    let mut reports = Vec::new();
    for mode in modes {
        let r = rt
            .block_on(job::run(
                &engine,
                &program,
                &policy,
                &with_arg(mode),
                Recording::Off,
            ))
            .map_err(|e| e.to_string())?;
        reports.push(r.report);
    }
    let concurrent = rt.block_on(async {
        let mut tasks = Vec::new();
        for mode in MODES.iter().cycle().take(24) {
            let (engine, program, policy, inv) = (
                engine.clone(),
                program.clone(),
                policy.clone(),
                with_arg(mode),
            );
            tasks.push(tokio::spawn(async move {
                job::run(&engine, &program, &policy, &inv, Recording::Off)
                    .await
                    .map(|o| o.report)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    for r in concurrent {
        reports.push(r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?);
    }
    for r in &reports {
        if r.verdict != Verdict::Ok || r.stdout != b"[]\n" {
            return Err(format!(
                "a run saw a non-empty scratch dir or failed: {} {:?}",
                r.message,
                String::from_utf8_lossy(&r.stdout)
            )
            .into());
        }
    }
    // Nothing is left once the engine is gone.
    drop(engine);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if !left.is_empty() {
        return Err(format!("left behind: {left:?}").into());
    }
    Ok(())
}
