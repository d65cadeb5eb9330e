//! The second wall: worker processes, their lock-down and their supervisor.
//!
//! The workers of these tests are this test binary itself (its `main` serves as a worker when
//! started with `corral::worker::WORKER_ARG`), built with the `test-hooks` feature so that a
//! worker can be asked to probe its walls or to misbehave.

use std::path::Path;
use std::time::{Duration, Instant};

use corral::compile::{Language, Source};
use corral::job::{self, Invocation, Program, Recording};
use corral::worker::Probe;
use corral::{Engine, EngineConfig, Isolation, LimitKind, Policy, Verdict, WorkerConfig};
use libtest_mimic::{Failed, Trial};

use crate::support;

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("workers::walls_refuse_what_they_must", walls),
        Trial::test("workers::a_crash_is_one_host_error", crash),
        Trial::test(
            "workers::a_blocked_worker_is_killed_at_the_deadline",
            blocked,
        ),
        Trial::test(
            "workers::a_dropped_run_is_cancelled_and_its_worker_freed",
            cancelled,
        ),
        Trial::test("workers::required_walls", required_walls),
        Trial::test("workers::load_with_killed_workers", load),
        Trial::test(
            "workers::issue_18_a_worker_outlives_the_thread_that_started_it",
            outlives_starter,
        ),
    ]
}

/// The program the tests' workers run: this binary, or a wrapper named by
/// `CORRAL_TEST_WORKER_WRAPPER` (`scripts/worker-syscalls.sh` traces workers with one).
pub fn worker_program() -> Result<std::path::PathBuf, Failed> {
    match std::env::var_os("CORRAL_TEST_WORKER_WRAPPER") {
        Some(w) => Ok(w.into()),
        None => std::env::current_exe().map_err(|e| Failed::from(e.to_string())),
    }
}

/// An engine whose guests run in `n` workers (this binary), its temp files under `dir`.
pub fn worker_engine(dir: &Path, n: usize) -> Result<Engine, Failed> {
    std::fs::create_dir_all(dir.join("tmp")).map_err(|e| e.to_string())?;
    Engine::new(EngineConfig {
        temp_root: dir.join("tmp"),
        cache_dir: Some(support::cache_dir()),
        pool: Some(8),
        isolation: Isolation::Workers(WorkerConfig {
            program: worker_program()?,
            workers: n,
            grace: Duration::from_millis(300),
            ..WorkerConfig::default()
        }),
        ..EngineConfig::default()
    })
    .map_err(|e| Failed::from(e.to_string()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

fn wat(text: &str) -> Source {
    Source::new(text.as_bytes().to_vec(), "guest.wat", Language::Wat)
}

const OK_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// Every wall a worker says is up holds: after lock-down it cannot open a socket, exec,
/// ptrace, fork, read `/etc/passwd` or write outside its root.
fn walls() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = worker_engine(dir.path(), 1)?;
    let rt = rt();
    let walls = rt.block_on(engine.walls()).map_err(|e| e.to_string())?;
    // These need nothing special of the kernel (seccomp and rlimits are everywhere here).
    for (name, up) in [
        ("process", walls.process),
        ("no_new_privs", walls.no_new_privs),
        ("seccomp", walls.seccomp),
        ("rlimits", walls.rlimits),
    ] {
        if !up {
            return Err(format!("the `{name}` wall is down: {walls:?}").into());
        }
    }
    let outside = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut probes = vec![Probe::Socket, Probe::Exec, Probe::Ptrace, Probe::Fork];
    if walls.landlock > 0 {
        probes.extend([Probe::ReadPasswd, Probe::WriteOutside]);
    }
    for p in probes {
        let r = rt
            .block_on(engine.probe_worker(p, outside.path()))
            .map_err(|e| e.to_string())?;
        if r.is_ok() {
            return Err(format!("{p:?} succeeded in a locked-down worker ({walls:?})").into());
        }
    }
    if outside.path().join("escaped").exists() {
        return Err("a worker wrote outside its root".into());
    }
    // The probes really test something: unconfined, this process can do them.
    if std::fs::read("/etc/passwd").is_err() || std::net::TcpListener::bind("127.0.0.1:0").is_err()
    {
        return Err("the probes cannot fail here, so they prove nothing".into());
    }
    Ok(())
}

/// Issue 18: a worker is not killed when the thread that asked for it exits. The pool is
/// made on a tokio blocking thread, which this runtime ends 50 ms after it goes idle (tokio's
/// default is 10 s): before the fix the worker, forked by that thread, got its parent-death
/// SIGKILL mid-run and a long run (here ~1 s of fuel) ended as `host_error`.
fn outlives_starter() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = worker_engine(dir.path(), 1)?;
    let mut policy = Policy::strict();
    policy.limits.fuel = corral::policy::Fuel(4_000_000_000);
    policy.limits.wall_time = Duration::from_secs(120);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(50))
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    let spin = wat("(module (func (export \"_start\") (loop br 0)))");
    let program = Program::prepare(&engine, &spin, &policy).map_err(|e| e.to_string())?;
    let r = rt
        .block_on(job::run(
            &engine,
            &program,
            &policy,
            &Invocation::default(),
            Recording::Off,
        ))
        .map_err(|e| e.to_string())?
        .report;
    if r.verdict != Verdict::Limit(LimitKind::Fuel) || !r.isolation.process {
        return Err(format!("{:?}: {}", r.verdict, r.message).into());
    }
    Ok(())
}

