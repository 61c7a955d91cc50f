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
    x12_ids = [str(r["claim_id"]) for r in x12]  # keyed tokens: CLM01 never in clear
    assert len(set(x12_ids)) == 5 and all(i.startswith("X12-") for i in x12_ids)
    assert not any("CLMNO12345" in i for i in x12_ids)
    assert not any("MISSING_DAYS_SUPPLY" in r["errors"] for r in x12)  # the 837 has none
    sent = [r for r in x12 if r["status"] != "QUARANTINED"]
    assert len(sent) == 3 and all(r["attempts"] == 1 for r in sent)
    missing = [r for r in x12 if r["status"] == "QUARANTINED"]  # a syringe and a needle
    assert [r["claim_id"] for r in missing] == x12_ids[3:]
    assert all(r["errors"] == ["MISSING_GPI_MAPPING"] for r in missing)


def test_the_same_x12_claim_in_two_files_is_a_duplicate(clean_fleet: Fleet) -> None:
    """The same drug line in two files is one claim; since issue 16 the two
    LinuxForHealth samples' LX 2 lines (same CLM01, other dates and prescriptions)
    are two claims, as the id is the service's identity."""
    one = X12 / "demo.drug.example10.1.837"
    rows = clean_fleet.results(clean_fleet.run(one, one, batch_size=10).run_id)
    assert rows[0]["claim_id"] == rows[1]["claim_id"]
    assert "CLMNO12345" not in str(rows[0]["claim_id"])
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
