"""One transport-failure table for both transports: the same failure reads the same."""

from __future__ import annotations

import aiohttp
import pytest
import requests

from rxfleet.errors import GatewayTimeout
from rxfleet.gateway.client import transport_error

WHERE = "POST https://pbm.example/v1/claims"


@pytest.mark.parametrize(
    ("sync", "aio", "name"),
    [
        (requests.ReadTimeout(), aiohttp.SocketTimeoutError(), "ReadTimeout"),
        (requests.ConnectTimeout(), aiohttp.ConnectionTimeoutError(), "ConnectTimeout"),
        (requests.ConnectionError(), aiohttp.ServerDisconnectedError(), "ConnectionError"),
        (requests.ConnectionError(), aiohttp.ClientOSError(), "ConnectionError"),
        (
            requests.exceptions.ChunkedEncodingError(),
            aiohttp.ClientPayloadError("cut off"),
            "ChunkedEncodingError",
        ),
    ],
)
def test_a_failure_is_named_the_same_by_either_transport(
    sync: Exception, aio: Exception, name: str
) -> None:
    errors = [transport_error(exc, WHERE, "C1") for exc in (sync, aio)]
    assert all(isinstance(e, GatewayTimeout) for e in errors)
    assert [str(e) for e in errors] == [f"{WHERE}: no answer ({name})"] * 2
