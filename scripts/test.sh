#!/usr/bin/env bash
# The test command: provision a fresh machine, then run every test (unit, integration, doc),
# then the HTTP and MCP faces against their real clients (scripts/clients.sh) and the Python
# package's suite (scripts/python.sh). Arguments go to `cargo test` and skip both (a focused
# Rust run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
cargo test --workspace "$@"
if [ "$#" -eq 0 ]; then
  # The service faces against the real clients from PyPI (pinned, in a venv under target/).
  bash scripts/clients.sh
  bash scripts/python.sh
fi
