//! The one shared wasmtime engine, its linker, and the compiled-module cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{Config, InstancePre, Linker, Module, Strategy, WasmFeatures};

use crate::admit::{self, ModuleInfo, Rejection};
use crate::capability::p2::CompState;
use crate::capability::{self, RunState};
use crate::error::Error;
use crate::policy::Policy;
use crate::report::ModuleHash;

/// Maximum wasm stack (bytes). Fixed: stack-overflow depth is part of the determinism profile.
/// 16 MiB: interpreters (CPython, QuickJS) recurse through C and need it to report
/// `RecursionError`/`RangeError` instead of overflowing the wasm stack.
pub const MAX_WASM_STACK: usize = 16 << 20;
/// Fiber stack for async execution (must exceed [`MAX_WASM_STACK`]; the rest is for host calls).
pub const ASYNC_STACK: usize = MAX_WASM_STACK + (1 << 20);
/// The wasmtime version corral is pinned to.
pub const WASMTIME_VERSION: &str = "48.0.8";
/// Version of the gate's guest-visible behaviour (bumped whenever a virtualised value could
/// change); part of the engine identity in run records.
pub const GATE_VERSION: &str = "gate-3";
/// How often the epoch ticker runs (the wall-clock check and the async time slice).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where temporary directories are created: each engine makes one private work directory
    /// here (`corral-<pid>-<start>-<n>`) for its runs' scratch dirs, staged inputs and
    /// compiler work dirs, removes it when dropped, and removes those of processes that no
    /// longer exist. By default the system temp dir.
    pub temp_root: PathBuf,
    /// Where compiled wasm (from sources), built runners and precompiled artifacts are
    /// cached. By default none (nothing is cached on disk).
    pub cache_dir: Option<PathBuf>,
    /// Pre-allocate instance slots (memories, tables, fiber stacks) for this many concurrent
    /// sandboxes: the pooling allocator with copy-on-write memory images, which makes each run
    /// cheaper. By default `None` (each run maps its own memory and stack: best for a single
    /// run per process, like the CLI's `run`).
    pub pool: Option<u32>,
    /// How often the epoch ticker runs: the granularity of the wall-clock backstop and the
    /// time slice after which a running guest yields to others on the same thread. Verdicts
    /// other than `limit = wall_time` never depend on it. By default [`EPOCH_TICK`].
    pub epoch_tick: Duration,
    /// Where guests run: in this process, or in supervised worker processes (a second
    /// wall). By default in this process.
    pub isolation: crate::worker::Isolation,
    /// Test-only weakening: stat results carry the host's raw timestamps and inode hashes.
    #[cfg(feature = "weaken-for-tests")]
    #[doc(hidden)]
    pub leak_host_metadata: bool,
}

impl EngineConfig {
    /// The configuration the `corral` command uses: temporary directories under
    /// [`hostfs::temp_root`](crate::hostfs::temp_root) (`$CORRAL_TMPDIR`, else the system
    /// temp dir) and the cache in [`hostfs::cache_dir`](crate::hostfs::cache_dir); no pool.
    ///
    /// # Ambient authority
    ///
    /// Reads `CORRAL_TMPDIR`, `TMPDIR`, `CORRAL_HOME`, `XDG_CACHE_HOME` and `HOME`.
    pub fn from_env() -> EngineConfig {
        EngineConfig {
            temp_root: crate::hostfs::temp_root(),
            cache_dir: crate::hostfs::cache_dir(),
            ..EngineConfig::default()
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            temp_root: std::env::temp_dir(),
            cache_dir: None,
            pool: None,
            epoch_tick: EPOCH_TICK,
            isolation: crate::worker::Isolation::InProcess,
            #[cfg(feature = "weaken-for-tests")]
            leak_host_metadata: false,
        }
    }
}

