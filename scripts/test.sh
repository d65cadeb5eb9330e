#!/usr/bin/env bash
# The test command: provision a fresh machine, then run every test (unit, integration, doc),
# then the Python package's suite (scripts/python.sh). Arguments go to `cargo test` and skip
# the Python suite (a focused Rust run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
cargo test --workspace "$@"
if [ "$#" -eq 0 ]; then
  bash scripts/python.sh
fi
