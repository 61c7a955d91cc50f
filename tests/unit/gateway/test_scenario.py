"""Scenario: the sandbox's fault knobs as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from rxfleet.errors import ConfigError
from rxfleet.gateway.sandbox.scenario import (
    Drop,
    Scenario,
    Storm,
    Throttle,
    claim_of,
    matches,
)


def test_from_json_reads_every_knob(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(
        '{"seed": 3, "token_lifetime": 30, "revoke_every": 500,'
        ' "storm": {"start_after": 10, "seconds": 2},'
        ' "unknown_routes": ["610014/RXSANDBX"],'
        ' "throttles": [{"status": 429, "rate": 0.05, "retry_after": 2,'
        ' "retry_after_format": "http-date"}],'
        ' "drops": [{"claim_ids": ["C-17"], "after_adjudication": true}],'
        ' "latency_ms": 5, "jitter_ms": 10}'
    )
    scenario = Scenario.load(path)
    assert scenario == Scenario(
        seed=3,
        token_lifetime=30,
        revoke_every=500,
        storm=Storm(start_after=10, seconds=2),
        unknown_routes=frozenset({"610014/RXSANDBX"}),
        throttles=(Throttle(status=429, rate=0.05, retry_after=2, retry_after_format="http-date"),),
        drops=(Drop(claim_ids=frozenset({"C-17"}), after_adjudication=True),),
        latency_ms=5,
        jitter_ms=10,
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"token_lifetime": 0}', "token_lifetime"),
        ('{"throttles": [{"status": 500}]}', "throttles.0.status"),
        ('{"drops": [{"rate": 2}]}', "drops.0.rate"),
        ('{"bogus": 1}', "bogus"),
        ("not json", "<root>"),
    ],
)
def test_bad_scenarios_name_the_knob(text: str, where: str) -> None:
    with pytest.raises(ConfigError, match=rf"invalid sandbox scenario: {where}"):
        Scenario.from_json(text)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        Scenario.load(tmp_path / "nope.json")


def test_rolls_are_deterministic_per_seed_key_and_attempt() -> None:
    a, b = Scenario(seed=1), Scenario(seed=2)
    assert a.roll("x", "K", 1) == Scenario(seed=1).roll("x", "K", 1)
    assert a.roll("x", "K", 1) != b.roll("x", "K", 1)
    assert a.roll("x", "K", 1) != a.roll("x", "K", 2)
    assert 0 <= a.roll("x", "K", 1) < 1


def test_rate_is_roughly_honoured() -> None:
    scenario = Scenario(seed=5)
    fault = Throttle(rate=0.2)
    hits = sum(matches(scenario, fault, "t", f"K{i}", 1) for i in range(2000))
    assert 300 < hits < 500


def test_chosen_keys_fail_their_first_attempts_only() -> None:
    scenario = Scenario()
    fault = Drop(claim_ids=frozenset({"K"}), attempts=2)
    assert [matches(scenario, fault, "d", "K", n) for n in (1, 2, 3)] == [True, True, False]
    assert not matches(scenario, fault, "d", "other", 1)


def test_a_submission_key_is_chosen_by_its_claim_id() -> None:
    scenario = Scenario()
    fault = Throttle(claim_ids=frozenset({"K"}), attempts=1)
    assert matches(scenario, fault, "t", "K~0123456789abcdef", 1)
    assert not matches(scenario, fault, "t", "K~0123456789abcdef", 2)
    assert not matches(scenario, fault, "t", "KX~0123456789abcdef", 1)
    assert claim_of("K~0123456789abcdef") == "K" and claim_of("K") == "K"
