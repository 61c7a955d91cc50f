"""The database and the operator. PostgreSQL stopped, killed (SIGKILL of the
postmaster), made read-only and restarted while ``rxfleet run`` is producing: the CLI
and the workers reconnect, the run exits 0, every claim once, none adjudicated twice;
the CLI says once that the database is away and once that it is back. Redis back
empty while the CLI follows a run: the CLI picks the run up itself. Ctrl-C while
producing: the line names ``rxfleet resume RUN``, and that command finishes the run.

The fleet's PostgreSQL is a private server of this module's own (the session's shared
one is never stopped). Each fault test prints the time the run took to finish after
its fault ended (``-s``)."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bench.harness import Fleet, procfile_fleet, wait_for
from rxfleet.embedded.postgres_server import LocalPostgres, memory_dir
from rxfleet.embedded.redis_server import LocalRedis
from tests.integration.survive.support import exactly_once, exit_after_interrupt, start_run

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SETTINGS = {
    "RXFLEET_MAX_INFLIGHT": "40",  # the producer is still reading when the fault comes
    "RXFLEET_SUBMIT_CONCURRENCY": "4",
    "RXFLEET_CPU_CONCURRENCY": "2",
    "RXFLEET_SWEEP_INTERVAL": "5",
    "RXFLEET_DATABASE_OUTAGE": "60",
}


@pytest.fixture(scope="module")
def database() -> Iterator[LocalPostgres]:
    # Durable commits: a SIGKILLed server must not lose what it acknowledged (with
    # synchronous_commit off, as the other tests' servers run, it may lose the last).
    server = LocalPostgres(base_dir=memory_dir(), durable_commits=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fleet(database: LocalPostgres) -> Iterator[Fleet]:
    with procfile_fleet(
        server=LocalRedis(binary=shutil.which("redis-server"), appendonly=True),
        database_url=database.url,
        extra_env=SETTINGS,
        supervised=True,
    ) as fleet:
        yield fleet


def _read_only(server: LocalPostgres, on: bool) -> None:
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        value = "on" if on else "off"
        conn.execute(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
        conn.execute("SELECT pg_reload_conf()")


def _stopped(server: LocalPostgres) -> None:
    server.halt()
    time.sleep(4)
    server.restart()


def _killed(server: LocalPostgres) -> None:
    server.halt(kill=True)
    time.sleep(3)
    server.restart()


def _made_read_only(server: LocalPostgres) -> None:
    _read_only(server, True)
    time.sleep(4)
    _read_only(server, False)


def _restarted(server: LocalPostgres) -> None:
    server.halt()
    server.restart()


FAULTS: dict[str, Callable[[LocalPostgres], None]] = {
    "stopped": _stopped,
    "killed": _killed,
    "read_only": _made_read_only,
    "restarted": _restarted,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_run_rides_through_the_database(
    fleet: Fleet, database: LocalPostgres, tmp_path: Path, fault: str
) -> None:
    ids, out, run, run_id = start_run(fleet, tmp_path, f"DB{fault[:2].upper()}", 200)
    wait_for(lambda: fleet.results_count(run_id) >= 20, 60, "first results")
    FAULTS[fault](database)
    ended = time.monotonic()
    _, stderr = run.communicate(timeout=240)
    after = time.monotonic() - ended
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr
    away, back = stderr.count("the database is away"), stderr.count("the database is back")
    if fault == "read_only":
        # reads still work: the CLI meets the period only if it writes (a producer's
        # checkpoint) or connects during it, and it may be waiting for room all along;
        # the workers' connections must be dropped and reopened, or the run never ends
        assert away == back <= 1, stderr
    else:  # the CLI's own connection is cut: it says so once, and once that it is back
        assert away == back == 1, stderr
    exactly_once(fleet, out, ids)
    print(f"\nPostgreSQL {fault}: run finished {after:.1f} s after the fault ended")


def _state(fleet: Fleet, run_id: str) -> str:
    with psycopg.connect(fleet.database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT state FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        return str(row[0]) if row else ""


def test_ctrl_c_while_producing_names_resume_and_resume_finishes_the_run(
    fleet: Fleet, tmp_path: Path
) -> None:
    """It used to name `rxfleet wait RUN`, which can never finish a run whose input was
    not all enqueued."""
    ids, out, run, run_id = start_run(fleet, tmp_path, "CTRLC", 300)
    wait_for(lambda: fleet.results_count(run_id) >= 20, 60, "first results")
    assert _state(fleet, run_id) == "producing"  # 40 in flight at most: still reading
    run.send_signal(signal.SIGINT)
    stderr = exit_after_interrupt(run)
    assert run.returncode == 130 and "Traceback" not in stderr  # Ctrl-C: 128 + SIGINT
    assert f"`rxfleet resume {run_id}` finishes it" in stderr, stderr
    assert "rxfleet wait" not in stderr
    resumed = fleet.cli("resume", run_id, "-o", str(out))
    assert resumed.returncode == 0, resumed.stderr
    exactly_once(fleet, out, ids)


def test_redis_back_empty_the_cli_picks_the_run_up_itself(fleet: Fleet, tmp_path: Path) -> None:
    """It used to say "following the run again" and wait forever: the claims in flight
    were gone with Redis, and only `rxfleet resume` could send them again."""
    fleet.env["RXFLEET_MAX_INFLIGHT"] = "5000"  # this producer enqueues the whole input
    try:
        ids, out, run, run_id = start_run(fleet, tmp_path, "EMPTY", 600)
    finally:
        fleet.env["RXFLEET_MAX_INFLIGHT"] = SETTINGS["RXFLEET_MAX_INFLIGHT"]
    wait_for(lambda: _state(fleet, run_id) == "produced", 60, "the input enqueued")
    wait_for(lambda: fleet.results_count(run_id) >= 20, 60, "first results")
    fleet.server.kill()
    fleet.server.restart(empty=True)
    ended = time.monotonic()
    _, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr
    assert "Redis no longer holds the run (restarted empty): picking it up again" in stderr
    assert "claims needed enqueueing again" in stderr, stderr
    exactly_once(fleet, out, ids)
    print(f"\nRedis back empty: run finished {time.monotonic() - ended:.1f} s after")
