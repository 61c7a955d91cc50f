"""A formulary event on the real fleet: the webhook's 204, then the next claims are
checked against the new version (the session's Redis, database and Celery worker;
the event signed and sent by the sandbox publisher over real HTTP).

The NDC is one the crosswalk file does not know, so other tests see no change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import get_settings
from rxfleet import context
from rxfleet.claims import synth
from rxfleet.gateway.sandbox.publisher import change, formulary_event, send
from rxfleet.webhooks import Publisher, Receiver, WebhookServer
from tests.integration.fleet.fleet_support import Fleet

pytestmark = pytest.mark.integration

SECRET = b"fleet-test-webhook-secret-000000000"
NDC, GPI = "55150012301", "39400010100310"  # not in config/crosswalk_sample.csv


@pytest.fixture(scope="module")
def webhook(fleet: Fleet) -> Iterator[str]:
    settings = get_settings()
    publisher = Publisher(context.database(), context.formulary(), context.metrics(), 60.0)
    receiver = Receiver(publisher, SECRET, time.time)
    with WebhookServer(receiver, settings.webhook_max_body) as server:
        yield server.url


def _claims(path: Path, seed: str, n: int = 4) -> list[str]:
    def edit(_: int, claim: dict[str, Any]) -> None:
        claim["ndc"] = NDC

    return synth.write_claims(path, n, seed=seed, claim_id=lambda i: f"FM{seed}-{i}", edit=edit)


def _publish(url: str, covered: bool) -> int:
    sequence = context.database().formulary_version() + 1
    event = formulary_event(sequence, [change(NDC, GPI, covered=covered, tier=2)])
    assert send(url, SECRET, event) == 204
    return sequence


def _mapped_versions(fleet: Fleet, run_id: str) -> set[Any]:
    return {row.get("formulary") for row in fleet.audit(run_id) if row["stage"] == "mapped"}


def test_a_formulary_event_turns_an_ndc_non_covered_for_the_next_claims(
    clean_fleet: Fleet, webhook: str, tmp_path: Path
) -> None:
    ids = _claims(tmp_path / "covered.jsonl", "a")
    version = _publish(webhook, covered=True)
    before = clean_fleet.run(tmp_path / "covered.jsonl", batch_size=2)
    rows = clean_fleet.results(before.run_id)
    assert all(r["attempts"] >= 1 and r["reason"] != "FORMULARY" for r in rows)
    assert _mapped_versions(clean_fleet, before.run_id) == {version}

    version = _publish(webhook, covered=False)  # the 204: durable, applied, published
    _claims(tmp_path / "excluded.jsonl", "b")
    sent_before = clean_fleet.gateway.stats()["claim_requests"]
    after = clean_fleet.run(tmp_path / "excluded.jsonl", batch_size=2)
    rows = clean_fleet.results(after.run_id)
    assert [r["status"] for r in rows] == ["REJECTED"] * 4
    assert all(r["reject_codes"] == ["70"] and r["reason"] == "FORMULARY" for r in rows)
    assert all(r["attempts"] == 0 for r in rows)
    # Routed by the matrix: 70 is FORMULARY_EXCEPTION, REVIEW_REQUIRED for PLAN-PARTD.
    assert {r["route"] for r in rows} <= {"FORMULARY_EXCEPTION", "REVIEW_REQUIRED"}
    assert clean_fleet.gateway.stats()["claim_requests"] == sent_before  # never sent
    assert _mapped_versions(clean_fleet, after.run_id) == {version}
    assert ids  # the covered run's claims were the payer's to judge


def test_token_rotations_are_recorded_without_the_token(clean_fleet: Fleet, tmp_path: Path) -> None:
    _claims(tmp_path / "any.jsonl", "c", n=1)
    clean_fleet.run(tmp_path / "any.jsonl")  # the reset fleet has no token: one rotation
    rows = clean_fleet.db.token_rotations()
    assert rows and rows[0]["reason"] == "none" and rows[0]["old_expires_at"] is None
    assert rows[0]["new_expires_at"] > rows[0]["rotated_at"]
    assert set(rows[0]) == {"rotated_at", "rotated_by", "reason", "old_expires_at",
                            "new_expires_at"}  # fmt: skip
