"""The system of record on a real, private PostgreSQL (one per session, a fresh
database per test): migrations, exactly-once recording, streaming, audit order,
dead letters, retention, append-only audit, error translation, no PHI."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from rxfleet.claims.rejects import Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.errors import InfrastructureError, ValueRefused
from rxfleet.stores.database import AuditEvent, Database, DeadLetter, ResultRow, migrations
from tests.db_scan import phi_in_database

STAGES = ("ingested", "validated", "mapped", "sent", "routed", "recorded")
T = TypeVar("T")


#: Every migration of the package, in order (0010 before 0006-0009 exist is fine).
VERSIONS = [m.version for m in migrations()]


def routed(seq: int) -> WorkRecord:
    rejected = seq % 3 == 0
    return WorkRecord(
        seq=seq,
        source="claims.jsonl",
        line=seq + 1,
        claim_id=f"CLM{seq:06d}",
        patient_token=f"tok_{seq:06d}",
        stage=Stage.ROUTED,
        ndc11="00093005001",
        attempts=1,
        reject_codes=["75"] if rejected else [],
        route=Route.PRIOR_AUTH if rejected else Route.CLEAN,
        status=Status.REJECTED if rejected else Status.PAID,
    )


def batch(seqs: range) -> tuple[list[ResultRow], list[AuditEvent], list[DeadLetter]]:
    records = [routed(seq) for seq in seqs]
    results = [replace(ResultRow.of(r), reason="payer") for r in records]
    events = [
        AuditEvent(seq=r.seq, stage=s, claim_id=r.claim_id, codes=r.reject_codes, trace_id="t1")
        for r in records
        for s in STAGES
    ]
    dead = [
        DeadLetter(
            seq=r.seq,
            route=r.route or "",
            claim_id=r.claim_id,
            source=r.source,
            line=r.line,
            status=r.status,
            codes=r.reject_codes,
        )
        for r in records
        if r.reject_codes
    ]
    return results, events, dead


def scalar(db: Database, query: str) -> int:
    with psycopg.connect(db.url) as conn:
        row = conn.execute(query.encode()).fetchone()
        assert row is not None
        return int(row[0])


def at_once(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` in ``count`` threads released together; their results."""
    barrier, out, lock = threading.Barrier(count), [], threading.Lock()

    def run() -> None:
        barrier.wait()
        value = work()
        with lock:
            out.append(value)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(out) == count
    return out


def test_private_server_is_not_the_machine_one(pg_server: LocalPostgres) -> None:
    assert pg_server.port != 5432
    assert pg_server.socket_dir is not None and pg_server.socket_dir.is_dir()
    with psycopg.connect(pg_server.url) as conn:
        row = conn.execute("SHOW fsync").fetchone()
    assert row == ("off",)


def test_stopped_server_leaves_nothing() -> None:
    server = LocalPostgres().start()
    where = server.socket_dir
    server.stop()
    assert where is not None and not Path(where).exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=1)


def _every_slot(url: str) -> list[psycopg.Connection[tuple[object, ...]]]:
    """Connections to the server of ``url`` until it takes no more."""
    taken: list[psycopg.Connection[tuple[object, ...]]] = []
    while True:
        try:
            taken.append(psycopg.connect(url))
        except psycopg.OperationalError:
            return taken


def test_a_full_server_is_waited_for_and_named(blank_url: str) -> None:
    """A process that never reached the server finds it full (``max_connections``):
    it waits as for an outage, says why once, and goes on when a slot frees; with no
    patience it fails with one line that names the cause."""
    Database(blank_url).close()  # the server is there: no slot is taken by this
    taken = _every_slot(blank_url)
    said: list[str] = []
    try:
        assert len(taken) > 50
        with pytest.raises(InfrastructureError, match=r"no free connection slot \(max_conn"):
            Database(blank_url).schema_version()
        threading.Timer(1.0, taken.pop().close).start()
        patient = Database(blank_url, outage=30, notice=said.append)
        assert patient.schema_version() == 0
        patient.close()
    finally:
        for conn in taken:
            conn.close()
    assert len(said) == 2 and "no free connection slot" in said[0] and "back" in said[1]


def test_upgrade_is_idempotent(blank_url: str) -> None:
    with Database(blank_url) as db:
        assert db.schema_version() == 0
        assert db.upgrade() == VERSIONS
        assert db.upgrade() == []
        assert db.schema_version() == VERSIONS[-1]


