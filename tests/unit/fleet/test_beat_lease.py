"""The beat lease: one holder at a time, renewed by it, free again when it lets go or
stops renewing (the real-process test: tests/integration/test_beat_once.py)."""

from __future__ import annotations

import fakeredis

from rxfleet.stores.beat import BeatLease


def test_one_holder_renews_the_other_waits(fake: fakeredis.FakeRedis) -> None:
    first, second = BeatLease(fake, "t", "a", ttl=30), BeatLease(fake, "t", "b", ttl=30)
    assert first.hold() and not second.hold()
    assert first.hold()  # renewed
    assert second.holder() == "a" and first.every == 10


def test_released_or_expired_the_lease_passes_to_the_standby(fake: fakeredis.FakeRedis) -> None:
    first, second = BeatLease(fake, "t", "a", ttl=30), BeatLease(fake, "t", "b", ttl=30)
    first.hold()
    second.release()  # not its lease: nothing happens
    assert first.holder() == "a"
    first.release()
    assert second.hold() and second.holder() == "b"
    fake.delete(second.key)  # as if its TTL ran out
    assert first.hold()


def test_the_lease_expires_unless_renewed(fake: fakeredis.FakeRedis) -> None:
    lease = BeatLease(fake, "t", "a", ttl=15)
    lease.hold()
    assert 14_000 < int(fake.pttl(lease.key)) <= 15_000
