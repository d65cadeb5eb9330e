"""HumanEval grading on a Ray cluster: a Ray Data pipeline whose map stage is an actor pool,
one :class:`corral.Engine` per actor (admit once, run many), giving the reference harness's
result rows.

::

    import ray, corral.ray
    ray.init(address="auto")
    res = corral.ray.evaluate("samples.jsonl", "HumanEval.jsonl.gz", k=(1, 10), num_actors=8)
    res.rows, res.pass_at_k        # the rows of corral.humaneval, byte for byte

Why retries are safe: a corral verdict is deterministic (fuel, not wall time, bounds each
program; clocks and randomness are virtual), so a batch graded twice -- after an actor or a
whole node died, when Ray re-runs its task on another actor -- gives the same rows. Ray Data
restarts dead actors and retries their tasks (``max_restarts=-1``, ``max_task_retries=-1``
for actor pools), and :func:`evaluate` puts rows back in sample order by index, so the result
is complete and identical to a single-process run whatever failed on the way.

Each sample crosses Ray as its JSON text and each row comes back as the exact JSON line
corral writes, so nothing is re-typed by Arrow on the way.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import corral

__all__ = ["RayEvaluation", "collect", "evaluate", "grade"]


def _jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return [json.loads(line) for line in f if line.strip()]


def _policy_spec(policy: Any) -> Any:
    """A policy that pickles: a name or path as given, a ``Policy`` as its TOML."""
    if isinstance(policy, corral.Policy):
        return ("toml", policy.to_toml(), policy.name)
    if policy is None or isinstance(policy, str):
        return policy
    return os.fspath(policy)


def _policy_of(spec: Any) -> Any:
    if isinstance(spec, tuple) and spec and spec[0] == "toml":
        return corral.Policy.from_toml(spec[1], name=spec[2])
    return spec


class _Grader:
    """One actor of the pool: an engine, the problems, and a batch of samples in, the
    batch's result rows (as corral's JSON lines) out."""

    def __init__(self, problems: list[dict[str, Any]], language: str, policy: Any, jobs: int | None):
        import ray

        self.engine = corral.Engine(jobs=jobs)
        self.problems = problems
        self.language = language
        self.policy = _policy_of(policy)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        samples = [json.loads(s) for s in batch["sample"]]
        res = self.engine.humaneval(
            self.problems, samples, k=[1], language=self.language, policy=self.policy
        )
        rows = res.results_jsonl().splitlines()
        return {
            "index": batch["index"],
            "row": np.array(rows, dtype=object),
            "node": np.array([self.node] * len(rows), dtype=object),
        }


def grade(
    samples: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    problems: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    language: str = "python",
    policy: Any = None,
    num_actors: int | tuple[int, int] = 2,
    batch_size: int = 16,
    jobs_per_actor: int | None = 1,
    num_cpus_per_actor: float = 1,
    ray_remote_args: Mapping[str, Any] | None = None,
):
    """The lazy Ray Dataset of graded samples: one row per sample with ``index`` (its
    position in ``samples``), ``row`` (the result row as corral's JSON line) and ``node``
    (the Ray node that graded it). :func:`evaluate` runs it and collects the rows.

    ``samples`` and ``problems`` are JSON-lines files (``.gz`` too) or iterables of dicts.
    ``num_actors`` is the actor pool's size (or ``(min, max)`` to autoscale); each actor
    holds one engine running ``jobs_per_actor`` programs at once and asks Ray for
    ``num_cpus_per_actor`` CPUs. Extra ``ray_remote_args`` (e.g. ``resources``) go to the
    actors.
    """
    import ray.data

    samples = _jsonl(samples) if isinstance(samples, (str, os.PathLike)) else [dict(s) for s in samples]
    problems = _jsonl(problems) if isinstance(problems, (str, os.PathLike)) else [dict(p) for p in problems]
    items = [{"index": i, "sample": json.dumps(s)} for i, s in enumerate(samples)]
    ds = ray.data.from_items(items, override_num_blocks=max(1, (len(items) + batch_size - 1) // batch_size))
    return ds.map_batches(
        _Grader,
        fn_constructor_kwargs={
            "problems": problems,
            "language": language,
            "policy": _policy_spec(policy),
            "jobs": jobs_per_actor,
        },
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=num_actors,
        num_cpus=num_cpus_per_actor,
        **dict(ray_remote_args or {}),
    )


@dataclass
class RayEvaluation:
    """The outcome of :func:`evaluate`: the result rows in sample order and pass@k."""

    lines: list[str]
    """Each row as corral writes it (one JSON object per line)."""
    pass_at_k: dict[str, float]
    """``{"pass@1": ...}`` for each k every task has enough samples for."""
    nodes: list[str] = field(default_factory=list)
    """The Ray node that graded each row (for inspection)."""

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The result rows, as dicts (each sample's fields plus ``result`` and ``passed``)."""
        return [json.loads(line) for line in self.lines]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.rows if r["passed"])

    def results_jsonl(self) -> str:
        """The results file, byte for byte as ``corral humaneval --samples`` writes it."""
        return "".join(line + "\n" for line in self.lines)


def collect(dataset, total: int, k: Sequence[int] = (1, 10)) -> RayEvaluation:
    """Runs a dataset made by :func:`grade` and puts its rows back in sample order. Every
    index must come back, and a sample graded twice (a retried batch) must have given the
    same row both times."""
    by_index: dict[int, tuple[str, str]] = {}
    for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
        for i, row, node in zip(batch["index"], batch["row"], batch["node"]):
            i = int(i)
            if i in by_index and by_index[i][0] != row:
                raise corral.HostError(f"sample {i} was graded twice with different rows")
            by_index[i] = (str(row), str(node))
    missing = sorted(set(range(total)) - set(by_index))
    if missing:
        raise corral.HostError(f"{len(missing)} samples came back without a row (first: {missing[0]})")
    lines = [by_index[i][0] for i in range(total)]
    rows = [json.loads(line) for line in lines]
    return RayEvaluation(lines, corral.pass_at_k(rows, k=list(k)), [by_index[i][1] for i in range(total)])


def evaluate(
    samples: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    problems: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
    *,
    k: Sequence[int] = (1, 10),
    **options: Any,
) -> RayEvaluation:
    """Grades ``samples`` against ``problems`` on the Ray cluster ``ray.init`` connected to,
    and returns the rows in sample order with pass@k -- the same rows, byte for byte, as
    :func:`corral.humaneval` on one machine. ``options`` are :func:`grade`'s."""
    samples = _jsonl(samples) if isinstance(samples, (str, os.PathLike)) else [dict(s) for s in samples]
    return collect(grade(samples, problems, **options), len(samples), k)

