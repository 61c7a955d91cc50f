"""A small run of bench/fuzz.py: mutated inputs of every format, through reader ->
check_phi -> split_phi -> validate -> gateway body: no crash outside the error tree,
no record lost where countable (the full run: ``python bench/fuzz.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from rxfleet.formats import Format

_PATH = Path(__file__).resolve().parents[3] / "bench" / "fuzz.py"
_SPEC = importlib.util.spec_from_file_location("rxfleet_bench_fuzz", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
fuzz = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = fuzz  # dataclasses look their module up
_SPEC.loader.exec_module(fuzz)


@pytest.mark.parametrize("fmt", list(Format), ids=str)
def test_small_fuzz_has_no_crash_and_loses_nothing(fmt: Format) -> None:
    figures = fuzz.fuzz_format(fmt, n=600, seconds=2.5, seed=3)
    assert figures.inputs >= 100
    assert figures.crashes == 0, figures.first_crash
    assert figures.lost == 0
    assert figures.slowest < 1.0


@pytest.mark.parametrize("shape", list(fuzz.EDGE_SHAPES))
def test_edge_shapes_have_no_crash_and_lose_nothing(shape: str) -> None:
    figures = fuzz.fuzz_edges(shape, n=150, seconds=2.5, seed=5)
    assert figures.inputs >= 30
    assert figures.crashes == 0, figures.first_crash
    assert figures.lost == 0
