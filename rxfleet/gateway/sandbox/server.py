"""The sandbox PBM gateway: CONTRACT section 5 over real HTTP, with fault knobs.

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
``GET /v1/_sandbox/stats`` / ``POST /v1/_sandbox/reset``
    What the gateway received (see ``GatewayState.stats``) / forget it all.

Faults come from a ``rxfleet.gateway.sandbox.scenario.Scenario`` (every knob documented there).
They hit a claim request in this order: latency, dropped connection, 429/503,
revocation, 401 storm, token check, headers, adjudication, dropped response.

Serving: ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive and TCP_NODELAY on
every accepted socket (without it a kept-alive request costs ~40 ms of Nagle
plus delayed ACK: ``bench/gateway_latency.py``). Quiet: no per-request lines,
and bodies are never logged (they hold PHI).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from types import TracebackType
from typing import Any

from config.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_SCOPE, get_settings
from rxfleet.gateway.sandbox.adjudicator import Adjudicator, Answer, PlanBook, invalid_request
from rxfleet.gateway.sandbox.scenario import Scenario, Throttle, matches

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/token"
CLAIMS_PATH = "/v1/claims"
STATS_PATH = "/v1/_sandbox/stats"
RESET_PATH = "/v1/_sandbox/reset"

MAX_BODY = 1 << 20
LOG_LIMIT = 50_000
IDLE_TIMEOUT = 75.0
_TTL = re.compile(r"^[0-9]+$")


@dataclass(slots=True)
class _KeyCount:
    requests: int = 0
    adjudications: int = 0


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the scenario holds in store for one claim request."""

    attempt: int
    claim_no: int
    delay: float = 0.0
    drop: bool = False
    drop_after: bool = False
    throttle: Throttle | None = None


@dataclass(slots=True)
class _Storm:
    started: float | None = None
    hits: int = 0


@dataclass(slots=True)
class _Counters:
    requests: int = 0
    claim_requests: int = 0
    adjudications: int = 0
    token_fetches: int = 0
    tokens_issued: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    keys: dict[str, _KeyCount] = field(default_factory=dict)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))


