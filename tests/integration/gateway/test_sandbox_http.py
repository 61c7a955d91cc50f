"""The sandbox gateway's protocol, spoken with plain requests over real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
import requests

from rxfleet.gateway.sandbox.scenario import Scenario, Storm, Throttle
from rxfleet.gateway.sandbox.server import SandboxGateway
from tests.integration.conftest import ctrl_c_reaches_it
from tests.integration.gateway.gateway_support import ClaimFactory, assert_no_phi

REPO = Path(__file__).resolve().parents[3]
FORM = {
    "grant_type": "client_credentials",
    "client_id": "rxfleet-sandbox",
    "client_secret": "sandbox-secret",
    "scope": "claims.submit",
}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def grant(http: requests.Session, gateway: SandboxGateway) -> str:
    response = http.post(gateway.token_url, data=FORM, timeout=5)
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


def post_claim(
    http: requests.Session,
    gateway: SandboxGateway,
    claim: dict[str, Any],
    token: str,
    **header_overrides: str | None,
) -> requests.Response:
    headers: dict[str, str | None] = {
        "Authorization": f"Bearer {token}",
        "X-PBM-Client-ID": "rxfleet-sandbox",
        "X-Adjudication-Session-TTL": "3599",
        "Idempotency-Key": claim.get("claim_id", "none"),
        "Content-Type": "application/json",
    }
    headers.update({k.replace("_", "-"): v for k, v in header_overrides.items()})
    sent = {k: v for k, v in headers.items() if v is not None}
    return http.post(gateway.url + "/v1/claims", data=json.dumps(claim), headers=sent, timeout=5)


# -- token endpoint ---------------------------------------------------------


def test_token_grant_is_form_encoded_client_credentials(
    http: requests.Session, gateway: SandboxGateway
) -> None:
    response = http.post(gateway.token_url, data=FORM, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert response.headers["Cache-Control"] == "no-store"
    assert gateway.stats()["token_fetches"] == 1


def test_token_request_as_json_is_rejected(http: requests.Session, gateway: SandboxGateway) -> None:
    response = http.post(gateway.token_url, json=FORM, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}
    assert gateway.stats()["tokens_issued"] == 0


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"scope": "claims.submit admin"}, 400, "invalid_scope"),
    ],
)
def test_token_refusals(
    http: requests.Session,
    gateway: SandboxGateway,
    change: dict[str, str | None],
    status: int,
    error: str,
) -> None:
    form = {k: v for k, v in {**FORM, **change}.items() if v is not None}
    response = http.post(gateway.token_url, data=form, timeout=5)
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_token_by_http_basic(http: requests.Session, gateway: SandboxGateway) -> None:
    form = {"grant_type": "client_credentials"}
    good = http.post(gateway.token_url, data=form, auth=("rxfleet-sandbox", "sandbox-secret"))
    bad = http.post(gateway.token_url, data=form, auth=("rxfleet-sandbox", "nope"))
    assert good.status_code == 200
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"].startswith("Basic")


def test_token_repeated_parameter_is_invalid(
    http: requests.Session, gateway: SandboxGateway
) -> None:
    body = "grant_type=client_credentials&grant_type=client_credentials"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = http.post(gateway.token_url, data=body, headers=headers, timeout=5)
    assert response.status_code == 400


# -- claims: headers and auth -----------------------------------------------


@pytest.mark.parametrize(
    ("header", "value", "status", "body"),
    [
        ("Authorization", None, 401, {"error": "invalid_token"}),
        ("Authorization", "Bearer not-a-token", 401, {"error": "invalid_token"}),
        ("X-PBM-Client-ID", None, 400, {"error": "invalid_request", "field": "X-PBM-Client-ID"}),
        ("X-PBM-Client-ID", "other-client", 403, {"error": "client_mismatch"}),
        ("Idempotency-Key", None, 400, {"error": "invalid_request", "field": "Idempotency-Key"}),
        (
            "X-Adjudication-Session-TTL",
            None,
            400,
            {"error": "invalid_request", "field": "X-Adjudication-Session-TTL"},
        ),
        (
            "X-Adjudication-Session-TTL",
            "12.5",
            400,
            {"error": "invalid_request", "field": "X-Adjudication-Session-TTL"},
        ),
        ("Content-Type", "text/plain", 415, {"error": "unsupported_media_type"}),
    ],
)
def test_claim_headers_are_required(
    http: requests.Session,
    gateway: SandboxGateway,
    make_claim: ClaimFactory,
    header: str,
    value: str | None,
    status: int,
    body: dict[str, str],
) -> None:
    token = grant(http, gateway)
    response = post_claim(http, gateway, make_claim(), token, **{header: value})
    assert (response.status_code, response.json()) == (status, body)
    assert gateway.stats()["adjudications"] == 0


def test_expired_token_is_session_expired(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(token_lifetime=0.2)
    token = grant(http, gateway)
    assert post_claim(http, gateway, make_claim(), token).status_code == 200
    time.sleep(0.25)
    response = post_claim(http, gateway, make_claim(), token)
    assert (response.status_code, response.json()) == (401, {"error": "session_expired"})
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoke_every_nth_claim_request(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(revoke_every=3)
    token = grant(http, gateway)
    statuses = [post_claim(http, gateway, make_claim(), token).status_code for _ in range(4)]
    assert statuses == [200, 200, 401, 401]
    fresh = grant(http, gateway)
    assert post_claim(http, gateway, make_claim(), fresh).status_code == 200


def test_401_storm_by_count(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(storm=Storm(start_after=1, requests=3, error="session_expired"))
    token = grant(http, gateway)
    answers = [post_claim(http, gateway, make_claim(), token) for _ in range(6)]
    assert [a.status_code for a in answers] == [200, 401, 401, 401, 200, 200]
    assert answers[1].json() == {"error": "session_expired"}


def test_401_storm_by_time(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(storm=Storm(seconds=0.2))
    token = grant(http, gateway)
    assert post_claim(http, gateway, make_claim(), token).status_code == 401
    time.sleep(0.25)
    assert post_claim(http, gateway, make_claim(), token).status_code == 200


# -- claims: adjudication ---------------------------------------------------


def test_malformed_json_and_missing_fields(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    token = grant(http, gateway)
    claim = make_claim()
    headers = {
        "Authorization": f"Bearer {token}",
        "X-PBM-Client-ID": "rxfleet-sandbox",
        "X-Adjudication-Session-TTL": "60",
        "Idempotency-Key": "K-1",
        "Content-Type": "application/json",
    }
    broken = http.post(gateway.url + "/v1/claims", data=b"{not json", headers=headers)
    assert (broken.status_code, broken.json()) == (
        400,
        {"error": "invalid_request", "field": "body"},
    )
    del claim["ndc"]
    missing = post_claim(http, gateway, claim, token)
    assert missing.json() == {"error": "invalid_request", "field": "ndc"}
    as_text = post_claim(http, gateway, make_claim(quantity_dispensed="30"), token)
    assert as_text.json() == {"error": "invalid_request", "field": "quantity_dispensed"}


def test_unknown_route_is_404_and_knob_adds_routes(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    token = grant(http, gateway)
    unknown = post_claim(http, gateway, make_claim(bin="999999"), token)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown_route"})
    assert post_claim(http, gateway, make_claim(), token).status_code == 200
    gateway.scenario = Scenario(unknown_routes=frozenset({"610014/RXSANDBX"}))
    assert post_claim(http, gateway, make_claim(), token).status_code == 404
    partd = make_claim(bin="004336", pcn="MEDDPRIME", group_id="PDP001")
    assert post_claim(http, gateway, partd, token).status_code == 200


def test_idempotent_replay_is_counted_not_readjudicated(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    token = grant(http, gateway)
    claim = make_claim()
    first = post_claim(http, gateway, claim, token)
    second = post_claim(http, gateway, claim, token)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    stats = gateway.stats()
    assert stats["keys"][claim["claim_id"]] == {"requests": 2, "adjudications": 1}
    assert stats["adjudications"] == 1
    reused = post_claim(http, gateway, {**claim, "quantity_dispensed": 60}, token)
    assert (reused.status_code, reused.json()) == (422, {"error": "idempotency_key_reused"})


def test_responses_never_echo_phi(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    token = grant(http, gateway)
    claims = [
        make_claim(),
        make_claim(gpi="66270015008030"),
        make_claim(bin="999999"),
        make_claim(days_supply="x"),
    ]
    texts = [post_claim(http, gateway, c, token).text for c in claims]
    texts.append(post_claim(http, gateway, make_claim(), "bogus").text)
    texts.append(json.dumps(gateway.stats()))
    for text in texts:
        assert_no_phi(text)


# -- faults -----------------------------------------------------------------


def test_throttle_rates_are_deterministic_under_a_seed(make_claim: ClaimFactory) -> None:
    def throttled_keys(seed: int) -> set[str]:
        scenario = Scenario(seed=seed, throttles=(Throttle(status=429, rate=0.3),))
        with SandboxGateway(scenario=scenario) as gw, requests.Session() as http:
            token = grant(http, gw)
            for i in range(40):
                post_claim(http, gw, make_claim(claim_id=f"R-{i}"), token)
            return {e["key"] for e in gw.stats()["log"] if e["status"] == 429}

    first, again, other = throttled_keys(7), throttled_keys(7), throttled_keys(8)
    assert first == again
    assert 3 <= len(first) <= 25
    assert first != other


def test_latency_knob(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(latency_ms=60, jitter_ms=20)
    token = grant(http, gateway)
    started = time.perf_counter()
    post_claim(http, gateway, make_claim(), token)
    assert time.perf_counter() - started >= 0.06


def test_keep_alive_on_one_connection(gateway: SandboxGateway) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=5)
    sockets = []
    try:
        for _ in range(3):
            connection.request("GET", "/v1/_sandbox/stats")
            response = connection.getresponse()
            response.read()
            assert (response.status, response.version) == (200, 11)
            sockets.append(connection.sock)
        assert sockets[0] is not None
        assert sockets.count(sockets[0]) == 3  # one connection, never reopened
    finally:
        connection.close()


# -- stats, reset, quiet ----------------------------------------------------


def test_stats_shape_and_reset(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    gateway.scenario = Scenario(throttles=(Throttle(claim_ids=frozenset({"T-1"}), retry_after=2),))
    token = grant(http, gateway)
    post_claim(http, gateway, make_claim(claim_id="T-1"), token)
    post_claim(http, gateway, make_claim(claim_id="T-1"), token)
    stats = http.get(gateway.url + "/v1/_sandbox/stats", timeout=5).json()
    assert stats["requests"] == 3
    assert stats["by_status"] == {"200": 2, "503": 1}
    assert stats["token_fetches"] == 1
    assert stats["claim_requests"] == 2
    assert stats["keys"] == {"T-1": {"requests": 2, "adjudications": 1}}
    throttled = stats["log"][1]
    assert set(throttled) == {
        "path",
        "key",
        "status",
        "started",
        "finished",
        "retry_after",
        "not_before",
        "replayed",
    }
    assert (throttled["status"], throttled["retry_after"]) == (503, "2")
    assert throttled["not_before"] == pytest.approx(throttled["finished"] + 2, abs=0.05)
    assert http.post(gateway.url + "/v1/_sandbox/reset", timeout=5).status_code == 200
    assert gateway.stats()["requests"] == 0
    assert gateway.stats()["keys"] == {}


def test_quiet_by_default(
    http: requests.Session,
    gateway: SandboxGateway,
    make_claim: ClaimFactory,
    capfd: pytest.CaptureFixture[str],
) -> None:
    token = grant(http, gateway)
    post_claim(http, gateway, make_claim(), token)
    post_claim(http, gateway, make_claim(bin="999999"), token)
    http.get(gateway.url + "/nowhere", timeout=5)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_run_gateway_logs_its_url_and_serves() -> None:
    code = (
        "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s');"
        "from rxfleet.gateway.sandbox.server import run_gateway; run_gateway('127.0.0.1', 0, None)"
    )
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # SIGABRT dumps every thread
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=ctrl_c_reaches_it,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+) \(token endpoint (\S+)\)", line)
        assert match, line
        with requests.Session() as http:
            http.trust_env = False
            assert http.post(match.group(2), data=FORM, timeout=5).status_code == 200
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=5) == 0
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            dump = process.communicate(timeout=10)[1]
            pytest.fail(f"no exit within 5 s of SIGINT; its threads:\n{dump}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_a_claim_without_days_supply_is_adjudicated(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    """X12 837 drug lines carry no days supply (docs/formats.md)."""
    token = grant(http, gateway)
    claim = make_claim()
    del claim["days_supply"]
    answer = post_claim(http, gateway, claim, token)
    assert answer.status_code == 200
    assert answer.json()["transaction_response_status"] in {"P", "R"}


# -- books ------------------------------------------------------------------


def test_books_endpoint_reports_paid_claims_and_the_total(
    http: requests.Session, gateway: SandboxGateway, make_claim: ClaimFactory
) -> None:
    token = grant(http, gateway)
    first, second = make_claim(), make_claim()
    for claim in (first, second):
        assert post_claim(http, gateway, claim, token).json()["transaction_response_status"] == "P"
    reversal = {
        **{k: first[k] for k in ("claim_id", "bin", "pcn", "service_provider_id", "rx_number")},
        "fill_number": first["fill_number"],
        "date_of_service": first["date_of_service"],
        "transaction_code": "B2",
    }
    answer = post_claim(http, gateway, reversal, token, Idempotency_Key=first["claim_id"] + ":B2")
    assert answer.json()["transaction_response_status"] == "A"
    response = http.get(gateway.url + "/v1/books", timeout=5)
    assert response.status_code == 200
    books = response.json()
    assert books == gateway.books()
    assert [(c["claim_id"], c["key"]) for c in books["claims"]] == [
        (second["claim_id"], second["claim_id"])
    ]
    assert books["total_paid"] == books["claims"][0]["amount_paid"]
    assert_no_phi(response.text)
