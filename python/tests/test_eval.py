"""Engine.eval and Engine.prepare: compile once, run many cases, per-case verdicts."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

import corral
from conftest import FIXTURES, cli

SUM_DIR = FIXTURES / "eval" / "sum"
SUM = (SUM_DIR / "sum.py").read_text()


def test_prepare_once_run_many(engine) -> None:
    prog = engine.prepare("print(input()[::-1])", language="python")
    assert prog.ok and prog.failure is None and prog.language == "python"
    assert prog.module_hash.startswith("blake3:")
    assert [engine.run(prog, stdin=s).stdout for s in ("ab", "xyz")] == ["ba\n", "zyx\n"]
    assert prog.check_report().verdict == "ok"


def test_a_program_that_does_not_compile_reports_it(engine) -> None:
    prog = engine.prepare("int main( { }", language="c")
    assert not prog.ok
    assert prog.failure.verdict == "compile_error"
    assert engine.run(prog).verdict == "compile_error"


def test_prepared_programs_belong_to_their_engine(engine) -> None:
    prog = engine.prepare("print(1)", language="python")
    with corral.Engine() as other, pytest.raises(corral.InvalidInputError, match="another engine"):
        other.run(prog)
    with pytest.raises(corral.InvalidInputError, match="policy"):
        engine.run(prog, policy="standard")


def test_eval_gives_per_case_verdicts(engine) -> None:
    cases = [
        {"name": "ints", "stdin": "1 2 3", "expect_stdout": "6.0"},
        {"name": "tol", "stdin": "0.1 0.2", "expect_stdout": "0.3", "compare": "tokens", "float_tolerance": 1e-6},
        {"name": "wrong", "stdin": "2 2", "expect_stdout": "5.0"},
        {"name": "exception", "stdin": "boom", "expect_stdout": "0"},
    ]
    res = engine.eval(SUM, cases, language="python")
    assert len(res) == 4 and [c.name for c in res] == [c["name"] for c in cases]
    status = {c.name: c.status for c in res}
    assert status["ints"] == "pass" and status["tol"] == "pass"
    assert status["wrong"] == "fail" and "stdout differs" in res[2].reason
    assert status["exception"] == "fail" and "exit code 1" in res[3].reason
    assert (res.passed, res.failed) == (2, 2)
    assert res.summary()["cases"] == 4
    d = res[0].to_dict()
    assert (d["case"], d["status"], d["reason"], d["verdict"]) == ("ints", "pass", None, "ok")


def _policy_with(base: corral.Policy, limits: dict) -> corral.Policy:
    lines = base.to_toml().splitlines()
    for k, v in limits.items():
        lines = [f"{k} = {v}" if line.startswith(f"{k} =") else line for line in lines]
    return corral.Policy.from_toml("\n".join(lines), name=base.name)


@pytest.fixture(scope="module")
def worker_engine():
    with corral.Engine(isolation="workers") as e:
        yield e


def test_eval_matches_the_cli(worker_engine) -> None:
    """The sum suite through the package gives the CLI's per-case objects (minus times),
    both in worker processes (`corral eval` uses them by default): the same walls too."""
    engine = worker_engine
    suite = SUM_DIR / "suite.toml"
    out = cli("eval", "--json", "--no-record", str(suite)).stdout.splitlines()
    expected = [json.loads(line) for line in out][:-1]
    spec = tomllib.loads(suite.read_text())
    base = corral.Policy.bundled("strict")
    got = []
    for c in spec["case"]:
        case = {k: v for k, v in c.items() if k in ("name", "stdin", "expect_stdout", "expect_exit")}
        case["compare"] = c.get("compare", spec.get("compare", "trim"))
        case["float_tolerance"] = spec.get("float_tolerance", 1e-9)
        # A case with its own lower limits runs under its own policy.
        policy = _policy_with(base, c["limits"]) if "limits" in c else base
        got.append(engine.eval(SUM_DIR / "sum.py", [case], policy=policy)[0].to_dict())
    assert len(got) == len(expected) >= 5
    for r in expected + got:
        r.pop("wall_time_ms")
        r.pop("record")
    assert got == expected


def test_bad_cases_are_invalid_input(engine) -> None:
    with pytest.raises(corral.InvalidInputError, match="unknown key"):
        engine.eval("print(1)", [{"stdn": "x"}], language="python")
    with pytest.raises(corral.InvalidInputError, match="duplicate"):
        engine.eval("print(1)", [{"name": "a"}, {"name": "a"}], language="python")
    with pytest.raises(corral.InvalidInputError, match="comparison"):
        engine.eval("print(1)", [{"compare": "fuzzy"}], language="python")
    with pytest.raises(corral.InvalidInputError, match="case `case-1`"):
        engine.eval("print(1)", [{"env": {"A=B": "x"}}], language="python")


def test_case_files_and_input(engine) -> None:
    res = engine.eval(
        "print(open('/in/x').read().upper())",
        [{"files": {"/in/x": "abc"}, "expect_stdout": "ABC"}, {"files": {"/in/x": "q"}, "expect_stdout": "Q"}],
        language="python",
    )
    assert [c.status for c in res] == ["pass", "pass"], [c.report.stderr for c in res]


def test_failing_cases_are_recorded_and_replay(engine, tmp_path: Path) -> None:
    res = engine.eval("print(input())", [{"stdin": "a", "expect_stdout": "b"}], language="python", record=tmp_path)
    rec = res[0].record
    assert rec and Path(rec).is_file() and Path(rec).is_relative_to(tmp_path)
    assert engine.replay(rec).identical


def test_workers_give_the_in_process_reports(engine, worker_engine) -> None:
    """The same program and inputs give the same deterministic report in this process and in
    a worker process; only `isolation` says where it ran."""
    assert (engine.isolation, worker_engine.isolation) == ("in-process", "workers")
    code = "import sys, random\nprint(input(), sys.argv[1:], random.random())\nraise SystemExit(3)"
    a = engine.run(code, language="python", stdin="x", args=["y"], seed=5)
    b = worker_engine.run(code, language="python", stdin="x", args=["y"], seed=5)
    assert a.exit_code == 3 and a.deterministic_dict() == b.deterministic_dict()
    assert a.isolation["process"] is False and b.isolation["process"] is True
    assert b.isolation["no_new_privs"] is True
    trap = worker_engine.run('(module (func (export "_start") unreachable))', language="wat")
    assert (trap.verdict, trap.trap) == ("trap", "unreachable")
