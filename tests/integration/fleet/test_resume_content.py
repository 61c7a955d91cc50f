"""``rxfleet resume RUN`` checks the content, not the path: a file replaced at the run's
path is refused before a claim is read (one line, exit 2, nothing enqueued); the run's
own file put back, the same command finishes the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rxfleet import api, cli
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration


def test_resume_refuses_another_file_at_the_runs_path(
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "claims.jsonl"
    ids = clean_claims(path, 30, seed=41)
    original = path.read_bytes()
    # The run as a producer that died before its first batch left it.
    run_id = api.open_plan([str(path)], 10, new=True, say=lambda line: None).run_id
    clean_claims(path, 30, seed=42)  # another file, at the same path
    capsys.readouterr()
    assert cli.main(["resume", run_id, "--timeout", "60"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert f"not the content run {run_id} was started with" in err[0]
    assert f"rxfleet abort {run_id}" in err[0]
    assert clean_fleet.runs.in_flight(run_id) == 0  # nothing enqueued
    assert clean_fleet.runs.existing(run_id, range(30)) == set()
    assert clean_fleet.db.get_run(run_id)["produced"] == 0  # type: ignore[index]
    path.write_bytes(original)  # the run's own file back: the way the line names works
    out = tmp_path / "out.jsonl"
    assert cli.main(["resume", run_id, "--timeout", "60", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["claim_id"] for r in rows) == sorted(ids)
