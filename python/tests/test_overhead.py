"""What the Python binding adds per call, against the Rust API in the same process."""

from __future__ import annotations

import time

from conftest import FIXTURES
from test_async import _note

N = 2000


def test_per_call_overhead_against_the_rust_api(engine) -> None:
    """`Engine.run(program)` from Python against `job::run` in a Rust loop (the library's
    API, no Python in between), same engine, same prepared program (a trivial wasm guest),
    same invocation. Rounds alternate; the best round of each counts."""
    prog = engine.prepare(FIXTURES / "functional" / "hello.wat")
    assert engine.run(prog).stdout == "hello\n"
    engine._bench_rust(prog, 200)
    rust, py = [], []
    for _ in range(5):
        rust.append(engine._bench_rust(prog, N) / N)
        started = time.perf_counter()
        for _ in range(N):
            engine.run(prog)
        py.append((time.perf_counter() - started) / N)
    r, p = min(rust), min(py)
    line = (
        f"per call (hello.wat, {N} calls, best of 5): Rust job::run {r * 1e6:.1f} us, "
        f"Python Engine.run {p * 1e6:.1f} us, binding overhead {(p - r) * 1e6:.1f} us"
    )
    print(line)
    _note(line)
    # The binding converts arguments, releases the GIL, blocks on the runtime and builds a
    # Report: a few microseconds, never comparable to the run itself.
    assert p - r < 50e-6, line
