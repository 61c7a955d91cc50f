"""docs/cli.md names every command the parser knows (a new command needs its doc)."""

from __future__ import annotations

import argparse

from config.settings import CONFIG_DIR
from rxfleet.cli import build_parser

DOC = CONFIG_DIR.parent / "docs" / "cli.md"


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub, f"{prefix} {name}")
                found += nested or [f"{prefix} {name}"]
    return found


def test_the_parser_has_commands() -> None:
    assert "rxfleet run" in _commands(build_parser(), "rxfleet")


def test_every_command_is_in_the_cli_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    absent = [c for c in _commands(build_parser(), "rxfleet") if f"`{c}" not in text]
    assert absent == [], "document these commands in docs/cli.md"
