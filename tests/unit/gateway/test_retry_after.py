"""parse_retry_after: RFC 9110 section 10.2.3, delta-seconds or HTTP-date."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxfleet.gateway.client import parse_retry_after

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("+7", 7.0),
    ],
)
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_http_date_in_the_future() -> None:
    value = formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(value, NOW) == pytest.approx(90.0)


def test_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after(formatdate(NOW - 3600, usegmt=True), NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [
        "Fri, 15 Jan 2027 08:01:00 GMT",  # IMF-fixdate
        "Friday, 15-Jan-27 08:01:00 GMT",  # obsolete RFC 850
        "Fri Jan 15 08:01:00 2027",  # obsolete asctime
        "Fri, 15 Jan 2027 08:01:00 -0000",  # no zone claimed: read as UTC
    ],
)
def test_http_date_formats(value: str) -> None:
    assert parse_retry_after(value, NOW) == pytest.approx(60.0)


@pytest.mark.parametrize(
    "value", [None, "", "soon", "1e3", "nan", "inf", "0x10", "1_000", "12 seconds", "Fri, 99 Foo"]
)
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(st.text(max_size=60))
def test_never_raises_and_never_negative(value: str) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or seconds >= 0
