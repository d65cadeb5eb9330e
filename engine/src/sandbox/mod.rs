//! One run: the only place that creates a `Store`.

#[cfg(feature = "bench-baseline")]
pub mod baseline;
pub(crate) mod preinit;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wasmtime::{CallHook, Store, UpdateDeadline};

use crate::capability::limits::Limiter;
use crate::capability::p2::CompState;
use crate::capability::stage;
use crate::capability::wasi::{self, Preopen, WasiSetup};
use crate::capability::{RunState, audit::AuditTrail};
use crate::engine::{
    Engine, GuestModule, Linked, MAX_COMPONENT_INSTANCES, MAX_COMPONENT_MEMORIES,
    MAX_COMPONENT_TABLES,
};
use crate::error::Error;
pub use crate::inputs::{Access, DirGrant, Invocation, RunInputs, StagedInput};
use crate::policy::{self, GuestPath, Policy};
use crate::report::{CallSummary, RunReport};
use crate::verdict::{self, LimitFlags, LimitKind, RunFacts};

/// Most arguments a guest may receive (including `argv[0]`).
pub const MAX_ARGS: usize = 4096;
/// Most bytes of arguments (each plus a NUL) a guest may receive.
pub const MAX_ARGS_BYTES: usize = 8 * 1024 * 1024;
/// Extra wall time granted beyond `wall_time_ms` before the run's future is dropped: a run
/// ends as `limit = wall_time` within `wall_time_ms` plus this grace (0.5 s). The epoch check
/// stops guest code at the deadline itself; the grace covers the one host call that may be
/// in progress then, and no host call blocks without bound (the gate opens only regular
/// files and directories, and bounds every loop by the work it is paid for).
pub const WALL_GRACE: Duration = Duration::from_millis(500);
/// Per-call cap on host allocations made on a guest's behalf (component calls).
const HOSTCALL_FUEL: usize = 16 << 20;

/// Configures one run (used by the job stage only). Deny by default: no arguments but
/// `argv[0]`, only the policy's environment, empty stdin, no directories, seed 0.
#[derive(Debug)]
pub(crate) struct SandboxBuilder<'a> {
    engine: &'a Engine,
    module: &'a GuestModule,
    policy: &'a Policy,
    argv0: String,
    /// A runner's leading arguments (the program text), before the invocation's.
    lead_args: Vec<String>,
    /// A runner's environment, over the policy's and under the invocation's.
    runner_env: Vec<(String, String)>,
    invocation: Invocation,
    keep_inputs: bool,
}

impl<'a> SandboxBuilder<'a> {
    pub(crate) fn new(engine: &'a Engine, module: &'a GuestModule, policy: &'a Policy) -> Self {
        SandboxBuilder {
            engine,
            module,
            policy,
            argv0: "main".into(),
            lead_args: Vec::new(),
            runner_env: Vec::new(),
            invocation: Invocation::default(),
            keep_inputs: false,
        }
    }

    /// Keep the bytes of staged inputs in [`Finished::inputs`] (needed to write a run
    /// record). By default `false`.
    pub(crate) fn keep_inputs(mut self, keep: bool) -> Self {
        self.keep_inputs = keep;
        self
    }

    /// `argv[0]`. By default `main` (never a host path).
    pub(crate) fn argv0(mut self, name: impl Into<String>) -> Self {
        self.argv0 = name.into();
        self
    }

    /// A runner's arguments, before the invocation's. By default none.
    pub(crate) fn args(mut self, args: impl IntoIterator<Item = String>) -> Self {
        self.lead_args.extend(args);
        self
    }

    /// A runner's environment (over the policy's, under the invocation's). By default none.
    pub(crate) fn runner_env(mut self, env: &[(String, String)]) -> Self {
        self.runner_env.extend_from_slice(env);
        self
    }

