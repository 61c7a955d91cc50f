"""Fixtures for the gateway over real HTTP: a sandbox on a free port, a real client."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from config.settings import Settings
from rxfleet.gateway.aio import AioSender
from rxfleet.gateway.client import GatewayClient
from rxfleet.gateway.sandbox.server import SandboxGateway
from tests.integration.gateway.gateway_support import PHI_VALUES, ClaimFactory, make_settings


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway() as gw:
        yield gw


@pytest.fixture
def settings(gateway: SandboxGateway) -> Settings:
    return make_settings(gateway)


@pytest.fixture
def client(settings: Settings) -> Iterator[GatewayClient]:
    with GatewayClient(settings) as c:
        yield c


@pytest.fixture
def sender(client: GatewayClient) -> Iterator[AioSender]:
    """The claim transport: the aiohttp sender over ``client``'s requests."""
    aio = AioSender(client)
    yield aio
    aio.close()


@pytest.fixture
def token(client: GatewayClient) -> str:
    return client.fetch_token().access_token


@pytest.fixture
def make_claim() -> ClaimFactory:
    """A paid-by-default commercial claim; keyword arguments override fields."""
    ids = itertools.count(1)

    def factory(**overrides: Any) -> dict[str, Any]:
        n = next(ids)
        claim: dict[str, Any] = {
            "claim_id": f"CLM-{n:05d}",
            "bin": "610014",
            "pcn": "RXSANDBX",
            "group_id": "GRP100",
            **PHI_VALUES,
            "service_provider_id": "1234567893",
            "date_of_service": "2026-03-02",
            "rx_number": f"RX{n:06d}",  # one prescription a claim: no duplicate (83)
            "fill_number": 0,
            "ndc": "00093721401",
            "gpi": "39400010100310",
            "quantity_dispensed": 30,
            "days_supply": 30,
            "prescriber_id": "1962471239",
            "ingredient_cost_submitted": 12.40,
            "usual_and_customary": 9.99,
            "plan_id": "PLAN-COMM",
            "pos": "01",
        }
        claim.update(overrides)
        return claim

    return factory
