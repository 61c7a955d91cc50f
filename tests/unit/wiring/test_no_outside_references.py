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


def test_the_docs_stand_alone_and_cover_every_command_and_option() -> None:
    import argparse

    from rxfleet.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    for name in ("cli", "formats", "results", "protocol", "operations", "settings"):
        assert (ROOT / "docs" / f"{name}.md").is_file() and f"docs/{name}.md" in readme
    cli_doc = (ROOT / "docs" / "cli.md").read_text()

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    assert f"{path} {name}".strip().split()[-1] in cli_doc, name
                    walk(child, f"{path} {name}")
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in cli_doc, f"{path}: {option} is not in docs/cli.md"

    walk(build_parser(), "")
