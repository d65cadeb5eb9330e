#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for corral's full test suite:
# the Rust wasm targets, the Debian packages for C/C++ guests and the compile jail, and HAProxy
# (the load balancer in front of three `corral serve` replicas in python/tests/test_lb.py).
# (The Python and JavaScript runners are built by corral itself on first use; the Python clients
# of the service tests are installed by scripts/clients.sh into a venv under target/.)
set -euo pipefail

rustup target add wasm32-wasip1 wasm32-wasip2

packages=(clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
          bubblewrap wabt python3-venv curl haproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "provision: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "provision: ok"
