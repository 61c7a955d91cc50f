"""Workers and producers SIGKILLed mid-run; a poison batch that kills its worker each time:
every claim once, none adjudicated twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from bench.harness import Fleet, wait_for
from tests.integration.survive.support import (
    claims,
    exactly_once,
    results_reach,
    run_id_of,
    run_started,
    start_run,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_producer_killed_mid_enqueue_then_the_same_command_again(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids = claims(tmp_path / "claims.jsonl", "P", 400)
    out = tmp_path / "out.jsonl"
    args = ("run", str(tmp_path / "claims.jsonl"), "-o", str(out), "--batch-size", "20")
    chaos.env["RXFLEET_MAX_INFLIGHT"] = "60"  # backpressure: the producer is mid-file for a while
    try:
        first = chaos.popen(*args)
        run_id = run_started(first)
        wait_for(lambda: chaos.results_count(run_id) >= 40, 60, "first results")
        first.kill()  # SIGKILL mid-enqueue
        first.communicate()
        assert chaos.results_count(run_id) < 400
        listed = chaos.cli("runs")
        assert listed.returncode == 0 and run_id in listed.stdout
        again = chaos.cli(*args)
    finally:
        chaos.env.pop("RXFLEET_MAX_INFLIGHT")
    assert again.returncode == 0, again.stderr
    assert f"picking up run {run_id}" in again.stderr
    assert "needed enqueueing again" in again.stderr
    exactly_once(chaos, out, ids)
    audit = chaos.cli("audit", run_id)
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    ingested = [e["seq"] for e in events if e["stage"] == "ingested"]
    assert sorted(ingested) == list(range(400))  # no claim enqueued twice


def test_submit_worker_killed_then_restarted_finishes_within_two_minutes(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids, out, run, run_id = start_run(chaos, tmp_path, "W", 400)
    wait_for(lambda: chaos.results_count(run_id) >= 60, 60, "first results")
    chaos.kill("submit1")  # the supervisor starts it again
    killed = time.monotonic()
    _, stderr = run.communicate(timeout=150)
    after = time.monotonic() - killed
    assert run.returncode == 0, stderr
    assert after < 120
    exactly_once(chaos, out, ids)
    print(f"\nsubmit worker SIGKILLed: run finished {after:.1f} s after the kill")


def test_the_cpu_worker_killed_again_and_again_while_it_records_leaves_each_result_once(
    chaos: Fleet, tmp_path: Path
) -> None:
    """SIGKILL of the worker that runs the record link (its pool children and all), three
    times while results are being written: the database holds each claim once, with one
    ``recorded`` audit event each."""
    ids, out, run, run_id = start_run(chaos, tmp_path, "K", 300)
    for round_ in range(3):
        wait_for(results_reach(chaos, run_id, 20 * (round_ + 1)), 90, "results")
        chaos.kill("cpu")  # the supervisor starts it again
    _, stderr = run.communicate(timeout=150)
    assert run.returncode == 0, stderr
    exactly_once(chaos, out, ids)
    with psycopg.connect(chaos.database_url) as conn:
        recorded = conn.execute(
            "SELECT claim_id, count(*) FROM audit_events WHERE run_id = %s AND stage = "
            "'recorded' GROUP BY claim_id",
            (run_id,),
        ).fetchall()
    assert len(recorded) == len(ids) and {n for _, n in recorded} == {1}


def test_the_cpu_worker_killed_while_it_ingests_slices_loses_and_repeats_nothing(
    chaos: Fleet, tmp_path: Path
) -> None:
    """The producer ships slices under a narrow window (so the cpu worker is ingesting
    them all run long) and the cpu worker is SIGKILLed three times: every claim is
    ingested once (one ``ingested`` audit event each) and ends once."""
    chaos.env["RXFLEET_MAX_INFLIGHT"] = "60"
    try:
        ids, out, run, run_id = start_run(chaos, tmp_path, "I", 400)
        for round_ in range(3):
            wait_for(results_reach(chaos, run_id, 40 * (round_ + 1)), 90, "results")
            chaos.kill("cpu")  # the supervisor starts it again
        _, stderr = run.communicate(timeout=150)
    finally:
        chaos.env.pop("RXFLEET_MAX_INFLIGHT")
    assert run.returncode == 0, stderr
    exactly_once(chaos, out, ids)
    audit = chaos.cli("audit", run_id)
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    assert sorted(e["seq"] for e in events if e["stage"] == "ingested") == list(range(400))


def test_a_poison_batch_ends_in_the_dead_letters_and_the_run_completes(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids = claims(tmp_path / "claims.jsonl", "X", 100, poison_at=40)
    out = tmp_path / "out.jsonl"
    done = chaos.cli("run", str(tmp_path / "claims.jsonl"), "-o", str(out), "--batch-size", "20")
    assert done.returncode == 0, done.stderr
    rows = exactly_once(chaos, out, ids)
    poisoned = [r for r in rows if r["claim_id"] in ids[40:60]]
    assert all(r["reject_codes"] == ["99"] for r in poisoned)
    run_id = run_id_of(done.stderr)
    letters = [
        json.loads(line) for line in chaos.cli("dlq", "list", "--run", run_id).stdout.splitlines()
    ]
    assert sorted(d["claim_id"] for d in letters if d["reason"] == "POISON") == sorted(ids[40:60])
    log = (chaos.tmp / "cpu.log").read_text()
    assert log.count("exited with 'exitcode 70'") >= 3  # killed on each delivery
