"""Fault knobs of the sandbox gateway: one ``Scenario``, loadable from JSON.

A scenario is plain data. The default (``Scenario()``) is a healthy gateway with
one-hour tokens. Every knob, with the JSON key that sets it:

``seed`` (int, 0)
    Seeds every rate below. A rate is rolled per ``(Idempotency-Key, attempt)``
    with a hash, not with a shared random stream, so the same seed gives the
    same faults whatever order concurrent requests arrive in.
``token_lifetime`` (seconds, 3600)
    Lifetime of each token the token endpoint grants (``expires_in``). A claim
    sent with a token past its lifetime gets ``401 {"error": "session_expired"}``.
``revoke_every`` (int, 0 = never)
    Every Nth claim request revokes every live token before it is checked, so
    that request and any later one with an old token get
    ``401 {"error": "invalid_token"}`` until a new token is fetched.
``storm`` (object or null)
    A 401 storm: after ``start_after`` claim requests, every claim request is
    answered ``401 {"error": <error>}`` (``invalid_token`` or
    ``session_expired``) for ``requests`` requests and/or ``seconds`` seconds
    (whichever ends first when both are set), whatever its token.
``unknown_routes`` (list of ``"BIN/PCN"``)
    Routes answered ``404 {"error": "unknown_route"}`` even though the plan file
    knows them. (Pairs the plan file does not know are 404 anyway.)
``throttles`` (list of objects)
    Each answers ``status`` (429 or 503) before the claim is looked at, to the
    first ``attempts`` requests of each Idempotency-Key of a claim in
    ``claim_ids`` (a key's claim is its part before ``~``), and to any other
    request with probability ``rate``. ``retry_after`` (seconds, or
    null for no header) is sent as delta-seconds or, with ``retry_after_format:
    "http-date"``, as an IMF-fixdate rounded up to the next whole second.
``drops`` (list of objects)
    Each closes the connection without any response, for the first ``attempts``
    requests of each key of a claim in ``claim_ids`` and with probability
    ``rate`` for any other. With ``after_adjudication: true`` the claim is adjudicated (and stored
    for idempotent replay) first and only the response is lost: the nastiest
    case for exactly-once.
``answers`` (list of objects)
    Each claim in ``claim_ids`` that the plans would answer (200) gets
    ``status`` (``P``, ``R`` or ``D``) and ``reject_codes`` exactly as given, the
    rest of the answer unchanged: a payer's odd answers, such as a ``P`` that
    carries reject codes or a code padded with spaces (``" 75"``). With
    ``answer_for``, the answer names that claim id instead of the one sent (a
    gateway that mixes its answers up; stored so, replays too).
``latency_ms`` / ``jitter_ms`` (float, 0)
    Every claim request waits ``latency_ms`` plus a seeded uniform
    ``[0, jitter_ms)`` before it is answered.
``max_concurrent`` (int, 0 = no cap)
    A gateway with a concurrency limit: a claim request that arrives while this many
    are being answered gets ``429 {"error": "too_many_requests"}`` at once, with no
    Retry-After (the stats count them and the most answered at once: ``concurrency``).
``portal`` (object)
    The payer portal of pending claims (``rxfleet.gateway.sandbox.portal``):
    ``pending`` synthetic claims (``rxfleet.claims.synth``; ``mix: "sample"``
    mixes in rejections and malformed claims, ``"payable"`` does not), ids
    ``{id_prefix}{index:08d}``, seeded by ``seed``; a page holds at most
    ``max_page`` claims; ``rate_limit`` requests (pending and ack together) per
    ``rate_window`` seconds, above it 429 with Retry-After (0: no limit);
    ``rate_headers: false`` leaves the X-RateLimit headers out.

Example file::

    {"token_lifetime": 30, "revoke_every": 500,
     "throttles": [{"status": 503, "rate": 0.05, "retry_after": 2}],
     "drops": [{"claim_ids": ["C-17"], "after_adjudication": true}],
     "latency_ms": 5, "jitter_ms": 10}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from rxfleet.errors import ConfigError

_STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_STRICT)
class Storm:
    """Every claim request is answered 401 for a while."""

    start_after: Annotated[int, Field(ge=0)] = 0
    requests: Annotated[int, Field(ge=0)] = 0
    seconds: Annotated[float, Field(ge=0)] = 0.0
    error: Literal["invalid_token", "session_expired"] = "invalid_token"


@dataclass(frozen=True, config=_STRICT)
class Throttle:
    """429 or 503, with or without Retry-After, for chosen keys or at a rate."""

    status: Literal[429, 503] = 503
    claim_ids: frozenset[str] = frozenset()
    attempts: Annotated[int, Field(ge=0)] = 1
    rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    retry_after: Annotated[float | None, Field(ge=0)] = 1.0
    retry_after_format: Literal["delta", "http-date"] = "delta"


@dataclass(frozen=True, config=_STRICT)
class Drop:
    """The connection is closed without a response."""

    claim_ids: frozenset[str] = frozenset()
    attempts: Annotated[int, Field(ge=0)] = 1
    rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    after_adjudication: bool = False


@dataclass(frozen=True, config=_STRICT)
class Override:
    """The answer's status letter and reject codes, as given, for chosen claims."""

    claim_ids: frozenset[str] = frozenset()
    status: Literal["P", "R", "D"] = "P"
    reject_codes: tuple[str, ...] = ()
    answer_for: str | None = None


