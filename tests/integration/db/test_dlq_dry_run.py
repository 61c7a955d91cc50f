"""``rxfleet dlq replay --dry-run`` and the letter filters, as a user runs them on a
real PostgreSQL (no Redis: a dry run reads the system of record only)."""

from __future__ import annotations

import json
import subprocess

import psycopg

from bench.harness import base_env, run_cli
from rxfleet.stores.database import Database, DeadLetter, ResultRow


def letter(seq: int, claim_id: str, codes: list[str], reason: str, keep: bool) -> DeadLetter:
    return DeadLetter(seq=seq, route="HOST_ERROR", claim_id=claim_id, source="c.jsonl",
                      line=seq + 1, status="REJECTED", codes=codes, reason=reason,
                      record={"claim_id": claim_id} if keep else None)  # fmt: skip


def _cli(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(base_env(RXFLEET_DATABASE_URL=db.url), *args, timeout=120)


def test_dry_run_lists_the_matching_letters_and_changes_nothing(db: Database) -> None:
    db.create_run("r1", inputs="c.jsonl")
    letters = [letter(0, "A", ["99"], "RETRIES_EXHAUSTED", True),
               letter(1, "B", ["99"], "ABORTED", True),
               letter(2, "C", ["75"], "PAYER", False),
               letter(3, "D", ["99"], "RETRIES_EXHAUSTED", True)]  # fmt: skip
    rows = [ResultRow(seq=d.seq, status="REJECTED", claim_id=d.claim_id) for d in letters]
    db.record("r1", rows, dead_letters=letters)
    everything = "SELECT run_id, seq, replayed_at, replay_run_id FROM dead_letters ORDER BY id"
    with psycopg.connect(db.url) as conn:
        before = conn.execute(everything).fetchall()
    done = _cli(db, "dlq", "replay", "--dry-run", "--run", "r1", "--code", "99",
                "--reason", "retries_exhausted")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["claim_id"] for line in done.stdout.splitlines()] == ["A", "D"]
    assert "2 claims would be replayed" in done.stderr and "nothing was replayed" in done.stderr
    every = _cli(db, "dlq", "replay", "--dry-run")
    assert [json.loads(line)["claim_id"] for line in every.stdout.splitlines()] == ["A", "B", "D"]
    assert "1 more match but cannot be replayed" in every.stderr
    one = _cli(db, "dlq", "replay", "--dry-run", "--claim", "B")
    assert [json.loads(line)["claim_id"] for line in one.stdout.splitlines()] == ["B"]
    with psycopg.connect(db.url) as conn:
        assert conn.execute(everything).fetchall() == before
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_an_unknown_run_or_reason_is_bad_usage(db: Database) -> None:
    missing = _cli(db, "dlq", "replay", "--dry-run", "--run", "nosuch")
    assert missing.returncode == 2 and "no run nosuch in the database" in missing.stderr
    bogus = _cli(db, "dlq", "replay", "--dry-run", "--reason", "bogus")
    assert bogus.returncode == 2 and "--reason" in bogus.stderr