    /// The run's inputs. By default [`Invocation::default`].
    ///
    /// # Security
    ///
    /// Read-only directory grants are staged copies; a read-write grant hands the guest the
    /// host directory itself (only if the policy allows it).
    pub(crate) fn invocation(mut self, invocation: Invocation) -> Self {
        self.invocation = invocation;
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): arguments or environment
    /// with NUL bytes, `=` in names, over the size caps; directory grants that overlap each
    /// other or the scratch dir, or ask for `:rw` when the policy does not allow it.
    pub(crate) fn build(self) -> Result<Sandbox, Error> {
        let inv = self.invocation;
        let mut argv = Vec::with_capacity(self.lead_args.len() + inv.args.len() + 1);
        argv.push(self.argv0);
        argv.extend(self.lead_args);
        argv.extend(inv.args);
        if argv.len() > MAX_ARGS {
            return Err(Error::invalid_input(format!(
                "{} arguments, more than the {MAX_ARGS} allowed",
                argv.len()
            )));
        }
        let bytes: usize = argv.iter().map(|a| a.len() + 1).sum();
        if bytes > MAX_ARGS_BYTES {
            return Err(Error::invalid_input(format!(
                "the arguments are {bytes} bytes, more than the {MAX_ARGS_BYTES} allowed"
            )));
        }
        if let Some((i, _)) = argv.iter().enumerate().find(|(_, a)| a.contains('\0')) {
            return Err(Error::invalid_input(format!(
                "argument {i} contains a NUL byte (hint: a guest would see it cut short)"
            )));
        }
        let max_stdin = self.policy.limits.stdin;
        if inv.stdin.len() as u64 > max_stdin.0 {
            return Err(Error::invalid_input(format!(
                "stdin is {} bytes, more than the policy's `stdin_bytes` limit of {max_stdin}",
                inv.stdin.len()
            )));
        }
        let mut env = self.policy.env.clone();
        for (k, v) in self.runner_env.into_iter().chain(inv.env) {
            policy::check_env_var(&k, &v).map_err(Error::invalid_input)?;
            env.insert(k, v);
        }
        policy::check_env_size(&env).map_err(Error::invalid_input)?;

        let mut taken: Vec<GuestPath> = self.policy.fs.scratch.iter().cloned().collect();
        if matches!(self.module.linked(), Linked::Reactor { .. })
            && let Ok(lib) = GuestPath::new(preinit::LIB_GUEST)
        {
            // The scientific runner's standard library (and matplotlib's data, inside it).
            if let Some(scratch) = taken.iter().find(|t| t.overlaps(&lib)) {
                return Err(Error::invalid_input(format!(
                    "the scratch directory `{scratch}` overlaps `{lib}`, where the scientific Python runner keeps its standard library"
                )));
            }
            taken.push(lib);
        }
        for d in &inv.dirs {
            if let Some(other) = taken.iter().find(|t| t.overlaps(&d.guest)) {
                return Err(Error::invalid_input(format!(
                    "guest path `{}` overlaps `{other}` (hint: each directory needs its own, non-nested guest path)",
                    d.guest
                )));
            }
            if d.access == Access::ReadWrite && !self.policy.fs.allow_rw_dirs {
                return Err(Error::invalid_input(format!(
                    "`{}:rw` is not allowed by policy `{}` (hint: use `--policy permissive`, or drop `:rw` for a read-only copy)",
                    d.guest,
                    self.policy.name()
                )));
            }
            if !d.host.is_dir() {
                return Err(Error::invalid_input(format!(
                    "`{}` is not a directory",
                    d.host.display()
                )));
            }
            taken.push(d.guest.clone());
        }
        Ok(Sandbox {
            engine: self.engine.clone(),
            module: self.module.clone(),
            policy: self.policy.clone(),
            argv,
            env,
            stdin: inv.stdin,
            dirs: inv.dirs,
            seed: inv.seed,
            keep_inputs: self.keep_inputs,
            input: inv.input,
        })
    }
}

/// A configured run, consumed by [`Sandbox::run_full`].
#[derive(Debug)]
pub(crate) struct Sandbox {
    engine: Engine,
    module: GuestModule,
    policy: Policy,
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    stdin: Vec<u8>,
    dirs: Vec<DirGrant>,
    seed: u64,
    keep_inputs: bool,
    input: Option<std::sync::Arc<[u8]>>,
}

/// A finished run: the report, the full audit trail and the inputs to record.
#[derive(Debug)]
pub(crate) struct Finished {
    /// The report.
    pub report: RunReport,
    /// The audit trail.
    pub trail: AuditTrail,
    /// The inputs of the run.
    pub inputs: RunInputs,
}

