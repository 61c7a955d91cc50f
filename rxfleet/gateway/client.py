"""The gateway client: the PBM gateway's protocol; the token endpoint over one ``requests.Session``.

Celery-free and Redis-free: it fetches a token, builds claim requests
(``claim_request``) and maps every answer (``answer_of``) and every transport
failure of either transport (``transport_error``) into ``rxfleet.errors``. Every
claim goes out through ``rxfleet.gateway.aio.AioSender`` (aiohttp) with these
requests and this mapping; the Session here carries the token endpoint only:

========================================  ===========================================
what happened                             raised
========================================  ===========================================
claim 200                                 (returns an ``Adjudication``)
claim 401 ``session_expired``             ``AuthenticationFailed(reason="REJ_004")``
claim 401, anything else                  ``AuthenticationFailed(reason="REJ_001")``
claim 404                                 ``RoutingMiss``
429                                       ``RateLimited(retry_after=...)``
5xx                                       ``GatewayUnavailable(retry_after=...)``
200 whose body is not an answer           ``GatewayUnavailable``
other 3xx/4xx                             ``GatewayRejectedRequest(status=...)``
timeout, refused, reset, cut-off body     ``GatewayTimeout``
token 400/401/403 (credentials, scope)    ``ConfigError``
token 404/405 (wrong URL)                 ``ConfigError``
========================================  ===========================================

Retrying is not this module's job: urllib3 retries nothing, redirects are not
followed, and ``retry_after`` carries the server's word for the caller's retry
policy. Messages name the claim id and the request (``POST <url>``), never a
body, a token or a header value; transport exceptions are not chained (they hold
the prepared request, whose body is PHI and whose headers hold the token).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from config.settings import SANDBOX_IDENTITY_HEADER, Settings
from rxfleet.claims.fields import PHI_FIELDS
from rxfleet.errors import (
    AnswerMismatch,
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
from rxfleet.gateway.tls import Tls

log = logging.getLogger(__name__)

REJ_INVALID_TOKEN = "REJ_001"
REJ_SESSION_EXPIRED = "REJ_004"
CLAIMS_PATH = "/v1/claims"

#: What a transport failure means, for both transports (requests: the token
#: endpoint; aiohttp: the claim endpoint), and the name a message gives it: requests'
#: name for either transport's exception, so a user reads the same word whichever
#: sent the request (None: the exception's own name). The first row that matches decides.
FailureTable = tuple[tuple[tuple[type[Exception], ...], str, str | None], ...]


def transport_failures(aio: Any = None) -> FailureTable:
    """The table, with aiohttp's rows when ``aio`` (the aiohttp module) is given: a
    process that never loaded aiohttp (``rxfleet run``) never pays for its import."""

    def of(*names: str) -> tuple[type[Exception], ...]:
        return tuple(getattr(aio, name) for name in names) if aio is not None else ()

    rows: FailureTable = (
        ((requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
          requests.exceptions.InvalidURL, *of("InvalidURL")), "not a usable URL", None),
        (of("ConnectionTimeoutError"), "no answer", "ConnectTimeout"),
        (of("ServerTimeoutError"), "no answer", "ReadTimeout"),  # sock_read: SocketTimeoutError
        (of("ClientSSLError"), "no answer", "SSLError"),
        (of("ClientOSError", "ServerDisconnectedError"), "no answer", "ConnectionError"),
        (of("ClientPayloadError"), "no answer", "ChunkedEncodingError"),
        ((requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
          *of("ClientConnectionError"), TimeoutError), "no answer", None),
        ((requests.RequestException, *of("ClientError")), "transport failure", None),
    )  # fmt: skip
    return tuple(row for row in rows if row[0])


def errors_of(table: FailureTable) -> tuple[type[Exception], ...]:
    return tuple(kind for kinds, _, _ in table for kind in kinds)


#: requests' failures (the token endpoint, the portal): aiohttp's are ``aio.TRANSPORT_ERRORS``.
TRANSPORT_ERRORS = errors_of(transport_failures())
#: Error codes are machine tokens; anything else in a body is not repeated.
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DELTA = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
_PHI = frozenset(PHI_FIELDS)


@dataclass(frozen=True)
class Job:
    """One claim to send: its body (PHI inside: never logged), token and key."""

    body: Mapping[str, Any]
    token: str
    session_ttl: int
    key: str


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A token endpoint's grant; ``repr`` leaves the token out."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: float
    scope: str


@dataclass(frozen=True, slots=True)
class Pricing:
    """The money of a paid answer (``pricing``): NCPDP 506-F6 ingredient cost paid,
    505-F5 patient pay amount, 509-F9 total amount paid; each a Decimal or None."""

    ingredient_cost_paid: Decimal | None = None
    patient_pay_amount: Decimal | None = None
    total_amount_paid: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Adjudication:
    """The gateway's answer to one claim.

    ``status`` is NCPDP 112-AN (``P`` paid, ``R`` rejected, ``D`` duplicate of
    paid, ...); ``raw`` is the whole response body without any PHI field;
    ``replayed`` is true when the gateway answered from its idempotency store.
    """

    claim_id: str
    status: str
    reject_codes: tuple[str, ...]
    raw: dict[str, Any]
    replayed: bool = False
    authorization_number: str | None = None  # 503-F3, on a paid answer
    pricing: Pricing | None = None  # on a paid answer


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (RFC 9110 section 10.2.3).

    Delta-seconds (a decimal fraction is tolerated) or an HTTP-date, measured
    from ``now`` (epoch seconds). A past date or a negative delta is 0; a
    missing or unparsable value is None.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA.match(text):
        return max(0.0, float(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC with no claim about local time
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def build_session(settings: Settings) -> requests.Session:
    """The one Session a worker process needs: pooled, no retries, TLS from settings (``Tls``).

    ``trust_env`` is off: proxies, CA bundles and .netrc come from ``Settings``
    only (a .netrc entry would otherwise replace our Authorization header).
    """
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(
        pool_connections=4, pool_maxsize=settings.submit_inflight, max_retries=Retry(0, read=False)
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "rxfleet-gateway-client"})
    tls = Tls.of(settings)
    session.verify, session.cert = tls.verify, tls.cert
    return session


class GatewayClient:
    """Token grants over one Session, and the claim requests ``AioSender`` sends (one
    client per process).

    ``session`` is the transport seam: pass any ``requests.Session`` (tests,
    a custom adapter); the client then leaves its configuration and closing to you.
    """

    def __init__(self, settings: Settings, *, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._owns_session = session is None
        self.session = session if session is not None else build_session(settings)
        self._timeout = (settings.connect_timeout, settings.read_timeout)

    # -- token -----------------------------------------------------------

    def fetch_token(self) -> TokenGrant:
        """A new token by client credentials, form-encoded (RFC 6749 section 4.4)."""
        url = _required(self.settings.token_url, "RXFLEET_TOKEN_URL")
        client_id, client_secret = self.settings.credentials()
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if self.settings.scope:
            form["scope"] = self.settings.scope
        with self._post(url, data=form) as response:
            self._not_the_sandbox(response, "RXFLEET_TOKEN_URL")
            if response.status_code == 200:
                return self._grant(response, url)
            raise _token_error(response, f"POST {url}")

    def _not_the_sandbox(self, response: requests.Response, name: str) -> None:
        """Outside ``RXFLEET_SANDBOX=1``, a gateway that says it is the sandbox is refused
        (wherever it listens: a TLS sidecar on this machine is a real gateway's)."""
        if not self.settings.sandbox and response.headers.get(SANDBOX_IDENTITY_HEADER):
            raise ConfigError(
                f"{name} answers as the rxfleet sandbox gateway ({SANDBOX_IDENTITY_HEADER}); "
                "set RXFLEET_SANDBOX=1 to use it, or point it at the PBM gateway"
            )

    def _grant(self, response: requests.Response, url: str) -> TokenGrant:
        data = _json_object(response)
        token = data.get("access_token")
        token_type = data.get("token_type")
        expires_in = _number(data.get("expires_in"))
        if not (isinstance(token, str) and token and isinstance(token_type, str)):
            expires_in = None
        if expires_in is None or str(token_type).lower() != "bearer":
            raise GatewayUnavailable(
                f"POST {url}: the token response is not a Bearer grant", request=f"POST {url}"
            )
        scope = data.get("scope")
        return TokenGrant(
            access_token=str(token),
            token_type="Bearer",
            expires_in=expires_in,
            scope=scope if isinstance(scope, str) else self.settings.scope,
        )

    # -- claims ----------------------------------------------------------

    def claim_request(
        self, body: Mapping[str, Any], *, token: str, session_ttl: int, idempotency_key: str
    ) -> ClaimRequest:
        """The claim endpoint's request: URL, the four headers, the JSON body."""
        base = _required(self.settings.gateway_url, "RXFLEET_GATEWAY_URL")
        claim_id = str(body.get("claim_id") or idempotency_key)
        headers = {
            "Authorization": f"Bearer {token}",
            "X-PBM-Client-ID": self.settings.credentials()[0],
            "X-Adjudication-Session-TTL": str(max(0, int(session_ttl))),
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/json",
        }
        url = base.rstrip("/") + CLAIMS_PATH
        return ClaimRequest(url, headers, _encode(body, claim_id), claim_id)

    # -- transport -------------------------------------------------------

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.post(url, timeout=self._timeout, allow_redirects=False, **kwargs)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, f"POST {url}", None) from None

    def close(self) -> None:
        """Close the Session (when the client made it)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HttpAnswer(Protocol):
    """What the answer parsing needs of an HTTP response (requests' or aiohttp's)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One claim's POST; ``data`` holds PHI: never logged, never in an error."""

    url: str
    headers: dict[str, str] = field(repr=False)
    data: bytes = field(repr=False)
    claim_id: str = ""

    @property
    def where(self) -> str:
        return f"POST {self.url}"


