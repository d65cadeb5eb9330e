#!/bin/sh
# Build the corral JavaScript runner (QuickJS via rquickjs) as a wasm32-wasip1 core module,
# using only crates.io + Debian packages (no wasi-sdk download from GitHub).
#
# usage: build.sh SDK_DIR [OUT_WASM]
#   SDK_DIR   directory to create the fake WASI SDK in (created/refreshed; any path)
#   OUT_WASM  where to copy the module (default: ./corral-js-runner.wasm next to this script)
# env:  CARGO_TARGET_DIR  (default: <this dir>/target); CARGO_HOME as usual.
#       RUSTFLAGS is set here (path remapping for reproducible bytes).
#
# Needs (Debian 12): clang-14 (`clang`), llvm-14 (`llvm-ar`), wasi-libc (headers);
# Rust stable with `rustup target add wasm32-wasip1`. Network: crates.io only.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
SDK=${1:?usage: build.sh SDK_DIR [OUT_WASM]}
OUT=${2:-$HERE/corral-js-runner.wasm}

pick() { for c in "$@"; do p=$(command -v "$c" 2>/dev/null) && { echo "$p"; return 0; }; done; echo "build.sh: none of $* found" >&2; exit 1; }
CLANG=$(pick clang-14 clang)
AR=$(pick llvm-ar-14 llvm-ar)
WASM_LD=$(command -v wasm-ld-14 || command -v wasm-ld || true)   # optional: rustc links with its own rust-lld
WASI_INC=/usr/include/wasm32-wasi      # Debian package wasi-libc
WASI_LIB=/usr/lib/wasm32-wasi
[ -f "$WASI_INC/stdio.h" ] || { echo "build.sh: $WASI_INC/stdio.h missing (apt-get install wasi-libc)" >&2; exit 1; }

# --- fake WASI SDK: the layout rquickjs-sys's build.rs expects under $WASI_SDK ---
#   bin/clang, bin/ar (it sets CC/AR to these) and share/wasi-sysroot (passed as --sysroot).
# clang 14 searches <sysroot>/include/<arch>-<os> with the OS name as written
# (wasip1 or wasi, depending on what triple cc passes), then <sysroot>/include.
mkdir -p "$SDK/bin" "$SDK/share/wasi-sysroot/include" "$SDK/share/wasi-sysroot/lib"
ln -sfn "$CLANG"   "$SDK/bin/clang"
ln -sfn "$AR"      "$SDK/bin/ar"
ln -sfn "$AR"      "$SDK/bin/llvm-ar"
[ -n "$WASM_LD" ] && ln -sfn "$WASM_LD" "$SDK/bin/wasm-ld"
for t in wasm32-wasi wasm32-wasip1; do
  ln -sfn "$WASI_INC" "$SDK/share/wasi-sysroot/include/$t"
  ln -sfn "$WASI_LIB" "$SDK/share/wasi-sysroot/lib/$t"
done

export WASI_SDK=$(cd "$SDK" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HERE/target}
# Same bytes wherever it is built: Rust panic locations embed source paths, so map the cargo
# home (crates.io sources) and this directory to fixed names. Overrides any RUSTFLAGS.
CH=${CARGO_HOME:-$HOME/.cargo}
unset CARGO_ENCODED_RUSTFLAGS
export RUSTFLAGS="--remap-path-prefix=$CH=/cargo --remap-path-prefix=$HERE=/corral-js-runner"
cd "$HERE"
cargo build --release --locked --target wasm32-wasip1
cp "$CARGO_TARGET_DIR/wasm32-wasip1/release/corral-js-runner.wasm" "$OUT"
ls -l "$OUT"
