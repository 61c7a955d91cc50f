"""The sandbox plays the payer: it signs formulary events and sends them to a webhook.

``formulary_event`` builds an event; ``send`` signs it (``rxfleet.gateway.signing``)
and POSTs it, returning the HTTP status (204: kept). From a shell::

    RXFLEET_WEBHOOK_SECRET=... python -m rxfleet.gateway.sandbox.publisher \\
        --url http://127.0.0.1:8710/v1/formulary --sequence 1 \\
        --ndc 00071015523 --gpi 39400010100310 --not-covered

prints the status and exits 0 on a 204.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from config import get_settings
from rxfleet.errors import ConfigError
from rxfleet.gateway.signing import HEADER, sign


def change(
    ndc11: str, gpi14: str, *, covered: bool = True, tier: int | None = None,
    prior_auth: bool = False, step_therapy: bool = False, quantity_limit: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One change of an event: an NDC's whole formulary state."""
    return {"ndc11": ndc11, "gpi14": gpi14, "covered": covered, "tier": tier,
            "prior_auth": prior_auth, "step_therapy": step_therapy,
            "quantity_limit": quantity_limit}  # fmt: skip


def formulary_event(
    sequence: int, changes: Sequence[dict[str, Any]], event_id: str | None = None
) -> dict[str, Any]:
    """An event published now (its id random unless given)."""
    return {
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "sequence": sequence,
        "published_at": datetime.now(UTC).isoformat(),
        "changes": list(changes),
    }


def signed(secret: bytes, event: dict[str, Any], timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and its ``X-PBM-Signature`` value."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, sign(secret, body, timestamp)


def send(
    url: str, secret: bytes, event: dict[str, Any], *, timestamp: int | None = None,
    session: requests.Session | None = None, timeout: float = 10.0,
) -> int:  # fmt: skip
    """POST ``event`` signed with ``secret`` to the webhook at ``url``; the HTTP status."""
    body, signature = signed(secret, event, timestamp)
    headers = {HEADER: signature, "Content-Type": "application/json"}
    poster = session or requests
    return poster.post(url, data=body, headers=headers, timeout=timeout).status_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rxfleet.gateway.sandbox.publisher",
                                     description="sign and send one formulary event")  # fmt: skip
    parser.add_argument("--url", default="http://127.0.0.1:8710/v1/formulary")
    parser.add_argument("--sequence", type=int, required=True, help="the event's sequence")
    parser.add_argument("--ndc", required=True, help="the NDC-11 it changes")
    parser.add_argument("--gpi", required=True, help="the NDC's GPI-14")
    parser.add_argument("--not-covered", action="store_true", help="the NDC is not covered")
    parser.add_argument("--tier", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        secret = get_settings().webhook_secret_or_raise()
    except ConfigError as exc:
        print(f"publisher: {exc}", file=sys.stderr)
        return 2
    one = change(args.ndc, args.gpi, covered=not args.not_covered, tier=args.tier)
    event = formulary_event(args.sequence, [one])
    status = send(args.url, secret, event)
    print(f"{event['event_id']} sequence {args.sequence}: HTTP {status}")
    return 0 if status == 204 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
