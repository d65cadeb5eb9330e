"""The asyncio API: runs from one event loop, on corral's threads, as fast as `corral eval`."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

import corral
from conftest import cli

DOUBLE = "print(int(input()) * 2)\n"
RUNS = 1000


def test_run_async_basics() -> None:
    async def main():
        r = await corral.run_async("print(1)", language="python")
        assert (r.verdict, r.stdout) == ("ok", "1\n")
        # Guest misbehaviour is a report; invalid input is an exception, raised at the await.
        assert (await corral.run_async("raise SystemExit(4)", language="python")).exit_code == 4
        with pytest.raises(corral.InvalidInputError):
            await corral.run_async("print(1)", language="python", env={"": "x"})
        with pytest.raises(corral.InvalidInputError):
            await corral.run_async("print(1)", language="cobol")

    asyncio.run(main())


def test_the_loop_keeps_running_while_guests_run(big_engine) -> None:
    engine = big_engine
    prog = engine.prepare("n = 0\nfor i in range(2_000_000):\n    n += i\nprint(n)", language="python")

    async def main():
        ticks = 0
        task = asyncio.ensure_future(engine.run_async(prog))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.001)
        assert (await task).stdout == f"{sum(range(2_000_000))}\n"
        return ticks

    assert asyncio.run(main()) > 20


def test_cancelled_runs_do_not_break_the_loop(engine) -> None:
    prog = engine.prepare("n = 0\nfor i in range(500_000):\n    n += i\nprint(n)", language="python")

    async def main():
        tasks = [asyncio.ensure_future(engine.run_async(prog)) for _ in range(8)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert sum(isinstance(d, asyncio.CancelledError) for d in done) == 4
        assert all(d.stdout == f"{sum(range(500_000))}\n" for d in done[1::2])
        # and the engine goes on
        assert (await engine.run_async(prog)).verdict == "ok"

    asyncio.run(main())


def test_eval_and_humaneval_async(engine) -> None:
    async def main():
        res = await engine.eval_async("print(input())", [{"stdin": "a", "expect_stdout": "a"}], language="python")
        assert res.passed == 1
        he = await corral.humaneval_async(
            [{"task_id": "t/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n",
              "test": "def check(c):\n    assert c(2) == 2\n", "entry_point": "f"}]
        )  # fmt: skip
        assert he.passed == 1

    asyncio.run(main())


def test_thousand_async_runs_are_as_fast_as_corral_eval(engine, tmp_path: Path) -> None:
    """1,000 small runs awaited concurrently from one event loop give the right answers, and
    their time is measured against `corral eval --in-process` for the same program and cases
    (`eval`'s own `wall_time_ms`: from preparing the program to the last case; in-process like
    this engine), back to back, three times (the best of each counts: the machine is shared).

    The target (at most 1.2x) is a measurement, not a test condition: on a shared 2-core
    machine a timed assertion fails for other processes' load. The ratio is printed and
    appended to target/python-measurements.txt; `CORRAL_PY_TARGETS=1` (a measurement run, as
    in README) also asserts it."""
    (tmp_path / "double.py").write_text(DOUBLE)
    (tmp_path / "cases.jsonl").write_text(
        "".join(json.dumps({"stdin": str(i), "expect_stdout": str(2 * i)}) + "\n" for i in range(RUNS))
    )
    (tmp_path / "suite.toml").write_text('program = "double.py"\ncases_file = "cases.jsonl"\n')

    def cli_eval() -> float:
        started = time.perf_counter()
        out = cli("eval", "--json", "--no-record", "--in-process", str(tmp_path / "suite.toml"))
        whole = time.perf_counter() - started
        summary = json.loads(out.stdout.splitlines()[-1])
        assert summary["passed"] == RUNS, summary
        return summary["wall_time_ms"] / 1000, whole

    async def many() -> float:
        started = time.perf_counter()
        prog = engine.prepare(tmp_path / "double.py")
        reports = await asyncio.gather(*(engine.run_async(prog, stdin=str(i)) for i in range(RUNS)))
        took = time.perf_counter() - started
        assert [r.stdout for r in reports] == [f"{2 * i}\n" for i in range(RUNS)]
        return took

    cli_times, py_times = [], []
    for _ in range(3):
        cli_times.append(cli_eval())
        py_times.append(asyncio.run(many()))
    best_cli = min(t for t, _ in cli_times)
    best_py = min(py_times)
    line = (
        f"{RUNS} runs: asyncio {best_py:.3f} s, corral eval {best_cli:.3f} s "
        f"(whole process {min(w for _, w in cli_times):.3f} s), ratio {best_py / best_cli:.3f}; "
        f"all: asyncio {[round(t, 3) for t in py_times]}, eval {[round(t, 3) for t, _ in cli_times]}"
    )
    print(line)
    _note(line)
    if os.environ.get("CORRAL_PY_TARGETS") == "1":
        assert best_py <= 1.2 * best_cli, line


def _note(line: str) -> None:
    """Measurements go to target/python-measurements.txt too (for the docs)."""
    out = Path(os.environ.get("CORRAL_MEASUREMENTS", Path(__file__).resolve().parents[2] / "target" / "python-measurements.txt"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(time.strftime("%Y-%m-%dT%H:%M:%S ") + line + "\n")
