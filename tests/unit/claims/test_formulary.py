"""Formulary events: what the webhook accepts as an event, and the entries it sets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.claims.formulary import EventRefused, parse_event

CHANGE = {"ndc11": "00071015523", "gpi14": "39400010100310", "covered": False, "tier": 3,
          "prior_auth": True, "step_therapy": False, "quantity_limit": "30"}  # fmt: skip


def event(**over: Any) -> dict[str, Any]:
    base = {"event_id": "evt-1", "sequence": 1, "published_at": "2026-12-04T10:00:00Z",
            "changes": [CHANGE]}  # fmt: skip
    return {**base, **over}


def test_an_event_parses_to_the_entries_it_sets() -> None:
    parsed = parse_event(json.dumps(event()).encode())
    assert (parsed.event_id, parsed.sequence) == ("evt-1", 1)
    (entry,) = parsed.entries()
    assert entry == CrosswalkEntry(ndc11="00071015523", gpi14="39400010100310", covered=False,
                                   tier=3, prior_auth=True, quantity_limit="30")  # fmt: skip
    assert CrosswalkEntry.from_json(entry.to_json()) == entry  # covered=False survives Redis


def test_a_covered_entry_round_trips_without_the_flag() -> None:
    entry = CrosswalkEntry(ndc11="00071015523", gpi14="39400010100310", tier=0)
    assert "covered" not in entry.to_json() and entry.to_json()["tier"] == 0
    assert CrosswalkEntry.from_json(entry.to_json()) == entry


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (json.dumps(event(sequence=0)).encode(), "sequence"),
        (json.dumps(event(sequence="1x")).encode(), "sequence"),
        (json.dumps(event(event_id="")).encode(), "event_id"),
        (json.dumps(event(event_id="a b")).encode(), "event_id"),
        (json.dumps(event(published_at="yesterday")).encode(), "published_at"),
        (json.dumps(event(changes=[])).encode(), "changes"),
        (json.dumps(event(changes=[CHANGE, CHANGE])).encode(), "changes"),
        (json.dumps(event(changes=[{**CHANGE, "ndc11": "123"}])).encode(), "changes.0.ndc11"),
        (json.dumps(event(changes=[{**CHANGE, "gpi14": "1" * 13}])).encode(), "changes.0.gpi14"),
        (
            json.dumps(event(changes=[{**CHANGE, "quantity_limit": "-1"}])).encode(),
            "changes.0.quantity_limit",
        ),
        (
            json.dumps(
                event(changes=[{k: v for k, v in CHANGE.items() if k != "covered"}])
            ).encode(),
            "changes.0.covered",
        ),
        (json.dumps({**event(), "extra": 1}).encode(), "extra"),
    ],
)
def test_a_body_that_is_not_an_event_is_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(EventRefused) as refused:
        parse_event(body)
    assert refused.value.field == field
