"""docs/settings.md documents every setting and is regenerated, never stale."""

from __future__ import annotations

from config import reference
from config.settings import Settings


def test_every_setting_has_a_description() -> None:
    missing = [name for name, f in Settings.model_fields.items() if not f.description]
    assert missing == [], "give these settings a Field(description=...)"


def test_settings_doc_is_complete_and_fresh() -> None:
    text = reference.DOC.read_text()
    absent = [n for n in Settings.model_fields if f"`RXFLEET_{n.upper()}`" not in text]
    assert absent == [], "missing from docs/settings.md: run python -m config.reference"
    assert text == reference.render(), "docs/settings.md is stale: run python -m config.reference"
    assert reference.main(["--check"]) == 0
