"""Issue 10: a run survives everything. A real redis-server (AOF, fsync always),
PostgreSQL, the sandbox gateway with 20% faults (5% responses lost after
adjudication, 5% connections dropped before, 10% 503 without Retry-After), and
the Procfile's worker lines as separate processes, killed at will.

Every test sends its own claims (its own claim ids: the gateway's per-key counts
stay per test) and proves the same end: every claim exactly once in the results,
none adjudicated twice. The big figures come from ``bench/chaos.py --scenario survive``.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from bench.harness import FLOWER_AUTH, Fleet, procfile_fleet, wait_for, workers_answer
from rxfleet.claims import synth
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from tests.integration.chaos_app import LEAKED_VALUE
from tests.integration.conftest import new_database

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

FAULTS = {
    "seed": 10,
    "drops": [{"rate": 0.05, "after_adjudication": True}, {"rate": 0.05}],
    "throttles": [{"status": 503, "rate": 0.10, "retry_after": None}],
    "latency_ms": 15,
}
SETTINGS = {
    "RXFLEET_VISIBILITY_TIMEOUT": "30",
    "RXFLEET_COUNTDOWN_MAX": "5",
    "RXFLEET_LINK_TIME_LIMIT": "10",
    "RXFLEET_LINK_SOFT_TIME_LIMIT": "8",
    "RXFLEET_BACKOFF_BASE": "0.2",
    "RXFLEET_BACKOFF_CAP": "2",
    "RXFLEET_MAX_DELIVERIES": "3",
    "RXFLEET_SWEEP_INTERVAL": "5",
    "RXFLEET_STALL_SECONDS": "40",
    "RXFLEET_TOKEN_CHECK_INTERVAL": "1",
    "RXFLEET_SUBMIT_CONCURRENCY": "4",
    "RXFLEET_CPU_CONCURRENCY": "2",
    # A killed submit worker's claims stay leased for 4 x (connect + read timeout): the
    # defaults (3.05 + 15 s) made every kill wait 72 s; the sandbox answers in 15 ms.
    "RXFLEET_CONNECT_TIMEOUT": "1",
    "RXFLEET_READ_TIMEOUT": "3",
}


@pytest.fixture(scope="module")
def chaos(pg_server: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The Procfile's processes on the chaos app, under a supervisor that restarts a
    worker, beat or gateway that exits on its own, as the process supervisor of a
    production fleet does (docs/operations.md): a worker may die of an unrecoverable
    broker error while Redis is away."""
    scenario = tmp_path_factory.mktemp("survive") / "faults.json"
    scenario.write_text(json.dumps(FAULTS))
    with procfile_fleet(
        scenario=scenario,
        server=LocalRedis(binary=shutil.which("redis-server"), appendonly=True),
        database_url=new_database(pg_server),
        extra_env=SETTINGS,
        flower=True,
        supervised=True,
        app="tests.integration.chaos_app",
    ) as fleet:
        yield fleet


def _claims(path: Path, prefix: str, n: int, poison_at: int | None = None) -> list[str]:
    def poison(index: int, claim: dict[str, Any]) -> None:
        if index == poison_at:
            claim["claim_id"] = f"POISON{index:05d}"

    return synth.write_claims(
        path, n, seed=prefix, claim_id=lambda i: f"{prefix}{i:05d}", edit=poison
    )


def _start_run(
    chaos: Fleet, tmp_path: Path, prefix: str, n: int, *options: str
) -> tuple[list[str], Path, subprocess.Popen[str], str]:
    """``n`` claims run in batches of 20 with ``options``: (ids, output, process, run id)."""
    ids = _claims(tmp_path / "claims.jsonl", prefix, n)
    out = tmp_path / "out.jsonl"
    args = ("run", str(tmp_path / "claims.jsonl"), "-o", str(out), "--batch-size", "20")
    run = chaos.popen(*args, *options)
    return ids, out, run, _started(run)


def _results_reach(fleet: Fleet, run_id: str, count: int) -> Callable[[], bool]:
    return lambda: fleet.results_count(run_id) >= count


def _run_id(stderr: str) -> str:
    found = re.search(r"rxfleet: (?:run|picking up run) (\S+)", stderr)
    assert found, stderr
    return found.group(1)


def _exactly_once(fleet: Fleet, out: Path, ids: list[str]) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["claim_id"] for r in rows) == sorted(ids)  # each claim once, none missing
    assert all(r["status"] for r in rows)
    keys = fleet.gateway_keys()
    twice = [k for k in ids if keys.get(k, {}).get("adjudications", 0) > 1]
    assert twice == []
    return rows


