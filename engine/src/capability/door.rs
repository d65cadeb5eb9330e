//! `host::call`: the scientific Python runner's door to tools of an embedding host
//! (`from host import tools` inside the guest).
//!
//! `call(ptr, len, out_ptr_ptr, out_len_ptr) -> i32` asks the host to answer the request of
//! `len` bytes at `ptr`; the host would allocate the answer in guest memory (through the
//! guest's `host_alloc` export) and write its address and length through the two out
//! pointers. corral offers no tools: every call is answered `-1` ("no host"), without reading
//! or writing guest memory, and is recorded as a refused call (so a policy with
//! `on_denial = "end_run"` ends the run there). Only the pinned runner may import it
//! (admission); user modules are rejected.

use wasmtime::{Caller, Linker};

use super::RunState;
use super::audit::Dig;
use super::imports::HOST_CALL;

/// What the gate answers: no host.
pub(crate) const NO_HOST: i32 = -1;

/// The call's name in the audit trail.
const HOST_CALL_NAME: &str = "host::call";

/// Registers `host::call`.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_CALL.0,
        HOST_CALL.1,
        |mut caller: Caller<'_, RunState>,
         ptr: i32,
         len: i32,
         out_ptr_ptr: i32,
         out_len_ptr: i32|
         -> wasmtime::Result<i32> {
            let args = Dig::new()
                .u64(ptr as u32 as u64)
                .u64(len as u32 as u64)
                .u64(out_ptr_ptr as u32 as u64)
                .u64(out_len_ptr as u32 as u64)
                .finish();
            let result = Dig::new().u64(NO_HOST as u32 as u64).finish();
            let stop = caller
                .data_mut()
                .gate
                .core
                .refuse_host_call(HOST_CALL_NAME, args, result);
            match stop {
                Some(stop) => Err(wasmtime::Error::new(stop)),
                None => Ok(NO_HOST),
            }
        },
    )?;
    Ok(())
}
