"""No raw PHI anywhere the fleet writes: Redis (broker, result backend, stores),
the database (every column of every row of every table), logs, and the task
events that Flower displays. Proven by scanning for the
sample's known raw values after a real run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import ROOT
from tests.db_scan import phi_in_database
from tests.integration.fleet.fleet_support import SAMPLE, Fleet
from tests.integration.fleet.sample_facts import distinctive_phi, read_sample
from tests.phi_scan import dump_values, leaks, x12_patient_account_numbers

pytestmark = pytest.mark.integration

X12 = ROOT / "tests" / "resources" / "x12"
X12_DRUG = sorted((X12 / "837_005010X222A2").glob("demo.drug.*.837"))


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


def _distinctive(values: set[str]) -> set[str]:
    """Values no random token or timestamp contains by chance: 8 characters, or 6
    with a letter (a bare ``6721`` would be found in any hex dump)."""
    return {v for v in values if len(v) >= 8 or (len(v) >= 6 and not v.isdigit())}


def _on_a_drug_line(tmp_path: Path, clm01s: set[str]) -> list[Path]:
    """Example 10.1 once per CLM01 of the samples (most samples have no drug line)."""
    text = X12_DRUG[0].read_text(encoding="utf-8")
    assert "CLM*CLMNO12345*" in text
    paths = []
    for n, clm01 in enumerate(sorted(clm01s)):
        path = tmp_path / f"clm01-{n}.837"
        path.write_text(text.replace("CLM*CLMNO12345*", f"CLM*{clm01}*"), encoding="utf-8")
        paths.append(path)
    return paths


def test_no_x12_patient_account_number_in_results_logs_redis_or_events(
    clean_fleet: Fleet, events: list[str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """CLM01 (the patient account number) of every X12 sample, sent on the drug
    samples' lines, is kept only as a keyed token."""
    clm01s = _distinctive(x12_patient_account_numbers(sorted(X12.glob("*/*.837*"))))
    assert {"CLMNO12345", "R03996273 #01", "ABC123-RI"} <= clm01s and len(clm01s) > 12
    inputs = [*X12_DRUG, *_on_a_drug_line(tmp_path, clm01s - {"CLMNO12345"})]
    with caplog.at_level(logging.DEBUG):
        result = clean_fleet.run(*inputs, batch_size=10)
    rows = clean_fleet.results(result.run_id)
    assert len(rows) == 11 + len(clm01s) - 1 and len(X12_DRUG) == 3
    assert sum(r["status"] != "QUARANTINED" for r in rows) > len(clm01s)  # sent, not stopped
    assert len(events) > 5 and caplog.records
    assert leaks((str(row) for row in rows), clm01s) == set()
    assert leaks(dump_values(clean_fleet.client), clm01s) == set()
    assert phi_in_database(clean_fleet.settings.database_url or "", clm01s) == set()
    assert leaks((r.getMessage() for r in caplog.records), clm01s) == set()
    assert leaks(events, clm01s) == set()
