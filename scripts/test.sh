#!/usr/bin/env bash
# The test command: provision a fresh machine, then run every test (unit, integration, doc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
cargo test --workspace "$@"
