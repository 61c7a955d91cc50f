"""The order of a claim id's submissions (``rxfleet.stores.order``, the planner's
``held`` claims): a reversal waits for the billing ahead of it, in any run."""

from __future__ import annotations

import dataclasses

from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.submit import SubmitContext, submit_batch
from rxfleet.stores.order import ClaimOrder, Entry
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore
from tests.unit.fleet.test_submit_link import ScriptedGateway, _ctx


def _billing(run_id: str, seq: int, claim_id: str = "C0") -> Entry:
    return Entry(run_id, seq, claim_id, "B1")


def test_the_first_submission_waits_for_nothing_and_a_later_one_is_flagged(
    runs: RunStore,
) -> None:
    order = ClaimOrder(runs.client, runs.prefix)
    assert order.enter("A", [_billing("A", 7), _billing("A", 8, "C9")]) == {}
    reversal = Entry("R", 0, "C0", "B2")
    assert order.enter("R", [reversal]) == {0: 0}  # a billing ahead, no reversal
    assert order.enter("S", [_billing("S", 3)]) == {3: 1}  # a reversal ahead of it
    assert order.enter("R", [reversal]) == {0: 0}  # entered again (resume): same place
    assert [p.run_id for p in order.ahead([reversal])[0]] == ["A"]
    pipe = runs.pipeline()
    waiting = order.waiting(pipe, "R", [0, 1])
    assert waiting(pipe.execute()) == {0}


def _reversal_behind_billing_of_run_a(
    runs: RunStore, tokens: TokenStore, gateway: ScriptedGateway
) -> tuple[SubmitContext, ClaimOrder, WorkRecord]:
    """Run R holds a reversal of C0 (seq 0); run A, ingested before it, C0's billing."""
    order = ClaimOrder(runs.client, runs.prefix)
    ctx = dataclasses.replace(_ctx(runs, tokens, gateway, 1), order=order)
    billing = WorkRecord(seq=5, source="a", line=6, claim_id="C0", stage=Stage.MAPPED)
    runs.add("A", [billing], {})
    record = runs.load("R", [0])[0]
    record.fields["transaction_code"] = "B2"
    runs.save("R", [record])
    order.enter("A", [_billing("A", 5)])
    order.enter("R", [Entry("R", 0, "C0", "B2")])
    return ctx, order, billing


def test_a_reversal_waits_while_its_billing_is_unanswered_in_another_run(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway()
    ctx, _, billing = _reversal_behind_billing_of_run_a(runs, tokens, gateway)
    held = submit_batch(ctx, "R", range(1))
    assert gateway.sent == [] and held.retry_in is not None and held.done == 0
    billing.sent()
    runs.save("A", [billing])  # the billing has its answer now
    sent = submit_batch(ctx, "R", range(1))
    assert sent.done == 1 and [k for k, _, _ in gateway.sent] == ["C0"]


def test_a_billing_whose_record_is_gone_holds_nothing_and_leaves_the_order(
    runs: RunStore, tokens: TokenStore
) -> None:
    gateway = ScriptedGateway()
    ctx, order, _ = _reversal_behind_billing_of_run_a(runs, tokens, gateway)
    runs.client.delete(f"{runs.prefix}:run:A:work")  # recorded (or lost with its run)
    assert submit_batch(ctx, "R", range(1)).done == 1
    reversal = Entry("R", 0, "C0", "B2")
    assert order.ahead([reversal])[0] == []
    order.leave("R", [reversal])
    pipe = runs.pipeline()
    waiting = order.waiting(pipe, "R", [0])
    assert waiting(pipe.execute()) == set()
