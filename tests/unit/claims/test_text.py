"""Control characters: what counts, the safe stand-ins (derived ids, escaped text)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxfleet.claims.fields import CLAIM_ID_PATTERN
from rxfleet.claims.text import (
    ESCAPED_MAX,
    derived_id,
    escaped,
    escaped_deep,
    fields_hold_control,
    has_control,
    holds_control,
    shown,
)
from rxfleet.stores.pg import refuses_value

CONTROLS = [chr(c) for c in range(0x20) if c != 0x09] + ["\x7f"]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"{ord(c):02x}" for c in CONTROLS])
def test_every_c0_control_but_tab_and_del_count(char: str) -> None:
    assert has_control(f"A{char}B")
    assert escaped(f"A{char}B") == f"A\\x{ord(char):02x}B"


@pytest.mark.parametrize("text", ["", "A\tB", "GARCIA, JR", "café", "日本", "\u0085"])
def test_tab_and_ordinary_text_do_not(text: str) -> None:
    assert not has_control(text)
    assert escaped(text) == text


def test_nested_values_are_searched_and_escaped() -> None:
    assert holds_control({"a": ["x", {"b": "y\x00"}]})
    assert holds_control({"k\x01": 1})
    assert not holds_control({"a": [1, 2.5, None, "ok"]})
    assert escaped_deep({"k\x01": ["v\x00", 3]}) == {"k\\x01": ["v\\x00", 3]}


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)  # fmt: skip


@given(st.dictionaries(st.text(max_size=6), _VALUES, max_size=6))
def test_one_search_over_the_fields_finds_what_each_field_holds(fields: dict[str, Any]) -> None:
    # The intake's fast path: one search over names and text values joined, nested values
    # one by one, says what the field-by-field check says.
    each = any(holds_control(k) or holds_control(v) for k, v in fields.items())
    assert fields_hold_control(fields) is each


@pytest.mark.parametrize("fields", [{"a": "x", "b\x00": 1}, {"a": "ok", "b": "\ud800"},
                                    {"a": ["x", {"k": "\x7f"}]}, {"a": "x\n"}])  # fmt: skip
def test_a_control_character_anywhere_in_the_fields_is_found(fields: dict[str, Any]) -> None:
    assert fields_hold_control(fields)
    assert not fields_hold_control({"a": "x", "b": 1, "c": None, "d": [1, "y"]})


def test_escaped_text_is_cut_short() -> None:
    assert len(escaped("\x00" * 9000)) == ESCAPED_MAX


@given(st.text(max_size=80), st.integers(min_value=1, max_value=10**9))
def test_a_derived_id_is_a_valid_claim_id(stem: str, line: int) -> None:
    name = derived_id(f"/in/{stem.replace('/', '')}.csv", line)
    assert re.fullmatch(CLAIM_ID_PATTERN, name), name
    assert name.endswith(f":{line}")


def test_a_derived_id_names_file_stem_and_line() -> None:
    assert derived_id("/data/claims 2026.jsonl", 17) == "claims_2026:17"


@pytest.mark.parametrize(
    ("sqlstate", "refused"),
    [
        ("22021", True),  # invalid byte sequence (a NUL)
        ("22P05", True),  # untranslatable character (\u0000 in jsonb)
        ("22001", True),  # string too long
        ("23502", True),  # not null
        ("23514", True),  # check
        ("23505", False),  # the idempotent conflict
        ("54000", True),  # index row too large
        ("08006", False),  # connection failure
        ("57P01", False),  # admin shutdown
        ("40P01", False),  # deadlock
        ("53300", False),  # too many connections
    ],
)
def test_which_sqlstates_refuse_a_value(sqlstate: str, refused: bool) -> None:
    assert refuses_value(psycopg.errors.lookup(sqlstate)()) is refused


def test_psycopgs_own_nul_refusal_counts() -> None:
    assert refuses_value(psycopg.DataError("PostgreSQL text fields cannot contain NUL"))
    assert not refuses_value(psycopg.OperationalError("connection refused"))


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        ("A\tB", "A\\x09B"),
        ("A\nB\x1b[2J", "A\\x0aB\\x1b[2J"),
        ("CSI\x9b2J", "CSI\\x9b2J"),  # C1: a terminal may take it as ESC [
        ("abc\u202edef", "abc\\u202edef"),  # a bidirectional override
        ("GARCIA, JR café 日本", "GARCIA, JR café 日本"),
    ],
)
def test_what_reaches_a_terminal_is_escaped_further(text: str, seen: str) -> None:
    assert escaped(text, terminal=True) == seen
    assert shown(text) == seen


def test_shown_takes_any_value() -> None:
    assert shown(None) == "" and shown(3) == "3"
