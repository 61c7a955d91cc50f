"""The fleet's in-flight limit finds a gateway's concurrency cap: the submit worker's own
sender (``context.sender()``), a real redis-server holding the fleet's limit, and the
sandbox over real HTTP refusing (429, no Retry-After) whatever is above 150 at once."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.adaptive import measure

CAP = 150


def test_the_limit_settles_within_a_tenth_of_the_gateways_cap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = argparse.Namespace(cap=CAP, latency=300.0, seconds=16.0, threads=8)
    figures = measure(args, tmp_path, setenv=monkeypatch.setenv)
    second_half = [(at, n) for at, n in figures["limits"] if at >= args.seconds / 2]
    why = str({"second half": second_half, "statuses": figures["statuses"]})  # all of it
    assert abs(figures["settled_median"] - CAP) <= CAP // 10, why
    assert figures["settled_max"] <= CAP + 1  # found it, never far past it
    assert figures["refused_share"] < 0.01, figures["statuses"]
    assert figures["busiest"] == CAP  # the gateway was kept full
    assert figures["statuses"]["Adjudication"] > 2000
