"""The sync's cursor logic: what to acknowledge, each claim's cursor, the day's run."""

from __future__ import annotations

from typing import Any

from rxfleet.gateway.pacing import RateLimit
from rxfleet.gateway.portal import Page
from rxfleet.sync import ack_point, page_cursors, utc_day


def _row(pos: int, recorded: bool, ack: str | None = "own") -> dict[str, Any]:
    return {"pos": pos, "recorded": recorded, "ack_cursor": f"c{pos}" if ack else None}


def test_acknowledges_through_the_last_recorded_claim_of_the_unbroken_prefix() -> None:
    rows = [_row(1, True), _row(2, True), _row(3, False), _row(4, True)]
    assert ack_point(rows) == (2, "c2")  # 4 is recorded, but 3 is not: never past 3


def test_nothing_to_acknowledge_while_the_oldest_is_not_recorded() -> None:
    assert ack_point([_row(1, False), _row(2, True)]) is None
    assert ack_point([]) is None


def test_acknowledges_only_where_a_cursor_can_say_so() -> None:
    rows = [_row(1, True), _row(2, True, ack=None), _row(3, True, ack=None), _row(4, False)]
    assert ack_point(rows) == (1, "c1")


def _page(claims: list[dict[str, Any]], cursor: str | None) -> Page:
    return Page(claims, cursor, RateLimit())


def test_each_claim_keeps_its_own_cursor_and_loses_it_from_its_fields() -> None:
    claims = [{"claim_id": "A", "cursor": "c1"}, {"claim_id": "B", "cursor": "c2"}]
    assert page_cursors(_page(claims, "c2")) == [("c1", "c1"), ("c2", "c2")]
    assert claims == [{"claim_id": "A"}, {"claim_id": "B"}]  # never ingested as a field


def test_without_own_cursors_only_the_page_cursor_acknowledges_the_last_claim() -> None:
    claims: list[dict[str, Any]] = [{"claim_id": "A"}, {"claim_id": "B"}, {"claim_id": "C"}]
    assert page_cursors(_page(claims, "p9")) == [("p9#1", None), ("p9#2", None), ("p9#3", "p9")]


def test_runs_are_per_utc_day() -> None:
    assert utc_day(0) == "1970-01-01"
    assert utc_day(86_399.9) == "1970-01-01" and utc_day(86_400) == "1970-01-02"
