"""Why a connection to PostgreSQL failed, in one line that never quotes the URL."""

from __future__ import annotations

import psycopg
import pytest

from rxfleet.stores.pg import busy, connect_cause, is_away

URL = "postgresql://fleet:s3cret-pw@db.example:6543/claims"
PREFIX = 'connection failed: connection to server at "10.0.0.9", port 6543 failed: '


@pytest.mark.parametrize(
    ("server", "said", "waits"),
    [
        ("FATAL:  sorry, too many clients already", "no free connection slot", True),
        (
            "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER "
            "attribute",
            "no free connection slot",
            True,
        ),
        ("FATAL:  the database system is starting up", "starting up", True),
        ("FATAL:  the database system is in recovery mode", "recovering", True),
        ("Connection refused\n\tIs the server running on that host?", "connection refused", False),
        (
            'FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "fleet"',
            'the server said: no pg_hba.conf entry for host "10.0.0.1", user "fleet"',
            False,
        ),
    ],
)
def test_a_failed_connection_names_its_cause(server: str, said: str, waits: bool) -> None:
    exc = psycopg.OperationalError(PREFIX + server)
    cause = connect_cause(exc, URL)
    assert cause is not None and said in cause
    assert "s3cret-pw" not in cause
    assert busy(exc) is waits and is_away(exc)


def test_a_failure_that_says_nothing_known_names_nothing() -> None:
    assert connect_cause(psycopg.OperationalError("connection is lost"), URL) is None
