"""``rxfleet claim``: one claim's submissions across runs, read back from a real
PostgreSQL (the history module, then the command as a user runs it)."""

from __future__ import annotations

import json
import time
from typing import Any

from bench.harness import base_env, run_cli
from rxfleet import history
from rxfleet.claims.audit import AuditStage
from rxfleet.claims.rejects import Reason, Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.record import audit_events
from rxfleet.stores.database import Database, ResultRow


def submitted(
    seq: int,
    claim_id: str,
    quantity: int,
    codes: list[str],
    key: str | None = None,
    transaction: str = "B1",
) -> WorkRecord:
    """A routed claim with its trail, as the record link sees it."""
    record = WorkRecord(seq=seq, source="claims.jsonl", line=seq + 1, claim_id=claim_id,
                        key=key, patient_token="tok_1", attempts=1,
                        fields={"transaction_code": transaction},
                        claim={"claim_id": claim_id, "qty": quantity})  # fmt: skip
    record.trail(AuditStage.INGESTED, codes=[])
    record.trail(AuditStage.VALIDATED, codes=[], outcome="PASS")
    record.response_status = "R" if codes else "P"
    record.reject_codes = codes
    record.sent()
    record.route = Route.PRIOR_AUTH if codes else Route.CLEAN
    record.status = Status.REJECTED if codes else Status.PAID
    record.reason = Reason.PAYER
    if not codes:
        record.amount_paid, record.patient_pay, record.authorization_number = "12.50", "5.00", "A1"
    record.trail(AuditStage.ROUTED, outcome=record.route)
    record.stage = Stage.ROUTED
    return record


def store(db: Database, run_id: str, *records: WorkRecord, create: bool = True) -> None:
    if create:
        db.create_run(run_id, inputs=f"{run_id}.jsonl")
    rows = [ResultRow.of(r) for r in records]
    db.record(run_id, rows, [e for r in records for e in audit_events(r, "t1")])
    time.sleep(0.01)  # the next run is created later: the order is the runs' order


def test_every_submission_in_order_with_its_kind_and_stages(db: Database) -> None:
    store(db, "r1", submitted(0, "C1", 30, ["75"]), submitted(1, "OTHER", 30, []))
    store(db, "r2", submitted(4, "C1", 30, ["75"]))  # the same input again
    store(db, "r3", submitted(2, "C1", 15, []))  # corrected: paid
    found = history.history(db, "C1")
    assert [(s["run_id"], s["seq"], s["kind"]) for s in found] == [
        ("r1", 0, "billing"), ("r2", 4, "resend"), ("r3", 2, "correction"),
    ]  # fmt: skip
    assert [s["status"] for s in found] == ["REJECTED", "REJECTED", "PAID"]
    assert found[0]["reject_codes"] == ["75"] and found[2]["reject_codes"] == []
    assert all(s["reason"] == "PAYER" and s["transaction_code"] == "B1" for s in found)
    stages = [e["stage"] for e in found[2]["stages"]]
    assert stages == ["ingested", "validated", "sent", "routed", "recorded"]
    assert found[2]["stages"][-1]["outcome"] == "PAID"
    assert found[2]["source"] == "claims.jsonl:3" and found[2]["authorization_number"] == "A1"
    assert (found[2]["amount_paid"], found[2]["patient_pay"]) == (12.5, 5.0)
    assert found[0]["amount_paid"] is None
    assert found[0]["payload_hash"] == found[1]["payload_hash"] != found[2]["payload_hash"]
    json.dumps(found)  # JSON primitives only
    assert history.history(db, "NOPE") == []


def test_a_submission_whose_result_was_pruned_is_told_by_its_trail(db: Database) -> None:
    store(db, "r1", submitted(0, "C1", 30, ["75"]))
    store(db, "r2", submitted(0, "C1", 15, []))
    db.create_run("r0", inputs="old.jsonl")
    with db._guard("test"):  # the result of r1 gone (retention), its trail kept
        db._conn().execute("DELETE FROM results WHERE run_id = 'r1'")
        db._conn().execute("DELETE FROM submissions WHERE run_id = 'r1'")
    found = history.history(db, "C1")
    assert [(s["run_id"], s["status"], s["route"]) for s in found] == [
        ("r1", "REJECTED", "PRIOR_AUTH"), ("r2", "PAID", "CLEAN"),
    ]  # fmt: skip
    assert found[1]["kind"] == "correction"


def test_the_key_tells_a_resend_from_a_correction(db: Database) -> None:
    store(db, "r1", submitted(0, "C1", 30, ["75"], key="C1~00000000000000aa"))
    store(db, "r2", submitted(0, "C1", 30, ["75"], key="C1~00000000000000aa"))  # a re-run
    store(db, "r3", submitted(0, "C1", 30, [], key="C1~00000000000000bb"))  # a new submission
    store(db, "r4", submitted(0, "C1", 30, [], key="C1~00000000000000bb"))  # its replay
    found = history.history(db, "C1")
    assert [s["kind"] for s in found] == ["billing", "resend", "correction", "resend"]
    assert found[2]["idempotency_key"] == "C1~00000000000000bb"


def test_reversal_and_rebill_in_the_order_recorded(db: Database) -> None:
    db.create_run("late", inputs="late.jsonl")  # created first, recorded last
    store(db, "r1", submitted(0, "C1", 30, [], key="C1~00000000000000aa"))
    store(db, "r2", submitted(0, "C1", 30, [], key="C1~00000000000000cc", transaction="B2"))
    store(db, "r3", submitted(0, "C1", 20, [], key="C1~00000000000000dd", transaction="B3"))
    store(db, "late", submitted(7, "C1", 30, [], key="C1~00000000000000aa"), create=False)
    found = history.history(db, "C1")
    assert [(s["run_id"], s["kind"], s["transaction_code"]) for s in found] == [
        ("r1", "billing", "B1"), ("r2", "reversal", "B2"), ("r3", "rebill", "B3"),
        ("late", "resend", "B1"),
    ]  # fmt: skip
    recorded = [s["recorded_at"] for s in found]
    assert recorded == sorted(recorded)


def _cli(db: Database, *args: str) -> Any:
    return run_cli(base_env(RXFLEET_DATABASE_URL=db.url), *args, timeout=120)


def test_the_command_json_tsv_and_an_unknown_claim(db: Database) -> None:
    store(db, "r1", submitted(0, "C1", 30, ["75"]))
    store(db, "r2", submitted(0, "C1", 15, []))
    done = _cli(db, "claim", "C1", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["claim_id"] == "C1"
    assert [s["kind"] for s in data["submissions"]] == ["billing", "correction"]
    piped = _cli(db, "claim", "C1")
    assert piped.returncode == 0, piped.stderr
    lines = [line.split("\t") for line in piped.stdout.splitlines()]
    assert lines[0][:2] == ["run", "recorded"] and len(lines) == 3
    assert [f[5] for f in lines[1:]] == ["REJECTED", "PAID"] and lines[1][6] == "75"
    assert lines[2][-1].endswith("recorded:PAID")
    unknown = _cli(db, "claim", "NOPE")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip() == "rxfleet: no claim NOPE in the system of record"
