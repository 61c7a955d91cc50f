"""Redis killed (AOF), restarted empty, full (OOM) and set to evict; two runs of one
input, no worker and Ctrl-C, a failure text quoting PHI: every claim once, none
adjudicated twice, nothing leaked, an evicting Redis refused at start."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from bench.harness import FLOWER_AUTH, ROOT, Fleet, wait_for, workers_answer
from tests.integration.chaos_app import LEAKED_VALUE
from tests.integration.survive.support import (
    claims,
    exactly_once,
    exit_after_interrupt,
    failed_tasks,
    run_id_of,
    run_started,
    start_run,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_redis_killed_and_restarted_with_aof_the_one_run_goes_on(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids, out, run, run_id = start_run(chaos, tmp_path, "A", 300)
    wait_for(lambda: chaos.results_count(run_id) >= 40, 60, "first results")
    chaos.server.kill()
    time.sleep(3)
    chaos.server.restart()
    _, stderr = run.communicate(timeout=150)
    assert run.returncode == 0, stderr
    assert "Redis is away" in stderr and "Redis is back" in stderr
    exactly_once(chaos, out, ids)


def test_redis_restarted_empty_resume_finishes_from_the_database(
    chaos: Fleet, tmp_path: Path
) -> None:
    ids, out, run, run_id = start_run(chaos, tmp_path, "E", 300, "--timeout", "20")
    wait_for(lambda: chaos.results_count(run_id) >= 40, 60, "first results")
    chaos.server.kill()
    chaos.server.restart(empty=True)
    run.send_signal(signal.SIGINT)  # it cannot finish: the claims in flight are gone
    exit_after_interrupt(run)
    resumed = chaos.cli("resume", run_id, "-o", str(out))
    assert resumed.returncode == 0, resumed.stderr
    found = re.search(r"(\d+) claims needed enqueueing again", resumed.stderr)
    assert found and int(found.group(1)) > 0, resumed.stderr
    exactly_once(chaos, out, ids)
    print(f"\nRedis restarted empty: {found.group(1)} claims re-produced by resume")


def test_two_runs_of_the_same_input_at_once_send_once(chaos: Fleet, tmp_path: Path) -> None:
    ids = claims(tmp_path / "claims.jsonl", "T", 200)
    outs = [tmp_path / "one.jsonl", tmp_path / "two.jsonl"]
    runs = [chaos.popen("run", str(tmp_path / "claims.jsonl"), "-o", str(o)) for o in outs]
    finished = [run.communicate(timeout=150) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], finished
    stderr = "".join(err for _, err in finished)
    # The second joins the first's run: it follows the producer, or (the first already
    # done producing) picks the run up and finds nothing to enqueue again.
    assert "following it" in stderr or "0 claims needed enqueueing again" in stderr
    assert len({run_id_of(err) for _, err in finished}) == 1
    for out in outs:
        exactly_once(chaos, out, ids)


def test_no_worker_is_named_and_ctrl_c_exits_fast(chaos: Fleet, tmp_path: Path) -> None:
    claims(tmp_path / "claims.jsonl", "N", 50)
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
        rest = exit_after_interrupt(run)
        assert time.monotonic() - sent < 5
        assert run.returncode == 130 and "Traceback" not in rest  # 128 + SIGINT
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
    ids = claims(source, "LEAK", 5)
    lines = [json.loads(line) for line in source.read_text().splitlines()]
    lines[0]["cardholder_id"] = LEAKED_VALUE
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = chaos.popen("run", str(source), "--timeout", "8")
    run_id = run_started(run)
    flower = f"http://127.0.0.1:{chaos.env['RXFLEET_FLOWER_PORT']}"
    auth = FLOWER_AUTH
    wait_for(lambda: run_id in json.dumps(failed_tasks(flower)), 60, "a failed task in Flower")
    run.send_signal(signal.SIGINT)  # the batch cannot pass crosswalk: the run cannot finish
    exit_after_interrupt(run)
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


def test_an_evicting_redis_is_refused_at_start_with_one_line(chaos: Fleet) -> None:
    client = redis.Redis.from_url(chaos.redis_url)
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        listed = chaos.cli("runs")
        assert listed.returncode == 2, listed.stderr
        assert listed.stderr.strip().count("\n") == 0, listed.stderr
        assert "maxmemory-policy allkeys-lru" in listed.stderr and "noeviction" in listed.stderr
        worker = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "rxfleet.cpu",
             "-n", "evict@%h"],
            env=chaos.env, capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert worker.returncode != 0
        assert "maxmemory-policy allkeys-lru" in worker.stderr + worker.stdout
    finally:
        client.config_set("maxmemory-policy", "noeviction")


def test_a_full_redis_is_an_outage_ridden_through(chaos: Fleet, tmp_path: Path) -> None:
    """``maxmemory`` reached under ``noeviction``: every write is refused (OOM) for a
    while; the links wait it out like an outage, nothing lost, nothing sent twice."""
    ids, out, run, run_id = start_run(chaos, tmp_path, "M", 300)
    wait_for(lambda: chaos.results_count(run_id) >= 40, 60, "first results")
    client = redis.Redis.from_url(chaos.redis_url)
    client.config_set("maxmemory", "1")  # every write from now on: OOM
    full = time.monotonic()
    time.sleep(4)
    client.config_set("maxmemory", "0")
    try:
        _, stderr = run.communicate(timeout=150)
    finally:  # a run that did not finish must not outlive the test (the next ones share the fleet)
        run.kill()
    assert run.returncode == 0, stderr
    exactly_once(chaos, out, ids)
    print(f"\nRedis full 4 s: the run finished {time.monotonic() - full:.1f} s after")


SKEWED = ROOT / "tests" / "integration" / "skewed_clock"  # its sitecustomize moves the clock


def test_a_worker_whose_clock_steps_ten_minutes_while_running_takes_nothing_live(
    chaos: Fleet, tmp_path: Path
) -> None:
    """One more submit worker, its host clock stepped ten minutes ahead mid-run (after its
    start check passed): the fleet's clock is Redis's, so it hands out no live worker's
    message again (each message delivered once), marks no batch poison; every claim
    once, and the worker says once that its clock moved."""
    offset = tmp_path / "offset"
    offset.write_text("0")
    chaos.start("submit9", PORT="9", PYTHONPATH=str(SKEWED), SKEWED_CLOCK_FILE=str(offset))
    try:
        wait_for(lambda: workers_answer(chaos.env, 3), 60, "the third worker")
        # held 15 s: the batches wait as countdown retries, unacknowledged in the workers,
        # while the stepped worker looks for dead workers' messages (every 10 s)
        assert chaos.cli("pause", "--for", "15").returncode == 0
        offset.write_text("600")
        stepped = time.monotonic()
        ids, out, run, run_id = start_run(chaos, tmp_path, "K", 200)
        most = _most_deliveries(chaos, run_id, run)
        print(f"\nclock stepped: the run finished {time.monotonic() - stepped:.1f} s after "
              "(15 s of it paused)")  # fmt: skip
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
        rows = exactly_once(chaos, out, ids)
        assert most == 1, f"a message was delivered {most} times"
        assert not [r for r in rows if r.get("reason") == "POISON"]
        said = "this host's clock moved +600.0 s"
        log = chaos.tmp / "submit9.log"
        wait_for(lambda: said in log.read_text(errors="replace"), 15, "the step said")
        assert log.read_text(errors="replace").count(said) == 1
    finally:
        chaos.stop("submit9")


def _most_deliveries(chaos: Fleet, run_id: str, run: subprocess.Popen[str]) -> int:
    """The most deliveries of any one link message of the run, read while it runs (the
    count goes with the run's working memory when it ends); the stepped worker looks for
    dead workers' messages every 10 s."""
    client = chaos.redis_client()
    most = 0
    while run.poll() is None:
        for key in client.scan_iter(f"*:run:{run_id}:deliveries"):
            counts = client.hgetall(key)
            most = max([most, *(int(n) for m, n in counts.items() if "redrive" not in m)])
        time.sleep(0.2)
    return most