@dataclass(frozen=True, config=_STRICT)
class Portal:
    """The sandbox payer portal: its pending claims and its rate limit."""

    pending: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    seed: int = 0
    id_prefix: Annotated[str, Field(pattern=r"^[A-Z0-9-]{0,12}$")] = "PT"
    mix: Literal["payable", "sample"] = "payable"
    max_page: Annotated[int, Field(ge=1)] = 1000
    rate_limit: Annotated[int, Field(ge=0)] = 0
    rate_window: Annotated[float, Field(gt=0)] = 1.0
    rate_headers: bool = True


@dataclass(frozen=True, config=_STRICT)
class Scenario:
    """Every fault knob of the sandbox gateway (see the module docstring)."""

    seed: int = 0
    token_lifetime: Annotated[float, Field(gt=0)] = 3600.0
    revoke_every: Annotated[int, Field(ge=0)] = 0
    storm: Storm | None = None
    unknown_routes: frozenset[str] = frozenset()
    throttles: tuple[Throttle, ...] = ()
    drops: tuple[Drop, ...] = ()
    answers: tuple[Override, ...] = ()
    latency_ms: Annotated[float, Field(ge=0)] = 0.0
    jitter_ms: Annotated[float, Field(ge=0)] = 0.0
    max_concurrent: Annotated[int, Field(ge=0)] = 0
    portal: Portal = Portal()

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        """Parse a scenario; a bad one is a ``ConfigError`` naming the knob."""
        try:
            return _ADAPTER.validate_json(text)
        except ValidationError as exc:
            raise ConfigError(f"invalid sandbox scenario: {_summary(exc)}") from None

    @classmethod
    def load(cls, path: Path) -> Scenario:
        """Read a scenario file."""
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read scenario ({exc.strerror})") from None
        return cls.from_json(text)

    def override(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the status and codes an ``answers`` entry gives its claim."""
        for answer in self.answers:
            if body.get("claim_id") in answer.claim_ids:
                codes = list(answer.reject_codes)
                named = answer.answer_for or body.get("claim_id")
                return {**body, "claim_id": named, "transaction_response_status": answer.status,
                        "reject_codes": codes}  # fmt: skip
        return body

    def roll(self, salt: str, key: str, attempt: int) -> float:
        """A deterministic uniform number in [0, 1) for this seed, fault, key and attempt."""
        digest = hashlib.sha256(f"{self.seed}:{salt}:{key}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


def _summary(exc: ValidationError) -> str:
    """Where and what, without the offending input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "<root>"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


_ADAPTER: TypeAdapter[Scenario] = TypeAdapter(Scenario)


def claim_of(key: str) -> str:
    """The claim id an Idempotency-Key belongs to: the part before ``~``
    (``{claim_id}~{16 hex}``); a key without one is the claim id itself."""
    return key.split("~", 1)[0]


def matches(scenario: Scenario, fault: Throttle | Drop, salt: str, key: str, attempt: int) -> bool:
    """Whether ``fault`` applies to this attempt of this key (chosen by its claim id)."""
    if claim_of(key) in fault.claim_ids:
        return attempt <= fault.attempts
    return fault.rate > 0 and scenario.roll(salt, key, attempt) < fault.rate
