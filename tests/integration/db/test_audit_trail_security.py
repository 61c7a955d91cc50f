"""The audit trail nobody quietly edits (issue 21): the fleet's role may append and
nothing else, retention still prunes (through the owner's function, never inside
retention), and the hash chain names the first event a superuser changed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from bench.harness import base_env, run_cli
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.stores.database import AuditEvent, Database
from tests.integration.db.test_database import batch

REFUSED_AS_FLEET = (
    "SET rxfleet.pruning = 'on'; DELETE FROM audit_events",
    "SELECT set_config('rxfleet.pruning', 'on', false); DELETE FROM audit_events",
    "UPDATE audit_events SET stage = 'edited'",
    "TRUNCATE audit_events",
    "DROP TRIGGER audit_events_append_only ON audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE audit_events OWNER TO CURRENT_USER",
    "CREATE OR REPLACE FUNCTION rx_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RETURN NULL; END $$",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_retention SET days = 1",
    "SELECT rx_prune_run('r1', now(), 1000)",
)


@dataclass
class Roles:
    """A database owned by an ordinary owner role, and the fleet's role on it."""

    owner: Database
    fleet: Database
    fleet_role: str
    superuser_url: str


@pytest.fixture
def roles(pg_server: LocalPostgres) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:10]
    owner_role, fleet_role, name = f"owner_{tag}", f"fleet_{tag}", f"sec_{tag}"
    pg_server.create_role(owner_role, createrole=True)
    pg_server.create_database(name, owner=owner_role)
    owner = Database(pg_server.url_for(name, owner_role))
    owner.upgrade()
    fleet_url = pg_server.url_for(name, fleet_role)
    secured = owner.secure(fleet_url, 90)
    assert secured.warnings == [] and f"role {fleet_role}: created (LOGIN)" in secured.done
    assert f"{fleet_role} on audit_events: SELECT, INSERT" in secured.done
    fleet = Database(fleet_url)
    yield Roles(owner, fleet, fleet_role, pg_server.url_for(name))
    fleet.close()
    owner.close()


def count(url: str, query: str = "SELECT count(*) FROM audit_events") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode()).fetchone()
    return int(row[0]) if row else 0


