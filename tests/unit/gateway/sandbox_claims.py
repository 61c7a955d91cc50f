"""One payable claim body of the sandbox's plans (config/sandbox_plans.json), shared by
the adjudicator, books and reversal tests; each test names its own claim id."""

from __future__ import annotations

from typing import Any

#: What a reversal carries of the paid claim (CONTRACT: claim_id, bin, pcn, provider,
#: Rx, fill, date of service).
IDENTIFYING: dict[str, Any] = {
    "bin": "610014",
    "pcn": "RXSANDBX",
    "service_provider_id": "1234567893",
    "rx_number": "7000001",
    "fill_number": 0,
    "date_of_service": "2026-03-02",
}

#: A billing the sandbox pays (group GRP200, a covered generic).
PAYABLE: dict[str, Any] = {
    **IDENTIFYING,
    "group_id": "GRP200",
    "cardholder_id": "M000000001",
    "ndc": "00093721401",
    "gpi": "49270060006520",
    "quantity_dispensed": 30,
    "days_supply": 30,
    "ingredient_cost_submitted": 80.0,
}
