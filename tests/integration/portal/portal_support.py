"""The portal tests' reading of the sandbox portal, the system of record and the
gateway: the same checks as ``python -m bench.portal`` (``bench.portal.verdict``)."""

from __future__ import annotations

import uuid
from typing import Any

from bench.harness import Fleet
from bench.portal import verdict


def new_portal(fleet: Fleet) -> tuple[str, dict[str, str]]:
    """A fresh named portal of the fleet's sandbox: its URL and the sync's environment."""
    url = f"{fleet.gateway}/portals/t{uuid.uuid4().hex[:10]}"
    return url, {**fleet.env, "RXFLEET_PORTAL_URL": url}


def check_drained(fleet: Fleet, url: str, total: int) -> dict[str, Any]:
    """Every claim of the portal recorded once, in order, its source ``portal:<cursor>``;
    acknowledged once, in order, never before its record; none adjudicated twice."""
    found = verdict(fleet, url)
    assert found["total"] == total and found["pending"] == 0
    assert found["recorded"] == total and found["recorded_once_in_order"]
    assert found["sources_are_cursors"]
    assert found["acked_once_in_order"] and found["acked_after_record"]
    assert found["adjudicated_twice"] == 0
    return found
