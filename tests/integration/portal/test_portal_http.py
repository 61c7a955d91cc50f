"""The portal client and the sync's pacing over real HTTP against the sandbox portal
(no fleet: the stores on fakeredis): paced by X-RateLimit-* it never meets a 429;
without those headers it meets 429s and waits out each Retry-After; a refused token
is rotated; the portal's headers and errors are those of the gateway protocol."""

from __future__ import annotations

import time
from collections.abc import Iterator

import fakeredis
import pytest
import requests

from rxfleet.errors import AuthenticationFailed, GatewayRejectedRequest, RateLimited
from rxfleet.gateway.client import GatewayClient
from rxfleet.gateway.pacing import Pacer, RateLimit
from rxfleet.gateway.portal import PortalClient
from rxfleet.gateway.sandbox.scenario import Portal, Scenario
from rxfleet.gateway.sandbox.server import SandboxGateway
from rxfleet.stores.portal import PortalStore
from rxfleet.stores.tokens import TokenStore
from rxfleet.sync import Caller, SyncParts
from tests.integration.gateway.gateway_support import make_settings


def _gateway(**portal: object) -> Iterator[SandboxGateway]:
    with SandboxGateway(scenario=Scenario(portal=Portal(pending=50, **portal))) as gw:  # type: ignore[arg-type]
        yield gw


@pytest.fixture
def paced() -> Iterator[SandboxGateway]:
    yield from _gateway(rate_limit=4, rate_window=0.5)


@pytest.fixture
def blind() -> Iterator[SandboxGateway]:
    yield from _gateway(rate_limit=4, rate_window=0.5, rate_headers=False)


def _caller(gateway: SandboxGateway) -> tuple[Caller, PortalClient]:
    settings = make_settings(gateway, portal_url=gateway.url, sandbox=True)
    client = fakeredis.FakeRedis(decode_responses=True)
    parts = SyncParts(
        portal=PortalClient(settings), store=PortalStore(client), runs=None,  # type: ignore[arg-type]
        db=None, tokens=TokenStore(client), token_source=GatewayClient(settings),  # type: ignore[arg-type]
        crosswalks=None, settings=settings, send=print, ingest=None,  # type: ignore[arg-type]
    )  # fmt: skip
    return Caller(parts, "p", keep=lambda: True, pacer=Pacer(backoff_base=0.1)), parts.portal


def _pull(caller: Caller, portal: PortalClient, times: int) -> None:
    for _ in range(times):
        caller.call(lambda t, ttl: portal.pending(None, 5, t, ttl), lambda page: page.limit)


def test_paced_by_the_headers_the_sync_never_meets_a_429(paced: SandboxGateway) -> None:
    caller, portal = _caller(paced)
    started = time.monotonic()
    _pull(caller, portal, 12)  # three windows' worth
    assert paced.portal_stats()["throttled"] == 0
    assert time.monotonic() - started >= 1.0  # it waited for two window ends
    assert caller.pacer.paced > 0


def test_without_headers_each_429_is_waited_out_for_its_retry_after(
    blind: SandboxGateway,
) -> None:
    caller, portal = _caller(blind)
    started = time.monotonic()
    _pull(caller, portal, 12)
    stats = blind.portal_stats()
    assert stats["throttled"] >= 2  # met the limit, waited, met it again
    assert stats["pull_requests"] == 12  # every pull was answered in the end
    assert stats["throttled"] <= 4  # Retry-After honoured: not a 429 storm
    assert time.monotonic() - started >= 1.0


def test_a_refused_token_is_rotated_and_the_request_replayed(paced: SandboxGateway) -> None:
    caller, portal = _caller(paced)
    caller.parts.tokens.ensure(caller.parts.token_source)
    paced.state.reset()  # the sandbox forgets every token it issued
    page = caller.call(lambda t, ttl: portal.pending(None, 5, t, ttl), lambda page: page.limit)
    assert len(page.claims) == 5
    assert caller.parts.tokens.stats().get("auth_REJ_001") == 1


def test_portal_errors_are_the_gateway_protocols(paced: SandboxGateway) -> None:
    _, portal = _caller(paced)
    with pytest.raises(AuthenticationFailed):
        portal.pending(None, 5, "not-a-token", 60)
    headers = {"Authorization": "Bearer x", "X-Adjudication-Session-TTL": "60"}
    assert requests.get(paced.url + "/v1/claims/pending", headers=headers).status_code == 401
    token = GatewayClient(make_settings(paced)).fetch_token().access_token
    with pytest.raises(GatewayRejectedRequest):
        portal.ack("c00000049", token, 60)  # ahead of anything listed: 409
    for _ in range(5):
        try:
            portal.pending(None, 1, token, 60)
        except RateLimited as exc:
            assert exc.retry_after is not None and 0 < exc.retry_after <= 0.5
            break
    else:
        pytest.fail("no 429 above the rate limit")
    assert RateLimit.of({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "0.5"}).remaining == 3
