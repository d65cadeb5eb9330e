"""Sharded HumanEval: grade one shard of the samples per worker (a Kubernetes indexed Job's
pod, say), then merge the shards' result rows by content hash.

A sample belongs to shard ``line_index % shards`` (counting non-empty lines of the samples
file from 0). Each shard's results file holds its rows as corral writes them. The merge keys
every row by the content hash of its sample (the row without ``result`` and ``passed``) and
writes one row per line of the samples file, in order -- so the merged file is, byte for
byte, what a single ``corral humaneval --samples`` run writes, however the shards were
retried or duplicated: corral's verdicts are deterministic, so two rows for one sample are
identical (the merge checks it).

Command line (``python -m corral.shards``)::

    python -m corral.shards grade PROBLEMS SAMPLES --shard I/N --out shard-I.jsonl
    python -m corral.shards merge SAMPLES shard-*.jsonl --out results.jsonl [--k 1,10]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["content_hash", "grade_shard", "merge", "shard_of"]


def _lines(path: str | os.PathLike[str]) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return [line.rstrip("\n") for line in f if line.strip()]


def content_hash(obj: dict[str, Any]) -> str:
    """sha256 of a sample's canonical JSON (sorted keys, no spaces), ignoring ``result``
    and ``passed`` (which a result row adds)."""
    body = {k: v for k, v in obj.items() if k not in ("result", "passed")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def shard_of(samples: Sequence[str], index: int, count: int) -> list[str]:
    """The sample lines of shard ``index`` of ``count``."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    return [line for i, line in enumerate(samples) if i % count == index]


def grade_shard(
    problems: str | os.PathLike[str], samples: str | os.PathLike[str], index: int, count: int, **options: Any
) -> str:
    """Grades shard ``index`` of ``count`` and returns its results file text."""
    import corral

    mine = [json.loads(line) for line in shard_of(_lines(samples), index, count)]
    if not mine:
        return ""
    return corral.humaneval(problems, mine, **options).results_jsonl()


def merge(samples: str | os.PathLike[str], shard_results: Iterable[str | os.PathLike[str]]) -> str:
    """The results file of all ``samples`` from the shards' results files (any order, any
    duplicates), by content hash."""
    rows: dict[str, str] = {}
    for path in shard_results:
        for line in _lines(path):
            key = content_hash(json.loads(line))
            if rows.setdefault(key, line) != line:
                raise ValueError(f"{path}: two different rows for one sample ({key}): a grader is not deterministic")
    out = []
    missing = 0
    for line in _lines(samples):
        row = rows.get(content_hash(json.loads(line)))
        if row is None:
            missing += 1
        else:
            out.append(row + "\n")
    if missing:
        raise ValueError(f"{missing} samples have no row in the shards (hint: a shard is missing)")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m corral.shards", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one shard of the samples")
    g.add_argument("problems")
    g.add_argument("samples")
    g.add_argument("--shard", required=True, help="I/N: shard I (from 0) of N; I may be $JOB_COMPLETION_INDEX")
    g.add_argument("--out", required=True)
    g.add_argument("--language", default="python")
    g.add_argument("--jobs", type=int)
    m = sub.add_parser("merge", help="merge shard results by content hash")
    m.add_argument("samples")
    m.add_argument("shards", nargs="+")
    m.add_argument("--out", required=True)
    m.add_argument("--k", default="1,10")
    a = p.parse_args(argv)
    if a.command == "grade":
        index, count = (int(x) for x in a.shard.split("/"))
        text = grade_shard(a.problems, a.samples, index, count, language=a.language, jobs=a.jobs, k=(1,))
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(a.out + ".tmp")
        tmp.write_text(text)
        tmp.replace(a.out)
        print(json.dumps({"shard": index, "of": count, "programs": text.count("\n")}))
    else:
        import corral

        text = merge(a.samples, a.shards)
        tmp = Path(a.out + ".tmp")
        tmp.write_text(text)
        tmp.replace(a.out)
        rows = [json.loads(line) for line in text.splitlines()]
        ks = [int(k) for k in a.k.split(",")]
        summary = {
            "programs": len(rows),
            "passed": sum(1 for r in rows if r["passed"]),
            "tasks": len({r["task_id"] for r in rows}),
            "pass_at_k": corral.pass_at_k(rows, k=ks),
        }
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
