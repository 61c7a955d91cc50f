"""The submit link's decisions, with a scripted gateway double (the real HTTP
behaviour is tested against the sandbox in tests/integration)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from config import Settings
from rxfleet.claims.phi import VaultCipher
from rxfleet.claims.rejects import RejectMatrix
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import (
    AuthenticationFailed,
    GatewayTimeout,
    RateLimited,
    RoutingMiss,
    RxFleetError,
)
from rxfleet.gateway.client import Job, Pricing
from rxfleet.links.submit import SubmitContext, backoff, submit_batch
from rxfleet.links.submit.context import Heard, Timed
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.routes import RouteMemo, RouteState
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore

CIPHER = VaultCipher(bytes(range(32)))


@dataclass
class Answer:
    status: str
    reject_codes: tuple[str, ...] = ()
    authorization_number: str | None = None
    pricing: Pricing | None = None


@dataclass
class Grant:
    access_token: str
    expires_in: float = 60.0


@dataclass
class ScriptedGateway:
    """The token endpoint and a scripted ``Sender``: answers per claim id from a
    script of outcomes (an error or an Answer), one request after the other,
    asking ``go`` before each and telling ``seen`` each answer, as the sender does."""

    script: dict[str, list[Any]] = field(default_factory=dict)
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fetches: int = 0
    windows: list[int] = field(default_factory=list)  # the size of each window sent

    def fetch_token(self) -> Grant:
        self.fetches += 1
        return Grant(f"tok-{self.fetches}")

    def send(
        self, jobs: Sequence[Job], go: Callable[[], bool], seen: Callable[[Heard], None]
    ) -> list[Timed | None]:
        self.windows.append(len(jobs))
        results: list[Timed | None] = []
        for job in jobs:
            if not go():
                results.append(None)
                continue
            result = self._answer(job)
            seen(result)
            results.append((result, 0.001))
        return results

    def _answer(self, job: Job) -> Answer | RxFleetError:
        self.sent.append((job.key, job.token, dict(job.body)))
        outcomes = self.script.get(job.key, [])
        outcome: Answer | RxFleetError = outcomes.pop(0) if outcomes else Answer("P")
        return outcome


def _claim(seq: int, bin_: str = "610014") -> dict[str, Any]:
    return {
        "claim_id": f"C{seq}",
        "bin": bin_,
        "pcn": "RXSANDBX",
        "date_of_service": "2026-11-01",
        "ndc": "00071015523",
        "ndc11": "00071015523",
        "quantity_dispensed": "30",
        "days_supply": 30,
        "plan_id": "PLAN-COMM",
    }


def _ctx(
    runs: RunStore, tokens: TokenStore, gateway: ScriptedGateway, n: int, **over: Any
) -> SubmitContext:
    records = []
    keyed = over.pop("keyed", False)  # records made at ingestion carry their submission key
    for seq in range(n):
        record = WorkRecord(
            seq=seq, source="f", line=seq + 1, claim_id=f"C{seq}", stage=Stage.MAPPED
        )
        record.claim, record.gpi = _claim(seq, over.pop(f"bin{seq}", "610014")), "39400010100310"
        record.key = f"C{seq}~{seq:016x}" if keyed else None
        records.append(record)
    sealed = {
        r.seq: CIPHER.seal({"cardholder_id": f"ZH{r.seq:09d}"}, context=f"R:{r.seq}")
        for r in records
    }
    runs.add("R", records, sealed)
    settings = Settings(backoff_base=1.0, backoff_cap=8.0, **over)
    return SubmitContext(
        runs=runs,
        tokens=tokens,
        pause=FleetPause(runs.client, runs.prefix),
        routes=RouteMemo(runs.client, runs.prefix),
        gateway=gateway,
        sender=gateway,
        vault=CIPHER,
        settings=settings,
    )


def test_all_paid_and_phi_only_in_the_http_body(runs: RunStore, tokens: TokenStore) -> None:
    gateway = ScriptedGateway()
    report = submit_batch(_ctx(runs, tokens, gateway, 3), "R", range(3))
    assert report.done == 3 and report.retry_in is None
    assert [body["cardholder_id"] for _, _, body in gateway.sent] == [
        "ZH000000000",
        "ZH000000001",
        "ZH000000002",
    ]
    assert all(r.stage == Stage.SENT and r.attempts == 1 for r in runs.load("R", range(3)))
    assert "ZH000000000" not in str([r.model_dump() for r in runs.load("R", range(3))])


def test_the_submission_key_is_sent_on_every_try(runs: RunStore, tokens: TokenStore) -> None:
    key = f"C1~{1:016x}"
    gateway = ScriptedGateway({key: [AuthenticationFailed("x", reason="REJ_004")]})
    submit_batch(_ctx(runs, tokens, gateway, 2, keyed=True), "R", range(2))
    assert [(k, t) for k, t, _ in gateway.sent] == [
        (f"C0~{0:016x}", "tok-1"),
        (key, "tok-1"),
        (key, "tok-2"),  # the replay keeps the submission's key, not the claim id
    ]


def test_a_rerun_link_never_resends_finished_claims(runs: RunStore, tokens: TokenStore) -> None:
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 3)
    submit_batch(ctx, "R", range(3))
    again = submit_batch(ctx, "R", range(3))
    assert len(gateway.sent) == 3 and again.skipped == 3 and again.done == 0


def test_401_invalidates_rotates_once_and_replays_same_key(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [AuthenticationFailed("x", reason="REJ_004")]})
    submit_batch(_ctx(runs, tokens, gateway, 3), "R", range(3))
    assert [(k, t) for k, t, _ in gateway.sent] == [
        ("C0", "tok-1"),
        ("C1", "tok-1"),
        ("C2", "tok-1"),
        ("C1", "tok-2"),  # only the refused claim is replayed, with the new token
    ]
    assert gateway.fetches == 2 and tokens.stats()["auth_REJ_004"] == 1


def test_retry_after_stops_the_batch_pauses_the_fleet_and_keeps_finished(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [RateLimited("slow down", retry_after=3.0)]})
    ctx = _ctx(runs, tokens, gateway, 3)
    report = submit_batch(ctx, "R", range(3))
    assert report.still_open == 2 and 3.0 <= report.retry_in <= 3.25  # type: ignore[operator]
    assert 2.9 < ctx.pause.remaining() <= 3.25  # at least Retry-After, plus the jitter
    assert [r.stage for r in runs.load("R", range(3))] == [Stage.SENT, Stage.MAPPED, Stage.MAPPED]
    held = submit_batch(ctx, "R", range(3))
    assert held.reason == "fleet pause" and len(gateway.sent) == 2  # nobody sends during a pause


def test_a_failed_claim_waits_for_the_next_round_while_the_rest_goes_on(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [GatewayTimeout("t")]})
    report = submit_batch(_ctx(runs, tokens, gateway, 3), "R", range(3))
    records = runs.load("R", range(3))
    assert [r.stage for r in records] == [Stage.SENT, Stage.MAPPED, Stage.SENT]
    assert report.retry is not None and report.retry.failures == 1  # progress: a new streak
    assert report.still_open == 1 and report.retry.countdown <= 2.0  # backoff from 2**1
    again = submit_batch(_ctx(runs, tokens, gateway, 0), "R", range(3), failures=1)
    assert again.done == 1 and again.retry is None
    assert runs.load("R", [1])[0].attempts == 2


def test_a_claim_whose_tries_are_spent_is_rejected_99_and_the_rest_goes_on(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [GatewayTimeout("t")]})
    ctx = _ctx(runs, tokens, gateway, 3)
    (tired,) = runs.load("R", [1])
    tired.failures = ctx.settings.submit_max_retries
    runs.save("R", [tired])
    report = submit_batch(ctx, "R", range(3))
    records = runs.load("R", range(3))
    assert report.retry is None and [r.reject_codes for r in records] == [[], ["99"], []]
    assert records[1].reason == "RETRIES_EXHAUSTED"


def test_a_transient_host_reject_is_sent_again_with_the_same_key_then_stands(
    runs: RunStore, tokens: TokenStore
) -> None:
    busy = {"C0": [Answer("R", ("92",))] * 3}  # 92: System Unavailable/Host Unavailable
    gateway = ScriptedGateway(busy)
    ctx = _ctx(runs, tokens, gateway, 1, submit_max_retries=1)
    ctx.rejects = RejectMatrix.load(ctx.settings.reject_matrix)
    first = submit_batch(ctx, "R", range(1))
    assert first.retry is not None and runs.load("R", [0])[0].stage == Stage.MAPPED
    submit_batch(ctx, "R", range(1), failures=first.retry.failures)
    (record,) = runs.load("R", [0])
    assert [k for k, _, _ in gateway.sent] == ["C0", "C0"]  # the same Idempotency-Key
    assert record.stage == Stage.SENT and record.reject_codes == ["92"]
    assert record.reason == "TRANSIENT_EXHAUSTED"


def test_rounds_without_progress_exhausted_reject_99_every_open_claim(
    runs: RunStore, tokens: TokenStore
) -> None:
    down = {f"C{i}": [GatewayTimeout("t")] for i in range(3)}
    ctx = _ctx(runs, tokens, ScriptedGateway(down), 3)
    ctx.routes.remember_ok("610014", "RXSANDBX")  # a known route: the whole window goes out
    report = submit_batch(ctx, "R", range(3), failures=8)
    records = runs.load("R", range(3))
    assert report.retry_in is None and report.reason == "retries exhausted"
    assert [r.reject_codes for r in records] == [["99"]] * 3
    assert [r.attempts for r in records] == [1, 1, 1]


def test_a_window_that_only_fails_backs_off_and_counts_a_failed_round(
    runs: RunStore, tokens: TokenStore
) -> None:
    down = {f"C{i}": [GatewayTimeout("t")] for i in range(3)}
    report = submit_batch(_ctx(runs, tokens, ScriptedGateway(down), 3), "R", range(3), failures=2)
    assert report.retry is not None and report.retry.failures == 3 and not report.deferred
    assert report.still_open == 3


def test_404_is_remembered_per_bin_pcn(runs: RunStore, tokens: TokenStore) -> None:
    gateway = ScriptedGateway({"C0": [RoutingMiss("no route")]})
    ctx = _ctx(runs, tokens, gateway, 3, bin0="777777", bin1="777777", bin2="777777")
    submit_batch(ctx, "R", range(3))
    assert len(gateway.sent) == 1
    assert [r.reject_codes for r in runs.load("R", range(3))] == [["04"]] * 3


@pytest.mark.parametrize("failures", [0, 3, 10])
def test_backoff_without_retry_after_is_full_jitter_under_the_cap(failures: int) -> None:
    settings = Settings(backoff_base=1.0, backoff_cap=8.0)
    delays = [backoff(settings, failures) for _ in range(200)]
    ceiling = min(8.0, 2.0**failures)
    assert all(0 <= d <= ceiling for d in delays) and max(delays) > ceiling / 2


def test_a_long_retry_after_pauses_the_fleet_and_comes_back_in_short_hops(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C0": [RateLimited("x", retry_after=86_400)]})
    ctx = _ctx(runs, tokens, gateway, 1)
    report = submit_batch(ctx, "R", range(1))
    assert report.retry is not None and report.deferred
    assert report.retry.countdown <= ctx.settings.countdown_max < ctx.settings.visibility_timeout
    assert (
        ctx.settings.retry_after_cap - 1 < ctx.pause.remaining() <= ctx.settings.retry_after_cap + 1
    )
    again = submit_batch(ctx, "R", range(1))  # the next hop: still paused, nothing sent
    assert again.reason == "fleet pause" and len(gateway.sent) == 1


def test_pause_only_ever_lengthens(pause: FleetPause) -> None:
    pause.lengthen(5)
    pause.lengthen(1)
    assert pause.remaining() > 4


def test_a_shorter_pause_never_cuts_a_longer_one_short(pause: FleetPause) -> None:
    pause.lengthen(30)
    until = pause.remaining()
    pause.lengthen(2)  # arrives later, asks for less
    assert until - 1 < pause.remaining() <= until
    assert len(pause.history()) == 2


def test_an_unknown_route_is_found_out_by_one_request_at_a_time(
    runs: RunStore, tokens: TokenStore, routes: RouteMemo
) -> None:
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 2)
    assert routes.probe("610014", "RXSANDBX", patience=0) is RouteState.PROBE  # another worker
    held = submit_batch(ctx, "R", range(2))
    assert held.deferred and held.retry_in == 0.2 and gateway.sent == []
    routes.release("610014", "RXSANDBX")
    done = submit_batch(ctx, "R", range(2))
    assert done.done == 2 and len(gateway.sent) == 2
    assert routes.state("610014", "RXSANDBX") is RouteState.KNOWN
    assert not routes.client.exists("t:gateway:probe:610014:RXSANDBX")  # released
    assert routes.probe("610014", "RXSANDBX", patience=0) is RouteState.KNOWN


@pytest.mark.parametrize("stop", ["fleet pause", "run aborted"])
def test_a_window_that_waits_or_is_aborted_takes_no_route_probe(
    runs: RunStore, tokens: TokenStore, routes: RouteMemo, stop: str
) -> None:
    """A window that sends nothing must not hold the probe of its unknown route:
    otherwise nobody could find that route out until the probe's lease expired."""
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 2)
    if stop == "fleet pause":
        ctx.pause.lengthen(5)
    else:
        runs.abort("R")
    report = submit_batch(ctx, "R", range(2))
    assert report.reason == stop and gateway.sent == []
    assert not routes.client.exists("t:gateway:probe:610014:RXSANDBX")
    assert routes.probe("610014", "RXSANDBX", patience=0) is RouteState.PROBE  # free to probe


