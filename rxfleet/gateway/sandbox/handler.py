"""The sandbox gateway's HTTP side: the request handler (token and claim
endpoints, faults applied in order) and the threading HTTP server that carries
the state, with TCP_NODELAY on every accepted socket."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
import urllib.parse
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

from config.settings import SANDBOX_IDENTITY_HEADER
from rxfleet.gateway.sandbox.adjudicator import invalid_request
from rxfleet.gateway.sandbox.portal import (
    ACK_PATH,
    PENDING_PATH,
    PORTAL_STATS_PATH,
    Portals,
    PortalState,
    Reply,
    ack_reply,
    pending_reply,
)
from rxfleet.gateway.sandbox.scenario import Throttle
from rxfleet.gateway.sandbox.state import GatewayState, Ticket, retry_after_header

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/token"
CLAIMS_PATH = "/v1/claims"
STATS_PATH = "/v1/_sandbox/stats"
BOOKS_PATH = "/v1/books"
RESET_PATH = "/v1/_sandbox/reset"

MAX_BODY = 1 << 20
IDLE_TIMEOUT = 75.0
_TTL = re.compile(r"^[0-9]+$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rxfleet-sandbox/1"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: SandboxHTTPServer

    _started: float = 0.0
    _key: str | None = None
    _entered: bool = False  # a claim request counted as being answered

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no per-request lines (and never a body)."""

    # -- dispatch --------------------------------------------------------

    def do_POST(self) -> None:
        self._started, self._key, self._entered = time.time(), None, False
        path = self.path.split("?", 1)[0]
        raw = self._read_body()
        if raw is None:
            return
        if path == TOKEN_PATH:
            self._token(raw)
        elif path == CLAIMS_PATH:
            self._claims(raw)
        elif (portal := self._portal_path())[1] == ACK_PATH:
            self._reply(ack_reply(portal[0], self.server.state, self._lower(), raw))
        elif path == RESET_PATH:
            self.server.state.reset()
            self.server.portals.reset()
            self._send(200, {"reset": True}, record=False)
        else:
            self._send(404, {"error": "not_found"})

    def do_GET(self) -> None:
        self._started, self._key = time.time(), None
        path = self.path.split("?", 1)[0]
        if path == STATS_PATH:
            self._send(200, self.server.state.stats(), record=False)
        elif path == BOOKS_PATH:
            self._send(200, self.server.state.books(), record=False)
        elif self._portal_path()[1] == PENDING_PATH:
            portal, state = self._portal_path()[0], self.server.state
            self._reply(pending_reply(portal, state, self._lower(), self.path))
        elif self._portal_path()[1] == PORTAL_STATS_PATH:
            self._send(200, self._portal_path()[0].stats("detail=1" in self.path), record=False)
        else:
            self._send(404, {"error": "not_found"})

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(411, {"error": "length_required"}, close=True)
            return None
        length = _content_length(self.headers)
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
        state, key = self.server.state, self.headers.get("Idempotency-Key", "")
        self._key, ticket = key or None, state.admit(key)
        self._entered = state.concurrency.enter(state.scenario.max_concurrent)
        if not self._entered:
            self._send(429, {"error": "too_many_requests"})
            return
        try:
            self._answer(ticket, key, raw)
        finally:
            self._left()

    def _left(self) -> None:
        """Uncounted before the answer goes out (the client may send again at once)."""
        if self._entered:
            self._entered = False
            self.server.state.concurrency.leave()

    def _answer(self, ticket: Ticket, key: str, raw: bytes) -> None:
        if ticket.delay:
            time.sleep(ticket.delay)
        if ticket.drop:
            self._drop()
        elif ticket.throttle is not None:
            self._throttle(ticket.throttle)
        elif self._authenticated(ticket) and self._headers_ok():
            answer, replayed = self.server.state.settle(key, raw)
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
        problem = _header_problem(self.headers, self.server.state.client_id, self._key)
        if problem is not None:
            self._send(*problem)
        return problem is None

    def _throttle(self, throttle: Throttle) -> None:
        value = not_before = None
        if throttle.retry_after is not None:
            style = throttle.retry_after_format
            value, not_before = retry_after_header(throttle.retry_after, style, time.time())
        error = "rate_limited" if throttle.status == 429 else "unavailable"
        headers = [("Retry-After", value)] if value is not None else []
        self._send(throttle.status, {"error": error}, headers, retry_after=value,
                   not_before=not_before)  # fmt: skip

    # -- answering -------------------------------------------------------

    def _portal_path(self) -> tuple[PortalState, str]:
        """The portal this request is for and its path within it."""
        return self.server.portals.route(self.path.split("?", 1)[0])

    def _lower(self) -> dict[str, str]:
        """The request's headers by lower-case name."""
        return {name.lower(): value for name, value in self.headers.items()}

    def _reply(self, reply: Reply) -> None:
        """A portal answer (counted by the portal, not in the gateway's log)."""
        self._send(reply.status, reply.body, reply.headers, record=False)

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
        self.send_header(SANDBOX_IDENTITY_HEADER, "1")
        for name, value in headers or []:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if record:  # before the answer leaves, so a client that has it sees it counted
            self._record(status, retry_after, not_before, replayed)
        self._left()
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


def _content_length(headers: Message) -> int:
    """The declared body length (-1: not a number)."""
    try:
        return int(headers.get("Content-Length", "0"))
    except ValueError:
        return -1


def _header_problem(
    headers: Message, client_id: str, key: str | None
) -> tuple[int, dict[str, Any]] | None:
    """The status and body a claim request's headers earn (None: they are in order)."""
    given = headers.get("X-PBM-Client-ID")
    if not given:
        return 400, invalid_request("X-PBM-Client-ID").body
    if given != client_id:
        return 403, {"error": "client_mismatch"}
    if not key or len(key) > 255:
        return 400, invalid_request("Idempotency-Key").body
    if not _TTL.match(headers.get("X-Adjudication-Session-TTL", "")):
        return 400, invalid_request("X-Adjudication-Session-TTL").body
    if headers.get_content_type() != "application/json":
        return 415, {"error": "unsupported_media_type"}
    return None


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


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of clients (hundreds of connections at once) is not refused

    def __init__(
        self, address: tuple[str, int], state: GatewayState, tcp_nodelay: bool,
        portals: Portals,
    ) -> None:  # fmt: skip
        self.state = state
        self.portals = portals
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
