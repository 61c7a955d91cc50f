"""The alert rules in deploy/prometheus/ parse (promtool) and name only metrics that
the exporter serves (its own families, read off an empty snapshot)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from rxfleet.metrics import Snapshot, families
from rxfleet.stores.metrics import Counters
from tests.promtool import find_promtool

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def served_names() -> set[str]:
    empty = Snapshot(Counters(), {}, None, {}, 0.0, 0, 0)
    return {
        f"{family.name}{suffix}"
        for family in families(empty)
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        [str(find_promtool()), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rules_name_only_metrics_the_exporter_serves() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    named = {m for r in rules for m in re.findall(r"\brxfleet_\w+", r["expr"])}
    assert named, "no rule names an rxfleet metric"
    assert named <= served_names(), sorted(named - served_names())


def test_each_alert_fires_when_it_should_and_not_before() -> None:
    tests = RULES.with_name("alerts_test.yml")
    done = subprocess.run(
        [str(find_promtool()), "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULES.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    fired = {r["alert"] for r in rules if "alert" in r}  # recording rules have "record"
    assert fired, "no alert rule in alerts.yml"
    tested = {t["alertname"] for c in yaml.safe_load(tests.read_text())["tests"]
              for t in c["alert_rule_test"]}  # fmt: skip
    assert fired <= tested, sorted(fired - tested)
