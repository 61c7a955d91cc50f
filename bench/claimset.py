"""Payable-only synthetic claims: one JSONL input for the fleet, the same gateway bodies
for every other contender.

A claim is kept when it validates with no issue at all, its PHI passes the PHI rules,
and its NDC-11 is in the bundled crosswalk with no WARN flag: the sandbox then pays it,
so every contender sends exactly one request per claim. A body is what the fleet's
submit link builds (``rxfleet/links/submit.py: _body``): ``Claim.gateway_fields()``,
the non-empty PHI fields, and ``gpi`` from the crosswalk.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import SAMPLE_CROSSWALK
from rxfleet.claims import synth
from rxfleet.claims.crosswalk import CrosswalkEntry, read_crosswalk
from rxfleet.claims.validation import check_phi, split_phi, validate

Body = dict[str, Any]


@dataclass(frozen=True)
class ClaimSet:
    """``records``: input lines (JSONL); ``bodies``: the matching gateway bodies."""

    records: list[dict[str, Any]]
    bodies: list[Body]

    def __len__(self) -> int:
        return len(self.bodies)

    def keyed(self, prefix: str) -> list[tuple[str, Body]]:
        """(Idempotency-Key, body) per claim: claim id and key are ``prefix + id``."""
        out = []
        for body in self.bodies:
            key = f"{prefix}{body['claim_id']}"
            out.append((key, {**body, "claim_id": key}))
        return out

    def write_jsonl(self, path: Path, prefix: str) -> list[str]:
        """The input file for ``rxfleet run`` (claim id = key = ``prefix + id``)."""
        keys = []
        with path.open("w", encoding="utf-8") as handle:
            for record in self.records:
                key = f"{prefix}{record['claim_id']}"
                keys.append(key)
                handle.write(json.dumps({**record, "claim_id": key}) + "\n")
        return keys


def crosswalk() -> dict[str, CrosswalkEntry]:
    return {entry.ndc11: entry for entry in read_crosswalk(SAMPLE_CROSSWALK)}


def gateway_body(record: dict[str, Any], entries: dict[str, CrosswalkEntry]) -> Body | None:
    """The fleet's gateway body for a record, or None when the claim is not plainly payable."""
    rest, phi = split_phi(record)
    outcome = validate(rest, fmt="jsonl")
    claim = outcome.claim
    if claim is None or outcome.issues or check_phi(record):
        return None
    entry = entries.get(claim.ndc11 or "")  # None only for a reversal (B2)
    if entry is None or entry.flags(claim.quantity_dispensed):
        return None
    body = claim.gateway_fields()
    body.update({name: value for name, value in phi.items() if value is not None})
    body["gpi"] = entry.gpi14
    return body


def payable(n: int, seed: int = 7) -> ClaimSet:
    """``n`` payable claims from ``synth.payable_claim`` (ids ``RX00000001``...)."""
    rng, entries = random.Random(seed), crosswalk()
    records: list[dict[str, Any]] = []
    bodies: list[Body] = []
    index = 0
    while len(bodies) < n:
        index += 1
        record = synth.payable_claim(rng, index)
        body = gateway_body(record, entries)
        if body is not None:
            records.append(record)
            bodies.append(body)
    return ClaimSet(records, bodies)
