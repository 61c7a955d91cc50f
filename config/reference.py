"""The settings reference, generated from the one settings class.

``python -m config.reference`` writes ``docs/settings.md``: one row per
``RXFLEET_*`` variable with its type, default and meaning (each field's
``Field(description=...)``). A test fails when the file is stale.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from config.settings import CONFIG_DIR, ENV_PREFIX, Settings

DOC = CONFIG_DIR.parent / "docs" / "settings.md"
HEADER = """# Settings

Every setting is an environment variable (or a line of a `.env` file in the
working directory). Generated from `config/settings.py` by
`python -m config.reference`; do not edit by hand.

| variable | type | default | meaning |
|---|---|---|---|
"""


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [_type(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(parts) + " (optional)"
    names = {
        "SecretStr": "secret",
        "Path": "path",
        "str": "text",
        "int": "integer",
        "bool": "boolean",
    }
    name = getattr(annotation, "__name__", str(annotation))
    return names.get(name, "number" if name == "float" else name)


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, Path):
        try:
            return f"`{value.relative_to(CONFIG_DIR.parent)}`"
        except ValueError:
            return f"`{value}`"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return f"`{value}`"


def _variables(name: str, field: FieldInfo) -> tuple[str, list[str]]:
    """The field's variable and the former names still read (a renamed setting)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(choice) for choice in alias.choices]
        return names[0], names[1:]
    return f"{ENV_PREFIX}{name.upper()}", []


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        variable, former = _variables(name, field)
        meaning = (field.description or "").replace("|", "\\|")
        if former:
            meaning += "; formerly " + ", ".join(f"`{v}`" for v in former) + " (still read)"
        rows.append(f"| `{variable}` | {_type(field.annotation)} | {_default(field)} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/settings.md (or ``--check``: exit 1 when it is stale)."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        stale = not DOC.exists() or DOC.read_text() != text
        if stale:
            print(f"{DOC} is stale: run python -m config.reference", file=sys.stderr)
        return 1 if stale else 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
