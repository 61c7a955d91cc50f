"""The sandbox gateway's state: issued tokens, the idempotency store (one
adjudication per Idempotency-Key, a repeat replays the stored answer), per-key
counts, the request log, and the scenario's decisions for each request. All
behind one lock; the HTTP side is ``handler``."""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from config.settings import SANDBOX_SCOPE
from rxfleet.gateway.sandbox.adjudicator import Adjudicator, Answer, invalid_request
from rxfleet.gateway.sandbox.scenario import Scenario, Throttle, matches

LOG_LIMIT = 50_000


@dataclass(slots=True)
class _KeyCount:
    requests: int = 0
    adjudications: int = 0


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the scenario holds in store for one claim request."""

    attempt: int
    claim_no: int
    delay: float = 0.0
    drop: bool = False
    drop_after: bool = False
    throttle: Throttle | None = None


@dataclass(slots=True)
class _Storm:
    started: float | None = None
    hits: int = 0


@dataclass(slots=True)
class _Counters:
    requests: int = 0
    claim_requests: int = 0
    adjudications: int = 0
    token_fetches: int = 0
    tokens_issued: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    keys: dict[str, _KeyCount] = field(default_factory=dict)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))


class GatewayState:
    """Tokens, the idempotency store, counters and the request log, behind one lock."""

    def __init__(
        self, adjudicator: Adjudicator, scenario: Scenario, client_id: str, client_secret: str
    ) -> None:
        self.adjudicator = adjudicator
        self.client_id = client_id
        self._secret = client_secret
        self._lock = threading.Lock()
        self._scenario = scenario
        self._tokens: dict[str, float] = {}
        self._stored: dict[str, _Stored] = {}
        self._storm = _Storm()
        self._counts = _Counters()

    @property
    def scenario(self) -> Scenario:
        """The faults in force."""
        return self._scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Switch faults; a storm starts afresh, tokens and stored answers stay."""
        with self._lock:
            self._scenario = scenario
            self._storm = _Storm()

    def reset(self) -> None:
        """Forget tokens, stored answers, counters and the log (the scenario stays)."""
        with self._lock:
            self._tokens.clear()
            self._stored.clear()
            self._storm = _Storm()
            self._counts = _Counters()

    # -- token endpoint --------------------------------------------------

    def grant(self, params: dict[str, str] | None, basic: tuple[str, str] | None) -> Answer:
        """The token endpoint's answer; ``params`` is None when the body is not a form."""
        with self._lock:
            self._counts.token_fetches += 1
        grant_type = params.get("grant_type") if params is not None else None
        if params is None or grant_type is None:
            return Answer(400, {"error": "invalid_request"})
        if grant_type != "client_credentials":
            return Answer(400, {"error": "unsupported_grant_type"})
        client_id, secret = basic or (params.get("client_id", ""), params.get("client_secret", ""))
        if not (_same(client_id, self.client_id) and _same(secret, self._secret)):
            return Answer(401, {"error": "invalid_client"})
        scope = params.get("scope") or SANDBOX_SCOPE
        if not set(scope.split()) <= {SANDBOX_SCOPE}:
            return Answer(400, {"error": "invalid_scope"})
        return Answer(200, self._issue(scope))

    def _issue(self, scope: str) -> dict[str, Any]:
        lifetime = self._scenario.token_lifetime
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now - 3600}
            self._tokens[token] = now + lifetime
            self._counts.tokens_issued += 1
        expires_in = int(lifetime) if float(lifetime).is_integer() else lifetime
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scope,
        }

    # -- claims ----------------------------------------------------------

    def admit(self, key: str) -> Ticket:
        """Count a claim request and decide its faults."""
        with self._lock:
            counts = self._counts
            counts.claim_requests += 1
            per_key = counts.keys.setdefault(key, _KeyCount())
            per_key.requests += 1
            attempt, claim_no, scenario = per_key.requests, counts.claim_requests, self._scenario
        return _ticket(scenario, key, attempt, claim_no)

    def authenticate(self, token: str | None, claim_no: int) -> str | None:
        """None when the token is good, else the 401 error code."""
        now = time.time()
        with self._lock:
            every = self._scenario.revoke_every
            if every and claim_no % every == 0:
                self._tokens.clear()
            storm_error = self._storming(claim_no, now)
            if storm_error is not None:
                return storm_error
            expires_at = self._tokens.get(token or "")
        if expires_at is None:
            return "invalid_token"
        return "session_expired" if expires_at <= now else None

    def _storming(self, claim_no: int, now: float) -> str | None:
        storm = self._scenario.storm
        if storm is None or claim_no <= storm.start_after:
            return None
        if self._storm.started is None:
            self._storm.started = now
        over_count = storm.requests and self._storm.hits >= storm.requests
        over_time = storm.seconds and now - self._storm.started >= storm.seconds
        if over_count or over_time or not (storm.requests or storm.seconds):
            return None
        self._storm.hits += 1
        return storm.error

    def settle(self, key: str, raw: bytes) -> tuple[Answer, bool]:
        """Adjudicate once per key; a repeat replays. Returns (answer, replayed)."""
        try:
            claim = json.loads(raw)
        except ValueError:
            return invalid_request("body"), False
        if not isinstance(claim, dict):
            return invalid_request("body"), False
        canonical = json.dumps(claim, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        with self._lock:
            stored = self._stored.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    return Answer(422, {"error": "idempotency_key_reused"}), False
                return Answer(200, stored.body), True
            answer = self.adjudicator.adjudicate(claim, self._scenario.unknown_routes)
            if answer.status == 200:
                answer = Answer(200, self._scenario.override(answer.body))
                self._stored[key] = _Stored(fingerprint, answer.body)
                self._counts.adjudications += 1
                self._counts.keys.setdefault(key, _KeyCount()).adjudications += 1
        return answer, False

    # -- bookkeeping -----------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Count one answered (or dropped) request and log it."""
        with self._lock:
            self._counts.requests += 1
            self._counts.by_status[str(entry["status"])] += 1
            self._counts.log.append(entry)

    def stats(self) -> dict[str, Any]:
        """Everything counted since start or the last reset; no PHI (keys are claim ids).

        ``{"requests", "by_status": {"200": n, "dropped": n, ...}, "token_fetches",
        "tokens_issued", "claim_requests", "adjudications",
        "keys": {key: {"requests", "adjudications"}},
        "log": [{"path", "key", "status", "started", "finished", "retry_after",
        "not_before", "replayed"}]}``; times are epoch seconds.
        """
        with self._lock:
            c = self._counts
            return {
                "requests": c.requests,
                "by_status": dict(c.by_status),
                "token_fetches": c.token_fetches,
                "tokens_issued": c.tokens_issued,
                "claim_requests": c.claim_requests,
                "adjudications": c.adjudications,
                "keys": {
                    k: {"requests": v.requests, "adjudications": v.adjudications}
                    for k, v in c.keys.items()
                },
                "log": list(c.log),
            }


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _ticket(scenario: Scenario, key: str, attempt: int, claim_no: int) -> Ticket:
    delay = scenario.latency_ms / 1000
    if scenario.jitter_ms:
        delay += scenario.roll("jitter", key, attempt) * scenario.jitter_ms / 1000
    drop = drop_after = False
    for i, d in enumerate(scenario.drops):
        if matches(scenario, d, f"drop{i}", key, attempt):
            drop_after = drop_after or d.after_adjudication
            drop = drop or not d.after_adjudication
    throttle = next(
        (
            t
            for i, t in enumerate(scenario.throttles)
            if matches(scenario, t, f"throttle{i}", key, attempt)
        ),
        None,
    )
    return Ticket(attempt, claim_no, delay, drop, drop_after, throttle)


def retry_after_header(seconds: float, style: str, now: float) -> tuple[str, float]:
    """The Retry-After value and the epoch time it means.

    An HTTP-date is rounded up to the next whole second (it has no fractions);
    a fractional delta is sent as a decimal (not RFC 9110, but fast tests need it).
    """
    if style == "http-date":
        not_before = float(math.ceil(now + seconds))
        return email.utils.formatdate(not_before, usegmt=True), not_before
    text = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
    return text, now + seconds