def test_a_probe_taken_just_after_the_answer_gets_the_answer_not_a_second_request(
    routes: RouteMemo,
) -> None:
    """A caller that read the route as unknown, then takes the probe the moment the
    first holder (who learnt the 404) gives it back, must not send a second 404."""
    assert routes.probe("777777", "NOSUCHPCN", patience=0) is RouteState.PROBE
    routes.remember_miss("777777", "NOSUCHPCN")
    routes.release("777777", "NOSUCHPCN")
    assert routes.probe("777777", "NOSUCHPCN", patience=0) is RouteState.MISS
    assert not routes.client.exists("t:gateway:probe:777777:NOSUCHPCN")


# -- the window path: several requests in flight through the Sender ------------


def _leasable(runs: RunStore, seqs: list[int]) -> list[int]:
    """What another delivery is told when it asks for these claims' send leases."""
    pipe = runs.pipeline()
    leases = runs.lease(pipe, "R", seqs, "another-delivery", 60_000)
    return [int(x) for x in leases(pipe.execute())]


def test_a_window_stops_at_the_first_retry_after_and_the_rest_wait_unsent(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [RateLimited("slow down", retry_after=2.0)]})
    ctx = _ctx(runs, tokens, gateway, 5, submit_inflight=5)
    ctx.routes.remember_ok("610014", "RXSANDBX")
    report = submit_batch(ctx, "R", range(5))
    assert gateway.windows == [5] and [k for k, _, _ in gateway.sent] == ["C0", "C1"]
    records = runs.load("R", range(5))
    assert [r.stage for r in records] == [Stage.SENT] + [Stage.MAPPED] * 4
    assert [r.attempts for r in records] == [1, 1, 0, 0, 0]  # the skipped were never sent
    assert report.deferred and report.still_open == 4
    assert report.retry_in is not None and 2.0 <= report.retry_in <= 2.25
    assert 1.9 < ctx.pause.remaining() <= 2.25 and ctx.local_pause.remaining() > 1.9
    assert _leasable(runs, [1, 2, 3, 4]) == [1, 1, 1, 1]  # their leases were given back