/// A worker that crashes mid-run ends that run as `host_error` naming the signal; the runs
/// around it, on the same and other workers, pass.
fn crash() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = worker_engine(dir.path(), 2)?;
    let policy = Policy::strict();
    let rt = rt();
    let program = Program::prepare(&engine, &wat(OK_WAT), &policy).map_err(|e| e.to_string())?;
    let reports = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (engine, program, policy) = (engine.clone(), program.clone(), policy.clone());
            let mut inv = Invocation::default();
            if i == 17 {
                inv.env.insert(job::TEST_HOOK_ENV.into(), "crash".into());
            }
            tasks.push(tokio::spawn(async move {
                job::run(&engine, &program, &policy, &inv, Recording::Off).await
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    for (i, r) in reports.into_iter().enumerate() {
        let r = r
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("run {i}: Err: {e}"))?
            .report;
        match (i, &r.verdict) {
            (17, Verdict::HostError(m)) if m.contains("signal 11") => {}
            (17, other) => return Err(format!("the crashed run: {other:?} {}", r.message).into()),
            (_, Verdict::Ok) if r.stdout == b"ok\n" && r.isolation.process => {}
            (_, other) => return Err(format!("run {i}: {other:?}: {}", r.message).into()),
        }
    }
    Ok(())
}

/// A worker stuck in a call (it blocks before running, as a host call that never returns
/// would) is killed at the run's wall time plus the grace: the verdict is `limit =
/// wall_time`, and the next run proceeds on a replacement.
fn blocked() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = worker_engine(dir.path(), 1)?;
    let mut policy = Policy::strict();
    policy.limits.wall_time = Duration::from_millis(300);
    let rt = rt();
    let program = Program::prepare(&engine, &wat(OK_WAT), &policy).map_err(|e| e.to_string())?;
    let mut inv = Invocation::default();
    inv.env.insert(job::TEST_HOOK_ENV.into(), "block".into());
    let t = Instant::now();
    let r = rt
        .block_on(job::run(&engine, &program, &policy, &inv, Recording::Off))
        .map_err(|e| e.to_string())?
        .report;
    let took = t.elapsed();
    if r.verdict != Verdict::Limit(LimitKind::WallTime) || r.deterministic() {
        return Err(format!("blocked run: {:?} {}", r.verdict, r.message).into());
    }
    // 300 ms + 300 ms of grace + the watchdog's 20 ms period; generous for a loaded machine.
    if took > Duration::from_secs(5) {
        return Err(format!("the blocked worker was killed after {took:?}").into());
    }
    let next = rt
        .block_on(job::run(
            &engine,
            &program,
            &policy,
            &Invocation::default(),
            Recording::Off,
        ))
        .map_err(|e| e.to_string())?
        .report;
    if next.verdict != Verdict::Ok {
        return Err(format!("the next run: {:?} {}", next.verdict, next.message).into());
    }
    Ok(())
}

