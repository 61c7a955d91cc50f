"""The Grafana dashboard in deploy/grafana/ queries only metrics the exporter serves
(its own families, read off an empty snapshot), and is a dashboard Grafana imports:
panels with unique ids, a Prometheus query each, on the data source variable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.unit.wiring.test_alert_rules import served_names

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "rxfleet.json"


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return panels


def test_every_query_names_only_metrics_the_exporter_serves() -> None:
    exprs = [t["expr"] for p in _panels() for t in p["targets"]]
    named = {m for e in exprs for m in re.findall(r"\brxfleet_\w+", e)}
    assert named <= served_names(), sorted(named - served_names())


def test_every_served_family_is_on_the_dashboard() -> None:
    exprs = " ".join(t["expr"] for p in _panels() for t in p["targets"])
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in served_names()}
    absent = [f for f in sorted(families) if f not in exprs]
    assert absent == []


def test_it_is_a_dashboard_grafana_imports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids))
    for panel in _panels():
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
