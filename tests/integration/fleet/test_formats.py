"""NCPDP D.0 and X12 837 input through the real chain, beside JSON Lines."""

from __future__ import annotations

import pytest

from bench.harness import ROOT
from tests.integration.fleet.fleet_support import Fleet

pytestmark = pytest.mark.integration

RESOURCES = ROOT / "tests" / "resources"
X12 = RESOURCES / "x12" / "837_005010X222A2"


def test_ncpdp_and_x12_claims_are_adjudicated(clean_fleet: Fleet) -> None:
    inputs = [
        RESOURCES / "ncpdp" / "multi4.ncpdp",
        X12 / "demo.drug.example10.2.837",
        # (demo.example1.837, no drug line, was here: since issue 11 a file without
        # a single claim is InputError "empty file: no claims", see test_x12.py)
    ]
    result = clean_fleet.run(*inputs, batch_size=4)
    rows = clean_fleet.results(result.run_id)
    assert len(rows) == 4 + 5
    ncpdp, x12 = rows[:4], rows[4:]
    assert all(r["status"] == "PAID" and str(r["claim_id"]).startswith("NCPDP-") for r in ncpdp)
    assert [r["claim_id"] for r in x12] == [f"X12-1234567893-CLMNO12345-{n}" for n in range(2, 7)]
    assert not any("MISSING_DAYS_SUPPLY" in r["errors"] for r in x12)  # the 837 has none
    sent = [r for r in x12 if r["status"] != "QUARANTINED"]
    assert len(sent) == 3 and all(r["attempts"] == 1 for r in sent)
    missing = [r for r in x12 if r["status"] == "QUARANTINED"]  # a syringe and a needle
    assert [r["claim_id"] for r in missing] == [
        "X12-1234567893-CLMNO12345-5",
        "X12-1234567893-CLMNO12345-6",
    ]
    assert all(r["errors"] == ["MISSING_GPI_MAPPING"] for r in missing)


def test_the_same_x12_claim_in_two_files_is_a_duplicate(clean_fleet: Fleet) -> None:
    """Both LinuxForHealth samples carry CLM01 CLMNO12345 with a drug on LX 2."""
    files = [X12 / "demo.drug.example10.1.837", X12 / "demo.drug.example10.2.837"]
    rows = clean_fleet.results(clean_fleet.run(*files, batch_size=10).run_id)
    assert rows[0]["claim_id"] == rows[1]["claim_id"] == "X12-1234567893-CLMNO12345-2"
    assert rows[0]["status"] != "QUARANTINED" and rows[1]["errors"] == ["DUPLICATE_CLAIM_ID"]


def test_bad_ncpdp_records_are_quarantined_beside_good_ones(clean_fleet: Fleet) -> None:
    result = clean_fleet.run(RESOURCES / "ncpdp" / "bad_records.ncpdp", batch_size=10)
    rows = clean_fleet.results(result.run_id)
    assert [r["status"] for r in rows] == [
        "PAID",
        "QUARANTINED",
        "QUARANTINED",
        "QUARANTINED",
        "PAID",
    ]
    assert [r["errors"][0] for r in rows[1:4]] == [
        "TRUNCATED_HEADER",
        "UNKNOWN_SEGMENT",
        "INVALID_FIELD",
    ]
