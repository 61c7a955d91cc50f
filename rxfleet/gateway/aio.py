"""The claim endpoint over aiohttp: a window of requests in flight for little CPU.

The submit link's windows go out through one ``AioSender`` per worker process:
an asyncio event loop in a thread of its own and one ``aiohttp.ClientSession``
whose connector holds at most ``RXFLEET_SUBMIT_INFLIGHT`` connections. Every
submit task of the process hands its window over and waits for the answers, so
the process never has more requests in flight than that. Measured against a
``requests.Session`` in a thread pool of the same size, aiohttp costs about a
third of the CPU per request (bench/throughput.py), which is what throughput
is bounded by on a small machine.

Requests and answers are the gateway client's (``ClaimRequest``, ``answer_of``):
the same headers, the same body encoding, the same error mapping. Transport
failures become ``GatewayTimeout``/``GatewayUnavailable`` with no exception
chained (they could carry the body, which holds PHI). The token endpoint
stays on the client's ``requests.Session``.

Under a fleet-wide rate (``RXFLEET_GATEWAY_RATE``) each request takes its slot from
the sender's ``pace`` (``rxfleet.stores.rate``) right before it goes out: one asker
per process at a time, and ``go`` asked again once the slot is there.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from config import Settings
from rxfleet.errors import RxFleetError
from rxfleet.gateway.client import (
    TRANSPORT_ERRORS,
    Adjudication,
    ClaimRequest,
    GatewayClient,
    answer_of,
    transport_error,
)
from rxfleet.gateway.tls import Tls

Result = Adjudication | RxFleetError
Timed = tuple[Result, float]  # an answer and the seconds its request took
#: A send slot under the fleet's rate, now: (True, 0) or (False, seconds until the
#: next); see ``rxfleet.stores.rate``.
Pace = Callable[[], tuple[bool, float]]
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """One claim to send: its body (PHI inside: never logged), token and key."""

    body: Mapping[str, Any]
    token: str
    session_ttl: int
    key: str


@dataclass(frozen=True)
class _Answered:
    """An aiohttp answer, read whole, as the client's answer parsing wants it."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class AioSender:
    """Many claim requests at once from any thread; one event loop per process."""

    def __init__(self, client: GatewayClient, pace: Pace | None = None) -> None:
        self.client = client
        self.pace = pace  # None: no fleet rate, every request goes as soon as the gate lets it
        self.settings: Settings = client.settings
        self.pid = os.getpid()  # a fork's child makes its own
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._gate: asyncio.Semaphore | None = None
        self._pacing: asyncio.Lock | None = None
        self._thread: threading.Thread | None = None

    def send(
        self,
        jobs: Sequence[Job],
        go: Callable[[], bool],
        seen: Callable[[Result], None],
    ) -> list[Timed | None]:
        """Send every job not held back by ``go`` (checked right before each one).

        ``seen`` hears each result as it comes (in the loop's thread: keep it short);
        each answer comes with the seconds its request took; None in the list is a
        job that was held back and not sent.
        """
        requests = [self.client.claim_request(j.body, token=j.token, session_ttl=j.session_ttl,
                                              idempotency_key=j.key) for j in jobs]  # fmt: skip
        return self._run(self._all(requests, go, seen))

    async def _all(
        self,
        requests: Sequence[ClaimRequest],
        go: Callable[[], bool],
        seen: Callable[[Result], None],
    ) -> list[Timed | None]:
        return list(await asyncio.gather(*(self._one(r, go, seen) for r in requests)))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self._started())
        return future.result()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="rxfleet-aio", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _one(
        self, request: ClaimRequest, go: Callable[[], bool], seen: Callable[[Result], None]
    ) -> Timed | None:
        session = self._client()
        assert self._gate is not None
        async with self._gate:
            if not go() or (self.pace is not None and not await self._paced(go)):
                return None
            started = time.perf_counter()
            result = await _post(session, request)
            seconds = time.perf_counter() - started
        seen(result)
        return result, seconds

    async def _paced(self, go: Callable[[], bool]) -> bool:
        """Wait for a slot under the fleet's rate, taken right before the request goes
        out (a blocking Redis call in the loop: no thread hop between slot and send);
        one asker per process at a time, the others queue here, not at Redis."""
        assert self.pace is not None and self._pacing is not None
        async with self._pacing:
            granted, seconds = self.pace()
            while not granted:
                if not go():
                    return False
                await asyncio.sleep(seconds)
                granted, seconds = self.pace()
        return go()  # asked again: the wait may have been long (a low rate, many askers)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the loop's thread, the first time it is needed
            limit = self.settings.submit_inflight
            self._gate = asyncio.Semaphore(limit)  # held back here, not in the pool's queue
            self._pacing = asyncio.Lock()
            connector = aiohttp.TCPConnector(limit=limit, ssl=Tls.of(self.settings).ssl_context())
            timeout = aiohttp.ClientTimeout(
                sock_connect=self.settings.connect_timeout, sock_read=self.settings.read_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                headers={"User-Agent": "rxfleet-gateway-client"},
            )
        return self._session

    def close(self) -> None:
        """Close the session and stop the loop (the process's own only)."""
        loop, session = self._loop, self._session
        if loop is None:
            return
        if session is not None:
            self._run(session.close())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        if not loop.is_running():
            loop.close()
        self._loop = self._session = None
        self._thread = None


async def _post(session: aiohttp.ClientSession, request: ClaimRequest) -> Result:
    where = request.where
    try:
        async with session.post(
            request.url, data=request.data, headers=request.headers, allow_redirects=False
        ) as response:
            answered = _Answered(response.status, response.headers, await response.read())
    except TRANSPORT_ERRORS as exc:
        return transport_error(exc, where, request.claim_id)
    try:
        return answer_of(answered, request)
    except RxFleetError as exc:
        return exc
