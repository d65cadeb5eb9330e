#!/usr/bin/env bash
# The Python package (python/): a virtualenv under target/ holding the pinned, hash-checked
# tools (maturin, pytest, ray, kubernetes-validate: python/requirements-dev.txt), the
# package built from this checkout and installed into it, and its pytest suite.
#
#   bash scripts/python.sh              venv + install + tests (what CI runs)
#   bash scripts/python.sh install      venv + install
#   bash scripts/python.sh test [ARGS]  tests only (pytest ARGS)
#   bash scripts/python.sh lock         regenerate requirements-dev.txt from requirements-dev.in
#
# The package is built with the `dev` cargo profile here (it shares the test suite's build);
# set CORRAL_WHEEL_PROFILE=release for an optimised build, as `pip install ./python` makes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CORRAL_PY_VENV:-target/python-venv}
python=${CORRAL_PYTHON:-python3}
req=python/requirements-dev.txt

venv() {
  local stamp="$venv/.requirements.sha256"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  echo "python: creating $venv (pinned tools from $req)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes --only-binary=:all: -r "$req"
  echo "$want" > "$stamp"
}

install() {
  venv
  echo "python: building and installing the corral package (profile ${CORRAL_WHEEL_PROFILE:-dev})"
  PATH="$PWD/$venv/bin:$PATH" CORRAL_WHEEL_PROFILE=${CORRAL_WHEEL_PROFILE:-dev} \
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --no-build-isolation --no-deps --force-reinstall ./python
}

tests() {
  # The CLI the tests compare against, in the profile the test suite builds.
  cargo build --quiet --locked -p corral-cli
  "$venv/bin/python" -m pytest python/tests "$@"
}

case "${1:-all}" in
  all) install; tests ;;
  install) install ;;
  test) shift; tests "$@" ;;
  lock)
    venv
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv==0.13.8
    "$venv/bin/uv" pip compile python/requirements-dev.in --generate-hashes --python-version 3.11 \
      --python-platform x86_64-manylinux_2_28 --no-header -o "$req.new"
    { printf '# Generated from requirements-dev.in by scripts/python.sh lock (uv pip compile --generate-hashes\n# --python-version 3.11 --python-platform x86_64-manylinux_2_28). Installed with --require-hashes.\n'
      cat "$req.new"; } > "$req"
    rm "$req.new"
    ;;
  *) echo "usage: scripts/python.sh [all|install|test [PYTEST ARGS]|lock]" >&2; exit 2 ;;
esac
