//! Baselines: the same guests on wasmtime 48 and wasmtime-wasi used directly, with no gate,
//! no fuel, no epoch checks and no limits — the floor corral's overheads are measured
//! against.
//!
//! Everything here is synchronous: call it from a plain thread, never from inside a tokio
//! runtime (wasmtime-wasi's sync bindings start their own).

use std::path::Path;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::error::Error;

fn host(what: &str) -> impl Fn(wasmtime::Error) -> Error + '_ {
    move |e| Error::host(format!("raw wasmtime: {what}: {e:#}"))
}

/// The allocator of a raw engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alloc {
    /// wasmtime's default (on-demand, copy-on-write memory images).
    OnDemand,
    /// The pooling allocator with copy-on-write memory images (as corral's pool).
    Pooling,
}

fn config(alloc: Alloc) -> Config {
    let mut c = Config::new();
    if alloc == Alloc::Pooling {
        let mut p = wasmtime::PoolingAllocationConfig::new();
        p.total_core_instances(64)
            .total_memories(64)
            .total_tables(64)
            .total_stacks(64)
            .total_component_instances(8)
            .max_memory_size(4 << 30)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20)
            .table_elements(1_000_000);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
        c.memory_init_cow(true);
    }
    c
}

/// A core WASI preview 1 module, pre-instantiated once.
pub struct RawP1 {
    engine: wasmtime::Engine,
    pre: InstancePre<WasiP1Ctx>,
}

impl std::fmt::Debug for RawP1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawP1").finish_non_exhaustive()
    }
}

impl RawP1 {
    /// Compiles `wasm` on a fresh engine, with wasmtime-wasi's synchronous bindings.
    ///
    /// # Errors
    ///
    /// wasmtime rejects the module.
    pub fn new(wasm: &[u8], alloc: Alloc) -> Result<RawP1, Error> {
        Self::build(wasm, alloc, false)
    }

    /// As [`RawP1::new`], with wasmtime-wasi's async bindings (run with [`RawP1::run_async`],
    /// the execution mode corral uses so that sandboxes can share threads).
    ///
    /// # Errors
    ///
    /// wasmtime rejects the module.
    pub fn new_async(wasm: &[u8], alloc: Alloc) -> Result<RawP1, Error> {
        Self::build(wasm, alloc, true)
    }

    fn build(wasm: &[u8], alloc: Alloc, asynchronous: bool) -> Result<RawP1, Error> {
        let engine = wasmtime::Engine::new(&config(alloc)).map_err(host("engine"))?;
        let module = Module::new(&engine, wasm).map_err(host("compile"))?;
        let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        if asynchronous {
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |t| t).map_err(host("link"))?;
        } else {
            wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |t| t).map_err(host("link"))?;
        }
        let pre = linker.instantiate_pre(&module).map_err(host("link"))?;
        Ok(RawP1 { engine, pre })
    }

    /// One complete run on an async store (for a module made with [`RawP1::new_async`]);
    /// file operations on this thread.
    ///
    /// # Errors
    ///
    /// A trap or a host failure.
    pub async fn run_async(
        &self,
        args: &[&str],
        dir: Option<&Path>,
    ) -> Result<(i32, Vec<u8>), Error> {
        let (ctx, out) = p1_context(args, dir, true)?;
        let mut store = Store::new(&self.engine, ctx);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(host("instantiate"))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(host("_start"))?;
        let status = exit_status(start.call_async(&mut store, ()).await)?;
        drop(store);
        Ok((status, out.contents().to_vec()))
    }

    /// One complete run: a fresh WASI context (args, captured stdout, optionally `dir`
    /// preopened read-write at `/scratch`) and store, instantiate, `_start`, drop. Returns
    /// the exit status and stdout. File operations run on this thread, as in corral.
    ///
    /// # Errors
    ///
    /// A trap or a host failure.
    pub fn run(&self, args: &[&str], dir: Option<&Path>) -> Result<(i32, Vec<u8>), Error> {
        self.run_io(args, dir, true)
    }

    /// As [`RawP1::run`]; with `inline_io` false, file operations go through tokio's
    /// blocking pool (wasmtime-wasi's default).
    ///
    /// # Errors
    ///
    /// A trap or a host failure.
    pub fn run_io(
        &self,
        args: &[&str],
        dir: Option<&Path>,
        inline_io: bool,
    ) -> Result<(i32, Vec<u8>), Error> {
        let (ctx, out) = p1_context(args, dir, inline_io)?;
        let mut store = Store::new(&self.engine, ctx);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(host("instantiate"))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(host("_start"))?;
        let status = exit_status(start.call(&mut store, ()))?;
        drop(store);
        Ok((status, out.contents().to_vec()))
    }
}

