"""The one error tree of rxfleet.

Every exception the project raises on purpose derives from ``RxFleetError``::

    RxFleetError
    ├── ConfigError                 settings missing or contradictory (exit 2)
    ├── InputError                  a file cannot be read at all (exit 2, nothing enqueued)
    │   └── InputCutShort           the file stops being readable part-way; carries the
    │                               last good position (rows before it were yielded)
    ├── InfrastructureError         Redis or the fleet cannot do its job (exit 1)
    │   ├── RunTimeout              a run did not finish within --timeout
    │   └── DatabaseAway            PostgreSQL is away (restarted, killed, read-only):
    │                               the connection is dropped; a later try reconnects
    ├── LinkFailed                  what a chain link raises across Celery: a code and ids
    ├── RetryableError              worth another try, later
    │   ├── RateLimited             429 from the gateway; carries Retry-After
    │   ├── GatewayUnavailable      503 or other 5xx; may carry Retry-After
    │   │   └── AnswerMismatch      a 200 answer naming another claim: a gateway fault
    │   ├── GatewayTimeout          connect/read timeout, reset, refused
    │   ├── AuthenticationFailed    401: the token is invalid (REJ_001) or expired (REJ_004)
    │   └── BatchDeferred           a submit batch comes back later; its message is the
    │                               reason (what Flower shows beside "Retry in N s")
    └── FatalError                  will fail the same way every time
        ├── ClaimValidationError    a claim breaks a rule; carries the rule's code
        ├── RoutingMiss             404: the gateway does not know the BIN/PCN
        ├── GatewayRejectedRequest  any other 4xx: our request is wrong, not the claim
        └── ValueRefused            the database refuses a value (SQLSTATE class 22, 23,
                                    54000): the same write fails every time

Errors carry the claim id and the request (method and URL), never PHI: their
messages end up in logs, broker messages and Sentry events.
"""

from __future__ import annotations


class RxFleetError(Exception):
    """Root of every error rxfleet raises on purpose."""


class ConfigError(RxFleetError):
    """Settings are missing or contradictory."""


class InputError(RxFleetError):
    """An input file cannot be read at all; names the file (and line when known)."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class InputCutShort(InputError):
    """A file that was readable up to ``position`` cannot be read any further.

    Raised by a reader *after* it yielded the records before ``position`` (for
    Parquet: the number of the last row read; 0 when none was), e.g. a corrupt
    data page under an intact footer. The producer stops cleanly, naming file and
    position; the records already read are not lost, the rest never started.
    """

    def __init__(self, path: str, reason: str, position: int) -> None:
        super().__init__(path, f"{reason}; last good position {position}")
        self.position = position
        self.reason = reason


class InfrastructureError(RxFleetError):
    """Redis, a worker or the broker is not there to do the job."""


class RunTimeout(InfrastructureError):
    """A run did not reach a terminal state for every claim in time."""


class DatabaseAway(InfrastructureError):
    """The database is away: the session ended (restart, crash, failover), the server
    cannot be reached, or it takes no writes (read-only). Names the operation and the
    SQLSTATE; the connection that saw it was dropped."""


class LinkFailed(RxFleetError):
    """A chain link failed; crosses the Celery boundary instead of the original exception.

    Exception text is never trusted (it may quote a value), so this carries only
    ``code`` (the original exception's class name), the batch's ids (run id,
    first sequence number, count) and ``ref``, a stable fingerprint of the
    failure's type and code location (the same bug gives the same ref) that
    the worker's log line carries too. The arguments are all positional, so
    Celery's result backend stores them and rebuilds the exception as is.
    """

    def __init__(self, code: str, run_id: str, first: int, count: int, ref: str = "") -> None:
        super().__init__(code, run_id, first, count, ref)
        self.code = code
        self.run_id = run_id
        self.first = first
        self.count = count
        self.ref = ref

    def __str__(self) -> str:
        where = f"run {self.run_id}, batch first={self.first} count={self.count}"
        return f"{self.code} in {where}" + (f" (ref {self.ref})" if self.ref else "")


class RetryableError(RxFleetError):
    """Worth another try later; ``retry_after`` is the server's word, in seconds."""

    def __init__(
        self,
        message: str,
        *,
        claim_id: str | None = None,
        request: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.claim_id = claim_id
        self.request = request
        self.retry_after = retry_after


class BatchDeferred(RetryableError):
    """A submit batch waits and comes back: the reason (``fleet_pause``,
    ``claims_to_try_again``...) is its message, so a retry says why it waits."""

    def __reduce__(self) -> tuple[type[BatchDeferred], tuple[str]]:
        return type(self), (str(self),)


class RateLimited(RetryableError):
    """429 Too Many Requests."""


class GatewayUnavailable(RetryableError):
    """503 Service Unavailable or another 5xx."""


class AnswerMismatch(GatewayUnavailable):
    """The gateway answered, but for another claim id: never recorded against this one;
    tried again, then ``99`` with the reason ``ANSWER_MISMATCH``."""


class GatewayTimeout(RetryableError):
    """The gateway did not answer in time, or the connection failed."""


class AuthenticationFailed(RetryableError):
    """401: ``reason`` is ``REJ_001`` (invalid token) or ``REJ_004`` (session expired)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        claim_id: str | None = None,
        request: str | None = None,
    ) -> None:
        super().__init__(message, claim_id=claim_id, request=request)
        self.reason = reason


class FatalError(RxFleetError):
    """Will fail the same way every time: a result, not a retry."""

    def __init__(
        self, message: str, *, claim_id: str | None = None, request: str | None = None
    ) -> None:
        super().__init__(message)
        self.claim_id = claim_id
        self.request = request


class ClaimValidationError(FatalError):
    """A claim breaks a validation rule; ``code`` is the rule's deterministic code."""

    def __init__(self, code: str, message: str, *, claim_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}", claim_id=claim_id)
        self.code = code


class RoutingMiss(FatalError):
    """404 from the gateway: it has no route for this BIN/PCN (reject 04)."""


class GatewayRejectedRequest(FatalError):
    """Another 4xx: the gateway refused the request itself."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        claim_id: str | None = None,
        request: str | None = None,
    ) -> None:
        super().__init__(message, claim_id=claim_id, request=request)
        self.status = status


class ValueRefused(FatalError):
    """The database refuses a value it was given (a NUL in text, an index row too
    large, a constraint): writing it again fails the same way, so it is never retried.
    Carries the operation and the SQLSTATE, never the value."""

    def __init__(self, operation: str, sqlstate: str) -> None:
        super().__init__(f"database: {operation} refused a value ({sqlstate})")
        self.operation = operation
        self.sqlstate = sqlstate
