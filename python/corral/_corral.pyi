"""Type stubs of corral's native module (python/src/*.rs)."""

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union

CORRAL_VERSION: str
WASMTIME_VERSION: str

_Path = Union[str, os.PathLike[str]]
_ProgramLike = Union[str, bytes, os.PathLike[str], "Program"]
_PolicyLike = Union[str, os.PathLike[str], "Policy", None]
_Data = Union[str, bytes]

Verdict = Literal[
    "ok", "exit", "trap", "limit", "denied", "rejected", "compile_error", "invalid_input", "host_error"
]

class Policy:
    """A validated policy: limits, filesystem grants, environment."""

    @staticmethod
    def bundled(name: str) -> Policy: ...
    @staticmethod
    def from_file(path: _Path) -> Policy: ...
    @staticmethod
    def from_toml(text: str, name: str = "policy") -> Policy: ...
    @property
    def name(self) -> str: ...
    def to_toml(self) -> str: ...

class Report:
    """The report of one run (the JSON report's keys as attributes)."""

    @property
    def verdict(self) -> Verdict: ...
    @property
    def ok(self) -> bool: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def limit(self) -> str | None: ...
    @property
    def trap(self) -> str | None: ...
    @property
    def message(self) -> str: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def stdout_bytes(self) -> bytes: ...
    @property
    def stderr_bytes(self) -> bytes: ...
    @property
    def stdout_truncated(self) -> bool: ...
    @property
    def stderr_truncated(self) -> bool: ...
    @property
    def fuel_consumed(self) -> int: ...
    @property
    def module_hash(self) -> str | None: ...
    @property
    def record(self) -> str | None: ...
    @property
    def calls(self) -> dict[str, Any]: ...
    @property
    def deterministic(self) -> bool: ...
    @property
    def diagnostics(self) -> str | None: ...
    @property
    def trail_hash(self) -> str | None: ...
    @property
    def result(self) -> str | None: ...
    @property
    def metrics(self) -> dict[str, float]: ...
    @property
    def wall_time_ms(self) -> float: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def deterministic_dict(self) -> dict[str, Any]: ...

class Program:
    """A compiled, admitted program bound to its engine and policy."""

    @property
    def name(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def failure(self) -> Report | None: ...
    @property
    def module_hash(self) -> str | None: ...
    @property
    def policy(self) -> Policy: ...
    def check_report(self) -> Report: ...

class CaseResult:
    """One case of ``Engine.eval``."""

    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def report(self) -> Report: ...
    @property
    def record(self) -> str | None: ...
    def to_dict(self) -> dict[str, Any]: ...

class EvalResult(Sequence[CaseResult]):
    """The cases of ``Engine.eval``, in order, with totals."""

    @property
    def cases(self) -> list[CaseResult]: ...
    @property
    def passed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def by_status(self) -> dict[str, int]: ...
    def summary(self) -> dict[str, Any]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> CaseResult: ...  # type: ignore[override]

class HumanEvalResult:
    """Result rows (the reference harness's) and pass@k."""

    @property
    def rows(self) -> list[dict[str, Any]]: ...
    @property
    def pass_at_k(self) -> dict[str, float]: ...
    @property
    def passed(self) -> int: ...
    @property
    def programs(self) -> int: ...
    @property
    def tasks(self) -> int: ...
    def results_jsonl(self) -> str: ...
    def summary(self) -> dict[str, Any]: ...

class ReplayResult:
    """A replayed run and whether it matched its record."""

    @property
    def identical(self) -> bool: ...
    @property
    def report(self) -> Report: ...
    @property
    def divergence(self) -> dict[str, Any] | None: ...
    @property
    def notes(self) -> list[str]: ...
    @property
    def recorded_verdict(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...

class Engine:
    """A corral engine: admit once, run many; safe to share between threads."""

    def __init__(
        self,
        policy: _PolicyLike = None,
        *,
        jobs: int | None = None,
        cache_dir: _Path | None = None,
        temp_dir: _Path | None = None,
    ) -> None: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def jobs(self) -> int: ...
    @property
    def cache_dir(self) -> str | None: ...
    def prepare(
        self,
        program: str | bytes | os.PathLike[str],
        language: str | None = None,
        *,
        policy: _PolicyLike = None,
        name: str | None = None,
    ) -> Program: ...
    def run(
        self,
        program: _ProgramLike,
        language: str | None = None,
        *,
        policy: _PolicyLike = None,
        stdin: _Data | None = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        seed: int = 0,
        files: Mapping[str, _Data] | None = None,
        input: _Data | None = None,
        record: bool | _Path | None = None,
        name: str | None = None,
    ) -> Report: ...
    def run_async(
        self,
        program: _ProgramLike,
        language: str | None = None,
        *,
        policy: _PolicyLike = None,
        stdin: _Data | None = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        seed: int = 0,
        files: Mapping[str, _Data] | None = None,
        input: _Data | None = None,
        record: bool | _Path | None = None,
        name: str | None = None,
    ) -> asyncio.Future[Report]: ...
    def eval(
        self,
        program: _ProgramLike,
        cases: Iterable[Mapping[str, Any]],
        language: str | None = None,
        *,
        policy: _PolicyLike = None,
        seed: int = 0,
        jobs: int | None = None,
        record: bool | _Path | None = None,
    ) -> EvalResult: ...
    def eval_async(
        self,
        program: _ProgramLike,
        cases: Iterable[Mapping[str, Any]],
        language: str | None = None,
        *,
        policy: _PolicyLike = None,
        seed: int = 0,
        jobs: int | None = None,
        record: bool | _Path | None = None,
    ) -> asyncio.Future[EvalResult]: ...
    def humaneval(
        self,
        problems: _Path | Iterable[Mapping[str, Any]],
        samples: _Path | Iterable[Mapping[str, Any]] | None = None,
        *,
        k: Sequence[int] = (1, 10),
        language: str = "python",
        policy: _PolicyLike = None,
        jobs: int | None = None,
    ) -> HumanEvalResult: ...
    def humaneval_async(
        self,
        problems: _Path | Iterable[Mapping[str, Any]],
        samples: _Path | Iterable[Mapping[str, Any]] | None = None,
        *,
        k: Sequence[int] = (1, 10),
        language: str = "python",
        policy: _PolicyLike = None,
        jobs: int | None = None,
    ) -> asyncio.Future[HumanEvalResult]: ...
    def replay(self, record: _Path | Report, *, best_effort: bool = False) -> ReplayResult: ...
    def close(self) -> None: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *exc: object) -> None: ...
    def _bench_rust(self, program: Program, n: int) -> float: ...

def pass_at_k(rows: Iterable[Mapping[str, Any]], k: Sequence[int] = (1, 10)) -> dict[str, float]: ...
