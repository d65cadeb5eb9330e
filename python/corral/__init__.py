"""corral: run code an AI agent wrote -- Python, JavaScript, C, C++, Rust or WebAssembly --
as WebAssembly in a capability-restricted sandbox, with a typed verdict for every run and a
record that replays bit for bit.

Quick start::

    import corral

    r = corral.run("print(1)", language="python")
    r.verdict, r.stdout          # ('ok', '1\\n')

    engine = corral.Engine("standard")               # admit once, run many
    prog = engine.prepare("print(input()[::-1])", language="python")
    engine.run(prog, stdin="abc").stdout             # 'cba\\n'
    engine.eval(prog, [{"stdin": "ab", "expect_stdout": "ba"}]).passed   # 1

    res = corral.humaneval("HumanEval.jsonl.gz", "samples.jsonl", k=(1, 10))
    res.rows, res.pass_at_k

    await corral.run_async("print(2)", language="python")   # in an event loop

Every run goes through the same job stage as the ``corral`` command, under a policy
(``strict`` by default: no files, no environment, tight limits). A guest's misbehaviour is a
:class:`Report` whose ``verdict`` says what happened (``trap``, ``limit``, ``exit``,
``compile_error``, ...), never an exception; exceptions (:mod:`corral.errors`) are for the
caller's invalid input and corral's own failures. Calls that run guests release the GIL, and
the ``*_async`` functions run guests on corral's threads, never on the event loop.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from ._corral import (
    CORRAL_VERSION,
    WASMTIME_VERSION,
    CaseResult,
    Engine,
    EvalResult,
    HumanEvalResult,
    Policy,
    Program,
    ReplayResult,
    Report,
    pass_at_k,
)
from .errors import CorralError, HostError, InvalidInputError, PolicyError, RecordError

__all__ = [
    "CORRAL_VERSION",
    "WASMTIME_VERSION",
    "CaseResult",
    "CorralError",
    "Engine",
    "EvalResult",
    "HostError",
    "HumanEvalResult",
    "InvalidInputError",
    "Policy",
    "PolicyError",
    "Program",
    "RecordError",
    "ReplayResult",
    "Report",
    "default_engine",
    "humaneval",
    "humaneval_async",
    "pass_at_k",
    "replay",
    "run",
    "run_async",
]

__version__ = CORRAL_VERSION

PathLike = Union[str, "os.PathLike[str]"]
ProgramLike = Union[str, bytes, "os.PathLike[str]", Program]
PolicyLike = Union[str, "os.PathLike[str]", Policy, None]

_lock = threading.Lock()
_default: Engine | None = None
_default_pid: int | None = None


def default_engine() -> Engine:
    """The engine behind the module-level functions: created on first use with the default
    policy (``strict``) and one job per core, re-created in a forked child (an engine's
    threads do not survive ``fork``)."""
    global _default, _default_pid
    pid = os.getpid()
    with _lock:
        if _default is None or _default_pid != pid:
            _default = Engine()
            _default_pid = pid
        return _default


@atexit.register
def _close_default() -> None:
    # Interpreter exit skips destructors: remove the default engine's temporary files now.
    if _default is not None and _default_pid == os.getpid():
        _default.close()


def run(
    program: ProgramLike,
    language: str | None = None,
    *,
    policy: PolicyLike = None,
    stdin: str | bytes | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    seed: int = 0,
    files: Mapping[str, str | bytes] | None = None,
    input: str | bytes | None = None,
    record: bool | PathLike | None = None,
    name: str | None = None,
) -> Report:
    """Runs a program once in a fresh sandbox and returns its :class:`Report`.

    ``program`` is source text (with ``language=``), ``bytes`` (a wasm binary, or source
    with ``language=``), a path (a ``str`` without ``language=``, or any ``os.PathLike``;
    the language comes from the extension), or a :class:`Program`. ``language`` is
    ``python``, ``javascript``, ``c``, ``cpp``, ``rust``, ``wasm`` or ``wat``.

    - ``policy``: a bundled name (``strict``, ``standard``, ``permissive``), a path to a
      TOML file, or a :class:`Policy`; by default ``strict``.
    - ``stdin``, ``args``, ``env``, ``seed``: the guest's stdin (empty by default), its
      arguments after ``argv[0]``, environment variables over the policy's, and the seed of
      its virtual randomness and clocks (0).
    - ``files``: ``{"/data/in.txt": "..."}`` -- read-only input files; each top-level
      directory is staged privately for this run.
    - ``input``: the case input offered to guests using corral's guest SDK.
    - ``record``: ``True`` writes a run record into the default store, a path into that
      store; ``report.record`` is then its path, for :func:`replay`.
    - ``name``: the file name shown in messages (and the interpreter's ``argv[0]``).

    Raises :class:`InvalidInputError` (bad arguments, unreadable files),
    :class:`PolicyError` and :class:`HostError` (e.g. a compiler that is not installed);
    never for what the guest did.
    """
    return default_engine().run(
        program,
        language,
        policy=policy,
        stdin=stdin,
        args=args,
        env=_mapping(env),
        seed=seed,
        files=_mapping(files),
        input=input,
        record=record,
        name=name,
    )


async def run_async(
    program: ProgramLike,
    language: str | None = None,
    *,
    policy: PolicyLike = None,
    stdin: str | bytes | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    seed: int = 0,
    files: Mapping[str, str | bytes] | None = None,
    input: str | bytes | None = None,
    record: bool | PathLike | None = None,
    name: str | None = None,
) -> Report:
    """As :func:`run`, awaited: the guest runs on corral's threads while the event loop
    goes on, so thousands of runs can be in flight from one loop."""
    return await default_engine().run_async(
        program,
        language,
        policy=policy,
        stdin=stdin,
        args=args,
        env=_mapping(env),
        seed=seed,
        files=_mapping(files),
        input=input,
        record=record,
        name=name,
    )


def humaneval(
    problems: PathLike | Iterable[Mapping[str, Any]],
    samples: PathLike | Iterable[Mapping[str, Any]] | None = None,
    *,
    k: Sequence[int] = (1, 10),
    language: str = "python",
    policy: PolicyLike = None,
    jobs: int | None = None,
) -> HumanEvalResult:
    """Grades HumanEval samples, every program sandboxed, and returns the reference
    harness's result rows (each sample's fields plus ``result`` and ``passed``) and pass@k.

    ``problems`` and ``samples`` are JSON-lines files (``.gz`` too) or iterables of dicts;
    without ``samples`` the canonical solutions are graded. ``language`` is ``python`` or
    ``rust`` (HumanEval-Rust). The default policy gives each program 10^10 fuel, 10 s and
    512 MiB (``corral humaneval``'s).
    """
    return default_engine().humaneval(
        _listed(problems), _listed(samples), k=list(k), language=language, policy=policy, jobs=jobs
    )


async def humaneval_async(
    problems: PathLike | Iterable[Mapping[str, Any]],
    samples: PathLike | Iterable[Mapping[str, Any]] | None = None,
    *,
    k: Sequence[int] = (1, 10),
    language: str = "python",
    policy: PolicyLike = None,
    jobs: int | None = None,
) -> HumanEvalResult:
    """As :func:`humaneval`, awaited."""
    return await default_engine().humaneval_async(
        _listed(problems), _listed(samples), k=list(k), language=language, policy=policy, jobs=jobs
    )


def replay(record: PathLike | Report, *, best_effort: bool = False) -> ReplayResult:
    """Re-executes a recorded run (a record or bundle path, or a :class:`Report` made with
    ``record=``) and verifies it bit for bit. A record that is invalid, altered or asks for
    more than this machine allows raises :class:`RecordError`; a run that differs is a
    result with ``identical == False`` and a ``divergence``."""
    return default_engine().replay(record, best_effort=best_effort)


def _mapping(x: Any) -> Any:
    """Any mapping becomes a dict (the native layer takes dicts); anything else is passed on
    to be refused there with a proper message."""
    return dict(x) if isinstance(x, Mapping) else x


def _listed(x: Any) -> Any:
    """Paths stay paths; other iterables (generators included) become lists."""
    if x is None or isinstance(x, (str, os.PathLike, list, tuple)):
        return x
    return list(x)

