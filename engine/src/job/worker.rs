//! The worker process: lock down, then run what the supervisor sends through the job stage,
//! one run at a time (the supervisor is `worker::pool`).

use std::collections::HashMap;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::{Engine, EngineConfig, GuestModule};
use crate::job::{self, Program};
use crate::policy::Policy;
use crate::report::ModuleHash;
use crate::worker::lockdown::{self, Plan};
use crate::worker::protocol::{self, Finished, FromWorker, ModuleRef, PolicyRef, Probe, ToWorker};

use crate::worker::protocol::env::{CACHE, POOL, READ_ONLY, READ_WRITE, ROOT};

/// The largest request a worker reads (a module of the largest `module_bytes` plus stdin
/// and arguments).
const MAX_REQUEST: u64 = 2 << 30;

/// Runs this process as a worker: reads its configuration from the environment the
/// supervisor set, locks itself down, says which walls are up, then serves runs from stdin
/// and answers on stdout until stdin closes. Call it from `main` when the first argument is
/// [`WORKER_ARG`](crate::worker::WORKER_ARG), before starting any thread.
pub fn serve_worker() -> ExitCode {
    match serve_inner() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral worker: {e}");
            ExitCode::from(crate::exit::HOST)
        }
    }
}

fn paths(var: &str) -> Vec<PathBuf> {
    std::env::var_os(var)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default()
}

