"""The metrics table of docs/operations.md lists exactly what the exporter serves."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.wiring.test_alert_rules import served_names

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def test_the_metrics_table_names_every_family_served_once() -> None:
    section = OPERATIONS.read_text(encoding="utf-8").split("## Metrics", 1)[1]
    rows = re.findall(r"^\| `(rxfleet_\w+)` \| (\w+) \|", section, re.M)
    names = [name for name, _ in rows]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in served_names()}
    assert set(names) == families, (sorted(families - set(names)), sorted(set(names) - families))
