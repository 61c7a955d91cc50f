"""The sync's pacing: X-RateLimit-Remaining/Reset before a 429, Retry-After after one."""

from __future__ import annotations

import pytest

from rxfleet.gateway.pacing import MARGIN, Pacer, RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_go_at_once_while_the_window_has_requests_left() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    assert pacer.observe(RateLimit(remaining=5, reset=0.8)) == 0
    assert pacer.delay() == 0


def test_the_last_request_of_a_window_holds_the_next_until_the_window_resets() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    assert pacer.observe(RateLimit(remaining=0, reset=0.8)) == pytest.approx(0.8 + MARGIN)
    assert pacer.delay() == pytest.approx(0.8 + MARGIN)
    clock.now += 0.5
    assert pacer.delay() == pytest.approx(0.3 + MARGIN)
    clock.now += 1
    assert pacer.delay() == 0
    assert pacer.paced == pytest.approx(0.8 + MARGIN)


def test_a_reserve_keeps_requests_in_hand() -> None:
    pacer = Pacer(reserve=2, clock=Clock())
    assert pacer.observe(RateLimit(remaining=3, reset=1)) == 0
    assert pacer.observe(RateLimit(remaining=2, reset=1)) > 0


def test_without_headers_nothing_is_held() -> None:
    pacer = Pacer(clock=Clock())
    assert pacer.observe(RateLimit()) == 0
    assert pacer.observe(RateLimit(remaining=0)) == 0  # no reset: nothing to wait for
    assert pacer.delay() == 0


def test_retry_after_holds_for_its_seconds_capped() -> None:
    clock = Clock()
    pacer = Pacer(retry_after_cap=10, clock=clock)
    assert pacer.refused(2.5) == 2.5
    assert pacer.delay() == pytest.approx(2.5)
    assert pacer.refused(3600) == 10


def test_without_retry_after_the_hold_backs_off_exponentially_and_resets_on_success() -> None:
    pacer = Pacer(backoff_base=1, backoff_cap=8, clock=Clock())
    holds = [pacer.refused(None) for _ in range(5)]
    assert 0.5 <= holds[0] <= 1 and 1 <= holds[1] <= 2 and 2 <= holds[2] <= 4
    assert all(h <= 8 for h in holds)
    pacer.observe(RateLimit())
    assert pacer.failures == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "0.25"}, RateLimit(7, 0.25)),
        ({"X-RateLimit-Remaining": "x", "X-RateLimit-Reset": "-1"}, RateLimit()),
        ({}, RateLimit()),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000000030"}, RateLimit(0, 30)),
    ],
)
def test_rate_limit_headers_are_read_or_ignored(
    headers: dict[str, str], expected: RateLimit
) -> None:
    assert RateLimit.of(headers, now=1_000_000_000) == expected
