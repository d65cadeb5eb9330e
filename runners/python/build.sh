#!/usr/bin/env bash
# Build the corral Python runner component (runner.wasm) into OUT_DIR, reproducibly.
#
#   usage: build.sh OUT_DIR
#
# This is the recipe corral replays on first use (compile/runner.rs, from the same files
# embedded in its binary): compile the builder (a small Rust program around the
# componentize-py 0.25.1 library from crates.io, every dependency locked by
# builder/Cargo.lock), then let it componentize app.py with a deterministic build-time world.
# The result is the same bytes on every machine: compare with runners/pins.toml.
# Needs: cargo/rustc (any recent stable), a C compiler for the builder's dependencies,
# crates.io for the first build.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"

# 1. The builder (a whole wasmtime 46 inside: minutes, once).
CARGO_TARGET_DIR="$OUT/builder-target" cargo build --release --locked --quiet \
    --manifest-path "$HERE/builder/Cargo.toml"
BUILDER="$OUT/builder-target/release/corral-python-runner-builder"

# 2. Sources: app.py and the WIT tree (world.wit + wasi 0.2.12 deps from wasmtime-wasi 48.0.8).
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
cp "$HERE/app.py" "$OUT/src/app.py"
cp -R "$HERE/wit" "$OUT/src/wit"

# 3. Componentize. The builder needs nothing of the environment but a temporary directory.
mkdir -p "$OUT/tmp"
env -i TMPDIR="$OUT/tmp" "$BUILDER" "$OUT/src" "$OUT/runner.wasm.tmp"
mv -f "$OUT/runner.wasm.tmp" "$OUT/runner.wasm"
echo "built $OUT/runner.wasm ($(wc -c < "$OUT/runner.wasm") bytes, blake3 $(b3sum --no-names "$OUT/runner.wasm" 2>/dev/null || echo '?'))"
