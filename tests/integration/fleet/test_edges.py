"""Exact at the edges, on the real fleet (issue 16): a value the database refuses is a
result, not an outage; intake that cannot misalign. Each case: ``rxfleet run`` on a
file, its exit code, one row per input claim, the stated code, and nothing printed
or stored that is not an id."""

from __future__ import annotations

import json
import random
import string
import time
from pathlib import Path
from typing import Any

import pytest

from rxfleet import cli
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration


def _claims(path: Path, n: int, seed: int = 41) -> list[dict[str, Any]]:
    clean_claims(path, n, seed=seed)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(
    path: Path, tmp: Path, capsys: pytest.CaptureFixture[str], timeout: int = 60
) -> tuple[int, list[dict[str, Any]], str]:
    out = tmp / "out.jsonl"
    capsys.readouterr()
    code = cli.main(["run", str(path), "-o", str(out), "--new", "--timeout", str(timeout)])
    streams = capsys.readouterr()
    assert "Traceback" not in streams.err + streams.out
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return code, rows, streams.out + streams.err


def test_a_nul_in_a_claim_id_ends_its_claim_and_records_its_batch_mates(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims = _claims(tmp_path / "seed.jsonl", 499)
    bad = {**claims[0], "claim_id": "HS-NUL\u0000"}
    path = tmp_path / "nul.jsonl"
    lines = [json.dumps(c) for c in claims]
    path.write_text("\n".join([*lines[:200], json.dumps(bad), *lines[200:]]) + "\n")
    started = time.monotonic()
    code, rows, printed = _run(path, tmp_path, capsys)
    assert time.monotonic() - started < 45
    assert code == 0, printed
    assert len(rows) == 500
    assert [r["claim_id"] for r in rows[:200]] == [c["claim_id"] for c in claims[:200]]
    ended = rows[200]
    assert ended["status"] == "QUARANTINED"
    assert "CONTROL_CHARACTER" in ended["errors"]
    assert ended["claim_id"] == "nul:201"  # derived from file and line, never the raw value
    assert "\u0000" not in json.dumps(rows) and "\\u0000" not in json.dumps(rows)
    assert sum(r["status"] == "PAID" for r in rows) == 499


def test_an_id_too_large_for_the_index_ends_its_claim_and_records_its_batch_mates(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims = _claims(tmp_path / "seed.jsonl", 299, seed=43)
    rng = random.Random(5)
    huge = "".join(rng.choice(string.ascii_letters) for _ in range(9000))
    path = tmp_path / "huge_id.jsonl"
    lines = [json.dumps(c) for c in claims]
    bad = json.dumps({**claims[0], "claim_id": huge})
    path.write_text("\n".join([*lines[:100], bad, *lines[100:]]) + "\n")
    started = time.monotonic()
    code, rows, printed = _run(path, tmp_path, capsys)
    assert time.monotonic() - started < 45
    assert code == 0, printed
    assert len(rows) == 300
    ended = rows[100]
    assert (ended["claim_id"], ended["status"]) == ("huge_id:101", "QUARANTINED")
    assert "UNRECORDABLE_VALUE" in ended["errors"] and "INVALID_CLAIM_ID" in ended["errors"]
    assert sum(r["status"] == "PAID" for r in rows) == 299
    assert huge[:40] not in printed
    run_id = fleet.db.list_runs(1)[0]["run_id"]
    dead = [d for d in fleet.db.dead_letters(run_id)[0] if d["claim_id"] == "huge_id:101"]
    assert len(dead) == 1 and dead[0]["reason"] == "UNRECORDABLE" and dead[0]["line"] == 101