def test_upgrade_from_two_workers_at_once(blank_url: str) -> None:
    with Database(blank_url) as db:
        applied = at_once(2, db.upgrade)  # two threads: two connections
        assert sorted(applied) == [[], VERSIONS]
        assert db.schema_version() == VERSIONS[-1]


def test_record_is_exactly_once(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    results, events, dead = batch(range(500))
    assert db.record("r1", results, events, dead) == 500
    assert db.record("r1", results, events, dead) == 0
    assert db.result_count("r1") == 500
    assert scalar(db, "SELECT count(*) FROM audit_events") == 500 * len(STAGES)
    assert scalar(db, "SELECT count(*) FROM dead_letters") == len(dead) == 167
    assert db.counts("r1") == {"PAID": 333, "REJECTED": 167}


ODD_CODES = ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "", "\u00e9\u4e2d", "i\tj\nk"]


def test_codes_and_details_arrive_as_written(db: Database) -> None:
    # The COPY rows carry arrays and JSON as their text: odd elements come back the same.
    db.create_run("r1", inputs="claims.jsonl")
    row = replace(ResultRow.of(routed(0)), reject_codes=ODD_CODES, errors=ODD_CODES[::-1])
    detail = {"k": 'v"\\', "n": [1, None], "u": "\u00e9"}
    event = AuditEvent(seq=0, stage="sent", codes=ODD_CODES, trace_id="t", detail=detail)
    assert db.record("r1", [row], [event]) == 1
    [result] = list(db.results("r1"))
    assert (result["reject_codes"], result["errors"]) == (ODD_CODES, ODD_CODES[::-1])
    [audit] = list(db.audit("r1"))
    assert (audit["codes"], audit["detail"]) == (ODD_CODES, detail)


def test_two_workers_recording_the_same_batch(db: Database) -> None:
    for round_ in range(5):
        run_id = f"r{round_}"
        db.create_run(run_id, inputs="claims.jsonl")
        results, events, dead = batch(range(500))
        done = at_once(2, lambda: db.record(run_id, results, events, dead))  # noqa: B023
        assert sum(done) == 500
    assert scalar(db, "SELECT count(*) FROM results") == 5 * 500
    assert scalar(db, "SELECT count(*) FROM audit_events") == 5 * 500 * len(STAGES)
    assert scalar(db, "SELECT count(*) FROM dead_letters") == 5 * 167


