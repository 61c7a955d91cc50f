"""The non-fleet contenders of bench/throughput.py, each sending (key, body) pairs once.

* ``bare_loop``: one ``requests.Session``, a ThreadPoolExecutor of N threads, one
  token, each claim POSTed once: the least a client must do.
* ``seed000``: seed 000's ``AdjudicationCredentialManager`` model: one Session with
  its urllib3 Retry policy, a lock around the token check, headers built per
  request, claims strictly one after another. Adapted only to speak to the
  sandbox: the token form-encoded (the seed posts JSON), the sandbox's scope, its
  Retry adapter mounted on the sandbox's ``http://``, and an Idempotency-Key.
* ``seed003``: seed 003's model: one ``aiohttp.ClientSession`` (default connector,
  at most 100 connections), claims streamed through an async generator into
  windows of 500, each window ``asyncio.gather``-ed, 503 retried with Retry-After
  or jittered backoff, 404 mapped to reject 04. Adapted: ``/v1/claims``, one
  token fetched form-encoded, the four headers.
* ``aiohttp``: the floor of one process: one ``aiohttp.ClientSession`` keeping
  ``FLOOR_INFLIGHT`` (512) requests in flight all the time (no windows), one token,
  each claim POSTed once, nothing else done.

Each returns a Counter of answers: NCPDP ``transaction_response_status`` for a 200,
else a short label.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import aiohttp
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bench.sandbox import TOKEN_FORM, Sandbox
from config.settings import SANDBOX_CLIENT_ID

Item = tuple[str, dict[str, Any]]
Contender = Callable[[Sandbox, list[Item], int], Counter[str]]


def _headers(token: str, ttl: int, key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "X-PBM-Client-ID": SANDBOX_CLIENT_ID,
        "X-Adjudication-Session-TTL": str(ttl),
        "Idempotency-Key": key,
    }


# -- bare loop -----------------------------------------------------------------


def bare_loop(sandbox: Sandbox, items: list[Item], threads: int) -> Counter[str]:
    """One Session, ``threads`` threads, one token, one POST per claim."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))
    grant = session.post(sandbox.token_url, data=TOKEN_FORM, timeout=10).json()
    token = grant["access_token"]

    def post(item: Item) -> str:
        key, body = item
        headers = _headers(token, 3600, key)
        response = session.post(sandbox.claims_url, json=body, headers=headers, timeout=30)
        response.raise_for_status()
        return str(response.json()["transaction_response_status"])

    with session, ThreadPoolExecutor(threads) as pool:
        return Counter(pool.map(post, items))


# -- seed 000 ------------------------------------------------------------------


class SeedCredentialManager:
    """Seed 000's credential manager, pointed at the sandbox."""

    def __init__(self, token_url: str, adjudication_api: str) -> None:
        self.token_url = token_url
        self.adjudication_api = adjudication_api
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._session = requests.Session()
        retry = Retry(total=3, backoff_factor=0.5, status_forcelist=[502, 503, 504],
                      allowed_methods=frozenset({"GET", "POST"}))  # fmt: skip
        self._session.mount("http://", HTTPAdapter(max_retries=retry))

    def _fetch_token(self) -> None:
        response = self._session.post(self.token_url, data=TOKEN_FORM, timeout=5)
        response.raise_for_status()
        data = response.json()
        self._expires_at = time.time() + data.get("expires_in", 3600) - 60
        self._token = data["access_token"]

    @contextmanager
    def secure_session(self, key: str) -> Iterator[dict[str, str]]:
        with self._lock:
            if self._token is None or time.time() >= self._expires_at:
                self._fetch_token()
            ttl = int(self._expires_at - time.time())
            headers = {**_headers(str(self._token), ttl, key), "Content-Type": "application/json"}
        yield headers

    def submit_claim(self, claim: dict[str, Any], key: str) -> dict[str, Any]:
        with self.secure_session(key) as headers:
            url = f"{self.adjudication_api}/v1/claims"
            resp = self._session.post(url, headers=headers, json=claim, timeout=10)
            if resp.status_code == 401:
                self._expires_at = 0.0
                raise PermissionError("REJ_001: token invalidated mid-flight")
            resp.raise_for_status()
            answer: dict[str, Any] = resp.json()
            return answer


