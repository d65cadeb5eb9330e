"""corral.humaneval: the bundled HumanEval, 164/164 canonical, the CLI's result rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import corral
from conftest import FIXTURES, HUMANEVAL, cli


def problems() -> list[dict]:
    with gzip.open(HUMANEVAL, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_canonical_solutions_all_pass() -> None:
    res = corral.humaneval(HUMANEVAL)
    assert (res.programs, res.passed, res.tasks) == (164, 164, 164)
    assert res.pass_at_k == {"pass@1": 1.0}
    assert res.summary()["passed"] == 164


def test_rows_are_the_clis(tmp_path: Path) -> None:
    """Samples (two per task: the canonical one and a wrong one) graded by the package give
    the CLI's results file byte for byte, and the same pass@k."""
    samples = tmp_path / "samples.jsonl"
    rows = []
    for p in problems():
        rows.append({"task_id": p["task_id"], "completion": p["canonical_solution"], "sample": 0})
        rows.append({"task_id": p["task_id"], "completion": "    return None\n", "sample": 1})
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = cli("humaneval", str(HUMANEVAL), "--samples", str(samples), "--k", "1,2", "--json")
    cli_summary = json.loads(out.stdout)
    cli_rows = Path(str(samples) + "_results.jsonl").read_text()

    res = corral.humaneval(HUMANEVAL, samples, k=(1, 2))
    assert res.results_jsonl() == cli_rows
    assert res.rows == [json.loads(line) for line in cli_rows.splitlines()]
    assert res.pass_at_k == cli_summary["pass_at_k"]
    assert res.passed == cli_summary["passed"] == 164 + sum(
        1 for r in res.rows if r["sample"] == 1 and r["passed"]
    )
    # In-memory problems and samples give the same rows as the files.
    again = corral.humaneval(problems(), iter(rows), k=(1, 2))
    assert again.results_jsonl() == cli_rows
    assert corral.pass_at_k(res.rows, k=(1, 2)) == res.pass_at_k


def test_bundled_small_fixtures_match_the_cli(tmp_path: Path) -> None:
    src = FIXTURES / "humaneval"
    samples = tmp_path / "samples.jsonl"
    samples.write_bytes((src / "samples.jsonl").read_bytes())
    cli("humaneval", str(src / "problems.jsonl"), "--samples", str(samples), "--k", "1")
    res = corral.humaneval(src / "problems.jsonl", samples, k=(1,))
    assert res.results_jsonl() == Path(str(samples) + "_results.jsonl").read_text()


def test_bad_humaneval_input() -> None:
    with pytest.raises(corral.InvalidInputError, match="unknown task"):
        corral.humaneval(problems()[:1], [{"task_id": "nope", "completion": ""}])
    with pytest.raises(corral.InvalidInputError, match="completion"):
        corral.humaneval(problems()[:1], [{"task_id": "HumanEval/0"}])
    with pytest.raises(corral.InvalidInputError, match="Python or Rust"):
        corral.humaneval(problems()[:1], language="c")
