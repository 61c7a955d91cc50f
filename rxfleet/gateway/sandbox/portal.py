"""The sandbox payer portal: pending claims pulled in order, acknowledged by cursor.

``GET /v1/claims/pending?limit=N[&after=CURSOR]``
    ``200 {"claims": [...], "cursor"}``: up to ``N`` (at most the scenario's
    ``max_page``) pending claims in the portal's order, oldest first, from the
    first one after ``CURSOR`` (or after the last acknowledged one, whichever is
    later); each claim object carries canonical field names and its own
    ``cursor``; the answer's ``cursor`` is the last claim's (``after`` again, or
    null, when the list is empty). 400 ``invalid_request`` for a bad ``limit``,
    ``invalid_cursor`` for a cursor the portal never issued.
``POST /v1/claims/ack`` ``{"cursor"}``
    Every claim up to and including ``cursor`` is acknowledged and no longer
    listed: ``200 {"acked": n}``. A cursor at or behind the last acknowledged
    one acknowledges nothing (counted ``acks_behind``); one beyond any claim
    ever listed is ``409 cursor_ahead`` (counted ``acks_ahead``).
``GET /v1/_sandbox/portal[?detail=1]``
    The counters (``PortalState.stats``); with ``detail`` also every claim's id,
    cursor, times listed and acknowledgement time.

Several portals: a path that starts ``/portals/{name}`` is portal ``name``'s (its
``RXFLEET_PORTAL_URL`` is ``http://host:port/portals/{name}``), each made on first
use from the same scenario; the bare paths are the default portal's.

Both portal endpoints take the gateway's token and headers (``Authorization:
Bearer``, ``X-PBM-Client-ID``; 401 / 400 / 403 as for a claim) and count against one
fixed-window rate limit (``rate_limit`` requests a ``rate_window``): every answer
carries ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds, decimal),
and a request above the limit is ``429`` with ``Retry-After`` (the window's end).
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rxfleet.claims.synth import payable_claim, sample_claims
from rxfleet.gateway.sandbox.adjudicator import invalid_request
from rxfleet.gateway.sandbox.scenario import Portal
from rxfleet.gateway.sandbox.state import GatewayState

PENDING_PATH = "/v1/claims/pending"
ACK_PATH = "/v1/claims/ack"
PORTAL_STATS_PATH = "/v1/_sandbox/portal"
_CURSOR = re.compile(r"^c([0-9]{8})$")
_NAMED = re.compile(r"^/portals/([A-Za-z0-9_-]{1,40})(/.*)$")

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Reply:
    """One portal answer: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: Headers = field(default_factory=list)


def cursor_of(position: int) -> str:
    """The cursor of the claim at ``position`` (1-based): opaque to the client."""
    return f"c{position:08d}"


def position_of(cursor: str) -> int | None:
    """The 1-based position a cursor names, or None when it is not one of ours."""
    match = _CURSOR.match(cursor)
    return int(match[1]) if match else None


def portal_claims(portal: Portal) -> list[dict[str, Any]]:
    """The scenario's pending claims, in the portal's order (same seed, same claims)."""
    if portal.mix == "payable":
        rng = random.Random(portal.seed)
        claims = [payable_claim(rng, i) for i in range(1, portal.pending + 1)]
    else:
        claims = [_object(c) for c in sample_claims(portal.pending, portal.seed)]
    for index, claim in enumerate(claims, 1):
        claim["claim_id"] = f"{portal.id_prefix}{index:08d}"
    return claims


def _object(claim: dict[str, Any] | str) -> dict[str, Any]:
    """A sample's malformed line as a portal would send it: an object with a bad type."""
    if isinstance(claim, str):
        return {"claim_id": "", "bin": 610014, "ndc": None, "quantity_dispensed": "lots"}
    return claim


@dataclass
class _Window:
    """A fixed rate-limit window."""

    started: float = 0.0
    used: int = 0


@dataclass
class _Counts:
    requests: int = 0
    pull_requests: int = 0
    ack_requests: int = 0
    pulled: int = 0
    acked: int = 0
    acks_behind: int = 0
    acks_ahead: int = 0
    throttled: int = 0
    refused: int = 0  # 400/401/403 answers