impl Sandbox {
    /// Runs the guest to a verdict; returns the report, the audit trail and the inputs (for
    /// records).
    ///
    /// # Errors
    ///
    /// Only host failures (a temp dir cannot be created, a staging copy fails) and invalid
    /// input (a directory that cannot be opened). Every guest outcome, including traps and
    /// limits, is a verdict in `Ok`.
    pub(crate) async fn run_full(self) -> Result<Finished, Error> {
        let temp_root = self.engine.work_dir();
        let mut keep_alive: Vec<tempfile::TempDir> = Vec::new();
        let mut preopens = Vec::new();
        let mut inputs = RunInputs {
            argv: self.argv.clone(),
            env: self.env.clone(),
            stdin: self.stdin.clone(),
            seed: self.seed,
            input: self.input.clone(),
            ..RunInputs::default()
        };
        // All read-only inputs of the run together stay within the staging caps.
        let mut budget = stage::StageBudget::default();
        for d in &self.dirs {
            match d.access {
                Access::ReadOnly => {
                    let staged = stage::stage_dir(&d.host, temp_root, &mut budget)?;
                    let mut contents = Vec::with_capacity(staged.files.len());
                    for f in staged.files.iter().filter(|_| self.keep_inputs) {
                        contents.push(std::fs::read(staged.path().join(&f.path)).map_err(|e| {
                            Error::host(format!("cannot read back staged input: {e}"))
                        })?);
                    }
                    inputs.inputs.push(StagedInput {
                        guest: d.guest.to_string(),
                        dirs: staged.dirs.clone(),
                        files: staged.files.clone(),
                        contents,
                    });
                    preopens.push(Preopen {
                        host: staged.path().to_path_buf(),
                        guest: d.guest.to_string(),
                        writable: false,
                    });
                    keep_alive.push(staged.dir);
                }
                Access::ReadWrite => {
                    let host = d.host.canonicalize().map_err(|e| {
                        Error::invalid_input(format!("cannot open `{}`: {e}", d.host.display()))
                    })?;
                    inputs.rw_dirs.push(d.guest.to_string());
                    preopens.push(Preopen {
                        host,
                        guest: d.guest.to_string(),
                        writable: true,
                    });
                }
            }
        }
        self.run_with(preopens, keep_alive, inputs).await
    }

