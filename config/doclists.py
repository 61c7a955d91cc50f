"""The docs' code lists, generated from the code's own tables.

``python -m config.doclists`` rewrites each marked section of the docs::

    <!-- BEGIN GENERATED: rule-codes -->
    ...
    <!-- END GENERATED -->

from the table it mirrors: the validation rules (``rxfleet.claims.rules``), the
severities, the result fields (``rxfleet.claims.fields``), the statuses, routes,
reject codes and reasons (``rxfleet.claims.rejects`` and the bundled, versioned
reject matrix), the audit trail's stages (``rxfleet.claims.audit``), which process
needs which PHI key (``config.processes``). The prose
around the sections stays hand-written. ``--check`` exits 1 when a section is
stale or missing; a test runs it, so a code added without regenerating the docs
fails CI.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from config.processes import PROCESSES
from config.settings import CONFIG_DIR
from rxfleet.claims.audit import STAGE_MEANINGS
from rxfleet.claims.fields import RESULT_FIELD_MEANINGS, RESULT_FIELDS
from rxfleet.claims.rejects import (
    DEAD_LETTER_ROUTES,
    REASON_MEANINGS,
    REPLAYABLE_REASONS,
    STATUS_MEANINGS,
    RejectMatrix,
    Route,
    Status,
    matrix,
)
from rxfleet.claims.rules import RULES, SEVERITY_MEANINGS, Severity

DOCS = CONFIG_DIR.parent / "docs"
MATRIX = CONFIG_DIR / "reject_codes.json"
END = "<!-- END GENERATED -->"
_SECTION = re.compile(r"<!-- BEGIN GENERATED: ([a-z-]+) -->\n(.*?)" + re.escape(END), re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _values(enum: type[Status] | type[Severity] | type[Route]) -> str:
    return ", ".join(f"`{member.value}`" for member in enum)


def rule_codes() -> str:
    rows = [(f"`{r.code}`", r.severity.value, r.field or "", r.meaning) for r in RULES.values()]
    return _table(("code", "severity", "field", "meaning"), rows)


def severities() -> str:
    rows = [(f"`{s.value}`", meaning) for s, meaning in SEVERITY_MEANINGS.items()]
    return _table(("severity", "meaning"), rows)


def result_fields() -> str:
    vocab = {"status": _values(Status), "severity": _values(Severity), "route": "text"}
    rows = []
    for name in RESULT_FIELDS:
        kind, meaning = RESULT_FIELD_MEANINGS[name]
        rows.append((f"`{name}`", vocab.get(kind, kind), meaning))
    return _table(("field", "type", "meaning"), rows)


def statuses() -> str:
    rows = [(f"`{s.value}`", meaning) for s, meaning in STATUS_MEANINGS.items()]
    return _table(("status", "meaning"), rows)


def routes(rejects: RejectMatrix | None = None) -> str:
    rejects = rejects or matrix(MATRIX)
    rows = [
        (f"`{r.value}`", rejects.route_meanings.get(r, ""), _yes(r in DEAD_LETTER_ROUTES))
        for r in Route
    ]
    return _table(("route", "meaning", "dead letter"), rows)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def reject_codes(rejects: RejectMatrix | None = None) -> str:
    rejects = rejects or matrix(MATRIX)
    rows = [
        (f"`{c.code}`", c.meaning, c.route.value, "yes" if c.retryable else "")
        for c in rejects.codes.values()
    ]
    return f"Matrix version `{rejects.version}`.\n\n" + _table(
        ("code", "meaning", "route", "transient"), rows
    )


def reasons() -> str:
    rows = [
        (f"`{r.value}`", meaning, "yes" if r in REPLAYABLE_REASONS else "no")
        for r, meaning in REASON_MEANINGS.items()
    ]
    return _table(("reason", "meaning", "replayable"), rows)


def audit_stages() -> str:
    rows = [(f"`{s.value}`", meaning) for s, meaning in STAGE_MEANINGS.items()]
    return _table(("stage", "meaning"), rows)


def process_secrets() -> str:
    rows = [(p.name, ", ".join(f"`{k}`" for k in p.secrets) or "neither", p.why) for p in PROCESSES]
    return _table(("process", "PHI keys it needs", "why"), rows)


#: Each doc and the sections it holds, by name.
SECTIONS: dict[str, dict[str, Callable[[], str]]] = {
    "formats.md": {"rule-codes": rule_codes, "severities": severities},
    "operations.md": {"process-secrets": process_secrets},
    "results.md": {
        "result-fields": result_fields,
        "statuses": statuses,
        "routes": routes,
        "reject-codes": reject_codes,
        "reasons": reasons,
        "audit-stages": audit_stages,
    },
}


def render(doc: str, text: str) -> str:
    """``text`` (the doc ``doc``) with each of its generated sections written anew."""
    writers = SECTIONS[doc]

    def fill(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in writers:
            raise KeyError(f"docs/{doc}: no generator for section {name!r}")
        return f"<!-- BEGIN GENERATED: {name} -->\n{writers[name]()}{END}"

    return _SECTION.sub(fill, text)


def sections(text: str) -> dict[str, str]:
    """The generated sections of a doc's ``text``: name to content."""
    return {found.group(1): found.group(2) for found in _SECTION.finditer(text)}


def problems(docs: Path = DOCS) -> list[str]:
    """What is stale or missing in ``docs``: empty when every section is fresh."""
    found = []
    for doc, writers in SECTIONS.items():
        text = (docs / doc).read_text(encoding="utf-8")
        missing = sorted(set(writers) - set(sections(text)))
        found += [f"docs/{doc}: section {name!r} missing" for name in missing]
        if render(doc, text) != text:
            found.append(f"docs/{doc} is stale: run python -m config.doclists")
    return found


def main(argv: list[str] | None = None) -> int:
    """Rewrite the docs' generated sections (or ``--check``: exit 1 when one is stale)."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    for doc in SECTIONS:
        path = DOCS / doc
        path.write_text(render(doc, path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
