"""docs/protocol.md lists every fault knob of the sandbox, from the code's own table
(the scenario's dataclasses): a knob added without its doc fails here."""

from __future__ import annotations

import dataclasses
import json

import pytest

from config.settings import CONFIG_DIR
from rxfleet.gateway.sandbox.scenario import Drop, Override, Scenario, Storm, Throttle

DOC = CONFIG_DIR.parent / "docs" / "protocol.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Sandbox fault knobs")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


@pytest.mark.parametrize("kind", [Scenario, Storm, Throttle, Drop, Override])
def test_every_knob_is_documented(kind: type) -> None:
    section = _section()
    names = [f.name for f in dataclasses.fields(kind)]
    assert names, "no fields read: the check would prove nothing"
    assert [n for n in names if f"`{n}`" not in section] == []


def test_the_documented_example_is_a_valid_scenario() -> None:
    section = _section()
    example = section.split("```json\n", 1)[1].split("```", 1)[0]
    scenario = Scenario.from_json(example)
    assert scenario.token_lifetime == json.loads(example)["token_lifetime"]
