"""Shared fixtures of the corral package's tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
HUMANEVAL = FIXTURES / "humaneval" / "HumanEval.jsonl.gz"


def corral_bin() -> Path:
    """The `corral` command of this checkout (built by scripts/python.sh before pytest)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = Path(os.environ.get("CORRAL_BIN", target / "debug" / "corral"))
    if not path.is_file():
        pytest.fail(f"{path} is missing (hint: cargo build -p corral-cli, or run scripts/python.sh)")
    return path


def cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(corral_bin()), *args], capture_output=True, text=True, **kw)
    if check and out.returncode not in (0, 1):
        raise AssertionError(f"corral {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out


def cli_json(*args: str, **kw) -> dict:
    return json.loads(cli(*args, "--json", **kw).stdout)


@pytest.fixture(scope="session")
def engine():
    import corral

    with corral.Engine() as e:
        yield e


@pytest.fixture(scope="session")
def std_engine():
    import corral

    with corral.Engine("standard") as e:
        yield e


@pytest.fixture(scope="session")
def big_engine():
    """An engine whose default policy allows runs of a few seconds (for tests that need a
    guest that takes a while)."""
    import corral

    policy = corral.Policy.from_toml(
        'extends = "strict"\n[limits]\nfuel = 40_000_000_000\nwall_time_ms = 60_000\n', name="big"
    )
    with corral.Engine(policy) as e:
        yield e