/// A caller that stops waiting (drops the run's future, as the service does when its client
/// disconnects) cancels the run: the worker executing it is killed and replaced long before
/// the run's wall time, and the next run proceeds at once.
fn cancelled() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let engine = worker_engine(dir.path(), 1)?;
    let mut policy = Policy::strict();
    policy.limits.wall_time = Duration::from_secs(60);
    let rt = rt();
    let program = Program::prepare(&engine, &wat(OK_WAT), &policy).map_err(|e| e.to_string())?;
    let before = rt.block_on(engine.worker_pids());
    let mut inv = Invocation::default();
    inv.env.insert(job::TEST_HOOK_ENV.into(), "block".into());
    let dropped = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(300),
            job::run(&engine, &program, &policy, &inv, Recording::Off),
        )
        .await
    });
    if dropped.is_ok() {
        return Err("the blocked run came back".into());
    }
    let t = Instant::now();
    loop {
        let now = rt.block_on(engine.worker_pids());
        if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
            break;
        }
        // Killed within a watchdog period or two (40 ms here); without cancellation it would
        // run until something else stops it (about 10 s here, or the 60 s wall time).
        if t.elapsed() > Duration::from_secs(3) {
            return Err(format!(
                "the worker of the dropped run still runs after {:?} (pids {before:?} -> {now:?})",
                t.elapsed()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let next = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                job::run(
                    &engine,
                    &program,
                    &policy,
                    &Invocation::default(),
                    Recording::Off,
                ),
            )
            .await
        })
        .map_err(|_| "the next run waited for the cancelled one")?
        .map_err(|e| e.to_string())?
        .report;
    if next.verdict != Verdict::Ok {
        return Err(format!("the next run: {:?} {}", next.verdict, next.message).into());
    }
    Ok(())
}

/// `[isolation] require` refuses a run whose walls are not up, and runs it when they are.
fn required_walls() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let policy = Policy::parse(
        "<test>",
        "extends = \"strict\"\n[isolation]\nrequire = [\"process\", \"seccomp\"]\n",
    )
    .map_err(|e| e.to_string())?;
    let rt = rt();
    let local = Engine::new(EngineConfig {
        temp_root: dir.path().to_path_buf(),
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let r = rt
        .block_on(job::run_source(
            &local,
            &wat(OK_WAT),
            &policy,
            &Invocation::default(),
            Recording::Off,
        ))
        .map_err(|e| e.to_string())?
        .report;
    if !matches!(&r.verdict, Verdict::InvalidInput(m) if m.contains("process, seccomp")) {
        return Err(format!("in-process: {:?}", r.verdict).into());
    }
    let workers = worker_engine(dir.path(), 1)?;
    let r = rt
        .block_on(job::run_source(
            &workers,
            &wat(OK_WAT),
            &policy,
            &Invocation::default(),
            Recording::Off,
        ))
        .map_err(|e| e.to_string())?
        .report;
    if r.verdict != Verdict::Ok || !r.isolation.process || !r.isolation.seccomp {
        return Err(format!("in a worker: {:?} {:?}", r.verdict, r.isolation).into());
    }
    let bad = Policy::parse("<test>", "[isolation]\nrequire = [\"moat\"]\n");
    if bad.is_ok() {
        return Err("an unknown wall was accepted".into());
    }
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// 10,000 runs through the pool while a worker is killed every few hundred runs: every run
/// gets a verdict (`ok`, or `host_error` for a run a kill interrupted), none is lost or
/// duplicated, and no descriptor or temporary directory is left behind.
fn load() -> Result<(), Failed> {
    // Descriptors are counted for the whole process: run alone, in a child process.
    if std::env::var_os(LOAD_INNER).is_none() {
        let out = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .args([
                "--exact",
                "workers::load_with_killed_workers",
                "--nocapture",
            ])
            .env(LOAD_INNER, "1")
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("1 passed") {
            return Err(format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)).into());
        }
        if let Some(line) = text.lines().find(|l| l.starts_with("workers::load:")) {
            println!("{line}");
        }
        return Ok(());
    }
    load_inner()
}

