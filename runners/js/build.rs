// Shadow stack (C/Rust stack in linear memory) of 2 MiB instead of Rust's 1 MiB default, so the
// QuickJS stack limit (host wasm stack / 4, see main.rs) has room when the host raises
// max_wasm_stack up to ~7.7 MiB. rust-lld keeps the stack first in memory, so an overflow of it
// traps (out-of-bounds) instead of corrupting data.
fn main() {
    println!("cargo:rustc-link-arg-bins=-zstack-size=2097152");
    println!("cargo:rerun-if-changed=build.rs");
}
