"""docs/settings.md documents every setting and is regenerated, never stale."""

from __future__ import annotations

import re

from config import reference
from config.settings import CONFIG_DIR, Settings

ROOT = CONFIG_DIR.parent


def test_every_setting_has_a_description() -> None:
    missing = [name for name, f in Settings.model_fields.items() if not f.description]
    assert missing == [], "give these settings a Field(description=...)"


def test_settings_doc_is_complete_and_fresh() -> None:
    text = reference.DOC.read_text()
    absent = [n for n in Settings.model_fields if f"`RXFLEET_{n.upper()}`" not in text]
    assert absent == [], "missing from docs/settings.md: run python -m config.reference"
    assert text == reference.render(), "docs/settings.md is stale: run python -m config.reference"
    assert reference.main(["--check"]) == 0


def test_every_variable_the_procfile_reads_is_in_settings_md() -> None:
    """The Procfile's ${RXFLEET_*} are settings or listed Procfile variables, and the
    settings doc names each (a Procfile line that grows a variable grows the doc)."""
    procfile = (ROOT / "Procfile").read_text()
    commands = "\n".join(ln for ln in procfile.splitlines() if not ln.startswith("#"))
    read = set(re.findall(r"\$\{?(RXFLEET_[A-Z_]+)", commands))
    assert len(read) >= 8, "the scan found too little to prove anything"
    text = reference.DOC.read_text()
    assert sorted(v for v in read if f"`{v}`" not in text) == []
    settings = {reference._variables(n, f)[0] for n, f in Settings.model_fields.items()}
    assert sorted(read - settings - set(reference.PROCFILE_VARIABLES)) == []


def test_env_example_lists_every_setting_and_only_settings() -> None:
    example = reference.ENV_EXAMPLE.read_text()
    assert example == reference.render_env_example(), "run python -m config.reference"
    named = set(re.findall(r"^# (RXFLEET_[A-Z_]+)=", example, re.M))
    settings = {reference._variables(n, f)[0] for n, f in Settings.model_fields.items()}
    assert named == settings | set(reference.PROCFILE_VARIABLES)
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored  # the keys' file is never committed