/// A stable digest (blake3, hex) of what wasmtime says makes precompiled code compatible
/// between engines (its version and codegen settings): the same on every build of the same
/// configuration, unlike `std`'s `Hasher`, whose output may change between Rust releases.
pub(crate) fn compatibility_digest(engine: &wasmtime::Engine) -> String {
    struct Blake(blake3::Hasher);
    impl std::hash::Hasher for Blake {
        fn finish(&self) -> u64 {
            0 // never called: the digest is read from the hasher itself
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Blake(blake3::Hasher::new_derive_key(
        "corral 2026 wasmtime compatibility v1",
    ));
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
    h.0.finalize().to_hex().to_string()
}

/// The artifact cache of `engine` under `cache_dir`.
fn artifact_cache(
    cache_dir: &std::path::Path,
    engine: &wasmtime::Engine,
) -> crate::artifact::ArtifactCache {
    let key = blake3::Hasher::new_derive_key("corral 2026 artifact cache key v1")
        .update(compatibility_digest(engine).as_bytes())
        .update(env!("CARGO_PKG_VERSION").as_bytes())
        .update(b"\0")
        .update(GATE_VERSION.as_bytes())
        .finalize();
    crate::artifact::ArtifactCache::new(cache_dir.join("artifacts"), key.to_hex()[..16].to_string())
}

/// A link error with its whole context chain (which names the import), on one line.
fn link_error(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    parts.dedup();
    crate::redact::scrub_host_paths(&parts.join(": "))
}

/// The wasm features corral accepts: what compilers emit, without threads, shared memory,
/// GC, exceptions, stack switching, memory64, multi-memory or relaxed SIMD.
pub fn wasm_features() -> WasmFeatures {
    WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SATURATING_FLOAT_TO_INT
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::REFERENCE_TYPES
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY
        | WasmFeatures::SIMD
        | WasmFeatures::FLOATS
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::CALL_INDIRECT_OVERLONG
        | WasmFeatures::BULK_MEMORY_OPT
}

/// The wasm features of the scientific Python runner's engine, and of no other: corral's
/// own, plus the exception-handling proposal its CPython (C++ code in numpy, scipy,
/// matplotlib) is compiled with. wasmtime 48 compiles exception handling only with GC
/// *types* enabled (without them Cranelift panics on `exnref`); the GC proposal itself
/// (`struct`/`array` instructions) stays off. User modules are always admitted with
/// [`wasm_features`], so a user module that uses exceptions is rejected.
pub fn runner_wasm_features() -> WasmFeatures {
    wasm_features() | WasmFeatures::EXCEPTIONS | WasmFeatures::GC_TYPES
}

/// The configuration of the scientific Python runner's engine: the default determinism
/// and security settings with [`runner_wasm_features`], and no instance pool (one run of a
/// ~100 MB interpreter per slot would need a pool of its own; instantiation maps the
/// precompiled memory image copy-on-write either way).
///
/// Its GC heap holds only exception objects (the GC proposal is off), so it gets a small
/// reservation that grows by moving (with explicit bounds checks) instead of wasmtime's
/// default of a second 4 GiB reservation beside the linear memory's: a run then fits the
/// address-space limit of a worker process (the pool's reservation + 8 GiB).
pub(crate) fn runner_config() -> Config {
    let mut c = wasmtime_config(None);
    c.wasm_features(WasmFeatures::all(), false)
        .wasm_features(runner_wasm_features(), true)
        .gc_heap_reservation(RUNNER_GC_HEAP)
        .gc_heap_guard_size(0)
        .gc_heap_reservation_for_growth(RUNNER_GC_HEAP)
        .gc_heap_may_move(true);
    c
}

/// The scientific runner's GC heap reservation, and its growth step (bytes).
const RUNNER_GC_HEAP: u64 = 16 << 20;

fn wasmtime_config(pool: Option<u32>) -> Config {
    let mut c = Config::new();
    if let Some(n) = pool {
        let n = pool_slots(n);
        let mut p = wasmtime::PoolingAllocationConfig::new();
        // Components (the language runners) hold several core instances, memories and
        // tables each; a core module holds one of each.
        p.total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_SLOT))
            .total_component_instances(n)
            .total_memories(n.saturating_mul(MEMORIES_PER_SLOT))
            .total_tables(n.saturating_mul(TABLES_PER_SLOT))
            .total_stacks(n)
            .max_core_instances_per_component(MAX_COMPONENT_INSTANCES as u32)
            .max_memories_per_component(MAX_COMPONENT_MEMORIES as u32)
            .max_tables_per_component(MAX_COMPONENT_TABLES as u32)
            .max_memory_size(4 << 30)
            .table_elements(1_000_000)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20)
            .max_unused_warm_slots(n.min(256))
            // Reused slots keep their pages mapped and only the pages a run dirtied are
            // copied back from the image (PAGEMAP_SCAN, Linux 6.7+), instead of unmapping
            // them and taking a copy-on-write fault on each again in the next run (the
            // Python runner dirties ~2,000 pages of its heap per run).
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(1 << 20)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .async_stack_keep_resident(64 << 10);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
        c.memory_init_cow(true);
    }
    c.strategy(Strategy::Cranelift)
        .consume_fuel(true)
        .operator_cost(operator_costs())
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_features(WasmFeatures::all(), false)
        .wasm_features(wasm_features(), true)
        .wasm_component_model(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .debug_info(false)
        .parallel_compilation(true);
    c
}