/// A WASI preview 1 context: `args`, stdout captured, `dir` preopened read-write at
/// `/scratch`, file operations on this thread when `inline_io`.
fn p1_context(
    args: &[&str],
    dir: Option<&Path>,
    inline_io: bool,
) -> Result<(WasiP1Ctx, MemoryOutputPipe), Error> {
    let out = MemoryOutputPipe::new(1 << 20);
    let mut b = WasiCtxBuilder::new();
    b.args(args)
        .stdout(out.clone())
        .allow_blocking_current_thread(inline_io);
    if let Some(d) = dir {
        b.preopened_dir(d, "/scratch", FsPerms::ReadWrite)
            .map_err(host("preopen"))?;
    }
    Ok((b.build_p1(), out))
}

/// The exit status of a `_start` call: 0, the status of `proc_exit`, or the trap.
fn exit_status(r: wasmtime::Result<()>) -> Result<i32, Error> {
    match r {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(x) => Ok(x.0),
            None => Err(host("run")(e)),
        },
    }
}

struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A WASI 0.2 command component (the Python runner), pre-instantiated once.
pub struct RawP2 {
    engine: wasmtime::Engine,
    pre: wasmtime_wasi::p2::bindings::sync::CommandPre<P2State>,
}

impl std::fmt::Debug for RawP2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawP2").finish_non_exhaustive()
    }
}

impl RawP2 {
    /// Loads the component at `wasm`, compiling it once into `cache` (a precompiled artifact
    /// kept by this benchmark beside corral's own; compiling the Python runner takes tens of
    /// seconds).
    ///
    /// # Errors
    ///
    /// wasmtime rejects the component, or the cache cannot be used.
    #[expect(
        unsafe_code,
        reason = "deserializing precompiled code this benchmark produced"
    )]
    pub fn new(wasm: &Path, hash: crate::ModuleHash, cache: &Path) -> Result<RawP2, Error> {
        let engine = wasmtime::Engine::new(&config(Alloc::Pooling)).map_err(host("engine"))?;
        let key = format!(
            "raw-{}",
            &crate::engine::compatibility_digest(&engine)[..16]
        );
        let artifacts = crate::artifact::ArtifactCache::new(cache.join("bench-raw"), key);
        let component = match artifacts.lookup(&hash) {
            // SAFETY: an artifact this benchmark serialised from a component it compiled, in
            // the user's private cache, whose size, inode and change time (or else blake3)
            // match what was recorded when it was written.
            Some((path, _)) => unsafe { Component::deserialize_file(&engine, &path) }
                .map_err(host("load the precompiled runner"))?,
            None => {
                let bytes = std::fs::read(wasm)
                    .map_err(|e| Error::host(format!("cannot read the runner: {e}")))?;
                let c = Component::new(&engine, &bytes).map_err(host("compile"))?;
                if let Ok(serialized) = c.serialize() {
                    let info = crate::admit::ModuleInfo {
                        kind: crate::admit::BinaryKind::Component,
                        size: bytes.len() as u64,
                        functions: 0,
                        memory_min_bytes: 0,
                        imports: Vec::new(),
                        core_instances: 0,
                        memories: 0,
                        tables: 0,
                        table_min_elements: 0,
                    };
                    artifacts.store(&hash, &info, &serialized);
                }
                c
            }
        };
        let mut linker = wasmtime::component::Linker::<P2State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(host("link"))?;
        let pre = linker.instantiate_pre(&component).map_err(host("link"))?;
        let pre = wasmtime_wasi::p2::bindings::sync::CommandPre::new(pre).map_err(host("link"))?;
        Ok(RawP2 { engine, pre })
    }

    /// One complete run with `args`; returns whether `run` succeeded, and stdout.
    ///
    /// # Errors
    ///
    /// A trap or a host failure.
    pub fn run(&self, args: &[&str]) -> Result<(bool, Vec<u8>), Error> {
        let out = MemoryOutputPipe::new(1 << 20);
        let ctx = WasiCtxBuilder::new().args(args).stdout(out.clone()).build();
        let mut store = Store::new(
            &self.engine,
            P2State {
                ctx,
                table: ResourceTable::new(),
            },
        );
        let cmd = self
            .pre
            .instantiate(&mut store)
            .map_err(host("instantiate"))?;
        let ok = match cmd.wasi_cli_run().call_run(&mut store) {
            Ok(r) => r.is_ok(),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(x) => x.0 == 0,
                None => return Err(host("run")(e)),
            },
        };
        drop(store);
        Ok((ok, out.contents().to_vec()))
    }
}