def test_rerecord_with_new_seqs_records_only_those(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    assert db.record("r1", *batch(range(300))) == 300
    assert db.record("r1", *batch(range(200, 500))) == 200
    assert scalar(db, "SELECT count(*) FROM audit_events") == 500 * len(STAGES)
    per_seq = "SELECT max(n) FROM (SELECT count(*) AS n FROM audit_events GROUP BY seq) c"
    assert scalar(db, per_seq) == len(STAGES)


def test_results_stream_in_order_in_constant_memory(db: Database) -> None:
    db.create_run("big", inputs="big.jsonl")
    with psycopg.connect(db.url) as conn:  # 100k rows, stored out of order
        conn.execute(
            """INSERT INTO results (run_id, seq, claim_id, status, patient_token)
            SELECT 'big', s, 'CLM' || s, 'PAID', 'tok_' || s
            FROM generate_series(0, 99999) s ORDER BY random()"""
        )
    tracemalloc.start()
    try:
        count, last = 0, -1
        for row in db.results("big"):
            assert row["seq"] == last + 1
            last, count = row["seq"], count + 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == db.result_count("big") == 100_000
    assert peak < 8 * 1024 * 1024  # all 100k rows as dicts would take well over 50 MB


def test_audit_by_seq_then_time(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        AuditEvent(seq=1, stage="sent", claim_id="B", at=t0 + timedelta(seconds=5)),
        AuditEvent(seq=1, stage="ingested", claim_id="B", at=t0),
        AuditEvent(seq=0, stage="routed", claim_id="A", at=t0 + timedelta(seconds=9)),
        AuditEvent(seq=0, stage="ingested", claim_id="A", at=t0 + timedelta(seconds=1)),
    ]
    results = [ResultRow(seq=0, status="PAID", claim_id="A"), ResultRow(1, "PAID", "B")]
    db.record("r1", results, events)
    assert [(e["seq"], e["stage"]) for e in db.audit("r1")] == [
        (0, "ingested"), (0, "routed"), (1, "ingested"), (1, "sent"),
    ]  # fmt: skip
    assert [e["stage"] for e in db.audit("r1", claim_id="B")] == ["ingested", "sent"]


def test_dead_letters_page_and_replay_once(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    db.record("r1", *batch(range(30)))
    page, total = db.dead_letters("r1", limit=4, offset=0)
    assert total == 10 and len(page) == 4
    assert [d["seq"] for d in page] == [27, 24, 21, 18]  # newest first
    assert db.dead_letters("r1", limit=4, offset=8)[0][-1]["seq"] == 0
    keys = [("r1", seq) for seq in range(0, 30, 3)]
    assert db.mark_replayed(keys, "r2") == 10
    assert db.mark_replayed(keys, "r3") == 0
    assert db.dead_letters("r1")[1] == 0
    assert db.dead_letters(include_replayed=True)[1] == 10


def test_runs(db: Database) -> None:
    assert db.create_run("r1", inputs="a.jsonl", input_hash="h1", options={"fmt": "csv", "x": 1})
    assert not db.create_run("r1", inputs="a.jsonl")
    db.create_run("r2", inputs="b.jsonl", input_hash="h2")
    assert db.set_run("r1", state="done", total=3, counts={"PAID": 3})
    assert not db.set_run("nope", state="done")
    run = db.get_run("r1")
    assert run is not None and (run["state"], run["total"], run["counts"]) == (
        "done",
        3,
        {"PAID": 3},
    )
    assert db.get_run("nope") is None
    assert [r["run_id"] for r in db.list_runs(limit=1)] == ["r2"]


def test_prune_keeps_what_is_in_retention(db: Database) -> None:
    old = datetime.now(UTC) - timedelta(days=100)
    for run_id in ("old", "new"):
        db.create_run(run_id, inputs="claims.jsonl")
        results, events, dead = batch(range(50))
        stamp = old if run_id == "old" else None
        events = [AuditEvent(seq=e.seq, stage=e.stage, at=stamp) for e in events]
        db.record(run_id, results, events, dead)
    with psycopg.connect(db.url) as conn:
        conn.execute("UPDATE results SET recorded_at = %s WHERE run_id = 'old'", (old,))
        conn.execute("UPDATE submissions SET recorded_at = %s WHERE run_id = 'old'", (old,))
        conn.execute("UPDATE dead_letters SET created_at = %s WHERE run_id = 'old'", (old,))
        conn.execute("UPDATE runs SET created_at = %s WHERE run_id = 'old'", (old,))
    db.secure(None, 90)  # the owner's floor: the trail's retention (`rxfleet db upgrade`)
    deleted = db.prune(30, 90, batch=7)
    assert deleted == {
        "results": 50,
        "submissions": 50,
        "dead_letters": 17,
        "runs": 1,
        "audit_events": 300,
    }
    assert db.get_run("old") is None and db.result_count("new") == 50
    assert scalar(db, "SELECT count(*) FROM audit_events") == 300


def test_audit_events_are_append_only(db: Database) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    db.record("r1", *batch(range(3)))
    with psycopg.connect(db.url, autocommit=True) as conn:
        for statement in (
            "UPDATE audit_events SET stage = 'x'",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())
    assert scalar(db, "SELECT count(*) FROM audit_events") == 3 * len(STAGES)


def test_errors_become_our_errors_without_values(db: Database, pg_server: LocalPostgres) -> None:
    db.create_run("r1", inputs="claims.jsonl")
    secret = "JANE-DOE-1980"
    # A NOT NULL violation (SQLSTATE 23502) is a refused value (issue 16): ValueRefused,
    # never retried; an unreachable database stays an InfrastructureError.
    with pytest.raises(ValueRefused) as caught:
        db.record("r1", [ResultRow(seq=0, status=None, claim_id=secret)])  # type: ignore[arg-type]
    assert not isinstance(caught.value, InfrastructureError)
    assert "record" in str(caught.value) and "23502" in str(caught.value)
    assert secret not in str(caught.value)
    assert caught.value.__suppress_context__
    assert db.record("r1", [ResultRow(seq=0, status="PAID")]) == 1  # the connection still works
    down = Database(pg_server.url_for("no_such_database"), connect_timeout=1)
    with pytest.raises(InfrastructureError, match="get_run"):
        down.get_run("r1")


def test_no_phi_anywhere_and_the_scan_finds_a_planted_value(db: Database) -> None:
    raw = {"JANE", "DOE", "19800101", "123-45-6789"}
    db.create_run("r1", inputs="claims.jsonl")
    db.record("r1", *batch(range(100)))
    assert phi_in_database(db.url, raw) == set()
    planted = [AuditEvent(seq=100, stage="ingested", detail={"note": "dob 19800101"})]
    db.record("r1", [ResultRow(seq=100, status="PAID")], planted)
    assert phi_in_database(db.url, raw) == {"19800101"}
