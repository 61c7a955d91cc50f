"""Every claim type of issue 16 in one run of ``rxfleet run`` on the real fleet.

One NCPDP file (a compound, a 10-character PCN with a 15-character group, two
transactions without 402-D2, a Part D claim whose reject the plan's override
routes) and two X12 files (an F2 unit line, an alphanumeric rx number): exit 0,
one row per input claim in input order, the stated code or PAID, and nothing
printed or written that is not an id (no PHI, no CLM01, no rx number).

A ``P`` answer that carries reject codes, and padded codes, are in
``test_odd_answers.py`` (the sandbox's ``answers`` knob).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.harness import ROOT
from rxfleet import cli
from rxfleet.claims import synth
from tests.integration.fleet.fleet_support import Fleet
from tests.unit.formats import ncpdp_build as b

pytestmark = pytest.mark.integration

EXAMPLE10_1 = (
    ROOT / "tests" / "resources" / "x12" / "837_005010X222A2" / "demo.drug.example10.1.837"
)

CARDHOLDER, FIRST, LAST, BIRTH = "MBRZQ98765", "ZELPHINE", "QUORTLEY", "19790312"
LONG_PCN, LONG_GROUP = "RXSANDBX10", "GRPABCDEFGHIJ15"
CLM01_F2, CLM01_RX, RX_ALNUM = "ZQACCTF2UNIT", "ZQACCTRXALNUM", "RXA12B77Q"
NCPDP_RX = ["000000070201", "000000070202", "000000070301"]
#: Raw values of the inputs that must never be printed or reach a result.
RAW = {CARDHOLDER, FIRST, LAST, BIRTH, CLM01_F2, CLM01_RX, RX_ALNUM, *NCPDP_RX,
       "MBRID12345", "Vaughn", "19430501"}  # fmt: skip
ID = re.compile(r"(NCPDP|X12)-[0-9a-f]{20,32}")


def _transmission(*transactions: str, bin_: str = "610014", pcn: str = "RXSANDBX",
                  group: str = "GRP100") -> str:  # fmt: skip
    insurance = b.segment("04", {"C2": CARDHOLDER, "C1": group})
    patient = b.segment("01", {"C4": BIRTH, "CA": FIRST, "CB": LAST})
    return (
        b.header(bin_=bin_, pcn=pcn, count=len(transactions))
        + insurance
        + patient
        + "".join(transactions)
    )


def _compound() -> str:
    fields = [("EF", "10"), ("EG", "1"), ("EC", "2")]
    for ndc, quantity, cost in (("00003089421", "0000015000", "0000120{"),
                                ("00071015523", "0000015000", "0000003E")):  # fmt: skip
        fields += [("RE", "03"), ("TE", ndc), ("ED", quantity), ("EE", cost)]
    segment10 = b.RS + b.FS + "AM10" + "".join(b.FS + k + v for k, v in fields)
    return b.transaction(claim_fields=b.claim(NCPDP_RX[0], E1="00", D7="0")) + segment10


def _without_rx_number(ndc: str) -> str:
    fields = {k: v for k, v in b.claim(D7=ndc).items() if k != "D2"}
    return b.transaction(claim_fields=fields)


def _ncpdp(tmp_path: Path) -> Path:
    lines = [
        _transmission(_compound()),
        _transmission(b.transaction(NCPDP_RX[1]), pcn=LONG_PCN, group=LONG_GROUP),
        _transmission(_without_rx_number("00003089421"), _without_rx_number("00071015523")),
        _transmission(  # sildenafil is excluded (70); PLAN-PARTD routes 70 to REVIEW_REQUIRED
            b.transaction(claim_fields=b.claim(NCPDP_RX[2], D7="00069422030")),
            bin_="004336", pcn="MEDDPRIME", group="PDP001",
        ),
    ]  # fmt: skip
    path = tmp_path / "types.ncpdp"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _x12(tmp_path: Path, name: str, clm01: str, old: str, new: str) -> Path:
    text = EXAMPLE10_1.read_text(encoding="utf-8")
    text = text.replace("CLM*CLMNO12345*", f"CLM*{clm01}*").replace(old, new)
    text = text.replace("SBR*P*18*GRP01020102*", "SBR*P*18*GRP100*")  # a group the sandbox has
    path = tmp_path / name
    path.write_text(synth.recount_se(text), encoding="utf-8")
    return path


def test_every_new_claim_type_in_one_run(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.reset()
    lin = "LIN**N4*00026063512~"
    inputs = [
        _ncpdp(tmp_path),
        _x12(tmp_path, "f2.837", CLM01_F2, "CTP****10.00*ML~", "CTP****300*F2~"),
        _x12(tmp_path, "rx.837", CLM01_RX, lin, f"{lin}REF*XZ*{RX_ALNUM}~"),
    ]
    out = tmp_path / "out.jsonl"
    capsys.readouterr()
    argv = ["run", *map(str, inputs), "-o", str(out), "--new", "--timeout", "90"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]

    assert len(rows) == 5 + 2, rows  # one row per input claim, in input order
    outcome = [(r["status"], r["reject_codes"], r["errors"]) for r in rows]
    assert outcome == [
        ("PAID", [], []),  # the compound, adjudicated by its first ingredient
        ("REJECTED", ["04"], []),  # 10-character PCN, 15-character group: no such route
        ("PAID", [], []),  # two transactions without 402-D2
        ("PAID", [], []),
        ("REJECTED", ["70"], []),  # Part D: the payer sheet names PLAN-PARTD
        ("PAID", [], []),  # X12 F2: a count of units
        ("PAID", [], []),  # X12 REF*XZ alphanumeric rx number
    ], outcome
    assert rows[4]["route"] == "REVIEW_REQUIRED"  # the plan override (else FORMULARY_EXCEPTION)
    ids = [str(r["claim_id"]) for r in rows]
    assert len(set(ids)) == 7 and all(ID.fullmatch(i) for i in ids), ids
    leaked = {raw for raw in RAW if raw in printed.out + printed.err + text}
    assert leaked == set(), f"printed or written: {sorted(leaked)}"
    assert "Traceback" not in printed.err
