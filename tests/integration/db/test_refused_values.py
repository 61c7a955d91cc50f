"""Values the database refuses (a NUL in text, an index row too large) are a result,
not an outage: ``ValueRefused``, never ``InfrastructureError``; the record link bisects
the batch, ends the claim(s) it refuses UNRECORDABLE and records the rest."""

from __future__ import annotations

import dataclasses
import random
import string

import pytest

from rxfleet.errors import InfrastructureError, ValueRefused
from rxfleet.links.record import audit_events, dead_letter
from rxfleet.links.unrecordable import CODE, Origin, Rows, record_isolating
from rxfleet.stores.database import Database, ResultRow
from tests.db_scan import phi_in_database
from tests.integration.db.test_database import routed

NUL_ID = "HS-NUL\u0000"


def _huge_id() -> str:
    rng = random.Random(9)
    return "".join(rng.choice(string.ascii_letters) for _ in range(9000))


@pytest.fixture(autouse=True)
def _run(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")


def _rows(seqs: range, bad: dict[int, str]) -> tuple[Rows, dict[int, Origin]]:
    records = [routed(seq) for seq in seqs]
    records = [r.model_copy(update={"claim_id": bad.get(r.seq, r.claim_id)}) for r in records]
    rows = Rows(
        [dataclasses.replace(ResultRow.of(r), reason="PAYER") for r in records],
        [e for r in records for e in audit_events(r, "t1")],
        [dead_letter(r, None) for r in records],
    )
    return rows, {r.seq: Origin(r.source, r.line) for r in records}


@pytest.mark.parametrize("bad_id", [NUL_ID, _huge_id()], ids=["nul", "9000-chars"])
def test_a_refused_value_is_value_refused_not_an_outage(db: Database, bad_id: str) -> None:
    rows, _ = _rows(range(3), {1: bad_id})
    with pytest.raises(ValueRefused) as caught:
        db.record("r1", rows.results, rows.events, rows.dead)
    assert not isinstance(caught.value, InfrastructureError)
    assert bad_id[:20] not in str(caught.value)
    assert db.result_count("r1") == 0  # one transaction: nothing half written
    assert db.record("r1", rows.only({0, 2}).results) == 2  # the connection still works


@pytest.mark.parametrize("bad", [{7: NUL_ID}, {0: NUL_ID, 499: _huge_id()}], ids=["one", "two"])
def test_the_batch_is_bisected_and_every_claim_recorded(
    db: Database, blank_url: str, bad: dict[int, str]
) -> None:
    rows, origins = _rows(range(500), bad)
    done, recorded = record_isolating(db, "r1", rows, origins)
    assert done == 500 and db.result_count("r1") == 500
    assert sorted(r.seq for r in recorded) == list(range(500))
    results = {r["seq"]: r for r in db.results("r1")}
    for seq in bad:
        assert results[seq]["claim_id"] == f"claims:{seq + 1}"  # derived from file and line
        assert (results[seq]["status"], results[seq]["reason"]) == ("QUARANTINED", "UNRECORDABLE")
        assert CODE in results[seq]["errors"]
    assert all(results[s]["claim_id"] == f"CLM{s:06d}" for s in range(500) if s not in bad)
    ended = [d for d in db.dead_letters("r1", limit=1000)[0] if d["reason"] == "UNRECORDABLE"]
    assert sorted(d["seq"] for d in ended) == sorted(bad)
    assert phi_in_database(blank_url, [v[:40] for v in bad.values()]) == set()


def test_a_redelivered_bisected_batch_writes_nothing_twice(db: Database) -> None:
    rows, origins = _rows(range(20), {3: NUL_ID})
    assert record_isolating(db, "r1", rows, origins)[0] == 20
    assert record_isolating(db, "r1", rows, origins)[0] == 0
    assert db.result_count("r1") == 20


def test_text_in_the_trail_is_escaped_too(db: Database) -> None:
    rows, origins = _rows(range(4), {})
    sent = dataclasses.replace(rows.events[0], stage="sent", codes=["7\u00005"],
                               detail={"x": "a\u0000"})  # fmt: skip
    rows = Rows(rows.results, [sent, *rows.events], rows.dead)
    assert record_isolating(db, "r1", rows, origins)[0] == 4
    trail = [e for e in db.audit("r1") if e["seq"] == 0]
    assert trail[0]["codes"] == ["7\\x005"] and trail[0]["detail"] == {"x": "a\\x00"}
    assert trail[-1]["outcome"] == "QUARANTINED" and CODE in trail[-1]["codes"]