def test_a_401_in_a_window_is_replayed_alone_with_the_rotated_token(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C2": [AuthenticationFailed("x", reason="REJ_001")]})
    ctx = _ctx(runs, tokens, gateway, 4, submit_inflight=4)
    ctx.routes.remember_ok("610014", "RXSANDBX")
    report = submit_batch(ctx, "R", range(4))
    assert gateway.windows == [4, 1]  # the replay is a window of one, through the sender too
    assert gateway.sent[-1][:2] == ("C2", "tok-2")
    assert report.done == 4 and report.retry is None and report.network_calls == 5
    assert runs.load("R", [2])[0].attempts == 2 and tokens.stats()["auth_REJ_001"] == 1


def test_a_404_in_a_window_rejects_04_and_the_rest_of_its_route_ends_without_a_request(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [RoutingMiss("no route")]})
    ctx = _ctx(runs, tokens, gateway, 3, submit_inflight=3, bin1="777777", bin2="777777")
    ctx.routes.remember_ok("610014", "RXSANDBX")
    report = submit_batch(ctx, "R", range(3))
    assert [k for k, _, _ in gateway.sent] == ["C0", "C1"]  # one probe for the unknown route
    records = runs.load("R", range(3))
    assert [r.reject_codes for r in records] == [[], ["04"], ["04"]]
    assert [r.reason for r in records] == [None, "ROUTING_MISS", "ROUTING_MISS"]
    assert [r.attempts for r in records] == [1, 1, 0]
    assert report.done == 3 and report.retry is None
    assert ctx.routes.state("777777", "RXSANDBX") is RouteState.MISS
    assert not runs.client.exists("t:gateway:probe:777777:RXSANDBX")  # the probe given back


