"""Control characters never reach a terminal: a claim id holding tab, newline and ESC
bytes, and a file name holding them too, are shown escaped in the run's summary, as
TSV in a pipe and as tables on a terminal; no line is forged, no screen cleared."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rxfleet import cli
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration

CLEAR = "\x1b[2J"
#: Claim ids that try to forge a summary line and clear the screen.
HOSTILE_IDS = [
    "TAB\tquarantined\tforged:1\tFORGED",
    f"NL\nquarantined\tforged{CLEAR}",
    f"ESC{CLEAR}",
]


def _hostile_input(tmp_path: Path) -> Path:
    path = tmp_path / f"claims {CLEAR}\nquarantined\tforged.jsonl"
    clean_claims(path, 6, seed=61)
    claims = [json.loads(line) for line in path.read_text().splitlines()]
    for claim, claim_id in zip(claims, HOSTILE_IDS, strict=False):
        claim["claim_id"] = claim_id
        del claim["ndc"]  # quarantined: it is listed in the summary
    path.write_text("".join(json.dumps(c) + "\n" for c in claims))
    return path


def test_the_summary_in_a_pipe_escapes_every_control_character(
    clean_fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _hostile_input(tmp_path)
    capsys.readouterr()
    assert cli.main(["run", str(path), "--new", "--timeout", "60"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err
    quarantined = [line for line in out.splitlines() if line.startswith("quarantined")]
    assert len(quarantined) == len(HOSTILE_IDS), out  # one line each, none forged
    for line in quarantined:
        where, _claim_id, _field, codes = line.split("\t")[1:]
        assert "/claims \\x1b[2J\\x0aquarantined\\x09forged.jsonl:" in where, line
        assert codes
    ids = {line.split("\t")[2] for line in quarantined}
    assert "TAB\\x09quarantined\\x09forged:1\\x09FORGED" in ids, ids
    assert not any("\n" in i or CLEAR in i for i in ids)


def test_the_summary_on_a_terminal_escapes_every_control_character(
    clean_fleet: Fleet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _hostile_input(tmp_path)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: a terminal
    monkeypatch.setenv("COLUMNS", "300")
    capsys.readouterr()
    assert cli.main(["run", str(path), "--new", "--timeout", "60"]) == 0
    out, err = capsys.readouterr()
    assert "quarantined, the first of them" in out
    assert CLEAR not in out + err and "\t" not in out
    assert "\\x1b[2J" in out and "TAB\\x09quarantined\\x09forged:1\\x09FORGED" in out
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)  # rich's own styling and bar
    assert not any(line.startswith("quarantined\t") for line in text.splitlines())
