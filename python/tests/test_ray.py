"""corral.ray on a real multi-node Ray cluster on this machine: the single-process rows,
byte for byte, and again with a node killed mid-job."""

from __future__ import annotations

import gzip
import json
import os
import time

import pytest

# Single-machine mode: every Ray process (and every node of the cluster below) uses the
# loopback address, so no traffic leaves this machine's `lo`. Read when ray is imported.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import corral
from conftest import HUMANEVAL
from test_async import _note

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

import corral.ray as corral_ray  # noqa: E402

WORKERS = 3
LOOPBACK = "127.0.0.1"


def samples() -> list[dict]:
    """Two samples per HumanEval task: the canonical solution and a wrong one."""
    with gzip.open(HUMANEVAL, "rt") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    out = []
    for p in problems:
        out.append({"task_id": p["task_id"], "completion": p["canonical_solution"], "n": 0})
        out.append({"task_id": p["task_id"], "completion": "    return 0\n", "n": 1})
    return out


@pytest.fixture(scope="module")
def cluster():
    """A head node (no CPUs: it only holds the driver's data) and three worker nodes of one
    CPU each, every one a separate raylet on this machine."""
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": 200 << 20, "include_dashboard": False},
    )
    nodes = [c.add_node(num_cpus=1, object_store_memory=100 << 20) for _ in range(WORKERS)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield c, nodes
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def expected() -> str:
    """The single-process run (one engine in this process)."""
    return corral.humaneval(HUMANEVAL, samples(), k=(1, 2)).results_jsonl()


def test_cluster_rows_equal_the_single_process_rows(cluster, expected) -> None:
    c, nodes = cluster
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == WORKERS + 1
    assert {n["NodeManagerAddress"] for n in alive} == {LOOPBACK}
    started = time.perf_counter()
    res = corral_ray.evaluate(samples(), HUMANEVAL, k=(1, 2), num_actors=WORKERS, batch_size=8)
    took = time.perf_counter() - started
    assert res.results_jsonl() == expected
    assert res.pass_at_k == corral.pass_at_k(res.rows, k=(1, 2))
    assert len(set(res.nodes)) == WORKERS, "every worker node should have graded some rows"
    _note(f"ray: {len(res.lines)} programs on {WORKERS} worker nodes in {took:.1f} s")


def test_a_node_killed_mid_job_changes_nothing(cluster, expected) -> None:
    c, nodes = cluster
    total = len(samples())
    ds = corral_ray.grade(samples(), HUMANEVAL, num_actors=WORKERS, batch_size=8)
    got: dict[int, str] = {}
    seen_nodes: list[str] = []
    killed = None
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        for i, row, node in zip(batch["index"], batch["row"], batch["node"]):
            assert got.setdefault(int(i), row) == row
            seen_nodes.append(node)
        if killed is None and len(got) >= total // 4:
            # Kill a worker node that has been grading (its raylet and every process on it).
            victim = next(n for n in nodes if n.node_id in seen_nodes)
            c.remove_node(victim, allow_graceful=False)
            killed = (victim.node_id, len(got))
    assert killed is not None and killed[1] < total, "the node must die mid-job"
    assert sorted(got) == list(range(total)), "every sample has its row"
    lines = "".join(got[i] + "\n" for i in range(total))
    assert lines == expected
    after = seen_nodes[killed[1]:]
    assert killed[0] not in after[len(after) // 2 :], "the dead node graded nothing at the end"
    _note(f"ray: node {killed[0][:8]} killed after {killed[1]}/{total} rows; result complete and identical")