def test_a_transient_reject_in_a_window_comes_back_next_round_and_the_rest_is_sent(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway({"C1": [Answer("R", ("92",))]})
    ctx = _ctx(runs, tokens, gateway, 3, submit_inflight=3)
    ctx.rejects = RejectMatrix.load(ctx.settings.reject_matrix)
    ctx.routes.remember_ok("610014", "RXSANDBX")
    report = submit_batch(ctx, "R", range(3))
    records = runs.load("R", range(3))
    assert [r.stage for r in records] == [Stage.SENT, Stage.MAPPED, Stage.SENT]
    assert records[1].failures == 1 and records[1].reject_codes == ["92"]
    assert report.retry is not None and not report.deferred and report.still_open == 1
    again = submit_batch(ctx, "R", range(3), failures=report.retry.failures)
    assert again.done == 1 and [k for k, _, _ in gateway.sent][-1] == "C1"
    assert runs.load("R", [1])[0].reject_codes == []  # paid the second time


def test_a_window_where_every_request_fails_backs_off_and_trips_the_health_breaker(
    runs: RunStore, tokens: TokenStore
) -> None:
    down = {f"C{i}": [GatewayTimeout("t")] for i in range(3)}
    gateway = ScriptedGateway(down)
    ctx = _ctx(runs, tokens, gateway, 3, submit_inflight=3)
    ctx.health = Breaker(runs.client, "t", "health", min_requests=3, rate_every=0.0)
    ctx.routes.remember_ok("610014", "RXSANDBX")
    report = submit_batch(ctx, "R", range(3), failures=1)
    assert gateway.windows == [3]
    assert report.retry is not None and report.retry.failures == 2 and not report.deferred
    assert report.reason == "every request of a window failed" and report.still_open == 3
    records = runs.load("R", range(3))
    assert [(r.stage, r.attempts, r.failures) for r in records] == [(Stage.MAPPED, 1, 1)] * 3
    assert ctx.health.state() == "open"
    held = submit_batch(ctx, "R", range(3), failures=2)
    assert held.reason == "health breaker open" and held.deferred and len(gateway.sent) == 3


def test_a_half_open_breakers_probe_closes_it_and_a_lone_claim_goes_through_the_sender(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 5, submit_inflight=4)
    ctx.health = Breaker(runs.client, "t", "health")
    ctx.routes.remember_ok("610014", "RXSANDBX")
    runs.client.set("t:breaker:health:tripped", "15.0")  # cooled down: half-open
    report = submit_batch(ctx, "R", range(5))
    assert gateway.windows == [4, 1] and report.done == 5  # the window that took the probe
    assert ctx.health.state() == "closed" and ctx.health.counters() == {"closed": 1}


def test_an_abort_ends_only_claims_never_sent_and_asks_again_for_those_in_doubt(
    runs: RunStore, tokens: TokenStore
) -> None:
    """A claim with a try behind it may have been adjudicated (its answer was lost):
    an abort asks the gateway again under its key instead of calling it not sent."""
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 3, keyed=True)
    doubt = runs.load("R", [1])[0]
    doubt.attempts = doubt.failures = 1  # sent once, the answer lost
    runs.save("R", [doubt])
    runs.abort("R")
    report = submit_batch(ctx, "R", range(3))
    assert [k for k, _, _ in gateway.sent] == [f"C1~{1:016x}"]
    by_seq = {r.seq: r for r in runs.load("R", range(3))}
    assert by_seq[1].status is None and by_seq[1].stage == Stage.SENT  # answered: P
    assert [by_seq[s].reason for s in (0, 2)] == ["ABORTED", "ABORTED"]
    assert report.done == 3