class PortalState:
    """The pending claims, the acknowledgement point, the rate window and the counters."""

    def __init__(self, portal: Portal) -> None:
        self._lock = threading.Lock()
        self.configure(portal)

    def configure(self, portal: Portal) -> None:
        """Start afresh with ``portal``'s claims (nothing listed or acknowledged yet)."""
        claims = portal_claims(portal)
        with self._lock:
            self.portal = portal
            self._claims = claims
            self._served = [0] * len(claims)
            self._acked_at: list[float | None] = [None] * len(claims)
            self._acked = 0  # claims acknowledged: the next pending one is at this index
            self._high = 0  # the highest position ever listed
            self._window = _Window()
            self._counts = _Counts()

    def reset(self) -> None:
        self.configure(self.portal)

    # -- the rate limit ----------------------------------------------------

    def admit(self, now: float) -> Reply | None:
        """Count a request against the window: None when admitted, else the 429."""
        portal = self.portal
        with self._lock:
            self._counts.requests += 1
            if not portal.rate_limit:
                return None
            window = self._window
            if now - window.started >= portal.rate_window:
                window.started, window.used = now, 0
            if window.used < portal.rate_limit:
                window.used += 1
                return None
            self._counts.throttled += 1
            wait = window.started + portal.rate_window - now
        return Reply(429, {"error": "rate_limited"}, [("Retry-After", _seconds(wait))])

    def rate_headers(self, now: float) -> Headers:
        """``X-RateLimit-Remaining`` and ``-Reset`` after this request (none without a limit)."""
        portal = self.portal
        if not portal.rate_limit or not portal.rate_headers:
            return []
        with self._lock:
            left = max(0, portal.rate_limit - self._window.used)
            reset = max(0.0, self._window.started + portal.rate_window - now)
        return [("X-RateLimit-Remaining", str(left)), ("X-RateLimit-Reset", _seconds(reset))]

    def refused(self) -> None:
        with self._lock:
            self._counts.refused += 1

    # -- pending and acknowledgement ---------------------------------------

    def pending(self, after: str | None, limit: int) -> Reply:
        """Up to ``limit`` pending claims after ``after`` (see the module docstring)."""
        start = position_of(after) if after is not None else 0
        if start is None or start > len(self._claims):
            return Reply(400, {"error": "invalid_cursor"})
        with self._lock:
            self._counts.pull_requests += 1
            first = max(start, self._acked)
            page = list(
                range(first, min(first + min(limit, self.portal.max_page), len(self._claims)))
            )
            for index in page:
                self._served[index] += 1
            self._counts.pulled += len(page)
            self._high = max(self._high, page[-1] + 1 if page else 0)
            claims = [{**self._claims[i], "cursor": cursor_of(i + 1)} for i in page]
        cursor = claims[-1]["cursor"] if claims else after
        return Reply(200, {"claims": claims, "cursor": cursor})

    def ack(self, cursor: Any, now: float) -> Reply:
        """Acknowledge every claim up to and including ``cursor``."""
        position = position_of(cursor) if isinstance(cursor, str) else None
        if position is None:
            return Reply(400, {"error": "invalid_cursor"})
        with self._lock:
            self._counts.ack_requests += 1
            if position > self._high:
                self._counts.acks_ahead += 1
                return Reply(409, {"error": "cursor_ahead"})
            if position <= self._acked:
                self._counts.acks_behind += 1
                return Reply(200, {"acked": 0})
            for index in range(self._acked, position):
                self._acked_at[index] = now
            count, self._acked = position - self._acked, position
            self._counts.acked += count
        return Reply(200, {"acked": count})

    def stats(self, detail: bool = False) -> dict[str, Any]:
        """The counters: ``total``, ``pending``, ``requests``, ``pull_requests``,
        ``ack_requests``, ``pulled`` (claims listed, repeats included), ``pulled_twice``
        (claims listed more than once), ``acked``, ``acks_behind``, ``acks_ahead``,
        ``throttled`` (429s), ``refused``; with ``detail``, ``claims``: each one's
        ``claim_id``, ``cursor``, ``served`` and ``acked_at`` (epoch seconds or null)."""
        with self._lock:
            out: dict[str, Any] = {
                "total": len(self._claims),
                "pending": len(self._claims) - self._acked,
                **self._counts.__dict__,
                "pulled_twice": sum(1 for n in self._served if n > 1),
            }
            if detail:
                out["claims"] = [
                    {"claim_id": c["claim_id"], "cursor": cursor_of(i + 1),
                     "served": self._served[i], "acked_at": self._acked_at[i]}
                    for i, c in enumerate(self._claims)
                ]  # fmt: skip
        return out


