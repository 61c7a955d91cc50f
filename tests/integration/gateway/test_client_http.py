"""The real gateway client against a real SandboxGateway over real HTTP (no mocks).

The token endpoint goes over the client's ``requests.Session``; claims go over the
aiohttp sender (``AioSender``), one claim a window here, as the fleet sends them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import pytest
import requests
from requests.adapters import BaseAdapter

from config.settings import Settings
from rxfleet.errors import (
    AuthenticationFailed,
    ClaimValidationError,
    ConfigError,
    GatewayRejectedRequest,
    GatewayTimeout,
    GatewayUnavailable,
    RateLimited,
    RetryableError,
    RoutingMiss,
    RxFleetError,
)
from rxfleet.gateway.aio import AioSender
from rxfleet.gateway.client import Adjudication, GatewayClient, Job
from rxfleet.gateway.sandbox.scenario import Drop, Scenario, Throttle
from rxfleet.gateway.sandbox.server import SandboxGateway
from tests.integration.gateway.gateway_support import (
    CannedServer,
    ClaimFactory,
    assert_no_phi,
    make_settings,
)


def submit(
    sender: AioSender, claim: dict[str, Any], token: str, *, session_ttl: int = 3599
) -> Adjudication:
    """One claim through the aiohttp sender (a window of one); its error raised."""
    job = Job(claim, token, session_ttl, str(claim["claim_id"]))
    (timed,) = sender.send([job], lambda: True, lambda _: None)
    assert timed is not None, "the sender held the claim back"
    result = timed[0]
    if isinstance(result, RxFleetError):
        raise result
    return result


@contextmanager
def claims_over(settings: Settings) -> Iterator[tuple[GatewayClient, AioSender]]:
    """A client and its aiohttp sender for ``settings``, both closed after."""
    with GatewayClient(settings) as client:
        sender = AioSender(client)
        try:
            yield client, sender
        finally:
            sender.close()


# -- token ------------------------------------------------------------------


def test_fetch_token(client: GatewayClient, gateway: SandboxGateway) -> None:
    grant = client.fetch_token()
    assert grant.token_type == "Bearer"
    assert grant.expires_in == 3600.0
    assert grant.scope == "claims.submit"
    assert grant.access_token not in repr(grant)
    assert gateway.stats()["tokens_issued"] == 1


def test_wrong_secret_is_a_config_error(gateway: SandboxGateway) -> None:
    settings = make_settings(gateway, client_secret="wrong")
    with (
        GatewayClient(settings) as client,
        pytest.raises(ConfigError, match="401 invalid_client") as caught,
    ):
        client.fetch_token()
    assert "wrong" not in str(caught.value)


def test_wrong_token_url_is_a_config_error(gateway: SandboxGateway) -> None:
    settings = make_settings(gateway, token_url=gateway.url + "/oauth/tokn")
    with GatewayClient(settings) as client, pytest.raises(ConfigError, match="TOKEN_URL"):
        client.fetch_token()


def test_token_endpoint_down_is_a_timeout(gateway: SandboxGateway) -> None:
    settings = make_settings(gateway, token_url=f"http://127.0.0.1:{free_port()}/oauth2/token")
    with GatewayClient(settings) as client, pytest.raises(GatewayTimeout) as caught:
        client.fetch_token()
    assert caught.value.request == f"POST {settings.token_url}"
    assert caught.value.__cause__ is None


# -- claims: answers --------------------------------------------------------


def test_paid_claim(sender: AioSender, token: str, make_claim: ClaimFactory) -> None:
    claim = make_claim()
    result = submit(sender, claim, token)
    assert (result.claim_id, result.status, result.reject_codes) == (claim["claim_id"], "P", ())
    assert result.raw["authorization_number"].startswith("SBX")
    assert result.raw["pricing"] == {
        "ingredient_cost_paid": 9.99,
        "dispensing_fee_paid": 1.75,
        "patient_pay_amount": 5.0,
        "total_amount_paid": 6.74,
    }
    assert result.replayed is False


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"group_id": "GRP999"}, "06"),
        ({"cardholder_id": "ZT900000003"}, "65"),
        ({"gpi": "99999999999999"}, "70"),
        ({"gpi": "40304080100330"}, "70"),
        ({"gpi": "66270015008030"}, "75"),
        ({"days_supply": 91}, "76"),
        ({"gpi": "27170070002020", "quantity_dispensed": 4, "days_supply": 30}, "76"),
        ({"bin": "004336", "pcn": "MEDDPRIME", "group_id": "PDP001", "days_supply": 35}, "76"),
    ],
)
def test_rejected_claims(
    sender: AioSender,
    token: str,
    make_claim: ClaimFactory,
    overrides: dict[str, Any],
    code: str,
) -> None:
    result = submit(sender, make_claim(**overrides), token)
    assert (result.status, result.reject_codes) == ("R", (code,))
    assert "pricing" not in result.raw


def test_quantity_limit_scales_with_days_supply(
    sender: AioSender, token: str, make_claim: ClaimFactory
) -> None:
    limited = {"gpi": "65100075100305"}  # 120 per 30 days
    assert (
        submit(sender, make_claim(**limited, quantity_dispensed=240, days_supply=60), token).status
        == "P"
    )
    assert (
        submit(sender, make_claim(**limited, quantity_dispensed=241, days_supply=60), token).status
        == "R"
    )


def test_routing_miss(
    client: GatewayClient, sender: AioSender, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim(bin="999999")
    with pytest.raises(RoutingMiss) as caught:
        submit(sender, claim, token)
    assert caught.value.claim_id == claim["claim_id"]
    assert caught.value.request == f"POST {client.settings.gateway_url}/v1/claims"


def test_bad_request_is_rejected_request(
    sender: AioSender, token: str, make_claim: ClaimFactory
) -> None:
    with pytest.raises(GatewayRejectedRequest) as caught:
        submit(sender, make_claim(ndc="0093-7214-01"), token)
    assert caught.value.status == 400


# -- claims: 401 ------------------------------------------------------------


def test_invalid_token_is_rej_001(sender: AioSender, make_claim: ClaimFactory) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        submit(sender, make_claim(), "not-a-token")
    assert caught.value.reason == "REJ_001"
    assert isinstance(caught.value, RetryableError)


def test_expired_session_is_rej_004(
    client: GatewayClient, sender: AioSender, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(token_lifetime=0.2)
    grant = client.fetch_token()
    assert grant.expires_in == 0.2
    assert submit(sender, make_claim(), grant.access_token).status == "P"
    time.sleep(0.25)
    with pytest.raises(AuthenticationFailed) as caught:
        submit(sender, make_claim(), grant.access_token)
    assert caught.value.reason == "REJ_004"


# -- claims: 429 / 503 / drops / timeouts -------------------------------------


@pytest.mark.parametrize(("status", "error_class"), [(429, RateLimited), (503, GatewayUnavailable)])
def test_throttled_with_delta_retry_after(
    sender: AioSender,
    gateway: SandboxGateway,
    token: str,
    make_claim: ClaimFactory,
    status: Literal[429, 503],
    error_class: type[RetryableError],
) -> None:
    claim = make_claim()
    keys = frozenset({claim["claim_id"]})
    gateway.scenario = Scenario(
        throttles=(Throttle(status=status, claim_ids=keys, attempts=2, retry_after=7),)
    )
    for _ in range(2):
        with pytest.raises(error_class) as caught:
            submit(sender, claim, token)
        assert caught.value.retry_after == 7.0
        assert caught.value.claim_id == claim["claim_id"]
    assert submit(sender, claim, token).status == "P"
    assert gateway.stats()["keys"][claim["claim_id"]] == {"requests": 3, "adjudications": 1}


def test_throttled_with_http_date_retry_after(
    sender: AioSender, gateway: SandboxGateway, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim()
    throttle = Throttle(
        claim_ids=frozenset({claim["claim_id"]}), retry_after=3, retry_after_format="http-date"
    )
    gateway.scenario = Scenario(throttles=(throttle,))
    with pytest.raises(GatewayUnavailable) as caught:
        submit(sender, claim, token)
    entry = gateway.stats()["log"][-1]
    assert entry["retry_after"].endswith(" GMT")
    assert caught.value.retry_after is not None
    assert 2.0 <= caught.value.retry_after <= 4.0
    assert entry["not_before"] >= entry["finished"] + 3


def test_503_without_retry_after(
    sender: AioSender, gateway: SandboxGateway, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim()
    throttle = Throttle(claim_ids=frozenset({claim["claim_id"]}), retry_after=None)
    gateway.scenario = Scenario(throttles=(throttle,))
    with pytest.raises(GatewayUnavailable) as caught:
        submit(sender, claim, token)
    assert caught.value.retry_after is None


def test_dropped_connection_is_a_timeout(
    sender: AioSender, gateway: SandboxGateway, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim()
    gateway.scenario = Scenario(drops=(Drop(claim_ids=frozenset({claim["claim_id"]})),))
    with pytest.raises(GatewayTimeout) as caught:
        submit(sender, claim, token)
    assert caught.value.claim_id == claim["claim_id"]
    assert submit(sender, claim, token).status == "P"
    assert gateway.stats()["by_status"] == {"200": 2, "dropped": 1}  # token + claim


def test_lost_response_is_replayed_not_readjudicated(
    sender: AioSender, gateway: SandboxGateway, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim()
    drop = Drop(claim_ids=frozenset({claim["claim_id"]}), after_adjudication=True)
    gateway.scenario = Scenario(drops=(drop,))
    with pytest.raises(GatewayTimeout):
        submit(sender, claim, token)
    again = submit(sender, claim, token)
    assert (again.status, again.replayed) == ("P", True)
    assert gateway.stats()["keys"][claim["claim_id"]] == {"requests": 2, "adjudications": 1}


def test_slow_gateway_is_a_timeout(gateway: SandboxGateway, make_claim: ClaimFactory) -> None:
    gateway.scenario = Scenario(latency_ms=300)
    with claims_over(make_settings(gateway, read_timeout=0.1)) as (client, sender):
        token = client.fetch_token().access_token
        with pytest.raises(GatewayTimeout, match="ReadTimeout"):
            submit(sender, make_claim(), token)


def test_refused_connection_is_a_timeout(gateway: SandboxGateway, make_claim: ClaimFactory) -> None:
    settings = make_settings(gateway, gateway_url=f"http://127.0.0.1:{free_port()}")
    with claims_over(settings) as (_, sender), pytest.raises(GatewayTimeout, match="Connection"):
        submit(sender, make_claim(), "token")


# -- idempotency, headers, PHI ------------------------------------------------


def test_idempotent_replay(
    sender: AioSender, gateway: SandboxGateway, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim()
    first, second = submit(sender, claim, token), submit(sender, claim, token)
    assert (first.replayed, second.replayed) == (False, True)
    assert first.raw == second.raw
    assert gateway.stats()["keys"][claim["claim_id"]] == {"requests": 2, "adjudications": 1}


def test_session_ttl_is_whole_non_negative_seconds(
    sender: AioSender, token: str, make_claim: ClaimFactory
) -> None:
    result = submit(sender, make_claim(), token, session_ttl=-5)
    assert result.status == "P"  # the sandbox 400s anything but whole seconds >= 0


def test_dates_and_decimals_are_sent_as_json(
    sender: AioSender, token: str, make_claim: ClaimFactory
) -> None:
    claim = make_claim(date_of_service=date(2026, 3, 2), usual_and_customary=Decimal("8.50"))
    assert submit(sender, claim, token).raw["pricing"]["ingredient_cost_paid"] == 8.5
    with pytest.raises(ClaimValidationError) as caught:
        submit(sender, make_claim(quantity_dispensed=float("nan")), token)
    assert caught.value.code == "GATEWAY_BODY_NOT_JSON"


def test_errors_carry_no_phi_and_no_token(
    sender: AioSender, gateway: SandboxGateway, token: str, make_claim: ClaimFactory
) -> None:
    throttled, dropped = make_claim(), make_claim()
    gateway.scenario = Scenario(
        throttles=(Throttle(status=429, claim_ids=frozenset({throttled["claim_id"]})),),
        drops=(Drop(claim_ids=frozenset({dropped["claim_id"]})),),
    )
    attempts = [
        (make_claim(bin="999999"), token),
        (make_claim(days_supply="thirty"), token),
        (make_claim(), "stale-token-value"),
        (throttled, token),
        (dropped, token),
    ]
    for claim, used in attempts:
        with pytest.raises(RxFleetError) as caught:
            submit(sender, claim, used)
        text = f"{caught.value} {caught.value!r} {vars(caught.value)}"
        assert_no_phi(text)
        assert used not in text
        assert caught.value.__cause__ is None


def test_gateway_url_must_be_set(gateway: SandboxGateway, make_claim: ClaimFactory) -> None:
    settings = make_settings(gateway, gateway_url=None)
    with (
        claims_over(settings) as (_, sender),
        pytest.raises(ConfigError, match="RXFLEET_GATEWAY_URL"),
    ):
        submit(sender, make_claim(), "token")


# -- the transport seam -------------------------------------------------------


class CannedAdapter(BaseAdapter):
    """Answers every request with one canned response; records what was sent."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status, self.body, self.headers = status, body, headers or {}
        self.sent: list[requests.PreparedRequest] = []
        self.closed = False

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body
        response.headers.update(self.headers)
        response.request, response.url = request, str(request.url)
        return response

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def seam_settings(gateway: SandboxGateway) -> Settings:
    return make_settings(gateway)


