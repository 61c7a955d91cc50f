"""Beat exactly once: two ``celery beat`` processes of the Procfile started by mistake
on one Redis; only the lease holder sends anything, the other waits as a standby and
takes over when the first is killed (SIGKILL: no goodbye, its lease runs out)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bench.harness import Fleet, procfile_fleet, wait_for
from rxfleet.embedded.postgres_server import LocalPostgres
from tests.integration.conftest import new_database

LEASE = 3.0  # RXFLEET_BEAT_LEASE: renewed every second
SENT = "Sending due task sweep-stalled-batches"


@pytest.fixture
def beats(pg_server: LocalPostgres) -> Iterator[Fleet]:
    settings = {"RXFLEET_BEAT_LEASE": str(LEASE), "RXFLEET_SWEEP_INTERVAL": "1"}
    with procfile_fleet(
        workers=False, database_url=new_database(pg_server), extra_env=settings
    ) as fleet:
        yield fleet


def _log(fleet: Fleet, name: str) -> str:
    return (fleet.tmp / f"{name}.log").read_text(errors="replace")


def test_two_beats_schedule_once_and_the_standby_takes_over(beats: Fleet) -> None:
    beats.start("beat")
    wait_for(lambda: _log(beats, "beat").count(SENT) >= 1, 60, "the first beat scheduling")
    assert "holds the beat lease" in _log(beats, "beat")
    beats.start("beat2", RXFLEET_BEAT_SCHEDULE=str(beats.tmp / "beat2-schedule"))
    wait_for(lambda: "standby" in _log(beats, "beat2"), 60, "the second beat as standby")
    sent = _log(beats, "beat").count(SENT)
    time.sleep(3 * LEASE)  # three lease lengths side by side
    assert _log(beats, "beat").count(SENT) >= sent + 3  # the holder goes on scheduling
    assert SENT not in _log(beats, "beat2")  # the standby sent nothing at all
    beats.kill("beat")
    killed = time.monotonic()
    wait_for(lambda: SENT in _log(beats, "beat2"), 4 * LEASE, "the standby taking over")
    assert time.monotonic() - killed <= LEASE + LEASE / 3 + 2  # the lease ran out, then a tick
    assert "holds the beat lease" in _log(beats, "beat2")


def test_a_beat_stopped_cleanly_hands_over_at_once(beats: Fleet) -> None:
    beats.start("beat", RXFLEET_BEAT_LEASE="30")  # a lease far longer than the hand-over
    wait_for(lambda: SENT in _log(beats, "beat"), 60, "the first beat scheduling")
    beats.start("beat2", RXFLEET_BEAT_LEASE="30",
                RXFLEET_BEAT_SCHEDULE=str(beats.tmp / "beat2-schedule"))  # fmt: skip
    wait_for(lambda: "standby" in _log(beats, "beat2"), 60, "the second beat as standby")
    beats.stop("beat")  # SIGTERM: the beat gives its lease up as it goes
    wait_for(lambda: SENT in _log(beats, "beat2"), 20, "the standby taking over")  # not 30 s
