"""RXFLEET_PAYER_SHEET: a bad sheet stops a run before anything starts (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

import config.settings
from rxfleet import api
from rxfleet.errors import InputError
from tests.unit.formats import ncpdp_build as b


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An NCPDP file; the process's settings as they were come back after the test (a
    fleet test in the same worker process keeps its own)."""
    monkeypatch.setattr(config.settings, "_current", config.settings.get_settings())
    path = tmp_path / "claims.ncpdp"
    path.write_text(b.transmission(1) + "\n", encoding="utf-8")
    return str(path)


def test_the_bundled_sheet_passes_the_preflight(claims: str) -> None:
    api.check_inputs([claims])


def test_a_repeated_row_stops_the_preflight_naming_file_and_line(
    claims: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("bin,pcn,group_id,plan_id\n610014,X,,P1\n610014,X,,P2\n", encoding="utf-8")
    config.settings.configure(payer_sheet=sheet)
    with pytest.raises(InputError, match=r"sheet\.csv:3: a second row"):
        api.check_inputs([claims])


def test_a_missing_sheet_stops_the_preflight(claims: str, tmp_path: Path) -> None:
    config.settings.configure(payer_sheet=tmp_path / "absent.csv")
    with pytest.raises(InputError, match="cannot open payer sheet"):
        api.check_inputs([claims])