/// wasmtime's default fuel costs, except `table.grow`: by default it is charged one unit per
/// element *requested*, before the limiter refuses the growth, so a guest asking for ~4·10⁹
/// elements burned its whole budget (`limit = fuel`) instead of getting -1. The work of a
/// table growth is bounded anyway: at most the policy's `table_elements` ever succeed in a
/// run, and a refused growth does nothing.
fn operator_costs() -> wasmtime::OperatorCost {
    let mut cost = wasmtime::OperatorCost::new();
    cost.variable.table_grow_per_element = 0;
    cost
}

/// Bytes of each pooled linear memory kept resident between runs.
const KEEP_RESIDENT: usize = 32 << 20;

/// Core instances per pool slot: a core module needs one, the Python runner 14.
const CORE_INSTANCES_PER_SLOT: u32 = 16;
/// Linear memories per pool slot.
const MEMORIES_PER_SLOT: u32 = 2;
/// Tables per pool slot.
const TABLES_PER_SLOT: u32 = 4;

/// Pool slots for a requested size: at least enough for one component with the most core
/// instances, memories and tables a run may create ([`MAX_COMPONENT_INSTANCES`],
/// [`MAX_COMPONENT_MEMORIES`], [`MAX_COMPONENT_TABLES`]).
fn pool_slots(n: u32) -> u32 {
    n.max(MAX_COMPONENT_INSTANCES as u32 / CORE_INSTANCES_PER_SLOT)
        .max(MAX_COMPONENT_MEMORIES as u32 / MEMORIES_PER_SLOT)
        .max(MAX_COMPONENT_TABLES as u32 / TABLES_PER_SLOT)
}

struct Inner {
    /// The worker pool, started on first use (with `Isolation::Workers`). Declared first:
    /// fields drop in order, and its workers must be gone before their directories are.
    workers: tokio::sync::OnceCell<crate::worker::pool::Pool>,
    /// This engine's work directory (see [`EngineConfig::temp_root`]), removed with
    /// everything in it when the engine is dropped.
    work: crate::hostfs::WorkDir,
    artifacts: Option<crate::artifact::ArtifactCache>,
    wasmtime: wasmtime::Engine,
    linker: Linker<RunState>,
    component_linker: wasmtime::component::Linker<CompState>,
    modules: Mutex<HashMap<ModuleHash, (ModuleInfo, Arc<Linked>)>>,
    config: EngineConfig,
    ticker: OnceLock<()>,
    sci_ticker: OnceLock<()>,
    /// With a pool: one permit per instance slot, so runs beyond the pool wait for a free
    /// slot instead of failing.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Empty scratch directories left by earlier runs, ready for the next ones.
    scratch: Mutex<Vec<tempfile::TempDir>>,
    /// The scientific Python runner's own engine (made on first use).
    sci: OnceLock<Result<SciEngine, String>>,
}

/// The engine of the scientific Python runner: its own feature set (exceptions), its own
/// linker (WASI preview 1 plus its `host::call`), its own precompiled artifacts.
struct SciEngine {
    wasmtime: wasmtime::Engine,
    linker: Linker<RunState>,
    artifacts: Option<crate::artifact::ArtifactCache>,
}

/// Empty scratch directories kept for reuse.
const SCRATCH_KEPT: usize = 64;

pub(crate) enum Linked {
    Core(InstancePre<RunState>),
    Component(wasmtime_wasi::p2::bindings::CommandPre<CompState>),
    /// The scientific Python runner: a WASI reactor whose `run` export runs `argv`, on the
    /// runner engine, with its standard-library directory (preopened read-only at
    /// `/usr/local/lib`).
    Reactor {
        pre: InstancePre<RunState>,
        lib: PathBuf,
        /// matplotlib's data directory, preopened read-only inside the library's path.
        mpl_data: Option<PathBuf>,
    },
}