class GatewayState:
    """Tokens, the idempotency store, counters and the request log, behind one lock."""

    def __init__(
        self, adjudicator: Adjudicator, scenario: Scenario, client_id: str, client_secret: str
    ) -> None:
        self.adjudicator = adjudicator
        self.client_id = client_id
        self._secret = client_secret
        self._lock = threading.Lock()
        self._scenario = scenario
        self._tokens: dict[str, float] = {}
        self._stored: dict[str, _Stored] = {}
        self._storm = _Storm()
        self._counts = _Counters()

    @property
    def scenario(self) -> Scenario:
        """The faults in force."""
        return self._scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch faults; a storm starts afresh, tokens and stored answers stay."""
        with self._lock:
            self._scenario = scenario
            self._storm = _Storm()

    def reset(self) -> None:
        """Forget tokens, stored answers, counters and the log (the scenario stays)."""
        with self._lock:
            self._tokens.clear()
            self._stored.clear()
            self._storm = _Storm()
            self._counts = _Counters()

    # -- token endpoint --------------------------------------------------

    def grant(self, params: dict[str, str] | None, basic: tuple[str, str] | None) -> Answer:
        """The token endpoint's answer; ``params`` is None when the body is not a form."""
        with self._lock:
            self._counts.token_fetches += 1
        grant_type = params.get("grant_type") if params is not None else None
        if params is None or grant_type is None:
            return Answer(400, {"error": "invalid_request"})
        if grant_type != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type"})
        client_id, secret = basic or (params.get("client_id", ""), params.get("client_secret", ""))
        if not (_same(client_id, self.client_id) and _same(secret, self._secret)):
            return Answer(401, {"error": "invalid_client"})
        scope = params.get("scope") or SANDBOX_SCOPE
        if not set(scope.split()) <= {SANDBOX_SCOPE}:
            return Answer(400, {"error": "invalid_scope"})
        return Answer(200, self._issue(scope))

    def _issue(self, scope: str) -> dict[str, Any]:
        lifetime = self._scenario.token_lifetime
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now - 3600}
            self._tokens[token] = now + lifetime
            self._counts.tokens_issued += 1
        expires_in = int(lifetime) if float(lifetime).is_integer() else lifetime
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scope,
        }

    # -- claims ----------------------------------------------------------

    def admit(self, key: str) -> Ticket:
        """Count a claim request and decide its faults."""
        with self._lock:
            counts = self._counts
            counts.claim_requests += 1
            per_key = counts.keys.setdefault(key, _KeyCount())
            per_key.requests += 1
            attempt, claim_no, scenario = per_key.requests, counts.claim_requests, self._scenario
        return _ticket(scenario, key, attempt, claim_no)

    def authenticate(self, token: str | None, claim_no: int) -> str | None:
        """None when the token is good, else the 401 error code."""
        now = time.time()
        with self._lock:
            every = self._scenario.revoke_every
            if every and claim_no % every == 0:
                self._tokens.clear()
            storm_error = self._storming(claim_no, now)
            if storm_error is not None:
                return storm_error
            expires_at = self._tokens.get(token or "")
        if expires_at is None:
            return "invalid_token"
        return "session_expired" if expires_at <= now else None

    def _storming(self, claim_no: int, now: float) -> str | None:
        storm = self._scenario.storm
        if storm is None or claim_no <= storm.start_after:
            return None
        if self._storm.started is None:
            self._storm.started = now
        over_count = storm.requests and self._storm.hits >= storm.requests
        over_time = storm.seconds and now - self._storm.started >= storm.seconds
        if over_count or over_time or not (storm.requests or storm.seconds):
            return None
        self._storm.hits += 1
        return storm.error

    def settle(self, key: str, raw: bytes) -> tuple[Answer, bool]:
        """Adjudicate once per key; a repeat replays. Returns (answer, replayed)."""
        try:
            claim = json.loads(raw)
        except ValueError:
            return invalid_request("body"), False
        if not isinstance(claim, dict):
            return invalid_request("body"), False
        canonical = json.dumps(claim, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        with self._lock:
            stored = self._stored.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    return Answer(422, {"error": "idempotency_key_reused"}), False
                return Answer(200, stored.body), True
            answer = self.adjudicator.adjudicate(claim, self._scenario.unknown_routes)
            if answer.status == 200:
                self._stored[key] = _Stored(fingerprint, answer.body)
                self._counts.adjudications += 1
                self._counts.keys.setdefault(key, _KeyCount()).adjudications += 1
        return answer, False

    # -- bookkeeping -----------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Count one answered (or dropped) request and log it."""
        with self._lock:
            self._counts.requests += 1
            self._counts.by_status[str(entry["status"])] += 1
            self._counts.log.append(entry)

    def stats(self) -> dict[str, Any]:
        """Everything counted since start or the last reset; no PHI (keys are claim ids).

        ``{"requests", "by_status": {"200": n, "dropped": n, ...}, "token_fetches",
        "tokens_issued", "claim_requests", "adjudications",
        "keys": {key: {"requests", "adjudications"}},
        "log": [{"path", "key", "status", "started", "finished", "retry_after",
        "not_before", "replayed"}]}``; times are epoch seconds.
        """
        with self._lock:
            c = self._counts
            return {
                "requests": c.requests,
                "by_status": dict(c.by_status),
                "token_fetches": c.token_fetches,
                "tokens_issued": c.tokens_issued,
                "claim_requests": c.claim_requests,
                "adjudications": c.adjudications,
                "keys": {
                    k: {"requests": v.requests, "adjudications": v.adjudications}
                    for k, v in c.keys.items()
                },
                "log": list(c.log),
            }


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _ticket(scenario: Scenario, key: str, attempt: int, claim_no: int) -> Ticket:
    delay = scenario.latency_ms / 1000
    if scenario.jitter_ms:
        delay += scenario.roll("jitter", key, attempt) * scenario.jitter_ms / 1000
    drop = drop_after = False
    for i, d in enumerate(scenario.drops):
        if matches(scenario, d, f"drop{i}", key, attempt):
            drop_after = drop_after or d.after_adjudication
            drop = drop or not d.after_adjudication
    throttle = next(
        (
            t
            for i, t in enumerate(scenario.throttles)
            if matches(scenario, t, f"throttle{i}", key, attempt)
        ),
        None,
    )
    return Ticket(attempt, claim_no, delay, drop, drop_after, throttle)


def retry_after_header(seconds: float, style: str, now: float) -> tuple[str, float]:
    """The Retry-After value and the epoch time it means.

    An HTTP-date is rounded up to the next whole second (it has no fractions);
    a fractional delta is sent as a decimal (not RFC 9110, but fast tests need it).
    """
    if style == "http-date":
        not_before = float(math.ceil(now + seconds))
        return email.utils.formatdate(not_before, usegmt=True), not_before
    text = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    return text, now + seconds


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rxfleet-sandbox/1"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: _Server

    _started: float = 0.0
    _key: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no per-request lines (and never a body)."""

    # -- dispatch --------------------------------------------------------

    def do_POST(self) -> None:
        self._started, self._key = time.time(), None
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        if raw is None:
            return
        if path == TOKEN_PATH:
            self._token(raw)
        elif path == CLAIMS_PATH:
            self._claims(raw)
        elif path == RESET_PATH:
            self.server.state.reset()
            self._send(200, {"reset": True}, record=False)
        else:
            self._send(404, {"error": "not_found"})

    def do_GET(self) -> None:
        self._started, self._key = time.time(), None
        if self.path.split("?", 1)[0] == STATS_PATH:
            self._send(200, self.server.state.stats(), record=False)
        else:
            self._send(404, {"error": "not_found"})

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(411, {"error": "length_required"}, close=True)
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(413, {"error": "bad_content_length"}, close=True)
            return None
        return self.rfile.read(length)

    # -- token endpoint --------------------------------------------------

    def _token(self, raw: bytes) -> None:
        no_store = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        params = _form(raw) if self.headers.get_content_type() == _FORM else None
        basic = _basic_credentials(self.headers.get("Authorization"))
        answer = self.server.state.grant(params, basic)
        if answer.status == 401 and basic is not None:
            no_store.append(("WWW-Authenticate", 'Basic realm="rxfleet-sandbox"'))
        self._send(answer.status, answer.body, no_store)

    # -- claims ----------------------------------------------------------

    def _claims(self, raw: bytes) -> None:
        state = self.server.state
        key = self.headers.get("Idempotency-Key", "")
        self._key = key or None
        ticket = state.admit(key)
        if ticket.delay:
            time.sleep(ticket.delay)
        if ticket.drop:
            self._drop()
        elif ticket.throttle is not None:
            self._throttle(ticket.throttle)
        elif self._authenticated(ticket) and self._headers_ok():
            answer, replayed = state.settle(key, raw)
            if ticket.drop_after:
                self._drop()
                return
            extra = [("Idempotent-Replayed", "true")] if replayed else []
            self._send(answer.status, answer.body, extra, replayed=replayed)

    def _authenticated(self, ticket: Ticket) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        error = self.server.state.authenticate(bearer, ticket.claim_no)
        if error is None:
            return True
        challenge = (
            f'Bearer realm="rxfleet-sandbox", error="invalid_token", error_description="{error}"'
        )
        self._send(401, {"error": error}, [("WWW-Authenticate", challenge)])
        return False

    def _headers_ok(self) -> bool:
        client_id = self.headers.get("X-PBM-Client-ID")
        problem: tuple[int, dict[str, Any]] | None = None
        if not client_id:
            problem = 400, invalid_request("X-PBM-Client-ID").body
        elif client_id != self.server.state.client_id:
            problem = 403, {"error": "client_mismatch"}
        elif not self._key or len(self._key) > 255:
            problem = 400, invalid_request("Idempotency-Key").body
        elif not _TTL.match(self.headers.get("X-Adjudication-Session-TTL", "")):
            problem = 400, invalid_request("X-Adjudication-Session-TTL").body
        elif self.headers.get_content_type() != "application/json":
            problem = 415, {"error": "unsupported_media_type"}
        if problem is not None:
            self._send(*problem)
        return problem is None

    def _throttle(self, throttle: Throttle) -> None:
        headers: list[tuple[str, str]] = []
        value = not_before = None
        if throttle.retry_after is not None:
            style = throttle.retry_after_format
            value, not_before = retry_after_header(throttle.retry_after, style, time.time())
            headers.append(("Retry-After", value))
        error = "rate_limited" if throttle.status == 429 else "unavailable"
        self._send(
            throttle.status, {"error": error}, headers, retry_after=value, not_before=not_before
        )

    # -- answering -------------------------------------------------------

    def _drop(self) -> None:
        """Close the connection without a byte of response."""
        self.close_connection = True
        self._record("dropped", None, None, False)

    def _send(
        self,
        status: int,
        body: dict[str, Any],
        headers: list[tuple[str, str]] | None = None,
        *,
        close: bool = False,
        record: bool = True,
        replayed: bool = False,
        retry_after: str | None = None,
        not_before: float | None = None,
    ) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers or []:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if record:  # before the answer leaves, so a client that has it sees it counted
            self._record(status, retry_after, not_before, replayed)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _record(
        self, status: int | str, retry_after: str | None, not_before: float | None, replayed: bool
    ) -> None:
        self.server.state.record(
            {
                "path": self.path.split("?", 1)[0],
                "key": self._key,
                "status": status,
                "started": self._started,
                "finished": time.time(),
                "retry_after": retry_after,
                "not_before": not_before,
                "replayed": replayed,
            }
        )


_FORM = "application/x-www-form-urlencoded"


def _form(raw: bytes) -> dict[str, str] | None:
    """Form parameters, or None when malformed or one is repeated (RFC 6749 section 3.2)."""
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    return params if len(params) == len(pairs) else None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Client id and secret from HTTP Basic (RFC 6749 section 2.3.1), or None."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: GatewayState, tcp_nodelay: bool) -> None:
        self.state = state
        self.tcp_nodelay = tcp_nodelay
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host."""
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tcp_nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("sandbox gateway: a client went away mid-request")
        else:
            log.exception("sandbox gateway: request handler failed")

    def hang_up_all(self) -> None:
        """End every kept-alive connection so its handler thread finishes."""
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


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
        self._address = (host, port)
        self._tcp_nodelay = tcp_nodelay
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving = False

    def listen(self) -> SandboxGateway:
        """Bind and listen (once); connections queue until serving starts."""
        if self._server is None:
            self._server = _Server(self._address, self.state, self._tcp_nodelay)
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

    def _listening(self) -> _Server:
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
        self.state.set_scenario(scenario)

    def stats(self) -> dict[str, Any]:
        """Same as ``GET /v1/_sandbox/stats``."""
        return self.state.stats()

    def reset(self) -> None:
        """Same as ``POST /v1/_sandbox/reset``."""
        self.state.reset()

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
