"""The sandbox's books: the claims it has paid and not reversed.

A paid claim is filed under the prescription it paid for: (service provider,
Rx number, fill number, date of service), the key a processor's duplicate check
and a reversal match on. A claim body without a provider or an Rx number (an
X12 837 drug line) is filed under its claim id instead, so that two such claims
never look like the same prescription.

Amounts are kept in whole cents, so the total is exact to the cent. Not
thread-safe on its own: ``GatewayState`` calls it under its lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: (service_provider_id, rx_number, fill_number, date_of_service), or ("claim", claim_id).
BookKey = tuple[str, ...]


def book_key(claim: Mapping[str, Any]) -> BookKey:
    """Where a claim body (billing, reversal or rebill) is filed in the books."""
    provider, rx = claim.get("service_provider_id"), claim.get("rx_number")
    if not provider or not rx:
        return ("claim", str(claim.get("claim_id", "")))
    fill = claim.get("fill_number")
    text = str(fill or 0)
    number = str(int(fill)) if isinstance(fill, int | float) else text.lstrip("0") or "0"
    return (str(provider), str(rx), number, str(claim.get("date_of_service", "")))


def cents(amount: object) -> int:
    """A JSON amount in whole cents (0 when absent)."""
    return round(float(amount) * 100) if isinstance(amount, int | float) else 0


@dataclass(frozen=True, slots=True)
class PaidClaim:
    """One paid claim in the books (no PHI: ids, the key and amounts)."""

    claim_id: str
    key: str
    authorization_number: str | None
    amount_paid_cents: int
    patient_pay_cents: int

    @classmethod
    def from_answer(cls, key: str, body: Mapping[str, Any]) -> PaidClaim:
        """The entry a ``P`` answer files."""
        pricing = body.get("pricing") or {}
        return cls(
            claim_id=str(body.get("claim_id", "")),
            key=key,
            authorization_number=body.get("authorization_number"),
            amount_paid_cents=cents(pricing.get("total_amount_paid")),
            patient_pay_cents=cents(pricing.get("patient_pay_amount")),
        )

    def report(self) -> dict[str, Any]:
        """The entry as ``GET /v1/books`` shows it."""
        return {
            "claim_id": self.claim_id,
            "key": self.key,
            "authorization_number": self.authorization_number,
            "amount_paid": self.amount_paid_cents / 100,
            "patient_pay": self.patient_pay_cents / 100,
        }


class Books:
    """Paid claims by ``BookKey``."""

    def __init__(self) -> None:
        self._paid: dict[BookKey, PaidClaim] = {}

    def paid(self, key: BookKey) -> PaidClaim | None:
        """The paid claim filed under ``key``, if any."""
        return self._paid.get(key)

    def file(self, key: BookKey, entry: PaidClaim) -> None:
        """File (or replace) the paid claim under ``key``."""
        self._paid[key] = entry

    def reverse(self, key: BookKey) -> PaidClaim | None:
        """Take the paid claim under ``key`` off the books; None when there is none."""
        return self._paid.pop(key, None)

    def clear(self) -> None:
        """Forget every paid claim."""
        self._paid.clear()

    def report(self) -> dict[str, Any]:
        """``{"claims": [...by claim id], "count", "total_paid", "total_paid_cents"}``."""
        entries = sorted(self._paid.values(), key=lambda e: (e.claim_id, e.key))
        total = sum(e.amount_paid_cents for e in entries)
        return {
            "claims": [e.report() for e in entries],
            "count": len(entries),
            "total_paid": total / 100,
            "total_paid_cents": total,
        }
