"""The sandbox portal's state: order, cursors, acknowledgement, rate limit, counters."""

from __future__ import annotations

from rxfleet.gateway.sandbox.portal import Portals, PortalState, cursor_of, portal_claims
from rxfleet.gateway.sandbox.scenario import Portal, Scenario


def test_pending_claims_come_oldest_first_from_after_the_cursor() -> None:
    state = PortalState(Portal(pending=5))
    first = state.pending(None, 2)
    assert [c["claim_id"] for c in first.body["claims"]] == ["PT00000001", "PT00000002"]
    assert first.body["cursor"] == cursor_of(2) == first.body["claims"][-1]["cursor"]
    rest = state.pending(first.body["cursor"], 10)
    assert [c["claim_id"] for c in rest.body["claims"]] == [f"PT0000000{i}" for i in (3, 4, 5)]
    empty = state.pending(rest.body["cursor"], 10)
    assert empty.body == {"claims": [], "cursor": rest.body["cursor"]}


def test_an_ack_removes_every_claim_through_its_cursor_once() -> None:
    state = PortalState(Portal(pending=4))
    state.pending(None, 3)
    assert state.ack(cursor_of(2), 1.0).body == {"acked": 2}
    assert state.pending(None, 10).body["claims"][0]["claim_id"] == "PT00000003"
    assert state.ack(cursor_of(1), 2.0).body == {"acked": 0}  # behind: nothing twice
    assert state.ack(cursor_of(4), 3.0).status == 200  # listed by the pull above
    stats = state.stats(detail=True)
    assert stats["acked"] == 4 and stats["acks_behind"] == 1 and stats["pending"] == 0
    assert [c["acked_at"] for c in stats["claims"]] == [1.0, 1.0, 3.0, 3.0]
    assert stats["pulled_twice"] == 1  # claim 3 was listed by both pulls


def test_an_ack_ahead_of_what_was_listed_is_refused_and_counted() -> None:
    state = PortalState(Portal(pending=4))
    state.pending(None, 1)
    assert state.ack(cursor_of(3), 1.0).status == 409
    assert state.ack("nonsense", 1.0).status == 400
    assert state.pending("c99999999", 1).status == 400
    assert state.stats()["acks_ahead"] == 1 and state.stats()["acked"] == 0


def test_the_rate_limit_answers_429_with_retry_after_above_it() -> None:
    state = PortalState(Portal(pending=1, rate_limit=2, rate_window=1.0))
    assert state.admit(10.0) is None
    assert state.rate_headers(10.0) == [("X-RateLimit-Remaining", "1"), ("X-RateLimit-Reset", "1")]
    assert state.admit(10.2) is None
    refused = state.admit(10.5)
    assert refused is not None and refused.status == 429
    assert refused.headers == [("Retry-After", "0.5")]
    assert state.admit(11.0) is None  # a new window
    assert state.stats()["throttled"] == 1


def test_named_portals_are_separate_and_reset_with_the_scenario() -> None:
    portals = Portals(Portal(pending=3))
    a, path = portals.route("/portals/a/v1/claims/pending")
    assert path == "/v1/claims/pending" and a is portals.named("a")
    assert portals.route("/v1/claims/pending") == (portals.default, "/v1/claims/pending")
    a.pending(None, 3)
    assert portals.named("b").stats()["pulled"] == 0
    portals.reset()
    assert portals.named("a").stats()["pulled"] == 0


def test_the_sample_mix_sends_malformed_claims_as_objects() -> None:
    claims = portal_claims(Portal(pending=400, mix="sample"))
    assert len(claims) == 400 and all(isinstance(c, dict) for c in claims)
    assert Scenario.from_json('{"portal": {"pending": 5, "rate_limit": 3}}').portal.pending == 5