def test_the_fleets_role_may_append_and_nothing_else(roles: Roles) -> None:
    roles.fleet.create_run("r1", inputs="claims.jsonl")
    assert roles.fleet.record("r1", *batch(range(4))) == 4
    before = count(roles.fleet.url)
    assert before == 24
    for statement in REFUSED_AS_FLEET:
        with (
            psycopg.connect(roles.fleet.url, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(statement.encode())
    assert count(roles.fleet.url) == before
    assert roles.fleet.verify("r1").intact


def _record_at(db: Database, run_id: str, seqs: range, at: datetime) -> None:
    results, events, dead = batch(seqs)
    stamped = [AuditEvent(seq=e.seq, stage=e.stage, claim_id=e.claim_id, at=at) for e in events]
    db.record(run_id, results, stamped, dead)


def test_retention_still_prunes_as_the_fleet_and_never_inside_the_floor(roles: Roles) -> None:
    now = datetime.now(UTC)
    for run_id in ("old", "mid"):
        roles.fleet.create_run(run_id, inputs=f"{run_id}.jsonl")
    _record_at(roles.fleet, "old", range(0, 10), now - timedelta(days=120))
    _record_at(roles.fleet, "old", range(10, 15), now - timedelta(days=10))
    _record_at(roles.fleet, "mid", range(0, 10), now - timedelta(days=60))
    # The fleet asks for 1 day; the owner's floor (90 days) wins: only the old run's
    # first 60 events (older than 90 days) go, sealed by a checkpoint.
    deleted = roles.fleet.prune(1000, 1, batch=7)
    assert deleted["audit_events"] == 60
    assert count(roles.fleet.url, "SELECT count(*) FROM audit_events WHERE run_id = 'mid'") == 60
    with psycopg.connect(roles.fleet.url, autocommit=True) as conn:
        row = conn.execute(b"SELECT rx_prune_audit(now(), 100000)").fetchone()
    assert row == (0,)
    old = roles.fleet.verify("old")
    assert old.intact and (old.checked, old.pruned) == (30, 60), old.line()
    assert roles.fleet.verify("mid").intact
    assert roles.fleet.verify("mid").checked == 60


def _superuser(url: str, statement: str, params: tuple[object, ...] = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(b"ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        conn.execute(statement.encode(), params)
        conn.execute(b"ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


def _event_id(url: str, run_id: str, chain_seq: int) -> int:
    query = f"SELECT id FROM audit_events WHERE run_id = '{run_id}' AND chain_seq = {chain_seq}"
    return count(url, query)


def test_verify_names_the_event_a_superuser_edited(roles: Roles) -> None:
    for run_id in ("r1", "r2", "r3"):
        roles.fleet.create_run(run_id, inputs=f"{run_id}.jsonl")
        for start in range(0, 30, 10):
            roles.fleet.record(run_id, *batch(range(start, start + 10)))
    assert all(roles.fleet.verify(r).intact for r in ("r1", "r2", "r3"))
    su = roles.superuser_url
    edited = _event_id(su, "r1", 77)
    _superuser(su, "UPDATE audit_events SET outcome = 'PAID' WHERE id = %s", (edited,))
    check = roles.fleet.verify("r1")
    assert check.misfit is not None and check.misfit.event_id == edited
    assert check.misfit.chain_seq == 77 and "edited" in check.misfit.why
    assert check.checked == 76 and f"event {edited} " in check.line()
    # An edit that recomputes the row's own hash: the next event names it.
    rehashed = _event_id(su, "r2", 5)
    _superuser(su, """UPDATE audit_events SET outcome = 'PAID', hash = encode(sha256(convert_to(
        prev_hash || rx_audit_canonical(run_id, chain_seq, seq, claim_id, stage, 'PAID', codes,
        attempt, trace_id, payload_hash, schema_version, matrix_version, at, detail), 'UTF8')),
        'hex') WHERE id = %s""", (rehashed,))  # fmt: skip
    check = roles.fleet.verify("r2")
    assert check.misfit is not None and check.misfit.chain_seq == 6
    assert "prev_hash" in check.misfit.why
    # A deleted event: the one after the gap.
    _superuser(su, "DELETE FROM audit_events WHERE id = %s", (_event_id(su, "r3", 100),))
    check = roles.fleet.verify("r3")
    assert check.misfit is not None and check.misfit.chain_seq == 101
    assert "missing" in check.misfit.why


def test_batches_of_one_run_recorded_at_once_make_one_chain(roles: Roles) -> None:
    roles.fleet.create_run("r1", inputs="claims.jsonl")
    writers = [
        threading.Thread(target=roles.fleet.record, args=("r1", *batch(range(s, s + 50))))
        for s in range(0, 400, 50)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    check = roles.fleet.verify("r1")
    assert check.intact and check.checked == 400 * 6, check.line()


def test_db_upgrade_and_audit_verify_from_the_cli(roles: Roles, pg_server: LocalPostgres) -> None:
    env = base_env(RXFLEET_DATABASE_URL=roles.fleet.url,
                   RXFLEET_DATABASE_OWNER_URL=roles.owner.url)  # fmt: skip
    upgrade = run_cli(env, "db", "upgrade", timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"{roles.fleet_role} on audit_events: SELECT, INSERT\n" in upgrade.stdout
    assert f"{roles.fleet_role} on results: SELECT, INSERT, UPDATE, DELETE\n" in upgrade.stdout
    assert "warning" not in upgrade.stderr
    roles.fleet.create_run("r1", inputs="claims.jsonl")
    roles.fleet.record("r1", *batch(range(5)))
    fleet_only = {k: v for k, v in env.items() if k != "RXFLEET_DATABASE_OWNER_URL"}
    verify = run_cli(fleet_only, "audit", "verify", timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert "run r1: 30 events intact" in verify.stdout
    edited = _event_id(roles.superuser_url, "r1", 3)
    _superuser(roles.superuser_url, "UPDATE audit_events SET codes = '{}' WHERE id = %s",
               (edited,))  # fmt: skip
    broken = run_cli(fleet_only, "audit", "verify", "r1", timeout=120)
    assert broken.returncode == 1
    assert f"run r1: BROKEN: event {edited} (claim CLM000000, seq 0" in broken.stdout
    single = run_cli(base_env(RXFLEET_DATABASE_URL=roles.owner.url), "db", "upgrade")
    assert single.returncode == 0 and "RXFLEET_DATABASE_OWNER_URL" in single.stderr
