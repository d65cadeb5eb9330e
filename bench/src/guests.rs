//! The guests the benchmarks run, as text (WAT) or Rust source.

/// A trivial WASI program: reads its argument sizes, writes `ok\n`, returns.
pub const NOOP_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\n")
  (func (export "_start")
    (drop (call $args (i32.const 32) (i32.const 36)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

/// Spins until a limit stops it (for the memory of many live sandboxes).
pub const SPIN_WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
"#;

/// A host-call-heavy guest: creates `out.bin` in its first preopened directory (fd 3) and
/// writes 16 bytes to it `n` times, one `fd_write` each. Exits 1 if the open fails, 2 if a
/// write fails.
pub fn writes_wat(n: u32) -> String {
    format!(
        r#"
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "out.bin")
  (data (i32.const 128) "0123456789abcdef")
  (func (export "_start") (local $i i32) (local $fd i32)
    ;; oflags = CREAT | TRUNC; rights: fd_write
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 7)
                         (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16))
      (then (call $exit (i32.const 1))))
    (local.set $fd (i32.load (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 128))
    (i32.store (i32.const 4) (i32.const 16))
    (loop $l
      (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $exit (i32.const 2))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {n}))))))
"#
    )
}

/// CPU-heavy kernels, one program: `kernels NAME SIZE` prints `checksum nanoseconds`.
/// Natively the nanoseconds are the kernel's own time; under corral the clock is virtual,
/// so the host times the whole run instead.
pub const KERNELS_RS: &str = include_str!("kernels.rs.txt");

/// The kernels and their sizes (full run, quick run): each takes a few hundred
/// milliseconds natively here.
pub const KERNELS: [(&str, u64, u64); 3] = [
    ("sieve", 40_000_000, 10_000_000),
    ("matmul", 300, 160),
    ("sha256", 16 << 20, 4 << 20),
];

/// Python hello world.
pub const HELLO_PY: &str = "print('hello')\n";
/// Python that spins until a limit stops it.
pub const SPIN_PY: &str = "while True:\n    pass\n";

/// Hello world per language, for compile times.
pub const HELLO: [(&str, &str); 5] = [
    ("hello.rs", "fn main() {\n    println!(\"hello\");\n}\n"),
    (
        "hello.c",
        "#include <stdio.h>\nint main(void) {\n    puts(\"hello\");\n    return 0;\n}\n",
    ),
    (
        "hello.cpp",
        "#include <iostream>\nint main() {\n    std::cout << \"hello\" << std::endl;\n    return 0;\n}\n",
    ),
    ("hello.py", HELLO_PY),
    ("hello.js", "console.log('hello');\n"),
];
