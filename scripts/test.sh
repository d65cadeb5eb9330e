#!/usr/bin/env bash
# The test command: provision a fresh machine, then run every test (unit, integration, doc),
# then the HTTP and MCP faces against their real clients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
cargo test --workspace "$@"
# The service faces against the real clients from PyPI (pinned, in a venv under target/).
bash scripts/clients.sh
