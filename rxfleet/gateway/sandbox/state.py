"""The sandbox gateway's state: issued tokens, the idempotency store (one
adjudication per Idempotency-Key, a repeat replays the stored answer), the books
of paid claims, per-key counts, the request log, and the scenario's decisions for
each request. All behind one lock; the HTTP side is ``handler``.

Transactions against the books (``books``), each decided once per key:

- ``B1`` billing: adjudicated; a ``P`` for a prescription the books already hold
  paid becomes ``R 83`` (duplicate paid claim); a ``P`` is filed.
- ``B2`` reversal: ``A`` and the paid claim leaves the books, or ``R 87`` when
  none matches (no eligibility or formulary check).
- ``B3`` rebill: ``R 87`` when nothing is paid to reverse; else the corrected claim
  is adjudicated and, only when it is paid, replaces the original (both or
  neither: a refused rebill leaves the original paid).
"""

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
from rxfleet.gateway.sandbox.adjudicator import (
    Adjudicator,
    Answer,
    invalid_request,
    rejected,
    reversed_answer,
)
from rxfleet.gateway.sandbox.books import Books, PaidClaim, book_key
from rxfleet.gateway.sandbox.scenario import Scenario, Throttle, claim_of, matches

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
    same_content: int = 0  # adjudications of a body already adjudicated under another key
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
        self._contents: set[str] = set()  # fingerprints of the bodies adjudicated
        self._books = Books()
        self._storm = _Storm()
        self._counts = _Counters()
        self.concurrency = Concurrency()

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
        """Forget tokens, stored answers, books, counters and the log (the scenario stays)."""
        with self._lock:
            self._tokens.clear()
            self._stored.clear()
            self._contents.clear()
            self._books.clear()
            self._storm = _Storm()
            self._counts = _Counters()
            self.concurrency.reset()

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
        return storm_error or self.token_error(token)

    def token_error(self, token: str | None) -> str | None:
        """None when the token is good (no fault knob: the portal asks), else the 401 code."""
        with self._lock:
            expires_at = self._tokens.get(token or "")
        if expires_at is None:
            return "invalid_token"
        return "session_expired" if expires_at <= time.time() else None

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
            answer = self._transact(key, claim)
            if answer.status == 200:
                self._adjudicated(key, fingerprint, answer)
        return answer, False

    def _adjudicated(self, key: str, fingerprint: str, answer: Answer) -> None:
        """Store the answer for replay and count it (under the lock)."""
        self._stored[key] = _Stored(fingerprint, answer.body)
        self._counts.adjudications += 1
        self._counts.keys.setdefault(key, _KeyCount()).adjudications += 1
        if fingerprint in self._contents:
            self._counts.same_content += 1
        self._contents.add(fingerprint)

    def _transact(self, key: str, claim: dict[str, Any]) -> Answer:
        """One transaction against the books (under the lock); see the module docstring."""
        code = claim.get("transaction_code") or "B1"
        if code not in ("B1", "B2", "B3"):
            return invalid_request("transaction_code")
        filed = book_key(claim)
        if code == "B2":
            refused = self.adjudicator.check_reversal(claim, self._scenario.unknown_routes)
            if refused is not None:
                return refused
            gone = self._books.reverse(filed)
            return reversed_answer(claim["claim_id"]) if gone else rejected(claim["claim_id"], "87")
        answer = self.adjudicator.adjudicate(claim, self._scenario.unknown_routes)
        if answer.status != 200:
            return answer
        answer = Answer(200, self._scenario.override(answer.body))
        paid = answer.body.get("transaction_response_status") == "P"
        prior = self._books.paid(filed)
        if code == "B3" and prior is None:
            return rejected(claim["claim_id"], "87")
        if code == "B1" and prior is not None and paid:
            return rejected(claim["claim_id"], "83")
        if paid:
            self._books.file(filed, PaidClaim.from_answer(key, answer.body))
        return answer

    def books(self) -> dict[str, Any]:
        """The paid claims and the total paid (``GET /v1/books``); see ``Books.report``."""
        with self._lock:
            return self._books.report()

    # -- bookkeeping -----------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        """Count one answered (or dropped) request and log it."""
        with self._lock:
            self._counts.requests += 1
            self._counts.by_status[str(entry["status"])] += 1
            self._counts.log.append(entry)

    def stats(self) -> dict[str, Any]:
        """Everything counted since start or the last reset; no PHI (a key is its
        claim id and an HMAC): ``{"requests", "by_status": {"200": n, "dropped": n, ...},
        "token_fetches", "tokens_issued", "claim_requests", "adjudications", "same_content",
        "concurrency": {"busiest", "refused"}, "keys": {key: {"requests", "adjudications"}},
        "claims": {claim_id: {"keys", "requests", "adjudications"}}, "log": [{"path", "key",
        "status", "started", "finished", "retry_after", "not_before", "replayed"}]}``; times
        are epoch seconds."""
        with self._lock:
            return {**_report(self._counts), "concurrency": self.concurrency.stats()}


class Concurrency:
    """Claim requests being answered at once, under the scenario's ``max_concurrent``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = self._busiest = self._refused = 0

    def enter(self, cap: int) -> bool:
        """A claim request starts being answered; False: ``cap`` (> 0) are already (429)."""
        with self._lock:
            if cap and self._busy >= cap:
                self._refused += 1
                return False
            self._busy += 1
            self._busiest = max(self._busiest, self._busy)
            return True

    def leave(self) -> None:
        """A claim request entered is answered (or dropped)."""
        with self._lock:
            self._busy -= 1

    def reset(self) -> None:
        """Forget the counts (the requests being answered stay counted)."""
        with self._lock:
            self._busiest = self._refused = 0

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"busiest": self._busiest, "refused": self._refused}


def _report(c: _Counters) -> dict[str, Any]:
    """The counters as ``GatewayState.stats`` answers them (under its lock)."""
    return {
        "requests": c.requests,
        "by_status": dict(c.by_status),
        "token_fetches": c.token_fetches,
        "tokens_issued": c.tokens_issued,
        "claim_requests": c.claim_requests,
        "adjudications": c.adjudications,
        "same_content": c.same_content,
        "keys": {
            k: {"requests": v.requests, "adjudications": v.adjudications} for k, v in c.keys.items()
        },
        "claims": _by_claim(c.keys),
        "log": list(c.log),
    }


def _by_claim(keys: dict[str, _KeyCount]) -> dict[str, dict[str, int]]:
    """Per-key counts summed by the keys' claim id (the part before ``~``), with
    how many keys each claim had: one submission's claim with ``adjudications``
    over 1 was adjudicated twice, whichever key did it."""
    claims: dict[str, dict[str, int]] = {}
    for key, count in keys.items():
        claim = claims.setdefault(claim_of(key), {"keys": 0, "requests": 0, "adjudications": 0})
        claim["keys"] += 1
        claim["requests"] += count.requests
        claim["adjudications"] += count.adjudications
    return claims


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