pub use crate::admit::{MAX_COMPONENT_INSTANCES, MAX_COMPONENT_MEMORIES, MAX_COMPONENT_TABLES};

/// The shared engine: create once per process, admit modules once, run them many times.
/// Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// An admitted, compiled module, ready to run. Immutable and cheap to clone.
#[derive(Clone)]
pub struct GuestModule {
    hash: ModuleHash,
    info: ModuleInfo,
    source: ModuleSource,
    linked: Arc<Linked>,
}

/// Where a module's bytes are (runners stay on disk; they are only read to store them).
#[derive(Debug, Clone)]
pub(crate) enum ModuleSource {
    Bytes(Arc<[u8]>),
    File(PathBuf),
}

impl std::fmt::Debug for GuestModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestModule")
            .field("hash", &self.hash)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl GuestModule {
    /// The blake3 hash of the module's bytes.
    pub fn hash(&self) -> ModuleHash {
        self.hash
    }

    /// What admission learnt about the module.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The wasm bytes (read from disk for modules admitted from a file).
    ///
    /// # Errors
    ///
    /// The file cannot be read or no longer matches the module's hash.
    pub fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
        match &self.source {
            ModuleSource::Bytes(b) => Ok(std::borrow::Cow::Borrowed(b)),
            ModuleSource::File(p) => {
                let bytes = std::fs::read(p)
                    .map_err(|e| Error::host(format!("cannot read the module: {e}")))?;
                if ModuleHash::of(&bytes) != self.hash {
                    return Err(Error::host("the module file changed while in use"));
                }
                Ok(std::borrow::Cow::Owned(bytes))
            }
        }
    }

    pub(crate) fn source(&self) -> &ModuleSource {
        &self.source
    }

    pub(crate) fn linked(&self) -> &Linked {
        &self.linked
    }

    /// Re-checks the policy-dependent caps for a run under `policy` (a pinned runner's
    /// own, see [`admit::check_runner_caps`]).
    ///
    /// # Errors
    ///
    /// The first cap the module exceeds under `policy`.
    pub(crate) fn check_caps(&self, policy: &Policy) -> Result<(), Rejection> {
        check_caps(&self.info, &self.linked, policy)
    }
}

/// The caps of `policy` that apply to a module: a reactor runner's own, or a guest's.
fn check_caps(info: &ModuleInfo, linked: &Linked, policy: &Policy) -> Result<(), Rejection> {
    match linked {
        Linked::Reactor { .. } => admit::check_runner_caps(info, policy),
        Linked::Core(_) | Linked::Component(_) => admit::check_caps(info, policy),
    }
}

