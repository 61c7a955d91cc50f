"""The repository stands alone: nothing outside tests points at a file outside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("CONTRACT section", "../shared")


def test_no_tracked_file_outside_tests_cites_an_outside_document() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    offenders = []
    for name in tracked:
        if name.startswith("tests/"):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}: {word}" for word in FORBIDDEN if word in text]
    assert offenders == []
