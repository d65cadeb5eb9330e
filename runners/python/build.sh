#!/usr/bin/env bash
# Build the corral Python runner component (runner.wasm) into OUT_DIR.
#
#   usage: build.sh OUT_DIR
#   env:   PYTHON   host Python used to create the venv (default: python3; needs >= 3.9)
#
# This is the reference recipe that corral replays on first use (it writes the same
# files from strings embedded in its binary).  Network is needed only for the pip
# install (PyPI).  Result: OUT_DIR/runner.wasm, plus OUT_DIR/venv and OUT_DIR/src.
# The build is NOT bit-reproducible (see README.md, "Reproducibility").
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
PYTHON="${PYTHON:-python3}"

# 1. A venv that contains only componentize-py (pinned, hash-checked).
if [ "$("$OUT/venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
    rm -rf "$OUT/venv"
    "$PYTHON" -m venv "$OUT/venv"
    "$OUT/venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
        --only-binary=:all: --require-hashes -r "$HERE/requirements.txt"
fi
test "$("$OUT/venv/bin/componentize-py" --version)" = "componentize-py $COMPONENTIZE_PY_VERSION"

# 2. Sources: app.py and the WIT tree (world.wit + wasi 0.2.12 deps from wasmtime-wasi 48.0.8).
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
cp "$HERE/app.py" "$OUT/src/app.py"
cp -R "$HERE/wit" "$OUT/src/wit"

# 3. Componentize.  componentize-py mounts extra site-packages into the build-time
#    interpreter: VIRTUAL_ENV pins that to our own venv (otherwise it asks `pipenv`
#    and `python3` from PATH).  It does not read other environment variables.
cd "$OUT/src"
env -u PYTHONPATH -u PYTHONHOME VIRTUAL_ENV="$OUT/venv" \
    "$OUT/venv/bin/componentize-py" --quiet \
        --wit-path wit --world runner \
        componentize --python-path . --output "$OUT/runner.wasm.tmp" app
mv -f "$OUT/runner.wasm.tmp" "$OUT/runner.wasm"
echo "built $OUT/runner.wasm ($(wc -c < "$OUT/runner.wasm") bytes)"