def seed000(sandbox: Sandbox, items: list[Item], threads: int) -> Counter[str]:
    """Strictly sequential, one Session (``threads`` is ignored)."""
    manager = SeedCredentialManager(sandbox.token_url, sandbox.url)
    statuses: Counter[str] = Counter()
    for key, body in items:
        statuses[manager.submit_claim(body, key)["transaction_response_status"]] += 1
    return statuses


# -- seed 003 ------------------------------------------------------------------


def _backoff(attempt: int, base: float = 1.0, cap: float = 30.0) -> float:
    delay = min(base * 2.0**attempt, cap)
    return delay + random.uniform(0, delay * 0.1)


async def _adjudicate(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], claim: dict[str, Any]
) -> dict[str, Any]:
    """Seed 003's ``adjudicate_claim``: 200 answer, 404 -> 04, 503 retried, else 99."""
    for attempt in range(3):
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with session.post(url, json=claim, headers=headers, timeout=timeout) as resp:
                if resp.status == 200:
                    answer: dict[str, Any] = await resp.json()
                    return answer
                if resp.status == 404:
                    return {"transaction_response_status": "reject-04"}
                if resp.status == 503:
                    header = resp.headers.get("Retry-After")
                    await asyncio.sleep(float(header) if header else _backoff(attempt))
                    continue
                return {"transaction_response_status": f"reject-99 (HTTP {resp.status})"}
        except aiohttp.ClientError:
            if attempt < 2:
                await asyncio.sleep(_backoff(attempt))
    return {"transaction_response_status": "reject-99 (exhausted)"}


async def _stream(items: list[Item]) -> AsyncIterator[Item]:
    for item in items:
        yield item


async def _seed003(sandbox: Sandbox, items: list[Item], window: int) -> Counter[str]:
    statuses: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session:
        async with session.post(sandbox.token_url, data=TOKEN_FORM) as resp:
            token = (await resp.json())["access_token"]

        async def flush(buffer: list[Item]) -> None:
            tasks = [
                _adjudicate(session, sandbox.claims_url, _headers(token, 3600, key), claim)
                for key, claim in buffer
            ]
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                label = (
                    type(result).__name__
                    if isinstance(result, BaseException)
                    else str(result["transaction_response_status"])
                )
                statuses[label] += 1

        buffer: list[Item] = []
        async for item in _stream(items):
            buffer.append(item)
            if len(buffer) >= window:
                await flush(buffer)
                buffer = []
        if buffer:
            await flush(buffer)
    return statuses


def seed003(sandbox: Sandbox, items: list[Item], threads: int) -> Counter[str]:
    """Windows of 500 gathered over one aiohttp ClientSession (``threads`` is ignored)."""
    return asyncio.run(_seed003(sandbox, items, 500))


# -- aiohttp floor ---------------------------------------------------------------

FLOOR_INFLIGHT = 512


async def _floor(sandbox: Sandbox, items: list[Item]) -> Counter[str]:
    statuses: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=FLOOR_INFLIGHT)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(sandbox.token_url, data=TOKEN_FORM) as resp:
            token = (await resp.json())["access_token"]
        gate = asyncio.Semaphore(FLOOR_INFLIGHT)

        async def post(key: str, claim: dict[str, Any]) -> None:
            async with gate:
                headers = _headers(token, 3600, key)
                async with session.post(sandbox.claims_url, json=claim, headers=headers) as r:
                    body = await r.json() if r.status == 200 else {}
                    statuses[str(body.get("transaction_response_status", r.status))] += 1

        await asyncio.gather(*(post(key, claim) for key, claim in items))
    return statuses


def aio_floor(sandbox: Sandbox, items: list[Item], threads: int) -> Counter[str]:
    """512 requests in flight over one aiohttp ClientSession (``threads`` is ignored)."""
    return asyncio.run(_floor(sandbox, items))


CONTENDERS: dict[str, Contender] = {
    "bare": bare_loop, "seed000": seed000, "seed003": seed003, "aiohttp": aio_floor,
}  # fmt: skip