class Portals:
    """The default portal and the named ones, all from one scenario."""

    def __init__(self, portal: Portal) -> None:
        self._lock = threading.Lock()
        self.configure(portal)

    def configure(self, portal: Portal) -> None:
        """Every portal afresh with ``portal``'s claims (named ones made again on use)."""
        with self._lock:
            self.config = portal
            self.default = PortalState(portal)
            self._named: dict[str, PortalState] = {}

    def reset(self) -> None:
        self.configure(self.config)

    def named(self, name: str) -> PortalState:
        with self._lock:
            if name not in self._named:
                self._named[name] = PortalState(self.config)
            return self._named[name]

    def route(self, path: str) -> tuple[PortalState, str]:
        """The portal a request path is for, and the path without its ``/portals/{name}``."""
        match = _NAMED.match(path)
        if match is None:
            return self.default, path
        return self.named(match[1]), match[2]


def _seconds(value: float) -> str:
    """Seconds as a short decimal, rounded up to the millisecond."""
    return f"{math.ceil(max(0.0, value) * 1000) / 1000:g}"


def limit_of(text: str | None, default: int = 100) -> int | None:
    """The ``limit`` query parameter (1 or more), or None when it is not a number."""
    if text is None:
        return default
    return int(text) if text.isdigit() and int(text) >= 1 else None


Check = Callable[[], Reply | None]
_TTL = re.compile(r"^[0-9]+$")


def pending_reply(
    portal: PortalState, gateway: GatewayState, headers: Mapping[str, str], path: str
) -> Reply:
    """The answer to ``GET /v1/claims/pending?...`` (``path`` with its query)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    after = query["after"][0] if query.get("after") else None
    limit = limit_of(query["limit"][0] if query.get("limit") else None)

    def answer() -> Reply:
        if limit is None:
            return Reply(400, invalid_request("limit").body)
        return portal.pending(after, limit)

    return serve(portal, _checks(gateway, headers), answer)


def ack_reply(
    portal: PortalState, gateway: GatewayState, headers: Mapping[str, str], raw: bytes
) -> Reply:
    """The answer to ``POST /v1/claims/ack`` with body ``raw``."""

    def answer() -> Reply:
        try:
            body = json.loads(raw)
        except ValueError:
            return Reply(400, invalid_request("body").body)
        cursor = body.get("cursor") if isinstance(body, dict) else None
        return portal.ack(cursor, time.time())

    return serve(portal, _checks(gateway, headers), answer)


def _checks(gateway: GatewayState, headers: Mapping[str, str]) -> list[Check]:
    """The token, then the headers of the gateway protocol (as for a claim); ``headers``
    by lower-case name."""

    def token() -> Reply | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        error = gateway.token_error(value.strip() if scheme.lower() == "bearer" else None)
        if error is None:
            return None
        challenge = (
            f'Bearer realm="rxfleet-sandbox", error="invalid_token", error_description="{error}"'
        )
        return Reply(401, {"error": error}, [("WWW-Authenticate", challenge)])

    def client() -> Reply | None:
        client_id = headers.get("x-pbm-client-id")
        if not client_id:
            return Reply(400, invalid_request("X-PBM-Client-ID").body)
        if client_id != gateway.client_id:
            return Reply(403, {"error": "client_mismatch"})
        if not _TTL.match(headers.get("x-adjudication-session-ttl", "")):
            return Reply(400, invalid_request("X-Adjudication-Session-TTL").body)
        return None

    return [token, client]


def serve(state: PortalState, checks: list[Check], answer: Callable[[], Reply]) -> Reply:
    """Admit the request (rate limit first, then each of ``checks``: token, headers),
    then ``answer`` it; every admitted answer carries the rate-limit headers."""
    now = time.time()
    refused = state.admit(now)
    if refused is not None:
        return refused
    for check in checks:
        problem = check()
        if problem is not None:
            state.refused()
            return Reply(problem.status, problem.body, problem.headers + state.rate_headers(now))
    reply = answer()
    return Reply(reply.status, reply.body, reply.headers + state.rate_headers(now))
