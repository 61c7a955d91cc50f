"""The size targets of issue 15: no function over 40 lines, no class over 200.

    python bench/sizes.py [PATH ...]      # default: rxfleet

Lists each function (method included) and class over its limit, by its span of
lines in the source (``def``/``class`` line to the last line, docstring
included); exits 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

FUNCTION_LINES = 40
CLASS_LINES = 200


def oversized(path: Path) -> Iterator[str]:
    """``path:line kind name lines`` for each function or class of ``path`` over its limit."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            span = (node.end_lineno or node.lineno) - node.lineno + 1
            is_class = isinstance(node, ast.ClassDef)
            kind, limit = ("class", CLASS_LINES) if is_class else ("def", FUNCTION_LINES)
            if span > limit:
                yield f"{path}:{node.lineno} {kind} {node.name} {span}"


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("rxfleet")]
    found = [line for root in roots for path in sorted(root.rglob("*.py"))
             for line in oversized(path)]  # fmt: skip
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
