"""The docs' code lists are generated from the code's tables, and never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import doclists
from rxfleet.claims.audit import STAGE_MEANINGS, AuditStage
from rxfleet.claims.fields import RESULT_FIELD_MEANINGS, RESULT_FIELDS
from rxfleet.claims.rejects import REASON_MEANINGS, STATUS_MEANINGS, Reason, Route, Status, matrix
from rxfleet.claims.rules import RULES, SEVERITY_MEANINGS, Severity


def _section(doc: str, name: str) -> str:
    return doclists.sections((doclists.DOCS / doc).read_text(encoding="utf-8"))[name]


def test_every_generated_section_is_fresh() -> None:
    assert doclists.problems() == [], "run python -m config.doclists"
    assert doclists.main(["--check"]) == 0


def test_every_vocabulary_has_a_meaning() -> None:
    assert list(SEVERITY_MEANINGS) == list(Severity)
    assert list(STATUS_MEANINGS) == list(Status)
    assert list(REASON_MEANINGS) == list(Reason)
    assert list(STAGE_MEANINGS) == list(AuditStage)
    assert tuple(RESULT_FIELD_MEANINGS) == RESULT_FIELDS
    rejects = matrix(doclists.MATRIX)
    assert set(rejects.route_meanings) == set(Route), "give each route a meaning in the matrix"


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_code_is_in_the_formats_doc(code: str) -> None:
    row = f"| `{code}` | {RULES[code].severity.value} |"
    assert row in _section("formats.md", "rule-codes")


def test_every_reject_code_is_in_the_results_doc_with_its_route() -> None:
    rejects = matrix(doclists.MATRIX)
    table = _section("results.md", "reject-codes")
    absent = [
        c for c in rejects.codes.values() if f"| {c.route.value} |" not in _row(table, c.code)
    ]
    assert absent == []
    assert f"`{rejects.version}`" in table, "the doc names the matrix version"


def _row(table: str, key: str) -> str:
    return next((line for line in table.splitlines() if line.startswith(f"| `{key}` |")), "")


@pytest.mark.parametrize(
    ("doc", "section", "names"),
    [
        ("formats.md", "severities", [s.value for s in Severity]),
        ("results.md", "statuses", [s.value for s in Status]),
        ("results.md", "routes", [r.value for r in Route]),
        ("results.md", "reasons", [r.value for r in Reason]),
        ("results.md", "result-fields", list(RESULT_FIELDS)),
    ],
)
def test_every_name_the_code_knows_is_in_its_doc(doc: str, section: str, names: list[str]) -> None:
    table = _section(doc, section)
    assert [n for n in names if not _row(table, n)] == []


def test_a_stale_section_is_found(tmp_path: Path) -> None:
    for doc in doclists.SECTIONS:
        text = (doclists.DOCS / doc).read_text(encoding="utf-8")
        (tmp_path / doc).write_text(
            text.replace(doclists.END, "| `X` |\n" + doclists.END, 1), encoding="utf-8"
        )
    stale = doclists.problems(tmp_path)
    assert stale == [
        f"docs/{doc} is stale: run python -m config.doclists" for doc in doclists.SECTIONS
    ]


def test_a_missing_section_is_found(tmp_path: Path) -> None:
    for doc in doclists.SECTIONS:
        (tmp_path / doc).write_text("# nothing generated\n", encoding="utf-8")
    found = doclists.problems(tmp_path)
    assert "docs/formats.md: section 'rule-codes' missing" in found
    assert "docs/results.md: section 'reject-codes' missing" in found


def test_render_refuses_a_section_it_cannot_write() -> None:
    text = f"<!-- BEGIN GENERATED: nonesuch -->\n{doclists.END}"
    with pytest.raises(KeyError, match="nonesuch"):
        doclists.render("results.md", text)


@pytest.mark.parametrize("stage", list(AuditStage))
def test_every_audit_stage_is_in_the_results_doc(stage: AuditStage) -> None:
    assert f"| `{stage.value}` | {STAGE_MEANINGS[stage]} |" in _section(
        "results.md", "audit-stages"
    )