@pytest.fixture
def canned_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def client_answering(
    session: requests.Session, settings: Settings, status: int, body: bytes, **headers: str
) -> tuple[GatewayClient, CannedAdapter]:
    adapter = CannedAdapter(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
    session.mount("http://", adapter)
    return GatewayClient(settings, session=session), adapter


@contextmanager
def sender_answering(
    gateway: SandboxGateway, status: int, body: bytes, **headers: str
) -> Iterator[tuple[AioSender, CannedServer]]:
    """The aiohttp sender pointed at a canned local HTTP server (claims only)."""
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    with (
        CannedServer(status, body, named) as canned,
        claims_over(make_settings(gateway, gateway_url=canned.url)) as (_, sender),
    ):
        yield sender, canned


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (503, GatewayUnavailable),
        (500, GatewayUnavailable),
        (429, RateLimited),
        (418, GatewayRejectedRequest),
    ],
)
def test_token_endpoint_statuses(
    canned_session: requests.Session,
    seam_settings: Settings,
    status: int,
    error_class: type[RxFleetError],
) -> None:
    client, adapter = client_answering(
        canned_session, seam_settings, status, b"{}", Retry_After="4"
    )
    with pytest.raises(error_class):
        client.fetch_token()
    sent = adapter.sent[0]
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "grant_type=client_credentials" in str(sent.body)


