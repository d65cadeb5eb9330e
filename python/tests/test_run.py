"""corral.run: the same reports as `corral run`, verdicts as values, exceptions for the
caller's mistakes."""

from __future__ import annotations

import json
import threading
import time
import tomllib
from pathlib import Path

import pytest

import corral
from conftest import FIXTURES, cli

LANG = sorted(
    p
    for p in (FIXTURES / "lang").iterdir()
    if p.suffix in (".py", ".js", ".c", ".cpp", ".rs", ".wat")
)


def spec_of(program: Path) -> dict:
    return tomllib.loads(program.with_suffix(".toml").read_text())


@pytest.mark.parametrize("program", LANG, ids=lambda p: p.name)
def test_same_report_as_the_cli(program: Path, tmp_path: Path) -> None:
    """Every language fixture gives, through the package, exactly the deterministic report
    of `corral run --json` (same verdict, output, fuel, hashes, call counts)."""
    spec = spec_of(program)
    if "dirs" in spec or "tree" in spec:
        pytest.skip("input directories: covered by the files= tests")
    argv = ["run", "--no-record", str(program)]
    kw: dict = {}
    if "policy" in spec:
        policy = str((program.parent / spec["policy"]).resolve())
        argv += ["--policy", policy]
        kw["policy"] = Path(policy)
    if "stdin" in spec:
        (tmp_path / "stdin").write_text(spec["stdin"])
        argv += ["--stdin", str(tmp_path / "stdin")]
        kw["stdin"] = spec["stdin"]
    for k, v in spec.get("env", {}).items():
        argv += ["--env", f"{k}={v}"]
    if "env" in spec:
        kw["env"] = spec["env"]
    if "args" in spec:
        argv += ["--", *spec["args"]]
        kw["args"] = spec["args"]
    expected = json.loads(cli(*argv[:1], "--json", *argv[1:]).stdout)
    report = corral.run(program, **kw)
    got = report.to_dict()
    for r in (expected, got):
        r.pop("wall_time_ms")
        r.pop("record")
    assert got == expected
    assert report.verdict == spec["verdict"]
    assert got == {k: getattr(report, k) for k in got}


def test_quick_start() -> None:
    r = corral.run("print(1)", language="python")
    assert (r.verdict, r.stdout, r.exit_code, r.ok) == ("ok", "1\n", 0, True)
    assert r.to_dict()["stdout"] == "1\n"
    assert json.loads(r.to_json()) == r.to_dict()


def test_report_has_every_key_of_the_json_report() -> None:
    keys = {
        "verdict", "exit_code", "limit", "trap", "message", "stdout", "stderr",
        "stdout_truncated", "stderr_truncated", "fuel_consumed", "module_hash", "record",
        "calls", "deterministic", "diagnostics", "trail_hash", "result", "metrics",
        "wall_time_ms", "isolation",
    }  # fmt: skip
    r = corral.run("print(1)", language="python")
    assert keys <= set(r.to_dict())
    for k in keys:
        assert getattr(r, k) == r.to_dict()[k], k


@pytest.mark.parametrize(
    ("code", "language", "verdict", "detail"),
    [
        ("import sys; sys.exit(3)", "python", "exit", ("exit_code", 3)),
        ("while True: pass", "python", "limit", ("limit", "fuel")),
        ("x = bytearray(1 << 30)", "python", "limit", ("limit", "memory")),
        ("while(true){}", "javascript", "limit", ("limit", "fuel")),
        ("(module (func (export \"_start\") unreachable))", "wat", "trap", ("trap", "unreachable")),
        ("int main(void) { return 7; }", "c", "exit", ("exit_code", 7)),
        ("int main(void) { return x; }", "c", "compile_error", ("exit_code", None)),
        ("(module)", "wat", "rejected", ("exit_code", None)),
    ],
)
def test_guest_misbehaviour_is_a_report(code, language, verdict, detail) -> None:
    r = corral.run(code, language=language)
    assert r.verdict == verdict, r.message
    assert getattr(r, detail[0]) == detail[1]
    if verdict == "compile_error":
        assert "error" in r.diagnostics


def test_inputs_reach_the_guest() -> None:
    code = "import os, sys, random\nprint(sys.argv[1:], os.environ.get('K'), input(), random.random())"
    a = corral.run(code, language="python", args=["x", "y z"], env={"K": "v"}, stdin="in", seed=7)
    b = corral.run(code, language="python", args=["x", "y z"], env={"K": "v"}, stdin=b"in", seed=7)
    c = corral.run(code, language="python", args=["x", "y z"], env={"K": "v"}, stdin="in", seed=8)
    assert a.stdout.startswith("['x', 'y z'] v in ")
    assert a.deterministic_dict() == b.deterministic_dict()
    assert a.stdout != c.stdout  # the seed reaches the guest's randomness


