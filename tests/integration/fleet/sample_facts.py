"""What the bundled sample holds, read from the file itself (not hard-coded)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxfleet.claims.fields import PHI_FIELDS


@dataclass
class SampleFacts:
    lines: int = 0
    claim_ids: list[str | None] = field(default_factory=list)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    phi: set[str] = field(default_factory=set)

    def with_ndc(self, ndc: str) -> list[str]:
        return [cid for cid, c in self.claims.items() if c.get("ndc") == ndc]


def read_sample(path: Path) -> SampleFacts:
    facts = SampleFacts()
    for line in path.read_text(encoding="utf-8").splitlines():
        facts.lines += 1
        try:
            claim = json.loads(line)
        except json.JSONDecodeError:
            facts.claim_ids.append(None)
            continue
        facts.claim_ids.append(claim.get("claim_id"))
        facts.claims.setdefault(claim["claim_id"], claim)
        facts.phi |= {str(claim[name]) for name in PHI_FIELDS if claim.get(name)}
    return facts


def distinctive_phi(facts: SampleFacts) -> set[str]:
    """PHI values long enough that a random byte string cannot contain them by chance."""
    return {value for value in facts.phi if len(value) >= 6}
