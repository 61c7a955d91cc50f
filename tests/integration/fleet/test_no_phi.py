"""No raw PHI anywhere the fleet writes: Redis (broker, result backend, stores),
the database (every column of every row of every table), logs, and the task
events that Flower displays. Proven by scanning for the
sample's known raw values after a real run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from tests.db_scan import phi_in_database
from tests.integration.fleet.fleet_support import SAMPLE, Fleet
from tests.integration.fleet.sample_facts import distinctive_phi, read_sample
from tests.phi_scan import dump_values, leaks

pytestmark = pytest.mark.integration


@pytest.fixture
def events(fleet: Fleet) -> Iterator[list[str]]:
    """Capture every Celery task event during the test (what Flower is fed)."""
    from workers.app import app

    seen: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        with app.connection_for_read() as connection:
            receiver = app.events.Receiver(
                connection, handlers={"*": lambda e: seen.append(str(e))}
            )
            while not stop.is_set():
                try:
                    receiver.capture(limit=None, timeout=0.2, wakeup=False)
                except TimeoutError:
                    continue
                except OSError:
                    continue

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join(5)


def test_no_raw_phi_in_redis_logs_or_events(
    clean_fleet: Fleet, events: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    phi = distinctive_phi(read_sample(SAMPLE))
    assert len(phi) > 500  # cardholder ids, last names, dates of birth
    with caplog.at_level(logging.DEBUG):
        result = clean_fleet.run(SAMPLE, batch_size=250)
    assert len(clean_fleet.results(result.run_id)) == read_sample(SAMPLE).lines
    assert len(events) > 20, "no task events captured: the scan below would prove nothing"
    assert caplog.records, "no log records captured"
    assert leaks(dump_values(clean_fleet.client), phi) == set()
    assert phi_in_database(clean_fleet.settings.database_url or "", phi) == set()
    assert leaks((r.getMessage() for r in caplog.records), phi) == set()
    assert leaks(events, phi) == set()


def test_the_scan_finds_phi_when_it_is_there(clean_fleet: Fleet) -> None:
    """The scanner is not blind: a planted raw value is found."""
    phi = sorted(distinctive_phi(read_sample(SAMPLE)))[:3]
    clean_fleet.client.hset("rx:test:planted", "value", f"xx{phi[0]}yy")
    try:
        assert leaks(dump_values(clean_fleet.client), set(phi)) == {phi[0]}
    finally:
        clean_fleet.client.delete("rx:test:planted")
