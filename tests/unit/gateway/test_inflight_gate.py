"""A sender's gate (a limit that changes while held) and the period it reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from rxfleet.errors import GatewayTimeout, GatewayUnavailable, RateLimited
from rxfleet.gateway.inflight import Gate, Tally, overloaded

Holder = Callable[..., Coroutine[Any, Any, None]]


def _holders(gate: Gate, seen: list[str]) -> Holder:
    """A request that notes its name once it holds a slot (and holds it until ``hold``)."""

    async def one(name: str, rank: float = 0.0, hold: asyncio.Event | None = None) -> None:
        async with gate.slot(rank):
            seen.append(name)
            if hold is not None:
                await hold.wait()

    return one


def test_a_shrunk_gate_lets_no_one_in_until_enough_have_left() -> None:
    async def scenario() -> list[str]:
        gate, seen = Gate(3), []
        held = [asyncio.Event() for _ in range(3)]

        async def holder(i: int) -> None:
            async with gate:
                seen.append(f"in{i}")
                await held[i].wait()

        async def late() -> None:
            async with gate:
                seen.append("late")

        tasks = [asyncio.create_task(holder(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        await gate.resize(1)
        waiter = asyncio.create_task(late())
        held[0].set()
        held[1].set()
        await asyncio.sleep(0.01)
        seen.append("two left")  # one still holds: the late one may not enter yet
        held[2].set()
        await asyncio.gather(*tasks, waiter)
        assert gate.waited and gate.busy == 0
        return seen

    assert asyncio.run(scenario()) == ["in0", "in1", "in2", "two left", "late"]


def test_a_grown_gate_lets_the_waiters_in_at_once() -> None:
    async def scenario() -> int:
        gate, release = Gate(1), asyncio.Event()
        inside = 0

        async def holder() -> None:
            nonlocal inside
            async with gate:
                inside += 1
                await release.wait()

        tasks = [asyncio.create_task(holder()) for _ in range(4)]
        await asyncio.sleep(0.01)
        await gate.resize(4)
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(*tasks)
        return inside

    assert asyncio.run(scenario()) == 4


def test_only_a_429_or_503_without_retry_after_is_an_overload() -> None:
    assert overloaded(RateLimited("x", retry_after=None), 429)
    assert overloaded(GatewayUnavailable("x", retry_after=None), 503)
    assert not overloaded(RateLimited("x", retry_after=2.0), 429)  # a pause, not a cut
    assert not overloaded(GatewayUnavailable("connection reset"), None)  # no answer at all
    assert not overloaded(GatewayUnavailable("x", retry_after=None), 502)
    assert not overloaded(GatewayTimeout("x"), None)


def test_a_period_counts_overloads_apart_from_the_latency() -> None:
    tally = Tally()
    tally.observe(0.2, overload=False, busy=10)
    tally.observe(0.001, overload=True, busy=149)
    tally.observe(0.002, overload=True, busy=120)
    tally.observe(0.4, overload=False, busy=9)
    period = tally.period(wanted=True)
    assert (period.sent, period.overloaded, period.at_overload) == (4, 2, 150)
    assert period.latency is not None and abs(period.latency - 0.3) < 1e-9
    assert Tally().period(wanted=False).latency is None


def test_a_freed_slot_goes_to_the_oldest_waiter_not_to_a_newcomer() -> None:
    async def scenario() -> list[str]:
        gate, seen, release = Gate(1), list[str](), asyncio.Event()
        one = _holders(gate, seen)
        first = asyncio.create_task(one("first", hold=release))
        await asyncio.sleep(0.01)
        waiters = [asyncio.create_task(one(f"batch A {i}")) for i in range(3)]
        await asyncio.sleep(0.01)
        release.set()  # the slot frees as batch B's requests arrive: A's go first
        later = [asyncio.create_task(one(f"batch B {i}")) for i in range(2)]
        await asyncio.gather(first, *waiters, *later)
        assert gate.busy == 0
        return seen

    assert asyncio.run(scenario()) == [
        "first", "batch A 0", "batch A 1", "batch A 2", "batch B 0", "batch B 1"
    ]  # fmt: skip


def test_a_cancelled_waiter_gives_its_turn_on() -> None:
    async def scenario() -> list[str]:
        gate, seen, release = Gate(1), list[str](), asyncio.Event()
        one = _holders(gate, seen)
        first = asyncio.create_task(one("first", hold=release))
        await asyncio.sleep(0.01)
        gone, kept = asyncio.create_task(one("gone")), asyncio.create_task(one("kept"))
        await asyncio.sleep(0.01)
        gone.cancel()
        release.set()
        await asyncio.gather(first, kept)
        assert gone.cancelled() and gate.busy == 0
        return seen

    assert asyncio.run(scenario()) == ["first", "kept"]


def test_a_lower_rank_waiting_goes_before_an_older_waiter_of_a_higher_one() -> None:
    """A worker's oldest batch (the lowest rank) takes the freed slots first, even for
    a window it hands over after a younger batch's window began to wait."""

    async def scenario() -> list[str]:
        gate, seen, release = Gate(1), list[str](), asyncio.Event()
        one = _holders(gate, seen)
        first = asyncio.create_task(one("old batch, window 1", 1.0, release))
        await asyncio.sleep(0.01)
        young = [asyncio.create_task(one(f"young batch {i}", 2.0)) for i in range(2)]
        await asyncio.sleep(0.01)
        old = asyncio.create_task(one("old batch, window 2", 1.0))
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, *young, old)
        assert gate.busy == 0
        return seen

    assert asyncio.run(scenario()) == [
        "old batch, window 1", "old batch, window 2", "young batch 0", "young batch 1"
    ]  # fmt: skip
