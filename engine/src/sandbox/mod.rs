//! One run: the only place that creates a `Store`.

#[cfg(feature = "bench-baseline")]
pub mod baseline;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmtime::{CallHook, Store, UpdateDeadline};

use crate::capability::limits::Limiter;
use crate::capability::p2::CompState;
use crate::capability::stage::{self, StagedFile};
use crate::capability::wasi::{self, Preopen, WasiSetup};
use crate::capability::{RunState, audit::AuditTrail};
use crate::engine::{
    Compiled, Engine, GuestModule, MAX_COMPONENT_INSTANCES, MAX_COMPONENT_MEMORIES,
    MAX_COMPONENT_TABLES,
};
use crate::error::Error;
use crate::policy::{self, GuestPath, Policy};
use crate::report::{CallSummary, RunReport};
use crate::verdict::{self, LimitFlags, LimitKind, RunFacts, Verdict};

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

/// How a host directory is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Staged copy, read-only (the default).
    ReadOnly,
    /// The host directory itself, writable (needs `fs.allow_rw_dirs`).
    ReadWrite,
}

/// A host directory bound to a guest path (`--dir HOST::GUEST[:ro|:rw]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Host directory.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: GuestPath,
    /// Read-only (staged copy) or read-write.
    pub access: Access,
}

impl DirGrant {
    /// Parses `HOST::GUEST[:ro|:rw]`.
    ///
    /// # Errors
    ///
    /// A missing `::`, an invalid guest path, an unknown mode.
    pub fn parse(spec: &str) -> Result<DirGrant, Error> {
        let (host, rest) = spec.split_once("::").ok_or_else(|| {
            Error::invalid_input(format!(
                "`--dir {spec}` is not of the form HOST::GUEST[:ro|:rw]"
            ))
        })?;
        let (guest, access) = match rest.rsplit_once(':') {
            Some((g, "ro")) => (g, Access::ReadOnly),
            Some((g, "rw")) => (g, Access::ReadWrite),
            Some((_, mode)) if !mode.contains('/') => {
                return Err(Error::invalid_input(format!(
                    "`--dir {spec}`: unknown mode `{mode}` (use `ro` or `rw`)"
                )));
            }
            _ => (rest, Access::ReadOnly),
        };
        if host.is_empty() {
            return Err(Error::invalid_input(format!(
                "`--dir {spec}`: empty host path"
            )));
        }
        let guest = GuestPath::new(guest).map_err(|e| {
            Error::invalid_input(format!("`--dir {spec}`: {e} (hint: {})", e.hint()))
        })?;
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest,
            access,
        })
    }
}

/// Configures one run. Deny by default: no arguments but `argv[0]`, only the policy's
/// environment, empty stdin, no directories, seed 0.
#[derive(Debug)]
pub struct SandboxBuilder<'a> {
    engine: &'a Engine,
    module: &'a GuestModule,
    policy: &'a Policy,
    argv0: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    stdin: Vec<u8>,
    dirs: Vec<DirGrant>,
    seed: u64,
    keep_inputs: bool,
    input: Option<std::sync::Arc<[u8]>>,
}

/// The inputs of a run that a record must keep to replay it.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// `argv`, including `argv[0]`.
    pub argv: Vec<String>,
    /// The guest environment (policy merged under invocation), sorted.
    pub env: BTreeMap<String, String>,
    /// Stdin bytes.
    pub stdin: Vec<u8>,
    /// Seed of the random and clock virtualisation.
    pub seed: u64,
    /// The case input (`corral_v1`).
    pub input: Option<std::sync::Arc<[u8]>>,
    /// Staged read-only inputs: guest path, directories, files (with bytes).
    pub inputs: Vec<StagedInput>,
    /// Whether any writable host directory was granted (such runs replay only if the
    /// directory's initial contents are the same; they are not captured).
    pub rw_dirs: Vec<String>,
}

/// One read-only input directory as staged for a run.
#[derive(Debug, Clone, Default)]
pub struct StagedInput {
    /// Guest path.
    pub guest: String,
    /// Directories, relative.
    pub dirs: Vec<String>,
    /// Files, relative, with their hashes.
    pub files: Vec<StagedFile>,
    /// The staged bytes of each file (same order as `files`).
    pub contents: Vec<Vec<u8>>,
}

impl<'a> SandboxBuilder<'a> {
    pub(crate) fn new(engine: &'a Engine, module: &'a GuestModule, policy: &'a Policy) -> Self {
        SandboxBuilder {
            engine,
            module,
            policy,
            argv0: "main".into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: Vec::new(),
            dirs: Vec::new(),
            seed: 0,
            keep_inputs: false,
            input: None,
        }
    }