def transport_error(exc: Exception, where: str, claim_id: str | None) -> RxFleetError:
    """Our error for a transport failure of either transport (never chained: the
    transport's exception holds the request, whose body is PHI)."""
    table = transport_failures(sys.modules.get("aiohttp"))  # loaded: its errors can be here
    meaning, name = next((m, n) for kinds, m, n in table if isinstance(exc, kinds))
    if meaning == "not a usable URL":
        return ConfigError(f"{where}: {meaning}")
    message = f"{where}: {meaning} ({name or type(exc).__name__})"
    kind = GatewayTimeout if meaning == "no answer" else GatewayUnavailable
    return kind(message, claim_id=claim_id, request=where)


def answer_of(response: HttpAnswer, request: ClaimRequest) -> Adjudication:
    """The gateway's answer to ``request``: an Adjudication, or the error it means."""
    log.debug("%s -> %s (claim %s)", request.where, response.status_code, request.claim_id)
    if response.status_code == 200:
        return _adjudication(response, request.claim_id, request.where)
    raise _claim_error(response, request.claim_id, request.where)


def _required(value: str | None, variable: str) -> str:
    if not value:
        raise ConfigError(f"{variable} is not set")
    return value


def _encode(body: Mapping[str, Any], claim_id: str) -> bytes:
    try:
        text = json.dumps(body, default=_json_default, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise ClaimValidationError(
            "GATEWAY_BODY_NOT_JSON", "a claim field has no JSON form", claim_id=claim_id
        ) from None
    return text.encode()


def _json_default(value: object) -> object:
    """Dates as ISO 8601 and decimals as numbers (the gateway's claim body)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _json_object(response: HttpAnswer) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is anything else."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _error_code(response: HttpAnswer) -> str | None:
    """The body's ``error`` when it is a plain code (never free text)."""
    code = _json_object(response).get("error")
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else None


def _scrub(value: Any) -> Any:
    """A JSON value without any PHI field, at any depth."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _PHI}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _adjudication(response: HttpAnswer, claim_id: str, where: str) -> Adjudication:
    data = _json_object(response)
    status = data.get("transaction_response_status")
    codes = data.get("reject_codes", [])
    if not (isinstance(status, str) and status and isinstance(codes, list)):
        raise GatewayUnavailable(
            f"{where}: claim {claim_id}: the answer is not an adjudication",
            claim_id=claim_id,
            request=where,
        )
    answered_id = data.get("claim_id")
    if answered_id not in (None, "", claim_id):
        raise AnswerMismatch(
            f"{where}: claim {claim_id}: the answer names another claim id",
            claim_id=claim_id,
            request=where,
        )
    return Adjudication(
        claim_id=claim_id,
        status=status,
        reject_codes=tuple(str(c) for c in codes),
        raw=_scrub(data),
        replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
        authorization_number=_authorization(data.get("authorization_number")),
        pricing=_pricing(data.get("pricing")),
    )


#: An authorization number (503-F3 x(20)) is kept only when it is a plain token.
_AUTHORIZATION = re.compile(r"^[A-Za-z0-9._:\-]{1,20}$")


def _authorization(value: Any) -> str | None:
    return value if isinstance(value, str) and _AUTHORIZATION.match(value) else None


def _pricing(value: Any) -> Pricing | None:
    if not isinstance(value, dict):
        return None
    names = ("ingredient_cost_paid", "patient_pay_amount", "total_amount_paid")
    return Pricing(*(_money(value.get(name)) for name in names))


def _money(value: Any) -> Decimal | None:
    """An amount as a Decimal to the cent (s9(6)v99), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError):
        return None
    return amount if amount.is_finite() and abs(amount) <= MAX_MONEY else None