impl Engine {
    /// Creates the engine.
    ///
    /// # Errors
    ///
    /// wasmtime rejects the configuration (a build defect) or the linker cannot be built.
    pub fn new(config: EngineConfig) -> Result<Engine, Error> {
        let wasmtime = wasmtime::Engine::new(&wasmtime_config(config.pool))
            .map_err(|e| Error::host(format!("cannot configure wasmtime: {e}")))?;
        let mut linker = Linker::new(&wasmtime);
        capability::add_to_linker(&mut linker)
            .map_err(|e| Error::host(format!("cannot build the linker: {e}")))?;
        let mut component_linker = wasmtime::component::Linker::new(&wasmtime);
        capability::p2::add_to_linker(&mut component_linker)
            .map_err(|e| Error::host(format!("cannot build the component linker: {e}")))?;
        let artifacts = config
            .cache_dir
            .as_ref()
            .map(|d| artifact_cache(d, &wasmtime));
        let work = crate::hostfs::WorkDir::create(&config.temp_root).map_err(|e| {
            Error::host(format!(
                "cannot create a work directory in `{}`: {e}",
                config.temp_root.display()
            ))
        })?;
        Ok(Engine {
            inner: Arc::new(Inner {
                work,
                artifacts,
                wasmtime,
                linker,
                component_linker,
                modules: Mutex::new(HashMap::new()),
                slots: config
                    .pool
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(pool_slots(n) as usize))),
                config,
                ticker: OnceLock::new(),
                sci_ticker: OnceLock::new(),
                scratch: Mutex::new(Vec::new()),
                sci: OnceLock::new(),
                workers: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The engine's private work directory, inside [`EngineConfig::temp_root`]: every
    /// temporary directory of its runs (scratch, staged inputs, compiler work dirs, rebuilt
    /// replay inputs) is created in it, so nothing is left behind when the engine is dropped,
    /// and a later engine sweeps it if this process is killed.
    pub fn work_dir(&self) -> &std::path::Path {
        self.inner.work.path()
    }

    /// The worker pool, started on first use; `None` when runs stay in this process.
    ///
    /// # Errors
    ///
    /// The workers cannot be started.
    pub(crate) async fn workers(&self) -> Result<Option<&crate::worker::pool::Pool>, Error> {
        let crate::worker::Isolation::Workers(config) = &self.inner.config.isolation else {
            return Ok(None);
        };
        let pool = self
            .inner
            .workers
            .get_or_try_init(|| async {
                let config = config.clone();
                let cache = self.inner.config.cache_dir.clone();
                let root = self.work_dir().join("workers");
                tokio::task::spawn_blocking(move || {
                    crate::worker::pool::Pool::new(config, cache, root)
                })
                .await
                .map_err(|e| Error::host(format!("cannot start the workers: {e}")))?
            })
            .await?;
        Ok(Some(pool))
    }

    /// Test hook: a fresh worker of this engine's pool tries `probe` after lock-down;
    /// `Ok(Ok(()))` means the call succeeded (a wall is down), `Ok(Err(why))` that it was
    /// refused.
    ///
    /// # Errors
    ///
    /// The engine runs guests in-process, or the worker cannot be started.
    #[cfg(feature = "test-hooks")]
    pub async fn probe_worker(
        &self,
        probe: crate::worker::Probe,
        outside: &std::path::Path,
    ) -> Result<Result<(), String>, Error> {
        let pool = self
            .workers()
            .await?
            .ok_or_else(|| Error::host("the engine runs guests in-process"))?;
        let outside = outside.to_path_buf();
        let prober = pool.prober();
        tokio::task::spawn_blocking(move || prober(probe, &outside))
            .await
            .map_err(|e| Error::host(e.to_string()))?
    }

    /// Test hook: the process ids of this engine's warm workers.
    #[cfg(feature = "test-hooks")]
    pub async fn worker_pids(&self) -> Vec<u32> {
        match self.workers().await {
            Ok(Some(pool)) => pool.pids(),
            _ => Vec::new(),
        }
    }

    /// Which walls runs of this engine get (starting the worker pool if it is configured).
    ///
    /// # Errors
    ///
    /// The workers cannot be started.
    pub async fn walls(&self) -> Result<crate::worker::Walls, Error> {
        Ok(self.workers().await?.map(|p| p.walls()).unwrap_or_default())
    }

    /// Removes the work directory now, for a process about to exit without dropping the
    /// engine (the `corral` command leaves with `exit`, skipping destructors). Call it last:
    /// runs after it fail to create their temporary directories.
    pub fn remove_work_dir(&self) {
        if let Ok(mut kept) = self.inner.scratch.lock() {
            kept.clear();
        }
        let _ = std::fs::remove_dir_all(self.work_dir());
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    /// Starts the epoch ticker thread once (it stops when the engine is dropped).
    /// Waits for free instance slots for one run of `module` (engines with a pool: one slot,
    /// or more for a component with many core instances); they are held until the permit
    /// is dropped.
    pub(crate) async fn slot(
        &self,
        module: &GuestModule,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let slots = self.inner.slots.clone()?;
        let total = pool_slots(self.inner.config.pool.unwrap_or(1));
        let info = module.info();
        let need = info
            .core_instances
            .div_ceil(u64::from(CORE_INSTANCES_PER_SLOT))
            .max(info.memories.div_ceil(u64::from(MEMORIES_PER_SLOT)))
            .max(info.tables.div_ceil(u64::from(TABLES_PER_SLOT)))
            .clamp(1, u64::from(total));
        // The semaphore is never closed.
        slots.acquire_many_owned(need as u32).await.ok()
    }

    /// A private, empty scratch directory for one run: one an earlier run left empty, or
    /// a new one. (Creating and removing a directory costs ~80 µs on ext4; most runs never
    /// write to their scratch directory.)
    pub(crate) fn scratch_dir(&self) -> Result<tempfile::TempDir, Error> {
        if let Some(dir) = self.inner.scratch.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(dir);
        }
        tempfile::Builder::new()
            .prefix("corral-scratch-")
            .tempdir_in(self.work_dir())
            .map_err(|e| Error::host(format!("cannot create the scratch directory: {e}")))
    }

    /// Takes back a run's scratch directory: kept for another run only if the engine has a
    /// pool (it runs many) and the directory is still empty (nothing of one run can reach
    /// another); removed otherwise. Its name, timestamps and inode are never visible to
    /// guests (the gate virtualises them).
    pub(crate) fn recycle_scratch(&self, dir: tempfile::TempDir) {
        let empty = std::fs::read_dir(dir.path()).is_ok_and(|mut d| d.next().is_none());
        if empty
            && self.inner.config.pool.is_some()
            && let Ok(mut kept) = self.inner.scratch.lock()
            && kept.len() < SCRATCH_KEPT
        {
            kept.push(dir);
        }
    }

    pub(crate) fn ensure_ticker(&self) {
        self.inner
            .ticker
            .get_or_init(|| self.start_ticker(&self.inner.wasmtime));
    }

    /// As [`Engine::ensure_ticker`], for the engine a reactor runner runs on.
    pub(crate) fn ensure_runner_ticker(&self, engine: &wasmtime::Engine) {
        self.inner
            .sci_ticker
            .get_or_init(|| self.start_ticker(engine));
    }

    fn start_ticker(&self, engine: &wasmtime::Engine) {
        let weak = engine.weak();
        let tick = self.config().epoch_tick;
        let _ = std::thread::Builder::new()
            .name("corral-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            });
    }

    /// Admits `bytes` under `policy` (static checks), then compiles and links it. Compiled
    /// modules are cached in memory by hash, so admitting the same bytes again is cheap
    /// (the policy caps are re-checked every time).
    ///
    /// # Errors
    ///
    /// A [`Rejection`] naming the first problem: malformed bytes, a forbidden import or
    /// feature, a cap exceeded, a missing entry point, a link failure.
    pub fn admit(&self, bytes: &[u8], policy: &Policy) -> Result<GuestModule, Rejection> {
        let hash = ModuleHash::of(bytes);
        let source = ModuleSource::Bytes(Arc::from(bytes));
        if let Some(m) = self.cached(hash, policy, &source)? {
            return Ok(m);
        }
        let info = match admit::sniff(bytes)? {
            admit::BinaryKind::CoreModule => admit::admit_core(bytes, policy, wasm_features())?,
            admit::BinaryKind::Component => admit::admit_component(bytes, policy, wasm_features())?,
        };
        let compiled = Arc::new(self.compile(bytes, info.kind)?);
        if let Some(a) = &self.inner.artifacts
            && let Ok(serialized) = self.serialize(&compiled)
        {
            a.store(&hash, &info, &serialized);
        }
        Ok(self.remember(hash, info, compiled, source))
    }

    /// Admits the module in the file at `path`, whose blake3 is `hash` (as recorded when the
    /// file was made), under `policy`. With a precompiled artifact in the cache, the file is
    /// not even read.
    ///
    /// # Errors
    ///
    /// As [`Engine::admit`]; also when the file cannot be read or does not match `hash`.
    pub fn admit_file(
        &self,
        path: &std::path::Path,
        hash: ModuleHash,
        policy: &Policy,
    ) -> Result<GuestModule, Rejection> {
        let source = ModuleSource::File(path.to_path_buf());
        if let Some(m) = self.cached(hash, policy, &source)? {
            return Ok(m);
        }
        let bytes =
            std::fs::read(path).map_err(|e| Rejection(format!("cannot read the module: {e}")))?;
        if ModuleHash::of(&bytes) != hash {
            return Err(Rejection(
                "the module file does not match its recorded hash".into(),
            ));
        }
        let mut m = self.admit(&bytes, policy)?;
        m.source = source;
        Ok(m)
    }

    /// The scientific Python runner's engine, made on first use.
    fn sci(&self) -> Result<&SciEngine, Rejection> {
        self.inner
            .sci
            .get_or_init(|| {
                let wasmtime = wasmtime::Engine::new(&runner_config())
                    .map_err(|e| format!("cannot configure the runner engine: {e}"))?;
                let mut linker = Linker::new(&wasmtime);
                capability::add_runner_to_linker(&mut linker)
                    .map_err(|e| format!("cannot build the runner linker: {e}"))?;
                let artifacts = self
                    .inner
                    .config
                    .cache_dir
                    .as_ref()
                    .map(|d| artifact_cache(d, &wasmtime));
                Ok(SciEngine {
                    wasmtime,
                    linker,
                    artifacts,
                })
            })
            .as_ref()
            .map_err(|e| Rejection(e.clone()))
    }

    /// Admits the scientific Python runner on its own engine (exceptions enabled, WASI
    /// preview 1 plus `host::call`), from `bytes` (a record's blob) or else from the file at
    /// `path`, whose blake3 must be `hash`. The caller has checked that `hash` is the pinned
    /// runner built on this machine (the job stage's `admit` does); `lib` is its
    /// standard-library directory and `mpl_data` matplotlib's data, both preopened read-only
    /// in every run. Only the memory the runner starts with is held against the policy
    /// ([`admit::check_runner_caps`]).
    ///
    /// # Errors
    ///
    /// The runner engine cannot be made, the file cannot be read or does not match `hash`,
    /// the bytes are not such a reactor, its memory exceeds the policy's, or it cannot be
    /// compiled or linked.
    #[expect(
        unsafe_code,
        reason = "deserializing precompiled code this engine produced"
    )]
    pub(crate) fn admit_reactor_runner(
        &self,
        hash: ModuleHash,
        bytes: Option<&[u8]>,
        path: &std::path::Path,
        lib: PathBuf,
        mpl_data: Option<PathBuf>,
        policy: &Policy,
    ) -> Result<GuestModule, Rejection> {
        let source = match bytes {
            Some(b) => ModuleSource::Bytes(Arc::from(b)),
            None => ModuleSource::File(path.to_path_buf()),
        };
        let hit = self
            .inner
            .modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned();
        if let Some((info, linked)) = hit
            && matches!(*linked, Linked::Reactor { .. })
        {
            admit::check_runner_caps(&info, policy)?;
            return Ok(GuestModule {
                hash,
                info,
                source,
                linked,
            });
        }
        let sci = self.sci()?;
        let cached = sci.artifacts.as_ref().and_then(|a| a.lookup(&hash));
        let (info, module) = match cached {
            Some((art, info)) => {
                // SAFETY: `art` is an artifact written by `ArtifactCache::store` from a module
                // the runner engine compiled, checked as in `load_artifact`.
                let module = unsafe { Module::deserialize_file(&sci.wasmtime, &art) }
                    .map_err(|e| Rejection(format!("stale artifact: {e}")))?;
                (info, module)
            }
            None => {
                let read;
                let bytes = match bytes {
                    Some(b) => b,
                    None => {
                        read = std::fs::read(path)
                            .map_err(|e| Rejection(format!("cannot read the runner: {e}")))?;
                        &read
                    }
                };
                if ModuleHash::of(bytes) != hash {
                    return Err(Rejection(
                        "the runner file does not match its recorded hash".into(),
                    ));
                }
                let info = admit::admit_reactor_runner(bytes)?;
                let module = Module::from_binary(&sci.wasmtime, bytes)
                    .map_err(|e| Rejection(format!("the runner failed to compile: {e}")))?;
                if let (Some(a), Ok(serialized)) = (&sci.artifacts, module.serialize()) {
                    a.store(&hash, &info, &serialized);
                }
                (info, module)
            }
        };
        admit::check_runner_caps(&info, policy)?;
        let pre = sci
            .linker
            .instantiate_pre(&module)
            .map_err(|e| Rejection(format!("the runner cannot be linked: {}", link_error(&e))))?;
        Ok(self.remember(
            hash,
            info,
            Arc::new(Linked::Reactor { pre, lib, mpl_data }),
            source,
        ))
    }

    /// The module from the memory cache or the disk artifact cache, caps re-checked.
    fn cached(
        &self,
        hash: ModuleHash,
        policy: &Policy,
        source: &ModuleSource,
    ) -> Result<Option<GuestModule>, Rejection> {
        let hit = self
            .inner
            .modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned();
        if let Some((info, compiled)) = hit {
            check_caps(&info, &compiled, policy)?;
            return Ok(Some(GuestModule {
                hash,
                info,
                source: source.clone(),
                linked: compiled,
            }));
        }
        let Some(cache) = &self.inner.artifacts else {
            return Ok(None);
        };
        let Some((path, info)) = cache.lookup(&hash) else {
            return Ok(None);
        };
        admit::check_caps(&info, policy)?;
        match self.load_artifact(&path, info.kind) {
            Ok(compiled) => Ok(Some(self.remember(
                hash,
                info,
                Arc::new(compiled),
                source.clone(),
            ))),
            Err(_) => Ok(None), // stale or incompatible: recompile
        }
    }

    fn remember(
        &self,
        hash: ModuleHash,
        info: ModuleInfo,
        compiled: Arc<Linked>,
        source: ModuleSource,
    ) -> GuestModule {
        self.inner
            .modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, (info.clone(), compiled.clone()));
        GuestModule {
            hash,
            info,
            source,
            linked: compiled,
        }
    }

    fn serialize(&self, compiled: &Linked) -> wasmtime::Result<Vec<u8>> {
        match compiled {
            Linked::Core(pre) => pre.module().serialize(),
            Linked::Component(pre) => pre.instance_pre().component().serialize(),
            Linked::Reactor { pre, .. } => pre.module().serialize(),
        }
    }

    /// Loads a precompiled artifact this engine wrote (see `artifact.rs` for how it is
    /// checked before this point).
    #[expect(
        unsafe_code,
        reason = "deserializing precompiled code this engine produced"
    )]
    fn load_artifact(
        &self,
        path: &std::path::Path,
        kind: admit::BinaryKind,
    ) -> Result<Linked, Rejection> {
        let e = &self.inner.wasmtime;
        match kind {
            admit::BinaryKind::CoreModule => {
                // SAFETY: `path` is an artifact written by `ArtifactCache::store` from a module
                // this engine compiled, in the user's private cache, and its size, inode and
                // change time (or failing that, its blake3) match what was recorded then.
                let module = unsafe { Module::deserialize_file(e, path) }
                    .map_err(|err| Rejection(format!("stale artifact: {err}")))?;
                let pre = self
                    .inner
                    .linker
                    .instantiate_pre(&module)
                    .map_err(|err| Rejection(err.to_string()))?;
                Ok(Linked::Core(pre))
            }
            admit::BinaryKind::Component => {
                // SAFETY: as above, for a component artifact.
                let component =
                    unsafe { wasmtime::component::Component::deserialize_file(e, path) }
                        .map_err(|err| Rejection(format!("stale artifact: {err}")))?;
                let pre = self
                    .inner
                    .component_linker
                    .instantiate_pre(&component)
                    .map_err(|err| Rejection(err.to_string()))?;
                let pre = wasmtime_wasi::p2::bindings::CommandPre::new(pre)
                    .map_err(|err| Rejection(err.to_string()))?;
                Ok(Linked::Component(pre))
            }
        }
    }

    fn compile(&self, bytes: &[u8], kind: admit::BinaryKind) -> Result<Linked, Rejection> {
        match kind {
            admit::BinaryKind::CoreModule => {
                let module = Module::from_binary(&self.inner.wasmtime, bytes)
                    .map_err(|e| Rejection(format!("the module failed to compile: {e}")))?;
                let pre = self.inner.linker.instantiate_pre(&module).map_err(|e| {
                    Rejection(format!("the module cannot be linked: {}", link_error(&e)))
                })?;
                Ok(Linked::Core(pre))
            }
            admit::BinaryKind::Component => {
                let component =
                    wasmtime::component::Component::from_binary(&self.inner.wasmtime, bytes)
                        .map_err(|e| Rejection(format!("the component failed to compile: {e}")))?;
                let pre = self
                    .inner
                    .component_linker
                    .instantiate_pre(&component)
                    .map_err(|e| {
                        Rejection(format!(
                            "the component cannot be linked: {}",
                            e.root_cause()
                        ))
                    })?;
                let pre = wasmtime_wasi::p2::bindings::CommandPre::new(pre).map_err(|e| {
                    Rejection(format!(
                        "the component is not a WASI command (it must export `wasi:cli/run`): {}",
                        e.root_cause()
                    ))
                })?;
                Ok(Linked::Component(pre))
            }
        }
    }
}
