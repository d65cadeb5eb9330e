"""A guest trap stays a `trap` verdict after another library took the signal handlers
wasmtime needs (faulthandler.enable() and ray.init() do): corral puts them back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TRAP = '(module (func (export "_start") unreachable))'

SCRIPT = """
import sys, corral
TRAP = {trap!r}
print(corral.run(TRAP, language="wat").trap)       # wasmtime's handlers are installed
{other}
r = corral.run(TRAP, language="wat")
print(r.verdict, r.trap)
r = corral.run('(module (memory 1) (func (export "_start") (drop (i32.load (i32.const 0x7ffffff0)))))', language="wat")
print(r.verdict, r.trap)
r = corral.run('(module (func (export "_start") (drop (i32.div_s (i32.const 1) (i32.const 0)))))', language="wat")
print(r.verdict, r.trap)
"""


EXPECTED = ["trap unreachable", "trap memory_out_of_bounds", "trap integer_divide_by_zero"]


def run(other: str) -> subprocess.CompletedProcess:
    # Ray in single-machine mode: loopback only.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(trap=TRAP, other=other)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_after_faulthandler_enable() -> None:
    out = run("import faulthandler; faulthandler.enable()")
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.split("\n")[1:4] == EXPECTED
    assert "put them back" in out.stderr


def test_after_ray_init() -> None:
    pytest.importorskip("ray")
    out = run(
        "import ray; ray.init(address='local', num_cpus=1, include_dashboard=False, "
        "log_to_driver=False); ray.shutdown()"
    )
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.split("\n")[1:4] == EXPECTED
