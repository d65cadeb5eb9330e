//! The one shared wasmtime engine, its linker, and the compiled-module cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use wasmtime::{Config, InstancePre, Linker, Module, Strategy, WasmFeatures};

use crate::admit::{self, ModuleInfo, Rejection};
use crate::capability::{self, RunState};
use crate::error::Error;
use crate::policy::Policy;
use crate::report::ModuleHash;
use crate::sandbox::SandboxBuilder;

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
pub const GATE_VERSION: &str = "gate-1";
/// How often the epoch ticker runs (the wall-clock check and the async time slice).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where per-run temporary directories (scratch, staged inputs) are created.
    /// By default the system temp dir.
    pub temp_root: PathBuf,
    /// Where compiled wasm (from sources) is cached. By default none (no caching).
    pub cache_dir: Option<PathBuf>,
    /// Test-only weakening: stat results carry the host's raw timestamps and inode hashes.
    #[cfg(feature = "weaken-for-tests")]
    #[doc(hidden)]
    pub leak_host_metadata: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            temp_root: std::env::temp_dir(),
            cache_dir: None,
            #[cfg(feature = "weaken-for-tests")]
            leak_host_metadata: false,
        }
    }
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

fn wasmtime_config() -> Config {
    let mut c = Config::new();
    c.strategy(Strategy::Cranelift)
        .consume_fuel(true)
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

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<RunState>,
    modules: Mutex<HashMap<ModuleHash, Arc<Compiled>>>,
    config: EngineConfig,
    ticker: OnceLock<()>,
}

struct Compiled {
    pre: InstancePre<RunState>,
}

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
    bytes: Arc<[u8]>,
    compiled: Arc<Compiled>,
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

    /// The wasm bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn instance_pre(&self) -> &InstancePre<RunState> {
        &self.compiled.pre
    }
}

impl Engine {
    /// Creates the engine.
    ///
    /// # Errors
    ///
    /// wasmtime rejects the configuration (a build defect) or the linker cannot be built.
    pub fn new(config: EngineConfig) -> Result<Engine, Error> {
        let wasmtime = wasmtime::Engine::new(&wasmtime_config())
            .map_err(|e| Error::host(format!("cannot configure wasmtime: {e}")))?;
        let mut linker = Linker::new(&wasmtime);
        capability::add_to_linker(&mut linker)
            .map_err(|e| Error::host(format!("cannot build the linker: {e}")))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                wasmtime,
                linker,
                modules: Mutex::new(HashMap::new()),
                config,
                ticker: OnceLock::new(),
            }),
        })
    }

    /// The identity recorded in run records: versions, and a digest of every setting that
    /// can change what a guest observes (wasm features, stack size, fuel and clock constants,
    /// gate version). CPU codegen flags are recorded apart (`host_isa`): they do not change
    /// semantics, so records replay across machines.
    pub fn identity(&self) -> crate::record::format::EngineId {
        use std::hash::{Hash, Hasher};
        let desc = format!(
            "features={:x};nan_canon=1;relaxed_simd=off;fuel=1;stack={MAX_WASM_STACK};async_stack={ASYNC_STACK};\
             ns_per_fuel={};mono_start={};resolution={};max_random={};gate={GATE_VERSION};dir_size=4096;dir_nlink=2",
            wasm_features().bits(),
            crate::capability::clock::NS_PER_FUEL,
            crate::capability::clock::MONO_START_NS,
            crate::capability::clock::RESOLUTION_NS,
            crate::capability::wasi::MAX_RANDOM_BYTES,
        );
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner
            .wasmtime
            .precompile_compatibility_hash()
            .hash(&mut h);
        crate::record::format::EngineId {
            corral: env!("CARGO_PKG_VERSION").to_string(),
            wasmtime: WASMTIME_VERSION.to_string(),
            config: crate::record::format::hash_of(desc.as_bytes()),
            host_isa: format!("{:016x}", h.finish()),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    /// Starts the epoch ticker thread once (it stops when the engine is dropped).
    pub(crate) fn ensure_ticker(&self) {
        self.inner.ticker.get_or_init(|| {
            let weak = self.inner.wasmtime.weak();
            let _ = std::thread::Builder::new()
                .name("corral-epoch".into())
                .spawn(move || {
                    while let Some(engine) = weak.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                    }
                });
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
        let info = admit::admit_core(bytes, policy, wasm_features())?;
        let hash = ModuleHash::of(bytes);
        let cached = self
            .inner
            .modules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let module = Module::from_binary(&self.inner.wasmtime, bytes)
                    .map_err(|e| Rejection(format!("the module failed to compile: {e}")))?;
                let pre = self.inner.linker.instantiate_pre(&module).map_err(|e| {
                    Rejection(format!("the module cannot be linked: {}", e.root_cause()))
                })?;
                let c = Arc::new(Compiled { pre });
                self.inner
                    .modules
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, c.clone());
                c
            }
        };
        Ok(GuestModule {
            hash,
            info,
            bytes: Arc::from(bytes),
            compiled,
        })
    }

    /// Starts configuring a run of `module` under `policy`.
    pub fn sandbox<'a>(
        &'a self,
        module: &'a GuestModule,
        policy: &'a Policy,
    ) -> SandboxBuilder<'a> {
        SandboxBuilder::new(self, module, policy)
    }
}
