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
from tests.db_scan import phi_in_database
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims
from tests.phi_scan import dump_values, leaks

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
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
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
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
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
    run_id = clean_fleet.db.list_runs(1)[0]["run_id"]
    dead = [d for d in clean_fleet.db.dead_letters(run_id)[0] if d["claim_id"] == "huge_id:101"]
    assert len(dead) == 1 and dead[0]["reason"] == "UNRECORDABLE" and dead[0]["line"] == 101


def _csv(claims: list[dict[str, Any]], raw: dict[int, str]) -> str:
    """CSV of ``claims``, every cell quoted, except the records of ``raw`` (as given)."""
    names = list(claims[0])
    rows = [",".join(_quoted(str(c.get(n, ""))) for n in names) for c in claims]
    rows = [raw.get(i, row) for i, row in enumerate(rows)]
    return "\n".join([",".join(names), *rows]) + "\n"


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def _unquoted(claim: dict[str, Any]) -> str:
    return ",".join(str(value) for value in claim.values())


def misaligned(tmp: Path) -> tuple[Path, list[str], str, list[str]]:
    claims = _claims(tmp / "seed.jsonl", 12, seed=51)
    bad = {**claims[5], "claim_id": "ZZMISALIGNED1", "patient_last_name": "QUIXOTEVA, JR",
           "patient_first_name": "ZELDAQUORRA"}  # fmt: skip
    claims[5] = bad
    path = tmp / "misaligned.csv"
    path.write_text(_csv(claims, {5: _unquoted(bad)}))
    ids = [c["claim_id"] for c in claims]
    ids[5] = "misaligned:7"
    phi = [bad[k] for k in ("patient_last_name", "patient_first_name", "cardholder_id")]
    return path, ids, "FIELD_COUNT_MISMATCH", [*phi, "QUIXOTEVA", "ZZMISALIGNED1"]


def quoted_newline(tmp: Path) -> tuple[Path, list[str], str, list[str]]:
    claims = _claims(tmp / "seed.jsonl", 12, seed=52)
    # Names no other test's data holds by chance (a 3-letter synth name such as IVY
    # turns up inside the base64 vault blobs of other runs' dead letters).
    claims[4] = {
        **claims[4],
        "patient_last_name": "QUIXOTEVA\nJR",
        "patient_first_name": "IVYQUORRA",
    }
    path = tmp / "multiline.csv"
    path.write_text(_csv(claims, {}))
    phi = [claims[4][k] for k in ("patient_first_name", "cardholder_id")]
    return path, [c["claim_id"] for c in claims], "CONTROL_CHARACTER", [*phi, "QUIXOTEVA"]


def cr_only(tmp: Path) -> tuple[Path, list[str], str, list[str]]:
    claims = _claims(tmp / "seed.jsonl", 3, seed=53)
    path = tmp / "cr.jsonl"
    path.write_bytes(b"\r".join(json.dumps(c).encode() for c in claims) + b"\r")
    return path, [c["claim_id"] for c in claims], "", []


def float32(tmp: Path) -> tuple[Path, list[str], str, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    claims = _claims(tmp / "seed.jsonl", 6, seed=54)
    table = pa.Table.from_pylist([{**c, "quantity_dispensed": 10.10} for c in claims])
    table = table.set_column(
        table.schema.get_field_index("quantity_dispensed"),
        "quantity_dispensed",
        table.column("quantity_dispensed").cast(pa.float32()),
    )
    path = tmp / "f32.parquet"
    pq.write_table(table, path)
    return path, [c["claim_id"] for c in claims], "", []


SHAPES = {
    "an unquoted comma in a name (CSV)": misaligned,
    "a quoted line end in a field (CSV)": quoted_newline,
    "CR-only line ends (JSONL)": cr_only,
    "quantity as float32 (Parquet)": float32,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_intake_cannot_misalign(
    clean_fleet: Fleet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    shape: str,
) -> None:
    path, ids, code, secrets = SHAPES[shape](tmp_path)
    exit_code, rows, printed = _run(path, tmp_path, capsys)
    assert exit_code == 0, printed
    assert [r["claim_id"] for r in rows] == ids  # one row per claim, in order, aligned
    ended = [r for r in rows if r["status"] != "PAID"]
    if code:
        assert len(ended) == 1 and ended[0]["status"] == "QUARANTINED", ended
        assert code in ended[0]["errors"]
    else:
        assert ended == [], ended
    run_id = clean_fleet.db.list_runs(1)[0]["run_id"]
    haystack = [printed, json.dumps(rows), caplog.text, json.dumps(clean_fleet.db.tallies(run_id))]
    haystack += [json.dumps(d, default=str) for d in clean_fleet.db.dead_letters(run_id)[0]]
    assert leaks(haystack, set(secrets)) == set()
    assert leaks(dump_values(clean_fleet.client), set(secrets)) == set()
    assert phi_in_database(clean_fleet.settings.database_url or "", secrets) == set()
