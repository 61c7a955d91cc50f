"""The claim endpoint over aiohttp: a window of requests in flight for little CPU.

The submit link's windows go out through one ``AioSender`` per worker process:
an asyncio event loop in a thread of its own and one ``aiohttp.ClientSession``.
Every submit task of the process hands its window over and waits for the answers;
a gate (``rxfleet.gateway.inflight``) lets at most the process's share of the
fleet's in-flight limit out at once: ``RXFLEET_SUBMIT_INFLIGHT`` until the first
report, then what the fleet found (``adapt``; without it the gate stays put).
Measured against a ``requests.Session`` in a thread pool of the same size, aiohttp
costs about a third of the CPU per request (bench/throughput.py), which is what throughput
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
    Adjudication,
    ClaimRequest,
    GatewayClient,
    Job,
    answer_of,
    errors_of,
    transport_error,
    transport_failures,
)
from rxfleet.gateway.inflight import KEEP, Adapt, Gate, Tally, overloaded
from rxfleet.gateway.tls import Tls

Result = Adjudication | RxFleetError
#: What a claim request can fail with: aiohttp's failures and requests' (the table's).
TRANSPORT_ERRORS = errors_of(transport_failures(aiohttp))
Timed = tuple[Result, float]  # an answer and the seconds its request took
#: A send slot under the fleet's rate, now: (True, 0) or (False, seconds until the
#: next); see ``rxfleet.stores.rate``.
Pace = Callable[[], tuple[bool, float]]
T = TypeVar("T")


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

    def __init__(
        self, client: GatewayClient, pace: Pace | None = None, adapt: Adapt | None = None
    ) -> None:
        self.client = client
        self.adapt = adapt  # None: the gate stays at RXFLEET_SUBMIT_INFLIGHT
        self.pace = pace  # None: no fleet rate, every request goes as soon as the gate lets it
        self.settings: Settings = client.settings
        self.pid = os.getpid()  # a fork's child makes its own
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._gate: Gate | None = None
        self._tally = Tally()
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
            result, status = await _post(session, request)
            seconds = time.perf_counter() - started
        if self.adapt is not None:
            await self._heard(seconds, overload=overloaded(result, status))
        seen(result)
        return result, seconds

    def window(self) -> int:
        """Requests this process may have in flight now (its share of the fleet's limit)."""
        gate = self._gate
        return self.settings.submit_inflight if gate is None else gate.limit

    async def _heard(self, seconds: float, *, overload: bool) -> None:
        """Count an answer; a period full (as many answers as the gate holds: about one
        round trip) or its first overload, report it and take the share the fleet gives
        back (a blocking Redis call in the loop, about once a round trip)."""
        gate, tally = self._gate, self._tally
        assert gate is not None and self.adapt is not None
        first = overload and not tally.overloaded
        tally.observe(seconds, overload=overload, busy=gate.busy)
        if first:  # shrink now, before the requests waiting for a slot meet the same
            await gate.resize(min(gate.limit, int(tally.at_overload * KEEP)))
        elif tally.sent < gate.limit:
            return
        period = tally.period(wanted=gate.waited)
        self._tally, gate.waited = Tally(), False
        await gate.resize(self.adapt(period))

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
            settings = self.settings
            self._gate = Gate(settings.submit_inflight)  # held back here, not in the pool
            self._pacing = asyncio.Lock()
            pool = settings.gateway_inflight_max if self.adapt else settings.submit_inflight
            connector = aiohttp.TCPConnector(limit=pool, ssl=Tls.of(settings).ssl_context())
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


async def _post(session: aiohttp.ClientSession, request: ClaimRequest) -> tuple[Result, int | None]:
    """The answer (or the error it means) and its HTTP status (None: no answer came)."""
    where = request.where
    try:
        async with session.post(
            request.url, data=request.data, headers=request.headers, allow_redirects=False
        ) as response:
            answered = _Answered(response.status, response.headers, await response.read())
    except TRANSPORT_ERRORS as exc:
        return transport_error(exc, where, request.claim_id), None
    try:
        return answer_of(answered, request), answered.status_code
    except RxFleetError as exc:
        return exc, answered.status_code