def test_claim_headers_sent(gateway: SandboxGateway, make_claim: ClaimFactory) -> None:
    answer = b'{"claim_id": "X", "transaction_response_status": "P", "reject_codes": []}'
    with sender_answering(gateway, 200, answer) as (sender, canned):
        job = Job(make_claim(), "tkn", 41.9, "KEY-1")  # type: ignore[arg-type]
        sender.send([job], lambda: True, lambda _: None)
    headers = canned.sent[0][0]
    assert headers["Authorization"] == "Bearer tkn"
    assert headers["X-PBM-Client-ID"] == "rxfleet-sandbox"
    assert headers["X-Adjudication-Session-TTL"] == "41"
    assert headers["Idempotency-Key"] == "KEY-1"
    assert headers["Content-Type"] == "application/json"


def test_garbage_200_is_unavailable(
    gateway: SandboxGateway,
    canned_session: requests.Session,
    seam_settings: Settings,
    make_claim: ClaimFactory,
) -> None:
    with (
        sender_answering(gateway, 200, b"<html>oops</html>") as (sender, _),
        pytest.raises(GatewayUnavailable),
    ):
        submit(sender, make_claim(), "tkn")
    client, _ = client_answering(canned_session, seam_settings, 200, b"<html>oops</html>")
    with pytest.raises(GatewayUnavailable):
        client.fetch_token()