    async fn run_with(
        self,
        mut preopens: Vec<Preopen>,
        keep_alive: Vec<tempfile::TempDir>,
        inputs: RunInputs,
    ) -> Result<Finished, Error> {
        let mut scratch_dir = None;
        if let Some(scratch) = &self.policy.fs.scratch {
            let dir = self.engine.scratch_dir()?;
            preopens.insert(
                0,
                Preopen {
                    host: dir.path().to_path_buf(),
                    guest: scratch.to_string(),
                    writable: true,
                },
            );
            scratch_dir = Some(dir);
        }
        if let Linked::Reactor { lib, mpl_data, .. } = self.module.linked() {
            // The runner's standard library, first (descriptor 3), as when it was built, and
            // matplotlib's data where matplotlib looks for it (inside the zip's path).
            preopens.insert(
                0,
                Preopen {
                    host: lib.clone(),
                    guest: preinit::LIB_GUEST.to_string(),
                    writable: false,
                },
            );
            if let Some(mpl) = mpl_data {
                preopens.insert(
                    1,
                    Preopen {
                        host: mpl.clone(),
                        guest: preinit::MPL_DATA_GUEST.to_string(),
                        writable: false,
                    },
                );
            }
        }
        let setup = WasiSetup {
            policy: &self.policy,
            argv: &self.argv,
            env: &self.env,
            stdin: self.stdin.clone(),
            preopens: &preopens,
            seed: self.seed,
            #[cfg(feature = "weaken-for-tests")]
            leak_host_metadata: self.engine.config().leak_host_metadata,
            #[cfg(not(feature = "weaken-for-tests"))]
            leak_host_metadata: false,
            input: self.input.clone(),
        };
        // With a pool, wait for a free instance slot (held until the store is dropped, at
        // the end of this function). The wall-clock budget starts once the slot is ours.
        let _slot = self.engine.slot(&self.module).await;
        let started = Instant::now();
        let limits = &self.policy.limits;
        let fuel_budget = limits.fuel.0;
        let deadline = started + self.policy.limits.wall_time;
        let budget = self.policy.limits.wall_time + WALL_GRACE;
        self.engine.ensure_ticker();
        let (result, remaining, trail, sdk, captures, log, facts) = match self.module.linked() {
            Linked::Core(pre) => {
                let built = wasi::build_p1(setup)?;
                let log = built.log.clone();
                let state = RunState {
                    gate: built.gate,
                    limiter: Limiter::new(
                        limits.memory.0,
                        limits.table_elements.0,
                        (1, 1, 1),
                        log.clone(),
                    ),
                    fuel_budget,
                };
                let mut store = new_store(self.engine.wasmtime(), state, deadline, &log)?;
                let pre = pre.clone();
                let run = async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    start.call_async(&mut store, ()).await
                };
                let result = drive(run, budget, &log).await;
                let (remaining, trail, sdk, facts) = harvest(&mut store);
                (
                    result,
                    remaining,
                    trail,
                    sdk,
                    (built.stdout, built.stderr),
                    log,
                    facts,
                )
            }
            Linked::Reactor { pre, .. } => {
                let built = wasi::build_p1(setup)?;
                let log = built.log.clone();
                // The runner's own table is corral's, not the program's: the limit applies to
                // growth beyond it.
                let tables = limits
                    .table_elements
                    .0
                    .max(self.module.info().table_min_elements);
                let state = RunState {
                    gate: built.gate,
                    limiter: Limiter::new(limits.memory.0, tables, (1, 1, 1), log.clone()),
                    fuel_budget,
                };
                let engine = pre.module().engine();
                self.engine.ensure_runner_ticker(engine);
                let mut store = new_store(engine, state, deadline, &log)?;
                let pre = pre.clone();
                let run = async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
                    match run.call_async(&mut store, ()).await? {
                        0 => Ok(()),
                        status => Err(wasmtime::Error::new(wasmtime_wasi::I32Exit(status))),
                    }
                };
                let result = drive(run, budget, &log).await;
                let (remaining, trail, sdk, facts) = harvest(&mut store);
                (
                    result,
                    remaining,
                    trail,
                    sdk,
                    (built.stdout, built.stderr),
                    log,
                    facts,
                )
            }
            Linked::Component(pre) => {
                let built = wasi::build_p2(setup)?;
                let log = built.log.clone();
                let mut table = wasmtime::component::ResourceTable::new();
                table.set_max_capacity(crate::capability::rules::MAX_HANDLES);
                let state = CompState {
                    ctx: built.ctx,
                    table,
                    core: built.core,
                    limiter: Limiter::new(
                        limits.memory.0,
                        limits.table_elements.0,
                        (
                            MAX_COMPONENT_INSTANCES,
                            MAX_COMPONENT_MEMORIES,
                            MAX_COMPONENT_TABLES,
                        ),
                        log.clone(),
                    ),
                    fuel_budget,
                };
                let mut store = new_store(self.engine.wasmtime(), state, deadline, &log)?;
                let pre = pre.clone();
                let run = async {
                    let command = pre.instantiate_async(&mut store).await?;
                    match command.wasi_cli_run().call_run(&mut store).await? {
                        Ok(()) => Ok(()),
                        Err(()) => Err(wasmtime::Error::new(wasmtime_wasi::I32Exit(1))),
                    }
                };
                let result = drive(run, budget, &log).await;
                let (remaining, trail, sdk, facts) = harvest(&mut store);
                (
                    result,
                    remaining,
                    trail,
                    sdk,
                    (built.stdout, built.stderr),
                    log,
                    facts,
                )
            }
        };
        let mut flags = LimitFlags::default();
        if let Some(first) = log.first() {
            flags.hit(first);
        }
        let verdict = verdict::classify(&result, &flags, facts);
        let (stdout, stdout_truncated) = captures.0.take();
        let (stderr, stderr_truncated) = captures.1.take();
        let report = RunReport {
            message: verdict::message(&verdict, &self.policy),
            verdict,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            fuel_consumed: fuel_budget.saturating_sub(remaining),
            module_hash: Some(self.module.hash()),
            record: None,
            calls: CallSummary {
                total: trail.total(),
                per_function: trail
                    .counts()
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect(),
                denials: trail.denials(),
            },
            diagnostics: None,
            wall_time: started.elapsed(),
            trail_hash: Some(format!("blake3:{}", trail.hash())),
            result: sdk.result,
            metrics: sdk.metrics,
            isolation: crate::worker::Walls::default(),
        };
        drop(keep_alive);
        if let Some(dir) = scratch_dir {
            self.engine.recycle_scratch(dir);
        }
        Ok(Finished {
            report,
            trail,
            inputs,
        })
    }
}

impl Engine {
    /// Starts configuring a run of `module` under `policy`.
    pub(crate) fn sandbox<'a>(
        &'a self,
        module: &'a GuestModule,
        policy: &'a Policy,
    ) -> SandboxBuilder<'a> {
        SandboxBuilder::new(self, module, policy)
    }
}

/// What the sandbox needs from either kind of store data.
pub(crate) trait GatedState: Send + 'static {
    fn gate_core(&mut self) -> &mut crate::capability::GateCore;
    fn limiter(&mut self) -> &mut Limiter;
    fn fuel_budget(&self) -> u64;
}

