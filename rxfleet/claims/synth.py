"""Synthetic claims: the bundled sample and benchmark inputs. No real person.

``sample_claims(n, seed)`` mixes what a PBM engineer sees on a real day: mostly
payable claims, rejections for several reasons (prior authorization, plan
exclusion, plan limits, terminated member, unknown group, unknown BIN/PCN),
warnings (obsolete NDC, step therapy), and malformed claims of many kinds.

``payable_claim(rng, index)`` is one clean claim the sandbox pays;
``write_claims(path, n, ...)`` writes ``n`` of them as JSON Lines under ids of the
caller's choosing (the fault tests and benchmarks: every claim sent exactly once);
``reversal(claim)`` is the B2 line of a claim (the lifecycle test and bench), and
``recount_se(text)`` an X12 file's SE01 after segments were added.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rxfleet.claims.model import REVERSAL_FIELDS

FIRST = ["AVA", "NOAH", "MIA", "LIAM", "ZOE", "ELI", "IVY", "OWEN", "RUBY", "JUDE", "NORA", "EZRA"]
LAST = ["QUILLFEATHER", "BRAMBLEWOOD", "ASHCROFT", "MARLOWE", "TEMPLETON", "WINTERBOURNE",
        "HOLLOWAY", "FAIRCHILD", "PENROSE", "STRATHMORE", "CALLOWAY", "DUNMORE"]  # fmt: skip
PRESCRIBERS = ["1234567893", "1122333341", "1987654328", "1003000126"]
PHARMACIES = ["1871523647", "1437156189", "1588667638"]
PAYABLE = [  # (NDC as pharmacies send it, typical quantity, days supply)
    ("0071-0155-23", 30, 30), ("0071-0156-23", 90, 90), ("68180-513-01", 30, 30),
    ("00093-1048-1", 60, 30), ("00069153068", 30, 30), ("00074-4341-90", 90, 90),
    ("00186-5020-31", 30, 30), ("00049-4910-30", 30, 30), ("00406-0552-01", 60, 15),
    ("00228-2831-11", 60, 30),
]  # fmt: skip
ROUTES = [("610014", "RXSANDBX", "GRP100", "PLAN-COMM"), ("610014", "RXSANDBX", "GRP200",
          "PLAN-COMM-HDHP"), ("004336", "MEDDPRIME", "PDP001", "PLAN-PARTD")]  # fmt: skip
TODAY = date(2026, 11, 20)


def payable_claim(rng: random.Random, index: int) -> dict[str, Any]:
    """A clean claim the sandbox pays (id ``RX`` + ``index``): a payable NDC, a known
    route, made-up PHI; the same ``rng`` state gives the same claim."""
    ndc, quantity, days = rng.choice(PAYABLE)
    bin_, pcn, group, plan = rng.choice(ROUTES)
    days = min(days, 30) if plan == "PLAN-PARTD" else days
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 29000))
    return {
        "claim_id": f"RX{index:08d}", "bin": bin_, "pcn": pcn, "group_id": group,
        "cardholder_id": f"ZH{rng.randrange(10**8, 10**9)}",
        "patient_first_name": rng.choice(FIRST), "patient_last_name": rng.choice(LAST),
        "date_of_birth": born.isoformat(),
        "service_provider_id": rng.choice(PHARMACIES),
        "date_of_service": (TODAY - timedelta(days=rng.randrange(0, 60))).isoformat(),
        "rx_number": _rx_number(rng, index), "fill_number": rng.randrange(0, 6),
        "ndc": ndc, "quantity_dispensed": quantity, "days_supply": days,
        "prescriber_id": rng.choice(PRESCRIBERS),
        "ingredient_cost_submitted": round(rng.uniform(4, 120), 2),
        "usual_and_customary": round(rng.uniform(10, 160), 2), "plan_id": plan, "pos": "01",
    }  # fmt: skip


def _rx_number(rng: random.Random, index: int) -> str:
    """One prescription a claim (seven digits, unique below ten million claims), so that the
    sandbox never takes two synthetic claims for a second billing (83); draws as before."""
    rng.randrange(10**6, 10**7)
    return str(10**6 + index % (9 * 10**6))


def write_claims(
    path: Path,
    n: int,
    *,
    seed: int | str,
    claim_id: Callable[[int], str],
    edit: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[str]:
    """``n`` payable claims as JSON Lines in ``path``; returns their ids in order.

    Claim ``index`` (0 .. n-1) gets the id ``claim_id(index)``; ``edit(index, claim)``
    may then change it (a poison id, an unknown BIN/PCN)."""
    rng = random.Random(seed)
    ids = []
    with path.open("w", encoding="utf-8") as handle:
        for index in range(n):
            claim = payable_claim(rng, index)
            claim["claim_id"] = claim_id(index)
            if edit is not None:
                edit(index, claim)
            ids.append(claim["claim_id"])
            handle.write(json.dumps(claim) + "\n")
    return ids


def reversal(claim: dict[str, Any]) -> dict[str, Any]:
    """A B2 line: the identifying fields, and the plan (a flat format's B2 needs it)."""
    fields = {k: claim[k] for k in (*REVERSAL_FIELDS, "plan_id") if k in claim}
    return {**fields, "transaction_code": "B2"}


def recount_se(text: str) -> str:
    """An X12 file's ``text`` with its (first) SE01 recounted (segments were added)."""
    segments = text.split("~")
    start = next(i for i, s in enumerate(segments) if s.strip().startswith("ST*"))
    end = next(i for i, s in enumerate(segments) if s.strip().startswith("SE*"))
    parts = segments[end].split("*")
    parts[1] = str(end - start + 1)
    segments[end] = "*".join(parts)
    return "~".join(segments)


Mutation = Callable[[dict[str, Any], random.Random], None]


def _set(**values: Any) -> Mutation:
    def apply(claim: dict[str, Any], _: random.Random) -> None:
        claim.update(values)

    return apply


def _drop(name: str) -> Mutation:
    def apply(claim: dict[str, Any], _: random.Random) -> None:
        claim.pop(name, None)

    return apply


def _terminated(claim: dict[str, Any], rng: random.Random) -> None:
    claim["cardholder_id"] = f"ZT90000000{rng.randrange(1, 6)}"


#: (weight per thousand, mutation) — the rest are clean payable claims.
MIX: list[tuple[int, Mutation]] = [
    (20, _set(ndc="00074-4339-02", quantity_dispensed=2, days_supply=28)),  # 75 PA
    (18, _set(ndc="00069-4220-30", quantity_dispensed=6, days_supply=30)),  # 70 excluded
    (14, _set(ndc="00169-4132-12", quantity_dispensed=6, days_supply=30)),  # 76 QL
    (12, _terminated),  # 65 not covered
    (6, _set(group_id="GRP999")),  # 06 unknown group
    (10, _set(bin="777777", pcn="NOSUCHPCN")),  # 404 → 04
    (12, _set(ndc="00378-1803-10", quantity_dispensed=30, days_supply=30)),  # obsolete: WARN
    (10, _set(ndc="00088-2220-33", quantity_dispensed=10, days_supply=30)),  # step: WARN
    (5, _set(ndc="0071015523")),  # ambiguous 10-digit NDC
    (4, _set(ndc="0071-01552-3")),  # not an NDC configuration
    (4, _drop("plan_id")),
    (3, _set(pos="1A")),
    (3, _set(quantity_dispensed=-30)),
    (3, _set(days_supply=0)),
    (3, _set(date_of_service="2026-02-30")),
    (4, _set(ndc="12345-6789-01")),  # not in the crosswalk
    (3, _set(prescriber_id="1234567890")),  # NPI check digit fails
    (2, _drop("cardholder_id")),
    (2, _set(ingredient_cost_submitted=-4.5)),
]


def sample_claims(n: int, seed: int = 2026) -> Iterator[dict[str, Any] | str]:
    """``n`` claims; a str item is a raw malformed line (for line-based formats)."""
    rng = random.Random(seed)
    cumulative, total = [], 0
    for weight, mutation in MIX:
        total += weight
        cumulative.append((total, mutation))
    for index in range(1, n + 1):
        yield _one(rng, index, cumulative)


def _one(rng: random.Random, index: int, mix: list[tuple[int, Mutation]]) -> dict[str, Any] | str:
    claim = payable_claim(rng, index)
    roll = rng.randrange(1000)
    if roll >= 996:  # four in a thousand: a line that is not JSON at all
        return '{"claim_id": "RX' + f"{index:08d}" + '", "bin": "610014", "ndc": '
    if roll >= 993:  # three in a thousand: a claim id sent twice
        claim["claim_id"] = f"RX{max(1, index - 1):08d}"
    for limit, mutation in mix:
        if roll < limit:
            mutation(claim, rng)
            break
    return claim
