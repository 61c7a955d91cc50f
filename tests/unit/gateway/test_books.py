"""The sandbox's books: billing (83 on a second billing), reversal (A / 87), atomic rebill."""

from __future__ import annotations

import json
from typing import Any

from config.settings import CONFIG_DIR
from rxfleet.gateway.sandbox.adjudicator import Adjudicator, PlanBook
from rxfleet.gateway.sandbox.books import book_key
from rxfleet.gateway.sandbox.scenario import Override, Scenario
from rxfleet.gateway.sandbox.state import GatewayState
from tests.unit.gateway.sandbox_claims import PAYABLE

PLANS = PlanBook.load(CONFIG_DIR / "sandbox_plans.json")
CLAIM: dict[str, Any] = {**PAYABLE, "claim_id": "B-1"}
IDENTIFYING = ("claim_id", "bin", "pcn", "service_provider_id", "rx_number", "fill_number")
REVERSAL: dict[str, Any] = {
    **{k: CLAIM[k] for k in IDENTIFYING},
    "date_of_service": CLAIM["date_of_service"],
    "transaction_code": "B2",
}


def gateway(scenario: Scenario | None = None) -> GatewayState:
    return GatewayState(Adjudicator(PLANS), scenario or Scenario(), "client", "secret")


def send(state: GatewayState, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer, _ = state.settle(key, json.dumps(body).encode())
    return answer.status, answer.body


def status_and_codes(state: GatewayState, key: str, body: dict[str, Any]) -> tuple[str, list[str]]:
    status, answer = send(state, key, body)
    assert status == 200, answer
    return answer["transaction_response_status"], answer["reject_codes"]


def test_a_paid_claim_is_on_the_books_with_its_key_and_amounts() -> None:
    state = gateway()
    assert status_and_codes(state, "B-1:k1", CLAIM) == ("P", [])
    books = state.books()
    assert books["claims"] == [
        {
            "claim_id": "B-1",
            "key": "B-1:k1",
            "authorization_number": books["claims"][0]["authorization_number"],
            "amount_paid": 41.75,
            "patient_pay": 40.0,
        }
    ]
    assert (books["count"], books["total_paid"], books["total_paid_cents"]) == (1, 41.75, 4175)


def test_a_second_billing_of_a_paid_rx_is_83_and_the_books_keep_one() -> None:
    state = gateway()
    status_and_codes(state, "B-1:k1", CLAIM)
    again = {**CLAIM, "claim_id": "B-2", "ingredient_cost_submitted": 70.0}
    assert status_and_codes(state, "B-2:k1", again) == ("R", ["83"])
    assert [c["claim_id"] for c in state.books()["claims"]] == ["B-1"]
    other_fill = {**again, "fill_number": 1}
    assert status_and_codes(state, "B-2:k2", other_fill) == ("P", [])
    assert state.books()["count"] == 2


def test_a_replayed_key_gets_its_stored_answer_and_the_books_change_once() -> None:
    state = gateway()
    assert status_and_codes(state, "B-1:k1", CLAIM) == ("P", [])
    assert status_and_codes(state, "B-1:k1", CLAIM) == ("P", [])
    assert state.books()["count"] == 1
    assert status_and_codes(state, "B-1:r1", REVERSAL) == ("A", [])
    assert status_and_codes(state, "B-1:r1", REVERSAL) == ("A", [])
    assert state.books()["count"] == 0
    assert state.stats()["adjudications"] == 2


def test_a_reversal_takes_the_paid_claim_off_the_books() -> None:
    state = gateway()
    status_and_codes(state, "B-1:k1", CLAIM)
    status, body = send(state, "B-1:r1", REVERSAL)
    assert (status, body) == (
        200,
        {"claim_id": "B-1", "transaction_response_status": "A", "reject_codes": []},
    )
    assert state.books() == {"claims": [], "count": 0, "total_paid": 0.0, "total_paid_cents": 0}
    # the Rx may be billed again once reversed
    assert status_and_codes(state, "B-1:k2", CLAIM) == ("P", [])


def test_a_reversal_of_nothing_is_87() -> None:
    state = gateway()
    assert status_and_codes(state, "B-1:r1", REVERSAL) == ("R", ["87"])
    status_and_codes(state, "B-1:k1", CLAIM)
    other_rx = {**REVERSAL, "rx_number": "7000002"}
    assert status_and_codes(state, "B-1:r2", other_rx) == ("R", ["87"])
    assert state.books()["count"] == 1


def test_a_reversal_needs_only_identifying_fields_and_no_formulary() -> None:
    state = gateway(Scenario(answers=(Override(claim_ids=frozenset({"B-1"}), status="R"),)))
    assert status_and_codes(state, "B-1:r1", REVERSAL) == ("R", ["87"])  # no override applied
    missing = {k: v for k, v in REVERSAL.items() if k != "service_provider_id"}
    assert send(state, "B-1:r2", missing) == (
        400,
        {"error": "invalid_request", "field": "service_provider_id"},
    )
    # An X12 void carries no fill number and maybe no Rx number: not refused, it is
    # looked up where such a claim is filed (by its claim id): nothing paid there, 87.
    void = {k: v for k, v in REVERSAL.items() if k not in ("rx_number", "fill_number")}
    assert status_and_codes(state, "B-1:r4", void) == ("R", ["87"])
    assert send(state, "B-1:r3", {**REVERSAL, "pcn": "NOPE"})[0] == 404


def test_a_rebill_replaces_the_paid_claim() -> None:
    state = gateway()
    status_and_codes(state, "B-1:k1", CLAIM)
    corrected = {**CLAIM, "transaction_code": "B3", "ingredient_cost_submitted": 60.0}
    assert status_and_codes(state, "B-1:k2", corrected) == ("P", [])
    books = state.books()
    assert [(c["key"], c["amount_paid"]) for c in books["claims"]] == [("B-1:k2", 21.75)]


def test_a_refused_rebill_leaves_the_original_paid() -> None:
    state = gateway()
    status_and_codes(state, "B-1:k1", CLAIM)
    excluded = {**CLAIM, "transaction_code": "B3", "gpi": "40304080100330"}
    assert status_and_codes(state, "B-1:k2", excluded) == ("R", ["70"])
    assert [c["key"] for c in state.books()["claims"]] == ["B-1:k1"]


def test_a_rebill_of_nothing_is_87_and_bills_nothing() -> None:
    state = gateway()
    assert status_and_codes(state, "B-1:k1", {**CLAIM, "transaction_code": "B3"}) == ("R", ["87"])
    assert state.books()["count"] == 0


def test_an_unknown_transaction_code_is_refused() -> None:
    assert send(gateway(), "B-1:x", {**CLAIM, "transaction_code": "B9"}) == (
        400,
        {"error": "invalid_request", "field": "transaction_code"},
    )


def test_reset_empties_the_books() -> None:
    state = gateway()
    status_and_codes(state, "B-1:k1", CLAIM)
    state.reset()
    assert state.books()["count"] == 0


def test_book_key_files_by_prescription_or_by_claim_id() -> None:
    assert book_key(CLAIM) == ("1234567893", "7000001", "0", "2026-03-02")
    assert book_key({**CLAIM, "fill_number": 0.0}) == book_key(CLAIM)
    assert book_key({"claim_id": "X-1", "date_of_service": "2026-03-02"}) == ("claim", "X-1")


def test_the_total_is_exact_to_the_cent() -> None:
    state = gateway()
    for n in range(10):
        claim = {**CLAIM, "claim_id": f"C-{n}", "rx_number": f"80000{n}"}
        claim["ingredient_cost_submitted"] = 40.1  # 0.1 does not add up in floats
        status_and_codes(state, f"C-{n}:k", claim)
    books = state.books()
    assert books["total_paid_cents"] == sum(round(c["amount_paid"] * 100) for c in books["claims"])
    assert books["total_paid"] == books["total_paid_cents"] / 100


def test_stats_group_keys_by_claim_and_count_a_body_adjudicated_under_two_keys() -> None:
    state = gateway()
    send(state, "B-1~aaaaaaaaaaaaaaaa", CLAIM)
    send(state, "B-1~aaaaaaaaaaaaaaaa", CLAIM)  # a replay: not adjudicated again
    assert state.stats()["same_content"] == 0
    send(state, "B-1~bbbbbbbbbbbbbbbb", CLAIM)  # the same body under a second key
    stats = state.stats()
    assert stats["claims"] == {"B-1": {"keys": 2, "requests": 0, "adjudications": 2}}
    assert stats["same_content"] == 1
