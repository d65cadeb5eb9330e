#!/usr/bin/env bash
# Runs the functional suite of the scientific runner (fixtures/sci/*.py, not the hostile_*
# ones) on native CPython with the runner's package versions, and compares each output with
# the `stdout` its expectation holds (what the sandbox must print too).
#
#   usage: native.sh PYTHON [--write]
#     PYTHON   a CPython >= 3.12 (e.g. ~/.pyenv/versions/3.13.0/bin/python3)
#     --write  print the outputs instead of comparing (to make new expectations)
#
# Creates a venv in a temporary directory and installs the pinned versions from PyPI.
set -euo pipefail
PY=${1:?usage: native.sh PYTHON [--write]}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE="$HERE/../../fixtures/sci"
VENV="$(mktemp -d)/venv"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    numpy==2.5.2 pandas==3.0.6 scipy==1.18.1 scikit-learn==1.9.1
"$VENV/bin/python" - "$SUITE" "${2:-}" <<'PY'
import pathlib, subprocess, sys, tomllib
suite, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
bad = 0
for prog in sorted(suite.glob("*.py")):
    if prog.stem.startswith("hostile_"):
        continue
    out = subprocess.run([sys.executable, prog.name], cwd=suite, capture_output=True, text=True).stdout
    if mode == "--write":
        print(f"== {prog.stem}\n{out}", end="")
        continue
    want = tomllib.loads(prog.with_suffix(".toml").read_text()).get("stdout")
    if out != want:
        bad += 1
        print(f"DIFFERS: {prog.stem}\n--- native\n{out}--- expected\n{want}")
if mode != "--write":
    n = len([p for p in suite.glob("*.py") if not p.stem.startswith("hostile_")])
    print(f"{n - bad} of {n} expected outputs agree with native CPython")
sys.exit(1 if bad else 0)
PY