impl GatedState for RunState {
    fn gate_core(&mut self) -> &mut crate::capability::GateCore {
        &mut self.gate.core
    }
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
    fn fuel_budget(&self) -> u64 {
        self.fuel_budget
    }
}

impl GatedState for CompState {
    fn gate_core(&mut self) -> &mut crate::capability::GateCore {
        &mut self.core
    }
    fn limiter(&mut self) -> &mut Limiter {
        &mut self.limiter
    }
    fn fuel_budget(&self) -> u64 {
        self.fuel_budget
    }
}

/// A store with every limit set before anything is instantiated: the memory/table limiter,
/// fuel, the host-allocation cap, the wall-clock deadline (checked each epoch tick, yielding
/// to the executor in between), and the call hook that gives the gate the fuel consumed at
/// each host call.
fn new_store<T: GatedState>(
    engine: &wasmtime::Engine,
    state: T,
    deadline: Instant,
    log: &std::sync::Arc<crate::capability::limits::LimitLog>,
) -> Result<Store<T>, Error> {
    let fuel_budget = state.fuel_budget();
    let mut store = Store::new(engine, state);
    store.limiter(|s| s.limiter());
    store
        .set_fuel(fuel_budget)
        .map_err(|e| Error::host(format!("cannot set fuel: {e}")))?;
    store.set_hostcall_fuel(HOSTCALL_FUEL);
    let wall_log = log.clone();
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            wall_log.hit(LimitKind::WallTime);
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store.set_epoch_deadline(1);
    // The gate needs the fuel consumed at each host call (its clock and trail), and each
    // call the gate records owes HOST_CALL_FUEL. wasmtime also runs this hook around its own
    // libcalls (memory growth, traps, epoch interrupts at wall-clock-dependent moments), so
    // fuel is only charged for what the gate recorded, never per hook invocation.
    store.call_hook(move |mut cx, hook| {
        match hook {
            CallHook::CallingHost => {
                let remaining = cx.get_fuel()?;
                let data = cx.data_mut();
                let budget = data.fuel_budget();
                let core = data.gate_core();
                core.host_depth += 1;
                // Only the outermost call: a libcall nested in a component call (an epoch
                // check in `cabi_realloc`) happens at a wall-clock-dependent moment.
                if core.host_depth == 1 {
                    core.clock
                        .set_fuel_consumed(budget.saturating_sub(remaining));
                }
            }
            CallHook::ReturningFromHost => {
                let core = cx.data_mut().gate_core();
                core.host_depth = core.host_depth.saturating_sub(1);
                // Charged only on the way back to guest code that reloads its fuel counter
                // after the call: wasm reloads fuel after a call to an import, but not after
                // an epoch libcall, so a charge made there would be overwritten (lost at a
                // wall-clock-dependent moment).
                let owed = if core.host_depth == 0 {
                    std::mem::take(&mut core.pending_fuel)
                } else {
                    0
                };
                if owed > 0 {
                    let remaining = cx.get_fuel()?;
                    // Out of fuel here makes the next fuel check trap (limit = fuel).
                    cx.set_fuel(remaining.saturating_sub(owed))?;
                }
            }
            CallHook::CallingWasm => cx.data_mut().gate_core().wasm_entered = true,
            _ => {}
        }
        Ok(())
    });
    Ok(store)
}

/// What a finished store leaves for the report: remaining fuel, the trail, the SDK state,
/// and what the verdict needs to know of the run.
fn harvest<T: GatedState>(
    store: &mut Store<T>,
) -> (u64, AuditTrail, crate::capability::SdkState, RunFacts) {
    let remaining = store.get_fuel().unwrap_or(0);
    let core = store.data_mut().gate_core();
    let facts = RunFacts {
        guest_ran: core.wasm_entered,
        gate_trapped: core.gate_trapped,
    };
    (
        remaining,
        std::mem::take(&mut core.trail),
        std::mem::take(&mut core.sdk),
        facts,
    )
}

/// Runs the guest's future under the wall-clock backstop: a guest stuck anywhere the epoch
/// cannot reach is dropped (cancelled) at `budget`.
async fn drive(
    run: impl std::future::Future<Output = wasmtime::Result<()>>,
    budget: Duration,
    log: &crate::capability::limits::LimitLog,
) -> wasmtime::Result<()> {
    match tokio::time::timeout(budget, run).await {
        Ok(r) => r,
        Err(_) => {
            log.hit(LimitKind::WallTime);
            Err(wasmtime::Error::new(crate::verdict::GateStop::Limit(
                LimitKind::WallTime,
            )))
        }
    }
}