def test_files_are_read_only_inputs() -> None:
    code = (
        "print(open('/data/a.txt').read(), open('/data/sub/b.bin','rb').read())\n"
        "try:\n    open('/data/a.txt','w')\nexcept OSError as e:\n    print('refused')\n"
    )
    r = corral.run(code, language="python", files={"/data/a.txt": "hi", "/data/sub/b.bin": b"\x00\x01"})
    assert r.stdout == "hi b'\\x00\\x01'\nrefused\n", r.stderr


@pytest.mark.parametrize(
    "files",
    [{"a.txt": "x"}, {"/a.txt": "x"}, {"/d/../a": "x"}, {"/d/a": 3}, ["/d/a"]],
)
def test_bad_files_are_invalid_input(files) -> None:
    with pytest.raises(corral.InvalidInputError):
        corral.run("print(1)", language="python", files=files)


def test_invalid_input_raises() -> None:
    with pytest.raises(corral.InvalidInputError, match="unknown language"):
        corral.run("print(1)", language="cobol")
    with pytest.raises(corral.InvalidInputError, match="no such file"):
        corral.run("print(1)")  # a str without language= is a path
    with pytest.raises(corral.InvalidInputError):
        corral.run("print(1)", language="python", env={"A=B": "c"})
    with pytest.raises(corral.InvalidInputError):
        corral.run(b"not wasm")
    with pytest.raises(ValueError):  # InvalidInputError is a ValueError too
        corral.run("print(1)", language="python", stdin=3)
    with pytest.raises(corral.PolicyError, match="unknown bundled policy"):
        corral.run("print(1)", language="python", policy="nonesuch")
    with pytest.raises(corral.PolicyError, match=r"line|:\d+:\d+"):
        corral.Policy.from_toml("version = 1\n[limits]\nfuel = -3\n")


def test_policies() -> None:
    assert corral.Policy.bundled("standard").name == "standard"
    p = corral.Policy.from_toml('extends = "strict"\n[limits]\nfuel = 1_000_000\n', name="tiny")
    assert "fuel = 1000000" in p.to_toml().replace("_", "")
    r = corral.run("while True: pass", language="python", policy=p)
    assert (r.verdict, r.limit) == ("limit", "fuel")
    # Python programs get the policy's fuel times the runner's budget factor (24, docs/budgets.md).
    assert 24_000_000 <= r.fuel_consumed <= 24_000_000 + 10_000
    # standard has a scratch dir at /tmp; strict has none.
    code = "open('/tmp/x','w').write('1'); print(open('/tmp/x').read())"
    assert corral.run(code, language="python", policy="standard").stdout == "1\n"
    assert corral.run(code, language="python").verdict == "exit"


def test_paths_and_bytes(tmp_path: Path) -> None:
    f = tmp_path / "hello.js"
    f.write_text("console.log('hi from ' + 'js')")
    assert corral.run(f).stdout == "hi from js\n"
    assert corral.run(str(f)).stdout == "hi from js\n"
    wasm = corral.run(FIXTURES / "functional" / "hello.wat")
    assert wasm.verdict == "ok"
    import shutil

    g = tmp_path / "prog.txt"
    shutil.copy(f, g)
    assert corral.run(g, language="js").stdout == "hi from js\n"
    assert corral.run(f.read_bytes(), language="javascript").stdout == "hi from js\n"
    r = corral.run("import sys; print(sys.argv[0])", language="python", name="solution.py")
    assert r.stdout == "solution.py\n"


def test_gil_is_released_while_a_guest_runs(big_engine) -> None:
    """While one thread runs a long guest, Python code in another thread keeps running (it
    could not if the binding held the GIL for the whole run)."""
    engine = big_engine
    prog = engine.prepare("n = 0\nfor i in range(3_000_000):\n    n += i\nprint(n)", language="python")
    assert engine.run(prog).stdout == f"{sum(range(3_000_000))}\n"
    done = threading.Event()
    started = time.monotonic()

    def guest() -> None:
        engine.run(prog)
        done.set()

    t = threading.Thread(target=guest)
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0)
    t.join()
    took = time.monotonic() - started
    assert took > 0.2, "the guest should take a while for this test to mean anything"
    assert ticks > 1000, f"the main thread ran only {ticks} times in {took:.2f} s"


def test_threads_share_an_engine(engine) -> None:
    prog = engine.prepare("print(int(input()) * 2)", language="python")
    out: dict[int, str] = {}

    def work(i: int) -> None:
        out[i] = engine.run(prog, stdin=str(i)).stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {i: f"{2 * i}\n" for i in range(16)}
