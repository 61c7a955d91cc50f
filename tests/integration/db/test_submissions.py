"""The ``submissions`` table on a real PostgreSQL: one row per recorded claim, written
with its result in one transaction, never twice, pruned with its run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from rxfleet.claims.rejects import Reason, Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.stores import database as database_module
from rxfleet.stores.database import Database, ResultRow

DIGEST = "0123456789abcdef"


def recorded(seq: int, claim_id: str | None = None, paid: bool = True) -> WorkRecord:
    """A routed claim with its key, as the record link sees it."""
    claim_id = claim_id or f"CLM{seq:04d}"
    record = WorkRecord(seq=seq, source="claims.jsonl", line=seq + 1, claim_id=claim_id,
                        key=f"{claim_id}~{DIGEST}", stage=Stage.ROUTED, attempts=1,
                        fields={"transaction_code": "B1"}, reason=Reason.PAYER)  # fmt: skip
    if paid:
        record.status, record.route = Status.PAID, Route.CLEAN
        record.amount_paid, record.patient_pay, record.authorization_number = "12.50", "5.00", "A1"
    else:
        record.status, record.route, record.reject_codes = Status.REJECTED, Route.PRIOR_AUTH, ["75"]
    return record


def rows(db: Database, query: str = "SELECT * FROM submissions ORDER BY run_id, seq") -> list:  # type: ignore[type-arg]
    with psycopg.connect(db.url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query.encode()).fetchall()


def test_one_submission_per_recorded_claim_with_its_answer(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    records = [recorded(0), recorded(1, paid=False), recorded(2, claim_id="C9")]
    nameless = WorkRecord(seq=3, source="claims.jsonl", line=4, stage=Stage.ROUTED,
                          status=Status.QUARANTINED, route=Route.DEAD_LETTER)  # fmt: skip
    assert db.record("r1", [ResultRow.of(r) for r in [*records, nameless]]) == 4
    found = rows(db)
    assert [(s["run_id"], s["seq"], s["claim_id"]) for s in found] == [
        ("r1", 0, "CLM0000"),
        ("r1", 1, "CLM0001"),
        ("r1", 2, "C9"),
    ]  # fmt: skip (a claim with no claim id has no history)
    paid, rejected = found[0], found[1]
    assert (paid["idempotency_key"], paid["digest"]) == (f"CLM0000~{DIGEST}", DIGEST)
    assert (paid["transaction_code"], paid["source"], paid["status"]) == (
        "B1",
        "claims.jsonl:1",
        "PAID",
    )
    assert (paid["amount_paid"], paid["patient_pay"]) == (Decimal("12.50"), Decimal("5.00"))
    assert paid["authorization_number"] == "A1" and paid["reason"] == "PAYER"
    assert rejected["reject_codes"] == ["75"] and rejected["amount_paid"] is None
    assert rejected["recorded_at"] == paid["recorded_at"]  # one transaction
    assert [r["claim_id"] for r in db.claim_submissions("C9")] == ["C9"]


def test_a_redelivered_batch_writes_no_submission_twice(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    first = [ResultRow.of(recorded(seq)) for seq in range(5)]
    assert db.record("r1", first) == 5
    again = [ResultRow.of(recorded(seq, paid=False)) for seq in range(3, 8)]
    assert db.record("r1", again) == 3  # seqs 3 and 4 were recorded already
    assert db.record("r1", again) == 0
    found = rows(db)
    assert [s["seq"] for s in found] == list(range(8))
    assert [s["status"] for s in found] == ["PAID"] * 5 + ["REJECTED"] * 3  # the first wins


def test_submissions_are_pruned_with_their_run(db: Database) -> None:
    old = datetime.now(UTC) - timedelta(days=100)
    for run_id in ("old", "new"):
        db.create_run(run_id, inputs="claims.jsonl")
        db.record(run_id, [ResultRow.of(recorded(seq)) for seq in range(4)])
    with psycopg.connect(db.url) as conn:
        for table in ("results", "submissions"):
            conn.execute(
                f"UPDATE {table} SET recorded_at = %s WHERE run_id = 'old'".encode(), (old,)
            )
        conn.execute("UPDATE runs SET created_at = %s WHERE run_id = 'old'", (old,))
    deleted = db.prune(30, 90, batch=3)
    assert (deleted["results"], deleted["submissions"], deleted["runs"]) == (4, 4, 1)
    assert [(s["run_id"], s["seq"]) for s in rows(db)] == [("new", seq) for seq in range(4)]
    assert db.get_run("old") is None


def test_results_recorded_before_the_table_become_submissions(
    blank_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = database_module.migrations()
    with Database(blank_url) as database:
        monkeypatch.setattr(
            database_module, "migrations", lambda: [m for m in every if m.version < 5]
        )
        database.upgrade()  # a database at 0004, with a result with and one without a claim id
        database.create_run("r1", inputs="claims.jsonl")
        with psycopg.connect(blank_url) as conn:
            conn.execute(
                "INSERT INTO results (run_id, seq, claim_id, status) "
                "VALUES ('r1', 0, 'C1', 'PAID'), ('r1', 1, NULL, 'QUARANTINED')"
            )
        monkeypatch.undo()
        assert database.upgrade()[0] == 5
        (only,) = database.claim_submissions("C1")
        assert (only["run_id"], only["seq"], only["status"]) == ("r1", 0, "PAID")
        assert only["idempotency_key"] is None
        assert len(rows(database)) == 1