fn serve_inner() -> Result<(), String> {
    let root = std::env::var_os(ROOT)
        .map(PathBuf::from)
        .ok_or("not started by a supervisor")?;
    let cache = std::env::var_os(CACHE).map(PathBuf::from);
    let pool: u32 = std::env::var(POOL)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4);
    let mut plan = Plan {
        read_only: paths(READ_ONLY),
        read_write: paths(READ_WRITE),
        open_files: 4096,
        file_size: 32 << 30,
        address_space: None,
    };
    plan.read_write.push(root.clone());
    plan.read_only.extend(cache.clone());
    // The engine first (no thread yet, no guest input yet): its pool reserves its address
    // space up front, which sizes the address-space limit of the lock-down.
    let engine = Engine::new(EngineConfig {
        temp_root: root,
        cache_dir: cache,
        pool: Some(pool),
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    plan.address_space = lockdown::mapped_now().map(|m| m + (8 << 30));
    let walls = lockdown::apply(&plan)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut output = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    protocol::write(&mut output, &FromWorker::Ready(walls)).map_err(|e| e.to_string())?;
    let mut modules: HashMap<ModuleHash, GuestModule> = HashMap::new();
    let mut policies: HashMap<[u8; 32], Policy> = HashMap::new();
    while let Some(msg) =
        protocol::read::<ToWorker>(&mut input, MAX_REQUEST).map_err(|e| e.to_string())?
    {
        let answer = match msg {
            ToWorker::Run(req) => {
                let id = req.id;
                if let Some(hook) = req.hook {
                    misbehave(hook)?;
                }
                let result = run(&engine, &rt, *req, &mut modules, &mut policies);
                FromWorker::Done(id, result)
            }
            ToWorker::Probe(id, probe, outside) => {
                FromWorker::Probed(id, self::probe(probe, &outside))
            }
        };
        protocol::write(&mut output, &answer).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run(
    engine: &Engine,
    rt: &tokio::runtime::Runtime,
    req: protocol::RunRequest,
    modules: &mut HashMap<ModuleHash, GuestModule>,
    policies: &mut HashMap<[u8; 32], Policy>,
) -> Result<Box<Finished>, (bool, String)> {
    let host = |e: String| (false, e);
    let policy = match req.policy {
        PolicyRef::Known(id) => policies
            .get(&id)
            .cloned()
            .ok_or_else(|| host("the worker does not know the policy".into()))?,
        PolicyRef::Text(id, name, text) => {
            let p = Policy::parse("<run policy>", &text)
                .map_err(|e| host(format!("the run's policy is invalid: {e}")))?
                .with_name(&name);
            policies.insert(id, p.clone());
            p
        }
    };
    // Admitted under the run's policy (the supervisor admitted it too; a worker trusts no
    // one), compiled once per worker, or loaded from the precompiled artifact in the cache.
    let module = match req.module {
        ModuleRef::Known(h) => {
            let m = modules
                .get(&h)
                .cloned()
                .ok_or_else(|| host(format!("the worker does not know module {h}")))?;
            m.check_caps(&policy).map_err(|r| host(r.to_string()))?;
            m
        }
        ModuleRef::Bytes(h, bytes) => {
            if ModuleHash::of(&bytes) != h {
                return Err(host("the module does not match its hash".into()));
            }
            let m = job::admit(engine, job::Wasm::Bytes(&bytes), h, &policy)
                .map_err(|r| host(format!("the module cannot be loaded: {r}")))?;
            modules.insert(h, m.clone());
            m
        }
        ModuleRef::File(h, path) => {
            let m = job::admit(engine, job::Wasm::File(&path), h, &policy)
                .map_err(|r| host(format!("the module cannot be loaded: {r}")))?;
            modules.insert(h, m.clone());
            m
        }
    };
    let program = Program::from_parts(module, req.argv0, req.lead_args, req.runner_env);
    let local = rt
        .block_on(job::run_here(
            engine,
            &program,
            &policy,
            &req.invocation,
            req.recording,
        ))
        .map_err(|e| (*e.kind() != crate::ErrorKind::Host, e.to_string()))?;
    Ok(Box::new(local))
}

/// Test hooks: misbehave as asked, if this build allows it.
fn misbehave(hook: protocol::Hook) -> Result<(), String> {
    if !cfg!(all(feature = "test-hooks", debug_assertions)) {
        return Err("test hooks are refused by this build".into());
    }
    match hook {
        protocol::Hook::Crash => {
            #[expect(unsafe_code, reason = "a segmentation fault on purpose, for a test")]
            // SAFETY: not safe at all, on purpose: a write to address 0 faults; wasmtime's
            // handler sees it is not in wasm code and the default action kills the process.
            unsafe {
                std::ptr::null_mut::<u8>().write_volatile(1);
            }
            Ok(())
        }
        protocol::Hook::Block => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
    }
}

/// Test hooks: try what the walls must refuse; `Ok` means it worked (a wall is down).
#[expect(unsafe_code, reason = "raw syscalls a compromised worker would try")]
fn probe(probe: Probe, outside: &std::path::Path) -> Result<(), String> {
    if !cfg!(all(feature = "test-hooks", debug_assertions)) {
        return Err("test hooks are refused by this build".into());
    }
    let last = || std::io::Error::last_os_error().to_string();
    match probe {
        Probe::Socket => {
            // SAFETY: socket takes integers; a returned descriptor is closed at once.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
            if fd >= 0 {
                // SAFETY: fd is ours.
                unsafe { libc::close(fd) };
                Ok(())
            } else {
                Err(last())
            }
        }
        Probe::Exec => {
            let prog = c"/bin/true";
            let argv = [prog.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null::<libc::c_char>()];
            // SAFETY: valid NUL-terminated strings and NULL-terminated arrays; on success
            // the process is replaced (which the test sees as a dead worker).
            unsafe { libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            Err(last())
        }
        Probe::Ptrace => {
            // SAFETY: PTRACE_TRACEME takes no pointers.
            let r = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
            if r == 0 { Ok(()) } else { Err(last()) }
        }
        Probe::Fork => {
            // SAFETY: the child exits at once with _exit (async-signal-safe).
            let pid = unsafe { libc::fork() };
            match pid {
                // SAFETY: in the child of fork: _exit is async-signal-safe.
                0 => unsafe { libc::_exit(0) },
                p if p > 0 => {
                    let mut status = 0;
                    // SAFETY: p is our child.
                    unsafe { libc::waitpid(p, &mut status, 0) };
                    Ok(())
                }
                _ => Err(last()),
            }
        }
        Probe::ReadPasswd => std::fs::read("/etc/passwd")
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Probe::WriteOutside => {
            std::fs::write(outside.join("escaped"), b"x").map_err(|e| e.to_string())
        }
    }
}
