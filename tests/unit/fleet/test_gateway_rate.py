"""The fleet's gateway rate: a slot only for now, at least one interval after the last
(on the server's clock, shared by every worker), and the rate in force for stats."""

from __future__ import annotations

import time

import fakeredis

from rxfleet.stores.rate import PACE, GatewayRate, rate_in_force

RATE = 10.0
INTERVAL = 1 / (RATE * PACE)


def test_a_slot_is_granted_now_and_the_next_one_interval_later(
    fake: fakeredis.FakeRedis,
) -> None:
    rate = GatewayRate(fake, RATE, "t")
    assert rate.take().granted
    refused = rate.take()
    assert not refused.granted and 0 < refused.seconds <= INTERVAL
    time.sleep(refused.seconds)
    assert rate.take().granted


def test_a_late_sender_takes_one_slot_not_the_ones_it_missed(
    fake: fakeredis.FakeRedis,
) -> None:
    rate = GatewayRate(fake, RATE, "t")
    assert rate.take().granted
    time.sleep(3 * INTERVAL)  # three slots' time passed unused
    assert rate.take().granted
    assert not rate.take().granted  # no catch-up burst


def test_two_workers_share_one_schedule(fake: fakeredis.FakeRedis) -> None:
    one, other = GatewayRate(fake, RATE, "t"), GatewayRate(fake, RATE, "t")
    assert one.take().granted
    assert not other.take().granted
    assert GatewayRate(fake, RATE, "elsewhere").take().granted  # another prefix, its own


def test_the_rate_in_force_is_what_workers_last_sent_at(fake: fakeredis.FakeRedis) -> None:
    assert rate_in_force(fake, "t") is None
    GatewayRate(fake, 12.5, "t").take()
    assert rate_in_force(fake, "t") == 12.5
    assert rate_in_force(fake, "other") is None
