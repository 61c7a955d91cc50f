"""The system of record's figures on a private PostgreSQL.

    python -m bench.pg_bench [--batches 40] [--starts 3]

Prints: server start time (cold initdb, and copying the cached template),
``Database.record()`` throughput for batches of 500 claims with 6 audit
events each (one thread, then two threads on different batches), and the
``Database.results()`` streaming rate over 100k rows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from rxfleet.embedded import postgres_server
from rxfleet.embedded.postgres_server import LocalPostgres, local_postgres, memory_dir
from rxfleet.stores.database import AuditEvent, Database, DeadLetter, ResultRow

STAGES = ("ingested", "validated", "mapped", "sent", "routed", "recorded")
BATCH = 500


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def start_times(starts: int) -> None:
    def once(cache: bool, base: Path | None = None) -> float:
        server = LocalPostgres(use_cache=cache, base_dir=base)
        elapsed = timed(server.start)
        server.stop()
        return elapsed

    shutil.rmtree(postgres_server.CACHE_DIR, ignore_errors=True)
    cold = [once(False) for _ in range(starts)]
    once(True)  # builds the template
    warm = [once(True) for _ in range(starts)]
    print(f"start, cold initdb : median {statistics.median(cold):.3f} s  {_fmt(cold)}")
    print(f"start, from cache  : median {statistics.median(warm):.3f} s  {_fmt(warm)}")
    shm = memory_dir()
    if shm is not None:
        fast = [once(True, shm) for _ in range(starts)]
        print(f"start, cache+tmpfs : median {statistics.median(fast):.3f} s  {_fmt(fast)}")


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


def make_batch(first: int) -> tuple[list[ResultRow], list[AuditEvent], list[DeadLetter]]:
    seqs = range(first, first + BATCH)
    results = [
        ResultRow(
            seq=s,
            status="PAID" if s % 5 else "REJECTED",
            claim_id=f"CLM{s:08d}",
            severity="INFO",
            ndc11="00093005001",
            gpi="27250050000350",
            reject_codes=[] if s % 5 else ["75"],
            route="PAID",
            patient_token=f"tok_{s:08d}",
            attempts=1,
        )
        for s in seqs
    ]
    events = [
        AuditEvent(
            seq=s,
            stage=st,
            claim_id=f"CLM{s:08d}",
            outcome="ok",
            attempt=1,
            trace_id="trace-1",
            payload_hash="ab" * 32,
            schema_version="1",
            matrix_version="2026.1",
            detail={"ms": 3},
        )
        for s in seqs
        for st in STAGES
    ]
    dead = [DeadLetter(seq=s, route="REVIEW_REQUIRED", codes=["75"]) for s in seqs if s % 5 == 0]
    return results, events, dead


def record_rate(db: Database, run_id: str, batches: int, threads: int) -> None:
    db.create_run(run_id, inputs="bench")
    prepared = [make_batch(i * BATCH) for i in range(batches)]
    chunks = [prepared[i::threads] for i in range(threads)]

    def work(mine: list[tuple[list[ResultRow], list[AuditEvent], list[DeadLetter]]]) -> None:
        for results, events, dead in mine:
            db.record(run_id, results, events, dead)

    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]

    def run_all() -> None:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    elapsed = timed(run_all)
    claims = batches * BATCH
    print(
        f"record, {threads} thread(s)  : {claims / elapsed:,.0f} claims/s "
        f"({claims * len(STAGES) / elapsed:,.0f} audit events/s; "
        f"{elapsed / batches * threads * 1000:.1f} ms per batch of {BATCH})"
    )


def stream_rate(db: Database) -> None:
    db.create_run("stream", inputs="bench")
    with psycopg.connect(db.url) as conn:
        conn.execute(
            """INSERT INTO results (run_id, seq, claim_id, status, patient_token, errors)
            SELECT 'stream', s, 'CLM' || s, 'PAID', 'tok_' || s, '{E1}'
            FROM generate_series(0, 99999) s"""
        )
    count = 0

    def drain() -> None:
        nonlocal count
        count = sum(1 for _ in db.results("stream"))

    elapsed = timed(drain)
    print(f"results() stream   : {count / elapsed:,.0f} rows/s ({count:,} rows in {elapsed:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    start_times(args.starts)
    with local_postgres() as server, Database(server.url) as db:
        db.upgrade()
        record_rate(db, "one", args.batches, 1)
        record_rate(db, "two", args.batches, 2)
        stream_rate(db)


if __name__ == "__main__":
    main()
