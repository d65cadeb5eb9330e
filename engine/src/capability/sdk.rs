//! `corral_v1`: the guest SDK's import module (see `guest-sdk/`).
//!
//! | function | signature | meaning |
//! |---|---|---|
//! | `input_size` | `() -> i64` | size of the case input in bytes, or -1 when there is none |
//! | `input_read` | `(ptr: i32, len: i32, offset: i64) -> i32` | copies up to `len` input bytes from `offset` to `ptr`; returns the count, -1 on a bad range |
//! | `result_write` | `(ptr: i32, len: i32) -> i32` | sets the run's structured result (UTF-8, at most 64 KiB); 0, or -1 when invalid |
//! | `metric` | `(name_ptr: i32, name_len: i32, value: f64) -> i32` | records a named number (name ≤ 64 bytes, ≤ 256 metrics, finite); 0 or -1 |
//!
//! Out-of-bounds pointers trap (`bad_host_call`), as for WASI. Every call is an audit event.

use wasmtime::{Caller, Extern, Linker};

use super::audit::{Dig, Digest};
use super::imports::CORRAL_V1;
use super::rules::Work;
use super::{GateStop, MAX_METRIC_NAME, MAX_METRICS, MAX_RESULT_BYTES, RunState};

fn memory<'a>(
    caller: &'a mut Caller<'_, RunState>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut RunState)> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m.data_and_store_mut(caller)),
        _ => Err(wasmtime::Error::new(GateStop::BadHostCall(
            "the module exports no memory".into(),
        ))),
    }
}

fn range(mem: &[u8], ptr: i32, len: i32) -> wasmtime::Result<std::ops::Range<usize>> {
    let (p, l) = (ptr as u32 as usize, len as u32 as usize);
    match p.checked_add(l) {
        Some(end) if end <= mem.len() => Ok(p..end),
        _ => Err(wasmtime::Error::new(GateStop::BadHostCall(
            "pointer out of bounds".into(),
        ))),
    }
}

fn record(
    state: &mut RunState,
    func: &'static str,
    args: Digest,
    ok: bool,
    result: Digest,
) -> wasmtime::Result<()> {
    match state
        .gate
        .core
        .record(func, args, if ok { 0 } else { 28 }, result, None)
    {
        Some(stop) => Err(wasmtime::Error::new(stop)),
        None => Ok(()),
    }
}

/// Registers `corral_v1`.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        CORRAL_V1,
        "input_size",
        |mut caller: Caller<'_, RunState>| -> wasmtime::Result<i64> {
            let state = caller.data_mut();
            let n = state
                .gate
                .core
                .sdk
                .input
                .as_ref()
                .map_or(-1, |i| i.len() as i64);
            record(
                state,
                "corral_v1::input_size",
                Digest::default(),
                true,
                Dig::new().u64(n as u64).finish(),
            )?;
            Ok(n)
        },
    )?;
    linker.func_wrap(
        CORRAL_V1,
        "input_read",
        |mut caller: Caller<'_, RunState>,
         ptr: i32,
         len: i32,
         offset: i64|
         -> wasmtime::Result<i32> {
            let (mem, state) = memory(&mut caller)?;
            let r = range(mem, ptr, len)?;
            let args = Dig::new()
                .u64(ptr as u64)
                .u64(len as u64)
                .u64(offset as u64)
                .finish();
            let input = state.gate.core.sdk.input.clone();
            let copied = match (input, usize::try_from(offset)) {
                (Some(input), Ok(off)) if off <= input.len() => {
                    let n = r.len().min(input.len() - off);
                    mem[r.start..r.start + n].copy_from_slice(&input[off..off + n]);
                    Some(n)
                }
                _ => None,
            };
            state
                .gate
                .core
                .charge(Work::Bytes(copied.unwrap_or(0) as u64));
            let digest = Dig::new()
                .u64(copied.map_or(u64::MAX, |n| n as u64))
                .finish();
            record(
                state,
                "corral_v1::input_read",
                args,
                copied.is_some(),
                digest,
            )?;
            Ok(copied.map_or(-1, |n| n as i32))
        },
    )?;
    linker.func_wrap(
        CORRAL_V1,
        "result_write",
        |mut caller: Caller<'_, RunState>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let (mem, state) = memory(&mut caller)?;
            let r = range(mem, ptr, len)?;
            let bytes = &mem[r];
            // Over the cap: refused by its length, before its bytes are read.
            let ok = bytes.len() <= MAX_RESULT_BYTES;
            let text = if ok {
                state.gate.core.charge(Work::Bytes(bytes.len() as u64));
                std::str::from_utf8(bytes).ok().map(str::to_string)
            } else {
                None
            };
            let args = if ok {
                Dig::new().bytes(bytes).finish()
            } else {
                Dig::new().u64(bytes.len() as u64).finish()
            };
            let ok = text.is_some();
            if let Some(t) = text {
                state.gate.core.sdk.result = Some(t);
            }
            record(
                state,
                "corral_v1::result_write",
                args,
                ok,
                Digest::default(),
            )?;
            Ok(if ok { 0 } else { -1 })
        },
    )?;
    linker.func_wrap(
        CORRAL_V1,
        "metric",
        |mut caller: Caller<'_, RunState>,
         ptr: i32,
         len: i32,
         value: f64|
         -> wasmtime::Result<i32> {
            let (mem, state) = memory(&mut caller)?;
            let r = range(mem, ptr, len)?;
            // A name over the cap is refused by its length, before its bytes are read.
            let name = if r.len() <= MAX_METRIC_NAME {
                std::str::from_utf8(&mem[r]).ok().map(str::to_string)
            } else {
                None
            };
            let args = Dig::new()
                .bytes(name.as_deref().unwrap_or("").as_bytes())
                .u64(value.to_bits())
                .finish();
            let sdk = &mut state.gate.core.sdk;
            let ok = match name {
                Some(n)
                    if !n.is_empty()
                        && n.len() <= MAX_METRIC_NAME
                        && value.is_finite()
                        && (sdk.metrics.len() < MAX_METRICS || sdk.metrics.contains_key(&n)) =>
                {
                    sdk.metrics.insert(n, value);
                    true
                }
                _ => false,
            };
            record(state, "corral_v1::metric", args, ok, Digest::default())?;
            Ok(if ok { 0 } else { -1 })
        },
    )?;
    Ok(())
}
