"""A host whose clock is off: a process started with this directory on ``PYTHONPATH``
reads ``time.time`` (and ``time.time_ns``) ``SKEWED_CLOCK_OFFSET`` seconds off the
real clock, Redis's included; monotonic time is left alone, as NTP leaves it. With
``SKEWED_CLOCK_FILE`` the offset is that file's number, read again every 0.2 s: a
test steps the clock of a process while it runs."""

from __future__ import annotations

import os
import time

_OFFSET = float(os.environ.get("SKEWED_CLOCK_OFFSET", "0"))
_FILE = os.environ.get("SKEWED_CLOCK_FILE", "")
_time, _time_ns, _monotonic = time.time, time.time_ns, time.monotonic
_read: list[float] = [-1.0, _OFFSET]  # when the file was last read, its offset


def _offset() -> float:
    if _FILE and _monotonic() - _read[0] > 0.2:
        try:
            with open(_FILE) as file:
                _read[1] = float(file.read().strip() or 0)
        except (OSError, ValueError):
            pass
        _read[0] = _monotonic()
    return _read[1]


def _skewed() -> float:
    return _time() + _offset()


def _skewed_ns() -> int:
    return _time_ns() + int(_offset() * 1e9)


if _OFFSET or _FILE:
    time.time = _skewed
    time.time_ns = _skewed_ns
