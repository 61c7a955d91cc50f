"""The validation taxonomy table."""

from __future__ import annotations

import inspect

import pytest

import rxfleet.claims.rules as rules_module
from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.claims.rules import RULES, SEVERITY_RANK, Rule, Severity, rule, worst

_SOURCE_FIELDS = set(CANONICAL_FIELDS) | {"payer_id", "version", "transaction_code"}


def test_codes_are_unique_and_keyed_by_themselves() -> None:
    assert all(code == entry.code for code, entry in RULES.items())
    # The dict comprehension would silently keep the last of two equal codes: count
    # the table's rows in the module source instead.
    rows = inspect.getsource(rules_module).count('Rule("')
    assert rows == len(RULES)


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_is_complete(code: str) -> None:
    entry = RULES[code]
    assert isinstance(entry, Rule)
    assert isinstance(entry.severity, Severity)
    assert entry.severity is not Severity.PASS  # a rule that says nothing is no rule
    assert entry.meaning.strip()
    assert code == code.upper() and " " not in code
    assert entry.field is None or entry.field in _SOURCE_FIELDS


def test_warnings_are_the_crosswalk_flags_and_the_plan_rules() -> None:
    warns = {code for code, entry in RULES.items() if entry.severity is Severity.WARN}
    assert warns == {"OBSOLETE_NDC", "PRIOR_AUTH_FLAG", "QUANTITY_LIMIT_FLAG", "STEP_THERAPY_FLAG",
                     "RELATIONSHIP_MISMATCH", "DAYS_SUPPLY_OVER_PLAN_MAX"}  # fmt: skip


def test_the_one_transient_rule_is_the_formulary_wait() -> None:
    transient = {c for c, entry in RULES.items() if entry.severity is Severity.TRANSIENT}
    assert transient == {"FORMULARY_PENDING"}


def test_rule_lookup() -> None:
    assert rule("MISSING_NDC").field == "ndc"
    with pytest.raises(KeyError):
        rule("NO_SUCH_CODE")


def test_severity_rank_is_total_and_ordered() -> None:
    assert set(SEVERITY_RANK) == set(Severity)
    order = [Severity.PASS, Severity.WARN, Severity.TRANSIENT, Severity.FATAL]
    assert [SEVERITY_RANK[s] for s in order] == sorted(SEVERITY_RANK.values())
    assert len(set(SEVERITY_RANK.values())) == 4


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        ([], Severity.PASS),
        ([Severity.PASS], Severity.PASS),
        ([Severity.WARN, Severity.PASS], Severity.WARN),
        ([Severity.WARN, Severity.TRANSIENT], Severity.TRANSIENT),
        ([Severity.TRANSIENT, Severity.FATAL, Severity.WARN], Severity.FATAL),
        ([Severity.FATAL, Severity.PASS], Severity.FATAL),
        ([Severity.PASS, Severity.WARN, Severity.PASS], Severity.WARN),
    ],
)
def test_worst(severities: list[Severity], expected: Severity) -> None:
    assert worst(severities) is expected
    assert worst(list(reversed(severities))) is expected
