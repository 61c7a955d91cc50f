"""What the portal tests read: the sandbox portal's counters, and the system of
record's results and acknowledgements of a portal's claims."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import requests

from bench.harness import Fleet


def new_portal(fleet: Fleet) -> tuple[str, dict[str, str]]:
    """A fresh named portal of the fleet's sandbox: its URL and the sync's environment."""
    url = f"{fleet.gateway}/portals/t{uuid.uuid4().hex[:10]}"
    return url, {**fleet.env, "RXFLEET_PORTAL_URL": url}


def portal_stats(url: str) -> dict[str, Any]:
    """The sandbox portal's counters, with every claim's listing and acknowledgement."""
    stats: dict[str, Any] = requests.get(f"{url}/v1/_sandbox/portal?detail=1", timeout=30).json()
    return stats


def recorded_by_portal(fleet: Fleet, portal: str) -> list[tuple[str, str, float]]:
    """(claim id, source, recorded at) of every result of ``portal``'s claims (by id)."""
    with psycopg.connect(fleet.database_url) as conn:
        rows = conn.execute(
            """SELECT r.claim_id, r.source, extract(epoch FROM r.recorded_at)
            FROM portal_claims p JOIN results r ON r.run_id = p.run_id AND r.seq = p.seq
            WHERE p.portal = %s ORDER BY p.pos""",
            (portal,),
        ).fetchall()
    return [(str(c), str(s), float(t)) for c, s, t in rows]


def check_drained(fleet: Fleet, url: str, portal: str) -> None:
    """Every claim of the portal recorded once and acknowledged once, in order, after
    its record; none adjudicated twice; every result's source ``portal:<cursor>``."""
    stats = portal_stats(url)
    claims = stats["claims"]
    rows = recorded_by_portal(fleet, portal)
    assert [c for c, _, _ in rows] == [c["claim_id"] for c in claims]  # each once, in order
    assert stats["pending"] == 0 and stats["acked"] == stats["total"] == len(claims)
    assert stats["acks_ahead"] == 0
    for claim, (_, source, at) in zip(claims, rows, strict=True):
        assert source == f"portal:{claim['cursor']}"
        assert claim["acked_at"] is not None and claim["acked_at"] >= at  # never ahead
    ids = {c["claim_id"] for c in claims}
    gateway = fleet.gateway_claims()
    assert all(gateway[i]["adjudications"] == 1 for i in ids)