    /// The case input the guest reads through `corral_v1::input_*` (the guest SDK). By
    /// default none.
    pub fn input(mut self, bytes: Option<std::sync::Arc<[u8]>>) -> Self {
        self.input = bytes;
        self
    }

    /// Keep the bytes of staged inputs in [`Finished::inputs`] (needed to write a run
    /// record). By default `false`.
    pub fn keep_inputs(mut self, keep: bool) -> Self {
        self.keep_inputs = keep;
        self
    }

    /// `argv[0]`. By default `main` (never a host path).
    pub fn argv0(mut self, name: impl Into<String>) -> Self {
        self.argv0 = name.into();
        self
    }

    /// Appends guest arguments after `argv[0]`. By default none.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable (overrides the policy's `[env]`). By default only the
    /// policy's environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The guest's stdin. By default empty (EOF at once).
    pub fn stdin(mut self, bytes: Vec<u8>) -> Self {
        self.stdin = bytes;
        self
    }

    /// Exposes a host directory. By default none.
    ///
    /// # Security
    ///
    /// Read-only grants are staged copies; a read-write grant hands the guest the host
    /// directory itself (only if the policy allows it).
    pub fn dir(mut self, grant: DirGrant) -> Self {
        self.dirs.push(grant);
        self
    }

    /// The seed of the guest's random streams. By default 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): arguments or environment
    /// with NUL bytes, `=` in names, over the size caps; directory grants that overlap each
    /// other or the scratch dir, or ask for `:rw` when the policy does not allow it.
    pub fn build(self) -> Result<Sandbox, Error> {
        let mut argv = Vec::with_capacity(self.args.len() + 1);
        argv.push(self.argv0);
        argv.extend(self.args);
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
        let mut env = self.policy.env.clone();
        for (k, v) in self.env {
            policy::check_env_var(&k, &v).map_err(Error::invalid_input)?;
            env.insert(k, v);
        }
        policy::check_env_size(&env).map_err(Error::invalid_input)?;

        let mut taken: Vec<GuestPath> = self.policy.fs.scratch.iter().cloned().collect();
        for d in &self.dirs {
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
            stdin: self.stdin,
            dirs: self.dirs,
            seed: self.seed,
            keep_inputs: self.keep_inputs,
            input: self.input,
        })
    }
}

/// A configured run, consumed by [`Sandbox::run`].
#[derive(Debug)]
pub struct Sandbox {
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
pub struct Finished {
    /// The report.
    pub report: RunReport,
    /// The audit trail.
    pub trail: AuditTrail,
    /// The inputs of the run.
    pub inputs: RunInputs,
}

impl Sandbox {
    /// Runs the guest to a verdict.
    ///
    /// # Errors
    ///
    /// Only host failures (a temp dir cannot be created, a staging copy fails). Every
    /// guest outcome, including traps and limits, is a verdict in `Ok`.
    ///
    /// # Determinism
    ///
    /// With the same module, policy, inputs and seed, the report is identical except for
    /// `wall_time` and `limit = wall_time` verdicts.
    pub async fn run(self) -> Result<RunReport, Error> {
        Ok(self.run_full().await?.report)
    }

    /// As [`Sandbox::run`], also returning the audit trail and the inputs (for records).
    ///
    /// # Errors
    ///
    /// As [`Sandbox::run`].
    pub async fn run_full(self) -> Result<Finished, Error> {
        let temp_root = &self.engine.config().temp_root;
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

    /// Replays with inputs rebuilt from a record.
    pub(crate) async fn run_rebuilt(
        self,
        rebuilt: Vec<(String, tempfile::TempDir)>,
        inputs: RunInputs,
    ) -> Result<Finished, Error> {
        let mut keep_alive = Vec::new();
        let mut preopens = Vec::new();
        for (guest, dir) in rebuilt {
            preopens.push(Preopen {
                host: dir.path().to_path_buf(),
                guest,
                writable: false,
            });
            keep_alive.push(dir);
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
        let (result, remaining, trail, sdk, captures, log, facts) = match self.module.compiled() {
            Compiled::Core(pre) => {
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
            Compiled::Component(pre) => {
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
    pub fn sandbox<'a>(
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

impl Verdict {
    /// Whether this verdict came from running the guest (as opposed to never starting it).
    pub fn ran(&self) -> bool {
        !matches!(
            self,
            Verdict::Rejected(_)
                | Verdict::CompileError(_)
                | Verdict::InvalidInput(_)
                | Verdict::HostError(_)
        )
    }
}
