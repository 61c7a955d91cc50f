"""The payer portal's client: pending claims by cursor, acknowledgements (docs/protocol.md).

Same headers as a claim request (the shared portal token, ``X-PBM-Client-ID``,
``X-Adjudication-Session-TTL``), over one ``requests.Session`` built like the
gateway client's. Answers map into ``rxfleet.errors`` as the gateway's do:

======================================  =====================================
what happened                           raised
======================================  =====================================
200                                     (returns a ``Page`` / ``Acked``)
401                                     ``AuthenticationFailed``
429                                     ``RateLimited(retry_after=...)``
5xx                                     ``GatewayUnavailable(retry_after=...)``
200 whose body is not a page            ``GatewayUnavailable``
other 4xx                               ``GatewayRejectedRequest(status=...)``
timeout, refused, reset                 ``GatewayTimeout``
======================================  =====================================

Every 200's ``X-RateLimit-*`` headers come back as ``RateLimit``, for the pacer
(a 429 or 503 carries its ``Retry-After``). Messages name the request, never a
claim value.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from config.settings import Settings
from rxfleet.errors import (
    AuthenticationFailed,
    GatewayRejectedRequest,
    GatewayUnavailable,
    RateLimited,
    RxFleetError,
)
from rxfleet.gateway.client import (
    REJ_INVALID_TOKEN,
    TRANSPORT_ERRORS,
    build_session,
    parse_retry_after,
    transport_error,
)
from rxfleet.gateway.pacing import RateLimit

PENDING_PATH = "/v1/claims/pending"
ACK_PATH = "/v1/claims/ack"


@dataclass(frozen=True)
class Page:
    """One answer of pending claims: the claims (raw objects, PHI included: never logged)
    in the portal's order, the page's cursor, and the rate-limit headers."""

    claims: list[dict[str, Any]] = field(repr=False)
    cursor: str | None
    limit: RateLimit


class PortalClient:
    """``pending`` and ``ack`` against ``RXFLEET_PORTAL_URL``."""

    def __init__(self, settings: Settings, *, session: requests.Session | None = None) -> None:
        if not settings.portal_url:
            raise RxFleetError("RXFLEET_PORTAL_URL is not set")
        self.base = settings.portal_url.rstrip("/")
        self.client_id = settings.credentials()[0]
        self.session = session if session is not None else build_session(settings)
        self._timeout = (settings.connect_timeout, settings.read_timeout)

    def pending(self, after: str | None, limit: int, token: str, ttl: float) -> Page:
        """Up to ``limit`` pending claims after ``after`` (None: from the oldest)."""
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        response = self._send("GET", PENDING_PATH, token, ttl, params=params)
        body = _object(response, f"GET {self.base}{PENDING_PATH}")
        claims, cursor = body.get("claims"), body.get("cursor")
        if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
            raise GatewayUnavailable(f"GET {self.base}{PENDING_PATH}: the answer is not a page")
        return Page(
            claims, cursor if isinstance(cursor, str) else None, RateLimit.of(response.headers)
        )

    def ack(self, cursor: str, token: str, ttl: float) -> RateLimit:
        """Acknowledge every claim up to and including ``cursor``."""
        response = self._send("POST", ACK_PATH, token, ttl, json={"cursor": cursor})
        return RateLimit.of(response.headers)

    def _send(
        self, method: str, path: str, token: str, ttl: float, **kwargs: Any
    ) -> requests.Response:
        where = f"{method} {self.base}{path}"
        headers = {
            "Authorization": f"Bearer {token}",
            "X-PBM-Client-ID": self.client_id,
            "X-Adjudication-Session-TTL": str(max(0, int(ttl))),
        }
        try:
            response = self.session.request(method, self.base + path, headers=headers,
                                            timeout=self._timeout, allow_redirects=False,
                                            **kwargs)  # fmt: skip
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, where, None) from None
        if response.status_code != 200:
            raise status_error(response.status_code, response.headers, where)
        return response

    def close(self) -> None:
        self.session.close()


def status_error(status: int, headers: Mapping[str, str], where: str) -> RxFleetError:
    """The error a non-200 portal answer means (the table in the module docstring)."""
    retry_after = parse_retry_after(headers.get("Retry-After"), time.time())
    error: RxFleetError
    if status == 401:
        error = AuthenticationFailed(f"{where}: 401", reason=REJ_INVALID_TOKEN, request=where)
    elif status == 429:
        error = RateLimited(f"{where}: 429", request=where, retry_after=retry_after)
    elif status >= 500:
        error = GatewayUnavailable(f"{where}: {status}", request=where, retry_after=retry_after)
    else:
        error = GatewayRejectedRequest(f"{where}: {status}", status=status, request=where)
    return error


def _object(response: requests.Response, where: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GatewayUnavailable(f"{where}: the answer is not a JSON object", request=where)
    return body
