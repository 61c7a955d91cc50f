"""``rxfleet webhooks`` over real HTTP: 204 once durable and applied once, in sequence
order; forged, stale, missing, oversized and malformed requests get their answer and
change nothing (the database and Redis are read back)."""

from __future__ import annotations

import json
import time

import requests

from bench.harness import wait_for as wait_until
from rxfleet.gateway.sandbox.publisher import change, formulary_event, send, signed
from rxfleet.gateway.signing import HEADER
from tests.integration.webhooks.conftest import MAX_BODY, SECRET, Hook

NDC, GPI = "00071015523", "39400010100310"


def _applied(hook: Hook) -> list[int]:
    return [r["sequence"] for r in hook.db.formulary_events() if r["applied_at"] is not None]


def test_an_event_is_kept_applied_and_published_before_its_204(hook: Hook) -> None:
    event = formulary_event(1, [change(NDC, GPI, covered=False, tier=3)])
    assert send(hook.url, SECRET, event) == 204
    # Right after the 204, without waiting: durable, applied, published.
    assert _applied(hook) == [1] and hook.db.formulary_version() == 1
    view = hook.cache.lookup([NDC, "00093104801"])
    assert view.version == 1 and view.waiting_since is None
    entry, absent = view.entries
    assert entry is not None and entry.covered is False and entry.tier == 3 and absent is None
    assert requests.get(hook.url + "/version", timeout=5).json() == {"version": 1}


def test_the_same_event_again_is_204_and_applied_once(hook: Hook) -> None:
    event = formulary_event(1, [change(NDC, GPI, covered=False)])
    assert [send(hook.url, SECRET, event) for _ in range(3)] == [204, 204, 204]
    assert _applied(hook) == [1]
    version, entries = hook.db.formulary_entries()
    assert version == 1 and len(entries) == 1
    wait_until(lambda: hook.metrics.read().webhook.get("duplicate") == 2, 10, "counts written")
    assert hook.metrics.read().webhook["stored"] == 1


def _post(hook: Hook, body: bytes, signature: str | None) -> requests.Response:
    headers = {HEADER: signature} if signature is not None else {}
    return requests.post(hook.url, data=body, headers=headers, timeout=10)


def test_bad_requests_get_their_answer_and_change_nothing(hook: Hook) -> None:
    event = formulary_event(1, [change(NDC, GPI, covered=False)])
    body, good = signed(SECRET, event)
    _, forged = signed(b"not-the-payers-secret-0000000000", event)
    _, stale = signed(SECRET, event, int(time.time()) - 301)
    assert _post(hook, body, None).status_code == 401
    assert _post(hook, body, forged).status_code == 401
    assert _post(hook, body, stale).status_code == 401
    assert _post(hook, body + b" ", good).status_code == 401  # body changed after signing
    not_event, signature = signed(SECRET, {"event_id": "x"})
    assert _post(hook, not_event, signature).status_code == 400
    answer = _post(hook, not_event, signature).json()
    assert answer["error"] == "invalid_event" and "sequence" in answer["error_description"]
    huge = formulary_event(2, [change(NDC, GPI)], event_id="e" + "x" * 10)
    huge["pad"] = "x" * MAX_BODY
    big_body, big_signature = signed(SECRET, huge)
    assert _post(hook, big_body, big_signature).status_code == 413
    assert hook.db.formulary_events() == [] and hook.cache.version() == 0
    wait_until(lambda: hook.metrics.read().webhook.get("oversize") == 1, 10, "counts written")
    counts = hook.metrics.read().webhook
    assert (counts["missing"], counts["mismatch"], counts["stale"], counts["not_event"]) == (
        1, 2, 1, 2)  # fmt: skip
    assert _post(hook, body, good).status_code == 204  # the genuine one still goes through


def test_a_gap_waits_then_both_apply_in_sequence_order(hook: Hook) -> None:
    assert send(hook.url, SECRET, formulary_event(1, [change(NDC, GPI)])) == 204
    third = formulary_event(3, [change(NDC, GPI, covered=False, tier=4)])
    assert send(hook.url, SECRET, third) == 204  # durable: kept, not applied
    assert _applied(hook) == [1] and hook.cache.version() == 1
    assert hook.cache.lookup([NDC]).waiting_since is not None  # claims may now be TRANSIENT
    second = formulary_event(2, [change(NDC, GPI, covered=True, tier=2)])
    assert send(hook.url, SECRET, second) == 204
    rows = hook.db.formulary_events()
    assert [r["sequence"] for r in sorted(rows, key=lambda r: r["applied_rank"])] == [1, 2, 3]
    view = hook.cache.lookup([NDC])
    assert view.version == 3 and view.waiting_since is None
    assert view.entries[0] is not None and view.entries[0].tier == 4  # the last event wins


def test_a_new_event_with_a_used_sequence_is_refused(hook: Hook) -> None:
    assert send(hook.url, SECRET, formulary_event(1, [change(NDC, GPI)])) == 204
    clash = formulary_event(1, [change(NDC, GPI, covered=False)])
    body, signature = signed(SECRET, clash)
    answer = _post(hook, body, signature)
    assert answer.status_code == 400 and answer.json()["error"] == "sequence_used"
    assert [r["event_id"] for r in hook.db.formulary_events()] != [clash["event_id"]]
    assert hook.cache.lookup([NDC]).entries[0] is not None
    assert hook.cache.lookup([NDC]).entries[0].covered is True  # type: ignore[union-attr]


def test_redis_restarted_empty_is_republished_from_the_database(hook: Hook) -> None:
    for seq in (1, 2):
        event = formulary_event(seq, [change(f"0007101552{seq}", GPI, covered=seq == 1)])
        assert send(hook.url, SECRET, event) == 204
    hook.client.flushall()
    wait_until(lambda: hook.cache.version() == 2, 10, "the once-a-second sync")
    first, second = hook.cache.lookup(["00071015521", "00071015522"]).entries
    assert first is not None and first.covered and second is not None and not second.covered


def test_events_sent_at_once_are_all_kept_and_applied_in_order(hook: Hook) -> None:
    from concurrent.futures import ThreadPoolExecutor

    events = [formulary_event(s, [change(NDC, GPI, tier=s % 10)]) for s in range(1, 61)]
    with ThreadPoolExecutor(8) as pool:  # out of order on the wire
        answers = list(pool.map(lambda e: send(hook.url, SECRET, e), reversed(events)))
    assert answers == [204] * 60
    rows = sorted(hook.db.formulary_events(), key=lambda r: r["applied_rank"])
    assert [r["sequence"] for r in rows] == list(range(1, 61))
    assert hook.cache.version() == 60
    assert json.loads(json.dumps(hook.cache.lookup([NDC]).entries[0].tier)) == 0  # type: ignore[union-attr]
