"""A host whose clock is off: a process started with this directory on ``PYTHONPATH``
reads ``time.time`` (and ``time.time_ns``) ``SKEWED_CLOCK_OFFSET`` seconds off the
real clock, Redis's included; monotonic time is left alone, as NTP leaves it."""

from __future__ import annotations

import os
import time

_OFFSET = float(os.environ.get("SKEWED_CLOCK_OFFSET", "0"))
_time, _time_ns = time.time, time.time_ns


def _skewed() -> float:
    return _time() + _OFFSET


def _skewed_ns() -> int:
    return _time_ns() + int(_OFFSET * 1e9)


if _OFFSET:
    time.time = _skewed
    time.time_ns = _skewed_ns