def test_raw_answer_is_scrubbed_of_phi(gateway: SandboxGateway, make_claim: ClaimFactory) -> None:
    claim = make_claim()
    echo = (
        b'{"claim_id": "%s", "transaction_response_status": "R", "reject_codes": ["65"],'
        b' "cardholder_id": "ZPHI4417X9", "patient": {"date_of_birth": "1961-07-04"}}'
    ) % str(claim["claim_id"]).encode()
    with sender_answering(gateway, 200, echo) as (sender, _):
        result = submit(sender, claim, "tkn")
    assert result.raw == {
        "claim_id": claim["claim_id"],
        "transaction_response_status": "R",
        "reject_codes": ["65"],
        "patient": {},
    }
    assert_no_phi(repr(result))


def test_redirect_is_not_followed(gateway: SandboxGateway, make_claim: ClaimFactory) -> None:
    with (
        sender_answering(gateway, 302, b"", Location="http://elsewhere/") as (sender, canned),
        pytest.raises(GatewayRejectedRequest) as caught,
    ):
        submit(sender, make_claim(), "tkn")
    assert caught.value.status == 302
    assert len(canned.sent) == 1


def test_a_given_session_is_left_open(
    canned_session: requests.Session, seam_settings: Settings
) -> None:
    client, adapter = client_answering(canned_session, seam_settings, 200, b"{}")
    client.close()
    assert client.session is canned_session
    assert adapter.closed is False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_sandbox_is_told_by_what_it_is_not_where_it_listens(gateway: SandboxGateway) -> None:
    """Outside RXFLEET_SANDBOX=1 a gateway that answers as the sandbox is refused at the
    first token request, with one line; with it, the same gateway serves tokens."""
    real = make_settings(gateway, sandbox=False, client_id="acme", client_secret="s3cr3t")
    with GatewayClient(real) as client, pytest.raises(ConfigError) as refused:
        client.fetch_token()
    assert "answers as the rxfleet sandbox gateway" in str(refused.value)
    assert "RXFLEET_SANDBOX=1" in str(refused.value) and "s3cr3t" not in str(refused.value)
    with GatewayClient(make_settings(gateway)) as client:
        assert client.fetch_token().access_token
    answer = requests.post(gateway.token_url, data={"grant_type": "client_credentials"}, timeout=5)
    assert answer.headers["X-Rxfleet-Sandbox"] == "1"