def _started(proc: subprocess.Popen[str]) -> str:
    """The run id, from the first line of stderr (printed before any claim is read)."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    return _run_id(line)


def test_producer_killed_mid_enqueue_then_the_same_command_again(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids = _claims(tmp_path / "claims.jsonl", "P", 400)
    out = tmp_path / "out.jsonl"
    args = ("run", str(tmp_path / "claims.jsonl"), "-o", str(out), "--batch-size", "20")
    chaos.env["RXFLEET_MAX_INFLIGHT"] = "60"  # backpressure: the producer is mid-file for a while
    try:
        first = chaos.popen(*args)
        run_id = _started(first)
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
    _exactly_once(chaos, out, ids)
    audit = chaos.cli("audit", run_id)
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    ingested = [e["seq"] for e in events if e["stage"] == "ingested"]
    assert sorted(ingested) == list(range(400))  # no claim enqueued twice


def test_submit_worker_killed_then_restarted_finishes_within_two_minutes(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids, out, run, run_id = _start_run(chaos, tmp_path, "W", 400)
    wait_for(lambda: chaos.results_count(run_id) >= 60, 60, "first results")
    chaos.kill("submit1")  # the supervisor starts it again
    killed = time.monotonic()
    _, stderr = run.communicate(timeout=150)
    after = time.monotonic() - killed
    assert run.returncode == 0, stderr
    assert after < 120
    _exactly_once(chaos, out, ids)
    print(f"\nsubmit worker SIGKILLed: run finished {after:.1f} s after the kill")


def test_the_cpu_worker_killed_again_and_again_while_it_records_leaves_each_result_once(
    chaos: Fleet, tmp_path: Path
) -> None:
    """SIGKILL of the worker that runs the record link (its pool children and all), three
    times while results are being written: the database holds each claim once, with one
    ``recorded`` audit event each."""
    ids, out, run, run_id = _start_run(chaos, tmp_path, "K", 300)
    for round_ in range(3):
        wait_for(_results_reach(chaos, run_id, 20 * (round_ + 1)), 90, "results")
        chaos.kill("cpu")  # the supervisor starts it again
    _, stderr = run.communicate(timeout=150)
    assert run.returncode == 0, stderr
    _exactly_once(chaos, out, ids)
    with psycopg.connect(chaos.database_url) as conn:
        recorded = conn.execute(
            "SELECT claim_id, count(*) FROM audit_events WHERE run_id = %s AND stage = "
            "'recorded' GROUP BY claim_id",
            (run_id,),
        ).fetchall()
    assert len(recorded) == len(ids) and {n for _, n in recorded} == {1}


def test_redis_killed_and_restarted_with_aof_the_one_run_goes_on(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids, out, run, run_id = _start_run(chaos, tmp_path, "A", 300)
    wait_for(lambda: chaos.results_count(run_id) >= 40, 60, "first results")
    chaos.server.kill()
    time.sleep(3)
    chaos.server.restart()
    _, stderr = run.communicate(timeout=150)
    assert run.returncode == 0, stderr
    assert "Redis is away" in stderr and "Redis is back" in stderr
    _exactly_once(chaos, out, ids)


def test_redis_restarted_empty_resume_finishes_from_the_database(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids, out, run, run_id = _start_run(chaos, tmp_path, "E", 300, "--timeout", "20")
    wait_for(lambda: chaos.results_count(run_id) >= 40, 60, "first results")
    chaos.server.kill()
    chaos.server.restart(empty=True)
    run.send_signal(signal.SIGINT)  # it cannot finish: the claims in flight are gone
    _exit_after_interrupt(run)
    resumed = chaos.cli("resume", run_id, "-o", str(out))
    assert resumed.returncode == 0, resumed.stderr
    found = re.search(r"(\d+) claims needed enqueueing again", resumed.stderr)
    assert found and int(found.group(1)) > 0, resumed.stderr
    _exactly_once(chaos, out, ids)
    print(f"\nRedis restarted empty: {found.group(1)} claims re-produced by resume")


def test_a_poison_batch_ends_in_the_dead_letters_and_the_run_completes(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids = _claims(tmp_path / "claims.jsonl", "X", 100, poison_at=40)
    out = tmp_path / "out.jsonl"
    done = chaos.cli("run", str(tmp_path / "claims.jsonl"), "-o", str(out), "--batch-size", "20")
    assert done.returncode == 0, done.stderr
    rows = _exactly_once(chaos, out, ids)
    poisoned = [r for r in rows if r["claim_id"] in ids[40:60]]
    assert all(r["reject_codes"] == ["99"] for r in poisoned)
    run_id = _run_id(done.stderr)
    letters = [
        json.loads(line) for line in chaos.cli("dlq", "list", "--run", run_id).stdout.splitlines()
    ]
    assert sorted(d["claim_id"] for d in letters if d["reason"] == "POISON") == sorted(ids[40:60])
    log = (chaos.tmp / "cpu.log").read_text()
    assert log.count("exited with 'exitcode 70'") >= 3  # killed on each delivery


def test_two_runs_of_the_same_input_at_once_send_once(chaos: Fleet, tmp_path: Path) -> None:
    ids = _claims(tmp_path / "claims.jsonl", "T", 200)
    outs = [tmp_path / "one.jsonl", tmp_path / "two.jsonl"]
    runs = [chaos.popen("run", str(tmp_path / "claims.jsonl"), "-o", str(o)) for o in outs]
    finished = [run.communicate(timeout=150) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], finished
    stderr = "".join(err for _, err in finished)
    # The second joins the first's run: it follows the producer, or (the first already
    # done producing) picks the run up and finds nothing to enqueue again.
    assert "following it" in stderr or "0 claims needed enqueueing again" in stderr
    assert len({_run_id(err) for _, err in finished}) == 1
    for out in outs:
        _exactly_once(chaos, out, ids)


def _failed_tasks(flower: str) -> list[dict[str, Any]]:
    tasks = requests.get(f"{flower}/api/tasks", auth=FLOWER_AUTH, timeout=30).json()
    return [t for t in tasks.values() if t.get("state") == "FAILURE"]


def _exit_after_interrupt(run: subprocess.Popen[str]) -> str:
    """The stderr of a process that should end within 10 s of its SIGINT; if it does not,
    the test fails with the stack of each of its threads (faulthandler on SIGABRT)."""
    try:
        return run.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGABRT)
        dump = run.communicate(timeout=10)[1]
        pytest.fail(f"no exit within 10 s of SIGINT; its threads:\n{dump}")


def test_no_worker_is_named_and_ctrl_c_exits_fast(chaos: Fleet, tmp_path: Path) -> None:
    _claims(tmp_path / "claims.jsonl", "N", 50)
    chaos.stop("cpu")
    chaos.env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT dumps every thread, should it hang
    run = chaos.popen("run", str(tmp_path / "claims.jsonl"))
    try:
        started = time.monotonic()
        assert run.stderr is not None
        lines: list[str] = []
        while "no worker consumes queue" not in "".join(lines):
            lines.append(run.stderr.readline())
        assert time.monotonic() - started < 10.5  # said within ~10 s of the command starting
        assert "no worker consumes queue rxfleet.cpu" in lines[-1]
        run.send_signal(signal.SIGINT)
        sent = time.monotonic()
        rest = _exit_after_interrupt(run)
        assert time.monotonic() - sent < 5
        assert run.returncode == 1 and "Traceback" not in rest
        assert len(rest.strip().splitlines()) == 1 and "interrupted" in rest
    finally:
        chaos.env.pop("PYTHONFAULTHANDLER")
        if run.poll() is None:
            run.kill()
        run.communicate()
        chaos.start("cpu")
        wait_for(lambda: workers_answer(chaos.env, 2), 60, "the workers")


def test_a_link_failing_with_text_that_quotes_phi_leaks_it_nowhere(
    chaos: Fleet, tmp_path: Path
) -> None:
    """The failure's text never reaches the result backend, Flower's task page or the
    worker's log: what crosses Celery is LinkFailed, a code and the batch's ids."""
    source = tmp_path / "claims.jsonl"
    ids = _claims(source, "LEAK", 5)
    lines = [json.loads(line) for line in source.read_text().splitlines()]
    lines[0]["cardholder_id"] = LEAKED_VALUE
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = chaos.popen("run", str(source), "--timeout", "8")
    run_id = _started(run)
    flower = f"http://127.0.0.1:{chaos.env['RXFLEET_FLOWER_PORT']}"
    auth = FLOWER_AUTH
    wait_for(lambda: run_id in json.dumps(_failed_tasks(flower)), 60, "a failed task in Flower")
    run.send_signal(signal.SIGINT)  # the batch cannot pass validate: the run cannot finish
    _exit_after_interrupt(run)
    tasks = requests.get(f"{flower}/api/tasks", auth=auth, timeout=30).json()
    failed = [t for t in tasks.values() if t.get("state") == "FAILURE"]
    assert failed, "no failed task in Flower: the scan below would prove nothing"
    assert any("LinkFailed" in str(t.get("exception")) and run_id in str(t.get("exception"))
               for t in failed)  # fmt: skip
    pages = [requests.get(f"{flower}/task/{t['uuid']}", auth=auth, timeout=30).text
             for t in failed]  # fmt: skip
    client = chaos.redis_client()
    backend = [str(client.get(k)) for k in client.scan_iter("celery-task-meta-*")]
    logs = [p.read_text(errors="replace") for p in chaos.tmp.glob("*.log")]
    assert any("LinkFailed" in text for text in logs)
    for haystack in (pages, backend, logs, [json.dumps(tasks)]):
        assert not any(LEAKED_VALUE in text for text in haystack)
    assert ids
