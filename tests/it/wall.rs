//! The wall clock holds always (issue 11): a guest that opens a FIFO sitting in a `:rw`
//! directory — which, opened by the host, would block the run's thread in `open(2)` forever,
//! out of reach of fuel and of the wall clock — ends as `limit = wall_time` within the
//! policy's wall time plus [`WALL_GRACE`]. The run happens on its own thread; a run that
//! does not come back at all fails the test (after a generous timeout) instead of hanging.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use corral::compile::Language;
use corral::job::{self, Invocation, Program, Recording};
use corral::sandbox::WALL_GRACE;
use corral::{Access, DirGrant, Engine, EngineConfig, LimitKind, Policy, Verdict};
use libtest_mimic::{Failed, Trial};

use crate::support;

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("wall::issue_11_fifo_in_rw_dir_ends_at_wall_time_p1", || {
            fifo_run(include_str!("guests/fifo_spin_p1.wat"))
        }),
        Trial::test("wall::issue_11_fifo_in_rw_dir_ends_at_wall_time_p2", || {
            fifo_run(include_str!("guests/fifo_spin_p2.wat"))
        }),
    ]
}

/// The policy's wall time: short, with more fuel than a spin can burn in it.
const WALL_MS: u64 = 300;

fn fifo_run(wat: &'static str) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("rw")).map_err(|e| e.to_string())?;
    let pipe = std::ffi::CString::new(root.join("rw/pipe").as_os_str().as_encoded_bytes())
        .map_err(|e| e.to_string())?;
    // SAFETY: `pipe` is a valid NUL-terminated path.
    #[expect(unsafe_code, reason = "mkfifo has no safe std wrapper")]
    if unsafe { libc::mkfifo(pipe.as_ptr(), 0o644) } != 0 {
        return Err(format!("mkfifo: {}", std::io::Error::last_os_error()).into());
    }
    let policy = Policy::parse(
        "wall.toml",
        &format!(
            "version = 1\nextends = \"permissive\"\n[limits]\nfuel = 10_000_000_000_000\nwall_time_ms = {WALL_MS}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let wasm = wat::parse_str(wat).map_err(|e| e.to_string())?;
    let engine = Engine::new(EngineConfig {
        temp_root: root.join("tmp"),
        cache_dir: Some(support::cache_dir()),
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let module = engine.admit(&wasm, &policy).map_err(|e| e.to_string())?;
    let program = Program::from_module(module, Language::Wat, "fifo.wasm");
    let invocation = Invocation {
        dirs: vec![DirGrant {
            host: root.join("rw"),
            guest: corral::policy::GuestPath::new("/rw").map_err(|e| e.to_string())?,
            access: Access::ReadWrite,
        }],
        ..Invocation::default()
    };
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let runner = engine.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map(|rt| {
                rt.block_on(job::run(
                    &runner,
                    &program,
                    &policy,
                    &invocation,
                    Recording::Off,
                ))
                .map(|outcome| outcome.report)
            });
        let _ = tx.send(rt.map_err(|e| e.to_string()));
    });
    // A host that blocks in open(2) never comes back; don't wait for it forever.
    let report = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(e))) => return Err(format!("host error: {e}").into()),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err("the run did not come back within 60 s (a blocked host call)".into()),
    };
    let waited = started.elapsed();
    if report.verdict != Verdict::Limit(LimitKind::WallTime) {
        return Err(format!("expected limit wall_time, got {:?}", report.verdict).into());
    }
    let bound = Duration::from_millis(WALL_MS) + WALL_GRACE;
    if report.wall_time > bound {
        return Err(format!(
            "the run took {:?} of wall time, more than {WALL_MS} ms plus the grace ({bound:?})",
            report.wall_time
        )
        .into());
    }
    // The whole call (instantiation included) comes back within the bound too, with room
    // for a loaded machine.
    if waited > bound + Duration::from_secs(10) {
        return Err(format!("the run came back after {waited:?}").into());
    }
    drop(engine);
    Ok(())
}
