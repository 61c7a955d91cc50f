"""The audit trail's hash chain at size: ``python -m bench.audit_chain [--claims 10000]``.

A private PostgreSQL with the two roles of ``rxfleet db upgrade`` (an owner, the
fleet's role); the fleet's role records CLAIMS claims (six audit events each, as
the record link writes them) in batches of 500 from four threads at once, like
four record workers on one run. Then ``rxfleet audit verify RUN`` (the CLI, as the
fleet's role) checks the chain; a superuser edits one event and verify must name
it (exit 1). Prints the record time with the chain, the same batches' time with
the events copied straight into the table (the cost before the chain), and the
verify time.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable

import psycopg

from bench.harness import base_env, run_cli
from rxfleet.embedded.postgres_server import local_postgres
from rxfleet.stores.database import AuditEvent, Database, ResultRow

STAGES = ("ingested", "validated", "mapped", "sent", "routed", "recorded")
BATCH, WRITERS = 500, 4


def rows(seqs: range) -> tuple[list[ResultRow], list[AuditEvent]]:
    results = [ResultRow(seq=s, status="PAID", claim_id=f"C{s:07d}") for s in seqs]
    events = [AuditEvent(seq=s, stage=stage, claim_id=f"C{s:07d}", codes=["00"],
                         trace_id="bench", detail={"route": "CLEAN"})
              for s in seqs for stage in STAGES]  # fmt: skip
    return results, events


def timed_writers(claims: int, write: Callable[[range], object]) -> float:
    """Seconds for WRITERS threads to write every batch of ``claims`` between them."""
    batches = [range(s, min(s + BATCH, claims)) for s in range(0, claims, BATCH)]
    share = [batches[i::WRITERS] for i in range(WRITERS)]
    threads = [threading.Thread(target=lambda b=b: [write(x) for x in b]) for b in share]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def _copy_straight(owner_url: str, run_id: str) -> Callable[[range], object]:
    """The events as they were written before the chain: COPY into audit_events."""
    local = threading.local()

    def write(seqs: range) -> None:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(owner_url, autocommit=True)
        with (
            local.conn.transaction(),
            local.conn.cursor().copy(
                "COPY audit_events (run_id, seq, claim_id, stage, codes, trace_id, detail) "
                "FROM STDIN"
            ) as copy,
        ):
            for event in rows(seqs)[1]:
                copy.write_row((run_id, event.seq, event.claim_id, event.stage, event.codes,
                                event.trace_id, '{"route": "CLEAN"}'))  # fmt: skip

    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=10_000)
    claims = parser.parse_args().claims
    with local_postgres() as server:
        server.create_role("bench_owner", createrole=True)
        server.create_database("bench", owner="bench_owner")
        owner = Database(server.url_for("bench", "bench_owner"))
        owner.upgrade()
        fleet_url = server.url_for("bench", "bench_fleet")
        owner.secure(fleet_url, 2190)
        fleet = Database(fleet_url)
        fleet.create_run("chained", inputs="bench")
        chained = timed_writers(claims, lambda s: fleet.record("chained", *rows(s)))
        straight = timed_writers(claims, _copy_straight(owner.url, "straight"))
        env = base_env(RXFLEET_DATABASE_URL=fleet_url)
        start = time.perf_counter()
        verify = run_cli(env, "audit", "verify", "chained", timeout=900)
        verified = time.perf_counter() - start
        print(verify.stdout.strip())
        assert verify.returncode == 0, verify.stderr
        _edit_one(server.url_for("bench"), claims * len(STAGES) // 2)
        broken = run_cli(env, "audit", "verify", "chained", timeout=900)
        print(broken.stdout.strip())
        assert broken.returncode == 1 and "BROKEN: event" in broken.stdout
        events = claims * len(STAGES)
        print(f"{claims} claims, {events} events, {WRITERS} writers: recorded with the chain "
              f"in {chained:.2f} s; the same events copied without it in {straight:.2f} s; "
              f"`rxfleet audit verify` {verified:.2f} s (CLI start included)")  # fmt: skip


def _edit_one(superuser_url: str, chain_seq: int) -> None:
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        conn.execute("UPDATE audit_events SET outcome = 'edited' WHERE run_id = 'chained' "
                     "AND chain_seq = %s", (chain_seq,))  # fmt: skip
        conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


if __name__ == "__main__":
    main()
