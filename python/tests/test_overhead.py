"""What the Python binding adds per call, against the Rust API in the same process."""

from __future__ import annotations

import time

from conftest import FIXTURES
from test_async import _note

N = 2000


def test_per_call_overhead_against_the_rust_api(engine) -> None:
    """`Engine.run(program)` from Python against `job::run` in a Rust loop (the library's
    API, no Python in between: `Engine._bench_rust`), same engine, same prepared program (a
    trivial wasm guest), same invocation, both on this thread. Rounds alternate and the best
    round of each counts. The bound is on CPU time of this thread (where both the guest and
    the binding run): wall time on a shared 2-core machine is mostly other processes'."""
    prog = engine.prepare(FIXTURES / "functional" / "hello.wat")
    assert engine.run(prog).stdout == "hello\n"
    engine._bench_rust(prog, 200)
    rust_cpu, rust_wall, py_cpu, py_wall = [], [], [], []
    for _ in range(5):
        c, w = time.thread_time(), time.perf_counter()
        engine._bench_rust(prog, N)
        rust_cpu.append((time.thread_time() - c) / N)
        rust_wall.append((time.perf_counter() - w) / N)
        c, w = time.thread_time(), time.perf_counter()
        for _ in range(N):
            engine.run(prog)
        py_cpu.append((time.thread_time() - c) / N)
        py_wall.append((time.perf_counter() - w) / N)
    rc, pc, rw, pw = min(rust_cpu), min(py_cpu), min(rust_wall), min(py_wall)
    line = (
        f"per call (hello.wat, {N} calls, best of 5): CPU Rust job::run {rc * 1e6:.1f} us, "
        f"Python Engine.run {pc * 1e6:.1f} us, binding overhead {(pc - rc) * 1e6:.1f} us; "
        f"wall {rw * 1e6:.1f} vs {pw * 1e6:.1f} us"
    )
    print(line)
    _note(line)
    # Converting arguments, releasing the GIL and building the Report: microseconds.
    assert pc - rc < 50e-6, line
