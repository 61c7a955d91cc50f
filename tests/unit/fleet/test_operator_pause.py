"""The operator's pause (``rxfleet pause`` / ``unpause``) against the gateway's pause:
neither ends, shortens or lengthens the other; the submit link sends under neither."""

from __future__ import annotations

import math
import time

import pytest

from rxfleet.cli import build_parser, duration
from rxfleet.errors import RateLimited
from rxfleet.links.submit import submit_batch
from rxfleet.links.submit.plan import HOLD_RECHECK
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore
from tests.unit.fleet.test_submit_link import ScriptedGateway, _ctx


def test_a_hold_without_end_lasts_until_released(pause: FleetPause) -> None:
    assert pause.held() is None
    pause.hold(None)
    held = pause.held()
    assert held is not None and held.until is None and math.isinf(held.remaining())
    assert held.as_dict()["seconds_left"] is None
    was = pause.release()
    assert was is not None and pause.held() is None
    assert pause.release() is None  # nothing to end


def test_a_hold_for_a_while_ends_by_itself(pause: FleetPause) -> None:
    pause.hold(30)
    held = pause.held()
    assert held is not None and 29 < held.remaining() <= 30
    assert 29_000 < int(pause.client.pttl(pause.hold_key)) <= 30_000  # Redis forgets it then


def test_a_later_pause_command_replaces_the_earlier(pause: FleetPause) -> None:
    pause.hold(None)
    pause.hold(5)
    held = pause.held()
    assert held is not None and held.remaining() <= 5


def test_the_gateways_pause_and_the_operators_never_end_each_other(pause: FleetPause) -> None:
    pause.hold(None)
    pause.lengthen(0.001)  # a short Retry-After neither shortens nor clears the hold
    assert pause.held() is not None
    pause.lengthen(30)
    pause.release()  # unpause leaves the gateway's pause to run its course
    assert 29 < pause.remaining() <= 30
    assert pause.held() is None


def test_a_read_begun_before_the_gateways_pause_ended_is_held_by_it(pause: FleetPause) -> None:
    """The planner's read counts from when it began: a pause that ended while the read was
    on its way still holds that window (a window sent then would have been gated inside
    the pause, by the audit's ``gate_at``); a read begun after the end is not held."""
    began = time.time()
    pause.lengthen(0.05)
    time.sleep(0.1)  # the pause is over before the read is answered
    pipe = pause.client.pipeline()
    from_start, from_now = pause.read(pipe, since=began), pause.read(pipe)
    replies = pipe.execute()
    assert 0 < from_start(replies) <= 0.05
    assert from_now(replies) == 0.0 and pause.remaining() == 0.0
    assert 0 < int(pause.client.pttl(pause.key)) <= 1_000  # then Redis forgets it


def test_nothing_is_sent_while_held_and_all_after_unpause(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 3)
    ctx.pause.hold(None)
    held = submit_batch(ctx, "R", range(3))
    assert held.reason == "paused by an operator" and gateway.sent == []
    assert held.retry is not None and held.retry.countdown == HOLD_RECHECK  # unpause heard soon
    assert held.retry.failures == 0  # a hold is no failure: retries are not used up
    ctx.pause.release()
    done = submit_batch(ctx, "R", range(3))
    assert done.done == 3 and len(gateway.sent) == 3


def test_a_short_hold_comes_back_when_it_ends(runs: RunStore, tokens: TokenStore) -> None:
    ctx = _ctx(runs, tokens, ScriptedGateway(), 1)
    ctx.pause.hold(0.3)
    held = submit_batch(ctx, "R", range(1))
    assert held.retry is not None and held.retry.countdown <= 0.3


def test_unpause_does_not_end_a_pause_the_gateway_asked_for(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C0": [RateLimited("slow down", retry_after=30.0)]})
    ctx = _ctx(runs, tokens, gateway, 2)
    submit_batch(ctx, "R", range(2))
    ctx.pause.hold(None)
    ctx.pause.release()
    again = submit_batch(ctx, "R", range(2))
    assert again.reason == "fleet pause" and len(gateway.sent) == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("0.5", 0.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds
    assert build_parser().parse_args(["pause", "--for", text]).duration == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "soon", "5d", "inf", "nan"])
def test_a_bad_duration_is_one_clear_line(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["pause", f"--for={text}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "not a duration" in err and "Traceback" not in err
