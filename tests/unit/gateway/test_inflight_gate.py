"""A sender's gate (a limit that changes while held) and the period it reports."""

from __future__ import annotations

import asyncio

from rxfleet.errors import GatewayTimeout, GatewayUnavailable, RateLimited
from rxfleet.gateway.inflight import Gate, Tally, overloaded


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