/// Set in the child process that runs the load test alone.
const LOAD_INNER: &str = "CORRAL_TEST_LOAD_INNER";

fn load_inner() -> Result<(), Failed> {
    const RUNS: usize = 10_000;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fds_before = open_fds();
    let rt = rt();
    let (ok, host_errors, kills) = {
        let engine = worker_engine(dir.path(), 2)?;
        let policy = Policy::strict();
        let program =
            Program::prepare(&engine, &wat(OK_WAT), &policy).map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            let mut seen = vec![false; RUNS];
            let (mut ok, mut host_errors, mut kills) = (0usize, 0usize, 0usize);
            let mut next = 0usize;
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            while next < RUNS || !tasks.is_empty() {
                while next < RUNS && tasks.len() < 64 {
                    let (e, p, pol) = (engine.clone(), program.clone(), policy.clone());
                    let i = next;
                    tasks.spawn(async move {
                        let inv = Invocation {
                            seed: i as u64,
                            ..Invocation::default()
                        };
                        (i, job::run(&e, &p, &pol, &inv, Recording::Off).await)
                    });
                    next += 1;
                    // Now and then, kill a worker at random (xorshift).
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    if rng.is_multiple_of(300) {
                        let pids = engine.worker_pids().await;
                        if let Some(pid) = pids.get((rng as usize / 300) % pids.len().max(1)) {
                            let pid = libc::pid_t::try_from(*pid).unwrap_or(0);
                            if pid > 0 {
                                #[expect(unsafe_code, reason = "killing a worker on purpose")]
                                // SAFETY: kill takes integers; pid is a worker of this process.
                                unsafe {
                                    libc::kill(pid, libc::SIGKILL);
                                }
                                kills += 1;
                            }
                        }
                    }
                }
                let Some(done) = tasks.join_next().await else {
                    break;
                };
                let (i, r) = done.map_err(|e| e.to_string())?;
                if std::mem::replace(&mut seen[i], true) {
                    return Err(format!("run {i} came back twice"));
                }
                let report = r.map_err(|e| format!("run {i}: Err: {e}"))?.report;
                match &report.verdict {
                    Verdict::Ok => ok += 1,
                    Verdict::HostError(m) if m.contains("signal 9") => host_errors += 1,
                    other => return Err(format!("run {i}: {other:?}: {}", report.message)),
                }
            }
            if seen.iter().any(|s| !s) {
                return Err("a run was lost".to_string());
            }
            Ok((ok, host_errors, kills))
        })?
    };
    if ok + host_errors != RUNS || kills == 0 || host_errors > kills {
        return Err(format!("{ok} ok, {host_errors} host errors, {kills} kills").into());
    }
    // The engine is gone: its workers, their pipes and their directories with it.
    std::thread::sleep(Duration::from_millis(200));
    let fds_after = open_fds();
    if fds_after > fds_before + 2 {
        return Err(format!("descriptors leaked: {fds_before} before, {fds_after} after").into());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if !left.is_empty() {
        return Err(format!("temporary directories left: {left:?}").into());
    }
    println!("workers::load: {ok} ok, {host_errors} interrupted by {kills} kills");
    Ok(())
}
