"""GPI: 14 digits, seven two-digit levels."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxfleet.claims.gpi import GPI_LEVELS, Gpi, is_gpi14, split_gpi


def test_split_names_the_seven_levels() -> None:
    gpi = split_gpi("39400010100310")
    assert gpi == Gpi("39", "40", "00", "10", "10", "03", "10")
    assert gpi.group == "39" and gpi.class_ == "40" and gpi.strength == "10"
    assert len(GPI_LEVELS) == len(Gpi._fields) == 7


@pytest.mark.parametrize(
    "value",
    [
        "",
        "3940001010031",
        "394000101003100",
        "3940001010031X",
        "3940-0010-1003",
        " " * 14,
        # Medi-Span GPI: drug group (first level) 01-99; all zero is a placeholder.
        "00000000000000",
    ],
)
def test_not_a_gpi14(value: str) -> None:
    assert not is_gpi14(value)
    with pytest.raises(ValueError, match="14 digits"):
        split_gpi(value)


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from("0123456789"), min_size=14, max_size=14))
def test_levels_join_back_to_the_gpi(value: str) -> None:
    assert is_gpi14(value) is (value != "0" * 14)
    if value == "0" * 14:
        return
    levels = split_gpi(value)
    assert "".join(levels) == value
    assert all(len(level) == 2 for level in levels)
