"""The sandbox PBM gateway: docs/protocol.md over real HTTP, with fault knobs.

Endpoints (JSON bodies unless said otherwise):

``POST /oauth2/token``
    RFC 6749 section 4.4, form-encoded; client credentials in the form or in
    HTTP Basic. 400 ``invalid_request`` (not form-encoded, missing or repeated
    parameter), 400 ``unsupported_grant_type``, 400 ``invalid_scope``, 401
    ``invalid_client``; else 200 ``{"access_token", "token_type": "Bearer",
    "expires_in", "scope"}``. Tokens are random and live ``token_lifetime``.
``POST /v1/claims``
    401 ``invalid_token`` (missing, unknown or revoked token) or
    ``session_expired``; 400 ``invalid_request`` naming the missing or bad
    header (``X-PBM-Client-ID``, ``Idempotency-Key``, ``X-Adjudication-Session-TTL``)
    or body field; 403 ``client_mismatch``; 415 when the body is not JSON;
    then ``rxfleet.gateway.sandbox.adjudicator`` decides: 200 (``P`` or ``R``) or 404
    ``unknown_route``. The first 200 of an Idempotency-Key is stored: a repeat
    returns it (200, same body, ``Idempotent-Replayed: true``) without a new
    adjudication; a repeat with a different body is 422 ``idempotency_key_reused``.
    A body with ``transaction_code`` ``B2`` (reversal) or ``B3`` (rebill) is
    a transaction against the books (``rxfleet.gateway.sandbox.state``): a
    reversal is answered ``A`` or ``R 87``; a second billing of a paid Rx ``R 83``.
``GET /v1/books``
    The paid claims not reversed: ``{"claims": [{"claim_id", "key",
    "authorization_number", "amount_paid", "patient_pay"}], "count",
    "total_paid", "total_paid_cents"}`` (see ``Books.report``).
``GET /v1/claims/pending``, ``POST /v1/claims/ack``, ``GET /v1/_sandbox/portal``
    The payer portal (``rxfleet.gateway.sandbox.portal``): pending claims from the
    scenario's ``portal``, pulled and acknowledged by cursor, under a rate limit.
``GET /v1/_sandbox/stats`` / ``POST /v1/_sandbox/reset``
    What the gateway received (see ``GatewayState.stats``) / forget it all
    (the books too).

Faults come from a ``rxfleet.gateway.sandbox.scenario.Scenario`` (every knob documented there).
They hit a claim request in this order: latency, dropped connection, 429/503,
revocation, 401 storm, token check, headers, adjudication, dropped response.

Serving: ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive and TCP_NODELAY on
every accepted socket (without it a kept-alive request costs ~40 ms of Nagle
plus delayed ACK: ``bench/gateway_latency.py``). Quiet: no per-request lines,
and bodies are never logged (they hold PHI).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from config.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, get_settings
from rxfleet.gateway.sandbox.adjudicator import Adjudicator, PlanBook
from rxfleet.gateway.sandbox.handler import TOKEN_PATH, SandboxHTTPServer
from rxfleet.gateway.sandbox.portal import Portals
from rxfleet.gateway.sandbox.scenario import Scenario
from rxfleet.gateway.sandbox.state import GatewayState

log = logging.getLogger(__name__)


class SandboxGateway:
    """The sandbox PBM gateway on a real port; ``with SandboxGateway() as gw: ...``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        plans: Path | None = None,
        scenario: Scenario | None = None,
        client_id: str = SANDBOX_CLIENT_ID,
        client_secret: str = SANDBOX_CLIENT_SECRET,
        *,
        tcp_nodelay: bool = True,
    ) -> None:
        book = PlanBook.load(plans or get_settings().sandbox_plans)
        self.state = GatewayState(
            Adjudicator(book), scenario or Scenario(), client_id, client_secret
        )
        self.portals = Portals(self.state.scenario.portal)
        self._address = (host, port)
        self._tcp_nodelay = tcp_nodelay
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = False

    def listen(self) -> SandboxGateway:
        """Bind and listen (once); connections queue until serving starts."""
        if self._server is None:
            self._server = SandboxHTTPServer(
                self._address, self.state, self._tcp_nodelay, self.portals
            )
        return self

    def start(self) -> SandboxGateway:
        """Listen and serve in a daemon thread; returns once the port accepts connections."""
        server = self._listening()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"sandbox-gateway-{server.server_port}",
        )
        self._serving = True
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Listen and serve in the calling thread until ``stop()`` from another thread."""
        server = self._listening()
        self._serving = True
        server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        """Stop serving, hang up kept-alive connections, free the port."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._serving:
            server.shutdown()
            self._serving = False
        server.hang_up_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _listening(self) -> SandboxHTTPServer:
        self.listen()
        assert self._server is not None
        if self._serving:
            raise RuntimeError("the sandbox gateway is already serving")
        return self._server

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (what RXFLEET_GATEWAY_URL names)."""
        if self._server is None:
            raise RuntimeError("the sandbox gateway is not listening")
        return f"http://{self._server.server_name}:{self._server.server_port}"

    @property
    def token_url(self) -> str:
        """The token endpoint (what RXFLEET_TOKEN_URL names)."""
        return self.url + TOKEN_PATH

    @property
    def scenario(self) -> Scenario:
        """The faults in force."""
        return self.state.scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        if scenario.portal != self.state.scenario.portal:  # a new portal starts afresh
            self.portals.configure(scenario.portal)
        self.state.set_scenario(scenario)

    def stats(self) -> dict[str, Any]:
        """Same as ``GET /v1/_sandbox/stats``."""
        return self.state.stats()

    def books(self) -> dict[str, Any]:
        """Same as ``GET /v1/books``."""
        return self.state.books()

    def reset(self) -> None:
        """Same as ``POST /v1/_sandbox/reset``."""
        self.state.reset()
        self.portals.reset()

    def portal_url(self, name: str = "") -> str:
        """A portal's URL (what RXFLEET_PORTAL_URL names): the default, or ``name``'s."""
        return f"{self.url}/portals/{name}" if name else self.url

    def portal_stats(self, name: str = "", detail: bool = False) -> dict[str, Any]:
        """Same as ``GET {portal}/v1/_sandbox/portal``."""
        portal = self.portals.named(name) if name else self.portals.default
        return portal.stats(detail)

    def __enter__(self) -> SandboxGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_gateway(host: str, port: int, scenario_path: Path | None) -> None:
    """``rxfleet gateway``: one log line with the URL, then serve until interrupted."""
    scenario = Scenario.load(scenario_path) if scenario_path is not None else None
    gateway = SandboxGateway(host, port, scenario=scenario).listen()
    log.info("sandbox PBM gateway on %s (token endpoint %s)", gateway.url, gateway.token_url)
    try:
        gateway.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
