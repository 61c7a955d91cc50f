"""A small run of bench/fuzz.py: mutated inputs of every format, through reader ->
check_phi -> split_phi -> validate -> gateway body: no crash outside the error tree,
no record lost where countable (the full run: ``python -m bench.fuzz``)."""

from __future__ import annotations

import pytest

from bench.fuzz import EDGE_SHAPES, fuzz_edges, fuzz_format
from rxfleet.formats import Format


@pytest.mark.parametrize("fmt", list(Format), ids=str)
def test_small_fuzz_has_no_crash_and_loses_nothing(fmt: Format) -> None:
    figures = fuzz_format(fmt, n=600, seconds=2.5, seed=3)
    assert figures.inputs >= 100
    assert figures.crashes == 0, figures.first_crash
    assert figures.lost == 0
    assert figures.slowest < 1.0


@pytest.mark.parametrize("shape", list(EDGE_SHAPES))
def test_edge_shapes_have_no_crash_and_lose_nothing(shape: str) -> None:
    figures = fuzz_edges(shape, n=150, seconds=2.5, seed=5)
    assert figures.inputs >= 30
    assert figures.crashes == 0, figures.first_crash
    assert figures.lost == 0