def test_claims_sealed_under_a_key_this_worker_lacks_wait_and_it_is_said_once(
    runs: RunStore, tokens: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The producer was given a new vault key before the workers: nothing is sent, no
    retry is used up, the key id is named once in the log; with the key, all goes."""
    gateway = ScriptedGateway()
    ctx = _ctx(runs, tokens, gateway, 3)
    newer = VaultCipher(bytes(range(1, 33)))
    kid = newer.kid
    ctx.vault = VaultCipher(bytes(range(2, 34)))  # knows neither CIPHER's key nor the newer
    for seq in range(3):  # resealed by the newer producer
        runs.client.hset(runs._vault("R"), str(seq),
                         newer.seal({"cardholder_id": "ZH1"}, context=f"R:{seq}"))  # fmt: skip
    with caplog.at_level("WARNING", logger="rxfleet.submit"):
        first = submit_batch(ctx, "R", range(3))
        second = submit_batch(
            ctx, "R", range(3), failures=first.retry.failures if first.retry else 0
        )
    assert gateway.sent == [] and first.done == second.done == 0
    assert first.reason == f"vault key {kid} missing on this worker" and first.deferred
    assert second.retry is not None and second.retry.failures == 0  # no retry used up
    assert sum(kid in r.getMessage() for r in caplog.records) == 1
    assert "ZH1" not in caplog.text
    ctx.vault = VaultCipher(bytes(range(2, 34)), old=[bytes(range(1, 33))])
    assert submit_batch(ctx, "R", range(3)).done == 3 and len(gateway.sent) == 3
