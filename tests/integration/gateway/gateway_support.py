"""Helpers shared by the gateway integration tests (imported by name: keep it unique)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from config.settings import Settings
from rxfleet.gateway.sandbox.server import SandboxGateway

#: Distinctive PHI values: no response, stat, log line or error may contain them.
PHI_VALUES = {
    "cardholder_id": "ZPHI4417X9",
    "patient_first_name": "Philomena",
    "patient_last_name": "Quackenbush",
    "date_of_birth": "1961-07-04",
}

ClaimFactory = Callable[..., dict[str, Any]]


def make_settings(gateway: SandboxGateway, **overrides: Any) -> Settings:
    """Settings pointing at ``gateway``, built directly (no environment needed)."""
    values: dict[str, Any] = {
        "gateway_url": gateway.url,
        "token_url": gateway.token_url,
        "client_id": "rxfleet-sandbox",
        "client_secret": "sandbox-secret",
        "sandbox": True,  # the sandbox gateway: its identity header is expected
        "scope": "claims.submit",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "submit_inflight": 4,
        "client_cert": None,
        "client_key": None,
        "ca_bundle": None,
    }
    values.update(overrides)
    return Settings(**values)


def assert_no_phi(text: str) -> None:
    for name, value in PHI_VALUES.items():
        assert value not in text, f"{name} leaked"


class CannedServer:
    """A tiny local HTTP server: every POST gets one canned answer; it records what
    was sent (headers, body). A real socket, so the real transport is what talks to it."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.sent: list[tuple[Message, bytes]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> CannedServer:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _handler(canned: CannedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            canned.sent.append((self.headers, self.rfile.read(length)))
            self.send_response(canned.status)
            for name, value in canned.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``sent``."""

    return Handler
