//! The only `unsafe` in the SDK: the `corral_v1` imports, and host stubs.
#![cfg_attr(
    target_arch = "wasm32",
    expect(unsafe_code, reason = "calls into the corral_v1 host imports")
)]

use crate::Refused;

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "corral_v1")]
    unsafe extern "C" {
        pub fn input_size() -> i64;
        pub fn input_read(ptr: *mut u8, len: i32, offset: i64) -> i32;
        pub fn result_write(ptr: *const u8, len: i32) -> i32;
        pub fn metric(name_ptr: *const u8, name_len: i32, value: f64) -> i32;
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn input_size() -> Option<u64> {
    // SAFETY: no arguments; the host returns a size or -1.
    let n = unsafe { imports::input_size() };
    u64::try_from(n).ok()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn input_read(buf: &mut [u8], offset: u64) -> Option<usize> {
    let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
    let offset = i64::try_from(offset).ok()?;
    // SAFETY: `buf` is valid for writes of `len` bytes for the duration of the call.
    let n = unsafe { imports::input_read(buf.as_mut_ptr(), len, offset) };
    usize::try_from(n).ok()
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn result_write(bytes: &[u8]) -> Result<(), Refused> {
    let len = i32::try_from(bytes.len()).map_err(|_| Refused)?;
    // SAFETY: `bytes` is valid for reads of `len` bytes for the duration of the call.
    match unsafe { imports::result_write(bytes.as_ptr(), len) } {
        0 => Ok(()),
        _ => Err(Refused),
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn metric(name: &str, value: f64) -> Result<(), Refused> {
    let len = i32::try_from(name.len()).map_err(|_| Refused)?;
    // SAFETY: `name` is valid for reads of `len` bytes for the duration of the call.
    match unsafe { imports::metric(name.as_ptr(), len, value) } {
        0 => Ok(()),
        _ => Err(Refused),
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn input_size() -> Option<u64> {
    None
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn input_read(_buf: &mut [u8], _offset: u64) -> Option<usize> {
    None
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn result_write(_bytes: &[u8]) -> Result<(), Refused> {
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn metric(_name: &str, _value: f64) -> Result<(), Refused> {
    Ok(())
}
