"""corral.replay: records made through the package replay bit for bit; altered ones are
refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import corral
from conftest import cli


def test_record_and_replay(tmp_path: Path) -> None:
    code = "import random, time\nprint(random.random(), time.time(), input())"
    r = corral.run(code, language="python", stdin="x", seed=3, record=tmp_path)
    assert r.record and Path(r.record).is_file()
    rr = corral.replay(r)
    assert rr.identical and rr.divergence is None
    assert rr.report.deterministic_dict() == r.deterministic_dict()
    assert rr.recorded_verdict == "ok"
    assert corral.replay(r.record).identical
    # The command replays the package's records (and says the same).
    out = json.loads(cli("replay", "--json", r.record).stdout)
    assert out["identical"] is True and out["stdout"] == r.stdout


def test_altered_records_are_refused(tmp_path: Path) -> None:
    r = corral.run("print(1)", language="python", record=tmp_path)
    rec = Path(r.record)
    text = rec.read_text()
    rec.write_text(text.replace('"seed":0', '"seed":1') if '"seed":0' in text else text + " ")
    with pytest.raises(corral.RecordError):
        corral.replay(rec)
    with pytest.raises(corral.InvalidInputError):
        corral.replay(tmp_path / "nonexistent.json")


def test_a_report_without_a_record() -> None:
    r = corral.run("print(1)", language="python")
    assert r.record is None
    with pytest.raises(corral.InvalidInputError, match="no record"):
        corral.replay(r)