#: s9(6)v99: the largest amount NCPDP can carry.
MAX_MONEY = Decimal("999999.99")


def _retry_after(response: HttpAnswer) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"), time.time())


def _claim_error(response: HttpAnswer, claim_id: str, where: str) -> RxFleetError:
    status = response.status_code
    code = _error_code(response)
    message = f"{where}: claim {claim_id}: HTTP {status}" + (f" {code}" if code else "")
    if status == 401:
        reason = REJ_SESSION_EXPIRED if code == "session_expired" else REJ_INVALID_TOKEN
        return AuthenticationFailed(message, reason=reason, claim_id=claim_id, request=where)
    if status == 404:
        return RoutingMiss(message, claim_id=claim_id, request=where)
    return _status_error(response, message, claim_id, where)


def _status_error(
    response: HttpAnswer, message: str, claim_id: str | None, where: str
) -> RxFleetError:
    """429, 5xx and the rest: shared by the token and claim endpoints."""
    status = response.status_code
    error_class: type[RetryableError] | None = None
    if status == 429:
        error_class = RateLimited
    elif status >= 500:
        error_class = GatewayUnavailable
    if error_class is not None:
        return error_class(
            message, claim_id=claim_id, request=where, retry_after=_retry_after(response)
        )
    return GatewayRejectedRequest(message, status=status, claim_id=claim_id, request=where)


def _token_error(response: HttpAnswer, where: str) -> RxFleetError:
    status = response.status_code
    code = _error_code(response)
    message = f"{where}: token endpoint answered HTTP {status}" + (f" {code}" if code else "")
    if status in (400, 401, 403):
        return ConfigError(
            f"{message}: check RXFLEET_CLIENT_ID, RXFLEET_CLIENT_SECRET and RXFLEET_SCOPE"
        )
    if status in (404, 405):
        return ConfigError(f"{message}: check RXFLEET_TOKEN_URL")
    return _status_error(response, message, None, where)
