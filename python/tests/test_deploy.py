"""deploy/: the Kubernetes manifests validate against a pinned Kubernetes, their pods have the
walls corral's own threat model asks for, and the sharded HumanEval Job's commands give the
single-process results byte for byte (retried and duplicated shards included)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import HUMANEVAL, ROOT, cli

KUBERNETES = "1.35.0"
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
VALIDATE = Path(sys.executable).with_name("kubernetes-validate")


def validate(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VALIDATE), "-k", KUBERNETES, "--strict", "--quiet", *map(str, files)],
        capture_output=True,
        text=True,
    )


def resources() -> list[dict]:
    return [d for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


def test_manifests_validate() -> None:
    out = validate(*MANIFESTS)
    assert out.returncode == 0, out.stdout + out.stderr
    kinds = sorted({r["kind"] for r in resources()})
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Job"} <= set(kinds)


def test_the_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((DEPLOY / "serve.yaml").read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFS: true", 1))
    assert validate(broken).returncode != 0


def pod_specs() -> list[tuple[str, dict]]:
    out = []
    for r in resources():
        if r["kind"] in ("Deployment", "Job"):
            out.append((r["metadata"]["name"], r["spec"]["template"]["spec"]))
    return out


@pytest.mark.parametrize("name,spec", pod_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_pods_have_the_walls(name: str, spec: dict) -> None:
    sc = spec["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for c in spec.get("initContainers", []) + spec["containers"]:
        csc = c["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False, (name, c["name"])
        assert csc["readOnlyRootFilesystem"] is True, (name, c["name"])
        assert csc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
        assert "add" not in csc["capabilities"]
        assert not csc.get("privileged", False)
        assert "limits" in c.get("resources", {}) or c["name"] == "runners"


def test_egress_is_denied_to_every_pod() -> None:
    policies = [r for r in resources() if r["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "Egress" in p["spec"]["policyTypes"]]
    assert deny and all(p["spec"].get("egress", []) == [] for p in deny)
    # No policy allows any egress back.
    assert not any(p["spec"].get("egress") for p in policies)


def test_service_hpa_pdb_point_at_the_deployment() -> None:
    rs = {(r["kind"], r["metadata"]["name"]): r for r in resources()}
    dep = rs[("Deployment", "corral-serve")]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        sel = rs[(kind, "corral-serve")]["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        assert sel.items() <= labels.items(), kind
    hpa = rs[("HorizontalPodAutoscaler", "corral-serve")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "corral-serve"}
    assert hpa["minReplicas"] >= 2
    job = rs[("Job", "corral-humaneval")]["spec"]
    assert job["completionMode"] == "Indexed"
    n = job["completions"]
    cmd = job["template"]["spec"]["containers"][0]["command"]
    assert f"$(SHARD)/{n}" in cmd, "the shard count in the command must be the Job's completions"


def shards_cmd(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "corral.shards", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


def test_sharded_run_merges_to_the_single_process_results(tmp_path: Path) -> None:
    """The indexed Job's commands, run here: 3 shards, shard 1 run twice (a retried pod),
    merged by content hash: the CLI's results file, byte for byte."""
    with gzip.open(HUMANEVAL, "rt") as f:
        problems = [json.loads(line) for line in f if line.strip()][:40]
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    rows = []
    for p in problems:
        rows.append({"task_id": p["task_id"], "completion": p["canonical_solution"], "k": 0})
        rows.append({"task_id": p["task_id"], "completion": "    pass\n", "k": 1})
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("humaneval", str(tmp_path / "problems.jsonl"), "--samples", str(samples), "--k", "1,2")
    expected = Path(str(samples) + "_results.jsonl").read_text()

    shards = tmp_path / "results"
    shards.mkdir()
    for i in (2, 0, 1):
        shards_cmd("grade", str(tmp_path / "problems.jsonl"), str(samples), "--shard", f"{i}/3", "--out", str(shards / f"shard-{i}.jsonl"))
    shutil.copy(shards / "shard-1.jsonl", shards / "shard-1-retry.jsonl")
    out = tmp_path / "merged.jsonl"
    summary = json.loads(shards_cmd("merge", str(samples), *map(str, sorted(shards.iterdir())), "--out", str(out), "--k", "1,2").stdout)
    assert out.read_text() == expected
    assert summary["programs"] == len(rows) and summary["tasks"] == 40
    import corral

    assert summary["pass_at_k"] == corral.pass_at_k([json.loads(line) for line in expected.splitlines()], k=(1, 2))

    # A missing shard, or two different rows for one sample, is an error, never a result.
    from corral import shards as sh

    with pytest.raises(ValueError, match="no row"):
        sh.merge(samples, [shards / "shard-0.jsonl", shards / "shard-1.jsonl"])
    bad = shards / "shard-0.jsonl"
    text = bad.read_text()
    (tmp_path / "tampered.jsonl").write_text(text.replace('"passed":true', '"passed":false', 1))
    with pytest.raises(ValueError, match="not deterministic"):
        sh.merge(samples, [bad, tmp_path / "tampered.jsonl", shards / "shard-1.jsonl", shards / "shard-2.jsonl"])
